"""The notify tests' handle on the third-party peers (tests/support/peers.py: push service,
webhook receiver, SMTP sink): either the ones the stack runs (`scripts/up --test-peers` writes
CHAT_PEERS_* to stack.env; `Peers.from_stack()`), or an instance of its own on free ports
(`with Peers.start() as peers:`). Standard library only, over the peers' control API."""

import contextlib
import json
import os
import selectors
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


class PeersError(Exception):
    pass


class Peers:
    """The peers at control_url (and the listeners its /healthz names)."""

    def __init__(self, control_url, proc=None):
        self.control_url = control_url.rstrip("/")
        self.proc = proc
        health = self._call("GET", "/healthz")
        self.push_url = health["push"]        # origin of the subscriptions' endpoints
        self.webhook_url = health["webhook"]  # base of hook_url()
        self.smtp_url = health["smtp"]        # smtp://host:port, for CHAT_SMTP_URL

    # ---- where they are ----

    @classmethod
    def from_stack(cls, stack=None):
        """The stack's peers: stack is the dict of stack.env (api_client.stack_load()), read
        here when not given. PeersError if the stack runs without --test-peers."""
        if stack is None:
            sys.path.insert(0, HERE)
            from api_client import stack_load
            stack = stack_load()
        url = stack.get("CHAT_PEERS_CONTROL_URL")
        if not url:
            raise PeersError("stack.env has no CHAT_PEERS_CONTROL_URL: the stack runs without "
                             "the test peers (scripts/up --test-peers)")
        return cls(url)

    @classmethod
    @contextlib.contextmanager
    def start(cls, host="127.0.0.1", python=None, timeout=20, log=None):
        """Runs peers.py on free ports of host for the with block, then stops it. python:
        the interpreter (default: this one); log: a file for its output (default: stderr)."""
        cmd = [python or sys.executable, os.path.join(HERE, "peers.py"), "--host", host,
               "--push-port", "0", "--webhook-port", "0", "--smtp-port", "0",
               "--control-port", "0"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log or sys.stderr,
                                text=True, env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
        try:
            line = _readline(proc, timeout)
            try:
                ready = json.loads(line)
            except ValueError:
                ready = {}
            if not ready.get("ready"):
                raise PeersError(f"peers.py did not start (exit {proc.poll()}): {line!r}")
            # Its request log goes on to stdout: keep reading it so that the pipe never fills.
            threading.Thread(target=_drain, args=(proc.stdout, log or sys.stderr), daemon=True).start()
            yield cls(ready["control"], proc)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    # ---- push service ----

    def new_subscription(self, application_server_key=None):
        """A new browser subscription: {id, endpoint, expirationTime, keys: {p256dh, auth}}.
        With application_server_key (base64url), pushes must be signed with that VAPID key."""
        body = {}
        if application_server_key is not None:
            body["application_server_key"] = application_server_key
        return self._call("POST", "/control/subscriptions", body)

    def drop_subscription(self, sub_id):
        """The browser unsubscribed: pushes to it answer 410 from now on."""
        self._call("DELETE", f"/control/subscriptions/{_q(sub_id)}")

    def set_fail(self, sub_id, status, count=1, retry_after=None):
        """The next count pushes to sub_id (-1: all) answer status (Retry-After if given)."""
        body = {"status": status, "count": count}
        if retry_after is not None:
            body["retry_after"] = retry_after
        self._call("POST", f"/control/subscriptions/{_q(sub_id)}/fail", body)

    def push_attempts(self, sub_id=None, outcome=None):
        """Every push request recorded (of sub_id), whatever its outcome, oldest first."""
        return self._call("GET", "/control/pushes" + _query(sub=sub_id, outcome=outcome))

    def pushes(self, sub_id):
        """The pushes delivered (201) to sub_id, oldest first."""
        return self.push_attempts(sub_id, "delivered")

    def push_refusals(self, sub_id=None):
        """The pushes refused for bad VAPID, headers or encryption (should be none)."""
        return self.push_attempts(sub_id, "refused")

    def wait_pushes(self, sub_id, n, timeout=15):
        """The delivered pushes of sub_id once there are n (or what there is at timeout)."""
        return _wait(lambda: self.pushes(sub_id), n, timeout)

    def clear_pushes(self, sub_id=None):
        self._call("DELETE", "/control/pushes" + _query(sub=sub_id))

    # ---- webhook receiver ----

    def hook_url(self, name):
        """The URL to register as a webhook endpoint for name."""
        return f"{self.webhook_url}/hooks/{_q(name)}"

    def set_hook(self, name, secrets, fail=None):
        """The secrets ("whsec_...") the endpoint name verifies with, and an optional fault
        {status, count, retry_after?} (count -1: all)."""
        body = {"secrets": list(secrets)}
        if fail is not None:
            body["fail"] = fail
        self._call("PUT", f"/control/hooks/{_q(name)}", body)

    def hooks(self, name, outcome=None):
        """The deliveries to endpoint name, whatever their outcome (or of that outcome)."""
        return self._call("GET", "/control/hooks" + _query(name=name, outcome=outcome))

    def wait_hooks(self, name, n, timeout=15, outcome="delivered"):
        return _wait(lambda: self.hooks(name, outcome), n, timeout)

    def clear_hooks(self, name=None):
        self._call("DELETE", "/control/hooks" + _query(name=name))

    # ---- SMTP sink ----

    def mails(self, to=None):
        """The mails received (for envelope recipient to), oldest first."""
        return self._call("GET", "/control/mails" + _query(to=to))

    def wait_mails(self, to, n=1, timeout=15):
        return _wait(lambda: self.mails(to), n, timeout)

    def clear_mails(self):
        self._call("DELETE", "/control/mails")

    # ---- plumbing ----

    def _call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(self.control_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            raise PeersError(f"{method} {path}: {e.code} {e.read().decode('utf-8', 'replace')}")
        except OSError as e:
            raise PeersError(f"{method} {self.control_url}{path}: {e}") from None
        return json.loads(raw) if raw else None


def _q(s):
    return urllib.parse.quote(s, safe="")


def _query(**kw):
    kw = {k: v for k, v in kw.items() if v is not None}
    return "?" + urllib.parse.urlencode(kw) if kw else ""


def _wait(get, n, timeout):
    deadline = time.time() + timeout
    while True:
        got = get()
        if len(got) >= n or time.time() >= deadline:
            return got
        time.sleep(0.1)


def _readline(proc, timeout):
    """The first line proc prints, waiting at most timeout seconds."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    if not sel.select(timeout):
        raise PeersError(f"peers.py said nothing in {timeout}s")
    return proc.stdout.readline()


def _drain(f, log):
    for line in f:
        log.write(line)
        log.flush()
