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
import socket
import subprocess
import sys
import tempfile
import time

try:
    import requests
except ImportError:  # Debian: apt-get install python3-requests
    requests = None

HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")

SUMMARY_RE = re.compile(
    r"summary:\s*(?P<ok>\d+) ok,\s*(?P<failed>\d+) failed;\s*elapsed (?P<elapsed>[\d.]+) s;\s*"
    r"(?P<rate>[\d.]+) bootstraps/s;\s*latency p50 (?P<p50>[\d.]+) ms p90 (?P<p90>[\d.]+) p99 (?P<p99>[\d.]+) ms")
BASELINE_RE = re.compile(
    r"baseline:\s*(?P<n>\d+) exchanges,\s*(?P<us>[\d.]+) µs server CPU per exchange,\s*(?P<rate>[\d.]+) exchanges/s")


class BenchError(Exception):
    pass


class Interrupted(Exception):
    pass


# --------------------------------------------------------------------- helpers

class Deadline:
    def __init__(self, seconds):
        self.end = time.monotonic() + seconds
        self.seconds = seconds

    def left(self):
        return self.end - time.monotonic()

    def check(self, what):
        if self.left() <= 0:
            raise BenchError(f"--max-seconds {self.seconds:g} reached during {what}")


def free_port(kind):
    """A port that is free on 127.0.0.1 right now (TCP or UDP)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
    try:
        s.bind((HOST, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def free_ports(n_udp):
    """Distinct free ports: one TCP, n_udp UDP."""
    seen = set()
    tcp = free_port("tcp")
    seen.add(tcp)
    udp = []
    while len(udp) < n_udp:
        p = free_port("udp")
        if p not in seen:
            seen.add(p)
            udp.append(p)
    return tcp, udp


def proc_cpu_us(pid):
    """utime + stime of a process (all its threads), in µs."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime is field 14, stime field 15
    return (int(fields[11]) + int(fields[12])) * 1e6 / CLK_TCK


def proc_threads_ns(pid):
    """{tid: ns on CPU} from /proc/PID/task/*/schedstat, or None without it."""
    out = {}
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    out[tid] = int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        return None
    return out or None


class CpuReading:
    """lwdm's CPU time at one moment: utime+stime (10 ms steps, every thread
    that ever ran) and, when the kernel has it, the scheduler's per-thread
    nanosecond figures."""

    def __init__(self, pid):
        self.threads = proc_threads_ns(pid)
        self.stat_us = proc_cpu_us(pid)

    def sched_us(self):
        return sum(self.threads.values()) / 1000.0 if self.threads else None


def cpu_delta_us(a, b):
    """(µs, source) between two readings: schedstat when the same threads lived
    through the interval (an exited thread would take its time with it), else
    utime+stime."""
    if a.threads and b.threads and set(a.threads) == set(b.threads):
        return b.sched_us() - a.sched_us(), "schedstat"
    return b.stat_us - a.stat_us, "stat"


def udp_errors():
    """System-wide UDP RcvbufErrors (datagrams dropped on a full receive
    buffer), or None. Other programs on the machine count here too."""
    try:
        with open("/proc/net/snmp") as f:
            rows = [ln.split() for ln in f if ln.startswith("Udp:")]
        return int(rows[1][rows[0].index("RcvbufErrors")])
    except (OSError, ValueError, IndexError):
        return None


def proc_status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def wait_idle(pid, deadline, settle=0.25, limit=5.0, idle_us=2000.0):
    """Waits until the process is idle (less than idle_us of CPU within
    `settle` seconds; at most `limit` seconds) and returns a CpuReading."""
    end = time.monotonic() + min(limit, max(deadline.left(), 0.1))
    last = CpuReading(pid)
    while time.monotonic() < end:
        time.sleep(settle)
        now = CpuReading(pid)
        used, _ = cpu_delta_us(last, now)
        if used < idle_us:
            return now
        last = now
    return last


def tail(path, n=20):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


# ------------------------------------------------------------------ processes

class Children:
    """Every process this script starts, so that all of them are stopped."""

    def __init__(self):
        self.procs = []

    def start(self, argv, **kw):
        p = subprocess.Popen(argv, start_new_session=True, **kw)
        self.procs.append(p)
        return p

    @staticmethod
    def stop(p, grace=5.0):
        if p.poll() is not None:
            return
        try:
            p.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            try:
                p.kill()
            except ProcessLookupError:
                pass
            p.wait()

    def stop_all(self):
        for p in reversed(self.procs):
            self.stop(p)
        self.procs = []


def run_child(children, argv, deadline, what, log_path=None):
    """Runs a child to completion within the deadline; returns (rc, stdout)."""
    deadline.check(what)
    err = open(log_path, "w") if log_path else subprocess.DEVNULL
    try:
        p = children.start(argv, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, text=True)
        try:
            out, _ = p.communicate(timeout=max(deadline.left(), 1))
        except subprocess.TimeoutExpired:
            Children.stop(p)
            raise BenchError(f"--max-seconds {deadline.seconds:g} reached during {what}")
        return p.returncode, out
    finally:
        if log_path:
            err.close()


# -------------------------------------------------------------------- phases

class Lwdm:
    def __init__(self, build, workdir, children, log_level):
        self.exe = os.path.join(build, "lwdm")
        self.workdir = workdir
        self.children = children
        self.log_level = log_level
        self.password = "bench-" + secrets.token_hex(12)
        self.proc = None
        self.stdout_path = os.path.join(workdir, "lwdm.out")
        self.stderr_path = os.path.join(workdir, "lwdm.log")

    def start(self, deadline):
        http, (coap, coaps, bs_coap, bs_coaps) = free_ports(4)
        argv = [self.exe, "serve", "--db", os.path.join(self.workdir, "lwdm.db"),
                "--http", f"{HOST}:{http}", "--coap-addr", HOST,
                "--coap", str(coap), "--coaps", str(coaps),
                "--bs-coap", str(bs_coap), "--bs-coaps", str(bs_coaps),
                "--log-level", self.log_level]
        env = dict(os.environ)
        env["LWDM_ADMIN_PASSWORD"] = self.password
        for k in ("LWDM_DB", "LWDM_HTTP", "LWDM_SECRET_KEY", "LWDM_ACCEPT_UNKNOWN", "LWDM_PUBLIC_HOST"):
            env.pop(k, None)
        with open(self.stdout_path, "w") as out, open(self.stderr_path, "w") as err:
            self.proc = self.children.start(argv, cwd=self.workdir, env=env, stdout=out, stderr=err,
                                            stdin=subprocess.DEVNULL)
        end = time.monotonic() + min(30.0, max(deadline.left(), 1))
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise BenchError(f"lwdm exited with status {self.proc.returncode} while starting:\n"
                                 + tail(self.stderr_path))
            # event=ready is an info-level log line; with --log-level warn
            # the banner on stdout (printed once the endpoints are bound and
            # the REST API listens) is the signal.
            m = re.search(r"event=ready\b[^\n]*", tail(self.stderr_path, 200))
            banner = tail(self.stdout_path, 50)
            if m or "database" in banner:
                ready = m.group(0) if m else ""
                self.http = int(re.search(r"http_port=(\d+)", ready).group(1)) if "http_port=" in ready else http
                self.bs_coap = int(re.search(r"bs_coap_port=(\d+)", ready).group(1)) \
                    if "bs_coap_port=" in ready else bs_coap
                self.bs_coaps = int(re.search(r"bs_coaps_port=(\d+)", ready).group(1)) \
                    if "bs_coaps_port=" in ready else bs_coaps
                return
            time.sleep(0.05)
        raise BenchError("lwdm did not become ready (no event=ready, no banner) within 30 s:\n" + tail(self.stderr_path))

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is not None:
            Children.stop(self.proc, grace=10.0)

    def api(self, method, path, token=None, body=None, session=None, timeout=10):
        url = f"http://{HOST}:{self.http}/api/v1{path}"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        r = (session or requests).request(method, url, json=body, headers=headers, timeout=timeout)
        return r


def run_phase(name, lwdm, sim_exe, uri, count, prefix, args, children, deadline, workdir, psk_key=None):
    if not lwdm.alive():
        raise BenchError(f"lwdm is not running before the {name} phase:\n" + tail(lwdm.stderr_path))
    rss0 = proc_status_kb(lwdm.pid, "VmRSS")
    cpu0 = wait_idle(lwdm.pid, deadline)
    argv = [sim_exe, "bootstrap", "--server", uri, "--count", str(count), "--prefix", prefix,
            "--concurrency", str(args.concurrency), "--timeout", str(args.sim_timeout), "--quiet"]
    if psk_key:
        argv += ["--psk-key", psk_key]
    sim_log = os.path.join(workdir, f"sim-{name.lower()}.log")
    drops0 = udp_errors()
    rc, out = run_child(children, argv, deadline, f"the {name} phase", log_path=sim_log)
    drops1 = udp_errors()
    if not lwdm.alive():
        raise BenchError(f"lwdm died during the {name} phase:\n" + tail(lwdm.stderr_path))
    cpu1 = wait_idle(lwdm.pid, deadline)
    rss1 = proc_status_kb(lwdm.pid, "VmRSS")
    m = SUMMARY_RE.search(out or "")
    if not m:
        raise BenchError(f"no summary line from lwdm-sim in the {name} phase (status {rc}):\n"
                         + (out or "")[-2000:] + tail(sim_log))
    ok, failed = int(m["ok"]), int(m["failed"])
    cpu_us, cpu_src = cpu_delta_us(cpu0, cpu1)
    stat_us = cpu1.stat_us - cpu0.stat_us
    return {
        "phase": name, "devices": count, "ok": ok, "failed": failed, "sim_status": rc,
        "elapsed_s": float(m["elapsed"]), "rate": float(m["rate"]),
        "p50_ms": float(m["p50"]), "p90_ms": float(m["p90"]), "p99_ms": float(m["p99"]),
        "server_cpu_ms": cpu_us / 1000.0, "server_cpu_source": cpu_src,
        "server_cpu_ms_utime_stime": stat_us / 1000.0,
        "server_cpu_us_per_bootstrap": cpu_us / ok if ok else None,
        "server_rss_kb_before": rss0, "server_rss_kb": rss1,
        "rss_kb_per_device": (rss1 - rss0) / ok if ok else None,
        "udp_rcvbuf_errors": drops1 - drops0 if drops0 is not None and drops1 is not None else None,
        "sim_stderr_tail": tail(sim_log, 5) if failed or rc else "",
    }


def create_psk_devices(lwdm, count, prefix, key_hex, deadline):
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
                "bootstrapCredentials": {"securityMode": "psk", "pskIdentity": ep, "psk": key_hex}}
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

def fmt(v, spec, missing="-"):
    return missing if v is None else format(v, spec)


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
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(hdr)]

    def line(cols):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cols, widths)))
    print(line(hdr))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))
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
        try:
            version = subprocess.run([exes["lwdm"], "version"], capture_output=True, text=True,
                                     timeout=10).stdout.strip().replace("lwdm ", "") or "?"
        except (OSError, subprocess.SubprocessError):
            version = "?"
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
