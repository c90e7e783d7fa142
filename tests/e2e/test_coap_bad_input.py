"""Hand-crafted CoAP datagrams against the bootstrap port of a real lwdm.

Every bad request gets a clear error code (or, for datagrams that are not
CoAP at all, silence or a Reset), stores nothing (device count, server list
and bootstrap settings unchanged through the REST API), leaves the server
healthy (/healthz 200, process alive), and refused requests are logged with
the endpoint or the reason.
"""
import random
import re
import socket

import pytest

from lwdm_e2e import (ACK, CON, DELETE, GET, NON, POST, PUT, RST, CoapClient, Lwdm, ProcessGroup, decode, encode, request,
                      procs, require_binaries, run, sim_args, wait_until)  # noqa: F401

SILENCE = 0.6      # seconds to wait before deciding a datagram got no answer


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    require_binaries()
    group = ProcessGroup()
    s = Lwdm(group, tmp_path_factory.mktemp("coap-bad"), log_level="debug")
    try:
        s.start()
        s.baseline = state(s)
        yield s
    finally:
        group.stop_all()


@pytest.fixture
def coap(srv):
    c = CoapClient(srv.ports["bs_coap"])
    yield c
    c.close()


def state(s):
    return {"devices": s.device_count(), "servers": s.servers(),
            "settings": s.api("GET", "/bootstrap-settings", expect=200).json()}


def assert_unchanged_and_healthy(s):
    assert s.alive(), "lwdm died:\n" + s.stderr()[-3000:]
    assert s.healthz() == 200
    assert state(s) == s.baseline


def assert_logged(s, pattern):
    wait_until(lambda: re.search(pattern, s.stderr()), 5, what="log line /%s/" % pattern)


# (id, datagram, expected code, log pattern or None)
ERROR_CASES = [
    ("no-ep", lambda: request(POST, "bs"), "4.00",
     r'ep=- event=refused code=4\.00 reason="missing ep'),
    ("empty-ep", lambda: request(POST, "bs", ["ep="]), "4.00",
     r'event=refused code=4\.00 reason="invalid endpoint name"'),
    ("ep-too-long", lambda: request(POST, "bs", ["ep=" + "a" * 200]), "4.00",
     r'event=refused code=4\.00 reason="invalid endpoint name"'),
    ("pct-not-a-number", lambda: request(POST, "bs", ["ep=bad-pct-a", "pct=abc"]), "4.00",
     r'ep=bad-pct-a event=refused code=4\.00 reason="malformed pct"'),
    ("pct-unknown-format", lambda: request(POST, "bs", ["ep=bad-pct-b", "pct=9999"]), "4.15",
     r'ep=bad-pct-b event=refused code=4\.15 reason="[^"]*9999'),
    ("pct-first-ep-second", lambda: request(POST, "bs", ["pct=9999", "ep=bad-pct-c"]), "4.15",
     r'ep=bad-pct-c event=refused code=4\.15'),
    ("get-bs", lambda: request(GET, "bs", ["ep=get-bs"]), "4.05", None),
    ("post-unknown-path", lambda: request(POST, "unknown", ["ep=unknown-path"]), "4.04", None),
    ("post-bs-subpath", lambda: request(POST, "bs/x", ["ep=bs-subpath"]), "4.04", None),
    ("unknown-critical-option", lambda: request(POST, "bs", ["ep=crit-opt"], extra_options=[(9, b"x")]), "4.02",
     None),
    ("bspack-accept-text", lambda: request(GET, "bspack", ["ep=x"], accept=0), "4.06", None),
    ("bspack-bad-ep", lambda: request(GET, "bspack", ["ep="], accept=112), "4.00", None),
    ("bspack-post", lambda: request(POST, "bspack", ["ep=bspack-post"]), "4.05", None),
    ("put-bs", lambda: request(PUT, "bs", ["ep=put-bs"], content_format=112, payload=b"\x80"), "4.05", None),
    ("delete-bs", lambda: request(DELETE, "bs", ["ep=delete-bs"]), "4.05", None),
]


@pytest.mark.parametrize("name,make,want,log", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_error_response(srv, coap, name, make, want, log):
    reply = coap.exchange(make(), timeout=3)
    assert reply is not None, "no answer to %s" % name
    assert reply.type == ACK and reply.code_str == want, reply
    if log:
        assert_logged(srv, log)
    assert_unchanged_and_healthy(srv)


def test_control_character_in_ep(srv, coap):
    reply = coap.exchange(request(POST, "bs", [b"ep=ab\x01c"]), timeout=3)
    try:
        assert reply is not None and reply.code_str == "4.00", reply
        assert_logged(srv, r'event=refused code=4\.00 reason="invalid endpoint name"')
        assert_unchanged_and_healthy(srv)
    finally:
        # do not leave a wrongly created device ('ab%01c' today) behind for the other cases
        for d in srv.devices():
            if d["endpoint"].startswith("ab") and d["endpoint"].endswith("c"):
                srv.api("DELETE", "/devices/%d" % d["id"], expect=(200, 204))


def test_bspack_refusal_is_logged(srv, coap):
    reply = coap.exchange(request(GET, "bspack", ["ep=pack-text-ep"], accept=0), timeout=3)
    assert reply is not None and reply.code_str == "4.06", reply
    assert_logged(srv, r'pack-text-ep.*(refused|4\.06)|(refused|4\.06).*pack-text-ep')


def bs_header_only():
    return request(POST, "bs", ["ep=trunc-1"])[:3]


# (id, datagram): never a success, never a crash; silence, RST or an error code
MALFORMED = [
    ("empty-datagram", lambda: b""),
    ("one-byte", lambda: b"\x40"),
    ("truncated-header", bs_header_only),
    ("tkl-beyond-datagram", lambda: bytes([0x48, 0x02, 0x12, 0x34]) + b"ab"),
    ("tkl-9-reserved", lambda: bytes([0x49, 0x02, 0x12, 0x35]) + b"123456789" + b"\xb2bs"),
    ("version-2", lambda: encode(CON, POST, 0x2345, b"v2", [(11, b"bs"), (15, b"ep=ver2")], version=2)),
    ("version-0", lambda: encode(CON, POST, 0x2346, b"v0", [(11, b"bs"), (15, b"ep=ver0")], version=0)),
    ("option-delta-15", lambda: bytes([0x42, 0x02, 0x12, 0x36]) + b"ab" + b"\xb2bs" + b"\xf1x"),
    ("option-length-15", lambda: bytes([0x42, 0x02, 0x12, 0x37]) + b"ab" + b"\xb2bs" + b"\x4fxxxx"),
    ("option-overruns", lambda: bytes([0x42, 0x02, 0x12, 0x38]) + b"ab" + b"\xb2bs" + b"\x4e\xff\xff" + b"ep=x"),
    ("ext-delta-13-truncated", lambda: bytes([0x42, 0x02, 0x12, 0x39]) + b"ab" + b"\xd1"),
    ("ext-delta-14-truncated", lambda: bytes([0x42, 0x02, 0x12, 0x3a]) + b"ab" + b"\xe1\x00"),
    ("payload-marker-no-payload", lambda: request(POST, "bs", ["ep=marker-1"]) + b"\xff"),
    ("oversized-payload-on-bs", lambda: request(POST, "bs", ["ep=oversize-1"], payload=b"A" * 1200)),
    ("oversized-payload-no-ep", lambda: request(POST, "bs", payload=bytes(range(256)) * 5)),
    ("huge-uri-query", lambda: request(POST, "bs", ["ep=" + "q" * 1300])),
    ("ack-from-nowhere", lambda: encode(ACK, 0x44, 0x4242, b"zz")),
    ("rst-from-nowhere", lambda: encode(RST, 0, 0x4243)),
    ("response-code-as-con", lambda: encode(CON, 0x45, 0x4244, b"rc", [(11, b"bs")])),
    ("empty-con-with-token", lambda: bytes([0x41, 0x00, 0x42, 0x45]) + b"t"),
]


def assert_not_success(reply, name):
    if reply is None:
        return
    assert reply.version == 1, "%s: answer is not CoAP: %r" % (name, reply.payload)
    if reply.type == RST:
        return
    assert reply.code >> 5 in (4, 5), "%s: answered %s" % (name, reply)


@pytest.mark.parametrize("name,make", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_datagram(srv, coap, name, make):
    reply = coap.exchange(make(), timeout=SILENCE)
    assert_not_success(reply, name)
    assert_unchanged_and_healthy(srv)


def _garbage(rng):
    """One random datagram that cannot be a valid Bootstrap-Request or Bootstrap-Pack request
    (so that nothing may be stored because of it)."""
    while True:
        kind = rng.randrange(4)
        if kind == 0:                               # random bytes
            d = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 80)))
        elif kind == 1:                             # plausible header, random rest
            tkl = rng.randrange(0, 9)
            d = bytes([0x40 | (rng.randrange(4) << 4) | tkl, rng.randrange(256)]) + \
                rng.randrange(65536).to_bytes(2, "big") + bytes(rng.randrange(256) for _ in range(rng.randrange(120)))
        else:                                       # a few bit flips of requests that fail
            base = bytearray(rng.choice([
                request(GET, "bs", ["ep=g1"]), request(POST, "nope", ["ep=n1"]),
                request(GET, "bspack", ["ep=q1"], accept=0), request(POST, "bs", ["pct=abc", "ep=f1"])]))
            for _ in range(rng.randrange(1, 6)):
                i = rng.randrange(len(base))
                base[i] ^= 1 << rng.randrange(8)
            d = bytes(base)
        try:
            m = decode(d)
        except ValueError:
            return d
        paths = [v for n, v in m.options if n == 11]
        if (m.code == POST and paths == [b"bs"]) or (m.code == GET and paths == [b"bspack"]):
            continue
        return d


def _allowed_success(reply, sent):
    """RFC 7252 successes a garbage datagram may earn: 2.02 to a DELETE of an unknown
    resource (§5.8.4, libcoap's default) and 2.05 to GET /.well-known/core (RFC 6690)."""
    for req in sent:
        if req.token != reply.token or (reply.type == ACK and req.mid != reply.mid):
            continue
        paths = [v for n, v in req.options if n == 11]
        if req.code == DELETE and reply.code_str == "2.02":
            return True
        if req.code == GET and paths == [b".well-known", b"core"] and reply.code_str == "2.05":
            return True
    return False


def test_random_garbage(srv, coap):
    rng = random.Random(7252)
    replies, sent = [], []
    for i in range(400):
        d = _garbage(rng)
        try:
            sent.append(decode(d))
        except ValueError:
            pass
        coap.send(d)
        if i % 25 == 24:
            while True:
                data = coap.recv(0.05)
                if data is None:
                    break
                replies.append(data)
            assert srv.alive(), "lwdm died after garbage datagram %d:\n%s" % (i, srv.stderr()[-3000:])
    while True:
        data = coap.recv(0.5)
        if data is None:
            break
        replies.append(data)
    for data in replies:
        try:
            m = decode(data)
        except ValueError:
            pytest.fail("lwdm sent a malformed datagram: %r" % data)
        assert m.type in (ACK, RST, NON), m
        assert m.type == RST or m.code >> 5 in (4, 5) or _allowed_success(m, sent), m
    # still answers a proper (refused) request, and stored nothing
    reply = coap.exchange(request(POST, "bs", ["ep=after-garbage", "pct=abc"]), timeout=3)
    assert reply is not None and reply.code_str == "4.00", reply
    assert_unchanged_and_healthy(srv)


def test_garbage_on_dtls_port(srv):
    rng = random.Random(6347)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(150):
            n = rng.randrange(0, 200)
            d = bytes(rng.randrange(256) for _ in range(n))
            if i % 3 == 0 and n > 13:               # looks like a DTLS 1.2 record header
                d = bytes([22, 0xfe, 0xfd]) + d[3:]
            s.sendto(d, ("127.0.0.1", srv.ports["bs_coaps"]))
    finally:
        s.close()
    assert_unchanged_and_healthy(srv)


def test_nothing_stored_after_everything(srv):
    assert_unchanged_and_healthy(srv)
    log = srv.stderr()
    for ep in ("oversize-1", "trunc-1", "ver2", "ver0", "marker-1", "get-bs", "unknown-path", "crit-opt"):
        assert not re.search(r"ep=%s event=(request|device-created)" % ep, log), ep


# ------------------------------------------------------------ accept-unknown off
def test_unknown_endpoint_refused_when_accept_unknown_off(procs, tmp_path):
    require_binaries()
    s = Lwdm(procs, tmp_path, args=["--accept-unknown", "off"], log_level="info").start()
    known = "known-000001"
    s.api("POST", "/devices", {"endpoint": known, "bootstrapCredentials": {"securityMode": "nosec"}}, expect=201)
    before = state(s)
    c = CoapClient(s.ports["bs_coap"])
    try:
        reply = c.exchange(request(POST, "bs", ["ep=stranger-1", "pct=112"]), timeout=3)
        assert reply is not None and reply.code_str == "4.00", reply
        reply = c.exchange(request(POST, "bs", ["ep=stranger-2"], mtype=NON), timeout=3)
        assert reply is not None and reply.code_str == "4.00" and reply.type == NON, reply
        reply = c.exchange(request(GET, "bspack", ["ep=stranger-3"], accept=112), timeout=3)
        assert reply is not None and reply.code_str == "4.00", reply
    finally:
        c.close()
    assert_logged(s, r'ep=stranger-1 event=refused code=4\.00 reason="unknown endpoint"')
    assert_logged(s, r'ep=stranger-2 event=refused code=4\.00 reason="unknown endpoint"')
    assert state(s) == before
    assert [d["endpoint"] for d in s.devices()] == [known]
    # the known device still bootstraps: the refusal is about unknown endpoints only
    r = run(sim_args(s.ports["bs_coap"], 1, "known-", extra=["--timeout", "20"]), timeout=40)
    assert r.returncode == 0 and "summary: 1 ok, 0 failed" in r.stdout, r.stdout + r.stderr
    assert s.healthz() == 200
    assert s.stop() == 0


# ------------------------------------------------------------ endpoint names verbatim
VERBATIM = [
    pytest.param("a&b", id="ampersand"),
    pytest.param("caf\u00e9-1", id="utf8"),
    pytest.param("50%-dev", id="percent"),
    pytest.param("urn:imei:490154203237518", id="urn"),
]


@pytest.mark.parametrize("ep", VERBATIM)
def test_endpoint_name_taken_verbatim(procs, tmp_path, ep):
    """A Uri-Query option `ep=<name>` creates exactly the device <name>."""
    require_binaries()
    s = Lwdm(procs, tmp_path, log_level="info").start()
    c = CoapClient(s.ports["bs_coap"])
    try:
        reply = c.exchange(request(POST, "bs", [("ep=" + ep).encode()]), timeout=3)
    finally:
        c.close()
    assert reply is not None and reply.code_str == "2.04", reply
    names = [d["endpoint"] for d in s.devices()]
    assert names == [ep]


def test_space_in_ep_refused(procs, tmp_path):
    require_binaries()
    s = Lwdm(procs, tmp_path, log_level="info").start()
    c = CoapClient(s.ports["bs_coap"])
    try:
        reply = c.exchange(request(POST, "bs", [b"ep=a b"]), timeout=3)
    finally:
        c.close()
    assert reply is not None and reply.code_str == "4.00", reply
    assert s.device_count() == 0
