"""A gateway's drain on SIGTERM (README, Operations: "Shutdown"), with a gateway of this test's
own (CHAT_GATEWAY_DRAIN=3s) beside the stack's: 40 clients are connected to it, 8 of them
sending without pause. After SIGTERM:

- /readyz answers 503 "draining" at once (within 200 ms), and a new WebSocket upgrade is refused with HTTP
  503 and Retry-After;
- every client is closed with 1012 (service restart), the closes spread over the window (the
  first and the last at least 1.5 s apart, none after the window and a little slack);
- /metrics during the drain shows chat_gateway_draining 1 and drain closes counted;
- the process exits 0 within the window and a few seconds, and logs the drain's start and end;
- no acknowledged message is lost and none is stored twice: each sender resends its one
  unanswered send (same cid) through a gateway of the stack, as a client reconnecting
  elsewhere does, and the room's history (read through the stack) holds every acknowledged
  message and every resent one exactly once.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import types
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from api_client import stack_load, tenant_create, unique, user_token  # noqa: E402
from checks import check, finish, parse_metrics  # noqa: E402
from own_gateway import OwnGateway  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

stack = stack_load()
BUILD = stack["CHAT_BUILD_DIR"]
GATEWAY_BIN = os.path.join(BUILD, "services", "gateway", "chat-gateway")
STACK_WS = stack["CHAT_GATEWAY_URLS"].split(",")[0]
OWN_INDEX = "12"  # a partition of chat.deliver the stack's gateways and other tests do not use
DRAIN_S = 3.0
CLIENTS = 40
SENDERS = 8
SEND_GAP_S = 0.12  # below the gateway's rate limit (20/s)


def http_get(url):
    """(status, body) of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Conn(threading.Thread):
    """One client of the own gateway: authenticates, joins the room, and then either sends
    without pause (sender) or only reads, until the gateway closes it. Records the close's
    code and time, the cids acknowledged and the one sent but not answered."""

    def __init__(self, url, tenant, user, room, sender, ready):
        super().__init__(daemon=True)
        self.url, self.tenant, self.user, self.room = url, tenant, user, room
        self.sender, self.ready = sender, ready
        self.acked = []
        self.unanswered = None  # (cid, text) of the send in flight at the close
        self.refused = []
        self.close_code = None
        self.closed_at = None
        self.error = None
        self.stop = threading.Event()

    def run(self):
        try:
            with connect(self.url, open_timeout=10) as ws:
                ws.send(json.dumps({"type": "auth", "token": user_token(
                    self.tenant.id, self.tenant.secret, self.user)}))
                self.expect(ws, "welcome")
                ws.send(json.dumps({"type": "join", "room": self.room, "rid": "j"}))
                self.expect(ws, "joined")
                self.ready.release()
                try:
                    if self.sender:
                        self.send_loop(ws)
                    while True:
                        ws.recv(timeout=30)
                except ConnectionClosed as e:
                    self.closed_at = time.monotonic()
                    self.close_code = e.rcvd.code if e.rcvd is not None else 1006
        except Exception as e:  # noqa: BLE001 (reported as a failed check)
            self.error = repr(e)
            self.ready.release()

    def expect(self, ws, kind):
        while True:
            f = json.loads(ws.recv(timeout=15))
            if f.get("type") == kind:
                return f
            if f.get("type") == "error":
                raise RuntimeError(f"{self.user}: {f}")

    def send_loop(self, ws):
        n = 0
        while True:
            n += 1
            cid = f"{self.user}-{n}"
            text = f"m {cid}"
            self.unanswered = (cid, text)
            ws.send(json.dumps({"type": "send", "room": self.room, "cid": cid, "text": text}))
            while True:
                f = json.loads(ws.recv(timeout=15))
                if f.get("cid") == cid and f.get("type") == "ack":
                    self.acked.append(cid)
                    break
                if f.get("cid") == cid and f.get("type") == "error":
                    self.refused.append((cid, f.get("code")))
                    break
            self.unanswered = None
            time.sleep(SEND_GAP_S)


def refused_upgrade(port):
    """The status line and headers the gateway answers a WebSocket upgrade with."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall((f"GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.decode(errors="replace").lower()


def scrape(gw):
    try:
        status, text = http_get(gw.ops_url("/metrics"))
    except OSError:
        return {}
    return parse_metrics(text) if status == 200 else {}


def history_cids(tenant, room):
    """{cid: count} of the room's whole history, read through a gateway of the stack."""
    counts = {}
    with connect(STACK_WS, open_timeout=10, max_size=None) as ws:
        ws.send(json.dumps({"type": "auth", "token": user_token(tenant.id, tenant.secret,
                                                                "reader")}))
        before = None
        while True:
            req = {"type": "history", "room": room, "limit": 100, "rid": "h"}
            if before is not None:
                req["before"] = before
            ws.send(json.dumps(req))
            while True:
                f = json.loads(ws.recv(timeout=15))
                if f.get("type") in ("history", "error") and f.get("rid") == "h":
                    break
            if f["type"] == "error":
                raise RuntimeError(f"history: {f}")
            for m in f["msgs"]:
                if m.get("cid"):
                    counts[m["cid"]] = counts.get(m["cid"], 0) + 1
            if not f["more"] or not f["msgs"]:
                return counts
            before = min(m["seq"] for m in f["msgs"])


def resend(tenant, user, room, cid, text):
    """Sends cid again through a gateway of the stack, as a reconnecting client does; the
    answer's type."""
    with connect(STACK_WS, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "auth", "token": user_token(tenant.id, tenant.secret, user)}))
        ws.send(json.dumps({"type": "send", "room": room, "cid": cid, "text": text}))
        while True:
            f = json.loads(ws.recv(timeout=15))
            if f.get("cid") == cid and f.get("type") in ("ack", "error"):
                return f["type"]


def main():
    tid, secret = tenant_create(stack)
    tenant = types.SimpleNamespace(id=tid, secret=secret)
    room = unique("drain")
    log_path = os.path.join(stack["CHAT_STACK_DIR"], "logs", f"test-109-{os.getpid()}.log")
    gw = OwnGateway(stack, GATEWAY_BIN, OWN_INDEX, log_path,
                    {"CHAT_GATEWAY_DRAIN": f"{DRAIN_S:g}s"})
    try:
        ready = threading.Semaphore(0)
        conns = [Conn(gw.url, tenant, f"u{i}", room, i < SENDERS, ready) for i in range(CLIENTS)]
        for c in conns:
            c.start()
        for _ in conns:
            ready.acquire(timeout=60)
        errors = [c.error for c in conns if c.error]
        check(not errors, f"{CLIENTS} clients connected and joined: {errors[:3]}")
        # The senders get going: each has an ack (within 15 s: a loaded stack's first sends of a
        # new room can take seconds) and sends on for a second more.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not all(c.acked for c in conns[:SENDERS]):
            time.sleep(0.1)
        time.sleep(1.0)
        check(all(c.acked for c in conns[:SENDERS]), "every sender has acks before the stop")

        t0 = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        # The signal reaches the event loop (libuv's signal watcher) within a few ms.
        while True:
            status, body = http_get(gw.ops_url("/readyz"))
            if status == 503 or time.monotonic() - t0 > 0.5:
                break
            time.sleep(0.01)
        took = time.monotonic() - t0
        check(status == 503 and "draining" in body and took < 0.2,
              f"/readyz answers 503 draining right after SIGTERM ({took * 1000:.0f} ms): "
              f"{status} {body.strip()!r}")
        time.sleep(0.3)  # the loop's tick has started the drain
        head = refused_upgrade(gw.port)
        check(head.startswith("http/1.1 503") and "retry-after:" in head,
              f"a new upgrade is refused with 503 and Retry-After: {head[:80]!r}")
        during = scrape(gw)
        check(during.get("chat_gateway_draining") == 1, "/metrics: chat_gateway_draining 1 "
                                                        f"({during.get('chat_gateway_draining')})")
        check(during.get('chat_gateway_connects_total{result="draining"}', 0) >= 1,
              "/metrics: the refused upgrade counted as connects_total{result=\"draining\"}")
        time.sleep(1.0)
        mid = scrape(gw)
        mid_closes = mid.get("chat_gateway_drain_closes_total", 0)
        check(0 < mid_closes < CLIENTS,
              f"/metrics 1.3 s into the drain: some connections closed, not all ({mid_closes:g})")

        try:
            rc = gw.proc.wait(timeout=DRAIN_S + 10)
        except subprocess.TimeoutExpired:
            rc = None
        exited = time.monotonic() - t0
        check(rc == 0, f"the gateway exits 0 after the drain (rc {rc}, {exited:.1f} s)")
        check(exited < DRAIN_S + 8, f"... within the drain and a few seconds ({exited:.1f} s)")
        for c in conns:
            c.join(timeout=10)

        codes = [c.close_code for c in conns]
        check(all(code == 1012 for code in codes),
              f"every client closed with 1012: {sorted(set(map(str, codes)))}")
        times = sorted(c.closed_at - t0 for c in conns if c.closed_at is not None)
        check(len(times) == CLIENTS, f"{len(times)} of {CLIENTS} closes seen")
        if times:
            check(times[-1] - times[0] >= 1.5,
                  f"the closes are spread: first at {times[0]:.2f} s, last at {times[-1]:.2f} s")
            check(times[-1] <= DRAIN_S + 1.5, f"the last close is within the window "
                                              f"({times[-1]:.2f} s)")
            first_half = sum(1 for t in times if t < DRAIN_S / 2)
            check(CLIENTS // 4 <= first_half <= 3 * CLIENTS // 4,
                  f"about half close in the first half of the window ({first_half})")

        lines = gw.log_lines()
        start = [x for x in lines if x.get("msg", "").startswith("draining")]
        check(len(start) == 1 and start[0].get("connections") == CLIENTS and
              start[0].get("window_ms") == int(DRAIN_S * 1000),
              f"the drain's start is logged with connections and window: {start}")
        check(any(x.get("msg") == "drain done" for x in lines), "the drain's end is logged")
        check(not [x for x in lines if x.get("level") == "error"], "no error logged")

        # No acknowledged message lost, none stored twice.
        acked = [cid for c in conns for cid in c.acked]
        resent = []
        for c in conns[:SENDERS]:
            check(not c.refused, f"{c.user}: no send refused ({c.refused[:2]})")
            if c.unanswered is not None:
                answer = resend(tenant, c.user, room, *c.unanswered)
                check(answer == "ack", f"{c.user}: the unanswered send resent elsewhere: {answer}")
                resent.append(c.unanswered[0])
        counts = {}
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            counts = history_cids(tenant, room)
            if all(cid in counts for cid in acked + resent):
                break
            time.sleep(0.5)
        missing = [cid for cid in acked + resent if cid not in counts]
        twice = [cid for cid, n in counts.items() if n != 1]
        check(len(acked) >= SENDERS * 5, f"{len(acked)} messages acknowledged by the gateway")
        check(not missing, f"every acknowledged or resent message is in history: missing "
                           f"{missing[:5]}")
        check(not twice, f"each exactly once: {twice[:5]}")
    finally:
        gw.kill()
    finish()


if __name__ == "__main__":
    main()
