/* api: /api/v1/bootstrap-settings (Administration -> LwM2M bootstrap) of the
 * caller's domain, or of ?domain= (a domain the caller can see).
 * {"bootstrapServerId": id|null, "managementServerIds": [id...],
 *  "acceptUnknownDevices": bool} + read-only "domain", "taskId", "updatedAt". */
#include "api/api_int.h"
#include "server/common/log.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const k_fields[] = {"bootstrapServerId", "managementServerIds", "acceptUnknownDevices",
                                       /* read-only */ "domain", "taskId", "updatedAt", NULL};

/* The domain addressed: ?domain= or the caller's. NULL (answered) if the
 * caller may not see it. */
static const char *target_domain(api_req_t *r, enum MHD_Result *ret)
{
    const char *d = api_query(r, "domain");
    if (!d || !*d)
        return r->domain;
    size_t n = strlen(d);
    if (d[0] != '/' || d[n - 1] != '/' || n >= API_DOMAIN_MAX) {
        *ret = api_problem_field(r, 400, "domain", "domain must be a path such as /acme/");
        return NULL;
    }
    if (!api_domain_visible(r, d)) {
        *ret = api_problem(r, 403, "the domain is outside of the caller's domain", NULL);
        return NULL;
    }
    return d;
}

static json_t *settings_to_json(const char *domain, const db_bs_settings_t *s)
{
    json_t *ids = json_array();
    for (size_t i = 0; i < s->n_management; i++)
        json_array_append_new(ids, json_integer(s->management_server_ids[i]));
    return json_pack("{s:s, s:o, s:o, s:b, s:o, s:o}", "domain", domain, "bootstrapServerId",
                     s->bootstrap_server_id ? json_integer(s->bootstrap_server_id) : json_null(),
                     "managementServerIds", ids, "acceptUnknownDevices", s->accept_unknown, "taskId",
                     s->task_id ? json_integer(s->task_id) : json_null(), "updatedAt",
                     api_json_time(s->updated_at, true));
}

enum MHD_Result api_bs_settings_get(api_req_t *r)
{
    enum MHD_Result ret;
    const char *domain = target_domain(r, &ret);
    if (!domain)
        return ret;
    db_t *db = api_req_db(r);
    if (!db)
        return api_problem(r, 503, "database unavailable", NULL);
    db_bs_settings_t s;
    int rc = db_bs_settings_get(db, domain, &s);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "bootstrap settings");
    json_t *o = settings_to_json(domain, &s);
    db_bs_settings_free(&s);
    return api_send_json(r, 200, o, NULL);
}

/* A server usable by `domain`: it exists in the domain or an ancestor. */
static int usable_server(db_t *db, const char *domain, int64_t id, db_server_t *out)
{
    int rc = db_server_get(db, id, out);
    if (rc == SQLITE_OK && strncmp(domain, out->domain, strlen(out->domain)) != 0) {
        db_server_free(out);
        rc = SQLITE_NOTFOUND;
    }
    return rc;
}

static void settings_from_json(db_t *db, const char *domain, json_t *doc, db_bs_settings_t *s, api_verr_t *v,
                               int *dbrc)
{
    memset(s, 0, sizeof *s);
    *dbrc = SQLITE_OK;
    api_check_unknown(doc, k_fields, "", v);
    int64_t id;
    db_server_t srv;
    if (api_get_int(doc, "bootstrapServerId", "bootstrapServerId", v, &id)) {
        int rc = usable_server(db, domain, id, &srv);
        if (rc == SQLITE_NOTFOUND)
            api_verr_add(v, 422, "bootstrapServerId", "no LwM2M server %lld in this domain", (long long)id);
        else if (rc != SQLITE_OK)
            *dbrc = rc;
        else {
            if (srv.type != DB_SRV_BOOTSTRAP)
                api_verr_add(v, 422, "bootstrapServerId", "server '%s' is not a bootstrap server", srv.name);
            else
                s->bootstrap_server_id = id;
            db_server_free(&srv);
        }
    }
    json_t *arr = NULL;
    if (api_get_array(doc, "managementServerIds", "managementServerIds", v, &arr)) {
        size_t n = json_array_size(arr);
        s->management_server_ids = calloc(n ? n : 1, sizeof *s->management_server_ids);
        size_t i;
        json_t *e;
        json_array_foreach(arr, i, e) {
            char field[64];
            snprintf(field, sizeof field, "managementServerIds[%zu]", i);
            if (!json_is_integer(e)) {
                api_verr_add(v, 400, field, "must be an integer");
                continue;
            }
            id = (int64_t)json_integer_value(e);
            bool dup = false;
            for (size_t k = 0; k < s->n_management; k++)
                if (s->management_server_ids[k] == id)
                    dup = true;
            if (dup) {
                api_verr_add(v, 422, field, "server %lld is listed twice", (long long)id);
                continue;
            }
            int rc = usable_server(db, domain, id, &srv);
            if (rc == SQLITE_NOTFOUND) {
                api_verr_add(v, 422, field, "no LwM2M server %lld in this domain", (long long)id);
                continue;
            }
            if (rc != SQLITE_OK) {
                *dbrc = rc;
                continue;
            }
            if (srv.type != DB_SRV_MANAGEMENT)
                api_verr_add(v, 422, field, "server '%s' is not a management server", srv.name);
            else if (s->management_server_ids)
                s->management_server_ids[s->n_management++] = id;
            db_server_free(&srv);
        }
    }
    bool b;
    if (api_get_bool(doc, "acceptUnknownDevices", "acceptUnknownDevices", v, &b))
        s->accept_unknown = b;
}

static enum MHD_Result save(api_req_t *r, db_t *db, json_t *doc, const char *domain)
{
    db_bs_settings_t cur;
    int rc = db_bs_settings_get(db, domain, &cur);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "bootstrap settings");
    api_verr_t v;
    api_verr_init(&v);
    db_bs_settings_t s;
    settings_from_json(db, domain, doc, &s, &v, &rc);
    s.task_id = cur.task_id; /* read-only: maintained by the server */
    db_bs_settings_free(&cur);
    if (rc != SQLITE_OK) {
        api_verr_free(&v);
        db_bs_settings_free(&s);
        return api_problem_db(r, rc, "bootstrap settings");
    }
    if (api_verr_any(&v)) {
        db_bs_settings_free(&s);
        return api_problem_verr(r, &v, NULL);
    }
    api_verr_free(&v);
    rc = db_bs_settings_put(db, domain, &s);
    db_bs_settings_free(&s);
    if (rc == SQLITE_CONSTRAINT) /* the domain itself does not exist */
        return api_problem(r, 404, "no such domain", NULL);
    if (rc == SQLITE_OK) /* the group task that carries the settings */
        rc = db_bs_settings_sync_task(db, domain);
    if (rc == SQLITE_OK)
        rc = db_commit(db);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "bootstrap settings");
    rc = db_bs_settings_get(db, domain, &s);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "bootstrap settings");
    json_t *o = settings_to_json(domain, &s);
    db_bs_settings_free(&s);
    LOG_INFO("api", "event=bootstrap_settings_updated domain=%s", domain);
    return api_send_json(r, 200, o, NULL);
}

static enum MHD_Result do_put(api_req_t *r, db_t *db, json_t *body)
{
    enum MHD_Result ret;
    const char *domain = target_domain(r, &ret);
    if (!domain)
        return ret;
    return save(r, db, body, domain);
}

static enum MHD_Result do_patch(api_req_t *r, db_t *db, json_t *patch)
{
    enum MHD_Result ret;
    const char *domain = target_domain(r, &ret);
    if (!domain)
        return ret;
    db_bs_settings_t cur;
    int rc = db_bs_settings_get(db, domain, &cur);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "bootstrap settings");
    json_t *curj = settings_to_json(domain, &cur);
    db_bs_settings_free(&cur);
    json_t *doc = api_merge_patch(curj, patch);
    json_decref(curj);
    if (!doc)
        return api_problem(r, 500, "out of memory", NULL);
    ret = save(r, db, doc, domain);
    json_decref(doc);
    return ret;
}

enum MHD_Result api_bs_settings_put(api_req_t *r) { return api_with_body_tx(r, do_put); }
enum MHD_Result api_bs_settings_patch(api_req_t *r) { return api_with_body_tx(r, do_patch); }
