"""The lwdm command line, as an operator uses it: help, version, errors, environment
variables, migrate, backup, first-start password, key file, signals, restarts and
secrets kept out of the logs."""
import base64
import json
import os
import re
import signal
import sqlite3
import stat
import time

import pytest
import requests

from lwdm_e2e import (ADMIN_PASSWORD, LWDM, SOURCE_DIR, CoapClient, Lwdm, POST, clean_env, free_port,  # noqa: F401
                      free_ports, procs, request, require_binaries, run, sim_args, sqlite_count, sqlite_integrity,
                      start_sim, udp_port_in_use, wait_sim, wait_until, _read)

SERVE_FLAGS = ["--db", "--http", "--coap-addr", "--coap", "--coaps", "--bs-coap", "--bs-coaps", "--tcp", "--objects",
               "--public-host", "--accept-unknown", "--web", "--http-threads", "--bs-timeout", "--log-level",
               "--log-format", "--help"]
SERVE_ENV = ["LWDM_DB", "LWDM_HTTP", "LWDM_COAP_ADDR", "LWDM_COAP", "LWDM_COAPS", "LWDM_BS_COAP", "LWDM_BS_COAPS", "LWDM_TCP",
             "LWDM_OBJECTS", "LWDM_PUBLIC_HOST", "LWDM_ACCEPT_UNKNOWN", "LWDM_WEB", "LWDM_HTTP_THREADS",
             "LWDM_BS_TIMEOUT", "LWDM_LOG_LEVEL", "LWDM_LOG_FORMAT", "LWDM_ADMIN_PASSWORD", "LWDM_SECRET_KEY"]


@pytest.fixture(autouse=True)
def _binaries():
    require_binaries()


def migrations_count():
    return len([f for f in os.listdir(os.path.join(SOURCE_DIR, "migrations")) if f.endswith(".sql")])


# ------------------------------------------------------------------ help, version, errors
def test_top_level_help(tmp_path):
    for arg in ("--help", "-h", "help"):
        r = run([LWDM, arg], cwd=tmp_path)
        assert r.returncode == 0, r
        for cmd in ("serve", "migrate", "backup", "version"):
            assert re.search(r"^\s+%s\b" % cmd, r.stdout, re.M), (cmd, r.stdout)
    r = run([LWDM], cwd=tmp_path)
    assert r.returncode == 2 and "usage" in r.stderr, r
    assert os.listdir(tmp_path) == []


def test_serve_help_lists_every_flag(tmp_path):
    r = run([LWDM, "serve", "--help"], cwd=tmp_path)
    assert r.returncode == 0, r
    out = r.stdout
    for flag in SERVE_FLAGS:
        assert re.search(r"(^|\s)%s\b" % re.escape(flag), out), "%s missing from lwdm serve --help" % flag
    for env in SERVE_ENV:
        assert env in out, "%s missing from lwdm serve --help" % env
    assert os.listdir(tmp_path) == [], "--help must not create a database"


def test_readme_flags_are_in_help():
    """The README's option table and `lwdm serve --help` describe the same flags."""
    readme = _read(os.path.join(SOURCE_DIR, "README.md"))
    table = re.findall(r"^\| `(--[a-z-]+)[^|]*\| `?(LWDM_[A-Z_]+|—)", readme, re.M)
    assert len(table) >= 10, "README option table not found"
    out = run([LWDM, "serve", "--help"]).stdout
    for flag, env in table:
        assert re.search(r"(^|\s)%s\b" % re.escape(flag), out), flag
        if env.startswith("LWDM_"):
            assert env in out, env


def _parser_options():
    src = _read(os.path.join(SOURCE_DIR, "server", "config.c"))
    if not src:
        pytest.skip("server/config.c not found")
    return set(re.findall(r'strcmp\(name, "([a-z-]+)"\)', src)), set(re.findall(r'\{"(LWDM_[A-Z_]+)", "', src))


def test_every_accepted_option_is_documented():
    """Every option the parser accepts is listed by --help (no hidden flags)."""
    names, envs = _parser_options()
    assert names and envs
    out = run([LWDM, "serve", "--help"]).stdout
    hidden = sorted(["--" + n for n in names if not re.search(r"(^|\s)--%s\b" % re.escape(n), out)] +
                    [e for e in envs if e not in out])
    assert hidden == [], "accepted but not documented in --help: %s" % hidden


def test_version(tmp_path):
    for args in (["version"], ["--version"]):
        r = run([LWDM] + args, cwd=tmp_path)
        assert r.returncode == 0, r
        assert re.fullmatch(r"lwdm \d+\.\d+\.\d+\S*\n", r.stdout), r.stdout
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("args,env,message", [
    (["frobnicate"], {}, r"unknown command 'frobnicate'"),
    (["serve", "--frobnicate", "1"], {}, r"unknown option --frobnicate"),
    (["serve", "--frobnicate=1"], {}, r"unknown option --frobnicate"),
    (["serve", "stray"], {}, r"unexpected argument 'stray'"),
    (["serve", "--db"], {}, r"--db needs a value"),
    (["serve", "--log-level", "loud"], {}, r"invalid value for --log-level: 'loud'"),
    (["serve", "--log-format", "xml"], {}, r"invalid value for --log-format"),
    (["serve", "--http", "127.0.0.1:99999"], {}, r"invalid value for --http"),
    (["serve", "--bs-coap", "-1"], {}, r"invalid value for --bs-coap"),
    (["serve", "--accept-unknown", "maybe"], {}, r"invalid value for --accept-unknown"),
    (["serve", "--bs-timeout", "0"], {}, r"invalid value for --bs-timeout"),
    (["serve"], {"LWDM_LOG_LEVEL": "loud"}, r"LWDM_LOG_LEVEL.*invalid value"),
    (["serve"], {"LWDM_BS_COAP": "http"}, r"LWDM_BS_COAP.*invalid value"),
    (["migrate", "--nope", "x"], {}, r"unknown option --nope"),
    (["backup"], {}, r"usage: lwdm backup"),
    (["backup", "--db", "x.db"], {}, r"usage: lwdm backup"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_command_line_exit_2(tmp_path, args, env, message):
    r = run([LWDM] + args, env=clean_env(env), cwd=tmp_path, timeout=15)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert re.search(message, r.stderr), r.stderr
    assert r.stdout == "" or "usage" not in r.stdout
    assert os.listdir(tmp_path) == [], "a refused command line must not create files: %s" % os.listdir(tmp_path)


# ------------------------------------------------------------------ environment
def test_environment_variables_configure_serve(procs, tmp_path):
    """Only LWDM_* variables, no flags: every one of them takes effect."""
    ports = free_ports()
    db = str(tmp_path / "env" / "lwdm-env.db")
    os.mkdir(tmp_path / "env")
    env = {"LWDM_DB": db, "LWDM_HTTP": "127.0.0.1:%d" % ports["http"], "LWDM_COAP": ports["coap"],
           "LWDM_COAPS": ports["coaps"], "LWDM_BS_COAP": ports["bs_coap"], "LWDM_BS_COAPS": ports["bs_coaps"],
           "LWDM_COAP_ADDR": "127.0.0.1", "LWDM_PUBLIC_HOST": "lwdm.example", "LWDM_ACCEPT_UNKNOWN": "off",
           "LWDM_HTTP_THREADS": "3", "LWDM_BS_TIMEOUT": "2", "LWDM_LOG_LEVEL": "debug", "LWDM_LOG_FORMAT": "json"}
    srv = Lwdm(procs, tmp_path, db=db, env=env, ports=ports, use_flags=False).start()
    assert srv.command() == [LWDM, "serve"]
    # LWDM_DB (and its key file beside it)
    assert os.path.exists(db) and os.path.exists(db + ".key")
    assert not os.path.exists(tmp_path / "lwdm.db")
    # LWDM_HTTP
    assert srv.ports["http"] == ports["http"] and srv.healthz() == 200
    # LWDM_COAP, LWDM_COAPS, LWDM_BS_COAP, LWDM_BS_COAPS, LWDM_PUBLIC_HOST: the first-run server entries
    uris = {s["name"]: s["uri"] for s in srv.servers()}
    assert uris == {
        "lwdm management (NoSec)": "coap://lwdm.example:%d" % ports["coap"],
        "lwdm management (PSK)": "coaps://lwdm.example:%d" % ports["coaps"],
        "lwdm bootstrap (NoSec)": "coap://lwdm.example:%d" % ports["bs_coap"],
        "lwdm bootstrap (PSK)": "coaps://lwdm.example:%d" % ports["bs_coaps"]}, uris
    assert udp_port_in_use(ports["bs_coaps"])
    # LWDM_BS_COAP + LWDM_ACCEPT_UNKNOWN=off: an unknown endpoint is refused on that port
    c = CoapClient(ports["bs_coap"])
    try:
        reply = c.exchange(request(POST, "bs", ["ep=env-unknown"]), timeout=3)
    finally:
        c.close()
    assert reply is not None and reply.code_str == "4.00" and b"unknown endpoint" in reply.payload, reply
    assert srv.device_count() == 0
    # LWDM_BS_TIMEOUT=2: a device that goes silent is given up after 2 s
    srv.api("POST", "/devices", {"endpoint": "env-slow-000001"}, expect=201)
    sim = start_sim(procs, tmp_path, sim_args(ports["bs_coap"], 1, "env-slow-",
                                              extra=["--stall-after", "1", "--timeout", "30"]), "sim-env")
    t0 = time.monotonic()
    wait_until(lambda: "timeout: no Bootstrap-Finish within 2 s" in srv.stderr(), 15, what="the 2 s bootstrap timeout")
    assert time.monotonic() - t0 < 10
    sim.send_signal(signal.SIGTERM)
    wait_sim(sim, timeout=15)
    # LWDM_LOG_FORMAT=json and LWDM_LOG_LEVEL=debug: every log line is a JSON object, debug ones included
    lines = [l for l in srv.stderr().splitlines() if l.strip()]
    recs = []
    for l in lines:
        try:
            recs.append(json.loads(l))
        except ValueError:
            pytest.fail("log line is not JSON: %r" % l)
    assert all({"ts", "level", "component", "msg"} <= set(r) for r in recs), recs[:3]
    assert any(r["level"] == "debug" for r in recs)
    # LWDM_HTTP_THREADS
    assert any(r["component"] == "api" and "threads=3" in r["msg"] for r in recs), \
        [r["msg"] for r in recs if r["component"] == "api"][:5]
    assert srv.stop() == 0


def test_flag_wins_over_environment(procs, tmp_path):
    ports = free_ports()
    env_http = free_port()
    srv = Lwdm(procs, tmp_path, ports=ports, log_level=None,
               env={"LWDM_HTTP": "127.0.0.1:%d" % env_http, "LWDM_LOG_LEVEL": "error",
                    "LWDM_DB": str(tmp_path / "from-env.db")},
               args=["--log-level", "info"]).start()
    assert srv.healthz() == 200
    with pytest.raises(requests.ConnectionError):
        requests.get("http://127.0.0.1:%d/healthz" % env_http, timeout=2)
    assert os.path.exists(srv.db) and not os.path.exists(tmp_path / "from-env.db")
    assert " info " in srv.stderr()          # --log-level info beat LWDM_LOG_LEVEL=error
    assert srv.stop() == 0


# ------------------------------------------------------------------ migrate
def test_migrate_new_database(tmp_path):
    db = str(tmp_path / "m.db")
    r = run([LWDM, "migrate", "--db", db], cwd=tmp_path)
    assert r.returncode == 0, r
    n = migrations_count()
    assert n >= 1
    assert re.search(r"\b%d\b" % n, r.stdout) and "applied" in r.stdout, r.stdout
    assert sqlite_count(db, "schema_migrations") == n
    assert stat.S_IMODE(os.stat(db + ".key").st_mode) == 0o600
    r2 = run([LWDM, "migrate", "--db", db], cwd=tmp_path)
    assert r2.returncode == 0, r2
    assert re.search(r"\b0\b", r2.stdout) and "applied" in r2.stdout, r2.stdout
    assert sqlite_count(db, "schema_migrations") == n
    assert sqlite_integrity(db) == "ok"


def test_secret_key_from_environment_creates_no_key_file(tmp_path):
    db = str(tmp_path / "k.db")
    r = run([LWDM, "migrate", "--db", db], env=clean_env({"LWDM_SECRET_KEY": "ab" * 32}), cwd=tmp_path)
    assert r.returncode == 0, r
    assert os.path.exists(db) and not os.path.exists(db + ".key")


# ------------------------------------------------------------------ first start, key file
def test_generated_password_shown_once(procs, tmp_path):
    srv = Lwdm(procs, tmp_path, admin_password=None, log_level="debug").start()
    out = srv.stdout()
    m = re.search(r"password '([^']+)' \(generated now, shown only once\)", out)
    assert m, out
    pw = m.group(1)
    assert len(pw) >= 12
    assert out.count(pw) == 1
    assert pw not in srv.stderr()
    key_file = srv.db + ".key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    key = open(key_file, "rb").read()
    srv.login(pw)
    assert srv.stop() == 0

    # second start, now even with LWDM_ADMIN_PASSWORD set: no new password, the old one still works
    srv.extra_env["LWDM_ADMIN_PASSWORD"] = "another-Password-123"
    srv.start()
    assert pw not in srv.stdout() and "generated now" not in srv.stdout(), srv.stdout()
    assert pw not in srv.stderr()
    srv.login(pw)
    r = requests.post(srv.url + "/api/v1/auth/token", json={"username": "admin", "password": "another-Password-123"},
                      timeout=10)
    assert r.status_code == 401
    assert open(key_file, "rb").read() == key
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert srv.stop() == 0


def test_banner_and_ready(procs, tmp_path):
    srv = Lwdm(procs, tmp_path, log_level="info").start()
    out = srv.stdout()
    assert "http://127.0.0.1:%d/" % srv.ports["http"] in out
    assert "coap://127.0.0.1:%d" % srv.ports["bs_coap"] in out
    assert "coaps://127.0.0.1:%d" % srv.ports["bs_coaps"] in out
    assert "LWDM_ADMIN_PASSWORD" in out and ADMIN_PASSWORD not in out
    assert re.search(r"event=ready http_port=%d bs_coap_port=%d bs_coaps_port=%d" % (
        srv.ports["http"], srv.ports["bs_coap"], srv.ports["bs_coaps"]), srv.ready_line)
    assert srv.stop() == 0


# ------------------------------------------------------------------ signals
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_cleanly(procs, tmp_path, sig):
    srv = Lwdm(procs, tmp_path, log_level="info").start()
    # a bootstrap session in flight while the signal arrives
    sim = start_sim(procs, tmp_path, sim_args(srv.ports["bs_coap"], 1, "sig-",
                                              extra=["--stall-after", "1", "--timeout", "30"]), "sim-sig")
    wait_until(lambda: "ep=sig-000001 event=request" in srv.stderr(), 10, what="the bootstrap request")
    t0 = time.monotonic()
    rc = srv.stop(sig, timeout=10)
    took = time.monotonic() - t0
    sim.send_signal(signal.SIGTERM)
    wait_sim(sim, timeout=15)
    assert rc == 0, srv.stderr()[-3000:]
    assert took < 5, "took %.1f s to stop" % took
    err = srv.stderr()
    assert "event=stopping" in err and "event=stopped" in err
    assert err.rstrip().splitlines()[-1].endswith("event=stopped"), err[-500:]
    assert sqlite_integrity(srv.db) == "ok"
    # the running session was recorded as failed
    con = sqlite3.connect(srv.db)
    try:
        row = con.execute("SELECT last_bootstrap_status, last_bootstrap_steps FROM devices WHERE endpoint=?",
                          ("sig-000001",)).fetchone()
    finally:
        con.close()
    assert row and row[0] == "failed" and "shutting down" in row[1], row


# ------------------------------------------------------------------ restart
def test_restart_keeps_everything(procs, tmp_path):
    srv = Lwdm(procs, tmp_path, log_level="info").start()
    assert "event=first-run" in srv.stderr()
    created = srv.api("POST", "/lwm2m-servers", {
        "name": "restart test server", "type": "management", "ssid": 42, "uri": "coaps://198.51.100.4",
        "securityMode": "psk", "pskIdentity": "restart-id", "psk": "restart-server-psk", "lifetime": 120,
        "binding": "U"}, expect=201).json()
    dev = srv.create_psk_device("restart-dev-1", "00112233445566778899aabbccddeeff")
    settings = srv.api("GET", "/bootstrap-settings", expect=200).json()
    servers, devices = srv.servers(), srv.devices()
    assert len(servers) == 5 and len(devices) == 1
    assert srv.stop() == 0

    srv.start()
    assert "event=first-run" not in srv.stderr()
    assert srv.servers() == servers
    names = [s["name"] for s in srv.servers()]
    assert len(names) == len(set(names)) == 5
    assert srv.devices() == devices
    assert srv.api("GET", "/devices/%d" % dev["id"], expect=200).json()["bootstrapCredentials"]["pskSet"] is True
    assert srv.api("GET", "/lwm2m-servers/%d" % created["id"], expect=200).json()["pskSet"] is True
    assert srv.api("GET", "/bootstrap-settings", expect=200).json() == settings
    assert srv.stop() == 0


# ------------------------------------------------------------------ backup
def test_backup_while_running(procs, tmp_path):
    srv = Lwdm(procs, tmp_path, log_level="info").start()
    for i in range(5):
        srv.create_psk_device("bk-psk-%d" % i, "%032x" % (i + 1))
    rc, out, err = wait_sim(start_sim(procs, tmp_path, sim_args(srv.ports["bs_coap"], 10, "bk-",
                                                                extra=["--timeout", "20"]), "sim-bk"))
    assert rc == 0, out + err
    # keep bootstrapping while the backup runs
    busy = start_sim(procs, tmp_path, sim_args(srv.ports["bs_coap"], 200, "bk-busy-",
                                               extra=["--concurrency", "4", "--timeout", "20", "--quiet"]), "sim-busy")
    dest = str(tmp_path / "backup" / "copy.db")
    os.mkdir(tmp_path / "backup")
    r = run([LWDM, "backup", dest, "--db", srv.db], cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r
    assert dest in r.stdout
    rc, out, err = wait_sim(busy, timeout=60)
    assert rc == 0, out[-2000:] + err[-2000:]
    assert srv.alive() and srv.healthz() == 200
    assert sqlite_integrity(dest) == "ok"
    n = sqlite_count(dest, "devices")
    # the copy is a consistent snapshot: everything before the backup, at most what is there now
    assert 15 <= n <= srv.device_count(), n
    assert sqlite_count(dest, "lwm2m_servers") == len(srv.servers()) == 4
    assert sqlite_count(dest, "schema_migrations") == migrations_count()

    # quiet server: the copy holds exactly the same device count as the API shows
    dest2 = str(tmp_path / "backup" / "copy2.db")
    r = run([LWDM, "backup", dest2, "--db", srv.db], cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r
    assert sqlite_count(dest2, "devices") == srv.device_count() == 215
    assert srv.stop() == 0

    # the copy (with the key file) serves: an lwdm started on it shows the same devices
    import shutil
    shutil.copy(srv.db + ".key", dest2 + ".key")
    copy = Lwdm(procs, tmp_path / "backup", db=dest2, log_level="info").start()
    assert copy.device_count() == 215
    assert copy.api("GET", "/devices?q=bk-psk-0", expect=200).json()["items"][0]["bootstrapCredentials"]["pskSet"]
    assert copy.stop() == 0


# ------------------------------------------------------------------ secrets
def test_secrets_never_logged(procs, tmp_path):
    server_psk = "e2e-Server-PSK-7c1d9b"
    device_psk = "9a8b7c6d5e4f30211203f4e5d6c7b8a9"
    prov_password = "e2e-Prov-Pass-55x"
    srv = Lwdm(procs, tmp_path, log_level="debug").start()
    token = srv.login()
    extra = srv.api("POST", "/lwm2m-servers", {
        "name": "secret psk server", "type": "management", "ssid": 9, "uri": "coaps://203.0.113.9",
        "securityMode": "psk", "pskIdentity": "secret-id", "psk": server_psk, "lifetime": 300, "binding": "U",
        "configureDeviceOnTargetServer": True,
        "provisionCredentials": {"apiUri": "https://203.0.113.9/api", "user": "u", "password": prov_password}},
        expect=201).json()
    servers = {s["name"]: s["id"] for s in srv.servers()}
    # devices get the fixed-PSK server and the per-device generated PSK server
    srv.api("PUT", "/bootstrap-settings", {
        "bootstrapServerId": None, "acceptUnknownDevices": True,
        "managementServerIds": [servers["lwdm management (PSK)"], extra["id"]]}, expect=200)
    srv.create_psk_device("secret-dev-000001", device_psk)
    report = str(tmp_path / "sim.json")
    r = run(sim_args(srv.ports["bs_coaps"], 1, "secret-dev-", scheme="coaps",
                     extra=["--psk-key", device_psk, "--timeout", "20", "--json", report]), timeout=40)
    assert r.returncode == 0, r.stdout + r.stderr
    # the keys the device received, as the sim reports them (opaque resources in hex)
    sec = json.load(open(report))["devices"][0]["security"]
    bs_account = [k.split("/")[2] for k, v in sec.items() if re.fullmatch(r"/0/\d+/1", k) and v is True]
    keys = [v for k, v in sec.items()
            if re.fullmatch(r"/0/\d+/5", k) and v and k.split("/")[2] not in bs_account]
    assert len(bs_account) == 1 and len(keys) == 2, sec
    received = set()
    for hexkey in keys:
        raw = bytes.fromhex(hexkey)
        received |= {hexkey, hexkey.upper(), base64.b64encode(raw).decode()}
        if raw.isascii() and raw.decode().isprintable():
            received.add(raw.decode())
    assert server_psk in received                # the fixed key arrived...
    generated = received - {server_psk, server_psk.encode().hex(), server_psk.encode().hex().upper(),
                            base64.b64encode(server_psk.encode()).decode()}
    assert generated                             # ...and a generated one
    # exercise more code paths that handle secrets
    srv.api("PATCH", "/devices/%d" % srv.device_by_endpoint("secret-dev-000001")["id"],
            {"bootstrapCredentials": {"securityMode": "psk", "psk": device_psk}}, expect=200)
    srv.api("PATCH", "/lwm2m-servers/%d" % extra["id"], {"psk": server_psk}, expect=200)
    bad = requests.post(srv.url + "/api/v1/auth/token",
                        json={"username": "admin", "password": ADMIN_PASSWORD + "x"}, timeout=10)
    assert bad.status_code == 401
    assert srv.stop() == 0

    logs = srv.all_output()                  # everything the server printed, stdout and stderr (debug)
    secrets = {"admin password": ADMIN_PASSWORD, "wrong admin password": ADMIN_PASSWORD + "x",
               "bearer token": token, "device psk": device_psk, "device psk (upper)": device_psk.upper(),
               "server psk": server_psk, "server psk (hex)": server_psk.encode().hex(),
               "provisioning password": prov_password}
    for i, g in enumerate(sorted(generated)):
        secrets["generated psk %d" % i] = g
    assert "debug" in srv.stderr()
    leaked = [name for name, value in secrets.items() if value in logs]
    assert leaked == [], "secrets in the logs: %s" % leaked

    # and at rest: the database files hold none of them in the clear
    blob = b""
    for suffix in ("", "-wal", "-journal"):
        if os.path.exists(srv.db + suffix):
            blob += open(srv.db + suffix, "rb").read()
    at_rest = [name for name, value in secrets.items()
               if name not in ("bearer token", "wrong admin password") and value.encode() in blob]
    assert bytes.fromhex(device_psk) not in blob
    assert at_rest == [], "secrets stored in the clear: %s" % at_rest
