"""REST API: tasks of groups and devices (/groups/{id}/tasks, /devices/{id}/tasks)
— every field, validation (task XML errors with their line), the seed recipes,
server references (and deleting a server takes its tasks), read-only managed
tasks, and task reports (per task with counts, per device with the log)."""
import re

import pytest

from conftest import assert_problem

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

# The three recipes of seeds/configuring-a-bootstrap-server.md, verbatim
# (the third with its serverId replaced by a real server's id).
SEED_REST = """<config>
 <rest url="http://external-service.example/serverFor/${device.id}">
   <out from="serverId" to="serverId" />
 </rest>
 <lwm2mBootstrapCleanse />
 <lwm2mBootstrapConfiguration serverId="${#serverId}" />
 <lwm2mBootstrap performBootstrapFinish="true" />
</config>"""

SEED_LOW_LEVEL = """<config>
  <store target="id" value="${sv.managementId}" />
 <store target="psk" value="${sv.password}" />
 <lwm2mBootstrap performBootstrapFinish="true">
   <write key="LwM2M Security.2.LwM2M Server URI" value="coaps://uri.example:5684" type="string" />
   <write key="LwM2M Security.2.Bootstrap-Server" value="false" type="boolean" />
   <write key="LwM2M Security.2.Security Mode" value="0" type="integer" />
   <write key="LwM2M Security.2.Short Server ID" value="2" type="integer" />
   <write key="LwM2M Security.2.Public Key or Identity" type="opaque" value="${#id.encodeHex}" />
   <write key="LwM2M Security.2.Secret Key" type="opaque" value="${#psk.encodeHex}" />
   <write key="LwM2M Security.2.Server Public Key" value="${''}" type="opaque" />
   <write key="LwM2M Server.0.Short Server ID" value="2" type="integer" />
   <write key="LwM2M Server.0.Lifetime" value="60" type="integer" />
   <write key="LwM2M Server.0.Notification Storing When Disabled or Offline" value="false" type="boolean" />
   <write key="LwM2M Server.0.Binding" value="U" type="string" />
 </lwm2mBootstrap>
</config>"""

SEED_ADDITIONAL = """<config>
  <lwm2mBootstrapCleanse />
  <lwm2mBootstrapConfiguration serverId="%d" />
  <set key="Device.Connectivity Statistics.0.Collection Period" value="60" />
  <execute key="Device.Connectivity Statistics.0.Start" />
  <lwm2mBootstrap performBootstrapFinish="true" />
</config>"""

SIMPLE = "<config>\n  <log message=\"hello ${device.endpoint}\" />\n</config>"


def mk_server(api, uniq):
    r = api.post("/api/v1/lwm2m-servers", {"name": uniq.name("srv"), "ssid": uniq.ssid(), "uri": "dm.example.com"})
    assert r.status_code == 201, r.text
    return r.json()


def mk_group(api, uniq, **kw):
    body = {"name": uniq.name("grp")}
    body.update(kw)
    r = api.post("/api/v1/groups", body)
    assert r.status_code == 201, r.text
    return r.json()


def mk_device(api, uniq):
    r = api.post("/api/v1/devices", {"endpoint": uniq.name("dev")})
    assert r.status_code == 201, r.text
    return r.json()


def tasks_url(g):
    return "/api/v1/groups/%d/tasks" % g["id"]


def create(api, base, body):
    r = api.post(base, body)
    assert r.status_code == 201, r.text
    return r.json()


def snapshot(api, base):
    r = api.get(base, params={"limit": 1000})
    assert r.status_code == 200
    return r.json()


# ------------------------------------------------------------------ create
def test_create_minimal_defaults(api, uniq):
    g = mk_group(api, uniq)
    r = api.post(tasks_url(g), {"name": "hello", "config": SIMPLE})
    assert r.status_code == 201, r.text
    t = r.json()
    assert r.headers["Location"] == "%s/%d" % (tasks_url(g), t["id"])
    assert t["name"] == "hello" and t["config"] == SIMPLE
    assert t["groupId"] == g["id"] and t["deviceId"] is None and t["domain"] == "/"
    assert t["active"] is True
    assert t["execution"] == "onceAndRepeat"
    assert t["automaticRestart"] is False and t["repeatOnBootstrap"] is False and t["repeatOnRegister"] is False
    assert t["condition"] is None
    assert t["priority"] == 10 and t["minIntervalSeconds"] == 0
    assert t["appliesToSubgroups"] is False
    assert t["schedule"] == {"notBefore": None, "notAfter": None}
    assert t["managedBy"] is None and t["serverIds"] == []
    assert ISO.match(t["createdAt"]) and ISO.match(t["updatedAt"])
    assert api.get(r.headers["Location"]).json() == t


def test_create_every_field(api, uniq):
    g = mk_group(api, uniq)
    s = mk_server(api, uniq)
    body = {"name": "every field", "config": SEED_ADDITIONAL % s["id"], "active": False, "execution": "onceAndRepeat",
            "automaticRestart": True, "repeatOnBootstrap": True, "repeatOnRegister": True,
            "condition": "${device.property.model == 'X1'}", "priority": 3, "minIntervalSeconds": 3600,
            "appliesToSubgroups": True,
            "schedule": {"notBefore": "2026-01-01T00:00:00Z", "notAfter": "2026-12-31T23:59:59.5+01:00"}}
    t = create(api, tasks_url(g), body)
    for k in ("name", "config", "active", "execution", "automaticRestart", "repeatOnBootstrap", "repeatOnRegister",
              "condition", "priority", "minIntervalSeconds", "appliesToSubgroups"):
        assert t[k] == body[k], k
    assert t["schedule"] == {"notBefore": "2026-01-01T00:00:00.000Z", "notAfter": "2026-12-31T22:59:59.500Z"}
    assert t["serverIds"] == [s["id"]]
    # a GET body can be PUT back unchanged
    r = api.put("%s/%d" % (tasks_url(g), t["id"]), t)
    assert r.status_code == 200, r.text
    got = r.json()
    assert {k: v for k, v in got.items() if k != "updatedAt"} == {k: v for k, v in t.items() if k != "updatedAt"}


@pytest.mark.parametrize("recipe", ["rest", "low_level", "additional"])
def test_seed_recipes(api, uniq, recipe):
    """The three recipes of the seeds, saved as the guide says (Once and repeat + Automatic restart)."""
    g = mk_group(api, uniq)
    s = mk_server(api, uniq)
    config = {"rest": SEED_REST, "low_level": SEED_LOW_LEVEL, "additional": SEED_ADDITIONAL % s["id"]}[recipe]
    t = create(api, tasks_url(g), {"name": recipe, "config": config, "execution": "onceAndRepeat",
                                   "automaticRestart": True})
    assert t["config"] == config and t["automaticRestart"] is True
    assert t["serverIds"] == ([s["id"]] if recipe == "additional" else [])


def test_server_name_reference(api, uniq):
    g = mk_group(api, uniq)
    s = mk_server(api, uniq)
    config = '<config>\n  <lwm2mBootstrapConfiguration serverName="%s" />\n</config>' % s["name"]
    t = create(api, tasks_url(g), {"name": "by name", "config": config})
    assert t["serverIds"] == [s["id"]]


# -------------------------------------------------------------- validation
BAD_XML = [
    # (config, line, words expected in the message)
    ("<config>\n  <bogus/>\n</config>", 2, "bogus"),
    ("<config>\n\n  <set key=\"/1/0/1\" vlaue=\"60\"/>\n</config>", 3, "vlaue"),
    ("<config>\n  <set key=\"Device.Nope.0.X\" value=\"1\"/>\n</config>", 2, "Nope"),
    ("<config>\n  <log message=\"${1 +}\" />\n</config>", 2, "log"),
    ("<config>\n<set key=\"/1/0/1\" value=\"1\">\n</config>", 3, "malformed"),
    ("<task/>", 1, "config"),
]


@pytest.mark.parametrize("config,line,word", BAD_XML)
def test_invalid_config_has_line(api, uniq, config, line, word):
    g = mk_group(api, uniq)
    before = snapshot(api, tasks_url(g))
    r = api.post(tasks_url(g), {"name": "bad", "config": config})
    body = assert_problem(r, 422, "config")
    assert body["title"] == "invalid task configuration"
    err = body["errors"][0]
    assert err["field"] == "config"
    assert err["line"] == line, body
    assert "column" in err
    assert word in err["message"] and err["message"] == body["detail"]
    assert snapshot(api, tasks_url(g)) == before


@pytest.mark.parametrize("config_fmt,word", [
    ('<config>\n  <lwm2mBootstrapConfiguration serverId="987654" />\n</config>', "serverId 987654"),
    ('<config>\n  <lwm2mBootstrapConfiguration serverName="no such server x" />\n</config>', "no such server x"),
])
def test_unknown_server_reference(api, uniq, config_fmt, word):
    g = mk_group(api, uniq)
    body = assert_problem(api.post(tasks_url(g), {"name": "bad", "config": config_fmt}), 422, "config")
    assert word in body["detail"]
    assert snapshot(api, tasks_url(g))["total"] == 0


@pytest.mark.parametrize("overrides,status,field", [
    ({"name": None}, 422, "name"),
    ({"name": ""}, 422, "name"),
    ({"name": "n" * 129}, 422, "name"),
    ({"name": 1}, 400, "name"),
    ({"config": None}, 422, "config"),
    ({"config": ""}, 422, "config"),
    ({"config": 5}, 400, "config"),
    ({"active": "yes"}, 400, "active"),
    ({"execution": "always"}, 422, "execution"),
    ({"execution": 1}, 400, "execution"),
    ({"execution": "once", "automaticRestart": True}, 422, "automaticRestart"),
    ({"execution": "once", "repeatOnBootstrap": True}, 422, "repeatOnBootstrap"),
    ({"execution": "once", "repeatOnRegister": True}, 422, "repeatOnRegister"),
    ({"automaticRestart": 1}, 400, "automaticRestart"),
    ({"condition": "${1 +}"}, 422, "condition"),
    ({"condition": "device.id == 1"}, 422, "condition"),
    ({"condition": 1}, 400, "condition"),
    ({"priority": -1}, 422, "priority"),
    ({"priority": 1001}, 422, "priority"),
    ({"priority": 1.5}, 400, "priority"),
    ({"minIntervalSeconds": -1}, 422, "minIntervalSeconds"),
    ({"minIntervalSeconds": "1"}, 400, "minIntervalSeconds"),
    ({"appliesToSubgroups": "true"}, 400, "appliesToSubgroups"),
    ({"schedule": "tomorrow"}, 400, "schedule"),
    ({"schedule": {"notBefore": "2026-13-01T00:00:00Z"}}, 422, "schedule.notBefore"),
    ({"schedule": {"notBefore": "2026-01-01"}}, 422, "schedule.notBefore"),
    ({"schedule": {"notAfter": 5}}, 400, "schedule.notAfter"),
    ({"schedule": {"notBefore": "2026-02-01T00:00:00Z", "notAfter": "2026-01-01T00:00:00Z"}}, 422, "schedule.notAfter"),
    ({"schedule": {"notBefore": "2026-01-01T00:00:00Z", "notAfter": "2026-01-01T00:00:00Z"}}, 422, "schedule.notAfter"),
    ({"schedule": {"start": "2026-01-01T00:00:00Z"}}, 400, "schedule.start"),
    ({"colour": "red"}, 400, "colour"),
])
def test_bad_values(api, uniq, overrides, status, field):
    g = mk_group(api, uniq)
    body = {"name": "t", "config": SIMPLE}
    body.update(overrides)
    for k in [k for k, v in body.items() if v is None]:
        del body[k]
    before = snapshot(api, tasks_url(g))
    assert_problem(api.post(tasks_url(g), body), status, field)
    assert snapshot(api, tasks_url(g)) == before


def test_condition_error_has_position(api, uniq):
    g = mk_group(api, uniq)
    body = assert_problem(api.post(tasks_url(g), {"name": "c", "config": SIMPLE, "condition": "${device.id ==}"}),
                          422, "condition")
    assert "position" in body["errors"][0]["message"]


def test_good_edge_values(api, uniq):
    g = mk_group(api, uniq)
    t = create(api, tasks_url(g), {"name": "e", "config": SIMPLE, "priority": 0, "minIntervalSeconds": 2147483647,
                                   "execution": "once", "automaticRestart": False, "condition": "",
                                   "schedule": {"notBefore": None, "notAfter": "2030-01-01T00:00:00Z"}})
    assert t["priority"] == 0 and t["execution"] == "once" and t["condition"] is None
    assert t["schedule"] == {"notBefore": None, "notAfter": "2030-01-01T00:00:00.000Z"}


def test_multiple_errors_listed(api, uniq):
    g = mk_group(api, uniq)
    body = assert_problem(api.post(tasks_url(g), {"name": "", "config": "<config><bogus/></config>"}), 422)
    fields = [e["field"] for e in body["errors"]]
    assert "name" in fields and "config" in fields


# ------------------------------------------------------ read, write, delete
def test_list_and_search(api, uniq):
    g = mk_group(api, uniq)
    ids = [create(api, tasks_url(g), {"name": "task-%d" % i, "config": SIMPLE})["id"] for i in range(3)]
    create(api, tasks_url(g), {"name": "other", "config": SIMPLE})
    body = api.get(tasks_url(g), params={"q": "TASK-", "limit": 2}).json()
    assert body["total"] == 3 and [t["id"] for t in body["items"]] == ids[:2]
    assert api.get(tasks_url(g)).json()["total"] == 4
    other = mk_group(api, uniq)
    assert api.get(tasks_url(other)).json()["total"] == 0
    assert_problem(api.get(tasks_url(g), params={"limit": "x"}), 400, "limit")


def test_put_patch_delete(api, uniq):
    g = mk_group(api, uniq)
    t = create(api, tasks_url(g), {"name": "t", "config": SIMPLE, "priority": 4, "automaticRestart": True})
    u = "%s/%d" % (tasks_url(g), t["id"])
    r = api.put(u, {"name": "t2", "config": SIMPLE})
    assert r.status_code == 200
    assert r.json()["priority"] == 10 and r.json()["automaticRestart"] is False and r.json()["name"] == "t2"
    r = api.patch(u, {"automaticRestart": True, "priority": 2})
    assert r.json()["automaticRestart"] is True and r.json()["priority"] == 2 and r.json()["name"] == "t2"
    # switching to "once" drops the inherited restart flags
    r = api.patch(u, {"execution": "once"})
    assert r.status_code == 200, r.text
    assert r.json()["execution"] == "once" and r.json()["automaticRestart"] is False
    r = api.patch(u, {"schedule": {"notAfter": "2030-01-01T00:00:00Z"}, "condition": "${true}"})
    assert r.json()["schedule"]["notAfter"] == "2030-01-01T00:00:00.000Z" and r.json()["condition"] == "${true}"
    r = api.patch(u, {"condition": None, "schedule": None})
    assert r.json()["condition"] is None and r.json()["schedule"] == {"notBefore": None, "notAfter": None}
    assert api.delete(u).status_code == 204
    assert_problem(api.get(u), 404)
    assert_problem(api.delete(u), 404)


def test_rejected_write_changes_nothing(api, uniq):
    g = mk_group(api, uniq)
    t = create(api, tasks_url(g), {"name": "t", "config": SIMPLE})
    u = "%s/%d" % (tasks_url(g), t["id"])
    for method, body, status, field in (
            ("put", {"name": "t", "config": "<config>\n<bogus/>\n</config>"}, 422, "config"),
            ("patch", {"priority": 3, "config": "<config>\n<bogus/>\n</config>"}, 422, "config"),
            ("patch", {"priority": 3, "execution": "never"}, 422, "execution"),
            ("patch", {"priority": "3"}, 400, "priority"),
            ("put", {"config": SIMPLE}, 422, "name")):
        assert_problem(getattr(api, method)(u, body), status, field)
        assert api.get(u).json() == t


def test_task_of_another_owner_is_404(api, uniq):
    g1, g2 = mk_group(api, uniq), mk_group(api, uniq)
    t = create(api, tasks_url(g1), {"name": "t", "config": SIMPLE})
    u = "%s/%d" % (tasks_url(g2), t["id"])
    assert_problem(api.get(u), 404)
    assert_problem(api.put(u, {"name": "x", "config": SIMPLE}), 404)
    assert_problem(api.delete(u), 404)
    assert_problem(api.get("/api/v1/groups/987654321/tasks"), 404)
    assert_problem(api.post("/api/v1/groups/987654321/tasks", {"name": "x", "config": SIMPLE}), 404)


def test_device_tasks(api, uniq):
    d = mk_device(api, uniq)
    base = "/api/v1/devices/%d/tasks" % d["id"]
    t = create(api, base, {"name": "own", "config": SIMPLE})
    assert t["deviceId"] == d["id"] and t["groupId"] is None
    assert api.get(base).json()["total"] == 1
    assert_problem(api.post(base, {"name": "x", "config": SIMPLE, "appliesToSubgroups": True}), 422,
                   "appliesToSubgroups")
    assert api.patch("%s/%d" % (base, t["id"]), {"priority": 1}).json()["priority"] == 1
    assert api.delete("/api/v1/devices/%d" % d["id"]).status_code == 204
    assert_problem(api.get(base), 404)


def test_deleting_group_deletes_its_tasks(server, api, uniq):
    g = mk_group(api, uniq)
    t = create(api, tasks_url(g), {"name": "t", "config": SIMPLE})
    assert api.delete("/api/v1/groups/%d" % g["id"]).status_code == 204
    assert server.sql("SELECT count(*) FROM tasks WHERE id = ?", (t["id"],))[0][0] == 0


def test_managed_task_is_read_only(server, api, uniq):
    g = mk_group(api, uniq)
    t = create(api, tasks_url(g), {"name": "bs", "config": SIMPLE})
    server.sql("UPDATE tasks SET managed_by = 'bootstrap-settings' WHERE id = ?", (t["id"],))
    u = "%s/%d" % (tasks_url(g), t["id"])
    got = api.get(u).json()
    assert got["managedBy"] == "bootstrap-settings"
    for r in (api.put(u, {"name": "x", "config": SIMPLE}), api.patch(u, {"priority": 1}), api.delete(u)):
        body = assert_problem(r, 409)
        assert "bootstrap settings" in body["detail"]
    assert api.get(u).json() == got


def test_server_delete_takes_api_task(api, uniq):
    g = mk_group(api, uniq)
    s = mk_server(api, uniq)
    t = create(api, tasks_url(g), {"name": "uses it", "config": SEED_ADDITIONAL % s["id"]})
    keep = create(api, tasks_url(g), {"name": "keeps", "config": SIMPLE})
    su = "/api/v1/lwm2m-servers/%d" % s["id"]
    expected = {"tasks": [{"id": t["id"], "name": "uses it", "groupId": g["id"], "deviceId": None}],
                "taskTemplates": []}
    r = api.delete(su, params={"dryRun": "true"})
    assert r.status_code == 200, r.text
    assert r.json() == {"dryRun": True, "deleted": expected}
    assert api.get("%s/%d" % (tasks_url(g), t["id"])).status_code == 200
    r = api.delete(su)
    assert r.json() == {"dryRun": False, "deleted": expected}
    assert_problem(api.get("%s/%d" % (tasks_url(g), t["id"])), 404)
    assert api.get("%s/%d" % (tasks_url(g), keep["id"])).status_code == 200


def test_references_rebuilt_on_save(api, uniq):
    g = mk_group(api, uniq)
    s1, s2 = mk_server(api, uniq), mk_server(api, uniq)
    t = create(api, tasks_url(g), {"name": "t", "config": SEED_ADDITIONAL % s1["id"]})
    u = "%s/%d" % (tasks_url(g), t["id"])
    r = api.patch(u, {"config": SEED_ADDITIONAL % s2["id"]})
    assert r.json()["serverIds"] == [s2["id"]]
    r = api.delete("/api/v1/lwm2m-servers/%d" % s1["id"], params={"dryRun": "true"})
    assert r.json()["deleted"]["tasks"] == []


# ---------------------------------------------------------------- reports
def test_reports_of_a_task_with_no_runs(api, uniq):
    parent = mk_group(api, uniq)
    g = mk_group(api, uniq, parentId=parent["id"])
    d1, d2, d3 = mk_device(api, uniq), mk_device(api, uniq), mk_device(api, uniq)
    api.post("/api/v1/groups/%d/devices" % g["id"], {"deviceId": d1["id"]})
    api.post("/api/v1/groups/%d/devices" % g["id"], {"deviceId": d2["id"]})
    api.post("/api/v1/groups/%d/devices" % parent["id"], {"deviceId": d3["id"]})
    t = create(api, tasks_url(g), {"name": "t", "config": SIMPLE})
    ru = "%s/%d/reports" % (tasks_url(g), t["id"])
    body = api.get(ru).json()
    assert body["total"] == 2
    assert body["counts"] == {"NOT_STARTED": 2, "IN_PROGRESS": 0, "SUCCESS": 0, "WARNING": 0, "ERROR": 0}
    assert [(x["deviceId"], x["endpoint"], x["status"], x["runs"], x["startedAt"], x["finishedAt"])
            for x in body["items"]] == [(d1["id"], d1["endpoint"], "NOT_STARTED", 0, None, None),
                                        (d2["id"], d2["endpoint"], "NOT_STARTED", 0, None, None)]
    assert body["items"][0]["id"] is None and body["items"][0]["summary"] == ""
    assert api.get(ru, params={"status": "SUCCESS"}).json()["total"] == 0
    assert api.get(ru, params={"limit": 1, "offset": 1}).json()["items"][0]["deviceId"] == d2["id"]
    assert_problem(api.get(ru, params={"status": "DONE"}), 400, "status")
    # a parent's task that applies to subgroups targets the members below too
    pt = create(api, tasks_url(parent), {"name": "p", "config": SIMPLE, "appliesToSubgroups": True})
    body = api.get("%s/%d/reports" % (tasks_url(parent), pt["id"])).json()
    assert body["counts"]["NOT_STARTED"] == 3
    assert_problem(api.get("%s/%d/reports" % (tasks_url(parent), t["id"])), 404)


def test_reports_with_runs(server, api, uniq):
    g = mk_group(api, uniq)
    d1, d2 = mk_device(api, uniq), mk_device(api, uniq)
    for d in (d1, d2):
        api.post("/api/v1/groups/%d/devices" % g["id"], {"deviceId": d["id"]})
    t = create(api, tasks_url(g), {"name": "t", "config": SIMPLE})
    server.sql("INSERT INTO task_reports (task_id, device_id, status, started_at, finished_at, summary,"
               " variables_json, runs, session_kind, updated_at)"
               " VALUES (?, ?, 'SUCCESS', 1700000000000, 1700000001000, 'all good', '{\"x\":\"1\"}', 2,"
               " 'bootstrap', 1700000001000)", (t["id"], d1["id"]))
    rid = server.sql("SELECT id FROM task_reports WHERE task_id = ? AND device_id = ?", (t["id"], d1["id"]))[0][0]
    server.sql("INSERT INTO task_log (report_id, seq, at, level, step, sent, received, code, message)"
               " VALUES (?, 1, 1700000000500, 'info', 'set line 2', 'PUT /3/0/1', NULL, '2.04', 'written'),"
               " (?, 2, 1700000000900, 'info', 'finish line 3', NULL, NULL, NULL, 'done')", (rid, rid))
    body = api.get("%s/%d/reports" % (tasks_url(g), t["id"])).json()
    assert body["counts"] == {"NOT_STARTED": 1, "IN_PROGRESS": 0, "SUCCESS": 1, "WARNING": 0, "ERROR": 0}
    first = body["items"][0]
    assert first["id"] == rid and first["status"] == "SUCCESS" and first["runs"] == 2
    assert first["startedAt"] == "2023-11-14T22:13:20.000Z" and first["summary"] == "all good"
    assert api.get("%s/%d/reports" % (tasks_url(g), t["id"]), params={"status": "SUCCESS"}).json()["total"] == 1
    # the device's reports
    dr = api.get("/api/v1/devices/%d/task-reports" % d1["id"]).json()
    assert dr["total"] == 1 and dr["items"][0]["taskId"] == t["id"] and dr["items"][0]["taskName"] == "t"
    one = api.get("/api/v1/devices/%d/task-reports/%d" % (d1["id"], rid)).json()
    assert one["variables"] == {"x": "1"} and one["sessionKind"] == "bootstrap"
    assert [(x["seq"], x["level"], x["step"], x["sent"], x["received"], x["code"], x["message"]) for x in one["log"]] == [
        (1, "info", "set line 2", "PUT /3/0/1", None, "2.04", "written"),
        (2, "info", "finish line 3", None, None, None, "done")]
    assert ISO.match(one["log"][0]["at"])
    assert_problem(api.get("/api/v1/devices/%d/task-reports/%d" % (d2["id"], rid)), 404)
    assert api.get("/api/v1/devices/%d/task-reports" % d2["id"]).json()["total"] == 0
    # deleting the task takes its reports
    assert api.delete("%s/%d" % (tasks_url(g), t["id"])).status_code == 204
    assert server.sql("SELECT count(*) FROM task_log WHERE report_id = ?", (rid,))[0][0] == 0
    assert api.get("/api/v1/devices/%d/task-reports" % d1["id"]).json()["total"] == 0


def test_requires_auth(anon):
    assert_problem(anon.get("/api/v1/groups/1/tasks"), 401)
    assert_problem(anon.get("/api/v1/devices/1/task-reports"), 401)
