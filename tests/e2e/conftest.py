"""Fixtures of the end-to-end tests: the real `lwdm serve` on free ports.

One server per test module (ctest runs every tests/e2e/test_*.py on its own),
a token for the admin user, helpers for problem+json answers and for reaching
into the SQLite file directly (to set up rows whose API does not exist yet).
"""
import itertools
import os
import signal
import sqlite3
import subprocess
import tempfile
import time

import pytest
import requests

import lwdm_e2e

ADMIN_PASSWORD = "e2e-admin-Pa55word"
SOURCE_DIR = os.environ.get(
    "LWDM_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD_DIR = os.environ.get("LWDM_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
LWDM = os.path.join(BUILD_DIR, "lwdm")


class Server:
    def __init__(self, tmpdir):
        self.tmpdir = tmpdir
        self.db_path = os.path.join(tmpdir, "lwdm.db")
        self.log_path = os.path.join(tmpdir, "lwdm.log")
        p = lwdm_e2e.free_ports()   # below the ephemeral range (see there)
        http, coap, coaps, bs_coap, bs_coaps = p["http"], p["coap"], p["coaps"], p["bs_coap"], p["bs_coaps"]
        self.http_port = http
        self.base = "http://127.0.0.1:%d" % http
        self.cmd = [LWDM, "serve", "--db", self.db_path, "--http", "127.0.0.1:%d" % http,
                    "--coap", str(coap), "--coaps", str(coaps),
                    "--bs-coap", str(bs_coap), "--bs-coaps", str(bs_coaps)]
        self.proc = None
        self.log = None

    def start(self):
        env = dict(os.environ)
        env["LWDM_ADMIN_PASSWORD"] = ADMIN_PASSWORD
        env.setdefault("LWDM_LOG_LEVEL", "debug")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.cmd + ["--log-level", "debug"], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("lwdm exited with %s:\n%s" % (self.proc.returncode, self.log_text()[-4000:]))
            try:
                if requests.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("lwdm did not become healthy in 20 s:\n" + self.log_text()[-4000:])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.log:
            self.log.close()
            self.log = None

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def sql(self, query, params=()):
        """Runs one statement on the live database (WAL: fine next to the server)."""
        con = sqlite3.connect(self.db_path, timeout=10)
        try:
            con.execute("PRAGMA foreign_keys=ON")
            cur = con.execute(query, params)
            rows = cur.fetchall()
            con.commit()
            return rows
        finally:
            con.close()


class Api:
    """requests with the base URL and (optionally) the bearer token."""

    def __init__(self, base, token=None):
        self.base = base
        self.s = requests.Session()
        if token:
            self.s.headers["Authorization"] = "Bearer " + token

    def request(self, method, path, **kw):
        kw.setdefault("timeout", 15)
        return self.s.request(method, self.base + path, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, json=body, **kw) if body is not None else self.request("POST", path, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, json=body, **kw) if body is not None else self.request("PUT", path, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, json=body, **kw) if body is not None else self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


def login(base, username="admin", password=ADMIN_PASSWORD):
    r = requests.post(base + "/api/v1/auth/token", json={"username": username, "password": password}, timeout=15)
    assert r.status_code == 200, r.text
    return r.json()["token"]


@pytest.fixture(scope="module")
def server():
    if not os.path.exists(LWDM):
        pytest.fail("lwdm binary not found at %s (set LWDM_BUILD_DIR)" % LWDM)
    tmp = tempfile.TemporaryDirectory(prefix="lwdm-e2e-")
    srv = Server(tmp.name)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
        log = srv.log_text()
        code = srv.proc.returncode
        tmp.cleanup()
    # A clean SIGTERM shutdown, and no sanitizer report (ASan builds).
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        assert marker not in log, log[-6000:]
    assert code == 0, "lwdm exited with %s after SIGTERM:\n%s" % (code, log[-3000:])


@pytest.fixture(scope="module")
def token(server):
    return login(server.base)


@pytest.fixture(scope="module")
def api(server, token):
    return Api(server.base, token)


@pytest.fixture(scope="module")
def anon(server):
    return Api(server.base)


_counter = itertools.count(1)


@pytest.fixture
def uniq():
    """A function returning a fresh suffix (names, endpoints) and SSIDs that the
    server's own seeded entries (SSIDs 1 and 2) do not use."""
    class U:
        def name(self, prefix="t"):
            return "%s-%d-%d" % (prefix, os.getpid(), next(_counter))

        def ssid(self):
            return 100 + next(_counter)
    return U()


def assert_problem(resp, status, field=None):
    """The answer is problem+json with `status` (and an error on `field`)."""
    assert resp.status_code == status, "%s %s -> %s %s" % (
        resp.request.method, resp.request.url, resp.status_code, resp.text)
    assert resp.headers.get("Content-Type", "").startswith("application/problem+json"), resp.headers
    body = resp.json()
    assert body["status"] == status
    assert body["type"] and body["title"]
    if field is not None:
        fields = [e["field"] for e in body.get("errors", [])]
        assert field in fields, "expected an error on %r, got %s" % (field, body)
    return body
