"""REST API: /api/v1/groups — every field, validation, the tree (no cycles,
names unique among siblings), the bootstrap group, members, setting values of
groups and devices and their inheritance (?effective=true)."""
import re

import pytest

from conftest import assert_problem

BASE = "/api/v1/groups"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def create(api, body):
    r = api.post(BASE, body)
    assert r.status_code == 201, r.text
    return r.json()


def device(api, uniq):
    r = api.post("/api/v1/devices", {"endpoint": uniq.name("dev")})
    assert r.status_code == 201, r.text
    return r.json()


def snapshot(api):
    r = api.get(BASE, params={"limit": 1000})
    assert r.status_code == 200
    return r.json()


def url(gid, tail=""):
    return "%s/%d%s" % (BASE, gid, tail)


# ----------------------------------------------------------------- groups
def test_create_minimal_defaults(api, uniq):
    name = uniq.name("g")
    r = api.post(BASE, {"name": name})
    assert r.status_code == 201, r.text
    g = r.json()
    assert r.headers["Location"] == url(g["id"])
    assert g["name"] == name
    assert g["description"] == ""
    assert g["parentId"] is None
    assert g["priority"] == 10
    assert g["bootstrap"] is False
    assert g["deviceCount"] == 0
    assert g["domain"] == "/"
    assert ISO.match(g["createdAt"]) and ISO.match(g["updatedAt"])
    assert api.get(r.headers["Location"]).json() == g


def test_create_every_field(api, uniq):
    parent = create(api, {"name": uniq.name("p")})
    body = {"name": uniq.name("c"), "description": "plant 1, line 2", "parentId": parent["id"], "priority": 3}
    g = create(api, body)
    for k, v in body.items():
        assert g[k] == v
    # read-only fields sent back are ignored
    r = api.put(url(g["id"]), g)
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in body} == body


def test_bootstrap_group(api):
    items = snapshot(api)["items"]
    bs = [g for g in items if g["bootstrap"]]
    assert len(bs) == 1
    g = bs[0]
    assert g["name"] == "bootstrap" and g["domain"] == "/" and g["parentId"] is None
    assert ISO.match(g["createdAt"])
    before = snapshot(api)
    assert "bootstrap" in assert_problem(api.delete(url(g["id"])), 409)["detail"]
    other = [x for x in items if not x["bootstrap"]]
    if other:
        assert_problem(api.patch(url(g["id"]), {"parentId": other[0]["id"]}), 422, "parentId")
    assert snapshot(api) == before
    # it may be described and given a priority
    r = api.patch(url(g["id"]), {"description": "landing group", "bootstrap": False})
    assert r.status_code == 200, r.text
    assert r.json()["bootstrap"] is True and r.json()["description"] == "landing group"


@pytest.mark.parametrize("body,status,field", [
    ({}, 422, "name"),
    ({"name": ""}, 422, "name"),
    ({"name": "n" * 129}, 422, "name"),
    ({"name": "a\tb"}, 422, "name"),
    ({"name": 5}, 400, "name"),
    ({"name": "x", "description": "d" * 1025}, 422, "description"),
    ({"name": "x", "description": 1}, 400, "description"),
    ({"name": "x", "priority": -1}, 422, "priority"),
    ({"name": "x", "priority": 1001}, 422, "priority"),
    ({"name": "x", "priority": "1"}, 400, "priority"),
    ({"name": "x", "parentId": 987654321}, 422, "parentId"),
    ({"name": "x", "parentId": "1"}, 400, "parentId"),
    ({"name": "x", "colour": "red"}, 400, "colour"),
])
def test_bad_values(api, body, status, field):
    before = snapshot(api)
    assert_problem(api.post(BASE, body), status, field)
    assert snapshot(api) == before


def test_good_edge_values(api, uniq):
    g = create(api, {"name": "n" * 120 + uniq.name("")[-8:], "priority": 0, "description": "d" * 1024})
    assert g["priority"] == 0
    g = create(api, {"name": uniq.name("ü-grüppe"), "priority": 1000})
    assert g["priority"] == 1000


def test_names_unique_among_siblings(api, uniq):
    a = create(api, {"name": uniq.name("a")})
    b = create(api, {"name": uniq.name("b")})
    name = uniq.name("same")
    create(api, {"name": name, "parentId": a["id"]})
    create(api, {"name": name, "parentId": b["id"]})   # another parent: fine
    create(api, {"name": name})                        # top level: fine
    before = snapshot(api)
    assert_problem(api.post(BASE, {"name": name, "parentId": a["id"]}), 409, "name")
    assert_problem(api.post(BASE, {"name": name}), 409, "name")
    assert snapshot(api) == before
    c = create(api, {"name": uniq.name("c"), "parentId": a["id"]})
    assert_problem(api.patch(url(c["id"]), {"name": name}), 409, "name")
    assert api.get(url(c["id"])).json() == c


def test_no_cycles(api, uniq):
    a = create(api, {"name": uniq.name("a")})
    b = create(api, {"name": uniq.name("b"), "parentId": a["id"]})
    c = create(api, {"name": uniq.name("c"), "parentId": b["id"]})
    before = snapshot(api)
    assert_problem(api.patch(url(a["id"]), {"parentId": a["id"]}), 422, "parentId")
    assert_problem(api.patch(url(a["id"]), {"parentId": c["id"]}), 422, "parentId")
    assert_problem(api.patch(url(b["id"]), {"parentId": c["id"]}), 422, "parentId")
    assert snapshot(api) == before
    # moving to the top and under another branch works
    r = api.patch(url(c["id"]), {"parentId": None})
    assert r.status_code == 200 and r.json()["parentId"] is None
    r = api.patch(url(a["id"]), {"parentId": c["id"]})
    assert r.status_code == 200 and r.json()["parentId"] == c["id"]


def test_list_paging_and_search(api, uniq):
    tag = uniq.name("srch")
    ids = [create(api, {"name": "%s-%d" % (tag, i)})["id"] for i in range(5)]
    create(api, {"name": uniq.name("other"), "description": "has %s inside" % tag.upper()})
    r = api.get(BASE, params={"q": tag, "limit": 2})
    body = r.json()
    assert body["total"] == 6 and body["limit"] == 2 and body["offset"] == 0
    assert [g["id"] for g in body["items"]] == ids[:2]
    body = api.get(BASE, params={"q": tag, "limit": 2, "offset": 4}).json()
    assert len(body["items"]) == 2 and body["items"][0]["id"] == ids[4]
    assert api.get(BASE, params={"q": "no-such-group-xyz"}).json()["total"] == 0
    assert_problem(api.get(BASE, params={"limit": 0}), 400, "limit")
    assert_problem(api.get(BASE, params={"offset": "x"}), 400, "offset")


def test_put_replaces_patch_merges(api, uniq):
    g = create(api, {"name": uniq.name("g"), "description": "x", "priority": 4})
    r = api.put(url(g["id"]), {"name": g["name"]})
    assert r.status_code == 200
    assert r.json()["description"] == "" and r.json()["priority"] == 10
    r = api.patch(url(g["id"]), {"priority": 2})
    assert r.status_code == 200
    assert r.json()["priority"] == 2 and r.json()["name"] == g["name"]
    r = api.patch(url(g["id"]), {"priority": None})
    assert r.json()["priority"] == 10


def test_rejected_patch_changes_nothing(api, uniq):
    g = create(api, {"name": uniq.name("g"), "priority": 7})
    for patch, status, field in (({"priority": 5, "name": ""}, 422, "name"),
                                 ({"priority": 5, "parentId": 987654321}, 422, "parentId"),
                                 ({"priority": "5"}, 400, "priority")):
        assert_problem(api.patch(url(g["id"]), patch), status, field)
        assert api.get(url(g["id"])).json() == g


def test_not_found(api):
    assert_problem(api.get(url(987654321)), 404)
    assert_problem(api.put(url(987654321), {"name": "x"}), 404)
    assert_problem(api.patch(url(987654321), {"name": "x"}), 404)
    assert_problem(api.delete(url(987654321)), 404)
    assert_problem(api.get(url(987654321, "/devices")), 404)
    assert_problem(api.get(url(987654321, "/setting-values")), 404)


def test_delete_takes_subgroups(server, api, uniq):
    a = create(api, {"name": uniq.name("a")})
    b = create(api, {"name": uniq.name("b"), "parentId": a["id"]})
    d = device(api, uniq)
    assert api.post(url(b["id"], "/devices"), {"deviceId": d["id"]}).status_code == 201
    assert api.put(url(b["id"], "/setting-values"), {"k": "v"}).status_code == 200
    r = api.delete(url(a["id"]))
    assert r.status_code == 204
    assert_problem(api.get(url(a["id"])), 404)
    assert_problem(api.get(url(b["id"])), 404)
    # the device stays, without the membership
    dd = api.get("/api/v1/devices/%d" % d["id"]).json()
    assert dd["groups"] == []
    assert server.sql("SELECT count(*) FROM setting_values WHERE group_id = ?", (b["id"],))[0][0] == 0


def test_requires_auth(anon):
    assert_problem(anon.get(BASE), 401)
    assert_problem(anon.post(BASE, {"name": "x"}), 401)


# ---------------------------------------------------------------- members
def test_members(api, uniq):
    g = create(api, {"name": uniq.name("g")})
    d1, d2 = device(api, uniq), device(api, uniq)
    r = api.post(url(g["id"], "/devices"), {"deviceId": d1["id"]})
    assert r.status_code == 201, r.text
    assert r.json()["id"] == d1["id"] and r.json()["endpoint"] == d1["endpoint"]
    assert r.headers["Location"] == url(g["id"], "/devices/%d" % d1["id"])
    r = api.post(url(g["id"], "/devices"), {"deviceId": d1["id"]})   # again: already a member
    assert r.status_code == 200
    assert api.post(url(g["id"], "/devices"), {"deviceId": d2["id"]}).status_code == 201
    body = api.get(url(g["id"], "/devices")).json()
    assert body["total"] == 2
    assert [x["id"] for x in body["items"]] == [d1["id"], d2["id"]]
    assert set(body["items"][0]) >= {"id", "endpoint", "domain", "blacklisted", "lastContactAt"}
    body = api.get(url(g["id"], "/devices"), params={"q": d2["endpoint"]}).json()
    assert [x["id"] for x in body["items"]] == [d2["id"]]
    assert api.get(url(g["id"])).json()["deviceCount"] == 2
    # the device side
    assert api.get("/api/v1/devices/%d" % d1["id"]).json()["groups"] == [g["id"]]
    groups = api.get("/api/v1/devices/%d/groups" % d1["id"]).json()
    assert [x["id"] for x in groups["items"]] == [g["id"]] and groups["total"] == 1
    # the device PUT keeps working with the read-only "groups" field
    dd = api.get("/api/v1/devices/%d" % d1["id"]).json()
    assert api.put("/api/v1/devices/%d" % d1["id"], dd).status_code == 200
    # remove
    assert api.delete(url(g["id"], "/devices/%d" % d1["id"])).status_code == 204
    assert_problem(api.delete(url(g["id"], "/devices/%d" % d1["id"])), 404)
    assert api.get("/api/v1/devices/%d" % d1["id"]).json()["groups"] == []
    assert api.get(url(g["id"], "/devices")).json()["total"] == 1


@pytest.mark.parametrize("body,status,field", [
    ({}, 422, "deviceId"),
    ({"deviceId": "1"}, 400, "deviceId"),
    ({"deviceId": 987654321}, 422, "deviceId"),
    ({"deviceId": 1, "extra": 1}, 400, "extra"),
])
def test_member_bad_values(api, uniq, body, status, field):
    g = create(api, {"name": uniq.name("g")})
    assert_problem(api.post(url(g["id"], "/devices"), body), status, field)
    assert api.get(url(g["id"], "/devices")).json()["total"] == 0


def test_device_delete_leaves_groups(api, uniq):
    g = create(api, {"name": uniq.name("g")})
    d = device(api, uniq)
    api.post(url(g["id"], "/devices"), {"deviceId": d["id"]})
    assert api.delete("/api/v1/devices/%d" % d["id"]).status_code == 204
    assert api.get(url(g["id"], "/devices")).json()["total"] == 0


# --------------------------------------------------------- setting values
def test_setting_values_crud(api, uniq):
    g = create(api, {"name": uniq.name("g")})
    sv = url(g["id"], "/setting-values")
    assert api.get(sv).json() == {}
    r = api.put(sv, {"managementId": "dev-1", "password": "s3cret", "_x9": ""})
    assert r.status_code == 200, r.text
    assert r.json() == {"managementId": "dev-1", "password": "s3cret", "_x9": ""}
    r = api.patch(sv, {"password": None, "extra": "e"})
    assert r.status_code == 200
    assert r.json() == {"managementId": "dev-1", "_x9": "", "extra": "e"}
    assert api.get(sv).json() == r.json()
    r = api.put(sv, {"only": "1"})
    assert r.json() == {"only": "1"}
    d = device(api, uniq)
    dsv = "/api/v1/devices/%d/setting-values" % d["id"]
    assert api.get(dsv).json() == {}
    assert api.put(dsv, {"a": "b"}).json() == {"a": "b"}


@pytest.mark.parametrize("body,status,field", [
    ({"a": 1}, 400, "a"),
    ({"a": None}, 400, "a"),
    ({"a": {"b": "c"}}, 400, "a"),
    ({"1abc": "x"}, 422, "1abc"),
    ({"a-b": "x"}, 422, "a-b"),
    ({"a.b": "x"}, 422, "a.b"),
    ({"": "x"}, 422, ""),
    ({"n" * 129: "x"}, 422, "n" * 129),
    ({"big": "v" * (64 * 1024 + 1)}, 422, "big"),
])
def test_setting_values_bad(api, uniq, body, status, field):
    g = create(api, {"name": uniq.name("g")})
    sv = url(g["id"], "/setting-values")
    api.put(sv, {"keep": "me"})
    assert_problem(api.put(sv, body), status, field)
    value = list(body.values())[0]
    if value is not None:   # in a patch, null removes a value
        patch = dict(body, keep=None)
        assert_problem(api.patch(sv, patch), 400 if not isinstance(value, str) else status, field)
    assert api.get(sv).json() == {"keep": "me"}


def test_effective_values_inheritance(api, uniq):
    """A nearer group overrides its ancestors; among unrelated groups the lower
    priority number wins, then the lower group id; the device's own values win."""
    root = create(api, {"name": uniq.name("root")})                          # priority 10
    child = create(api, {"name": uniq.name("child"), "parentId": root["id"]})
    strong = create(api, {"name": uniq.name("strong"), "priority": 5})      # unrelated, stronger
    tie = create(api, {"name": uniq.name("tie")})                            # unrelated, same priority, higher id
    d = device(api, uniq)
    for g in (child, strong, tie):
        assert api.post(url(g["id"], "/devices"), {"deviceId": d["id"]}).status_code == 201
    api.put(url(root["id"], "/setting-values"),
            {"a": "root", "b": "root", "c": "root", "onlyRoot": "root", "own": "root"})
    api.put(url(child["id"], "/setting-values"), {"a": "child", "c": "child"})
    api.put(url(strong["id"], "/setting-values"), {"b": "strong", "c": "strong"})
    api.put(url(tie["id"], "/setting-values"), {"a": "tie", "onlyTie": "tie"})
    api.put("/api/v1/devices/%d/setting-values" % d["id"], {"own": "device"})
    eff = "/api/v1/devices/%d/setting-values" % d["id"]
    table = {
        "a": "child",        # child (nearer than root) vs tie (same priority, higher id) -> child
        "b": "strong",       # root vs unrelated strong (priority 5) -> strong
        "c": "strong",       # child vs strong: unrelated, strong has the lower priority number
        "onlyRoot": "root",  # inherited from an ancestor of a member group
        "onlyTie": "tie",
        "own": "device",     # the device's own value wins over everything
    }
    assert api.get(eff, params={"effective": "true"}).json() == table
    assert api.get(eff).json() == {"own": "device"}
    # the child's priority makes it win over "strong"
    api.patch(url(child["id"]), {"priority": 1})
    assert api.get(eff, params={"effective": "true"}).json()["c"] == "child"
    assert_problem(api.get(eff, params={"effective": "maybe"}), 400, "effective")
    assert_problem(api.get(url(root["id"], "/setting-values"), params={"effective": "true"}), 400, "effective")
