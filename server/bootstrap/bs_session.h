/* Bootstrap session: the server side of one client-initiated bootstrap. It
 * runs the device's pending tasks (task.h programs) one after another through
 * task runners, on top of the CoAP exchanges of one client.
 *
 *   NEW --start--> RUN (task 1, task 2, ...) --all done, Finish accepted--> DONE
 *   any state --task ERROR, transport failure, timeout, cancel--> FAILED
 *   RUN --all tasks done but no Bootstrap-Finish sent--> FAILED
 *
 * Transitions happen in three places: bs_session_on_response() /
 * bs_session_on_http() (answers), bs_session_on_error() (transport failure,
 * nack, the owner's watchdog) and bs_session_cancel(). Each starts at most one
 * request and returns. DONE and FAILED are sticky (pager-style).
 * Invariant: in RUN exactly one operation (CoAP request or HTTP call) is
 * outstanding, owned by the current task's runner.
 *
 * The session does no I/O itself: it calls the io vtable. */
#ifndef LWDM_BS_SESSION_H
#define LWDM_BS_SESSION_H
#include <stdbool.h>
#include <stdint.h>

#include "server/bootstrap/bs_plan.h"
#include "server/tasks/runner.h"
#include "server/tasks/task.h"

typedef enum { BS_NEW = 0, BS_RUN, BS_DONE, BS_FAILED } bs_state_t;

/* CoAP request method codes */
enum { BS_GET = 1, BS_POST = 2, BS_PUT = 3, BS_DELETE = 4 };

typedef struct bs_session bs_session_t;

/* One task run within the session; results are filled when it ends. */
typedef struct {
    const task_program_t *prog;   /* borrowed: the owner keeps it alive */
    int64_t task_id;              /* 0 for a program that is not a stored task */
    char name[128];
    void *owner;                  /* owner's data (e.g. report id) */
    /* results */
    bool ran;
    tr_status_t status;
    char summary[384];
    char *vars_json;              /* malloc'd by the session, freed with it */
} bs_task_t;

typedef struct {
    /* Puts one CoAP request on the wire. `path` NULL means the Finish URI /bs.
     * `accept` is LWM2M_CF_NONE when absent. The payload is borrowed for the
     * call. Return 0 if sent, or a negative value. */
    int (*send)(void *ctx, bs_session_t *s, int method, const lwm2m_path_t *path, int cf, int accept,
                const uint8_t *payload, size_t len);
    /* Starts an HTTP call (<rest>); the result comes back through
     * bs_session_on_http(). May be NULL (then <rest> fails). */
    int (*http)(void *ctx, bs_session_t *s, const tr_op_t *op);
    /* As task_host_t (runner.h), with the session. */
    int (*server_records)(void *ctx, bs_session_t *s, const char *ref, bool by_name, int sec_iid, int srv_iid,
                          lwm2m_records_t *out, bool *is_bootstrap, char *err, size_t errlen);
    int (*lookup)(void *ctx, bs_session_t *s, const char *name, expr_value_t *out);
    int (*set_property)(void *ctx, bs_session_t *s, const char *name, const char *value, char *err, size_t errlen);
    int (*group)(void *ctx, bs_session_t *s, const char *group, bool join, char *err, size_t errlen);
    /* A task starts (return its owner data as you like) / logs / ends. May be NULL. */
    void (*task_start)(void *ctx, bs_session_t *s, bs_task_t *t);
    void (*task_log)(void *ctx, bs_session_t *s, bs_task_t *t, const char *level, const char *step, const char *sent,
                     const char *received, int code, const char *message);
    void (*task_done)(void *ctx, bs_session_t *s, bs_task_t *t);
    /* Called once when the session reaches DONE or FAILED. The owner may free
     * the session only after this returns (e.g. at the end of the loop pass). */
    void (*done)(void *ctx, bs_session_t *s);
} bs_session_io_t;

/* Creates a session for `endpoint` (copied). `pct` is the Bootstrap-Request's
 * preferred content format or LWM2M_CF_NONE. `reg` is borrowed. */
bs_session_t *bs_session_new(const bs_session_io_t *io, void *io_ctx, const char *endpoint, int64_t device_id,
                             int pct, const struct lwm2m_registry *reg, int64_t now_ms);
void bs_session_free(bs_session_t **s);
/* Queues a task (before start). `vars_json` (copied, may be NULL) restores
 * the variables of an interrupted run. 0 or -1. */
int bs_session_add_task(bs_session_t *s, const task_program_t *prog, int64_t task_id, const char *name,
                        const char *vars_json, void *owner);
size_t bs_session_task_count(const bs_session_t *s);
bs_task_t *bs_session_task(bs_session_t *s, size_t i);

void bs_session_start(bs_session_t *s, int64_t now_ms);
/* A CoAP response to the outstanding request: code (class<<5|detail),
 * content format (LWM2M_CF_NONE if absent), payload (borrowed). */
void bs_session_on_response(bs_session_t *s, int code, int cf, const uint8_t *payload, size_t len, int64_t now_ms);
/* The result of the outstanding HTTP call: status, body (borrowed), or error. */
void bs_session_on_http(bs_session_t *s, int status, const uint8_t *body, size_t len, const char *error, int64_t now_ms);
/* Transport failure / no answer / watchdog. */
void bs_session_on_error(bs_session_t *s, const char *reason, int64_t now_ms);
/* The client started over (new Bootstrap-Request) or the server shuts down. */
void bs_session_cancel(bs_session_t *s, const char *reason, int64_t now_ms);

bs_state_t bs_session_state(const bs_session_t *s);
bool bs_session_finished(const bs_session_t *s);   /* DONE or FAILED */
bool bs_session_succeeded(const bs_session_t *s);  /* DONE */
bool bs_session_awaiting_http(const bs_session_t *s);
const char *bs_session_reason(const bs_session_t *s); /* failure reason, "" when none */
const char *bs_session_endpoint(const bs_session_t *s);
int64_t bs_session_device_id(const bs_session_t *s);
int64_t bs_session_started_ms(const bs_session_t *s);
const task_bs_view_t *bs_session_view(const bs_session_t *s);
/* The steps so far as JSON text (malloc'd, caller frees):
 * [{"op":"request","path":"/bs","code":"2.04","ms":0}, {"op":"discover",...}, ...] */
char *bs_session_steps_json(const bs_session_t *s);
/* Records the Bootstrap-Request step (done by the owner, who answered it). */
void bs_session_note_request(bs_session_t *s, const char *uri, int code);
/* Owner's slot for transport state (e.g. the libcoap session and the token). */
void bs_session_set_user(bs_session_t *s, void *user);
void *bs_session_user(const bs_session_t *s);

#endif
