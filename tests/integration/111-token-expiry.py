"""Token lifetime on a live connection (PROTOCOL.md v1.1): a connection whose token expires
without a refresh gets `error unauthorized` ("token expired") and close 4001 within about a
second of `exp`, not before; one that refreshes in time stays open past the old `exp`; a
refresh that only keeps the old `exp` does not save it. The gateway counts the closes
(chat_gateway_token_expiry_closes_total). And algorithm confusion is refused at auth and at
refresh: `alg` none (no signature), and RS256 "signed" with the tenant's secret as an HMAC
key (a verifier that let the header pick the algorithm would take it)."""
import base64
import hashlib
import hmac
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from api_client import jwt_sign, stack_load, tenant_create, unique, user_token  # noqa: E402
from checks import check, finish, scrape  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

stack = stack_load()
URL = stack["CHAT_GATEWAY_URLS"].split(",")[0]
OPS = stack["CHAT_OPS_GATEWAYS"].split(",")[0]
TTL = 3
COUNTER = "chat_gateway_token_expiry_closes_total"


def recv(ws, timeout):
    return json.loads(ws.recv(timeout=timeout))


def welcome(ws, tenant, secret, user, ttl):
    ws.send(json.dumps({"type": "auth", "token": user_token(tenant, secret, user, ttl=ttl)}))
    f = recv(ws, 10)
    check(f.get("type") == "welcome", f"{user}: welcome {f}")
    return f.get("exp")


def expires(tenant, secret):
    """No refresh: error unauthorized then 4001, at exp (not before), within 2 s after."""
    with connect(URL, open_timeout=10) as ws:
        exp = welcome(ws, tenant, secret, unique("exp"), TTL)
        f = recv(ws, TTL + 5)
        at = time.time()
        check(f.get("type") == "error" and f.get("code") == "unauthorized"
              and "expired" in f.get("message", ""), f"error at expiry: {f}")
        check(exp is not None and exp <= at < exp + 2.0,
              f"closed at exp {exp} + {at - (exp or 0):.2f} s (within [0, 2))")
        try:
            ws.recv(timeout=5)
            check(False, "closed after the error")
        except ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd is not None else None
            check(code == 4001, f"closed with 4001: {code}")


def refreshed(tenant, secret):
    """A refresh before exp moves it: the connection answers past the old exp."""
    with connect(URL, open_timeout=10) as ws:
        user = unique("ref")
        exp = welcome(ws, tenant, secret, user, TTL)
        ws.send(json.dumps({"type": "refresh", "rid": "r1",
                            "token": user_token(tenant, secret, user, ttl=120)}))
        f = recv(ws, 10)
        check(f == {"type": "ok", "rid": "r1"}, f"refresh ok: {f}")
        time.sleep(max(0.0, exp + 2.0 - time.time()))
        ws.send(json.dumps({"type": "join", "room": unique("room")}))
        f = recv(ws, 10)
        check(f.get("type") == "joined", f"still served 2 s past the old exp: {f}")


def same_exp_refresh(tenant, secret):
    """A refresh whose token has the same exp keeps that exp: closed at it all the same."""
    with connect(URL, open_timeout=10) as ws:
        user = unique("same")
        now = int(time.time())
        token = jwt_sign({"tid": tenant, "sub": user, "iat": now, "exp": now + TTL}, secret)
        ws.send(json.dumps({"type": "auth", "token": token}))
        check(recv(ws, 10).get("type") == "welcome", f"{user}: welcome")
        ws.send(json.dumps({"type": "refresh", "rid": "r1", "token": token}))
        check(recv(ws, 10) == {"type": "ok", "rid": "r1"}, "refresh with the same token ok")
        f = recv(ws, TTL + 5)
        check(f.get("type") == "error" and "expired" in f.get("message", ""),
              f"expired all the same: {f}")


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def forged(tenant, secret, user, alg):
    """A token whose header says alg: unsigned for none, else HMAC-SHA256 with the secret."""
    now = int(time.time())
    head = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64url(json.dumps({"tid": tenant, "sub": user, "iat": now, "exp": now + 600}).encode())
    if alg == "none":
        return f"{head}.{body}."
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(sig)}"


def alg_confusion(tenant, secret):
    for alg in ("none", "RS256", "HS512"):
        with connect(URL, open_timeout=10) as ws:
            ws.send(json.dumps({"type": "auth", "token": forged(tenant, secret, "eve", alg)}))
            f = recv(ws, 10)
            check(f.get("type") == "error" and f.get("code") == "unauthorized",
                  f"auth with alg {alg} refused: {f}")
            try:
                ws.recv(timeout=5)
                check(False, f"alg {alg}: closed after the error")
            except ConnectionClosed as e:
                code = e.rcvd.code if e.rcvd is not None else None
                check(code == 4001, f"alg {alg}: closed with 4001: {code}")
    with connect(URL, open_timeout=10) as ws:
        welcome(ws, tenant, secret, "eve", 600)
        for alg in ("none", "RS256"):
            ws.send(json.dumps({"type": "refresh", "rid": alg,
                                "token": forged(tenant, secret, "eve", alg)}))
            f = recv(ws, 10)
            check(f.get("type") == "error" and f.get("code") == "unauthorized"
                  and f.get("rid") == alg, f"refresh with alg {alg} refused: {f}")


def main():
    tenant, secret = tenant_create(stack)
    before = scrape(OPS).get(COUNTER)
    check(before is not None, f"{COUNTER} exposed")
    expires(tenant, secret)
    refreshed(tenant, secret)
    same_exp_refresh(tenant, secret)
    alg_confusion(tenant, secret)
    after = scrape(OPS).get(COUNTER, 0)
    check(after - (before or 0) >= 2, f"{COUNTER} +2 (at least): {before} -> {after}")
    finish()


if __name__ == "__main__":
    main()
