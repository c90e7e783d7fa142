/* api: tasks of a group (/groups/{id}/tasks) or of a device
 * (/devices/{id}/tasks), the "Group tasks" screen.
 *
 * The configuration (XML) is parsed and checked with task_parse() on every
 * write, with the object registry the server loaded; a refused configuration
 * answers 422 "invalid task configuration" with the line and column. The LwM2M
 * servers it names (serverId / serverName written literally) are resolved in
 * the task's domain and stored as task_server_refs, so deleting a server
 * deletes the tasks that use it. Tasks maintained by the server itself
 * (managedBy, e.g. the bootstrap settings' task) are read-only here: 409. */
#include "api/api_int.h"
#include "server/common/log.h"
#include "server/tasks/expr.h"
#include "server/tasks/task.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_CHARS 128
#define PRIORITY_MAX 1000
#define INT32_LIMIT 2147483647LL
#define CONDITION_MAX 4096

static const char *const k_fields[] = {
    "name", "config", "active", "execution", "automaticRestart", "repeatOnBootstrap", "repeatOnRegister",
    "condition", "priority", "minIntervalSeconds", "appliesToSubgroups", "schedule",
    /* read-only: accepted and ignored */
    "id", "groupId", "deviceId", "domain", "createdAt", "updatedAt", "managedBy", "serverIds", NULL};
static const char *const k_schedule_fields[] = {"notBefore", "notAfter", NULL};

/* -------------------------------------------------------------- owner */
typedef struct {
    int64_t group_id, device_id;
    char *domain;
} owner_t;

static bool load_owner(api_req_t *r, db_t *db, owner_t *o, enum MHD_Result *ret)
{
    memset(o, 0, sizeof *o);
    int rc;
    if (api_path_is_group(r)) {
        db_group_t g;
        rc = db_group_get(db, r->id, &g);
        if (rc == SQLITE_OK && !api_domain_visible(r, g.domain))
            rc = SQLITE_NOTFOUND;
        if (rc == SQLITE_OK) {
            o->group_id = g.id;
            o->domain = g.domain;
            g.domain = NULL;
        }
        db_group_free(&g);
        if (rc != SQLITE_OK)
            *ret = api_problem_db(r, rc, "group");
    } else {
        db_device_t d;
        rc = db_device_get(db, r->id, &d);
        if (rc == SQLITE_OK && !api_domain_visible(r, d.domain))
            rc = SQLITE_NOTFOUND;
        if (rc == SQLITE_OK) {
            o->device_id = d.id;
            o->domain = d.domain;
            d.domain = NULL;
        }
        db_device_free(&d);
        if (rc != SQLITE_OK)
            *ret = api_problem_db(r, rc, "device");
    }
    return rc == SQLITE_OK;
}

/* The task {sub} of the owner, or 404. */
static bool load_task(api_req_t *r, db_t *db, const owner_t *o, db_task_t *t, enum MHD_Result *ret)
{
    int rc = db_task_get(db, r->id2, t);
    if (rc == SQLITE_OK && ((o->group_id && t->group_id != o->group_id) || (o->device_id && t->device_id != o->device_id))) {
        db_task_free(t);
        rc = SQLITE_NOTFOUND;
    }
    if (rc != SQLITE_OK) {
        *ret = api_problem_db(r, rc, "task");
        return false;
    }
    return true;
}

/* ---------------------------------------------------------- rendering */
static json_t *task_to_json(const db_task_t *t)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(t->id));
    json_object_set_new(o, "domain", json_string(t->domain));
    json_object_set_new(o, "groupId", t->group_id ? json_integer(t->group_id) : json_null());
    json_object_set_new(o, "deviceId", t->device_id ? json_integer(t->device_id) : json_null());
    json_object_set_new(o, "name", json_string(t->name));
    json_object_set_new(o, "config", json_string(t->config_xml));
    json_object_set_new(o, "active", json_boolean(t->active));
    json_object_set_new(o, "execution", json_string(t->execution == DB_TASK_ONCE ? "once" : "onceAndRepeat"));
    json_object_set_new(o, "automaticRestart", json_boolean(t->automatic_restart));
    json_object_set_new(o, "repeatOnBootstrap", json_boolean(t->repeat_on_bootstrap));
    json_object_set_new(o, "repeatOnRegister", json_boolean(t->repeat_on_register));
    json_object_set_new(o, "condition", t->condition && *t->condition ? json_string(t->condition) : json_null());
    json_object_set_new(o, "priority", json_integer(t->priority));
    json_object_set_new(o, "minIntervalSeconds", json_integer(t->min_interval_s));
    json_object_set_new(o, "appliesToSubgroups", json_boolean(t->applies_to_subgroups));
    json_object_set_new(o, "schedule",
                        json_pack("{s:o, s:o}", "notBefore", api_json_time(t->not_before, true), "notAfter",
                                  api_json_time(t->not_after, true)));
    json_object_set_new(o, "managedBy", api_json_str_or_null(t->managed_by));
    json_t *ids = json_array();
    for (size_t i = 0; i < t->n_server_ids; i++)
        json_array_append_new(ids, json_integer(t->server_ids[i]));
    json_object_set_new(o, "serverIds", ids);
    json_object_set_new(o, "createdAt", api_json_time(t->created_at, false));
    json_object_set_new(o, "updatedAt", api_json_time(t->updated_at, false));
    return o;
}

/* --------------------------------------------------------- validation */
static bool sent(json_t *ex, const char *key) { return !api_absent(ex, key); }

/* Adds the config error with its place to v. */
static void add_config_error(api_verr_t *v, int line, int column, const char *msg)
{
    api_verr_add(v, 422, "config", "%s", msg);
    json_t *last = json_array_get(v->errors, json_array_size(v->errors) - 1);
    if (last && line > 0) {
        json_object_set_new(last, "line", json_integer(line));
        json_object_set_new(last, "column", json_integer(column));
    }
}

static void get_time(json_t *sched, const char *key, const char *field, api_verr_t *v, int64_t *out)
{
    const char *s;
    if (!api_get_string(sched, key, field, v, &s))
        return;
    int64_t ms;
    if (!api_parse_time(s, &ms) || ms <= 0)
        api_verr_add(v, 422, field, "must be an ISO-8601 time such as 2026-11-22T10:00:00Z (or null)");
    else
        *out = ms;
}

/* Builds *t from the full representation doc and the request ex. The config
 * is parsed; the servers it names are resolved into t->server_ids. */
static void task_from_json(api_req_t *r, db_t *db, json_t *doc, json_t *ex, const owner_t *o, db_task_t *t,
                           api_verr_t *v, int *dbrc)
{
    memset(t, 0, sizeof *t);
    *dbrc = SQLITE_OK;
    api_check_unknown(doc, k_fields, "", v);
    const char *s;
    if (api_get_string(doc, "name", "name", v, &s)) {
        size_t n = api_utf8_len(s);
        if (n < 1 || n > NAME_MAX_CHARS)
            api_verr_add(v, 422, "name", "must be 1 to %d characters long", NAME_MAX_CHARS);
        else if (api_has_ctl(s))
            api_verr_add(v, 422, "name", "must not contain control characters");
        else
            t->name = strdup(s);
    } else if (api_absent(doc, "name")) {
        api_verr_add(v, 422, "name", "is required");
    }

    bool b;
    t->active = true;
    if (api_get_bool(doc, "active", "active", v, &b))
        t->active = b;
    t->execution = DB_TASK_ONCE_AND_REPEAT;
    bool exec_ok = true;
    if (api_get_string(doc, "execution", "execution", v, &s)) {
        if (strcmp(s, "once") == 0)
            t->execution = DB_TASK_ONCE;
        else if (strcmp(s, "onceAndRepeat") != 0) {
            api_verr_add(v, 422, "execution", "must be one of: once, onceAndRepeat");
            exec_ok = false;
        }
    } else if (!api_absent(doc, "execution")) {
        exec_ok = false;
    }
    static const struct {
        const char *key;
        size_t off;
    } flags[] = {{"automaticRestart", offsetof(db_task_t, automatic_restart)},
                 {"repeatOnBootstrap", offsetof(db_task_t, repeat_on_bootstrap)},
                 {"repeatOnRegister", offsetof(db_task_t, repeat_on_register)}};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        bool *dst = (bool *)((char *)t + flags[i].off);
        if (!api_get_bool(doc, flags[i].key, flags[i].key, v, &b) || !b)
            continue;
        if (exec_ok && t->execution == DB_TASK_ONCE) {
            /* refused when sent, dropped when inherited from the stored task */
            if (sent(ex, flags[i].key))
                api_verr_add(v, 422, flags[i].key, "only applies to execution onceAndRepeat");
        } else {
            *dst = true;
        }
    }

    if (api_get_string(doc, "condition", "condition", v, &s) && *s) {
        if (strlen(s) > CONDITION_MAX)
            api_verr_add(v, 422, "condition", "must be at most %d bytes", CONDITION_MAX);
        else if (!expr_has_parts(s))
            api_verr_add(v, 422, "condition", "must be an expression in ${...}, e.g. ${device.property.model == 'X'}");
        else {
            expr_error_t e;
            memset(&e, 0, sizeof e);
            if (expr_check(s, &e) != 0)
                api_verr_add(v, 422, "condition", "invalid expression at position %zu: %s", e.pos, e.msg);
            else
                t->condition = strdup(s);
        }
    }
    if (!t->condition)
        t->condition = strdup("");

    int64_t iv;
    t->priority = 10;
    if (api_get_int(doc, "priority", "priority", v, &iv)) {
        if (iv < 0 || iv > PRIORITY_MAX)
            api_verr_add(v, 422, "priority", "must be from 0 to %d (lower runs first)", PRIORITY_MAX);
        else
            t->priority = (int)iv;
    }
    if (api_get_int(doc, "minIntervalSeconds", "minIntervalSeconds", v, &iv)) {
        if (iv < 0 || iv > INT32_LIMIT)
            api_verr_add(v, 422, "minIntervalSeconds", "must be from 0 to %lld", INT32_LIMIT);
        else
            t->min_interval_s = iv;
    }
    if (api_get_bool(doc, "appliesToSubgroups", "appliesToSubgroups", v, &b) && b) {
        if (o->device_id) {
            if (sent(ex, "appliesToSubgroups"))
                api_verr_add(v, 422, "appliesToSubgroups", "only applies to group tasks");
        } else {
            t->applies_to_subgroups = true;
        }
    }
    json_t *sched = NULL;
    if (api_get_object(doc, "schedule", "schedule", v, &sched)) {
        api_check_unknown(sched, k_schedule_fields, "schedule.", v);
        get_time(sched, "notBefore", "schedule.notBefore", v, &t->not_before);
        get_time(sched, "notAfter", "schedule.notAfter", v, &t->not_after);
        if (t->not_before && t->not_after && t->not_before >= t->not_after)
            api_verr_add(v, 422, "schedule.notAfter", "must be later than schedule.notBefore");
    }

    /* the configuration last: its errors carry a line and a column */
    if (api_get_string(doc, "config", "config", v, &s)) {
        size_t len = strlen(s);
        task_program_t *prog = NULL;
        task_error_t err;
        memset(&err, 0, sizeof err);
        if (len == 0) {
            api_verr_add(v, 422, "config", "is required (a <config> document)");
        } else if (len > TASK_MAX_XML) {
            api_verr_add(v, 422, "config", "must be at most %d bytes", TASK_MAX_XML);
        } else if (!r->api->registry) {
            api_verr_add(v, 422, "config", "cannot be checked: no object definitions are loaded");
        } else if (task_parse(s, len, r->api->registry, &prog, &err) != 0) {
            add_config_error(v, err.line, err.column, err.msg[0] ? err.msg : "invalid task configuration");
        } else {
            char bad[200];
            int rc = db_task_resolve_servers(db, o->domain, prog->server_ids, prog->nserver_ids, prog->server_names,
                                             prog->nserver_names, &t->server_ids, &t->n_server_ids, bad, sizeof bad);
            if (rc == SQLITE_NOTFOUND)
                api_verr_add(v, 422, "config", "%s: no such LwM2M server in this domain", bad);
            else if (rc != SQLITE_OK)
                *dbrc = rc;
            t->config_xml = strdup(s);
        }
        task_program_free(&prog);
    } else if (api_absent(doc, "config")) {
        api_verr_add(v, 422, "config", "is required (a <config> document)");
    }
}

/* 422 "invalid task configuration" when every error is on the config. */
static enum MHD_Result answer_errors(api_req_t *r, api_verr_t *v)
{
    size_t i;
    json_t *e;
    bool only_config = v->status == 422 && json_array_size(v->errors) > 0;
    json_array_foreach(v->errors, i, e) {
        const char *f = json_string_value(json_object_get(e, "field"));
        if (!f || strcmp(f, "config") != 0)
            only_config = false;
    }
    if (!only_config)
        return api_problem_verr(r, v, NULL);
    json_t *errors = v->errors;
    v->errors = NULL;
    v->status = 0;
    const char *detail = json_string_value(json_object_get(json_array_get(errors, 0), "message"));
    json_t *p = json_pack("{s:s, s:s, s:i, s:s, s:o}", "type", "urn:lwdm:problem:invalid-task-configuration",
                          "title", "invalid task configuration", "status", 422, "detail", detail ? detail : "",
                          "errors", errors);
    return api_send_typed(r, 422, p, NULL, "application/problem+json");
}

static enum MHD_Result refuse_managed(api_req_t *r, const db_task_t *t)
{
    char msg[300];
    if (strcmp(t->managed_by, "bootstrap-settings") == 0)
        snprintf(msg, sizeof msg,
                 "task %lld is maintained by the LwM2M bootstrap settings: edit them with PUT "
                 "/api/v1/bootstrap-settings instead", (long long)t->id);
    else
        snprintf(msg, sizeof msg, "task %lld is maintained by the server (%s) and cannot be changed here",
                 (long long)t->id, t->managed_by);
    return api_problem(r, 409, msg, NULL);
}

/* ------------------------------------------------------------ handlers */
enum MHD_Result api_tasks_list(api_req_t *r)
{
    enum MHD_Result ret;
    int limit, offset;
    if (api_paging(r, &limit, &offset, &ret) != 0)
        return ret;
    db_t *db = api_req_db(r);
    if (!db)
        return api_problem(r, 503, "database unavailable", NULL);
    owner_t o;
    if (!load_owner(r, db, &o, &ret))
        return ret;
    free(o.domain);
    db_task_t *list = NULL;
    size_t n = 0;
    int64_t total = 0;
    int rc = db_task_list(db, o.group_id, o.device_id, api_query(r, "q"), limit, offset, &list, &n, &total);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "tasks");
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, task_to_json(&list[i]));
    db_task_list_free(&list, n);
    return api_send_page(r, items, total, limit, offset);
}

enum MHD_Result api_tasks_get(api_req_t *r)
{
    db_t *db = api_req_db(r);
    if (!db)
        return api_problem(r, 503, "database unavailable", NULL);
    owner_t o;
    enum MHD_Result ret;
    if (!load_owner(r, db, &o, &ret))
        return ret;
    db_task_t t;
    bool ok = load_task(r, db, &o, &t, &ret);
    free(o.domain);
    if (!ok)
        return ret;
    json_t *j = task_to_json(&t);
    db_task_free(&t);
    return api_send_json(r, 200, j, NULL);
}

static enum MHD_Result save(api_req_t *r, db_t *db, json_t *doc, json_t *ex, const owner_t *o, const db_task_t *stored)
{
    api_verr_t v;
    api_verr_init(&v);
    db_task_t t;
    int rc;
    task_from_json(r, db, doc, ex, o, &t, &v, &rc);
    if (rc != SQLITE_OK) {
        api_verr_free(&v);
        db_task_free(&t);
        return api_problem_db(r, rc, "task");
    }
    if (api_verr_any(&v)) {
        db_task_free(&t);
        return answer_errors(r, &v);
    }
    api_verr_free(&v);
    t.group_id = o->group_id;
    t.device_id = o->device_id;
    t.domain = strdup(o->domain);
    if (stored) {
        t.id = stored->id;
        t.managed_by = stored->managed_by ? strdup(stored->managed_by) : NULL;
    }
    rc = stored ? db_task_update(db, &t) : db_task_insert(db, &t);
    int64_t id = t.id;
    db_task_free(&t);
    if (rc == SQLITE_OK)
        rc = db_commit(db);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "task");
    db_task_t g;
    rc = db_task_get(db, id, &g);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "task");
    json_t *j = task_to_json(&g);
    db_task_free(&g);
    LOG_INFO("api", "event=task_%s id=%lld %s=%lld", stored ? "updated" : "created", (long long)id,
             o->group_id ? "group" : "device", (long long)(o->group_id ? o->group_id : o->device_id));
    if (stored)
        return api_send_json(r, 200, j, NULL);
    char loc[96];
    snprintf(loc, sizeof loc, "/api/v1/%s/%lld/tasks/%lld", o->group_id ? "groups" : "devices",
             (long long)(o->group_id ? o->group_id : o->device_id), (long long)id);
    return api_send_json(r, 201, j, loc);
}

static enum MHD_Result do_create(api_req_t *r, db_t *db, json_t *body)
{
    owner_t o;
    enum MHD_Result ret;
    if (!load_owner(r, db, &o, &ret))
        return ret;
    ret = save(r, db, body, body, &o, NULL);
    free(o.domain);
    return ret;
}

/* put (patch false) or merge patch (patch true) */
static enum MHD_Result write_existing(api_req_t *r, db_t *db, json_t *body, bool patch)
{
    owner_t o;
    enum MHD_Result ret;
    if (!load_owner(r, db, &o, &ret))
        return ret;
    db_task_t stored;
    if (!load_task(r, db, &o, &stored, &ret)) {
        free(o.domain);
        return ret;
    }
    if (stored.managed_by) {
        ret = refuse_managed(r, &stored);
    } else if (patch) {
        json_t *cur = task_to_json(&stored);
        json_t *doc = api_merge_patch(cur, body);
        json_decref(cur);
        ret = doc ? save(r, db, doc, body, &o, &stored) : api_problem(r, 500, "out of memory", NULL);
        json_decref(doc);
    } else {
        ret = save(r, db, body, body, &o, &stored);
    }
    db_task_free(&stored);
    free(o.domain);
    return ret;
}

static enum MHD_Result do_put(api_req_t *r, db_t *db, json_t *body) { return write_existing(r, db, body, false); }
static enum MHD_Result do_patch(api_req_t *r, db_t *db, json_t *body) { return write_existing(r, db, body, true); }

enum MHD_Result api_tasks_create(api_req_t *r) { return api_with_body_tx(r, do_create); }
enum MHD_Result api_tasks_put(api_req_t *r) { return api_with_body_tx(r, do_put); }
enum MHD_Result api_tasks_patch(api_req_t *r) { return api_with_body_tx(r, do_patch); }

static enum MHD_Result do_delete(api_req_t *r, db_t *db, json_t *unused)
{
    (void)unused;
    owner_t o;
    enum MHD_Result ret;
    if (!load_owner(r, db, &o, &ret))
        return ret;
    db_task_t t;
    bool ok = load_task(r, db, &o, &t, &ret);
    free(o.domain);
    if (!ok)
        return ret;
    if (t.managed_by) {
        ret = refuse_managed(r, &t);
        db_task_free(&t);
        return ret;
    }
    db_task_free(&t);
    int rc = db_task_delete(db, r->id2);
    if (rc == SQLITE_OK)
        rc = db_commit(db);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "task");
    LOG_INFO("api", "event=task_deleted id=%lld", (long long)r->id2);
    return api_send_empty(r, 204);
}

enum MHD_Result api_tasks_delete(api_req_t *r)
{
    db_t *db = api_req_db(r);
    if (!db)
        return api_problem(r, 503, "database unavailable", NULL);
    return api_in_tx(r, db, do_delete, NULL);
}
