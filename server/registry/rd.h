/* The registration interface (`/rd` on the management ports) and the device
 * management requests lwdm sends to registered devices (docs/management.md).
 *
 * Loop thread only, except rd_submit() (any thread). State per registered
 * device lives in memory (two hash maps: device id, location) and in SQLite
 * (registrations table, written once per loop pass); rd_new() loads the rows,
 * so a restart keeps devices registered until their lifetime runs out.
 *
 * Requests to a device go one at a time (NSTART 1) from a bounded per-device
 * queue; a queue-mode device gets them only while it is awake (for
 * awake_ms after any message from it). Notifications of the observations
 * lwdm holds update the latest values and the history. */
#ifndef LWDM_REGISTRY_RD_H
#define LWDM_REGISTRY_RD_H
#include <coap3/coap.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/coap_udp.h"
#include "server/common/devops.h"

struct db;
struct lwm2m_registry;
struct events;
struct http_client;

typedef struct rd rd_t;

typedef struct {
    coap_context_t *coap;
    struct db *db;                /* the loop's connection */
    void *timers;                 /* timer_heap_t * of the loop */
    const struct lwm2m_registry *registry;
    struct events *events;        /* may be NULL */
    struct http_client *http;
    uint16_t coap_port, coaps_port;
    cudp_t *udp;                  /* lwdm's own endpoint on the NoSec port, or NULL (libcoap's) */
    int accept_unknown;           /* 1 create unknown NoSec endpoints, 0 refuse, -1 from bootstrap settings */
    const char *domain;           /* "/" */
    unsigned awake_ms;            /* queue mode awake window; 0 = 93 s */
    unsigned request_timeout_ms;  /* default REST timeout when the op has none */
    /* wakes the loop after rd_submit (thread-safe) */
    void (*wake)(void *arg);
    void *wake_arg;
} rd_config_t;

int rd_new(const rd_config_t *cfg, rd_t **out);
/* Ends every pending operation (done() with 503 "server stopping"), releases
 * sessions, frees everything. */
void rd_free(rd_t **rd);
/* Ends every pending API operation now (before the HTTP server stops). */
void rd_cancel_ops(rd_t *rd);

/* Thread-safe; see devops.h. */
int rd_submit(void *rd, devop_t *op);
void rd_forget(void *rd, int64_t device_id);

/* libcoap glue (server.c dispatches by local port) */
bool rd_owns_session(const rd_t *rd, coap_session_t *cs);
bool rd_on_response(rd_t *rd, coap_session_t *cs, const coap_pdu_t *sent, const coap_pdu_t *recv);
void rd_on_nack(rd_t *rd, coap_session_t *cs, coap_mid_t mid, const char *why);
void rd_on_session_new(rd_t *rd, coap_session_t *cs);
void rd_on_session_closed(rd_t *rd, coap_session_t *cs);
/* lwdm's own UDP endpoint (cudp_handlers_t) */
void rd_udp_request(rd_t *rd, cudp_peer_t *p, const coap_pdu_t *req, coap_pdu_t *resp);
bool rd_udp_response(rd_t *rd, cudp_peer_t *p, const coap_pdu_t *recv);
void rd_udp_nack(rd_t *rd, cudp_peer_t *p, coap_mid_t mid, const char *why);
/* DTLS-PSK key for a management identity: length, or -1 (unknown: refuse). */
int rd_psk_lookup(rd_t *rd, const uint8_t *identity, size_t idlen, uint8_t *key, size_t keycap);
/* End of a loop pass: takes submitted operations, starts management sessions
 * whose response left, writes registrations, commits. */
void rd_after_io(rd_t *rd);

/* Live registrations (metrics). */
size_t rd_count(const rd_t *rd);
size_t rd_count_online(const rd_t *rd);

#endif
