/* api: GET /healthz (no auth): {"status":"ok","db":"ok"[,"loop":"ok"]}, 503
 * when the database does not answer a trivial query or the loop's liveness
 * hook (api_set_health_hook) says it is stalled. */
#include "api/api_int.h"

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
