"""Helpers for the end-to-end tests of the real binaries (lwdm, lwdm-sim).

Stdlib + python3-requests only. Every process started here is registered with
the `procs` fixture's ProcessGroup and stopped (SIGTERM, then SIGKILL) when the
test that started it ends, whatever happens; every wait is bounded.

Environment: LWDM_BUILD_DIR (holds `lwdm` and `lwdm-sim`), LWDM_SOURCE_DIR.
"""
import json
import os
import random
import re
import signal
import socket
import sqlite3
import struct
import subprocess
import time

import pytest
import requests

SOURCE_DIR = os.environ.get("LWDM_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD_DIR = os.environ.get("LWDM_BUILD_DIR") or os.path.join(SOURCE_DIR, "build")
LWDM = os.path.join(BUILD_DIR, "lwdm")
LWDM_SIM = os.path.join(BUILD_DIR, "lwdm-sim")

ADMIN_PASSWORD = "e2e-Adm1n-pw-Zq8vK3"   # distinctive, so logs can be grepped for it
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


def require_binaries(*paths):
    missing = [p for p in (paths or (LWDM, LWDM_SIM)) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail("binaries not built: %s (LWDM_BUILD_DIR=%s)" % (", ".join(missing), BUILD_DIR))


# ------------------------------------------------------------------ ports
def free_port(kind=socket.SOCK_STREAM):
    """A port free right now on 127.0.0.1 (TCP by default, UDP with SOCK_DGRAM)."""
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def tcp_port_free(port):
    """`port` can be bound right now for TCP on 127.0.0.1 (as lwdm's listeners bind)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _ephemeral_low():
    """The first port of the kernel's ephemeral range (32768 by default)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _udp_port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


_PORT_RNG = random.SystemRandom()   # not the module's generator, which a test may seed


def free_ports():
    """http (TCP) and the four CoAP ports, all distinct. A CoAP port is free for UDP
    and for TCP: lwdm listens for CoAP over TCP/TLS on the same numbers (--tcp on).

    Drawn at random below the kernel's ephemeral range: a port from bind(0) is an
    ephemeral one, which any socket of a concurrent test (a sim's client socket, an
    HTTP connection's source port) may be handed between the moment it is released
    here and the moment lwdm binds it, or while a test restarts lwdm on the same
    ports (seen under load: "cannot listen on 127.0.0.1 udp port ..."). Ports below
    the range are handed out only to explicit binds."""
    low, high = 10000, _ephemeral_low()
    seen = set()
    out = {}
    for name, kind in (("http", socket.SOCK_STREAM), ("coap", socket.SOCK_DGRAM), ("coaps", socket.SOCK_DGRAM),
                       ("bs_coap", socket.SOCK_DGRAM), ("bs_coaps", socket.SOCK_DGRAM)):
        p = None
        for _ in range(200 if high - low > 1000 else 0):
            c = _PORT_RNG.randrange(low, high)
            if c in seen or not tcp_port_free(c):
                continue
            if kind == socket.SOCK_DGRAM and not _udp_port_free(c):
                continue
            p = c
            break
        for _ in range(50 if p is None else 0):   # no room below the ephemeral range: bind(0)
            c = free_port(kind)
            if c not in seen and (kind == socket.SOCK_STREAM or tcp_port_free(c)):
                p = c
                break
        seen.add(p)
        out[name] = p
    return out


def udp_port_in_use(port):
    return not _udp_port_free(port)


def clean_env(extra=None):
    """os.environ without any LWDM_* variable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LWDM_")}
    # sanitizer runs: keep their options, they do not start with LWDM_
    if extra:
        env.update({k: str(v) for k, v in extra.items()})
    return env


# -------------------------------------------------------------- processes
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


class ProcessGroup:
    """Every process a test started; stop_all() ends them all (bounded), then fails if
    any of their output files holds a sanitizer report (ASan/UBSan builds)."""

    def __init__(self):
        self.procs = []
        self.outputs = []

    def add(self, p, *output_files):
        self.procs.append(p)
        self.outputs += output_files
        return p

    def sanitizer_reports(self):
        found = []
        for path in self.outputs:
            text = _read(path)
            for marker in SANITIZER_MARKERS:
                if marker in text:
                    i = text.index(marker)
                    found.append("%s:\n%s" % (path, text[max(0, i - 200):i + 3000]))
                    break
        return found

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGTERM)
                except OSError:
                    pass
        deadline = time.monotonic() + STOP_TIMEOUT
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        reports = self.sanitizer_reports()
        assert not reports, "sanitizer report:\n" + "\n".join(reports)


@pytest.fixture
def procs():
    g = ProcessGroup()
    yield g
    g.stop_all()


def run(args, timeout=30, env=None, cwd=None, input=None):
    """Runs a short command to completion (killed on timeout); CompletedProcess with text."""
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env or clean_env(), cwd=cwd,
                       input=input)
    for marker in SANITIZER_MARKERS:
        assert marker not in r.stderr, "sanitizer report from %s:\n%s" % (args, r.stderr[-6000:])
    return r


class Lwdm:
    """One `lwdm serve` process. Output goes to files in `workdir` (one pair per start)."""

    def __init__(self, group, workdir, db=None, args=(), env=None, admin_password=ADMIN_PASSWORD, ports=None,
                 use_flags=True, log_level="debug"):
        self.group = group
        self.workdir = str(workdir)
        self.db = str(db or os.path.join(self.workdir, "lwdm.db"))
        self.extra_args = list(args)
        self.extra_env = dict(env or {})
        self.admin_password = admin_password
        self.ports = dict(ports or free_ports())
        self.use_flags = use_flags
        self.log_level = log_level
        self.proc = None
        self.starts = 0
        self.out_path = self.err_path = None
        self.ready_line = None
        self._token = None

    # -- lifecycle
    def command(self):
        cmd = [LWDM, "serve"]
        if self.use_flags:
            p = self.ports
            cmd += ["--db", self.db, "--http", "127.0.0.1:%d" % p["http"], "--coap", str(p["coap"]),
                    "--coaps", str(p["coaps"]), "--bs-coap", str(p["bs_coap"]), "--bs-coaps", str(p["bs_coaps"])]
            if self.log_level:
                cmd += ["--log-level", self.log_level]
        return cmd + self.extra_args

    def start(self, wait=True):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        self.out_path = os.path.join(self.workdir, "lwdm-%d.stdout" % self.starts)
        self.err_path = os.path.join(self.workdir, "lwdm-%d.stderr" % self.starts)
        env = {}
        if self.admin_password is not None:
            env["LWDM_ADMIN_PASSWORD"] = self.admin_password
        env.update(self.extra_env)
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = self.group.add(subprocess.Popen(self.command(), stdout=out, stderr=err,
                                                        stdin=subprocess.DEVNULL, env=clean_env(env),
                                                        cwd=self.workdir), self.out_path, self.err_path)
        self._token = None
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=READY_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.stderr().splitlines():
                if "event=ready" in line:
                    self.ready_line = line
                    self._learn_ports(line)
                    if self.healthz(timeout=2) == 200:
                        return self
            if self.proc.poll() is not None:
                raise AssertionError("lwdm exited with %s before it was ready\nstdout:\n%s\nstderr:\n%s"
                                     % (self.proc.returncode, self.stdout(), self.stderr()[-4000:]))
            time.sleep(0.05)
        raise AssertionError("lwdm not ready within %.0f s\nstderr:\n%s" % (timeout, self.stderr()[-4000:]))

    def _learn_ports(self, line):
        for key, name in (("http_port", "http"), ("bs_coap_port", "bs_coap"), ("bs_coaps_port", "bs_coaps")):
            m = re.search(r'%s["\\]*[=:]\s*"?(\d+)' % key, line)
            if m:
                self.ports[name] = int(m.group(1))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Sends sig and waits; returns the exit status. Kills (and fails) on timeout."""
        if not self.alive():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise AssertionError("lwdm did not exit within %.0f s of signal %d" % (timeout, sig))

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(timeout=10)

    # -- output
    def stdout(self):
        return _read(self.out_path)

    def stderr(self):
        return _read(self.err_path)

    def all_output(self):
        """Everything every start printed, stdout and stderr."""
        text = []
        for i in range(1, self.starts + 1):
            text.append(_read(os.path.join(self.workdir, "lwdm-%d.stdout" % i)))
            text.append(_read(os.path.join(self.workdir, "lwdm-%d.stderr" % i)))
        return "\n".join(text)

    # -- HTTP
    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.ports["http"]

    def healthz(self, timeout=5):
        try:
            return requests.get(self.url + "/healthz", timeout=timeout).status_code
        except requests.RequestException:
            return None

    def login(self, password=None, user="admin"):
        r = requests.post(self.url + "/api/v1/auth/token",
                          json={"username": user, "password": password or self.admin_password}, timeout=10)
        assert r.status_code == 200, "login failed: %s %s" % (r.status_code, r.text)
        self._token = r.json()["token"]
        return self._token

    def api(self, method, path, body=None, expect=None, **kw):
        if self._token is None:
            self.login()
        headers = {"Authorization": "Bearer " + self._token}
        r = requests.request(method, self.url + "/api/v1" + path, json=body, headers=headers,
                             timeout=kw.pop("timeout", 15), **kw)
        if expect is not None:
            ok = r.status_code in expect if isinstance(expect, (tuple, list, set)) else r.status_code == expect
            assert ok, "%s %s -> %s (expected %s): %s" % (method, path, r.status_code, expect, r.text[:2000])
        return r

    def list_all(self, path):
        """Every item of a paged collection."""
        items, offset = [], 0
        sep = "&" if "?" in path else "?"
        while True:
            j = self.api("GET", "%s%slimit=1000&offset=%d" % (path, sep, offset), expect=200).json()
            items += j["items"]
            offset += len(j["items"])
            if not j["items"] or offset >= j["total"]:
                return items

    def servers(self):
        return self.list_all("/lwm2m-servers")

    def devices(self):
        return self.list_all("/devices")

    def device_count(self):
        return self.api("GET", "/devices?limit=1", expect=200).json()["total"]

    def device_by_endpoint(self, ep):
        """Full representation of the device `ep`, or None."""
        for d in self.list_all("/devices?q=" + requests.utils.quote(ep)):
            if d["endpoint"] == ep:
                return self.api("GET", "/devices/%d" % d["id"], expect=200).json()
        return None

    def create_psk_device(self, ep, key_hex, identity=None):
        body = {"endpoint": ep,
                "bootstrapCredentials": {"securityMode": "psk", "pskIdentity": identity or ep, "psk": key_hex}}
        return self.api("POST", "/devices", body, expect=201).json()


def _read(path):
    if not path or not os.path.exists(path):
        return ""
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def wait_bootstrapped(srv, endpoints, timeout=20):
    """Devices by endpoint once every one of `endpoints` has a successful last bootstrap.
    The sim counts a device done when it has answered Finish; the server writes the
    record at the end of that loop pass, a moment later: poll (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        devices = {d["endpoint"]: d for d in srv.devices()}
        missing = [ep for ep in endpoints if bootstrap_status(devices.get(ep, {})) != "success"]
        if not missing or time.monotonic() > deadline:
            assert not missing, "no successful bootstrap recorded for %s" % missing[:10]
            return devices
        time.sleep(0.1)


def bootstrap_status(dev):
    """lastBootstrap.status of a device representation (None if never)."""
    lb = dev.get("lastBootstrap")
    return lb.get("status") if isinstance(lb, dict) else None


# ------------------------------------------------------------------- sim
SUMMARY_RE = re.compile(r"^summary: (\d+) ok, (\d+) failed", re.M)


def sim_args(server_port, count, prefix, scheme="coap", extra=()):
    return [LWDM_SIM, "bootstrap", "--server", "%s://127.0.0.1:%d" % (scheme, server_port), "--count", str(count),
            "--prefix", prefix] + list(extra)


def start_sim(group, workdir, args, name):
    out = open(os.path.join(str(workdir), name + ".stdout"), "wb")
    err = open(os.path.join(str(workdir), name + ".stderr"), "wb")
    p = subprocess.Popen(args, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=clean_env())
    out.close()
    err.close()
    p.lwdm_out = os.path.join(str(workdir), name + ".stdout")
    p.lwdm_err = os.path.join(str(workdir), name + ".stderr")
    return group.add(p, p.lwdm_out, p.lwdm_err)


def wait_sim(p, timeout=60):
    """Waits for a sim started with start_sim; (returncode, stdout, stderr)."""
    try:
        rc = p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(timeout=5)
        raise AssertionError("lwdm-sim did not finish within %.0f s:\n%s" % (timeout, _read(p.lwdm_out)[-3000:]))
    return rc, _read(p.lwdm_out), _read(p.lwdm_err)


def parse_summary(out):
    m = SUMMARY_RE.search(out)
    assert m, "no summary line in lwdm-sim output:\n" + out[-3000:]
    return int(m.group(1)), int(m.group(2))


def sim_results(out):
    """{endpoint: 'ok' | 'failed'} from the per-device lines."""
    return dict(re.findall(r"^ep=(\S+) result=(\w+)", out, re.M))


# ------------------------------------------------------------------ CoAP
CON, NON, ACK, RST = 0, 1, 2, 3
GET, POST, PUT, DELETE = 1, 2, 3, 4
OPT_URI_PATH, OPT_CONTENT_FORMAT, OPT_URI_QUERY, OPT_ACCEPT = 11, 12, 15, 17
OPT_ETAG, OPT_BLOCK2, OPT_BLOCK1, OPT_SIZE2, OPT_SIZE1 = 4, 23, 27, 28, 60


def code(cls, detail):
    return (cls << 5) | detail


def code_str(c):
    return "%d.%02d" % (c >> 5, c & 31)


def _ext(n):
    """nibble and extended bytes for an option delta or length (RFC 7252 §3.1)."""
    if n < 13:
        return n, b""
    if n < 269:
        return 13, bytes([n - 13])
    return 14, struct.pack("!H", n - 269)


def encode_options(options):
    """options: list of (number, bytes); sorted by number (stable), delta-encoded."""
    out = bytearray()
    last = 0
    for num, val in sorted(options, key=lambda o: o[0]):
        if isinstance(val, str):
            val = val.encode()
        dn, dx = _ext(num - last)
        ln, lx = _ext(len(val))
        out.append((dn << 4) | ln)
        out += dx + lx + val
        last = num
    return bytes(out)


def encode(mtype, mcode, mid, token=b"", options=(), payload=b"", version=1):
    assert len(token) <= 8
    msg = bytearray([(version << 6) | (mtype << 4) | len(token), mcode]) + struct.pack("!H", mid) + token
    msg += encode_options(options)
    if payload:
        msg += b"\xff" + payload
    return bytes(msg)


def request(method, path, query=(), token=None, mid=None, mtype=CON, accept=None, content_format=None,
            payload=b"", extra_options=()):
    """A request datagram: path "bs" or "a/b", query a list of "k=v" strings (or bytes)."""
    opts = [(OPT_URI_PATH, seg) for seg in path.split("/") if seg]
    opts += [(OPT_URI_QUERY, q) for q in query]
    if accept is not None:
        opts.append((OPT_ACCEPT, _uint(accept)))
    if content_format is not None:
        opts.append((OPT_CONTENT_FORMAT, _uint(content_format)))
    opts += list(extra_options)
    token = os.urandom(4) if token is None else token
    mid = random.randrange(0x10000) if mid is None else mid
    return encode(mtype, method, mid, token, opts, payload)


def _uint(v):
    if v == 0:
        return b""
    n = (v.bit_length() + 7) // 8
    return v.to_bytes(n, "big")


def block_value(num, more, szx):
    """A Block1/Block2 option value (RFC 7959 2.2)."""
    return _uint(num << 4 | (8 if more else 0) | szx)


def block_parse(val):
    """(num, more, szx) of a Block1/Block2 option value."""
    v = int.from_bytes(val, "big") if val else 0
    return v >> 4, bool(v & 8), v & 7


class CoapMessage:
    def __init__(self, version, mtype, code, mid, token, options, payload):
        self.version, self.type, self.code, self.mid = version, mtype, code, mid
        self.token, self.options, self.payload = token, options, payload

    @property
    def code_str(self):
        return code_str(self.code)

    def option(self, num):
        return [v for n, v in self.options if n == num]

    def __repr__(self):
        return "CoapMessage(type=%d code=%s mid=%d token=%s payload=%r)" % (
            self.type, self.code_str, self.mid, self.token.hex(), self.payload[:80])


def decode(data):
    """Parses a datagram (strict); raises ValueError on a format error."""
    try:
        return _decode(bytes(data))
    except (IndexError, struct.error) as e:
        raise ValueError("truncated: %s" % e)


def _decode(data):
    if len(data) < 4:
        raise ValueError("short header")
    b0, c, mid = data[0], data[1], struct.unpack("!H", data[2:4])[0]
    ver, mtype, tkl = b0 >> 6, (b0 >> 4) & 3, b0 & 15
    if tkl > 8 or len(data) < 4 + tkl:
        raise ValueError("bad token length")
    token = data[4:4 + tkl]
    i, num, options, payload = 4 + tkl, 0, [], b""
    while i < len(data):
        if data[i] == 0xFF:
            payload = data[i + 1:]
            if not payload:
                raise ValueError("payload marker without payload")
            break
        d, ln = data[i] >> 4, data[i] & 15
        i += 1
        vals = []
        for nib in (d, ln):
            if nib == 13:
                vals.append(data[i] + 13)
                i += 1
            elif nib == 14:
                vals.append(struct.unpack("!H", data[i:i + 2])[0] + 269)
                i += 2
            elif nib == 15:
                raise ValueError("reserved nibble 15")
            else:
                vals.append(nib)
        num += vals[0]
        options.append((num, bytes(data[i:i + vals[1]])))
        i += vals[1]
        if i > len(data):
            raise ValueError("option overruns the datagram")
    return CoapMessage(ver, mtype, c, mid, token, options, payload)


class CoapClient:
    """A UDP socket talking to one CoAP port of lwdm."""

    def __init__(self, port, host="127.0.0.1"):
        self.addr = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))

    def close(self):
        self.sock.close()

    def send(self, datagram):
        self.sock.sendto(datagram, self.addr)

    def recv(self, timeout):
        """Next datagram from the server, or None after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data, src = self.sock.recvfrom(65535)
            except socket.timeout:
                return None
            if src == self.addr:
                return data

    def exchange(self, datagram, timeout=3.0):
        """Sends a request and returns the decoded response (piggy-backed, or a separate
        one after an empty ACK; a CON response is ACKed), or None on silence."""
        try:
            req = decode(datagram)
        except ValueError:
            req = None                         # malformed on purpose: take any answer
        self.send(datagram)
        deadline = time.monotonic() + timeout
        while True:
            data = self.recv(max(0.0, deadline - time.monotonic()))
            if data is None:
                return None
            try:
                m = decode(data)
            except ValueError:
                return m_raw(data)
            if req is None:
                return m
            if m.type == ACK and m.code == 0 and m.mid == req.mid:
                continue                       # separate response follows
            if m.type == RST and m.mid == req.mid:
                return m
            if m.token == req.token and (m.type != ACK or m.mid == req.mid):
                if m.type == CON:
                    self.send(encode(ACK, 0, m.mid))
                return m
            # anything else (e.g. a stray server request): ignore

    def exchange_block2(self, method, path, query=(), szx=None, timeout=3.0, max_blocks=1024, **kw):
        """A request and its Block2 follow-ups (RFC 7959 2.4): the request (asking for
        blocks of 2**(szx+4) bytes when `szx` is given, early negotiation), then, while
        the last answer is a 2.xx with Block2 M set, the same request for the next block
        in the size the server answered with, each with a new message id and token.
        `kw` goes to request() (accept, content_format, payload, extra_options, mtype).
        Returns every answer in order; it ends early at silence (None last), at an
        answer without Block2, not 2.xx, or for another block than the one asked for.
        The body is b"".join(a.payload for a in answers) when the last one has M
        clear."""
        answers, num = [], 0
        extra = list(kw.pop("extra_options", ()))
        while len(answers) < max_blocks:
            opts = extra + ([(OPT_BLOCK2, block_value(num, False, szx))] if szx is not None else [])
            a = self.exchange(request(method, path, list(query), extra_options=opts, **kw), timeout=timeout)
            answers.append(a)
            if a is None or a.code >> 5 != 2 or not a.option(OPT_BLOCK2):
                return answers
            got, more, szx = block_parse(a.option(OPT_BLOCK2)[0])
            if not more or got != num:
                return answers
            num = got + 1
        return answers


def m_raw(data):
    return CoapMessage(None, None, None, None, b"", [], data)


# ---------------------------------------------------------------- sqlite
def sqlite_count(path, table):
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)
    try:
        return con.execute("SELECT count(*) FROM %s" % table).fetchone()[0]
    finally:
        con.close()


def sqlite_integrity(path):
    con = sqlite3.connect(path, timeout=10)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def wait_until(pred, timeout, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))


def dump(obj):
    return json.dumps(obj, sort_keys=True)


# ------------------------------------------------------ fake LwM2M client
import threading  # noqa: E402  (used by FakeDevice only)

OPT_OBSERVE, OPT_LOCATION_PATH = 6, 8
CF_TEXT, CF_LINK, CF_OPAQUE, CF_CBOR = 0, 40, 42, 60
CF_SENML_JSON, CF_SENML_CBOR, CF_TLV, CF_LWM2M_CBOR = 110, 112, 11542, 11544


def parse_code(s):
    """"2.05" -> the CoAP code byte."""
    cls, detail = s.split(".")
    return code(int(cls), int(detail))


def opt_uint(val):
    return int.from_bytes(val, "big") if val else 0


class Reply:
    """What a FakeDevice answers to one server request. `observe=False` never adds an
    Observe option, even to an Observe=0 request (the device refuses to be observed)."""

    def __init__(self, code_s="2.05", payload=b"", cf=None, options=(), observe=True, separate=None):
        self.code = parse_code(code_s) if isinstance(code_s, str) else code_s
        self.payload = payload.encode() if isinstance(payload, str) else payload
        self.cf = cf
        self.options = list(options)
        self.observe = observe
        self.separate = separate      # seconds: empty ACK now, the answer later as a CON


class FakeDevice:
    """A fake LwM2M client on lwdm's management CoAP port, over plain UDP.

    register()/update()/deregister() are synchronous exchanges. A background thread
    answers the server's requests from `responses`: {(method, "/3/0/9"): Reply | callable}
    (a callable gets the request and returns a Reply or None; None = stay silent). A
    request nothing matches gets `default` (4.04 unless changed). CON requests get a
    piggy-backed ACK (same MID and token); a retransmission gets the same answer again.
    Every server request is kept in `received` (CoapMessage with .path, .query, .at).
    An answered Observe=0 request starts an observation: notify(path, ...) then sends
    notifications (same token, increasing Observe values)."""

    def __init__(self, port, ep, host="127.0.0.1", links='</>;rt="oma.lwm2m";ct=110,</1/0>,</3/0>',
                 responses=None):
        self.addr = (host, port)
        self.ep = ep
        self.links = links
        self.responses = dict(responses or {})
        self.default = Reply("4.04")
        self.location = None          # "rd/12345"
        self.received = []
        self.observations = {}        # path -> [token, last observe value]
        self._cond = threading.Condition()
        self._replies = []            # answers to our own requests
        self._answered = {}           # mid of a server CON request -> our answer datagram
        self._mid = random.randrange(0x10000)
        self.sock = None
        self._thread = None
        self._open()

    # -- socket and thread
    def _open(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-%s" % self.ep, daemon=True)
        self._thread.start()

    def _shut(self):
        if self._thread:
            self._stop.set()
            self._thread.join(timeout=5)
            self._thread = None
        if self.sock:
            self.sock.close()
            self.sock = None

    def close(self):
        self._shut()

    def new_socket(self):
        """Moves to a new source port (NAT rebinding)."""
        self._shut()
        self._answered.clear()
        self._open()

    @property
    def local_port(self):
        return self.sock.getsockname()[1]

    def next_mid(self):
        self._mid = (self._mid + 1) & 0xFFFF
        return self._mid

    def send(self, datagram):
        self.sock.sendto(datagram, self.addr)

    def _run(self):
        sock, stop = self.sock, self._stop
        while not stop.is_set():
            try:
                data, src = sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            if src != self.addr:
                continue
            try:
                m = decode(data)
            except ValueError:
                continue
            m.at = time.monotonic()
            if 1 <= m.code <= 31 and m.type in (CON, NON):
                try:
                    self._serve(m)
                except OSError:
                    return
            else:
                with self._cond:
                    self._replies.append(m)
                    self._cond.notify_all()

    def _serve(self, m):
        if m.type == CON and m.mid in self._answered:
            self.send(self._answered[m.mid])       # retransmission: same answer
            return
        m.path = "/" + "/".join(v.decode("utf-8", "replace") for v in m.option(OPT_URI_PATH))
        m.query = [v.decode("utf-8", "replace") for v in m.option(OPT_URI_QUERY)]
        obs = m.option(OPT_OBSERVE)
        m.observe = opt_uint(obs[0]) if obs else None
        with self._cond:
            self.received.append(m)
            self._cond.notify_all()
        spec = self.responses.get((m.code, m.path), self.default)
        rep = spec(m) if callable(spec) else spec
        if rep is None:
            return
        opts = list(rep.options)
        if rep.cf is not None:
            opts.append((OPT_CONTENT_FORMAT, _uint(rep.cf)))
        if m.code == GET and m.observe == 0 and rep.observe and rep.code >> 5 == 2:
            self.observations[m.path] = [m.token, 1]
            opts.append((OPT_OBSERVE, _uint(1)))
        elif m.observe == 1:
            self.observations.pop(m.path, None)
        if m.type == CON and rep.separate is not None:
            ack = encode(ACK, 0, m.mid)
            self._answered[m.mid] = ack
            self.send(ack)
            later = encode(CON, rep.code, self.next_mid(), m.token, opts, rep.payload)
            t = threading.Timer(rep.separate, self._send_quietly, (later,))
            t.daemon = True
            t.start()
            return
        if m.type == CON:
            out = encode(ACK, rep.code, m.mid, m.token, opts, rep.payload)
            self._answered[m.mid] = out
        else:
            out = encode(NON, rep.code, self.next_mid(), m.token, opts, rep.payload)
        self.send(out)

    def _send_quietly(self, datagram):
        try:
            self.send(datagram)
        except (OSError, AttributeError):
            pass

    # -- what the server sent
    def wait_request(self, pred=lambda m: True, timeout=5.0, start=0):
        """The first server request at index >= start matching pred, or None."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.received[start:]:
                    if pred(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def mark(self):
        """An index for wait_request(start=...) / requests_since()."""
        with self._cond:
            return len(self.received)

    def requests_since(self, start):
        with self._cond:
            return list(self.received[start:])

    # -- our own requests
    def exchange(self, datagram, timeout=3.0):
        """Sends a request datagram; the answer (piggy-backed, or separate: a CON one is
        ACKed), or None after `timeout`."""
        req = decode(datagram)
        with self._cond:
            self._replies = [r for r in self._replies if r.mid != req.mid and r.token != req.token]
        self.send(datagram)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, r in enumerate(self._replies):
                    if r.type == ACK and r.code == 0 and r.mid == req.mid:
                        del self._replies[i]             # empty ACK: a separate response follows
                        break
                    if (r.type in (ACK, RST) and r.mid == req.mid) or \
                            (r.type in (CON, NON) and r.token == req.token):
                        del self._replies[i]
                        if r.type == CON:
                            self.send(encode(ACK, 0, r.mid))
                        return r
                else:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    self._cond.wait(left)

    def req(self, method, path, query=(), payload=b"", content_format=None, mtype=CON, timeout=3.0, mid=None,
            token=None):
        d = request(method, path, list(query), token=token, mid=self.next_mid() if mid is None else mid,
                    mtype=mtype, content_format=content_format, payload=payload)
        return self.exchange(d, timeout=timeout)

    def register_datagram(self, lt=None, lwm2m="1.1", b="U", extra=(), links=None, mid=None, ep=True):
        q = []
        if ep:
            q.append("ep=" + self.ep)
        if lt is not None:
            q.append("lt=%s" % lt)
        if lwm2m is not None:
            q.append("lwm2m=" + lwm2m)
        if b is not None:
            q.append("b=" + b)
        q += list(extra)
        body = self.links if links is None else links
        return request(POST, "rd", q, mid=self.next_mid() if mid is None else mid, content_format=CF_LINK,
                       payload=body.encode() if isinstance(body, str) else body)

    def register(self, timeout=3.0, **kw):
        """Register; sets self.location on 2.01. Returns the answer."""
        r = self.exchange(self.register_datagram(**kw), timeout=timeout)
        if r is not None and r.code_str == "2.01":
            self.location = "/".join(v.decode() for v in r.option(OPT_LOCATION_PATH))
        return r

    def update(self, query=(), payload=b"", location=None, timeout=3.0):
        return self.req(POST, location or self.location, query, payload=payload,
                        content_format=CF_LINK if payload else None, timeout=timeout)

    def deregister(self, location=None, timeout=3.0):
        return self.req(DELETE, location or self.location, timeout=timeout)

    def notify(self, path, payload, cf=CF_SENML_JSON, con=True, code_s="2.05", timeout=3.0, seq=None):
        """A notification of the observation of `path` (Observe = last + 1, or `seq`); for
        CON, waits for lwdm's ACK (returned; None on silence)."""
        token, last = self.observations[path]
        if seq is None:
            seq = last + 1
        self.observations[path][1] = max(seq, last)
        mid = self.next_mid()
        opts = [(OPT_OBSERVE, _uint(seq)), (OPT_CONTENT_FORMAT, _uint(cf))]
        d = encode(CON if con else NON, parse_code(code_s), mid, token, opts,
                   payload.encode() if isinstance(payload, str) else payload)
        self.send(d)
        if not con:
            return None
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, r in enumerate(self._replies):
                    if r.type in (ACK, RST) and r.mid == mid:
                        del self._replies[i]
                        return r
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)


def wait_events(srv, device_id, types, since=0, timeout=5.0):
    """Events of one device (JSON long poll) until every type of `types` was seen;
    the list of events."""
    seen, deadline = [], time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        wait = max(0, min(5, int(left)))
        r = srv.api("GET", "/events?format=json&since=%d&wait=%d&device=%d" % (since, wait, device_id),
                    expect=200, timeout=wait + 10)
        page = r.json()
        seen += page["items"]
        since = page["next"]
        if set(types) <= {e["type"] for e in seen} or left <= 0:
            return seen
