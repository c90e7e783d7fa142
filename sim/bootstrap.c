/* Client-initiated bootstrap, client side: one state machine per simulated
 * device. Pure: no libcoap, the clock is passed in; the diagram, transition
 * table and invariants are in sim/sim_int.h.
 *
 * Protocol decisions (LwM2M Core TS 1.1.1):
 *  - §6.1.7.1 / §5.2.7.1: the client sends POST /bs?ep=..[&pct=..] and
 *    expects 2.04; any other answer ends the attempt ("4.xx on the Request").
 *  - The Bootstrap procedure fails when Finish does not arrive in time; the
 *    TS suggests EXCHANGE_LIFETIME; lwdm-sim counts a configurable timeout
 *    from the Request of the current attempt (default 30 s).
 *  - Retries (the Client Hold Off Time idea, §E.1 res 11): after a timeout, a
 *    transport error or an error answer to the Request, a new attempt starts
 *    after retry_delay. A refused Finish (4.06) and the stall fault are
 *    final: the server saw the failure and nothing is gained by retrying.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "sim/sim_int.h"

#ifndef NDEBUG
static void assert_bs(const sim_bs_t *bs)
{
    switch (bs->state) {
    case SIM_BS_IDLE: assert(bs->attempt == 0); break;
    case SIM_BS_REQUESTING:
    case SIM_BS_SERVING:
    case SIM_BS_HOLDOFF:
        assert(bs->attempt >= 1 && bs->attempt <= bs->max_attempts);
        assert(bs->deadline_us != 0);
        break;
    case SIM_BS_OK: assert(bs->t_done_us >= bs->t_first_us); break;
    case SIM_BS_FAILED: assert(bs->reason[0] != '\0'); break;
    }
}
#else
#define assert_bs(bs) ((void)0)
#endif

char *sim_code_str(int code, char *buf, size_t cap)
{
    snprintf(buf, cap, "%d.%02d", (code >> 5) & 7, code & 31);
    return buf;
}

void sim_bs_init(sim_bs_t *bs, unsigned retries, uint64_t timeout_us, uint64_t retry_delay_us, int stall_after)
{
    memset(bs, 0, sizeof *bs);
    bs->max_attempts = retries + 1;
    bs->timeout_us = timeout_us;
    bs->retry_delay_us = retry_delay_us;
    bs->stall_after = stall_after;
}

bool sim_bs_done(const sim_bs_t *bs)
{
    return bs->state == SIM_BS_OK || bs->state == SIM_BS_FAILED;
}

static unsigned begin_attempt(sim_bs_t *bs, uint64_t now_us)
{
    bs->attempt++;
    bs->served = 0;
    bs->state = SIM_BS_REQUESTING;
    bs->deadline_us = now_us + bs->timeout_us;
    if (bs->deadline_us == 0)
        bs->deadline_us = 1;
    assert_bs(bs);
    return SIM_BS_ACT_CONNECT;
}

unsigned sim_bs_start(sim_bs_t *bs, uint64_t now_us)
{
    if (bs->state != SIM_BS_IDLE)
        return SIM_BS_ACT_NONE;
    bs->t_first_us = now_us;
    return begin_attempt(bs, now_us);
}

/* The attempt failed: retry after the hold-off if allowed, else FAILED. */
static unsigned attempt_failed(sim_bs_t *bs, uint64_t now_us, bool retryable)
{
    if (retryable && bs->attempt < bs->max_attempts) {
        bs->state = SIM_BS_HOLDOFF;
        bs->deadline_us = now_us + bs->retry_delay_us;
        if (bs->deadline_us == 0)
            bs->deadline_us = 1;
    } else {
        bs->state = SIM_BS_FAILED;
        bs->t_done_us = now_us;
        if (!bs->reason[0])
            snprintf(bs->reason, sizeof bs->reason, "failed");
    }
    assert_bs(bs);
    return SIM_BS_ACT_CLOSE;
}

unsigned sim_bs_on_response(sim_bs_t *bs, uint64_t now_us, int code)
{
    if (bs->state != SIM_BS_REQUESTING)
        return SIM_BS_ACT_NONE;
    if (code == LWM2M_CODE(2, 4)) {
        bs->state = SIM_BS_SERVING;
        bs->reason[0] = '\0';
        assert_bs(bs);
        /* stall_after == 0: silent right after the 2.04 */
        if (bs->stall_after == 0) {
            snprintf(bs->reason, sizeof bs->reason, "stalled after 0 requests (fault injection)");
            return attempt_failed(bs, now_us, false) | SIM_BS_ACT_CLOSE_NOW;
        }
        return SIM_BS_ACT_NONE;
    }
    char c[8];
    snprintf(bs->reason, sizeof bs->reason, "%s on bootstrap request", sim_code_str(code, c, sizeof c));
    return attempt_failed(bs, now_us, true);
}

unsigned sim_bs_on_transport(sim_bs_t *bs, uint64_t now_us, const char *why)
{
    if (bs->state != SIM_BS_REQUESTING && bs->state != SIM_BS_SERVING)
        return SIM_BS_ACT_NONE;
    snprintf(bs->reason, sizeof bs->reason, "%s", why && *why ? why : "transport error");
    return attempt_failed(bs, now_us, true);
}

unsigned sim_bs_on_served(sim_bs_t *bs, uint64_t now_us, int code, sim_dm_event_t ev, const char *detail)
{
    if (bs->state != SIM_BS_SERVING)
        return SIM_BS_ACT_NONE;
    bs->served++;
    if (ev == SIM_DM_EV_FINISH_OK) {
        bs->state = SIM_BS_OK;
        bs->t_done_us = now_us < bs->t_first_us ? bs->t_first_us : now_us;
        bs->reason[0] = '\0';
        assert_bs(bs);
        return SIM_BS_ACT_CLOSE;
    }
    if (ev == SIM_DM_EV_FINISH_REJECTED) {
        char c[8];
        snprintf(bs->reason, sizeof bs->reason, "%s on finish: %s", sim_code_str(code, c, sizeof c),
                 detail && *detail ? detail : "rejected");
        return attempt_failed(bs, now_us, false);
    }
    if (bs->stall_after > 0 && bs->served >= (unsigned)bs->stall_after) {
        snprintf(bs->reason, sizeof bs->reason, "stalled after %u requests (fault injection)", bs->served);
        return attempt_failed(bs, now_us, false) | SIM_BS_ACT_CLOSE_NOW;
    }
    return SIM_BS_ACT_NONE;
}

unsigned sim_bs_tick(sim_bs_t *bs, uint64_t now_us)
{
    if (now_us < bs->deadline_us)
        return SIM_BS_ACT_NONE;
    switch (bs->state) {
    case SIM_BS_HOLDOFF:
        return begin_attempt(bs, now_us);
    case SIM_BS_REQUESTING:
        snprintf(bs->reason, sizeof bs->reason, "timeout (no answer to bootstrap request)");
        return attempt_failed(bs, now_us, true);
    case SIM_BS_SERVING:
        snprintf(bs->reason, sizeof bs->reason, "timeout (no bootstrap finish after %u requests)", bs->served);
        return attempt_failed(bs, now_us, true);
    default:
        return SIM_BS_ACT_NONE;
    }
}

unsigned sim_bs_stop(sim_bs_t *bs, uint64_t now_us)
{
    if (sim_bs_done(bs) || bs->state == SIM_BS_IDLE)
        return SIM_BS_ACT_NONE;
    snprintf(bs->reason, sizeof bs->reason, "stopped");
    return attempt_failed(bs, now_us, false) | SIM_BS_ACT_CLOSE_NOW;
}
