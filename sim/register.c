/* Registration interface, client side: one state machine per simulated
 * device, and the Register / Update query builders. Pure: no libcoap, the
 * clock is passed in; the diagram, transition table and invariants are in
 * sim/sim_int.h.
 *
 * Protocol decisions (LwM2M Core TS 1.1.1 unless stated; CONFORMANCE.md §2):
 *  - §6.2.1 Register: POST /rd?ep&lt&lwm2m&b[&Q], CF 40; 2.01 with the
 *    location as two Location-Path options ("rd", "<id>"), kept as "/rd/5".
 *    An error answer or no answer ends the attempt; before the first
 *    registration the attempts are limited (retries), after it the device
 *    keeps trying every retry delay (at least 1 s), as a deployed device does.
 *  - §6.2.2 Update: POST /rd/<id>, no payload, parameters only when they
 *    changed (lt after a write of /1/x/1, b after /1/x/7). Sent every
 *    update interval (default 80 % of the lifetime, so that it arrives
 *    before the server expires the registration). Any error answer (4.04
 *    for an unknown or expired registration) makes the client Register
 *    again (CONFORMANCE.md §2, Anjay UpdateFallbacksToRegister); a transport
 *    error closes the session and registers again after the retry delay.
 *  - §6.2.3 De-register: DELETE /rd/<id>; whatever the answer, the device
 *    is then deregistered (a missing answer changes nothing either).
 *  - §6.5 / §7.3 queue mode: after awake_ms without traffic the device
 *    sleeps (its session is closed); at the next update time it wakes up
 *    with a new session (a new DTLS handshake) and sends an Update.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "sim/sim_int.h"

#ifndef NDEBUG
static void assert_reg(const sim_reg_t *r)
{
    switch (r->state) {
    case SIM_REG_REGISTERING:
    case SIM_REG_DEREGISTERING:
    case SIM_REG_HOLDOFF:
    case SIM_REG_DISABLED: assert(r->deadline_us != 0); break;
    case SIM_REG_UPDATING: assert(r->deadline_us != 0); /* fall through */
    case SIM_REG_REGISTERED:
    case SIM_REG_SLEEPING: assert(r->goal && r->location[0] == '/'); break;
    case SIM_REG_FAILED: assert(r->reason[0] && !r->goal); break;
    default: break;
    }
}
#else
#define assert_reg(r) ((void)0)
#endif

static uint64_t at_least_1(uint64_t t) { return t ? t : 1; }

void sim_reg_init(sim_reg_t *r, const sim_reg_params_t *p)
{
    memset(r, 0, sizeof *r);
    r->p = *p;
    if (!r->p.lifetime_s)
        r->p.lifetime_s = 300;
    if (!r->p.timeout_us)
        r->p.timeout_us = 30000000u;
    r->interval_us = r->p.interval_us ? r->p.interval_us : (uint64_t)r->p.lifetime_s * 800000u;
}

const char *sim_reg_state_name(sim_reg_state_t s)
{
    switch (s) {
    case SIM_REG_IDLE: return "idle";
    case SIM_REG_REGISTERING: return "registering";
    case SIM_REG_REGISTERED: return "registered";
    case SIM_REG_UPDATING: return "updating";
    case SIM_REG_SLEEPING: return "sleeping";
    case SIM_REG_DEREGISTERING: return "deregistering";
    case SIM_REG_HOLDOFF: return "holdoff";
    case SIM_REG_DISABLED: return "disabled";
    case SIM_REG_DEREGISTERED: return "deregistered";
    case SIM_REG_FAILED: return "failed";
    }
    return "?";
}

bool sim_reg_registered(const sim_reg_t *r)
{
    return r->state == SIM_REG_REGISTERED || r->state == SIM_REG_UPDATING || r->state == SIM_REG_SLEEPING;
}

bool sim_reg_serving(const sim_reg_t *r)
{
    return r->state == SIM_REG_REGISTERED || r->state == SIM_REG_UPDATING;
}

bool sim_reg_done(const sim_reg_t *r)
{
    return r->goal || r->state == SIM_REG_FAILED;
}

static unsigned begin_register(sim_reg_t *r, uint64_t now_us, unsigned acts)
{
    r->state = SIM_REG_REGISTERING;
    r->attempt++;
    r->deadline_us = at_least_1(now_us + r->p.timeout_us);
    r->location[0] = '\0';
    r->update_again = false;
    r->send_lt = r->send_b = false;
    assert_reg(r);
    return acts | SIM_REG_ACT_REGISTER;
}

unsigned sim_reg_start(sim_reg_t *r, uint64_t now_us)
{
    if (r->state != SIM_REG_IDLE)
        return SIM_REG_ACT_REFUSED;
    r->t_start_us = now_us;
    return begin_register(r, now_us, SIM_REG_ACT_CONNECT);
}

/* An attempt to register failed: hold off and try again, or give up. */
static unsigned register_failed(sim_reg_t *r, uint64_t now_us)
{
    if (r->goal || r->attempt <= r->p.retries) {
        uint64_t delay = r->p.retry_delay_us;
        if (r->goal && delay < 1000000u)
            delay = 1000000u; /* never hammer a server once deployed */
        r->state = SIM_REG_HOLDOFF;
        r->deadline_us = at_least_1(now_us + delay);
        r->location[0] = '\0';
        assert_reg(r);
        return SIM_REG_ACT_CLOSE;
    }
    r->state = SIM_REG_FAILED;
    r->location[0] = '\0';
    if (!r->reason[0])
        snprintf(r->reason, sizeof r->reason, "registration failed");
    assert_reg(r);
    return SIM_REG_ACT_CLOSE | SIM_REG_ACT_FAILED;
}

static void registered(sim_reg_t *r, uint64_t now_us, bool after_register)
{
    r->state = SIM_REG_REGISTERED;
    uint64_t early = after_register && r->jitter_us < r->interval_us ? r->jitter_us : 0;
    r->next_update_us = now_us + r->interval_us - early;
    r->awake_until_us = now_us + r->p.awake_us;
    r->deadline_us = 0;
}

/* after DEREGISTERING ended (answer, error or timeout) */
static unsigned deregistered(sim_reg_t *r, uint64_t now_us)
{
    r->location[0] = '\0';
    if (r->disable_us) {
        r->state = SIM_REG_DISABLED;
        r->deadline_us = at_least_1(now_us + r->disable_us);
        r->disable_us = 0;
    } else {
        r->state = SIM_REG_DEREGISTERED;
        r->deadline_us = 0;
    }
    assert_reg(r);
    return SIM_REG_ACT_CLOSE;
}

unsigned sim_reg_on_response(sim_reg_t *r, uint64_t now_us, sim_reg_req_t kind, int code, const char *location)
{
    char c[8];
    switch (r->state) {
    case SIM_REG_REGISTERING:
        if (kind != SIM_REG_REQ_REGISTER)
            return SIM_REG_ACT_NONE;
        if (code == LWM2M_CODE(2, 1) && location && location[0] == '/' && strlen(location) < sizeof r->location) {
            snprintf(r->location, sizeof r->location, "%s", location);
            r->registrations++;
            r->attempt = 0;
            r->reason[0] = '\0';
            registered(r, now_us, true);
            unsigned acts = SIM_REG_ACT_NONE;
            if (!r->goal) {
                r->goal = true;
                r->t_goal_us = now_us < r->t_start_us ? r->t_start_us : now_us;
                acts |= SIM_REG_ACT_GOAL;
            }
            assert_reg(r);
            return acts;
        }
        if (code == LWM2M_CODE(2, 1))
            snprintf(r->reason, sizeof r->reason, "2.01 on register without a usable Location-Path");
        else
            snprintf(r->reason, sizeof r->reason, "%s on register", sim_code_str(code, c, sizeof c));
        return register_failed(r, now_us);
    case SIM_REG_UPDATING:
        if (kind != SIM_REG_REQ_UPDATE)
            return SIM_REG_ACT_NONE;
        if (code == LWM2M_CODE(2, 4)) {
            r->updates++;
            registered(r, now_us, false);
            assert_reg(r);
            if (r->update_again) {
                r->update_again = false;
                r->state = SIM_REG_UPDATING;
                r->deadline_us = at_least_1(now_us + r->p.timeout_us);
                return SIM_REG_ACT_UPDATE;
            }
            return SIM_REG_ACT_NONE;
        }
        /* 4.04 (registration unknown or expired) or any other error:
         * register again on the same session */
        snprintf(r->reason, sizeof r->reason, "%s on update", sim_code_str(code, c, sizeof c));
        r->attempt = 0;
        return begin_register(r, now_us, SIM_REG_ACT_NONE);
    case SIM_REG_DEREGISTERING:
        if (kind != SIM_REG_REQ_DEREGISTER)
            return SIM_REG_ACT_NONE;
        return deregistered(r, now_us);
    default:
        return SIM_REG_ACT_NONE;
    }
}

unsigned sim_reg_on_transport(sim_reg_t *r, uint64_t now_us, const char *why)
{
    switch (r->state) {
    case SIM_REG_REGISTERING:
    case SIM_REG_UPDATING:
    case SIM_REG_REGISTERED:
        snprintf(r->reason, sizeof r->reason, "%s", why && *why ? why : "transport error");
        if (r->state == SIM_REG_REGISTERING)
            return register_failed(r, now_us);
        /* the registration may still be alive on the server; a new Register
         * on a new session settles it */
        r->attempt = 0;
        return register_failed(r, now_us);
    case SIM_REG_DEREGISTERING:
        return deregistered(r, now_us);
    default:
        return SIM_REG_ACT_NONE;
    }
}

unsigned sim_reg_tick(sim_reg_t *r, uint64_t now_us, bool busy)
{
    switch (r->state) {
    case SIM_REG_REGISTERING:
        if (now_us >= r->deadline_us)
            return sim_reg_on_transport(r, now_us, "timeout (no answer to register)");
        return SIM_REG_ACT_NONE;
    case SIM_REG_UPDATING:
        if (now_us >= r->deadline_us)
            return sim_reg_on_transport(r, now_us, "timeout (no answer to update)");
        return SIM_REG_ACT_NONE;
    case SIM_REG_DEREGISTERING:
        if (now_us >= r->deadline_us)
            return deregistered(r, now_us);
        return SIM_REG_ACT_NONE;
    case SIM_REG_REGISTERED:
        if (now_us >= r->next_update_us)
            return sim_reg_update_now(r, now_us);
        if (r->p.awake_us && now_us >= r->awake_until_us && !busy)
            return sim_reg_sleep(r, now_us);
        return SIM_REG_ACT_NONE;
    case SIM_REG_SLEEPING:
        if (now_us >= r->next_update_us)
            return sim_reg_update_now(r, now_us);
        return SIM_REG_ACT_NONE;
    case SIM_REG_HOLDOFF:
    case SIM_REG_DISABLED:
        if (now_us >= r->deadline_us)
            return begin_register(r, now_us, SIM_REG_ACT_CLOSE | SIM_REG_ACT_CONNECT);
        return SIM_REG_ACT_NONE;
    default:
        return SIM_REG_ACT_NONE;
    }
}

void sim_reg_traffic(sim_reg_t *r, uint64_t now_us)
{
    if (r->state == SIM_REG_REGISTERED || r->state == SIM_REG_UPDATING)
        r->awake_until_us = now_us + r->p.awake_us;
}

unsigned sim_reg_update_now(sim_reg_t *r, uint64_t now_us)
{
    switch (r->state) {
    case SIM_REG_REGISTERED:
    case SIM_REG_SLEEPING: {
        unsigned acts = r->state == SIM_REG_SLEEPING ? SIM_REG_ACT_CONNECT : SIM_REG_ACT_NONE;
        r->state = SIM_REG_UPDATING;
        r->deadline_us = at_least_1(now_us + r->p.timeout_us);
        r->awake_until_us = now_us + r->p.awake_us;
        assert_reg(r);
        return acts | SIM_REG_ACT_UPDATE;
    }
    case SIM_REG_UPDATING:
        r->update_again = true;
        return SIM_REG_ACT_NONE;
    case SIM_REG_REGISTERING:
        return SIM_REG_ACT_NONE; /* the Register carries everything */
    default:
        return SIM_REG_ACT_REFUSED;
    }
}

unsigned sim_reg_sleep(sim_reg_t *r, uint64_t now_us)
{
    (void)now_us;
    if (r->state != SIM_REG_REGISTERED || !r->p.awake_us)
        return SIM_REG_ACT_REFUSED;
    r->state = SIM_REG_SLEEPING;
    assert_reg(r);
    return SIM_REG_ACT_CLOSE;
}

static unsigned begin_deregister(sim_reg_t *r, uint64_t now_us, uint64_t disable_us)
{
    switch (r->state) {
    case SIM_REG_REGISTERED:
    case SIM_REG_UPDATING:
    case SIM_REG_SLEEPING: {
        unsigned acts = r->state == SIM_REG_SLEEPING ? SIM_REG_ACT_CONNECT : SIM_REG_ACT_NONE;
        r->state = SIM_REG_DEREGISTERING;
        r->deadline_us = at_least_1(now_us + r->p.timeout_us);
        r->disable_us = disable_us;
        r->update_again = false;
        assert_reg(r);
        return acts | SIM_REG_ACT_DEREGISTER;
    }
    case SIM_REG_REGISTERING:
    case SIM_REG_HOLDOFF:
    case SIM_REG_DISABLED:
        r->disable_us = disable_us;
        return deregistered(r, now_us);
    default:
        return SIM_REG_ACT_REFUSED;
    }
}

unsigned sim_reg_deregister(sim_reg_t *r, uint64_t now_us)
{
    return begin_deregister(r, now_us, 0);
}

unsigned sim_reg_disable(sim_reg_t *r, uint64_t now_us, uint64_t for_us)
{
    return begin_deregister(r, now_us, at_least_1(for_us));
}

unsigned sim_reg_reregister(sim_reg_t *r, uint64_t now_us)
{
    if (r->state == SIM_REG_IDLE || r->state == SIM_REG_FAILED)
        return SIM_REG_ACT_REFUSED;
    r->attempt = 0;
    r->disable_us = 0;
    return begin_register(r, now_us, SIM_REG_ACT_CLOSE | SIM_REG_ACT_CONNECT);
}

unsigned sim_reg_stop(sim_reg_t *r, uint64_t now_us)
{
    if (r->state == SIM_REG_IDLE || r->state == SIM_REG_FAILED || r->state == SIM_REG_DEREGISTERED)
        return SIM_REG_ACT_NONE;
    if (!r->goal) {
        snprintf(r->reason, sizeof r->reason, "stopped");
        r->state = SIM_REG_FAILED;
        r->location[0] = '\0';
        assert_reg(r);
        return SIM_REG_ACT_CLOSE | SIM_REG_ACT_FAILED;
    }
    if (r->state == SIM_REG_DEREGISTERING) {
        r->disable_us = 0;
        return SIM_REG_ACT_NONE;
    }
    return begin_deregister(r, now_us, 0);
}

void sim_reg_abandon(sim_reg_t *r)
{
    if (r->state == SIM_REG_IDLE || r->state == SIM_REG_FAILED || r->state == SIM_REG_DEREGISTERED)
        return;
    if (!r->goal) {
        (void)sim_reg_stop(r, 0);
        return;
    }
    r->state = SIM_REG_DEREGISTERED;
    r->deadline_us = 0;
    r->disable_us = 0;
    r->location[0] = '\0';
    assert_reg(r);
}

void sim_reg_set_lifetime(sim_reg_t *r, uint32_t lifetime_s, uint64_t now_us)
{
    if (!lifetime_s || lifetime_s == r->p.lifetime_s)
        return;
    r->p.lifetime_s = lifetime_s;
    if (!r->p.interval_us) {
        r->interval_us = (uint64_t)lifetime_s * 800000u;
        if (r->state == SIM_REG_REGISTERED || r->state == SIM_REG_SLEEPING)
            r->next_update_us = now_us + r->interval_us;
    }
}

/* ------------------------------------------------------------ queries */

/* transports of a binding (its letters without Q) and whether it held a Q */
static bool split_binding(const char *b, char *tr, size_t cap, bool *q)
{
    size_t w = 0;
    *q = false;
    for (const char *c = b && *b ? b : "U"; *c; c++) {
        if (*c == 'Q') {
            *q = true;
            continue;
        }
        if (!strchr("UTSNMH", *c) || w + 1 >= cap)
            return false;
        tr[w++] = *c;
    }
    if (!w)
        tr[w++] = 'U';
    tr[w] = '\0';
    return true;
}

/* the b value: 1.1+ the transports; 1.0 with Q after U (UQ, UQS) or S (SQ) */
static bool binding_value(char *out, size_t cap, lwm2m_version_t v, const char *binding, bool queue, bool *q11)
{
    char tr[8];
    bool q;
    if (!split_binding(binding, tr, sizeof tr, &q))
        return false;
    queue = queue || q;
    *q11 = queue && v >= LWM2M_V1_1;
    if (!queue || v >= LWM2M_V1_1)
        return (size_t)snprintf(out, cap, "%s", tr) < cap;
    char *u = strchr(tr, 'U');
    if (u)
        return (size_t)snprintf(out, cap, "%.*sQ%s", (int)(u - tr + 1), tr, u + 1) < cap;
    return (size_t)snprintf(out, cap, "%sQ", tr) < cap;
}

static const char *vname(lwm2m_version_t v)
{
    return v == LWM2M_V1_0 ? "1.0" : v == LWM2M_V1_1 ? "1.1" : v == LWM2M_V1_2 ? "1.2" : NULL;
}

int sim_reg_query(char *buf, size_t cap, const char *ep, uint32_t lifetime_s, lwm2m_version_t v, const char *binding,
                  bool queue)
{
    char b[16];
    bool q11;
    if (!ep || !*ep || !vname(v) || !binding_value(b, sizeof b, v, binding, queue, &q11))
        return -1;
    int n = snprintf(buf, cap, "ep=%s&lt=%u&lwm2m=%s&b=%s%s", ep, (unsigned)lifetime_s, vname(v), b, q11 ? "&Q" : "");
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

int sim_reg_update_query(char *buf, size_t cap, bool with_lt, uint32_t lifetime_s, bool with_b, lwm2m_version_t v,
                         const char *binding, bool queue)
{
    if (!cap)
        return -1;
    buf[0] = '\0';
    size_t w = 0;
    if (with_lt) {
        int n = snprintf(buf, cap, "lt=%u", (unsigned)lifetime_s);
        if (n < 0 || (size_t)n >= cap)
            return -1;
        w = (size_t)n;
    }
    if (with_b) {
        char b[16];
        bool q11;
        if (!vname(v) || !binding_value(b, sizeof b, v, binding, queue, &q11))
            return -1;
        int n = snprintf(buf + w, cap - w, "%sb=%s%s", w ? "&" : "", b, q11 ? "&Q" : "");
        if (n < 0 || (size_t)n >= cap - w)
            return -1;
        w += (size_t)n;
    }
    return (int)w;
}
