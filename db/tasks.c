/* db: tasks (on a group or a device), their LwM2M server references and the
 * scheduler's view: the tasks that apply to a device, with its reports. */
#include "db/db_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TASK_COLS                                                                                      \
    "t.id, t.domain, ifnull(t.group_id, 0), ifnull(t.device_id, 0), t.name, t.config_xml, t.active,"   \
    " t.execution, t.automatic_restart, t.repeat_on_bootstrap, t.repeat_on_register, t.condition,"      \
    " t.priority, t.min_interval_s, t.applies_to_subgroups, ifnull(t.not_before, 0),"                  \
    " ifnull(t.not_after, 0), t.managed_by, t.created_at, t.updated_at"
#define TASK_NCOLS 20

static const char SQL_GET[] = "SELECT " TASK_COLS " FROM tasks t WHERE t.id = ?1";
#define TASK_LIST_FILTER                                                                               \
    " WHERE ((?1 > 0 AND t.group_id = ?1) OR (?2 > 0 AND t.device_id = ?2))"                            \
    "   AND (?3 IS NULL OR instr(lower(t.name), lower(?3)) > 0)"
static const char SQL_LIST[] = "SELECT " TASK_COLS " FROM tasks t" TASK_LIST_FILTER " ORDER BY t.id LIMIT ?4 OFFSET ?5";
static const char SQL_COUNT[] = "SELECT count(*) FROM tasks t" TASK_LIST_FILTER;
static const char SQL_INSERT[] =
    "INSERT INTO tasks (domain, group_id, device_id, name, config_xml, active, execution, automatic_restart,"
    " repeat_on_bootstrap, repeat_on_register, condition, priority, min_interval_s, applies_to_subgroups,"
    " not_before, not_after, managed_by, created_at, updated_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?18)";
static const char SQL_UPDATE[] =
    "UPDATE tasks SET name = ?4, config_xml = ?5, active = ?6, execution = ?7, automatic_restart = ?8,"
    " repeat_on_bootstrap = ?9, repeat_on_register = ?10, condition = ?11, priority = ?12, min_interval_s = ?13,"
    " applies_to_subgroups = ?14, not_before = ?15, not_after = ?16, managed_by = ?17, updated_at = ?18"
    " WHERE id = ?1";
static const char SQL_DEL[] = "DELETE FROM tasks WHERE id = ?1";
static const char SQL_REFS[] = "SELECT server_id FROM task_server_refs WHERE task_id = ?1 ORDER BY server_id";
static const char SQL_REFS_CLEAR[] = "DELETE FROM task_server_refs WHERE task_id = ?1";
static const char SQL_REFS_ADD[] = "INSERT OR IGNORE INTO task_server_refs (task_id, server_id) VALUES (?1, ?2)";
static const char SQL_SERVER_EXISTS[] = "SELECT count(*) FROM lwm2m_servers WHERE id = ?1";
static const char SQL_GROUP_DOMAIN[] = "SELECT domain FROM groups WHERE id = ?1";
static const char SQL_DEVICE_DOMAIN[] = "SELECT domain FROM devices WHERE id = ?1";
static const char SQL_SERVER_DOMAIN[] = "SELECT domain FROM lwm2m_servers WHERE id = ?1";
static const char SQL_SERVER_BY_NAME[] = "SELECT id FROM lwm2m_servers WHERE domain = ?1 AND name = ?2";
/* A device's candidate tasks: its own, its groups' and, for tasks that apply
 * to subgroups, its groups' ancestors'. Runs for every bootstrap and
 * Register, so each part is index lookups only: the direct tasks by
 * membership, the inherited ones (a recursive walk up the groups) only while
 * some active task applies to subgroups; the order is made in C. */
#define CANDIDATE_COLS                                                                                 \
    TASK_COLS ", ifnull(r.id, 0), ifnull(r.status, ''), ifnull(r.runs, 0), ifnull(r.started_at, 0),"   \
              " ifnull(r.finished_at, 0), ifnull(r.session_kind, '')"
#define CANDIDATE_REPORT " LEFT JOIN task_reports r ON r.task_id = t.id AND r.device_id = ?1"
static const char SQL_CANDIDATES[] =
    "SELECT " CANDIDATE_COLS " FROM group_members m JOIN tasks t ON t.group_id = m.group_id" CANDIDATE_REPORT
    " WHERE m.device_id = ?1 AND t.active = 1"
    " UNION ALL SELECT " CANDIDATE_COLS " FROM tasks t" CANDIDATE_REPORT " WHERE t.device_id = ?1 AND t.active = 1";
static const char SQL_ANY_INHERITED[] = "SELECT EXISTS (SELECT 1 FROM tasks WHERE applies_to_subgroups = 1 AND active = 1)";
static const char SQL_CANDIDATES_INHERITED[] =
    "WITH RECURSIVE anc(id) AS (SELECT g.parent_id FROM group_members m JOIN groups g ON g.id = m.group_id"
    "   WHERE m.device_id = ?1 AND g.parent_id IS NOT NULL"
    "   UNION SELECT g.parent_id FROM groups g JOIN anc ON g.id = anc.id WHERE g.parent_id IS NOT NULL)"
    " SELECT " CANDIDATE_COLS " FROM anc JOIN tasks t ON t.group_id = anc.id" CANDIDATE_REPORT
    " WHERE t.active = 1 AND t.applies_to_subgroups = 1"
    " AND NOT EXISTS (SELECT 1 FROM group_members d WHERE d.device_id = ?1 AND d.group_id = t.group_id)";

void db_task_free(db_task_t *t)
{
    if (!t)
        return;
    free(t->domain);
    free(t->name);
    free(t->config_xml);
    free(t->condition);
    free(t->managed_by);
    free(t->server_ids);
    memset(t, 0, sizeof *t);
}

void db_task_list_free(db_task_t **list, size_t n)
{
    if (!list || !*list)
        return;
    for (size_t i = 0; i < n; i++)
        db_task_free(&(*list)[i]);
    free(*list);
    *list = NULL;
}

static int load_refs(db_t *db, db_task_t *t)
{
    free(t->server_ids);
    t->server_ids = NULL;
    t->n_server_ids = 0;
    sqlite3_stmt *st = db_stmt(db, SQL_REFS);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, t->id);
    return db_rows_int64(st, &t->server_ids, &t->n_server_ids);
}

/* Reads the TASK_COLS of the current row (without the server refs). */
static int read_cols(sqlite3_stmt *st, db_task_t *t)
{
    memset(t, 0, sizeof *t);
    t->id = sqlite3_column_int64(st, 0);
    t->domain = db_column_strdup(st, 1);
    t->group_id = sqlite3_column_int64(st, 2);
    t->device_id = sqlite3_column_int64(st, 3);
    t->name = db_column_strdup(st, 4);
    t->config_xml = db_column_strdup(st, 5);
    t->active = sqlite3_column_int(st, 6) != 0;
    const char *ex = (const char *)sqlite3_column_text(st, 7);
    t->execution = ex && strcmp(ex, "once") == 0 ? DB_TASK_ONCE : DB_TASK_ONCE_AND_REPEAT;
    t->automatic_restart = sqlite3_column_int(st, 8) != 0;
    t->repeat_on_bootstrap = sqlite3_column_int(st, 9) != 0;
    t->repeat_on_register = sqlite3_column_int(st, 10) != 0;
    t->condition = db_column_strdup(st, 11);
    t->priority = sqlite3_column_int(st, 12);
    t->min_interval_s = sqlite3_column_int64(st, 13);
    t->applies_to_subgroups = sqlite3_column_int(st, 14) != 0;
    t->not_before = sqlite3_column_int64(st, 15);
    t->not_after = sqlite3_column_int64(st, 16);
    t->managed_by = db_column_strdup(st, 17);
    t->created_at = sqlite3_column_int64(st, 18);
    t->updated_at = sqlite3_column_int64(st, 19);
    if (!t->domain || !t->name || !t->config_xml || !t->condition ||
        (!t->managed_by && sqlite3_column_type(st, 17) != SQLITE_NULL)) {
        db_task_free(t);
        return SQLITE_NOMEM;
    }
    return SQLITE_OK;
}

static int read_row(db_t *db, sqlite3_stmt *st, void *elem)
{
    (void)db;
    return read_cols(st, elem);
}

static void free_list_any(void *list, size_t n)
{
    db_task_t *l = list;
    db_task_list_free(&l, n);
}

int db_task_get(db_t *db, int64_t id, db_task_t *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = db_stmt(db, SQL_GET);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        rc = read_cols(st, out);
    else if (rc == SQLITE_DONE)
        rc = SQLITE_NOTFOUND;
    db_stmt_done(st);
    if (rc == SQLITE_OK && (rc = load_refs(db, out)) != SQLITE_OK)
        db_task_free(out);
    return rc;
}

int db_task_list(db_t *db, int64_t group_id, int64_t device_id, const char *q, int limit, int offset, db_task_t **out,
                 size_t *n, int64_t *total)
{
    *out = NULL;
    *n = 0;
    if (q && !*q)
        q = NULL;
    int rc;
    if (total) {
        *total = 0;
        sqlite3_stmt *c = db_stmt(db, SQL_COUNT);
        if (!c)
            return SQLITE_ERROR;
        sqlite3_bind_int64(c, 1, group_id);
        sqlite3_bind_int64(c, 2, device_id);
        db_bind_text_or_null(c, 3, q);
        if ((rc = db_stmt_int64(c, total)) != SQLITE_OK)
            return rc;
    }
    sqlite3_stmt *st = db_stmt(db, SQL_LIST);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, group_id);
    sqlite3_bind_int64(st, 2, device_id);
    db_bind_text_or_null(st, 3, q);
    sqlite3_bind_int(st, 4, limit > 0 ? limit : -1);
    sqlite3_bind_int(st, 5, offset > 0 ? offset : 0);
    void *arr = NULL;
    rc = db_rows_collect(db, st, sizeof(db_task_t), read_row, free_list_any, &arr, n);
    db_task_t *list = arr;
    for (size_t i = 0; rc == SQLITE_OK && i < *n; i++)
        rc = load_refs(db, &list[i]);
    if (rc != SQLITE_OK) {
        db_task_list_free(&list, *n);
        *n = 0;
        return rc;
    }
    *out = list;
    return SQLITE_OK;
}

/* Binds ?4..?18 (every editable field and the time). */
static int bind_fields(sqlite3_stmt *st, const db_task_t *t, int64_t now)
{
    int rc = db_bind_text_or_null(st, 4, t->name);
    rc |= sqlite3_bind_text(st, 5, t->config_xml ? t->config_xml : "", -1, SQLITE_TRANSIENT);
    rc |= sqlite3_bind_int(st, 6, t->active);
    rc |= sqlite3_bind_text(st, 7, t->execution == DB_TASK_ONCE ? "once" : "onceAndRepeat", -1, SQLITE_STATIC);
    rc |= sqlite3_bind_int(st, 8, t->automatic_restart);
    rc |= sqlite3_bind_int(st, 9, t->repeat_on_bootstrap);
    rc |= sqlite3_bind_int(st, 10, t->repeat_on_register);
    rc |= sqlite3_bind_text(st, 11, t->condition ? t->condition : "", -1, SQLITE_TRANSIENT);
    rc |= sqlite3_bind_int(st, 12, t->priority);
    rc |= sqlite3_bind_int64(st, 13, t->min_interval_s);
    rc |= sqlite3_bind_int(st, 14, t->applies_to_subgroups);
    rc |= db_bind_int64_or_null(st, 15, t->not_before, 0);
    rc |= db_bind_int64_or_null(st, 16, t->not_after, 0);
    rc |= db_bind_text_or_null(st, 17, t->managed_by);
    rc |= sqlite3_bind_int64(st, 18, now);
    return rc == SQLITE_OK ? SQLITE_OK : SQLITE_ERROR;
}

static int write_refs(db_t *db, const db_task_t *t, int64_t id)
{
    sqlite3_stmt *st = db_stmt(db, SQL_REFS_CLEAR);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, id);
    int rc = db_step_done(st);
    for (size_t i = 0; rc == SQLITE_OK && i < t->n_server_ids; i++) {
        int64_t c = 0;
        st = db_stmt(db, SQL_SERVER_EXISTS);
        if (!st)
            return SQLITE_ERROR;
        sqlite3_bind_int64(st, 1, t->server_ids[i]);
        rc = db_stmt_int64(st, &c);
        if (rc == SQLITE_OK && !c)
            rc = SQLITE_NOTFOUND;
        if (rc != SQLITE_OK)
            break;
        st = db_stmt(db, SQL_REFS_ADD);
        if (!st)
            return SQLITE_ERROR;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, t->server_ids[i]);
        rc = db_step_done(st);
    }
    return rc;
}

/* The domain of a row (malloc'd). */
static int domain_of(db_t *db, const char *sql, int64_t id, char **out)
{
    *out = NULL;
    sqlite3_stmt *st = db_stmt(db, sql);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = db_column_strdup(st, 0);
        rc = *out ? SQLITE_OK : SQLITE_NOMEM;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_NOTFOUND;
    }
    db_stmt_done(st);
    return rc;
}

int db_task_insert(db_t *db, db_task_t *t)
{
    if ((t->group_id > 0) == (t->device_id > 0))
        return SQLITE_MISUSE;
    bool own;
    int rc = db_tx_begin(db, &own);
    if (rc != SQLITE_OK)
        return rc;
    int64_t now = db_now_ms();
    char *owner_domain = NULL;
    rc = t->group_id ? domain_of(db, SQL_GROUP_DOMAIN, t->group_id, &owner_domain)
                     : domain_of(db, SQL_DEVICE_DOMAIN, t->device_id, &owner_domain);
    sqlite3_stmt *st = NULL;
    if (rc == SQLITE_OK && !(st = db_stmt(db, SQL_INSERT)))
        rc = SQLITE_ERROR;
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, t->domain ? t->domain : owner_domain, -1, SQLITE_TRANSIENT);
        db_bind_int64_or_null(st, 2, t->group_id, 0);
        db_bind_int64_or_null(st, 3, t->device_id, 0);
        rc = bind_fields(st, t, now);
        if (rc == SQLITE_OK)
            rc = db_step_done(st);
        else
            db_stmt_done(st);
    }
    int64_t id = rc == SQLITE_OK ? sqlite3_last_insert_rowid(db->h) : 0;
    if (rc == SQLITE_OK)
        rc = write_refs(db, t, id);
    db_mark_tasks_dirty(db);
    rc = db_tx_end(db, own, rc);
    if (rc == SQLITE_OK) {
        t->id = id;
        t->created_at = t->updated_at = now;
        if (!t->domain) {
            t->domain = owner_domain;
            owner_domain = NULL;
        }
    }
    free(owner_domain);
    return rc;
}

int db_task_update(db_t *db, db_task_t *t)
{
    bool own;
    int rc = db_tx_begin(db, &own);
    if (rc != SQLITE_OK)
        return rc;
    int64_t now = db_now_ms();
    sqlite3_stmt *st = db_stmt(db, SQL_UPDATE);
    rc = st ? SQLITE_OK : SQLITE_ERROR;
    if (st) {
        sqlite3_bind_int64(st, 1, t->id);
        rc = bind_fields(st, t, now);
        if (rc == SQLITE_OK)
            rc = db_step_done(st);
        else
            db_stmt_done(st);
        if (rc == SQLITE_OK && sqlite3_changes(db->h) == 0)
            rc = SQLITE_NOTFOUND;
    }
    if (rc == SQLITE_OK)
        rc = write_refs(db, t, t->id);
    db_mark_tasks_dirty(db);
    rc = db_tx_end(db, own, rc);
    if (rc == SQLITE_OK)
        t->updated_at = now;
    return rc;
}

int db_task_delete(db_t *db, int64_t id)
{
    sqlite3_stmt *st = db_stmt(db, SQL_DEL);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, id);
    int rc = db_step_done(st);
    db_mark_tasks_dirty(db);
    if (rc == SQLITE_OK && sqlite3_changes(db->h) == 0)
        rc = SQLITE_NOTFOUND;
    return rc;
}

/* true if `anc` is `domain` or one of its ancestors ("/" and "/acme/" for "/acme/"). */
static bool domain_within(const char *anc, const char *domain)
{
    return anc && strncmp(domain, anc, strlen(anc)) == 0;
}

static int add_unique(int64_t **arr, size_t *n, size_t *cap, int64_t v)
{
    for (size_t i = 0; i < *n; i++)
        if ((*arr)[i] == v)
            return SQLITE_OK;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        int64_t *na = realloc(*arr, nc * sizeof *na);
        if (!na)
            return SQLITE_NOMEM;
        *arr = na;
        *cap = nc;
    }
    (*arr)[(*n)++] = v;
    return SQLITE_OK;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int db_task_resolve_servers(db_t *db, const char *domain, const int64_t *ids, size_t n_ids, char *const *names,
                            size_t n_names, int64_t **out, size_t *n_out, char *bad, size_t badlen)
{
    *out = NULL;
    *n_out = 0;
    if (bad && badlen)
        bad[0] = 0;
    int64_t *arr = NULL;
    size_t n = 0, cap = 0;
    int rc = SQLITE_OK;
    for (size_t i = 0; rc == SQLITE_OK && i < n_ids; i++) {
        char *sd = NULL;
        rc = domain_of(db, SQL_SERVER_DOMAIN, ids[i], &sd);
        if (rc == SQLITE_OK && !domain_within(sd, domain))
            rc = SQLITE_NOTFOUND;
        free(sd);
        if (rc == SQLITE_NOTFOUND && bad)
            snprintf(bad, badlen, "serverId %lld", (long long)ids[i]);
        if (rc == SQLITE_OK)
            rc = add_unique(&arr, &n, &cap, ids[i]);
    }
    for (size_t i = 0; rc == SQLITE_OK && i < n_names; i++) {
        /* the domain itself, then each ancestor: "/a/b/", "/a/", "/" */
        size_t len = strlen(domain);
        char *d = strdup(domain);
        if (!d) {
            rc = SQLITE_NOMEM;
            break;
        }
        int64_t id = 0;
        rc = SQLITE_NOTFOUND;
        while (len > 0) {
            d[len] = 0;
            sqlite3_stmt *st = db_stmt(db, SQL_SERVER_BY_NAME);
            if (!st) {
                rc = SQLITE_ERROR;
                break;
            }
            sqlite3_bind_text(st, 1, d, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 2, names[i], -1, SQLITE_TRANSIENT);
            rc = db_stmt_int64(st, &id);
            if (rc != SQLITE_NOTFOUND)
                break;
            if (len == 1)
                break;
            len--; /* drop the trailing '/' and the last segment */
            while (len > 0 && d[len - 1] != '/')
                len--;
        }
        free(d);
        if (rc == SQLITE_NOTFOUND && bad)
            snprintf(bad, badlen, "serverName '%s'", names[i]);
        if (rc == SQLITE_OK)
            rc = add_unique(&arr, &n, &cap, id);
    }
    if (rc != SQLITE_OK) {
        free(arr);
        return rc;
    }
    if (n)
        qsort(arr, n, sizeof *arr, cmp_i64);
    *out = arr;
    *n_out = n;
    return SQLITE_OK;
}

/* ------------------------------------------------------------ candidates */
void db_task_candidates_free(db_task_candidate_t **c, size_t n)
{
    if (!c || !*c)
        return;
    for (size_t i = 0; i < n; i++)
        db_task_free(&(*c)[i].task);
    free(*c);
    *c = NULL;
}

static int read_candidate(db_t *db, sqlite3_stmt *st, void *elem)
{
    (void)db;
    db_task_candidate_t *c = elem;
    memset(c, 0, sizeof *c);
    int rc = read_cols(st, &c->task);
    if (rc != SQLITE_OK)
        return rc;
    int k = TASK_NCOLS;
    c->report_id = sqlite3_column_int64(st, k);
    const char *s = (const char *)sqlite3_column_text(st, k + 1);
    snprintf(c->status, sizeof c->status, "%s", s ? s : "");
    c->runs = sqlite3_column_int64(st, k + 2);
    c->started_at = sqlite3_column_int64(st, k + 3);
    c->finished_at = sqlite3_column_int64(st, k + 4);
    s = (const char *)sqlite3_column_text(st, k + 5);
    snprintf(c->session_kind, sizeof c->session_kind, "%s", s ? s : "");
    return SQLITE_OK;
}

static void free_candidates_any(void *list, size_t n)
{
    db_task_candidate_t *l = list;
    db_task_candidates_free(&l, n);
}

/* Whether some active task applies to subgroups: asked once per tasks
 * generation (not while this connection holds uncommitted task writes). */
static int any_inherited(db_t *db, bool *yes)
{
    uint64_t gen = db_tasks_generation();
    if (!db->tasks_dirty && db->inherited_gen == gen) {
        *yes = db->inherited_any;
        return SQLITE_OK;
    }
    sqlite3_stmt *st = db_stmt(db, SQL_ANY_INHERITED);
    if (!st)
        return SQLITE_ERROR;
    int64_t v = 0;
    int rc = db_stmt_int64(st, &v);
    if (rc != SQLITE_OK)
        return rc;
    *yes = v != 0;
    if (!db->tasks_dirty) {
        db->inherited_gen = gen;
        db->inherited_any = *yes;
    }
    return SQLITE_OK;
}

static int candidate_order(const void *a, const void *b)
{
    const db_task_t *x = &((const db_task_candidate_t *)a)->task, *y = &((const db_task_candidate_t *)b)->task;
    if (x->priority != y->priority)
        return x->priority < y->priority ? -1 : 1;
    if (x->created_at != y->created_at)
        return x->created_at < y->created_at ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int db_device_task_candidates(db_t *db, int64_t device_id, db_task_candidate_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = db_stmt(db, SQL_CANDIDATES);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, device_id);
    void *arr = NULL;
    int rc = db_rows_collect(db, st, sizeof(db_task_candidate_t), read_candidate, free_candidates_any, &arr, n);
    db_task_candidate_t *list = arr;
    bool inherited = false;
    if (rc == SQLITE_OK)
        rc = any_inherited(db, &inherited);
    if (rc == SQLITE_OK && inherited) {
        void *more = NULL;
        size_t nmore = 0;
        st = db_stmt(db, SQL_CANDIDATES_INHERITED);
        if (!st) {
            rc = SQLITE_ERROR;
        } else {
            sqlite3_bind_int64(st, 1, device_id);
            rc = db_rows_collect(db, st, sizeof(db_task_candidate_t), read_candidate, free_candidates_any, &more,
                                 &nmore);
        }
        if (rc == SQLITE_OK && nmore) {
            db_task_candidate_t *all = realloc(list, (*n + nmore) * sizeof *all);
            if (!all) {
                rc = SQLITE_NOMEM;
                free_candidates_any(more, nmore);
            } else {
                memcpy(all + *n, more, nmore * sizeof *all);
                free(more);
                list = all;
                *n += nmore;
            }
        }
    }
    for (size_t i = 0; rc == SQLITE_OK && i < *n; i++)
        rc = load_refs(db, &list[i].task);
    if (rc != SQLITE_OK) {
        db_task_candidates_free(&list, *n);
        *n = 0;
        return rc;
    }
    if (*n > 1)
        qsort(list, *n, sizeof *list, candidate_order);
    *out = list;
    return SQLITE_OK;
}
