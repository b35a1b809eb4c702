"""deploy/prometheus: what promtool does not check about the rules.

Every alert has a severity (critical or warning), a `for:` duration, the annotations
summary, description and runbook (pointing at its RUNBOOK.md section); RUNBOOK.md has a
section per alert and the README's alerts table a row per alert; the unit tests
(deploy/prometheus/tests) have, for every alert, a case where it fires and one where it
stays silent; and the rules use only metrics that docs/metrics.md lists (the contract the
services implement). Lists every problem, fails if there is one.
"""
import glob
import os
import re
import sys

import yaml

SRC = os.environ.get("CHAT_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
PROM = os.path.join(SRC, "deploy", "prometheus")
# Names PromQL knows that look like metric names in an expression.
PROMQL_WORDS = {
    "sum", "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
    "unless", "rate", "increase", "deriv", "histogram_quantile", "absent", "max", "min",
    "avg", "count", "le", "bool", "offset", "humanize", "topk", "bottomk", "abs", "clamp_min",
}


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def main():
    problems = []
    rules = []
    for path in sorted(glob.glob(os.path.join(PROM, "rules", "*.yml"))):
        for group in yaml.safe_load(read(path))["groups"]:
            rules.extend(group["rules"])
    alerts = [r for r in rules if "alert" in r]
    records = {r["record"] for r in rules if "record" in r}
    runbook = read(os.path.join(PROM, "RUNBOOK.md"))
    readme = read(os.path.join(PROM, "README.md"))
    sections = set(re.findall(r"^## (\w+)\s*$", runbook, re.M))

    for a in alerts:
        name = a["alert"]
        if a.get("labels", {}).get("severity") not in ("critical", "warning"):
            problems.append(f"{name}: severity label is not critical or warning")
        if not a.get("for"):
            problems.append(f"{name}: no `for:` duration (one bad evaluation would fire it)")
        ann = a.get("annotations", {})
        for key in ("summary", "description", "runbook"):
            if not ann.get(key, "").strip():
                problems.append(f"{name}: no {key} annotation")
        if f"RUNBOOK.md#{name.lower()}" not in ann.get("runbook", ""):
            problems.append(f"{name}: runbook annotation does not point at RUNBOOK.md#{name.lower()}")
        if name not in sections:
            problems.append(f"{name}: RUNBOOK.md has no section '## {name}'")
        if f"`{name}`" not in readme:
            problems.append(f"{name}: deploy/prometheus/README.md's alerts table does not list it")
    for s in sections - {a["alert"] for a in alerts}:
        problems.append(f"RUNBOOK.md: section '## {s}' is for no alert of the rules")

    fires, silent = set(), set()
    for path in sorted(glob.glob(os.path.join(PROM, "tests", "*.yml"))):
        for test in yaml.safe_load(read(path)).get("tests", []):
            for t in test.get("alert_rule_test", []):
                (fires if t.get("exp_alerts") else silent).add(t["alertname"])
    for a in alerts:
        if a["alert"] not in fires:
            problems.append(f"{a['alert']}: no unit test where it fires")
        if a["alert"] not in silent:
            problems.append(f"{a['alert']}: no unit test where it stays silent")

    # Metric names of the expressions, without label matchers and strings, against the
    # contract: chat_<service>_<name> is listed in full or as `<name>` in its section.
    contract = read(os.path.join(SRC, "docs", "metrics.md"))
    for r in rules:
        expr = re.sub(r'"[^"]*"', "", re.sub(r"\{[^}]*\}", "", r["expr"]))
        expr = re.sub(r"\[[^\]]*\]", "", expr)
        expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)
        for word in set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr)):
            if word in PROMQL_WORDS or word in records or word == "up":
                continue
            base = re.sub(r"_(bucket|count|sum)$", "", word)
            known = re.search(rf"`({re.escape(base)}|{re.escape(word)})[`{{]", contract)
            m = re.match(r"chat_(gateway|message|moderation|notify|api|broadcast)_(.+)$", base)
            if not known and m:
                section = re.search(rf"^## [^\n]*`chat_{m.group(1)}_\*`[^\n]*$(.*?)(?=^## |\Z)",
                                    contract, re.M | re.S)
                known = section and re.search(rf"`{re.escape(m.group(2))}[`{{]", section.group(1))
            if not known:
                where = r.get("alert") or r.get("record")
                problems.append(f"{where}: uses {word}, which docs/metrics.md does not list")

    for p in problems:
        print("FAIL -", p)
    print(f"{len(alerts)} alerts, {len(records)} recording rules checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
