/* Table-driven configuration from environment variables: parsing and bounds checks per
 * type, the --help table and the start-up log line. Parsing is strict (no trailing
 * characters, no silent clamping) so that a typo stops the service instead of running it
 * with a surprising value. */
#include "common/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

#define CFG_REASON_MAX 256
#define CFG_SECRET_MASK "***"

typedef union cfg_value {
    char *s;
    long long i;
    bool b;
} cfg_value_t;

static const char *const type_names[] = {
    [CHAT_CFG_T_END] = "",      [CHAT_CFG_T_STRING] = "string", [CHAT_CFG_T_INTEGER] = "integer",
    [CHAT_CFG_T_BOOL] = "bool", [CHAT_CFG_T_ENUM] = "enum",     [CHAT_CFG_T_DURATION] = "duration",
};

static const struct {
    const char *text;
    bool value;
} bool_words[] = {
    {"true", true},   {"1", true},  {"yes", true}, {"on", true},
    {"false", false}, {"0", false}, {"no", false}, {"off", false},
};

static const struct {
    const char *suffix;
    long long ms;
} duration_units[] = {
    {"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000},
};

static void *field_at(void *cfg, const chat_cfg_entry_t *e)
{
    return (char *)cfg + e->offset;
}

static const void *field_at_const(const void *cfg, const chat_cfg_entry_t *e)
{
    return (const char *)cfg + e->offset;
}

/* Writes the reason into why and returns CHAT_ERR_CONFIG, for `return fail(...)`. */
static chat_err_t fail(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return CHAT_ERR_CONFIG;
}

static chat_err_t out_of_memory(char *why, size_t whylen)
{
    snprintf(why, whylen, "out of memory");
    return CHAT_ERR_NOMEM;
}

/* ---- parsers: CHAT_OK and *v, or CHAT_ERR_CONFIG / CHAT_ERR_NOMEM and a reason in why ---- */

/* Decimal digits with an optional sign (the sign only if signed_ok). strtoll alone would
 * accept leading blanks and an empty string. *end stays NULL unless digits were found, so
 * callers tell "not a number" (NULL) from overflow (set). */
static bool parse_decimal(const char *text, bool signed_ok, long long *out, char **end)
{
    const char *digits = text;
    if (signed_ok && (*digits == '-' || *digits == '+'))
        digits++;
    if (!isdigit((unsigned char)*digits))
        return false;
    errno = 0;
    *out = strtoll(text, end, 10);
    return errno != ERANGE;
}

static chat_err_t bounds_check(const chat_cfg_entry_t *e, long long v, const char *unit, char *why,
                               size_t whylen)
{
    if (v < e->min || v > e->max)
        return fail(why, whylen, "out of range [%lld, %lld]%s", e->min, e->max, unit);
    return CHAT_OK;
}

static chat_err_t parse_integer(const chat_cfg_entry_t *e, const char *text, cfg_value_t *v,
                                char *why, size_t whylen)
{
    char *end = NULL;
    if (!parse_decimal(text, true, &v->i, &end))
        return fail(why, whylen, end != NULL ? "integer overflow" : "not an integer");
    if (*end != '\0')
        return fail(why, whylen, "not an integer");
    return bounds_check(e, v->i, "", why, whylen);
}

static chat_err_t parse_duration(const chat_cfg_entry_t *e, const char *text, cfg_value_t *v,
                                 char *why, size_t whylen)
{
    char *end = NULL;
    long long n;
    if (!parse_decimal(text, false, &n, &end))
        return fail(why, whylen, end != NULL ? "duration overflow" : "not a duration");
    for (size_t i = 0; i < sizeof duration_units / sizeof duration_units[0]; i++) {
        if (strcmp(end, duration_units[i].suffix) != 0)
            continue;
        if (n > LLONG_MAX / duration_units[i].ms)
            return fail(why, whylen, "duration overflow");
        v->i = n * duration_units[i].ms;
        return bounds_check(e, v->i, " ms", why, whylen);
    }
    return fail(why, whylen, "not a duration (e.g. 250ms, 10s, 5m, 1h, or milliseconds)");
}

static chat_err_t parse_bool(const char *text, cfg_value_t *v, char *why, size_t whylen)
{
    for (size_t i = 0; i < sizeof bool_words / sizeof bool_words[0]; i++) {
        if (strcasecmp(text, bool_words[i].text) == 0) {
            v->b = bool_words[i].value;
            return CHAT_OK;
        }
    }
    return fail(why, whylen, "not a boolean (true/false, 1/0, yes/no, on/off)");
}

/* Matches case-insensitively but stores the choice as the table spells it, so callers can
 * compare with strcmp. */
static chat_err_t parse_enum(const chat_cfg_entry_t *e, const char *text, cfg_value_t *v, char *why,
                             size_t whylen)
{
    const char *choice = e->choices != NULL ? e->choices : "";
    size_t text_len = strlen(text);
    while (text_len > 0) {
        size_t len = strcspn(choice, "|");
        if (len == text_len && strncasecmp(choice, text, len) == 0) {
            v->s = strndup(choice, len);
            return v->s != NULL ? CHAT_OK : out_of_memory(why, whylen);
        }
        if (choice[len] == '\0')
            break;
        choice += len + 1;
    }
    return fail(why, whylen, "not one of %s", e->choices != NULL ? e->choices : "(no choices)");
}

static chat_err_t parse_value(const chat_cfg_entry_t *e, const char *text, cfg_value_t *v,
                              char *why, size_t whylen)
{
    switch (e->type) {
    case CHAT_CFG_T_STRING:
        v->s = strdup(text);
        return v->s != NULL ? CHAT_OK : out_of_memory(why, whylen);
    case CHAT_CFG_T_INTEGER:
        return parse_integer(e, text, v, why, whylen);
    case CHAT_CFG_T_BOOL:
        return parse_bool(text, v, why, whylen);
    case CHAT_CFG_T_ENUM:
        return parse_enum(e, text, v, why, whylen);
    case CHAT_CFG_T_DURATION:
        return parse_duration(e, text, v, why, whylen);
    case CHAT_CFG_T_END:
        break;
    }
    return fail(why, whylen, "unknown type in the configuration table");
}

static void value_store(const chat_cfg_entry_t *e, void *cfg, const cfg_value_t *v)
{
    void *field = field_at(cfg, e);
    switch (e->type) {
    case CHAT_CFG_T_STRING:
    case CHAT_CFG_T_ENUM:
        *(char **)field = v->s;
        break;
    case CHAT_CFG_T_INTEGER:
    case CHAT_CFG_T_DURATION:
        *(long long *)field = v->i;
        break;
    case CHAT_CFG_T_BOOL:
        *(bool *)field = v->b;
        break;
    case CHAT_CFG_T_END:
        break;
    }
}

/* Loads one entry from the environment (or its default). *text is the value that was
 * parsed (NULL if none). Returns CHAT_ERR_CONFIG or CHAT_ERR_NOMEM with a reason. */
static chat_err_t entry_load(const chat_cfg_entry_t *e, void *cfg, const char **text, char *why,
                             size_t whylen)
{
    const char *env = getenv(e->name);
    *text = env != NULL ? env : e->def;
    if (*text == NULL)
        return fail(why, whylen, "required variable is not set");
    /* An empty required string is as good as unset: "X=" usually means a forgotten value. */
    if (e->def == NULL && e->type == CHAT_CFG_T_STRING && (*text)[0] == '\0')
        return fail(why, whylen, "required variable is empty");
    cfg_value_t v;
    chat_err_t err = parse_value(e, *text, &v, why, whylen);
    if (err == CHAT_ERR_CONFIG && env == NULL) {
        char reason[CFG_REASON_MAX];
        snprintf(reason, sizeof reason, "%s", why);
        return fail(why, whylen, "bad default in the configuration table: %s", reason);
    }
    if (err == CHAT_OK)
        value_store(e, cfg, &v);
    return err;
}

/* Loads entries in table order and stops at the first failure, leaving later fields as
 * they were (so chat_cfg_free works on the partial result). */
static chat_err_t table_load(const chat_cfg_entry_t *table, void *out, const chat_cfg_entry_t **bad,
                             const char **bad_text, char *why, size_t whylen)
{
    *bad = NULL;
    *bad_text = NULL;
    why[0] = '\0';
    for (const chat_cfg_entry_t *e = table; e->name != NULL; e++) {
        chat_err_t err = entry_load(e, out, bad_text, why, whylen);
        if (err != CHAT_OK) {
            *bad = e;
            return err;
        }
    }
    *bad_text = NULL;
    return CHAT_OK;
}

/* Returns CHAT_OK, CHAT_ERR_CONFIG (bad or missing value) or CHAT_ERR_NOMEM. */
chat_err_t chat_cfg_load_env(const chat_cfg_entry_t *table, void *out, const char **bad_var,
                             char *errbuf, size_t errlen)
{
    char why[CFG_REASON_MAX];
    const chat_cfg_entry_t *bad;
    const char *bad_text;
    chat_err_t err = table_load(table, out, &bad, &bad_text, why, sizeof why);
    if (bad_var != NULL)
        *bad_var = bad != NULL ? bad->name : NULL;
    if (errbuf != NULL && errlen > 0)
        snprintf(errbuf, errlen, "%s", why);
    return err;
}

/* Logs the first argument that is not --help/-h. Returns true if all are known and sets
 * *help if one asked for help. */
static bool args_check(int argc, char **argv, bool *help)
{
    *help = false;
    for (int i = 1; i < argc && argv != NULL; i++) {
        if (argv[i] == NULL)
            continue;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            *help = true;
            continue;
        }
        chat_log_error("unknown command-line argument", CHAT_F_STR("arg", argv[i]),
                       CHAT_F_STR("hint", "configuration comes from environment variables, "
                                          "see --help"));
        return false;
    }
    return true;
}

chat_cfg_result_t chat_cfg_load(const chat_cfg_entry_t *table, void *out, int argc, char **argv,
                                const char *program, const char *summary)
{
    bool help;
    if (!args_check(argc, argv, &help))
        return CHAT_CFG_FAILED;
    if (program == NULL)
        program = argc > 0 && argv != NULL && argv[0] != NULL ? argv[0] : "service";
    if (help) {
        chat_cfg_print_help(table, stdout, program, summary);
        fflush(stdout);
        return CHAT_CFG_HELP;
    }
    char why[CFG_REASON_MAX];
    const chat_cfg_entry_t *bad;
    const char *text;
    chat_err_t err = table_load(table, out, &bad, &text, why, sizeof why);
    if (err == CHAT_OK)
        return CHAT_CFG_LOADED;
    if (bad->secret && text != NULL)
        text = CFG_SECRET_MASK;
    chat_log_error("bad configuration", CHAT_F_STR("var", bad->name), CHAT_F_STR("value", text),
                   CHAT_F_STR("reason", why), CHAT_F_ERR(err));
    return CHAT_CFG_FAILED;
}

/* ---- --help ---- */

/* "1h", "5m", "10s" or "250ms": the largest unit that divides ms exactly. */
static void duration_format(char *out, size_t len, long long ms)
{
    for (size_t i = sizeof duration_units / sizeof duration_units[0] - 1; i > 0; i--) {
        if (ms != 0 && ms % duration_units[i].ms == 0 && duration_units[i].ms > 1) {
            snprintf(out, len, "%lld%s", ms / duration_units[i].ms, duration_units[i].suffix);
            return;
        }
    }
    snprintf(out, len, "%lldms", ms);
}

enum { COL_NAME, COL_TYPE, COL_DEFAULT, COL_RANGE, COL_HELP, COL_COUNT };

/* The cells of one row of the help table. range holds storage for the range cell. */
static void help_row(const chat_cfg_entry_t *e, const char *cells[COL_COUNT], char *range,
                     size_t range_len)
{
    cells[COL_NAME] = e->name;
    cells[COL_TYPE] = type_names[e->type];
    if (e->def == NULL)
        cells[COL_DEFAULT] = "required";
    else if (e->secret)
        cells[COL_DEFAULT] = "(secret)";
    else
        cells[COL_DEFAULT] = e->def[0] != '\0' ? e->def : "\"\"";
    range[0] = '\0';
    if (e->type == CHAT_CFG_T_INTEGER) {
        snprintf(range, range_len, "%lld..%lld", e->min, e->max);
    } else if (e->type == CHAT_CFG_T_DURATION) {
        char lo[32], hi[32];
        duration_format(lo, sizeof lo, e->min);
        duration_format(hi, sizeof hi, e->max);
        snprintf(range, range_len, "%s..%s", lo, hi);
    } else if (e->type == CHAT_CFG_T_ENUM) {
        snprintf(range, range_len, "%s", e->choices != NULL ? e->choices : "");
    } else if (e->type == CHAT_CFG_T_BOOL) {
        snprintf(range, range_len, "true|false");
    }
    cells[COL_RANGE] = range;
    cells[COL_HELP] = e->help != NULL ? e->help : "";
}

static void help_print_row(FILE *f, const char *const cells[COL_COUNT], const int width[COL_COUNT])
{
    fputs("  ", f);
    for (int c = 0; c < COL_HELP; c++)
        fprintf(f, "%-*s  ", width[c], cells[c]);
    fprintf(f, "%s\n", cells[COL_HELP]);
}

void chat_cfg_print_help(const chat_cfg_entry_t *table, FILE *f, const char *program,
                         const char *summary)
{
    static const char *const header[COL_COUNT] = {"VARIABLE", "TYPE", "DEFAULT", "ALLOWED",
                                                  "DESCRIPTION"};
    const char *cells[COL_COUNT];
    char range[CFG_REASON_MAX];
    int width[COL_COUNT];
    for (int c = 0; c < COL_COUNT; c++)
        width[c] = (int)strlen(header[c]);
    for (const chat_cfg_entry_t *e = table; e->name != NULL; e++) {
        help_row(e, cells, range, sizeof range);
        for (int c = 0; c < COL_COUNT; c++) {
            int len = (int)strlen(cells[c]);
            width[c] = len > width[c] ? len : width[c];
        }
    }
    if (program == NULL)
        program = "service";
    fprintf(f, "%s\n\n", summary != NULL ? summary : program);
    fprintf(f, "Usage: %s [-h|--help]\n\n", program);
    fputs("Configuration comes from these environment variables. Durations take a unit (ms,\n"
          "s, m or h; a bare number is milliseconds); booleans take true/false, yes/no, on/off\n"
          "or 1/0.\n\n",
          f);
    help_print_row(f, header, width);
    for (const chat_cfg_entry_t *e = table; e->name != NULL; e++) {
        help_row(e, cells, range, sizeof range);
        help_print_row(f, cells, width);
    }
}

/* ---- start-up log and free ---- */

static chat_log_field_t log_field(const chat_cfg_entry_t *e, const void *cfg)
{
    const void *field = field_at_const(cfg, e);
    if (e->secret)
        return CHAT_F_STR(e->name, CFG_SECRET_MASK);
    switch (e->type) {
    case CHAT_CFG_T_STRING:
    case CHAT_CFG_T_ENUM:
        return CHAT_F_STR(e->name, *(char *const *)field);
    case CHAT_CFG_T_INTEGER:
    case CHAT_CFG_T_DURATION:
        return CHAT_F_INT(e->name, *(const long long *)field);
    case CHAT_CFG_T_BOOL:
        return CHAT_F_BOOL(e->name, *(const bool *)field);
    case CHAT_CFG_T_END:
        break;
    }
    return CHAT_F_END;
}

/* Durations are logged in milliseconds, secrets as "***". */
void chat_cfg_log(const chat_cfg_entry_t *table, const void *cfg)
{
    if (!chat_log_enabled(CHAT_LOG_INFO))
        return;
    size_t n = 0;
    while (table[n].name != NULL)
        n++;
    chat_log_field_t *f = calloc(n > 0 ? n : 1, sizeof *f);
    if (f == NULL) {
        chat_log_warn("configuration not logged: out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++)
        f[i] = log_field(&table[i], cfg);
    chat_log_fields(CHAT_LOG_INFO, "configuration", f, n);
    free(f);
}

void chat_cfg_free(const chat_cfg_entry_t *table, void *cfg)
{
    if (table == NULL || cfg == NULL)
        return;
    for (const chat_cfg_entry_t *e = table; e->name != NULL; e++) {
        if (e->type == CHAT_CFG_T_STRING || e->type == CHAT_CFG_T_ENUM) {
            char **field = field_at(cfg, e);
            free(*field);
            *field = NULL;
        }
    }
}
