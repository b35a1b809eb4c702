/* JSON-lines logger. Each line is assembled in a stack buffer and written with one
 * write(2), so concurrent threads never interleave within a line. Lines longer than the
 * buffer are cut at a token boundary (strings are shortened and closed) and marked
 * "truncated":true, so every line stays valid JSON. */
#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 8192

static char log_service[64] = "chat";
static atomic_int log_level = CHAT_LOG_INFO;
static atomic_int log_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void chat_log_init(const char *service, chat_log_level_t level)
{
    if (service != NULL)
        snprintf(log_service, sizeof log_service, "%s", service);
    atomic_store(&log_level, (int)level);
}

void chat_log_set_level(chat_log_level_t level)
{
    atomic_store(&log_level, (int)level);
}

chat_err_t chat_log_level_parse(const char *name, chat_log_level_t *out)
{
    for (int i = CHAT_LOG_DEBUG; i <= CHAT_LOG_OFF; i++) {
        if (name != NULL && strcasecmp(name, level_names[i]) == 0) {
            *out = (chat_log_level_t)i;
            return CHAT_OK;
        }
    }
    return CHAT_ERR_INVALID;
}

bool chat_log_enabled(chat_log_level_t level)
{
    return level != CHAT_LOG_OFF && (int)level >= atomic_load(&log_level);
}

void chat_log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

typedef struct line {
    char buf[LOG_LINE_MAX];
    size_t len;
    bool truncated;
} line_t;

/* Bytes kept free at the end of every line for `,"truncated":true}` and the newline. */
#define LOG_TAIL_RESERVE 24

static size_t line_room(const line_t *l)
{
    return sizeof l->buf - LOG_TAIL_RESERVE - l->len;
}

/* Appends n bytes if they fit; otherwise appends nothing, marks the line truncated and
 * returns false. Never splits a token, so the line stays valid JSON. */
static bool line_put(line_t *l, const char *s, size_t n)
{
    if (n > line_room(l)) {
        l->truncated = true;
        return false;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    return true;
}

static bool line_printf(line_t *l, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return false;
    return line_put(l, tmp, (size_t)n);
}

/* Appends s as a JSON string literal, cutting it (still closed) if the line is full.
 * Bytes >= 0x80 pass through so UTF-8 stays readable; a cut may split a UTF-8 sequence,
 * which JSON parsers accept as replacement characters. Control characters are escaped. */
static void line_put_json_string(line_t *l, const char *s)
{
    if (!line_put(l, "\"", 1))
        return;
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        /* Keep one byte for the closing quote. */
        if (line_room(l) < 8) {
            l->truncated = true;
            break;
        }
        switch (*p) {
        case '"':
            line_put(l, "\\\"", 2);
            break;
        case '\\':
            line_put(l, "\\\\", 2);
            break;
        case '\n':
            line_put(l, "\\n", 2);
            break;
        case '\r':
            line_put(l, "\\r", 2);
            break;
        case '\t':
            line_put(l, "\\t", 2);
            break;
        default:
            if (*p < 0x20)
                line_printf(l, "\\u%04x", *p);
            else
                line_put(l, (const char *)p, 1);
        }
    }
    l->buf[l->len++] = '"';
}

/* Appends ,"key":value, or nothing (line marked truncated) if it does not fit whole. */
static void line_put_field(line_t *l, const chat_log_field_t *f)
{
    size_t mark = l->len;
    /* Keys are short identifiers; a key that does not fit drops the field. */
    if (!line_put(l, ",", 1) || line_room(l) < strlen(f->key) + 40) {
        l->len = mark;
        l->truncated = true;
        return;
    }
    line_put_json_string(l, f->key);
    line_put(l, ":", 1);
    bool ok = true;
    switch (f->type) {
    case CHAT_LOG_F_STR:
        if (f->v.s == NULL)
            ok = line_put(l, "null", 4);
        else
            line_put_json_string(l, f->v.s);
        break;
    case CHAT_LOG_F_INT:
        ok = line_printf(l, "%lld", f->v.i);
        break;
    case CHAT_LOG_F_DBL:
        /* JSON has no NaN or Infinity. */
        if (f->v.d != f->v.d || f->v.d > 1e308 || f->v.d < -1e308)
            ok = line_put(l, "null", 4);
        else
            ok = line_printf(l, "%.17g", f->v.d);
        break;
    case CHAT_LOG_F_BOOL:
        ok = f->v.b ? line_put(l, "true", 4) : line_put(l, "false", 5);
        break;
    case CHAT_LOG_F_END:
        break;
    }
    if (!ok)
        l->len = mark;
}

static void line_put_time(line_t *l)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char tmp[40];
    size_t n = strftime(tmp, sizeof tmp, "%Y-%m-%dT%H:%M:%S", &tm);
    line_put(l, tmp, n);
    line_printf(l, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* The line's head: time, level, service and message. */
static void line_begin(line_t *l, chat_log_level_t level, const char *msg)
{
    l->len = 0;
    l->truncated = false;
    line_put(l, "{\"ts\":\"", 7);
    line_put_time(l);
    line_put(l, "\",\"level\":\"", 11);
    line_put(l, level_names[level], strlen(level_names[level]));
    line_put(l, "\",\"svc\":", 8);
    line_put_json_string(l, log_service);
    line_put(l, ",\"msg\":", 7);
    line_put_json_string(l, msg);
}

/* Closes the line and writes it with one write(2) (more only if the pipe takes less). */
static void line_end_write(line_t *l)
{
    /* LOG_TAIL_RESERVE keeps room for this. */
    if (l->truncated) {
        memcpy(l->buf + l->len, ",\"truncated\":true", 17);
        l->len += 17;
    }
    memcpy(l->buf + l->len, "}\n", 2);
    l->len += 2;

    int fd = atomic_load(&log_fd);
    const char *p = l->buf;
    size_t left = l->len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        p += w;
        left -= (size_t)w;
    }
}

void chat_log__emit(chat_log_level_t level, const char *msg, ...)
{
    int saved_errno = errno;
    line_t l;
    line_begin(&l, level, msg);
    va_list ap;
    va_start(ap, msg);
    for (;;) {
        chat_log_field_t f = va_arg(ap, chat_log_field_t);
        if (f.type == CHAT_LOG_F_END)
            break;
        if (f.key != NULL)
            line_put_field(&l, &f);
    }
    va_end(ap);
    line_end_write(&l);
    errno = saved_errno;
}

void chat_log_fields(chat_log_level_t level, const char *msg, const chat_log_field_t *fields,
                     size_t n)
{
    if (!chat_log_enabled(level))
        return;
    int saved_errno = errno;
    line_t l;
    line_begin(&l, level, msg);
    for (size_t i = 0; i < n; i++) {
        if (fields[i].type != CHAT_LOG_F_END && fields[i].key != NULL)
            line_put_field(&l, &fields[i]);
    }
    line_end_write(&l);
    errno = saved_errno;
}
