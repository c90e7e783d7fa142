/* lwdm-sim: many simulated LwM2M clients in one process, one event loop.
 *
 * Two layers, both public here:
 *
 *  1. The simulator (`sim_t`): N devices, each with its own libcoap client
 *     session (one UDP socket per device), driven by one epoll loop that the
 *     caller steps (`sim_step`) or runs (`sim_run`). This version performs the
 *     client side of LwM2M Bootstrap (Core TS 1.1.1 §6.1 / §5.2 "Bootstrap
 *     Interface"); the device struct is shaped so that registration and device
 *     management can be added as further phases.
 *
 *  2. The device data model (`sim_dm_t`) and its request handler
 *     `sim_dm_handle()`: a plain request struct in, a response struct out, no
 *     libcoap and no clock, so unit tests can replay CoAP transcripts without
 *     sockets. The simulator feeds every request a Bootstrap-Server sends to a
 *     device through this handler.
 *
 * Threads: a `sim_t` is confined to the thread that calls sim_step/sim_run.
 * It owns its own libcoap context, so it can run in one thread while an lwdm
 * server (with its own context) runs in another thread of the same process.
 * The library keeps no global state other than libcoap's own: it calls
 * coap_startup() once (pthread_once) and never calls coap_cleanup(),
 * coap_set_log_level() or coap_set_log_handler() (that is the CLI's job).
 * libcoap 4.3.1's coap_startup() is not thread-safe on its first call: a
 * process that runs a sim next to a server should call coap_startup() in its
 * main thread before starting either.
 *
 * Errors: functions that can fail return 0 or a negative value (a negated
 * CoAP code from lwm2m.h, or -errno for system errors) and say so below.
 */
#ifndef LWDM_SIM_H
#define LWDM_SIM_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/lwm2m/lwm2m.h"

struct lwm2m_registry;

/* ===================================================================
 * Part 1 - device data model and request handler (no libcoap)
 * =================================================================== */

typedef struct sim_dm sim_dm_t;

/* Security Mode values of /0/x/2 (LwM2M Core TS 1.1.1, Security object). */
enum { SIM_SEC_PSK = 0, SIM_SEC_RPK = 1, SIM_SEC_CERT = 2, SIM_SEC_NOSEC = 3, SIM_SEC_EST = 4 };

typedef struct {
    lwm2m_version_t version;         /* 1.0, 1.1 or 1.2 */
    int preferred_cf;                /* answer format for Bootstrap-Read without Accept (1.1+) */
    const struct lwm2m_registry *reg;/* borrowed; must outlive the model; required (types, mandatory flags) */
    const char *endpoint;            /* copied; becomes /3/0/2 Serial Number */
    /* The client's own Bootstrap-Server account, created at /0/<bs_iid>. */
    const char *bs_uri;              /* copied; /0/N/0 */
    uint16_t bs_iid;                 /* default 0; Anjay keeps it at /0/1 */
    int bs_security_mode;            /* SIM_SEC_NOSEC or SIM_SEC_PSK */
    const uint8_t *psk_identity;     /* copied; /0/N/3 (PSK only) */
    size_t psk_identity_len;
    const uint8_t *psk_key;          /* copied; /0/N/5 (PSK only) */
    size_t psk_key_len;
    const char *binding;             /* /3/0/16 Supported Binding and Modes; NULL = "U" */
    /* Records added after the built-in ones (e.g. factory /1 instances); copied.
     * Their instances are created. May be NULL. */
    const lwm2m_records_t *factory;
    /* Fault injection */
    bool refuse_discover;            /* Bootstrap-Discover answers 4.05 */
    bool fail_finish;                /* Bootstrap-Finish answers 4.06 */
} sim_dm_config_t;

/* Fills `cfg` with defaults: 1.1, SenML CBOR preferred, /0/0 NoSec account,
 * binding "U". The caller still sets reg, endpoint and bs_uri. */
void sim_dm_config_init(sim_dm_config_t *cfg);

/* Creates a device model holding /0/<bs_iid> (the Bootstrap-Server account),
 * /3/0 (Device) and the factory records. Supported objects: 0, 1, 2, 3, and
 * 21 for 1.1+ clients. On success *out is owned by the caller (sim_dm_free).
 * Returns 0, LWM2M_ERR_BAD_REQUEST (bad config) or LWM2M_ERR_INTERNAL. */
int sim_dm_new(const sim_dm_config_t *cfg, sim_dm_t **out);
void sim_dm_free(sim_dm_t **dm);

/* CoAP method codes as they appear in the request header (RFC 7252 §12.1.1). */
enum { SIM_GET = 1, SIM_POST = 2, SIM_PUT = 3, SIM_DELETE = 4 };

/* One request from the Bootstrap-Server. Everything is borrowed for the call. */
typedef struct {
    int method;               /* SIM_GET ... or any other CoAP request code */
    const char *path;         /* Uri-Path options joined by '/', no leading '/'; "" is the root */
    size_t path_len;
    const char *query;        /* Uri-Query options joined by '&'; NULL if none */
    size_t query_len;
    int content_format;       /* Content-Format option, -1 if absent */
    int accept;               /* Accept option, -1 if absent */
    const uint8_t *payload;   /* may be NULL when payload_len == 0 */
    size_t payload_len;
} sim_request_t;

/* What a request did to the bootstrap procedure. */
typedef enum {
    SIM_DM_EV_NONE = 0,
    SIM_DM_EV_FINISH_OK,        /* Bootstrap-Finish accepted (2.04) */
    SIM_DM_EV_FINISH_REJECTED,  /* Bootstrap-Finish refused (4.06); detail says why */
} sim_dm_event_t;

typedef struct {
    int code;                 /* CoAP response code, LWM2M_CODE(class, detail), e.g. 2.05 = 69 */
    int content_format;       /* -1 if no Content-Format */
    uint8_t *payload;         /* malloc'd, owned by the response (sim_response_clear) */
    size_t payload_len;
    sim_dm_event_t event;
    char detail[192];         /* why an error was answered ("" on success) */
} sim_response_t;

/* Handles one Bootstrap-Server request (Discover, Read, Write, Delete,
 * Finish) against the model and fills `resp` (which need not be initialised;
 * the previous content is not freed). Never fails: protocol errors become
 * 4.xx/5.xx codes in resp->code. The model changes only on success codes. */
void sim_dm_handle(sim_dm_t *dm, const sim_request_t *req, sim_response_t *resp);
void sim_response_clear(sim_response_t *resp);

/* Bootstrap-Finish consistency check alone (what Finish would answer, minus
 * the fail_finish fault). Returns 0 or LWM2M_ERR_NOT_ACCEPTABLE with a reason
 * in `why`. Rules (docs/sim.md "Finish"):
 *  - every /0 instance has 0 (non-empty URI), 1 and 2; mode 0 (PSK) needs
 *    non-empty 3 and 5; modes 1, 2, 4 need 3, 4 and 5; mode 3 (NoSec) needs
 *    none of 3/4/5; a non-BS instance needs 10 (SSID 1..65534, unique);
 *  - the URI scheme matches the mode: coap:// / coap+tcp:// only with NoSec,
 *    coaps:// / coaps+tcp:// only with a secure mode;
 *  - at most one Bootstrap-Server account;
 *  - every /1 instance has the resources the registry marks mandatory
 *    (executables excepted) and a unique SSID 1..65534;
 *  - at least one non-BS /0 instance has a /1 instance with the same SSID. */
int sim_dm_check(const sim_dm_t *dm, char *why, size_t cap);

/* Read access. Records are sorted by path and borrowed until the next change
 * of the model. */
const lwm2m_records_t *sim_dm_records(const sim_dm_t *dm);
const lwm2m_record_t *sim_dm_find(const sim_dm_t *dm, const lwm2m_path_t *p);
bool sim_dm_has_instance(const sim_dm_t *dm, uint16_t oid, uint16_t iid);
/* Writes up to `cap` instance ids of `oid` (ascending) to iids; returns how many exist. */
size_t sim_dm_instances(const sim_dm_t *dm, uint16_t oid, uint16_t *iids, size_t cap);
/* Appends copies of every record at or below `prefix` to `out`.
 * Returns 0 or LWM2M_ERR_INTERNAL (out unchanged on failure). */
int sim_dm_copy(const sim_dm_t *dm, const lwm2m_path_t *prefix, lwm2m_records_t *out);
/* Instance id of the Bootstrap-Server account (/0 instance with 1 = true), or -1. */
int sim_dm_bs_account(const sim_dm_t *dm);
lwm2m_version_t sim_dm_version(const sim_dm_t *dm);

/* Renders a record value as text: strings as-is, opaque as lower-case hex,
 * numbers in decimal, booleans true/false, objlnk "o:i". Returns buf. */
char *sim_record_text(const lwm2m_record_t *r, char *buf, size_t cap);

/* ===================================================================
 * Part 2 - the simulator
 * =================================================================== */

typedef struct sim sim_t;
typedef struct sim_device sim_device_t;

/* Per-device PSK key provider: write the key for device `index` (0-based,
 * endpoint `ep`) to `key` (at most `cap` bytes) and return its length, or a
 * negative value to fail that device. Called once per device from sim_new. */
typedef int (*sim_psk_key_cb)(void *ud, size_t index, const char *ep, uint8_t *key, size_t cap);
/* Called from sim_step when a device reaches OK or FAILED. It must not call
 * sim_step, sim_run or sim_free. */
typedef void (*sim_done_cb)(void *ud, sim_t *sim, const sim_device_t *dev);

typedef struct {
    const char *server_uri;      /* coap://host[:port] or coaps://host[:port] (Bootstrap-Server); required */
    const char *local_addr;      /* address the client sockets bind to (ephemeral port); default "127.0.0.1" */
    bool addr_per_device;        /* default true: with an IPv4 loopback local_addr, device i binds to
                                    local_addr + i (127.0.0.1, 127.0.0.2, ... must stay in 127/8), so
                                    the server sees one address per device and a reused ephemeral port
                                    never makes a new device inherit an old device's server session */
    unsigned linger_ms;          /* keep a device's session open this long after the procedure
                                    ended, to answer retransmitted requests (a lost ACK of Finish);
                                    default 0. Lingering sessions do not count against concurrency */
    size_t count;                /* number of devices; required (>= 1) */
    const char *ep_prefix;       /* default "sim-" */
    unsigned first_index;        /* default 1 */
    unsigned ep_digits;          /* zero-padded width of the index; default 6 ("sim-000001") */
    const char *const *endpoints;/* explicit names (count entries); overrides prefix/index when set */
    lwm2m_version_t version;     /* default LWM2M_V1_1 */
    int format;                  /* preferred CF (TLV 11542, SenML JSON 110, SenML CBOR 112);
                                    sent as pct by 1.1+ clients. Default 112. 1.0 clients: TLV, no pct */
    bool omit_pct;               /* 1.1+ clients send no pct (tests the server's fallback) */
    /* Security (coaps:// URIs): PSK. identity = endpoint, or
     * psk_identity_prefix + zero-padded index when the prefix is set. */
    const char *psk_identity_prefix;
    const uint8_t *psk_key;      /* same key for every device (copied), or ... */
    size_t psk_key_len;
    sim_psk_key_cb psk_key_cb;   /* ... a per-device key (takes precedence) */
    void *psk_key_ud;
    unsigned concurrency;        /* devices bootstrapping at once; default 64 */
    unsigned timeout_ms;         /* per attempt, from the Bootstrap-Request to Finish; default 30000 */
    unsigned retries;            /* new attempts after a timeout / transport error / error on the Request; default 0 */
    unsigned retry_delay_ms;     /* hold-off before a retry; default 1000 */
    uint16_t bs_account_iid;     /* where the client's own BS account lives (/0/N); default 0 */
    const char *binding;         /* /3/0/16; default "U" */
    const lwm2m_records_t *factory; /* extra initial records for every device (e.g. /1 instances); borrowed until sim_new returns */
    /* Fault injection */
    bool refuse_discover;        /* Bootstrap-Discover answers 4.05 */
    bool fail_finish;            /* Bootstrap-Finish answers 4.06 */
    int stall_after;             /* -1: never. N >= 0: after answering N Bootstrap-Server requests the
                                    device closes its socket and answers nothing more (FAILED "stalled") */
    const struct lwm2m_registry *registry; /* borrowed object definitions; NULL = built-in ones */
    sim_done_cb on_done;
    void *ud;
} sim_config_t;

/* Fills defaults (see the fields). */
void sim_config_init(sim_config_t *cfg);

typedef enum { SIM_PENDING = 0, SIM_RUNNING, SIM_OK, SIM_FAILED } sim_state_t;
const char *sim_state_name(sim_state_t s); /* "pending", "running", "ok", "failed" */

typedef struct {
    sim_state_t state;
    const char *reason;          /* failure reason ("" otherwise); borrowed from the device */
    uint64_t latency_us;         /* OK: first Bootstrap-Request sent -> Finish answered */
    unsigned attempts;           /* Bootstrap-Requests sent (1 + retries used) */
    unsigned requests;           /* Bootstrap-Server requests answered in the last attempt */
} sim_status_t;

typedef struct {
    size_t total, ok, failed, pending, running;
    double elapsed_s;            /* sim_start -> last device done (or now) */
    double rate;                 /* ok / elapsed_s */
    double p50_ms, p90_ms, p99_ms, max_ms; /* latency of OK devices */
} sim_summary_t;

/* Validates `cfg`, resolves the server address, creates the libcoap context
 * and every device (data model, credentials) but opens no socket yet.
 * Everything in cfg is copied except `registry` (borrowed for the sim's
 * lifetime). Returns 0 and *out, or -EINVAL (bad config; message logged),
 * -ENOMEM, -EIO (libcoap). */
int sim_new(const sim_config_t *cfg, sim_t **out);
/* Starts the clock and the first `concurrency` devices. Returns 0 or -EALREADY. */
int sim_start(sim_t *sim);
/* One loop iteration: waits up to timeout_ms (0 = poll) for socket or timer
 * activity, lets libcoap process it, runs device timers, releases finished
 * sessions and starts pending devices. Returns the number of devices not yet
 * done plus the number of sessions still lingering (0 when every device is
 * OK or FAILED and no session is open), or -errno. EINTR returns the count. */
int sim_step(sim_t *sim, int timeout_ms);
/* sim_step until every device is done (and no session lingers) or timeout_ms
 * passed (<0: no limit). Calls sim_start first if needed.
 * Returns 0 when all are done, -ETIMEDOUT otherwise. */
int sim_run(sim_t *sim, int timeout_ms);
/* Stops the loop: pending devices stay PENDING, running ones become FAILED
 * "stopped", sessions are released. sim_step returns 0 afterwards. */
void sim_stop(sim_t *sim);
/* epoll descriptor of the loop (readable when sim_step has work), for callers
 * that embed the simulator in their own poll loop. Owned by the sim. */
int sim_fd(const sim_t *sim);
void sim_summary(const sim_t *sim, sim_summary_t *out);
void sim_free(sim_t **sim);

size_t sim_count(const sim_t *sim);
/* Device by 0-based index, or NULL. Borrowed until sim_free. */
const sim_device_t *sim_device(const sim_t *sim, size_t index);
const char *sim_device_endpoint(const sim_device_t *dev);
size_t sim_device_index(const sim_device_t *dev);
void sim_device_status(const sim_device_t *dev, sim_status_t *out);
/* The device's current data model (objects /0, /1, /2, /3, /21): borrowed,
 * valid until the next sim_step. */
const sim_dm_t *sim_device_dm(const sim_device_t *dev);

#endif
