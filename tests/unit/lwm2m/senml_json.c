/* Unit tests for server/lwm2m/senml_json.c and the SenML side of codec.c
 * (narrowing numbers through the registry). */
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

/* The Device instance of the TS 1.0 §6.4.3.1 TLV example (tlv.c), laid out
 * as TS 1.1 §7.4.4 lays out SenML JSON: bn on the first record, relative n,
 * multiple-instance resources as "6/0", "6/1". */
#define DEVICE_JSON                                                                                  \
    "[{\"bn\":\"/3/0/\",\"n\":\"0\",\"vs\":\"Open Mobile Alliance\"},"                              \
    "{\"n\":\"1\",\"vs\":\"Lightweight M2M Client\"},"                                              \
    "{\"n\":\"2\",\"vs\":\"345000123\"},"                                                           \
    "{\"n\":\"3\",\"vs\":\"1.0\"},"                                                                 \
    "{\"n\":\"6/0\",\"v\":1},{\"n\":\"6/1\",\"v\":5},"                                              \
    "{\"n\":\"7/0\",\"v\":3800},{\"n\":\"7/1\",\"v\":5000},"                                        \
    "{\"n\":\"8/0\",\"v\":125},{\"n\":\"8/1\",\"v\":900},"                                          \
    "{\"n\":\"9\",\"v\":100},{\"n\":\"10\",\"v\":15},{\"n\":\"11/0\",\"v\":0},"                     \
    "{\"n\":\"13\",\"v\":1367491215},{\"n\":\"14\",\"vs\":\"+02:00\"},{\"n\":\"16\",\"vs\":\"U\"}]"

static const exp_t device_typed[] = {
    E_STR("/3/0/0", "Open Mobile Alliance"), E_STR("/3/0/1", "Lightweight M2M Client"),
    E_STR("/3/0/2", "345000123"),            E_STR("/3/0/3", "1.0"),
    E_INT("/3/0/6/0", 1),                    E_INT("/3/0/6/1", 5),
    E_INT("/3/0/7/0", 3800),                 E_INT("/3/0/7/1", 5000),
    E_INT("/3/0/8/0", 125),                  E_INT("/3/0/8/1", 900),
    E_INT("/3/0/9", 100),                    E_INT("/3/0/10", 15),
    E_INT("/3/0/11/0", 0),                   E_TIME("/3/0/13", 1367491215),
    E_STR("/3/0/14", "+02:00"),              E_STR("/3/0/16", "U"),
};

/* ======================================================= decode table */

typedef struct {
    const char *name;
    const char *base;
    const char *json;
    int rc;
    exp_t exp[20];
} jcase_t;

static const jcase_t decode_cases[] = {
    {"device, untyped", "/3/0", DEVICE_JSON, 0,
     {E_STR("/3/0/0", "Open Mobile Alliance"), E_STR("/3/0/1", "Lightweight M2M Client"),
      E_STR("/3/0/2", "345000123"), E_STR("/3/0/3", "1.0"), E_INT("/3/0/6/0", 1), E_INT("/3/0/6/1", 5),
      E_INT("/3/0/7/0", 3800), E_INT("/3/0/7/1", 5000), E_INT("/3/0/8/0", 125), E_INT("/3/0/8/1", 900),
      E_INT("/3/0/9", 100), E_INT("/3/0/10", 15), E_INT("/3/0/11/0", 0), E_INT("/3/0/13", 1367491215),
      E_STR("/3/0/14", "+02:00"), E_STR("/3/0/16", "U")}},
    {"white space", "/", " [ { \"n\" : \"/3/0/9\" , \"v\" : 100 } ]\n", 0, {E_INT("/3/0/9", 100)}},
    {"empty pack", "/3/0", "[]", 0, {{0}}},
    /* names */
    {"bn on a later record applies onwards", "/",
     "[{\"bn\":\"/3/0/\",\"n\":\"0\",\"vs\":\"a\"},{\"bn\":\"/1/0/\",\"n\":\"1\",\"v\":5},{\"n\":\"7\",\"vs\":\"U\"}]", 0,
     {E_STR("/3/0/0", "a"), E_INT("/1/0/1", 5), E_STR("/1/0/7", "U")}},
    {"absolute n, no bn", "/", "[{\"n\":\"/3/0/1\",\"vs\":\"x\"}]", 0, {E_STR("/3/0/1", "x")}},
    {"bn alone names the record", "/3/0/9", "[{\"bn\":\"/3/0/9\",\"v\":5}]", 0, {E_INT("/3/0/9", 5)}},
    {"bn without slash, n with", "/3/0", "[{\"bn\":\"/3/0\",\"n\":\"/9\",\"v\":5}]", 0, {E_INT("/3/0/9", 5)}},
    {"empty n", "/3/0/9", "[{\"bn\":\"/3/0/9\",\"n\":\"\",\"v\":5}]", 0, {E_INT("/3/0/9", 5)}},
    {"resource instances", "/3/0/6", "[{\"bn\":\"/3/0/6/\",\"n\":\"0\",\"v\":1},{\"n\":\"65534\",\"v\":5}]", 0,
     {E_INT("/3/0/6/0", 1), E_INT("/3/0/6/65534", 5)}},
    {"object level", "/1",
     "[{\"bn\":\"/1/\",\"n\":\"0/1\",\"v\":300},{\"n\":\"1/1\",\"v\":60}]", 0,
     {E_INT("/1/0/1", 300), E_INT("/1/1/1", 60)}},
    {"name-only records (Read-Composite)", "/", "[{\"n\":\"/3/0/1\"},{\"n\":\"/3/0\"},{\"n\":\"/1\"},{\"n\":\"/\"}]", 0,
     {E_NONE("/3/0/1"), E_NONE("/3/0"), E_NONE("/1"), E_NONE("/")}},
    {"repeated name (time series) kept", "/", "[{\"n\":\"/3/0/9\",\"v\":1,\"t\":1},{\"n\":\"/3/0/9\",\"v\":2,\"t\":2}]", 0,
     {E_INT("/3/0/9", 1), E_INT("/3/0/9", 2)}},
    /* values */
    {"v integer, negative", "/", "[{\"n\":\"/1/0/1\",\"v\":-5}]", 0, {E_INT("/1/0/1", -5)}},
    {"v int64 limits", "/", "[{\"n\":\"/1/0/1\",\"v\":9223372036854775807},{\"n\":\"/1/0/2\",\"v\":-9223372036854775808}]", 0,
     {E_INT("/1/0/1", INT64_MAX), E_INT("/1/0/2", INT64_MIN)}},
    {"v real", "/", "[{\"n\":\"/6/0/0\",\"v\":1.5}]", 0, {E_FLT("/6/0/0", 1.5)}},
    {"v real with exponent", "/", "[{\"n\":\"/6/0/0\",\"v\":-2.5e-3}]", 0, {E_FLT("/6/0/0", -2.5e-3)}},
    {"v 1e3 is a real", "/", "[{\"n\":\"/6/0/0\",\"v\":1e3}]", 0, {E_FLT("/6/0/0", 1000.0)}},
    {"v 1.0 is a real", "/", "[{\"n\":\"/6/0/0\",\"v\":1.0}]", 0, {E_FLT("/6/0/0", 1.0)}},
    {"vs with escapes and NUL", "/", "[{\"n\":\"/1/0/7\",\"vs\":\"a\\\"b\\u0000\\u00e9\"}]", 0,
     {{"/1/0/7", LWM2M_T_STRING, .s = "a\"b\0\xC3\xA9", .slen = 6}}},
    {"vs empty", "/", "[{\"n\":\"/1/0/7\",\"vs\":\"\"}]", 0, {E_STR("/1/0/7", "")}},
    {"vb", "/", "[{\"n\":\"/1/0/6\",\"vb\":true},{\"n\":\"/1/1/6\",\"vb\":false}]", 0,
     {E_BOOL("/1/0/6", true), E_BOOL("/1/1/6", false)}},
    {"vd base64url, no padding", "/", "[{\"n\":\"/6/0/4\",\"vd\":\"AQIDBAU\"}]", 0, {E_OPQ("/6/0/4", "\x01\x02\x03\x04\x05", 5)}},
    {"vd classic base64, padded", "/", "[{\"n\":\"/6/0/4\",\"vd\":\"AQIDBAU=\"}]", 0, {E_OPQ("/6/0/4", "\x01\x02\x03\x04\x05", 5)}},
    {"vd url alphabet", "/", "[{\"n\":\"/6/0/4\",\"vd\":\"-_8\"}]", 0, {E_OPQ("/6/0/4", "\xFB\xFF", 2)}},
    {"vd classic alphabet", "/", "[{\"n\":\"/6/0/4\",\"vd\":\"+/8=\"}]", 0, {E_OPQ("/6/0/4", "\xFB\xFF", 2)}},
    {"vd empty", "/", "[{\"n\":\"/6/0/4\",\"vd\":\"\"}]", 0, {E_OPQ("/6/0/4", "", 0)}},
    {"vlo", "/", "[{\"n\":\"/1/0/10\",\"vlo\":\"11:0\"},{\"n\":\"/1/1/10\",\"vlo\":\"65535:65535\"}]", 0,
     {E_LNK("/1/0/10", 11, 0), E_LNK("/1/1/10", 65535, 65535)}},
    /* base value, times, units, versions, extensions */
    {"bv added to v", "/", "[{\"bn\":\"/3/0/\",\"bv\":10,\"n\":\"9\",\"v\":5},{\"n\":\"10\",\"v\":-20}]", 0,
     {E_INT("/3/0/9", 15), E_INT("/3/0/10", -10)}},
    {"real bv", "/", "[{\"bv\":0.5,\"n\":\"/6/0/0\",\"v\":1}]", 0, {E_FLT("/6/0/0", 1.5)}},
    {"bt, t, ut, bu, u, bs, s ignored", "/",
     "[{\"bn\":\"/3/0/\",\"bt\":1.5e9,\"bu\":\"%\",\"bs\":0,\"n\":\"9\",\"v\":5,\"t\":-5,\"u\":\"%\",\"ut\":10,\"s\":1}]", 0,
     {E_INT("/3/0/9", 5)}},
    {"bver 10", "/", "[{\"bver\":10,\"n\":\"/3/0/9\",\"v\":5}]", 0, {E_INT("/3/0/9", 5)}},
    {"unknown label ignored", "/", "[{\"n\":\"/3/0/9\",\"v\":5,\"foo\":[1,{\"a\":2}]}]", 0, {E_INT("/3/0/9", 5)}},
    /* ---- bad ---- */
    {"empty input", "/", "", BAD, {{0}}},
    {"not JSON", "/", "[{", BAD, {{0}}},
    {"object, not array", "/", "{\"n\":\"/3/0/9\",\"v\":5}", BAD, {{0}}},
    {"number, not array", "/", "5", BAD, {{0}}},
    {"string, not array", "/", "\"[]\"", BAD, {{0}}},
    {"record not an object", "/", "[1]", BAD, {{0}}},
    {"record an array", "/", "[[]]", BAD, {{0}}},
    {"trailing garbage", "/", "[] x", BAD, {{0}}},
    {"two documents", "/", "[][]", BAD, {{0}}},
    {"invalid UTF-8", "/", "[{\"n\":\"/3/0/0\",\"vs\":\"\xFF\"}]", BAD, {{0}}},
    {"duplicate label", "/", "[{\"n\":\"/3/0/9\",\"n\":\"/3/0/10\",\"v\":5}]", BAD, {{0}}},
    {"two values", "/", "[{\"n\":\"/3/0/9\",\"v\":5,\"vs\":\"5\"}]", BAD, {{0}}},
    {"must-understand label", "/", "[{\"n\":\"/3/0/9\",\"v\":5,\"foo_\":1}]", BAD, {{0}}},
    {"bver 11", "/", "[{\"bver\":11,\"n\":\"/3/0/9\",\"v\":5}]", BAD, {{0}}},
    {"bver not integer", "/", "[{\"bver\":\"10\",\"n\":\"/3/0/9\",\"v\":5}]", BAD, {{0}}},
    {"bn not a string", "/", "[{\"bn\":3,\"n\":\"/0/9\",\"v\":5}]", BAD, {{0}}},
    {"n not a string", "/", "[{\"n\":309,\"v\":5}]", BAD, {{0}}},
    {"v as string", "/", "[{\"n\":\"/3/0/9\",\"v\":\"5\"}]", BAD, {{0}}},
    {"v as bool", "/", "[{\"n\":\"/3/0/9\",\"v\":true}]", BAD, {{0}}},
    {"vs as number", "/", "[{\"n\":\"/3/0/0\",\"vs\":5}]", BAD, {{0}}},
    {"vb as number", "/", "[{\"n\":\"/1/0/6\",\"vb\":1}]", BAD, {{0}}},
    {"vd as number", "/", "[{\"n\":\"/6/0/4\",\"vd\":1}]", BAD, {{0}}},
    {"vd one char", "/", "[{\"n\":\"/6/0/4\",\"vd\":\"A\"}]", BAD, {{0}}},
    {"vd bad char", "/", "[{\"n\":\"/6/0/4\",\"vd\":\"AQ$D\"}]", BAD, {{0}}},
    {"vd padding in the middle", "/", "[{\"n\":\"/6/0/4\",\"vd\":\"AQ==AQ==\"}]", BAD, {{0}}},
    {"vd too much padding", "/", "[{\"n\":\"/6/0/4\",\"vd\":\"AQID=\"}]", BAD, {{0}}},
    {"vd non-zero spare bits", "/", "[{\"n\":\"/6/0/4\",\"vd\":\"AR\"}]", BAD, {{0}}},
    {"vlo without colon", "/", "[{\"n\":\"/1/0/10\",\"vlo\":\"11\"}]", BAD, {{0}}},
    {"vlo out of range", "/", "[{\"n\":\"/1/0/10\",\"vlo\":\"65536:0\"}]", BAD, {{0}}},
    {"vlo three parts", "/", "[{\"n\":\"/1/0/10\",\"vlo\":\"1:2:3\"}]", BAD, {{0}}},
    {"vlo empty part", "/", "[{\"n\":\"/1/0/10\",\"vlo\":\":0\"}]", BAD, {{0}}},
    {"bt not a number", "/", "[{\"bt\":\"now\",\"n\":\"/3/0/9\",\"v\":5}]", BAD, {{0}}},
    {"bv not a number", "/", "[{\"bv\":\"1\",\"n\":\"/3/0/9\",\"v\":5}]", BAD, {{0}}},
    {"bv overflow", "/", "[{\"bv\":9223372036854775807,\"n\":\"/3/0/9\",\"v\":1}]", BAD, {{0}}},
    {"integer above int64 (jansson limit)", "/", "[{\"n\":\"/1/0/11\",\"v\":18446744073709551615}]", BAD, {{0}}},
    {"real overflow", "/", "[{\"n\":\"/6/0/0\",\"v\":1e999}]", BAD, {{0}}},
    {"name not a path", "/", "[{\"n\":\"/3/x/1\",\"v\":5}]", BAD, {{0}}},
    {"name with 5 ids", "/", "[{\"n\":\"/3/0/1/2/3\",\"v\":5}]", BAD, {{0}}},
    {"name with id 65535", "/", "[{\"n\":\"/3/65535/1\",\"v\":5}]", BAD, {{0}}},
    {"name with empty segment", "/", "[{\"bn\":\"/3/0/\",\"n\":\"/1\",\"v\":5}]", BAD, {{0}}},
    {"name with NUL", "/", "[{\"n\":\"/3/0/1\\u0000\",\"v\":5}]", BAD, {{0}}},
    {"urn name", "/", "[{\"n\":\"urn:dev:ow:10e2073a01080063\",\"v\":23.1}]", BAD, {{0}}},
    {"no name at all with a value", "/", "[{\"v\":5}]", BAD, {{0}}},
    {"value at an instance", "/", "[{\"n\":\"/3/0\",\"v\":5}]", BAD, {{0}}},
    {"outside the base", "/3/0", "[{\"n\":\"/4/0/1\",\"v\":5}]", BAD, {{0}}},
    {"above the base", "/3/0/1", "[{\"n\":\"/3/0\"}]", BAD, {{0}}},
    {"good records, then a bad one", "/", "[{\"n\":\"/3/0/9\",\"v\":5},{\"n\":\"/3/0/10\",\"v\":\"x\"}]", BAD, {{0}}},
};

static void test_json_decode_table(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof decode_cases / sizeof decode_cases[0]; k++) {
        const jcase_t *c = &decode_cases[k];
        lwm2m_path_t base = P(c->base);
        lwm2m_records_t out;
        sentinel_init(&out);
        int rc = lwm2m_senml_json_decode(&base, (const uint8_t *)c->json, strlen(c->json), &out);
        if (rc != c->rc)
            fail_msg("%s: rc %d, want %d", c->name, rc, c->rc);
        if (rc != 0)
            sentinel_check(c->name, &out);
        else
            check_records(c->name, &out, 1, c->exp, 20);
        lwm2m_records_clear(&out);
    }
}

/* ======================================================= encode table */

typedef struct {
    const char *name;
    const char *base;
    int rc;
    const char *json;
    exp_t recs[4];
} ecase_t;

static const ecase_t encode_cases[] = {
    {"single resource (TS 1.1 Table 7.4.4-5)", "/3/0/0", 0, "[{\"bn\":\"/3/0/0\",\"vs\":\"Open Mobile Alliance\"}]",
     {E_STR("/3/0/0", "Open Mobile Alliance")}},
    {"resource instances", "/3/0/6", 0, "[{\"bn\":\"/3/0/6/\",\"n\":\"0\",\"v\":1},{\"n\":\"1\",\"v\":5}]",
     {E_INT("/3/0/6/0", 1), E_INT("/3/0/6/1", 5)}},
    {"one resource instance", "/3/0/6/1", 0, "[{\"bn\":\"/3/0/6/1\",\"v\":5}]", {E_INT("/3/0/6/1", 5)}},
    {"object", "/1", 0, "[{\"bn\":\"/1/\",\"n\":\"0/1\",\"v\":300},{\"n\":\"1/6\",\"vb\":false}]",
     {E_INT("/1/0/1", 300), E_BOOL("/1/1/6", false)}},
    {"root (composite): absolute n, no bn", "/", 0, "[{\"n\":\"/3/0/9\",\"v\":100},{\"n\":\"/1/0/1\",\"v\":300}]",
     {E_INT("/3/0/9", 100), E_INT("/1/0/1", 300)}},
    {"Read-Composite request (TS 1.1 Table 7.4.4-6 form)", "/", 0, "[{\"n\":\"/3/0/9\"},{\"n\":\"/1\"},{\"n\":\"/\"}]",
     {E_NONE("/3/0/9"), E_NONE("/1"), E_NONE("/")}},
    {"same path twice", "/3/0/9", 0, "[{\"bn\":\"/3/0/9\",\"v\":1},{\"v\":2}]", {E_INT("/3/0/9", 1), E_INT("/3/0/9", 2)}},
    {"empty", "/3/0", 0, "[]", {{0}}},
    {"float keeps a fraction", "/6/0", 0, "[{\"bn\":\"/6/0/\",\"n\":\"0\",\"v\":1.0},{\"n\":\"1\",\"v\":0.1}]",
     {E_FLT("/6/0/0", 1.0), E_FLT("/6/0/1", 0.1)}},
    {"float extremes", "/6/0", 0, "[{\"bn\":\"/6/0/\",\"n\":\"0\",\"v\":1e+300},{\"n\":\"1\",\"v\":-0.0}]",
     {E_FLT("/6/0/0", 1e300), E_FLT("/6/0/1", -0.0)}},
    {"unsigned above int64", "/1/0/11", 0, "[{\"bn\":\"/1/0/11\",\"v\":18446744073709551615}]",
     {E_UINT("/1/0/11", UINT64_MAX)}},
    {"time and objlnk", "/1/0", 0, "[{\"bn\":\"/1/0/\",\"n\":\"12\",\"v\":-1},{\"n\":\"10\",\"vlo\":\"11:65535\"}]",
     {E_TIME("/1/0/12", -1), E_LNK("/1/0/10", 11, 65535)}},
    {"opaque: base64url, no padding", "/6/0/4", 0, "[{\"bn\":\"/6/0/4\",\"vd\":\"-_8\"}]", {E_OPQ("/6/0/4", "\xFB\xFF", 2)}},
    {"string escapes", "/1/0/7", 0, "[{\"bn\":\"/1/0/7\",\"vs\":\"a\\\"b\\\\c\\n\\u0001\\u0000\xC3\xA9\"}]",
     {{"/1/0/7", LWM2M_T_STRING, .s = "a\"b\\c\n\x01\0\xC3\xA9", .slen = 10}}},
    {"corelnk as vs", "/1/0/7", 0, "[{\"bn\":\"/1/0/7\",\"vs\":\"</3>\"}]", {E_CORE("/1/0/7", "</3>")}},
    /* bad */
    {"NaN", "/6/0/0", BAD, NULL, {E_FLT("/6/0/0", NAN)}},
    {"infinity", "/6/0/0", BAD, NULL, {E_FLT("/6/0/0", -INFINITY)}},
    {"invalid UTF-8", "/1/0/7", BAD, NULL, {E_STR("/1/0/7", "\xC0\xAF")}},
    {"surrogate in UTF-8", "/1/0/7", BAD, NULL, {E_STR("/1/0/7", "\xED\xA0\x80")}},
    {"outside the base", "/3/0", BAD, NULL, {E_INT("/4/0/1", 1)}},
    {"value at an instance path", "/3", BAD, NULL, {E_INT("/3/0", 1)}},
    {"bad type", "/3/0/1", BAD, NULL, {E_TYPE("/3/0/1", (lwm2m_type_t)50)}},
};

static void test_json_encode_table(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof encode_cases / sizeof encode_cases[0]; k++) {
        const ecase_t *c = &encode_cases[k];
        lwm2m_records_t rs;
        lwm2m_records_init(&rs);
        for (size_t j = 0; j < 4 && c->recs[j].path; j++)
            add_exp(&rs, &c->recs[j]);
        lwm2m_path_t base = P(c->base);
        uint8_t *out = (uint8_t *)"untouched";
        size_t outlen = 777;
        int rc = lwm2m_encode(LWM2M_CF_SENML_JSON, &base, &rs, &out, &outlen);
        if (rc != c->rc)
            fail_msg("%s: rc %d, want %d", c->name, rc, c->rc);
        if (rc != 0) {
            if (outlen != 777 || strcmp((char *)out, "untouched") != 0)
                fail_msg("%s: outputs changed on failure", c->name);
            lwm2m_records_clear(&rs);
            continue;
        }
        if (outlen != strlen(c->json) || memcmp(out, c->json, outlen) != 0)
            fail_msg("%s: got %.*s\nwant %s", c->name, (int)outlen, (char *)out, c->json);
        /* what we write, we read back to the same records (types as SenML
         * knows them: no unsigned, time or corelnk without a registry) */
        lwm2m_records_t dec;
        lwm2m_records_init(&dec);
        rc = lwm2m_senml_json_decode(&base, out, outlen, &dec);
        bool readable = !(rs.n && rs.recs[0].type == LWM2M_T_UNSIGNED); /* jansson limit */
        if (readable) {
            if (rc != 0)
                fail_msg("%s: reading back failed (%d)", c->name, rc);
            for (size_t i = 0; i < rs.n; i++) {
                lwm2m_record_t *r = &rs.recs[i];
                if (r->type == LWM2M_T_TIME)
                    r->type = LWM2M_T_INTEGER;
                else if (r->type == LWM2M_T_CORELNK)
                    r->type = LWM2M_T_STRING;
            }
            check_same_sets(c->name, &rs, &dec);
        } else if (rc != BAD) {
            fail_msg("%s: expected the documented jansson limit", c->name);
        }
        free(out);
        lwm2m_records_clear(&rs);
        lwm2m_records_clear(&dec);
    }
}

static void test_json_device_known_answer(void **state)
{
    (void)state;
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    for (size_t k = 0; k < sizeof device_typed / sizeof device_typed[0]; k++)
        add_exp(&rs, &device_typed[k]);
    lwm2m_path_t base = P("/3/0");
    uint8_t *out = NULL;
    size_t outlen = 0;
    assert_int_equal(lwm2m_encode(LWM2M_CF_SENML_JSON, &base, &rs, &out, &outlen), 0);
    assert_int_equal(outlen, strlen(DEVICE_JSON));
    assert_memory_equal(out, DEVICE_JSON, outlen);
    free(out);

    /* typed decoding through the registry gives back exactly the records */
    char err[256];
    lwm2m_registry_t *reg = lwm2m_registry_new();
    assert_non_null(reg);
    assert_int_equal(lwm2m_registry_add_builtin(reg, err, sizeof err), 0);
    lwm2m_records_t dec;
    lwm2m_records_init(&dec);
    assert_int_equal(lwm2m_decode(LWM2M_CF_SENML_JSON, &base, (const uint8_t *)DEVICE_JSON, strlen(DEVICE_JSON), reg, &dec), 0);
    check_same_sets("device typed", &rs, &dec);
    lwm2m_records_clear(&dec);
    lwm2m_records_clear(&rs);
    lwm2m_registry_free(&reg);
}

static void test_json_registry_narrowing(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        int rc;
        exp_t want;
    } cases[] = {
        {"[{\"n\":\"/3/0/9\",\"v\":100.0}]", 0, E_INT("/3/0/9", 100)},      /* Integer from a real */
        {"[{\"n\":\"/3/0/9\",\"v\":100.5}]", BAD, {0}},                     /* not integral */
        {"[{\"n\":\"/3/0/9\",\"v\":1e19}]", BAD, {0}},                      /* out of range */
        {"[{\"n\":\"/3/0/13\",\"v\":1367491215}]", 0, E_TIME("/3/0/13", 1367491215)},
        {"[{\"n\":\"/1/0/11\",\"v\":200}]", 0, E_UINT("/1/0/11", 200)},    /* Unsigned Integer */
        {"[{\"n\":\"/1/0/11\",\"v\":-1}]", BAD, {0}},
        {"[{\"n\":\"/1/0/11\",\"v\":2.0}]", 0, E_UINT("/1/0/11", 2)},
        {"[{\"n\":\"/6/0/0\",\"v\":45}]", 0, E_FLT("/6/0/0", 45.0)},        /* Float from an integer */
        {"[{\"n\":\"/3/0/0\",\"v\":5}]", 0, E_INT("/3/0/0", 5)},            /* String resource: left as sent */
        {"[{\"n\":\"/3/0/9\",\"vs\":\"5\"}]", 0, E_STR("/3/0/9", "5")},     /* idem */
        {"[{\"n\":\"/3/0/9\"}]", 0, E_NONE("/3/0/9")},
        {"[{\"n\":\"/32000/0/9\",\"v\":1.0}]", 0, E_FLT("/32000/0/9", 1.0)}, /* unknown object */
    };
    char err[256];
    lwm2m_registry_t *reg = lwm2m_registry_new();
    assert_non_null(reg);
    assert_int_equal(lwm2m_registry_add_builtin(reg, err, sizeof err), 0);
    lwm2m_path_t root = P("/");
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        lwm2m_records_t out;
        sentinel_init(&out);
        int rc = lwm2m_decode(LWM2M_CF_SENML_JSON, &root, (const uint8_t *)cases[k].json, strlen(cases[k].json), reg, &out);
        if (rc != cases[k].rc)
            fail_msg("%s: rc %d, want %d", cases[k].json, rc, cases[k].rc);
        if (rc == 0)
            check_records(cases[k].json, &out, 1, &cases[k].want, 1);
        else
            sentinel_check(cases[k].json, &out);
        lwm2m_records_clear(&out);
    }
    lwm2m_registry_free(&reg);
}

/* every type through SenML JSON, at several bases */
static void test_json_round_trips(void **state)
{
    (void)state;
    static const exp_t all[] = {
        E_STR("/9/0/0", "hello"), E_STR("/9/0/1", ""),   E_INT("/9/0/2", -1234567), E_INT("/9/0/3", INT64_MIN),
        E_UINT("/9/0/4", 40000),  E_FLT("/9/0/6", 3.25), E_FLT("/9/0/7", -1e-300),  E_FLT("/9/0/8", 123456789.0),
        E_BOOL("/9/0/9", true),   E_OPQ("/9/0/10", "\x00\x01\xFE\xFF", 4), E_OPQ("/9/0/11", "", 0),
        E_TIME("/9/0/12", 1700000000), E_LNK("/9/0/13", 3, 65534), E_CORE("/9/0/14", "</3/0>;ct=110"),
        E_INT("/9/0/15/0", 5),    E_FLT("/9/0/15/1", 2.5), E_NONE("/9/0/16"),       E_INT("/9/7/0", -1),
    };
    static const char *bases[] = {"/", "/9"};
    size_t n = sizeof all / sizeof all[0];
    for (size_t b = 0; b < 2; b++) {
        lwm2m_records_t rs, dec;
        lwm2m_records_init(&rs);
        lwm2m_records_init(&dec);
        for (size_t k = 0; k < n; k++)
            add_exp(&rs, &all[k]);
        lwm2m_path_t base = P(bases[b]);
        uint8_t *out = NULL;
        size_t outlen = 0;
        assert_int_equal(lwm2m_senml_json_encode(&base, &rs, &out, &outlen), 0);
        assert_int_equal(lwm2m_senml_json_decode(&base, out, outlen, &dec), 0);
        for (size_t k = 0; k < rs.n; k++) { /* what SenML cannot say */
            lwm2m_record_t *r = &rs.recs[k];
            if (r->type == LWM2M_T_TIME)
                r->type = LWM2M_T_INTEGER;
            else if (r->type == LWM2M_T_CORELNK)
                r->type = LWM2M_T_STRING;
            else if (r->type == LWM2M_T_UNSIGNED) {
                r->type = LWM2M_T_INTEGER;
                r->v.i = (int64_t)r->v.u;
            }
        }
        check_same_sets(bases[b], &rs, &dec);
        free(out);
        lwm2m_records_clear(&rs);
        lwm2m_records_clear(&dec);
    }
    /* each record alone, addressed to itself */
    for (size_t k = 0; k < n; k++) {
        lwm2m_records_t rs, dec;
        lwm2m_records_init(&rs);
        lwm2m_records_init(&dec);
        add_exp(&rs, &all[k]);
        lwm2m_path_t base = rs.recs[0].path;
        uint8_t *out = NULL;
        size_t outlen = 0;
        assert_int_equal(lwm2m_senml_json_encode(&base, &rs, &out, &outlen), 0);
        assert_int_equal(lwm2m_senml_json_decode(&base, out, outlen, &dec), 0);
        assert_int_equal(dec.n, 1);
        assert_true(lwm2m_path_equal(&dec.recs[0].path, &base));
        free(out);
        lwm2m_records_clear(&rs);
        lwm2m_records_clear(&dec);
    }
}

static void test_json_limits(void **state)
{
    (void)state;
    lwm2m_path_t base = P("/");
    lwm2m_records_t out;
    sentinel_init(&out);
    size_t n = LWM2M_MAX_PAYLOAD + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, ' ', n);
    big[0] = '[';
    big[n - 1] = ']';
    assert_int_equal(lwm2m_senml_json_decode(&base, (uint8_t *)big, n, &out), LWM2M_ERR_REQUEST_TOO_LARGE);
    assert_int_equal(lwm2m_decode(LWM2M_CF_SENML_JSON, &base, (uint8_t *)big, n, NULL, &out), LWM2M_ERR_REQUEST_TOO_LARGE);
    big[n - 2] = ']';
    assert_int_equal(lwm2m_senml_json_decode(&base, (uint8_t *)big, n - 1, &out), 0); /* at the limit */
    sentinel_check("limit", &out);
    /* deep nesting inside an ignored label: jansson's depth bound, no crash */
    size_t depth = 100000;
    char *deep = malloc(2 * depth + 64);
    assert_non_null(deep);
    size_t k = 0;
    k += (size_t)sprintf(deep, "[{\"n\":\"/3/0/9\",\"x\":");
    for (size_t i = 0; i < depth; i++)
        deep[k++] = '[';
    for (size_t i = 0; i < depth; i++)
        deep[k++] = ']';
    k += (size_t)sprintf(deep + k, "}]");
    assert_int_equal(lwm2m_senml_json_decode(&base, (uint8_t *)deep, k, &out), BAD);
    sentinel_check("deep", &out);
    /* many records */
    size_t nrec = 20000;
    char *many = malloc(nrec * 32 + 8);
    assert_non_null(many);
    k = 0;
    many[k++] = '[';
    for (size_t i = 0; i < nrec; i++)
        k += (size_t)sprintf(many + k, "%s{\"n\":\"/3/%zu/9\",\"v\":%zu}", i ? "," : "", i, i);
    many[k++] = ']';
    assert_int_equal(lwm2m_senml_json_decode(&base, (uint8_t *)many, k, &out), 0);
    assert_int_equal(out.n, nrec + 1);
    assert_int_equal(out.recs[nrec].v.i, (int64_t)nrec - 1);
    free(many);
    free(deep);
    free(big);
    lwm2m_records_clear(&out);
    assert_true(lwm2m_cf_supported(LWM2M_CF_SENML_JSON));
    assert_string_equal(lwm2m_cf_name(LWM2M_CF_SENML_JSON), "SenML JSON");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_decode_table),
        cmocka_unit_test(test_json_encode_table),
        cmocka_unit_test(test_json_device_known_answer),
        cmocka_unit_test(test_json_registry_narrowing),
        cmocka_unit_test(test_json_round_trips),
        cmocka_unit_test(test_json_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
