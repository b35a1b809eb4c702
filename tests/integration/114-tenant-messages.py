"""A tenant's message rate (limits.messages_per_s; issue 14 part 5) over all its users and both
gateways, without a Redis round trip per message: each gateway takes the share of the rate its
connections of the tenant make of all of them (README "Tenant settings: origins and quotas").
- limit 10/s, one connection on each gateway (5/s each): 30 sends at once from one connection
  get a few acks (its share's burst) and `error rate_limited` with the cid for the rest, and
  the connection stays open (not a strike towards 4008);
- a second later its share has refilled: sends are acked again;
- both gateways sending at once: the tenant's acks stay near the limit, not twice it;
- a refused cid resent later is acked and stored once;
- another tenant sending 30 at once is not limited by it;
- the refusals are counted per tenant (limit="messages_per_s")."""
import contextlib
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from api_client import Tenant, api_base, call_json, stack_load, unique  # noqa: E402
from checks import check, finish, scrape  # noqa: E402
from ws_client import Client  # noqa: E402

stack = stack_load()
URLS = stack["CHAT_GATEWAY_URLS"].split(",")
OPS = stack["CHAT_OPS_GATEWAYS"].split(",")
LIMIT = 10
REFUSALS = "chat_gateway_tenant_limit_refusals_total"


def burst(c, room, n, prefix):
    """Sends n messages at once; returns (acked cids, refused cids)."""
    cids = [f"{prefix}-{i}" for i in range(n)]
    for cid in cids:
        c.send({"type": "send", "room": room, "text": cid, "cid": cid})
    acked, refused = [], []
    for cid in cids:
        f = c.wait(lambda f, cid=cid: f.get("cid") == cid and f.get("type") in ("ack", "error"),
                   f"answer to {cid}", timeout=15)
        if f is not None and f["type"] == "ack":
            acked.append(cid)
        elif f is not None and f.get("code") == "rate_limited":
            refused.append(cid)
    return acked, refused


def refusals():
    return sum(v for ops in OPS for k, v in scrape(ops).items()
               if k.startswith(REFUSALS + "{") and 'limit="messages_per_s"' in k)


with contextlib.ExitStack() as sockets:
    t, other = Tenant(stack), Tenant(stack)
    status, _ = call_json(api_base(stack), t, "PATCH", "/settings",
                          {"limits": {"messages_per_s": LIMIT}})
    check(status == 200, f"messages_per_s {LIMIT}: {status}")
    room = unique("room")
    a = Client(sockets, t, unique("a"), URLS[0])
    b = Client(sockets, t, unique("b"), URLS[1])
    a.join(room)
    b.join(room)
    time.sleep(2.0)  # both gateways see each other's connection: 5/s each
    before = refusals()

    acked, refused = burst(a, room, 30, unique("burst"))
    print(f"   30 at once on gateway 0: {len(acked)} acked, {len(refused)} rate_limited",
          flush=True)
    check(2 <= len(acked) <= 9, f"about its share's burst acked (5 of 10/s): {len(acked)}")
    check(len(acked) + len(refused) == 30, "every other send refused with rate_limited and cid")
    time.sleep(1.2)
    acked2, _ = burst(a, room, 3, unique("later"))
    check(len(acked2) == 3, f"a second later its share has refilled: {len(acked2)} of 3 acked")
    f = a.post(room, "still open")
    check(f is not None and f["type"] in ("ack", "error"), "the connection is still open")

    # Both gateways at once: near the tenant's limit, not twice it.
    time.sleep(1.2)
    results = {}

    def run(name, c):
        results[name] = burst(c, room, 30, unique(name))

    threads = [threading.Thread(target=run, args=(n, c)) for n, c in (("a", a), ("b", b))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    total = sum(len(r[0]) for r in results.values())
    print(f"   30 at once on each gateway: {total} acked in all", flush=True)
    check(4 <= total <= LIMIT + 6, f"both gateways together stay near {LIMIT}: {total}")

    # A refused cid resent later: acked, stored once.
    time.sleep(1.2)
    cid = refused[0]
    f = a.post(room, cid, cid=cid)
    check(f is not None and f["type"] == "ack", f"a refused cid resent later is acked: {f}")
    rid = a.rid()
    a.send({"type": "history", "room": room, "limit": 100, "rid": rid})
    h = a.wait(lambda f: f.get("rid") == rid, "history")
    stored = [m for m in (h or {}).get("msgs", []) if m.get("cid") == cid]
    check(len(stored) == 1, f"stored once: {len(stored)}")

    o = Client(sockets, other, unique("o"), URLS[0])
    oroom = unique("room")
    o.join(oroom)
    oacked, orefused = burst(o, oroom, 30, unique("other"))
    check(len(oacked) == 30, f"another tenant is not limited by it: {len(oacked)} of 30 acked")
    check(refusals() >= before + len(refused), f"refusals counted: {refusals() - before}")
finish()
