"""REST API: /api/v1/lwm2m-servers — every field, validation, URI rules,
PUT/PATCH semantics, secrets, paging, delete with dependents."""
import base64
import re

import pytest

from conftest import assert_problem

BASE = "/api/v1/lwm2m-servers"
DER = base64.b64encode(bytes([0x30, 0x03, 0x02, 0x01, 0x05])).decode()
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SEEDED = {"lwdm management (NoSec)", "lwdm management (PSK)", "lwdm bootstrap (NoSec)", "lwdm bootstrap (PSK)"}


def mgmt(uniq, **kw):
    body = {"name": uniq.name("srv"), "ssid": uniq.ssid(), "uri": "dm.example.com"}
    body.update(kw)
    return body


def create(api, body):
    r = api.post(BASE, body)
    assert r.status_code == 201, r.text
    return r.json()


def snapshot(api):
    """Every server, for "a rejected request changes nothing"."""
    r = api.get(BASE, params={"limit": 1000})
    assert r.status_code == 200
    return r.json()


# --------------------------------------------------------------- creating
def test_create_minimal_defaults(api, uniq):
    body = mgmt(uniq)
    r = api.post(BASE, body)
    assert r.status_code == 201, r.text
    s = r.json()
    assert r.headers["Location"] == "%s/%d" % (BASE, s["id"])
    assert s["name"] == body["name"]
    assert s["type"] == "management"
    assert s["transport"] == "udp"
    assert s["ssid"] == body["ssid"]
    assert s["uri"] == "coap://dm.example.com:5683"
    assert s["clientHoldOffTime"] is None
    assert s["bootstrapAccountTimeout"] is None
    assert s["binding"] == "U"
    assert s["lifetime"] == 86400
    assert s["storeNotifications"] is False
    assert s["securityMode"] == "nosec"
    assert s["pskIdentity"] is None
    assert s["pskSet"] is False
    assert "psk" not in s
    assert s["serverCertificate"] is None
    assert s["sms"] == {"enabled": False, "number": None, "securityMode": None}
    assert s["configureDeviceOnTargetServer"] is False
    assert s["provisionCredentials"] is None
    assert s["domain"] == "/"
    assert ISO.match(s["createdAt"]) and ISO.match(s["updatedAt"])
    assert api.get(r.headers["Location"]).json() == s


def test_create_every_field(api, uniq):
    body = {
        "name": uniq.name("full"),
        "type": "management",
        "transport": "udp",
        "ssid": uniq.ssid(),
        "uri": "coaps://dm.example.com:6000",
        "clientHoldOffTime": 10,
        "bootstrapAccountTimeout": 60,
        "binding": "UQS",
        "lifetime": 3600,
        "storeNotifications": True,
        "securityMode": "psk",
        "pskIdentity": "identity-1",
        "psk": "my secret key",
        "sms": {"enabled": True, "number": "+48123456789", "securityMode": "securePacket"},
        "configureDeviceOnTargetServer": True,
        "provisionCredentials": {"apiUri": "https://dm.example.com/api", "user": "api", "password": "pw-123"},
    }
    s = create(api, body)
    for k in ("name", "type", "transport", "ssid", "uri", "clientHoldOffTime", "bootstrapAccountTimeout",
              "binding", "lifetime", "storeNotifications", "securityMode", "pskIdentity", "sms",
              "configureDeviceOnTargetServer"):
        assert s[k] == body[k], k
    assert s["pskSet"] is True
    assert "psk" not in s  # write-only
    assert s["provisionCredentials"] == {"apiUri": "https://dm.example.com/api", "user": "api", "passwordSet": True}


def test_secrets_encrypted_at_rest(server, api, uniq):
    s = create(api, mgmt(uniq, securityMode="psk", uri="dm.example.com", psk="plain-text-psk-4711",
                         provisionCredentials={"apiUri": "http://x.example", "user": "u", "password": "pw-0815-xyz"}))
    psk, pw = server.sql("SELECT psk_enc, prov_password_enc FROM lwm2m_servers WHERE id = ?", (s["id"],))[0]
    assert isinstance(psk, bytes) and b"plain-text-psk-4711" not in psk and len(psk) >= 24 + 16 + 19
    assert isinstance(pw, bytes) and b"pw-0815-xyz" not in pw


def test_expression_psk_is_shown(api, uniq):
    s = create(api, mgmt(uniq, securityMode="psk", psk="${string.secureRandom(16)}"))
    assert s["psk"] == "${string.secureRandom(16)}"
    assert s["pskSet"] is True
    assert s["pskIdentity"] is None  # per device: the endpoint name


@pytest.mark.parametrize("field,value", [
    ("name", "x"),
    ("name", "n" * 128),
    ("name", "Serwer źródłowy ✓"),
    ("type", "bootstrap"),
    ("transport", "tcp"),
    ("ssid", 65534),
    ("clientHoldOffTime", 0),
    ("clientHoldOffTime", None),
    ("bootstrapAccountTimeout", 0),
    ("bootstrapAccountTimeout", 2147483647),
    ("binding", "U"), ("binding", "UQ"), ("binding", "S"), ("binding", "SQ"), ("binding", "US"), ("binding", "UQS"),
    ("lifetime", 1),
    ("lifetime", 2147483647),
    ("storeNotifications", True),
    ("storeNotifications", False),
    ("sms", None),
    ("sms", {"enabled": False}),
    ("sms", {"enabled": False, "number": "123", "securityMode": "nosec"}),
    ("configureDeviceOnTargetServer", False),
    ("provisionCredentials", None),
    ("provisionCredentials", {"apiUri": "http://10.0.0.1:8080/api", "user": "u", "password": "p"}),
])
def test_good_values(api, uniq, field, value):
    body = mgmt(uniq)
    if field == "name":
        body["name"] = value if value != "x" else "x" + uniq.name("")
        if value == "n" * 128:
            body["name"] = (uniq.name("") + "n" * 128)[:128]
    else:
        body[field] = value
    s = create(api, body)
    if field not in ("name", "sms", "provisionCredentials"):
        assert s[field] == value
    assert len(s["name"]) <= 128


def test_good_security_modes(api, uniq):
    s = create(api, mgmt(uniq, securityMode="psk", psk="k", pskIdentity="${device.endpoint}"))
    assert s["pskIdentity"] == "${device.endpoint}"
    s = create(api, mgmt(uniq, securityMode="cert", serverCertificate=DER))
    assert s["serverCertificate"] == DER and s["uri"].startswith("coaps://")
    s = create(api, mgmt(uniq, securityMode="certEst", serverCertificate=DER))
    assert s["securityMode"] == "certEst"
    s = create(api, {"name": uniq.name("bs"), "type": "bootstrap", "uri": "bs.example.com"})
    assert s["ssid"] is None and s["uri"] == "coap://bs.example.com:5693"
    s = create(api, mgmt(uniq, binding="US", sms={"enabled": True, "number": "48123", "securityMode": "dtls"}))
    assert s["sms"] == {"enabled": True, "number": "48123", "securityMode": "dtls"}


def test_certificate_with_newlines(api, uniq):
    wrapped = DER[:4] + "\n" + DER[4:]
    s = create(api, mgmt(uniq, securityMode="cert", serverCertificate=wrapped))
    assert s["serverCertificate"] == DER


# --------------------------------------------------------------- validation
BIG_CERT = base64.b64encode(bytes([0x30]) + b"\x00" * (16 * 1024)).decode()
NOT_DER = base64.b64encode(b"abc").decode()

BAD = [
    # (overrides, status, field)
    ({"name": None}, 422, "name"),
    ({"name": ""}, 422, "name"),
    ({"name": "n" * 129}, 422, "name"),
    ({"name": "tab\there"}, 422, "name"),
    ({"name": 5}, 400, "name"),
    ({"type": "foo"}, 422, "type"),
    ({"type": 1}, 400, "type"),
    ({"transport": "sctp"}, 422, "transport"),
    ({"transport": True}, 400, "transport"),
    ({"ssid": 0}, 422, "ssid"),
    ({"ssid": 65535}, 422, "ssid"),
    ({"ssid": -1}, 422, "ssid"),
    ({"ssid": "7"}, 400, "ssid"),
    ({"ssid": 7.5}, 400, "ssid"),
    ({"ssid": None}, 422, "ssid"),
    ({"uri": None}, 422, "uri"),
    ({"uri": ""}, 422, "uri"),
    ({"uri": 5}, 400, "uri"),
    ({"uri": "http://example.com"}, 422, "uri"),
    ({"uri": "coaps://example.com"}, 422, "uri"),
    ({"uri": "coap+tcp://example.com"}, 422, "uri"),
    ({"uri": "example.com:0"}, 422, "uri"),
    ({"uri": "example.com:70000"}, 422, "uri"),
    ({"uri": "example.com:port"}, 422, "uri"),
    ({"uri": "example.com/path"}, 422, "uri"),
    ({"uri": "example.com?q=1"}, 422, "uri"),
    ({"uri": "user@example.com"}, 422, "uri"),
    ({"uri": "bad host"}, 422, "uri"),
    ({"uri": "bad_h*st"}, 422, "uri"),
    ({"uri": "[2001:db8::1"}, 422, "uri"),
    ({"uri": "[not:v6]"}, 422, "uri"),
    ({"uri": "[::1]x"}, 422, "uri"),
    ({"clientHoldOffTime": -1}, 422, "clientHoldOffTime"),
    ({"clientHoldOffTime": "5"}, 400, "clientHoldOffTime"),
    ({"clientHoldOffTime": 2147483648}, 422, "clientHoldOffTime"),
    ({"bootstrapAccountTimeout": -1}, 422, "bootstrapAccountTimeout"),
    ({"bootstrapAccountTimeout": 1.5}, 400, "bootstrapAccountTimeout"),
    ({"binding": "X"}, 422, "binding"),
    ({"binding": "u"}, 422, "binding"),
    ({"binding": "T"}, 422, "binding"),
    ({"binding": ["U"]}, 400, "binding"),
    ({"lifetime": 0}, 422, "lifetime"),
    ({"lifetime": -5}, 422, "lifetime"),
    ({"lifetime": "86400"}, 400, "lifetime"),
    ({"lifetime": 86400.5}, 400, "lifetime"),
    ({"storeNotifications": "yes"}, 400, "storeNotifications"),
    ({"storeNotifications": 1}, 400, "storeNotifications"),
    ({"securityMode": "PSK"}, 422, "securityMode"),
    ({"securityMode": "rpk"}, 422, "securityMode"),
    ({"securityMode": 1}, 400, "securityMode"),
    # credentials and the security mode
    ({"pskIdentity": "id"}, 422, "pskIdentity"),                       # nosec
    ({"psk": "k"}, 422, "psk"),                                        # nosec
    ({"serverCertificate": DER}, 422, "serverCertificate"),            # nosec
    ({"securityMode": "psk", "uri": "example.com"}, 422, "psk"),       # missing
    ({"securityMode": "psk", "psk": ""}, 422, "psk"),
    ({"securityMode": "psk", "psk": 5}, 400, "psk"),
    ({"securityMode": "psk", "psk": "k" * 257}, 422, "psk"),
    ({"securityMode": "psk", "psk": "${string.secureRandom(16"}, 422, "psk"),
    ({"securityMode": "psk", "psk": "${string.noSuchFunction(1)}"}, 422, "psk"),
    ({"securityMode": "psk", "psk": "k", "pskIdentity": ""}, 422, "pskIdentity"),
    ({"securityMode": "psk", "psk": "k", "pskIdentity": "i" * 129}, 422, "pskIdentity"),
    ({"securityMode": "psk", "psk": "k", "pskIdentity": 7}, 400, "pskIdentity"),
    ({"securityMode": "psk", "psk": "k", "pskIdentity": "${"}, 422, "pskIdentity"),
    ({"securityMode": "psk", "psk": "k", "serverCertificate": DER}, 422, "serverCertificate"),
    ({"securityMode": "cert"}, 422, "serverCertificate"),
    ({"securityMode": "certEst"}, 422, "serverCertificate"),
    ({"securityMode": "cert", "serverCertificate": "!!!"}, 422, "serverCertificate"),
    ({"securityMode": "cert", "serverCertificate": NOT_DER}, 422, "serverCertificate"),
    ({"securityMode": "cert", "serverCertificate": BIG_CERT}, 422, "serverCertificate"),
    ({"securityMode": "cert", "serverCertificate": 5}, 400, "serverCertificate"),
    ({"securityMode": "cert", "serverCertificate": DER, "psk": "k"}, 422, "psk"),
    ({"securityMode": "cert", "serverCertificate": DER, "pskIdentity": "i"}, 422, "pskIdentity"),
    # sms
    ({"sms": "yes"}, 400, "sms"),
    ({"sms": {"enabled": True, "number": "+48123456"}}, 422, "sms.enabled"),  # binding U
    ({"binding": "S", "sms": {"enabled": True}}, 422, "sms.number"),
    ({"binding": "S", "sms": {"enabled": True, "number": "abc"}}, 422, "sms.number"),
    ({"binding": "S", "sms": {"enabled": True, "number": "12"}}, 422, "sms.number"),
    ({"binding": "S", "sms": {"enabled": True, "number": "1" * 21}}, 422, "sms.number"),
    ({"binding": "S", "sms": {"enabled": True, "number": 48123456}}, 400, "sms.number"),
    ({"binding": "S", "sms": {"enabled": "true", "number": "48123456"}}, 400, "sms.enabled"),
    ({"binding": "S", "sms": {"enabled": True, "number": "48123", "securityMode": "tls"}}, 422, "sms.securityMode"),
    ({"binding": "S", "sms": {"enabled": True, "number": "48123", "extra": 1}}, 400, "sms.extra"),
    # target server
    ({"configureDeviceOnTargetServer": "no"}, 400, "configureDeviceOnTargetServer"),
    ({"configureDeviceOnTargetServer": True}, 422, "provisionCredentials"),
    ({"provisionCredentials": "x"}, 400, "provisionCredentials"),
    ({"provisionCredentials": {"apiUri": "ftp://x", "user": "u", "password": "p"}}, 422, "provisionCredentials.apiUri"),
    ({"provisionCredentials": {"apiUri": "https://", "user": "u", "password": "p"}}, 422, "provisionCredentials.apiUri"),
    ({"provisionCredentials": {"user": "u", "password": "p"}}, 422, "provisionCredentials.apiUri"),
    ({"provisionCredentials": {"apiUri": "http://x", "password": "p"}}, 422, "provisionCredentials.user"),
    ({"provisionCredentials": {"apiUri": "http://x", "user": "u"}}, 422, "provisionCredentials.password"),
    ({"provisionCredentials": {"apiUri": "http://x", "user": "", "password": "p"}}, 422, "provisionCredentials.user"),
    ({"provisionCredentials": {"apiUri": "http://x", "user": "u", "password": 1}}, 400, "provisionCredentials.password"),
    ({"provisionCredentials": {"apiUri": "http://x", "user": "u", "password": "p", "x": 1}}, 400,
     "provisionCredentials.x"),
    ({"configureDeviceOnTargetServer": True, "provisionCredentials": {"apiUri": "http://x", "user": "u"}}, 422,
     "provisionCredentials.password"),
    # unknown field
    ({"foo": 1}, 400, "foo"),
]


@pytest.mark.parametrize("overrides,status,field", BAD)
def test_bad_values(api, uniq, overrides, status, field):
    before = snapshot(api)
    body = mgmt(uniq, **overrides)
    body = {k: v for k, v in body.items() if not (v is None and k in ("name", "ssid", "uri"))}
    r = api.post(BASE, body)
    assert_problem(r, status, field)
    assert snapshot(api) == before


def test_missing_ssid_ok_for_bootstrap(api, uniq):
    create(api, {"name": uniq.name("bs"), "type": "bootstrap", "uri": "bs.example.com"})


def test_duplicate_name_conflict(api, uniq):
    s = create(api, mgmt(uniq))
    before = snapshot(api)
    r = api.post(BASE, mgmt(uniq, name=s["name"]))
    assert_problem(r, 409, "name")
    assert snapshot(api) == before


def test_duplicate_ssid(api, uniq):
    s = create(api, mgmt(uniq))
    r = api.post(BASE, mgmt(uniq, ssid=s["ssid"]))
    body = assert_problem(r, 422, "ssid")
    assert s["name"] in body["errors"][0]["message"]
    # also against the seeded entries
    assert_problem(api.post(BASE, mgmt(uniq, ssid=1)), 422, "ssid")


def test_seeded_entries_present(api):
    names = {s["name"] for s in snapshot(api)["items"]}
    assert SEEDED <= names


# -------------------------------------------------------------- URI rules
URIS = [
    # (uri, securityMode, type, transport, expected)
    ("example.com", "nosec", "management", "udp", "coap://example.com:5683"),
    ("example.com", "psk", "management", "udp", "coaps://example.com:5684"),
    ("example.com", "nosec", "bootstrap", "udp", "coap://example.com:5693"),
    ("example.com", "psk", "bootstrap", "udp", "coaps://example.com:5694"),
    ("example.com", "nosec", "management", "tcp", "coap+tcp://example.com:5683"),
    ("example.com", "psk", "management", "tcp", "coaps+tcp://example.com:5684"),
    ("example.com", "cert", "management", "udp", "coaps://example.com:5684"),
    ("example.com", "certEst", "bootstrap", "tcp", "coaps+tcp://example.com:5694"),
    ("example.com:1234", "psk", "management", "udp", "coaps://example.com:1234"),
    ("coaps://example.com", "psk", "management", "udp", "coaps://example.com:5684"),
    ("COAPS://example.com:99", "psk", "management", "udp", "coaps://example.com:99"),
    ("coap://example.com/", "nosec", "management", "udp", "coap://example.com:5683"),
    ("coap+tcp://example.com", "nosec", "bootstrap", "tcp", "coap+tcp://example.com:5693"),
    ("10.1.2.3", "nosec", "management", "udp", "coap://10.1.2.3:5683"),
    ("[2001:db8::1]", "nosec", "management", "udp", "coap://[2001:db8::1]:5683"),
    ("[2001:db8::1]:7000", "psk", "management", "udp", "coaps://[2001:db8::1]:7000"),
    ("2001:db8::1", "nosec", "management", "udp", "coap://[2001:db8::1]:5683"),
    ("coap://[::1]", "nosec", "bootstrap", "udp", "coap://[::1]:5693"),
    ("coaps+tcp://[::ffff:10.0.0.1]:1", "psk", "management", "tcp", "coaps+tcp://[::ffff:10.0.0.1]:1"),
]


@pytest.mark.parametrize("uri,mode,typ,transport,expected", URIS)
def test_uri_normalisation(api, uniq, uri, mode, typ, transport, expected):
    body = {"name": uniq.name("uri"), "type": typ, "transport": transport, "securityMode": mode, "uri": uri}
    if typ == "management":
        body["ssid"] = uniq.ssid()
    if mode == "psk":
        body["psk"] = "k"
    if mode in ("cert", "certEst"):
        body["serverCertificate"] = DER
    assert create(api, body)["uri"] == expected


@pytest.mark.parametrize("uri,mode,transport", [
    ("coap://example.com", "psk", "udp"),
    ("coaps://example.com", "nosec", "udp"),
    ("coap://example.com", "nosec", "tcp"),
    ("coaps+tcp://example.com", "psk", "udp"),
    ("coap+tcp://example.com", "psk", "tcp"),
])
def test_uri_scheme_contradicts_mode(api, uniq, uri, mode, transport):
    body = mgmt(uniq, uri=uri, securityMode=mode, transport=transport)
    if mode == "psk":
        body["psk"] = "k"
    body = assert_problem(api.post(BASE, body), 422, "uri")
    assert "scheme" in body["errors"][0]["message"]


# ---------------------------------------------------------- get / list
def test_get_not_found(api):
    assert_problem(api.get(BASE + "/987654321"), 404)


def test_list_paging_and_search(api, uniq):
    tag = uniq.name("Paging")
    ids = [create(api, mgmt(uniq, name="%s-%02d" % (tag, i)))["id"] for i in range(7)]
    r = api.get(BASE, params={"q": tag.upper(), "limit": 3})
    assert r.status_code == 200
    page = r.json()
    assert page["total"] == 7 and page["limit"] == 3 and page["offset"] == 0
    assert [s["id"] for s in page["items"]] == ids[:3]
    page = api.get(BASE, params={"q": tag, "limit": 3, "offset": 6}).json()
    assert [s["id"] for s in page["items"]] == ids[6:]
    assert page["total"] == 7
    page = api.get(BASE, params={"q": tag, "offset": 100}).json()
    assert page["items"] == [] and page["total"] == 7
    # default limit, stable sort by id over everything
    page = api.get(BASE).json()
    assert page["limit"] == 50
    allids = [s["id"] for s in api.get(BASE, params={"limit": 1000}).json()["items"]]
    assert allids == sorted(allids)
    assert api.get(BASE, params={"limit": 5000}).json()["limit"] == 1000


def test_list_search_uri_and_identity(api, uniq):
    host = uniq.name("host").lower() + ".example.org"
    a = create(api, mgmt(uniq, uri=host))
    b = create(api, mgmt(uniq, securityMode="psk", psk="k", pskIdentity="ID-" + host))
    found = [s["id"] for s in api.get(BASE, params={"q": host}).json()["items"]]
    assert found == [a["id"], b["id"]]


@pytest.mark.parametrize("params,field", [
    ({"limit": 0}, "limit"), ({"limit": -1}, "limit"), ({"limit": "abc"}, "limit"),
    ({"offset": -1}, "offset"), ({"offset": "x"}, "offset"),
])
def test_list_bad_paging(api, params, field):
    assert_problem(api.get(BASE, params=params), 400, field)


# ----------------------------------------------------------- PUT / PATCH
def test_put_replaces(api, uniq):
    s = create(api, mgmt(uniq, clientHoldOffTime=5, lifetime=60, storeNotifications=True))
    r = api.put("%s/%d" % (BASE, s["id"]), {"name": s["name"], "ssid": s["ssid"], "uri": "other.example.com"})
    assert r.status_code == 200, r.text
    t = r.json()
    assert t["clientHoldOffTime"] is None and t["lifetime"] == 86400 and t["storeNotifications"] is False
    assert t["uri"] == "coap://other.example.com:5683"
    assert t["id"] == s["id"] and t["createdAt"] == s["createdAt"]
    assert api.get("%s/%d" % (BASE, s["id"])).json() == t


def test_put_get_roundtrip(api, uniq):
    s = create(api, mgmt(uniq, securityMode="psk", psk="k", pskIdentity="pid",
                         provisionCredentials={"apiUri": "http://x", "user": "u", "password": "p"}))
    r = api.put("%s/%d" % (BASE, s["id"]), s)  # read-only fields are ignored
    assert r.status_code == 200, r.text
    t = r.json()
    assert t["pskSet"] is True and t["provisionCredentials"]["passwordSet"] is True
    assert {k: v for k, v in t.items() if k != "updatedAt"} == {k: v for k, v in s.items() if k != "updatedAt"}


def test_put_secret_keep_and_clear(api, uniq):
    s = create(api, mgmt(uniq, securityMode="psk", psk="k1"))
    url = "%s/%d" % (BASE, s["id"])
    body = {"name": s["name"], "ssid": s["ssid"], "uri": s["uri"], "securityMode": "psk"}
    assert api.put(url, body).json()["pskSet"] is True                 # absent: kept
    assert_problem(api.put(url, dict(body, psk=None)), 422, "psk")    # null: cleared -> required
    assert api.get(url).json()["pskSet"] is True                       # the rejected PUT changed nothing
    assert api.put(url, dict(body, psk="k2")).json()["pskSet"] is True
    # switching to nosec drops the stored PSK (not sent), but refuses a sent one
    assert_problem(api.put(url, dict(body, securityMode="nosec", uri="coap://x.example", psk="k")), 422, "psk")
    t = api.put(url, dict(body, securityMode="nosec", uri="x.example")).json()
    assert t["pskSet"] is False and t["securityMode"] == "nosec"


def test_put_not_found(api, uniq):
    assert_problem(api.put(BASE + "/987654321", mgmt(uniq)), 404)


def test_patch_merge(api, uniq):
    s = create(api, mgmt(uniq, lifetime=60, clientHoldOffTime=5, binding="UQ"))
    url = "%s/%d" % (BASE, s["id"])
    r = api.patch(url, {"lifetime": 120, "clientHoldOffTime": None}, headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    t = r.json()
    assert t["lifetime"] == 120 and t["clientHoldOffTime"] is None and t["binding"] == "UQ"
    assert t["name"] == s["name"] and t["ssid"] == s["ssid"]
    # nested merge: sms
    t = api.patch(url, {"binding": "US", "sms": {"enabled": True, "number": "+4912345"}}).json()
    assert t["sms"] == {"enabled": True, "number": "+4912345", "securityMode": None}
    t = api.patch(url, {"sms": {"securityMode": "nosec"}}).json()
    assert t["sms"] == {"enabled": True, "number": "+4912345", "securityMode": "nosec"}
    # the same ssid as before is not a conflict with itself
    assert api.patch(url, {"ssid": s["ssid"]}).status_code == 200


def test_patch_secrets(api, uniq):
    s = create(api, mgmt(uniq, securityMode="psk", psk="k1", pskIdentity="pid",
                         configureDeviceOnTargetServer=True,
                         provisionCredentials={"apiUri": "http://x", "user": "u", "password": "p"}))
    url = "%s/%d" % (BASE, s["id"])
    t = api.patch(url, {"lifetime": 99}).json()
    assert t["pskSet"] is True and t["provisionCredentials"]["passwordSet"] is True
    t = api.patch(url, {"provisionCredentials": {"user": "u2"}}).json()
    assert t["provisionCredentials"] == {"apiUri": "http://x", "user": "u2", "passwordSet": True}
    # null clears: the password is then missing -> 422, nothing changes
    assert_problem(api.patch(url, {"provisionCredentials": {"password": None}}), 422, "provisionCredentials.password")
    assert_problem(api.patch(url, {"psk": None}), 422, "psk")
    assert api.get(url).json() == t
    # turning the feature off clears the whole block, password included
    t = api.patch(url, {"configureDeviceOnTargetServer": False, "provisionCredentials": None}).json()
    assert t["provisionCredentials"] is None
    t = api.patch(url, {"provisionCredentials": {"apiUri": "http://y", "user": "v"}})
    assert_problem(t, 422, "provisionCredentials.password")  # the old password was cleared
    # mode change: inherited PSK fields are dropped, the URI must follow
    assert_problem(api.patch(url, {"securityMode": "nosec"}), 422, "uri")
    t = api.patch(url, {"securityMode": "nosec", "uri": "x.example"}).json()
    assert t["pskSet"] is False and t["pskIdentity"] is None and t["uri"] == "coap://x.example:5683"
    # sent PSK fields with nosec are refused
    assert_problem(api.patch(url, {"pskIdentity": "again"}), 422, "pskIdentity")


def test_patch_expression_psk_roundtrip(api, uniq):
    s = create(api, mgmt(uniq, securityMode="psk", psk="${string.secureRandom(8)}"))
    url = "%s/%d" % (BASE, s["id"])
    t = api.patch(url, {"lifetime": 5}).json()
    assert t["psk"] == "${string.secureRandom(8)}"
    t = api.patch(url, {"psk": "literal"}).json()
    assert "psk" not in t and t["pskSet"] is True


@pytest.mark.parametrize("patch,status,field", [
    ({"lifetime": "x"}, 400, "lifetime"),
    ({"lifetime": 0}, 422, "lifetime"),
    ({"foo": 1}, 400, "foo"),
    ({"name": None}, 422, "name"),
    ({"uri": "http://bad"}, 422, "uri"),
    ({"sms": {"enabled": True, "number": "123"}}, 422, "sms.enabled"),
])
def test_patch_rejected_changes_nothing(api, uniq, patch, status, field):
    s = create(api, mgmt(uniq))
    url = "%s/%d" % (BASE, s["id"])
    before = api.get(url).json()
    assert_problem(api.patch(url, patch), status, field)
    assert api.get(url).json() == before


def test_patch_name_conflict(api, uniq):
    a = create(api, mgmt(uniq))
    b = create(api, mgmt(uniq))
    assert_problem(api.patch("%s/%d" % (BASE, b["id"]), {"name": a["name"]}), 409, "name")
    assert_problem(api.patch("%s/%d" % (BASE, b["id"]), {"ssid": a["ssid"]}), 422, "ssid")


@pytest.mark.parametrize("data", [b"{", b"[]", b"", b"null", b"{\"a\":1,\"a\":2}"])
def test_malformed_bodies(api, uniq, data):
    s = create(api, mgmt(uniq))
    before = snapshot(api)
    for method, url in (("POST", BASE), ("PUT", "%s/%d" % (BASE, s["id"])), ("PATCH", "%s/%d" % (BASE, s["id"]))):
        r = api.request(method, url, data=data, headers={"Content-Type": "application/json"})
        assert_problem(r, 400)
    assert snapshot(api) == before


def test_patch_not_found(api):
    assert_problem(api.patch(BASE + "/987654321", {"lifetime": 5}), 404)


# ------------------------------------------------------------------ delete
def test_delete_dry_run_and_dependents(server, api, uniq):
    s = create(api, mgmt(uniq))
    other = create(api, mgmt(uniq))
    sid, oid = s["id"], other["id"]
    gname = uniq.name("grp")
    server.sql("INSERT INTO groups (domain, name, created_at, updated_at) VALUES ('/', ?, 0, 0)", (gname,))
    gid = server.sql("SELECT id FROM groups WHERE name = ?", (gname,))[0][0]
    server.sql("INSERT INTO tasks (domain, group_id, name, config_xml, created_at, updated_at)"
               " VALUES ('/', ?, 'uses the server', '<task/>', 0, 0)", (gid,))
    tid = server.sql("SELECT max(id) FROM tasks")[0][0]
    server.sql("INSERT INTO tasks (domain, group_id, name, created_at, updated_at) VALUES ('/', ?, 'other', 0, 0)", (gid,))
    tother = server.sql("SELECT max(id) FROM tasks")[0][0]
    server.sql("INSERT INTO task_server_refs (task_id, server_id) VALUES (?, ?), (?, ?)", (tid, sid, tother, oid))
    tplname = uniq.name("tpl")
    server.sql("INSERT INTO task_templates (domain, name, created_at, updated_at) VALUES ('/', ?, 0, 0)", (tplname,))
    tpl = server.sql("SELECT id FROM task_templates WHERE name = ?", (tplname,))[0][0]
    server.sql("INSERT INTO task_template_server_refs (template_id, server_id) VALUES (?, ?)", (tpl, sid))
    url = "%s/%d" % (BASE, sid)

    r = api.delete(url, params={"dryRun": "true"})
    assert r.status_code == 200, r.text
    expected = {"tasks": [{"id": tid, "name": "uses the server", "groupId": gid, "deviceId": None}],
                "taskTemplates": [{"id": tpl, "name": tplname}]}
    assert r.json() == {"dryRun": True, "deleted": expected}
    assert api.get(url).status_code == 200
    assert server.sql("SELECT count(*) FROM tasks WHERE id = ?", (tid,))[0][0] == 1

    assert_problem(api.delete(url, params={"dryRun": "maybe"}), 400, "dryRun")
    assert api.get(url).status_code == 200

    r = api.delete(url)
    assert r.status_code == 200, r.text
    assert r.json() == {"dryRun": False, "deleted": expected}
    assert_problem(api.get(url), 404)
    assert server.sql("SELECT count(*) FROM tasks WHERE id = ?", (tid,))[0][0] == 0
    assert server.sql("SELECT count(*) FROM task_templates WHERE id = ?", (tpl,))[0][0] == 0
    assert server.sql("SELECT count(*) FROM tasks WHERE id = ?", (tother,))[0][0] == 1
    assert api.get("%s/%d" % (BASE, oid)).status_code == 200
    assert_problem(api.delete(url), 404)


def test_delete_without_dependents(api, uniq):
    s = create(api, mgmt(uniq))
    r = api.delete("%s/%d" % (BASE, s["id"]), params={"dryRun": "false"})
    assert r.status_code == 200
    assert r.json() == {"dryRun": False, "deleted": {"tasks": [], "taskTemplates": []}}
