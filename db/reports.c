/* db: task reports (one per task per device) and the execution log of their
 * last run.
 *
 * Lifecycle (written by the interpreter on the network loop):
 *   db_report_start  -> IN_PROGRESS, runs + 1, the previous run's log deleted
 *   db_report_log    -> one line per step
 *   db_report_finish -> SUCCESS | WARNING | ERROR
 * A run that cannot finish in a session stays IN_PROGRESS. After a server
 * restart db_reports_mark_interrupted() logs "interrupted by a server restart"
 * on every IN_PROGRESS report and leaves it IN_PROGRESS: the scheduler restarts
 * it in the device's next session. */
#include "db/db_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const db_report_statuses[DB_REPORT_STATUS_COUNT] = {"NOT_STARTED", "IN_PROGRESS", "SUCCESS", "WARNING",
                                                                "ERROR"};

static const char SQL_START[] =
    "INSERT INTO task_reports (task_id, device_id, status, started_at, finished_at, summary, variables_json, runs,"
    " session_kind, updated_at) VALUES (?1, ?2, 'IN_PROGRESS', ?4, NULL, '', '{}', 1, ?3, ?4)"
    " ON CONFLICT(task_id, device_id) DO UPDATE SET status = 'IN_PROGRESS', started_at = ?4, finished_at = NULL,"
    " summary = '', variables_json = '{}', runs = runs + 1, session_kind = ?3, updated_at = ?4"
    " RETURNING id, runs";
static const char SQL_LOG_CLEAR[] = "DELETE FROM task_log WHERE report_id = ?1";
/* A line's seq is read first, then the line inserted: an INSERT ... SELECT
 * that reads task_log itself makes SQLite stage the row in a temporary
 * b-tree, which cost more than the insert. No row: the report is gone.
 * Lines are only written through this function, by one connection (the
 * network loop's), which remembers the last seq of recent reports
 * (db->log_seq): a remembered seq is never below the stored one (a rollback
 * only leaves a gap), so the read is skipped for it. */
static const char SQL_LOG_NEXT[] =
    "SELECT ifnull((SELECT max(seq) FROM task_log WHERE report_id = ?1), 0) + 1 FROM task_reports WHERE id = ?1";
static const char SQL_LOG_ADD[] =
    "INSERT INTO task_log (report_id, seq, at, level, step, sent, received, code, message)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
static const char SQL_FINISH[] =
    "UPDATE task_reports SET status = ?2, summary = ?3, variables_json = ifnull(?4, variables_json),"
    " finished_at = CASE WHEN ?2 = 'IN_PROGRESS' THEN NULL ELSE ?5 END, updated_at = ?5 WHERE id = ?1";
static const char SQL_INTERRUPT_LOG[] =
    "INSERT INTO task_log (report_id, seq, at, level, step, sent, received, code, message)"
    " SELECT r.id, ifnull((SELECT max(seq) FROM task_log l WHERE l.report_id = r.id), 0) + 1, ?1, 'warning', '',"
    " NULL, NULL, NULL, 'interrupted by a server restart' FROM task_reports r WHERE r.status = 'IN_PROGRESS'";
static const char SQL_INTERRUPT_TOUCH[] = "UPDATE task_reports SET updated_at = ?1 WHERE status = 'IN_PROGRESS'";

#define REPORT_COLS                                                                                    \
    "r.id, r.task_id, r.device_id, d.endpoint, t.name, ifnull(t.group_id, 0), ifnull(t.device_id, 0), r.status," \
    " ifnull(r.started_at, 0), ifnull(r.finished_at, 0), r.summary, r.variables_json, r.runs,"          \
    " ifnull(r.session_kind, ''), r.updated_at"
static const char SQL_GET[] =
    "SELECT " REPORT_COLS " FROM task_reports r JOIN devices d ON d.id = r.device_id JOIN tasks t ON t.id = r.task_id"
    " WHERE r.id = ?1";
static const char SQL_LINES[] =
    "SELECT seq, at, level, step, sent, received, code, message FROM task_log WHERE report_id = ?1 ORDER BY seq";
static const char SQL_DEV_LIST[] =
    "SELECT " REPORT_COLS " FROM task_reports r JOIN devices d ON d.id = r.device_id JOIN tasks t ON t.id = r.task_id"
    " WHERE r.device_id = ?1 ORDER BY r.id LIMIT ?2 OFFSET ?3";
static const char SQL_DEV_COUNT[] = "SELECT count(*) FROM task_reports WHERE device_id = ?1";

/* Per-device rows of a task (?1): its reports, and NOT_STARTED rows for the
 * target devices without one. */
#define TASK_ROWS_CTE                                                                                  \
    "WITH RECURSIVE sub(id) AS (SELECT group_id FROM tasks WHERE id = ?1 AND group_id IS NOT NULL"      \
    "   UNION SELECT g.id FROM groups g JOIN sub ON g.parent_id = sub.id"                                \
    "   WHERE (SELECT applies_to_subgroups FROM tasks WHERE id = ?1) = 1),"                            \
    " targets(device_id) AS (SELECT device_id FROM group_members WHERE group_id IN (SELECT id FROM sub)" \
    "   UNION SELECT device_id FROM tasks WHERE id = ?1 AND device_id IS NOT NULL),"                   \
    " rows(rid, device_id, status, started_at, finished_at, summary, variables_json, runs, session_kind," \
    "   updated_at) AS ("                                                                               \
    "   SELECT r.id, r.device_id, r.status, r.started_at, r.finished_at, r.summary, r.variables_json, r.runs," \
    "     r.session_kind, r.updated_at FROM task_reports r WHERE r.task_id = ?1"                        \
    "   UNION ALL SELECT 0, x.device_id, 'NOT_STARTED', NULL, NULL, '', '{}', 0, NULL, 0 FROM targets x" \
    "   WHERE NOT EXISTS (SELECT 1 FROM task_reports r WHERE r.task_id = ?1 AND r.device_id = x.device_id))"
static const char SQL_TASK_LIST[] =
    TASK_ROWS_CTE " SELECT rows.rid, t.id, rows.device_id, d.endpoint, t.name, ifnull(t.group_id, 0),"
    " ifnull(t.device_id, 0), rows.status, ifnull(rows.started_at, 0), ifnull(rows.finished_at, 0), rows.summary,"
    " rows.variables_json, rows.runs, ifnull(rows.session_kind, ''), rows.updated_at"
    " FROM rows JOIN devices d ON d.id = rows.device_id JOIN tasks t ON t.id = ?1"
    " WHERE (?2 IS NULL OR rows.status = ?2) ORDER BY rows.device_id LIMIT ?3 OFFSET ?4";
static const char SQL_TASK_COUNT[] =
    TASK_ROWS_CTE " SELECT count(*) FROM rows JOIN devices d ON d.id = rows.device_id WHERE (?2 IS NULL OR rows.status = ?2)";
static const char SQL_TASK_COUNTS[] =
    TASK_ROWS_CTE " SELECT rows.status, count(*) FROM rows JOIN devices d ON d.id = rows.device_id GROUP BY rows.status";

void db_report_free(db_report_t *r)
{
    if (!r)
        return;
    free(r->endpoint);
    free(r->task_name);
    free(r->summary);
    free(r->variables_json);
    memset(r, 0, sizeof *r);
}

void db_report_list_free(db_report_t **list, size_t n)
{
    if (!list || !*list)
        return;
    for (size_t i = 0; i < n; i++)
        db_report_free(&(*list)[i]);
    free(*list);
    *list = NULL;
}

void db_report_lines_free(db_report_line_t **lines, size_t n)
{
    if (!lines || !*lines)
        return;
    for (size_t i = 0; i < n; i++) {
        db_report_line_t *l = &(*lines)[i];
        free(l->level);
        free(l->step);
        free(l->sent);
        free(l->received);
        free(l->code);
        free(l->message);
    }
    free(*lines);
    *lines = NULL;
}

static bool valid_status(const char *s, bool terminal_only)
{
    for (int i = terminal_only ? 2 : 0; s && i < DB_REPORT_STATUS_COUNT; i++)
        if (strcmp(s, db_report_statuses[i]) == 0)
            return true;
    return false;
}

int db_report_start(db_t *db, int64_t task_id, int64_t device_id, const char *session_kind, int64_t at_ms,
                    int64_t *report_id)
{
    *report_id = 0;
    if (!session_kind || (strcmp(session_kind, "bootstrap") != 0 && strcmp(session_kind, "management") != 0))
        return SQLITE_MISUSE;
    /* Two statements, each atomic on its own, no savepoint around them: if
     * clearing the previous run's log failed, the report would show the new
     * run with old lines, which is not worth a transaction per run. A first
     * run (runs = 1: the row was just inserted) has no log to clear. */
    sqlite3_stmt *st = db_stmt(db, SQL_START);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, task_id);
    sqlite3_bind_int64(st, 2, device_id);
    sqlite3_bind_text(st, 3, session_kind, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, at_ms);
    int64_t id = 0, runs = 0;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0);
        runs = sqlite3_column_int64(st, 1);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    db_stmt_done(st);
    rc &= 0xff;
    if (rc == SQLITE_CONSTRAINT) /* no such task or device */
        return SQLITE_NOTFOUND;
    if (rc != SQLITE_OK)
        return rc;
    db_mark_tasks_dirty(db);
    if (runs > 1) {
        st = db_stmt(db, SQL_LOG_CLEAR);
        if (!st)
            return SQLITE_ERROR;
        sqlite3_bind_int64(st, 1, id);
        if ((rc = db_step_done(st)) != SQLITE_OK)
            return rc;
    }
    *report_id = id;
    size_t slot = (uint64_t)id % (sizeof db->log_seq / sizeof db->log_seq[0]);
    db->log_seq[slot].report_id = id; /* the log is empty */
    db->log_seq[slot].seq = 0;
    return SQLITE_OK;
}

int db_report_log(db_t *db, int64_t report_id, int64_t at_ms, const char *level, const char *step, const char *sent,
                  const char *received, const char *code, const char *message)
{
    size_t slot = (uint64_t)report_id % (sizeof db->log_seq / sizeof db->log_seq[0]);
    int64_t seq;
    sqlite3_stmt *st;
    int rc;
    if (report_id > 0 && db->log_seq[slot].report_id == report_id) {
        seq = db->log_seq[slot].seq + 1;
    } else {
        st = db_stmt(db, SQL_LOG_NEXT);
        if (!st)
            return SQLITE_ERROR;
        sqlite3_bind_int64(st, 1, report_id);
        rc = sqlite3_step(st);
        seq = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_reset(st);
        if (rc != SQLITE_ROW)
            return rc == SQLITE_DONE ? SQLITE_NOTFOUND : rc;
    }
    st = db_stmt(db, SQL_LOG_ADD);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, report_id);
    sqlite3_bind_int64(st, 2, seq);
    sqlite3_bind_int64(st, 3, at_ms);
    sqlite3_bind_text(st, 4, level ? level : "info", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, step ? step : "", -1, SQLITE_STATIC);
    db_bind_text_or_null(st, 6, sent);
    db_bind_text_or_null(st, 7, received);
    db_bind_text_or_null(st, 8, code);
    sqlite3_bind_text(st, 9, message ? message : "", -1, SQLITE_STATIC);
    rc = db_step_done(st);
    if (rc == SQLITE_OK) {
        db->log_seq[slot].report_id = report_id;
        db->log_seq[slot].seq = seq;
    } else if (rc == SQLITE_CONSTRAINT && db->log_seq[slot].report_id == report_id) {
        /* the remembered seq was wrong (a rolled-back log clear) or the
         * report is gone: once more, reading the seq */
        db->log_seq[slot].report_id = 0;
        return db_report_log(db, report_id, at_ms, level, step, sent, received, code, message);
    }
    return rc;
}

int db_report_finish(db_t *db, int64_t report_id, const char *status, const char *summary, const char *variables_json,
                     int64_t at_ms)
{
    /* IN_PROGRESS: the run ended in this session but the task is not done
     * (a deferred execute, <wait>): summary and variables are kept. */
    if (!valid_status(status, true) && !(status && !strcmp(status, "IN_PROGRESS")))
        return SQLITE_MISUSE;
    sqlite3_stmt *st = db_stmt(db, SQL_FINISH);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, report_id);
    sqlite3_bind_text(st, 2, status, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, summary ? summary : "", -1, SQLITE_TRANSIENT);
    db_bind_text_or_null(st, 4, variables_json);
    sqlite3_bind_int64(st, 5, at_ms);
    int rc = db_step_done(st);
    db_mark_tasks_dirty(db);
    if (rc == SQLITE_OK && sqlite3_changes(db->h) == 0)
        rc = SQLITE_NOTFOUND;
    return rc;
}

int db_reports_mark_interrupted(db_t *db, int64_t at_ms, int *count)
{
    if (count)
        *count = 0;
    memset(db->log_seq, 0, sizeof db->log_seq); /* lines are added below */
    bool own;
    int rc = db_tx_begin(db, &own);
    if (rc != SQLITE_OK)
        return rc;
    int n = 0;
    sqlite3_stmt *st = db_stmt(db, SQL_INTERRUPT_LOG);
    rc = st ? SQLITE_OK : SQLITE_ERROR;
    if (st) {
        sqlite3_bind_int64(st, 1, at_ms);
        rc = db_step_done(st);
        n = sqlite3_changes(db->h);
    }
    if (rc == SQLITE_OK) {
        st = db_stmt(db, SQL_INTERRUPT_TOUCH);
        rc = st ? SQLITE_OK : SQLITE_ERROR;
        if (st) {
            sqlite3_bind_int64(st, 1, at_ms);
            rc = db_step_done(st);
        }
    }
    db_mark_tasks_dirty(db);
    rc = db_tx_end(db, own, rc);
    if (rc == SQLITE_OK && count)
        *count = n;
    return rc;
}

static int read_row(db_t *db, sqlite3_stmt *st, void *elem)
{
    (void)db;
    db_report_t *r = elem;
    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(st, 0);
    r->task_id = sqlite3_column_int64(st, 1);
    r->device_id = sqlite3_column_int64(st, 2);
    r->endpoint = db_column_strdup(st, 3);
    r->task_name = db_column_strdup(st, 4);
    r->task_group_id = sqlite3_column_int64(st, 5);
    r->task_device_id = sqlite3_column_int64(st, 6);
    const char *s = (const char *)sqlite3_column_text(st, 7);
    snprintf(r->status, sizeof r->status, "%s", s ? s : "");
    r->started_at = sqlite3_column_int64(st, 8);
    r->finished_at = sqlite3_column_int64(st, 9);
    r->summary = db_column_strdup(st, 10);
    r->variables_json = db_column_strdup(st, 11);
    r->runs = sqlite3_column_int64(st, 12);
    s = (const char *)sqlite3_column_text(st, 13);
    snprintf(r->session_kind, sizeof r->session_kind, "%s", s ? s : "");
    r->updated_at = sqlite3_column_int64(st, 14);
    if (!r->endpoint || !r->task_name || !r->summary || !r->variables_json) {
        db_report_free(r);
        return SQLITE_NOMEM;
    }
    return SQLITE_OK;
}

static void free_list_any(void *list, size_t n)
{
    db_report_t *l = list;
    db_report_list_free(&l, n);
}

int db_report_get(db_t *db, int64_t report_id, db_report_t *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = db_stmt(db, SQL_GET);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, report_id);
    return db_row_one(db, st, read_row, out);
}

static int read_line(db_t *db, sqlite3_stmt *st, void *elem)
{
    (void)db;
    db_report_line_t *l = elem;
    l->seq = sqlite3_column_int64(st, 0);
    l->at = sqlite3_column_int64(st, 1);
    l->level = db_column_strdup(st, 2);
    l->step = db_column_strdup(st, 3);
    l->sent = db_column_strdup(st, 4);
    l->received = db_column_strdup(st, 5);
    l->code = db_column_strdup(st, 6);
    l->message = db_column_strdup(st, 7);
    if (!l->level || !l->step || !l->message) {
        free(l->level);
        free(l->step);
        free(l->sent);
        free(l->received);
        free(l->code);
        free(l->message);
        memset(l, 0, sizeof *l);
        return SQLITE_NOMEM;
    }
    return SQLITE_OK;
}

static void free_lines_any(void *list, size_t n)
{
    db_report_line_t *l = list;
    db_report_lines_free(&l, n);
}

int db_report_lines(db_t *db, int64_t report_id, db_report_line_t **out, size_t *n)
{
    sqlite3_stmt *st = db_stmt(db, SQL_LINES);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, report_id);
    void *arr = NULL;
    int rc = db_rows_collect(db, st, sizeof(db_report_line_t), read_line, free_lines_any, &arr, n);
    *out = arr;
    return rc;
}

int db_task_reports(db_t *db, int64_t task_id, const char *status, int limit, int offset, db_report_t **out,
                    size_t *n, int64_t *total, int64_t counts[DB_REPORT_STATUS_COUNT])
{
    *out = NULL;
    *n = 0;
    int rc;
    if (total) {
        *total = 0;
        sqlite3_stmt *c = db_stmt(db, SQL_TASK_COUNT);
        if (!c)
            return SQLITE_ERROR;
        sqlite3_bind_int64(c, 1, task_id);
        db_bind_text_or_null(c, 2, status);
        if ((rc = db_stmt_int64(c, total)) != SQLITE_OK)
            return rc;
    }
    if (counts) {
        memset(counts, 0, sizeof(int64_t) * DB_REPORT_STATUS_COUNT);
        sqlite3_stmt *c = db_stmt(db, SQL_TASK_COUNTS);
        if (!c)
            return SQLITE_ERROR;
        sqlite3_bind_int64(c, 1, task_id);
        while ((rc = sqlite3_step(c)) == SQLITE_ROW) {
            const char *s = (const char *)sqlite3_column_text(c, 0);
            for (int i = 0; s && i < DB_REPORT_STATUS_COUNT; i++)
                if (strcmp(s, db_report_statuses[i]) == 0)
                    counts[i] = sqlite3_column_int64(c, 1);
        }
        db_stmt_done(c);
        if (rc != SQLITE_DONE)
            return rc;
    }
    sqlite3_stmt *st = db_stmt(db, SQL_TASK_LIST);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, task_id);
    db_bind_text_or_null(st, 2, status);
    sqlite3_bind_int(st, 3, limit > 0 ? limit : -1);
    sqlite3_bind_int(st, 4, offset > 0 ? offset : 0);
    void *arr = NULL;
    rc = db_rows_collect(db, st, sizeof(db_report_t), read_row, free_list_any, &arr, n);
    *out = arr;
    return rc;
}

int db_device_reports(db_t *db, int64_t device_id, int limit, int offset, db_report_t **out, size_t *n,
                      int64_t *total)
{
    *out = NULL;
    *n = 0;
    int rc;
    if (total) {
        *total = 0;
        sqlite3_stmt *c = db_stmt(db, SQL_DEV_COUNT);
        if (!c)
            return SQLITE_ERROR;
        sqlite3_bind_int64(c, 1, device_id);
        if ((rc = db_stmt_int64(c, total)) != SQLITE_OK)
            return rc;
    }
    sqlite3_stmt *st = db_stmt(db, SQL_DEV_LIST);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, device_id);
    sqlite3_bind_int(st, 2, limit > 0 ? limit : -1);
    sqlite3_bind_int(st, 3, offset > 0 ? offset : 0);
    void *arr = NULL;
    rc = db_rows_collect(db, st, sizeof(db_report_t), read_row, free_list_any, &arr, n);
    *out = arr;
    return rc;
}
