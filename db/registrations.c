/* db: registrations, observations, last known values and the notification
 * history (migrations/0003_registry.sql). Written by the network loop (inside
 * its per-pass transaction), read by the REST API. */
#include "db/db_int.h"

#include <stdlib.h>
#include <string.h>

#define REG_COLS                                                                                      \
    "device_id, location, endpoint, lifetime, lwm2m_version, binding, queue_mode, sms, object_links," \
    " content_formats, transport, secure, psk_identity, address, registered_at, last_update_at, expires_at"
static const char SQL_PUT[] =
    "INSERT OR REPLACE INTO registrations (" REG_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
    " ?12, ?13, ?14, ?15, ?16, ?17)";
static const char SQL_GET[] = "SELECT " REG_COLS " FROM registrations WHERE device_id = ?1";
static const char SQL_DEL[] = "DELETE FROM registrations WHERE device_id = ?1";
static const char SQL_LIST[] = "SELECT " REG_COLS " FROM registrations ORDER BY location";
static const char SQL_COUNT[] = "SELECT count(*) FROM registrations WHERE expires_at > ?1";

static const char SQL_OBS_PUT[] =
    "INSERT INTO observations (device_id, path, attributes, created_at) VALUES (?1, ?2, ?3, ?4)"
    " ON CONFLICT(device_id, path) DO UPDATE SET attributes = ?3";
static const char SQL_OBS_DEL[] = "DELETE FROM observations WHERE device_id = ?1 AND path = ?2";
static const char SQL_OBS_LIST[] =
    "SELECT device_id, path, attributes, created_at, ifnull(last_notification_at, 0), notifications"
    " FROM observations WHERE device_id = ?1 ORDER BY path";
static const char SQL_OBS_COUNT[] =
    "UPDATE observations SET notifications = notifications + 1, last_notification_at = ?3"
    " WHERE device_id = ?1 AND path = ?2";
static const char SQL_NOTIF_ADD[] = "INSERT INTO notifications (device_id, path, at, records) VALUES (?1, ?2, ?3, ?4)";
static const char SQL_NOTIF_TRIM[] =
    "DELETE FROM notifications WHERE device_id = ?1 AND id <= (SELECT id FROM notifications WHERE device_id = ?1"
    " ORDER BY id DESC LIMIT 1 OFFSET ?2)";
static const char SQL_VALUES_PUT[] =
    "INSERT INTO resource_values (device_id, path, value, updated_at)"
    " SELECT ?1, json_extract(j.value, '$.path'), j.value, ?2 FROM json_each(?3) j"
    " WHERE json_extract(j.value, '$.path') IS NOT NULL"
    " ON CONFLICT(device_id, path) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";
static const char SQL_VALUES_GET[] =
    "SELECT ifnull(json_group_array(json_set(json(value), '$.updatedAt', updated_at)), '[]') FROM"
    " (SELECT value, updated_at FROM resource_values WHERE device_id = ?1"
    "  AND (?2 IS NULL OR path = ?2 OR substr(path, 1, length(?2) + 1) = ?2 || '/') ORDER BY path)";
static const char SQL_NOTIF_GET[] =
    "SELECT ifnull(json_group_array(json_object('path', path, 'at', at, 'records', json(records))), '[]') FROM"
    " (SELECT path, at, records FROM notifications WHERE device_id = ?1"
    "  AND (?2 IS NULL OR path = ?2 OR substr(path, 1, length(?2) + 1) = ?2 || '/') ORDER BY id DESC LIMIT ?3)";

void db_registration_free(db_registration_t *r)
{
    if (!r)
        return;
    free(r->endpoint);
    free(r->lwm2m_version);
    free(r->binding);
    free(r->sms);
    free(r->object_links);
    free(r->content_formats);
    free(r->transport);
    free(r->psk_identity);
    free(r->address);
    memset(r, 0, sizeof *r);
}

void db_registration_list_free(db_registration_t **list, size_t n)
{
    if (!list || !*list)
        return;
    for (size_t i = 0; i < n; i++)
        db_registration_free(&(*list)[i]);
    free(*list);
    *list = NULL;
}

static int read_reg(db_t *db, sqlite3_stmt *st, void *elem)
{
    (void)db;
    db_registration_t *r = elem;
    r->device_id = sqlite3_column_int64(st, 0);
    r->location = sqlite3_column_int64(st, 1);
    r->endpoint = db_column_strdup(st, 2);
    r->lifetime = sqlite3_column_int64(st, 3);
    r->lwm2m_version = db_column_strdup(st, 4);
    r->binding = db_column_strdup(st, 5);
    r->queue_mode = sqlite3_column_int(st, 6) != 0;
    r->sms = db_column_strdup(st, 7);
    r->object_links = db_column_strdup(st, 8);
    r->content_formats = db_column_strdup(st, 9);
    r->transport = db_column_strdup(st, 10);
    r->secure = sqlite3_column_int(st, 11) != 0;
    r->psk_identity = db_column_strdup(st, 12);
    r->address = db_column_strdup(st, 13);
    r->registered_at = sqlite3_column_int64(st, 14);
    r->last_update_at = sqlite3_column_int64(st, 15);
    r->expires_at = sqlite3_column_int64(st, 16);
    if (!r->endpoint || !r->lwm2m_version || !r->binding || !r->object_links || !r->content_formats ||
        !r->transport || !r->address) {
        db_registration_free(r);
        return SQLITE_NOMEM;
    }
    return SQLITE_OK;
}

int db_registration_put(db_t *db, const db_registration_t *r)
{
    sqlite3_stmt *st = db_stmt(db, SQL_PUT);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, r->device_id);
    sqlite3_bind_int64(st, 2, r->location);
    sqlite3_bind_text(st, 3, r->endpoint, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, r->lifetime);
    sqlite3_bind_text(st, 5, r->lwm2m_version, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, r->binding, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 7, r->queue_mode);
    db_bind_text_or_null(st, 8, r->sms);
    sqlite3_bind_text(st, 9, r->object_links ? r->object_links : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, r->content_formats ? r->content_formats : "[]", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 11, r->transport ? r->transport : "udp", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 12, r->secure);
    db_bind_text_or_null(st, 13, r->psk_identity);
    sqlite3_bind_text(st, 14, r->address ? r->address : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 15, r->registered_at);
    sqlite3_bind_int64(st, 16, r->last_update_at);
    sqlite3_bind_int64(st, 17, r->expires_at);
    return db_step_done(st);
}

int db_registration_get(db_t *db, int64_t device_id, db_registration_t *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = db_stmt(db, SQL_GET);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, device_id);
    return db_row_one(db, st, read_reg, out);
}

int db_registration_delete(db_t *db, int64_t device_id)
{
    sqlite3_stmt *st = db_stmt(db, SQL_DEL);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, device_id);
    return db_step_done(st);
}

static void free_reg_list(void *list, size_t n)
{
    db_registration_t *l = list;
    db_registration_list_free(&l, n);
}

int db_registration_list(db_t *db, db_registration_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = db_stmt(db, SQL_LIST);
    if (!st)
        return SQLITE_ERROR;
    void *arr = NULL;
    int rc = db_rows_collect(db, st, sizeof(db_registration_t), read_reg, free_reg_list, &arr, n);
    *out = arr;
    return rc;
}

int db_registration_count(db_t *db, int64_t now_ms, int64_t *count)
{
    sqlite3_stmt *st = db_stmt(db, SQL_COUNT);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, now_ms);
    return db_stmt_int64(st, count);
}

/* ------------------------------------------------------------ observations */
int db_observation_put(db_t *db, int64_t device_id, const char *path, const char *attributes_json, int64_t at_ms)
{
    sqlite3_stmt *st = db_stmt(db, SQL_OBS_PUT);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, device_id);
    sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, attributes_json ? attributes_json : "{}", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, at_ms);
    return db_step_done(st);
}

int db_observation_delete(db_t *db, int64_t device_id, const char *path)
{
    sqlite3_stmt *st = db_stmt(db, SQL_OBS_DEL);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, device_id);
    sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
    int rc = db_step_done(st);
    if (rc == SQLITE_OK && sqlite3_changes(db->h) == 0)
        return SQLITE_NOTFOUND;
    return rc;
}

static int read_obs(db_t *db, sqlite3_stmt *st, void *elem)
{
    (void)db;
    db_observation_t *o = elem;
    o->device_id = sqlite3_column_int64(st, 0);
    o->path = db_column_strdup(st, 1);
    o->attributes = db_column_strdup(st, 2);
    o->created_at = sqlite3_column_int64(st, 3);
    o->last_notification_at = sqlite3_column_int64(st, 4);
    o->notifications = sqlite3_column_int64(st, 5);
    return o->path && o->attributes ? SQLITE_OK : SQLITE_NOMEM;
}

void db_observation_list_free(db_observation_t **list, size_t n)
{
    if (!list || !*list)
        return;
    for (size_t i = 0; i < n; i++) {
        free((*list)[i].path);
        free((*list)[i].attributes);
    }
    free(*list);
    *list = NULL;
}

static void free_obs_list(void *list, size_t n)
{
    db_observation_t *l = list;
    db_observation_list_free(&l, n);
}

int db_observation_list(db_t *db, int64_t device_id, db_observation_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = db_stmt(db, SQL_OBS_LIST);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, device_id);
    void *arr = NULL;
    int rc = db_rows_collect(db, st, sizeof(db_observation_t), read_obs, free_obs_list, &arr, n);
    *out = arr;
    return rc;
}

int db_values_put(db_t *db, int64_t device_id, int64_t at_ms, const char *records_json)
{
    sqlite3_stmt *st = db_stmt(db, SQL_VALUES_PUT);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, device_id);
    sqlite3_bind_int64(st, 2, at_ms);
    sqlite3_bind_text(st, 3, records_json, -1, SQLITE_STATIC);
    return db_step_done(st);
}

int db_notification_add(db_t *db, int64_t device_id, const char *path, int64_t at_ms, const char *records_json,
                        int keep)
{
    bool own;
    int rc = db_tx_begin(db, &own);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_stmt *st = db_stmt(db, SQL_OBS_COUNT);
    if (!st)
        return db_tx_end(db, own, SQLITE_ERROR);
    sqlite3_bind_int64(st, 1, device_id);
    sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, at_ms);
    rc = db_step_done(st);
    if (rc == SQLITE_OK && (st = db_stmt(db, SQL_NOTIF_ADD)) != NULL) {
        sqlite3_bind_int64(st, 1, device_id);
        sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, at_ms);
        sqlite3_bind_text(st, 4, records_json, -1, SQLITE_STATIC);
        rc = db_step_done(st);
    }
    if (rc == SQLITE_OK && (st = db_stmt(db, SQL_NOTIF_TRIM)) != NULL) {
        sqlite3_bind_int64(st, 1, device_id);
        sqlite3_bind_int(st, 2, keep > 0 ? keep : 100);
        rc = db_step_done(st);
    }
    if (rc == SQLITE_OK)
        rc = db_values_put(db, device_id, at_ms, records_json);
    return db_tx_end(db, own, rc);
}

static int json_query(db_t *db, const char *sql, int64_t device_id, const char *prefix, int limit, char **json_out)
{
    *json_out = NULL;
    sqlite3_stmt *st = db_stmt(db, sql);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, device_id);
    db_bind_text_or_null(st, 2, prefix);
    if (limit > 0)
        sqlite3_bind_int(st, 3, limit);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *json_out = db_column_strdup(st, 0);
        rc = *json_out ? SQLITE_OK : SQLITE_NOMEM;
    } else {
        rc = rc == SQLITE_DONE ? SQLITE_NOTFOUND : rc;
    }
    db_stmt_done(st);
    return rc;
}

int db_values_get(db_t *db, int64_t device_id, const char *path_prefix, char **json_out)
{
    return json_query(db, SQL_VALUES_GET, device_id, path_prefix, 0, json_out);
}

int db_notifications_get(db_t *db, int64_t device_id, const char *path_prefix, int limit, char **json_out)
{
    return json_query(db, SQL_NOTIF_GET, device_id, path_prefix, limit > 0 ? limit : 100, json_out);
}
