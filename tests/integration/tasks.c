/* The three recipes of seeds/configuring-a-bootstrap-server.md, verbatim, as
 * group tasks run by lwdm on lwdm-sim devices, and their failure paths: the
 * REST service down, a device that stops answering, 4.06 on Finish. Each
 * failure gives an ERROR report with the reason, and the device's next /bs
 * runs the task again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>

#include "server/lwm2m/lwm2m.h"
#include "sim/sim.h"
#include "support/harness.h"

static harness_t H;
static int64_t g_srv_a, g_srv_b;

/* ------------------------------------------------------------ HTTP stub */
/* GET /serverFor/<device id> -> {"serverId": A} for even ids, B for odd. */
static struct MHD_Daemon *g_stub;
static uint16_t g_stub_port;
static int g_stub_calls;
static long g_hold_id;      /* the stub holds this device's answer ... */
static int g_hold_release;  /* ... until the test sets this */

static enum MHD_Result stub_handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                   const char *version, const char *data, size_t *size, void **ctx)
{
    (void)cls;
    (void)method;
    (void)version;
    (void)data;
    (void)size;
    (void)ctx;
    __atomic_add_fetch(&g_stub_calls, 1, __ATOMIC_SEQ_CST);
    char body[64];
    long id = strncmp(url, "/serverFor/", 11) == 0 ? strtol(url + 11, NULL, 10) : -1;
    for (int i = 0; id == g_hold_id && i < 3000 && !__atomic_load_n(&g_hold_release, __ATOMIC_SEQ_CST); i++)
        usleep(10000); /* a slow service: at most 30 s */
    unsigned status = 200;
    if (id <= 0) {
        status = 404;
        snprintf(body, sizeof body, "{}");
    } else {
        snprintf(body, sizeof body, "{\"serverId\": %lld}", (long long)(id % 2 ? g_srv_b : g_srv_a));
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static void stub_start(uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g_stub = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, port, NULL, NULL, stub_handler, NULL,
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_END);
    assert_non_null(g_stub);
    g_stub_port = MHD_get_daemon_info(g_stub, MHD_DAEMON_INFO_BIND_PORT)->port;
}

static void stub_stop(void)
{
    if (g_stub)
        MHD_stop_daemon(g_stub);
    g_stub = NULL;
}

/* -------------------------------------------------------------- helpers */
static int64_t create_server(const char *name, int ssid, const char *host)
{
    char body[512];
    snprintf(body, sizeof body, "{\"name\":\"%s\",\"type\":\"management\",\"ssid\":%d,\"uri\":\"%s\"}", name, ssid, host);
    json_t *r = NULL;
    long st = harness_http(&H, "POST", "/api/v1/lwm2m-servers", body, &r);
    if (st != 201)
        fail_msg("create server %s: %ld", name, st);
    int64_t id = json_integer_value(json_object_get(r, "id"));
    json_decref(r);
    return id;
}

static int64_t create_group(const char *name)
{
    char body[256];
    snprintf(body, sizeof body, "{\"name\":\"%s\"}", name);
    json_t *r = NULL;
    long st = harness_http(&H, "POST", "/api/v1/groups", body, &r);
    if (st != 201)
        fail_msg("create group %s: %ld", name, st);
    int64_t id = json_integer_value(json_object_get(r, "id"));
    json_decref(r);
    return id;
}

static int64_t create_device(const char *ep, int64_t group)
{
    char body[256];
    snprintf(body, sizeof body, "{\"endpoint\":\"%s\"}", ep);
    json_t *r = NULL;
    if (harness_http(&H, "POST", "/api/v1/devices", body, &r) != 201)
        fail_msg("create device %s", ep);
    int64_t id = json_integer_value(json_object_get(r, "id"));
    json_decref(r);
    snprintf(body, sizeof body, "{\"deviceId\":%lld}", (long long)id);
    long st = harness_httpf(&H, "POST", body, NULL, "/api/v1/groups/%lld/devices", (long long)group);
    if (st != 201 && st != 200)
        fail_msg("add %s to group: %ld", ep, st);
    return id;
}

/* Creates a group task ("Once and repeat" + automatic restart, as the seed
 * says) with `xml` as its configuration. */
static int64_t create_task(int64_t group, const char *name, const char *xml)
{
    json_t *b = json_pack("{s:s,s:s,s:s,s:b}", "name", name, "config", xml, "execution", "onceAndRepeat",
                          "automaticRestart", 1);
    char *txt = json_dumps(b, 0);
    json_t *r = NULL;
    long st = harness_httpf(&H, "POST", txt, &r, "/api/v1/groups/%lld/tasks", (long long)group);
    if (st != 201) {
        char *e = r ? json_dumps(r, 0) : NULL;
        fail_msg("create task %s: %ld %s", name, st, e ? e : "");
    }
    int64_t id = json_integer_value(json_object_get(r, "id"));
    free(txt);
    json_decref(b);
    json_decref(r);
    return id;
}

static sim_t *run_sim(const char *prefix, size_t n, int fail_finish, int stall_after)
{
    char uri[64];
    snprintf(uri, sizeof uri, "coap://127.0.0.1:%u", H.bs_coap_port);
    sim_config_t c;
    sim_config_init(&c);
    c.server_uri = uri;
    c.count = n;
    c.ep_prefix = prefix;
    c.fail_finish = fail_finish;
    c.stall_after = stall_after;
    c.timeout_ms = 8000;
    sim_t *sim = NULL;
    assert_int_equal(sim_new(&c, &sim), 0);
    assert_int_equal(sim_start(sim), 0);
    sim_run(sim, 30000);
    return sim;
}

/* The device's report for `task` once its status is `want` and, when
 * `needle` is given, its JSON (summary, variables, log) mentions it: a report
 * is IN_PROGRESS from the start of a run, so a run that ends IN_PROGRESS is
 * told apart by what it logged. Polls (bounded): results are written at the
 * end of a loop pass. */
static json_t *report_with(int64_t device, int64_t task, const char *want, const char *needle)
{
    for (int i = 0; i < 200; i++) {
        json_t *r = NULL;
        harness_httpf(&H, "GET", NULL, &r, "/api/v1/devices/%lld/task-reports", (long long)device);
        json_t *items = json_object_get(r, "items"), *it;
        size_t k;
        int64_t rid = 0;
        json_array_foreach(items, k, it)
        {
            const char *st = json_string_value(json_object_get(it, "status"));
            if (json_integer_value(json_object_get(it, "taskId")) == task && st && !strcmp(st, want))
                rid = json_integer_value(json_object_get(it, "id"));
        }
        json_decref(r);
        if (rid) {
            json_t *one = NULL;
            harness_httpf(&H, "GET", NULL, &one, "/api/v1/devices/%lld/task-reports/%lld", (long long)device,
                          (long long)rid);
            char *t = one ? json_dumps(one, 0) : NULL;
            bool ok = t && (!needle || strstr(t, needle));
            free(t);
            if (ok)
                return one;
            json_decref(one);
        }
        usleep(50000);
    }
    fail_msg("device %lld: no %s report for task %lld%s%s", (long long)device, want, (long long)task,
             needle ? " mentioning " : "", needle ? needle : "");
    return NULL;
}

static json_t *report(int64_t device, int64_t task, const char *want)
{
    return report_with(device, task, want, NULL);
}

static const lwm2m_record_t *rec(const sim_device_t *d, int o, int i, int r)
{
    lwm2m_path_t p = lwm2m_path_make(3, (unsigned)o, (unsigned)i, (unsigned)r, 0);
    return sim_dm_find(sim_device_dm(d), &p);
}

static int log_mentions(json_t *rep, const char *needle)
{
    char *t = json_dumps(rep, 0);
    int yes = t && strstr(t, needle);
    free(t);
    return yes;
}

/* -------------------------------------------------------------- fixture */
static int setup(void **state)
{
    (void)state;
    harness_opts_t o = {.bs_timeout_s = 4};
    harness_start(&H, &o);
    /* the recipes bring their own bootstrap logic: no settings task */
    harness_bs_settings(&H, 0, NULL, 0, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    stub_stop();
    harness_cleanup(&H);
    return 0;
}

/* (a) "Custom bootstrap procedure communicating with an external service" */
static void test_recipe_external_service(void **state)
{
    (void)state;
    g_srv_a = create_server("recipe-a-even", 11, "10.0.0.1");
    g_srv_b = create_server("recipe-a-odd", 12, "10.0.0.2");
    stub_start(0);
    int64_t g = create_group("recipe-a");
    int64_t dev[4];
    for (int i = 0; i < 4; i++) {
        char ep[32];
        snprintf(ep, sizeof ep, "ext-%06d", i + 1);
        dev[i] = create_device(ep, g);
    }
    char xml[1024];
    snprintf(xml, sizeof xml,
             "<config>\n"
             " <rest url=\"http://127.0.0.1:%u/serverFor/${device.id}\">\n"
             "   <out from=\"serverId\" to=\"serverId\" />\n"
             " </rest>\n"
             " <lwm2mBootstrapCleanse />\n"
             " <lwm2mBootstrapConfiguration serverId=\"${#serverId}\" />\n"
             " <lwm2mBootstrap performBootstrapFinish=\"true\" />           \n"
             "</config>\n",
             g_stub_port);
    int64_t task = create_task(g, "external service", xml);
    sim_t *sim = run_sim("ext-", 4, 0, -1);
    for (size_t i = 0; i < 4; i++) {
        const sim_device_t *d = sim_device(sim, i);
        sim_status_t st;
        sim_device_status(d, &st);
        if (st.state != SIM_OK)
            fail_msg("%s: %s", sim_device_endpoint(d), st.reason);
        /* different devices get different servers, as the service says */
        const char *want = dev[i] % 2 ? "coap://10.0.0.2:5683" : "coap://10.0.0.1:5683";
        const lwm2m_record_t *uri = rec(d, 0, 1, 0);
        assert_non_null(uri);
        assert_memory_equal(uri->bytes, want, strlen(want));
        json_t *r = report(dev[i], task, "SUCCESS");
        json_t *vars = json_object_get(r, "variables");
        char idtxt[16];
        snprintf(idtxt, sizeof idtxt, "%lld", (long long)(dev[i] % 2 ? g_srv_b : g_srv_a));
        assert_string_equal(json_string_value(json_object_get(vars, "serverId")), idtxt);
        json_decref(r);
    }
    sim_free(&sim);
    json_t *counts = NULL;
    harness_httpf(&H, "GET", NULL, &counts, "/api/v1/groups/%lld/tasks/%lld/reports", (long long)g, (long long)task);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(counts, "counts"), "SUCCESS")), 4);
    json_decref(counts);

    /* the REST service down: ERROR with the reason; nothing written */
    stub_stop();
    sim = run_sim("ext-", 1, 0, -1);
    sim_status_t st;
    sim_device_status(sim_device(sim, 0), &st);
    assert_int_equal(st.state, SIM_FAILED);
    sim_free(&sim);
    json_t *r = report(dev[0], task, "ERROR");
    assert_true(log_mentions(r, "HTTP request failed"));
    json_decref(r);
    /* back up: the device's next /bs runs the task again */
    stub_start(g_stub_port);
    sim = run_sim("ext-", 1, 0, -1);
    sim_device_status(sim_device(sim, 0), &st);
    assert_int_equal(st.state, SIM_OK);
    sim_free(&sim);
    json_decref(report(dev[0], task, "SUCCESS"));
}

/* (b) "Custom bootstrap procedure using low level mechanisms" */
static const char LOW_LEVEL[] =
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
    "   <write key=\"LwM2M Server.0.Notification Storing When Disabled or Offline\" value=\"false\" type=\"boolean\" />\n"
    "   <write key=\"LwM2M Server.0.Binding\" value=\"U\" type=\"string\" />\n"
    " </lwm2mBootstrap>\n"
    "</config>\n";

static void test_recipe_low_level(void **state)
{
    (void)state;
    int64_t g = create_group("recipe-b");
    int64_t dev[2];
    for (int i = 0; i < 2; i++) {
        char ep[32], body[128];
        snprintf(ep, sizeof ep, "low-%06d", i + 1);
        dev[i] = create_device(ep, g);
        snprintf(body, sizeof body, "{\"managementId\":\"mgmt-%d\",\"password\":\"pw-%d-secret\"}", i + 1, i + 1);
        assert_int_equal(harness_httpf(&H, "PUT", body, NULL, "/api/v1/devices/%lld/setting-values", (long long)dev[i]), 200);
    }
    int64_t task = create_task(g, "low level", LOW_LEVEL);
    sim_t *sim = run_sim("low-", 2, 0, -1);
    for (size_t i = 0; i < 2; i++) {
        const sim_device_t *d = sim_device(sim, i);
        sim_status_t st;
        sim_device_status(d, &st);
        if (st.state != SIM_OK)
            fail_msg("%s: %s", sim_device_endpoint(d), st.reason);
        /* exactly those 11 resources, besides the client's own BS account and objects 3, 4, 7 */
        size_t n01 = 0;
        const lwm2m_records_t *rs = sim_dm_records(sim_device_dm(d));
        for (size_t k = 0; k < rs->n; k++) {
            const lwm2m_path_t *p = &rs->recs[k].path;
            if ((p->ids[0] == 0 && p->ids[1] != 0) || p->ids[0] == 1)
                n01++;
        }
        assert_int_equal(n01, 11);
        char id[16], pw[32];
        snprintf(id, sizeof id, "mgmt-%zu", i + 1);
        snprintf(pw, sizeof pw, "pw-%zu-secret", i + 1);
        assert_memory_equal(rec(d, 0, 2, 0)->bytes, "coaps://uri.example:5684", 24);
        assert_int_equal(rec(d, 0, 2, 2)->v.i, 0);
        assert_int_equal(rec(d, 0, 2, 3)->nbytes, strlen(id));
        assert_memory_equal(rec(d, 0, 2, 3)->bytes, id, strlen(id));
        assert_memory_equal(rec(d, 0, 2, 5)->bytes, pw, strlen(pw));
        assert_int_equal(rec(d, 0, 2, 4)->nbytes, 0);
        assert_int_equal(rec(d, 1, 0, 1)->v.i, 60);
        assert_memory_equal(rec(d, 1, 0, 7)->bytes, "U", 1);
        json_decref(report(dev[i], task, "SUCCESS"));
    }
    sim_free(&sim);

    /* 4.06 on Finish: ERROR with the reason; the next /bs runs it again */
    sim = run_sim("low-", 1, 1, -1);
    sim_free(&sim);
    json_t *r = report(dev[0], task, "ERROR");
    assert_true(log_mentions(r, "4.06"));
    json_decref(r);
    sim = run_sim("low-", 1, 0, -1);
    sim_free(&sim);
    json_decref(report(dev[0], task, "SUCCESS"));

    /* a device that stops answering mid-task: ERROR (watchdog), then again */
    sim = run_sim("low-", 1, 0, 1);
    sim_free(&sim);
    r = report(dev[0], task, "ERROR");
    assert_true(log_mentions(r, "timeout"));
    json_decref(r);
    sim = run_sim("low-", 1, 0, -1);
    sim_free(&sim);
    json_decref(report(dev[0], task, "SUCCESS"));
}

/* (c) "Custom bootstrap procedure with additional logic", with serverId="8"
 * as written: servers are created until one has id 8. */
static void test_recipe_additional_logic(void **state)
{
    (void)state;
    int64_t id = 0;
    for (int i = 0; i < 10 && id < 8; i++) {
        char name[32];
        snprintf(name, sizeof name, "recipe-c-%d", i);
        id = create_server(name, 30 + i, "127.0.0.1");
    }
    assert_int_equal(id, 8);
    int64_t g = create_group("recipe-c");
    int64_t dev = create_device("more-000001", g);
    int64_t task = create_task(g, "additional logic",
                               "<config>\n"
                               "  <lwm2mBootstrapCleanse />\n"
                               "  <lwm2mBootstrapConfiguration serverId=\"8\" />\n"
                               "  <set key=\"Device.Connectivity Statistics.0.Collection Period\" value=\"60\" />\n"
                               "  <execute key=\"Device.Connectivity Statistics.0.Start\" />\n"
                               "  <lwm2mBootstrap performBootstrapFinish=\"true\" />\n"
                               "</config>\n");
    sim_t *sim = run_sim("more-", 1, 0, -1);
    const sim_device_t *d = sim_device(sim, 0);
    sim_status_t st;
    sim_device_status(d, &st);
    if (st.state != SIM_OK)
        fail_msg("%s", st.reason);
    /* the set reached /7/0/8 during bootstrap */
    const lwm2m_record_t *period = rec(d, 7, 0, 8), *uri = rec(d, 0, 1, 0);
    if (!period || !uri)
        fail_msg("after bootstrap: /7/0/8 %s, /0/1/0 %s", period ? "set" : "missing", uri ? "set" : "missing");
    assert_int_equal(period->v.i, 60);
    assert_memory_equal(uri->bytes, "coap://127.0.0.1:5683", 21);
    sim_free(&sim);
    /* the execute is deferred to the device's next management session. The
     * "deferred" log line is written when the <execute> step runs, the
     * variables when the bootstrap part ends (after Finish, which the sim
     * may see acknowledged before lwdm has committed): wait for the latter. */
    json_t *r = report_with(dev, task, "IN_PROGRESS", "\"__deferred\"");
    json_t *def = json_array_get(json_object_get(json_object_get(r, "variables"), "__deferred"), 0);
    const char *dpath = json_string_value(json_object_get(def, "path"));
    if (!dpath) {
        char *t = json_dumps(r, 0);
        fail_msg("no deferred path in %s", t ? t : "(null)");
    }
    assert_string_equal(dpath, "/7/0/6");
    json_decref(r);
}


/* A run left IN_PROGRESS (here by <wait/>) is marked at the next start of the
 * server and runs again in the device's next session: never silently lost. */
static void test_interrupted_run_restarts(void **state)
{
    (void)state;
    int64_t mgmt = harness_server_id(&H, "lwdm management (NoSec)");
    harness_bs_settings(&H, 0, &mgmt, 1, 1); /* the settings task finishes the bootstrap */
    int64_t g = create_group("waiters");
    int64_t dev = create_device("wait-000001", g);
    json_t *b = json_pack("{s:s,s:s,s:s,s:b,s:i}", "name", "waiter", "config",
                          "<config><log message=\"hello ${device.endpoint}\"/><wait/></config>", "execution",
                          "onceAndRepeat", "automaticRestart", 1, "priority", 5);
    char *txt = json_dumps(b, 0);
    json_t *r = NULL;
    assert_int_equal(harness_httpf(&H, "POST", txt, &r, "/api/v1/groups/%lld/tasks", (long long)g), 201);
    int64_t task = json_integer_value(json_object_get(r, "id"));
    free(txt);
    json_decref(b);
    json_decref(r);
    sim_t *sim = run_sim("wait-", 1, 0, -1);
    sim_status_t st;
    sim_device_status(sim_device(sim, 0), &st);
    assert_int_equal(st.state, SIM_OK);
    sim_free(&sim);
    r = report_with(dev, task, "IN_PROGRESS", "waiting for the device's next session");
    assert_true(log_mentions(r, "hello wait-000001"));
    assert_int_equal(json_integer_value(json_object_get(r, "runs")), 1);
    json_decref(r);
    /* restart on the same database */
    harness_stop(&H);
    harness_opts_t o = {.bs_timeout_s = 4};
    harness_start(&H, &o);
    r = report_with(dev, task, "IN_PROGRESS", "interrupted by a server restart");
    json_decref(r);
    sim = run_sim("wait-", 1, 0, -1);
    sim_free(&sim);
    r = report_with(dev, task, "IN_PROGRESS", "\"runs\": 2");
    json_decref(r);
}

/* A slow HTTP service does not delay other devices: the stub holds device A's
 * answer until device B has finished its whole bootstrap (which needs its own
 * <rest> answer and seven CoAP exchanges). If <rest> blocked the network loop,
 * B could never finish and A would be released only by the stub's timeout. */
static void test_slow_rest_does_not_block(void **state)
{
    (void)state;
    int64_t g = create_group("slow-rest");
    int64_t a = create_device("slow-000001", g);
    int64_t b = create_device("slow-000002", g);
    char xml[1024];
    snprintf(xml, sizeof xml,
             "<config><rest url=\"http://127.0.0.1:%u/serverFor/${device.id}\"><out from=\"serverId\" to=\"s\"/></rest>"
             "<lwm2mBootstrapCleanse/><lwm2mBootstrapConfiguration serverId=\"${#s}\"/>"
             "<lwm2mBootstrap performBootstrapFinish=\"true\"/></config>",
             g_stub_port);
    json_t *body = json_pack("{s:s,s:s,s:s,s:b,s:i}", "name", "slow", "config", xml, "execution", "onceAndRepeat",
                             "automaticRestart", 1, "priority", 1);
    char *txt = json_dumps(body, 0);
    assert_int_equal(harness_httpf(&H, "POST", txt, NULL, "/api/v1/groups/%lld/tasks", (long long)g), 201);
    free(txt);
    json_decref(body);
    g_hold_id = a;
    __atomic_store_n(&g_hold_release, 0, __ATOMIC_SEQ_CST);
    char uri[64];
    snprintf(uri, sizeof uri, "coap://127.0.0.1:%u", H.bs_coap_port);
    sim_config_t c;
    sim_config_init(&c);
    c.server_uri = uri;
    c.count = 2;
    c.ep_prefix = "slow-";
    c.timeout_ms = 40000;
    sim_t *sim = NULL;
    assert_int_equal(sim_new(&c, &sim), 0);
    assert_int_equal(sim_start(sim), 0);
    bool b_done_while_a_held = false;
    for (int i = 0; i < 3000 && sim_step(sim, 10) > 0; i++) {
        sim_status_t sa, sb;
        sim_device_status(sim_device(sim, 0), &sa);
        sim_device_status(sim_device(sim, 1), &sb);
        if (sb.state == SIM_OK && !__atomic_load_n(&g_hold_release, __ATOMIC_SEQ_CST)) {
            b_done_while_a_held = sa.state == SIM_RUNNING;
            __atomic_store_n(&g_hold_release, 1, __ATOMIC_SEQ_CST);
        }
    }
    sim_status_t sa;
    sim_device_status(sim_device(sim, 0), &sa);
    sim_free(&sim);
    g_hold_id = 0;
    assert_true(b_done_while_a_held);
    assert_int_equal(sa.state, SIM_OK); /* and A completes once its answer comes */
    (void)b;
}

/* A task's condition decides per device, with setting values (sv.*): the
 * device whose value matches runs it, the other gets no report at all. */
static void test_condition_per_device(void **state)
{
    (void)state;
    int64_t mgmt = harness_server_id(&H, "lwdm management (NoSec)");
    harness_bs_settings(&H, 0, &mgmt, 1, 1); /* the settings task finishes the bootstrap */
    int64_t g = create_group("conditional");
    int64_t yes = create_device("cond-000001", g), no = create_device("cond-000002", g);
    assert_int_equal(harness_httpf(&H, "PUT", "{\"kind\":\"meter\"}", NULL, "/api/v1/devices/%lld/setting-values",
                                   (long long)yes), 200);
    assert_int_equal(harness_httpf(&H, "PUT", "{\"kind\":\"valve\"}", NULL, "/api/v1/devices/%lld/setting-values",
                                   (long long)no), 200);
    json_t *b = json_pack("{s:s,s:s,s:s,s:b,s:i,s:s}", "name", "meters only", "config",
                          "<config><log message=\"a ${sv.kind}\"/></config>", "execution", "onceAndRepeat",
                          "automaticRestart", 1, "priority", 5, "condition", "${sv.kind == 'meter'}");
    char *txt = json_dumps(b, 0);
    json_t *r = NULL;
    assert_int_equal(harness_httpf(&H, "POST", txt, &r, "/api/v1/groups/%lld/tasks", (long long)g), 201);
    int64_t task = json_integer_value(json_object_get(r, "id"));
    free(txt);
    json_decref(b);
    json_decref(r);
    sim_t *sim = run_sim("cond-", 2, 0, -1);
    for (size_t i = 0; i < 2; i++) {
        sim_status_t st;
        sim_device_status(sim_device(sim, i), &st);
        assert_int_equal(st.state, SIM_OK);
    }
    sim_free(&sim);
    json_decref(report_with(yes, task, "SUCCESS", "a meter"));
    /* both bootstrapped (the settings task ran for both), only one ran this task */
    json_t *list = NULL;
    assert_int_equal(harness_httpf(&H, "GET", NULL, &list, "/api/v1/devices/%lld/task-reports", (long long)no), 200);
    json_t *it;
    size_t k;
    int ran = 0, others = 0;
    json_array_foreach(json_object_get(list, "items"), k, it)
    {
        if (json_integer_value(json_object_get(it, "taskId")) == task)
            ran++;
        else
            others++;
    }
    json_decref(list);
    assert_int_equal(ran, 0);
    assert_true(others >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recipe_external_service),
        cmocka_unit_test(test_recipe_low_level),
        cmocka_unit_test(test_recipe_additional_logic),
        cmocka_unit_test(test_slow_rest_does_not_block),
        cmocka_unit_test(test_interrupted_run_restarts),
        cmocka_unit_test(test_condition_per_device),
    };
    return cmocka_run_group_tests_name("integration_tasks", tests, setup, teardown);
}
