/* Unit tests for server/lwm2m/text.c (text/plain and opaque) and the
 * single-value side of codec.c (dispatch, registry types, names). */
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

typedef struct {
    lwm2m_type_t type;
    const char *in;
    int rc;
    exp_t want; /* at /1/0/1 */
} tcase_t;

#define AT "/1/0/1"

static const tcase_t decode_cases[] = {
    /* strings */
    {LWM2M_T_STRING, "hello", 0, E_STR(AT, "hello")},
    {LWM2M_T_STRING, "", 0, E_STR(AT, "")},
    {LWM2M_T_STRING, " spaced \n", 0, E_STR(AT, " spaced \n")},
    {LWM2M_T_NONE, "42", 0, E_STR(AT, "42")}, /* no definition: the text */
    {LWM2M_T_CORELNK, "</3/0>,</1/0>", 0, E_CORE(AT, "</3/0>,</1/0>")},
    /* integers */
    {LWM2M_T_INTEGER, "42", 0, E_INT(AT, 42)},
    {LWM2M_T_INTEGER, "-42", 0, E_INT(AT, -42)},
    {LWM2M_T_INTEGER, "0", 0, E_INT(AT, 0)},
    {LWM2M_T_INTEGER, "-0", 0, E_INT(AT, 0)},
    {LWM2M_T_INTEGER, "007", 0, E_INT(AT, 7)},
    {LWM2M_T_INTEGER, "9223372036854775807", 0, E_INT(AT, INT64_MAX)},
    {LWM2M_T_INTEGER, "-9223372036854775808", 0, E_INT(AT, INT64_MIN)},
    {LWM2M_T_INTEGER, "9223372036854775808", BAD, {0}},
    {LWM2M_T_INTEGER, "-9223372036854775809", BAD, {0}},
    {LWM2M_T_INTEGER, "99999999999999999999999", BAD, {0}},
    {LWM2M_T_INTEGER, "", BAD, {0}},
    {LWM2M_T_INTEGER, "-", BAD, {0}},
    {LWM2M_T_INTEGER, "+42", BAD, {0}},
    {LWM2M_T_INTEGER, " 42", BAD, {0}},
    {LWM2M_T_INTEGER, "42 ", BAD, {0}},
    {LWM2M_T_INTEGER, "4 2", BAD, {0}},
    {LWM2M_T_INTEGER, "42a", BAD, {0}},
    {LWM2M_T_INTEGER, "0x10", BAD, {0}},
    {LWM2M_T_INTEGER, "4.2", BAD, {0}},
    {LWM2M_T_TIME, "1367491215", 0, E_TIME(AT, 1367491215)},
    {LWM2M_T_TIME, "-1", 0, E_TIME(AT, -1)},
    {LWM2M_T_TIME, "2013-05-02", BAD, {0}},
    {LWM2M_T_UNSIGNED, "18446744073709551615", 0, E_UINT(AT, UINT64_MAX)},
    {LWM2M_T_UNSIGNED, "18446744073709551616", BAD, {0}},
    {LWM2M_T_UNSIGNED, "-1", BAD, {0}},
    {LWM2M_T_UNSIGNED, "-0", BAD, {0}},
    /* floats */
    {LWM2M_T_FLOAT, "1.5", 0, E_FLT(AT, 1.5)},
    {LWM2M_T_FLOAT, "-0.25", 0, E_FLT(AT, -0.25)},
    {LWM2M_T_FLOAT, "5", 0, E_FLT(AT, 5.0)},
    {LWM2M_T_FLOAT, "1e3", 0, E_FLT(AT, 1000.0)},
    {LWM2M_T_FLOAT, "1.5E-3", 0, E_FLT(AT, 1.5e-3)},
    {LWM2M_T_FLOAT, "2.5e+2", 0, E_FLT(AT, 250.0)},
    {LWM2M_T_FLOAT, "-0", 0, E_FLT(AT, -0.0)},
    {LWM2M_T_FLOAT, "1e-400", 0, E_FLT(AT, 0.0)}, /* underflow to zero is a value */
    {LWM2M_T_FLOAT, "1e999", BAD, {0}},
    {LWM2M_T_FLOAT, "1.", BAD, {0}},
    {LWM2M_T_FLOAT, ".5", BAD, {0}},
    {LWM2M_T_FLOAT, "1e", BAD, {0}},
    {LWM2M_T_FLOAT, "1e+", BAD, {0}},
    {LWM2M_T_FLOAT, "nan", BAD, {0}},
    {LWM2M_T_FLOAT, "inf", BAD, {0}},
    {LWM2M_T_FLOAT, "-Infinity", BAD, {0}},
    {LWM2M_T_FLOAT, "0x1p3", BAD, {0}},
    {LWM2M_T_FLOAT, "1,5", BAD, {0}},
    {LWM2M_T_FLOAT, " 1.5", BAD, {0}},
    {LWM2M_T_FLOAT, "", BAD, {0}},
    /* booleans */
    {LWM2M_T_BOOLEAN, "1", 0, E_BOOL(AT, true)},
    {LWM2M_T_BOOLEAN, "0", 0, E_BOOL(AT, false)},
    {LWM2M_T_BOOLEAN, "2", BAD, {0}},
    {LWM2M_T_BOOLEAN, "true", BAD, {0}},
    {LWM2M_T_BOOLEAN, "01", BAD, {0}},
    {LWM2M_T_BOOLEAN, "", BAD, {0}},
    /* object links */
    {LWM2M_T_OBJLNK, "3:0", 0, E_LNK(AT, 3, 0)},
    {LWM2M_T_OBJLNK, "65535:65535", 0, E_LNK(AT, 65535, 65535)},
    {LWM2M_T_OBJLNK, "3", BAD, {0}},
    {LWM2M_T_OBJLNK, "3:", BAD, {0}},
    {LWM2M_T_OBJLNK, ":0", BAD, {0}},
    {LWM2M_T_OBJLNK, "65536:0", BAD, {0}},
    {LWM2M_T_OBJLNK, "3:0:1", BAD, {0}},
    {LWM2M_T_OBJLNK, "-3:0", BAD, {0}},
    {LWM2M_T_OBJLNK, "000003:0", BAD, {0}},
    /* opaque, base64 (TS 1.1 Table C.2 example) */
    {LWM2M_T_OPAQUE, "AQIDBAU=", 0, E_OPQ(AT, "\x01\x02\x03\x04\x05", 5)},
    {LWM2M_T_OPAQUE, "AQIDBAU", 0, E_OPQ(AT, "\x01\x02\x03\x04\x05", 5)},
    {LWM2M_T_OPAQUE, "", 0, E_OPQ(AT, "", 0)},
    {LWM2M_T_OPAQUE, "-_8=", 0, E_OPQ(AT, "\xFB\xFF", 2)},
    {LWM2M_T_OPAQUE, "AQID$AU=", BAD, {0}},
    {LWM2M_T_OPAQUE, "A", BAD, {0}},
    {LWM2M_T_OPAQUE, "AQIDBAU==", BAD, {0}},
    {LWM2M_T_OPAQUE, "=", BAD, {0}},
    {LWM2M_T_OPAQUE, "AQIDB AU=", BAD, {0}},
    {LWM2M_T_OPAQUE, "AR==", BAD, {0}}, /* non-zero spare bits */
    {LWM2M_T_OPAQUE, "AQJ=", BAD, {0}},
};

static void test_text_decode_table(void **state)
{
    (void)state;
    lwm2m_path_t base = P(AT);
    for (size_t k = 0; k < sizeof decode_cases / sizeof decode_cases[0]; k++) {
        const tcase_t *c = &decode_cases[k];
        char name[96];
        snprintf(name, sizeof name, "%s \"%s\"", lwm2m_type_name(c->type), c->in);
        lwm2m_records_t out;
        sentinel_init(&out);
        int rc = lwm2m_text_decode(&base, (const uint8_t *)c->in, strlen(c->in), c->type, &out);
        if (rc != c->rc)
            fail_msg("%s: rc %d, want %d", name, rc, c->rc);
        if (rc != 0)
            sentinel_check(name, &out);
        else
            check_records(name, &out, 1, &c->want, 1);
        lwm2m_records_clear(&out);
    }
}

static void test_text_decode_bases(void **state)
{
    (void)state;
    static const struct {
        const char *base;
        int rc;
    } cases[] = {{"/1/0/1", 0}, {"/1/0/1/2", 0}, {"/1/0", BAD}, {"/1", BAD}, {"/", BAD}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        lwm2m_path_t base = P(cases[k].base);
        lwm2m_records_t out;
        lwm2m_records_init(&out);
        int rc = lwm2m_text_decode(&base, (const uint8_t *)"7", 1, LWM2M_T_INTEGER, &out);
        if (rc != cases[k].rc)
            fail_msg("text at %s: rc %d", cases[k].base, rc);
        if (rc == 0 && !lwm2m_path_equal(&out.recs[0].path, &base))
            fail_msg("text at %s: wrong path", cases[k].base);
        rc = lwm2m_decode(LWM2M_CF_OPAQUE, &base, (const uint8_t *)"7", 1, NULL, &out);
        if (rc != cases[k].rc)
            fail_msg("opaque at %s: rc %d", cases[k].base, rc);
        lwm2m_records_clear(&out);
    }
    /* an embedded NUL is text like any other byte for a string, not for a number */
    lwm2m_path_t base = P(AT);
    lwm2m_records_t out;
    lwm2m_records_init(&out);
    assert_int_equal(lwm2m_text_decode(&base, (const uint8_t *)"4\0002", 3, LWM2M_T_INTEGER, &out), BAD);
    assert_int_equal(lwm2m_text_decode(&base, (const uint8_t *)"4\0002", 3, LWM2M_T_STRING, &out), 0);
    assert_int_equal(out.recs[0].nbytes, 3);
    assert_int_equal(lwm2m_text_decode(&base, NULL, 0, LWM2M_T_STRING, &out), 0);
    assert_int_equal(out.recs[1].nbytes, 0);
    assert_int_equal(lwm2m_text_decode(&base, NULL, 1, LWM2M_T_STRING, &out), BAD);
    lwm2m_records_clear(&out);
}

typedef struct {
    exp_t rec;
    int rc;
    const char *text;
} ecase_t;

static const ecase_t encode_cases[] = {
    {E_STR(AT, "Open Mobile Alliance"), 0, "Open Mobile Alliance"},
    {E_STR(AT, ""), 0, ""},
    {E_CORE(AT, "</3/0>"), 0, "</3/0>"},
    {E_INT(AT, -5), 0, "-5"},
    {E_INT(AT, INT64_MIN), 0, "-9223372036854775808"},
    {E_TIME(AT, 1367491215), 0, "1367491215"},
    {E_UINT(AT, UINT64_MAX), 0, "18446744073709551615"},
    {E_FLT(AT, 1.5), 0, "1.5"},
    {E_FLT(AT, 0.1), 0, "0.1"},
    {E_FLT(AT, -25.0), 0, "-25"},
    {E_FLT(AT, 1e20), 0, "100000000000000000000"},
    {E_FLT(AT, 1.5e-7), 0, "0.00000015"},
    {E_FLT(AT, -1.25e-5), 0, "-0.0000125"},
    {E_FLT(AT, 123456789012345678.0), 0, "123456789012345680"},
    {E_FLT(AT, -0.0), 0, "-0"},
    {E_FLT(AT, NAN), BAD, NULL},
    {E_FLT(AT, INFINITY), BAD, NULL},
    {E_BOOL(AT, true), 0, "1"},
    {E_BOOL(AT, false), 0, "0"},
    {E_LNK(AT, 3, 0), 0, "3:0"},
    {E_LNK(AT, 65535, 65535), 0, "65535:65535"},
    {E_OPQ(AT, "\x01\x02\x03\x04\x05", 5), 0, "AQIDBAU="},
    {E_OPQ(AT, "\xFB\xFF", 2), 0, "+/8="},
    {E_OPQ(AT, "", 0), 0, ""},
    {E_NONE(AT), BAD, NULL},
};

static void test_text_encode_table(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof encode_cases / sizeof encode_cases[0]; k++) {
        const ecase_t *c = &encode_cases[k];
        lwm2m_records_t rs;
        lwm2m_records_init(&rs);
        add_exp(&rs, &c->rec);
        uint8_t *out = (uint8_t *)"untouched";
        size_t outlen = 777;
        lwm2m_path_t base = rs.recs[0].path;
        int rc = lwm2m_encode(LWM2M_CF_TEXT, &base, &rs, &out, &outlen);
        if (rc != c->rc)
            fail_msg("case %zu: rc %d, want %d", k, rc, c->rc);
        if (rc != 0) {
            if (outlen != 777 || strcmp((char *)out, "untouched") != 0)
                fail_msg("case %zu: outputs changed on failure", k);
            lwm2m_records_clear(&rs);
            continue;
        }
        if (outlen != strlen(c->text) || memcmp(out, c->text, outlen) != 0)
            fail_msg("case %zu: got \"%.*s\", want \"%s\"", k, (int)outlen, (char *)out, c->text);
        /* and back, with the type the definition would give */
        lwm2m_records_t dec;
        lwm2m_records_init(&dec);
        if (lwm2m_text_decode(&base, out, outlen, c->rec.type, &dec) != 0)
            fail_msg("case %zu: reading \"%s\" back failed", k, c->text);
        check_same_sets(c->text, &rs, &dec);
        free(out);
        lwm2m_records_clear(&rs);
        lwm2m_records_clear(&dec);
    }
}

/* Floats written as text read back as the same double, whatever the scale. */
static void test_text_float_round_trip(void **state)
{
    (void)state;
    lwm2m_path_t base = P(AT);
    uint64_t seed = 0x9E3779B97F4A7C15u;
    for (int k = 0; k < 20000; k++) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        double v;
        memcpy(&v, &seed, sizeof v);
        if (!isfinite(v))
            continue;
        lwm2m_records_t rs, dec;
        lwm2m_records_init(&rs);
        lwm2m_records_init(&dec);
        assert_int_equal(lwm2m_records_add_float(&rs, &base, v), 0);
        uint8_t *out = NULL;
        size_t outlen = 0;
        assert_int_equal(lwm2m_text_encode(&rs, &out, &outlen), 0);
        if (memchr(out, 'e', outlen) || memchr(out, 'E', outlen))
            fail_msg("exponent in \"%s\"", (char *)out);
        assert_int_equal(lwm2m_text_decode(&base, out, outlen, LWM2M_T_FLOAT, &dec), 0);
        if (memcmp(&dec.recs[0].v.f, &v, sizeof v) != 0)
            fail_msg("%.17g written as \"%s\" read back as %.17g", v, (char *)out, dec.recs[0].v.f);
        free(out);
        lwm2m_records_clear(&rs);
        lwm2m_records_clear(&dec);
    }
}

static void test_text_encode_shape(void **state)
{
    (void)state;
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    lwm2m_path_t p = P("/3/0/9"), other = P("/3/0/10"), inst = P("/3/0");
    uint8_t *out = NULL;
    size_t outlen = 0;
    /* no record, two records, a record that is not the request path */
    assert_int_equal(lwm2m_encode(LWM2M_CF_TEXT, &p, &rs, &out, &outlen), BAD);
    assert_int_equal(lwm2m_encode(LWM2M_CF_OPAQUE, &p, &rs, &out, &outlen), BAD);
    assert_int_equal(lwm2m_records_add_int(&rs, &p, 1), 0);
    assert_int_equal(lwm2m_encode(LWM2M_CF_TEXT, &other, &rs, &out, &outlen), BAD);
    assert_int_equal(lwm2m_encode(LWM2M_CF_TEXT, &inst, &rs, &out, &outlen), BAD);
    assert_int_equal(lwm2m_records_add_int(&rs, &p, 2), 0);
    assert_int_equal(lwm2m_encode(LWM2M_CF_TEXT, &p, &rs, &out, &outlen), BAD);
    assert_int_equal(lwm2m_text_encode(&rs, &out, &outlen), BAD);
    assert_null(out);
    lwm2m_records_clear(&rs);
}

static void test_opaque(void **state)
{
    (void)state;
    lwm2m_path_t base = P("/5/0/0");
    static const uint8_t fw[] = {0x00, 0xFF, 0x10, 0x00, 0x7F};
    lwm2m_records_t out;
    sentinel_init(&out);
    assert_int_equal(lwm2m_decode(LWM2M_CF_OPAQUE, &base, fw, sizeof fw, NULL, &out), 0);
    check_records("opaque", &out, 1, (const exp_t[]){E_OPQ("/5/0/0", "\x00\xFF\x10\x00\x7F", 5)}, 1);
    assert_int_equal(lwm2m_decode(LWM2M_CF_OPAQUE, &base, NULL, 0, NULL, &out), 0);
    assert_int_equal(out.recs[2].nbytes, 0);
    assert_non_null(out.recs[2].bytes);
    /* encode: bytes-valued records only, sent as they are */
    uint8_t *enc = NULL;
    size_t enclen = 0;
    lwm2m_records_t one;
    lwm2m_records_init(&one);
    assert_int_equal(lwm2m_records_add_opaque(&one, &base, fw, sizeof fw), 0);
    assert_int_equal(lwm2m_encode(LWM2M_CF_OPAQUE, &base, &one, &enc, &enclen), 0);
    assert_int_equal(enclen, sizeof fw);
    assert_memory_equal(enc, fw, sizeof fw);
    free(enc);
    lwm2m_records_clear(&one);
    assert_int_equal(lwm2m_records_add_string(&one, &base, "abc"), 0);
    assert_int_equal(lwm2m_encode(LWM2M_CF_OPAQUE, &base, &one, &enc, &enclen), 0);
    assert_int_equal(enclen, 3);
    free(enc);
    lwm2m_records_clear(&one);
    assert_int_equal(lwm2m_records_add_int(&one, &base, 3), 0);
    enc = NULL;
    assert_int_equal(lwm2m_encode(LWM2M_CF_OPAQUE, &base, &one, &enc, &enclen), BAD);
    assert_null(enc);
    lwm2m_records_clear(&one);
    lwm2m_records_clear(&out);
}

/* every type through text, with the type given back as the registry would */
static void test_text_round_trips(void **state)
{
    (void)state;
    static const exp_t all[] = {
        E_STR(AT, "hello, world"), E_STR(AT, "\xC3\xA9\x01"), E_INT(AT, -1234567), E_INT(AT, INT64_MAX),
        E_UINT(AT, UINT64_MAX),    E_FLT(AT, 3.25),             E_FLT(AT, -1e-300),   E_FLT(AT, 1.7976931348623157e308),
        E_BOOL(AT, true),          E_BOOL(AT, false),           E_OPQ(AT, "\x00\x01\xFE\xFF", 4), E_OPQ(AT, "\xFF", 1),
        E_TIME(AT, 1700000000),    E_LNK(AT, 3, 65534),         E_CORE(AT, "</3/0>;ct=110"),
    };
    lwm2m_path_t base = P(AT);
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) {
        lwm2m_records_t rs, dec;
        lwm2m_records_init(&rs);
        lwm2m_records_init(&dec);
        add_exp(&rs, &all[k]);
        uint8_t *out = NULL;
        size_t outlen = 0;
        assert_int_equal(lwm2m_encode(LWM2M_CF_TEXT, &base, &rs, &out, &outlen), 0);
        assert_int_equal(lwm2m_text_decode(&base, out, outlen, all[k].type, &dec), 0);
        check_same_sets(lwm2m_type_name(all[k].type), &rs, &dec);
        free(out);
        lwm2m_records_clear(&rs);
        lwm2m_records_clear(&dec);
    }
}

static void test_text_registry_and_dispatch(void **state)
{
    (void)state;
    char err[256];
    lwm2m_registry_t *reg = lwm2m_registry_new();
    assert_non_null(reg);
    assert_int_equal(lwm2m_registry_add_builtin(reg, err, sizeof err), 0);
    static const struct {
        const char *path, *text;
        int rc;
        exp_t want;
    } cases[] = {
        {"/3/0/9", "100", 0, E_INT("/3/0/9", 100)},
        {"/3/0/9", "100.5", BAD, {0}},
        {"/3/0/0", "100", 0, E_STR("/3/0/0", "100")},
        {"/3/0/13", "1367491215", 0, E_TIME("/3/0/13", 1367491215)},
        {"/1/0/6", "1", 0, E_BOOL("/1/0/6", true)},
        {"/1/0/6", "yes", BAD, {0}},
        {"/1/0/10", "11:0", 0, E_LNK("/1/0/10", 11, 0)},
        {"/1/0/11", "255", 0, E_UINT("/1/0/11", 255)},
        {"/6/0/0", "52.5", 0, E_FLT("/6/0/0", 52.5)},
        {"/6/0/4", "AQI=", 0, E_OPQ("/6/0/4", "\x01\x02", 2)},
        {"/3/0/6/1", "5", 0, E_INT("/3/0/6/1", 5)},
        {"/3/0/4", "x", 0, E_STR("/3/0/4", "x")},         /* executable: no type */
        {"/32000/0/1", "7", 0, E_STR("/32000/0/1", "7")}, /* unknown object */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        lwm2m_path_t base = P(cases[k].path);
        lwm2m_records_t out;
        sentinel_init(&out);
        int rc = lwm2m_decode(LWM2M_CF_TEXT, &base, (const uint8_t *)cases[k].text, strlen(cases[k].text), reg, &out);
        if (rc != cases[k].rc)
            fail_msg("%s = \"%s\": rc %d, want %d", cases[k].path, cases[k].text, rc, cases[k].rc);
        if (rc == 0)
            check_records(cases[k].path, &out, 1, &cases[k].want, 1);
        else
            sentinel_check(cases[k].path, &out);
        lwm2m_records_clear(&out);
    }
    lwm2m_registry_free(&reg);

    /* names and support */
    assert_true(lwm2m_cf_supported(LWM2M_CF_TEXT));
    assert_true(lwm2m_cf_supported(LWM2M_CF_OPAQUE));
    assert_false(lwm2m_cf_supported(LWM2M_CF_LINK)); /* link.h, not a record codec */
    assert_false(lwm2m_cf_supported(LWM2M_CF_CBOR));
    assert_false(lwm2m_cf_supported(LWM2M_CF_NONE));
    assert_string_equal(lwm2m_cf_name(LWM2M_CF_TEXT), "text");
    assert_string_equal(lwm2m_cf_name(LWM2M_CF_OPAQUE), "opaque");
    assert_string_equal(lwm2m_cf_name(LWM2M_CF_LWM2M_CBOR), "LwM2M CBOR");
    assert_string_equal(lwm2m_cf_name(-7), "unknown");

    /* every format: too large, bad arguments, unsupported */
    static const int cfs[] = {LWM2M_CF_TEXT, LWM2M_CF_OPAQUE, LWM2M_CF_TLV, LWM2M_CF_OLD_TLV, LWM2M_CF_SENML_JSON,
                              LWM2M_CF_SENML_CBOR, LWM2M_CF_LWM2M_CBOR};
    size_t n = LWM2M_MAX_PAYLOAD + 1;
    uint8_t *big = calloc(1, n);
    assert_non_null(big);
    lwm2m_path_t base = P(AT);
    lwm2m_records_t out;
    sentinel_init(&out);
    for (size_t k = 0; k < sizeof cfs / sizeof cfs[0]; k++) {
        assert_int_equal(lwm2m_decode(cfs[k], &base, big, n, NULL, &out), LWM2M_ERR_REQUEST_TOO_LARGE);
        assert_int_equal(lwm2m_decode(cfs[k], NULL, big, 1, NULL, &out), BAD);
        assert_int_equal(lwm2m_decode(cfs[k], &base, NULL, 1, NULL, &out), BAD);
    }
    static const int unsupported[] = {LWM2M_CF_LINK, LWM2M_CF_CBOR, LWM2M_CF_OMA_JSON, LWM2M_CF_OLD_JSON, 1, 65535};
    for (size_t k = 0; k < sizeof unsupported / sizeof unsupported[0]; k++) {
        uint8_t *enc = NULL;
        size_t enclen = 0;
        assert_int_equal(lwm2m_decode(unsupported[k], &base, big, 1, NULL, &out), LWM2M_ERR_UNSUPPORTED_CF);
        assert_int_equal(lwm2m_encode(unsupported[k], &base, &out, &enc, &enclen), LWM2M_ERR_UNSUPPORTED_CF);
    }
    sentinel_check("dispatch", &out);
    lwm2m_records_clear(&out);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_decode_table),
        cmocka_unit_test(test_text_decode_bases),
        cmocka_unit_test(test_text_encode_table),
        cmocka_unit_test(test_text_float_round_trip),
        cmocka_unit_test(test_text_encode_shape),
        cmocka_unit_test(test_opaque),
        cmocka_unit_test(test_text_round_trips),
        cmocka_unit_test(test_text_registry_and_dispatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
