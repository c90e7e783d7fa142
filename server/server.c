/* The lwdm process and its network loop.
 *
 * Threads: this (loop) thread owns libcoap, the bootstrap sessions, the timer
 * heap and its own db_t; libmicrohttpd runs the REST API on its own pool with a
 * db_t per worker. Other threads reach the loop only through the eventfd.
 *
 * One loop pass: epoll_wait (libcoap's epoll fd, the sockets of lwdm's own
 * UDP endpoints on the plain-CoAP management and bootstrap ports, the
 * eventfd, a 100 ms timerfd) -> coap_drain (libcoap's events, several
 * datagrams per call) -> cudp_read -> due timers -> bs_server_after_io
 * (start accepted sessions, write results in one transaction, free finished
 * sessions) -> rd_after_io -> cudp_flush (what the own endpoints queued
 * during the pass leaves in one sendmmsg each). The timerfd tick also calls
 * coap_io_process, because libcoap 4.3.1 can switch its retransmission timer
 * off (LIBCOAP.md "Bug"). */
#include <coap3/coap.h>

#include "server/server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "db/db.h"
#include "server/bootstrap/bs.h"
#include "server/coap_udp.h"
#include "server/coap_util.h"
#include "server/common/log.h"
#include "server/common/events.h"
#include "server/common/metrics.h"
#include "server/firstrun.h"
#include "server/http_client.h"
#include "server/lwm2m/registry.h"
#include "server/registry/rd.h"
#include "server/timers.h"

struct lwdm_server {
    lwdm_config_t cfg;
    uint8_t key[DB_KEY_BYTES];
    db_t *db;
    lwm2m_registry_t *reg;
    api_t *api;
    coap_context_t *coap;
    cudp_t *udp;                  /* lwdm's own endpoint on the plain-CoAP management port, or NULL */
    cudp_t *bs_udp;               /* ... and on the plain-CoAP bootstrap port */
    bs_server_t *bs;
    rd_t *rd;
    int64_t gauges_at_ms;
    http_client_t *http;
    timer_heap_t timers;
    int epfd, evfd, tfd;
    atomic_int stop;
    atomic_llong last_pass_ms;    /* loop liveness, read by /healthz */
    uint16_t http_port, coap_port, coaps_port, bs_coap_port, bs_coaps_port;
    char gen_pw[64];
    events_t *events;             /* live events bus (API streams, bootstrap and registry publish) */
    struct {
        int fd;                   /* a UDP socket of one of our CoAP endpoints */
        int burst;                /* reads per coap_io_do_epoll() call (adaptive, 1..64) */
    } eps[4];
    int neps;
    bool tcp, tls;                /* listening for CoAP over TCP / TLS (--tcp) */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------- libcoap glue */
/* libcoap 4.3.1 has no per-context user pointer: a small table maps contexts to
 * servers (more than one server per process only happens in tests). */
#define MAX_SERVERS 8
static struct { coap_context_t *ctx; lwdm_server_t *srv; } g_ctx_map[MAX_SERVERS];

static void ctx_map_set(coap_context_t *ctx, lwdm_server_t *srv)
{
    for (int i = 0; i < MAX_SERVERS; i++)
        if (g_ctx_map[i].ctx == (srv ? NULL : ctx)) {
            g_ctx_map[i].ctx = srv ? ctx : NULL;
            g_ctx_map[i].srv = srv;
            return;
        }
}

static lwdm_server_t *coap_context_get_app_data(coap_context_t *ctx)
{
    for (int i = 0; i < MAX_SERVERS; i++)
        if (g_ctx_map[i].ctx == ctx)
            return g_ctx_map[i].srv;
    return NULL;
}

/* Set while coap_drain() asks libcoap for more reads than there may be
 * datagrams: the reads that find the socket empty log "read failed". */
static _Thread_local bool g_draining;

static void coap_log_handler(coap_log_t level, const char *message)
{
    if (g_draining && (strstr(message, "read failed") || strstr(message, "temporarily unavailable")))
        return;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", message);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = 0;
    log_level_t l = level <= LOG_ERR ? LOG_LVL_ERROR : level <= LOG_WARNING ? LOG_LVL_WARN : LOG_LVL_DEBUG;
    log_msg(l, "coap", "msg=\"%s\"", buf);
}

static coap_response_t on_response(coap_session_t *cs, const coap_pdu_t *sent, const coap_pdu_t *recv,
                                   const coap_mid_t mid)
{
    (void)mid;
    lwdm_server_t *s = coap_context_get_app_data(coap_session_get_context(cs));
    if (s && s->rd && rd_owns_session(s->rd, cs))
        return rd_on_response(s->rd, cs, sent, recv) ? COAP_RESPONSE_OK : COAP_RESPONSE_FAIL;
    if (s && s->bs && bs_server_on_response(s->bs, cs, sent, recv))
        return COAP_RESPONSE_OK;
    /* Unknown token: let libcoap RST it (ends stray observations too). */
    return COAP_RESPONSE_FAIL;
}

static void on_nack(coap_session_t *cs, const coap_pdu_t *sent, const coap_nack_reason_t reason, const coap_mid_t mid)
{
    (void)sent;
    lwdm_server_t *s = coap_context_get_app_data(coap_session_get_context(cs));
    const char *why = reason == COAP_NACK_TOO_MANY_RETRIES ? "no answer (retransmissions exhausted)"
                      : reason == COAP_NACK_RST                ? "reset by the client"
                      : reason == COAP_NACK_TLS_FAILED         ? "DTLS failure"
                                                               : "transport failure";
    if (s && s->rd && rd_owns_session(s->rd, cs))
        rd_on_nack(s->rd, cs, mid, why);
    else if (s && s->bs)
        bs_server_on_nack(s->bs, cs, mid, why);
}

static int on_event(coap_session_t *cs, const coap_event_t ev)
{
    lwdm_server_t *s = coap_context_get_app_data(coap_session_get_context(cs));
    if (!s || !s->bs)
        return 0;
    if (ev == COAP_EVENT_DTLS_ERROR)
        metrics_inc(MC_DTLS_ERRORS);
    if (s->rd && rd_owns_session(s->rd, cs)) {
        if (ev == COAP_EVENT_SERVER_SESSION_NEW)
            rd_on_session_new(s->rd, cs);
        else if (ev == COAP_EVENT_DTLS_CLOSED || ev == COAP_EVENT_DTLS_ERROR || ev == COAP_EVENT_SESSION_CLOSED ||
                 ev == COAP_EVENT_SERVER_SESSION_DEL || ev == COAP_EVENT_TCP_CLOSED || ev == COAP_EVENT_TCP_FAILED ||
                 ev == COAP_EVENT_SESSION_FAILED)
            rd_on_session_closed(s->rd, cs);
        return 0;
    }
    if (ev == COAP_EVENT_SERVER_SESSION_NEW) {
        bs_server_on_session_new(s->bs, cs);
        return 0;
    }
    switch (ev) {
    case COAP_EVENT_DTLS_CLOSED:
    case COAP_EVENT_DTLS_ERROR:
    case COAP_EVENT_SESSION_CLOSED:
    case COAP_EVENT_SERVER_SESSION_DEL:
    case COAP_EVENT_TCP_CLOSED: /* CoAP over TCP/TLS: the connection is gone */
    case COAP_EVENT_TCP_FAILED:
    case COAP_EVENT_SESSION_FAILED:
        bs_server_on_session_closed(s->bs, cs);
        break;
    default:
        break;
    }
    return 0;
}

/* lwdm's own UDP endpoint hands its messages to the registration interface. */
static void udp_on_request(void *arg, cudp_peer_t *p, const coap_pdu_t *req, coap_pdu_t *resp)
{
    lwdm_server_t *s = arg;
    if (s->rd)
        rd_udp_request(s->rd, p, req, resp);
    else
        coap_pdu_set_code(resp, COAP_RESPONSE_CODE(503));
}

static bool udp_on_response(void *arg, cudp_peer_t *p, const coap_pdu_t *recv)
{
    lwdm_server_t *s = arg;
    return s->rd && rd_udp_response(s->rd, p, recv);
}

static void udp_on_nack(void *arg, cudp_peer_t *p, coap_mid_t mid, const char *why)
{
    lwdm_server_t *s = arg;
    if (s->rd)
        rd_udp_nack(s->rd, p, mid, why);
}

/* ... and the one on the bootstrap port to the bootstrap interface. */
static void bs_udp_on_request(void *arg, cudp_peer_t *p, const coap_pdu_t *req, coap_pdu_t *resp)
{
    lwdm_server_t *s = arg;
    if (s->bs)
        bs_server_udp_request(s->bs, p, req, resp);
    else
        coap_pdu_set_code(resp, COAP_RESPONSE_CODE(503));
}

static bool bs_udp_on_response(void *arg, cudp_peer_t *p, const coap_pdu_t *recv)
{
    lwdm_server_t *s = arg;
    return s->bs && bs_server_udp_response(s->bs, p, recv);
}

static void bs_udp_on_nack(void *arg, cudp_peer_t *p, coap_mid_t mid, const char *why)
{
    lwdm_server_t *s = arg;
    if (s->bs)
        bs_server_udp_nack(s->bs, p, mid, why);
}

/* lwdm's own UDP endpoint on addr:port with handlers h (port 0: none). */
static int open_own_udp(lwdm_server_t *s, const char *addr, uint16_t port, const cudp_handlers_t *h, cudp_t **out,
                        char *err, size_t errlen)
{
    if (!port)
        return 0;
    cudp_config_t uc = {.timers = &s->timers, .h = *h};
    return cudp_new(&uc, addr, port, out, err, errlen);
}

/* DTLS-PSK: the key for an identity, by the endpoint the client reached. */
static const coap_bin_const_t *psk_for_identity(coap_bin_const_t *identity, coap_session_t *cs, void *arg)
{
    lwdm_server_t *s = arg;
    static uint8_t key[256];
    static coap_bin_const_t out;
    const coap_address_t *local = coap_session_get_addr_local(cs);
    uint16_t port = local ? coap_address_get_port(local) : 0;
    int n = -1;
    if (s->bs && port == s->bs_coaps_port)
        n = bs_server_psk_lookup(s->bs, identity->s, identity->length, key, sizeof key);
    else if (s->rd && port == s->coaps_port)
        n = rd_psk_lookup(s->rd, identity->s, identity->length, key, sizeof key);
    if (n < 0) {
        metrics_inc(MC_DTLS_IDENTITY_REFUSED);
        LOGW("dtls", "ep=- event=handshake-refused reason=\"unknown PSK identity\" port=%u", port);
        return NULL; /* immediate fatal alert */
    }
    metrics_inc(MC_DTLS_IDENTITY_OK);
    out.s = key;
    out.length = (size_t)n;
    return &out; /* libcoap copies it */
}

/* Binds a socket of `type` to addr:port (port 0: any free one) and closes it
 * again: the port it got, or -1 when the port cannot be bound right now. TCP
 * probes use SO_REUSEADDR, as libcoap binds its listening sockets. */
static int probe_port(const char *addr, int type, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, type, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    if (type == SOCK_STREAM)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    socklen_t len = sizeof sa;
    int got = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        got = ntohs(sa.sin_port);
    close(fd);
    return got;
}

/* A port of 0 is replaced by a free UDP port that is also free for TCP when
 * TCP listening is on (the TCP/TLS endpoints use the same numbers), and that
 * none of the ports resolved before took. */
static int resolve_port(const lwdm_config_t *c, int configured, const uint16_t *taken, size_t ntaken, uint16_t *out)
{
    if (configured == LWDM_PORT_OFF) {
        *out = 0;
        return 0;
    }
    int p = configured;
    for (int tries = 0; configured == 0 && tries < 64; tries++) {
        p = probe_port(c->coap_addr, SOCK_DGRAM, 0);
        if (p <= 0)
            return -1;
        bool dup = false;
        for (size_t i = 0; i < ntaken; i++)
            dup = dup || taken[i] == p;
        if (!dup && (!c->tcp || probe_port(c->coap_addr, SOCK_STREAM, p) == p))
            break;
        p = -1;
    }
    if (p <= 0)
        return -1;
    *out = (uint16_t)p;
    return 0;
}

static const char *proto_scheme(coap_proto_t proto)
{
    switch (proto) {
    case COAP_PROTO_DTLS: return "coaps";
    case COAP_PROTO_TCP: return "coap+tcp";
    case COAP_PROTO_TLS: return "coaps+tcp";
    default: return "coap";
    }
}

static int add_endpoint(lwdm_server_t *s, uint16_t port, coap_proto_t proto, char *err, size_t errlen)
{
    if (!port)
        return 0;
    coap_address_t addr;
    coap_address_init(&addr);
    coap_endpoint_t *ep = NULL;
    if (inet_pton(AF_INET, s->cfg.coap_addr, &addr.addr.sin.sin_addr) == 1) {
        addr.addr.sin.sin_family = AF_INET;
        addr.addr.sin.sin_port = htons(port);
        addr.size = sizeof addr.addr.sin;
        ep = coap_new_endpoint(s->coap, &addr, proto);
    } else if (inet_pton(AF_INET6, s->cfg.coap_addr, &addr.addr.sin6.sin6_addr) == 1) {
        addr.addr.sin6.sin6_family = AF_INET6;
        addr.addr.sin6.sin6_port = htons(port);
        addr.size = sizeof addr.addr.sin6;
        ep = coap_new_endpoint(s->coap, &addr, proto);
    }
    if (!ep) {
        bool tcp = proto == COAP_PROTO_TCP || proto == COAP_PROTO_TLS;
        snprintf(err, errlen, "cannot listen on %s %s port %u (%s)", s->cfg.coap_addr, tcp ? "tcp" : "udp", port,
                 proto_scheme(proto));
        return -1;
    }
    return 0;
}

/* CoAP over TCP (RFC 8323) on the coap ports and over TLS-PSK on the coaps
 * ports, same numbers as UDP/DTLS, when --tcp is on and libcoap has them. */
static int add_tcp_endpoints(lwdm_server_t *s, char *err, size_t errlen)
{
    if (!s->cfg.tcp)
        return 0;
    s->tcp = coap_tcp_is_supported() && (s->coap_port || s->bs_coap_port);
    s->tls = coap_tls_is_supported() && (s->coaps_port || s->bs_coaps_port);
    if (!coap_tcp_is_supported())
        LOGW("server", "event=tcp-unavailable reason=\"libcoap was built without TCP\"");
    else if (!coap_tls_is_supported())
        LOGW("server", "event=tls-unavailable reason=\"libcoap was built without TLS\"");
    if (s->tcp && (add_endpoint(s, s->coap_port, COAP_PROTO_TCP, err, errlen) ||
                   add_endpoint(s, s->bs_coap_port, COAP_PROTO_TCP, err, errlen)))
        return -1;
    if (s->tls && (add_endpoint(s, s->coaps_port, COAP_PROTO_TLS, err, errlen) ||
                   add_endpoint(s, s->bs_coaps_port, COAP_PROTO_TLS, err, errlen)))
        return -1;
    return 0;
}

/* Finds the sockets libcoap opened for our endpoints by their local port
 * (libcoap 4.3.1 does not expose them) and tunes them:
 * - UDP: remembered in eps[] for coap_drain(), and a 4 MB receive buffer (a
 *   fleet's Updates arrive in bursts; ~256 datagrams fit the default one; the
 *   kernel caps it at net.core.rmem_max unless we may force it);
 * - listening TCP: TCP_NODELAY, which accepted connections inherit (libcoap
 *   sets none; without it a response followed by a request on one connection
 *   stalled ~41 ms in Nagle's delay, LIBCOAP.md). */
static void tune_endpoint_sockets(lwdm_server_t *s)
{
    uint16_t ports[4] = {s->coap_port, s->coaps_port, s->bs_coap_port, s->bs_coaps_port};
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        int fd = atoi(e->d_name);
        if ((s->udp && fd == cudp_fd(s->udp)) || (s->bs_udp && fd == cudp_fd(s->bs_udp)))
            continue; /* lwdm's own endpoints tune their sockets themselves */
        int type = 0, listening = 0;
        socklen_t tl = sizeof type, ll = sizeof listening;
        struct sockaddr_storage sa;
        socklen_t sl = sizeof sa;
        if (fd <= 2 || fd == dirfd(d) || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 ||
            getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
            continue;
        uint16_t port = sa.ss_family == AF_INET    ? ntohs(((struct sockaddr_in *)&sa)->sin_port)
                        : sa.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&sa)->sin6_port)
                                                   : 0;
        bool ours = false;
        for (int i = 0; i < 4; i++)
            ours = ours || (port && ports[i] == port);
        if (!ours)
            continue;
        int one = 1, rcv = 4 << 20;
        if (type == SOCK_DGRAM && s->neps < 4) {
            s->eps[s->neps].fd = fd;
            s->eps[s->neps].burst = 4;
            s->neps++;
            if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) != 0)
                setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
        } else if (type == SOCK_STREAM && getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ll) == 0 &&
                   listening) {
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
    }
    closedir(d);
}

/* Hands libcoap what its epoll fd reports, reading up to `burst` datagrams
 * per readable endpoint in one coap_io_do_epoll() call.
 *
 * Why: coap_io_process() reads one datagram per endpoint and walks every
 * live session twice (before and after the read), re-arming libcoap's
 * timerfd each time: per datagram, that walk and two timerfd_settime() calls
 * were most of the server's CoAP cost (LIBCOAP.md "Cost and scale",
 * docs/bench.md). coap_io_do_epoll() ends with one walk, so a burst of
 * datagrams pays it once. libcoap reads once per event it is given, so an
 * endpoint's event is repeated; a read that finds the socket empty returns
 * EAGAIN and is dropped (its log line too). The burst doubles while the
 * socket still holds data afterwards and halves when it is empty.
 *
 * An event's data.ptr is libcoap's coap_socket_t, whose first member is the
 * fd (include/coap3/coap_io_internal.h, 4.3.1); only an fd found among our
 * endpoints' sockets by tune_endpoint_sockets() is repeated, anything else is
 * passed on once, as coap_io_process() would. */
static void coap_drain(lwdm_server_t *s, int cfd)
{
    struct epoll_event in[16], batch[80];
    for (int round = 0; round < 32; round++) {
        int n = epoll_wait(cfd, in, 16, 0);
        if (n <= 0)
            return;
        size_t k = 0;
        int used[4] = {0};
        for (int i = 0; i < n; i++) {
            int ep = -1;
            if (in[i].data.ptr) {
                int fd = *(const int *)in[i].data.ptr;
                for (int j = 0; j < s->neps; j++)
                    if (s->eps[j].fd == fd)
                        ep = j;
            }
            int reps = ep >= 0 && (in[i].events & EPOLLIN) ? s->eps[ep].burst : 1;
            if (ep >= 0)
                used[ep] = 1;
            for (int r = 0; r < reps && k < sizeof batch / sizeof batch[0]; r++)
                batch[k++] = in[i];
        }
        g_draining = true;
        coap_io_do_epoll(s->coap, batch, k);
        g_draining = false;
        bool more = false;
        for (int j = 0; j < s->neps; j++) {
            if (!used[j])
                continue;
            int pending = 0;
            if (ioctl(s->eps[j].fd, FIONREAD, &pending) == 0 && pending > 0) {
                more = true;
                if (s->eps[j].burst < 64)
                    s->eps[j].burst *= 2;
            } else if (s->eps[j].burst > 1) {
                s->eps[j].burst /= 2;
            }
        }
        if (!more)
            return;
    }
}

/* rd_submit's wake-up (any thread) */
static void wake_loop(void *arg)
{
    lwdm_server_t *s = arg;
    uint64_t one = 1;
    ssize_t w = write(s->evfd, &one, sizeof one);
    (void)w;
}

static int health_hook(void *arg)
{
    lwdm_server_t *s = arg;
    return mono_ms() - atomic_load(&s->last_pass_ms) < 5000 ? 0 : -1;
}

/* --------------------------------------------------------------- lifecycle */
int lwdm_server_open(const lwdm_config_t *cfg, lwdm_server_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return -1;
    }
    lwdm_server_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->cfg = *cfg;
    s->epfd = s->evfd = s->tfd = -1;
    timer_heap_init(&s->timers);
    atomic_store(&s->last_pass_ms, mono_ms());
    s->events = events_new(EVENTS_DEFAULT_CAPACITY);
    if (!s->events) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }

    if (db_secret_key_load(cfg->db_path, cfg->secret_key[0] ? cfg->secret_key : NULL, s->key, err, errlen) != 0)
        goto fail;
    if (db_open(cfg->db_path, s->key, &s->db, err, errlen) != 0)
        goto fail;
    int applied = 0;
    if (db_migrate(s->db, &applied, err, errlen) != 0)
        goto fail;
    uint16_t *ports[4] = {&s->coap_port, &s->coaps_port, &s->bs_coap_port, &s->bs_coaps_port};
    const int conf_ports[4] = {cfg->coap_port, cfg->coaps_port, cfg->bs_coap_port, cfg->bs_coaps_port};
    uint16_t taken[4];
    size_t ntaken = 0;
    for (int i = 0; i < 4; i++) {
        if (resolve_port(cfg, conf_ports[i], taken, ntaken, ports[i]) != 0) {
            snprintf(err, errlen, "cannot find a free %s port on %s", cfg->tcp ? "UDP+TCP" : "UDP", cfg->coap_addr);
            goto fail;
        }
        if (*ports[i])
            taken[ntaken++] = *ports[i];
    }
    firstrun_params_t fp = {cfg->public_host, s->coap_port ? s->coap_port : 5683, s->coaps_port ? s->coaps_port : 5684,
                            s->bs_coap_port ? s->bs_coap_port : 5693, s->bs_coaps_port ? s->bs_coaps_port : 5694,
                            cfg->admin_password};
    int seeded = 0;
    if (firstrun_apply(s->db, &fp, s->gen_pw, sizeof s->gen_pw, &seeded, err, errlen) != 0)
        goto fail;
    if (seeded)
        LOGI("server", "event=first-run servers=4 bootstrap_settings=1");
    /* a database from before tasks existed gets the settings' group task; runs
     * interrupted by the last stop are marked and restart in the device's next
     * session (TASKS.md) */
    int interrupted = 0;
    if (db_bs_settings_sync_task(s->db, "/") != 0 || db_reports_mark_interrupted(s->db, db_now_ms(), &interrupted) != 0) {
        snprintf(err, errlen, "cannot prepare the task tables");
        goto fail;
    }
    if (interrupted)
        LOGW("server", "event=interrupted-runs count=%d", interrupted);

    s->reg = lwm2m_registry_new();
    if (!s->reg || lwm2m_registry_add_builtin(s->reg, err, errlen) != 0)
        goto fail;
    if (cfg->objects_dir[0] && lwm2m_registry_add_dir(s->reg, cfg->objects_dir, err, errlen) != 0)
        goto fail;

    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0 || http_client_new(s->epfd, &s->http) != 0) {
        snprintf(err, errlen, "cannot set up the event loop: %s", strerror(errno));
        goto fail;
    }
    coap_startup();
    cu_install_prng();
    coap_set_log_handler(coap_log_handler);
    coap_set_log_level(cfg->log_level <= LOG_LVL_DEBUG ? LOG_INFO : LOG_WARNING);
    coap_dtls_set_log_level(LOG_ERR);
    s->coap = coap_new_context(NULL);
    if (!s->coap) {
        snprintf(err, errlen, "cannot create the CoAP context");
        goto fail;
    }
    ctx_map_set(s->coap, s);
    coap_context_set_block_mode(s->coap, COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
    coap_dtls_spsk_t spsk;
    memset(&spsk, 0, sizeof spsk);
    spsk.version = COAP_DTLS_SPSK_SETUP_VERSION;
    spsk.validate_id_call_back = psk_for_identity;
    spsk.id_call_back_arg = s;
    if (!coap_context_set_psk2(s->coap, &spsk)) {
        snprintf(err, errlen, "cannot set up DTLS-PSK");
        goto fail;
    }
    /* Every coap_io_process() walks all live sessions (LIBCOAP.md "Cost and
     * scale"), so idle ones must not pile up: a bootstrap holds a reference
     * to its session while it runs, and so does a DTLS session in handshake
     * until its first request (bs_server_on_session_new); once released, a
     * session is freed after 30 s idle, and beyond 64 unreferenced sessions
     * the least recently used goes first. Measured (bench/bootstrap): 2,000
     * kept sessions more than doubled the server CPU per bootstrap; without
     * the handshake references a limit of 16 cut off DTLS handshakes in a
     * 64-device burst; coap_session_disconnected() after Finish was slower. */
    coap_context_set_session_timeout(s->coap, 30);
    coap_context_set_max_idle_sessions(s->coap, 64);
    coap_register_response_handler(s->coap, on_response);
    coap_register_nack_handler(s->coap, on_nack);
    coap_register_event_handler(s->coap, on_event);
    if (cfg->own_udp) {
        const cudp_handlers_t mh = {udp_on_request, udp_on_response, udp_on_nack, s};
        const cudp_handlers_t bh = {bs_udp_on_request, bs_udp_on_response, bs_udp_on_nack, s};
        if (open_own_udp(s, cfg->coap_addr, s->coap_port, &mh, &s->udp, err, errlen) != 0 ||
            open_own_udp(s, cfg->coap_addr, s->bs_coap_port, &bh, &s->bs_udp, err, errlen) != 0)
            goto fail;
    }
    if ((!s->udp && add_endpoint(s, s->coap_port, COAP_PROTO_UDP, err, errlen)) ||
        add_endpoint(s, s->coaps_port, COAP_PROTO_DTLS, err, errlen) ||
        (!s->bs_udp && add_endpoint(s, s->bs_coap_port, COAP_PROTO_UDP, err, errlen)) ||
        add_endpoint(s, s->bs_coaps_port, COAP_PROTO_DTLS, err, errlen) || add_tcp_endpoints(s, err, errlen))
        goto fail;
    tune_endpoint_sockets(s);
    bs_server_config_t bc = {.coap = s->coap,
                             .db = s->db,
                             .timers = &s->timers,
                             .coap_port = s->bs_coap_port,
                             .coaps_port = s->bs_coaps_port,
                             .session_timeout_s = cfg->bs_timeout_s,
                             .accept_unknown = cfg->accept_unknown,
                             .domain = "/",
                             .registry = s->reg,
                             .http = s->http,
                             .events = s->events};
    if (bs_server_new(&bc, &s->bs) != 0) {
        snprintf(err, errlen, "cannot start the bootstrap interface");
        goto fail;
    }

    rd_config_t rc = {.coap = s->coap,
                      .db = s->db,
                      .timers = &s->timers,
                      .registry = s->reg,
                      .events = s->events,
                      .http = s->http,
                      .coap_port = s->coap_port,
                      .coaps_port = s->coaps_port,
                      .udp = s->udp,
                      .accept_unknown = cfg->accept_unknown,
                      .domain = "/",
                      .awake_ms = cfg->queue_awake_ms,
                      .wake = wake_loop,
                      .wake_arg = s};
    if (rd_new(&rc, &s->rd) != 0) {
        snprintf(err, errlen, "cannot start the registration interface");
        goto fail;
    }

    api_config_t ac = {.db_path = cfg->db_path,
                       .secret_key = s->key,
                       .bind_addr = cfg->http_addr,
                       .port = (uint16_t)cfg->http_port,
                       .threads = cfg->http_threads,
                       .web_dir = cfg->web_dir[0] ? cfg->web_dir : NULL,
                       .default_domain = "/",
                       .public_host = cfg->public_host,
                       .registry = s->reg,
                       .events = s->events,
                       .devops = {rd_submit, rd_forget, s->rd}};
    if (api_start(&ac, &s->api, err, errlen) != 0)
        goto fail;
    api_set_health_hook(s->api, health_hook, s);
    s->http_port = api_port(s->api);

    s->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    int cfd = coap_context_get_coap_fd(s->coap);
    if (s->epfd < 0 || s->evfd < 0 || s->tfd < 0 || cfd < 0) {
        snprintf(err, errlen, "cannot set up the event loop: %s", strerror(errno));
        goto fail;
    }
    struct itimerspec its = {{0, 100 * 1000000}, {0, 100 * 1000000}};
    timerfd_settime(s->tfd, 0, &its, NULL);
    struct epoll_event e = {.events = EPOLLIN};
    e.data.fd = cfd;
    epoll_ctl(s->epfd, EPOLL_CTL_ADD, cfd, &e);
    e.data.fd = s->evfd;
    epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->evfd, &e);
    e.data.fd = s->tfd;
    epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->tfd, &e);
    cudp_t *own[] = {s->udp, s->bs_udp};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) {
        if (own[i]) {
            e.data.fd = cudp_fd(own[i]);
            epoll_ctl(s->epfd, EPOLL_CTL_ADD, e.data.fd, &e);
        }
    }
    *out = s;
    return 0;
fail:
    lwdm_server_close(&s);
    return -1;
}

int lwdm_server_run(lwdm_server_t *s)
{
    int cfd = coap_context_get_coap_fd(s->coap);
    struct epoll_event evs[16];
    while (!atomic_load(&s->stop)) {
        int64_t now = mono_ms();
        int timeout = 1000;
        int64_t next = timer_heap_next(&s->timers);
        if (next >= 0)
            timeout = next <= now ? 0 : (int)(next - now < 1000 ? next - now : 1000);
        int64_t ht = http_client_timeout_ms(s->http, now);
        if (ht >= 0 && ht < timeout)
            timeout = (int)ht;
        int n = epoll_wait(s->epfd, evs, 16, timeout);
        struct timespec busy0;
        clock_gettime(CLOCK_MONOTONIC, &busy0);
        if (n < 0 && errno != EINTR) {
            LOGE("server", "event=epoll-failed err=\"%s\"", strerror(errno));
            return -1;
        }
        bool io = false, tick = false, uio = false, buio = false;
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == cfd) {
                io = true;
            } else if (s->udp && fd == cudp_fd(s->udp)) {
                uio = true;
            } else if (s->bs_udp && fd == cudp_fd(s->bs_udp)) {
                buio = true;
            } else if (fd == s->tfd) {
                uint64_t x;
                ssize_t r = read(s->tfd, &x, sizeof x);
                (void)r;
                tick = true;
            } else if (fd == s->evfd) {
                uint64_t x;
                ssize_t r = read(s->evfd, &x, sizeof x);
                (void)r;
            } else if (http_client_owns_fd(s->http, fd)) {
                http_client_on_fd(s->http, fd, evs[i].events);
            }
        }
        if (tick) /* the timer fix of LIBCOAP.md "Bug", cache expiry, async */
            coap_io_process(s->coap, COAP_IO_NO_WAIT);
        if (io)
            coap_drain(s, cfd);
        if (uio)
            cudp_read(s->udp);
        if (buio)
            cudp_read(s->bs_udp);
        timer_heap_run(&s->timers, mono_ms());
        http_client_on_timer(s->http, mono_ms());
        bs_server_after_io(s->bs);
        rd_after_io(s->rd);
        if (s->udp) /* the pass's answers and requests, in one system call */
            cudp_flush(s->udp);
        if (s->bs_udp)
            cudp_flush(s->bs_udp);
        if (mono_ms() - s->gauges_at_ms >= 1000) {
            s->gauges_at_ms = mono_ms();
            metrics_set_registered(rd_count(s->rd), rd_count_online(s->rd));
        }
        struct timespec busy1;
        clock_gettime(CLOCK_MONOTONIC, &busy1);
        metrics_loop_busy_ns((uint64_t)((busy1.tv_sec - busy0.tv_sec) * 1000000000LL + (busy1.tv_nsec - busy0.tv_nsec)));
        atomic_store(&s->last_pass_ms, mono_ms());
    }
    return 0;
}

void lwdm_server_stop(lwdm_server_t *s)
{
    atomic_store(&s->stop, 1);
    uint64_t one = 1;
    ssize_t w = write(s->evfd, &one, sizeof one);
    (void)w;
}

void lwdm_server_close(lwdm_server_t **sp)
{
    lwdm_server_t *s = sp ? *sp : NULL;
    if (!s)
        return;
    if (s->rd)
        rd_cancel_ops(s->rd); /* no HTTP connection may stay suspended */
    if (s->api)
        api_stop(&s->api);
    if (s->rd)
        rd_free(&s->rd);
    cudp_free(&s->udp); /* after rd: it holds peers */
    if (s->bs)
        bs_server_free(&s->bs);
    cudp_free(&s->bs_udp); /* after bs: its conns hold peers */
    http_client_free(&s->http);
    if (s->coap) {
        ctx_map_set(s->coap, NULL);
        coap_free_context(s->coap);
        s->coap = NULL;
    }
    timer_heap_free(&s->timers);
    if (s->epfd >= 0)
        close(s->epfd);
    if (s->evfd >= 0)
        close(s->evfd);
    if (s->tfd >= 0)
        close(s->tfd);
    lwm2m_registry_free(&s->reg);
    db_close(&s->db);
    events_free(&s->events); /* last: everything above may publish until freed */
    sodium_memzero(s->key, sizeof s->key);
    free(s);
    *sp = NULL;
}

uint16_t lwdm_server_http_port(const lwdm_server_t *s) { return s->http_port; }
uint16_t lwdm_server_bs_coap_port(const lwdm_server_t *s) { return s->bs_coap_port; }
uint16_t lwdm_server_bs_coaps_port(const lwdm_server_t *s) { return s->bs_coaps_port; }
uint16_t lwdm_server_coap_port(const lwdm_server_t *s) { return s->coap_port; }
uint16_t lwdm_server_coaps_port(const lwdm_server_t *s) { return s->coaps_port; }
bool lwdm_server_tcp(const lwdm_server_t *s) { return s->tcp; }
bool lwdm_server_tls(const lwdm_server_t *s) { return s->tls; }
const char *lwdm_server_generated_password(const lwdm_server_t *s) { return s->gen_pw[0] ? s->gen_pw : NULL; }
struct events *lwdm_server_events(const lwdm_server_t *s) { return s->events; }
