/* api: /api/v1/groups (Device groups), their members, and the setting values
 * of groups and devices (/groups/{id}/setting-values,
 * /devices/{id}/setting-values), GET /devices/{id}/groups.
 *
 * Same write rules as the other resources: one validator for a whole
 * representation, PATCH = merge patch onto the stored representation, every
 * write inside the request's transaction (a rejected request changes
 * nothing). */
#include "api/api_int.h"
#include "server/common/log.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_CHARS 128
#define DESCRIPTION_MAX_CHARS 1024
#define PRIORITY_MAX 1000
#define SV_NAME_MAX 128
#define SV_VALUE_MAX (64 * 1024)
#define SV_MAX_COUNT 1000

static const char *const k_fields[] = {"name", "description", "parentId", "priority",
                                       /* read-only */ "id", "domain", "bootstrap", "deviceCount", "createdAt",
                                       "updatedAt", NULL};

bool api_path_is_group(const api_req_t *r) { return strncmp(r->url, "/api/v1/groups/", 15) == 0; }

static json_t *group_to_json(const db_group_t *g)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(g->id));
    json_object_set_new(o, "domain", json_string(g->domain));
    json_object_set_new(o, "name", json_string(g->name));
    json_object_set_new(o, "description", json_string(g->description));
    json_object_set_new(o, "parentId", g->parent_id ? json_integer(g->parent_id) : json_null());
    json_object_set_new(o, "priority", json_integer(g->priority));
    json_object_set_new(o, "bootstrap", json_boolean(g->is_bootstrap));
    json_object_set_new(o, "deviceCount", json_integer(g->n_devices));
    json_object_set_new(o, "createdAt", api_json_time(g->created_at, false));
    json_object_set_new(o, "updatedAt", api_json_time(g->updated_at, false));
    return o;
}

static json_t *member_to_json(const db_device_t *d)
{
    return json_pack("{s:I, s:s, s:s, s:b, s:o}", "id", (json_int_t)d->id, "endpoint", d->endpoint, "domain",
                     d->domain, "blacklisted", d->blacklisted, "lastContactAt",
                     api_json_time(d->last_contact_at, true));
}

/* Loads group `id` visible to the caller, or answers 404. */
static bool load_group(api_req_t *r, db_t *db, int64_t id, db_group_t *g, enum MHD_Result *ret)
{
    int rc = db_group_get(db, id, g);
    if (rc == SQLITE_OK && !api_domain_visible(r, g->domain)) {
        db_group_free(g);
        rc = SQLITE_NOTFOUND;
    }
    if (rc != SQLITE_OK) {
        *ret = api_problem_db(r, rc, "group");
        return false;
    }
    return true;
}

static bool load_device(api_req_t *r, db_t *db, int64_t id, db_device_t *d, enum MHD_Result *ret)
{
    int rc = db_device_get(db, id, d);
    if (rc == SQLITE_OK && !api_domain_visible(r, d->domain)) {
        db_device_free(d);
        rc = SQLITE_NOTFOUND;
    }
    if (rc != SQLITE_OK) {
        *ret = api_problem_db(r, rc, "device");
        return false;
    }
    return true;
}

/* ------------------------------------------------------------- groups */
enum MHD_Result api_groups_list(api_req_t *r)
{
    enum MHD_Result ret;
    int limit, offset;
    if (api_paging(r, &limit, &offset, &ret) != 0)
        return ret;
    db_t *db = api_req_db(r);
    if (!db)
        return api_problem(r, 503, "database unavailable", NULL);
    db_group_t *list = NULL;
    size_t n = 0;
    int64_t total = 0;
    int rc = db_group_list(db, r->domain, api_query(r, "q"), limit, offset, &list, &n, &total);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "groups");
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, group_to_json(&list[i]));
    db_group_list_free(&list, n);
    return api_send_page(r, items, total, limit, offset);
}

enum MHD_Result api_groups_get(api_req_t *r)
{
    db_t *db = api_req_db(r);
    if (!db)
        return api_problem(r, 503, "database unavailable", NULL);
    db_group_t g;
    enum MHD_Result ret;
    if (!load_group(r, db, r->id, &g, &ret))
        return ret;
    json_t *o = group_to_json(&g);
    db_group_free(&g);
    return api_send_json(r, 200, o, NULL);
}

/* Validates doc into *g (domain, parent, name, description, priority). */
static void group_from_json(api_req_t *r, db_t *db, json_t *doc, const db_group_t *stored, db_group_t *g,
                            api_verr_t *v, int *dbrc)
{
    memset(g, 0, sizeof *g);
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
            g->name = strdup(s);
    } else if (api_absent(doc, "name")) {
        api_verr_add(v, 422, "name", "is required");
    }
    if (api_get_string(doc, "description", "description", v, &s)) {
        if (api_utf8_len(s) > DESCRIPTION_MAX_CHARS)
            api_verr_add(v, 422, "description", "must be at most %d characters long", DESCRIPTION_MAX_CHARS);
        else
            g->description = strdup(s);
    }
    if (!g->description)
        g->description = strdup("");
    int64_t iv;
    g->priority = 10;
    if (api_get_int(doc, "priority", "priority", v, &iv)) {
        if (iv < 0 || iv > PRIORITY_MAX)
            api_verr_add(v, 422, "priority", "must be from 0 to %d (lower wins)", PRIORITY_MAX);
        else
            g->priority = (int)iv;
    }
    g->domain = strdup(stored ? stored->domain : r->domain);
    if (api_get_int(doc, "parentId", "parentId", v, &iv)) {
        db_group_t p;
        int rc = db_group_get(db, iv, &p);
        if (rc == SQLITE_OK && !api_domain_visible(r, p.domain)) {
            db_group_free(&p);
            rc = SQLITE_NOTFOUND;
        }
        if (rc == SQLITE_NOTFOUND) {
            api_verr_add(v, 422, "parentId", "no group %lld", (long long)iv);
            return;
        }
        if (rc != SQLITE_OK) {
            *dbrc = rc;
            return;
        }
        if (stored && stored->is_bootstrap) {
            api_verr_add(v, 422, "parentId", "the bootstrap group stays at the top of the tree");
        } else if (stored && strcmp(p.domain, stored->domain) != 0) {
            api_verr_add(v, 422, "parentId", "group %lld belongs to another domain", (long long)iv);
        } else if (stored) {
            bool cycle = false;
            rc = db_group_is_ancestor(db, stored->id, iv, &cycle);
            if (rc != SQLITE_OK)
                *dbrc = rc;
            else if (cycle)
                api_verr_add(v, 422, "parentId", "group %lld is this group or one of its subgroups", (long long)iv);
            else
                g->parent_id = iv;
        } else {
            g->parent_id = iv;
            free(g->domain); /* a new group lives in its parent's domain */
            g->domain = strdup(p.domain);
        }
        db_group_free(&p);
    }
}

static enum MHD_Result save(api_req_t *r, db_t *db, json_t *doc, const db_group_t *stored)
{
    api_verr_t v;
    api_verr_init(&v);
    db_group_t g;
    int rc;
    group_from_json(r, db, doc, stored, &g, &v, &rc);
    if (rc != SQLITE_OK) {
        api_verr_free(&v);
        db_group_free(&g);
        return api_problem_db(r, rc, "group");
    }
    if (api_verr_any(&v)) {
        db_group_free(&g);
        return api_problem_verr(r, &v, NULL);
    }
    api_verr_free(&v);
    if (stored)
        g.id = stored->id;
    rc = stored ? db_group_update(db, &g) : db_group_insert(db, &g);
    if (rc == SQLITE_CONSTRAINT) {
        char msg[300];
        snprintf(msg, sizeof msg, "a group named '%s' already exists %s", g.name,
                 g.parent_id ? "in this parent group" : "at the top of this domain");
        db_group_free(&g);
        return api_problem_field(r, 409, "name", msg);
    }
    int64_t id = g.id;
    db_group_free(&g);
    if (rc == SQLITE_OK)
        rc = db_commit(db);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "group");
    db_group_t out;
    rc = db_group_get(db, id, &out);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "group");
    json_t *o = group_to_json(&out);
    db_group_free(&out);
    LOG_INFO("api", "event=group_%s id=%lld", stored ? "updated" : "created", (long long)id);
    if (stored)
        return api_send_json(r, 200, o, NULL);
    char loc[64];
    snprintf(loc, sizeof loc, "/api/v1/groups/%lld", (long long)id);
    return api_send_json(r, 201, o, loc);
}

static enum MHD_Result do_create(api_req_t *r, db_t *db, json_t *body) { return save(r, db, body, NULL); }

static enum MHD_Result do_put(api_req_t *r, db_t *db, json_t *body)
{
    db_group_t stored;
    enum MHD_Result ret;
    if (!load_group(r, db, r->id, &stored, &ret))
        return ret;
    ret = save(r, db, body, &stored);
    db_group_free(&stored);
    return ret;
}

static enum MHD_Result do_patch(api_req_t *r, db_t *db, json_t *patch)
{
    db_group_t stored;
    enum MHD_Result ret;
    if (!load_group(r, db, r->id, &stored, &ret))
        return ret;
    json_t *cur = group_to_json(&stored);
    json_t *doc = api_merge_patch(cur, patch);
    json_decref(cur);
    if (!doc) {
        db_group_free(&stored);
        return api_problem(r, 500, "out of memory", NULL);
    }
    ret = save(r, db, doc, &stored);
    json_decref(doc);
    db_group_free(&stored);
    return ret;
}

enum MHD_Result api_groups_create(api_req_t *r) { return api_with_body_tx(r, do_create); }
enum MHD_Result api_groups_put(api_req_t *r) { return api_with_body_tx(r, do_put); }
enum MHD_Result api_groups_patch(api_req_t *r) { return api_with_body_tx(r, do_patch); }

static enum MHD_Result do_delete(api_req_t *r, db_t *db, json_t *unused)
{
    (void)unused;
    db_group_t g;
    enum MHD_Result ret;
    if (!load_group(r, db, r->id, &g, &ret))
        return ret;
    bool bs = g.is_bootstrap;
    db_group_free(&g);
    if (bs)
        return api_problem(r, 409, "the bootstrap group of a domain cannot be deleted", NULL);
    int rc = db_group_delete(db, r->id);
    if (rc == SQLITE_OK)
        rc = db_commit(db);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "group");
    LOG_INFO("api", "event=group_deleted id=%lld", (long long)r->id);
    return api_send_empty(r, 204);
}

enum MHD_Result api_groups_delete(api_req_t *r)
{
    db_t *db = api_req_db(r);
    if (!db)
        return api_problem(r, 503, "database unavailable", NULL);
    return api_in_tx(r, db, do_delete, NULL);
}

/* ------------------------------------------------------------ members */
enum MHD_Result api_group_devices_list(api_req_t *r)
{
    enum MHD_Result ret;
    int limit, offset;
    if (api_paging(r, &limit, &offset, &ret) != 0)
        return ret;
    db_t *db = api_req_db(r);
    if (!db)
        return api_problem(r, 503, "database unavailable", NULL);
    db_group_t g;
    if (!load_group(r, db, r->id, &g, &ret))
        return ret;
    db_group_free(&g);
    db_device_t *list = NULL;
    size_t n = 0;
    int64_t total = 0;
    int rc = db_group_members(db, r->id, api_query(r, "q"), limit, offset, &list, &n, &total);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "group members");
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, member_to_json(&list[i]));
    db_device_list_free(&list, n);
    return api_send_page(r, items, total, limit, offset);
}

static const char *const k_member_fields[] = {"deviceId", NULL};

static enum MHD_Result do_add_member(api_req_t *r, db_t *db, json_t *body)
{
    db_group_t g;
    enum MHD_Result ret;
    if (!load_group(r, db, r->id, &g, &ret))
        return ret;
    api_verr_t v;
    api_verr_init(&v);
    api_check_unknown(body, k_member_fields, "", &v);
    int64_t did = 0;
    db_device_t d;
    memset(&d, 0, sizeof d);
    bool have = false;
    if (api_get_int(body, "deviceId", "deviceId", &v, &did)) {
        int rc = db_device_get(db, did, &d);
        if (rc == SQLITE_OK && !api_domain_visible(r, d.domain)) {
            db_device_free(&d);
            rc = SQLITE_NOTFOUND;
        }
        if (rc == SQLITE_NOTFOUND) {
            api_verr_add(&v, 422, "deviceId", "no device %lld", (long long)did);
        } else if (rc != SQLITE_OK) {
            api_verr_free(&v);
            db_group_free(&g);
            return api_problem_db(r, rc, "device");
        } else {
            have = true;
            if (strncmp(d.domain, g.domain, strlen(g.domain)) != 0)
                api_verr_add(&v, 422, "deviceId", "device %lld belongs to domain %s, outside of the group's domain %s",
                             (long long)did, d.domain, g.domain);
        }
    } else if (api_absent(body, "deviceId")) {
        api_verr_add(&v, 422, "deviceId", "is required");
    }
    db_group_free(&g);
    if (api_verr_any(&v)) {
        if (have)
            db_device_free(&d);
        return api_problem_verr(r, &v, NULL);
    }
    api_verr_free(&v);
    bool already = false;
    int rc = db_group_is_member(db, r->id, did, &already);
    if (rc == SQLITE_OK && !already)
        rc = db_group_join(db, r->id, did);
    if (rc == SQLITE_OK)
        rc = db_commit(db);
    if (rc != SQLITE_OK) {
        db_device_free(&d);
        return api_problem_db(r, rc, "group member");
    }
    json_t *o = member_to_json(&d);
    db_device_free(&d);
    if (already)
        return api_send_json(r, 200, o, NULL);
    LOG_INFO("api", "event=group_member_added group=%lld device=%lld", (long long)r->id, (long long)did);
    char loc[96];
    snprintf(loc, sizeof loc, "/api/v1/groups/%lld/devices/%lld", (long long)r->id, (long long)did);
    return api_send_json(r, 201, o, loc);
}

enum MHD_Result api_group_devices_add(api_req_t *r) { return api_with_body_tx(r, do_add_member); }

static enum MHD_Result do_remove_member(api_req_t *r, db_t *db, json_t *unused)
{
    (void)unused;
    db_group_t g;
    enum MHD_Result ret;
    if (!load_group(r, db, r->id, &g, &ret))
        return ret;
    db_group_free(&g);
    bool member = false;
    int rc = db_group_is_member(db, r->id, r->id2, &member);
    if (rc == SQLITE_OK && !member)
        return api_problem(r, 404, "the device is not a member of this group", NULL);
    if (rc == SQLITE_OK)
        rc = db_group_leave(db, r->id, r->id2);
    if (rc == SQLITE_OK)
        rc = db_commit(db);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "group member");
    LOG_INFO("api", "event=group_member_removed group=%lld device=%lld", (long long)r->id, (long long)r->id2);
    return api_send_empty(r, 204);
}

enum MHD_Result api_group_devices_remove(api_req_t *r)
{
    db_t *db = api_req_db(r);
    if (!db)
        return api_problem(r, 503, "database unavailable", NULL);
    return api_in_tx(r, db, do_remove_member, NULL);
}

enum MHD_Result api_device_groups_get(api_req_t *r)
{
    db_t *db = api_req_db(r);
    if (!db)
        return api_problem(r, 503, "database unavailable", NULL);
    db_device_t d;
    enum MHD_Result ret;
    if (!load_device(r, db, r->id, &d, &ret))
        return ret;
    db_device_free(&d);
    int64_t *ids = NULL;
    size_t n = 0;
    int rc = db_device_groups(db, r->id, &ids, &n);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "groups");
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++) {
        db_group_t g;
        if (db_group_get(db, ids[i], &g) == SQLITE_OK) {
            json_array_append_new(items, group_to_json(&g));
            db_group_free(&g);
        }
    }
    free(ids);
    return api_send_page(r, items, (int64_t)json_array_size(items), (int)json_array_size(items), 0);
}

/* ----------------------------------------------------- setting values */
/* Resolves the owner of /groups/{id}/setting-values or
 * /devices/{id}/setting-values (visible to the caller), or answers 404. */
static bool load_owner(api_req_t *r, db_t *db, int64_t *gid, int64_t *did, enum MHD_Result *ret)
{
    *gid = *did = 0;
    if (api_path_is_group(r)) {
        db_group_t g;
        if (!load_group(r, db, r->id, &g, ret))
            return false;
        db_group_free(&g);
        *gid = r->id;
    } else {
        db_device_t d;
        if (!load_device(r, db, r->id, &d, ret))
            return false;
        db_device_free(&d);
        *did = r->id;
    }
    return true;
}

static bool sv_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > SV_NAME_MAX)
        return false;
    if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

static void sv_validate(json_t *doc, api_verr_t *v)
{
    const char *k;
    json_t *val;
    if (json_object_size(doc) > SV_MAX_COUNT)
        api_verr_add(v, 422, "", "at most %d setting values per group or device", SV_MAX_COUNT);
    json_object_foreach(doc, k, val) {
        char field[200];
        snprintf(field, sizeof field, "%.150s", k);
        if (!json_is_string(val))
            api_verr_add(v, 400, field, "must be a string");
        else if (!sv_name_ok(k))
            api_verr_add(v, 422, field,
                         "setting value names are 1 to %d letters, digits and _, not starting with a digit "
                         "(they are read as sv.NAME)", SV_NAME_MAX);
        else if (strlen(json_string_value(val)) > SV_VALUE_MAX)
            api_verr_add(v, 422, field, "must be at most %d bytes", SV_VALUE_MAX);
    }
}

static enum MHD_Result sv_answer(api_req_t *r, db_t *db, int64_t gid, int64_t did, bool effective)
{
    char *text = NULL;
    int rc = effective ? db_device_setting_values(db, did, &text) : db_setting_values_get(db, gid, did, &text);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "setting values");
    json_t *o = json_loads(text, 0, NULL);
    free(text);
    return api_send_json(r, 200, o ? o : json_object(), NULL);
}

enum MHD_Result api_sv_get(api_req_t *r)
{
    db_t *db = api_req_db(r);
    if (!db)
        return api_problem(r, 503, "database unavailable", NULL);
    const char *eff = api_query(r, "effective");
    bool effective = false;
    if (eff) {
        if (strcmp(eff, "true") == 0 || strcmp(eff, "1") == 0)
            effective = true;
        else if (strcmp(eff, "false") != 0 && strcmp(eff, "0") != 0)
            return api_problem_field(r, 400, "effective", "effective must be true or false");
    }
    int64_t gid, did;
    enum MHD_Result ret;
    if (!load_owner(r, db, &gid, &did, &ret))
        return ret;
    if (effective && gid)
        return api_problem_field(r, 400, "effective", "effective values exist for devices only");
    return sv_answer(r, db, gid, did, effective);
}

static enum MHD_Result sv_save(api_req_t *r, db_t *db, json_t *doc, int64_t gid, int64_t did)
{
    api_verr_t v;
    api_verr_init(&v);
    sv_validate(doc, &v);
    if (api_verr_any(&v))
        return api_problem_verr(r, &v, NULL);
    api_verr_free(&v);
    char *text = json_dumps(doc, JSON_COMPACT);
    if (!text)
        return api_problem(r, 500, "out of memory", NULL);
    int rc = db_setting_values_put(db, gid, did, text);
    free(text);
    if (rc == SQLITE_OK)
        rc = db_commit(db);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "setting values");
    LOG_INFO("api", "event=setting_values_updated %s=%lld count=%zu", gid ? "group" : "device",
             (long long)(gid ? gid : did), json_object_size(doc));
    return sv_answer(r, db, gid, did, false);
}

static enum MHD_Result do_sv_put(api_req_t *r, db_t *db, json_t *body)
{
    int64_t gid, did;
    enum MHD_Result ret;
    if (!load_owner(r, db, &gid, &did, &ret))
        return ret;
    return sv_save(r, db, body, gid, did);
}

static enum MHD_Result do_sv_patch(api_req_t *r, db_t *db, json_t *patch)
{
    int64_t gid, did;
    enum MHD_Result ret;
    if (!load_owner(r, db, &gid, &did, &ret))
        return ret;
    char *text = NULL;
    int rc = db_setting_values_get(db, gid, did, &text);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "setting values");
    json_t *cur = json_loads(text, 0, NULL);
    free(text);
    /* values are flat strings: a patch value that is an object is refused
     * (merge patch would otherwise nest it) */
    const char *k;
    json_t *pv;
    api_verr_t v;
    api_verr_init(&v);
    json_object_foreach(patch, k, pv) {
        if (!json_is_null(pv) && !json_is_string(pv))
            api_verr_add(&v, 400, k, "must be a string, or null to remove the value");
    }
    if (api_verr_any(&v)) {
        json_decref(cur);
        return api_problem_verr(r, &v, NULL);
    }
    api_verr_free(&v);
    json_t *doc = api_merge_patch(cur, patch);
    json_decref(cur);
    if (!doc)
        return api_problem(r, 500, "out of memory", NULL);
    ret = sv_save(r, db, doc, gid, did);
    json_decref(doc);
    return ret;
}

enum MHD_Result api_sv_put(api_req_t *r) { return api_with_body_tx(r, do_sv_put); }
enum MHD_Result api_sv_patch(api_req_t *r) { return api_with_body_tx(r, do_sv_patch); }
