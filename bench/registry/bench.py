#!/usr/bin/python3
"""Registry benchmark: simulated devices register directly with lwdm and keep updating.

    /usr/bin/python3 bench/registry/bench.py [--build build] [--nosec 20000] [--psk 0]

Starts lwdm from the build directory on free 127.0.0.1 ports in a temporary
directory (`--accept-unknown on`, so unknown NoSec endpoints may register), then

  1. registers --nosec NoSec devices with `lwdm-sim register` in steps
     (--steps, default 1000,5000, then --nosec): each step adds devices until
     that many are registered. A step is measured from the start of its
     simulators until the last of its devices printed `state=registered`;
     server CPU and RSS growth are divided by the step's new registrations;
  2. after each step, an update window (--window s, default 20) while every
     registered device sends an Update every --update-interval s:
     lwdm_registrations_total{event="update"} from /metrics before and after
     gives updates/s and server CPU per update at that many live sessions (the
     session-count scaling of libcoap's cost per request);
  3. after the last step's window, --reads sequential REST reads
     (GET /api/v1/devices/{id}/data/3/0/9, admin token) on random registered
     devices while they keep updating: p50/p99 latency;
  4. optionally --psk devices, created through the REST API with one shared
     key (identity = endpoint name) and registered over DTLS-PSK, with an
     update window of their own (NoSec devices still updating);
  5. stops the simulators and lwdm, then bench_bootstrap_baseline measures the
     server CPU of one plain libcoap request/response in the same run.

Server CPU is lwdm's CPU time (all threads) from /proc (schedstat ns, or
utime+stime). Devices registered earlier keep updating during a registration
step: their Updates (counted from /metrics) are charged at the previous
window's µs/update and subtracted; the raw figure is printed too.

`LWDM_COAP_UDP=libcoap` in the environment runs lwdm with libcoap's UDP stack on
the NoSec port instead of its own endpoint (the comparison in docs/bench.md).

lwdm-sim opens one UDP socket per device and ulimit -n is 20,000 here, so
each simulator process gets at most --per-sim devices (default 16,000) and its
own 127.x.0.1 range of source addresses. The machine's cores are shared by
lwdm, the simulators and this script: the comparable figures are server CPU
per operation. A benchmark prints figures; the targets are printed, never
checked. Exit status 0 when every step ran and every device registered, 1
otherwise, 2 on usage errors. Builds nothing. Talks only to 127.0.0.1. Always
stops lwdm and every child it started.
"""

import argparse
import datetime
import json
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import (HOST, BenchError, Children, CpuReading, Deadline, Interrupted, Lwdm,  # noqa: E402
                    cpu_delta_us, fmt, lwdm_version, print_table, proc_status_kb, requests, tail,
                    udp_errors, wait_idle)
from bootstrap.bench import create_psk_devices, run_baseline  # noqa: E402  (bench/bootstrap/bench.py)

REG_LINE_RE = re.compile(r"^ep=(\S+) state=(registered|failed)(?:.*? ms=([\d.]+))?")
METRIC_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+([0-9.eE+-]+)\s*$", re.M)


# ------------------------------------------------------------------ helpers

def metrics(lwdm):
    """lwdm's /metrics as {name{labels}: float}."""
    r = requests.get(f"http://{HOST}:{lwdm.http}/metrics", timeout=10)
    if r.status_code != 200:
        raise BenchError(f"GET /metrics answered {r.status_code}")
    return {k: float(v) for k, v in METRIC_RE.findall(r.text)}


def m_updates(m):
    return m.get('lwdm_registrations_total{event="update"}', 0.0)


def m_registered(m):
    return m.get("lwdm_devices_registered", 0.0)


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))]


class Sim:
    """One lwdm-sim register process; a thread reads its per-device lines."""

    def __init__(self, children, argv, log_path, expected):
        self.expected = expected
        self.registered = 0
        self.failed = 0
        self.latencies = []
        self.last_t = None
        self.fail_lines = []
        self.summary = None
        self.err = open(log_path, "w")
        self.proc = children.start(argv, stdout=subprocess.PIPE, stderr=self.err, stdin=subprocess.DEVNULL,
                                   text=True, bufsize=1)
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            m = REG_LINE_RE.match(line)
            if m:
                with self.lock:
                    if m.group(2) == "registered":
                        self.registered += 1
                        if m.group(3):
                            self.latencies.append(float(m.group(3)))
                    else:
                        self.failed += 1
                        if len(self.fail_lines) < 5:
                            self.fail_lines.append(line.strip())
                    self.last_t = time.monotonic()
            elif line.startswith("summary:"):
                self.summary = line.strip()

    def done(self):
        with self.lock:
            return self.registered + self.failed >= self.expected

    def stop(self):
        Children.stop(self.proc)
        self.thread.join(timeout=5)
        self.err.close()


class Fleet:
    """Every simulator started so far; hands out endpoint indexes and 127.x source ranges."""

    def __init__(self, exe, children, workdir, args):
        self.exe, self.children, self.workdir, self.args = exe, children, workdir, args
        self.sims = []
        self.next_net = 10  # sim k binds 127.(10+k).0.1 + device index

    def start(self, uri, prefix, first, count, deadline, psk_key=None):
        """Starts simulators for devices first..first+count-1; returns them."""
        started = []
        per = self.args.per_sim
        if psk_key and uri.startswith("coaps://"):
            per = min(per, 1000)  # lwdm-sim's DTLS limit per process (libcoap's client select(), docs/sim.md)
        while count > 0:
            n = min(per, count)
            if self.next_net > 250:
                raise BenchError("out of 127.x.0.0/16 source ranges for simulators")
            duration = max(int(deadline.left()) + 30, 60)
            argv = [self.exe, "register", "--server", uri, "--count", str(n), "--prefix", prefix,
                    "--first", str(first), "--lifetime", str(self.args.lifetime),
                    "--update-interval", str(self.args.update_interval),
                    "--concurrency", str(self.args.concurrency), "--timeout", str(self.args.sim_timeout),
                    "--local", f"127.{self.next_net}.0.1", "--duration", str(duration)]
            if psk_key:
                argv += ["--psk-key", psk_key]
            log = os.path.join(self.workdir, f"sim-{len(self.sims) + 1}.log")
            s = Sim(self.children, argv, log, n)
            s.log_path = log
            self.sims.append(s)
            started.append(s)
            self.next_net += 1
            first += n
            count -= n
        return started

    def stop_all(self):
        for s in reversed(self.sims):
            s.stop()
        self.sims = []


def check_alive(lwdm, what):
    if not lwdm.alive():
        raise BenchError(f"lwdm died during {what} (status {lwdm.proc.returncode}):\n" + tail(lwdm.stderr_path))


# -------------------------------------------------------------------- phases

def register_step(name, lwdm, fleet, uri, prefix, first, count, live_before, deadline, prev_us_per_update,
                  psk_key=None):
    """Registers `count` more devices; returns the step's figures."""
    check_alive(lwdm, name)
    m0 = metrics(lwdm)
    rss0 = proc_status_kb(lwdm.pid, "VmRSS")
    drops0 = udp_errors()
    cpu0 = CpuReading(lwdm.pid)
    t0 = time.monotonic()
    sims = fleet.start(uri, prefix, first, count, deadline, psk_key=psk_key)
    limit = t0 + fleet.args.sim_timeout * (fleet.args.retries + 1) + count / 200.0 + 30
    while True:
        if all(s.done() for s in sims):
            break
        for s in sims:
            if s.proc.poll() is not None and not s.done():
                s.thread.join(timeout=2)
                raise BenchError(f"lwdm-sim exited with status {s.proc.returncode} during {name} "
                                 f"({s.registered} registered, {s.failed} failed of {s.expected}):\n"
                                 + tail(s.log_path))
        check_alive(lwdm, name)
        deadline.check(name)
        if time.monotonic() > limit:
            break
        time.sleep(0.05)
    cpu1 = CpuReading(lwdm.pid)
    t_end = max([s.last_t for s in sims if s.last_t] or [time.monotonic()])
    rss1 = proc_status_kb(lwdm.pid, "VmRSS")
    drops1 = udp_errors()
    m1 = metrics(lwdm)
    ok = sum(s.registered for s in sims)
    failed = sum(s.failed for s in sims)
    lat = [x for s in sims for x in s.latencies]
    elapsed = max(t_end - t0, 1e-6)
    cpu_us, src = cpu_delta_us(cpu0, cpu1)
    bg_updates = m_updates(m1) - m_updates(m0)
    charge = bg_updates * prev_us_per_update if prev_us_per_update is not None else 0.0
    # the gauge, settled: Register answered means registered, so it should match at once
    gauge = m_registered(m1)
    want = live_before + ok
    settle_end = time.monotonic() + 5
    while gauge < want and time.monotonic() < settle_end:
        time.sleep(0.25)
        gauge = m_registered(metrics(lwdm))
    return {
        "phase": name, "kind": "register", "live": int(gauge), "expected_live": want,
        "new": count, "ok": ok, "failed": failed, "not_done": count - ok - failed,
        "elapsed_s": elapsed, "rate": ok / elapsed,
        "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99),
        "server_cpu_ms": cpu_us / 1000.0, "server_cpu_source": src,
        "background_updates": int(bg_updates), "background_charge_ms": charge / 1000.0,
        "raw_us_per_reg": cpu_us / ok if ok else None,
        "us_per_reg": max(cpu_us - charge, 0.0) / ok if ok else None,
        "rss_kb_before": rss0, "rss_kb": rss1,
        "rss_kb_per_device": (rss1 - rss0) / ok if ok else None,
        "udp_rcvbuf_errors": drops1 - drops0 if drops0 is not None and drops1 is not None else None,
        "fail_lines": [ln for s in sims for ln in s.fail_lines][:5],
    }


def update_window(name, lwdm, seconds, offered, deadline):
    """Counts Updates and server CPU over `seconds` while the devices keep updating."""
    check_alive(lwdm, name)
    if deadline.left() < seconds + 5:
        raise BenchError(f"--max-seconds {deadline.seconds:g} leaves no time for {name}")
    m0 = metrics(lwdm)
    drops0 = udp_errors()
    cpu0 = CpuReading(lwdm.pid)
    t0 = time.monotonic()
    time.sleep(seconds)
    cpu1 = CpuReading(lwdm.pid)
    t1 = time.monotonic()
    m1 = metrics(lwdm)
    drops1 = udp_errors()
    check_alive(lwdm, name)
    ups = m_updates(m1) - m_updates(m0)
    cpu_us, src = cpu_delta_us(cpu0, cpu1)
    return {
        "phase": name, "kind": "update", "live": int(m_registered(m1)), "window_s": t1 - t0,
        "updates": int(ups), "updates_per_s": ups / (t1 - t0), "offered_per_s": offered,
        "server_cpu_ms": cpu_us / 1000.0, "server_cpu_source": src,
        "server_cpu_share": cpu_us / 1e6 / (t1 - t0),
        "us_per_update": cpu_us / ups if ups else None,
        "rss_kb": proc_status_kb(lwdm.pid, "VmRSS"),
        "refused": int(m1.get('lwdm_registrations_total{event="refused"}', 0)
                       - m0.get('lwdm_registrations_total{event="refused"}', 0)),
        "expired": int(m1.get('lwdm_registrations_total{event="expired"}', 0)
                       - m0.get('lwdm_registrations_total{event="expired"}', 0)),
        "udp_rcvbuf_errors": drops1 - drops0 if drops0 is not None and drops1 is not None else None,
    }


def login(lwdm, session):
    r = lwdm.api("POST", "/auth/token", body={"username": "admin", "password": lwdm.password}, session=session)
    if r.status_code != 200:
        raise BenchError(f"POST /auth/token answered {r.status_code}: {r.text[:300]}")
    return r.json()["token"]


def registered_ids(lwdm, token, session, want, deadline):
    ids, offset = [], 0
    while len(ids) < want:
        deadline.check("listing registered devices")
        r = lwdm.api("GET", f"/devices?state=registered&limit=1000&offset={offset}", token=token, session=session,
                     timeout=30)
        if r.status_code != 200:
            raise BenchError(f"GET /devices?state=registered answered {r.status_code}: {r.text[:300]}")
        items = r.json()["items"]
        if not items:
            break
        ids += [d["id"] for d in items]
        offset += len(items)
    return ids


def rest_reads(name, lwdm, count, deadline):
    """`count` sequential GET .../data/3/0/9 on random registered devices."""
    check_alive(lwdm, name)
    s = requests.Session()
    token = login(lwdm, s)
    ids = registered_ids(lwdm, token, s, 5000, deadline)
    if not ids:
        raise BenchError("no registered device to read from")
    rng = random.Random(1)
    lat, codes = [], {}
    m0 = metrics(lwdm)
    cpu0 = CpuReading(lwdm.pid)
    t0 = time.monotonic()
    for i in range(count):
        if i % 20 == 0:
            deadline.check(name)
        dev = rng.choice(ids)
        a = time.monotonic()
        r = lwdm.api("GET", f"/devices/{dev}/data/3/0/9", token=token, session=s, timeout=30)
        lat.append((time.monotonic() - a) * 1000.0)
        codes[r.status_code] = codes.get(r.status_code, 0) + 1
    t1 = time.monotonic()
    cpu1 = CpuReading(lwdm.pid)
    m1 = metrics(lwdm)
    s.close()
    cpu_us, _ = cpu_delta_us(cpu0, cpu1)
    return {"phase": name, "reads": count, "codes": codes, "elapsed_s": t1 - t0,
            "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99), "max_ms": max(lat),
            "server_cpu_ms": cpu_us / 1000.0, "updates_meanwhile": int(m_updates(m1) - m_updates(m0))}


# -------------------------------------------------------------------- report

def report(regs, ups, reads, baseline, overall, meta):
    base = baseline["us_per_exchange"] if baseline and baseline["us_per_exchange"] > 0 else None
    print()
    print(f"registry benchmark  {meta['date']}  lwdm {meta['version']}  build {meta['build']}")
    print(f"machine: {meta['cpus']} CPUs shared by lwdm, {meta['sims']} lwdm-sim process(es) and this script; "
          f"lwdm-sim concurrency {meta['concurrency']}, lifetime {meta['lifetime']} s, Update every "
          f"{meta['update_interval']} s; update windows {meta['window']} s; lwdm log level {meta['log_level']}")
    print("server CPU = CPU time of the lwdm process (all threads) from /proc; µs/reg has the Updates of the devices"
          " registered before charged at the previous window's µs/upd and subtracted (raw in the detail lines).")
    print("live = lwdm_devices_registered after the step; reg/s and reg latency are wall-clock figures"
          " (start of the simulators → last `state=registered` line); × base = server CPU per operation ÷ one plain"
          " libcoap exchange (a Register or an Update is one exchange).")
    print()
    hdr = ("phase", "live", "new ok/failed", "reg/s", "reg p50/p99 ms", "upd/s", "µs/reg", "µs/upd", "× base",
           "RSS MB", "ΔRSS KB/dev", "REST p50/p99 ms")
    rows = []
    for kind, r in sorted([("r", r) for r in regs] + [("u", u) for u in ups], key=lambda x: x[1]["order"]):
        if kind == "r":
            rows.append((r["phase"], str(r["live"]), f"{r['ok']}/{r['failed'] + r['not_done']}", fmt(r["rate"], ".0f"),
                         f"{fmt(r['p50_ms'], '.1f')}/{fmt(r['p99_ms'], '.1f')}", "-",
                         fmt(r["us_per_reg"], ".0f"), "-",
                         fmt(r["us_per_reg"] / base if base and r["us_per_reg"] is not None else None, ".1f"),
                         fmt(r["rss_kb"] / 1024.0, ".1f"), fmt(r["rss_kb_per_device"], ".2f"), "-"))
        else:
            rd = next((x for x in reads if x["after"] == r["phase"]), None)
            rows.append((r["phase"], str(r["live"]), "-", "-", "-", fmt(r["updates_per_s"], ".0f"), "-",
                         fmt(r["us_per_update"], ".0f"),
                         fmt(r["us_per_update"] / base if base and r["us_per_update"] is not None else None, ".1f"),
                         fmt(r["rss_kb"] / 1024.0, ".1f"), "-",
                         f"{fmt(rd['p50_ms'], '.1f')}/{fmt(rd['p99_ms'], '.1f')}" if rd else "-"))
    if overall:
        rows.append((overall["phase"], str(overall["live"]), f"{overall['ok']}/{overall['failed']}",
                     fmt(overall["rate"], ".0f"), "-", "-", fmt(overall["us_per_reg"], ".0f"), "-",
                     fmt(overall["us_per_reg"] / base if base and overall["us_per_reg"] is not None else None, ".1f"),
                     fmt(overall["rss_kb"] / 1024.0, ".1f"), fmt(overall["rss_kb_per_device"], ".2f"), "-"))
    if baseline:
        rows.append(("baseline", str(baseline["exchanges"]), "-", "-", "-", fmt(baseline["rate"], ".0f") + " ex/s",
                     fmt(baseline["us_per_exchange"], ".1f"), fmt(baseline["us_per_exchange"], ".1f"), "1.0",
                     "-", "-", "-"))
    print_table(hdr, rows)
    print()
    if baseline:
        print(baseline["line"])
        if baseline.get("detail"):
            print(baseline["detail"])
    for r in regs:
        print(f"{r['phase']}: {r['ok']} registered, {r['failed']} failed, {r['not_done']} not done in "
              f"{r['elapsed_s']:.2f} s; live {r['live']} (expected {r['expected_live']}); server CPU "
              f"{r['server_cpu_ms']:.0f} ms ({r['server_cpu_source']}), of which {r['background_updates']} Updates of "
              f"earlier devices {r['background_charge_ms']:.0f} ms; raw {fmt(r['raw_us_per_reg'], '.0f')} µs/reg; RSS "
              f"{r['rss_kb_before'] / 1024:.1f} → {r['rss_kb'] / 1024:.1f} MB; UDP receive-buffer drops (whole machine) "
              f"{fmt(r['udp_rcvbuf_errors'], 'd')}")
        for ln in r["fail_lines"]:
            print(f"  {ln}")
    for u in ups:
        print(f"{u['phase']}: {u['updates']} Updates in {u['window_s']:.1f} s ({u['updates_per_s']:.0f}/s, offered "
              f"{u['offered_per_s']:.0f}/s); server CPU {u['server_cpu_ms']:.0f} ms = {100 * u['server_cpu_share']:.0f} %"
              f" of a core ({u['server_cpu_source']}); refused {u['refused']}, expired {u['expired']}; UDP drops "
              f"{fmt(u['udp_rcvbuf_errors'], 'd')}")
    for rd in reads:
        print(f"REST reads after {rd['after']}: {rd['reads']} sequential GET /devices/{{id}}/data/3/0/9, answers "
              f"{rd['codes']}, p50 {rd['p50_ms']:.1f} ms p99 {rd['p99_ms']:.1f} ms max {rd['max_ms']:.1f} ms; "
              f"{rd['updates_meanwhile']} Updates meanwhile")
    if meta.get("idle_cpu_ms_per_s") is not None:
        print(f"idle lwdm before the first step (no devices): {meta['idle_cpu_ms_per_s']:.2f} ms CPU per second "
              "(included in every figure above, not subtracted)")
    nosec_ups = [u for u in ups if "PSK" not in u["phase"]]
    if len(nosec_ups) >= 2:
        a, b = nosec_ups[0], nosec_ups[-1]
        if a["us_per_update"] and b["us_per_update"] and b["live"] > a["live"]:
            slope = (b["us_per_update"] - a["us_per_update"]) / (b["live"] - a["live"]) * 1000.0
            print(f"server CPU per Update: {a['us_per_update']:.0f} µs at {a['live']} live sessions → "
                  f"{b['us_per_update']:.0f} µs at {b['live']} ({slope:+.1f} ns per extra live session)")
    print("Targets (issue 4): ≥ 10,000 registrations/s, ≤ 2 KB server memory per registered NoSec device. "
          "Printed for reading, not checked.")


# ---------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="build directory with lwdm, lwdm-sim, bench/ (default ./build)")
    ap.add_argument("--nosec", type=int, default=20000, help="NoSec devices (default 20000, at most 100000)")
    ap.add_argument("--steps", default="1000,5000",
                    help="registered-device counts measured before --nosec (default 1000,5000; '' for none)")
    ap.add_argument("--psk", type=int, default=0, help="PSK devices registered after the NoSec ones (default 0)")
    ap.add_argument("--psk-key", default=None, help="shared PSK, hex (default: random 16 bytes)")
    ap.add_argument("--update-interval", type=int, default=5, help="lwdm-sim --update-interval, s (default 5)")
    ap.add_argument("--lifetime", type=int, default=120, help="lwdm-sim --lifetime, s (default 120)")
    ap.add_argument("--window", type=float, default=20, help="length of each update window, s (default 20)")
    ap.add_argument("--reads", type=int, default=200, help="sequential REST reads after the last window (default 200)")
    ap.add_argument("--concurrency", type=int, default=64, help="lwdm-sim --concurrency per process (default 64)")
    ap.add_argument("--per-sim", type=int, default=16000, help="devices per lwdm-sim process (default 16000)")
    ap.add_argument("--sim-timeout", type=int, default=30, help="lwdm-sim --timeout per attempt, s (default 30)")
    ap.add_argument("--retries", type=int, default=0, help="lwdm-sim --retries (default 0: a lost Register shows)")
    ap.add_argument("--baseline-count", type=int, default=50000,
                    help="exchanges in the libcoap baseline (default 50000, 0 skips)")
    ap.add_argument("--log-level", default="info", help="lwdm --log-level (default info, the server's default)")
    ap.add_argument("--max-seconds", type=float, default=900, help="limit for the whole run (default 900)")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, database)")
    args = ap.parse_args()
    try:
        steps = sorted({int(x) for x in args.steps.split(",") if x.strip()})
    except ValueError:
        ap.error("--steps: comma-separated device counts")
    if not 1 <= args.nosec <= 100000 or args.psk < 0 or args.psk > 100000 or args.concurrency < 1 \
            or not 1 <= args.per_sim <= 19000 or args.update_interval < 1 or args.lifetime <= args.update_interval \
            or args.window <= 0 or args.reads < 0 or args.baseline_count < 0 or args.max_seconds <= 0 \
            or any(s < 1 for s in steps):
        ap.error("need 1 <= --nosec <= 100000, 0 <= --psk <= 100000, 1 <= --per-sim <= 19000, "
                 "--lifetime > --update-interval >= 1, --window > 0, counts >= 0, --max-seconds > 0")
    if args.psk_key is not None and not re.fullmatch(r"(?:[0-9a-fA-F]{2}){1,64}", args.psk_key):
        ap.error("--psk-key must be hex")
    steps = [s for s in steps if s < args.nosec] + [args.nosec]

    build = os.path.abspath(args.build)
    exes = {"lwdm": os.path.join(build, "lwdm"), "lwdm-sim": os.path.join(build, "lwdm-sim"),
            "baseline": os.path.join(build, "bench", "bench_bootstrap_baseline")}
    missing = [p for p in exes.values() if not os.access(p, os.X_OK)]
    if missing:
        print("bench: missing in the build directory (build them first, e.g. "
              "cmake --build build --target bench-registry):\n  " + "\n  ".join(missing), file=sys.stderr)
        return 2
    if requests is None:
        print("bench: needs python3-requests (/metrics, REST reads)", file=sys.stderr)
        return 2

    deadline = Deadline(args.max_seconds)
    children = Children()
    workdir = tempfile.mkdtemp(prefix="lwdm-bench-registry-")
    lwdm = Lwdm(build, workdir, children, args.log_level, extra_args=["--accept-unknown", "on"])
    fleet = Fleet(exes["lwdm-sim"], children, workdir, args)
    regs, ups, reads, baseline, overall, status, version, nsims = [], [], [], None, None, 0, "?", 0
    idle_cpu_ms_per_s = None
    order = [0]

    def add(lst, r):
        order[0] += 1
        r["order"] = order[0]
        lst.append(r)
        return r

    def on_term(sig, frame):
        raise Interrupted()
    old_term = signal.signal(signal.SIGTERM, on_term)
    try:
        version = lwdm_version(exes["lwdm"])
        lwdm.start(deadline)
        print(f"lwdm running (pid {lwdm.pid}): http {lwdm.http}, coap {lwdm.coap}, coaps {lwdm.coaps}; "
              f"work dir {workdir}", flush=True)
        uri = f"coap://{HOST}:{lwdm.coap}"
        idle = wait_idle(lwdm.pid, deadline)
        time.sleep(3.0)
        idle_cpu_ms_per_s = cpu_delta_us(idle, CpuReading(lwdm.pid))[0] / 3000.0
        rss_start = proc_status_kb(lwdm.pid, "VmRSS")
        live, prev_upd, reg_time, reg_ok, reg_failed = 0, None, 0.0, 0, 0
        charge_total = 0.0
        for target in steps:
            n = target - live
            print(f"NoSec: registering {n} devices ({live} → {target}) ...", flush=True)
            r = add(regs, register_step(f"register → {target}", lwdm, fleet, uri, "bench-nosec-", live + 1, n, live,
                                        deadline, prev_upd))
            reg_time += r["elapsed_s"]
            reg_ok += r["ok"]
            reg_failed += r["failed"] + r["not_done"]
            charge_total += r["background_charge_ms"] * 1000.0
            print(f"  {r['ok']} registered, {r['failed']} failed, {r['not_done']} not done in {r['elapsed_s']:.2f} s "
                  f"({r['rate']:.0f}/s); lwdm_devices_registered {r['live']}", flush=True)
            live = r["live"]
            if r["ok"] < n:
                status = 1
            print(f"  update window {args.window:g} s at {live} live ...", flush=True)
            u = add(ups, update_window(f"update @ {live}", lwdm, args.window, live / args.update_interval, deadline))
            prev_upd = u["us_per_update"]
            print(f"  {u['updates_per_s']:.0f} updates/s, {fmt(u['us_per_update'], '.0f')} µs server CPU per update",
                  flush=True)
        if reg_ok:
            last = regs[-1]
            cpu_total_ms = sum(r["server_cpu_ms"] for r in regs)
            overall = {"phase": "NoSec total", "live": live, "ok": reg_ok, "failed": reg_failed,
                       "rate": reg_ok / reg_time if reg_time else None,
                       "us_per_reg": max(cpu_total_ms * 1000.0 - charge_total, 0) / reg_ok,
                       "rss_kb": last["rss_kb"], "rss_kb_per_device": (last["rss_kb"] - rss_start) / reg_ok}
        if args.reads:
            print(f"REST: {args.reads} sequential reads while the devices keep updating ...", flush=True)
            rd = rest_reads("REST reads", lwdm, args.reads, deadline)
            rd["after"] = ups[-1]["phase"]
            reads.append(rd)
            if set(rd["codes"]) != {200}:
                status = 1
        if args.psk:
            key = args.psk_key or secrets.token_hex(16)
            print(f"PSK: creating {args.psk} devices through the REST API ...", flush=True)
            took = create_psk_devices(lwdm, args.psk, "bench-psk-", key, deadline, "managementCredentials")
            print(f"  created in {took:.1f} s; registering over DTLS-PSK ...", flush=True)
            r = add(regs, register_step(f"PSK register +{args.psk}", lwdm, fleet, f"coaps://{HOST}:{lwdm.coaps}",
                                        "bench-psk-", 1, args.psk, live, deadline, prev_upd, psk_key=key))
            print(f"  {r['ok']} registered, {r['failed']} failed in {r['elapsed_s']:.2f} s ({r['rate']:.0f}/s)",
                  flush=True)
            if r["ok"] < args.psk:
                status = 1
            live = r["live"]
            u = add(ups, update_window(f"update @ {live} (PSK incl.)", lwdm, args.window,
                                       (args.nosec + args.psk) / args.update_interval, deadline))
        nsims = len(fleet.sims)
        # stop the simulators (they de-register) and lwdm; quiet machine for the baseline
        fleet.stop_all()
        lwdm.stop()
        if args.baseline_count:
            print(f"baseline: {args.baseline_count} plain CoAP exchanges ...", flush=True)
            baseline = run_baseline(exes["baseline"], args, children, deadline)
            if baseline["status"] != 0:
                status = 1
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        status = 1
    except (KeyboardInterrupt, Interrupted):
        print("bench: interrupted", file=sys.stderr)
        status = 130
    finally:
        nsims = nsims or len(fleet.sims)
        fleet.stop_all()
        children.stop_all()
        signal.signal(signal.SIGTERM, old_term)
        if status != 0 and os.path.exists(lwdm.stderr_path):
            print("lwdm log (last lines):\n" + tail(lwdm.stderr_path, 10), file=sys.stderr)
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    if regs or ups or baseline:
        meta = {"date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"), "version": version,
                "build": args.build, "cpus": os.cpu_count(), "sims": nsims, "concurrency": args.concurrency,
                "lifetime": args.lifetime, "update_interval": args.update_interval, "window": args.window,
                "log_level": args.log_level, "idle_cpu_ms_per_s": idle_cpu_ms_per_s}
        report(regs, ups, reads, baseline, overall, meta)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"meta": meta, "register": regs, "update": ups, "rest": reads, "overall": overall,
                           "baseline": baseline}, f, indent=1)
    return status


if __name__ == "__main__":
    sys.exit(main())
