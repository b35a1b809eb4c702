/* Command line of chat-cli: getopt_long over the options of the help text below, with the
 * rule that a session needs either a ready token or what it takes to mint one. */
#include "tools/chat-cli/cli_options.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: chat-cli [options] < lines\n"
    "A command-line client of the chat platform: connects to a gateway, authenticates,\n"
    "joins rooms, sends every line of stdin as a message and prints every frame it gets.\n"
    "\n"
    "Connection:\n"
    "  --url URL              gateway WebSocket URL (default: the first of\n"
    "                         $CHAT_GATEWAY_URLS, else " CHAT_CLI_DEFAULT_URL ")\n"
    "  --connect-timeout S    seconds for connecting, auth and the first joins (default 10)\n"
    "Identity (either a token, or what it takes to mint one):\n"
    "  --token T              a JWT signed by the tenant's backend\n"
    "  --tenant ID            tenant id (default $CHAT_DEMO_TENANT)\n"
    "  --secret S             the tenant's HS256 secret (default $CHAT_DEMO_SECRET)\n"
    "  --user U               user id (the token's sub)\n"
    "  --name N               display name\n"
    "  --rooms a,b            rooms claim: the only rooms the token may join\n"
    "  --ttl SECONDS          token lifetime (default 3600; negative: already expired)\n"
    "Session:\n"
    "  --join ROOM            join ROOM after auth (repeatable); lines of stdin go to the\n"
    "                         first room joined\n"
    "  --since N              join with since N (last seq held): missed messages follow\n"
    "  --json                 print frames as the raw JSON the server sent\n"
    "  --wait SECONDS         after stdin ends, wait this long for unanswered requests\n"
    "                         (default 10)\n"
    "  -h, --help             this text\n"
    "\n"
    "Lines of stdin:\n"
    "  text                   sent as a message (send with a fresh cid \"<pid>-<n>\")\n"
    "  //text                 sends \"/text\"\n"
    "  /join ROOM [SINCE]     join a room (with since)\n"
    "  /leave ROOM            leave a room\n"
    "  /history ROOM [BEFORE] [LIMIT]\n"
    "                         fetch older messages (before a seq; 1-100, default 50)\n"
    "  /edit ID TEXT          edit one's own message ID (ids are printed with messages)\n"
    "  /delete ID             delete one's own message ID\n"
    "  /react ID EMOJI [on|off]\n"
    "                         add or remove a reaction (without on/off: toggle)\n"
    "                         (/edit, /delete and /react act in the first room joined)\n"
    "  /typing [ROOM]         tell the others in ROOM (default: the first room joined)\n"
    "                         that you are typing; they see \"* user is typing in room\"\n"
    "  /raw {json}            send any frame as it is (a send's cid is waited for)\n"
    "  /quit                  like the end of stdin\n"
    "  /help                  list these commands on stderr\n"
    "\n"
    "Output: one line per frame: \"[room #seq] from: text (id ID)\", \"ack cid -> #seq\",\n"
    "\"[room #seq] ID edit by user: text (edited) (useq N)\",\n"
    "\"error code: message\", \"joined room: ...\", \"* bob is online in room\",\n"
    "\"* bob is typing in room\" and so on (a history frame prints one line\n"
    "per message after its header line); with --json the frame itself.\n"
    "Diagnostics go to stderr.\n"
    "\n"
    "Exit status:\n"
    "  0  stdin ended (or /quit) and every send was answered (ack, or an error printed)\n"
    "  1  the connection failed or the server closed it (code and reason on stderr)\n"
    "  2  bad command line\n"
    "  3  some requests were still unanswered after --wait seconds\n";

void chat_cli_usage(FILE *f)
{
    fputs(usage_text, f);
}

static chat_cli_parse_t usage_error(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static chat_cli_parse_t usage_error(char *errbuf, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
    return CHAT_CLI_PARSE_USAGE;
}

/* Parses a whole integer within [lo, hi]; false otherwise. */
static bool parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* The first URL of $CHAT_GATEWAY_URLS (comma-separated), or the default; malloc'd. */
static char *default_url(void)
{
    const char *list = getenv("CHAT_GATEWAY_URLS");
    if (list != NULL) {
        list += strspn(list, " ,");
        size_t n = strcspn(list, " ,");
        if (n > 0)
            return strndup(list, n);
    }
    return strdup(CHAT_CLI_DEFAULT_URL);
}

static bool add_join(chat_cli_options_t *o, const char *room)
{
    const char **nj = realloc(o->joins, (o->njoins + 1) * sizeof *nj);
    if (nj == NULL)
        return false;
    nj[o->njoins++] = room;
    o->joins = nj;
    return true;
}

enum {
    OPT_URL = 256,
    OPT_TOKEN,
    OPT_TENANT,
    OPT_SECRET,
    OPT_USER,
    OPT_NAME,
    OPT_ROOMS,
    OPT_TTL,
    OPT_JOIN,
    OPT_SINCE,
    OPT_JSON,
    OPT_WAIT,
    OPT_CONNECT_TIMEOUT,
};

static const struct option long_options[] = {
    {"url", required_argument, NULL, OPT_URL},
    {"token", required_argument, NULL, OPT_TOKEN},
    {"tenant", required_argument, NULL, OPT_TENANT},
    {"secret", required_argument, NULL, OPT_SECRET},
    {"user", required_argument, NULL, OPT_USER},
    {"name", required_argument, NULL, OPT_NAME},
    {"rooms", required_argument, NULL, OPT_ROOMS},
    {"ttl", required_argument, NULL, OPT_TTL},
    {"join", required_argument, NULL, OPT_JOIN},
    {"since", required_argument, NULL, OPT_SINCE},
    {"json", no_argument, NULL, OPT_JSON},
    {"wait", required_argument, NULL, OPT_WAIT},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Applies one parsed option; false with errbuf set if its value is bad. */
static bool apply_option(chat_cli_options_t *o, int opt, const char *arg, char *errbuf,
                         size_t errlen)
{
    int64_t v;
    switch (opt) {
    case OPT_URL:
        free(o->url);
        o->url = strdup(arg);
        return o->url != NULL;
    case OPT_TOKEN:
        o->token = arg;
        return true;
    case OPT_TENANT:
        o->tenant = arg;
        return true;
    case OPT_SECRET:
        o->secret = arg;
        return true;
    case OPT_USER:
        o->user = arg;
        return true;
    case OPT_NAME:
        o->name = arg;
        return true;
    case OPT_ROOMS:
        o->rooms = arg;
        return true;
    case OPT_JSON:
        o->json = true;
        return true;
    case OPT_JOIN:
        return add_join(o, arg);
    case OPT_TTL:
        if (parse_int(arg, -100000000, 100000000, &o->ttl_s))
            return true;
        usage_error(errbuf, errlen, "--ttl needs a number of seconds, not '%s'", arg);
        return false;
    case OPT_SINCE:
        if (parse_int(arg, 0, INT64_MAX, &o->since))
            return true;
        usage_error(errbuf, errlen, "--since needs a seq >= 0, not '%s'", arg);
        return false;
    case OPT_WAIT:
    case OPT_CONNECT_TIMEOUT:
        if (parse_int(arg, 0, 86400, &v)) {
            *(opt == OPT_WAIT ? &o->wait_s : &o->connect_timeout_s) = (int)v;
            return true;
        }
        usage_error(errbuf, errlen, "--%s needs seconds (0-86400), not '%s'",
                    opt == OPT_WAIT ? "wait" : "connect-timeout", arg);
        return false;
    default:
        usage_error(errbuf, errlen, "unknown option (see --help)");
        return false;
    }
}

/* Checks that the options describe one identity. */
static chat_cli_parse_t check_identity(chat_cli_options_t *o, char *errbuf, size_t errlen)
{
    if (o->token != NULL) {
        if (o->user != NULL || o->name != NULL || o->rooms != NULL)
            return usage_error(errbuf, errlen,
                               "--token cannot be combined with --user, --name or --rooms");
        return CHAT_CLI_PARSE_OK;
    }
    if (o->tenant == NULL)
        o->tenant = getenv("CHAT_DEMO_TENANT");
    if (o->secret == NULL)
        o->secret = getenv("CHAT_DEMO_SECRET");
    if (o->user == NULL)
        return usage_error(errbuf, errlen, "give --token, or --user to mint a token");
    if (o->tenant == NULL || o->secret == NULL)
        return usage_error(errbuf, errlen,
                           "minting a token needs --tenant and --secret "
                           "(or CHAT_DEMO_TENANT and CHAT_DEMO_SECRET)");
    return CHAT_CLI_PARSE_OK;
}

chat_cli_parse_t chat_cli_options_parse(int argc, char **argv, chat_cli_options_t *out,
                                        char *errbuf, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->since = -1;
    out->ttl_s = 3600;
    out->wait_s = 10;
    out->connect_timeout_s = 10;
    errbuf[0] = '\0';
    opterr = 0;
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        if (opt == 'h')
            return CHAT_CLI_PARSE_HELP;
        if (opt == '?' || opt == ':') {
            return usage_error(errbuf, errlen, "bad option '%s' (see --help)", argv[optind - 1]);
        }
        if (!apply_option(out, opt, optarg, errbuf, errlen))
            return errbuf[0] ? CHAT_CLI_PARSE_USAGE : usage_error(errbuf, errlen, "out of memory");
    }
    if (optind < argc)
        return usage_error(errbuf, errlen, "unexpected argument '%s' (see --help)", argv[optind]);
    if (out->url == NULL && (out->url = default_url()) == NULL)
        return usage_error(errbuf, errlen, "out of memory");
    if (out->since >= 0 && out->njoins == 0)
        return usage_error(errbuf, errlen, "--since needs --join");
    return check_identity(out, errbuf, errlen);
}

void chat_cli_options_free(chat_cli_options_t *o)
{
    if (o == NULL)
        return;
    free(o->url);
    free(o->joins);
    memset(o, 0, sizeof *o);
}
