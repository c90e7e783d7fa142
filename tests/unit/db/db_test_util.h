/* Shared fixture of the db unit tests: a fresh database in a mkdtemp dir. */
#ifndef LWDM_TEST_DB_UTIL_H
#define LWDM_TEST_DB_UTIL_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/db.h"

typedef struct {
    char dir[64];
    char path[128];
    uint8_t key[DB_KEY_BYTES];
    db_t *db;
} tdb_t;

static inline void tdb_rmdir(const char *dir)
{
    static const char *const suffixes[] = {"/t.db", "/t.db-wal", "/t.db-shm", "/t.db.key", "/backup.db"};
    char p[160];
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(p, sizeof p, "%s%s", dir, suffixes[i]);
        unlink(p);
    }
    rmdir(dir);
}

static inline int tdb_setup(void **state)
{
    tdb_t *t = calloc(1, sizeof *t);
    assert_non_null(t);
    snprintf(t->dir, sizeof t->dir, "/tmp/lwdm-dbtest-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof t->path, "%s/t.db", t->dir);
    for (int i = 0; i < DB_KEY_BYTES; i++)
        t->key[i] = (uint8_t)(i * 7 + 1);
    char err[256] = "";
    assert_int_equal(db_open(t->path, t->key, &t->db, err, sizeof err), SQLITE_OK);
    int applied = -1;
    int rc = db_migrate(t->db, &applied, err, sizeof err);
    if (rc != SQLITE_OK)
        fail_msg("migrate: %s", err);
    assert_true(applied >= 1);
    *state = t;
    return 0;
}

static inline int tdb_teardown(void **state)
{
    tdb_t *t = *state;
    db_close(&t->db);
    assert_null(t->db);
    tdb_rmdir(t->dir);
    free(t);
    return 0;
}

/* Runs one SQL statement on the raw handle; fails the test on error. */
static inline void tdb_exec(db_t *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db_handle(db), sql, NULL, NULL, &msg) != SQLITE_OK) {
        fail_msg("%s: %s", sql, msg);
    }
}

/* Single integer result of a query. */
static inline int64_t tdb_int(db_t *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db_handle(db), sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* true if `needle` occurs in the bytes of any value of column `col` in `table`. */
static inline int tdb_raw_contains(db_t *db, const char *table, const char *col, const void *needle, size_t nlen)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT %s FROM %s", col, table);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db_handle(db), sql, -1, &st, NULL), SQLITE_OK);
    int found = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *b = sqlite3_column_blob(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        for (size_t i = 0; b && n >= nlen && i <= n - nlen; i++)
            if (memcmp(b + i, needle, nlen) == 0)
                found = 1;
    }
    sqlite3_finalize(st);
    return found;
}

#endif
