"""The api's limits against slow and greedy clients (README, "Limits of the edge"), on an api
of the test's own with CHAT_API_PER_IP_MAX=5 and CHAT_API_IDLE_TIMEOUT=3s:

- five silent connections from 127.0.0.2 are held, the sixth from that address is closed at
  once, while a call from 127.0.0.1 is answered as usual;
- the silent ones are closed after about 3 s;
- a 64 KiB request head gets 431."""
import os
import socket
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from api_client import server_token, stack_load, tenant_create, unique  # noqa: E402
from checks import check, finish  # noqa: E402
from own_gateway import OwnApi  # noqa: E402

stack = stack_load()
API_BIN = os.path.join(stack["CHAT_BUILD_DIR"], "services", "api", "chat-api")
PER_IP = 5
IDLE_S = 3
ATTACKER = "127.0.0.2"


def closed_within(s, seconds):
    """Seconds until the peer closed s, or None if it is still open after seconds."""
    t0 = time.monotonic()
    s.settimeout(seconds)
    try:
        while s.recv(4096):
            pass
        return time.monotonic() - t0
    except socket.timeout:
        return None
    except OSError:
        return time.monotonic() - t0


def attacker(port):
    s = socket.socket()
    s.bind((ATTACKER, 0))
    s.connect(("127.0.0.1", port))
    return s


def main():
    tenant, secret = tenant_create(stack)
    logs = os.path.join(stack["CHAT_STACK_DIR"], "logs", f"test-117-{os.getpid()}")
    os.makedirs(logs, exist_ok=True)
    api = OwnApi(stack, logs, unique("api-edge"),
                 {"CHAT_API_PER_IP_MAX": str(PER_IP), "CHAT_API_IDLE_TIMEOUT": f"{IDLE_S}s"})
    port = api.port
    try:
        held = [attacker(port) for _ in range(PER_IP)]
        t0 = time.monotonic()
        extra = attacker(port)
        took = closed_within(extra, 2)
        check(took is not None and took < 1,
              f"connection {PER_IP + 1} from one address closed at once: {took}")
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/users/{unique('u')}/rooms",
            headers={"Authorization": "Bearer " + server_token(tenant, secret)})
        with urllib.request.urlopen(req, timeout=10) as r:
            check(r.status == 200, f"meanwhile another address is served: {r.status}")
        times = [t for t in (closed_within(s, IDLE_S + 5) for s in held) if t is not None]
        spent = time.monotonic() - t0
        check(len(times) == PER_IP and IDLE_S - 0.5 <= spent < IDLE_S + 4,
              f"the silent connections are closed after about {IDLE_S} s: {len(times)} of "
              f"{PER_IP}, all within {spent:.1f} s")
        for s in held + [extra]:
            s.close()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /v1/rooms HTTP/1.1\r\nHost: x\r\n" +
                      (b"X-Filler: " + b"a" * 1000 + b"\r\n") * 64 + b"\r\n")
            status = s.recv(200).split(b"\r\n", 1)[0].decode(errors="replace")
        check(" 431 " in status, f"a 64 KiB request head gets 431: {status!r}")
        again = attacker(port)
        again.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = again.recv(200).split(b"\r\n", 1)[0].decode(errors="replace")
        again.close()
        check(answer.startswith("HTTP/1.1 "), f"the address is served again once its "
              f"connections closed: {answer!r}")
    finally:
        rc = api.stop()
        check(rc == 0, f"the api stops cleanly ({rc})")
    finish()


if __name__ == "__main__":
    main()
