/* The lwdm process: opens the database (migrations, first-run seed), the
 * object registry, the REST API and the CoAP endpoints, and runs the network
 * loop on the calling thread. Used by main.c and, in-process, by the
 * integration tests. */
#ifndef LWDM_SERVER_H
#define LWDM_SERVER_H
#include <stdbool.h>
#include <stdint.h>

#include "server/config.h"

typedef struct lwdm_server lwdm_server_t;
struct events;

/* Opens everything and binds every endpoint (ports of 0 are replaced by free
 * ones; see the getters). On failure returns -1 with a message in err. */
int lwdm_server_open(const lwdm_config_t *cfg, lwdm_server_t **out, char *err, size_t errlen);
/* Runs the loop until lwdm_server_stop() (from any thread or a signal
 * handler). Returns 0 on a clean stop. */
int lwdm_server_run(lwdm_server_t *s);
/* Async-signal-safe and thread-safe: asks the loop to stop. */
void lwdm_server_stop(lwdm_server_t *s);
/* Closes everything (after run returned, or instead of running). */
void lwdm_server_close(lwdm_server_t **s);

uint16_t lwdm_server_http_port(const lwdm_server_t *s);
uint16_t lwdm_server_bs_coap_port(const lwdm_server_t *s);
uint16_t lwdm_server_bs_coaps_port(const lwdm_server_t *s);
uint16_t lwdm_server_coap_port(const lwdm_server_t *s);
uint16_t lwdm_server_coaps_port(const lwdm_server_t *s);
/* Listening for CoAP over TCP on the coap ports / over TLS on the coaps ports
 * (same numbers; --tcp on and libcoap supports it). */
bool lwdm_server_tcp(const lwdm_server_t *s);
bool lwdm_server_tls(const lwdm_server_t *s);
/* The admin password generated on first start (NULL if none was generated). */
const char *lwdm_server_generated_password(const lwdm_server_t *s);
/* The live events bus (server/common/events.h), created by open and freed
 * by close, after the API and the protocol interfaces. Publish to it from any
 * thread (events_publish) between open and close. */
struct events *lwdm_server_events(const lwdm_server_t *s);

#endif
