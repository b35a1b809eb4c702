"""No empty panel: every query of every Grafana dashboard (deploy/grafana/dashboards/*.json)
returns data from the stack's Prometheus after a little traffic.

The traffic: first a bench run (bench/run smoke: 10 clients in 2 rooms, 3 s of messages and
typing, every delivery checked) when CHAT_BENCH_BIN names chat-bench (ctest sets it); then
what makes every other counter the dashboards draw move: a new tenant (server API calls),
two users on the two gateways exchanging messages in a room, a moderated message (a blocklist
word), a webhook delivered to the test peers' receiver and a Web Push to an offline member
(notify); after a scrape, a second round of the same. Then the test waits until Prometheus
has scraped every target twice and runs each
panel's PromQL with /api/v1/query, its template variables substituted as Grafana would:
$instance, $job, $group (multi-value, "All") by the alternation of the values of their
label_values(...) query, $tenant by this test's tenant (or the first value found),
$__rate_interval and $__interval by a window that covers the traffic (at least 1m). A query
answers with data when it returns at least one sample that is not NaN. The test fails listing
every panel (dashboard / panel / query) that does not, and names the metrics in the query that
Prometheus has never seen (not exposed by any target).

Prometheus: CHAT_PROMETHEUS_URL of stack.env, the stack's own (scripts/up --monitoring, as
the ctest fixture starts it), which scrapes every part with the rules the chart ships.
"""
import contextlib
import glob
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import datetime

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from api_client import api_base, call_json, stack_load, Tenant, unique  # noqa: E402
from checks import check, finish  # noqa: E402
from peers_client import Peers  # noqa: E402
from ws_client import Client  # noqa: E402

stack = stack_load()
API = api_base(stack)
URLS = stack["CHAT_GATEWAY_URLS"].split(",")
DASHBOARDS = os.path.join(stack["CHAT_SOURCE_DIR"], "deploy", "grafana", "dashboards")
BAD_WORD = "dashboardbadword"


# ---- Prometheus ----

def prom_get(base, path, **params):
    url = base.rstrip("/") + path
    if params:
        url += "?" + urllib.parse.urlencode(params, doseq=True)
    with urllib.request.urlopen(url, timeout=30) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(f"{path}: {body}")
    return body["data"]


def wait_scrapes(base, since, n=2, timeout=120):
    """Waits until every active target has been scraped n times after since (epoch s)."""
    mark = since
    for _ in range(n):
        deadline = time.monotonic() + timeout
        while True:
            ts = prom_get(base, "/api/v1/targets", state="active")["activeTargets"]
            last = [t.get("lastScrape", "") for t in ts]
            if ts and all(parse_ts(x) > mark for x in last):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"targets not scraped after {mark}: {last}")
            time.sleep(0.5)
        mark = time.time()


def parse_ts(rfc3339):
    """Epoch seconds of Prometheus' RFC 3339 timestamps (nanosecond fractions)."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", rfc3339 or "")
    if not m or rfc3339.startswith("0001-"):
        return 0.0
    frac = float("0." + m.group(2)) if m.group(2) else 0.0
    tz = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.fromisoformat(m.group(1) + tz).timestamp() + frac


# ---- traffic ----

def call(tenant, method, path, body=None):
    return call_json(API, tenant, method, path, body)


def delivered_pushes(peers, sub):
    return [p for p in peers.pushes(sub["id"]) if p.get("outcome") == "delivered"]


def traffic(sockets, prom_url):
    """Messages, a moderated one, webhooks and a push; returns the tenant. The clients stay
    connected (sockets is the caller's), so that the per-tenant connection gauge shows them.
    A second round follows a scrape: a series a service creates at its first event (rather
    than at start) has its first sample at 1, and a rate over it is 0 (a NaN quantile) until
    it moves again, as it does under continuous traffic."""
    peers = Peers.from_stack(stack)
    T = Tenant(stack)
    st, _ = call(T, "PUT", "/moderation/rules",
                 {"blocklists": [{"name": "dash", "words": [BAD_WORD], "match": "word",
                                  "action": "remove"}]})
    check(st == 200, f"moderation rules set ({st})")
    # Two webhooks: one delivered, one answering 410 (disabled, its event dead-lettered by
    # notify on the dead-letter topic).
    hooks = {}
    for name, fail in (("ok", None), ("gone", {"status": 410, "count": -1})):
        st, body = call(T, "POST", "/webhooks", {"url": peers.hook_url(unique("dash-" + name)),
                                                 "events": ["message.new"]})
        check(st == 201, f"webhook {name} to the peers' receiver ({st})")
        if st == 201:
            hooks[name] = body["url"].rsplit("/", 1)[1]
            peers.set_hook(hooks[name], [body["secret"]], fail=fail)
    st, _ = call(T, "GET", "/rooms")
    check(st == 200, f"GET /rooms ({st})")

    # bob subscribes to pushes and goes offline; alice writes to him.
    sub = peers.new_subscription()
    bob = Client(sockets, T, "bob", URLS[-1])
    rid = bob.rid()
    bob.send({"type": "push_subscribe", "rid": rid, "endpoint": sub["endpoint"],
              "keys": sub["keys"]})
    ok = bob.wait(lambda f: f.get("rid") == rid, "bob's push_subscribe")
    check(ok is not None and ok.get("type") == "ok", f"bob subscribed to pushes: {ok}")
    bob.ws.close()

    alice = Client(sockets, T, "alice", URLS[0])
    carol = Client(sockets, T, "carol", URLS[-1])
    room = "dash-" + unique("room")
    alice.join(room)
    carol.join(room)
    dm = "dm:alice:bob"
    alice.join(dm)
    acks = [alice.post(room, f"hello {i}") for i in range(10)]
    acks += [carol.post(room, f"hi back {i}") for i in range(10)]
    check(all(a and a.get("type") == "ack" for a in acks), "20 messages acknowledged")
    got = carol.wait(lambda f: f.get("type") == "msg" and f.get("text") == "hello 9",
                     "carol receives alice's messages", timeout=15)
    check(got is not None, "messages delivered across the gateways")
    bad = alice.post(room, f"this is a {BAD_WORD}")
    check(bad is not None and bad.get("type") == "ack", "the bad message is acknowledged")
    removed = carol.wait(lambda f: f.get("type") == "update" and f.get("room") == room
                         and f.get("op") == "moderate", "the moderated message is removed",
                         timeout=20)
    check(removed is not None, "moderation removed the bad message")
    a = alice.post(dm, "a push for bob")
    check(a is not None and a.get("type") == "ack", "a message to offline bob")
    st, _ = call(T, "POST", f"/rooms/{urllib.parse.quote(room, safe='')}/messages",
                 {"text": "a system message", "cid": unique("sys")})
    check(st in (200, 201), f"a message sent through the server API ({st})")
    if "ok" in hooks:
        check(bool(peers.wait_hooks(hooks["ok"], 1, timeout=30)), "a webhook was delivered")
    if "gone" in hooks:
        check(bool(peers.wait_hooks(hooks["gone"], 1, timeout=30, outcome=None)),
              "the 410 endpoint was called (its event is dead-lettered)")
    for rnd in (1, 2):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(delivered_pushes(peers, sub)) < rnd:
            time.sleep(0.5)
        check(len(delivered_pushes(peers, sub)) >= rnd, f"bob's push was delivered (round {rnd})")
        if rnd == 2:
            break
        # The second round, once Prometheus has seen the first (and bob's push window, 5 s
        # by default, is over).
        first_push = time.monotonic()
        hooks_before = len(peers.hooks(hooks["ok"], "delivered")) if "ok" in hooks else 0
        wait_scrapes(prom_url, time.time(), n=1)
        time.sleep(max(0.0, 6.0 - (time.monotonic() - first_push)))
        acks = [alice.post(room, f"round 2, {i}") for i in range(5)]
        acks += [carol.post(room, "round 2 from carol"), alice.post(room, f"again a {BAD_WORD}")]
        a = alice.post(dm, "another push for bob")
        check(all(x and x.get("type") == "ack" for x in acks + [a]), "round 2 acknowledged")
        st, _ = call(T, "GET", "/rooms")
        check(st == 200, f"GET /rooms, round 2 ({st})")
        if "ok" in hooks:
            n = hooks_before + 1
            check(len(peers.wait_hooks(hooks["ok"], n, timeout=30)) >= n,
                  "a webhook was delivered (round 2)")
    return T


# ---- dashboards ----

def prom_regex_escape(v):
    """Grafana's escaping of a value put into a regex matcher of a PromQL string."""
    return re.sub(r"([\\^$*+?.()|{}\[\]])", r"\\\\\1", v)


def variable_values(base, var, tenant_id):
    """The value Grafana would substitute for a query variable (All for multi-value ones)."""
    q = var.get("query")
    if isinstance(q, dict):
        q = q.get("query", "")
    m = re.fullmatch(r"\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*", q or "")
    if not m:
        raise RuntimeError(f"variable {var['name']}: cannot evaluate {q!r}")
    values = sorted(prom_get(base, f"/api/v1/label/{m.group(2)}/values",
                             **{"match[]": m.group(1)}))
    if var.get("multi") or var.get("includeAll"):
        if not values:
            return "", values
        return "(" + "|".join(prom_regex_escape(v) for v in values) + ")", values
    if tenant_id in values:
        return prom_regex_escape(tenant_id), values
    return (prom_regex_escape(values[0]) if values else ""), values


def substitute(expr, values):
    def repl(m):
        name = m.group(1) or m.group(2)
        if name not in values:
            raise RuntimeError(f"unknown variable ${name} in {expr}")
        return values[name]
    return re.sub(r"\$\{([A-Za-z_]\w*)\}|\$([A-Za-z_]\w*)", repl, expr)


def panels_of(dash):
    for p in dash.get("panels", []):
        if p.get("type") == "row":
            yield from p.get("panels", [])
        else:
            yield p


PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
                "unless", "bool", "offset", "inf", "nan"}


def metrics_in(expr):
    """The metric names an expression selects: its identifiers once strings, label matchers,
    ranges and grouping clauses are removed, other than functions and keywords."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    e = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", e):
        n = m.group(1)
        if n.lower() not in PROMQL_WORDS and not re.fullmatch(r"\d.*|e\d+", n):
            names.add(n[:-len("_bucket")] if n.endswith("_bucket") else n)
    return sorted(names)


def bench_run():
    """bench/run smoke against the stack (the issue's "after a bench run"), if chat-bench is
    known; its report's checks (--strict) must pass."""
    bench = os.environ.get("CHAT_BENCH_BIN", "")
    if not bench:
        print("# CHAT_BENCH_BIN not set: no bench run, only the test's own traffic", flush=True)
        return
    source = os.environ.get("CHAT_SOURCE_DIR") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..")
    with tempfile.TemporaryDirectory() as out:
        r = subprocess.run([os.path.join(source, "bench", "run"), "smoke", "--stack-env",
                            os.environ["CHAT_STACK_ENV"], "--bin", bench, "--out", out,
                            "--label", "dashboards", "--strict", "--quiet"],
                           capture_output=True, text=True, timeout=300)
        check(r.returncode == 0, f"bench/run smoke exit {r.returncode} {r.stderr[-2000:]}")


def main():
    prom_url = stack.get("CHAT_PROMETHEUS_URL") or os.environ.get("CHAT_PROMETHEUS_URL", "")
    if not prom_url:
        sys.exit("no CHAT_PROMETHEUS_URL in stack.env: start the stack with scripts/up --monitoring")
    with contextlib.ExitStack() as es:
        wait_scrapes(prom_url, time.time(), n=1)  # counters seen before the traffic moves them
        start = time.time()
        bench_run()
        T = traffic(es, prom_url)  # the clients stay connected until the queries are done
        wait_scrapes(prom_url, time.time(), n=2)
        # $__rate_interval: Grafana's for a 1h range on a 15s scrape is 1m; here at least 1m
        # and long enough to cover the traffic on a slow machine.
        window = f"{max(60, int(time.time() - start) + 15)}s"
        known = set(prom_get(prom_url, "/api/v1/label/__name__/values"))
        files = sorted(glob.glob(os.path.join(DASHBOARDS, "*.json")))
        check(len(files) > 0, f"dashboards found in {DASHBOARDS} ({len(files)})")
        empty, total, empty_queries = [], 0, 0
        for path in files:
            with open(path, encoding="utf-8") as f:
                dash = json.load(f)
            title = dash.get("title", os.path.basename(path))
            values = {"__rate_interval": window, "__interval": window, "__range": window,
                      "datasource": ""}
            for var in dash.get("templating", {}).get("list", []):
                if var.get("type") == "query":
                    values[var["name"]], found = variable_values(prom_url, var, T.id)
                    if not found:
                        empty.append(f"{title} / variable ${var['name']}: "
                                     f"{var.get('query')} has no values")
            for panel in panels_of(dash):
                for t in panel.get("targets", []):
                    total += 1
                    expr = substitute(t.get("expr", ""), values)
                    res = prom_get(prom_url, "/api/v1/query", query=expr)
                    samples = res["result"] if res["resultType"] in ("vector", "matrix") \
                        else [{"value": res["result"]}]
                    has = any(not math.isnan(float(s["value"][1])) for s in samples
                              if "value" in s) or any(
                        not math.isnan(float(v[1])) for s in samples for v in s.get("values", []))
                    if not has:
                        empty_queries += 1
                        missing = [m for m in metrics_in(t.get("expr", ""))
                                   if not any(k == m or k.startswith(m + "_") for k in known)]
                        why = f" [never exposed: {', '.join(missing)}]" if missing else \
                            (" [only NaN]" if samples else "")
                        empty.append(f"{title} / {panel.get('title')} / {t.get('refId')}: "
                                     f"{t.get('expr')}{why}")
        for e in empty:
            print("# empty: " + e)
        check(not empty, f"every query of every dashboard returns data ({total - empty_queries} "
                         f"of {total} queries with data, {empty_queries} empty, "
                         f"{len(empty) - empty_queries} variables without values)")
    finish()


if __name__ == "__main__":
    main()
