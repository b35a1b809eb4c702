/* Unit tests of common/names: the naming rules of the protocol (rooms, tenants, users, client
 * and message ids, emoji, gateway and connection ids), table-driven, with the boundary lengths and
 * the UTF-8 edge cases (overlong forms, surrogates, > U+10FFFF, control characters), and the
 * escaped-NUL scan of JSON text. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/names.h"
#include "tests/support/util.h"

typedef struct name_case {
    const char *s;
    bool valid;
} name_case_t;

/* unit repeated n times, malloc'd. */
static char *repeat(const char *unit, size_t n)
{
    size_t len = strlen(unit);
    char *s = malloc(len * n + 1);
    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * len, unit, len);
    s[len * n] = '\0';
    return s;
}

static void check_cases(bool (*fn)(const char *), const char *fn_name, const name_case_t *cases,
                        size_t n)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fn(cases[i].s) == cases[i].valid, "%s(\"%s\") should be %s", fn_name,
                      cases[i].s ? cases[i].s : "(null)", cases[i].valid ? "true" : "false");
}

/* fn on unit repeated max and max + 1 times: valid, then invalid. */
static void check_boundary(bool (*fn)(const char *), const char *unit, size_t max)
{
    char *at_max = repeat(unit, max);
    char *over = repeat(unit, max + 1);
    ck_assert_msg(fn(at_max), "%zu x \"%s\" should be valid", max, unit);
    ck_assert_msg(!fn(over), "%zu x \"%s\" should be invalid", max + 1, unit);
    free(at_max);
    free(over);
}

#define CHECK_CASES(fn, cases) check_cases(fn, #fn, cases, sizeof cases / sizeof cases[0])

START_TEST(test_room)
{
    static const name_case_t cases[] = {
        {"a", true},         {"general", true},
        {"A-Z_0.9:x", true}, {"dm:alice:bob", true},
        {":", true},         {"", false},
        {NULL, false},       {"room name", false},
        {"room/1", false},   {"caf\xc3\xa9", false},
        {"a\tb", false},     {"#general", false},
        {"a\nb", false},     {"x@y", false},
    };
    CHECK_CASES(chat_name_room_valid, cases);
    check_boundary(chat_name_room_valid, "a", CHAT_ROOM_MAX);
    ck_assert_int_eq(CHAT_ROOM_MAX, 128);
}
END_TEST

START_TEST(test_tenant)
{
    static const name_case_t cases[] = {
        {"acme", true}, {"a.b_c-D9", true}, {"", false},    {NULL, false},
        {"a:b", false}, {"a b", false},     {"a/b", false}, {"\xc3\xa9", false},
    };
    CHECK_CASES(chat_name_tenant_valid, cases);
    check_boundary(chat_name_tenant_valid, "t", CHAT_TENANT_MAX);
}
END_TEST

START_TEST(test_user)
{
    static const name_case_t cases[] = {
        {"alice", true},
        {"\xc3\x89milie", true},            /* Émilie */
        {"\xe7\x94\xa8\xe6\x88\xb7", true}, /* 用户 */
        {"\xf0\x9f\x98\x80", true},         /* U+1F600 */
        {"a b", true},
        {"a:b/c@d", true},
        {"", false},
        {NULL, false},
        {"a\nb", false},
        {"a\tb", false},
        {"a\x7f", false},
        {"\xc2\x85", false},         /* U+0085, a C1 control */
        {"\xc2\x9f", false},         /* U+009F, last C1 control */
        {"\xc2\xa0", true},          /* U+00A0, first after C1 */
        {"\xc0\xaf", false},         /* overlong '/' */
        {"\xed\xa0\x80", false},     /* surrogate U+D800 */
        {"\xf4\x90\x80\x80", false}, /* U+110000 */
        {"\xe2\x82", false},         /* truncated euro sign */
        {"\x80", false},             /* lone continuation byte */
        {"ok\xff", false},
    };
    CHECK_CASES(chat_name_user_valid, cases);
    check_boundary(chat_name_user_valid, "u", CHAT_USER_MAX);
    /* The limit counts characters, not bytes. */
    check_boundary(chat_name_user_valid, "\xc3\xa9", CHAT_USER_MAX);
    check_boundary(chat_name_user_valid, "\xf0\x9f\x98\x80", CHAT_USER_MAX);
}
END_TEST

START_TEST(test_cid)
{
    static const name_case_t cases[] = {
        {"c1", true},  {" ", true},      {"~!@#$%^&*()", true}, {"a b", true},   {"", false},
        {NULL, false}, {"a\x7f", false}, {"\xc3\xa9", false},   {"a\tb", false}, {"a\nb", false},
    };
    CHECK_CASES(chat_name_cid_valid, cases);
    check_boundary(chat_name_cid_valid, "c", CHAT_CID_MAX);
}
END_TEST

START_TEST(test_message_id)
{
    static const name_case_t cases[] = {
        {"65f1c0ffee0123456789abcd", true},
        {"000000000000000000000000", true},
        {"65F1C0FFEE0123456789ABCD", false},
        {"65f1c0ffee0123456789abc", false},
        {"65f1c0ffee0123456789abcde", false},
        {"65f1c0ffee0123456789abcg", false},
        {"", false},
        {NULL, false},
    };
    CHECK_CASES(chat_name_message_id_valid, cases);
    ck_assert_int_eq(CHAT_MESSAGE_ID_LEN, 24);
}
END_TEST

START_TEST(test_emoji)
{
    static const name_case_t cases[] = {
        {"\xf0\x9f\x91\x8d", true}, /* thumbs up */
        {"+1", true},
        {"", false},
        {NULL, false},
        {"\xff", false},
    };
    CHECK_CASES(chat_name_emoji_valid, cases);
    check_boundary(chat_name_emoji_valid, "\xf0\x9f\x91\x8d", CHAT_EMOJI_MAX_CHARS);
    check_boundary(chat_name_emoji_valid, "x", CHAT_EMOJI_MAX_CHARS);
}
END_TEST

START_TEST(test_endpoint)
{
    static const name_case_t cases[] = {
        {"0", true}, {"0.1a2b3c.17", true}, {"gw-0", true},  {"caf\xc3\xa9", true},
        {"", false}, {NULL, false},         {"\xff", false},
    };
    CHECK_CASES(chat_name_endpoint_valid, cases);
    check_boundary(chat_name_endpoint_valid, "c", CHAT_ENDPOINT_ID_MAX_CHARS);
    check_boundary(chat_name_endpoint_valid, "\xc3\xa9", CHAT_ENDPOINT_ID_MAX_CHARS);
}
END_TEST

START_TEST(test_utf8_chars_printable)
{
    ck_assert_int_eq(chat_utf8_chars_printable("\xc3\xa9 b", 4), 3);
    ck_assert_int_eq(chat_utf8_chars_printable("\xc2\xa0", 2), 1); /* first after C1 */
    ck_assert_int_eq(chat_utf8_chars_printable("", 0), 0);
    ck_assert_int_eq(chat_utf8_chars_printable("a\tb", 3), -1);
    ck_assert_int_eq(chat_utf8_chars_printable("a\x7f", 2), -1);
    ck_assert_int_eq(chat_utf8_chars_printable("\xc2\x85", 2), -1); /* C1 */
    ck_assert_int_eq(chat_utf8_chars_printable("a\0b", 3), -1);
    ck_assert_int_eq(chat_utf8_chars_printable("\xff", 1), -1);
}
END_TEST

START_TEST(test_room_is_dm)
{
    static const name_case_t cases[] = {
        {"dm:a:b", true},  {"dm:", true},    {"dm:x", true}, {"dm", false},
        {"DM:a:b", false}, {"xdm:a", false}, {"", false},    {NULL, false},
    };
    CHECK_CASES(chat_room_is_dm, cases);
}
END_TEST

START_TEST(test_dm_valid)
{
    static const name_case_t cases[] = {
        {"dm:alice:bob", true},
        {"dm:A:a", true},     /* 'A' < 'a' in byte order */
        {"dm:a:aa", true},    /* a prefix sorts first */
        {"dm:a.b:a_b", true}, /* '.' < '_' */
        {"dm:1:2", true},
        {"dm:bob:alice", false},
        {"dm:alice:alice", false},
        {"dm:aa:a", false},
        {"dm::bob", false},
        {"dm:alice:", false},
        {"dm:alice", false},
        {"dm:", false},
        {"dm:a:b:c", false},
        {"dm:al ice:bob", false},
        {"dm:a:b\xc3\xa9", false},
        {"DM:a:b", false},
        {"general", false},
        {"", false},
        {NULL, false},
    };
    CHECK_CASES(chat_room_dm_valid, cases);
}
END_TEST

/* dm:<first>:<second> with members of the given lengths (first all 'a', second all 'b'). */
static char *dm_room(size_t first_len, size_t second_len)
{
    char *a = repeat("a", first_len), *b = repeat("b", second_len);
    size_t len = 3 + first_len + 1 + second_len;
    char *room = malloc(len + 1);
    ck_assert_ptr_nonnull(room);
    snprintf(room, len + 1, "dm:%s:%s", a, b);
    free(a);
    free(b);
    return room;
}

START_TEST(test_dm_lengths)
{
    static const struct {
        size_t first, second;
        bool valid;
    } cases[] = {
        {64, 1, true},                                   /* a member may be 64 characters */
        {65, 1, false},                                  /* but not 65 */
        {1, 64, true},   {1, 65, false}, {62, 62, true}, /* 128 characters in all: still a room */
        {62, 63, false},                                 /* 129: longer than any room */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *room = dm_room(cases[i].first, cases[i].second);
        ck_assert_msg(chat_room_dm_valid(room) == cases[i].valid, "dm room %zu+%zu: %s",
                      cases[i].first, cases[i].second, room);
        free(room);
    }
}
END_TEST

START_TEST(test_dm_has)
{
    static const struct {
        const char *room, *user;
        bool member;
    } cases[] = {
        {"dm:alice:bob", "alice", true},  {"dm:alice:bob", "bob", true},
        {"dm:alice:bob", "carol", false}, {"dm:alice:bob", "ali", false},
        {"dm:alice:bob", "bo", false},    {"dm:alice:bob", "alice:bob", false},
        {"dm:alice:bob", "", false},      {"dm:alice:bob", NULL, false},
        {"dm:bob:alice", "bob", false},   {"general", "alice", false},
        {NULL, "alice", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(chat_room_dm_has(cases[i].room, cases[i].user) == cases[i].member,
                      "dm_has(%s, %s)", cases[i].room ? cases[i].room : "(null)",
                      cases[i].user ? cases[i].user : "(null)");
}
END_TEST

START_TEST(test_utf8_chars)
{
    static const struct {
        const char *s;
        size_t len;
        long chars;
    } cases[] = {
        {"", 0, 0},
        {"abc", 3, 3},
        {"abc", 2, 2},              /* only len bytes count */
        {"a\0b", 3, 3},             /* NUL is a character */
        {"\xc3\xa9", 2, 1},         /* é */
        {"\xe2\x82\xac", 3, 1},     /* € */
        {"\xf0\x9f\x98\x80", 4, 1}, /* U+1F600 */
        {"\x7f", 1, 1},
        {"\xc2\x80", 2, 1},          /* smallest 2-byte */
        {"\xe0\xa0\x80", 3, 1},      /* smallest 3-byte */
        {"\xf0\x90\x80\x80", 4, 1},  /* smallest 4-byte */
        {"\xed\x9f\xbf", 3, 1},      /* U+D7FF, just below the surrogates */
        {"\xee\x80\x80", 3, 1},      /* U+E000, just above */
        {"\xf4\x8f\xbf\xbf", 4, 1},  /* U+10FFFF */
        {"\xc3\xa9", 1, -1},         /* truncated by len */
        {"\xf0\x9f\x98", 3, -1},     /* truncated 4-byte */
        {"\xc0\x80", 2, -1},         /* overlong NUL */
        {"\xc1\xbf", 2, -1},         /* overlong 0x7f */
        {"\xe0\x80\xaf", 3, -1},     /* overlong '/' in 3 bytes */
        {"\xe0\x9f\xbf", 3, -1},     /* overlong U+07FF */
        {"\xf0\x80\x80\xaf", 4, -1}, /* overlong '/' in 4 bytes */
        {"\xf0\x8f\xbf\xbf", 4, -1}, /* overlong U+FFFF */
        {"\xed\xa0\x80", 3, -1},     /* U+D800 */
        {"\xed\xbf\xbf", 3, -1},     /* U+DFFF */
        {"\xf4\x90\x80\x80", 4, -1}, /* U+110000 */
        {"\xf5\x80\x80\x80", 4, -1},
        {"\xff", 1, -1},
        {"\x80", 1, -1},
        {"a\xbf", 2, -1},
        {"\xe2\x28\xa1", 3, -1}, /* bad continuation */
        {"\xc3\xa9\xc3", 3, -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(chat_utf8_chars(cases[i].s, cases[i].len) == cases[i].chars,
                      "case %zu: got %ld, want %ld", i, chat_utf8_chars(cases[i].s, cases[i].len),
                      cases[i].chars);
    ck_assert_int_eq(chat_utf8_chars(NULL, 0), 0);
    ck_assert_int_eq(chat_utf8_chars(NULL, 1), -1);
}
END_TEST

START_TEST(test_json_escaped_nul)
{
    static const struct {
        const char *json;
        bool nul;
    } cases[] = {
        {"{\"t\":\"a\\u0000b\"}", true},      {"{\"t\":\"\\u0000\"}", true},
        {"{\"t\":\"\\\\\\u0000\"}", true},  /* an escaped backslash, then the escape */
        {"{\"t\":\"C:\\\\u0000\"}", false}, /* an escaped backslash, then the text u0000 */
        {"{\"t\":\"\\\\\\\\u0000\"}", false}, {"{\"t\":\"\\u0001\"}", false},
        {"{\"t\":\"\\u00000\"}", true},       {"{\"t\":\"u0000\"}", false},
        {"{\"t\":\"\\n0000\"}", false},       {"", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(chat_json_has_escaped_nul(cases[i].json, strlen(cases[i].json)) ==
                          cases[i].nul,
                      "case %zu (%s)", i, cases[i].json);
    /* Only len bytes count: an escape cut off by len is not one. */
    ck_assert(!chat_json_has_escaped_nul("\\u0000", 5));
    ck_assert(chat_json_has_escaped_nul("\\u0000", 6));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("names");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_room);
    tcase_add_test(tc, test_tenant);
    tcase_add_test(tc, test_user);
    tcase_add_test(tc, test_cid);
    tcase_add_test(tc, test_message_id);
    tcase_add_test(tc, test_emoji);
    tcase_add_test(tc, test_endpoint);
    tcase_add_test(tc, test_utf8_chars_printable);
    tcase_add_test(tc, test_room_is_dm);
    tcase_add_test(tc, test_dm_valid);
    tcase_add_test(tc, test_dm_lengths);
    tcase_add_test(tc, test_dm_has);
    tcase_add_test(tc, test_utf8_chars);
    tcase_add_test(tc, test_json_escaped_nul);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
