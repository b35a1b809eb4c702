/* The email digest's message text (see email.h). */
#include "services/notify/email.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A growing string; failed stays true after the first allocation failure. */
typedef struct buf {
    char *s;
    size_t len, cap;
    bool failed;
} buf_t;

static void buf_add(buf_t *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap > 0 ? b->cap : 1024;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *grown = realloc(b->s, cap);
        if (grown == NULL) {
            b->failed = true;
            return;
        }
        b->s = grown;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void buf_str(buf_t *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(buf_t *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        buf_add(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (big == NULL) {
        b->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf_add(b, big, (size_t)n);
    free(big);
}

/* The base64 of s in lines of 76 characters, each ended by CRLF (RFC 2045). */
static void buf_base64(buf_t *b, const char *s, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *u = (const unsigned char *)s;
    size_t col = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)u[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)u[i + 1] << 8;
        if (i + 2 < n)
            v |= u[i + 2];
        char q[4] = {tab[(v >> 18) & 63], tab[(v >> 12) & 63], i + 1 < n ? tab[(v >> 6) & 63] : '=',
                     i + 2 < n ? tab[v & 63] : '='};
        buf_add(b, q, 4);
        col += 4;
        if (col == 76) {
            buf_add(b, "\r\n", 2);
            col = 0;
        }
    }
    if (col > 0)
        buf_add(b, "\r\n", 2);
}

char *ns_html_escape(const char *s)
{
    buf_t b = {0};
    buf_add(&b, "", 0);
    for (const char *p = s != NULL ? s : ""; *p != '\0'; p++) {
        switch (*p) {
        case '&':
            buf_str(&b, "&amp;");
            break;
        case '<':
            buf_str(&b, "&lt;");
            break;
        case '>':
            buf_str(&b, "&gt;");
            break;
        case '"':
            buf_str(&b, "&quot;");
            break;
        case '\'':
            buf_str(&b, "&#39;");
            break;
        default:
            buf_add(&b, p, 1);
        }
    }
    if (b.failed) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

char *ns_email_address(const char *value)
{
    if (value == NULL)
        return NULL;
    const char *lt = strrchr(value, '<');
    const char *start = value, *end = value + strlen(value);
    if (lt != NULL) {
        const char *gt = strchr(lt, '>');
        if (gt == NULL)
            return NULL;
        start = lt + 1;
        end = gt;
    }
    while (start < end && (*start == ' ' || *start == '\t'))
        start++;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (end == start || memchr(start, '@', (size_t)(end - start)) == NULL)
        return NULL;
    char *a = malloc((size_t)(end - start) + 1);
    if (a != NULL) {
        memcpy(a, start, (size_t)(end - start));
        a[end - start] = '\0';
    }
    return a;
}

size_t ns_email_count(const ns_email_t *e)
{
    size_t n = 0;
    for (size_t i = 0; i < e->nrooms; i++)
        n += e->rooms[i].n;
    return n;
}

static bool header_safe(const char *s)
{
    return s != NULL && *s != '\0' && strpbrk(s, "\r\n") == NULL;
}

/* "HH:MM" UTC of ts (ms). */
static void time_of(int64_t ts, char out[16])
{
    time_t t = (time_t)(ts / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 16, "%H:%M", &tm);
}

/* Who wrote m: "Name (id)", or the id alone. */
static void who(buf_t *b, const ns_email_msg_t *m)
{
    if (m->name != NULL && m->name[0] != '\0')
        buf_printf(b, "%s (%s)", m->name, m->from != NULL ? m->from : "");
    else
        buf_str(b, m->from != NULL ? m->from : "");
}

static void plain_part(buf_t *b, const ns_email_t *e, size_t count)
{
    buf_printf(b, "You have %zu unread message%s in %s.\r\n", count, count == 1 ? "" : "s",
               e->tenant);
    for (size_t i = 0; i < e->nrooms; i++) {
        const ns_email_room_t *r = &e->rooms[i];
        buf_printf(b, "\r\n#%s\r\n", r->room);
        for (size_t k = 0; k < r->n; k++) {
            char hm[16];
            time_of(r->msgs[k].ts, hm);
            buf_printf(b, "  [%s UTC] ", hm);
            who(b, &r->msgs[k]);
            buf_str(b, ": ");
            /* Line breaks of the text stay in the text, as CRLF. */
            for (const char *p = r->msgs[k].text != NULL ? r->msgs[k].text : ""; *p; p++) {
                if (*p == '\n')
                    buf_str(b, "\r\n    ");
                else if (*p != '\r')
                    buf_add(b, p, 1);
            }
            buf_str(b, "\r\n");
        }
    }
}

/* Appends s HTML-escaped. */
static void buf_html(buf_t *b, const char *s)
{
    char *h = ns_html_escape(s != NULL ? s : "");
    if (h == NULL) {
        b->failed = true;
        return;
    }
    buf_str(b, h);
    free(h);
}

static void html_part(buf_t *b, const ns_email_t *e, size_t count)
{
    buf_str(b, "<!DOCTYPE html>\r\n<html><head><meta charset=\"utf-8\"></head><body>\r\n<p>");
    buf_printf(b, "You have %zu unread message%s in ", count, count == 1 ? "" : "s");
    buf_html(b, e->tenant);
    buf_str(b, ".</p>\r\n");
    for (size_t i = 0; i < e->nrooms; i++) {
        const ns_email_room_t *r = &e->rooms[i];
        buf_str(b, "<h3>#");
        buf_html(b, r->room);
        buf_str(b, "</h3>\r\n<ul>\r\n");
        for (size_t k = 0; k < r->n; k++) {
            const ns_email_msg_t *m = &r->msgs[k];
            char hm[16];
            time_of(m->ts, hm);
            buf_printf(b, "<li><small>%s UTC</small> <b>", hm);
            buf_html(b, m->name != NULL && m->name[0] != '\0' ? m->name : m->from);
            buf_str(b, "</b>: ");
            buf_html(b, m->text);
            buf_str(b, "</li>\r\n");
        }
        buf_str(b, "</ul>\r\n");
    }
    buf_str(b, "</body></html>\r\n");
}

char *ns_email_render(const ns_email_t *e, size_t *len)
{
    if (!header_safe(e->from) || !header_safe(e->to) || !header_safe(e->boundary) ||
        !header_safe(e->message_id) || e->tenant == NULL)
        return NULL;
    size_t count = ns_email_count(e);
    char date[64];
    time_t t = (time_t)(e->now_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);

    buf_t plain = {0}, html = {0}, out = {0};
    plain_part(&plain, e, count);
    html_part(&html, e, count);
    buf_printf(&out,
               "From: %s\r\nTo: %s\r\nSubject: %zu unread message%s\r\nDate: %s\r\n"
               "Message-ID: %s\r\nMIME-Version: 1.0\r\n"
               "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n",
               e->from, e->to, count, count == 1 ? "" : "s", date, e->message_id, e->boundary);
    buf_printf(&out,
               "--%s\r\nContent-Type: text/plain; charset=UTF-8\r\n"
               "Content-Transfer-Encoding: base64\r\n\r\n",
               e->boundary);
    if (!plain.failed)
        buf_base64(&out, plain.s != NULL ? plain.s : "", plain.len);
    buf_printf(&out,
               "--%s\r\nContent-Type: text/html; charset=UTF-8\r\n"
               "Content-Transfer-Encoding: base64\r\n\r\n",
               e->boundary);
    if (!html.failed)
        buf_base64(&out, html.s != NULL ? html.s : "", html.len);
    buf_printf(&out, "--%s--\r\n", e->boundary);
    bool failed = plain.failed || html.failed || out.failed;
    free(plain.s);
    free(html.s);
    if (failed) {
        free(out.s);
        return NULL;
    }
    *len = out.len;
    return out.s;
}
