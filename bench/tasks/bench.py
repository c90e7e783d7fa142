#!/usr/bin/python3
"""Task benchmark: devices bootstrap through a group task with a <rest> call.

    /usr/bin/python3 bench/tasks/bench.py [--build build] [--devices 5000]

Starts lwdm from the build directory on free 127.0.0.1 ports in a temporary
directory (first start: lwdm seeds the bootstrap settings, which it keeps as
the read-only group task "LwM2M bootstrap settings" on the bootstrap group:
cleanse + configuration of the seeded management server + finish), then

  1.  settings (new): lwdm-sim bootstraps --devices new devices; each runs the
      settings task. This is the built-in sequence, the baseline;
  1b. settings (known): the same devices again (reports restarted, not
      created), the baseline for phase 3;
  2.  rest (new): the settings task is removed (PUT /bootstrap-settings with no
      servers) and the bootstrap group gets the task
        <rest url="http://127.0.0.1:STUB/serverFor/${device.id}">
          <out from="serverId" to="serverId"/></rest>
        <lwm2mBootstrapCleanse/>
        <lwm2mBootstrapConfiguration serverId="${#serverId}"/>
        <lwm2mBootstrap performBootstrapFinish="true"/>
      where STUB is a threaded http.server in this script answering
      {"serverId": <the seeded management server>}; --devices new devices;
  3.  rest (known): the same devices again;
  4.  bench_tasks_reports: what writing a task report (start, 8 log lines,
      finish) costs in SQLite through lwdm's db layer, 64 reports per
      transaction and one per transaction.

For each lwdm phase it prints tasks/s and p50/p99 as lwdm-sim measured them
(wall clock), lwdm's CPU time per bootstrap (all threads, read from /proc when
lwdm is idle before and after the phase, as bench/bootstrap does) and its ratio
to phase 1 (the issue: the task engine must not cost more than 2x the built-in
sequence it replaces, in server CPU per bootstrap) and to the settings phase
of the same kind, and the SUCCESS reports read back through the REST API.

The cores are shared by lwdm, lwdm-sim and the stub, so wall-clock rates move
with the load: the comparable figure is server CPU. A benchmark prints figures;
it never passes or fails on time. Exit status 0 when every step ran and every
device bootstrapped with a SUCCESS report, 1 otherwise, 2 on usage errors.
Builds nothing. Talks only to 127.0.0.1. Always stops lwdm, the stub and every
child it started.
"""

import argparse
import datetime
import http.server
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import (HOST, BenchError, Children, Deadline, Interrupted, Lwdm, fmt,  # noqa: E402
                    lwdm_version, print_table, requests, run_child, run_phase, tail)

REPORTS_RE = re.compile(r"reports: pass=(?P<name>\S+) n=(?P<n>\d+) cpu_us=(?P<cpu>[\d.]+) "
                        r"wall_us=(?P<wall>[\d.]+) growth_bytes=(?P<growth>-?[\d.]+)")
SETTINGS_TASK = "LwM2M bootstrap settings"
REST_TASK = "bench: rest + cleanse + configuration + finish"
REST_CONFIG = ('<config><rest url="http://{host}:{port}/serverFor/${{device.id}}">'
               '<out from="serverId" to="serverId"/></rest>'
               '<lwm2mBootstrapCleanse/><lwm2mBootstrapConfiguration serverId="${{#serverId}}"/>'
               '<lwm2mBootstrap performBootstrapFinish="true"/></config>')


# ---------------------------------------------------------------- HTTP stub

class Stub:
    """GET /serverFor/<device id> -> {"serverId": N}, on 127.0.0.1, one thread
    per connection (HTTP/1.1, so lwdm's curl can keep connections open)."""

    def __init__(self, server_id):
        self.server_id = server_id
        self.requests = 0
        self.bad = 0
        self.lock = threading.Lock()
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10  # an idle kept-alive connection ends its thread
            # one segment per answer (headers and body buffered, flushed
            # after do_GET), sent at once: no Nagle + delayed-ACK 40 ms stall
            wbufsize = 64 * 1024
            disable_nagle_algorithm = True

            def do_GET(self):
                ok = re.fullmatch(r"/serverFor/\d+", self.path) is not None
                body = json.dumps({"serverId": stub.server_id}).encode() if ok else b'{"error":"not found"}'
                with stub.lock:
                    stub.requests += 1
                    stub.bad += 0 if ok else 1
                self.send_response(200 if ok else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt_, *a):
                pass

        class Server(http.server.ThreadingHTTPServer):
            # socketserver's default listen backlog is 5: with dozens of
            # connections opened at once the kernel drops SYNs and curl
            # retries after 1, 3, 7 ... s
            request_queue_size = 1024

        self.httpd = Server((HOST, 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                       name="http-stub", daemon=True)
        self.thread.start()

    def count(self):
        with self.lock:
            return self.requests, self.bad

    def stop(self):
        if self.thread is None:
            return
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
        self.thread = None


# ------------------------------------------------------------------ REST API

class Api:
    def __init__(self, lwdm):
        self.lwdm = lwdm
        self.s = requests.Session()
        r = lwdm.api("POST", "/auth/token", body={"username": "admin", "password": lwdm.password}, session=self.s)
        if r.status_code != 200:
            raise BenchError(f"POST /auth/token answered {r.status_code}: {r.text[:300]}")
        self.token = r.json()["token"]

    def call(self, method, path, body=None, want=(200,)):
        r = self.lwdm.api(method, path, token=self.token, body=body, session=self.s, timeout=60)
        if r.status_code not in want:
            raise BenchError(f"{method} /api/v1{path} answered {r.status_code}: {r.text[:300]}")
        return r.json() if r.content else None

    def close(self):
        self.s.close()


def bootstrap_group(api):
    groups = api.call("GET", "/groups?limit=1000")["items"]
    g = [x for x in groups if x.get("bootstrap")]
    if not g:
        raise BenchError("no bootstrap group in GET /groups")
    return g[0]["id"]


def find_task(api, group_id, name):
    for t in api.call("GET", f"/groups/{group_id}/tasks?limit=1000")["items"]:
        if t["name"] == name:
            return t["id"]
    return None


def report_counts(api, group_id, task_id):
    return api.call("GET", f"/groups/{group_id}/tasks/{task_id}/reports?limit=1")["counts"]


def db_bytes(workdir):
    total = 0
    for suffix in ("", "-wal"):
        try:
            total += os.path.getsize(os.path.join(workdir, "lwdm.db" + suffix))
        except OSError:
            pass
    return total


def run_reports_bench(exe, args, children, deadline, workdir):
    argv = [exe, "--devices", str(args.report_devices), "--lines", "8", "--batch", "64", "--dir", workdir]
    rc, out = run_child(children, argv, deadline, "the report-writing benchmark")
    passes = [{"pass": m["name"], "reports": int(m["n"]), "cpu_us": float(m["cpu"]), "wall_us": float(m["wall"]),
               "growth_bytes": float(m["growth"])} for m in REPORTS_RE.finditer(out or "")]
    if rc != 0 or len(passes) != 4:
        raise BenchError(f"bench_tasks_reports failed (status {rc}):\n{(out or '')[-2000:]}")
    return passes


# -------------------------------------------------------------------- report

def report(results, reports, meta):
    print()
    print(f"task benchmark  {meta['date']}  lwdm {meta['version']}  build {meta['build']}")
    print(f"machine: {meta['cpus']} CPUs shared by lwdm, lwdm-sim and the HTTP stub; "
          f"lwdm-sim concurrency {meta['concurrency']}; lwdm log level {meta['log_level']}")
    print("server CPU = CPU time of the lwdm process (all threads) from /proc (schedstat ns, or utime+stime),"
          " per task run (one per bootstrap: the whole bootstrap); it is CPU time, not wall time.")
    print("tasks/s and latencies are lwdm-sim's wall-clock figures (Bootstrap-Request to Finish; one task run"
          " per bootstrap) and include the simulator's own CPU.")
    print("× ph.1 = server CPU per bootstrap ÷ phase 1 (the built-in settings task, new devices); issue 3: ≤ 2×."
          " × like = ÷ the settings phase with the same kind of devices (new or known).")
    print()
    hdr = ("phase", "devices", "ok/failed", "tasks/s", "p50 ms", "p99 ms", "server CPU µs/task", "× ph.1", "× like",
           "SUCCESS reports")
    base = results[0]["server_cpu_us_per_bootstrap"] if results else None
    like = {r["kind"]: r["server_cpu_us_per_bootstrap"] for r in results if r["task"] == "settings"}
    rows = []
    for r in results:
        us = r["server_cpu_us_per_bootstrap"]
        r["ratio_to_phase1"] = us / base if us is not None and base else None
        lk = like.get(r["kind"])
        r["ratio_like_for_like"] = us / lk if us is not None and lk else None
        rows.append((r["phase"], str(r["devices"]), f"{r['ok']}/{r['failed']}", fmt(r["rate"], ".1f"),
                     fmt(r["p50_ms"], ".1f"), fmt(r["p99_ms"], ".1f"), fmt(us, ".0f"),
                     fmt(r["ratio_to_phase1"], ".2f"), fmt(r["ratio_like_for_like"], ".2f"),
                     fmt(r["reports_success"], "d")))
    print_table(hdr, rows)
    print()
    for r in results:
        print(f"{r['phase']}: {r['ok']} ok, {r['failed']} failed in {r['elapsed_s']:.3f} s; "
              f"server CPU {r['server_cpu_ms']:.1f} ms ({r['server_cpu_source']}; utime+stime "
              f"{r['server_cpu_ms_utime_stime']:.0f} ms); p90 {r['p90_ms']:.1f} ms; RSS "
              f"{r['server_rss_kb_before'] / 1024:.1f} → {r['server_rss_kb'] / 1024:.1f} MB; "
              f"reports {json.dumps(r['report_counts'], separators=(',', ':'))}; stub requests "
              f"{fmt(r.get('stub_requests'), 'd')}; lwdm.db+wal {r['db_bytes_before'] / 1e6:.1f} → "
              f"{r['db_bytes'] / 1e6:.1f} MB; UDP receive-buffer drops (whole machine) "
              f"{fmt(r['udp_rcvbuf_errors'], 'd')}")
        if r["sim_stderr_tail"]:
            print("  lwdm-sim stderr (last lines):\n" + "".join("    " + ln for ln in r["sim_stderr_tail"].splitlines(True)))
    if reports:
        print()
        print(f"report writing in SQLite (bench_tasks_reports, {reports[0]['reports']} devices, 1 start + 8 log"
              " lines + 1 finish per report, lwdm's db layer, one process, no network):")
        print_table(("pass", "reports", "CPU µs/report", "wall µs/report", "DB growth B/report"),
                    [(p["pass"], str(p["reports"]), fmt(p["cpu_us"], ".1f"), fmt(p["wall_us"], ".1f"),
                      fmt(p["growth_bytes"], ".0f")) for p in reports])
        print("batch64 = 64 reports per transaction (the server commits once per loop pass); tx1 = one per report;"
              " -new creates the reports, -again restarts them (runs + 1, the previous log deleted).")
    print("Issue 3: the task engine must not cost more than 2× the built-in sequence in server CPU per bootstrap"
          " (× ph.1). Printed for reading, not checked.")


# ---------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="build directory with lwdm, lwdm-sim, bench/ (default ./build)")
    ap.add_argument("--devices", type=int, default=5000, help="devices per phase (default 5000)")
    ap.add_argument("--concurrency", type=int, default=64, help="lwdm-sim --concurrency (default 64)")
    ap.add_argument("--sim-timeout", type=int, default=30, help="lwdm-sim --timeout per device, s (default 30)")
    ap.add_argument("--report-devices", type=int, default=None,
                    help="reports per pass in bench_tasks_reports (default --devices; 0 skips it)")
    ap.add_argument("--log-level", default="info", help="lwdm --log-level (default info, the server's default)")
    ap.add_argument("--max-seconds", type=float, default=900, help="limit for the whole run (default 900)")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, database)")
    args = ap.parse_args()
    if args.report_devices is None:
        args.report_devices = args.devices
    if args.devices < 1 or args.concurrency < 1 or args.report_devices < 0 or args.max_seconds <= 0:
        ap.error("--devices and --concurrency must be >= 1, --report-devices >= 0, --max-seconds > 0")

    build = os.path.abspath(args.build)
    exes = {"lwdm": os.path.join(build, "lwdm"), "lwdm-sim": os.path.join(build, "lwdm-sim"),
            "reports": os.path.join(build, "bench", "bench_tasks_reports")}
    missing = [p for p in exes.values() if not os.access(p, os.X_OK)]
    if missing:
        print("bench: missing in the build directory (build them first, e.g. "
              "cmake --build build --target bench-tasks):\n  " + "\n  ".join(missing), file=sys.stderr)
        return 2
    if requests is None:
        print("bench: needs python3-requests (the REST API)", file=sys.stderr)
        return 2

    deadline = Deadline(args.max_seconds)
    children = Children()
    workdir = tempfile.mkdtemp(prefix="lwdm-bench-tasks-")
    lwdm = Lwdm(build, workdir, children, args.log_level)
    results, reports, status, version = [], [], 0, "?"
    stub, api = None, None
    uri = None

    def on_term(sig, frame):
        raise Interrupted()
    old_term = signal.signal(signal.SIGTERM, on_term)

    def phase(name, task, kind, prefix, group_id, task_id):
        print(f"{name}: {args.devices} devices ...", flush=True)
        stub0 = stub.count()[0] if stub else None
        db0 = db_bytes(workdir)
        r = run_phase(name, lwdm, exes["lwdm-sim"], uri, args.devices, prefix, args, children, deadline, workdir)
        counts = report_counts(api, group_id, task_id)
        r.update({"task": task, "kind": kind, "report_counts": counts, "reports_success": counts.get("SUCCESS"),
                  "stub_requests": stub.count()[0] - stub0 if stub else None,
                  "db_bytes_before": db0, "db_bytes": db_bytes(workdir)})
        results.append(r)
        return r

    try:
        version = lwdm_version(exes["lwdm"])
        lwdm.start(deadline)
        uri = f"coap://{HOST}:{lwdm.bs_coap}"
        print(f"lwdm running (pid {lwdm.pid}): http {lwdm.http}, bootstrap coap {lwdm.bs_coap}; work dir {workdir}",
              flush=True)
        api = Api(lwdm)
        bs_group = bootstrap_group(api)
        settings_task = find_task(api, bs_group, SETTINGS_TASK)
        if settings_task is None:
            raise BenchError(f"no task {SETTINGS_TASK!r} on the bootstrap group {bs_group} after first start")
        servers = api.call("GET", "/lwm2m-servers?limit=1000")["items"]
        mgmt = [s for s in servers if s.get("type") == "management"]
        if not mgmt:
            raise BenchError("no management server seeded (GET /lwm2m-servers)")
        mgmt_id = next((s["id"] for s in mgmt if "NoSec" in s.get("name", "")), mgmt[0]["id"])

        phase("1 settings (new)", "settings", "new", "bench-tset-", bs_group, settings_task)
        phase("1b settings (known)", "settings", "known", "bench-tset-", bs_group, settings_task)

        api.call("PUT", "/bootstrap-settings", body={"bootstrapServerId": None, "managementServerIds": [],
                                                      "acceptUnknownDevices": True})
        if find_task(api, bs_group, SETTINGS_TASK) is not None:
            raise BenchError("the settings task is still there after PUT /bootstrap-settings without servers")
        stub = Stub(mgmt_id)
        created = api.call("POST", f"/groups/{bs_group}/tasks", want=(200, 201),
                           body={"name": REST_TASK, "config": REST_CONFIG.format(host=HOST, port=stub.port),
                                 "execution": "onceAndRepeat", "automaticRestart": True})
        rest_task = created["id"]
        print(f"HTTP stub on {HOST}:{stub.port} answers serverId {mgmt_id}; task {rest_task} on group {bs_group}",
              flush=True)

        phase("2 rest (new)", "rest", "new", "bench-trest-", bs_group, rest_task)
        phase("3 rest (known)", "rest", "known", "bench-trest-", bs_group, rest_task)

        lwdm.stop()
        if stub.count()[1]:
            raise BenchError(f"the stub answered {stub.count()[1]} requests for an unknown path")
        if args.report_devices:
            print(f"report writing: bench_tasks_reports --devices {args.report_devices} ...", flush=True)
            reports = run_reports_bench(exes["reports"], argparse.Namespace(report_devices=args.report_devices),
                                        children, deadline, workdir)
        for r in results:
            if r["failed"] or r["sim_status"] or r["reports_success"] is None or r["reports_success"] < r["ok"]:
                status = 1
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        status = 1
    except requests.RequestException as e:
        print(f"bench: REST call failed: {e}", file=sys.stderr)
        status = 1
    except (KeyboardInterrupt, Interrupted):
        print("bench: interrupted", file=sys.stderr)
        status = 130
    finally:
        children.stop_all()
        if stub is not None:
            stub.stop()
        if api is not None:
            api.close()
        signal.signal(signal.SIGTERM, old_term)
        if status != 0 and not args.keep and os.path.exists(lwdm.stderr_path):
            print("lwdm log (last lines):\n" + tail(lwdm.stderr_path, 10), file=sys.stderr)
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    if results or reports:
        meta = {"date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"), "version": version,
                "build": args.build, "cpus": os.cpu_count(), "concurrency": args.concurrency,
                "log_level": args.log_level, "devices": args.devices}
        report(results, reports, meta)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"meta": meta, "phases": results, "reports": reports}, f, indent=1)
    return status


if __name__ == "__main__":
    sys.exit(main())
