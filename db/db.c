/* db: connection lifecycle, migrations, statement cache, transactions, kv.
 *
 * One db_t is one SQLite connection, used by one thread only (opened with
 * SQLITE_OPEN_NOMUTEX). Prepared statements are cached per connection, keyed
 * by the address of their SQL string literal, so hot lookups (devices by
 * endpoint / PSK identity on the CoAP loop) never re-parse SQL. */
#include "db/db_int.h"
#include "server/common/embedded.h"
#include "server/common/log.h"

#include <sodium.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static _Atomic uint64_t g_config_generation = 1;

uint64_t db_config_generation(void) { return atomic_load(&g_config_generation); }
void db_config_changed(void) { atomic_fetch_add(&g_config_generation, 1); }
static _Atomic uint64_t g_tasks_generation = 1;
uint64_t db_tasks_generation(void) { return atomic_load(&g_tasks_generation); }

int64_t db_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_err(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, a ? a : "", b ? b : "");
}

static int exec_pragma(sqlite3 *h, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    int rc = sqlite3_exec(h, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        set_err(err, errlen, "%s: %s", sql, msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return rc;
}

/* SQLite's memory statistics (which lwdm never reads) put a global mutex
 * around every allocation SQLite makes; they are off before the first
 * connection. A process that initialised SQLite before (a test) keeps
 * them: sqlite3_config then refuses, harmlessly. */
static pthread_once_t sqlite_config_once = PTHREAD_ONCE_INIT;
static void sqlite_config(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int db_open(const char *path, const uint8_t key[DB_KEY_BYTES], db_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!path || !key) {
        set_err(err, errlen, "db_open: %s%s", "missing path or key", NULL);
        return SQLITE_MISUSE;
    }
    if (sodium_init() < 0) {
        set_err(err, errlen, "%s%s", "libsodium initialisation failed", NULL);
        return SQLITE_ERROR;
    }
    pthread_once(&sqlite_config_once, sqlite_config);
    db_t *db = calloc(1, sizeof *db);
    if (!db) {
        set_err(err, errlen, "%s%s", "out of memory", NULL);
        return SQLITE_NOMEM;
    }
    memcpy(db->key, key, DB_KEY_BYTES);
    int rc = sqlite3_open_v2(path, &db->h,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        set_err(err, errlen, "cannot open %s: %s", path, db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_extended_result_codes(db->h, 0);
    sqlite3_busy_timeout(db->h, 5000);
    bool in_memory = path[0] == 0 || strcmp(path, ":memory:") == 0;
    if (!in_memory) {
        sqlite3_stmt *st = NULL;
        rc = sqlite3_prepare_v2(db->h, "PRAGMA journal_mode=WAL", -1, &st, NULL);
        if (rc == SQLITE_OK) {
            rc = sqlite3_step(st);
            const char *mode = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
            rc = (mode && strcmp(mode, "wal") == 0) ? SQLITE_OK : SQLITE_ERROR;
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_OK) {
            set_err(err, errlen, "cannot switch %s to WAL mode: %s", path, sqlite3_errmsg(db->h));
            goto fail;
        }
    }
    if ((rc = exec_pragma(db->h, "PRAGMA synchronous=NORMAL", err, errlen)) != SQLITE_OK ||
        (rc = exec_pragma(db->h, "PRAGMA foreign_keys=ON", err, errlen)) != SQLITE_OK)
        goto fail;
    *out = db;
    return SQLITE_OK;
fail:
    sqlite3_close(db->h);
    sodium_memzero(db->key, sizeof db->key);
    free(db);
    return rc == SQLITE_OK ? SQLITE_ERROR : rc;
}

void db_close(db_t **pdb)
{
    if (!pdb || !*pdb)
        return;
    db_t *db = *pdb;
    for (size_t i = 0; i < db->n_cache; i++)
        sqlite3_finalize(db->cache[i].st);
    if (db->h && !sqlite3_get_autocommit(db->h))
        sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
    if (sqlite3_close(db->h) != SQLITE_OK)
        LOG_WARN("db", "event=close_failed err=\"%s\"", sqlite3_errmsg(db->h));
    sodium_memzero(db->key, sizeof db->key);
    free(db);
    *pdb = NULL;
}

struct sqlite3 *db_handle(db_t *db) { return db->h; }

/* ------------------------------------------------------ statement cache */
sqlite3_stmt *db_stmt(db_t *db, const char *sql)
{
    for (size_t i = 0; i < db->n_cache; i++)
        if (db->cache[i].sql == sql)
            return db->cache[i].st;
    sqlite3_stmt *st = NULL;
    unsigned flags = db->n_cache < DB_STMT_CACHE ? SQLITE_PREPARE_PERSISTENT : 0;
    if (sqlite3_prepare_v3(db->h, sql, -1, flags, &st, NULL) != SQLITE_OK) {
        LOG_ERROR("db", "event=prepare_failed err=\"%s\"", sqlite3_errmsg(db->h));
        return NULL;
    }
    if (db->n_cache < DB_STMT_CACHE) {
        db->cache[db->n_cache].sql = sql;
        db->cache[db->n_cache].st = st;
        db->n_cache++;
        return st;
    }
    /* Cache full (should not happen: the number of SQL literals is fixed).
     * Evict the oldest entry. */
    sqlite3_finalize(db->cache[0].st);
    memmove(&db->cache[0], &db->cache[1], (DB_STMT_CACHE - 1) * sizeof db->cache[0]);
    db->cache[DB_STMT_CACHE - 1].sql = sql;
    db->cache[DB_STMT_CACHE - 1].st = st;
    return st;
}

void db_stmt_done(sqlite3_stmt *st)
{
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

int db_step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        rc = SQLITE_OK;
    db_stmt_done(st);
    return rc & 0xff;
}

/* --------------------------------------------------------- transactions */
/* Transaction control runs several times per loop pass: the statements are
 * prepared once (db_stmt's cache, keyed by these literals' addresses) instead
 * of parsed by sqlite3_exec() every time. */
static const char SQL_BEGIN[] = "BEGIN IMMEDIATE";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";
static const char SQL_SAVEPOINT[] = "SAVEPOINT db_tx";
static const char SQL_RELEASE[] = "RELEASE db_tx";
static const char SQL_ROLLBACK_TO[] = "ROLLBACK TO db_tx";

static int exec_simple(db_t *db, const char *sql)
{
    sqlite3_stmt *st = db_stmt(db, sql);
    int rc = st ? db_step_done(st) : SQLITE_ERROR;
    if (rc != SQLITE_OK)
        LOG_DEBUG("db", "event=exec_failed sql=\"%s\" err=\"%s\"", sql, sqlite3_errmsg(db->h));
    return rc & 0xff;
}

int db_begin(db_t *db) { return exec_simple(db, SQL_BEGIN); }

bool db_in_transaction(db_t *db) { return db && db->h && sqlite3_get_autocommit(db->h) == 0; }

int db_commit(db_t *db)
{
    int rc = exec_simple(db, SQL_COMMIT);
    if (rc == SQLITE_OK && db->config_dirty) {
        db->config_dirty = false;
        db_config_changed();
    }
    if (rc == SQLITE_OK && db->tasks_dirty) {
        db->tasks_dirty = false;
        atomic_fetch_add(&g_tasks_generation, 1);
    }
    return rc;
}

int db_rollback(db_t *db)
{
    db->config_dirty = false;
    /* a rolled-back write changed nothing, but moving on is always safe */
    if (db->tasks_dirty) {
        db->tasks_dirty = false;
        atomic_fetch_add(&g_tasks_generation, 1);
    }
    if (sqlite3_get_autocommit(db->h))
        return SQLITE_OK;
    return exec_simple(db, SQL_ROLLBACK);
}

int db_tx_begin(db_t *db, bool *own)
{
    *own = sqlite3_get_autocommit(db->h) != 0;
    return exec_simple(db, *own ? SQL_BEGIN : SQL_SAVEPOINT);
}

int db_tx_end(db_t *db, bool own, int rc)
{
    if (own) {
        if (rc == SQLITE_OK) {
            int c = db_commit(db);
            if (c != SQLITE_OK) {
                db_rollback(db);
                return c;
            }
            return SQLITE_OK;
        }
        db_rollback(db);
        return rc;
    }
    if (rc == SQLITE_OK)
        return exec_simple(db, SQL_RELEASE);
    exec_simple(db, SQL_ROLLBACK_TO);
    exec_simple(db, SQL_RELEASE);
    return rc;
}

void db_mark_tasks_dirty(db_t *db)
{
    if (sqlite3_get_autocommit(db->h))
        atomic_fetch_add(&g_tasks_generation, 1); /* autocommit: already committed */
    else
        db->tasks_dirty = true;
}

void db_mark_config_dirty(db_t *db)
{
    if (sqlite3_get_autocommit(db->h))
        db_config_changed();
    else
        db->config_dirty = true;
}

/* ----------------------------------------------------------- migrations */
int db_migrate(db_t *db, int *applied, char *err, size_t errlen)
{
    if (applied)
        *applied = 0;
    int n = 0;
    int rc = db_begin(db);
    if (rc != SQLITE_OK) {
        set_err(err, errlen, "migrate: cannot begin: %s%s", sqlite3_errmsg(db->h), NULL);
        return rc;
    }
    char *msg = NULL;
    rc = sqlite3_exec(db->h,
                      "CREATE TABLE IF NOT EXISTS schema_migrations ("
                      " name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)",
                      NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        set_err(err, errlen, "migrate: %s%s", msg, NULL);
        goto fail;
    }
    /* Refuse a database migrated by a newer binary. */
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(db->h, "SELECT name FROM schema_migrations ORDER BY name", -1, &st, NULL);
    if (rc != SQLITE_OK)
        goto fail_db;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        bool known = false;
        for (size_t i = 0; lwdm_migrations[i].name; i++)
            if (strcmp(lwdm_migrations[i].name, name) == 0)
                known = true;
        if (!known) {
            set_err(err, errlen, "migrate: the database has migration %s, unknown to this binary%s", name, NULL);
            sqlite3_finalize(st);
            rc = SQLITE_MISMATCH;
            goto fail;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        goto fail_db;

    for (size_t i = 0; lwdm_migrations[i].name; i++) {
        const char *name = lwdm_migrations[i].name;
        st = NULL;
        rc = sqlite3_prepare_v2(db->h, "SELECT 1 FROM schema_migrations WHERE name = ?", -1, &st, NULL);
        if (rc != SQLITE_OK)
            goto fail_db;
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc == SQLITE_ROW)
            continue;
        if (rc != SQLITE_DONE)
            goto fail_db;
        rc = sqlite3_exec(db->h, (const char *)lwdm_migrations[i].data, NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
            set_err(err, errlen, "migration %s failed: %s", name, msg);
            goto fail;
        }
        st = NULL;
        rc = sqlite3_prepare_v2(db->h, "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)", -1, &st, NULL);
        if (rc != SQLITE_OK)
            goto fail_db;
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, db_now_ms());
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
            goto fail_db;
        n++;
        LOG_INFO("db", "event=migration_applied name=%s", name);
    }
    rc = db_commit(db);
    if (rc != SQLITE_OK)
        goto fail_db;
    if (applied)
        *applied = n;
    return SQLITE_OK;
fail_db:
    set_err(err, errlen, "migrate: %s%s", sqlite3_errmsg(db->h), NULL);
fail:
    sqlite3_free(msg);
    db_rollback(db);
    return rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_ERROR : (rc & 0xff);
}

/* --------------------------------------------------------------- backup */
int db_backup(db_t *db, const char *dest_path, char *err, size_t errlen)
{
    sqlite3 *dest = NULL;
    int rc = sqlite3_open_v2(dest_path, &dest, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        set_err(err, errlen, "cannot open %s: %s", dest_path, dest ? sqlite3_errmsg(dest) : sqlite3_errstr(rc));
        sqlite3_close(dest);
        return rc;
    }
    sqlite3_backup *b = sqlite3_backup_init(dest, "main", db->h, "main");
    if (!b) {
        rc = sqlite3_errcode(dest);
        set_err(err, errlen, "backup to %s: %s", dest_path, sqlite3_errmsg(dest));
        sqlite3_close(dest);
        return rc == SQLITE_OK ? SQLITE_ERROR : rc;
    }
    do {
        rc = sqlite3_backup_step(b, 256);
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
            sqlite3_sleep(10);
    } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
    sqlite3_backup_finish(b);
    rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    if (rc != SQLITE_OK)
        set_err(err, errlen, "backup to %s: %s", dest_path, sqlite3_errstr(rc));
    sqlite3_close(dest);
    return rc;
}

/* --------------------------------------------------------------- helpers */
char *db_column_strdup(sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return NULL;
    const unsigned char *t = sqlite3_column_text(st, col);
    int n = sqlite3_column_bytes(st, col);
    char *s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    memcpy(s, t ? (const char *)t : "", (size_t)n);
    s[n] = 0;
    return s;
}

int db_bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
    return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
}

int db_bind_int64_or_null(sqlite3_stmt *st, int i, int64_t v, int64_t null_value)
{
    return v == null_value ? sqlite3_bind_null(st, i) : sqlite3_bind_int64(st, i, v);
}

/* ------------------------------------------------------------------- kv */
static const char SQL_KV_GET[] = "SELECT value FROM kv WHERE key = ?1";
static const char SQL_KV_SET[] =
    "INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value";

int db_kv_get(db_t *db, const char *key, char **value_out)
{
    *value_out = NULL;
    sqlite3_stmt *st = db_stmt(db, SQL_KV_GET);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *value_out = db_column_strdup(st, 0);
        rc = *value_out ? SQLITE_OK : SQLITE_NOMEM;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_NOTFOUND;
    }
    db_stmt_done(st);
    return rc;
}

int db_kv_set(db_t *db, const char *key, const char *value)
{
    sqlite3_stmt *st = db_stmt(db, SQL_KV_SET);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    return db_step_done(st);
}

int db_list_page(db_t *db, const char *count_sql, const char *list_sql, const char *domain, const char *q, int limit,
                 int offset, size_t elem_size, db_read_row_fn read_row, db_free_list_fn free_list, void **out,
                 size_t *n, int64_t *total)
{
    *out = NULL;
    *n = 0;
    if (total)
        *total = 0;
    if (q && !*q)
        q = NULL;
    int rc;
    if (total) {
        sqlite3_stmt *c = db_stmt(db, count_sql);
        if (!c)
            return SQLITE_ERROR;
        db_bind_text_or_null(c, 1, domain);
        db_bind_text_or_null(c, 2, q);
        rc = sqlite3_step(c);
        if (rc == SQLITE_ROW)
            *total = sqlite3_column_int64(c, 0);
        db_stmt_done(c);
        if (rc != SQLITE_ROW)
            return rc;
    }
    sqlite3_stmt *st = db_stmt(db, list_sql);
    if (!st)
        return SQLITE_ERROR;
    db_bind_text_or_null(st, 1, domain);
    db_bind_text_or_null(st, 2, q);
    sqlite3_bind_int(st, 3, limit > 0 ? limit : -1);
    sqlite3_bind_int(st, 4, offset > 0 ? offset : 0);
    return db_rows_collect(db, st, elem_size, read_row, free_list, out, n);
}
