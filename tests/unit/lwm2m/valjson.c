/* Unit tests for server/lwm2m/valjson.c: write bodies -> records (good and
 * bad, with the field each error names), records -> JSON, the round trip
 * between the two, and the ?format= names. Typed against the built-in object
 * definitions (the XMLs in objects/): /3/0/9 Battery Level Integer 0..100, /3/0/7
 * Power Source Voltage Integer multiple, /3/0/13 Current Time, /3/0/4 Reboot
 * (executable), /1/0/0 Short Server ID 1..65534, /1/0/6 Boolean, /1/0/10 APN
 * Link Objlnk, /1/0/11 Unsigned 0..255, /1/0/13 Unsigned, /5/0/0 Package
 * Opaque, /6/0/0 Latitude Float. /99 is not defined. */
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
#include "server/lwm2m/valjson.h"

#include "codec_test_util.h"

#define BAD LWM2M_ERR_BAD_REQUEST

static lwm2m_registry_t *reg;

static int setup(void **state)
{
    (void)state;
    char err[256];
    reg = lwm2m_registry_new();
    if (!reg || lwm2m_registry_add_builtin(reg, err, sizeof err) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    lwm2m_registry_free(&reg);
    return 0;
}

typedef struct {
    const char *name;
    const char *base;
    const char *body;
    int rc;
    const char *field; /* expected on failure */
    exp_t exp[5];
} jcase_t; /* a base written "!/3/0" means: no registry */

static const jcase_t from_cases[] = {
    {"string", "/3/0/14", "{\"value\": \"+01\"}", 0, NULL, {E_STR("/3/0/14", "+01")}},
    {"empty string", "/3/0/14", "{\"value\": \"\"}", 0, NULL, {E_STR("/3/0/14", "")}},
    {"string with NUL", "/3/0/14", "{\"value\": \"a\\u0000b\"}", 0, NULL, {{"/3/0/14", LWM2M_T_STRING, .s = "a\0b", .slen = 3}}},
    {"integer", "/3/0/9", "{\"value\": 87}", 0, NULL, {E_INT("/3/0/9", 87)}},
    {"integer at the bottom of its range", "/3/0", "{\"records\": [{\"path\": \"/3/0/9\", \"value\": 0}]}", 0, NULL,
     {E_INT("/3/0/9", 0)}},
    {"integer range top", "/1/0/0", "{\"value\": 65534}", 0, NULL, {E_INT("/1/0/0", 65534)}},
    {"unsigned", "/1/0/11", "{\"value\": 255}", 0, NULL, {E_UINT("/1/0/11", 255)}},
    {"unsigned above int64, as text", "/1/0/13", "{\"value\": \"18446744073709551615\"}", 0, NULL,
     {E_UINT("/1/0/13", UINT64_MAX)}},
    {"float", "/6/0/0", "{\"value\": 52.25}", 0, NULL, {E_FLT("/6/0/0", 52.25)}},
    {"float from an integer", "/6/0/0", "{\"value\": -7}", 0, NULL, {E_FLT("/6/0/0", -7.0)}},
    {"boolean", "/1/0/6", "{\"value\": true}", 0, NULL, {E_BOOL("/1/0/6", true)}},
    {"boolean false", "/1/0/6", "{\"value\": false}", 0, NULL, {E_BOOL("/1/0/6", false)}},
    {"time", "/3/0/13", "{\"value\": 1763800000}", 0, NULL, {E_TIME("/3/0/13", 1763800000)}},
    {"opaque hex", "/5/0/0", "{\"value\": \"0aFF10\"}", 0, NULL, {E_OPQ("/5/0/0", "\x0a\xff\x10", 3)}},
    {"opaque empty", "/5/0/0", "{\"value\": \"\"}", 0, NULL, {E_OPQ("/5/0/0", "", 0)}},
    {"objlnk", "/1/0/10", "{\"value\": \"11:0\"}", 0, NULL, {E_LNK("/1/0/10", 11, 0)}},
    {"objlnk null link", "/1/0/10", "{\"value\": \"65535:65535\"}", 0, NULL, {E_LNK("/1/0/10", 65535, 65535)}},
    {"type agreeing with the definition", "/3/0/9", "{\"value\": 5, \"type\": \"Integer\"}", 0, NULL, {E_INT("/3/0/9", 5)}},
    {"other top-level members are the caller's", "/3/0/9", "{\"value\": 5, \"timeout\": 3}", 0, NULL, {E_INT("/3/0/9", 5)}},
    {"multiple resource as a list", "/3/0/7", "{\"value\": [3800, 5000]}", 0, NULL,
     {E_INT("/3/0/7/0", 3800), E_INT("/3/0/7/1", 5000)}},
    {"multiple resource as an object", "/3/0/7", "{\"value\": {\"0\": 3800, \"5\": 5000}}", 0, NULL,
     {E_INT("/3/0/7/0", 3800), E_INT("/3/0/7/5", 5000)}},
    {"resource instance", "/3/0/7/1", "{\"value\": 5000}", 0, NULL, {E_INT("/3/0/7/1", 5000)}},
    {"records", "/3/0",
     "{\"records\": [{\"path\": \"/3/0/14\", \"value\": \"+01\"}, {\"path\": \"/3/0/13\", \"value\": 5}]}", 0, NULL,
     {E_STR("/3/0/14", "+01"), E_TIME("/3/0/13", 5)}},
    {"records, composite at the root", "/",
     "{\"records\": [{\"path\": \"/3/0/9\", \"value\": 1}, {\"path\": \"/1/0/6\", \"value\": false}]}", 0, NULL,
     {E_INT("/3/0/9", 1), E_BOOL("/1/0/6", false)}},
    {"records, create below an object", "/5",
     "{\"records\": [{\"path\": \"5/1/1\", \"value\": \"coap://x\"}]}", 0, NULL, {E_STR("/5/1/1", "coap://x")}},
    {"records, name and type as a read gives them", "/3/0",
     "{\"records\": [{\"path\": \"/3/0/9\", \"name\": \"Battery Level\", \"type\": \"integer\", \"value\": 9}]}", 0, NULL,
     {E_INT("/3/0/9", 9)}},
    {"records, multiple resource and an instance of another", "/3/0",
     "{\"records\": [{\"path\": \"/3/0/7\", \"value\": [1, 2]}, {\"path\": \"/3/0/6/3\", \"value\": 1}]}", 0, NULL,
     {E_INT("/3/0/7/0", 1), E_INT("/3/0/7/1", 2), E_INT("/3/0/6/3", 1)}},
    {"unknown resource with a type", "/99/0/1", "{\"value\": \"x\", \"type\": \"string\"}", 0, NULL, {E_STR("/99/0/1", "x")}},
    {"unknown resource, unsigned by its XML name", "/99",
     "{\"records\": [{\"path\": \"/99/0/1\", \"type\": \"Unsigned Integer\", \"value\": 7}]}", 0, NULL,
     {E_UINT("/99/0/1", 7)}},
    {"unknown resource, list with a type", "/99/0/1", "{\"value\": [true, false], \"type\": \"boolean\"}", 0, NULL,
     {E_BOOL("/99/0/1/0", true), E_BOOL("/99/0/1/1", false)}},
    {"unknown corelnk", "/99/0/2", "{\"value\": \"</3/0>\", \"type\": \"corelnk\"}", 0, NULL, {E_CORE("/99/0/2", "</3/0>")}},
    {"no registry: types given", "!/3/0",
     "{\"records\": [{\"path\": \"/3/0/9\", \"type\": \"float\", \"value\": 1}, {\"path\": \"/3/0/13\", \"type\": \"time\", \"value\": 2}]}",
     0, NULL, {E_FLT("/3/0/9", 1.0), E_TIME("/3/0/13", 2)}},
    /* ---- bad ---- */
    {"body not an object", "/3/0/9", "[1]", BAD, "body", {{0}}},
    {"neither value nor records", "/3/0/9", "{\"val\": 1}", BAD, "value", {{0}}},
    {"both value and records", "/3/0/9", "{\"value\": 1, \"records\": []}", BAD, "records", {{0}}},
    {"value at an instance", "/3/0", "{\"value\": 1}", BAD, "value", {{0}}},
    {"value at the root", "/", "{\"value\": 1}", BAD, "value", {{0}}},
    {"null value", "/3/0/9", "{\"value\": null}", BAD, "value", {{0}}},
    {"integer given a real", "/3/0/9", "{\"value\": 1.5}", BAD, "value", {{0}}},
    {"integer given 1.0", "/3/0/9", "{\"value\": 1.0}", BAD, "value", {{0}}},
    {"integer given text", "/3/0/9", "{\"value\": \"5\"}", BAD, "value", {{0}}},
    {"integer above its range", "/3/0/9", "{\"value\": 101}", BAD, "value", {{0}}},
    {"integer below its range", "/3/0/9", "{\"value\": -1}", BAD, "value", {{0}}},
    {"short server id 0", "/1/0/0", "{\"value\": 0}", BAD, "value", {{0}}},
    {"short server id 65535", "/1/0/0", "{\"value\": 65535}", BAD, "value", {{0}}},
    {"unsigned negative", "/1/0/13", "{\"value\": -1}", BAD, "value", {{0}}},
    {"unsigned above its range", "/1/0/11", "{\"value\": 256}", BAD, "value", {{0}}},
    {"unsigned text not digits", "/1/0/13", "{\"value\": \"12a\"}", BAD, "value", {{0}}},
    {"unsigned text above 2^64", "/1/0/13", "{\"value\": \"18446744073709551616\"}", BAD, "value", {{0}}},
    {"unsigned given a real", "/1/0/13", "{\"value\": 2.0}", BAD, "value", {{0}}},
    {"float given text", "/6/0/0", "{\"value\": \"1.5\"}", BAD, "value", {{0}}},
    {"float given a bool", "/6/0/0", "{\"value\": true}", BAD, "value", {{0}}},
    {"boolean given 1", "/1/0/6", "{\"value\": 1}", BAD, "value", {{0}}},
    {"boolean given text", "/1/0/6", "{\"value\": \"true\"}", BAD, "value", {{0}}},
    {"time given a real", "/3/0/13", "{\"value\": 1.5}", BAD, "value", {{0}}},
    {"time given text", "/3/0/13", "{\"value\": \"2025-01-01\"}", BAD, "value", {{0}}},
    {"opaque odd length", "/5/0/0", "{\"value\": \"abc\"}", BAD, "value", {{0}}},
    {"opaque not hex", "/5/0/0", "{\"value\": \"zz\"}", BAD, "value", {{0}}},
    {"opaque given a number", "/5/0/0", "{\"value\": 12}", BAD, "value", {{0}}},
    {"objlnk without a colon", "/1/0/10", "{\"value\": \"3\"}", BAD, "value", {{0}}},
    {"objlnk id too big", "/1/0/10", "{\"value\": \"70000:0\"}", BAD, "value", {{0}}},
    {"objlnk given a number", "/1/0/10", "{\"value\": 3}", BAD, "value", {{0}}},
    {"string given a number", "/3/0/14", "{\"value\": 1}", BAD, "value", {{0}}},
    {"string given an object", "/3/0/14", "{\"value\": {\"a\": 1}}", BAD, "value", {{0}}},
    {"executable resource", "/3/0/4", "{\"value\": 1}", BAD, "value", {{0}}},
    {"type disagrees with the definition", "/3/0/9", "{\"value\": 1, \"type\": \"string\"}", BAD, "type", {{0}}},
    {"unknown type name", "/3/0/9", "{\"value\": 1, \"type\": \"int32\"}", BAD, "type", {{0}}},
    {"type not a string", "/3/0/9", "{\"value\": 1, \"type\": 3}", BAD, "type", {{0}}},
    {"type none", "/99/0/1", "{\"value\": 1, \"type\": \"none\"}", BAD, "type", {{0}}},
    {"unknown resource without a type", "/99/0/1", "{\"value\": 1}", BAD, "type", {{0}}},
    {"unknown resource of a known object", "/3/0/999", "{\"value\": 1}", BAD, "type", {{0}}},
    {"no registry, no type", "!/3/0/9", "{\"value\": 1}", BAD, "type", {{0}}},
    {"multiple resource given one value", "/3/0/7", "{\"value\": 5}", BAD, "value", {{0}}},
    {"single resource given a list", "/3/0/9", "{\"value\": [1]}", BAD, "value", {{0}}},
    {"empty list", "/3/0/7", "{\"value\": []}", BAD, "value", {{0}}},
    {"empty object", "/3/0/7", "{\"value\": {}}", BAD, "value", {{0}}},
    {"bad list element", "/3/0/7", "{\"value\": [1, \"x\"]}", BAD, "value[1]", {{0}}},
    {"bad object element", "/3/0/7", "{\"value\": {\"0\": 1, \"4\": 1.5}}", BAD, "value[4]", {{0}}},
    {"object key not a number", "/3/0/7", "{\"value\": {\"a\": 1}}", BAD, "value[a]", {{0}}},
    {"object key 65535", "/3/0/7", "{\"value\": {\"65535\": 1}}", BAD, "value[65535]", {{0}}},
    {"object keys naming one instance twice", "/3/0/7", "{\"value\": {\"1\": 1, \"01\": 2}}", BAD, "value", {{0}}},
    {"list at a resource instance", "/3/0/7/1", "{\"value\": [1]}", BAD, "value", {{0}}},
    {"records not a list", "/3/0", "{\"records\": {}}", BAD, "records", {{0}}},
    {"records empty", "/3/0", "{\"records\": []}", BAD, "records", {{0}}},
    {"record not an object", "/3/0", "{\"records\": [{\"path\": \"/3/0/9\", \"value\": 1}, 7]}", BAD, "records[1]", {{0}}},
    {"record without a path", "/3/0", "{\"records\": [{\"value\": 1}]}", BAD, "records[0].path", {{0}}},
    {"record path not text", "/3/0", "{\"records\": [{\"path\": 3, \"value\": 1}]}", BAD, "records[0].path", {{0}}},
    {"record path not a path", "/3/0", "{\"records\": [{\"path\": \"/3/x/9\", \"value\": 1}]}", BAD, "records[0].path", {{0}}},
    {"record path with five ids", "/3/0", "{\"records\": [{\"path\": \"/3/0/7/1/1\", \"value\": 1}]}", BAD,
     "records[0].path", {{0}}},
    {"record path outside the URL path", "/3/0",
     "{\"records\": [{\"path\": \"/3/0/9\", \"value\": 1}, {\"path\": \"/3/1/9\", \"value\": 1}]}", BAD,
     "records[1].path", {{0}}},
    {"record path above the URL path", "/3/0/9", "{\"records\": [{\"path\": \"/3/0\", \"value\": 1}]}", BAD,
     "records[0].path", {{0}}},
    {"record at an instance", "/3", "{\"records\": [{\"path\": \"/3/0\", \"value\": 1}]}", BAD, "records[0].path", {{0}}},
    {"record without a value", "/3/0", "{\"records\": [{\"path\": \"/3/0/9\"}]}", BAD, "records[0].value", {{0}}},
    {"record with an unknown member", "/3/0", "{\"records\": [{\"path\": \"/3/0/9\", \"vaule\": 1}]}", BAD,
     "records[0].vaule", {{0}}},
    {"record value of the wrong type", "/3/0",
     "{\"records\": [{\"path\": \"/3/0/9\", \"value\": 1}, {\"path\": \"/3/0/14\", \"value\": 1}]}", BAD,
     "records[1].value", {{0}}},
    {"record type mismatch", "/3/0", "{\"records\": [{\"path\": \"/3/0/9\", \"type\": \"float\", \"value\": 1}]}", BAD,
     "records[0].type", {{0}}},
    {"record for an unknown resource without a type", "/",
     "{\"records\": [{\"path\": \"/3/0/9\", \"value\": 1}, {\"path\": \"/99/0/1\", \"value\": 1}]}", BAD,
     "records[1].type", {{0}}},
    {"record list element", "/3/0", "{\"records\": [{\"path\": \"/3/0/7\", \"value\": [1, true]}]}", BAD,
     "records[0].value[1]", {{0}}},
    {"same path twice", "/3/0",
     "{\"records\": [{\"path\": \"/3/0/14\", \"value\": \"a\"}, {\"path\": \"/3/0/9\", \"value\": 1}, {\"path\": \"3/0/14\", \"value\": \"b\"}]}",
     BAD, "records[2].path", {{0}}},
    {"instance below a listed resource", "/3/0",
     "{\"records\": [{\"path\": \"/3/0/7/0\", \"value\": 1}, {\"path\": \"/3/0/7\", \"value\": [1]}]}", BAD,
     "records[1].path", {{0}}},
};

static void test_from_json_table(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof from_cases / sizeof from_cases[0]; k++) {
        const jcase_t *c = &from_cases[k];
        json_error_t jerr;
        json_t *body = json_loads(c->body, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (!body)
            fail_msg("%s: test bug, bad JSON: %s", c->name, jerr.text);
        bool no_registry = c->base[0] == '!';
        lwm2m_path_t base = P(c->base + no_registry);
        lwm2m_records_t out;
        sentinel_init(&out);
        char field[64] = "junk", err[256] = "junk";
        int rc = lwm2m_records_from_json(no_registry ? NULL : reg, &base, body, &out, field, sizeof field, err,
                                         sizeof err);
        if (rc != c->rc)
            fail_msg("%s: rc %d, want %d (field \"%s\": %s)", c->name, rc, c->rc, field, err);
        if (rc != 0) {
            sentinel_check(c->name, &out);
            if (strcmp(field, c->field) != 0)
                fail_msg("%s: field \"%s\", want \"%s\" (%s)", c->name, field, c->field, err);
            if (err[0] == '\0' || strcmp(err, "junk") == 0)
                fail_msg("%s: no error text", c->name);
        } else {
            if (field[0] || err[0])
                fail_msg("%s: field/err not cleared on success", c->name);
            check_records(c->name, &out, 1, c->exp, 5);
        }
        lwm2m_records_clear(&out);
        json_decref(body);
    }
}

static void test_from_json_args(void **state)
{
    (void)state;
    lwm2m_records_t out;
    sentinel_init(&out);
    lwm2m_path_t base = P("/3/0/9");
    json_t *body = json_pack("{s:i}", "value", 7);
    assert_non_null(body);
    /* field and err are optional */
    assert_int_equal(lwm2m_records_from_json(reg, &base, body, &out, NULL, 0, NULL, 0), 0);
    assert_int_equal(out.n, 2);
    assert_int_equal(lwm2m_records_from_json(reg, &base, NULL, &out, NULL, 0, NULL, 0), BAD);
    assert_int_equal(lwm2m_records_from_json(reg, NULL, body, &out, NULL, 0, NULL, 0), BAD);
    assert_int_equal(out.n, 2);
    /* an error text that does not fit is cut, never overrun */
    char field[4], err[8];
    json_t *bad = json_pack("{s:s}", "value", "x");
    assert_int_equal(lwm2m_records_from_json(reg, &base, bad, &out, field, sizeof field, err, sizeof err), BAD);
    assert_int_equal(strlen(field), 3);
    assert_int_equal(strlen(err), 7);
    json_decref(bad);
    json_decref(body);
    lwm2m_records_clear(&out);
}

/* RangeEnumeration of a loaded definition: integer, unsigned and (decimal)
 * float bounds are enforced, anything else is not */
static void test_ranges(void **state)
{
    (void)state;
#define RITEM(id, type, range)                                                                          \
    "<Item ID=\"" id "\"><Name>R" id "</Name><Operations>RW</Operations><MultipleInstances>Single"    \
    "</MultipleInstances><Type>" type "</Type><RangeEnumeration>" range "</RangeEnumeration></Item>"
    static const char xml[] = "<LWM2M><Object><Name>Ranges</Name><ObjectID>40100</ObjectID><Resources>" RITEM(
        "0", "Float", "-90.0..90.0") RITEM("1", "Integer", "-5..5") RITEM("2", "Unsigned Integer", "10..20")
        RITEM("3", "Float", "0..100") RITEM("4", "String", "0..3") RITEM("5", "Integer", "1..2 seconds")
            "</Resources></Object></LWM2M>";
#undef RITEM
    char err[256];
    lwm2m_registry_t *r = lwm2m_registry_new();
    assert_non_null(r);
    assert_int_equal(lwm2m_registry_add_xml(r, xml, strlen(xml), err, sizeof err), 0);
    static const struct {
        const char *path;
        const char *value;
        int rc;
    } t[] = {
        {"/40100/0/0", "-90", 0},    {"/40100/0/0", "90.0", 0},  {"/40100/0/0", "-90.5", BAD}, {"/40100/0/0", "1e3", BAD},
        {"/40100/0/1", "-5", 0},     {"/40100/0/1", "5", 0},     {"/40100/0/1", "-6", BAD},    {"/40100/0/1", "6", BAD},
        {"/40100/0/2", "10", 0},     {"/40100/0/2", "20", 0},    {"/40100/0/2", "9", BAD},     {"/40100/0/2", "21", BAD},
        {"/40100/0/2", "\"21\"", BAD}, {"/40100/0/3", "100.0", 0}, {"/40100/0/3", "100.5", BAD},
        {"/40100/0/4", "\"long text\"", 0}, /* a length, not a number */
        {"/40100/0/5", "7", 0},      /* not a plain range */
    };
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
        char body[128], field[32], msg[160];
        snprintf(body, sizeof body, "{\"value\": %s}", t[k].value);
        json_t *j = json_loads(body, 0, NULL);
        assert_non_null(j);
        lwm2m_path_t base = P(t[k].path);
        lwm2m_records_t out;
        lwm2m_records_init(&out);
        int rc = lwm2m_records_from_json(r, &base, j, &out, field, sizeof field, msg, sizeof msg);
        if (rc != t[k].rc)
            fail_msg("%s = %s: rc %d, want %d (%s)", t[k].path, t[k].value, rc, t[k].rc, msg);
        if (rc != 0 && (strcmp(field, "value") != 0 || !strstr(msg, "outside the range")))
            fail_msg("%s = %s: %s: %s", t[k].path, t[k].value, field, msg);
        lwm2m_records_clear(&out);
        json_decref(j);
    }
    lwm2m_registry_free(&r);
}

/* ======================================================= to JSON */

typedef struct {
    const char *name;
    exp_t rec;
    const char *json;
} tcase_t;

static const tcase_t to_cases[] = {
    {"string", E_STR("/3/0/0", "lwdm"), "{\"path\": \"/3/0/0\", \"name\": \"Manufacturer\", \"type\": \"string\", \"value\": \"lwdm\"}"},
    {"resource instance", E_INT("/3/0/7/0", 3800),
     "{\"path\": \"/3/0/7/0\", \"name\": \"Power Source Voltage\", \"type\": \"integer\", \"value\": 3800}"},
    {"time", E_TIME("/3/0/13", 1763800000),
     "{\"path\": \"/3/0/13\", \"name\": \"Current Time\", \"type\": \"time\", \"value\": 1763800000}"},
    {"integer of a time resource", E_INT("/3/0/13", 5), "{\"path\": \"/3/0/13\", \"name\": \"Current Time\", \"type\": \"time\", \"value\": 5}"},
    {"raw TLV integer", E_OPQ("/3/0/9", "\x64", 1), "{\"path\": \"/3/0/9\", \"name\": \"Battery Level\", \"type\": \"integer\", \"value\": 100}"},
    {"raw TLV that does not fit", E_OPQ("/3/0/9", "\x01\x02\x03", 3),
     "{\"path\": \"/3/0/9\", \"name\": \"Battery Level\", \"type\": \"opaque\", \"value\": \"010203\"}"},
    {"raw TLV objlnk", E_OPQ("/1/0/10", "\x00\x0B\x00\x00", 4), "{\"path\": \"/1/0/10\", \"name\": \"APN Link\", \"type\": \"objlnk\", \"value\": \"11:0\"}"},
    {"raw TLV string", E_OPQ("/3/0/14", "+01", 3), "{\"path\": \"/3/0/14\", \"name\": \"UTC Offset\", \"type\": \"string\", \"value\": \"+01\"}"},
    {"opaque", E_OPQ("/5/0/0", "\x0A\xFF", 2), "{\"path\": \"/5/0/0\", \"name\": \"Package\", \"type\": \"opaque\", \"value\": \"0aff\"}"},
    {"empty opaque", E_OPQ("/5/0/0", "", 0), "{\"path\": \"/5/0/0\", \"name\": \"Package\", \"type\": \"opaque\", \"value\": \"\"}"},
    {"objlnk text of an objlnk resource", E_STR("/1/0/10", "11:0"),
     "{\"path\": \"/1/0/10\", \"name\": \"APN Link\", \"type\": \"objlnk\", \"value\": \"11:0\"}"},
    {"objlnk", E_LNK("/1/0/10", 65535, 65535), "{\"path\": \"/1/0/10\", \"name\": \"APN Link\", \"type\": \"objlnk\", \"value\": \"65535:65535\"}"},
    {"unsigned", E_UINT("/1/0/11", 255),
     "{\"path\": \"/1/0/11\", \"name\": \"TLS-DTLS Alert Code\", \"type\": \"unsigned\", \"value\": 255}"},
    {"unsigned above int64", E_UINT("/1/0/13", UINT64_MAX),
     "{\"path\": \"/1/0/13\", \"name\": \"Registration Priority Order\", \"type\": \"unsigned\", \"value\": \"18446744073709551615\"}"},
    {"float", E_FLT("/6/0/0", 52.25), "{\"path\": \"/6/0/0\", \"name\": \"Latitude\", \"type\": \"float\", \"value\": 52.25}"},
    {"float NaN", E_FLT("/6/0/0", NAN), "{\"path\": \"/6/0/0\", \"name\": \"Latitude\", \"type\": \"float\", \"value\": null}"},
    {"boolean", E_BOOL("/1/0/6", true),
     "{\"path\": \"/1/0/6\", \"name\": \"Notification Storing When Disabled or Offline\", \"type\": \"boolean\", \"value\": true}"},
    {"none", E_NONE("/3/0/4"), "{\"path\": \"/3/0/4\", \"name\": \"Reboot\", \"type\": \"none\", \"value\": null}"},
    {"instance", E_NONE("/3/0"), "{\"path\": \"/3/0\", \"name\": \"Device\", \"type\": \"none\", \"value\": null}"},
    {"unknown resource", E_CORE("/99/0/1", "</3/0>"), "{\"path\": \"/99/0/1\", \"type\": \"corelnk\", \"value\": \"</3/0>\"}"},
    {"bytes that are not UTF-8", E_STR("/99/0/1", "a\xFF" "b\xE2\x82"),
     "{\"path\": \"/99/0/1\", \"type\": \"string\", \"value\": \"a\\uFFFDb\\uFFFD\\uFFFD\"}"},
};

static void test_to_json_table(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof to_cases / sizeof to_cases[0]; k++) {
        const tcase_t *c = &to_cases[k];
        lwm2m_records_t rs;
        lwm2m_records_init(&rs);
        add_exp(&rs, &c->rec);
        json_t *got = lwm2m_records_to_json(reg, &rs);
        assert_non_null(got);
        json_error_t jerr;
        json_t *want = json_loads(c->json, 0, &jerr);
        if (!want)
            fail_msg("%s: test bug: %s", c->name, jerr.text);
        if (json_array_size(got) != 1 || !json_equal(json_array_get(got, 0), want)) {
            char *s = json_dumps(got, JSON_COMPACT);
            fail_msg("%s: got %s", c->name, s);
        }
        /* the record itself is not changed */
        check_records(c->name, &rs, 0, &c->rec, 1);
        json_decref(got);
        json_decref(want);
        lwm2m_records_clear(&rs);
    }
    /* without a registry: no names, the record's own type */
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    static const exp_t r2[] = {E_OPQ("/3/0/9", "\x64", 1), E_FLT("/6/0/0", -INFINITY)};
    add_exp(&rs, &r2[0]);
    add_exp(&rs, &r2[1]);
    json_t *got = lwm2m_records_to_json(NULL, &rs);
    json_t *want = json_loads("[{\"path\": \"/3/0/9\", \"type\": \"opaque\", \"value\": \"64\"},"
                              " {\"path\": \"/6/0/0\", \"type\": \"float\", \"value\": null}]", 0, NULL);
    assert_true(json_equal(got, want));
    json_decref(got);
    json_decref(want);
    lwm2m_records_clear(&rs);
    got = lwm2m_records_to_json(reg, &rs);
    assert_int_equal(json_array_size(got), 0);
    json_decref(got);
    assert_null(lwm2m_records_to_json(reg, NULL));
}

/* what a read shows can be written back as it is */
static void test_round_trip(void **state)
{
    (void)state;
    static const exp_t all[] = {
        E_STR("/3/0/0", "lwdm \xC3\xA9"), E_INT("/3/0/7/0", 3800), E_INT("/3/0/7/1", -2), E_TIME("/3/0/13", 1763800000),
        E_UINT("/1/0/11", 255), E_UINT("/1/0/13", UINT64_MAX), E_BOOL("/1/0/6", false), E_LNK("/1/0/10", 11, 0),
        E_FLT("/6/0/0", 52.2), E_FLT("/6/0/1", -0.0), E_FLT("/6/0/2", 1e300), E_OPQ("/5/0/0", "\x00\xFF\x00", 3),
        E_CORE("/99/0/1", "</3/0>"), E_INT("/99/0/2/7", INT64_MIN), E_STR("/99/1/0", ""),
    };
    lwm2m_records_t rs, back;
    lwm2m_records_init(&rs);
    lwm2m_records_init(&back);
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        add_exp(&rs, &all[k]);
    json_t *arr = lwm2m_records_to_json(reg, &rs);
    assert_non_null(arr);
    json_t *body = json_pack("{s:o}", "records", arr);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    body = json_loads(text, 0, NULL); /* through the text, as a client would */
    free(text);
    assert_non_null(body);
    lwm2m_path_t root = P("/");
    char field[64], err[256];
    int rc = lwm2m_records_from_json(reg, &root, body, &back, field, sizeof field, err, sizeof err);
    if (rc != 0)
        fail_msg("round trip: %s: %s", field, err);
    check_same_sets("round trip", &rs, &back);
    json_decref(body);
    lwm2m_records_clear(&rs);
    lwm2m_records_clear(&back);
}

static void test_formats(void **state)
{
    (void)state;
    static const struct {
        const char *slug;
        int cf;
    } f[] = {{"tlv", LWM2M_CF_TLV},       {"senml-json", LWM2M_CF_SENML_JSON}, {"senml-cbor", LWM2M_CF_SENML_CBOR},
             {"lwm2m-cbor", LWM2M_CF_LWM2M_CBOR}, {"text", LWM2M_CF_TEXT}, {"opaque", LWM2M_CF_OPAQUE},
             {"link", LWM2M_CF_LINK}};
    for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) {
        assert_int_equal(lwm2m_format_parse(f[k].slug), f[k].cf);
        assert_string_equal(lwm2m_format_slug(f[k].cf), f[k].slug);
    }
    assert_int_equal(lwm2m_format_parse("SenML-CBOR"), LWM2M_CF_SENML_CBOR);
    assert_int_equal(lwm2m_format_parse("cbor"), -1);
    assert_int_equal(lwm2m_format_parse("senml"), -1);
    assert_int_equal(lwm2m_format_parse(""), -1);
    assert_int_equal(lwm2m_format_parse(NULL), -1);
    assert_int_equal(lwm2m_format_parse("tlv "), -1);
    assert_string_equal(lwm2m_format_slug(LWM2M_CF_OLD_TLV), "tlv");
    assert_null(lwm2m_format_slug(LWM2M_CF_OMA_JSON));
    assert_null(lwm2m_format_slug(LWM2M_CF_CBOR));
    assert_null(lwm2m_format_slug(-1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_json_table), cmocka_unit_test(test_from_json_args), cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_to_json_table),   cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_formats),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
