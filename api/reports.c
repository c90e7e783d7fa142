/* api: task reports.
 *   GET /groups/{id}/tasks/{taskId}/reports (and /devices/{id}/tasks/{taskId}/reports):
 *       one entry per target device (devices without a report are NOT_STARTED),
 *       ?status= filter, paging, and "counts" per status over all of them.
 *   GET /devices/{id}/task-reports: the reports of a device.
 *   GET /devices/{id}/task-reports/{reportId}: one report with its variables
 *       and the log of its last run. */
#include "api/api_int.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *report_to_json(const db_report_t *p, bool full)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", p->id ? json_integer(p->id) : json_null());
    json_object_set_new(o, "taskId", json_integer(p->task_id));
    json_object_set_new(o, "taskName", json_string(p->task_name));
    json_object_set_new(o, "groupId", p->task_group_id ? json_integer(p->task_group_id) : json_null());
    json_object_set_new(o, "deviceId", json_integer(p->device_id));
    json_object_set_new(o, "endpoint", json_string(p->endpoint));
    json_object_set_new(o, "status", json_string(p->status));
    json_object_set_new(o, "startedAt", api_json_time(p->started_at, true));
    json_object_set_new(o, "finishedAt", api_json_time(p->finished_at, true));
    json_object_set_new(o, "summary", json_string(p->summary));
    json_object_set_new(o, "runs", json_integer(p->runs));
    json_object_set_new(o, "sessionKind", p->session_kind[0] ? json_string(p->session_kind) : json_null());
    json_object_set_new(o, "updatedAt", api_json_time(p->updated_at, true));
    if (full) {
        json_t *vars = json_loads(p->variables_json ? p->variables_json : "{}", 0, NULL);
        json_object_set_new(o, "variables", json_is_object(vars) ? vars : json_object());
        if (vars && !json_is_object(vars))
            json_decref(vars);
    }
    return o;
}

static json_t *line_to_json(const db_report_line_t *l)
{
    return json_pack("{s:I, s:o, s:s, s:s, s:o, s:o, s:o, s:s}", "seq", (json_int_t)l->seq, "at",
                     api_json_time(l->at, false), "level", l->level, "step", l->step, "sent",
                     api_json_str_or_null(l->sent), "received", api_json_str_or_null(l->received), "code",
                     api_json_str_or_null(l->code), "message", l->message);
}

enum MHD_Result api_task_reports_list(api_req_t *r)
{
    enum MHD_Result ret;
    int limit, offset;
    if (api_paging(r, &limit, &offset, &ret) != 0)
        return ret;
    const char *status = api_query(r, "status");
    if (status && !*status)
        status = NULL;
    if (status) {
        bool ok = false;
        for (int i = 0; i < DB_REPORT_STATUS_COUNT; i++)
            if (strcmp(status, db_report_statuses[i]) == 0)
                ok = true;
        if (!ok)
            return api_problem_field(r, 400, "status",
                                     "status must be one of: NOT_STARTED, IN_PROGRESS, SUCCESS, WARNING, ERROR");
    }
    db_t *db = api_req_db(r);
    if (!db)
        return api_problem(r, 503, "database unavailable", NULL);
    /* the owner (visible) and its task */
    bool group = api_path_is_group(r);
    int rc;
    if (group) {
        db_group_t g;
        rc = db_group_get(db, r->id, &g);
        if (rc == SQLITE_OK && !api_domain_visible(r, g.domain))
            rc = SQLITE_NOTFOUND;
        db_group_free(&g);
        if (rc != SQLITE_OK)
            return api_problem_db(r, rc, "group");
    } else {
        db_device_t d;
        rc = db_device_get(db, r->id, &d);
        if (rc == SQLITE_OK && !api_domain_visible(r, d.domain))
            rc = SQLITE_NOTFOUND;
        db_device_free(&d);
        if (rc != SQLITE_OK)
            return api_problem_db(r, rc, "device");
    }
    db_task_t t;
    rc = db_task_get(db, r->id2, &t);
    if (rc == SQLITE_OK && (group ? t.group_id : t.device_id) != r->id)
        rc = SQLITE_NOTFOUND;
    db_task_free(&t);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "task");
    db_report_t *list = NULL;
    size_t n = 0;
    int64_t total = 0, counts[DB_REPORT_STATUS_COUNT];
    rc = db_task_reports(db, r->id2, status, limit, offset, &list, &n, &total, counts);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "task reports");
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, report_to_json(&list[i], false));
    db_report_list_free(&list, n);
    json_t *c = json_object();
    for (int i = 0; i < DB_REPORT_STATUS_COUNT; i++)
        json_object_set_new(c, db_report_statuses[i], json_integer(counts[i]));
    json_t *out = json_pack("{s:o, s:I, s:i, s:i, s:o}", "items", items, "total", (json_int_t)total, "limit", limit,
                            "offset", offset, "counts", c);
    return api_send_json(r, 200, out, NULL);
}

enum MHD_Result api_device_reports_list(api_req_t *r)
{
    enum MHD_Result ret;
    int limit, offset;
    if (api_paging(r, &limit, &offset, &ret) != 0)
        return ret;
    db_t *db = api_req_db(r);
    if (!db)
        return api_problem(r, 503, "database unavailable", NULL);
    if (!api_device_visible(r, db, &ret))
        return ret;
    db_report_t *list = NULL;
    size_t n = 0;
    int64_t total = 0;
    int rc = db_device_reports(db, r->id, limit, offset, &list, &n, &total);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "task reports");
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, report_to_json(&list[i], false));
    db_report_list_free(&list, n);
    return api_send_page(r, items, total, limit, offset);
}

enum MHD_Result api_device_report_get(api_req_t *r)
{
    db_t *db = api_req_db(r);
    if (!db)
        return api_problem(r, 503, "database unavailable", NULL);
    enum MHD_Result ret;
    if (!api_device_visible(r, db, &ret))
        return ret;
    db_report_t p;
    int rc = db_report_get(db, r->id2, &p);
    if (rc == SQLITE_OK && p.device_id != r->id) {
        db_report_free(&p);
        rc = SQLITE_NOTFOUND;
    }
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "task report");
    db_report_line_t *lines = NULL;
    size_t n = 0;
    rc = db_report_lines(db, p.id, &lines, &n);
    if (rc != SQLITE_OK) {
        db_report_free(&p);
        return api_problem_db(r, rc, "task report");
    }
    json_t *o = report_to_json(&p, true);
    json_t *log = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(log, line_to_json(&lines[i]));
    json_object_set_new(o, "log", log);
    db_report_lines_free(&lines, n);
    db_report_free(&p);
    return api_send_json(r, 200, o, NULL);
}
