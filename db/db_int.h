/* db room internals, shared by the db sources only (the public surface is db.h). */
#ifndef LWDM_DB_INT_H
#define LWDM_DB_INT_H
#include "db/db.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DB_STMT_CACHE 192

struct db {
    sqlite3 *h;
    uint8_t key[DB_KEY_BYTES];
    bool config_dirty;          /* a write to servers/bs settings awaits COMMIT */
    bool tasks_dirty;           /* a write that can change a device's task candidates awaits COMMIT */
    struct {                    /* the last log seq written per report (direct-mapped by id) */
        int64_t report_id, seq;
    } log_seq[64];
    uint64_t inherited_gen;     /* tasks generation of inherited_any (0: not asked yet) */
    bool inherited_any;         /* some active task applies to subgroups */
    struct {
        const char *sql;        /* static string: compared by pointer, then text */
        sqlite3_stmt *st;
    } cache[DB_STMT_CACHE];
    size_t n_cache;
};

/* Returns the cached prepared statement for `sql` (a string literal that lives
 * for the whole process), preparing it on first use. The statement is reset
 * and its bindings cleared; give it back with db_stmt_done(). NULL on error. */
sqlite3_stmt *db_stmt(db_t *db, const char *sql);
void db_stmt_done(sqlite3_stmt *st);

/* Transaction helper for functions that write several statements: starts
 * BEGIN IMMEDIATE when the connection is in autocommit mode (then *own is
 * true), otherwise a SAVEPOINT inside the caller's transaction. db_tx_end
 * commits (rc == SQLITE_OK) or rolls back and returns rc (or the commit's
 * failure). */
int db_tx_begin(db_t *db, bool *own);
int db_tx_end(db_t *db, bool own, int rc);
/* Marks that servers/bootstrap settings changed: the generation is bumped when
 * the outermost transaction commits. */
void db_mark_config_dirty(db_t *db);
/* Marks a write to tasks, groups, memberships or task reports: the tasks
 * generation (db_tasks_generation) moves on when it is committed. */
void db_mark_tasks_dirty(db_t *db);

/* Secrets: plain (len bytes) -> nonce||ciphertext. Caller frees *out. */
int db_seal(db_t *db, const void *plain, size_t len, uint8_t **out, size_t *outlen);
/* nonce||ciphertext -> plain (malloc'd, NUL-terminated one past *outlen,
 * caller frees). SQLITE_CORRUPT when it does not authenticate. */
int db_unseal(db_t *db, const void *blob, size_t bloblen, uint8_t **out, size_t *outlen);
/* Binds a secret at index i: NULL when plain is NULL. */
int db_bind_secret(db_t *db, sqlite3_stmt *st, int i, const void *plain, size_t len);
/* Reads a secret column (NULL column -> *out NULL). */
int db_column_secret(db_t *db, sqlite3_stmt *st, int col, uint8_t **out, size_t *outlen);

/* Column helpers: malloc'd copies (NULL for SQL NULL). */
char *db_column_strdup(sqlite3_stmt *st, int col);
int db_bind_text_or_null(sqlite3_stmt *st, int i, const char *s);
int db_bind_int64_or_null(sqlite3_stmt *st, int i, int64_t v, int64_t null_value);

/* Step a statement that returns no rows; SQLITE_OK on success. */
int db_step_done(sqlite3_stmt *st);

/* One page of a list: counts with count_sql (if total) and reads rows with
 * list_sql, both bound as (?1 domain or NULL, ?2 q or NULL[, ?3 limit,
 * ?4 offset]). read_row fills one element of elem_size bytes; free_list frees
 * the first n elements and the array. On success *out is a malloc'd array of
 * *n elements (NULL when empty). */
typedef int (*db_read_row_fn)(db_t *db, sqlite3_stmt *st, void *elem);
typedef void (*db_free_list_fn)(void *list, size_t n);
int db_list_page(db_t *db, const char *count_sql, const char *list_sql, const char *domain, const char *q, int limit,
                 int offset, size_t elem_size, db_read_row_fn read_row, db_free_list_fn free_list, void **out,
                 size_t *n, int64_t *total);

/* Steps an already bound statement and collects its rows like db_list_page
 * (read_row per row into a malloc'd array of elem_size elements; free_list on
 * failure). Gives the statement back with db_stmt_done. */
int db_rows_collect(db_t *db, sqlite3_stmt *st, size_t elem_size, db_read_row_fn read_row, db_free_list_fn free_list,
                    void **out, size_t *n);
/* Reads a single int64 from a statement bound by the caller (first column of
 * the first row); SQLITE_NOTFOUND when there is no row. Gives it back. */
int db_stmt_int64(sqlite3_stmt *st, int64_t *out);
/* Steps an already bound statement expected to yield at most one row: fills
 * *out with read_row (SQLITE_OK), or SQLITE_NOTFOUND; gives the statement back. */
int db_row_one(db_t *db, sqlite3_stmt *st, db_read_row_fn read_row, void *out);
/* Steps an already bound statement and collects column 0 of every row as
 * int64 (*ids malloc'd, NULL when none); gives the statement back. */
int db_rows_int64(sqlite3_stmt *st, int64_t **ids, size_t *n);

#endif
