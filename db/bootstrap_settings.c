/* db: bootstrap settings of a domain and its management server list. */
#include "db/db_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SQL_GET[] =
    "SELECT ifnull(bootstrap_server_id, 0), accept_unknown, ifnull(task_id, 0), updated_at"
    " FROM bootstrap_settings WHERE domain = ?1";
static const char SQL_GET_SERVERS[] =
    "SELECT server_id FROM bootstrap_settings_servers WHERE domain = ?1 ORDER BY position";
static const char SQL_PUT[] =
    "INSERT INTO bootstrap_settings (domain, bootstrap_server_id, accept_unknown, task_id, updated_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(domain) DO UPDATE SET"
    " bootstrap_server_id = excluded.bootstrap_server_id, accept_unknown = excluded.accept_unknown,"
    " task_id = excluded.task_id, updated_at = excluded.updated_at";
static const char SQL_CLEAR_SERVERS[] = "DELETE FROM bootstrap_settings_servers WHERE domain = ?1";
static const char SQL_ADD_SERVER[] =
    "INSERT INTO bootstrap_settings_servers (domain, position, server_id) VALUES (?1, ?2, ?3)";

void db_bs_settings_free(db_bs_settings_t *s)
{
    if (!s)
        return;
    free(s->management_server_ids);
    memset(s, 0, sizeof *s);
}

int db_bs_settings_get(db_t *db, const char *domain, db_bs_settings_t *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = db_stmt(db, SQL_GET);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->bootstrap_server_id = sqlite3_column_int64(st, 0);
        out->accept_unknown = sqlite3_column_int(st, 1) != 0;
        out->task_id = sqlite3_column_int64(st, 2);
        out->updated_at = sqlite3_column_int64(st, 3);
    }
    db_stmt_done(st);
    if (rc == SQLITE_DONE)
        return SQLITE_OK; /* no row: empty settings */
    if (rc != SQLITE_ROW)
        return rc;
    st = db_stmt(db, SQL_GET_SERVERS);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
    rc = db_rows_int64(st, &out->management_server_ids, &out->n_management);
    if (rc != SQLITE_OK) {
        db_bs_settings_free(out);
        return rc;
    }
    return SQLITE_OK;
}

int db_bs_settings_put(db_t *db, const char *domain, const db_bs_settings_t *s)
{
    bool own;
    int rc = db_tx_begin(db, &own);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_stmt *st = db_stmt(db, SQL_PUT);
    rc = st ? SQLITE_OK : SQLITE_ERROR;
    if (st) {
        sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
        db_bind_int64_or_null(st, 2, s->bootstrap_server_id, 0);
        sqlite3_bind_int(st, 3, s->accept_unknown);
        db_bind_int64_or_null(st, 4, s->task_id, 0);
        sqlite3_bind_int64(st, 5, db_now_ms());
        rc = db_step_done(st);
    }
    if (rc == SQLITE_OK) {
        st = db_stmt(db, SQL_CLEAR_SERVERS);
        rc = st ? SQLITE_OK : SQLITE_ERROR;
        if (st) {
            sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
            rc = db_step_done(st);
        }
    }
    for (size_t i = 0; rc == SQLITE_OK && i < s->n_management; i++) {
        st = db_stmt(db, SQL_ADD_SERVER);
        if (!st) {
            rc = SQLITE_ERROR;
            break;
        }
        sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (int64_t)i);
        sqlite3_bind_int64(st, 3, s->management_server_ids[i]);
        rc = db_step_done(st);
    }
    if (rc == SQLITE_OK)
        db_mark_config_dirty(db);
    return db_tx_end(db, own, rc);
}

/* The settings as a task configuration (malloc'd). */
static char *settings_xml(const db_bs_settings_t *st)
{
    size_t cap = 256 + 80 * (st->n_management + 1);
    char *x = malloc(cap);
    if (!x)
        return NULL;
    size_t n = (size_t)snprintf(x, cap, "<config>\n  <lwm2mBootstrapCleanse/>\n");
    for (size_t i = 0; i < st->n_management; i++)
        n += (size_t)snprintf(x + n, cap - n, "  <lwm2mBootstrapConfiguration serverId=\"%lld\"/>\n",
                              (long long)st->management_server_ids[i]);
    if (st->bootstrap_server_id)
        n += (size_t)snprintf(x + n, cap - n, "  <lwm2mBootstrapConfiguration serverId=\"%lld\"/>\n",
                              (long long)st->bootstrap_server_id);
    snprintf(x + n, cap - n, "  <lwm2mBootstrap performBootstrapFinish=\"true\"/>\n</config>\n");
    return x;
}

int db_bs_settings_sync_task(db_t *db, const char *domain)
{
    bool own;
    int rc = db_tx_begin(db, &own);
    if (rc != SQLITE_OK)
        return rc;
    db_bs_settings_t st = {0};
    db_task_t cur = {0};
    bool have_cur = false;
    char *xml = NULL;
    int64_t *ids = NULL;
    rc = db_bs_settings_get(db, domain, &st);
    if (rc == SQLITE_OK && st.task_id) {
        have_cur = db_task_get(db, st.task_id, &cur) == SQLITE_OK && cur.managed_by &&
                   !strcmp(cur.managed_by, DB_BS_SETTINGS_MANAGED_BY);
    }
    size_t nids = st.n_management + (st.bootstrap_server_id ? 1 : 0);
    if (rc == SQLITE_OK && nids == 0) {
        if (have_cur)
            rc = db_task_delete(db, cur.id);
        if (rc == SQLITE_OK && st.task_id) {
            st.task_id = 0;
            rc = db_bs_settings_put(db, domain, &st);
        }
        goto out;
    }
    if (rc != SQLITE_OK)
        goto out;
    xml = settings_xml(&st);
    ids = malloc(nids * sizeof *ids);
    if (!xml || !ids) {
        rc = SQLITE_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < st.n_management; i++)
        ids[i] = st.management_server_ids[i];
    if (st.bootstrap_server_id)
        ids[nids - 1] = st.bootstrap_server_id;
    if (have_cur) {
        if (cur.config_xml && !strcmp(cur.config_xml, xml))
            goto out; /* already in step */
        free(cur.config_xml);
        cur.config_xml = xml;
        xml = NULL;
        free(cur.server_ids);
        cur.server_ids = ids;
        cur.n_server_ids = nids;
        ids = NULL;
        rc = db_task_update(db, &cur);
    } else {
        int64_t gid = 0;
        rc = db_group_bootstrap(db, domain, &gid);
        db_task_t t = {0};
        t.domain = (char *)domain;
        t.group_id = gid;
        t.name = (char *)DB_BS_SETTINGS_TASK_NAME;
        t.config_xml = xml;
        t.active = true;
        t.execution = DB_TASK_ONCE_AND_REPEAT;
        t.automatic_restart = true;
        t.condition = (char *)"";
        t.priority = DB_BS_SETTINGS_TASK_PRIORITY;
        t.managed_by = (char *)DB_BS_SETTINGS_MANAGED_BY;
        t.server_ids = ids;
        t.n_server_ids = nids;
        if (rc == SQLITE_OK)
            rc = db_task_insert(db, &t);
        if (rc == SQLITE_OK) {
            st.task_id = t.id;
            rc = db_bs_settings_put(db, domain, &st);
        }
    }
out:
    if (have_cur)
        db_task_free(&cur);
    db_bs_settings_free(&st);
    free(xml);
    free(ids);
    return db_tx_end(db, own, rc);
}
