"""The checks of a Python test: each prints one ok/FAIL line, failures are collected, and
finish() prints the count and exits non-zero if any failed."""
import sys

failures = []


def check(cond, what):
    """Records one check; returns cond."""
    print(("ok   - " if cond else "FAIL - ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def finish():
    print(f"{len(failures)} failed", flush=True)
    sys.exit(1 if failures else 0)


def parse_metrics(text):
    """{series: value} of a Prometheus text exposition (series as written: name{labels})."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            out[series] = float(value)
    return out


def scrape(url, timeout=10):
    """{series: value} of the /metrics at url (an ops server's base URL)."""
    import urllib.request

    with urllib.request.urlopen(url + "/metrics", timeout=timeout) as r:
        return parse_metrics(r.read().decode())
