"""The notify tests' third-party peers (tests/support/peers.py) take what a correct sender sends
and refuse, recording it, what a wrong one sends; otherwise a notify test passing against them
would prove nothing. The senders are written here, from the RFCs and the reference libraries,
not the platform's code: Web Push encrypted with http_ece and a VAPID JWT signed with
cryptography, webhooks signed with standardwebhooks, mail sent with smtplib. On an instance of
its own (free ports): a push delivered with its headers and payload, a newer one of the same
Topic replacing it, refusals of a bad signature, a wrong aud, an expired or far exp, no sub, a
key other than the subscription's, no TTL, another content coding, another subscription's
keys, a changed byte, a body over 4096 bytes and a payload that is not JSON; programmed 429s
with Retry-After, 410 forever, an unsubscribed browser. Webhooks verified with one secret and
with both of a rotation, refused with another secret, a changed body, an old timestamp or no
headers; 3 x 500 then delivered, 410 forever. A multipart mail parsed into its subject, text
and html; no STARTTLS offered. Then the stack's own peers (scripts/up --test-peers) answer and
deliver a push."""

import base64
import datetime
import email.message
import http.client
import json
import os
import smtplib
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

import http_ece  # noqa: E402
import standardwebhooks  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature  # noqa: E402

from peers_client import Peers  # noqa: E402

passed = 0
failures = []


def check(cond, what):
    global passed
    print(("ok   - " if cond else "FAIL - ") + what, flush=True)
    if cond:
        passed += 1
    else:
        failures.append(what)
    return cond


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode("ascii")


def unb64u(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def raw_public(key):
    return key.public_key().public_bytes(serialization.Encoding.X962,
                                         serialization.PublicFormat.UncompressedPoint)


# ---- a Web Push sender (RFC 8291, 8292) ----

class Vapid:
    def __init__(self):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.public = b64u(raw_public(self.key))

    def authorization(self, aud, exp=None, sub="mailto:ops@example.com", signer=None,
                      alg="ES256"):
        """vapid t=<JWT>, k=<this key>; the JWT signed by signer (default: this key)."""
        claims = {"aud": aud, "exp": int(time.time()) + 12 * 3600 if exp is None else exp}
        if sub is not None:
            claims["sub"] = sub
        signing_input = (b64u(json.dumps({"typ": "JWT", "alg": alg}).encode()) + "."
                         + b64u(json.dumps(claims).encode()))
        der = (signer or self.key).sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return f"vapid t={signing_input}.{b64u(sig)}, k={self.public}"


def encrypt(sub, payload, keys=None):
    """payload (bytes) encrypted for the subscription's keys (or other keys) with aes128gcm."""
    keys = keys or sub["keys"]
    return http_ece.encrypt(payload, private_key=ec.generate_private_key(ec.SECP256R1()),
                            dh=unb64u(keys["p256dh"]), auth_secret=unb64u(keys["auth"]),
                            version="aes128gcm")


def post(url, body, headers):
    """POST url; returns (status, headers dict)."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        conn.request("POST", u.path, body=body, headers=headers)
        r = conn.getresponse()
        r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}
    finally:
        conn.close()


def origin(url):
    u = urllib.parse.urlsplit(url)
    return f"{u.scheme}://{u.netloc}"


def push(sub, payload=None, vapid=None, auth=None, body=None, drop=(), **headers):
    """Sends a push to sub as a correct sender would, except for what the arguments change."""
    if body is None:
        body = encrypt(sub, json.dumps(payload if payload is not None else {"t": "hi"}).encode())
    h = {"TTL": "86400", "Urgency": "normal", "Content-Encoding": "aes128gcm",
         "Content-Type": "application/octet-stream",
         "Authorization": auth or (vapid or VAPID).authorization(origin(sub["endpoint"]))}
    h.update({k.replace("_", "-"): v for k, v in headers.items()})
    for k in drop:
        h.pop(k, None)
    return post(sub["endpoint"], body, h)


VAPID = Vapid()


def check_pushes(peers):
    sub = peers.new_subscription()
    check(sub["endpoint"] == f"{peers.push_url}/push/{sub['id']}"
          and len(unb64u(sub["keys"]["p256dh"])) == 65 and len(unb64u(sub["keys"]["auth"])) == 16
          and "=" not in sub["keys"]["p256dh"] + sub["keys"]["auth"],
          f"a subscription as a browser gives it: {sub}")
    topic = b64u(os.urandom(24))
    note = {"type": "message", "room": "r1", "text": "hello ✓", "count": 2}
    st, hd = push(sub, note, Topic=topic, Urgency="high")
    check(st == 201 and hd.get("location", "").startswith(peers.push_url),
          f"a correct push: 201 with a Location ({st} {hd.get('location')})")
    got = peers.wait_pushes(sub["id"], 1, timeout=5)
    r = got[0] if got else {}
    check(len(got) == 1 and r.get("payload") == note and r.get("vapid_ok") is True
          and r["vapid"]["aud"] == peers.push_url and r["vapid"]["k"] == VAPID.public
          and r["vapid"]["sub"] == "mailto:ops@example.com" and r["headers"]["ttl"] == 86400
          and r["headers"]["urgency"] == "high" and r["headers"]["topic"] == topic
          and r["replaced"] is False,
          f"recorded: decrypted payload, VAPID claims, TTL, Urgency, Topic ({r})")

    st, _ = push(sub, {"type": "message", "count": 3}, Topic=topic)
    st2, _ = push(sub, {"type": "other"}, Topic=b64u(os.urandom(24)))
    got = peers.pushes(sub["id"])
    check(st == 201 and st2 == 201 and len(got) == 3 and got[0]["replaced"] is True
          and got[0]["replaced_by"] == got[1]["seq"] and got[1]["replaced"] is False
          and got[2]["replaced"] is False,
          "a newer push of the same Topic replaces the older (both kept); another Topic does not")

    other = peers.new_subscription()
    evil = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    aud = peers.push_url
    refusals = [
        ("a JWT signed by another key than k", 401,
         dict(auth=VAPID.authorization(aud, signer=evil))),
        ("a wrong aud", 401, dict(auth=VAPID.authorization("http://127.0.0.1:1"))),
        ("an aud with a path", 401, dict(auth=VAPID.authorization(sub["endpoint"]))),
        ("an expired exp", 401, dict(auth=VAPID.authorization(aud, exp=now - 5))),
        ("an exp over 24 h ahead", 401, dict(auth=VAPID.authorization(aud, exp=now + 25 * 3600))),
        ("no sub claim", 401, dict(auth=VAPID.authorization(aud, sub=None))),
        ("alg other than ES256", 401, dict(auth=VAPID.authorization(aud, alg="ES384"))),
        ("another Authorization scheme", 401, dict(auth="WebPush " + "x" * 20)),
        ("no Authorization", 401, dict(drop=("Authorization",))),
        ("no TTL", 400, dict(drop=("TTL",))),
        ("a bad Urgency", 400, dict(Urgency="urgent")),
        ("a Topic of 33 characters", 400, dict(Topic="a" * 33)),
        ("Content-Encoding aesgcm", 400, {"Content_Encoding": "aesgcm"}),
        ("a body encrypted for another subscription", 400,
         dict(body=encrypt(sub, b'{"t":1}', keys=other["keys"]))),
        ("a body encrypted with another auth secret", 400,
         dict(body=encrypt(sub, b'{"t":1}', keys={"p256dh": sub["keys"]["p256dh"],
                                                  "auth": other["keys"]["auth"]}))),
        ("a body with a changed byte", 400,
         dict(body=(lambda b: b[:-5] + bytes([b[-5] ^ 1]) + b[-4:])(encrypt(sub, b'{"t":1}')))),
        ("a body over 4096 bytes", 413,
         dict(body=http_ece.encrypt(b'"' + b"x" * 4100 + b'"',
                                    private_key=ec.generate_private_key(ec.SECP256R1()),
                                    dh=unb64u(sub["keys"]["p256dh"]),
                                    auth_secret=unb64u(sub["keys"]["auth"]), rs=8192))),
        ("a payload that is not JSON", 400, dict(body=encrypt(sub, b"not json"))),
    ]
    for what, want, kw in refusals:
        st, _ = push(sub, **kw)
        check(st == want, f"push with {what}: {want} (got {st})")
    bad = peers.push_refusals(sub["id"])
    check(len(bad) == len(refusals) and all(b["error"] for b in bad)
          and len(peers.pushes(sub["id"])) == 3,
          f"each refusal recorded with its reason, none delivered ({len(bad)} of {len(refusals)};"
          f" {[b['error'] for b in bad]})")
    sig = [b for b in bad if "signature does not verify" in (b["error"] or "")]
    check(len(sig) == 1 and sig[0]["vapid_ok"] is False, "the bad signature is named as such")

    st, _ = post(f"{peers.push_url}/push/nosuchsub", encrypt(sub, b"{}"),
                 {"TTL": "60", "Content-Encoding": "aes128gcm",
                  "Authorization": VAPID.authorization(aud)})
    check(st == 404, f"a push to an unknown subscription: 404 (got {st})")

    mine = Vapid()
    restricted = peers.new_subscription(application_server_key=mine.public)
    st_other, _ = push(restricted, vapid=VAPID)
    st_mine, _ = push(restricted, vapid=mine)
    check(st_other == 403 and st_mine == 201,
          f"a subscription made with an application server key: 403 for another VAPID key, "
          f"201 for its own (got {st_other}, {st_mine})")

    flaky = peers.new_subscription()
    peers.set_fail(flaky["id"], 429, count=2, retry_after=7)
    answers = [push(flaky) for _ in range(3)]
    check([a[0] for a in answers] == [429, 429, 201]
          and [a[1].get("retry-after") for a in answers[:2]] == ["7", "7"],
          f"2 programmed 429s with Retry-After 7, then 201 ({[a[0] for a in answers]})")
    attempts = peers.push_attempts(flaky["id"])
    check([a["outcome"] for a in attempts] == ["fault", "fault", "delivered"]
          and len(peers.pushes(flaky["id"])) == 1,
          "the faults are recorded as attempts, only the last as delivered")
    gone = peers.new_subscription()
    peers.set_fail(gone["id"], 410, count=-1)
    check([push(gone)[0] for _ in range(3)] == [410, 410, 410], "410 forever")
    unsubscribed = peers.new_subscription()
    check(push(unsubscribed)[0] == 201, "a push before the browser unsubscribes: 201")
    peers.drop_subscription(unsubscribed["id"])
    st, _ = push(unsubscribed)
    check(st == 410 and peers.push_attempts(unsubscribed["id"])[-1]["outcome"] == "gone",
          f"after it unsubscribed: 410, recorded as gone (got {st})")
    peers.clear_pushes(sub["id"])
    check(peers.push_attempts(sub["id"]) == [] and len(peers.pushes(flaky["id"])) == 1,
          "clearing one subscription's records leaves the others'")


# ---- a Standard Webhooks sender ----

def new_secret():
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def send_hook(peers, name, body, secrets, msg_id=None, ts=None, drop=()):
    msg_id = msg_id or "msg_" + os.urandom(16).hex()
    ts = ts if ts is not None else datetime.datetime.now(datetime.timezone.utc)
    sigs = [standardwebhooks.Webhook(s).sign(msg_id, ts, body) for s in secrets]
    h = {"Content-Type": "application/json", "webhook-id": msg_id,
         "webhook-timestamp": str(int(ts.timestamp())), "webhook-signature": " ".join(sigs)}
    for k in drop:
        h.pop(k, None)
    return post(peers.hook_url(name), body.encode(), h)[0], msg_id


def check_hooks(peers):
    s1, s2, s3 = new_secret(), new_secret(), new_secret()
    peers.set_hook("one", [s1])
    body = json.dumps({"type": "message.new", "tenant": "t", "data": {"text": "hé"}, "ts": 1})
    st, mid = send_hook(peers, "one", body, [s1])
    got = peers.wait_hooks("one", 1, timeout=5)
    r = got[0] if got else {}
    check(st == 204 and len(got) == 1 and r["verified"] is True and r["verified_with"] == [0]
          and r["webhook_id"] == mid and r["body"] == json.loads(body)
          and r["status_answered"] == 204,
          f"a signed webhook: 204, verified, recorded with its id and body ({st}, {r})")

    peers.set_hook("rot", [s1, s2])
    st_both, _ = send_hook(peers, "rot", body, [s1, s2])
    st_new, _ = send_hook(peers, "rot", body, [s2])
    got = peers.hooks("rot")
    check(st_both == 204 and st_new == 204 and [g["verified_with"] for g in got] == [[0, 1], [1]],
          f"rotation: signatures of both secrets both verify, the new one alone too "
          f"({[g['verified_with'] for g in got]})")

    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=10)
    refusals = [
        ("a signature of another secret", 401, dict(secrets=[s3])),
        ("a changed body", 401, dict(body=body.replace("message.new", "message.old"), sign_body=body)),
        ("a timestamp 10 minutes old", 401, dict(ts=old)),
        ("no webhook-signature", 401, dict(drop=("webhook-signature",))),
        ("no webhook-id", 401, dict(drop=("webhook-id",))),
    ]
    for what, want, kw in refusals:
        if "sign_body" in kw:
            msg_id = "msg_" + os.urandom(16).hex()
            ts = datetime.datetime.now(datetime.timezone.utc)
            sig = standardwebhooks.Webhook(s1).sign(msg_id, ts, kw["sign_body"])
            st = post(peers.hook_url("one"), kw["body"].encode(),
                      {"webhook-id": msg_id, "webhook-timestamp": str(int(ts.timestamp())),
                       "webhook-signature": sig})[0]
        else:
            st, _ = send_hook(peers, "one", body, kw.get("secrets", [s1]), ts=kw.get("ts"),
                              drop=kw.get("drop", ()))
        check(st == want, f"webhook with {what}: {want} (got {st})")
    bad = peers.hooks("one", outcome="refused")
    check(len(bad) == len(refusals) and all(b["verified"] is False and b["error"] for b in bad)
          and len(peers.hooks("one", outcome="delivered")) == 1,
          f"each refused webhook recorded unverified with its reason ({len(bad)})")
    st, _ = send_hook(peers, "nosuchhook", body, [s1])
    check(st == 404, f"a webhook to an unknown name: 404 (got {st})")

    peers.set_hook("flaky", [s1], fail={"status": 500, "count": 3})
    sts = [send_hook(peers, "flaky", body, [s1], msg_id="msg_same")[0] for _ in range(4)]
    got = peers.hooks("flaky")
    check(sts == [500, 500, 500, 204] and [g["status_answered"] for g in got] == sts
          and all(g["verified"] for g in got),
          f"3 programmed 500s then 204, each attempt recorded ({sts})")
    peers.set_hook("dead", [s1], fail={"status": 410, "count": -1})
    sts = [send_hook(peers, "dead", body, [s1])[0] for _ in range(3)]
    check(sts == [410, 410, 410], f"410 forever ({sts})")


# ---- mail ----

def check_mail(peers):
    u = urllib.parse.urlsplit(peers.smtp_url)
    msg = email.message.EmailMessage()
    msg["From"] = "Chat <noreply@example.com>"
    msg["To"] = "ann@example.com"
    msg["Subject"] = "3 unread messages in #général"
    msg.set_content("Bob: hi <b>\n")
    msg.add_alternative("<p>Bob: hi &lt;b&gt;</p>\n", subtype="html")
    with smtplib.SMTP(u.hostname, u.port, timeout=10) as smtp:
        smtp.ehlo()
        check(not smtp.has_extn("starttls"), "the sink offers no STARTTLS (plain SMTP)")
        refused = smtp.send_message(msg, from_addr="bounce@example.com",
                                    to_addrs=["ann@example.com", "Bcc@Example.com"])
    check(refused == {}, f"the sink takes both recipients ({refused})")
    got = peers.wait_mails("ann@example.com", 1, timeout=5)
    m = got[0] if got else {}
    check(len(got) == 1 and m["mail_from"] == "bounce@example.com"
          and m["rcpt_tos"] == ["ann@example.com", "Bcc@Example.com"]
          and m["subject"] == "3 unread messages in #général"
          and m["content_type"] == "multipart/alternative"
          and m["text"] == "Bob: hi <b>\n" and m["html"] == "<p>Bob: hi &lt;b&gt;</p>\n"
          and m["from"] == "Chat <noreply@example.com>" and "=?utf-8?" in m["raw"].lower(),
          f"the mail parsed: envelope, subject (RFC 2047 decoded), text and html parts ({m})")
    check(len(peers.mails("bcc@example.com")) == 1 and peers.mails("nobody@example.com") == [],
          "mails(to) matches envelope recipients case-insensitively, and only them")
    peers.clear_mails()
    check(peers.mails() == [], "clearing the mails")


def check_stack_peers():
    """The stack's peers, started by scripts/up --test-peers (the ctest fixture does)."""
    if not os.environ.get("CHAT_STACK_ENV"):
        print("# not run through ctest: the stack's peers are not checked", flush=True)
        return
    from api_client import stack_load
    stack = stack_load()
    try:
        peers = Peers.from_stack(stack)
    except Exception as e:
        check(False, f"the stack's peers answer ({e})")
        return
    check(peers.push_url == stack.get("CHAT_PEERS_PUSH_URL")
          and peers.webhook_url == stack.get("CHAT_PEERS_WEBHOOK_URL")
          and peers.smtp_url == stack.get("CHAT_PEERS_SMTP_URL"),
          f"stack.env names the listeners the stack's peers report ({peers.push_url}, "
          f"{peers.webhook_url}, {peers.smtp_url})")
    sub = peers.new_subscription()
    st, _ = push(sub, {"type": "stack-check"})
    got = peers.wait_pushes(sub["id"], 1, timeout=5)
    check(st == 201 and len(got) == 1 and got[0]["payload"] == {"type": "stack-check"},
          f"the stack's push service delivers a push ({st})")
    peers.clear_pushes(sub["id"])


def main():
    with Peers.start() as peers:
        check_pushes(peers)
        check_hooks(peers)
        check_mail(peers)
    check_stack_peers()
    print(f"{passed} passed, {len(failures)} failed", flush=True)
    for f in failures:
        print("  failed: " + f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
