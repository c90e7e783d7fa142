/* The registration interface and device management requests (rd.h).
 *
 * Per registered device an rd_reg_t:
 *
 *   Register --> REGISTERED --Update--> REGISTERED (lifetime restarted)
 *                    |  \--De-register / lifetime expiry / re-Register--> gone
 *                    `-- requests: QUEUE --(awake, nothing in flight)--> IN FLIGHT --answer/nack/timeout--> done
 *
 * A Register or Update is answered from the libcoap handler; what must
 * follow it (queued requests, re-established observations, tasks) starts in
 * rd_after_io(), after the answer has left (CONFORMANCE.md §2 "First DM
 * request"). Database writes of a pass share the loop's transaction. */
#include "server/registry/rd.h"

#include <inttypes.h>
#include <stdint.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/db.h"
#include "server/coap_util.h"
#include "server/common/events.h"
#include "server/common/log.h"
#include "server/common/metrics.h"
#include "server/lwm2m/codec.h"
#include "server/lwm2m/link.h"
#include "server/lwm2m/registry.h"
#include "server/lwm2m/valjson.h"
#include "server/registry/rd_int.h"
#include "server/timers.h"

#define RD_MAX_EP 128
#define RD_MAX_LIFETIME (10LL * 365 * 86400)

/* ------------------------------------------------------------ int64 map */
static uint64_t mix(int64_t k)
{
    uint64_t x = (uint64_t)k;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static int map_grow(rd_map_t *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 64;
    rd_map_slot_t *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].val)
            continue;
        size_t j = mix(m->slots[i].key) & (ncap - 1);
        while (ns[j].val)
            j = (j + 1) & (ncap - 1);
        ns[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return 0;
}

void *rd_map_get(const rd_map_t *m, int64_t key)
{
    if (!m->cap)
        return NULL;
    for (size_t j = mix(key) & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
        if (!m->slots[j].val)
            return NULL;
        if (m->slots[j].key == key)
            return m->slots[j].val;
    }
}

int rd_map_put(rd_map_t *m, int64_t key, void *val)
{
    if ((m->n + 1) * 4 >= m->cap * 3 && map_grow(m) != 0)
        return -1;
    size_t j = mix(key) & (m->cap - 1);
    while (m->slots[j].val && m->slots[j].key != key)
        j = (j + 1) & (m->cap - 1);
    if (!m->slots[j].val)
        m->n++;
    m->slots[j].key = key;
    m->slots[j].val = val;
    return 0;
}

void rd_map_del(rd_map_t *m, int64_t key)
{
    if (!m->cap)
        return;
    size_t j = mix(key) & (m->cap - 1);
    while (m->slots[j].val && m->slots[j].key != key)
        j = (j + 1) & (m->cap - 1);
    if (!m->slots[j].val)
        return;
    m->slots[j].val = NULL;
    m->n--;
    /* backward-shift deletion keeps probe chains intact */
    size_t i = j;
    for (size_t k = (i + 1) & (m->cap - 1); m->slots[k].val; k = (k + 1) & (m->cap - 1)) {
        size_t home = mix(m->slots[k].key) & (m->cap - 1);
        bool move = (i <= k) ? (home <= i || home > k) : (home <= i && home > k);
        if (move) {
            m->slots[i] = m->slots[k];
            m->slots[k].val = NULL;
            i = k;
        }
    }
}

/* ---------------------------------------------------------------- helpers */
static int64_t now_ms(void) { return db_now_ms(); }

/* The loop's timer heap runs on the monotonic clock; registration times are
 * wall-clock (stored, shown): convert a wall deadline to a heap deadline. */
int64_t rd_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void arm_expiry(rd_t *rd, rd_reg_t *r)
{
    timer_start(rd->cfg.timers, &r->expiry, rd_mono_ms() + (r->expires_at - now_ms()));
}

static const char *version_str(int v) { return v == LWM2M_V1_2 ? "1.2" : v == LWM2M_V1_1 ? "1.1" : "1.0"; }

void rd_tx(rd_t *rd)
{
    if (!db_in_transaction(rd->cfg.db) && db_begin(rd->cfg.db) == 0)
        rd->tx_open = true;
}

static void tx_commit(rd_t *rd)
{
    if (!rd->tx_open)
        return;
    rd->tx_open = false;
    if (!db_in_transaction(rd->cfg.db))
        return; /* someone else committed the shared pass transaction */
    if (db_commit(rd->cfg.db) != 0) {
        LOGE("registry", "event=commit-failed");
        db_rollback(rd->cfg.db);
    }
}

void rd_publish(rd_t *rd, const rd_reg_t *r, int64_t device_id, const char *endpoint, const char *type, json_t *data)
{
    if (!rd->cfg.events) {
        json_decref(data);
        return;
    }
    /* held until the pass is committed (rd_after_io): a reader reacting to an
     * event finds what it announces in the database */
    events_batch_add(&rd->evq, type, r ? r->device_id : device_id, r ? r->endpoint : endpoint, rd->cfg.domain,
                     data);
}

static void mark_dirty(rd_t *rd, rd_reg_t *r)
{
    if (r->dirty)
        return;
    r->dirty = true;
    r->dirty_next = rd->dirty;
    rd->dirty = r;
}

bool rd_reg_disconnected(const rd_reg_t *r)
{
    return r->tcp && (!r->cs || coap_session_get_state(r->cs) != COAP_SESSION_STATE_ESTABLISHED);
}

bool rd_reg_awake(const rd_reg_t *r, int64_t now)
{
    if (!r->up && (!r->cs || coap_session_get_state(r->cs) != COAP_SESSION_STATE_ESTABLISHED))
        return false;
    return !r->queue_mode || now < r->awake_until;
}

/* ----------------------------------------------------------- message origin */
/* Where a request came from: a libcoap session (DTLS, TCP, TLS; UDP when
 * lwdm's own UDP endpoint is off) or a peer of lwdm's own UDP endpoint. */
typedef struct {
    coap_session_t *cs;
    cudp_peer_t *up;
} rd_from_t;

static bool from_secure(const rd_from_t *f) { return f->cs && cu_is_secure(f->cs); }
static bool from_reliable(const rd_from_t *f) { return f->cs && cu_is_reliable(f->cs); }
static const coap_bin_const_t *from_identity(const rd_from_t *f)
{
    return f->cs ? coap_session_get_psk_identity(f->cs) : NULL;
}
static rd_reg_t *from_app(const rd_from_t *f)
{
    return f->cs ? coap_session_get_app_data(f->cs) : cudp_peer_app_data(f->up);
}
static const char *from_proto(const rd_from_t *f) { return f->cs ? cu_proto_name(f->cs) : "udp"; }
/* identifies the origin (retransmitted De-register) */
static const void *from_key(const rd_from_t *f) { return f->cs ? (const void *)f->cs : (const void *)f->up; }

coap_mid_t rd_send(rd_reg_t *r, int method, const lwm2m_path_t *path, int cf, int accept, int observe,
                   const char *query, const uint8_t *payload, size_t len, const uint8_t token[8])
{
    if (r->cs)
        return cu_send_request(r->cs, method, r->root, path, cf, accept, observe, query, payload, len, token);
    if (!r->up)
        return COAP_INVALID_MID;
    coap_pdu_t *pdu = cudp_new_request(r->up, (coap_pdu_code_t)method);
    if (!pdu)
        return COAP_INVALID_MID;
    if (!cu_request_options(pdu, r->root, path, cf, accept, observe, query, payload != NULL, token)) {
        coap_delete_pdu(pdu);
        return COAP_INVALID_MID;
    }
    metrics_coap(true, method);
    return cudp_send(r->up, pdu, payload, payload ? len : 0);
}

/* ------------------------------------------------------- registration life */
static void reg_detach_session(rd_reg_t *r)
{
    if (r->up) {
        if (cudp_peer_app_data(r->up) == r)
            cudp_peer_set_app_data(r->up, NULL);
        cudp_peer_unref(r->up);
        r->up = NULL;
    }
    if (!r->cs)
        return;
    if (r->rd->stopping)
        coap_session_set_no_observe_cancel(r->cs); /* observations outlive a restart */
    if (coap_session_get_app_data(r->cs) == r)
        coap_session_set_app_data(r->cs, NULL);
    coap_session_release(r->cs);
    r->cs = NULL;
}

static void reg_attach_session(rd_reg_t *r, const rd_from_t *f)
{
    if (f->up) {
        if (r->up == f->up) {
            cudp_peer_set_app_data(f->up, r); /* another registration from this address may have taken it */
            return;
        }
        reg_detach_session(r);
        r->up = cudp_peer_ref(f->up);
        r->tcp = false;
        cudp_peer_set_app_data(f->up, r);
        cudp_peer_addr(f->up, r->address, sizeof r->address);
        return;
    }
    coap_session_t *cs = f->cs;
    if (r->cs == cs) {
        coap_session_set_app_data(cs, r);
        return;
    }
    reg_detach_session(r);
    r->cs = coap_session_reference(cs);
    r->tcp = cu_is_reliable(cs);
    coap_session_set_app_data(cs, r);
    coap_session_init_token(cs, 8, (const uint8_t *)&r->location);
    char addr[64];
    cu_peer_str(cs, addr, sizeof addr);
    snprintf(r->address, sizeof r->address, "%s", addr);
}

static void expiry_fired(lwdm_timer_t *t, void *arg);
static void handshake_release(rd_t *rd, coap_session_t *cs);

static rd_reg_t *reg_new(rd_t *rd, int64_t device_id, const char *endpoint)
{
    rd_reg_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->rd = rd;
    r->device_id = device_id;
    snprintf(r->endpoint, sizeof r->endpoint, "%s", endpoint);
    timer_init(&r->expiry, expiry_fired, r);
    return r;
}

/* Drops a registration from memory: fails its requests, releases its
 * session. The caller deletes the row. */
static void reg_drop(rd_t *rd, rd_reg_t *r, const char *why)
{
    rd_map_del(&rd->by_dev, r->device_id);
    if (rd_map_get(&rd->by_loc, r->location) == r)
        rd_map_del(&rd->by_loc, r->location);
    timer_stop(rd->cfg.timers, &r->expiry);
    rd_requests_fail_all(rd, r, why);
    rd_tasks_abort(rd, r, why);
    rd_obs_free_all(r);
    reg_detach_session(r);
    if (r->dirty) {
        /* unlink from the dirty list */
        for (rd_reg_t **pp = &rd->dirty; *pp; pp = &(*pp)->dirty_next)
            if (*pp == r) {
                *pp = r->dirty_next;
                break;
            }
    }
    free(r->links);
    free(r->sms);
    free(r->psk_identity);
    free(r);
}

static void expiry_fired(lwdm_timer_t *t, void *arg)
{
    (void)t;
    rd_reg_t *r = arg;
    rd_t *rd = r->rd;
    if (r->expires_at > now_ms()) { /* extended meanwhile */
        arm_expiry(rd, r);
        return;
    }
    LOGI("registry", "ep=%s event=expired location=/rd/%" PRId64 " lifetime=%" PRId64, r->endpoint, r->location,
         r->lifetime);
    metrics_inc(MC_RD_EXPIRED);
    rd_publish(rd, r, 0, NULL, "expiry", json_pack("{s:I}", "location", (json_int_t)r->location));
    rd_tx(rd);
    db_registration_delete(rd->cfg.db, r->device_id);
    reg_drop(rd, r, "registration expired");
}

static int64_t new_location(rd_t *rd)
{
    for (;;) {
        int64_t l = (int64_t)(randombytes_uniform(0x7fffffff) + 1);
        if (!rd_map_get(&rd->by_loc, l))
            return l;
    }
}

/* ------------------------------------------------------- parsing Register */
typedef struct {
    char ep[RD_MAX_EP + 2];
    bool have_ep;
    int64_t lt;
    bool have_lt;
    int version;
    char binding[8];
    bool have_b;
    bool queue;
    char sms[64];
    bool have_sms;
} reg_query_t;

/* Binding: 1.0 "U", "UQ", "S", "SQ", "US", "UQS"; 1.1+ letters U T S N (M H
 * in 1.2) plus a valueless Q. Normalised to transports + queue flag
 * (CONFORMANCE.md §2 "Binding and queue flag"). Returns 0 or -1. */
int rd_parse_binding(const char *b, char *transports, size_t cap, bool *queue)
{
    size_t n = 0;
    bool q = false;
    if (!b[0])
        return -1;
    for (const char *p = b; *p; p++) {
        if (*p == 'Q') {
            if (q)
                return -1;
            q = true;
            continue;
        }
        if (!strchr("UTSNMH", *p) || strchr(transports, *p) || n + 1 >= cap)
            return -1;
        transports[n++] = *p;
        transports[n] = 0;
    }
    if (!n)
        return -1;
    *queue = *queue || q;
    return 0;
}

/* Parses the query options of a Register (register=true) or Update. On error
 * returns a CoAP code (class*100+detail) and a message. */
static int parse_reg_query(const coap_pdu_t *req, bool reg, reg_query_t *q, char *msg, size_t cap)
{
    memset(q, 0, sizeof *q);
    bool bad;
    cu_query_get(req, "ep", q->ep, sizeof q->ep, &q->have_ep, &bad);
    if (q->have_ep && (bad || !cu_valid_endpoint(q->ep, RD_MAX_EP))) {
        snprintf(msg, cap, "invalid endpoint name");
        return 400;
    }
    char lt[24];
    cu_query_get(req, "lt", lt, sizeof lt, &q->have_lt, &bad);
    if (q->have_lt) {
        char *end;
        long long v = strtoll(lt, &end, 10);
        if (bad || !lt[0] || *end || v <= 0 || v > RD_MAX_LIFETIME) {
            snprintf(msg, cap, "invalid lifetime (1..%lld seconds)", RD_MAX_LIFETIME);
            return 400;
        }
        q->lt = v;
    } else {
        q->lt = 86400;
    }
    char ver[16];
    bool have_ver;
    cu_query_get(req, "lwm2m", ver, sizeof ver, &have_ver, &bad);
    q->version = LWM2M_V1_0;
    if (reg && have_ver) {
        if (!strcmp(ver, "1.0"))
            q->version = LWM2M_V1_0;
        else if (!strcmp(ver, "1.1"))
            q->version = LWM2M_V1_1;
        else if (!strcmp(ver, "1.2"))
            q->version = LWM2M_V1_2;
        else {
            snprintf(msg, cap, "unsupported LwM2M version");
            return 412;
        }
    }
    char b[16];
    cu_query_get(req, "b", b, sizeof b, &q->have_b, &bad);
    q->queue = cu_query_has(req, "Q");
    if (q->have_b && (bad || rd_parse_binding(b, q->binding, sizeof q->binding, &q->queue) != 0)) {
        snprintf(msg, cap, "invalid binding");
        return 400;
    }
    if (!q->have_b)
        snprintf(q->binding, sizeof q->binding, "U");
    cu_query_get(req, "sms", q->sms, sizeof q->sms, &q->have_sms, &bad);
    if (q->have_sms && bad) {
        snprintf(msg, cap, "invalid sms number");
        return 400;
    }
    return 0;
}

/* Object links of a Register/Update payload: validates, finds the alternate
 * root and the content formats of the root link. Returns 0 or a CoAP code. */
int rd_parse_links(const uint8_t *data, size_t len, char *root, size_t rootcap, int *cfs, size_t *ncf, char *msg,
                   size_t cap)
{
    lwm2m_links_t ls;
    lwm2m_links_init(&ls);
    root[0] = 0;
    *ncf = 0;
    if (!data || !len) {
        snprintf(msg, cap, "empty object list");
        return 400;
    }
    if (lwm2m_link_parse(data, len, &ls) != 0) {
        snprintf(msg, cap, "unparsable object links");
        return 400;
    }
    const char *rt = lwm2m_links_root(&ls);
    if (rt && strcmp(rt, "/") != 0) {
        snprintf(root, rootcap, "%s", rt);
        lwm2m_links_strip_prefix(&ls, rt);
    }
    size_t objects = 0;
    for (size_t i = 0; i < ls.n; i++) {
        const lwm2m_link_t *l = &ls.links[i];
        if (l->is_lwm2m_path && l->path.len == 0) {
            const char *ct = lwm2m_link_attr(l, "ct");
            for (const char *p = ct; p && *p && *ncf < 8;) {
                char *end;
                long v = strtol(p, &end, 10);
                if (end == p)
                    break;
                if (v >= 0 && v <= 65535)
                    cfs[(*ncf)++] = (int)v;
                p = end;
                while (*p == ' ')
                    p++;
            }
            continue;
        }
        if (l->is_lwm2m_path && l->path.len >= 1 && l->path.len <= 2)
            objects++;
    }
    lwm2m_links_clear(&ls);
    if (!objects) {
        snprintf(msg, cap, "no object links");
        return 400;
    }
    return 0;
}

/* The format lwdm reads and writes in for this device: LwM2M CBOR, else
 * SenML CBOR, else SenML JSON, else TLV from the announced list; a 1.1+ device without a
 * list gets SenML CBOR; a 1.0 device TLV. */
int rd_preferred_format(const rd_reg_t *r)
{
    static const int order[] = {LWM2M_CF_LWM2M_CBOR, LWM2M_CF_SENML_CBOR, LWM2M_CF_SENML_JSON, LWM2M_CF_TLV};
    if (r->ncf) {
        for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
            for (size_t i = 0; i < r->ncf; i++)
                if (r->cfs[i] == order[k] && lwm2m_cf_supported(order[k]))
                    return order[k];
        for (size_t i = 0; i < r->ncf; i++)
            if (r->cfs[i] == LWM2M_CF_OLD_TLV)
                return LWM2M_CF_TLV;
    }
    return r->version >= LWM2M_V1_1 ? LWM2M_CF_SENML_CBOR : LWM2M_CF_TLV;
}

/* The row of a registration; its strings are borrowed from r, and the
 * content formats are written into cfs (cap bytes). */
static void reg_to_db(const rd_reg_t *r, db_registration_t *d, char *cfs, size_t cap)
{
    memset(d, 0, sizeof *d);
    d->device_id = r->device_id;
    d->location = r->location;
    d->endpoint = (char *)r->endpoint;
    d->lifetime = r->lifetime;
    d->lwm2m_version = (char *)version_str(r->version);
    d->binding = (char *)r->binding;
    d->queue_mode = r->queue_mode;
    d->sms = r->sms;
    d->object_links = r->links ? r->links : (char *)"";
    size_t o = 0;
    cfs[o++] = '[';
    for (size_t i = 0; i < r->ncf && o + 8 < cap; i++)
        o += (size_t)snprintf(cfs + o, cap - o, "%s%d", i ? "," : "", r->cfs[i]);
    snprintf(cfs + o, cap - o, "]");
    d->content_formats = cfs;
    d->transport = (char *)(r->tcp ? "tcp" : "udp");
    d->secure = r->secure;
    d->psk_identity = r->psk_identity;
    d->address = (char *)r->address;
    d->registered_at = r->registered_at;
    d->last_update_at = r->last_update_at;
    d->expires_at = r->expires_at;
}

static json_t *reg_event_data(const rd_reg_t *r)
{
    return json_pack("{s:I,s:I,s:s,s:s,s:b,s:s,s:b,s:s}", "location", (json_int_t)r->location, "lifetime",
                     (json_int_t)r->lifetime, "lwm2mVersion", version_str(r->version), "binding", r->binding,
                     "queueMode", r->queue_mode, "transport", r->tcp ? "tcp" : "udp", "secure", r->secure, "address",
                     r->address);
}

/* ----------------------------------------------------------- authorisation */
/* Who is registering: the DTLS/TLS identity's device, or the endpoint's
 * device on plain CoAP over UDP or TCP (only one without management PSK
 * credentials; unknown ones created when accept-unknown is on). Returns 0
 * with *dev, or a CoAP code. */
static int authorise(rd_t *rd, const rd_from_t *f, const reg_query_t *q, db_device_t *dev, char *msg, size_t cap)
{
    const coap_bin_const_t *id = from_identity(f);
    bool secure = from_secure(f);
    if (secure) {
        if (!id || !id->length) {
            snprintf(msg, cap, "no PSK identity");
            return 403;
        }
        if (db_device_get_by_mgmt_identity(rd->cfg.db, id->s, id->length, dev) != 0) {
            snprintf(msg, cap, "unknown PSK identity");
            return 403;
        }
        if (q->have_ep && strcmp(q->ep, dev->endpoint) != 0) {
            db_device_free(dev);
            snprintf(msg, cap, "endpoint name does not match the PSK identity");
            return 400;
        }
    } else {
        if (!q->have_ep) {
            snprintf(msg, cap, "missing ep (required without DTLS/TLS)");
            return 400;
        }
        int rc = db_device_get_by_endpoint(rd->cfg.db, rd->cfg.domain, q->ep, dev);
        if (rc == 0) {
            /* management PSK credentials set on the device: DTLS only */
            bool has_psk = dev->mgmt.security_mode == DB_SEC_PSK && dev->mgmt.psk_identity;
            if (has_psk) {
                db_device_free(dev);
                snprintf(msg, cap, "this device must register over DTLS or TLS (PSK)");
                return 403;
            }
        } else {
            bool accept = rd->cfg.accept_unknown == 1;
            if (rd->cfg.accept_unknown < 0) {
                db_bs_settings_t s = {0};
                if (db_bs_settings_get(rd->cfg.db, rd->cfg.domain, &s) == 0)
                    accept = s.accept_unknown;
                db_bs_settings_free(&s);
            }
            if (!accept) {
                snprintf(msg, cap, "unknown endpoint");
                return 403;
            }
            rd_tx(rd);
            db_device_t nd = {0};
            nd.endpoint = (char *)q->ep;
            nd.domain = (char *)rd->cfg.domain;
            nd.auto_created = true;
            nd.properties_json = (char *)"{}";
            if (db_device_insert(rd->cfg.db, &nd) != 0 || db_device_get(rd->cfg.db, nd.id, dev) != 0) {
                snprintf(msg, cap, "could not create the device");
                return 500;
            }
            LOGI("registry", "ep=%s event=device-created id=%" PRId64, q->ep, nd.id);
        }
    }
    if (dev->blacklisted) {
        db_device_free(dev);
        snprintf(msg, cap, "device is blacklisted");
        return 403;
    }
    return 0;
}

static void refuse(coap_pdu_t *resp, const char *event, const char *who, int code, const char *msg)
{
    metrics_inc(MC_RD_REFUSED);
    LOGW("registry", "ep=%s event=%s code=%d.%02d reason=\"%s\"", who, event, code / 100, code % 100, msg);
    cu_reply_error(resp, code / 100, code % 100, msg);
}

static bool on_mgmt_port(rd_t *rd, const rd_from_t *f)
{
    return f->up || rd_owns_session(rd, f->cs);
}

/* The device's session delivered a message: it is awake (queue mode). */
static void touch(rd_t *rd, rd_reg_t *r, const rd_from_t *f)
{
    bool moved = f && (f->up ? r->up != f->up : r->cs != f->cs);
    if (f)
        reg_attach_session(r, f);
    if (moved && r->inflight) /* sent to the old address: its failure would reach nobody */
        rd_requests_on_nack(rd, r, COAP_INVALID_MID, "the device moved to a new address");
    int64_t now = now_ms();
    r->last_contact = now;
    r->awake_until = now + (rd->cfg.awake_ms ? rd->cfg.awake_ms : 93000);
}

static void schedule_start(rd_t *rd, rd_reg_t *r, bool is_register)
{
    r->start_register = r->start_register || is_register;
    if (r->start_pending)
        return;
    r->start_pending = true;
    r->start_next = rd->starts;
    rd->starts = r;
}

/* ---------------------------------------------------------------- Register */
static void do_register(rd_t *rd, const rd_from_t *f, const coap_pdu_t *req, coap_pdu_t *resp)
{
    metrics_coap(false, COAP_REQUEST_CODE_POST);
    if (f->cs)
        handshake_release(rd, f->cs);
    if (!on_mgmt_port(rd, f)) {
        cu_reply_error(resp, 4, 4, NULL);
        return;
    }
    metrics_inc(MC_RD_REGISTER);
    rd_reg_t *cur = from_app(f);
    /* (over TCP there are no retransmissions, and every message id is 0) */
    if (cur && !from_reliable(f) && cur->last_reg_mid == coap_pdu_get_mid(req) && cur->last_reg_mid >= 0) {
        /* a retransmitted Register: the same answer, no second registration */
        char loc[24];
        snprintf(loc, sizeof loc, "%" PRId64, cur->location);
        coap_add_option(resp, COAP_OPTION_LOCATION_PATH, 2, (const uint8_t *)"rd");
        coap_add_option(resp, COAP_OPTION_LOCATION_PATH, strlen(loc), (const uint8_t *)loc);
        metrics_coap(true, LWM2M_CODE(2, 1));
        coap_pdu_set_code(resp, COAP_RESPONSE_CODE(201));
        return;
    }
    char msg[128];
    reg_query_t q;
    int code = parse_reg_query(req, true, &q, msg, sizeof msg);
    const char *who = q.have_ep ? q.ep : "-";
    if (code) {
        refuse(resp, "register-refused", who, code, msg);
        return;
    }
    size_t len = 0, off = 0, total = 0;
    const uint8_t *data = NULL;
    if (!coap_get_data_large(req, &len, &data, &off, &total))
        len = 0, data = NULL;
    char root[32];
    int cfs[8];
    size_t ncf = 0;
    code = rd_parse_links(data, len, root, sizeof root, cfs, &ncf, msg, sizeof msg);
    if (code) {
        refuse(resp, "register-refused", who, code, msg);
        return;
    }
    db_device_t dev = {0};
    code = authorise(rd, f, &q, &dev, msg, sizeof msg);
    if (code) {
        refuse(resp, "register-refused", who, code, msg);
        return;
    }
    int64_t now = now_ms();
    rd_reg_t *old = rd_map_get(&rd->by_dev, dev.id);
    if (old) {
        /* re-Register: the old registration, its queue and observations on
         * the device are void; the stored observations are re-established */
        LOGI("registry", "ep=%s event=re-register old_location=/rd/%" PRId64, dev.endpoint, old->location);
        reg_drop(rd, old, "device registered again");
    }
    rd_reg_t *r = reg_new(rd, dev.id, dev.endpoint);
    if (!r) {
        db_device_free(&dev);
        cu_reply_error(resp, 5, 0, NULL);
        return;
    }
    r->location = new_location(rd);
    r->lifetime = q.lt;
    r->version = q.version;
    snprintf(r->binding, sizeof r->binding, "%s", q.binding);
    r->queue_mode = q.queue;
    r->sms = q.have_sms ? strdup(q.sms) : NULL;
    r->links = malloc(len + 1);
    if (r->links) {
        memcpy(r->links, data, len);
        r->links[len] = 0;
    }
    snprintf(r->root, sizeof r->root, "%s", root);
    memcpy(r->cfs, cfs, sizeof cfs);
    r->ncf = ncf;
    r->secure = from_secure(f);
    r->tcp = from_reliable(f);
    const coap_bin_const_t *id = from_identity(f);
    if (r->secure && id && id->length) {
        r->psk_identity = malloc(id->length + 1);
        if (r->psk_identity) {
            memcpy(r->psk_identity, id->s, id->length);
            r->psk_identity[id->length] = 0;
        }
    }
    r->registered_at = r->last_update_at = now;
    r->expires_at = now + r->lifetime * 1000;
    r->last_reg_mid = from_reliable(f) ? -1 : coap_pdu_get_mid(req);
    rd_map_put(&rd->by_dev, r->device_id, r);
    rd_map_put(&rd->by_loc, r->location, r);
    touch(rd, r, f); /* attaches the session or peer */
    arm_expiry(rd, r);
    mark_dirty(rd, r);
    schedule_start(rd, r, true);
    db_device_free(&dev);

    char loc[24];
    snprintf(loc, sizeof loc, "%" PRId64, r->location);
    coap_add_option(resp, COAP_OPTION_LOCATION_PATH, 2, (const uint8_t *)"rd");
    coap_add_option(resp, COAP_OPTION_LOCATION_PATH, strlen(loc), (const uint8_t *)loc);
    metrics_coap(true, LWM2M_CODE(2, 1));
    coap_pdu_set_code(resp, COAP_RESPONSE_CODE(201));
    LOGI("registry", "ep=%s event=registered location=/rd/%s lt=%" PRId64 " lwm2m=%s b=%s%s secure=%d addr=%s proto=%s",
         r->endpoint, loc, r->lifetime, version_str(r->version), r->binding, r->queue_mode ? " queue=1" : "",
         r->secure, r->address, from_proto(f));
    rd_publish(rd, r, 0, NULL, "registration", reg_event_data(r));
}

/* ------------------------------------------------ Update and De-register */
static rd_reg_t *find_location(rd_t *rd, const rd_from_t *f, const coap_pdu_t *req, int *code, char *msg, size_t cap)
{
    coap_string_t *path = coap_get_uri_path(req);
    rd_reg_t *r = NULL;
    *code = 404;
    snprintf(msg, cap, "unknown registration");
    if (path && path->length > 3 && !memcmp(path->s, "rd/", 3)) {
        char buf[24];
        size_t n = path->length - 3;
        if (n < sizeof buf) {
            memcpy(buf, path->s + 3, n);
            buf[n] = 0;
            char *end;
            long long l = strtoll(buf, &end, 10);
            if (!*end && l > 0)
                r = rd_map_get(&rd->by_loc, l);
        }
    }
    coap_delete_string(path);
    if (!r)
        return NULL;
    if (r->expires_at <= now_ms()) {
        snprintf(msg, cap, "registration expired");
        return NULL;
    }
    /* the same identity (or plain CoAP for a plain registration), from any
     * address and over UDP or TCP (an Update on a new connection re-binds) */
    bool secure = from_secure(f);
    const coap_bin_const_t *id = from_identity(f);
    if (secure != r->secure ||
        (secure && (!id || !r->psk_identity || id->length != strlen(r->psk_identity) ||
                    memcmp(id->s, r->psk_identity, id->length) != 0))) {
        *code = 400;
        snprintf(msg, cap, "registration belongs to another identity");
        return NULL;
    }
    *code = 0;
    return r;
}

static void do_location(rd_t *rd, const rd_from_t *f, const coap_pdu_t *req, coap_pdu_t *resp)
{
    coap_pdu_code_t method = coap_pdu_get_code(req);
    metrics_coap(false, method);
    if (f->cs)
        handshake_release(rd, f->cs);
    coap_string_t *path = coap_get_uri_path(req);
    bool is_rd = path && path->length > 3 && !memcmp(path->s, "rd/", 3);
    coap_delete_string(path);
    if (!on_mgmt_port(rd, f) || !is_rd) {
        cu_reply_error(resp, 4, 4, NULL);
        return;
    }
    int code;
    char msg[128];
    rd_reg_t *r = find_location(rd, f, req, &code, msg, sizeof msg);
    if (!r && method == COAP_REQUEST_CODE_DELETE && rd->last_dereg_from == from_key(f) &&
        rd->last_dereg_mid == coap_pdu_get_mid(req)) {
        /* a retransmitted De-register (its 2.02 was lost): the same answer */
        metrics_coap(true, LWM2M_CODE(2, 2));
        coap_pdu_set_code(resp, COAP_RESPONSE_CODE(202));
        return;
    }
    if (!r) {
        refuse(resp, method == COAP_REQUEST_CODE_DELETE ? "deregister-refused" : "update-refused", "-", code, msg);
        return;
    }
    if (method == COAP_REQUEST_CODE_DELETE) {
        LOGI("registry", "ep=%s event=deregistered location=/rd/%" PRId64, r->endpoint, r->location);
        metrics_inc(MC_RD_DEREGISTER);
        rd_publish(rd, r, 0, NULL, "deregistration", json_pack("{s:I}", "location", (json_int_t)r->location));
        rd_tx(rd);
        db_registration_delete(rd->cfg.db, r->device_id);
        rd->last_dereg_from = from_reliable(f) ? NULL : from_key(f); /* no retransmissions over TCP */
        rd->last_dereg_mid = coap_pdu_get_mid(req);
        reg_drop(rd, r, "device de-registered");
        metrics_coap(true, LWM2M_CODE(2, 2));
        coap_pdu_set_code(resp, COAP_RESPONSE_CODE(202));
        return;
    }
    if (method != COAP_REQUEST_CODE_POST) {
        cu_reply_error(resp, 4, 5, NULL);
        return;
    }
    metrics_inc(MC_RD_UPDATE);
    reg_query_t q;
    code = parse_reg_query(req, false, &q, msg, sizeof msg);
    if (code) {
        refuse(resp, "update-refused", r->endpoint, code, msg);
        return;
    }
    size_t len = 0, off = 0, total = 0;
    const uint8_t *data = NULL;
    if (!coap_get_data_large(req, &len, &data, &off, &total))
        len = 0, data = NULL;
    if (len) {
        char root[32];
        int cfs[8];
        size_t ncf = 0;
        code = rd_parse_links(data, len, root, sizeof root, cfs, &ncf, msg, sizeof msg);
        if (code) {
            refuse(resp, "update-refused", r->endpoint, code, msg);
            return;
        }
        char *nl = malloc(len + 1);
        if (nl) {
            memcpy(nl, data, len);
            nl[len] = 0;
            free(r->links);
            r->links = nl;
        }
        snprintf(r->root, sizeof r->root, "%s", root);
        memcpy(r->cfs, cfs, sizeof cfs);
        r->ncf = ncf;
    }
    if (q.have_lt)
        r->lifetime = q.lt;
    if (q.have_b) {
        snprintf(r->binding, sizeof r->binding, "%s", q.binding);
        r->queue_mode = q.queue;
    }
    if (q.have_sms) {
        free(r->sms);
        r->sms = strdup(q.sms);
    }
    int64_t now = now_ms();
    r->last_update_at = now;
    r->expires_at = now + r->lifetime * 1000;
    touch(rd, r, f);
    arm_expiry(rd, r);
    mark_dirty(rd, r);
    schedule_start(rd, r, false);
    metrics_coap(true, LWM2M_CODE(2, 4));
    coap_pdu_set_code(resp, COAP_RESPONSE_CODE(204));
    LOGD("registry", "ep=%s event=updated location=/rd/%" PRId64 " lt=%" PRId64 " addr=%s proto=%s", r->endpoint,
         r->location, r->lifetime, r->address, from_proto(f));
    json_t *d = reg_event_data(r);
    json_object_set_new(d, "objectLinksChanged", json_boolean(len > 0));
    rd_publish(rd, r, 0, NULL, "update", d);
}

/* -------------------------------------------------------------- libcoap glue */
static void hnd_register(coap_resource_t *res, coap_session_t *cs, const coap_pdu_t *req, const coap_string_t *query,
                         coap_pdu_t *resp)
{
    (void)query;
    do_register(coap_resource_get_userdata(res), &(rd_from_t){.cs = cs}, req, resp);
}

static void hnd_location(coap_resource_t *res, coap_session_t *cs, const coap_pdu_t *req, const coap_string_t *query,
                         coap_pdu_t *resp)
{
    (void)query;
    do_location(coap_resource_get_userdata(res), &(rd_from_t){.cs = cs}, req, resp);
}

bool rd_owns_session(const rd_t *rd, coap_session_t *cs)
{
    return cu_is_local_port(cs, rd->cfg.coap_port) || cu_is_local_port(cs, rd->cfg.coaps_port);
}

/* A response or a failure on a session or peer, for the registration that
 * owns it (the same for both stacks). */
static bool response_for(rd_t *rd, rd_reg_t *r, const coap_pdu_t *recv)
{
    if (!r || r->rd != rd)
        return false;
    touch(rd, r, NULL);
    return rd_requests_on_response(rd, r, recv);
}

static void nack_for(rd_t *rd, rd_reg_t *r, coap_mid_t mid, const char *why)
{
    if (r && r->rd == rd)
        rd_requests_on_nack(rd, r, mid, why);
}

bool rd_on_response(rd_t *rd, coap_session_t *cs, const coap_pdu_t *sent, const coap_pdu_t *recv)
{
    (void)sent;
    return response_for(rd, coap_session_get_app_data(cs), recv);
}

void rd_on_nack(rd_t *rd, coap_session_t *cs, coap_mid_t mid, const char *why)
{
    nack_for(rd, coap_session_get_app_data(cs), mid, why);
}

/* ------------------------------------------------- lwdm's own UDP endpoint */
void rd_udp_request(rd_t *rd, cudp_peer_t *p, const coap_pdu_t *req, coap_pdu_t *resp)
{
    rd_from_t f = {.up = p};
    coap_string_t *path = coap_get_uri_path(req);
    bool is_rd = path && path->length == 2 && !memcmp(path->s, "rd", 2);
    coap_delete_string(path);
    if (!is_rd) {
        do_location(rd, &f, req, resp); /* /rd/{location}, or 4.04 */
    } else if (coap_pdu_get_code(req) == COAP_REQUEST_CODE_POST) {
        do_register(rd, &f, req, resp);
    } else {
        metrics_coap(false, coap_pdu_get_code(req));
        cu_reply_error(resp, 4, 5, NULL);
    }
}

bool rd_udp_response(rd_t *rd, cudp_peer_t *p, const coap_pdu_t *recv)
{
    return response_for(rd, cudp_peer_app_data(p), recv);
}

void rd_udp_nack(rd_t *rd, cudp_peer_t *p, coap_mid_t mid, const char *why)
{
    nack_for(rd, cudp_peer_app_data(p), mid, why);
}

/* A DTLS session in handshake is held (as in the bootstrap interface) so
 * that the idle-session limit cannot evict it before its first request;
 * released then, or after 15 s. */
typedef struct {
    rd_t *rd;
    coap_session_t *cs;
    lwdm_timer_t timer;
} rd_handshake_t;

static void handshake_release(rd_t *rd, coap_session_t *cs)
{
    rd_handshake_t *h = rd_map_get(&rd->handshakes, (int64_t)(intptr_t)cs);
    if (!h)
        return;
    rd_map_del(&rd->handshakes, (int64_t)(intptr_t)cs);
    timer_stop(rd->cfg.timers, &h->timer);
    coap_session_release(h->cs);
    free(h);
}

static void handshake_deadline(lwdm_timer_t *t, void *arg)
{
    (void)t;
    rd_handshake_t *h = arg;
    handshake_release(h->rd, h->cs);
}

void rd_on_session_new(rd_t *rd, coap_session_t *cs)
{
    if (coap_session_get_proto(cs) != COAP_PROTO_DTLS || rd_map_get(&rd->handshakes, (int64_t)(intptr_t)cs))
        return;
    rd_handshake_t *h = calloc(1, sizeof *h);
    if (!h)
        return;
    h->rd = rd;
    h->cs = coap_session_reference(cs);
    timer_init(&h->timer, handshake_deadline, h);
    timer_start(rd->cfg.timers, &h->timer, rd_mono_ms() + 15000);
    if (rd_map_put(&rd->handshakes, (int64_t)(intptr_t)cs, h) != 0) {
        coap_session_release(cs);
        free(h);
    }
}

void rd_on_session_closed(rd_t *rd, coap_session_t *cs)
{
    handshake_release(rd, cs);
    rd_reg_t *r = coap_session_get_app_data(cs);
    if (!r || r->rd != rd || r->cs != cs)
        return;
    /* the device stays registered; it is unreachable until its next message */
    rd_requests_on_nack(rd, r, COAP_INVALID_MID, "connection closed");
    if (r->tcp) {
        /* CoAP over TCP (RFC 8323): nothing reaches the device until it
         * connects again, and its observations ended with the connection
         * (re-established on its next Update). Requests that would not wait
         * for that fail now; queue mode keeps them for the next connection. */
        LOGI("registry", "ep=%s event=connection-closed location=/rd/%" PRId64 " addr=%s", r->endpoint, r->location,
             r->address);
        rd_requests_fail_waiting(rd, r, "connection closed");
        for (rd_obs_t *o = r->obs; o; o = o->next)
            o->active = false;
        r->obs_restore = r->obs != NULL;
    }
    reg_detach_session(r);
}

int rd_psk_lookup(rd_t *rd, const uint8_t *identity, size_t idlen, uint8_t *key, size_t keycap)
{
    db_device_t d = {0};
    if (db_device_get_by_mgmt_identity(rd->cfg.db, identity, idlen, &d) != 0)
        return -1;
    int n = -1;
    if (!d.blacklisted && d.mgmt.security_mode == DB_SEC_PSK && d.mgmt.psk_identity &&
        strlen(d.mgmt.psk_identity) == idlen && !memcmp(d.mgmt.psk_identity, identity, idlen) && d.mgmt.psk &&
        d.mgmt.psk_len <= keycap) {
        memcpy(key, d.mgmt.psk, d.mgmt.psk_len);
        n = (int)d.mgmt.psk_len;
    }
    if (n < 0 && !d.blacklisted) {
        db_server_cred_t *creds = NULL;
        size_t nc = 0;
        if (db_device_server_cred_list(rd->cfg.db, d.id, &creds, &nc) == 0) {
            for (size_t i = 0; i < nc && n < 0; i++) {
                const db_credentials_t *c = &creds[i].cred;
                if (c->security_mode == DB_SEC_PSK && c->psk_identity && strlen(c->psk_identity) == idlen &&
                    !memcmp(c->psk_identity, identity, idlen) && c->psk && c->psk_len <= keycap) {
                    memcpy(key, c->psk, c->psk_len);
                    n = (int)c->psk_len;
                }
            }
            db_server_cred_list_free(&creds, nc);
        }
    }
    db_device_free(&d);
    return n;
}

/* ------------------------------------------------------------ submissions */
int rd_submit(void *vrd, devop_t *op)
{
    rd_t *rd = vrd;
    pthread_mutex_lock(&rd->inbox_lock);
    if (rd->stopping) {
        pthread_mutex_unlock(&rd->inbox_lock);
        return -1;
    }
    devop_t **grow = rd->inbox;
    if (rd->ninbox == rd->inbox_cap) {
        size_t nc = rd->inbox_cap ? rd->inbox_cap * 2 : 16;
        grow = realloc(rd->inbox, nc * sizeof *grow);
        if (!grow) {
            pthread_mutex_unlock(&rd->inbox_lock);
            return -1;
        }
        rd->inbox = grow;
        rd->inbox_cap = nc;
    }
    rd->inbox[rd->ninbox++] = op;
    pthread_mutex_unlock(&rd->inbox_lock);
    if (rd->cfg.wake)
        rd->cfg.wake(rd->cfg.wake_arg);
    return 0;
}

void rd_forget(void *vrd, int64_t device_id)
{
    rd_t *rd = vrd;
    pthread_mutex_lock(&rd->deleted_lock);
    if (rd->ndeleted == rd->deleted_cap) {
        size_t nc = rd->deleted_cap ? rd->deleted_cap * 2 : 16;
        int64_t *g = realloc(rd->deleted, nc * sizeof *g);
        if (!g) {
            pthread_mutex_unlock(&rd->deleted_lock);
            return;
        }
        rd->deleted = g;
        rd->deleted_cap = nc;
    }
    rd->deleted[rd->ndeleted++] = device_id;
    pthread_mutex_unlock(&rd->deleted_lock);
    if (rd->cfg.wake)
        rd->cfg.wake(rd->cfg.wake_arg);
}

static void take_deleted(rd_t *rd)
{
    pthread_mutex_lock(&rd->deleted_lock);
    int64_t ids[64];
    size_t n = rd->ndeleted < 64 ? rd->ndeleted : 64;
    if (n) {
        memcpy(ids, rd->deleted, n * sizeof *ids);
        memmove(rd->deleted, rd->deleted + n, (rd->ndeleted - n) * sizeof *ids);
    }
    rd->ndeleted -= n;
    pthread_mutex_unlock(&rd->deleted_lock);
    for (size_t i = 0; i < n; i++) {
        rd_reg_t *r = rd_map_get(&rd->by_dev, ids[i]);
        if (!r)
            continue;
        LOGI("registry", "ep=%s event=device-deleted location=/rd/%" PRId64, r->endpoint, r->location);
        reg_drop(rd, r, "device deleted");
    }
}

static void take_inbox(rd_t *rd)
{
    pthread_mutex_lock(&rd->inbox_lock);
    size_t n = rd->ninbox;
    devop_t *local[64];
    if (n > 64)
        n = 64;
    if (n) {
        memcpy(local, rd->inbox, n * sizeof *local);
        memmove(rd->inbox, rd->inbox + n, (rd->ninbox - n) * sizeof *local);
    }
    rd->ninbox -= n;
    bool more = rd->ninbox > 0;
    pthread_mutex_unlock(&rd->inbox_lock);
    for (size_t i = 0; i < n; i++)
        rd_devop_start(rd, local[i]);
    if (more && rd->cfg.wake)
        rd->cfg.wake(rd->cfg.wake_arg);
}

void rd_after_io(rd_t *rd)
{
    take_deleted(rd);
    take_inbox(rd);
    while (rd->starts) {
        rd_reg_t *r = rd->starts;
        rd->starts = r->start_next;
        r->start_pending = false;
        bool reg = r->start_register;
        r->start_register = false;
        rd_session_start(rd, r, reg);
    }
    if (rd->dirty) {
        rd_tx(rd);
        for (rd_reg_t *r = rd->dirty; r; r = r->dirty_next) {
            db_registration_t d;
            char cfs[96];
            reg_to_db(r, &d, cfs, sizeof cfs);
            if (db_registration_put(rd->cfg.db, &d) != 0)
                LOGE("registry", "ep=%s event=store-failed", r->endpoint);
            db_device_set_seen(rd->cfg.db, r->device_id, r->last_update_at == r->registered_at ? r->registered_at : 0,
                               r->last_contact);
            r->dirty = false;
        }
        rd->dirty = NULL;
    }
    tx_commit(rd);
    events_batch_publish(rd->cfg.events, &rd->evq);
    rd_devops_release(rd);
}

/* ------------------------------------------------------------- lifecycle */
static void load(rd_t *rd)
{
    db_registration_t *rows = NULL;
    size_t n = 0;
    if (db_registration_list(rd->cfg.db, &rows, &n) != 0)
        return;
    int64_t now = now_ms();
    size_t kept = 0, expired = 0;
    for (size_t i = 0; i < n; i++) {
        db_registration_t *d = &rows[i];
        if (d->expires_at <= now) {
            db_registration_delete(rd->cfg.db, d->device_id);
            expired++;
            continue;
        }
        rd_reg_t *r = reg_new(rd, d->device_id, d->endpoint);
        if (!r)
            break;
        r->location = d->location;
        r->lifetime = d->lifetime;
        r->version = !strcmp(d->lwm2m_version, "1.2") ? LWM2M_V1_2
                     : !strcmp(d->lwm2m_version, "1.1") ? LWM2M_V1_1
                                                        : LWM2M_V1_0;
        snprintf(r->binding, sizeof r->binding, "%s", d->binding);
        r->queue_mode = d->queue_mode;
        r->sms = d->sms ? strdup(d->sms) : NULL;
        r->links = strdup(d->object_links);
        char msg[64];
        int cfs[8];
        size_t ncf = 0;
        rd_parse_links((const uint8_t *)d->object_links, strlen(d->object_links), r->root, sizeof r->root, cfs, &ncf,
                       msg, sizeof msg);
        memcpy(r->cfs, cfs, sizeof cfs);
        r->ncf = ncf;
        r->secure = d->secure;
        r->tcp = d->transport && !strcmp(d->transport, "tcp");
        r->psk_identity = d->psk_identity ? strdup(d->psk_identity) : NULL;
        snprintf(r->address, sizeof r->address, "%s", d->address);
        r->registered_at = d->registered_at;
        r->last_update_at = d->last_update_at;
        r->expires_at = d->expires_at;
        r->last_reg_mid = -1;
        r->obs_restore = true; /* re-observe on its first Update (the device still sends, lwdm lost the tokens) */
        if (rd->cfg.udp && !r->secure && !r->tcp) {
            /* plain CoAP over UDP: reachable at its last address right away */
            cudp_peer_t *up = cudp_peer_at(rd->cfg.udp, r->address);
            if (up) {
                reg_attach_session(r, &(rd_from_t){.up = up});
                cudp_peer_unref(up);
            }
        }
        rd_map_put(&rd->by_dev, r->device_id, r);
        rd_map_put(&rd->by_loc, r->location, r);
        arm_expiry(rd, r);
        kept++;
    }
    db_registration_list_free(&rows, n);
    if (kept || expired)
        LOGI("registry", "event=loaded registrations=%zu expired=%zu", kept, expired);
}

int rd_new(const rd_config_t *cfg, rd_t **out)
{
    *out = NULL;
    rd_t *rd = calloc(1, sizeof *rd);
    if (!rd)
        return -1;
    rd->cfg = *cfg;
    if (!rd->cfg.domain)
        rd->cfg.domain = "/";
    if (!rd->cfg.request_timeout_ms)
        rd->cfg.request_timeout_ms = 10000;
    pthread_mutex_init(&rd->inbox_lock, NULL);
    pthread_mutex_init(&rd->deleted_lock, NULL);
    rd->last_dereg_mid = COAP_INVALID_MID;
    randombytes_buf(&rd->token_base, sizeof rd->token_base);
    rd->next_request_id = 1;
    coap_resource_t *r = coap_resource_init(coap_make_str_const("rd"), 0);
    coap_register_handler(r, COAP_REQUEST_POST, hnd_register);
    coap_resource_set_userdata(r, rd);
    coap_add_resource(cfg->coap, r);
    coap_resource_t *u = coap_resource_unknown_init2(hnd_location, 0);
    coap_register_handler(u, COAP_REQUEST_POST, hnd_location);
    coap_register_handler(u, COAP_REQUEST_DELETE, hnd_location);
    coap_register_handler(u, COAP_REQUEST_PUT, hnd_location);
    coap_register_handler(u, COAP_REQUEST_GET, hnd_location);
    coap_resource_set_userdata(u, rd);
    coap_add_resource(cfg->coap, u);
    load(rd);
    *out = rd;
    return 0;
}

static void free_all_regs(rd_t *rd)
{
    for (size_t i = 0; i < rd->by_dev.cap; i++) {
        rd_reg_t *r = rd->by_dev.slots[i].val;
        if (r) {
            reg_drop(rd, r, "server stopping");
            i = (size_t)-1; /* the map changed: rescan */
        }
    }
}

void rd_cancel_ops(rd_t *rd)
{
    pthread_mutex_lock(&rd->inbox_lock);
    rd->stopping = true;
    size_t n = rd->ninbox;
    devop_t **ops = rd->inbox;
    rd->inbox = NULL;
    rd->ninbox = rd->inbox_cap = 0;
    pthread_mutex_unlock(&rd->inbox_lock);
    rd_devops_release(rd); /* from here on answers go at once */
    for (size_t i = 0; i < n; i++)
        rd_devop_fail(rd, ops[i], 503, "server stopping", "the server is shutting down");
    free(ops);
    for (size_t i = 0; i < rd->by_dev.cap; i++) {
        rd_reg_t *r = rd->by_dev.slots[i].val;
        if (r)
            rd_requests_fail_all(rd, r, "server stopping");
    }
}

void rd_free(rd_t **rdp)
{
    rd_t *rd = rdp ? *rdp : NULL;
    if (!rd)
        return;
    rd_cancel_ops(rd);
    tx_commit(rd);
    free_all_regs(rd);
    events_batch_publish(rd->cfg.events, &rd->evq);
    events_batch_clear(&rd->evq);
    free(rd->by_dev.slots);
    free(rd->by_loc.slots);
    for (size_t i = 0; i < rd->handshakes.cap; i++) {
        rd_handshake_t *h = rd->handshakes.slots[i].val;
        if (h) {
            timer_stop(rd->cfg.timers, &h->timer);
            coap_session_release(h->cs);
            free(h);
        }
    }
    free(rd->handshakes.slots);
    for (size_t i = 0; rd->done && i < RD_DONE_KEEP; i++)
        free(rd->done[i].json);
    free(rd->done);
    free(rd->deleted);
    free(rd->answered);
    pthread_mutex_destroy(&rd->deleted_lock);
    rd_tasks_cache_free(rd);
    pthread_mutex_destroy(&rd->inbox_lock);
    free(rd);
    *rdp = NULL;
}

size_t rd_count(const rd_t *rd) { return rd->by_dev.n; }

size_t rd_count_online(const rd_t *rd)
{
    size_t n = 0;
    int64_t now = now_ms();
    for (size_t i = 0; i < rd->by_dev.cap; i++) {
        const rd_reg_t *r = rd->by_dev.slots[i].val;
        if (r && r->expires_at > now && (!r->queue_mode || now < r->awake_until))
            n++;
    }
    return n;
}
