"""Bootstrap end to end with the real binaries: lwdm serve + lwdm-sim.

1. 20 NoSec devices across LwM2M versions and content formats and 5 DTLS-PSK
   devices (created through the REST API first) bootstrap; the sim's exit codes
   and summaries say so, and the REST API shows every device with a successful
   last bootstrap written in the format the client asked for.
2. lwdm is killed with SIGKILL in the middle of a 50-device run; after a
   restart on the same database nothing that was committed is lost, and new
   bootstraps work.
"""
import re
import signal
import time

import pytest

from lwdm_e2e import (Lwdm, wait_bootstrapped, parse_summary, procs, require_binaries, sim_args, sim_results,  # noqa: F401
                      sqlite_integrity, start_sim, wait_sim, wait_until, _read)

KEY = "3f1c9a7be2d04c5a8e6f0b1d2c3e4f50"   # PSK of the DTLS devices (hex)

# (version, format, prefix): 4 devices each, 20 in all
NOSEC_RUNS = [
    ("1.0", "tlv", "n10tlv-"),
    ("1.1", "tlv", "n11tlv-"),
    ("1.1", "senml-json", "n11sj-"),
    ("1.2", "senml-cbor", "n12sc-"),
    ("1.2", "senml-json", "n12sj-"),
]
# the format the Bootstrap-Writes must use (docs/bootstrap.md "Content format of the writes")
EXPECTED_FORMAT = {"tlv": "TLV", "senml-json": "SenML JSON", "senml-cbor": "SenML CBOR"}


def endpoints(prefix, count, first=1):
    return ["%s%06d" % (prefix, i) for i in range(first, first + count)]


@pytest.fixture(autouse=True)
def _binaries():
    require_binaries()


def check_sim(rc, out, err, expect_eps, mgmt_uri=None):
    ok, failed = parse_summary(out)
    results = sim_results(out)
    assert (rc, ok, failed) == (0, len(expect_eps), 0), "lwdm-sim: rc=%s\n%s\n%s" % (rc, out[-3000:], err[-2000:])
    assert sorted(results) == sorted(expect_eps), out[-3000:]
    assert set(results.values()) == {"ok"}, out[-3000:]
    if mgmt_uri:
        # every device got exactly the management NoSec server of the bootstrap settings
        for line in out.splitlines():
            if line.startswith("ep="):
                assert "servers=1 " in line and (" %s nosec ssid=1]" % mgmt_uri) in line, line


def test_bootstrap_nosec_versions_formats_and_psk(procs, tmp_path):
    srv = Lwdm(procs, tmp_path, log_level="info").start()
    mgmt = [s for s in srv.servers() if s["name"] == "lwdm management (NoSec)"]
    assert len(mgmt) == 1, srv.servers()
    mgmt_uri = mgmt[0]["uri"]

    psk_eps = endpoints("psk-", 5)
    for ep in psk_eps:
        srv.create_psk_device(ep, KEY)
    assert srv.device_count() == 5

    sims = []
    for version, fmt, prefix in NOSEC_RUNS:
        args = sim_args(srv.ports["bs_coap"], 4, prefix,
                        extra=["--version", version, "--format", fmt, "--timeout", "20"])
        sims.append((start_sim(procs, tmp_path, args, "sim-" + prefix.rstrip("-")), endpoints(prefix, 4)))
    args = sim_args(srv.ports["bs_coaps"], 5, "psk-", scheme="coaps",
                    extra=["--psk-key", KEY, "--version", "1.1", "--format", "senml-cbor", "--timeout", "20"])
    sims.append((start_sim(procs, tmp_path, args, "sim-psk"), psk_eps))

    for p, eps in sims:
        rc, out, err = wait_sim(p, timeout=60)
        check_sim(rc, out, err, eps, mgmt_uri)

    devices = wait_bootstrapped(srv, [ep for _, eps in sims for ep in eps])
    all_eps = psk_eps + [ep for _, _, prefix in NOSEC_RUNS for ep in endpoints(prefix, 4)]
    assert sorted(devices) == sorted(all_eps)
    for ep in all_eps:
        d = devices[ep]
        lb = d["lastBootstrap"]
        assert lb and lb["status"] == "success", (ep, lb)
        assert d["lastBootstrapAt"], ep
        ops = [s["op"] for s in lb["steps"]]
        assert ops[0] == "request" and ops[-1] == "finish", (ep, ops)
        assert "write" in ops, (ep, ops)
        assert all(s["code"].startswith("2.") for s in lb["steps"]), (ep, lb["steps"])
        # devices that came over plain CoAP were created by the bootstrap; PSK ones by the API
        assert d["autoCreated"] == (not ep.startswith("psk-")), d
    for version, fmt, prefix in NOSEC_RUNS:
        want = "TLV" if version == "1.0" else EXPECTED_FORMAT[fmt]
        for ep in endpoints(prefix, 4):
            formats = {s.get("format") for s in devices[ep]["lastBootstrap"]["steps"] if s["op"] == "write"}
            assert formats == {want}, (ep, devices[ep]["lastBootstrap"]["steps"])
    for ep in psk_eps:
        req = devices[ep]["lastBootstrap"]["steps"][0]
        assert req["path"].startswith("/bs"), req
        assert devices[ep]["bootstrapCredentials"] == {"securityMode": "psk", "pskIdentity": ep, "pskSet": True}

    # the log names every device that bootstrapped
    log = srv.stderr()
    for ep in all_eps:
        assert re.search(r"ep=%s\b.*event=finished result=success" % re.escape(ep), log), ep
    assert srv.stop() == 0


def _snapshot(srv):
    return {"servers": srv.servers(),
            "settings": srv.api("GET", "/bootstrap-settings", expect=200).json(),
            "devices": {d["endpoint"]: d for d in srv.devices()}}


def _ok_lines(path):
    return len(re.findall(r"^ep=\S+ result=ok", _read(path), re.M))


def test_kill9_mid_bootstrap_loses_nothing(procs, tmp_path):
    srv = Lwdm(procs, tmp_path, log_level="info").start()

    # --- committed state before the crash
    extra = srv.api("POST", "/lwm2m-servers", {
        "name": "e2e extra management", "type": "management", "ssid": 7, "uri": "coap://192.0.2.7:5683",
        "securityMode": "nosec", "lifetime": 600, "binding": "UQ"}, expect=201).json()
    settings = srv.api("GET", "/bootstrap-settings", expect=200).json()
    settings = srv.api("PUT", "/bootstrap-settings", {
        "bootstrapServerId": None,
        "managementServerIds": settings["managementServerIds"] + [extra["id"]],
        "acceptUnknownDevices": True}, expect=200).json()
    run2_eps = endpoints("run2-", 50)
    for ep in run2_eps:
        srv.create_psk_device(ep, KEY)
    rc, out, err = wait_sim(start_sim(procs, tmp_path, sim_args(srv.ports["bs_coap"], 10, "pre-",
                                                                extra=["--timeout", "20"]), "sim-pre"))
    check_sim(rc, out, err, endpoints("pre-", 10))
    wait_bootstrapped(srv, endpoints("pre-", 10))
    before = _snapshot(srv)
    assert len(before["servers"]) == 5
    assert all(before["devices"][ep]["lastBootstrap"]["status"] == "success" for ep in endpoints("pre-", 10))

    # --- second run: 3 devices that stall mid-session (the server keeps them in flight)
    # and 50 DTLS-PSK devices one at a time; SIGKILL once at least 10 finished
    stall = start_sim(procs, tmp_path, sim_args(srv.ports["bs_coap"], 3, "stall-",
                                                extra=["--stall-after", "2", "--timeout", "60"]), "sim-stall")
    wait_stalled = time.monotonic() + 10
    while time.monotonic() < wait_stalled and "stall-000003 event=request" not in srv.stderr():
        time.sleep(0.02)
    run = start_sim(procs, tmp_path, sim_args(srv.ports["bs_coaps"], 50, "run2-", scheme="coaps",
                                              extra=["--psk-key", KEY, "--concurrency", "1", "--timeout", "10"]),
                    "sim-run2")
    committed = None
    deadline = time.monotonic() + 30
    while True:
        # every answer of the REST API shows committed state: the last one before
        # the kill is a lower bound of what must survive
        committed = {d["endpoint"]: d for d in srv.devices()}
        if _ok_lines(run.lwdm_out) >= 10 or run.poll() is not None or time.monotonic() > deadline:
            break
    # the devices the sim counted are written at the end of the server's loop pass: one
    # more look (a bootstrap takes a few ms, so a listing may predate all ten of them)
    committed = {d["endpoint"]: d for d in srv.devices()}
    srv.kill9()
    assert srv.proc.returncode == -signal.SIGKILL
    for p in (run, stall):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    rc_run, out_run, err_run = wait_sim(run, timeout=20)
    wait_sim(stall, timeout=20)
    ok_run, _ = parse_summary(out_run)
    assert 10 <= ok_run < 50 and rc_run != 0, \
        "the kill did not land in the middle of the run (%d of 50 done):\n%s" % (ok_run, out_run[-2000:])
    done_before_kill = [ep for ep in run2_eps if committed[ep]["lastBootstrap"]
                        and committed[ep]["lastBootstrap"]["status"] == "success"]
    print("second run: %d ok in the sim, %d committed before the kill" % (ok_run, len(done_before_kill)))
    assert done_before_kill, "no device of the second run was committed before the kill"
    assert sqlite_integrity(srv.db) == "ok"

    # --- restart on the same database
    srv.start()
    after = _snapshot(srv)
    # every server entry (no duplicated seeds) and the bootstrap settings, unchanged
    assert after["servers"] == before["servers"]
    assert after["settings"] == before["settings"] == settings
    # every device seen before the kill is still there, with its success record if it had one
    for ep, d in committed.items():
        assert ep in after["devices"], "device %s lost" % ep
        a = after["devices"][ep]
        assert a["id"] == d["id"] and a["createdAt"] == d["createdAt"], (d, a)
        if d["lastBootstrap"] and d["lastBootstrap"]["status"] == "success":
            assert a["lastBootstrap"] == d["lastBootstrap"], ep
            assert a["lastBootstrapAt"] == d["lastBootstrapAt"], ep
    for ep, d in before["devices"].items():
        assert ep in after["devices"], "device %s lost" % ep
        if d["lastBootstrap"]:      # bootstrapped before the second run: untouched since
            assert after["devices"][ep]["lastBootstrap"] == d["lastBootstrap"], ep
    for ep in endpoints("stall-", 3):
        st = after["devices"][ep]["lastBootstrap"]
        assert not st or st["status"] != "success", (ep, st)
    assert "event=first-run" not in srv.stderr()

    # --- new bootstraps work: fresh devices, the interrupted run again, the stalled ones
    mgmt_uri = [s["uri"] for s in after["servers"] if s["name"] == "lwdm management (NoSec)"][0]
    jobs = [
        (start_sim(procs, tmp_path, sim_args(srv.ports["bs_coap"], 5, "post-", extra=["--timeout", "20"]),
                   "sim-post"), endpoints("post-", 5)),
        (start_sim(procs, tmp_path, sim_args(srv.ports["bs_coaps"], 50, "run2-", scheme="coaps",
                                             extra=["--psk-key", KEY, "--timeout", "20"]), "sim-run2b"), run2_eps),
        (start_sim(procs, tmp_path, sim_args(srv.ports["bs_coap"], 3, "stall-", extra=["--timeout", "20"]),
                   "sim-stall-b"), endpoints("stall-", 3)),
    ]
    for p, eps in jobs:
        rc, out, err = wait_sim(p, timeout=60)
        check_sim(rc, out, err, eps)
        for line in out.splitlines():
            if line.startswith("ep="):
                # both management servers of the settings, the seeded one and the extra one
                assert "servers=2 " in line and mgmt_uri in line and "coap://192.0.2.7:5683" in line, line
    # the sim counts a device done when it has answered Finish; the server writes the
    # record at the end of that loop pass: poll (bounded)
    want = run2_eps + endpoints("post-", 5) + endpoints("stall-", 3)
    deadline = time.monotonic() + 20
    while True:
        final = {d["endpoint"]: d for d in srv.devices()}
        missing = [ep for ep in want if not (final[ep]["lastBootstrap"] or {}).get("status") == "success"]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not missing, [(ep, final[ep]["lastBootstrap"]) for ep in missing]
    assert len(final) == 10 + 50 + 3 + 5
    assert srv.stop() == 0


def _registration(srv, ep, timeout=20):
    """The device's registration once it has one."""
    def reg():
        d = srv.device_by_endpoint(ep)
        if not d:
            return None
        r = srv.api("GET", "/devices/%d/registration" % d["id"])
        return r.status_code == 200 and (d["id"], r.json())
    return wait_until(reg, timeout, interval=0.1, what="registration of %s" % ep)


def test_bootstrap_and_register_over_tcp(procs, tmp_path):
    """A management server entry with transport tcp: devices bootstrapping over CoAP over
    TCP (NoSec, bootstrap port) and over TLS-PSK (bootstrap coaps port) get a
    coap+tcp:// account with binding T and end up registered over TCP, managed there."""
    srv = Lwdm(procs, tmp_path, args=["--accept-unknown", "on"], log_level="info").start()
    tcp_uri = "coap+tcp://127.0.0.1:%d" % srv.ports["coap"]
    entry = srv.api("POST", "/lwm2m-servers", {
        "name": "e2e management over TCP", "type": "management", "transport": "tcp", "ssid": 21,
        "uri": tcp_uri, "securityMode": "nosec", "lifetime": 120}, expect=201).json()
    assert entry["transport"] == "tcp" and entry["uri"] == tcp_uri, entry
    srv.api("PUT", "/bootstrap-settings", {"bootstrapServerId": None, "managementServerIds": [entry["id"]],
                                           "acceptUnknownDevices": True}, expect=200)
    tls_eps = endpoints("bstls-", 2)
    for ep in tls_eps:
        srv.create_psk_device(ep, KEY)
    sims = [
        (start_sim(procs, tmp_path, sim_args(srv.ports["bs_coap"], 2, "bstcp-", scheme="coap+tcp",
                                             extra=["--register", "--duration", "60", "--timeout", "20"]),
                   "sim-bstcp"), endpoints("bstcp-", 2)),
        (start_sim(procs, tmp_path, sim_args(srv.ports["bs_coaps"], 2, "bstls-", scheme="coaps+tcp",
                                             extra=["--register", "--psk-key", KEY, "--duration", "60",
                                                    "--timeout", "20"]),
                   "sim-bstls"), tls_eps),
    ]
    for p, eps in sims:
        for ep in eps:
            did, reg = _registration(srv, ep)
            assert reg["transport"] == "tcp" and reg["binding"] == "T" and reg["secure"] is False, reg
            r = srv.api("GET", "/devices/%d/data/3/0/2?timeout=5" % did, timeout=20)
            assert r.status_code == 200 and r.json()["value"] == ep, r.text
    devices = wait_bootstrapped(srv, [ep for _, eps in sims for ep in eps])
    for ep in tls_eps:
        assert devices[ep]["autoCreated"] is False
    log = srv.stderr()
    for _, eps in sims:
        for ep in eps:
            assert re.search(r"ep=%s .*event=registered .*b=T .*proto=tcp" % re.escape(ep), log), ep
    for ep in tls_eps:
        assert re.search(r"ep=%s event=request pct=\d+ secure=1" % re.escape(ep), log), ep
    for p, eps in sims:
        p.send_signal(signal.SIGTERM)
        rc, out, err = wait_sim(p, timeout=20)
        assert rc == 0 and "summary: 2 registered, 0 failed" in out, out + err[-2000:]
        for ep in eps:
            assert re.search(r"^ep=%s state=registered .* server=%s$" % (re.escape(ep), re.escape(tcp_uri)), out,
                             re.M), out
    assert srv.stop() == 0


def test_bootstrap_over_tcp_refused_when_tcp_off(procs, tmp_path):
    srv = Lwdm(procs, tmp_path, args=["--accept-unknown", "on", "--tcp", "off"], log_level="info").start()
    rc, out, err = wait_sim(start_sim(procs, tmp_path, sim_args(srv.ports["bs_coap"], 1, "bsoff-", scheme="coap+tcp",
                                                                extra=["--timeout", "3"]), "sim-bsoff"), timeout=30)
    ok, failed = parse_summary(out)
    assert (rc, ok, failed) == (1, 0, 1), out + err[-2000:]
    assert srv.device_by_endpoint("bsoff-000001") is None
    assert srv.stop() == 0
