/* The task runner against a fake host: the three seed recipes of
 * seeds/configuring-a-bootstrap-server.md, run as transcripts (operation out,
 * answer in), and the failure paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "server/lwm2m/codec.h"
#include "server/lwm2m/registry.h"
#include "server/tasks/runner.h"
#include "server/tasks/task.h"

typedef struct {
    tr_op_kind_t kind;
    char path[32];
    int cf;
    uint8_t payload[1024];
    size_t len;
    char url[256], method[16];
} op_t;

static op_t g_ops[64];
static int g_nops;
static char g_log[8192];
static json_t *g_sv;
static lwm2m_registry_t *g_reg;

static int h_start(void *h, task_runner_t *r, const tr_op_t *op)
{
    (void)h;
    (void)r;
    op_t *o = &g_ops[g_nops++];
    memset(o, 0, sizeof *o);
    o->kind = op->kind;
    if (op->kind == TR_OP_FINISH)
        snprintf(o->path, sizeof o->path, "bs");
    else
        lwm2m_path_format(&op->path, o->path, sizeof o->path);
    o->cf = op->cf;
    o->len = op->len < sizeof o->payload ? op->len : sizeof o->payload;
    if (op->payload)
        memcpy(o->payload, op->payload, o->len);
    if (op->url)
        snprintf(o->url, sizeof o->url, "%s", op->url);
    if (op->method)
        snprintf(o->method, sizeof o->method, "%s", op->method);
    return 0;
}

static int h_lookup(void *h, const char *name, expr_value_t *out)
{
    (void)h;
    if (!strcmp(name, "device.id")) {
        out->type = EXPR_INT;
        out->i = 17;
        return 1;
    }
    if (!strcmp(name, "device.endpoint"))
        return expr_value_set_string(out, "dev-17", 6) == 0;
    if (!strncmp(name, "sv.", 3)) {
        json_t *v = json_object_get(g_sv, name + 3);
        return v ? expr_value_set_string(out, json_string_value(v), json_string_length(v)) == 0 : 0;
    }
    return 0;
}

/* Servers 4 and 8 exist: NoSec management servers with SSID = id. */
static int h_server_records(void *h, const char *ref, bool by_name, int sec_iid, int srv_iid, lwm2m_records_t *out,
                            bool *is_bs, char *err, size_t errlen)
{
    (void)h;
    long id = by_name ? 0 : strtol(ref, NULL, 10);
    if (id != 4 && id != 8) {
        snprintf(err, errlen, "no LwM2M server with id '%s'", ref);
        return -1;
    }
    *is_bs = false;
    char uri[64];
    snprintf(uri, sizeof uri, "coap://server-%ld:5683", id);
    lwm2m_path_t p = lwm2m_path_make(3, 0, (unsigned)sec_iid, 0, 0);
    lwm2m_records_add_string(out, &p, uri);
    p = lwm2m_path_make(3, 0, (unsigned)sec_iid, 10, 0);
    lwm2m_records_add_int(out, &p, id);
    p = lwm2m_path_make(3, 1, (unsigned)srv_iid, 0, 0);
    lwm2m_records_add_int(out, &p, id);
    return 0;
}

static void h_log(void *h, task_runner_t *r, const char *level, const char *step, const char *sent,
                  const char *received, int code, const char *message)
{
    (void)h;
    (void)r;
    (void)code;
    size_t n = strlen(g_log);
    snprintf(g_log + n, sizeof g_log - n, "%s|%s|%s|%s|%s\n", level, step ? step : "", sent ? sent : "",
             received ? received : "", message ? message : "");
}

static const task_host_t HOST = {h_start, h_lookup, h_server_records, NULL, NULL, h_log};

static task_program_t *parse(const char *xml)
{
    task_program_t *p = NULL;
    task_error_t e;
    if (task_parse(xml, strlen(xml), g_reg, &p, &e) != 0)
        fail_msg("parse: %s", e.msg);
    return p;
}

static task_runner_t *start(task_program_t *p, task_bs_view_t *v, int pct)
{
    g_nops = 0;
    g_log[0] = 0;
    task_bs_view_init(v, pct);
    task_runner_t *r = task_runner_new(p, g_reg, &HOST, NULL, TR_SESSION_BOOTSTRAP, v, NULL);
    assert_non_null(r);
    task_runner_run(r);
    return r;
}

#define C(c, d) LWM2M_CODE(c, d)

static void answer(task_runner_t *r, int code, const char *payload)
{
    task_runner_resume(r, code, payload ? LWM2M_CF_LINK : LWM2M_CF_NONE, (const uint8_t *)payload,
                       payload ? strlen(payload) : 0, NULL);
}

static void expect_op(int i, tr_op_kind_t kind, const char *path)
{
    if (i >= g_nops)
        fail_msg("op %d not sent (only %d)", i, g_nops);
    assert_int_equal(g_ops[i].kind, kind);
    assert_string_equal(g_ops[i].path, path);
}

static lwm2m_records_t decoded(int i)
{
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    lwm2m_path_t base;
    assert_int_equal(lwm2m_path_parse(g_ops[i].path, strlen(g_ops[i].path), &base), 0);
    assert_int_equal(lwm2m_decode(g_ops[i].cf, &base, g_ops[i].payload, g_ops[i].len, g_reg, &rs), 0);
    return rs;
}

/* Recipe "communicating with an external service" (a): rest, cleanse,
 * configuration of the server the service names, finish. */
static void test_recipe_rest(void **state)
{
    (void)state;
    task_program_t *p = parse("<config>\n"
                              " <rest url=\"http://external-service.example/serverFor/${device.id}\">\n"
                              "   <out from=\"serverId\" to=\"serverId\" />\n"
                              " </rest>\n"
                              " <lwm2mBootstrapCleanse />\n"
                              " <lwm2mBootstrapConfiguration serverId=\"${#serverId}\" />\n"
                              " <lwm2mBootstrap performBootstrapFinish=\"true\" />           \n"
                              "</config>\n");
    task_bs_view_t v;
    task_runner_t *r = start(p, &v, LWM2M_CF_SENML_CBOR);
    expect_op(0, TR_OP_HTTP, "/");
    assert_string_equal(g_ops[0].url, "http://external-service.example/serverFor/17");
    assert_string_equal(g_ops[0].method, "GET");
    const char *body = "{\"serverId\": 4}";
    task_runner_resume(r, 200, LWM2M_CF_NONE, (const uint8_t *)body, strlen(body), NULL);
    expect_op(1, TR_OP_DISCOVER, "/");
    answer(r, C(2, 5), "</>;lwm2m=1.1,</0/0>,</0/1>;ssid=3,</1/0>;ssid=3,</3/0>");
    expect_op(2, TR_OP_DELETE, "/0");
    answer(r, C(2, 2), NULL);
    expect_op(3, TR_OP_DELETE, "/1");
    answer(r, C(2, 2), NULL);
    expect_op(4, TR_OP_WRITE, "/0/1");
    assert_int_equal(g_ops[4].cf, LWM2M_CF_SENML_CBOR);
    lwm2m_records_t rs = decoded(4);
    lwm2m_path_t uri = lwm2m_path_make(3, 0, 1, 0, 0);
    assert_memory_equal(lwm2m_records_find(&rs, &uri)->bytes, "coap://server-4:5683", 20);
    lwm2m_records_clear(&rs);
    answer(r, C(2, 4), NULL);
    expect_op(5, TR_OP_WRITE, "/1/0");
    answer(r, C(2, 4), NULL);
    expect_op(6, TR_OP_FINISH, "bs");
    answer(r, C(2, 4), NULL);
    assert_int_equal(task_runner_state(r), TR_DONE);
    assert_int_equal(task_runner_status(r), TR_SUCCESS);
    assert_true(v.finished);
    char *vars = task_runner_vars_json(r);
    assert_string_equal(vars, "{\"serverId\":\"4\"}");
    free(vars);
    task_runner_free(&r);

    /* service down / missing field: ERROR with the reason, nothing sent to the device */
    r = start(p, &v, LWM2M_CF_NONE);
    task_runner_resume(r, 0, LWM2M_CF_NONE, NULL, 0, "Couldn't connect to server");
    assert_int_equal(task_runner_status(r), TR_ERROR);
    assert_non_null(strstr(task_runner_summary(r), "Couldn't connect"));
    assert_int_equal(g_nops, 1);
    task_runner_free(&r);
    r = start(p, &v, LWM2M_CF_NONE);
    task_runner_resume(r, 200, LWM2M_CF_NONE, (const uint8_t *)"{}", 2, NULL);
    assert_int_equal(task_runner_status(r), TR_ERROR);
    assert_non_null(strstr(task_runner_summary(r), "no field 'serverId'"));
    task_runner_free(&r);
    r = start(p, &v, LWM2M_CF_NONE);
    task_runner_resume(r, 503, LWM2M_CF_NONE, (const uint8_t *)"down", 4, NULL);
    assert_int_equal(task_runner_status(r), TR_ERROR);
    assert_non_null(strstr(task_runner_summary(r), "503"));
    task_runner_free(&r);
    /* a server id that names no server */
    r = start(p, &v, LWM2M_CF_NONE);
    task_runner_resume(r, 200, LWM2M_CF_NONE, (const uint8_t *)"{\"serverId\": 99}", 16, NULL);
    answer(r, C(2, 5), "</0/0>");
    answer(r, C(2, 2), NULL);
    answer(r, C(2, 2), NULL);
    assert_int_equal(task_runner_status(r), TR_ERROR);
    assert_non_null(strstr(task_runner_summary(r), "no LwM2M server with id '99'"));
    task_runner_free(&r);
    task_program_free(&p);
}

/* Recipe "low level mechanisms" (b): the 11 resources, from setting values. */
static void test_recipe_low_level(void **state)
{
    (void)state;
    task_program_t *p = parse(
        "<config>\n"
        "  <store target=\"id\" value=\"${sv.managementId}\" />\n"
        " <store target=\"psk\" value=\"${sv.password}\" />\n"
        " <lwm2mBootstrap performBootstrapFinish=\"true\">\n"
        "   <write key=\"LwM2M Security.2.LwM2M Server URI\" value=\"coaps://uri.example:5684\" type=\"string\" />\n"
        "   <write key=\"LwM2M Security.2.Bootstrap-Server\" value=\"false\" type=\"boolean\" />\n"
        "   <write key=\"LwM2M Security.2.Security Mode\" value=\"0\" type=\"integer\" />\n"
        "   <write key=\"LwM2M Security.2.Short Server ID\" value=\"2\" type=\"integer\" />\n"
        "   <write key=\"LwM2M Security.2.Public Key or Identity\" type=\"opaque\" value=\"${#id.encodeHex}\" />\n"
        "   <write key=\"LwM2M Security.2.Secret Key\" type=\"opaque\" value=\"${#psk.encodeHex}\" />\n"
        "   <write key=\"LwM2M Security.2.Server Public Key\" value=\"${''}\" type=\"opaque\" />\n"
        "   <write key=\"LwM2M Server.0.Short Server ID\" value=\"2\" type=\"integer\" />\n"
        "   <write key=\"LwM2M Server.0.Lifetime\" value=\"60\" type=\"integer\" />\n"
        "   <write key=\"LwM2M Server.0.Notification Storing When Disabled or Offline\" value=\"false\" "
        "type=\"boolean\" />\n"
        "   <write key=\"LwM2M Server.0.Binding\" value=\"U\" type=\"string\" />\n"
        " </lwm2mBootstrap>\n"
        "</config>\n");
    g_sv = json_pack("{s:s,s:s}", "managementId", "dev-identity", "password", "s3cret");
    task_bs_view_t v;
    task_runner_t *r = start(p, &v, LWM2M_CF_TLV);
    expect_op(0, TR_OP_DISCOVER, "/");
    answer(r, C(2, 5), "</0/0>,</3/0>");
    expect_op(1, TR_OP_WRITE, "/0/2");
    lwm2m_records_t rs = decoded(1);
    assert_int_equal(rs.n, 7);
    lwm2m_path_t id = lwm2m_path_make(3, 0, 2, 3, 0), key = lwm2m_path_make(3, 0, 2, 5, 0),
                 spk = lwm2m_path_make(3, 0, 2, 4, 0), mode = lwm2m_path_make(3, 0, 2, 2, 0);
    assert_memory_equal(lwm2m_records_find(&rs, &id)->bytes, "dev-identity", 12);
    assert_memory_equal(lwm2m_records_find(&rs, &key)->bytes, "s3cret", 6);
    assert_int_equal(lwm2m_records_find(&rs, &spk)->nbytes, 0);
    assert_int_equal(lwm2m_records_find(&rs, &mode)->v.i, 0);
    lwm2m_records_clear(&rs);
    answer(r, C(2, 4), NULL);
    expect_op(2, TR_OP_WRITE, "/1/0");
    rs = decoded(2);
    assert_int_equal(rs.n, 4);
    lwm2m_records_clear(&rs);
    answer(r, C(2, 4), NULL);
    expect_op(3, TR_OP_FINISH, "bs");
    answer(r, C(2, 4), NULL);
    assert_int_equal(task_runner_status(r), TR_SUCCESS);
    task_runner_free(&r);

    /* 4.06 on Finish: ERROR with the reason */
    r = start(p, &v, LWM2M_CF_TLV);
    answer(r, C(2, 5), "</0/0>");
    answer(r, C(2, 4), NULL);
    answer(r, C(2, 4), NULL);
    answer(r, C(4, 6), NULL);
    assert_int_equal(task_runner_status(r), TR_ERROR);
    assert_non_null(strstr(task_runner_summary(r), "4.06"));
    task_runner_free(&r);
    /* a setting value missing: ERROR naming it, nothing written */
    json_object_del(g_sv, "password");
    r = start(p, &v, LWM2M_CF_TLV);
    assert_int_equal(task_runner_status(r), TR_ERROR);
    assert_non_null(strstr(task_runner_summary(r), "sv.password"));
    assert_int_equal(g_nops, 0);
    task_runner_free(&r);
    json_decref(g_sv);
    g_sv = NULL;
    task_program_free(&p);
}

/* Recipe "additional logic" (c): the set reaches /7/0/8 during bootstrap,
 * the execute is deferred and the task stays IN_PROGRESS. */
static void test_recipe_additional_logic(void **state)
{
    (void)state;
    task_program_t *p = parse("<config>\n"
                              "  <lwm2mBootstrapCleanse />\n"
                              "  <lwm2mBootstrapConfiguration serverId=\"8\" />\n"
                              "  <set key=\"Device.Connectivity Statistics.0.Collection Period\" value=\"60\" />\n"
                              "  <execute key=\"Device.Connectivity Statistics.0.Start\" />\n"
                              "  <lwm2mBootstrap performBootstrapFinish=\"true\" />\n"
                              "</config>\n");
    task_bs_view_t v;
    task_runner_t *r = start(p, &v, LWM2M_CF_NONE);
    answer(r, C(2, 5), "lwm2m=\"1.0\",</0/0>,</0/1>;ssid=1,</1/0>;ssid=1,</3/0>,</7/0>");
    expect_op(1, TR_OP_DELETE, "/0");
    answer(r, C(2, 2), NULL);
    expect_op(2, TR_OP_DELETE, "/1");
    answer(r, C(2, 2), NULL);
    expect_op(3, TR_OP_WRITE, "/0/1");
    assert_int_equal(g_ops[3].cf, LWM2M_CF_TLV); /* 1.0 client, no pct */
    answer(r, C(2, 4), NULL);
    expect_op(4, TR_OP_WRITE, "/1/0");
    answer(r, C(2, 4), NULL);
    expect_op(5, TR_OP_WRITE, "/7/0/8");
    lwm2m_records_t rs = decoded(5);
    assert_int_equal(rs.n, 1);
    assert_int_equal(rs.recs[0].v.i, 60);
    lwm2m_records_clear(&rs);
    answer(r, C(2, 4), NULL);
    expect_op(6, TR_OP_FINISH, "bs");
    answer(r, C(2, 4), NULL);
    assert_int_equal(task_runner_state(r), TR_DONE);
    assert_int_equal(task_runner_status(r), TR_IN_PROGRESS);
    char *vars = task_runner_vars_json(r);
    json_t *j = json_loads(vars, 0, NULL);
    json_t *d = json_array_get(json_object_get(j, "__deferred"), 0);
    assert_string_equal(json_string_value(json_object_get(d, "op")), "execute");
    assert_string_equal(json_string_value(json_object_get(d, "path")), "/7/0/6");
    json_decref(j);
    free(vars);
    assert_non_null(strstr(g_log, "deferred"));
    task_runner_free(&r);
    task_program_free(&p);
}

/* Flow control: if/else, store, log, finish, a management op refused on a
 * bootstrap session, a device that stops answering. */
static void test_flow(void **state)
{
    (void)state;
    task_program_t *p = parse("<config>\n"
                              "  <store target=\"n\" value=\"${1 + 2}\"/>\n"
                              "  <if expr=\"${#n == '3'}\">\n"
                              "    <log message=\"three ${#n}\"/>\n"
                              "    <finish status=\"WARNING\" message=\"stopped at ${#n}\"/>\n"
                              "  <else/>\n"
                              "    <log message=\"not three\"/>\n"
                              "  </if>\n"
                              "  <log message=\"never\"/>\n"
                              "</config>\n");
    task_bs_view_t v;
    task_runner_t *r = start(p, &v, LWM2M_CF_NONE);
    assert_int_equal(task_runner_status(r), TR_WARNING);
    assert_string_equal(task_runner_summary(r), "stopped at 3");
    assert_non_null(strstr(g_log, "three 3"));
    assert_null(strstr(g_log, "never"));
    assert_null(strstr(g_log, "not three"));
    task_runner_free(&r);
    task_program_free(&p);

    p = parse("<config><delete key=\"/5/0\"/></config>");
    r = start(p, &v, LWM2M_CF_NONE);
    assert_int_equal(task_runner_status(r), TR_ERROR);
    assert_non_null(strstr(task_runner_summary(r), "management session"));
    task_runner_free(&r);
    task_program_free(&p);

    /* an evaluated header value cannot smuggle in another header */
    p = parse("<config><store target=\"v\" value=\"a${'\\n'}X-Evil: 1\"/>"
              "<rest url=\"http://127.0.0.1:1/x\"><header name=\"X-Id\" value=\"${#v}\"/></rest></config>");
    r = start(p, &v, LWM2M_CF_NONE);
    assert_int_equal(task_runner_status(r), TR_ERROR);
    assert_non_null(strstr(task_runner_summary(r), "line break"));
    assert_int_equal(g_nops, 0);
    task_runner_free(&r);
    task_program_free(&p);

    p = parse("<config><lwm2mBootstrapCleanse/></config>");
    r = start(p, &v, LWM2M_CF_NONE);
    answer(r, C(2, 5), "</0/0>");
    task_runner_abort(r, "timeout: no answer");
    assert_int_equal(task_runner_status(r), TR_ERROR);
    assert_string_equal(task_runner_summary(r), "timeout: no answer");
    answer(r, C(2, 2), NULL); /* late answers are ignored */
    assert_int_equal(task_runner_status(r), TR_ERROR);
    task_runner_free(&r);
    task_program_free(&p);
}

/* The write format for every kind of client (the table the bootstrap plan
 * had when the sequence was built in). */
static void test_write_format(void **state)
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
        assert_int_equal(tr_write_format(t[i].pct, t[i].version), t[i].want);
}

static int setup(void **state)
{
    (void)state;
    char err[256];
    g_reg = lwm2m_registry_new();
    return lwm2m_registry_add_builtin(g_reg, err, sizeof err);
}

static int teardown(void **state)
{
    (void)state;
    lwm2m_registry_free(&g_reg);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recipe_rest),
        cmocka_unit_test(test_recipe_low_level),
        cmocka_unit_test(test_recipe_additional_logic),
        cmocka_unit_test(test_flow),
        cmocka_unit_test(test_write_format),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
