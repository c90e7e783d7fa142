/* Unit tests of the client registration machine and the Register/Update
 * request building (sim/register.c, sim_dm_register_payload in sim/dm.c),
 * with a fake clock: events in, state and actions out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/lwm2m/codec.h"
#include "server/lwm2m/registry.h"
#include "sim/sim_int.h"

#define S 1000000ull
#define MS 1000ull
#define C(cls, d) LWM2M_CODE(cls, d)

enum { CLOSE = SIM_REG_ACT_CLOSE, CONNECT = SIM_REG_ACT_CONNECT, REG = SIM_REG_ACT_REGISTER,
       UPD = SIM_REG_ACT_UPDATE, DEREG = SIM_REG_ACT_DEREGISTER, GOAL = SIM_REG_ACT_GOAL,
       FAILED = SIM_REG_ACT_FAILED, REFUSED = SIM_REG_ACT_REFUSED };

/* ------------------------------------------------------------ queries */

typedef struct {
    lwm2m_version_t v;
    const char *binding;
    bool queue;
    const char *want; /* NULL: refused */
} query_case_t;

static void test_register_query(void **state)
{
    (void)state;
    static const query_case_t cases[] = {
        {LWM2M_V1_0, "U", false, "ep=sim-000001&lt=300&lwm2m=1.0&b=U"},
        {LWM2M_V1_0, "U", true, "ep=sim-000001&lt=300&lwm2m=1.0&b=UQ"},
        {LWM2M_V1_0, "UQ", false, "ep=sim-000001&lt=300&lwm2m=1.0&b=UQ"},
        {LWM2M_V1_0, "US", true, "ep=sim-000001&lt=300&lwm2m=1.0&b=UQS"},
        {LWM2M_V1_0, "S", true, "ep=sim-000001&lt=300&lwm2m=1.0&b=SQ"},
        {LWM2M_V1_1, "U", false, "ep=sim-000001&lt=300&lwm2m=1.1&b=U"},
        {LWM2M_V1_1, "U", true, "ep=sim-000001&lt=300&lwm2m=1.1&b=U&Q"},
        {LWM2M_V1_1, "UQ", false, "ep=sim-000001&lt=300&lwm2m=1.1&b=U&Q"},
        {LWM2M_V1_1, "UQS", false, "ep=sim-000001&lt=300&lwm2m=1.1&b=US&Q"},
        {LWM2M_V1_1, NULL, false, "ep=sim-000001&lt=300&lwm2m=1.1&b=U"},
        {LWM2M_V1_2, "UT", true, "ep=sim-000001&lt=300&lwm2m=1.2&b=UT&Q"},
        {LWM2M_V1_2, "X", false, NULL},
    };
    char buf[128];
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const query_case_t *c = &cases[k];
        int n = sim_reg_query(buf, sizeof buf, "sim-000001", 300, c->v, c->binding, c->queue);
        if (!c->want) {
            assert_int_equal(n, -1);
            continue;
        }
        if (n < 0 || strcmp(buf, c->want) != 0)
            fail_msg("case %zu: \"%s\", want \"%s\"", k, n < 0 ? "(refused)" : buf, c->want);
        assert_int_equal((size_t)n, strlen(c->want));
    }
    assert_int_equal(sim_reg_query(buf, 10, "sim-000001", 300, LWM2M_V1_1, "U", false), -1);
    assert_int_equal(sim_reg_query(buf, sizeof buf, "", 300, LWM2M_V1_1, "U", false), -1);
}

static void test_update_query(void **state)
{
    (void)state;
    char buf[64];
    assert_int_equal(sim_reg_update_query(buf, sizeof buf, false, 300, false, LWM2M_V1_1, "U", false), 0);
    assert_string_equal(buf, "");
    assert_true(sim_reg_update_query(buf, sizeof buf, true, 120, false, LWM2M_V1_1, "U", false) > 0);
    assert_string_equal(buf, "lt=120");
    assert_true(sim_reg_update_query(buf, sizeof buf, true, 120, true, LWM2M_V1_1, "UQ", false) > 0);
    assert_string_equal(buf, "lt=120&b=U&Q");
    assert_true(sim_reg_update_query(buf, sizeof buf, false, 0, true, LWM2M_V1_0, "U", true) > 0);
    assert_string_equal(buf, "b=UQ");
}

/* ------------------------------------------------------------ payload */

static lwm2m_registry_t *g_reg;

static sim_dm_t *make_dm(lwm2m_version_t v, int cf)
{
    sim_dm_config_t cfg;
    sim_dm_config_init(&cfg);
    cfg.version = v;
    cfg.reg = g_reg;
    cfg.endpoint = "sim-000001";
    cfg.bs_uri = "coap://127.0.0.1:5693";
    cfg.dm_uri = "coap://127.0.0.1:5683";
    cfg.preferred_cf = cf;
    sim_dm_t *dm = NULL;
    assert_int_equal(sim_dm_new(&cfg, &dm), 0);
    return dm;
}

static void expect_payload(lwm2m_version_t v, int cf, const char *want)
{
    sim_dm_t *dm = make_dm(v, cf);
    char *p = NULL;
    size_t len = 0;
    assert_int_equal(sim_dm_register_payload(dm, &p, &len), 0);
    assert_int_equal(len, strlen(p));
    if (strcmp(p, want) != 0)
        fail_msg("payload \"%s\", want \"%s\"", p, want);
    free(p);
    sim_dm_free(&dm);
}

static void test_register_payload(void **state)
{
    (void)state;
    /* 1.0: no root link, ver quoted (no object above 1.0 here) */
    expect_payload(LWM2M_V1_0, LWM2M_CF_TLV, "</1/0>,</2>,</3/0>,</4/0>,</7/0>");
    /* 1.1: root link with the formats (preferred first), ver unquoted,
     * never /0 or /21 */
    expect_payload(LWM2M_V1_1, LWM2M_CF_SENML_CBOR,
                   "</>;rt=\"oma.lwm2m\";ct=\"112 110 11542\",</1>;ver=1.1,</1/0>,</2>,</3>;ver=1.1,</3/0>,</4/0>,</7/0>");
    expect_payload(LWM2M_V1_1, LWM2M_CF_TLV,
                   "</>;rt=\"oma.lwm2m\";ct=\"11542 112 110\",</1>;ver=1.1,</1/0>,</2>,</3>;ver=1.1,</3/0>,</4/0>,</7/0>");
    /* 1.2: LwM2M CBOR when the codec has it */
    if (lwm2m_cf_supported(LWM2M_CF_LWM2M_CBOR))
        expect_payload(LWM2M_V1_2, LWM2M_CF_SENML_CBOR,
                       "</>;rt=\"oma.lwm2m\";ct=\"112 11544 110 11542\",</1>;ver=1.2,</1/0>,</2>,</3>;ver=1.2,</3/0>,"
                       "</4/0>,</7/0>");
    else
        expect_payload(LWM2M_V1_2, LWM2M_CF_SENML_CBOR,
                       "</>;rt=\"oma.lwm2m\";ct=\"112 110 11542\",</1>;ver=1.2,</1/0>,</2>,</3>;ver=1.2,</3/0>,</4/0>,"
                       "</7/0>");
    /* formats */
    sim_dm_t *dm = make_dm(LWM2M_V1_0, LWM2M_CF_TLV);
    int cfs[8];
    assert_int_equal(sim_dm_formats(dm, cfs, 8), 1);
    assert_int_equal(cfs[0], LWM2M_CF_TLV);
    sim_dm_free(&dm);
}

/* ------------------------------------------------------------ machine */

static sim_reg_t make(uint32_t lt, uint64_t interval, uint64_t awake, unsigned retries)
{
    sim_reg_params_t p = {.lifetime_s = lt, .interval_us = interval, .awake_us = awake, .retries = retries,
                          .retry_delay_us = 2 * S, .timeout_us = 30 * S};
    sim_reg_t r;
    sim_reg_init(&r, &p);
    return r;
}

static void test_register_update_deregister(void **state)
{
    (void)state;
    sim_reg_t r = make(100, 0, 0, 0);
    assert_int_equal(r.interval_us, 80 * S); /* 80 % of the lifetime */
    assert_int_equal(sim_reg_start(&r, 1 * S), CONNECT | REG);
    assert_int_equal(r.state, SIM_REG_REGISTERING);
    assert_int_equal(sim_reg_start(&r, 1 * S), REFUSED);
    assert_false(sim_reg_done(&r));
    /* an answer of the wrong kind is ignored */
    assert_int_equal(sim_reg_on_response(&r, 1 * S, SIM_REG_REQ_UPDATE, C(2, 4), NULL), 0);
    assert_int_equal(sim_reg_on_response(&r, 1 * S + 3 * MS, SIM_REG_REQ_REGISTER, C(2, 1), "/rd/5"), GOAL);
    assert_int_equal(r.state, SIM_REG_REGISTERED);
    assert_string_equal(r.location, "/rd/5");
    assert_true(sim_reg_registered(&r) && sim_reg_serving(&r) && sim_reg_done(&r));
    assert_int_equal(r.t_goal_us - r.t_start_us, 3 * MS);
    /* updates every 80 s */
    assert_int_equal(sim_reg_tick(&r, 80 * S, false), 0);
    assert_int_equal(sim_reg_tick(&r, 81 * S + 3 * MS, false), UPD);
    assert_int_equal(r.state, SIM_REG_UPDATING);
    assert_true(sim_reg_serving(&r));
    /* asked again while one is in flight: sent after the answer */
    assert_int_equal(sim_reg_update_now(&r, 82 * S), 0);
    assert_int_equal(sim_reg_on_response(&r, 83 * S, SIM_REG_REQ_UPDATE, C(2, 4), NULL), UPD);
    assert_int_equal(sim_reg_on_response(&r, 84 * S, SIM_REG_REQ_UPDATE, C(2, 4), NULL), 0);
    assert_int_equal(r.updates, 2);
    assert_int_equal(r.next_update_us, 164 * S);
    /* a new lifetime moves the next Update */
    sim_reg_set_lifetime(&r, 10, 90 * S);
    assert_int_equal(r.next_update_us, 98 * S);
    /* De-register: any answer ends it */
    assert_int_equal(sim_reg_deregister(&r, 91 * S), DEREG);
    assert_int_equal(r.state, SIM_REG_DEREGISTERING);
    assert_false(sim_reg_registered(&r));
    assert_int_equal(sim_reg_on_response(&r, 91 * S, SIM_REG_REQ_DEREGISTER, C(4, 4), NULL), CLOSE);
    assert_int_equal(r.state, SIM_REG_DEREGISTERED);
    assert_string_equal(r.location, "");
    assert_int_equal(sim_reg_tick(&r, 999 * S, false), 0);
    assert_int_equal(sim_reg_update_now(&r, 999 * S), REFUSED);
    assert_int_equal(sim_reg_deregister(&r, 999 * S), REFUSED);
    /* ... until re-registered */
    assert_int_equal(sim_reg_reregister(&r, 1000 * S), CLOSE | CONNECT | REG);
    assert_int_equal(sim_reg_on_response(&r, 1000 * S, SIM_REG_REQ_REGISTER, C(2, 1), "/rd/6"), 0); /* no 2nd GOAL */
    assert_int_equal(r.registrations, 2);
}

static void test_update_errors(void **state)
{
    (void)state;
    sim_reg_t r = make(300, 10 * S, 0, 0);
    sim_reg_start(&r, 0);
    sim_reg_on_response(&r, 0, SIM_REG_REQ_REGISTER, C(2, 1), "/rd/1");
    assert_int_equal(sim_reg_tick(&r, 10 * S, false), UPD);
    /* 4.04: the server forgot us: Register again on the same session */
    assert_int_equal(sim_reg_on_response(&r, 10 * S, SIM_REG_REQ_UPDATE, C(4, 4), NULL), REG);
    assert_int_equal(r.state, SIM_REG_REGISTERING);
    assert_int_equal(sim_reg_on_response(&r, 10 * S, SIM_REG_REQ_REGISTER, C(2, 1), "/rd/2"), 0);
    assert_string_equal(r.location, "/rd/2");
    /* no answer to an Update: new session after the hold-off (>= 1 s once registered) */
    assert_int_equal(sim_reg_tick(&r, 20 * S, false), UPD);
    assert_int_equal(sim_reg_tick(&r, 49 * S, false), 0);
    assert_int_equal(sim_reg_tick(&r, 50 * S, false), CLOSE);
    assert_int_equal(r.state, SIM_REG_HOLDOFF);
    assert_non_null(strstr(r.reason, "timeout (no answer to update)"));
    assert_int_equal(sim_reg_tick(&r, 51 * S, false), 0);
    assert_int_equal(sim_reg_tick(&r, 52 * S, false), CLOSE | CONNECT | REG);
    /* transport error after the goal: never FAILED, always again */
    assert_int_equal(sim_reg_on_transport(&r, 53 * S, "DTLS handshake failed"), CLOSE);
    assert_int_equal(r.state, SIM_REG_HOLDOFF);
    assert_int_equal(sim_reg_on_response(&r, 53 * S, SIM_REG_REQ_REGISTER, C(2, 1), "/rd/3"), 0); /* stale */
}

static void test_register_failures(void **state)
{
    (void)state;
    sim_reg_t r = make(300, 0, 0, 1);
    sim_reg_start(&r, 0);
    assert_int_equal(sim_reg_on_response(&r, 1 * S, SIM_REG_REQ_REGISTER, C(4, 3), NULL), CLOSE);
    assert_int_equal(r.state, SIM_REG_HOLDOFF);
    assert_int_equal(sim_reg_tick(&r, 3 * S, false), CLOSE | CONNECT | REG);
    assert_int_equal(sim_reg_on_response(&r, 4 * S, SIM_REG_REQ_REGISTER, C(4, 0), NULL), CLOSE | FAILED);
    assert_int_equal(r.state, SIM_REG_FAILED);
    assert_string_equal(r.reason, "4.00 on register");
    assert_true(sim_reg_done(&r));
    assert_int_equal(sim_reg_reregister(&r, 5 * S), REFUSED);
    /* 2.01 without Location-Path */
    r = make(300, 0, 0, 0);
    sim_reg_start(&r, 0);
    assert_int_equal(sim_reg_on_response(&r, 0, SIM_REG_REQ_REGISTER, C(2, 1), ""), CLOSE | FAILED);
    assert_non_null(strstr(r.reason, "Location-Path"));
    /* timeout */
    r = make(300, 0, 0, 0);
    sim_reg_start(&r, 0);
    assert_int_equal(sim_reg_tick(&r, 30 * S, false), CLOSE | FAILED);
    assert_string_equal(r.reason, "timeout (no answer to register)");
    /* stop before the goal */
    r = make(300, 0, 0, 0);
    sim_reg_start(&r, 0);
    assert_int_equal(sim_reg_stop(&r, 1), CLOSE | FAILED);
    assert_string_equal(r.reason, "stopped");
    assert_int_equal(sim_reg_stop(&r, 2), 0);
}

static void test_queue_mode(void **state)
{
    (void)state;
    sim_reg_t r = make(300, 60 * S, 2 * S, 0);
    sim_reg_start(&r, 0);
    sim_reg_on_response(&r, 0, SIM_REG_REQ_REGISTER, C(2, 1), "/rd/1");
    /* traffic keeps it awake; an unacknowledged message too */
    assert_int_equal(sim_reg_tick(&r, 1 * S, false), 0);
    sim_reg_traffic(&r, 1 * S + 500 * MS);
    assert_int_equal(sim_reg_tick(&r, 3 * S, false), 0);
    assert_int_equal(sim_reg_tick(&r, 3 * S + 600 * MS, true), 0);
    assert_int_equal(sim_reg_tick(&r, 3 * S + 600 * MS, false), CLOSE);
    assert_int_equal(r.state, SIM_REG_SLEEPING);
    assert_true(sim_reg_registered(&r));
    assert_false(sim_reg_serving(&r));
    /* wakes up for the Update: a new session */
    assert_int_equal(sim_reg_tick(&r, 59 * S, false), 0);
    assert_int_equal(sim_reg_tick(&r, 60 * S, false), CONNECT | UPD);
    assert_int_equal(sim_reg_on_response(&r, 60 * S, SIM_REG_REQ_UPDATE, C(2, 4), NULL), 0);
    assert_int_equal(r.awake_until_us, 62 * S);
    /* asked to sleep now, then to update now */
    assert_int_equal(sim_reg_sleep(&r, 61 * S), CLOSE);
    assert_int_equal(sim_reg_sleep(&r, 61 * S), REFUSED);
    assert_int_equal(sim_reg_update_now(&r, 61 * S), CONNECT | UPD);
    sim_reg_on_response(&r, 61 * S, SIM_REG_REQ_UPDATE, C(2, 4), NULL);
    /* a sleeping device wakes up to de-register */
    sim_reg_sleep(&r, 62 * S);
    assert_int_equal(sim_reg_stop(&r, 63 * S), CONNECT | DEREG);
    /* not in queue mode: sleep is refused */
    sim_reg_t n = make(300, 0, 0, 0);
    sim_reg_start(&n, 0);
    sim_reg_on_response(&n, 0, SIM_REG_REQ_REGISTER, C(2, 1), "/rd/1");
    assert_int_equal(sim_reg_sleep(&n, 1), REFUSED);
    assert_int_equal(sim_reg_tick(&n, 100 * S, false), 0);
}

static void test_disable_and_reboot(void **state)
{
    (void)state;
    sim_reg_t r = make(300, 0, 0, 0);
    sim_reg_start(&r, 0);
    sim_reg_on_response(&r, 0, SIM_REG_REQ_REGISTER, C(2, 1), "/rd/1");
    assert_int_equal(sim_reg_disable(&r, 1 * S, 10 * S), DEREG);
    assert_int_equal(sim_reg_on_transport(&r, 2 * S, "no answer"), CLOSE);
    assert_int_equal(r.state, SIM_REG_DISABLED);
    assert_int_equal(sim_reg_tick(&r, 11 * S, false), 0);
    assert_int_equal(sim_reg_tick(&r, 12 * S, false), CLOSE | CONNECT | REG);
    sim_reg_on_response(&r, 12 * S, SIM_REG_REQ_REGISTER, C(2, 1), "/rd/2");
    /* reboot: a new Register on a new session */
    assert_int_equal(sim_reg_reregister(&r, 13 * S), CLOSE | CONNECT | REG);
    assert_string_equal(r.location, "");
    assert_int_equal(sim_reg_state_name(r.state)[0], 'r');
    assert_string_equal(sim_reg_state_name(SIM_REG_SLEEPING), "sleeping");
}

int main(void)
{
    char err[200];
    g_reg = lwm2m_registry_new();
    if (!g_reg || lwm2m_registry_add_builtin(g_reg, err, sizeof err) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_query),
        cmocka_unit_test(test_update_query),
        cmocka_unit_test(test_register_payload),
        cmocka_unit_test(test_register_update_deregister),
        cmocka_unit_test(test_update_errors),
        cmocka_unit_test(test_register_failures),
        cmocka_unit_test(test_queue_mode),
        cmocka_unit_test(test_disable_and_reboot),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    lwm2m_registry_free(&g_reg);
    return rc;
}
