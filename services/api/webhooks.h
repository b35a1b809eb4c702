/* The api's webhook endpoints (webhooks.c: /v1/webhooks...; documents in MongoDB `webhooks`,
 * docs/notify.md) and users' notification settings (notifications.c): the pure parts,
 * unit-tested: request bodies, ids, the secrets of a rotation, an endpoint as the tenant sees
 * it, the test event. */
#ifndef CHAT_API_WEBHOOKS_H
#define CHAT_API_WEBHOOKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <bson/bson.h>
#include <cjson/cJSON.h>

#include "common/egress.h"
#include "common/whsign.h"

#define API_WEBHOOKS_MAX 10             /* endpoints of a tenant */
#define API_WEBHOOK_ID_LEN 25           /* "wh_" + 22 base64url characters of 16 random bytes */
#define API_WEBHOOK_DESCRIPTION_MAX 256 /* characters */
#define API_WEBHOOK_URL_MAX 2048        /* bytes, as chat_egress_url_check allows */
#define API_WEBHOOK_ROTATION_MS (24LL * 3600 * 1000) /* an old secret signs this long */
#define API_WEBHOOK_TEST_TIMEOUT_MS 10000            /* POST .../test waits this long */
#define API_WEBHOOK_TEST_TYPE "webhook.test"
#define API_NOTIFY_PREFS_MAX 1000 /* preferences GET .../notifications lists */

/* How a delivery went, the label of chat_api_webhook_deliveries_total: delivered (2xx), worth
 * retrying (no answer, 408, 429, 5xx: what notify retries), or failed for good (another
 * status, or an address the egress policy refused). */
typedef enum api_webhook_outcome {
    API_WEBHOOK_OK,
    API_WEBHOOK_RETRY,
    API_WEBHOOK_FAILED,
    API_WEBHOOK_OUTCOMES
} api_webhook_outcome_t;

extern const char *const api_webhook_outcome_names[API_WEBHOOK_OUTCOMES];

/* The outcome of an attempt that got HTTP status (0: none) and whether the egress guard
 * refused the address. */
api_webhook_outcome_t api_webhook_outcome(long status, bool refused);

/* A webhook body (POST: url and events required; PATCH: everything optional). Strings are
 * borrowed from the body. */
typedef struct api_webhook_input {
    const char *url; /* NULL: not given */
    unsigned events; /* CHAT_WH_* bits; 0: not given */
    bool has_enabled;
    bool enabled;
    bool has_description;
    const char *description; /* NULL with has_description: cleared (null) */
} api_webhook_input_t;

/* Reads a webhook body under policy: url (chat_egress_url_check), events (1..6 distinct names
 * of chat_webhook_event_parse), enabled (boolean), description (at most 256 characters without
 * control characters, or null). create: url and events required, enabled defaults to true.
 * Returns false with the reason, naming the field ("events[1]: unknown event type"), in error.
 * Unknown fields are the caller's (api_body_fields). */
bool api_webhook_parse(const cJSON *body, bool create, const chat_egress_policy_t *policy,
                       api_webhook_input_t *out, char *error, size_t errlen);

/* A new endpoint id "wh_<22 base64url characters>" into id (API_WEBHOOK_ID_LEN + 1 bytes).
 * False if the random source failed. */
bool api_webhook_id_new(char id[API_WEBHOOK_ID_LEN + 1]);

/* True if s has the form of an endpoint id (so that anything else is 404 without a query). */
bool api_webhook_id_valid(const char *s);

/* The event names of bits, in the order of chat_webhook_event_t, as a new JSON array. */
cJSON *api_webhook_events_json(unsigned bits);

/* The secrets of an endpoint as they are after a rotation at now_ms: secret (the new one,
 * until null) first, then the endpoint's current secret (the stored one whose until is null,
 * else the newest) signing until now_ms + API_WEBHOOK_ROTATION_MS; older ones are dropped,
 * so there are at most CHAT_WHSIGN_SECRETS_MAX. Appended to out (an empty array being built)
 * as {secret, until}. doc is the stored endpoint. False if out of memory. */
bool api_webhook_secrets_rotated(const bson_t *doc, const char *secret, int64_t now_ms,
                                 bson_t *out);

/* The secrets of doc that still sign at now_ms (until null or later than now), newest first:
 * up to CHAT_WHSIGN_SECRETS_MAX pointers into doc in secrets. Returns how many. */
size_t api_webhook_secrets_live(const bson_t *doc, int64_t now_ms,
                                const char *secrets[CHAT_WHSIGN_SECRETS_MAX]);

/* A `webhooks` document as the tenant sees it: {id, url, events, enabled, description,
 * created, updated, disabled_reason, failing_since} (never the secrets). NULL if a field it
 * needs is missing, or out of memory. */
cJSON *api_webhook_json(const bson_t *doc);

/* The body of the test event: {"type": "webhook.test", "tenant", "data": {"endpoint"}, "ts"}
 * (malloc'd JSON), NULL if out of memory. */
char *api_webhook_test_body(const char *tenant, const char *endpoint, int64_t now_ms);

/* The position a page of endpoints ends at (by created, then id, ascending), as the raw
 * cursor "<created>.<id>" and back. Parse returns false for anything but what format wrote. */
void api_webhook_pos_format(int64_t created, const char *id, char *buf, size_t len);
bool api_webhook_pos_parse(const char *raw, int64_t *created, char id[API_WEBHOOK_ID_LEN + 1]);

#endif
