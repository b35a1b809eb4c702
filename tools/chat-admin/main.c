/* chat-admin: the operator's tool for a running platform. Creates the Kafka topics from the
 * topics file, waits until Kafka, MongoDB or Redis answer (scripts/up uses both), and
 * manages tenants. Connection settings come from the same CHAT_* variables as the services. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bus.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/contract.h"
#include "common/jwt.h"
#include "common/log.h"
#include "common/names.h"
#include "common/redis.h"
#include "common/store.h"
#include "common/tenant_settings.h"
#include "common/tenants.h"
#include "common/webpush.h"
#include "tools/chat-admin/lag.h"
#include "tools/chat-admin/topics_file.h"
#include "tools/client/chat_token.h"

typedef struct admin_cfg {
    char *kafka_brokers;
    char *mongo_uri;
    char *redis_url;
    char *log_level;
    char *topic_inbound; /* the platform topics, for lag serve */
    char *topic_messages;
    char *topic_deliver;
    char *topic_events;
    char *topic_moderation;
    char *topic_notify_dlq;
} admin_cfg_t;

static const chat_cfg_entry_t admin_cfg_table[] = {
    CHAT_CFG_KAFKA_BROKERS(admin_cfg_t, kafka_brokers),
    CHAT_CFG_MONGO_URI(admin_cfg_t, mongo_uri),
    CHAT_CFG_REDIS_URL(admin_cfg_t, redis_url),
    CHAT_CFG_LOG_LEVEL(admin_cfg_t, log_level),
    CHAT_CFG_TOPIC_INBOUND(admin_cfg_t, topic_inbound),
    CHAT_CFG_TOPIC_MESSAGES(admin_cfg_t, topic_messages),
    CHAT_CFG_TOPIC_DELIVER(admin_cfg_t, topic_deliver),
    CHAT_CFG_TOPIC_EVENTS(admin_cfg_t, topic_events),
    CHAT_CFG_TOPIC_MODERATION(admin_cfg_t, topic_moderation),
    CHAT_CFG_TOPIC_NOTIFY_DLQ(admin_cfg_t, topic_notify_dlq),
    CHAT_CFG_END,
};

static const char admin_usage[] =
    "usage: chat-admin <command> [options]\n"
    "  topics ensure [--file PATH]      create missing topics of PATH (default\n"
    "                                   config/topics.conf), add missing partitions\n"
    "  wait kafka|mongo|redis [--timeout SECONDS]\n"
    "                                   exit 0 once the server answers (default 30 s)\n"
    "  tenant put ID SECRET [--name NAME]\n"
    "                                   create a tenant or replace its HS256 secret\n"
    "  tenant origins ID [ORIGIN... | --clear]\n"
    "                                   print the tenant's allowed origins (browser pages\n"
    "                                   that may connect; none: any), or replace them\n"
    "                                   (scheme://host[:port]) or empty them; the gateways\n"
    "                                   apply a change within their settings refresh\n"
    "  token TENANT USER [--secret S] [--ttl SECONDS] [--name NAME] [--rooms a,b]\n"
    "                                   print a token for USER (secret read from MongoDB\n"
    "                                   unless given), valid for --ttl (default 3600,\n"
    "                                   at most ten years) s\n"
    "  server-token TENANT [--secret S] [--ttl SECONDS]\n"
    "                                   print a server token of TENANT for the server API\n"
    "                                   (scope server; --ttl default and at most 300 s)\n"
    "  dlq [--topic NAME] [--timeout SECONDS]\n"
    "                                   print notify's dead letters (chat.notify.dlq), one\n"
    "                                   JSON event per line, oldest first per partition;\n"
    "                                   stops after --timeout (default 3) s without one\n"
    "  lag serve [--port N] [--addr A] [--groups g1,g2] [--interval S]\n"
    "                                   serve /metrics (default 127.0.0.1:9308) with the\n"
    "                                   consumer groups' lag as the brokers see it (every\n"
    "                                   chat-* group unless --groups) and the platform\n"
    "                                   topics' high watermarks, read every --interval\n"
    "                                   (default 10) s; runs until SIGTERM or SIGINT\n"
    "  vapid generate                   print a new VAPID key pair for Web Push as\n"
    "                                   CHAT_VAPID_PRIVATE_KEY=... and CHAT_VAPID_PUBLIC_KEY=...\n"
    "  help                             this text and the environment variables\n";

/* Parses a whole number of seconds from min to max (min >= 0; an "s" suffix is accepted).
 * -1 if invalid. */
static long long parse_seconds(const char *s, long long min, long long max)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || v < min || v > max || (*end != '\0' && strcmp(end, "s") != 0))
        return -1;
    return v;
}

/* Returns the value following option name in argv, NULL if absent; exits on a dangling one. */
static const char *option_value(int argc, char **argv, const char *name)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], name) == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "chat-admin: %s needs a value\n", name);
                exit(2);
            }
            return argv[i + 1];
        }
    }
    return NULL;
}

static int cmd_topics_ensure(const admin_cfg_t *cfg, int argc, char **argv)
{
    const char *path = option_value(argc, argv, "--file");
    if (path == NULL)
        path = "config/topics.conf";
    chat_topics_file_t *f;
    char err[512];
    if (chat_topics_file_load(path, &f, err, sizeof err) != CHAT_OK) {
        chat_log_error("cannot load the topics file", CHAT_F_STR("file", path),
                       CHAT_F_STR("reason", err));
        return 1;
    }
    size_t n;
    const chat_bus_topic_spec_t *specs = chat_topics_file_specs(f, &n);
    chat_err_t rc = chat_bus_topics_ensure(cfg->kafka_brokers, specs, n, 30000);
    if (rc == CHAT_OK) {
        for (size_t i = 0; i < n; i++)
            printf("%s\t%d partitions\n", specs[i].name, specs[i].partitions);
    } else {
        chat_log_error("topics not created", CHAT_F_STR("file", path),
                       CHAT_F_STR("brokers", cfg->kafka_brokers), CHAT_F_ERR(rc));
    }
    chat_topics_file_free(f);
    return rc == CHAT_OK ? 0 : 1;
}

static chat_err_t wait_kafka(const admin_cfg_t *cfg, int timeout_ms)
{
    chat_bus_producer_conf_t pc = {
        .brokers = cfg->kafka_brokers,
        .client_id = "chat-admin",
        .linger_ms = 0,
        .connect_timeout_ms = timeout_ms,
    };
    chat_bus_producer_t *p;
    chat_err_t rc = chat_bus_producer_new(&pc, &p);
    if (rc == CHAT_OK)
        chat_bus_producer_destroy(p);
    return rc;
}

static chat_err_t wait_mongo(const admin_cfg_t *cfg, int timeout_ms)
{
    chat_store_t *s;
    chat_err_t rc = chat_store_new(cfg->mongo_uri, "chat-admin", &s);
    if (rc != CHAT_OK)
        return rc;
    rc = chat_store_ping(s, timeout_ms);
    chat_store_destroy(s);
    return rc;
}

static chat_err_t wait_redis(const admin_cfg_t *cfg, int timeout_ms)
{
    int64_t deadline = chat_clock_mono_ms() + timeout_ms;
    chat_err_t rc;
    do {
        chat_redis_t *r;
        rc = chat_redis_connect(cfg->redis_url, 1000, &r);
        if (rc == CHAT_OK) {
            rc = chat_redis_ping(r);
            chat_redis_free(r);
        }
        if (rc == CHAT_OK || rc == CHAT_ERR_CONFIG)
            return rc;
        chat_clock_sleep_ms(200);
    } while (chat_clock_mono_ms() < deadline);
    return CHAT_ERR_TIMEOUT;
}

static int cmd_wait(const admin_cfg_t *cfg, int argc, char **argv)
{
    if (argc < 1) {
        fputs(admin_usage, stderr);
        return 2;
    }
    const char *t = option_value(argc, argv, "--timeout");
    int secs = t != NULL ? (int)parse_seconds(t, 0, 3600) : 30;
    if (secs < 0) {
        fprintf(stderr, "chat-admin: --timeout takes whole seconds, not '%s'\n", t);
        return 2;
    }
    chat_err_t rc;
    if (strcmp(argv[0], "kafka") == 0)
        rc = wait_kafka(cfg, secs * 1000);
    else if (strcmp(argv[0], "mongo") == 0)
        rc = wait_mongo(cfg, secs * 1000);
    else if (strcmp(argv[0], "redis") == 0)
        rc = wait_redis(cfg, secs * 1000);
    else {
        fprintf(stderr, "chat-admin: wait kafka|mongo|redis, not '%s'\n", argv[0]);
        return 2;
    }
    if (rc != CHAT_OK) {
        chat_log_error("server did not answer", CHAT_F_STR("server", argv[0]),
                       CHAT_F_INT("timeout_s", secs), CHAT_F_ERR(rc));
        return 1;
    }
    return 0;
}

static int with_store(const admin_cfg_t *cfg, chat_store_t **out)
{
    chat_err_t rc = chat_store_new(cfg->mongo_uri, "chat-admin", out);
    if (rc == CHAT_OK && (rc = chat_store_ping(*out, 5000)) != CHAT_OK) {
        chat_store_destroy(*out);
        *out = NULL;
    }
    if (rc != CHAT_OK)
        chat_log_error("MongoDB not reachable", CHAT_F_STR("var", "CHAT_MONGO_URI"),
                       CHAT_F_ERR(rc));
    return rc == CHAT_OK ? 0 : 1;
}

static int cmd_tenant_put(const admin_cfg_t *cfg, int argc, char **argv)
{
    if (argc < 2) {
        fputs(admin_usage, stderr);
        return 2;
    }
    if (!chat_name_tenant_valid(argv[0])) {
        fprintf(stderr, "chat-admin: tenant id must match [A-Za-z0-9._-]{1,64}\n");
        return 2;
    }
    chat_store_t *s;
    if (with_store(cfg, &s) != 0)
        return 1;
    chat_err_t rc = chat_tenant_put(s, argv[0], argv[1], option_value(argc, argv, "--name"));
    chat_store_destroy(s);
    if (rc != CHAT_OK) {
        fprintf(stderr, "chat-admin: tenant %s not stored: %s\n", argv[0], chat_err_str(rc));
        return 1;
    }
    printf("tenant %s stored\n", argv[0]);
    return 0;
}

/* Prints the allowed origins of a settings object, one a line ("(any origin)" for none). */
static void origins_print(const char *tenant, const cJSON *settings)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(settings, "allowed_origins");
    const cJSON *o;
    int n = 0;
    printf("allowed origins of %s:\n", tenant);
    cJSON_ArrayForEach(o, list)
    {
        if (cJSON_IsString(o)) {
            printf("  %s\n", o->valuestring);
            n++;
        }
    }
    if (n == 0)
        printf("  (none: any origin may connect)\n");
}

/* tenant origins ID [ORIGIN... | --clear]: the same document and announcement as the server
 * API's PATCH /v1/settings {allowed_origins}. */
static int cmd_tenant_origins(const admin_cfg_t *cfg, int argc, char **argv)
{
    if (argc < 1) {
        fputs(admin_usage, stderr);
        return 2;
    }
    const char *tenant = argv[0];
    if (!chat_name_tenant_valid(tenant)) {
        fprintf(stderr, "chat-admin: tenant id must match [A-Za-z0-9._-]{1,64}\n");
        return 2;
    }
    bool clear = argc == 2 && strcmp(argv[1], "--clear") == 0;
    cJSON *patch = NULL;
    if (argc > 1) {
        patch = cJSON_CreateObject();
        cJSON *list = cJSON_AddArrayToObject(patch, "allowed_origins");
        for (int i = 1; list != NULL && !clear && i < argc; i++)
            cJSON_AddItemToArray(list, cJSON_CreateString(argv[i]));
        if (list == NULL) {
            cJSON_Delete(patch);
            return 1;
        }
    }
    chat_store_t *s;
    if (with_store(cfg, &s) != 0) {
        cJSON_Delete(patch);
        return 1;
    }
    cJSON *stored = NULL;
    int64_t updated = 0;
    chat_err_t e = chat_settings_read(s, tenant, &stored, &updated);
    int rc = 0;
    char error[200];
    if (e != CHAT_OK) {
        fprintf(stderr, "chat-admin: settings of %s not read: %s\n", tenant, chat_err_str(e));
        rc = 1;
    } else if (patch != NULL && !chat_settings_merge(stored, patch, error, sizeof error)) {
        fprintf(stderr, "chat-admin: %s\n", error);
        rc = 2;
    } else if (patch != NULL &&
               (e = chat_settings_write(s, tenant, stored, chat_clock_wall_ms())) != CHAT_OK) {
        fprintf(stderr, "chat-admin: settings of %s not written: %s\n", tenant, chat_err_str(e));
        rc = 1;
    }
    chat_store_destroy(s);
    if (rc == 0 && patch != NULL) {
        chat_redis_t *r = NULL;
        e = chat_redis_connect(cfg->redis_url, 5000, &r);
        if (e == CHAT_OK)
            e = chat_settings_rev_bump(r, tenant);
        chat_redis_free(r);
        if (e != CHAT_OK) {
            fprintf(stderr,
                    "chat-admin: the origins of %s are stored but not announced to the gateways "
                    "(Redis: %s); run the command again\n",
                    tenant, chat_err_str(e));
            rc = 1;
        }
    }
    if (rc == 0)
        origins_print(tenant, stored);
    cJSON_Delete(stored);
    cJSON_Delete(patch);
    return rc;
}

/* The tenant's secret: --secret if given, else from MongoDB. Returns 0 with *secret
 * malloc'd, or the exit code (the reason printed). */
static int token_secret(const admin_cfg_t *cfg, const char *tenant, const char *given,
                        char **secret)
{
    if (given != NULL) {
        *secret = strdup(given);
        return *secret != NULL ? 0 : 1;
    }
    chat_store_t *s;
    if (with_store(cfg, &s) != 0)
        return 1;
    size_t len = 0;
    chat_err_t e = chat_tenant_secret(s, tenant, secret, &len);
    chat_store_destroy(s);
    if (e != CHAT_OK) {
        fprintf(stderr, "chat-admin: no secret for tenant %s: %s\n", tenant, chat_err_str(e));
        return 1;
    }
    return 0;
}

static int cmd_token(const admin_cfg_t *cfg, int argc, char **argv)
{
    if (argc < 2) {
        fputs(admin_usage, stderr);
        return 2;
    }
    const char *ttl = option_value(argc, argv, "--ttl");
    chat_token_spec_t spec = {
        .tenant = argv[0],
        .user = argv[1],
        .name = option_value(argc, argv, "--name"),
        .rooms = option_value(argc, argv, "--rooms"),
        .ttl_s = ttl != NULL ? parse_seconds(ttl, 1, CHAT_TOKEN_TTL_MAX_S) : 3600,
    };
    if (!chat_name_tenant_valid(spec.tenant) || !chat_name_user_valid(spec.user) ||
        spec.ttl_s < 0) {
        fprintf(stderr, "chat-admin: bad tenant, user or --ttl (whole seconds, 1 to ten years)\n");
        return 2;
    }
    char *secret = NULL;
    int rc = token_secret(cfg, spec.tenant, option_value(argc, argv, "--secret"), &secret);
    if (rc != 0)
        return rc;
    spec.secret = secret;
    char *token = NULL;
    chat_err_t e = chat_token_mint(&spec, &token);
    free(secret);
    if (e != CHAT_OK) {
        fprintf(stderr,
                "chat-admin: no token: %s (user, --name and --rooms must follow the "
                "naming rules, at most %d rooms)\n",
                chat_err_str(e), CHAT_JWT_ROOMS_MAX);
        return e == CHAT_ERR_INVALID ? 2 : 1;
    }
    printf("%s\n", token);
    free(token);
    return 0;
}

static int cmd_server_token(const admin_cfg_t *cfg, int argc, char **argv)
{
    if (argc < 1) {
        fputs(admin_usage, stderr);
        return 2;
    }
    const char *ttl = option_value(argc, argv, "--ttl");
    long long ttl_s =
        ttl != NULL ? parse_seconds(ttl, 1, CHAT_JWT_SERVER_TTL_MAX) : CHAT_JWT_SERVER_TTL_MAX;
    if (!chat_name_tenant_valid(argv[0]) || ttl_s < 0) {
        fprintf(stderr, "chat-admin: bad tenant or --ttl (whole seconds, 1 to %d)\n",
                CHAT_JWT_SERVER_TTL_MAX);
        return 2;
    }
    char *secret = NULL;
    int rc = token_secret(cfg, argv[0], option_value(argc, argv, "--secret"), &secret);
    if (rc != 0)
        return rc;
    chat_jwt_server_claims_t claims = {.iat = chat_clock_wall_ms() / 1000};
    snprintf(claims.tenant, sizeof claims.tenant, "%s", argv[0]);
    claims.exp = claims.iat + ttl_s;
    char *token = NULL;
    chat_err_t e = chat_jwt_server_sign(&claims, secret, strlen(secret), &token);
    free(secret);
    if (e != CHAT_OK) {
        fprintf(stderr, "chat-admin: no server token: %s\n", chat_err_str(e));
        return 1;
    }
    printf("%s\n", token);
    free(token);
    return 0;
}

/* Prints a new VAPID key pair in the form of the variables notify and the gateway read. */
/* Prints every record of one partition of topic from its beginning until quiet_ms pass
 * without a new one. Returns the count printed, or -1 if the consumer failed (logged). */
static long dlq_partition(const admin_cfg_t *cfg, const char *topic, int32_t partition,
                          int quiet_ms)
{
    chat_bus_consumer_conf_t cc = {.brokers = cfg->kafka_brokers,
                                   .client_id = "chat-admin",
                                   .assign_topic = topic,
                                   .assign_partition = partition,
                                   .assign_offset = CHAT_BUS_OFFSET_BEGINNING,
                                   .connect_timeout_ms = 10000};
    chat_bus_consumer_t *c = NULL;
    if (chat_bus_consumer_new(&cc, &c) != CHAT_OK)
        return -1;
    chat_bus_record_t recs[64];
    long printed = 0;
    int64_t quiet_until = chat_clock_mono_ms() + quiet_ms;
    while (chat_clock_mono_ms() < quiet_until) {
        size_t n = chat_bus_consumer_poll(c, recs, 64, 200);
        for (size_t i = 0; i < n; i++) {
            fwrite(recs[i].value, 1, recs[i].len, stdout);
            fputc('\n', stdout);
            printed++;
        }
        chat_bus_records_release(recs, n);
        if (n > 0)
            quiet_until = chat_clock_mono_ms() + quiet_ms;
    }
    chat_bus_consumer_close(c);
    return printed;
}

/* chat-admin dlq: the notifications notify gave up on, for an operator to read and replay. */
static int cmd_dlq(const admin_cfg_t *cfg, int argc, char **argv)
{
    const char *topic = option_value(argc, argv, "--topic");
    const char *t = option_value(argc, argv, "--timeout");
    long long secs = t != NULL ? parse_seconds(t, 1, 3600) : 3;
    if (secs < 0) {
        fprintf(stderr, "chat-admin: --timeout takes whole seconds, not '%s'\n", t);
        return 2;
    }
    if (topic == NULL)
        topic = CHAT_TOPIC_NOTIFY_DLQ;
    int partitions = chat_bus_topic_partitions(cfg->kafka_brokers, topic, 10000);
    if (partitions <= 0) {
        chat_log_error("topic not found", CHAT_F_STR("topic", topic));
        return 1;
    }
    long total = 0;
    for (int32_t p = 0; p < partitions; p++) {
        long n = dlq_partition(cfg, topic, p, (int)(secs * 1000));
        if (n < 0) {
            chat_log_error("partition not read", CHAT_F_STR("topic", topic),
                           CHAT_F_INT("partition", p));
            return 1;
        }
        total += n;
    }
    fprintf(stderr, "chat-admin: %ld dead letter(s) in %s\n", total, topic);
    return fflush(stdout) == 0 ? 0 : 1;
}

static int cmd_vapid_generate(void)
{
    char *priv = NULL, *pub = NULL;
    chat_err_t rc = chat_vapid_generate(&priv, &pub);
    if (rc != CHAT_OK) {
        fprintf(stderr, "chat-admin: no VAPID key pair: %s\n", chat_err_str(rc));
        return 1;
    }
    printf("CHAT_VAPID_PRIVATE_KEY=%s\nCHAT_VAPID_PUBLIC_KEY=%s\n", priv, pub);
    free(priv);
    free(pub);
    return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    chat_log_init("chat-admin", CHAT_LOG_INFO);
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        fputs(admin_usage, argc < 2 ? stderr : stdout);
        if (argc >= 2)
            chat_cfg_print_help(admin_cfg_table, stdout, "chat-admin", "environment:");
        return argc < 2 ? 2 : 0;
    }
    /* Needs no server and no setting: works before anything is configured. */
    if (strcmp(argv[1], "vapid") == 0) {
        if (argc == 3 && strcmp(argv[2], "generate") == 0)
            return cmd_vapid_generate();
        fprintf(stderr, "chat-admin: vapid generate\n%s", admin_usage);
        return 2;
    }
    admin_cfg_t cfg = {0};
    char *no_args[] = {argv[0], NULL};
    if (chat_cfg_load(admin_cfg_table, &cfg, 1, no_args, "chat-admin", "") != CHAT_CFG_LOADED)
        return 2;
    chat_log_level_t level;
    if (chat_log_level_parse(cfg.log_level, &level) == CHAT_OK)
        chat_log_set_level(level);

    int rc;
    if (strcmp(argv[1], "topics") == 0 && argc >= 3 && strcmp(argv[2], "ensure") == 0)
        rc = cmd_topics_ensure(&cfg, argc - 3, argv + 3);
    else if (strcmp(argv[1], "wait") == 0)
        rc = cmd_wait(&cfg, argc - 2, argv + 2);
    else if (strcmp(argv[1], "tenant") == 0 && argc >= 3 && strcmp(argv[2], "put") == 0)
        rc = cmd_tenant_put(&cfg, argc - 3, argv + 3);
    else if (strcmp(argv[1], "tenant") == 0 && argc >= 3 && strcmp(argv[2], "origins") == 0)
        rc = cmd_tenant_origins(&cfg, argc - 3, argv + 3);
    else if (strcmp(argv[1], "token") == 0)
        rc = cmd_token(&cfg, argc - 2, argv + 2);
    else if (strcmp(argv[1], "server-token") == 0)
        rc = cmd_server_token(&cfg, argc - 2, argv + 2);
    else if (strcmp(argv[1], "dlq") == 0)
        rc = cmd_dlq(&cfg, argc - 2, argv + 2);
    else if (strcmp(argv[1], "lag") == 0 && argc >= 3 && strcmp(argv[2], "serve") == 0) {
        const char *const topics[] = {cfg.topic_inbound,    cfg.topic_messages,
                                      cfg.topic_deliver,    cfg.topic_events,
                                      cfg.topic_moderation, cfg.topic_notify_dlq};
        rc = chat_admin_lag_serve(cfg.kafka_brokers, topics, sizeof topics / sizeof topics[0],
                                  argc - 3, argv + 3);
    } else {
        fprintf(stderr, "chat-admin: unknown command '%s'\n%s", argv[1], admin_usage);
        rc = 2;
    }
    chat_cfg_free(admin_cfg_table, &cfg);
    return rc;
}
