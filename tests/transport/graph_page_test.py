#!/usr/bin/env python3
"""GET /admin/graph.html in headless Chromium against a real `esflow dev`.

Starts `esflow dev` on a free 127.0.0.1 port with a new data directory,
waits for /ready, then:
  - renders the page of every pipeline the node runs and checks that each
    stage named by /admin/graph is drawn (an SVG <g data-stage="NAME">) with
    figures that match the JSON;
  - sends commands with curl and renders again: the figures shown (data-in of
    the stages after the ingest, data-out of the ingest, the visible `in`
    text) grew by at least the commands sent;
  - takes a 1400x900 screenshot into the build tree (graph_page.png) and
    checks it is a real picture, not an empty page.
esflow is killed by its PID at the end, whatever happened. Every wait is
bounded; all traffic goes to 127.0.0.1. Python standard library, curl and
chromium only (deploy/install-deps.sh).
"""
import argparse
import html.parser
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zlib

HOST = "127.0.0.1"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-proxy-server", "--hide-scrollbars", "--disable-extensions",
]
COMMANDS = 6  # one open_account, five deposits


class failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise failure(what)


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy


def get(base, path, timeout=5):
    with OPENER.open(base + path, timeout=timeout) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read()


def get_json(base, path):
    status, _, body = get(base, path)
    check(status == 200, f"GET {path}: HTTP {status}")
    return json.loads(body)


def wait_ready(base, proc, seconds=60):
    deadline = time.monotonic() + seconds
    for _ in range(int(seconds / 0.2) + 1):
        if proc.poll() is not None:
            raise failure(f"esflow exited with {proc.returncode} before it was ready")
        try:
            if get(base, "/ready", timeout=1)[0] == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    raise failure(f"esflow not ready within {seconds} s")


def die_with_parent():
    # Should this script be killed outright (ctest's timeout), esflow gets
    # SIGTERM from the kernel instead of running on (Linux PR_SET_PDEATHSIG).
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def curl_command(base, body):
    out = subprocess.run(
        ["curl", "-sS", "--noproxy", "*", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}",
         base + "/v1/commands", "-H", "x-tenant-id: acme", "-H", "content-type: application/json",
         "-d", json.dumps(body)],
        capture_output=True, text=True, timeout=20)
    return out.stdout.strip()


class page_dom(html.parser.HTMLParser):
    """The stages as drawn: their data-* attributes and visible figures."""

    def __init__(self):
        super().__init__()
        self.stages = {}
        self.graph = {}
        self._stage = None
        self._depth = 0
        self._stat = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg" and a.get("id") == "graph":
            self.graph = a
        if self._stage is not None:
            self._depth += 1
            if tag == "tspan" and "data-stat" in a:
                self._stat = a["data-stat"]
        elif tag == "g" and "data-stage" in a:
            self._stage = a["data-stage"]
            self._depth = 1
            self.stages[self._stage] = {"attrs": a, "text": {}}

    def handle_endtag(self, tag):
        if self._stage is None:
            return
        self._stat = None
        self._depth -= 1
        if self._depth == 0:
            self._stage = None

    def handle_data(self, data):
        if self._stage is not None and self._stat:
            self.stages[self._stage]["text"][self._stat] = data


class chromium:
    def __init__(self, binary, work):
        self.binary = binary
        self.work = work
        self.runs = 0

    def run(self, extra, url, timeout=90):
        self.runs += 1
        profile = tempfile.mkdtemp(prefix=f"profile{self.runs}-", dir=self.work)  # a new one every run
        cmd = [self.binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url]
        try:
            return subprocess.run(cmd, capture_output=True, timeout=timeout,
                                  env={**os.environ, "HOME": self.work})
        finally:
            shutil.rmtree(profile, ignore_errors=True)

    def render(self, url, budget_ms=4000):
        """The DOM after the page has drawn at least one answer (3 tries)."""
        for _ in range(3):
            out = self.run([f"--virtual-time-budget={budget_ms}", "--dump-dom"], url)
            dom = page_dom()
            dom.feed(out.stdout.decode("utf-8", "replace"))
            if int(dom.graph.get("data-refreshes", "0")) > 0:
                return dom
            sys.stderr.write(f"page not drawn yet (chromium exit {out.returncode}): "
                             f"{out.stderr.decode('utf-8', 'replace')[-2000:]}\n")
        raise failure(f"{url}: the page drew no answer of /admin/graph in 3 tries")


def stat(dom, stage, key):
    return int(float(dom.stages[stage]["attrs"][f"data-{key}"]))


def check_drawn(dom, graph, url):
    names = [s["name"] for s in graph["stages"]]
    check(dom.graph.get("data-pipeline") == graph["pipeline"],
          f"{url}: draws pipeline {dom.graph.get('data-pipeline')!r}, want {graph['pipeline']!r}")
    missing = [n for n in names if n not in dom.stages]
    check(not missing, f"{url}: stages not drawn: {missing} (drawn: {sorted(dom.stages)})")
    extra = sorted(set(dom.stages) - set(names))
    check(not extra, f"{url}: stages drawn that /admin/graph does not have: {extra}")
    for s in graph["stages"]:
        d = dom.stages[s["name"]]
        check(d["attrs"].get("data-kind") == s["kind"], f"{url}: {s['name']} drawn as {d['attrs'].get('data-kind')}")
        for stat_name in ("in", "out", "errors", "in_flight", "p50", "p99", "rate"):
            check(stat_name in d["text"], f"{url}: {s['name']} shows no {stat_name} figure")
        shown_in = d["text"]["in"].replace(",", "")
        check(shown_in == d["attrs"]["data-in"],
              f"{url}: {s['name']} shows in {shown_in!r} but data-in is {d['attrs']['data-in']}")


def png_size_and_variety(path):
    data = open(path, "rb").read()
    check(data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    idat, pos = b"", 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)
    return len(data), width, height, len(set(raw))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--esflow", required=True)
    ap.add_argument("--out", required=True, help="where graph_page.png goes (the build tree)")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = ap.parse_args()
    check(shutil.which(args.chromium) or os.path.exists(args.chromium),
          "chromium not found: run deploy/install-deps.sh")

    work = tempfile.mkdtemp(prefix="esflow-graph-page-")
    port = free_port()
    base = f"http://{HOST}:{port}"
    log = open(os.path.join(work, "esflow.log"), "wb")
    proc = subprocess.Popen([args.esflow, "dev", "--http", f"{HOST}:{port}", "--data-dir",
                             os.path.join(work, "data")], stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=die_with_parent)

    def stop(*_):
        # Killed by its PID, whatever happened (the `trap` of this test).
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(1)))
    ok = False
    try:
        wait_ready(base, proc)
        browser = chromium(args.chromium, work)

        status, ctype, body = get(base, "/admin/graph.html")
        check(status == 200 and ctype.startswith("text/html"), f"/admin/graph.html: {status} {ctype}")

        first = get_json(base, "/admin/graph")
        pipelines = first.get("pipelines", [first["pipeline"]])
        check(len(pipelines) >= 2, f"esflow dev runs several pipelines, /admin/graph names {pipelines}")
        page = f"{base}/admin/graph.html"
        before = browser.render(page)
        check_drawn(before, first, page)
        check(before.graph.get("data-pipeline") == pipelines[0], "the page starts on the first pipeline")
        for name in pipelines[1:]:
            url = f"{page}?pipeline={name}"
            check_drawn(browser.render(url), get_json(base, f"/admin/graph?pipeline={name}"), url)
        print(f"drawn: every stage of {', '.join(pipelines)}")

        codes = [curl_command(base, {"aggregate_type": "Account", "aggregate_id": "acc-1",
                                     "payload": {"type": "open_account", "initial_balance": 0}})]
        for i in range(COMMANDS - 1):
            codes.append(curl_command(base, {"aggregate_type": "Account", "aggregate_id": "acc-1",
                                             "payload": {"type": "deposit", "amount": 10 + i}}))
        check(codes == ["200"] * COMMANDS, f"commands answered {codes}")

        after_json = get_json(base, "/admin/graph")
        after = browser.render(page)
        check_drawn(after, after_json, page)
        grown = 0
        for s in after_json["stages"]:
            name = s["name"]
            key = "out" if s["role"] == "source" else "in"
            b, a = stat(before, name, key), stat(after, name, key)
            if s["stats"][key] - b >= COMMANDS:  # every command passed this stage
                check(a - b >= COMMANDS, f"{name}: {key} shown {b} -> {a} after {COMMANDS} commands")
                grown += 1
        check(grown >= 3, f"only {grown} stages had the commands pass them: {after_json['stages']}")
        print(f"figures grew on {grown} stages after {COMMANDS} commands")

        # The screenshot, with traffic running so the rates show.
        stop_traffic = threading.Event()

        def traffic():
            for i in range(300):
                if stop_traffic.is_set():
                    return
                # Deposits, and every tenth a withdrawal too large (rejected: an error to show).
                payload = ({"type": "withdraw", "amount": 10**9} if i % 10 == 9 else {"type": "deposit", "amount": 1})
                curl_command(base, {"aggregate_type": "Account", "aggregate_id": "acc-1", "payload": payload})
                time.sleep(0.01)

        t = threading.Thread(target=traffic, daemon=True)
        t.start()
        shot = os.path.join(os.path.abspath(args.out), "graph_page.png")
        if os.path.exists(shot):
            os.remove(shot)
        time.sleep(1.5)
        out = browser.run([f"--screenshot={shot}", "--window-size=1400,900", "--virtual-time-budget=5000"],
                          page)
        stop_traffic.set()
        t.join(timeout=30)
        check(os.path.exists(shot), f"no screenshot: {out.stderr.decode('utf-8', 'replace')[-2000:]}")
        size, width, height, variety = png_size_and_variety(shot)
        check((width, height) == (1400, 900), f"{shot} is {width}x{height}")
        check(size > 20000 and variety > 20, f"{shot} looks empty ({size} bytes, {variety} distinct bytes)")
        print(f"screenshot: {shot} ({size} bytes)")
        ok = True
    except failure as e:
        print(f"FAILED: {e}", file=sys.stderr)
    finally:
        stop()
        log.close()
        if not ok:
            with open(os.path.join(work, "esflow.log"), "rb") as f:
                sys.stderr.write("esflow log (last 3000 bytes):\n" + f.read()[-3000:].decode("utf-8", "replace"))
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
