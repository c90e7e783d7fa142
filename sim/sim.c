/* The simulator: devices, the libcoap glue and the event loop.
 *
 * Ownership:
 *  - sim_t owns the libcoap context, the epoll and timer descriptors, the
 *    device array, each device's data model and its client session.
 *  - A device holds the one reference libcoap gives to a new client session
 *    (coap_new_client_session*) from CONNECT until CLOSE; the session's
 *    app_data points back at the device and is cleared before the release,
 *    so late libcoap callbacks (NACKs raised while the session is freed) see
 *    NULL and are ignored.
 *  - Nothing is released inside a libcoap callback: state-machine actions
 *    are queued on the device (`acts`) and carried out by flush() after
 *    coap_io_process() returned (two-phase teardown, STYLE.md §4). This also
 *    lets the response to the request being handled (Finish, or the last
 *    request before a stall) leave before the socket closes.
 *
 * Loop (LIBCOAP.md "Owning the event loop"): one epoll set with libcoap's
 * own epoll fd and a 100 ms timerfd. The tick also calls coap_io_process()
 * because libcoap 4.3.1 can switch its retransmission timer off.
 *
 * Finding (checked with a test program on libcoap 4.3.1, see docs/sim.md):
 * requests a server sends on its server-side session reach the client
 * context's resource handlers, including GET/PUT/POST/DELETE on paths that
 * no resource is registered for, through the "unknown" resource
 * (coap_resource_unknown_init2 + coap_register_handler for each method).
 * So every device path goes through one handler, and the session's app data
 * identifies the device.
 */
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <coap3/coap.h>

#include "server/common/log.h"
#include "server/lwm2m/registry.h"
#include "sim/sim_int.h"

#define SIM_TICK_MS 100
#define SIM_EP_MAX 128
#define SIM_ID_MAX 128
#define SIM_KEY_MAX 64

struct sim_device {
    sim_t *sim;
    size_t index;
    char ep[SIM_EP_MAX];
    uint8_t identity[SIM_ID_MAX];
    size_t identity_len;
    uint8_t key[SIM_KEY_MAX];
    size_t key_len;
    sim_dm_t *dm;            /* owned */
    sim_bs_t bs;             /* bootstrap phase (registration phases come later) */
    coap_session_t *session; /* one reference held while non-NULL */
    uint8_t token[8];        /* outstanding Bootstrap-Request */
    size_t token_len;
    bool awaiting;           /* Bootstrap-Request sent, no answer yet */
    unsigned acts;           /* queued SIM_BS_ACT_* */
    bool queued;
    sim_device_t *next_work;
    int slot;                /* index in sim->active, -1 if not active */
    bool reported;           /* done and accounted for */
    /* RFC 7252 §4.5: a retransmitted CON request (same MID) gets the same
     * answer again. libcoap 4.3.1 does not deduplicate requests (it calls
     * the handler again), and the Bootstrap-Server keeps one request in
     * flight per session, so remembering the last answer is enough. */
    bool have_last;
    uint16_t last_mid;
    int last_code, last_cf;
    uint8_t *last_payload;   /* owned */
    size_t last_len;
    uint64_t linger_until_us;/* session kept open after done until then; 0 = not lingering */
    sim_device_t *next_linger;
};

struct sim {
    coap_context_t *ctx;
    int epfd, tfd, coap_fd;
    coap_address_t server, local;
    coap_proto_t proto;
    char *server_uri;
    lwm2m_version_t version;
    int format;
    bool omit_pct;
    unsigned concurrency;
    lwm2m_registry_t *own_reg;
    const lwm2m_registry_t *reg;
    sim_device_t *devs;
    size_t n;
    size_t next_pending;
    sim_device_t **active;
    size_t nactive;
    sim_device_t *work_head, *work_tail;
    sim_device_t *linger_head;   /* done devices whose session stays open a while */
    size_t nlinger;
    uint64_t linger_us;
    bool addr_per_device;
    size_t ndone;
    uint64_t t_start_us, t_last_done_us;
    bool started, stopped;
    sim_done_cb on_done;
    void *ud;
};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static pthread_once_t coap_once = PTHREAD_ONCE_INIT;
static void do_coap_startup(void) { coap_startup(); }

/* ------------------------------------------------------------ config */

void sim_config_init(sim_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->local_addr = "127.0.0.1";
    cfg->ep_prefix = "sim-";
    cfg->first_index = 1;
    cfg->ep_digits = 6;
    cfg->version = LWM2M_V1_1;
    cfg->format = LWM2M_CF_SENML_CBOR;
    cfg->concurrency = 64;
    cfg->timeout_ms = 30000;
    cfg->retry_delay_ms = 1000;
    cfg->stall_after = -1;
    cfg->addr_per_device = true;
}

const char *sim_state_name(sim_state_t s)
{
    switch (s) {
    case SIM_PENDING: return "pending";
    case SIM_RUNNING: return "running";
    case SIM_OK: return "ok";
    case SIM_FAILED: return "failed";
    }
    return "?";
}

static int parse_addr(const char *host, size_t hlen, uint16_t port, int family, coap_address_t *out)
{
    char h[256];
    if (hlen >= sizeof h)
        return -EINVAL;
    memcpy(h, host, hlen);
    h[hlen] = '\0';
    /* "[::1]" as written in URIs */
    char *hp = h;
    if (hp[0] == '[' && hlen >= 2 && hp[hlen - 1] == ']') {
        hp[hlen - 1] = '\0';
        hp++;
    }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = family;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICSERV;
    char ps[8];
    snprintf(ps, sizeof ps, "%u", port);
    if (getaddrinfo(hp, ps, &hints, &res) != 0 || !res)
        return -EINVAL;
    coap_address_init(out);
    out->size = res->ai_addrlen;
    memcpy(&out->addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

static int format_index(char *buf, size_t cap, const char *prefix, unsigned digits, unsigned long idx)
{
    int n = snprintf(buf, cap, "%s%0*lu", prefix, (int)digits, idx);
    return n < 0 || (size_t)n >= cap ? -EINVAL : 0;
}

/* ------------------------------------------------------------ sessions */

static void queue_acts(sim_device_t *dev, unsigned acts)
{
    if (!acts && !sim_bs_done(&dev->bs))
        return;
    dev->acts |= acts;
    if (dev->queued)
        return;
    dev->queued = true;
    dev->next_work = NULL;
    sim_t *sim = dev->sim;
    if (sim->work_tail)
        sim->work_tail->next_work = dev;
    else
        sim->work_head = dev;
    sim->work_tail = dev;
}

static void forget_last(sim_device_t *dev)
{
    free(dev->last_payload);
    dev->last_payload = NULL;
    dev->last_len = 0;
    dev->have_last = false;
}

static void release_session(sim_device_t *dev)
{
    if (!dev->session)
        return;
    coap_session_set_app_data(dev->session, NULL);
    coap_session_release(dev->session);
    dev->session = NULL;
    dev->awaiting = false;
    forget_last(dev);
}

/* Local address of device `dev`: local_addr, or local_addr + index inside
 * 127.0.0.0/8 when addr_per_device applies. */
static void device_local(const sim_device_t *dev, coap_address_t *out)
{
    const sim_t *sim = dev->sim;
    *out = sim->local;
    if (sim->addr_per_device) {
        uint32_t a = ntohl(out->addr.sin.sin_addr.s_addr) + (uint32_t)dev->index;
        out->addr.sin.sin_addr.s_addr = htonl(a);
    }
}

static int open_session(sim_device_t *dev)
{
    sim_t *sim = dev->sim;
    coap_address_t local;
    device_local(dev, &local);
    coap_session_t *s;
    if (sim->proto == COAP_PROTO_DTLS) {
        coap_dtls_cpsk_t setup;
        memset(&setup, 0, sizeof setup);
        setup.version = COAP_DTLS_CPSK_SETUP_VERSION;
        setup.psk_info.identity.s = dev->identity;
        setup.psk_info.identity.length = dev->identity_len;
        setup.psk_info.key.s = dev->key;
        setup.psk_info.key.length = dev->key_len;
        s = coap_new_client_session_psk2(sim->ctx, &local, &sim->server, COAP_PROTO_DTLS, &setup);
    } else {
        s = coap_new_client_session(sim->ctx, &local, &sim->server, COAP_PROTO_UDP);
    }
    if (!s)
        return -EIO;
    coap_session_set_app_data(s, dev);
    uint8_t seed[8];
    coap_prng(seed, sizeof seed);
    coap_session_init_token(s, sizeof seed, seed);
    dev->session = s;
    return 0;
}

/* POST /bs?ep=<name>[&pct=<cf>] (Core TS 1.1.1 §5.2.7.1; pct since 1.1) */
static int send_bs_request(sim_device_t *dev)
{
    sim_t *sim = dev->sim;
    coap_pdu_t *pdu = coap_new_pdu(COAP_MESSAGE_CON, COAP_REQUEST_CODE_POST, dev->session);
    if (!pdu)
        return -ENOMEM;
    coap_session_new_token(dev->session, &dev->token_len, dev->token);
    char q[SIM_EP_MAX + 8];
    int ok = coap_add_token(pdu, dev->token_len, dev->token);
    ok = ok && coap_add_option(pdu, COAP_OPTION_URI_PATH, 2, (const uint8_t *)"bs");
    int ql = snprintf(q, sizeof q, "ep=%s", dev->ep);
    ok = ok && coap_add_option(pdu, COAP_OPTION_URI_QUERY, (size_t)ql, (const uint8_t *)q);
    if (sim->version >= LWM2M_V1_1 && !sim->omit_pct) {
        ql = snprintf(q, sizeof q, "pct=%d", sim->format);
        ok = ok && coap_add_option(pdu, COAP_OPTION_URI_QUERY, (size_t)ql, (const uint8_t *)q);
    }
    if (!ok) {
        coap_delete_pdu(pdu);
        return -ENOMEM;
    }
    dev->awaiting = true;
    if (coap_send(dev->session, pdu) == COAP_INVALID_MID) { /* takes the PDU either way */
        dev->awaiting = false;
        return -EIO;
    }
    LOGD("sim", "ep=%s event=bootstrap_request attempt=%u", dev->ep, dev->bs.attempt);
    return 0;
}

/* ------------------------------------------------------------ work queue */

static void deactivate(sim_device_t *dev)
{
    sim_t *sim = dev->sim;
    if (dev->slot < 0)
        return;
    size_t at = (size_t)dev->slot;
    sim->active[at] = sim->active[--sim->nactive];
    sim->active[at]->slot = (int)at;
    dev->slot = -1;
}

/* Carries out queued actions, outside any libcoap callback. */
static void flush(sim_t *sim)
{
    while (sim->work_head) {
        sim_device_t *dev = sim->work_head;
        sim->work_head = dev->next_work;
        if (!sim->work_head)
            sim->work_tail = NULL;
        dev->queued = false;
        unsigned acts = dev->acts;
        dev->acts = 0;
        /* a finished device may linger (answers retransmissions); the
         * stall fault and stop close at once */
        bool keep = sim->linger_us && sim_bs_done(&dev->bs) && !dev->reported && !(acts & SIM_BS_ACT_CLOSE_NOW);
        if ((acts & SIM_BS_ACT_CLOSE) && !keep)
            release_session(dev);
        if (acts & SIM_BS_ACT_CONNECT) {
            release_session(dev);
            /* libcoap binds client sockets with SO_REUSEADDR, so the kernel
             * may hand out an ephemeral port another session already uses;
             * libcoap then refuses the "duplicate" session: try again. */
            int rc = -EIO;
            for (int tries = 0; tries < 8 && rc == -EIO; tries++)
                rc = open_session(dev);
            if (rc == 0)
                rc = send_bs_request(dev);
            if (rc != 0) {
                char why[96];
                snprintf(why, sizeof why, "cannot send bootstrap request (%s)",
                         rc == -EIO ? "session or socket failed; too many open files?" : strerror(-rc));
                unsigned a = sim_bs_on_transport(&dev->bs, now_us(), why);
                if (a & SIM_BS_ACT_CLOSE)
                    release_session(dev);
            }
        }
        if (sim_bs_done(&dev->bs) && !dev->reported) {
            if (sim->linger_us && dev->session && !(acts & SIM_BS_ACT_CLOSE_NOW)) {
                dev->linger_until_us = now_us() + sim->linger_us;
                dev->next_linger = sim->linger_head;
                sim->linger_head = dev;
                sim->nlinger++;
            } else {
                release_session(dev);
            }
            deactivate(dev);
            dev->reported = true;
            sim->ndone++;
            if (dev->bs.t_done_us > sim->t_last_done_us)
                sim->t_last_done_us = dev->bs.t_done_us;
            if (dev->bs.state == SIM_BS_OK)
                LOGD("sim", "ep=%s event=bootstrap_done result=ok ms=%.1f", dev->ep,
                          (double)(dev->bs.t_done_us - dev->bs.t_first_us) / 1000.0);
            else
                LOGI("sim", "ep=%s event=bootstrap_done result=failed reason=\"%s\"", dev->ep, dev->bs.reason);
            if (sim->on_done)
                sim->on_done(sim->ud, sim, dev);
        }
    }
}

static void start_pending(sim_t *sim)
{
    uint64_t t = now_us();
    while (!sim->stopped && sim->nactive < sim->concurrency && sim->next_pending < sim->n) {
        sim_device_t *dev = &sim->devs[sim->next_pending++];
        dev->slot = (int)sim->nactive;
        sim->active[sim->nactive++] = dev;
        queue_acts(dev, sim_bs_start(&dev->bs, t));
    }
}

static void run_timers(sim_t *sim)
{
    uint64_t t = now_us();
    for (sim_device_t **pp = &sim->linger_head; *pp;) {
        sim_device_t *dev = *pp;
        if (t >= dev->linger_until_us) {
            *pp = dev->next_linger;
            dev->next_linger = NULL;
            dev->linger_until_us = 0;
            sim->nlinger--;
            release_session(dev);
        } else {
            pp = &dev->next_linger;
        }
    }
    for (size_t k = 0; k < sim->nactive; k++) {
        sim_device_t *dev = sim->active[k];
        queue_acts(dev, sim_bs_tick(&dev->bs, t));
    }
}

/* ------------------------------------------------------------ libcoap callbacks */

static int opt_uint(const coap_pdu_t *pdu, coap_option_num_t num)
{
    coap_opt_iterator_t it;
    coap_opt_t *o = coap_check_option(pdu, num, &it);
    if (!o)
        return -1;
    return (int)coap_decode_var_bytes(coap_opt_value(o), coap_opt_length(o));
}

static void release_payload(coap_session_t *s, void *p)
{
    (void)s;
    free(p);
}

static void on_request(coap_resource_t *res, coap_session_t *s, const coap_pdu_t *req, const coap_string_t *query,
                       coap_pdu_t *resp)
{
    sim_device_t *dev = coap_session_get_app_data(s);
    coap_mid_t mid = coap_pdu_get_mid(req);
    if (dev && dev->have_last && mid == dev->last_mid && coap_pdu_get_type(req) == COAP_MESSAGE_CON) {
        /* retransmission: same answer, no second execution */
        LOGD("sim", "ep=%s event=duplicate_request mid=%d", dev->ep, (int)mid);
        coap_pdu_set_code(resp, (coap_pdu_code_t)dev->last_code);
        if (dev->last_len) {
            uint8_t *copy = malloc(dev->last_len);
            if (copy) {
                memcpy(copy, dev->last_payload, dev->last_len);
                coap_add_data_large_response(res, s, req, resp, query, (uint16_t)dev->last_cf, -1, 0, dev->last_len,
                                             copy, release_payload, copy);
            }
        }
        return;
    }
    if (!dev || dev->bs.state != SIM_BS_SERVING) {
        /* before our 2.04 arrived or after the procedure ended: the
         * Bootstrap-Server must not send requests now (CONFORMANCE.md §1) */
        if (dev && !dev->linger_until_us)
            LOGW("sim", "ep=%s event=unexpected_request state=%d", dev->ep, (int)dev->bs.state);
        coap_pdu_set_code(resp, COAP_RESPONSE_CODE(503));
        return;
    }
    coap_string_t *path = coap_get_uri_path(req);
    sim_request_t r;
    memset(&r, 0, sizeof r);
    r.method = (int)coap_pdu_get_code(req);
    r.path = path ? (const char *)path->s : "";
    r.path_len = path ? path->length : 0;
    r.query = query ? (const char *)query->s : NULL;
    r.query_len = query ? query->length : 0;
    r.content_format = opt_uint(req, COAP_OPTION_CONTENT_FORMAT);
    r.accept = opt_uint(req, COAP_OPTION_ACCEPT);
    size_t len = 0, off = 0, total = 0;
    const uint8_t *data = NULL;
    if (coap_get_data_large(req, &len, &data, &off, &total)) {
        r.payload = data;
        r.payload_len = len;
    }
    sim_response_t out;
    sim_dm_handle(dev->dm, &r, &out);
    uint64_t t = now_us();
    if (log_get_level() <= LOG_LVL_DEBUG) {
        char c[8];
        LOGD("sim", "ep=%s event=request method=%d path=/%.*s cf=%d accept=%d len=%zu code=%s%s%s", dev->ep, r.method,
                  (int)r.path_len, r.path, r.content_format, r.accept, r.payload_len, sim_code_str(out.code, c, sizeof c),
                  out.detail[0] ? " detail=" : "", out.detail);
    }
    coap_delete_string(path);

    coap_pdu_set_code(resp, (coap_pdu_code_t)out.code);
    forget_last(dev);
    if (coap_pdu_get_type(req) == COAP_MESSAGE_CON) {
        dev->have_last = true;
        dev->last_mid = (uint16_t)mid;
        dev->last_code = out.code;
        dev->last_cf = out.content_format;
        if (out.payload_len && (dev->last_payload = malloc(out.payload_len))) {
            memcpy(dev->last_payload, out.payload, out.payload_len);
            dev->last_len = out.payload_len;
        } else if (out.payload_len) {
            dev->have_last = false;
        }
    }
    if (out.payload && out.payload_len) {
        /* takes ownership of the payload, also on failure (it calls release_payload) */
        coap_add_data_large_response(res, s, req, resp, query, (uint16_t)out.content_format, -1, 0, out.payload_len,
                                     out.payload, release_payload, out.payload);
        out.payload = NULL;
    }
    unsigned acts = sim_bs_on_served(&dev->bs, t, out.code, out.event, out.detail);
    sim_response_clear(&out);
    queue_acts(dev, acts);
}

static coap_response_t on_response(coap_session_t *s, const coap_pdu_t *sent, const coap_pdu_t *rcv, const coap_mid_t mid)
{
    (void)sent;
    (void)mid;
    sim_device_t *dev = coap_session_get_app_data(s);
    if (!dev || !dev->awaiting)
        return COAP_RESPONSE_OK;
    coap_bin_const_t tok = coap_pdu_get_token(rcv);
    if (tok.length != dev->token_len || memcmp(tok.s, dev->token, tok.length) != 0)
        return COAP_RESPONSE_OK;
    dev->awaiting = false;
    int code = (int)coap_pdu_get_code(rcv);
    LOGD("sim", "ep=%s event=bootstrap_response code=%d.%02d", dev->ep, code >> 5, code & 31);
    queue_acts(dev, sim_bs_on_response(&dev->bs, now_us(), code));
    return COAP_RESPONSE_OK;
}

static void on_nack(coap_session_t *s, const coap_pdu_t *sent, const coap_nack_reason_t reason, const coap_mid_t mid)
{
    (void)sent;
    (void)mid;
    sim_device_t *dev = coap_session_get_app_data(s);
    if (!dev || !dev->awaiting)
        return;
    const char *why = "transport error";
    switch (reason) {
    case COAP_NACK_TOO_MANY_RETRIES: why = "no answer to bootstrap request (retransmissions exhausted)"; break;
    case COAP_NACK_NOT_DELIVERABLE: why = "bootstrap request not deliverable"; break;
    case COAP_NACK_RST: why = "bootstrap request answered with RST"; break;
    case COAP_NACK_TLS_FAILED: why = "DTLS handshake failed"; break;
    case COAP_NACK_ICMP_ISSUE: why = "ICMP error on bootstrap request (port unreachable?)"; break;
    default: break;
    }
    dev->awaiting = false;
    queue_acts(dev, sim_bs_on_transport(&dev->bs, now_us(), why));
}

static int on_event(coap_session_t *s, const coap_event_t ev)
{
    sim_device_t *dev = s ? coap_session_get_app_data(s) : NULL;
    if (!dev)
        return 0;
    const char *why = NULL;
    switch (ev) {
    case COAP_EVENT_DTLS_ERROR: why = "DTLS error"; break;
    case COAP_EVENT_DTLS_CLOSED: why = "DTLS session closed by peer"; break;
    case COAP_EVENT_SESSION_FAILED: why = "session failed"; break;
    default: break;
    }
    if (why && ev == COAP_EVENT_DTLS_CLOSED && dev->bs.state == SIM_BS_REQUESTING)
        why = "DTLS closed before the bootstrap request was answered (handshake failed: wrong PSK?)";
    if (why)
        queue_acts(dev, sim_bs_on_transport(&dev->bs, now_us(), why));
    return 0;
}

/* ------------------------------------------------------------ lifecycle */

static int setup_context(sim_t *sim)
{
    sim->ctx = coap_new_context(NULL);
    if (!sim->ctx)
        return -EIO;
    coap_context_set_block_mode(sim->ctx, COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
    coap_register_response_handler(sim->ctx, on_response);
    coap_register_nack_handler(sim->ctx, on_nack);
    coap_register_event_handler(sim->ctx, on_event);
    coap_resource_t *r = coap_resource_unknown_init2(on_request, 0);
    if (!r)
        return -EIO;
    static const coap_request_t methods[] = {COAP_REQUEST_GET,   COAP_REQUEST_POST,  COAP_REQUEST_PUT,
                                             COAP_REQUEST_DELETE, COAP_REQUEST_FETCH, COAP_REQUEST_PATCH,
                                             COAP_REQUEST_IPATCH};
    for (size_t k = 0; k < sizeof methods / sizeof methods[0]; k++)
        coap_register_handler(r, methods[k], on_request);
    coap_add_resource(sim->ctx, r);

    sim->coap_fd = coap_context_get_coap_fd(sim->ctx);
    sim->epfd = epoll_create1(EPOLL_CLOEXEC);
    sim->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (sim->epfd < 0 || sim->tfd < 0 || sim->coap_fd < 0)
        return -errno ? -errno : -EIO;
    struct itimerspec its = {{0, SIM_TICK_MS * 1000000L}, {0, SIM_TICK_MS * 1000000L}};
    if (timerfd_settime(sim->tfd, 0, &its, NULL) != 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN};
    ev.data.fd = sim->coap_fd;
    if (epoll_ctl(sim->epfd, EPOLL_CTL_ADD, sim->coap_fd, &ev) != 0)
        return -errno;
    ev.data.fd = sim->tfd;
    if (epoll_ctl(sim->epfd, EPOLL_CTL_ADD, sim->tfd, &ev) != 0)
        return -errno;
    return 0;
}

static int setup_device(sim_t *sim, const sim_config_t *cfg, size_t i)
{
    sim_device_t *dev = &sim->devs[i];
    dev->sim = sim;
    dev->index = i;
    dev->slot = -1;
    unsigned long idx = (unsigned long)cfg->first_index + i;
    if (cfg->endpoints) {
        if (!cfg->endpoints[i] || strlen(cfg->endpoints[i]) >= SIM_EP_MAX || !cfg->endpoints[i][0])
            return -EINVAL;
        strcpy(dev->ep, cfg->endpoints[i]);
    } else if (format_index(dev->ep, sizeof dev->ep, cfg->ep_prefix, cfg->ep_digits, idx) != 0) {
        return -EINVAL;
    }
    bool psk = sim->proto == COAP_PROTO_DTLS;
    if (psk) {
        char id[SIM_ID_MAX];
        if (cfg->psk_identity_prefix) {
            if (format_index(id, sizeof id, cfg->psk_identity_prefix, cfg->ep_digits, idx) != 0)
                return -EINVAL;
        } else {
            snprintf(id, sizeof id, "%s", dev->ep);
        }
        dev->identity_len = strlen(id);
        memcpy(dev->identity, id, dev->identity_len);
        if (cfg->psk_key_cb) {
            int n = cfg->psk_key_cb(cfg->psk_key_ud, i, dev->ep, dev->key, sizeof dev->key);
            if (n <= 0 || (size_t)n > sizeof dev->key)
                return -EINVAL;
            dev->key_len = (size_t)n;
        } else {
            if (!cfg->psk_key || !cfg->psk_key_len || cfg->psk_key_len > sizeof dev->key)
                return -EINVAL;
            memcpy(dev->key, cfg->psk_key, cfg->psk_key_len);
            dev->key_len = cfg->psk_key_len;
        }
    }
    sim_dm_config_t dc;
    sim_dm_config_init(&dc);
    dc.version = cfg->version;
    dc.preferred_cf = sim->format;
    dc.reg = sim->reg;
    dc.endpoint = dev->ep;
    dc.bs_uri = cfg->server_uri;
    dc.bs_iid = cfg->bs_account_iid;
    dc.bs_security_mode = psk ? SIM_SEC_PSK : SIM_SEC_NOSEC;
    dc.psk_identity = dev->identity;
    dc.psk_identity_len = dev->identity_len;
    dc.psk_key = dev->key;
    dc.psk_key_len = dev->key_len;
    dc.binding = cfg->binding;
    dc.factory = cfg->factory;
    dc.refuse_discover = cfg->refuse_discover;
    dc.fail_finish = cfg->fail_finish;
    if (sim_dm_new(&dc, &dev->dm) != 0)
        return -EINVAL;
    sim_bs_init(&dev->bs, cfg->retries, (uint64_t)cfg->timeout_ms * 1000u, (uint64_t)cfg->retry_delay_ms * 1000u,
                cfg->stall_after);
    return 0;
}

int sim_new(const sim_config_t *cfg, sim_t **out)
{
    *out = NULL;
    if (!cfg || !cfg->server_uri || cfg->count == 0 || cfg->concurrency == 0 || cfg->timeout_ms == 0 ||
        (!cfg->endpoints && !cfg->ep_prefix)) {
        LOGE("sim", "event=config_error detail=\"server_uri, count, concurrency and timeout are required\"");
        return -EINVAL;
    }
    if (cfg->version != LWM2M_V1_0 && cfg->version != LWM2M_V1_1 && cfg->version != LWM2M_V1_2) {
        LOGE("sim", "event=config_error detail=\"unknown LwM2M version %d\"", (int)cfg->version);
        return -EINVAL;
    }
    int format = cfg->version == LWM2M_V1_0 ? LWM2M_CF_TLV : cfg->format;
    if (format != LWM2M_CF_TLV && format != LWM2M_CF_SENML_JSON && format != LWM2M_CF_SENML_CBOR) {
        LOGE("sim", "event=config_error detail=\"format %d is not TLV, SenML JSON or SenML CBOR\"", format);
        return -EINVAL;
    }
    pthread_once(&coap_once, do_coap_startup);

    coap_uri_t uri;
    if (coap_split_uri((const uint8_t *)cfg->server_uri, strlen(cfg->server_uri), &uri) != 0 ||
        (uri.scheme != COAP_URI_SCHEME_COAP && uri.scheme != COAP_URI_SCHEME_COAPS)) {
        LOGE("sim", "event=config_error detail=\"server URI must be coap://host[:port] or coaps://host[:port]\"");
        return -EINVAL;
    }
    sim_t *sim = calloc(1, sizeof *sim);
    if (!sim)
        return -ENOMEM;
    sim->epfd = sim->tfd = sim->coap_fd = -1;
    sim->proto = uri.scheme == COAP_URI_SCHEME_COAPS ? COAP_PROTO_DTLS : COAP_PROTO_UDP;
    sim->version = cfg->version;
    sim->format = format;
    sim->omit_pct = cfg->omit_pct;
    sim->concurrency = cfg->concurrency;
    sim->linger_us = (uint64_t)cfg->linger_ms * 1000u;
    sim->on_done = cfg->on_done;
    sim->ud = cfg->ud;
    int rc = 0;
    if (sim->proto == COAP_PROTO_DTLS && !coap_dtls_is_supported()) {
        LOGE("sim", "event=config_error detail=\"libcoap has no DTLS support\"");
        rc = -EINVAL;
    }
    if (!rc && parse_addr((const char *)uri.host.s, uri.host.length, uri.port, AF_UNSPEC, &sim->server) != 0) {
        LOGE("sim", "event=config_error detail=\"cannot resolve server host\"");
        rc = -EINVAL;
    }
    if (!rc) {
        const char *local = cfg->local_addr;
        int fam = sim->server.addr.sa.sa_family;
        if (!local || (fam == AF_INET6 && !strcmp(local, "127.0.0.1")))
            local = fam == AF_INET6 ? "::1" : "127.0.0.1"; /* the default follows the server's family */
        if (parse_addr(local, strlen(local), 0, fam, &sim->local) != 0) {
            LOGE("sim", "event=config_error detail=\"bad local address %s\"", local);
            rc = -EINVAL;
        } else if (cfg->addr_per_device && fam == AF_INET &&
                   (ntohl(sim->local.addr.sin.sin_addr.s_addr) >> 24) == 127) {
            uint32_t first = ntohl(sim->local.addr.sin.sin_addr.s_addr);
            if (((first + (uint32_t)(cfg->count - 1)) >> 24) != 127 || cfg->count > 0xffffff) {
                LOGE("sim", "event=config_error detail=\"%zu devices from %s leave 127.0.0.0/8\"", cfg->count, local);
                rc = -EINVAL;
            }
            sim->addr_per_device = true;
        }
    }
    if (!rc && sim->proto == COAP_PROTO_DTLS && !cfg->psk_key_cb && (!cfg->psk_key || !cfg->psk_key_len)) {
        LOGE("sim", "event=config_error detail=\"coaps:// needs a PSK key\"");
        rc = -EINVAL;
    }
    if (!rc && !(sim->server_uri = strdup(cfg->server_uri)))
        rc = -ENOMEM;
    if (!rc) {
        if (cfg->registry) {
            sim->reg = cfg->registry;
        } else {
            char err[200];
            sim->own_reg = lwm2m_registry_new();
            if (!sim->own_reg || lwm2m_registry_add_builtin(sim->own_reg, err, sizeof err) != 0) {
                LOGE("sim", "event=registry_error detail=\"%s\"", sim->own_reg ? err : "out of memory");
                rc = -ENOMEM;
            }
            sim->reg = sim->own_reg;
        }
    }
    if (!rc)
        rc = setup_context(sim);
    if (!rc) {
        sim->devs = calloc(cfg->count, sizeof *sim->devs);
        sim->active = calloc(cfg->concurrency, sizeof *sim->active);
        if (!sim->devs || !sim->active)
            rc = -ENOMEM;
    }
    for (size_t i = 0; !rc && i < cfg->count; i++) {
        rc = setup_device(sim, cfg, i);
        if (!rc)
            sim->n = i + 1;
        else
            LOGE("sim", "event=config_error device=%zu detail=\"bad endpoint, identity or key\"", i);
    }
    if (rc) {
        sim_free(&sim);
        return rc;
    }
    *out = sim;
    return 0;
}

void sim_free(sim_t **psim)
{
    if (!psim || !*psim)
        return;
    sim_t *sim = *psim;
    for (size_t i = 0; i < sim->n; i++) {
        release_session(&sim->devs[i]);
        forget_last(&sim->devs[i]);
        sim_dm_free(&sim->devs[i].dm);
    }
    if (sim->ctx)
        coap_free_context(sim->ctx);
    if (sim->epfd >= 0)
        close(sim->epfd);
    if (sim->tfd >= 0)
        close(sim->tfd);
    lwm2m_registry_free(&sim->own_reg);
    free(sim->devs);
    free(sim->active);
    free(sim->server_uri);
    free(sim);
    *psim = NULL;
}

int sim_start(sim_t *sim)
{
    if (sim->started)
        return -EALREADY;
    sim->started = true;
    sim->t_start_us = now_us();
    start_pending(sim);
    flush(sim);
    return 0;
}

int sim_step(sim_t *sim, int timeout_ms)
{
    if (!sim->started)
        return -EINVAL;
    if (sim->stopped)
        return 0;
    struct epoll_event evs[4];
    int n = epoll_wait(sim->epfd, evs, 4, timeout_ms < 0 ? -1 : timeout_ms);
    if (n < 0 && errno != EINTR)
        return -errno;
    bool io = false;
    for (int k = 0; k < n; k++) {
        if (evs[k].data.fd == sim->tfd) {
            uint64_t ticks;
            if (read(sim->tfd, &ticks, sizeof ticks) < 0) { /* EAGAIN: nothing to do */
            }
        }
        io = true; /* both the tick and socket activity run libcoap once */
    }
    if (io)
        coap_io_process(sim->ctx, COAP_IO_NO_WAIT);
    flush(sim);
    run_timers(sim);
    flush(sim);
    start_pending(sim);
    flush(sim);
    return (int)(sim->n - sim->ndone + sim->nlinger);
}

int sim_run(sim_t *sim, int timeout_ms)
{
    if (!sim->started) {
        int rc = sim_start(sim);
        if (rc)
            return rc;
    }
    uint64_t end = timeout_ms < 0 ? UINT64_MAX : now_us() + (uint64_t)timeout_ms * 1000u;
    for (;;) {
        int left = sim_step(sim, SIM_TICK_MS);
        if (left == 0)
            return 0;
        if (left < 0 && left != -EINTR)
            return left;
        if (now_us() >= end)
            return -ETIMEDOUT;
    }
}

void sim_stop(sim_t *sim)
{
    if (sim->stopped)
        return;
    uint64_t t = now_us();
    for (size_t k = sim->nactive; k-- > 0;) {
        sim_device_t *dev = sim->active[k];
        queue_acts(dev, sim_bs_stop(&dev->bs, t));
    }
    flush(sim);
    while (sim->linger_head) {
        sim_device_t *dev = sim->linger_head;
        sim->linger_head = dev->next_linger;
        dev->linger_until_us = 0;
        release_session(dev);
    }
    sim->nlinger = 0;
    sim->stopped = true;
}

int sim_fd(const sim_t *sim) { return sim->epfd; }
size_t sim_count(const sim_t *sim) { return sim->n; }

const sim_device_t *sim_device(const sim_t *sim, size_t index)
{
    return index < sim->n ? &sim->devs[index] : NULL;
}

const char *sim_device_endpoint(const sim_device_t *dev) { return dev->ep; }
size_t sim_device_index(const sim_device_t *dev) { return dev->index; }
const sim_dm_t *sim_device_dm(const sim_device_t *dev) { return dev->dm; }

void sim_device_status(const sim_device_t *dev, sim_status_t *out)
{
    memset(out, 0, sizeof *out);
    switch (dev->bs.state) {
    case SIM_BS_IDLE: out->state = SIM_PENDING; break;
    case SIM_BS_OK: out->state = SIM_OK; break;
    case SIM_BS_FAILED: out->state = SIM_FAILED; break;
    default: out->state = SIM_RUNNING; break;
    }
    out->reason = dev->bs.state == SIM_BS_FAILED ? dev->bs.reason : "";
    if (dev->bs.state == SIM_BS_OK)
        out->latency_us = dev->bs.t_done_us - dev->bs.t_first_us;
    out->attempts = dev->bs.attempt;
    out->requests = dev->bs.served;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(const uint64_t *v, size_t n, double p)
{
    if (!n)
        return 0;
    size_t rank = (size_t)ceil(p * (double)n);
    if (rank < 1)
        rank = 1;
    return (double)v[rank - 1] / 1000.0;
}

void sim_summary(const sim_t *sim, sim_summary_t *out)
{
    memset(out, 0, sizeof *out);
    out->total = sim->n;
    uint64_t *lat = malloc((sim->n ? sim->n : 1) * sizeof *lat);
    size_t nl = 0;
    for (size_t i = 0; i < sim->n; i++) {
        const sim_device_t *dev = &sim->devs[i];
        switch (dev->bs.state) {
        case SIM_BS_IDLE: out->pending++; break;
        case SIM_BS_OK:
            out->ok++;
            if (lat)
                lat[nl++] = dev->bs.t_done_us - dev->bs.t_first_us;
            break;
        case SIM_BS_FAILED: out->failed++; break;
        default: out->running++; break;
        }
    }
    if (sim->started) {
        uint64_t end = sim->ndone == sim->n ? sim->t_last_done_us : now_us();
        out->elapsed_s = end > sim->t_start_us ? (double)(end - sim->t_start_us) / 1e6 : 0;
    }
    out->rate = out->elapsed_s > 0 ? (double)out->ok / out->elapsed_s : 0;
    if (lat && nl) {
        qsort(lat, nl, sizeof *lat, cmp_u64);
        out->p50_ms = pct_ms(lat, nl, 0.50);
        out->p90_ms = pct_ms(lat, nl, 0.90);
        out->p99_ms = pct_ms(lat, nl, 0.99);
        out->max_ms = (double)lat[nl - 1] / 1000.0;
    }
    free(lat);
}
