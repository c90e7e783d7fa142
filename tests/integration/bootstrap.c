/* In-process bootstrap: an lwdm server in a thread, lwdm-sim devices in the
 * test thread, over loopback. Checks the Security/Server instances every device
 * ends with, what the server stored, and the failure paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>

#include <cmocka.h>
#include <coap3/coap.h>

#include "server/lwm2m/codec.h"
#include "server/lwm2m/lwm2m.h"
#include "sim/sim.h"
#include "support/harness.h"

static harness_t H;
static int64_t g_mgmt, g_mgmt_psk, g_bs, g_bs_psk;
static char g_mgmt_uri[64], g_bs_uri[64];

static int setup(void **state)
{
    (void)state;
    harness_opts_t o = {.bs_timeout_s = 4};
    harness_start(&H, &o);
    g_mgmt = harness_server_id(&H, "lwdm management (NoSec)");
    g_mgmt_psk = harness_server_id(&H, "lwdm management (PSK)");
    g_bs = harness_server_id(&H, "lwdm bootstrap (NoSec)");
    g_bs_psk = harness_server_id(&H, "lwdm bootstrap (PSK)");
    snprintf(g_mgmt_uri, sizeof g_mgmt_uri, "coap://127.0.0.1:%u", H.coap_port);
    snprintf(g_bs_uri, sizeof g_bs_uri, "coap://127.0.0.1:%u", H.bs_coap_port);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    harness_cleanup(&H);
    return 0;
}

/* A sim configuration for `count` devices named prefix000001.. against the
 * server's bootstrap port (DTLS when secure); other fields at their defaults. */
static void sim_cfg(sim_config_t *c, bool secure, const char *prefix, size_t count)
{
    static char uri[2][64];
    snprintf(uri[secure], sizeof uri[secure], "%s://127.0.0.1:%u", secure ? "coaps" : "coap",
             secure ? H.bs_coaps_port : H.bs_coap_port);
    sim_config_init(c);
    c->server_uri = uri[secure];
    c->count = count;
    c->ep_prefix = prefix;
}

static sim_t *run_sim(sim_config_t *c)
{
    sim_t *sim = NULL;
    assert_int_equal(sim_new(c, &sim), 0);
    assert_int_equal(sim_start(sim), 0);
    sim_run(sim, 60000);
    return sim;
}

static const lwm2m_record_t *rec(const sim_dm_t *dm, int o, int i, int r)
{
    lwm2m_path_t p = lwm2m_path_make(3, (unsigned)o, (unsigned)i, (unsigned)r, 0);
    return sim_dm_find(dm, &p);
}

static void assert_str_rec(const sim_dm_t *dm, int o, int i, int r, const char *want)
{
    const lwm2m_record_t *x = rec(dm, o, i, r);
    assert_non_null(x);
    assert_non_null(x->bytes);
    assert_string_equal((const char *)x->bytes, want);
}

static int64_t int_rec(const sim_dm_t *dm, int o, int i, int r)
{
    const lwm2m_record_t *x = rec(dm, o, i, r);
    assert_non_null(x);
    if (x->type == LWM2M_T_UNSIGNED)
        return (int64_t)x->v.u;
    if (x->type == LWM2M_T_BOOLEAN)
        return x->v.b;
    return x->v.i;
}

/* The device holds its untouched BS account at bs_iid and exactly one
 * management account (/0/mgmt_iid, /1/0) for the seeded NoSec server. */
static void check_nosec_mgmt(const sim_device_t *d, int bs_iid, int mgmt_iid)
{
    const sim_dm_t *dm = sim_device_dm(d);
    uint16_t iids[16];
    assert_int_equal(sim_dm_instances(dm, 0, iids, 16), 2);
    assert_int_equal(sim_dm_bs_account(dm), bs_iid);
    assert_str_rec(dm, 0, mgmt_iid, 0, g_mgmt_uri);
    assert_int_equal(int_rec(dm, 0, mgmt_iid, 1), 0);
    assert_int_equal(int_rec(dm, 0, mgmt_iid, 2), 3);
    assert_int_equal(int_rec(dm, 0, mgmt_iid, 10), 1);
    assert_int_equal(sim_dm_instances(dm, 1, iids, 16), 1);
    assert_int_equal(iids[0], 0);
    assert_int_equal(int_rec(dm, 1, 0, 0), 1);
    assert_int_equal(int_rec(dm, 1, 0, 1), 300);
    assert_str_rec(dm, 1, 0, 7, "U");
}

static void check_all_ok(sim_t *sim)
{
    for (size_t i = 0; i < sim_count(sim); i++) {
        sim_status_t st;
        sim_device_status(sim_device(sim, i), &st);
        if (st.state != SIM_OK)
            fail_msg("%s: %s (%s)", sim_device_endpoint(sim_device(sim, i)), sim_state_name(st.state), st.reason);
    }
}

/* The device (JSON, caller decrefs) once its stored bootstrap record has
 * `status`. The sim counts a device done when it has answered Finish (or
 * given up), a moment before the server has read that answer and written the
 * record, so this polls (bounded). */
static json_t *wait_record(const char *ep, const char *status)
{
    for (int i = 0; i < 200; i++) {
        json_t *d = harness_device(&H, ep); /* may not be committed yet either */
        const char *got = json_string_value(json_object_get(json_object_get(d, "lastBootstrap"), "status"));
        if (got && !strcmp(got, status) && json_is_string(json_object_get(d, "lastBootstrapAt")))
            return d;
        json_decref(d);
        usleep(50000);
    }
    fail_msg("device %s: last bootstrap status is not '%s'", ep, status);
    return NULL;
}

static void check_db_record(const char *ep, const char *status)
{
    json_decref(wait_record(ep, status));
}

/* 100 NoSec devices, three versions and three formats, unknown to the DB
 * (created on the fly: accept-unknown is on after the first run). */
static void test_nosec_100(void **state)
{
    (void)state;
    harness_bs_settings(&H, 0, &g_mgmt, 1, 1);
    struct { lwm2m_version_t v; int cf; size_t n; const char *prefix; } runs[] = {
        {LWM2M_V1_0, LWM2M_CF_TLV, 40, "ns10-"},
        {LWM2M_V1_1, LWM2M_CF_SENML_JSON, 30, "ns11-"},
        {LWM2M_V1_2, LWM2M_CF_SENML_CBOR, 30, "ns12-"},
    };
    for (size_t r = 0; r < 3; r++) {
        sim_config_t c;
        sim_cfg(&c, false, runs[r].prefix, runs[r].n);
        c.version = runs[r].v;
        c.format = runs[r].cf;
        c.concurrency = 50;
        c.timeout_ms = 20000;
        sim_t *sim = run_sim(&c);
        check_all_ok(sim);
        for (size_t i = 0; i < sim_count(sim); i++)
            check_nosec_mgmt(sim_device(sim, i), 0, 1);
        check_db_record(sim_device_endpoint(sim_device(sim, 0)), "success");
        check_db_record(sim_device_endpoint(sim_device(sim, sim_count(sim) - 1)), "success");
        sim_free(&sim);
    }
    json_t *r = NULL;
    assert_int_equal(harness_http(&H, "GET", "/api/v1/devices?q=ns1&limit=1", NULL, &r), 200);
    assert_int_equal(json_integer_value(json_object_get(r, "total")), 100);
    json_decref(r);
}

static int psk_key(void *ud, size_t index, const char *ep, uint8_t *key, size_t cap)
{
    (void)ud;
    (void)index;
    int n = snprintf((char *)key, cap, "key-of-%s", ep);
    return n;
}

static void create_psk_device(const char *ep, const char *key)
{
    char hex[128] = {0};
    for (size_t i = 0; key[i]; i++)
        snprintf(hex + 2 * i, 3, "%02x", (unsigned char)key[i]);
    char body[512];
    snprintf(body, sizeof body,
             "{\"endpoint\":\"%s\",\"bootstrapCredentials\":{\"securityMode\":\"psk\",\"pskIdentity\":\"%s\",\"psk\":\"%s\"}}",
             ep, ep, hex);
    long st = harness_http(&H, "POST", "/api/v1/devices", body, NULL);
    if (st != 201)
        fail_msg("create %s: HTTP %ld", ep, st);
}

/* 20 devices known to the DB with bootstrap PSK credentials, over DTLS. */
static void test_psk_20(void **state)
{
    (void)state;
    harness_bs_settings(&H, 0, &g_mgmt, 1, 1);
    for (int i = 1; i <= 20; i++) {
        char ep[32], key[64];
        snprintf(ep, sizeof ep, "psk-%06d", i);
        snprintf(key, sizeof key, "key-of-%s", ep);
        create_psk_device(ep, key);
    }
    sim_config_t c;
    sim_cfg(&c, true, "psk-", 20);
    c.psk_key_cb = psk_key;
    c.concurrency = 20;
    c.timeout_ms = 20000;
    sim_t *sim = run_sim(&c);
    check_all_ok(sim);
    for (size_t i = 0; i < sim_count(sim); i++) {
        check_nosec_mgmt(sim_device(sim, i), 0, 1);
        /* the client's own PSK BS account is untouched */
        const sim_dm_t *dm = sim_device_dm(sim_device(sim, i));
        assert_int_equal(int_rec(dm, 0, 0, 2), 0);
    }
    check_db_record("psk-000007", "success");
    sim_free(&sim);
}

/* A wrong key fails the handshake; nothing is recorded for the device. */
static void test_wrong_psk(void **state)
{
    (void)state;
    create_psk_device("wrongkey-000001", "the-right-key");
    sim_config_t c;
    sim_cfg(&c, true, "wrongkey-", 1);
    c.psk_key = (const uint8_t *)"not-the-key";
    c.psk_key_len = 11;
    c.timeout_ms = 8000;
    sim_t *sim = run_sim(&c);
    sim_status_t st;
    sim_device_status(sim_device(sim, 0), &st);
    assert_int_equal(st.state, SIM_FAILED);
    sim_free(&sim);
    json_t *d = harness_device(&H, "wrongkey-000001");
    assert_non_null(d);
    assert_true(json_is_null(json_object_get(d, "lastBootstrapAt")) || !json_object_get(d, "lastBootstrapAt"));
    json_decref(d);
    /* an unknown identity is refused too */
    sim_cfg(&c, true, "nobody-", 1);
    c.psk_key = (const uint8_t *)"whatever";
    c.psk_key_len = 8;
    c.timeout_ms = 8000;
    sim = run_sim(&c);
    sim_device_status(sim_device(sim, 0), &st);
    assert_int_equal(st.state, SIM_FAILED);
    sim_free(&sim);
    assert_null(harness_device(&H, "nobody-000001"));
}

/* A management server whose PSK is ${string.secureRandom(16)}: every device
 * gets its own key, generated once and stored for the device. */
static void test_per_device_psk(void **state)
{
    (void)state;
    int64_t ids[2] = {g_mgmt, g_mgmt_psk};
    harness_bs_settings(&H, 0, ids, 2, 1);
    uint8_t first[3][64];
    size_t firstlen[3];
    for (int round = 0; round < 2; round++) {
        sim_config_t c;
        sim_cfg(&c, false, "gen-", 3);
        sim_t *sim = run_sim(&c);
        check_all_ok(sim);
        for (size_t i = 0; i < 3; i++) {
            const sim_device_t *d = sim_device(sim, i);
            const sim_dm_t *dm = sim_device_dm(d);
            /* /0/1 NoSec (ssid 1), /0/2 PSK (ssid 2); BS account at /0/0 */
            assert_int_equal(int_rec(dm, 0, 2, 2), 0);
            assert_int_equal(int_rec(dm, 0, 2, 10), 2);
            const lwm2m_record_t *id = rec(dm, 0, 2, 3), *key = rec(dm, 0, 2, 5);
            assert_non_null(id);
            assert_non_null(key);
            assert_int_equal(id->nbytes, strlen(sim_device_endpoint(d)));
            assert_memory_equal(id->bytes, sim_device_endpoint(d), id->nbytes);
            assert_int_equal(key->nbytes, 16);
            assert_int_equal(int_rec(dm, 1, 1, 0), 2);
            if (round == 0) {
                memcpy(first[i], key->bytes, 16);
                firstlen[i] = key->nbytes;
                if (i > 0)
                    assert_memory_not_equal(first[i], first[i - 1], 16);
            } else {
                assert_int_equal(firstlen[i], key->nbytes);
                assert_memory_equal(first[i], key->bytes, 16);
            }
            /* the server stored the same key for the device */
            json_t *dj = harness_device(&H, sim_device_endpoint(d));
            assert_non_null(dj);
            db_credentials_t cr = {0};
            assert_int_equal(db_device_server_cred_get(H.db, json_integer_value(json_object_get(dj, "id")), g_mgmt_psk, &cr), 0);
            assert_int_equal(cr.psk_len, 16);
            assert_memory_equal(cr.psk, key->bytes, 16);
            db_credentials_free(&cr);
            json_decref(dj);
        }
        sim_free(&sim);
    }
}

/* A selected bootstrap server replaces the client's BS account in place (the
 * client keeps it at /0/1, as Anjay does); management takes /0/0. */
static void test_bs_account_replaced(void **state)
{
    (void)state;
    harness_bs_settings(&H, g_bs, &g_mgmt, 1, 1);
    sim_config_t c;
    sim_cfg(&c, false, "bsacc-", 2);
    c.bs_account_iid = 1;
    sim_t *sim = run_sim(&c);
    check_all_ok(sim);
    for (size_t i = 0; i < 2; i++) {
        const sim_dm_t *dm = sim_device_dm(sim_device(sim, i));
        assert_int_equal(sim_dm_bs_account(dm), 1);
        assert_str_rec(dm, 0, 1, 0, g_bs_uri);
        assert_int_equal(int_rec(dm, 0, 1, 1), 1);
        assert_str_rec(dm, 0, 0, 0, g_mgmt_uri);
        assert_int_equal(int_rec(dm, 0, 0, 1), 0);
    }
    sim_free(&sim);
    harness_bs_settings(&H, 0, &g_mgmt, 1, 1);
}

/* Discover refused: the server falls back to fixed ids (BS account assumed at /0/0). */
static void test_discover_refused(void **state)
{
    (void)state;
    sim_config_t c;
    sim_cfg(&c, false, "nodisc-", 2);
    c.version = LWM2M_V1_0;
    c.refuse_discover = true;
    sim_t *sim = run_sim(&c);
    check_all_ok(sim);
    check_nosec_mgmt(sim_device(sim, 0), 0, 1);
    sim_free(&sim);
}

static int steps_have(json_t *dev, const char *op, const char *code)
{
    json_t *steps = json_object_get(json_object_get(dev, "lastBootstrap"), "steps"), *s;
    size_t i;
    json_array_foreach(steps, i, s)
    {
        const char *o = json_string_value(json_object_get(s, "op"));
        const char *c = json_string_value(json_object_get(s, "code"));
        if (o && !strcmp(o, op) && (!code || (c && !strcmp(c, code))))
            return 1;
    }
    return 0;
}

/* The client rejects Finish (4.06): the record says so; the next /bs starts over. */
static void test_finish_rejected(void **state)
{
    (void)state;
    sim_config_t c;
    sim_cfg(&c, false, "rej406-", 1);
    c.fail_finish = true;
    sim_t *sim = run_sim(&c);
    sim_status_t st;
    sim_device_status(sim_device(sim, 0), &st);
    assert_int_equal(st.state, SIM_FAILED);
    sim_free(&sim);
    json_t *d = wait_record("rej406-000001", "failed");
    assert_true(steps_have(d, "finish", "4.06"));
    json_decref(d);
    /* the same device bootstraps fine the next time */
    sim_cfg(&c, false, "rej406-", 1);
    sim = run_sim(&c);
    check_all_ok(sim);
    sim_free(&sim);
    check_db_record("rej406-000001", "success");
}

/* A device that stops answering mid-bootstrap: the server's session watchdog
 * (4 s here) fails it and records the step that got no answer. */
static void test_device_stalls(void **state)
{
    (void)state;
    sim_config_t c;
    sim_cfg(&c, false, "stall-", 1);
    c.stall_after = 2;
    c.timeout_ms = 3000;
    sim_t *sim = run_sim(&c);
    sim_free(&sim);
    json_t *d = wait_record("stall-000001", "failed");
    assert_true(steps_have(d, "failed", NULL));
    json_decref(d);
}

/* accept-unknown off: an unknown endpoint is refused with 4.00 and not created. */
static void test_unknown_refused(void **state)
{
    (void)state;
    harness_bs_settings(&H, 0, &g_mgmt, 1, 0);
    sim_config_t c;
    sim_cfg(&c, false, "stranger-", 1);
    sim_t *sim = run_sim(&c);
    sim_status_t st;
    sim_device_status(sim_device(sim, 0), &st);
    assert_int_equal(st.state, SIM_FAILED);
    assert_non_null(strstr(st.reason, "4.00"));
    sim_free(&sim);
    assert_null(harness_device(&H, "stranger-000001"));
    harness_bs_settings(&H, 0, &g_mgmt, 1, 1);
}


/* ---------------------------------------------------------- Bootstrap-Pack */
static uint8_t g_pack[16384];
static size_t g_pack_len;
static int g_pack_code = -1, g_pack_cf = -1;

static coap_response_t pack_response(coap_session_t *cs, const coap_pdu_t *sent, const coap_pdu_t *recv,
                                     const coap_mid_t mid)
{
    (void)cs;
    (void)sent;
    (void)mid;
    size_t len = 0, off = 0, total = 0;
    const uint8_t *data = NULL;
    g_pack_code = coap_pdu_get_code(recv);
    coap_opt_iterator_t it;
    coap_opt_t *o = coap_check_option(recv, COAP_OPTION_CONTENT_FORMAT, &it);
    g_pack_cf = o ? (int)coap_decode_var_bytes(coap_opt_value(o), coap_opt_length(o)) : -1;
    g_pack_len = 0;
    if (coap_get_data_large(recv, &len, &data, &off, &total) && len <= sizeof g_pack) {
        memcpy(g_pack, data, len);
        g_pack_len = len;
    }
    return COAP_RESPONSE_OK;
}

/* GET /bspack?ep=.. with Accept `accept` (-1: none) over plain CoAP. */
static void get_pack(const char *ep, int accept)
{
    g_pack_code = -1;
    g_pack_len = 0;
    coap_context_t *ctx = coap_new_context(NULL);
    assert_non_null(ctx);
    coap_context_set_block_mode(ctx, COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
    coap_register_response_handler(ctx, pack_response);
    coap_address_t dst;
    coap_address_init(&dst);
    dst.addr.sin.sin_family = AF_INET;
    dst.addr.sin.sin_port = htons(H.bs_coap_port);
    dst.addr.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    dst.size = sizeof dst.addr.sin;
    coap_session_t *cs = coap_new_client_session(ctx, NULL, &dst, COAP_PROTO_UDP);
    assert_non_null(cs);
    coap_pdu_t *pdu = coap_pdu_init(COAP_MESSAGE_CON, COAP_REQUEST_CODE_GET, coap_new_message_id(cs),
                                    coap_session_max_pdu_size(cs));
    uint8_t tok[4] = {1, 2, 3, 4}, b[4];
    coap_add_token(pdu, sizeof tok, tok);
    coap_add_option(pdu, COAP_OPTION_URI_PATH, 6, (const uint8_t *)"bspack");
    char q[64];
    int n = snprintf(q, sizeof q, "ep=%s", ep);
    coap_add_option(pdu, COAP_OPTION_URI_QUERY, (size_t)n, (const uint8_t *)q);
    if (accept >= 0)
        coap_add_option(pdu, COAP_OPTION_ACCEPT, coap_encode_var_safe(b, sizeof b, (unsigned)accept), b);
    assert_int_not_equal(coap_send(cs, pdu), COAP_INVALID_MID);
    for (int i = 0; i < 100 && g_pack_code < 0; i++)
        coap_io_process(ctx, 100);
    coap_session_release(cs);
    coap_free_context(ctx);
}

/* 1.2 Bootstrap-Pack: one SenML pack with the management accounts from /0/2,
 * served block-wise when larger than a block (a certificate makes it ~3 KB). */
static void test_bootstrap_pack(void **state)
{
    (void)state;
    /* a certificate-mode server with a 2,500-byte "DER" certificate */
    static uint8_t der[2500];
    der[0] = 0x30;
    der[1] = 0x82;
    for (size_t i = 2; i < sizeof der; i++)
        der[i] = (uint8_t)i;
    char b64[4000];
    sodium_bin2base64(b64, sizeof b64, der, sizeof der, sodium_base64_VARIANT_ORIGINAL);
    char body[4400];
    snprintf(body, sizeof body,
             "{\"name\":\"pack-cert\",\"type\":\"management\",\"ssid\":77,\"uri\":\"coaps://cert.example\","
             "\"securityMode\":\"cert\",\"serverCertificate\":\"%s\"}", b64);
    json_t *r = NULL;
    long st = harness_http(&H, "POST", "/api/v1/lwm2m-servers", body, &r);
    if (st != 201)
        fail_msg("create cert server: %ld", st);
    int64_t cert_id = json_integer_value(json_object_get(r, "id"));
    json_decref(r);
    int64_t ids[2] = {g_mgmt, cert_id};
    harness_bs_settings(&H, g_bs, ids, 2, 1);

    get_pack("pack-000001", LWM2M_CF_SENML_CBOR);
    assert_int_equal(g_pack_code, LWM2M_CODE(2, 5));
    assert_int_equal(g_pack_cf, LWM2M_CF_SENML_CBOR);
    assert_true(g_pack_len > 2500);
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    lwm2m_path_t root = lwm2m_path_make(0, 0, 0, 0, 0);
    assert_int_equal(lwm2m_decode(LWM2M_CF_SENML_CBOR, &root, g_pack, g_pack_len, NULL, &rs), 0);
    lwm2m_path_t p = lwm2m_path_make(3, 0, 2, 0, 0);
    const lwm2m_record_t *x = lwm2m_records_find(&rs, &p);
    assert_non_null(x);
    assert_memory_equal(x->bytes, g_mgmt_uri, strlen(g_mgmt_uri));
    p = lwm2m_path_make(3, 0, 3, 4, 0);
    x = lwm2m_records_find(&rs, &p);
    assert_non_null(x);
    assert_int_equal(x->nbytes, sizeof der);
    assert_memory_equal(x->bytes, der, sizeof der);
    p = lwm2m_path_make(3, 1, 1, 0, 0);
    assert_non_null(lwm2m_records_find(&rs, &p));
    /* no bootstrap account in a pack, nothing at /0/0 or /0/1 */
    p = lwm2m_path_make(3, 0, 0, 0, 0);
    assert_null(lwm2m_records_find(&rs, &p));
    p = lwm2m_path_make(3, 0, 1, 0, 0);
    assert_null(lwm2m_records_find(&rs, &p));
    lwm2m_records_clear(&rs);
    check_db_record("pack-000001", "success");

    /* SenML JSON on request, 4.06 for a format a pack cannot be */
    get_pack("pack-000001", LWM2M_CF_SENML_JSON);
    assert_int_equal(g_pack_code, LWM2M_CODE(2, 5));
    assert_int_equal(g_pack_cf, LWM2M_CF_SENML_JSON);
    get_pack("pack-000001", LWM2M_CF_TEXT);
    assert_int_equal(g_pack_code, LWM2M_CODE(4, 6));

    assert_int_equal(harness_httpf(&H, "DELETE", NULL, NULL, "/api/v1/lwm2m-servers/%lld", (long long)cert_id), 200);
    harness_bs_settings(&H, 0, &g_mgmt, 1, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nosec_100),      cmocka_unit_test(test_psk_20),
        cmocka_unit_test(test_wrong_psk),      cmocka_unit_test(test_per_device_psk),
        cmocka_unit_test(test_bs_account_replaced), cmocka_unit_test(test_discover_refused),
        cmocka_unit_test(test_finish_rejected), cmocka_unit_test(test_device_stalls),
        cmocka_unit_test(test_unknown_refused), cmocka_unit_test(test_bootstrap_pack),
    };
    int rc = cmocka_run_group_tests_name("integration_bootstrap", tests, setup, teardown);
    return rc;
}
