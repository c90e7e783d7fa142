/* Task runner; see runner.h for the state diagram.
 *
 * Execution model: a stack of frames (steps array + program counter). A step
 * either completes at once (store, log, if, ...) or builds a queue of
 * operations (CoAP requests, an HTTP call) and starts the first; each
 * task_runner_resume() checks the answer and starts the next; when the queue
 * is empty the step is done and the program counter moves on. A step that
 * needs to know the client (cleanse, configuration) first makes the session
 * Discover, then runs again.
 *
 * Invariants: WAITING <=> exactly one operation outstanding (r->inflight);
 * DONE is sticky; the queue belongs to the step at the top of the stack. */
#include "server/tasks/runner.h"

#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
} queued_op_t;

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
};

void task_bs_view_init(task_bs_view_t *v, int pct)
{
    memset(v, 0, sizeof *v);
    v->pct = pct;
    v->bs_iid = -1;
    v->cf = LWM2M_CF_NONE;
}

const char *tr_status_name(tr_status_t s)
{
    static const char *const n[] = {"SUCCESS", "WARNING", "ERROR", "IN_PROGRESS"};
    return (unsigned)s < 4 ? n[s] : "?";
}

/* ------------------------------------------------------------------ basics */
static void clear_queue(task_runner_t *r)
{
    for (size_t i = 0; i < r->nq; i++)
        free(r->q[i].payload);
    free(r->q);
    r->q = NULL;
    r->nq = r->qpos = 0;
    r->qstep = NULL;
}

static int enqueue(task_runner_t *r, tr_op_kind_t kind, const lwm2m_path_t *p, int cf, uint8_t *payload, size_t len)
{
    queued_op_t *nq = realloc(r->q, (r->nq + 1) * sizeof *nq);
    if (!nq) {
        free(payload);
        return -1;
    }
    r->q = nq;
    r->q[r->nq++] = (queued_op_t){kind, p ? *p : lwm2m_path_make(0, 0, 0, 0, 0), cf, payload, len};
    return 0;
}

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
    clear_queue(r);
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

static void set_var(task_runner_t *r, const char *name, const char *v, size_t len)
{
    json_object_set_new(r->vars, name, json_stringn(v, len));
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

static step_rc_t step_set(task_runner_t *r, const task_step_t *s)
{
    lwm2m_path_t p;
    int kt;
    char *v = NULL;
    size_t vl = 0;
    if (key_of(r, s, &p, &kt) != 0 || attr(r, s, "value", &v, &vl) < 0)
        return STEP_FAILED;
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
    int cf = r->view ? r->view->cf : LWM2M_CF_SENML_CBOR;
    if (cf == LWM2M_CF_NONE)
        cf = LWM2M_CF_SENML_CBOR;
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
    if (r->kind == TR_SESSION_BOOTSTRAP) {
        /* Execute is not a bootstrap operation: it waits for the device's next
         * management session (TASKS.md), and the task stays IN_PROGRESS. */
        json_t *def = json_object_get(r->vars, "__deferred");
        if (!def) {
            def = json_array();
            json_object_set_new(r->vars, "__deferred", def);
        }
        char ps[64];
        lwm2m_path_format(&p, ps, sizeof ps);
        json_array_append_new(def, json_pack("{s:s,s:s,s:s%}", "op", "execute", "path", ps, "arguments",
                                             args ? args : "", (size_t)(args ? al : 0)));
        rlog(r, "info", NULL, NULL, 0, "execute %s deferred to the next management session", ps);
        free(args);
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
    lwm2m_path_t p;
    int kt;
    char *out = NULL;
    if (key_of(r, s, &p, &kt) != 0 || attr(r, s, "output", &out, NULL) < 0)
        return STEP_FAILED;
    snprintf(r->get_var, sizeof r->get_var, "%s", out ? (out[0] == '#' ? out + 1 : out) : "");
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
    } else {
        set_var(r, name, v ? v : "", vl);
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
    case TASK_WAIT:
        end(r, TR_IN_PROGRESS, "waiting for the device's next session");
        return STEP_FAILED;
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
        if (r->kind == TR_SESSION_BOOTSTRAP) {
            fail(r, "<%s> runs only on a management session", task_kind_name(s->kind));
            return STEP_FAILED;
        }
        fail(r, "<%s> is not supported yet", task_kind_name(s->kind));
        return STEP_FAILED;
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
    tr_op_t op = {.kind = q->kind, .path = q->path, .cf = q->cf, .payload = q->payload, .len = q->len};
    r->inflight = true;
    if (r->host->start_op(r->hctx, r, &op) != 0) {
        r->inflight = false;
        fail(r, "could not send the request");
        return STEP_FAILED;
    }
    return STEP_WAIT;
}

static const char *op_name(tr_op_kind_t k)
{
    static const char *const n[] = {"discover", "read", "write", "delete", "finish", "execute", "http"};
    return (unsigned)k < 7 ? n[k] : "?";
}

/* ----------------------------------------------------------------- driver */
task_runner_t *task_runner_new(const task_program_t *prog, const lwm2m_registry_t *reg, const task_host_t *host,
                               void *hctx, tr_session_kind_t kind, task_bs_view_t *view, const char *vars_json)
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
    r->stack[0] = (frame_t){prog->steps, prog->nsteps, 0};
    r->depth = 0;
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

void task_runner_run(task_runner_t *r)
{
    if (r->state == TR_DONE || r->inflight)
        return;
    r->state = TR_RUNNING;
    while (r->state == TR_RUNNING) {
        frame_t *f = &r->stack[r->depth];
        if (f->pc >= f->n) {
            if (r->depth == 0) {
                json_t *def = json_object_get(r->vars, "__deferred");
                if (def && json_array_size(def) > 0)
                    end(r, TR_IN_PROGRESS, "%zu operation(s) deferred to the next management session",
                        json_array_size(def));
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
    char ps[64], sent[96];
    lwm2m_path_format(&op->path, ps, sizeof ps);
    snprintf(sent, sizeof sent, "%s %s", op_name(op->kind), op->kind == TR_OP_FINISH ? "/bs" : ps);
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
    if (r->view)
        view_applied(r->view, op);
    if (op->kind == TR_OP_READ && r->get_var[0]) {
        lwm2m_records_t rs;
        lwm2m_records_init(&rs);
        int rc = lwm2m_decode(cf, &op->path, payload, len, r->reg, &rs);
        if (rc != 0) {
            lwm2m_records_clear(&rs);
            fail(r, "could not decode the answer to %s", sent);
            return;
        }
        if (rs.n == 1 && op->path.len >= 3) {
            const lwm2m_record_t *x = &rs.recs[0];
            char buf[64];
            switch (x->type) {
            case LWM2M_T_STRING:
            case LWM2M_T_CORELNK:
                set_var(r, r->get_var, (const char *)x->bytes, x->nbytes);
                break;
            case LWM2M_T_OPAQUE: {
                char *hex = malloc(2 * x->nbytes + 1);
                for (size_t i = 0; hex && i < x->nbytes; i++)
                    snprintf(hex + 2 * i, 3, "%02x", x->bytes[i]);
                if (hex) {
                    hex[2 * x->nbytes] = 0;
                    set_var(r, r->get_var, hex, 2 * x->nbytes);
                }
                free(hex);
                break;
            }
            case LWM2M_T_UNSIGNED: snprintf(buf, sizeof buf, "%llu", (unsigned long long)x->v.u); set_var(r, r->get_var, buf, strlen(buf)); break;
            case LWM2M_T_FLOAT: snprintf(buf, sizeof buf, "%.17g", x->v.f); set_var(r, r->get_var, buf, strlen(buf)); break;
            case LWM2M_T_BOOLEAN: set_var(r, r->get_var, x->v.b ? "true" : "false", x->v.b ? 4 : 5); break;
            case LWM2M_T_OBJLNK: snprintf(buf, sizeof buf, "%u:%u", x->v.lnk.oid, x->v.lnk.iid); set_var(r, r->get_var, buf, strlen(buf)); break;
            default: snprintf(buf, sizeof buf, "%lld", (long long)x->v.i); set_var(r, r->get_var, buf, strlen(buf)); break;
            }
        } else {
            set_var(r, r->get_var, (const char *)payload, len);
        }
        lwm2m_records_clear(&rs);
    }
    r->qpos++;
    if (r->qpos < r->nq) {
        if (start_next_op(r) == STEP_WAIT)
            r->state = TR_WAITING;
        return;
    }
    /* step complete */
    if (r->sec_out_var[0]) {
        char b[16];
        snprintf(b, sizeof b, "%d", r->sec_out_iid);
        set_var(r, r->sec_out_var, b, strlen(b));
        r->sec_out_var[0] = 0;
    }
    clear_queue(r);
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

tr_state_t task_runner_state(const task_runner_t *r) { return r->state; }
tr_status_t task_runner_status(const task_runner_t *r) { return r->status; }
const char *task_runner_summary(const task_runner_t *r) { return r->summary; }
char *task_runner_vars_json(const task_runner_t *r) { return json_dumps(r->vars, JSON_COMPACT | JSON_SORT_KEYS); }
void task_runner_set_user(task_runner_t *r, void *user) { r->user = user; }
void *task_runner_user(const task_runner_t *r) { return r->user; }
