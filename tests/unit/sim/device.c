/* Unit tests of the simulated device's data model and Bootstrap handlers
 * (sim/device.c): CoAP transcripts without sockets - request in, response
 * and model out. */
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
#include "sim/sim.h"

#define C(cls, d) LWM2M_CODE(cls, d)

static lwm2m_registry_t *g_reg;

static int setup_all(void **state)
{
    (void)state;
    char err[200];
    g_reg = lwm2m_registry_new();
    if (!g_reg || lwm2m_registry_add_builtin(g_reg, err, sizeof err) != 0) {
        fprintf(stderr, "registry: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown_all(void **state)
{
    (void)state;
    lwm2m_registry_free(&g_reg);
    return 0;
}

static sim_dm_t *make_dm(lwm2m_version_t v, uint16_t bs_iid)
{
    sim_dm_config_t cfg;
    sim_dm_config_init(&cfg);
    cfg.version = v;
    cfg.reg = g_reg;
    cfg.endpoint = "sim-000001";
    cfg.bs_uri = "coap://127.0.0.1:5693";
    cfg.bs_iid = bs_iid;
    cfg.preferred_cf = LWM2M_CF_SENML_JSON;
    sim_dm_t *dm = NULL;
    assert_int_equal(sim_dm_new(&cfg, &dm), 0);
    assert_non_null(dm);
    return dm;
}

/* one request; returns the response code, leaves the response in *out */
static int req(sim_dm_t *dm, int method, const char *path, const char *query, int cf, int accept, const void *payload,
               size_t len, sim_response_t *out)
{
    sim_request_t r = {0};
    r.method = method;
    r.path = path;
    r.path_len = strlen(path);
    r.query = query;
    r.query_len = query ? strlen(query) : 0;
    r.content_format = cf;
    r.accept = accept;
    r.payload = payload;
    r.payload_len = len;
    sim_dm_handle(dm, &r, out);
    return out->code;
}

static int req_code(sim_dm_t *dm, int method, const char *path, int cf, const void *payload, size_t len)
{
    sim_response_t out;
    int code = req(dm, method, path, NULL, cf, -1, payload, len, &out);
    sim_response_clear(&out);
    return code;
}

static int put_str(sim_dm_t *dm, const char *path, const char *json)
{
    return req_code(dm, SIM_PUT, path, LWM2M_CF_SENML_JSON, json, strlen(json));
}

static char *discover(sim_dm_t *dm, const char *path)
{
    sim_response_t out;
    int code = req(dm, SIM_GET, path, NULL, -1, LWM2M_CF_LINK, NULL, 0, &out);
    assert_int_equal(code, C(2, 5));
    assert_int_equal(out.content_format, LWM2M_CF_LINK);
    char *s = strndup((const char *)out.payload, out.payload_len);
    sim_response_clear(&out);
    return s;
}

/* Writes a NoSec management server account /0/<si> + /1/<vi> with SSID 1 in TLV. */
static void write_server_tlv(sim_dm_t *dm, unsigned si, unsigned vi, const char *uri, int mode, bool with_binding)
{
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    lwm2m_path_t p = lwm2m_path_make(3, 0, si, 0, 0);
    lwm2m_records_add_string(&rs, &p, uri);
    p.ids[2] = 1;
    lwm2m_records_add_bool(&rs, &p, false);
    p.ids[2] = 2;
    lwm2m_records_add_int(&rs, &p, mode);
    p.ids[2] = 3;
    lwm2m_records_add_opaque(&rs, &p, mode == 0 ? "id" : "", mode == 0 ? 2 : 0);
    p.ids[2] = 4;
    lwm2m_records_add_opaque(&rs, &p, "", 0);
    p.ids[2] = 5;
    lwm2m_records_add_opaque(&rs, &p, mode == 0 ? "\x01\x02" : "", mode == 0 ? 2 : 0);
    p.ids[2] = 10;
    lwm2m_records_add_int(&rs, &p, 1);
    uint8_t *buf = NULL;
    size_t len = 0;
    lwm2m_path_t base = lwm2m_path_make(2, 0, si, 0, 0);
    assert_int_equal(lwm2m_encode(LWM2M_CF_TLV, &base, &rs, &buf, &len), 0);
    char path[32];
    snprintf(path, sizeof path, "0/%u", si);
    assert_int_equal(req_code(dm, SIM_PUT, path, LWM2M_CF_TLV, buf, len), C(2, 4));
    free(buf);
    lwm2m_records_clear(&rs);

    p = lwm2m_path_make(3, 1, vi, 0, 0);
    lwm2m_records_add_int(&rs, &p, 1);
    p.ids[2] = 1;
    lwm2m_records_add_int(&rs, &p, 86400);
    p.ids[2] = 6;
    lwm2m_records_add_bool(&rs, &p, false);
    if (with_binding) {
        p.ids[2] = 7;
        lwm2m_records_add_string(&rs, &p, "U");
    }
    base = lwm2m_path_make(2, 1, vi, 0, 0);
    assert_int_equal(lwm2m_encode(LWM2M_CF_TLV, &base, &rs, &buf, &len), 0);
    snprintf(path, sizeof path, "1/%u", vi);
    assert_int_equal(req_code(dm, SIM_PUT, path, LWM2M_CF_TLV, buf, len), C(2, 4));
    free(buf);
    lwm2m_records_clear(&rs);
}

static int finish(sim_dm_t *dm, sim_response_t *out)
{
    return req(dm, SIM_POST, "bs", NULL, -1, -1, NULL, 0, out);
}

/* ------------------------------------------------------------ initial model */

static void test_initial_model(void **state)
{
    (void)state;
    sim_dm_t *dm = make_dm(LWM2M_V1_1, 1);
    assert_int_equal(sim_dm_bs_account(dm), 1);
    assert_true(sim_dm_has_instance(dm, 0, 1));
    assert_true(sim_dm_has_instance(dm, 3, 0));
    assert_false(sim_dm_has_instance(dm, 1, 0));
    lwm2m_path_t p = lwm2m_path_make(3, 3, 0, 2, 0);
    const lwm2m_record_t *r = sim_dm_find(dm, &p);
    assert_non_null(r);
    assert_string_equal((const char *)r->bytes, "sim-000001");
    p = lwm2m_path_make(3, 0, 1, 0, 0);
    r = sim_dm_find(dm, &p);
    assert_non_null(r);
    assert_string_equal((const char *)r->bytes, "coap://127.0.0.1:5693");
    p.ids[2] = 2;
    assert_int_equal(sim_dm_find(dm, &p)->v.i, SIM_SEC_NOSEC);
    sim_dm_free(&dm);
    assert_null(dm);
}

/* ------------------------------------------------------------ Discover */

static void test_discover_10(void **state)
{
    (void)state;
    sim_dm_t *dm = make_dm(LWM2M_V1_0, 0);
    char *s = discover(dm, "");
    assert_string_equal(s, "lwm2m=\"1.0\",</0/0>,</1>,</2>,</3/0>,</4/0>,</7/0>");
    free(s);
    write_server_tlv(dm, 1, 0, "coap://127.0.0.1:5683", 3, true);
    s = discover(dm, "");
    /* 1.0: no </>, no uri, ssid on server instances only */
    assert_string_equal(s, "lwm2m=\"1.0\",</0/0>,</0/1>;ssid=1,</1/0>;ssid=1,</2>,</3/0>,</4/0>,</7/0>");
    free(s);
    /* no Accept on the root is a Discover too */
    sim_response_t out;
    assert_int_equal(req(dm, SIM_GET, "", NULL, -1, -1, NULL, 0, &out), C(2, 5));
    sim_response_clear(&out);
    sim_dm_free(&dm);
}

static void test_discover_11(void **state)
{
    (void)state;
    sim_dm_t *dm = make_dm(LWM2M_V1_1, 1);
    write_server_tlv(dm, 0, 3, "coap://127.0.0.1:5683", 3, true);
    char *s = discover(dm, "");
    assert_string_equal(s, "</>;lwm2m=1.1,</0>;ver=1.1,</0/0>;ssid=1;uri=\"coap://127.0.0.1:5683\","
                           "</0/1>;uri=\"coap://127.0.0.1:5693\",</1>;ver=1.1,</1/3>;ssid=1,</2>,"
                           "</3>;ver=1.1,</3/0>,</4/0>,</7/0>,</21>");
    free(s);
    s = discover(dm, "1");
    assert_string_equal(s, "</>;lwm2m=1.1,</1>;ver=1.1,</1/3>;ssid=1");
    free(s);
    sim_response_t out;
    assert_int_equal(req(dm, SIM_GET, "", "depth=1", -1, LWM2M_CF_LINK, NULL, 0, &out), C(4, 0));
    sim_response_clear(&out);
    assert_int_equal(req(dm, SIM_GET, "5", NULL, -1, LWM2M_CF_LINK, NULL, 0, &out), C(4, 4));
    sim_response_clear(&out);
    assert_int_equal(req(dm, SIM_GET, "0/0", NULL, -1, LWM2M_CF_LINK, NULL, 0, &out), C(4, 0));
    sim_response_clear(&out);
    sim_dm_free(&dm);
}

static void test_discover_12(void **state)
{
    (void)state;
    sim_dm_t *dm = make_dm(LWM2M_V1_2, 0);
    char *s = discover(dm, "");
    assert_string_equal(s, "</>;lwm2m=1.2,</0>;ver=1.2,</0/0>;uri=\"coap://127.0.0.1:5693\",</1>;ver=1.2,</2>,"
                           "</3>;ver=1.2,</3/0>,</4/0>,</7/0>,</21>;ver=2.0");
    free(s);
    sim_dm_free(&dm);
}

static void test_discover_refused(void **state)
{
    (void)state;
    sim_dm_config_t cfg;
    sim_dm_config_init(&cfg);
    cfg.reg = g_reg;
    cfg.endpoint = "x";
    cfg.bs_uri = "coap://127.0.0.1:5693";
    cfg.refuse_discover = true;
    sim_dm_t *dm = NULL;
    assert_int_equal(sim_dm_new(&cfg, &dm), 0);
    sim_response_t out;
    assert_int_equal(req(dm, SIM_GET, "", NULL, -1, LWM2M_CF_LINK, NULL, 0, &out), C(4, 5));
    sim_response_clear(&out);
    sim_dm_free(&dm);
}

/* ------------------------------------------------------------ Write */

static void test_write_tlv_and_types(void **state)
{
    (void)state;
    sim_dm_t *dm = make_dm(LWM2M_V1_0, 0);
    write_server_tlv(dm, 1, 0, "coap://127.0.0.1:5683", 3, true);
    lwm2m_path_t p = lwm2m_path_make(3, 0, 1, 1, 0);
    const lwm2m_record_t *r = sim_dm_find(dm, &p);
    assert_non_null(r);
    assert_int_equal(r->type, LWM2M_T_BOOLEAN);
    assert_false(r->v.b);
    p = lwm2m_path_make(3, 1, 0, 1, 0);
    r = sim_dm_find(dm, &p);
    assert_int_equal(r->type, LWM2M_T_INTEGER);
    assert_int_equal(r->v.i, 86400);
    /* old TLV content format 1542 and a text write of one resource */
    assert_int_equal(req_code(dm, SIM_PUT, "1/0/1", LWM2M_CF_TEXT, "300", 3), C(2, 4));
    assert_int_equal(sim_dm_find(dm, &p)->v.i, 300);
    /* merge: other resources of /1/0 are kept */
    p.ids[2] = 7;
    assert_non_null(sim_dm_find(dm, &p));
    /* 1.0 client: SenML is not supported */
    assert_int_equal(put_str(dm, "1/0", "[{\"bn\":\"/1/0/\",\"n\":\"1\",\"v\":5}]"), C(4, 15));
    assert_int_equal(req_code(dm, SIM_PUT, "1/0", 9999, "x", 1), C(4, 15));
    /* malformed TLV, missing Content-Format, root, resource instance, unknown object */
    assert_int_equal(req_code(dm, SIM_PUT, "1/0", LWM2M_CF_TLV, "\xc8\x00", 2), C(4, 0));
    assert_int_equal(req_code(dm, SIM_PUT, "1/0", -1, "x", 1), C(4, 0));
    assert_int_equal(req_code(dm, SIM_PUT, "", LWM2M_CF_TLV, "", 0), C(4, 5));
    assert_int_equal(req_code(dm, SIM_PUT, "3/0/11/0", LWM2M_CF_TEXT, "1", 1), C(4, 0));
    assert_int_equal(req_code(dm, SIM_PUT, "5/0", LWM2M_CF_TLV, "", 0), C(4, 4));
    sim_dm_free(&dm);
}

static void test_write_old_tlv(void **state)
{
    (void)state;
    sim_dm_t *dm = make_dm(LWM2M_V1_0, 0);
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    lwm2m_path_t p = lwm2m_path_make(3, 1, 4, 0, 0);
    lwm2m_records_add_int(&rs, &p, 7);
    uint8_t *buf;
    size_t len;
    lwm2m_path_t base = lwm2m_path_make(1, 1, 0, 0, 0);
    assert_int_equal(lwm2m_encode(LWM2M_CF_TLV, &base, &rs, &buf, &len), 0);
    assert_int_equal(req_code(dm, SIM_PUT, "1", LWM2M_CF_OLD_TLV, buf, len), C(2, 4));
    assert_true(sim_dm_has_instance(dm, 1, 4));
    assert_int_equal(sim_dm_find(dm, &p)->v.i, 7);
    free(buf);
    lwm2m_records_clear(&rs);
    sim_dm_free(&dm);
}

static void test_write_senml(void **state)
{
    (void)state;
    sim_dm_t *dm = make_dm(LWM2M_V1_1, 0);
    assert_int_equal(put_str(dm, "1/2",
                             "[{\"bn\":\"/1/2/\",\"n\":\"0\",\"v\":7},{\"n\":\"1\",\"v\":60},"
                             "{\"n\":\"6\",\"vb\":true},{\"n\":\"7\",\"vs\":\"UQ\"}]"),
                     C(2, 4));
    lwm2m_path_t p = lwm2m_path_make(3, 1, 2, 7, 0);
    const lwm2m_record_t *r = sim_dm_find(dm, &p);
    assert_non_null(r);
    assert_string_equal((const char *)r->bytes, "UQ");
    /* SenML CBOR, object-level write with absolute names */
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    p = lwm2m_path_make(3, 0, 4, 0, 0);
    lwm2m_records_add_string(&rs, &p, "coap://127.0.0.1:5683");
    p.ids[2] = 1;
    lwm2m_records_add_bool(&rs, &p, false);
    p.ids[2] = 2;
    lwm2m_records_add_int(&rs, &p, 3);
    p.ids[2] = 10;
    lwm2m_records_add_int(&rs, &p, 7);
    uint8_t *buf;
    size_t len;
    lwm2m_path_t base = lwm2m_path_make(1, 0, 0, 0, 0);
    assert_int_equal(lwm2m_encode(LWM2M_CF_SENML_CBOR, &base, &rs, &buf, &len), 0);
    assert_int_equal(req_code(dm, SIM_PUT, "0", LWM2M_CF_SENML_CBOR, buf, len), C(2, 4));
    free(buf);
    lwm2m_records_clear(&rs);
    p.ids[2] = 10;
    assert_int_equal(sim_dm_find(dm, &p)->v.i, 7);
    /* malformed JSON, wrong type for a boolean, record outside the target */
    assert_int_equal(put_str(dm, "1/2", "[{\"bn\":"), C(4, 0));
    assert_int_equal(put_str(dm, "1/2", "[{\"bn\":\"/1/2/\",\"n\":\"6\",\"vs\":\"yes\"}]"), C(4, 0));
    assert_int_equal(put_str(dm, "1/2", "[{\"bn\":\"/1/3/\",\"n\":\"1\",\"v\":5}]"), C(4, 0));
    sim_response_t out;
    assert_int_equal(finish(dm, &out), C(2, 4));
    assert_int_equal(out.event, SIM_DM_EV_FINISH_OK);
    sim_response_clear(&out);
    sim_dm_free(&dm);
}

static void test_write_second_bs_account(void **state)
{
    (void)state;
    sim_dm_t *dm = make_dm(LWM2M_V1_1, 0);
    const char *second = "[{\"bn\":\"/0/5/\",\"n\":\"0\",\"vs\":\"coap://10.0.0.1:5693\"},{\"n\":\"1\",\"vb\":true},"
                         "{\"n\":\"2\",\"v\":3}]";
    size_t before = sim_dm_records(dm)->n;
    assert_int_equal(put_str(dm, "0/5", second), C(4, 0));
    assert_false(sim_dm_has_instance(dm, 0, 5));
    assert_int_equal(sim_dm_records(dm)->n, before); /* nothing changed */
    /* rewriting the account in place is allowed */
    assert_int_equal(put_str(dm, "0/0/0", "[{\"bn\":\"/0/0/0\",\"vs\":\"coap://127.0.0.2:5693\"}]"), C(2, 4));
    assert_int_equal(sim_dm_bs_account(dm), 0);
    /* moving the account: demote the old one in the same write */
    assert_int_equal(put_str(dm, "0",
                             "[{\"bn\":\"/0/\",\"n\":\"0/1\",\"vb\":false},{\"n\":\"5/0\",\"vs\":\"coap://x:1\"},"
                             "{\"n\":\"5/1\",\"vb\":true},{\"n\":\"5/2\",\"v\":3}]"),
                     C(2, 4));
    assert_int_equal(sim_dm_bs_account(dm), 5);
    sim_dm_free(&dm);
}

/* ------------------------------------------------------------ Delete */

static void test_delete(void **state)
{
    (void)state;
    sim_dm_t *dm = make_dm(LWM2M_V1_1, 1);
    write_server_tlv(dm, 0, 0, "coap://127.0.0.1:5683", 3, true);
    write_server_tlv(dm, 2, 1, "coap://127.0.0.1:5683", 3, true);
    assert_int_equal(req_code(dm, SIM_DELETE, "0/1", -1, NULL, 0), C(4, 0)); /* the BS account */
    assert_int_equal(req_code(dm, SIM_DELETE, "3/0", -1, NULL, 0), C(4, 0));
    assert_int_equal(req_code(dm, SIM_DELETE, "0/2/0", -1, NULL, 0), C(4, 0));
    assert_int_equal(req_code(dm, SIM_DELETE, "9", -1, NULL, 0), C(4, 4));
    assert_int_equal(req_code(dm, SIM_DELETE, "1/77", -1, NULL, 0), C(2, 2)); /* absent: RFC 7252 §5.9.1.2 */
    assert_int_equal(req_code(dm, SIM_DELETE, "0/2", -1, NULL, 0), C(2, 2));
    assert_false(sim_dm_has_instance(dm, 0, 2));
    assert_int_equal(req_code(dm, SIM_DELETE, "0", -1, NULL, 0), C(2, 2));
    assert_false(sim_dm_has_instance(dm, 0, 0));
    assert_true(sim_dm_has_instance(dm, 0, 1));
    assert_true(sim_dm_has_instance(dm, 1, 0));
    assert_int_equal(req_code(dm, SIM_DELETE, "", -1, NULL, 0), C(2, 2));
    uint16_t iids[8];
    assert_int_equal(sim_dm_instances(dm, 0, iids, 8), 1);
    assert_int_equal(iids[0], 1);
    assert_int_equal(sim_dm_instances(dm, 1, iids, 8), 0);
    assert_true(sim_dm_has_instance(dm, 3, 0));
    /* the BS account kept its resources */
    lwm2m_path_t p = lwm2m_path_make(3, 0, 1, 0, 0);
    assert_non_null(sim_dm_find(dm, &p));
    sim_dm_free(&dm);
}

static void test_delete_keeps_bs_oscore(void **state)
{
    (void)state;
    sim_dm_t *dm = make_dm(LWM2M_V1_1, 0);
    assert_int_equal(put_str(dm, "21/4", "[{\"bn\":\"/21/4/\",\"n\":\"0\",\"vd\":\"AQI\"}]"), C(2, 4));
    assert_int_equal(put_str(dm, "21/5", "[{\"bn\":\"/21/5/\",\"n\":\"0\",\"vd\":\"AQI\"}]"), C(2, 4));
    assert_int_equal(put_str(dm, "0/0/17", "[{\"bn\":\"/0/0/17\",\"vlo\":\"21:4\"}]"), C(2, 4));
    assert_int_equal(req_code(dm, SIM_DELETE, "", -1, NULL, 0), C(2, 2));
    assert_true(sim_dm_has_instance(dm, 21, 4));
    assert_false(sim_dm_has_instance(dm, 21, 5));
    sim_dm_free(&dm);
}

/* ------------------------------------------------------------ Read */

static void test_read(void **state)
{
    (void)state;
    sim_dm_t *dm = make_dm(LWM2M_V1_1, 0);
    assert_int_equal(put_str(dm, "1/0", "[{\"bn\":\"/1/0/\",\"n\":\"0\",\"v\":1},{\"n\":\"7\",\"vs\":\"U\"}]"), C(2, 4));
    sim_response_t out;
    assert_int_equal(req(dm, SIM_GET, "1", NULL, -1, LWM2M_CF_SENML_JSON, NULL, 0, &out), C(2, 5));
    assert_int_equal(out.content_format, LWM2M_CF_SENML_JSON);
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    lwm2m_path_t base = lwm2m_path_make(1, 1, 0, 0, 0);
    assert_int_equal(lwm2m_decode(out.content_format, &base, out.payload, out.payload_len, g_reg, &rs), 0);
    assert_int_equal(rs.n, 2);
    lwm2m_records_clear(&rs);
    sim_response_clear(&out);
    /* no Accept on an object (1.1+): a Read in the preferred format, as
     * Wakaama's bootstrap server sends it; on the root: a Discover */
    assert_int_equal(req(dm, SIM_GET, "1", NULL, -1, -1, NULL, 0, &out), C(2, 5));
    assert_int_equal(out.content_format, LWM2M_CF_SENML_JSON);
    sim_response_clear(&out);
    assert_int_equal(req(dm, SIM_GET, "", NULL, -1, -1, NULL, 0, &out), C(2, 5));
    assert_int_equal(out.content_format, LWM2M_CF_LINK);
    sim_response_clear(&out);
    /* no Accept on an instance: the preferred format (SenML JSON here) */
    assert_int_equal(req(dm, SIM_GET, "1/0", NULL, -1, -1, NULL, 0, &out), C(2, 5));
    assert_int_equal(out.content_format, LWM2M_CF_SENML_JSON);
    sim_response_clear(&out);
    assert_int_equal(req(dm, SIM_GET, "1/0/7", NULL, -1, LWM2M_CF_TEXT, NULL, 0, &out), C(2, 5));
    assert_memory_equal(out.payload, "U", 1);
    sim_response_clear(&out);
    assert_int_equal(req(dm, SIM_GET, "1/0", NULL, -1, LWM2M_CF_TLV, NULL, 0, &out), C(2, 5));
    sim_response_clear(&out);
    assert_int_equal(req(dm, SIM_GET, "1/9", NULL, -1, LWM2M_CF_TLV, NULL, 0, &out), C(4, 4));
    sim_response_clear(&out);
    assert_int_equal(req(dm, SIM_GET, "0", NULL, -1, LWM2M_CF_TLV, NULL, 0, &out), C(4, 1));
    sim_response_clear(&out);
    assert_int_equal(req(dm, SIM_GET, "1", NULL, -1, LWM2M_CF_OMA_JSON, NULL, 0, &out), C(4, 6));
    sim_response_clear(&out);
    sim_dm_free(&dm);

    dm = make_dm(LWM2M_V1_0, 0);
    assert_int_equal(req(dm, SIM_GET, "1", NULL, -1, LWM2M_CF_TLV, NULL, 0, &out), C(4, 5));
    sim_response_clear(&out);
    /* 1.0: GET on an object without Accept is a Discover */
    assert_int_equal(req(dm, SIM_GET, "1", NULL, -1, -1, NULL, 0, &out), C(2, 5));
    assert_int_equal(out.content_format, LWM2M_CF_LINK);
    sim_response_clear(&out);
    sim_dm_free(&dm);
}

/* ------------------------------------------------------------ routing */

static void test_routing(void **state)
{
    (void)state;
    sim_dm_t *dm = make_dm(LWM2M_V1_1, 0);
    assert_int_equal(req_code(dm, SIM_GET, "foo", -1, NULL, 0), C(4, 4));
    assert_int_equal(req_code(dm, 5 /* FETCH */, "", -1, NULL, 0), C(4, 5));
    assert_int_equal(req_code(dm, SIM_POST, "1/0", -1, NULL, 0), C(4, 5));
    assert_int_equal(req_code(dm, SIM_GET, "bs", -1, NULL, 0), C(4, 5));
    sim_dm_free(&dm);
}

/* ------------------------------------------------------------ Finish */

static void expect_finish(sim_dm_t *dm, int code, const char *reason_part)
{
    sim_response_t out;
    assert_int_equal(finish(dm, &out), code);
    if (code == C(2, 4)) {
        assert_int_equal(out.event, SIM_DM_EV_FINISH_OK);
    } else {
        assert_int_equal(out.event, SIM_DM_EV_FINISH_REJECTED);
        if (!strstr(out.detail, reason_part))
            fail_msg("reason \"%s\" lacks \"%s\"", out.detail, reason_part);
    }
    sim_response_clear(&out);
}

static void test_finish_good(void **state)
{
    (void)state;
    sim_dm_t *dm = make_dm(LWM2M_V1_0, 0);
    write_server_tlv(dm, 1, 0, "coap://127.0.0.1:5683", 3, true);
    expect_finish(dm, C(2, 4), NULL);
    sim_dm_free(&dm);
    dm = make_dm(LWM2M_V1_1, 0);
    write_server_tlv(dm, 1, 0, "coaps://127.0.0.1:5684", 0, true);
    char why[200];
    assert_int_equal(sim_dm_check(dm, why, sizeof why), 0);
    expect_finish(dm, C(2, 4), NULL);
    sim_dm_free(&dm);
}

static void test_finish_bad(void **state)
{
    (void)state;
    /* nothing written: no server account (ETS int-9) */
    sim_dm_t *dm = make_dm(LWM2M_V1_1, 0);
    expect_finish(dm, C(4, 6), "no LwM2M server account");
    /* a /1 instance with only resource 5 */
    assert_int_equal(put_str(dm, "1/0/5", "[{\"bn\":\"/1/0/5\",\"v\":10}]"), C(2, 4));
    expect_finish(dm, C(4, 6), "/1/0: mandatory resource 0");
    sim_dm_free(&dm);

    dm = make_dm(LWM2M_V1_1, 0); /* Binding missing */
    write_server_tlv(dm, 1, 0, "coap://127.0.0.1:5683", 3, false);
    expect_finish(dm, C(4, 6), "mandatory resource 7");
    sim_dm_free(&dm);

    dm = make_dm(LWM2M_V1_1, 0); /* coaps:// with NoSec */
    write_server_tlv(dm, 1, 0, "coaps://127.0.0.1:5684", 3, true);
    expect_finish(dm, C(4, 6), "coaps URI with NoSec");
    sim_dm_free(&dm);

    dm = make_dm(LWM2M_V1_1, 0); /* coap:// with PSK */
    write_server_tlv(dm, 1, 0, "coap://127.0.0.1:5683", 0, true);
    expect_finish(dm, C(4, 6), "coap URI with a secure");
    sim_dm_free(&dm);

    dm = make_dm(LWM2M_V1_1, 0); /* PSK without a key */
    write_server_tlv(dm, 1, 0, "coaps://127.0.0.1:5684", 0, true);
    assert_int_equal(put_str(dm, "0/1/5", "[{\"bn\":\"/0/1/5\",\"vd\":\"\"}]"), C(2, 4));
    expect_finish(dm, C(4, 6), "PSK mode needs identity (3) and key (5)");
    sim_dm_free(&dm);

    dm = make_dm(LWM2M_V1_1, 0); /* SSIDs do not match */
    write_server_tlv(dm, 1, 0, "coap://127.0.0.1:5683", 3, true);
    assert_int_equal(put_str(dm, "1/0/0", "[{\"bn\":\"/1/0/0\",\"v\":2}]"), C(2, 4));
    expect_finish(dm, C(4, 6), "no LwM2M server account");
    sim_dm_free(&dm);

    dm = make_dm(LWM2M_V1_1, 0); /* Security Mode missing */
    write_server_tlv(dm, 1, 0, "coap://127.0.0.1:5683", 3, true);
    assert_int_equal(req_code(dm, SIM_PUT, "0/1/2", LWM2M_CF_TEXT, "9", 1), C(2, 4));
    expect_finish(dm, C(4, 6), "Security Mode 9 invalid");
    sim_dm_free(&dm);

    /* the fault: Finish always refused */
    sim_dm_config_t cfg;
    sim_dm_config_init(&cfg);
    cfg.reg = g_reg;
    cfg.endpoint = "x";
    cfg.bs_uri = "coap://127.0.0.1:5693";
    cfg.fail_finish = true;
    assert_int_equal(sim_dm_new(&cfg, &dm), 0);
    write_server_tlv(dm, 1, 0, "coap://127.0.0.1:5683", 3, true);
    expect_finish(dm, C(4, 6), "fault injection");
    sim_dm_free(&dm);
}

static void test_factory_and_config(void **state)
{
    (void)state;
    lwm2m_records_t fac;
    lwm2m_records_init(&fac);
    lwm2m_path_t p = lwm2m_path_make(3, 1, 0, 0, 0);
    lwm2m_records_add_int(&fac, &p, 1);
    sim_dm_config_t cfg;
    sim_dm_config_init(&cfg);
    cfg.reg = g_reg;
    cfg.endpoint = "x";
    cfg.bs_uri = "coaps://127.0.0.1:5694";
    cfg.bs_security_mode = SIM_SEC_PSK;
    cfg.psk_identity = (const uint8_t *)"x";
    cfg.psk_identity_len = 1;
    cfg.psk_key = (const uint8_t *)"\x01\x02\x03";
    cfg.psk_key_len = 3;
    cfg.factory = &fac;
    sim_dm_t *dm = NULL;
    assert_int_equal(sim_dm_new(&cfg, &dm), 0);
    assert_true(sim_dm_has_instance(dm, 1, 0));
    p = lwm2m_path_make(3, 0, 0, 5, 0);
    const lwm2m_record_t *r = sim_dm_find(dm, &p);
    assert_int_equal(r->nbytes, 3);
    char txt[16];
    assert_string_equal(sim_record_text(r, txt, sizeof txt), "010203");
    sim_dm_free(&dm);
    lwm2m_records_clear(&fac);
    /* bad configs */
    cfg.factory = NULL;
    cfg.bs_security_mode = SIM_SEC_CERT;
    assert_int_equal(sim_dm_new(&cfg, &dm), LWM2M_ERR_BAD_REQUEST);
    assert_null(dm);
    cfg.bs_security_mode = SIM_SEC_NOSEC;
    cfg.reg = NULL;
    assert_int_equal(sim_dm_new(&cfg, &dm), LWM2M_ERR_BAD_REQUEST);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_initial_model),
        cmocka_unit_test(test_discover_10),
        cmocka_unit_test(test_discover_11),
        cmocka_unit_test(test_discover_12),
        cmocka_unit_test(test_discover_refused),
        cmocka_unit_test(test_write_tlv_and_types),
        cmocka_unit_test(test_write_old_tlv),
        cmocka_unit_test(test_write_senml),
        cmocka_unit_test(test_write_second_bs_account),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_delete_keeps_bs_oscore),
        cmocka_unit_test(test_read),
        cmocka_unit_test(test_routing),
        cmocka_unit_test(test_finish_good),
        cmocka_unit_test(test_finish_bad),
        cmocka_unit_test(test_factory_and_config),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
