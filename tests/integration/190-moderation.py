"""End to end: moderation on the running stack (gateway, message, broadcast, moderation, api).

A tenant sets its rules with PUT /v1/moderation/rules; a disguised bad word sent from one
client is replaced for the other client by an `update` {op: "moderate", removed: true} within
half a second of the message (the time is printed; the test allows 2 s on a loaded machine);
history shows it removed, a client that was offline gets the removal on resume, an edit that
brings a bad word is removed, ordinary text passes, the repeat rule flags into the review
queue, the rate rule mutes (the gateway answers `forbidden` "muted") until the mute ends, and
after a kill -9 of the moderation service in the middle of a stream every message is still
checked exactly once: each bad one removed with exactly one update, no flag twice.
"""
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from api_client import api_base, call_json, stack_load, Tenant, unique  # noqa: E402
from checks import check, finish  # noqa: E402
from ws_client import Client  # noqa: E402

stack = stack_load()
API = api_base(stack)
URLS = stack["CHAT_GATEWAY_URLS"].split(",")


def call(tenant, method, path, body=None, query=None):
    """(status, json) of an api call with a fresh server token."""
    return call_json(API, tenant, method, path, body, query)


def is_removal(room, mid):
    return lambda f: (f.get("type") == "update" and f.get("room") == room and
                      f.get("id") == mid and f.get("op") == "moderate")


RULES = {
    "blocklists": [{"name": "profanity", "words": ["badword", "fuck", "shit", "kill yourself"],
                    "match": "word", "action": "remove"}],
    "allow": ["scunthorpe"],
    "regex": [{"name": "card-numbers", "pattern": "\\b(?:\\d[ -]?){13,16}\\b",
               "action": "flag"}],
    "spam": {"repeat": {"count": 3, "window_s": 30, "action": "flag"}},
}

EVASIONS = ["ｂａｄｗｏｒｄ", "bad\u200dword", "bаdwоrd",  # fullwidth, ZWJ, Cyrillic а and о
            "b4dw0rd", "baaaadword", "b.a.d.w.o.r.d", "f*ck this", "what the ｆｕｃｋ",
            "sh1t happens", "Kill   Yourself"]
BENIGN = ["hello from Scunthorpe", "a classic assessment", "Guten Morgen, wie geht's?",
          "¿Dónde está la biblioteca?", "Привет, как дела?", "the price is 1999 euros",
          "c'est la vie, mon ami"]


def rules_put(tenant, rules):
    st, body = call(tenant, "PUT", "/moderation/rules", rules)
    check(st == 200, f"PUT /moderation/rules -> {st} {str(body)[:200]}")
    return st == 200


def main():
    A = Tenant(stack)
    room = unique("mod")
    if not rules_put(A, RULES):
        return
    st, body = call(A, "GET", "/moderation/rules")
    check(st == 200 and body.get("blocklists", [{}])[0].get("name") == "profanity",
          "GET /moderation/rules returns the rule set")
    st, body = call(A, "PUT", "/moderation/rules",
                    {"blocklists": [{"name": "x", "words": ["a" * 65], "action": "remove"}]})
    check(st == 400 and "blocklists[0].words[0]" in json.dumps(body),
          f"a bad rule set is refused naming the field: {st} {str(body)[:200]}")
    time.sleep(2.0)  # rule changes apply on every instance within 2 s

    with contextlib.ExitStack() as sockets:
        alice = Client(sockets, A, "alice", URLS[0])
        bob = Client(sockets, A, "bob", URLS[-1])
        alice.join(room)
        joined = bob.join(room)
        check(joined.get("useq", 0) == 0, "a new room starts without updates")

        # Evasions: each removed for bob, the time from bob's msg to bob's removal measured.
        latencies = []
        removed_ids = []
        for i, text in enumerate(EVASIONS):
            ack = alice.post(room, text, cid=f"ev-{i}")
            if ack is None or ack["type"] != "ack":
                check(False, f"send {text!r}: {ack}")
                continue
            mid = ack["id"]
            m = bob.wait(lambda f: f.get("type") == "msg" and f.get("id") == mid, "msg")
            u = bob.wait(is_removal(room, mid), f"removal of {text!r}", timeout=5)
            ok = m is not None and u is not None and u.get("removed") is True and \
                u.get("reason") == "profanity" and "text" not in u
            check(ok, f"{text!r} is removed for the other client: {u}")
            if ok:
                latencies.append((u["_at"] - m["_at"]) * 1000)
                removed_ids.append(mid)
        if latencies:
            p = sorted(latencies)
            print(f"msg -> removal at the other client: median {statistics.median(p):.1f} ms, "
                  f"max {p[-1]:.1f} ms over {len(p)} messages")
            check(p[-1] < 2000, "every removal arrived within 2 s (the target is 500 ms; see "
                                "bench/README.md for the measured figures)")

        # Ordinary text passes.
        benign_ids = []
        for i, text in enumerate(BENIGN):
            ack = alice.post(room, text, cid=f"ok-{i}")
            check(ack is not None and ack["type"] == "ack", f"send {text!r}")
            if ack is not None and ack["type"] == "ack":
                benign_ids.append(ack["id"])
        frames = bob.drain(1.5)
        hit = [f for f in frames if f.get("type") == "update" and f.get("id") in benign_ids]
        check(not hit, f"ordinary text in five languages is not touched: {hit}")

        # An edit that brings a bad word is removed.
        ack = alice.post(room, "a perfectly fine sentence", cid="edit-base")
        mid = ack["id"]
        alice.send({"type": "edit", "room": room, "id": mid, "text": "now it is a badword",
                    "rid": "edit-1"})
        u = bob.wait(is_removal(room, mid), "removal of the edited message", timeout=5)
        check(u is not None and u.get("removed") is True, f"an edit with a bad word is removed: {u}")
        removed_ids.append(mid)

        # History shows removed messages without text, with the reason.
        rid = alice.rid()
        alice.send({"type": "history", "room": room, "rid": rid, "limit": 100})
        h = alice.wait(lambda f: f.get("rid") == rid, "history")
        msgs = {m["id"]: m for m in (h or {}).get("msgs", [])}
        bad = [i for i in removed_ids if not (msgs.get(i, {}).get("removed") is True and
                                              "text" not in msgs.get(i, {}) and
                                              msgs[i].get("reason") == "profanity")]
        check(h is not None and not bad, f"history shows every removal (wrong: {bad})")

        # A client that held every message and none of their changes (since = the latest seq,
        # usince = 0) resumes and gets every removal once, as an update.
        latest = max((m["seq"] for m in msgs.values()), default=0)
        carol = Client(sockets, A, "carol", URLS[0])
        j = carol.join(room, since=latest, usince=0)
        ups = [f for f in carol.drain(1.5) if f.get("type") == "update"]
        got = sorted(f["id"] for f in ups if f.get("op") == "moderate")
        # The room's changes: each removal, and the one edit.
        check(got == sorted(removed_ids) and j.get("useq") == len(removed_ids) + 1,
              f"a resume gets each removal exactly once ({len(got)} of {len(removed_ids)}, "
              f"useq {j.get('useq')})")

        # The repeat rule: the third copy within 30 s is flagged for review.
        spam_ids = []
        for i in range(3):
            ack = alice.post(room, "buy cheap watches now", cid=f"rep-{i}")
            spam_ids.append(ack["id"])
        flagged = None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and flagged is None:
            st, body = call(A, "GET", "/moderation/flags", query={"limit": 100})
            if st == 200:
                flagged = next((f for f in body.get("flags", [])
                                if f.get("message") == spam_ids[2] and f.get("rule") == "repeat"),
                               None)
            if flagged is None:
                time.sleep(0.3)
        check(flagged is not None and flagged.get("state") == "pending",
              f"the third repeat waits in the review queue: {flagged}")
        st, body = call(A, "GET", "/moderation/flags", query={"limit": 100})
        early = [f for f in (body or {}).get("flags", []) if f.get("message") in spam_ids[:2]]
        check(st == 200 and not early, "the first two copies are not flagged")

    mute_test()
    kill_test()


def mute_test():
    """rate: more than 3 messages a minute mutes for 3 s; the gateway answers forbidden
    "muted"; after the mute the user sends again."""
    B = Tenant(stack)
    room = unique("flood")
    if not rules_put(B, {"spam": {"rate": {"per_min": 3, "action": "mute", "mute_s": 3}}}):
        return
    time.sleep(2.0)
    with contextlib.ExitStack() as sockets:
        dave = Client(sockets, B, "dave", URLS[0])
        dave.join(room)
        for i in range(4):
            a = dave.post(room, f"message {i}", cid=f"flood-{i}")
            check(a is not None and a["type"] == "ack", f"message {i} of the flood is stored")
        muted = None
        deadline = time.monotonic() + 5
        i = 4
        while time.monotonic() < deadline:
            a = dave.post(room, f"message {i}", cid=f"flood-{i}")
            i += 1
            if a is not None and a["type"] == "error":
                muted = a
                break
            time.sleep(0.1)
        check(muted is not None and muted.get("code") == "forbidden" and
              muted.get("message") == "muted",
              f"after the flood a send is refused as muted: {muted}")
        time.sleep(3.5)
        a = dave.post(room, "back again", cid="after-mute")
        check(a is not None and a["type"] == "ack", f"after the mute ends the user sends: {a}")


def kill_test():
    """kill -9 of moderation while a stream of messages (every third one bad) flows; after a
    restart each bad message is removed exactly once and each good one untouched."""
    C = Tenant(stack)
    room = unique("kill")
    if not rules_put(C, {"blocklists": [{"name": "profanity", "words": ["badword"],
                                          "action": "remove"}],
                         "regex": [{"name": "seven", "pattern": "seven", "action": "flag"}]}):
        return
    time.sleep(2.0)
    pidfile = os.path.join(stack["CHAT_STACK_PIDS"], "moderation.pid")
    total, bad, flagged = 60, set(), set()
    with contextlib.ExitStack() as sockets:
        erin = Client(sockets, C, "erin", URLS[0])
        frank = Client(sockets, C, "frank", URLS[-1])
        erin.join(room)
        frank.join(room)
        killed = False
        for i in range(total):
            text = f"message {i}" + (" badword" if i % 3 == 0 else "") + \
                (" seven" if i % 7 == 0 else "")
            a = erin.post(room, text, cid=f"k-{i}")
            if a is None or a["type"] != "ack":
                check(False, f"stream message {i} stored: {a}")
                continue
            if i % 3 == 0:
                bad.add(a["id"])
            if i % 7 == 0:
                flagged.add(a["id"])
            if i == total // 2 and not killed:
                with open(pidfile) as f:
                    os.kill(int(f.read().strip()), signal.SIGKILL)
                killed = True
                print(f"moderation killed after {i + 1} messages", flush=True)
            time.sleep(0.02)
        up = [os.path.join(stack["CHAT_SOURCE_DIR"], "scripts", "up"), "--state-dir",
              stack["CHAT_STACK_DIR"], "--build-dir", stack["CHAT_BUILD_DIR"], "--no-build"]
        r = subprocess.run(up, capture_output=True, text=True, timeout=300)
        check(r.returncode == 0, f"scripts/up restarts moderation ({r.returncode}) "
                                 f"{r.stderr[-300:]}")
        deadline = time.monotonic() + 30
        seen = {}
        while time.monotonic() < deadline and set(seen) != bad:
            for f in frank.drain(0.5):
                if f.get("type") == "update" and f.get("op") == "moderate":
                    seen[f["id"]] = seen.get(f["id"], 0) + 1
        check(set(seen) == bad, f"every bad message removed after the restart "
                                f"({len(set(seen) & bad)} of {len(bad)}; extra "
                                f"{len(set(seen) - bad)})")
        frames = frank.drain(2.0)
        for f in frames:
            if f.get("type") == "update" and f.get("op") == "moderate":
                seen[f["id"]] = seen.get(f["id"], 0) + 1
        # Exactly once: the room's useq counts every removal once, and a resume agrees.
        grace = Client(sockets, C, "grace", URLS[0])
        j = grace.join(room, since=total, usince=0)
        ups = [f for f in grace.drain(1.5) if f.get("type") == "update"]
        check(j.get("useq") == len(bad) and sorted(f["id"] for f in ups) == sorted(bad),
              f"each removal applied once: useq {j.get('useq')} for {len(bad)} bad messages")
        st, body = call(C, "GET", "/moderation/flags", query={"limit": 100})
        ids = [f.get("message") for f in (body or {}).get("flags", [])]
        check(st == 200 and sorted(ids) == sorted(flagged),
              f"each flag recorded once ({len(ids)} flags for {len(flagged)} messages)")


if __name__ == "__main__":
    main()
    finish()
