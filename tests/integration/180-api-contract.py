"""The server API against its contract (proto/openapi.yaml), on the fixture's stack: every
operation's happy path, bad input of every kind (and the service still answers after each),
tenant isolation, the rate limit, the moderation resources, webhook endpoints and users'
notification settings, and end to end through a gateway (a member of a private
room gets the API's system message and `left` {reason: "removed"}; a non-member cannot
join). Every answer is checked against the document (body schema, X-Request-Id,
Retry-After, the error body); at the end every documented status of every operation must
have been seen, except the few listed in UNPROVOKED with the reason."""

import contextlib
import json
import os
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from api_client import (Api, Contract, Tenant, jwt_sign, q, server_token,  # noqa: E402
                        stack_load, unique, user_token)

# Documented statuses this test cannot provoke on a shared stack, and why.
UNPROVOKED = {
    500: "a fault of the service itself: nothing a request can do should cause it",
    503: "MongoDB, Redis or Kafka unreachable: stopping them would break the tests running "
         "beside this one on the same stack",
    504: "the answer of a produced change not arriving in time: needs a stalled message "
         "service (the kill tests 130/131 own that)",
    502: "the message service refusing with a code the api does not map: none exists today",
}

failures = []
passes = 0


def check(cond, what):
    """Records one check; a failure does not stop the section."""
    global passes
    if cond:
        passes += 1
        print(f"ok   - {what}")
    else:
        failures.append(what)
        print(f"FAIL - {what}")
    return cond


def expect(answer, status, what):
    """Checks answer's status; returns answer for chaining."""
    check(answer.status == status, f"{what}: {status} (got {answer!r})")
    return answer


def ok(answer):
    """True if answer is a success with a JSON body (what the checks after it read)."""
    return answer.status < 300 and answer.json is not None


def section(fn):
    """Runs one section; an exception fails it with its traceback and the others go on."""
    print(f"# {fn.__name__}")
    try:
        fn()
    except Exception:
        failures.append(f"{fn.__name__}: raised")
        traceback.print_exc(file=sys.stdout)
        print(f"FAIL - {fn.__name__} raised")


stack = stack_load()
if "CHAT_API_URL" not in stack:
    print("CHAT_API_URL is not in stack.env: the stack runs no api service")
    sys.exit(1)
contract = Contract(os.path.join(stack["CHAT_SOURCE_DIR"], "proto", "openapi.yaml"))
api = Api(stack["CHAT_API_URL"], contract)
max_body = int(stack.get("CHAT_API_MAX_BODY", "0") or 0) or 1 << 20

A = Tenant(stack)
B = Tenant(stack)
room = unique("priv")
alice, bob, carol, eve = (unique(n) for n in ("alice", "bob", "carol", "eve"))
state = {}  # what one section made and a later one uses


def alive(what):
    """The service still answers a plain call after what."""
    expect(api.call("GET", "/settings", A.token()), 200, f"still answers after {what}")


# Flood calls: a path no route has. The rate limit comes before routing (docs/server-api.md),
# so it is as limited as any other call but costs the service no MongoDB query (GET /stats
# counts the day's messages: far too slow to flood with on FerretDB).
FLOOD = "/flood"


# ---- sections ----

def auth():
    no = api.call("GET", "/rooms")
    expect(no, 401, "no Authorization")
    expect(api.call("GET", "/rooms", "not-a-jwt"), 401, "garbage token")
    expect(api.call("GET", "/rooms", user_token(A.id, A.secret, alice)), 401,
           "a user token (sub, no server scope)")
    now = int(time.time())
    expect(api.call("GET", "/rooms", jwt_sign({"tid": A.id, "scope": "server", "sub": alice,
                                                "iat": now, "exp": now + 60}, A.secret)),
           401, "a server-scoped token with sub")
    expect(api.call("GET", "/rooms", jwt_sign({"tid": A.id, "iat": now, "exp": now + 60},
                                               A.secret)), 401, "a token without scope")
    expect(api.call("GET", "/rooms", server_token(A.id, A.secret, ttl=60, iat=now - 600)), 401,
           "an expired server token")
    expect(api.call("GET", "/rooms", server_token(A.id, A.secret, ttl=3600)), 401,
           "a server token valid for more than 5 minutes")
    expect(api.call("GET", "/rooms", server_token(A.id, B.secret)), 401,
           "tenant A's claims signed with tenant B's secret")
    expect(api.call("GET", "/rooms", server_token(unique("nosuch"), A.secret)), 401,
           "a tenant that does not exist")
    alive("bad tokens")


def rooms():
    tok = A.token()
    r = expect(api.call("POST", "/rooms", tok, {"room": room, "name": "Project X",
                                                 "members": [alice, bob]}), 201, "create a room")
    if ok(r):
        check(r.json.get("room") == room and r.json.get("kind") == "private"
              and r.json.get("members") == 2 and r.json.get("name") == "Project X",
              f"the created room as asked: {r.json}")
    expect(api.call("POST", "/rooms", tok, {"room": room}), 409, "create it again")
    r = expect(api.call("GET", f"/rooms/{q(room)}", tok), 200, "read it")
    if ok(r):
        check(r.json.get("name") == "Project X" and r.json.get("members") == 2,
              f"read back: {r.json}")
        state["room_created"] = r.json.get("created")
    # a second and third room, to page through
    others = [unique("priv") for _ in range(2)]
    for o in others:
        expect(api.call("POST", "/rooms", tok, {"room": o}), 201, "create another room")
    seen, cursor, pages = [], None, 0
    while pages < 10:
        query = {"limit": 1}
        if cursor:
            query["cursor"] = cursor
        r = expect(api.call("GET", "/rooms", tok, query=query), 200, "a page of rooms")
        if not r.json:
            break
        pages += 1
        check(len(r.json["rooms"]) <= 1, "limit=1 gives at most one room")
        seen += [x["room"] for x in r.json["rooms"]]
        cursor = r.json.get("next")
        if not cursor:
            break
    check(set([room] + others) <= set(seen) and len(seen) == len(set(seen)),
          f"paging with limit=1 lists each room once ({len(seen)} rooms in {pages} pages)")
    r = expect(api.call("PATCH", f"/rooms/{q(room)}", tok, {"name": "Project Y"}), 200, "rename")
    if ok(r):
        check(r.json.get("name") == "Project Y", "renamed")
    # bad input
    expect(api.call("GET", "/rooms/bad%20name", tok), 400, "GET a bad room name")
    expect(api.call("GET", f"/rooms/{'x' * 129}", tok), 400, "GET a 129-character room name")
    expect(api.call("GET", f"/rooms/{q(unique('none'))}", tok), 404, "GET an unknown room")
    expect(api.call("POST", "/rooms", tok, raw=b'{"room": "x",'), 400, "malformed JSON")
    expect(api.call("POST", "/rooms", tok, raw=b'["room"]'), 400, "a body that is not an object")
    expect(api.call("POST", "/rooms", tok, {"room": unique("r"), "colour": "red"}), 400,
           "an unknown field")
    expect(api.call("POST", "/rooms", tok, {"name": "no room"}), 400, "room missing")
    expect(api.call("POST", "/rooms", tok, {"room": "bad name!"}), 400, "a bad room name")
    expect(api.call("POST", "/rooms", tok, {"room": 42}), 400, "room not a string")
    many = [f"u{i}" for i in range(1001)]
    expect(api.call("POST", "/rooms", tok, {"room": unique("big"), "members": many}), 400,
           "1,001 members in one create")
    expect(api.call("POST", "/rooms", tok, {"room": unique("r"), "members": ["x" * 65]}), 400,
           "a 65-character user id")
    expect(api.call("POST", "/rooms", tok, raw=b'{"room": "x"}', content_type="text/plain"),
           415, "a body that is not application/json")
    expect(api.call("GET", "/rooms", tok, query={"limit": 0}), 400, "limit=0")
    expect(api.call("GET", "/rooms", tok, query={"limit": 101}), 400, "limit=101")
    expect(api.call("GET", "/rooms", tok, query={"cursor": "!!!"}), 400, "a cursor not ours")
    expect(api.call("PATCH", f"/rooms/{q(unique('none'))}", tok, {"name": "n"}), 404,
           "rename an unknown room")
    expect(api.call("PATCH", f"/rooms/{q(room)}", tok, {"name": "n", "x": 1}), 400,
           "rename with an unknown field")
    expect(api.call("PATCH", "/rooms/bad%20name", tok, {"name": "n"}), 400,
           "rename a bad room name")
    expect(api.call("DELETE", f"/rooms/{q(unique('none'))}", tok), 404, "delete an unknown room")
    expect(api.call("DELETE", "/rooms/bad%20name", tok), 400, "delete a bad room name")
    # delete: a tombstone
    gone = others[1]
    expect(api.call("DELETE", f"/rooms/{q(gone)}", tok), 204, "delete a room")
    expect(api.call("GET", f"/rooms/{q(gone)}", tok), 404, "a deleted room is not found")
    expect(api.call("DELETE", f"/rooms/{q(gone)}", tok), 404, "delete it again")
    expect(api.call("POST", "/rooms", tok, {"room": gone}), 409,
           "a deleted room's name cannot be taken again")
    purged = unique("purge")
    expect(api.call("POST", "/rooms", tok, {"room": purged}), 201, "create a room to purge")
    expect(api.call("DELETE", f"/rooms/{q(purged)}", tok, query={"purge": "true"}), 204,
           "delete with purge=true")
    state["deleted_room"] = gone
    alive("bad room requests")


def members():
    tok = A.token()
    base = f"/rooms/{q(room)}/members"
    r = expect(api.call("GET", base, tok), 200, "list members")
    if ok(r):
        check(sorted(m["user"] for m in r.json["members"]) == sorted([alice, bob]),
              f"the members are alice and bob: {r.json}")
    r = expect(api.call("POST", base, tok, {"users": [carol, alice]}), 200, "add carol (and alice)")
    if ok(r):
        check(r.json.get("added") == [carol], f"only carol was added: {r.json}")
    r = expect(api.call("GET", base, tok, query={"limit": 1}), 200, "members, one a page")
    if ok(r):
        check(len(r.json["members"]) == 1 and r.json.get("next"), "a next cursor")
        r2 = expect(api.call("GET", base, tok, query={"limit": 1, "cursor": r.json["next"]}),
                    200, "the second page of members")
        if ok(r2) and r2.json["members"]:
            check(r2.json["members"][0]["user"] != r.json["members"][0]["user"],
                  "the second page goes on")
    expect(api.call("POST", base, tok, {"users": [f"u{i}" for i in range(101)]}), 400,
           "101 users in one add")
    expect(api.call("POST", base, tok, {"users": []}), 400, "no users")
    expect(api.call("POST", base, tok, {"users": [carol], "role": "admin"}), 400,
           "add with an unknown field")
    expect(api.call("POST", base, tok, raw=b"{", content_type="application/json"), 400,
           "add with malformed JSON")
    expect(api.call("POST", f"/rooms/{q(unique('none'))}/members", tok, {"users": [carol]}), 404,
           "add to an unknown room")
    expect(api.call("GET", f"/rooms/{q(unique('none'))}/members", tok), 404,
           "members of an unknown room")
    expect(api.call("GET", "/rooms/bad%20name/members", tok), 400, "members of a bad room name")
    expect(api.call("GET", base, tok, query={"limit": "many"}), 400, "limit not a number")
    expect(api.call("DELETE", f"{base}/{q(carol)}", tok), 204, "remove carol")
    expect(api.call("DELETE", f"{base}/{q(carol)}", tok), 404, "remove carol again")
    expect(api.call("DELETE", f"{base}/{'x' * 65}", tok), 400, "remove a 65-character user id")
    expect(api.call("DELETE", f"/rooms/{q(unique('none'))}/members/{q(alice)}", tok), 404,
           "remove from an unknown room")
    r = expect(api.call("GET", f"/users/{q(alice)}/rooms", tok), 200, "alice's rooms")
    if ok(r):
        mine = [x for x in r.json["rooms"] if x["room"] == room]
        check(len(mine) == 1 and mine[0]["kind"] == "private",
              f"alice's rooms have the private room: {r.json}")
    r = expect(api.call("GET", f"/users/{q(carol)}/rooms", tok), 200, "carol's rooms")
    if ok(r):
        check(all(x["room"] != room for x in r.json["rooms"]),
              "a removed member's rooms no longer have it")
    expect(api.call("GET", f"/users/{'x' * 65}/rooms", tok), 400, "rooms of a bad user id")
    expect(api.call("GET", f"/users/{q(alice)}/rooms", tok, query={"limit": 0}), 400,
           "rooms with limit=0")
    alive("bad member requests")


def messages():
    tok = A.token()
    base = f"/rooms/{q(room)}/messages"
    r = expect(api.call("POST", base, tok, {"text": "welcome", "cid": "sys-1"}), 201,
               "a system message")
    sys_msg = r.json or {}
    r = expect(api.call("POST", base, tok, {"from": alice, "text": "hi", "cid": "a-1"}), 201,
               "a message as alice")
    alice_msg = r.json or {}
    if sys_msg and alice_msg:
        check(alice_msg.get("seq", 0) > sys_msg.get("seq", 0), "seqs grow")
    r = expect(api.call("POST", base, tok, {"from": alice, "text": "hi", "cid": "a-1"}), 201,
               "the same cid again")
    if ok(r) and alice_msg:
        check(r.json.get("id") == alice_msg.get("id"), "the same cid answers the first message")
    r = expect(api.call("GET", base, tok), 200, "history")
    if ok(r):
        ids = {m["id"]: m for m in r.json["messages"]}
        check(sys_msg.get("id") in ids and ids[sys_msg["id"]]["from"] == "system",
              "the system message is in the history, from system")
        check(alice_msg.get("id") in ids and ids[alice_msg["id"]]["from"] == alice,
              "alice's message is in the history")
        state["history"] = r.json
    r = expect(api.call("GET", base, tok, query={"limit": 1}), 200, "history, one message")
    if ok(r):
        check(len(r.json["messages"]) == 1 and r.json["more"] is True, "one message, more")
        first = r.json["messages"][0]["seq"] if r.json["messages"] else 1
        expect(api.call("GET", base, tok, query={"limit": 1, "before": first}), 200,
               "history before it")
    if alice_msg.get("id"):
        mid = alice_msg["id"]
        r = expect(api.call("PATCH", f"{base}/{mid}", tok, {"text": "hi (edited)"}), 200,
                   "edit alice's message as the tenant")
        r = expect(api.call("DELETE", f"{base}/{mid}", tok, query={"reason": "spam"}), 200,
                   "delete it with a reason")
        r = expect(api.call("GET", base, tok), 200, "history after the delete")
        if ok(r):
            m = [x for x in r.json["messages"] if x["id"] == mid]
            check(m and m[0].get("deleted") is True and "text" not in m[0],
                  f"the message is deleted in the history: {m}")
        expect(api.call("PATCH", f"{base}/{mid}", tok, {"text": "x", "y": 1}), 400,
               "edit with an unknown field")
    nid = "0123456789abcdef01234567"
    expect(api.call("PATCH", f"{base}/{nid}", tok, {"text": "x"}), 404, "edit an unknown id")
    expect(api.call("DELETE", f"{base}/{nid}", tok), 404, "delete an unknown id")
    expect(api.call("PATCH", f"{base}/not-an-id", tok, {"text": "x"}), 404, "edit a bad id")
    expect(api.call("DELETE", f"{base}/not-an-id", tok), 404, "delete a bad id")
    expect(api.call("DELETE", f"/rooms/bad%20name/messages/{nid}", tok), 400,
           "delete in a bad room name")
    expect(api.call("PATCH", f"/rooms/bad%20name/messages/{nid}", tok, {"text": "x"}), 400,
           "edit in a bad room name")
    expect(api.call("POST", base, tok, {"text": "x"}), 400, "a send without cid")
    expect(api.call("POST", base, tok, {"text": "", "cid": "e"}), 400, "an empty text")
    expect(api.call("POST", base, tok, {"text": "x", "cid": "c", "notice": "room_created"}), 400,
           "a send with an unknown field")
    expect(api.call("POST", base, tok, {"from": "system", "text": "x", "cid": "s"}), 400,
           "from: the reserved system user")
    expect(api.call("POST", base, tok, {"text": "x" * 5000, "cid": "long"}), 413,
           "a text over the message service's limit")
    expect(api.call("POST", "/rooms/bad%20name/messages", tok, {"text": "x", "cid": "b"}), 400,
           "send to a bad room name")
    expect(api.call("GET", "/rooms/bad%20name/messages", tok), 400, "history of a bad room name")
    expect(api.call("GET", base, tok, query={"before": "soon"}), 400, "before not a number")
    gone = state.get("deleted_room")
    if gone:
        expect(api.call("POST", f"/rooms/{q(gone)}/messages", tok, {"text": "x", "cid": "g"}),
               404, "send to a deleted room")
        expect(api.call("GET", f"/rooms/{q(gone)}/messages", tok), 404,
               "history of a deleted room")
        expect(api.call("PATCH", f"/rooms/{q(gone)}/messages/{nid}", tok, {"text": "x"}), 404,
               "edit in a deleted room")
        expect(api.call("DELETE", f"/rooms/{q(gone)}/messages/{nid}", tok), 404,
               "delete in a deleted room")
    alive("bad message requests")


def blocks():
    tok = A.token()
    base = f"/users/{q(alice)}/blocks"
    expect(api.call("POST", base, tok, {"user": bob}), 201, "alice blocks bob")
    expect(api.call("POST", base, tok, {"user": bob}), 200, "again: the existing block")
    r = expect(api.call("GET", base, tok), 200, "alice's blocks")
    if ok(r):
        check([b["target"] for b in r.json["blocks"]] == [bob], f"bob is blocked: {r.json}")
    dm = f"dm:{min(alice, bob)}:{max(alice, bob)}"
    # a tenant's first block applies within 2 s (the message service's hint of which tenants
    # have blocks: docs/server-api.md)
    time.sleep(2.2)
    expect(api.call("POST", f"/rooms/{q(dm)}/messages", tok, {"from": bob, "text": "hey",
                                                             "cid": "b-1"}),
           403, "bob cannot send in the dm with alice who blocked him")
    expect(api.call("POST", base, tok, {"user": alice}), 400, "block oneself")
    expect(api.call("POST", base, tok, {"user": bob, "why": "x"}), 400, "an unknown field")
    expect(api.call("POST", base, tok, {}), 400, "user missing")
    expect(api.call("GET", f"/users/{'x' * 65}/blocks", tok), 400, "blocks of a bad user id")
    expect(api.call("DELETE", f"{base}/{q(bob)}", tok), 204, "alice unblocks bob")
    expect(api.call("DELETE", f"{base}/{q(bob)}", tok), 404, "unblock again")
    expect(api.call("DELETE", f"{base}/{'x' * 65}", tok), 400, "unblock a bad user id")
    expect(api.call("POST", f"/rooms/{q(dm)}/messages", tok, {"from": bob, "text": "hey",
                                                             "cid": "b-2"}),
           201, "after the unblock bob can send")
    alive("bad block requests")


def jobs():
    tok = A.token()
    r = expect(api.call("POST", "/exports", tok, {"room": room}), 202, "export the room")
    job = (r.json or {}).get("id")
    check(r.headers.get("location", "").endswith(f"/exports/{job}"), "Location is the job")
    done = None
    deadline = time.time() + 60
    while job and time.time() < deadline:
        r = expect(api.call("GET", f"/exports/{job}", tok), 200, "poll the export")
        if ok(r) and r.json.get("state") in ("done", "failed"):
            done = r.json
            break
        time.sleep(0.5)
    check(done is not None and done.get("state") == "done" and done.get("path"),
          f"the export is done with a path: {done}")
    state["export"] = job
    expect(api.call("POST", "/exports", tok), 202, "export everything (no body)")
    expect(api.call("POST", "/exports", tok, {"room": "bad name"}), 400, "export a bad room")
    expect(api.call("POST", "/exports", tok, {"from": 10, "to": 5}), 400, "from after to")
    expect(api.call("POST", "/exports", tok, {"rooms": [room]}), 400, "an unknown field")
    expect(api.call("GET", "/exports/0123456789abcdef01234567", tok), 404, "an unknown export")
    expect(api.call("GET", "/exports/not-a-job", tok), 404, "a malformed export id")
    erased = unique("gone")
    expect(api.call("POST", f"/rooms/{q(room)}/messages", tok,
                    {"from": erased, "text": "mine", "cid": "g-1"}), 201, "a message to erase")
    r = expect(api.call("DELETE", f"/users/{q(erased)}", tok), 202, "erase a user")
    job = (r.json or {}).get("job")
    loc = r.headers.get("location", "")
    check(loc == f"/v1/users/{q(erased)}/erasure/{job}", f"the erasure's Location: {loc}")
    done = None
    deadline = time.time() + 60
    while job and time.time() < deadline:
        r = expect(api.call("GET", f"/users/{q(erased)}/erasure/{job}", tok), 200,
                   "poll the erasure")
        if ok(r) and r.json.get("state") in ("done", "failed"):
            done = r.json
            break
        time.sleep(0.5)
    check(done is not None and done.get("state") == "done", f"the erasure is done: {done}")
    r = expect(api.call("GET", f"/rooms/{q(room)}/messages", tok), 200, "history after it")
    if ok(r):
        mine = [m for m in r.json["messages"] if m["from"] == erased]
        check(mine and all(m.get("deleted") and "text" not in m for m in mine),
              f"the erased user's message is deleted: {mine}")
    state["erasure"] = (erased, job)
    expect(api.call("GET", f"/users/{q(alice)}/erasure/{job}", tok), 404,
           "the erasure under another user")
    expect(api.call("GET", f"/users/{'x' * 65}/erasure/{job}", tok), 400,
           "an erasure of a bad user id")
    expect(api.call("DELETE", f"/users/{'x' * 65}", tok), 400, "erase a bad user id")
    # the longest user id, 64 four-byte characters: its Location still fits
    wide = "\U0001F600" * 64
    r = expect(api.call("DELETE", f"/users/{q(wide)}", tok), 202, "erase a user of a long id")
    loc = r.headers.get("location", "")
    check(loc == f"/v1/users/{q(wide)}/erasure/{(r.json or {}).get('job')}",
          f"the long id's Location: {loc[:80]}")
    alive("bad job requests")


def tenant_settings():
    tok = A.token()
    r = expect(api.call("GET", "/stats", tok), 200, "stats")
    if ok(r):
        check(r.json["rooms"] >= 2, f"stats count the rooms: {r.json}")
    r = expect(api.call("GET", "/settings", tok), 200, "settings")
    r = expect(api.call("PATCH", "/settings", tok, {"allowed_origins": ["https://app.example"],
                                                    "push": {"enabled": False}}), 200,
               "change settings")
    if ok(r):
        check(r.json["allowed_origins"] == ["https://app.example"]
              and r.json["push"]["enabled"] is False, f"changed: {r.json}")
    r = expect(api.call("GET", "/settings", tok), 200, "settings read back")
    if ok(r):
        check(r.json["allowed_origins"] == ["https://app.example"], "kept")
    expect(api.call("PATCH", "/settings", tok, {"limits": {"connections": 0}}), 400,
           "a limit out of range")
    expect(api.call("PATCH", "/settings", tok, {"theme": "dark"}), 400, "an unknown field")
    expect(api.call("PATCH", "/settings", tok, {"allowed_origins": ["not an origin"]}), 400,
           "a bad origin")
    expect(api.call("PATCH", "/settings", tok, {"allowed_origins": []}), 200, "any origin again")


def member_limit():
    """The tenant's limits.members_per_room bounds a create and an add (409)."""
    L = Tenant(stack)
    tok = L.token()
    expect(api.call("PATCH", "/settings", tok, {"limits": {"members_per_room": 2}}), 200,
           "a tenant with at most 2 members per room")
    time.sleep(2.5)  # the settings are cached for up to 2 s
    r = unique("small")
    expect(api.call("POST", "/rooms", tok, {"room": r, "members": ["m1", "m2", "m3"]}), 409,
           "a create with 3 members")
    expect(api.call("GET", f"/rooms/{q(r)}", tok), 404, "made nothing")
    expect(api.call("POST", "/rooms", tok, {"room": r, "members": ["m1", "m2"]}), 201,
           "a create with 2 members")
    expect(api.call("POST", f"/rooms/{q(r)}/members", tok, {"users": ["m3"]}), 409,
           "a third member")
    expect(api.call("POST", f"/rooms/{q(r)}/members", tok, {"users": ["m2"]}), 200,
           "a member again is no new member")


def idempotency():
    tok = A.token()
    key = unique("key")
    name = unique("idem")
    first = expect(api.call("POST", "/rooms", tok, {"room": name},
                            headers={"Idempotency-Key": key}), 201, "create with a key")
    again = expect(api.call("POST", "/rooms", A.token(), {"room": name},
                            headers={"Idempotency-Key": key}), 201,
                   "the same create with the same key: the first answer, not 409")
    check(first.json == again.json, "the repeat answers the first body")
    check(again.headers.get("idempotent-replayed") == "true"
          and again.headers.get("x-request-id") != first.headers.get("x-request-id"),
          "the repeat says Idempotent-Replayed and has a request id of its own")
    # The key names the request: the same method and path with another body is a repeat too.
    other = unique("idem")
    r = expect(api.call("POST", "/rooms", tok, {"room": other}, headers={"Idempotency-Key": key}),
               201, "the key with another body on the same path")
    check(r.json == first.json, "answers the first answer")
    expect(api.call("GET", f"/rooms/{q(other)}", tok), 404, "and made nothing")
    # the same key for another request
    for path, body in ((f"/rooms/{q(room)}/members", {"users": [carol]}),
                       (f"/rooms/{q(room)}/messages", {"text": "x", "cid": unique("c")}),
                       (f"/users/{q(alice)}/blocks", {"user": eve}),
                       ("/exports", {"room": room})):
        expect(api.call("POST", path, tok, body, headers={"Idempotency-Key": key}), 409,
               f"the key reused for POST {path}")
    expect(api.call("POST", "/rooms", tok, {"room": unique("idem")},
                    headers={"Idempotency-Key": "x" * 256}), 400, "a 256-character key")
    # A repeated 202 is the whole first answer: its Location too.
    key2 = unique("key")
    first = expect(api.call("POST", "/exports", tok, {"room": room},
                            headers={"Idempotency-Key": key2}), 202, "an export with a key")
    again = expect(api.call("POST", "/exports", tok, {"room": room},
                            headers={"Idempotency-Key": key2}), 202, "the same export again")
    check(first.json == again.json, "the repeat answers the same job")
    check(again.headers.get("location") == first.headers.get("location") is not None,
          f"the repeat carries the first Location ({first.headers.get('location')!r}, "
          f"{again.headers.get('location')!r})")
    expect(api.call("DELETE", f"/users/{q(alice)}/blocks/{q(eve)}", tok), 404,
           "the reused key did not block")


def moderation():
    """The moderation resources: the rule set (round trip, a refusal naming the field), the
    review queue (a flag made by a rescan: dismissed twice alike, then 409 for a removal;
    unknown ids), rescans (202 with Location, polled to done; bad bodies), Idempotency-Key
    reuse on the two POSTs. A tenant of its own: the moderation service acts on its new
    messages once it has rules, so its message is sent before them."""
    M = Tenant(stack)
    tok = M.token()
    r = expect(api.call("GET", "/moderation/rules", tok), 200, "rules of a tenant without any")
    if ok(r):
        check(r.json == {}, f"no rules: {{}} ({r.json})")
    mroom = unique("modroom")
    word = unique("zebra").replace("-", "").replace("_", "")
    sent = expect(api.call("POST", f"/rooms/{q(mroom)}/messages", tok,
                           {"from": alice, "text": f"look a {word} here", "cid": "m-1"}), 201,
                  "a message to rescan")
    rules = {"blocklists": [{"name": "watch", "words": [word], "match": "word",
                             "action": "flag"}]}
    r = expect(api.call("PUT", "/moderation/rules", tok, rules), 200, "set the rules")
    if ok(r):
        check(r.json == rules, f"the PUT answers the rule set: {r.json}")
    r = expect(api.call("GET", "/moderation/rules", tok), 200, "read the rules back")
    if ok(r):
        check(r.json == rules, f"the rules read back as set: {r.json}")
    bad = {"blocklists": [{"name": "x", "words": ["ok", "fine", "good", "y" * 65],
                           "action": "remove"}]}
    r = expect(api.call("PUT", "/moderation/rules", tok, bad), 400, "a 65-character word")
    if r.json and "error" in r.json:
        err = r.json["error"]
        check(err["message"].startswith("blocklists[0].words[3]") and
              err.get("field") == "blocklists[0].words[3]",
              f"the refusal names the field: {err}")
    expect(api.call("PUT", "/moderation/rules", tok, {"colour": "red"}), 400,
           "a rule set with an unknown part")
    expect(api.call("PUT", "/moderation/rules", tok, raw=b"[1]"), 400, "a rule set not an object")
    r = expect(api.call("GET", "/moderation/rules", tok), 200, "the rules after refusals")
    if ok(r):
        check(r.json == rules, "a refused PUT changed nothing")
    # a rescan of the last minute finds the message
    now = int(time.time() * 1000)
    r = expect(api.call("POST", "/moderation/rescan", tok, {"room": mroom, "since": now - 60000}),
               202, "a rescan")
    job = (r.json or {}).get("id")
    loc = r.headers.get("location", "")
    check(job and loc == f"/v1/moderation/rescan/{job}", f"the rescan's Location: {loc}")
    done = None
    deadline = time.time() + 60
    while job and time.time() < deadline:
        r = expect(api.call("GET", f"/moderation/rescan/{job}", tok), 200, "poll the rescan")
        if ok(r) and r.json.get("state") in ("done", "failed"):
            done = r.json
            break
        time.sleep(0.5)
    check(done is not None and done.get("state") == "done" and done.get("scanned") == 1
          and done.get("flagged") == 1 and done.get("room") == mroom,
          f"the rescan is done: {done}")
    state["rescan"] = job
    expect(api.call("GET", "/moderation/rescan/0123456789abcdef01234567", tok), 404,
           "an unknown rescan")
    expect(api.call("GET", "/moderation/rescan/not-a-job", tok), 404, "a rescan id not an id")
    expect(api.call("POST", "/moderation/rescan", tok, {"room": mroom}), 400, "a rescan without since")
    expect(api.call("POST", "/moderation/rescan", tok, {"since": now - 8 * 86400 * 1000}), 400,
           "a rescan of 8 days ago")
    expect(api.call("POST", "/moderation/rescan", tok, {"since": now + 3600000}), 400,
           "a rescan from the future")
    expect(api.call("POST", "/moderation/rescan", tok, {"since": now, "x": 1}), 400,
           "a rescan with an unknown field")
    expect(api.call("POST", "/moderation/rescan", tok, {"since": now, "room": "bad room"}), 400,
           "a rescan of a bad room name")
    # the queue
    r = expect(api.call("GET", "/moderation/flags", tok), 200, "the review queue")
    flag = None
    if ok(r):
        mine = [f for f in r.json["flags"] if f["message"] == (sent.json or {}).get("id")]
        check(len(mine) == 1 and mine[0]["rule"] == "watch" and mine[0]["kind"] == "blocklist"
              and mine[0]["state"] == "pending" and word in mine[0]["text"]
              and mine[0]["from"] == alice and mine[0]["room"] == mroom,
              f"the flag of the message: {r.json}")
        flag = mine[0]["id"] if mine else None
    expect(api.call("GET", "/moderation/flags", tok, query={"state": "all"}), 400, "state=all")
    expect(api.call("GET", "/moderation/flags", tok, query={"limit": 0}), 400, "flags limit=0")
    expect(api.call("GET", "/moderation/flags", tok, query={"cursor": "!!!"}), 400,
           "a flags cursor not ours")
    expect(api.call("GET", "/moderation/flags", tok, query={"cursor": "eA"}), 400,
           "a flags cursor of another list")
    nid = "0123456789abcdef01234567"
    expect(api.call("POST", f"/moderation/flags/{nid}", tok, {"action": "dismiss"}), 404,
           "review an unknown flag")
    expect(api.call("POST", "/moderation/flags/not-a-flag", tok, {"action": "dismiss"}), 404,
           "review a flag id not an id")
    if flag:
        f = f"/moderation/flags/{flag}"
        expect(api.call("POST", f, tok, {"action": "ban"}), 400, "a review of another action")
        expect(api.call("POST", f, tok, {}), 400, "a review without action")
        expect(api.call("POST", f, tok, {"action": "dismiss", "moderator": ""}), 400,
               "an empty moderator")
        expect(api.call("POST", f, tok, {"action": "dismiss", "why": "x"}), 400,
               "a review with an unknown field")
        first = expect(api.call("POST", f, tok, {"action": "dismiss", "moderator": "ann"}), 200,
                       "dismiss the flag")
        if ok(first):
            check(first.json["state"] == "dismissed"
                  and first.json.get("reviewed_by") == "moderator:ann"
                  and first.json.get("reviewed_at", 0) >= now,
                  f"dismissed by ann: {first.json}")
        again = expect(api.call("POST", f, tok, {"action": "dismiss"}), 200, "dismiss it again")
        check(again.json == first.json, "the same review answers the same")
        expect(api.call("POST", f, tok, {"action": "remove"}), 409,
               "remove a dismissed flag")
        r = expect(api.call("GET", "/moderation/flags", tok, query={"state": "dismissed"}), 200,
                   "the dismissed flags")
        if ok(r):
            check([x["id"] for x in r.json["flags"]] == [flag], f"the dismissed flag: {r.json}")
        r = expect(api.call("GET", "/moderation/flags", tok), 200, "the queue after")
        if ok(r):
            check(all(x["id"] != flag for x in r.json["flags"]), "no longer pending")
        state["flag"] = (M, flag)
    # Idempotency-Key on the two POSTs
    key = unique("key")
    a1 = expect(api.call("POST", "/moderation/rescan", tok, {"since": now - 1000},
                         headers={"Idempotency-Key": key}), 202, "a rescan with a key")
    a2 = expect(api.call("POST", "/moderation/rescan", tok, {"since": now - 1000},
                         headers={"Idempotency-Key": key}), 202, "the same rescan again")
    check(a1.json == a2.json and a1.headers.get("location") == a2.headers.get("location"),
          "the repeated rescan is the first one")
    expect(api.call("POST", f"/moderation/flags/{nid}", tok, {"action": "dismiss"},
                    headers={"Idempotency-Key": key}), 409, "the key reused for a review")
    expect(api.call("POST", "/moderation/rescan", tok, {"since": now - 1000},
                    headers={"Idempotency-Key": unique("key")}), 202, "a rescan, new key")
    key3 = unique("key")
    expect(api.call("POST", "/rooms", tok, {"room": unique("r")},
                    headers={"Idempotency-Key": key3}), 201, "a room with a key")
    expect(api.call("POST", "/moderation/rescan", tok, {"since": now - 1000},
                    headers={"Idempotency-Key": key3}), 409, "the key reused for a rescan")
    alive("moderation requests")


def webhooks():
    """The webhook endpoints (create with the secret once, list, read, patch, rotate, test to a
    closed port: 200 with delivered false, delete; bad bodies, unknown ids, Idempotency-Key
    reuse) and users' notification settings (set, clear, bad address, bad user id)."""
    tok = A.token()
    url = "http://127.0.0.1:1/hook"  # nothing listens on port 1: a test is not delivered
    r = expect(api.call("POST", "/webhooks", tok, {"url": url, "events": ["message.new"]}), 201,
               "create a webhook endpoint")
    wid = (r.json or {}).get("id", "wh_" + "A" * 22)
    state["webhook"] = wid
    check((r.json or {}).get("secret", "").startswith("whsec_"), "the create shows the secret")
    r = expect(api.call("GET", f"/webhooks/{wid}", tok), 200, "read it")
    check("secret" not in (r.json or {}), "a read shows no secret")
    expect(api.call("GET", "/webhooks", tok), 200, "list them")
    expect(api.call("GET", "/webhooks", tok, query={"limit": 0}), 400, "list with limit 0")
    expect(api.call("POST", "/webhooks", tok, {"url": url, "events": ["nope"]}), 400,
           "an unknown event type")
    r = expect(api.call("PATCH", f"/webhooks/{wid}", tok, {"enabled": False}), 200, "disable it")
    check((r.json or {}).get("enabled") is False, f"disabled: {r.json}")
    expect(api.call("PATCH", f"/webhooks/{wid}", tok, {"url": "ftp://x.example/"}), 400,
           "a bad url")
    r = expect(api.call("POST", f"/webhooks/{wid}/rotate-secret", tok), 200, "rotate its secret")
    check((r.json or {}).get("secret", "").startswith("whsec_"), "the rotation shows the secret")
    r = expect(api.call("POST", f"/webhooks/{wid}/test", tok), 200, "test it")
    check((r.json or {}).get("delivered") is False and (r.json or {}).get("error"),
          f"a closed port: not delivered ({r.json})")
    nobody = "wh_" + "B" * 22
    expect(api.call("GET", f"/webhooks/{nobody}", tok), 404, "read an unknown endpoint")
    expect(api.call("PATCH", f"/webhooks/{nobody}", tok, {"enabled": True}), 404,
           "patch an unknown endpoint")
    expect(api.call("POST", f"/webhooks/{nobody}/rotate-secret", tok), 404,
           "rotate an unknown endpoint")
    expect(api.call("POST", f"/webhooks/{nobody}/test", tok), 404, "test an unknown endpoint")
    key = unique("key")
    expect(api.call("POST", "/rooms", tok, {"room": unique("r")}, headers={"Idempotency-Key": key}),
           201, "a room with a key")
    for path, body in (("/webhooks", {"url": url, "events": ["message.new"]}),
                       (f"/webhooks/{wid}/rotate-secret", None), (f"/webhooks/{wid}/test", None)):
        expect(api.call("POST", path, tok, body, headers={"Idempotency-Key": key}), 409,
               f"the key reused for POST {path}")
    for path in (f"/webhooks/{wid}/rotate-secret", f"/webhooks/{wid}/test"):
        expect(api.call("POST", path, tok, headers={"Idempotency-Key": "x" * 256}), 400,
               f"POST {path} with a 256-character key")
    r = expect(api.call("POST", "/webhooks", tok, {"url": url, "events": ["message.removed"]}),
               201, "an endpoint to delete")
    gone = (r.json or {}).get("id", nobody)
    expect(api.call("DELETE", f"/webhooks/{gone}", tok), 204, "delete it")
    expect(api.call("DELETE", f"/webhooks/{gone}", tok), 404, "delete it again")

    path = f"/users/{q(alice)}/notifications"
    r = expect(api.call("PATCH", path, tok, {"email": "alice@a.example"}), 200,
               "set a user's address")
    check((r.json or {}).get("email") == "alice@a.example", f"set: {r.json}")
    r = expect(api.call("GET", path, tok), 200, "a user's notification settings")
    check((r.json or {}).get("email") == "alice@a.example", f"read back: {r.json}")
    expect(api.call("PATCH", path, tok, {"email": "nope"}), 400, "a bad address")
    expect(api.call("GET", f"/users/{'x' * 65}/notifications", tok), 400, "a bad user id")
    r = expect(api.call("PATCH", path, tok, {"email": None}), 200, "clear the address")
    check((r.json or {}).get("email") is None, f"cleared: {r.json}")
    alive("webhook requests")


def cross_tenant():
    """Tenant B's token sees and changes nothing of tenant A's."""
    a, b = A.token(), B.token()
    before_room = api.call("GET", f"/rooms/{q(room)}", a).json
    before_members = api.call("GET", f"/rooms/{q(room)}/members", a).json
    before_history = api.call("GET", f"/rooms/{q(room)}/messages", a).json
    api.call("POST", f"/users/{q(alice)}/blocks", a, {"user": eve})
    mid = "0123456789abcdef01234567"
    for m in (before_history or {}).get("messages", []):
        if not m.get("deleted"):
            mid = m["id"]
    r = f"/rooms/{q(room)}"
    expect(api.call("GET", r, b), 404, "B reads A's room")
    expect(api.call("PATCH", r, b, {"name": "stolen"}), 404, "B renames A's room")
    expect(api.call("GET", f"{r}/members", b), 404, "B lists A's members")
    expect(api.call("POST", f"{r}/members", b, {"users": [eve]}), 404, "B adds to A's room")
    expect(api.call("DELETE", f"{r}/members/{q(alice)}", b), 404, "B removes A's member")
    expect(api.call("PATCH", f"{r}/messages/{mid}", b, {"text": "x"}), 404, "B edits A's message")
    expect(api.call("DELETE", f"{r}/messages/{mid}", b), 404, "B deletes A's message")
    hist = api.call("GET", f"{r}/messages", b)
    check(hist.status == 404 or (hist.status == 200 and not hist.json["messages"]),
          f"B's history of the name is not A's ({hist!r})")
    send = api.call("POST", f"{r}/messages", b, {"text": "x", "cid": unique("x")})
    check(send.status in (201, 403, 404), f"B's send to the name ({send!r})")
    rooms_b = expect(api.call("GET", "/rooms", b), 200, "B's rooms")
    if ok(rooms_b):
        check(all(x["room"] != room for x in rooms_b.json["rooms"]), "B's rooms lack A's room")
    ur = expect(api.call("GET", f"/users/{q(alice)}/rooms", b), 200, "B's alice's rooms")
    if ok(ur):
        check(all(x["room"] != room for x in ur.json["rooms"]), "B's alice is in no A room")
    bl = expect(api.call("GET", f"/users/{q(alice)}/blocks", b), 200, "B's alice's blocks")
    if ok(bl):
        check(bl.json["blocks"] == [], "B's alice blocked nobody")
    expect(api.call("DELETE", f"/users/{q(alice)}/blocks/{q(eve)}", b), 404,
           "B unblocks A's block")
    if state.get("export"):
        expect(api.call("GET", f"/exports/{state['export']}", b), 404, "B reads A's export")
    if state.get("erasure"):
        user, job = state["erasure"]
        expect(api.call("GET", f"/users/{q(user)}/erasure/{job}", b), 404,
               "B reads A's erasure")
    if state.get("webhook"):
        expect(api.call("GET", f"/webhooks/{state['webhook']}", b), 404,
               "B reads A's webhook endpoint")
        wl = expect(api.call("GET", "/webhooks", b), 200, "B's webhook endpoints")
        if ok(wl):
            check(wl.json["webhooks"] == [], "B has no webhook endpoints")
    if state.get("rescan"):
        expect(api.call("GET", f"/moderation/rescan/{state['rescan']}", B.token()), 404,
               "B reads another tenant's rescan")
    if state.get("flag"):
        owner, flag = state["flag"]
        expect(api.call("POST", f"/moderation/flags/{flag}", b, {"action": "dismiss"}), 404,
               "B reviews another tenant's flag")
        fl = expect(api.call("GET", "/moderation/flags", b, query={"state": "dismissed"}), 200,
                    "B's dismissed flags")
        if ok(fl):
            check(all(x["id"] != flag for x in fl.json["flags"]), "B sees no other tenant's flag")
        rl = expect(api.call("GET", "/moderation/rules", b), 200, "B's rules")
        check(rl.json == {}, f"B has no rules: {rl.json}")
    expect(api.call("DELETE", r, b), 404, "B deletes A's room")
    stats = expect(api.call("GET", "/stats", b), 200, "B's stats")
    if ok(stats):
        check(stats.json["rooms"] == 0, f"B has no rooms: {stats.json}")
    # A's data as it was
    check(api.call("GET", r, a).json == before_room, "A's room unchanged")
    check(api.call("GET", f"{r}/members", a).json == before_members, "A's members unchanged")
    after = api.call("GET", f"{r}/messages", a).json
    check(after == before_history, "A's history unchanged")
    bl = api.call("GET", f"/users/{q(alice)}/blocks", a).json
    check(bl and [x["target"] for x in bl["blocks"]] == [eve], "A's block unchanged")


def every_operation(run):
    """run(method, template, path, body) for every documented operation with a concrete path
    of tenant A's data (body: a valid body for operations that take one)."""
    mid = "0123456789abcdef01234567"
    wid = state.get("webhook", "wh_" + "C" * 22)
    concrete = {
        "/rooms": ("/rooms", {"room": unique("r")}),
        "/rooms/{room}": (f"/rooms/{q(room)}", {"name": "n"}),
        "/rooms/{room}/members": (f"/rooms/{q(room)}/members", {"users": [carol]}),
        "/rooms/{room}/members/{user}": (f"/rooms/{q(room)}/members/{q(carol)}", None),
        "/rooms/{room}/messages": (f"/rooms/{q(room)}/messages", {"text": "x", "cid": "c"}),
        "/rooms/{room}/messages/{id}": (f"/rooms/{q(room)}/messages/{mid}", {"text": "x"}),
        "/users/{user}/blocks": (f"/users/{q(alice)}/blocks", {"user": eve}),
        "/users/{user}/blocks/{target}": (f"/users/{q(alice)}/blocks/{q(eve)}", None),
        "/users/{user}/rooms": (f"/users/{q(alice)}/rooms", None),
        "/users/{user}": (f"/users/{q(unique('nobody'))}", None),
        "/users/{user}/erasure/{job}": (f"/users/{q(alice)}/erasure/{mid}", None),
        "/exports": ("/exports", {"room": room}),
        "/exports/{id}": (f"/exports/{mid}", None),
        "/stats": ("/stats", None),
        "/settings": ("/settings", {"push": {"enabled": False}}),
        "/moderation/rules": ("/moderation/rules", {}),
        "/moderation/flags": ("/moderation/flags", None),
        "/moderation/flags/{id}": (f"/moderation/flags/{mid}", {"action": "dismiss"}),
        "/moderation/rescan": ("/moderation/rescan",
                               {"since": int(time.time() * 1000) - 60000}),
        "/moderation/rescan/{id}": (f"/moderation/rescan/{mid}", None),
        "/webhooks": ("/webhooks", {"url": "http://127.0.0.1:1/x", "events": ["message.new"]}),
        "/webhooks/{id}": (f"/webhooks/{wid}", {"enabled": True}),
        "/webhooks/{id}/rotate-secret": (f"/webhooks/{wid}/rotate-secret", None),
        "/webhooks/{id}/test": (f"/webhooks/{wid}/test", None),
        "/users/{user}/notifications": (f"/users/{q(alice)}/notifications", {"email": None}),
    }
    for method, tpl in contract.operations():
        if tpl not in concrete:
            check(False, f"no concrete path for {tpl}: extend every_operation")
            continue
        path, body = concrete[tpl]
        takes_body = contract.operation(method, tpl).get("requestBody") is not None
        run(method, tpl, path, body if takes_body else None)


def sweep_auth_and_bodies():
    """401 without a token, 413 and 415 for every operation that takes a body."""
    tok = A.token()
    huge = b'{"text": "' + b"x" * (2 * max_body) + b'"}'
    # PUT /moderation/rules takes up to 16 MiB (docs/server-api.md)
    rules_limit = max(16 << 20, max_body)
    huger = b'{"allow": ["' + b"x" * (rules_limit + 1024) + b'"]}'

    def run(method, tpl, path, body):
        expect(api.call(method, path, None, body), 401, f"{method} {tpl} without a token")
        if body is not None:
            big = huger if tpl == "/moderation/rules" else huge
            expect(api.call(method, path, tok, raw=big), 413, f"{method} {tpl} with a huge body")
            expect(api.call(method, path, tok, raw=json.dumps(body).encode(),
                            content_type="text/plain"), 415, f"{method} {tpl} as text/plain")

    every_operation(run)
    alive("huge bodies")


def rate_limit():
    """A tenant over its rate gets 429 with Retry-After on every operation while other tenants
    are served; after Retry-After it is served again. The tenant's own api_calls_per_s setting
    is the limit (SERVER-API.md: settings.limits)."""
    F = Tenant(stack)
    expect(api.call("PATCH", "/settings", F.token(), {"limits": {"api_calls_per_s": 1}}), 200,
           "the flood tenant's rate: 1 call/s")
    time.sleep(2.5)  # the settings are cached for up to 2 s
    tok = F.token()
    statuses = [api.call("GET", FLOOD, tok).status for _ in range(20)]
    check(429 in statuses, f"20 calls at once over a setting of 1 call/s get a 429: {statuses}")

    # Flood hard in the background (bounded in calls and time) so that the tenant's bucket
    # stays empty while every operation is tried.
    stop = threading.Event()
    got = {"429": None, "n": 0}
    lock = threading.Lock()

    def flood():
        end = time.time() + 60
        while not stop.is_set() and time.time() < end:
            with lock:
                if got["n"] >= 20000:
                    return
                got["n"] += 1
            a = api.call("GET", FLOOD, tok)
            if a.status == 429:
                with lock:
                    got["429"] = got["429"] or a

    threads = [threading.Thread(target=flood) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        deadline = time.time() + 20
        while got["429"] is None and time.time() < deadline:
            time.sleep(0.05)
        a = got["429"]
        if not check(a is not None, f"a flood of {got['n']} calls gets 429"):
            return
        check(int(a.headers.get("retry-after", "0")) >= 1,
              f"Retry-After: {a.headers.get('retry-after')}")
        expect(api.call("GET", "/settings", A.token()), 200,
               "another tenant is served meanwhile")

        def run(method, tpl, path, body):
            for _ in range(50):
                r = api.call(method, path, tok, body)
                if r.status == 429:
                    break
            check(r.status == 429, f"{method} {tpl} over the rate: 429 (last {r!r})")

        every_operation(run)
    finally:
        stop.set()
        for t in threads:
            t.join()
    wait = int(got["429"].headers.get("retry-after", "1")) if got["429"] else 1
    time.sleep(wait + 1.5)
    expect(api.call("GET", "/settings", tok), 200, "served again after Retry-After")


def end_to_end():
    """Through a gateway: a member gets the API's system message and `left` {reason:
    "removed"} when removed through the API; a non-member's join is forbidden."""
    from websockets.sync.client import connect

    urls = stack["CHAT_GATEWAY_URLS"].split(",")
    tok = A.token()
    r2 = unique("e2e")
    expect(api.call("POST", "/rooms", tok, {"room": r2, "members": [alice]}), 201,
           "a private room with alice")

    sockets = contextlib.ExitStack()

    def session(url, user):
        ws = sockets.enter_context(connect(url, open_timeout=10))
        ws.send(json.dumps({"type": "auth", "token": user_token(A.id, A.secret, user)}))
        frame = json.loads(ws.recv(timeout=10))
        if frame.get("type") != "welcome":
            raise AssertionError(f"auth of {user}: {frame}")
        return ws

    def wait_for(ws, pred, what, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                f = json.loads(ws.recv(timeout=max(0.1, deadline - time.time())))
            except TimeoutError:
                break
            if pred(f):
                return f
        check(False, f"{what}: not received within {timeout} s")
        return None

    with sockets:
        wa = session(urls[0], alice)
        we = session(urls[-1], eve)
        wa.send(json.dumps({"type": "join", "room": r2, "rid": "j1"}))
        f = wait_for(wa, lambda f: f.get("type") in ("joined", "error") and f.get("rid") == "j1",
                     "alice's join")
        check(f is not None and f["type"] == "joined", f"the member joins: {f}")
        we.send(json.dumps({"type": "join", "room": r2, "rid": "j2"}))
        f = wait_for(we, lambda f: f.get("type") in ("joined", "error") and f.get("rid") == "j2",
                     "eve's join")
        check(f is not None and f["type"] == "error" and f.get("code") == "forbidden",
              f"a non-member's join is forbidden: {f}")
        text = unique("notice")
        expect(api.call("POST", f"/rooms/{q(r2)}/messages", tok, {"text": text, "cid": "e2e-1"}),
               201, "a system message through the API")
        f = wait_for(wa, lambda f: f.get("type") == "msg" and f.get("text") == text,
                     "the system message at alice")
        check(f is not None and f.get("from") == "system", f"from system: {f}")
        expect(api.call("DELETE", f"/rooms/{q(r2)}/members/{q(alice)}", tok), 204,
               "remove alice through the API")
        f = wait_for(wa, lambda f: f.get("type") == "left" and f.get("room") == r2,
                     "alice's left")
        check(f is not None and f.get("reason") == "removed", f"left {{reason: removed}}: {f}")
        # Removed: a send is refused and a new join is forbidden.
        wa.send(json.dumps({"type": "join", "room": r2, "rid": "j3"}))
        f = wait_for(wa, lambda f: f.get("type") in ("joined", "error") and f.get("rid") == "j3",
                     "alice's join after the removal")
        check(f is not None and f["type"] == "error" and f.get("code") == "forbidden",
              f"a removed member's join is forbidden: {f}")
        # Added through the API: the room is in the user's `rooms` list, and the join works.
        expect(api.call("POST", f"/rooms/{q(r2)}/members", tok, {"users": [eve]}), 200,
               "add eve through the API")
        we.send(json.dumps({"type": "rooms", "rid": "r1"}))
        f = wait_for(we, lambda f: f.get("type") == "rooms" and f.get("rid") == "r1",
                     "eve's rooms")
        mine = [x for x in (f or {}).get("rooms", []) if x["room"] == r2]
        check(len(mine) == 1 and mine[0]["kind"] == "private",
              f"the added member's rooms list the private room: {f}")
        we.send(json.dumps({"type": "join", "room": r2, "rid": "j4"}))
        f = wait_for(we, lambda f: f.get("type") in ("joined", "error") and f.get("rid") == "j4",
                     "eve's join after the add")
        check(f is not None and f["type"] == "joined", f"an added member joins: {f}")
        # Deleted through the API: every subscriber is cut off with reason "deleted".
        expect(api.call("DELETE", f"/rooms/{q(r2)}", tok), 204, "delete the room through the API")
        f = wait_for(we, lambda f: f.get("type") == "left" and f.get("room") == r2, "eve's left")
        check(f is not None and f.get("reason") == "deleted", f"left {{reason: deleted}}: {f}")


def coverage():
    """Every documented status of every operation was seen, except UNPROVOKED."""
    missing = []
    for method, tpl in contract.operations():
        for status in sorted(contract.statuses(method, tpl)):
            if status in UNPROVOKED:
                continue
            if (method, tpl, status) not in api.seen:
                missing.append(f"{method} {tpl} {status}")
    check(not missing, "every documented status was seen" +
          ("; never seen: " + ", ".join(missing) if missing else ""))
    for status, why in sorted(UNPROVOKED.items()):
        print(f"# not provoked: {status}: {why}")
    check(not api.violations, "every answer matched the contract" +
          "".join("\n    " + v for v in api.violations))


for s in (auth, rooms, members, messages, blocks, jobs, tenant_settings, member_limit,
          idempotency, moderation, webhooks,
          cross_tenant, sweep_auth_and_bodies, end_to_end, rate_limit, coverage):
    section(s)

print(f"{passes} passed, {len(failures)} failed ({api.calls} calls)")
if failures:
    print("failed:\n  " + "\n  ".join(failures))
sys.exit(1 if failures else 0)
