"""The gateway's connection metrics (docs/metrics.md, "Gateway") against a gateway of the
stack: after a session that authenticates, joins, sends (ack and delivery of its own message)
and closes with 1000, a bad token (error, close 4001) and a client that upgrades and drops the
TCP connection without a word (no close frame: 1006), /metrics shows each counted:
connects_total by result, disconnects_total by close code, frames_sent_total by type, the
send->ack and ts->deliver histograms, and the test tenant's open connections (its own label,
or _other once the gateway's tenant slots are taken). Other tests may share the gateway, so
every check is on an increase of at least what this test caused.
"""
import contextlib
import json
import os
import socket
import sys
import time
import types
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from api_client import stack_load, tenant_create, unique, user_token  # noqa: E402
from checks import check, finish  # noqa: E402
from checks import scrape as scrape_metrics  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.sync.client import connect  # noqa: E402
from ws_client import Client  # noqa: E402

stack = stack_load()
WS_URL = stack["CHAT_GATEWAY_URLS"].split(",")[0]
OPS = stack["CHAT_OPS_GATEWAYS"].split(",")[0]
TENANTS_MAX = 20  # the gateway's CHAT_METRICS_TENANTS_MAX (default; scripts/up keeps it)


def scrape():
    """{series (name and labels as written): value} of the gateway's /metrics."""
    return scrape_metrics(OPS)


def wait_for(pred, timeout=10.0):
    """The first scrape pred accepts (or the last one after timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        m = scrape()
        if pred(m) or time.monotonic() > deadline:
            return m
        time.sleep(0.1)


def delta(before, after, series):
    return after.get(series, 0.0) - before.get(series, 0.0)


def tenant_series(m):
    return {k: v for k, v in m.items() if k.startswith("chat_gateway_tenant_connections{")}


def check_tenant_label(m, tenant, want):
    """The tenant's open connections: on its own label if it has one; otherwise every slot is
    taken by other tenants and _other holds at least this many."""
    own = f'chat_gateway_tenant_connections{{tenant="{tenant}"}}'
    series = tenant_series(m)
    if own in series:
        check(series[own] == want, f"tenant_connections of the test tenant is {want}: "
                                   f"{series[own]}")
        return
    named = [k for k in series if 'tenant="_other"' not in k]
    other = series.get('chat_gateway_tenant_connections{tenant="_other"}', 0)
    check(len(named) >= TENANTS_MAX and other >= want,
          f"the test tenant is counted under _other because {len(named)} tenants took the "
          f"slots ({other} under _other)")


def raw_drop(url):
    """Upgrades to a WebSocket, then closes the TCP connection without a close frame."""
    u = urllib.parse.urlsplit(url)
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:
        s.sendall((f"GET {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = s.recv(4096)
        check(head.startswith(b"HTTP/1.1 101"), f"raw upgrade accepted: {head[:40]!r}")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


def bad_token(url, tenant):
    """Auth with a token signed by the wrong secret: error unauthorized, close 4001."""
    with connect(url, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "auth", "token": user_token(tenant, "not-the-secret", "eve")}))
        f = json.loads(ws.recv(timeout=10))
        check(f.get("type") == "error" and f.get("code") == "unauthorized",
              f"bad token refused: {f}")
        try:
            ws.recv(timeout=10)
        except ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd is not None else None
            check(code == 4001, f"bad token closed with 4001: {code}")


def main():
    tid, secret = tenant_create(stack)
    tenant = types.SimpleNamespace(id=tid, secret=secret)
    room = unique("metrics")
    before = scrape()
    for k in ("connects_total", "disconnects_total", "frames_sent_total"):
        check(any(s.startswith(f"chat_gateway_{k}{{") for s in before),
              f"chat_gateway_{k} has its series before any event")

    with contextlib.ExitStack() as es:
        c = Client(es, tenant, "alice", WS_URL)
        c.join(room)
        a = c.post(room, "hello metrics")
        check(a is not None and a["type"] == "ack", f"send acknowledged: {a}")
        msg = c.wait(lambda f: f.get("type") == "msg" and f.get("room") == room, "own msg")
        check(msg is not None, "own message delivered")
        during = wait_for(lambda m: delta(before, m, "chat_gateway_deliver_seconds_count") >= 1)
        check_tenant_label(during, tid, 1)
        c.ws.close(1000)

    bad_token(WS_URL, tid)
    raw_drop(WS_URL)

    def done(m):
        return (delta(before, m, 'chat_gateway_disconnects_total{code="1000"}') >= 1 and
                delta(before, m, 'chat_gateway_disconnects_total{code="4001"}') >= 1 and
                delta(before, m, 'chat_gateway_disconnects_total{code="1006"}') >= 1)

    after = wait_for(done)
    for series, n in (
            ('chat_gateway_connects_total{result="welcome"}', 1),
            ('chat_gateway_connects_total{result="auth_failed"}', 2),  # bad token, dropped
            ('chat_gateway_disconnects_total{code="1000"}', 1),
            ('chat_gateway_disconnects_total{code="4001"}', 1),
            ('chat_gateway_disconnects_total{code="1006"}', 1),
            ('chat_gateway_frames_sent_total{type="welcome"}', 1),
            ('chat_gateway_frames_sent_total{type="joined"}', 1),
            ('chat_gateway_frames_sent_total{type="ack"}', 1),
            ('chat_gateway_frames_sent_total{type="message"}', 1),
            ('chat_gateway_frames_sent_total{type="error"}', 1),
            ("chat_gateway_send_ack_seconds_count", 1),
            ("chat_gateway_deliver_seconds_count", 1)):
        d = delta(before, after, series)
        check(d >= n, f"{series} increased by at least {n}: {d:g}")
    # The sum over close codes and over results moved together with the connections made.
    closes = sum(delta(before, after, k) for k in after
                 if k.startswith("chat_gateway_disconnects_total{"))
    starts = sum(delta(before, after, k) for k in after
                 if k.startswith("chat_gateway_connects_total{"))
    check(closes >= 3 and starts >= 3, f"connects ({starts:g}) and disconnects ({closes:g}) "
                                       "count every connection")
    ack_sum = delta(before, after, "chat_gateway_send_ack_seconds_sum")
    check(0 < ack_sum < 15, f"send->ack time measured: {ack_sum:.4f} s")
    check_tenant_label(after, tid, 0)
    check(after.get("chat_gateway_draining") == 0, "the gateway is not draining")
    finish()


if __name__ == "__main__":
    main()
