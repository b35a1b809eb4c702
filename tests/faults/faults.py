"""The fault campaign: steady chat traffic through every gateway of a stack that scripts/up
started, one fault injected into it, and afterwards the checks the platform promises:

- every acknowledged message is in MongoDB exactly once, with the seq its ack gave;
- every client's view of its room is gapless and free of duplicates after it resumed
  (join with since);
- sends that got no answer (their connection closed, or no answer within the client's
  timeout) were resent with the same cid and are stored once.

For each fault it reports the time to recover and the send -> deliver latency before and
during the fault, and what the clients saw: error frames by code, closes by code, failed
connection attempts. `faults.py --help` lists the faults; docs/faults.md says how
they are injected and what each one showed.

The clients are asyncio WebSocket clients as a browser's would be: each member of a room
connects to one gateway (members of a room spread over all of them), authenticates with a
token of the demo tenant, joins its room and, after any close, reconnects (backoff 0.25 s
doubling to 2 s, with jitter) and joins again with `since` = the last seq it holds. One
member per room sends at a steady rate; its sends wait in an outbox until acknowledged:
resent with the same cid after a reconnect, after an error answer (other than a refusal),
or after 5 s without an answer. Its frames go out at most 15 a second (the gateway allows
20, burst 40). Latency is measured from the moment a message was created (its text carries
the creation time; every client is on this machine's monotonic clock) to its arrival at
each member, so a message created while the system was down counts the whole wait.

Exits 0 when every check of every fault passed, 1 otherwise; with --json FILE the whole
report (per fault: counts, latency figures, a per-second timeline, client view) as JSON.
"""

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "support"))

from api_client import user_token  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402

SOURCE_DIR = os.environ.get("CHAT_SOURCE_DIR") or os.path.normpath(os.path.join(HERE, "..", ".."))

SEND_TIMEOUT_S = 5.0
# No joined within this: the client closes and tries again. Generous: on FerretDB's SQLite
# backend a fresh room's join reads the messages collection whole, so joins slow down as the
# campaign stores more; retrying sooner only piles up more joins.
JOIN_TIMEOUT_S = 30.0  # no answer within this: the client resends with the same cid
SEND_PACE = 15.0  # frames/s a sender writes at most
RETRYABLE = {"internal", "rate_limited", "unavailable", "timeout"}
REPLAY_MAX = 500  # a join replays at most this many messages (PROTOCOL.md)


def now():
    return time.monotonic()


def log(msg):
    print(f"[faults {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---- the stack ----

def load_env(path):
    env = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            k, v = line.split("=", 1)
            if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
                v = v[1:-1]
            env[k] = v
    return env


class Stack:
    """The stack under test: its parts' pids, and scripts/up and down to restart them."""

    def __init__(self, env_file, build_dir):
        self.env_file = env_file
        self.env = load_env(env_file)
        self.dir = self.env["CHAT_STACK_DIR"]
        self.pids = self.env.get("CHAT_STACK_PIDS", os.path.join(self.dir, "pids"))
        self.gateways = self.env["CHAT_GATEWAY_URLS"].split(",")
        self.build_dir = build_dir
        self.kafka_nodes = int(self.env.get("CHAT_KAFKA_NODES", "1"))

    def pid(self, part):
        try:
            with open(os.path.join(self.pids, part + ".pid"), encoding="utf-8") as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def alive(self, part):
        pid = self.pid(part)
        if pid is None:
            return False
        try:
            with open(f"/proc/{pid}/status", encoding="utf-8") as f:
                for line in f:
                    if line.startswith("State:"):
                        return "Z" not in line.split()[1]
        except OSError:
            return False
        return False

    def kill9(self, part):
        pid = self.pid(part)
        if pid is None:
            raise RuntimeError(f"{part} has no pid file in {self.pids}")
        os.kill(pid, signal.SIGKILL)
        deadline = now() + 10
        while self.alive(part) and now() < deadline:
            time.sleep(0.05)

    def stop(self, part):
        """SIGTERM and wait (scripts/down --only PART)."""
        self._run([os.path.join(SOURCE_DIR, "scripts", "down"), "--state-dir", self.dir,
                   "--only", part])

    def up(self):
        """Starts whatever of the stack does not run (scripts/up restarts only what died)."""
        self._run([os.path.join(SOURCE_DIR, "scripts", "up"), "--no-build", "--state-dir",
                   self.dir, "--build-dir", self.build_dir, "--gateways",
                   str(len(self.gateways))])

    def _run(self, cmd):
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           check=False)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-3000:]}")

    def kafka_parts(self):
        return ["kafka"] + [f"kafka-{n}" for n in range(2, self.kafka_nodes + 1)]

    def services(self):
        return (["message", "broadcast", "api", "moderation", "notify"]
                + [f"gateway-{i}" for i in range(len(self.gateways))])

    def check_running(self):
        parts = ["redis", "ferretdb"] + self.kafka_parts() + self.services()
        return [p for p in parts if not self.alive(p)]


# ---- the gateway 0 <-> Kafka cut (iptables) ----

def gateway0_kafka_ports(stack):
    brokers = stack.env.get("CHAT_KAFKA_GATEWAY0_BROKERS", "")
    if not brokers or brokers == stack.env.get("CHAT_KAFKA_BROKERS"):
        raise RuntimeError("gateway 0 has no Kafka listeners of its own: start the stack with "
                           "scripts/up --kafka-fault-path")
    return [int(b.rsplit(":", 1)[1]) for b in brokers.split(",")]


def iptables_rules(ports):
    """The rules that drop every packet to and from gateway 0's Kafka listeners (loopback):
    to that gateway, Kafka is unreachable as if a network path failed (no reset, no answer),
    while every other client of Kafka is untouched."""
    rules = []
    for p in ports:
        for d in ("--dport", "--sport"):
            rules.append(["OUTPUT", "-o", "lo", "-p", "tcp", d, str(p), "-m", "comment",
                          "--comment", f"chat-faults-{p}", "-j", "DROP"])
    return rules


def iptables(op, rule):
    return subprocess.run(["iptables", op] + rule, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False)


def iptables_clear(ports):
    for rule in iptables_rules(ports):
        while iptables("-C", rule).returncode == 0:
            iptables("-D", rule)


def gateway_ready(ops):
    """True if the ops URL's /readyz answers 200."""
    try:
        with urllib.request.urlopen(f"{ops}/readyz", timeout=2) as r:
            return r.status == 200
    except (OSError, urllib.error.HTTPError):
        return False


# ---- the faults ----

class Fault:
    def __init__(self, name, what, action, needs=None):
        self.name, self.what, self.action, self.needs = name, what, action, needs


def make_faults(hold):
    """Each action gets (stack, marks) and records its steps in marks (name -> time)."""

    def kafka_stop(stack, marks):
        for p in reversed(stack.kafka_parts()):
            stack.stop(p)
        marks["stopped"] = now()
        time.sleep(hold)
        marks["restart"] = now()
        stack.up()

    def kafka_kill9(stack, marks):
        for p in stack.kafka_parts():
            stack.kill9(p)
        marks["killed"] = now()
        time.sleep(hold)
        marks["restart"] = now()
        stack.up()

    def restart(part, graceful=True, pause=None):
        def act(stack, marks):
            if graceful:
                stack.stop(part)
            else:
                stack.kill9(part)
            marks["stopped"] = now()
            time.sleep(hold if pause is None else pause)
            marks["restart"] = now()
            stack.up()
        return act

    def rolling(stack, marks):
        for part in stack.services():
            stack.stop(part)
            stack.up()
            marks[f"{part} back"] = now()

    def gateway_cut(stack, marks):
        ports = gateway0_kafka_ports(stack)
        rules = iptables_rules(ports)
        iptables_clear(ports)  # left over by a run that was killed mid-cut
        try:
            for r in rules:
                out = iptables("-I", r)
                if out.returncode != 0:
                    raise RuntimeError(f"iptables -I {' '.join(r)}: {out.stdout}")
            marks["cut"] = now()
            # The cut gateway must say so (CHAT_GATEWAY_KAFKA_STALL, 5 s): /readyz 503 while
            # its sends go unacknowledged, so that a load balancer moves new clients away.
            ops = stack.env["CHAT_OPS_GATEWAYS"].split(",")[0]
            end = now() + max(hold, 30.0)
            while now() < end:
                if "unready" not in marks and not gateway_ready(ops):
                    marks["unready"] = now()
                time.sleep(0.5)
        finally:
            iptables_clear(ports)
            marks["restored"] = now()
        if "unready" not in marks:
            raise RuntimeError("gateway 0 answered /readyz 200 all through its cut from Kafka")
        log(f"gateway 0 unready {marks['unready'] - marks['cut']:.1f} s into the cut")
        deadline = now() + 60
        while now() < deadline and not gateway_ready(ops):
            time.sleep(0.5)
        if not gateway_ready(ops):
            raise RuntimeError("gateway 0 still not ready 60 s after the cut ended")
        marks["ready again"] = now()

    def broker_kill9(stack, marks):
        if stack.kafka_nodes < 3:
            raise RuntimeError("needs a three-broker stack (scripts/up --kafka-brokers 3)")
        stack.kill9("kafka-2")
        marks["killed"] = now()
        time.sleep(hold)
        marks["restart"] = now()
        stack.up()

    faults = [
        Fault("kafka-stop", "Kafka stopped (SIGTERM), restarted after the hold", kafka_stop),
        Fault("kafka-kill9", "Kafka killed with -9, restarted after the hold", kafka_kill9),
        Fault("redis-restart", "Redis stopped (SIGTERM) and restarted after the hold",
              restart("redis")),
        Fault("ferretdb-restart", "FerretDB stopped (SIGTERM) and restarted after the hold",
              restart("ferretdb")),
    ]
    for svc in ("message", "broadcast", "gateway-1", "moderation", "notify", "api"):
        faults.append(Fault(f"kill9-{svc.split('-')[0]}",
                            f"{svc} killed with -9 and restarted at once",
                            restart(svc, graceful=False, pause=0)))
    faults += [
        Fault("rolling", "every service in turn stopped (SIGTERM) and restarted (scripts/up)",
              rolling),
        Fault("gateway-kafka-cut",
              "gateway 0 cannot reach Kafka for 30 s (iptables drops its listener's packets)",
              gateway_cut),
        Fault("broker-kill9", "one broker of three killed with -9, restarted after the hold",
              broker_kill9, needs="cluster"),
    ]
    return faults


# ---- the clients ----

class Metrics:
    """Everything the clients saw, with times (monotonic)."""

    def __init__(self):
        self.deliveries = []  # (arrival, created, latency_s)
        self.acks = []  # (arrival, created, latency_s)
        self.errors = []  # (time, code, message)
        self.closes = []  # (time, code)
        self.connect_failures = []  # (time, kind)
        self.reconnects = 0
        self.resends = 0
        self.violations = []  # strings: gaps, duplicates, reorders while connected
        self.refused = []  # sends refused for good


class Room:
    def __init__(self, name):
        self.name = name
        self.acked = {}  # cid -> seq
        self.seqs = {}  # seq -> cid (from acks)
        self.created = 0


class Member:
    def __init__(self, run, room, index, gateway, sender):
        self.run, self.room, self.index = run, room, index
        self.gateway = gateway  # index into the stack's gateways of the next attempt
        self.user = f"{room.name}-u{index}"
        self.sender = sender
        self.last = 0  # highest seq held, in order
        self.seen = set()
        self.outbox = {}  # cid -> [text, created, last sent (None: due now), times sent]
        self.ws = None
        self.live = False
        self.task = None
        self.due = asyncio.Event()  # set when a send may be due
        self.stage = "connect"  # connect, auth, join, live: where a client not ready stands

    async def run_forever(self):
        backoff = 0.25
        m = self.run.metrics
        gateways = self.run.stack.gateways
        while not self.run.closing:
            try:
                async with connect(gateways[self.gateway % len(gateways)], open_timeout=5, close_timeout=2,
                                   max_size=None, ping_interval=10, ping_timeout=10) as ws:
                    self.ws = ws
                    await self.session(ws)
            except ConnectionClosed as e:
                code = e.rcvd.code if e.rcvd is not None else 1006
                if not self.run.closing:
                    m.closes.append((now(), code))
            except InvalidStatus as e:
                m.connect_failures.append((now(), f"http {e.response.status_code}"))
            except (OSError, asyncio.TimeoutError) as e:
                m.connect_failures.append((now(), type(e).__name__))
            except Refused as e:
                m.connect_failures.append((now(), str(e)))
            finally:
                self.ws = None
                self.stage = "connect"
                was_live, self.live = self.live, False
            if self.run.closing:
                return
            m.reconnects += 1
            # The next attempt goes to the next gateway, as the SDK does (widget/src/sdk).
            self.gateway += 1
            if was_live:
                backoff = 0.25  # it had worked: start the backoff again
            await asyncio.sleep(backoff * (0.5 + random.random() / 2))
            backoff = min(backoff * 2, 2.0)

    async def session(self, ws):
        m = self.run.metrics
        self.stage = "auth"
        await ws.send(json.dumps({"type": "auth", "token": user_token(
            self.run.tenant, self.run.secret, self.user, ttl=3600)}))
        f = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if f.get("type") != "welcome":
            m.errors.append((now(), f.get("code", "?"), f"auth: {f.get('message')}"))
            raise Refused(f"auth answered {f.get('type')} {f.get('code')}")
        join = {"type": "join", "room": self.room.name, "rid": "j"}
        since = self.last
        if since > 0:
            join["since"] = since
        await ws.send(json.dumps(join))
        self.stage = "join"
        replay_top = None
        join_deadline = now() + JOIN_TIMEOUT_S
        while True:
            if replay_top is None:
                # A join without an answer is given up after a while, as a client would.
                try:
                    raw = await asyncio.wait_for(ws.recv(), max(0.1, join_deadline - now()))
                except asyncio.TimeoutError:
                    m.errors.append((now(), "join_timeout", f"no joined within {JOIN_TIMEOUT_S} s"))
                    raise Refused("join timed out")
            else:
                raw = await ws.recv()
            f = json.loads(raw)
            t = f.get("type")
            if t == "joined":
                self.stage = "live"
                replay_top = f.get("seq", 0)
                if since and replay_top - since > REPLAY_MAX:
                    m.violations.append(f"{self.user}: join replay of {replay_top - since} > "
                                        f"{REPLAY_MAX} (the harness does not page history)")
                self.live = True
                if self.sender:
                    # Every unanswered send again, with its cid.
                    for entry in self.outbox.values():
                        entry[2] = None
                    self.due.set()
            elif t == "error" and f.get("rid") == "j":
                m.errors.append((now(), f.get("code"), f"join: {f.get('message')}"))
                raise Refused(f"join answered {f.get('code')}")
            else:
                self.frame(f)

    def frame(self, f):
        m = self.run.metrics
        t = f.get("type")
        at = now()
        if t == "msg" and f.get("room") == self.room.name:
            seq = f["seq"]
            if seq in self.seen:
                m.violations.append(f"{self.user}: duplicate seq {seq}")
            elif seq != self.last + 1:
                m.violations.append(f"{self.user}: seq {seq} after {self.last}")
            self.seen.add(seq)
            self.last = max(self.last, seq)
            created = parse_created(f.get("text", ""))
            if created is not None:
                m.deliveries.append((at, created, at - created))
        elif t == "ack" and self.sender:
            cid = f.get("cid")
            entry = self.outbox.pop(cid, None)
            seq = f.get("seq")
            old = self.room.acked.get(cid)
            if old is not None and old != seq:
                m.violations.append(f"{self.user}: cid {cid} acked with seq {old} and {seq}")
            prev = self.room.seqs.get(seq)
            if prev is not None and prev != cid:
                m.violations.append(f"{self.user}: seq {seq} acked for {prev} and {cid}")
            self.room.acked[cid] = seq
            self.room.seqs[seq] = cid
            if entry is not None:
                m.acks.append((at, entry[1], at - entry[1]))
        elif t == "error":
            m.errors.append((at, f.get("code"), f.get("message")))
            cid = f.get("cid")
            if self.sender and cid in self.outbox:
                if f.get("code") in RETRYABLE:
                    # Again a second from now.
                    self.outbox[cid][2] = at - SEND_TIMEOUT_S + 1.0
                    self.due.set()
                else:
                    m.refused.append(f"{cid}: {f.get('code')} {f.get('message')}")
                    self.outbox.pop(cid, None)

    async def pump(self):
        """The sender's writer: due sends (new, unanswered after the timeout, or to resend
        after a reconnect), at most SEND_PACE a second, while the connection is live."""
        last = 0.0
        while not self.run.closing:
            try:
                await asyncio.wait_for(self.due.wait(), 0.5)
            except asyncio.TimeoutError:
                pass
            self.due.clear()
            wait = last + 1.0 / SEND_PACE - now()
            if wait > 0:
                await asyncio.sleep(wait)
            ws = self.ws
            if not self.live or ws is None:
                continue
            t = now()
            due = None
            for cid, entry in self.outbox.items():
                if entry[2] is None or t - entry[2] >= SEND_TIMEOUT_S:
                    due = cid
                    break
            if due is None:
                continue
            self.due.set()  # perhaps more are due
            last = t
            entry = self.outbox[due]
            if entry[3] > 0:
                self.run.metrics.resends += 1
            entry[2] = t
            entry[3] += 1
            try:
                await ws.send(json.dumps({"type": "send", "room": self.room.name,
                                          "cid": due, "text": entry[0]}))
            except ConnectionClosed:
                pass  # resent once the connection is back


class Refused(Exception):
    pass


def parse_created(text):
    # "f:<created_ns>:<cid>"
    if not text.startswith("f:"):
        return None
    try:
        return int(text.split(":", 2)[1]) / 1e9
    except (ValueError, IndexError):
        return None


class Run:
    """One fault's traffic: rooms, members, senders, and the metrics."""

    def __init__(self, stack, prefix, rooms, members, rate):
        self.stack = stack
        self.tenant = stack.env["CHAT_DEMO_TENANT"]
        self.secret = stack.env["CHAT_DEMO_SECRET"]
        self.prefix = prefix
        self.rate = rate
        self.metrics = Metrics()
        self.closing = False
        self.sending = False
        self.rooms = [Room(f"{prefix}-r{i}") for i in range(rooms)]
        self.members = []
        for ri, room in enumerate(self.rooms):
            for mi in range(members):
                self.members.append(Member(self, room, mi, ri + mi, sender=(mi == 0)))
        self.senders = [m for m in self.members if m.sender]

    async def start(self):
        for mb in self.members:
            mb.task = asyncio.create_task(mb.run_forever())
        self.pumps = [asyncio.create_task(s.pump()) for s in self.senders]
        t_setup = now()
        deadline = now() + 120
        while now() < deadline and not all(mb.live for mb in self.members):
            await asyncio.sleep(0.1)
        if not all(mb.live for mb in self.members):
            stuck = [mb for mb in self.members if not mb.live]
            where = count_by(f"{mb.stage} on gateway {mb.gateway % len(self.stack.gateways)}"
                             for mb in stuck)
            m = self.metrics
            raise RuntimeError(f"{len(stuck)} clients not ready after 120 s ({where}); errors "
                               f"{count_by(e[1] for e in m.errors)}, closes "
                               f"{count_by(c[1] for c in m.closes)}, failed connects "
                               f"{count_by(c[1] for c in m.connect_failures)}")
        # What set-up met is reported apart (a stack still recovering from the fault
        # before shows there), not as what this fault's clients saw.
        m = self.metrics
        self.setup_view = {"errors": count_by(e[1] for e in m.errors),
                           "closes": count_by(c[1] for c in m.closes),
                           "connect_failures": count_by(c[1] for c in m.connect_failures),
                           "seconds": round(now() - t_setup, 2)}
        m.errors, m.closes, m.connect_failures = [], [], []
        m.reconnects = 0

    async def generate(self):
        """Creates the senders' messages at the rate, evenly spaced, until sending stops."""
        n = 0
        period = 1.0 / self.rate
        t0 = now()
        while self.sending:
            for s in self.senders:
                cid = f"c{n}"
                created = now()
                s.outbox[cid] = [f"f:{int(created * 1e9)}:{cid}", created, None, 0]
                s.due.set()
                s.room.created += 1
            n += 1
            nxt = t0 + n * period
            await asyncio.sleep(max(0.0, nxt - now()))

    def settled(self):
        if any(s.outbox for s in self.senders):
            return False
        for mb in self.members:
            top = max(mb.room.seqs) if mb.room.seqs else 0
            if mb.last < top:
                return False
        return True

    async def stop(self):
        self.closing = True
        for mb in self.members:
            if mb.ws is not None:
                try:
                    await mb.ws.close()
                except Exception:  # noqa: BLE001 - closing anyway
                    pass
        for t in [mb.task for mb in self.members] + self.pumps:
            t.cancel()
        await asyncio.gather(*[mb.task for mb in self.members], *self.pumps,
                             return_exceptions=True)


# ---- figures ----

def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * (len(v) - 1)))))
    return v[k]


def ms(x):
    return None if x is None else round(x * 1000.0, 1)


def lat_figures(samples):
    lats = [s[2] for s in samples]
    return {"n": len(lats), "p50_ms": ms(pct(lats, 50)), "p99_ms": ms(pct(lats, 99)),
            "max_ms": ms(max(lats) if lats else None)}


def count_by(items):
    out = {}
    for it in items:
        out[str(it)] = out.get(str(it), 0) + 1
    return out


# ---- one fault ----

def store_rows(stack, dump, prefix):
    env = dict(os.environ, CHAT_MONGO_URI=stack.env["CHAT_MONGO_URI"])
    for attempt in range(30):
        r = subprocess.run([dump, stack.env["CHAT_DEMO_TENANT"], prefix + "-"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           check=False)
        if r.returncode == 0:
            rows = []
            for line in r.stdout.splitlines():
                room, seq, frm, cid = line.split("\t")
                rows.append((room, int(seq), frm, cid))
            return rows
        time.sleep(1)
    raise RuntimeError(f"fault-dump failed: {r.stderr}")


def verify(run, rows):
    """The store against the acks and the members' views; a list of problems (empty: ok)
    and the counts."""
    problems = []
    by_room = {}
    for room, seq, frm, cid in rows:
        by_room.setdefault(room, []).append((seq, frm, cid))
    acked = stored = lost = dup = 0
    for room in run.rooms:
        got = by_room.get(room.name, [])
        stored += len(got)
        sender = f"{room.name}-u0"
        per_cid = {}
        per_seq = {}
        for seq, frm, cid in got:
            if frm != sender:
                problems.append(f"{room.name}: stored message from {frm}, not the sender")
            per_cid.setdefault(cid, []).append(seq)
            per_seq.setdefault(seq, []).append(cid)
        for cid, seqs in per_cid.items():
            if len(seqs) > 1:
                dup += len(seqs) - 1
                problems.append(f"{room.name}: cid {cid} stored {len(seqs)} times (seqs {seqs})")
        for seq, cids in per_seq.items():
            if len(cids) > 1:
                problems.append(f"{room.name}: seq {seq} stored {len(cids)} times ({cids})")
        for cid, seq in room.acked.items():
            acked += 1
            if cid not in per_cid:
                lost += 1
                problems.append(f"{room.name}: acked cid {cid} (seq {seq}) is not stored")
            elif per_cid[cid][0] != seq:
                problems.append(f"{room.name}: cid {cid} acked seq {seq}, stored seq "
                                f"{per_cid[cid][0]}")
        for cid in per_cid:
            if cid not in room.acked:
                problems.append(f"{room.name}: cid {cid} stored but never acked")
        seqs = sorted(per_seq)
        if seqs and seqs != list(range(1, len(seqs) + 1)):
            problems.append(f"{room.name}: stored seqs are not 1..{len(seqs)} "
                            f"(first {seqs[:3]}, last {seqs[-3:]})")
        if room.created != len(room.acked):
            problems.append(f"{room.name}: {room.created} messages created, "
                            f"{len(room.acked)} acked")
        top = len(seqs)
        for mb in run.members:
            if mb.room is room and mb.seen != set(range(1, top + 1)):
                missing = sorted(set(range(1, top + 1)) - mb.seen)
                extra = sorted(mb.seen - set(range(1, top + 1)))
                problems.append(f"{mb.user}: holds {len(mb.seen)} of {top} messages "
                                f"(missing {missing[:5]}, unknown {extra[:5]})")
    problems += run.metrics.violations
    problems += [f"send refused: {r}" for r in run.metrics.refused]
    return problems, {"created": sum(r.created for r in run.rooms), "acked": acked,
                      "stored": stored, "lost": lost, "duplicated": dup}


async def run_fault(fault, stack, args, runid):
    prefix = f"f{runid}-{fault.name}"
    run = Run(stack, prefix, args.rooms, args.members, args.rate)
    log(f"{fault.name}: {fault.what}; {args.rooms} rooms x {args.members} members over "
        f"{len(stack.gateways)} gateways, {args.rate} msg/s per room")
    await run.start()
    run.sending = True
    gen = asyncio.create_task(run.generate())
    t_start = now()
    await asyncio.sleep(args.before)
    marks = {}
    t_inject = now()
    marks["inject"] = t_inject
    error = None
    try:
        await asyncio.to_thread(fault.action, stack, marks)
    except Exception as e:  # noqa: BLE001 - reported as the fault's failure
        error = str(e)
    t_restored = now()
    marks["restored"] = t_restored
    # Load goes on until the window after injection has passed (at least `after` seconds
    # after the fault's end, so that recovery is seen under load).
    t_end = max(t_inject + args.window, t_restored + args.after)
    while now() < t_end:
        await asyncio.sleep(0.1)
    run.sending = False
    await gen
    t_stop = now()
    deadline = now() + args.drain
    while now() < deadline and not run.settled():
        await asyncio.sleep(0.2)
    settled = run.settled()
    t_settled = now()
    await run.stop()
    missing = stack.check_running()
    rows = store_rows(stack, args.dump, prefix)
    problems, counts = verify(run, rows)
    if error:
        problems.insert(0, f"injection failed: {error}")
    if not settled:
        pend = sum(len(s.outbox) for s in run.senders)
        problems.insert(0, f"not settled {args.drain:.0f} s after sending stopped: {pend} sends "
                        "unanswered or members behind")
    if missing:
        problems.append(f"parts not running after the fault: {', '.join(missing)}")
    m = run.metrics
    # Before: created and arrived before the injection (the first second left out). During:
    # every other message created before the load stopped: those in flight when the fault
    # came count as during.
    def split(samples):
        b = [x for x in samples if t_start + 1.0 <= x[1] and x[0] < t_inject]
        d = [x for x in samples if x[0] >= t_inject and x[1] < t_end]
        return b, d
    before, during = split(m.deliveries)
    acks_before, acks_during = split(m.acks)
    p99b = pct([d[2] for d in before], 99) or 0.05
    threshold = max(3 * p99b, 0.25)
    # Recovery: from the injection to the last moment the clients saw trouble: a delivery
    # or ack later than the threshold (at its arrival), an error frame, a close, a failed
    # connection attempt. Nothing seen: 0.
    trouble = [d[0] for d in m.deliveries + m.acks if d[0] >= t_inject and d[2] > threshold]
    trouble += [e[0] for e in m.errors if e[0] >= t_inject]
    trouble += [c[0] for c in m.closes if c[0] >= t_inject]
    trouble += [c[0] for c in m.connect_failures if c[0] >= t_inject]
    recovery = max(trouble) - t_inject if trouble else 0.0
    timeline = []
    for sec in range(int(t_stop - t_start) + 1):
        lo, hi = t_start + sec, t_start + sec + 1
        ds = [d[2] for d in m.deliveries if lo <= d[1] < hi]
        timeline.append({"t": round(lo - t_inject, 1), "created": len(ds),
                         "p50_ms": ms(pct(ds, 50)), "p99_ms": ms(pct(ds, 99)),
                         "max_ms": ms(max(ds) if ds else None),
                         "errors": sum(1 for e in m.errors if lo <= e[0] < hi),
                         "closes": sum(1 for c in m.closes if lo <= c[0] < hi)})
    res = {
        "fault": fault.name, "what": fault.what, "ok": not problems,
        "problems": problems[:50], "problem_count": len(problems),
        "counts": counts, "recovery_s": round(recovery, 2),
        "threshold_ms": ms(threshold),
        "fault_s": round(t_restored - t_inject, 2),
        "marks": {k: round(v - t_inject, 2) for k, v in marks.items()},
        "settle_s": round(t_settled - t_stop, 2),
        "latency_before": lat_figures(before), "latency_during": lat_figures(during),
        "ack_before": lat_figures(acks_before), "ack_during": lat_figures(acks_during),
        "clients": {
            "errors": count_by(e[1] for e in m.errors),
            "error_messages": sorted({f"{e[1]}: {e[2]}" for e in m.errors})[:10],
            "closes": count_by(c[1] for c in m.closes),
            "connect_failures": count_by(c[1] for c in m.connect_failures),
            "reconnects": m.reconnects, "resends": m.resends,
        },
        "setup": run.setup_view,
        "timeline": timeline,
    }
    log(f"{fault.name}: {'ok' if res['ok'] else 'FAILED'}; recovery {res['recovery_s']} s, "
        f"{counts}, clients {res['clients']['errors']} errors, closes "
        f"{res['clients']['closes']}, resends {m.resends}; set-up {run.setup_view}")
    for p in problems[:20]:
        log(f"  problem: {p}")
    return res


def table(results):
    head = ("| fault | recovery s | p50/p99/max ms before | p50/p99/max ms during | "
            "acked | stored | lost | dup | what clients saw | ok |")
    lines = [head, "|" + "---|" * 10]
    for r in results:
        b, d = r["latency_before"], r["latency_during"]
        c = r["clients"]
        seen = []
        if c["errors"]:
            seen.append("errors " + ", ".join(f"{k} x{v}" for k, v in c["errors"].items()))
        if c["closes"]:
            seen.append("closes " + ", ".join(f"{k} x{v}" for k, v in c["closes"].items()))
        if c["connect_failures"]:
            seen.append("failed connects " + ", ".join(
                f"{k} x{v}" for k, v in c["connect_failures"].items()))
        if c["resends"]:
            seen.append(f"{c['resends']} resends")
        lines.append(
            f"| {r['fault']} | {r['recovery_s']} | {b['p50_ms']}/{b['p99_ms']}/{b['max_ms']} | "
            f"{d['p50_ms']}/{d['p99_ms']}/{d['max_ms']} | {r['counts']['acked']} | "
            f"{r['counts']['stored']} | {r['counts']['lost']} | {r['counts']['duplicated']} | "
            f"{'; '.join(seen) or 'nothing (latency only)'} | {'yes' if r['ok'] else 'NO'} |")
    return "\n".join(lines)


def main():
    faults = make_faults(0)
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="faults: " + "; ".join(f"{f.name}: {f.what}" for f in faults))
    ap.add_argument("faults", nargs="+", help="fault names, or all (every fault this stack "
                    "can take: broker-kill9 only on a three-broker stack)")
    ap.add_argument("--stack-env", default=os.environ.get("CHAT_STACK_ENV"),
                    help="stack.env of the stack (default: $CHAT_STACK_ENV)")
    ap.add_argument("--build-dir", default=os.environ.get("CHAT_BUILD_DIR"),
                    help="the build tree of the stack's binaries and fault-dump "
                    "(default: $CHAT_BUILD_DIR)")
    ap.add_argument("--dump", help="fault-dump (default: BUILD/tests/faults/fault-dump)")
    ap.add_argument("--rooms", type=int, default=6)
    ap.add_argument("--members", type=int, default=4)
    ap.add_argument("--rate", type=float, default=2.0, help="messages/s per room")
    ap.add_argument("--before", type=float, default=4.0, help="seconds of load before the fault")
    ap.add_argument("--hold", type=float, default=3.0,
                    help="seconds a stopped part stays down (kafka, redis, ferretdb, a broker)")
    ap.add_argument("--window", type=float, default=15.0,
                    help="seconds of load from the injection on")
    ap.add_argument("--after", type=float, default=6.0,
                    help="at least this much load after the fault's end")
    ap.add_argument("--drain", type=float, default=60.0,
                    help="seconds to wait after sending stops for every answer and delivery")
    ap.add_argument("--json", help="write the report here")
    args = ap.parse_args()
    if not args.stack_env or not args.build_dir:
        ap.error("--stack-env and --build-dir (or CHAT_STACK_ENV, CHAT_BUILD_DIR) are needed")
    args.dump = args.dump or os.path.join(args.build_dir, "tests", "faults", "fault-dump")
    stack = Stack(args.stack_env, args.build_dir)
    faults = {f.name: f for f in make_faults(args.hold)}
    names = args.faults
    if names == ["all"]:
        names = [n for n, f in faults.items()
                 if f.needs != "cluster" or stack.kafka_nodes >= 3]
    for n in names:
        if n not in faults:
            ap.error(f"unknown fault {n}")
    missing = stack.check_running()
    if missing:
        print(f"the stack is not whole: {', '.join(missing)} not running", file=sys.stderr)
        return 2
    runid = f"{int(time.time()) % 100000}{random.randint(0, 99):02d}"
    results = []
    for n in names:
        try:
            results.append(asyncio.run(run_fault(faults[n], stack, args, runid)))
        except Exception as e:  # noqa: BLE001 - the fault fails, the next one runs
            log(f"{n}: FAILED: {e}")
            empty = {"n": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
            results.append({
                "fault": n, "what": faults[n].what, "ok": False, "problems": [str(e)],
                "problem_count": 1, "recovery_s": None, "latency_before": empty,
                "latency_during": empty, "ack_before": empty, "ack_during": empty,
                "counts": {"created": 0, "acked": 0, "stored": 0, "lost": 0, "duplicated": 0},
                "clients": {"errors": {}, "closes": {}, "connect_failures": {}, "resends": 0,
                            "reconnects": 0, "error_messages": []}})
        missing = stack.check_running()
        if missing:
            log(f"restarting what is not running: {', '.join(missing)}")
            stack.up()
    print(table(results), flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"stack": {"gateways": len(stack.gateways),
                                 "kafka_nodes": stack.kafka_nodes},
                       "params": {k: v for k, v in vars(args).items() if k != "faults"},
                       "results": results}, f, indent=1)
    bad = [r["fault"] for r in results if not r["ok"]]
    print(f"{len(results) - len(bad)} of {len(results)} faults passed"
          + (f"; failed: {', '.join(bad)}" if bad else ""), flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
