"""The management side of a real lwdm, from the outside: the registration interface
(/rd on the management CoAP port) and the REST device operations (docs/management.md,
shared/CONFORMANCE.md §2-§4).

The device is a FakeDevice (lwdm_e2e.py): a UDP socket that registers with raw CoAP and
answers lwdm's requests from canned replies in a background thread, so that every test
sees exactly what lwdm put on the wire. Every wait is bounded; one lwdm serves most tests
(--accept-unknown on, --queue-awake 1000), a few start their own.
"""
import itertools
import json
import os
import random
import re
import signal
import socket
import threading
import time

import pytest
import requests

from lwdm_e2e import (ACK, CF_LINK, CF_SENML_JSON, CF_TEXT, CF_TLV, CON, DELETE, GET, LWDM, LWDM_SIM, OPT_ACCEPT,
                      OPT_CONTENT_FORMAT, OPT_LOCATION_PATH, OPT_OBSERVE, POST, PUT, RST, CoapClient, FakeDevice,
                      Lwdm, ProcessGroup, Reply, bootstrap_status, encode, opt_uint, procs, request,
                      require_binaries, start_sim, wait_events, wait_sim, wait_until)  # noqa: F401 (procs is a fixture)

FETCH = 5
_seq = itertools.count(1)


def new_ep(tag):
    return "mt-%s-%d-%d" % (tag, os.getpid() % 10000, next(_seq))


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    require_binaries(LWDM)
    group = ProcessGroup()
    s = Lwdm(group, tmp_path_factory.mktemp("mgmt"), args=["--accept-unknown", "on", "--queue-awake", "1000"],
             log_level="debug")
    try:
        s.start()
        s.login()
        yield s
        assert s.alive(), "lwdm died:\n" + s.stderr()[-3000:]
        assert s.stop() == 0, s.stderr()[-3000:]
    finally:
        group.stop_all()


@pytest.fixture
def mkdev(srv):
    made = []

    def make(tag="dev", srv_=None, **kw):
        d = FakeDevice((srv_ or srv).ports["coap"], new_ep(tag), **kw)
        made.append(d)
        return d
    yield make
    for d in made:
        d.close()


def device_id(srv, ep, timeout=2.0):
    """The id of device `ep`. lwdm commits what a Register created at the end of the
    loop pass, just after the 2.01 left: poll briefly."""
    d = wait_until(lambda: srv.device_by_endpoint(ep), timeout, interval=0.02, what="device %s" % ep)
    return d["id"]


def register(srv, dev, **kw):
    """Registers and returns the device id, once the registration is visible."""
    r = dev.register(**kw)
    assert r is not None and r.code_str == "2.01", r
    did = device_id(srv, dev.ep)
    wait_until(lambda: srv.api("GET", "/devices/%d/registration" % did).json().get("location") == "/" + dev.location,
               2, interval=0.02, what="registration of %s" % dev.ep)
    return did


def registration(srv, did, expect=200):
    r = srv.api("GET", "/devices/%d/registration" % did, expect=expect)
    return r.json()


def registration_gone(srv, did, timeout=2.0):
    """Waits until GET /registration answers 404 (problem+json). A De-register deletes
    the row in the loop pass's transaction, committed just after the 2.02 left: a GET
    right after the device saw its answer may still find the registration."""
    last = {}

    def check():
        r = srv.api("GET", "/devices/%d/registration" % did)
        last["r"] = r
        return r.status_code == 404
    try:
        wait_until(check, timeout, interval=0.02, what="registration of device %d gone" % did)
    except AssertionError:
        r = last.get("r")
        raise AssertionError("registration still there after %.1f s: %s %s"
                             % (timeout, r.status_code if r is not None else "-", r.text[:2000] if r is not None else ""))
    return problem(last["r"], 404)


def registration_until(srv, did, pred, timeout=2.0):
    """The registration once pred(it) holds: lwdm writes the row at the end of the loop
    pass, just after the CoAP answer left, so a GET right after may still see the old one."""
    last = {}

    def check():
        r = srv.api("GET", "/devices/%d/registration" % did)
        last["r"] = r.json() if r.status_code == 200 else r.status_code
        return r.status_code == 200 and pred(last["r"]) and last["r"]
    try:
        return wait_until(check, timeout, interval=0.02, what="registration condition")
    except AssertionError:
        raise AssertionError("registration never matched; last: %s" % last.get("r"))


def op(srv, method, did, sub, body=None, query="", timeout_s=3, expect=None, http_timeout=None):
    """A REST device operation: /devices/{id}/data{sub} (or /devices/{id}{sub} when sub
    does not start with /data)."""
    sep = "&" if "?" in (sub + query) else "?"
    path = "/devices/%d%s%s%stimeout=%d" % (did, sub, query, sep, timeout_s)
    return srv.api(method, path, body, timeout=http_timeout or timeout_s + 10, expect=expect)


def problem(r, status):
    assert r.status_code == status, "%s %s -> %s %s" % (r.request.method, r.request.url, r.status_code, r.text)
    assert r.headers.get("Content-Type", "").startswith("application/problem+json"), r.headers
    return r.json()


def senml(*records):
    return json.dumps(list(records)).encode()


def senml_values(payload):
    """{full name: value} of a SenML JSON pack (bn inherited)."""
    out, bn = {}, ""
    for rec in json.loads(payload.decode()):
        bn = rec.get("bn", bn)
        name = bn + rec.get("n", "")
        for k in ("v", "vs", "vb", "vd", "vlo"):
            if k in rec:
                out[name] = rec[k]
    return out


def records_by_path(body):
    return {r["path"]: r for r in body["records"]}


def assert_nothing_sent(dev, mark, wait=0.3):
    time.sleep(wait)
    got = dev.requests_since(mark)
    assert not got, "lwdm sent %s" % [(m.code, m.path) for m in got]


def assert_logged(s, pattern, timeout=5):
    wait_until(lambda: re.search(pattern, s.stderr()), timeout, what="log line /%s/" % pattern)


def uint_bytes(v):
    return v.to_bytes((v.bit_length() + 7) // 8, "big") if v else b""


OPT_BLOCK2, OPT_BLOCK1, OPT_SIZE1 = 23, 27, 60


def tlv_res(rid, value):
    """One TLV resource (id < 256, value < 8 bytes)."""
    assert len(value) < 8
    return bytes([0xC0 | len(value), rid]) + value


# ================================================================ 1. Register
def test_register_location_path_is_two_options(srv, mkdev):
    dev = mkdev("loc")
    r = dev.register(lt=60)
    assert r is not None and r.type == ACK and r.code_str == "2.01", r
    loc = r.option(OPT_LOCATION_PATH)
    assert len(loc) == 2 and loc[0] == b"rd" and re.fullmatch(rb"[0-9A-Za-z_-]+", loc[1]), loc
    did = device_id(srv, dev.ep)
    assert registration(srv, did)["location"] == "/rd/" + loc[1].decode()
    assert_logged(srv, r"ep=%s\b.*event=registered" % re.escape(dev.ep))


def test_register_query_in_any_order(srv, mkdev):
    dev = mkdev("order")
    d = request(POST, "rd", ["b=U", "lt=120", "lwm2m=1.1", "ep=" + dev.ep, "xfoo=bar"],
                content_format=CF_LINK, payload=dev.links.encode())
    r = dev.exchange(d)
    assert r is not None and r.code_str == "2.01", r
    g = registration(srv, device_id(srv, dev.ep))
    assert (g["lifetime"], g["lwm2mVersion"], g["binding"], g["queueMode"]) == (120, "1.1", "U", False), g


def test_register_defaults(srv, mkdev):
    """lt absent -> 86400, lwm2m absent -> 1.0, b absent -> U."""
    dev = mkdev("defaults", links="</1/0>,</3/0>")
    did = register(srv, dev, lt=None, lwm2m=None, b=None)
    g = registration(srv, did)
    assert g["lifetime"] == 86400 and g["lwm2mVersion"] == "1.0" and g["binding"] == "U", g
    assert g["queueMode"] is False


REFUSED = [
    # id, register_datagram kwargs, expected code, reason part
    ("lwm2m-1.3", dict(lwm2m="1.3"), "4.12"),
    ("lwm2m-2.0", dict(lwm2m="2.0"), "4.12"),
    ("lt-empty", dict(lt=""), "4.00"),
    ("lt-zero", dict(lt=0), "4.00"),
    ("lt-negative", dict(lt=-5), "4.00"),
    ("lt-not-a-number", dict(lt="abc"), "4.00"),
    ("lt-absurd", dict(lt=10 ** 15), "4.00"),
    ("no-ep", dict(ep=False), "4.00"),
    ("empty-payload", dict(links=b""), "4.00"),
    ("unparsable-links", dict(links=b"this is <<< not a link"), "4.00"),
    ("root-link-only", dict(links=b'</>;rt="oma.lwm2m";ct=110'), "4.00"),
    ("bad-binding", dict(b="X"), "4.00"),
]


@pytest.mark.parametrize("name,kw,want", REFUSED, ids=[c[0] for c in REFUSED])
def test_register_refused(srv, mkdev, name, kw, want):
    dev = mkdev("ref")
    count = srv.device_count()
    r = dev.exchange(dev.register_datagram(**kw))
    assert r is not None and r.type == ACK and r.code_str == want, r
    assert not r.option(OPT_LOCATION_PATH)
    who = dev.ep if kw.get("ep", True) else "-"
    assert_logged(srv, r"ep=%s .*refused.*code=%s" % (re.escape(who), re.escape(want)))
    # stores nothing: no device created (accept-unknown is on), no registration
    assert srv.device_count() == count
    assert srv.device_by_endpoint(dev.ep) is None


def test_refused_register_keeps_existing_registration(srv, mkdev):
    dev = mkdev("keep")
    did = register(srv, dev, lt=300)
    before = registration(srv, did)
    for kw, want in ((dict(lwm2m="1.3"), "4.12"), (dict(lt=""), "4.00"), (dict(links=b""), "4.00"),
                     (dict(b="X"), "4.00")):
        r = dev.exchange(dev.register_datagram(**kw))
        assert r is not None and r.code_str == want, (kw, r)
    assert registration(srv, did) == before
    assert dev.update().code_str == "2.04"       # the old location still works


def test_register_unknown_endpoint_refused_without_accept_unknown(procs, tmp_path):
    require_binaries(LWDM)
    s = Lwdm(procs, tmp_path, args=["--accept-unknown", "off"], log_level="info").start()
    stranger = FakeDevice(s.ports["coap"], new_ep("stranger"))
    known = FakeDevice(s.ports["coap"], new_ep("known"))
    secured = FakeDevice(s.ports["coap"], new_ep("dtls-only"))
    try:
        r = stranger.register()
        assert r is not None and r.code_str == "4.03", r
        assert_logged(s, r"ep=%s .*refused.*code=4\.03" % re.escape(stranger.ep))
        assert s.device_count() == 0
        # a device added through the API registers over plain CoAP
        s.api("POST", "/devices", {"endpoint": known.ep}, expect=201)
        r = known.register()
        assert r is not None and r.code_str == "2.01", r
        # the device row exists already (device_id returns at once); the registration row
        # is written at the end of the loop pass, just after the 2.01 left
        registration_until(s, device_id(s, known.ep), lambda g: g["endpoint"] == known.ep)
        # ... but not one with management PSK credentials (DTLS only)
        s.api("POST", "/devices", {"endpoint": secured.ep, "managementCredentials": {
            "securityMode": "psk", "pskIdentity": "id-" + secured.ep, "psk": "00112233445566778899aabbccddeeff"}},
            expect=201)
        r = secured.register()
        assert r is not None and r.code_str == "4.03", r
        registration(s, device_id(s, secured.ep), expect=404)
        assert s.device_count() == 2
    finally:
        for d in (stranger, known, secured):
            d.close()
    assert s.stop() == 0


def test_register_retransmission_same_answer_one_registration(srv, mkdev):
    dev = mkdev("dup")
    count = srv.device_count()
    d = dev.register_datagram(lt=300)
    r1 = dev.exchange(d)
    assert r1 is not None and r1.code_str == "2.01", r1
    did = device_id(srv, dev.ep)
    g1 = registration(srv, did)
    time.sleep(0.05)
    r2 = dev.exchange(d)                       # the same datagram: same MID, same socket
    assert r2 is not None and r2.code_str == "2.01" and r2.mid == r1.mid, r2
    assert r2.option(OPT_LOCATION_PATH) == r1.option(OPT_LOCATION_PATH)
    assert srv.device_count() == count + 1
    time.sleep(0.1)
    assert registration(srv, did) == g1        # not registered again
    evs = wait_events(srv, did, ["registration"], timeout=2)
    assert [e["type"] for e in evs].count("registration") == 1, evs
    dev.location = "/".join(v.decode() for v in r1.option(OPT_LOCATION_PATH))
    assert dev.update().code_str == "2.04"


def test_deregister_retransmission_same_answer(srv, mkdev):
    """A De-register whose ACK was lost comes again with the same MID: the stored 2.02
    is replayed (CONFORMANCE.md §4 Duplicates), not a 4.04."""
    dev = mkdev("dupdel")
    register(srv, dev, lt=300)
    d = request(DELETE, dev.location, mid=dev.next_mid())
    r1 = dev.exchange(d)
    assert r1 is not None and r1.code_str == "2.02", r1
    r2 = dev.exchange(d)
    assert r2 is not None and r2.mid == r1.mid and r2.code_str == "2.02", r2


def test_update_retransmission_same_answer(srv, mkdev):
    dev = mkdev("dupupd")
    register(srv, dev, lt=300)
    d = request(POST, dev.location, ["lt=400"], mid=dev.next_mid())
    r1 = dev.exchange(d)
    r2 = dev.exchange(d)
    assert r1.code_str == r2.code_str == "2.04" and r1.mid == r2.mid, (r1, r2)


def test_register_again_from_other_socket_replaces(srv, mkdev):
    dev = mkdev("again")
    did = register(srv, dev, lt=300)
    old = dev.location
    old_port = dev.local_port
    dev.new_socket()
    did2 = register(srv, dev, lt=600)
    assert did2 == did
    g = registration_until(srv, did, lambda g: g["lifetime"] == 600)
    assert g["location"] == "/" + dev.location and g["lifetime"] == 600, g
    assert g["address"] == "127.0.0.1:%d" % dev.local_port and dev.local_port != old_port
    if dev.location != old:
        r = dev.update(location=old)
        assert r is not None and r.code_str == "4.04", r
    assert dev.update().code_str == "2.04"
    evs = wait_events(srv, did, ["registration"], timeout=2)
    assert [e["type"] for e in evs].count("registration") == 2, evs


def test_register_unknown_critical_option(srv, mkdev):
    dev = mkdev("crit")
    d = request(POST, "rd", ["ep=" + dev.ep], content_format=CF_LINK, payload=dev.links.encode(),
                extra_options=[(9, b"x")])
    r = dev.exchange(d)
    assert r is not None and r.code_str == "4.02", r
    assert srv.device_by_endpoint(dev.ep) is None


@pytest.mark.parametrize("size1", [
    pytest.param(True, id="with-size1"),
    # (libcoap 4.3.1's block mode does not reassemble this one: each block is parsed alone;
    # lwdm's own UDP endpoint, the default, does)
    pytest.param(False, id="without-size1"),
])
def test_register_block1(srv, mkdev, size1):
    """A Register whose link payload comes in 64-byte Block1 blocks (Size1 is optional,
    RFC 7959 §4): 2.31 per block, then 2.01."""
    links = '</>;rt="oma.lwm2m";ct=110,' + ",".join("</%d/0>" % o for o in (1, 3, 4, 5, 6, 7, 10, 11, 12, 13,
                                                                             14, 15, 16, 17, 18, 19, 20))
    dev = mkdev("block1", links=links)
    body = links.encode()
    chunks = [body[i:i + 64] for i in range(0, len(body), 64)]
    assert len(chunks) >= 3
    token = os.urandom(4)
    q = ["ep=" + dev.ep, "lt=300", "lwm2m=1.1"]
    for i, chunk in enumerate(chunks):
        more = i < len(chunks) - 1
        opts = [(OPT_BLOCK1, uint_bytes((i << 4) | (more << 3) | 2))]
        if size1 and i == 0:
            opts.append((OPT_SIZE1, uint_bytes(len(body))))
        d = request(POST, "rd", q, token=token, mid=dev.next_mid(), content_format=CF_LINK, payload=chunk,
                    extra_options=opts)
        r = dev.exchange(d)
        assert r is not None, "no answer to block %d" % i
        if more:
            assert r.code_str == "2.31", (i, r)
        else:
            assert r.code_str == "2.01", (i, r)
            dev.location = "/".join(v.decode() for v in r.option(OPT_LOCATION_PATH))
    did = device_id(srv, dev.ep)
    assert registration(srv, did)["objectLinks"] == links


def test_update_refused_keeps_registration(srv, mkdev):
    dev = mkdev("updbad")
    did = register(srv, dev, lt=300)
    before = registration(srv, did)
    for query, payload in ((["lt=0"], b""), (["lt="], b""), (["lt=abc"], b""), (["b=X"], b""),
                           ([], b"this is <<< not a link")):
        r = dev.update(query, payload=payload)
        assert r is not None and r.code_str == "4.00", (query, payload, r)
    assert registration(srv, did) == before
    assert_logged(srv, r"ep=%s .*update-refused.*code=4\.00" % re.escape(dev.ep))


def test_register_blacklisted_or_bad_endpoint_refused(srv, mkdev):
    dev = mkdev("black")
    d = srv.api("POST", "/devices", {"endpoint": dev.ep, "blacklisted": True}, expect=201).json()
    r = dev.register()
    assert r is not None and r.code_str == "4.03", r
    problem(srv.api("GET", "/devices/%d/registration" % d["id"]), 404)
    count = srv.device_count()
    for ep in ("a" * 200, "bad ep", "ctl\x01"):
        r = dev.exchange(request(POST, "rd", [("ep=" + ep).encode()], content_format=CF_LINK,
                                 payload=dev.links.encode()))
        assert r is not None and r.code_str == "4.00", (ep, r)
    assert srv.device_count() == count


def test_deleted_device_loses_its_registration(srv, mkdev):
    dev = mkdev("deleted")
    did = register(srv, dev, lt=300)
    r = srv.api("DELETE", "/devices/%d" % did)
    assert r.status_code in (200, 204), r.text
    # the API hands the deletion to the loop and answers at once: wait until the loop
    # has dropped the registration (a fixed sleep was too short under load)
    assert_logged(srv, r"ep=%s event=device-deleted" % re.escape(dev.ep))
    r = dev.update()
    assert r is not None and r.code_str == "4.04", r    # so that the device registers again
    register(srv, dev, lt=300)                          # accept-unknown: created again


# ===================================================== 2. registration state
def test_registration_fields(srv, mkdev):
    links = '</>;rt="oma.lwm2m";ct="110 112",</1/0>,</3/0>,</5/0>'
    dev = mkdev("fields", links=links)
    did = register(srv, dev, lt=300, lwm2m="1.1", b="U")
    g = registration(srv, did)
    assert g["registered"] is True and g["endpoint"] == dev.ep
    assert g["location"] == "/" + dev.location and re.fullmatch(r"/rd/\w+", g["location"])
    assert g["lifetime"] == 300 and g["lwm2mVersion"] == "1.1" and g["binding"] == "U"
    assert g["queueMode"] is False
    assert g["objectLinks"] == links
    assert g["contentFormats"] == [110, 112]
    assert g["address"] == "127.0.0.1:%d" % dev.local_port
    assert g["secure"] is False
    for k in ("registeredAt", "lastUpdateAt", "expiresAt"):
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", g[k]), (k, g[k])


def test_registration_404_when_never_registered(srv):
    ep = new_ep("never")
    d = srv.api("POST", "/devices", {"endpoint": ep}, expect=201).json()
    problem(srv.api("GET", "/devices/%d/registration" % d["id"]), 404)


def test_device_embeds_registration_and_state_filter(srv, mkdev):
    dev = mkdev("embed")
    did = register(srv, dev, lt=300)
    g = registration(srv, did)
    never = srv.api("POST", "/devices", {"endpoint": new_ep("never")}, expect=201).json()
    full = srv.api("GET", "/devices/%d" % did, expect=200).json()
    assert full.get("registration", {}) == g, full
    assert srv.api("GET", "/devices/%d" % never["id"], expect=200).json().get("registration", 0) is None
    reg = [d["endpoint"] for d in srv.list_all("/devices?state=registered")]
    unreg = [d["endpoint"] for d in srv.list_all("/devices?state=unregistered")]
    assert dev.ep in reg and dev.ep not in unreg
    assert never["endpoint"] in unreg and never["endpoint"] not in reg
    assert dev.deregister().code_str == "2.02"
    # the row goes at the end of the loop pass, just after the 2.02 left: poll briefly
    wait_until(lambda: srv.api("GET", "/devices/%d" % did, expect=200).json().get("registration", 0) is None, 2,
               interval=0.02, what="device %d without an embedded registration" % did)


def test_update_deregister_and_events(srv, mkdev):
    dev = mkdev("upd")
    dev.responses[(GET, "/3/0/9")] = Reply("2.05", senml({"bn": "/3/0/9", "v": 55}), cf=CF_SENML_JSON)
    did = register(srv, dev, lt=60)
    g0 = registration(srv, did)

    time.sleep(0.05)
    r = dev.update()                                      # empty: refresh
    assert r is not None and r.code_str == "2.04", r
    g1 = registration_until(srv, did, lambda g: g["lastUpdateAt"] > g0["lastUpdateAt"])
    assert g1["expiresAt"] > g0["expiresAt"]
    assert g1["lifetime"] == 60 and g1["location"] == g0["location"]

    r = dev.update(["lt=120"])
    assert r.code_str == "2.04", r
    registration_until(srv, did, lambda g: g["lifetime"] == 120)

    new_links = '</>;rt="oma.lwm2m";ct=110,</1/0>,</3/0>,</4/0>'
    r = dev.update(payload=new_links.encode())
    assert r.code_str == "2.04", r
    g = registration_until(srv, did, lambda g: g["objectLinks"] == new_links)
    assert g["lifetime"] == 120

    old_addr = g["address"]
    dev.new_socket()                                     # NAT rebinding
    r = dev.update()
    assert r is not None and r.code_str == "2.04", r
    g = registration_until(srv, did, lambda g: g["address"] != old_addr)
    assert g["address"] == "127.0.0.1:%d" % dev.local_port
    # downlinks follow the new address
    rr = op(srv, "GET", did, "/data/3/0/9")
    assert rr.status_code == 200 and rr.json()["value"] == 55, rr.text

    r = dev.deregister()
    assert r is not None and r.code_str == "2.02", r
    registration_gone(srv, did)
    assert dev.update().code_str == "4.04"
    assert dev.deregister().code_str == "4.04"
    assert_logged(srv, r"ep=%s\b.*event=deregistered" % re.escape(dev.ep))

    evs = wait_events(srv, did, ["registration", "update", "deregistration"])
    types = [e["type"] for e in evs]
    assert types.count("registration") == 1 and types.count("update") == 4 and "deregistration" in types, types
    assert types.index("registration") < types.index("update") < types.index("deregistration")
    for e in evs:
        assert e["deviceId"] == did and e["endpoint"] == dev.ep, e


@pytest.mark.parametrize("loc", ["rd/999999999", "rd/abc", "rd/0", "rd/1/2"])
def test_update_unknown_location(srv, mkdev, loc):
    dev = mkdev("unk")
    r = dev.req(POST, loc)
    assert r is not None and r.code_str == "4.04", r
    r = dev.req(DELETE, loc)
    assert r is not None and r.code_str == "4.04", r
    assert_logged(srv, r"refused.*code=4\.04")


# ============================================================ 3. expiry
def test_lifetime_expiry(srv, mkdev):
    dev = mkdev("exp")
    did = register(srv, dev, lt=2)
    t0 = time.monotonic()
    wait_until(lambda: srv.api("GET", "/devices/%d/registration" % did).status_code == 404, 4,
               what="registration gone after lt=2")
    assert time.monotonic() - t0 >= 1.5
    time.sleep(max(0, 3.5 - (time.monotonic() - t0)))
    r = dev.update()
    assert r is not None and r.code_str == "4.04", r
    problem(op(srv, "GET", did, "/data/3/0/9"), 503)


def test_lifetime_expiry_event(srv, mkdev):
    dev = mkdev("expev")
    did = register(srv, dev, lt=2)
    time.sleep(2.5)
    evs = wait_events(srv, did, ["expiry"], timeout=1.5)
    assert "expiry" in [e["type"] for e in evs], evs
    assert_logged(srv, r"ep=%s\b.*event=expired" % re.escape(dev.ep), timeout=0.5)


# ============================================================ 4. restart
def test_restart_keeps_registration(procs, tmp_path):
    require_binaries(LWDM)
    s = Lwdm(procs, tmp_path, args=["--accept-unknown", "on"], log_level="debug").start()
    dev = FakeDevice(s.ports["coap"], new_ep("restart"))
    short = FakeDevice(s.ports["coap"], new_ep("short"))
    try:
        dev.responses[(GET, "/3/0/9")] = Reply("2.05", senml({"bn": "/3/0/9", "v": 42}), cf=CF_SENML_JSON)
        did = register(s, dev, lt=60)
        sid = register(s, short, lt=2)
        t_short = time.monotonic()
        before = registration(s, did)
        assert s.stop() == 0
        time.sleep(max(0, 2.3 - (time.monotonic() - t_short)))   # short's lifetime runs out while down
        s.start()
        g = registration(s, did)
        for k in ("location", "lifetime", "lwm2mVersion", "binding", "objectLinks", "contentFormats",
                  "registeredAt", "lastUpdateAt", "expiresAt", "address"):
            assert g[k] == before[k], (k, g[k], before[k])
        problem(s.api("GET", "/devices/%d/registration" % sid), 404)
        r = dev.update()                               # same socket, old location
        assert r is not None and r.code_str == "2.04", r
        r = op(s, "GET", did, "/data/3/0/9")
        assert r.status_code == 200 and r.json()["value"] == 42, r.text
        r = short.update()
        assert r is not None and r.code_str == "4.04", r
    finally:
        dev.close()
        short.close()
    assert s.stop() == 0


@pytest.mark.parametrize("stack", ["lwdm", "libcoap"])
def test_restart_downlink_before_device_speaks(procs, tmp_path, stack):
    """After a restart, a plain-CoAP device is reachable at its stored address at once
    with lwdm's own UDP endpoint (the default): a REST read goes straight to it. With
    `--coap-udp libcoap` lwdm has no session until the device speaks: the read is
    queued (202) and sent right after its next Update (docs/management.md "Sessions
    and reachability")."""
    require_binaries(LWDM)
    s = Lwdm(procs, tmp_path, args=["--accept-unknown", "on", "--coap-udp", stack], log_level="debug").start()
    dev = FakeDevice(s.ports["coap"], new_ep("restart-dl"))
    try:
        dev.responses[(GET, "/3/0/9")] = Reply("2.05", senml({"bn": "/3/0/9", "v": 42}), cf=CF_SENML_JSON)
        did = register(s, dev, lt=60)
        assert s.stop() == 0
        s.start()
        registration(s, did)
        r = op(s, "GET", did, "/data/3/0/9")
        if stack == "lwdm":
            assert r.status_code == 200 and r.json()["value"] == 42, r.text
            return
        assert r.status_code == 202 and r.json()["status"] == "queued", r.text
        rid = r.json()["requestId"]
        assert dev.update().code_str == "2.04"

        def done():
            st = s.api("GET", "/devices/%d/requests/%d" % (did, rid), expect=200).json()
            return st if st["status"] == "done" else None
        st = wait_until(done, 5, what="queued read done after the Update")
        assert st["result"]["value"] == 42, st
    finally:
        dev.close()
        s.stop()


def test_restart_keeps_observations(procs, tmp_path):
    """Observations are stored (management.md): lwdm does not cancel them when it
    stops, keeps listing them, and observes again at the device's first Update after
    the restart; the answer and later notifications update the latest value."""
    require_binaries(LWDM)
    s = Lwdm(procs, tmp_path, args=["--accept-unknown", "on"], log_level="debug").start()
    dev = FakeDevice(s.ports["coap"], new_ep("restart-obs"), links=DEV_LINKS)
    try:
        dev.responses[(GET, "/3/0/9")] = Reply("2.05", senml({"bn": "/3/0/9", "v": 42}), cf=CF_SENML_JSON)
        did = register(s, dev, lt=60, lwm2m="1.1")
        r = op(s, "POST", did, "/data/3/0/9/observe")
        assert r.status_code == 200, r.text
        assert s.stop() == 0
        got = [(m.code, m.path, m.observe) for m in dev.requests_since(0)]
        assert got == [(GET, "/3/0/9", 0)], "lwdm sent at stop: %s" % got
        s.start()
        obs = s.api("GET", "/devices/%d/observations" % did, expect=200).json()["items"]
        assert [o["path"] for o in obs] == ["/3/0/9"], obs
        n0 = len(dev.requests_since(0))
        dev.responses[(GET, "/3/0/9")] = Reply("2.05", senml({"bn": "/3/0/9", "v": 41}), cf=CF_SENML_JSON)
        assert dev.update().code_str == "2.04"
        wait_until(lambda: [m for m in dev.requests_since(n0) if m.code == GET and m.observe == 0], 5,
                   what="re-observe after the first Update")
        wait_until(lambda: latest_value(s, did, "/3/0/9") == 41, 3, what="value 41 after restart")
    finally:
        dev.close()
        s.stop()


# ================================================== 5. REST device operations
DEV_LINKS = '</>;rt="oma.lwm2m";ct=110,</1/0>,</3/0>,</4/0>,</5>'


@pytest.fixture
def opdev(srv, mkdev):
    """A registered LwM2M 1.1 device announcing SenML JSON: (FakeDevice, device id)."""
    dev = mkdev("ops", links=DEV_LINKS)
    did = register(srv, dev, lt=300, lwm2m="1.1")
    return dev, did


def test_read_object_typed_records(srv, opdev):
    dev, did = opdev
    dev.responses[(GET, "/3/0")] = Reply("2.05", senml(
        {"bn": "/3/0/", "n": "0", "vs": "ACME"}, {"n": "9", "v": 87}, {"n": "13", "v": 1700000000},
        {"n": "7/0", "v": 3800}), cf=CF_SENML_JSON)
    mark = dev.mark()
    r = op(srv, "GET", did, "/data/3/0")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["code"] == "2.05" and body["path"] == "/3/0", body
    recs = records_by_path(body)
    assert recs["/3/0/0"]["type"] == "string" and recs["/3/0/0"]["value"] == "ACME"
    assert recs["/3/0/9"]["type"] == "integer" and recs["/3/0/9"]["value"] == 87
    assert recs["/3/0/13"]["type"] == "time" and recs["/3/0/13"]["value"] == 1700000000
    assert recs["/3/0/7/0"]["type"] == "integer" and recs["/3/0/7/0"]["value"] == 3800
    assert recs["/3/0/9"]["name"] == "Battery Level"
    m = dev.wait_request(start=mark)
    assert m.code == GET and m.type == CON and m.path == "/3/0" and m.observe is None
    assert [opt_uint(v) for v in m.option(OPT_ACCEPT)] == [CF_SENML_JSON]
    # the values are kept
    vals = {v["path"]: v for v in srv.api("GET", "/devices/%d/values?path=/3/0" % did, expect=200).json()["items"]}
    assert vals["/3/0/9"]["value"] == 87 and vals["/3/0/0"]["value"] == "ACME", vals


def test_read_single_resource_has_value(srv, opdev):
    dev, did = opdev
    dev.responses[(GET, "/3/0/9")] = Reply("2.05", senml({"bn": "/3/0/9", "v": 87}), cf=CF_SENML_JSON)
    dev.responses[(GET, "/3/0/0")] = Reply("2.05", senml({"bn": "/3/0/0", "vs": "ACME"}), cf=CF_SENML_JSON)
    r = op(srv, "GET", did, "/data/3/0/9")
    assert r.status_code == 200 and r.json()["value"] == 87, r.text
    r = op(srv, "GET", did, "/data/3/0/0")
    assert r.status_code == 200 and r.json()["value"] == "ACME", r.text


def test_read_format_tlv(srv, opdev):
    dev, did = opdev
    dev.responses[(GET, "/3/0")] = Reply("2.05", tlv_res(0, b"ACME") + tlv_res(9, b"\x57"), cf=CF_TLV)
    dev.responses[(GET, "/3/0/9")] = Reply("2.05", tlv_res(9, b"\x57"), cf=CF_TLV)
    mark = dev.mark()
    r = op(srv, "GET", did, "/data/3/0", query="?format=tlv")
    assert r.status_code == 200, r.text
    m = dev.wait_request(start=mark)
    assert [opt_uint(v) for v in m.option(OPT_ACCEPT)] == [CF_TLV], m.options
    recs = records_by_path(r.json())
    assert recs["/3/0/0"]["value"] == "ACME" and recs["/3/0/9"]["value"] == 87, recs
    r = op(srv, "GET", did, "/data/3/0/9", query="?format=tlv")
    assert r.status_code == 200 and r.json()["value"] == 87, r.text


@pytest.mark.parametrize("fmt,accept", [("tlv", CF_TLV), ("senml-json", CF_SENML_JSON), ("senml-cbor", 112),
                                        ("lwm2m-cbor", 11544), ("text", CF_TEXT), ("opaque", 42)])
def test_read_format_override_sets_accept(srv, opdev, fmt, accept):
    dev, did = opdev
    dev.responses[(GET, "/3/0/9")] = Reply("2.05", b"87", cf=CF_TEXT)
    mark = dev.mark()
    r = op(srv, "GET", did, "/data/3/0/9", query="?format=" + fmt)
    assert r.status_code == 200 and r.json()["value"] == 87, r.text
    m = dev.wait_request(start=mark)
    assert [opt_uint(v) for v in m.option(OPT_ACCEPT)] == [accept], m.options


def test_read_unknown_resources_and_objects(srv, opdev):
    """Resources and objects lwdm has no definition of still come back (typed from the
    SenML value)."""
    dev, did = opdev
    dev.responses[(GET, "/3/0")] = Reply("2.05", senml({"bn": "/3/0/", "n": "9", "v": 87}, {"n": "999", "v": 5}),
                                         cf=CF_SENML_JSON)
    dev.responses[(GET, "/32769/0")] = Reply("2.05", senml({"bn": "/32769/0/", "n": "1", "vs": "abc"},
                                                           {"n": "2", "v": 2.5}), cf=CF_SENML_JSON)
    r = op(srv, "GET", did, "/data/3/0")
    assert r.status_code == 200, r.text
    recs = records_by_path(r.json())
    assert recs["/3/0/9"]["value"] == 87 and recs["/3/0/999"]["value"] == 5, recs
    r = op(srv, "GET", did, "/data/32769/0")
    assert r.status_code == 200, r.text
    recs = records_by_path(r.json())
    assert recs["/32769/0/1"]["value"] == "abc" and recs["/32769/0/2"]["value"] == 2.5, recs


def test_write_unknown_resource_needs_type(srv, opdev):
    dev, did = opdev
    dev.responses[(PUT, "/32769/0/1")] = Reply("2.04")
    mark = dev.mark()
    problem(op(srv, "PUT", did, "/data/32769/0/1", {"records": [{"path": "/32769/0/1", "value": 5}]}), 422)
    assert_nothing_sent(dev, mark, wait=0.1)
    r = op(srv, "PUT", did, "/data/32769/0/1", {"records": [{"path": "/32769/0/1", "type": "integer", "value": 5}]})
    assert r.status_code == 200, r.text
    m = dev.wait_request(start=mark)
    assert senml_values(m.payload) == {"/32769/0/1": 5}, m.payload


def test_read_format_invalid(srv, opdev):
    dev, did = opdev
    mark = dev.mark()
    problem(op(srv, "GET", did, "/data/3/0", query="?format=xml"), 400)
    assert_nothing_sent(dev, mark, wait=0.1)


def test_write_replace(srv, opdev):
    dev, did = opdev
    dev.responses[(PUT, "/3/0/13")] = Reply("2.04")
    mark = dev.mark()
    r = op(srv, "PUT", did, "/data/3/0/13", {"value": 1700000000})
    assert r.status_code == 200 and r.json()["code"] == "2.04", r.text
    m = dev.wait_request(start=mark)
    assert m.code == PUT and m.path == "/3/0/13"
    assert [opt_uint(v) for v in m.option(OPT_CONTENT_FORMAT)] == [CF_SENML_JSON]
    assert senml_values(m.payload) == {"/3/0/13": 1700000000}, m.payload
    # TLV when asked for
    mark = dev.mark()
    r = op(srv, "PUT", did, "/data/3/0/13", {"value": 1700000000}, query="?format=tlv")
    assert r.status_code == 200, r.text
    m = dev.wait_request(start=mark)
    assert [opt_uint(v) for v in m.option(OPT_CONTENT_FORMAT)] == [CF_TLV]
    assert m.payload == bytes([0xC4, 13]) + (1700000000).to_bytes(4, "big"), m.payload.hex()


def test_write_value_of_wrong_type_is_422(srv, opdev):
    dev, did = opdev
    mark = dev.mark()
    b = problem(op(srv, "PUT", did, "/data/3/0/13", {"value": "yesterday"}), 422)
    assert b.get("errors") and b["errors"][0]["field"].endswith("value"), b
    b = problem(op(srv, "PATCH", did, "/data/3/0", {"records": [{"path": "/3/0/14", "value": "+01"},
                                                                 {"path": "/3/0/13", "value": "x"}]}), 422)
    assert b["errors"][0]["field"] == "records[1].value", b
    assert_nothing_sent(dev, mark)


def test_write_partial_update_is_post(srv, opdev):
    dev, did = opdev
    dev.responses[(POST, "/3/0")] = Reply("2.04")
    mark = dev.mark()
    r = op(srv, "PATCH", did, "/data/3/0", {"records": [{"path": "/3/0/14", "value": "+01"},
                                                         {"path": "/3/0/15", "value": "Europe/Paris"}]})
    assert r.status_code == 200 and r.json()["code"] == "2.04", r.text
    m = dev.wait_request(start=mark)
    assert m.code == POST and m.path == "/3/0"
    assert [opt_uint(v) for v in m.option(OPT_CONTENT_FORMAT)] == [CF_SENML_JSON]
    assert senml_values(m.payload) == {"/3/0/14": "+01", "/3/0/15": "Europe/Paris"}, m.payload


def test_execute(srv, opdev):
    dev, did = opdev
    dev.responses[(POST, "/3/0/4")] = Reply("2.04")
    mark = dev.mark()
    r = op(srv, "POST", did, "/data/3/0/4", {"arguments": "0='x'"})
    assert r.status_code == 200 and r.json()["code"] == "2.04", r.text
    m = dev.wait_request(start=mark)
    assert m.code == POST and m.path == "/3/0/4" and m.payload == b"0='x'"
    assert [opt_uint(v) for v in m.option(OPT_CONTENT_FORMAT)] == [CF_TEXT]
    # no arguments: no payload, no Content-Format
    mark = dev.mark()
    r = op(srv, "POST", did, "/data/3/0/4")
    assert r.status_code == 200, r.text
    m = dev.wait_request(start=mark)
    assert m.code == POST and m.path == "/3/0/4" and m.payload == b"" and not m.option(OPT_CONTENT_FORMAT)


def test_create_and_delete(srv, opdev):
    dev, did = opdev
    dev.responses[(POST, "/5")] = Reply("2.01", options=[(OPT_LOCATION_PATH, b"5"), (OPT_LOCATION_PATH, b"0")])
    dev.responses[(DELETE, "/5/0")] = Reply("2.02")
    mark = dev.mark()
    r = op(srv, "POST", did, "/data/5", {"records": [{"path": "/5/0/1", "value": "coap://fw.example/img"}]})
    assert r.status_code == 201, r.text
    assert r.headers.get("Location") == "/api/v1/devices/%d/data/5/0" % did, r.headers
    assert r.json()["code"] == "2.01"
    m = dev.wait_request(start=mark)
    assert m.code == POST and m.path == "/5" and m.payload
    assert [opt_uint(v) for v in m.option(OPT_CONTENT_FORMAT)] == [CF_SENML_JSON]
    assert senml_values(m.payload) == {"/5/0/1": "coap://fw.example/img"}, m.payload
    mark = dev.mark()
    r = op(srv, "DELETE", did, "/data/5/0")
    assert r.status_code == 200 and r.json()["code"] == "2.02", r.text
    m = dev.wait_request(start=mark)
    assert m.code == DELETE and m.path == "/5/0" and m.payload == b""


def test_discover(srv, opdev):
    dev, did = opdev
    dev.responses[(GET, "/3/0")] = Reply("2.05", b'</3/0>;pmin=10,</3/0/0>,</3/0/7>;dim=2,</3/0/9>', cf=CF_LINK)
    mark = dev.mark()
    r = op(srv, "GET", did, "/data/3/0/discover")
    assert r.status_code == 200, r.text
    m = dev.wait_request(start=mark)
    assert m.code == GET and m.path == "/3/0" and m.observe is None
    assert [opt_uint(v) for v in m.option(OPT_ACCEPT)] == [CF_LINK]
    items = {i["uri"]: i["attributes"] for i in r.json()["items"]}
    assert list(items) == ["/3/0", "/3/0/0", "/3/0/7", "/3/0/9"], items
    assert items["/3/0/7"] == {"dim": "2"} and items["/3/0"] == {"pmin": "10"} and items["/3/0/0"] == {}
    mark = dev.mark()
    r = op(srv, "GET", did, "/data/3/0/discover", query="?depth=2")
    assert r.status_code == 200, r.text
    assert dev.wait_request(start=mark).query == ["depth=2"]


def test_write_attributes(srv, opdev):
    dev, did = opdev
    dev.responses[(PUT, "/3/0/9")] = Reply("2.04")
    mark = dev.mark()
    r = op(srv, "PUT", did, "/data/3/0/9/attributes", {"pmin": 5, "pmax": 10})
    assert r.status_code == 200, r.text
    m = dev.wait_request(start=mark)
    assert m.code == PUT and m.path == "/3/0/9"
    assert sorted(m.query) == ["pmax=10", "pmin=5"], m.query
    assert m.payload == b"" and not m.option(OPT_CONTENT_FORMAT)
    mark = dev.mark()
    r = op(srv, "PUT", did, "/data/3/0/9/attributes", {"gt": 30.5, "lt": -10, "st": 2, "pmin": None})
    assert r.status_code == 200, r.text
    m = dev.wait_request(start=mark)
    assert sorted(m.query) == ["gt=30.5", "lt=-10", "pmin", "st=2"], m.query


@pytest.mark.parametrize("body,want", [
    pytest.param({"st": 0.00001}, "st=0.00001", id="small-st"),
    pytest.param({"gt": 1e20}, "gt=100000000000000000000", id="big-gt"),
    pytest.param({"lt": -0.5}, "lt=-0.5", id="negative-lt"),
])
def test_write_attributes_numbers_are_plain(srv, opdev, body, want):
    """gt/lt/st go out as plain decimals (CONFORMANCE.md §3 Write-Attributes): no exponent."""
    dev, did = opdev
    dev.responses[(PUT, "/3/0/9")] = Reply("2.04")
    mark = dev.mark()
    r = op(srv, "PUT", did, "/data/3/0/9/attributes", body)
    assert r.status_code == 200, r.text
    m = dev.wait_request(start=mark)
    assert len(m.query) == 1, m.query
    name, _, value = m.query[0].partition("=")
    assert re.fullmatch(r"-?\d+(\.\d+)?", value), m.query
    assert float(value) == float(want.split("=")[1]) and name == want.split("=")[0]


BAD_ATTRS = [
    ("lt-above-gt", {"lt": 20, "gt": 10}),
    ("lt-equals-gt", {"lt": 10, "gt": 10}),
    ("lt-plus-2st", {"lt": 10, "gt": 20, "st": 6}),
    ("negative-st", {"st": -1}),
    ("unknown", {"foo": 1}),
    ("negative-pmin", {"pmin": -1}),
    ("pmin-string", {"pmin": "5"}),
    ("empty", {}),
]


@pytest.mark.parametrize("name,body", BAD_ATTRS, ids=[c[0] for c in BAD_ATTRS])
def test_write_attributes_invalid(srv, opdev, name, body):
    dev, did = opdev
    dev.responses[(PUT, "/3/0/9")] = Reply("2.04")
    mark = dev.mark()
    problem(op(srv, "PUT", did, "/data/3/0/9/attributes", body), 422)
    assert_nothing_sent(dev, mark, wait=0.15)


def test_observe_notifications_cancel(srv, opdev):
    dev, did = opdev
    dev.responses[(GET, "/3/0/9")] = Reply("2.05", senml({"bn": "/3/0/9", "v": 87}), cf=CF_SENML_JSON)
    mark = dev.mark()
    r = op(srv, "POST", did, "/data/3/0/9/observe")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["value"] == 87 and body.get("observing") is True, body
    m = dev.wait_request(start=mark)
    assert m.code == GET and m.path == "/3/0/9" and m.observe == 0 and len(m.token) >= 1
    token = m.token
    obs = srv.api("GET", "/devices/%d/observations" % did, expect=200).json()["items"]
    assert [o["path"] for o in obs] == ["/3/0/9"], obs

    ack = dev.notify("/3/0/9", senml({"bn": "/3/0/9", "v": 80}), con=True)
    assert ack is not None and ack.type == ACK and ack.code == 0, ack
    dev.notify("/3/0/9", senml({"bn": "/3/0/9", "v": 75}), con=False)

    def latest():
        items = srv.api("GET", "/devices/%d/values?path=/3/0/9" % did, expect=200).json()["items"]
        return items and items[0]["value"] == 75 and items
    vals = wait_until(latest, 5, what="latest value 75")
    assert vals[0]["path"] == "/3/0/9" and vals[0]["type"] == "integer" and vals[0]["updatedAt"]
    hist = srv.api("GET", "/devices/%d/notifications?path=/3/0/9" % did, expect=200).json()["items"]
    got = [h["records"][0]["value"] for h in hist]
    assert got[:2] == [75, 80], hist                     # newest first
    assert all(h["path"] == "/3/0/9" and h["at"] for h in hist)
    hist1 = srv.api("GET", "/devices/%d/notifications?limit=1" % did, expect=200).json()["items"]
    assert len(hist1) == 1 and hist1[0]["records"][0]["value"] == 75
    obs = srv.api("GET", "/devices/%d/observations" % did, expect=200).json()["items"]
    assert len(obs) == 1 and obs[0]["notifications"] >= 2 and obs[0]["lastNotificationAt"], obs
    evs = wait_events(srv, did, ["notification"])
    notes = [e for e in evs if e["type"] == "notification"]
    assert len(notes) >= 2 and notes[-1]["data"]["path"] == "/3/0/9", notes

    # cancel: GET with Observe=1, the same token
    mark = dev.mark()
    r = op(srv, "DELETE", did, "/data/3/0/9/observe")
    assert r.status_code == 200, r.text
    m = dev.wait_request(lambda x: x.observe == 1, start=mark, timeout=3)
    assert m is not None and m.code == GET and m.path == "/3/0/9" and m.token == token, m
    assert srv.api("GET", "/devices/%d/observations" % did, expect=200).json()["items"] == []
    # a later notification with the old token is refused with a Reset
    mid = dev.next_mid()
    dev.send(encode(CON, 0x45, mid, token, [(OPT_OBSERVE, b"\x09"), (OPT_CONTENT_FORMAT, b"\x6e")],
                    senml({"bn": "/3/0/9", "v": 1})))
    rst = wait_until(lambda: next((x for x in dev._replies if x.mid == mid), None), 3, what="RST")
    assert rst.type == RST, rst
    problem(op(srv, "DELETE", did, "/data/3/0/9/observe"), 404)


def test_observe_restored_after_reregister(srv, mkdev):
    dev = mkdev("reobs", links=DEV_LINKS)
    dev.responses[(GET, "/3/0/9")] = Reply("2.05", senml({"bn": "/3/0/9", "v": 87}), cf=CF_SENML_JSON)
    did = register(srv, dev, lt=300, lwm2m="1.1")
    r = op(srv, "POST", did, "/data/3/0/9/observe")
    assert r.status_code == 200, r.text
    mark = dev.mark()
    r = dev.register(lt=300, lwm2m="1.1")
    assert r.code_str == "2.01", r
    m = dev.wait_request(lambda x: x.observe == 0, start=mark, timeout=5)
    assert m is not None and m.code == GET and m.path == "/3/0/9", m
    assert m.at >= r.at, "re-observe sent before the 2.01"


ERRORS = [("4.04", 404), ("4.05", 405), ("4.00", 400), ("4.01", 403), ("4.06", 406), ("4.15", 415),
          ("5.00", 502), ("5.03", 502)]


@pytest.mark.parametrize("coap_code,http", ERRORS, ids=[e[0] for e in ERRORS])
def test_device_error_codes(srv, opdev, coap_code, http):
    dev, did = opdev
    dev.responses[(GET, "/4/0")] = Reply(coap_code, b"diag-text")
    b = problem(op(srv, "GET", did, "/data/4/0"), http)
    assert coap_code in b.get("detail", ""), b
    assert "diag-text" in b["detail"], b


def test_security_and_oscore_objects_forbidden(srv, opdev):
    dev, did = opdev
    mark = dev.mark()
    for method, sub, body in (("GET", "/data/0/0", None), ("GET", "/data/0", None), ("GET", "/data/21/0/1", None),
                              ("PUT", "/data/0/0/1", {"value": True}), ("POST", "/data/0/0/9/observe", None),
                              ("PUT", "/data/0/0/2/attributes", {"pmin": 1}), ("DELETE", "/data/21/0", None),
                              ("GET", "/data/0/0/discover", None), ("POST", "/data/21", {"records": []})):
        r = op(srv, method, did, sub, body)
        assert r.status_code == 403, (method, sub, r.status_code, r.text)
    r = srv.api("POST", "/devices/%d/composite/read" % did, {"paths": ["/3/0/9", "/0/0"]})
    assert r.status_code in (403, 422), r.text
    assert_nothing_sent(dev, mark)


def _silent_read(srv, did, res, http_timeout, timeout_s=2):
    t = time.monotonic()
    try:
        res["r"] = op(srv, "GET", did, "/data/3/0/1", timeout_s=timeout_s, http_timeout=http_timeout)
    except Exception as e:      # noqa: BLE001 (reported by the caller)
        res["exc"] = e
    res["t"] = time.monotonic() - t


def test_silent_device_does_not_block_the_api(srv, opdev, mkdev):
    """While a request waits for a device that never answers, the API (and the other
    devices) answer at once."""
    dev, did = opdev
    dev.responses[(GET, "/3/0/1")] = lambda m: None
    other = mkdev("other", links=DEV_LINKS)
    other.responses[(GET, "/3/0/9")] = Reply("2.05", senml({"bn": "/3/0/9", "v": 12}), cf=CF_SENML_JSON)
    oid = register(srv, other, lt=300, lwm2m="1.1")
    res = {}
    # the silent device's request waits 10 s: everything below must be answered while
    # it still waits (no bound near the real latency, nothing to flake)
    th = threading.Thread(target=_silent_read, args=(srv, did, res, 20, 10))
    th.start()
    try:
        assert dev.wait_request(lambda m: m.path == "/3/0/1", timeout=3) is not None
        registration(srv, did)
        assert srv.healthz() == 200
        assert srv.api("GET", "/devices?limit=1").status_code == 200
        r = op(srv, "GET", oid, "/data/3/0/9")
        assert r.status_code == 200 and r.json()["value"] == 12, r.text
        assert th.is_alive(), "the API answered only after the silent device's request ended: %s" % res
    finally:
        th.join(timeout=25)


def test_device_that_never_answers_504(srv, opdev):
    dev, did = opdev
    dev.responses[(GET, "/3/0/1")] = lambda m: None
    res = {}
    _silent_read(srv, did, res, 30)
    assert "r" in res, "no answer within %.1f s (timeout=2): %r" % (res.get("t", -1), res.get("exc"))
    b = problem(res["r"], 504)
    assert "did not answer" in (b.get("detail", "") + b.get("title", "")), b
    assert res["t"] >= 1.8, res["t"]    # not before the operation's timeout


def test_unregistered_device_503_at_once(srv):
    d = srv.api("POST", "/devices", {"endpoint": new_ep("offline")}, expect=201).json()
    b = problem(answered_before_timeout(srv, d["id"], "/data/3/0"), 503)
    assert "offline" in (b.get("detail", "") + b.get("title", "")), b
    problem(op(srv, "PUT", d["id"], "/data/3/0/13", {"value": 1}), 503)
    problem(srv.api("GET", "/devices/999999/data/3/0"), 404)


def test_composite_read(srv, opdev):
    dev, did = opdev
    dev.responses[(FETCH, "/")] = Reply("2.05", senml({"bn": "/3/0/", "n": "9", "v": 87},
                                                      {"n": "0", "vs": "ACME"}), cf=CF_SENML_JSON)
    mark = dev.mark()
    r = srv.api("POST", "/devices/%d/composite/read?timeout=3" % did, {"paths": ["/3/0/9", "/3/0/0"]})
    assert r.status_code == 200, r.text
    recs = records_by_path(r.json())
    assert recs["/3/0/9"]["value"] == 87 and recs["/3/0/0"]["value"] == "ACME"
    m = dev.wait_request(start=mark)
    assert m.code == FETCH and m.path == "/", m
    assert [opt_uint(v) for v in m.option(OPT_CONTENT_FORMAT)] == [CF_SENML_JSON]
    assert sorted(x["n"] for x in json.loads(m.payload)) == ["/3/0/0", "/3/0/9"]


def test_composite_on_1_0_device_is_400(srv, mkdev):
    dev = mkdev("comp10", links="</1/0>,</3/0>")
    did = register(srv, dev, lt=300, lwm2m="1.0")
    mark = dev.mark()
    problem(srv.api("POST", "/devices/%d/composite/read?timeout=3" % did, {"paths": ["/3/0/9"]}), 400)
    assert_nothing_sent(dev, mark)


def test_device_answers_only_the_retransmission(srv, opdev):
    """lwdm retransmits an unanswered CON (ACK_TIMEOUT 2 s): same MID and token."""
    dev, did = opdev
    calls = []

    def second_time(m):
        calls.append(m)
        return Reply("2.05", senml({"bn": "/3/0/9", "v": 33}), cf=CF_SENML_JSON) if len(calls) > 1 else None
    dev.responses[(GET, "/3/0/9")] = second_time
    t = time.monotonic()
    r = op(srv, "GET", did, "/data/3/0/9", timeout_s=20)
    assert r.status_code == 200 and r.json()["value"] == 33, r.text
    assert time.monotonic() - t >= 1.5     # the retransmission waits for ACK_TIMEOUT (2-3 s)
    assert len(calls) == 2 and calls[0].mid == calls[1].mid and calls[0].token == calls[1].token


def test_separate_response(srv, opdev):
    """The device sends an empty ACK, then the answer as a CON (CONFORMANCE.md §4)."""
    dev, did = opdev
    dev.responses[(GET, "/3/0/9")] = Reply("2.05", senml({"bn": "/3/0/9", "v": 44}), cf=CF_SENML_JSON,
                                           separate=0.3)
    r = op(srv, "GET", did, "/data/3/0/9")
    assert r.status_code == 200 and r.json()["value"] == 44, r.text


def test_inflight_request_follows_the_device(srv, opdev):
    """NAT rebinding while a request is in flight: the device's next message comes from a
    new port. The request sent to the old one ends at once (its retransmissions could never
    reach the registration again) instead of holding the device's queue until they run out,
    and the next request goes to the new address."""
    dev, did = opdev
    dev.responses[(GET, "/3/0/9")] = lambda m: None  # the old address never answers
    mark = dev.mark()
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", op(srv, "GET", did, "/data/3/0/9", timeout_s=8)))
    t.start()
    try:
        dev.wait_request(start=mark)
        dev.new_socket()
        assert dev.update().code_str == "2.04"
    finally:
        t.join()
    r = out["r"]
    assert r.status_code == 503, r.text  # (504 = it waited for the timeout)
    assert "moved" in r.text, r.text
    dev.responses[(GET, "/3/0/9")] = Reply("2.05", senml({"bn": "/3/0/9", "v": 61}), cf=CF_SENML_JSON)
    r = op(srv, "GET", did, "/data/3/0/9", timeout_s=8)
    assert r.status_code == 200 and r.json()["value"] == 61, r.text


def test_block2_read(srv, opdev):
    """A read whose answer comes in 64-byte Block2 blocks is reassembled."""
    dev, did = opdev
    payload = senml({"bn": "/3/0/", "n": "0", "vs": "ACME Corporation of Very Long Manufacturer Names"},
                    {"n": "1", "vs": "Model-X-1000-with-a-long-model-name"}, {"n": "2", "vs": "SN-0123456789"},
                    {"n": "3", "vs": "firmware-1.2.3-build-4567"}, {"n": "9", "v": 87},
                    {"n": "13", "v": 1700000000}, {"n": "17", "vs": "sensor"}, {"n": "19", "vs": "sw-9.8.7"})
    assert len(payload) > 4 * 64
    seen = []

    def block(m):
        b2 = m.option(OPT_BLOCK2)
        val = opt_uint(b2[0]) if b2 else 0
        szx = min(2, val & 7) if b2 else 2
        size = 16 << szx
        num = (val >> 4) * ((16 << (val & 7)) // size) if b2 else 0
        seen.append(num)
        chunk = payload[num * size:(num + 1) * size]
        more = (num + 1) * size < len(payload)
        return Reply("2.05", chunk, cf=CF_SENML_JSON, options=[(OPT_BLOCK2, uint_bytes((num << 4) | (more << 3)
                                                                                     | szx))])
    dev.responses[(GET, "/3/0")] = block
    r = op(srv, "GET", did, "/data/3/0", timeout_s=5)
    assert r.status_code == 200, r.text
    recs = records_by_path(r.json())
    assert recs["/3/0/0"]["value"] == "ACME Corporation of Very Long Manufacturer Names"
    assert recs["/3/0/9"]["value"] == 87 and recs["/3/0/19"]["value"] == "sw-9.8.7", recs
    assert seen == list(range(len(seen))) and len(seen) == (len(payload) + 63) // 64, seen


@pytest.mark.parametrize("device_szx", [6, 2])
def test_block1_write(srv, opdev, device_szx):
    """A write too large for one message goes in Block1 blocks (1,024 bytes, or the smaller
    size the device asks for in its first 2.31), each after the previous 2.31 Continue, and
    the device receives the whole payload once."""
    dev, did = opdev
    value = "".join("%05d," % i for i in range(500))  # 3,000 characters
    blocks = []

    def write(m):
        b1 = m.option(OPT_BLOCK1)
        assert b1, "no Block1 option on a %d-byte write" % len(m.payload)
        val = opt_uint(b1[0])
        num, more, szx = val >> 4, bool(val & 8), val & 7
        blocks.append((num, more, szx, len(m.payload), m.option(OPT_SIZE1)))
        parts.append(bytes(m.payload))
        if more:
            ask = min(szx, device_szx)
            return Reply("2.31", b"", options=[(OPT_BLOCK1, uint_bytes((num << 4) | 8 | ask))])
        return Reply("2.04", b"", options=[(OPT_BLOCK1, uint_bytes(num << 4 | szx))])
    parts = []
    dev.responses[(PUT, "/3/0/15")] = write
    r = op(srv, "PUT", did, "/data/3/0/15", {"value": value}, timeout_s=10)
    assert r.status_code in (200, 204), r.text
    body = b"".join(parts)
    assert value.encode() in body, body[:200]
    assert blocks[0][0] == 0 and blocks[0][2] == 6 and blocks[0][4], blocks  # Size1 on the first block
    assert [b[1] for b in blocks] == [True] * (len(blocks) - 1) + [False], blocks
    if device_szx == 2:
        assert all(b[2] == 2 and b[3] <= 64 for b in blocks[1:]), blocks
        assert len(blocks) > 10, blocks
    else:
        assert len(blocks) == (len(body) + 1023) // 1024, blocks


def _observe(srv, dev, did, path="/3/0/9", v=87):
    dev.responses[(GET, path)] = Reply("2.05", senml({"bn": path, "v": v}), cf=CF_SENML_JSON)
    r = op(srv, "POST", did, "/data%s/observe" % path)
    assert r.status_code == 200, r.text
    assert path in dev.observations


def latest_value(srv, did, path):
    items = srv.api("GET", "/devices/%d/values?path=%s" % (did, path), expect=200).json()["items"]
    return items[0]["value"] if items else None


def test_stale_notification_does_not_override_latest(srv, opdev):
    dev, did = opdev
    _observe(srv, dev, did)
    assert dev.notify("/3/0/9", senml({"bn": "/3/0/9", "v": 75}), seq=10) is not None
    wait_until(lambda: latest_value(srv, did, "/3/0/9") == 75, 3, what="value 75")
    ack = dev.notify("/3/0/9", senml({"bn": "/3/0/9", "v": 80}), seq=9)      # older, arrives late
    assert ack is not None and ack.type == ACK, ack                         # still acknowledged
    time.sleep(0.3)
    assert latest_value(srv, did, "/3/0/9") == 75
    dev.notify("/3/0/9", senml({"bn": "/3/0/9", "v": 70}), seq=11)
    wait_until(lambda: latest_value(srv, did, "/3/0/9") == 70, 3, what="value 70")


def test_observe_with_attributes_1_2(srv, mkdev):
    dev = mkdev("obs12", links=DEV_LINKS)
    dev.responses[(GET, "/3/0/9")] = Reply("2.05", senml({"bn": "/3/0/9", "v": 87}), cf=CF_SENML_JSON)
    did = register(srv, dev, lt=300, lwm2m="1.2")
    mark = dev.mark()
    r = op(srv, "POST", did, "/data/3/0/9/observe", {"pmin": 2, "pmax": 20})
    assert r.status_code == 200, r.text
    m = dev.wait_request(start=mark)
    assert m.observe == 0 and sorted(m.query) == ["pmax=20", "pmin=2"], (m.observe, m.query)
    obs = srv.api("GET", "/devices/%d/observations" % did, expect=200).json()["items"]
    assert obs[0]["attributes"] == {"pmin": 2, "pmax": 20}, obs
    problem(op(srv, "POST", did, "/data/3/0/9/observe", {"st": -1}), 422)


FORMATS = [
    pytest.param("1.1", 'ct=110', CF_SENML_JSON, id="1.1-senml-json"),
    pytest.param("1.1", 'ct="110 112"', 112, id="1.1-senml-cbor-preferred"),
    pytest.param("1.2", 'ct="110 11544"', 11544, id="1.2-lwm2m-cbor-preferred"),
    pytest.param("1.1", 'ct=11542', CF_TLV, id="1.1-tlv-only"),
]


@pytest.mark.parametrize("ver,ct,want", FORMATS)
def test_read_format_from_announced_ct(srv, mkdev, ver, ct, want):
    dev = mkdev("fmt", links='</>;rt="oma.lwm2m";%s,</1/0>,</3/0>' % ct)
    dev.responses[(GET, "/3/0/9")] = Reply("2.05", b"87", cf=CF_TEXT)
    did = register(srv, dev, lt=300, lwm2m=ver)
    mark = dev.mark()
    r = op(srv, "GET", did, "/data/3/0/9")
    assert r.status_code == 200 and r.json()["value"] == 87, r.text
    m = dev.wait_request(start=mark)
    assert [opt_uint(v) for v in m.option(OPT_ACCEPT)] == [want], m.options


def test_lwm2m_1_0_device_read_and_write_instance(srv, mkdev):
    dev = mkdev("v10", links="</1/0>,</3/0>")
    dev.responses[(GET, "/3/0")] = Reply("2.05", tlv_res(0, b"ACME") + tlv_res(9, b"\x57"), cf=CF_TLV)
    dev.responses[(PUT, "/3/0")] = Reply("2.04")
    did = register(srv, dev, lt=300, lwm2m="1.0")
    mark = dev.mark()
    r = op(srv, "GET", did, "/data/3/0")
    assert r.status_code == 200, r.text
    assert records_by_path(r.json())["/3/0/9"]["value"] == 87
    mark = dev.mark()
    r = op(srv, "PUT", did, "/data/3/0", {"records": [{"path": "/3/0/14", "value": "+01"}]})
    assert r.status_code == 200, r.text
    m = dev.wait_request(start=mark)
    assert [opt_uint(v) for v in m.option(OPT_CONTENT_FORMAT)] == [CF_TLV]
    assert m.payload == bytes([0xC3, 14]) + b"+01", m.payload.hex()


def test_lwm2m_1_0_device_single_resource_write_is_text(srv, mkdev):
    dev = mkdev("v10w", links="</1/0>,</3/0>")
    dev.responses[(PUT, "/3/0/13")] = Reply("2.04")
    did = register(srv, dev, lt=300, lwm2m="1.0")
    mark = dev.mark()
    r = op(srv, "PUT", did, "/data/3/0/13", {"value": 1700000000})
    assert r.status_code == 200, r.text
    m = dev.wait_request(start=mark)
    assert [opt_uint(v) for v in m.option(OPT_CONTENT_FORMAT)] == [CF_TEXT], m.options
    assert m.payload == b"1700000000", m.payload


def test_alternate_path_prefixes_requests(srv, mkdev):
    dev = mkdev("alt", links='</lwm2m>;rt="oma.lwm2m";ct=110,</lwm2m/1/0>,</lwm2m/3/0>')
    dev.responses[(GET, "/lwm2m/3/0/9")] = Reply("2.05", senml({"bn": "/3/0/9", "v": 66}), cf=CF_SENML_JSON)
    did = register(srv, dev, lt=300, lwm2m="1.1")
    r = op(srv, "GET", did, "/data/3/0/9")
    assert r.status_code == 200 and r.json()["value"] == 66, r.text
    assert r.json()["path"] == "/3/0/9"


def test_operation_on_wrong_level_is_400(srv, opdev):
    dev, did = opdev
    mark = dev.mark()
    for method, sub, body in (("PUT", "/data/3", {"records": []}), ("PATCH", "/data/3/0/1", {"value": "x"}),
                              ("DELETE", "/data/3", None), ("DELETE", "/data/3/0/1", None),
                              ("POST", "/data/3/0", None), ("GET", "/data/3/x", None),
                              ("GET", "/data/3/0/1/2/3", None), ("GET", "/data/70000", None)):
        r = op(srv, method, did, sub, body)
        assert r.status_code == 400, (method, sub, r.status_code, r.text)
    assert_nothing_sent(dev, mark)


# ============================================================ 6. queue mode
QUEUE_STYLES = [
    pytest.param(dict(lwm2m="1.0", b="UQ"), id="1.0-UQ"),
    pytest.param(dict(lwm2m="1.1", b="U", extra=["Q"]), id="1.1-U-Q"),
]


@pytest.mark.parametrize("style", QUEUE_STYLES)
def test_queue_mode(srv, mkdev, style):
    v10 = style["lwm2m"] == "1.0"
    dev = mkdev("queue", links="</1/0>,</3/0>" if v10 else DEV_LINKS)
    if v10:
        dev.responses[(GET, "/3/0/9")] = Reply("2.05", b"87", cf=CF_TEXT)
    else:
        dev.responses[(GET, "/3/0/9")] = Reply("2.05", senml({"bn": "/3/0/9", "v": 87}), cf=CF_SENML_JSON)
    did = register(srv, dev, lt=300, **style)
    g = registration(srv, did)
    assert g["queueMode"] is True and g["binding"] == "U", g
    time.sleep(1.3)                                       # the awake window (1000 ms) closes
    mark = dev.mark()
    r = answered_before_timeout(srv, did, "/data/3/0/9")
    assert r.status_code == 202, r.text
    q = r.json()
    assert q["status"] == "queued" and isinstance(q["requestId"], int), q
    assert q["location"] == "/api/v1/devices/%d/requests/%d" % (did, q["requestId"]), q
    st = srv.api("GET", "/devices/%d/requests/%d" % (did, q["requestId"]), expect=200).json()
    assert st["status"] == "queued", st
    assert_nothing_sent(dev, mark)

    up = dev.update()                                     # wakes up
    assert up is not None and up.code_str == "2.04", up
    m = dev.wait_request(start=mark, timeout=3)
    assert m is not None and m.code == GET and m.path == "/3/0/9", m
    assert m.at >= up.at, "queued request sent before the 2.04"

    def done():
        s = srv.api("GET", "/devices/%d/requests/%d" % (did, q["requestId"]), expect=200).json()
        return s["status"] == "done" and s
    st = wait_until(done, 3, what="request done")
    assert st["result"]["value"] == 87 and st["result"]["code"] == "2.05", st
    evs = wait_events(srv, did, ["request"])
    req_ev = [e for e in evs if e["type"] == "request"]
    assert req_ev and req_ev[-1]["data"]["requestId"] == q["requestId"], req_ev
    assert req_ev[-1]["data"]["status"] == "done"
    # awake now: a read answers at once
    r = op(srv, "GET", did, "/data/3/0/9")
    assert r.status_code == 200 and r.json()["value"] == 87, r.text
    problem(srv.api("GET", "/devices/%d/requests/999999" % did), 404)


def test_queue_limit_and_deregister_fails_queued(srv, mkdev):
    dev = mkdev("qlim", links="</1/0>,</3/0>")
    did = register(srv, dev, lt=300, lwm2m="1.0", b="UQ")
    time.sleep(1.2)
    ids = []
    for i in range(16):
        r = op(srv, "GET", did, "/data/3/0/%d" % (i % 10))
        assert r.status_code == 202, (i, r.text)
        ids.append(r.json()["requestId"])
    assert len(set(ids)) == 16
    b = problem(op(srv, "GET", did, "/data/3/0/1"), 503)
    assert "queue full" in (b.get("detail", "") + b.get("title", "")), b
    mark = dev.mark()
    assert dev.deregister().code_str == "2.02"
    evs = wait_events(srv, did, ["request", "deregistration"])
    failed = {e["data"]["requestId"] for e in evs if e["type"] == "request" and e["data"]["status"] == "failed"}
    assert failed == set(ids), evs
    assert_nothing_sent(dev, mark)


def test_queued_request_when_device_registers_again(srv, mkdev):
    """A queued request never stays queued once the device registers again: it is sent
    after the 2.01 (management.md: sent when the device wakes with a Register) or failed
    (CONFORMANCE.md §2: a re-Register drops the queue), and a `request` event says which."""
    dev = mkdev("qrereg", links="</1/0>,</3/0>")
    dev.responses[(GET, "/3/0/9")] = Reply("2.05", b"87", cf=CF_TEXT)
    did = register(srv, dev, lt=300, lwm2m="1.0", b="UQ")
    time.sleep(1.2)
    r = op(srv, "GET", did, "/data/3/0/9")
    assert r.status_code == 202, r.text
    rid = r.json()["requestId"]
    mark = dev.mark()
    reg = dev.register(lt=300, lwm2m="1.0", b="UQ")
    assert reg.code_str == "2.01", reg

    def outcome():
        evs = srv.api("GET", "/events?format=json&since=0&wait=1&device=%d&type=request" % did,
                      expect=200).json()["items"]
        return next((e for e in evs if e["data"]["requestId"] == rid), None)
    ev = wait_until(outcome, 4, what="request event")
    assert ev["data"]["status"] in ("done", "failed"), ev
    if ev["data"]["status"] == "done":
        m = dev.wait_request(start=mark, timeout=0.1)
        assert m is not None and m.at >= reg.at, m


def test_queued_request_status_after_deregister(srv, mkdev):
    dev = mkdev("qdrop", links="</1/0>,</3/0>")
    did = register(srv, dev, lt=300, lwm2m="1.0", b="UQ")
    time.sleep(1.2)
    r = op(srv, "GET", did, "/data/3/0/9")
    assert r.status_code == 202, r.text
    rid = r.json()["requestId"]
    assert dev.deregister().code_str == "2.02"
    st = srv.api("GET", "/devices/%d/requests/%d" % (did, rid), expect=200).json()
    assert st["status"] == "failed", st


# ======================================================= 7. bootstrap trigger
def test_bootstrap_trigger(srv, mkdev):
    dev = mkdev("bst", links='</>;rt="oma.lwm2m";ct=110,</1/3>,</1/7>,</3/0>')
    dev.responses[(POST, "/1/3/9")] = Reply("2.04")
    did = register(srv, dev, lt=300, lwm2m="1.1")
    mark = dev.mark()
    r = srv.api("POST", "/devices/%d/bootstrap?timeout=3" % did)
    assert r.status_code == 200, r.text
    m = dev.wait_request(start=mark)
    assert m.code == POST and m.path == "/1/3/9" and m.payload == b"", m

    old = mkdev("bst10", links="</1/0>,</3/0>")
    oid = register(srv, old, lt=300, lwm2m="1.0")
    mark = old.mark()
    problem(srv.api("POST", "/devices/%d/bootstrap?timeout=3" % oid), 400)
    assert_nothing_sent(old, mark)


def test_bootstrap_trigger_next_server_instance(srv, mkdev):
    """With several Server instances the first may belong to another server whose ACL
    refuses lwdm (4.01): the trigger of the next instance is executed instead."""
    dev = mkdev("bst2", links='</>;rt="oma.lwm2m";ct=110,</1/3>,</1/1>,</1/7>,</3/0>')
    dev.responses[(POST, "/1/1/9")] = Reply("4.01")
    dev.responses[(POST, "/1/3/9")] = Reply("4.05")
    dev.responses[(POST, "/1/7/9")] = Reply("2.04")
    did = register(srv, dev, lt=300, lwm2m="1.1")
    mark = dev.mark()
    r = srv.api("POST", "/devices/%d/bootstrap?timeout=5" % did)
    assert r.status_code == 200, r.text
    got = [m.path for m in dev.requests_since(mark) if m.code == POST]
    assert got == ["/1/1/9", "/1/3/9", "/1/7/9"], got

    dev.responses[(POST, "/1/7/9")] = Reply("4.01")
    mark = dev.mark()
    problem(srv.api("POST", "/devices/%d/bootstrap?timeout=5" % did), 403)
    got = [m.path for m in dev.requests_since(mark) if m.code == POST]
    assert got == ["/1/1/9", "/1/3/9", "/1/7/9"], got


# ================================================= 8. malformed datagrams
MALFORMED = [
    ("empty", b""),
    ("one-byte", b"\x40"),
    ("truncated-header", b"\x40\x02\x12"),
    ("tkl-beyond-datagram", bytes([0x48, 0x02, 0x12, 0x34]) + b"ab"),
    ("tkl-9", bytes([0x49, 0x02, 0x12, 0x35]) + b"123456789" + b"\xb2rd"),
    ("option-delta-15", bytes([0x42, 0x02, 0x12, 0x36]) + b"ab" + b"\xb2rd" + b"\xf1x"),
    ("option-length-15", bytes([0x42, 0x02, 0x12, 0x37]) + b"ab" + b"\xb2rd" + b"\x4fxxxx"),
    ("option-overruns", bytes([0x42, 0x02, 0x12, 0x38]) + b"ab" + b"\xb2rd" + b"\x4e\xff\xff" + b"ep=x"),
    ("ext-delta-truncated", bytes([0x42, 0x02, 0x12, 0x39]) + b"ab" + b"\xd1"),
    ("marker-no-payload", request(POST, "rd", ["ep=mt-marker"]) + b"\xff"),
    ("version-2", encode(CON, POST, 0x2345, b"v2", [(11, b"rd"), (15, b"ep=mt-ver2")], payload=b"</3/0>",
                         version=2)),
    ("update-critical-option", request(POST, "rd/12345", extra_options=[(9, b"x")])),
    ("ack-from-nowhere", encode(ACK, 0x44, 0x4242, b"zz")),
    ("rst-from-nowhere", encode(RST, 0, 0x4243)),
    ("response-as-con", encode(CON, 0x45, 0x4244, b"rc", [(11, b"rd")])),
    ("huge-query", request(POST, "rd", ["ep=" + "q" * 1300], content_format=CF_LINK, payload=b"</3/0>")),
]


def test_malformed_datagrams(srv, mkdev):
    count = srv.device_count()
    c = CoapClient(srv.ports["coap"])
    try:
        for name, d in MALFORMED:
            reply = c.exchange(d, timeout=0.4)
            if reply is not None and reply.version == 1 and reply.type != RST:
                assert reply.code >> 5 in (4, 5), (name, reply)
            assert srv.alive(), "lwdm died after %s:\n%s" % (name, srv.stderr()[-3000:])
            assert srv.healthz() == 200, name
        rng = random.Random(7641)
        for i in range(300):
            kind = rng.randrange(3)
            if kind == 0:
                d = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 60)))
            else:
                base = bytearray(request(rng.choice([POST, DELETE, GET]), rng.choice(["rd", "rd/12345", "x"]),
                                         ["ep=mt-garbage"], content_format=CF_LINK, payload=b"</3/0>"))
                for _ in range(rng.randrange(1, 5)):
                    k = rng.randrange(len(base))
                    base[k] ^= 1 << rng.randrange(8)
                d = bytes(base)
            c.send(d)
            if i % 50 == 49:
                while c.recv(0.02) is not None:
                    pass
                assert srv.alive(), "lwdm died after garbage %d:\n%s" % (i, srv.stderr()[-3000:])
    finally:
        c.close()
    assert srv.alive() and srv.healthz() == 200
    for ep in ("mt-marker", "mt-ver2"):
        assert srv.device_by_endpoint(ep) is None, ep
    # a proper Register still works
    dev = mkdev("after-garbage")
    register(srv, dev, lt=60)
    assert srv.device_count() >= count + 1


# ================================================= 8. CoAP over TCP (RFC 8323)
# The device is the real lwdm-sim: it speaks CoAP over TCP and TLS (docs/management.md
# "CoAP over TCP"). lwdm listens on the same port numbers as for UDP/DTLS.
TCP_KEY = "5a6b7c8d9e0f11223344556677889900"


def start_tcp_sim(srv, procs, tmp_path, prefix, scheme="coap+tcp", extra=()):
    port = srv.ports["coaps" if scheme.startswith("coaps") else "coap"]
    args = [LWDM_SIM, "register", "--server", "%s://127.0.0.1:%d" % (scheme, port), "--count", "1",
            "--prefix", prefix, "--log-level", "info"] + list(extra)
    return start_sim(procs, tmp_path, args, prefix.rstrip("-"))


def tcp_registration(srv, ep, timeout=10):
    """(device id, registration) once `ep` is registered."""
    d = wait_until(lambda: srv.device_by_endpoint(ep), timeout, interval=0.05, what="device %s" % ep)
    did = d["id"]

    def reg():
        r = srv.api("GET", "/devices/%d/registration" % did)
        return r.status_code == 200 and r.json()
    return did, wait_until(reg, timeout, interval=0.05, what="registration of %s" % ep)


def tcp_prefix(tag):
    return "tcp%s%d-" % (tag, next(_seq))


OP_TIMEOUT_LONG = 60


def answered_before_timeout(srv, did, sub, method="GET", body=None):
    """A device operation with a long operation timeout (60 s) whose HTTP answer must
    come before half of it: it fails if lwdm holds the answer until the operation times
    out (or fails it then) instead of answering when the device's reply (or the reason
    it cannot be sent) is known. No bound near the real latency: nothing to flake."""
    try:
        return op(srv, method, did, sub, body, timeout_s=OP_TIMEOUT_LONG, http_timeout=OP_TIMEOUT_LONG // 2)
    except requests.exceptions.Timeout:
        raise AssertionError("%s %s: no answer within %d s although the operation timeout is %d s: lwdm waited "
                             "for the timeout" % (method, sub, OP_TIMEOUT_LONG // 2, OP_TIMEOUT_LONG))


def test_tcp_register_read_write_execute_deregister(srv, procs, tmp_path):
    require_binaries(LWDM_SIM)
    prefix = tcp_prefix("rw")
    ep = prefix + "000001"
    sim = start_tcp_sim(srv, procs, tmp_path, prefix, extra=["--lifetime", "60"])
    did, g = tcp_registration(srv, ep)
    assert g["transport"] == "tcp" and g["secure"] is False and g["binding"] == "T", g
    assert g["lifetime"] == 60 and g["lwm2mVersion"] == "1.1", g
    assert_logged(srv, r"ep=%s .*event=registered .*proto=tcp" % re.escape(ep))
    # Read: the sim's own values, over the device's TCP connection. The answer must come
    # when the device answers, not when the operation's timeout runs out: the operation
    # gets a long timeout (60 s) and the HTTP client gives up at half of it.
    r = answered_before_timeout(srv, did, "/data/3/0")
    assert r.status_code == 200, r.text
    recs = records_by_path(r.json())
    assert recs["/3/0/0"]["value"] == "lwdm", recs
    assert recs["/3/0/1"]["value"] == "lwdm-sim", recs
    assert recs["/3/0/2"]["value"] == ep, recs
    # several exchanges one after another on the connection (no message ids over TCP)
    for _ in range(3):
        r = op(srv, "GET", did, "/data/3/0/2")
        assert r.status_code == 200 and r.json()["value"] == ep, r.text
    # Write, read back
    r = op(srv, "PUT", did, "/data/3/0/14", {"value": "+05:00"})
    assert r.status_code == 200 and r.json()["code"] == "2.04", r.text
    r = op(srv, "GET", did, "/data/3/0/14")
    assert r.status_code == 200 and r.json()["value"] == "+05:00", r.text
    # Execute: Registration Update Trigger -> the sim sends an Update on the same connection
    since = srv.api("GET", "/events?format=json&since=0&device=%d" % did, expect=200).json()["next"]
    r = op(srv, "POST", did, "/data/1/0/8")
    assert r.status_code == 200 and r.json()["code"] == "2.04", r.text
    evs = wait_events(srv, did, ["update"], since=since)
    assert any(e["type"] == "update" for e in evs), evs
    assert registration(srv, did)["address"] == g["address"]      # the same connection
    # Observe: the sim's clock (/3/0/13) notifies every second over the connection; Cancel
    r = op(srv, "POST", did, "/data/3/0/13/observe")
    assert r.status_code == 200 and r.json().get("observing") is True, r.text

    def notes():
        return srv.api("GET", "/devices/%d/notifications?path=/3/0/13" % did, expect=200).json()["items"]
    wait_until(lambda: len(notes()) >= 2, 6, what="two notifications of /3/0/13")
    r = op(srv, "DELETE", did, "/data/3/0/13/observe")
    assert r.status_code == 200, r.text
    time.sleep(0.6)                                  # a notification already on its way
    n = len(notes())
    time.sleep(2.2)
    assert len(notes()) == n, "notifications after the cancel"
    # De-register (the sim de-registers when it stops)
    sim.send_signal(signal.SIGTERM)
    rc, out, err = wait_sim(sim, timeout=20)
    assert rc == 0 and "summary: 1 registered, 0 failed" in out, out + err[-2000:]
    registration_gone(srv, did, timeout=5)
    evs = wait_events(srv, did, ["deregistration"], since=since)
    assert any(e["type"] == "deregistration" for e in evs), evs
    assert_logged(srv, r"ep=%s .*event=deregistered" % re.escape(ep))


def test_tls_psk_register_and_wrong_key_refused(srv, procs, tmp_path):
    require_binaries(LWDM_SIM)
    prefix = tcp_prefix("tls")
    ep = prefix + "000001"
    srv.api("POST", "/devices", {"endpoint": ep, "managementCredentials": {
        "securityMode": "psk", "pskIdentity": ep, "psk": TCP_KEY}}, expect=201)
    sim = start_tcp_sim(srv, procs, tmp_path, prefix, scheme="coaps+tcp", extra=["--psk-key", TCP_KEY])
    did, g = tcp_registration(srv, ep)
    assert g["transport"] == "tcp" and g["secure"] is True and g["binding"] == "T", g
    assert_logged(srv, r"ep=%s .*event=registered .*secure=1 .*proto=tls" % re.escape(ep))
    r = op(srv, "GET", did, "/data/3/0/2")
    assert r.status_code == 200 and r.json()["value"] == ep, r.text
    sim.send_signal(signal.SIGTERM)
    rc, out, err = wait_sim(sim, timeout=20)
    assert rc == 0, out + err[-2000:]

    # the same device with a wrong key: refused in the TLS handshake, never registered
    bad = start_tcp_sim(srv, procs, tmp_path, prefix, scheme="coaps+tcp",
                        extra=["--psk-key", "00" + TCP_KEY[2:], "--duration", "4", "--timeout", "3"])
    rc, out, err = wait_sim(bad, timeout=20)
    assert rc == 1 and "summary: 0 registered, 1 failed" in out, out + err[-2000:]
    assert re.search(r"ep=%s state=failed" % re.escape(ep), out), out
    registration(srv, did, expect=404)
    # an identity lwdm does not know is refused too (fatal alert at once)
    stranger = start_tcp_sim(srv, procs, tmp_path, tcp_prefix("tlsx"), scheme="coaps+tcp",
                             extra=["--psk-key", TCP_KEY, "--duration", "3", "--timeout", "2"])
    rc, out, err = wait_sim(stranger, timeout=20)
    assert rc == 1 and "summary: 0 registered, 1 failed" in out, out + err[-2000:]
    assert_logged(srv, r"event=handshake-refused reason=\"unknown PSK identity\"")


def test_tcp_connection_closed_503_registration_stays(srv, procs, tmp_path):
    require_binaries(LWDM_SIM)
    prefix = tcp_prefix("gone")
    ep = prefix + "000001"
    sim = start_tcp_sim(srv, procs, tmp_path, prefix, extra=["--lifetime", "8"])
    did, g = tcp_registration(srv, ep)
    r = op(srv, "GET", did, "/data/3/0/0")
    assert r.status_code == 200 and r.json()["value"] == "lwdm", r.text
    sim.kill()                                  # the connection closes (no De-register)
    sim.wait(timeout=5)
    assert_logged(srv, r"ep=%s event=connection-closed" % re.escape(ep))
    # every operation answers 503 at once, none waits for its timeout
    for method, sub, body in (("GET", "/data/3/0/0", None), ("PUT", "/data/3/0/14", {"value": "+01:00"}),
                              ("POST", "/data/3/0/4", None)):
        b = problem(answered_before_timeout(srv, did, sub, method, body), 503)
        assert "offline" in b["detail"] and "TCP" in b["detail"], b
    # the registration stays until its lifetime runs out
    g2 = registration(srv, did)
    assert g2["location"] == g["location"] and g2["transport"] == "tcp", g2
    wait_until(lambda: srv.api("GET", "/devices/%d/registration" % did).status_code == 404, 15,
               what="expiry of the registration")
    assert_logged(srv, r"ep=%s event=expired" % re.escape(ep))


def test_tcp_queue_mode_request_waits_for_new_connection(srv, procs, tmp_path):
    """A queue-mode device over TCP closes its connection when it sleeps; a request
    then is queued (202) and sent on the new connection its next Update comes on."""
    require_binaries(LWDM_SIM)
    prefix = tcp_prefix("q")
    ep = prefix + "000001"
    start_tcp_sim(srv, procs, tmp_path, prefix,
                  extra=["--lifetime", "60", "--queue", "--awake-ms", "300", "--update-interval", "5"])
    did, g = tcp_registration(srv, ep)
    assert g["queueMode"] is True and g["transport"] == "tcp", g
    assert_logged(srv, r"ep=%s event=connection-closed" % re.escape(ep))    # asleep
    time.sleep(1.1)                                                          # lwdm's awake window (1 s)
    r = op(srv, "GET", did, "/data/3/0/2")
    assert r.status_code == 202, r.text
    rid = r.json()["requestId"]

    def done():
        s = srv.api("GET", "/devices/%d/requests/%d" % (did, rid), expect=200).json()
        return s["status"] in ("done", "failed", "expired") and s
    st = wait_until(done, 12, what="queued request done")
    assert st["status"] == "done" and st["result"]["value"] == ep, st
    g2 = registration(srv, did)
    assert g2["location"] == g["location"] and g2["address"] != g["address"], (g, g2)   # a new connection


def test_tcp_create_and_delete(srv, procs, tmp_path):
    """Create and Delete over CoAP over TCP: an Access Control instance (/2) is created
    on the sim, read back, deleted, and gone."""
    require_binaries(LWDM_SIM)
    prefix = tcp_prefix("cd")
    ep = prefix + "000001"
    start_tcp_sim(srv, procs, tmp_path, prefix, extra=["--lifetime", "60"])
    did, g = tcp_registration(srv, ep)
    assert g["transport"] == "tcp", g
    problem(op(srv, "GET", did, "/data/2/0"), 404)                  # not there yet
    r = op(srv, "POST", did, "/data/2", {"records": [{"path": "/2/0/0", "value": 3},
                                                     {"path": "/2/0/1", "value": 0},
                                                     {"path": "/2/0/3", "value": 1}]})
    assert r.status_code == 201 and r.json()["code"] == "2.01", r.text
    assert r.headers.get("Location") == "/api/v1/devices/%d/data/2/0" % did, r.headers
    recs = records_by_path(op(srv, "GET", did, "/data/2/0", expect=200).json())
    assert (recs["/2/0/0"]["value"], recs["/2/0/1"]["value"], recs["/2/0/3"]["value"]) == (3, 0, 1), recs
    r = op(srv, "DELETE", did, "/data/2/0")
    assert r.status_code == 200 and r.json()["code"] == "2.02", r.text
    problem(op(srv, "GET", did, "/data/2/0"), 404)
    problem(op(srv, "DELETE", did, "/data/2/0"), 404)               # the device's 4.04
    assert registration(srv, did)["address"] == g["address"]        # all on the one connection


def test_tcp_discover_and_write_attributes(srv, procs, tmp_path):
    """Discover and Write-Attributes over CoAP over TCP: the attributes written reach
    the sim, which lists them in its Discover answer; a null removes one."""
    require_binaries(LWDM_SIM)
    prefix = tcp_prefix("da")
    ep = prefix + "000001"
    start_tcp_sim(srv, procs, tmp_path, prefix, extra=["--lifetime", "60"])
    did, g = tcp_registration(srv, ep)
    assert g["transport"] == "tcp", g
    r = op(srv, "GET", did, "/data/3/0/discover")
    assert r.status_code == 200, r.text
    items = {i["uri"]: i["attributes"] for i in r.json()["items"]}
    assert "/3/0" in items and "/3/0/0" in items and "/3/0/9" in items, items
    assert "pmin" not in items["/3/0/9"], items
    r = op(srv, "PUT", did, "/data/3/0/9/attributes", {"pmin": 5, "pmax": 10})
    assert r.status_code == 200 and r.json()["code"] == "2.04", r.text

    def attrs(path):
        r = op(srv, "GET", did, "/data%s/discover" % path, expect=200)
        return {i["uri"]: i["attributes"] for i in r.json()["items"]}
    assert attrs("/3/0/9")["/3/0/9"] == {"pmin": "5", "pmax": "10"}
    r = op(srv, "PUT", did, "/data/3/0/9/attributes", {"pmin": None})
    assert r.status_code == 200, r.text
    assert attrs("/3/0/9")["/3/0/9"] == {"pmax": "10"}


def test_tcp_composite_read_and_write(srv, procs, tmp_path):
    """Read-Composite and Write-Composite over CoAP over TCP (a 1.1 sim): the values
    written in one iPATCH are read back in one FETCH."""
    require_binaries(LWDM_SIM)
    prefix = tcp_prefix("comp")
    ep = prefix + "000001"
    start_tcp_sim(srv, procs, tmp_path, prefix, extra=["--lifetime", "60"])
    did, g = tcp_registration(srv, ep)
    assert g["transport"] == "tcp" and g["lwm2mVersion"] == "1.1", g
    r = srv.api("POST", "/devices/%d/composite/write?timeout=5" % did,
                {"records": [{"path": "/3/0/14", "value": "+02:00"},
                             {"path": "/3/0/15", "value": "Europe/Berlin"}]}, timeout=20)
    assert r.status_code == 200 and r.json()["code"] == "2.04", r.text
    r = srv.api("POST", "/devices/%d/composite/read?timeout=5" % did,
                {"paths": ["/3/0/14", "/3/0/15", "/3/0/2"]}, timeout=20)
    assert r.status_code == 200, r.text
    recs = records_by_path(r.json())
    assert recs["/3/0/14"]["value"] == "+02:00" and recs["/3/0/15"]["value"] == "Europe/Berlin", recs
    assert recs["/3/0/2"]["value"] == ep, recs
    # atomic on the device: one read-only record refuses the whole write
    r = srv.api("POST", "/devices/%d/composite/write?timeout=5" % did,
                {"records": [{"path": "/3/0/14", "value": "+09:00"}, {"path": "/3/0/2", "value": "x"}]},
                timeout=20)
    b = problem(r, 405)                                             # the device's 4.05 (read-only /3/0/2)
    assert "4.05" in b["detail"], b
    r = op(srv, "GET", did, "/data/3/0/14", expect=200)
    assert r.json()["value"] == "+02:00", r.text


def test_tcp_group_task_in_management_session(srv, procs, tmp_path):
    """A group task (<set>, <get>, <execute>) runs in the management session of a device
    that registers over CoAP over TCP: the report turns SUCCESS, the <get> read the
    device's value, and what <set> wrote is on the device."""
    require_binaries(LWDM_SIM)
    prefix = tcp_prefix("task")
    ep = prefix + "000001"
    did = srv.api("POST", "/devices", {"endpoint": ep}, expect=201).json()["id"]
    gid = srv.api("POST", "/groups", {"name": "tcp tasks %s" % ep}, expect=201).json()["id"]
    srv.api("POST", "/groups/%d/devices" % gid, {"deviceId": did}, expect=201)
    config = ("<config>\n"
              "  <set key=\"/3/0/14\" value=\"+04:00\" />\n"
              "  <get key=\"/3/0/2\" output=\"serial\" />\n"
              "  <execute key=\"Device.Connectivity Statistics.0.Start\" />\n"
              "</config>\n")
    tid = srv.api("POST", "/groups/%d/tasks" % gid, {"name": "over tcp", "config": config},
                  expect=201).json()["id"]
    start_tcp_sim(srv, procs, tmp_path, prefix, extra=["--lifetime", "60"])
    _, g = tcp_registration(srv, ep)
    assert g["transport"] == "tcp", g

    def report():
        items = srv.api("GET", "/devices/%d/task-reports" % did, expect=200).json()["items"]
        rep = next((i for i in items if i["taskId"] == tid), None)
        return rep if rep and rep["status"] not in ("NOT_STARTED", "IN_PROGRESS") else None
    rep = wait_until(report, 15, interval=0.1, what="the task's report")
    full = srv.api("GET", "/devices/%d/task-reports/%d" % (did, rep["id"]), expect=200).json()
    assert rep["status"] == "SUCCESS" and rep["sessionKind"] == "management", full
    assert full["variables"].get("serial") == ep, full
    r = op(srv, "GET", did, "/data/3/0/14", expect=200)
    assert r.json()["value"] == "+04:00", r.text
    assert registration(srv, did)["address"] == g["address"]        # the session was the TCP connection


def test_tcp_bootstrap_trigger_round_trip(procs, tmp_path):
    """Server-initiated bootstrap over CoAP over TCP: a device bootstrapped (coap+tcp) with
    a TCP management account and registered over TCP gets POST /devices/{id}/bootstrap
    (Execute /1/x/9 on its TCP connection), bootstraps again and registers again over TCP
    (a new registration, a newer successful bootstrap)."""
    require_binaries(LWDM, LWDM_SIM)
    s = Lwdm(procs, tmp_path, args=["--accept-unknown", "on"], log_level="info").start()
    tcp_uri = "coap+tcp://127.0.0.1:%d" % s.ports["coap"]
    entry = s.api("POST", "/lwm2m-servers", {
        "name": "management over TCP", "type": "management", "transport": "tcp", "ssid": 21,
        "uri": tcp_uri, "securityMode": "nosec", "lifetime": 120}, expect=201).json()
    s.api("PUT", "/bootstrap-settings", {"bootstrapServerId": None, "managementServerIds": [entry["id"]],
                                         "acceptUnknownDevices": True}, expect=200)
    ep = "tcpbst-000001"
    report = os.path.join(str(tmp_path), "tcpbst.json")
    sim = start_sim(procs, tmp_path, [LWDM_SIM, "bootstrap", "--register", "--server",
                                      "coap+tcp://127.0.0.1:%d" % s.ports["bs_coap"], "--count", "1",
                                      "--prefix", "tcpbst-", "--timeout", "20", "--log-level", "info",
                                      "--json", report], "sim-tcpbst")
    did, g = tcp_registration(s, ep, timeout=20)
    assert g["transport"] == "tcp" and g["binding"] == "T" and g["lwm2mVersion"] == "1.1", g

    def bootstrap():
        d = s.api("GET", "/devices/%d" % did, expect=200).json()
        return bootstrap_status(d) == "success" and d["lastBootstrapAt"]
    at1 = wait_until(bootstrap, 10, interval=0.05, what="first bootstrap recorded")
    since = s.api("GET", "/events?format=json&since=0&device=%d" % did, expect=200).json()["next"]

    r = s.api("POST", "/devices/%d/bootstrap?timeout=10" % did, timeout=30)
    assert r.status_code == 200 and r.json()["code"] == "2.04", r.text

    def second_round():
        evs = s.api("GET", "/events?format=json&since=%d&device=%d&type=bootstrap,registration" % (since, did),
                    expect=200).json()["items"]
        done = any(e["type"] == "bootstrap" and e["data"].get("status") in ("finished", "failed") for e in evs)
        return done and any(e["type"] == "registration" for e in evs) and evs
    evs = wait_until(second_round, 20, interval=0.1, what="a second bootstrap and registration")
    assert [e["data"]["status"] for e in evs if e["type"] == "bootstrap"] == ["started", "finished"], evs
    g2 = registration_until(s, did, lambda x: x["location"] != g["location"], timeout=10)
    assert g2["transport"] == "tcp" and g2["binding"] == "T", g2

    def newer():
        at = bootstrap()
        return at and at > at1 and at                               # ISO-8601 UTC, same width
    wait_until(newer, 10, interval=0.05, what="a newer successful bootstrap recorded")
    # the new registration is usable over its new connection
    r = op(s, "GET", did, "/data/3/0/2")
    assert r.status_code == 200 and r.json()["value"] == ep, r.text
    sim.send_signal(signal.SIGTERM)
    rc, out, err = wait_sim(sim, timeout=20)
    assert rc == 0, out + err[-2000:]
    with open(report) as f:
        dev = json.load(f)["devices"][0]
    assert dev["registration"]["registrations"] == 2, dev
    assert s.stop() == 0


def test_tcp_off_refuses_tcp(procs, tmp_path):
    require_binaries(LWDM, LWDM_SIM)
    s = Lwdm(procs, tmp_path, args=["--accept-unknown", "on", "--tcp", "off"], log_level="info").start()
    assert "tcp=0 tls=0" in s.ready_line, s.ready_line
    assert "coap+tcp://" not in s.stdout() and "coaps+tcp://" not in s.stdout(), s.stdout()
    for name in ("coap", "coaps", "bs_coap", "bs_coaps"):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", s.ports[name]), timeout=2).close()
    p = start_sim(procs, tmp_path, [LWDM_SIM, "register", "--server", "coap+tcp://127.0.0.1:%d" % s.ports["coap"],
                                    "--count", "1", "--prefix", "tcpoff-", "--duration", "3", "--timeout", "2"],
                  "sim-tcpoff")
    rc, out, err = wait_sim(p, timeout=20)
    assert rc == 1 and "summary: 0 registered, 1 failed" in out, out + err[-2000:]
    assert "refused" in out or "failed" in out, out
    assert s.device_by_endpoint("tcpoff-000001") is None
    # UDP is unaffected
    p = start_sim(procs, tmp_path, [LWDM_SIM, "register", "--server", "coap://127.0.0.1:%d" % s.ports["coap"],
                                    "--count", "1", "--prefix", "udpon-", "--duration", "1"], "sim-udpon")
    rc, out, err = wait_sim(p, timeout=20)
    assert rc == 0 and "summary: 1 registered" in out, out + err[-2000:]
    assert s.stop() == 0


def test_tcp_on_by_default_banner_and_listeners(srv):
    assert "tcp=1 tls=1" in srv.ready_line, srv.ready_line
    out = srv.stdout()
    for scheme, name in (("coap+tcp", "coap"), ("coaps+tcp", "coaps"), ("coap+tcp", "bs_coap"),
                         ("coaps+tcp", "bs_coaps")):
        assert "%s://127.0.0.1:%d" % (scheme, srv.ports[name]) in out, out
        socket.create_connection(("127.0.0.1", srv.ports[name]), timeout=2).close()
