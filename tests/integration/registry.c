/* The management server end to end, lwdm and lwdm-sim in one process: a
 * device bootstraps (the seed's "additional logic" recipe with the PSK
 * management server) and registers over DTLS-PSK with the key lwdm generated
 * for it; queue mode delivers a REST request at the device's next Update;
 * wrong or unknown PSK credentials never register; a restart keeps a
 * registration; a server-initiated bootstrap makes a device bootstrap and
 * register again. Each test has its own server; each sim runs in its own loop
 * thread and is controlled with sim_call. Waits poll and are bounded. */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <coap3/coap.h>

#include "server/lwm2m/lwm2m.h"
#include "sim/sim.h"
#include "support/harness.h"

static harness_t H;

#define WAIT_POLLS 200 /* x 50 ms: every wait is bounded by about 10 s */

/* ------------------------------------------------------ sim loop thread */
typedef struct {
    sim_t *sim;
    pthread_t th;
    int stop;
    int running;
} simthr_t;

static void *sim_loop(void *arg)
{
    simthr_t *t = arg;
    while (!__atomic_load_n(&t->stop, __ATOMIC_SEQ_CST)) {
        if (sim_step(t->sim, 50) < 0)
            usleep(10000);
    }
    sim_stop(t->sim); /* de-registers what is registered */
    return NULL;
}

static void sim_thread_start(simthr_t *t, const sim_config_t *c)
{
    memset(t, 0, sizeof *t);
    assert_int_equal(sim_new(c, &t->sim), 0);
    assert_int_equal(sim_start(t->sim), 0);
    assert_int_equal(pthread_create(&t->th, NULL, sim_loop, t), 0);
    t->running = 1;
}

static void sim_thread_free(simthr_t *t)
{
    if (t->running) {
        __atomic_store_n(&t->stop, 1, __ATOMIC_SEQ_CST);
        pthread_join(t->th, NULL);
        t->running = 0;
    }
    sim_free(&t->sim);
}

typedef struct {
    void (*fn)(sim_t *, void *);
    void *arg;
    sem_t done;
} call_t;

static void trampoline(sim_t *s, void *a)
{
    call_t *c = a;
    c->fn(s, c->arg);
    sem_post(&c->done);
}

/* Runs fn(sim, arg) in the loop thread and waits for it (at most 10 s). */
static void sim_sync(simthr_t *t, void (*fn)(sim_t *, void *), void *arg)
{
    call_t c = {.fn = fn, .arg = arg};
    sem_init(&c.done, 0, 0);
    assert_int_equal(sim_call(t->sim, trampoline, &c), 0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 10;
    int rc;
    while ((rc = sem_timedwait(&c.done, &ts)) != 0 && errno == EINTR)
        ;
    if (rc != 0)
        fail_msg("sim_call did not run within 10 s");
    sem_destroy(&c.done);
}

/* A copy of a device's status, taken in the loop thread. */
typedef struct {
    size_t index;
    sim_state_t state;
    bool registered, sleeping;
    unsigned registrations, updates, dm_requests;
    int last_dm_method, last_dm_code;
    char reg_state[32], location[32], last_dm_path[64], reason[192];
} snap_t;

static void snap_fn(sim_t *s, void *a)
{
    snap_t *o = a;
    sim_status_t st;
    sim_device_status(sim_device(s, o->index), &st);
    o->state = st.state;
    o->registered = st.registered;
    o->sleeping = st.sleeping;
    o->registrations = st.registrations;
    o->updates = st.updates;
    o->dm_requests = st.dm_requests;
    o->last_dm_method = st.last_dm_method;
    o->last_dm_code = st.last_dm_code;
    snprintf(o->reg_state, sizeof o->reg_state, "%s", st.reg_state ? st.reg_state : "");
    snprintf(o->location, sizeof o->location, "%s", st.location ? st.location : "");
    snprintf(o->last_dm_path, sizeof o->last_dm_path, "%s", st.last_dm_path ? st.last_dm_path : "");
    snprintf(o->reason, sizeof o->reason, "%s", st.reason ? st.reason : "");
}

static snap_t snap(simthr_t *t, size_t index)
{
    snap_t s = {.index = index};
    sim_sync(t, snap_fn, &s);
    return s;
}

/* Waits until device `index` is registered (or failed: fails the test). */
static snap_t wait_registered(simthr_t *t, size_t index)
{
    snap_t s;
    for (int i = 0; i < WAIT_POLLS; i++) {
        s = snap(t, index);
        if (s.registered && s.location[0])
            return s;
        if (s.state == SIM_FAILED)
            fail_msg("device %zu failed: %s", index, s.reason);
        usleep(50000);
    }
    fail_msg("device %zu not registered within 10 s (state %s, reg %s, reason '%s')", index, sim_state_name(s.state),
             s.reg_state, s.reason);
    return s;
}

typedef struct {
    size_t index;
    int rc;
} idx_call_t;

static void update_fn(sim_t *s, void *a)
{
    idx_call_t *c = a;
    c->rc = sim_device_update_now(s, c->index);
}

/* The PSK credentials of the device's (non-bootstrap) management account. */
typedef struct {
    size_t index;
    int found;
    uint8_t id[128], key[128];
    size_t id_len, key_len;
    char uri[128];
} dmcred_t;

static void dmcred_fn(sim_t *s, void *a)
{
    dmcred_t *c = a;
    const sim_dm_t *dm = sim_device_dm(sim_device(s, c->index));
    uint16_t iids[16];
    size_t n = sim_dm_instances(dm, 0, iids, 16);
    for (size_t k = 0; k < n && k < 16; k++) {
        lwm2m_path_t pbs = lwm2m_path_make(3, 0, iids[k], 1, 0), pmode = lwm2m_path_make(3, 0, iids[k], 2, 0);
        lwm2m_path_t pid = lwm2m_path_make(3, 0, iids[k], 3, 0), pkey = lwm2m_path_make(3, 0, iids[k], 5, 0);
        lwm2m_path_t puri = lwm2m_path_make(3, 0, iids[k], 0, 0);
        const lwm2m_record_t *bs = sim_dm_find(dm, &pbs), *mode = sim_dm_find(dm, &pmode);
        const lwm2m_record_t *id = sim_dm_find(dm, &pid), *key = sim_dm_find(dm, &pkey), *uri = sim_dm_find(dm, &puri);
        if (!bs || bs->v.b || !mode || mode->v.i != SIM_SEC_PSK || !id || !key)
            continue;
        c->found++;
        c->id_len = id->nbytes < sizeof c->id ? id->nbytes : sizeof c->id;
        memcpy(c->id, id->bytes, c->id_len);
        c->key_len = key->nbytes < sizeof c->key ? key->nbytes : sizeof c->key;
        memcpy(c->key, key->bytes, c->key_len);
        snprintf(c->uri, sizeof c->uri, "%.*s", uri ? (int)uri->nbytes : 0, uri ? (const char *)uri->bytes : "");
    }
}

/* --------------------------------------------------------- REST helpers */
static int64_t device_id_of(const char *ep)
{
    for (int i = 0; i < WAIT_POLLS; i++) {
        json_t *d = harness_device(&H, ep);
        if (d) {
            int64_t id = json_integer_value(json_object_get(d, "id"));
            json_decref(d);
            return id;
        }
        usleep(50000);
    }
    fail_msg("no device '%s'", ep);
    return 0;
}

/* GET /registration until it answers `want` (200 or 404); returns the body. */
static json_t *wait_registration(int64_t dev, long want)
{
    long st = 0;
    for (int i = 0; i < WAIT_POLLS; i++) {
        json_t *r = NULL;
        st = harness_httpf(&H, "GET", NULL, &r, "/api/v1/devices/%lld/registration", (long long)dev);
        if (st == want)
            return r;
        json_decref(r);
        usleep(50000);
    }
    fail_msg("device %lld: /registration answered %ld, expected %ld", (long long)dev, st, want);
    return NULL;
}

static int64_t bootstrap_group(void)
{
    json_t *r = NULL;
    assert_int_equal(harness_http(&H, "GET", "/api/v1/groups?limit=1000", NULL, &r), 200);
    json_t *items = json_is_array(r) ? r : json_object_get(r, "items"), *it;
    size_t i;
    int64_t id = 0;
    json_array_foreach(items, i, it)
    {
        if (json_is_true(json_object_get(it, "bootstrap")))
            id = json_integer_value(json_object_get(it, "id"));
    }
    json_decref(r);
    assert_true(id > 0);
    return id;
}

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

/* Polls the device's task reports until the one of `task` has status `want`. */
static void wait_report(int64_t dev, int64_t task, const char *want)
{
    char last[64] = "none";
    for (int i = 0; i < WAIT_POLLS; i++) {
        json_t *r = NULL;
        harness_httpf(&H, "GET", NULL, &r, "/api/v1/devices/%lld/task-reports", (long long)dev);
        json_t *it;
        size_t k;
        int ok = 0;
        json_array_foreach(json_object_get(r, "items"), k, it)
        {
            const char *st = json_string_value(json_object_get(it, "status"));
            if (json_integer_value(json_object_get(it, "taskId")) == task && st) {
                snprintf(last, sizeof last, "%s", st);
                ok |= !strcmp(st, want);
            }
        }
        json_decref(r);
        if (ok)
            return;
        usleep(50000);
    }
    fail_msg("device %lld task %lld: report %s, expected %s", (long long)dev, (long long)task, last, want);
}

/* How many bootstrap events of `status` ("finished", "failed", ...) the
 * server published for the device (its event ring holds them all here). */
static int bootstrap_events(int64_t dev, const char *status)
{
    json_t *r = NULL;
    long st = harness_httpf(&H, "GET", NULL, &r,
                            "/api/v1/events?format=json&since=0&limit=1000&type=bootstrap&device=%lld",
                            (long long)dev);
    assert_int_equal(st, 200);
    json_t *it;
    size_t k;
    int n = 0;
    json_array_foreach(json_object_get(r, "items"), k, it)
    {
        const char *s = json_string_value(json_object_get(json_object_get(it, "data"), "status"));
        n += s && !strcmp(s, status);
    }
    json_decref(r);
    return n;
}

/* The device's last bootstrap as stored (unix ms, 0 = never); waits until
 * its status is "success" and it is later than `after`. */
static int64_t wait_bootstrap_after(int64_t dev, int64_t after)
{
    int64_t at = 0;
    char status[32] = "";
    for (int i = 0; i < WAIT_POLLS; i++) {
        db_device_t d = {0};
        assert_int_equal(db_device_get(H.db, dev, &d), 0);
        at = d.last_bootstrap_at;
        snprintf(status, sizeof status, "%s", d.last_bootstrap_status ? d.last_bootstrap_status : "");
        db_device_free(&d);
        if (at > after && !strcmp(status, "success"))
            return at;
        usleep(50000);
    }
    fail_msg("device %lld: last bootstrap at %lld (%s), expected a successful one after %lld", (long long)dev,
             (long long)at, status, (long long)after);
    return 0;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
    out[2 * n] = 0;
}

static void sim_direct_config(sim_config_t *c, char *uri, size_t cap, const char *scheme, uint16_t port,
                              const char *prefix)
{
    snprintf(uri, cap, "%s://127.0.0.1:%u", scheme, port);
    sim_config_init(c);
    c->dm_server_uri = uri;
    c->count = 1;
    c->ep_prefix = prefix;
    c->timeout_ms = 5000;
    c->lifetime_s = 300;
}

/* The bootstrap group's task of the journey: the seed's "additional logic"
 * recipe naming management server `srv`, with a deferred <execute> that runs
 * in the first management session. Runs in every bootstrap session. */
static int64_t journey_task(int64_t srv, const char *name)
{
    char xml[512];
    snprintf(xml, sizeof xml,
             "<config>\n"
             "  <lwm2mBootstrapCleanse />\n"
             "  <lwm2mBootstrapConfiguration serverId=\"%lld\" />\n"
             "  <set key=\"Device.Connectivity Statistics.0.Collection Period\" value=\"60\" />\n"
             "  <execute key=\"Device.Connectivity Statistics.0.Start\" />\n"
             "  <lwm2mBootstrap performBootstrapFinish=\"true\" />\n"
             "</config>\n",
             (long long)srv);
    return create_task(bootstrap_group(), name, xml);
}

/* One device that bootstraps at lwdm's Bootstrap-Server (plain CoAP) and
 * then registers to the management server it was given. */
static void journey_sim_config(sim_config_t *c, char *uri, size_t cap, const char *prefix)
{
    snprintf(uri, cap, "coap://127.0.0.1:%u", H.bs_coap_port);
    sim_config_init(c);
    c->server_uri = uri;
    c->count = 1;
    c->ep_prefix = prefix;
    c->register_after_bootstrap = true;
    c->timeout_ms = 8000;
    c->retries = 2;
}

/* -------------------------------------------------------------- fixture */
static int setup(void **state)
{
    (void)state;
    memset(&H, 0, sizeof H);
    harness_opts_t o = {.bs_timeout_s = 8, .queue_awake_ms = 300};
    harness_start(&H, &o);
    harness_bs_settings(&H, 0, NULL, 0, 1); /* unknown devices accepted; the tests bring their own logic */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    harness_cleanup(&H);
    return 0;
}

/* ------------------------------------------------------------------ tests */

/* Bootstrap with the "additional logic" recipe naming the PSK management
 * server, then Register over DTLS with the generated per-device key. */
static void test_full_journey(void **state)
{
    (void)state;
    int64_t psk_srv = harness_server_id(&H, "lwdm management (PSK)");
    int64_t task = journey_task(psk_srv, "journey");

    char uri[64];
    sim_config_t c;
    journey_sim_config(&c, uri, sizeof uri, "journey-");
    simthr_t t;
    sim_thread_start(&t, &c);
    snap_t s = wait_registered(&t, 0);
    int64_t dev = device_id_of("journey-000001");

    /* registered over DTLS */
    json_t *reg = wait_registration(dev, 200);
    assert_true(json_is_true(json_object_get(reg, "secure")));
    assert_string_equal(json_string_value(json_object_get(reg, "location")), s.location);
    json_decref(reg);

    /* what the device holds is what lwdm stored for it */
    dmcred_t dc = {.index = 0};
    sim_sync(&t, dmcred_fn, &dc);
    assert_int_equal(dc.found, 1);
    char want_uri[64];
    snprintf(want_uri, sizeof want_uri, "coaps://127.0.0.1:%u", H.coaps_port);
    assert_string_equal(dc.uri, want_uri);
    db_credentials_t sc = {0};
    assert_int_equal(db_device_server_cred_get(H.db, dev, psk_srv, &sc), 0);
    assert_non_null(sc.psk_identity);
    assert_int_equal(dc.id_len, strlen(sc.psk_identity));
    assert_memory_equal(dc.id, sc.psk_identity, dc.id_len);
    assert_int_equal(dc.key_len, sc.psk_len);
    assert_memory_equal(dc.key, sc.psk, sc.psk_len);
    assert_int_equal(sc.psk_len, 16);
    /* ... and what the API shows */
    json_t *dj = harness_device(&H, "journey-000001");
    assert_non_null(dj);
    json_t *it, *found = NULL;
    size_t k;
    json_array_foreach(json_object_get(dj, "serverCredentials"), k, it)
    {
        if (json_integer_value(json_object_get(it, "serverId")) == psk_srv)
            found = it;
    }
    assert_non_null(found);
    assert_string_equal(json_string_value(json_object_get(found, "pskIdentity")), sc.psk_identity);
    assert_true(json_is_true(json_object_get(found, "pskSet")));
    json_decref(dj);
    db_credentials_free(&sc);

    /* the deferred execute ran in the management session: the report turns
     * SUCCESS and the device received POST /7/0/6 */
    wait_report(dev, task, "SUCCESS");
    s = snap(&t, 0);
    assert_string_equal(s.last_dm_path, "/7/0/6");
    assert_int_equal(s.last_dm_method, SIM_POST);
    assert_int_equal(s.last_dm_code, LWM2M_CODE(2, 4));

    /* a REST read reaches the device over DTLS, with typed values */
    json_t *r = NULL;
    assert_int_equal(harness_httpf(&H, "GET", NULL, &r, "/api/v1/devices/%lld/data/3/0", (long long)dev), 200);
    int manuf = 0;
    json_array_foreach(json_object_get(r, "records"), k, it)
    {
        if (!strcmp(json_string_value(json_object_get(it, "path")) ?: "", "/3/0/0")) {
            assert_string_equal(json_string_value(json_object_get(it, "type")), "string");
            assert_true(json_is_string(json_object_get(it, "value")));
            manuf = 1;
        }
        if (!strcmp(json_string_value(json_object_get(it, "path")) ?: "", "/3/0/2"))
            assert_string_equal(json_string_value(json_object_get(it, "value")), "journey-000001");
    }
    assert_true(manuf);
    json_decref(r);
    s = snap(&t, 0);
    assert_string_equal(s.last_dm_path, "/3/0");
    sim_thread_free(&t);
}

/* A task created while a device is registered runs at its next Update. Updates
 * of a device with nothing to run skip the task lookup until a write to tasks,
 * groups or reports is committed (db_tasks_generation): this fails if that
 * skip outlives the task's creation. */
static void test_task_created_later_runs_on_update(void **state)
{
    (void)state;
    char uri[64];
    sim_config_t c;
    sim_direct_config(&c, uri, sizeof uri, "coap", H.coap_port, "late-");
    simthr_t t;
    sim_thread_start(&t, &c);
    wait_registered(&t, 0);
    int64_t dev = device_id_of("late-000001");
    json_decref(wait_registration(dev, 200));
    /* two Updates with no task: the second one skips the lookup */
    idx_call_t uc = {.index = 0};
    for (int i = 0; i < 2; i++) {
        unsigned before = snap(&t, 0).updates;
        sim_sync(&t, update_fn, &uc);
        assert_int_equal(uc.rc, 0);
        for (int k = 0; k < WAIT_POLLS && snap(&t, 0).updates == before; k++)
            usleep(20000);
    }
    assert_string_equal(snap(&t, 0).last_dm_path, "");

    json_t *b = json_pack("{s:s,s:s}", "name", "late task", "config",
                          "<config>\n  <execute key=\"Device.Connectivity Statistics.0.Start\" />\n</config>\n");
    char *txt = json_dumps(b, 0);
    json_t *r = NULL;
    assert_int_equal(harness_httpf(&H, "POST", txt, &r, "/api/v1/devices/%lld/tasks", (long long)dev), 201);
    int64_t task = json_integer_value(json_object_get(r, "id"));
    json_decref(r);
    json_decref(b);
    free(txt);

    sim_sync(&t, update_fn, &uc);
    assert_int_equal(uc.rc, 0);
    wait_report(dev, task, "SUCCESS");
    snap_t s = snap(&t, 0);
    assert_string_equal(s.last_dm_path, "/7/0/6");
    assert_int_equal(s.last_dm_method, SIM_POST);
    sim_thread_free(&t);
}

/* Queue mode: a request for a sleeping device is queued (202) and delivered
 * at its next Update. The server's awake window (300 ms) is shorter than the
 * device's (1000 ms), so once the device sleeps the server knows it is asleep. */
static void test_queue_mode_delivery(void **state)
{
    (void)state;
    char uri[64];
    sim_config_t c;
    sim_direct_config(&c, uri, sizeof uri, "coap", H.coap_port, "queue-");
    c.queue_mode = true;
    c.awake_ms = 1000;
    simthr_t t;
    sim_thread_start(&t, &c);
    wait_registered(&t, 0);
    int64_t dev = device_id_of("queue-000001");
    json_t *reg = wait_registration(dev, 200);
    assert_true(json_is_true(json_object_get(reg, "queueMode")));
    assert_true(json_is_false(json_object_get(reg, "secure")));
    json_decref(reg);

    snap_t s;
    int slept = 0;
    for (int i = 0; i < WAIT_POLLS && !slept; i++) {
        s = snap(&t, 0);
        slept = s.sleeping;
        if (!slept)
            usleep(50000);
    }
    assert_true(slept);
    unsigned updates_before = s.updates;

    json_t *r = NULL;
    assert_int_equal(harness_httpf(&H, "GET", NULL, &r, "/api/v1/devices/%lld/data/3/0/9", (long long)dev), 202);
    int64_t rid = json_integer_value(json_object_get(r, "requestId"));
    assert_true(rid > 0);
    assert_string_equal(json_string_value(json_object_get(r, "status")), "queued");
    json_decref(r);
    /* still queued while the device sleeps */
    assert_int_equal(
        harness_httpf(&H, "GET", NULL, &r, "/api/v1/devices/%lld/requests/%lld", (long long)dev, (long long)rid), 200);
    assert_string_equal(json_string_value(json_object_get(r, "status")), "queued");
    json_decref(r);

    idx_call_t uc = {.index = 0};
    sim_sync(&t, update_fn, &uc);
    assert_int_equal(uc.rc, 0);

    const char *st = NULL;
    for (int i = 0; i < WAIT_POLLS; i++) {
        r = NULL;
        harness_httpf(&H, "GET", NULL, &r, "/api/v1/devices/%lld/requests/%lld", (long long)dev, (long long)rid);
        st = json_string_value(json_object_get(r, "status"));
        if (st && strcmp(st, "queued") && strcmp(st, "sent"))
            break;
        json_decref(r);
        r = NULL;
        usleep(50000);
    }
    assert_non_null(r);
    assert_string_equal(json_string_value(json_object_get(r, "status")), "done");
    json_t *res = json_object_get(r, "result");
    json_t *val = json_object_get(res, "value");
    assert_true(json_is_integer(val));
    assert_true(json_integer_value(val) >= 0 && json_integer_value(val) <= 100); /* Battery Level */
    json_decref(r);
    s = snap(&t, 0);
    assert_true(s.updates > updates_before);
    assert_string_equal(s.last_dm_path, "/3/0/9");
    sim_thread_free(&t);
}

/* Management PSK credentials set through REST: the right key registers, a
 * wrong key or an unknown identity never does. */
static void test_wrong_credentials_refused(void **state)
{
    (void)state;
    static const uint8_t good[16] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
                                     0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xf0, 0x01};
    uint8_t bad[16];
    memcpy(bad, good, sizeof bad);
    bad[15] ^= 0xff;
    char gh[40], body[256];
    hex(good, sizeof good, gh);
    snprintf(body, sizeof body,
             "{\"endpoint\":\"cred-000001\",\"managementCredentials\":{\"securityMode\":\"psk\","
             "\"pskIdentity\":\"cred-000001\",\"psk\":\"%s\"}}",
             gh);
    json_t *r = NULL;
    assert_int_equal(harness_http(&H, "POST", "/api/v1/devices", body, &r), 201);
    int64_t dev = json_integer_value(json_object_get(r, "id"));
    json_decref(r);

    char uri[64];
    sim_config_t c;
    /* wrong key: the handshake fails, nothing registers */
    sim_direct_config(&c, uri, sizeof uri, "coaps", H.coaps_port, "cred-");
    c.psk_key = bad;
    c.psk_key_len = sizeof bad;
    c.timeout_ms = 2000;
    sim_t *sim = NULL;
    assert_int_equal(sim_new(&c, &sim), 0);
    sim_run(sim, 10000);
    sim_status_t st;
    sim_device_status(sim_device(sim, 0), &st);
    assert_int_equal(st.state, SIM_FAILED);
    assert_false(st.registered);
    assert_int_equal(st.registrations, 0);
    sim_free(&sim);
    r = wait_registration(dev, 404);
    json_decref(r);

    /* unknown identity, right key: refused too */
    sim_direct_config(&c, uri, sizeof uri, "coaps", H.coaps_port, "cred-");
    c.psk_identity_prefix = "nobody-";
    c.psk_key = good;
    c.psk_key_len = sizeof good;
    c.timeout_ms = 2000;
    assert_int_equal(sim_new(&c, &sim), 0);
    sim_run(sim, 10000);
    sim_device_status(sim_device(sim, 0), &st);
    assert_int_equal(st.state, SIM_FAILED);
    assert_int_equal(st.registrations, 0);
    sim_free(&sim);
    r = wait_registration(dev, 404);
    json_decref(r);
    assert_null(harness_device(&H, "nobody-000001"));

    /* plain CoAP for a device with PSK credentials: refused (4.03) */
    sim_direct_config(&c, uri, sizeof uri, "coap", H.coap_port, "cred-");
    c.timeout_ms = 2000;
    assert_int_equal(sim_new(&c, &sim), 0);
    sim_run(sim, 10000);
    sim_device_status(sim_device(sim, 0), &st);
    assert_int_equal(st.state, SIM_FAILED);
    assert_int_equal(st.registrations, 0);
    sim_free(&sim);
    r = wait_registration(dev, 404);
    json_decref(r);

    /* control: the right key registers, over DTLS */
    sim_direct_config(&c, uri, sizeof uri, "coaps", H.coaps_port, "cred-");
    c.psk_key = good;
    c.psk_key_len = sizeof good;
    simthr_t t;
    sim_thread_start(&t, &c);
    wait_registered(&t, 0);
    r = wait_registration(dev, 200);
    assert_true(json_is_true(json_object_get(r, "secure")));
    json_decref(r);
    sim_thread_free(&t);
    /* sim_stop de-registered it */
    json_decref(wait_registration(dev, 404));
}

/* A restart keeps the registration; the device's next Update brings a
 * session, and REST reads work again. */
static void test_restart_keeps_registration(void **state)
{
    (void)state;
    char uri[64];
    sim_config_t c;
    sim_direct_config(&c, uri, sizeof uri, "coap", H.coap_port, "restart-");
    simthr_t t;
    sim_thread_start(&t, &c);
    snap_t s = wait_registered(&t, 0);
    int64_t dev = device_id_of("restart-000001");
    json_t *reg = wait_registration(dev, 200);
    char loc[32];
    snprintf(loc, sizeof loc, "%s", json_string_value(json_object_get(reg, "location")) ?: "");
    assert_string_equal(loc, s.location);
    json_decref(reg);

    harness_stop(&H);
    harness_opts_t o = {.bs_timeout_s = 8, .queue_awake_ms = 300, .keep_coap_ports = 1};
    harness_start(&H, &o);
    reg = wait_registration(dev, 200);
    assert_string_equal(json_string_value(json_object_get(reg, "location")), loc);
    json_decref(reg);

    unsigned updates_before = snap(&t, 0).updates;
    idx_call_t uc = {.index = 0};
    sim_sync(&t, update_fn, &uc);
    assert_int_equal(uc.rc, 0);
    for (int i = 0; i < WAIT_POLLS; i++) {
        s = snap(&t, 0);
        if (s.updates > updates_before)
            break;
        usleep(50000);
    }
    assert_true(s.updates > updates_before);
    assert_true(s.registered);
    assert_string_equal(s.location, loc); /* the Update was accepted: same registration */

    /* the read is answered (after the Update the server has a session) */
    json_t *r = NULL;
    long st = 0;
    for (int i = 0; i < WAIT_POLLS; i++) {
        r = NULL;
        st = harness_httpf(&H, "GET", NULL, &r, "/api/v1/devices/%lld/data/3/0/0", (long long)dev);
        if (st == 200)
            break;
        json_decref(r);
        r = NULL;
        usleep(50000);
    }
    assert_int_equal(st, 200);
    assert_string_equal(json_string_value(json_object_get(r, "type")) ?: "string", "string");
    assert_true(json_is_string(json_object_get(r, "value")));
    json_decref(r);
    sim_thread_free(&t);
}

/* Server-initiated bootstrap (Core TS 1.1.1 §5.3.3, Bootstrap-Request Trigger
 * /1/x/9): POST /api/v1/devices/{id}/bootstrap on a registered LwM2M 1.1
 * device makes it bootstrap again at lwdm's Bootstrap-Server and register
 * again. Shown by what lwdm records (a newer successful last bootstrap, a
 * second "finished" bootstrap event, a new registration location) and by
 * what the device did (a second Register answered 2.01). */
static void test_bootstrap_trigger_round_trip(void **state)
{
    (void)state;
    int64_t psk_srv = harness_server_id(&H, "lwdm management (PSK)");
    int64_t task = journey_task(psk_srv, "rebootstrap");
    char uri[64];
    sim_config_t c;
    journey_sim_config(&c, uri, sizeof uri, "rebs-");
    c.version = LWM2M_V1_1;
    simthr_t t;
    sim_thread_start(&t, &c);
    snap_t s = wait_registered(&t, 0);
    assert_int_equal(s.registrations, 1);
    int64_t dev = device_id_of("rebs-000001");
    json_t *reg = wait_registration(dev, 200);
    assert_string_equal(json_string_value(json_object_get(reg, "lwm2mVersion")), "1.1");
    char loc1[32];
    snprintf(loc1, sizeof loc1, "%s", json_string_value(json_object_get(reg, "location")) ?: "");
    assert_string_equal(loc1, s.location);
    json_decref(reg);
    int64_t bs1 = wait_bootstrap_after(dev, 0);
    assert_int_equal(bootstrap_events(dev, "finished"), 1);
    /* the first management session is over (its deferred execute ran) */
    wait_report(dev, task, "SUCCESS");

    json_t *r = NULL;
    long st = harness_httpf(&H, "POST", NULL, &r, "/api/v1/devices/%lld/bootstrap", (long long)dev);
    if (st != 200) {
        char *e = r ? json_dumps(r, 0) : NULL;
        fail_msg("POST bootstrap: %ld %s", st, e ? e : "");
    }
    json_decref(r);

    /* the device bootstraps again ... */
    int64_t bs2 = wait_bootstrap_after(dev, bs1);
    assert_true(bs2 > bs1);
    int fin = 0;
    for (int i = 0; i < WAIT_POLLS && (fin = bootstrap_events(dev, "finished")) < 2; i++)
        usleep(50000);
    assert_int_equal(fin, 2);
    assert_int_equal(bootstrap_events(dev, "failed"), 0);
    /* ... and registers again: a second Register, a new location */
    for (int i = 0; i < WAIT_POLLS; i++) {
        s = snap(&t, 0);
        if (s.registrations >= 2 && s.registered && s.location[0])
            break;
        if (s.state == SIM_FAILED)
            fail_msg("device failed: %s", s.reason);
        usleep(50000);
    }
    assert_int_equal(s.registrations, 2);
    assert_true(s.registered);
    assert_string_not_equal(s.location, loc1);
    char loc2[32] = "";
    for (int i = 0; i < WAIT_POLLS; i++) {
        reg = wait_registration(dev, 200);
        snprintf(loc2, sizeof loc2, "%s", json_string_value(json_object_get(reg, "location")) ?: "");
        json_decref(reg);
        if (strcmp(loc2, loc1))
            break;
        usleep(50000);
    }
    assert_string_equal(loc2, s.location);

    /* the new registration is usable: a read reaches the device */
    assert_int_equal(harness_httpf(&H, "GET", NULL, &r, "/api/v1/devices/%lld/data/3/0/2", (long long)dev), 200);
    assert_string_equal(json_string_value(json_object_get(r, "value")), "rebs-000001");
    json_decref(r);
    sim_thread_free(&t);
}

int main(void)
{
    coap_startup(); /* once, in the main thread, before the server and the sims */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_journey, setup, teardown),
        cmocka_unit_test_setup_teardown(test_task_created_later_runs_on_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_mode_delivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_credentials_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_keeps_registration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bootstrap_trigger_round_trip, setup, teardown),
    };
    return cmocka_run_group_tests_name("integration_registry", tests, NULL, NULL);
}
