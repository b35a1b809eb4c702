"""A connection's sends are stored in the order it sent them, also in a room it has not joined
and across a join sent in the middle of them, while the gateway's MongoDB reads are slow.

A send to a room the connection has not joined, whose kind the gateway does not know, waits for
a lookup of the room on the gateway's reader threads (services/gateway/act_check.c). Found by
the widget's browser test (a reload with two queued messages stored them swapped): the page
sent its first queued message before its join (a lookup), the second after the join (at once),
and the lookup, queued on a reader behind the page's other reads, came last. The lookups ran on
any reader; one room's now run in order on the room's reader, and an action in a room with
lookups under way goes behind them even once the room is joined.

Here a gateway of the test's own (two readers) reaches MongoDB through a proxy that delays every
answer by DELAY s. A user asks for its room list (a read that keeps one reader busy), then,
without waiting for any answer, sends BEFORE messages to a room it has not joined, a join, and
AFTER messages more. Checks: every send is acked with the seq of its place (1, 2, 3...), the
joined answer comes, and no error. With the lookups on any reader the acks come out of order."""
import contextlib
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from api_client import Tenant, stack_load, unique  # noqa: E402
from checks import check, finish  # noqa: E402
from delay_proxy import slow_store_gateway  # noqa: E402
from ws_client import Client  # noqa: E402

stack = stack_load()
OWN_INDEX = "15"  # a partition of chat.deliver the stack's gateways and other tests do not use
DELAY = 0.4       # s added to every answer of the store while slow
BEFORE, AFTER = 6, 4

proxy, gw = slow_store_gateway(stack, OWN_INDEX, "119", {"CHAT_GATEWAY_WORKERS": "2"})
try:
    with contextlib.ExitStack() as socks:
        tenant = Tenant(stack)
        room = unique("act-order")
        alice = Client(socks, tenant, "alice", gw.url)
        proxy.delay = DELAY
        alice.send({"type": "rooms", "rid": "rooms-1"})
        cids = [f"order-{i}" for i in range(BEFORE + AFTER)]
        for i, cid in enumerate(cids):
            if i == BEFORE:
                alice.send({"type": "join", "room": room, "rid": "join-1"})
            alice.send({"type": "send", "room": room, "cid": cid, "text": cid})
        seqs = []
        for cid in cids:
            f = alice.wait(lambda f, cid=cid: f.get("cid") == cid and f.get("type") in
                           ("ack", "error"), f"answer to {cid}", timeout=60)
            seqs.append(f.get("seq") if f is not None and f["type"] == "ack" else f)
        check(seqs == list(range(1, len(cids) + 1)),
              f"{BEFORE} sends before the join and {AFTER} after it stored in the order sent: "
              f"seqs {seqs}")
        joined = alice.wait(lambda f: f.get("rid") == "join-1", "joined", timeout=30)
        check(joined is not None and joined["type"] == "joined", f"the join was answered: {joined}")
        rooms = alice.wait(lambda f: f.get("rid") == "rooms-1", "rooms", timeout=30)
        check(rooms is not None and rooms["type"] == "rooms", "the room list was answered")
        errors = [f for f, _ in alice.pending if f.get("type") == "error"]
        check(not errors, f"no error: {errors}")
        proxy.delay = 0.0
finally:
    rc = gw.stop()
check(rc == 0, f"the own gateway stopped cleanly: {rc}")
finish()
