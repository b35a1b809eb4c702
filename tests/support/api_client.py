"""What the server API's Python tests share: the fixture's stack (stack.env), tenants made with
chat-admin, HS256 tokens (server and user) made here with hmac, and an HTTP client that
records every answer by (method, path template, status) and checks it against
proto/openapi.yaml: the body against the operation's schema, X-Request-Id, Retry-After,
the error body. Standard library plus jsonschema and PyYAML (the tests' virtualenv)."""

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import jsonschema
import yaml


# ---- the stack ----

def _unquote(v):
    """One level of the quoting scripts/up writes ('value' with '\\'' for a quote)."""
    if len(v) >= 2 and v[0] == "'" and v[-1] == "'":
        return v[1:-1].replace("'\\''", "'")
    if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
        return v[1:-1]
    return v


def stack_load():
    """The fixture's stack.env as a dict (the process environment wins, as in stack.c).
    Exits 2 when run outside ctest: integration tests need the fixture."""
    path = os.environ.get("CHAT_STACK_ENV")
    if not path:
        print("CHAT_STACK_ENV is not set: run this test through ctest", file=sys.stderr)
        sys.exit(2)
    env = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\r\n")
                if not line or line.startswith("#") or "=" not in line:
                    continue
                key, value = line.split("=", 1)
                if key.startswith("export "):
                    key = key[7:]
                env[key] = _unquote(value)
    except OSError as e:
        print(f"cannot read {path}: the stack fixture did not start ({e})", file=sys.stderr)
        sys.exit(2)
    for key in list(env):
        if key in os.environ:
            env[key] = os.environ[key]
    for key in ("CHAT_BUILD_DIR", "CHAT_SOURCE_DIR"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def unique(prefix):
    """A name that does not collide between runs or tests sharing one stack."""
    return f"{prefix}-{os.getpid()}-{secrets.token_hex(3)}"


def tenant_create(stack, tenant=None):
    """Creates a tenant with a fresh secret through `chat-admin tenant put`. Returns
    (tenant, secret)."""
    tenant = tenant or unique("tenant")
    secret = secrets.token_hex(16)
    admin = os.path.join(stack["CHAT_BUILD_DIR"], "tools", "chat-admin", "chat-admin")
    env = dict(os.environ)
    env.update(stack)
    r = subprocess.run([admin, "tenant", "put", tenant, secret], env=env,
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"chat-admin tenant put {tenant} failed ({r.returncode}): "
                           f"{r.stderr.strip()}")
    return tenant, secret


# ---- tokens ----

def _b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwt_sign(claims, secret):
    """An HS256 JWT of claims."""
    head = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64url(sig)}"


def server_token(tenant, secret, ttl=240, iat=None, **extra):
    """A server token: tid, scope "server", iat, exp = iat + ttl (at most 300 is valid)."""
    iat = int(time.time()) if iat is None else iat
    claims = {"tid": tenant, "scope": "server", "iat": iat, "exp": iat + ttl}
    claims.update(extra)
    return jwt_sign(claims, secret)


def user_token(tenant, secret, user, ttl=600):
    """A user's token, as a tenant's backend signs it for a browser."""
    now = int(time.time())
    return jwt_sign({"tid": tenant, "sub": user, "iat": now, "exp": now + ttl}, secret)


class Tenant:
    """A tenant of the stack: its id, secret, and a fresh server token on every use."""

    def __init__(self, stack, tenant=None):
        self.id, self.secret = tenant_create(stack, tenant)

    def token(self):
        return server_token(self.id, self.secret)


def api_base(stack):
    """The server API's base URL, ending in /v1."""
    url = stack["CHAT_API_URL"].rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


def call_json(base, tenant, method, path, body=None, query=None):
    """(status, parsed JSON or raw bytes) of one call with a fresh server token of tenant."""
    url = base + path + ("?" + urllib.parse.urlencode(query) if query else "")
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {tenant.token()}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw


# ---- the contract ----

class Contract:
    """proto/openapi.yaml: path templates, and each operation's documented statuses and
    response schemas."""

    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.doc = yaml.safe_load(f)
        self.base = self.doc["servers"][0]["url"].rstrip("/")
        self.templates = []  # (regex, template)
        for tpl in self.doc["paths"]:
            rx = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(tpl)) + "$"
            self.templates.append((re.compile(rx), tpl))
        # Longer literal paths first: /users/{user}/rooms before /users/{user}.
        self.templates.sort(key=lambda t: -len(t[1]))

    def deref(self, node):
        while isinstance(node, dict) and "$ref" in node:
            target = self.doc
            for part in node["$ref"][2:].split("/"):
                target = target[part]
            node = target
        return node

    def template_of(self, path):
        """The path template a request path (under the base, without the query) matches."""
        for rx, tpl in self.templates:
            if rx.match(path):
                return tpl
        return None

    def operations(self):
        """(METHOD, template) of every documented operation."""
        for tpl, item in self.doc["paths"].items():
            for method in item:
                if method in ("get", "post", "put", "patch", "delete"):
                    yield method.upper(), tpl

    def operation(self, method, tpl):
        return self.doc["paths"][tpl].get(method.lower())

    def statuses(self, method, tpl):
        return {int(c) for c in self.operation(method, tpl)["responses"]}

    def response(self, method, tpl, status):
        op = self.operation(method, tpl)
        resp = op["responses"].get(str(status))
        return self.deref(resp) if resp is not None else None

    def validate(self, instance, schema):
        """Raises jsonschema.ValidationError if instance does not match schema (a schema of
        the document, whose local $refs resolve against the document)."""
        root = dict(schema)
        root["components"] = self.doc["components"]
        jsonschema.Draft202012Validator(root).validate(instance)


# ---- the client ----

class Answer:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers  # lower-case names
        self.raw = raw
        try:
            self.json = json.loads(raw) if raw else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return f"{self.status} {self.raw[:300]!r}"


class Api:
    """HTTP calls to the api; every answer to a documented operation is recorded and checked
    against the contract (problems collect in self.violations)."""

    def __init__(self, url, contract):
        u = urllib.parse.urlsplit(url)
        self.host = u.hostname
        self.port = u.port or 80
        self.prefix = u.path.rstrip("/")  # CHAT_API_URL may or may not end in /v1
        if self.prefix.endswith(contract.base):
            self.prefix = self.prefix[: -len(contract.base)]
        self.contract = contract
        self.seen = set()  # (METHOD, template, status)
        self.violations = []
        self.calls = 0
        self.request_ids = {}  # X-Request-Id -> the first call that carried it

    def call(self, method, path, token=None, body=None, raw=None, query=None, headers=None,
             content_type="application/json", timeout=30):
        """method on base + path (path under /v1, params already quoted). body is JSON-encoded
        unless raw (bytes) is given. Returns an Answer."""
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        data = None
        if raw is not None:
            data = raw
        elif body is not None:
            data = json.dumps(body).encode()
        if data is not None and content_type is not None:
            hdrs["Content-Type"] = content_type
        target = self.prefix + self.contract.base + path
        if query:
            target += "?" + urllib.parse.urlencode(query)
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.putrequest(method, target)
            for k, v in hdrs.items():
                conn.putheader(k, v)
            if data is not None:
                conn.putheader("Content-Length", str(len(data)))
            conn.endheaders()
            if data is not None:
                try:
                    for i in range(0, len(data), 65536):
                        conn.send(data[i:i + 65536])
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the service answered (413) without reading it all
            r = conn.getresponse()
            answer = Answer(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()
        self.calls += 1
        self.check(method, path, answer)
        return answer

    def check(self, method, path, a):
        """Records a and checks it against the contract."""
        where = f"{method} {path} -> {a.status}"
        rid = a.headers.get("x-request-id")
        if not rid:
            self.violations.append(f"{where}: no X-Request-Id")
        elif rid in self.request_ids:
            self.violations.append(f"{where}: X-Request-Id {rid} again (first: "
                                   f"{self.request_ids[rid]})")
        else:
            self.request_ids[rid] = where
        tpl = self.contract.template_of(path.split("?")[0])
        if tpl is None or self.contract.operation(method, tpl) is None:
            return  # not a documented operation (405, unknown paths): only the header
        self.seen.add((method, tpl, a.status))
        resp = self.contract.response(method, tpl, a.status)
        if resp is None:
            self.violations.append(f"{where}: status not documented for {method} {tpl} "
                                   f"({a.raw[:200]!r})")
            return
        for name, h in resp.get("headers", {}).items():
            h = self.contract.deref(h)
            value = a.headers.get(name.lower())
            if value is None:
                if h.get("required"):
                    self.violations.append(f"{where}: no {name} header")
                continue
            if h.get("schema", {}).get("type") == "integer":
                if not re.fullmatch(r"[0-9]+", value) or int(value) < h["schema"].get("minimum", 0):
                    self.violations.append(f"{where}: {name}: {value!r} is not as documented")
        content = resp.get("content")
        if content is None:
            if a.raw:
                self.violations.append(f"{where}: a body where none is documented: {a.raw[:200]!r}")
            return
        ctype = a.headers.get("content-type", "")
        if not ctype.startswith("application/json"):
            self.violations.append(f"{where}: Content-Type {ctype!r}, not application/json")
        if a.json is None:
            self.violations.append(f"{where}: the body is not JSON: {a.raw[:200]!r}")
            return
        try:
            self.contract.validate(a.json, content["application/json"]["schema"])
        except jsonschema.ValidationError as e:
            self.violations.append(f"{where}: body does not match the schema: {e.message} at "
                                   f"{list(e.absolute_path)} in {a.raw[:300]!r}")
            return
        if a.status >= 400:
            err = a.json["error"]
            if err["status"] != a.status:
                self.violations.append(f"{where}: error.status {err['status']}")
            if err["request_id"] != a.headers.get("x-request-id"):
                self.violations.append(f"{where}: error.request_id differs from X-Request-Id")


def q(segment):
    """A path segment, percent-encoded."""
    return urllib.parse.quote(segment, safe="")
