"""The server API's moderation resources on the fixture's stack (api, message service,
moderation service): a rule set's round trip and a refusal naming its field; messages sent
through the api before the tenant had rules, then a rescan polled to done with its counts; the
review queue holds the flagged messages with the rule, kind and text (a `mute` hit only
flagged: its author can still send); the rescan's removal and a moderator's removal show in the
room's history as `removed` with their reasons; a dismissal, the same review twice, the other
review after it (409); a second rescan makes no duplicate flag; another tenant sees and changes
nothing of it, and its own rescan without rules is done at once; a rule set of 2 x 10,000 entries
(over the service's usual 1 MiB body limit) is stored and read back. Every answer is checked
against proto/openapi.yaml."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from api_client import Api, Contract, Tenant, q, stack_load, unique  # noqa: E402
from checks import check, finish  # noqa: E402



stack = stack_load()
contract = Contract(os.path.join(stack["CHAT_SOURCE_DIR"], "proto", "openapi.yaml"))
api = Api(stack["CHAT_API_URL"], contract)
A = Tenant(stack)
B = Tenant(stack)
room = unique("modapi")
alice, bob, carol = (unique(n) for n in ("alice", "bob", "carol"))

RULES = {
    "blocklists": [
        {"name": "profanity", "words": ["badword", "worseword"], "match": "word",
         "action": "remove"},
        {"name": "watch", "words": ["sneaky"], "match": "word", "action": "flag"},
    ],
    "regex": [{"name": "shouting", "pattern": "shout[0-9]+", "action": "mute", "mute_s": 600}],
}


def call(method, path, tenant, body=None, query=None, status=None, what=""):
    """An api call as tenant; checks the status when given."""
    a = api.call(method, path, tenant.token(), body, query=query)
    if status is not None:
        check(a.status == status, f"{what}: {status} (got {a!r})")
    return a


def send(user, text, cid):
    a = call("POST", f"/rooms/{q(room)}/messages", A, {"from": user, "text": text, "cid": cid},
             status=201, what=f"{user} sends {text!r}")
    return (a.json or {}).get("id")


def history():
    a = call("GET", f"/rooms/{q(room)}/messages", A, query={"limit": 100})
    return {m["id"]: m for m in (a.json or {}).get("messages", [])}


def wait_removed(mid, reason, what, timeout=15):
    """Polls the room's history until message mid is removed; checks the reason."""
    deadline = time.time() + timeout
    m = None
    while time.time() < deadline:
        m = history().get(mid)
        if m and m.get("removed"):
            break
        time.sleep(0.3)
    check(m is not None and m.get("removed") is True and "text" not in m
          and m.get("reason") == reason, f"{what}: removed in the history, reason {reason!r} ({m})")


def rescan(tenant, body, what):
    """Starts a rescan and polls it until it ends; returns its last state."""
    a = call("POST", "/moderation/rescan", tenant, body, status=202, what=what)
    job = (a.json or {}).get("id")
    check(a.headers.get("location") == f"/v1/moderation/rescan/{job}",
          f"{what}: Location {a.headers.get('location')}")
    deadline = time.time() + 90
    r = None
    while job and time.time() < deadline:
        r = call("GET", f"/moderation/rescan/{job}", tenant).json
        if r and r.get("state") in ("done", "failed"):
            break
        time.sleep(0.5)
    check(r is not None and r.get("state") == "done", f"{what}: done ({r})")
    return r or {}


def flags(tenant, state=None):
    """Every flag of tenant in state (all pages), newest first."""
    out, cursor = [], None
    for _ in range(50):
        query = {"limit": 2}
        if state:
            query["state"] = state
        if cursor:
            query["cursor"] = cursor
        a = call("GET", "/moderation/flags", tenant, query=query, status=200,
                 what=f"a page of {state or 'pending'} flags")
        body = a.json or {}
        out += body.get("flags", [])
        cursor = body.get("next")
        if not cursor:
            break
    return out


def main():
    r = call("GET", "/moderation/rules", A, status=200, what="rules before any")
    check(r.json == {}, f"a tenant without rules reads {{}} ({r.json})")

    # Sent before the tenant has rules: the moderation service lets them be; the rescan finds them.
    t0 = int(time.time() * 1000)
    ids = {
        "clean": send(alice, "hello there", "c1"),
        "bad": send(bob, "this is a badword here", "c2"),
        "flag1": send(alice, "something sneaky going on", "c3"),
        "flag2": send(bob, "another sneaky one", "c4"),
        "mute": send(carol, "shout123 very loud", "c5"),
        "clean2": send(carol, "all fine", "c6"),
    }

    r = call("PUT", "/moderation/rules", A, RULES, status=200, what="set the rules")
    check(r.json == RULES, "the PUT answers the rule set")
    r = call("GET", "/moderation/rules", A, status=200, what="read the rules")
    check(r.json == RULES, f"the rules read back as set ({r.json})")
    bad = {"blocklists": [RULES["blocklists"][0],
                          {"name": "long", "words": ["a", "b", "c", "x" * 65], "action": "flag"}]}
    r = call("PUT", "/moderation/rules", A, bad, status=400, what="a 65-character entry")
    err = (r.json or {}).get("error", {})
    check(err.get("message", "").startswith("blocklists[1].words[3]: ")
          and err.get("field") == "blocklists[1].words[3]",
          f"the refusal names the field and the reason: {err}")
    r = call("GET", "/moderation/rules", A, status=200, what="the rules after the refusal")
    check(r.json == RULES, "the refused rule set changed nothing")

    first = rescan(A, {"room": room, "since": t0 - 1000}, "a rescan of the room")
    check(first.get("scanned") == 6 and first.get("matched") == 4 and first.get("removed") == 1
          and first.get("flagged") == 3 and first.get("room") == room
          and first.get("since") == t0 - 1000,
          f"the rescan's counts: 6 scanned, 4 matched, 1 removed, 3 flagged ({first})")

    pending = [f for f in flags(A) if f["room"] == room]
    by_msg = {f["message"]: f for f in pending}
    check(len(pending) == 3 and set(by_msg) == {ids["flag1"], ids["flag2"], ids["mute"]},
          f"the queue holds the three flagged messages: {pending}")
    f1, f2, fm = (by_msg.get(ids[k], {}) for k in ("flag1", "flag2", "mute"))
    check(f1.get("rule") == "watch" and f1.get("kind") == "blocklist"
          and f1.get("text") == "something sneaky going on" and f1.get("from") == alice
          and f1.get("state") == "pending" and f1.get("seq", 0) > 0,
          f"a flag carries its rule, kind, text and author: {f1}")
    check(fm.get("rule") == "shouting" and fm.get("kind") == "regex"
          and fm.get("text") == "shout123 very loud",
          f"a mute rule's hit is a flag in a rescan: {fm}")
    ts = [f["ts"] for f in pending]
    check(ts == sorted(ts, reverse=True), "newest first")
    send(carol, "still here", "c7")  # a rescan mutes nobody

    wait_removed(ids["bad"], "profanity", "the rescan's removal")
    h = history()
    check(not h.get(ids["clean"], {}).get("removed") and not h.get(ids["flag1"], {}).get("removed"),
          "clean and flagged messages stay")

    # Reviews.
    f = f"/moderation/flags/{f1.get('id')}"
    d = call("POST", f, A, {"action": "dismiss", "moderator": "ann"}, status=200, what="dismiss")
    check((d.json or {}).get("state") == "dismissed"
          and (d.json or {}).get("reviewed_by") == "moderator:ann", f"dismissed: {d.json}")
    again = call("POST", f, A, {"action": "dismiss"}, status=200, what="dismiss again")
    check(again.json == d.json, "the same review answers the same")
    call("POST", f, A, {"action": "remove"}, status=409, what="remove a dismissed flag")
    rm = call("POST", f"/moderation/flags/{f2.get('id')}", A, {"action": "remove"}, status=200,
              what="remove a flagged message")
    check((rm.json or {}).get("state") == "removed"
          and (rm.json or {}).get("reviewed_by") == "moderator", f"removed: {rm.json}")
    call("POST", f"/moderation/flags/{f2.get('id')}", A, {"action": "remove"}, status=200,
         what="remove it again")
    call("POST", f"/moderation/flags/{f2.get('id')}", A, {"action": "dismiss"}, status=409,
         what="dismiss a removed flag")
    wait_removed(ids["flag2"], "removed by a moderator", "the moderator's removal")
    check(not history().get(ids["flag1"], {}).get("removed"), "the dismissed message stays")
    check([x["id"] for x in flags(A, "removed") if x["room"] == room] == [f2.get("id")],
          "the removed flag lists as removed")
    check([x["id"] for x in flags(A, "dismissed") if x["room"] == room] == [f1.get("id")],
          "the dismissed flag lists as dismissed")

    # A second rescan: the same flags, none twice (the dismissed one stays dismissed).
    before = {x["id"]: x["state"] for s in ("pending", "removed", "dismissed") for x in flags(A, s)
              if x["room"] == room}
    second = rescan(A, {"room": room, "since": t0 - 1000}, "a second rescan")
    check(second.get("scanned") == 5 and second.get("flagged") == 2,
          f"the second rescan skips the removed messages: 5 scanned, 2 flagged ({second})")
    after = {x["id"]: x["state"] for s in ("pending", "removed", "dismissed") for x in flags(A, s)
             if x["room"] == room}
    check(after == before, f"no flag twice, none changed: {before} -> {after}")

    # Another tenant.
    for s in ("pending", "removed", "dismissed"):
        check(not [x for x in flags(B, s) if x["room"] == room], f"B sees none of A's {s} flags")
    call("POST", f"/moderation/flags/{fm.get('id')}", B, {"action": "remove"}, status=404,
         what="B reviews A's flag")
    check(history().get(ids["mute"], {}).get("removed") is None, "A's message untouched by B")
    r = call("GET", "/moderation/rules", B, status=200, what="B's rules")
    check(r.json == {}, f"B has no rules ({r.json})")
    nothing = rescan(B, {"since": t0 - 1000}, "B's rescan without rules")
    check(nothing.get("scanned") == 0 and nothing.get("matched") == 0,
          f"without rules a rescan reads nothing ({nothing})")
    a = api.call("GET", f"/moderation/rescan/{first.get('id')}", B.token())
    check(a.status == 404, f"B reads A's rescan: 404 ({a!r})")

    # A rule set larger than the service's usual body limit (1 MiB): this route takes 16 MiB.
    C = Tenant(stack)
    big = {"blocklists": [{"name": f"list{n}", "action": "flag",
                           "words": [f"w{n}x{i:05d}" + "q" * 50 for i in range(10000)]}
                          for n in range(2)]}
    size = len(json.dumps(big))
    t = time.time()
    r = call("PUT", "/moderation/rules", C, big, status=200,
             what=f"a rule set of 2 x 10,000 entries ({size} bytes)")
    check(size > (1 << 20) and r.json == big,
          f"stored and answered whole in {time.time() - t:.1f} s")
    r = call("GET", "/moderation/rules", C, status=200, what="the large rule set read back")
    check(r.json == big, "the large rule set reads back as set")

    check(not api.violations, "every answer matched the contract" +
          "".join("\n    " + v for v in api.violations))


main()
finish()
