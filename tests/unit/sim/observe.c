/* Unit tests of attributes and notification decisions (sim/observe.c):
 * Write-Attributes parsing and consistency, the pmin/pmax/gt/lt/st table,
 * and observations evaluated against a device model with a fake clock. */
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
#define C(cls, d) LWM2M_CODE(cls, d)

/* ------------------------------------------------------------ parsing */

typedef struct {
    const char *q;
    lwm2m_version_t v;
    bool ok;
    unsigned set, clear;
} parse_case_t;

static void test_attrs_parse(void **state)
{
    (void)state;
    static const parse_case_t cases[] = {
        {"pmin=10", LWM2M_V1_0, true, SIM_ATTR_PMIN, 0},
        {"pmin=10&pmax=60", LWM2M_V1_0, true, SIM_ATTR_PMIN | SIM_ATTR_PMAX, 0},
        {"gt=20.5&lt=-3&st=0.5", LWM2M_V1_0, true, SIM_ATTR_GT | SIM_ATTR_LT | SIM_ATTR_ST, 0},
        {"st=1.000000", LWM2M_V1_1, true, SIM_ATTR_ST, 0},
        {"gt=1e3", LWM2M_V1_1, true, SIM_ATTR_GT, 0},
        {"gt=+.5", LWM2M_V1_1, true, SIM_ATTR_GT, 0},
        {"pmin&pmax=5", LWM2M_V1_1, true, SIM_ATTR_PMAX, SIM_ATTR_PMIN},
        {"st", LWM2M_V1_1, true, 0, SIM_ATTR_ST},
        {"pmin=1&&pmax=2", LWM2M_V1_1, true, SIM_ATTR_PMIN | SIM_ATTR_PMAX, 0},
        {"epmin=1&epmax=2", LWM2M_V1_1, true, SIM_ATTR_EPMIN | SIM_ATTR_EPMAX, 0},
        {"epmin=1", LWM2M_V1_0, false, 0, 0},
        {"", LWM2M_V1_1, false, 0, 0},
        {"pmin=", LWM2M_V1_1, false, 0, 0},
        {"pmin=-1", LWM2M_V1_1, false, 0, 0},
        {"pmin=1.0", LWM2M_V1_1, false, 0, 0},
        {"pmin=99999999999", LWM2M_V1_1, false, 0, 0},
        {"pmin=0x10", LWM2M_V1_1, false, 0, 0},
        {"gt=abc", LWM2M_V1_1, false, 0, 0},
        {"gt=1e", LWM2M_V1_1, false, 0, 0},
        {"gt=.", LWM2M_V1_1, false, 0, 0},
        {"gt=nan", LWM2M_V1_1, false, 0, 0},
        {"gt=1e999", LWM2M_V1_1, false, 0, 0},
        {"st=-0.1", LWM2M_V1_1, false, 0, 0},
        {"pmin=1&pmin=2", LWM2M_V1_1, false, 0, 0},
        {"pmin=1&pmin", LWM2M_V1_1, false, 0, 0},
        {"PMIN=1", LWM2M_V1_1, false, 0, 0},
        {"dim=2", LWM2M_V1_1, false, 0, 0},
        {"edge=1", LWM2M_V1_2, false, 0, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const parse_case_t *c = &cases[k];
        sim_attrs_t set;
        unsigned clear;
        char why[100];
        int rc = sim_attrs_parse(c->q, strlen(c->q), c->v, &set, &clear, why, sizeof why);
        if (c->ok != (rc == 0))
            fail_msg("\"%s\": rc %d (%s)", c->q, rc, why);
        if (!c->ok) {
            assert_int_equal(rc, LWM2M_ERR_BAD_REQUEST);
            assert_true(why[0] != '\0');
            continue;
        }
        if (set.mask != c->set || clear != c->clear)
            fail_msg("\"%s\": set %#x clear %#x", c->q, set.mask, clear);
    }
    sim_attrs_t set;
    unsigned clear;
    assert_int_equal(sim_attrs_parse("gt=20.5&lt=-3&st=1.000000&pmax=60", 33, LWM2M_V1_1, &set, &clear, NULL, 0), 0);
    assert_true(set.gt == 20.5 && set.lt == -3 && set.st == 1.0 && set.pmax == 60);
}

typedef struct {
    const char *cur, *q;
    bool ok;
    const char *want; /* sim_attrs_format of the result */
} merge_case_t;

static void test_attrs_merge(void **state)
{
    (void)state;
    static const merge_case_t cases[] = {
        {"", "pmin=10&pmax=60", true, "pmin=10;pmax=60"},
        {"pmin=10&pmax=60", "pmax=120", true, "pmin=10;pmax=120"},
        {"pmin=10&pmax=60", "pmin", true, "pmax=60"},
        {"pmin=10&pmax=60", "pmin&pmax", true, ""},
        {"pmin=10", "pmax=5", false, NULL},
        {"pmin=10", "pmax=0", true, "pmin=10;pmax=0"}, /* pmax 0: no maximum */
        {"", "gt=50&lt=20&st=5", true, "gt=50;lt=20;st=5"},
        {"", "gt=50&lt=20&st=15", false, NULL},
        {"gt=50&lt=20", "st=15", false, NULL},
        {"gt=50&lt=20", "lt=50", false, NULL},
        {"gt=50&lt=20", "gt", true, "lt=20"},
        {"", "gt=-10.25&lt=-20", true, "gt=-10.25;lt=-20"},
        {"", "st=0.1", true, "st=0.1"},
        {"", "gt=1e3", true, "gt=1000"},
        {"", "gt=0.000001", true, "gt=0.000001"},
        {"", "epmin=10&epmax=5", false, NULL},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const merge_case_t *c = &cases[k];
        sim_attrs_t cur = {0}, set, before;
        unsigned clear;
        if (c->cur[0]) {
            assert_int_equal(sim_attrs_parse(c->cur, strlen(c->cur), LWM2M_V1_1, &set, &clear, NULL, 0), 0);
            assert_int_equal(sim_attrs_merge(&cur, &set, clear, NULL, 0), 0);
        }
        before = cur;
        assert_int_equal(sim_attrs_parse(c->q, strlen(c->q), LWM2M_V1_1, &set, &clear, NULL, 0), 0);
        char why[100] = "";
        int rc = sim_attrs_merge(&cur, &set, clear, why, sizeof why);
        if (c->ok != (rc == 0))
            fail_msg("%s + %s: rc %d (%s)", c->cur, c->q, rc, why);
        if (!c->ok) {
            assert_memory_equal(&cur, &before, sizeof cur); /* unchanged */
            continue;
        }
        char buf[120];
        assert_true(sim_attrs_format(&cur, buf, sizeof buf) >= 0);
        if (strcmp(buf, c->want) != 0)
            fail_msg("%s + %s: \"%s\", want \"%s\"", c->cur, c->q, buf, c->want);
    }
    char small[4];
    sim_attrs_t a = {.mask = SIM_ATTR_PMIN, .pmin = 12345};
    assert_int_equal(sim_attrs_format(&a, small, sizeof small), -1);
}

/* ------------------------------------------------------------ decisions */

typedef struct {
    const char *attrs;
    uint64_t since_s;    /* seconds since the last notification */
    bool changed;
    double last_v, new_v;
    bool due;
} due_case_t;

static void test_obs_due(void **state)
{
    (void)state;
    static const due_case_t cases[] = {
        /* no attributes: every change, nothing else */
        {"", 0, true, 1, 2, true},
        {"", 1000, false, 1, 1, false},
        /* pmin holds changes back */
        {"pmin=10", 5, true, 1, 2, false},
        {"pmin=10", 10, true, 1, 2, true},
        {"pmin=10", 50, false, 1, 1, false},
        /* pmax: notify without a change */
        {"pmax=60", 59, false, 1, 1, false},
        {"pmax=60", 60, false, 1, 1, true},
        {"pmin=10&pmax=60", 60, false, 1, 1, true},
        {"pmin=10&pmax=60", 5, true, 1, 2, false},
        {"pmax=0", 1000, false, 1, 1, false}, /* 0: no maximum */
        /* gt: crossing, either direction */
        {"gt=50", 1, true, 40, 45, false},
        {"gt=50", 1, true, 45, 55, true},
        {"gt=50", 1, true, 55, 60, false},
        {"gt=50", 1, true, 60, 50, true},
        /* lt */
        {"lt=10", 1, true, 15, 12, false},
        {"lt=10", 1, true, 12, 9.5, true},
        {"lt=10", 1, true, 5, 10, true},
        /* st: against the last notified value */
        {"st=5", 1, true, 100, 103, false},
        {"st=5", 1, true, 100, 95, true},
        {"st=5", 1, true, 100, 105, true},
        /* any of them */
        {"gt=100&lt=10&st=30", 1, true, 20, 30, false},
        {"gt=100&lt=10&st=30", 1, true, 20, 101, true},
        {"gt=100&lt=10&st=5", 1, true, 20, 25, true},
        /* thresholds do not stop pmax, pmin stops thresholds */
        {"gt=50&pmax=30", 30, false, 20, 20, true},
        {"gt=50&pmin=10", 5, true, 20, 60, false},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const due_case_t *c = &cases[k];
        sim_attrs_t a = {0}, set;
        unsigned clear;
        if (c->attrs[0]) {
            assert_int_equal(sim_attrs_parse(c->attrs, strlen(c->attrs), LWM2M_V1_1, &set, &clear, NULL, 0), 0);
            assert_int_equal(sim_attrs_merge(&a, &set, clear, NULL, 0), 0);
        }
        uint64_t last = 1000 * S;
        bool due = sim_obs_due(&a, last + c->since_s * S, last, c->changed, true, c->last_v, c->new_v);
        if (due != c->due)
            fail_msg("case %zu (%s, %llu s, %g -> %g): %d", k, c->attrs, (unsigned long long)c->since_s, c->last_v,
                     c->new_v, due);
    }
    /* thresholds only apply to numbers: a non-numeric change notifies */
    sim_attrs_t a = {.mask = SIM_ATTR_GT, .gt = 50};
    assert_true(sim_obs_due(&a, 10 * S, 9 * S, true, false, 0, 0));
}

/* ------------------------------------------------------------ observations */

static lwm2m_registry_t *g_reg;

static sim_dm_t *make_dm(void)
{
    sim_dm_config_t cfg;
    sim_dm_config_init(&cfg);
    cfg.reg = g_reg;
    cfg.endpoint = "sim-000001";
    cfg.dm_uri = "coap://127.0.0.1:5683";
    cfg.preferred_cf = LWM2M_CF_SENML_JSON;
    sim_dm_t *dm = NULL;
    assert_int_equal(sim_dm_new(&cfg, &dm), 0);
    return dm;
}

static int dm_req(sim_dm_t *dm, int method, const char *path, const char *query, int cf, int accept,
                  const char *payload, sim_response_t *out)
{
    sim_request_t r = {0};
    r.iface = SIM_IFACE_DM;
    r.method = method;
    r.path = path;
    r.path_len = strlen(path);
    r.query = query;
    r.query_len = query ? strlen(query) : 0;
    r.content_format = cf;
    r.accept = accept;
    r.payload = (const uint8_t *)payload;
    r.payload_len = payload ? strlen(payload) : 0;
    sim_dm_handle(dm, &r, out);
    return out->code;
}

/* observes `path` at t (a Read answered 2.05) */
static void observe(sim_dm_t *dm, sim_obs_t *o, const char *path, int accept, uint64_t t)
{
    sim_response_t out;
    assert_int_equal(dm_req(dm, SIM_GET, path, NULL, -1, accept, NULL, &out), C(2, 5));
    lwm2m_path_t p;
    assert_int_equal(lwm2m_path_parse(path, strlen(path), &p), 0);
    assert_int_equal(sim_obs_init(o, dm, (const uint8_t *)"\x01\x02", 2, &p, &out, t), 0);
    sim_response_clear(&out);
}

static void set_int(sim_dm_t *dm, unsigned o, unsigned i, unsigned r, int64_t v)
{
    lwm2m_record_t rec = {.path = lwm2m_path_make(3, o, i, r, 0), .type = LWM2M_T_INTEGER};
    rec.v.i = v;
    assert_int_equal(sim_dm_set_value(dm, &rec), 0);
}

/* checks at t; returns 1 and the text of a notification, or 0 */
static int check(sim_dm_t *dm, sim_obs_t *o, uint64_t t, char *text, size_t cap)
{
    sim_response_t r;
    int due = sim_obs_check(dm, o, t, &r);
    if (due) {
        snprintf(text, cap, "%d %.*s", r.code, (int)r.payload_len, r.payload ? (const char *)r.payload : "");
        sim_obs_sent(o, dm, &r, t);
    }
    sim_response_clear(&r);
    return due;
}

static void test_observation_flow(void **state)
{
    (void)state;
    sim_dm_t *dm = make_dm();
    sim_obs_t o;
    char txt[200];
    observe(dm, &o, "4/0/2", LWM2M_CF_TEXT, 0);
    assert_int_equal(o.seq, 1);
    assert_true(o.numeric);
    assert_int_equal(o.cf, LWM2M_CF_TEXT);
    /* nothing changed: nothing to say */
    assert_int_equal(check(dm, &o, 1 * S, txt, sizeof txt), 0);
    /* a change notifies at once (no attributes) */
    set_int(dm, 4, 0, 2, -80);
    assert_int_equal(check(dm, &o, 2 * S, txt, sizeof txt), 1);
    assert_string_equal(txt, "69 -80");
    assert_int_equal(o.seq, 2);
    assert_int_equal(o.sent, 1);
    assert_int_equal(check(dm, &o, 3 * S, txt, sizeof txt), 0);
    /* pmin holds a change until it expires, then it goes out once */
    sim_response_t out;
    assert_int_equal(dm_req(dm, SIM_PUT, "4/0/2", "pmin=10&st=3", -1, -1, NULL, &out), C(2, 4));
    sim_response_clear(&out);
    set_int(dm, 4, 0, 2, -90);
    assert_int_equal(check(dm, &o, 5 * S, txt, sizeof txt), 0);
    assert_true(o.pending);
    assert_int_equal(check(dm, &o, 11 * S, txt, sizeof txt), 0);
    assert_int_equal(check(dm, &o, 12 * S, txt, sizeof txt), 1);
    assert_string_equal(txt, "69 -90");
    assert_false(o.pending);
    /* st=3: a move of 2 is not enough, 3 is */
    set_int(dm, 4, 0, 2, -88);
    assert_int_equal(check(dm, &o, 30 * S, txt, sizeof txt), 0);
    set_int(dm, 4, 0, 2, -87);
    assert_int_equal(check(dm, &o, 31 * S, txt, sizeof txt), 1);
    assert_string_equal(txt, "69 -87");
    /* pmax on the instance: notify without a change */
    assert_int_equal(dm_req(dm, SIM_PUT, "4/0", "pmax=20", -1, -1, NULL, &out), C(2, 4));
    sim_response_clear(&out);
    assert_int_equal(check(dm, &o, 50 * S, txt, sizeof txt), 0);
    assert_int_equal(check(dm, &o, 51 * S, txt, sizeof txt), 1);
    assert_string_equal(txt, "69 -87");
    assert_int_equal(o.seq, 5);
    sim_obs_clear(&o);
    sim_dm_free(&dm);
}

static void test_observation_instance_and_delete(void **state)
{
    (void)state;
    sim_dm_t *dm = make_dm();
    sim_response_t out;
    assert_int_equal(dm_req(dm, SIM_POST, "2", NULL, LWM2M_CF_SENML_JSON, -1, "[{\"bn\":\"/2/4/\",\"n\":\"0\",\"v\":3}]",
                            &out),
                     C(2, 1));
    sim_response_clear(&out);
    sim_obs_t o;
    char txt[300];
    observe(dm, &o, "2/4", -1, 0); /* no Accept: the preferred format */
    assert_int_equal(o.cf, LWM2M_CF_SENML_JSON);
    assert_false(o.numeric);
    assert_int_equal(dm_req(dm, SIM_PUT, "2/4/0", NULL, LWM2M_CF_TEXT, -1, "9", &out), C(4, 5)); /* read-only */
    sim_response_clear(&out);
    assert_int_equal(dm_req(dm, SIM_POST, "2/4", NULL, LWM2M_CF_SENML_JSON, -1, "[{\"bn\":\"/2/4/\",\"n\":\"3\",\"v\":7}]",
                            &out),
                     C(2, 4));
    sim_response_clear(&out);
    assert_int_equal(check(dm, &o, 1 * S, txt, sizeof txt), 1);
    assert_non_null(strstr(txt, "\"n\":\"3\",\"v\":7"));
    /* a value elsewhere changes: this observation has nothing new */
    set_int(dm, 4, 0, 2, -60);
    assert_int_equal(check(dm, &o, 2 * S, txt, sizeof txt), 0);
    /* the instance goes: a final 4.04 */
    assert_int_equal(dm_req(dm, SIM_DELETE, "2/4", NULL, -1, -1, NULL, &out), C(2, 2));
    sim_response_clear(&out);
    assert_int_equal(check(dm, &o, 3 * S, txt, sizeof txt), 1);
    assert_string_equal(txt, "132 ");
    sim_obs_clear(&o);
    sim_dm_free(&dm);
}

static void test_server_default_periods(void **state)
{
    (void)state;
    sim_dm_t *dm = make_dm();
    sim_response_t out;
    /* /1/0/2 pmin 5, /1/0/3 pmax 15 apply to everything observed */
    assert_int_equal(dm_req(dm, SIM_POST, "1/0", NULL, LWM2M_CF_SENML_JSON, -1,
                            "[{\"bn\":\"/1/0/\",\"n\":\"2\",\"v\":5},{\"n\":\"3\",\"v\":15}]", &out),
                     C(2, 4));
    sim_response_clear(&out);
    sim_obs_t o;
    char txt[100];
    observe(dm, &o, "3/0/9", LWM2M_CF_TEXT, 0);
    set_int(dm, 3, 0, 9, 80);
    assert_int_equal(check(dm, &o, 4 * S, txt, sizeof txt), 0);
    assert_int_equal(check(dm, &o, 5 * S, txt, sizeof txt), 1);
    assert_int_equal(check(dm, &o, 19 * S, txt, sizeof txt), 0);
    assert_int_equal(check(dm, &o, 20 * S, txt, sizeof txt), 1);
    /* an attribute on the resource overrides the default */
    assert_int_equal(dm_req(dm, SIM_PUT, "3/0/9", "pmax=100", -1, -1, NULL, &out), C(2, 4));
    sim_response_clear(&out);
    assert_int_equal(check(dm, &o, 35 * S, txt, sizeof txt), 0);
    assert_int_equal(check(dm, &o, 120 * S, txt, sizeof txt), 1);
    sim_obs_clear(&o);
    sim_dm_free(&dm);
}

int main(void)
{
    char err[200];
    g_reg = lwm2m_registry_new();
    if (!g_reg || lwm2m_registry_add_builtin(g_reg, err, sizeof err) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attrs_parse),
        cmocka_unit_test(test_attrs_merge),
        cmocka_unit_test(test_obs_due),
        cmocka_unit_test(test_observation_flow),
        cmocka_unit_test(test_observation_instance_and_delete),
        cmocka_unit_test(test_server_default_periods),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    lwm2m_registry_free(&g_reg);
    return rc;
}
