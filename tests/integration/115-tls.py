"""TLS served by the gateway and the api themselves (CHAT_GATEWAY_TLS_CERT / _KEY,
CHAT_API_TLS_CERT / _KEY): a throw-away CA, an intermediate and two server certificates made
with the openssl command; a gateway and an api of the test's own serve them.

- wss with a client that verifies the CA: a chain file (leaf + intermediate) is served whole,
  and auth, join, send and the message's delivery work over it;
- TLS 1.1 is refused by the server (alert protocol_version);
- SIGHUP reloads: new handshakes get the new certificate (its SHA-256 is checked) while the
  connection made before goes on sending and receiving; a bad pair at a reload (key of
  another certificate) is refused, logged, counted, and the certificate in use stays; files
  that change are reloaded without a signal too (within CHAT_TLS_WATCH_MS, 5 s: a renewed
  Kubernetes Secret);
- HTTPS to the api (a real call with a server token), and its reloads (SIGHUP, files);
- bad files at start (missing file, key not matching) stop either service with a log line
  naming the variable and the reason."""
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from api_client import server_token, stack_load, tenant_create, unique, user_token  # noqa: E402
from checks import check, finish, parse_metrics  # noqa: E402
from own_gateway import OwnApi, OwnGateway, free_port  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

stack = stack_load()
BUILD = stack["CHAT_BUILD_DIR"]
GATEWAY_BIN = os.path.join(BUILD, "services", "gateway", "chat-gateway")
API_BIN = os.path.join(BUILD, "services", "api", "chat-api")
OWN_INDEX = "10"  # a partition of chat.deliver the stack's gateways and other tests do not use


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(d):
    """ca.pem; a.pem (leaf A + intermediate) and a.key; b.pem (leaf B, signed by the CA)
    and b.key. Both leaves are for localhost and 127.0.0.1."""
    with open(os.path.join(d, "leaf.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
                "extendedKeyUsage=serverAuth\n")
    with open(os.path.join(d, "ca.ext"), "w") as f:
        f.write("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=chat test CA", cwd=d)
    openssl("req", *ec, "-keyout", "int.key", "-out", "int.csr", "-subj",
            "/CN=chat test intermediate", cwd=d)
    openssl("x509", "-req", "-in", "int.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "ca.ext", "-out", "int.pem", cwd=d)
    for name, ca in (("a", "int"), ("b", "ca")):
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj",
                f"/CN=localhost {name}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey",
                f"{ca}.key", "-CAcreateserial", "-days", "1", "-extfile", "leaf.ext",
                "-out", f"{name}.leaf.pem", cwd=d)
    with open(os.path.join(d, "a.pem"), "w") as f:
        for part in ("a.leaf.pem", "int.pem"):
            with open(os.path.join(d, part)) as p:
                f.write(p.read())
    shutil.copy(os.path.join(d, "b.leaf.pem"), os.path.join(d, "b.pem"))


def der_sha256(d, pem_name):
    with open(os.path.join(d, pem_name)) as f:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()


def served_sha256(ctx, port):
    """SHA-256 of the leaf a new, verified handshake with 127.0.0.1:port gets."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            return hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()


def install(d, cert, key):
    """The files the services were started with (served.pem / served.key) now hold these."""
    shutil.copy(os.path.join(d, cert), os.path.join(d, "served.pem.tmp"))
    shutil.copy(os.path.join(d, key), os.path.join(d, "served.key.tmp"))
    os.replace(os.path.join(d, "served.pem.tmp"), os.path.join(d, "served.pem"))
    os.replace(os.path.join(d, "served.key.tmp"), os.path.join(d, "served.key"))


def wait_for(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def counter(ops_url, name, label):
    with urllib.request.urlopen(ops_url + "/metrics", timeout=5) as r:
        return parse_metrics(r.read().decode()).get(f'{name}{{{label}}}', 0)


def refused_at_start(binary, env_extra, var, reason, log_path):
    """The service exits non-zero, its log naming var and reason."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_DEMO_")}
    env.update({k: stack[k] for k in ("CHAT_KAFKA_BROKERS", "CHAT_MONGO_URI", "CHAT_REDIS_URL")})
    env.update({"CHAT_OPS_ADDR": "127.0.0.1", "CHAT_OPS_PORT": str(free_port()),
                "CHAT_GATEWAY_INDEX": OWN_INDEX, "CHAT_GATEWAY_ADDR": "127.0.0.1",
                "CHAT_GATEWAY_PORT": str(free_port()), "CHAT_API_ADDR": "127.0.0.1",
                "CHAT_API_PORT": str(free_port()), "CHAT_API_EXPORT_DIR": log_path + ".exports"})
    env.update(env_extra)
    try:
        r = subprocess.run([binary], env=env, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        check(False, f"{os.path.basename(binary)} with {env_extra}: still running after 60 s")
        return
    lines = [json.loads(x) for x in r.stderr.splitlines() + r.stdout.splitlines()
             if x.startswith("{")]
    errs = [x for x in lines if x.get("level") == "error" and x.get("var") == var
            and reason in x.get("reason", "")]
    check(r.returncode != 0 and errs,
          f"{os.path.basename(binary)} refuses {env_extra} at start (exit {r.returncode}), "
          f"logging {var}: {reason!r}: {errs[:1] or (r.stderr + r.stdout)[-600:]}")


def recv_type(ws, kind, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        f = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if f.get("type") in (kind, "error"):
            return f
    return None


def session(stack_, url, ctx, tenant, secret, user, room):
    ws = stack_.enter_context(connect(url, ssl=ctx, open_timeout=10,
                                      server_hostname="localhost"))
    ws.send(json.dumps({"type": "auth", "token": user_token(tenant, secret, user)}))
    check(recv_type(ws, "welcome").get("type") == "welcome", f"{user}: welcome over wss")
    ws.send(json.dumps({"type": "join", "room": room, "rid": "j"}))
    check(recv_type(ws, "joined").get("type") == "joined", f"{user}: joined over wss")
    return ws


def exchange(sender, receiver, cid, text):
    """sender sends; its ack and the message at receiver."""
    sender.send(json.dumps({"type": "send", "room": sender.room, "text": text, "cid": cid}))
    ack = recv_type(sender, "ack")
    check(ack is not None and ack.get("type") == "ack" and ack.get("cid") == cid,
          f"ack of {cid} over wss: {ack}")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        f = recv_type(receiver, "msg", timeout=deadline - time.monotonic())
        if f is not None and f.get("type") == "msg" and f.get("text") == text:
            return True
    check(False, f"{text!r} delivered over wss")
    return False


def tls_versions(port, who, cafile):
    """TLS 1.2 is served; a TLS 1.1 handshake fails on the server's side (the client itself
    would go on)."""
    tls12 = ssl.create_default_context(cafile=cafile)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with tls12.wrap_socket(raw, server_hostname="localhost") as t:
            check(t.version() == "TLSv1.2", f"{who}: TLS 1.2 is served: {t.version()}")
    old11 = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old11.check_hostname = False
    old11.verify_mode = ssl.CERT_NONE
    old11.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old11.minimum_version = old11.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with old11.wrap_socket(raw):
                check(False, f"{who}: TLS 1.1 is refused")
    except ssl.SSLError as e:
        # OpenSSL (gateway) answers with the protocol_version alert; GnuTLS (api) hangs up
        check("PROTOCOL_VERSION" in str(e).upper() or "ALERT" in str(e).upper()
              or isinstance(e, (ssl.SSLEOFError, ssl.SSLZeroReturnError)),
              f"{who}: TLS 1.1 is refused by the server: {e!r}")
    except (ConnectionError, OSError) as e:
        check(True, f"{who}: TLS 1.1 is refused (connection closed: {e})")


def gateway_part(d, ctx, logs):
    tenant, secret = tenant_create(stack)
    room = unique("tls")
    gw = OwnGateway(stack, GATEWAY_BIN, OWN_INDEX, os.path.join(logs, "gateway.log"),
                    {"CHAT_GATEWAY_TLS_CERT": os.path.join(d, "served.pem"),
                     "CHAT_GATEWAY_TLS_KEY": os.path.join(d, "served.key")})
    url = f"wss://localhost:{gw.port}/v1/ws"
    try:
        check(served_sha256(ctx, gw.port) == der_sha256(d, "a.leaf.pem"),
              "the gateway serves certificate A, its intermediate with it (verified by the CA)")
        tls_versions(gw.port, "the gateway", os.path.join(d, "ca.pem"))
        conns = contextlib.ExitStack()
        a = session(conns, url, ctx, tenant, secret, "alice", room)
        b = session(conns, url, ctx, tenant, secret, "bob", room)
        a.room = b.room = room
        exchange(a, b, "c1", "over wss")

        install(d, "b.pem", "b.key")
        gw.proc.send_signal(signal.SIGHUP)
        want_b = der_sha256(d, "b.leaf.pem")
        check(wait_for(lambda: served_sha256(ctx, gw.port) == want_b),
              "after SIGHUP new handshakes get certificate B")
        check(gw.proc.poll() is None, "the gateway runs on after SIGHUP")
        exchange(a, b, "c2", "after the reload")
        exchange(b, a, "c3", "and back")
        check(counter(gw.ops_url(""), "chat_gateway_tls_reloads_total", 'result="ok"') >= 1,
              "the reload is counted (ok)")

        install(d, "a.pem", "b.key")  # the key of another certificate
        gw.proc.send_signal(signal.SIGHUP)
        check(wait_for(lambda: counter(gw.ops_url(""), "chat_gateway_tls_reloads_total",
                                       'result="failed"') >= 1),
              "a bad reload is counted (failed)")
        check(served_sha256(ctx, gw.port) == want_b, "after a bad reload B is still served")
        lines = gw.log_lines()
        check(any(x.get("msg", "").startswith("tls: reload failed") for x in lines) and
              any(x.get("var") == "CHAT_GATEWAY_TLS_KEY" and "does not match" in
                  x.get("reason", "") for x in lines),
              "the bad reload is logged with its variable and reason")
        exchange(a, b, "c4", "after the bad reload")
        install(d, "a.pem", "a.key")  # no signal: the gateway notices the files changed
        want_a = der_sha256(d, "a.leaf.pem")
        check(wait_for(lambda: served_sha256(ctx, gw.port) == want_a, timeout=12),
              "files that changed are reloaded without a signal (A again)")
        exchange(b, a, "c5", "after the files changed")
        conns.close()
    finally:
        check(gw.stop() == 0, "the TLS gateway stops cleanly")
    install(d, "a.pem", "a.key")


def api_part(d, ctx, logs):
    tenant, secret = tenant_create(stack)
    api = OwnApi(stack, logs, unique("api-tls"),
                 {"CHAT_API_TLS_CERT": os.path.join(d, "served.pem"),
                  "CHAT_API_TLS_KEY": os.path.join(d, "served.key")})
    port, proc = api.port, api.proc
    try:
        check(served_sha256(ctx, port) == der_sha256(d, "a.leaf.pem"),
              "the api serves certificate A (verified by the CA)")
        tls_versions(port, "the api", os.path.join(d, "ca.pem"))
        req = urllib.request.Request(
            f"https://localhost:{port}/v1/users/{unique('u')}/rooms",
            headers={"Authorization": "Bearer " + server_token(tenant, secret)})
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            body = json.loads(r.read())
            check(r.status == 200 and "rooms" in body, f"an api call over HTTPS: {body}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/rooms", timeout=5)
            plain = "answered"
        except urllib.error.HTTPError as e:
            plain = f"answered {e.code}"
        except (urllib.error.URLError, OSError) as e:
            plain = f"refused ({e})"
        check(plain.startswith("refused"), f"plain HTTP to the TLS port is not served: {plain}")
        install(d, "b.pem", "b.key")
        proc.send_signal(signal.SIGHUP)
        check(wait_for(lambda: served_sha256(ctx, port) == der_sha256(d, "b.leaf.pem")),
              "after SIGHUP the api serves certificate B")
        install(d, "b.pem", "a.key")
        proc.send_signal(signal.SIGHUP)
        time.sleep(2)
        check(proc.poll() is None and served_sha256(ctx, port) == der_sha256(d, "b.leaf.pem"),
              "after a bad reload the api runs on and still serves B")
        install(d, "a.pem", "a.key")  # no signal
        check(wait_for(lambda: served_sha256(ctx, port) == der_sha256(d, "a.leaf.pem"),
                       timeout=12),
              "files that changed are reloaded by the api without a signal (A again)")
    finally:
        rc = api.stop()
        check(rc == 0, f"the TLS api stops cleanly ({rc})")
    install(d, "a.pem", "a.key")


def main():
    d = tempfile.mkdtemp(prefix="chat-tls-")
    logs = os.path.join(stack["CHAT_STACK_DIR"], "logs", f"test-115-{os.getpid()}")
    os.makedirs(logs, exist_ok=True)
    try:
        make_pki(d)
        install(d, "a.pem", "a.key")
        ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.pem"))
        for binary, cv, kv in ((GATEWAY_BIN, "CHAT_GATEWAY_TLS_CERT", "CHAT_GATEWAY_TLS_KEY"),
                               (API_BIN, "CHAT_API_TLS_CERT", "CHAT_API_TLS_KEY")):
            refused_at_start(binary, {cv: os.path.join(d, "missing.pem"),
                                      kv: os.path.join(d, "a.key")},
                             cv, "No such file", os.path.join(logs, "bad"))
            refused_at_start(binary, {cv: os.path.join(d, "a.pem"),
                                      kv: os.path.join(d, "b.key")},
                             kv, "does not match", os.path.join(logs, "bad"))
            refused_at_start(binary, {cv: os.path.join(d, "a.pem")}, kv, "not set",
                             os.path.join(logs, "bad"))
        gateway_part(d, ctx, logs)
        api_part(d, ctx, logs)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
