"""The server API's webhook endpoints and users' notification settings on the fixture's stack.
Webhooks: a create shows the secret once (never in a read or a list), a list pages, a patch
changes (enabling clears the reason), each change bumps the tenant's revision for notify
(Redis chat:notify:rev); POST .../test reaches a receiver this test runs on 127.0.0.1, which
verifies every signature with the reference Standard Webhooks library (PyPI
`standardwebhooks`): one signature at first, two after a rotation (each secret verifies), and
the oldest secret no longer after a second rotation; a failing and an unreachable receiver are
reported as not delivered; bad bodies are 400 naming the field; 10 endpoints at most; an
Idempotency-Key makes one endpoint; another tenant sees and changes nothing; a delete is 204
then 404. Users' notification settings: an address set, read back, cleared, refused when bad,
and gone after the user's erasure. Every answer is checked against proto/openapi.yaml."""

import json
import os
import re
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from api_client import Api, Contract, Tenant, q, stack_load, unique  # noqa: E402
from checks import check, finish  # noqa: E402
from standardwebhooks.webhooks import Webhook, WebhookVerificationError  # noqa: E402



stack = stack_load()
contract = Contract(os.path.join(stack["CHAT_SOURCE_DIR"], "proto", "openapi.yaml"))
api = Api(stack["CHAT_API_URL"], contract)
A = Tenant(stack)
B = Tenant(stack)


def call(method, path, tenant, body=None, query=None, status=None, what="", headers=None):
    """An api call as tenant; checks the status when given."""
    a = api.call(method, path, tenant.token(), body, query=query, headers=headers)
    if status is not None:
        check(a.status == status, f"{what}: {status} (got {a!r})")
    return a


# ---- the receiver ----

class Receiver:
    """An HTTP server on 127.0.0.1 recording every request; /fail answers 500, anything else
    200."""

    def __init__(self):
        self.got = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(n)
                with receiver.lock:
                    receiver.got.append({"path": self.path, "body": body,
                                         "headers": {k.lower(): v for k, v in
                                                     self.headers.items()}})
                status = 500 if self.path.startswith("/fail") else 200
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def take(self):
        """What was received since the last take."""
        with self.lock:
            got, self.got = self.got, []
        return got

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def verifies(secret, req):
    """True if the reference library verifies req (as received) with secret."""
    try:
        Webhook(secret).verify(req["body"], req["headers"])
        return True
    except WebhookVerificationError:
        return False


# ---- Redis: the revision notify polls ----

def notify_rev(tenant):
    """HGET chat:notify:rev tenant on the stack's Redis (RESP over a socket): an int, 0 when
    unset."""
    u = urllib.parse.urlsplit(stack["CHAT_REDIS_URL"])
    db = (u.path or "/0").lstrip("/") or "0"

    def command(sock, *args):
        out = f"*{len(args)}\r\n".encode()
        for a in args:
            a = str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        sock.sendall(out)
        f = sock.makefile("rb")
        line = f.readline()
        if line.startswith(b"$"):
            n = int(line[1:])
            return None if n < 0 else f.read(n + 2)[:-2].decode()
        return line[1:].strip().decode()

    with socket.create_connection((u.hostname, u.port or 6379), timeout=10) as s:
        command(s, "SELECT", db)
        v = command(s, "HGET", "chat:notify:rev", tenant)
    return int(v) if v else 0


# ---- webhooks ----

def bad_bodies(rx):
    """Every refusal is 400 and its message names the field."""
    url = rx.url + "/ok"
    cases = [
        ("POST", "/webhooks", {"events": ["message.new"]}, "url"),
        ("POST", "/webhooks", {"url": url}, "events"),
        ("POST", "/webhooks", {"url": "ftp://h.example/x", "events": ["message.new"]}, "url"),
        ("POST", "/webhooks", {"url": "https://u:p@h.example/x", "events": ["message.new"]},
         "url"),
        ("POST", "/webhooks", {"url": 7, "events": ["message.new"]}, "url"),
        ("POST", "/webhooks", {"url": url, "events": []}, "events"),
        ("POST", "/webhooks", {"url": url, "events": ["message.sent"]}, "events[0]"),
        ("POST", "/webhooks", {"url": url, "events": ["message.new", "message.new"]},
         "events[1]"),
        ("POST", "/webhooks", {"url": url, "events": ["message.new"] * 7}, "events"),
        ("POST", "/webhooks", {"url": url, "events": ["message.new"], "enabled": "yes"},
         "enabled"),
        ("POST", "/webhooks", {"url": url, "events": ["message.new"], "description": "d" * 257},
         "description"),
        ("POST", "/webhooks", {"url": url, "events": ["message.new"], "secret": "whsec_x"},
         "secret"),
        ("POST", "/webhooks", {"url": "https://" + "h" * 2100 + ".example/", "events":
                               ["message.new"]}, "url"),
    ]
    for method, path, body, field in cases:
        a = call(method, path, A, body, status=400, what=f"{method} {path} {json.dumps(body)[:80]}")
        msg = ((a.json or {}).get("error") or {}).get("message", "")
        check(field in msg, f"the refusal names {field}: {msg!r}")
    a = call("POST", "/webhooks", A, {"url": url, "events": ["message.new"],
                                      "description": "d" * 256}, status=201,
             what="a description of 256 characters")
    if a.json:
        call("DELETE", f"/webhooks/{a.json['id']}", A, status=204, what="delete it")


def main():
    rx = Receiver()
    try:
        webhooks(rx)
        notifications()
    finally:
        rx.stop()
    check(not api.violations, "every answer matched the contract" +
          "".join("\n    " + v for v in api.violations))


def webhooks(rx):
    r = call("GET", "/webhooks", A, status=200, what="the webhooks of a new tenant")
    check(r.json == {"webhooks": [], "next": None}, f"none: {r.json}")

    rev0 = notify_rev(A.id)
    url = rx.url + "/ok"
    c = call("POST", "/webhooks", A, {"url": url, "events": ["room.member_added", "message.new"],
                                      "description": "our backend"}, status=201, what="create")
    w = c.json or {}
    wid, s1 = w.get("id", ""), w.get("secret", "")
    check(re.fullmatch(r"wh_[A-Za-z0-9_-]{22}", wid) is not None, f"id {wid!r}")
    check(s1.startswith("whsec_"), "the create answers the secret")
    check(w.get("url") == url and w.get("events") == ["message.new", "room.member_added"]
          and w.get("enabled") is True and w.get("description") == "our backend"
          and w.get("disabled_reason") is None and w.get("failing_since") is None,
          f"the endpoint as created: {w}")
    check(notify_rev(A.id) > rev0, "the create bumped the tenant's revision for notify")

    g = call("GET", f"/webhooks/{wid}", A, status=200, what="read it")
    check("secret" not in (g.json or {}) and "secrets" not in (g.json or {}),
          f"a read shows no secret: {g.json}")
    check(g.json == {k: v for k, v in w.items() if k != "secret"}, "a read answers the endpoint")

    # A second endpoint; the list pages oldest first and shows no secret.
    c2 = call("POST", "/webhooks", A, {"url": rx.url + "/fail", "events": ["message.removed"],
                                       "enabled": False}, status=201, what="a second, disabled")
    w2 = c2.json or {}
    check(w2.get("enabled") is False, "created disabled")
    p1 = call("GET", "/webhooks", A, query={"limit": 1}, status=200, what="page 1")
    p1j = p1.json or {}
    check([x["id"] for x in p1j.get("webhooks", [])] == [wid] and p1j.get("next"),
          f"page 1: the first, and a next ({p1j})")
    p2 = call("GET", "/webhooks", A, query={"limit": 1, "cursor": p1j.get("next", "")},
              status=200, what="page 2")
    p2j = p2.json or {}
    check([x["id"] for x in p2j.get("webhooks", [])] == [w2.get("id")] and p2j.get("next") is None,
          f"page 2: the second, the last ({p2j})")
    check(all("secret" not in x for x in p1j.get("webhooks", []) + p2j.get("webhooks", [])),
          "a list shows no secret")
    call("GET", "/webhooks", A, query={"cursor": "!!"}, status=400, what="a malformed cursor")

    # The test call: one event, verified by the reference library with the secret.
    rx.take()
    t = call("POST", f"/webhooks/{wid}/test", A, status=200, what="test")
    tj = t.json or {}
    check(tj.get("delivered") is True and tj.get("status") == 200 and tj.get("error") is None
          and isinstance(tj.get("duration_ms"), int), f"delivered: {tj}")
    got = rx.take()
    check(len(got) == 1, f"the receiver got one request ({len(got)})")
    if got:
        req = got[0]
        h = req["headers"]
        body = json.loads(req["body"])
        check(body.get("type") == "webhook.test" and body.get("tenant") == A.id
              and body.get("data") == {"endpoint": wid} and isinstance(body.get("ts"), int),
              f"the test event: {body}")
        check(re.fullmatch(r"msg_[0-9a-f]{32}", h.get("webhook-id", "")) is not None
              and h.get("content-type", "").startswith("application/json")
              and abs(int(h.get("webhook-timestamp", "0")) - time.time()) < 60,
              f"the Standard Webhooks headers: {h}")
        check(len(h.get("webhook-signature", "").split(" ")) == 1, "one signature")
        check(verifies(s1, req), "standardwebhooks verifies it with the secret")
        check(not verifies("whsec_" + "QUJD" * 8, req), "and not with another secret")

    # Rotation: two signatures, each secret verifies.
    rev = notify_rev(A.id)
    r = call("POST", f"/webhooks/{wid}/rotate-secret", A, status=200, what="rotate")
    s2 = (r.json or {}).get("secret", "")
    check(s2.startswith("whsec_") and s2 != s1, "a new secret")
    check(notify_rev(A.id) > rev, "the rotation bumped the revision")
    check("secret" not in (call("GET", f"/webhooks/{wid}", A).json or {}),
          "a read after the rotation shows no secret")
    call("POST", f"/webhooks/{wid}/test", A, status=200, what="test after the rotation")
    got = rx.take()
    if check(len(got) == 1, "one request"):
        req = got[0]
        check(len(req["headers"].get("webhook-signature", "").split(" ")) == 2,
              f"two signatures: {req['headers'].get('webhook-signature')}")
        check(verifies(s2, req), "the new secret verifies")
        check(verifies(s1, req), "the old secret verifies (for 24 h)")
    r = call("POST", f"/webhooks/{wid}/rotate-secret", A, status=200, what="rotate again")
    s3 = (r.json or {}).get("secret", "")
    call("POST", f"/webhooks/{wid}/test", A, status=200, what="test after two rotations")
    got = rx.take()
    if check(len(got) == 1, "one request"):
        req = got[0]
        check(len(req["headers"].get("webhook-signature", "").split(" ")) == 2, "two signatures")
        check(verifies(s3, req) and verifies(s2, req), "the newest two secrets verify")
        check(not verifies(s1, req), "the first secret no longer does")

    # Failures are reported, not raised.
    t = call("POST", f"/webhooks/{w2.get('id')}/test", A, status=200,
             what="test of a receiver answering 500 (a disabled endpoint is tested too)")
    tj = t.json or {}
    check(tj.get("delivered") is False and tj.get("status") == 500 and tj.get("error"),
          f"not delivered, status 500: {tj}")
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()
    p = call("PATCH", f"/webhooks/{w2.get('id')}", A, {"url": f"http://127.0.0.1:{dead_port}/x"},
             status=200, what="point it at a closed port")
    t = call("POST", f"/webhooks/{w2.get('id')}/test", A, status=200, what="test of no receiver")
    tj = t.json or {}
    check(tj.get("delivered") is False and tj.get("status") is None and tj.get("error"),
          f"not delivered, no status, an error: {tj}")
    rx.take()

    # Patch.
    rev = notify_rev(A.id)
    p = call("PATCH", f"/webhooks/{wid}", A, {"events": ["user.offline_message"],
                                               "description": None, "enabled": False},
             status=200, what="patch")
    pj = p.json or {}
    check(pj.get("events") == ["user.offline_message"] and pj.get("description") is None
          and pj.get("enabled") is False and pj.get("url") == url
          and pj.get("updated", 0) >= w.get("updated", 0) and "secret" not in pj,
          f"patched: {pj}")
    check(notify_rev(A.id) > rev, "the patch bumped the revision")
    p = call("PATCH", f"/webhooks/{wid}", A, {"enabled": True}, status=200, what="enable again")
    pj = p.json or {}
    check(pj.get("enabled") is True and pj.get("disabled_reason") is None
          and pj.get("failing_since") is None, f"enabled, no reason: {pj}")
    call("PATCH", f"/webhooks/{wid}", A, {"events": ["nope"]}, status=400, what="a bad patch")
    call("PATCH", f"/webhooks/{wid}", A, {"id": "wh_x"}, status=400, what="an unknown field")
    check((call("GET", f"/webhooks/{wid}", A).json or {}).get("events") ==
          ["user.offline_message"], "the refused patches changed nothing")

    bad_bodies(rx)

    # Idempotency-Key: one endpoint, the first answer (its secret too) again.
    key = unique("key")
    body = {"url": url, "events": ["message.new"]}
    i1 = call("POST", "/webhooks", A, body, headers={"Idempotency-Key": key}, status=201,
              what="a create with a key")
    i2 = call("POST", "/webhooks", A, body, headers={"Idempotency-Key": key}, status=201,
              what="the same create again")
    check(i1.json == i2.json and i2.headers.get("idempotent-replayed") == "true",
          "the repeat answers the first answer")
    ids = [x["id"] for x in (call("GET", "/webhooks", A).json or {}).get("webhooks", [])]
    check(ids.count((i1.json or {}).get("id")) == 1 and len(ids) == 3,
          f"one endpoint made ({ids})")

    # Another tenant.
    for method, path, b in (("GET", f"/webhooks/{wid}", None),
                            ("PATCH", f"/webhooks/{wid}", {"enabled": False}),
                            ("POST", f"/webhooks/{wid}/rotate-secret", None),
                            ("POST", f"/webhooks/{wid}/test", None),
                            ("DELETE", f"/webhooks/{wid}", None)):
        call(method, path, B, b, status=404, what=f"B: {method} {path}")
    check((call("GET", "/webhooks", B).json or {}).get("webhooks") == [], "B lists none")
    check((call("GET", f"/webhooks/{wid}", A).json or {}).get("enabled") is True,
          "A's endpoint unchanged")
    call("POST", f"/webhooks/{wid}/test", A, status=200, what="A's test after B's attempts")
    got = rx.take()
    check(len(got) == 1 and verifies(s3, got[0]), "A's secret unchanged by B's rotation")

    # Unknown ids.
    nobody = "wh_" + "A" * 22
    for method, path, b in (("GET", f"/webhooks/{nobody}", None),
                            ("PATCH", f"/webhooks/{nobody}", {"enabled": True}),
                            ("POST", f"/webhooks/{nobody}/rotate-secret", None),
                            ("POST", f"/webhooks/{nobody}/test", None),
                            ("DELETE", f"/webhooks/{nobody}", None),
                            ("GET", "/webhooks/nope", None)):
        call(method, path, A, b, status=404, what=f"{method} {path}")

    # Delete.
    rev = notify_rev(A.id)
    call("DELETE", f"/webhooks/{wid}", A, status=204, what="delete")
    check(notify_rev(A.id) > rev, "the delete bumped the revision")
    call("GET", f"/webhooks/{wid}", A, status=404, what="read after the delete")
    call("DELETE", f"/webhooks/{wid}", A, status=404, what="delete again")

    # At most 10.
    C = Tenant(stack)
    for i in range(10):
        call("POST", "/webhooks", C, {"url": f"{url}/{i}", "events": ["message.new"]},
             status=201, what=f"endpoint {i + 1} of 10")
    a = call("POST", "/webhooks", C, {"url": url, "events": ["message.new"]}, status=400,
             what="an 11th endpoint")
    check("at most 10 webhook endpoints" in ((a.json or {}).get("error") or {}).get("message", ""),
          f"says why: {a.json}")
    page = call("GET", "/webhooks", C, query={"limit": 100}).json or {}
    check(len(page.get("webhooks", [])) == 10 and page.get("next") is None, "10 listed")

    # The settings PATCH is notify's business too (push, email).
    rev = notify_rev(A.id)
    s = call("PATCH", "/settings", A, {"email": {"from": "noreply@a.example"}}, status=200,
             what="settings")
    check((s.json or {}).get("email", {}).get("digest_delay_s") == 600,
          f"the digest delay defaults to 600 s: {s.json}")
    check(notify_rev(A.id) > rev, "a settings PATCH bumped the revision")


# ---- users' notification settings ----

def notifications():
    user = unique("ursula")
    path = f"/users/{q(user)}/notifications"
    r = call("GET", path, A, status=200, what="a user's notification settings")
    check(r.json == {"user": user, "email": None, "push_subscriptions": 0, "prefs": []},
          f"nothing known: {r.json}")
    r = call("PATCH", path, A, {"email": "ursula@b.example"}, status=200, what="set the address")
    check((r.json or {}).get("email") == "ursula@b.example", f"set: {r.json}")
    r = call("GET", path, A, status=200, what="read it back")
    check((r.json or {}).get("email") == "ursula@b.example", f"read back: {r.json}")
    check((call("GET", path, B).json or {}).get("email") is None,
          "the same user id in another tenant has none")
    for body, field in (({"email": "not an address"}, "email"), ({"email": 5}, "email"),
                        ({}, "email"), ({"email": None, "phone": "1"}, "phone")):
        a = call("PATCH", path, A, body, status=400, what=f"PATCH {body}")
        msg = ((a.json or {}).get("error") or {}).get("message", "")
        check(field in msg, f"names {field}: {msg!r}")
    call("GET", f"/users/{'x' * 65}/notifications", A, status=400, what="a bad user id")
    r = call("PATCH", path, A, {"email": None}, status=200, what="clear the address")
    check((r.json or {}).get("email") is None, f"cleared: {r.json}")
    check((call("GET", path, A).json or {}).get("email") is None, "reads back cleared")

    # Erasure takes the address too.
    call("PATCH", path, A, {"email": "ursula@b.example"}, status=200, what="set it again")
    e = call("DELETE", f"/users/{q(user)}", A, status=202, what="erase the user")
    job = (e.json or {}).get("job")
    deadline, st = time.time() + 90, None
    while job and time.time() < deadline:
        st = (call("GET", f"/users/{q(user)}/erasure/{job}", A).json or {}).get("state")
        if st in ("done", "failed"):
            break
        time.sleep(0.5)
    check(st == "done", f"the erasure is done ({st})")
    check((call("GET", path, A).json or {}).get("email") is None,
          "the erased user has no address")


main()
finish()
