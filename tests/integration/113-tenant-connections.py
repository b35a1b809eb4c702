"""A tenant's limit of concurrent connections (limits.connections; issue 14 part 5), counted
over both gateways through Redis (common/fleet_count.h; README "Tenant settings: origins and
quotas"):
- limit 3: two connections on gateway 0 and one on gateway 1 are welcomed; once the counts
  are shared (CHAT_GATEWAY_QUOTA_PERIOD, 1 s), a fourth on either gateway gets error
  rate_limited and close 4003 (the refusal counted per tenant);
- another tenant is not affected;
- one closes: a new connection on the other gateway is welcomed again within about a period;
- crash safety: the counts of a gateway that died (a string chat:conns:<id> that is no longer
  refreshed, written here by hand with a 2 s expiry) count until they expire, then not;
- raising the limit with PATCH /v1/settings applies within the settings refresh."""
import contextlib
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from api_client import Tenant, api_base, call_json, stack_load, unique, user_token  # noqa: E402
from checks import check, finish, scrape  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

stack = stack_load()
URLS = stack["CHAT_GATEWAY_URLS"].split(",")
OPS = stack["CHAT_OPS_GATEWAYS"].split(",")
REFUSALS = "chat_gateway_tenant_limit_refusals_total"
PERIOD = 1.0  # CHAT_GATEWAY_QUOTA_PERIOD of the stack (the default)
SOCKETS = contextlib.ExitStack()  # every connection is closed at the end at the latest


def open_conn(url, tenant):
    """A connection and the answer to its auth: (ws, "welcome") kept open, or (None, (error
    frame, close code))."""
    ws = SOCKETS.enter_context(connect(url, open_timeout=10))
    ws.send(json.dumps({"type": "auth", "token": user_token(tenant.id, tenant.secret,
                                                            unique("u"))}))
    f = json.loads(ws.recv(timeout=10))
    if f.get("type") == "welcome":
        return ws, "welcome"
    code = None
    try:
        ws.recv(timeout=5)
    except ConnectionClosed as e:
        code = e.rcvd.code if e.rcvd is not None else None
    ws.close()
    return None, (f, code)


def refused(result, what):
    ws, answer = result
    ok = ws is None and answer[0].get("code") == "rate_limited" and answer[1] == 4003
    check(ok, f"{what}: error rate_limited and close 4003: {answer}")
    if ws is not None:
        ws.close()


def redis(*args, checked=True):
    """Runs a redis-cli command and returns its output; checked: its success is a check (off
    for polling, which would print a line per try)."""
    r = subprocess.run(["redis-cli", "-u", stack["CHAT_REDIS_URL"], *args],
                       capture_output=True, text=True, timeout=10)
    if checked:
        check(r.returncode == 0, f"redis-cli {' '.join(args)}: {r.stdout.strip()}")
    return r.stdout.strip()


def until(pred, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.2)
    return None


def refusals(ops, tenant):
    return sum(v for k, v in scrape(ops).items()
               if k.startswith(REFUSALS + "{") and 'limit="connections"' in k)


t, other = Tenant(stack), Tenant(stack)
status, body = call_json(api_base(stack), t, "PATCH", "/settings", {"limits": {"connections": 3}})
check(status == 200 and body["limits"]["connections"] == 3, f"limit 3: {status}")
before = refusals(OPS[0], t.id) + refusals(OPS[1], t.id)

held = []
for url in (URLS[0], URLS[0], URLS[1]):
    ws, answer = open_conn(url, t)
    check(answer == "welcome", f"{url}: welcomed under the limit ({answer})")
    if ws is not None:
        held.append(ws)
time.sleep(2 * PERIOD)  # the counts reach the other gateway
refused(open_conn(URLS[0], t), "a fourth connection on gateway 0")
refused(open_conn(URLS[1], t), "a fourth connection on gateway 1 (counted over both)")
ws, answer = open_conn(URLS[1], other)
check(answer == "welcome", f"another tenant is not limited by it ({answer})")
if ws is not None:
    ws.close()
after = refusals(OPS[0], t.id) + refusals(OPS[1], t.id)
check(after >= before + 2, f"refusals counted: {before} -> {after}")

# One goes (gateway 0): a connection on gateway 1 gets in within about a period.
held.pop(0).close()
started = time.time()
got = until(lambda: (lambda r: r if r[0] is not None else None)(open_conn(URLS[1], t)),
            4 * PERIOD)
check(got is not None, "a freed slot is usable on the other gateway")
print(f"   freed slot seen by the other gateway after {time.time() - started:.1f} s", flush=True)
if got is not None:
    held.append(got[0])

# A dead gateway's counts: they count until their string expires, then not.
for ws in held:
    ws.close()
held = []
time.sleep(2 * PERIOD)
redis("SET", "chat:conns:dead-test", f"{t.id}=3", "PX", "2500")
redis("SADD", "chat:conns:instances", "dead-test")
time.sleep(1.5 * PERIOD)
refused(open_conn(URLS[0], t), "a dead gateway's 3 connections still count before they expire")
started = time.time()
got = until(lambda: (lambda r: r if r[0] is not None else None)(open_conn(URLS[0], t)), 6)
check(got is not None, "they stop counting once expired")
print(f"   a dead gateway's counts stopped counting {time.time() - started:.1f} s later "
      "(2.5 s expiry)", flush=True)
if got is not None:
    got[0].close()
# ... and it leaves the set of instances, also when live instances' replies follow its own in
# the gateways' pipelined reads (a removal sent before those were read was refused, and the
# dead instance stayed listed for good): live fakes listed after it, with counts of a tenant
# of their own.
LIVE_FAKES = [f"live-test-{k}" for k in range(8)]
for name in LIVE_FAKES:
    redis("SET", f"chat:conns:{name}", f"{unique('other')}=1", "PX", "30000")
redis("SET", "chat:conns:dead-test", f"{t.id}=0", "PX", "300")
redis("SADD", "chat:conns:instances", "dead-test", *LIVE_FAKES)
gone = until(lambda: redis("SISMEMBER", "chat:conns:instances", "dead-test", checked=False) == "0", 6)
check(gone is not None, "an expired instance leaves chat:conns:instances, live ones listed "
      "beside it")
redis("SREM", "chat:conns:instances", *LIVE_FAKES)
redis("DEL", *[f"chat:conns:{name}" for name in LIVE_FAKES])

# A higher limit applies within the settings refresh.
for _ in range(3):
    ws, answer = open_conn(URLS[0], t)
    if ws is not None:
        held.append(ws)
check(len(held) == 3, f"at the limit again: {len(held)} open")
status, _ = call_json(api_base(stack), t, "PATCH", "/settings", {"limits": {"connections": 4}})
check(status == 200, "limit 4")
got = until(lambda: (lambda r: r if r[0] is not None else None)(open_conn(URLS[0], t)), 5)
check(got is not None, "the raised limit applies")
if got is not None:
    held.append(got[0])
SOCKETS.close()
finish()
