/* db: device groups (a tree per domain), memberships, setting values and the
 * effective setting values of a device (sv.NAME in tasks). */
#include "db/db_int.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define GRP_COLS                                                                                       \
    "id, domain, ifnull(parent_id, 0), name, description, priority, is_bootstrap,"                    \
    " (SELECT count(*) FROM group_members m WHERE m.group_id = groups.id), created_at, updated_at"
#define GRP_Q_FILTER                                                                                   \
    " WHERE (?1 IS NULL OR substr(domain, 1, length(?1)) = ?1)"                                         \
    "   AND (?2 IS NULL OR instr(lower(name), lower(?2)) > 0 OR instr(lower(description), lower(?2)) > 0)"

static const char SQL_GET[] = "SELECT " GRP_COLS " FROM groups WHERE id = ?1";
static const char SQL_LIST[] = "SELECT " GRP_COLS " FROM groups" GRP_Q_FILTER " ORDER BY id LIMIT ?3 OFFSET ?4";
static const char SQL_COUNT[] = "SELECT count(*) FROM groups" GRP_Q_FILTER;
static const char SQL_INSERT[] =
    "INSERT INTO groups (domain, parent_id, name, description, priority, is_bootstrap, created_at, updated_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?6)";
static const char SQL_UPDATE[] =
    "UPDATE groups SET parent_id = ?2, name = ?3, description = ?4, priority = ?5, updated_at = ?6 WHERE id = ?1";
static const char SQL_DOMAIN_OF[] = "SELECT domain, is_bootstrap FROM groups WHERE id = ?1";
static const char SQL_DEL[] = "DELETE FROM groups WHERE id = ?1";
/* ?1 is ?2 itself or one of its ancestors (UNION stops on any loop) */
static const char SQL_IS_ANCESTOR[] =
    "WITH RECURSIVE a(id) AS (SELECT ?2 UNION SELECT g.parent_id FROM groups g JOIN a ON g.id = a.id"
    " WHERE g.parent_id IS NOT NULL) SELECT count(*) FROM a WHERE id = ?1";
static const char SQL_BS_GET[] = "SELECT id FROM groups WHERE domain = ?1 AND is_bootstrap = 1";
static const char SQL_BS_ADOPT[] =
    "UPDATE groups SET is_bootstrap = 1 WHERE id = (SELECT min(id) FROM groups WHERE domain = ?1"
    " AND parent_id IS NULL AND name = 'bootstrap')";
static const char SQL_BS_CREATE[] =
    "INSERT INTO groups (domain, parent_id, name, description, priority, is_bootstrap, created_at, updated_at)"
    " VALUES (?1, NULL, 'bootstrap', 'devices that bootstrap in this domain', 10, 1, ?2, ?2)";
static const char SQL_FIND_NAME[] =
    "WITH RECURSIVE d(id, depth) AS (SELECT id, 0 FROM groups WHERE domain = ?1 AND parent_id IS NULL"
    " UNION ALL SELECT g.id, d.depth + 1 FROM groups g JOIN d ON g.parent_id = d.id WHERE d.depth < 64)"
    " SELECT d.id FROM d JOIN groups g ON g.id = d.id WHERE g.name = ?2 ORDER BY d.depth, d.id LIMIT 1";
static const char SQL_JOIN[] = "INSERT OR IGNORE INTO group_members (group_id, device_id) VALUES (?1, ?2)";
static const char SQL_LEAVE[] = "DELETE FROM group_members WHERE group_id = ?1 AND device_id = ?2";
static const char SQL_IS_MEMBER[] = "SELECT count(*) FROM group_members WHERE group_id = ?1 AND device_id = ?2";
static const char SQL_GROUP_EXISTS[] = "SELECT count(*) FROM groups WHERE id = ?1";
static const char SQL_DEVICE_EXISTS[] = "SELECT count(*) FROM devices WHERE id = ?1";
static const char SQL_MEMBERS[] =
    "SELECT d.id FROM devices d JOIN group_members m ON m.device_id = d.id WHERE m.group_id = ?1"
    " AND (?2 IS NULL OR instr(lower(d.endpoint), lower(?2)) > 0) ORDER BY d.id LIMIT ?3 OFFSET ?4";
static const char SQL_MEMBERS_COUNT[] =
    "SELECT count(*) FROM devices d JOIN group_members m ON m.device_id = d.id WHERE m.group_id = ?1"
    " AND (?2 IS NULL OR instr(lower(d.endpoint), lower(?2)) > 0)";
static const char SQL_DEVICE_GROUPS[] = "SELECT group_id FROM group_members WHERE device_id = ?1 ORDER BY group_id";
static const char SQL_SV_GET[] =
    "SELECT name, value FROM setting_values WHERE group_id IS ?1 AND device_id IS ?2 ORDER BY name";
static const char SQL_SV_CLEAR[] = "DELETE FROM setting_values WHERE group_id IS ?1 AND device_id IS ?2";
static const char SQL_SV_DEL[] = "DELETE FROM setting_values WHERE group_id IS ?1 AND device_id IS ?2 AND name = ?3";
static const char SQL_SV_ADD[] = "INSERT INTO setting_values (group_id, device_id, name, value) VALUES (?1, ?2, ?3, ?4)";
/* the device's groups and their ancestors: id, parent, priority */
static const char SQL_SV_GROUPS[] =
    "WITH RECURSIVE s(id) AS (SELECT group_id FROM group_members WHERE device_id = ?1"
    " UNION SELECT g.parent_id FROM groups g JOIN s ON g.id = s.id WHERE g.parent_id IS NOT NULL)"
    " SELECT g.id, ifnull(g.parent_id, 0), g.priority FROM groups g JOIN s ON s.id = g.id ORDER BY g.id";
static const char SQL_SV_OF_GROUPS[] =
    "WITH RECURSIVE s(id) AS (SELECT group_id FROM group_members WHERE device_id = ?1"
    " UNION SELECT g.parent_id FROM groups g JOIN s ON g.id = s.id WHERE g.parent_id IS NOT NULL)"
    " SELECT v.group_id, v.name, v.value FROM setting_values v JOIN s ON s.id = v.group_id ORDER BY v.name, v.group_id";
static const char SQL_PROPS_GET[] = "SELECT properties FROM devices WHERE id = ?1";
static const char SQL_PROPS_SET[] = "UPDATE devices SET properties = ?2, updated_at = ?3 WHERE id = ?1";

/* ---------------------------------------------------------------- groups */
void db_group_free(db_group_t *g)
{
    if (!g)
        return;
    free(g->domain);
    free(g->name);
    free(g->description);
    memset(g, 0, sizeof *g);
}

void db_group_list_free(db_group_t **list, size_t n)
{
    if (!list || !*list)
        return;
    for (size_t i = 0; i < n; i++)
        db_group_free(&(*list)[i]);
    free(*list);
    *list = NULL;
}

static int read_row(db_t *db, sqlite3_stmt *st, void *elem)
{
    (void)db;
    db_group_t *g = elem;
    memset(g, 0, sizeof *g);
    g->id = sqlite3_column_int64(st, 0);
    g->domain = db_column_strdup(st, 1);
    g->parent_id = sqlite3_column_int64(st, 2);
    g->name = db_column_strdup(st, 3);
    g->description = db_column_strdup(st, 4);
    g->priority = sqlite3_column_int(st, 5);
    g->is_bootstrap = sqlite3_column_int(st, 6) != 0;
    g->n_devices = sqlite3_column_int64(st, 7);
    g->created_at = sqlite3_column_int64(st, 8);
    g->updated_at = sqlite3_column_int64(st, 9);
    if (!g->domain || !g->name || !g->description) {
        db_group_free(g);
        return SQLITE_NOMEM;
    }
    return SQLITE_OK;
}

static void free_list_any(void *list, size_t n)
{
    db_group_t *l = list;
    db_group_list_free(&l, n);
}

int db_group_get(db_t *db, int64_t id, db_group_t *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = db_stmt(db, SQL_GET);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, id);
    return db_row_one(db, st, read_row, out);
}

int db_group_list(db_t *db, const char *domain, const char *q, int limit, int offset, db_group_t **out, size_t *n,
                  int64_t *total)
{
    void *arr = NULL;
    int rc = db_list_page(db, SQL_COUNT, SQL_LIST, domain, q, limit, offset, sizeof(db_group_t), read_row,
                          free_list_any, &arr, n, total);
    *out = arr;
    return rc;
}

/* The domain (copied, at most cap bytes) and bootstrap flag of a group. */
static int group_domain(db_t *db, int64_t id, char *domain, size_t cap, bool *is_bs)
{
    sqlite3_stmt *st = db_stmt(db, SQL_DOMAIN_OF);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *d = (const char *)sqlite3_column_text(st, 0);
        snprintf(domain, cap, "%s", d ? d : "");
        if (is_bs)
            *is_bs = sqlite3_column_int(st, 1) != 0;
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_NOTFOUND;
    }
    db_stmt_done(st);
    return rc;
}

int db_group_is_ancestor(db_t *db, int64_t ancestor, int64_t id, bool *yes)
{
    *yes = false;
    sqlite3_stmt *st = db_stmt(db, SQL_IS_ANCESTOR);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, ancestor);
    sqlite3_bind_int64(st, 2, id);
    int64_t c = 0;
    int rc = db_stmt_int64(st, &c);
    *yes = c > 0;
    return rc;
}

/* The parent must be a group of the same domain. */
static int check_parent(db_t *db, const db_group_t *g)
{
    if (!g->parent_id)
        return SQLITE_OK;
    char dom[512];
    int rc = group_domain(db, g->parent_id, dom, sizeof dom, NULL);
    if (rc != SQLITE_OK)
        return rc;
    return strcmp(dom, g->domain ? g->domain : "/") == 0 ? SQLITE_OK : SQLITE_NOTFOUND;
}

static int bind_fields(sqlite3_stmt *st, const db_group_t *g, int64_t now)
{
    int rc = db_bind_int64_or_null(st, 2, g->parent_id, 0);
    rc |= db_bind_text_or_null(st, 3, g->name);
    rc |= sqlite3_bind_text(st, 4, g->description ? g->description : "", -1, SQLITE_TRANSIENT);
    rc |= sqlite3_bind_int(st, 5, g->priority);
    rc |= sqlite3_bind_int64(st, 6, now);
    return rc == SQLITE_OK ? SQLITE_OK : SQLITE_ERROR;
}

int db_group_insert(db_t *db, db_group_t *g)
{
    bool own;
    int rc = db_tx_begin(db, &own);
    if (rc != SQLITE_OK)
        return rc;
    int64_t now = db_now_ms();
    rc = check_parent(db, g);
    sqlite3_stmt *st = NULL;
    if (rc == SQLITE_OK && !(st = db_stmt(db, SQL_INSERT)))
        rc = SQLITE_ERROR;
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, g->domain ? g->domain : "/", -1, SQLITE_TRANSIENT);
        rc = bind_fields(st, g, now);
        if (rc == SQLITE_OK)
            rc = db_step_done(st);
        else
            db_stmt_done(st);
    }
    int64_t id = rc == SQLITE_OK ? sqlite3_last_insert_rowid(db->h) : 0;
    db_mark_tasks_dirty(db);
    rc = db_tx_end(db, own, rc);
    if (rc == SQLITE_OK) {
        g->id = id;
        g->created_at = g->updated_at = now;
        g->is_bootstrap = false;
    }
    return rc;
}

int db_group_update(db_t *db, db_group_t *g)
{
    bool own;
    int rc = db_tx_begin(db, &own);
    if (rc != SQLITE_OK)
        return rc;
    int64_t now = db_now_ms();
    char dom[512];
    bool is_bs = false;
    rc = group_domain(db, g->id, dom, sizeof dom, &is_bs);
    if (rc == SQLITE_OK && is_bs && g->parent_id)
        rc = SQLITE_PERM;
    if (rc == SQLITE_OK && g->parent_id) {
        db_group_t tmp = *g;
        tmp.domain = dom;
        rc = check_parent(db, &tmp);
        bool cycle = false;
        if (rc == SQLITE_OK)
            rc = db_group_is_ancestor(db, g->id, g->parent_id, &cycle);
        if (rc == SQLITE_OK && cycle)
            rc = SQLITE_MISMATCH;
    }
    sqlite3_stmt *st = NULL;
    if (rc == SQLITE_OK && !(st = db_stmt(db, SQL_UPDATE)))
        rc = SQLITE_ERROR;
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, g->id);
        rc = bind_fields(st, g, now);
        if (rc == SQLITE_OK)
            rc = db_step_done(st);
        else
            db_stmt_done(st);
    }
    db_mark_tasks_dirty(db);
    rc = db_tx_end(db, own, rc);
    if (rc == SQLITE_OK)
        g->updated_at = now;
    return rc;
}

int db_group_delete(db_t *db, int64_t id)
{
    char dom[512];
    bool is_bs = false;
    int rc = group_domain(db, id, dom, sizeof dom, &is_bs);
    if (rc != SQLITE_OK)
        return rc;
    if (is_bs)
        return SQLITE_PERM;
    sqlite3_stmt *st = db_stmt(db, SQL_DEL);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, id);
    rc = db_step_done(st);
    db_mark_tasks_dirty(db);
    if (rc == SQLITE_OK && sqlite3_changes(db->h) == 0)
        rc = SQLITE_NOTFOUND;
    return rc;
}

int db_group_bootstrap(db_t *db, const char *domain, int64_t *id)
{
    *id = 0;
    sqlite3_stmt *st = db_stmt(db, SQL_BS_GET);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_text(st, 1, domain, -1, SQLITE_TRANSIENT);
    int rc = db_stmt_int64(st, id);
    if (rc != SQLITE_NOTFOUND)
        return rc;
    bool own;
    rc = db_tx_begin(db, &own);
    if (rc != SQLITE_OK)
        return rc;
    st = db_stmt(db, SQL_BS_ADOPT);
    rc = st ? SQLITE_OK : SQLITE_ERROR;
    if (st) {
        sqlite3_bind_text(st, 1, domain, -1, SQLITE_TRANSIENT);
        rc = db_step_done(st);
    }
    if (rc == SQLITE_OK && sqlite3_changes(db->h) == 0) {
        st = db_stmt(db, SQL_BS_CREATE);
        rc = st ? SQLITE_OK : SQLITE_ERROR;
        if (st) {
            sqlite3_bind_text(st, 1, domain, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(st, 2, db_now_ms());
            rc = db_step_done(st);
        }
    }
    if (rc == SQLITE_OK) {
        st = db_stmt(db, SQL_BS_GET);
        rc = st ? SQLITE_OK : SQLITE_ERROR;
        if (st) {
            sqlite3_bind_text(st, 1, domain, -1, SQLITE_TRANSIENT);
            rc = db_stmt_int64(st, id);
        }
    }
    return db_tx_end(db, own, rc);
}

int db_group_find_by_name(db_t *db, const char *domain, const char *name, int64_t *id)
{
    *id = 0;
    sqlite3_stmt *st = db_stmt(db, SQL_FIND_NAME);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_text(st, 1, domain, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
    return db_stmt_int64(st, id);
}

/* ----------------------------------------------------------- membership */
static int count_id(db_t *db, const char *sql, int64_t a, int64_t b, int64_t *c)
{
    sqlite3_stmt *st = db_stmt(db, sql);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, a);
    if (b)
        sqlite3_bind_int64(st, 2, b);
    return db_stmt_int64(st, c);
}

int db_group_join(db_t *db, int64_t group_id, int64_t device_id)
{
    int64_t g = 0, d = 0;
    int rc = count_id(db, SQL_GROUP_EXISTS, group_id, 0, &g);
    if (rc == SQLITE_OK)
        rc = count_id(db, SQL_DEVICE_EXISTS, device_id, 0, &d);
    if (rc != SQLITE_OK)
        return rc;
    if (!g || !d)
        return SQLITE_NOTFOUND;
    sqlite3_stmt *st = db_stmt(db, SQL_JOIN);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, group_id);
    sqlite3_bind_int64(st, 2, device_id);
    rc = db_step_done(st);
    db_mark_tasks_dirty(db);
    return rc;
}

int db_group_leave(db_t *db, int64_t group_id, int64_t device_id)
{
    sqlite3_stmt *st = db_stmt(db, SQL_LEAVE);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, group_id);
    sqlite3_bind_int64(st, 2, device_id);
    int rc = db_step_done(st);
    db_mark_tasks_dirty(db);
    return rc;
}

int db_group_is_member(db_t *db, int64_t group_id, int64_t device_id, bool *yes)
{
    int64_t c = 0;
    int rc = count_id(db, SQL_IS_MEMBER, group_id, device_id, &c);
    *yes = c > 0;
    return rc;
}

int db_group_members(db_t *db, int64_t group_id, const char *q, int limit, int offset, db_device_t **out, size_t *n,
                     int64_t *total)
{
    *out = NULL;
    *n = 0;
    if (q && !*q)
        q = NULL;
    int rc;
    if (total) {
        *total = 0;
        sqlite3_stmt *c = db_stmt(db, SQL_MEMBERS_COUNT);
        if (!c)
            return SQLITE_ERROR;
        sqlite3_bind_int64(c, 1, group_id);
        db_bind_text_or_null(c, 2, q);
        if ((rc = db_stmt_int64(c, total)) != SQLITE_OK)
            return rc;
    }
    sqlite3_stmt *st = db_stmt(db, SQL_MEMBERS);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, group_id);
    db_bind_text_or_null(st, 2, q);
    sqlite3_bind_int(st, 3, limit > 0 ? limit : -1);
    sqlite3_bind_int(st, 4, offset > 0 ? offset : 0);
    int64_t *ids = NULL;
    size_t cnt = 0;
    rc = db_rows_int64(st, &ids, &cnt);
    if (rc != SQLITE_OK)
        return rc;
    db_device_t *arr = cnt ? calloc(cnt, sizeof *arr) : NULL;
    if (cnt && !arr) {
        free(ids);
        return SQLITE_NOMEM;
    }
    rc = SQLITE_OK;
    size_t got = 0;
    for (size_t i = 0; i < cnt && rc == SQLITE_OK; i++) {
        rc = db_device_get(db, ids[i], &arr[got]);
        if (rc == SQLITE_OK)
            got++;
    }
    free(ids);
    if (rc != SQLITE_OK) {
        db_device_list_free(&arr, got);
        return rc;
    }
    *out = arr;
    *n = got;
    return SQLITE_OK;
}

int db_device_groups(db_t *db, int64_t device_id, int64_t **ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    sqlite3_stmt *st = db_stmt(db, SQL_DEVICE_GROUPS);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, device_id);
    return db_rows_int64(st, ids, n);
}

/* ------------------------------------------------------- setting values */
static int bind_owner(sqlite3_stmt *st, int64_t group_id, int64_t device_id)
{
    db_bind_int64_or_null(st, 1, group_id, 0);
    db_bind_int64_or_null(st, 2, device_id, 0);
    return SQLITE_OK;
}

static bool one_owner(int64_t group_id, int64_t device_id) { return (group_id > 0) != (device_id > 0); }

static int dump(json_t *o, char **json_out)
{
    *json_out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return *json_out ? SQLITE_OK : SQLITE_NOMEM;
}

int db_setting_values_get(db_t *db, int64_t group_id, int64_t device_id, char **json_out)
{
    *json_out = NULL;
    if (!one_owner(group_id, device_id))
        return SQLITE_MISUSE;
    sqlite3_stmt *st = db_stmt(db, SQL_SV_GET);
    if (!st)
        return SQLITE_ERROR;
    bind_owner(st, group_id, device_id);
    json_t *o = json_object();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_object_set_new(o, (const char *)sqlite3_column_text(st, 0),
                            json_string((const char *)sqlite3_column_text(st, 1)));
    db_stmt_done(st);
    if (rc != SQLITE_DONE) {
        json_decref(o);
        return rc;
    }
    return dump(o, json_out);
}

static int sv_add(db_t *db, int64_t group_id, int64_t device_id, const char *name, const char *value)
{
    sqlite3_stmt *st = db_stmt(db, SQL_SV_ADD);
    if (!st)
        return SQLITE_ERROR;
    bind_owner(st, group_id, device_id);
    sqlite3_bind_text(st, 3, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, value, -1, SQLITE_TRANSIENT);
    return db_step_done(st);
}

int db_setting_values_put(db_t *db, int64_t group_id, int64_t device_id, const char *json_obj)
{
    if (!one_owner(group_id, device_id))
        return SQLITE_MISUSE;
    json_t *o = json_loads(json_obj ? json_obj : "{}", 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return SQLITE_MISMATCH;
    }
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (!json_is_string(v)) {
            json_decref(o);
            return SQLITE_MISMATCH;
        }
    }
    bool own;
    int rc = db_tx_begin(db, &own);
    if (rc != SQLITE_OK) {
        json_decref(o);
        return rc;
    }
    sqlite3_stmt *st = db_stmt(db, SQL_SV_CLEAR);
    rc = st ? SQLITE_OK : SQLITE_ERROR;
    if (st) {
        bind_owner(st, group_id, device_id);
        rc = db_step_done(st);
    }
    json_object_foreach(o, k, v) {
        if (rc != SQLITE_OK)
            break;
        rc = sv_add(db, group_id, device_id, k, json_string_value(v));
    }
    json_decref(o);
    return db_tx_end(db, own, rc);
}

int db_setting_value_set(db_t *db, int64_t group_id, int64_t device_id, const char *name, const char *value)
{
    if (!one_owner(group_id, device_id) || !name)
        return SQLITE_MISUSE;
    bool own;
    int rc = db_tx_begin(db, &own);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_stmt *st = db_stmt(db, SQL_SV_DEL);
    rc = st ? SQLITE_OK : SQLITE_ERROR;
    if (st) {
        bind_owner(st, group_id, device_id);
        sqlite3_bind_text(st, 3, name, -1, SQLITE_TRANSIENT);
        rc = db_step_done(st);
    }
    if (rc == SQLITE_OK && value)
        rc = sv_add(db, group_id, device_id, name, value);
    return db_tx_end(db, own, rc);
}

typedef struct {
    int64_t id, parent;
    int priority;
} sv_group_t;

static const sv_group_t *find_group(const sv_group_t *g, size_t n, int64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (g[i].id == id)
            return &g[i];
    return NULL;
}

/* true if a is a proper ancestor of b (walks b's parents; bounded). */
static bool proper_ancestor(const sv_group_t *g, size_t n, int64_t a, int64_t b)
{
    const sv_group_t *x = find_group(g, n, b);
    for (size_t steps = 0; x && x->parent && steps <= n; steps++) {
        if (x->parent == a)
            return true;
        x = find_group(g, n, x->parent);
    }
    return false;
}

typedef struct {
    int64_t gid;
    char *name, *value;
} sv_def_t;

static void free_defs(sv_def_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(d[i].name);
        free(d[i].value);
    }
    free(d);
}

/* The winner among the definitions d[0..n) of one name: drop every group that
 * is a proper ancestor of another defining group (the nearer one overrides),
 * then the lowest priority number, then the lowest group id. */
static const sv_def_t *pick(const sv_group_t *g, size_t ng, const sv_def_t *d, size_t n)
{
    const sv_def_t *best = NULL;
    int best_prio = 0;
    for (size_t i = 0; i < n; i++) {
        bool overridden = false;
        for (size_t j = 0; j < n && !overridden; j++)
            if (j != i && proper_ancestor(g, ng, d[i].gid, d[j].gid))
                overridden = true;
        if (overridden)
            continue;
        const sv_group_t *gi = find_group(g, ng, d[i].gid);
        int prio = gi ? gi->priority : 0;
        if (!best || prio < best_prio || (prio == best_prio && d[i].gid < best->gid)) {
            best = &d[i];
            best_prio = prio;
        }
    }
    return best;
}

int db_device_setting_values(db_t *db, int64_t device_id, char **json_out)
{
    *json_out = NULL;
    sqlite3_stmt *st = db_stmt(db, SQL_SV_GROUPS);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_int64(st, 1, device_id);
    sv_group_t *groups = NULL;
    size_t ng = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (ng == cap) {
            size_t nc = cap ? cap * 2 : 8;
            sv_group_t *na = realloc(groups, nc * sizeof *na);
            if (!na) {
                rc = SQLITE_NOMEM;
                break;
            }
            groups = na;
            cap = nc;
        }
        groups[ng].id = sqlite3_column_int64(st, 0);
        groups[ng].parent = sqlite3_column_int64(st, 1);
        groups[ng].priority = sqlite3_column_int(st, 2);
        ng++;
    }
    db_stmt_done(st);
    if (rc != SQLITE_DONE) {
        free(groups);
        return rc;
    }
    /* every definition of those groups, by name */
    sv_def_t *defs = NULL;
    size_t nd = 0, dcap = 0;
    st = db_stmt(db, SQL_SV_OF_GROUPS);
    rc = st ? SQLITE_OK : SQLITE_ERROR;
    if (st) {
        sqlite3_bind_int64(st, 1, device_id);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (nd == dcap) {
                size_t nc = dcap ? dcap * 2 : 16;
                sv_def_t *na = realloc(defs, nc * sizeof *na);
                if (!na) {
                    rc = SQLITE_NOMEM;
                    break;
                }
                defs = na;
                dcap = nc;
            }
            defs[nd].gid = sqlite3_column_int64(st, 0);
            defs[nd].name = db_column_strdup(st, 1);
            defs[nd].value = db_column_strdup(st, 2);
            nd++;
            if (!defs[nd - 1].name || !defs[nd - 1].value) {
                rc = SQLITE_NOMEM;
                break;
            }
        }
        db_stmt_done(st);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    json_t *out = json_object();
    for (size_t i = 0; rc == SQLITE_OK && i < nd;) {
        size_t j = i;
        while (j < nd && strcmp(defs[j].name, defs[i].name) == 0)
            j++;
        const sv_def_t *w = pick(groups, ng, defs + i, j - i);
        if (w)
            json_object_set_new(out, w->name, json_string(w->value));
        i = j;
    }
    free_defs(defs, nd);
    free(groups);
    if (rc == SQLITE_OK) {
        /* the device's own values override */
        st = db_stmt(db, SQL_SV_GET);
        rc = st ? SQLITE_OK : SQLITE_ERROR;
        if (st) {
            bind_owner(st, 0, device_id);
            while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                json_object_set_new(out, (const char *)sqlite3_column_text(st, 0),
                                    json_string((const char *)sqlite3_column_text(st, 1)));
            db_stmt_done(st);
            rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
        }
    }
    if (rc != SQLITE_OK) {
        json_decref(out);
        return rc;
    }
    return dump(out, json_out);
}

/* ---------------------------------------------------- device properties */
int db_device_set_property(db_t *db, int64_t device_id, const char *name, const char *value)
{
    if (!name)
        return SQLITE_MISUSE;
    bool own;
    int rc = db_tx_begin(db, &own);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_stmt *st = db_stmt(db, SQL_PROPS_GET);
    rc = st ? SQLITE_OK : SQLITE_ERROR;
    json_t *props = NULL;
    if (st) {
        sqlite3_bind_int64(st, 1, device_id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            const char *text = (const char *)sqlite3_column_text(st, 0);
            props = json_loads(text ? text : "{}", 0, NULL);
            if (!json_is_object(props)) {
                json_decref(props);
                props = json_object();
            }
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            rc = SQLITE_NOTFOUND;
        }
        db_stmt_done(st);
    }
    if (rc == SQLITE_OK) {
        if (value)
            json_object_set_new(props, name, json_string(value));
        else
            json_object_del(props, name);
        char *text = json_dumps(props, JSON_COMPACT | JSON_SORT_KEYS);
        st = text ? db_stmt(db, SQL_PROPS_SET) : NULL;
        rc = st ? SQLITE_OK : text ? SQLITE_ERROR : SQLITE_NOMEM;
        if (st) {
            sqlite3_bind_int64(st, 1, device_id);
            sqlite3_bind_text(st, 2, text, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(st, 3, db_now_ms());
            rc = db_step_done(st);
        }
        free(text);
    }
    json_decref(props);
    return db_tx_end(db, own, rc);
}
