/* The task runner against a fake host: the three seed recipes of
 * seeds/configuring-a-bootstrap-server.md, run as transcripts (operation out,
 * answer in), and the failure paths; the operations of management sessions
 * (a table: step -> tr_op_t); and resuming runs across sessions (the
 * additional-logic recipe over a bootstrap then a management session,
 * <wait> and its timeout, suspended steps, never repeating a step). */
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
    char query[256];
    bool has_query, partial;
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
    o->has_query = op->query != NULL;
    if (op->query)
        snprintf(o->query, sizeof o->query, "%s", op->query);
    o->partial = op->partial;
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

/* ================================================= management sessions */

#define T0 1700000000000LL

/* Starts a run in a session of `kind` with the view as the caller set it. */
static task_runner_t *start_in(task_program_t *p, tr_session_kind_t kind, task_bs_view_t *v, const char *vars,
                               int64_t now)
{
    g_nops = 0;
    g_log[0] = 0;
    task_runner_t *r = task_runner_new(p, g_reg, &HOST, NULL, kind, v, vars);
    assert_non_null(r);
    task_runner_set_now(r, now);
    task_runner_run(r);
    return r;
}

static task_runner_t *mgmt(task_program_t *p, task_bs_view_t *v, const char *vars, int64_t now)
{
    task_view_init_management(v, LWM2M_CF_SENML_CBOR, LWM2M_V1_1);
    return start_in(p, TR_SESSION_MANAGEMENT, v, vars, now);
}

static task_runner_t *boot(task_program_t *p, task_bs_view_t *v, const char *vars, int64_t now)
{
    task_bs_view_init(v, LWM2M_CF_NONE);
    return start_in(p, TR_SESSION_BOOTSTRAP, v, vars, now);
}

/* The text of a record, as a task variable holds it. */
static void rec_text(const lwm2m_record_t *x, char *out, size_t cap)
{
    switch (x->type) {
    case LWM2M_T_STRING:
    case LWM2M_T_CORELNK: snprintf(out, cap, "%.*s", (int)x->nbytes, (const char *)x->bytes); break;
    case LWM2M_T_UNSIGNED: snprintf(out, cap, "%llu", (unsigned long long)x->v.u); break;
    case LWM2M_T_FLOAT: snprintf(out, cap, "%g", x->v.f); break;
    case LWM2M_T_BOOLEAN: snprintf(out, cap, "%s", x->v.b ? "true" : "false"); break;
    case LWM2M_T_OPAQUE:
        out[0] = 0;
        for (size_t i = 0; i < x->nbytes && 2 * i + 2 < cap; i++)
            snprintf(out + 2 * i, 3, "%02x", x->bytes[i]);
        break;
    default: snprintf(out, cap, "%lld", (long long)x->v.i); break;
    }
}

static char *vars_of(task_runner_t *r)
{
    char *v = task_runner_vars_json(r);
    assert_non_null(v);
    return v;
}

/* One variable of a run (NULL if absent), as text, into buf. */
static const char *var_of(task_runner_t *r, const char *name, char *buf, size_t cap)
{
    char *v = vars_of(r);
    json_t *j = json_loads(v, 0, NULL);
    free(v);
    json_t *x = json_object_get(j, name);
    const char *res = NULL;
    if (json_is_string(x)) {
        snprintf(buf, cap, "%s", json_string_value(x));
        res = buf;
    } else if (json_is_integer(x)) {
        snprintf(buf, cap, "%lld", (long long)json_integer_value(x));
        res = buf;
    } else if (x) {
        char *t = json_dumps(x, JSON_COMPACT | JSON_ENCODE_ANY);
        snprintf(buf, cap, "%s", t);
        free(t);
        res = buf;
    }
    json_decref(j);
    return res;
}

static bool has_reserved_vars(task_runner_t *r)
{
    char *v = vars_of(r);
    bool has = strstr(v, "\"__") != NULL;
    free(v);
    return has;
}

/* Each management step -> the one operation the host is asked to send. */
static const struct {
    const char *name, *steps;
    tr_op_kind_t kind;
    const char *path;
    int cf;
    const char *query;     /* NULL: the op has none */
    int nrecs;             /* records in the payload, decoded at `path` (-1: raw check) */
    const char *rec_path, *rec_value;
    const char *raw;       /* nrecs == -1: the payload bytes */
    size_t rawlen;
    int answer;
} k_mgmt[] = {
    {"set: string", "<set key=\"/3/0/14\" value=\"+02\"/>", TR_OP_WRITE, "/3/0/14", LWM2M_CF_SENML_CBOR, NULL, 1,
     "/3/0/14", "+02", NULL, 0, LWM2M_CODE(2, 4)},
    {"set: by name, integer from the definition", "<set key=\"Device.Connectivity Statistics.0.Collection Period\" "
     "value=\"60\"/>", TR_OP_WRITE, "/7/0/8", LWM2M_CF_SENML_CBOR, NULL, 1, "/7/0/8", "60", NULL, 0, LWM2M_CODE(2, 4)},
    {"set: explicit type, unknown object", "<set key=\"/40000/0/1\" value=\"7\" type=\"integer\"/>", TR_OP_WRITE,
     "/40000/0/1", LWM2M_CF_SENML_CBOR, NULL, 1, "/40000/0/1", "7", NULL, 0, LWM2M_CODE(2, 4)},
    {"set: templated key and value", "<store target=\"r\" value=\"15\"/><set key=\"/3/0/${#r}\" value=\"${'Europe/' + "
     "'Paris'}\"/>", TR_OP_WRITE, "/3/0/15", LWM2M_CF_SENML_CBOR, NULL, 1, "/3/0/15", "Europe/Paris", NULL, 0,
     LWM2M_CODE(2, 4)},
    {"execute: no arguments", "<execute key=\"/3/0/4\"/>", TR_OP_EXECUTE, "/3/0/4", LWM2M_CF_NONE, NULL, -1, NULL,
     NULL, "", 0, LWM2M_CODE(2, 4)},
    {"execute: arguments as text/plain", "<execute key=\"Device.0.Reboot\" arguments=\"0='v',1\"/>", TR_OP_EXECUTE,
     "/3/0/4", LWM2M_CF_TEXT, NULL, -1, NULL, NULL, "0='v',1", 7, LWM2M_CODE(2, 4)},
    {"get", "<get key=\"/3/0/9\" output=\"b\"/>", TR_OP_READ, "/3/0/9", LWM2M_CF_NONE, NULL, -1, NULL, NULL, "", 0,
     LWM2M_CODE(2, 5)},
    {"delete: instance", "<delete key=\"/5/0\"/>", TR_OP_DELETE, "/5/0", LWM2M_CF_NONE, NULL, -1, NULL, NULL, "", 0,
     LWM2M_CODE(2, 2)},
    {"delete: object", "<delete key=\"Firmware Update\"/>", TR_OP_DELETE, "/5", LWM2M_CF_NONE, NULL, -1, NULL, NULL,
     "", 0, LWM2M_CODE(2, 2)},
    {"delete: already gone", "<delete key=\"/5/0\"/>", TR_OP_DELETE, "/5/0", LWM2M_CF_NONE, NULL, -1, NULL, NULL, "", 0,
     LWM2M_CODE(4, 4)},
    {"create: write children", "<create key=\"/1/7\"><write key=\"/1/7/0\" value=\"5\"/><write "
     "key=\"LwM2M Server.7.Lifetime\" value=\"300\"/></create>", TR_OP_CREATE, "/1", LWM2M_CF_SENML_CBOR, NULL, 2,
     "/1/7/1", "300", NULL, 0, LWM2M_CODE(2, 1)},
    {"create: object key, the writes name the instance", "<create key=\"/1\"><write key=\"/1/3/0\" value=\"9\"/>"
     "</create>", TR_OP_CREATE, "/1", LWM2M_CF_SENML_CBOR, NULL, 1, "/1/3/0", "9", NULL, 0, LWM2M_CODE(2, 1)},
    {"create: one value", "<create key=\"/1/7/1\" value=\"300\"/>", TR_OP_CREATE, "/1", LWM2M_CF_SENML_CBOR, NULL, 1,
     "/1/7/1", "300", NULL, 0, LWM2M_CODE(2, 1)},
    {"create: empty, the device picks the id", "<create key=\"/5\"/>", TR_OP_CREATE, "/5", LWM2M_CF_NONE, NULL, -1,
     NULL, NULL, "", 0, LWM2M_CODE(2, 1)},
    {"create: empty instance 3 (TLV)", "<create key=\"/5/3\"/>", TR_OP_CREATE, "/5", LWM2M_CF_TLV, NULL, -1, NULL,
     NULL, "\x00\x03", 2, LWM2M_CODE(2, 1)},
    {"create: empty instance 300 (TLV, 16-bit id)", "<create key=\"/5/300\"/>", TR_OP_CREATE, "/5", LWM2M_CF_TLV, NULL,
     -1, NULL, NULL, "\x20\x01\x2c", 3, LWM2M_CODE(2, 1)},
    {"observe: no attributes", "<observe key=\"/3/0/9\"/>", TR_OP_OBSERVE, "/3/0/9", LWM2M_CF_NONE, NULL, -1, NULL,
     NULL, "", 0, LWM2M_CODE(2, 5)},
    {"observe: instance", "<observe key=\"Device.0\"/>", TR_OP_OBSERVE, "/3/0", LWM2M_CF_NONE, NULL, -1, NULL, NULL,
     "", 0, LWM2M_CODE(2, 5)},
    {"observe: attributes in order", "<observe key=\"/3/0/9\" st=\"2\" lt=\"-1\" gt=\"50.5\" pmax=\"60\" pmin=\"10\"/>",
     TR_OP_OBSERVE, "/3/0/9", LWM2M_CF_NONE, "pmin=10&pmax=60&gt=50.5&lt=-1&st=2", -1, NULL, NULL, "", 0,
     LWM2M_CODE(2, 5)},
    {"setAttributes", "<setAttributes key=\"/3/0/9\" st=\"5\" pmax=\"60\" pmin=\"10\" epmin=\"1\" epmax=\"2\"/>",
     TR_OP_WRITE_ATTRIBUTES, "/3/0/9", LWM2M_CF_NONE, "pmin=10&pmax=60&st=5&epmin=1&epmax=2", -1, NULL, NULL, "", 0,
     LWM2M_CODE(2, 4)},
    {"setAttributes: an empty value clears", "<setAttributes key=\"/3/0/9\" pmin=\"${''}\" pmax=\"${10 + 20}\"/>",
     TR_OP_WRITE_ATTRIBUTES, "/3/0/9", LWM2M_CF_NONE, "pmin&pmax=30", -1, NULL, NULL, "", 0, LWM2M_CODE(2, 4)},
    {"setAttributes: templated key", "<store target=\"k\" value=\"/3/0/7\"/><setAttributes key=\"${#k}\" pmin=\"5\"/>",
     TR_OP_WRITE_ATTRIBUTES, "/3/0/7", LWM2M_CF_NONE, "pmin=5", -1, NULL, NULL, "", 0, LWM2M_CODE(2, 4)},
};

static void test_management_ops(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof k_mgmt / sizeof k_mgmt[0]; i++) {
        char xml[1024];
        snprintf(xml, sizeof xml, "<config>%s</config>", k_mgmt[i].steps);
        task_program_t *p = parse(xml);
        task_bs_view_t v;
        task_runner_t *r = mgmt(p, &v, NULL, T0);
        if (g_nops != 1)
            fail_msg("%s: %d operations, summary '%s'", k_mgmt[i].name, g_nops, task_runner_summary(r));
        const op_t *o = &g_ops[0];
        if (o->kind != k_mgmt[i].kind || strcmp(o->path, k_mgmt[i].path) || o->cf != k_mgmt[i].cf)
            fail_msg("%s: got %s %s cf %d", k_mgmt[i].name, tr_op_name(o->kind), o->path, o->cf);
        assert_false(o->partial);
        if (k_mgmt[i].query) {
            if (!o->has_query || strcmp(o->query, k_mgmt[i].query))
                fail_msg("%s: query '%s'", k_mgmt[i].name, o->has_query ? o->query : "(none)");
        } else if (o->has_query) {
            fail_msg("%s: unexpected query '%s'", k_mgmt[i].name, o->query);
        }
        if (k_mgmt[i].nrecs >= 0) {
            lwm2m_records_t rs = decoded(0);
            if ((int)rs.n != k_mgmt[i].nrecs)
                fail_msg("%s: %zu records", k_mgmt[i].name, rs.n);
            lwm2m_path_t rp;
            assert_int_equal(lwm2m_path_parse(k_mgmt[i].rec_path, strlen(k_mgmt[i].rec_path), &rp), 0);
            const lwm2m_record_t *x = lwm2m_records_find(&rs, &rp);
            if (!x)
                fail_msg("%s: no record %s", k_mgmt[i].name, k_mgmt[i].rec_path);
            char t[128];
            rec_text(x, t, sizeof t);
            if (strcmp(t, k_mgmt[i].rec_value))
                fail_msg("%s: %s is '%s'", k_mgmt[i].name, k_mgmt[i].rec_path, t);
            lwm2m_records_clear(&rs);
        } else {
            if (o->len != k_mgmt[i].rawlen || memcmp(o->payload, k_mgmt[i].raw, o->len))
                fail_msg("%s: payload of %zu bytes", k_mgmt[i].name, o->len);
        }
        if (o->kind == TR_OP_READ)
            task_runner_resume(r, k_mgmt[i].answer, LWM2M_CF_TEXT, (const uint8_t *)"80", 2, NULL);
        else
            task_runner_resume(r, k_mgmt[i].answer, LWM2M_CF_NONE, NULL, 0, NULL);
        if (task_runner_status(r) != TR_SUCCESS || task_runner_state(r) != TR_DONE)
            fail_msg("%s: %s '%s'", k_mgmt[i].name, tr_status_name(task_runner_status(r)), task_runner_summary(r));
        assert_int_equal(g_nops, 1);
        task_runner_free(&r);
        task_program_free(&p);
    }
}

/* The write format follows the registration: TLV for a 1.0 device that
 * announced nothing, the announced ct otherwise. */
static void test_management_formats(void **state)
{
    (void)state;
    task_program_t *p = parse("<config><set key=\"/7/0/8\" value=\"60\"/><create key=\"/1/7\">"
                              "<write key=\"/1/7/1\" value=\"300\"/></create></config>");
    static const struct { int ct, version, want; } t[] = {
        {LWM2M_CF_NONE, LWM2M_V1_0, LWM2M_CF_TLV},
        {LWM2M_CF_NONE, 0, LWM2M_CF_TLV},
        {LWM2M_CF_NONE, LWM2M_V1_1, LWM2M_CF_SENML_CBOR},
        {LWM2M_CF_SENML_JSON, LWM2M_V1_1, LWM2M_CF_SENML_JSON},
        {LWM2M_CF_TLV, LWM2M_V1_1, LWM2M_CF_TLV},
        {LWM2M_CF_OLD_TLV, LWM2M_V1_0, LWM2M_CF_TLV},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        task_bs_view_t v;
        task_view_init_management(&v, t[i].ct, t[i].version);
        assert_true(v.discovered);
        task_runner_t *r = start_in(p, TR_SESSION_MANAGEMENT, &v, NULL, T0);
        expect_op(0, TR_OP_WRITE, "/7/0/8");
        assert_int_equal(g_ops[0].cf, t[i].want);
        lwm2m_records_t rs = decoded(0);
        assert_int_equal(rs.n, 1);
        assert_int_equal(rs.recs[0].v.i, 60);
        lwm2m_records_clear(&rs);
        answer(r, C(2, 4), NULL);
        expect_op(1, TR_OP_CREATE, "/1");
        assert_int_equal(g_ops[1].cf, t[i].want);
        rs = decoded(1);
        lwm2m_path_t lt = lwm2m_path_make(3, 1, 7, 1, 0);
        assert_non_null(lwm2m_records_find(&rs, &lt));
        assert_int_equal(lwm2m_records_find(&rs, &lt)->v.i, 300);
        lwm2m_records_clear(&rs);
        answer(r, C(2, 1), NULL);
        assert_int_equal(task_runner_status(r), TR_SUCCESS);
        task_runner_free(&r);
    }
    /* no view at all: SenML CBOR */
    g_nops = 0;
    task_runner_t *r = task_runner_new(p, g_reg, &HOST, NULL, TR_SESSION_MANAGEMENT, NULL, NULL);
    task_runner_run(r);
    assert_int_equal(g_ops[0].cf, LWM2M_CF_SENML_CBOR);
    task_runner_free(&r);
    task_program_free(&p);
}

/* <get> on a management session: the answer decoded into the variable. */
static void test_management_get(void **state)
{
    (void)state;
    task_bs_view_t v;
    char buf[512];
    /* one resource, text/plain, typed from the definition */
    task_program_t *p = parse("<config><get key=\"/3/0/9\" output=\"battery\"/>"
                              "<if expr=\"${#battery == '80'}\"><log message=\"eighty\"/></if></config>");
    task_runner_t *r = mgmt(p, &v, NULL, T0);
    expect_op(0, TR_OP_READ, "/3/0/9");
    task_runner_resume(r, C(2, 5), LWM2M_CF_TEXT, (const uint8_t *)"80", 2, NULL);
    assert_int_equal(task_runner_status(r), TR_SUCCESS);
    assert_string_equal(var_of(r, "battery", buf, sizeof buf), "80");
    assert_non_null(strstr(g_log, "eighty"));
    assert_non_null(strstr(g_log, "read /3/0/9|2.05"));
    task_runner_free(&r);
    task_program_free(&p);

    /* one resource in SenML CBOR; an opaque one as hex */
    p = parse("<config><get key=\"/3/0/0\" output=\"maker\"/><get key=\"/5/0/0\" output=\"pkg\"/></config>");
    r = mgmt(p, &v, NULL, T0);
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    lwm2m_path_t pa = lwm2m_path_make(3, 3, 0, 0, 0), pb = lwm2m_path_make(3, 5, 0, 0, 0);
    lwm2m_records_add_string(&rs, &pa, "lwdm");
    uint8_t *enc = NULL;
    size_t n = 0;
    assert_int_equal(lwm2m_encode(LWM2M_CF_SENML_CBOR, &pa, &rs, &enc, &n), 0);
    task_runner_resume(r, C(2, 5), LWM2M_CF_SENML_CBOR, enc, n, NULL);
    free(enc);
    lwm2m_records_clear(&rs);
    expect_op(1, TR_OP_READ, "/5/0/0");
    lwm2m_records_add_opaque(&rs, &pb, "\x01\xab", 2);
    assert_int_equal(lwm2m_encode(LWM2M_CF_SENML_CBOR, &pb, &rs, &enc, &n), 0);
    task_runner_resume(r, C(2, 5), LWM2M_CF_SENML_CBOR, enc, n, NULL);
    free(enc);
    lwm2m_records_clear(&rs);
    assert_int_equal(task_runner_status(r), TR_SUCCESS);
    assert_string_equal(var_of(r, "maker", buf, sizeof buf), "lwdm");
    assert_string_equal(var_of(r, "pkg", buf, sizeof buf), "01ab");
    task_runner_free(&r);
    task_program_free(&p);

    /* an instance: a JSON object of typed values */
    p = parse("<config><get key=\"Device.0\" output=\"dev\"/></config>");
    r = mgmt(p, &v, NULL, T0);
    lwm2m_path_t inst = lwm2m_path_make(2, 3, 0, 0, 0), p9 = lwm2m_path_make(3, 3, 0, 9, 0);
    lwm2m_records_add_string(&rs, &pa, "lwdm");
    lwm2m_records_add_int(&rs, &p9, 80);
    assert_int_equal(lwm2m_encode(LWM2M_CF_TLV, &inst, &rs, &enc, &n), 0);
    task_runner_resume(r, C(2, 5), LWM2M_CF_TLV, enc, n, NULL);
    free(enc);
    lwm2m_records_clear(&rs);
    assert_int_equal(task_runner_status(r), TR_SUCCESS);
    json_t *j = json_loads(var_of(r, "dev", buf, sizeof buf), 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "/3/0/0")), "lwdm");
    assert_int_equal(json_integer_value(json_object_get(j, "/3/0/9")), 80);
    json_decref(j);
    task_runner_free(&r);

    /* an answer that does not decode: ERROR */
    r = mgmt(p, &v, NULL, T0);
    task_runner_resume(r, C(2, 5), LWM2M_CF_SENML_CBOR, (const uint8_t *)"\xff\x00", 2, NULL);
    assert_int_equal(task_runner_status(r), TR_ERROR);
    assert_non_null(strstr(task_runner_summary(r), "could not decode"));
    task_runner_free(&r);
    task_program_free(&p);
}

/* Steps of the other kind of session end the run ERROR, before anything is
 * sent; and the management operations' own failures. */
static void test_session_kinds(void **state)
{
    (void)state;
    static const char *const bs_only[] = {
        "<lwm2mBootstrapCleanse/>",
        "<lwm2mBootstrapConfiguration serverId=\"8\"/>",
        "<lwm2mBootstrap performBootstrapFinish=\"true\"/>",
        "<lwm2mBootstrap><write key=\"/1/0/1\" value=\"60\"/></lwm2mBootstrap>",
        "<log message=\"first\"/><if expr=\"${true}\"><lwm2mBootstrapCleanse/></if>",
    };
    static const char *const mgmt_only[] = {
        "<delete key=\"/5/0\"/>",
        "<create key=\"/5\"/>",
        "<observe key=\"/3/0/9\"/>",
        "<setAttributes key=\"/3/0/9\" pmin=\"1\"/>",
    };
    task_bs_view_t v;
    char xml[512];
    for (size_t i = 0; i < sizeof bs_only / sizeof bs_only[0]; i++) {
        snprintf(xml, sizeof xml, "<config>%s</config>", bs_only[i]);
        task_program_t *p = parse(xml);
        task_runner_t *r = mgmt(p, &v, NULL, T0);
        if (task_runner_status(r) != TR_ERROR || !strstr(task_runner_summary(r), "runs only on a bootstrap session"))
            fail_msg("%s: %s '%s'", bs_only[i], tr_status_name(task_runner_status(r)), task_runner_summary(r));
        assert_int_equal(g_nops, 0);
        task_runner_free(&r);
        task_program_free(&p);
    }
    for (size_t i = 0; i < sizeof mgmt_only / sizeof mgmt_only[0]; i++) {
        snprintf(xml, sizeof xml, "<config>%s</config>", mgmt_only[i]);
        task_program_t *p = parse(xml);
        task_runner_t *r = boot(p, &v, NULL, T0);
        if (task_runner_status(r) != TR_ERROR || !strstr(task_runner_summary(r), "runs only on a management session"))
            fail_msg("%s: %s '%s'", mgmt_only[i], tr_status_name(task_runner_status(r)), task_runner_summary(r));
        assert_int_equal(g_nops, 0);
        task_runner_free(&r);
        task_program_free(&p);
    }

    static const struct {
        const char *steps;
        int answer;        /* 0: nothing is sent */
        const char *msg;
    } faults[] = {
        {"<setAttributes key=\"/3/0/9\"/>", 0, "has no attribute to set"},
        {"<setAttributes key=\"/3/0/9\" pmin=\"${'soon'}\"/>", 0, "'soon' is not a number of seconds"},
        {"<observe key=\"/3/0/9\" pmin=\"${60}\" pmax=\"${10}\"/>", 0, "pmax is below pmin"},
        {"<observe key=\"/3/0/9\" st=\"${0 - 1}\"/>", 0, "is not a decimal number >= 0"},
        {"<create key=\"/1/7\"><write key=\"${'/1/8/1'}\" value=\"1\"/></create>", 0, "one instance it creates"},
        {"<store target=\"${'__pc'}\" value=\"1\"/>", 0, "names starting with '__' are reserved"},
        {"<get key=\"/3/0/9\" output=\"${'__deferred'}\"/>", 0, "are reserved"},
        {"<execute key=\"/3/0/4\"/>", LWM2M_CODE(4, 5), "execute /3/0/4 answered 4.05"},
        {"<observe key=\"/3/0/9\" pmin=\"1\"/>", LWM2M_CODE(4, 0), "observe /3/0/9?pmin=1 answered 4.00"},
        {"<create key=\"/5/1\"/>", LWM2M_CODE(4, 6), "create /5 answered 4.06"},
    };
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) {
        snprintf(xml, sizeof xml, "<config>%s<log message=\"never\"/></config>", faults[i].steps);
        task_program_t *p = parse(xml);
        task_runner_t *r = mgmt(p, &v, NULL, T0);
        assert_int_equal(g_nops, faults[i].answer ? 1 : 0);
        if (faults[i].answer)
            task_runner_resume(r, faults[i].answer, LWM2M_CF_NONE, NULL, 0, NULL);
        if (task_runner_status(r) != TR_ERROR || !strstr(task_runner_summary(r), faults[i].msg))
            fail_msg("%s: %s '%s'", faults[i].steps, tr_status_name(task_runner_status(r)), task_runner_summary(r));
        assert_null(strstr(g_log, "never"));
        assert_false(has_reserved_vars(r));
        task_runner_free(&r);
        task_program_free(&p);
    }
    /* a transport failure */
    task_program_t *p = parse("<config><set key=\"/3/0/14\" value=\"+01\"/></config>");
    task_runner_t *r = mgmt(p, &v, NULL, T0);
    task_runner_resume(r, 0, LWM2M_CF_NONE, NULL, 0, "timeout");
    assert_int_equal(task_runner_status(r), TR_ERROR);
    assert_non_null(strstr(task_runner_summary(r), "write /3/0/14: timeout"));
    task_runner_free(&r);
    task_program_free(&p);
}

/* ====================================================== resuming runs */

static const char k_additional[] = "<config>\n"
                                   "  <lwm2mBootstrapCleanse />\n"
                                   "  <lwm2mBootstrapConfiguration serverId=\"8\" />\n"
                                   "  <set key=\"Device.Connectivity Statistics.0.Collection Period\" value=\"60\" />\n"
                                   "  <execute key=\"Device.Connectivity Statistics.0.Start\" />\n"
                                   "  <lwm2mBootstrap performBootstrapFinish=\"true\" />\n"
                                   "</config>\n";

/* The bootstrap half of the additional-logic recipe: its variables. */
static char *additional_bootstrap(task_program_t *p)
{
    task_bs_view_t v;
    task_runner_t *r = boot(p, &v, NULL, T0);
    answer(r, C(2, 5), "lwm2m=\"1.1\",</0/0>,</3/0>,</7/0>");
    answer(r, C(2, 2), NULL); /* delete /0 */
    answer(r, C(2, 2), NULL); /* delete /1 */
    answer(r, C(2, 4), NULL); /* /0/1 */
    answer(r, C(2, 4), NULL); /* /1/0 */
    expect_op(5, TR_OP_WRITE, "/7/0/8");
    answer(r, C(2, 4), NULL);
    expect_op(6, TR_OP_FINISH, "bs");
    answer(r, C(2, 4), NULL);
    assert_int_equal(g_nops, 7); /* no execute on the bootstrap session */
    assert_int_equal(task_runner_state(r), TR_DONE);
    assert_int_equal(task_runner_status(r), TR_IN_PROGRESS);
    assert_string_equal(task_runner_summary(r), "1 operation(s) deferred to the next management session");
    char *vars = vars_of(r);
    task_runner_free(&r);
    return vars;
}

/* The seed's additional-logic recipe across two sessions: IN_PROGRESS after
 * bootstrap, then the execute of /7/0/6 on the management session and
 * SUCCESS. */
static void test_additional_logic_sessions(void **state)
{
    (void)state;
    task_program_t *p = parse(k_additional);
    char *vars = additional_bootstrap(p);
    json_t *j = json_loads(vars, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(j, "__pc")), 5); /* the end: 5 steps */
    assert_int_equal(json_array_size(json_object_get(j, "__deferred")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(j, "__deferred"), 0), "line")),
                     5);
    json_decref(j);

    /* where it may go on: management sessions only; a new run of this task
     * never starts on one */
    assert_true(task_resume_runs_in(p, vars, TR_SESSION_MANAGEMENT));
    assert_false(task_resume_runs_in(p, vars, TR_SESSION_BOOTSTRAP));
    assert_false(task_runs_in(p, TR_SESSION_MANAGEMENT));
    assert_true(task_runs_in(p, TR_SESSION_BOOTSTRAP));

    /* handed to a bootstrap session anyway: stays IN_PROGRESS, untouched */
    task_bs_view_t v;
    task_runner_t *r = boot(p, &v, vars, T0 + 1000);
    assert_true(task_runner_resumed(r));
    assert_int_equal(task_runner_status(r), TR_IN_PROGRESS);
    assert_string_equal(task_runner_summary(r), "waiting for a management session");
    assert_int_equal(g_nops, 0);
    char *same = vars_of(r);
    assert_string_equal(same, vars);
    free(same);
    task_runner_free(&r);

    /* the management session: the execute, then SUCCESS */
    r = mgmt(p, &v, vars, T0 + 5000);
    assert_true(task_runner_resumed(r));
    expect_op(0, TR_OP_EXECUTE, "/7/0/6");
    assert_int_equal(g_ops[0].cf, LWM2M_CF_NONE);
    assert_int_equal(g_ops[0].len, 0);
    answer(r, C(2, 4), NULL);
    assert_int_equal(g_nops, 1);
    assert_int_equal(task_runner_status(r), TR_SUCCESS);
    assert_string_equal(task_runner_summary(r), "completed");
    assert_non_null(strstr(g_log, "resumed at the end of the task, after the deferred operations"));
    assert_non_null(strstr(g_log, "<execute> line 5 (deferred)|execute /7/0/6|2.04"));
    char *after = vars_of(r);
    assert_string_equal(after, "{}");
    free(after);
    task_runner_free(&r);

    /* the device refuses the execute: ERROR, nothing left to resume */
    r = mgmt(p, &v, vars, T0 + 5000);
    answer(r, C(4, 4), NULL);
    assert_int_equal(task_runner_status(r), TR_ERROR);
    assert_non_null(strstr(task_runner_summary(r), "execute /7/0/6 answered 4.04"));
    assert_false(has_reserved_vars(r));
    task_runner_free(&r);

    /* the device falls asleep before answering: still deferred */
    r = mgmt(p, &v, vars, T0 + 5000);
    task_runner_suspend(r, "the device went to sleep");
    assert_int_equal(task_runner_status(r), TR_IN_PROGRESS);
    assert_string_equal(task_runner_summary(r), "the device went to sleep");
    char *again = vars_of(r);
    task_runner_free(&r);
    r = mgmt(p, &v, again, T0 + 9000);
    expect_op(0, TR_OP_EXECUTE, "/7/0/6");
    answer(r, C(2, 4), NULL);
    assert_int_equal(task_runner_status(r), TR_SUCCESS);
    task_runner_free(&r);
    free(again);

    /* a report written before resume points existed: deferred, no __pc */
    r = mgmt(p, &v, "{\"__deferred\":[{\"op\":\"execute\",\"path\":\"/7/0/6\",\"arguments\":\"\"}]}", T0);
    expect_op(0, TR_OP_EXECUTE, "/7/0/6");
    answer(r, C(2, 4), NULL);
    assert_int_equal(task_runner_status(r), TR_SUCCESS);
    task_runner_free(&r);

    /* a deferred write and an execute with arguments, replayed in order */
    char fv[512];
    snprintf(fv, sizeof fv,
             "{\"x\":\"kept\",\"__pc\":5,\"__prog\":\"%016llx\",\"__deferred\":[{\"op\":\"write\",\"path\":\"/7/0/8\","
             "\"value\":\"90\",\"line\":4},{\"op\":\"execute\",\"path\":\"/3/0/4\",\"arguments\":\"1\",\"line\":9}]}",
             (unsigned long long)p->fingerprint);
    r = mgmt(p, &v, fv, T0);
    expect_op(0, TR_OP_WRITE, "/7/0/8");
    lwm2m_records_t rs = decoded(0);
    assert_int_equal(rs.recs[0].v.i, 90);
    lwm2m_records_clear(&rs);
    answer(r, C(2, 4), NULL);
    expect_op(1, TR_OP_EXECUTE, "/3/0/4");
    assert_int_equal(g_ops[1].cf, LWM2M_CF_TEXT);
    assert_memory_equal(g_ops[1].payload, "1", 1);
    /* asleep after the first: only the second is left */
    task_runner_suspend(r, "asleep");
    char *left = vars_of(r);
    task_runner_free(&r);
    j = json_loads(left, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(j, "__deferred")), 1);
    assert_string_equal(json_string_value(json_object_get(j, "x")), "kept");
    json_decref(j);
    r = mgmt(p, &v, left, T0);
    expect_op(0, TR_OP_EXECUTE, "/3/0/4");
    answer(r, C(2, 4), NULL);
    assert_int_equal(g_nops, 1);
    assert_int_equal(task_runner_status(r), TR_SUCCESS);
    char buf[64];
    assert_string_equal(var_of(r, "x", buf, sizeof buf), "kept");
    task_runner_free(&r);
    free(left);

    /* an operation lwdm does not know: ERROR */
    r = mgmt(p, &v, "{\"__deferred\":[{\"op\":\"reboot\",\"path\":\"/3/0/4\"}]}", T0);
    assert_int_equal(task_runner_status(r), TR_ERROR);
    assert_non_null(strstr(task_runner_summary(r), "unknown deferred operation 'reboot'"));
    assert_int_equal(g_nops, 0);
    task_runner_free(&r);

    free(vars);
    task_program_free(&p);
}

/* <wait>: the run goes on in the next session; a timeout that passed in
 * between ends it ERROR. */
static void test_wait(void **state)
{
    (void)state;
    task_program_t *p = parse("<config>\n"
                              "  <set key=\"/3/0/14\" value=\"+01\"/>\n"                  /* 0 */
                              "  <wait timeoutSeconds=\"60\"/>\n"                          /* 1 */
                              "  <set key=\"/3/0/15\" value=\"Europe/Paris\"/>\n"          /* 2 */
                              "  <if expr=\"${true}\">\n"                                  /* 3 */
                              "    <wait/>\n"                                              /* 4 */
                              "    <log message=\"then\"/>\n"                              /* 5 */
                              "  <else/>\n"
                              "    <log message=\"else\"/>\n"                              /* 6 */
                              "  </if>\n"
                              "  <set key=\"/7/0/8\" value=\"60\"/>\n"                     /* 7 */
                              "</config>\n");
    task_bs_view_t v;
    char buf[64];
    task_runner_t *r = mgmt(p, &v, NULL, T0);
    expect_op(0, TR_OP_WRITE, "/3/0/14");
    answer(r, C(2, 4), NULL);
    assert_int_equal(task_runner_status(r), TR_IN_PROGRESS);
    assert_string_equal(task_runner_summary(r), "waiting for the device's next session (at most 60s)");
    assert_string_equal(var_of(r, "__pc", buf, sizeof buf), "2");
    char *s1 = vars_of(r);
    task_runner_free(&r);
    assert_true(task_resume_deadline_ms(s1) == T0 + 60000);
    assert_true(task_resume_runs_in(p, s1, TR_SESSION_BOOTSTRAP)); /* nothing session-specific is left */
    assert_true(task_resume_runs_in(p, s1, TR_SESSION_MANAGEMENT));

    /* in time (the deadline itself still is): the next step, not the first */
    r = mgmt(p, &v, s1, T0 + 60000);
    expect_op(0, TR_OP_WRITE, "/3/0/15");
    answer(r, C(2, 4), NULL);
    assert_int_equal(g_nops, 1);
    assert_int_equal(task_runner_status(r), TR_IN_PROGRESS); /* the wait inside <if> */
    assert_string_equal(task_runner_summary(r), "waiting for the device's next session");
    assert_string_equal(var_of(r, "__pc", buf, sizeof buf), "5");
    assert_null(var_of(r, "__deadline", buf, sizeof buf));
    char *s2 = vars_of(r);
    task_runner_free(&r);
    assert_true(task_resume_deadline_ms(s2) == 0);

    /* much later (no timeout on this wait): inside the branch, then on */
    r = mgmt(p, &v, s2, T0 + 86400000);
    assert_non_null(strstr(g_log, "resumed at <log> line 7"));
    assert_non_null(strstr(g_log, "then"));
    assert_null(strstr(g_log, "|else"));
    expect_op(0, TR_OP_WRITE, "/7/0/8");
    answer(r, C(2, 4), NULL);
    assert_int_equal(g_nops, 1);
    assert_int_equal(task_runner_status(r), TR_SUCCESS);
    assert_false(has_reserved_vars(r));
    task_runner_free(&r);

    /* too late: ERROR "wait timed out", nothing sent */
    r = mgmt(p, &v, s1, T0 + 60001);
    assert_int_equal(g_nops, 0);
    assert_int_equal(task_runner_status(r), TR_ERROR);
    assert_string_equal(task_runner_summary(r), "wait timed out");
    assert_false(has_reserved_vars(r));
    task_runner_free(&r);
    free(s1);
    free(s2);
    task_program_free(&p);

    /* a wait on a bootstrap session, the rest on the management session */
    p = parse("<config><lwm2mBootstrap performBootstrapFinish=\"true\"/><wait timeoutSeconds=\"3600\"/>"
              "<delete key=\"/5/0\"/></config>");
    assert_true(task_runs_in(p, TR_SESSION_BOOTSTRAP));
    r = boot(p, &v, NULL, T0);
    answer(r, C(2, 5), "</0/0>");
    expect_op(1, TR_OP_FINISH, "bs");
    answer(r, C(2, 4), NULL);
    assert_int_equal(task_runner_status(r), TR_IN_PROGRESS);
    char *sb = vars_of(r);
    task_runner_free(&r);
    assert_false(task_resume_runs_in(p, sb, TR_SESSION_BOOTSTRAP));
    assert_true(task_resume_runs_in(p, sb, TR_SESSION_MANAGEMENT));
    r = mgmt(p, &v, sb, T0 + 1000);
    expect_op(0, TR_OP_DELETE, "/5/0");
    answer(r, C(2, 2), NULL);
    assert_int_equal(task_runner_status(r), TR_SUCCESS);
    task_runner_free(&r);
    free(sb);
    task_program_free(&p);
}

/* After Bootstrap-Finish, a step that needs the device waits for the
 * management session; the execute before it was deferred: order kept. */
static void test_after_finish(void **state)
{
    (void)state;
    task_program_t *p = parse("<config><execute key=\"/3/0/4\"/><lwm2mBootstrap performBootstrapFinish=\"true\"/>"
                              "<store target=\"a\" value=\"b\"/><set key=\"/3/0/14\" value=\"+01\"/>"
                              "<observe key=\"/3/0/9\"/></config>");
    task_bs_view_t v;
    task_runner_t *r = boot(p, &v, NULL, T0);
    answer(r, C(2, 5), "</0/0>");
    answer(r, C(2, 4), NULL); /* finish */
    assert_int_equal(g_nops, 2);
    assert_int_equal(task_runner_status(r), TR_IN_PROGRESS);
    assert_non_null(strstr(task_runner_summary(r), "next management session"));
    char *vars = vars_of(r);
    task_runner_free(&r);
    assert_true(task_resume_runs_in(p, vars, TR_SESSION_MANAGEMENT));
    assert_false(task_resume_runs_in(p, vars, TR_SESSION_BOOTSTRAP));
    r = mgmt(p, &v, vars, T0);
    expect_op(0, TR_OP_EXECUTE, "/3/0/4");
    answer(r, C(2, 4), NULL);
    expect_op(1, TR_OP_WRITE, "/3/0/14");
    answer(r, C(2, 4), NULL);
    expect_op(2, TR_OP_OBSERVE, "/3/0/9");
    answer(r, C(2, 5), NULL);
    assert_int_equal(g_nops, 3);
    assert_int_equal(task_runner_status(r), TR_SUCCESS);
    char buf[16];
    assert_string_equal(var_of(r, "a", buf, sizeof buf), "b");
    task_runner_free(&r);
    free(vars);
    task_program_free(&p);
}

/* A resumed run never repeats a step that completed; an <if> is not
 * evaluated again; variables round-trip. */
static void test_resume_never_repeats(void **state)
{
    (void)state;
    task_bs_view_t v;
    char buf[64];
    /* suspended with the second write outstanding: that one again, then on */
    task_program_t *p = parse("<config><set key=\"/3/0/14\" value=\"+01\"/><set key=\"/3/0/15\" value=\"UTC\"/>"
                              "<set key=\"/7/0/8\" value=\"60\"/></config>");
    task_runner_t *r = mgmt(p, &v, NULL, T0);
    answer(r, C(2, 4), NULL);
    expect_op(1, TR_OP_WRITE, "/3/0/15");
    task_runner_suspend(r, "queue mode: asleep");
    answer(r, C(2, 4), NULL); /* late: ignored */
    assert_int_equal(task_runner_status(r), TR_IN_PROGRESS);
    assert_int_equal(g_nops, 2);
    char *s1 = vars_of(r);
    task_runner_free(&r);
    r = mgmt(p, &v, s1, T0);
    expect_op(0, TR_OP_WRITE, "/3/0/15");
    answer(r, C(2, 4), NULL);
    expect_op(1, TR_OP_WRITE, "/7/0/8");
    answer(r, C(2, 4), NULL);
    assert_int_equal(g_nops, 2);
    assert_int_equal(task_runner_status(r), TR_SUCCESS);
    task_runner_free(&r);
    free(s1);
    task_program_free(&p);

    /* the branch taken stays taken; variables come back */
    p = parse("<config><store target=\"n\" value=\"1\"/>"
              "<if expr=\"${#n == '1'}\"><store target=\"n\" value=\"2\"/><wait/>"
              "<log message=\"in then ${#n}\"/><else/><log message=\"in else\"/></if>"
              "<if expr=\"${true}\"><set key=\"/3/0/14\" value=\"+01\"/><wait/></if><log message=\"after\"/></config>");
    r = mgmt(p, &v, NULL, T0);
    assert_int_equal(task_runner_status(r), TR_IN_PROGRESS);
    s1 = vars_of(r);
    task_runner_free(&r);
    r = mgmt(p, &v, s1, T0);
    assert_non_null(strstr(g_log, "in then 2"));
    assert_null(strstr(g_log, "in else"));
    expect_op(0, TR_OP_WRITE, "/3/0/14");
    answer(r, C(2, 4), NULL);
    assert_int_equal(task_runner_status(r), TR_IN_PROGRESS); /* the wait, last in its branch */
    char *s2 = vars_of(r);
    task_runner_free(&r);
    r = mgmt(p, &v, s2, T0);
    assert_int_equal(g_nops, 0);
    assert_non_null(strstr(g_log, "resumed at <log>"));
    assert_non_null(strstr(g_log, "after"));
    assert_null(strstr(g_log, "in then"));
    assert_int_equal(task_runner_status(r), TR_SUCCESS);
    assert_string_equal(var_of(r, "n", buf, sizeof buf), "2");
    task_runner_free(&r);

    /* the variables of a held run come back byte for byte; a new run
     * without them is not "resumed" */
    task_program_t *q = parse("<config><wait/><delete key=\"/5/0\"/></config>");
    r = mgmt(q, &v, "{\"k\":\"v\"}", T0);
    assert_false(task_runner_resumed(r));
    char *sq = vars_of(r);
    task_runner_free(&r);
    r = boot(q, &v, sq, T0);
    assert_true(task_runner_resumed(r));
    assert_int_equal(task_runner_status(r), TR_IN_PROGRESS);
    char *sq2 = vars_of(r);
    assert_string_equal(sq, sq2);
    free(sq2);
    task_runner_free(&r);

    /* the task was edited in between: ERROR, never the wrong step */
    assert_true(task_resume_runs_in(p, sq, TR_SESSION_BOOTSTRAP));
    r = mgmt(p, &v, sq, T0);
    assert_int_equal(task_runner_status(r), TR_ERROR);
    assert_non_null(strstr(task_runner_summary(r), "changed"));
    assert_int_equal(g_nops, 0);
    assert_false(has_reserved_vars(r));
    task_runner_free(&r);
    free(sq);
    task_program_free(&q);

    /* resume points that name no place to stop */
    char bad[256];
    snprintf(bad, sizeof bad, "{\"__pc\":99,\"__prog\":\"%016llx\"}", (unsigned long long)p->fingerprint);
    r = mgmt(p, &v, bad, T0);
    assert_int_equal(task_runner_status(r), TR_ERROR);
    assert_non_null(strstr(task_runner_summary(r), "does not name a step"));
    task_runner_free(&r);
    task_program_t *b = parse("<config><lwm2mBootstrap><write key=\"/1/0/1\" value=\"5\"/></lwm2mBootstrap></config>");
    snprintf(bad, sizeof bad, "{\"__pc\":1,\"__prog\":\"%016llx\"}", (unsigned long long)b->fingerprint);
    r = boot(b, &v, bad, T0);
    assert_int_equal(task_runner_status(r), TR_ERROR);
    assert_int_equal(g_nops, 0);
    task_runner_free(&r);
    task_program_free(&b);
    free(s1);
    free(s2);
    task_program_free(&p);
}

/* task_resume_runs_in: the next session-specific step from the saved point. */
static void test_resume_runs_in(void **state)
{
    (void)state;
    task_program_t *p = parse("<config><lwm2mBootstrap performBootstrapFinish=\"true\"/><wait/>"  /* 0 1 */
                              "<log message=\"x\"/><if expr=\"${true}\"><delete key=\"/5/0\"/></if>" /* 2 3 4 */
                              "<wait/><lwm2mBootstrapCleanse/></config>");                          /* 5 6 */
    assert_int_equal(p->nnodes, 7);
    char fp[17];
    snprintf(fp, sizeof fp, "%016llx", (unsigned long long)p->fingerprint);
    static const struct {
        const char *vars; /* %s: the fingerprint */
        bool bs, mgmt;
    } t[] = {
        {NULL, true, false},
        {"{}", true, false},
        {"{\"a\":\"1\"}", true, false},
        {"{\"__pc\":2,\"__prog\":\"%s\"}", false, true},
        {"{\"__pc\":4,\"__prog\":\"%s\"}", false, true},
        {"{\"__pc\":5,\"__prog\":\"%s\"}", true, false},
        {"{\"__pc\":7,\"__prog\":\"%s\"}", true, true},
        {"{\"__pc\":7,\"__prog\":\"%s\",\"__deferred\":[{\"op\":\"execute\",\"path\":\"/3/0/4\"}]}", false, true},
        {"{\"__pc\":2,\"__prog\":\"0000000000000000\"}", true, true},
        {"{\"__pc\":99,\"__prog\":\"%s\"}", true, true},
        {"{\"__pc\":\"2\",\"__prog\":\"%s\"}", true, true},
        {"not json", true, false},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char vars[512];
        if (t[i].vars)
            snprintf(vars, sizeof vars, t[i].vars, fp);
        bool bs = task_resume_runs_in(p, t[i].vars ? vars : NULL, TR_SESSION_BOOTSTRAP);
        bool mg = task_resume_runs_in(p, t[i].vars ? vars : NULL, TR_SESSION_MANAGEMENT);
        if (bs != t[i].bs || mg != t[i].mgmt)
            fail_msg("row %zu (%s): bootstrap %d management %d", i, t[i].vars ? vars : "NULL", bs, mg);
    }
    assert_false(task_resume_runs_in(NULL, NULL, TR_SESSION_BOOTSTRAP));
    assert_true(task_resume_deadline_ms(NULL) == 0);
    assert_true(task_resume_deadline_ms("{\"__deadline\":42}") == 42);
    task_program_free(&p);
    assert_string_equal(tr_op_name(TR_OP_WRITE_ATTRIBUTES), "write-attributes");
    assert_string_equal(tr_op_name(TR_OP_KIND_COUNT), "?");
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
        cmocka_unit_test(test_management_ops),
        cmocka_unit_test(test_management_formats),
        cmocka_unit_test(test_management_get),
        cmocka_unit_test(test_session_kinds),
        cmocka_unit_test(test_additional_logic_sessions),
        cmocka_unit_test(test_wait),
        cmocka_unit_test(test_after_finish),
        cmocka_unit_test(test_resume_never_repeats),
        cmocka_unit_test(test_resume_runs_in),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
