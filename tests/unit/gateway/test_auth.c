/* Unit tests of services/gateway/auth: verification outcomes (valid, forged, expired,
 * unknown tenant, malformed, store failure), the tenant secret cache (hits for the TTL,
 * misses for their shorter TTL, store failures never cached) and concurrent misses of one
 * tenant sharing one lookup. The store is a fake lookup function. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "services/gateway/auth.h"
#include "tests/support/util.h"

#define NOW_MS 1800000000000LL /* the test's wall clock */
#define HIT_TTL 30000
#define MISS_TTL 5000

static int lookups;
static chat_err_t lookup_rc = CHAT_OK;

static chat_err_t fake_lookup(void *ud, const char *tenant, char **secret, size_t *len)
{
    (void)ud;
    lookups++;
    if (lookup_rc != CHAT_OK)
        return lookup_rc;
    if (strcmp(tenant, "acme") != 0)
        return CHAT_ERR_NOT_FOUND;
    *secret = strdup("acme-secret");
    *len = strlen("acme-secret");
    return CHAT_OK;
}

static char *sign(const char *tenant, const char *user, const char *secret, int64_t exp_s)
{
    chat_jwt_claims_t c;
    memset(&c, 0, sizeof c);
    strcpy(c.tenant, tenant);
    strcpy(c.user, user);
    c.exp = exp_s;
    char *token = NULL;
    ck_assert_int_eq(chat_jwt_sign(&c, secret, strlen(secret), &token), CHAT_OK);
    return token;
}

static gw_auth_t *auth;

static void setup(void)
{
    lookups = 0;
    lookup_rc = CHAT_OK;
    auth = gw_auth_new(HIT_TTL, MISS_TTL, fake_lookup, NULL);
    ck_assert_ptr_nonnull(auth);
}

static void teardown(void)
{
    gw_auth_free(auth);
}

static chat_err_t verify(const char *token, int64_t now_ms, char *reason)
{
    chat_jwt_claims_t claims;
    memset(&claims, 0, sizeof claims);
    chat_err_t err = gw_auth_verify(auth, token, now_ms, &claims, reason, GW_AUTH_REASON_MAX);
    if (err == CHAT_OK) {
        ck_assert_str_eq(claims.tenant, "acme");
        ck_assert_str_eq(claims.user, "alice");
    }
    chat_jwt_claims_clear(&claims);
    return err;
}

START_TEST(test_valid_token_and_cache_hit)
{
    char reason[GW_AUTH_REASON_MAX];
    char *t = sign("acme", "alice", "acme-secret", NOW_MS / 1000 + 60);
    ck_assert_int_eq(verify(t, NOW_MS, reason), CHAT_OK);
    ck_assert_int_eq(verify(t, NOW_MS + HIT_TTL - 1, reason), CHAT_OK);
    ck_assert_int_eq(lookups, 1);
    ck_assert_int_eq(verify(t, NOW_MS + HIT_TTL, reason), CHAT_OK); /* expired entry */
    ck_assert_int_eq(lookups, 2);
    free(t);
}
END_TEST

START_TEST(test_refusals)
{
    char reason[GW_AUTH_REASON_MAX];
    char *forged = sign("acme", "alice", "other-secret", NOW_MS / 1000 + 60);
    char *expired = sign("acme", "alice", "acme-secret", NOW_MS / 1000);
    char *unknown = sign("nobody", "alice", "acme-secret", NOW_MS / 1000 + 60);
    ck_assert_int_eq(verify(forged, NOW_MS, reason), CHAT_ERR_UNAUTHORIZED);
    ck_assert_int_eq(verify(expired, NOW_MS, reason), CHAT_ERR_UNAUTHORIZED);
    ck_assert_int_eq(verify(unknown, NOW_MS, reason), CHAT_ERR_UNAUTHORIZED);
    ck_assert_str_eq(reason, "unknown tenant");
    ck_assert_int_eq(verify("not-a-jwt", NOW_MS, reason), CHAT_ERR_UNAUTHORIZED);
    ck_assert_str_eq(reason, "malformed token");
    /* the reserved user of the server API's system messages */
    char *system = sign("acme", "system", "acme-secret", NOW_MS / 1000 + 60);
    ck_assert_int_eq(verify(system, NOW_MS, reason), CHAT_ERR_UNAUTHORIZED);
    ck_assert_str_eq(reason, "reserved user id");
    free(system);
    free(forged);
    free(expired);
    free(unknown);
}
END_TEST

START_TEST(test_miss_cached_briefly)
{
    char reason[GW_AUTH_REASON_MAX];
    char *t = sign("nobody", "alice", "x", NOW_MS / 1000 + 600);
    ck_assert_int_eq(verify(t, NOW_MS, reason), CHAT_ERR_UNAUTHORIZED);
    ck_assert_int_eq(verify(t, NOW_MS + MISS_TTL - 1, reason), CHAT_ERR_UNAUTHORIZED);
    ck_assert_int_eq(lookups, 1);
    ck_assert_int_eq(verify(t, NOW_MS + MISS_TTL, reason), CHAT_ERR_UNAUTHORIZED);
    ck_assert_int_eq(lookups, 2);
    free(t);
}
END_TEST

START_TEST(test_store_failure_not_cached)
{
    char reason[GW_AUTH_REASON_MAX];
    char *t = sign("acme", "alice", "acme-secret", NOW_MS / 1000 + 60);
    lookup_rc = CHAT_ERR_MONGO;
    ck_assert_int_eq(verify(t, NOW_MS, reason), CHAT_ERR_MONGO);
    lookup_rc = CHAT_OK;
    ck_assert_int_eq(verify(t, NOW_MS, reason), CHAT_OK);
    ck_assert_int_eq(lookups, 2);
    free(t);
}
END_TEST

/* The loop's check never looks up: it answers from the cache (secrets and misses) or says a
 * lookup is needed; the answers it gives agree with gw_auth_verify's. */
START_TEST(test_cached_only_never_looks_up)
{
    char reason[GW_AUTH_REASON_MAX];
    chat_jwt_claims_t claims = {0};
    char *t = sign("acme", "alice", "acme-secret", NOW_MS / 1000 + 60);
    char *forged = sign("acme", "alice", "other-secret", NOW_MS / 1000 + 60);
    char *unknown = sign("nobody", "alice", "x", NOW_MS / 1000 + 60);
    ck_assert_int_eq(gw_auth_verify_cached(auth, t, NOW_MS, &claims, reason, sizeof reason),
                     CHAT_ERR_TIMEOUT);
    ck_assert_int_eq(gw_auth_verify_cached(auth, unknown, NOW_MS, &claims, reason, sizeof reason),
                     CHAT_ERR_TIMEOUT);
    ck_assert_int_eq(lookups, 0);
    /* A malformed token needs no lookup to be refused. */
    ck_assert_int_eq(
        gw_auth_verify_cached(auth, "not-a-jwt", NOW_MS, &claims, reason, sizeof reason),
        CHAT_ERR_UNAUTHORIZED);
    ck_assert_int_eq(verify(t, NOW_MS, reason), CHAT_OK);
    ck_assert_int_eq(verify(unknown, NOW_MS, reason), CHAT_ERR_UNAUTHORIZED);
    ck_assert_int_eq(lookups, 2);
    ck_assert_int_eq(gw_auth_verify_cached(auth, t, NOW_MS + 1, &claims, reason, sizeof reason),
                     CHAT_OK);
    ck_assert_str_eq(claims.user, "alice");
    chat_jwt_claims_clear(&claims);
    ck_assert_int_eq(
        gw_auth_verify_cached(auth, forged, NOW_MS + 1, &claims, reason, sizeof reason),
        CHAT_ERR_UNAUTHORIZED);
    ck_assert_int_eq(
        gw_auth_verify_cached(auth, unknown, NOW_MS + 1, &claims, reason, sizeof reason),
        CHAT_ERR_UNAUTHORIZED);
    ck_assert_str_eq(reason, "unknown tenant");
    /* Expired cache entries are a lookup again, not a refusal. */
    ck_assert_int_eq(
        gw_auth_verify_cached(auth, t, NOW_MS + HIT_TTL, &claims, reason, sizeof reason),
        CHAT_ERR_TIMEOUT);
    ck_assert_int_eq(lookups, 2);
    free(t);
    free(forged);
    free(unknown);
}
END_TEST

/* ---- concurrent misses: a lookup that blocks until the test opens the gate ---- */

#define CONCURRENT 8

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static atomic_int gated_lookups;

static chat_err_t gated_lookup(void *ud, const char *tenant, char **secret, size_t *len)
{
    (void)ud;
    (void)tenant;
    atomic_fetch_add(&gated_lookups, 1);
    pthread_mutex_lock(&gate_lock);
    while (!gate_open)
        pthread_cond_wait(&gate_cond, &gate_lock);
    pthread_mutex_unlock(&gate_lock);
    if (lookup_rc != CHAT_OK)
        return lookup_rc;
    *secret = strdup("acme-secret");
    *len = strlen("acme-secret");
    return CHAT_OK;
}

typedef struct verifier {
    pthread_t thread;
    gw_auth_t *auth;
    const char *token;
    chat_err_t err;
} verifier_t;

static void *verifier_main(void *arg)
{
    verifier_t *v = arg;
    chat_jwt_claims_t claims;
    memset(&claims, 0, sizeof claims);
    char reason[GW_AUTH_REASON_MAX];
    v->err = gw_auth_verify(v->auth, v->token, NOW_MS, &claims, reason, sizeof reason);
    chat_jwt_claims_clear(&claims);
    return NULL;
}

/* CONCURRENT threads verify tokens of one uncached tenant at once; the store lookup is
 * held until all of them had time to miss. Returns how many lookups ran; errs gets each
 * thread's result. */
static int verify_concurrently(const char *token, chat_err_t *errs)
{
    gate_open = false;
    atomic_store(&gated_lookups, 0);
    gw_auth_t *a = gw_auth_new(HIT_TTL, MISS_TTL, gated_lookup, NULL);
    ck_assert_ptr_nonnull(a);
    verifier_t v[CONCURRENT];
    for (int i = 0; i < CONCURRENT; i++) {
        v[i] = (verifier_t){.auth = a, .token = token};
        ck_assert_int_eq(pthread_create(&v[i].thread, NULL, verifier_main, &v[i]), 0);
    }
    usleep(200 * 1000);
    pthread_mutex_lock(&gate_lock);
    gate_open = true;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
    for (int i = 0; i < CONCURRENT; i++) {
        pthread_join(v[i].thread, NULL);
        errs[i] = v[i].err;
    }
    gw_auth_free(a);
    return atomic_load(&gated_lookups);
}

START_TEST(test_concurrent_misses_share_one_lookup)
{
    char *t = sign("acme", "alice", "acme-secret", NOW_MS / 1000 + 60);
    chat_err_t errs[CONCURRENT];
    ck_assert_int_eq(verify_concurrently(t, errs), 1);
    for (int i = 0; i < CONCURRENT; i++)
        ck_assert_int_eq(errs[i], CHAT_OK);
    /* A store failure is shared as well (and still not cached). */
    lookup_rc = CHAT_ERR_MONGO;
    ck_assert_int_eq(verify_concurrently(t, errs), 1);
    for (int i = 0; i < CONCURRENT; i++)
        ck_assert_int_eq(errs[i], CHAT_ERR_MONGO);
    free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gateway_auth");
    TCase *tc = tcase_create("auth");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_valid_token_and_cache_hit);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_miss_cached_briefly);
    tcase_add_test(tc, test_store_failure_not_cached);
    tcase_add_test(tc, test_cached_only_never_looks_up);
    tcase_add_test(tc, test_concurrent_misses_share_one_lookup);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
