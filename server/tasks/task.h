/* The task language (TASKS.md "The language"): an XML program, parsed and
 * checked once when a task is saved, into an immutable tree of steps that the
 * interpreter runs on bootstrap and management sessions.
 *
 * Parsing is pure (no I/O): libxml2 with no network, no DTD loading, no entity
 * expansion; a document with a DOCTYPE or entity declaration is refused. */
#ifndef LWDM_TASKS_TASK_H
#define LWDM_TASKS_TASK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/lwm2m/lwm2m.h"
#include "server/tasks/expr.h"

struct lwm2m_registry;

#define TASK_MAX_XML (256 * 1024) /* bytes of one task configuration */
#define TASK_MAX_DEPTH 16         /* nesting of <if>/<lwm2mBootstrap>/<rest> */
#define TASK_MAX_STEPS 2000       /* elements in one program */

/* The two kinds of device session a task runs in (TASKS.md "When a task
 * runs"): a bootstrap session (POST /bs .. Bootstrap-Finish) or a management
 * session (Register, Update or a queue-mode wake-up .. the device goes idle). */
typedef enum { TR_SESSION_BOOTSTRAP = 0, TR_SESSION_MANAGEMENT } tr_session_kind_t;

typedef enum {
    TASK_CLEANSE = 0,        /* <lwm2mBootstrapCleanse/> */
    TASK_CONFIGURATION,      /* <lwm2mBootstrapConfiguration serverId|serverName [securityInstanceId serverInstanceId securityInstanceIdOutput]/> */
    TASK_BOOTSTRAP,          /* <lwm2mBootstrap [performBootstrapFinish]> with write/delete children */
    TASK_BS_WRITE,           /* <write key value [type]/> inside lwm2mBootstrap */
    TASK_BS_DELETE,          /* <delete key/> inside lwm2mBootstrap */
    TASK_SET,                /* <set key value [type]/> */
    TASK_EXECUTE,            /* <execute key [arguments]/> */
    TASK_GET,                /* <get key output/> */
    TASK_DELETE,             /* <delete key/> (management) */
    TASK_CREATE,             /* <create key> with <write key value type/> children, or key+value attributes */
    TASK_OBSERVE,            /* <observe key [pmin pmax gt lt st]/> */
    TASK_SET_ATTRIBUTES,     /* <setAttributes key [pmin pmax gt lt st epmin epmax]/> */
    TASK_STORE,              /* <store target value [type="var"|"devProp"]/> */
    TASK_REST,               /* <rest url [method content contentType timeout user pass]> with header/out children */
    TASK_REST_HEADER,        /* <header name value/> inside rest */
    TASK_REST_OUT,           /* <out from to [default]/> inside rest */
    TASK_IF,                 /* <if expr> then-steps [<else/> else-steps] </if> */
    TASK_LOG,                /* <log message [level]/> */
    TASK_FINISH,             /* <finish [status message]/> */
    TASK_WAIT,               /* <wait [timeoutSeconds]/> */
    TASK_COMMENT,            /* <comment>...</comment> or <comment text/> (no effect) */
    TASK_JOIN,               /* <join group/> */
    TASK_LEAVE,              /* <leave group/> */
    TASK_KIND_COUNT
} task_kind_t;

typedef struct {
    const char *name;   /* attribute name as written (owned by the program) */
    const char *raw;    /* value as written */
    expr_t *expr;       /* compiled template when raw contains "${", else NULL */
    int line;
} task_attr_t;

typedef struct task_step {
    task_kind_t kind;
    int line;                        /* line of the element in the XML (1-based) */
    task_attr_t *attrs;
    size_t nattrs;
    /* `key` without "${": resolved when parsed through the registry */
    bool key_resolved;
    lwm2m_path_t key_path;
    int key_type;                    /* lwm2m_type_t from the definition, -1 if unknown */
    /* `type` attribute, if given: lwm2m_type_t (or, for <store>, 0 = var, 1 = devProp); -1 if absent */
    int type;
    struct task_step *children;      /* lwm2mBootstrap: write/delete; if: then-branch; rest: header/out; create: write */
    size_t nchildren;
    struct task_step *else_children; /* if: after <else/> */
    size_t nelse;
} task_step_t;

typedef struct {
    task_step_t *steps;
    size_t nsteps;
    /* LwM2M server references written literally (serverId="8", serverName="x"),
     * so deleting a server can delete the tasks that use it. */
    int64_t *server_ids;
    size_t nserver_ids;
    char **server_names;
    size_t nserver_names;
    bool has_bootstrap_ops;          /* cleanse, configuration, lwm2mBootstrap (anywhere, also inside <if>) */
    bool has_management_ops;         /* delete, create, observe, setAttributes (anywhere) */
    size_t nnodes;                   /* every step of the tree, children included (pre-order count) */
    /* FNV-1a 64 of the step tree (kinds, attribute names and values as
     * written, shape; not line numbers, blanks or XML comments). A saved run
     * (runner.h "Resuming") remembers it, so a run is never resumed in a
     * program that was edited since it started. */
    uint64_t fingerprint;
} task_program_t;

typedef struct {
    int line;             /* 1-based; 0 if not tied to a place */
    int column;           /* 1-based where known, else 0 */
    char element[40];     /* element name, "" if none */
    char attribute[40];   /* attribute name, "" if none */
    char msg[320];        /* human-readable, e.g. "line 4: unknown attribute 'vlaue' on <set>; did you mean 'value'?" */
} task_error_t;

/* Parses and checks a task configuration. `reg` resolves keys (required).
 * Refused with err filled (and *out NULL): malformed XML, DOCTYPE/entities,
 * size/depth/step limits, a root other than <config>, unknown elements or
 * attributes (with the nearest valid name), missing required attributes,
 * elements where they may not stand (<write> outside lwm2mBootstrap/create,
 * <else/> outside <if>, <header>/<out> outside <rest>, nested lwm2mBootstrap),
 * expression syntax errors (with the position inside the attribute), keys that
 * name no resource (with the closest name), bad literal values for their type
 * (e.g. value="abc" for an Integer resource, performBootstrapFinish="maybe"),
 * writes to resources that cannot be written (an executable in <set>), and an
 * <execute> of a resource that is not executable.
 * Returns 0 or -1. */
int task_parse(const char *xml, size_t len, const struct lwm2m_registry *reg, task_program_t **out, task_error_t *err);
void task_program_free(task_program_t **p);

/* Checks the text of a value for an LwM2M type by the rules task_parse applies
 * to literal values (docs/tasks.md "Types"), and with rec non-NULL converts it:
 * integer and time: decimal int64 ([+-]digits); unsigned: decimal uint64;
 * float: a finite decimal number ([+-]1.5, .5, 2e3; no inf, nan or hex);
 * boolean: true, false, 1 or 0; opaque: hex digits, even count, either case
 * (empty allowed); objlnk: "object:instance", each 0..65535; string and
 * corelnk: any bytes; none: only "". Only s[0..len) is read.
 * On success fills rec->type, rec->v and, for string/opaque/corelnk,
 * rec->bytes (malloc'd, NUL-terminated; the caller frees it) and rec->nbytes;
 * rec->path is left as it was. Returns 0, or -1 with a reason in `why` (which
 * shows the value, cut and escaped) and *rec unchanged. */
int task_value_parse(lwm2m_type_t type, const char *s, size_t len, lwm2m_record_t *rec, char *why, size_t whylen);

const char *task_kind_name(task_kind_t k);            /* element name */

/* The session kind a step of this kind needs: TR_SESSION_BOOTSTRAP for
 * lwm2mBootstrapCleanse, lwm2mBootstrapConfiguration and lwm2mBootstrap;
 * TR_SESSION_MANAGEMENT for (management) delete, create, observe and
 * setAttributes; -1 for every other step (it runs in both). */
int task_kind_session(task_kind_t k);

/* The session kind the first session-specific step among steps[0..n) needs,
 * in document order (pre-order: a step, then its children, then an <if>'s
 * then-branch before its else-branch), or -1 when none of them needs one. */
int task_steps_session(const task_step_t *steps, size_t n);

/* Whether a NEW run of `p` may start in a session of `kind` (docs/tasks.md
 * "Which session a task runs in"). The first session-specific step decides:
 *   - bootstrap steps only (the seed recipes)     -> bootstrap sessions only
 *   - management steps only                       -> management sessions only
 *   - neither (set, get, execute, store, rest...) -> both
 *   - both: the kind of the first one in document order; the run reaches the
 *     other kind after a <wait> (or, on a bootstrap session, after
 *     Bootstrap-Finish) and resumes there (runner.h "Resuming").
 * An IN_PROGRESS run is decided by task_resume_runs_in (runner.h) instead.
 * Pure; false for a NULL program. */
bool task_runs_in(const task_program_t *p, tr_session_kind_t kind);
/* Attribute by name (NULL if absent). */
const task_attr_t *task_step_attr(const task_step_t *s, const char *name);

#endif
