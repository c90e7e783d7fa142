/* api: GET /healthz (no auth): {"status":"ok","db":"ok"[,"loop":"ok"]}, 503
 * when the database does not answer a trivial query or the loop's liveness
 * hook (api_set_health_hook) says it is stalled. */
#include "api/api_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/common/metrics.h"

#include <sqlite3.h>

enum MHD_Result api_health_get(api_req_t *r)
{
    bool ok = true;
    const char *dbs = "error";
    db_t *db = api_req_db(r);
    if (db) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db_handle(db), "SELECT count(*) FROM schema_migrations", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            dbs = "ok";
        sqlite3_finalize(st);
    }
    if (dbs[0] != 'o')
        ok = false;
    json_t *out = json_object();
    json_object_set_new(out, "db", json_string(dbs));
    pthread_mutex_lock(&r->api->hook_lock);
    int (*fn)(void *) = r->api->health_fn;
    void *arg = r->api->health_arg;
    pthread_mutex_unlock(&r->api->hook_lock);
    if (fn) {
        bool alive = fn(arg) == 0;
        json_object_set_new(out, "loop", json_string(alive ? "ok" : "stalled"));
        ok = ok && alive;
    }
    json_object_set_new(out, "status", json_string(ok ? "ok" : "fail"));
    return api_send_json(r, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, out, NULL);
}

/* GET /metrics (no auth, like /healthz; the API listens on 127.0.0.1 unless
 * configured otherwise): the process counters (server/common/metrics.h) and
 * gauges read from the database now. */
static long long count_query(sqlite3 *h, const char *sql, const char *arg)
{
    sqlite3_stmt *st = NULL;
    long long v = 0;
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
        if (arg)
            sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return v;
}

enum MHD_Result api_metrics_get(api_req_t *r)
{
    char *base = metrics_render();
    size_t blen = base ? strlen(base) : 0;
    size_t cap = blen + 4096;
    char *out = malloc(cap);
    if (!out) {
        free(base);
        return api_problem(r, 500, "out of memory", NULL);
    }
    memcpy(out, base ? base : "", blen);
    size_t n = blen;
    free(base);
    db_t *db = api_req_db(r);
    if (db) {
        sqlite3 *h = db_handle(db);
        n += (size_t)snprintf(
            out + n, cap - n,
            "# HELP lwdm_devices Devices in the database by state (see lwdm_devices_registered / _online).\n"
            "# TYPE lwdm_devices gauge\n"
            "lwdm_devices{state=\"known\"} %lld\n"
            "lwdm_devices{state=\"auto_created\"} %lld\n"
            "lwdm_devices{state=\"bootstrapped\"} %lld\n"
            "# HELP lwdm_task_reports Task reports by status.\n"
            "# TYPE lwdm_task_reports gauge\n",
            count_query(h, "SELECT count(*) FROM devices", NULL),
            count_query(h, "SELECT count(*) FROM devices WHERE auto_created", NULL),
            count_query(h, "SELECT count(*) FROM devices WHERE last_bootstrap_at IS NOT NULL", NULL));
        for (int i = 0; i < DB_REPORT_STATUS_COUNT; i++)
            n += (size_t)snprintf(out + n, cap - n, "lwdm_task_reports{status=\"%s\"} %lld\n", db_report_statuses[i],
                                  count_query(h, "SELECT count(*) FROM task_reports WHERE status = ?1",
                                              db_report_statuses[i]));
        n += (size_t)snprintf(out + n, cap - n,
                              "# HELP lwdm_db_size_bytes Size of the SQLite database (pages in use, without the WAL).\n"
                              "# TYPE lwdm_db_size_bytes gauge\n"
                              "lwdm_db_size_bytes %lld\n",
                              count_query(h, "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                                          NULL));
    }
    if (n >= cap)
        n = cap - 1;
    out[n] = 0;
    return api_send_text(r, 200, out, "text/plain; version=0.0.4; charset=utf-8");
}
