/* Fuzz target webpush: the Web Push subscription keys as a browser (through the client's
 * push_subscribe frame) gives them (common/webpush.c: base64url, padded or not; p256dh an
 * uncompressed point on P-256, auth 16 bytes), the VAPID private key of the configuration,
 * and the endpoint URL the VAPID audience is taken from. The first byte picks: 0-5 keys
 * (p256dh and auth split at the first NUL), 6 a VAPID private key, 7 an endpoint (with a
 * fixed key pair). */
#include "common/webpush.h"
#include "tests/fuzz/fuzz.h"

static chat_vapid_t *vapid;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    char *priv = NULL, *pub = NULL;
    char err[128];
    if (chat_vapid_generate(&priv, &pub) != CHAT_OK ||
        chat_vapid_load(priv, &vapid, err, sizeof err) != CHAT_OK)
        abort();
    free(priv);
    free(pub);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mode = fuzz_take_byte(&data, &size) % 8;
    char err[256];
    if (mode < 6) {
        char *p256dh = fuzz_take_str(&data, &size);
        char *auth = fuzz_strndup(data, size);
        chat_webpush_keys_t keys;
        err[0] = '\0';
        if (chat_webpush_keys_parse(p256dh, auth, &keys, err, sizeof err) == CHAT_OK)
            FUZZ_ASSERT(keys.p256dh[0] == 0x04, "p256dh not uncompressed");
        else
            FUZZ_ASSERT(err[0] != '\0', "refused keys without a reason");
        free(p256dh);
        free(auth);
    } else if (mode == 6) {
        char *priv = fuzz_strndup(data, size);
        chat_vapid_t *v = NULL;
        if (chat_vapid_load(priv, &v, err, sizeof err) == CHAT_OK) {
            FUZZ_ASSERT(chat_vapid_public_b64(v) != NULL, "no public key");
            chat_vapid_free(v);
        }
        free(priv);
    } else {
        char *endpoint = fuzz_strndup(data, size);
        char *header = NULL;
        if (chat_vapid_authorization(vapid, endpoint, "mailto:ops@example.com", 1700000000,
                                     &header) == CHAT_OK) {
            FUZZ_ASSERT(strncmp(header, "vapid t=", 8) == 0, "header %s", header);
            free(header);
        }
        free(endpoint);
    }
    return 0;
}
