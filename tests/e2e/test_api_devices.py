"""REST API: /api/v1/devices — fields, validation, uniqueness, write-only
PSKs, PUT/PATCH semantics, paging, delete."""
import json
import re

import pytest

from conftest import assert_problem

BASE = "/api/v1/devices"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def create(api, body):
    r = api.post(BASE, body)
    assert r.status_code == 201, r.text
    return r.json()


def snapshot(api):
    r = api.get(BASE, params={"limit": 1000})
    assert r.status_code == 200
    return r.json()


def psk(identity, key="00112233445566778899aabbccddeeff"):
    return {"securityMode": "psk", "pskIdentity": identity, "psk": key}


def test_create_minimal(api, uniq):
    ep = uniq.name("ep")
    r = api.post(BASE, {"endpoint": ep})
    assert r.status_code == 201, r.text
    d = r.json()
    assert r.headers["Location"] == "%s/%d" % (BASE, d["id"])
    assert d["endpoint"] == ep
    assert d["domain"] == "/"
    assert d["bootstrapCredentials"] == {"securityMode": "nosec", "pskIdentity": None, "pskSet": False}
    assert d["managementCredentials"] == {"securityMode": "nosec", "pskIdentity": None, "pskSet": False}
    assert d["properties"] == {}
    assert d["blacklisted"] is False
    assert d["autoCreated"] is False
    assert ISO.match(d["createdAt"]) and ISO.match(d["updatedAt"])
    assert d["lastBootstrapAt"] is None and d["lastBootstrap"] is None
    assert d["serverCredentials"] == []
    assert api.get(r.headers["Location"]).json() == d


def test_create_full_and_secret_at_rest(server, api, uniq):
    ep = uniq.name("full")
    d = create(api, {"endpoint": ep, "bootstrapCredentials": psk("bs-" + ep, "a1b2c3d4e5f60718"),
                     "managementCredentials": psk("dm-" + ep, "ffeeddccbbaa9988"),
                     "properties": {"serial": "SN-1", "model": "x"}, "blacklisted": True})
    assert d["bootstrapCredentials"] == {"securityMode": "psk", "pskIdentity": "bs-" + ep, "pskSet": True}
    assert d["managementCredentials"] == {"securityMode": "psk", "pskIdentity": "dm-" + ep, "pskSet": True}
    assert "psk" not in d["bootstrapCredentials"]
    assert d["properties"] == {"serial": "SN-1", "model": "x"}
    assert d["blacklisted"] is True
    bs, dm = server.sql("SELECT bs_psk_enc, mgmt_psk_enc FROM devices WHERE id = ?", (d["id"],))[0]
    assert bytes.fromhex("a1b2c3d4e5f60718") not in bs and b"a1b2c3d4e5f60718" not in bs
    assert bytes.fromhex("ffeeddccbbaa9988") not in dm


def test_read_only_state(server, api, uniq):
    d = create(api, {"endpoint": uniq.name("state")})
    steps = [{"step": "discover", "result": "2.05"}, {"step": "finish", "result": "2.04"}]
    server.sql("UPDATE devices SET last_bootstrap_at = 1795600000123, last_bootstrap_status = 'success',"
               " last_bootstrap_steps = ?, auto_created = 1 WHERE id = ?", (json.dumps(steps), d["id"]))
    server.sql("INSERT INTO device_server_credentials (device_id, server_id, security_mode, psk_identity, psk_enc,"
               " created_at, updated_at) SELECT ?, id, 1, 'per-dev', NULL, 0, 0 FROM lwm2m_servers"
               " WHERE name = 'lwdm management (PSK)'", (d["id"],))
    sid = server.sql("SELECT id FROM lwm2m_servers WHERE name = 'lwdm management (PSK)'")[0][0]
    g = api.get("%s/%d" % (BASE, d["id"])).json()
    assert g["lastBootstrapAt"] == "2026-11-25T09:46:40.123Z"
    assert g["lastBootstrap"] == {"status": "success", "steps": steps}
    assert g["autoCreated"] is True
    assert g["serverCredentials"] == [{"serverId": sid, "pskIdentity": "per-dev", "pskSet": False}]
    # read-only fields sent back are ignored
    r = api.put("%s/%d" % (BASE, d["id"]), g)
    assert r.status_code == 200, r.text
    assert r.json()["lastBootstrap"] == g["lastBootstrap"] and r.json()["autoCreated"] is True


@pytest.mark.parametrize("overrides,status,field", [
    ({"endpoint": None}, 422, "endpoint"),
    ({"endpoint": ""}, 422, "endpoint"),
    ({"endpoint": "e" * 129}, 422, "endpoint"),
    ({"endpoint": "new\nline"}, 422, "endpoint"),
    ({"endpoint": 12}, 400, "endpoint"),
    ({"blacklisted": "no"}, 400, "blacklisted"),
    ({"properties": []}, 400, "properties"),
    ({"properties": {"a": 1}}, 400, "properties.a"),
    ({"properties": {"": "x"}}, 422, "properties."),
    ({"bootstrapCredentials": "psk"}, 400, "bootstrapCredentials"),
    ({"bootstrapCredentials": {"securityMode": "cert"}}, 422, "bootstrapCredentials.securityMode"),
    ({"bootstrapCredentials": {"securityMode": "x"}}, 422, "bootstrapCredentials.securityMode"),
    ({"bootstrapCredentials": {"securityMode": 1}}, 400, "bootstrapCredentials.securityMode"),
    ({"bootstrapCredentials": {"securityMode": "psk", "psk": "0011"}}, 422, "bootstrapCredentials.pskIdentity"),
    ({"bootstrapCredentials": {"securityMode": "psk", "pskIdentity": "i"}}, 422, "bootstrapCredentials.psk"),
    ({"bootstrapCredentials": psk("i", "xyz")}, 422, "bootstrapCredentials.psk"),
    ({"bootstrapCredentials": psk("i", "abc")}, 422, "bootstrapCredentials.psk"),
    ({"bootstrapCredentials": psk("i", "")}, 422, "bootstrapCredentials.psk"),
    ({"bootstrapCredentials": psk("i", "00" * 65)}, 422, "bootstrapCredentials.psk"),
    ({"bootstrapCredentials": psk("i", 17)}, 400, "bootstrapCredentials.psk"),
    ({"bootstrapCredentials": psk("", "00")}, 422, "bootstrapCredentials.pskIdentity"),
    ({"bootstrapCredentials": psk("i" * 129, "00")}, 422, "bootstrapCredentials.pskIdentity"),
    ({"bootstrapCredentials": {"securityMode": "nosec", "pskIdentity": "i"}}, 422, "bootstrapCredentials.pskIdentity"),
    ({"bootstrapCredentials": {"securityMode": "nosec", "psk": "00"}}, 422, "bootstrapCredentials.psk"),
    ({"bootstrapCredentials": {"securityMode": "nosec", "extra": 1}}, 400, "bootstrapCredentials.extra"),
    ({"managementCredentials": {"securityMode": "psk", "pskIdentity": "i"}}, 422, "managementCredentials.psk"),
    ({"managementCredentials": psk("i", "0g")}, 422, "managementCredentials.psk"),
    ({"unknown": True}, 400, "unknown"),
])
def test_bad_values(api, uniq, overrides, status, field):
    before = snapshot(api)
    body = {"endpoint": uniq.name("bad")}
    body.update(overrides)
    if body.get("endpoint") is None:
        del body["endpoint"]
    assert_problem(api.post(BASE, body), status, field)
    assert snapshot(api) == before


def test_good_values(api, uniq):
    for ep in ("urn:imei:490154203237518", "urn:dev:ops:32473-Refrigerator-5002", "ünïcødé-" + uniq.name(""),
               "e" * 120 + uniq.name("")[-8:]):
        assert create(api, {"endpoint": ep})["endpoint"] == ep
    d = create(api, {"endpoint": uniq.name("k"), "bootstrapCredentials": psk(uniq.name("id"), "AB" * 64)})
    assert d["bootstrapCredentials"]["pskSet"] is True
    d = create(api, {"endpoint": uniq.name("n"), "bootstrapCredentials": None, "properties": None,
                     "blacklisted": False})
    assert d["properties"] == {} and d["bootstrapCredentials"]["securityMode"] == "nosec"


def test_unique_endpoint_and_identities(api, uniq):
    ep = uniq.name("u")
    a = create(api, {"endpoint": ep, "bootstrapCredentials": psk("bs-" + ep), "managementCredentials": psk("dm-" + ep)})
    before = snapshot(api)
    assert_problem(api.post(BASE, {"endpoint": ep}), 409, "endpoint")
    assert_problem(api.post(BASE, {"endpoint": ep + "x", "bootstrapCredentials": psk("bs-" + ep)}), 409,
                   "bootstrapCredentials.pskIdentity")
    assert_problem(api.post(BASE, {"endpoint": ep + "x", "managementCredentials": psk("dm-" + ep)}), 409,
                   "managementCredentials.pskIdentity")
    assert snapshot(api) == before
    # the same device may use one identity for both ports
    b = create(api, {"endpoint": ep + "y", "bootstrapCredentials": psk("same-" + ep),
                     "managementCredentials": psk("same-" + ep)})
    # updating into a clash is refused too
    assert_problem(api.patch("%s/%d" % (BASE, b["id"]), {"endpoint": ep}), 409, "endpoint")
    assert api.get("%s/%d" % (BASE, a["id"])).json()["endpoint"] == ep


def test_list_paging_and_search(api, uniq):
    tag = uniq.name("Meter")
    ids = [create(api, {"endpoint": "%s-%02d" % (tag, i)})["id"] for i in range(6)]
    page = api.get(BASE, params={"q": tag.lower(), "limit": 4}).json()
    assert page["total"] == 6 and page["limit"] == 4 and page["offset"] == 0
    assert [d["id"] for d in page["items"]] == ids[:4]
    page = api.get(BASE, params={"q": tag, "limit": 4, "offset": 4}).json()
    assert [d["id"] for d in page["items"]] == ids[4:]
    allids = [d["id"] for d in api.get(BASE, params={"limit": 1000}).json()["items"]]
    assert allids == sorted(allids)
    assert_problem(api.get(BASE, params={"limit": "x"}), 400, "limit")
    assert_problem(api.get(BASE, params={"offset": "-2"}), 400, "offset")


def test_put_replaces_and_keeps_secret(api, uniq):
    ep = uniq.name("put")
    d = create(api, {"endpoint": ep, "bootstrapCredentials": psk("p-" + ep), "properties": {"a": "1"},
                     "blacklisted": True})
    url = "%s/%d" % (BASE, d["id"])
    # the PSK is not sent: kept
    t = api.put(url, {"endpoint": ep, "bootstrapCredentials": {"securityMode": "psk", "pskIdentity": "p-" + ep}}).json()
    assert t["bootstrapCredentials"]["pskSet"] is True
    assert t["properties"] == {} and t["blacklisted"] is False  # replaced
    # null clears -> psk mode then lacks a key
    assert_problem(api.put(url, {"endpoint": ep, "bootstrapCredentials": psk("p-" + ep, None)}), 422,
                   "bootstrapCredentials.psk")
    assert api.get(url).json() == t
    # switching to nosec drops the stored key and identity
    t = api.put(url, {"endpoint": ep, "bootstrapCredentials": {"securityMode": "nosec"}}).json()
    assert t["bootstrapCredentials"] == {"securityMode": "nosec", "pskIdentity": None, "pskSet": False}
    assert_problem(api.put(BASE + "/987654321", {"endpoint": "x"}), 404)


def test_patch(api, uniq):
    ep = uniq.name("patch")
    d = create(api, {"endpoint": ep, "managementCredentials": psk("m-" + ep), "properties": {"a": "1", "b": "2"}})
    url = "%s/%d" % (BASE, d["id"])
    t = api.patch(url, {"blacklisted": True, "properties": {"b": None, "c": "3"}}).json()
    assert t["blacklisted"] is True and t["properties"] == {"a": "1", "c": "3"}
    assert t["managementCredentials"]["pskSet"] is True
    t = api.patch(url, {"managementCredentials": {"psk": "0102"}}).json()
    assert t["managementCredentials"]["pskSet"] is True
    assert_problem(api.patch(url, {"managementCredentials": {"psk": None}}), 422, "managementCredentials.psk")
    # inherited credentials are dropped when the mode becomes nosec
    t = api.patch(url, {"managementCredentials": {"securityMode": "nosec"}}).json()
    assert t["managementCredentials"] == {"securityMode": "nosec", "pskIdentity": None, "pskSet": False}
    assert_problem(api.patch(url, {"managementCredentials": {"pskIdentity": "x"}}), 422,
                   "managementCredentials.pskIdentity")
    t2 = api.patch(url, {"managementCredentials": None}).json()
    assert t2["managementCredentials"]["securityMode"] == "nosec"
    assert_problem(api.patch(BASE + "/987654321", {"blacklisted": True}), 404)


@pytest.mark.parametrize("patch,status,field", [
    ({"endpoint": None}, 422, "endpoint"),
    ({"endpoint": 5}, 400, "endpoint"),
    ({"properties": {"x": 5}}, 400, "properties.x"),
    ({"bootstrapCredentials": {"securityMode": "psk"}}, 422, "bootstrapCredentials.pskIdentity"),
    ({"nope": 1}, 400, "nope"),
])
def test_patch_rejected_changes_nothing(api, uniq, patch, status, field):
    d = create(api, {"endpoint": uniq.name("rej"), "properties": {"k": "v"}})
    url = "%s/%d" % (BASE, d["id"])
    before = api.get(url).json()
    assert_problem(api.patch(url, patch), status, field)
    assert api.get(url).json() == before


@pytest.mark.parametrize("data", [b"{", b"[]", b"", b"1"])
def test_malformed_bodies(api, uniq, data):
    d = create(api, {"endpoint": uniq.name("mal")})
    before = snapshot(api)
    for method, url in (("POST", BASE), ("PUT", "%s/%d" % (BASE, d["id"])), ("PATCH", "%s/%d" % (BASE, d["id"]))):
        assert_problem(api.request(method, url, data=data), 400)
    assert snapshot(api) == before


def test_delete(server, api, uniq):
    d = create(api, {"endpoint": uniq.name("del")})
    url = "%s/%d" % (BASE, d["id"])
    r = api.delete(url)
    assert r.status_code == 204 and r.content == b""
    assert_problem(api.get(url), 404)
    assert_problem(api.delete(url), 404)
    assert server.sql("SELECT count(*) FROM devices WHERE id = ?", (d["id"],))[0][0] == 0


def test_requires_auth(anon):
    assert_problem(anon.post(BASE, {"endpoint": "x"}), 401)
    assert_problem(anon.delete(BASE + "/1"), 401)


def test_concurrent_writes(server, api, uniq):
    """Several HTTP workers write at once: every request succeeds (each
    worker has its own connection; writes serialise on BEGIN IMMEDIATE)."""
    import concurrent.futures

    from conftest import Api
    tag = uniq.name("conc")

    def one(i):
        a = Api(server.base, api.s.headers["Authorization"][7:])
        r = a.post(BASE, {"endpoint": "%s-%03d" % (tag, i), "bootstrapCredentials": psk("%s-id-%03d" % (tag, i))})
        return r.status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as ex:
        codes = list(ex.map(one, range(64)))
    assert codes == [201] * 64
    assert api.get(BASE, params={"q": tag}).json()["total"] == 64
