/* db: row collection helpers shared by the list functions. */
#include "db/db_int.h"

#include <stdlib.h>
#include <string.h>

int db_rows_collect(db_t *db, sqlite3_stmt *st, size_t elem_size, db_read_row_fn read_row, db_free_list_fn free_list,
                    void **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    char *arr = NULL;
    size_t cnt = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char *na = realloc(arr, nc * elem_size);
            if (!na) {
                rc = SQLITE_NOMEM;
                break;
            }
            arr = na;
            cap = nc;
        }
        memset(arr + cnt * elem_size, 0, elem_size);
        rc = read_row(db, st, arr + cnt * elem_size);
        if (rc != SQLITE_OK)
            break;
        cnt++;
    }
    db_stmt_done(st);
    if (rc != SQLITE_DONE) {
        free_list(arr, cnt);
        return rc & 0xff;
    }
    *out = arr;
    *n = cnt;
    return SQLITE_OK;
}

int db_stmt_int64(sqlite3_stmt *st, int64_t *out)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_NOTFOUND;
    }
    db_stmt_done(st);
    return rc & 0xff;
}

int db_row_one(db_t *db, sqlite3_stmt *st, db_read_row_fn read_row, void *out)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        rc = read_row(db, st, out);
    else if (rc == SQLITE_DONE)
        rc = SQLITE_NOTFOUND;
    db_stmt_done(st);
    return rc & 0xff;
}

int db_rows_int64(sqlite3_stmt *st, int64_t **ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    int64_t *arr = NULL;
    size_t cnt = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 8;
            int64_t *na = realloc(arr, nc * sizeof *na);
            if (!na) {
                rc = SQLITE_NOMEM;
                break;
            }
            arr = na;
            cap = nc;
        }
        arr[cnt++] = sqlite3_column_int64(st, 0);
    }
    db_stmt_done(st);
    if (rc != SQLITE_DONE) {
        free(arr);
        return rc;
    }
    *ids = arr;
    *n = cnt;
    return SQLITE_OK;
}
