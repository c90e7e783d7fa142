/* Device registration state and device operations (docs/management.md).
 *
 * Reads of stored state (registration, observations, values, notification
 * history) come from this worker's own database connection. Operations on a
 * device go to the network loop as a devop_t (server/common/devops.h): the
 * handler suspends the HTTP connection, submits the op, and returns; the loop
 * calls done() from its thread, which resumes the connection; libmicrohttpd
 * then calls the access handler again and http.c runs on_resume(), which
 * sends the answer. No worker thread waits for a device. */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "server/common/devops.h"
#include "server/lwm2m/valjson.h"

#define OP_DEFAULT_TIMEOUT_S 10
#define OP_MAX_TIMEOUT_S 300

json_t *api_registration_json(db_t *db, int64_t device_id)
{
    db_registration_t g;
    if (db_registration_get(db, device_id, &g) != SQLITE_OK)
        return NULL;
    int64_t now = db_now_ms();
    if (g.expires_at <= now) {
        db_registration_free(&g);
        return NULL;
    }
    json_t *cfs = json_loads(g.content_formats, 0, NULL);
    if (!json_is_array(cfs)) {
        json_decref(cfs);
        cfs = json_array();
    }
    char loc[32];
    snprintf(loc, sizeof loc, "/rd/%" PRId64, g.location);
    json_t *o = json_object();
    json_object_set_new(o, "registered", json_true());
    json_object_set_new(o, "location", json_string(loc));
    json_object_set_new(o, "endpoint", json_string(g.endpoint));
    json_object_set_new(o, "lifetime", json_integer(g.lifetime));
    json_object_set_new(o, "lwm2mVersion", json_string(g.lwm2m_version));
    json_object_set_new(o, "binding", json_string(g.binding));
    json_object_set_new(o, "queueMode", json_boolean(g.queue_mode));
    json_object_set_new(o, "sms", api_json_str_or_null(g.sms));
    json_object_set_new(o, "transport", json_string(g.transport));
    json_object_set_new(o, "secure", json_boolean(g.secure));
    json_object_set_new(o, "address", json_string(g.address));
    json_object_set_new(o, "objectLinks", json_string(g.object_links));
    json_object_set_new(o, "contentFormats", cfs);
    json_object_set_new(o, "registeredAt", api_json_time(g.registered_at, true));
    json_object_set_new(o, "lastUpdateAt", api_json_time(g.last_update_at, true));
    json_object_set_new(o, "expiresAt", api_json_time(g.expires_at, true));
    db_registration_free(&g);
    return o;
}

enum MHD_Result api_device_registration_get(api_req_t *r)
{
    db_t *db = api_req_db(r);
    if (!db)
        return api_problem(r, 503, "database unavailable", NULL);
    enum MHD_Result ret;
    if (!api_device_visible(r, db, &ret))
        return ret;
    json_t *o = api_registration_json(db, r->id);
    if (!o)
        return api_problem(r, 404, "the device is not registered", NULL);
    return api_send_json(r, 200, o, NULL);
}

enum MHD_Result api_device_observations_get(api_req_t *r)
{
    db_t *db = api_req_db(r);
    if (!db)
        return api_problem(r, 503, "database unavailable", NULL);
    enum MHD_Result ret;
    if (!api_device_visible(r, db, &ret))
        return ret;
    db_observation_t *list = NULL;
    size_t n = 0;
    int rc = db_observation_list(db, r->id, &list, &n);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "observations");
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *attrs = json_loads(list[i].attributes, 0, NULL);
        json_array_append_new(items, json_pack("{s:s,s:o,s:o,s:o,s:I}", "path", list[i].path, "attributes",
                                               attrs ? attrs : json_object(), "since",
                                               api_json_time(list[i].created_at, true), "lastNotificationAt",
                                               api_json_time(list[i].last_notification_at, true), "notifications",
                                               (json_int_t)list[i].notifications));
    }
    db_observation_list_free(&list, n);
    return api_send_page(r, items, (int64_t)n, (int)n, 0);
}

static const char *path_query(api_req_t *r, char *buf, size_t cap, bool *bad)
{
    const char *p = api_query(r, "path");
    *bad = false;
    if (!p)
        return NULL;
    lwm2m_path_t lp;
    if (lwm2m_path_parse(p, strlen(p), &lp) != 0 || lwm2m_path_format(&lp, buf, cap) < 0) {
        *bad = true;
        return NULL;
    }
    return lp.len ? buf : NULL;
}

/* Stored observation data as a page: the latest values (history false) or
 * the notification history (?limit, newest first), of ?path and below. */
static enum MHD_Result stored_page(api_req_t *r, bool history)
{
    db_t *db = api_req_db(r);
    if (!db)
        return api_problem(r, 503, "database unavailable", NULL);
    enum MHD_Result ret;
    if (!api_device_visible(r, db, &ret))
        return ret;
    char pb[48];
    bool bad;
    const char *p = path_query(r, pb, sizeof pb, &bad);
    if (bad)
        return api_problem_field(r, 400, "path", "not an LwM2M path such as /3/0");
    int limit = 100;
    const char *l = history ? api_query(r, "limit") : NULL;
    if (l) {
        char *end;
        long v = strtol(l, &end, 10);
        if (*end || v < 1 || v > 100)
            return api_problem_field(r, 400, "limit", "must be 1..100");
        limit = (int)v;
    }
    char *text = NULL;
    int rc = history ? db_notifications_get(db, r->id, p, limit, &text) : db_values_get(db, r->id, p, &text);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, history ? "notifications" : "values");
    json_t *items = json_loads(text, 0, NULL);
    free(text);
    if (!json_is_array(items)) {
        json_decref(items);
        return api_problem(r, 500, "stored values are unreadable", NULL);
    }
    /* stored times are unix ms: render them like every other time */
    const char *tkey = history ? "at" : "updatedAt";
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        json_t *t = json_object_get(it, tkey);
        if (json_is_integer(t))
            json_object_set_new(it, tkey, api_json_time(json_integer_value(t), true));
    }
    size_t n = json_array_size(items);
    return api_send_page(r, items, (int64_t)n, (int)n, 0);
}

enum MHD_Result api_device_values_get(api_req_t *r) { return stored_page(r, false); }

enum MHD_Result api_device_notifications_get(api_req_t *r) { return stored_page(r, true); }

/* ------------------------------------------------------------ operations */
typedef struct {
    devop_t op;
    api_req_t *req;
    atomic_int finished;
    char domain[API_DOMAIN_MAX];
} op_wait_t;

static void op_done(devop_t *op)
{
    op_wait_t *w = (op_wait_t *)op; /* op is the first member */
    atomic_store(&w->finished, 1);
    MHD_resume_connection(w->req->conn);
}

static void op_free(void *ctx)
{
    op_wait_t *w = ctx;
    free(w->op.body_json);
    free(w->op.query);
    free(w->op.result_json);
    free(w);
}

static enum MHD_Result op_resume(api_req_t *r)
{
    op_wait_t *w = r->susp_ctx;
    if (!atomic_load(&w->finished))
        return MHD_YES; /* spurious: keep waiting */
    devop_t *op = &w->op;
    if (op->http_status >= 300) {
        if (op->field[0]) {
            json_t *errs = json_pack("[{s:s,s:s}]", "field", op->field, "message", op->detail);
            return api_problem(r, (unsigned)op->http_status, op->title[0] ? op->title : op->detail, errs);
        }
        char detail[400];
        snprintf(detail, sizeof detail, "%s%s%s", op->title, op->detail[0] ? ": " : "", op->detail);
        return api_problem(r, (unsigned)op->http_status, detail, NULL);
    }
    json_t *body = op->result_json ? json_loads(op->result_json, 0, NULL) : NULL;
    char loc[160] = "";
    if (op->location[0]) {
        if (op->http_status == 201)
            snprintf(loc, sizeof loc, "/api/v1/devices/%" PRId64 "/data%s", op->device_id, op->location);
        else
            snprintf(loc, sizeof loc, "%s", op->location);
    }
    return api_send_json(r, (unsigned)op->http_status, body, loc[0] ? loc : NULL);
}

/* The operation a request names: method + the rest of the path. */
static int op_kind(api_req_t *r, char *path, size_t cap, devop_kind_t *kind)
{
    const char *m = r->method;
    path[0] = 0;
    const char *rest = strstr(r->url, "/data/");
    if (strstr(r->url, "/requests/")) {
        *kind = DEVOP_REQUEST_STATUS;
        return 0;
    }
    if (!rest) {
        if (strstr(r->url, "/composite/read"))
            *kind = DEVOP_READ_COMPOSITE;
        else if (strstr(r->url, "/composite/write"))
            *kind = DEVOP_WRITE_COMPOSITE;
        else
            *kind = DEVOP_BOOTSTRAP_TRIGGER;
        return 0;
    }
    rest += 5; /* at the '/' before the object id */
    size_t n = strlen(rest);
    while (n > 1 && rest[n - 1] == '/')
        n--;
    const char *suffix = NULL;
    static const char *const sfx[] = {"/discover", "/observe", "/attributes"};
    for (size_t i = 0; i < 3; i++) {
        size_t k = strlen(sfx[i]);
        if (n > k && !strncmp(rest + n - k, sfx[i], k)) {
            suffix = sfx[i];
            n -= k;
            break;
        }
    }
    if (n >= cap)
        return -1;
    memcpy(path, rest, n);
    path[n] = 0;
    lwm2m_path_t lp;
    if (lwm2m_path_parse(path, n, &lp) != 0 || lp.len == 0)
        return -1;
    lwm2m_path_format(&lp, path, cap);
    if (suffix && !strcmp(suffix, "/discover")) {
        if (strcmp(m, "GET"))
            return -2;
        *kind = DEVOP_DISCOVER;
    } else if (suffix && !strcmp(suffix, "/observe")) {
        if (!strcmp(m, "POST"))
            *kind = DEVOP_OBSERVE;
        else if (!strcmp(m, "DELETE"))
            *kind = DEVOP_CANCEL_OBSERVE;
        else
            return -2;
    } else if (suffix) {
        if (strcmp(m, "PUT"))
            return -2;
        *kind = DEVOP_WRITE_ATTRIBUTES;
    } else if (!strcmp(m, "GET")) {
        *kind = DEVOP_READ;
    } else if (!strcmp(m, "PUT")) {
        *kind = DEVOP_WRITE;
    } else if (!strcmp(m, "PATCH")) {
        *kind = DEVOP_WRITE_PARTIAL;
    } else if (!strcmp(m, "DELETE")) {
        *kind = DEVOP_DELETE;
    } else { /* POST: Execute on a resource, Create on an object */
        *kind = lp.len == 1 ? DEVOP_CREATE : DEVOP_EXECUTE;
    }
    return 0;
}

enum MHD_Result api_device_op(api_req_t *r)
{
    db_t *db = api_req_db(r);
    if (!db)
        return api_problem(r, 503, "database unavailable", NULL);
    enum MHD_Result ret;
    if (!api_device_visible(r, db, &ret))
        return ret;
    if (!r->api->devops.submit)
        return api_problem(r, 503, "device operations are not available in this process", NULL);
    op_wait_t *w = calloc(1, sizeof *w);
    if (!w)
        return api_problem(r, 500, "out of memory", NULL);
    devop_t *op = &w->op;
    int k = op_kind(r, op->path, sizeof op->path, &op->kind);
    if (k == -1) {
        free(w);
        return api_problem_field(r, 400, "path", "not an LwM2M path: /data/{object}[/{instance}[/{resource}[/{ri}]]]");
    }
    if (k == -2) {
        free(w);
        return api_problem(r, 405, "method not allowed on this path", NULL);
    }
    op->device_id = r->id;
    op->request_id = r->id2;
    op->format = -1;
    const char *f = api_query(r, "format");
    if (f) {
        op->format = lwm2m_format_parse(f);
        if (op->format < 0) {
            free(w);
            return api_problem_field(r, 400, "format", "one of tlv, senml-json, senml-cbor, lwm2m-cbor, text, opaque");
        }
    }
    unsigned timeout = OP_DEFAULT_TIMEOUT_S;
    const char *t = api_query(r, "timeout");
    if (t) {
        char *end;
        long v = strtol(t, &end, 10);
        if (*end || v < 1 || v > OP_MAX_TIMEOUT_S) {
            free(w);
            return api_problem_field(r, 400, "timeout", "seconds, 1..300");
        }
        timeout = (unsigned)v;
    }
    op->timeout_ms = timeout * 1000;
    const char *depth = api_query(r, "depth");
    if (depth && op->kind == DEVOP_DISCOVER) {
        if (strlen(depth) != 1 || depth[0] < '0' || depth[0] > '3') {
            free(w);
            return api_problem_field(r, 400, "depth", "0..3");
        }
        char q[16];
        snprintf(q, sizeof q, "depth=%s", depth);
        op->query = strdup(q);
    }
    if (r->body_len) {
        op->body_json = strdup(r->body);
        if (!op->body_json) {
            free(op->query);
            free(w);
            return api_problem(r, 500, "out of memory", NULL);
        }
    }
    snprintf(w->domain, sizeof w->domain, "%s", r->domain);
    op->domain = w->domain;
    op->done = op_done;
    w->req = r;
    r->susp_ctx = w;
    r->susp_free = op_free;
    r->on_resume = op_resume;
    MHD_suspend_connection(r->conn);
    if (r->api->devops.submit(r->api->devops.ctx, op) != 0) {
        /* the loop is stopping: answer now */
        MHD_resume_connection(r->conn);
        r->on_resume = NULL;
        return api_problem(r, 503, "the server is stopping", NULL);
    }
    return MHD_YES;
}
