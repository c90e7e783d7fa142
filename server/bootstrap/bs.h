/* The bootstrap interface of lwdm (server side of LwM2M client-initiated
 * bootstrap and Bootstrap-Pack), bound to the libcoap context owned by the
 * network loop and, for plain CoAP, to lwdm's own UDP endpoint when the loop
 * has one on the bootstrap port. Only the loop thread calls these functions. */
#ifndef LWDM_BS_H
#define LWDM_BS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "server/coap_udp.h"
#include "server/timers.h"

struct coap_context_t;
struct lwm2m_registry;
struct http_client;
struct events;
struct coap_session_t;
struct coap_pdu_t;

typedef struct bs_server bs_server_t;

typedef struct {
    struct coap_context_t *coap;  /* borrowed; /bs and /bspack are registered on it */
    db_t *db;                     /* the loop's connection, borrowed */
    timer_heap_t *timers;         /* the loop's timers, borrowed */
    uint16_t coap_port;           /* local port of the plain bootstrap endpoint (0 = none) */
    uint16_t coaps_port;          /* local port of the DTLS bootstrap endpoint (0 = none) */
    unsigned session_timeout_s;   /* whole session, Request to Finish */
    int accept_unknown;           /* -1: the stored bootstrap setting; 0/1: override */
    const char *domain;           /* "/" */
    const struct lwm2m_registry *registry; /* object definitions (task keys), borrowed */
    struct http_client *http;     /* for <rest>, borrowed; NULL = <rest> fails */
    /* Live events (server/common/events.h), borrowed; NULL = none. Published
     * at the end of the loop pass, once the pass's writes are committed:
     * bootstrap {status: started|finished|failed[, reason]}, bootstrap-step
     * {step, path, code[, error]} per answered operation, task-status
     * {taskId, taskName, reportId, status, summary}. */
    struct events *events;
} bs_server_config_t;

int bs_server_new(const bs_server_config_t *cfg, bs_server_t **out);
/* Cancels running sessions (recording them as failed) and flushes. */
void bs_server_free(bs_server_t **bs);

/* The loop hands over responses and nacks for sessions of the bootstrap
 * endpoints. Return true if the PDU belonged to a bootstrap session. */
bool bs_server_on_response(bs_server_t *bs, struct coap_session_t *cs, const struct coap_pdu_t *sent,
                           const struct coap_pdu_t *recv);
bool bs_server_on_nack(bs_server_t *bs, struct coap_session_t *cs, int mid, const char *reason);
/* lwdm's own UDP endpoint on the plain-CoAP bootstrap port (cudp_handlers_t):
 * its requests (/bs, /bspack), the answers to our requests, and their
 * failures. */
void bs_server_udp_request(bs_server_t *bs, cudp_peer_t *p, const coap_pdu_t *req, coap_pdu_t *resp);
bool bs_server_udp_response(bs_server_t *bs, cudp_peer_t *p, const coap_pdu_t *recv);
void bs_server_udp_nack(bs_server_t *bs, cudp_peer_t *p, coap_mid_t mid, const char *why);
/* libcoap created a server session (COAP_EVENT_SERVER_SESSION_NEW). */
void bs_server_on_session_new(bs_server_t *bs, struct coap_session_t *cs);
/* A libcoap session is closing (DTLS close, session freed). */
void bs_server_on_session_closed(bs_server_t *bs, struct coap_session_t *cs);
/* PSK key for a DTLS identity on the bootstrap endpoint: the device's
 * bootstrap credentials. Returns the key length (copied into key) or -1. */
int bs_server_psk_lookup(bs_server_t *bs, const uint8_t *identity, size_t idlen, uint8_t *key, size_t keycap);
/* After each loop pass: starts sessions accepted during the pass (their 2.04
 * has left by then), writes finished sessions' records to the DB in one
 * transaction, frees them. */
void bs_server_after_io(bs_server_t *bs);

#endif
