/* Fuzz target notify: what the notify service reads from outside (services/notify): the
 * Retry-After header of a push service's or a webhook endpoint's answer (delay-seconds or an
 * HTTP date), a message text searched for a user's mention and cut for a push payload, a
 * From/To value's address and a text escaped into the digest's HTML. The first byte picks the
 * user name length for the mention (the name is the input's first bytes). */
#include <cjson/cJSON.h>

#include "services/notify/email.h"
#include "services/notify/pipeline.h"
#include "services/notify/push.h"
#include "services/notify/retry.h"
#include "tests/fuzz/fuzz.h"

#define NOW_MS 1700000000000LL

FUZZ_QUIET_INIT

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t ulen = fuzz_take_byte(&data, &size) % 16;
    char *s = fuzz_strndup(data, size);

    int64_t ms = ns_retry_after_ms(s, NOW_MS);
    FUZZ_ASSERT(ms >= -1, "retry after %lld", (long long)ms);

    char user[16];
    size_t n = ulen < size ? ulen : size;
    memcpy(user, data, n);
    user[n] = '\0';
    (void)nf_mentions(s, user);

    for (size_t max = 0; max <= 200; max += 100) {
        size_t cut = ns_utf8_prefix(s, max);
        FUZZ_ASSERT(cut <= strlen(s), "prefix %zu of %zu bytes", cut, strlen(s));
    }
    ns_push_msg_t m = {.tenant = "acme",
                       .room = "general",
                       .id = "65f1c0ffee0123456789abcd",
                       .from = "alice",
                       .name = s,
                       .text = s,
                       .seq = 1,
                       .count = 2,
                       .ts = 3};
    size_t len = 0;
    char *payload = ns_push_payload(&m, &len);
    if (payload != NULL) {
        cJSON *j = cJSON_ParseWithLength(payload, len);
        FUZZ_ASSERT(j != NULL, "push payload is not JSON: %s", payload);
        cJSON_Delete(j);
        free(payload);
    }

    char *addr = ns_email_address(s);
    if (addr != NULL) {
        FUZZ_ASSERT(strlen(addr) <= strlen(s), "address longer than the value");
        free(addr);
    }
    char *html = ns_html_escape(s);
    if (html != NULL) {
        FUZZ_ASSERT(strpbrk(html, "<>\"'") == NULL, "unescaped in %s", html);
        free(html);
    }
    free(s);
    return 0;
}
