"""A gateway process of a test's own beside the stack's: the stack's Kafka, MongoDB and
Redis, free ports, its own chat.deliver partition (index), its log in a file; started and
waited for (/readyz) in the constructor. Tests that stop a gateway on purpose (drain, HTTP
side) use one so that the shared stack's gateways stay up."""
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


class OwnGateway:
    def __init__(self, stack, binary, index, log_path, env_extra=None):
        """stack: stack.env as a dict; binary: chat-gateway; index: its CHAT_GATEWAY_INDEX
        (a partition no other gateway uses); env_extra: more variables (CHAT_WIDGET_DIR,
        CHAT_GATEWAY_DRAIN...). The demo and widget variables of the environment are not
        passed on."""
        self.port, self.ops = free_port(), free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"ws://{self.host}/v1/ws"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("CHAT_DEMO_") and k != "CHAT_WIDGET_DIR"}
        env.update({k: stack[k] for k in ("CHAT_KAFKA_BROKERS", "CHAT_MONGO_URI",
                                          "CHAT_REDIS_URL")})
        env.update({"CHAT_GATEWAY_INDEX": str(index), "CHAT_GATEWAY_ADDR": "127.0.0.1",
                    "CHAT_GATEWAY_PORT": str(self.port), "CHAT_OPS_ADDR": "127.0.0.1",
                    "CHAT_OPS_PORT": str(self.ops)})
        env.update(env_extra or {})
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
        raise RuntimeError(f"own gateway not ready; log:\n{self.log_text()[-3000:]}")

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
