/* Unit tests of the simulated device's Device Management interface
 * (sim/dm.c): CoAP transcripts without sockets. A table of single requests
 * against a fresh registered-device model (good and bad inputs per
 * operation), then sequences that check what a request changed. */
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
#include "sim/sim_int.h"

#define C(cls, d) LWM2M_CODE(cls, d)
#define V10 LWM2M_V1_0
#define V11 LWM2M_V1_1
#define V12 LWM2M_V1_2
#define NONE (-1)

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

/* a device as a management server sees it: BS account /0/0, server account
 * /0/1 + /1/0 (SSID 1, lifetime 300), /3/0, /4/0, /7/0 */
static sim_dm_t *make_dm_bs(lwm2m_version_t v, bool with_bs)
{
    sim_dm_config_t cfg;
    sim_dm_config_init(&cfg);
    cfg.version = v;
    cfg.reg = g_reg;
    cfg.endpoint = "sim-000001";
    cfg.bs_uri = with_bs ? "coap://127.0.0.1:5693" : NULL;
    cfg.dm_uri = "coap://127.0.0.1:5683";
    cfg.preferred_cf = v == V10 ? LWM2M_CF_TLV : LWM2M_CF_SENML_CBOR;
    sim_dm_t *dm = NULL;
    assert_int_equal(sim_dm_new(&cfg, &dm), 0);
    return dm;
}

static sim_dm_t *make_dm(lwm2m_version_t v) { return make_dm_bs(v, true); }

static int req(sim_dm_t *dm, int method, const char *path, const char *query, int cf, int accept, const char *payload,
               sim_response_t *out)
{
    sim_request_t r = {0};
    r.iface = SIM_IFACE_DM;
    r.method = method;
    r.path = path;
    r.path_len = strlen(path);
    r.query = query;
    r.query_len = query ? strlen(query) : 0;
    r.content_format = cf;
    r.accept = accept;
    r.payload = (const uint8_t *)payload;
    r.payload_len = payload ? strlen(payload) : 0;
    sim_dm_handle(dm, &r, out);
    return out->code;
}

static int req_code(sim_dm_t *dm, int method, const char *path, const char *query, int cf, int accept,
                    const char *payload)
{
    sim_response_t out;
    int code = req(dm, method, path, query, cf, accept, payload, &out);
    sim_response_clear(&out);
    return code;
}

static const lwm2m_record_t *find(const sim_dm_t *dm, int len, unsigned o, unsigned i, unsigned r, unsigned ri)
{
    lwm2m_path_t p = lwm2m_path_make(len, o, i, r, ri);
    return sim_dm_find(dm, &p);
}

/* ------------------------------------------------------------ the table */

typedef struct {
    const char *name;
    lwm2m_version_t v;
    int method;
    const char *path, *query;
    int cf, accept;
    const char *payload;
    int code;
    int resp_cf;        /* expected Content-Format of the answer, NONE: not checked */
    const char *has;    /* substring of the (text) answer, NULL: not checked */
    const char *lacks;  /* must not appear */
    sim_dm_event_t event;
} dm_case_t;

#define W14 "[{\"bn\":\"/3/0/\",\"n\":\"14\",\"vs\":\"+02:00\"},{\"n\":\"15\",\"vs\":\"Europe/Berlin\"}]"

static const dm_case_t cases[] = {
    /* Read */
    {"read instance senml-json", V11, SIM_GET, "3/0", NULL, NONE, LWM2M_CF_SENML_JSON, NULL, C(2, 5),
     LWM2M_CF_SENML_JSON, "{\"n\":\"9\",\"v\":100}", NULL, 0},
    {"read resource text", V11, SIM_GET, "3/0/0", NULL, NONE, LWM2M_CF_TEXT, NULL, C(2, 5), LWM2M_CF_TEXT, "lwdm",
     NULL, 0},
    {"read no accept 1.1: preferred", V11, SIM_GET, "3/0/0", NULL, NONE, NONE, NULL, C(2, 5), LWM2M_CF_SENML_CBOR,
     NULL, NULL, 0},
    {"read no accept 1.0: text", V10, SIM_GET, "3/0/0", NULL, NONE, NONE, NULL, C(2, 5), LWM2M_CF_TEXT, "lwdm", NULL,
     0},
    {"read no accept 1.0 instance: TLV", V10, SIM_GET, "3/0", NULL, NONE, NONE, NULL, C(2, 5), LWM2M_CF_TLV, NULL,
     NULL, 0},
    {"read object TLV", V11, SIM_GET, "1", NULL, NONE, LWM2M_CF_TLV, NULL, C(2, 5), LWM2M_CF_TLV, NULL, NULL, 0},
    {"read old TLV code", V10, SIM_GET, "3/0", NULL, NONE, LWM2M_CF_OLD_TLV, NULL, C(2, 5), LWM2M_CF_TLV, NULL, NULL,
     0},
    {"read senml-cbor", V11, SIM_GET, "4/0", NULL, NONE, LWM2M_CF_SENML_CBOR, NULL, C(2, 5), LWM2M_CF_SENML_CBOR, NULL,
     NULL, 0},
    {"read multiple resource as text", V11, SIM_GET, "3/0/7", NULL, NONE, LWM2M_CF_TEXT, NULL, C(4, 6), NONE, NULL,
     NULL, 0},
    {"read resource instance", V11, SIM_GET, "3/0/7/1", NULL, NONE, LWM2M_CF_TEXT, NULL, C(2, 5), LWM2M_CF_TEXT,
     "5000", NULL, 0},
    {"read resource instance 1.0", V10, SIM_GET, "3/0/7/1", NULL, NONE, LWM2M_CF_TEXT, NULL, C(4, 0), NONE, NULL,
     NULL, 0},
    {"read RI of a single resource", V11, SIM_GET, "3/0/9/0", NULL, NONE, LWM2M_CF_TEXT, NULL, C(4, 0), NONE, NULL,
     NULL, 0},
    {"read instance as opaque", V11, SIM_GET, "3/0", NULL, NONE, LWM2M_CF_OPAQUE, NULL, C(4, 6), NONE, NULL, NULL, 0},
    {"read string as opaque", V11, SIM_GET, "3/0/0", NULL, NONE, LWM2M_CF_OPAQUE, NULL, C(4, 6), NONE, NULL, NULL, 0},
    {"read OMA JSON", V11, SIM_GET, "3/0", NULL, NONE, LWM2M_CF_OMA_JSON, NULL, C(4, 6), NONE, NULL, NULL, 0},
    {"read SenML from 1.0", V10, SIM_GET, "3/0", NULL, NONE, LWM2M_CF_SENML_JSON, NULL, C(4, 6), NONE, NULL, NULL, 0},
    {"read LwM2M CBOR from 1.1", V11, SIM_GET, "3/0", NULL, NONE, LWM2M_CF_LWM2M_CBOR, NULL, C(4, 6), NONE, NULL,
     NULL, 0},
    {"read executable", V11, SIM_GET, "3/0/4", NULL, NONE, LWM2M_CF_TEXT, NULL, C(4, 5), NONE, NULL, NULL, 0},
    {"read missing instance", V11, SIM_GET, "3/1", NULL, NONE, LWM2M_CF_TLV, NULL, C(4, 4), NONE, NULL, NULL, 0},
    {"read undefined resource", V11, SIM_GET, "3/0/99", NULL, NONE, LWM2M_CF_TLV, NULL, C(4, 4), NONE, NULL, NULL, 0},
    {"read resource without value", V11, SIM_GET, "3/0/22", NULL, NONE, LWM2M_CF_TLV, NULL, C(4, 4), NONE, NULL,
     NULL, 0},
    {"read unsupported object", V11, SIM_GET, "5", NULL, NONE, LWM2M_CF_TLV, NULL, C(4, 4), NONE, NULL, NULL, 0},
    {"read security", V11, SIM_GET, "0/1", NULL, NONE, LWM2M_CF_TLV, NULL, C(4, 1), NONE, NULL, NULL, 0},
    {"read security object", V11, SIM_GET, "0", NULL, NONE, NONE, NULL, C(4, 1), NONE, NULL, NULL, 0},
    {"read oscore", V11, SIM_GET, "21", NULL, NONE, LWM2M_CF_TLV, NULL, C(4, 1), NONE, NULL, NULL, 0},
    {"read root", V11, SIM_GET, "", NULL, NONE, LWM2M_CF_TLV, NULL, C(4, 5), NONE, NULL, NULL, 0},
    {"read lifetime", V11, SIM_GET, "1/0/1", NULL, NONE, LWM2M_CF_TEXT, NULL, C(2, 5), LWM2M_CF_TEXT, "300", NULL, 0},
    {"read bad path", V11, SIM_GET, "3/x", NULL, NONE, NONE, NULL, C(4, 4), NONE, NULL, NULL, 0},
    /* Discover */
    {"discover object 1.1", V11, SIM_GET, "3", NULL, NONE, LWM2M_CF_LINK, NULL, C(2, 5), LWM2M_CF_LINK,
     "</3>;ver=1.1,</3/0>,</3/0/0>,</3/0/1>", NULL, 0},
    {"discover object 1.0", V10, SIM_GET, "3", NULL, NONE, LWM2M_CF_LINK, NULL, C(2, 5), LWM2M_CF_LINK,
     "</3>,</3/0>,</3/0/0>", "ver", 0},
    {"discover lists executables", V11, SIM_GET, "3/0", NULL, NONE, LWM2M_CF_LINK, NULL, C(2, 5), LWM2M_CF_LINK,
     "</3/0/3>,</3/0/4>,</3/0/5>,</3/0/6>;dim=2", NULL, 0},
    {"discover 1.0 hides 1/x/9", V10, SIM_GET, "1/0", NULL, NONE, LWM2M_CF_LINK, NULL, C(2, 5), LWM2M_CF_LINK,
     "</1/0/8>", "</1/0/9>", 0},
    {"discover resource dim", V11, SIM_GET, "3/0/7", NULL, NONE, LWM2M_CF_LINK, NULL, C(2, 5), LWM2M_CF_LINK,
     "</3/0/7>;dim=2", "</3/0/7/0>", 0},
    {"discover resource 1.2 lists instances", V12, SIM_GET, "3/0/7", NULL, NONE, LWM2M_CF_LINK, NULL, C(2, 5),
     LWM2M_CF_LINK, "</3/0/7>;dim=2,</3/0/7/0>,</3/0/7/1>", NULL, 0},
    {"discover depth 0 (1.2)", V12, SIM_GET, "3", "depth=0", NONE, LWM2M_CF_LINK, NULL, C(2, 5), LWM2M_CF_LINK,
     "</3>;ver=1.2", "</3/0>", 0},
    {"discover depth 1 (1.2)", V12, SIM_GET, "3", "depth=1", NONE, LWM2M_CF_LINK, NULL, C(2, 5), LWM2M_CF_LINK,
     "</3>;ver=1.2,</3/0>", "</3/0/0>", 0},
    {"discover depth before 1.2", V11, SIM_GET, "3", "depth=1", NONE, LWM2M_CF_LINK, NULL, C(4, 0), NONE, NULL, NULL,
     0},
    {"discover depth 4", V12, SIM_GET, "3", "depth=4", NONE, LWM2M_CF_LINK, NULL, C(4, 0), NONE, NULL, NULL, 0},
    {"discover root", V11, SIM_GET, "", NULL, NONE, LWM2M_CF_LINK, NULL, C(4, 0), NONE, NULL, NULL, 0},
    {"discover security", V11, SIM_GET, "0", NULL, NONE, LWM2M_CF_LINK, NULL, C(4, 1), NONE, NULL, NULL, 0},
    {"discover missing resource", V11, SIM_GET, "3/0/22", NULL, NONE, LWM2M_CF_LINK, NULL, C(4, 4), NONE, NULL, NULL,
     0},
    {"discover resource instance", V11, SIM_GET, "3/0/7/0", NULL, NONE, LWM2M_CF_LINK, NULL, C(4, 0), NONE, NULL,
     NULL, 0},
    /* Write */
    {"write resource text", V11, SIM_PUT, "3/0/14", NULL, LWM2M_CF_TEXT, NONE, "+02:00", C(2, 4), NONE, NULL, NULL, 0},
    {"write instance senml", V11, SIM_PUT, "3/0", NULL, LWM2M_CF_SENML_JSON, NONE, W14, C(2, 4), NONE, NULL,
     NULL, 0},
    {"write read-only", V11, SIM_PUT, "3/0/0", NULL, LWM2M_CF_TEXT, NONE, "x", C(4, 5), NONE, NULL, NULL, 0},
    {"write read-only in payload", V11, SIM_PUT, "3/0", NULL, LWM2M_CF_SENML_JSON, NONE,
     "[{\"bn\":\"/3/0/\",\"n\":\"14\",\"vs\":\"+02:00\"},{\"n\":\"0\",\"vs\":\"x\"}]", C(4, 5), NONE, NULL, NULL, 0},
    {"write ssid (read-only)", V11, SIM_PUT, "1/0/0", NULL, LWM2M_CF_TEXT, NONE, "7", C(4, 5), NONE, NULL, NULL, 0},
    {"write executable", V11, SIM_PUT, "3/0/4", NULL, LWM2M_CF_TEXT, NONE, "1", C(4, 5), NONE, NULL, NULL, 0},
    {"write object", V11, SIM_PUT, "3", NULL, LWM2M_CF_SENML_JSON, NONE, "[]", C(4, 5), NONE, NULL, NULL, 0},
    {"write no content format", V11, SIM_PUT, "3/0/14", NULL, NONE, NONE, "+02:00", C(4, 0), NONE, NULL, NULL, 0},
    {"write CBOR 60", V11, SIM_PUT, "3/0/14", NULL, LWM2M_CF_CBOR, NONE, "x", C(4, 15), NONE, NULL, NULL, 0},
    {"write SenML to 1.0", V10, SIM_PUT, "3/0", NULL, LWM2M_CF_SENML_JSON, NONE, "[]", C(4, 15), NONE, NULL, NULL, 0},
    {"write text to an instance", V11, SIM_PUT, "3/0", NULL, LWM2M_CF_TEXT, NONE, "x", C(4, 15), NONE, NULL, NULL, 0},
    {"write wrong type", V11, SIM_PUT, "3/0/13", NULL, LWM2M_CF_TEXT, NONE, "noon", C(4, 0), NONE, NULL, NULL, 0},
    {"write malformed json", V11, SIM_PUT, "3/0", NULL, LWM2M_CF_SENML_JSON, NONE, "[{\"bn\":", C(4, 0), NONE, NULL,
     NULL, 0},
    {"write outside target", V11, SIM_PUT, "3/0", NULL, LWM2M_CF_SENML_JSON, NONE,
     "[{\"bn\":\"/1/0/\",\"n\":\"1\",\"v\":5}]", C(4, 0), NONE, NULL, NULL, 0},
    {"write missing instance", V11, SIM_PUT, "3/1/14", NULL, LWM2M_CF_TEXT, NONE, "x", C(4, 4), NONE, NULL, NULL, 0},
    {"write undefined resource", V11, SIM_PUT, "3/0/99", NULL, LWM2M_CF_TEXT, NONE, "x", C(4, 4), NONE, NULL, NULL, 0},
    {"write security", V11, SIM_PUT, "0/1/0", NULL, LWM2M_CF_TEXT, NONE, "coap://x", C(4, 1), NONE, NULL, NULL, 0},
    {"write resource instance 1.0", V10, SIM_PUT, "3/0/7/0", NULL, LWM2M_CF_TEXT, NONE, "1", C(4, 0), NONE, NULL,
     NULL, 0},
    {"write read-only resource instance", V11, SIM_PUT, "3/0/7/0", NULL, LWM2M_CF_TEXT, NONE, "1", C(4, 5), NONE,
     NULL, NULL, 0},
    {"write empty payload to a resource", V11, SIM_PUT, "3/0/14", NULL, LWM2M_CF_SENML_JSON, NONE, "[]", C(4, 0), NONE,
     NULL, NULL, 0},
    {"write lifetime: server changed", V11, SIM_PUT, "1/0/1", NULL, LWM2M_CF_TEXT, NONE, "120", C(2, 4), NONE, NULL,
     NULL, SIM_DM_EV_SERVER_CHANGED},
    {"write binding: server changed", V11, SIM_PUT, "1/0/7", NULL, LWM2M_CF_TEXT, NONE, "UQ", C(2, 4), NONE, NULL,
     NULL, SIM_DM_EV_SERVER_CHANGED},
    {"partial update", V11, SIM_POST, "1/0", NULL, LWM2M_CF_SENML_JSON, NONE, "[{\"bn\":\"/1/0/\",\"n\":\"2\",\"v\":5}]",
     C(2, 4), NONE, NULL, NULL, 0},
    {"partial update read-only", V11, SIM_POST, "1/0", NULL, LWM2M_CF_SENML_JSON, NONE,
     "[{\"bn\":\"/1/0/\",\"n\":\"0\",\"v\":5}]", C(4, 5), NONE, NULL, NULL, 0},
    {"partial update no content format", V11, SIM_POST, "1/0", NULL, NONE, NONE, NULL, C(4, 0), NONE, NULL, NULL, 0},
    /* Execute */
    {"execute update trigger", V11, SIM_POST, "1/0/8", NULL, NONE, NONE, NULL, C(2, 4), NONE, NULL, NULL,
     SIM_DM_EV_UPDATE_TRIGGER},
    {"execute disable", V11, SIM_POST, "1/0/4", NULL, NONE, NONE, NULL, C(2, 4), NONE, NULL, NULL, SIM_DM_EV_DISABLE},
    {"execute bootstrap trigger", V11, SIM_POST, "1/0/9", NULL, NONE, NONE, NULL, C(2, 4), NONE, NULL, NULL,
     SIM_DM_EV_BOOTSTRAP_TRIGGER},
    {"execute bootstrap trigger 1.0", V10, SIM_POST, "1/0/9", NULL, NONE, NONE, NULL, C(4, 4), NONE, NULL, NULL, 0},
    {"execute reboot", V11, SIM_POST, "3/0/4", NULL, NONE, NONE, NULL, C(2, 4), NONE, NULL, NULL, SIM_DM_EV_REBOOT},
    {"execute with arguments", V11, SIM_POST, "3/0/4", NULL, LWM2M_CF_TEXT, NONE, "0='a b',1,2=''", C(2, 4), NONE,
     NULL, NULL, SIM_DM_EV_REBOOT},
    {"execute bad arguments", V11, SIM_POST, "3/0/4", NULL, LWM2M_CF_TEXT, NONE, "x", C(4, 0), NONE, NULL, NULL, 0},
    {"execute unterminated argument", V11, SIM_POST, "3/0/4", NULL, LWM2M_CF_TEXT, NONE, "0='a", C(4, 0), NONE, NULL,
     NULL, 0},
    {"execute two-digit argument", V11, SIM_POST, "3/0/4", NULL, LWM2M_CF_TEXT, NONE, "10", C(4, 0), NONE, NULL, NULL,
     0},
    {"execute other executable", V11, SIM_POST, "3/0/5", NULL, NONE, NONE, NULL, C(2, 4), NONE, NULL, NULL, 0},
    {"execute non-executable", V11, SIM_POST, "3/0/0", NULL, NONE, NONE, NULL, C(4, 5), NONE, NULL, NULL, 0},
    {"execute missing instance", V11, SIM_POST, "3/1/4", NULL, NONE, NONE, NULL, C(4, 4), NONE, NULL, NULL, 0},
    {"execute on security", V11, SIM_POST, "0/1/4", NULL, NONE, NONE, NULL, C(4, 1), NONE, NULL, NULL, 0},
    {"post resource instance", V11, SIM_POST, "3/0/7/0", NULL, NONE, NONE, NULL, C(4, 5), NONE, NULL, NULL, 0},
    {"post root", V11, SIM_POST, "", NULL, NONE, NONE, NULL, C(4, 5), NONE, NULL, NULL, 0},
    /* Create */
    {"create with id", V11, SIM_POST, "2", NULL, LWM2M_CF_SENML_JSON, NONE,
     "[{\"bn\":\"/2/5/\",\"n\":\"0\",\"v\":3},{\"n\":\"1\",\"v\":0},{\"n\":\"3\",\"v\":1}]", C(2, 1), NONE, NULL, NULL, 0},
    {"create empty", V11, SIM_POST, "2", NULL, NONE, NONE, NULL, C(2, 1), NONE, NULL, NULL, 0},
    {"create single-instance object", V11, SIM_POST, "3", NULL, LWM2M_CF_SENML_JSON, NONE,
     "[{\"bn\":\"/3/1/\",\"n\":\"14\",\"vs\":\"x\"}]", C(4, 5), NONE, NULL, NULL, 0},
    {"create existing id", V11, SIM_POST, "1", NULL, LWM2M_CF_SENML_JSON, NONE,
     "[{\"bn\":\"/1/0/\",\"n\":\"0\",\"v\":2}]", C(4, 0), NONE, NULL, NULL, 0},
    {"create two instances", V11, SIM_POST, "2", NULL, LWM2M_CF_SENML_JSON, NONE,
     "[{\"bn\":\"/2/\",\"n\":\"5/0\",\"v\":3},{\"n\":\"6/0\",\"v\":3}]", C(4, 0), NONE, NULL, NULL, 0},
    {"create without content format", V11, SIM_POST, "2", NULL, NONE, NONE, "x", C(4, 0), NONE, NULL, NULL, 0},
    {"create wrong type", V11, SIM_POST, "2", NULL, LWM2M_CF_SENML_JSON, NONE,
     "[{\"bn\":\"/2/5/\",\"n\":\"0\",\"vs\":\"three\"}]", C(4, 0), NONE, NULL, NULL, 0},
    {"create security", V11, SIM_POST, "0", NULL, LWM2M_CF_SENML_JSON, NONE, "[]", C(4, 1), NONE, NULL, NULL, 0},
    /* Delete */
    {"delete missing instance", V11, SIM_DELETE, "2/7", NULL, NONE, NONE, NULL, C(4, 4), NONE, NULL, NULL, 0},
    {"delete device", V11, SIM_DELETE, "3/0", NULL, NONE, NONE, NULL, C(4, 5), NONE, NULL, NULL, 0},
    {"delete connectivity monitoring", V11, SIM_DELETE, "4/0", NULL, NONE, NONE, NULL, C(4, 5), NONE, NULL, NULL, 0},
    {"delete object", V11, SIM_DELETE, "1", NULL, NONE, NONE, NULL, C(4, 5), NONE, NULL, NULL, 0},
    {"delete resource", V11, SIM_DELETE, "3/0/14", NULL, NONE, NONE, NULL, C(4, 5), NONE, NULL, NULL, 0},
    {"delete read-only resource instance", V11, SIM_DELETE, "3/0/7/0", NULL, NONE, NONE, NULL, C(4, 5), NONE, NULL,
     NULL, 0},
    {"delete security", V11, SIM_DELETE, "0/1", NULL, NONE, NONE, NULL, C(4, 1), NONE, NULL, NULL, 0},
    {"delete server instance", V11, SIM_DELETE, "1/0", NULL, NONE, NONE, NULL, C(2, 2), NONE, NULL, NULL, 0},
    /* Write-Attributes */
    {"attributes pmin pmax", V11, SIM_PUT, "3/0/9", "pmin=10&pmax=60", NONE, NONE, NULL, C(2, 4), NONE, NULL, NULL, 0},
    {"attributes thresholds", V11, SIM_PUT, "3/0/9", "gt=50&lt=20&st=5", NONE, NONE, NULL, C(2, 4), NONE, NULL, NULL,
     0},
    {"attributes trailing zeros", V11, SIM_PUT, "3/0/9", "st=1.000000&gt=-0.5e1", NONE, NONE, NULL, C(2, 4), NONE,
     NULL, NULL, 0},
    {"attributes on an instance", V11, SIM_PUT, "3/0", "pmin=5", NONE, NONE, NULL, C(2, 4), NONE, NULL, NULL, 0},
    {"attributes on an object", V11, SIM_PUT, "3", "pmax=600", NONE, NONE, NULL, C(2, 4), NONE, NULL, NULL, 0},
    {"attributes lt above gt", V11, SIM_PUT, "3/0/9", "gt=20&lt=50", NONE, NONE, NULL, C(4, 0), NONE, NULL, NULL, 0},
    {"attributes lt equals gt", V11, SIM_PUT, "3/0/9", "gt=20&lt=20", NONE, NONE, NULL, C(4, 0), NONE, NULL, NULL, 0},
    {"attributes lt+2st >= gt", V11, SIM_PUT, "3/0/9", "gt=50&lt=20&st=15", NONE, NONE, NULL, C(4, 0), NONE, NULL,
     NULL, 0},
    {"attributes negative st", V11, SIM_PUT, "3/0/9", "st=-1", NONE, NONE, NULL, C(4, 0), NONE, NULL, NULL, 0},
    {"attributes pmax below pmin", V11, SIM_PUT, "3/0/9", "pmin=60&pmax=10", NONE, NONE, NULL, C(4, 0), NONE, NULL,
     NULL, 0},
    {"attributes non-integer pmin", V11, SIM_PUT, "3/0/9", "pmin=1.5", NONE, NONE, NULL, C(4, 0), NONE, NULL, NULL, 0},
    {"attributes negative pmin", V11, SIM_PUT, "3/0/9", "pmin=-1", NONE, NONE, NULL, C(4, 0), NONE, NULL, NULL, 0},
    {"attributes bad number", V11, SIM_PUT, "3/0/9", "gt=1e", NONE, NONE, NULL, C(4, 0), NONE, NULL, NULL, 0},
    {"attributes empty value", V11, SIM_PUT, "3/0/9", "pmin=", NONE, NONE, NULL, C(4, 0), NONE, NULL, NULL, 0},
    {"attributes unknown", V11, SIM_PUT, "3/0/9", "foo=1", NONE, NONE, NULL, C(4, 0), NONE, NULL, NULL, 0},
    {"attributes repeated", V11, SIM_PUT, "3/0/9", "pmin=1&pmin=2", NONE, NONE, NULL, C(4, 0), NONE, NULL, NULL, 0},
    {"attributes gt on an instance", V11, SIM_PUT, "3/0", "gt=5", NONE, NONE, NULL, C(4, 0), NONE, NULL, NULL, 0},
    {"attributes gt on a string", V11, SIM_PUT, "3/0/0", "gt=5", NONE, NONE, NULL, C(4, 0), NONE, NULL, NULL, 0},
    {"attributes epmin 1.0", V10, SIM_PUT, "3/0/9", "epmin=1", NONE, NONE, NULL, C(4, 0), NONE, NULL, NULL, 0},
    {"attributes epmin 1.1", V11, SIM_PUT, "3/0/9", "epmin=1&epmax=5", NONE, NONE, NULL, C(2, 4), NONE, NULL, NULL, 0},
    {"attributes on security", V11, SIM_PUT, "0/1", "pmin=1", NONE, NONE, NULL, C(4, 1), NONE, NULL, NULL, 0},
    {"attributes missing resource", V11, SIM_PUT, "3/0/22", "pmin=1", NONE, NONE, NULL, C(4, 4), NONE, NULL, NULL, 0},
    {"attributes on an executable", V11, SIM_PUT, "3/0/4", "pmin=1", NONE, NONE, NULL, C(2, 4), NONE, NULL, NULL, 0},
    {"attributes on the root", V11, SIM_PUT, "", "pmin=1", NONE, NONE, NULL, C(4, 0), NONE, NULL, NULL, 0},
    /* Read-Composite */
    {"read-composite", V11, SIM_FETCH, "", NULL, LWM2M_CF_SENML_JSON, LWM2M_CF_SENML_JSON,
     "[{\"n\":\"/3/0/9\"},{\"n\":\"/0/0\"},{\"n\":\"/3/0/99\"},{\"n\":\"/4/0/2\"},{\"n\":\"/3/0/4\"}]", C(2, 5),
     LWM2M_CF_SENML_JSON, "[{\"n\":\"/3/0/9\",\"v\":100},{\"n\":\"/4/0/2\",\"v\":-71}]", "/0/0", 0},
    {"read-composite answers in the request format", V11, SIM_FETCH, "", NULL, LWM2M_CF_SENML_JSON, NONE,
     "[{\"n\":\"/3/0/0\"}]", C(2, 5), LWM2M_CF_SENML_JSON, "\"vs\":\"lwdm\"", NULL, 0},
    {"read-composite in cbor", V11, SIM_FETCH, "", NULL, LWM2M_CF_SENML_JSON, LWM2M_CF_SENML_CBOR,
     "[{\"n\":\"/3/0/0\"}]", C(2, 5), LWM2M_CF_SENML_CBOR, NULL, NULL, 0},
    {"read-composite 1.0", V10, SIM_FETCH, "", NULL, LWM2M_CF_SENML_JSON, NONE, "[]", C(4, 5), NONE, NULL, NULL, 0},
    {"read-composite on a path", V11, SIM_FETCH, "3", NULL, LWM2M_CF_SENML_JSON, NONE, "[]", C(4, 5), NONE, NULL, NULL,
     0},
    {"read-composite no content format", V11, SIM_FETCH, "", NULL, NONE, NONE, "[]", C(4, 0), NONE, NULL, NULL, 0},
    {"read-composite TLV request", V11, SIM_FETCH, "", NULL, LWM2M_CF_TLV, NONE, "", C(4, 15), NONE, NULL, NULL, 0},
    {"read-composite TLV answer", V11, SIM_FETCH, "", NULL, LWM2M_CF_SENML_JSON, LWM2M_CF_TLV, "[]", C(4, 6), NONE,
     NULL, NULL, 0},
    {"read-composite malformed", V11, SIM_FETCH, "", NULL, LWM2M_CF_SENML_JSON, NONE, "{", C(4, 0), NONE, NULL, NULL, 0},
    /* Write-Composite */
    {"write-composite", V11, SIM_IPATCH, "", NULL, LWM2M_CF_SENML_JSON, NONE,
     "[{\"n\":\"/3/0/14\",\"vs\":\"+01:00\"},{\"n\":\"/1/0/2\",\"v\":2}]", C(2, 4), NONE, NULL, NULL, 0},
    {"write-composite lifetime", V11, SIM_IPATCH, "", NULL, LWM2M_CF_SENML_JSON, NONE,
     "[{\"n\":\"/1/0/1\",\"v\":90}]", C(2, 4), NONE, NULL, NULL, SIM_DM_EV_SERVER_CHANGED},
    {"write-composite read-only", V11, SIM_IPATCH, "", NULL, LWM2M_CF_SENML_JSON, NONE,
     "[{\"n\":\"/3/0/14\",\"vs\":\"+01:00\"},{\"n\":\"/3/0/0\",\"vs\":\"x\"}]", C(4, 5), NONE, NULL, NULL, 0},
    {"write-composite security", V11, SIM_IPATCH, "", NULL, LWM2M_CF_SENML_JSON, NONE,
     "[{\"n\":\"/0/1/0\",\"vs\":\"coap://x\"}]", C(4, 1), NONE, NULL, NULL, 0},
    {"write-composite missing instance", V11, SIM_IPATCH, "", NULL, LWM2M_CF_SENML_JSON, NONE,
     "[{\"n\":\"/1/9/1\",\"v\":5}]", C(4, 4), NONE, NULL, NULL, 0},
    {"write-composite no value", V11, SIM_IPATCH, "", NULL, LWM2M_CF_SENML_JSON, NONE, "[{\"n\":\"/3/0/14\"}]", C(4, 0),
     NONE, NULL, NULL, 0},
    {"write-composite empty", V11, SIM_IPATCH, "", NULL, LWM2M_CF_SENML_JSON, NONE, "[]", C(4, 0), NONE, NULL, NULL, 0},
    {"write-composite 1.0", V10, SIM_IPATCH, "", NULL, LWM2M_CF_SENML_JSON, NONE, "[]", C(4, 5), NONE, NULL, NULL, 0},
    /* other methods */
    {"PATCH", V11, SIM_PATCH, "3/0", NULL, LWM2M_CF_SENML_JSON, NONE, "[]", C(4, 5), NONE, NULL, NULL, 0},
    {"bootstrap finish on the DM interface", V11, SIM_POST, "bs", NULL, NONE, NONE, NULL, C(4, 4), NONE, NULL, NULL, 0},
};

static void test_table(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const dm_case_t *c = &cases[k];
        sim_dm_t *dm = make_dm(c->v);
        sim_response_t out;
        int code = req(dm, c->method, c->path, c->query, c->cf, c->accept, c->payload, &out);
        char got[8], want[8];
        if (code != c->code)
            fail_msg("%s: code %s, want %s (%s)", c->name, sim_code_str(code, got, sizeof got),
                     sim_code_str(c->code, want, sizeof want), out.detail);
        if (c->resp_cf != NONE && out.content_format != c->resp_cf)
            fail_msg("%s: content format %d, want %d", c->name, out.content_format, c->resp_cf);
        char *text = strndup(out.payload ? (const char *)out.payload : "", out.payload_len);
        if (c->has && !strstr(text, c->has))
            fail_msg("%s: answer \"%s\" lacks \"%s\"", c->name, text, c->has);
        if (c->lacks && strstr(text, c->lacks))
            fail_msg("%s: answer \"%s\" has \"%s\"", c->name, text, c->lacks);
        if (c->event && out.event != c->event)
            fail_msg("%s: event %d, want %d", c->name, (int)out.event, (int)c->event);
        if (code >= C(4, 0) && !out.detail[0])
            fail_msg("%s: error without a detail", c->name);
        free(text);
        sim_response_clear(&out);
        sim_dm_free(&dm);
    }
}

/* ------------------------------------------------------------ sequences */

/* A failed write changes nothing; a successful one is read back. */
static void test_write_effects(void **state)
{
    (void)state;
    sim_dm_t *dm = make_dm(V11);
    size_t before = sim_dm_records(dm)->n;
    uint64_t gen = sim_dm_gen(dm);
    assert_int_equal(req_code(dm, SIM_IPATCH, "", NULL, LWM2M_CF_SENML_JSON, NONE,
                              "[{\"n\":\"/3/0/14\",\"vs\":\"+01:00\"},{\"n\":\"/3/0/0\",\"vs\":\"x\"}]"),
                     C(4, 5));
    assert_int_equal(sim_dm_records(dm)->n, before);
    assert_int_equal(sim_dm_gen(dm), gen);
    assert_string_equal((const char *)find(dm, 3, 3, 0, 14, 0)->bytes, "+00:00");
    /* Write-Composite applies both */
    assert_int_equal(req_code(dm, SIM_IPATCH, "", NULL, LWM2M_CF_SENML_JSON, NONE,
                              "[{\"n\":\"/3/0/14\",\"vs\":\"+01:00\"},{\"n\":\"/1/0/2\",\"v\":2}]"),
                     C(2, 4));
    assert_string_equal((const char *)find(dm, 3, 3, 0, 14, 0)->bytes, "+01:00");
    assert_int_equal(find(dm, 3, 1, 0, 2, 0)->v.i, 2);
    assert_true(sim_dm_gen(dm) > gen);
    /* Write-Replace of an instance drops the optional writable resources
     * it does not carry, keeps mandatory and read-only ones */
    assert_int_equal(req_code(dm, SIM_PUT, "1/0", NULL, LWM2M_CF_SENML_JSON, NONE,
                              "[{\"bn\":\"/1/0/\",\"n\":\"1\",\"v\":60}]"),
                     C(2, 4));
    assert_null(find(dm, 3, 1, 0, 2, 0));         /* Default Minimum Period: gone */
    assert_int_equal(find(dm, 3, 1, 0, 1, 0)->v.i, 60);
    assert_non_null(find(dm, 3, 1, 0, 0, 0));     /* SSID (read-only) kept */
    assert_non_null(find(dm, 3, 1, 0, 7, 0));     /* Binding (mandatory) kept */
    /* partial update keeps the others */
    assert_int_equal(req_code(dm, SIM_POST, "1/0", NULL, LWM2M_CF_SENML_JSON, NONE,
                              "[{\"bn\":\"/1/0/\",\"n\":\"3\",\"v\":600}]"),
                     C(2, 4));
    assert_int_equal(find(dm, 3, 1, 0, 1, 0)->v.i, 60);
    assert_int_equal(find(dm, 3, 1, 0, 3, 0)->v.i, 600);
    /* a text write to /3/0/13 moves the clock (sim_dm_tick follows it) */
    uint32_t rng = 1;
    sim_dm_tick(dm, 1, 1000000, &rng);
    assert_int_equal(find(dm, 3, 3, 0, 13, 0)->v.i, 1000000);
    assert_int_equal(req_code(dm, SIM_PUT, "3/0/13", NULL, LWM2M_CF_TEXT, NONE, "2000000"), C(2, 4));
    sim_dm_tick(dm, 1, 1000001, &rng);
    assert_int_equal(find(dm, 3, 3, 0, 13, 0)->v.i, 2000001);
    sim_dm_free(&dm);
}

static void test_write_multiple_resource(void **state)
{
    (void)state;
    sim_dm_t *dm = make_dm(V11);
    /* /1/0/24 Alternate APN Links is a writable multiple resource */
    assert_int_equal(req_code(dm, SIM_PUT, "1/0/24", NULL, LWM2M_CF_SENML_JSON, NONE,
                              "[{\"bn\":\"/1/0/24/\",\"n\":\"0\",\"vlo\":\"11:0\"},{\"n\":\"1\",\"vlo\":\"11:1\"}]"),
                     C(2, 4));
    assert_non_null(find(dm, 4, 1, 0, 24, 1));
    /* replace: the old instances go */
    assert_int_equal(req_code(dm, SIM_PUT, "1/0/24", NULL, LWM2M_CF_SENML_JSON, NONE,
                              "[{\"bn\":\"/1/0/24/\",\"n\":\"5\",\"vlo\":\"11:5\"}]"),
                     C(2, 4));
    assert_null(find(dm, 4, 1, 0, 24, 1));
    assert_non_null(find(dm, 4, 1, 0, 24, 5));
    /* partial update (POST on the resource) adds one */
    assert_int_equal(req_code(dm, SIM_POST, "1/0/24", NULL, LWM2M_CF_SENML_JSON, NONE,
                              "[{\"bn\":\"/1/0/24/\",\"n\":\"6\",\"vlo\":\"11:6\"}]"),
                     C(2, 4));
    assert_non_null(find(dm, 4, 1, 0, 24, 5));
    assert_non_null(find(dm, 4, 1, 0, 24, 6));
    /* one resource instance replaced, then deleted (1.1) */
    assert_int_equal(req_code(dm, SIM_PUT, "1/0/24/6", NULL, LWM2M_CF_TEXT, NONE, "11:7"), C(2, 4));
    assert_int_equal(find(dm, 4, 1, 0, 24, 6)->v.lnk.iid, 7);
    assert_int_equal(req_code(dm, SIM_DELETE, "1/0/24/6", NULL, NONE, NONE, NULL), C(2, 2));
    assert_null(find(dm, 4, 1, 0, 24, 6));
    assert_int_equal(req_code(dm, SIM_DELETE, "1/0/24/6", NULL, NONE, NONE, NULL), C(4, 4));
    /* a single record for a multiple resource */
    assert_int_equal(req_code(dm, SIM_PUT, "1/0", NULL, LWM2M_CF_SENML_JSON, NONE,
                              "[{\"bn\":\"/1/0/\",\"n\":\"24\",\"vlo\":\"11:0\"}]"),
                     C(4, 0));
    sim_dm_free(&dm);
}

static void test_create_delete(void **state)
{
    (void)state;
    sim_dm_t *dm = make_dm(V11);
    sim_response_t out;
    assert_int_equal(req(dm, SIM_POST, "2", NULL, LWM2M_CF_SENML_JSON, NONE,
                         "[{\"bn\":\"/2/5/\",\"n\":\"0\",\"v\":3},{\"n\":\"1\",\"v\":0}]", &out),
                     C(2, 1));
    assert_string_equal(out.location, "/2/5");
    sim_response_clear(&out);
    assert_true(sim_dm_has_instance(dm, 2, 5));
    assert_int_equal(find(dm, 3, 2, 5, 0, 0)->v.i, 3);
    /* no payload: the lowest free id */
    assert_int_equal(req(dm, SIM_POST, "2", NULL, NONE, NONE, NULL, &out), C(2, 1));
    assert_string_equal(out.location, "/2/0");
    sim_response_clear(&out);
    /* TLV resources without an instance wrapper go to the new instance */
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    lwm2m_path_t p = lwm2m_path_make(3, 2, 1, 0, 0);
    lwm2m_records_add_int(&rs, &p, 4);
    uint8_t *buf;
    size_t len;
    lwm2m_path_t base = lwm2m_path_make(2, 2, 1, 0, 0);
    assert_int_equal(lwm2m_encode(LWM2M_CF_TLV, &base, &rs, &buf, &len), 0);
    sim_request_t r = {0};
    r.iface = SIM_IFACE_DM;
    r.method = SIM_POST;
    r.path = "2";
    r.path_len = 1;
    r.content_format = LWM2M_CF_TLV;
    r.accept = -1;
    r.payload = buf;
    r.payload_len = len;
    sim_dm_handle(dm, &r, &out);
    assert_int_equal(out.code, C(2, 1));
    assert_string_equal(out.location, "/2/1");
    assert_int_equal(find(dm, 3, 2, 1, 0, 0)->v.i, 4);
    sim_response_clear(&out);
    free(buf);
    lwm2m_records_clear(&rs);
    /* attributes go with a deleted instance */
    assert_int_equal(req_code(dm, SIM_PUT, "2/5", "pmin=3", NONE, NONE, NULL), C(2, 4));
    assert_int_equal(req_code(dm, SIM_DELETE, "2/5", NULL, NONE, NONE, NULL), C(2, 2));
    assert_false(sim_dm_has_instance(dm, 2, 5));
    assert_int_equal(req(dm, SIM_POST, "2", NULL, LWM2M_CF_SENML_JSON, NONE, "[{\"bn\":\"/2/5/\",\"n\":\"0\",\"v\":3}]",
                         &out),
                     C(2, 1));
    sim_response_clear(&out);
    char *s = NULL;
    assert_int_equal(req(dm, SIM_GET, "2/5", NULL, NONE, LWM2M_CF_LINK, NULL, &out), C(2, 5));
    s = strndup((const char *)out.payload, out.payload_len);
    assert_null(strstr(s, "pmin"));
    free(s);
    sim_response_clear(&out);
    sim_dm_free(&dm);
}

static void test_discover_attributes(void **state)
{
    (void)state;
    sim_dm_t *dm = make_dm(V11);
    assert_int_equal(req_code(dm, SIM_PUT, "3", "pmin=10", NONE, NONE, NULL), C(2, 4));
    assert_int_equal(req_code(dm, SIM_PUT, "3/0", "pmax=60", NONE, NONE, NULL), C(2, 4));
    assert_int_equal(req_code(dm, SIM_PUT, "3/0/9", "gt=50&st=2.5", NONE, NONE, NULL), C(2, 4));
    /* the valueless attribute removes one, the others stay */
    assert_int_equal(req_code(dm, SIM_PUT, "3/0/9", "st&lt=10", NONE, NONE, NULL), C(2, 4));
    sim_response_t out;
    assert_int_equal(req(dm, SIM_GET, "3", NULL, NONE, LWM2M_CF_LINK, NULL, &out), C(2, 5));
    char *s = strndup((const char *)out.payload, out.payload_len);
    assert_non_null(strstr(s, "</3>;ver=1.1;pmin=10,</3/0>;pmax=60,"));
    assert_non_null(strstr(s, "</3/0/9>;gt=50;lt=10,"));
    free(s);
    sim_response_clear(&out);
    /* a resource Discover shows what it inherits */
    assert_int_equal(req(dm, SIM_GET, "3/0/9", NULL, NONE, LWM2M_CF_LINK, NULL, &out), C(2, 5));
    s = strndup((const char *)out.payload, out.payload_len);
    assert_string_equal(s, "</3/0/9>;pmin=10;pmax=60;gt=50;lt=10");
    free(s);
    sim_response_clear(&out);
    /* the attributes in force for an observation add the server defaults */
    assert_int_equal(req_code(dm, SIM_POST, "1/0", NULL, LWM2M_CF_SENML_JSON, NONE,
                              "[{\"bn\":\"/1/0/\",\"n\":\"2\",\"v\":1},{\"n\":\"3\",\"v\":30}]"),
                     C(2, 4));
    sim_attrs_t a;
    lwm2m_path_t p = lwm2m_path_make(3, 4, 0, 2, 0);
    sim_dm_obs_attrs(dm, &p, &a);
    assert_int_equal(a.mask, SIM_ATTR_PMIN | SIM_ATTR_PMAX);
    assert_int_equal(a.pmin, 1);
    assert_int_equal(a.pmax, 30);
    p = lwm2m_path_make(3, 3, 0, 9, 0);
    sim_dm_obs_attrs(dm, &p, &a);
    assert_int_equal(a.pmin, 10);
    assert_int_equal(a.pmax, 60);
    assert_true(a.mask & SIM_ATTR_GT);
    assert_false(a.mask & SIM_ATTR_ST);
    sim_dm_free(&dm);
}

static void test_execute_effects(void **state)
{
    (void)state;
    sim_dm_t *dm = make_dm(V11);
    /* collection: Start resets and counts while ticking, Stop freezes */
    assert_int_equal(req_code(dm, SIM_POST, "7/0/6", NULL, NONE, NONE, NULL), C(2, 4));
    uint32_t rng = 7;
    for (int k = 0; k < 20; k++)
        sim_dm_tick(dm, 1, 1000 + k, &rng);
    int64_t tx = find(dm, 3, 7, 0, 2, 0)->v.i, rx = find(dm, 3, 7, 0, 3, 0)->v.i;
    assert_true(tx >= 2 && rx >= 4);
    assert_int_equal(req_code(dm, SIM_POST, "7/0/7", NULL, NONE, NONE, NULL), C(2, 4));
    for (int k = 0; k < 20; k++)
        sim_dm_tick(dm, 1, 2000 + k, &rng);
    assert_int_equal(find(dm, 3, 7, 0, 2, 0)->v.i, tx);
    assert_int_equal(find(dm, 3, 7, 0, 3, 0)->v.i, rx);
    assert_int_equal(req_code(dm, SIM_POST, "7/0/6", NULL, NONE, NONE, NULL), C(2, 4));
    assert_int_equal(find(dm, 3, 7, 0, 2, 0)->v.i, 0);
    /* Reset Error Code */
    lwm2m_record_t e = {.path = lwm2m_path_make(4, 3, 0, 11, 1), .type = LWM2M_T_INTEGER};
    e.v.i = 5;
    assert_int_equal(sim_dm_set_value(dm, &e), 0);
    assert_non_null(find(dm, 4, 3, 0, 11, 1));
    assert_int_equal(req_code(dm, SIM_POST, "3/0/12", NULL, NONE, NONE, NULL), C(2, 4));
    assert_null(find(dm, 4, 3, 0, 11, 1));
    assert_int_equal(find(dm, 4, 3, 0, 11, 0)->v.i, 0);
    sim_dm_free(&dm);
    /* no Bootstrap-Server account: nothing to go back to */
    dm = make_dm_bs(V11, false);
    assert_int_equal(req_code(dm, SIM_POST, "1/0/9", NULL, NONE, NONE, NULL), C(4, 5));
    sim_dm_free(&dm);
}

static void test_tick_values(void **state)
{
    (void)state;
    sim_dm_t *dm = make_dm(V11);
    uint32_t rng = 42;
    uint64_t gen = sim_dm_gen(dm);
    sim_dm_tick(dm, 1, 1700000000, &rng);
    assert_true(sim_dm_gen(dm) > gen);
    assert_int_equal(find(dm, 3, 3, 0, 13, 0)->v.i, 1700000000);
    assert_int_equal(find(dm, 3, 3, 0, 13, 0)->type, LWM2M_T_TIME);
    /* a day drains the battery a long way; signal stays plausible */
    for (int k = 0; k < 600; k++) {
        sim_dm_tick(dm, 60, 1700000000 + 60 * k, &rng);
        int64_t rss = find(dm, 3, 4, 0, 2, 0)->v.i, lvl = find(dm, 3, 3, 0, 9, 0)->v.i;
        assert_true(rss >= -110 && rss <= -50);
        assert_true(lvl >= 5 && lvl <= 100);
        int64_t mem = find(dm, 3, 3, 0, 10, 0)->v.i;
        assert_true(mem >= 64 && mem <= 1000);
    }
    assert_true(find(dm, 3, 3, 0, 9, 0)->v.i < 100);
    /* same seed, same values */
    sim_dm_t *a = make_dm(V11), *b = make_dm(V11);
    uint32_t ra = 9, rb = 9;
    for (int k = 0; k < 50; k++) {
        sim_dm_tick(a, 1, 100 + k, &ra);
        sim_dm_tick(b, 1, 100 + k, &rb);
    }
    assert_int_equal(find(a, 3, 4, 0, 2, 0)->v.i, find(b, 3, 4, 0, 2, 0)->v.i);
    sim_dm_free(&a);
    sim_dm_free(&b);
    /* sim_dm_set_value: checked, and the battery drains on from there */
    lwm2m_record_t r = {.path = lwm2m_path_make(3, 3, 0, 9, 0), .type = LWM2M_T_INTEGER};
    r.v.i = 50;
    assert_int_equal(sim_dm_set_value(dm, &r), 0);
    assert_int_equal(find(dm, 3, 3, 0, 9, 0)->v.i, 50);
    sim_dm_tick(dm, 1, 1, &rng);
    assert_int_equal(find(dm, 3, 3, 0, 9, 0)->v.i, 50);
    r.path = lwm2m_path_make(3, 3, 5, 9, 0);
    assert_int_equal(sim_dm_set_value(dm, &r), LWM2M_ERR_NOT_FOUND);
    r.path = lwm2m_path_make(3, 3, 0, 0, 0); /* an integer for a string */
    assert_int_equal(sim_dm_set_value(dm, &r), LWM2M_ERR_BAD_REQUEST);
    r.path = lwm2m_path_make(2, 3, 0, 0, 0);
    assert_int_equal(sim_dm_set_value(dm, &r), LWM2M_ERR_BAD_REQUEST);
    sim_dm_free(&dm);
}

static void test_server_account(void **state)
{
    (void)state;
    sim_dm_t *dm = make_dm(V11);
    uint16_t sec = 99, srv = 99;
    assert_int_equal(sim_dm_server_account(dm, &sec, &srv), 0);
    assert_int_equal(sec, 1);
    assert_int_equal(srv, 0);
    assert_int_equal(sim_dm_bs_account(dm), 0);
    sim_dm_free(&dm);
    dm = make_dm_bs(V11, false);
    assert_int_equal(sim_dm_server_account(dm, &sec, &srv), 0);
    assert_int_equal(sec, 0);
    assert_int_equal(sim_dm_bs_account(dm), -1);
    sim_dm_free(&dm);
    /* only a BS account: no server */
    sim_dm_config_t cfg;
    sim_dm_config_init(&cfg);
    cfg.reg = g_reg;
    cfg.endpoint = "x";
    cfg.bs_uri = "coap://127.0.0.1:5693";
    assert_int_equal(sim_dm_new(&cfg, &dm), 0);
    assert_int_equal(sim_dm_server_account(dm, &sec, &srv), LWM2M_ERR_NOT_FOUND);
    sim_dm_free(&dm);
    /* neither account: refused */
    cfg.bs_uri = NULL;
    assert_int_equal(sim_dm_new(&cfg, &dm), LWM2M_ERR_BAD_REQUEST);
    cfg.dm_uri = "coap://127.0.0.1:5683";
    cfg.dm_ssid = 0;
    assert_int_equal(sim_dm_new(&cfg, &dm), LWM2M_ERR_BAD_REQUEST);
}

/* a model built by Bootstrap-Writes serves DM requests on the same data */
static void test_bootstrap_then_dm(void **state)
{
    (void)state;
    sim_dm_config_t cfg;
    sim_dm_config_init(&cfg);
    cfg.reg = g_reg;
    cfg.endpoint = "sim-1";
    cfg.bs_uri = "coap://127.0.0.1:5693";
    sim_dm_t *dm = NULL;
    assert_int_equal(sim_dm_new(&cfg, &dm), 0);
    sim_request_t r = {0};
    r.path = "1/0";
    r.path_len = 3;
    r.method = SIM_PUT;
    r.content_format = LWM2M_CF_SENML_JSON;
    r.accept = -1;
    const char *w = "[{\"bn\":\"/1/0/\",\"n\":\"0\",\"v\":1},{\"n\":\"1\",\"v\":60},{\"n\":\"6\",\"vb\":false},"
                    "{\"n\":\"7\",\"vs\":\"U\"}]";
    r.payload = (const uint8_t *)w;
    r.payload_len = strlen(w);
    sim_response_t out;
    sim_dm_handle(dm, &r, &out); /* Bootstrap-Write writes SSID (read-only for a DM server) */
    assert_int_equal(out.code, C(2, 4));
    sim_response_clear(&out);
    r.iface = SIM_IFACE_DM; /* the same write from a management server */
    sim_dm_handle(dm, &r, &out);
    assert_int_equal(out.code, C(4, 5));
    sim_response_clear(&out);
    sim_dm_free(&dm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_write_effects),
        cmocka_unit_test(test_write_multiple_resource),
        cmocka_unit_test(test_create_delete),
        cmocka_unit_test(test_discover_attributes),
        cmocka_unit_test(test_execute_effects),
        cmocka_unit_test(test_tick_values),
        cmocka_unit_test(test_server_account),
        cmocka_unit_test(test_bootstrap_then_dm),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
