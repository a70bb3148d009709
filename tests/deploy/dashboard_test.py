#!/usr/bin/env python3
"""Every metric the Grafana dashboard queries is exported by a live node, and
the exposition passes `promtool check metrics`.

Usage: dashboard_test.py SOURCE_DIR ESFLOW_BINARY

Starts a nats-server with JetStream on a free loopback port and `esflow dev
--nats` against it (HTTP on another free loopback port, a temporary data
directory), sends a few commands (accepted, duplicate, rejected, a bad
tenant), scrapes /metrics, runs promtool on it, then reads every PromQL
expression of deploy/grafana/esflow.json (panels and template variables),
extracts the metric names (past rate(), sum by (...), histogram_quantile(),
label matchers and ranges) and fails naming the panel for any name that is
not exported, for a histogram_quantile() over anything but a histogram's
_bucket, and for a rate() over a gauge. Traffic: 127.0.0.1 only; every wait
is bounded; both processes are stopped by their pid.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

SRC, ESFLOW = sys.argv[1], sys.argv[2]
failures = []


def fail(message):
    failures.append(message)
    print("FAIL: " + message, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nats_server_binary():
    env = os.environ.get("ESFLOW_NATS_SERVER")
    if env:
        return env
    if os.access("/usr/sbin/nats-server", os.X_OK):
        return "/usr/sbin/nats-server"
    return shutil.which("nats-server")


def wait_until(what, check, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    raise SystemExit(f"FAIL: {what} within {seconds} s")


def accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def http(url, body=None, headers=None):
    req = urllib.request.Request(url, data=body.encode() if body is not None else None, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return None, ""


def stop(proc, name):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop in 15 s: SIGKILL", flush=True)
            proc.kill()
            proc.wait(timeout=5)


# --- PromQL: the metric names an expression reads ----------------------------------------
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
            "unless", "offset", "inf", "nan"}


def metric_names(expr):
    """(names, names under histogram_quantile, names under rate/irate/increase)."""
    m = re.match(r"\s*label_values\(\s*([A-Za-z_:][\w:]*)", expr)
    if m:
        return {m.group(1)}, set(), set()
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)       # strings (label values, templates)
    e = re.sub(r"\{[^}]*\}", "", e)                      # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)                     # ranges
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)  # label lists
    names = {n for n in re.findall(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()", e) if n.lower() not in KEYWORDS}
    quantiled = set(re.findall(r"histogram_quantile\(\s*[\d.]+\s*,\s*(?:\w+\s*\(\s*)*([A-Za-z_:][\w:]*)", e))
    rated = set(re.findall(r"\b(?:rate|irate|increase)\(\s*([A-Za-z_:][\w:]*)", e))
    return names, quantiled, rated


# The extraction itself, so a regression in it cannot pass every panel.
assert metric_names('sum by (node, le) (rate(a_bucket{node=~"$node"}[5m]))') == ({"a_bucket"}, set(), {"a_bucket"})
assert metric_names("histogram_quantile(0.99, sum by (le) (rate(b_bucket[1m])))")[1] == {"b_bucket"}
assert metric_names("sum(rate(c_sum[1m])) / sum(rate(c_count[1m]))")[0] == {"c_sum", "c_count"}
assert metric_names("label_values(d_total{x=\"y\"}, node)")[0] == {"d_total"}


def exprs_of(dashboard):
    for panel in dashboard.get("panels", []):
        for p in [panel] + panel.get("panels", []):
            for t in p.get("targets", []):
                yield p.get("title", "?"), t.get("expr", "")
    for v in dashboard.get("templating", {}).get("list", []):
        q = v.get("query")
        yield f"variable ${v['name']}", q.get("query", "") if isinstance(q, dict) else (q or "")


tmp = tempfile.mkdtemp(prefix="esflow-dashboard-")
procs = []
try:
    nats_bin = nats_server_binary()
    if not nats_bin:
        raise SystemExit("FAIL: no nats-server binary (deploy/install-deps.sh installs it)")
    nats_port, http_port = free_port(), free_port()
    nats = subprocess.Popen([nats_bin, "-js", "-a", "127.0.0.1", "-p", str(nats_port), "-sd", f"{tmp}/js",
                             "-l", f"{tmp}/nats.log"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append((nats, "nats-server"))
    wait_until("nats-server accepts connections", lambda: accepts(nats_port), 10)

    env = dict(os.environ, ESFLOW_PIPELINES_DIR=f"{SRC}/pipelines")
    for k in ("ESFLOW_NATS_URL", "ESFLOW_NATS_URL_FILE", "ESFLOW_HTTP_ADDR", "ESFLOW_DATA_DIR"):
        env.pop(k, None)
    log = open(f"{tmp}/esflow.log", "w")
    node = subprocess.Popen([ESFLOW, "dev", "--nats", f"nats://127.0.0.1:{nats_port}", "--http",
                             f"127.0.0.1:{http_port}", "--data-dir", f"{tmp}/data"],
                            env=env, stdout=log, stderr=log, cwd=tmp)
    procs.append((node, "esflow dev"))
    base = f"http://127.0.0.1:{http_port}"
    wait_until("esflow dev --nats is ready (/ready 200)", lambda: http(base + "/ready")[0] == 200, 30)

    def command(tenant, body):
        return http(base + "/v1/commands", body, {"x-tenant-id": tenant, "content-type": "application/json"})

    sent = [
        ("acme", '{"aggregate_type":"Account","aggregate_id":"a-1","command_id":"c-1","payload":{"type":"open_account","initial_balance":10}}', 200),
        ("acme", '{"aggregate_type":"Account","aggregate_id":"a-1","command_id":"c-1","payload":{"type":"open_account","initial_balance":10}}', 200),
        ("acme", '{"aggregate_type":"Account","aggregate_id":"a-1","payload":{"type":"deposit","amount":5}}', 200),
        ("acme", '{"aggregate_type":"Account","aggregate_id":"a-1","payload":{"type":"withdraw","amount":500}}', 422),
        ("globex", '{"aggregate_type":"Account","aggregate_id":"a-1","payload":{"type":"open_account","initial_balance":0}}', 200),
        ("bad tenant!", '{"aggregate_type":"Account","payload":{"type":"open_account","initial_balance":0}}', 400),
    ]
    for tenant, body, want in sent:
        status, answer = command(tenant, body)
        if status != want:
            fail(f"command for {tenant!r} answered {status} (want {want}): {answer}")

    status, text = http(base + "/metrics")
    if status != 200:
        raise SystemExit(f"FAIL: GET /metrics answered {status}")
    with open(f"{tmp}/metrics.txt", "w") as f:
        f.write(text)

    # promtool lints the exposition (names, help, types). Installed by deploy/install-deps.sh.
    promtool = shutil.which("promtool") or "/opt/esflow-tools/prometheus/usr/bin/promtool"
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        fail(f"promtool check metrics: exit {r.returncode}\n{r.stdout}{r.stderr}")

    types, samples = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind.strip()
        elif line and not line.startswith("#"):
            samples.add(re.match(r"[A-Za-z_:][\w:]*", line).group(0))

    def family(name):
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and types.get(name[: -len(suffix)]) == "histogram":
                return name[: -len(suffix)], "histogram"
        return name, types.get(name)

    with open(os.path.join(SRC, "deploy", "grafana", "esflow.json")) as f:
        dashboard = json.load(f)
    checked = 0
    for title, expr in exprs_of(dashboard):
        names, quantiled, rated = metric_names(expr)
        if not names:
            fail(f"panel '{title}': no metric in {expr!r}")
        for n in sorted(names):
            checked += 1
            if n not in samples:
                fail(f"panel '{title}': {n} is not exported by /metrics (expr {expr})")
        for n in quantiled:
            if not n.endswith("_bucket") or family(n)[1] != "histogram":
                fail(f"panel '{title}': histogram_quantile over {n}, not a histogram's _bucket")
        for n in rated:
            if family(n)[1] not in ("counter", "histogram"):
                fail(f"panel '{title}': rate() over {n}, a {family(n)[1]}")
    print(f"{checked} metric references checked against {len(samples)} exported series names", flush=True)
finally:
    for proc, name in reversed(procs):
        stop(proc, name)
    if failures and os.path.exists(f"{tmp}/esflow.log"):
        print("--- esflow log (tail)\n" + open(f"{tmp}/esflow.log").read()[-3000:])
    shutil.rmtree(tmp, ignore_errors=True)

print(f"{len(failures)} failed" if failures else "dashboard metrics: all exported")
sys.exit(1 if failures else 0)
