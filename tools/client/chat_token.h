/* Minting client tokens (HS256 JWTs) the way a tenant's backend does, for chat-cli, the
 * tests and benchmarks: the claims of the client protocol from plain arguments. */
#ifndef CHAT_TOOLS_CLIENT_CHAT_TOKEN_H
#define CHAT_TOOLS_CLIENT_CHAT_TOKEN_H

#include <stdint.h>

#include "common/err.h"

/* The longest lifetime chat_token_mint accepts, either way (ten years). */
#define CHAT_TOKEN_TTL_MAX_S (INT64_C(10) * 366 * 24 * 3600)

/* What a token says. Strings are borrowed for the call. */
typedef struct chat_token_spec {
    const char *tenant; /* tid */
    const char *secret; /* the tenant's HS256 secret */
    const char *user;   /* sub */
    const char *name;   /* display name; NULL or "" for none */
    const char *rooms;  /* rooms claim as "a,b,c"; NULL for none (any room); "" for an
                         * empty claim (no room at all) */
    int64_t ttl_s;      /* exp = now + ttl_s; negative gives an already expired token;
                         * at most CHAT_TOKEN_TTL_MAX_S either way */
} chat_token_spec_t;

/* Signs a token for spec. *out is malloc'd (the caller frees it). Returns CHAT_ERR_INVALID
 * if the tenant, user, name or a room is not well-formed (common/names.h rules), more
 * than CHAT_JWT_ROOMS_MAX rooms are listed or the lifetime is out of range,
 * CHAT_ERR_NOMEM, or what chat_jwt_sign returns. */
chat_err_t chat_token_mint(const chat_token_spec_t *spec, char **out);

#endif
