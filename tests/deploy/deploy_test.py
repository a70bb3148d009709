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
- stack.yml's aggregate services (those running the `aggregate` pipeline)
  are exactly `esflow placement constraints --ranges R` with R their names'
  ranges (aggregate-<range>), each with ESFLOW_NODE_ID (or --node-id) equal
  to its name and ESFLOW_ADVERTISE_HTTP <name>:<port> (the gateway dials it);
  the other stateful services are pinned as `esflow placement constraints
  --node-id` says (esflow nodes by esflow.node, NATS servers by esflow.nats);
- stack.yml's esflow services: health check on /health and /ready with a
  start period, stop_grace_period above drain_timeout, rolling update with
  rollback, resource limits, the NATS URL from a secret; stateful ones one
  replica, stop-first, a volume at the data directory; the gateway (the
  `gateway` pipeline) at least 2 replicas, no volume, no pin to a node
  label, the API key file from a mounted secret, its query and runner
  upstreams services of the stack serving them;
- in stack.yml only the gateway and Grafana publish ports;
- the NATS image supports `sync_interval: always` (>= 2.10);
- `promtool check config` accepts deploy/prometheus.yml and it scrapes every
  esflow service (`<name>:8080`, or for a service of several tasks each task
  by DNS `tasks.<name>`); Grafana is provisioned with the dashboard and its datasource.
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


def pipelines_of(svc):
    """The `pipeline:` names of the shipped files a service's command runs."""
    names = set()
    for a in svc.get("command") or []:
        if a.startswith(CONTAINER_PIPELINES):
            local = os.path.join(SRC, "pipelines", a[len(CONTAINER_PIPELINES):])
            if os.path.exists(local):
                names.add((load(local) or {}).get("pipeline"))
    return names


def is_gateway(svc):
    return "gateway" in pipelines_of(svc)


def is_aggregate(svc):
    return "aggregate" in pipelines_of(svc)


def setting(svc, env_name, flag=None):
    """A setting given by the service's environment or its command's flag (the flag wins)."""
    argv = list(svc.get("command") or []) if flag else []
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a[len(flag) + 1:]
    value = (svc.get("environment") or {}).get(env_name)
    return None if value is None else str(value)


def secret_paths(svc):
    """Where the service's secrets are mounted: secret name by path."""
    paths = {}
    for s in svc.get("secrets") or []:
        source = s if isinstance(s, str) else s["source"]
        target = source if isinstance(s, str) else s.get("target", source)
        paths[target if target.startswith("/") else "/run/secrets/" + target] = source
    return paths


def http_port(svc):
    addr = setting(svc, "ESFLOW_HTTP_ADDR", "--http") or base_env.get("ESFLOW_HTTP_ADDR", "")
    return addr.rsplit(":", 1)[-1]


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
            mounted = secret_paths(svc)
            for key, value in list(env.items()):
                if key.endswith("_FILE") and value.startswith("/run/secrets/"):
                    if value not in mounted:
                        fail(f"{where}: {key}={value} but no secret is mounted there (mounted: {sorted(mounted)})")
                    stand_in = os.path.join(tmp, f"{name}-{key}")
                    if key == "ESFLOW_KEYS_FILE":  # the gateway's key file, as `esflow keys add` writes it
                        run([ESFLOW, "keys", "add", "--file", stand_in, "--tenant", "*", "--rights", "commands"])
                    else:
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
            volumes = [v if isinstance(v, str) else f"{v.get('source')}:{v.get('target')}" for v in svc.get("volumes") or []]
            if is_gateway(svc):
                # Stateless: any of its tasks serves any client; a volume would tie it to a host.
                if volumes:
                    fail(f"{where}: the gateway has volumes {volumes}; it keeps no state")
            else:
                if f"data_dir {data_dir}," not in out and f"data_dir {data_dir})" not in out:
                    fail(f"{where}: data_dir is not the image's {data_dir}:\n{out}")
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
def constraints_of(name):
    return ((stack["services"][name].get("deploy") or {}).get("placement") or {}).get("constraints")


# Aggregate nodes by tenant range: the ranges are their names' (aggregate-<range>).
AGGREGATE_PREFIX = "aggregate-"
aggregates = [n for n, s in esflow_services(stack).items() if is_aggregate(s)]
if not aggregates:
    fail("swarm/stack.yml: no aggregate service")
ranges = []
for n in aggregates:
    if not n.startswith(AGGREGATE_PREFIX):
        fail(f"swarm/stack.yml service {n}: an aggregate service not named {AGGREGATE_PREFIX}<tenant range>")
    else:
        ranges.append(n[len(AGGREGATE_PREFIX):])
if ranges:
    cmd = [ESFLOW, "placement", "constraints", "--ranges", ",".join(ranges)]
    r = run(cmd)
    if r.returncode != 0:
        fail(f"{' '.join(cmd)}: exit {r.returncode}\n{r.stderr}")
    else:
        want = {n: stanza["deploy"]["placement"]["constraints"] for n, stanza in yaml.safe_load(r.stdout).items()}
        have = {n: constraints_of(n) for n in aggregates}
        if have != want:
            fail(f"swarm/stack.yml: aggregate services {have} differ from `{' '.join(cmd[1:])}`: {want}")
for n in aggregates:
    svc = stack["services"][n]
    where = f"swarm/stack.yml service {n}"
    node_id = setting(svc, "ESFLOW_NODE_ID", "--node-id")
    if node_id != n:
        fail(f"{where}: node id {node_id}, not the service name (placement is off or registers another node)")
    # The gateway proxies aggregate reads to the address a node registers
    # (advertise_* are settings by env only: `esflow run` has no flag for them).
    advertised = setting(svc, "ESFLOW_ADVERTISE_HTTP")
    if advertised != f"{n}:{http_port(svc)}":
        fail(f"{where}: ESFLOW_ADVERTISE_HTTP {advertised}, not {n}:{http_port(svc)} (its name on the network)")
    if setting(svc, "ESFLOW_GRPC_ADDR", "--grpc") and setting(svc, "ESFLOW_ADVERTISE_GRPC") is None:
        fail(f"{where}: serves gRPC but advertises no gRPC address")

# Saga runners route tenants by node id (docs/runner.md "Saga replicas"): the
# service name, so a second runner service registers as another replica.
for n, svc in stack["services"].items():
    if "runner" in pipelines_of(svc):
        node_id = setting(svc, "ESFLOW_NODE_ID", "--node-id")
        if node_id != n:
            fail(f"swarm/stack.yml service {n}: saga runner with node id {node_id}, not the service name")

for label, pick in (("esflow.node", lambda s: s.get("image") == "esflow" and not is_aggregate(s) and not is_gateway(s)),
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
    have = {n: constraints_of(n) for n in names}
    if have != want:
        fail(f"swarm/stack.yml: placement constraints {have} differ from `{' '.join(cmd[1:])}`: {want}")

# --- Swarm settings of the esflow services ----------------------------------------------
for name, svc in esflow_services(stack).items():
    where = f"swarm/stack.yml service {name}"
    deploy = svc.get("deploy") or {}
    update = deploy.get("update_config") or {}
    if is_gateway(svc):
        if not isinstance(deploy.get("replicas"), int) or deploy["replicas"] < 2:
            fail(f"{where}: replicas {deploy.get('replicas')}: the gateway is stateless, run at least 2")
        pins = [c for c in (deploy.get("placement") or {}).get("constraints") or [] if "node.labels." in c]
        if pins:
            fail(f"{where}: pinned by {pins}; the stateless gateway may run on any host")
        keys = setting(svc, "ESFLOW_KEYS_FILE")
        if not keys or keys not in secret_paths(svc):
            fail(f"{where}: the API key file {keys} is not a mounted secret ({sorted(secret_paths(svc))})")
        # Its upstreams: services of the stack that serve them on that port.
        for env_name, kind, port_of in (
                ("ESFLOW_QUERY_UPSTREAM", "projection", lambda u: setting(u, "ESFLOW_GRPC_ADDR", "--grpc")),
                ("ESFLOW_RUNNER_GRPC", "runner", lambda u: setting(u, "ESFLOW_GRPC_ADDR", "--grpc")),
                ("ESFLOW_RUNNER_HTTP", "runner", lambda u: ":" + http_port(u))):
            target = (svc.get("environment") or {}).get(env_name, "")
            host, _, port = str(target).rpartition(":")
            up = stack["services"].get(host)
            if not up or kind not in pipelines_of(up) or not (port_of(up) or "").endswith(":" + port):
                fail(f"{where}: {env_name}={target} is not a {kind} service of the stack listening on that port")
    else:
        if deploy.get("replicas") != 1:
            fail(f"{where}: replicas {deploy.get('replicas')}: a stateful node runs one task (its data directory)")
        if update.get("order") != "stop-first":
            fail(f"{where}: update_config {update}: want order stop-first (the old task releases the data directory)")
    test = " ".join(svc.get("healthcheck", {}).get("test") or [])
    if "/health" not in test or "/ready" not in test:
        fail(f"{where}: the healthcheck does not probe /health and /ready: {test}")
    if not svc.get("healthcheck", {}).get("start_period"):
        fail(f"{where}: healthcheck without start_period")
    if update.get("failure_action") != "rollback":
        fail(f"{where}: update_config {update}: want failure_action rollback")
    limits = (deploy.get("resources") or {}).get("limits") or {}
    if not limits.get("cpus") or not limits.get("memory"):
        fail(f"{where}: no cpu and memory limits: {limits}")
    if "ESFLOW_NATS_URL_FILE" not in (svc.get("environment") or {}):
        fail(f"{where}: the NATS URL (credentials) does not come from a secret file")

# --- only the gateway (and Grafana) face clients -------------------------------------
gateways = [n for n, s in esflow_services(stack).items() if is_gateway(s)]
if not gateways:
    fail("swarm/stack.yml: no gateway service")
for name, svc in stack["services"].items():
    ports = svc.get("ports") or []
    if ports and name not in gateways and name != "grafana":
        fail(f"swarm/stack.yml service {name}: publishes {ports}; only the gateway (and Grafana) publish ports")
for name in gateways:
    svc = stack["services"][name]
    published = [p.get("target") if isinstance(p, dict) else int(str(p).rsplit(":", 1)[-1].split("/")[0])
                 for p in svc.get("ports") or []]
    if int(http_port(svc)) not in published:
        fail(f"swarm/stack.yml service {name}: does not publish its HTTP port {http_port(svc)} (targets {published})")

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
    for sd in job.get("dns_sd_configs", []):
        if sd.get("type", "SRV") == "A":
            targets.update(f"{n}:{sd.get('port')}" for n in sd["names"])
for label, doc in (("compose.yaml", compose), ("swarm/stack.yml", stack)):
    for name, svc in esflow_services(doc).items():
        port = http_port(svc)
        if ((svc.get("deploy") or {}).get("replicas") or 1) > 1:
            # Its name is a virtual IP: each scrape would hit another task.
            if f"tasks.{name}:{port}" not in targets or f"{name}:{port}" in targets:
                fail(f"deploy/prometheus.yml does not scrape each task of {label} service {name} "
                     f"(DNS tasks.{name}, port {port}, and not {name}:{port})")
        elif f"{name}:{port}" not in targets:
            fail(f"deploy/prometheus.yml does not scrape {label} service {name} ({name}:{port})")
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
