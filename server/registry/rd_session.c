/* Management sessions (TASKS.md "When a task runs"): what follows a Register
 * or an Update once its answer has left — observations re-established
 * (after a Register), requests waiting in the queue, and the device's pending
 * tasks, run one after another by the task runner (server/tasks/runner.h).
 *
 *   rd_session_start -> candidates (db) -> runs queued by priority
 *   run: task_runner_run -> start_op -> rd_request -> op_done -> task_runner_resume ...
 *   run DONE -> report finished -> next run -> ... -> session freed
 *
 * A run resumed from IN_PROGRESS (a deferred execute from bootstrap, a
 * <wait>) continues in its existing report; a new run starts a new one. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "server/common/events.h"
#include "server/common/log.h"
#include "server/common/metrics.h"
#include "server/http_client.h"
#include "server/lwm2m/lwm2m.h"
#include "server/registry/rd_int.h"
#include "server/task_cache.h"
#include "server/tasks/runner.h"
#include "server/tasks/scheduler.h"

typedef struct mrun {
    struct mrun *next;
    task_prog_t *pe;
    int64_t task_id;
    char *task_name;
    int64_t report_id;
    char *vars;                   /* resume point (IN_PROGRESS report), or NULL */
} mrun_t;

typedef struct msess {
    rd_t *rd;
    rd_reg_t *r;
    db_device_t dev;
    json_t *sv;
    bool sv_loaded;
    bool is_register;
    task_session_view_t view;
    mrun_t *runs;                 /* waiting, in order */
    mrun_t *cur;
    task_runner_t *runner;
    uint64_t http_id;
    bool op_pending;              /* a request to the device is outstanding */
    char obs_query[200];          /* OBSERVE with attributes: the Observe after the Write-Attributes */
    lwm2m_path_t obs_path;
    bool obs_second;
} msess_t;

static task_cache_t *cache(rd_t *rd)
{
    if (!rd->task_cache) {
        task_cache_t *tc = calloc(1, sizeof *tc);
        if (tc)
            tc->registry = rd->cfg.registry;
        rd->task_cache = tc;
    }
    return rd->task_cache;
}


static void run_free(rd_t *rd, mrun_t *m)
{
    task_cache_release(cache(rd), m->pe);
    free(m->task_name);
    free(m->vars);
    free(m);
}

static void publish_status(msess_t *s, mrun_t *m, const char *status, const char *summary)
{
    rd_publish(s->rd, s->r, 0, NULL, "task-status",
               json_pack("{s:I,s:s,s:I,s:s,s:s,s:s}", "taskId", (json_int_t)m->task_id, "taskName", m->task_name,
                         "reportId", (json_int_t)m->report_id, "status", status, "summary", summary ? summary : "",
                         "session", "management"));
}

static void next_run(msess_t *s);

static void session_free(msess_t *s)
{
    rd_t *rd = s->rd;
    if (s->runner)
        task_runner_free(&s->runner);
    if (s->http_id)
        http_client_cancel(rd->cfg.http, s->http_id);
    if (s->cur)
        run_free(rd, s->cur);
    while (s->runs) {
        mrun_t *m = s->runs;
        s->runs = m->next;
        run_free(rd, m);
    }
    json_decref(s->sv);
    db_device_free(&s->dev);
    if (s->r && s->r->tasks == s)
        s->r->tasks = NULL;
    free(s);
}

/* The current run ended (DONE): write its report, go on. */
static void run_done(msess_t *s)
{
    rd_t *rd = s->rd;
    mrun_t *m = s->cur;
    tr_status_t st = task_runner_status(s->runner);
    const char *summary = task_runner_summary(s->runner);
    char *vars = task_runner_vars_json(s->runner);
    LOGI("tasks", "ep=%s task=\"%s\" event=task-%s session=management summary=\"%s\"", s->r->endpoint, m->task_name,
         tr_status_name(st), summary);
    metrics_inc(st == TR_SUCCESS ? MC_TASK_SUCCESS : st == TR_WARNING ? MC_TASK_WARNING
                : st == TR_ERROR ? MC_TASK_ERROR : MC_TASK_IN_PROGRESS);
    if (m->report_id) {
        rd_tx(rd);
        db_report_finish(rd->cfg.db, m->report_id, tr_status_name(st), summary, vars, db_now_ms());
    }
    publish_status(s, m, tr_status_name(st), summary);
    free(vars);
    task_runner_free(&s->runner);
    run_free(rd, m);
    s->cur = NULL;
    next_run(s);
}

static void drive(msess_t *s)
{
    if (task_runner_state(s->runner) == TR_DONE)
        run_done(s);
}

/* ------------------------------------------------------------- host vtable */
static void op_done(rd_t *rd, rd_reg_t *r, void *user, int code, int cf, const uint8_t *payload, size_t len,
                    const coap_pdu_t *resp, const char *err)
{
    (void)rd;
    msess_t *s = user;
    s->op_pending = false;
    if (!s->runner)
        return;
    if (!code && r && r->queue_mode && err && strcmp(err, "timeout") != 0) {
        /* a queue-mode device fell asleep: continue in its next session */
        task_runner_suspend(s->runner, "the device went to sleep");
        drive(s);
        return;
    }
    if (s->obs_second == false && s->obs_query[0] && code && (code >> 5) == 2) {
        /* Write-Attributes done: now the Observe */
        s->obs_second = true;
        s->obs_query[0] = 0;
        rd_req_spec_t sp = {.method = COAP_REQUEST_CODE_GET,
                            .path = s->obs_path,
                            .cf = LWM2M_CF_NONE,
                            .accept = r->version >= LWM2M_V1_1 ? rd_preferred_format(r) : LWM2M_CF_NONE,
                            .observe = 0};
        s->op_pending = rd_request(s->rd, r, &sp, op_done, s, NULL) == 0;
        if (!s->op_pending) {
            task_runner_resume(s->runner, 0, LWM2M_CF_NONE, NULL, 0, "could not send the Observe");
            drive(s);
        }
        return;
    }
    if (s->obs_second && code == LWM2M_CODE(2, 5))
        rd_obs_established(s->rd, r, &s->obs_path, resp, NULL);
    s->obs_second = false;
    s->obs_query[0] = 0;
    task_runner_resume(s->runner, code, cf, payload, len, code ? NULL : (err ? err : "no answer"));
    drive(s);
}

static void http_done(void *ud, int status, const uint8_t *body, size_t len, const char *error)
{
    msess_t *s = ud;
    s->http_id = 0;
    if (!s->runner)
        return;
    task_runner_resume(s->runner, status, LWM2M_CF_NONE, body, len, error);
    drive(s);
}

static int host_start_op(void *host, task_runner_t *tr, const tr_op_t *op)
{
    (void)tr;
    msess_t *s = host;
    rd_reg_t *r = s->r;
    if (op->kind == TR_OP_HTTP) {
        http_header_t hs[16];
        size_t nh = op->nheaders < 16 ? op->nheaders : 16;
        for (size_t i = 0; i < nh; i++)
            hs[i] = (http_header_t){op->headers[i].name, op->headers[i].value};
        http_request_t rq = {op->method, op->url, op->body, op->content_type, op->user, op->pass, hs, nh, op->timeout_s};
        return http_client_start(s->rd->cfg.http, &rq, http_done, s, &s->http_id);
    }
    rd_req_spec_t sp = {.path = op->path, .cf = LWM2M_CF_NONE, .accept = LWM2M_CF_NONE, .observe = -1};
    switch (op->kind) {
    case TR_OP_READ:
        sp.method = COAP_REQUEST_CODE_GET;
        if (r->version >= LWM2M_V1_1)
            sp.accept = rd_preferred_format(r);
        break;
    case TR_OP_WRITE:
        sp.method = op->partial ? COAP_REQUEST_CODE_POST : COAP_REQUEST_CODE_PUT;
        sp.cf = op->cf;
        sp.payload = op->payload;
        sp.len = op->len;
        break;
    case TR_OP_DELETE:
        sp.method = COAP_REQUEST_CODE_DELETE;
        break;
    case TR_OP_EXECUTE:
    case TR_OP_CREATE:
        sp.method = COAP_REQUEST_CODE_POST;
        sp.cf = op->len ? op->cf : LWM2M_CF_NONE;
        sp.payload = op->payload;
        sp.len = op->len;
        break;
    case TR_OP_WRITE_ATTRIBUTES:
        sp.method = COAP_REQUEST_CODE_PUT;
        sp.query = op->query;
        break;
    case TR_OP_OBSERVE:
        s->obs_path = op->path;
        s->obs_second = !op->query;
        if (op->query) {
            snprintf(s->obs_query, sizeof s->obs_query, "%s", op->query);
            sp.method = COAP_REQUEST_CODE_PUT;
            sp.query = op->query;
        } else {
            sp.method = COAP_REQUEST_CODE_GET;
            sp.observe = 0;
            if (r->version >= LWM2M_V1_1)
                sp.accept = rd_preferred_format(r);
        }
        break;
    default:
        return -1; /* bootstrap operations never reach a management host */
    }
    sp.keep_when_asleep = false;
    sp.timeout_ms = 30000;
    if (rd_request(s->rd, r, &sp, op_done, s, NULL) != 0)
        return -1;
    s->op_pending = true;
    return 0;
}

static int host_lookup(void *host, const char *name, expr_value_t *out)
{
    msess_t *s = host;
    task_ctx_t c = {s->rd->cfg.db, &s->dev, &s->sv, &s->sv_loaded, NULL, false, s->is_register};
    return task_ctx_lookup(&c, name, out);
}

static int host_server_records(void *host, const char *ref, bool by_name, int sec_iid, int srv_iid,
                               lwm2m_records_t *out, bool *is_bs, char *err, size_t errlen)
{
    (void)host, (void)ref, (void)by_name, (void)sec_iid, (void)srv_iid, (void)out, (void)is_bs;
    snprintf(err, errlen, "server configuration is a bootstrap step");
    return -1;
}

static int host_set_property(void *host, const char *name, const char *value, char *err, size_t errlen)
{
    msess_t *s = host;
    json_t *props = json_loads(s->dev.properties_json ? s->dev.properties_json : "{}", 0, NULL);
    if (!json_is_object(props)) {
        json_decref(props);
        props = json_object();
    }
    json_object_set_new(props, name, json_string(value));
    char *text = json_dumps(props, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(props);
    if (!text) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    free(s->dev.properties_json);
    s->dev.properties_json = text;
    rd_tx(s->rd);
    if (db_device_update(s->rd->cfg.db, &s->dev) != 0) {
        snprintf(err, errlen, "could not store the device property");
        return -1;
    }
    return 0;
}

static int host_group(void *host, const char *group, bool join, char *err, size_t errlen)
{
    msess_t *s = host;
    int64_t gid = 0;
    if (db_group_find_by_name(s->rd->cfg.db, s->dev.domain, group, &gid) != 0) {
        snprintf(err, errlen, "no group named '%.64s'", group);
        return -1;
    }
    rd_tx(s->rd);
    int rc = join ? db_group_join(s->rd->cfg.db, gid, s->dev.id) : db_group_leave(s->rd->cfg.db, gid, s->dev.id);
    if (rc != 0) {
        snprintf(err, errlen, "could not %s group '%.64s'", join ? "join" : "leave", group);
        return -1;
    }
    return 0;
}

static void host_log(void *host, task_runner_t *tr, const char *level, const char *step, const char *sent,
                     const char *received, int code, const char *message)
{
    (void)tr;
    (void)code;
    msess_t *s = host;
    if (!s->cur || !s->cur->report_id)
        return;
    rd_tx(s->rd);
    db_report_log(s->rd->cfg.db, s->cur->report_id, db_now_ms(), level, step, sent, received, NULL, message);
}

static const task_host_t k_host = {host_start_op, host_lookup, host_server_records, host_set_property, host_group,
                                   host_log};

/* Starts the next waiting run; frees the session when none is left. */
static void next_run(msess_t *s)
{
    rd_t *rd = s->rd;
    while (!s->cur && s->runs) {
        mrun_t *m = s->runs;
        s->runs = m->next;
        m->next = NULL;
        s->cur = m;
        rd_tx(rd);
        if (!m->vars) {
            if (db_report_start(rd->cfg.db, m->task_id, s->dev.id, "management", db_now_ms(), &m->report_id) != 0)
                m->report_id = 0;
        } else {
            db_report_log(rd->cfg.db, m->report_id, db_now_ms(), "info", "", NULL, NULL, NULL,
                          s->is_register ? "resumed on registration" : "resumed on update");
        }
        publish_status(s, m, "IN_PROGRESS", "");
        s->runner = task_runner_new(m->pe->prog, rd->cfg.registry, &k_host, s, TR_SESSION_MANAGEMENT, &s->view,
                                    m->vars);
        if (!s->runner) {
            run_free(rd, m);
            s->cur = NULL;
            continue;
        }
        task_runner_set_now(s->runner, db_now_ms());
        task_runner_run(s->runner);
        if (task_runner_state(s->runner) == TR_DONE)
            run_done(s); /* re-enters next_run for the following one */
        return;
    }
    if (!s->cur && !s->runs)
        session_free(s);
}

void rd_session_start(rd_t *rd, rd_reg_t *r, bool is_register)
{
    if (is_register || r->obs_restore)
        rd_obs_restore(rd, r);
    r->obs_restore = false;
    rd_requests_flush(rd, r);
    if (r->tasks)
        return; /* a session's runs are still going: they carry on */
    /* Most Updates of a fleet find no task to run: while nothing that could
     * change that was committed (db_tasks_generation), skip the lookup. */
    uint64_t gen = db_tasks_generation();
    if (r->idle_tasks_gen == gen)
        return;
    msess_t *s = calloc(1, sizeof *s);
    if (!s)
        return;
    s->rd = rd;
    s->r = r;
    s->is_register = is_register;
    if (db_device_get(rd->cfg.db, r->device_id, &s->dev) != 0) {
        free(s);
        return;
    }
    int ct = r->ncf ? rd_preferred_format(r) : LWM2M_CF_NONE;
    task_view_init_management(&s->view, ct, r->version);
    db_task_candidate_t *cands = NULL;
    size_t n = 0;
    if (db_device_task_candidates(rd->cfg.db, r->device_id, &cands, &n) != 0) {
        session_free(s);
        return;
    }
    int64_t now = db_now_ms();
    mrun_t **tail = &s->runs;
    /* idle: no candidate could ever run here - none is half-way (IN_PROGRESS
     * resumes where it stopped) and no program has a step for management
     * sessions. Unlike the scheduler's rules, that does not change with time. */
    bool idle = true;
    for (size_t i = 0; i < n; i++) {
        const db_task_t *t = &cands[i].task;
        sched_task_t st = task_sched_settings(t);
        sched_report_t rep = sched_report_parse(cands[i].status[0] ? cands[i].status : NULL);
        char err[320];
        task_prog_t *pe = task_cache_get(cache(rd), t, err, sizeof err);
        if (rep == SCHED_REPORT_IN_PROGRESS || (pe && task_runs_in(pe->prog, TR_SESSION_MANAGEMENT)))
            idle = false;
        /* cheap rules first (fits and condition assumed) */
        sched_decision_t d = sched_decide_in(&st, rep, cands[i].started_at, is_register ? SCHED_REGISTER : SCHED_UPDATE,
                                             now, true, true);
        if (d != SCHED_RUN) {
            task_cache_release(cache(rd), pe);
            continue;
        }
        if (!pe) {
            LOGE("tasks", "ep=%s task_id=%" PRId64 " event=invalid-config reason=\"%s\"", r->endpoint, t->id, err);
            continue;
        }
        char *vars = NULL;
        if (rep == SCHED_REPORT_IN_PROGRESS && cands[i].report_id) {
            db_report_t rp;
            if (db_report_get(rd->cfg.db, cands[i].report_id, &rp) == 0) {
                vars = rp.variables_json ? strdup(rp.variables_json) : NULL;
                db_report_free(&rp);
            }
        }
        bool fits = task_resume_runs_in(pe->prog, vars, TR_SESSION_MANAGEMENT);
        bool cond = rep == SCHED_REPORT_IN_PROGRESS ||
                    task_condition_holds(pe, &(task_ctx_t){rd->cfg.db, &s->dev, &s->sv, &s->sv_loaded, t, false,
                                                           is_register});
        d = sched_decide_in(&st, rep, cands[i].started_at, is_register ? SCHED_REGISTER : SCHED_UPDATE, now, fits,
                            cond);
        if (d != SCHED_RUN) {
            LOGD("tasks", "ep=%s task_id=%" PRId64 " event=skipped session=management reason=\"%s\"", r->endpoint,
                 t->id, sched_decision_name(d));
            task_cache_release(cache(rd), pe);
            free(vars);
            continue;
        }
        mrun_t *m = calloc(1, sizeof *m);
        if (!m) {
            task_cache_release(cache(rd), pe);
            free(vars);
            continue;
        }
        m->pe = pe;
        m->task_id = t->id;
        m->task_name = strdup(t->name ? t->name : "");
        m->report_id = vars ? cands[i].report_id : 0;
        m->vars = vars;
        *tail = m;
        tail = &m->next;
    }
    db_task_candidates_free(&cands, n);
    if (idle)
        r->idle_tasks_gen = gen;
    if (!s->runs) {
        session_free(s);
        return;
    }
    r->tasks = s;
    next_run(s);
}

void rd_tasks_abort(rd_t *rd, rd_reg_t *r, const char *why)
{
    msess_t *s = r->tasks;
    if (!s)
        return;
    if (s->runner && task_runner_state(s->runner) != TR_DONE) {
        task_runner_suspend(s->runner, why);
        mrun_t *m = s->cur;
        char *vars = task_runner_vars_json(s->runner);
        if (m && m->report_id) {
            rd_tx(rd);
            db_report_finish(rd->cfg.db, m->report_id, tr_status_name(task_runner_status(s->runner)),
                             task_runner_summary(s->runner), vars, db_now_ms());
        }
        free(vars);
    }
    s->r = NULL;
    r->tasks = NULL;
    session_free(s);
}

void rd_tasks_cache_free(rd_t *rd)
{
    if (!rd->task_cache)
        return;
    task_cache_clear(rd->task_cache);
    free(rd->task_cache);
    rd->task_cache = NULL;
}
