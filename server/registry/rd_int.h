/* registry room internals, shared by the server/registry sources only (the
 * surface is rd.h). */
#ifndef LWDM_REGISTRY_RD_INT_H
#define LWDM_REGISTRY_RD_INT_H
#include <jansson.h>
#include <pthread.h>

#include "server/common/events.h"
#include "server/lwm2m/lwm2m.h"
#include "server/registry/rd.h"
#include "server/timers.h"

/* int64 -> pointer, open addressing (device ids, locations) */
typedef struct {
    int64_t key;
    void *val;
} rd_map_slot_t;
typedef struct {
    rd_map_slot_t *slots;
    size_t n, cap;
} rd_map_t;
void *rd_map_get(const rd_map_t *m, int64_t key);
int rd_map_put(rd_map_t *m, int64_t key, void *val);
void rd_map_del(rd_map_t *m, int64_t key);

typedef struct rd_reg rd_reg_t;
typedef struct rd_rq rd_rq_t;

/* Result of a request to a device: CoAP code (0 with err on transport
 * failure/timeout), content format, payload (borrowed for the call), the
 * response PDU (NULL without one). */
typedef void (*rd_result_fn)(rd_t *rd, rd_reg_t *r, void *user, int code, int cf, const uint8_t *payload, size_t len,
                             const coap_pdu_t *resp, const char *err);

typedef struct {
    int method;               /* COAP_REQUEST_CODE_* */
    lwm2m_path_t path;        /* len 0 = the root */
    int cf, accept;           /* LWM2M_CF_NONE when absent */
    int observe;              /* -1, 0 register, 1 deregister */
    const char *query;        /* "pmin=1&pmax=5" or NULL */
    const uint8_t *payload;
    size_t len;
    unsigned timeout_ms;      /* 0 = default */
    bool keep_when_asleep;    /* queue mode: wait for the next wake-up */
} rd_req_spec_t;

struct rd_rq {
    rd_rq_t *next;
    rd_t *rd;
    rd_reg_t *reg;
    int64_t id;               /* request id (API, queue mode) */
    rd_req_spec_t spec;       /* payload/query owned copies */
    uint8_t *payload;
    char *query;
    uint8_t token[8];
    coap_mid_t mid;
    bool sent;
    bool observe_token_kept;  /* the token became an observation's */
    rd_result_fn fn;
    void *user;
    lwdm_timer_t timer;       /* API deadline (sync) / queue expiry */
};

typedef struct rd_obs {
    struct rd_obs *next;
    char path[48];
    lwm2m_path_t p;
    uint8_t token[8];
    bool active;              /* confirmed by the device since its last Register */
    char *attrs;              /* JSON object text, or NULL */
    bool have_seq;
    int64_t last_seq;         /* Observe value of the last fresh notification */
    int64_t last_seq_ms;      /* monotonic time it arrived */
} rd_obs_t;

typedef struct {
    int64_t id;
    int64_t device_id;
    int http_status;
    char *json;               /* the answer body (object) */
    int state;                /* RQ_STATE_* */
} rd_done_t;
#define RD_DONE_KEEP 1024 /* finished queued requests kept for GET .../requests/{id} */
enum { RQ_STATE_QUEUED = 0, RQ_STATE_SENT, RQ_STATE_DONE, RQ_STATE_FAILED, RQ_STATE_EXPIRED };

struct rd_reg {
    rd_t *rd;
    int64_t device_id;
    int64_t location;
    char endpoint[130];
    int64_t lifetime;         /* s */
    int version;              /* LWM2M_V1_x */
    char binding[8];
    bool queue_mode;
    char *sms;
    char *links;              /* object links as received */
    char root[32];            /* alternate path ("" = none) */
    int cfs[8];
    size_t ncf;
    bool secure;              /* DTLS or TLS (PSK identity checked) */
    bool tcp;                 /* CoAP over TCP/TLS: unreachable while it has no connection */
    char *psk_identity;
    char address[64];
    int64_t registered_at, last_update_at, expires_at, last_contact, awake_until; /* unix ms */
    coap_mid_t last_reg_mid;  /* retransmitted Register detection; -1 none */
    coap_session_t *cs;       /* referenced while attached; NULL when lwdm has none (after a
                                 restart, or a closed DTLS session / TCP connection) */
    cudp_peer_t *up;          /* or the peer of lwdm's own UDP endpoint (referenced); at most one is set */
    lwdm_timer_t expiry;
    /* requests */
    rd_rq_t *q_head, *q_tail; /* waiting */
    size_t nq;
    rd_rq_t *inflight;
    rd_obs_t *obs;
    /* management session (tasks) */
    void *tasks;
    uint64_t idle_tasks_gen;     /* db_tasks_generation() at which no task of this device could run in
                                  * a management session (rd_session_start skips the lookup); 0: unknown */
    /* lists of rd_t */
    bool obs_restore;         /* loaded at start: re-observe on the next session */
    bool dirty, start_pending, start_register;
    rd_reg_t *dirty_next, *start_next;
};

struct rd {
    rd_config_t cfg;
    rd_map_t by_dev, by_loc;
    rd_map_t handshakes;      /* DTLS sessions referenced until their first request */
    rd_reg_t *dirty;
    rd_reg_t *starts;
    bool tx_open;
    uint64_t token_base, token_seq;
    int64_t next_request_id;
    pthread_mutex_t inbox_lock;
    devop_t **inbox;
    size_t ninbox, inbox_cap;
    devop_t **answered;       /* REST operations answered in this pass: released once it is committed */
    events_batch_t evq;       /* the pass's live events: published once it is committed */
    size_t nanswered, answered_cap;
    bool stopping;
    const void *last_dereg_from; /* session or peer: a retransmitted De-register gets 2.02 again */
    coap_mid_t last_dereg_mid;
    rd_done_t *done;          /* finished queued requests (ring of RD_DONE_KEEP), lazily allocated */
    size_t done_next;
    pthread_mutex_t deleted_lock;
    int64_t *deleted;         /* devices deleted through the API: drop their registrations */
    size_t ndeleted, deleted_cap;
    void *task_cache;         /* rd_session.c */
};

/* rd.c */
/* Joins (or begins) the loop pass's transaction; committed in rd_after_io. */
void rd_tx(rd_t *rd);
/* monotonic ms: the clock of the loop's timer heap */
int64_t rd_mono_ms(void);
void rd_publish(rd_t *rd, const rd_reg_t *r, int64_t device_id, const char *endpoint, const char *type, json_t *data);
bool rd_reg_awake(const rd_reg_t *r, int64_t now_ms);
/* A request to the device on its session or UDP peer (cu_send_request's
 * arguments, the root from the registration). */
coap_mid_t rd_send(rd_reg_t *r, int method, const lwm2m_path_t *path, int cf, int accept, int observe,
                   const char *query, const uint8_t *payload, size_t len, const uint8_t token[8]);
int rd_parse_binding(const char *b, char *transports, size_t cap, bool *queue);
int rd_parse_links(const uint8_t *data, size_t len, char *root, size_t rootcap, int *cfs, size_t *ncf, char *msg,
                   size_t cap);
int rd_preferred_format(const rd_reg_t *r);

/* rd_requests.c: requests to devices, API operations, observations */
/* Queues a request (sent when the device is awake and nothing else is in
 * flight). Returns 0, -1 (out of memory), -2 (queue full) or -3 (a device
 * registered over TCP has no connection and the request would not wait). */
int rd_request(rd_t *rd, rd_reg_t *r, const rd_req_spec_t *spec, rd_result_fn fn, void *user, int64_t *id_out);
/* A device registered over TCP/TLS whose connection is gone: nothing can
 * reach it until it connects again and sends (Update / Register). */
bool rd_reg_disconnected(const rd_reg_t *r);
void rd_requests_flush(rd_t *rd, rd_reg_t *r);
bool rd_requests_on_response(rd_t *rd, rd_reg_t *r, const coap_pdu_t *recv);
void rd_requests_on_nack(rd_t *rd, rd_reg_t *r, coap_mid_t mid, const char *why);
void rd_requests_fail_all(rd_t *rd, rd_reg_t *r, const char *why);
/* Fails the waiting requests that would not wait for the device's next
 * message (keep_when_asleep unset): its TCP connection is gone. */
void rd_requests_fail_waiting(rd_t *rd, rd_reg_t *r, const char *why);
void rd_obs_free_all(rd_reg_t *r);
void rd_obs_restore(rd_t *rd, rd_reg_t *r);
/* The answer to an Observe: keeps the observation (token, stored row). */
bool rd_obs_established(rd_t *rd, rd_reg_t *r, const lwm2m_path_t *path, const coap_pdu_t *resp, const char *attrs);
void rd_devop_start(rd_t *rd, devop_t *op);
void rd_devop_fail(rd_t *rd, devop_t *op, int http_status, const char *title, const char *detail);
/* Hands answered REST operations back to the API (op->done); rd_after_io calls
 * it after the pass's commit, so an answer never announces an uncommitted write. */
void rd_devops_release(rd_t *rd);

/* rd_session.c: tasks on management sessions */
void rd_session_start(rd_t *rd, rd_reg_t *r, bool is_register);
void rd_tasks_abort(rd_t *rd, rd_reg_t *r, const char *why);
void rd_tasks_cache_free(rd_t *rd);

#endif
