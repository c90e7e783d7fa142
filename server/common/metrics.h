/* Process metrics, rendered in the Prometheus text format by GET /metrics.
 * Counters on the CoAP path are lock-free atomics (the network loop updates
 * them per message); HTTP request metrics (by route, method and status, with a
 * latency histogram) sit in a small table under a mutex (HTTP threads).
 * Gauges that come from the database are added by the API when it renders. */
#ifndef LWDM_COMMON_METRICS_H
#define LWDM_COMMON_METRICS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    MC_BS_REQUESTS = 0,       /* Bootstrap-Requests received */
    MC_BS_STARTED,            /* bootstrap sessions started */
    MC_BS_SUCCEEDED,
    MC_BS_FAILED,
    MC_BS_REFUSED,            /* Requests / packs refused (4.xx/5.xx) */
    MC_BS_PACKS,              /* Bootstrap-Packs served */
    MC_DTLS_IDENTITY_OK,      /* PSK identity known: key handed to the handshake */
    MC_DTLS_IDENTITY_REFUSED, /* unknown PSK identity: fatal alert */
    MC_DTLS_ERRORS,           /* DTLS errors after that (wrong key, broken sessions) */
    MC_TASK_SUCCESS,          /* task runs that ended SUCCESS */
    MC_TASK_WARNING,
    MC_TASK_ERROR,
    MC_TASK_IN_PROGRESS,      /* runs that ended for this session without finishing */
    MC_RD_REGISTER,           /* Register requests received */
    MC_RD_UPDATE,             /* Update requests received */
    MC_RD_DEREGISTER,         /* De-registrations */
    MC_RD_EXPIRED,            /* registrations whose lifetime ran out */
    MC_RD_REFUSED,            /* Register/Update/De-register refused */
    MC_RD_NOTIFICATIONS,      /* notifications received */
    MC_COUNT
} metrics_counter_t;

void metrics_inc(metrics_counter_t c);
uint64_t metrics_get(metrics_counter_t c);
/* A CoAP message lwdm handled: `out` false = received. `code` is the message
 * code byte: a request method (1..7) or a response code (class<<5|detail). */
void metrics_coap(bool out, int code);
/* Time the network loop spent working (not waiting), in nanoseconds. */
void metrics_loop_busy_ns(uint64_t ns);
/* Gauges the network loop sets: registered devices, and those reachable now
 * (registered and, in queue mode, awake). */
void metrics_set_registered(uint64_t registered, uint64_t online);
/* One HTTP request: `route` is the matched route pattern (a stable string,
 * e.g. "/api/v1/devices/{id}") or "unmatched". */
void metrics_http(const char *route, const char *method, unsigned status, double seconds);
/* The metrics above in the Prometheus text format (malloc'd; caller frees). */
char *metrics_render(void);
/* Test hook: zero everything. */
void metrics_reset(void);

#endif
