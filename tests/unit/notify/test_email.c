/* Unit tests of services/notify/email.c: the digest's headers (From, To, the subject's count,
 * Date, Message-ID, MIME), both parts decoded back from base64 (every user text HTML-escaped
 * in the HTML part, UTF-8 intact), header injection refused, and the envelope address. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "services/notify/email.h"
#include "tests/support/util.h"

/* Decodes base64 lines (CRLF ignored) until the next "--" line; malloc'd. */
static char *decode_part(const char *p)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *end = strstr(p, "\r\n--");
    ck_assert_ptr_nonnull(end);
    char *out = calloc(1, (size_t)(end - p) + 1);
    size_t n = 0;
    unsigned v = 0;
    int bits = 0;
    for (const char *c = p; c < end; c++) {
        if (*c == '\r' || *c == '\n' || *c == '=')
            continue;
        const char *at = strchr(tab, *c);
        ck_assert_ptr_nonnull(at);
        v = (v << 6) | (unsigned)(at - tab);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (char)((v >> bits) & 0xff);
        }
    }
    return out;
}

/* The decoded body of the part whose Content-Type line is type. */
static char *part(const char *mail, const char *type)
{
    const char *p = strstr(mail, type);
    ck_assert_ptr_nonnull(p);
    p = strstr(p, "\r\n\r\n");
    ck_assert_ptr_nonnull(p);
    return decode_part(p + 4);
}

static const ns_email_msg_t lobby[] = {
    {.from = "bob",
     .name = "Bob <the builder>",
     .text = "see <script>alert('x')</script> & more",
     .seq = 7,
     .ts = 1700000000000LL},
    {.from = "cy",
     .name = NULL,
     .text = "caf\xc3\xa9 \xe2\x82\xac",
     .seq = 9,
     .ts = 1700000060000LL},
};
static const ns_email_msg_t dm[] = {
    {.from = "dee", .name = "Dee", .text = "line one\nline two", .seq = 3, .ts = 1700000120000LL},
};
static const ns_email_room_t rooms[] = {
    {.room = "lobby", .msgs = lobby, .n = 2},
    {.room = "dm:ann:dee", .msgs = dm, .n = 1},
};

static ns_email_t digest(void)
{
    return (ns_email_t){.from = "Acme Chat <noreply@acme.example>",
                        .to = "ann@example.org",
                        .tenant = "acme",
                        .rooms = rooms,
                        .nrooms = 2,
                        .now_ms = 1700000200000LL, /* Tue, 14 Nov 2023 22:16:40 */
                        .boundary = "b0undary42",
                        .message_id = "<1.abc@acme.example>"};
}

START_TEST(test_headers)
{
    ns_email_t e = digest();
    ck_assert_uint_eq(ns_email_count(&e), 3);
    size_t len = 0;
    char *m = ns_email_render(&e, &len);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(len, strlen(m));
    ck_assert_ptr_nonnull(strstr(m, "From: Acme Chat <noreply@acme.example>\r\n"));
    ck_assert_ptr_nonnull(strstr(m, "To: ann@example.org\r\n"));
    ck_assert_ptr_nonnull(strstr(m, "Subject: 3 unread messages\r\n"));
    ck_assert_ptr_nonnull(strstr(m, "Date: Tue, 14 Nov 2023 22:16:40 +0000\r\n"));
    ck_assert_ptr_nonnull(strstr(m, "Message-ID: <1.abc@acme.example>\r\n"));
    ck_assert_ptr_nonnull(strstr(m, "MIME-Version: 1.0\r\n"));
    ck_assert_ptr_nonnull(
        strstr(m, "Content-Type: multipart/alternative; boundary=\"b0undary42\"\r\n\r\n"));
    ck_assert_ptr_nonnull(strstr(m, "--b0undary42\r\nContent-Type: text/plain; charset=UTF-8\r\n"
                                    "Content-Transfer-Encoding: base64\r\n\r\n"));
    ck_assert_ptr_nonnull(strstr(m, "--b0undary42\r\nContent-Type: text/html; charset=UTF-8\r\n"));
    ck_assert_ptr_nonnull(strstr(m, "\r\n--b0undary42--\r\n"));
    /* Headers end at the first blank line; no bare LF anywhere; lines within 78 characters. */
    for (const char *p = m; *p; p++) {
        if (*p == '\n')
            ck_assert(p > m && p[-1] == '\r');
    }
    for (const char *line = m; *line;) {
        const char *eol = strstr(line, "\r\n");
        ck_assert_ptr_nonnull(eol);
        ck_assert_int_le(eol - line, 998);
        if (strncmp(line, "Content", 7) != 0 && strncmp(line, "From", 4) != 0)
            ck_assert_int_le(eol - line, 78);
        line = eol + 2;
    }
    free(m);

    e.nrooms = 1;
    e.rooms = &rooms[1];
    m = ns_email_render(&e, &len);
    ck_assert_ptr_nonnull(strstr(m, "Subject: 1 unread message\r\n"));
    free(m);
}
END_TEST

START_TEST(test_parts_escape_and_keep_utf8)
{
    ns_email_t e = digest();
    size_t len = 0;
    char *m = ns_email_render(&e, &len);
    char *plain = part(m, "text/plain");
    char *html = part(m, "text/html");

    ck_assert_ptr_nonnull(strstr(plain, "You have 3 unread messages in acme."));
    ck_assert_ptr_nonnull(strstr(plain, "#lobby\r\n"));
    ck_assert_ptr_nonnull(strstr(plain, "Bob <the builder> (bob): see <script>"));
    ck_assert_ptr_nonnull(strstr(plain, "[22:13 UTC] Bob"));
    ck_assert_ptr_nonnull(strstr(plain, "cy: caf\xc3\xa9 \xe2\x82\xac\r\n"));
    ck_assert_ptr_nonnull(strstr(plain, "line one\r\n    line two"));

    ck_assert_ptr_null(strstr(html, "<script>"));
    ck_assert_ptr_nonnull(
        strstr(html, "see &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more"));
    ck_assert_ptr_nonnull(strstr(html, "<b>Bob &lt;the builder&gt;</b>"));
    ck_assert_ptr_nonnull(strstr(html, "<h3>#dm:ann:dee</h3>"));
    ck_assert_ptr_nonnull(strstr(html, "caf\xc3\xa9 \xe2\x82\xac"));
    /* Rooms in order, messages oldest first as given. */
    ck_assert(strstr(html, "#lobby") < strstr(html, "#dm:ann:dee"));
    ck_assert(strstr(html, "Bob") < strstr(html, "<b>cy</b>"));
    free(plain);
    free(html);
    free(m);
}
END_TEST

START_TEST(test_header_injection_refused)
{
    ns_email_t e = digest();
    size_t len = 0;
    e.to = "ann@example.org\r\nBcc: all@example.org";
    ck_assert_ptr_null(ns_email_render(&e, &len));
    e = digest();
    e.from = "x@y\nSubject: hi";
    ck_assert_ptr_null(ns_email_render(&e, &len));
    e = digest();
    e.to = "";
    ck_assert_ptr_null(ns_email_render(&e, &len));
}
END_TEST

START_TEST(test_address_and_escape)
{
    char *a = ns_email_address("Acme Chat <noreply@acme.example>");
    ck_assert_str_eq(a, "noreply@acme.example");
    free(a);
    a = ns_email_address("  ann@example.org ");
    ck_assert_str_eq(a, "ann@example.org");
    free(a);
    ck_assert_ptr_null(ns_email_address("no address"));
    ck_assert_ptr_null(ns_email_address("Name <broken@x"));
    ck_assert_ptr_null(ns_email_address(NULL));
    char *h = ns_html_escape("<a href=\"x\">'&'</a>");
    ck_assert_str_eq(h, "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    free(h);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("notify_email");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_headers);
    tcase_add_test(tc, test_parts_escape_and_keep_utf8);
    tcase_add_test(tc, test_header_injection_refused);
    tcase_add_test(tc, test_address_and_escape);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
