/* Bootstrap session transcripts against a fake transport (STYLE.md §7):
 * request out, response in, expected next request. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "server/bootstrap/bs_session.h"
#include "server/lwm2m/codec.h"
#include "server/lwm2m/registry.h"
#include "server/tasks/task.h"

typedef struct {
    int method;
    char path[32];
    int cf, accept;
    uint8_t payload[2048];
    size_t len;
} sent_t;

static sent_t g_sent[32];
static int g_nsent, g_done, g_fail_send;

static int fake_send(void *ctx, bs_session_t *s, int method, const lwm2m_path_t *path, int cf, int accept,
                     const uint8_t *payload, size_t len)
{
    (void)ctx;
    (void)s;
    if (g_fail_send)
        return -1;
    sent_t *x = &g_sent[g_nsent++];
    x->method = method;
    if (path)
        lwm2m_path_format(path, x->path, sizeof x->path);
    else
        snprintf(x->path, sizeof x->path, "bs");
    x->cf = cf;
    x->accept = accept;
    x->len = len < sizeof x->payload ? len : sizeof x->payload;
    if (payload)
        memcpy(x->payload, payload, x->len);
    return 0;
}

static void fake_done(void *ctx, bs_session_t *s)
{
    (void)ctx;
    (void)s;
    g_done++;
}

static db_server_t g_mgmt = {.id = 1, .name = "m", .type = DB_SRV_MANAGEMENT, .ssid = 7, .uri = "coap://h:5683",
                             .client_hold_off_time = -1, .bootstrap_account_timeout = -1, .binding = "U",
                             .lifetime = 120, .security_mode = DB_SEC_NOSEC, .sms_security_mode = -1};

static int fake_server_records(void *ctx, bs_session_t *s, const char *ref, bool by_name, int sec_iid, int srv_iid,
                               lwm2m_records_t *out, bool *is_bs, char *err, size_t errlen)
{
    (void)ctx;
    (void)s;
    if (by_name || strcmp(ref, "1") != 0) {
        snprintf(err, errlen, "no LwM2M server with id '%s'", ref);
        return -1;
    }
    bs_account_t a = {.srv = &g_mgmt};
    *is_bs = false;
    return bs_plan_account(&a, (uint16_t)sec_iid, srv_iid, out);
}

static bs_session_io_t IO = {.send = fake_send, .server_records = fake_server_records, .done = fake_done};

static lwm2m_registry_t *g_reg;
static task_program_t *g_prog;

/* the bootstrap settings' task: what the built-in sequence of issue 2 was */
static const char SETTINGS_TASK[] = "<config>\n"
                                    "  <lwm2mBootstrapCleanse/>\n"
                                    "  <lwm2mBootstrapConfiguration serverId=\"1\"/>\n"
                                    "  <lwm2mBootstrap performBootstrapFinish=\"true\"/>\n"
                                    "</config>\n";

static int group_setup(void **state)
{
    (void)state;
    char err[256];
    g_reg = lwm2m_registry_new();
    assert_int_equal(lwm2m_registry_add_builtin(g_reg, err, sizeof err), 0);
    task_error_t e;
    if (task_parse(SETTINGS_TASK, strlen(SETTINGS_TASK), g_reg, &g_prog, &e) != 0)
        fail_msg("%s", e.msg);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    task_program_free(&g_prog);
    lwm2m_registry_free(&g_reg);
    return 0;
}

static bs_session_t *new_session(int pct)
{
    g_nsent = g_done = g_fail_send = 0;
    bs_session_t *s = bs_session_new(&IO, NULL, "dev-1", 42, pct, g_reg, 1000);
    assert_non_null(s);
    assert_int_equal(bs_session_add_task(s, g_prog, 0, "settings", NULL, NULL), 0);
    return s;
}

#define C(c, d) LWM2M_CODE(c, d)

static void respond(bs_session_t *s, int code, const char *payload)
{
    bs_session_on_response(s, code, payload ? LWM2M_CF_LINK : LWM2M_CF_NONE, (const uint8_t *)payload,
                           payload ? strlen(payload) : 0, 1010);
}

static void expect(int i, int method, const char *path)
{
    assert_true(i < g_nsent);
    assert_int_equal(g_sent[i].method, method);
    assert_string_equal(g_sent[i].path, path);
}

/* decodes a sent write and returns the value of /o/i/r as int or string */
static lwm2m_records_t decode_sent(int i)
{
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    lwm2m_path_t base;
    assert_int_equal(lwm2m_path_parse(g_sent[i].path, strlen(g_sent[i].path), &base), 0);
    assert_int_equal(lwm2m_decode(g_sent[i].cf, &base, g_sent[i].payload, g_sent[i].len, NULL, &rs), 0);
    return rs;
}

static void test_happy_path_1_0_tlv(void **state)
{
    (void)state;
    bs_session_t *s = new_session(LWM2M_CF_NONE);
    bs_session_start(s, 1000);
    expect(0, BS_GET, "/");
    assert_int_equal(g_sent[0].accept, LWM2M_CF_LINK);
    respond(s, C(2, 5), "lwm2m=\"1.0\",</0/0>,</0/1>;ssid=5,</1/0>;ssid=5,</3/0>");
    assert_int_equal(bs_session_view(s)->version, LWM2M_V1_0);
    assert_int_equal(bs_session_view(s)->bs_iid, 0);
    assert_int_equal(bs_session_view(s)->cf, LWM2M_CF_TLV);
    expect(1, BS_DELETE, "/0");
    respond(s, C(2, 2), NULL);
    expect(2, BS_DELETE, "/1");
    respond(s, C(4, 4), NULL); /* nothing to delete: fine */
    expect(3, BS_PUT, "/0/1");
    assert_int_equal(g_sent[3].cf, LWM2M_CF_TLV);
    lwm2m_records_t rs = decode_sent(3);
    lwm2m_path_t p = lwm2m_path_make(3, 0, 1, 0, 0);
    const lwm2m_record_t *r = lwm2m_records_find(&rs, &p);
    assert_non_null(r);
    assert_memory_equal(r->bytes, "coap://h:5683", 13);
    lwm2m_records_clear(&rs);
    respond(s, C(2, 4), NULL);
    expect(4, BS_PUT, "/1/0");
    respond(s, C(2, 4), NULL);
    expect(5, BS_POST, "bs");
    assert_int_equal(bs_session_state(s), BS_RUN);
    assert_int_equal(g_done, 0);
    respond(s, C(2, 4), NULL);
    assert_int_equal(bs_session_state(s), BS_DONE);
    assert_true(bs_session_succeeded(s));
    assert_int_equal(g_done, 1);
    /* later events change nothing */
    respond(s, C(4, 0), NULL);
    bs_session_on_error(s, "late", 2000);
    assert_int_equal(g_done, 1);
    assert_true(bs_session_succeeded(s));
    char *steps = bs_session_steps_json(s);
    json_t *j = json_loads(steps, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_array_size(j), 6);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 5), "op")), "finish");
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 5), "code")), "2.04");
    json_decref(j);
    free(steps);
    bs_session_free(&s);
    assert_null(s);
}

static void test_pct_senml_json_and_bs_at_3(void **state)
{
    (void)state;
    bs_session_t *s = new_session(LWM2M_CF_SENML_JSON);
    bs_session_start(s, 1000);
    respond(s, C(2, 5), "</>;lwm2m=1.1,</0/3>;uri=\"coap://bs\",</0/0>;ssid=1;uri=\"coap://x\",</3/0>");
    assert_int_equal(bs_session_view(s)->bs_iid, 3);
    assert_int_equal(bs_session_view(s)->version, LWM2M_V1_1);
    respond(s, C(2, 2), NULL);
    respond(s, C(2, 2), NULL);
    expect(3, BS_PUT, "/0/0"); /* lowest id that is not the BS account */
    assert_int_equal(g_sent[3].cf, LWM2M_CF_SENML_JSON);
    bs_session_free(&s);
}

static void test_discover_refused_uses_fixed_ids(void **state)
{
    (void)state;
    bs_session_t *s = new_session(LWM2M_CF_SENML_CBOR);
    bs_session_start(s, 1000);
    respond(s, C(4, 5), NULL);
    assert_int_equal(bs_session_view(s)->bs_iid, -1);
    expect(1, BS_DELETE, "/0");
    respond(s, C(2, 2), NULL);
    respond(s, C(2, 2), NULL);
    expect(3, BS_PUT, "/0/1");
    assert_int_equal(g_sent[3].cf, LWM2M_CF_SENML_CBOR);
    bs_session_free(&s);
}

static void test_write_refused_fails_sticky(void **state)
{
    (void)state;
    bs_session_t *s = new_session(LWM2M_CF_NONE);
    bs_session_start(s, 1000);
    respond(s, C(2, 5), "</0/0>,</3/0>");
    respond(s, C(2, 2), NULL);
    respond(s, C(2, 2), NULL);
    respond(s, C(4, 0), NULL); /* write /0/1 refused */
    assert_int_equal(bs_session_state(s), BS_FAILED);
    assert_non_null(strstr(bs_session_reason(s), "write /0/1 answered 4.00"));
    assert_non_null(strstr(bs_session_reason(s), "task 'settings'"));
    assert_int_equal(g_done, 1);
    int n = g_nsent;
    respond(s, C(2, 4), NULL);
    assert_int_equal(g_nsent, n); /* nothing more is sent */
    assert_int_equal(g_done, 1);
    bs_session_free(&s);
}

static void test_finish_406(void **state)
{
    (void)state;
    bs_session_t *s = new_session(LWM2M_CF_NONE);
    bs_session_start(s, 1000);
    respond(s, C(2, 5), "</0/0>");
    for (int i = 0; i < 4; i++)
        respond(s, C(2, 4), NULL);
    assert_int_equal(bs_session_state(s), BS_RUN);
    expect(5, BS_POST, "bs");
    respond(s, C(4, 6), NULL);
    assert_int_equal(bs_session_state(s), BS_FAILED);
    assert_non_null(strstr(bs_session_reason(s), "4.06"));
    bs_session_free(&s);
}

/* The step record is JSON whatever a client sent or an error said: quotes,
 * control characters and invalid UTF-8 cannot break it. */
static void test_step_record_escapes(void **state)
{
    (void)state;
    bs_session_t *s = new_session(LWM2M_CF_NONE);
    bs_session_note_request(s, "/bs\"x\n\\", C(2, 4));
    bs_session_note_request(s, "/bs\xff\xfe", C(2, 4));
    bs_session_start(s, 1000);
    respond(s, C(2, 5), "</0/0>");
    bs_session_on_error(s, "said \"no\"\tthen\x01 left", 5000);
    char *steps = bs_session_steps_json(s);
    json_error_t e;
    json_t *j = json_loads(steps, 0, &e);
    if (!j)
        fail_msg("not JSON (%s): %s", e.text, steps);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "path")), "/bs\"x\n\\");
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "code")), "2.04");
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 1), "path")), "?");
    json_t *last = json_array_get(j, json_array_size(j) - 1);
    assert_non_null(strstr(json_string_value(json_object_get(last, "detail")), "said \"no\"\tthen\x01 left"));
    assert_true(json_is_integer(json_object_get(last, "ms")));
    json_decref(j);
    free(steps);
    bs_session_free(&s);
}

static void test_timeout_and_cancel(void **state)
{
    (void)state;
    bs_session_t *s = new_session(LWM2M_CF_NONE);
    bs_session_start(s, 1000);
    respond(s, C(2, 5), "</0/0>");
    bs_session_on_error(s, "no answer", 5000);
    assert_int_equal(bs_session_state(s), BS_FAILED);
    assert_non_null(strstr(bs_session_reason(s), "delete: no answer"));
    char *steps = bs_session_steps_json(s);
    assert_non_null(strstr(steps, "no answer"));
    free(steps);
    bs_session_free(&s);

    s = new_session(LWM2M_CF_NONE);
    bs_session_start(s, 1000);
    bs_session_cancel(s, "restarted", 1001);
    assert_int_equal(bs_session_state(s), BS_FAILED);
    assert_string_equal(bs_session_reason(s), "restarted");
    assert_int_equal(g_done, 1);
    bs_session_free(&s);
}

static void test_send_failure(void **state)
{
    (void)state;
    bs_session_t *s = new_session(LWM2M_CF_NONE);
    g_fail_send = 1;
    bs_session_start(s, 1000);
    assert_int_equal(bs_session_state(s), BS_FAILED);
    assert_int_equal(g_done, 1);
    bs_session_free(&s);
}

static void test_garbage_discover_falls_back(void **state)
{
    (void)state;
    bs_session_t *s = new_session(LWM2M_CF_NONE);
    bs_session_start(s, 1000);
    respond(s, C(2, 5), "<<<garbage");
    assert_int_equal(bs_session_state(s), BS_RUN);
    assert_int_equal(bs_session_view(s)->bs_iid, -1);
    bs_session_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_happy_path_1_0_tlv),
        cmocka_unit_test(test_pct_senml_json_and_bs_at_3),
        cmocka_unit_test(test_discover_refused_uses_fixed_ids),
        cmocka_unit_test(test_write_refused_fails_sticky),
        cmocka_unit_test(test_finish_406),
        cmocka_unit_test(test_timeout_and_cancel),
        cmocka_unit_test(test_step_record_escapes),
        cmocka_unit_test(test_send_failure),
        cmocka_unit_test(test_garbage_discover_falls_back),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
