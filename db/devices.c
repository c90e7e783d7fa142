/* db: devices and their per-server credentials.
 *
 * The lookups by endpoint and by PSK identity run on the CoAP loop for every
 * handshake/request: they use cached statements and indexed columns. */
#include "db/db_int.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define DEV_COLS                                                                                  \
    "id, domain, endpoint, bs_security_mode, bs_psk_identity, bs_psk_enc, mgmt_security_mode, "      \
    "mgmt_psk_identity, mgmt_psk_enc, properties, blacklisted, auto_created, created_at, updated_at, " \
    "last_bootstrap_at, last_bootstrap_status, last_bootstrap_steps, last_registration_at, last_contact_at"

static const char SQL_GET[] = "SELECT " DEV_COLS " FROM devices WHERE id = ?1";
static const char SQL_GET_EP[] = "SELECT " DEV_COLS " FROM devices WHERE domain = ?1 AND endpoint = ?2";
static const char SQL_GET_BS_ID[] = "SELECT " DEV_COLS " FROM devices WHERE bs_psk_identity = ?1";
static const char SQL_GET_MGMT_ID[] =
    "SELECT " DEV_COLS " FROM devices WHERE id = (SELECT id FROM devices WHERE mgmt_psk_identity = ?1"
    " UNION ALL SELECT device_id FROM device_server_credentials WHERE psk_identity = ?1 LIMIT 1)";
static const char SQL_LIST[] =
    "SELECT " DEV_COLS " FROM devices"
    " WHERE (?1 IS NULL OR substr(domain, 1, length(?1)) = ?1)"
    "   AND (?2 IS NULL OR instr(lower(endpoint), lower(?2)) > 0)"
    " ORDER BY id LIMIT ?3 OFFSET ?4";
static const char SQL_COUNT[] =
    "SELECT count(*) FROM devices"
    " WHERE (?1 IS NULL OR substr(domain, 1, length(?1)) = ?1)"
    "   AND (?2 IS NULL OR instr(lower(endpoint), lower(?2)) > 0)";
/* ?state=registered|unregistered: a live registration (expires_at in the future) */
#define LIVE_REG " EXISTS (SELECT 1 FROM registrations g WHERE g.device_id = devices.id" \
                 " AND g.expires_at > CAST(strftime('%s', 'now') AS INTEGER) * 1000)"
#define DEV_WHERE " WHERE (?1 IS NULL OR substr(domain, 1, length(?1)) = ?1)" \
                  "   AND (?2 IS NULL OR instr(lower(endpoint), lower(?2)) > 0)"
static const char SQL_LIST_REG[] = "SELECT " DEV_COLS " FROM devices" DEV_WHERE " AND" LIVE_REG
                                   " ORDER BY id LIMIT ?3 OFFSET ?4";
static const char SQL_COUNT_REG[] = "SELECT count(*) FROM devices" DEV_WHERE " AND" LIVE_REG;
static const char SQL_LIST_UNREG[] = "SELECT " DEV_COLS " FROM devices" DEV_WHERE " AND NOT" LIVE_REG
                                     " ORDER BY id LIMIT ?3 OFFSET ?4";
static const char SQL_COUNT_UNREG[] = "SELECT count(*) FROM devices" DEV_WHERE " AND NOT" LIVE_REG;
static const char SQL_INSERT[] =
    "INSERT INTO devices (domain, endpoint, bs_security_mode, bs_psk_identity, bs_psk_enc,"
    " mgmt_security_mode, mgmt_psk_identity, mgmt_psk_enc, properties, blacklisted, auto_created,"
    " created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)";
static const char SQL_UPDATE[] =
    "UPDATE devices SET endpoint = ?2, bs_security_mode = ?3, bs_psk_identity = ?4, bs_psk_enc = ?5,"
    " mgmt_security_mode = ?6, mgmt_psk_identity = ?7, mgmt_psk_enc = ?8, properties = ?9,"
    " blacklisted = ?10, updated_at = ?11 WHERE id = ?1";
/* A management identity must not be another device's per-server identity. */
static const char SQL_MGMT_ID_CLASH[] =
    "SELECT 1 FROM device_server_credentials WHERE psk_identity = ?1 AND device_id <> ?2"
    " UNION ALL SELECT 1 FROM devices WHERE mgmt_psk_identity = ?1 AND id <> ?2 LIMIT 1";
static const char SQL_DEL[] = "DELETE FROM devices WHERE id = ?1";
static const char SQL_SET_BS[] =
    "UPDATE devices SET last_bootstrap_at = ?2, last_bootstrap_status = ?3, last_bootstrap_steps = ?4"
    " WHERE id = ?1";
static const char SQL_SET_SEEN[] =
    "UPDATE devices SET last_registration_at = CASE WHEN ?2 > 0 THEN ?2 ELSE last_registration_at END,"
    " last_contact_at = CASE WHEN ?3 > 0 THEN ?3 ELSE last_contact_at END WHERE id = ?1";
static const char SQL_CRED_GET[] =
    "SELECT security_mode, psk_identity, psk_enc FROM device_server_credentials"
    " WHERE device_id = ?1 AND server_id = ?2";
static const char SQL_CRED_LIST[] =
    "SELECT server_id, security_mode, psk_identity, psk_enc FROM device_server_credentials"
    " WHERE device_id = ?1 ORDER BY server_id";
static const char SQL_CRED_PUT[] =
    "INSERT INTO device_server_credentials (device_id, server_id, security_mode, psk_identity, psk_enc,"
    " created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)"
    " ON CONFLICT(device_id, server_id) DO UPDATE SET security_mode = excluded.security_mode,"
    " psk_identity = excluded.psk_identity, psk_enc = excluded.psk_enc, updated_at = excluded.updated_at";

void db_credentials_free(db_credentials_t *c)
{
    if (!c)
        return;
    free(c->psk_identity);
    if (c->psk) {
        sodium_memzero(c->psk, c->psk_len);
        free(c->psk);
    }
    memset(c, 0, sizeof *c);
}

void db_device_free(db_device_t *d)
{
    if (!d)
        return;
    free(d->endpoint);
    free(d->domain);
    db_credentials_free(&d->bs);
    db_credentials_free(&d->mgmt);
    free(d->properties_json);
    free(d->last_bootstrap_status);
    free(d->last_bootstrap_json);
    memset(d, 0, sizeof *d);
}

void db_device_list_free(db_device_t **list, size_t n)
{
    if (!list || !*list)
        return;
    for (size_t i = 0; i < n; i++)
        db_device_free(&(*list)[i]);
    free(*list);
    *list = NULL;
}

static int read_creds(db_t *db, sqlite3_stmt *st, int col, db_credentials_t *c)
{
    c->security_mode = sqlite3_column_int(st, col);
    c->psk_identity = db_column_strdup(st, col + 1);
    if (!c->psk_identity && sqlite3_column_type(st, col + 1) != SQLITE_NULL)
        return SQLITE_NOMEM;
    int rc = db_column_secret(db, st, col + 2, &c->psk, &c->psk_len);
    return rc;
}

static int read_row(db_t *db, sqlite3_stmt *st, void *elem)
{
    db_device_t *d = elem;
    memset(d, 0, sizeof *d);
    d->id = sqlite3_column_int64(st, 0);
    d->domain = db_column_strdup(st, 1);
    d->endpoint = db_column_strdup(st, 2);
    int rc = read_creds(db, st, 3, &d->bs);
    if (rc == SQLITE_OK)
        rc = read_creds(db, st, 6, &d->mgmt);
    d->properties_json = db_column_strdup(st, 9);
    d->blacklisted = sqlite3_column_int(st, 10) != 0;
    d->auto_created = sqlite3_column_int(st, 11) != 0;
    d->created_at = sqlite3_column_int64(st, 12);
    d->updated_at = sqlite3_column_int64(st, 13);
    d->last_bootstrap_at = sqlite3_column_int64(st, 14); /* NULL -> 0 */
    d->last_bootstrap_status = db_column_strdup(st, 15);
    d->last_bootstrap_json = db_column_strdup(st, 16);
    d->last_registration_at = sqlite3_column_int64(st, 17);
    d->last_contact_at = sqlite3_column_int64(st, 18);
    if (rc == SQLITE_OK && (!d->domain || !d->endpoint || !d->properties_json))
        rc = SQLITE_NOMEM;
    if (rc != SQLITE_OK)
        db_device_free(d);
    return rc;
}

int db_device_get(db_t *db, int64_t id, db_device_t *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = db_stmt(db, SQL_GET);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, id);
    return db_row_one(db, st, read_row, out);
}

int db_device_get_by_endpoint(db_t *db, const char *domain, const char *endpoint, db_device_t *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = db_stmt(db, SQL_GET_EP);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_text(st, 1, domain ? domain : "/", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, endpoint, -1, SQLITE_STATIC);
    return db_row_one(db, st, read_row, out);
}

int db_device_get_by_bs_identity(db_t *db, const void *identity, size_t len, db_device_t *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = db_stmt(db, SQL_GET_BS_ID);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_text(st, 1, identity, (int)len, SQLITE_STATIC);
    return db_row_one(db, st, read_row, out);
}

int db_device_get_by_mgmt_identity(db_t *db, const void *identity, size_t len, db_device_t *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = db_stmt(db, SQL_GET_MGMT_ID);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_text(st, 1, identity, (int)len, SQLITE_STATIC);
    return db_row_one(db, st, read_row, out);
}

static void free_list_any(void *list, size_t n)
{
    db_device_t *l = list;
    db_device_list_free(&l, n);
}

int db_device_list(db_t *db, const char *domain, const char *q, int limit, int offset,
                   db_device_t **out, size_t *n, int64_t *total)
{
    return db_device_list_state(db, domain, q, 0, limit, offset, out, n, total);
}

int db_device_list_state(db_t *db, const char *domain, const char *q, int state, int limit, int offset,
                         db_device_t **out, size_t *n, int64_t *total)
{
    void *arr = NULL;
    const char *count = state > 0 ? SQL_COUNT_REG : state < 0 ? SQL_COUNT_UNREG : SQL_COUNT;
    const char *list = state > 0 ? SQL_LIST_REG : state < 0 ? SQL_LIST_UNREG : SQL_LIST;
    int rc = db_list_page(db, count, list, domain, q, limit, offset, sizeof(db_device_t), read_row,
                          free_list_any, &arr, n, total);
    *out = arr;
    return rc;
}

static int mgmt_identity_clash(db_t *db, const char *identity, int64_t self_id)
{
    if (!identity)
        return SQLITE_OK;
    sqlite3_stmt *st = db_stmt(db, SQL_MGMT_ID_CLASH);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_text(st, 1, identity, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, self_id);
    int rc = sqlite3_step(st);
    db_stmt_done(st);
    if (rc == SQLITE_ROW)
        return SQLITE_CONSTRAINT;
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Binds the credentials at i (mode), i+1 (identity), i+2 (secret). */
static int bind_creds(db_t *db, sqlite3_stmt *st, int i, const db_credentials_t *c)
{
    int rc = sqlite3_bind_int(st, i, c->security_mode);
    rc |= db_bind_text_or_null(st, i + 1, c->psk_identity);
    if (rc != SQLITE_OK)
        return SQLITE_ERROR;
    return db_bind_secret(db, st, i + 2, c->psk, c->psk_len);
}

int db_device_insert(db_t *db, db_device_t *d)
{
    bool own;
    int rc = db_tx_begin(db, &own);
    if (rc != SQLITE_OK)
        return rc;
    int64_t now = db_now_ms();
    rc = mgmt_identity_clash(db, d->mgmt.psk_identity, 0);
    sqlite3_stmt *st = NULL;
    if (rc == SQLITE_OK && !(st = db_stmt(db, SQL_INSERT)))
        rc = SQLITE_ERROR;
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, d->domain ? d->domain : "/", -1, SQLITE_TRANSIENT);
        db_bind_text_or_null(st, 2, d->endpoint);
        rc = bind_creds(db, st, 3, &d->bs);
        if (rc == SQLITE_OK)
            rc = bind_creds(db, st, 6, &d->mgmt);
        sqlite3_bind_text(st, 9, d->properties_json ? d->properties_json : "{}", -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 10, d->blacklisted);
        sqlite3_bind_int(st, 11, d->auto_created);
        sqlite3_bind_int64(st, 12, now);
        if (rc == SQLITE_OK)
            rc = db_step_done(st);
        else
            db_stmt_done(st);
    }
    int64_t id = rc == SQLITE_OK ? sqlite3_last_insert_rowid(db->h) : 0;
    rc = db_tx_end(db, own, rc);
    if (rc == SQLITE_OK) {
        d->id = id;
        d->created_at = d->updated_at = now;
    }
    return rc;
}

int db_device_update(db_t *db, db_device_t *d)
{
    bool own;
    int rc = db_tx_begin(db, &own);
    if (rc != SQLITE_OK)
        return rc;
    int64_t now = db_now_ms();
    rc = mgmt_identity_clash(db, d->mgmt.psk_identity, d->id);
    sqlite3_stmt *st = NULL;
    if (rc == SQLITE_OK && !(st = db_stmt(db, SQL_UPDATE)))
        rc = SQLITE_ERROR;
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, d->id);
        db_bind_text_or_null(st, 2, d->endpoint);
        rc = bind_creds(db, st, 3, &d->bs);
        if (rc == SQLITE_OK)
            rc = bind_creds(db, st, 6, &d->mgmt);
        sqlite3_bind_text(st, 9, d->properties_json ? d->properties_json : "{}", -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 10, d->blacklisted);
        sqlite3_bind_int64(st, 11, now);
        if (rc == SQLITE_OK)
            rc = db_step_done(st);
        else
            db_stmt_done(st);
        if (rc == SQLITE_OK && sqlite3_changes(db->h) == 0)
            rc = SQLITE_NOTFOUND;
    }
    rc = db_tx_end(db, own, rc);
    if (rc == SQLITE_OK)
        d->updated_at = now;
    return rc;
}

static int exec_changes(db_t *db, sqlite3_stmt *st)
{
    int rc = db_step_done(st);
    if (rc == SQLITE_OK && sqlite3_changes(db->h) == 0)
        rc = SQLITE_NOTFOUND;
    return rc;
}

int db_device_delete(db_t *db, int64_t id)
{
    sqlite3_stmt *st = db_stmt(db, SQL_DEL);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, id);
    return exec_changes(db, st);
}

int db_device_set_bootstrap(db_t *db, int64_t id, int64_t at_ms, const char *status, const char *steps_json)
{
    sqlite3_stmt *st = db_stmt(db, SQL_SET_BS);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, id);
    db_bind_int64_or_null(st, 2, at_ms, 0);
    db_bind_text_or_null(st, 3, status);
    db_bind_text_or_null(st, 4, steps_json);
    return exec_changes(db, st);
}

int db_device_set_seen(db_t *db, int64_t id, int64_t registration_at_ms, int64_t contact_at_ms)
{
    sqlite3_stmt *st = db_stmt(db, SQL_SET_SEEN);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, registration_at_ms);
    sqlite3_bind_int64(st, 3, contact_at_ms);
    return exec_changes(db, st);
}

int db_device_server_cred_get(db_t *db, int64_t device_id, int64_t server_id, db_credentials_t *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = db_stmt(db, SQL_CRED_GET);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, device_id);
    sqlite3_bind_int64(st, 2, server_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        rc = read_creds(db, st, 0, out);
        if (rc != SQLITE_OK)
            db_credentials_free(out);
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_NOTFOUND;
    }
    db_stmt_done(st);
    return rc;
}

void db_server_cred_list_free(db_server_cred_t **list, size_t n)
{
    if (!list || !*list)
        return;
    for (size_t i = 0; i < n; i++)
        db_credentials_free(&(*list)[i].cred);
    free(*list);
    *list = NULL;
}

int db_device_server_cred_list(db_t *db, int64_t device_id, db_server_cred_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = db_stmt(db, SQL_CRED_LIST);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, device_id);
    db_server_cred_t *arr = NULL;
    size_t cnt = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 4;
            db_server_cred_t *na = realloc(arr, nc * sizeof *na);
            if (!na) {
                rc = SQLITE_NOMEM;
                break;
            }
            arr = na;
            cap = nc;
        }
        memset(&arr[cnt], 0, sizeof arr[cnt]);
        arr[cnt].server_id = sqlite3_column_int64(st, 0);
        rc = read_creds(db, st, 1, &arr[cnt].cred);
        cnt++;
        if (rc != SQLITE_OK)
            break;
    }
    db_stmt_done(st);
    if (rc != SQLITE_DONE) {
        db_server_cred_list_free(&arr, cnt);
        return rc;
    }
    *out = arr;
    *n = cnt;
    return SQLITE_OK;
}

int db_device_server_cred_put(db_t *db, int64_t device_id, int64_t server_id, const db_credentials_t *c)
{
    bool own;
    int rc = db_tx_begin(db, &own);
    if (rc != SQLITE_OK)
        return rc;
    rc = mgmt_identity_clash(db, c->psk_identity, device_id);
    sqlite3_stmt *st = NULL;
    if (rc == SQLITE_OK && !(st = db_stmt(db, SQL_CRED_PUT)))
        rc = SQLITE_ERROR;
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, device_id);
        sqlite3_bind_int64(st, 2, server_id);
        rc = bind_creds(db, st, 3, c);
        sqlite3_bind_int64(st, 6, db_now_ms());
        if (rc == SQLITE_OK)
            rc = db_step_done(st);
        else
            db_stmt_done(st);
    }
    return db_tx_end(db, own, rc);
}
