/* The simulator: devices, the libcoap glue and the event loop.
 *
 * A device goes through up to two phases, each with its own pure state
 * machine (sim/sim_int.h):
 *   bootstrap phase   sim_bs_t   Bootstrap-Request .. Finish (sim/bootstrap.c)
 *   registration      sim_reg_t  Register, Updates, queue-mode sleep,
 *                                De-register (sim/register.c), serving the
 *                                management server's requests meanwhile
 * Modes: bootstrap only (goal: bootstrapped), bootstrap then register (goal:
 * registered), register only (dm_server_uri; goal: registered). A
 * Bootstrap-Request Trigger (/1/x/9) sends a registered device back to the
 * bootstrap phase; when that ends it registers again.
 *
 * Ownership:
 *  - sim_t owns the libcoap context, the epoll, timer and event
 *    descriptors, the device array, each device's data model, its
 *    observations and its client session.
 *  - A device holds the one reference libcoap gives to a new client session
 *    (coap_new_client_session*) from CONNECT until CLOSE; the session's
 *    app_data points back at the device and is cleared before the release,
 *    so late libcoap callbacks (NACKs raised while the session is freed) see
 *    NULL and are ignored. One session per device at a time: the Bootstrap-
 *    Server's, then the management server's (a new one after each queue-
 *    mode sleep).
 *  - Nothing is released or sent from inside a libcoap callback: state-
 *    machine actions are queued on the device (`acts` for the bootstrap
 *    machine, `racts` for the registration machine) and carried out by
 *    flush() after coap_io_process() returned (two-phase teardown, STYLE.md
 *    §4). So the answer to the request being handled (Finish, an Execute of
 *    /1/x/8, a Write that changes an observed value) leaves before the
 *    socket closes or before the Update / notification it causes.
 *
 * Lists: `active` holds the devices on their way to their goal (at most
 * `concurrency`), `live` the devices that reached the goal of a registering
 * mode and keep running (updates, sleeping, serving, notifying);
 * run_timers() visits both every tick (O(active + live)).
 *
 * Loop (LIBCOAP.md "Owning the event loop"): one epoll set with libcoap's
 * own epoll fd, a 100 ms timerfd and the eventfd of sim_call. Socket
 * activity is handed to coap_io_do_epoll() in batches; the tick calls
 * coap_io_process() because libcoap 4.3.1 can switch its retransmission
 * timer off.
 *
 * Finding (checked with a test program on libcoap 4.3.1, see docs/sim.md):
 * requests a server sends on its server-side session reach the client
 * context's resource handlers, including GET/PUT/POST/DELETE on paths that
 * no resource is registered for, through the "unknown" resource
 * (coap_resource_unknown_init2 + coap_register_handler for each method).
 * So every device path goes through one handler, and the session's app data
 * identifies the device. libcoap leaves the Observe option of a response
 * alone when the resource is not marked observable, so the device manages
 * its observations itself and sends notifications with coap_send() on its
 * client session (a response PDU goes out as is, token included).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <coap3/coap.h>

#include "server/common/log.h"
#include "server/lwm2m/codec.h"
#include "server/lwm2m/registry.h"
#include "sim/sim_int.h"

#define SIM_TICK_MS 100
#define SIM_EP_MAX 128
#define SIM_ID_MAX 128
#define SIM_KEY_MAX 64
#define SIM_URI_MAX 256
#define SIM_OBS_MAX 32
#define SIM_STOP_WAIT_US 1000000u
#define SIM_STOP_INFLIGHT 64

/* what our one outstanding request is */
enum { AWAIT_BS = 0 }; /* otherwise a sim_reg_req_t */

struct sim_device {
    sim_t *sim;
    size_t index;
    char ep[SIM_EP_MAX];
    uint8_t identity[SIM_ID_MAX];
    size_t identity_len;
    uint8_t key[SIM_KEY_MAX];
    size_t key_len;
    sim_dm_t *dm;            /* owned */
    bool registers;          /* goal is "registered" */
    bool reg_phase;          /* false: bootstrap phase */
    sim_bs_t bs;
    sim_reg_t reg;
    coap_session_t *session; /* one reference held while non-NULL */
    uint8_t token[8];        /* our outstanding request */
    size_t token_len;
    bool awaiting;           /* ... sent, no answer yet */
    int await_kind;          /* AWAIT_BS or a sim_reg_req_t */
    unsigned acts;           /* queued SIM_BS_ACT_* */
    unsigned racts;          /* queued SIM_REG_ACT_* */
    bool rebootstrap;        /* queued: Bootstrap-Request Trigger */
    bool queued;
    sim_device_t *next_work;
    int slot;                /* index in sim->active, -1 if not active */
    bool live;               /* in sim->live */
    bool bs_handled;         /* the end of the bootstrap phase was acted on */
    bool reported;           /* goal reached or failed, and accounted for */
    sim_state_t outcome;     /* OK or FAILED once reported */
    uint64_t goal_latency_us;
    /* RFC 7252 §4.5: a retransmitted CON request (same MID) gets the same
     * answer again. libcoap 4.3.1 does not deduplicate requests (it calls
     * the handler again), and servers keep one request in flight per
     * session, so remembering the last answer is enough. */
    bool have_last;
    uint16_t last_mid;
    bool conn_lost;          /* the session's TCP connection ended: release it (flush) */
    const char *conn_why;    /* why it ended (a string literal), NULL while it lives */
    bool answered;           /* the session delivered an answer (TLS: the handshake worked) */
    int last_code, last_cf;
    long last_obs;           /* Observe option of the last answer, -1 if none */
    uint8_t *last_payload;   /* owned */
    size_t last_len;
    uint64_t linger_until_us;/* session kept open after done until then; 0 = not lingering */
    sim_device_t *next_linger;
    /* registration: the management server, from the data model */
    char server_uri[SIM_URI_MAX];
    char reg_err[120];       /* why the server account cannot be used ("" if it can) */
    coap_address_t reg_addr;
    coap_proto_t reg_proto;
    uint8_t reg_id[SIM_ID_MAX];
    size_t reg_id_len;
    uint8_t reg_key[SIM_KEY_MAX];
    size_t reg_key_len;
    uint16_t srv_iid;        /* the /1 instance of the server account */
    char binding[8];         /* /1/x/7 as registered */
    /* device management */
    sim_obs_t *obs;          /* owned, nobs used */
    size_t nobs, capobs;
    unsigned notifications, dm_requests;
    int last_dm_method, last_dm_code;
    char last_dm_path[40];
    uint64_t next_tick_us, last_tick_us;
    uint32_t rng;
};

typedef struct sim_call_s {
    void (*fn)(sim_t *, void *);
    void *arg;
    struct sim_call_s *next;
} sim_call_t;

struct sim {
    coap_context_t *ctx;
    int epfd, tfd, efd, coap_fd;
    coap_address_t server, local;
    coap_proto_t proto;      /* of server_uri */
    coap_proto_t dm_proto;   /* of dm_server_uri */
    char *server_uri;        /* Bootstrap-Server (NULL in direct mode without one) */
    char *dm_server_uri;     /* direct mode */
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
    sim_device_t **live;
    size_t nlive;
    sim_device_t *work_head, *work_tail;
    sim_device_t *linger_head;   /* done devices whose session stays open a while */
    size_t nlinger;
    uint64_t linger_us;
    bool addr_per_device;
    size_t ndone;
    uint64_t t_start_us, t_last_done_us;
    bool started, stopped;
    bool in_flush;
    /* settings the devices share */
    unsigned retries;
    uint64_t timeout_us, retry_delay_us;
    bool register_after_bs, direct;
    uint32_t lifetime_s;
    uint64_t update_interval_us, awake_us, tick_us;
    bool queue_mode;
    unsigned con_every;
    sim_done_cb on_done;
    void *ud;
    /* sim_call */
    pthread_mutex_t call_mu;
    bool call_mu_ok, calls_closed;
    sim_call_t *call_head, *call_tail;
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
    cfg->awake_ms = 93000;
    cfg->tick_ms = 1000;
    cfg->con_notify_every = 1;
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

/* coap://, coaps://, coap+tcp:// or coaps+tcp:// URI -> address and
 * protocol (UDP, DTLS, TCP, TLS); -EINVAL otherwise */
static int resolve_uri(const char *uri, coap_address_t *addr, coap_proto_t *proto)
{
    coap_uri_t u;
    if (coap_split_uri((const uint8_t *)uri, strlen(uri), &u) != 0)
        return -EINVAL;
    switch (u.scheme) {
    case COAP_URI_SCHEME_COAP: *proto = COAP_PROTO_UDP; break;
    case COAP_URI_SCHEME_COAPS: *proto = COAP_PROTO_DTLS; break;
    case COAP_URI_SCHEME_COAP_TCP: *proto = COAP_PROTO_TCP; break;
    case COAP_URI_SCHEME_COAPS_TCP: *proto = COAP_PROTO_TLS; break;
    default: return -EINVAL;
    }
    return parse_addr((const char *)u.host.s, u.host.length, u.port, AF_UNSPEC, addr);
}

static bool proto_secure(coap_proto_t p) { return p == COAP_PROTO_DTLS || p == COAP_PROTO_TLS; }
static bool proto_reliable(coap_proto_t p) { return p == COAP_PROTO_TCP || p == COAP_PROTO_TLS; }

/* why a protocol cannot be used with this libcoap ("" if it can) */
static const char *proto_unsupported(coap_proto_t p)
{
    if (p == COAP_PROTO_DTLS && !coap_dtls_is_supported())
        return "libcoap has no DTLS support";
    if (p == COAP_PROTO_TCP && !coap_tcp_is_supported())
        return "libcoap has no TCP support";
    if (p == COAP_PROTO_TLS && !coap_tls_is_supported())
        return "libcoap has no TLS support";
    return "";
}

static int format_index(char *buf, size_t cap, const char *prefix, unsigned digits, unsigned long idx)
{
    int n = snprintf(buf, cap, "%s%0*lu", prefix, (int)digits, idx);
    return n < 0 || (size_t)n >= cap ? -EINVAL : 0;
}

/* ------------------------------------------------------------ work queue */

static void queue_dev(sim_device_t *dev)
{
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

static void queue_acts(sim_device_t *dev, unsigned acts)
{
    if (!acts && !(sim_bs_done(&dev->bs) && !dev->bs_handled))
        return;
    dev->acts |= acts;
    queue_dev(dev);
}

static void queue_racts(sim_device_t *dev, unsigned racts)
{
    racts &= ~(unsigned)SIM_REG_ACT_REFUSED;
    if (!racts)
        return;
    dev->racts |= racts;
    queue_dev(dev);
}

/* ------------------------------------------------------------ sessions */

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
    dev->conn_lost = false;
    dev->conn_why = NULL;
    dev->answered = false;
    forget_last(dev);
}

static void drop_observations(sim_device_t *dev)
{
    for (size_t k = 0; k < dev->nobs; k++)
        sim_obs_clear(&dev->obs[k]);
    dev->nobs = 0;
}

static void remove_observation(sim_device_t *dev, size_t k)
{
    sim_obs_clear(&dev->obs[k]);
    dev->obs[k] = dev->obs[--dev->nobs];
}

static int find_observation(const sim_device_t *dev, const uint8_t *tok, size_t len)
{
    for (size_t k = 0; k < dev->nobs; k++)
        if (dev->obs[k].token_len == len && memcmp(dev->obs[k].token, tok, len) == 0)
            return (int)k;
    return -1;
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

/* The descriptor the next socket() will get (the lowest free one), or -1. */
static int next_fd(void)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0)
        close(fd);
    return fd;
}

/* a is the local address of b's socket (b's port 0: still connecting,
 * libcoap learns it later) */
static bool same_addr(const struct sockaddr *a, const coap_address_t *b)
{
    if (a->sa_family != b->addr.sa.sa_family)
        return false;
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)a, *y = &b->addr.sin;
        return (!y->sin_port || x->sin_port == y->sin_port) &&
               (!y->sin_addr.s_addr || x->sin_addr.s_addr == y->sin_addr.s_addr);
    }
    if (a->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a, *y = &b->addr.sin6;
        return (!y->sin6_port || x->sin6_port == y->sin6_port) &&
               (IN6_IS_ADDR_UNSPECIFIED(&y->sin6_addr) || !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr));
    }
    return false;
}

/* TCP_NODELAY on a new TCP/TLS client session's socket (libcoap 4.3.1 sets
 * none and does not expose the socket): it is the descriptor `fd` that was
 * free just before the session was made, checked by its local address. Nagle's
 * delay otherwise holds the second of two small writes (a TLS handshake
 * flight, a request right after a response) for ~40 ms (LIBCOAP.md). */
static void set_nodelay(coap_session_t *s, int fd)
{
    const coap_address_t *local = coap_session_get_addr_local(s);
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    int type = 0;
    socklen_t tl = sizeof type;
    if (fd < 0 || !local || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_STREAM ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0 || !same_addr((struct sockaddr *)&sa, local))
        return;
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int open_session_to(sim_device_t *dev, const coap_address_t *server, coap_proto_t proto, const uint8_t *id,
                           size_t idlen, const uint8_t *key, size_t keylen)
{
    sim_t *sim = dev->sim;
    coap_address_t local;
    device_local(dev, &local);
    const coap_address_t *lp = server->addr.sa.sa_family == local.addr.sa.sa_family ? &local : NULL;
    coap_session_t *s = NULL;
    /* libcoap binds client sockets with SO_REUSEADDR, so the kernel may hand
     * out an ephemeral port another session already uses; libcoap then
     * refuses the "duplicate" session: try again. (Over TCP/TLS libcoap
     * connects here; a refused connection fails at once, or later with a
     * TCP_FAILED event.) */
    int fd = -1;
    for (int tries = 0; tries < (proto_reliable(proto) ? 2 : 8) && !s; tries++) {
        if (proto_reliable(proto))
            fd = next_fd();
        if (proto_secure(proto)) {
            coap_dtls_cpsk_t setup;
            memset(&setup, 0, sizeof setup);
            setup.version = COAP_DTLS_CPSK_SETUP_VERSION;
            setup.psk_info.identity.s = id;
            setup.psk_info.identity.length = idlen;
            setup.psk_info.key.s = key;
            setup.psk_info.key.length = keylen;
            s = coap_new_client_session_psk2(sim->ctx, lp, server, proto, &setup);
        } else {
            s = coap_new_client_session(sim->ctx, lp, server, proto);
        }
    }
    if (!s)
        return proto_reliable(proto) ? -ECONNREFUSED : -EIO;
    if (proto_reliable(proto))
        set_nodelay(s, fd);
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
    dev->await_kind = AWAIT_BS;
    if (coap_send(dev->session, pdu) == COAP_INVALID_MID) { /* takes the PDU either way */
        dev->awaiting = false;
        return -EIO;
    }
    LOGD("sim", "ep=%s event=bootstrap_request attempt=%u", dev->ep, dev->bs.attempt);
    return 0;
}

/* ------------------------------------------------------------ registration glue */

static const lwm2m_record_t *dm_rec(const sim_dm_t *dm, unsigned o, unsigned i, unsigned r)
{
    lwm2m_path_t p = lwm2m_path_make(3, o, i, r, 0);
    return sim_dm_find(dm, &p);
}

static bool rec_uint(const lwm2m_record_t *r, uint64_t *out)
{
    if (!r)
        return false;
    if ((r->type == LWM2M_T_INTEGER || r->type == LWM2M_T_TIME) && r->v.i >= 0) {
        *out = (uint64_t)r->v.i;
        return true;
    }
    if (r->type == LWM2M_T_UNSIGNED) {
        *out = r->v.u;
        return true;
    }
    return false;
}

static void rec_bytes(const lwm2m_record_t *r, uint8_t *out, size_t cap, size_t *len)
{
    *len = 0;
    if (r && (r->type == LWM2M_T_OPAQUE || r->type == LWM2M_T_STRING) && r->nbytes <= cap) {
        if (r->nbytes)
            memcpy(out, r->bytes, r->nbytes);
        *len = r->nbytes;
    }
}

static uint32_t rnd_u32(uint32_t *s)
{
    uint32_t x = *s ? *s : 1;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

/* Reads the management server account from the data model (the /0
 * instance paired by SSID with a /1 instance), resolves it and arms the
 * registration machine. Problems are kept in reg_err and reported when
 * the session is to be opened (a transport error of the Register). */
static unsigned begin_registration(sim_device_t *dev, uint64_t t)
{
    sim_t *sim = dev->sim;
    sim_dm_t *dm = dev->dm;
    uint16_t sec = 0, srv = 0;
    uint32_t lifetime = 300;
    dev->reg_err[0] = '\0';
    snprintf(dev->binding, sizeof dev->binding, "U");
    if (sim_dm_server_account(dm, &sec, &srv) != 0) {
        snprintf(dev->reg_err, sizeof dev->reg_err, "no management server account (a /0 instance with a matching /1)");
    } else {
        dev->srv_iid = srv;
        const lwm2m_record_t *u = dm_rec(dm, 0, sec, 0);
        char uri[SIM_URI_MAX] = "";
        if (u && (u->type == LWM2M_T_STRING || u->type == LWM2M_T_OPAQUE) && u->nbytes < sizeof uri) {
            memcpy(uri, u->bytes, u->nbytes);
            uri[u->nbytes] = '\0';
        }
        snprintf(dev->server_uri, sizeof dev->server_uri, "%s", uri);
        uint64_t mode = SIM_SEC_NOSEC;
        (void)rec_uint(dm_rec(dm, 0, sec, 2), &mode);
        rec_bytes(dm_rec(dm, 0, sec, 3), dev->reg_id, sizeof dev->reg_id, &dev->reg_id_len);
        rec_bytes(dm_rec(dm, 0, sec, 5), dev->reg_key, sizeof dev->reg_key, &dev->reg_key_len);
        if (resolve_uri(uri, &dev->reg_addr, &dev->reg_proto) != 0)
            snprintf(dev->reg_err, sizeof dev->reg_err, "cannot use server URI \"%.60s\"", uri);
        else if (proto_secure(dev->reg_proto) && (mode != SIM_SEC_PSK || !dev->reg_id_len || !dev->reg_key_len))
            snprintf(dev->reg_err, sizeof dev->reg_err, "%s needs PSK mode with identity and key (mode %u)",
                     dev->reg_proto == COAP_PROTO_TLS ? "coaps+tcp://" : "coaps://", (unsigned)mode);
        else if (proto_unsupported(dev->reg_proto)[0])
            snprintf(dev->reg_err, sizeof dev->reg_err, "%s", proto_unsupported(dev->reg_proto));
        uint64_t lt;
        if (sim->lifetime_s) {
            lifetime = sim->lifetime_s;
            lwm2m_record_t r = {.path = lwm2m_path_make(3, 1, srv, 1, 0), .type = LWM2M_T_INTEGER};
            r.v.i = lifetime;
            (void)sim_dm_set_value(dm, &r);
        } else if (rec_uint(dm_rec(dm, 1, srv, 1), &lt) && lt > 0 && lt <= UINT32_MAX) {
            lifetime = (uint32_t)lt;
        }
        const lwm2m_record_t *b = dm_rec(dm, 1, srv, 7);
        if (b && b->type == LWM2M_T_STRING && b->nbytes > 0 && b->nbytes < sizeof dev->binding)
            snprintf(dev->binding, sizeof dev->binding, "%.*s", (int)b->nbytes, (const char *)b->bytes);
    }
    sim_reg_params_t p = {
        .lifetime_s = lifetime,
        .interval_us = sim->update_interval_us,
        .awake_us = (sim->queue_mode || strchr(dev->binding, 'Q')) ? (sim->awake_us ? sim->awake_us : 1) : 0,
        .retries = sim->retries,
        .retry_delay_us = sim->retry_delay_us,
        .timeout_us = sim->timeout_us,
    };
    /* keep what a re-registration after a new bootstrap must not forget */
    bool goal = dev->reg.goal;
    unsigned regs = dev->reg.registrations, ups = dev->reg.updates;
    uint64_t tg = dev->reg.t_goal_us;
    sim_reg_init(&dev->reg, &p);
    /* spread the fleet's Updates over a tenth of the period */
    dev->reg.jitter_us = dev->reg.interval_us / 10 ? rnd_u32(&dev->rng) % (dev->reg.interval_us / 10) : 0;
    dev->reg.goal = goal;
    dev->reg.registrations = regs;
    dev->reg.updates = ups;
    dev->reg.t_goal_us = tg;
    dev->reg_phase = true;
    sim_dm_tick(dm, 0, (int64_t)time(NULL), &dev->rng); /* Current Time set from the start */
    dev->next_tick_us = t + sim->tick_us;
    dev->last_tick_us = t;
    return sim_reg_start(&dev->reg, t);
}

static int open_reg_session(sim_device_t *dev)
{
    if (dev->reg_err[0])
        return -EINVAL;
    return open_session_to(dev, &dev->reg_addr, dev->reg_proto, dev->reg_id, dev->reg_id_len, dev->reg_key,
                           dev->reg_key_len);
}

/* Adds '&'-joined query items as Uri-Query options. */
static int add_queries(coap_pdu_t *pdu, const char *q)
{
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        if (len && !coap_add_option(pdu, COAP_OPTION_URI_QUERY, len, (const uint8_t *)q))
            return -ENOMEM;
        q += len + (amp ? 1 : 0);
    }
    return 0;
}

/* Adds "/rd/5" as options "rd", "5" (Uri-Path or Location-Path). */
static int add_path_opts(coap_pdu_t *pdu, coap_option_num_t opt, const char *loc)
{
    while (*loc) {
        while (*loc == '/')
            loc++;
        const char *sl = strchr(loc, '/');
        size_t len = sl ? (size_t)(sl - loc) : strlen(loc);
        if (len && !coap_add_option(pdu, opt, len, (const uint8_t *)loc))
            return -ENOMEM;
        loc += len;
    }
    return 0;
}

static int send_reg_request(sim_device_t *dev, sim_reg_req_t kind)
{
    sim_t *sim = dev->sim;
    if (!dev->session)
        return -ENOTCONN;
    coap_pdu_t *pdu = coap_new_pdu(COAP_MESSAGE_CON,
                                   kind == SIM_REG_REQ_DEREGISTER ? COAP_REQUEST_CODE_DELETE : COAP_REQUEST_CODE_POST,
                                   dev->session);
    if (!pdu)
        return -ENOMEM;
    coap_session_new_token(dev->session, &dev->token_len, dev->token);
    int rc = coap_add_token(pdu, dev->token_len, dev->token) ? 0 : -ENOMEM;
    char q[SIM_EP_MAX + 96];
    char *payload = NULL;
    size_t plen = 0;
    bool queue = dev->reg.p.awake_us != 0;
    if (kind == SIM_REG_REQ_REGISTER) {
        /* POST /rd?ep=..&lt=..&lwm2m=..&b=..[&Q], CF 40 (Core TS 1.1.1 §5.3.1) */
        if (!rc && !coap_add_option(pdu, COAP_OPTION_URI_PATH, 2, (const uint8_t *)"rd"))
            rc = -ENOMEM;
        if (!rc && sim_reg_query(q, sizeof q, dev->ep, dev->reg.p.lifetime_s, sim->version, dev->binding, queue) < 0)
            rc = -EINVAL;
        if (!rc)
            rc = add_queries(pdu, q);
        if (!rc && sim_dm_register_payload(dev->dm, &payload, &plen) != 0)
            rc = -ENOMEM;
        uint8_t cf[4];
        if (!rc && !coap_add_option(pdu, COAP_OPTION_CONTENT_FORMAT,
                                    coap_encode_var_safe(cf, sizeof cf, LWM2M_CF_LINK), cf))
            rc = -ENOMEM;
        if (!rc && !coap_add_data(pdu, plen, (const uint8_t *)payload))
            rc = -EMSGSIZE;
        free(payload);
    } else {
        /* POST /rd/<id>[?lt=..&b=..] (Update) or DELETE /rd/<id> */
        if (!rc)
            rc = add_path_opts(pdu, COAP_OPTION_URI_PATH, dev->reg.location);
        if (!rc && kind == SIM_REG_REQ_UPDATE) {
            if (sim_reg_update_query(q, sizeof q, dev->reg.send_lt, dev->reg.p.lifetime_s, dev->reg.send_b, sim->version,
                                     dev->binding, queue) < 0)
                rc = -EINVAL;
            else
                rc = add_queries(pdu, q);
            dev->reg.send_lt = dev->reg.send_b = false;
        }
    }
    if (rc) {
        coap_delete_pdu(pdu);
        return rc;
    }
    dev->awaiting = true;
    dev->await_kind = kind;
    if (coap_send(dev->session, pdu) == COAP_INVALID_MID) {
        dev->awaiting = false;
        return -EIO;
    }
    sim_reg_traffic(&dev->reg, now_us());
    LOGD("sim", "ep=%s event=%s location=%s", dev->ep,
         kind == SIM_REG_REQ_REGISTER ? "register" : kind == SIM_REG_REQ_UPDATE ? "update" : "deregister",
         dev->reg.location[0] ? dev->reg.location : "-");
    return 0;
}

/* ------------------------------------------------------------ notifications */

static void send_notification(sim_device_t *dev, sim_obs_t *o, const sim_response_t *r)
{
    sim_t *sim = dev->sim;
    if (!dev->session)
        return;
    /* every con_every-th notification is confirmable (RFC 7641 §4.5) */
    bool con = sim->con_every <= 1 || o->sent % sim->con_every == 0;
    coap_pdu_t *pdu = coap_pdu_init(con ? COAP_MESSAGE_CON : COAP_MESSAGE_NON, (coap_pdu_code_t)r->code,
                                    coap_new_message_id(dev->session), coap_session_max_pdu_size(dev->session));
    if (!pdu)
        return;
    uint8_t b[4];
    int ok = coap_add_token(pdu, o->token_len, o->token);
    if (ok && r->code == LWM2M_CODE(2, 5))
        ok = coap_add_option(pdu, COAP_OPTION_OBSERVE, coap_encode_var_safe(b, sizeof b, o->seq), b) != 0;
    if (ok && r->content_format >= 0)
        ok = coap_add_option(pdu, COAP_OPTION_CONTENT_FORMAT,
                             coap_encode_var_safe(b, sizeof b, (unsigned)r->content_format), b) != 0;
    if (ok && r->payload_len)
        ok = coap_add_data(pdu, r->payload_len, r->payload);
    if (!ok) {
        /* no Block2 for notifications: a value that does not fit one
         * message is not sent (docs/sim.md) */
        LOGW("sim", "ep=%s event=notification_dropped reason=\"does not fit one message\" len=%zu", dev->ep,
             r->payload_len);
        coap_delete_pdu(pdu);
        return;
    }
    if (coap_send(dev->session, pdu) == COAP_INVALID_MID)
        return;
    dev->notifications++;
    sim_reg_traffic(&dev->reg, now_us());
    if (log_get_level() <= LOG_LVL_DEBUG) {
        char ps[40], c[8];
        lwm2m_path_format(&o->path, ps, sizeof ps);
        LOGD("sim", "ep=%s event=notify path=%s seq=%u code=%s type=%s", dev->ep, ps, (unsigned)o->seq,
             sim_code_str(r->code, c, sizeof c), con ? "con" : "non");
    }
}

/* Sends the notifications that are due; an error notification (the path
 * went away) ends its observation. Only outside libcoap callbacks. */
static void check_observations(sim_device_t *dev, uint64_t t)
{
    if (!dev->nobs || !dev->reg_phase || !sim_reg_serving(&dev->reg) || !dev->session)
        return;
    for (size_t k = 0; k < dev->nobs;) {
        sim_obs_t *o = &dev->obs[k];
        sim_response_t r;
        if (!sim_obs_check(dev->dm, o, t, &r)) {
            k++;
            continue;
        }
        bool final = r.code != LWM2M_CODE(2, 5);
        sim_obs_sent(o, dev->dm, &r, t);
        send_notification(dev, o, &r);
        sim_response_clear(&r);
        if (final)
            remove_observation(dev, k);
        else
            k++;
    }
}

/* ------------------------------------------------------------ lists */

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

/* The device reached its goal (ok) or gave up: accounted for once. */
static void report_done(sim_device_t *dev, bool ok, uint64_t t_done)
{
    sim_t *sim = dev->sim;
    if (dev->reported)
        return;
    deactivate(dev);
    dev->reported = true;
    dev->outcome = ok ? SIM_OK : SIM_FAILED;
    sim->ndone++;
    if (t_done > sim->t_last_done_us)
        sim->t_last_done_us = t_done;
    if (ok && dev->registers && !dev->live) {
        dev->live = true;
        sim->live[sim->nlive++] = dev;
    }
    if (ok)
        LOGD("sim", "ep=%s event=done result=ok ms=%.1f", dev->ep, (double)dev->goal_latency_us / 1000.0);
    else
        LOGI("sim", "ep=%s event=done result=failed reason=\"%s\"", dev->ep,
             dev->reg_phase ? dev->reg.reason : dev->bs.reason);
    if (sim->on_done)
        sim->on_done(sim->ud, sim, dev);
}

static void start_bootstrap_again(sim_device_t *dev, uint64_t t)
{
    sim_t *sim = dev->sim;
    drop_observations(dev);
    release_session(dev);
    dev->reg_phase = false;
    dev->bs_handled = false;
    sim_bs_init(&dev->bs, sim->retries, sim->timeout_us, sim->retry_delay_us, -1);
    LOGI("sim", "ep=%s event=bootstrap_trigger", dev->ep);
    dev->acts |= sim_bs_start(&dev->bs, t);
    queue_dev(dev);
}

/* bootstrap-phase actions; the end of the phase */
static void flush_bs(sim_device_t *dev, unsigned acts)
{
    sim_t *sim = dev->sim;
    bool keep = sim->linger_us && !dev->registers && sim_bs_done(&dev->bs) && !dev->reported &&
                !(acts & SIM_BS_ACT_CLOSE_NOW);
    if ((acts & SIM_BS_ACT_CLOSE) && !keep)
        release_session(dev);
    if (acts & SIM_BS_ACT_CONNECT) {
        release_session(dev);
        int rc = sim->server_uri ? open_session_to(dev, &sim->server, sim->proto, dev->identity, dev->identity_len,
                                                   dev->key, dev->key_len)
                                 : -EINVAL;
        if (rc == 0)
            rc = send_bs_request(dev);
        if (rc != 0) {
            char why[96];
            if (rc == -EIO && dev->conn_why)
                snprintf(why, sizeof why, "cannot send bootstrap request: %s", dev->conn_why);
            else
                snprintf(why, sizeof why, "cannot send bootstrap request (%s)",
                         rc == -EIO ? "session or socket failed; too many open files?" : strerror(-rc));
            unsigned a = sim_bs_on_transport(&dev->bs, now_us(), why);
            if (a & SIM_BS_ACT_CLOSE)
                release_session(dev);
        }
    }
    if (!sim_bs_done(&dev->bs) || dev->bs_handled)
        return;
    dev->bs_handled = true;
    uint64_t t = now_us();
    if (dev->bs.state == SIM_BS_OK && dev->registers) {
        /* bootstrapped: on to the management server (a new session) */
        release_session(dev);
        LOGD("sim", "ep=%s event=bootstrap_done result=ok ms=%.1f", dev->ep,
             (double)(dev->bs.t_done_us - dev->bs.t_first_us) / 1000.0);
        dev->racts |= begin_registration(dev, t);
        return;
    }
    if (!dev->reported && sim->linger_us && dev->session && !(acts & SIM_BS_ACT_CLOSE_NOW)) {
        dev->linger_until_us = t + sim->linger_us;
        dev->next_linger = sim->linger_head;
        sim->linger_head = dev;
        sim->nlinger++;
    } else {
        release_session(dev);
    }
    if (dev->bs.state == SIM_BS_OK)
        dev->goal_latency_us = dev->bs.t_done_us - dev->bs.t_first_us;
    if (dev->reported && dev->bs.state != SIM_BS_OK)
        LOGW("sim", "ep=%s event=bootstrap_failed reason=\"%s\"", dev->ep, dev->bs.reason);
    report_done(dev, dev->bs.state == SIM_BS_OK, dev->bs.t_done_us);
}

/* registration-phase actions, in the order CLOSE, CONNECT, send */
static void flush_reg(sim_device_t *dev, unsigned racts)
{
    while (racts) {
        unsigned a = racts;
        racts = 0;
        uint64_t t = now_us();
        if ((a & SIM_REG_ACT_CLOSE) && dev->reg.state == SIM_REG_SLEEPING)
            LOGD("sim", "ep=%s event=sleep next_update_in_ms=%llu", dev->ep,
                 (unsigned long long)(dev->reg.next_update_us > t ? (dev->reg.next_update_us - t) / 1000u : 0));
        if (a & SIM_REG_ACT_CLOSE)
            release_session(dev);
        if (a & (SIM_REG_ACT_REGISTER | SIM_REG_ACT_DEREGISTER))
            drop_observations(dev);
        int rc = 0;
        if ((a & SIM_REG_ACT_CONNECT) || (!dev->session && (a & (SIM_REG_ACT_REGISTER | SIM_REG_ACT_UPDATE |
                                                                 SIM_REG_ACT_DEREGISTER)))) {
            release_session(dev);
            rc = open_reg_session(dev);
            if (rc) {
                char why[160];
                snprintf(why, sizeof why, "%s", dev->reg_err[0]           ? dev->reg_err
                                                 : rc == -ECONNREFUSED ? "cannot connect (TCP connection refused)"
                                                 : "cannot open a session (socket failed; too many open files?)");
                racts |= sim_reg_on_transport(&dev->reg, t, why);
            }
        }
        if (!rc && (a & SIM_REG_ACT_REGISTER))
            rc = send_reg_request(dev, SIM_REG_REQ_REGISTER);
        else if (!rc && (a & SIM_REG_ACT_UPDATE))
            rc = send_reg_request(dev, SIM_REG_REQ_UPDATE);
        else if (!rc && (a & SIM_REG_ACT_DEREGISTER))
            rc = send_reg_request(dev, SIM_REG_REQ_DEREGISTER);
        if (rc && !racts) {
            char why[120];
            if (rc == -EIO && dev->conn_why)
                snprintf(why, sizeof why, "cannot send the request: %s", dev->conn_why);
            else
                snprintf(why, sizeof why, "cannot send the request (%s)", strerror(rc < 0 ? -rc : rc));
            racts |= sim_reg_on_transport(&dev->reg, t, why);
        }
        if (a & SIM_REG_ACT_GOAL) {
            uint64_t from = dev->sim->direct ? dev->reg.t_start_us : dev->bs.t_first_us;
            dev->goal_latency_us = dev->reg.t_goal_us > from ? dev->reg.t_goal_us - from : 0;
            report_done(dev, true, dev->reg.t_goal_us);
        }
        if (a & SIM_REG_ACT_FAILED)
            report_done(dev, false, t);
    }
}

/* Carries out queued actions, outside any libcoap callback. */
static void flush(sim_t *sim)
{
    bool outer = !sim->in_flush;
    sim->in_flush = true;
    while (sim->work_head) {
        sim_device_t *dev = sim->work_head;
        sim->work_head = dev->next_work;
        if (!sim->work_head)
            sim->work_tail = NULL;
        dev->queued = false;
        if (dev->conn_lost) {
            /* observations end with their connection (RFC 8323 §7); a later
             * Update or Register connects again */
            drop_observations(dev);
            release_session(dev);
        }
        unsigned acts = dev->acts, racts = dev->racts;
        dev->acts = dev->racts = 0;
        if (!dev->reg_phase)
            flush_bs(dev, acts);
        racts |= dev->racts;
        dev->racts = 0;
        if (dev->reg_phase) {
            flush_reg(dev, racts);
            if (dev->rebootstrap) {
                dev->rebootstrap = false;
                start_bootstrap_again(dev, now_us());
            } else {
                check_observations(dev, now_us());
            }
        }
    }
    if (outer)
        sim->in_flush = false;
}

static void start_pending(sim_t *sim)
{
    uint64_t t = now_us();
    while (!sim->stopped && sim->nactive < sim->concurrency && sim->next_pending < sim->n) {
        sim_device_t *dev = &sim->devs[sim->next_pending++];
        dev->slot = (int)sim->nactive;
        sim->active[sim->nactive++] = dev;
        if (sim->direct)
            queue_racts(dev, begin_registration(dev, t));
        else
            queue_acts(dev, sim_bs_start(&dev->bs, t));
    }
}

static void tick_device(sim_device_t *dev, uint64_t t, int64_t unix_now)
{
    sim_t *sim = dev->sim;
    if (!dev->reg_phase) {
        queue_acts(dev, sim_bs_tick(&dev->bs, t));
        return;
    }
    queue_racts(dev, sim_reg_tick(&dev->reg, t, dev->awaiting));
    if (sim->tick_us && t >= dev->next_tick_us) {
        sim_dm_tick(dev->dm, (double)(t - dev->last_tick_us) / 1e6, unix_now, &dev->rng);
        dev->last_tick_us = t;
        dev->next_tick_us = t + sim->tick_us;
    }
    if (dev->nobs)
        check_observations(dev, t);
}

/* Active devices every call (at most `concurrency`), live ones on the
 * 100 ms tick only: their deadlines are coarse and there may be many. */
static void run_timers(sim_t *sim, bool live_too)
{
    uint64_t t = now_us();
    int64_t unix_now = (int64_t)time(NULL);
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
    for (size_t k = 0; k < sim->nactive; k++)
        tick_device(sim->active[k], t, unix_now);
    for (size_t k = 0; live_too && k < sim->nlive; k++)
        tick_device(sim->live[k], t, unix_now);
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

static void add_observe_opt(coap_pdu_t *resp, uint32_t seq)
{
    uint8_t b[4];
    coap_add_option(resp, COAP_OPTION_OBSERVE, coap_encode_var_safe(b, sizeof b, seq), b);
}

/* Observe registration / cancellation for an answered DM GET (RFC 7641
 * §3.1, §3.6). Returns the Observe value to put in the answer, or -1. */
static long observe_request(sim_device_t *dev, const coap_pdu_t *req, const sim_request_t *r, const sim_response_t *out,
                            uint64_t t)
{
    coap_bin_const_t tok = coap_pdu_get_token(req);
    int obs = opt_uint(req, COAP_OPTION_OBSERVE);
    int at = find_observation(dev, tok.s, tok.length);
    lwm2m_path_t p;
    if (r->method != SIM_GET || r->accept == LWM2M_CF_LINK || lwm2m_path_parse(r->path, r->path_len, &p) != 0)
        return -1;
    if (obs != 0 || out->code != LWM2M_CODE(2, 5)) {
        /* Observe=1, or a GET without Observe on the same token: cancel */
        if (at >= 0 && (obs == 1 || obs < 0 || out->code != LWM2M_CODE(2, 5))) {
            remove_observation(dev, (size_t)at);
            LOGD("sim", "ep=%s event=observe_cancel", dev->ep);
        }
        return -1;
    }
    if (at < 0) {
        if (dev->nobs >= SIM_OBS_MAX)
            return -1; /* not observable any more: a plain answer (RFC 7641 §4.1) */
        if (dev->nobs == dev->capobs) {
            size_t cap = dev->capobs ? dev->capobs * 2 : 2;
            sim_obs_t *n = realloc(dev->obs, cap * sizeof *n);
            if (!n)
                return -1;
            dev->obs = n;
            dev->capobs = cap;
        }
        at = (int)dev->nobs++;
    } else {
        sim_obs_clear(&dev->obs[at]); /* same token: replaces the entry */
    }
    if (sim_obs_init(&dev->obs[at], dev->dm, tok.s, tok.length, &p, out, t) != 0) {
        sim_obs_clear(&dev->obs[at]);
        dev->obs[at] = dev->obs[--dev->nobs];
        return -1;
    }
    LOGD("sim", "ep=%s event=observe path=/%.*s", dev->ep, (int)r->path_len, r->path);
    return (long)dev->obs[at].seq;
}

/* what the management server's request asks of the device, once answered */
static void dm_event(sim_device_t *dev, const sim_response_t *out, uint64_t t)
{
    switch (out->event) {
    case SIM_DM_EV_UPDATE_TRIGGER: queue_racts(dev, sim_reg_update_now(&dev->reg, t)); break;
    case SIM_DM_EV_DISABLE: {
        uint64_t secs = 86400; /* /1/x/5 Disable Timeout default */
        (void)rec_uint(dm_rec(dev->dm, 1, out->event_iid, 5), &secs);
        queue_racts(dev, sim_reg_disable(&dev->reg, t, secs * 1000000u));
        break;
    }
    case SIM_DM_EV_BOOTSTRAP_TRIGGER:
        if (dev->sim->server_uri) {
            dev->rebootstrap = true;
            queue_dev(dev);
        }
        break;
    case SIM_DM_EV_REBOOT: queue_racts(dev, sim_reg_reregister(&dev->reg, t)); break;
    case SIM_DM_EV_SERVER_CHANGED: {
        if (out->event_iid != dev->srv_iid)
            break;
        uint64_t lt;
        if (rec_uint(dm_rec(dev->dm, 1, dev->srv_iid, 1), &lt) && lt > 0 && lt <= UINT32_MAX &&
            lt != dev->reg.p.lifetime_s) {
            sim_reg_set_lifetime(&dev->reg, (uint32_t)lt, t);
            dev->reg.send_lt = true;
        }
        const lwm2m_record_t *b = dm_rec(dev->dm, 1, dev->srv_iid, 7);
        if (b && b->type == LWM2M_T_STRING && b->nbytes > 0 && b->nbytes < sizeof dev->binding &&
            (strlen(dev->binding) != b->nbytes || memcmp(dev->binding, b->bytes, b->nbytes) != 0)) {
            snprintf(dev->binding, sizeof dev->binding, "%.*s", (int)b->nbytes, (const char *)b->bytes);
            dev->reg.send_b = true;
        }
        if (dev->reg.send_lt || dev->reg.send_b)
            queue_racts(dev, sim_reg_update_now(&dev->reg, t));
        break;
    }
    default: break;
    }
}

static void on_request(coap_resource_t *res, coap_session_t *s, const coap_pdu_t *req, const coap_string_t *query,
                       coap_pdu_t *resp)
{
    sim_device_t *dev = coap_session_get_app_data(s);
    coap_mid_t mid = coap_pdu_get_mid(req);
    /* over TCP every request reads as CON with message id 0, and nothing is
     * retransmitted (RFC 8323): no duplicate detection there */
    bool datagram = !proto_reliable(coap_session_get_proto(s));
    if (dev && datagram && dev->have_last && mid == dev->last_mid && coap_pdu_get_type(req) == COAP_MESSAGE_CON) {
        /* retransmission: same answer, no second execution */
        LOGD("sim", "ep=%s event=duplicate_request mid=%d", dev->ep, (int)mid);
        coap_pdu_set_code(resp, (coap_pdu_code_t)dev->last_code);
        if (dev->last_obs >= 0)
            add_observe_opt(resp, (uint32_t)dev->last_obs);
        if (dev->last_cf == LWM2M_CF_TEXT && dev->last_len)
            coap_add_option(resp, COAP_OPTION_CONTENT_FORMAT, 0, NULL);
        if (dev->last_len) {
            uint8_t *copy = malloc(dev->last_len);
            if (copy) {
                memcpy(copy, dev->last_payload, dev->last_len);
                coap_add_data_large_response(res, s, req, resp, query, (uint16_t)dev->last_cf, -1, 0, dev->last_len,
                                             copy, release_payload, copy);
            }
        } else if (dev->last_cf >= 0) {
            uint8_t b[4];
            coap_add_option(resp, COAP_OPTION_CONTENT_FORMAT, coap_encode_var_safe(b, sizeof b, (unsigned)dev->last_cf),
                            b);
        }
        return;
    }
    bool serving = dev && (dev->reg_phase ? sim_reg_serving(&dev->reg) && s == dev->session
                                          : dev->bs.state == SIM_BS_SERVING);
    if (!serving) {
        /* before our 2.04 / 2.01 arrived, after the procedure ended, or on
         * a session we are done with: the server must not send requests
         * now (CONFORMANCE.md §1, §2 "First DM request") */
        if (dev && !dev->linger_until_us)
            LOGW("sim", "ep=%s event=unexpected_request bs_state=%d reg_state=%s", dev->ep, (int)dev->bs.state,
                 dev->reg_phase ? sim_reg_state_name(dev->reg.state) : "-");
        coap_pdu_set_code(resp, COAP_RESPONSE_CODE(503));
        return;
    }
    coap_string_t *path = coap_get_uri_path(req);
    sim_request_t r;
    memset(&r, 0, sizeof r);
    r.iface = dev->reg_phase ? SIM_IFACE_DM : SIM_IFACE_BOOTSTRAP;
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
        LOGD("sim", "ep=%s event=request iface=%s method=%d path=/%.*s cf=%d accept=%d len=%zu code=%s%s%s", dev->ep,
             r.iface == SIM_IFACE_DM ? "dm" : "bs", r.method, (int)r.path_len, r.path, r.content_format, r.accept,
             r.payload_len, sim_code_str(out.code, c, sizeof c), out.detail[0] ? " detail=" : "", out.detail);
    }
    long obs_seq = -1;
    if (r.iface == SIM_IFACE_DM) {
        dev->dm_requests++;
        dev->last_dm_method = r.method;
        dev->last_dm_code = out.code;
        snprintf(dev->last_dm_path, sizeof dev->last_dm_path, "/%.*s", (int)(r.path_len > 30 ? 30 : r.path_len),
                 r.path);
        sim_reg_traffic(&dev->reg, t);
        obs_seq = observe_request(dev, req, &r, &out, t);
    }
    coap_delete_string(path);

    coap_pdu_set_code(resp, (coap_pdu_code_t)out.code);
    if (obs_seq >= 0)
        add_observe_opt(resp, (uint32_t)obs_seq);
    if (out.location[0]) /* Create: 2.01 with Location-Path o, i */
        (void)add_path_opts(resp, COAP_OPTION_LOCATION_PATH, out.location);
    forget_last(dev);
    if (datagram && coap_pdu_get_type(req) == COAP_MESSAGE_CON) {
        dev->have_last = true;
        dev->last_mid = (uint16_t)mid;
        dev->last_code = out.code;
        dev->last_cf = out.content_format;
        dev->last_obs = obs_seq;
        if (out.payload_len && (dev->last_payload = malloc(out.payload_len))) {
            memcpy(dev->last_payload, out.payload, out.payload_len);
            dev->last_len = out.payload_len;
        } else if (out.payload_len) {
            dev->have_last = false;
        }
        if (out.location[0])
            dev->have_last = false; /* a retransmitted Create would miss its Location-Path: run it again */
    }
    if (out.content_format == LWM2M_CF_TEXT && out.payload_len) {
        /* libcoap's large-response helper writes no Content-Format for 0
         * (text/plain); LwM2M servers want it explicit */
        coap_add_option(resp, COAP_OPTION_CONTENT_FORMAT, 0, NULL);
    }
    if (out.payload && out.payload_len) {
        /* takes ownership of the payload, also on failure (it calls release_payload) */
        coap_add_data_large_response(res, s, req, resp, query, (uint16_t)out.content_format, -1, 0, out.payload_len,
                                     out.payload, release_payload, out.payload);
        out.payload = NULL;
    } else if (out.content_format >= 0) {
        uint8_t b[4];
        coap_add_option(resp, COAP_OPTION_CONTENT_FORMAT, coap_encode_var_safe(b, sizeof b, (unsigned)out.content_format),
                        b);
    }
    if (r.iface == SIM_IFACE_DM) {
        dm_event(dev, &out, t);
        if (dev->nobs && out.code >= LWM2M_CODE(2, 1) && out.code <= LWM2M_CODE(2, 4))
            queue_dev(dev); /* flush() looks at the observations once this answer left */
    } else {
        queue_acts(dev, sim_bs_on_served(&dev->bs, t, out.code, out.event, out.detail));
    }
    sim_response_clear(&out);
}

/* "/rd/5" from the Location-Path options of a 2.01 */
static void location_of(const coap_pdu_t *pdu, char *buf, size_t cap)
{
    coap_opt_iterator_t it;
    coap_opt_filter_t f;
    coap_option_filter_clear(&f);
    coap_option_filter_set(&f, COAP_OPTION_LOCATION_PATH);
    coap_option_iterator_init(pdu, &it, &f);
    size_t w = 0;
    buf[0] = '\0';
    coap_opt_t *o;
    while ((o = coap_option_next(&it))) {
        size_t l = coap_opt_length(o);
        if (w + 1 + l + 1 > cap) {
            buf[0] = '\0';
            return;
        }
        buf[w++] = '/';
        memcpy(buf + w, coap_opt_value(o), l);
        w += l;
        buf[w] = '\0';
    }
}

static coap_response_t on_response(coap_session_t *s, const coap_pdu_t *sent, const coap_pdu_t *rcv, const coap_mid_t mid)
{
    (void)sent;
    (void)mid;
    sim_device_t *dev = coap_session_get_app_data(s);
    if (dev && s == dev->session)
        dev->answered = true;
    if (!dev || !dev->awaiting)
        return COAP_RESPONSE_OK;
    coap_bin_const_t tok = coap_pdu_get_token(rcv);
    if (tok.length != dev->token_len || memcmp(tok.s, dev->token, tok.length) != 0)
        return COAP_RESPONSE_OK;
    dev->awaiting = false;
    int code = (int)coap_pdu_get_code(rcv);
    uint64_t t = now_us();
    if (dev->await_kind == AWAIT_BS) {
        LOGD("sim", "ep=%s event=bootstrap_response code=%d.%02d", dev->ep, code >> 5, code & 31);
        queue_acts(dev, sim_bs_on_response(&dev->bs, t, code));
        return COAP_RESPONSE_OK;
    }
    char loc[64] = "";
    if (code == LWM2M_CODE(2, 1))
        location_of(rcv, loc, sizeof loc);
    LOGD("sim", "ep=%s event=reg_response kind=%d code=%d.%02d location=%s", dev->ep, dev->await_kind, code >> 5,
         code & 31, loc[0] ? loc : "-");
    sim_reg_traffic(&dev->reg, t);
    queue_racts(dev, sim_reg_on_response(&dev->reg, t, (sim_reg_req_t)dev->await_kind, code, loc));
    if (dev->reg.state == SIM_REG_REGISTERED && dev->nobs)
        queue_dev(dev); /* notifications held back while sleeping */
    return COAP_RESPONSE_OK;
}

static void on_nack(coap_session_t *s, const coap_pdu_t *sent, const coap_nack_reason_t reason, const coap_mid_t mid)
{
    (void)mid;
    sim_device_t *dev = coap_session_get_app_data(s);
    if (!dev)
        return;
    if (sent && dev->nobs) {
        /* a notification answered with RST, or never acknowledged: the
         * server is no longer interested (RFC 7641 §3.6, §4.5) */
        coap_bin_const_t tok = coap_pdu_get_token(sent);
        int at = find_observation(dev, tok.s, tok.length);
        if (at >= 0 && COAP_RESPONSE_CLASS(coap_pdu_get_code(sent)) >= 2) {
            LOGD("sim", "ep=%s event=observe_cancel reason=%s", dev->ep, reason == COAP_NACK_RST ? "rst" : "nack");
            remove_observation(dev, (size_t)at);
            return;
        }
    }
    if (!dev->awaiting)
        return;
    if (sent) {
        coap_bin_const_t tok = coap_pdu_get_token(sent);
        if (tok.length != dev->token_len || memcmp(tok.s, dev->token, tok.length) != 0)
            return;
    }
    const char *what = dev->await_kind == AWAIT_BS ? "bootstrap request" : dev->await_kind == SIM_REG_REQ_REGISTER
                                                                              ? "register"
                                                                          : dev->await_kind == SIM_REG_REQ_UPDATE
                                                                              ? "update"
                                                                              : "de-register";
    char why[120];
    switch (reason) {
    case COAP_NACK_TOO_MANY_RETRIES: snprintf(why, sizeof why, "no answer to %s (retransmissions exhausted)", what); break;
    case COAP_NACK_NOT_DELIVERABLE: snprintf(why, sizeof why, "%s not deliverable", what); break;
    case COAP_NACK_RST: snprintf(why, sizeof why, "%s answered with RST", what); break;
    case COAP_NACK_TLS_FAILED: snprintf(why, sizeof why, "DTLS handshake failed"); break;
    case COAP_NACK_ICMP_ISSUE: snprintf(why, sizeof why, "ICMP error on %s (port unreachable?)", what); break;
    default: snprintf(why, sizeof why, "transport error on %s", what); break;
    }
    dev->awaiting = false;
    if (dev->await_kind == AWAIT_BS)
        queue_acts(dev, sim_bs_on_transport(&dev->bs, now_us(), why));
    else
        queue_racts(dev, sim_reg_on_transport(&dev->reg, now_us(), why));
}

static int on_event(coap_session_t *s, const coap_event_t ev)
{
    sim_device_t *dev = s ? coap_session_get_app_data(s) : NULL;
    if (!dev || s != dev->session)
        return 0;
    const char *why = NULL;
    bool conn = false; /* the TCP connection (CoAP over TCP/TLS) ended */
    switch (ev) {
    case COAP_EVENT_DTLS_ERROR: why = coap_session_get_proto(s) == COAP_PROTO_TLS ? "TLS error" : "DTLS error"; break;
    case COAP_EVENT_DTLS_CLOSED:
        why = coap_session_get_proto(s) == COAP_PROTO_TLS ? "TLS session closed by peer" : "DTLS session closed by peer";
        break;
    case COAP_EVENT_TCP_FAILED: why = "TCP connection failed (refused?)"; conn = true; break;
    case COAP_EVENT_TCP_CLOSED: why = "TCP connection closed by the server"; conn = true; break;
    case COAP_EVENT_SESSION_CLOSED: why = "session closed"; conn = true; break;
    case COAP_EVENT_SESSION_FAILED: why = "session failed"; conn = true; break;
    default: break;
    }
    if (!why)
        return 0;
    if (coap_session_get_proto(s) == COAP_PROTO_TLS) {
        conn = true; /* TLS closed or failed: so is its TCP connection */
        if (!dev->answered)
            why = "TLS handshake failed (wrong PSK or unknown identity?)";
    }
    if (conn && !dev->conn_why)
        dev->conn_why = why;
    if (conn && !dev->awaiting && (dev->reg_phase || dev->bs.state != SIM_BS_SERVING)) {
        /* nothing outstanding (a request still waiting to be written was
         * NACKed already): let the session go; the next Update connects
         * again (the registration lives on in the server) */
        if (!dev->conn_lost)
            LOGD("sim", "ep=%s event=connection_lost reason=\"%s\"", dev->ep, why);
        dev->conn_lost = true;
        queue_dev(dev);
        return 0;
    }
    if (!dev->reg_phase) {
        if (ev == COAP_EVENT_DTLS_CLOSED && dev->bs.state == SIM_BS_REQUESTING)
            why = "DTLS closed before the bootstrap request was answered (handshake failed: wrong PSK?)";
        dev->awaiting = false;
        queue_acts(dev, sim_bs_on_transport(&dev->bs, now_us(), why));
    } else {
        if (ev == COAP_EVENT_DTLS_CLOSED && dev->awaiting && dev->await_kind == SIM_REG_REQ_REGISTER)
            why = "DTLS closed before the register was answered (handshake failed: wrong PSK?)";
        dev->awaiting = false;
        queue_racts(dev, sim_reg_on_transport(&dev->reg, now_us(), why));
    }
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
    sim->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (sim->epfd < 0 || sim->tfd < 0 || sim->efd < 0 || sim->coap_fd < 0)
        return -errno ? -errno : -EIO;
    struct itimerspec its = {{0, SIM_TICK_MS * 1000000L}, {0, SIM_TICK_MS * 1000000L}};
    if (timerfd_settime(sim->tfd, 0, &its, NULL) != 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN};
    int fds[3] = {sim->coap_fd, sim->tfd, sim->efd};
    for (int k = 0; k < 3; k++) {
        ev.data.fd = fds[k];
        if (epoll_ctl(sim->epfd, EPOLL_CTL_ADD, fds[k], &ev) != 0)
            return -errno;
    }
    return 0;
}

static int setup_device(sim_t *sim, const sim_config_t *cfg, size_t i)
{
    sim_device_t *dev = &sim->devs[i];
    dev->sim = sim;
    dev->index = i;
    dev->slot = -1;
    dev->last_obs = -1;
    dev->registers = sim->direct || sim->register_after_bs;
    dev->rng = 0x2545f491u ^ (uint32_t)(i * 2654435761u);
    if (!dev->rng)
        dev->rng = 1;
    unsigned long idx = (unsigned long)cfg->first_index + i;
    if (cfg->endpoints) {
        if (!cfg->endpoints[i] || strlen(cfg->endpoints[i]) >= SIM_EP_MAX || !cfg->endpoints[i][0])
            return -EINVAL;
        strcpy(dev->ep, cfg->endpoints[i]);
    } else if (format_index(dev->ep, sizeof dev->ep, cfg->ep_prefix, cfg->ep_digits, idx) != 0) {
        return -EINVAL;
    }
    bool bs_psk = sim->server_uri && proto_secure(sim->proto);
    bool dm_psk = sim->dm_server_uri && proto_secure(sim->dm_proto);
    if (bs_psk || dm_psk) {
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
    dc.bs_uri = sim->server_uri;
    dc.bs_iid = cfg->bs_account_iid;
    dc.bs_security_mode = bs_psk ? SIM_SEC_PSK : SIM_SEC_NOSEC;
    dc.psk_identity = dev->identity;
    dc.psk_identity_len = dev->identity_len;
    dc.psk_key = dev->key;
    dc.psk_key_len = dev->key_len;
    /* default binding: T for a device registering directly over TCP, UT
     * (/3/0/16) for one that bootstraps over TCP (RFC 8323 transports) */
    const char *binding = cfg->binding;
    if (!binding && sim->dm_server_uri && proto_reliable(sim->dm_proto))
        binding = "T";
    dc.binding = binding ? binding : (sim->server_uri && proto_reliable(sim->proto)) ? "UT" : NULL;
    dc.dm_uri = sim->dm_server_uri;
    dc.dm_security_mode = dm_psk ? SIM_SEC_PSK : SIM_SEC_NOSEC;
    dc.lifetime = cfg->lifetime_s ? cfg->lifetime_s : 300;
    dc.dm_binding = binding;
    dc.factory = cfg->factory;
    dc.refuse_discover = cfg->refuse_discover;
    dc.fail_finish = cfg->fail_finish;
    if (sim_dm_new(&dc, &dev->dm) != 0)
        return -EINVAL;
    sim_bs_init(&dev->bs, cfg->retries, sim->timeout_us, sim->retry_delay_us, cfg->stall_after);
    sim_reg_params_t rp = {.lifetime_s = 300};
    sim_reg_init(&dev->reg, &rp);
    return 0;
}

int sim_new(const sim_config_t *cfg, sim_t **out)
{
    *out = NULL;
    bool direct = cfg && cfg->dm_server_uri;
    if (!cfg || (!cfg->server_uri && !direct) || cfg->count == 0 || cfg->concurrency == 0 || cfg->timeout_ms == 0 ||
        (!cfg->endpoints && !cfg->ep_prefix)) {
        LOGE("sim", "event=config_error detail=\"server_uri (or dm_server_uri), count, concurrency and timeout are "
                    "required\"");
        return -EINVAL;
    }
    if (cfg->version != LWM2M_V1_0 && cfg->version != LWM2M_V1_1 && cfg->version != LWM2M_V1_2) {
        LOGE("sim", "event=config_error detail=\"unknown LwM2M version %d\"", (int)cfg->version);
        return -EINVAL;
    }
    int format = cfg->version == LWM2M_V1_0 ? LWM2M_CF_TLV : cfg->format;
    if (format != LWM2M_CF_TLV && format != LWM2M_CF_SENML_JSON && format != LWM2M_CF_SENML_CBOR &&
        !(format == LWM2M_CF_LWM2M_CBOR && cfg->version >= LWM2M_V1_2 && lwm2m_cf_supported(format))) {
        LOGE("sim", "event=config_error detail=\"format %d is not TLV, SenML JSON, SenML CBOR or (1.2) LwM2M CBOR\"",
             format);
        return -EINVAL;
    }
    pthread_once(&coap_once, do_coap_startup);

    coap_address_t bs_addr, dm_addr;
    coap_proto_t bs_proto = COAP_PROTO_UDP, dm_proto = COAP_PROTO_UDP;
    if (cfg->server_uri && resolve_uri(cfg->server_uri, &bs_addr, &bs_proto) != 0) {
        LOGE("sim", "event=config_error detail=\"server URI must be coap://, coaps://, coap+tcp:// or "
                    "coaps+tcp://host[:port] with a host that resolves\"");
        return -EINVAL;
    }
    if (direct && resolve_uri(cfg->dm_server_uri, &dm_addr, &dm_proto) != 0) {
        LOGE("sim", "event=config_error detail=\"management server URI must be coap://, coaps://, coap+tcp:// or "
                    "coaps+tcp://host[:port] with a host that resolves\"");
        return -EINVAL;
    }
    sim_t *sim = calloc(1, sizeof *sim);
    if (!sim)
        return -ENOMEM;
    sim->epfd = sim->tfd = sim->efd = sim->coap_fd = -1;
    sim->proto = bs_proto;
    sim->dm_proto = dm_proto;
    if (cfg->server_uri)
        sim->server = bs_addr;
    sim->version = cfg->version;
    sim->format = format;
    sim->omit_pct = cfg->omit_pct;
    sim->concurrency = cfg->concurrency;
    sim->linger_us = (uint64_t)cfg->linger_ms * 1000u;
    sim->on_done = cfg->on_done;
    sim->ud = cfg->ud;
    sim->retries = cfg->retries;
    sim->timeout_us = (uint64_t)cfg->timeout_ms * 1000u;
    sim->retry_delay_us = (uint64_t)cfg->retry_delay_ms * 1000u;
    sim->direct = direct;
    sim->register_after_bs = cfg->register_after_bootstrap;
    sim->lifetime_s = cfg->lifetime_s;
    sim->update_interval_us = (uint64_t)cfg->update_interval_ms * 1000u;
    sim->queue_mode = cfg->queue_mode;
    sim->awake_us = (uint64_t)cfg->awake_ms * 1000u;
    sim->tick_us = (uint64_t)cfg->tick_ms * 1000u;
    sim->con_every = cfg->con_notify_every;
    sim->call_mu_ok = pthread_mutex_init(&sim->call_mu, NULL) == 0;
    int rc = sim->call_mu_ok ? 0 : -ENOMEM;
    bool any_dtls = (cfg->server_uri && proto_secure(bs_proto)) || (direct && proto_secure(dm_proto));
    const char *unsupported = cfg->server_uri && proto_unsupported(bs_proto)[0] ? proto_unsupported(bs_proto)
                              : direct ? proto_unsupported(dm_proto) : "";
    if (!rc && unsupported[0]) {
        LOGE("sim", "event=config_error detail=\"%s\"", unsupported);
        rc = -EINVAL;
    }
    if (!rc) {
        const coap_address_t *ref = cfg->server_uri ? &bs_addr : &dm_addr;
        const char *local = cfg->local_addr;
        int fam = ref->addr.sa.sa_family;
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
    if (!rc && any_dtls && !cfg->psk_key_cb && (!cfg->psk_key || !cfg->psk_key_len)) {
        LOGE("sim", "event=config_error detail=\"coaps:// and coaps+tcp:// need a PSK key\"");
        rc = -EINVAL;
    }
    if (!rc && cfg->server_uri && !(sim->server_uri = strdup(cfg->server_uri)))
        rc = -ENOMEM;
    if (!rc && direct && !(sim->dm_server_uri = strdup(cfg->dm_server_uri)))
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
        sim->live = calloc(cfg->count, sizeof *sim->live);
        if (!sim->devs || !sim->active || !sim->live)
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

static void drop_calls(sim_t *sim)
{
    sim_call_t *c = sim->call_head;
    while (c) {
        sim_call_t *next = c->next;
        free(c);
        c = next;
    }
    sim->call_head = sim->call_tail = NULL;
}

void sim_free(sim_t **psim)
{
    if (!psim || !*psim)
        return;
    sim_t *sim = *psim;
    for (size_t i = 0; i < sim->n; i++) {
        release_session(&sim->devs[i]);
        forget_last(&sim->devs[i]);
        drop_observations(&sim->devs[i]);
        free(sim->devs[i].obs);
        sim_dm_free(&sim->devs[i].dm);
    }
    if (sim->ctx)
        coap_free_context(sim->ctx);
    if (sim->epfd >= 0)
        close(sim->epfd);
    if (sim->tfd >= 0)
        close(sim->tfd);
    if (sim->efd >= 0)
        close(sim->efd);
    if (sim->call_mu_ok) {
        drop_calls(sim);
        pthread_mutex_destroy(&sim->call_mu);
    }
    lwm2m_registry_free(&sim->own_reg);
    free(sim->devs);
    free(sim->active);
    free(sim->live);
    free(sim->server_uri);
    free(sim->dm_server_uri);
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

/* runs the queued sim_call functions, in order */
static void run_calls(sim_t *sim)
{
    pthread_mutex_lock(&sim->call_mu);
    sim_call_t *c = sim->call_head;
    sim->call_head = sim->call_tail = NULL;
    pthread_mutex_unlock(&sim->call_mu);
    while (c) {
        sim_call_t *next = c->next;
        c->fn(sim, c->arg);
        free(c);
        flush(sim);
        c = next;
    }
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
    bool io = false, calls = false, tick = false;
    for (int k = 0; k < n; k++) {
        uint64_t cnt;
        if (evs[k].data.fd == sim->tfd) {
            if (read(sim->tfd, &cnt, sizeof cnt) < 0) { /* EAGAIN: nothing to do */
            }
            tick = true;
        } else if (evs[k].data.fd == sim->efd) {
            if (read(sim->efd, &cnt, sizeof cnt) < 0) { /* EAGAIN: drained already */
            }
            calls = true;
        } else {
            io = true; /* libcoap's epoll fd */
        }
    }
    if (tick) /* the retransmission-timer fix, cache expiry */
        coap_io_process(sim->ctx, COAP_IO_NO_WAIT);
    if (io) {
        /* Hand libcoap every ready socket at once: coap_io_process() walks
         * all sessions twice per call, coap_io_do_epoll() once after the
         * batch - with thousands of devices per process that walk was most
         * of the simulator's CPU (docs/sim.md). */
        struct epoll_event cev[64];
        for (int round = 0; round < 16; round++) {
            int m = epoll_wait(sim->coap_fd, cev, 64, 0);
            if (m <= 0)
                break;
            coap_io_do_epoll(sim->ctx, cev, (size_t)m);
            if (m < 64)
                break;
        }
    }
    flush(sim);
    if (calls)
        run_calls(sim);
    run_timers(sim, tick);
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
    if (sim->call_mu_ok) {
        pthread_mutex_lock(&sim->call_mu);
        sim->calls_closed = true;
        pthread_mutex_unlock(&sim->call_mu);
    }
    uint64_t t = now_us();
    for (size_t k = sim->nactive; k-- > 0;) {
        sim_device_t *dev = sim->active[k];
        if (dev->reg_phase)
            queue_racts(dev, sim_reg_stop(&dev->reg, t));
        else
            queue_acts(dev, sim_bs_stop(&dev->bs, t));
    }
    flush(sim);
    /* De-register the live devices and wait (bounded) for the answers: the
     * CLI's SIGTERM path. At most SIM_STOP_INFLIGHT at a time, so that a
     * server's receive buffer is not flooded by thousands at once. */
    uint64_t end = now_us() + SIM_STOP_WAIT_US;
    sim_device_t *win[SIM_STOP_INFLIGHT];
    size_t next = 0, nwin = 0;
    for (;;) {
        size_t w = 0;
        for (size_t k = 0; k < nwin; k++)
            if (win[k]->reg_phase && win[k]->reg.state == SIM_REG_DEREGISTERING)
                win[w++] = win[k];
        nwin = w;
        while (next < sim->nlive && nwin < SIM_STOP_INFLIGHT) {
            sim_device_t *dev = sim->live[next++];
            if (dev->reg_phase)
                queue_racts(dev, sim_reg_stop(&dev->reg, now_us()));
            else
                queue_acts(dev, sim_bs_stop(&dev->bs, now_us()));
            flush(sim);
            if (dev->reg_phase && dev->reg.state == SIM_REG_DEREGISTERING)
                win[nwin++] = dev;
        }
        if ((!nwin && next >= sim->nlive) || now_us() >= end)
            break;
        struct epoll_event evs[4];
        int n = epoll_wait(sim->epfd, evs, 4, 20);
        for (int k = 0; k < n; k++) {
            uint64_t cnt;
            if (evs[k].data.fd == sim->tfd || evs[k].data.fd == sim->efd)
                if (read(evs[k].data.fd, &cnt, sizeof cnt) < 0) { /* EAGAIN */
                }
        }
        coap_io_process(sim->ctx, COAP_IO_NO_WAIT);
        flush(sim);
    }
    while (sim->linger_head) {
        sim_device_t *dev = sim->linger_head;
        sim->linger_head = dev->next_linger;
        dev->linger_until_us = 0;
        release_session(dev);
    }
    sim->nlinger = 0;
    for (size_t i = 0; i < sim->n; i++) {
        sim_device_t *dev = &sim->devs[i];
        if (dev->reg_phase)
            sim_reg_abandon(&dev->reg); /* out of time: no De-register */
        drop_observations(dev);
        release_session(dev);
    }
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
    if (dev->reported)
        out->state = dev->outcome;
    else if (dev->bs.state == SIM_BS_IDLE && dev->reg.state == SIM_REG_IDLE)
        out->state = SIM_PENDING;
    else
        out->state = SIM_RUNNING;
    out->reason = "";
    if (out->state == SIM_FAILED)
        out->reason = dev->reg_phase ? dev->reg.reason : dev->bs.reason;
    if (out->state == SIM_OK)
        out->latency_us = dev->goal_latency_us;
    out->attempts = dev->bs.attempt;
    out->requests = dev->bs.served;
    out->registered = dev->reg_phase && sim_reg_registered(&dev->reg);
    out->sleeping = dev->reg_phase && dev->reg.state == SIM_REG_SLEEPING;
    out->reg_state = sim_reg_state_name(dev->reg.state);
    out->location = out->registered ? dev->reg.location : "";
    out->server = dev->server_uri;
    out->registrations = dev->reg.registrations;
    out->updates = dev->reg.updates;
    out->notifications = dev->notifications;
    out->observations = (unsigned)dev->nobs;
    out->dm_requests = dev->dm_requests;
    out->last_dm_method = dev->last_dm_method;
    out->last_dm_path = dev->last_dm_path;
    out->last_dm_code = dev->last_dm_code;
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
        sim_status_t st;
        sim_device_status(dev, &st);
        switch (st.state) {
        case SIM_PENDING: out->pending++; break;
        case SIM_OK:
            out->ok++;
            if (lat)
                lat[nl++] = st.latency_us;
            break;
        case SIM_FAILED: out->failed++; break;
        default: out->running++; break;
        }
        if (st.registered)
            out->registered++;
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

/* ------------------------------------------------------------ control */

int sim_call(sim_t *sim, void (*fn)(sim_t *, void *), void *arg)
{
    if (!sim || !fn || !sim->call_mu_ok)
        return -EINVAL;
    sim_call_t *c = malloc(sizeof *c);
    if (!c)
        return -ENOMEM;
    c->fn = fn;
    c->arg = arg;
    c->next = NULL;
    pthread_mutex_lock(&sim->call_mu);
    if (sim->calls_closed) {
        pthread_mutex_unlock(&sim->call_mu);
        free(c);
        return -ESHUTDOWN;
    }
    if (sim->call_tail)
        sim->call_tail->next = c;
    else
        sim->call_head = c;
    sim->call_tail = c;
    pthread_mutex_unlock(&sim->call_mu);
    uint64_t one = 1;
    if (write(sim->efd, &one, sizeof one) < 0) { /* EAGAIN: already signalled */
    }
    return 0;
}

static sim_device_t *reg_device(sim_t *sim, size_t index, int *rc)
{
    *rc = 0;
    if (!sim || index >= sim->n) {
        *rc = -ENOENT;
        return NULL;
    }
    sim_device_t *dev = &sim->devs[index];
    if (!dev->reg_phase || sim->stopped) {
        *rc = -EINVAL;
        return NULL;
    }
    return dev;
}

static int control(sim_t *sim, size_t index, unsigned (*op)(sim_reg_t *, uint64_t))
{
    int rc;
    sim_device_t *dev = reg_device(sim, index, &rc);
    if (!dev)
        return rc;
    unsigned a = op(&dev->reg, now_us());
    if (a & SIM_REG_ACT_REFUSED)
        return -EINVAL;
    queue_racts(dev, a);
    if (!sim->in_flush)
        flush(sim);
    return 0;
}

int sim_device_update_now(sim_t *sim, size_t index) { return control(sim, index, sim_reg_update_now); }
int sim_device_deregister(sim_t *sim, size_t index) { return control(sim, index, sim_reg_deregister); }
int sim_device_sleep(sim_t *sim, size_t index) { return control(sim, index, sim_reg_sleep); }
int sim_device_reregister(sim_t *sim, size_t index) { return control(sim, index, sim_reg_reregister); }

int sim_device_set_value(sim_t *sim, size_t index, const lwm2m_record_t *rec)
{
    if (!sim || index >= sim->n)
        return -ENOENT;
    sim_device_t *dev = &sim->devs[index];
    int rc = sim_dm_set_value(dev->dm, rec);
    if (rc)
        return rc;
    queue_dev(dev);
    if (!sim->in_flush)
        flush(sim);
    return 0;
}
