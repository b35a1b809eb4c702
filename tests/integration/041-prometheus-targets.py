"""The stack's Prometheus (scripts/up --monitoring) scrapes every part of the stack and has
the rules of deploy/prometheus/rules loaded: every target of /api/v1/targets is up (waiting
for the first scrapes), each service's job is there under the name the rules and the chart
use, with as many gateways as the stack has; every group of the rules file is loaded
(/api/v1/rules) and no rule is in error once evaluated. Lists every target or rule that is
not right."""

import datetime
import json
import os
import re
import sys
import time
import urllib.request

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

from api_client import stack_load  # noqa: E402

WAIT = 30  # seconds for the first scrapes and rule evaluations (scrape interval 5 s)
JOBS = ["chat-gateway", "chat-message", "chat-broadcast", "chat-moderation", "chat-notify",
        "chat-api", "chat-lag-exporter", "prometheus"]


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(f"{url}: {body}")
    return body["data"]


def scraped_at(t):
    """When Prometheus last scraped target t (seconds since the epoch), 0 if never."""
    # RFC 3339 with nanoseconds: Python reads at most microseconds.
    ts = re.sub(r"(\.\d{6})\d+", r"\1", t.get("lastScrape", "")).replace("Z", "+00:00")
    try:
        return datetime.datetime.fromisoformat(ts).timestamp()
    except ValueError:
        return 0


def targets_problems(prom, gateways, since):
    """What is wrong with the targets, [] when all is right. A target counts only once
    scraped after `since` (a part that died a moment ago may still show its last scrape)."""
    active = get(f"{prom}/api/v1/targets?state=active")["activeTargets"]
    problems = []
    by_job = {}
    for t in active:
        job = t["labels"].get("job", "?")
        by_job.setdefault(job, []).append(t)
        if scraped_at(t) < since:
            problems.append(f"target {job}/{t['labels'].get('instance', '?')} "
                            f"({t['scrapeUrl']}) not scraped since the test started")
        elif t["health"] != "up":
            problems.append(f"target {job}/{t['labels'].get('instance', '?')} "
                            f"({t['scrapeUrl']}) is {t['health']}: {t.get('lastError') or 'not scraped yet'}")
    for job in JOBS:
        if job not in by_job:
            problems.append(f"no target of job {job}")
    n = len(by_job.get("chat-gateway", []))
    if n != gateways:
        problems.append(f"{n} gateway targets, the stack has {gateways} gateways")
    return problems, len(active)


def rules_problems(prom, source):
    """What is wrong with the loaded rules, [] when all is right."""
    with open(os.path.join(source, "deploy", "prometheus", "rules", "chat.rules.yml"),
              encoding="utf-8") as f:
        want = {g["name"]: len(g["rules"]) for g in yaml.safe_load(f)["groups"]}
    groups = {g["name"]: g for g in get(f"{prom}/api/v1/rules")["groups"]}
    problems = []
    for name, count in want.items():
        g = groups.get(name)
        if g is None:
            problems.append(f"rule group {name} is not loaded")
            continue
        if len(g["rules"]) != count:
            problems.append(f"rule group {name}: {len(g['rules'])} rules loaded, the file has {count}")
        for r in g["rules"]:
            if r.get("health") != "ok":
                problems.append(f"rule {name}/{r['name']}: health {r.get('health')}"
                                f"{': ' + r['lastError'] if r.get('lastError') else ''}")
    return problems, sum(want.values())


def main():
    env = stack_load()
    prom = env.get("CHAT_PROMETHEUS_URL")
    if not prom:
        print("FAIL - CHAT_PROMETHEUS_URL is not in stack.env: the stack was started without --monitoring")
        return 1
    gateways = len([u for u in env.get("CHAT_GATEWAY_URLS", "").split(",") if u])
    source = env.get("CHAT_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
    since = time.time()
    deadline = time.monotonic() + WAIT
    while True:
        try:
            tp, ntargets = targets_problems(prom, gateways, since)
            rp, nrules = rules_problems(prom, source)
        except (OSError, RuntimeError, ValueError) as e:
            tp, rp, ntargets, nrules = [f"Prometheus at {prom} does not answer: {e}"], [], 0, 0
        if not tp and not rp:
            print(f"ok   - {ntargets} targets up ({', '.join(JOBS)}), {nrules} rules loaded and healthy")
            return 0
        if time.monotonic() > deadline:
            for p in tp + rp:
                print("FAIL -", p)
            return 1
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
