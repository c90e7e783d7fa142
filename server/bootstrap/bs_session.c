/* Bootstrap session state machine; see bs_session.h for the diagram.
 *
 * Transition table (state, event -> next state, function):
 *   NEW,      start               -> DISCOVER  bs_session_start
 *   DISCOVER, 2.05 / 4.xx / bad   -> RUN       on_discover (refused: fixed ids)
 *   RUN,      2.xx (4.04 on Delete)-> RUN|FINISH send_next
 *   RUN,      other code          -> FAILED
 *   FINISH,   2.04                -> DONE
 *   FINISH,   4.06 / other        -> FAILED   (client rejected the config)
 *   *,        error/timeout/cancel-> FAILED
 */
#include "server/bootstrap/bs_session.h"

#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/common/log.h"
#include "server/lwm2m/codec.h"
#include "server/lwm2m/link.h"

struct bs_session {
    const bs_session_io_t *io;
    void *io_ctx;
    void *user;
    char *endpoint;
    int64_t device_id;
    int pct;
    int cf;
    int version;
    int bs_iid;
    bs_state_t state;
    bs_account_t *accts;
    size_t naccts;
    lwm2m_records_t recs;
    bs_ops_t ops;
    size_t next_op;         /* index of the op after the outstanding one */
    int64_t started_ms;
    json_t *steps;
    char reason[256];
};

static void assert_bs_session(const bs_session_t *s)
{
    assert(s->state <= BS_FAILED);
    assert(s->next_op <= s->ops.n);
    assert(s->state != BS_FINISH || s->next_op == s->ops.n);
    (void)s;
}

bs_session_t *bs_session_new(const bs_session_io_t *io, void *io_ctx, const char *endpoint, int64_t device_id, int pct,
                             bs_account_t *accts, size_t n, int64_t now_ms)
{
    bs_session_t *s = calloc(1, sizeof *s);
    if (!s)
        goto fail;
    s->endpoint = strdup(endpoint ? endpoint : "");
    s->steps = json_array();
    if (!s->endpoint || !s->steps)
        goto fail;
    s->io = io;
    s->io_ctx = io_ctx;
    s->device_id = device_id;
    s->pct = pct;
    s->bs_iid = BS_IID_UNKNOWN;
    s->accts = accts;
    s->naccts = n;
    s->started_ms = now_ms;
    s->state = BS_NEW;
    lwm2m_records_init(&s->recs);
    bs_ops_init(&s->ops);
    return s;
fail:
    if (s) {
        free(s->endpoint);
        json_decref(s->steps);
        free(s);
    }
    for (size_t i = 0; i < n; i++)
        bs_account_clear(&accts[i]);
    free(accts);
    return NULL;
}

void bs_session_free(bs_session_t **sp)
{
    bs_session_t *s = sp ? *sp : NULL;
    if (!s)
        return;
    for (size_t i = 0; i < s->naccts; i++)
        bs_account_clear(&s->accts[i]);
    free(s->accts);
    lwm2m_records_clear(&s->recs);
    bs_ops_clear(&s->ops);
    json_decref(s->steps);
    free(s->endpoint);
    free(s);
    *sp = NULL;
}

static void code_str(int code, char out[8])
{
    if (code <= 0)
        snprintf(out, 8, "-");
    else
        snprintf(out, 8, "%d.%02d", (code >> 5) & 7, code & 31);
}

static void add_step(bs_session_t *s, const char *op, const lwm2m_path_t *path, int cf, int code, int64_t now_ms,
                     const char *detail)
{
    char p[64] = "/bs", c[8];
    if (path)
        lwm2m_path_format(path, p, sizeof p);
    code_str(code, c);
    json_t *st = json_pack("{s:s, s:s, s:s, s:I}", "op", op, "path", p, "code", c, "ms",
                           (json_int_t)(now_ms - s->started_ms));
    if (!st)
        return;
    if (cf != LWM2M_CF_NONE)
        json_object_set_new(st, "format", json_string(lwm2m_cf_name(cf)));
    if (detail && *detail)
        json_object_set_new(st, "detail", json_string(detail));
    json_array_append_new(s->steps, st);
    LOGD("bootstrap", "ep=%s op=%s path=%s code=%s%s%s", s->endpoint, op, p, c, detail ? " detail=" : "",
         detail ? detail : "");
}

void bs_session_note_request(bs_session_t *s, const char *uri, int code)
{
    char c[8];
    code_str(code, c);
    json_t *st = json_pack("{s:s, s:s, s:s, s:I}", "op", "request", "path", uri ? uri : "/bs", "code", c, "ms",
                           (json_int_t)0);
    if (st)
        json_array_append_new(s->steps, st);
}

static void finish(bs_session_t *s, bool ok, const char *reason)
{
    if (s->state == BS_DONE || s->state == BS_FAILED)
        return;
    s->state = ok ? BS_DONE : BS_FAILED;
    snprintf(s->reason, sizeof s->reason, "%s", ok ? "" : (reason ? reason : "failed"));
    if (ok)
        LOGI("bootstrap", "ep=%s event=finished result=success", s->endpoint);
    else
        LOGW("bootstrap", "ep=%s event=finished result=failed reason=\"%s\"", s->endpoint, s->reason);
    if (s->io->done)
        s->io->done(s->io_ctx, s);
}

static int method_of(bs_op_kind_t k)
{
    switch (k) {
    case BS_OP_DISCOVER: case BS_OP_READ: return BS_GET;
    case BS_OP_DELETE: return BS_DELETE;
    case BS_OP_WRITE: return BS_PUT;
    default: return BS_POST;
    }
}

/* Sends ops[next_op]; moves to FINISH when it is the Finish. */
static void send_next(bs_session_t *s)
{
    if (s->next_op >= s->ops.n) {
        finish(s, false, "internal: empty plan");
        return;
    }
    const bs_op_t *op = &s->ops.ops[s->next_op++];
    if (op->kind == BS_OP_FINISH)
        s->state = BS_FINISH;
    int accept = op->kind == BS_OP_DISCOVER ? LWM2M_CF_LINK : LWM2M_CF_NONE;
    int rc = s->io->send(s->io_ctx, s, method_of(op->kind), op->kind == BS_OP_FINISH ? NULL : &op->path, op->cf,
                         accept, op->payload, op->len);
    if (rc != 0) {
        char why[128];
        snprintf(why, sizeof why, "could not send %s", bs_op_name(op->kind));
        finish(s, false, why);
    }
    assert_bs_session(s);
}

static const bs_op_t *outstanding(const bs_session_t *s)
{
    return s->next_op > 0 ? &s->ops.ops[s->next_op - 1] : NULL;
}

void bs_session_start(bs_session_t *s, int64_t now_ms)
{
    if (s->state != BS_NEW)
        return;
    lwm2m_path_t root = lwm2m_path_make(0, 0, 0, 0, 0);
    if (bs_ops_add(&s->ops, BS_OP_DISCOVER, &root, LWM2M_CF_NONE, NULL, 0) != 0) {
        finish(s, false, "out of memory");
        return;
    }
    s->state = BS_DISCOVER;
    LOGD("bootstrap", "ep=%s event=start pct=%d", s->endpoint, s->pct);
    send_next(s);
}

/* Learns the client's version and BS-account instance from a Discover answer.
 * The BS account is the /0 instance without `ssid` (Core 1.1 §5.2.7.3;
 * CONFORMANCE.md §1 Bootstrap-Discover). Both 1.0 and 1.1 forms are accepted. */
static void parse_discover(bs_session_t *s, const uint8_t *payload, size_t len)
{
    lwm2m_links_t ls;
    lwm2m_links_init(&ls);
    if (lwm2m_link_parse(payload, len, &ls) == 0) {
        s->version = lwm2m_links_version(&ls);
        for (size_t i = 0; i < ls.n; i++) {
            const lwm2m_link_t *l = &ls.links[i];
            if (l->is_lwm2m_path && l->path.len == 2 && l->path.ids[0] == 0 && !lwm2m_link_attr(l, "ssid")) {
                s->bs_iid = l->path.ids[1];
                break;
            }
        }
    }
    lwm2m_links_clear(&ls);
}

/* Builds Delete /0, Delete /1, the writes and Finish. */
static int build_plan(bs_session_t *s)
{
    s->cf = bs_choose_cf(s->pct, s->version);
    int rc = bs_plan_records(s->accts, s->naccts, s->bs_iid, &s->recs);
    lwm2m_path_t p0 = lwm2m_path_make(1, 0, 0, 0, 0), p1 = lwm2m_path_make(1, 1, 0, 0, 0);
    if (rc == 0)
        rc = bs_ops_add(&s->ops, BS_OP_DELETE, &p0, LWM2M_CF_NONE, NULL, 0);
    if (rc == 0)
        rc = bs_ops_add(&s->ops, BS_OP_DELETE, &p1, LWM2M_CF_NONE, NULL, 0);
    if (rc == 0)
        rc = bs_plan_writes(&s->recs, s->cf, &s->ops);
    if (rc == 0)
        rc = bs_ops_add(&s->ops, BS_OP_FINISH, NULL, LWM2M_CF_NONE, NULL, 0);
    return rc;
}

void bs_session_on_response(bs_session_t *s, int code, int cf, const uint8_t *payload, size_t len, int64_t now_ms)
{
    const bs_op_t *op = outstanding(s);
    if (bs_session_finished(s) || s->state == BS_NEW || !op)
        return;
    int cls = code >> 5;
    add_step(s, bs_op_name(op->kind), op->kind == BS_OP_FINISH ? NULL : &op->path,
             op->kind == BS_OP_WRITE ? op->cf : LWM2M_CF_NONE, code, now_ms, NULL);
    switch (s->state) {
    case BS_DISCOVER:
        if (cls == 2 && code == LWM2M_CODE(2, 5))
            parse_discover(s, payload, len);
        else
            LOGI("bootstrap", "ep=%s event=discover-refused code=%d.%02d fallback=fixed-ids", s->endpoint, cls,
                     code & 31);
        (void)cf;
        if (build_plan(s) != 0) {
            finish(s, false, "could not build the configuration");
            return;
        }
        s->state = BS_RUN;
        send_next(s);
        return;
    case BS_RUN:
        /* A 4.04 on Delete means there was nothing to delete. */
        if (cls == 2 || (op->kind == BS_OP_DELETE && code == LWM2M_CODE(4, 4))) {
            send_next(s);
            return;
        } else {
            char why[160], p[64];
            lwm2m_path_format(&op->path, p, sizeof p);
            snprintf(why, sizeof why, "%s %s answered %d.%02d", bs_op_name(op->kind), p, cls, code & 31);
            finish(s, false, why);
        }
        return;
    case BS_FINISH:
        if (code == LWM2M_CODE(2, 4)) {
            finish(s, true, NULL);
        } else {
            char why[160];
            if (code == LWM2M_CODE(4, 6))
                snprintf(why, sizeof why, "finish answered 4.06: the client rejected the configuration");
            else
                snprintf(why, sizeof why, "finish answered %d.%02d", cls, code & 31);
            finish(s, false, why);
        }
        return;
    default:
        return;
    }
}

void bs_session_on_error(bs_session_t *s, const char *reason, int64_t now_ms)
{
    if (bs_session_finished(s))
        return;
    const bs_op_t *op = outstanding(s);
    if (op)
        add_step(s, bs_op_name(op->kind), op->kind == BS_OP_FINISH ? NULL : &op->path, LWM2M_CF_NONE, 0, now_ms,
                 reason);
    char why[256];
    snprintf(why, sizeof why, "%s%s%s", op ? bs_op_name(op->kind) : "session", ": ", reason ? reason : "error");
    finish(s, false, why);
}

void bs_session_cancel(bs_session_t *s, const char *reason, int64_t now_ms)
{
    if (bs_session_finished(s))
        return;
    (void)now_ms;
    finish(s, false, reason ? reason : "cancelled");
}

bs_state_t bs_session_state(const bs_session_t *s) { return s->state; }
bool bs_session_finished(const bs_session_t *s) { return s->state == BS_DONE || s->state == BS_FAILED; }
bool bs_session_succeeded(const bs_session_t *s) { return s->state == BS_DONE; }
const char *bs_session_reason(const bs_session_t *s) { return s->reason; }
const char *bs_session_endpoint(const bs_session_t *s) { return s->endpoint; }
int64_t bs_session_device_id(const bs_session_t *s) { return s->device_id; }
int64_t bs_session_started_ms(const bs_session_t *s) { return s->started_ms; }
int bs_session_cf(const bs_session_t *s) { return s->cf; }
int bs_session_version(const bs_session_t *s) { return s->version; }
int bs_session_bs_iid(const bs_session_t *s) { return s->bs_iid; }
void bs_session_set_user(bs_session_t *s, void *user) { s->user = user; }
void *bs_session_user(const bs_session_t *s) { return s->user; }
const lwm2m_records_t *bs_session_records(const bs_session_t *s) { return &s->recs; }

char *bs_session_steps_json(const bs_session_t *s)
{
    return json_dumps(s->steps, JSON_COMPACT);
}
