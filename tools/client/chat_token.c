/* Token minting for tools and tests: turns a chat_token_spec_t into claims and signs them
 * with common/jwt. The rooms claim arrives as one comma-separated string because that is
 * how both the command line and the tests write it. */
#include "tools/client/chat_token.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/jwt.h"
#include "common/names.h"

/* Frees the rooms array built by split_rooms. */
static void free_rooms(char **rooms, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(rooms[i]);
    free(rooms);
}

/* Splits "a,b" into c->rooms. Returns CHAT_ERR_INVALID for a bad or empty item (as in
 * "a,,b") or too many rooms. */
static chat_err_t split_rooms(const char *csv, chat_jwt_claims_t *c)
{
    c->has_rooms = true;
    c->nrooms = 0;
    c->rooms = NULL;
    if (*csv == '\0')
        return CHAT_OK;
    size_t count = 1;
    for (const char *p = csv; *p; p++)
        count += *p == ',';
    if (count > CHAT_JWT_ROOMS_MAX)
        return CHAT_ERR_INVALID;
    c->rooms = calloc(count, sizeof *c->rooms);
    if (c->rooms == NULL)
        return CHAT_ERR_NOMEM;
    const char *p = csv;
    for (size_t i = 0; i < count; i++) {
        size_t n = strcspn(p, ",");
        char *room = strndup(p, n);
        if (room == NULL)
            return CHAT_ERR_NOMEM;
        c->rooms[c->nrooms++] = room;
        if (!chat_name_room_valid(room))
            return CHAT_ERR_INVALID;
        p += n + (p[n] == ',');
    }
    return CHAT_OK;
}

/* Fills the fixed-size claims from spec; CHAT_ERR_INVALID for a malformed value. */
static chat_err_t fill_claims(const chat_token_spec_t *spec, chat_jwt_claims_t *c)
{
    if (!chat_name_tenant_valid(spec->tenant) || !chat_name_user_valid(spec->user) ||
        spec->ttl_s > CHAT_TOKEN_TTL_MAX_S || spec->ttl_s < -CHAT_TOKEN_TTL_MAX_S)
        return CHAT_ERR_INVALID;
    const char *name = spec->name ? spec->name : "";
    long name_chars = chat_utf8_chars(name, strlen(name));
    if (name_chars < 0 || name_chars > CHAT_JWT_NAME_MAX || strlen(name) >= sizeof c->name)
        return CHAT_ERR_INVALID;
    snprintf(c->tenant, sizeof c->tenant, "%s", spec->tenant);
    snprintf(c->user, sizeof c->user, "%s", spec->user);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->exp = (int64_t)time(NULL) + spec->ttl_s;
    return spec->rooms ? split_rooms(spec->rooms, c) : CHAT_OK;
}

chat_err_t chat_token_mint(const chat_token_spec_t *spec, char **out)
{
    *out = NULL;
    if (spec == NULL || spec->secret == NULL)
        return CHAT_ERR_INVALID;
    chat_jwt_claims_t c;
    memset(&c, 0, sizeof c);
    chat_err_t rc = fill_claims(spec, &c);
    if (rc == CHAT_OK)
        rc = chat_jwt_sign(&c, spec->secret, strlen(spec->secret), out);
    free_rooms(c.rooms, c.nrooms);
    return rc;
}
