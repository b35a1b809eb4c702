"""A gateway whose MongoDB reads are slow keeps its rooms' registrations alive, so its members
miss nothing (services/gateway/gateway.h: the registration workers never wait behind a read).

Found by bench/noisy: with joins reading a big `messages` collection for seconds, the heartbeat
that refreshes a gateway's registrations (Redis, score = expiry) queued behind those reads on
the same worker threads, the registrations expired, broadcast stopped sending the rooms to that
gateway, and its connected members lost acknowledged messages without a sign.

Here a gateway of the test's own reaches MongoDB through a TCP proxy that delays every answer
by DELAY s (a slow store, as under a heavy scan; writes of the other services go straight to
the store). It heartbeats every second (registrations expire after 3 s). A member joins a room
on it; then, with the store slow, the member asks for its room list ROOMS_ASKS times (reads
that keep both readers busy for far longer than 3 s) while a sender on the stack's gateway
posts a message every half second. Checks: the own gateway's registration never lapsed
(polled in Redis, and chat_gateway_registrations_lapsed_total stays 0), the member got every
acked message once and in order, and every room list was answered once the store is fast
again."""
import contextlib
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from api_client import Tenant, stack_load, unique  # noqa: E402
from checks import check, finish, scrape  # noqa: E402
from delay_proxy import slow_store_gateway  # noqa: E402
from own_gateway import registration_margin_ms  # noqa: E402
from ws_client import Client  # noqa: E402

stack = stack_load()
URLS = stack["CHAT_GATEWAY_URLS"].split(",")
OWN_INDEX = "9"  # a partition of chat.deliver the stack's gateways and other tests do not use
DELAY = 1.5       # s added to every answer of the store while slow
ROOMS_ASKS = 8    # room list reads queued on the 2 readers: >= 8 x 1.5 s / 2 = 6 s busy
SENDS = 14        # one every 0.5 s while the store is slow


proxy, gw = slow_store_gateway(stack, OWN_INDEX, "118", {
    "CHAT_GATEWAY_HEARTBEAT": "1s", "CHAT_GATEWAY_WORKERS": "2",
    "CHAT_GATEWAY_REGISTRATION_WORKERS": "1"})
try:
    with contextlib.ExitStack() as socks:
        tenant = Tenant(stack)
        room = unique("slow-store")
        member = Client(socks, tenant, "member", gw.url)
        sender = Client(socks, tenant, "sender", URLS[0])
        joined = member.join(room)
        sender.join(room)
        key = f"chat:room:{{{tenant.id}/{room}}}:gws"
        check(registration_margin_ms(stack, key, OWN_INDEX) is not None,
              "the own gateway is registered in the room after the join")

        proxy.delay = DELAY
        for i in range(ROOMS_ASKS):
            member.send({"type": "rooms", "rid": f"rooms-{i}"})
        acked, margins = [], []
        started = time.monotonic()
        for i in range(SENDS):
            a = sender.post(room, f"slow store {i}")
            if a is not None and a.get("type") == "ack":
                acked.append(a["seq"])
            m = registration_margin_ms(stack, key, OWN_INDEX)
            margins.append(-1e9 if m is None else m)
            time.sleep(max(0.0, started + 0.5 * (i + 1) - time.monotonic()))
        slow_for = time.monotonic() - started
        proxy.delay = 0.0

        check(len(acked) == SENDS, f"every send acked while the store was slow: {len(acked)}")
        check(min(margins) > 0,
              f"the registration never lapsed over {slow_for:.1f} s of slow reads (least time "
              f"left before expiry: {min(margins):.0f} ms; the TTL is 3 s)")
        got = []
        deadline = time.monotonic() + 20
        while len(got) < len(acked) and time.monotonic() < deadline:
            f = member.wait(lambda f: f.get("type") == "msg" and f.get("room") == room,
                            "msg", timeout=max(0.1, deadline - time.monotonic()))
            if f is None:
                break
            got.append(f["seq"])
        expected = list(range(joined["seq"] + 1, joined["seq"] + 1 + len(acked)))
        check(got == acked == expected,
              f"the member got every acked message once, in order: {got} (acked {acked})")
        answered = 0
        for i in range(ROOMS_ASKS):
            f = member.wait(lambda f, i=i: f.get("rid") == f"rooms-{i}", "rooms", timeout=30)
            answered += f is not None and f.get("type") == "rooms"
        check(answered == ROOMS_ASKS,
              f"every room list read was answered once the store was fast: {answered}")
        lapsed = scrape(gw.ops_url("")).get("chat_gateway_registrations_lapsed_total")
        check(lapsed == 0, f"chat_gateway_registrations_lapsed_total is 0: {lapsed}")
finally:
    rc = gw.stop()
check(rc == 0, f"the own gateway stopped cleanly: {rc}")
check("registrations had lapsed" not in gw.log_text(), "no lapse logged")
finish()
