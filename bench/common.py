"""Helpers shared by the benchmarks in bench/ (bench/bootstrap/bench.py,
bench/tasks/bench.py): free 127.0.0.1 ports, lwdm as a child process, the
children and the deadline that bound a run, lwdm's CPU time read from /proc,
lwdm-sim phases and the table the benchmarks print.

Nothing here passes or fails on time. Talks only to 127.0.0.1.
"""

import os
import re
import secrets
import signal
import socket
import subprocess
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


def tcp_port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((HOST, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_ports(n_udp):
    """Distinct free ports: one TCP (HTTP), n_udp CoAP ports that are free for UDP and
    for TCP (lwdm also listens for CoAP over TCP/TLS on the same numbers)."""
    seen = set()
    tcp = free_port("tcp")
    seen.add(tcp)
    udp = []
    while len(udp) < n_udp:
        p = free_port("udp")
        if p not in seen and tcp_port_free(p):
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


# ---------------------------------------------------------- lwdm, lwdm-sim

class Lwdm:
    def __init__(self, build, workdir, children, log_level, extra_args=()):
        self.exe = os.path.join(build, "lwdm")
        self.extra_args = list(extra_args)  # appended to `lwdm serve ...`
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
                "--log-level", self.log_level] + self.extra_args
        self.coap, self.coaps = coap, coaps  # management ports (not in event=ready)
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
    sim_log = os.path.join(workdir, "sim-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") + ".log")
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


# -------------------------------------------------------------------- report

def fmt(v, spec, missing="-"):
    return missing if v is None else format(v, spec)


def print_table(hdr, rows):
    """Prints rows (tuples of strings) under hdr: the first column left-aligned,
    the others right-aligned, two spaces apart, a dashed rule under the header."""
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(hdr)]

    def line(cols):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cols, widths)))
    print(line(hdr))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))


def lwdm_version(exe):
    """`lwdm version` without the leading "lwdm ", or "?"."""
    try:
        return subprocess.run([exe, "version"], capture_output=True, text=True,
                              timeout=10).stdout.strip().replace("lwdm ", "") or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"
