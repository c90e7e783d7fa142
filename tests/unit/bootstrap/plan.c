/* tests for server/bootstrap/bs_plan.c: the records of one account, the
 * Bootstrap-Pack body, and which numbers are LwM2M content formats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/bootstrap/bs_plan.h"
#include "server/lwm2m/codec.h"

static void test_cf_is_lwm2m(void **state)
{
    (void)state;
    assert_true(bs_cf_is_lwm2m(11542));
    assert_true(bs_cf_is_lwm2m(1542));
    assert_true(bs_cf_is_lwm2m(112));
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

static void test_management_psk_account(void **state)
{
    (void)state;
    db_server_t m = srv(DB_SRV_MANAGEMENT, 4, "coaps://b", DB_SEC_PSK);
    bs_account_t a = {.srv = &m, .identity = (uint8_t *)"id", .identity_len = 2, .secret = (uint8_t *)"sec",
                      .secret_len = 3};
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    assert_int_equal(bs_plan_account(&a, 2, 1, &rs), 0);
    assert_memory_equal(find(&rs, 0, 2, 0)->bytes, "coaps://b", 9);
    assert_false(find(&rs, 0, 2, 1)->v.b);
    assert_int_equal(find(&rs, 0, 2, 2)->v.i, 0); /* PSK */
    assert_memory_equal(find(&rs, 0, 2, 3)->bytes, "id", 2);
    assert_int_equal(find(&rs, 0, 2, 4)->nbytes, 0);
    assert_memory_equal(find(&rs, 0, 2, 5)->bytes, "sec", 3);
    assert_int_equal(find(&rs, 0, 2, 10)->v.i, 4);
    assert_null(find(&rs, 0, 2, 11)); /* hold-off not set */
    assert_null(find(&rs, 0, 2, 9));  /* no SMS */
    assert_int_equal(find(&rs, 1, 1, 0)->v.i, 4);
    assert_int_equal(find(&rs, 1, 1, 1)->v.i, 60);
    assert_false(find(&rs, 1, 1, 6)->v.b);
    assert_memory_equal(find(&rs, 1, 1, 7)->bytes, "UQ", 2);
    lwm2m_records_clear(&rs);
    /* no Server instance when srv_iid < 0 */
    assert_int_equal(bs_plan_account(&a, 2, -1, &rs), 0);
    assert_null(find(&rs, 1, 1, 0));
    lwm2m_records_clear(&rs);
}

static void test_bootstrap_account(void **state)
{
    (void)state;
    db_server_t bs = srv(DB_SRV_BOOTSTRAP, 0, "coap://bs", DB_SEC_NOSEC);
    bs.client_hold_off_time = 5;
    bs.bootstrap_account_timeout = 0;
    bs_account_t a = {.srv = &bs};
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    assert_int_equal(bs_plan_account(&a, 1, 0, &rs), 0);
    assert_true(find(&rs, 0, 1, 1)->v.b);
    assert_int_equal(find(&rs, 0, 1, 2)->v.i, 3); /* NoSec */
    assert_null(find(&rs, 0, 1, 10));             /* no SSID on the BS account */
    assert_int_equal(find(&rs, 0, 1, 11)->v.i, 5);
    assert_int_equal(find(&rs, 0, 1, 12)->v.i, 0);
    assert_null(find(&rs, 1, 0, 0)); /* no Server instance for a BS, whatever srv_iid says */
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
    assert_int_equal(bs_plan_account(&a, 0, 0, &rs), 0);
    assert_string_equal((const char *)find(&rs, 1, 0, 7)->bytes, "TQ");
    lwm2m_records_clear(&rs);
}

static void test_pack(void **state)
{
    (void)state;
    db_server_t m1 = srv(DB_SRV_MANAGEMENT, 3, "coap://a", DB_SEC_NOSEC);
    db_server_t m2 = srv(DB_SRV_MANAGEMENT, 4, "coap://b", DB_SEC_NOSEC);
    bs_account_t a[2] = {{.srv = &m1}, {.srv = &m2}};
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    assert_int_equal(bs_plan_account(&a[0], 2, 0, &rs), 0);
    assert_int_equal(bs_plan_account(&a[1], 3, 1, &rs), 0);
    uint8_t *body = NULL;
    size_t len = 0;
    assert_int_equal(bs_plan_pack(&rs, LWM2M_CF_SENML_CBOR, &body, &len), 0);
    lwm2m_records_t back;
    lwm2m_records_init(&back);
    lwm2m_path_t root = lwm2m_path_make(0, 0, 0, 0, 0);
    assert_int_equal(lwm2m_decode(LWM2M_CF_SENML_CBOR, &root, body, len, NULL, &back), 0);
    assert_int_equal(back.n, rs.n);
    assert_memory_equal(find(&back, 0, 3, 0)->bytes, "coap://b", 8);
    free(body);
    lwm2m_records_clear(&back);
    assert_int_equal(bs_plan_pack(&rs, LWM2M_CF_SENML_JSON, &body, &len), 0);
    free(body);
    assert_int_equal(bs_plan_pack(&rs, LWM2M_CF_TLV, &body, &len), LWM2M_ERR_NOT_ACCEPTABLE);
    lwm2m_records_clear(&rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cf_is_lwm2m),
        cmocka_unit_test(test_management_psk_account),
        cmocka_unit_test(test_bootstrap_account),
        cmocka_unit_test(test_tcp_binding),
        cmocka_unit_test(test_pack),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
