"""A gateway or api process of a test's own beside the stack's: the stack's Kafka, MongoDB and
Redis, free ports (a gateway: its own chat.deliver partition, index), its log in a file;
started and waited for (/readyz) in the constructor. Tests that stop a service on purpose
(drain, TLS, limits of the edge) or need a second instance use one so that the shared stack's
stay up."""
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request


def stop_process(proc, timeout=30):
    """SIGTERM, then SIGKILL after timeout s; returns the exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _base_env(stack, drop=()):
    """The environment of a service of the test's own: the test's, without the demo variables
    (and drop), with the stack's Kafka, MongoDB and Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_DEMO_") and k not in drop}
    env.update({k: stack[k] for k in ("CHAT_KAFKA_BROKERS", "CHAT_MONGO_URI", "CHAT_REDIS_URL")})
    return env


class OwnService:
    """A service process started with env, its output in log_path, waited for (/readyz on its
    ops port, 60 s at most; RuntimeError with the log's tail if it is not ready)."""

    def __init__(self, binary, env, log_path, what):
        self.ops = int(env["CHAT_OPS_PORT"])
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen([binary], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with urllib.request.urlopen(self.ops_url("/readyz"), timeout=5) as r:
                    if r.status == 200:
                        return
            except (OSError, urllib.error.HTTPError):
                pass
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"own {what} not ready; log:\n{self.log_text()[-3000:]}")

    def ops_url(self, path):
        return f"http://127.0.0.1:{self.ops}{path}"

    def log_text(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def log_lines(self):
        """The log's JSON lines, parsed."""
        return [json.loads(line) for line in self.log_text().splitlines()
                if line.startswith("{")]

    def stop(self, timeout=30):
        """SIGTERM, then kill after timeout s; returns the exit status."""
        rc = stop_process(self.proc, timeout)
        self.log.close()
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class OwnGateway(OwnService):
    def __init__(self, stack, binary, index, log_path, env_extra=None):
        """stack: stack.env as a dict; binary: chat-gateway; index: its CHAT_GATEWAY_INDEX
        (a partition no other gateway uses); env_extra: more variables (CHAT_WIDGET_DIR,
        CHAT_GATEWAY_DRAIN...). The demo and widget variables of the environment are not
        passed on."""
        self.port, ops = free_port(), free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"ws://{self.host}/v1/ws"
        env = _base_env(stack, drop=("CHAT_WIDGET_DIR",))
        env.update({"CHAT_GATEWAY_INDEX": str(index), "CHAT_GATEWAY_ADDR": "127.0.0.1",
                    "CHAT_GATEWAY_PORT": str(self.port), "CHAT_OPS_ADDR": "127.0.0.1",
                    "CHAT_OPS_PORT": str(ops)})
        env.update(env_extra or {})
        super().__init__(binary, env, log_path, "gateway")


class OwnApi(OwnService):
    def __init__(self, stack, log_dir, instance, env_extra=None):
        """An api instance beside the stack's: free ports, CHAT_INSTANCE_ID instance, its log
        (api.log) and export directory in log_dir; env_extra: more variables. url: its /v1
        base over plain HTTP (a test that sets CHAT_API_TLS_* builds its own)."""
        self.port, ops = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        env = _base_env(stack)
        env.update({"CHAT_API_ADDR": "127.0.0.1", "CHAT_API_PORT": str(self.port),
                    "CHAT_OPS_ADDR": "127.0.0.1", "CHAT_OPS_PORT": str(ops),
                    "CHAT_API_EXPORT_DIR": os.path.join(log_dir, "exports"),
                    "CHAT_INSTANCE_ID": instance})
        env.update(env_extra or {})
        binary = os.path.join(stack["CHAT_BUILD_DIR"], "services", "api", "chat-api")
        super().__init__(binary, env, os.path.join(log_dir, "api.log"), "api")


def test_gateway(stack, index, test, env_extra=None):
    """An OwnGateway of the stack's build (chat.deliver partition index), its log in the stack's
    logs directory named after test (e.g. "121") and the process."""
    logs = os.path.join(stack.get("CHAT_STACK_DIR", "/tmp"), "logs")
    os.makedirs(logs, exist_ok=True)
    binary = os.path.join(stack["CHAT_BUILD_DIR"], "services", "gateway", "chat-gateway")
    return OwnGateway(stack, binary, index, os.path.join(logs, f"gateway-{test}-{os.getpid()}.log"),
                      env_extra=env_extra)


def registration_margin_ms(stack, key, index):
    """Milliseconds until gateway index's registration in the room's gws set key expires
    (negative: expired; None: not there)."""
    r = subprocess.run(["redis-cli", "-u", stack["CHAT_REDIS_URL"], "ZSCORE", key, str(index)],
                       capture_output=True, text=True, timeout=10, check=True)
    out = r.stdout.strip()
    return None if out == "" else float(out) - time.time() * 1000
