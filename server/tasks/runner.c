/* Task runner; see runner.h for the state diagram and "Resuming".
 *
 * Execution model: a stack of frames (steps array + program counter). A step
 * either completes at once (store, log, if, ...) or builds a queue of
 * operations (CoAP requests, an HTTP call) and starts the first; each
 * task_runner_resume() checks the answer and starts the next; when the queue
 * is empty the step is done and the program counter moves on. A step that
 * needs to know the client (cleanse, configuration) first makes the session
 * Discover, then runs again.
 *
 * Resume points: the stack maps one-to-one to a pre-order index of the tree
 * (the frames of the enclosing <if>s point past their <if>, the top frame at
 * the next step), so a run saves one integer (__pc) and a new runner rebuilds
 * the stack from it (locate). An <if> is never evaluated again: the branch it
 * took is the one that contains the point. A resumed run on a management
 * session first replays __deferred through the queue (r->deferring), removing
 * each operation from the array once answered.
 *
 * Invariants: WAITING <=> exactly one operation outstanding (r->inflight);
 * DONE is sticky; the queue belongs to the step at the top of the stack (or,
 * while deferring, to __deferred); only an IN_PROGRESS end keeps "__"
 * variables. */
#include "server/tasks/runner.h"

#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/lwm2m/codec.h"
#include "server/lwm2m/link.h"
#include "server/lwm2m/registry.h"

typedef struct {
    const task_step_t *steps;
    size_t n;
    size_t pc;
} frame_t;

typedef struct {
    tr_op_kind_t kind;
    lwm2m_path_t path;
    int cf;
    uint8_t *payload;
    size_t len;
    char *query;            /* owned; OBSERVE / WRITE_ATTRIBUTES */
    int line;               /* deferred operations: line of their step */
} queued_op_t;

/* What variables say about where a saved run goes on. */
typedef struct {
    bool has;               /* a resume point (__pc, or a non-empty __deferred) */
    bool changed;           /* __prog is not this program's fingerprint */
    bool invalid;           /* __pc names no step a run can stop at */
    size_t pc;              /* pre-order index; nnodes = the end */
    size_t ndeferred;
    int64_t deadline;       /* __deadline, 0 if none */
    frame_t stack[TASK_MAX_DEPTH + 2];
    int depth;
} resume_t;

struct task_runner {
    const task_program_t *prog;
    const lwm2m_registry_t *reg;
    const task_host_t *host;
    void *hctx;
    void *user;
    tr_session_kind_t kind;
    task_bs_view_t *view;
    tr_state_t state;
    tr_status_t status;
    char summary[384];
    frame_t stack[TASK_MAX_DEPTH + 2];
    int depth;
    json_t *vars;
    /* operations of the current step */
    const task_step_t *qstep;
    queued_op_t *q;
    size_t nq, qpos;
    bool inflight;
    bool discovering;       /* the outstanding op is the session's Discover */
    char label[64];         /* "<set> line 4" of the current step */
    /* rest: what to do with the answer */
    const task_step_t *rest_step;
    /* configuration: variable to receive the security instance id */
    char sec_out_var[64];
    int sec_out_iid;
    /* get: variable receiving the value */
    char get_var[64];
    int64_t now_ms;         /* wall clock, ms since 1970 (task_runner_set_now) */
    resume_t res;           /* what the variables said at creation */
    bool resumed;           /* res.has */
    bool deferring;         /* the queue replays __deferred */
};

#define STACK_MAX (TASK_MAX_DEPTH + 2) /* frames in task_runner_t.stack and resume_t.stack */

void task_bs_view_init(task_session_view_t *v, int pct)
{
    memset(v, 0, sizeof *v);
    v->pct = pct;
    v->bs_iid = -1;
    v->cf = LWM2M_CF_NONE;
}

void task_view_init_management(task_session_view_t *v, int ct, int version)
{
    task_bs_view_init(v, ct);
    v->discovered = true;
    v->version = version;
    v->cf = tr_write_format(ct, version);
}

const char *tr_op_name(tr_op_kind_t k)
{
    static const char *const n[] = {"discover", "read",   "write",   "delete",  "finish",
                                    "execute",  "http",   "create",  "observe", "write-attributes"};
    return (unsigned)k < sizeof n / sizeof n[0] ? n[k] : "?";
}

const char *tr_status_name(tr_status_t s)
{
    static const char *const n[] = {"SUCCESS", "WARNING", "ERROR", "IN_PROGRESS"};
    return (unsigned)s < 4 ? n[s] : "?";
}

/* ------------------------------------------------------------------ basics */
static void clear_queue(task_runner_t *r)
{
    for (size_t i = 0; i < r->nq; i++) {
        free(r->q[i].payload);
        free(r->q[i].query);
    }
    free(r->q);
    r->q = NULL;
    r->nq = r->qpos = 0;
    r->qstep = NULL;
}

/* Queues an operation; takes ownership of `payload` and `query` (freed on
 * failure too). */
static int enqueue_q(task_runner_t *r, tr_op_kind_t kind, const lwm2m_path_t *p, int cf, uint8_t *payload, size_t len,
                     char *query, int line)
{
    queued_op_t *nq = realloc(r->q, (r->nq + 1) * sizeof *nq);
    if (!nq) {
        free(payload);
        free(query);
        return -1;
    }
    r->q = nq;
    r->q[r->nq++] = (queued_op_t){kind, p ? *p : lwm2m_path_make(0, 0, 0, 0, 0), cf, payload, len, query, line};
    return 0;
}

static int enqueue(task_runner_t *r, tr_op_kind_t kind, const lwm2m_path_t *p, int cf, uint8_t *payload, size_t len)
{
    return enqueue_q(r, kind, p, cf, payload, len, NULL, 0);
}

static const char *const k_resume_vars[] = {"__pc", "__prog", "__deferred", "__deadline"};

static void rlog(task_runner_t *r, const char *level, const char *sent, const char *received, int code,
                 const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void rlog(task_runner_t *r, const char *level, const char *sent, const char *received, int code,
                 const char *fmt, ...)
{
    if (!r->host->log)
        return;
    char msg[512] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    r->host->log(r->hctx, r, level, r->label[0] ? r->label : NULL, sent, received, code, msg[0] ? msg : NULL);
}

static void end(task_runner_t *r, tr_status_t st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void end(task_runner_t *r, tr_status_t st, const char *fmt, ...)
{
    if (r->state == TR_DONE)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->summary, sizeof r->summary, fmt, ap);
    va_end(ap);
    r->status = st;
    r->state = TR_DONE;
    r->inflight = false;
    r->discovering = false;
    r->rest_step = NULL;
    r->deferring = false;
    clear_queue(r);
    /* only an IN_PROGRESS run resumes: a finished one leaves plain variables */
    if (st != TR_IN_PROGRESS)
        for (size_t i = 0; i < sizeof k_resume_vars / sizeof k_resume_vars[0]; i++)
            json_object_del(r->vars, k_resume_vars[i]);
    rlog(r, st == TR_ERROR ? "error" : "info", NULL, NULL, 0, "task %s: %s", tr_status_name(st), r->summary);
}

static void fail(task_runner_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(task_runner_t *r, const char *fmt, ...)
{
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    end(r, TR_ERROR, "%s: %s", r->label, msg);
}

static void code_str(int code, char out[8])
{
    snprintf(out, 8, "%d.%02d", (code >> 5) & 7, code & 31);
}

/* ------------------------------------------------------------ expressions */
static int lookup(void *ctx, const char *name, expr_value_t *out)
{
    task_runner_t *r = ctx;
    if (name[0] == '#') {
        if (name[1] == '_' && name[2] == '_')
            return 0; /* the runner's own (runner.h "Resuming") */
        json_t *v = json_object_get(r->vars, name + 1);
        if (!v || !json_is_string(v))
            return 0;
        return expr_value_set_string(out, json_string_value(v), json_string_length(v)) == 0 ? 1 : -1;
    }
    return r->host->lookup ? r->host->lookup(r->hctx, name, out) : 0;
}

/* Value of attribute `name` of the current step as a string (binary-safe),
 * malloc'd into *out. Returns 1 if present, 0 if absent, -1 on an
 * evaluation error (the run is ended). */
static int attr(task_runner_t *r, const task_step_t *s, const char *name, char **out, size_t *len)
{
    const task_attr_t *a = task_step_attr(s, name);
    *out = NULL;
    if (len)
        *len = 0;
    if (!a)
        return 0;
    if (!a->expr) {
        *out = strdup(a->raw);
        if (len)
            *len = strlen(a->raw);
        return *out ? 1 : -1;
    }
    expr_env_t env = {lookup, r};
    expr_error_t e;
    size_t n = 0;
    if (expr_eval(a->expr, &env, out, &n, &e) != 0) {
        fail(r, "attribute '%s': %s", name, e.msg);
        return -1;
    }
    if (len)
        *len = n;
    return 1;
}

/* Sets a task variable; false (and the run ended) for a reserved name. */
static bool set_var(task_runner_t *r, const char *name, const char *v, size_t len)
{
    if (name[0] == '_' && name[1] == '_') {
        fail(r, "variable '%.60s': names starting with '__' are reserved for lwdm", name);
        return false;
    }
    json_object_set_new(r->vars, name, json_stringn(v, len));
    return true;
}

/* ------------------------------------------------------------ values/keys */
/* Appends a record for `p` of `type` from its text form, by the same rules
 * the parser applies to literal values (task_value_parse). */
static int add_typed(task_runner_t *r, lwm2m_records_t *rs, const lwm2m_path_t *p, int type, const char *s,
                     size_t len)
{
    lwm2m_record_t rec = {.path = *p};
    char why[256];
    if (type == LWM2M_T_NONE) {
        fail(r, "resource %u has no value (executable)", p->len >= 3 ? p->ids[2] : 0);
        return -1;
    }
    if (task_value_parse((lwm2m_type_t)type, s, len, &rec, why, sizeof why) != 0) {
        fail(r, "%s", why);
        return -1;
    }
    rec.path = *p;
    int rc = lwm2m_records_add(rs, &rec);
    free(rec.bytes);
    return rc;
}

/* Path and type of the step's key: resolved at parse time, or now. */
static int key_of(task_runner_t *r, const task_step_t *s, lwm2m_path_t *p, int *type)
{
    if (s->key_resolved) {
        *p = s->key_path;
        *type = s->key_type;
        return 0;
    }
    char *k = NULL;
    int a = attr(r, s, "key", &k, NULL);
    if (a <= 0) {
        if (a == 0)
            fail(r, "no key");
        return -1;
    }
    const lwm2m_resdef_t *res = NULL;
    char err[256];
    if (lwm2m_registry_resolve_key(r->reg, k, p, &res, err, sizeof err) != 0) {
        fail(r, "key '%.80s': %s", k, err);
        free(k);
        return -1;
    }
    free(k);
    *type = res ? (int)res->type : -1;
    return 0;
}

static int value_type(const task_step_t *s, int key_type)
{
    if (s->type >= 0)
        return s->type;
    return key_type >= 0 ? key_type : LWM2M_T_STRING;
}

/* --------------------------------------------------------- bootstrap view */
static bool has_iid(const uint16_t *a, size_t n, uint16_t v)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] == v)
            return true;
    return false;
}

static void add_iid(uint16_t *a, size_t *n, uint16_t v)
{
    if (!has_iid(a, *n, v) && *n < TR_MAX_IIDS)
        a[(*n)++] = v;
}

static void del_iid(uint16_t *a, size_t *n, uint16_t v)
{
    for (size_t i = 0; i < *n; i++)
        if (a[i] == v) {
            a[i] = a[--*n];
            return;
        }
}

/* Learns the client's version, BS account and instances from Discover
 * (both 1.0 and 1.1 forms; the BS account is the /0 instance without ssid). */
static void view_discovered(task_bs_view_t *v, int code, const uint8_t *payload, size_t len)
{
    v->discovered = true;
    if (code == LWM2M_CODE(2, 5)) {
        lwm2m_links_t ls;
        lwm2m_links_init(&ls);
        if (lwm2m_link_parse(payload, len, &ls) == 0) {
            v->version = lwm2m_links_version(&ls);
            for (size_t i = 0; i < ls.n; i++) {
                const lwm2m_link_t *l = &ls.links[i];
                if (!l->is_lwm2m_path || l->path.len != 2)
                    continue;
                if (l->path.ids[0] == 0) {
                    if (!lwm2m_link_attr(l, "ssid") && v->bs_iid < 0)
                        v->bs_iid = l->path.ids[1];
                    else
                        add_iid(v->sec, &v->nsec, l->path.ids[1]);
                } else if (l->path.ids[0] == 1) {
                    add_iid(v->srv, &v->nsrv, l->path.ids[1]);
                }
            }
        } else {
            v->discover_refused = true;
        }
        lwm2m_links_clear(&ls);
    } else {
        v->discover_refused = true;
    }
    v->cf = tr_write_format(v->pct, v->version);
}

int tr_write_format(int pct, int version)
{
    if (pct == LWM2M_CF_TLV || pct == LWM2M_CF_SENML_JSON || pct == LWM2M_CF_SENML_CBOR)
        return pct;
    if (pct == LWM2M_CF_OLD_TLV || (pct == LWM2M_CF_NONE && (version == 0 || version == LWM2M_V1_0)))
        return LWM2M_CF_TLV;
    return LWM2M_CF_SENML_CBOR;
}

/* After a successful operation: keep the view of the device in step. */
static void view_applied(task_bs_view_t *v, const queued_op_t *op)
{
    const lwm2m_path_t *p = &op->path;
    if (op->kind == TR_OP_DELETE) {
        if (p->len == 0) {
            v->nsec = v->nsrv = 0;
        } else if (p->ids[0] == 0) {
            if (p->len == 1)
                v->nsec = 0;
            else
                del_iid(v->sec, &v->nsec, p->ids[1]);
        } else if (p->ids[0] == 1) {
            if (p->len == 1)
                v->nsrv = 0;
            else
                del_iid(v->srv, &v->nsrv, p->ids[1]);
        }
    } else if (op->kind == TR_OP_WRITE && p->len >= 2) {
        if (p->ids[0] == 0 && (int)p->ids[1] != v->bs_iid)
            add_iid(v->sec, &v->nsec, p->ids[1]);
        else if (p->ids[0] == 1)
            add_iid(v->srv, &v->nsrv, p->ids[1]);
    } else if (op->kind == TR_OP_FINISH) {
        v->finished = true;
    }
}

/* Lowest /0 id that is neither the BS account (assumed /0/0 when unknown)
 * nor present. */
static int free_sec_iid(const task_bs_view_t *v)
{
    int reserved = v->bs_iid >= 0 ? v->bs_iid : 0;
    for (int i = 0; i < 65535; i++)
        if (i != reserved && !has_iid(v->sec, v->nsec, (uint16_t)i))
            return i;
    return -1;
}

static int free_srv_iid(const task_bs_view_t *v)
{
    for (int i = 0; i < 65535; i++)
        if (!has_iid(v->srv, v->nsrv, (uint16_t)i))
            return i;
    return -1;
}

/* One Bootstrap-Write per object instance in `rs` (in order of first
 * appearance), queued. */
static int queue_writes(task_runner_t *r, const lwm2m_records_t *rs)
{
    bool *done = calloc(rs->n ? rs->n : 1, sizeof *done);
    if (!done)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < rs->n && rc == 0; i++) {
        if (done[i])
            continue;
        const lwm2m_path_t *pi = &rs->recs[i].path;
        lwm2m_path_t inst = lwm2m_path_make(2, pi->ids[0], pi->ids[1], 0, 0);
        lwm2m_records_t one;
        lwm2m_records_init(&one);
        for (size_t j = i; j < rs->n && rc == 0; j++)
            if (!done[j] && lwm2m_path_starts_with(&rs->recs[j].path, &inst)) {
                rc = lwm2m_records_add(&one, &rs->recs[j]);
                done[j] = true;
            }
        uint8_t *buf = NULL;
        size_t len = 0;
        if (rc == 0)
            rc = lwm2m_encode(r->view->cf, &inst, &one, &buf, &len);
        lwm2m_records_clear(&one);
        if (rc == 0)
            rc = enqueue(r, TR_OP_WRITE, &inst, r->view->cf, buf, len);
    }
    free(done);
    return rc;
}

/* ------------------------------------------------------------------ steps */
/* STEP_PUSHED: the step moved the program counter and pushed a branch itself */
typedef enum { STEP_DONE = 0, STEP_WAIT, STEP_FAILED, STEP_PUSHED } step_rc_t;

static step_rc_t start_next_op(task_runner_t *r);

static step_rc_t need_discover(task_runner_t *r)
{
    if (r->view->discovered)
        return STEP_DONE;
    tr_op_t op = {.kind = TR_OP_DISCOVER, .path = lwm2m_path_make(0, 0, 0, 0, 0), .cf = LWM2M_CF_NONE};
    r->discovering = true;
    r->inflight = true;
    if (r->host->start_op(r->hctx, r, &op) != 0) {
        r->inflight = false;
        fail(r, "could not send Bootstrap-Discover");
        return STEP_FAILED;
    }
    return STEP_WAIT;
}

static bool on_bootstrap(task_runner_t *r, const task_step_t *s)
{
    if (r->kind == TR_SESSION_BOOTSTRAP)
        return true;
    fail(r, "<%s> runs only on a bootstrap session", task_kind_name(s->kind));
    return false;
}

static step_rc_t step_cleanse(task_runner_t *r, const task_step_t *s)
{
    if (!on_bootstrap(r, s))
        return STEP_FAILED;
    step_rc_t d = need_discover(r);
    if (d != STEP_DONE)
        return d;
    /* Delete /0 and /1: a conformant client keeps its BS account (and its
     * OSCORE instance) and /3/0 (Core 1.1 §6.1.7.6); CONFORMANCE.md §1. */
    lwm2m_path_t p0 = lwm2m_path_make(1, 0, 0, 0, 0), p1 = lwm2m_path_make(1, 1, 0, 0, 0);
    if (enqueue(r, TR_OP_DELETE, &p0, LWM2M_CF_NONE, NULL, 0) || enqueue(r, TR_OP_DELETE, &p1, LWM2M_CF_NONE, NULL, 0))
        return STEP_FAILED;
    r->qstep = s;
    return start_next_op(r);
}

static int attr_int(task_runner_t *r, const task_step_t *s, const char *name, long long lo, long long hi, long long *out)
{
    char *v = NULL;
    int a = attr(r, s, name, &v, NULL);
    if (a <= 0)
        return a;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi) {
        fail(r, "attribute '%s': '%.40s' is not an integer in %lld..%lld", name, v, lo, hi);
        free(v);
        return -1;
    }
    free(v);
    *out = x;
    return 1;
}

static step_rc_t step_configuration(task_runner_t *r, const task_step_t *s)
{
    if (!on_bootstrap(r, s))
        return STEP_FAILED;
    step_rc_t d = need_discover(r);
    if (d != STEP_DONE)
        return d;
    char *ref = NULL;
    bool by_name = false;
    int a = attr(r, s, "serverId", &ref, NULL);
    if (a == 0) {
        a = attr(r, s, "serverName", &ref, NULL);
        by_name = true;
    }
    if (a <= 0) {
        if (a == 0)
            fail(r, "serverId or serverName is required");
        return STEP_FAILED;
    }
    long long sec = -1, srv = -1;
    if (attr_int(r, s, "securityInstanceId", 0, 65534, &sec) < 0 || attr_int(r, s, "serverInstanceId", 0, 65534, &srv) < 0) {
        free(ref);
        return STEP_FAILED;
    }
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    bool is_bs = false;
    char err[256];
    /* a bootstrap-type server replaces the BS account in place (never a
     * second account); management servers take free ids */
    int sec_iid = sec >= 0 ? (int)sec : free_sec_iid(r->view);
    int srv_iid = srv >= 0 ? (int)srv : free_srv_iid(r->view);
    if (r->host->server_records(r->hctx, ref, by_name, sec_iid, srv_iid, &rs, &is_bs, err, sizeof err) != 0) {
        fail(r, "%s", err);
        free(ref);
        lwm2m_records_clear(&rs);
        return STEP_FAILED;
    }
    if (is_bs && sec < 0) {
        int bs_iid = r->view->bs_iid >= 0 ? r->view->bs_iid : 0;
        lwm2m_records_clear(&rs);
        if (r->host->server_records(r->hctx, ref, by_name, bs_iid, -1, &rs, &is_bs, err, sizeof err) != 0) {
            fail(r, "%s", err);
            free(ref);
            lwm2m_records_clear(&rs);
            return STEP_FAILED;
        }
        sec_iid = bs_iid;
    }
    free(ref);
    r->sec_out_var[0] = 0;
    char *outv = NULL;
    if (attr(r, s, "securityInstanceIdOutput", &outv, NULL) < 0) {
        lwm2m_records_clear(&rs);
        return STEP_FAILED;
    }
    if (outv) {
        snprintf(r->sec_out_var, sizeof r->sec_out_var, "%s", outv[0] == '#' ? outv + 1 : outv);
        free(outv);
        r->sec_out_iid = sec_iid;
        if (r->sec_out_var[0] == '_' && r->sec_out_var[1] == '_') {
            lwm2m_records_clear(&rs);
            fail(r, "variable '%s': names starting with '__' are reserved for lwdm", r->sec_out_var);
            r->sec_out_var[0] = 0;
            return STEP_FAILED;
        }
    }
    int rc = queue_writes(r, &rs);
    lwm2m_records_clear(&rs);
    if (rc != 0) {
        fail(r, "could not encode the configuration");
        return STEP_FAILED;
    }
    r->qstep = s;
    return start_next_op(r);
}

static step_rc_t step_bootstrap(task_runner_t *r, const task_step_t *s)
{
    if (!on_bootstrap(r, s))
        return STEP_FAILED;
    step_rc_t d = need_discover(r);
    if (d != STEP_DONE)
        return d;
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    /* writes first, grouped per instance (one request each), then deletes,
     * in document order within each kind */
    for (size_t i = 0; i < s->nchildren; i++) {
        const task_step_t *c = &s->children[i];
        if (c->kind != TASK_BS_WRITE)
            continue;
        snprintf(r->label, sizeof r->label, "<write> line %d", c->line);
        lwm2m_path_t p;
        int kt;
        char *v = NULL;
        size_t vl = 0;
        if (key_of(r, c, &p, &kt) != 0 || attr(r, c, "value", &v, &vl) < 0) {
            lwm2m_records_clear(&rs);
            return STEP_FAILED;
        }
        if (p.len < 3) {
            free(v);
            lwm2m_records_clear(&rs);
            fail(r, "a write needs a resource path");
            return STEP_FAILED;
        }
        int rc = add_typed(r, &rs, &p, value_type(c, kt), v ? v : "", vl);
        free(v);
        if (rc != 0) {
            lwm2m_records_clear(&rs);
            if (r->state != TR_DONE)
                fail(r, "out of memory");
            return STEP_FAILED;
        }
    }
    snprintf(r->label, sizeof r->label, "<lwm2mBootstrap> line %d", s->line);
    int rc = queue_writes(r, &rs);
    lwm2m_records_clear(&rs);
    for (size_t i = 0; i < s->nchildren && rc == 0; i++) {
        const task_step_t *c = &s->children[i];
        if (c->kind != TASK_BS_DELETE)
            continue;
        lwm2m_path_t p;
        int kt;
        if (key_of(r, c, &p, &kt) != 0)
            return STEP_FAILED;
        rc = enqueue(r, TR_OP_DELETE, &p, LWM2M_CF_NONE, NULL, 0);
    }
    char *fin = NULL;
    if (attr(r, s, "performBootstrapFinish", &fin, NULL) < 0)
        return STEP_FAILED;
    if (rc == 0 && fin && !strcmp(fin, "true"))
        rc = enqueue(r, TR_OP_FINISH, NULL, LWM2M_CF_NONE, NULL, 0);
    free(fin);
    if (rc != 0) {
        fail(r, "could not encode the writes");
        return STEP_FAILED;
    }
    if (r->nq == 0)
        return STEP_DONE;
    r->qstep = s;
    return start_next_op(r);
}

/* On a bootstrap session after Bootstrap-Finish the device has left
 * bootstrap: a step that needs it waits for its management session. */
static bool after_finish(const task_runner_t *r)
{
    return r->kind == TR_SESSION_BOOTSTRAP && r->view && r->view->finished;
}

static void pause_run(task_runner_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static step_rc_t wait_for_management(task_runner_t *r)
{
    pause_run(r, "waiting for the device's next management session (Bootstrap-Finish was accepted)");
    return STEP_FAILED; /* stops the program; status already set */
}

/* Format of management writes: the view's, SenML CBOR without one. */
static int write_cf(const task_runner_t *r)
{
    int cf = r->view ? r->view->cf : LWM2M_CF_SENML_CBOR;
    return cf == LWM2M_CF_NONE ? LWM2M_CF_SENML_CBOR : cf;
}

static step_rc_t step_set(task_runner_t *r, const task_step_t *s)
{
    if (after_finish(r))
        return wait_for_management(r);
    lwm2m_path_t p;
    int kt;
    char *v = NULL;
    size_t vl = 0;
    if (key_of(r, s, &p, &kt) != 0 || attr(r, s, "value", &v, &vl) < 0)
        return STEP_FAILED;
    if (p.len < 3) {
        free(v);
        fail(r, "<set> needs a resource path");
        return STEP_FAILED;
    }
    if (r->kind == TR_SESSION_BOOTSTRAP) {
        step_rc_t d = need_discover(r);
        if (d != STEP_DONE) {
            free(v);
            return d;
        }
    }
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    int rc = add_typed(r, &rs, &p, value_type(s, kt), v ? v : "", vl);
    free(v);
    if (rc != 0) {
        lwm2m_records_clear(&rs);
        return STEP_FAILED;
    }
    /* replace (PUT) on the resource path, in the session's format */
    int cf = write_cf(r);
    uint8_t *buf = NULL;
    size_t len = 0;
    rc = lwm2m_encode(cf, &p, &rs, &buf, &len);
    lwm2m_records_clear(&rs);
    if (rc != 0 || enqueue(r, TR_OP_WRITE, &p, cf, buf, len) != 0) {
        fail(r, "could not encode the value");
        return STEP_FAILED;
    }
    r->qstep = s;
    return start_next_op(r);
}

static step_rc_t step_execute(task_runner_t *r, const task_step_t *s)
{
    lwm2m_path_t p;
    int kt;
    char *args = NULL;
    size_t al = 0;
    if (key_of(r, s, &p, &kt) != 0 || attr(r, s, "arguments", &args, &al) < 0)
        return STEP_FAILED;
    if (p.len != 3) {
        free(args);
        fail(r, "<execute> needs a resource path");
        return STEP_FAILED;
    }
    if (r->kind == TR_SESSION_BOOTSTRAP) {
        /* Execute is not a bootstrap operation: it waits for the device's next
         * management session (TASKS.md), and the task stays IN_PROGRESS. */
        json_t *def = json_object_get(r->vars, "__deferred");
        if (!json_is_array(def)) {
            def = json_array();
            json_object_set_new(r->vars, "__deferred", def);
        }
        char ps[64];
        lwm2m_path_format(&p, ps, sizeof ps);
        json_t *op = json_pack("{s:s,s:s,s:s%,s:i}", "op", "execute", "path", ps, "arguments", args ? args : "",
                               (size_t)(args ? al : 0), "line", s->line);
        free(args);
        if (!def || !op || json_array_append_new(def, op) != 0) {
            fail(r, "out of memory");
            return STEP_FAILED;
        }
        rlog(r, "info", NULL, NULL, 0, "execute %s deferred to the next management session", ps);
        return STEP_DONE;
    }
    int rc = enqueue(r, TR_OP_EXECUTE, &p, args && al ? LWM2M_CF_TEXT : LWM2M_CF_NONE, (uint8_t *)args, args ? al : 0);
    if (rc != 0) {
        fail(r, "out of memory");
        return STEP_FAILED;
    }
    r->qstep = s;
    return start_next_op(r);
}

static step_rc_t step_get(task_runner_t *r, const task_step_t *s)
{
    if (after_finish(r))
        return wait_for_management(r);
    lwm2m_path_t p;
    int kt;
    char *out = NULL;
    if (key_of(r, s, &p, &kt) != 0 || attr(r, s, "output", &out, NULL) < 0)
        return STEP_FAILED;
    const char *name = out ? (out[0] == '#' ? out + 1 : out) : "";
    if (name[0] == '_' && name[1] == '_') {
        fail(r, "variable '%.60s': names starting with '__' are reserved for lwdm", name);
        free(out);
        return STEP_FAILED;
    }
    snprintf(r->get_var, sizeof r->get_var, "%s", name);
    free(out);
    if (r->kind == TR_SESSION_BOOTSTRAP) {
        step_rc_t d = need_discover(r);
        if (d != STEP_DONE)
            return d;
        if (r->view->version == LWM2M_V1_0 || r->view->version == 0) {
            fail(r, "Bootstrap-Read needs an LwM2M 1.1 or later client");
            return STEP_FAILED;
        }
    }
    if (enqueue(r, TR_OP_READ, &p, LWM2M_CF_NONE, NULL, 0) != 0)
        return STEP_FAILED;
    r->qstep = s;
    return start_next_op(r);
}

/* Management-only steps: where they may run. */
static bool on_management(task_runner_t *r, const task_step_t *s)
{
    if (r->kind == TR_SESSION_MANAGEMENT)
        return true;
    fail(r, "<%s> runs only on a management session", task_kind_name(s->kind));
    return false;
}

static step_rc_t step_delete(task_runner_t *r, const task_step_t *s)
{
    lwm2m_path_t p;
    int kt;
    if (key_of(r, s, &p, &kt) != 0)
        return STEP_FAILED;
    if (p.len < 1 || p.len > 2) {
        fail(r, "<delete> needs an object or an object instance");
        return STEP_FAILED;
    }
    if (enqueue(r, TR_OP_DELETE, &p, LWM2M_CF_NONE, NULL, 0) != 0)
        return STEP_FAILED;
    r->qstep = s;
    return start_next_op(r);
}

/* <create key="/o/i/r" value type/>, <create key="/o[/i]"> with <write
 * key="/o/i/r" value type/> children, or an empty <create key="/o[/i]"/>:
 * Create on /o; the records name the instance id, and an empty instance with
 * an id is sent as an empty TLV object instance (SenML cannot carry an id
 * without a resource). */
static step_rc_t step_create(task_runner_t *r, const task_step_t *s)
{
    lwm2m_path_t p;
    int kt;
    if (key_of(r, s, &p, &kt) != 0)
        return STEP_FAILED;
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    lwm2m_path_t inst = p;
    bool has_iid = p.len >= 2;
    if (task_step_attr(s, "value")) {
        char *v = NULL;
        size_t vl = 0;
        if (p.len < 3) {
            fail(r, "<create> with a value needs object.instance.resource");
            return STEP_FAILED;
        }
        if (attr(r, s, "value", &v, &vl) < 0)
            return STEP_FAILED;
        int rc = add_typed(r, &rs, &p, value_type(s, kt), v ? v : "", vl);
        free(v);
        if (rc != 0) {
            lwm2m_records_clear(&rs);
            if (r->state != TR_DONE)
                fail(r, "out of memory");
            return STEP_FAILED;
        }
    } else {
        if (p.len > 2) {
            fail(r, "<create> without a value needs an object or an object instance");
            return STEP_FAILED;
        }
        for (size_t i = 0; i < s->nchildren; i++) {
            const task_step_t *c = &s->children[i];
            snprintf(r->label, sizeof r->label, "<write> line %d", c->line);
            lwm2m_path_t cp;
            int ct;
            char *v = NULL;
            size_t vl = 0;
            if (key_of(r, c, &cp, &ct) != 0 || attr(r, c, "value", &v, &vl) < 0) {
                lwm2m_records_clear(&rs);
                return STEP_FAILED;
            }
            bool inside = cp.len >= 3 && lwm2m_path_starts_with(&cp, &p) &&
                          (!has_iid || (cp.ids[0] == inst.ids[0] && cp.ids[1] == inst.ids[1]));
            if (!inside) {
                free(v);
                lwm2m_records_clear(&rs);
                fail(r, "the writes of one <create> must name resources of the one instance it creates");
                return STEP_FAILED;
            }
            if (!has_iid) {
                inst = lwm2m_path_make(2, cp.ids[0], cp.ids[1], 0, 0);
                has_iid = true;
            }
            int rc = add_typed(r, &rs, &cp, value_type(c, ct), v ? v : "", vl);
            free(v);
            if (rc != 0) {
                lwm2m_records_clear(&rs);
                if (r->state != TR_DONE)
                    fail(r, "out of memory");
                return STEP_FAILED;
            }
        }
        snprintf(r->label, sizeof r->label, "<create> line %d", s->line);
    }
    lwm2m_path_t obj = lwm2m_path_make(1, p.ids[0], 0, 0, 0);
    int cf = LWM2M_CF_NONE, rc = 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (rs.n) {
        cf = write_cf(r);
        rc = lwm2m_encode(cf, &obj, &rs, &buf, &len);
    } else if (has_iid) {
        /* TLV object instance, 8- or 16-bit id, no resources (Core 1.1 §7.4.3) */
        unsigned iid = inst.ids[1];
        cf = LWM2M_CF_TLV;
        buf = malloc(3);
        if (!buf)
            rc = -1;
        else if (iid > 255) {
            buf[0] = 0x20, buf[1] = (uint8_t)(iid >> 8), buf[2] = (uint8_t)iid;
            len = 3;
        } else {
            buf[0] = 0x00, buf[1] = (uint8_t)iid;
            len = 2;
        }
    }
    lwm2m_records_clear(&rs);
    if (rc != 0 || enqueue(r, TR_OP_CREATE, &obj, cf, buf, len) != 0) {
        if (rc != 0)
            free(buf);
        fail(r, "could not encode the new instance");
        return STEP_FAILED;
    }
    r->qstep = s;
    return start_next_op(r);
}

/* Attributes of <observe>/<setAttributes> as a Write-Attributes query, in a
 * fixed order. An attribute that evaluates to "" is sent bare ("pmin"),
 * which removes it on the device. Returns 0 with *out NULL when there are
 * none, or -1 (run ended). */
static int attr_query(task_runner_t *r, const task_step_t *s, char **out)
{
    static const char *const names[] = {"pmin", "pmax", "gt", "lt", "st", "epmin", "epmax"};
    char q[512] = "";
    size_t qn = 0;
    long long ints[7];
    bool have[7] = {false};
    *out = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *v = NULL;
        size_t vl = 0;
        int a = attr(r, s, names[i], &v, &vl);
        if (a < 0)
            return -1;
        if (a == 0)
            continue;
        char *b = v, *e = v + vl;
        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        *e = 0;
        bool is_int = names[i][0] == 'p' || names[i][0] == 'e';
        if (*b) {
            lwm2m_record_t rec = {0};
            char why[200];
            lwm2m_type_t ty = is_int ? LWM2M_T_INTEGER : LWM2M_T_FLOAT;
            bool ok = task_value_parse(ty, b, strlen(b), &rec, why, sizeof why) == 0;
            if (ok && is_int) {
                ok = rec.v.i >= 0 && rec.v.i <= INT32_MAX;
                ints[i] = rec.v.i;
                have[i] = true;
            } else if (ok && !strcmp(names[i], "st")) {
                ok = rec.v.f >= 0;
            }
            if (!ok) {
                fail(r, "attribute '%s': '%.40s' is not %s", names[i], b,
                     is_int ? "a number of seconds (0..2147483647)"
                            : !strcmp(names[i], "st") ? "a decimal number >= 0" : "a decimal number");
                free(v);
                return -1;
            }
        }
        int n = snprintf(q + qn, sizeof q - qn, "%s%s%s%s", qn ? "&" : "", names[i], *b ? "=" : "", b);
        free(v);
        if (n < 0 || (size_t)n >= sizeof q - qn) {
            fail(r, "attributes too long");
            return -1;
        }
        qn += (size_t)n;
    }
    if ((have[0] && have[1] && ints[0] > ints[1]) || (have[5] && have[6] && ints[5] > ints[6])) {
        fail(r, "%s is below %s", have[0] && have[1] && ints[0] > ints[1] ? "pmax" : "epmax",
             have[0] && have[1] && ints[0] > ints[1] ? "pmin" : "epmin");
        return -1;
    }
    if (qn && !(*out = strdup(q))) {
        fail(r, "out of memory");
        return -1;
    }
    return 0;
}

static step_rc_t step_observe(task_runner_t *r, const task_step_t *s, bool observe)
{
    lwm2m_path_t p;
    int kt;
    char *q = NULL;
    if (key_of(r, s, &p, &kt) != 0 || attr_query(r, s, &q) != 0)
        return STEP_FAILED;
    if (p.len < 1) {
        free(q);
        fail(r, "<%s> needs an object, instance or resource", task_kind_name(s->kind));
        return STEP_FAILED;
    }
    if (!observe && !q) {
        fail(r, "<setAttributes> has no attribute to set (pmin, pmax, gt, lt, st, epmin, epmax)");
        return STEP_FAILED;
    }
    if (enqueue_q(r, observe ? TR_OP_OBSERVE : TR_OP_WRITE_ATTRIBUTES, &p, LWM2M_CF_NONE, NULL, 0, q, 0) != 0) {
        fail(r, "out of memory");
        return STEP_FAILED;
    }
    r->qstep = s;
    return start_next_op(r);
}

static step_rc_t step_rest(task_runner_t *r, const task_step_t *s)
{
    char *url = NULL, *method = NULL, *content = NULL, *ctype = NULL, *user = NULL, *pass = NULL, *timeout = NULL;
    tr_header_t hs[32];
    char *hv[64] = {0};
    size_t nh = 0;
    step_rc_t rc = STEP_FAILED;
    if (attr(r, s, "url", &url, NULL) <= 0 || attr(r, s, "method", &method, NULL) < 0 ||
        attr(r, s, "content", &content, NULL) < 0 || attr(r, s, "contentType", &ctype, NULL) < 0 ||
        attr(r, s, "user", &user, NULL) < 0 || attr(r, s, "pass", &pass, NULL) < 0 ||
        attr(r, s, "timeout", &timeout, NULL) < 0) {
        if (r->state != TR_DONE)
            fail(r, "url is required");
        goto out;
    }
    for (size_t i = 0; i < s->nchildren && nh < 32; i++) {
        const task_step_t *c = &s->children[i];
        if (c->kind != TASK_REST_HEADER)
            continue;
        if (attr(r, c, "name", &hv[2 * nh], NULL) <= 0 || attr(r, c, "value", &hv[2 * nh + 1], NULL) < 0)
            goto out;
        hs[nh].name = hv[2 * nh];
        hs[nh].value = hv[2 * nh + 1] ? hv[2 * nh + 1] : "";
        if (strpbrk(hs[nh].name, "\r\n:") || strpbrk(hs[nh].value, "\r\n")) {
            fail(r, "header '%.40s': a header name or value may not contain a line break", hs[nh].name);
            goto out;
        }
        nh++;
    }
    tr_op_t op = {.kind = TR_OP_HTTP,
                  .method = method ? method : "GET",
                  .url = url,
                  .body = content,
                  .content_type = ctype,
                  .user = user,
                  .pass = pass,
                  .headers = hs,
                  .nheaders = nh,
                  .timeout_s = timeout ? (unsigned)strtoul(timeout, NULL, 10) : 30};
    if (!op.timeout_s || op.timeout_s > 300)
        op.timeout_s = 30;
    r->rest_step = s;
    r->inflight = true;
    rlog(r, "info", NULL, NULL, 0, "%s %s", op.method, url);
    if (r->host->start_op(r->hctx, r, &op) != 0) {
        r->inflight = false;
        fail(r, "could not start the HTTP request");
        goto out;
    }
    rc = STEP_WAIT;
out:
    free(url);
    free(method);
    free(content);
    free(ctype);
    free(user);
    free(pass);
    free(timeout);
    for (size_t i = 0; i < 64; i++)
        free(hv[i]);
    return rc;
}

/* Value at a JSON path like "a.b[0].c" (NULL if absent). */
static json_t *json_at(json_t *root, const char *path)
{
    json_t *cur = root;
    const char *p = path;
    while (cur && *p) {
        if (*p == '.') {
            p++;
            continue;
        }
        if (*p == '[') {
            char *end;
            long i = strtol(p + 1, &end, 10);
            if (*end != ']' || !json_is_array(cur))
                return NULL;
            cur = json_array_get(cur, (size_t)i);
            p = end + 1;
            continue;
        }
        size_t n = strcspn(p, ".[");
        char key[128];
        if (n >= sizeof key || !json_is_object(cur))
            return NULL;
        memcpy(key, p, n);
        key[n] = 0;
        cur = json_object_get(cur, key);
        p += n;
    }
    return cur;
}

static void rest_done(task_runner_t *r, const task_step_t *s, int status, const uint8_t *body, size_t len,
                      const char *error)
{
    if (error || status < 200 || status > 299) {
        if (error)
            fail(r, "HTTP request failed: %s", error);
        else
            fail(r, "HTTP request answered %d", status);
        return;
    }
    rlog(r, "info", NULL, NULL, status, "HTTP %d, %zu bytes", status, len);
    json_t *root = NULL;
    for (size_t i = 0; i < s->nchildren; i++) {
        const task_step_t *c = &s->children[i];
        if (c->kind != TASK_REST_OUT)
            continue;
        char *from = NULL, *to = NULL, *def = NULL;
        if (attr(r, c, "from", &from, NULL) <= 0 || attr(r, c, "to", &to, NULL) <= 0 ||
            attr(r, c, "default", &def, NULL) < 0) {
            free(from);
            free(to);
            free(def);
            json_decref(root);
            if (r->state != TR_DONE)
                fail(r, "<out> needs from and to");
            return;
        }
        if (!root)
            root = json_loadb((const char *)body, len, JSON_DECODE_ANY, NULL);
        json_t *v = root ? json_at(root, from) : NULL;
        const char *name = to[0] == '#' ? to + 1 : to;
        if (v && json_is_string(v)) {
            set_var(r, name, json_string_value(v), json_string_length(v));
        } else if (v && !json_is_null(v)) {
            char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            set_var(r, name, t ? t : "", t ? strlen(t) : 0);
            free(t);
        } else if (def) {
            set_var(r, name, def, strlen(def));
        } else {
            fail(r, "the answer has no field '%s'%s", from, root ? "" : " (not JSON)");
            free(from);
            free(to);
            json_decref(root);
            return;
        }
        free(from);
        free(to);
        free(def);
        if (r->state == TR_DONE) /* a reserved variable name */
            break;
    }
    json_decref(root);
}

static step_rc_t step_store(task_runner_t *r, const task_step_t *s)
{
    char *target = NULL, *v = NULL;
    size_t vl = 0;
    if (attr(r, s, "target", &target, NULL) <= 0 || attr(r, s, "value", &v, &vl) < 0) {
        free(target);
        if (r->state != TR_DONE)
            fail(r, "target is required");
        return STEP_FAILED;
    }
    const char *name = target[0] == '#' ? target + 1 : target;
    step_rc_t rc = STEP_DONE;
    if (s->type == 1) { /* devProp */
        char err[256] = "not supported here";
        if (!r->host->set_property || r->host->set_property(r->hctx, name, v ? v : "", err, sizeof err) != 0) {
            fail(r, "device property '%s': %s", name, err);
            rc = STEP_FAILED;
        }
    } else if (!set_var(r, name, v ? v : "", vl)) {
        rc = STEP_FAILED;
    }
    free(target);
    free(v);
    return rc;
}

static bool truthy(const expr_value_t *v)
{
    switch (v->type) {
    case EXPR_BOOL: return v->b;
    case EXPR_INT: return v->i != 0;
    case EXPR_FLOAT: return v->f != 0.0;
    case EXPR_STRING: return v->len > 0;
    default: return false;
    }
}

static int push(task_runner_t *r, const task_step_t *steps, size_t n)
{
    if (r->depth + 1 >= (int)(sizeof r->stack / sizeof r->stack[0])) {
        fail(r, "nesting too deep");
        return -1;
    }
    r->stack[++r->depth] = (frame_t){steps, n, 0};
    return 0;
}

static step_rc_t step_if(task_runner_t *r, const task_step_t *s)
{
    const task_attr_t *a = task_step_attr(s, "expr");
    if (!a) {
        fail(r, "expr is required");
        return STEP_FAILED;
    }
    expr_value_t v = {0};
    bool t;
    if (a->expr) {
        expr_env_t env = {lookup, r};
        expr_error_t e;
        if (expr_eval_value(a->expr, &env, &v, &e) != 0) {
            fail(r, "expr: %s", e.msg);
            return STEP_FAILED;
        }
        t = truthy(&v);
        expr_value_free(&v);
    } else {
        t = a->raw[0] && strcmp(a->raw, "false") && strcmp(a->raw, "0");
    }
    /* the if step itself is done; its branch runs next */
    r->stack[r->depth].pc++;
    if (t ? push(r, s->children, s->nchildren) : push(r, s->else_children, s->nelse))
        return STEP_FAILED;
    return STEP_PUSHED;
}

/* ---------------------------------------------------------- resume points */
/* Pre-order index of `want` among steps[0..n) and their subtrees, counted
 * from *idx. */
static bool index_of(const task_step_t *steps, size_t n, const task_step_t *want, size_t *idx)
{
    for (size_t i = 0; i < n; i++) {
        if (&steps[i] == want)
            return true;
        ++*idx;
        if (index_of(steps[i].children, steps[i].nchildren, want, idx) ||
            index_of(steps[i].else_children, steps[i].nelse, want, idx))
            return true;
    }
    return false;
}

static size_t count_nodes(const task_step_t *steps, size_t n)
{
    size_t c = n;
    for (size_t i = 0; i < n; i++)
        c += count_nodes(steps[i].children, steps[i].nchildren) + count_nodes(steps[i].else_children, steps[i].nelse);
    return c;
}

/* Rebuilds the frames that lead to pre-order index `target` (counted from
 * *idx) below steps[0..n): 1 found, 0 not below, -1 inside a step that is
 * not a place to stop (the children of lwm2mBootstrap, rest, create) or too
 * deep. */
static int locate(const task_step_t *steps, size_t n, size_t target, size_t *idx, frame_t *stack, int depth,
                  int *out_depth)
{
    for (size_t i = 0; i < n; i++) {
        if (*idx == target) {
            stack[depth] = (frame_t){steps, n, i};
            *out_depth = depth;
            return 1;
        }
        ++*idx;
        const task_step_t *s = &steps[i];
        if (s->kind == TASK_IF) {
            if (depth + 1 >= STACK_MAX)
                return -1;
            /* as step_if leaves it: the <if> done, its branch pushed */
            stack[depth] = (frame_t){steps, n, i + 1};
            int rc = locate(s->children, s->nchildren, target, idx, stack, depth + 1, out_depth);
            if (rc == 0)
                rc = locate(s->else_children, s->nelse, target, idx, stack, depth + 1, out_depth);
            if (rc != 0)
                return rc;
        } else {
            size_t sub = count_nodes(s->children, s->nchildren) + count_nodes(s->else_children, s->nelse);
            if (target < *idx + sub)
                return -1;
            *idx += sub;
        }
    }
    return 0;
}

/* Reads the resume point out of `vars` (runner.h "Resuming"). */
static void resume_parse(const task_program_t *p, json_t *vars, resume_t *rs)
{
    memset(rs, 0, sizeof *rs);
    json_t *pc = json_object_get(vars, "__pc"), *def = json_object_get(vars, "__deferred");
    json_t *prog = json_object_get(vars, "__prog"), *dl = json_object_get(vars, "__deadline");
    rs->ndeferred = json_is_array(def) ? json_array_size(def) : 0;
    rs->has = pc != NULL || rs->ndeferred > 0;
    if (!rs->has)
        return;
    if (json_is_integer(dl))
        rs->deadline = json_integer_value(dl);
    if (prog) {
        char fp[17];
        snprintf(fp, sizeof fp, "%016llx", (unsigned long long)p->fingerprint);
        rs->changed = !json_is_string(prog) || strcmp(json_string_value(prog), fp) != 0;
    }
    if (!pc) {
        rs->pc = p->nnodes; /* a report from before resume points: deferred after the end */
    } else if (!json_is_integer(pc) || json_integer_value(pc) < 0 ||
               (uint64_t)json_integer_value(pc) > (uint64_t)p->nnodes) {
        rs->invalid = true;
        return;
    } else {
        rs->pc = (size_t)json_integer_value(pc);
    }
    if (rs->pc == p->nnodes) {
        rs->stack[0] = (frame_t){p->steps, p->nsteps, p->nsteps};
        rs->depth = 0;
        return;
    }
    size_t idx = 0;
    if (locate(p->steps, p->nsteps, rs->pc, &idx, rs->stack, 0, &rs->depth) != 1)
        rs->invalid = true;
}

/* Whether what is left of a saved run can run in a session of `kind`. */
static bool resume_fits(const resume_t *rs, tr_session_kind_t kind)
{
    if (rs->changed || rs->invalid)
        return true; /* ends ERROR at once, which clears it */
    if (rs->ndeferred > 0 && kind == TR_SESSION_BOOTSTRAP)
        return false;
    for (int d = rs->depth; d >= 0; d--) {
        const frame_t *f = &rs->stack[d];
        int k = f->pc < f->n ? task_steps_session(f->steps + f->pc, f->n - f->pc) : -1;
        if (k >= 0)
            return k == (int)kind;
    }
    return true;
}

bool task_resume_runs_in(const task_program_t *p, const char *vars_json, tr_session_kind_t kind)
{
    if (!p)
        return false;
    json_t *vars = vars_json ? json_loads(vars_json, 0, NULL) : NULL;
    resume_t rs;
    resume_parse(p, json_is_object(vars) ? vars : NULL, &rs);
    json_decref(vars);
    return rs.has ? resume_fits(&rs, kind) : task_runs_in(p, kind);
}

int64_t task_resume_deadline_ms(const char *vars_json)
{
    json_t *vars = vars_json ? json_loads(vars_json, 0, NULL) : NULL;
    json_t *dl = json_object_get(vars, "__deadline");
    int64_t v = json_is_integer(dl) ? json_integer_value(dl) : 0;
    json_decref(vars);
    return v;
}

/* Saves where the run goes on (the frame at the top, after dropping frames
 * that are finished) and ends it IN_PROGRESS. */
static void pause_run(task_runner_t *r, const char *fmt, ...)
{
    if (r->state == TR_DONE)
        return;
    while (r->depth > 0 && r->stack[r->depth].pc >= r->stack[r->depth].n)
        r->depth--;
    const frame_t *f = &r->stack[r->depth];
    size_t idx = 0;
    if (f->pc >= f->n)
        idx = r->prog->nnodes;
    else if (!index_of(r->prog->steps, r->prog->nsteps, &f->steps[f->pc], &idx))
        idx = r->prog->nnodes; /* cannot happen: every frame is part of the program */
    char fp[17];
    snprintf(fp, sizeof fp, "%016llx", (unsigned long long)r->prog->fingerprint);
    json_object_set_new(r->vars, "__pc", json_integer((json_int_t)idx));
    json_object_set_new(r->vars, "__prog", json_string(fp));
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    end(r, TR_IN_PROGRESS, "%s", msg);
}

/* --------------------------------------------------------------- steps */
static step_rc_t exec_step(task_runner_t *r, const task_step_t *s)
{
    snprintf(r->label, sizeof r->label, "<%s> line %d", task_kind_name(s->kind), s->line);
    switch (s->kind) {
    case TASK_CLEANSE: return step_cleanse(r, s);
    case TASK_CONFIGURATION: return step_configuration(r, s);
    case TASK_BOOTSTRAP: return step_bootstrap(r, s);
    case TASK_SET: return step_set(r, s);
    case TASK_EXECUTE: return step_execute(r, s);
    case TASK_GET: return step_get(r, s);
    case TASK_REST: return step_rest(r, s);
    case TASK_STORE: return step_store(r, s);
    case TASK_IF: return step_if(r, s);
    case TASK_COMMENT: return STEP_DONE;
    case TASK_LOG: {
        char *m = NULL, *lvl = NULL;
        if (attr(r, s, "message", &m, NULL) < 0 || attr(r, s, "level", &lvl, NULL) < 0) {
            free(m);
            return STEP_FAILED;
        }
        rlog(r, lvl ? lvl : "info", NULL, NULL, 0, "%s", m ? m : "");
        free(m);
        free(lvl);
        return STEP_DONE;
    }
    case TASK_FINISH: {
        char *st = NULL, *m = NULL;
        if (attr(r, s, "status", &st, NULL) < 0 || attr(r, s, "message", &m, NULL) < 0) {
            free(st);
            return STEP_FAILED;
        }
        tr_status_t status = !st || !strcmp(st, "SUCCESS") ? TR_SUCCESS : !strcmp(st, "WARNING") ? TR_WARNING : TR_ERROR;
        end(r, status, "%s", m ? m : "finished by <finish>");
        free(st);
        free(m);
        return STEP_FAILED; /* stops the program; status already set */
    }
    case TASK_WAIT: {
        /* the wait itself is done: the next session goes on after it */
        long long t = 0;
        if (attr_int(r, s, "timeoutSeconds", 1, INT32_MAX, &t) < 0)
            return STEP_FAILED;
        if (t > 0)
            json_object_set_new(r->vars, "__deadline", json_integer((json_int_t)(r->now_ms + t * 1000)));
        else
            json_object_del(r->vars, "__deadline");
        r->stack[r->depth].pc++;
        if (t > 0)
            pause_run(r, "waiting for the device's next session (at most %llds)", t);
        else
            pause_run(r, "waiting for the device's next session");
        return STEP_FAILED;
    }
    case TASK_JOIN:
    case TASK_LEAVE: {
        char *g = NULL, err[256] = "not supported here";
        if (attr(r, s, "group", &g, NULL) <= 0) {
            if (r->state != TR_DONE)
                fail(r, "group is required");
            return STEP_FAILED;
        }
        int rc = r->host->group ? r->host->group(r->hctx, g, s->kind == TASK_JOIN, err, sizeof err) : -1;
        if (rc != 0)
            fail(r, "group '%s': %s", g, err);
        free(g);
        return rc == 0 ? STEP_DONE : STEP_FAILED;
    }
    case TASK_DELETE:
    case TASK_CREATE:
    case TASK_OBSERVE:
    case TASK_SET_ATTRIBUTES:
        if (after_finish(r))
            return wait_for_management(r);
        if (!on_management(r, s))
            return STEP_FAILED;
        if (s->kind == TASK_DELETE)
            return step_delete(r, s);
        if (s->kind == TASK_CREATE)
            return step_create(r, s);
        return step_observe(r, s, s->kind == TASK_OBSERVE);
    default:
        fail(r, "<%s> is not allowed here", task_kind_name(s->kind));
        return STEP_FAILED;
    }
}

/* --------------------------------------------------------------- queue */
static step_rc_t start_next_op(task_runner_t *r)
{
    if (r->qpos >= r->nq) {
        clear_queue(r);
        return STEP_DONE;
    }
    const queued_op_t *q = &r->q[r->qpos];
    if (r->deferring)
        snprintf(r->label, sizeof r->label, "<%s> line %d (deferred)", q->kind == TR_OP_EXECUTE ? "execute" : "set",
                 q->line);
    tr_op_t op = {.kind = q->kind, .path = q->path, .cf = q->cf, .payload = q->payload, .len = q->len,
                  .query = q->query};
    r->inflight = true;
    if (r->host->start_op(r->hctx, r, &op) != 0) {
        r->inflight = false;
        fail(r, "could not send the request");
        return STEP_FAILED;
    }
    return STEP_WAIT;
}

/* Queues the operations of __deferred (runner.h "Resuming"). */
static int queue_deferred(task_runner_t *r)
{
    json_t *def = json_object_get(r->vars, "__deferred");
    for (size_t i = 0; i < json_array_size(def); i++) {
        json_t *d = json_array_get(def, i);
        const char *op = json_string_value(json_object_get(d, "op"));
        const char *ps = json_string_value(json_object_get(d, "path"));
        json_t *line = json_object_get(d, "line");
        snprintf(r->label, sizeof r->label, "<%s> line %d (deferred)", op && !strcmp(op, "write") ? "set" : "execute",
                 json_is_integer(line) ? (int)json_integer_value(line) : 0);
        lwm2m_path_t p;
        if (!op || !ps || lwm2m_path_parse(ps, strlen(ps), &p) != 0 || p.len < 3) {
            fail(r, "deferred operation %zu is not valid", i + 1);
            return -1;
        }
        int ln = json_is_integer(line) ? (int)json_integer_value(line) : 0;
        if (!strcmp(op, "execute")) {
            json_t *a = json_object_get(d, "arguments");
            size_t al = json_is_string(a) ? json_string_length(a) : 0;
            uint8_t *args = al ? malloc(al) : NULL;
            if (al && !args) {
                fail(r, "out of memory");
                return -1;
            }
            if (al)
                memcpy(args, json_string_value(a), al);
            if (enqueue_q(r, TR_OP_EXECUTE, &p, al ? LWM2M_CF_TEXT : LWM2M_CF_NONE, args, al, NULL, ln) != 0) {
                fail(r, "out of memory");
                return -1;
            }
        } else if (!strcmp(op, "write")) {
            json_t *v = json_object_get(d, "value");
            const char *tn = json_string_value(json_object_get(d, "type"));
            int type = tn ? lwm2m_type_parse(tn) : -1;
            if (!json_is_string(v)) {
                fail(r, "deferred operation %zu has no value", i + 1);
                return -1;
            }
            if (type < 0) {
                type = r->reg ? lwm2m_registry_type(r->reg, p.ids[0], p.ids[2]) : -1;
                if (type < 0)
                    type = LWM2M_T_STRING;
            }
            lwm2m_records_t rs;
            lwm2m_records_init(&rs);
            if (add_typed(r, &rs, &p, type, json_string_value(v), json_string_length(v)) != 0) {
                lwm2m_records_clear(&rs);
                if (r->state != TR_DONE)
                    fail(r, "out of memory");
                return -1;
            }
            int cf = write_cf(r);
            uint8_t *buf = NULL;
            size_t len = 0;
            int rc = lwm2m_encode(cf, &p, &rs, &buf, &len);
            lwm2m_records_clear(&rs);
            if (rc != 0 || enqueue_q(r, TR_OP_WRITE, &p, cf, buf, len, NULL, ln) != 0) {
                fail(r, "could not encode the value");
                return -1;
            }
        } else {
            fail(r, "unknown deferred operation '%.40s'", op);
            return -1;
        }
    }
    return 0;
}

/* ----------------------------------------------------------------- driver */
task_runner_t *task_runner_new(const task_program_t *prog, const lwm2m_registry_t *reg, const task_host_t *host,
                               void *hctx, tr_session_kind_t kind, task_session_view_t *view, const char *vars_json)
{
    task_runner_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->prog = prog;
    r->reg = reg;
    r->host = host;
    r->hctx = hctx;
    r->kind = kind;
    r->view = view;
    r->vars = vars_json ? json_loads(vars_json, 0, NULL) : NULL;
    if (!json_is_object(r->vars)) {
        json_decref(r->vars);
        r->vars = json_object();
    }
    if (!r->vars) {
        free(r);
        return NULL;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    r->now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    r->stack[0] = (frame_t){prog->steps, prog->nsteps, 0};
    r->depth = 0;
    resume_parse(prog, r->vars, &r->res);
    r->resumed = r->res.has;
    if (r->resumed && !r->res.changed && !r->res.invalid) {
        memcpy(r->stack, r->res.stack, sizeof r->stack);
        r->depth = r->res.depth;
    }
    r->state = TR_NEW;
    r->status = TR_IN_PROGRESS;
    return r;
}

void task_runner_free(task_runner_t **rp)
{
    task_runner_t *r = rp ? *rp : NULL;
    if (!r)
        return;
    clear_queue(r);
    json_decref(r->vars);
    free(r);
    *rp = NULL;
}

void task_runner_set_now(task_runner_t *r, int64_t now_ms) { r->now_ms = now_ms; }

/* After the deferred operations: the deadline of a <wait>, then the steps. */
static bool check_deadline(task_runner_t *r)
{
    json_t *dl = json_object_get(r->vars, "__deadline");
    if (!dl)
        return true;
    if (json_is_integer(dl) && r->now_ms > json_integer_value(dl)) {
        snprintf(r->label, sizeof r->label, "<wait>");
        end(r, TR_ERROR, "wait timed out");
        return false;
    }
    json_object_del(r->vars, "__deadline");
    return true;
}

/* The start of a resumed run (runner.h "Resuming"). true: go on with the
 * steps; false: ended or waiting for a deferred operation. */
static bool begin_resumed(task_runner_t *r)
{
    snprintf(r->label, sizeof r->label, "resume");
    if (r->res.changed) {
        end(r, TR_ERROR, "the task was changed while this run was in progress; the run is not resumed");
        return false;
    }
    if (r->res.invalid) {
        end(r, TR_ERROR, "the saved resume point (__pc) does not name a step of this task");
        return false;
    }
    if (!resume_fits(&r->res, r->kind)) {
        /* left untouched for a session of the other kind */
        end(r, TR_IN_PROGRESS, "waiting for a %s session",
            r->kind == TR_SESSION_BOOTSTRAP ? "management" : "bootstrap");
        return false;
    }
    const frame_t *f = &r->stack[r->depth];
    if (f->pc < f->n)
        rlog(r, "info", NULL, NULL, 0, "resumed at <%s> line %d%s", task_kind_name(f->steps[f->pc].kind),
             f->steps[f->pc].line, r->res.ndeferred ? ", after the deferred operations" : "");
    else
        rlog(r, "info", NULL, NULL, 0, "resumed at the end of the task%s",
             r->res.ndeferred ? ", after the deferred operations" : "");
    if (r->kind == TR_SESSION_MANAGEMENT && r->res.ndeferred) {
        if (queue_deferred(r) != 0)
            return false;
        r->deferring = true;
        step_rc_t rc = start_next_op(r);
        if (rc == STEP_WAIT)
            r->state = TR_WAITING;
        if (rc != STEP_DONE)
            return false;
        r->deferring = false;
    }
    return check_deadline(r);
}

void task_runner_run(task_runner_t *r)
{
    if (r->state == TR_DONE || r->inflight)
        return;
    if (r->state == TR_NEW) {
        r->state = TR_RUNNING;
        if (r->resumed && !begin_resumed(r))
            return;
    }
    r->state = TR_RUNNING;
    while (r->state == TR_RUNNING) {
        frame_t *f = &r->stack[r->depth];
        if (f->pc >= f->n) {
            if (r->depth == 0) {
                json_t *def = json_object_get(r->vars, "__deferred");
                if (def && json_array_size(def) > 0)
                    pause_run(r, "%zu operation(s) deferred to the next management session", json_array_size(def));
                else
                    end(r, TR_SUCCESS, "completed");
                return;
            }
            r->depth--;
            continue;
        }
        const task_step_t *s = &f->steps[f->pc];
        step_rc_t rc = exec_step(r, s);
        if (r->state == TR_DONE)
            return;
        if (rc == STEP_DONE)
            f->pc++;
        else if (rc == STEP_WAIT) {
            r->state = TR_WAITING;
            return;
        } else if (rc == STEP_FAILED) {
            if (r->state != TR_DONE)
                fail(r, "failed");
            return;
        }
        /* STEP_PUSHED: the branch runs next */
    }
}

/* The value of a record as a task variable: the text form task_value_parse
 * reads (opaque as lower-case hex). */
static json_t *record_json(const lwm2m_record_t *x, bool typed)
{
    char buf[64];
    switch (x->type) {
    case LWM2M_T_STRING:
    case LWM2M_T_CORELNK: return json_stringn(x->bytes ? (const char *)x->bytes : "", x->nbytes);
    case LWM2M_T_OPAQUE: {
        char *hex = malloc(2 * x->nbytes + 1);
        if (!hex)
            return NULL;
        for (size_t i = 0; i < x->nbytes; i++)
            snprintf(hex + 2 * i, 3, "%02x", x->bytes[i]);
        hex[2 * x->nbytes] = 0;
        json_t *j = json_stringn(hex, 2 * x->nbytes);
        free(hex);
        return j;
    }
    case LWM2M_T_UNSIGNED:
        if (typed && x->v.u <= INT64_MAX)
            return json_integer((json_int_t)x->v.u);
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)x->v.u);
        return json_string(buf);
    case LWM2M_T_FLOAT:
        if (typed && isfinite(x->v.f))
            return json_real(x->v.f);
        snprintf(buf, sizeof buf, "%.17g", x->v.f);
        return json_string(buf);
    case LWM2M_T_BOOLEAN: return typed ? json_boolean(x->v.b) : json_string(x->v.b ? "true" : "false");
    case LWM2M_T_OBJLNK:
        snprintf(buf, sizeof buf, "%u:%u", x->v.lnk.oid, x->v.lnk.iid);
        return json_string(buf);
    default:
        if (typed)
            return json_integer((json_int_t)x->v.i);
        snprintf(buf, sizeof buf, "%lld", (long long)x->v.i);
        return json_string(buf);
    }
}

/* <get>: one resource value as its text; anything else (an object, an
 * instance, a multiple resource) as a JSON object {"/3/0/0": "lwdm",
 * "/3/0/9": 80, ...} with typed values (docs/tasks.md). */
static void got_value(task_runner_t *r, const queued_op_t *op, const char *sent, int cf, const uint8_t *payload,
                      size_t len)
{
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    if (lwm2m_decode(cf, &op->path, payload, len, r->reg, &rs) != 0) {
        lwm2m_records_clear(&rs);
        fail(r, "could not decode the answer to %s (%s)", sent, lwm2m_cf_name(cf));
        return;
    }
    json_t *v = NULL;
    if (rs.n == 1 && op->path.len >= 3 && lwm2m_path_equal(&rs.recs[0].path, &op->path)) {
        v = record_json(&rs.recs[0], false);
    } else {
        json_t *o = json_object();
        for (size_t i = 0; o && i < rs.n; i++) {
            char ps[64];
            lwm2m_path_format(&rs.recs[i].path, ps, sizeof ps);
            json_object_set_new(o, ps, record_json(&rs.recs[i], true));
        }
        char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
        v = t ? json_string(t) : NULL;
        free(t);
        json_decref(o);
    }
    lwm2m_records_clear(&rs);
    if (!v) {
        fail(r, "out of memory");
        return;
    }
    set_var(r, r->get_var, json_string_value(v), json_string_length(v));
    json_decref(v);
}

void task_runner_resume(task_runner_t *r, int code, int cf, const uint8_t *payload, size_t len, const char *error)
{
    if (r->state != TR_WAITING || !r->inflight)
        return;
    r->inflight = false;
    r->state = TR_RUNNING;
    char cs[8] = "-";
    if (r->discovering) {
        r->discovering = false;
        if (code > 0)
            code_str(code, cs);
        rlog(r, "info", "GET / (Bootstrap-Discover)", error ? error : cs, code, NULL);
        view_discovered(r->view, error ? 0 : code, payload, len);
        task_runner_run(r); /* the step runs again, now with the view */
        return;
    }
    if (r->rest_step) {
        const task_step_t *s = r->rest_step;
        r->rest_step = NULL;
        rest_done(r, s, error ? 0 : code, payload, len, error);
        if (r->state == TR_DONE)
            return;
        r->stack[r->depth].pc++;
        task_runner_run(r);
        return;
    }
    if (!r->q || r->qpos >= r->nq) {
        fail(r, "unexpected answer");
        return;
    }
    const queued_op_t *op = &r->q[r->qpos];
    char ps[64], sent[600];
    lwm2m_path_format(&op->path, ps, sizeof ps);
    snprintf(sent, sizeof sent, "%s %s%s%s", tr_op_name(op->kind), op->kind == TR_OP_FINISH ? "/bs" : ps,
             op->query ? "?" : "", op->query ? op->query : "");
    if (error) {
        rlog(r, "error", sent, error, 0, NULL);
        fail(r, "%s: %s", sent, error);
        return;
    }
    code_str(code, cs);
    rlog(r, (code >> 5) == 2 ? "info" : "error", sent, cs, code, NULL);
    int cls = code >> 5;
    bool ok = cls == 2 || (op->kind == TR_OP_DELETE && code == LWM2M_CODE(4, 4));
    if (!ok) {
        if (op->kind == TR_OP_FINISH && code == LWM2M_CODE(4, 6))
            fail(r, "Bootstrap-Finish answered 4.06: the client rejected the configuration");
        else
            fail(r, "%s answered %s", sent, cs);
        return;
    }
    if (r->view && r->kind == TR_SESSION_BOOTSTRAP)
        view_applied(r->view, op);
    if (op->kind == TR_OP_READ && r->get_var[0]) {
        got_value(r, op, sent, cf, payload, len);
        if (r->state == TR_DONE)
            return;
    }
    if (r->deferring) {
        /* answered: never sent again, even if the run stops later */
        json_array_remove(json_object_get(r->vars, "__deferred"), 0);
    }
    r->qpos++;
    if (r->qpos < r->nq) {
        if (start_next_op(r) == STEP_WAIT)
            r->state = TR_WAITING;
        return;
    }
    clear_queue(r);
    if (r->deferring) {
        r->deferring = false;
        json_object_del(r->vars, "__deferred");
        if (check_deadline(r))
            task_runner_run(r);
        return;
    }
    /* step complete */
    if (r->sec_out_var[0]) {
        char b[16];
        snprintf(b, sizeof b, "%d", r->sec_out_iid);
        bool ok_var = set_var(r, r->sec_out_var, b, strlen(b));
        r->sec_out_var[0] = 0;
        if (!ok_var)
            return;
    }
    r->stack[r->depth].pc++;
    task_runner_run(r);
}

void task_runner_abort(task_runner_t *r, const char *why)
{
    if (r->state == TR_DONE)
        return;
    r->inflight = false;
    end(r, TR_ERROR, "%s", why ? why : "aborted");
}

void task_runner_suspend(task_runner_t *r, const char *why)
{
    if (r->state == TR_DONE)
        return;
    r->inflight = false;
    r->sec_out_var[0] = 0;
    if (r->state == TR_NEW && !r->resumed) {
        pause_run(r, "%s", why ? why : "suspended");
        return;
    }
    if (r->state == TR_NEW) { /* nothing ran: the saved point stays as it is */
        end(r, TR_IN_PROGRESS, "%s", why ? why : "suspended");
        return;
    }
    /* the top frame points at the step that was running (or, while
     * deferring, at the saved point; __deferred holds what is left) */
    pause_run(r, "%s", why ? why : "suspended");
}

tr_state_t task_runner_state(const task_runner_t *r) { return r->state; }
tr_status_t task_runner_status(const task_runner_t *r) { return r->status; }
const char *task_runner_summary(const task_runner_t *r) { return r->summary; }
bool task_runner_resumed(const task_runner_t *r) { return r->resumed; }
char *task_runner_vars_json(const task_runner_t *r) { return json_dumps(r->vars, JSON_COMPACT | JSON_SORT_KEYS); }
void task_runner_set_user(task_runner_t *r, void *user) { r->user = user; }
void *task_runner_user(const task_runner_t *r) { return r->user; }
