/* Unit tests for server/lwm2m/senml_cbor.c. CBOR vectors are written out by
 * hand from RFC 8949 (major types, lengths) and RFC 8428 Table 4 (labels):
 * bver -1 = 20, bn -2 = 21, bt -3 = 22, bv -5 = 24, n 0 = 00, v 2 = 02,
 * vs 3 = 03, vb 4 = 04, t 6 = 06, vd 8 = 08, "vlo" = 63 76 6C 6F. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/lwm2m/codec.h"
#include "server/lwm2m/registry.h"

#include "codec_test_util.h"


#define BAD LWM2M_ERR_BAD_REQUEST

/* text strings used below */
#define T_101 "66 2F 31 2F 30 2F 31"    /* "/1/0/1" */
#define T_30S "65 2F 33 2F 30 2F"       /* "/3/0/" */
#define T_10S "65 2F 31 2F 30 2F"       /* "/1/0/" */
#define T_309 "66 2F 33 2F 30 2F 39"    /* "/3/0/9" */
#define T_30 "64 2F 33 2F 30"           /* "/3/0" */
#define T_OMA "74 4F 70 65 6E 20 4D 6F 62 69 6C 65 20 41 6C 6C 69 61 6E 63 65" /* "Open Mobile Alliance" */
#define T_VLO "63 76 6C 6F"             /* "vlo" */

/* [{bn:"/3/0/", n:"0", vs:"Open Mobile Alliance"}, {n:"9", v:100}] */
#define DEVICE_CBOR "82 A3 21 " T_30S " 00 61 30 03 " T_OMA " A2 00 61 39 02 18 64"

typedef struct {
    const char *name;
    const char *base;
    const char *hex;
    int rc;
    exp_t exp[4];
} ccase_t;

static const ccase_t decode_cases[] = {
    {"device subset", "/3/0", DEVICE_CBOR, 0, {E_STR("/3/0/0", "Open Mobile Alliance"), E_INT("/3/0/9", 100)}},
    {"small negative", "/", "81 A2 00 " T_101 " 02 38 63", 0, {E_INT("/1/0/1", -100)}},
    {"uint64 max is Unsigned", "/", "81 A2 00 " T_101 " 02 1B FF FF FF FF FF FF FF FF", 0, {E_UINT("/1/0/1", UINT64_MAX)}},
    {"int64 max is Integer", "/", "81 A2 00 " T_101 " 02 1B 7F FF FF FF FF FF FF FF", 0, {E_INT("/1/0/1", INT64_MAX)}},
    {"int64 min", "/", "81 A2 00 " T_101 " 02 3B 7F FF FF FF FF FF FF FF", 0, {E_INT("/1/0/1", INT64_MIN)}},
    {"half float", "/", "81 A2 00 " T_101 " 02 F9 3E 00", 0, {E_FLT("/1/0/1", 1.5)}},
    {"single float", "/", "81 A2 00 " T_101 " 02 FA 3F C0 00 00", 0, {E_FLT("/1/0/1", 1.5)}},
    {"double", "/", "81 A2 00 " T_101 " 02 FB 3F B9 99 99 99 99 99 9A", 0, {E_FLT("/1/0/1", 0.1)}},
    {"float with integral value stays float", "/", "81 A2 00 " T_101 " 02 FA 40 A0 00 00", 0, {E_FLT("/1/0/1", 5.0)}},
    {"vb", "/", "82 A2 00 " T_101 " 04 F5 A2 00 " T_309 " 04 F4", 0, {E_BOOL("/1/0/1", true), E_BOOL("/3/0/9", false)}},
    {"vd", "/", "81 A2 00 " T_101 " 08 43 01 02 03", 0, {E_OPQ("/1/0/1", "\x01\x02\x03", 3)}},
    {"vd empty", "/", "81 A2 00 " T_101 " 08 40", 0, {E_OPQ("/1/0/1", "", 0)}},
    {"vs", "/", "81 A2 00 " T_101 " 03 62 68 69", 0, {E_STR("/1/0/1", "hi")}},
    {"vs UTF-8", "/", "81 A2 00 " T_101 " 03 62 C3 A9", 0, {E_STR("/1/0/1", "\xC3\xA9")}},
    {"vlo", "/", "81 A2 00 " T_101 " " T_VLO " 63 33 3A 30", 0, {E_LNK("/1/0/1", 3, 0)}},
    {"indefinite array and map", "/", "9F BF 00 " T_101 " 02 05 FF FF", 0, {E_INT("/1/0/1", 5)}},
    {"indefinite map in a definite array", "/", "82 BF 00 " T_101 " 02 05 FF A2 00 " T_309 " 02 06", 0,
     {E_INT("/1/0/1", 5), E_INT("/3/0/9", 6)}},
    {"bn on a later record", "/", "82 A3 21 " T_30S " 00 61 30 03 61 61 A3 21 " T_10S " 00 61 31 02 05", 0,
     {E_STR("/3/0/0", "a"), E_INT("/1/0/1", 5)}},
    {"bn alone", "/3/0/9", "81 A2 21 " T_309 " 02 05", 0, {E_INT("/3/0/9", 5)}},
    {"bv", "/", "81 A4 21 " T_30S " 24 0A 00 61 39 02 05", 0, {E_INT("/3/0/9", 15)}},
    {"bt, t ignored", "/", "81 A4 22 1A 5F 5E 10 00 00 " T_101 " 02 05 06 00", 0, {E_INT("/1/0/1", 5)}},
    {"bver 10", "/", "81 A3 20 0A 00 " T_101 " 02 05", 0, {E_INT("/1/0/1", 5)}},
    {"unknown text label skipped, nested", "/", "81 A3 00 " T_101 " 02 05 63 66 6F 6F 82 01 A1 01 02", 0, {E_INT("/1/0/1", 5)}},
    {"unknown text label, tagged value", "/", "81 A3 63 66 6F 6F C1 1A 00 00 00 00 00 " T_101 " 02 05", 0, {E_INT("/1/0/1", 5)}},
    {"unknown text label, indefinite value", "/", "81 A3 63 66 6F 6F 9F 01 BF 01 02 FF FF 00 " T_101 " 02 05", 0, {E_INT("/1/0/1", 5)}},
    {"skipped nesting at the bound", "/", "81 A3 00 " T_101 " 02 05 61 78 81 81 81 81 81 81 81 81 81 81 81 81 81 81 81 81 01", 0, {E_INT("/1/0/1", 5)}},
    {"name-only record", "/", "81 A1 00 " T_30, 0, {E_NONE("/3/0")}},
    {"text labels (JSON names)", "/", "81 A3 62 62 6E " T_30S " 61 6E 61 39 61 76 18 64", 0, {E_INT("/3/0/9", 100)}},
    {"empty record names the root", "/", "81 A0", 0, {E_NONE("/")}},
    {"empty pack", "/3/0", "80", 0, {{0}}},
    /* ---- bad ---- */
    {"empty input", "/", "", BAD, {{0}}},
    {"map at the top", "/", "A0", BAD, {{0}}},
    {"integer at the top", "/", "01", BAD, {{0}}},
    {"record not a map", "/", "81 01", BAD, {{0}}},
    {"record an array", "/", "81 80", BAD, {{0}}},
    {"array cut short", "/", "81", BAD, {{0}}},
    {"indefinite array without break", "/", "9F A0", BAD, {{0}}},
    {"map value missing", "/", "81 A1 00", BAD, {{0}}},
    {"text cut short", "/", "81 A1 00 66 2F 31", BAD, {{0}}},
    {"huge array count", "/", "9B FF FF FF FF FF FF FF FF", BAD, {{0}}},
    {"huge array count, one record", "/", "9B 00 00 00 00 FF FF FF FF A0", BAD, {{0}}},
    {"huge map count", "/", "81 BB FF FF FF FF FF FF FF FF 00 61 31", BAD, {{0}}},
    {"huge text length", "/", "81 A1 00 7B FF FF FF FF FF FF FF FF 2F", BAD, {{0}}},
    {"huge bytes length", "/", "81 A2 00 " T_101 " 08 5A FF FF FF FF 00", BAD, {{0}}},
    {"8-byte length, no data", "/", "81 A1 00 7B 00 00 00 00 00 00 00 01", BAD, {{0}}},
    {"integer header cut", "/", "81 A2 00 " T_101 " 02 1B 00 00", BAD, {{0}}},
    {"trailing byte", "/", "80 00", BAD, {{0}}},
    {"second array", "/", "80 80", BAD, {{0}}},
    {"break at the top", "/", "FF", BAD, {{0}}},
    {"break in a definite map", "/", "81 A1 FF", BAD, {{0}}},
    {"break in a definite array", "/", "81 FF", BAD, {{0}}},
    {"reserved additional info", "/", "81 A1 00 1C", BAD, {{0}}},
    {"label: half float", "/", "81 A1 F9 3C 00 01", BAD, {{0}}},
    {"label: byte string", "/", "81 A1 41 00 01", BAD, {{0}}},
    {"label: array", "/", "81 A1 80 01", BAD, {{0}}},
    {"label: map", "/", "81 A1 A0 01", BAD, {{0}}},
    {"label: bool", "/", "81 A1 F5 01", BAD, {{0}}},
    {"label: null", "/", "81 A1 F6 01", BAD, {{0}}},
    {"label: tagged", "/", "81 A1 C1 00 01", BAD, {{0}}},
    {"label: unknown integer 9", "/", "81 A1 09 01", BAD, {{0}}},
    {"label: unknown integer -7", "/", "81 A1 26 01", BAD, {{0}}},
    {"label: must-understand text", "/", "81 A1 64 66 6F 6F 5F 01", BAD, {{0}}},
    {"text and integer label for the same field", "/", "81 A3 61 6E " T_101 " 00 " T_101 " 02 05", BAD, {{0}}},
    {"duplicate value label", "/", "81 A3 00 " T_101 " 02 01 02 02", BAD, {{0}}},
    {"duplicate name label", "/", "81 A3 00 " T_101 " 00 " T_101 " 02 01", BAD, {{0}}},
    {"duplicate base label", "/", "81 A3 21 " T_101 " 21 " T_101 " 02 01", BAD, {{0}}},
    {"two values", "/", "81 A3 00 " T_101 " 02 01 03 61 78", BAD, {{0}}},
    {"n as integer", "/", "81 A1 00 01", BAD, {{0}}},
    {"bn as integer", "/", "81 A1 21 01", BAD, {{0}}},
    {"vs as bytes", "/", "81 A2 00 " T_101 " 03 41 78", BAD, {{0}}},
    {"vd as text", "/", "81 A2 00 " T_101 " 08 61 78", BAD, {{0}}},
    {"vb as integer", "/", "81 A2 00 " T_101 " 04 01", BAD, {{0}}},
    {"v as text", "/", "81 A2 00 " T_101 " 02 61 31", BAD, {{0}}},
    {"v as bool", "/", "81 A2 00 " T_101 " 02 F5", BAD, {{0}}},
    {"v null", "/", "81 A2 00 " T_101 " 02 F6", BAD, {{0}}},
    {"v undefined", "/", "81 A2 00 " T_101 " 02 F7", BAD, {{0}}},
    {"v array", "/", "81 A2 00 " T_101 " 02 80", BAD, {{0}}},
    {"v tagged (decimal fraction)", "/", "81 A2 00 " T_101 " 02 C4 82 21 19 6A B3", BAD, {{0}}},
    {"v below int64", "/", "81 A2 00 " T_101 " 02 3B 80 00 00 00 00 00 00 00", BAD, {{0}}},
    {"indefinite text", "/", "81 A2 00 " T_101 " 03 7F 61 78 FF", BAD, {{0}}},
    {"indefinite bytes", "/", "81 A2 00 " T_101 " 08 5F 41 78 FF", BAD, {{0}}},
    {"invalid UTF-8 in vs", "/", "81 A2 00 " T_101 " 03 61 FF", BAD, {{0}}},
    {"invalid UTF-8 in n", "/", "81 A1 00 62 2F C0", BAD, {{0}}},
    {"bver 11", "/", "81 A3 20 0B 00 " T_101 " 02 05", BAD, {{0}}},
    {"bver negative", "/", "81 A3 20 20 00 " T_101 " 02 05", BAD, {{0}}},
    {"bv overflow", "/", "81 A3 24 1B 7F FF FF FF FF FF FF FF 00 " T_101 " 02 01", BAD, {{0}}},
    {"vlo without colon", "/", "81 A2 00 " T_101 " " T_VLO " 61 33", BAD, {{0}}},
    {"skipped nesting past the bound", "/",
     "81 A3 00 " T_101 " 02 05 61 78 81 81 81 81 81 81 81 81 81 81 81 81 81 81 81 81 81 01", BAD, {{0}}},
    {"break in a skipped definite array", "/", "81 A2 61 78 81 FF 00 " T_101, BAD, {{0}}},
    {"value at an instance", "/", "81 A2 00 " T_30 " 02 01", BAD, {{0}}},
    {"outside the base", "/3/0", "81 A2 00 " T_101 " 02 01", BAD, {{0}}},
    {"name not a path", "/", "81 A2 00 63 2F 78 2F 02 01", BAD, {{0}}},
    {"good record then a bad one", "/", "82 A2 00 " T_101 " 02 01 A1 00 01", BAD, {{0}}},
};

static void test_cbor_decode_table(void **state)
{
    (void)state;
    static uint8_t buf[512];
    for (size_t k = 0; k < sizeof decode_cases / sizeof decode_cases[0]; k++) {
        const ccase_t *c = &decode_cases[k];
        size_t n = unhex(c->hex, buf, sizeof buf);
        lwm2m_path_t base = P(c->base);
        lwm2m_records_t out;
        sentinel_init(&out);
        int rc = lwm2m_senml_cbor_decode(&base, buf, n, &out);
        if (rc != c->rc)
            fail_msg("%s: rc %d, want %d", c->name, rc, c->rc);
        if (rc != 0)
            sentinel_check(c->name, &out);
        else
            check_records(c->name, &out, 1, c->exp, 4);
        lwm2m_records_clear(&out);
    }
}

/* ======================================================= encode table */

typedef struct {
    const char *name;
    const char *base;
    int rc;
    const char *hex;
    exp_t recs[3];
} ecase_t;

static const ecase_t encode_cases[] = {
    {"device subset", "/3/0", 0, DEVICE_CBOR, {E_STR("/3/0/0", "Open Mobile Alliance"), E_INT("/3/0/9", 100)}},
    {"single resource", "/3/0/9", 0, "81 A2 21 " T_309 " 02 18 64", {E_INT("/3/0/9", 100)}},
    {"same path twice", "/3/0/9", 0, "82 A2 21 " T_309 " 02 01 A1 02 02", {E_INT("/3/0/9", 1), E_INT("/3/0/9", 2)}},
    {"negative", "/1/0/1", 0, "81 A2 21 " T_101 " 02 38 63", {E_INT("/1/0/1", -100)}},
    {"int64 min", "/1/0/1", 0, "81 A2 21 " T_101 " 02 3B 7F FF FF FF FF FF FF FF", {E_INT("/1/0/1", INT64_MIN)}},
    {"uint64 max", "/1/0/1", 0, "81 A2 21 " T_101 " 02 1B FF FF FF FF FF FF FF FF", {E_UINT("/1/0/1", UINT64_MAX)}},
    {"time", "/1/0/1", 0, "81 A2 21 " T_101 " 02 1A 51 82 42 8F", {E_TIME("/1/0/1", 1367491215)}},
    {"float exact in single", "/1/0/1", 0, "81 A2 21 " T_101 " 02 FA 3F C0 00 00", {E_FLT("/1/0/1", 1.5)}},
    {"float needs double", "/1/0/1", 0, "81 A2 21 " T_101 " 02 FB 3F B9 99 99 99 99 99 9A", {E_FLT("/1/0/1", 0.1)}},
    {"infinity in single", "/1/0/1", 0, "81 A2 21 " T_101 " 02 FA FF 80 00 00", {E_FLT("/1/0/1", -INFINITY)}},
    {"bool", "/1/0/1", 0, "81 A2 21 " T_101 " 04 F5", {E_BOOL("/1/0/1", true)}},
    {"opaque as bytes", "/1/0/1", 0, "81 A2 21 " T_101 " 08 43 01 02 03", {E_OPQ("/1/0/1", "\x01\x02\x03", 3)}},
    {"string as text", "/1/0/1", 0, "81 A2 21 " T_101 " 03 62 68 69", {E_STR("/1/0/1", "hi")}},
    {"corelnk as text", "/1/0/1", 0, "81 A2 21 " T_101 " 03 62 3C 3E", {E_CORE("/1/0/1", "<>")}},
    {"objlnk as vlo", "/1/0/1", 0, "81 A2 21 " T_101 " " T_VLO " 63 33 3A 30", {E_LNK("/1/0/1", 3, 0)}},
    {"relative names", "/1/0", 0, "82 A3 21 " T_10S " 00 61 31 02 05 A2 00 63 36 2F 37 04 F4",
     {E_INT("/1/0/1", 5), E_BOOL("/1/0/6/7", false)}},
    {"root: absolute names, no bn", "/", 0, "82 A1 00 67 2F 33 2F 30 2F 31 30 A2 00 " T_101 " 02 01",
     {E_NONE("/3/0/10"), E_INT("/1/0/1", 1)}},
    {"empty", "/3/0", 0, "80", {{0}}},
    {"invalid UTF-8", "/1/0/1", BAD, NULL, {E_STR("/1/0/1", "\xFF")}},
    {"outside the base", "/3", BAD, NULL, {E_INT("/1/0/1", 1)}},
    {"value at an instance path", "/1", BAD, NULL, {E_INT("/1/0", 1)}},
    {"root record", "/", 0, "81 A1 00 61 2F", {E_NONE("/")}},
};

static void test_cbor_encode_table(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof encode_cases / sizeof encode_cases[0]; k++) {
        const ecase_t *c = &encode_cases[k];
        lwm2m_records_t rs;
        lwm2m_records_init(&rs);
        for (size_t j = 0; j < 3 && c->recs[j].path; j++)
            add_exp(&rs, &c->recs[j]);
        lwm2m_path_t base = P(c->base);
        uint8_t *out = (uint8_t *)"untouched";
        size_t outlen = 777;
        int rc = lwm2m_encode(LWM2M_CF_SENML_CBOR, &base, &rs, &out, &outlen);
        if (rc != c->rc)
            fail_msg("%s: rc %d, want %d", c->name, rc, c->rc);
        if (rc != 0) {
            if (outlen != 777 || strcmp((char *)out, "untouched") != 0)
                fail_msg("%s: outputs changed on failure", c->name);
            lwm2m_records_clear(&rs);
            continue;
        }
        uint8_t want[256];
        size_t nwant = unhex(c->hex, want, sizeof want);
        if (outlen != nwant || memcmp(out, want, nwant) != 0) {
            char got[600] = "";
            for (size_t i = 0; i < outlen && i < 190; i++)
                sprintf(got + 3 * i, "%02X ", out[i]);
            fail_msg("%s: got %s", c->name, got);
        }
        lwm2m_records_t dec;
        lwm2m_records_init(&dec);
        if (lwm2m_senml_cbor_decode(&base, out, outlen, &dec) != 0)
            fail_msg("%s: reading back failed", c->name);
        for (size_t i = 0; i < rs.n; i++) { /* what SenML cannot say */
            lwm2m_record_t *r = &rs.recs[i];
            if (r->type == LWM2M_T_TIME)
                r->type = LWM2M_T_INTEGER;
            else if (r->type == LWM2M_T_CORELNK)
                r->type = LWM2M_T_STRING;
        }
        check_same_sets(c->name, &rs, &dec);
        free(out);
        lwm2m_records_clear(&rs);
        lwm2m_records_clear(&dec);
    }
}

/* every type through SenML CBOR, and the registry restoring the types */
static void test_cbor_round_trips(void **state)
{
    (void)state;
    static const exp_t all[] = {
        E_STR("/3/0/0", "Open Mobile Alliance"), E_STR("/3/0/1", ""), E_INT("/3/0/9", 100),
        E_INT("/3/0/6/0", 1),  E_INT("/3/0/6/1", -5), E_TIME("/3/0/13", 1367491215), E_STR("/3/0/16", "U"),
        E_UINT("/1/0/11", 255), E_UINT("/1/0/13", UINT64_MAX), E_BOOL("/1/0/6", true),
        E_LNK("/1/0/10", 11, 0), E_FLT("/6/0/0", 52.2), E_FLT("/6/0/1", -0.0), E_FLT("/6/0/2", NAN),
        E_OPQ("/6/0/4", "\x00\xFF\x00", 3), E_OPQ("/6/1/4", "", 0), E_CORE("/99/0/1", "</3/0>"),
        E_NONE("/3/0/4"),
    };
    size_t n = sizeof all / sizeof all[0];
    char err[256];
    lwm2m_registry_t *reg = lwm2m_registry_new();
    assert_non_null(reg);
    assert_int_equal(lwm2m_registry_add_builtin(reg, err, sizeof err), 0);
    lwm2m_records_t rs, plain, typed;
    lwm2m_records_init(&rs);
    lwm2m_records_init(&plain);
    lwm2m_records_init(&typed);
    for (size_t k = 0; k < n; k++)
        add_exp(&rs, &all[k]);
    lwm2m_path_t root = P("/");
    uint8_t *out = NULL;
    size_t outlen = 0;
    assert_int_equal(lwm2m_encode(LWM2M_CF_SENML_CBOR, &root, &rs, &out, &outlen), 0);
    assert_int_equal(lwm2m_decode(LWM2M_CF_SENML_CBOR, &root, out, outlen, NULL, &plain), 0);
    assert_int_equal(lwm2m_decode(LWM2M_CF_SENML_CBOR, &root, out, outlen, reg, &typed), 0);
    /* with the registry every type comes back, except the corelnk of an
     * object it does not know */
    lwm2m_records_t want;
    lwm2m_records_init(&want);
    for (size_t k = 0; k < n; k++)
        add_exp(&want, &all[k]);
    want.recs[16].type = LWM2M_T_STRING;
    check_same_sets("typed", &want, &typed);
    /* without, SenML's own kinds */
    want.recs[5].type = LWM2M_T_INTEGER; /* time */
    want.recs[7].type = LWM2M_T_INTEGER; /* unsigned <= INT64_MAX */
    want.recs[7].v.i = 255;
    check_same_sets("plain", &want, &plain);
    free(out);
    lwm2m_records_clear(&want);
    lwm2m_records_clear(&rs);
    lwm2m_records_clear(&plain);
    lwm2m_records_clear(&typed);
    lwm2m_registry_free(&reg);
}

static void test_cbor_limits(void **state)
{
    (void)state;
    lwm2m_path_t base = P("/");
    lwm2m_records_t out;
    sentinel_init(&out);
    size_t n = LWM2M_MAX_PAYLOAD + 1;
    uint8_t *big = calloc(1, n);
    assert_non_null(big);
    assert_int_equal(lwm2m_senml_cbor_decode(&base, big, n, &out), LWM2M_ERR_REQUEST_TOO_LARGE);
    assert_int_equal(lwm2m_decode(LWM2M_CF_SENML_CBOR, &base, big, n, NULL, &out), LWM2M_ERR_REQUEST_TOO_LARGE);
    sentinel_check("too large", &out);
    /* a big opaque value: byte string with a 4-byte length */
    size_t vlen = 100000;
    memcpy(big, "\x81\xA2\x00\x66/1/0/1\x08\x5A\x00\x01\x86\xA0", 16);
    for (size_t i = 0; i < vlen; i++)
        big[16 + i] = (uint8_t)i;
    assert_int_equal(lwm2m_senml_cbor_decode(&base, big, 16 + vlen, &out), 0);
    assert_int_equal(out.n, 2);
    assert_int_equal(out.recs[1].nbytes, vlen);
    assert_memory_equal(out.recs[1].bytes, big + 16, vlen);
    assert_int_equal(lwm2m_senml_cbor_decode(&base, big, 16 + vlen - 1, &out), BAD);
    assert_int_equal(out.n, 2);
    /* many records in an indefinite array */
    size_t nrec = 30000, k = 0;
    big[k++] = 0x9F;
    for (size_t i = 0; i < nrec; i++) {
        big[k++] = 0xA2;
        big[k++] = 0x00;
        k += (size_t)sprintf((char *)big + k, "%c/3/%05zu/9", 0x60 + 10, i);
        big[k++] = 0x02;
        big[k++] = 0x19; /* uint16 */
        big[k++] = (uint8_t)(i >> 8);
        big[k++] = (uint8_t)i;
    }
    big[k++] = 0xFF;
    assert_int_equal(lwm2m_senml_cbor_decode(&base, big, k, &out), 0);
    assert_int_equal(out.n, 2 + nrec);
    assert_int_equal(out.recs[out.n - 1].path.ids[1], nrec - 1);
    assert_int_equal(out.recs[out.n - 1].v.i, (int64_t)(nrec - 1));
    free(big);
    lwm2m_records_clear(&out);
    assert_true(lwm2m_cf_supported(LWM2M_CF_SENML_CBOR));
    assert_string_equal(lwm2m_cf_name(LWM2M_CF_SENML_CBOR), "SenML CBOR");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cbor_decode_table),
        cmocka_unit_test(test_cbor_encode_table),
        cmocka_unit_test(test_cbor_round_trips),
        cmocka_unit_test(test_cbor_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
