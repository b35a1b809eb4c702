"""Slowloris and floods against a gateway of the test's own: each attack is bounded, and a
normal client's connect + auth + join + send -> ack + message stays as fast as before.

- slow handshakes: sockets sending their upgrade request one byte a second are closed at
  CHAT_GATEWAY_HANDSHAKE_TIMEOUT (10 s), however long the request still has to go;
- half-open sockets (connected, never a byte) are closed at the same deadline;
- an oversized request head (64 KiB of headers, over CHAT_GATEWAY_HTTP_HEADER_MAX) is
  refused (431 or a close) at once;
- FLOOD WebSockets that upgrade and never authenticate (2,000 here; CHAT_TEST_FLOOD=10000 for
  the full run) are all closed with 4001 at CHAT_AUTH_TIMEOUT (15 s here); from their one
  address,
  CHAT_GATEWAY_UNAUTH_PER_IP_MAX of them get in and the rest get 503 at the upgrade; the
  gateway's memory goes back down after.

A second gateway with CHAT_GATEWAY_UNAUTH_MAX=30 refuses the 31st unauthenticated upgrade
with 503 and lets one in again once one of the 30 authenticated.

The attackers connect from 127.0.0.2 (loopback takes any 127/8 address), the normal client
from 127.0.0.1. Figures (memory before / during / after, latencies, time until the attack's
sockets were closed) are printed as "figure:" lines."""
import base64
import contextlib
import json
import os
import resource
import selectors
import socket
import statistics
import struct
import sys
import threading
import time
import types

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from api_client import stack_load, tenant_create, unique, user_token  # noqa: E402
from checks import check, finish, scrape  # noqa: E402
from own_gateway import OwnGateway  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

stack = stack_load()
BUILD = stack["CHAT_BUILD_DIR"]
GATEWAY_BIN = os.path.join(BUILD, "services", "gateway", "chat-gateway")
OWN_INDEX = "11"  # a partition of chat.deliver the stack's gateways and other tests do not use
FLOOD = int(os.environ.get("CHAT_TEST_FLOOD", "2000"))
OVER_CAP = 20  # upgrades beyond the per-address cap, each refused with 503
SLOW = 50
HALF_OPEN = 500
HANDSHAKE_S = 10
AUTH_S = 15  # CHAT_AUTH_TIMEOUT here: room for the whole flood to be upgraded first
ATTACKER = "127.0.0.2"
FDS = 20000  # the most a process may hold here; the gateway inherits the raised limit


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(FDS, hard) if hard != resource.RLIM_INFINITY else FDS
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class Normal:
    """The normal client's round trip, measured again and again: connect, auth, join, send,
    its ack and its message back (ms)."""

    def __init__(self, url, tenant):
        self.url, self.tenant = url, tenant
        self.room = unique("normal")
        self.n = 0

    def once(self):
        self.n += 1
        t0 = time.monotonic()
        with connect(self.url, open_timeout=10) as ws:
            ws.send(json.dumps({"type": "auth", "token": user_token(
                self.tenant.id, self.tenant.secret, "normal")}))
            self._expect(ws, "welcome")
            ws.send(json.dumps({"type": "join", "room": self.room, "rid": "j"}))
            self._expect(ws, "joined")
            cid = f"c{self.n}"
            ws.send(json.dumps({"type": "send", "room": self.room, "text": cid, "cid": cid}))
            # the ack and the message, in either order
            self._expect(ws, "ack", lambda f: f.get("cid") == cid, "msg",
                         lambda f: f.get("text") == cid)
        return (time.monotonic() - t0) * 1000.0

    @staticmethod
    def _expect(ws, kind, pred=lambda f: True, kind2=None, pred2=None):
        deadline = time.monotonic() + 15
        want = {kind: pred}
        if kind2 is not None:
            want[kind2] = pred2
        while want:
            f = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if f.get("type") == "error":
                raise RuntimeError(f"normal client: {f}")
            p = want.get(f.get("type"))
            if p is not None and p(f):
                del want[f.get("type")]

    def sample(self, count):
        out = []
        for _ in range(count):
            try:
                out.append(self.once())
            except Exception as e:  # noqa: BLE001 - any failure is the finding
                out.append(None)
                print(f"# normal client failed: {e!r}", flush=True)
        return out


class Background:
    """Normal.sample in a thread while an attack runs."""

    def __init__(self, normal, count, gap):
        self.normal, self.count, self.gap, self.out = normal, count, gap, []
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        for _ in range(self.count):
            self.out += self.normal.sample(1)
            time.sleep(self.gap)

    def join(self):
        self.t.join(timeout=120)
        return self.out


def summary(ms):
    ok = [x for x in ms if x is not None]
    if not ok:
        return "none succeeded"
    return (f"median {statistics.median(ok):.1f} ms, max {max(ok):.1f} ms, "
            f"{len(ok)}/{len(ms)} ok")


def latency_ok(during, base, what):
    ok = [x for x in during if x is not None]
    med = statistics.median(ok) if ok else float("inf")
    limit = max(3 * base, base + 100)
    check(len(ok) == len(during) and med <= limit,
          f"{what}: the normal client is unaffected ({summary(during)}; before: median "
          f"{base:.1f} ms; limit {limit:.0f} ms)")


def attacker_socket(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((ATTACKER, 0))
    s.connect(("127.0.0.1", port))
    s.setblocking(False)
    return s


def upgrade_request(port, extra=""):
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{extra}\r\n").encode()


def wait_closed(socks, deadline, feed=None, start=None):
    """Reads every socket until the peer closes it (or the deadline); returns {sock: seconds
    after start (default: now) until closed}. feed(sock, now) may send more meanwhile."""
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    start = time.monotonic() if start is None else start
    closed = {}
    while len(closed) < len(socks) and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            try:
                data = s.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            except BlockingIOError:
                continue
            if not data:
                closed[s] = time.monotonic() - start
                sel.unregister(s)
        if feed is not None:
            for s in socks:
                if s not in closed:
                    feed(s, time.monotonic())
    sel.close()
    return closed


def slow_and_half_open(gw, normal, base, rss_base):
    """SLOW sockets dripping their request a byte a second, HALF_OPEN sockets silent."""
    req = upgrade_request(gw.port)
    t0 = time.monotonic()
    slow = [attacker_socket(gw.port) for _ in range(SLOW)]
    half = [attacker_socket(gw.port) for _ in range(HALF_OPEN)]
    sent = {s: 0 for s in slow}
    last = {s: 0.0 for s in slow}

    def drip(s, now):
        if s in sent and now - last[s] >= 1.0 and sent[s] < len(req) - 1:
            try:
                s.send(req[sent[s]:sent[s] + 1])
                sent[s] += 1
                last[s] = now
            except OSError:
                pass

    bg = Background(normal, 6, 1.0)
    time.sleep(1.0)  # every socket accepted
    rss_during = rss_mib(gw.proc.pid)
    fds_during = open_fds(gw.proc.pid)
    closed = wait_closed(slow + half, t0 + HANDSHAKE_S + 15, drip, start=t0)
    during = bg.join()
    slow_t = [closed[s] for s in slow if s in closed]
    half_t = [closed[s] for s in half if s in closed]
    print(f"figure: slow handshakes: {len(slow_t)}/{SLOW} closed, after "
          f"{min(slow_t, default=0):.1f}-{max(slow_t, default=0):.1f} s, having sent "
          f"{max(sent.values())} of {len(req)} bytes", flush=True)
    print(f"figure: half-open sockets: {len(half_t)}/{HALF_OPEN} closed, after "
          f"{min(half_t, default=0):.1f}-{max(half_t, default=0):.1f} s", flush=True)
    print(f"figure: normal client during them: {summary(during)}", flush=True)
    print(f"figure: gateway memory with them: {rss_during:.1f} MiB ({fds_during} open fds; "
          f"{(rss_during - rss_base) * 1024 / (SLOW + HALF_OPEN):.1f} KiB per socket in its "
          f"handshake)", flush=True)
    check(len(slow_t) == SLOW and max(slow_t) <= HANDSHAKE_S + 3,
          f"slow handshakes closed at the handshake deadline ({HANDSHAKE_S} s): "
          f"{len(slow_t)}/{SLOW}, last after {max(slow_t, default=-1):.1f} s")
    check(len(half_t) == HALF_OPEN and max(half_t) <= HANDSHAKE_S + 3,
          f"half-open sockets closed at the handshake deadline: {len(half_t)}/{HALF_OPEN}, "
          f"last after {max(half_t, default=-1):.1f} s")
    latency_ok(during, base, "slow handshakes and half-open sockets")
    for s in slow + half:
        s.close()


def head_status(gw, filler_kib):
    """The status line a WebSocket upgrade with filler_kib KiB of extra headers gets."""
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as s:
        s.sendall(upgrade_request(gw.port, ("X-Filler: " + "a" * 1000 + "\r\n") * filler_kib))
        try:
            return s.recv(4096).split(b"\r\n", 1)[0].decode(errors="replace")
        except OSError:
            return ""


def oversized(gw):
    """A request head of 64 KiB: 431 or a close, at once; the gateway serves on. One of
    6 KiB (under CHAT_GATEWAY_HTTP_HEADER_MAX, 8 KiB) is upgraded: the limit is what refuses."""
    small = head_status(gw, 6)
    check(small.endswith("101 Switching Protocols"), f"a 6 KiB request head is upgraded: {small!r}")
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    big = "X-Filler: " + "a" * 1000 + "\r\n"
    t0 = time.monotonic()
    answer = b""
    try:
        s.sendall(upgrade_request(gw.port, big * 64))
    except OSError:
        pass
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
    except OSError:
        pass
    took = time.monotonic() - t0
    s.close()
    status = answer.split(b"\r\n", 1)[0].decode(errors="replace")
    print(f"figure: oversized head (64 KiB): '{status or 'closed without an answer'}' after "
          f"{took * 1000:.0f} ms", flush=True)
    check(not status.endswith("101 Switching Protocols") and took < 3,
          f"a 64 KiB request head is refused (431 or close) within 3 s: {status!r}, "
          f"{took:.2f} s")


def ws_close_code(buf):
    """The code of the close frame in the server's bytes after the 101, or None."""
    i = 0
    while i + 2 <= len(buf):
        op, ln = buf[i] & 0x0F, buf[i + 1] & 0x7F
        j = i + 2
        if ln == 126:
            ln, j = struct.unpack(">H", buf[j:j + 2])[0], j + 2
        elif ln == 127:
            ln, j = struct.unpack(">Q", buf[j:j + 8])[0], j + 8
        if j + ln > len(buf):
            return None
        if op == 8:
            return struct.unpack(">H", buf[j:j + 2])[0] if ln >= 2 else 1005
        i = j + ln
    return None


def flood(gw, normal, base, rss_base):
    """FLOOD upgrades from one address, none authenticates; then OVER_CAP more."""
    t0 = time.monotonic()
    socks, bufs, sent_at = [], {}, {}
    for _ in range(FLOOD):
        s = attacker_socket(gw.port)
        socks.append(s)
        bufs[s] = b""
        sent_at[s] = time.monotonic() - t0
        try:
            s.send(upgrade_request(gw.port))
        except BlockingIOError:
            pass
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    status, closed_at, code = {}, {}, {}

    def pump(until, stop):
        """Reads answers: the 101 (or 503), later the close frame (or the close)."""
        while time.monotonic() < until and not stop():
            for key, _ in sel.select(timeout=0.2):
                s = key.fileobj
                try:
                    data = s.recv(65536)
                except (ConnectionResetError, BrokenPipeError):
                    data = b""
                except BlockingIOError:
                    continue
                if data:
                    bufs[s] += data
                    if s not in status and b"\r\n\r\n" in bufs[s]:
                        head, rest = bufs[s].split(b"\r\n\r\n", 1)
                        status[s] = head.split(b" ", 2)[1].decode()
                        bufs[s] = rest
                    if status.get(s) == "101" and s not in code:
                        c = ws_close_code(bufs[s])
                        if c is not None:  # the close frame: the gateway is done with it
                            code[s] = c
                            closed_at[s] = time.monotonic() - t0
                            sel.unregister(s)
                    continue
                closed_at[s] = time.monotonic() - t0
                code.setdefault(s, None)
                sel.unregister(s)

    # 1. every upgrade answered, before the first auth deadline
    pump(t0 + AUTH_S - 1, lambda: len(status) >= FLOOD)
    upgraded = time.monotonic() - t0
    peak_rss, peak_fds = rss_mib(gw.proc.pid), open_fds(gw.proc.pid)
    unauth_peak = scrape(gw.ops_url("")).get("chat_gateway_unauthenticated_connections", -1)
    # 2. over the per-address cap: 503 at the upgrade
    over = []
    for _ in range(OVER_CAP):
        with socket.socket() as s:
            s.bind((ATTACKER, 0))
            s.settimeout(5)
            s.connect(("127.0.0.1", gw.port))
            s.sendall(upgrade_request(gw.port))
            try:
                over.append(s.recv(4096).split(b"\r\n", 1)[0].decode(errors="replace"))
            except OSError as e:
                over.append(repr(e))
    refused = [x for x in over if " 503 " in x]
    # 3. the normal client meanwhile, until every one is closed
    bg = Background(normal, 5, 0.5)
    pump(t0 + AUTH_S + 40, lambda: len(closed_at) >= FLOOD and not bg.t.is_alive())
    peak_rss = max(peak_rss, rss_mib(gw.proc.pid))
    sel.close()
    during = bg.join()
    ups = [s for s in socks if status.get(s) == "101"]
    close_t = [closed_at[s] for s in ups if s in closed_at]
    # each one's auth deadline runs from its upgrade, after its request was sent
    lifetimes = sorted(closed_at[s] - sent_at[s] for s in ups if s in closed_at)
    codes = {}
    for s in ups:
        codes[code.get(s)] = codes.get(code.get(s), 0) + 1
    for s in socks:
        s.close()
    time.sleep(1.5)
    rss_after = rss_mib(gw.proc.pid)
    m = scrape(gw.ops_url(""))
    per_conn_kib = (peak_rss - rss_base) * 1024.0 / max(1, len(ups))
    print(f"figure: flood: {FLOOD} upgrades from one address answered in {upgraded:.1f} s: "
          f"{len(ups)} upgraded; {len(refused)} of {OVER_CAP} more refused with 503 "
          f"(per-address cap {FLOOD})", flush=True)
    print(f"figure: flood: closes {codes}; each {lifetimes[0] if lifetimes else 0:.1f}"
          f"-{lifetimes[-1] if lifetimes else 0:.1f} s (median "
          f"{statistics.median(lifetimes) if lifetimes else 0:.1f} s) after its request, the "
          f"last {max(close_t, default=0):.1f} s after the first (auth timeout {AUTH_S} s)",
          flush=True)
    print(f"figure: gateway memory: before {rss_base:.1f} MiB, during {peak_rss:.1f} MiB "
          f"(open fds {peak_fds}), after {rss_after:.1f} MiB; about {per_conn_kib:.1f} KiB "
          f"per unauthenticated connection", flush=True)
    print(f"figure: normal client during the flood: {summary(during)}", flush=True)
    check(len(ups) == FLOOD, f"{FLOOD} upgrades admitted from one address: {len(ups)}")
    check(len(refused) == OVER_CAP, f"the {OVER_CAP} beyond the cap get 503: {over[:2]}")
    check(unauth_peak == FLOOD,
          f"chat_gateway_unauthenticated_connections counted them: {unauth_peak}")
    check(m.get('chat_gateway_upgrades_refused_total{reason="per_ip"}') == OVER_CAP,
          "the refusals are counted (reason per_ip)")
    check(codes.get(4001) == len(ups) and lifetimes and lifetimes[0] >= AUTH_S - 0.3 and
          lifetimes[-1] <= AUTH_S + upgraded + 5,
          f"every unauthenticated WebSocket closed with 4001 at its auth deadline: {codes}, "
          f"{lifetimes[0] if lifetimes else -1:.1f}-{lifetimes[-1] if lifetimes else -1:.1f} s "
          f"after its request")
    check(m.get("chat_gateway_unauthenticated_connections") == 0,
          "no unauthenticated connection left")
    check(per_conn_kib < 64, f"memory per unauthenticated connection bounded: "
          f"{per_conn_kib:.1f} KiB (< 64)")
    # freed memory stays with the allocator for reuse: after is not below the peak, but
    # does not grow either
    check(rss_after <= peak_rss + 2, f"memory after the flood ({rss_after:.1f} MiB) not above "
          f"its peak ({peak_rss:.1f} MiB)")
    latency_ok(during, base, "unauthenticated flood")


def total_cap(tenant, log_path):
    """CHAT_GATEWAY_UNAUTH_MAX (small here) counts every address: the next upgrade gets 503
    (the documented cost of the cap), and a slot is free again once one authenticates."""
    cap = 30
    gw = OwnGateway(stack, GATEWAY_BIN, OWN_INDEX, log_path,
                    {"CHAT_GATEWAY_UNAUTH_MAX": str(cap)})
    try:
        conns = contextlib.ExitStack()
        held = [conns.enter_context(connect(gw.url, open_timeout=10)) for _ in range(cap)]
        refused = None
        try:
            with connect(gw.url, open_timeout=10):
                refused = "upgraded"
        except Exception as e:  # noqa: BLE001 - the refusal is the point
            refused = repr(e)
        check("503" in refused, f"upgrade {cap + 1} with {cap} unauthenticated gets 503: {refused}")
        held[0].send(json.dumps({"type": "auth", "token": user_token(
            tenant.id, tenant.secret, "holder")}))
        w = json.loads(held[0].recv(timeout=10))
        check(w.get("type") == "welcome", f"one of them authenticates: {w.get('type')}")
        try:
            with connect(gw.url, open_timeout=10) as ws:
                again = "upgraded"
                ws.close()
        except Exception as e:  # noqa: BLE001
            again = repr(e)
        check(again == "upgraded", f"then an upgrade gets in again: {again}")
        m = scrape(gw.ops_url(""))
        check(m.get('chat_gateway_upgrades_refused_total{reason="total"}') == 1,
              "the refusal is counted (reason total)")
        conns.close()
    finally:
        check(gw.stop() == 0, "the capped gateway stops cleanly")


def main():
    global FLOOD
    fds = raise_fd_limit()
    # the test holds the flood and the gateway its end of it, each process within its limit
    room = fds - OVER_CAP - SLOW - HALF_OPEN - 200
    if FLOOD > room:
        print(f"# the open-files limit ({fds}) allows a flood of {room}, not {FLOOD}", flush=True)
        FLOOD = room
    check(FLOOD >= 1000, f"open files allowed: {fds}, a flood of {FLOOD} (at least 1000)")
    tid, secret = tenant_create(stack)
    tenant = types.SimpleNamespace(id=tid, secret=secret)
    log_path = os.path.join(stack["CHAT_STACK_DIR"], "logs", f"test-116-{os.getpid()}.log")
    gw = OwnGateway(stack, GATEWAY_BIN, OWN_INDEX, log_path,
                    {"CHAT_GATEWAY_UNAUTH_PER_IP_MAX": str(FLOOD),
                     "CHAT_GATEWAY_HANDSHAKE_TIMEOUT": f"{HANDSHAKE_S}s",
                     "CHAT_AUTH_TIMEOUT": f"{AUTH_S}s"})
    try:
        normal = Normal(gw.url, tenant)
        normal.sample(2)  # the room exists, the tenant is cached
        base_ms = normal.sample(5)
        base = statistics.median([x for x in base_ms if x is not None] or [float("inf")])
        rss_base = rss_mib(gw.proc.pid)
        print(f"figure: before: gateway {rss_base:.1f} MiB, normal client {summary(base_ms)}",
              flush=True)
        slow_and_half_open(gw, normal, base, rss_base)
        oversized(gw)
        check(gw.proc.poll() is None, "the gateway runs on")
        flood(gw, normal, base, rss_base)
        check(gw.proc.poll() is None, "the gateway runs on after the flood")
    finally:
        check(gw.stop() == 0, "the gateway stops cleanly")
    total_cap(tenant, log_path + ".cap")
    finish()


if __name__ == "__main__":
    main()
