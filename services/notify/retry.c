/* Retry schedules and Retry-After (see retry.h). */
#include "services/notify/retry.h"

#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct {
    const char *suffix;
    int64_t ms;
} units[] = {
    {"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
};

/* One duration of len bytes at s into *ms. False if it is not one. */
static bool duration_parse(const char *s, size_t len, int64_t *ms)
{
    char buf[32];
    while (len > 0 && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    if (len == 0 || len >= sizeof buf || !isdigit((unsigned char)*s))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    char *end = NULL;
    long long n = strtoll(buf, &end, 10);
    if (errno != 0 || n <= 0)
        return false;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            if (n > INT64_MAX / units[i].ms)
                return false;
            *ms = n * units[i].ms;
            return true;
        }
    }
    return false;
}

chat_err_t ns_schedule_parse(const char *text, ns_schedule_t *out, char *errbuf, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (text == NULL || *text == '\0') {
        snprintf(errbuf, errlen, "empty schedule");
        return CHAT_ERR_CONFIG;
    }
    const char *p = text;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (out->n == NS_SCHEDULE_MAX) {
            snprintf(errbuf, errlen, "more than %d delays", NS_SCHEDULE_MAX);
            return CHAT_ERR_CONFIG;
        }
        if (!duration_parse(p, len, &out->delays_ms[out->n])) {
            snprintf(errbuf, errlen, "delay %zu is not a duration (e.g. 500ms, 5s, 2m, 1h)",
                     out->n + 1);
            return CHAT_ERR_CONFIG;
        }
        out->n++;
        if (comma == NULL)
            return CHAT_OK;
        p = comma + 1;
    }
}

int64_t ns_schedule_delay(const ns_schedule_t *s, int64_t failures, double jitter, double rnd)
{
    if (failures < 1 || (size_t)failures > s->n)
        return -1;
    double d = (double)s->delays_ms[failures - 1] * (1.0 + jitter * (2.0 * rnd - 1.0));
    return d < 1.0 ? 1 : (int64_t)d;
}

int64_t ns_retry_after_ms(const char *value, int64_t now_ms)
{
    if (value == NULL)
        return -1;
    while (isspace((unsigned char)*value))
        value++;
    if (isdigit((unsigned char)*value)) {
        char *end = NULL;
        errno = 0;
        long long secs = strtoll(value, &end, 10);
        while (isspace((unsigned char)*end))
            end++;
        if (errno != 0 || *end != '\0' || secs > INT64_MAX / 1000)
            return -1;
        return secs * 1000;
    }
    /* IMF-fixdate only: the form RFC 9110 requires senders to use. */
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    char wday[4], mon[4], zone[4];
    int day, year, hh, mm, ss, used = 0;
    if (sscanf(value, "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d %3[A-Z]%n", wday, &day, mon,
               &year, &hh, &mm, &ss, zone, &used) != 8 ||
        strcmp(zone, "GMT") != 0)
        return -1;
    const char *end = value + used;
    while (isspace((unsigned char)*end))
        end++;
    const char *m = strstr(months, mon);
    if (*end != '\0' || m == NULL || (m - months) % 3 != 0 || day < 1 || day > 31 || hh > 23 ||
        mm > 59 || ss > 60)
        return -1;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = year - 1900;
    tm.tm_mon = (int)((m - months) / 3);
    tm.tm_mday = day;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    time_t at = timegm(&tm);
    if (at == (time_t)-1)
        return -1;
    int64_t ms = (int64_t)at * 1000 - now_ms;
    return ms > 0 ? ms : 0;
}
