#!/usr/bin/env python3
"""The deployment files (deploy/) are valid and say what the binary accepts.

Usage: deploy_test.py SOURCE_DIR ESFLOW_BINARY

Checks, each failing with the file and service it is about:
- `docker-compose config -q` accepts deploy/compose.yaml and deploy/swarm/stack.yml;
- every esflow service's `command:` (after the image's entrypoint
  /usr/bin/esflow) with its environment and the image's ENV is a valid esflow
  invocation: `esflow validate` on its pipeline files (container paths mapped
  to pipelines/) and `esflow <command> --check`; it runs on JetStream, its
  data directory is a volume, its HTTP port is the one probed and scraped;
- stack.yml pins every stateful service exactly as `esflow placement
  constraints` says (esflow nodes by esflow.node, NATS servers by esflow.nats);
- stack.yml's esflow services: one replica, health check on /health and
  /ready with a start period, stop_grace_period above drain_timeout, rolling
  update stop-first with rollback, resource limits, the NATS URL from a secret;
- the NATS image supports `sync_interval: always` (>= 2.10);
- `promtool check config` accepts deploy/prometheus.yml and it scrapes every
  esflow service; Grafana is provisioned with the dashboard and its datasource.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

SRC, ESFLOW = sys.argv[1], sys.argv[2]
DEPLOY = os.path.join(SRC, "deploy")
COMPOSE = os.path.join(DEPLOY, "compose.yaml")
STACK = os.path.join(DEPLOY, "swarm", "stack.yml")
CONTAINER_PIPELINES = "/usr/share/esflow/pipelines/"
failures = []


def fail(message):
    failures.append(message)
    print("FAIL: " + message, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


def load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def seconds(value):
    """A compose duration (30s, 1m30s, 500ms) in seconds."""
    total = 0.0
    for number, unit in re.findall(r"([\d.]+)(ms|us|h|m|s)", str(value)):
        total += float(number) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6}[unit]
    return total


def image_env():
    """ENV and ENTRYPOINT of deploy/Dockerfile's final stage, with what it
    inherits from the stages it is built FROM (`FROM runtime`)."""
    with open(os.path.join(DEPLOY, "Dockerfile")) as f:
        text = f.read()
    stages = []  # (name, parent, lines)
    for block in re.split(r"\n(?=FROM )", "\n" + text)[1:]:
        head = block.splitlines()[0].split()
        name = head[3] if len(head) >= 4 and head[2].upper() == "AS" else None
        stages.append((name, head[1], block.splitlines()[1:]))
    by_name = {name: (parent, lines) for name, parent, lines in stages if name}

    def resolve(parent, lines, depth=0):
        env, entrypoint = {}, None
        if parent in by_name and depth < 10:
            env, entrypoint = resolve(*by_name[parent], depth + 1)
        for line in lines:
            if line.startswith("ENV "):
                for k, v in re.findall(r"(\w+)=(\S+)", line):
                    env[k] = v
            if line.startswith("ENTRYPOINT "):
                entrypoint = json.loads(line[len("ENTRYPOINT "):])
        return env, entrypoint

    _, parent, lines = stages[-1]
    return resolve(parent, lines)


def esflow_services(doc):
    return {n: s for n, s in doc["services"].items() if s.get("image") == "esflow"}


# --- docker-compose accepts both files -------------------------------------------------
for path in (COMPOSE, STACK):
    r = run(["docker-compose", "-f", path, "config", "-q"])
    if r.returncode != 0:
        fail(f"docker-compose -f {path} config -q: exit {r.returncode}\n{r.stderr}")

compose, stack = load(COMPOSE), load(STACK)
base_env, entrypoint = image_env()
if entrypoint != ["/usr/bin/esflow"]:
    fail(f"deploy/Dockerfile: ENTRYPOINT is {entrypoint}, the commands below assume /usr/bin/esflow")
drain_ms = None
for s in json.loads(run([ESFLOW, "kinds", "--format", "json"]).stdout)["settings"]["engine"]:
    if s["name"] == "drain_timeout":
        drain_ms = int(s["default"])

# --- every esflow service's command is a valid esflow invocation -----------------------
with tempfile.TemporaryDirectory() as tmp:
    for label, doc in (("compose.yaml", compose), ("swarm/stack.yml", stack)):
        services = esflow_services(doc)
        if not services:
            fail(f"{label}: no esflow service")
        for name, svc in services.items():
            where = f"{label} service {name}"
            argv = list(svc.get("command") or [])
            if not argv or argv[0] not in ("run", "dev"):
                fail(f"{where}: command {argv} does not run nodes (run/dev)")
                continue
            files, args = [], []
            for a in argv:
                if a.startswith(CONTAINER_PIPELINES):
                    local = os.path.join(SRC, "pipelines", a[len(CONTAINER_PIPELINES):])
                    files.append(local)
                    args.append(local)
                elif a.startswith("/"):
                    fail(f"{where}: {a} is not a path the image has (pipelines are in {CONTAINER_PIPELINES})")
                    args.append(a)
                else:
                    args.append(a)
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
            env.update(base_env)
            env.update({k: str(v) for k, v in (svc.get("environment") or {}).items()})
            secret_names = [s if isinstance(s, str) else s["source"] for s in svc.get("secrets") or []]
            for key, value in list(env.items()):
                if key.endswith("_FILE") and value.startswith("/run/secrets/"):
                    secret = value[len("/run/secrets/"):]
                    if secret not in secret_names:
                        fail(f"{where}: {key}={value} but secret '{secret}' is not mounted")
                    stand_in = os.path.join(tmp, secret)
                    with open(stand_in, "w") as f:
                        f.write("nats://esflow:secret@127.0.0.1:1\n")
                    env[key] = stand_in
            if files:
                r = run([ESFLOW, "validate", *files], env=env, cwd=tmp)
                if r.returncode != 0:
                    fail(f"{where}: esflow validate {files}: exit {r.returncode}\n{r.stderr}")
            r = run([ESFLOW, *args, "--check"], env=env, cwd=tmp)
            if r.returncode != 0:
                fail(f"{where}: esflow {' '.join(argv)} --check: exit {r.returncode}\n{r.stderr}")
                continue
            out = r.stdout
            data_dir = base_env.get("ESFLOW_DATA_DIR", "")
            if "event_log embedded" in out:
                fail(f"{where}: runs on the embedded log, not JetStream:\n{out}")
            if f"data_dir {data_dir}," not in out and f"data_dir {data_dir})" not in out:
                fail(f"{where}: data_dir is not the image's {data_dir}:\n{out}")
            volumes = [v if isinstance(v, str) else f"{v.get('source')}:{v.get('target')}" for v in svc.get("volumes") or []]
            if not any(v.split(":")[1] == data_dir for v in volumes if ":" in v):
                fail(f"{where}: no volume at the data directory {data_dir} (volumes {volumes})")
            if "http 0.0.0.0:8080" not in out:
                fail(f"{where}: does not listen on 0.0.0.0:8080 (the probed and scraped port):\n{out}")
            if env.get("ESFLOW_STREAM_REPLICAS") != "3":
                fail(f"{where}: ESFLOW_STREAM_REPLICAS is {env.get('ESFLOW_STREAM_REPLICAS')}, not 3 (R3 streams)")
            grace = seconds(svc.get("stop_grace_period", "10s"))
            if drain_ms is None or grace * 1000 <= drain_ms:
                fail(f"{where}: stop_grace_period {grace}s is not above drain_timeout {drain_ms} ms")

# --- placement: stack.yml's constraints are `esflow placement constraints` output ------
for label, pick in (("esflow.node", lambda s: s.get("image") == "esflow"),
                    ("esflow.nats", lambda s: str(s.get("image", "")).startswith("nats:"))):
    names = [n for n, s in stack["services"].items() if pick(s)]
    if not names:
        fail(f"swarm/stack.yml: no service pinned by {label}")
        continue
    cmd = [ESFLOW, "placement", "constraints", "--label", label]
    for n in names:
        cmd += ["--node-id", n]
    r = run(cmd)
    if r.returncode != 0:
        fail(f"{' '.join(cmd)}: exit {r.returncode}\n{r.stderr}")
        continue
    want = yaml.safe_load(r.stdout)
    have = {n: (stack["services"][n].get("deploy") or {}).get("placement", {}).get("constraints") for n in names}
    if have != want:
        fail(f"swarm/stack.yml: placement constraints {have} differ from `{' '.join(cmd[1:])}`: {want}")

# --- Swarm settings of the esflow services ----------------------------------------------
for name, svc in esflow_services(stack).items():
    where = f"swarm/stack.yml service {name}"
    deploy = svc.get("deploy") or {}
    if deploy.get("replicas") != 1:
        fail(f"{where}: replicas {deploy.get('replicas')}: a stateful node runs one task (its data directory)")
    test = " ".join(svc.get("healthcheck", {}).get("test") or [])
    if "/health" not in test or "/ready" not in test:
        fail(f"{where}: the healthcheck does not probe /health and /ready: {test}")
    if not svc.get("healthcheck", {}).get("start_period"):
        fail(f"{where}: healthcheck without start_period")
    update = deploy.get("update_config") or {}
    if update.get("order") != "stop-first" or update.get("failure_action") != "rollback":
        fail(f"{where}: update_config {update}: want order stop-first, failure_action rollback")
    limits = (deploy.get("resources") or {}).get("limits") or {}
    if not limits.get("cpus") or not limits.get("memory"):
        fail(f"{where}: no cpu and memory limits: {limits}")
    if "ESFLOW_NATS_URL_FILE" not in (svc.get("environment") or {}):
        fail(f"{where}: the NATS URL (credentials) does not come from a secret file")

# --- NATS: a version with sync_interval: always ----------------------------------------
for label, doc in (("compose.yaml", compose), ("swarm/stack.yml", stack)):
    for name, svc in doc["services"].items():
        image = str(svc.get("image", ""))
        if image.startswith("nats:"):
            m = re.match(r"nats:(\d+)\.(\d+)", image)
            if not m or (int(m.group(1)), int(m.group(2))) < (2, 10):
                fail(f"{label} service {name}: {image} is older than 2.10 (no sync_interval: always)")

# --- Prometheus scrapes every esflow node; Grafana has the dashboard ------------------
r = run(["promtool", "check", "config", os.path.join(DEPLOY, "prometheus.yml")])
if r.returncode != 0:
    fail(f"promtool check config deploy/prometheus.yml: exit {r.returncode}\n{r.stdout}{r.stderr}")
targets = set()
for job in load(os.path.join(DEPLOY, "prometheus.yml"))["scrape_configs"]:
    for sc in job.get("static_configs", []):
        targets.update(sc["targets"])
for label, doc in (("compose.yaml", compose), ("swarm/stack.yml", stack)):
    for name in esflow_services(doc):
        if f"{name}:8080" not in targets:
            fail(f"deploy/prometheus.yml does not scrape {label} service {name} ({name}:8080)")
with open(os.path.join(DEPLOY, "grafana", "esflow.json")) as f:
    dashboard = json.load(f)
datasource = load(os.path.join(DEPLOY, "grafana", "provisioning", "datasources", "prometheus.yml"))["datasources"][0]
for p in dashboard["panels"]:
    uid = (p.get("datasource") or {}).get("uid")
    if p["type"] != "row" and uid != datasource["uid"]:
        fail(f"dashboard panel '{p['title']}': datasource uid {uid}, provisioned {datasource['uid']}")
dash_dir = load(os.path.join(DEPLOY, "grafana", "provisioning", "dashboards", "esflow.yml"))["providers"][0]["options"]["path"]
mounts = compose["services"]["grafana"]["volumes"]
if f"./grafana/esflow.json:{dash_dir}/esflow.json:ro" not in mounts:
    fail(f"compose.yaml: grafana does not mount the dashboard into {dash_dir}: {mounts}")

print(f"{len(failures)} failed" if failures else "deploy files: all checks passed")
sys.exit(1 if failures else 0)
