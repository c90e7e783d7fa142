/* The simulator's registration side over real loopback sockets: a tiny
 * LwM2M management server made of libcoap runs in the test thread, the
 * simulator runs in its own thread and is driven through sim_call, as an
 * integration test would drive it next to lwdm. Checks what the server
 * sees: Register query and payload, Updates (periodic and asked for),
 * Observe answers and notifications (sequence, CON/NON, RST cancels), queue
 * mode (sleep, a new session for the Update), De-register on sim_stop;
 * CoAP over TCP and TLS-PSK (RFC 8323): binding T, requests one after another
 * on one connection (every message id is 0 there), a closed connection
 * replaced by a new one for the next Update. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <coap3/coap.h>

#include "sim/sim.h"

#define C(cls, d) LWM2M_CODE(cls, d)

/* ------------------------------------------------------------ fake server */

typedef struct {
    coap_context_t *ctx;
    int port;
    coap_session_t *sess;        /* the device's latest session, referenced */
    int sessions;                /* distinct sessions seen on /rd */
    char reg_query[256], reg_payload[512];
    int registers, updates, deletes;
    char update_query[64];
    /* our own request */
    uint8_t tok[8];
    size_t toklen;
    int answer_code;             /* of our last request, 0 while waiting */
    char answer[256];
    int answer_obs;              /* Observe option of the answer, -1 if none */
    /* notifications */
    int notes;
    int note_obs[16], note_type[16];
    char note_payload[16][32];
    bool reject_notes;           /* answer notifications with RST */
} srv_t;

static srv_t g_srv;

static void copy_text(char *dst, size_t cap, const uint8_t *s, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

static void note_session(coap_session_t *s)
{
    if (g_srv.sess == s)
        return;
    if (g_srv.sess)
        coap_session_release(g_srv.sess);
    g_srv.sess = coap_session_reference(s);
    g_srv.sessions++;
}

static void on_rd(coap_resource_t *r, coap_session_t *s, const coap_pdu_t *req, const coap_string_t *q,
                  coap_pdu_t *resp)
{
    (void)r;
    coap_string_t *path = coap_get_uri_path(req);
    size_t len;
    const uint8_t *data;
    int code = coap_pdu_get_code(req);
    note_session(s);
    if (path && path->length == 2 && code == COAP_REQUEST_CODE_POST) {
        g_srv.registers++;
        copy_text(g_srv.reg_query, sizeof g_srv.reg_query, q ? q->s : (const uint8_t *)"", q ? q->length : 0);
        g_srv.reg_payload[0] = '\0';
        if (coap_get_data(req, &len, &data))
            copy_text(g_srv.reg_payload, sizeof g_srv.reg_payload, data, len);
        coap_add_option(resp, COAP_OPTION_LOCATION_PATH, 2, (const uint8_t *)"rd");
        coap_add_option(resp, COAP_OPTION_LOCATION_PATH, 1, (const uint8_t *)"7");
        coap_pdu_set_code(resp, COAP_RESPONSE_CODE(201));
    } else if (code == COAP_REQUEST_CODE_POST) {
        g_srv.updates++;
        copy_text(g_srv.update_query, sizeof g_srv.update_query, q ? q->s : (const uint8_t *)"", q ? q->length : 0);
        coap_pdu_set_code(resp, COAP_RESPONSE_CODE(204));
    } else if (code == COAP_REQUEST_CODE_DELETE) {
        g_srv.deletes++;
        coap_pdu_set_code(resp, COAP_RESPONSE_CODE(202));
    }
    coap_delete_string(path);
}

static int opt_val(const coap_pdu_t *pdu, coap_option_num_t num)
{
    coap_opt_iterator_t it;
    coap_opt_t *o = coap_check_option(pdu, num, &it);
    return o ? (int)coap_decode_var_bytes(coap_opt_value(o), coap_opt_length(o)) : -1;
}

static coap_response_t on_response(coap_session_t *s, const coap_pdu_t *sent, const coap_pdu_t *rcv,
                                   const coap_mid_t mid)
{
    (void)s;
    (void)sent;
    (void)mid;
    coap_bin_const_t tok = coap_pdu_get_token(rcv);
    if (tok.length != g_srv.toklen || memcmp(tok.s, g_srv.tok, tok.length) != 0)
        return COAP_RESPONSE_FAIL;
    size_t len = 0;
    const uint8_t *data = NULL;
    coap_get_data(rcv, &len, &data);
    if (!g_srv.answer_code) {
        g_srv.answer_code = coap_pdu_get_code(rcv);
        g_srv.answer_obs = opt_val(rcv, COAP_OPTION_OBSERVE);
        copy_text(g_srv.answer, sizeof g_srv.answer, data ? data : (const uint8_t *)"", len);
        return COAP_RESPONSE_OK;
    }
    if (g_srv.reject_notes)
        return COAP_RESPONSE_FAIL; /* libcoap answers RST */
    if (g_srv.notes < 16) {
        g_srv.note_obs[g_srv.notes] = opt_val(rcv, COAP_OPTION_OBSERVE);
        g_srv.note_type[g_srv.notes] = coap_pdu_get_type(rcv);
        copy_text(g_srv.note_payload[g_srv.notes], sizeof g_srv.note_payload[0], data ? data : (const uint8_t *)"",
                  len);
    }
    g_srv.notes++;
    return COAP_RESPONSE_OK;
}

static const uint8_t k_psk[] = "0123456789abcdef";

static const coap_bin_const_t *srv_psk(coap_bin_const_t *identity, coap_session_t *s, void *arg)
{
    (void)s;
    (void)arg;
    static coap_bin_const_t key = {16, k_psk};
    return identity->length == 10 && !memcmp(identity->s, "sim-000001", 10) ? &key : NULL; /* identity = endpoint */
}

static void srv_start_proto(coap_proto_t proto)
{
    memset(&g_srv, 0, sizeof g_srv);
    g_srv.ctx = coap_new_context(NULL);
    assert_non_null(g_srv.ctx);
    if (proto == COAP_PROTO_TLS) {
        coap_dtls_spsk_t sp;
        memset(&sp, 0, sizeof sp);
        sp.version = COAP_DTLS_SPSK_SETUP_VERSION;
        sp.validate_id_call_back = srv_psk;
        assert_true(coap_context_set_psk2(g_srv.ctx, &sp));
    }
    coap_register_response_handler(g_srv.ctx, on_response);
    coap_resource_t *rd = coap_resource_init(coap_make_str_const("rd"), 0);
    coap_register_handler(rd, COAP_REQUEST_POST, on_rd);
    coap_add_resource(g_srv.ctx, rd);
    coap_resource_t *u = coap_resource_unknown_init2(on_rd, 0);
    coap_register_handler(u, COAP_REQUEST_POST, on_rd);
    coap_register_handler(u, COAP_REQUEST_DELETE, on_rd);
    coap_add_resource(g_srv.ctx, u);
    for (int tries = 0; tries < 50; tries++) {
        int port = 20000 + (int)((getpid() * 7 + tries * 131) % 30000);
        coap_address_t a;
        coap_address_init(&a);
        a.addr.sin.sin_family = AF_INET;
        a.addr.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.addr.sin.sin_port = htons((uint16_t)port);
        a.size = sizeof a.addr.sin;
        if (coap_new_endpoint(g_srv.ctx, &a, proto)) {
            g_srv.port = port;
            return;
        }
    }
    fail_msg("no free port");
}

static void srv_start(void) { srv_start_proto(COAP_PROTO_UDP); }

static void srv_stop(void)
{
    if (g_srv.sess)
        coap_session_release(g_srv.sess);
    coap_free_context(g_srv.ctx);
    g_srv.ctx = NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* runs the server until *cond is true (or 5 s pass) */
#define RUN_UNTIL(cond)                                                                                               \
    do {                                                                                                              \
        double end_ = now_s() + 5;                                                                                    \
        while (!(cond) && now_s() < end_)                                                                             \
            coap_io_process(g_srv.ctx, 10);                                                                           \
        if (!(cond))                                                                                                  \
            fail_msg("timed out waiting for %s", #cond);                                                              \
    } while (0)

/* GET path [Observe obs] [Accept acc] from the server to the device */
static void srv_get(const char *path, int obs, int acc)
{
    coap_pdu_t *pdu = coap_new_pdu(COAP_MESSAGE_CON, COAP_REQUEST_CODE_GET, g_srv.sess);
    assert_non_null(pdu);
    if (obs != 1)
        coap_session_new_token(g_srv.sess, &g_srv.toklen, g_srv.tok);
    coap_add_token(pdu, g_srv.toklen, g_srv.tok);
    uint8_t b[4];
    if (obs >= 0)
        coap_add_option(pdu, COAP_OPTION_OBSERVE, coap_encode_var_safe(b, sizeof b, (unsigned)obs), b);
    for (const char *p = path; *p;) {
        const char *sl = strchr(p, '/');
        size_t l = sl ? (size_t)(sl - p) : strlen(p);
        coap_add_option(pdu, COAP_OPTION_URI_PATH, l, (const uint8_t *)p);
        p += l + (sl ? 1 : 0);
    }
    if (acc >= 0)
        coap_add_option(pdu, COAP_OPTION_ACCEPT, coap_encode_var_safe(b, sizeof b, (unsigned)acc), b);
    g_srv.answer_code = 0;
    assert_true(coap_send(g_srv.sess, pdu) != COAP_INVALID_MID);
}

/* ------------------------------------------------------------ the sim thread */

typedef struct {
    sim_t *sim;
    volatile int stop;
    pthread_t th;
} runner_t;

static void *run_sim(void *arg)
{
    runner_t *r = arg;
    sim_start(r->sim);
    while (!r->stop)
        sim_step(r->sim, 20);
    sim_stop(r->sim); /* de-registers */
    return NULL;
}

typedef struct {
    lwm2m_record_t rec;
    int rc;
    volatile int done;
    sim_status_t st;
    int op; /* 0 set_value, 1 update_now, 2 status, 3 sleep */
} call_t;

static void in_loop(sim_t *sim, void *arg)
{
    call_t *c = arg;
    switch (c->op) {
    case 0: c->rc = sim_device_set_value(sim, 0, &c->rec); break;
    case 1: c->rc = sim_device_update_now(sim, 0); break;
    case 2:
        sim_device_status(sim_device(sim, 0), &c->st);
        c->rc = 0;
        break;
    case 3: c->rc = sim_device_sleep(sim, 0); break;
    }
    __atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
}

/* runs c in the loop thread and waits, serving the fake server meanwhile */
static int call(runner_t *r, call_t *c)
{
    c->done = 0;
    assert_int_equal(sim_call(r->sim, in_loop, c), 0);
    RUN_UNTIL(__atomic_load_n(&c->done, __ATOMIC_ACQUIRE));
    return c->rc;
}

static int set_battery(runner_t *r, int level)
{
    call_t c = {.op = 0};
    c.rec.path = lwm2m_path_make(3, 3, 0, 9, 0);
    c.rec.type = LWM2M_T_INTEGER;
    c.rec.v.i = level;
    return call(r, &c);
}

static void status(runner_t *r, sim_status_t *st)
{
    call_t c = {.op = 2};
    call(r, &c);
    *st = c.st;
}

static void start_runner_scheme(runner_t *r, sim_config_t *cfg, const char *scheme)
{
    char uri[64];
    snprintf(uri, sizeof uri, "%s://127.0.0.1:%d", scheme, g_srv.port);
    cfg->dm_server_uri = uri;
    memset(r, 0, sizeof *r);
    assert_int_equal(sim_new(cfg, &r->sim), 0);
    assert_int_equal(pthread_create(&r->th, NULL, run_sim, r), 0);
}

static void start_runner(runner_t *r, sim_config_t *cfg) { start_runner_scheme(r, cfg, "coap"); }

static void stop_runner(runner_t *r)
{
    r->stop = 1;
    /* serve the De-register while the sim thread stops */
    double end = now_s() + 3;
    while (!g_srv.deletes && now_s() < end)
        coap_io_process(g_srv.ctx, 10);
    pthread_join(r->th, NULL);
    assert_int_equal(sim_call(r->sim, in_loop, NULL), -ESHUTDOWN);
    sim_free(&r->sim);
}

/* ------------------------------------------------------------ tests */

static void test_register_observe_notify(void **state)
{
    (void)state;
    srv_start();
    sim_config_t cfg;
    sim_config_init(&cfg);
    cfg.count = 1;
    cfg.lifetime_s = 60;
    cfg.update_interval_ms = 400;
    cfg.tick_ms = 0; /* frozen values: only set_value changes them */
    cfg.con_notify_every = 2;
    runner_t r;
    start_runner(&r, &cfg);

    RUN_UNTIL(g_srv.registers == 1);
    assert_string_equal(g_srv.reg_query, "ep=sim-000001&lt=60&lwm2m=1.1&b=U");
    assert_non_null(strstr(g_srv.reg_payload, "</>;rt=\"oma.lwm2m\";ct="));
    assert_non_null(strstr(g_srv.reg_payload, "</1/0>,</2>,</3>;ver=1.1,</3/0>,</4/0>,</7/0>"));
    assert_null(strstr(g_srv.reg_payload, "</0"));
    sim_status_t st;
    RUN_UNTIL((status(&r, &st), st.state == SIM_OK));
    assert_true(st.registered);
    assert_string_equal(st.location, "/rd/7");
    assert_int_equal(st.registrations, 1);

    /* Observe: 2.05 with Observe, then a notification per change */
    srv_get("3/0/9", 0, LWM2M_CF_TEXT);
    RUN_UNTIL(g_srv.answer_code);
    assert_int_equal(g_srv.answer_code, C(2, 5));
    assert_int_equal(g_srv.answer_obs, 1);
    assert_string_equal(g_srv.answer, "100");
    assert_int_equal(set_battery(&r, 42), 0);
    RUN_UNTIL(g_srv.notes == 1);
    assert_string_equal(g_srv.note_payload[0], "42");
    assert_int_equal(g_srv.note_obs[0], 2);
    assert_int_equal(g_srv.note_type[0], COAP_MESSAGE_NON);
    assert_int_equal(set_battery(&r, 41), 0);
    RUN_UNTIL(g_srv.notes == 2);
    assert_string_equal(g_srv.note_payload[1], "41");
    assert_int_equal(g_srv.note_obs[1], 3);
    assert_int_equal(g_srv.note_type[1], COAP_MESSAGE_CON);
    /* the same value again: nothing */
    assert_int_equal(set_battery(&r, 41), 0);
    /* periodic Updates and one asked for */
    RUN_UNTIL(g_srv.updates >= 1);
    int ups = g_srv.updates;
    call_t c = {.op = 1};
    assert_int_equal(call(&r, &c), 0);
    RUN_UNTIL(g_srv.updates > ups);
    assert_string_equal(g_srv.update_query, "");
    assert_int_equal(g_srv.notes, 2);
    /* an RST to a confirmable notification cancels the observation */
    g_srv.reject_notes = true;
    assert_int_equal(set_battery(&r, 40), 0);
    assert_int_equal(set_battery(&r, 39), 0); /* the 4th: CON */
    RUN_UNTIL((status(&r, &st), st.observations == 0));
    assert_true(st.notifications >= 4);
    assert_true(st.dm_requests == 1);
    assert_string_equal(st.last_dm_path, "/3/0/9");
    assert_int_equal(st.last_dm_code, C(2, 5));
    /* a bad value is refused in the loop thread */
    call_t bad = {.op = 0};
    bad.rec.path = lwm2m_path_make(3, 3, 0, 0, 0);
    bad.rec.type = LWM2M_T_INTEGER;
    assert_int_equal(call(&r, &bad), LWM2M_ERR_BAD_REQUEST);
    /* not in queue mode: no sleeping */
    call_t sl = {.op = 3};
    assert_int_equal(call(&r, &sl), -EINVAL);

    stop_runner(&r);
    assert_int_equal(g_srv.deletes, 1);
    srv_stop();
}

static void test_queue_mode(void **state)
{
    (void)state;
    srv_start();
    sim_config_t cfg;
    sim_config_init(&cfg);
    cfg.count = 1;
    cfg.version = LWM2M_V1_0;
    cfg.queue_mode = true;
    cfg.awake_ms = 200;
    cfg.update_interval_ms = 800;
    cfg.tick_ms = 0;
    runner_t r;
    start_runner(&r, &cfg);
    RUN_UNTIL(g_srv.registers == 1);
    assert_string_equal(g_srv.reg_query, "ep=sim-000001&lt=300&lwm2m=1.0&b=UQ");
    assert_string_equal(g_srv.reg_payload, "</1/0>,</2>,</3/0>,</4/0>,</7/0>");
    sim_status_t st;
    RUN_UNTIL((status(&r, &st), st.sleeping));
    assert_true(st.registered);
    assert_int_equal(g_srv.sessions, 1);
    /* wakes up for its Update on a new session (a new socket) */
    RUN_UNTIL(g_srv.updates == 1);
    assert_int_equal(g_srv.sessions, 2);
    RUN_UNTIL((status(&r, &st), st.sleeping));
    /* asked to update: wakes up at once */
    call_t c = {.op = 1};
    assert_int_equal(call(&r, &c), 0);
    RUN_UNTIL(g_srv.updates == 2);
    /* asleep at the stop: wakes up to de-register */
    RUN_UNTIL((status(&r, &st), st.sleeping));
    stop_runner(&r);
    assert_int_equal(g_srv.deletes, 1);
    srv_stop();
}

/* CoAP over TCP (and TLS-PSK): the sim connects, registers with binding T,
 * answers requests sent one after another on the connection (message id 0
 * each time: not mistaken for retransmissions), notifies, and after the
 * server closed the connection sends its next Update on a new one. */
static void tcp_case(coap_proto_t proto)
{
    srv_start_proto(proto);
    sim_config_t cfg;
    sim_config_init(&cfg);
    cfg.count = 1;
    cfg.lifetime_s = 60;
    cfg.update_interval_ms = 400;
    cfg.tick_ms = 0;
    if (proto == COAP_PROTO_TLS) {
        cfg.psk_key = k_psk;
        cfg.psk_key_len = 16;
    }
    runner_t r;
    start_runner_scheme(&r, &cfg, proto == COAP_PROTO_TLS ? "coaps+tcp" : "coap+tcp");
    RUN_UNTIL(g_srv.registers == 1);
    assert_string_equal(g_srv.reg_query, "ep=sim-000001&lt=60&lwm2m=1.1&b=T");
    assert_int_equal(coap_session_get_proto(g_srv.sess), proto);
    sim_status_t st;
    RUN_UNTIL((status(&r, &st), st.state == SIM_OK));
    assert_string_equal(st.location, "/rd/7");

    srv_get("3/0/9", -1, LWM2M_CF_TEXT);
    RUN_UNTIL(g_srv.answer_code);
    assert_int_equal(g_srv.answer_code, C(2, 5));
    assert_string_equal(g_srv.answer, "100");
    srv_get("3/0/0", -1, LWM2M_CF_TEXT);
    RUN_UNTIL(g_srv.answer_code);
    assert_int_equal(g_srv.answer_code, C(2, 5));
    assert_string_equal(g_srv.answer, "lwdm");
    srv_get("3/0/9", 0, LWM2M_CF_TEXT);
    RUN_UNTIL(g_srv.answer_code);
    assert_int_equal(g_srv.answer_code, C(2, 5));
    assert_true(g_srv.answer_obs >= 0);
    assert_int_equal(set_battery(&r, 42), 0);
    RUN_UNTIL(g_srv.notes == 1);
    assert_string_equal(g_srv.note_payload[0], "42");

    /* the server closes the connection: the observation ends with it, and
     * the next Update connects again */
    RUN_UNTIL(g_srv.updates >= 1);
    int ups = g_srv.updates;
    assert_int_equal(g_srv.sessions, 1);
    coap_session_disconnected(g_srv.sess, COAP_NACK_NOT_DELIVERABLE);
    RUN_UNTIL(g_srv.updates > ups);
    assert_int_equal(g_srv.sessions, 2);
    RUN_UNTIL((status(&r, &st), st.observations == 0));
    assert_true(st.registered);
    assert_int_equal(st.registrations, 1);

    stop_runner(&r);
    assert_int_equal(g_srv.deletes, 1);
    srv_stop();
}

static void test_tcp(void **state)
{
    (void)state;
    if (!coap_tcp_is_supported())
        skip();
    tcp_case(COAP_PROTO_TCP);
}

static void test_tls_psk(void **state)
{
    (void)state;
    if (!coap_tls_is_supported())
        skip();
    tcp_case(COAP_PROTO_TLS);
}

int main(void)
{
    coap_startup();
    coap_set_log_level(LOG_EMERG);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_observe_notify),
        cmocka_unit_test(test_queue_mode),
        cmocka_unit_test(test_tcp),
        cmocka_unit_test(test_tls_psk),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    coap_cleanup();
    return rc;
}
