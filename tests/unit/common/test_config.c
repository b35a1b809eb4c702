/* Unit tests of common/config: parsing of every type with its bounds, defaults and required
 * variables, the error log line naming the variable, --help, the start-up log line with
 * secrets masked, argument handling, chat_cfg_free on a partially loaded struct and the
 * bound of the shared CHAT_MAX_TEXT_CHARS entry. */
#include <check.h>
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "tests/support/util.h"

typedef struct test_cfg {
    char *brokers;
    char *group;
    long long port;
    bool debug;
    char *level;
    long long timeout_ms;
    char *password;
    char *token;
} test_cfg_t;

/* Every variable name starts with UT_CFG_ so the tests never meet a real setting. */
static const chat_cfg_entry_t table[] = {
    CHAT_CFG_STRING("UT_CFG_BROKERS", test_cfg_t, brokers, "127.0.0.1:9092", "Kafka servers"),
    CHAT_CFG_STRING("UT_CFG_GROUP", test_cfg_t, group, NULL, "consumer group"),
    CHAT_CFG_INTEGER("UT_CFG_PORT", test_cfg_t, port, "9100", 1, 65535, "ops port"),
    CHAT_CFG_BOOL("UT_CFG_DEBUG", test_cfg_t, debug, "false", "debug mode"),
    CHAT_CFG_ENUM("UT_CFG_LEVEL", test_cfg_t, level, "info", "debug|info|warn|error", "log level"),
    CHAT_CFG_DURATION("UT_CFG_TIMEOUT", test_cfg_t, timeout_ms, "10s", 100, 3600000,
                      "request timeout"),
    CHAT_CFG_SECRET("UT_CFG_PASSWORD", test_cfg_t, password, "default-pass-xyz", "password"),
    CHAT_CFG_SECRET("UT_CFG_TOKEN", test_cfg_t, token, NULL, "api token"),
    CHAT_CFG_END,
};

static int log_pipe[2] = {-1, -1};

/* Non-blocking read end, so draining an empty pipe returns at once. */
static void pipe_open(int fds[2])
{
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
}

/* Everything in the pipe, NUL-terminated (malloc'd). */
static char *pipe_drain(int fd)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    ck_assert_ptr_nonnull(buf);
    ssize_t n;
    while ((n = read(fd, buf + len, cap - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    return buf;
}

static void setup(void)
{
    for (const chat_cfg_entry_t *e = table; e->name != NULL; e++)
        unsetenv(e->name);
    setenv("UT_CFG_GROUP", "g1", 1);
    setenv("UT_CFG_TOKEN", "tok-secret-abc", 1);
    pipe_open(log_pipe);
    chat_log_init("cfgtest", CHAT_LOG_DEBUG);
    chat_log_set_fd(log_pipe[1]);
}

static void teardown(void)
{
    chat_log_set_fd(2);
    close(log_pipe[0]);
    close(log_pipe[1]);
}

/* The single log line written since the last call, parsed; *raw (if not NULL) gets it. */
static cJSON *log_line(char **raw)
{
    char *text = pipe_drain(log_pipe[0]);
    size_t len = strlen(text);
    ck_assert_msg(len > 0 && strchr(text, '\n') == text + len - 1, "want one line: %s", text);
    cJSON *json = cJSON_Parse(text);
    ck_assert_msg(json != NULL, "not JSON: %s", text);
    if (raw != NULL)
        *raw = text;
    else
        free(text);
    return json;
}

static const char *json_str(const cJSON *json, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(json, key);
    ck_assert_msg(cJSON_IsString(item), "\"%s\" is not a string", key);
    return item->valuestring;
}

/* Loads a table of the single entry e with the variable set to value (NULL: unset).
 * Returns the status; *bad and why describe a failure. */
static chat_err_t load_one(const chat_cfg_entry_t *e, const char *value, test_cfg_t *out,
                           const char **bad, char *why, size_t whylen)
{
    chat_cfg_entry_t one[2] = {*e, CHAT_CFG_END};
    if (value != NULL)
        setenv(e->name, value, 1);
    else
        unsetenv(e->name);
    memset(out, 0, sizeof *out);
    return chat_cfg_load_env(one, out, bad, why, whylen);
}

typedef struct number_case {
    const char *text;
    bool ok;
    long long value;
} number_case_t;

static void check_numbers(const chat_cfg_entry_t *e, const long long *field,
                          const number_case_t *cases, size_t n, test_cfg_t *cfg)
{
    for (size_t i = 0; i < n; i++) {
        const char *bad = NULL;
        char why[128] = "";
        chat_err_t err = load_one(e, cases[i].text, cfg, &bad, why, sizeof why);
        if (cases[i].ok) {
            ck_assert_msg(err == CHAT_OK, "%s=\"%s\" rejected: %s", e->name, cases[i].text, why);
            ck_assert_msg(*field == cases[i].value, "%s=\"%s\": got %lld, want %lld", e->name,
                          cases[i].text, *field, cases[i].value);
            ck_assert_ptr_null(bad);
        } else {
            ck_assert_msg(err == CHAT_ERR_CONFIG, "%s=\"%s\" accepted", e->name, cases[i].text);
            ck_assert_str_eq(bad, e->name);
            ck_assert_msg(why[0] != '\0', "no reason for \"%s\"", cases[i].text);
        }
    }
}

START_TEST(test_defaults)
{
    test_cfg_t cfg = {0};
    const char *bad = "unchanged";
    char why[128];
    ck_assert_int_eq(chat_cfg_load_env(table, &cfg, &bad, why, sizeof why), CHAT_OK);
    ck_assert_ptr_null(bad);
    ck_assert_str_eq(cfg.brokers, "127.0.0.1:9092");
    ck_assert_str_eq(cfg.group, "g1");
    ck_assert_int_eq(cfg.port, 9100);
    ck_assert(!cfg.debug);
    ck_assert_str_eq(cfg.level, "info");
    ck_assert_int_eq(cfg.timeout_ms, 10000);
    ck_assert_str_eq(cfg.password, "default-pass-xyz");
    ck_assert_str_eq(cfg.token, "tok-secret-abc");
    chat_cfg_free(table, &cfg);
    ck_assert_ptr_null(cfg.brokers);
    ck_assert_ptr_null(cfg.level);
    ck_assert_ptr_null(cfg.token);
}
END_TEST

START_TEST(test_environment_overrides)
{
    setenv("UT_CFG_BROKERS", "kafka:9092", 1);
    setenv("UT_CFG_PORT", "8080", 1);
    setenv("UT_CFG_DEBUG", "yes", 1);
    setenv("UT_CFG_LEVEL", "debug", 1);
    setenv("UT_CFG_TIMEOUT", "250ms", 1);
    test_cfg_t cfg = {0};
    ck_assert_int_eq(chat_cfg_load(table, &cfg, 1, (char *[]){"svc", NULL}, "svc", "S"),
                     CHAT_CFG_LOADED);
    ck_assert_str_eq(cfg.brokers, "kafka:9092");
    ck_assert_int_eq(cfg.port, 8080);
    ck_assert(cfg.debug);
    ck_assert_str_eq(cfg.level, "debug");
    ck_assert_int_eq(cfg.timeout_ms, 250);
    chat_cfg_free(table, &cfg);
}
END_TEST

START_TEST(test_string)
{
    test_cfg_t cfg = {0};
    const char *bad;
    char why[128];
    /* An optional string may be set to empty on purpose. */
    ck_assert_int_eq(load_one(&table[0], "", &cfg, &bad, why, sizeof why), CHAT_OK);
    ck_assert_str_eq(cfg.brokers, "");
    chat_cfg_free(table, &cfg);
    ck_assert_int_eq(load_one(&table[0], "a b\tc", &cfg, &bad, why, sizeof why), CHAT_OK);
    ck_assert_str_eq(cfg.brokers, "a b\tc");
    chat_cfg_free(table, &cfg);
    /* A required one may not be unset or empty. */
    ck_assert_int_eq(load_one(&table[1], NULL, &cfg, &bad, why, sizeof why), CHAT_ERR_CONFIG);
    ck_assert_str_eq(bad, "UT_CFG_GROUP");
    ck_assert_ptr_nonnull(strstr(why, "required"));
    ck_assert_ptr_null(cfg.group);
    ck_assert_int_eq(load_one(&table[1], "", &cfg, &bad, why, sizeof why), CHAT_ERR_CONFIG);
    ck_assert_str_eq(bad, "UT_CFG_GROUP");
    ck_assert_ptr_null(cfg.group);
}
END_TEST

START_TEST(test_integer)
{
    static const chat_cfg_entry_t e =
        CHAT_CFG_INTEGER("UT_CFG_INT", test_cfg_t, port, "0", -10, 100, "an integer");
    static const number_case_t cases[] = {
        {"42", true, 42},
        {"-5", true, -5},
        {"+7", true, 7},
        {"0", true, 0},
        {"100", true, 100},
        {"-10", true, -10},
        {"007", true, 7},
        {"101", false, 0},
        {"-11", false, 0},
        {"12abc", false, 0},
        {"", false, 0},
        {" 12", false, 0},
        {"12 ", false, 0},
        {"0x10", false, 0},
        {"1.5", false, 0},
        {"-", false, 0},
        {"1e2", false, 0},
        {"abc", false, 0},
        {"99999999999999999999", false, 0},
    };
    test_cfg_t cfg = {0};
    check_numbers(&e, &cfg.port, cases, sizeof cases / sizeof cases[0], &cfg);
}
END_TEST

START_TEST(test_integer_extremes)
{
    static const chat_cfg_entry_t e =
        CHAT_CFG_INTEGER("UT_CFG_INT", test_cfg_t, port, "0", LLONG_MIN, LLONG_MAX, "any");
    static const number_case_t cases[] = {
        {"9223372036854775807", true, LLONG_MAX},
        {"-9223372036854775808", true, LLONG_MIN},
        {"9223372036854775808", false, 0},
        {"-9223372036854775809", false, 0},
    };
    test_cfg_t cfg = {0};
    check_numbers(&e, &cfg.port, cases, sizeof cases / sizeof cases[0], &cfg);
}
END_TEST

/* The shared CHAT_MAX_TEXT_CHARS entry (the test sets the variable itself) stops at what the
 * event codec can carry: a longer limit would let texts through that no service can encode. */
START_TEST(test_max_text_chars_bounded_by_codec)
{
    static const chat_cfg_entry_t e = CHAT_CFG_MAX_TEXT_CHARS(test_cfg_t, port);
    char at_max[32], past_max[32];
    snprintf(at_max, sizeof at_max, "%d", CHAT_TEXT_MAX_CHARS);
    snprintf(past_max, sizeof past_max, "%d", CHAT_TEXT_MAX_CHARS + 1);
    const number_case_t cases[] = {
        {"1", true, 1},        {at_max, true, CHAT_TEXT_MAX_CHARS},
        {"0", false, 0},       {past_max, false, 0},
        {"1000000", false, 0},
    };
    test_cfg_t cfg = {0};
    check_numbers(&e, &cfg.port, cases, sizeof cases / sizeof cases[0], &cfg);
    const char *bad = NULL;
    char why[128];
    ck_assert_int_eq(load_one(&e, NULL, &cfg, &bad, why, sizeof why), CHAT_OK);
    ck_assert_int_eq(cfg.port, CHAT_TEXT_MAX_CHARS); /* the default is the codec's limit */
    unsetenv(e.name);
}
END_TEST

START_TEST(test_duration)
{
    static const chat_cfg_entry_t e =
        CHAT_CFG_DURATION("UT_CFG_DUR", test_cfg_t, timeout_ms, "1s", 100, 3600000, "a duration");
    static const number_case_t cases[] = {
        {"250ms", true, 250},
        {"10s", true, 10000},
        {"5m", true, 300000},
        {"1h", true, 3600000},
        {"1500", true, 1500},
        {"100ms", true, 100},
        {"60m", true, 3600000},
        {"99ms", false, 0},
        {"99", false, 0},
        {"61m", false, 0},
        {"2h", false, 0},
        {"", false, 0},
        {"10x", false, 0},
        {"1.5s", false, 0},
        {"-5s", false, 0},
        {"+5s", false, 0},
        {"10 s", false, 0},
        {" 10s", false, 0},
        {"s", false, 0},
        {"ms", false, 0},
        {"10S", false, 0},
        {"10sec", false, 0},
        {"10ms5", false, 0},
        {"9223372036854775807h", false, 0},
        {"99999999999999999999", false, 0},
    };
    test_cfg_t cfg = {0};
    check_numbers(&e, &cfg.timeout_ms, cases, sizeof cases / sizeof cases[0], &cfg);
}
END_TEST

START_TEST(test_bool)
{
    static const struct {
        const char *text;
        bool ok, value;
    } cases[] = {
        {"true", true, true}, {"TRUE", true, true},    {"1", true, true},       {"yes", true, true},
        {"On", true, true},   {"false", true, false},  {"0", true, false},      {"no", true, false},
        {"OFF", true, false}, {"False", true, false},  {"", false, false},      {"2", false, false},
        {"y", false, false},  {"truee", false, false}, {" true", false, false},
    };
    test_cfg_t cfg = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *bad = NULL;
        char why[128];
        chat_err_t err = load_one(&table[3], cases[i].text, &cfg, &bad, why, sizeof why);
        ck_assert_msg((err == CHAT_OK) == cases[i].ok, "bool \"%s\"", cases[i].text);
        if (cases[i].ok)
            ck_assert_msg(cfg.debug == cases[i].value, "bool \"%s\"", cases[i].text);
        else
            ck_assert_str_eq(bad, "UT_CFG_DEBUG");
    }
}
END_TEST

START_TEST(test_enum)
{
    static const struct {
        const char *text, *stored;
    } cases[] = {
        {"debug", "debug"}, {"info", "info"}, {"error", "error"}, {"WARN", "warn"},
        {"", NULL},         {"inf", NULL},    {"infos", NULL},    {"info|warn", NULL},
        {"verbose", NULL},  {"|", NULL},      {" info", NULL},
    };
    test_cfg_t cfg = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *bad = NULL;
        char why[128];
        chat_err_t err = load_one(&table[4], cases[i].text, &cfg, &bad, why, sizeof why);
        if (cases[i].stored != NULL) {
            ck_assert_msg(err == CHAT_OK, "enum \"%s\": %s", cases[i].text, why);
            ck_assert_str_eq(cfg.level, cases[i].stored);
        } else {
            ck_assert_msg(err == CHAT_ERR_CONFIG, "enum \"%s\" accepted", cases[i].text);
            ck_assert_str_eq(bad, "UT_CFG_LEVEL");
            ck_assert_ptr_nonnull(strstr(why, "debug|info|warn|error"));
            ck_assert_ptr_null(cfg.level);
        }
        chat_cfg_free(table, &cfg);
    }
}
END_TEST

START_TEST(test_bad_default)
{
    static const chat_cfg_entry_t e =
        CHAT_CFG_INTEGER("UT_CFG_INT", test_cfg_t, port, "12abc", 0, 100, "bad default");
    test_cfg_t cfg = {0};
    const char *bad;
    char why[128];
    ck_assert_int_eq(load_one(&e, NULL, &cfg, &bad, why, sizeof why), CHAT_ERR_CONFIG);
    ck_assert_str_eq(bad, "UT_CFG_INT");
    ck_assert_ptr_nonnull(strstr(why, "default"));
    /* A valid value in the environment wins over the broken default. */
    ck_assert_int_eq(load_one(&e, "5", &cfg, &bad, why, sizeof why), CHAT_OK);
    ck_assert_int_eq(cfg.port, 5);
}
END_TEST

START_TEST(test_failure_logs_variable)
{
    setenv("UT_CFG_PORT", "70000", 1);
    test_cfg_t cfg = {0};
    char *argv[] = {"svc", NULL};
    ck_assert_int_eq(chat_cfg_load(table, &cfg, 1, argv, "svc", "S"), CHAT_CFG_FAILED);
    cJSON *json = log_line(NULL);
    ck_assert_str_eq(json_str(json, "level"), "error");
    ck_assert_str_eq(json_str(json, "var"), "UT_CFG_PORT");
    ck_assert_str_eq(json_str(json, "value"), "70000");
    ck_assert_ptr_nonnull(strstr(json_str(json, "reason"), "65535"));
    cJSON_Delete(json);
    chat_cfg_free(table, &cfg);
}
END_TEST

START_TEST(test_failure_missing_required)
{
    unsetenv("UT_CFG_GROUP");
    test_cfg_t cfg = {0};
    ck_assert_int_eq(chat_cfg_load(table, &cfg, 0, NULL, "svc", NULL), CHAT_CFG_FAILED);
    cJSON *json = log_line(NULL);
    ck_assert_str_eq(json_str(json, "var"), "UT_CFG_GROUP");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(json, "value")));
    ck_assert_ptr_nonnull(strstr(json_str(json, "reason"), "required"));
    cJSON_Delete(json);
    chat_cfg_free(table, &cfg);
}
END_TEST

START_TEST(test_failure_hides_secret)
{
    static const chat_cfg_entry_t secret_int[] = {
        {.name = "UT_CFG_SECRET_NUM",
         .type = CHAT_CFG_T_INTEGER,
         .offset = offsetof(test_cfg_t, port),
         .def = "1",
         .min = 1,
         .max = 10,
         .help = "a secret number",
         .secret = true},
        CHAT_CFG_END,
    };
    setenv("UT_CFG_SECRET_NUM", "hunter2", 1);
    test_cfg_t cfg = {0};
    ck_assert_int_eq(chat_cfg_load(secret_int, &cfg, 0, NULL, "svc", NULL), CHAT_CFG_FAILED);
    char *raw = NULL;
    cJSON *json = log_line(&raw);
    ck_assert_str_eq(json_str(json, "var"), "UT_CFG_SECRET_NUM");
    ck_assert_str_eq(json_str(json, "value"), "***");
    ck_assert_ptr_null(strstr(raw, "hunter2"));
    cJSON_Delete(json);
    free(raw);
    unsetenv("UT_CFG_SECRET_NUM");
}
END_TEST

/* Runs chat_cfg_load with argv while stdout goes to a pipe; returns what it printed. */
static char *load_capturing_stdout(int argc, char **argv, chat_cfg_result_t *result,
                                   test_cfg_t *cfg)
{
    int out[2];
    pipe_open(out);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_ge(dup2(out[1], STDOUT_FILENO), 0);
    *result = chat_cfg_load(table, cfg, argc, argv, "chat-test", "The test service.");
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    char *text = pipe_drain(out[0]);
    close(out[0]);
    close(out[1]);
    return text;
}

START_TEST(test_help_argument)
{
    const char *flags[] = {"--help", "-h"};
    /* Help works even when required variables are missing. */
    unsetenv("UT_CFG_GROUP");
    for (size_t i = 0; i < 2; i++) {
        test_cfg_t cfg = {0};
        chat_cfg_result_t result;
        char *text =
            load_capturing_stdout(2, (char *[]){"svc", (char *)flags[i], NULL}, &result, &cfg);
        ck_assert_int_eq(result, CHAT_CFG_HELP);
        ck_assert_msg(strncmp(text, "The test service.\n", 18) == 0, "first line: %s", text);
        for (const chat_cfg_entry_t *e = table; e->name != NULL; e++)
            ck_assert_msg(strstr(text, e->name) != NULL, "%s missing from --help", e->name);
        ck_assert_ptr_null(cfg.brokers); /* nothing loaded */
        free(text);
    }
}
END_TEST

START_TEST(test_unknown_argument)
{
    test_cfg_t cfg = {0};
    chat_cfg_result_t result;
    char *text =
        load_capturing_stdout(3, (char *[]){"svc", "--help", "--verbose", NULL}, &result, &cfg);
    ck_assert_int_eq(result, CHAT_CFG_FAILED);
    ck_assert_str_eq(text, "");
    free(text);
    cJSON *json = log_line(NULL);
    ck_assert_str_eq(json_str(json, "level"), "error");
    ck_assert_str_eq(json_str(json, "arg"), "--verbose");
    cJSON_Delete(json);
    ck_assert_ptr_null(cfg.brokers);
}
END_TEST

/* Column where word starts in the line of text that begins with "  <first>". */
static long column_of(const char *text, const char *first, const char *word)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "\n  %s ", first);
    const char *line = strstr(text, prefix);
    ck_assert_msg(line != NULL, "no line for %s", first);
    line++;
    const char *end = strchr(line, '\n');
    const char *at = strstr(line, word);
    ck_assert_msg(at != NULL && at < end, "\"%s\" not on the line of %s", word, first);
    return at - line;
}

START_TEST(test_print_help)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(f);
    chat_cfg_print_help(table, f, "chat-test", "The test service.");
    fclose(f);
    ck_assert_ptr_nonnull(strstr(text, "chat-test"));
    ck_assert_ptr_nonnull(strstr(text, "1..65535"));
    ck_assert_ptr_nonnull(strstr(text, "100ms..1h"));
    ck_assert_ptr_nonnull(strstr(text, "debug|info|warn|error"));
    ck_assert_ptr_nonnull(strstr(text, "request timeout"));
    ck_assert_ptr_nonnull(strstr(text, "(secret)"));
    ck_assert_ptr_null(strstr(text, "default-pass-xyz"));
    /* Columns line up: the type of every row starts under TYPE, its default under DEFAULT. */
    long type_col = column_of(text, "VARIABLE", "TYPE");
    long default_col = column_of(text, "VARIABLE", "DEFAULT");
    ck_assert_int_eq(column_of(text, "UT_CFG_BROKERS", "string"), type_col);
    ck_assert_int_eq(column_of(text, "UT_CFG_TIMEOUT", "duration"), type_col);
    ck_assert_int_eq(column_of(text, "UT_CFG_BROKERS", "127.0.0.1:9092"), default_col);
    ck_assert_int_eq(column_of(text, "UT_CFG_GROUP", "required"), default_col);
    ck_assert_int_eq(column_of(text, "UT_CFG_PASSWORD", "(secret)"), default_col);
    ck_assert_int_eq(column_of(text, "UT_CFG_TOKEN", "required"), default_col);
    free(text);
}
END_TEST

START_TEST(test_log_configuration)
{
    test_cfg_t cfg = {0};
    ck_assert_int_eq(chat_cfg_load_env(table, &cfg, NULL, NULL, 0), CHAT_OK);
    chat_cfg_log(table, &cfg);
    char *raw = NULL;
    cJSON *json = log_line(&raw);
    ck_assert_str_eq(json_str(json, "level"), "info");
    ck_assert_str_eq(json_str(json, "msg"), "configuration");
    ck_assert_str_eq(json_str(json, "UT_CFG_BROKERS"), "127.0.0.1:9092");
    ck_assert_str_eq(json_str(json, "UT_CFG_GROUP"), "g1");
    ck_assert_int_eq(cJSON_GetObjectItem(json, "UT_CFG_PORT")->valueint, 9100);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(json, "UT_CFG_DEBUG")));
    ck_assert_str_eq(json_str(json, "UT_CFG_LEVEL"), "info");
    ck_assert_int_eq(cJSON_GetObjectItem(json, "UT_CFG_TIMEOUT")->valueint, 10000);
    ck_assert_str_eq(json_str(json, "UT_CFG_PASSWORD"), "***");
    ck_assert_str_eq(json_str(json, "UT_CFG_TOKEN"), "***");
    ck_assert_ptr_null(strstr(raw, "default-pass-xyz"));
    ck_assert_ptr_null(strstr(raw, "tok-secret-abc"));
    cJSON_Delete(json);
    free(raw);
    chat_cfg_free(table, &cfg);
}
END_TEST

START_TEST(test_free_partial)
{
    /* The timeout (6th entry) fails: the strings before it are loaded, later fields untouched. */
    setenv("UT_CFG_TIMEOUT", "forever", 1);
    test_cfg_t cfg = {0};
    cfg.timeout_ms = -42;
    const char *bad = NULL;
    char why[128];
    ck_assert_int_eq(chat_cfg_load_env(table, &cfg, &bad, why, sizeof why), CHAT_ERR_CONFIG);
    ck_assert_str_eq(bad, "UT_CFG_TIMEOUT");
    ck_assert_str_eq(cfg.brokers, "127.0.0.1:9092");
    ck_assert_str_eq(cfg.level, "info");
    ck_assert_int_eq(cfg.timeout_ms, -42);
    ck_assert_ptr_null(cfg.password);
    ck_assert_ptr_null(cfg.token);
    chat_cfg_free(table, &cfg); /* ASan reports a leak or a bad free here */
    ck_assert_ptr_null(cfg.brokers);
    ck_assert_ptr_null(cfg.group);
    ck_assert_ptr_null(cfg.level);
    chat_cfg_free(table, &cfg); /* twice is harmless */
    chat_cfg_free(table, NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_environment_overrides);
    tcase_add_test(tc, test_string);
    tcase_add_test(tc, test_integer);
    tcase_add_test(tc, test_integer_extremes);
    tcase_add_test(tc, test_max_text_chars_bounded_by_codec);
    tcase_add_test(tc, test_duration);
    tcase_add_test(tc, test_bool);
    tcase_add_test(tc, test_enum);
    tcase_add_test(tc, test_bad_default);
    tcase_add_test(tc, test_failure_logs_variable);
    tcase_add_test(tc, test_failure_missing_required);
    tcase_add_test(tc, test_failure_hides_secret);
    tcase_add_test(tc, test_help_argument);
    tcase_add_test(tc, test_unknown_argument);
    tcase_add_test(tc, test_print_help);
    tcase_add_test(tc, test_log_configuration);
    tcase_add_test(tc, test_free_partial);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
