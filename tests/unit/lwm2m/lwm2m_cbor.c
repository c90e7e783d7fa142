/* Unit tests for server/lwm2m/lwm2m_cbor.c (LwM2M CBOR, CF 11544). CBOR
 * vectors are written by hand from RFC 8949 (major types, lengths, tags 1 and
 * 4); the ones marked [A] are the byte strings of AVSystem Anjay's
 * tests/core/io/lwm2m_cbor_in.c (the client whose encoder and decoder lwdm
 * has to interoperate with), so paths are absolute from the Object ID as
 * there. Ids: 3 = 03, 13 = 0D, 26 = 18 1A, 42 = 18 2A, 87 = 18 57. */
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

/* {[3,0]: {0: "x", 9: 87}} */
#define DEV_30 "A1 82 03 00 A2 00 61 78 09 18 57"
/* [A] {[13, 26]: {1: 1, 2: -1, 3: 2.5, 4: "test", 5: h'11223344', 6: "12:34", 7: 1}} */
#define ALL_TYPES                                                                                    \
    "A1 82 0D 18 1A A7 01 01 02 20 03 F9 41 00 04 64 74 65 73 74 05 44 11 22 33 44 06 65 31 32 3A 33 " \
    "34 07 01"

typedef struct {
    const char *name;
    const char *base;
    const char *hex;
    int rc;
    exp_t exp[8];
} ccase_t;

static const ccase_t decode_cases[] = {
    {"instance, path compression", "/3/0", DEV_30, 0, {E_STR("/3/0/0", "x"), E_INT("/3/0/9", 87)}},
    {"same, read at the object", "/3", DEV_30, 0, {E_STR("/3/0/0", "x"), E_INT("/3/0/9", 87)}},
    {"same, composite (root)", "/", DEV_30, 0, {E_STR("/3/0/0", "x"), E_INT("/3/0/9", 87)}},
    {"[A] single resource", "/13/26/1", "A1 83 0D 18 1A 01 18 2A", 0, {E_INT("/13/26/1", 42)}},
    {"[A] single resource, bool", "/13/26/1", "A1 83 0D 18 1A 01 F5", 0, {E_BOOL("/13/26/1", true)}},
    {"[A] nested single ids", "/13/26/1", "A1 0D A1 18 1A A1 01 18 2A", 0, {E_INT("/13/26/1", 42)}},
    {"[A] nested one-id arrays", "/13/26/1", "A1 81 0D A1 81 18 1A A1 81 01 18 2A", 0, {E_INT("/13/26/1", 42)}},
    {"[A] indefinite map and key", "/13/26/1", "BF 9F 0D 18 1A 01 FF 18 2A FF", 0, {E_INT("/13/26/1", 42)}},
    {"[A] everything indefinite", "/13/26/1", "BF 9F 0D FF BF 9F 18 1A FF BF 9F 01 FF 18 2A FF FF FF", 0,
     {E_INT("/13/26/1", 42)}},
    {"[A] two resources", "/13/26", "A1 82 0D 18 1A A2 01 18 2A 02 15", 0, {E_INT("/13/26/1", 42), E_INT("/13/26/2", 21)}},
    {"[A] two full paths", "/13/26", "A2 83 0D 18 1A 01 18 2A 83 0D 18 1A 02 15", 0,
     {E_INT("/13/26/1", 42), E_INT("/13/26/2", 21)}},
    {"[A] map then full path", "/13/26", "A2 82 0D 18 1A A1 01 18 2A 83 0D 18 1A 02 15", 0,
     {E_INT("/13/26/1", 42), E_INT("/13/26/2", 21)}},
    {"[A] full path then map", "/13/26", "A2 83 0D 18 1A 01 18 2A 82 0D 18 1A A1 81 02 15", 0,
     {E_INT("/13/26/1", 42), E_INT("/13/26/2", 21)}},
    {"[A] all types", "/13/26", ALL_TYPES, 0,
     {E_INT("/13/26/1", 1), E_INT("/13/26/2", -1), E_FLT("/13/26/3", 2.5), E_STR("/13/26/4", "test"),
      E_OPQ("/13/26/5", "\x11\x22\x33\x44", 4), E_STR("/13/26/6", "12:34"), E_INT("/13/26/7", 1)}},
    {"[A] composite", "/", "A2 0D A1 18 1A A1 01 01 0E A1 18 1B A1 02 02", 0, {E_INT("/13/26/1", 1), E_INT("/14/27/2", 2)}},
    {"[A] composite, indefinite maps", "/", "BF 0D BF 18 1A BF 01 01 FF FF 0E BF 18 1B BF 02 02 FF FF FF", 0,
     {E_INT("/13/26/1", 1), E_INT("/14/27/2", 2)}},
    {"[A] decimal fraction at max nesting", "/13/26/1/2", "A1 81 0D A1 81 18 1A A1 81 01 A1 81 02 C4 82 20 18 2D", 0,
     {E_FLT("/13/26/1/2", 4.5)}},
    {"[A] null and int", "/13/26/1", "A1 83 0D 18 1A 01 A2 02 F6 03 05", 0, {E_NONE("/13/26/1/2"), E_INT("/13/26/1/3", 5)}},
    {"[A] bytes, indefinite", "/13/26/1", "A1 83 0D 18 1A 01 5F 42 00 11 41 22 FF", 0, {E_OPQ("/13/26/1", "\x00\x11\x22", 3)}},
    {"resource instances", "/3/0/7", "A1 83 03 00 07 A2 00 19 0E D8 01 19 13 88", 0,
     {E_INT("/3/0/7/0", 3800), E_INT("/3/0/7/1", 5000)}},
    {"request below the first keys", "/3/0/9", "A1 03 A1 00 A1 09 05", 0, {E_INT("/3/0/9", 5)}},
    {"time, tag 1", "/3/0/13", "A1 83 03 00 0D C1 1A 5F 5E 10 00", 0, {E_TIME("/3/0/13", 1600000000)}},
    {"time, tag 1, negative", "/3/0/13", "A1 83 03 00 0D C1 20", 0, {E_TIME("/3/0/13", -1)}},
    {"time, tag 1 on a float is floored", "/3/0/13", "A1 83 03 00 0D C1 FB 41 D7 D7 84 00 20 00 00", 0,
     {E_TIME("/3/0/13", 1600000000)}},
    {"uint64 max is Unsigned", "/1/0/1", "A1 83 01 00 01 1B FF FF FF FF FF FF FF FF", 0, {E_UINT("/1/0/1", UINT64_MAX)}},
    {"int64 max is Integer", "/1/0/1", "A1 83 01 00 01 1B 7F FF FF FF FF FF FF FF", 0, {E_INT("/1/0/1", INT64_MAX)}},
    {"int64 min", "/1/0/1", "A1 83 01 00 01 3B 7F FF FF FF FF FF FF FF", 0, {E_INT("/1/0/1", INT64_MIN)}},
    {"half float", "/1/0/1", "A1 83 01 00 01 F9 3E 00", 0, {E_FLT("/1/0/1", 1.5)}},
    {"single float", "/1/0/1", "A1 83 01 00 01 FA 3F C0 00 00", 0, {E_FLT("/1/0/1", 1.5)}},
    {"double", "/1/0/1", "A1 83 01 00 01 FB 3F B9 99 99 99 99 99 9A", 0, {E_FLT("/1/0/1", 0.1)}},
    {"decimal fraction 1.5, indefinite", "/1/0/1", "A1 83 01 00 01 C4 9F 20 0F FF", 0, {E_FLT("/1/0/1", 1.5)}},
    {"decimal fraction 123e2", "/1/0/1", "A1 83 01 00 01 C4 82 02 18 7B", 0, {E_FLT("/1/0/1", 12300.0)}},
    {"text UTF-8", "/1/0/1", "A1 83 01 00 01 62 C3 A9", 0, {E_STR("/1/0/1", "\xC3\xA9")}},
    {"text empty", "/1/0/1", "A1 83 01 00 01 60", 0, {E_STR("/1/0/1", "")}},
    {"text indefinite", "/1/0/1", "A1 83 01 00 01 7F 61 61 62 62 63 60 FF", 0, {E_STR("/1/0/1", "abc")}},
    {"text indefinite, no chunks", "/1/0/1", "A1 83 01 00 01 7F FF", 0, {E_STR("/1/0/1", "")}},
    {"bytes empty", "/1/0/1", "A1 83 01 00 01 40", 0, {E_OPQ("/1/0/1", "", 0)}},
    {"bool false", "/1/0/6", "A1 83 01 00 06 F4", 0, {E_BOOL("/1/0/6", false)}},
    {"objlnk stays text without a registry", "/1/0/10", "A1 83 01 00 0A 64 31 31 3A 30", 0, {E_STR("/1/0/10", "11:0")}},
    {"empty payload", "/3/0", "A0", 0, {{0}}},
    {"empty payload, indefinite", "/3/0", "BF FF", 0, {{0}}},
    {"empty nested map is a name", "/3/0", "A1 83 03 00 06 A0", 0, {E_NONE("/3/0/6")}},
    {"empty nested map, indefinite", "/3/0", "A1 83 03 00 06 BF FF", 0, {E_NONE("/3/0/6")}},
    {"null instance", "/3", "A1 82 03 00 F6", 0, {E_NONE("/3/0")}},
    {"null object", "/", "A1 03 F6", 0, {E_NONE("/3")}},
    {"largest id", "/", "A1 84 19 FF FE 19 FF FE 19 FF FE 19 FF FE 01", 0, {E_INT("/65534/65534/65534/65534", 1)}},
    {"ids in 8-byte form", "/", "A1 83 1B 00 00 00 00 00 00 00 03 00 09 01", 0, {E_INT("/3/0/9", 1)}},
    /* ---- bad ---- */
    {"empty input", "/", "", BAD, {{0}}},
    {"map cut short", "/", "A1", BAD, {{0}}},
    {"value missing", "/", "A1 03", BAD, {{0}}},
    {"nested map cut short", "/", "A1 83 03 00 07 A2 00 01", BAD, {{0}}},
    {"[A] nested map ends early", "/", "A1 82 0D 18 1A A1", BAD, {{0}}},
    {"indefinite map without break", "/", "BF 83 03 00 09 01", BAD, {{0}}},
    {"top level array", "/", "80", BAD, {{0}}},
    {"[A] top level array of ints", "/", "84 01 02 03 04", BAD, {{0}}},
    {"[A] top level int", "/", "00", BAD, {{0}}},
    {"top level null", "/", "F6", BAD, {{0}}},
    {"top level text", "/", "61 78", BAD, {{0}}},
    {"trailing byte", "/", "A0 00", BAD, {{0}}},
    {"two maps", "/", "A0 A0", BAD, {{0}}},
    {"id 65535", "/", "A1 19 FF FF F6", BAD, {{0}}},
    {"[A] id 65536", "/13/26", "A1 82 0D 18 1A A1 1A 00 01 00 00 05", BAD, {{0}}},
    {"[A] id 65536 in an array", "/13/26", "A1 83 0D 18 1A 1A 00 01 00 00 05", BAD, {{0}}},
    {"id 2^64-1", "/", "A1 1B FF FF FF FF FF FF FF FF F6", BAD, {{0}}},
    {"[A] five ids in a key", "/13/26", "A1 85 0D 18 1A 03 04 05 05", BAD, {{0}}},
    {"[A] five ids over two keys", "/13/26/1/2", "A1 83 0D 18 1A 01 A2 02 05 82 03 04 06", BAD, {{0}}},
    {"[A] five nested maps", "/13/26/1/2", "A1 0D A1 18 1A A1 01 A1 02 A1 03 04", BAD, {{0}}},
    {"map below a resource instance", "/", "A1 84 03 00 06 00 A0", BAD, {{0}}},
    {"[A] empty array key", "/", "A2 0D A1 80 18 1A A1 80 01 18 2A", BAD, {{0}}},
    {"empty indefinite array key", "/", "A1 9F FF 01", BAD, {{0}}},
    {"[A] float in a key array", "/", "A1 83 0D FB 3F D0 A3 D7 0A 3D 70 A4 01 18 2A", BAD, {{0}}},
    {"[A] float key", "/", "A1 FB 3F C0 A3 D7 0A 3D 70 A4 A1 82 18 1A 01 18 2A", BAD, {{0}}},
    {"[A] text key", "/", "A1 0D A1 62 32 36 A1 01 18 2A", BAD, {{0}}},
    {"negative key", "/", "A1 20 F6", BAD, {{0}}},
    {"bool key", "/", "A1 F5 F6", BAD, {{0}}},
    {"map key", "/", "A1 A0 F6", BAD, {{0}}},
    {"tagged key", "/", "A1 C1 03 F6", BAD, {{0}}},
    {"text in a key array", "/", "A1 82 03 61 30 F6", BAD, {{0}}},
    {"key array cut short", "/", "A1 83 03 00", BAD, {{0}}},
    {"indefinite key array cut short", "/", "A1 9F 03 00", BAD, {{0}}},
    {"[A] array as a value", "/", "A1 0D A1 18 1A 81 A1 01 18 2A", BAD, {{0}}},
    {"value at an object", "/", "A1 03 05", BAD, {{0}}},
    {"value at an instance", "/", "A1 82 03 00 05", BAD, {{0}}},
    {"[A] outside the request: object", "/14", "A1 83 0D 18 1A 01 18 2A", BAD, {{0}}},
    {"[A] outside the request: instance", "/13/27", "A1 83 0D 18 1A 01 18 2A", BAD, {{0}}},
    {"[A] outside the request: resource", "/13/26/2", "A1 83 0D 18 1A 01 18 2A", BAD, {{0}}},
    {"[A] outside the request: above it", "/13/26/1/69", "A1 83 0D 18 1A 01 18 2A", BAD, {{0}}},
    {"relative paths are not read", "/3/0", "A2 00 61 78 09 18 57", BAD, {{0}}},
    {"duplicate path", "/", "A2 83 03 00 09 01 83 03 00 09 02", BAD, {{0}}},
    {"duplicate path, two spellings", "/", "A2 03 A1 00 A1 09 01 83 03 00 09 02", BAD, {{0}}},
    {"value and a path below it", "/", "A2 83 03 00 06 01 84 03 00 06 00 01", BAD, {{0}}},
    {"null and a path below it", "/", "A2 83 03 00 06 F6 84 03 00 06 00 01", BAD, {{0}}},
    {"undefined", "/", "A1 83 03 00 09 F7", BAD, {{0}}},
    {"simple value 16", "/", "A1 83 03 00 09 F0", BAD, {{0}}},
    {"simple value 32", "/", "A1 83 03 00 09 F8 20", BAD, {{0}}},
    {"stray break as a value", "/", "A1 83 03 00 09 FF", BAD, {{0}}},
    {"break in a definite map", "/", "A1 FF", BAD, {{0}}},
    {"reserved additional info", "/", "A1 83 03 00 09 1C", BAD, {{0}}},
    {"tag 0 (date text)", "/", "A1 83 03 00 09 C0 61 30", BAD, {{0}}},
    {"tag 2 (bignum)", "/", "A1 83 03 00 09 C2 41 01", BAD, {{0}}},
    {"tag 1 on text", "/", "A1 83 03 00 09 C1 61 31", BAD, {{0}}},
    {"tag 1 on a tag", "/", "A1 83 03 00 09 C1 C1 01", BAD, {{0}}},
    {"tag 1 on a huge float", "/", "A1 83 03 00 09 C1 FB 7F EF FF FF FF FF FF FF", BAD, {{0}}},
    {"tag 1 cut short", "/", "A1 83 03 00 09 C1", BAD, {{0}}},
    {"tag 4 on one item", "/", "A1 83 03 00 09 C4 81 01", BAD, {{0}}},
    {"tag 4 with a bignum", "/", "A1 83 03 00 09 C4 82 20 C2 41 01", BAD, {{0}}},
    {"tag 4 overflows", "/", "A1 83 03 00 09 C4 82 19 01 90 01", BAD, {{0}}},
    {"tag 4 indefinite, three items", "/", "A1 83 03 00 09 C4 9F 20 0F 01 FF", BAD, {{0}}},
    {"below int64", "/", "A1 83 03 00 09 3B 80 00 00 00 00 00 00 00", BAD, {{0}}},
    {"invalid UTF-8", "/", "A1 83 03 00 09 61 FF", BAD, {{0}}},
    {"UTF-8 split across chunks", "/", "A1 83 03 00 09 7F 61 C3 61 A9 FF", BAD, {{0}}},
    {"bytes chunk in text", "/", "A1 83 03 00 09 7F 41 61 FF", BAD, {{0}}},
    {"nested indefinite chunk", "/", "A1 83 03 00 09 5F 5F FF FF", BAD, {{0}}},
    {"indefinite text cut short", "/", "A1 83 03 00 09 7F 61 61", BAD, {{0}}},
    {"huge map count", "/", "BB FF FF FF FF FF FF FF FF 83 03 00 09 01", BAD, {{0}}},
    {"huge text length", "/", "A1 83 03 00 09 7B FF FF FF FF FF FF FF FF 61", BAD, {{0}}},
    {"huge bytes length", "/", "A1 83 03 00 09 5A FF FF FF FF 00", BAD, {{0}}},
    {"integer header cut", "/", "A1 83 03 00 09 1B 00 00", BAD, {{0}}},
    {"good record then a bad one", "/", "A2 83 03 00 09 01 83 03 00 0A F7", BAD, {{0}}},
};

static void test_decode_table(void **state)
{
    (void)state;
    static uint8_t buf[512];
    for (size_t k = 0; k < sizeof decode_cases / sizeof decode_cases[0]; k++) {
        const ccase_t *c = &decode_cases[k];
        size_t n = unhex(c->hex, buf, sizeof buf);
        lwm2m_path_t base = P(c->base);
        lwm2m_records_t out;
        sentinel_init(&out);
        int rc = lwm2m_lwm2m_cbor_decode(&base, buf, n, &out);
        if (rc != c->rc)
            fail_msg("%s: rc %d, want %d", c->name, rc, c->rc);
        if (rc != 0)
            sentinel_check(c->name, &out);
        else
            check_records(c->name, &out, 1, c->exp, 8);
        /* the dispatcher agrees (no registry: no retyping) */
        lwm2m_records_t out2;
        lwm2m_records_init(&out2);
        int rc2 = lwm2m_decode(LWM2M_CF_LWM2M_CBOR, &base, buf, n, NULL, &out2);
        if (rc2 != rc)
            fail_msg("%s: lwm2m_decode rc %d, want %d", c->name, rc2, rc);
        lwm2m_records_clear(&out2);
        lwm2m_records_clear(&out);
    }
}

/* ======================================================= encode table */

typedef struct {
    const char *name;
    const char *base;
    int rc;
    const char *hex;
    exp_t recs[4];
} ecase_t;

static const ecase_t encode_cases[] = {
    {"instance", "/3/0", 0, DEV_30, {E_STR("/3/0/0", "x"), E_INT("/3/0/9", 87)}},
    {"instance, unsorted input", "/3/0", 0, DEV_30, {E_INT("/3/0/9", 87), E_STR("/3/0/0", "x")}},
    {"instance read at the object", "/3", 0, DEV_30, {E_STR("/3/0/0", "x"), E_INT("/3/0/9", 87)}},
    {"single resource", "/3/0/9", 0, "A1 83 03 00 09 18 57", {E_INT("/3/0/9", 87)}},
    {"[A] single resource", "/13/26/1", 0, "A1 83 0D 18 1A 01 18 2A", {E_INT("/13/26/1", 42)}},
    {"[A] two resources", "/13/26", 0, "A1 82 0D 18 1A A2 01 18 2A 02 15", {E_INT("/13/26/1", 42), E_INT("/13/26/2", 21)}},
    {"composite", "/", 0, "A2 83 0D 18 1A 01 01 83 0E 18 1B 02 02", {E_INT("/13/26/1", 1), E_INT("/14/27/2", 2)}},
    {"two instances", "/3", 0, "A1 03 A2 82 00 00 61 78 82 01 00 61 79", {E_STR("/3/0/0", "x"), E_STR("/3/1/0", "y")}},
    {"resource instances", "/3/0/7", 0, "A1 83 03 00 07 A2 00 19 0E D8 01 19 13 88",
     {E_INT("/3/0/7/0", 3800), E_INT("/3/0/7/1", 5000)}},
    {"mixed depths", "/3/0", 0, "A1 82 03 00 A2 00 61 78 06 A2 00 01 01 05",
     {E_STR("/3/0/0", "x"), E_INT("/3/0/6/0", 1), E_INT("/3/0/6/1", 5)}},
    {"resource instance request", "/3/0/6/1", 0, "A1 84 03 00 06 01 05", {E_INT("/3/0/6/1", 5)}},
    {"time as tag 1", "/3/0/13", 0, "A1 83 03 00 0D C1 1A 5F 5E 10 00", {E_TIME("/3/0/13", 1600000000)}},
    {"negative time", "/3/0/13", 0, "A1 83 03 00 0D C1 20", {E_TIME("/3/0/13", -1)}},
    {"objlnk as text", "/1/0/10", 0, "A1 83 01 00 0A 64 31 31 3A 30", {E_LNK("/1/0/10", 11, 0)}},
    {"opaque as bytes", "/5/0/0", 0, "A1 83 05 00 00 43 01 02 03", {E_OPQ("/5/0/0", "\x01\x02\x03", 3)}},
    {"empty opaque", "/5/0/0", 0, "A1 83 05 00 00 40", {E_OPQ("/5/0/0", "", 0)}},
    {"corelnk as text", "/1/0/1", 0, "A1 83 01 00 01 62 3C 3E", {E_CORE("/1/0/1", "<>")}},
    {"float exact in single", "/1/0/1", 0, "A1 83 01 00 01 FA 3F C0 00 00", {E_FLT("/1/0/1", 1.5)}},
    {"float needs double", "/1/0/1", 0, "A1 83 01 00 01 FB 3F B9 99 99 99 99 99 9A", {E_FLT("/1/0/1", 0.1)}},
    {"bool", "/1/0/6", 0, "A1 83 01 00 06 F5", {E_BOOL("/1/0/6", true)}},
    {"uint64 max", "/1/0/1", 0, "A1 83 01 00 01 1B FF FF FF FF FF FF FF FF", {E_UINT("/1/0/1", UINT64_MAX)}},
    {"int64 min", "/1/0/1", 0, "A1 83 01 00 01 3B 7F FF FF FF FF FF FF FF", {E_INT("/1/0/1", INT64_MIN)}},
    {"none as null", "/3/0", 0, "A1 83 03 00 04 F6", {E_NONE("/3/0/4")}},
    {"none at an instance", "/3", 0, "A1 82 03 00 F6", {E_NONE("/3/0")}},
    {"empty", "/3/0", 0, "A0", {{0}}},
    {"outside the base", "/3", BAD, NULL, {E_INT("/1/0/1", 1)}},
    {"same path twice", "/3/0", BAD, NULL, {E_INT("/3/0/9", 1), E_INT("/3/0/9", 2)}},
    {"path below another", "/3/0", BAD, NULL, {E_INT("/3/0/6", 1), E_INT("/3/0/6/0", 2)}},
    {"value at an instance path", "/3", BAD, NULL, {E_INT("/3/0", 1)}},
    {"root record", "/", BAD, NULL, {E_NONE("/")}},
    {"invalid UTF-8", "/1/0/1", BAD, NULL, {E_STR("/1/0/1", "\xFF")}},
};

static void test_encode_table(void **state)
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
        int rc = lwm2m_encode(LWM2M_CF_LWM2M_CBOR, &base, &rs, &out, &outlen);
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
        /* reading it back gives the records, in path order */
        lwm2m_records_t dec;
        lwm2m_records_init(&dec);
        if (lwm2m_lwm2m_cbor_decode(&base, out, outlen, &dec) != 0)
            fail_msg("%s: reading back failed", c->name);
        for (size_t i = 0; i < rs.n; i++) { /* what the format cannot say alone */
            lwm2m_record_t *r = &rs.recs[i];
            if (r->type == LWM2M_T_CORELNK) {
                r->type = LWM2M_T_STRING;
            } else if (r->type == LWM2M_T_OBJLNK) {
                char t[16];
                snprintf(t, sizeof t, "%u:%u", r->v.lnk.oid, r->v.lnk.iid);
                r->type = LWM2M_T_STRING;
                r->bytes = (uint8_t *)strdup(t);
                r->nbytes = strlen(t);
            }
        }
        lwm2m_records_sort(&rs);
        check_same_sets(c->name, &rs, &dec);
        free(out);
        lwm2m_records_clear(&rs);
        lwm2m_records_clear(&dec);
    }
}

/* every type through LwM2M CBOR, and the registry restoring the types */
static void test_round_trips(void **state)
{
    (void)state;
    static const exp_t all[] = {
        /* in path order, as the encoder writes them */
        E_UINT("/1/0/11", 255), E_UINT("/1/0/13", UINT64_MAX), E_BOOL("/1/0/6", true), E_LNK("/1/0/10", 11, 0),
        E_STR("/3/0/0", "Open Mobile Alliance"), E_STR("/3/0/1", ""), E_NONE("/3/0/4"), E_INT("/3/0/6/0", 1),
        E_INT("/3/0/6/1", -5), E_INT("/3/0/9", 100), E_TIME("/3/0/13", 1367491215), E_STR("/3/0/16", "U"),
        E_FLT("/6/0/0", 52.2), E_FLT("/6/0/1", -0.0), E_FLT("/6/0/2", NAN), E_OPQ("/6/0/4", "\x00\xFF\x00", 3),
        E_OPQ("/6/1/4", "", 0), E_CORE("/99/0/1", "</3/0>"),
    };
    size_t n = sizeof all / sizeof all[0];
    char err[256];
    lwm2m_registry_t *reg = lwm2m_registry_new();
    assert_non_null(reg);
    assert_int_equal(lwm2m_registry_add_builtin(reg, err, sizeof err), 0);
    lwm2m_records_t rs, plain, typed, want;
    lwm2m_records_init(&rs);
    lwm2m_records_init(&plain);
    lwm2m_records_init(&typed);
    lwm2m_records_init(&want);
    for (size_t k = 0; k < n; k++)
        add_exp(&rs, &all[k]);
    lwm2m_records_sort(&rs);
    lwm2m_path_t root = P("/");
    uint8_t *out = NULL;
    size_t outlen = 0;
    assert_int_equal(lwm2m_encode(LWM2M_CF_LWM2M_CBOR, &root, &rs, &out, &outlen), 0);
    assert_int_equal(lwm2m_decode(LWM2M_CF_LWM2M_CBOR, &root, out, outlen, NULL, &plain), 0);
    assert_int_equal(lwm2m_decode(LWM2M_CF_LWM2M_CBOR, &root, out, outlen, reg, &typed), 0);
    /* with the registry every type comes back, except the corelnk of an
     * object it does not know */
    for (size_t k = 0; k < rs.n; k++)
        assert_int_equal(lwm2m_records_add(&want, &rs.recs[k]), 0);
    want.recs[want.n - 1].type = LWM2M_T_STRING;
    check_same_sets("typed", &want, &typed);
    /* without, the CBOR types: objlnk is text, small unsigned an integer */
    lwm2m_records_clear(&want);
    for (size_t k = 0; k < rs.n; k++) {
        lwm2m_record_t r = rs.recs[k];
        if (r.type == LWM2M_T_OBJLNK) {
            r.type = LWM2M_T_STRING;
            r.bytes = (uint8_t *)"11:0";
            r.nbytes = 4;
        } else if (r.type == LWM2M_T_UNSIGNED && r.v.u <= INT64_MAX) {
            r.type = LWM2M_T_INTEGER;
            r.v.i = (int64_t)r.v.u;
        } else if (r.type == LWM2M_T_CORELNK) {
            r.type = LWM2M_T_STRING;
        }
        assert_int_equal(lwm2m_records_add(&want, &r), 0);
    }
    check_same_sets("plain", &want, &plain);
    free(out);

    /* the registry narrows numbers and refuses text that is no object link */
    lwm2m_records_t o;
    lwm2m_records_init(&o);
    lwm2m_path_t p1 = P("/1/0");
    uint8_t b[64];
    size_t bn = unhex("A1 82 01 00 A3 0B 18 FF 0C 1A 5F 5E 10 00 01 F9 3C 00", b, sizeof b); /* 11: 255, 12: 1600000000, 1: 1.0 */
    assert_int_equal(lwm2m_decode(LWM2M_CF_LWM2M_CBOR, &p1, b, bn, reg, &o), 0);
    static const exp_t narrowed[] = {E_UINT("/1/0/11", 255), E_TIME("/1/0/12", 1600000000), E_INT("/1/0/1", 1)};
    check_records("narrowed", &o, 0, narrowed, 3);
    lwm2m_records_clear(&o);
    sentinel_init(&o);
    bn = unhex("A1 83 01 00 0A 63 31 31 30", b, sizeof b); /* 10: "110" */
    assert_int_equal(lwm2m_decode(LWM2M_CF_LWM2M_CBOR, &p1, b, bn, reg, &o), BAD);
    sentinel_check("objlnk text", &o);
    bn = unhex("A1 83 01 00 01 F9 3E 00", b, sizeof b); /* lifetime 1.5 */
    assert_int_equal(lwm2m_decode(LWM2M_CF_LWM2M_CBOR, &p1, b, bn, reg, &o), BAD);
    sentinel_check("fraction for an integer", &o);
    lwm2m_records_clear(&o);

    lwm2m_records_clear(&want);
    lwm2m_records_clear(&rs);
    lwm2m_records_clear(&plain);
    lwm2m_records_clear(&typed);
    lwm2m_registry_free(&reg);
}

static void test_limits(void **state)
{
    (void)state;
    lwm2m_path_t base = P("/");
    lwm2m_records_t out;
    sentinel_init(&out);
    size_t n = LWM2M_MAX_PAYLOAD + 1;
    uint8_t *big = calloc(1, n);
    assert_non_null(big);
    assert_int_equal(lwm2m_lwm2m_cbor_decode(&base, big, n, &out), LWM2M_ERR_REQUEST_TOO_LARGE);
    assert_int_equal(lwm2m_decode(LWM2M_CF_LWM2M_CBOR, &base, big, n, NULL, &out), LWM2M_ERR_REQUEST_TOO_LARGE);
    sentinel_check("too large", &out);
    /* a big opaque value: byte string with a 4-byte length */
    size_t vlen = 100000;
    memcpy(big, "\xA1\x83\x05\x00\x00\x5A\x00\x01\x86\xA0", 10);
    for (size_t i = 0; i < vlen; i++)
        big[10 + i] = (uint8_t)i;
    assert_int_equal(lwm2m_lwm2m_cbor_decode(&base, big, 10 + vlen, &out), 0);
    assert_int_equal(out.n, 2);
    assert_int_equal(out.recs[1].nbytes, vlen);
    assert_memory_equal(out.recs[1].bytes, big + 10, vlen);
    assert_int_equal(lwm2m_lwm2m_cbor_decode(&base, big, 10 + vlen - 1, &out), BAD);
    assert_int_equal(out.n, 2);
    /* many instances in one indefinite map, written back and read again */
    size_t nrec = 30000, k = 0;
    memcpy(big, "\xA1\x82\x03\x00\xBF", 5);
    k = 5;
    for (size_t i = 0; i < nrec; i++) {
        big[k++] = 0x19; /* uint16 resource id */
        big[k++] = (uint8_t)(i >> 8);
        big[k++] = (uint8_t)i;
        big[k++] = 0x19;
        big[k++] = (uint8_t)(i >> 8);
        big[k++] = (uint8_t)i;
    }
    big[k++] = 0xFF;
    lwm2m_records_clear(&out);
    assert_int_equal(lwm2m_lwm2m_cbor_decode(&base, big, k, &out), 0);
    assert_int_equal(out.n, nrec);
    assert_int_equal(out.recs[nrec - 1].path.ids[2], nrec - 1);
    assert_int_equal(out.recs[nrec - 1].v.i, (int64_t)(nrec - 1));
    uint8_t *enc = NULL;
    size_t enclen = 0;
    assert_int_equal(lwm2m_lwm2m_cbor_encode(&base, &out, &enc, &enclen), 0);
    lwm2m_records_t back;
    lwm2m_records_init(&back);
    assert_int_equal(lwm2m_lwm2m_cbor_decode(&base, enc, enclen, &back), 0);
    check_same_sets("many", &out, &back);
    /* the same set with one path repeated at the end is refused */
    big[k - 1] = 0x00; /* id 0 again ... */
    big[k++] = 0x00;   /* ... value 0 */
    big[k++] = 0xFF;
    lwm2m_records_clear(&back);
    sentinel_init(&back);
    assert_int_equal(lwm2m_lwm2m_cbor_decode(&base, big, k, &back), BAD);
    sentinel_check("repeated id", &back);
    free(enc);
    free(big);
    lwm2m_records_clear(&out);
    lwm2m_records_clear(&back);
    assert_true(lwm2m_cf_supported(LWM2M_CF_LWM2M_CBOR));
    assert_string_equal(lwm2m_cf_name(LWM2M_CF_LWM2M_CBOR), "LwM2M CBOR");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_table),
        cmocka_unit_test(test_encode_table),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
