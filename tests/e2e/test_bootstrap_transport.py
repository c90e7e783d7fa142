"""Plain-CoAP bootstrap on both UDP stacks.

lwdm serves the plain-CoAP bootstrap port (/bs, /bspack) with its own UDP
endpoint (server/coap_udp.c) by default; `--coap-udp libcoap`
(LWDM_COAP_UDP=libcoap) brings back libcoap's endpoint there, as on the
management port. Every test runs on both stacks:

1. NoSec devices of three LwM2M versions bootstrap with lwdm-sim; the sim says
   they succeeded, and the REST API shows each with its stored bootstrap record
   (Request first, Finish last, the writes in the format the client asked for).
2. A Bootstrap-Pack larger than two 1,024-byte blocks (twelve extra management
   servers in the bootstrap settings) comes whole block-wise (Block2), with
   1,024-byte blocks and with the 64-byte blocks a client asks for, and decodes
   as SenML CBOR holding every server's URI and short server id.
3. A request datagram over 1,152 bytes (RFC 7252 4.6) stores nothing; lwdm's
   own endpoint answers it 4.13 with Size1 16,384, which also shows that the
   stack under test is the one the flag asked for.
"""
import re
import struct

import pytest

from lwdm_e2e import procs  # noqa: F401  (the fixture)
from lwdm_e2e import (ACK, GET, OPT_BLOCK2, OPT_CONTENT_FORMAT, OPT_SIZE1, OPT_SIZE2, POST, CoapClient, Lwdm,
                      block_parse, block_value, opt_uint, parse_summary, request, require_binaries, sim_args,
                      sim_results, start_sim, wait_bootstrapped, wait_sim)

STACKS = ["lwdm", "libcoap"]

# (version, format, endpoint prefix): 3 devices each
RUNS = [("1.0", "tlv", "tt10-"), ("1.1", "senml-json", "tt11-"), ("1.2", "senml-cbor", "tt12-")]
WRITE_FORMAT = {"tlv": "TLV", "senml-json": "SenML JSON", "senml-cbor": "SenML CBOR"}
PER_RUN = 3


@pytest.fixture(autouse=True)
def _binaries():
    require_binaries()


def endpoints(prefix, count):
    return ["%s%06d" % (prefix, i) for i in range(1, count + 1)]


def start(procs, tmp_path, stack, how):
    """lwdm with the plain-CoAP stack `stack`, chosen by the flag or by the environment."""
    if how == "flag":
        return Lwdm(procs, tmp_path, args=["--coap-udp", stack], log_level="debug").start()
    return Lwdm(procs, tmp_path, env={"LWDM_COAP_UDP": stack}, log_level="debug").start()


def oversized_request(ep, size):
    """POST /bs?ep=<ep> padded with a payload to exactly `size` bytes."""
    d = request(POST, "bs", ["ep=" + ep], token=b"\x0b\x16\x21\x2c")
    d += b"\xff" + b"x" * (size - len(d) - 1)
    assert len(d) == size
    return d


def check_stack(srv, stack):
    """The stack on the bootstrap port is `stack`: lwdm's own endpoint answers a
    1,153-byte request 4.13 with Size1 16,384 (RFC 7959 2.9.3); libcoap 4.3.1
    drops it unanswered ("discard malformed PDU" in the log). Either way it
    creates no device."""
    c = CoapClient(srv.ports["bs_coap"])
    try:
        reply = c.exchange(oversized_request("oversized-1", 1153), timeout=1.5 if stack == "libcoap" else 3)
    finally:
        c.close()
    if stack == "lwdm":
        assert reply is not None and reply.type == ACK and reply.code_str == "4.13", reply
        assert [opt_uint(v) for v in reply.option(OPT_SIZE1)] == [16384], reply.options
    else:
        assert reply is None, "libcoap answered a 1,153-byte request (is it libcoap?): %r" % reply
    assert srv.device_by_endpoint("oversized-1") is None


def seeded_server(srv):
    """The NoSec management server the first start creates."""
    mgmt = [s for s in srv.servers() if s["name"] == "lwdm management (NoSec)"]
    assert len(mgmt) == 1, srv.servers()
    return mgmt[0]


# ------------------------------------------------------------------ 1. lwdm-sim
@pytest.mark.parametrize("stack", STACKS)
def test_bootstrap_nosec_devices(procs, tmp_path, stack):
    srv = start(procs, tmp_path, stack, "flag")
    check_stack(srv, stack)
    mgmt_uri = seeded_server(srv)["uri"]

    sims = []
    for version, fmt, prefix in RUNS:
        args = sim_args(srv.ports["bs_coap"], PER_RUN, prefix,
                        extra=["--version", version, "--format", fmt, "--timeout", "20"])
        sims.append((start_sim(procs, tmp_path, args, "sim-" + prefix.rstrip("-")), endpoints(prefix, PER_RUN)))
    for p, eps in sims:
        rc, out, err = wait_sim(p, timeout=60)
        ok, failed = parse_summary(out)
        assert (rc, ok, failed) == (0, PER_RUN, 0), "lwdm-sim (%s): rc=%s\n%s\n%s" % (stack, rc, out[-3000:],
                                                                                     err[-2000:])
        results = sim_results(out)
        assert sorted(results) == eps and set(results.values()) == {"ok"}, out[-3000:]
        for line in out.splitlines():
            if line.startswith("ep="):   # the one management server of the settings
                assert "servers=1 " in line and (" %s nosec ssid=1]" % mgmt_uri) in line, line

    all_eps = [ep for _, eps in sims for ep in eps]
    devices = wait_bootstrapped(srv, all_eps)
    assert sorted(devices) == sorted(all_eps)
    for version, fmt, prefix in RUNS:
        want_format = "TLV" if version == "1.0" else WRITE_FORMAT[fmt]
        for ep in endpoints(prefix, PER_RUN):
            d = srv.device_by_endpoint(ep)
            assert d["autoCreated"] is True, d
            assert d["lastBootstrapAt"], d
            lb = d["lastBootstrap"]
            assert lb and lb["status"] == "success", (ep, lb)
            steps = lb["steps"]
            assert steps[0]["op"] == "request" and steps[0]["path"].startswith("/bs?"), (ep, steps)
            assert "ep=%s" % ep in steps[0]["path"], (ep, steps[0])
            assert steps[-1]["op"] == "finish", (ep, steps)
            assert all(s["code"].startswith("2.") for s in steps), (ep, steps)
            writes = [s for s in steps if s["op"] == "write"]
            assert writes and {s.get("format") for s in writes} == {want_format}, (ep, steps)
    log = srv.stderr()
    for ep in all_eps:
        assert re.search(r"ep=%s\b.*event=finished result=success" % re.escape(ep), log), ep
    assert srv.stop() == 0


# ------------------------------------------------------------ 2. Bootstrap-Pack
def cbor_decode(data):
    """A CBOR item (RFC 8949) of definite length: the subset SenML CBOR uses."""
    item, end = _cbor(data, 0)
    assert end == len(data), "%d bytes after the CBOR item" % (len(data) - end)
    return item


def _cbor(b, i):
    ib = b[i]
    major, info = ib >> 5, ib & 31
    i += 1
    if major == 7:
        if info == 20:
            return False, i
        if info == 21:
            return True, i
        if info == 22:
            return None, i
        if info == 25:
            return _half(struct.unpack_from("!H", b, i)[0]), i + 2
        if info == 26:
            return struct.unpack_from("!f", b, i)[0], i + 4
        if info == 27:
            return struct.unpack_from("!d", b, i)[0], i + 8
        raise ValueError("simple value %d" % info)
    if info < 24:
        n = info
    elif info in (24, 25, 26, 27):
        size = 1 << (info - 24)
        n = int.from_bytes(b[i:i + size], "big")
        i += size
    else:
        raise ValueError("indefinite or reserved length %d" % info)
    if major == 0:
        return n, i
    if major == 1:
        return -1 - n, i
    if major == 2:
        return bytes(b[i:i + n]), i + n
    if major == 3:
        return b[i:i + n].decode("utf-8"), i + n
    if major == 4:
        out = []
        for _ in range(n):
            v, i = _cbor(b, i)
            out.append(v)
        return out, i
    if major == 5:
        out = {}
        for _ in range(n):
            k, i = _cbor(b, i)
            out[k], i = _cbor(b, i)
        return out, i
    raise ValueError("tag %d" % n)


def _half(h):
    e, m = (h >> 10) & 31, h & 1023
    v = m * 2.0 ** -24 if e == 0 else (float("inf") if e == 31 else (1024 + m) * 2.0 ** (e - 25))
    return -v if h & 0x8000 else v


SENML_LABELS = {-2: "bn", 0: "n", 2: "v", 3: "vs", 4: "vb", 8: "vd"}


def senml_cbor_values(body):
    """{full name: value} of a SenML CBOR pack (bn inherited)."""
    recs = cbor_decode(body)
    assert isinstance(recs, list), recs
    out, bn = {}, ""
    for rec in recs:
        rec = {SENML_LABELS.get(k, k): v for k, v in rec.items()}
        bn = rec.get("bn", bn)
        values = [rec[k] for k in ("v", "vs", "vb", "vd") if k in rec]
        assert len(values) == 1, rec
        out[bn + rec.get("n", "")] = values[0]
    return out


N_EXTRA = 12   # with the seeded one, a pack of three 1,024-byte blocks


@pytest.mark.parametrize("stack", STACKS)
def test_bspack_blockwise(procs, tmp_path, stack):
    srv = start(procs, tmp_path, stack, "env")
    check_stack(srv, stack)
    seeded = [seeded_server(srv)]
    extra = []
    for i in range(N_EXTRA):
        extra.append(srv.api("POST", "/lwm2m-servers", {
            "name": "pack e2e %d" % i, "type": "management", "ssid": 101 + i,
            "uri": "coap://management-%02d.bootstrap-pack.e2e.example:%d" % (i, 5683 + i),
            "securityMode": "nosec", "lifetime": 600 + i, "binding": "U"}, expect=201).json())
    servers = seeded + extra
    srv.api("PUT", "/bootstrap-settings", {"bootstrapServerId": None,
                                           "managementServerIds": [s["id"] for s in servers],
                                           "acceptUnknownDevices": True}, expect=200)
    ep = "pack-%s-1" % stack
    c = CoapClient(srv.ports["bs_coap"])
    try:
        # no Block2 in the request: the server splits it into 1,024-byte blocks
        answers = c.exchange_block2(GET, "bspack", ["ep=" + ep], accept=112)
        body = check_blocks(answers, 6)
        # the client asks for 64-byte blocks from the first one (RFC 7959 2.4)
        small = c.exchange_block2(GET, "bspack", ["ep=" + ep], accept=112, szx=2)
        assert check_blocks(small, 2) == body
        # a block past the end is no block
        past = c.exchange(request(GET, "bspack", ["ep=" + ep], accept=112,
                                  extra_options=[(OPT_BLOCK2, block_value(len(answers) + 5, False, 6))]))
    finally:
        c.close()
    assert past is not None and past.code >> 5 in (4, 5), past
    if stack == "lwdm":
        assert past.code_str == "4.02" and not past.payload, past    # cudp_response_body
        assert not past.option(OPT_CONTENT_FORMAT), past.options     # an error has no pack format

    print("%s: a pack of %d bytes in %d blocks of 1,024 bytes and %d of 64; past the end: %s"
          % (stack, len(body), len(answers), len(small), past.code_str))
    values = senml_cbor_values(body)
    # every management server of the settings, /0 and /1 instances from 2 on (docs/bootstrap.md)
    by_ssid = {}
    for name, v in values.items():
        m = re.match(r"^/1/(\d+)/0$", name)
        if m:
            by_ssid[v] = int(m.group(1))
    assert sorted(by_ssid) == sorted(s["ssid"] for s in servers), values
    uris = {v for name, v in values.items() if re.match(r"^/0/\d+/0$", name)}
    assert uris == {s["uri"] for s in servers}, (uris, values)
    for s in servers:
        sec = [re.match(r"^/0/(\d+)/0$", n).group(1) for n, v in values.items()
               if re.match(r"^/0/\d+/0$", n) and v == s["uri"]]
        assert len(sec) == 1, (s["uri"], values)
        assert values["/0/%s/10" % sec[0]] == s["ssid"], (s, values)     # Short Server ID
        assert values["/0/%s/1" % sec[0]] is False, (s, values)          # not a bootstrap account
        assert values["/1/%d/1" % by_ssid[s["ssid"]]] == s["lifetime"], (s, values)
    assert min(int(n.split("/")[2]) for n in values if n.startswith("/0/")) == 2, sorted(values)

    d = srv.device_by_endpoint(ep)
    assert d is not None and d["autoCreated"] is True, d
    lb = d["lastBootstrap"]
    assert lb and lb["status"] == "success", lb
    assert [s["op"] for s in lb["steps"]] == ["pack"] and lb["steps"][0]["code"] == "2.05", lb
    assert re.search(r"ep=%s event=pack bytes=%d format=" % (re.escape(ep), len(body)), srv.stderr())
    assert [x["endpoint"] for x in srv.devices()] == [ep]
    assert srv.stop() == 0


def check_blocks(answers, szx):
    """The answers of one block-wise transfer in blocks of 2**(szx+4) bytes: 2.05
    SenML CBOR, Block2 numbers 0, 1, ... with M on all but the last, full blocks but
    the last, Size2 (when given) the whole size; the body, which is more than one
    1,024-byte block."""
    size = 1 << (szx + 4)
    assert answers and answers[-1] is not None, answers
    body = b"".join(a.payload for a in answers)
    assert len(body) > 1024, "the pack (%d bytes) fits one block: nothing block-wise to test" % len(body)
    assert len(answers) == (len(body) + size - 1) // size, (len(body), answers)
    for i, a in enumerate(answers):
        assert a.type == ACK and a.code_str == "2.05", a
        assert [opt_uint(v) for v in a.option(OPT_CONTENT_FORMAT)] == [112], a.options
        blocks = a.option(OPT_BLOCK2)
        assert len(blocks) == 1, a.options
        num, more, got_szx = block_parse(blocks[0])
        last = i == len(answers) - 1
        assert (num, more, got_szx) == (i, not last, szx), (i, a.options)
        assert len(a.payload) == (len(body) - i * size if last else size), (i, len(a.payload))
        size2 = a.option(OPT_SIZE2)
        if i == 0:
            assert [opt_uint(v) for v in size2] == [len(body)], a.options
        else:
            assert all(opt_uint(v) == len(body) for v in size2), a.options
    return body


# ----------------------------------------------------- 3. oversized requests
@pytest.mark.parametrize("stack", STACKS)
def test_oversized_request_stores_nothing(procs, tmp_path, stack):
    srv = start(procs, tmp_path, stack, "flag")
    c = CoapClient(srv.ports["bs_coap"])
    try:
        # exactly 1,152 bytes: an ordinary Bootstrap-Request (its payload ignored)
        reply = c.exchange(oversized_request("size-1152", 1152), timeout=3)
        assert reply is not None and reply.code_str == "2.04", reply
    finally:
        c.close()
    check_stack(srv, stack)      # 1,153 bytes
    assert [d["endpoint"] for d in srv.devices()] == ["size-1152"]
    assert srv.healthz() == 200
    assert srv.stop() == 0
