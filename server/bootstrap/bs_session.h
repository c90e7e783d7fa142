/* Bootstrap session: the server side of one client-initiated bootstrap, as an
 * event-driven state machine owned by the network loop (STYLE.md §4).
 *
 *   NEW --start--> DISCOVER --2.05/error--> RUN (Delete /0, Delete /1,
 *   Write per instance) --all 2.xx--> FINISH --2.04--> DONE
 *   any state --error response, transport failure, timeout, cancel--> FAILED
 *
 * Transitions happen in exactly three places: bs_session_on_response(),
 * bs_session_on_error() (transport failure, nack, the owner's watchdog timer)
 * and bs_session_cancel(). Each sends at most one request and returns.
 * DONE and FAILED are sticky: later events are ignored (pager-style).
 * Invariant: in DISCOVER/RUN/FINISH exactly one request is outstanding.
 *
 * The session does no I/O itself: it calls io->send() to put a request on the
 * wire and io->done() once when it reaches DONE or FAILED. */
#ifndef LWDM_BS_SESSION_H
#define LWDM_BS_SESSION_H
#include <stdbool.h>
#include <stdint.h>

#include "server/bootstrap/bs_plan.h"

typedef enum { BS_NEW = 0, BS_DISCOVER, BS_RUN, BS_FINISH, BS_DONE, BS_FAILED } bs_state_t;

/* CoAP request method codes */
enum { BS_GET = 1, BS_POST = 2, BS_PUT = 3, BS_DELETE = 4 };

typedef struct bs_session bs_session_t;

typedef struct {
    /* Puts one request on the wire. `path` NULL means the Finish URI /bs.
     * `accept` is LWM2M_CF_NONE when absent. The payload is borrowed for the
     * call. Return 0 if sent, or a negative value (the session then fails). */
    int (*send)(void *ctx, bs_session_t *s, int method, const lwm2m_path_t *path, int cf, int accept,
                const uint8_t *payload, size_t len);
    /* Called once when the session reaches DONE or FAILED. The owner may free
     * the session only after this returns (e.g. at the end of the loop pass). */
    void (*done)(void *ctx, bs_session_t *s);
} bs_session_io_t;

/* Creates a session for `endpoint` (copied). `pct` is the Bootstrap-Request's
 * preferred content format or LWM2M_CF_NONE. Takes ownership of `accts`
 * (an array of n accounts, freed with the session). NULL on ENOMEM. */
bs_session_t *bs_session_new(const bs_session_io_t *io, void *io_ctx, const char *endpoint, int64_t device_id,
                             int pct, bs_account_t *accts, size_t n, int64_t now_ms);
void bs_session_free(bs_session_t **s);

/* Sends Bootstrap-Discover. */
void bs_session_start(bs_session_t *s, int64_t now_ms);
/* A response to the outstanding request: CoAP code (class<<5|detail),
 * content format (LWM2M_CF_NONE if absent), payload (borrowed). */
void bs_session_on_response(bs_session_t *s, int code, int cf, const uint8_t *payload, size_t len, int64_t now_ms);
/* Transport failure / no answer / watchdog. */
void bs_session_on_error(bs_session_t *s, const char *reason, int64_t now_ms);
/* The client started over (new Bootstrap-Request) or the server shuts down. */
void bs_session_cancel(bs_session_t *s, const char *reason, int64_t now_ms);

bs_state_t bs_session_state(const bs_session_t *s);
bool bs_session_finished(const bs_session_t *s);   /* DONE or FAILED */
bool bs_session_succeeded(const bs_session_t *s);  /* DONE */
const char *bs_session_reason(const bs_session_t *s); /* failure reason, "" when none */
const char *bs_session_endpoint(const bs_session_t *s);
int64_t bs_session_device_id(const bs_session_t *s);
int64_t bs_session_started_ms(const bs_session_t *s);
int bs_session_cf(const bs_session_t *s);         /* format chosen for writes */
int bs_session_version(const bs_session_t *s);    /* learnt from Discover, 0 if unknown */
int bs_session_bs_iid(const bs_session_t *s);     /* BS account instance, BS_IID_UNKNOWN */
/* The steps so far as JSON text (malloc'd, caller frees):
 * [{"op":"request","path":"/bs","code":"2.04","ms":0}, {"op":"discover",...}, ...] */
char *bs_session_steps_json(const bs_session_t *s);
/* Records the Bootstrap-Request step (done by the owner, who answered it). */
void bs_session_note_request(bs_session_t *s, const char *uri, int code);
/* Owner's slot for transport state (e.g. the libcoap session and the token). */
void bs_session_set_user(bs_session_t *s, void *user);
void *bs_session_user(const bs_session_t *s);
/* Records that the config written to the device is `recs` (for tests/pack). */
const lwm2m_records_t *bs_session_records(const bs_session_t *s);

#endif
