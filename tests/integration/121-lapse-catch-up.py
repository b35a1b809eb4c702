"""A gateway whose registration of a room lapsed catches the room's members up: what broadcast
sent elsewhere meanwhile reaches them once its heartbeat finds the lapse (join.h:
gw_join_catch_up), without waiting for the room's next message.

A registration lapses when the gateway's heartbeat comes too late (test 118 shows what keeps
it in time); broadcast then leaves the gateway out of the room. Here a gateway of the test's
own (heartbeat 1 s, so registrations expire after 3 s) is stopped with SIGSTOP for longer than
that; meanwhile, on the stack's gateway, a message is posted and an earlier one edited. The
gateway is continued. Checks: its member gets the message (once, in seq order) and the edit's
update within a few seconds, and nothing twice; the gateway counted the lapse and the frames
it sent to catch up; another member who joins afterwards is not affected (sees the room as
it is). With the gateway before the catch-up, the member gets neither."""
import contextlib
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from api_client import Tenant, stack_load, unique  # noqa: E402
from checks import check, finish, scrape  # noqa: E402
from own_gateway import registration_margin_ms, test_gateway  # noqa: E402
from ws_client import Client  # noqa: E402

stack = stack_load()
URLS = stack["CHAT_GATEWAY_URLS"].split(",")
OWN_INDEX = "8"  # a partition of chat.deliver the stack's gateways and other tests do not use
TTL_S = 3        # 3 heartbeats of 1 s


def registered(key):
    """True if the own gateway's registration in the gws set key has not expired."""
    margin = registration_margin_ms(stack, key, OWN_INDEX)
    return margin is not None and margin > 0


gw = test_gateway(stack, OWN_INDEX, "121", {"CHAT_GATEWAY_HEARTBEAT": "1s"})
try:
    with contextlib.ExitStack() as socks:
        tenant = Tenant(stack)
        room = unique("lapse")
        member = Client(socks, tenant, "member", gw.url)
        sender = Client(socks, tenant, "sender", URLS[0])
        member.join(room)
        sender.join(room)
        first = sender.post(room, "before the lapse")
        check(first is not None and first.get("type") == "ack", f"first send acked: {first}")
        got = member.wait(lambda f: f.get("type") == "msg" and f.get("room") == room, "msg")
        check(got is not None and got["seq"] == first["seq"], f"the member got it live: {got}")
        key = f"chat:room:{{{tenant.id}/{room}}}:gws"
        check(registered(key), "the own gateway is registered in the room")

        # The gateway stops past its registration's expiry; the room goes on without it.
        gw.proc.send_signal(signal.SIGSTOP)
        try:
            deadline = time.monotonic() + TTL_S + 5
            while registered(key) and time.monotonic() < deadline:
                time.sleep(0.2)
            check(not registered(key), "the stopped gateway's registration expired")
            missed = sender.post(room, "during the lapse")
            check(missed is not None and missed.get("type") == "ack", f"sent in the lapse: {missed}")
            sender.send({"type": "edit", "room": room, "id": first["id"],
                         "text": "edited in the lapse", "rid": "edit-1"})
            edited = sender.wait(lambda f: f.get("rid") == "edit-1", "edit answer", timeout=15)
            check(edited is not None and edited.get("type") == "ack",
                  f"the edit was acked: {edited}")
            # The sender gets both from broadcast too: once it has the update (after the
            # message, in the room's order), broadcast has routed both, without the stopped
            # gateway.
            own = sender.wait(lambda f: f.get("type") == "update" and f.get("id") == first["id"],
                              "the sender's own update", timeout=15)
            check(own is not None, f"broadcast delivered the update to the sender: {own}")
        finally:
            gw.proc.send_signal(signal.SIGCONT)

        msg = member.wait(lambda f: f.get("type") == "msg" and f.get("room") == room, "msg",
                          timeout=10)
        check(msg is not None and msg["seq"] == missed["seq"] and
              msg["text"] == "during the lapse",
              f"the member got the message sent during the lapse after the gateway went on: {msg}")
        upd = member.wait(lambda f: f.get("type") == "update" and f.get("id") == first["id"],
                          "update", timeout=10)
        check(upd is not None and upd.get("text") == "edited in the lapse",
              f"and the edit's update: {upd}")
        extra = [f for f in member.drain(1.5) if f.get("type") in ("msg", "update")]
        check(not extra, f"nothing twice: {extra}")
        check(registered(key), "the gateway is registered again")
        m = scrape(gw.ops_url(""))
        lapsed = m.get("chat_gateway_registrations_lapsed_total")
        frames = m.get("chat_gateway_lapse_caught_up_frames_total")
        check(lapsed is not None and lapsed >= 1, f"the lapse was counted: {lapsed}")
        check(frames == 2, f"two frames sent to catch up (the message, the update): {frames}")

        late = Client(socks, tenant, "late", gw.url)
        j = late.join(room)
        check(j["seq"] == missed["seq"], f"a member joining now sees the room as it is: {j}")
finally:
    rc = gw.stop()
check(rc == 0, f"the own gateway stopped cleanly: {rc}")
check("caught up a room after a lapsed registration" in gw.log_text(), "the catch-up was logged")
finish()
