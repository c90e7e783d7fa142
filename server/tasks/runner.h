/* Task runner: runs one task program for one device in one session, as an
 * event-driven interpreter over the step tree of task.h (STYLE.md §4).
 *
 *   NEW --task_runner_run--> RUNNING --(async op started)--> WAITING
 *   WAITING --task_runner_resume--> RUNNING ...
 *   RUNNING --end of program / <finish> / <wait> / error--> DONE
 *
 * The runner does no I/O. Everything outside it goes through the host vtable:
 * asynchronous operations (CoAP requests of the session, HTTP calls) are
 * started with host->start_op and completed by task_runner_resume(); context
 * values, server accounts, device properties and groups are synchronous host
 * calls. Exactly one operation is outstanding while WAITING.
 *
 * Bootstrap-session state shared by the tasks of one session (what Discover
 * told, which instance ids are taken, the write format) lives in a
 * task_bs_view_t owned by the session. */
#ifndef LWDM_TASKS_RUNNER_H
#define LWDM_TASKS_RUNNER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/lwm2m/lwm2m.h"
#include "server/tasks/expr.h"
#include "server/tasks/task.h"

struct lwm2m_registry;

typedef enum { TR_SESSION_BOOTSTRAP = 0, TR_SESSION_MANAGEMENT } tr_session_kind_t;

typedef enum { TR_OP_DISCOVER = 0, TR_OP_READ, TR_OP_WRITE, TR_OP_DELETE, TR_OP_FINISH, TR_OP_EXECUTE, TR_OP_HTTP } tr_op_kind_t;

typedef struct {
    const char *name, *value;
} tr_header_t;

typedef struct {
    tr_op_kind_t kind;
    /* CoAP */
    lwm2m_path_t path;
    int cf;                   /* payload format, LWM2M_CF_NONE without payload */
    const uint8_t *payload;   /* borrowed for the call */
    size_t len;
    /* HTTP */
    const char *method, *url, *body, *content_type, *user, *pass;
    const tr_header_t *headers;
    size_t nheaders;
    unsigned timeout_s;
} tr_op_t;

#define TR_MAX_IIDS 64

/* What a bootstrap session knows about the client (shared across its tasks). */
typedef struct {
    bool discovered;          /* Discover answered (or refused) */
    bool discover_refused;
    int version;              /* LWM2M_V1_x from Discover, 0 unknown */
    int pct;                  /* preferred format from the Request, LWM2M_CF_NONE */
    int cf;                   /* format for writes (after Discover) */
    int bs_iid;               /* BS account /0 instance, -1 unknown */
    uint16_t sec[TR_MAX_IIDS];/* /0 instances present on the device (besides the BS account) */
    size_t nsec;
    uint16_t srv[TR_MAX_IIDS];/* /1 instances present */
    size_t nsrv;
    bool finished;            /* Bootstrap-Finish accepted */
} task_bs_view_t;

void task_bs_view_init(task_bs_view_t *v, int pct);

/* Content format of Bootstrap-Writes (CONFORMANCE.md §1, §4 Formats): the
 * client's pct when lwdm writes it (TLV, SenML JSON, SenML CBOR; old TLV
 * 1542 as TLV); else TLV for a 1.0 client (no pct, Discover said 1.0 or
 * nothing); else SenML CBOR. pct is LWM2M_CF_NONE when the Request had none;
 * version is LWM2M_V1_x or 0. */
int tr_write_format(int pct, int version);

typedef struct task_runner task_runner_t;

typedef struct {
    /* Starts an asynchronous operation; its result comes back through
     * task_runner_resume(). Return 0, or -1 (the step fails). */
    int (*start_op)(void *host, task_runner_t *r, const tr_op_t *op);
    /* Context values for expressions (device.*, sv.*, task.*, server.*,
     * lwm2m.*); same contract as expr_lookup_fn. Task variables (#x) are the
     * runner's own. */
    int (*lookup)(void *host, const char *name, expr_value_t *out);
    /* Security (and Server) records that describe the configured LwM2M server
     * `ref` (an id, or a name when by_name) for this device, at /0/sec_iid and
     * /1/srv_iid; per-device credentials are generated and stored by the host.
     * *is_bootstrap tells a bootstrap-type server (no /1 instance then).
     * Return 0, or -1 with err. */
    int (*server_records)(void *host, const char *ref, bool by_name, int sec_iid, int srv_iid, lwm2m_records_t *out,
                          bool *is_bootstrap, char *err, size_t errlen);
    /* <store type="devProp">, <join>, <leave>: 0 or -1 with err. May be NULL. */
    int (*set_property)(void *host, const char *name, const char *value, char *err, size_t errlen);
    int (*group)(void *host, const char *group, bool join, char *err, size_t errlen);
    /* One line of the execution log. `code` is a CoAP code (class<<5|detail)
     * or an HTTP status, 0 if none. Strings may be NULL. */
    void (*log)(void *host, task_runner_t *r, const char *level, const char *step, const char *sent,
                const char *received, int code, const char *message);
} task_host_t;

typedef enum { TR_NEW = 0, TR_RUNNING, TR_WAITING, TR_DONE } tr_state_t;

/* Report status of a finished run */
typedef enum { TR_SUCCESS = 0, TR_WARNING, TR_ERROR, TR_IN_PROGRESS } tr_status_t;
const char *tr_status_name(tr_status_t s); /* "SUCCESS", ... */

/* Creates a run. `prog`, `reg` and `view` are borrowed and must outlive the
 * run. `vars_json` (may be NULL) restores the variables of an earlier run
 * (an IN_PROGRESS task resumed). NULL on ENOMEM. */
task_runner_t *task_runner_new(const task_program_t *prog, const struct lwm2m_registry *reg, const task_host_t *host,
                               void *hctx, tr_session_kind_t kind, task_bs_view_t *view, const char *vars_json);
void task_runner_free(task_runner_t **r);
/* Runs until the program waits for an operation or ends. */
void task_runner_run(task_runner_t *r);
/* Result of the outstanding operation: CoAP code or HTTP status (0 and
 * `error` set on transport failure/timeout), content format, payload
 * (borrowed). Continues running. */
void task_runner_resume(task_runner_t *r, int code, int cf, const uint8_t *payload, size_t len, const char *error);
/* Ends the run with ERROR (session gone, timeout). */
void task_runner_abort(task_runner_t *r, const char *why);

tr_state_t task_runner_state(const task_runner_t *r);
tr_status_t task_runner_status(const task_runner_t *r);  /* valid when DONE */
const char *task_runner_summary(const task_runner_t *r);
/* Task variables as a JSON object text (malloc'd); deferred operations are
 * kept under "__deferred" (an array) for the next management session. */
char *task_runner_vars_json(const task_runner_t *r);
void task_runner_set_user(task_runner_t *r, void *user);
void *task_runner_user(const task_runner_t *r);

#endif
