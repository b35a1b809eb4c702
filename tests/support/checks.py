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
