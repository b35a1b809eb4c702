"""Per-tenant allowed origins (issue 14 part 3; README "Tenant settings: origins and quotas").
A tenant lists https://good.example (server API PATCH /v1/settings), then, on gateway 0:
- a foreign Origin with ?tenant= before the gateway has the tenant's settings: the upgrade goes
  through (the loop never reads MongoDB), the auth frame is refused: error forbidden "origin
  not allowed", close 4004;
- then (settings cached) the same raw upgrade gets HTTP 403 and nothing else: no 101, no frame;
- the listed Origin: 101 and welcome; no Origin (not a browser): 101 and welcome;
- a foreign Origin without ?tenant= (an attacker omits it): refused at auth all the same;
- ?tenant= naming another tenant than the token's: error unauthorized, close 4001;
- gateway 1 refuses at auth too (its own cache);
- `chat-admin tenant origins` replaces the list (the foreign origin becomes the good one) and
  both gateways apply it within the settings refresh (1 s; polled up to 5 s); --clear: any;
- chat_gateway_origin_refusals_total counts the refusals by stage;
- a gateway that starts after a tenant listed origins has them from its start (warm-up): the
  first foreign upgrade with ?tenant= gets 403, before any connection of the tenant."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from api_client import Tenant, api_base, call_json, stack_load, unique, user_token  # noqa: E402
from checks import check, finish, scrape  # noqa: E402
from own_gateway import OwnGateway  # noqa: E402
from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

stack = stack_load()
URLS = stack["CHAT_GATEWAY_URLS"].split(",")
OPS = stack["CHAT_OPS_GATEWAYS"].split(",")
GOOD, EVIL = "https://good.example", "https://evil.example"
ADMIN = os.path.join(stack["CHAT_BUILD_DIR"], "tools", "chat-admin", "chat-admin")
REFUSALS = "chat_gateway_origin_refusals_total"
GATEWAY_BIN = os.path.join(stack["CHAT_BUILD_DIR"], "services", "gateway", "chat-gateway")
OWN_INDEX = "14"  # a partition of chat.deliver the stack's gateways and other tests do not use


def raw_upgrade(url, query, origin):
    """Sends a WebSocket upgrade by hand; returns everything the gateway sent until it closed
    the socket (or 3 s passed), or a 101's headers."""
    u = urllib.parse.urlparse(url)
    path = u.path + (f"?{query}" if query else "")
    req = (f"GET {path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           "Sec-WebSocket-Version: 13\r\n")
    if origin is not None:
        req += f"Origin: {origin}\r\n"
    got = b""
    with socket.create_connection((u.hostname, u.port), timeout=3) as s:
        s.sendall((req + "\r\n").encode())
        deadline = time.time() + 3
        try:
            while time.time() < deadline:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
                if got.startswith(b"HTTP/1.1 101 ") and b"\r\n\r\n" in got:
                    break  # upgraded: the gateway now waits for the auth frame
        except socket.timeout:
            pass
    return got


def session(url, tenant, secret, origin, query=None):
    """Connects (Origin header origin, or none), sends auth; returns ("welcome", None), or
    (the error frame, the close code), or ("HTTP <status>", None) if the upgrade is refused."""
    full = url + (f"?{query}" if query else "")
    headers = {"Origin": origin} if origin is not None else None
    try:
        ws = connect(full, open_timeout=10, additional_headers=headers, origin=None)
    except InvalidStatus as e:
        return f"HTTP {e.response.status_code}", None
    with ws:
        ws.send(json.dumps({"type": "auth", "token": user_token(tenant, secret, unique("u"))}))
        f = json.loads(ws.recv(timeout=10))
        if f.get("type") == "welcome":
            return "welcome", None
        try:
            ws.recv(timeout=5)
        except ConnectionClosed as e:
            return f, (e.rcvd.code if e.rcvd is not None else None)
        return f, None


def refused(result, code, close, what):
    f, got = result
    check(isinstance(f, dict) and f.get("type") == "error" and f.get("code") == code
          and got == close, f"{what}: error {code} and close {close}: {result}")


def refusals(ops, stage):
    return sum(v for k, v in scrape(ops).items()
               if k.startswith(REFUSALS + "{") and f'stage="{stage}"' in k)


def admin_origins(tenant, *args):
    env = dict(os.environ)
    env.update(stack)
    r = subprocess.run([ADMIN, "tenant", "origins", tenant, *args], env=env,
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, f"chat-admin tenant origins {' '.join(args)}: {r.returncode} "
          f"{r.stderr.strip()[-200:]}")
    return r.stdout


def until(pred, seconds=5.0):
    deadline = time.time() + seconds
    while True:
        if pred():
            return True
        if time.time() > deadline:
            return False
        time.sleep(0.2)


t = Tenant(stack)
status, body = call_json(api_base(stack), t, "PATCH", "/settings", {"allowed_origins": [GOOD]})
check(status == 200 and body.get("allowed_origins") == [GOOD], f"PATCH origins: {status} {body}")
q = f"tenant={t.id}"
before_up, before_auth = refusals(OPS[0], "upgrade"), refusals(OPS[0], "auth")

# Not cached yet on gateway 0: the upgrade passes, auth refuses.
refused(session(URLS[0], t.id, t.secret, EVIL, q), "forbidden", 4004,
        "foreign origin, settings not cached at the upgrade")
check("origin not allowed" in json.dumps(session(URLS[0], t.id, t.secret, EVIL)[0]),
      "the message says origin not allowed")

# Cached now: 403 at the upgrade, nothing else.
got = raw_upgrade(URLS[0], q, EVIL)
check(got.startswith(b"HTTP/1.1 403 "), f"foreign origin with ?tenant=: 403 ({got[:40]!r})")
check(got.endswith(b"\r\n\r\norigin not allowed\n") and b"101" not in got.split(b"\r\n")[0]
      and b"Sec-WebSocket-Accept" not in got, f"nothing but the 403: {got!r}")
got = raw_upgrade(URLS[0], q, GOOD)
check(got.startswith(b"HTTP/1.1 101 "), f"listed origin: 101 ({got[:40]!r})")
got = raw_upgrade(URLS[0], q, None)
check(got.startswith(b"HTTP/1.1 101 "), f"no Origin: 101 ({got[:40]!r})")
got = raw_upgrade(URLS[0], None, EVIL)
check(got.startswith(b"HTTP/1.1 101 "), f"foreign origin without ?tenant=: 101 ({got[:40]!r})")

check(session(URLS[0], t.id, t.secret, GOOD, q)[0] == "welcome", "listed origin: welcome")
check(session(URLS[0], t.id, t.secret, None, q)[0] == "welcome", "no Origin: welcome")
check(session(URLS[0], t.id, t.secret, None)[0] == "welcome", "no Origin, no ?tenant=: welcome")
refused(session(URLS[0], t.id, t.secret, EVIL), "forbidden", 4004,
        "foreign origin without ?tenant= (checked at auth)")
refused(session(URLS[0], t.id, t.secret, GOOD, f"tenant={unique('other')}"), "unauthorized",
        4001, "?tenant= of another tenant")
refused(session(URLS[1], t.id, t.secret, EVIL), "forbidden", 4004, "gateway 1 at auth")

check(refusals(OPS[0], "upgrade") >= before_up + 1, "refusals counted at the upgrade")
check(refusals(OPS[0], "auth") >= before_auth + 3, "refusals counted at auth")

# chat-admin replaces the list: applied by both gateways within the refresh.
out = admin_origins(t.id, EVIL)
check(EVIL in out and GOOD not in out, f"chat-admin prints the new list: {out.strip()}")
started = time.time()
check(until(lambda: raw_upgrade(URLS[0], q, GOOD).startswith(b"HTTP/1.1 403 ")),
      "gateway 0 refuses the old origin at the upgrade after the change")
check(until(lambda: session(URLS[1], t.id, t.secret, EVIL)[0] == "welcome"),
      "gateway 1 welcomes the new origin after the change")
print(f"   change applied in {time.time() - started:.1f} s", flush=True)
check(raw_upgrade(URLS[0], q, EVIL).startswith(b"HTTP/1.1 101 "), "the new origin: 101")
out = admin_origins(t.id)
check(EVIL in out, f"chat-admin shows the list: {out.strip()}")
status, body = call_json(api_base(stack), t, "GET", "/settings")
check(status == 200 and body.get("allowed_origins") == [EVIL],
      f"the server API sees chat-admin's change: {body.get('allowed_origins')}")
out = admin_origins(t.id, "--clear")
check("any origin" in out, f"--clear: {out.strip()}")
check(until(lambda: session(URLS[0], t.id, t.secret, "https://anything.example", q)[0]
            == "welcome"), "an empty list: any origin")
# Warm-up: a tenant that lists origins before a gateway starts is refused at that gateway's
# upgrade from the start.
t2 = Tenant(stack)
status, body = call_json(api_base(stack), t2, "PATCH", "/settings", {"allowed_origins": [GOOD]})
check(status == 200, f"second tenant's origins: {status} {body}")
log_path = os.path.join(stack["CHAT_STACK_DIR"], "logs", f"test-112-{os.getpid()}.log")
gw = OwnGateway(stack, GATEWAY_BIN, OWN_INDEX, log_path)
try:
    check(until(lambda: any(line.get("msg", "").startswith("tenant settings warmed")
                            for line in gw.log_lines()), 10), "the own gateway warmed its settings")
    got = raw_upgrade(gw.url, f"tenant={t2.id}", EVIL)
    check(got.startswith(b"HTTP/1.1 403 "), f"first foreign upgrade after start: 403 ({got[:40]!r})")
    got = raw_upgrade(gw.url, f"tenant={t2.id}", GOOD)
    check(got.startswith(b"HTTP/1.1 101 "), f"first listed upgrade after start: 101 ({got[:40]!r})")
finally:
    check(gw.stop() == 0, "the own gateway stops cleanly")

r = subprocess.run([ADMIN, "tenant", "origins", t.id, "https://Bad.example/path"],
                   env={**os.environ, **stack}, capture_output=True, text=True, timeout=60)
check(r.returncode == 2 and "allowed_origins[0]" in r.stderr,
      f"chat-admin refuses a malformed origin: {r.returncode} {r.stderr.strip()}")
finish()
