/* Task runner: runs one task program for one device in one session, as an
 * event-driven interpreter over the step tree of task.h (STYLE.md §4).
 *
 *   NEW --task_runner_run--> RUNNING --(async op started)--> WAITING
 *   WAITING --task_runner_resume--> RUNNING ...
 *   RUNNING --end of program / <finish> / <wait> / error--> DONE
 *   WAITING --task_runner_abort--> DONE (ERROR)
 *   WAITING --task_runner_suspend--> DONE (IN_PROGRESS, resumable)
 *
 * The runner does no I/O. Everything outside it goes through the host vtable:
 * asynchronous operations (CoAP requests of the session, HTTP calls) are
 * started with host->start_op and completed by task_runner_resume(); context
 * values, server accounts, device properties and groups are synchronous host
 * calls. Exactly one operation is outstanding while WAITING.
 *
 * Session state shared by the tasks of one session (for a bootstrap session:
 * what Discover told, which instance ids are taken; for both: the write
 * format) lives in a task_session_view_t owned by the session.
 *
 * Operations per session kind (TASKS.md "The language"; tr_op_t below):
 *
 *   step                 bootstrap session            management session
 *   lwm2mBootstrap*      DISCOVER, DELETE, WRITE,     ERROR "runs only on a
 *                        FINISH                       bootstrap session"
 *   <set>                WRITE (Bootstrap-Write)      WRITE (replace: PUT)
 *   <get>                READ (Bootstrap-Read, 1.1+)  READ
 *   <execute>            deferred (see Resuming)      EXECUTE
 *   <delete>, <create>,  ERROR "runs only on a        DELETE, CREATE, OBSERVE,
 *   <observe>,           management session"          WRITE_ATTRIBUTES
 *   <setAttributes>
 *   <rest>               HTTP                         HTTP
 *
 * On a bootstrap session, once Bootstrap-Finish was accepted the device has
 * left bootstrap: the next step that needs the device (set, get, delete,
 * create, observe, setAttributes) is not sent; the run ends IN_PROGRESS
 * there and resumes at that step in the next management session.
 *
 * Resuming. A run that cannot finish in this session ends DONE with status
 * IN_PROGRESS and keeps in its variables (task_runner_vars_json) where to go
 * on; task_runner_new() with those variables resumes there and never repeats
 * a step that completed. Reserved variables (user variables may not start
 * with "__"):
 *   "__pc"       integer: pre-order index (task_program_t.nnodes order) of
 *                the next step to run; nnodes = the end of the program
 *   "__prog"     the program's fingerprint (16 hex digits); a saved run of an
 *                edited program ends ERROR when resumed instead of running
 *                the wrong steps
 *   "__deferred" array of operations to perform first in the next management
 *                session, in order: {"op":"execute","path":"/7/0/6",
 *                "arguments":"","line":5} or {"op":"write","path":"/7/0/8",
 *                "value":"60","type":"integer","line":4}; each is removed
 *                once the device accepted it, so none is sent twice
 *   "__deadline" integer, ms since 1970: a <wait timeoutSeconds> that expires;
 *                resuming later ends ERROR "wait timed out"
 * A resumed run, in this order: checks __prog (ERROR if changed); stays
 * IN_PROGRESS untouched when its next work cannot run in this kind of
 * session (task_resume_runs_in false); on a management session performs
 * __deferred (each logged; a failure ends ERROR); checks __deadline; then
 * continues at __pc. A run that ends SUCCESS, WARNING or ERROR drops these
 * variables, so its variables never resume anything.
 * Variables with "__deferred" but no "__pc" (reports written before resuming
 * existed) resume at the end of the program.
 *
 * A management host, per session (Register -> SCHED_REGISTER, Update or
 * queue-mode wake-up -> SCHED_UPDATE):
 *   1. task_view_init_management(&view, ct, version) from the registration.
 *   2. For each candidate task: vars = the report's variables if its status
 *      is IN_PROGRESS, else NULL; fits = task_resume_runs_in(prog, vars,
 *      TR_SESSION_MANAGEMENT) (which is task_runs_in for vars NULL);
 *      sched_decide_in(..., fits, condition) == SCHED_RUN (no condition for
 *      IN_PROGRESS).
 *   3. task_runner_new(prog, reg, &host, ctx, TR_SESSION_MANAGEMENT, &view,
 *      vars); task_runner_set_now(r, wall ms); task_runner_run(r).
 *   4. start_op: send the CoAP request of tr_op_t (methods above), one at a
 *      time; on its answer task_runner_resume(r, code, cf, payload, len,
 *      NULL), on a transport failure/timeout task_runner_resume(r, 0,
 *      LWM2M_CF_NONE, NULL, 0, "timeout") (the task fails); the device went
 *      to sleep / the session ended quietly: task_runner_suspend(r, why).
 *   5. When DONE: store task_runner_status (tr_status_name),
 *      task_runner_summary and task_runner_vars_json in the report; the next
 *      task runs. */
#ifndef LWDM_TASKS_RUNNER_H
#define LWDM_TASKS_RUNNER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/lwm2m/lwm2m.h"
#include "server/tasks/expr.h"
#include "server/tasks/task.h" /* also tr_session_kind_t */

struct lwm2m_registry;

/* What the host sends (CoAP method in brackets). Answers come back through
 * task_runner_resume; any 2.xx is success (and 4.04 for DELETE: already
 * gone).
 *   DISCOVER  [GET /, Accept link-format] Bootstrap-Discover (bootstrap only)
 *   READ      [GET path] Read / Bootstrap-Read; the host picks Accept (e.g.
 *             the view's cf) and passes the answer's content format to
 *             task_runner_resume, which decodes it into the <get> variable
 *   WRITE     [PUT path, or POST when `partial`] Write / Bootstrap-Write;
 *             payload encoded in `cf`
 *   DELETE    [DELETE path] Delete / Bootstrap-Delete
 *   FINISH    [POST /bs] Bootstrap-Finish (path unused)
 *   EXECUTE   [POST path] Execute; payload = the arguments as text/plain
 *             (cf LWM2M_CF_TEXT), none when there are no arguments
 *   HTTP      a <rest> call (method, url, body, headers ... below)
 *   CREATE    [POST /o] Create; `path` is the object, the payload (in `cf`)
 *             holds the new instance's resources, and names the instance id
 *             when the task gave one; with no payload (cf NONE) the device
 *             creates an empty instance and picks its id
 *   OBSERVE   [GET path, Observe: 0] the host first sets `query` (when not
 *             NULL) with Write-Attributes on the path, then observes, keeps
 *             the observation (and its notifications) itself and answers with
 *             the Observe's code (the first 2.05; or the Write-Attributes'
 *             error)
 *   WRITE_ATTRIBUTES [PUT path?query] Write-Attributes with `query` */
typedef enum {
    TR_OP_DISCOVER = 0,
    TR_OP_READ,
    TR_OP_WRITE,
    TR_OP_DELETE,
    TR_OP_FINISH,
    TR_OP_EXECUTE,
    TR_OP_HTTP,
    TR_OP_CREATE,
    TR_OP_OBSERVE,
    TR_OP_WRITE_ATTRIBUTES,
    TR_OP_KIND_COUNT
} tr_op_kind_t;

const char *tr_op_name(tr_op_kind_t k); /* "discover", "read", ..., "write-attributes" */

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
    /* CoAP, continued */
    bool partial;             /* WRITE: false = replace (PUT), true = partial update (POST); always false today */
    const char *query;        /* OBSERVE, WRITE_ATTRIBUTES: "pmin=10&pmax=60&gt=5" (attributes in the order
                               * pmin, pmax, gt, lt, st, epmin, epmax; a bare "pmin" clears it); NULL otherwise,
                               * and NULL for an <observe> without attributes */
} tr_op_t;

#define TR_MAX_IIDS 64

/* What a session knows about the client (shared across its tasks). On a
 * bootstrap session, filled from the Request and Discover; on a management
 * session, from the registration (task_view_init_management). */
typedef struct {
    bool discovered;          /* Discover answered (or refused) */
    bool discover_refused;
    int version;              /* LWM2M_V1_x from Discover, 0 unknown */
    int pct;                  /* preferred format from the Request, LWM2M_CF_NONE */
    int cf;                   /* format for writes (after Discover; management: from the registration) */
    int bs_iid;               /* BS account /0 instance, -1 unknown */
    uint16_t sec[TR_MAX_IIDS];/* /0 instances present on the device (besides the BS account) */
    size_t nsec;
    uint16_t srv[TR_MAX_IIDS];/* /1 instances present */
    size_t nsrv;
    bool finished;            /* Bootstrap-Finish accepted */
} task_session_view_t;

typedef task_session_view_t task_bs_view_t; /* the name bootstrap/ uses */

/* A bootstrap session's view: pct from the Bootstrap-Request (LWM2M_CF_NONE
 * if none); the rest is learnt by Discover. */
void task_bs_view_init(task_session_view_t *v, int pct);
/* A management session's view, from the registration: `ct` the content
 * format the device announced (`ct` on its root link, LWM2M_CF_NONE if none)
 * and `version` its lwm2m= version (LWM2M_V1_x, 0 unknown). Writes (<set>,
 * <create>, deferred writes) are encoded in tr_write_format(ct, version):
 * TLV, SenML JSON or SenML CBOR. No Discover happens (discovered is true). */
void task_view_init_management(task_session_view_t *v, int ct, int version);

/* Content format of writes: of Bootstrap-Writes (CONFORMANCE.md §1, §4
 * Formats) and of management writes. The client's pct (or registration ct)
 * when lwdm writes it (TLV, SenML JSON, SenML CBOR; old TLV 1542 as TLV);
 * else TLV for a 1.0 client (none given, version 1.0 or unknown); else SenML
 * CBOR. pct is LWM2M_CF_NONE when none was given; version is LWM2M_V1_x or 0. */
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
 * run (`view` may be NULL on a management session: writes are SenML CBOR
 * then). `vars_json` (may be NULL) restores the variables of an earlier run:
 * when they hold a resume point (see "Resuming" above) the run resumes there,
 * otherwise it starts at the first step with those variables. The clock is the
 * wall clock at creation (see task_runner_set_now). NULL on ENOMEM. */
task_runner_t *task_runner_new(const task_program_t *prog, const struct lwm2m_registry *reg, const task_host_t *host,
                               void *hctx, tr_session_kind_t kind, task_session_view_t *view, const char *vars_json);
void task_runner_free(task_runner_t **r);
/* Sets "now" (ms since 1970) for <wait timeoutSeconds> deadlines; call before
 * task_runner_run (and whenever the host's clock moved) for testable time. */
void task_runner_set_now(task_runner_t *r, int64_t now_ms);
/* Runs until the program waits for an operation or ends. */
void task_runner_run(task_runner_t *r);
/* Result of the outstanding operation: CoAP code or HTTP status (0 and
 * `error` set on transport failure/timeout), content format, payload
 * (borrowed). Continues running. */
void task_runner_resume(task_runner_t *r, int code, int cf, const uint8_t *payload, size_t len, const char *error);
/* Ends the run with ERROR (session gone, timeout). */
void task_runner_abort(task_runner_t *r, const char *why);
/* Ends the run IN_PROGRESS, resumable at the step that was running (a
 * queue-mode device fell asleep, the session ended without an error). That
 * step runs again when resumed (its answer never came); deferred operations
 * not yet answered stay deferred. The outstanding operation is forgotten (a
 * late answer is ignored). No effect on a DONE run. */
void task_runner_suspend(task_runner_t *r, const char *why);

tr_state_t task_runner_state(const task_runner_t *r);
tr_status_t task_runner_status(const task_runner_t *r);  /* valid when DONE */
const char *task_runner_summary(const task_runner_t *r);
/* true when the run was created from variables with a resume point */
bool task_runner_resumed(const task_runner_t *r);
/* Task variables as a JSON object text (malloc'd), with the reserved "__"
 * variables of "Resuming" while the run is IN_PROGRESS. Store it in the
 * report; pass it back to task_runner_new to resume. */
char *task_runner_vars_json(const task_runner_t *r);
void task_runner_set_user(task_runner_t *r, void *user);
void *task_runner_user(const task_runner_t *r);

/* Whether a session of `kind` should run the task whose report holds
 * `vars_json` (the variables of an IN_PROGRESS run; NULL or variables without
 * a resume point mean a new run: then task_runs_in(p, kind)). For a saved run:
 * false on a bootstrap session while deferred operations wait; otherwise the
 * next session-specific step from the resume point on (task_steps_session
 * over the rest of the program, both branches of a pending <if>) decides:
 * false when it needs the other kind, true when it fits or there is none.
 * true when the program changed or the point is invalid (the run then ends
 * ERROR at once, which clears it). Pure. */
bool task_resume_runs_in(const task_program_t *p, const char *vars_json, tr_session_kind_t kind);
/* The "__deadline" of a saved run (ms since 1970), 0 if none: a host may end
 * a held run ERROR "wait timed out" once it passed without resuming it. */
int64_t task_resume_deadline_ms(const char *vars_json);

#endif
