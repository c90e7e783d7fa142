/* sim room internals: shared by sim/bootstrap.c, sim/sim.c and the sim unit
 * tests. Not part of the library API (sim/sim.h). */
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

#endif
