"""A tenant's limits.api_calls_per_s across api instances (issue 14 part 5): each instance
announces itself in Redis (common/fleet_count.h, chat:api:<id>) and takes 1/n of the rate.
With a second chat-api of this test's own beside the stack's:
- limit 10/s: 40 calls at once to one instance get about its half's burst (the burst keeps
  CHAT_API_BURST / CHAT_API_RATE, 2 s: about 10), the rest 429 with Retry-After;
- the second instance stopped: within a few seconds the first takes the whole rate again
  (about 20 of a burst of 40)."""
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from api_client import Tenant, api_base, call_json, stack_load  # noqa: E402
from checks import check, finish  # noqa: E402
from own_gateway import OwnApi  # noqa: E402

stack = stack_load()
LIMIT = 10


def burst(base, tenant, n):
    """n calls at once (GET /v1/settings): (how many 200, how many 429 with Retry-After)."""
    ok = limited = 0
    for _ in range(n):
        req = urllib.request.Request(base + "/settings")
        req.add_header("Authorization", f"Bearer {tenant.token()}")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                ok += r.status == 200
        except urllib.error.HTTPError as e:
            limited += e.code == 429 and e.headers.get("Retry-After") is not None
    return ok, limited


WORK = tempfile.TemporaryDirectory(prefix="api-177-")  # its log and export dir, removed at exit


t = Tenant(stack)
base = api_base(stack)
status, _ = call_json(base, t, "PATCH", "/settings", {"limits": {"api_calls_per_s": LIMIT}})
check(status == 200, f"api_calls_per_s {LIMIT}: {status}")
second = OwnApi(stack, WORK.name, "api-177")
try:
    time.sleep(3.5)  # both instances see each other; the stack's reads the tenant's rate again
    ok, limited = burst(base, t, 40)
    print(f"   two instances, 40 calls at once to one: {ok} answered, {limited} 429", flush=True)
    check(5 <= ok <= 14, f"about half the tenant's burst (10 of 20): {ok}")
    check(ok + limited == 40, "the rest 429 with Retry-After")
finally:
    rc = second.stop()
log = second.log_text()
check(rc == 0 and "Sanitizer" not in log and "runtime error" not in log,
      f"the second instance stopped cleanly: {rc} {log[-500:] if rc else ''}")
time.sleep(4.5)  # the stack's instance is alone again (its rate read again every 2 s)
ok, limited = burst(base, t, 40)
print(f"   one instance, 40 calls at once: {ok} answered, {limited} 429", flush=True)
check(15 <= ok <= 26, f"the whole tenant's burst again (20): {ok}")
finish()
