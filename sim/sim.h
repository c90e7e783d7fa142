/* lwdm-sim: many simulated LwM2M clients in one process, one event loop.
 *
 * Two layers, both public here:
 *
 *  1. The simulator (`sim_t`): N devices, each with its own libcoap client
 *     session (one UDP socket per device), driven by one epoll loop that the
 *     caller steps (`sim_step`) or runs (`sim_run`). A device performs the
 *     client side of LwM2M Bootstrap (Core TS 1.1.1 §6.1, §5.2 "Bootstrap
 *     Interface") and/or of the Registration interface (§6.2, §5.3) and then
 *     serves the management server's Device Management and Information
 *     Reporting requests (§5.4, §5.5): Read, Write, Execute, Create, Delete,
 *     Discover, Write-Attributes, Composite, Observe with notifications, and
 *     queue mode.
 *
 *  2. The device data model (`sim_dm_t`) and its request handler
 *     `sim_dm_handle()`: a plain request struct in, a response struct out, no
 *     libcoap and no clock, so unit tests can replay CoAP transcripts without
 *     sockets. The simulator feeds every request a Bootstrap-Server or a
 *     management server sends to a device through this handler.
 *
 * Threads: a `sim_t` is confined to the thread that calls sim_step/sim_run
 * (the "loop thread"); the only exception is sim_call(), which any thread may
 * use to run a function in the loop thread. The sim owns its own libcoap
 * context, so it can run in one thread while an lwdm server (with its own
 * context) runs in another thread of the same process.
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
    /* The client's own Bootstrap-Server account, created at /0/<bs_iid>.
     * May be NULL when dm_uri is set (a device provisioned without bootstrap). */
    const char *bs_uri;              /* copied; /0/N/0 */
    uint16_t bs_iid;                 /* default 0; Anjay keeps it at /0/1 */
    int bs_security_mode;            /* SIM_SEC_NOSEC or SIM_SEC_PSK */
    const uint8_t *psk_identity;     /* copied; /0/N/3 (PSK only) */
    size_t psk_identity_len;
    const uint8_t *psk_key;          /* copied; /0/N/5 (PSK only) */
    size_t psk_key_len;
    const char *binding;             /* /3/0/16 Supported Binding and Modes; NULL = "U" */
    /* Factory-provisioned management server account (direct registration,
     * no bootstrap): when set, /0/<first free iid> gets URI dm_uri, Bootstrap-
     * Server false, Security Mode dm_security_mode (with psk_identity/psk_key
     * for PSK) and SSID dm_ssid, and /1/0 gets SSID dm_ssid, Lifetime
     * lifetime, Notification Storing false and Binding dm_binding. */
    const char *dm_uri;              /* copied; NULL = none */
    int dm_security_mode;            /* SIM_SEC_NOSEC or SIM_SEC_PSK */
    uint16_t dm_ssid;                /* default 1 */
    uint32_t lifetime;               /* /1/0/1 in seconds; default 300 */
    const char *dm_binding;          /* /1/0/7; NULL = "U" */
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
 * the management server account when dm_uri is set, /3/0 (Device), /4/0
 * (Connectivity Monitoring), /7/0 (Connectivity Statistics) and the factory
 * records. Supported objects: 0, 1, 2, 3, 4, 7, and 21 for 1.1+ clients.
 * On success *out is owned by the caller (sim_dm_free).
 * Returns 0, LWM2M_ERR_BAD_REQUEST (bad config) or LWM2M_ERR_INTERNAL. */
int sim_dm_new(const sim_dm_config_t *cfg, sim_dm_t **out);
void sim_dm_free(sim_dm_t **dm);

/* CoAP method codes as they appear in the request header (RFC 7252 §12.1.1). */
enum { SIM_GET = 1, SIM_POST = 2, SIM_PUT = 3, SIM_DELETE = 4 };

/* FETCH, PATCH and iPATCH (RFC 8132) */
enum { SIM_FETCH = 5, SIM_PATCH = 6, SIM_IPATCH = 7 };

/* Which interface a request arrived on: the Bootstrap-Server's (during
 * bootstrap) or a management server's (while registered). The same path and
 * method mean different operations on the two (GET /1 is a Bootstrap-Read or
 * a Read; PUT /1/0 a Bootstrap-Write or a Write-Replace; ...). */
typedef enum { SIM_IFACE_BOOTSTRAP = 0, SIM_IFACE_DM = 1 } sim_iface_t;

/* One request from a server. Everything is borrowed for the call. */
typedef struct {
    sim_iface_t iface;        /* zero-initialised: bootstrap */
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

/* What a request asks of the device beyond the answer (the simulator acts
 * on it once the answer has left). */
typedef enum {
    SIM_DM_EV_NONE = 0,
    SIM_DM_EV_FINISH_OK,        /* Bootstrap-Finish accepted (2.04) */
    SIM_DM_EV_FINISH_REJECTED,  /* Bootstrap-Finish refused (4.06); detail says why */
    SIM_DM_EV_UPDATE_TRIGGER,   /* Execute /1/x/8: send a Registration Update */
    SIM_DM_EV_DISABLE,          /* Execute /1/x/4: de-register, come back after /1/x/5 seconds */
    SIM_DM_EV_BOOTSTRAP_TRIGGER,/* Execute /1/x/9 (1.1+): bootstrap again, then register */
    SIM_DM_EV_REBOOT,           /* Execute /3/0/4: register again (observations are lost) */
    SIM_DM_EV_SERVER_CHANGED,   /* a DM write changed /1/x/1 Lifetime or /1/x/7 Binding:
                                   send an Update carrying the new lt/b */
} sim_dm_event_t;

typedef struct {
    int code;                 /* CoAP response code, LWM2M_CODE(class, detail), e.g. 2.05 = 69 */
    int content_format;       /* -1 if no Content-Format */
    uint8_t *payload;         /* malloc'd, owned by the response (sim_response_clear) */
    size_t payload_len;
    sim_dm_event_t event;
    uint16_t event_iid;       /* the /1 instance an event is about */
    char location[24];        /* Create (2.01): the new instance, "/1/3" ("" otherwise) */
    char detail[192];         /* why an error was answered ("" on success) */
} sim_response_t;

/* Handles one request against the model and fills `resp` (which need not be
 * initialised; the previous content is not freed). Never fails: protocol
 * errors become 4.xx/5.xx codes in resp->code. The model changes only on
 * success codes.
 *  - SIM_IFACE_BOOTSTRAP: Bootstrap-Discover, -Read, -Write, -Delete, -Finish
 *    (docs/sim.md "Client behaviour").
 *  - SIM_IFACE_DM: Read (GET), Discover (GET, Accept 40), Write-Replace
 *    (PUT /o/i, /o/i/r, /o/i/r/ri), Write-Attributes (PUT with a query and
 *    neither payload nor Content-Format), Partial Update (POST /o/i),
 *    Execute (POST /o/i/r), Create (POST /o), Delete (DELETE /o/i,
 *    /o/i/r/ri), Read-Composite (FETCH /) and Write-Composite (iPATCH /) for
 *    1.1+ clients (docs/sim.md "Device management"). /0 and /21 answer 4.01.
 *    Observe is the simulator's business: a GET is a Read here. */
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

/* Replaces the value of one resource (len 3) or resource instance (len 4)
 * of an existing instance, as the device itself would (no access rights,
 * read-only resources included; /0 and /21 too). The record is copied; its
 * type is checked against the object definition (string/opaque converted).
 * Returns 0, LWM2M_ERR_NOT_FOUND (no such instance), LWM2M_ERR_BAD_REQUEST
 * (bad path or type) or LWM2M_ERR_INTERNAL. */
int sim_dm_set_value(sim_dm_t *dm, const lwm2m_record_t *r);

/* Lets `dt_s` seconds of device life pass (docs/sim.md "Values that change"):
 * battery drains, signal strength and link quality wander, memory free
 * varies, current time follows `unix_now` (plus the offset a write of
 * /3/0/13 set), and, while collection runs (/7/0/6 Start .. /7/0/7 Stop),
 * the /7 counters grow. `rng` is the caller's random state (any non-zero
 * seed); the same seed and inputs give the same values. */
void sim_dm_tick(sim_dm_t *dm, double dt_s, int64_t unix_now, uint32_t *rng);

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
/* Called from sim_step when a device reaches its goal (OK: bootstrapped, or
 * registered when the device registers) or FAILED. Called once per device.
 * It must not call sim_step, sim_run, sim_stop or sim_free. */
typedef void (*sim_done_cb)(void *ud, sim_t *sim, const sim_device_t *dev);

typedef struct {
    const char *server_uri;      /* coap://, coaps:// (DTLS), coap+tcp:// or coaps+tcp:// (TLS)
                                    host[:port] (Bootstrap-Server); required unless dm_server_uri is set */
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
    /* Security (coaps:// and coaps+tcp:// URIs): PSK. identity = endpoint, or
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

    /* ---- Registration and device management (docs/sim.md "Registration") ----
     * register_after_bootstrap: after Bootstrap-Finish the device registers
     * to the management server its data model names (the non-BS /0 instance
     * whose SSID matches a /1 instance): coap:// NoSec, coaps:// PSK with
     * /0/x/3 and /0/x/5, the same over TCP for coap+tcp:// and coaps+tcp://
     * (TLS). Its goal (on_done, sim_run) is then "registered".
     * dm_server_uri: direct mode: no bootstrap; the device model gets a /0
     * account for this URI (PSK from the psk_* settings for coaps:// and
     * coaps+tcp://; binding T by default over TCP) and a
     * /1/0 instance, and the device registers to it. server_uri may be NULL
     * then; when set, it still becomes the device's Bootstrap-Server account
     * (used by the Bootstrap-Request Trigger /1/x/9). */
    bool register_after_bootstrap;
    const char *dm_server_uri;
    unsigned lifetime_s;         /* lt; 0 = /1/x/1 of the server account if present, else 300.
                                    Non-zero also overwrites /1/x/1 */
    unsigned update_interval_ms; /* between Registration Updates; 0 = 80 % of the lifetime */
    bool queue_mode;             /* 1.0: b=UQ, 1.1+: Q; sleeps awake_ms after the last traffic */
    unsigned awake_ms;           /* queue mode awake window; default 93000 (MAX_TRANSMIT_WAIT) */
    unsigned tick_ms;            /* period of the value changes (sim_dm_tick); default 1000; 0 = frozen */
    unsigned con_notify_every;   /* every Nth notification is CON, the others NON; default 1 (all CON) */
} sim_config_t;

/* Fills defaults (see the fields). */
void sim_config_init(sim_config_t *cfg);

typedef enum { SIM_PENDING = 0, SIM_RUNNING, SIM_OK, SIM_FAILED } sim_state_t;
const char *sim_state_name(sim_state_t s); /* "pending", "running", "ok", "failed" */

/* Strings are borrowed from the device, valid until its next change (the
 * next sim_step). */
typedef struct {
    sim_state_t state;           /* OK: goal reached (bootstrapped, or registered once) */
    const char *reason;          /* failure reason ("" otherwise) */
    uint64_t latency_us;         /* OK: first request sent (Bootstrap-Request, or Register in
                                    direct mode) -> goal reached */
    unsigned attempts;           /* Bootstrap-Requests sent (1 + retries used) */
    unsigned requests;           /* Bootstrap-Server requests answered in the last attempt */
    /* registration */
    bool registered;             /* a 2.01 was received and no De-register/expiry since */
    bool sleeping;               /* queue mode: session closed until the next Update */
    const char *reg_state;       /* "idle", "registering", "registered", "updating", "sleeping",
                                    "deregistering", "holdoff", "disabled", "deregistered", "failed" */
    const char *location;        /* "/rd/5" while registered, else "" */
    const char *server;          /* management server URI ("" before registration) */
    unsigned registrations;      /* 2.01 answers received */
    unsigned updates;            /* 2.04 answers to Updates received */
    unsigned notifications;      /* notifications sent */
    unsigned observations;       /* observations active now */
    unsigned dm_requests;        /* management server requests answered */
    int last_dm_method;          /* CoAP method code of the last one (0 if none) */
    const char *last_dm_path;    /* its path, "/3/0/9" ("" if none) */
    int last_dm_code;            /* its answer, LWM2M_CODE(c, d) */
} sim_status_t;

typedef struct {
    size_t total, ok, failed, pending, running;
    size_t registered;           /* devices registered right now */
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
/* One loop iteration: waits up to timeout_ms (0 = poll) for socket, timer or
 * sim_call activity, lets libcoap process it, runs queued sim_call
 * functions and device timers (updates, queue-mode sleep, value changes,
 * notifications), releases finished sessions and starts pending devices.
 * Returns the number of devices not yet done (goal reached or FAILED) plus
 * the number of bootstrap sessions still lingering, or -errno; EINTR
 * returns the count. Registered devices count as done and keep running as
 * long as the caller keeps calling sim_step, also once it returns 0. */
int sim_step(sim_t *sim, int timeout_ms);
/* sim_step until every device is done (reached its goal or FAILED, and no
 * session lingers) or timeout_ms passed (<0: no limit). Calls sim_start
 * first if needed.
 * Returns 0 when all are done, -ETIMEDOUT otherwise. */
int sim_run(sim_t *sim, int timeout_ms);
/* Stops the loop: pending devices stay PENDING, devices still on their way
 * to the goal become FAILED "stopped"; registered devices de-register
 * (DELETE /rd/<loc>; a sleeping queue-mode device wakes up for it) and
 * sim_stop waits up to about 1 s for the answers. Every session is then
 * released. sim_step returns 0 afterwards. Not from a callback. */
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

/* ---- Control (docs/sim.md "Controlling devices from a test") ----
 *
 * sim_call is the one function any thread may call: it queues fn(sim, arg)
 * to run in the loop thread during the next sim_step (an eventfd in the
 * sim's epoll set wakes a waiting sim_step). Calls run in the order they
 * were queued; fn may use every loop-thread function below but not
 * sim_step/sim_run/sim_stop/sim_free. Calls still queued when the sim is
 * freed are dropped (never run). The caller synchronises on completion
 * itself (e.g. fn posts a semaphore in arg). Returns 0, -ENOMEM, or
 * -ESHUTDOWN after sim_stop. */
int sim_call(sim_t *sim, void (*fn)(sim_t *sim, void *arg), void *arg);

/* Loop-thread functions. `index` is 0-based. They return 0, -ENOENT (no
 * such device) or -EINVAL (the device is not in a state where this makes
 * sense: not in a registration phase, not in queue mode, ...).
 *  - update_now: send a Registration Update now (a sleeping device wakes up:
 *    new session, DTLS handshake, Update);
 *  - deregister: DELETE /rd/<loc>; the device stays deregistered until
 *    sim_device_reregister;
 *  - sleep: queue-mode device: close the session now (as if awake_ms passed);
 *  - set_value: sim_dm_set_value on the device's model, then notify the
 *    observations it affects (pmin/pmax/gt/lt/st permitting); the record is
 *    copied; also LWM2M errors from sim_dm_set_value;
 *  - reregister: a new Register (observations are dropped), also after a
 *    de-registration. */
int sim_device_update_now(sim_t *sim, size_t index);
int sim_device_deregister(sim_t *sim, size_t index);
int sim_device_sleep(sim_t *sim, size_t index);
int sim_device_set_value(sim_t *sim, size_t index, const lwm2m_record_t *rec);
int sim_device_reregister(sim_t *sim, size_t index);

#endif
