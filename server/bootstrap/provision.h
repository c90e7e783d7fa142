/* Provisioning a device and its credentials on a target server during
 * bootstrap (lwm2m-servers "configure device on target server" + "provision
 * credentials to the server"). Loop thread only. See provision.c. */
#ifndef LWDM_BOOTSTRAP_PROVISION_H
#define LWDM_BOOTSTRAP_PROVISION_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "server/http_client.h"

struct events;

/* Starts creating `endpoint` (with PSK identity/key when given, else without
 * credentials) on the server entry's target API, when the entry asks for it;
 * does nothing (0) otherwise. The outcome is logged and published as a
 * `provisioning` event. Returns 0, or -1 when the call could not start. */
typedef void (*bs_provision_cb)(void *ud, int64_t device_id, bool ok);
/* Returns 1 when a call started (cb(ud, device_id, ok) follows, unless
 * cancelled), 0 when the entry asks for nothing, -1 when it could not start. */
int bs_provision_start(http_client_t *http, struct events *events, const db_server_t *srv, int64_t device_id,
                       const char *endpoint, const uint8_t *identity, size_t idlen, const uint8_t *key, size_t keylen,
                       bs_provision_cb cb, void *ud);

/* Cancels and frees the calls in flight on `http` (before it is freed). */
void bs_provision_cancel_all(http_client_t *http);

#endif
