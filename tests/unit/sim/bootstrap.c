/* Unit tests of the client bootstrap state machine (sim/bootstrap.c) with a
 * fake clock: events in, state and actions out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sim/sim_int.h"

#define MS 1000ull
#define C(cls, d) LWM2M_CODE(cls, d)

static void test_happy_path(void **state)
{
    (void)state;
    sim_bs_t bs;
    sim_bs_init(&bs, 0, 30000 * MS, 1000 * MS, -1);
    assert_int_equal(bs.state, SIM_BS_IDLE);
    assert_int_equal(sim_bs_start(&bs, 1000 * MS), SIM_BS_ACT_CONNECT);
    assert_int_equal(bs.state, SIM_BS_REQUESTING);
    assert_int_equal(bs.attempt, 1);
    assert_int_equal(sim_bs_start(&bs, 1000 * MS), SIM_BS_ACT_NONE); /* only once */
    assert_int_equal(sim_bs_on_response(&bs, 1005 * MS, C(2, 4)), SIM_BS_ACT_NONE);
    assert_int_equal(bs.state, SIM_BS_SERVING);
    assert_int_equal(sim_bs_on_served(&bs, 1006 * MS, C(2, 5), SIM_DM_EV_NONE, ""), SIM_BS_ACT_NONE);
    assert_int_equal(sim_bs_on_served(&bs, 1007 * MS, C(2, 4), SIM_DM_EV_NONE, ""), SIM_BS_ACT_NONE);
    assert_int_equal(sim_bs_tick(&bs, 2000 * MS), SIM_BS_ACT_NONE);
    assert_int_equal(sim_bs_on_served(&bs, 1012 * MS, C(2, 4), SIM_DM_EV_FINISH_OK, ""), SIM_BS_ACT_CLOSE);
    assert_int_equal(bs.state, SIM_BS_OK);
    assert_true(sim_bs_done(&bs));
    assert_int_equal(bs.t_done_us - bs.t_first_us, 12 * MS);
    assert_int_equal(bs.served, 3);
    /* terminal: nothing moves it */
    assert_int_equal(sim_bs_tick(&bs, 99999 * MS), SIM_BS_ACT_NONE);
    assert_int_equal(sim_bs_on_transport(&bs, 99999 * MS, "x"), SIM_BS_ACT_NONE);
    assert_int_equal(sim_bs_stop(&bs, 99999 * MS), SIM_BS_ACT_NONE);
    assert_int_equal(bs.state, SIM_BS_OK);
}

static void test_error_on_request(void **state)
{
    (void)state;
    sim_bs_t bs;
    sim_bs_init(&bs, 0, 30000 * MS, 1000 * MS, -1);
    sim_bs_start(&bs, 0);
    assert_int_equal(sim_bs_on_response(&bs, 3 * MS, C(4, 0)), SIM_BS_ACT_CLOSE);
    assert_int_equal(bs.state, SIM_BS_FAILED);
    assert_string_equal(bs.reason, "4.00 on bootstrap request");
}

static void test_timeout_and_retries(void **state)
{
    (void)state;
    sim_bs_t bs;
    sim_bs_init(&bs, 1, 30000 * MS, 1000 * MS, -1);
    sim_bs_start(&bs, 0);
    assert_int_equal(sim_bs_on_response(&bs, 10 * MS, C(2, 4)), SIM_BS_ACT_NONE);
    assert_int_equal(sim_bs_tick(&bs, 29999 * MS), SIM_BS_ACT_NONE);
    /* first attempt times out: hold-off, then a new Request */
    assert_int_equal(sim_bs_tick(&bs, 30000 * MS), SIM_BS_ACT_CLOSE);
    assert_int_equal(bs.state, SIM_BS_HOLDOFF);
    assert_int_equal(sim_bs_tick(&bs, 30500 * MS), SIM_BS_ACT_NONE);
    assert_int_equal(sim_bs_tick(&bs, 31000 * MS), SIM_BS_ACT_CONNECT);
    assert_int_equal(bs.state, SIM_BS_REQUESTING);
    assert_int_equal(bs.attempt, 2);
    /* second attempt: transport error, no retries left */
    assert_int_equal(sim_bs_on_transport(&bs, 32000 * MS, "DTLS handshake failed"), SIM_BS_ACT_CLOSE);
    assert_int_equal(bs.state, SIM_BS_FAILED);
    assert_string_equal(bs.reason, "DTLS handshake failed");
}

static void test_timeout_reason(void **state)
{
    (void)state;
    sim_bs_t bs;
    sim_bs_init(&bs, 0, 5000 * MS, 1000 * MS, -1);
    sim_bs_start(&bs, 0);
    assert_int_equal(sim_bs_tick(&bs, 5000 * MS), SIM_BS_ACT_CLOSE);
    assert_int_equal(bs.state, SIM_BS_FAILED);
    assert_non_null(strstr(bs.reason, "timeout"));
}

static void test_finish_rejected_is_final(void **state)
{
    (void)state;
    sim_bs_t bs;
    sim_bs_init(&bs, 3, 30000 * MS, 1000 * MS, -1);
    sim_bs_start(&bs, 0);
    sim_bs_on_response(&bs, 1 * MS, C(2, 4));
    assert_int_equal(sim_bs_on_served(&bs, 2 * MS, C(4, 6), SIM_DM_EV_FINISH_REJECTED, "no LwM2M server account"),
                     SIM_BS_ACT_CLOSE);
    assert_int_equal(bs.state, SIM_BS_FAILED);
    assert_string_equal(bs.reason, "4.06 on finish: no LwM2M server account");
}

static void test_stall(void **state)
{
    (void)state;
    sim_bs_t bs;
    sim_bs_init(&bs, 2, 30000 * MS, 1000 * MS, 2);
    sim_bs_start(&bs, 0);
    sim_bs_on_response(&bs, 1 * MS, C(2, 4));
    assert_int_equal(sim_bs_on_served(&bs, 2 * MS, C(2, 5), SIM_DM_EV_NONE, ""), SIM_BS_ACT_NONE);
    unsigned a = sim_bs_on_served(&bs, 3 * MS, C(2, 2), SIM_DM_EV_NONE, "");
    assert_int_equal(a, SIM_BS_ACT_CLOSE | SIM_BS_ACT_CLOSE_NOW);
    assert_int_equal(bs.state, SIM_BS_FAILED);
    assert_string_equal(bs.reason, "stalled after 2 requests (fault injection)");

    sim_bs_init(&bs, 0, 30000 * MS, 1000 * MS, 0); /* silent right after the 2.04 */
    sim_bs_start(&bs, 0);
    assert_int_equal(sim_bs_on_response(&bs, 1 * MS, C(2, 4)), SIM_BS_ACT_CLOSE | SIM_BS_ACT_CLOSE_NOW);
    assert_int_equal(bs.state, SIM_BS_FAILED);
}

static void test_stop(void **state)
{
    (void)state;
    sim_bs_t bs;
    sim_bs_init(&bs, 0, 30000 * MS, 1000 * MS, -1);
    assert_int_equal(sim_bs_stop(&bs, 0), SIM_BS_ACT_NONE); /* pending stays pending */
    assert_int_equal(bs.state, SIM_BS_IDLE);
    sim_bs_start(&bs, 0);
    assert_int_equal(sim_bs_stop(&bs, 1), SIM_BS_ACT_CLOSE | SIM_BS_ACT_CLOSE_NOW);
    assert_string_equal(bs.reason, "stopped");
}

static void test_code_str(void **state)
{
    (void)state;
    char b[8];
    assert_string_equal(sim_code_str(C(4, 6), b, sizeof b), "4.06");
    assert_string_equal(sim_code_str(C(2, 4), b, sizeof b), "2.04");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_happy_path),
        cmocka_unit_test(test_error_on_request),
        cmocka_unit_test(test_timeout_and_retries),
        cmocka_unit_test(test_timeout_reason),
        cmocka_unit_test(test_finish_rejected_is_final),
        cmocka_unit_test(test_stall),
        cmocka_unit_test(test_stop),
        cmocka_unit_test(test_code_str),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
