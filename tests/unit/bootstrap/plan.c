/* tests for server/bootstrap/bs_plan.c: format choice, instance ids, records, pack. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/bootstrap/bs_plan.h"
#include "server/lwm2m/codec.h"

static void test_choose_cf(void **state)
{
    (void)state;
    static const struct { int pct, version, want; } t[] = {
        {LWM2M_CF_NONE, 0, LWM2M_CF_TLV},
        {LWM2M_CF_NONE, LWM2M_V1_0, LWM2M_CF_TLV},
        {LWM2M_CF_NONE, LWM2M_V1_1, LWM2M_CF_SENML_CBOR},
        {LWM2M_CF_NONE, LWM2M_V1_2, LWM2M_CF_SENML_CBOR},
        {LWM2M_CF_TLV, LWM2M_V1_1, LWM2M_CF_TLV},
        {LWM2M_CF_OLD_TLV, 0, LWM2M_CF_TLV},
        {LWM2M_CF_SENML_JSON, 0, LWM2M_CF_SENML_JSON},
        {LWM2M_CF_SENML_CBOR, 0, LWM2M_CF_SENML_CBOR},
        {LWM2M_CF_LWM2M_CBOR, LWM2M_V1_2, LWM2M_CF_SENML_CBOR}, /* not supported yet: fall back */
        {LWM2M_CF_OMA_JSON, 0, LWM2M_CF_SENML_CBOR},
        {LWM2M_CF_TEXT, 0, LWM2M_CF_SENML_CBOR}, /* not hierarchical */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        assert_int_equal(bs_choose_cf(t[i].pct, t[i].version), t[i].want);
    assert_true(bs_cf_is_lwm2m(11542));
    assert_true(bs_cf_is_lwm2m(1542));
    assert_false(bs_cf_is_lwm2m(9999));
    assert_false(bs_cf_is_lwm2m(50));
}

static db_server_t srv(int type, int ssid, const char *uri, int sec)
{
    db_server_t s = {0};
    s.type = type;
    s.ssid = ssid;
    s.uri = (char *)uri;
    s.security_mode = sec;
    s.client_hold_off_time = -1;
    s.bootstrap_account_timeout = -1;
    s.sms_security_mode = -1;
    s.lifetime = 60;
    strcpy(s.binding, "UQ");
    return s;
}

static const lwm2m_record_t *find(const lwm2m_records_t *rs, int o, int i, int r)
{
    lwm2m_path_t p = lwm2m_path_make(3, (unsigned)o, (unsigned)i, (unsigned)r, 0);
    return lwm2m_records_find(rs, &p);
}

static void test_records_ids(void **state)
{
    (void)state;
    db_server_t m1 = srv(DB_SRV_MANAGEMENT, 3, "coap://a", DB_SEC_NOSEC);
    db_server_t m2 = srv(DB_SRV_MANAGEMENT, 4, "coaps://b", DB_SEC_PSK);
    db_server_t bs = srv(DB_SRV_BOOTSTRAP, 0, "coap://bs", DB_SEC_NOSEC);
    bs.client_hold_off_time = 5;
    bs.bootstrap_account_timeout = 0;
    bs_account_t a[3] = {{.srv = &m1}, {.srv = &m2}, {.srv = &bs}};
    a[1].identity = (uint8_t *)"id";
    a[1].identity_len = 2;
    a[1].secret = (uint8_t *)"sec";
    a[1].secret_len = 3;
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    /* BS account known at /0/1: management takes 0 and 2, BS written at 1 */
    assert_int_equal(bs_plan_records(a, 3, 1, &rs), 0);
    assert_memory_equal(find(&rs, 0, 0, 0)->bytes, "coap://a", 8);
    assert_int_equal(find(&rs, 0, 0, 10)->v.i, 3);
    assert_int_equal(find(&rs, 0, 0, 2)->v.i, 3);
    assert_memory_equal(find(&rs, 0, 2, 0)->bytes, "coaps://b", 9);
    assert_int_equal(find(&rs, 0, 2, 2)->v.i, 0);
    assert_memory_equal(find(&rs, 0, 2, 3)->bytes, "id", 2);
    assert_memory_equal(find(&rs, 0, 2, 5)->bytes, "sec", 3);
    assert_true(find(&rs, 0, 1, 1)->v.b);
    assert_null(find(&rs, 0, 1, 10)); /* no SSID on the BS account */
    assert_int_equal(find(&rs, 0, 1, 11)->v.i, 5);
    assert_int_equal(find(&rs, 0, 1, 12)->v.i, 0);
    assert_int_equal(find(&rs, 1, 0, 0)->v.i, 3);
    assert_int_equal(find(&rs, 1, 1, 0)->v.i, 4);
    assert_memory_equal(find(&rs, 1, 1, 7)->bytes, "UQ", 2);
    assert_int_equal(find(&rs, 1, 0, 1)->v.i, 60);
    assert_null(find(&rs, 1, 2, 0)); /* no Server instance for the BS */
    lwm2m_records_clear(&rs);
    /* unknown BS account: assumed at /0/0 */
    assert_int_equal(bs_plan_records(a, 2, BS_IID_UNKNOWN, &rs), 0);
    assert_null(find(&rs, 0, 0, 0));
    assert_non_null(find(&rs, 0, 1, 0));
    assert_non_null(find(&rs, 0, 2, 0));
    lwm2m_records_clear(&rs);
    /* pack: from /0/2, no BS account */
    assert_int_equal(bs_plan_records_ex(a, 3, BS_IID_UNKNOWN, 2, true, &rs), 0);
    assert_non_null(find(&rs, 0, 2, 0));
    assert_non_null(find(&rs, 0, 3, 0));
    assert_null(find(&rs, 0, 0, 0));
    assert_null(find(&rs, 0, 1, 0));
    uint8_t *body = NULL;
    size_t len = 0;
    assert_int_equal(bs_plan_pack(&rs, LWM2M_CF_SENML_CBOR, &body, &len), 0);
    lwm2m_records_t back;
    lwm2m_records_init(&back);
    lwm2m_path_t root = lwm2m_path_make(0, 0, 0, 0, 0);
    assert_int_equal(lwm2m_decode(LWM2M_CF_SENML_CBOR, &root, body, len, NULL, &back), 0);
    assert_int_equal(back.n, rs.n);
    free(body);
    assert_int_equal(bs_plan_pack(&rs, LWM2M_CF_TLV, &body, &len), LWM2M_ERR_NOT_ACCEPTABLE);
    lwm2m_records_clear(&back);
    /* one write per instance */
    bs_ops_t ops;
    bs_ops_init(&ops);
    assert_int_equal(bs_plan_writes(&rs, LWM2M_CF_TLV, &ops), 0);
    assert_int_equal(ops.n, 4); /* /0/2 /1/0 /0/3 /1/1 */
    for (size_t i = 0; i < ops.n; i++) {
        assert_int_equal(ops.ops[i].kind, BS_OP_WRITE);
        assert_int_equal(ops.ops[i].path.len, 2);
    }
    bs_ops_clear(&ops);
    lwm2m_records_clear(&rs);
}

static void test_tcp_binding(void **state)
{
    (void)state;
    db_server_t m = srv(DB_SRV_MANAGEMENT, 1, "coap+tcp://a", DB_SEC_NOSEC);
    m.transport = DB_TRANSPORT_TCP;
    bs_account_t a = {.srv = &m};
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    assert_int_equal(bs_plan_records(&a, 1, 0, &rs), 0);
    assert_string_equal((const char *)find(&rs, 1, 0, 7)->bytes, "TQ");
    lwm2m_records_clear(&rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_choose_cf),
        cmocka_unit_test(test_records_ids),
        cmocka_unit_test(test_tcp_binding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
