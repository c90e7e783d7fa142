#!/usr/bin/python3
"""Bootstrap benchmark: N simulated devices bootstrap against a running lwdm.

    /usr/bin/python3 bench/bootstrap/bench.py [--build build] [--nosec 2000] [--psk 500]

Starts lwdm from the build directory on free 127.0.0.1 ports in a temporary
directory, then

  1. NoSec phase: lwdm-sim bootstraps --nosec devices over plain CoAP (lwdm
     accepts unknown devices on first start);
  2. PSK phase: creates --psk devices through the REST API (one shared key,
     identity = endpoint name) and lwdm-sim bootstraps them over DTLS-PSK;
  3. baseline: bench_bootstrap_baseline measures what one plain libcoap
     request/response costs a minimal libcoap server in the same run.

For each phase it reads lwdm's CPU time (all threads: the scheduler's
nanosecond figures from /proc/PID/task/*/schedstat, or utime + stime from
/proc/PID/stat in 10 ms steps when those are missing or a thread came or went)
once the server is idle before the phase and once it is idle again after it, and its VmRSS after. It prints bootstraps/s and p50/p99 latency
as lwdm-sim measured them, server CPU per bootstrap, server RSS, and server CPU
per bootstrap divided by the baseline's server CPU per exchange.

The machine's cores are shared by lwdm, lwdm-sim and the baseline client, so
wall-clock rates depend on the simulator too: the comparable figure is server
CPU. A benchmark prints figures; it never passes or fails on time. The exit
status is 0 when every step ran and every device bootstrapped, 1 otherwise,
2 on usage errors. Builds nothing. Talks only to 127.0.0.1. Always stops lwdm
and every child it started.
"""

import argparse
import datetime
import json
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import (HOST, BenchError, Children, Deadline, Interrupted, Lwdm, fmt,  # noqa: E402
                    lwdm_version, print_table, requests, run_child, run_phase, tail)

BASELINE_RE = re.compile(
    r"baseline:\s*(?P<n>\d+) exchanges,\s*(?P<us>[\d.]+) µs server CPU per exchange,\s*(?P<rate>[\d.]+) exchanges/s")


# -------------------------------------------------------------------- phases

def create_psk_devices(lwdm, count, prefix, key_hex, deadline, credentials="bootstrapCredentials"):
    """Creates count devices through the REST API with one shared PSK (identity =
    endpoint) as their `credentials` (bootstrapCredentials or managementCredentials)."""
    s = requests.Session()
    r = lwdm.api("POST", "/auth/token", body={"username": "admin", "password": lwdm.password}, session=s)
    if r.status_code != 200:
        raise BenchError(f"POST /auth/token answered {r.status_code}: {r.text[:300]}")
    token = r.json()["token"]
    t0 = time.monotonic()
    for i in range(1, count + 1):
        if i % 50 == 0:
            deadline.check("creating the PSK devices")
        ep = f"{prefix}{i:06d}"
        body = {"endpoint": ep,
                credentials: {"securityMode": "psk", "pskIdentity": ep, "psk": key_hex}}
        r = lwdm.api("POST", "/devices", token=token, body=body, session=s)
        if r.status_code not in (200, 201):
            raise BenchError(f"POST /devices for {ep} answered {r.status_code}: {r.text[:300]}")
    s.close()
    return time.monotonic() - t0


def run_baseline(exe, args, children, deadline):
    argv = [exe, "--count", str(args.baseline_count)]
    rc, out = run_child(children, argv, deadline, "the baseline")
    m = BASELINE_RE.search(out or "")
    if not m:
        raise BenchError(f"no result line from the baseline (status {rc}):\n{out}")
    detail = re.search(r"baseline-detail:[^\n]*", out or "")
    return {"line": m.group(0), "exchanges": int(m["n"]), "us_per_exchange": float(m["us"]),
            "rate": float(m["rate"]), "status": rc, "detail": detail.group(0) if detail else ""}


# -------------------------------------------------------------------- report

def report(results, baseline, meta):
    print()
    print(f"bootstrap benchmark  {meta['date']}  lwdm {meta['version']}  build {meta['build']}")
    print(f"machine: {meta['cpus']} CPUs shared by lwdm, lwdm-sim and the baseline client; "
          f"lwdm-sim concurrency {meta['concurrency']}; lwdm log level {meta['log_level']}")
    print("server CPU = CPU time of the lwdm process (all threads) from /proc (schedstat ns, or utime+stime),"
          " per bootstrap; it is CPU time, not wall time.")
    print("bootstraps/s and latencies are lwdm-sim's wall-clock figures and include the simulator's own CPU.")
    print("The phases run one after the other on the same lwdm: the PSK phase finds the NoSec phase's"
          " idle CoAP sessions still in libcoap.")
    print()
    hdr = ("phase", "devices", "ok/failed", "bootstraps/s", "p50 ms", "p99 ms",
           "server CPU µs/bs", "target µs", "server RSS MB", "ΔRSS KB/dev", "× baseline")
    rows = []
    for r in results:
        ratio = (r["server_cpu_us_per_bootstrap"] / baseline["us_per_exchange"]
                 if baseline and r["server_cpu_us_per_bootstrap"] is not None and baseline["us_per_exchange"] > 0
                 else None)
        r["ratio_to_baseline"] = ratio
        rows.append((r["phase"], str(r["devices"]), f"{r['ok']}/{r['failed']}", fmt(r["rate"], ".1f"),
                     fmt(r["p50_ms"], ".1f"), fmt(r["p99_ms"], ".1f"),
                     fmt(r["server_cpu_us_per_bootstrap"], ".0f"), "≤ " + str(r["target_us"]),
                     fmt(r["server_rss_kb"] / 1024.0, ".1f"), fmt(r["rss_kb_per_device"], ".2f"),
                     fmt(ratio, ".1f")))
    if baseline:
        rows.append(("baseline", str(baseline["exchanges"]), "-", fmt(baseline["rate"], ".0f") + " ex/s",
                     "-", "-", fmt(baseline["us_per_exchange"], ".1f"), "-", "-", "-", "1.0"))
    print_table(hdr, rows)
    print()
    if baseline:
        print(baseline["line"])
        if baseline["detail"]:
            print(baseline["detail"])
        for r in results:
            if r["ratio_to_baseline"] is not None:
                print(f"{r['phase']} bootstrap = {r['ratio_to_baseline']:.1f} × one libcoap exchange (server CPU)")
    for r in results:
        print(f"{r['phase']}: {r['ok']} ok, {r['failed']} failed in {r['elapsed_s']:.3f} s; "
              f"server CPU {r['server_cpu_ms']:.1f} ms ({r['server_cpu_source']}; utime+stime "
              f"{r['server_cpu_ms_utime_stime']:.0f} ms); RSS {r['server_rss_kb_before'] / 1024:.1f} → "
              f"{r['server_rss_kb'] / 1024:.1f} MB; p90 {r['p90_ms']:.1f} ms; "
              f"UDP receive-buffer drops (whole machine) {fmt(r['udp_rcvbuf_errors'], 'd')}")
        if r["sim_stderr_tail"]:
            print(f"  lwdm-sim stderr (last lines):\n" + "".join("    " + ln for ln in r["sim_stderr_tail"].splitlines(True)))
    print("Targets (issue): ≤ 100 µs server CPU per NoSec bootstrap, ≤ 400 µs per PSK bootstrap. "
          "Printed for reading, not checked.")


# ---------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="build directory with lwdm, lwdm-sim, bench/ (default ./build)")
    ap.add_argument("--nosec", type=int, default=2000, help="devices in the NoSec phase (default 2000, 0 skips)")
    ap.add_argument("--psk", type=int, default=500, help="devices in the PSK phase (default 500, 0 skips)")
    ap.add_argument("--psk-key", default=None, help="shared PSK, hex (default: random 16 bytes)")
    ap.add_argument("--concurrency", type=int, default=64, help="lwdm-sim --concurrency (default 64)")
    ap.add_argument("--sim-timeout", type=int, default=30, help="lwdm-sim --timeout per device, s (default 30)")
    ap.add_argument("--baseline-count", type=int, default=50000,
                    help="exchanges in the libcoap baseline (default 50000)")
    ap.add_argument("--log-level", default="info", help="lwdm --log-level (default info, the server's default)")
    ap.add_argument("--max-seconds", type=float, default=600, help="limit for the whole run (default 600)")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, database)")
    args = ap.parse_args()
    if args.nosec < 0 or args.psk < 0 or args.concurrency < 1 or args.baseline_count < 1 or args.max_seconds <= 0:
        ap.error("counts must be >= 0, --concurrency and --baseline-count >= 1, --max-seconds > 0")
    if args.psk_key is not None and not re.fullmatch(r"(?:[0-9a-fA-F]{2}){1,64}", args.psk_key):
        ap.error("--psk-key must be hex")

    build = os.path.abspath(args.build)
    exes = {"lwdm": os.path.join(build, "lwdm"), "lwdm-sim": os.path.join(build, "lwdm-sim"),
            "baseline": os.path.join(build, "bench", "bench_bootstrap_baseline")}
    missing = [p for p in exes.values() if not os.access(p, os.X_OK)]
    if missing:
        print("bench: missing in the build directory (build them first, e.g. "
              "cmake --build build --target bench-bootstrap):\n  " + "\n  ".join(missing), file=sys.stderr)
        return 2
    if args.psk and requests is None:
        print("bench: the PSK phase needs python3-requests", file=sys.stderr)
        return 2

    deadline = Deadline(args.max_seconds)
    children = Children()
    workdir = tempfile.mkdtemp(prefix="lwdm-bench-")
    lwdm = Lwdm(build, workdir, children, args.log_level)
    results, baseline, status, version = [], None, 0, "?"

    def on_term(sig, frame):
        raise Interrupted()
    old_term = signal.signal(signal.SIGTERM, on_term)
    try:
        version = lwdm_version(exes["lwdm"])
        lwdm.start(deadline)
        print(f"lwdm running (pid {lwdm.pid}): http {lwdm.http}, bootstrap coap {lwdm.bs_coap}, "
              f"coaps {lwdm.bs_coaps}; work dir {workdir}", flush=True)
        if args.nosec:
            print(f"NoSec phase: {args.nosec} devices ...", flush=True)
            r = run_phase("NoSec", lwdm, exes["lwdm-sim"], f"coap://{HOST}:{lwdm.bs_coap}", args.nosec,
                          "bench-nosec-", args, children, deadline, workdir)
            r["target_us"] = 100
            results.append(r)
        if args.psk:
            key = args.psk_key or secrets.token_hex(16)
            print(f"PSK phase: creating {args.psk} devices through the REST API ...", flush=True)
            took = create_psk_devices(lwdm, args.psk, "bench-psk-", key, deadline)
            print(f"  created in {took:.1f} s; bootstrapping over DTLS-PSK ...", flush=True)
            r = run_phase("PSK", lwdm, exes["lwdm-sim"], f"coaps://{HOST}:{lwdm.bs_coaps}", args.psk,
                          "bench-psk-", args, children, deadline, workdir, psk_key=key)
            r["target_us"] = 400
            results.append(r)
        # quiet machine for the baseline: lwdm is stopped first
        lwdm.stop()
        print(f"baseline: {args.baseline_count} plain CoAP exchanges ...", flush=True)
        baseline = run_baseline(exes["baseline"], args, children, deadline)
        if baseline["status"] != 0:
            status = 1
        if any(r["failed"] or r["sim_status"] for r in results):
            status = 1
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        status = 1
    except (KeyboardInterrupt, Interrupted):
        print("bench: interrupted", file=sys.stderr)
        status = 130
    finally:
        children.stop_all()
        signal.signal(signal.SIGTERM, old_term)
        if status != 0 and not args.keep and os.path.exists(lwdm.stderr_path):
            print("lwdm log (last lines):\n" + tail(lwdm.stderr_path, 10), file=sys.stderr)
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    if results or baseline:
        meta = {"date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"), "version": version, "build": args.build, "cpus": os.cpu_count(),
                "concurrency": args.concurrency, "log_level": args.log_level}
        report(results, baseline, meta)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"meta": meta, "phases": results, "baseline": baseline}, f, indent=1)
    return status


if __name__ == "__main__":
    sys.exit(main())
