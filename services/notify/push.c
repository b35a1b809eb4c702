/* Web Push payloads and outcomes (see push.h). */
#include "services/notify/push.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/json.h"

size_t ns_utf8_prefix(const char *s, size_t max_chars)
{
    size_t i = 0, chars = 0;
    while (s[i] != '\0' && chars < max_chars) {
        unsigned char c = (unsigned char)s[i];
        size_t n = c < 0x80             ? 1
                   : (c & 0xe0) == 0xc0 ? 2
                   : (c & 0xf0) == 0xe0 ? 3
                   : (c & 0xf8) == 0xf0 ? 4
                                        : 1;
        size_t k = 1;
        while (k < n && ((unsigned char)s[i + k] & 0xc0) == 0x80)
            k++;
        i += k; /* a truncated sequence ends where its continuation bytes do */
        chars++;
    }
    return i;
}

/* The payload with the text cut to max_chars characters. */
static char *payload_with(const ns_push_msg_t *m, size_t max_chars, size_t *len)
{
    const char *text = m->text != NULL ? m->text : "";
    size_t cut = ns_utf8_prefix(text, max_chars);
    char *t = malloc(cut + 1);
    cJSON *o = cJSON_CreateObject();
    char *out = NULL;
    if (t != NULL && o != NULL) {
        memcpy(t, text, cut);
        t[cut] = '\0';
        bool ok = cJSON_AddStringToObject(o, "type", "message") != NULL &&
                  cJSON_AddStringToObject(o, "tenant", m->tenant) != NULL &&
                  cJSON_AddStringToObject(o, "room", m->room) != NULL &&
                  chat_json_add_int(o, "seq", m->seq) &&
                  cJSON_AddStringToObject(o, "id", m->id != NULL ? m->id : "") != NULL &&
                  cJSON_AddStringToObject(o, "from", m->from != NULL ? m->from : "") != NULL &&
                  (m->name == NULL || m->name[0] == '\0' ||
                   cJSON_AddStringToObject(o, "name", m->name) != NULL) &&
                  cJSON_AddStringToObject(o, "text", t) != NULL &&
                  chat_json_add_int(o, "count", m->count) && chat_json_add_int(o, "ts", m->ts);
        if (ok)
            out = cJSON_PrintUnformatted(o);
    }
    free(t);
    cJSON_Delete(o);
    if (out != NULL)
        *len = strlen(out);
    return out;
}

/* The characters of s that end within its first bytes. */
static size_t chars_within(const char *s, size_t bytes)
{
    size_t chars = 0;
    for (size_t used = 0;;) {
        size_t next = ns_utf8_prefix(s + used, 1);
        if (next == 0 || used + next > bytes)
            return chars;
        used += next;
        chars++;
    }
}

char *ns_push_payload(const ns_push_msg_t *m, size_t *len)
{
    const char *text = m->text != NULL ? m->text : "";
    size_t max = NS_PUSH_TEXT_MAX_CHARS;
    for (;;) {
        char *out = payload_with(m, max, len);
        if (out == NULL || *len <= NS_PUSH_PAYLOAD_MAX || max == 0)
            return out;
        free(out);
        /* Multi-byte characters or escapes made it too long: the text loses at least as many
         * bytes as the whole is over (each byte of text is at least a byte of JSON), and the
         * loop checks again. */
        size_t over = *len - NS_PUSH_PAYLOAD_MAX;
        size_t bytes = ns_utf8_prefix(text, max);
        size_t fewer = bytes > over ? chars_within(text, bytes - over) : 0;
        max = fewer < max ? fewer : max - 1;
    }
}

char *ns_push_close_payload(const char *tenant, const char *room, int64_t seq, size_t *len)
{
    cJSON *o = cJSON_CreateObject();
    char *out = NULL;
    if (o != NULL && cJSON_AddStringToObject(o, "type", "close") != NULL &&
        cJSON_AddStringToObject(o, "tenant", tenant) != NULL &&
        cJSON_AddStringToObject(o, "room", room) != NULL && chat_json_add_int(o, "seq", seq))
        out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (out != NULL)
        *len = strlen(out);
    return out;
}

ns_push_outcome_t ns_push_judge(long status, bool refused)
{
    if (refused)
        return NS_PUSH_FAILED;
    if (status == 200 || status == 201 || status == 202)
        return NS_PUSH_SENT;
    if (status == 404 || status == 410)
        return NS_PUSH_GONE;
    if (status == 0 || status == 429 || (status >= 500 && status <= 599))
        return NS_PUSH_RETRY;
    return NS_PUSH_FAILED;
}

const char *ns_push_outcome_name(ns_push_outcome_t o)
{
    static const char *const names[] = {"sent", "gone", "retry", "failed"};
    return (unsigned)o < sizeof names / sizeof names[0] ? names[o] : "failed";
}
