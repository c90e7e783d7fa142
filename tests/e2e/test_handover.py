"""Handing a device over to another server (issue 4 item 8, docs/management.md).

Two lwdm processes: A bootstraps, B manages. A's LwM2M server entry points at
B's DTLS port with a per-device generated PSK, "configure device on target
server" and "provision credentials" (B's API URI, user, password). A simulated
device bootstraps on A over plain CoAP, receives B's account with its own key,
and registers to B over DTLS-PSK: B created the device with exactly that
identity and key through its REST API during the bootstrap.
"""
import pytest

from lwdm_e2e import (ADMIN_PASSWORD, LWDM_SIM, Lwdm, ProcessGroup, require_binaries, start_sim, wait_until)


@pytest.fixture
def two(tmp_path):
    require_binaries(LWDM_SIM)
    group = ProcessGroup()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = Lwdm(group, tmp_path / "a", args=["--accept-unknown", "on"], log_level="debug")
    b = Lwdm(group, tmp_path / "b", log_level="debug")
    try:
        b.start()
        a.start()
        yield a, b, group, tmp_path
    finally:
        group.stop_all()


def test_device_bootstrapped_by_one_registers_to_the_other(two):
    a, b, group, tmp = two
    target = a.api("POST", "/lwm2m-servers", {
        "name": "lwdm B (PSK)", "type": "management", "ssid": 77,
        "uri": "coaps://127.0.0.1:%d" % b.ports["coaps"], "lifetime": 120,
        "securityMode": "psk", "pskIdentity": "${device.endpoint}-at-b", "psk": "${string.secureRandom(16)}",
        "configureDeviceOnTargetServer": True,
        "provisionCredentials": {"apiUri": "%s/api/v1" % b.url, "user": "admin", "password": ADMIN_PASSWORD},
    }, expect=201).json()
    a.api("PUT", "/bootstrap-settings", {"bootstrapServerId": None, "managementServerIds": [target["id"]]},
          expect=200)

    sim = start_sim(group, tmp, [LWDM_SIM, "bootstrap", "--register", "--server",
                                 "coap://127.0.0.1:%d" % a.ports["bs_coap"], "--count", "1", "--prefix", "handover-",
                                 "--duration", "30", "--version", "1.1"], "sim")
    # B learns the device from A (provisioning) and then sees it register over DTLS
    dev_b = wait_until(lambda: b.device_by_endpoint("handover-000001"), 20, what="device created on B by A")
    assert dev_b["managementCredentials"]["securityMode"] == "psk"
    assert dev_b["managementCredentials"]["pskIdentity"] == "handover-000001-at-b"
    reg = wait_until(lambda: b.api("GET", "/devices/%d/registration" % dev_b["id"]).json()
                     if b.api("GET", "/devices/%d/registration" % dev_b["id"]).status_code == 200 else None,
                     30, what="registration on B")
    assert reg["secure"] is True and reg["endpoint"] == "handover-000001", reg
    # A never saw a registration: it only bootstrapped the device
    dev_a = a.device_by_endpoint("handover-000001")
    assert dev_a is not None and a.api("GET", "/devices/%d/registration" % dev_a["id"]).status_code == 404
    # the key A generated for B is the one B holds (B's handshake succeeded with it) and the
    # provisioning is logged and published on A
    assert "event=provisioned" in a.stderr()
    ev = a.api("GET", "/events?format=json&since=0&type=provisioning").json()["items"]
    assert ev and ev[0]["data"]["ok"] is True, ev
    # B manages it: a REST read through B reaches the device over DTLS
    r = b.api("GET", "/devices/%d/data/3/0/0" % dev_b["id"], timeout=20)
    assert r.status_code == 200 and isinstance(r.json()["value"], str), r.text
    sim.terminate()
