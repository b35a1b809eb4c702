#!/usr/bin/env python3
"""Offline checks of the Helm chart deploy/k8s/chat (ctest label "deploy").

    check_chart.py --helm HELM --chart DIR CHECK

CHECK is one of:
  lint      helm lint --strict with the default values and ci/production-values.yaml
  render    helm template with both (and with the prometheus-operator API present), every
            manifest validated against the Kubernetes schemas of kubernetes-validate (strict;
            the prometheus-operator kinds, absent from those schemas, checked here), and the
            rendered objects checked: probes, resources, securityContext, the gateway's index,
            instance ids, Secrets only by reference, a ServiceMonitor for every Service...
  refusals  values the chart must refuse: more gateways than chat.deliver partitions (fixed
            or autoscaled), unknown keys (values.schema.json), Web Push without its Secret
  sources   the PrometheusRule holds every group of the rules files and the dashboards become
            labelled ConfigMaps (with the test's own files), and the chart's links
            files/rules and files/dashboards lead to deploy/prometheus/rules and
            deploy/grafana/dashboards (the single source the local Prometheus uses)

Needs PyYAML and kubernetes-validate (tests/support/requirements.txt).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

# helm renders for KUBE_VERSION; the objects are validated for the chart's oldest Kubernetes,
# that one, and the newest kubernetes-validate knows (an API removed since would show).
KUBE_VERSION = "1.30.0"
KUBE_MIN_VERSION = "1.29.0"
MONITORING_API = "monitoring.coreos.com/v1"
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "Job"}
# Variables that carry credentials: with existingSecret set they must come from a Secret.
SECRET_VARS = {
    "CHAT_MONGO_URI",
    "CHAT_REDIS_URL",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "CHAT_VAPID_PRIVATE_KEY",
    "CHAT_SMTP_PASSWORD",
}
INSTANCE_SERVICES = {"message", "broadcast", "moderation", "notify", "api"}
HERE = os.path.dirname(os.path.abspath(__file__))

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
    return cond


class Chart:
    """The chart as helm sees it: in place when its links to the rules and dashboards
    resolve, else a copy in which a missing directory is an empty one (the chart must
    render without rules or dashboards)."""

    def __init__(self, helm, chart, rules=None, dashboards=None):
        self.helm = helm
        self.tmp = None
        links = {"rules": rules, "dashboards": dashboards}
        missing = {}
        for name in links:
            link = os.path.join(chart, "files", name)
            if links[name] is None and not os.path.isdir(link):
                missing[name] = os.path.realpath(link)
        if not missing and rules is None and dashboards is None:
            self.dir = chart
            return
        self.tmp = tempfile.mkdtemp(prefix="chat-chart-")
        self.dir = os.path.join(self.tmp, "chat")
        shutil.copytree(chart, self.dir, symlinks=True,
                        ignore=lambda d, names: ["files"] if os.path.samefile(d, chart) else [])
        os.makedirs(os.path.join(self.dir, "files"))
        for name, src in links.items():
            dst = os.path.join(self.dir, "files", name)
            if src is not None:
                shutil.copytree(src, dst)
            elif name in missing:
                print(f"note: {missing[name]} does not exist (yet): rendering with no {name}")
                os.makedirs(dst)
            else:
                shutil.copytree(os.path.join(chart, "files", name), dst)

    def close(self):
        if self.tmp:
            shutil.rmtree(self.tmp)

    def run(self, *args):
        return subprocess.run([self.helm, *args], capture_output=True, text=True)

    def template(self, *args, ok=True):
        p = self.run("template", "chat", self.dir, "--namespace", "chat",
                     "--kube-version", KUBE_VERSION, *args)
        if ok and p.returncode != 0:
            raise SystemExit(f"helm template {' '.join(args)} failed:\n{p.stderr}")
        if not ok:
            return p
        return [d for d in yaml.safe_load_all(p.stdout) if d]


def production(chart_dir):
    return os.path.join(chart_dir, "ci", "production-values.yaml")


def load_values(path):
    with open(path) as f:
        return yaml.safe_load(f) or {}


def merged_values(chart_dir, *files):
    """The values as helm merges them (maps merged, everything else replaced)."""

    def merge(a, b):
        out = dict(a)
        for k, v in b.items():
            out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        return out

    values = load_values(os.path.join(chart_dir, "values.yaml"))
    for f in files:
        values = merge(values, load_values(f))
    return values


# ---- lint ----

def schema_refs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield v
            else:
                yield from schema_refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from schema_refs(v)


def run_lint(chart):
    import json

    with open(os.path.join(chart.dir, "values.schema.json")) as f:
        schema = json.load(f)
    remote = [r for r in schema_refs(schema) if not r.startswith("#")]
    check(not remote, f"values.schema.json: remote $ref {remote} (helm would fetch them)")
    check(schema.get("additionalProperties") is False, "values.schema.json: unknown top-level keys allowed")
    for label, extra in (("default values", []),
                         ("production values", ["-f", production(chart.dir)])):
        p = chart.run("lint", "--strict", chart.dir, *extra)
        out = p.stdout + p.stderr
        if check(p.returncode == 0, f"helm lint --strict ({label}) failed:\n{out}"):
            print(f"ok: helm lint --strict ({label})")


# ---- render ----

def pod_spec(obj):
    if obj["kind"] == "Job" or obj["kind"] in ("Deployment", "StatefulSet"):
        return obj["spec"]["template"]["spec"]
    return None


def component(obj):
    return obj["metadata"].get("labels", {}).get("app.kubernetes.io/component")


def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def validate_schemas(docs, label):
    import kubernetes_validate
    from kubernetes_validate.utils import latest_version

    versions = sorted({KUBE_MIN_VERSION, KUBE_VERSION, latest_version()})
    n = 0
    for d in docs:
        name = f"{label}: {d['kind']}/{d['metadata']['name']}"
        if d["kind"] in CRD_KINDS:
            check(d["apiVersion"] == MONITORING_API, f"{name}: apiVersion {d['apiVersion']}")
            check_crd_shape(d, name)
            continue
        n += 1
        for v in versions:
            try:
                kubernetes_validate.validate(d, v, strict=True)
            except kubernetes_validate.ValidationError as e:
                check(False, f"{name}: not valid for Kubernetes {v}: {e.message} "
                             f"at {'/'.join(str(p) for p in e.path)}")
            except kubernetes_validate.SchemaNotFoundError:
                check(False, f"{name}: no Kubernetes {v} schema for it")
    print(f"ok: {label}: {n} objects checked against the Kubernetes {', '.join(versions)} schemas")


def check_crd_shape(d, name):
    """The parts of the prometheus-operator kinds the operator needs (their CRD schemas are
    not in kubernetes-validate)."""
    spec = d.get("spec") or {}
    if d["kind"] == "ServiceMonitor":
        check(set(spec) <= {"jobLabel", "selector", "namespaceSelector", "endpoints"},
              f"{name}: unexpected spec keys {sorted(spec)}")
        check(isinstance(spec.get("selector", {}).get("matchLabels"), dict),
              f"{name}: spec.selector.matchLabels missing")
        eps = spec.get("endpoints") or []
        check(eps, f"{name}: no endpoints")
        for ep in eps:
            check(set(ep) <= {"port", "path", "interval", "scrapeTimeout", "scheme", "relabelings"},
                  f"{name}: unexpected endpoint keys {sorted(ep)}")
            check(isinstance(ep.get("port"), str), f"{name}: endpoint without a port name")
            for k in ("interval", "scrapeTimeout"):
                check(k not in ep or re.fullmatch(r"[0-9]+(ms|s|m|h)", str(ep[k])),
                      f"{name}: bad {k} {ep.get(k)}")
    else:
        groups = spec.get("groups")
        check(isinstance(groups, list) and groups, f"{name}: spec.groups empty")
        seen = set()
        for g in groups or []:
            check(g.get("name") and g["name"] not in seen, f"{name}: group name missing or repeated")
            seen.add(g.get("name"))
            for r in g.get("rules") or []:
                check(isinstance(r.get("expr"), (str, int)), f"{name}: rule without expr: {r}")
                check(("alert" in r) != ("record" in r), f"{name}: rule needs alert or record: {r}")


def check_render(docs, label, values, monitoring):
    objs = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    check(len(objs) == len(docs), f"{label}: two objects of the same kind and name")
    kinds = [d["kind"] for d in docs]
    check("Secret" not in kinds, f"{label}: the chart renders a Secret (credentials belong in existingSecrets)")
    partitions = values["topics"]["topics"]["chat.deliver"]["partitions"]
    ops_port = values["opsPort"]
    pdbs = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    netpols = [d for d in docs if d["kind"] == "NetworkPolicy"]
    services = [d for d in docs if d["kind"] == "Service"]
    workloads = [d for d in docs if d["kind"] in WORKLOAD_KINDS]
    components = {component(w) for w in workloads if w["kind"] != "Job"}
    check(components == {"gateway", "message", "broadcast", "moderation", "notify", "api",
                         "lag-exporter"}, f"{label}: the services rendered are {sorted(components)}")

    for w in workloads:
        name = f"{label}: {w['kind']}/{w['metadata']['name']}"
        spec = pod_spec(w)
        psc = spec.get("securityContext", {})
        check(psc.get("runAsNonRoot") is True, f"{name}: pod securityContext.runAsNonRoot")
        check(spec.get("automountServiceAccountToken") is False, f"{name}: a service account token is mounted")
        check(spec.get("enableServiceLinks") is False, f"{name}: service links (KAFKA_PORT...) in the environment")
        if w["kind"] != "Job":
            labels = w["spec"]["template"]["metadata"]["labels"]
            check(selects(w["spec"]["selector"]["matchLabels"], labels), f"{name}: selector does not match its pods")
            keys = {c["topologyKey"] for c in spec.get("topologySpreadConstraints", [])
                    if selects(c["labelSelector"]["matchLabels"], labels)}
            check({"topology.kubernetes.io/zone", "kubernetes.io/hostname"} <= keys,
                  f"{name}: topology spread over zones and nodes missing ({sorted(keys)})")
            if values[{"lag-exporter": "lagExporter"}.get(component(w), component(w))]["pdb"]["enabled"]:
                check(any(selects(p["spec"]["selector"]["matchLabels"], labels) and
                          p["spec"].get("maxUnavailable") == 1 for p in pdbs),
                      f"{name}: no PodDisruptionBudget with maxUnavailable 1")
            if netpols:
                check(any(selects(n["spec"]["podSelector"]["matchLabels"], labels) for n in netpols),
                      f"{name}: no NetworkPolicy selects its pods")
            scraped = [s for s in services
                       if selects(s["spec"].get("selector"), labels) and
                       any(p["name"] == "ops" for p in s["spec"]["ports"])]
            check(len(scraped) == 1, f"{name}: {len(scraped)} Services expose its ops port (want 1)")
        for c in spec["containers"]:
            cname = f"{name} container {c['name']}"
            res = c.get("resources", {})
            for kind in ("requests", "limits"):
                check({"cpu", "memory"} <= set(res.get(kind, {})), f"{cname}: resources.{kind} cpu and memory")
            sc = c.get("securityContext", {})
            check(sc.get("runAsNonRoot") is True, f"{cname}: runAsNonRoot")
            check(sc.get("runAsUser", psc.get("runAsUser")) == 65532, f"{cname}: runAsUser 65532")
            check(sc.get("readOnlyRootFilesystem") is True, f"{cname}: readOnlyRootFilesystem")
            check(sc.get("allowPrivilegeEscalation") is False, f"{cname}: allowPrivilegeEscalation false")
            check("ALL" in sc.get("capabilities", {}).get("drop", []), f"{cname}: capabilities drop ALL")
            seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {}))
            check(seccomp.get("type") == "RuntimeDefault", f"{cname}: seccompProfile RuntimeDefault")
            check(any(m["mountPath"] == "/tmp" for m in c.get("volumeMounts", [])), f"{cname}: no writable /tmp")
            env = env_of(c)
            names = [e["name"] for e in c.get("env", [])]
            check(len(names) == len(set(names)), f"{cname}: a variable set twice: "
                  f"{sorted({n for n in names if names.count(n) > 1})}")
            check(env.get("CHAT_OPS_ADDR", {}).get("value") == "0.0.0.0", f"{cname}: CHAT_OPS_ADDR is not 0.0.0.0")
            check(env.get("CHAT_OPS_PORT", {}).get("value") == str(ops_port), f"{cname}: CHAT_OPS_PORT")
            check(not {"CHAT_DEMO_TENANT", "CHAT_DEMO_SECRET"} & set(env),
                  f"{cname}: the demo (tokens for anyone) is switched on")
            check(c["args"][0] in ("gateway", "message", "broadcast", "moderation", "notify", "api", "admin"),
                  f"{cname}: the image's entrypoint does not know {c['args'][0]}")
            for var in SECRET_VARS & set(env):
                src = env[var]
                existing = {"CHAT_MONGO_URI": values["mongodb"]["existingSecret"],
                            "CHAT_REDIS_URL": values["redis"]["existingSecret"]}.get(var, True)
                if existing:
                    check("value" not in src and "secretKeyRef" in src.get("valueFrom", {}),
                          f"{cname}: {var} is not taken from a Secret")
            if w["kind"] == "Job":
                continue
            ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
            check(ports.get("ops") == ops_port, f"{cname}: no ops port {ops_port}")
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                p = c.get(probe)
                if check(p and "httpGet" in p, f"{cname}: no HTTP {probe}"):
                    check(p["httpGet"]["port"] == "ops", f"{cname}: {probe} not on the ops port")
            want_ready = "/healthz" if component(w) == "lag-exporter" else "/readyz"
            check(c.get("readinessProbe", {}).get("httpGet", {}).get("path") == want_ready,
                  f"{cname}: readiness not on {want_ready}")
            check(c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz",
                  f"{cname}: liveness not on /healthz")
            comp = component(w)
            if comp in INSTANCE_SERVICES:
                ref = env.get("CHAT_INSTANCE_ID", {}).get("valueFrom", {}).get("fieldRef", {})
                check(ref.get("fieldPath") == "metadata.name", f"{cname}: CHAT_INSTANCE_ID is not the pod name")
            if comp == "gateway":
                check(w["kind"] == "StatefulSet", f"{name}: the gateways are not a StatefulSet")
                ref = env.get("CHAT_GATEWAY_INDEX", {}).get("valueFrom", {}).get("fieldRef", {})
                check(ref.get("fieldPath") == "metadata.labels['apps.kubernetes.io/pod-index']",
                      f"{cname}: CHAT_GATEWAY_INDEX is not the pod-index label")
                check(w["spec"].get("replicas", values["gateway"]["autoscaling"]["minReplicas"]) <= partitions,
                      f"{name}: more gateways than chat.deliver partitions")
                drain = env.get("CHAT_GATEWAY_DRAIN", {}).get("value", "")
                check(drain == f"{values['gateway']['drainSeconds']}s", f"{cname}: CHAT_GATEWAY_DRAIN {drain!r}")
                sleep = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
                check(sleep == values["gateway"]["preStopSleepSeconds"], f"{cname}: preStop sleep {sleep}")
                check(spec.get("terminationGracePeriodSeconds", 30) > sleep + values["gateway"]["drainSeconds"],
                      f"{name}: terminationGracePeriodSeconds leaves no time to drain")
                check(env.get("CHAT_GATEWAY_ADDR", {}).get("value") == "0.0.0.0", f"{cname}: CHAT_GATEWAY_ADDR")
            if comp == "api":
                export = env.get("CHAT_API_EXPORT_DIR", {}).get("value")
                check(any(m["mountPath"] == export for m in c.get("volumeMounts", [])),
                      f"{cname}: CHAT_API_EXPORT_DIR {export} is not a volume")

    for s in services:
        name = f"{label}: Service/{s['metadata']['name']}"
        backends = [w for w in workloads if w["kind"] != "Job" and
                    selects(s["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])]
        check(backends, f"{name}: selects no pods")
        for w in backends:
            named = {p["name"] for c in pod_spec(w)["containers"] for p in c.get("ports", [])}
            for p in s["spec"]["ports"]:
                check(p["targetPort"] in named, f"{name}: targetPort {p['targetPort']} is no port of "
                                                f"{w['metadata']['name']}")
    monitors = [d for d in docs if d["kind"] == "ServiceMonitor"]
    if monitoring:
        check(monitors, f"{label}: monitoring on but no ServiceMonitor")
        check(any(d["kind"] == "PrometheusRule" for d in docs) or not rules_present(values),
              f"{label}: monitoring on but no PrometheusRule")
        for s in services:
            name = f"{label}: Service/{s['metadata']['name']}"
            if not any(p["name"] == "ops" for p in s["spec"]["ports"]):
                continue
            mine = [m for m in monitors if selects(m["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
                    and any(e["port"] == "ops" for e in m["spec"]["endpoints"])]
            if check(len(mine) == 1, f"{name}: {len(mine)} ServiceMonitors scrape it (want 1)"):
                # The rules' job names (deploy/prometheus/README.md): chat-<component>.
                jobs = [r.get("replacement") for e in mine[0]["spec"]["endpoints"]
                        for r in e.get("relabelings", []) if r.get("targetLabel") == "job"]
                check(jobs == [f"chat-{component(s)}"],
                      f"{name}: scraped as job {jobs!r}, not as chat-{component(s)}")
    else:
        check(not monitors and "PrometheusRule" not in kinds,
              f"{label}: prometheus-operator objects without the prometheus-operator API")

    # the topics file of the hook
    cm = objs.get(("ConfigMap", "chat-topics"))
    job = objs.get(("Job", "chat-topics"))
    if check(cm and job, f"{label}: no topics ConfigMap and Job"):
        for o in (cm, job):
            check("pre-install" in o["metadata"]["annotations"].get("helm.sh/hook", ""),
                  f"{label}: {o['kind']}/chat-topics is not a pre-install hook")
        check("helm.sh/hook-delete-policy" in job["metadata"]["annotations"], f"{label}: topics Job has no delete policy")
        check(job["spec"].get("backoffLimit") is not None, f"{label}: topics Job has no backoffLimit")
        c = job["spec"]["template"]["spec"]["containers"][0]
        check(c["args"][:3] == ["admin", "topics", "ensure"], f"{label}: topics Job runs {c['args']}")
        topics = {}
        for line in cm["data"]["topics.conf"].splitlines():
            line = line.split("#", 1)[0].split()
            if line:
                topics[line[0]] = (int(line[1]), dict(kv.split("=", 1) for kv in line[2:]))
        check(set(topics) == set(values["topics"]["topics"]), f"{label}: topics.conf lists {sorted(topics)}")
        check(topics.get("chat.deliver", (0,))[0] == partitions, f"{label}: chat.deliver partitions")
        for t, (_, cfg) in topics.items():
            for k, v in values["topics"]["defaultConfig"].items():
                check(cfg.get(k) == str(v), f"{label}: topic {t} lacks {k}={v}")

    # autoscaling
    for h in (d for d in docs if d["kind"] == "HorizontalPodAutoscaler"):
        name = f"{label}: HorizontalPodAutoscaler/{h['metadata']['name']}"
        ref = h["spec"]["scaleTargetRef"]
        check((ref["kind"], ref["name"]) in objs, f"{name}: scales {ref['kind']}/{ref['name']} which is not rendered")
        check("replicas" not in objs.get((ref["kind"], ref["name"]), {}).get("spec", {}),
              f"{name}: its target also fixes replicas")
        metrics = {m["type"]: m for m in h["spec"]["metrics"]}
        if ref["kind"] == "StatefulSet":
            check(metrics.get("Pods", {}).get("pods", {}).get("metric", {}).get("name") == "chat_gateway_connections",
                  f"{name}: the gateways do not scale on chat_gateway_connections")
            check(h["spec"]["maxReplicas"] <= partitions, f"{name}: maxReplicas above chat.deliver partitions")
        else:
            check("Resource" in metrics, f"{name}: no CPU metric")
        if "External" in metrics:
            m = metrics["External"]["external"]["metric"]
            check(m["name"] == "chat_kafka_group_lag" and m["selector"]["matchLabels"].get("group"),
                  f"{name}: the lag metric has no group")

    # ingress: /v1/ws and the widget to the gateways, /v1 to the API
    routes = {}
    for ing in (d for d in docs if d["kind"] == "Ingress"):
        for rule in ing["spec"]["rules"]:
            for p in rule["http"]["paths"]:
                routes[p["path"]] = (ing, p["backend"]["service"]["name"])
    if values["ingress"]["enabled"]:
        gw_ing, gw = routes.get("/v1/ws", (None, None))
        check(gw == "chat-gateway", f"{label}: /v1/ws goes to {gw}")
        check(routes.get("/v1/widget.js", (None, None))[1] == "chat-gateway", f"{label}: /v1/widget.js not to the gateways")
        check(routes.get("/v1", (None, None))[1] == "chat-api", f"{label}: /v1 not to the API")
        if gw_ing:
            ann = gw_ing["metadata"].get("annotations", {})
            for k in ("proxy-read-timeout", "proxy-send-timeout"):
                check(int(ann.get(f"nginx.ingress.kubernetes.io/{k}", 0)) >= 3600,
                      f"{label}: gateway Ingress {k} shorter than an hour")
            check(bool(gw_ing["spec"].get("tls")) == bool(values["ingress"]["tls"]), f"{label}: Ingress TLS")
    else:
        check(not routes, f"{label}: an Ingress although ingress.enabled is false")

    for n in netpols:
        name = f"{label}: NetworkPolicy/{n['metadata']['name']}"
        comp = n["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component")
        egress_ports = {p.get("port") for r in n["spec"]["egress"] for p in r.get("ports", [])}
        check(53 in egress_ports, f"{name}: no DNS")
        check(set(values["networkPolicy"]["kafka"]["ports"]) <= egress_ports, f"{name}: Kafka not reachable")
        if comp in ("notify", "api") and values["networkPolicy"]["internet"]["enabled"]:
            check(443 in egress_ports, f"{name}: no HTTPS out (Web Push, webhooks)")
        ingress_ports = {p.get("port") for r in n["spec"]["ingress"] for p in r.get("ports", [])}
        check("ops" in ingress_ports, f"{name}: metrics not reachable")
        if comp == "gateway":
            check("ws" in ingress_ports, f"{name}: WebSocket port closed")

    # dashboards
    for cmap in (d for d in docs if d["kind"] == "ConfigMap" and "dashboard" in d["metadata"]["name"]):
        d = values["monitoring"]["dashboards"]
        check(cmap["metadata"]["labels"].get(d["label"]) == d["labelValue"],
              f"{label}: ConfigMap/{cmap['metadata']['name']} lacks the {d['label']} label")


def rules_present(values):
    return values.get("_rules_present", True)


def run_render(chart, chart_src):
    prod = production(chart.dir)
    has_rules = any(f.endswith((".yml", ".yaml")) for f in os.listdir(os.path.join(chart.dir, "files", "rules")))
    cases = [
        ("default values", [], merged_values(chart.dir), False),
        ("default values, prometheus-operator present", ["--api-versions", MONITORING_API],
         merged_values(chart.dir), True),
        ("production values", ["-f", prod], merged_values(chart.dir, prod), True),
    ]
    for label, args, values, monitoring in cases:
        values["_rules_present"] = has_rules
        docs = chart.template(*args)
        validate_schemas(docs, label)
        n = len(failures)
        check_render(docs, label, values, monitoring)
        if len(failures) == n:
            print(f"ok: {label}: {len(docs)} objects pass the chart's rules")

    # a service's env replaces a common variable instead of repeating it
    docs = chart.template("--set", "gateway.env.CHAT_LOG_LEVEL=debug", "--set", "extraEnv.CHAT_OPS_PORT=9090")
    for w in (d for d in docs if d["kind"] in WORKLOAD_KINDS):
        for c in pod_spec(w)["containers"]:
            levels = [e.get("value") for e in c["env"] if e["name"] == "CHAT_LOG_LEVEL"]
            want = ["debug"] if component(w) == "gateway" else ["info"]
            check(levels == want, f"{w['metadata']['name']}: CHAT_LOG_LEVEL {levels}, want {want}")
            check([e["name"] for e in c["env"]].count("CHAT_OPS_PORT") == 1,
                  f"{w['metadata']['name']}: CHAT_OPS_PORT repeated")

    # TLS from a Secret: the files the variables name are in its read-only mount
    docs = chart.template("--set", "gateway.tls.secretName=gw-tls", "--set", "api.tls.secretName=api-tls")
    seen = set()
    for w in (d for d in docs if d["kind"] in WORKLOAD_KINDS and component(d) in ("gateway", "api")):
        spec = pod_spec(w)
        for c in spec["containers"]:
            env = env_of(c)
            prefix = "CHAT_GATEWAY" if component(w) == "gateway" else "CHAT_API"
            want = {"gateway": "gw-tls", "api": "api-tls"}[component(w)]
            vols = {v["name"]: v for v in spec.get("volumes", [])}
            mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
            ok = (vols.get("tls", {}).get("secret", {}).get("secretName") == want
                  and mounts.get("tls", {}).get("readOnly") is True)
            for var, file in ((f"{prefix}_TLS_CERT", "tls.crt"), (f"{prefix}_TLS_KEY", "tls.key")):
                path = env.get(var, {}).get("value", "")
                ok = ok and path == os.path.join(mounts.get("tls", {}).get("mountPath", "?"), file)
            check(ok, f"{w['metadata']['name']}: TLS Secret {want} mounted read-only and named by {prefix}_TLS_*")
            seen.add(component(w))
    check(seen == {"gateway", "api"}, f"TLS values render for the gateway and the api: {seen}")
    for w in (d for d in chart.template() if d["kind"] in WORKLOAD_KINDS):
        for c in pod_spec(w)["containers"]:
            check(not any(e["name"].endswith("_TLS_CERT") for e in c.get("env", [])),
                  f"{w['metadata']['name']}: TLS variables without tls.secretName")

    # production values: no credential anywhere in the rendered text
    docs = chart.template("-f", prod)
    text = yaml.safe_dump_all(docs)
    for pattern in (r"mongodb(\+srv)?://", r"rediss?://"):
        check(not re.search(pattern, text), f"production values: a {pattern} URL is rendered in plain text")


# ---- refusals ----

def run_refusals(chart):
    values = merged_values(chart.dir)
    parts = values["topics"]["topics"]["chat.deliver"]["partitions"]
    cases = [
        ("gateway.replicas above partitions", ["--set", f"gateway.replicas={parts + 1}"],
         f"gateway.replicas ({parts + 1}) exceeds the {parts} partitions of chat.deliver"),
        ("fewer partitions than gateways", ["--set", "gateway.replicas=3",
                                            "--set", "topics.topics.chat\\.deliver.partitions=2"],
         "gateway.replicas (3) exceeds the 2 partitions of chat.deliver"),
        ("autoscaling above partitions", ["--set", "gateway.autoscaling.enabled=true",
                                          "--set", f"gateway.autoscaling.maxReplicas={parts + 4}"],
         f"gateway.autoscaling.maxReplicas ({parts + 4}) exceeds the {parts} partitions of chat.deliver"),
        ("production values with 17 gateways", ["-f", production(chart.dir), "--set", "gateway.autoscaling.maxReplicas=17"],
         "gateway.autoscaling.maxReplicas (17) exceeds the 16 partitions"),
        ("a misspelt key", ["--set", "gateway.replica=3"], "additional properties 'replica' not allowed"),
        ("a librdkafka property that cannot be a variable", ["--set", "kafka.config.socket_timeout=1"],
         "invalid propertyName 'socket_timeout'"),
        ("a wrong type", ["--set-string", "gateway.replicas=three"], "gateway/replicas"),
        ("Web Push without its Secret", ["--set", "webPush.publicKey=BKEY", "--set", "webPush.subject=mailto:a@b.c"],
         "webPush.publicKey needs webPush.existingSecret"),
        ("SASL without its Secret", ["--set", "kafka.sasl.mechanism=PLAIN"],
         "kafka.sasl.mechanism needs kafka.sasl.existingSecret"),
        ("no MongoDB", ["--set", "mongodb.uri="], "set mongodb.existingSecret"),
    ]
    for label, args, message in cases:
        p = chart.template(*args, ok=False)
        if check(p.returncode != 0, f"refusal: {label}: helm template succeeded"):
            if check(message in p.stderr, f"refusal: {label}: the error does not say {message!r}:\n{p.stderr}"):
                said = [line for line in p.stderr.splitlines() if message in line]
                print(f"ok: refused {label}: {said[0].strip()[:200]}")
    # and the limit itself is allowed
    p = chart.template("--set", f"gateway.replicas={parts}", ok=False)
    check(p.returncode == 0, f"refusal: gateway.replicas={parts} (= partitions) refused:\n{p.stderr}")


# ---- sources ----

def run_sources(helm, chart_src):
    root = os.path.realpath(os.path.join(chart_src, "..", "..", ".."))
    for name, target in (("rules", "deploy/prometheus/rules"), ("dashboards", "deploy/grafana/dashboards")):
        link = os.path.join(chart_src, "files", name)
        check(os.path.islink(link), f"{link} is not a symbolic link (the chart must not keep a copy)")
        check(os.path.realpath(link) == os.path.join(root, target), f"{link} does not lead to {target}")
        check(not os.path.isabs(os.readlink(link)), f"{link} is an absolute link")

    fixtures = os.path.join(HERE, "fixtures")
    chart = Chart(helm, chart_src, rules=os.path.join(fixtures, "rules"),
                  dashboards=os.path.join(fixtures, "dashboards"))
    try:
        docs = chart.template("--set", "monitoring.prometheusRule.enabled=true")
        check_rules_and_dashboards(docs, os.path.join(fixtures, "rules"), os.path.join(fixtures, "dashboards"),
                                   "test files")
        docs = chart.template("--set", "monitoring.dashboards.enabled=false")
        check(not [d for d in docs if d["kind"] == "ConfigMap" and "dashboard" in d["metadata"]["name"]],
              "dashboards rendered although monitoring.dashboards.enabled is false")
        docs = chart.template("--set", "monitoring.dashboards.label=sidecar_dashboard",
                              "--set", "monitoring.dashboards.labelValue=yes")
        cms = [d for d in docs if d["kind"] == "ConfigMap" and "dashboard" in d["metadata"]["name"]]
        check(cms and all(d["metadata"]["labels"].get("sidecar_dashboard") == "yes" for d in cms),
              "monitoring.dashboards.label/labelValue not applied")
    finally:
        chart.close()

    # The repository's own rules and dashboards, once they exist: what the chart ships is them.
    rules, dashboards = (os.path.join(root, t) for t in ("deploy/prometheus/rules", "deploy/grafana/dashboards"))
    if os.path.isdir(rules) and os.path.isdir(dashboards):
        chart = Chart(helm, chart_src)
        try:
            docs = chart.template("--api-versions", MONITORING_API)
            check_rules_and_dashboards(docs, rules, dashboards, "repository files")
        finally:
            chart.close()
    else:
        print("note: deploy/prometheus/rules or deploy/grafana/dashboards missing: only the test files checked")


def check_rules_and_dashboards(docs, rules_dir, dashboards_dir, label):
    want_groups = []
    for f in sorted(os.listdir(rules_dir)):
        if f.endswith((".yml", ".yaml")):
            with open(os.path.join(rules_dir, f)) as fh:
                want_groups += (yaml.safe_load(fh) or {}).get("groups") or []
    rules = [d for d in docs if d["kind"] == "PrometheusRule"]
    if want_groups:
        if check(len(rules) == 1, f"{label}: {len(rules)} PrometheusRules (want 1)"):
            got = rules[0]["spec"]["groups"]
            key = lambda g: g["name"]  # noqa: E731
            check(sorted(got, key=key) == sorted(want_groups, key=key),
                  f"{label}: the PrometheusRule's groups differ from the rules files")
            check_crd_shape(rules[0], f"{label}: PrometheusRule")
    else:
        check(not rules, f"{label}: a PrometheusRule without rules")
    want = {f for f in os.listdir(dashboards_dir) if f.endswith(".json")}
    got = {}
    for d in docs:
        if d["kind"] == "ConfigMap" and "dashboard" in d["metadata"]["name"]:
            check(d["metadata"]["labels"].get("grafana_dashboard") == "1",
                  f"{label}: ConfigMap/{d['metadata']['name']} lacks grafana_dashboard: \"1\"")
            got.update(d["data"])
    check(set(got) == want, f"{label}: dashboards shipped {sorted(got)}, files {sorted(want)}")
    for f in want & set(got):
        with open(os.path.join(dashboards_dir, f)) as fh:
            check(got[f] == fh.read().rstrip("\n"), f"{label}: dashboard {f} is not shipped as is")
    if not failures:
        print(f"ok: {label}: {len(want_groups)} rule groups and {len(want)} dashboards shipped as they are")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--helm", required=True)
    ap.add_argument("--chart", required=True)
    ap.add_argument("check", choices=["lint", "render", "refusals", "sources"])
    a = ap.parse_args()
    if not os.access(a.helm, os.X_OK):
        raise SystemExit(f"helm not found at {a.helm}: run scripts/setup")
    chart_src = os.path.realpath(a.chart)
    if a.check == "sources":
        run_sources(a.helm, chart_src)
    else:
        chart = Chart(a.helm, chart_src)
        try:
            {"lint": run_lint, "refusals": run_refusals,
             "render": lambda c: run_render(c, chart_src)}[a.check](chart)
        finally:
            chart.close()
    for f in failures:
        print(f"FAIL: {f}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} failure(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
