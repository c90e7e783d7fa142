/* Bootstrap session; see bs_session.h for the diagram.
 *
 * Transition table (state, event -> next state, function):
 *   NEW,  start                     -> RUN      bs_session_start (first task runs)
 *   RUN,  answer, task continues    -> RUN      bs_session_on_response / on_http
 *   RUN,  task ends SUCCESS/WARNING/IN_PROGRESS -> RUN (next task) | DONE | FAILED  next_task
 *   RUN,  task ends ERROR           -> FAILED
 *   *,    error/timeout/cancel      -> FAILED   bs_session_on_error / cancel
 */
#include "server/bootstrap/bs_session.h"

#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/common/log.h"
#include "server/lwm2m/codec.h"

struct bs_session {
    const bs_session_io_t *io;
    void *io_ctx;
    void *user;
    const struct lwm2m_registry *reg;
    char *endpoint;
    int64_t device_id;
    bs_state_t state;
    task_bs_view_t view;
    bs_task_t *tasks;
    size_t ntasks, cur;
    task_runner_t *runner;       /* of tasks[cur] */
    task_host_t host;
    /* the CoAP request outstanding, for the step record */
    tr_op_kind_t op_kind;
    lwm2m_path_t op_path;
    int op_cf;
    bool op_inflight, http_inflight;
    int64_t started_ms, now_ms;
    char *steps;                 /* the step record: a JSON array's items, "{...},{...}" */
    size_t steps_len, steps_cap;
    bool steps_lost;             /* out of memory once: the record is "[]" */
    char reason[600];
};

static void assert_bs_session(const bs_session_t *s)
{
    assert(s->state <= BS_FAILED);
    assert(!(s->op_inflight && s->http_inflight));
    assert(s->state == BS_RUN || (!s->op_inflight && !s->http_inflight));
    (void)s;
}

/* ------------------------------------------------------------ step record */
static void code_str(int code, char out[8])
{
    if (code <= 0)
        snprintf(out, 8, "-");
    else
        snprintf(out, 8, "%d.%02d", (code >> 5) & 7, code & 31);
}

static const char *op_step_name(tr_op_kind_t k)
{
    static const char *const n[] = {"discover", "read", "write", "delete", "finish", "execute", "http"};
    return (unsigned)k < 7 ? n[k] : "?";
}

/* Appends text to the step record (dropped when memory runs out). */
static void steps_put(bs_session_t *s, const char *text, size_t n)
{
    if (s->steps_len + n + 1 > s->steps_cap) {
        size_t cap = s->steps_cap ? s->steps_cap : 512;
        while (s->steps_len + n + 1 > cap)
            cap *= 2;
        char *b = realloc(s->steps, cap);
        if (!b) {
            s->steps_lost = true;
            return;
        }
        s->steps = b;
        s->steps_cap = cap;
    }
    memcpy(s->steps + s->steps_len, text, n);
    s->steps_len += n;
    s->steps[s->steps_len] = 0;
}

/* Appends `,"key":"value"` with value as a JSON string. Values that need no
 * escaping (the usual paths, codes, format names) are copied; others go
 * through jansson (which also refuses invalid UTF-8: then "?"). */
static void steps_put_str(bs_session_t *s, const char *key, const char *value)
{
    char head[40];
    int hn = snprintf(head, sizeof head, ",\"%s\":", key);
    steps_put(s, head, (size_t)hn);
    bool plain = true;
    for (const unsigned char *c = (const unsigned char *)value; *c && plain; c++)
        plain = *c >= 0x20 && *c < 0x7f && *c != '"' && *c != '\\';
    if (plain) {
        steps_put(s, "\"", 1);
        steps_put(s, value, strlen(value));
        steps_put(s, "\"", 1);
        return;
    }
    json_t *j = json_string(value);
    char *t = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    if (t)
        steps_put(s, t, strlen(t));
    else
        steps_put(s, "\"?\"", 3);
    free(t);
}

/* One step: {"op","path","code","ms"[,"format"][,"detail"]}. */
static void put_step(bs_session_t *s, const char *op, const char *path, const char *code, int64_t ms, int cf,
                     const char *detail)
{
    if (s->steps_len)
        steps_put(s, ",", 1);
    steps_put(s, "{\"op\":\"", sizeof "{\"op\":\"" - 1);
    steps_put(s, op, strlen(op)); /* our own names */
    steps_put(s, "\"", 1);
    steps_put_str(s, "path", path);
    steps_put_str(s, "code", code);
    char msb[40];
    int mn = snprintf(msb, sizeof msb, ",\"ms\":%lld", (long long)ms);
    steps_put(s, msb, (size_t)mn);
    if (cf != LWM2M_CF_NONE)
        steps_put_str(s, "format", lwm2m_cf_name(cf));
    if (detail && *detail)
        steps_put_str(s, "detail", detail);
    steps_put(s, "}", 1);
}

static void add_step(bs_session_t *s, const char *op, const lwm2m_path_t *path, int cf, int code, const char *detail)
{
    char p[64] = "/bs", c[8];
    if (path)
        lwm2m_path_format(path, p, sizeof p);
    code_str(code, c);
    put_step(s, op, p, c, s->now_ms - s->started_ms, cf, detail);
    LOGD("bootstrap", "ep=%s op=%s path=%s code=%s%s%s", s->endpoint, op, p, c, detail ? " detail=" : "",
         detail ? detail : "");
}

void bs_session_note_request(bs_session_t *s, const char *uri, int code)
{
    char c[8];
    code_str(code, c);
    put_step(s, "request", uri ? uri : "/bs", c, 0, LWM2M_CF_NONE, NULL);
}

/* ---------------------------------------------------------------- ending */
static void finish(bs_session_t *s, bool ok, const char *reason)
{
    if (s->state == BS_DONE || s->state == BS_FAILED)
        return;
    s->state = ok ? BS_DONE : BS_FAILED;
    s->op_inflight = s->http_inflight = false;
    snprintf(s->reason, sizeof s->reason, "%s", ok ? "" : (reason ? reason : "failed"));
    if (ok)
        LOGI("bootstrap", "ep=%s event=finished result=success", s->endpoint);
    else
        LOGW("bootstrap", "ep=%s event=finished result=failed reason=\"%s\"", s->endpoint, s->reason);
    if (s->io->done)
        s->io->done(s->io_ctx, s);
}

/* Ends the current task's bookkeeping (report) and frees its runner. */
static void close_task(bs_session_t *s)
{
    if (!s->runner)
        return;
    bs_task_t *t = &s->tasks[s->cur];
    t->ran = true;
    t->status = task_runner_status(s->runner);
    snprintf(t->summary, sizeof t->summary, "%s", task_runner_summary(s->runner));
    free(t->vars_json);
    t->vars_json = task_runner_vars_json(s->runner);
    task_runner_free(&s->runner);
    if (s->io->task_done)
        s->io->task_done(s->io_ctx, s, t);
}

static void next_task(bs_session_t *s);

/* After the runner ran: waiting, or its task ended. */
static void after_runner(bs_session_t *s)
{
    if (!s->runner || task_runner_state(s->runner) != TR_DONE)
        return;
    tr_status_t st = task_runner_status(s->runner);
    char summary[384];
    snprintf(summary, sizeof summary, "%s", task_runner_summary(s->runner));
    bs_task_t *t = &s->tasks[s->cur];
    close_task(s);
    if (s->state != BS_RUN)
        return;
    if (st == TR_ERROR) {
        char why[600];
        snprintf(why, sizeof why, "task '%.120s': %.380s", t->name, summary);
        finish(s, false, why);
        return;
    }
    s->cur++;
    next_task(s);
}

static void next_task(bs_session_t *s)
{
    while (s->state == BS_RUN) {
        if (s->view.finished) {
            /* the client left bootstrap: later tasks wait for its next session */
            finish(s, true, NULL);
            return;
        }
        if (s->cur >= s->ntasks) {
            finish(s, false, s->ntasks ? "no task sent Bootstrap-Finish" : "no task to run for this device");
            return;
        }
        bs_task_t *t = &s->tasks[s->cur];
        const char *vars = t->vars_json;
        s->runner = task_runner_new(t->prog, s->reg, &s->host, s, TR_SESSION_BOOTSTRAP, &s->view, vars);
        if (!s->runner) {
            finish(s, false, "out of memory");
            return;
        }
        if (s->io->task_start)
            s->io->task_start(s->io_ctx, s, t);
        LOGD("bootstrap", "ep=%s event=task-start task=\"%s\"", s->endpoint, t->name);
        task_runner_run(s->runner);
        if (s->runner && task_runner_state(s->runner) == TR_WAITING)
            return;
        after_runner(s);
        return;
    }
}

/* ------------------------------------------------------------ runner host */
static int method_of(tr_op_kind_t k)
{
    switch (k) {
    case TR_OP_DISCOVER: case TR_OP_READ: return BS_GET;
    case TR_OP_DELETE: return BS_DELETE;
    case TR_OP_WRITE: return BS_PUT;
    default: return BS_POST;
    }
}

static int h_start_op(void *ctx, task_runner_t *r, const tr_op_t *op)
{
    bs_session_t *s = ctx;
    (void)r;
    if (op->kind == TR_OP_HTTP) {
        if (!s->io->http || s->io->http(s->io_ctx, s, op) != 0)
            return -1;
        s->http_inflight = true;
        return 0;
    }
    if (op->kind == TR_OP_EXECUTE)
        return -1; /* not on a bootstrap session (the runner defers it) */
    int accept = op->kind == TR_OP_DISCOVER ? LWM2M_CF_LINK : LWM2M_CF_NONE;
    int rc = s->io->send(s->io_ctx, s, method_of(op->kind), op->kind == TR_OP_FINISH ? NULL : &op->path,
                         op->payload ? op->cf : LWM2M_CF_NONE, accept, op->payload, op->len);
    if (rc != 0)
        return -1;
    s->op_inflight = true;
    s->op_kind = op->kind;
    s->op_path = op->path;
    s->op_cf = op->payload ? op->cf : LWM2M_CF_NONE;
    return 0;
}

static int h_lookup(void *ctx, const char *name, expr_value_t *out)
{
    bs_session_t *s = ctx;
    if (!strcmp(name, "lwm2m.bootstrapEvent"))
        return expr_value_set_string(out, "true", 4) == 0 ? 1 : -1;
    if (!strcmp(name, "lwm2m.registerEvent"))
        return expr_value_set_string(out, "false", 5) == 0 ? 1 : -1;
    return s->io->lookup ? s->io->lookup(s->io_ctx, s, name, out) : 0;
}

static int h_server_records(void *ctx, const char *ref, bool by_name, int sec_iid, int srv_iid, lwm2m_records_t *out,
                            bool *is_bs, char *err, size_t errlen)
{
    bs_session_t *s = ctx;
    if (!s->io->server_records) {
        snprintf(err, errlen, "no LwM2M server configuration available");
        return -1;
    }
    return s->io->server_records(s->io_ctx, s, ref, by_name, sec_iid, srv_iid, out, is_bs, err, errlen);
}

static int h_set_property(void *ctx, const char *name, const char *value, char *err, size_t errlen)
{
    bs_session_t *s = ctx;
    if (!s->io->set_property) {
        snprintf(err, errlen, "not supported");
        return -1;
    }
    return s->io->set_property(s->io_ctx, s, name, value, err, errlen);
}

static int h_group(void *ctx, const char *group, bool join, char *err, size_t errlen)
{
    bs_session_t *s = ctx;
    if (!s->io->group) {
        snprintf(err, errlen, "not supported");
        return -1;
    }
    return s->io->group(s->io_ctx, s, group, join, err, errlen);
}

static void h_log(void *ctx, task_runner_t *r, const char *level, const char *step, const char *sent,
                  const char *received, int code, const char *message)
{
    bs_session_t *s = ctx;
    (void)r;
    if (s->io->task_log && s->cur < s->ntasks)
        s->io->task_log(s->io_ctx, s, &s->tasks[s->cur], level, step, sent, received, code, message);
}

/* ------------------------------------------------------------- lifecycle */
bs_session_t *bs_session_new(const bs_session_io_t *io, void *io_ctx, const char *endpoint, int64_t device_id, int pct,
                             const struct lwm2m_registry *reg, int64_t now_ms)
{
    bs_session_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->endpoint = strdup(endpoint ? endpoint : "");
    if (!s->endpoint) {
        free(s);
        return NULL;
    }
    s->io = io;
    s->io_ctx = io_ctx;
    s->reg = reg;
    s->device_id = device_id;
    s->started_ms = s->now_ms = now_ms;
    s->state = BS_NEW;
    task_bs_view_init(&s->view, pct);
    s->host = (task_host_t){h_start_op, h_lookup, h_server_records, h_set_property, h_group, h_log};
    return s;
}

void bs_session_free(bs_session_t **sp)
{
    bs_session_t *s = sp ? *sp : NULL;
    if (!s)
        return;
    task_runner_free(&s->runner);
    for (size_t i = 0; i < s->ntasks; i++)
        free(s->tasks[i].vars_json);
    free(s->tasks);
    free(s->steps);
    free(s->endpoint);
    free(s);
    *sp = NULL;
}

int bs_session_add_task(bs_session_t *s, const task_program_t *prog, int64_t task_id, const char *name,
                        const char *vars_json, void *owner)
{
    if (s->state != BS_NEW)
        return -1;
    bs_task_t *nt = realloc(s->tasks, (s->ntasks + 1) * sizeof *nt);
    if (!nt)
        return -1;
    s->tasks = nt;
    bs_task_t *t = &s->tasks[s->ntasks];
    memset(t, 0, sizeof *t);
    t->prog = prog;
    t->task_id = task_id;
    t->owner = owner;
    snprintf(t->name, sizeof t->name, "%s", name ? name : "");
    if (vars_json && !(t->vars_json = strdup(vars_json)))
        return -1;
    s->ntasks++;
    return 0;
}

size_t bs_session_task_count(const bs_session_t *s) { return s->ntasks; }
bs_task_t *bs_session_task(bs_session_t *s, size_t i) { return i < s->ntasks ? &s->tasks[i] : NULL; }

void bs_session_start(bs_session_t *s, int64_t now_ms)
{
    if (s->state != BS_NEW)
        return;
    s->now_ms = now_ms;
    s->state = BS_RUN;
    LOGD("bootstrap", "ep=%s event=start pct=%d tasks=%zu", s->endpoint, s->view.pct, s->ntasks);
    next_task(s);
    assert_bs_session(s);
}

void bs_session_on_response(bs_session_t *s, int code, int cf, const uint8_t *payload, size_t len, int64_t now_ms)
{
    if (s->state != BS_RUN || !s->op_inflight || !s->runner)
        return;
    s->now_ms = now_ms;
    s->op_inflight = false;
    add_step(s, op_step_name(s->op_kind), s->op_kind == TR_OP_FINISH ? NULL : &s->op_path,
             s->op_kind == TR_OP_WRITE ? s->op_cf : LWM2M_CF_NONE, code, NULL);
    task_runner_resume(s->runner, code, cf, payload, len, NULL);
    after_runner(s);
    assert_bs_session(s);
}

void bs_session_on_http(bs_session_t *s, int status, const uint8_t *body, size_t len, const char *error, int64_t now_ms)
{
    if (s->state != BS_RUN || !s->http_inflight || !s->runner)
        return;
    s->now_ms = now_ms;
    s->http_inflight = false;
    task_runner_resume(s->runner, status, LWM2M_CF_NONE, body, len, error);
    after_runner(s);
    assert_bs_session(s);
}

void bs_session_on_error(bs_session_t *s, const char *reason, int64_t now_ms)
{
    if (bs_session_finished(s))
        return;
    s->now_ms = now_ms;
    if (s->op_inflight)
        add_step(s, op_step_name(s->op_kind), s->op_kind == TR_OP_FINISH ? NULL : &s->op_path, LWM2M_CF_NONE, 0,
                 reason);
    char why[384];
    snprintf(why, sizeof why, "%s: %s",
             s->op_inflight ? op_step_name(s->op_kind) : s->http_inflight ? "http" : "session",
             reason ? reason : "error");
    s->op_inflight = s->http_inflight = false;
    if (s->runner) {
        task_runner_abort(s->runner, why);
        close_task(s);
    }
    finish(s, false, why);
}

void bs_session_cancel(bs_session_t *s, const char *reason, int64_t now_ms)
{
    if (bs_session_finished(s))
        return;
    s->now_ms = now_ms;
    s->op_inflight = s->http_inflight = false;
    if (s->runner) {
        task_runner_abort(s->runner, reason ? reason : "cancelled");
        close_task(s);
    }
    finish(s, false, reason ? reason : "cancelled");
}

bs_state_t bs_session_state(const bs_session_t *s) { return s->state; }
bool bs_session_finished(const bs_session_t *s) { return s->state == BS_DONE || s->state == BS_FAILED; }
bool bs_session_succeeded(const bs_session_t *s) { return s->state == BS_DONE; }
bool bs_session_awaiting_http(const bs_session_t *s) { return s->http_inflight; }
const char *bs_session_reason(const bs_session_t *s) { return s->reason; }
const char *bs_session_endpoint(const bs_session_t *s) { return s->endpoint; }
int64_t bs_session_device_id(const bs_session_t *s) { return s->device_id; }
int64_t bs_session_started_ms(const bs_session_t *s) { return s->started_ms; }
const task_bs_view_t *bs_session_view(const bs_session_t *s) { return &s->view; }
void bs_session_set_user(bs_session_t *s, void *user) { s->user = user; }
void *bs_session_user(const bs_session_t *s) { return s->user; }

char *bs_session_steps_json(const bs_session_t *s)
{
    if (s->steps_lost)
        return strdup("[]");
    char *out = malloc(s->steps_len + 3);
    if (!out)
        return NULL;
    out[0] = '[';
    if (s->steps_len)
        memcpy(out + 1, s->steps, s->steps_len);
    out[s->steps_len + 1] = ']';
    out[s->steps_len + 2] = 0;
    return out;
}
