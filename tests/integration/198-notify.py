"""End to end: notifications on the running stack with its real third-party peers (scripts/up
--test-peers): a Web Push service that checks VAPID and decrypts with http_ece, a webhook
receiver that verifies with the reference Standard Webhooks library, an SMTP sink (aiosmtpd).

- an offline member gets exactly one push for 5 quick messages (the newest text, count 5,
  Urgency high for a dm, a Topic), decrypted by the push service;
- a member online in the room gets none; a user online on another device (not in the room)
  gets none; a member who reads before the collapse window ends gets none;
- a sent push is withdrawn (a close push with the same Topic) when the user reads the room
  elsewhere, and when moderation removes the message;
- a webhook endpoint that fails 3 times then succeeds gets the event once delivered, every
  attempt with the same webhook-id; an endpoint answering 410 is disabled;
- the 410's event is a dead letter on chat.notify.dlq (chat-admin dlq) with the reason;
- notify killed with -9 in the middle of a stream: every message's webhook delivered, a
  duplicate only ever with the same webhook-id;
- notify's metrics (docs/metrics.md) count those attempts: every channel x outcome series,
  pushes and webhooks ok, webhook retries and the 410 as gone, the dead letter, one timed
  request per attempt, and the per-tenant counts adding up to the total;
- an offline member with an address gets one email digest (text and HTML) after the tenant's
  delay; one who read meanwhile gets none.
The test restarts notify with a short webhook retry schedule and an 8 s push window (scripts/up
passes them through).
"""
import contextlib
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from api_client import api_base, call_json, stack_load, Tenant, unique  # noqa: E402
from checks import check, finish, scrape  # noqa: E402
from peers_client import Peers  # noqa: E402
from ws_client import Client  # noqa: E402

stack = stack_load()
API = api_base(stack)
URLS = stack["CHAT_GATEWAY_URLS"].split(",")
WINDOW = 8.0  # CHAT_NOTIFY_PUSH_WINDOW for the test: room for erin's read on a loaded machine
SCHEDULE = "1s,1s,1s,2s,2s,2s,2s"


def call(tenant, method, path, body=None, query=None):
    """(status, json) of an api call with a fresh server token."""
    return call_json(API, tenant, method, path, body, query)


def kill_notify():
    with open(os.path.join(stack["CHAT_STACK_PIDS"], "notify.pid")) as f:
        os.kill(int(f.read().strip()), signal.SIGKILL)
    time.sleep(0.5)


def restart_notify(kill=True, **env):
    """kill -9 of notify (unless it is down already), then scripts/up starts it again with env
    added."""
    if kill:
        kill_notify()
    up = [os.path.join(stack["CHAT_SOURCE_DIR"], "scripts", "up"), "--state-dir",
          stack["CHAT_STACK_DIR"], "--build-dir", stack["CHAT_BUILD_DIR"], "--no-build"]
    r = subprocess.run(up, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, **env))
    check(r.returncode == 0, f"scripts/up restarts notify ({r.returncode}) {r.stderr[-300:]}")


def subscribe(sockets, tenant, user, peers):
    """A fake browser subscription of user's, stored through push_subscribe; user then goes
    offline. Returns the subscription (id, endpoint, keys)."""
    sub = peers.new_subscription()
    c = Client(sockets, tenant, user, URLS[1])
    rid = c.rid()
    c.send({"type": "push_subscribe", "rid": rid, "endpoint": sub["endpoint"],
            "keys": sub["keys"]})
    ok = c.wait(lambda f: f.get("rid") == rid, f"{user}'s push_subscribe")
    check(ok is not None and ok.get("type") == "ok", f"{user} subscribed: {ok}")
    c.ws.close()
    return sub


def delivered(peers, sub, kind=None):
    out = [p for p in peers.pushes(sub["id"]) if p.get("outcome") == "delivered"]
    if kind is not None:
        out = [p for p in out if (p.get("payload") or {}).get("type") == kind]
    return out


def dead_letters(tenant):
    """tenant's notify_failed events on chat.notify.dlq (chat-admin dlq)."""
    admin = os.path.join(stack["CHAT_BUILD_DIR"], "tools", "chat-admin", "chat-admin")
    r = subprocess.run([admin, "dlq", "--timeout", "2"], capture_output=True, text=True,
                       timeout=120, env=dict(os.environ, **stack, CHAT_LOG_LEVEL="warn"))
    check(r.returncode == 0, f"chat-admin dlq ({r.returncode}) {r.stderr[-200:]}")
    out = []
    for line in r.stdout.splitlines():
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if d.get("tenant") == tenant.id:
            out.append(d)
    return out


def notify_metrics():
    """notify's /metrics as {series: value} (series as rendered: name{labels})."""
    return scrape(stack["CHAT_OPS_NOTIFY"])


def metrics_test():
    """The attempts so far (notify restarted at the start of the test) in notify's metrics."""
    m = notify_metrics()

    def sends(channel, outcome):
        return m.get(f'chat_notify_sends_total{{channel="{channel}",outcome="{outcome}"}}')

    series = [(c, o) for c in ("push", "email", "webhook") for o in ("ok", "retry", "gone",
                                                                      "failed")]
    check(all(sends(c, o) is not None for c, o in series),
          f"every chat_notify_sends_total{{channel,outcome}} series is there: "
          f"{[s for s in series if sends(*s) is None]}")
    check((sends("push", "ok") or 0) >= 4, f"pushes and close pushes ok ({sends('push', 'ok')})")
    check((sends("webhook", "retry") or 0) >= 3 and (sends("webhook", "ok") or 0) >= 1
          and (sends("webhook", "gone") or 0) >= 1,
          f"webhooks: 3 retries, then ok; the 410 gone ({sends('webhook', 'retry')}, "
          f"{sends('webhook', 'ok')}, {sends('webhook', 'gone')})")
    check(m.get("chat_notify_dlq_total", 0) >= 1,
          f"the dead letter is counted ({m.get('chat_notify_dlq_total')})")
    for channel in ("push", "webhook"):
        attempts = sum(sends(channel, o) or 0 for o in ("ok", "retry", "gone", "failed"))
        timed = m.get(f'chat_notify_send_seconds_count{{channel="{channel}"}}', 0)
        check(timed >= attempts > 0, f"{channel}: every request timed ({timed} >= {attempts})")

    def tenant_sum():
        now = notify_metrics()
        total = sum(v for k, v in now.items() if k.startswith("chat_notify_sends_total{"))
        by_tenant = sum(v for k, v in now.items()
                        if k.startswith("chat_notify_tenant_sends_total{"))
        return (total, by_tenant) if total == by_tenant else None

    got = wait_for(tenant_sum, 5)
    check(got is not None, f"the per-tenant attempts add up to all attempts ({got})")


def wait_for(pred, timeout, step=0.3):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def main():
    peers = Peers.from_stack(stack)
    restart_notify(CHAT_NOTIFY_WEBHOOK_SCHEDULE=SCHEDULE, CHAT_NOTIFY_PUSH_WINDOW=f"{WINDOW:g}s")
    T = Tenant(stack)
    # Email digests: the tenant's sender and the shortest delay (60 s); started first, checked
    # last, while the rest runs.
    st, _ = call(T, "PATCH", "/settings", {"email": {"from": "chat@example.com",
                                                      "digest_delay_s": 60}})
    check(st == 200, f"email settings ({st})")
    # Addresses unique to this run: the sink keeps the mails of earlier runs on the stack.
    addr = {u: f"{u}.{T.id}@example.com" for u in ("gina", "hank")}
    for u in ("gina", "hank"):
        st, body = call(T, "PATCH", f"/users/{u}/notifications", {"email": addr[u]})
        check(st == 200 and body.get("email") == addr[u], f"{u}'s address ({st})")
    # Moderation: a watched word is flagged (kept), so its push goes out; the review then
    # removes it.
    st, _ = call(T, "PUT", "/moderation/rules",
                 {"blocklists": [{"name": "watch", "words": ["sketchy"], "action": "flag"}]})
    check(st == 200, f"rules ({st})")
    # Webhooks: one that fails 3 times then succeeds, one that is gone (410).
    hooks = {}
    for name, fail in (("flaky", {"status": 500, "count": 3}), ("gone", {"status": 410,
                                                                          "count": -1})):
        st, body = call(T, "POST", "/webhooks", {"url": peers.hook_url(unique(name)),
                                                 "events": ["message.updated"]})
        check(st == 201 and body.get("secret", "").startswith("whsec_"), f"webhook {name} ({st})")
        hook = body["url"].rsplit("/", 1)[1]
        peers.set_hook(hook, [body["secret"]], fail=fail)
        hooks[name] = (body["id"], hook)

    with contextlib.ExitStack() as sockets:
        subs = {u: subscribe(sockets, T, u, peers) for u in ("bob", "carol", "dave", "erin",
                                                              "frank")}
        alice = Client(sockets, T, "alice", URLS[0])
        dm = {u: "dm:" + ":".join(sorted(["alice", u])) for u in subs.keys() | {"gina", "hank"}}
        for room in dm.values():
            alice.join(room)
        # carol is in the room, dave is connected elsewhere (no room joined).
        carol = Client(sockets, T, "carol", URLS[1])
        carol.join(dm["carol"])
        Client(sockets, T, "dave", URLS[0])
        time.sleep(1.0)  # the notify config of a new tenant, and the online hashes

        acks = {"gina": alice.post(dm["gina"], "are you coming tonight?"),
                "hank": alice.post(dm["hank"], "lunch?")}
        digest_sent = time.monotonic()
        bob_acks = [alice.post(dm["bob"], f"message {i} to bob") for i in range(5)]
        check(all(a and a.get("type") == "ack" for a in bob_acks), "5 messages to bob stored")
        alice.post(dm["carol"], "hi carol, you are here")
        alice.post(dm["dave"], "hi dave, on another tab")
        erin_acks = [alice.post(dm["erin"], f"erin {i}") for i in range(2)]
        frank_ack = alice.post(dm["frank"], "a sketchy deal")
        # erin reads on another device within the window, and leaves again.
        erin = Client(sockets, T, "erin", URLS[0])
        erin.join(dm["erin"])
        erin.send({"type": "read", "room": dm["erin"], "seq": erin_acks[-1]["seq"]})
        erin.wait(lambda f: f.get("type") == "read" and f.get("user") == "erin", "erin's read")
        erin.ws.close()
        # hank reads too (his digest must not go out).
        hank = Client(sockets, T, "hank", URLS[1])
        hank.join(dm["hank"])
        hank.send({"type": "read", "room": dm["hank"], "seq": acks["hank"]["seq"]})
        hank.wait(lambda f: f.get("type") == "read" and f.get("user") == "hank", "hank's read")
        hank.ws.close()

        # ---- pushes ----
        got = wait_for(lambda: delivered(peers, subs["bob"], "message"), WINDOW + 10)
        time.sleep(2.0)  # anything more would come now
        got = delivered(peers, subs["bob"], "message")
        check(len(got) == 1, f"bob (offline) gets exactly one push for 5 messages ({len(got)})")
        if got:
            p = got[0]
            pl = p["payload"]
            check(pl.get("count") == 5 and pl.get("text") == "message 4 to bob"
                  and pl.get("from") == "alice" and pl.get("room") == dm["bob"],
                  f"the push shows the newest text and the count: {pl}")
            check(p.get("vapid_ok") is True and p["headers"].get("urgency") == "high"
                  and p["headers"].get("topic") and int(p["headers"].get("ttl") or 0) > 0,
                  f"VAPID verified, Urgency high (dm), a Topic and a TTL: {p['headers']}")
        check(not delivered(peers, subs["carol"]), "carol (online in the room) gets no push")
        check(not delivered(peers, subs["dave"]), "dave (online on another device) gets no push")
        check(not delivered(peers, subs["erin"]), "erin (read before the window ended) gets no "
                                                  "push")
        frank_push = wait_for(lambda: delivered(peers, subs["frank"], "message"), 5)
        check(len(frank_push) == 1, f"frank gets his push ({len(frank_push)})")

        # ---- recalls ----
        bob = Client(sockets, T, "bob", URLS[0])
        bob.join(dm["bob"])
        bob.send({"type": "read", "room": dm["bob"], "seq": bob_acks[-1]["seq"]})
        bob.ws.close()
        close = wait_for(lambda: delivered(peers, subs["bob"], "close"), 10)
        check(len(close) == 1 and got and close[0]["headers"].get("topic") ==
              got[0]["headers"].get("topic"),
              f"bob read elsewhere: his notification is withdrawn with the same Topic ({close})")
        flag = wait_for(lambda: next((f for f in (call(T, "GET", "/moderation/flags",
                                                       query={"limit": 100})[1] or {})
                                      .get("flags", []) if f.get("message") == frank_ack["id"]),
                                     None), 10)
        check(flag is not None, f"frank's message flagged: {flag}")
        if flag:
            st, _ = call(T, "POST", f"/moderation/flags/{flag['id']}", {"action": "remove"})
            check(st == 200, f"review removes it ({st})")
        close = wait_for(lambda: delivered(peers, subs["frank"], "close"), 10)
        check(len(close) == 1, f"the removed message's notification is withdrawn ({close})")

        # ---- webhooks ----
        rid = alice.rid()
        alice.send({"type": "edit", "room": dm["bob"], "id": bob_acks[0]["id"], "text": "edited",
                    "rid": rid})
        alice.wait(lambda f: f.get("rid") == rid, "edit ack")
        flaky = wait_for(lambda: peers.hooks(hooks["flaky"][1], outcome="delivered"), 20)
        tries = peers.hooks(hooks["flaky"][1])
        check(len(flaky) == 1 and len(tries) == 4
              and len({t["webhook_id"] for t in tries}) == 1,
              f"failing 3 times then ok: delivered once, 4 attempts, one webhook-id "
              f"({[(t['outcome'], t['webhook_id']) for t in tries]})")
        if flaky:
            body = flaky[0]["body"]
            check(body.get("type") == "message.updated" and body.get("tenant") == T.id
                  and body["data"].get("id") == bob_acks[0]["id"],
                  f"the event's body: {body}")
        gone = wait_for(lambda: (lambda r: r[1] if r[0] == 200 and not r[1].get("enabled")
                                 else None)(call(T, "GET", f"/webhooks/{hooks['gone'][0]}")), 10)
        check(gone is not None and "410" in (gone.get("disabled_reason") or ""),
              f"the endpoint answering 410 is disabled: {gone}")
        letters = dead_letters(T)
        check(any(d.get("channel") == "webhook" and "410" in d.get("error", "")
                  and d.get("payload", {}).get("type") == "message.updated" for d in letters),
              f"its event is a dead letter on chat.notify.dlq with the reason: {letters[:1]}")
        metrics_test()

    kill_test(peers)
    digest_test(peers, addr, digest_sent)


def digest_test(peers, addr, digest_sent):
    """The digests, 60 s (the shortest delay) after their first message."""
    # ---- digests ----
    left = 60 + 20 - (time.monotonic() - digest_sent)
    mails = wait_for(lambda: peers.mails(addr["gina"]), max(left, 1), step=1)
    check(len(mails) == 1, f"gina gets one digest ({len(mails)})")
    if mails:
        m = mails[0]
        check("are you coming tonight?" in (m.get("text") or "")
              and "are you coming tonight?" in (m.get("html") or ""),
              f"text and HTML parts carry the message: {m.get('subject')}")
    check(not peers.mails(addr["hank"]), "hank read meanwhile: no digest")
    check(not peers.push_refusals(), f"the push service refused nothing: "
                                     f"{peers.push_refusals()[:2]}")


def kill_test(peers):
    """kill -9 of notify while a stream of messages flows to a webhook: afterwards each
    message has been delivered, and any repeat carries the same webhook-id."""
    T = Tenant(stack)
    name = unique("stream")
    st, body = call(T, "POST", "/webhooks", {"url": peers.hook_url(name),
                                             "events": ["message.new"]})
    check(st == 201, f"stream webhook ({st})")
    peers.set_hook(name, [body["secret"]])
    time.sleep(1.5)
    room = unique("kill")
    total = 40
    seqs = []
    with contextlib.ExitStack() as sockets:
        alice = Client(sockets, T, "alice", URLS[0])
        alice.join(room)
        for i in range(total):
            a = alice.post(room, f"stream {i}")
            if a and a.get("type") == "ack":
                seqs.append(a["seq"])
            if i == total // 2:
                kill_notify()
            time.sleep(0.02)
    restart_notify(kill=False, CHAT_NOTIFY_WEBHOOK_SCHEDULE=SCHEDULE,
                   CHAT_NOTIFY_PUSH_WINDOW=f"{WINDOW:g}s")
    check(len(seqs) == total, f"the stream stored ({len(seqs)})")

    def by_seq():
        out = {}
        for h in peers.hooks(name, outcome="delivered"):
            out.setdefault(h["body"]["data"]["seq"], set()).add(h["webhook_id"])
        return out

    got = wait_for(lambda: (lambda b: b if set(b) >= set(seqs) else None)(by_seq()), 30)
    got = by_seq()
    missing = sorted(set(seqs) - set(got))
    check(not missing, f"after kill -9 every message's webhook is delivered (missing {missing})")
    multi = {s: ids for s, ids in got.items() if len(ids) > 1}
    check(not multi, f"a repeat only with the same webhook-id ({multi})")


if __name__ == "__main__":
    main()
    finish()
