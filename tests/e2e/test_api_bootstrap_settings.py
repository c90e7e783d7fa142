"""REST API: /api/v1/bootstrap-settings — read, replace, merge, validation,
and what a server delete does to them."""
import pytest

from conftest import assert_problem

URL = "/api/v1/bootstrap-settings"
SERVERS = "/api/v1/lwm2m-servers"


def server(api, uniq, typ="management"):
    body = {"name": uniq.name(typ), "type": typ, "uri": "x.example.com"}
    if typ == "management":
        body["ssid"] = uniq.ssid()
    r = api.post(SERVERS, body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_first_run_settings(api):
    r = api.get(URL)
    assert r.status_code == 200
    s = r.json()
    assert set(s) == {"domain", "bootstrapServerId", "managementServerIds", "acceptUnknownDevices", "taskId",
                      "updatedAt"}
    assert s["domain"] == "/"
    assert isinstance(s["taskId"], int)  # the group task that carries the settings
    # the server seeds settings that hand devices its own management entry
    names = {x["id"]: x for x in api.get(SERVERS, params={"limit": 1000}).json()["items"]}
    for i in s["managementServerIds"]:
        assert names[i]["type"] == "management"
    if s["bootstrapServerId"] is not None:
        assert names[s["bootstrapServerId"]]["type"] == "bootstrap"


def test_put_and_get(api, uniq):
    bs = server(api, uniq, "bootstrap")
    m1, m2 = server(api, uniq), server(api, uniq)
    r = api.put(URL, {"bootstrapServerId": bs, "managementServerIds": [m2, m1], "acceptUnknownDevices": True})
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["bootstrapServerId"] == bs
    assert s["managementServerIds"] == [m2, m1]  # order kept
    assert s["acceptUnknownDevices"] is True
    assert s["updatedAt"].endswith("Z")
    assert api.get(URL).json() == s
    # a GET body can be PUT back (read-only fields ignored)
    r = api.put(URL, s)
    assert r.status_code == 200, r.text
    assert {k: v for k, v in r.json().items() if k != "updatedAt"} == {k: v for k, v in s.items() if k != "updatedAt"}
    # replace: absent fields take their defaults
    s = api.put(URL, {"managementServerIds": [m1]}).json()
    assert s["bootstrapServerId"] is None and s["acceptUnknownDevices"] is False and s["managementServerIds"] == [m1]
    s = api.put(URL, {"bootstrapServerId": None, "managementServerIds": []}).json()
    assert s["managementServerIds"] == []


def test_patch(api, uniq):
    bs = server(api, uniq, "bootstrap")
    m = server(api, uniq)
    api.put(URL, {"bootstrapServerId": bs, "managementServerIds": [m], "acceptUnknownDevices": False})
    s = api.patch(URL, {"acceptUnknownDevices": True}).json()
    assert s["acceptUnknownDevices"] is True and s["bootstrapServerId"] == bs and s["managementServerIds"] == [m]
    s = api.patch(URL, {"bootstrapServerId": None}).json()
    assert s["bootstrapServerId"] is None and s["managementServerIds"] == [m]


def bad_cases(api, uniq):
    bs = server(api, uniq, "bootstrap")
    m = server(api, uniq)
    return [
        ({"bootstrapServerId": m}, 422, "bootstrapServerId"),                  # management type
        ({"bootstrapServerId": 987654321}, 422, "bootstrapServerId"),          # unknown
        ({"bootstrapServerId": "1"}, 400, "bootstrapServerId"),
        ({"managementServerIds": [bs]}, 422, "managementServerIds[0]"),        # bootstrap type
        ({"managementServerIds": [m, 987654321]}, 422, "managementServerIds[1]"),
        ({"managementServerIds": [m, m]}, 422, "managementServerIds[1]"),      # duplicate
        ({"managementServerIds": ["x"]}, 400, "managementServerIds[0]"),
        ({"managementServerIds": m}, 400, "managementServerIds"),
        ({"acceptUnknownDevices": "yes"}, 400, "acceptUnknownDevices"),
        ({"taskid": 1}, 400, "taskid"),
    ]


def test_validation_changes_nothing(api, uniq):
    before = api.get(URL).json()
    for body, status, field in bad_cases(api, uniq):
        assert_problem(api.put(URL, body), status, field)
        assert_problem(api.patch(URL, body), status, field)
        assert api.get(URL).json() == before, body


@pytest.mark.parametrize("data", [b"{", b"[]", b""])
def test_malformed(api, data):
    before = api.get(URL).json()
    assert_problem(api.request("PUT", URL, data=data), 400)
    assert api.get(URL).json() == before


def test_server_delete_updates_settings(api, uniq):
    bs = server(api, uniq, "bootstrap")
    m1, m2 = server(api, uniq), server(api, uniq)
    api.put(URL, {"bootstrapServerId": bs, "managementServerIds": [m1, m2]})
    assert api.delete("%s/%d" % (SERVERS, m1)).status_code == 200
    assert api.delete("%s/%d" % (SERVERS, bs)).status_code == 200
    s = api.get(URL).json()
    assert s["managementServerIds"] == [m2] and s["bootstrapServerId"] is None


def test_server_type_change_is_checked_on_next_save(api, uniq):
    m = server(api, uniq)
    api.put(URL, {"managementServerIds": [m]})
    # the server becomes a bootstrap server: the settings then no longer validate
    r = api.patch("%s/%d" % (SERVERS, m), {"type": "bootstrap", "uri": "coap://x.example.com:5693"})
    assert r.status_code == 200, r.text
    assert_problem(api.put(URL, {"managementServerIds": [m]}), 422, "managementServerIds[0]")


def test_domain_parameter(api):
    assert api.get(URL, params={"domain": "/"}).status_code == 200
    assert_problem(api.get(URL, params={"domain": "acme"}), 400, "domain")
    assert_problem(api.put(URL, {"managementServerIds": []}, params={"domain": "/nonexistent/"}), 404)


def test_requires_auth(anon):
    assert_problem(anon.get(URL), 401)
    assert_problem(anon.put(URL, {}), 401)


def settings_task(api, task_id):
    """The task the settings maintain, found among the bootstrap group's tasks."""
    groups = api.get("/api/v1/groups", params={"limit": 1000}).json()["items"]
    bs_group = [g for g in groups if g.get("bootstrap")]
    assert len(bs_group) == 1, groups
    r = api.get("/api/v1/groups/%d/tasks/%d" % (bs_group[0]["id"], task_id))
    assert r.status_code == 200, r.text
    return bs_group[0]["id"], r.json()


def test_settings_are_a_group_task(api, uniq):
    """Saving the settings writes (and keeps in step) a group task on the
    bootstrap group: cleanse + one configuration per server + finish, once
    and repeat with automatic restart; read-only through the tasks API."""
    bs = server(api, uniq, "bootstrap")
    m1, m2 = server(api, uniq), server(api, uniq)
    r = api.put(URL, {"bootstrapServerId": bs, "managementServerIds": [m1, m2], "acceptUnknownDevices": True})
    assert r.status_code == 200, r.text
    tid = r.json()["taskId"]
    gid, t = settings_task(api, tid)
    assert t["managedBy"] == "bootstrap-settings"
    assert t["execution"] == "onceAndRepeat" and t["automaticRestart"] is True
    cfg = t["config"]
    assert "<lwm2mBootstrapCleanse/>" in cfg
    assert cfg.index('serverId="%d"' % m1) < cfg.index('serverId="%d"' % m2) < cfg.index('serverId="%d"' % bs)
    assert 'performBootstrapFinish="true"' in cfg
    assert sorted(t["serverIds"]) == sorted([bs, m1, m2])
    # read-only: edit the settings instead
    assert api.put("/api/v1/groups/%d/tasks/%d" % (gid, tid), dict(name="x", config=cfg)).status_code == 409
    assert api.delete("/api/v1/groups/%d/tasks/%d" % (gid, tid)).status_code == 409
    # a server delete rebuilds the task from the servers that remain
    assert api.delete(SERVERS + "/%d" % m1).status_code == 200
    s2 = api.get(URL).json()
    assert s2["managementServerIds"] == [m2]
    _, t2 = settings_task(api, s2["taskId"])
    assert 'serverId="%d"' % m1 not in t2["config"] and 'serverId="%d"' % m2 in t2["config"]
    # no server at all: no task
    r = api.put(URL, {"bootstrapServerId": None, "managementServerIds": [], "acceptUnknownDevices": True})
    assert r.status_code == 200 and r.json()["taskId"] is None
    # settings again: the task comes back
    r = api.put(URL, {"bootstrapServerId": None, "managementServerIds": [m2], "acceptUnknownDevices": True})
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["taskId"], int)
