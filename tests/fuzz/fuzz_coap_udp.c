/* libFuzzer target for lwdm's CoAP-over-UDP endpoint (server/coap_udp.c).
 *
 * One endpoint (static, no socket: a send hook) receives the input as a
 * series of datagrams from three peers. Besides "no crash, no leak" it checks
 * that every datagram the module sends parses (coap_pdu_parse), goes to one
 * of the peers, and that an empty message is 4 bytes.
 *
 * Input: byte 0 = number of records (& 31); then per record
 *   ctl, length (2 bytes, big-endian), that many bytes (fewer at the end).
 * ctl bits 0-1: the peer: 0 127.0.0.1:5683, 1 10.1.2.3:40000, 2 [::1]:5683,
 *               3 peer 0 with a too-short address length (must be ignored)
 *     bit 2:    the message id := that of the last CON we sent to the peer
 *     bit 3:    the record has no token: the token of that CON is inserted
 *               after the header (TKL set to match)
 *     bits 4-5: before the record, we send the peer a request: 1 GET /3/0,
 *               2 PUT /5/0/0 with a 2,500-byte body (Block1), 3 FETCH with a
 *               small payload (repeated in Block2 follow-ups)
 *     bit 6:    before the record, time passes to the next retransmission
 *     bit 7:    before the record, the peer sweep runs
 * Handlers answer requests with options and payload (or leave the code to
 * the module), say "known" for responses whose first token byte is odd, and
 * sometimes send another request from inside a handler. After each input
 * every retransmission is run out, so what stays across inputs is small
 * (message ids, deduplication state, idle peers, half-received Block1). */
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <coap3/coap.h>

#include "server/coap_udp.h"
#include "server/timers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NPEERS 3
#define PARKED INT64_MAX

static const char *const peer_names[NPEERS] = {"127.0.0.1:5683", "10.1.2.3:40000", "[::1]:5683"};

static timer_heap_t heap;
static cudp_t *ep;
static struct sockaddr_in peer_in[2];
static struct sockaddr_in6 peer_in6;
static struct {
    bool have;
    coap_mid_t mid;
    uint8_t tok[8];
    size_t tkl;
} last_con[NPEERS];
static unsigned token_counter;
static int nested_budget; /* requests sent from inside handlers, per input */

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_coap_udp: invariant broken: %s\n", what);
        abort();
    }
}

static int peer_index(const struct sockaddr *to, socklen_t tolen)
{
    if (to->sa_family == AF_INET && tolen >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)to;
        for (int i = 0; i < 2; i++)
            if (a->sin_port == peer_in[i].sin_port && a->sin_addr.s_addr == peer_in[i].sin_addr.s_addr)
                return i;
    } else if (to->sa_family == AF_INET6 && tolen >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)to;
        if (a->sin6_port == peer_in6.sin6_port && !memcmp(&a->sin6_addr, &peer_in6.sin6_addr, sizeof a->sin6_addr))
            return 2;
    }
    return -1;
}

/* Every datagram we send must be a CoAP message libcoap reads. */
static int hook_send(void *arg, const struct sockaddr *to, socklen_t tolen, const uint8_t *d, size_t n)
{
    (void)arg;
    int pi = peer_index(to, tolen);
    check(pi >= 0, "sent to one of the peers");
    check(n >= 4 && n <= 4096, "datagram size");
    coap_pdu_t *pdu = coap_pdu_init(0, 0, 0, n);
    check(pdu != NULL, "pdu");
    check(coap_pdu_parse(COAP_PROTO_UDP, d, n, pdu) != 0, "what we send parses");
    check(coap_pdu_get_code(pdu) != 0 || n == 4, "an empty message is 4 bytes");
    if (coap_pdu_get_type(pdu) == COAP_MESSAGE_CON) {
        coap_bin_const_t tok = coap_pdu_get_token(pdu);
        last_con[pi].have = true;
        last_con[pi].mid = coap_pdu_get_mid(pdu);
        last_con[pi].tkl = tok.length;
        memcpy(last_con[pi].tok, tok.s, tok.length);
    }
    coap_delete_pdu(pdu);
    return 0;
}

static void send_request(cudp_peer_t *p, int kind)
{
    static uint8_t big[2500];
    static const char fetch[] = "[{\"n\":\"/3/0/0\"},{\"n\":\"/3/0/1\"}]";
    coap_pdu_code_t code = kind == 2 ? COAP_REQUEST_CODE_PUT : kind == 3 ? COAP_REQUEST_CODE_FETCH : COAP_REQUEST_CODE_GET;
    coap_pdu_t *pdu = cudp_new_request(p, code);
    if (!pdu)
        return;
    token_counter++;
    uint8_t tok[4] = {(uint8_t)token_counter, (uint8_t)(token_counter >> 8), 0x5a, (uint8_t)kind};
    coap_add_token(pdu, sizeof tok, tok);
    uint8_t cf[2] = {0x2d, 0x17};
    if (kind == 2) {
        coap_add_option(pdu, COAP_OPTION_URI_PATH, 1, (const uint8_t *)"5");
        coap_add_option(pdu, COAP_OPTION_URI_PATH, 1, (const uint8_t *)"0");
        coap_add_option(pdu, COAP_OPTION_URI_PATH, 1, (const uint8_t *)"0");
        cf[0] = 42;
        coap_add_option(pdu, COAP_OPTION_CONTENT_FORMAT, 1, cf);
        for (size_t i = 0; i < sizeof big; i++)
            big[i] = (uint8_t)(i * 31 + token_counter);
        cudp_send(p, pdu, big, sizeof big);
        return;
    }
    coap_add_option(pdu, COAP_OPTION_URI_PATH, 1, (const uint8_t *)"3");
    coap_add_option(pdu, COAP_OPTION_URI_PATH, 1, (const uint8_t *)"0");
    if (kind == 3) {
        coap_add_option(pdu, COAP_OPTION_CONTENT_FORMAT, 2, cf);
        coap_add_option(pdu, COAP_OPTION_ACCEPT, 2, cf);
        coap_add_data(pdu, sizeof fetch - 1, (const uint8_t *)fetch);
    }
    cudp_send(p, pdu, NULL, 0);
}

static void h_request(void *arg, cudp_peer_t *p, const coap_pdu_t *req, coap_pdu_t *resp)
{
    (void)arg;
    (void)p;
    coap_bin_const_t tok = coap_pdu_get_token(req);
    check(tok.length <= 8, "request token");
    size_t n = 0;
    const uint8_t *d = NULL;
    coap_get_data(req, &n, &d);
    switch (coap_pdu_get_mid(req) & 3) {
    case 0: { /* 2.05 with options and the request's payload (some of it) echoed */
        uint8_t cf[2] = {0x2d, 0x16}, age[1] = {60}, etag[4] = {1, 2, 3, 4};
        coap_pdu_set_code(resp, COAP_RESPONSE_CODE(205));
        coap_add_option(resp, COAP_OPTION_ETAG, sizeof etag, etag);
        coap_add_option(resp, COAP_OPTION_MAXAGE, sizeof age, age); /* out of order on purpose */
        coap_add_option(resp, COAP_OPTION_CONTENT_FORMAT, sizeof cf, cf);
        if (n)
            coap_add_data(resp, n < 1000 ? n : 1000, d);
        else
            coap_add_data(resp, 5, (const uint8_t *)"hello");
        break;
    }
    case 1:
        coap_pdu_set_code(resp, COAP_RESPONSE_CODE(201));
        coap_add_option(resp, COAP_OPTION_LOCATION_PATH, 2, (const uint8_t *)"rd");
        coap_add_option(resp, COAP_OPTION_LOCATION_PATH, 4, (const uint8_t *)"abcd");
        break;
    case 2:
        break; /* no code: the module answers 5.00 */
    default:
        coap_pdu_set_code(resp, COAP_RESPONSE_CODE(404));
        break;
    }
}

static bool h_response(void *arg, cudp_peer_t *p, const coap_pdu_t *recv)
{
    (void)arg;
    coap_bin_const_t tok = coap_pdu_get_token(recv);
    check(tok.length <= 8, "response token");
    size_t n = 0;
    const uint8_t *d = NULL;
    if (coap_get_data(recv, &n, &d) && n)
        check(d != NULL && n <= 256 * 1024, "response body");
    bool known = tok.length > 0 && (tok.s[0] & 1);
    if (tok.length > 1 && (tok.s[1] & 3) == 3 && nested_budget > 0) {
        nested_budget--;
        send_request(p, 1 + (tok.s[0] >> 1) % 3); /* the app sends its next request from the handler */
    }
    return known;
}

static void h_nack(void *arg, cudp_peer_t *p, coap_mid_t mid, const char *why)
{
    (void)arg;
    check(why != NULL && why[0], "a reason");
    check(mid >= 0 && mid <= 0xffff, "nack mid");
    if ((mid & 7) == 0 && nested_budget > 0) {
        nested_budget--;
        send_request(p, 1);
    }
}

static lwdm_timer_t *sweep_timer(void)
{
    for (size_t i = 0; i < heap.n; i++)
        if (heap.heap[i]->arg == (void *)ep)
            return heap.heap[i];
    return NULL;
}

/* The module re-arms its 10 s sweep at CLOCK_MONOTONIC + 10 s: run with a
 * later `now`, the heap would fire it forever. It is kept parked and fired
 * on purpose. */
static void park_sweep(void)
{
    lwdm_timer_t *t = sweep_timer();
    if (t)
        timer_start(&heap, t, PARKED);
}

static void run_sweep(void)
{
    lwdm_timer_t *t = sweep_timer();
    if (!t)
        return;
    timer_start(&heap, t, 0);
    timer_heap_run(&heap, 0);
    park_sweep();
}

static int step(void)
{
    int64_t t = timer_heap_next(&heap);
    if (t < 0 || t == PARKED)
        return 0;
    timer_heap_run(&heap, t);
    return 1;
}

static void init(void)
{
    coap_startup();
    coap_set_log_level(LOG_EMERG);
    timer_heap_init(&heap);
    for (int i = 0; i < 2; i++) {
        memset(&peer_in[i], 0, sizeof peer_in[i]);
        peer_in[i].sin_family = AF_INET;
    }
    inet_pton(AF_INET, "127.0.0.1", &peer_in[0].sin_addr);
    peer_in[0].sin_port = htons(5683);
    inet_pton(AF_INET, "10.1.2.3", &peer_in[1].sin_addr);
    peer_in[1].sin_port = htons(40000);
    memset(&peer_in6, 0, sizeof peer_in6);
    peer_in6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::1", &peer_in6.sin6_addr);
    peer_in6.sin6_port = htons(5683);
    cudp_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.timers = &heap;
    cfg.h.on_request = h_request;
    cfg.h.on_response = h_response;
    cfg.h.on_nack = h_nack;
    cfg.idle_peers_max = 2;
    cfg.send = hook_send;
    char err[128];
    if (cudp_new(&cfg, "127.0.0.1", 0, &ep, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_coap_udp: cudp_new: %s\n", err);
        abort();
    }
    park_sweep();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[8192];
    if (!ep)
        init();
    nested_budget = 4;
    cudp_peer_t *peers[NPEERS] = {NULL, NULL, NULL};
    size_t at = 0;
    unsigned nrec = size ? (data[at++] & 31) : 0;
    for (unsigned r = 0; r < nrec && at < size; r++) {
        uint8_t ctl = data[at++];
        size_t len = 0;
        if (at < size)
            len = (size_t)data[at++] << 8;
        if (at < size)
            len |= data[at++];
        if (len > size - at)
            len = size - at;
        const uint8_t *rec = data + at;
        at += len;
        int pi = ctl & 3;
        int pp = pi == 3 ? 0 : pi;
        if (ctl & 0x80)
            run_sweep();
        if (ctl & 0x40)
            step();
        if (ctl & 0x30) {
            if (!peers[pp])
                peers[pp] = cudp_peer_at(ep, peer_names[pp]);
            check(peers[pp] != NULL, "cudp_peer_at");
            send_request(peers[pp], (ctl >> 4) & 3);
        }
        size_t n = len;
        if (n > sizeof buf - 8)
            n = sizeof buf - 8;
        if ((ctl & 0x08) && n >= 4 && last_con[pp].have) {
            size_t tkl = last_con[pp].tkl;
            buf[0] = (uint8_t)((rec[0] & 0xf0) | tkl);
            memcpy(buf + 1, rec + 1, 3);
            memcpy(buf + 4, last_con[pp].tok, tkl);
            memcpy(buf + 4 + tkl, rec + 4, n - 4);
            n += tkl;
        } else if (n) {
            memcpy(buf, rec, n);
        }
        if ((ctl & 0x04) && n >= 4 && last_con[pp].have) {
            buf[2] = (uint8_t)(last_con[pp].mid >> 8);
            buf[3] = (uint8_t)last_con[pp].mid;
        }
        const struct sockaddr *from = pi == 2 ? (const struct sockaddr *)&peer_in6 : (const struct sockaddr *)&peer_in[pp];
        socklen_t fromlen = pi == 2 ? (socklen_t)sizeof peer_in6 : (socklen_t)sizeof peer_in[pp];
        if (pi == 3)
            fromlen = (socklen_t)sizeof peer_in[0] - 1;
        cudp_input(ep, from, fromlen, buf, n);
    }
    /* run every retransmission out: nothing of ours stays in flight */
    for (int guard = 0; guard < 2000 && step(); guard++)
        ;
    check(timer_heap_next(&heap) == PARKED, "all retransmissions ended");
    for (int i = 0; i < NPEERS; i++)
        cudp_peer_unref(peers[i]);
    check(cudp_peer_count(ep) <= NPEERS, "peer count");
    return 0;
}
