/* sim room internals: shared by sim/bootstrap.c, sim/register.c,
 * sim/observe.c, sim/dm.c, sim/sim.c and the sim unit tests. Not part of the
 * library API (sim/sim.h). */
#ifndef LWDM_SIM_INT_H
#define LWDM_SIM_INT_H
#include <stdint.h>

#include "sim/sim.h"

/* ------------------------------------------------------------------
 * Client bootstrap state machine (sim/bootstrap.c): pure, clock passed in.
 *
 *        start                 2.04                   Finish 2.04
 *  IDLE -------> REQUESTING -----------> SERVING -----------------> OK
 *                 |  ^    \                |  \ Finish 4.06 / stall
 *   error, timeout|  | hold-off            |   `--------------------> FAILED
 *   (retries left)v  | expired             | timeout, transport error
 *                HOLDOFF <-----------------'   (retries left: HOLDOFF,
 *                                               else FAILED)
 *
 * | state      | event                          | next                | function            |
 * |------------|--------------------------------|---------------------|---------------------|
 * | IDLE       | start                          | REQUESTING          | sim_bs_start        |
 * | REQUESTING | response 2.04                  | SERVING             | sim_bs_on_response  |
 * | REQUESTING | response other                 | HOLDOFF / FAILED    | sim_bs_on_response  |
 * | REQ/SERV   | transport error                | HOLDOFF / FAILED    | sim_bs_on_transport |
 * | REQ/SERV   | tick past deadline             | HOLDOFF / FAILED    | sim_bs_tick         |
 * | SERVING    | request served, Finish OK      | OK                  | sim_bs_on_served    |
 * | SERVING    | request served, Finish refused | FAILED              | sim_bs_on_served    |
 * | SERVING    | request served, stall reached  | FAILED ("stalled")  | sim_bs_on_served    |
 * | HOLDOFF    | tick past deadline             | REQUESTING          | sim_bs_tick         |
 * | any        | stop                           | FAILED ("stopped")  | sim_bs_stop         |
 *
 * Invariants (assert_bs): REQUESTING/SERVING/HOLDOFF have a deadline and
 * 1 <= attempt <= max_attempts; OK has t_done >= t_first; FAILED has a
 * reason; OK and FAILED are terminal.
 *
 * Every function returns a set of SIM_BS_ACT_* bits the caller carries out:
 * CLOSE first (release the session at the end of the loop iteration), then
 * CONNECT (open a new session and send the Bootstrap-Request).
 * ------------------------------------------------------------------ */
typedef enum {
    SIM_BS_IDLE = 0,
    SIM_BS_REQUESTING,
    SIM_BS_SERVING,
    SIM_BS_HOLDOFF,
    SIM_BS_OK,
    SIM_BS_FAILED,
} sim_bs_state_t;

/* CLOSE_NOW: close even when the simulator keeps finished sessions open for
 * a while (linger): the stall fault and stop mean silence at once. */
enum { SIM_BS_ACT_NONE = 0, SIM_BS_ACT_CONNECT = 1, SIM_BS_ACT_CLOSE = 2, SIM_BS_ACT_CLOSE_NOW = 4 };

typedef struct {
    sim_bs_state_t state;
    unsigned attempt;        /* attempts started (Bootstrap-Requests sent) */
    unsigned max_attempts;   /* 1 + retries */
    uint64_t timeout_us;     /* per attempt, counted from the Request */
    uint64_t retry_delay_us;
    int stall_after;         /* -1 never */
    uint64_t t_first_us;     /* first Request of the first attempt (latency start) */
    uint64_t deadline_us;    /* REQUESTING/SERVING: timeout; HOLDOFF: end of hold-off */
    uint64_t t_done_us;
    unsigned served;         /* Bootstrap-Server requests answered in this attempt */
    char reason[200];
} sim_bs_t;

void sim_bs_init(sim_bs_t *bs, unsigned retries, uint64_t timeout_us, uint64_t retry_delay_us, int stall_after);
unsigned sim_bs_start(sim_bs_t *bs, uint64_t now_us);
/* `code` is the CoAP response code to the Bootstrap-Request */
unsigned sim_bs_on_response(sim_bs_t *bs, uint64_t now_us, int code);
unsigned sim_bs_on_transport(sim_bs_t *bs, uint64_t now_us, const char *why);
/* A Bootstrap-Server request was answered with `code`; ev/detail from sim_dm_handle */
unsigned sim_bs_on_served(sim_bs_t *bs, uint64_t now_us, int code, sim_dm_event_t ev, const char *detail);
unsigned sim_bs_tick(sim_bs_t *bs, uint64_t now_us);
unsigned sim_bs_stop(sim_bs_t *bs, uint64_t now_us);
/* true in OK and FAILED */
bool sim_bs_done(const sim_bs_t *bs);
/* Formats a CoAP code as "4.06" into buf (>= 8 bytes); returns buf. */
char *sim_code_str(int code, char *buf, size_t cap);

/* ------------------------------------------------------------------
 * Registration state machine (sim/register.c): pure, clock passed in.
 * LwM2M Core TS 1.1.1 §6.2 (Register, Update, De-register), §6.2.2 queue
 * mode; CONFORMANCE.md §2.
 *
 *            start / reregister                2.01
 *   IDLE ------------------------> REGISTERING --------> REGISTERED <--------.
 *                                   |    ^  ^               |  |  \  2.04    |
 *             error, timeout,       |    |  | Update error  |  |   `-> UPDATING
 *             transport (retries)   v    |  '---------------+--+------'  ^
 *                                HOLDOFF-'  (deadline)      |  | awake    | next update /
 *                                   |                       |  v expired  | update now
 *            no retries before goal v                       |  SLEEPING --' (CONNECT)
 *                                 FAILED                    |
 *                 deregister / stop / disable               v
 *                                             DEREGISTERING --> DEREGISTERED
 *                                                        \----> DISABLED --(deadline)--> REGISTERING
 *
 * | state          | event                         | next                 | function             |
 * |----------------|-------------------------------|----------------------|----------------------|
 * | IDLE           | start                         | REGISTERING          | sim_reg_start        |
 * | REGISTERING    | 2.01                          | REGISTERED (+GOAL)   | sim_reg_on_response  |
 * | REGISTERING    | error / transport / timeout   | HOLDOFF or FAILED    | sim_reg_on_response, _on_transport, _tick |
 * | REGISTERED     | next update due / update now  | UPDATING             | sim_reg_tick, sim_reg_update_now |
 * | REGISTERED     | queue: awake window over      | SLEEPING (CLOSE)     | sim_reg_tick, sim_reg_sleep |
 * | REGISTERED     | transport error               | HOLDOFF (CLOSE)      | sim_reg_on_transport |
 * | UPDATING       | 2.04                          | REGISTERED           | sim_reg_on_response  |
 * | UPDATING       | error answer (4.04, ...)      | REGISTERING          | sim_reg_on_response  |
 * | UPDATING       | transport / timeout           | HOLDOFF (CLOSE)      | sim_reg_on_transport, _tick |
 * | SLEEPING       | next update due / update now  | UPDATING (CONNECT)   | sim_reg_tick, sim_reg_update_now |
 * | HOLDOFF        | deadline                      | REGISTERING          | sim_reg_tick         |
 * | DISABLED       | deadline                      | REGISTERING          | sim_reg_tick         |
 * | REGISTERED/UPDATING/SLEEPING | deregister, stop, disable | DEREGISTERING | sim_reg_deregister, _stop, _disable |
 * | DEREGISTERING  | any answer / transport / timeout | DEREGISTERED or DISABLED (CLOSE) | sim_reg_on_response, ... |
 * | any            | reregister                    | REGISTERING (CLOSE, CONNECT) | sim_reg_reregister |
 * | before goal    | stop                          | FAILED ("stopped")   | sim_reg_stop         |
 *
 * Invariants (assert_reg): REGISTERING/UPDATING/DEREGISTERING/HOLDOFF/
 * DISABLED have a deadline; REGISTERED/UPDATING/SLEEPING have a location
 * and goal set; FAILED has a reason and no goal.
 *
 * Every function returns SIM_REG_ACT_* bits the caller carries out in this
 * order: CLOSE (release the session), CONNECT (open a new one), then send
 * REGISTER / UPDATE / DEREGISTER on it. Observations are dropped whenever a
 * Register or a De-register is sent. GOAL / FAILED report the first
 * registration or the give-up. REFUSED: the operation makes no sense in this
 * state (nothing changed).
 * ------------------------------------------------------------------ */
typedef enum {
    SIM_REG_IDLE = 0,
    SIM_REG_REGISTERING,
    SIM_REG_REGISTERED,
    SIM_REG_UPDATING,
    SIM_REG_SLEEPING,
    SIM_REG_DEREGISTERING,
    SIM_REG_HOLDOFF,
    SIM_REG_DISABLED,
    SIM_REG_DEREGISTERED,
    SIM_REG_FAILED,
} sim_reg_state_t;

enum {
    SIM_REG_ACT_NONE = 0,
    SIM_REG_ACT_CLOSE = 1,
    SIM_REG_ACT_CONNECT = 2,
    SIM_REG_ACT_REGISTER = 4,
    SIM_REG_ACT_UPDATE = 8,
    SIM_REG_ACT_DEREGISTER = 16,
    SIM_REG_ACT_GOAL = 32,
    SIM_REG_ACT_FAILED = 64,
    SIM_REG_ACT_REFUSED = 128,
};

/* Which of our requests an answer belongs to */
typedef enum { SIM_REG_REQ_REGISTER = 1, SIM_REG_REQ_UPDATE, SIM_REG_REQ_DEREGISTER } sim_reg_req_t;

typedef struct {
    uint32_t lifetime_s;
    uint64_t interval_us;    /* 0: 80 % of the lifetime */
    uint64_t awake_us;       /* 0: not in queue mode */
    unsigned retries;        /* Register attempts after the first, before the goal */
    uint64_t retry_delay_us; /* hold-off before a new Register (min 1 s once registered) */
    uint64_t timeout_us;     /* answer to Register/Update/De-register */
} sim_reg_params_t;

typedef struct {
    sim_reg_state_t state;
    sim_reg_params_t p;
    uint64_t interval_us;    /* effective Update period */
    uint64_t jitter_us;      /* the first Update after a Register comes this much earlier (the
                                caller draws it, so that a fleet does not update in step) */
    unsigned attempt;        /* Registers sent since the last 2.01 (or start) */
    bool goal;               /* registered at least once */
    uint64_t t_start_us, t_goal_us;
    uint64_t deadline_us;    /* see the invariants */
    uint64_t next_update_us; /* REGISTERED / SLEEPING */
    uint64_t awake_until_us; /* REGISTERED in queue mode */
    uint64_t disable_us;     /* DEREGISTERING: > 0 means "then DISABLED for this long" */
    bool update_again;       /* an Update was asked while one was in flight */
    bool send_lt, send_b;    /* the next Update carries lt= / b= (set by the caller) */
    unsigned registrations, updates;
    char location[64];       /* "/rd/5" */
    char reason[160];
} sim_reg_t;

void sim_reg_init(sim_reg_t *r, const sim_reg_params_t *p);
const char *sim_reg_state_name(sim_reg_state_t s);
unsigned sim_reg_start(sim_reg_t *r, uint64_t now_us);
/* `location`: the Location-Path options of a 2.01 joined as "/rd/5" (NULL otherwise) */
unsigned sim_reg_on_response(sim_reg_t *r, uint64_t now_us, sim_reg_req_t kind, int code, const char *location);
unsigned sim_reg_on_transport(sim_reg_t *r, uint64_t now_us, const char *why);
/* `busy`: a confirmable message of ours is still unacknowledged (no sleep yet) */
unsigned sim_reg_tick(sim_reg_t *r, uint64_t now_us, bool busy);
/* Any message to or from the server: extends the queue-mode awake window. */
void sim_reg_traffic(sim_reg_t *r, uint64_t now_us);
unsigned sim_reg_update_now(sim_reg_t *r, uint64_t now_us);
unsigned sim_reg_sleep(sim_reg_t *r, uint64_t now_us);
unsigned sim_reg_deregister(sim_reg_t *r, uint64_t now_us);
unsigned sim_reg_disable(sim_reg_t *r, uint64_t now_us, uint64_t for_us);
unsigned sim_reg_reregister(sim_reg_t *r, uint64_t now_us);
unsigned sim_reg_stop(sim_reg_t *r, uint64_t now_us);
/* The simulator stops without (waiting for) a De-register: DEREGISTERED
 * (FAILED "stopped" before the goal), no action. */
void sim_reg_abandon(sim_reg_t *r);
/* New lifetime (written to /1/x/1): Update period follows unless it was set explicitly. */
void sim_reg_set_lifetime(sim_reg_t *r, uint32_t lifetime_s, uint64_t now_us);
/* REGISTERED, UPDATING or SLEEPING */
bool sim_reg_registered(const sim_reg_t *r);
/* The device answers management requests: registered with an open session */
bool sim_reg_serving(const sim_reg_t *r);
/* The goal was reached or given up */
bool sim_reg_done(const sim_reg_t *r);

/* Register query (Core TS 1.1.1 §5.3.1, §6.2.1; 1.0 §5.3.1): the Uri-Query
 * options joined by '&': "ep=N&lt=S&lwm2m=1.x&b=B" and, in queue mode, a
 * valueless "Q" (1.1+) or a Q in the binding (1.0: U -> UQ, US -> UQS,
 * S -> SQ). `binding` is /1/x/7 (or "U"); a Q in it also means queue mode.
 * Returns the length, or -1 if cap is too small / bad input. */
int sim_reg_query(char *buf, size_t cap, const char *ep, uint32_t lifetime_s, lwm2m_version_t v,
                  const char *binding, bool queue);
/* Update query: "lt=S" and/or "b=B" (+ "Q" as above when b is sent), "" for
 * a plain Update. Returns the length or -1. */
int sim_reg_update_query(char *buf, size_t cap, bool with_lt, uint32_t lifetime_s, bool with_b, lwm2m_version_t v,
                         const char *binding, bool queue);
/* Register payload (CF 40): for 1.1+ the root link
 * `</>;rt="oma.lwm2m";ct=...` listing the formats the device serves
 * (preferred first; 11544 only for 1.2 and only when the codec has it), then
 * every supported object except /0 and /21 (1.2 also /23): an object with
 * instances as its instance links, preceded by `</o>;ver=x.y` when its
 * version is not 1.0 (quoted for 1.0 clients); an object without instances
 * as `</o>`. *out is malloc'd (NUL-terminated); returns 0 or LWM2M_ERR_INTERNAL. */
int sim_dm_register_payload(const sim_dm_t *dm, char **out, size_t *len);
/* The formats a device of this version serves for multi-value payloads,
 * preferred first: fills cfs, returns how many. */
size_t sim_dm_formats(const sim_dm_t *dm, int *cfs, size_t cap);

/* The management server account of a device model: the non-bootstrap /0
 * instance whose SSID (/0/x/10) matches a /1 instance's /1/y/0. Returns 0
 * and the two instance ids, or LWM2M_ERR_NOT_FOUND. */
int sim_dm_server_account(const sim_dm_t *dm, uint16_t *sec_iid, uint16_t *srv_iid);

/* ------------------------------------------------------------------
 * Attributes and notifications (sim/observe.c): pure.
 * Core TS 1.1.1 §5.1.2 (attributes), §5.4.4 (Write-Attributes), §6.4
 * (Observe / Notify); RFC 7641.
 * ------------------------------------------------------------------ */
enum {
    SIM_ATTR_PMIN = 1, SIM_ATTR_PMAX = 2, SIM_ATTR_GT = 4, SIM_ATTR_LT = 8, SIM_ATTR_ST = 16,
    SIM_ATTR_EPMIN = 32, SIM_ATTR_EPMAX = 64,
};
typedef struct {
    unsigned mask;           /* SIM_ATTR_* present */
    int64_t pmin, pmax, epmin, epmax; /* seconds */
    double gt, lt, st;
} sim_attrs_t;

/* Parses a Write-Attributes query ("pmin=10&pmax=60&gt=20.5&st"): the
 * attributes with a value go to *set, the valueless ones (to be removed,
 * TS 1.1.1 §5.4.4) to *clear. pmin/pmax/epmin/epmax: integers >= 0;
 * gt/lt/st: decimals (trailing zeros, a sign and an exponent accepted; st
 * >= 0); epmin/epmax are 1.1+. Anything else, a repeated attribute or a bad
 * number is LWM2M_ERR_BAD_REQUEST with a reason in why. */
int sim_attrs_parse(const char *q, size_t len, lwm2m_version_t v, sim_attrs_t *set, unsigned *clear, char *why,
                    size_t cap);
/* cur := cur without `clear`, overwritten by `set`; then checks the result
 * (§5.1.2): lt < gt, lt + 2*st < gt when both are set, pmin <= pmax when
 * pmax > 0, epmin <= epmax when epmax > 0. On failure cur is unchanged and
 * LWM2M_ERR_BAD_REQUEST is returned. */
int sim_attrs_merge(sim_attrs_t *cur, const sim_attrs_t *set, unsigned clear, char *why, size_t cap);
/* "pmin=10;pmax=60;gt=20.5" (no leading ';'); returns the length or -1. */
int sim_attrs_format(const sim_attrs_t *a, char *buf, size_t cap);
/* The attributes in force for an observation of `p`: the server's defaults
 * (/1/x/2 pmin, /1/x/3 pmax of the first /1 instance), overridden by what is
 * attached to the object, then the instance, then the resource, then the
 * resource instance. gt/lt/st only count at resource (instance) level. */
void sim_dm_obs_attrs(const sim_dm_t *dm, const lwm2m_path_t *p, sim_attrs_t *out);

/* Decides whether a notification leaves now (§6.4, §5.1.2):
 *  - never before pmin seconds since the last one;
 *  - always once pmax seconds passed (pmax > 0 and >= pmin), changed or not;
 *  - otherwise only on a change; with gt/lt/st set (numeric values only) the
 *    change must cross gt or lt (either direction) or move the value by at
 *    least st since the last notification. */
bool sim_obs_due(const sim_attrs_t *a, uint64_t now_us, uint64_t last_us, bool changed, bool numeric, double last_v,
                 double new_v);

/* One observation: the server's token and path, and what was last sent. */
typedef struct {
    uint8_t token[8];
    uint8_t token_len;
    lwm2m_path_t path;
    int cf;                  /* format of the answers (from the Observe request) */
    uint32_t seq;            /* Observe value of the last message */
    uint64_t last_us;        /* when the last notification (or the first answer) left */
    uint8_t *last;           /* its payload, owned */
    size_t last_len;
    bool numeric;            /* single numeric resource: last_v is its value */
    double last_v;
    bool pending;            /* a change held back by pmin */
    uint64_t checked_gen;    /* model generation last evaluated */
    unsigned sent;           /* notifications sent */
} sim_obs_t;

/* Sets up `o` for a Read that was just answered with `resp` (2.05, the
 * payload is copied). Returns 0 or LWM2M_ERR_INTERNAL. */
int sim_obs_init(sim_obs_t *o, const sim_dm_t *dm, const uint8_t *token, size_t token_len, const lwm2m_path_t *p,
                 const sim_response_t *resp, uint64_t now_us);
void sim_obs_clear(sim_obs_t *o);
/* Evaluates `o` at now_us. Returns 1 with `resp` filled (a Read of the path
 * in o->cf: 2.05, or an error code when the path went away, which ends the
 * observation) when a notification must leave, else 0 (resp empty). The
 * caller sends it and then calls sim_obs_sent. Cheap when nothing changed:
 * the model is read only when its generation moved, a change is pending,
 * or pmax is due. */
int sim_obs_check(sim_dm_t *dm, sim_obs_t *o, uint64_t now_us, sim_response_t *resp);
/* Records that resp left at now_us (seq advances). */
void sim_obs_sent(sim_obs_t *o, const sim_dm_t *dm, const sim_response_t *resp, uint64_t now_us);
/* Model generation (bumped on every change of the model) */
uint64_t sim_dm_gen(const sim_dm_t *dm);

#endif
