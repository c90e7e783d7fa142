/* Bootstrap plan: pure functions that turn a configured LwM2M server entry
 * (with per-device credentials already resolved) into the Security (/0) and
 * Server (/1) records a device receives (lwm2mBootstrapConfiguration), and the
 * Bootstrap-Pack body. No I/O, no clock. */
#ifndef LWDM_BS_PLAN_H
#define LWDM_BS_PLAN_H
#include "db/db.h"
#include "server/lwm2m/lwm2m.h"

/* One server account as a device receives it. */
typedef struct {
    const db_server_t *srv;       /* borrowed */
    uint8_t *identity;            /* owned; PSK identity (NULL/0 for NoSec) */
    size_t identity_len;
    uint8_t *secret;              /* owned; PSK key */
    size_t secret_len;
} bs_account_t;

void bs_account_clear(bs_account_t *a);

/* true if `cf` is a registered LwM2M content format at all (known or not to lwdm) */
bool bs_cf_is_lwm2m(int cf);

/* Records for one account at explicit ids, appended to `out`: Security
 * /0/sec_iid (URI, Bootstrap-Server, mode, identity, server key, secret, SMS,
 * SSID, hold-off, account timeout) and, for a management server, Server
 * /1/srv_iid (SSID, lifetime, notification storing, binding; a TCP transport
 * is announced as T/TQ). srv_iid < 0: no Server instance. Returns 0 or a
 * negative LWM2M error. */
int bs_plan_account(const bs_account_t *a, uint16_t sec_iid, int srv_iid, lwm2m_records_t *out);

/* The whole configuration as one SenML pack (bn "/", names "0/2/0"), for
 * Bootstrap-Pack (LwM2M 1.2 §6.1.7.7). cf is SenML CBOR or SenML JSON, else
 * LWM2M_ERR_NOT_ACCEPTABLE. */
int bs_plan_pack(const lwm2m_records_t *recs, int cf, uint8_t **out, size_t *outlen);

#endif
