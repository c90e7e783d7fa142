/* api: /api/v1/devices.
 *
 * Same write rules as lwm2m-servers (see servers.c): one validator for a
 * whole representation, PATCH = merge patch onto the stored representation,
 * write-only PSKs (absent keeps, null clears), credentials that do not fit
 * the security mode refused when sent and dropped when inherited. */
#include "api/api_int.h"
#include "server/common/log.h"

#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENDPOINT_MAX_CHARS 128
#define IDENTITY_MAX_BYTES 128
#define DEVICE_PSK_MAX_BYTES 64

static const char *const k_fields[] = {
    "endpoint", "bootstrapCredentials", "managementCredentials", "properties", "blacklisted",
    /* read-only: accepted and ignored */
    "id", "domain", "autoCreated", "createdAt", "updatedAt", "lastBootstrapAt", "lastBootstrap",
    "lastRegistrationAt", "lastContactAt", "serverCredentials", "groups", "registration", NULL};
static const char *const k_cred_fields[] = {"securityMode", "pskIdentity", "psk", "pskSet", NULL};

static const char *mode_name(int m) { return m == DB_SEC_PSK ? "psk" : m == DB_SEC_NOSEC ? "nosec" : "cert"; }

/* Credentials from doc[key] (full representation) and ex[key] (the request),
 * keeping the stored PSK when the request does not mention it. */
static void creds_from_json(json_t *doc, json_t *ex, const char *key, const db_credentials_t *stored,
                            db_credentials_t *c, api_verr_t *v)
{
    memset(c, 0, sizeof *c);
    char f_mode[64], f_id[64], f_psk[64], prefix[64];
    snprintf(prefix, sizeof prefix, "%s.", key);
    snprintf(f_mode, sizeof f_mode, "%s.securityMode", key);
    snprintf(f_id, sizeof f_id, "%s.pskIdentity", key);
    snprintf(f_psk, sizeof f_psk, "%s.psk", key);
    json_t *o = NULL;
    if (!api_get_object(doc, key, key, v, &o))
        return; /* absent or null: nosec */
    json_t *exo = json_object_get(ex, key);
    if (!json_is_object(exo))
        exo = NULL;
    api_check_unknown(o, k_cred_fields, prefix, v);
    const char *s;
    c->security_mode = DB_SEC_NOSEC;
    bool mode_ok = true;
    if (api_get_string(o, "securityMode", f_mode, v, &s)) {
        if (strcmp(s, "psk") == 0)
            c->security_mode = DB_SEC_PSK;
        else if (strcmp(s, "nosec") == 0)
            c->security_mode = DB_SEC_NOSEC;
        else {
            mode_ok = false;
            api_verr_add(v, 422, f_mode, "must be one of: nosec, psk%s",
                         strcmp(s, "cert") == 0 ? " (certificates are not supported yet)" : "");
        }
    } else if (!api_absent(o, "securityMode")) {
        mode_ok = false;
    }
    size_t nerr = json_array_size(v->errors);
    if (api_get_string(o, "pskIdentity", f_id, v, &s)) {
        size_t n = strlen(s);
        if (n < 1 || n > IDENTITY_MAX_BYTES)
            api_verr_add(v, 422, f_id, "must be 1 to %d bytes long", IDENTITY_MAX_BYTES);
        else if (api_has_ctl(s))
            api_verr_add(v, 422, f_id, "must not contain control characters");
        else
            c->psk_identity = strdup(s);
    }
    bool id_err = json_array_size(v->errors) != nerr;
    nerr = json_array_size(v->errors);
    const char *hex = NULL;
    api_secret_op_t op = api_secret_op(exo, "psk", f_psk, v, &hex);
    if (op == API_SECRET_SET) {
        size_t n = strlen(hex), got = 0;
        uint8_t buf[DEVICE_PSK_MAX_BYTES];
        const char *end = NULL;
        if (n == 0 || n % 2 || n > 2 * DEVICE_PSK_MAX_BYTES ||
            sodium_hex2bin(buf, sizeof buf, hex, n, NULL, &got, &end) != 0 || end != hex + n || got == 0) {
            api_verr_add(v, 422, f_psk, "must be hexadecimal, 1 to %d bytes", DEVICE_PSK_MAX_BYTES);
        } else {
            c->psk = malloc(got);
            if (c->psk) {
                memcpy(c->psk, buf, got);
                c->psk_len = got;
            }
        }
        sodium_memzero(buf, sizeof buf);
    } else if (op == API_SECRET_KEEP && stored && stored->psk) {
        c->psk = malloc(stored->psk_len ? stored->psk_len : 1);
        if (c->psk) {
            memcpy(c->psk, stored->psk, stored->psk_len);
            c->psk_len = stored->psk_len;
        }
    }
    bool psk_err = json_array_size(v->errors) != nerr;
    if (!mode_ok)
        return;
    if (c->security_mode == DB_SEC_PSK) {
        if (!c->psk_identity && !id_err)
            api_verr_add(v, 422, f_id, "is required for securityMode psk");
        if (!c->psk && !psk_err)
            api_verr_add(v, 422, f_psk, "is required for securityMode psk");
    } else {
        if (c->psk_identity && !api_absent(exo, "pskIdentity"))
            api_verr_add(v, 422, f_id, "must be null for securityMode %s", mode_name(c->security_mode));
        if (c->psk && op == API_SECRET_SET)
            api_verr_add(v, 422, f_psk, "must be null for securityMode %s", mode_name(c->security_mode));
        db_credentials_free(c);
        c->security_mode = DB_SEC_NOSEC;
    }
}

static void device_from_json(json_t *doc, json_t *ex, const db_device_t *stored, db_device_t *d, api_verr_t *v)
{
    memset(d, 0, sizeof *d);
    api_check_unknown(doc, k_fields, "", v);
    const char *s;
    if (api_get_string(doc, "endpoint", "endpoint", v, &s)) {
        size_t n = api_utf8_len(s);
        if (n < 1 || n > ENDPOINT_MAX_CHARS)
            api_verr_add(v, 422, "endpoint", "must be 1 to %d characters long", ENDPOINT_MAX_CHARS);
        else if (api_has_ctl(s))
            api_verr_add(v, 422, "endpoint", "must be printable (no control characters)");
        else
            d->endpoint = strdup(s);
    } else if (api_absent(doc, "endpoint")) {
        api_verr_add(v, 422, "endpoint", "is required");
    }
    creds_from_json(doc, ex, "bootstrapCredentials", stored ? &stored->bs : NULL, &d->bs, v);
    creds_from_json(doc, ex, "managementCredentials", stored ? &stored->mgmt : NULL, &d->mgmt, v);
    json_t *props = NULL;
    if (api_get_object(doc, "properties", "properties", v, &props)) {
        const char *k;
        json_t *pv;
        json_object_foreach(props, k, pv) {
            char field[200];
            snprintf(field, sizeof field, "properties.%s", k);
            if (!json_is_string(pv))
                api_verr_add(v, 400, field, "must be a string");
            else if (!*k || strlen(k) > 128)
                api_verr_add(v, 422, field, "property names must be 1 to 128 bytes long");
        }
        d->properties_json = json_dumps(props, JSON_COMPACT | JSON_SORT_KEYS);
    } else {
        d->properties_json = strdup("{}");
    }
    bool b;
    if (api_get_bool(doc, "blacklisted", "blacklisted", v, &b))
        d->blacklisted = b;
}

static json_t *creds_to_json(const db_credentials_t *c)
{
    return json_pack("{s:s, s:o, s:b}", "securityMode", mode_name(c->security_mode), "pskIdentity",
                     api_json_str_or_null(c->psk_identity), "pskSet", c->psk != NULL);
}

static json_t *device_to_json(db_t *db, const db_device_t *d)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(d->id));
    json_object_set_new(o, "endpoint", json_string(d->endpoint));
    json_object_set_new(o, "domain", json_string(d->domain));
    json_object_set_new(o, "bootstrapCredentials", creds_to_json(&d->bs));
    json_object_set_new(o, "managementCredentials", creds_to_json(&d->mgmt));
    json_t *props = d->properties_json ? json_loads(d->properties_json, 0, NULL) : NULL;
    json_object_set_new(o, "properties", json_is_object(props) ? props : json_object());
    if (props && !json_is_object(props))
        json_decref(props);
    json_object_set_new(o, "blacklisted", json_boolean(d->blacklisted));
    json_object_set_new(o, "autoCreated", json_boolean(d->auto_created));
    json_object_set_new(o, "createdAt", api_json_time(d->created_at, false));
    json_object_set_new(o, "updatedAt", api_json_time(d->updated_at, false));
    json_object_set_new(o, "lastBootstrapAt", api_json_time(d->last_bootstrap_at, true));
    if (d->last_bootstrap_status) {
        json_t *steps = d->last_bootstrap_json ? json_loads(d->last_bootstrap_json, JSON_DECODE_ANY, NULL) : NULL;
        if (!json_is_array(steps)) {
            json_decref(steps);
            steps = json_array();
        }
        json_object_set_new(o, "lastBootstrap",
                            json_pack("{s:s, s:o}", "status", d->last_bootstrap_status, "steps", steps));
    } else {
        json_object_set_new(o, "lastBootstrap", json_null());
    }
    json_object_set_new(o, "lastRegistrationAt", api_json_time(d->last_registration_at, true));
    json_t *reg = api_registration_json(db, d->id);
    json_object_set_new(o, "registration", reg ? reg : json_null());
    json_object_set_new(o, "lastContactAt", api_json_time(d->last_contact_at, true));
    json_t *sc = json_array();
    db_server_cred_t *list = NULL;
    size_t n = 0;
    if (db_device_server_cred_list(db, d->id, &list, &n) == SQLITE_OK) {
        for (size_t i = 0; i < n; i++)
            json_array_append_new(sc, json_pack("{s:I, s:o, s:b}", "serverId", (json_int_t)list[i].server_id,
                                                "pskIdentity", api_json_str_or_null(list[i].cred.psk_identity),
                                                "pskSet", list[i].cred.psk != NULL));
        db_server_cred_list_free(&list, n);
    }
    json_object_set_new(o, "serverCredentials", sc);
    json_t *groups = json_array();
    int64_t *gids = NULL;
    size_t ng = 0;
    if (db_device_groups(db, d->id, &gids, &ng) == SQLITE_OK) {
        for (size_t i = 0; i < ng; i++)
            json_array_append_new(groups, json_integer(gids[i]));
        free(gids);
    }
    json_object_set_new(o, "groups", groups);
    return o;
}

/* ------------------------------------------------------------ handlers */
enum MHD_Result api_devices_list(api_req_t *r)
{
    enum MHD_Result ret;
    int limit, offset;
    if (api_paging(r, &limit, &offset, &ret) != 0)
        return ret;
    db_t *db = api_req_db(r);
    if (!db)
        return api_problem(r, 503, "database unavailable", NULL);
    db_device_t *list = NULL;
    size_t n = 0;
    int64_t total = 0;
    const char *st = api_query(r, "state");
    int state = 0;
    if (st && !strcmp(st, "registered"))
        state = 1;
    else if (st && !strcmp(st, "unregistered"))
        state = -1;
    else if (st)
        return api_problem_field(r, 400, "state", "registered or unregistered");
    int rc = db_device_list_state(db, r->domain, api_query(r, "q"), state, limit, offset, &list, &n, &total);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "devices");
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, device_to_json(db, &list[i]));
    db_device_list_free(&list, n);
    return api_send_page(r, items, total, limit, offset);
}

static bool load_visible(api_req_t *r, db_t *db, db_device_t *d, enum MHD_Result *ret)
{
    int rc = db_device_get(db, r->id, d);
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

bool api_device_visible(api_req_t *r, db_t *db, enum MHD_Result *ret)
{
    db_device_t d;
    if (!load_visible(r, db, &d, ret))
        return false;
    db_device_free(&d);
    return true;
}

enum MHD_Result api_devices_get(api_req_t *r)
{
    db_t *db = api_req_db(r);
    if (!db)
        return api_problem(r, 503, "database unavailable", NULL);
    db_device_t d;
    enum MHD_Result ret;
    if (!load_visible(r, db, &d, &ret))
        return ret;
    json_t *o = device_to_json(db, &d);
    db_device_free(&d);
    return api_send_json(r, 200, o, NULL);
}

/* Endpoint per domain and PSK identities across devices are unique (409). */
static int check_unique(db_t *db, const db_device_t *d, api_verr_t *v)
{
    db_device_t o;
    int rc = db_device_get_by_endpoint(db, d->domain, d->endpoint, &o);
    if (rc == SQLITE_OK && o.id != d->id)
        api_verr_add(v, 409, "endpoint", "a device with endpoint '%s' already exists", d->endpoint);
    db_device_free(&o);
    if (rc != SQLITE_OK && rc != SQLITE_NOTFOUND)
        return rc;
    if (d->bs.psk_identity) {
        rc = db_device_get_by_bs_identity(db, d->bs.psk_identity, strlen(d->bs.psk_identity), &o);
        if (rc == SQLITE_OK && o.id != d->id)
            api_verr_add(v, 409, "bootstrapCredentials.pskIdentity", "already used by device '%s'", o.endpoint);
        db_device_free(&o);
        if (rc != SQLITE_OK && rc != SQLITE_NOTFOUND)
            return rc;
    }
    if (d->mgmt.psk_identity) {
        rc = db_device_get_by_mgmt_identity(db, d->mgmt.psk_identity, strlen(d->mgmt.psk_identity), &o);
        if (rc == SQLITE_OK && o.id != d->id)
            api_verr_add(v, 409, "managementCredentials.pskIdentity", "already used by device '%s'", o.endpoint);
        db_device_free(&o);
        if (rc != SQLITE_OK && rc != SQLITE_NOTFOUND)
            return rc;
    }
    return SQLITE_OK;
}

static enum MHD_Result save(api_req_t *r, db_t *db, json_t *doc, json_t *ex, const db_device_t *stored)
{
    api_verr_t v;
    api_verr_init(&v);
    db_device_t d;
    device_from_json(doc, ex, stored, &d, &v);
    if (api_verr_any(&v)) {
        db_device_free(&d);
        return api_problem_verr(r, &v, NULL);
    }
    d.domain = strdup(stored ? stored->domain : r->domain);
    if (stored)
        d.id = stored->id;
    int rc = check_unique(db, &d, &v);
    if (rc == SQLITE_OK && api_verr_any(&v)) {
        db_device_free(&d);
        return api_problem_verr(r, &v, NULL);
    }
    api_verr_free(&v);
    if (rc == SQLITE_OK)
        rc = stored ? db_device_update(db, &d) : db_device_insert(db, &d);
    int64_t id = d.id;
    db_device_free(&d);
    if (rc == SQLITE_OK)
        rc = db_commit(db);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "device");
    db_device_t g;
    rc = db_device_get(db, id, &g);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "device");
    json_t *o = device_to_json(db, &g);
    LOG_INFO("api", "event=device_%s id=%lld ep=%s", stored ? "updated" : "created", (long long)id, g.endpoint);
    db_device_free(&g);
    if (stored)
        return api_send_json(r, 200, o, NULL);
    char loc[64];
    snprintf(loc, sizeof loc, "/api/v1/devices/%lld", (long long)id);
    return api_send_json(r, 201, o, loc);
}

static enum MHD_Result do_create(api_req_t *r, db_t *db, json_t *body) { return save(r, db, body, body, NULL); }

static enum MHD_Result do_put(api_req_t *r, db_t *db, json_t *body)
{
    db_device_t stored;
    enum MHD_Result ret;
    if (!load_visible(r, db, &stored, &ret))
        return ret;
    ret = save(r, db, body, body, &stored);
    db_device_free(&stored);
    return ret;
}

static enum MHD_Result do_patch(api_req_t *r, db_t *db, json_t *patch)
{
    db_device_t stored;
    enum MHD_Result ret;
    if (!load_visible(r, db, &stored, &ret))
        return ret;
    json_t *cur = device_to_json(db, &stored);
    /* properties is an object of strings: merge patch may remove keys */
    json_t *doc = api_merge_patch(cur, patch);
    json_decref(cur);
    if (!doc) {
        db_device_free(&stored);
        return api_problem(r, 500, "out of memory", NULL);
    }
    ret = save(r, db, doc, patch, &stored);
    json_decref(doc);
    db_device_free(&stored);
    return ret;
}

enum MHD_Result api_devices_create(api_req_t *r) { return api_with_body_tx(r, do_create); }
enum MHD_Result api_devices_put(api_req_t *r) { return api_with_body_tx(r, do_put); }
enum MHD_Result api_devices_patch(api_req_t *r) { return api_with_body_tx(r, do_patch); }

static enum MHD_Result do_delete(api_req_t *r, db_t *db, json_t *unused)
{
    (void)unused;
    db_device_t d;
    enum MHD_Result ret;
    if (!load_visible(r, db, &d, &ret))
        return ret;
    int rc = db_device_delete(db, d.id);
    if (rc == SQLITE_OK)
        rc = db_commit(db);
    if (rc == SQLITE_OK) {
        LOG_INFO("api", "event=device_deleted id=%lld ep=%s", (long long)d.id, d.endpoint);
        if (r->api->devops.forget) /* its registration (in the loop's memory) goes too */
            r->api->devops.forget(r->api->devops.ctx, d.id);
    }
    db_device_free(&d);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "device");
    return api_send_empty(r, 204);
}

enum MHD_Result api_devices_delete(api_req_t *r)
{
    db_t *db = api_req_db(r);
    if (!db)
        return api_problem(r, 503, "database unavailable", NULL);
    return api_in_tx(r, db, do_delete, NULL);
}
