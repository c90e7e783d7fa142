/* Bootstrap plan: pure functions that turn configured LwM2M server entries
 * (with per-device credentials already resolved) into the Security (/0) and
 * Server (/1) records a device receives, the Bootstrap-Write operations that
 * carry them, and the Bootstrap-Pack body. No I/O, no clock. */
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

typedef enum { BS_OP_DISCOVER = 0, BS_OP_READ, BS_OP_DELETE, BS_OP_WRITE, BS_OP_FINISH } bs_op_kind_t;

typedef struct {
    bs_op_kind_t kind;
    lwm2m_path_t path;
    int cf;              /* content format of the payload (WRITE), else LWM2M_CF_NONE */
    uint8_t *payload;    /* owned */
    size_t len;
} bs_op_t;

typedef struct {
    bs_op_t *ops;
    size_t n, cap;
} bs_ops_t;

void bs_ops_init(bs_ops_t *o);
void bs_ops_clear(bs_ops_t *o);
/* Appends; takes ownership of payload (freed even on failure). */
int bs_ops_add(bs_ops_t *o, bs_op_kind_t kind, const lwm2m_path_t *path, int cf, uint8_t *payload, size_t len);
const char *bs_op_name(bs_op_kind_t k);   /* "discover", "write", ... */

/* Content format for Bootstrap-Writes (CONFORMANCE.md §1, §4 Formats):
 * the client's pct when lwdm supports it; else TLV for a 1.0 client; else
 * SenML CBOR. `pct` is LWM2M_CF_NONE when the request had none; `version` is
 * the enabler version (0 = unknown, treated as 1.0). */
int bs_choose_cf(int pct, int version);
/* true if `cf` is a registered LwM2M content format at all (known or not to lwdm) */
bool bs_cf_is_lwm2m(int cf);

/* Where the client keeps its bootstrap-server account, learnt from Discover:
 * the /0 instance without `ssid`; -1 when unknown (Discover refused/absent). */
#define BS_IID_UNKNOWN (-1)

/* Assigns instance ids and builds the records for `n` accounts:
 *  - a bootstrap-type account is written AT the client's BS-account instance
 *    (replacing it; never a second account: CONFORMANCE.md §1 "Second BS
 *    account"), or /0/0 if that is unknown;
 *  - management accounts take the lowest /0 ids other than the BS account's
 *    (when it is unknown, /0/0 is assumed to be the BS account, the usual
 *    factory layout, so management accounts start at /0/1), and /1 ids from 0,
 *    paired with their Security instance by Short Server ID.
 * Records are appended to `out` with absolute paths. Returns 0 or a negative
 * LWM2M error (out unchanged). */
int bs_plan_records(const bs_account_t *accts, size_t n, int bs_iid, lwm2m_records_t *out);
/* Same, with management /0 ids starting at `min_iid` and bootstrap-type
 * accounts left out when `skip_bs_accounts` (Bootstrap-Pack: the BS account's
 * instance is unknown there, and Anjay keeps it at /0/1, so pack ids start at 2;
 * CONFORMANCE.md §1 Bootstrap-Pack-Request). */
int bs_plan_records_ex(const bs_account_t *accts, size_t n, int bs_iid, uint16_t min_iid, bool skip_bs_accounts,
                       lwm2m_records_t *out);

/* Records for one account at explicit ids: Security /0/sec_iid, and for a
 * management server Server /1/srv_iid (srv_iid < 0: none). Appended to out.
 * (lwm2mBootstrapConfiguration of a task.) */
int bs_plan_account(const bs_account_t *a, uint16_t sec_iid, int srv_iid, lwm2m_records_t *out);

/* One Bootstrap-Write per object instance found in `recs`, encoded in `cf`.
 * Appended to `ops`. Returns 0 or a negative LWM2M error. */
int bs_plan_writes(const lwm2m_records_t *recs, int cf, bs_ops_t *ops);

/* The whole configuration as one SenML pack (bn "/", names "0/2/0"), for
 * Bootstrap-Pack (LwM2M 1.2 §6.1.7.7). cf is SenML CBOR or SenML JSON. */
int bs_plan_pack(const lwm2m_records_t *recs, int cf, uint8_t **out, size_t *outlen);

/* Security mode resource value (/0/x/2) for a db security mode. */
int bs_security_mode_value(int db_security_mode);

#endif
