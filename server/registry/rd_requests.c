/* Requests to registered devices: the per-device queue (one in flight,
 * NSTART 1), queue mode, REST operations (devops.h) and observations.
 *
 * A request is QUEUED until the device is awake and nothing else is in
 * flight, then SENT until its answer, a NACK or the session's end. A REST
 * caller waits for the answer (its deadline timer answers 504 without
 * cancelling the exchange), except for a sleeping queue-mode device, where
 * the caller gets 202 with a request id at once and the result is kept in a
 * small per-device ring and published as a `request` event. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "server/coap_util.h"
#include "server/common/log.h"
#include "server/common/metrics.h"
#include "server/lwm2m/codec.h"
#include "server/lwm2m/link.h"
#include "server/lwm2m/registry.h"
#include "server/lwm2m/valjson.h"
#include "server/registry/rd_int.h"

#define RD_MAX_QUEUE 16
#define RD_QUEUED_TTL_MS (24LL * 3600 * 1000)
#define RD_HISTORY_KEEP 100

static int64_t now_ms(void) { return db_now_ms(); }

static void code_str(int code, char *buf, size_t cap) { snprintf(buf, cap, "%u.%02u", (unsigned)(code >> 5) & 7u, (unsigned)code & 31u); }

/* ---------------------------------------------------------------- queue */
static void rq_free(rd_rq_t *q)
{
    if (!q)
        return;
    timer_stop(q->rd->cfg.timers, &q->timer);
    free(q->payload);
    free(q->query);
    free(q);
}

static void unlink_queued(rd_reg_t *r, rd_rq_t *q)
{
    rd_rq_t *prev = NULL;
    for (rd_rq_t *it = r->q_head; it; prev = it, it = it->next)
        if (it == q) {
            if (prev)
                prev->next = q->next;
            else
                r->q_head = q->next;
            if (r->q_tail == q)
                r->q_tail = prev;
            r->nq--;
            q->next = NULL;
            return;
        }
}

static void rq_finish(rd_t *rd, rd_rq_t *q, int code, int cf, const uint8_t *p, size_t len, const coap_pdu_t *resp,
                      const char *err)
{
    rd_result_fn fn = q->fn;
    q->fn = NULL;
    if (fn)
        fn(rd, q->reg, q->user, code, cf, p, len, resp, err);
}

static void rq_timeout(lwdm_timer_t *t, void *arg)
{
    (void)t;
    rd_rq_t *q = arg;
    rd_t *rd = q->rd;
    rd_reg_t *r = q->reg;
    if (!q->sent) {
        unlink_queued(r, q);
        rq_finish(rd, q, 0, LWM2M_CF_NONE, NULL, 0, NULL, q->spec.keep_when_asleep ? "expired" : "timeout");
        rq_free(q);
        return;
    }
    /* in flight: answer the caller now, keep the exchange until its end */
    rq_finish(rd, q, 0, LWM2M_CF_NONE, NULL, 0, NULL, "timeout");
}

static void send_next(rd_t *rd, rd_reg_t *r)
{
    while (!r->inflight && r->q_head && rd_reg_awake(r, now_ms())) {
        rd_rq_t *q = r->q_head;
        unlink_queued(r, q);
        q->mid = rd_send(r, q->spec.method, &q->spec.path, q->spec.cf, q->spec.accept, q->spec.observe, q->query,
                         q->payload, q->spec.len, q->token);
        if (q->mid == COAP_INVALID_MID) {
            rq_finish(rd, q, 0, LWM2M_CF_NONE, NULL, 0, NULL, "could not send the request");
            rq_free(q);
            continue;
        }
        q->sent = true;
        r->inflight = q;
        char ps[48];
        lwm2m_path_format(&q->spec.path, ps, sizeof ps);
        LOGD("registry", "ep=%s event=request-sent method=%d path=%s id=%" PRId64, r->endpoint, q->spec.method, ps,
             q->id);
    }
}

void rd_requests_flush(rd_t *rd, rd_reg_t *r) { send_next(rd, r); }

int rd_request(rd_t *rd, rd_reg_t *r, const rd_req_spec_t *spec, rd_result_fn fn, void *user, int64_t *id_out)
{
    if (r->nq >= RD_MAX_QUEUE)
        return -2;
    if (!spec->keep_when_asleep && rd_reg_disconnected(r))
        return -3;
    rd_rq_t *q = calloc(1, sizeof *q);
    if (!q)
        return -1;
    q->rd = rd;
    q->reg = r;
    q->spec = *spec;
    q->fn = fn;
    q->user = user;
    q->id = rd->next_request_id++;
    q->mid = COAP_INVALID_MID;
    uint64_t t = rd->token_base ^ ++rd->token_seq;
    memcpy(q->token, &t, sizeof q->token);
    if (spec->len) {
        q->payload = malloc(spec->len);
        if (!q->payload) {
            free(q);
            return -1;
        }
        memcpy(q->payload, spec->payload, spec->len);
    }
    q->spec.payload = NULL;
    if (spec->query)
        q->query = strdup(spec->query);
    q->spec.query = NULL;
    timer_init(&q->timer, rq_timeout, q);
    int64_t deadline = spec->keep_when_asleep ? RD_QUEUED_TTL_MS : (spec->timeout_ms ? spec->timeout_ms : 10000);
    timer_start(rd->cfg.timers, &q->timer, rd_mono_ms() + deadline);
    if (r->q_tail)
        r->q_tail->next = q;
    else
        r->q_head = q;
    r->q_tail = q;
    r->nq++;
    if (id_out)
        *id_out = q->id;
    send_next(rd, r);
    return 0;
}

static rd_obs_t *obs_by_token(rd_reg_t *r, const uint8_t *tok, size_t len)
{
    if (len != 8)
        return NULL;
    for (rd_obs_t *o = r->obs; o; o = o->next)
        if (!memcmp(o->token, tok, 8))
            return o;
    return NULL;
}

static rd_obs_t *obs_by_path(rd_reg_t *r, const char *path)
{
    for (rd_obs_t *o = r->obs; o; o = o->next)
        if (!strcmp(o->path, path))
            return o;
    return NULL;
}

void rd_obs_free_all(rd_reg_t *r)
{
    while (r->obs) {
        rd_obs_t *o = r->obs;
        r->obs = o->next;
        free(o->attrs);
        free(o);
    }
}

/* A notification of an observation: latest values, history, event. */
static void on_notification(rd_t *rd, rd_reg_t *r, rd_obs_t *o, const coap_pdu_t *recv)
{
    int code = coap_pdu_get_code(recv);
    int cf = cu_pdu_uint_option(recv, COAP_OPTION_CONTENT_FORMAT, LWM2M_CF_NONE);
    bool has_obs = coap_check_option(recv, COAP_OPTION_OBSERVE, &(coap_opt_iterator_t){0}) != NULL;
    if ((code >> 5) != 2 || !has_obs) {
        /* an error or a 2.05 without Observe ends the observation (RFC 7641) */
        o->active = false;
        LOGI("registry", "ep=%s event=observation-ended path=%s code=%d.%02d", r->endpoint, o->path, code >> 5,
             code & 31);
        return;
    }
    /* RFC 7641 §3.4: a notification older than the last one is not the
     * latest value (2^23 window; after 128 s any value is fresh) */
    int64_t seq = cu_pdu_uint_option(recv, COAP_OPTION_OBSERVE, 0);
    int64_t t = rd_mono_ms();
    if (o->have_seq) {
        int64_t v1 = o->last_seq, v2 = seq;
        bool fresh = (v1 < v2 && v2 - v1 < (1 << 23)) || (v1 > v2 && v1 - v2 > (1 << 23)) || t > o->last_seq_ms + 128000;
        if (!fresh) {
            LOGD("registry", "ep=%s event=stale-notification path=%s seq=%" PRId64 " last=%" PRId64, r->endpoint,
                 o->path, seq, o->last_seq);
            return;
        }
    }
    o->have_seq = true;
    o->last_seq = seq;
    o->last_seq_ms = t;
    size_t len = 0, off = 0, total = 0;
    const uint8_t *data = NULL;
    if (!coap_get_data_large(recv, &len, &data, &off, &total))
        len = 0, data = NULL;
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    if (cf == LWM2M_CF_NONE)
        cf = r->version >= LWM2M_V1_1 ? LWM2M_CF_TEXT : LWM2M_CF_TLV;
    if (lwm2m_decode(cf, &o->p, data, len, rd->cfg.registry, &rs) != 0) {
        LOGW("registry", "ep=%s event=bad-notification path=%s cf=%d len=%zu", r->endpoint, o->path, cf, len);
        lwm2m_records_clear(&rs);
        return;
    }
    json_t *arr = lwm2m_records_to_json(rd->cfg.registry, &rs);
    lwm2m_records_clear(&rs);
    if (!arr)
        return;
    char *text = json_dumps(arr, JSON_COMPACT);
    if (text) {
        rd_tx(rd);
        db_notification_add(rd->cfg.db, r->device_id, o->path, now_ms(), text, RD_HISTORY_KEEP);
        free(text);
    }
    metrics_inc(MC_RD_NOTIFICATIONS);
    rd_publish(rd, r, 0, NULL, "notification", json_pack("{s:s,s:o}", "path", o->path, "records", arr));
}

bool rd_requests_on_response(rd_t *rd, rd_reg_t *r, const coap_pdu_t *recv)
{
    coap_bin_const_t tok = coap_pdu_get_token(recv);
    rd_rq_t *q = r->inflight;
    if (q && tok.length == 8 && !memcmp(tok.s, q->token, 8)) {
        r->inflight = NULL;
        int code = coap_pdu_get_code(recv);
        metrics_coap(false, code);
        int cf = cu_pdu_uint_option(recv, COAP_OPTION_CONTENT_FORMAT, LWM2M_CF_NONE);
        size_t len = 0, off = 0, total = 0;
        const uint8_t *data = NULL;
        if (!coap_get_data_large(recv, &len, &data, &off, &total))
            len = 0, data = NULL;
        rq_finish(rd, q, code, cf, data, len, recv, NULL);
        rq_free(q);
        send_next(rd, r);
        return true;
    }
    rd_obs_t *o = obs_by_token(r, tok.s, tok.length);
    if (o) {
        on_notification(rd, r, o, recv);
        return true;
    }
    return false; /* unknown token: RST (ends stray observations) */
}

void rd_requests_on_nack(rd_t *rd, rd_reg_t *r, coap_mid_t mid, const char *why)
{
    rd_rq_t *q = r->inflight;
    if (!q || (mid != COAP_INVALID_MID && q->mid != mid))
        return;
    r->inflight = NULL;
    if (q->spec.keep_when_asleep && q->fn) {
        /* queue mode: the device fell asleep; try again when it wakes */
        r->awake_until = 0;
        q->sent = false;
        q->next = r->q_head;
        r->q_head = q;
        if (!r->q_tail)
            r->q_tail = q;
        r->nq++;
        uint64_t t = rd->token_base ^ ++rd->token_seq;
        memcpy(q->token, &t, sizeof q->token);
        return;
    }
    rq_finish(rd, q, 0, LWM2M_CF_NONE, NULL, 0, NULL, why);
    rq_free(q);
    send_next(rd, r);
}

void rd_requests_fail_all(rd_t *rd, rd_reg_t *r, const char *why)
{
    rd_rq_t *q = r->inflight;
    r->inflight = NULL;
    if (q) {
        rq_finish(rd, q, 0, LWM2M_CF_NONE, NULL, 0, NULL, why);
        rq_free(q);
    }
    while (r->q_head) {
        q = r->q_head;
        unlink_queued(r, q);
        rq_finish(rd, q, 0, LWM2M_CF_NONE, NULL, 0, NULL, why);
        rq_free(q);
    }
}

void rd_requests_fail_waiting(rd_t *rd, rd_reg_t *r, const char *why)
{
    for (rd_rq_t *q = r->q_head, *next; q; q = next) {
        next = q->next;
        if (q->spec.keep_when_asleep)
            continue;
        unlink_queued(r, q);
        rq_finish(rd, q, 0, LWM2M_CF_NONE, NULL, 0, NULL, why);
        rq_free(q);
    }
}

/* ------------------------------------------------------- REST operations */
/* The answer waits for the end of the loop pass (rd_devops_release after the
 * commit in rd_after_io): what it reports (an observation kept or cancelled,
 * values stored) is then readable through the API. When the server stops, or
 * the answer cannot be queued, it goes at once. */
static void devop_done(rd_t *rd, devop_t *op)
{
    if (!rd->stopping && rd->nanswered == rd->answered_cap) {
        size_t cap = rd->answered_cap ? rd->answered_cap * 2 : 16;
        devop_t **a = realloc(rd->answered, cap * sizeof *a);
        if (a) {
            rd->answered = a;
            rd->answered_cap = cap;
        }
    }
    if (rd->stopping || rd->nanswered == rd->answered_cap) {
        op->done(op);
        return;
    }
    rd->answered[rd->nanswered++] = op;
}

void rd_devops_release(rd_t *rd)
{
    /* op->done may not add answers (it only resumes the HTTP connection) */
    for (size_t i = 0; i < rd->nanswered; i++)
        rd->answered[i]->done(rd->answered[i]);
    rd->nanswered = 0;
}

void rd_devop_fail(rd_t *rd, devop_t *op, int http_status, const char *title, const char *detail)
{
    op->http_status = http_status;
    snprintf(op->title, sizeof op->title, "%s", title);
    snprintf(op->detail, sizeof op->detail, "%s", detail ? detail : "");
    devop_done(rd, op);
}

static void devop_answer(rd_t *rd, devop_t *op, int http_status, json_t *body)
{
    op->http_status = http_status;
    op->result_json = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    devop_done(rd, op);
}

/* CoAP error -> HTTP status (docs/management.md "Answers") */
static int http_of_coap(int code)
{
    switch (code) {
    case LWM2M_CODE(4, 0): return 400;
    case LWM2M_CODE(4, 1): return 403;
    case LWM2M_CODE(4, 3): return 403;
    case LWM2M_CODE(4, 4): return 404;
    case LWM2M_CODE(4, 5): return 405;
    case LWM2M_CODE(4, 6): return 406;
    case LWM2M_CODE(4, 13): return 413;
    case LWM2M_CODE(4, 15): return 415;
    default: return 502;
    }
}

/* What the API waits for, per operation. */
typedef struct {
    devop_t *op;              /* NULL once answered (queued: 202) */
    devop_kind_t kind;
    lwm2m_path_t path;
    char path_str[48];
    int accept;
    int64_t request_id;
    bool queued;
    char *obs_attrs;
    unsigned timeout_ms;      /* the caller's (a Bootstrap-Request Trigger retry gets it too) */
} op_ctx_t;

static void done_ring_put(rd_t *rd, rd_reg_t *r, int64_t id, int state, int http_status, json_t *body)
{
    if (!rd->done && !(rd->done = calloc(RD_DONE_KEEP, sizeof *rd->done))) {
        json_decref(body);
        return;
    }
    rd_done_t *d = &rd->done[rd->done_next++ % RD_DONE_KEEP];
    free(d->json);
    d->id = id;
    d->device_id = r->device_id;
    d->state = state;
    d->http_status = http_status;
    d->json = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
}

static json_t *decode_records(rd_t *rd, rd_reg_t *r, const lwm2m_path_t *base, int cf, const uint8_t *data,
                              size_t len, char *err, size_t errlen)
{
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    int rc = lwm2m_decode(cf, base, data, len, rd->cfg.registry, &rs);
    if (rc != 0) {
        snprintf(err, errlen, "the device answered a %s payload lwdm cannot decode (%zu bytes)", lwm2m_cf_name(cf),
                 len);
        lwm2m_records_clear(&rs);
        return NULL;
    }
    json_t *arr = lwm2m_records_to_json(rd->cfg.registry, &rs);
    lwm2m_records_clear(&rs);
    if (arr) {
        char *text = json_dumps(arr, JSON_COMPACT);
        if (text && json_array_size(arr)) {
            rd_tx(rd);
            db_values_put(rd->cfg.db, r->device_id, now_ms(), text);
        }
        free(text);
    }
    return arr;
}

static json_t *links_json(const uint8_t *data, size_t len)
{
    json_t *items = json_array();
    lwm2m_links_t ls;
    lwm2m_links_init(&ls);
    if (lwm2m_link_parse(data, len, &ls) == 0) {
        for (size_t i = 0; i < ls.n; i++) {
            json_t *attrs = json_object();
            for (size_t k = 0; k < ls.links[i].nattrs; k++)
                json_object_set_new(attrs, ls.links[i].attrs[k].name,
                                    ls.links[i].attrs[k].value ? json_string(ls.links[i].attrs[k].value) : json_null());
            json_array_append_new(items, json_pack("{s:s,s:o}", "uri", ls.links[i].uri, "attributes", attrs));
        }
    }
    lwm2m_links_clear(&ls);
    return items;
}

/* Builds the answer (status + body) of a finished device request. */
static int result_body(rd_t *rd, rd_reg_t *r, op_ctx_t *c, int code, int cf, const uint8_t *data, size_t len,
                       const coap_pdu_t *resp, const char *err, json_t **body, char *title, size_t tcap, char *detail,
                       size_t dcap)
{
    *body = NULL;
    if (!code) {
        bool timeout = err && !strcmp(err, "timeout");
        snprintf(title, tcap, "%s", timeout ? "device did not answer" : "device unreachable");
        snprintf(detail, dcap, "%s: %s", r ? r->endpoint : "device", err ? err : "no answer");
        return timeout ? 504 : 503;
    }
    char cs[8];
    code_str(code, cs, sizeof cs);
    if ((code >> 5) != 2) {
        snprintf(title, tcap, "device answered %s", cs);
        snprintf(detail, dcap, "the device answered %s to %s%s%.*s", cs, c->path_str[0] ? c->path_str : "/",
                 len ? ": " : "", (int)(len > 160 ? 160 : len), data ? (const char *)data : "");
        for (char *p = detail; *p; p++)
            if ((unsigned char)*p < 0x20)
                *p = ' ';
        return http_of_coap(code);
    }
    json_t *b = json_pack("{s:s,s:s}", "path", c->path_str[0] ? c->path_str : "/", "code", cs);
    switch (c->kind) {
    case DEVOP_READ:
    case DEVOP_OBSERVE:
    case DEVOP_READ_COMPOSITE: {
        if (cf == LWM2M_CF_NONE)
            cf = c->accept != LWM2M_CF_NONE ? c->accept : LWM2M_CF_TEXT;
        char e[160];
        lwm2m_path_t base = c->kind == DEVOP_READ_COMPOSITE ? lwm2m_path_make(0, 0, 0, 0, 0) : c->path;
        json_t *recs = decode_records(rd, r, &base, cf, data, len, e, sizeof e);
        if (!recs) {
            json_decref(b);
            snprintf(title, tcap, "undecodable answer");
            snprintf(detail, dcap, "%s", e);
            return 502;
        }
        json_object_set_new(b, "format", json_string(lwm2m_cf_name(cf)));
        if (c->path.len >= 3 && json_array_size(recs) == 1 && c->kind != DEVOP_READ_COMPOSITE)
            json_object_set(b, "value", json_object_get(json_array_get(recs, 0), "value"));
        json_object_set_new(b, "records", recs);
        if (c->kind == DEVOP_OBSERVE)
            json_object_set_new(b, "observing", json_true());
        break;
    }
    case DEVOP_DISCOVER:
        json_object_set_new(b, "links", json_stringn(data ? (const char *)data : "", len));
        json_object_set_new(b, "items", links_json(data, len));
        break;
    case DEVOP_CREATE: {
        /* Location-Path of the new instance */
        char loc[48] = "";
        size_t o = 0;
        coap_opt_iterator_t it;
        coap_opt_filter_t f;
        coap_option_filter_clear(&f);
        coap_option_filter_set(&f, COAP_OPTION_LOCATION_PATH);
        coap_option_iterator_init(resp, &it, &f);
        coap_opt_t *opt;
        while (resp && (opt = coap_option_next(&it)) && o + 8 < sizeof loc)
            o += (size_t)snprintf(loc + o, sizeof loc - o, "/%.*s", (int)coap_opt_length(opt),
                                  (const char *)coap_opt_value(opt));
        json_object_set_new(b, "instance", json_string(loc[0] ? loc : c->path_str));
        break;
    }
    default:
        break;
    }
    *body = b;
    return code == LWM2M_CODE(2, 1) ? 201 : 200;
}

static int server_instance_after(const rd_reg_t *r, int after);

static void op_result(rd_t *rd, rd_reg_t *r, void *user, int code, int cf, const uint8_t *data, size_t len,
                      const coap_pdu_t *resp, const char *err)
{
    op_ctx_t *c = user;
    if (c->kind == DEVOP_BOOTSTRAP_TRIGGER && r &&
        (code == LWM2M_CODE(4, 1) || code == LWM2M_CODE(4, 4) || code == LWM2M_CODE(4, 5))) {
        /* with several servers the first Server instance may be another
         * server's (its ACL refuses lwdm): the trigger of the next one */
        int next = server_instance_after(r, (int)c->path.ids[1]);
        if (next >= 0) {
            rd_req_spec_t sp = {.method = COAP_REQUEST_CODE_POST,
                                .path = lwm2m_path_make(3, 1, (unsigned)next, 9, 0),
                                .cf = LWM2M_CF_NONE,
                                .accept = LWM2M_CF_NONE,
                                .observe = -1,
                                .timeout_ms = c->timeout_ms,
                                .keep_when_asleep = r->queue_mode};
            lwm2m_path_t was = c->path;
            c->path = sp.path;
            lwm2m_path_format(&c->path, c->path_str, sizeof c->path_str);
            LOGI("registry", "ep=%s event=trigger-retry code=%d.%02d next=%s", r->endpoint, code >> 5, code & 31,
                 c->path_str);
            if (rd_request(rd, r, &sp, op_result, c, NULL) == 0)
                return; /* (c may already be answered and freed: not touched again) */
            c->path = was; /* not sent: the answer is about the instance that refused */
            lwm2m_path_format(&c->path, c->path_str, sizeof c->path_str);
        }
    }
    json_t *body = NULL;
    char title[64] = "", detail[256] = "";
    int status = result_body(rd, r, c, code, cf, data, len, resp, err, &body, title, sizeof title, detail,
                             sizeof detail);
    /* observations: keep the token for notifications, store the path */
    if (c->kind == DEVOP_OBSERVE && status == 200 && rd_obs_established(rd, r, &c->path, resp, c->obs_attrs)) {
        /* kept */
    } else if (c->kind == DEVOP_OBSERVE && status == 200) {
        json_object_set_new(body, "observing", json_false());
    }
    if (c->queued) {
        int state = status < 300 ? RQ_STATE_DONE : (err && !strcmp(err, "expired")) ? RQ_STATE_EXPIRED : RQ_STATE_FAILED;
        json_t *ev = json_pack("{s:I,s:s,s:i}", "requestId", (json_int_t)c->request_id, "status",
                               state == RQ_STATE_DONE ? "done" : state == RQ_STATE_EXPIRED ? "expired" : "failed",
                               "httpStatus", status);
        if (body)
            json_object_set(ev, "result", body);
        else
            json_object_set_new(ev, "result", json_pack("{s:s,s:s}", "title", title, "detail", detail));
        if (r) {
            done_ring_put(rd, r, c->request_id, state, status, json_deep_copy(ev));
            rd_publish(rd, r, 0, NULL, "request", ev);
        } else {
            json_decref(ev);
        }
        json_decref(body);
    } else if (c->op) {
        devop_t *op = c->op;
        if (status >= 300) {
            json_decref(body);
            rd_devop_fail(rd, op, status, title, detail);
        } else {
            if (status == 201)
                snprintf(op->location, sizeof op->location, "%s",
                         json_string_value(json_object_get(body, "instance")) ?: "");
            devop_answer(rd, op, status, body);
        }
    } else {
        json_decref(body);
    }
    free(c->obs_attrs);
    free(c);
}

bool rd_obs_established(rd_t *rd, rd_reg_t *r, const lwm2m_path_t *path, const coap_pdu_t *resp, const char *attrs)
{
    if (!r || !resp || !coap_check_option(resp, COAP_OPTION_OBSERVE, &(coap_opt_iterator_t){0}))
        return false;
    char ps[48];
    lwm2m_path_format(path, ps, sizeof ps);
    coap_bin_const_t tok = coap_pdu_get_token(resp);
    rd_obs_t *o = obs_by_path(r, ps);
    if (!o && (o = calloc(1, sizeof *o)) != NULL) {
        snprintf(o->path, sizeof o->path, "%s", ps);
        o->p = *path;
        o->next = r->obs;
        r->obs = o;
    }
    if (!o || tok.length != 8)
        return false;
    memcpy(o->token, tok.s, 8);
    o->active = true;
    free(o->attrs);
    o->attrs = attrs ? strdup(attrs) : NULL;
    rd_tx(rd);
    db_observation_put(rd->cfg.db, r->device_id, o->path, o->attrs ? o->attrs : "{}", now_ms());
    return true;
}

/* A decimal without exponent (CONFORMANCE.md §3: "emit plain"). */
static void fmt_plain(double d, char *buf, size_t cap)
{
    snprintf(buf, cap, "%.15g", d);
    if (!strpbrk(buf, "eE"))
        return;
    snprintf(buf, cap, "%.12f", d);
    char *dot = strchr(buf, '.');
    if (dot) {
        char *e = buf + strlen(buf) - 1;
        while (e > dot && *e == '0')
            *e-- = 0;
        if (e == dot)
            *e = 0;
    }
}

/* Write-Attributes query from {"pmin":..,"pmax":..,"gt":..,"lt":..,"st":..}
 * (1.1: epmin epmax; 1.2: edge con hqmax); null removes one. Checks the
 * consistency rules of CONFORMANCE.md §3. */
static int attributes_query(const char *body_json, char *q, size_t cap, char *field, size_t fcap, char *err,
                            size_t ecap)
{
    static const char *const ints[] = {"pmin", "pmax", "epmin", "epmax", "edge", "con", "hqmax"};
    static const char *const nums[] = {"gt", "lt", "st"};
    json_error_t je;
    json_t *o = body_json ? json_loads(body_json, 0, &je) : NULL;
    if (!o || !json_is_object(o) || json_object_size(o) == 0) {
        json_decref(o);
        snprintf(field, fcap, "body");
        snprintf(err, ecap, "expected a JSON object with at least one of pmin, pmax, gt, lt, st, epmin, epmax");
        return -1;
    }
    q[0] = 0;
    size_t n = 0;
    double gt = 0, lt = 0, st = 0;
    bool has_gt = false, has_lt = false, has_st = false;
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        bool is_int = false, known = false;
        for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
            if (!strcmp(key, ints[i]))
                is_int = known = true;
        for (size_t i = 0; i < sizeof nums / sizeof *nums; i++)
            if (!strcmp(key, nums[i]))
                known = true;
        snprintf(field, fcap, "%s", key);
        if (!known) {
            snprintf(err, ecap, "unknown attribute");
            json_decref(o);
            return -1;
        }
        char part[64];
        if (json_is_null(v)) {
            snprintf(part, sizeof part, "%s", key);
        } else if (is_int) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 0x7fffffff) {
                snprintf(err, ecap, "must be a non-negative integer");
                json_decref(o);
                return -1;
            }
            snprintf(part, sizeof part, "%s=%lld", key, (long long)json_integer_value(v));
        } else {
            if (!json_is_number(v)) {
                snprintf(err, ecap, "must be a number");
                json_decref(o);
                return -1;
            }
            double d = json_number_value(v);
            if (!strcmp(key, "st")) {
                if (d < 0) {
                    snprintf(err, ecap, "must not be negative");
                    json_decref(o);
                    return -1;
                }
                st = d, has_st = true;
            } else if (!strcmp(key, "gt")) {
                gt = d, has_gt = true;
            } else {
                lt = d, has_lt = true;
            }
            char num[40];
            fmt_plain(d, num, sizeof num);
            snprintf(part, sizeof part, "%s=%s", key, num);
        }
        n += (size_t)snprintf(q + n, n < cap ? cap - n : 0, "%s%s", n ? "&" : "", part);
    }
    json_t *pmin = json_object_get(o, "pmin"), *pmax = json_object_get(o, "pmax");
    bool pmax_below = json_is_integer(pmin) && json_is_integer(pmax) && json_integer_value(pmax) < json_integer_value(pmin);
    json_decref(o);
    if (pmax_below) {
        snprintf(field, fcap, "pmax");
        snprintf(err, ecap, "pmax must not be smaller than pmin");
        return -1;
    }
    if (has_gt && has_lt && (lt >= gt || (has_st && lt + 2 * st >= gt))) {
        snprintf(field, fcap, "lt");
        snprintf(err, ecap, "lt must be below gt (and lt + 2*st below gt)");
        return -1;
    }
    return n < cap ? 0 : -1;
}

/* The lowest Server instance id (/1/x in the device's object links) above
 * `after` (-1: the lowest), or -1: where a Bootstrap-Request Trigger goes,
 * then where it goes next when one is refused. */
static int server_instance_after(const rd_reg_t *r, int after)
{
    lwm2m_links_t ls;
    lwm2m_links_init(&ls);
    int iid = -1;
    if (r->links && lwm2m_link_parse((const uint8_t *)r->links, strlen(r->links), &ls) == 0) {
        if (r->root[0])
            lwm2m_links_strip_prefix(&ls, r->root);
        for (size_t i = 0; i < ls.n; i++)
            if (ls.links[i].is_lwm2m_path && ls.links[i].path.len == 2 && ls.links[i].path.ids[0] == 1 &&
                (int)ls.links[i].path.ids[1] > after && (iid < 0 || (int)ls.links[i].path.ids[1] < iid))
                iid = ls.links[i].path.ids[1];
    }
    lwm2m_links_clear(&ls);
    return iid;
}

static int server_instance(const rd_reg_t *r)
{
    int iid = server_instance_after(r, -1);
    return iid < 0 ? 0 : iid;
}

static bool domain_visible(const char *dev_domain, const char *caller)
{
    if (!caller || !caller[0])
        return true;
    return dev_domain && !strncmp(dev_domain, caller, strlen(caller));
}

static json_t *status_of(rd_t *rd, rd_reg_t *r, int64_t device_id, int64_t id)
{
    for (size_t i = 0; rd->done && i < RD_DONE_KEEP; i++)
        if (rd->done[i].json && rd->done[i].id == id && rd->done[i].device_id == device_id)
            return json_loads(rd->done[i].json, 0, NULL);
    if (!r)
        return NULL;
    if (r->inflight && r->inflight->id == id)
        return json_pack("{s:I,s:s}", "requestId", (json_int_t)id, "status", "sent");
    for (rd_rq_t *q = r->q_head; q; q = q->next)
        if (q->id == id)
            return json_pack("{s:I,s:s}", "requestId", (json_int_t)id, "status", "queued");
    return NULL;
}

void rd_devop_start(rd_t *rd, devop_t *op)
{
    db_device_t dev = {0};
    if (db_device_get(rd->cfg.db, op->device_id, &dev) != 0 || !domain_visible(dev.domain, op->domain)) {
        db_device_free(&dev);
        rd_devop_fail(rd, op, 404, "not found", "no such device");
        return;
    }
    db_device_free(&dev);
    rd_reg_t *r = rd_map_get(&rd->by_dev, op->device_id);
    int64_t now = now_ms();
    if (op->kind == DEVOP_REQUEST_STATUS) {
        json_t *s = status_of(rd, r, op->device_id, op->request_id);
        if (!s) {
            rd_devop_fail(rd, op, 404, "not found",
                          "no such request (the last 1024 finished queued requests are kept)");
            return;
        }
        devop_answer(rd, op, 200, s);
        return;
    }
    if (!r || r->expires_at <= now) {
        rd_devop_fail(rd, op, 503, "device offline", "the device is not registered");
        return;
    }
    op_ctx_t *c = calloc(1, sizeof *c);
    if (!c) {
        rd_devop_fail(rd, op, 500, "out of memory", NULL);
        return;
    }
    c->op = op;
    c->kind = op->kind;
    c->accept = LWM2M_CF_NONE;
    rd_req_spec_t sp = {.cf = LWM2M_CF_NONE, .accept = LWM2M_CF_NONE, .observe = -1};
    uint8_t *payload = NULL;
    size_t plen = 0;
    char query[256] = "";
    char field[64] = "", err[200] = "";
    int fail = 0;
    int pref = op->format >= 0 ? op->format : rd_preferred_format(r);
    bool composite = op->kind == DEVOP_READ_COMPOSITE || op->kind == DEVOP_WRITE_COMPOSITE;
    if (!composite && op->kind != DEVOP_BOOTSTRAP_TRIGGER) {
        if (lwm2m_path_parse(op->path, strlen(op->path), &c->path) != 0 || c->path.len == 0) {
            snprintf(err, sizeof err, "invalid path %s", op->path);
            fail = 400;
        } else if (c->path.ids[0] == 0 || c->path.ids[0] == 21) {
            snprintf(err, sizeof err, "objects 0 (Security) and 21 (OSCORE) are not accessible to a management server");
            fail = 403;
        }
        lwm2m_path_format(&c->path, c->path_str, sizeof c->path_str);
    }
    if (composite && r->version < LWM2M_V1_1) {
        snprintf(err, sizeof err, "composite operations need an LwM2M 1.1 or later device");
        fail = 400;
    }
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    json_t *body = NULL;
    if (!fail && op->body_json) {
        json_error_t je;
        body = json_loads(op->body_json, 0, &je);
        if (!body || !json_is_object(body)) {
            snprintf(err, sizeof err, "the body is not a JSON object");
            fail = 400;
        }
    }
    if (!fail) {
        switch (op->kind) {
        case DEVOP_READ:
        case DEVOP_OBSERVE:
            sp.method = COAP_REQUEST_CODE_GET;
            if (op->format >= 0 || r->version >= LWM2M_V1_1)
                sp.accept = c->accept = pref;
            if (op->kind == DEVOP_OBSERVE) {
                sp.observe = 0;
                if (body && json_object_size(body)) {
                    if (attributes_query(op->body_json, query, sizeof query, field, sizeof field, err, sizeof err))
                        fail = 422;
                    else {
                        c->obs_attrs = strdup(op->body_json);
                        if (r->version < LWM2M_V1_2)
                            query[0] = 0; /* 1.2 only: attributes ride on the Observe */
                    }
                }
            }
            break;
        case DEVOP_WRITE:
        case DEVOP_WRITE_PARTIAL:
        case DEVOP_CREATE:
            if (!body) {
                snprintf(field, sizeof field, "body");
                snprintf(err, sizeof err, "a JSON body with value or records is required");
                fail = 400;
                break;
            }
            if (op->kind == DEVOP_WRITE_PARTIAL && c->path.len != 2) {
                snprintf(err, sizeof err, "a partial update addresses an object instance (/o/i)");
                fail = 400;
                break;
            }
            if (op->kind == DEVOP_CREATE && c->path.len != 1) {
                snprintf(err, sizeof err, "create addresses an object (/o)");
                fail = 400;
                break;
            }
            if (op->kind == DEVOP_WRITE && c->path.len < 2) {
                snprintf(err, sizeof err, "write addresses an object instance or a resource");
                fail = 400;
                break;
            }
            if (lwm2m_records_from_json(rd->cfg.registry, &c->path, body, &rs, field, sizeof field, err,
                                        sizeof err) != 0) {
                fail = 422;
                break;
            }
            {
                int wcf = pref;
                if (op->format < 0 && r->version < LWM2M_V1_1) {
                    /* 1.0: TLV for several values, text/opaque for one resource */
                    wcf = LWM2M_CF_TLV;
                    if (c->path.len >= 3 && rs.n == 1 && rs.recs[0].path.len == c->path.len)
                        wcf = rs.recs[0].type == LWM2M_T_OPAQUE ? LWM2M_CF_OPAQUE : LWM2M_CF_TEXT;
                }
                if (lwm2m_encode(wcf, &c->path, &rs, &payload, &plen) != 0) {
                    snprintf(err, sizeof err, "the values cannot be encoded as %s", lwm2m_cf_name(wcf));
                    fail = 422;
                    break;
                }
                sp.cf = wcf;
            }
            sp.method = op->kind == DEVOP_WRITE ? COAP_REQUEST_CODE_PUT : COAP_REQUEST_CODE_POST;
            break;
        case DEVOP_EXECUTE: {
            if (c->path.len != 3) {
                snprintf(err, sizeof err, "execute addresses a resource (/o/i/r)");
                fail = 400;
                break;
            }
            json_t *a = body ? json_object_get(body, "arguments") : NULL;
            if (a && !json_is_string(a) && !json_is_null(a)) {
                snprintf(field, sizeof field, "arguments");
                snprintf(err, sizeof err, "must be a string such as 0='v',1");
                fail = 422;
                break;
            }
            sp.method = COAP_REQUEST_CODE_POST;
            if (json_is_string(a) && json_string_length(a)) {
                plen = json_string_length(a);
                payload = malloc(plen);
                if (payload)
                    memcpy(payload, json_string_value(a), plen);
                sp.cf = LWM2M_CF_TEXT;
            }
            break;
        }
        case DEVOP_DELETE:
            if (c->path.len != 2) {
                snprintf(err, sizeof err, "delete addresses an object instance (/o/i)");
                fail = 400;
                break;
            }
            sp.method = COAP_REQUEST_CODE_DELETE;
            break;
        case DEVOP_DISCOVER:
            sp.method = COAP_REQUEST_CODE_GET;
            sp.accept = LWM2M_CF_LINK;
            if (op->query && op->query[0])
                snprintf(query, sizeof query, "%s", op->query);
            break;
        case DEVOP_WRITE_ATTRIBUTES:
            if (attributes_query(op->body_json, query, sizeof query, field, sizeof field, err, sizeof err)) {
                fail = 422;
                break;
            }
            sp.method = COAP_REQUEST_CODE_PUT;
            break;
        case DEVOP_CANCEL_OBSERVE: {
            rd_obs_t *o = obs_by_path(r, c->path_str);
            if (!o) {
                snprintf(err, sizeof err, "no observation of %s", c->path_str);
                fail = 404;
                break;
            }
            if (o->active && r->cs) {
                coap_binary_t tok = {8, o->token};
                coap_cancel_observe(r->cs, &tok, COAP_MESSAGE_CON);
            } else if (o->active && r->up) {
                /* RFC 7641 3.6: a GET with Observe 1 and the observation's token */
                rd_send(r, COAP_REQUEST_CODE_GET, &o->p, LWM2M_CF_NONE, LWM2M_CF_NONE, 1, NULL, NULL, 0, o->token);
            }
            for (rd_obs_t **pp = &r->obs; *pp; pp = &(*pp)->next)
                if (*pp == o) {
                    *pp = o->next;
                    break;
                }
            free(o->attrs);
            free(o);
            rd_tx(rd);
            db_observation_delete(rd->cfg.db, r->device_id, c->path_str);
            json_decref(body);
            free(c);
            devop_answer(rd, op, 200, json_pack("{s:s,s:b}", "path", op->path, "observing", false));
            return;
        }
        case DEVOP_READ_COMPOSITE: {
            json_t *paths = body ? json_object_get(body, "paths") : NULL;
            if (!json_is_array(paths) || !json_array_size(paths)) {
                snprintf(field, sizeof field, "paths");
                snprintf(err, sizeof err, "a non-empty array of paths is required");
                fail = 422;
                break;
            }
            json_t *req = json_array();
            size_t i;
            json_t *p;
            json_array_foreach(paths, i, p)
            {
                lwm2m_path_t pp;
                if (!json_is_string(p) || lwm2m_path_parse(json_string_value(p), json_string_length(p), &pp) != 0 ||
                    (pp.len && (pp.ids[0] == 0 || pp.ids[0] == 21))) {
                    snprintf(field, sizeof field, "paths[%zu]", i);
                    snprintf(err, sizeof err, "not a readable LwM2M path");
                    fail = 422;
                    break;
                }
                char ps[48];
                lwm2m_path_format(&pp, ps, sizeof ps);
                json_array_append_new(req, json_pack("{s:s}", "n", ps));
            }
            if (!fail) {
                char *t = json_dumps(req, JSON_COMPACT);
                payload = (uint8_t *)t;
                plen = t ? strlen(t) : 0;
                sp.cf = LWM2M_CF_SENML_JSON;
                sp.accept = c->accept = (pref == LWM2M_CF_SENML_CBOR) ? LWM2M_CF_SENML_CBOR : LWM2M_CF_SENML_JSON;
                sp.method = COAP_REQUEST_CODE_FETCH;
            }
            json_decref(req);
            break;
        }
        case DEVOP_WRITE_COMPOSITE: {
            lwm2m_path_t root = lwm2m_path_make(0, 0, 0, 0, 0);
            if (!body || lwm2m_records_from_json(rd->cfg.registry, &root, body, &rs, field, sizeof field, err,
                                                 sizeof err) != 0) {
                if (!body) {
                    snprintf(field, sizeof field, "records");
                    snprintf(err, sizeof err, "a JSON body with records is required");
                }
                fail = 422;
                break;
            }
            int wcf = pref == LWM2M_CF_SENML_CBOR ? LWM2M_CF_SENML_CBOR : LWM2M_CF_SENML_JSON;
            if (lwm2m_encode(wcf, &root, &rs, &payload, &plen) != 0) {
                snprintf(err, sizeof err, "the values cannot be encoded");
                fail = 422;
                break;
            }
            sp.cf = wcf;
            sp.method = COAP_REQUEST_CODE_IPATCH;
            break;
        }
        case DEVOP_BOOTSTRAP_TRIGGER:
            if (r->version < LWM2M_V1_1) {
                snprintf(err, sizeof err, "server-initiated bootstrap needs an LwM2M 1.1 or later device");
                fail = 400;
                break;
            }
            c->path = lwm2m_path_make(3, 1, (unsigned)server_instance(r), 9, 0);
            lwm2m_path_format(&c->path, c->path_str, sizeof c->path_str);
            sp.method = COAP_REQUEST_CODE_POST;
            break;
        default:
            snprintf(err, sizeof err, "unsupported operation");
            fail = 400;
        }
    }
    json_decref(body);
    lwm2m_records_clear(&rs);
    if (fail) {
        free(payload);
        free(c->obs_attrs);
        free(c);
        snprintf(op->field, sizeof op->field, "%s", field);
        rd_devop_fail(rd, op, fail,
                      fail == 422   ? "invalid value"
                      : fail == 404 ? "not found"
                      : fail == 403 ? "forbidden"
                                    : "bad request",
                      err);
        return;
    }
    sp.path = c->path;
    sp.payload = payload;
    sp.len = plen;
    sp.query = query[0] ? query : NULL;
    sp.timeout_ms = op->timeout_ms ? op->timeout_ms : rd->cfg.request_timeout_ms;
    c->timeout_ms = sp.timeout_ms;
    /* asleep: a queue-mode device outside its awake window, or a device
     * lwdm has no session with (after a restart, or its DTLS session
     * closed) until its next message: the request waits for it (202) */
    bool asleep = !rd_reg_awake(r, now);
    /* ... except a device registered over TCP without a connection: lwdm
     * cannot open one to it, so unless it is in queue mode it is offline
     * until it connects again (docs/management.md "CoAP over TCP") */
    sp.keep_when_asleep = (asleep && !rd_reg_disconnected(r)) || r->queue_mode;
    /* the id is written before the request may be sent: a send that fails at
     * once has answered (and freed c) when rd_request returns */
    int rc = rd_request(rd, r, &sp, op_result, c, &c->request_id);
    free(payload);
    if (rc != 0) {
        free(c->obs_attrs);
        free(c);
        if (rc == -3)
            rd_devop_fail(rd, op, 503, "device offline",
                          "the device registered over TCP and its connection is closed: it is reachable again once "
                          "it connects and sends an Update");
        else
            rd_devop_fail(rd, op, 503, rc == -2 ? "queue full" : "out of memory",
                          rc == -2 ? "the device already has 16 requests waiting" : NULL);
        return;
    }
    if (asleep) { /* not sent yet: c lives */
        int64_t id = c->request_id;
        /* queue mode: 202 now, the result later (event + request status) */
        c->queued = true;
        c->op = NULL;
        snprintf(op->location, sizeof op->location, "/api/v1/devices/%" PRId64 "/requests/%" PRId64, r->device_id,
                 id);
        devop_answer(rd, op, 202,
                     json_pack("{s:I,s:s,s:s}", "requestId", (json_int_t)id, "status", "queued", "location",
                               op->location));
    }
}

/* Re-establishes the stored observations after a Register (the device voided
 * them). Results only update the observation list. */
static void restore_result(rd_t *rd, rd_reg_t *r, void *user, int code, int cf, const uint8_t *data, size_t len,
                           const coap_pdu_t *resp, const char *err)
{
    (void)cf;
    (void)data;
    (void)len;
    rd_obs_t *o = user;
    if (!r)
        return;
    bool found = false;
    for (rd_obs_t *it = r->obs; it; it = it->next)
        found = found || it == o;
    if (!found)
        return;
    if (code == LWM2M_CODE(2, 5) && resp && coap_check_option(resp, COAP_OPTION_OBSERVE, &(coap_opt_iterator_t){0})) {
        coap_bin_const_t tok = coap_pdu_get_token(resp);
        if (tok.length == 8)
            memcpy(o->token, tok.s, 8);
        o->active = true;
        on_notification(rd, r, o, resp);
    } else {
        LOGW("registry", "ep=%s event=reobserve-failed path=%s code=%d.%02d err=\"%s\"", r->endpoint, o->path,
             code >> 5, code & 31, err ? err : "");
    }
}

void rd_obs_restore(rd_t *rd, rd_reg_t *r)
{
    db_observation_t *list = NULL;
    size_t n = 0;
    if (db_observation_list(rd->cfg.db, r->device_id, &list, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        rd_obs_t *o = obs_by_path(r, list[i].path);
        if (o && o->active)
            continue;
        if (!o) {
            o = calloc(1, sizeof *o);
            if (!o)
                break;
            snprintf(o->path, sizeof o->path, "%s", list[i].path);
            lwm2m_path_parse(o->path, strlen(o->path), &o->p);
            o->attrs = list[i].attributes ? strdup(list[i].attributes) : NULL;
            o->next = r->obs;
            r->obs = o;
        }
        rd_req_spec_t sp = {.method = COAP_REQUEST_CODE_GET,
                            .path = o->p,
                            .cf = LWM2M_CF_NONE,
                            .accept = r->version >= LWM2M_V1_1 ? rd_preferred_format(r) : LWM2M_CF_NONE,
                            .observe = 0,
                            .keep_when_asleep = r->queue_mode};
        if (rd_request(rd, r, &sp, restore_result, o, NULL) != 0)
            break;
    }
    db_observation_list_free(&list, n);
}
