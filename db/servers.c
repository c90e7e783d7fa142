/* db: lwm2m_servers (Administration -> LwM2M servers). */
#include "db/db_int.h"

#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define SRV_COLS                                                                                   \
    "id, domain, name, type, transport, ssid, uri, client_hold_off_time, bootstrap_account_timeout, " \
    "binding, lifetime, store_notifications, security_mode, psk_identity, psk_enc, server_cert, "    \
    "sms_enabled, sms_number, sms_security_mode, configure_device_on_target, provision_credentials, " \
    "prov_api_uri, prov_user, prov_password_enc, created_at, updated_at"

static const char SQL_GET[] = "SELECT " SRV_COLS " FROM lwm2m_servers WHERE id = ?1";
static const char SQL_GET_BY_NAME[] = "SELECT " SRV_COLS " FROM lwm2m_servers WHERE domain = ?1 AND name = ?2";
static const char SQL_LIST[] =
    "SELECT " SRV_COLS " FROM lwm2m_servers"
    " WHERE (?1 IS NULL OR substr(domain, 1, length(?1)) = ?1)"
    "   AND (?2 IS NULL OR instr(lower(name), lower(?2)) > 0 OR instr(lower(uri), lower(?2)) > 0"
    "        OR instr(lower(ifnull(psk_identity, '')), lower(?2)) > 0)"
    " ORDER BY id LIMIT ?3 OFFSET ?4";
static const char SQL_COUNT[] =
    "SELECT count(*) FROM lwm2m_servers"
    " WHERE (?1 IS NULL OR substr(domain, 1, length(?1)) = ?1)"
    "   AND (?2 IS NULL OR instr(lower(name), lower(?2)) > 0 OR instr(lower(uri), lower(?2)) > 0"
    "        OR instr(lower(ifnull(psk_identity, '')), lower(?2)) > 0)";
static const char SQL_INSERT[] =
    "INSERT INTO lwm2m_servers (domain, name, type, transport, ssid, uri, client_hold_off_time,"
    " bootstrap_account_timeout, binding, lifetime, store_notifications, security_mode, psk_identity,"
    " psk_enc, server_cert, sms_enabled, sms_number, sms_security_mode, configure_device_on_target,"
    " provision_credentials, prov_api_uri, prov_user, prov_password_enc, created_at, updated_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20,"
    " ?21, ?22, ?23, ?24, ?24)";
static const char SQL_UPDATE[] =
    "UPDATE lwm2m_servers SET domain = ?1, name = ?2, type = ?3, transport = ?4, ssid = ?5, uri = ?6,"
    " client_hold_off_time = ?7, bootstrap_account_timeout = ?8, binding = ?9, lifetime = ?10,"
    " store_notifications = ?11, security_mode = ?12, psk_identity = ?13, psk_enc = ?14, server_cert = ?15,"
    " sms_enabled = ?16, sms_number = ?17, sms_security_mode = ?18, configure_device_on_target = ?19,"
    " provision_credentials = ?20, prov_api_uri = ?21, prov_user = ?22, prov_password_enc = ?23,"
    " updated_at = ?24 WHERE id = ?25";
static const char SQL_SSID[] =
    "SELECT id, name FROM lwm2m_servers WHERE domain = ?1 AND ssid = ?2 AND id <> ?3 ORDER BY id LIMIT 1";
static const char SQL_DEP_TASKS[] =
    "SELECT t.id, t.name, t.group_id, t.device_id FROM tasks t"
    " JOIN task_server_refs r ON r.task_id = t.id WHERE r.server_id = ?1 ORDER BY t.id";
static const char SQL_DEP_TEMPLATES[] =
    "SELECT t.id, t.name FROM task_templates t"
    " JOIN task_template_server_refs r ON r.template_id = t.id WHERE r.server_id = ?1 ORDER BY t.id";
static const char SQL_DEL_TASKS[] =
    "DELETE FROM tasks WHERE id IN (SELECT task_id FROM task_server_refs WHERE server_id = ?1)";
static const char SQL_DEL_TEMPLATES[] =
    "DELETE FROM task_templates WHERE id IN (SELECT template_id FROM task_template_server_refs WHERE server_id = ?1)";
static const char SQL_DEL[] = "DELETE FROM lwm2m_servers WHERE id = ?1";

void db_server_free(db_server_t *s)
{
    if (!s)
        return;
    free(s->domain);
    free(s->name);
    free(s->uri);
    free(s->psk_identity);
    if (s->psk) {
        sodium_memzero(s->psk, strlen(s->psk));
        free(s->psk);
    }
    free(s->server_cert);
    free(s->sms_number);
    free(s->prov_api_uri);
    free(s->prov_user);
    if (s->prov_password) {
        sodium_memzero(s->prov_password, strlen(s->prov_password));
        free(s->prov_password);
    }
    memset(s, 0, sizeof *s);
}

void db_server_list_free(db_server_t **list, size_t n)
{
    if (!list || !*list)
        return;
    for (size_t i = 0; i < n; i++)
        db_server_free(&(*list)[i]);
    free(*list);
    *list = NULL;
}

static int64_t col_int_or(sqlite3_stmt *st, int c, int64_t dflt)
{
    return sqlite3_column_type(st, c) == SQLITE_NULL ? dflt : sqlite3_column_int64(st, c);
}

/* Reads the current row into *s (zeroed first). */
static int read_row(db_t *db, sqlite3_stmt *st, void *elem)
{
    db_server_t *s = elem;
    memset(s, 0, sizeof *s);
    s->id = sqlite3_column_int64(st, 0);
    s->domain = db_column_strdup(st, 1);
    s->name = db_column_strdup(st, 2);
    s->type = sqlite3_column_int(st, 3);
    s->transport = sqlite3_column_int(st, 4);
    s->ssid = (int)col_int_or(st, 5, 0);
    s->uri = db_column_strdup(st, 6);
    s->client_hold_off_time = col_int_or(st, 7, -1);
    s->bootstrap_account_timeout = col_int_or(st, 8, -1);
    const unsigned char *b = sqlite3_column_text(st, 9);
    snprintf(s->binding, sizeof s->binding, "%s", b ? (const char *)b : "U");
    s->lifetime = sqlite3_column_int64(st, 10);
    s->store_notifications = sqlite3_column_int(st, 11) != 0;
    s->security_mode = sqlite3_column_int(st, 12);
    s->psk_identity = db_column_strdup(st, 13);
    uint8_t *p;
    size_t plen;
    int rc = db_column_secret(db, st, 14, &p, &plen);
    if (rc != SQLITE_OK)
        goto fail;
    s->psk = (char *)p;
    if (sqlite3_column_type(st, 15) != SQLITE_NULL) {
        int n = sqlite3_column_bytes(st, 15);
        s->server_cert = malloc(n > 0 ? (size_t)n : 1);
        if (!s->server_cert) {
            rc = SQLITE_NOMEM;
            goto fail;
        }
        if (n > 0)
            memcpy(s->server_cert, sqlite3_column_blob(st, 15), (size_t)n);
        s->server_cert_len = (size_t)n;
    }
    s->sms_enabled = sqlite3_column_int(st, 16) != 0;
    s->sms_number = db_column_strdup(st, 17);
    s->sms_security_mode = (int)col_int_or(st, 18, -1);
    s->configure_device_on_target = sqlite3_column_int(st, 19) != 0;
    s->provision_credentials = sqlite3_column_int(st, 20) != 0;
    s->prov_api_uri = db_column_strdup(st, 21);
    s->prov_user = db_column_strdup(st, 22);
    rc = db_column_secret(db, st, 23, &p, &plen);
    if (rc != SQLITE_OK)
        goto fail;
    s->prov_password = (char *)p;
    s->created_at = sqlite3_column_int64(st, 24);
    s->updated_at = sqlite3_column_int64(st, 25);
    if (!s->domain || !s->name || !s->uri) {
        rc = SQLITE_NOMEM;
        goto fail;
    }
    return SQLITE_OK;
fail:
    db_server_free(s);
    return rc;
}

/* Binds ?1..?23 (every column but id and times). */
static int bind_fields(db_t *db, sqlite3_stmt *st, const db_server_t *s)
{
    int rc = SQLITE_OK;
    rc |= sqlite3_bind_text(st, 1, s->domain ? s->domain : "/", -1, SQLITE_TRANSIENT);
    rc |= db_bind_text_or_null(st, 2, s->name);
    rc |= sqlite3_bind_int(st, 3, s->type);
    rc |= sqlite3_bind_int(st, 4, s->transport);
    rc |= db_bind_int64_or_null(st, 5, s->ssid, 0);
    rc |= db_bind_text_or_null(st, 6, s->uri);
    rc |= s->client_hold_off_time < 0 ? sqlite3_bind_null(st, 7) : sqlite3_bind_int64(st, 7, s->client_hold_off_time);
    rc |= s->bootstrap_account_timeout < 0 ? sqlite3_bind_null(st, 8)
                                           : sqlite3_bind_int64(st, 8, s->bootstrap_account_timeout);
    rc |= sqlite3_bind_text(st, 9, s->binding[0] ? s->binding : "U", -1, SQLITE_TRANSIENT);
    rc |= sqlite3_bind_int64(st, 10, s->lifetime);
    rc |= sqlite3_bind_int(st, 11, s->store_notifications);
    rc |= sqlite3_bind_int(st, 12, s->security_mode);
    rc |= db_bind_text_or_null(st, 13, s->psk_identity);
    if (rc != SQLITE_OK)
        return SQLITE_ERROR;
    rc = db_bind_secret(db, st, 14, s->psk, s->psk ? strlen(s->psk) : 0);
    if (rc != SQLITE_OK)
        return rc;
    rc |= s->server_cert ? sqlite3_bind_blob(st, 15, s->server_cert, (int)s->server_cert_len, SQLITE_TRANSIENT)
                         : sqlite3_bind_null(st, 15);
    rc |= sqlite3_bind_int(st, 16, s->sms_enabled);
    rc |= db_bind_text_or_null(st, 17, s->sms_number);
    rc |= s->sms_security_mode < 0 ? sqlite3_bind_null(st, 18) : sqlite3_bind_int(st, 18, s->sms_security_mode);
    rc |= sqlite3_bind_int(st, 19, s->configure_device_on_target);
    rc |= sqlite3_bind_int(st, 20, s->provision_credentials);
    rc |= db_bind_text_or_null(st, 21, s->prov_api_uri);
    rc |= db_bind_text_or_null(st, 22, s->prov_user);
    if (rc != SQLITE_OK)
        return SQLITE_ERROR;
    return db_bind_secret(db, st, 23, s->prov_password, s->prov_password ? strlen(s->prov_password) : 0);
}

int db_server_insert(db_t *db, db_server_t *s)
{
    sqlite3_stmt *st = db_stmt(db, SQL_INSERT);
    if (!st)
        return SQLITE_ERROR;
    int64_t now = db_now_ms();
    int rc = bind_fields(db, st, s);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 24, now);
    if (rc != SQLITE_OK) {
        db_stmt_done(st);
        return rc;
    }
    rc = db_step_done(st);
    if (rc != SQLITE_OK)
        return rc;
    s->id = sqlite3_last_insert_rowid(db->h);
    s->created_at = s->updated_at = now;
    db_mark_config_dirty(db);
    return SQLITE_OK;
}

int db_server_update(db_t *db, db_server_t *s)
{
    sqlite3_stmt *st = db_stmt(db, SQL_UPDATE);
    if (!st)
        return SQLITE_ERROR;
    int64_t now = db_now_ms();
    int rc = bind_fields(db, st, s);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 24, now);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 25, s->id);
    if (rc != SQLITE_OK) {
        db_stmt_done(st);
        return rc;
    }
    rc = db_step_done(st);
    if (rc != SQLITE_OK)
        return rc;
    if (sqlite3_changes(db->h) == 0)
        return SQLITE_NOTFOUND;
    s->updated_at = now;
    db_mark_config_dirty(db);
    return SQLITE_OK;
}

int db_server_get(db_t *db, int64_t id, db_server_t *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = db_stmt(db, SQL_GET);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, id);
    return db_row_one(db, st, read_row, out);
}

int db_server_get_by_name(db_t *db, const char *domain, const char *name, db_server_t *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = db_stmt(db, SQL_GET_BY_NAME);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    return db_row_one(db, st, read_row, out);
}

static void free_list_any(void *list, size_t n)
{
    db_server_t *l = list;
    db_server_list_free(&l, n);
}

int db_server_list(db_t *db, const char *domain, const char *q, int limit, int offset,
                   db_server_t **out, size_t *n, int64_t *total)
{
    void *arr = NULL;
    int rc = db_list_page(db, SQL_COUNT, SQL_LIST, domain, q, limit, offset, sizeof(db_server_t), read_row,
                          free_list_any, &arr, n, total);
    *out = arr;
    return rc;
}

int db_server_find_by_ssid(db_t *db, const char *domain, int ssid, int64_t exclude_id, int64_t *id_out,
                           char **name_out)
{
    if (id_out)
        *id_out = 0;
    if (name_out)
        *name_out = NULL;
    sqlite3_stmt *st = db_stmt(db, SQL_SSID);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, ssid);
    sqlite3_bind_int64(st, 3, exclude_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (id_out)
            *id_out = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
        if (name_out && !(*name_out = db_column_strdup(st, 1)))
            rc = SQLITE_NOMEM;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_NOTFOUND;
    }
    db_stmt_done(st);
    return rc;
}

int db_server_ssid_taken(db_t *db, const char *domain, int ssid, int64_t exclude_id, bool *taken)
{
    *taken = false;
    int rc = db_server_find_by_ssid(db, domain, ssid, exclude_id, NULL, NULL);
    if (rc == SQLITE_OK)
        *taken = true;
    return rc == SQLITE_NOTFOUND ? SQLITE_OK : rc;
}

int db_server_dependents(db_t *db, int64_t id, char **json_out)
{
    *json_out = NULL;
    json_t *tasks = json_array(), *tpls = json_array();
    json_t *root = json_pack("{s:o, s:o}", "tasks", tasks, "taskTemplates", tpls);
    if (!root)
        return SQLITE_NOMEM;
    sqlite3_stmt *st = db_stmt(db, SQL_DEP_TASKS);
    int rc = st ? SQLITE_OK : SQLITE_ERROR;
    if (st) {
        sqlite3_bind_int64(st, 1, id);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            json_t *t = json_pack("{s:I, s:s, s:o, s:o}", "id", (json_int_t)sqlite3_column_int64(st, 0),
                                  "name", (const char *)sqlite3_column_text(st, 1),
                                  "groupId", sqlite3_column_type(st, 2) == SQLITE_NULL
                                                 ? json_null() : json_integer(sqlite3_column_int64(st, 2)),
                                  "deviceId", sqlite3_column_type(st, 3) == SQLITE_NULL
                                                  ? json_null() : json_integer(sqlite3_column_int64(st, 3)));
            if (!t || json_array_append_new(tasks, t) != 0) {
                rc = SQLITE_NOMEM;
                break;
            }
        }
        db_stmt_done(st);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    if (rc == SQLITE_OK) {
        st = db_stmt(db, SQL_DEP_TEMPLATES);
        rc = st ? SQLITE_OK : SQLITE_ERROR;
        if (st) {
            sqlite3_bind_int64(st, 1, id);
            while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                json_t *t = json_pack("{s:I, s:s}", "id", (json_int_t)sqlite3_column_int64(st, 0), "name",
                                      (const char *)sqlite3_column_text(st, 1));
                if (!t || json_array_append_new(tpls, t) != 0) {
                    rc = SQLITE_NOMEM;
                    break;
                }
            }
            db_stmt_done(st);
            rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
        }
    }
    if (rc == SQLITE_OK) {
        *json_out = json_dumps(root, JSON_COMPACT);
        if (!*json_out)
            rc = SQLITE_NOMEM;
    }
    json_decref(root);
    return rc;
}

static int exec_id(db_t *db, const char *sql, int64_t id)
{
    sqlite3_stmt *st = db_stmt(db, sql);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, id);
    return db_step_done(st);
}

int db_server_delete(db_t *db, int64_t id)
{
    bool own;
    int rc = db_tx_begin(db, &own);
    if (rc != SQLITE_OK)
        return rc;
    rc = exec_id(db, SQL_DEL_TASKS, id);
    if (rc == SQLITE_OK)
        rc = exec_id(db, SQL_DEL_TEMPLATES, id);
    if (rc == SQLITE_OK)
        rc = exec_id(db, SQL_DEL, id);
    if (rc == SQLITE_OK && sqlite3_changes(db->h) == 0)
        rc = SQLITE_NOTFOUND;
    if (rc == SQLITE_OK)
        db_mark_config_dirty(db);
    return db_tx_end(db, own, rc);
}
