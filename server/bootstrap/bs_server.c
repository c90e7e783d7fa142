/* Bootstrap interface: /bs (Bootstrap-Request and, as a request we send,
 * Bootstrap-Finish) and /bspack (LwM2M 1.2 Bootstrap-Pack), on libcoap's
 * endpoints (DTLS; plain CoAP with --coap-udp libcoap) and on lwdm's own UDP
 * endpoint (server/coap_udp.h) for plain CoAP.
 *
 * Ownership: a bs_conn_t pairs one transport peer (a libcoap session,
 * referenced while the bootstrap runs, coap_session_reference, LIBCOAP.md;
 * or an own-endpoint peer, referenced likewise) with one bs_session_t. The
 * peer's app data points at the conn. Conns are freed in
 * bs_server_after_io(), never inside a transport callback (two-phase
 * teardown, STYLE.md §4). */
#include "server/bootstrap/bs.h"

#include <coap3/coap.h>
#include <ctype.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/bootstrap/bs_plan.h"
#include "server/bootstrap/bs_session.h"
#include "server/bootstrap/provision.h"
#include "server/coap_udp.h"
#include "server/coap_util.h"
#include "server/task_cache.h"
#include "server/common/events.h"
#include "server/common/log.h"
#include "server/common/metrics.h"
#include "server/http_client.h"
#include "server/lwm2m/codec.h"
#include "server/tasks/expr.h"
#include "server/tasks/scheduler.h"
#include "server/tasks/task.h"

#define BS_MAX_EP 128

/* What a libcoap session's app_data points at */
enum { BS_APP_CONN = 1, BS_APP_HANDSHAKE = 2 };

/* A DTLS session in handshake, referenced until its first request (or a
 * deadline): an unreferenced session can be evicted by libcoap's max-idle
 * limit, which would cut off handshakes in a burst. */
typedef struct bs_handshake {
    int kind;                    /* BS_APP_HANDSHAKE */
    bs_server_t *srv;
    coap_session_t *cs;          /* referenced */
    lwdm_timer_t deadline;
    struct bs_handshake *prev, *next; /* in srv->handshakes */
} bs_handshake_t;

/* Where a message came from: a libcoap session or a peer of lwdm's own UDP
 * endpoint (exactly one is set). */
typedef struct {
    coap_session_t *cs;
    cudp_peer_t *up;
} bs_from_t;

typedef struct bs_conn {
    int kind;                    /* BS_APP_CONN */
    bs_server_t *srv;
    coap_session_t *cs;          /* referenced, or NULL ... */
    cudp_peer_t *up;             /* ... and this one (referenced) */
    bs_session_t *sess;
    uint8_t token[8];
    coap_mid_t mid;              /* outstanding request's message id */
    coap_mid_t request_mid;      /* the Bootstrap-Request's, to spot retransmissions */
    bool awaiting;
    int prov_pending;            /* hand-over calls in flight: Finish waits for them */
    bool finish_deferred;
    bool pending_start;
    bool finished;
    lwdm_timer_t watchdog;
    db_device_t dev;             /* the device bootstrapping (owned copy) */
    uint64_t http_id;            /* outstanding <rest> call, 0 = none */
    json_t *sv;                  /* the device's effective setting values (sv.NAME) ... */
    bool sv_loaded;              /* ... read on the first sv.* lookup */
    const char *op_step;         /* the outstanding request, for bootstrap-step events */
    char op_path[48];
    struct bs_conn *next;        /* in srv->conns */
} bs_conn_t;

typedef struct {
    int64_t device_id;
    int64_t at_ms;
    bool ok;
    char *steps;
} bs_result_t;

/* Owner data of a task run in a session */
typedef struct {
    task_prog_t *pe;
    int64_t report_id;
} run_owner_t;

struct bs_server {
    bs_server_config_t cfg;
    char *domain;
    bs_conn_t *conns;            /* every live conn */
    bs_result_t *results;        /* to write at the end of the pass */
    size_t nresults, capresults;
    uint64_t token_seq;
    uint64_t token_base;
    /* cached configuration (db_config_generation) */
    uint64_t gen;
    bool have_cfg;
    db_bs_settings_t settings;
    db_server_t *servers;        /* bootstrap server (if any) last */
    size_t nservers;
    bs_session_io_t io;
    bool tx_open;                /* a write transaction spans the loop pass */
    task_cache_t tcache;         /* parsed programs (server/task_cache.h) */
    struct bs_handshake *handshakes; /* DTLS sessions referenced until their first request */
    int64_t bs_group_id;         /* the domain's bootstrap group (cached with the config) */
    events_batch_t evq;          /* live events of the pass, published after its commit */
};

/* Writes made while handling a loop pass (devices created, credentials
 * generated, results) share one transaction, committed in
 * bs_server_after_io(): one commit per pass instead of one per device. */
static void tx_begin(bs_server_t *bs)
{
    if (!bs->tx_open && db_begin(bs->cfg.db) == 0)
        bs->tx_open = true;
}

static void tx_commit(bs_server_t *bs)
{
    if (!bs->tx_open)
        return;
    bs->tx_open = false;
    if (db_commit(bs->cfg.db) != 0) {
        LOGE("bootstrap", "event=commit-failed");
        db_rollback(bs->cfg.db);
    }
}

/* Live events wait in bs->evq until flush_results has committed the pass
 * (a reader reacting to an event finds its state stored). The data is built
 * as text (events_data_t): no jansson objects per event. Takes d. */
static void publish_data(bs_server_t *bs, bs_session_t *s, const char *type, events_data_t *d)
{
    bs_conn_t *c = s ? bs_session_user(s) : NULL;
    if (!bs->cfg.events || !s) {
        events_data_clear(d);
        return;
    }
    events_batch_add_data(&bs->evq, type, bs_session_device_id(s), bs_session_endpoint(s),
                          c ? c->dev.domain : bs->domain, d);
}

static void publish_step(bs_server_t *bs, bs_conn_t *c, const char *step, const char *path, int code,
                         const char *detail)
{
    if (!bs->cfg.events)
        return;
    char cs[8] = "-";
    if (code > 0) {
        int cls = (code >> 5) & 7, det = code & 31;
        cs[0] = (char)('0' + cls), cs[1] = '.', cs[2] = (char)('0' + det / 10), cs[3] = (char)('0' + det % 10), cs[4] = 0;
    }
    events_data_t d = {0};
    events_data_str(&d, "step", step ? step : "?");
    events_data_str(&d, "path", path ? path : "");
    events_data_str(&d, "code", cs);
    if (detail)
        events_data_str(&d, "detail", detail);
    publish_data(bs, c->sess, "bootstrap-step", &d);
}

/* task-status {taskId, taskName, reportId, status, summary} */
static void publish_task_status(bs_server_t *bs, bs_session_t *s, const bs_task_t *t, int64_t report_id,
                                const char *status, const char *summary)
{
    if (!bs->cfg.events)
        return;
    events_data_t d = {0};
    events_data_int(&d, "taskId", t->task_id);
    events_data_str(&d, "taskName", t->name);
    events_data_int(&d, "reportId", report_id);
    events_data_str(&d, "status", status);
    events_data_str(&d, "summary", summary);
    publish_data(bs, s, "task-status", &d);
}

/* libcoap's release callback for large bodies we malloc'd */
static void release_body(coap_session_t *cs, void *app_ptr)
{
    (void)cs;
    free(app_ptr);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ configuration */
static void drop_cfg(bs_server_t *bs)
{
    db_server_list_free(&bs->servers, bs->nservers);
    bs->servers = NULL;
    bs->nservers = 0;
    db_bs_settings_free(&bs->settings);
    bs->have_cfg = false;
}


/* Reloads the bootstrap settings and their servers when they changed. */
static int load_cfg(bs_server_t *bs)
{
    uint64_t gen = db_config_generation();
    if (bs->have_cfg && gen == bs->gen)
        return 0;
    drop_cfg(bs);
    int rc = db_bs_settings_get(bs->cfg.db, bs->domain, &bs->settings);
    if (rc != 0)
        return rc;
    size_t want = bs->settings.n_management + (bs->settings.bootstrap_server_id ? 1 : 0);
    bs->servers = calloc(want ? want : 1, sizeof *bs->servers);
    if (!bs->servers)
        return -1;
    for (size_t i = 0; i < want; i++) {
        int64_t id = i < bs->settings.n_management ? bs->settings.management_server_ids[i]
                                                   : bs->settings.bootstrap_server_id;
        if (db_server_get(bs->cfg.db, id, &bs->servers[bs->nservers]) == 0)
            bs->nservers++;
        else
            LOGW("bootstrap", "event=config-missing-server server_id=%lld", (long long)id);
    }
    bs->bs_group_id = 0;
    bs->gen = gen;
    bs->have_cfg = true;
    return 0;
}

/* ------------------------------------------------------- per-device accounts */
typedef struct {
    const db_device_t *dev;
    const db_server_t *srv;
} expr_ctx_t;

static int expr_lookup(void *vctx, const char *name, expr_value_t *out)
{
    const expr_ctx_t *c = vctx;
    const char *v = NULL;
    if (!strcmp(name, "device.endpoint"))
        v = c->dev->endpoint;
    else if (!strcmp(name, "device.domain"))
        v = c->dev->domain;
    else if (!strcmp(name, "device.id")) {
        out->type = EXPR_INT;
        out->i = c->dev->id;
        return 1;
    } else if (!strcmp(name, "server.name"))
        v = c->srv->name;
    else if (!strcmp(name, "server.uri"))
        v = c->srv->uri;
    else if (!strcmp(name, "server.id")) {
        out->type = EXPR_INT;
        out->i = c->srv->id;
        return 1;
    } else if (!strcmp(name, "server.ssid")) {
        out->type = EXPR_INT;
        out->i = c->srv->ssid;
        return 1;
    }
    if (!v)
        return 0;
    return expr_value_set_string(out, v, strlen(v)) == 0 ? 1 : -1;
}

static int eval_field(const char *src, const db_device_t *dev, const db_server_t *srv, uint8_t **out, size_t *len,
                      char *err, size_t errlen)
{
    expr_ctx_t ctx = {dev, srv};
    expr_env_t env = {expr_lookup, &ctx};
    expr_error_t e;
    char *s = NULL;
    size_t n = 0;
    if (expr_eval_str(src, &env, &s, &n, &e) != 0) {
        snprintf(err, errlen, "server '%.64s': %.160s", srv->name, e.msg);
        return -1;
    }
    *out = (uint8_t *)s;
    *len = n;
    return 0;
}

static uint8_t *dupbytes(const void *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

/* Resolves the PSK identity and key a device gets for one PSK server. Fixed
 * values are used as they are; an expression (e.g. ${string.secureRandom(16)})
 * is evaluated once per device and stored (db_device_server_cred_*), so the
 * same key is handed out again and the server side can verify it. */
static int resolve_psk(bs_server_t *bs, const db_device_t *dev, const db_server_t *srv, bs_account_t *a, char *err,
                       size_t errlen)
{
    const char *id_src = srv->psk_identity && *srv->psk_identity ? srv->psk_identity : NULL;
    const char *key_src = srv->psk ? srv->psk : "";
    bool per_device = (id_src && expr_has_parts(id_src)) || expr_has_parts(key_src);
    if (!per_device) {
        const char *id = id_src ? id_src : dev->endpoint;
        a->identity = dupbytes(id, strlen(id));
        a->identity_len = strlen(id);
        a->secret = dupbytes(key_src, strlen(key_src));
        a->secret_len = strlen(key_src);
        return a->identity && a->secret ? 0 : -1;
    }
    db_credentials_t c = {0};
    if (db_device_server_cred_get(bs->cfg.db, dev->id, srv->id, &c) == 0 && c.psk && c.psk_identity) {
        a->identity = dupbytes(c.psk_identity, strlen(c.psk_identity));
        a->identity_len = strlen(c.psk_identity);
        a->secret = dupbytes(c.psk, c.psk_len);
        a->secret_len = c.psk_len;
        db_credentials_free(&c);
        return a->identity && a->secret ? 0 : -1;
    }
    db_credentials_free(&c);
    if (id_src) {
        if (eval_field(id_src, dev, srv, &a->identity, &a->identity_len, err, errlen) != 0)
            return -1;
    } else {
        a->identity = dupbytes(dev->endpoint, strlen(dev->endpoint));
        a->identity_len = strlen(dev->endpoint);
    }
    if (eval_field(key_src, dev, srv, &a->secret, &a->secret_len, err, errlen) != 0)
        return -1;
    if (a->identity_len == 0 || memchr(a->identity, 0, a->identity_len) || a->secret_len == 0) {
        snprintf(err, errlen, "server '%s': generated PSK identity or key is empty or not text", srv->name);
        return -1;
    }
    char *idz = malloc(a->identity_len + 1);
    if (!idz)
        return -1;
    tx_begin(bs);
    memcpy(idz, a->identity, a->identity_len);
    idz[a->identity_len] = 0;
    db_credentials_t nc = {.security_mode = DB_SEC_PSK, .psk_identity = idz, .psk = a->secret, .psk_len = a->secret_len};
    int rc = db_device_server_cred_put(bs->cfg.db, dev->id, srv->id, &nc);
    if (rc == 0 && srv->type == DB_SRV_BOOTSTRAP) {
        /* The device will come back to a bootstrap server with these. */
        db_device_t d2 = {0};
        if (db_device_get(bs->cfg.db, dev->id, &d2) == 0) {
            db_credentials_free(&d2.bs);
            d2.bs.security_mode = DB_SEC_PSK;
            d2.bs.psk_identity = strdup(idz);
            d2.bs.psk = dupbytes(a->secret, a->secret_len);
            d2.bs.psk_len = a->secret_len;
            rc = db_device_update(bs->cfg.db, &d2);
            db_device_free(&d2);
        }
    }
    free(idz);
    if (rc != 0) {
        snprintf(err, errlen, "server '%s': could not store the generated credentials (sqlite %d)", srv->name, rc);
        return -1;
    }
    /* Durable before the device receives them: a key the device holds but
     * the server lost would lock it out. (Once per device and server.) */
    tx_commit(bs);
    return 0;
}

/* The management accounts of the bootstrap settings for a device (for
 * Bootstrap-Pack), with per-device credentials resolved. */
static int pack_accounts(bs_server_t *bs, const db_device_t *dev, bs_account_t **out, size_t *n, char *err,
                         size_t errlen)
{
    bs_account_t *a = calloc(bs->nservers ? bs->nservers : 1, sizeof *a);
    size_t k = 0;
    if (!a)
        return -1;
    for (size_t i = 0; i < bs->nservers; i++) {
        const db_server_t *srv = &bs->servers[i];
        if (srv->type == DB_SRV_BOOTSTRAP)
            continue;
        a[k].srv = srv;
        if (srv->security_mode == DB_SEC_PSK && resolve_psk(bs, dev, srv, &a[k], err, errlen) != 0) {
            for (size_t j = 0; j <= k; j++)
                bs_account_clear(&a[j]);
            free(a);
            return -1;
        }
        k++;
    }
    *out = a;
    *n = k;
    return 0;
}

/* ---------------------------------------------------------------- tasks */
/* Adds the device's pending tasks to the session, in order (TASKS.md "When a
 * task runs"). Returns the number added, or -1. */
static int schedule(bs_server_t *bs, bs_session_t *s, const db_device_t *dev, json_t **sv, bool *sv_loaded)
{
    db_task_candidate_t *cands = NULL;
    size_t n = 0;
    if (db_device_task_candidates(bs->cfg.db, dev->id, &cands, &n) != 0)
        return -1;
    int added = 0;
    int64_t now = db_now_ms();
    for (size_t i = 0; i < n; i++) {
        const db_task_t *t = &cands[i].task;
        sched_task_t st = task_sched_settings(t);
        sched_report_t rep = sched_report_parse(cands[i].status[0] ? cands[i].status : NULL);
        /* the cheap rules first; the condition (rules' last check) only for
         * a task that would otherwise run */
        sched_decision_t d = sched_decide(&st, rep, cands[i].started_at, SCHED_BOOTSTRAP, now, true);
        task_prog_t *pe = NULL;
        if (d == SCHED_RUN) {
            char err[320];
            pe = task_cache_get(&bs->tcache, t, err, sizeof err);
            if (!pe) {
                LOGE("tasks", "ep=%s task_id=%lld event=invalid-config reason=\"%s\"", dev->endpoint, (long long)t->id,
                     err);
                continue;
            }
            if (!task_runs_in(pe->prog, TR_SESSION_BOOTSTRAP))
                d = SCHED_SKIP_SESSION; /* management-only steps: never started here */
            else if (rep != SCHED_REPORT_IN_PROGRESS &&
                     !task_condition_holds(pe, &(task_ctx_t){bs->cfg.db, dev, sv, sv_loaded, t, true, false}))
                d = SCHED_SKIP_CONDITION;
        }
        if (d != SCHED_RUN) {
            LOGD("tasks", "ep=%s task_id=%lld event=skipped reason=\"%s\"", dev->endpoint, (long long)t->id,
                 sched_decision_name(d));
            task_cache_release(&bs->tcache, pe);
            continue;
        }
        run_owner_t *o = calloc(1, sizeof *o);
        if (!o || bs_session_add_task(s, pe->prog, t->id, t->name, NULL, o) != 0) {
            free(o);
            task_cache_release(&bs->tcache, pe);
            continue;
        }
        o->pe = pe;
        added++;
    }
    db_task_candidates_free(&cands, n);
    return added;
}

static void io_task_start(void *ctx, bs_session_t *s, bs_task_t *t)
{
    bs_server_t *bs = ctx;
    run_owner_t *o = t->owner;
    if (!o || !t->task_id)
        return;
    tx_begin(bs);
    if (db_report_start(bs->cfg.db, t->task_id, bs_session_device_id(s), "bootstrap", db_now_ms(), &o->report_id) != 0)
        o->report_id = 0;
    publish_task_status(bs, s, t, o->report_id, "IN_PROGRESS", "");
}

static void io_task_log(void *ctx, bs_session_t *s, bs_task_t *t, const char *level, const char *step, const char *sent,
                        const char *received, int code, const char *message)
{
    bs_server_t *bs = ctx;
    run_owner_t *o = t->owner;
    (void)code;
    if (!o || !o->report_id)
        return;
    tx_begin(bs);
    db_report_log(bs->cfg.db, o->report_id, db_now_ms(), level, step, sent, received, NULL, message);
    (void)s;
}

static void io_task_done(void *ctx, bs_session_t *s, bs_task_t *t)
{
    bs_server_t *bs = ctx;
    run_owner_t *o = t->owner;
    LOGI("tasks", "ep=%s task=\"%s\" event=task-%s summary=\"%s\"", bs_session_endpoint(s), t->name,
         tr_status_name(t->status), t->summary);
    metrics_inc(t->status == TR_SUCCESS   ? MC_TASK_SUCCESS
                : t->status == TR_WARNING ? MC_TASK_WARNING
                : t->status == TR_ERROR   ? MC_TASK_ERROR
                                          : MC_TASK_IN_PROGRESS);
    if (t->task_id)
        publish_task_status(bs, s, t, o ? o->report_id : 0, tr_status_name(t->status), t->summary);
    if (!o || !o->report_id)
        return;
    tx_begin(bs);
    db_report_finish(bs->cfg.db, o->report_id, tr_status_name(t->status), t->summary, t->vars_json, db_now_ms());
}

/* Releases the owner data of a session's tasks. */
static void release_tasks(bs_server_t *bs, bs_session_t *s)
{
    for (size_t i = 0; i < bs_session_task_count(s); i++) {
        bs_task_t *t = bs_session_task(s, i);
        run_owner_t *o = t->owner;
        if (o) {
            task_cache_release(&bs->tcache, o->pe);
            free(o);
            t->owner = NULL;
        }
    }
}

/* ------------------------------------------------------------------- sending */
static int io_send(void *ctx, bs_session_t *s, int method, const lwm2m_path_t *path, int cf, int accept,
                   const uint8_t *payload, size_t len);

/* A hand-over call ended: a Finish that waited for it goes now. */
static void provision_done(void *ud, int64_t device_id, bool ok)
{
    bs_server_t *bs = ud;
    (void)ok; /* logged and published by provision.c; the device retries registering on failure */
    for (bs_conn_t *c = bs->conns; c; c = c->next) {
        if (c->dev.id != device_id || c->finished || c->prov_pending <= 0)
            continue;
        if (--c->prov_pending == 0 && c->finish_deferred) {
            c->finish_deferred = false;
            c->awaiting = false;
            if (io_send(bs, c->sess, BS_POST, NULL, LWM2M_CF_NONE, LWM2M_CF_NONE, NULL, 0) != 0)
                bs_session_on_error(c->sess, "could not send Bootstrap-Finish", now_ms());
        }
        break;
    }
}

static int io_send(void *ctx, bs_session_t *s, int method, const lwm2m_path_t *path, int cf, int accept,
                   const uint8_t *payload, size_t len)
{
    bs_server_t *bs = ctx;
    bs_conn_t *c = bs_session_user(s);
    if (!c || (!c->cs && !c->up))
        return -1;
    if (c->cs && coap_session_get_state(c->cs) != COAP_SESSION_STATE_ESTABLISHED)
        return -1; /* DTLS closed under us: PDUs would wait forever (LIBCOAP.md) */
    if (!path && c->prov_pending > 0) {
        /* Finish waits until the target server knows the device and its key
         * (provision.c), so that its first Register is accepted there */
        c->finish_deferred = true;
        c->awaiting = true;
        c->op_step = "finish";
        snprintf(c->op_path, sizeof c->op_path, "/bs");
        return 0;
    }
    uint64_t t = bs->token_base ^ ++bs->token_seq;
    memcpy(c->token, &t, sizeof c->token);
    /* Finish is POST /bs: no LwM2M path, the "bs" segment as the root */
    coap_mid_t mid = COAP_INVALID_MID;
    if (c->cs) {
        mid = cu_send_request(c->cs, method, path ? "" : "bs", path, cf, accept, -1, NULL, payload, len, c->token);
    } else {
        coap_pdu_t *pdu = cudp_new_request(c->up, (coap_pdu_code_t)method);
        if (pdu && cu_request_options(pdu, path ? "" : "bs", path, cf, accept, -1, NULL, payload != NULL, c->token)) {
            metrics_coap(true, method);
            mid = cudp_send(c->up, pdu, payload, payload ? len : 0);
        } else if (pdu)
            coap_delete_pdu(pdu);
    }
    if (mid == COAP_INVALID_MID)
        return -1;
    c->mid = mid;
    c->awaiting = true;
    c->op_step = !path                 ? "finish"
                 : method == BS_GET    ? (accept == LWM2M_CF_LINK ? "discover" : "read")
                 : method == BS_PUT    ? "write"
                 : method == BS_DELETE ? "delete"
                                       : "execute";
    if (!path || lwm2m_path_format(path, c->op_path, sizeof c->op_path) < 0)
        snprintf(c->op_path, sizeof c->op_path, "%s", path ? "?" : "/bs");
    return 0;
}

/* The configured LwM2M server `ref` (id, or name when by_name): from the
 * cached bootstrap settings first, else the database. */
static int find_server(bs_server_t *bs, const char *ref, bool by_name, db_server_t *tmp, const db_server_t **out)
{
    *out = NULL;
    if (!by_name) {
        char *end;
        long long id = strtoll(ref, &end, 10);
        if (!*ref || *end || id <= 0)
            return -1;
        for (size_t i = 0; i < bs->nservers; i++)
            if (bs->servers[i].id == id) {
                *out = &bs->servers[i];
                return 0;
            }
        if (db_server_get(bs->cfg.db, id, tmp) != 0)
            return -1;
    } else {
        for (size_t i = 0; i < bs->nservers; i++)
            if (!strcmp(bs->servers[i].name, ref)) {
                *out = &bs->servers[i];
                return 0;
            }
        if (db_server_get_by_name(bs->cfg.db, bs->domain, ref, tmp) != 0)
            return -1;
    }
    *out = tmp;
    return 0;
}

static int io_server_records(void *ctx, bs_session_t *s, const char *ref, bool by_name, int sec_iid, int srv_iid,
                             lwm2m_records_t *out, bool *is_bs, char *err, size_t errlen)
{
    bs_server_t *bs = ctx;
    bs_conn_t *c = bs_session_user(s);
    db_server_t tmp = {0};
    const db_server_t *srv = NULL;
    if (find_server(bs, ref, by_name, &tmp, &srv) != 0) {
        snprintf(err, errlen, "no LwM2M server %s '%.64s'", by_name ? "named" : "with id", ref);
        return -1;
    }
    bs_account_t a = {.srv = srv};
    int rc = 0;
    if (srv->security_mode == DB_SEC_PSK)
        rc = resolve_psk(bs, &c->dev, srv, &a, err, errlen);
    if (rc == 0 && srv->type == DB_SRV_MANAGEMENT) {
        int pr = bs_provision_start(bs->cfg.http, bs->cfg.events, srv, c->dev.id, c->dev.endpoint, a.identity,
                                    a.identity_len, a.secret, a.secret_len, provision_done, bs);
        if (pr > 0)
            c->prov_pending++;
        else if (pr < 0)
            LOGW("bootstrap", "ep=%s event=provisioning-not-started server=\"%s\"", c->dev.endpoint, srv->name);
    }
    if (rc == 0 && sec_iid >= 0 && sec_iid < 65535) {
        *is_bs = srv->type == DB_SRV_BOOTSTRAP;
        rc = bs_plan_account(&a, (uint16_t)sec_iid, srv_iid, out);
        if (rc != 0)
            snprintf(err, errlen, "could not build the configuration of '%s'", srv->name);
    } else if (rc == 0) {
        snprintf(err, errlen, "no free Security instance id");
        rc = -1;
    }
    bs_account_clear(&a);
    db_server_free(&tmp);
    return rc;
}

static void http_done(void *ud, int status, const uint8_t *body, size_t len, const char *error)
{
    bs_conn_t *c = ud;
    c->http_id = 0;
    char hs[16];
    snprintf(hs, sizeof hs, "%d", status);
    events_data_t d = {0};
    events_data_str(&d, "step", "http");
    events_data_str(&d, "code", error ? "-" : hs);
    if (error)
        events_data_str(&d, "detail", error);
    publish_data(c->srv, c->sess, "bootstrap-step", &d);
    bs_session_on_http(c->sess, status, body, len, error, now_ms());
}

static int io_http(void *ctx, bs_session_t *s, const tr_op_t *op)
{
    bs_server_t *bs = ctx;
    bs_conn_t *c = bs_session_user(s);
    if (!bs->cfg.http || !c)
        return -1;
    http_header_t hs[32];
    size_t n = op->nheaders < 32 ? op->nheaders : 32;
    for (size_t i = 0; i < n; i++)
        hs[i] = (http_header_t){op->headers[i].name, op->headers[i].value};
    http_request_t q = {op->method, op->url, op->body, op->content_type, op->user, op->pass, hs, n, op->timeout_s};
    LOGD("bootstrap", "ep=%s event=http method=%s url=%s", c->dev.endpoint, op->method, op->url);
    return http_client_start(bs->cfg.http, &q, http_done, c, &c->http_id);
}

static int io_lookup(void *ctx, bs_session_t *s, const char *name, expr_value_t *out)
{
    bs_server_t *bs = ctx;
    bs_conn_t *c = bs_session_user(s);
    task_ctx_t cc = {bs->cfg.db, &c->dev, &c->sv, &c->sv_loaded, NULL, true, false};
    return task_ctx_lookup(&cc, name, out);
}

static void record_result(bs_server_t *bs, int64_t device_id, bool ok, char *steps)
{
    if (bs->nresults == bs->capresults) {
        size_t nc = bs->capresults ? bs->capresults * 2 : 64;
        bs_result_t *nr = realloc(bs->results, nc * sizeof *nr);
        if (!nr) {
            free(steps);
            return;
        }
        bs->results = nr;
        bs->capresults = nc;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    bs->results[bs->nresults++] = (bs_result_t){device_id, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, ok, steps};
}

static void io_done(void *ctx, bs_session_t *s)
{
    bs_server_t *bs = ctx;
    bs_conn_t *c = bs_session_user(s);
    bool ok = bs_session_succeeded(s);
    metrics_inc(ok ? MC_BS_SUCCEEDED : MC_BS_FAILED);
    char *steps = bs_session_steps_json(s);
    if (steps && !ok) {
        /* append the reason as a last step */
        json_t *arr = json_loads(steps, 0, NULL);
        if (arr) {
            json_array_append_new(arr, json_pack("{s:s,s:s}", "op", "failed", "reason", bs_session_reason(s)));
            free(steps);
            steps = json_dumps(arr, JSON_COMPACT);
            json_decref(arr);
        }
    }
    record_result(bs, bs_session_device_id(s), ok, steps);
    events_data_t ev = {0};
    events_data_str(&ev, "status", ok ? "finished" : "failed");
    if (!ok)
        events_data_str(&ev, "reason", bs_session_reason(s));
    publish_data(bs, s, "bootstrap", &ev);
    if (c) {
        c->finished = true;
        c->awaiting = false;
        timer_stop(bs->cfg.timers, &c->watchdog);
    }
}

static void watchdog_fired(struct timer *t, void *arg)
{
    bs_conn_t *c = arg;
    (void)t;
    char why[96];
    snprintf(why, sizeof why, "timeout: no Bootstrap-Finish within %u s", c->srv->cfg.session_timeout_s);
    bs_session_on_error(c->sess, why, now_ms());
}

/* ---------------------------------------------------------------- handlers */

/* Decides who is bootstrapping: DTLS identity or `ep`, against the devices
 * table (CONFORMANCE.md §4 "PSK identity vs ep"). On success *dev is filled.
 * Returns 0, or a CoAP code (class*100+detail) with msg. */
static int authorise(bs_server_t *bs, bs_from_t f, const char *ep, bool have_ep, db_device_t *dev, char *msg,
                     size_t msgcap)
{
    const coap_bin_const_t *id = f.cs ? coap_session_get_psk_identity(f.cs) : NULL;
    bool secure = f.cs && cu_is_secure(f.cs); /* DTLS, or TLS on the same port (CoAP over TCP) */
    if (secure) {
        if (!id || id->length == 0) {
            snprintf(msg, msgcap, "no PSK identity");
            return 400;
        }
        if (db_device_get_by_bs_identity(bs->cfg.db, id->s, id->length, dev) != 0) {
            snprintf(msg, msgcap, "unknown PSK identity");
            return 400;
        }
        if (have_ep && strcmp(ep, dev->endpoint) != 0) {
            snprintf(msg, msgcap, "endpoint name does not match the PSK identity");
            db_device_free(dev);
            return 400;
        }
    } else {
        if (!have_ep) {
            snprintf(msg, msgcap, "missing ep (required without DTLS)");
            return 400;
        }
        int rc = db_device_get_by_endpoint(bs->cfg.db, bs->domain, ep, dev);
        if (rc == 0 && dev->bs.security_mode != DB_SEC_NOSEC) {
            snprintf(msg, msgcap, "this device must bootstrap over DTLS");
            db_device_free(dev);
            return 400;
        }
        if (rc != 0) {
            bool accept = bs->cfg.accept_unknown >= 0 ? bs->cfg.accept_unknown == 1 : bs->settings.accept_unknown;
            if (!accept) {
                snprintf(msg, msgcap, "unknown endpoint");
                return 400;
            }
            tx_begin(bs);
            db_device_t nd = {0};
            nd.endpoint = (char *)ep;
            nd.domain = bs->domain;
            nd.auto_created = true;
            nd.properties_json = (char *)"{}";
            if (db_device_insert(bs->cfg.db, &nd) != 0 ||
                db_device_get(bs->cfg.db, nd.id, dev) != 0) {
                snprintf(msg, msgcap, "could not create the device");
                return 500;
            }
            LOGI("bootstrap", "ep=%s event=device-created id=%lld", ep, (long long)nd.id);
        }
    }
    if (dev->blacklisted) {
        snprintf(msg, msgcap, "device is blacklisted");
        db_device_free(dev);
        return 403;
    }
    return 0;
}

/* Shared by /bs and /bspack: refuses (counted, logged with the endpoint and
 * the reason, answered with a diagnostic payload). */
static void refuse(bs_server_t *bs, coap_pdu_t *resp, const char *event, const char *who, int code, const char *msg)
{
    metrics_inc(MC_BS_REFUSED);
    LOGW("bootstrap", "ep=%s event=%s code=%d.%02d reason=\"%s\"", who, event, code / 100, code % 100, msg);
    cu_reply_error(resp, code / 100, code % 100, msg);
}

/* Loads the configuration and authorises the client (see authorise()).
 * Returns true with *dev filled, or false after answering the request. */
static bool admit(bs_server_t *bs, bs_from_t f, const char *ep, bool have_ep, const char *event,
                  db_device_t *dev, coap_pdu_t *resp)
{
    if (load_cfg(bs) != 0) {
        cu_reply_error(resp, 5, 0, "configuration unavailable");
        return false;
    }
    char msg[128];
    int code = authorise(bs, f, ep, have_ep, dev, msg, sizeof msg);
    if (code) {
        refuse(bs, resp, event, have_ep ? ep : "-", code, msg);
        return false;
    }
    return true;
}

static bs_conn_t *conn_of(bs_from_t f)
{
    bs_conn_t *c = f.cs ? coap_session_get_app_data(f.cs) : f.up ? cudp_peer_app_data(f.up) : NULL;
    return c && c->kind == BS_APP_CONN ? c : NULL;
}

static void handshake_release(bs_handshake_t *h)
{
    timer_stop(h->srv->cfg.timers, &h->deadline);
    if (h->prev)
        h->prev->next = h->next;
    else
        h->srv->handshakes = h->next;
    if (h->next)
        h->next->prev = h->prev;
    if (coap_session_get_app_data(h->cs) == h)
        coap_session_set_app_data(h->cs, NULL);
    coap_session_release(h->cs);
    free(h);
}

static void handshake_deadline(struct timer *t, void *arg)
{
    (void)t;
    handshake_release(arg);
}

/* The session's first request arrived: the handshake is over. */
static void handshake_done(coap_session_t *cs)
{
    bs_handshake_t *h = coap_session_get_app_data(cs);
    if (h && h->kind == BS_APP_HANDSHAKE)
        handshake_release(h);
}

void bs_server_on_session_new(bs_server_t *bs, coap_session_t *cs)
{
    if (coap_session_get_proto(cs) != COAP_PROTO_DTLS || coap_session_get_app_data(cs))
        return;
    bs_handshake_t *h = calloc(1, sizeof *h);
    if (!h)
        return;
    h->kind = BS_APP_HANDSHAKE;
    h->srv = bs;
    h->cs = coap_session_reference(cs);
    timer_init(&h->deadline, handshake_deadline, h);
    timer_start(bs->cfg.timers, &h->deadline, now_ms() + 15000);
    coap_session_set_app_data(cs, h);
    h->next = bs->handshakes;
    if (h->next)
        h->next->prev = h;
    bs->handshakes = h;
}

/* A Bootstrap-Request (POST /bs) from either transport. `query` is its
 * Uri-Query as libcoap joins it (for the step record). */
static void on_bs(bs_server_t *bs, bs_from_t f, const coap_pdu_t *req, const coap_string_t *query, coap_pdu_t *resp)
{
    metrics_inc(MC_BS_REQUESTS);
    char ep[BS_MAX_EP + 2], pcts[16];
    bool have_ep, have_pct, bad_ep, bad_pct;
    cu_query_get(req, "ep", ep, sizeof ep, &have_ep, &bad_ep);
    cu_query_get(req, "pct", pcts, sizeof pcts, &have_pct, &bad_pct);
    const char *who = have_ep ? ep : "-";

    bs_conn_t *old = conn_of(f);
    if (old && !old->finished && old->request_mid == coap_pdu_get_mid(req)) {
        /* a retransmitted Request: answer again, do not restart (RFC 7252 §4.5) */
        metrics_coap(true, LWM2M_CODE(2, 4));
        coap_pdu_set_code(resp, COAP_RESPONSE_CODE(204));
        return;
    }
    if (have_ep && (bad_ep || !cu_valid_endpoint(ep, BS_MAX_EP))) {
        refuse(bs, resp, "refused", "-", 400, "invalid endpoint name");
        return;
    }
    int pct = LWM2M_CF_NONE;
    if (have_pct) {
        char *end;
        long v = strtol(pcts, &end, 10);
        if (bad_pct || !pcts[0] || *end || v < 0 || v > 65535) {
            refuse(bs, resp, "refused", who, 400, "malformed pct");
            return;
        }
        if (!bs_cf_is_lwm2m((int)v)) {
            char m[64];
            snprintf(m, sizeof m, "unknown preferred content format %ld", v);
            refuse(bs, resp, "refused", who, 415, m);
            return;
        }
        pct = (int)v;
    }
    db_device_t dev = {0};
    if (!admit(bs, f, ep, have_ep, "refused", &dev, resp))
        return;
    if (old && !old->finished)
        bs_session_cancel(old->sess, "restarted by a new Bootstrap-Request", now_ms());

    bs_conn_t *c = calloc(1, sizeof *c);
    if (c)
        c->kind = BS_APP_CONN;
    bs_session_t *s = c ? bs_session_new(&bs->io, bs, dev.endpoint, dev.id, pct, bs->cfg.registry, now_ms()) : NULL;
    if (!s) {
        free(c);
        cu_reply_error(resp, 5, 0, NULL);
        db_device_free(&dev);
        return;
    }
    /* A device that sends /bs is in its domain's bootstrap group (TASKS.md). */
    tx_begin(bs);
    if (bs->bs_group_id == 0 && db_group_bootstrap(bs->cfg.db, bs->domain, &bs->bs_group_id) != 0)
        bs->bs_group_id = 0;
    if (bs->bs_group_id)
        db_group_join(bs->cfg.db, bs->bs_group_id, dev.id);
    json_t *sv = NULL;
    bool sv_loaded = false;
    int ntasks = schedule(bs, s, &dev, &sv, &sv_loaded);
    if (ntasks <= 0) {
        json_decref(sv);
        release_tasks(bs, s);
        bs_session_free(&s);
        free(c);
        refuse(bs, resp, "refused", dev.endpoint, 400, "no bootstrap task applies to this device");
        db_device_free(&dev);
        return;
    }
    c->dev = dev; /* the conn owns the device record from here */
    c->sv = sv;
    c->sv_loaded = sv_loaded;
    c->srv = bs;
    c->sess = s;
    if (f.cs) {
        c->cs = coap_session_reference(f.cs);
        coap_session_set_app_data(f.cs, c);
    } else {
        c->up = cudp_peer_ref(f.up);
        cudp_peer_set_app_data(f.up, c);
    }
    c->request_mid = coap_pdu_get_mid(req);
    c->pending_start = true;
    timer_init(&c->watchdog, watchdog_fired, c);
    bs_session_set_user(s, c);
    c->next = bs->conns;
    bs->conns = c;
    char uri[200];
    snprintf(uri, sizeof uri, "/bs?%.*s", query ? (int)query->length : 0, query ? (const char *)query->s : "");
    bs_session_note_request(s, uri, COAP_RESPONSE_CODE(204));
    metrics_inc(MC_BS_STARTED);
    events_data_t ev = {0};
    events_data_str(&ev, "status", "started");
    publish_data(bs, s, "bootstrap", &ev);
    LOGI("bootstrap", "ep=%s event=request pct=%d secure=%d", c->dev.endpoint, pct, f.cs && cu_is_secure(f.cs));
    metrics_coap(true, LWM2M_CODE(2, 4));
    coap_pdu_set_code(resp, COAP_RESPONSE_CODE(204));
}

static void hnd_bs(coap_resource_t *r, coap_session_t *cs, const coap_pdu_t *req, const coap_string_t *query,
                   coap_pdu_t *resp)
{
    bs_server_t *bs = coap_resource_get_userdata(r);
    metrics_coap(false, COAP_REQUEST_CODE_POST);
    handshake_done(cs);
    if (!cu_is_local_port(cs, bs->cfg.coap_port) && !cu_is_local_port(cs, bs->cfg.coaps_port)) {
        cu_reply_error(resp, 4, 4, NULL);
        return;
    }
    on_bs(bs, (bs_from_t){cs, NULL}, req, query, resp);
}

/* A Bootstrap-Pack-Request (GET /bspack) from either transport; r and query
 * are libcoap's (for its block-wise answer), NULL from the own endpoint. */
static void on_bspack(bs_server_t *bs, bs_from_t f, coap_resource_t *r, const coap_pdu_t *req,
                      const coap_string_t *query, coap_pdu_t *resp)
{
    char ep[BS_MAX_EP + 2];
    bool have_ep, bad_ep;
    cu_query_get(req, "ep", ep, sizeof ep, &have_ep, &bad_ep);
    const char *who = have_ep && !bad_ep && cu_valid_endpoint(ep, BS_MAX_EP) ? ep : "-";
    int cf = LWM2M_CF_SENML_CBOR;
    coap_opt_iterator_t it;
    coap_opt_t *acc = coap_check_option(req, COAP_OPTION_ACCEPT, &it);
    if (acc) {
        cf = (int)coap_decode_var_bytes(coap_opt_value(acc), coap_opt_length(acc));
        if (cf != LWM2M_CF_SENML_CBOR && cf != LWM2M_CF_SENML_JSON) {
            (void)cf;
            refuse(bs, resp, "pack-refused", who, 406, "Bootstrap-Pack is served as SenML CBOR or SenML JSON");
            return;
        }
    }
    if (have_ep && (bad_ep || !cu_valid_endpoint(ep, BS_MAX_EP))) {
        refuse(bs, resp, "pack-refused", "-", 400, "invalid endpoint name");
        return;
    }
    db_device_t dev = {0};
    if (!admit(bs, f, ep, have_ep, "pack-refused", &dev, resp))
        return;
    bs_account_t *accts = NULL;
    size_t n = 0;
    char err[256];
    lwm2m_records_t recs;
    lwm2m_records_init(&recs);
    uint8_t *body = NULL;
    size_t len = 0;
    int rc = pack_accounts(bs, &dev, &accts, &n, err, sizeof err);
    if (rc == 0) {
        /* The client's BS-account instance is unknown without Discover (Anjay
         * keeps it at /0/1): management accounts from /0/2, and no
         * bootstrap-type account, which could become a second BS account
         * (CONFORMANCE.md §1 Bootstrap-Pack-Request). */
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = bs_plan_account(&accts[i], (uint16_t)(2 + i), (int)i, &recs);
        if (rc == 0)
            rc = bs_plan_pack(&recs, cf, &body, &len);
        for (size_t i = 0; i < n; i++)
            bs_account_clear(&accts[i]);
        free(accts);
    } else {
        LOGE("bootstrap", "ep=%s event=pack-failed reason=\"%s\"", dev.endpoint, err);
    }
    lwm2m_records_clear(&recs);
    if (rc != 0 || !body) {
        free(body);
        cu_reply_error(resp, 5, 0, "configuration error");
        db_device_free(&dev);
        return;
    }
    coap_pdu_set_code(resp, COAP_RESPONSE_CODE(205));
    int block = 0;
    if (f.cs) {
        /* libcoap serves Block2 from this one body (identical across blocks). */
        if (!coap_add_data_large_response(r, f.cs, req, resp, query, (uint16_t)cf, -1, 0, len, body,
                                          release_body, body)) {
            free(body);
            cu_reply_error(resp, 5, 0, NULL);
            db_device_free(&dev);
            return;
        }
    } else {
        /* the own endpoint asks again for each later block: the pack is
         * built again (the same bytes: generated credentials are stored on
         * the first), and only block 0 counts as the bootstrap */
        block = cudp_response_body(req, resp, cf, body, len);
        free(body);
        if (block < 0) { /* a block past the end (4.02), or it did not fit */
            if (coap_pdu_get_code(resp) == COAP_RESPONSE_CODE(205))
                cu_reply_error(resp, 5, 0, NULL);
            else
                metrics_coap(true, coap_pdu_get_code(resp));
            db_device_free(&dev);
            return;
        }
    }
    metrics_coap(true, LWM2M_CODE(2, 5));
    if (block > 0) { /* a later block of a pack already counted */
        db_device_free(&dev);
        return;
    }
    metrics_inc(MC_BS_PACKS);
    char *steps = NULL;
    json_t *arr = json_pack("[{s:s,s:s,s:s,s:I}]", "op", "pack", "path", "/bspack", "code", "2.05", "ms", (json_int_t)0);
    if (arr) {
        steps = json_dumps(arr, JSON_COMPACT);
        json_decref(arr);
    }
    record_result(bs, dev.id, true, steps);
    if (bs->cfg.events) { /* a whole bootstrap in one exchange */
        events_batch_add(&bs->evq, "bootstrap", dev.id, dev.endpoint, dev.domain,
                         json_pack("{s:s, s:s}", "status", "started", "mode", "pack"));
        events_batch_add(&bs->evq, "bootstrap-step", dev.id, dev.endpoint, dev.domain,
                         json_pack("{s:s, s:s, s:s}", "step", "pack", "path", "/bspack", "code", "2.05"));
        events_batch_add(&bs->evq, "bootstrap", dev.id, dev.endpoint, dev.domain,
                         json_pack("{s:s, s:s}", "status", "finished", "mode", "pack"));
    }
    LOGI("bootstrap", "ep=%s event=pack bytes=%zu format=%s", dev.endpoint, len, lwm2m_cf_name(cf));
    db_device_free(&dev);
}

static void hnd_bspack(coap_resource_t *r, coap_session_t *cs, const coap_pdu_t *req, const coap_string_t *query,
                       coap_pdu_t *resp)
{
    bs_server_t *bs = coap_resource_get_userdata(r);
    metrics_coap(false, COAP_REQUEST_CODE_GET);
    handshake_done(cs);
    if (!cu_is_local_port(cs, bs->cfg.coap_port) && !cu_is_local_port(cs, bs->cfg.coaps_port)) {
        cu_reply_error(resp, 4, 4, NULL);
        return;
    }
    on_bspack(bs, (bs_from_t){cs, NULL}, r, req, query, resp);
}

/* ------------------------------------------------------------ loop entries */
static bool on_answer(bs_server_t *bs, bs_from_t f, const coap_pdu_t *recv)
{
    bs_conn_t *c = conn_of(f);
    if (!c || c->srv != bs || !c->awaiting)
        return false;
    coap_bin_const_t tok = coap_pdu_get_token(recv);
    if (tok.length != sizeof c->token || memcmp(tok.s, c->token, sizeof c->token) != 0)
        return false;
    c->awaiting = false;
    int code = coap_pdu_get_code(recv);
    metrics_coap(false, code);
    int cf = LWM2M_CF_NONE;
    coap_opt_iterator_t it;
    coap_opt_t *o = coap_check_option(recv, COAP_OPTION_CONTENT_FORMAT, &it);
    if (o)
        cf = (int)coap_decode_var_bytes(coap_opt_value(o), coap_opt_length(o));
    size_t len = 0, off = 0, total = 0;
    const uint8_t *data = NULL;
    if (!coap_get_data_large(recv, &len, &data, &off, &total))
        len = 0, data = NULL;
    publish_step(bs, c, c->op_step, c->op_path, code, NULL); /* before the session's own events */
    bs_session_on_response(c->sess, code, cf, data, len, now_ms());
    return true;
}

static bool on_failure(bs_server_t *bs, bs_from_t f, int mid, const char *reason)
{
    bs_conn_t *c = conn_of(f);
    if (!c || c->srv != bs || !c->awaiting || c->mid != mid)
        return false;
    c->awaiting = false;
    publish_step(bs, c, c->op_step, c->op_path, 0, reason);
    bs_session_on_error(c->sess, reason, now_ms());
    return true;
}

bool bs_server_on_response(bs_server_t *bs, coap_session_t *cs, const coap_pdu_t *sent, const coap_pdu_t *recv)
{
    (void)sent;
    return on_answer(bs, (bs_from_t){cs, NULL}, recv);
}

bool bs_server_on_nack(bs_server_t *bs, coap_session_t *cs, int mid, const char *reason)
{
    return on_failure(bs, (bs_from_t){cs, NULL}, mid, reason);
}

void bs_server_udp_request(bs_server_t *bs, cudp_peer_t *p, const coap_pdu_t *req, coap_pdu_t *resp)
{
    coap_pdu_code_t code = coap_pdu_get_code(req);
    metrics_coap(false, code);
    bs_from_t f = {NULL, p};
    coap_string_t *path = coap_get_uri_path(req);
    bool is_bs = path && path->length == 2 && !memcmp(path->s, "bs", 2);
    bool is_pack = path && path->length == 6 && !memcmp(path->s, "bspack", 6);
    coap_delete_string(path);
    if (is_bs && code == COAP_REQUEST_CODE_POST) {
        coap_string_t *query = coap_get_query(req);
        on_bs(bs, f, req, query, resp);
        coap_delete_string(query);
    } else if (is_pack && code == COAP_REQUEST_CODE_GET) {
        on_bspack(bs, f, NULL, req, NULL, resp);
    } else {
        cu_reply_error(resp, 4, (is_bs || is_pack) ? 5 : 4, NULL);
    }
}

bool bs_server_udp_response(bs_server_t *bs, cudp_peer_t *p, const coap_pdu_t *recv)
{
    return on_answer(bs, (bs_from_t){NULL, p}, recv);
}

void bs_server_udp_nack(bs_server_t *bs, cudp_peer_t *p, coap_mid_t mid, const char *why)
{
    on_failure(bs, (bs_from_t){NULL, p}, mid, why);
}

void bs_server_on_session_closed(bs_server_t *bs, coap_session_t *cs)
{
    bs_conn_t *c = conn_of((bs_from_t){cs, NULL});
    if (!c || c->srv != bs || c->finished)
        return;
    c->awaiting = false;
    bs_session_on_error(c->sess, "connection closed", now_ms());
}

int bs_server_psk_lookup(bs_server_t *bs, const uint8_t *identity, size_t idlen, uint8_t *key, size_t keycap)
{
    db_device_t d = {0};
    if (db_device_get_by_bs_identity(bs->cfg.db, identity, idlen, &d) != 0)
        return -1;
    int n = -1;
    if (d.bs.security_mode == DB_SEC_PSK && d.bs.psk && d.bs.psk_len <= keycap && !d.blacklisted) {
        memcpy(key, d.bs.psk, d.bs.psk_len);
        n = (int)d.bs.psk_len;
    }
    db_device_free(&d);
    return n;
}

static void flush_results(bs_server_t *bs)
{
    if (bs->nresults)
        tx_begin(bs);
    for (size_t i = 0; i < bs->nresults; i++) {
        bs_result_t *r = &bs->results[i];
        int rc = db_device_set_bootstrap(bs->cfg.db, r->device_id, r->at_ms, r->ok ? "success" : "failed", r->steps);
        if (rc != 0)
            LOGE("bootstrap", "event=store-failed device_id=%lld sqlite=%d", (long long)r->device_id, rc);
        free(r->steps);
    }
    bs->nresults = 0;
    tx_commit(bs);
    events_batch_publish(bs->cfg.events, &bs->evq);
}

static void conn_free(bs_conn_t *c)
{
    timer_stop(c->srv->cfg.timers, &c->watchdog);
    if (c->http_id && c->srv->cfg.http)
        http_client_cancel(c->srv->cfg.http, c->http_id);
    if (c->cs) {
        if (coap_session_get_app_data(c->cs) == c)
            coap_session_set_app_data(c->cs, NULL);
        coap_session_release(c->cs);
    }
    if (c->up) {
        if (cudp_peer_app_data(c->up) == c)
            cudp_peer_set_app_data(c->up, NULL);
        cudp_peer_unref(c->up);
    }
    if (c->sess)
        release_tasks(c->srv, c->sess);
    bs_session_free(&c->sess);
    json_decref(c->sv);
    db_device_free(&c->dev);
    free(c);
}

void bs_server_after_io(bs_server_t *bs)
{
    int64_t now = now_ms();
    for (bs_conn_t *c = bs->conns; c; c = c->next) {
        if (c->pending_start && !c->finished) {
            c->pending_start = false;
            timer_start(bs->cfg.timers, &c->watchdog, now + (int64_t)bs->cfg.session_timeout_s * 1000);
            bs_session_start(c->sess, now);
        }
    }
    flush_results(bs);
    bs_conn_t **pp = &bs->conns;
    while (*pp) {
        bs_conn_t *c = *pp;
        if (c->finished) {
            *pp = c->next;
            conn_free(c);
        } else {
            pp = &c->next;
        }
    }
}


int bs_server_new(const bs_server_config_t *cfg, bs_server_t **out)
{
    bs_server_t *bs = calloc(1, sizeof *bs);
    if (!bs)
        return -1;
    bs->cfg = *cfg;
    bs->domain = strdup(cfg->domain ? cfg->domain : "/");
    bs->cfg.domain = bs->domain;
    bs->tcache.registry = cfg->registry;
    bs->io.send = io_send;
    bs->io.done = io_done;
    bs->io.server_records = io_server_records;
    bs->io.http = io_http;
    bs->io.task_start = io_task_start;
    bs->io.task_log = io_task_log;
    bs->io.task_done = io_task_done;
    bs->io.lookup = io_lookup;
    randombytes_buf(&bs->token_base, sizeof bs->token_base);
    coap_resource_t *r = coap_resource_init(coap_make_str_const("bs"), 0);
    coap_register_handler(r, COAP_REQUEST_POST, hnd_bs);
    coap_resource_set_userdata(r, bs);
    coap_add_resource(cfg->coap, r);
    coap_resource_t *p = coap_resource_init(coap_make_str_const("bspack"), 0);
    coap_register_handler(p, COAP_REQUEST_GET, hnd_bspack);
    coap_resource_set_userdata(p, bs);
    coap_add_resource(cfg->coap, p);
    *out = bs;
    return 0;
}

void bs_server_free(bs_server_t **bsp)
{
    bs_server_t *bs = bsp ? *bsp : NULL;
    if (!bs)
        return;
    while (bs->handshakes)
        handshake_release(bs->handshakes);
    bs_provision_cancel_all(bs->cfg.http);
    for (bs_conn_t *c = bs->conns; c; c = c->next)
        if (!c->finished)
            bs_session_cancel(c->sess, "server shutting down", now_ms());
    flush_results(bs);
    while (bs->conns) {
        bs_conn_t *c = bs->conns;
        bs->conns = c->next;
        conn_free(c);
    }
    free(bs->results);
    events_batch_clear(&bs->evq);
    task_cache_clear(&bs->tcache);
    drop_cfg(bs);
    free(bs->domain);
    free(bs);
    *bsp = NULL;
}
