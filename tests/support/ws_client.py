"""A WebSocket client of the chat protocol for the Python tests: one authenticated session
that keeps the frames it has not been asked for, so a test can wait for one kind of frame
without losing the others."""
import json
import time

from api_client import user_token
from websockets.sync.client import connect


class Client:
    """One authenticated WebSocket session; frames not yet waited for are kept."""

    def __init__(self, stack_, tenant, user, url):
        self.user = user
        self.ws = stack_.enter_context(connect(url, open_timeout=10, max_size=None))
        self.ws.send(json.dumps({"type": "auth", "token": user_token(tenant.id, tenant.secret,
                                                                     user)}))
        self.pending = []
        w = self.wait(lambda f: f.get("type") in ("welcome", "error"), "welcome")
        assert w is not None and w["type"] == "welcome", f"auth of {user}: {w}"
        self.n = 0

    def send(self, frame):
        self.ws.send(json.dumps(frame))

    def wait(self, pred, what, timeout=10.0):
        """The first frame (kept or new) that pred accepts, with its arrival time; None after
        timeout."""
        for i, (f, t) in enumerate(self.pending):
            if pred(f):
                del self.pending[i]
                f["_at"] = t
                return f
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                raw = self.ws.recv(timeout=left)
            except TimeoutError:
                return None
            f = json.loads(raw)
            now = time.monotonic()
            if pred(f):
                f["_at"] = now
                return f
            self.pending.append((f, now))

    def drain(self, seconds):
        """Everything that arrives within seconds (and what was kept)."""
        out = [f for f, _ in self.pending]
        self.pending = []
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            try:
                out.append(json.loads(self.ws.recv(timeout=left)))
            except TimeoutError:
                return out

    def rid(self):
        self.n += 1
        return f"{self.user}-{self.n}"

    def join(self, room, **extra):
        rid = self.rid()
        self.send(dict({"type": "join", "room": room, "rid": rid}, **extra))
        f = self.wait(lambda f: f.get("rid") == rid and f.get("type") in ("joined", "error"),
                      f"join {room}")
        assert f is not None and f["type"] == "joined", f"{self.user} join {room}: {f}"
        return f

    def post(self, room, text, cid=None):
        """Sends and waits for the answer (ack or error) about cid."""
        cid = cid or self.rid()
        self.send({"type": "send", "room": room, "text": text, "cid": cid})
        return self.wait(lambda f: f.get("cid") == cid and f.get("type") in ("ack", "error"),
                         f"answer to {cid}", timeout=15)
