"""The gateway's HTTP side (docs/widget.md, "What the gateway serves" and "The demo"), against
the stack's gateways, which scripts/up starts with the build's widget (CHAT_WIDGET_DIR) and
the demo (CHAT_DEMO_*), and against a gateway of this test's own, started without the demo
and with a widget directory of large files:

- each widget file: GET and HEAD with the documented headers, the body byte for byte the
  build's file, ETag = quoted first 32 hex of SHA-256, 304 on If-None-Match (also weak and in
  a list), a query string ignored, POST -> 405 with Allow; integrity.json is the sha384 of the
  bytes served (computed here); unknown paths and traversal attempts -> 404;
- the demo: its page, a token for alice that verifies with CHAT_DEMO_SECRET (tid, sub, name,
  exp checked here) and opens a real WebSocket session as alice of the demo tenant, bad users
  -> 400, the config lists the stack's gateways; the start-up log says once that the demo is
  on and never holds the secret;
- the own gateway: the demo paths are unknown URLs (404 like any other); megabytes served
  intact to several clients at once and to a slow reader, while a WebSocket client still
  authenticates at once; a client leaving mid-body changes nothing; it stops cleanly.
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from api_client import stack_load, user_token  # noqa: E402
from checks import check, finish  # noqa: E402
from own_gateway import OwnGateway  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

stack = stack_load()
BUILD = stack["CHAT_BUILD_DIR"]
WIDGET_DIR = os.path.join(BUILD, "widget")
GATEWAY_BIN = os.path.join(BUILD, "services", "gateway", "chat-gateway")
WS_URLS = stack["CHAT_GATEWAY_URLS"].split(",")
HOSTS = [urllib.parse.urlsplit(u).netloc for u in WS_URLS]
DEMO_TENANT = stack["CHAT_DEMO_TENANT"]
DEMO_SECRET = stack["CHAT_DEMO_SECRET"]
OWN_INDEX = "13"  # a partition of chat.deliver the stack's gateways (and other tests) do not use

JS = "text/javascript; charset=utf-8"
FILES = {  # path -> (file in the build, content-type)
    "/v1/widget.js": ("widget.js", JS),
    "/v1/chat-sdk.mjs": ("chat-sdk.mjs", JS),
    "/v1/chat-sdk.d.ts": ("chat-sdk.d.ts", "application/typescript; charset=utf-8"),
    "/v1/chat-sw.js": ("chat-sw.js", JS),
}
SRI_FILES = ("widget.js", "chat-sdk.mjs", "chat-sw.js")
TRAVERSALS = ["/v1/../../../../etc/passwd", "/v1/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
              "/v1/widget.js/../../../etc/passwd", "/v1/..%2f..%2f..%2fetc%2fpasswd",
              "/v1/demo/..%2f..%2f..%2fetc%2fpasswd", "//etc/passwd", "/v1/widget.js/",
              "/v1/demo/token/../../../etc/passwd", "/v1/CMakeCache.txt", "/v1/types/",
              "/v1/widget/widget.js", "/v1/integrity.json/..%2f..%2fCMakeCache.txt"]


def get(host, method, path, headers=None, body=None):
    """(status, lower-cased headers, body) of one request on a fresh connection."""
    conn = http.client.HTTPConnection(host, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def etag_of(data):
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def sri_of(data):
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def read_file(directory, name):
    with open(os.path.join(directory, name), "rb") as f:
        return f.read()


def common_headers_ok(h):
    return (h.get("access-control-allow-origin") == "*" and
            h.get("x-content-type-options") == "nosniff" and
            h.get("cross-origin-resource-policy") == "cross-origin")


def check_files(host, directory):
    """GET/HEAD/304/query/405 of each widget file of host, against the files of directory."""
    for path, (name, ctype) in FILES.items():
        want = read_file(directory, name)
        tag = etag_of(want)
        s, h, b = get(host, "GET", path)
        check(s == 200 and b == want,
              f"{host} GET {path}: 200 with the build's {len(want)} bytes (got {s}, {len(b)})")
        check(h.get("content-type") == ctype and h.get("content-length") == str(len(want)) and
              h.get("cache-control") == "public, max-age=300" and h.get("etag") == tag and
              common_headers_ok(h), f"{host} GET {path}: headers {h}")
        s, h, b = get(host, "HEAD", path)
        check(s == 200 and b == b"" and h.get("content-length") == str(len(want)) and
              h.get("content-type") == ctype and h.get("etag") == tag and common_headers_ok(h),
              f"{host} HEAD {path}: 200, no body, the GET's headers ({s}, {h})")
        for inm in (tag, "W/" + tag, '"0123", ' + tag, "*"):
            s, h, b = get(host, "GET", path, {"If-None-Match": inm})
            check(s == 304 and b == b"" and h.get("etag") == tag and
                  h.get("cache-control") == "public, max-age=300" and common_headers_ok(h),
                  f"{host} GET {path} If-None-Match {inm}: 304 ({s}, {h})")
        s, _, b = get(host, "GET", path, {"If-None-Match": '"' + "0" * 32 + '"'})
        check(s == 200 and b == want, f"{host} GET {path} with another ETag: 200 and the body")
        s, _, b = get(host, "GET", path + "?v=1&user=x")
        check(s == 200 and b == want, f"{host} GET {path}?v=1: served ({s})")
        s, h, _ = get(host, "POST", path, {"Content-Type": "text/plain"}, b"x=1")
        allow = {m.strip() for m in h.get("allow", "").split(",")}
        check(s == 405 and allow == {"GET", "HEAD"}, f"{host} POST {path}: 405, Allow: GET, HEAD "
              f"({s}, {h.get('allow')})")
        s, h, _ = get(host, "DELETE", path)
        check(s == 405 and "allow" in h, f"{host} DELETE {path}: 405 ({s})")

    # integrity.json: the sha384 of what this gateway serves, computed here.
    s, h, b = get(host, "GET", "/v1/integrity.json")
    check(s == 200 and h.get("content-type") == "application/json" and
          h.get("cache-control") == "no-cache" and common_headers_ok(h),
          f"{host} GET /v1/integrity.json: 200, application/json, no-cache ({s}, {h})")
    try:
        integrity = json.loads(b)
    except ValueError:
        integrity = None
    served = {name: get(host, "GET", "/v1/" + name)[2] for name in SRI_FILES}
    check(integrity == {name: sri_of(served[name]) for name in SRI_FILES},
          f"{host} integrity.json = sha384 of the served bytes: {integrity}")
    s, h, b = get(host, "GET", "/v1/integrity.json", {"If-None-Match": h.get("etag", "none")})
    check(s == 304, f"{host} integrity.json revalidates with its ETag ({s})")
    return integrity


def raw_request(host, path):
    """The status and body of GET path sent exactly as written (no client normalisation);
    (None, b"") if the gateway dropped the connection."""
    h, p = host.rsplit(":", 1)
    with socket.create_connection((h, int(p)), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
    head, _, body = data.partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    return (int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None), body


def check_unknown(host):
    """Unknown paths and traversal attempts: lws's 404 for any unknown URL."""
    s, _, unknown_body = get(host, "GET", "/v1/x.js")
    check(s == 404, f"{host} GET /v1/x.js: 404 ({s})")
    for path in ("/v1/Widget.js", "/v1/widget.jsx", "/widget.js", "/v1/demo.html",
                 "/v1/integrity", "/v1/chat-sdk.d"):
        s, _, b = get(host, "GET", path)
        check(s == 404 and b == unknown_body, f"{host} GET {path}: the unknown URL's 404 ({s})")
    for path in TRAVERSALS:
        s, b = raw_request(host, path)
        check(s == 404 and b"root:" not in b and b"CMAKE" not in b,
              f"{host} GET {path} (as written): 404 ({s})")
    s, b = raw_request(host, "/v1/widget.js%00.txt")
    check(s != 200 and b"use strict" not in b, f"{host} GET /v1/widget.js%00.txt: not served ({s})")
    return unknown_body


def jwt_verify(token, secret):
    """The claims of an HS256 token whose signature verifies with secret, else None."""
    def unb64(x):
        return base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
    try:
        h, p, sig = token.split(".")
        header = json.loads(unb64(h))
        mac = hmac.new(secret.encode(), f"{h}.{p}".encode(), hashlib.sha256).digest()
        if header.get("alg") != "HS256" or not hmac.compare_digest(mac, unb64(sig)):
            return None
        return json.loads(unb64(p))
    except (ValueError, TypeError):
        return None


def welcome_of(url, token):
    """The first frame after auth with token: the welcome (or error) frame."""
    with connect(url, open_timeout=10) as ws:
        ws.send(json.dumps({"type": "auth", "token": token}))
        return json.loads(ws.recv(timeout=10))


def check_demo(host, url):
    want_page = read_file(WIDGET_DIR, "demo.html")
    for path in ("/v1/demo", "/v1/demo/", "/v1/demo?user=alice"):
        s, h, b = get(host, "GET", path)
        check(s == 200 and b == want_page and h.get("content-type") == "text/html; charset=utf-8"
              and h.get("cache-control") == "no-store", f"{host} GET {path}: demo.html, no-store "
              f"({s}, {h})")

    before = int(time.time())
    s, h, b = get(host, "GET", "/v1/demo/token?user=alice")
    after = int(time.time())
    body = json.loads(b) if s == 200 else {}
    check(s == 200 and h.get("content-type") == "application/json" and
          h.get("cache-control") == "no-store" and
          set(body) == {"token", "exp", "user", "tenant"} and body["user"] == "alice" and
          body["tenant"] == DEMO_TENANT, f"{host} demo token for alice: {s} {body}")
    claims = jwt_verify(body.get("token", ""), DEMO_SECRET)
    check(claims is not None, f"{host} the demo token verifies with CHAT_DEMO_SECRET")
    claims = claims or {}
    check(claims.get("tid") == DEMO_TENANT and claims.get("sub") == "alice" and
          claims.get("name") == "Alice", f"{host} claims tid/sub/name: {claims}")
    check(isinstance(claims.get("exp"), int) and before + 3600 <= claims["exp"] <= after + 3600
          and claims["exp"] == body.get("exp"), f"{host} exp = now + 1 h: {claims.get('exp')}")
    check(jwt_verify(body.get("token", ""), DEMO_SECRET + "x") is None,
          f"{host} the demo token does not verify with another secret")
    w = welcome_of(url, body.get("token", ""))
    check(w.get("type") == "welcome" and w.get("user") == "alice" and
          w.get("tenant") == DEMO_TENANT, f"{url}: the demo token authenticates alice: {w}")

    s, _, b = get(host, "GET", "/v1/demo/token?user=bob_-9&x=1")
    claims = jwt_verify(json.loads(b).get("token", ""), DEMO_SECRET) if s == 200 else None
    check(claims is not None and claims.get("sub") == "bob_-9" and claims.get("name") == "Bob_-9",
          f"{host} token for bob_-9 (other query arguments around): {claims}")
    s, _, b = get(host, "GET", "/v1/demo/token?user=" + "a" * 32)
    check(s == 200, f"{host} a 32-character user is a demo user ({s})")
    for q in ("?user=Alice", "?user=", "?user=" + "a" * 33, "?user=al%20ice", "?user=al%2Fice",
              "?user=..%2F..", "?user=al.ice", "?user=%C3%A9", "", "?name=alice"):
        s, h, b = get(host, "GET", "/v1/demo/token" + q)
        try:
            err = json.loads(b).get("error", {})
        except ValueError:
            err = {}
        check(s == 400 and h.get("content-type") == "application/json" and
              err.get("code") == "bad_request" and err.get("status") == 400 and
              err.get("message"), f"{host} demo token{q}: 400 with a JSON error ({s} {b[:120]})")
    s, h, _ = get(host, "POST", "/v1/demo/token?user=alice", body=b"")
    check(s == 405, f"{host} POST /v1/demo/token: 405 ({s})")

    s, h, b = get(host, "GET", "/v1/demo/config")
    config = json.loads(b) if s == 200 else None
    check(s == 200 and h.get("content-type") == "application/json" and
          config == {"tenant": DEMO_TENANT, "gateways": WS_URLS},
          f"{host} demo config lists the stack's gateways: {config}")


def check_start_log():
    """Gateway 0's log: one warn line saying the demo is on; the secret nowhere."""
    path = os.path.join(stack["CHAT_STACK_DIR"], "logs", "gateway-0.log")
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    demo = [line for line in lines if "demo endpoints enabled" in line]
    check(len(demo) == 1 and json.loads(demo[0]).get("level") == "warn",
          f"gateway-0 logs once at warn that the demo is on: {demo}")
    check(not any(DEMO_SECRET in line for line in lines), "gateway-0's log never holds the secret")


def check_help():
    r = subprocess.run([GATEWAY_BIN, "--help"], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, CHAT_DEMO_SECRET="s3cr3t-" + secrets.token_hex(8)))
    out = r.stdout
    check(r.returncode == 0 and all(v in out for v in ("CHAT_WIDGET_DIR", "CHAT_DEMO_TENANT",
                                                       "CHAT_DEMO_SECRET", "CHAT_DEMO_GATEWAYS"))
          and "s3cr3t-" not in out, "--help lists the new variables and never prints the secret")


# ---- a gateway of this test: no demo, large files ----

def big_widget_dir(root):
    """A widget directory whose scripts are large (megabytes of text), beside the build's
    other files."""
    d = os.path.join(root, "widget")
    os.mkdir(d)
    sizes = {"widget.js": 3 * 1024 * 1024 + 7, "chat-sw.js": 100_003, "chat-sdk.mjs": 16_384}
    for name in ("widget.js", "chat-sdk.mjs", "chat-sdk.d.ts", "chat-sw.js", "demo.html"):
        if name in sizes:
            data = base64.b64encode(os.urandom(sizes[name]))[:sizes[name]]
        else:
            data = read_file(WIDGET_DIR, name)
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    return d


def slow_reader(host, path):
    """A socket that asks for path with a small receive buffer and then reads nothing."""
    h, p = host.rsplit(":", 1)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(30)
    s.connect((h, int(p)))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return s


def read_response(s):
    """Reads one response with a content-length from socket s; (status, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    length = int(next(v for k, _, v in (x.partition(":") for x in lines[1:])
                      if k.lower() == "content-length"))
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), body


def check_own_gateway(root):
    d = big_widget_dir(root)
    gw = OwnGateway(stack, GATEWAY_BIN, OWN_INDEX, os.path.join(root, "gateway.log"),
                    {"CHAT_WIDGET_DIR": d})
    try:
        host = gw.host
        _, _, unknown_body = get(host, "GET", "/v1/nothing-here")
        for path in ("/v1/demo/token?user=alice", "/v1/demo", "/v1/demo/", "/v1/demo/config"):
            s, _, b = get(host, "GET", path)
            check(s == 404 and b == unknown_body,
                  f"without CHAT_DEMO_*: GET {path} is the unknown URL's 404 ({s})")
        check("demo endpoints enabled" not in gw.log_text(),
              "without CHAT_DEMO_*: no demo line in the log")
        check_files(host, d)

        big = read_file(d, "widget.js")
        results = [None] * 4

        def fetch(i):
            try:
                results[i] = get(host, "GET", "/v1/widget.js")[2]
            except OSError as e:
                results[i] = e

        slow = slow_reader(host, "/v1/widget.js")
        time.sleep(0.5)  # its socket is full: the gateway waits for it to drain
        threads = [threading.Thread(target=fetch, args=(i,)) for i in range(len(results))]
        for t in threads:
            t.start()
        t0 = time.monotonic()
        w = welcome_of(f"ws://{host}/v1/ws", user_token(DEMO_TENANT, DEMO_SECRET, "slowpoke"))
        waited = time.monotonic() - t0
        check(w.get("type") == "welcome" and waited < 3.0,
              f"a WebSocket client authenticates while megabytes go out ({waited:.2f} s): {w}")
        for t in threads:
            t.join(60)
        check(all(r == big for r in results),
              f"{len(results)} clients at once each get the {len(big)} bytes intact")
        status, body = read_response(slow)
        slow.close()
        check(status == 200 and body == big, f"the slow reader gets them intact ({len(body)})")

        # A client that leaves in the middle of a body.
        h, p = host.rsplit(":", 1)
        for _ in range(3):
            with socket.create_connection((h, int(p)), timeout=10) as s:
                s.sendall(f"GET /v1/widget.js HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                s.recv(20000)
        s, _, b = get(host, "GET", "/v1/widget.js")
        check(s == 200 and b == big, "after clients left mid-body, the next one is served")

        # Keep-alive: several requests on one connection, a refused POST with a body among them.
        conn = http.client.HTTPConnection(host, timeout=30)
        seq = []
        for method, path, body in (("GET", "/v1/chat-sw.js", None),
                                   ("POST", "/v1/widget.js", b"x" * 5000),
                                   ("HEAD", "/v1/widget.js", None),
                                   ("GET", "/v1/integrity.json", None),
                                   ("GET", "/v1/widget.js", None)):
            conn.request(method, path, body=body)
            r = conn.getresponse()
            seq.append((r.status, len(r.read())))
        conn.close()
        check(seq == [(200, 100_003), (405, len(b"method not allowed\n")), (200, 0),
                      (200, seq[3][1]), (200, len(big))],
              f"one keep-alive connection answers a sequence of requests: {seq}")
    finally:
        rc = gw.stop()
    check(rc == 0, f"the own gateway stops cleanly on SIGTERM (exit {rc})")
    errors = [line for line in gw.log_text().splitlines() if '"level":"error"' in line]
    check(not errors, f"the own gateway logged no error: {errors[:3]}")


def main():
    check_help()
    built = json.loads(read_file(WIDGET_DIR, "integrity.json"))
    for host, url in zip(HOSTS, WS_URLS):
        integrity = check_files(host, WIDGET_DIR)
        check(integrity == built, f"{host} integrity.json agrees with the build's")
        check_unknown(host)
        check_demo(host, url)
    check_start_log()
    with tempfile.TemporaryDirectory(prefix="chat-widget-http.") as root:
        check_own_gateway(root)
    finish()


main()
