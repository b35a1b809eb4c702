#!/usr/bin/env python3
"""The third-party peers of the notify tests, real enough that a test passing against them
means the platform talks to the real ones right. One process, on loopback:

  peers.py --host 127.0.0.1 --push-port P1 --webhook-port P2 --smtp-port P3 --control-port P4

A port of 0 takes a free one. Once every listener is bound it prints one JSON line on stdout,
{"ready": true, "push": "http://HOST:P1", "webhook": "http://HOST:P2", "smtp":
"smtp://HOST:P3", "control": "http://HOST:P4"}, then a line per request it handles. SIGTERM or
SIGINT stops it.

Push service (RFC 8030), on P1: `POST /push/<sub id>` with an aes128gcm body. For a
subscription made on the control port it checks, in this order (peers_push.py):
  - the subscription exists (404 otherwise);
  - `Authorization: vapid t=<jwt>, k=<key>` (RFC 8292): ES256 signature (raw r||s) verified
    with k, aud == "http://HOST:P1", now < exp <= now + 24 h, sub a mailto: or https: URI
    (401 otherwise); k is the subscription's application server key if it was made with one
    (403 otherwise);
  - `TTL` present, `Urgency` one of very-low|low|normal|high, `Topic` <= 32 base64url
    characters, `Content-Encoding: aes128gcm` (400 otherwise);
  - the body: <= 4096 bytes (413), one record whose key id is the sender's public key,
    decrypted with http_ece and the subscription's private key and auth secret, and the
    plaintext JSON (400 otherwise);
  - the subscription was not deleted (410 then), no programmed fault is pending (its status);
then answers 201 with a Location. Every request is recorded, with an outcome: "delivered"
(201), "fault" (a programmed failure answered), "gone" (410 for a deleted subscription) or
"refused" (any check above failed: the record's `error` says which; tests expect none). A
delivered push with a Topic marks the sub's older delivered pushes of the same Topic
`replaced` (a push service replaces a message it has not delivered yet), keeping them in the
log.

Webhook receiver (Standard Webhooks), on P2: `POST /hooks/<name>`. The body is verified with
the reference library, `standardwebhooks.Webhook(secret).verify(body, headers)`, once per
secret configured for name: accepted if any verifies (`verified_with` lists the indexes of
those that did: both during a rotation), else 401; an unknown name is 404. A programmed fault
answers its status instead of 204.

SMTP sink, on P3 (aiosmtpd): plain SMTP, no STARTTLS and no AUTH (loopback only); takes every
message and records its envelope and what the email package parses of it.

Control API, on P4 (JSON bodies and answers; 400 {"error"} for a bad request):
  GET    /healthz                             {"ok": true, push, webhook, smtp, control}
  POST   /control/subscriptions               body {} or {"application_server_key": b64url}:
         a fake browser subscription (a P-256 key pair, a 16-byte auth secret); answers 201
         {id, endpoint: "http://HOST:P1/push/<id>", expirationTime: null,
          keys: {p256dh, auth}} (base64url without padding, as PushSubscription.toJSON())
  DELETE /control/subscriptions/<id>          the browser unsubscribed: pushes answer 410
  POST   /control/subscriptions/<id>/fail     {status, count, retry_after?}: the next count
         pushes (-1: all) answer status (with Retry-After if given); count 0 clears it
  GET    /control/pushes?sub=&outcome=        the push records, oldest first: {seq, sub, ts
         (ms), status, outcome, error, headers {ttl, urgency, topic, content_encoding,
         content_type}, vapid_ok, vapid {sub, aud, exp, k}, payload, size, replaced,
         replaced_by}; both filters optional
  DELETE /control/pushes?sub=                 forget the records (of one sub)
  PUT    /control/hooks/<name>                {secrets: ["whsec_..."], fail?: {status, count,
         retry_after?}}: the endpoint's secrets and fault (replacing what was set)
  GET    /control/hooks?name=&outcome=        {seq, name, ts, webhook_id, timestamp,
         signature, body (JSON or null), raw, verified, verified_with, status_answered,
         outcome (delivered|fault|refused), error}
  DELETE /control/hooks?name=                 forget the records (of one name)
  GET    /control/mails?to=                   {seq, ts, mail_from, rcpt_tos, raw, subject,
         from, to, message_id, content_type, text, html, defects}: text and html are the
         decoded parts with \n line ends; to matches an envelope recipient, case-insensitively
  DELETE /control/mails                       forget the mails
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import secrets
import signal
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import standardwebhooks  # noqa: E402
from aiosmtpd.smtp import SMTP  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

import peers_push  # noqa: E402
from peers_push import PushRefused  # noqa: E402


def now_ms():
    return int(time.time() * 1000)


def log(line):
    print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)


class Fault:
    """A programmed failure: the next count requests (-1: all) answer status."""

    def __init__(self, spec):
        if not isinstance(spec, dict):
            raise ValueError("fail must be an object {status, count, retry_after?}")
        status, count = spec.get("status"), spec.get("count", 1)
        retry_after = spec.get("retry_after")
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise ValueError(f"fail.status {status!r} is not an HTTP status")
        if not isinstance(count, int) or count < -1:
            raise ValueError(f"fail.count {count!r} is not -1 or a whole number")
        if retry_after is not None and (not isinstance(retry_after, int) or retry_after < 0):
            raise ValueError(f"fail.retry_after {retry_after!r} is not a whole number")
        self.status, self.count, self.retry_after = status, count, retry_after

    def take(self):
        """The fault's (status, retry_after) for this request, or None once it is used up."""
        if self.count == 0:
            return None
        if self.count > 0:
            self.count -= 1
        return self.status, self.retry_after


class State:
    """Everything the peers know, behind one lock: the push subscriptions, the webhook
    endpoints' secrets and faults, and the records of what arrived."""

    def __init__(self):
        self.lock = threading.Lock()
        self.subs = {}
        self.pushes = []
        self.hook_cfg = {}
        self.hooks = []
        self.mails = []
        self.seq = 0

    def next_seq(self):
        self.seq += 1
        return self.seq


class Peers:
    def __init__(self, host):
        self.host = host
        self.state = State()
        self.push_origin = None
        self.webhook_url = None
        self.smtp_url = None
        self.control_url = None

    # ---- control ----

    def new_subscription(self, body):
        ask = body.get("application_server_key")
        ask_raw = None
        if ask is not None:
            try:
                ask_raw = peers_push.b64url_decode(ask, "application_server_key")
            except PushRefused as e:
                raise ValueError(str(e)) from None
            if len(ask_raw) != 65 or ask_raw[0] != 4:
                raise ValueError("application_server_key is not an uncompressed P-256 point")
        key = ec.generate_private_key(ec.SECP256R1())
        auth = secrets.token_bytes(16)
        sid = secrets.token_hex(12)
        with self.state.lock:
            self.state.subs[sid] = {"key": key, "auth": auth, "ask": ask_raw, "gone": False,
                                    "fault": None, "created": now_ms()}
        log(f"control: subscription {sid} made")
        return {"id": sid, "endpoint": f"{self.push_origin}/push/{sid}", "expirationTime": None,
                "keys": {"p256dh": peers_push.b64url_encode(
                    peers_push.public_key_raw(key.public_key())),
                    "auth": peers_push.b64url_encode(auth)}}

    # ---- push service ----

    def push(self, sid, headers, body):
        """Handles POST /push/<sid>: returns (status, extra headers) after recording it."""
        rec = {"sub": sid, "ts": now_ms(), "status": None, "outcome": None, "error": None,
               "headers": {}, "vapid_ok": False, "vapid": None, "payload": None,
               "size": len(body), "replaced": False, "replaced_by": None}
        with self.state.lock:
            sub = self.state.subs.get(sid)
        extra = {}
        try:
            if sub is None:
                raise PushRefused(404, "no such subscription")
            rec["vapid"] = peers_push.check_vapid(headers.get("Authorization"),
                                                  self.push_origin,
                                                  application_server_key=sub["ask"])
            rec["vapid_ok"] = True
            rec["headers"] = peers_push.check_headers(headers)
            plaintext = peers_push.decrypt_body(body, sub["key"], sub["auth"])
            rec["payload"] = peers_push.parse_payload(plaintext)
        except PushRefused as e:
            rec["status"], rec["outcome"], rec["error"] = e.status, "refused", str(e)
        with self.state.lock:
            rec["seq"] = self.state.next_seq()
            if rec["outcome"] is None:
                fault = sub["fault"].take() if sub["fault"] else None
                if sub["gone"]:
                    rec["status"], rec["outcome"] = 410, "gone"
                elif fault is not None:
                    rec["status"], rec["outcome"] = fault[0], "fault"
                    if fault[1] is not None:
                        extra["Retry-After"] = str(fault[1])
                else:
                    rec["status"], rec["outcome"] = 201, "delivered"
                    extra["Location"] = f"{self.push_origin}/message/{rec['seq']}"
                    topic = rec["headers"].get("topic")
                    if topic is not None:
                        for old in self.state.pushes:
                            if (old["sub"] == sid and old["outcome"] == "delivered"
                                    and not old["replaced"]
                                    and old["headers"].get("topic") == topic):
                                old["replaced"], old["replaced_by"] = True, rec["seq"]
            self.state.pushes.append(rec)
        log(f"push {sid}: {rec['status']} {rec['outcome']}"
            + (f" ({rec['error']})" if rec["error"] else "")
            + (f" topic={rec['headers'].get('topic')}" if rec["headers"].get("topic") else ""))
        return rec["status"], extra

    # ---- webhook receiver ----

    def set_hook(self, name, body):
        secrets_ = body.get("secrets")
        if (not isinstance(secrets_, list) or not secrets_
                or not all(isinstance(s, str) for s in secrets_)):
            raise ValueError("secrets must be a non-empty list of strings")
        hooks = []
        for s in secrets_:
            try:
                hooks.append(standardwebhooks.Webhook(s))
            except Exception as e:
                raise ValueError(f"secret {s[:10]}...: {e}") from None
        fault = Fault(body["fail"]) if body.get("fail") is not None else None
        with self.state.lock:
            self.state.hook_cfg[name] = {"secrets": list(secrets_), "hooks": hooks,
                                         "fault": fault}
        log(f"control: hook {name}: {len(hooks)} secret(s)"
            + (f", fail {fault.status} x{fault.count}" if fault else ""))

    def hook(self, name, headers, body):
        """Handles POST /hooks/<name>: returns (status, extra headers) after recording it."""
        lower = {k.lower(): v for k, v in headers.items()}
        rec = {"name": name, "ts": now_ms(), "webhook_id": lower.get("webhook-id"),
               "timestamp": lower.get("webhook-timestamp"),
               "signature": lower.get("webhook-signature"),
               "content_type": lower.get("content-type"), "body": None,
               "raw": body.decode("utf-8", "replace"), "verified": False, "verified_with": [],
               "status_answered": None, "outcome": None, "error": None}
        try:
            rec["body"] = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            pass
        with self.state.lock:
            cfg = self.state.hook_cfg.get(name)
        extra = {}
        if cfg is None:
            rec["status_answered"], rec["outcome"], rec["error"] = 404, "refused", "no such hook"
        else:
            errors = []
            for i, wh in enumerate(cfg["hooks"]):
                try:
                    wh.verify(body, dict(headers.items()), json_parse=False)
                    rec["verified_with"].append(i)
                except Exception as e:  # WebhookVerificationError, or a malformed header
                    errors.append(f"secret {i}: {e}")
            rec["verified"] = bool(rec["verified_with"])
            if not rec["verified"]:
                rec["status_answered"], rec["outcome"] = 401, "refused"
                rec["error"] = "; ".join(errors)
        with self.state.lock:
            rec["seq"] = self.state.next_seq()
            if rec["outcome"] is None:
                fault = cfg["fault"].take() if cfg["fault"] else None
                if fault is not None:
                    rec["status_answered"], rec["outcome"] = fault[0], "fault"
                    if fault[1] is not None:
                        extra["Retry-After"] = str(fault[1])
                else:
                    rec["status_answered"], rec["outcome"] = 204, "delivered"
            self.state.hooks.append(rec)
        log(f"hook {name}: {rec['status_answered']} {rec['outcome']} id={rec['webhook_id']}"
            + (f" ({rec['error']})" if rec["error"] else ""))
        return rec["status_answered"], extra

    # ---- SMTP sink ----

    def mail(self, envelope):
        raw = envelope.content if isinstance(envelope.content, bytes) else \
            envelope.content.encode("utf-8", "surrogateescape")
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        rec = {"ts": now_ms(), "mail_from": envelope.mail_from,
               "rcpt_tos": list(envelope.rcpt_tos), "raw": raw.decode("utf-8", "replace"),
               "subject": None, "from": None, "to": None, "message_id": None,
               "content_type": msg.get_content_type(), "text": None, "html": None,
               "defects": [repr(d) for d in msg.defects]}
        try:
            rec["subject"] = str(msg["Subject"]) if msg["Subject"] is not None else None
            rec["from"] = str(msg["From"]) if msg["From"] is not None else None
            rec["to"] = str(msg["To"]) if msg["To"] is not None else None
            rec["message_id"] = str(msg["Message-ID"]) if msg["Message-ID"] else None
            for kind in ("plain", "html"):
                part = msg.get_body(preferencelist=(kind,))
                if part is not None:
                    # the message's CRLF line ends read as \n
                    rec["text" if kind == "plain" else "html"] = \
                        part.get_content().replace("\r\n", "\n")
        except Exception as e:  # a header or part the email package cannot decode
            rec["defects"].append(f"parse: {e!r}")
        with self.state.lock:
            rec["seq"] = self.state.next_seq()
            self.state.mails.append(rec)
        log(f"smtp: mail from {rec['mail_from']} to {','.join(rec['rcpt_tos'])}: "
            f"{rec['subject']!r}")


class SmtpHandler:
    """aiosmtpd's handler: every message goes to the records."""

    def __init__(self, peers):
        self.peers = peers

    async def handle_DATA(self, server, session, envelope):
        self.peers.mail(envelope)
        return "250 Message accepted"


# ---- HTTP plumbing ----

def make_handler(peers, kind):
    """A request handler class for one listener: kind is push, webhook or control."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = f"chat-test-peers-{kind}"

        def log_message(self, fmt, *args):  # each handler logs what it did itself
            pass

        def body(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                data = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return data
                    data += self.rfile.read(size)
                    self.rfile.readline()
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n > 0 else b""

        def answer(self, status, obj=None, extra=None):
            data = b"" if obj is None else json.dumps(obj).encode("utf-8")
            self.send_response(status)
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            if obj is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if data and self.command != "HEAD":
                self.wfile.write(data)

        def json_body(self):
            raw = self.body()
            if not raw:
                return {}
            obj = json.loads(raw.decode("utf-8"))
            if not isinstance(obj, dict):
                raise ValueError("the body is not a JSON object")
            return obj

        def route(self, method):
            url = urllib.parse.urlsplit(self.path)
            path = [urllib.parse.unquote(p) for p in url.path.split("/")[1:]]
            query = dict(urllib.parse.parse_qsl(url.query))
            try:
                if kind == "push":
                    if method == "POST" and len(path) == 2 and path[0] == "push":
                        status, extra = peers.push(path[1], self.headers, self.body())
                        return self.answer(status, None, extra)
                elif kind == "webhook":
                    if method == "POST" and len(path) == 2 and path[0] == "hooks":
                        status, extra = peers.hook(path[1], self.headers, self.body())
                        return self.answer(status, None, extra)
                else:
                    return self.control(method, path, query)
                self.body()
                return self.answer(404, {"error": f"no {method} {url.path} here"})
            except ValueError as e:
                return self.answer(400, {"error": str(e)})

        def control(self, method, path, query):
            st = peers.state
            if method == "GET" and path == ["healthz"]:
                return self.answer(200, {"ok": True, "push": peers.push_origin,
                                         "webhook": peers.webhook_url, "smtp": peers.smtp_url,
                                         "control": peers.control_url})
            if len(path) < 2 or path[0] != "control":
                return self.answer(404, {"error": "no such resource"})
            what, rest = path[1], path[2:]
            if what == "subscriptions":
                if method == "POST" and not rest:
                    return self.answer(201, peers.new_subscription(self.json_body()))
                with st.lock:
                    sub = st.subs.get(rest[0]) if rest else None
                if sub is None:
                    return self.answer(404, {"error": "no such subscription"})
                if method == "DELETE" and len(rest) == 1:
                    with st.lock:
                        sub["gone"] = True
                    log(f"control: subscription {rest[0]} deleted")
                    return self.answer(204)
                if method == "POST" and rest[1:] == ["fail"]:
                    fault = Fault(self.json_body())
                    with st.lock:
                        sub["fault"] = fault if fault.count != 0 else None
                    log(f"control: subscription {rest[0]}: fail {fault.status} x{fault.count}")
                    return self.answer(204)
            elif what == "hooks" and rest and method == "PUT":
                peers.set_hook(rest[0], self.json_body())
                return self.answer(204)
            elif what in ("pushes", "hooks", "mails") and not rest:
                key = {"pushes": "sub", "hooks": "name", "mails": "to"}[what]

                def match(r):
                    want = query.get(key)
                    if want is not None:
                        if what == "mails":
                            if want.lower() not in (t.lower() for t in r["rcpt_tos"]):
                                return False
                        elif r[key] != want:
                            return False
                    return "outcome" not in query or r.get("outcome") == query["outcome"]

                with st.lock:
                    records = getattr(st, what)
                    if method == "GET":
                        return self.answer(200, [dict(r) for r in records if match(r)])
                    if method == "DELETE":
                        records[:] = [r for r in records if not match(r)]
                        return self.answer(204)
            return self.answer(404 if method in ("GET", "POST", "PUT", "DELETE") else 405,
                               {"error": f"no {method} {'/'.join(path)}"})

        def do_GET(self):
            self.route("GET")

        def do_POST(self):
            self.route("POST")

        def do_PUT(self):
            self.route("PUT")

        def do_DELETE(self):
            self.route("DELETE")

    return Handler


def http_server(peers, kind, host, port):
    srv = ThreadingHTTPServer((host, port), make_handler(peers, kind))
    srv.daemon_threads = True
    return srv


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    for p in ("push", "webhook", "smtp", "control"):
        ap.add_argument(f"--{p}-port", type=int, required=True, help="0: a free port")
    args = ap.parse_args()

    peers = Peers(args.host)
    servers = {kind: http_server(peers, kind, args.host, getattr(args, f"{kind}_port"))
               for kind in ("push", "webhook", "control")}
    loop = asyncio.new_event_loop()
    smtp = loop.run_until_complete(loop.create_server(
        lambda: SMTP(SmtpHandler(peers), hostname="peers.localhost", loop=loop),
        host=args.host, port=args.smtp_port))
    ports = {k: s.server_address[1] for k, s in servers.items()}
    ports["smtp"] = smtp.sockets[0].getsockname()[1]
    peers.push_origin = f"http://{args.host}:{ports['push']}"
    peers.webhook_url = f"http://{args.host}:{ports['webhook']}"
    peers.smtp_url = f"smtp://{args.host}:{ports['smtp']}"
    peers.control_url = f"http://{args.host}:{ports['control']}"

    threads = [threading.Thread(target=s.serve_forever, name=k, daemon=True)
               for k, s in servers.items()]
    threads.append(threading.Thread(target=loop.run_forever, name="smtp", daemon=True))
    for t in threads:
        t.start()

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(json.dumps({"ready": True, "push": peers.push_origin, "webhook": peers.webhook_url,
                      "smtp": peers.smtp_url, "control": peers.control_url}), flush=True)
    while not stop.wait(1):
        pass
    log("stopping")
    for s in servers.values():
        s.shutdown()
        s.server_close()
    loop.call_soon_threadsafe(smtp.close)
    loop.call_soon_threadsafe(loop.stop)


if __name__ == "__main__":
    main()
