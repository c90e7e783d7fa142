/* lwdm's own CoAP-over-UDP endpoint: see coap_udp.h for what and why.
 *
 * State per peer (struct cudp_peer): its address, a reference count, the
 * owner's pointer, the last CON request's message id and answer (for
 * deduplication), the last CON response's message id (to ACK a repeat
 * without handling it twice), the queue of our confirmable messages (the
 * head one in flight, retransmitted by the peer's timer), the exchanges of
 * our requests (a template to repeat for the next Block1/Block2 block), and a
 * Block1 reassembly of an incoming request. A peer nobody references and
 * with nothing under way sits on the idle list (least recently used first)
 * until it is too old or too many are idle. */
#include "server/coap_udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <sodium.h>
#include <unistd.h>

#include "server/common/log.h"
#include "server/config.h"

#define MAX_DGRAM 4096         /* bigger datagrams are dropped (we ask for 1,024-byte blocks) */
#define RX_BATCH 32
#define TX_BATCH 64            /* datagrams queued for one sendmmsg() */
#define TX_BYTES (64 * 1024)   /* ... and their bytes */
#define BLOCK_SZX 6            /* 1,024-byte blocks */
#define BLOCK_SIZE 1024
#define MAX_BODY (256 * 1024)  /* reassembled Block2 response */
#define MAX_REQ_BODY (16 * 1024) /* reassembled Block1 request (a Register's links); kept per idle peer */
#define MAX_RETRANSMIT 4
#define MAX_XCHG 4             /* our requests awaiting a (block-wise) answer, per peer */
#define RESP_CAP 1280
#define MAX_MESSAGE 1152       /* RFC 7252 4.6: larger requests without Block1 get 4.13 (libcoap drops them) */

typedef struct {
    socklen_t len;
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } u;
} addr_t;

typedef struct xmit {          /* a confirmable message of ours waiting for its ACK */
    struct xmit *next;
    coap_mid_t mid;
    int retries;
    unsigned timeout_ms;
    size_t len;
    uint8_t data[];
} xmit_t;

typedef struct xchg {          /* a request of ours: what to repeat for the next block */
    struct xchg *next;
    uint8_t tok[8];
    uint8_t tkl;
    coap_mid_t mid0;           /* the id its sender was given (a failure of any block is reported with it) */
    uint8_t *tmpl;             /* the request encoded without payload and block options */
    size_t tlen;
    uint8_t *body;             /* the request payload (Block1: all of it), or NULL */
    size_t blen;
    size_t boff;               /* Block1: bytes acknowledged so far */
    size_t lastn;              /* Block1: bytes in the block in flight */
    bool block1;
    uint8_t *acc;              /* Block2: the response body so far */
    size_t alen;
    coap_pdu_t *first;         /* Block2: the first block's response (its options are the answer's) */
} xchg_t;

struct cudp_peer {
    cudp_t *u;
    cudp_peer_t *hnext;        /* hash chain */
    cudp_peer_t *iprev, *inext;/* idle list */
    bool idle;
    int refs;
    void *app;
    addr_t addr;
    uint16_t next_mid;
    int32_t last_req_mid;      /* -1 none */
    uint8_t *last_resp;
    size_t last_resp_len;
    int32_t last_rsp_mid;      /* last CON response from the peer; -1 none */
    bool last_rsp_acked;
    int64_t idle_since;
    xmit_t *q_head, *q_tail;
    lwdm_timer_t rtx;
    xchg_t *xchgs;
    uint8_t *b1;               /* incoming Block1 request being reassembled */
    size_t b1len;
    unsigned b1next;
};

struct cudp {
    cudp_config_t cfg;
    int fd;
    cudp_peer_t **buckets;
    size_t nbuckets, npeers;
    cudp_peer_t *idle_head, *idle_tail;
    size_t nidle;
    int64_t now;
    uint64_t rnd;
    lwdm_timer_t sweep;
    uint8_t (*rx)[MAX_DGRAM];
    uint8_t tx[MAX_DGRAM];
    /* datagrams waiting for cudp_flush() */
    struct {
        addr_t to;
        size_t off, len;
    } txq[TX_BATCH];
    size_t ntx, txused;
    uint8_t *txbuf;            /* TX_BYTES */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t rnd32(cudp_t *u)
{
    u->rnd ^= u->rnd << 13;
    u->rnd ^= u->rnd >> 7;
    u->rnd ^= u->rnd << 17;
    return (uint32_t)(u->rnd >> 16);
}

/* ------------------------------------------------------------------ encode */
static bool is_block_option(uint16_t n)
{
    return n == COAP_OPTION_BLOCK1 || n == COAP_OPTION_BLOCK2 || n == COAP_OPTION_SIZE1 || n == COAP_OPTION_SIZE2;
}

/* blocks false: a template for later blocks, without the block options and
 * Observe (those blocks are plain requests, RFC 7959 2.4) */
static size_t encode(const coap_pdu_t *pdu, uint8_t *buf, size_t cap, bool payload, bool blocks)
{
    coap_bin_const_t tok = coap_pdu_get_token(pdu);
    if (tok.length > 8 || cap < 4 + tok.length)
        return 0;
    buf[0] = (uint8_t)(0x40 | ((unsigned)coap_pdu_get_type(pdu) << 4) | tok.length);
    buf[1] = (uint8_t)coap_pdu_get_code(pdu);
    coap_mid_t mid = coap_pdu_get_mid(pdu);
    buf[2] = (uint8_t)(mid >> 8);
    buf[3] = (uint8_t)mid;
    if (tok.length)
        memcpy(buf + 4, tok.s, tok.length);
    size_t o = 4 + tok.length;
    coap_opt_iterator_t it;
    coap_option_iterator_init(pdu, &it, COAP_OPT_ALL);
    coap_opt_t *opt;
    uint16_t last = 0;
    while ((opt = coap_option_next(&it))) {
        if (!blocks && (is_block_option(it.number) || it.number == COAP_OPTION_OBSERVE))
            continue;
        size_t n = coap_opt_encode((coap_opt_t *)(buf + o), cap - o, (uint16_t)(it.number - last), coap_opt_value(opt),
                                   coap_opt_length(opt));
        if (!n)
            return 0;
        o += n;
        last = it.number;
    }
    size_t dlen;
    const uint8_t *d;
    if (payload && coap_get_data(pdu, &dlen, &d) && dlen) {
        if (o + 1 + dlen > cap)
            return 0;
        buf[o++] = 0xff;
        memcpy(buf + o, d, dlen);
        o += dlen;
    }
    return o;
}

size_t cudp_encode(const coap_pdu_t *pdu, uint8_t *buf, size_t cap) { return encode(pdu, buf, cap, true, true); }

/* cap: the PDU's max_size; coap_pdu_parse leaves no room to add to it otherwise */
static coap_pdu_t *parse_cap(const uint8_t *data, size_t len, size_t cap)
{
    coap_pdu_t *pdu = coap_pdu_init(0, 0, 0, cap > len ? cap : len);
    if (pdu && !coap_pdu_parse(COAP_PROTO_UDP, data, len, pdu)) {
        coap_delete_pdu(pdu);
        return NULL;
    }
    return pdu;
}

static coap_pdu_t *parse(const uint8_t *data, size_t len) { return parse_cap(data, len, len); }

static void add_uint_option(coap_pdu_t *pdu, uint16_t num, unsigned v)
{
    uint8_t b[4];
    coap_add_option(pdu, num, coap_encode_var_safe(b, sizeof b, v), b);
}

/* ------------------------------------------------------------------- peers */
static uint64_t addr_hash(const addr_t *a)
{
    uint64_t h = 1469598103934665603ULL;
    const uint8_t *p;
    size_t n;
    uint16_t port;
    if (a->u.sa.sa_family == AF_INET) {
        p = (const uint8_t *)&a->u.in.sin_addr;
        n = 4;
        port = a->u.in.sin_port;
    } else {
        p = (const uint8_t *)&a->u.in6.sin6_addr;
        n = 16;
        port = a->u.in6.sin6_port;
    }
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    h = (h ^ (port & 0xff)) * 1099511628211ULL;
    h = (h ^ (port >> 8)) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static bool addr_eq(const addr_t *a, const addr_t *b)
{
    if (a->u.sa.sa_family != b->u.sa.sa_family)
        return false;
    if (a->u.sa.sa_family == AF_INET)
        return a->u.in.sin_port == b->u.in.sin_port && a->u.in.sin_addr.s_addr == b->u.in.sin_addr.s_addr;
    return a->u.in6.sin6_port == b->u.in6.sin6_port &&
           !memcmp(&a->u.in6.sin6_addr, &b->u.in6.sin6_addr, sizeof a->u.in6.sin6_addr);
}

static int addr_from(addr_t *a, const struct sockaddr *sa, socklen_t len)
{
    memset(a, 0, sizeof *a);
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        memcpy(&a->u.in, sa, sizeof a->u.in);
        a->len = sizeof a->u.in;
        return 0;
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        memcpy(&a->u.in6, sa, sizeof a->u.in6);
        a->u.in6.sin6_flowinfo = 0;
        a->len = sizeof a->u.in6;
        return 0;
    }
    return -1;
}

static void addr_name(const addr_t *a, char *buf, size_t cap)
{
    if (!cap)
        return;
    char ip[INET6_ADDRSTRLEN] = "?";
    if (a->u.sa.sa_family == AF_INET) {
        inet_ntop(AF_INET, &a->u.in.sin_addr, ip, sizeof ip);
        snprintf(buf, cap, "%s:%u", ip, ntohs(a->u.in.sin_port));
    } else {
        inet_ntop(AF_INET6, &a->u.in6.sin6_addr, ip, sizeof ip);
        snprintf(buf, cap, "[%s]:%u", ip, ntohs(a->u.in6.sin6_port));
    }
}

static void idle_unlink(cudp_t *u, cudp_peer_t *p)
{
    if (!p->idle)
        return;
    if (p->iprev)
        p->iprev->inext = p->inext;
    else
        u->idle_head = p->inext;
    if (p->inext)
        p->inext->iprev = p->iprev;
    else
        u->idle_tail = p->iprev;
    p->iprev = p->inext = NULL;
    p->idle = false;
    u->nidle--;
}

/* Something under way that keeps a peer nobody references: only our message
 * in flight. A half-received Block1 request, or an exchange whose answer
 * never came, expires with the peer. */
static bool busy(const cudp_peer_t *p) { return p->refs > 0 || p->q_head; }

static void xchg_free(xchg_t *x)
{
    free(x->tmpl);
    free(x->body);
    free(x->acc);
    if (x->first)
        coap_delete_pdu(x->first);
    free(x);
}

static void peer_free(cudp_t *u, cudp_peer_t *p)
{
    idle_unlink(u, p);
    size_t b = addr_hash(&p->addr) & (u->nbuckets - 1);
    for (cudp_peer_t **pp = &u->buckets[b]; *pp; pp = &(*pp)->hnext)
        if (*pp == p) {
            *pp = p->hnext;
            break;
        }
    u->npeers--;
    timer_stop(u->cfg.timers, &p->rtx);
    for (xmit_t *x = p->q_head, *n; x; x = n) {
        n = x->next;
        free(x);
    }
    for (xchg_t *x = p->xchgs, *n; x; x = n) {
        n = x->next;
        xchg_free(x);
    }
    free(p->b1);
    free(p->last_resp);
    free(p);
}

/* Puts a peer with nothing under way on the idle list (or back at its end). */
static void settle(cudp_peer_t *p)
{
    cudp_t *u = p->u;
    idle_unlink(u, p);
    if (busy(p))
        return;
    p->idle = true;
    p->idle_since = u->now;
    p->iprev = u->idle_tail;
    if (u->idle_tail)
        u->idle_tail->inext = p;
    else
        u->idle_head = p;
    u->idle_tail = p;
    u->nidle++;
}

static void sweep(cudp_t *u)
{
    int64_t max_age = (int64_t)(u->cfg.idle_s ? u->cfg.idle_s : 247) * 1000;
    size_t max_n = u->cfg.idle_peers_max ? u->cfg.idle_peers_max : 4096;
    while (u->idle_head && (u->nidle > max_n || u->now - u->idle_head->idle_since >= max_age))
        peer_free(u, u->idle_head);
}

static void sweep_fired(lwdm_timer_t *t, void *arg)
{
    cudp_t *u = arg;
    u->now = mono_ms();
    sweep(u);
    timer_start(u->cfg.timers, t, u->now + 10000);
}

static void rtx_fired(lwdm_timer_t *t, void *arg);

static int grow(cudp_t *u)
{
    size_t nb = u->nbuckets ? u->nbuckets * 2 : 1024;
    cudp_peer_t **nbk = calloc(nb, sizeof *nbk);
    if (!nbk)
        return -1;
    for (size_t i = 0; i < u->nbuckets; i++)
        for (cudp_peer_t *p = u->buckets[i], *n; p; p = n) {
            n = p->hnext;
            size_t b = addr_hash(&p->addr) & (nb - 1);
            p->hnext = nbk[b];
            nbk[b] = p;
        }
    free(u->buckets);
    u->buckets = nbk;
    u->nbuckets = nb;
    return 0;
}

static cudp_peer_t *peer_find(cudp_t *u, const addr_t *a, bool create)
{
    size_t b = addr_hash(a) & (u->nbuckets - 1);
    for (cudp_peer_t *p = u->buckets[b]; p; p = p->hnext)
        if (addr_eq(&p->addr, a))
            return p;
    if (!create)
        return NULL;
    if (u->npeers >= u->nbuckets && grow(u) == 0)
        b = addr_hash(a) & (u->nbuckets - 1);
    cudp_peer_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->u = u;
    p->addr = *a;
    p->next_mid = (uint16_t)rnd32(u);
    p->last_req_mid = -1;
    p->last_rsp_mid = -1;
    timer_init(&p->rtx, rtx_fired, p);
    p->hnext = u->buckets[b];
    u->buckets[b] = p;
    u->npeers++;
    return p;
}

cudp_peer_t *cudp_peer_ref(cudp_peer_t *p)
{
    p->refs++;
    idle_unlink(p->u, p);
    return p;
}

void cudp_peer_unref(cudp_peer_t *p)
{
    if (!p)
        return;
    p->refs--;
    settle(p);
}

void *cudp_peer_app_data(const cudp_peer_t *p) { return p->app; }
void cudp_peer_set_app_data(cudp_peer_t *p, void *data) { p->app = data; }
void cudp_peer_addr(const cudp_peer_t *p, char *buf, size_t cap) { addr_name(&p->addr, buf, cap); }

/* the peer's address for a log line (loop thread only) */
static const char *pname(const cudp_peer_t *p)
{
    static char buf[INET6_ADDRSTRLEN + 10];
    addr_name(&p->addr, buf, sizeof buf);
    return buf;
}
size_t cudp_peer_count(const cudp_t *u) { return u->npeers; }

cudp_peer_t *cudp_peer_at(cudp_t *u, const char *ipport)
{
    char host[INET6_ADDRSTRLEN];
    int port = 0;
    if (lwdm_config_parse_hostport(ipport, host, sizeof host, &port) != 0 || port <= 0 || !strchr(ipport, ':'))
        return NULL;
    addr_t a;
    memset(&a, 0, sizeof a);
    bool v6 = ipport[0] == '['; /* IPv6 in brackets only, as addr_name() writes it */
    if (!v6 && inet_pton(AF_INET, host, &a.u.in.sin_addr) == 1) {
        a.u.in.sin_family = AF_INET;
        a.u.in.sin_port = htons((uint16_t)port);
        a.len = sizeof a.u.in;
    } else if (v6 && inet_pton(AF_INET6, host, &a.u.in6.sin6_addr) == 1) {
        a.u.in6.sin6_family = AF_INET6;
        a.u.in6.sin6_port = htons((uint16_t)port);
        a.len = sizeof a.u.in6;
    } else {
        return NULL;
    }
    u->now = mono_ms();
    cudp_peer_t *p = peer_find(u, &a, true);
    return p ? cudp_peer_ref(p) : NULL;
}

/* -------------------------------------------------------------------- send */
/* A datagram to the peer. With a socket it is queued: cudp_flush() sends the
 * queue with one sendmmsg() after each received batch, at the end of the loop
 * pass, and when it is full: one system call for many answers. */
static void send_raw(cudp_t *u, const cudp_peer_t *p, const uint8_t *d, size_t n)
{
    if (u->cfg.send) {
        if (u->cfg.send(u->cfg.send_arg, &p->addr.u.sa, p->addr.len, d, n) != 0) {
            int e = errno;
            LOGD("coap", "event=send-failed peer=%s err=\"%s\"", pname(p), strerror(e));
        }
        return;
    }
    if (n > TX_BYTES)
        return; /* never: messages are encoded into MAX_DGRAM bytes */
    if (u->ntx == TX_BATCH || u->txused + n > TX_BYTES)
        cudp_flush(u);
    memcpy(u->txbuf + u->txused, d, n);
    u->txq[u->ntx].to = p->addr;
    u->txq[u->ntx].off = u->txused;
    u->txq[u->ntx].len = n;
    u->ntx++;
    u->txused += n;
}

void cudp_flush(cudp_t *u)
{
    if (!u->ntx)
        return; /* also without a socket (cfg.send): nothing is ever queued */
    struct mmsghdr m[TX_BATCH];
    struct iovec iov[TX_BATCH];
    size_t n = u->ntx;
    for (size_t i = 0; i < n; i++) {
        iov[i].iov_base = u->txbuf + u->txq[i].off;
        iov[i].iov_len = u->txq[i].len;
        memset(&m[i], 0, sizeof m[i]);
        m[i].msg_hdr.msg_name = &u->txq[i].to.u.sa;
        m[i].msg_hdr.msg_namelen = u->txq[i].to.len;
        m[i].msg_hdr.msg_iov = &iov[i];
        m[i].msg_hdr.msg_iovlen = 1;
    }
    size_t i = 0;
    while (i < n) {
        int k = sendmmsg(u->fd, m + i, (unsigned)(n - i), 0);
        if (k > 0) {
            i += (size_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
        /* the first datagram left failed (sendmmsg reports it on the next
         * call after a partial send): dropped, as a lost datagram would be */
        int e = errno;
        char a[64];
        addr_name(&u->txq[i].to, a, sizeof a);
        LOGD("coap", "event=send-failed peer=%s err=\"%s\"", a, strerror(e));
        i++;
    }
    u->ntx = 0;
    u->txused = 0;
}

static void send_empty(cudp_t *u, cudp_peer_t *p, coap_pdu_type_t type, coap_mid_t mid)
{
    uint8_t b[4] = {(uint8_t)(0x40 | (type << 4)), 0, (uint8_t)(mid >> 8), (uint8_t)mid};
    send_raw(u, p, b, 4);
}

static void arm(cudp_peer_t *p)
{
    timer_start(p->u->cfg.timers, &p->rtx, p->u->now + p->q_head->timeout_ms);
}

/* Queues an encoded CON message; sent now when nothing else is in flight. */
static int queue_con(cudp_peer_t *p, coap_mid_t mid, const uint8_t *d, size_t n)
{
    cudp_t *u = p->u;
    xmit_t *x = malloc(sizeof *x + n);
    if (!x)
        return -1;
    x->next = NULL;
    x->mid = mid;
    x->retries = 0;
    unsigned base = u->cfg.ack_timeout_ms ? u->cfg.ack_timeout_ms : 2000;
    x->timeout_ms = base + (unsigned)(rnd32(u) % (base / 2 + 1));
    x->len = n;
    memcpy(x->data, d, n);
    bool first = !p->q_head;
    if (p->q_tail)
        p->q_tail->next = x;
    else
        p->q_head = x;
    p->q_tail = x;
    idle_unlink(u, p);
    if (first) {
        send_raw(u, p, x->data, x->len);
        arm(p);
    }
    return 0;
}

/* The head message is done (ACK, RST or given up): the next one goes. */
static void dequeue(cudp_peer_t *p)
{
    xmit_t *x = p->q_head;
    if (!x)
        return;
    p->q_head = x->next;
    if (!p->q_head)
        p->q_tail = NULL;
    free(x);
    timer_stop(p->u->cfg.timers, &p->rtx);
    if (p->q_head) {
        send_raw(p->u, p, p->q_head->data, p->q_head->len);
        arm(p);
    }
}

static xchg_t *xchg_find(cudp_peer_t *p, const uint8_t *tok, size_t tkl, bool unlink)
{
    for (xchg_t **xp = &p->xchgs; *xp; xp = &(*xp)->next)
        if ((*xp)->tkl == tkl && !memcmp((*xp)->tok, tok, tkl)) {
            xchg_t *x = *xp;
            if (unlink)
                *xp = x->next;
            return x;
        }
    return NULL;
}

static void xchg_drop(cudp_peer_t *p, const uint8_t *tok, size_t tkl)
{
    xchg_t *x = xchg_find(p, tok, tkl, true);
    if (x)
        xchg_free(x);
}

/* The head message failed (RST, or no ACK): its exchange ends, and the sender
 * hears of it under the message id it was given. */
static void fail_head(cudp_peer_t *p, const char *why)
{
    cudp_t *u = p->u;
    xmit_t *h = p->q_head;
    coap_mid_t mid = h->mid;
    uint8_t tkl = h->data[0] & 0x0f;
    if (tkl > 8)
        tkl = 0;
    uint8_t tok[8];
    memcpy(tok, h->data + 4, tkl);
    cudp_peer_ref(p);
    dequeue(p);
    xchg_t *x = xchg_find(p, tok, tkl, true);
    if (x) {
        mid = x->mid0;
        xchg_free(x);
    }
    if (u->cfg.h.on_nack)
        u->cfg.h.on_nack(u->cfg.h.arg, p, mid, why);
    cudp_peer_unref(p);
}

static void rtx_fired(lwdm_timer_t *t, void *arg)
{
    (void)t;
    cudp_peer_t *p = arg;
    cudp_t *u = p->u;
    u->now = mono_ms();
    xmit_t *x = p->q_head;
    if (!x)
        return;
    if (x->retries >= MAX_RETRANSMIT) {
        fail_head(p, "no answer (retransmissions exhausted)");
        return;
    }
    x->retries++;
    x->timeout_ms *= 2;
    send_raw(u, p, x->data, x->len);
    arm(p);
}

coap_pdu_t *cudp_new_request(cudp_peer_t *p, coap_pdu_code_t code)
{
    return coap_pdu_init(COAP_MESSAGE_CON, code, p->next_mid++, RESP_CAP);
}

/* Sends the block of x's Block1 body starting at x->boff (or, with block2 >=
 * 0, the request again for that Block2 block), with message id `mid`
 * (COAP_INVALID_MID: the peer's next one). */
static coap_mid_t send_next(cudp_peer_t *p, xchg_t *x, int block2, unsigned szx, coap_mid_t mid)
{
    coap_pdu_t *pdu = parse_cap(x->tmpl, x->tlen, x->tlen + 16 + (x->body ? x->blen : 0)); /* + Block, Size1, body */
    if (!pdu)
        return COAP_INVALID_MID;
    if (mid == COAP_INVALID_MID)
        mid = p->next_mid++;
    coap_pdu_set_mid(pdu, mid);
    size_t bs = (size_t)1 << (szx + 4);
    if (x->block1 && block2 < 0) {
        size_t n = x->blen - x->boff < bs ? x->blen - x->boff : bs;
        bool more = x->boff + n < x->blen;
        x->lastn = n;
        add_uint_option(pdu, COAP_OPTION_BLOCK1, (unsigned)((x->boff / bs) << 4 | (more ? 8u : 0u) | szx));
        if (x->boff == 0)
            add_uint_option(pdu, COAP_OPTION_SIZE1, (unsigned)x->blen);
        if (!coap_add_data(pdu, n, x->body + x->boff)) {
            coap_delete_pdu(pdu);
            return COAP_INVALID_MID;
        }
    } else {
        add_uint_option(pdu, COAP_OPTION_BLOCK2, (unsigned)block2 << 4 | szx);
        if (x->body && !x->block1 && !coap_add_data(pdu, x->blen, x->body)) {
            coap_delete_pdu(pdu);
            return COAP_INVALID_MID;
        }
    }
    size_t n = encode(pdu, p->u->tx, sizeof p->u->tx, true, true);
    coap_delete_pdu(pdu);
    if (!n || queue_con(p, mid, p->u->tx, n) != 0)
        return COAP_INVALID_MID;
    return mid;
}

/* The exchange of a confirmable request: its template (for later blocks),
 * its payload (all of a Block1 body, or the payload a FETCH repeats). */
static xchg_t *xchg_new(cudp_t *u, const coap_pdu_t *pdu, coap_mid_t mid, const uint8_t *body, size_t len)
{
    xchg_t *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    coap_bin_const_t tok = coap_pdu_get_token(pdu);
    x->tkl = (uint8_t)tok.length;
    memcpy(x->tok, tok.s, tok.length);
    x->mid0 = mid;
    x->block1 = body != NULL;
    size_t tn = encode(pdu, u->tx, sizeof u->tx, false, false);
    if (!body)
        coap_get_data(pdu, &len, &body);
    x->tmpl = tn ? malloc(tn) : NULL;
    x->body = body && len ? malloc(len) : NULL;
    if (!x->tmpl || (body && len && !x->body)) {
        xchg_free(x);
        return NULL;
    }
    memcpy(x->tmpl, u->tx, tn);
    x->tlen = tn;
    if (x->body)
        memcpy(x->body, body, len);
    x->blen = x->body ? len : 0;
    return x;
}

/* Adds x to the peer's exchanges: one with the same token is over, and the
 * oldest goes when MAX_XCHG never got their answer. */
static void xchg_add(cudp_peer_t *p, xchg_t *x)
{
    xchg_drop(p, x->tok, x->tkl);
    size_t nx = 0;
    xchg_t **last = &p->xchgs;
    for (xchg_t *e = p->xchgs; e; e = e->next)
        nx++;
    if (nx >= MAX_XCHG) {
        while ((*last)->next)
            last = &(*last)->next;
        xchg_free(*last);
        *last = NULL;
    }
    x->next = p->xchgs;
    p->xchgs = x;
}

coap_mid_t cudp_send(cudp_peer_t *p, coap_pdu_t *pdu, const uint8_t *body, size_t len)
{
    cudp_t *u = p->u;
    u->now = mono_ms();
    coap_mid_t mid = coap_pdu_get_mid(pdu);
    bool con = coap_pdu_get_type(pdu) == COAP_MESSAGE_CON;
    bool block1 = con && coap_pdu_get_token(pdu).length <= 8 && body && len > BLOCK_SIZE;
    if (body && len && !block1 && !coap_add_data(pdu, len, body)) {
        coap_delete_pdu(pdu);
        return COAP_INVALID_MID;
    }
    xchg_t *x = NULL;
    if (con && coap_pdu_get_token(pdu).length <= 8) {
        /* remembered so that a block-wise answer can be followed up */
        x = xchg_new(u, pdu, mid, block1 ? body : NULL, len);
        if (!x) {
            coap_delete_pdu(pdu);
            return COAP_INVALID_MID;
        }
        xchg_add(p, x);
    }
    if (block1) {
        coap_delete_pdu(pdu);
        return send_next(p, x, -1, BLOCK_SZX, mid);
    }
    size_t n = encode(pdu, u->tx, sizeof u->tx, true, true);
    coap_delete_pdu(pdu);
    if (n && !con) {
        send_raw(u, p, u->tx, n);
        return mid;
    }
    if (n && queue_con(p, mid, u->tx, n) == 0)
        return mid;
    if (x)
        xchg_drop(p, x->tok, x->tkl);
    return COAP_INVALID_MID;
}

/* ---------------------------------------------------------------- receive */
static void reply(cudp_t *u, cudp_peer_t *p, const coap_pdu_t *req, coap_pdu_t *resp, bool con)
{
    if (coap_pdu_get_code(resp) == 0)
        coap_pdu_set_code(resp, COAP_RESPONSE_CODE(500));
    size_t n = encode(resp, u->tx, sizeof u->tx, true, true);
    if (!n) { /* the handler's answer does not fit: say so instead */
        coap_pdu_t *e = coap_pdu_init(coap_pdu_get_type(resp), COAP_RESPONSE_CODE(500), coap_pdu_get_mid(resp), 64);
        coap_bin_const_t tok = coap_pdu_get_token(req);
        if (!e)
            return;
        coap_add_token(e, tok.length, tok.s);
        n = encode(e, u->tx, sizeof u->tx, true, true);
        coap_delete_pdu(e);
    }
    send_raw(u, p, u->tx, n);
    if (con) {
        uint8_t *c = realloc(p->last_resp, n);
        if (c) {
            memcpy(c, u->tx, n);
            p->last_resp = c;
            p->last_resp_len = n;
            p->last_req_mid = coap_pdu_get_mid(req);
        }
    }
}

static coap_pdu_t *new_response(const coap_pdu_t *req, bool con, cudp_peer_t *p)
{
    coap_pdu_t *resp = coap_pdu_init(con ? COAP_MESSAGE_ACK : COAP_MESSAGE_NON, 0,
                                     con ? coap_pdu_get_mid(req) : p->next_mid++, RESP_CAP);
    if (resp) {
        coap_bin_const_t tok = coap_pdu_get_token(req);
        coap_add_token(resp, tok.length, tok.s);
    }
    return resp;
}

/* A copy of `src` (type, code, token, options but block ones) with `len`
 * bytes of `body` as its payload. */
static coap_pdu_t *rebuild(const coap_pdu_t *src, const uint8_t *body, size_t len)
{
    coap_pdu_t *pdu = coap_pdu_init(coap_pdu_get_type(src), coap_pdu_get_code(src), coap_pdu_get_mid(src), len + 1024);
    if (!pdu)
        return NULL;
    coap_bin_const_t tok = coap_pdu_get_token(src);
    coap_add_token(pdu, tok.length, tok.s);
    coap_opt_iterator_t it;
    coap_option_iterator_init(src, &it, COAP_OPT_ALL);
    coap_opt_t *opt;
    while ((opt = coap_option_next(&it)))
        if (!is_block_option(it.number))
            coap_add_option(pdu, it.number, coap_opt_length(opt), coap_opt_value(opt));
    if (len && !coap_add_data(pdu, len, body)) {
        coap_delete_pdu(pdu);
        return NULL;
    }
    return pdu;
}

/* The first critical (odd) option this endpoint does not know, or 0
 * (RFC 7252 5.4.1: a request with one gets 4.02, a response is rejected). */
static unsigned unknown_critical(const coap_pdu_t *pdu)
{
    coap_opt_iterator_t it;
    coap_option_iterator_init(pdu, &it, COAP_OPT_ALL);
    while (coap_option_next(&it)) {
        switch (it.number) {
        case COAP_OPTION_IF_MATCH:
        case COAP_OPTION_URI_HOST:
        case COAP_OPTION_IF_NONE_MATCH:
        case COAP_OPTION_URI_PORT:
        case COAP_OPTION_URI_PATH:
        case COAP_OPTION_URI_QUERY:
        case COAP_OPTION_ACCEPT:
        case COAP_OPTION_BLOCK2:
        case COAP_OPTION_BLOCK1:
        case COAP_OPTION_PROXY_URI:
        case COAP_OPTION_PROXY_SCHEME:
            break;
        default:
            if (it.number & 1)
                return it.number;
        }
    }
    return 0;
}

int cudp_response_body(const coap_pdu_t *req, coap_pdu_t *resp, int cf, const uint8_t *body, size_t len)
{
    coap_block_t b2 = {0};
    bool asked = coap_get_block(req, COAP_OPTION_BLOCK2, &b2);
    unsigned szx = asked && b2.szx < BLOCK_SZX ? b2.szx : BLOCK_SZX;
    size_t bsz = (size_t)1 << (szx + 4);
    unsigned num = asked ? b2.num : 0;
    if ((size_t)num * bsz >= len && !(num == 0 && len == 0)) {
        coap_pdu_set_code(resp, COAP_RESPONSE_CODE(402)); /* no such block */
        return -1;
    }
    if (cf >= 0)
        add_uint_option(resp, COAP_OPTION_CONTENT_FORMAT, (unsigned)cf);
    if (!asked && len <= bsz)
        return coap_add_data(resp, len, body) ? 0 : -1;
    size_t off = (size_t)num * bsz, n = len - off < bsz ? len - off : bsz;
    bool more = off + n < len;
    add_uint_option(resp, COAP_OPTION_BLOCK2, num << 4 | (more ? 8u : 0u) | szx);
    if (num == 0)
        add_uint_option(resp, COAP_OPTION_SIZE2, (unsigned)len);
    if (n && !coap_add_data(resp, n, body + off))
        return -1;
    return (int)num;
}

static void b1_reset(cudp_peer_t *p)
{
    free(p->b1);
    p->b1 = NULL;
    p->b1len = 0;
    p->b1next = 0;
}

static void on_request(cudp_t *u, cudp_peer_t *p, const coap_pdu_t *req, size_t msglen)
{
    bool con = coap_pdu_get_type(req) == COAP_MESSAGE_CON;
    if (con && p->last_req_mid == coap_pdu_get_mid(req) && p->last_resp) {
        send_raw(u, p, p->last_resp, p->last_resp_len); /* a repeat: the same answer, not handled twice */
        return;
    }
    coap_pdu_t *resp = new_response(req, con, p);
    if (!resp)
        return;
    coap_block_t b1;
    coap_opt_iterator_t oi;
    coap_opt_t *b1opt = coap_check_option(req, COAP_OPTION_BLOCK1, &oi);
    unsigned bad = unknown_critical(req);
    if (bad || coap_check_option(req, COAP_OPTION_PROXY_URI, &(coap_opt_iterator_t){0}) ||
        coap_check_option(req, COAP_OPTION_PROXY_SCHEME, &(coap_opt_iterator_t){0})) {
        char msg[48];
        snprintf(msg, sizeof msg, bad ? "unknown critical option %u" : "not a proxy", bad);
        coap_pdu_set_code(resp, bad ? COAP_RESPONSE_CODE(402) : COAP_RESPONSE_CODE(505));
        coap_add_data(resp, strlen(msg), (const uint8_t *)msg);
        LOGD("coap", "event=request-refused peer=%s reason=\"%s\"", pname(p), msg);
    } else if (msglen > MAX_MESSAGE && !b1opt) {
        /* a larger body goes block-wise: Block1 says the block size we
         * prefer, Size1 the largest body we take (RFC 7959 2.9.3, 4) */
        b1_reset(p);
        coap_pdu_set_code(resp, COAP_RESPONSE_CODE(413));
        add_uint_option(resp, COAP_OPTION_BLOCK1, BLOCK_SZX);
        add_uint_option(resp, COAP_OPTION_SIZE1, MAX_REQ_BODY);
        LOGD("coap", "event=request-refused peer=%s reason=\"message of %zu bytes\"", pname(p), msglen);
    } else if (b1opt && COAP_OPT_BLOCK_SZX(b1opt) == 7) { /* RFC 7959 2.2; coap_get_block() refuses SZX 7 */
        b1_reset(p);
        coap_pdu_set_code(resp, COAP_RESPONSE_CODE(400));
    } else if (!coap_get_block(req, COAP_OPTION_BLOCK1, &b1)) {
        u->cfg.h.on_request(u->cfg.h.arg, p, req, resp);
    } else {
        /* a block of a request: kept until the last one, which is handled whole */
        size_t dlen = 0;
        const uint8_t *d = NULL;
        coap_get_data(req, &dlen, &d);
        size_t bs = (size_t)1 << (b1.szx + 4);
        if (b1.num == 0)
            b1_reset(p);
        uint8_t *nb = NULL;
        if (b1.num != p->b1next || (b1.m && dlen != bs)) {
            b1_reset(p);
            coap_pdu_set_code(resp, COAP_RESPONSE_CODE(408)); /* Request Entity Incomplete */
        } else if (p->b1len + dlen > MAX_REQ_BODY) {
            b1_reset(p);
            coap_pdu_set_code(resp, COAP_RESPONSE_CODE(413));
            add_uint_option(resp, COAP_OPTION_SIZE1, MAX_REQ_BODY);
        } else if (!(nb = realloc(p->b1, p->b1len + dlen + 1))) {
            coap_delete_pdu(resp); /* no answer: the client repeats the block */
            return;
        } else {
            p->b1 = nb;
            if (dlen)
                memcpy(p->b1 + p->b1len, d, dlen);
            p->b1len += dlen;
            p->b1next = b1.num + 1;
            add_uint_option(resp, COAP_OPTION_BLOCK1, b1.num << 4 | (b1.m ? 8u : 0u) | b1.szx);
            coap_pdu_t *whole = b1.m ? NULL : rebuild(req, p->b1, p->b1len);
            if (b1.m) {
                coap_pdu_set_code(resp, COAP_RESPONSE_CODE(231)); /* Continue */
            } else if (whole) {
                b1_reset(p);
                u->cfg.h.on_request(u->cfg.h.arg, p, whole, resp);
                coap_delete_pdu(whole);
            } else {
                b1_reset(p);
                coap_pdu_set_code(resp, COAP_RESPONSE_CODE(500));
            }
        }
    }
    reply(u, p, req, resp, con);
    coap_delete_pdu(resp);
}

/* A block-wise exchange cannot go on (out of memory, the next block not
 * sent): it ends, and its sender hears of it as a failure. */
static bool xchg_fail(cudp_t *u, cudp_peer_t *p, xchg_t *x, const char *why)
{
    coap_mid_t mid = x->mid0;
    xchg_drop(p, x->tok, x->tkl);
    if (u->cfg.h.on_nack)
        u->cfg.h.on_nack(u->cfg.h.arg, p, mid, why);
    return true;
}

/* A response (to one of our requests, or a notification). Returns whether
 * the handler knew it (or we did: a block of a transfer under way). */
static bool on_response(cudp_t *u, cudp_peer_t *p, const coap_pdu_t *rsp)
{
    coap_bin_const_t tok = coap_pdu_get_token(rsp);
    xchg_t *x = xchg_find(p, tok.s, tok.length, false);
    int code = coap_pdu_get_code(rsp);
    if (x && x->block1 && code == COAP_RESPONSE_CODE(231)) {
        /* the block went through: the next one, in the size the peer asks for */
        coap_block_t b;
        unsigned szx = BLOCK_SZX;
        if (coap_get_block(rsp, COAP_OPTION_BLOCK1, &b) && b.szx < szx)
            szx = b.szx;
        x->boff += x->lastn;
        if (x->boff >= x->blen) { /* 2.31 to the last block: it is the answer */
            xchg_drop(p, tok.s, tok.length);
            return u->cfg.h.on_response(u->cfg.h.arg, p, rsp);
        }
        if (send_next(p, x, -1, szx, COAP_INVALID_MID) != COAP_INVALID_MID)
            return true;
        return xchg_fail(u, p, x, "the next block could not be sent");
    }
    coap_block_t b2;
    if (x && COAP_RESPONSE_CLASS(code) == 2 && coap_get_block(rsp, COAP_OPTION_BLOCK2, &b2) && b2.szx < 7) {
        size_t bs = (size_t)1 << (b2.szx + 4);
        size_t dlen = 0;
        const uint8_t *d = NULL;
        coap_get_data(rsp, &dlen, &d);
        if (b2.num == 0 && x->alen > 0 && coap_check_option(rsp, COAP_OPTION_OBSERVE, &(coap_opt_iterator_t){0}))
            return u->cfg.h.on_response(u->cfg.h.arg, p, rsp); /* a notification amid the first answer's blocks */
        if ((size_t)b2.num * bs != x->alen || x->alen + dlen > MAX_BODY || (b2.m && dlen != bs)) {
            /* out of order or too big: give what came as the answer */
            xchg_drop(p, tok.s, tok.length);
            return u->cfg.h.on_response(u->cfg.h.arg, p, rsp);
        }
        uint8_t *na = realloc(x->acc, x->alen + dlen + 1);
        if (!na)
            return xchg_fail(u, p, x, "out of memory");
        x->acc = na;
        if (dlen)
            memcpy(x->acc + x->alen, d, dlen);
        x->alen += dlen;
        if (!x->first)
            x->first = rebuild(rsp, NULL, 0);
        if (b2.m) {
            x->block1 = false; /* the follow-ups are the request without its Block1 body */
            if (x->body && x->blen > BLOCK_SIZE) {
                free(x->body);
                x->body = NULL;
                x->blen = 0;
            }
            if (send_next(p, x, (int)b2.num + 1, b2.szx, COAP_INVALID_MID) != COAP_INVALID_MID)
                return true;
            return xchg_fail(u, p, x, "the next block could not be requested");
        }
        coap_pdu_t *whole = x->first ? rebuild(x->first, x->acc, x->alen) : NULL;
        if (!whole)
            return xchg_fail(u, p, x, "out of memory");
        xchg_drop(p, tok.s, tok.length);
        bool known = u->cfg.h.on_response(u->cfg.h.arg, p, whole);
        coap_delete_pdu(whole);
        return known;
    }
    if (x)
        xchg_drop(p, tok.s, tok.length);
    return u->cfg.h.on_response(u->cfg.h.arg, p, rsp);
}

void cudp_input(cudp_t *u, const struct sockaddr *from, socklen_t fromlen, const uint8_t *data, size_t len)
{
    addr_t a;
    if (len < 4 || addr_from(&a, from, fromlen) != 0 || (data[0] >> 6) != 1)
        return; /* not CoAP version 1: silently ignored (RFC 7252 3) */
    coap_pdu_type_t type = (coap_pdu_type_t)((data[0] >> 4) & 3);
    coap_mid_t mid = (coap_mid_t)(data[2] << 8 | data[3]);
    cudp_peer_t *p = peer_find(u, &a, type == COAP_MESSAGE_CON || type == COAP_MESSAGE_NON);
    if (!p)
        return; /* an ACK or RST from nobody we talk to */
    cudp_peer_ref(p); /* kept while handlers run */
    coap_pdu_t *pdu = parse(data, len);
    if (!pdu) {
        LOGD("coap", "event=malformed peer=%s len=%zu", pname(p), len);
        if (type == COAP_MESSAGE_CON)
            send_empty(u, p, COAP_MESSAGE_RST, mid);
        goto out;
    }
    int code = coap_pdu_get_code(pdu);
    int cls = COAP_RESPONSE_CLASS(code);
    if (type == COAP_MESSAGE_ACK || type == COAP_MESSAGE_RST) {
        if (p->q_head && p->q_head->mid == mid) {
            if (type == COAP_MESSAGE_RST) {
                fail_head(p, "reset by the client");
            } else if (code != 0 && unknown_critical(pdu)) {
                fail_head(p, "response with an unknown critical option"); /* rejected (RFC 7252 5.4.1) */
            } else {
                dequeue(p);
                if (code != 0)
                    on_response(u, p, pdu);
            }
        }
        goto out; /* an ACK/RST for nothing in flight: a duplicate, dropped */
    }
    if (code == 0) { /* empty CON (ping) -> RST; empty NON ignored */
        if (type == COAP_MESSAGE_CON)
            send_empty(u, p, COAP_MESSAGE_RST, mid);
        goto out;
    }
    if (cls == 0) {
        on_request(u, p, pdu, len);
    } else if (cls >= 2 && cls <= 5) {
        coap_bin_const_t tok = coap_pdu_get_token(pdu);
        if (p->q_head && (p->q_head->data[0] & 0x0f) == tok.length && !memcmp(p->q_head->data + 4, tok.s, tok.length))
            dequeue(p); /* a separate response whose empty ACK was lost acknowledges the request too */
        if (type == COAP_MESSAGE_CON && p->last_rsp_mid == mid) {
            send_empty(u, p, p->last_rsp_acked ? COAP_MESSAGE_ACK : COAP_MESSAGE_RST, mid);
            goto out;
        }
        bool known = !unknown_critical(pdu) && on_response(u, p, pdu);
        if (type == COAP_MESSAGE_CON) {
            p->last_rsp_mid = mid;
            p->last_rsp_acked = known;
            send_empty(u, p, known ? COAP_MESSAGE_ACK : COAP_MESSAGE_RST, mid);
        } else if (!known) {
            send_empty(u, p, COAP_MESSAGE_RST, mid);
        }
    } else if (type == COAP_MESSAGE_CON) {
        send_empty(u, p, COAP_MESSAGE_RST, mid); /* reserved code class */
    }
out:
    if (pdu)
        coap_delete_pdu(pdu);
    cudp_peer_unref(p);
}

void cudp_read(cudp_t *u)
{
    struct mmsghdr m[RX_BATCH];
    struct iovec iov[RX_BATCH];
    struct sockaddr_storage from[RX_BATCH];
    for (int round = 0; round < 64; round++) {
        for (int i = 0; i < RX_BATCH; i++) {
            iov[i].iov_base = u->rx[i];
            iov[i].iov_len = MAX_DGRAM;
            memset(&m[i].msg_hdr, 0, sizeof m[i].msg_hdr);
            m[i].msg_hdr.msg_name = &from[i];
            m[i].msg_hdr.msg_namelen = sizeof from[i];
            m[i].msg_hdr.msg_iov = &iov[i];
            m[i].msg_hdr.msg_iovlen = 1;
        }
        int n = recvmmsg(u->fd, m, RX_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            break;
        u->now = mono_ms();
        for (int i = 0; i < n; i++) {
            if (m[i].msg_hdr.msg_flags & MSG_TRUNC)
                continue; /* over MAX_DGRAM: not a message we asked for */
            cudp_input(u, (struct sockaddr *)&from[i], m[i].msg_hdr.msg_namelen, u->rx[i], m[i].msg_len);
        }
        /* the batch's answers leave before the next batch is read: peers
         * answer them while this pass goes on, and the pass (one database
         * commit) handles more of the exchanges */
        cudp_flush(u);
        if (n < RX_BATCH)
            break;
    }
    sweep(u);
}

/* ------------------------------------------------------------------ set-up */
int cudp_new(const cudp_config_t *cfg, const char *addr, uint16_t port, cudp_t **out, char *err, size_t errlen)
{
    cudp_t *u = calloc(1, sizeof *u);
    if (!u || !(u->rx = malloc(RX_BATCH * sizeof *u->rx)) || !(u->txbuf = malloc(TX_BYTES)) || grow(u) != 0) {
        if (u) {
            free(u->rx);
            free(u->txbuf);
        }
        free(u);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    u->cfg = *cfg;
    u->fd = -1;
    u->now = mono_ms();
    timer_init(&u->sweep, sweep_fired, u); /* before any cudp_free() */
    randombytes_buf(&u->rnd, sizeof u->rnd);
    u->rnd |= 1; /* xorshift state must not be 0 */
    if (port) {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof ss);
        socklen_t sl;
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
            s4->sin_family = AF_INET;
            s4->sin_port = htons(port);
            sl = sizeof *s4;
        } else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
            s6->sin6_family = AF_INET6;
            s6->sin6_port = htons(port);
            sl = sizeof *s6;
        } else {
            snprintf(err, errlen, "not an IP address: %s", addr);
            cudp_free(&u);
            return -1;
        }
        u->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1, buf = 4 << 20;
        if (u->fd >= 0) {
            setsockopt(u->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            /* as for libcoap's endpoints (server.c): Updates come in bursts */
            if (setsockopt(u->fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf) != 0)
                setsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
            setsockopt(u->fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
        }
        if (u->fd < 0 || bind(u->fd, (struct sockaddr *)&ss, sl) != 0) {
            snprintf(err, errlen, "cannot bind udp %s:%u: %s", addr, port, strerror(errno));
            cudp_free(&u);
            return -1;
        }
    }
    if (u->cfg.timers)
        timer_start(u->cfg.timers, &u->sweep, u->now + 10000);
    *out = u;
    return 0;
}

int cudp_fd(const cudp_t *u) { return u->fd; }

void cudp_free(cudp_t **up)
{
    cudp_t *u = up ? *up : NULL;
    if (!u)
        return;
    if (u->cfg.timers)
        timer_stop(u->cfg.timers, &u->sweep);
    cudp_flush(u);
    for (size_t i = 0; i < u->nbuckets; i++)
        while (u->buckets[i])
            peer_free(u, u->buckets[i]);
    free(u->buckets);
    free(u->rx);
    free(u->txbuf);
    if (u->fd >= 0)
        close(u->fd);
    free(u);
    *up = NULL;
}
