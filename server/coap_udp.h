/* lwdm's own CoAP-over-UDP endpoint (RFC 7252 message layer, RFC 7959
 * block-wise), used for the NoSec management port instead of a libcoap
 * endpoint.
 *
 * Why: libcoap 4.3.1 keeps one session per peer and walks every session of
 * the context on each loop pass and for each datagram from a new address
 * (LIBCOAP.md "Cost and scale", docs/bench.md): with one session held per
 * registered device, the cost of every message grew with the fleet. Here a
 * peer is a hash-table entry: finding it, answering, retransmitting and
 * expiring cost the same at 100 devices and at 100,000.
 *
 * What it does: one UDP socket; peers by address (refcounted; unreferenced
 * ones kept for deduplication, least recently used first out); CON
 * deduplication (the last answer per peer is sent again for a repeated
 * message id); CON retransmission (ACK_TIMEOUT 2 s x random 1..1.5,
 * MAX_RETRANSMIT 4) with one confirmable message in flight per peer
 * (NSTART 1), the rest queued; empty CON (ping) answered with RST; Block1
 * (incoming requests reassembled; outgoing large payloads sent in 1,024-byte
 * blocks) and Block2 (responses to our requests reassembled before they are
 * delivered). Messages are libcoap PDUs (coap_pdu_parse to read them; this
 * module encodes them), so handlers read and write them with libcoap's
 * accessors as they do for libcoap's own endpoints.
 *
 * Loop thread only. */
#ifndef LWDM_COAP_UDP_H
#define LWDM_COAP_UDP_H
#include <coap3/coap.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "server/timers.h"

typedef struct cudp cudp_t;
typedef struct cudp_peer cudp_peer_t;

typedef struct {
    /* A request (deduplicated, Block1 reassembled). resp comes with its type,
     * message id and token set; the handler sets the code, options and payload
     * (a code left 0 is sent as 5.00). */
    void (*on_request)(void *arg, cudp_peer_t *p, const coap_pdu_t *req, coap_pdu_t *resp);
    /* A response to one of our requests (piggybacked or separate, Block2
     * reassembled) or a notification. false: unknown token (a CON one is
     * answered with RST, which also ends a stray observation). */
    bool (*on_response)(void *arg, cudp_peer_t *p, const coap_pdu_t *recv);
    /* A confirmable request of ours failed: RST, or no ACK after the
     * retransmissions; `why` says which. */
    void (*on_nack)(void *arg, cudp_peer_t *p, coap_mid_t mid, const char *why);
    void *arg;
} cudp_handlers_t;

typedef struct {
    timer_heap_t *timers;          /* the loop's */
    cudp_handlers_t h;
    unsigned idle_peers_max;       /* unreferenced peers kept (0 = 4096) */
    unsigned idle_s;               /* ... for at most this long (0 = 247 s, EXCHANGE_LIFETIME) */
    unsigned ack_timeout_ms;       /* 0 = 2000 */
    /* Tests and the fuzz target: replaces sendto() (return 0 or -1). */
    int (*send)(void *arg, const struct sockaddr *to, socklen_t tolen, const uint8_t *data, size_t len);
    void *send_arg;
} cudp_config_t;

/* Binds a UDP socket to addr:port (port 0 only with cfg->send set: no socket). */
int cudp_new(const cudp_config_t *cfg, const char *addr, uint16_t port, cudp_t **out, char *err, size_t errlen);
void cudp_free(cudp_t **u);
int cudp_fd(const cudp_t *u);
/* Reads and handles every datagram waiting on the socket (in batches). */
void cudp_read(cudp_t *u);
/* Sends the datagrams queued since the last flush (one sendmmsg()). Answers
 * and requests are queued, not sent, when the endpoint has a socket: the
 * loop calls this at the end of every pass. */
void cudp_flush(cudp_t *u);
/* Handles one datagram from `from` (what cudp_read does per datagram). */
void cudp_input(cudp_t *u, const struct sockaddr *from, socklen_t fromlen, const uint8_t *data, size_t len);

/* The peer at "ip:port" (created if unknown), referenced; NULL if the text is
 * not an address. */
cudp_peer_t *cudp_peer_at(cudp_t *u, const char *ipport);
cudp_peer_t *cudp_peer_ref(cudp_peer_t *p);
void cudp_peer_unref(cudp_peer_t *p);
void *cudp_peer_app_data(const cudp_peer_t *p);
void cudp_peer_set_app_data(cudp_peer_t *p, void *data);
/* "ip:port" or "[ip6]:port" into buf */
void cudp_peer_addr(const cudp_peer_t *p, char *buf, size_t cap);

/* A new confirmable request to the peer: type CON, the next message id;
 * the caller adds token, options and (small) payload, then cudp_send(). */
coap_pdu_t *cudp_new_request(cudp_peer_t *p, coap_pdu_code_t code);
/* Sends pdu (taken, even on failure). `body` (copied; may be NULL) is a
 * payload too large for one message: it goes block-wise (Block1).
 * Returns the message id, or COAP_INVALID_MID. */
coap_mid_t cudp_send(cudp_peer_t *p, coap_pdu_t *pdu, const uint8_t *body, size_t len);
/* Sets `body` (Content-Format cf, or -1 for none) as the payload of resp, an
 * answer to req, from a handler: whole when it fits one 1,024-byte block and
 * req asks for no block, else block-wise (RFC 7959 2.4): the block req's
 * Block2 asks for (block 0 first; a smaller size if asked), with Block2 and,
 * on block 0, Size2. The handler is called again for each later block (its
 * body must not change between them). Returns the block number served, or
 * -1 (a block past the end: resp set to 4.02; or it did not fit). */
int cudp_response_body(const coap_pdu_t *req, coap_pdu_t *resp, int cf, const uint8_t *body, size_t len);
/* Counts (metrics, tests). */
size_t cudp_peer_count(const cudp_t *u);
/* Encodes a PDU as a UDP CoAP message; the length, or 0 when it does not fit. */
size_t cudp_encode(const coap_pdu_t *pdu, uint8_t *buf, size_t cap);

#endif
