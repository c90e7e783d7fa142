/* Unit tests for server/lwm2m/lwm2m.c: paths, type names, record sets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/lwm2m/lwm2m.h"

/* ------------------------------------------------------------ parsing */

typedef struct {
    const char *in;
    size_t len; /* 0: strlen(in) */
    int rc;
    int plen;
    unsigned ids[4];
} parse_case_t;

static const parse_case_t parse_cases[] = {
    /* good */
    {"", 0, 0, 0, {0}},
    {"/", 0, 0, 0, {0}},
    {"/3", 0, 0, 1, {3}},
    {"3", 0, 0, 1, {3}},
    {"/3/0", 0, 0, 2, {3, 0}},
    {"/3/0/1", 0, 0, 3, {3, 0, 1}},
    {"3/0/1", 0, 0, 3, {3, 0, 1}},
    {"/3/0/1/", 0, 0, 3, {3, 0, 1}},
    {"/3/0/6/1", 0, 0, 4, {3, 0, 6, 1}},
    {"/3/0/6/1/", 0, 0, 4, {3, 0, 6, 1}},
    {"/65534/65534/65534/65534", 0, 0, 4, {65534, 65534, 65534, 65534}},
    {"/0/0/0/0", 0, 0, 4, {0, 0, 0, 0}},
    {"/003/00", 0, 0, 2, {3, 0}}, /* leading zeros are still numbers */
    {"/3/0/1xyz", 6, 0, 3, {3, 0, 1}}, /* only `len` bytes are read */
    /* bad */
    {"//", 0, LWM2M_ERR_BAD_REQUEST, 0, {0}},
    {"/3//1", 0, LWM2M_ERR_BAD_REQUEST, 0, {0}},
    {"/3/0/1//", 0, LWM2M_ERR_BAD_REQUEST, 0, {0}},
    {"/1/2/3/4/5", 0, LWM2M_ERR_BAD_REQUEST, 0, {0}},
    {"/1/2/3/4/", 0, 0, 4, {1, 2, 3, 4}},
    {"/65535", 0, LWM2M_ERR_BAD_REQUEST, 0, {0}},
    {"/65536", 0, LWM2M_ERR_BAD_REQUEST, 0, {0}},
    {"/99999999999999999999", 0, LWM2M_ERR_BAD_REQUEST, 0, {0}},
    {"/a", 0, LWM2M_ERR_BAD_REQUEST, 0, {0}},
    {"/3/-1", 0, LWM2M_ERR_BAD_REQUEST, 0, {0}},
    {"/3/+1", 0, LWM2M_ERR_BAD_REQUEST, 0, {0}},
    {"/3 /0", 0, LWM2M_ERR_BAD_REQUEST, 0, {0}},
    {" /3", 0, LWM2M_ERR_BAD_REQUEST, 0, {0}},
    {"/3\0/0", 5, LWM2M_ERR_BAD_REQUEST, 0, {0}},
    {"/3/0x1", 0, LWM2M_ERR_BAD_REQUEST, 0, {0}},
    {"\\3", 0, LWM2M_ERR_BAD_REQUEST, 0, {0}},
};

static void test_path_parse_table(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof parse_cases / sizeof parse_cases[0]; k++) {
        const parse_case_t *c = &parse_cases[k];
        size_t len = c->len ? c->len : strlen(c->in);
        lwm2m_path_t p = lwm2m_path_make(2, 77, 77, 0, 0);
        lwm2m_path_t before = p;
        int rc = lwm2m_path_parse(c->in, len, &p);
        if (rc != c->rc)
            fail_msg("case %zu \"%s\": rc %d, want %d", k, c->in, rc, c->rc);
        if (rc != 0) {
            if (!lwm2m_path_equal(&p, &before))
                fail_msg("case %zu \"%s\": output changed on failure", k, c->in);
            continue;
        }
        if (p.len != c->plen)
            fail_msg("case %zu \"%s\": len %d, want %d", k, c->in, p.len, c->plen);
        for (int i = 0; i < c->plen; i++)
            if (p.ids[i] != c->ids[i])
                fail_msg("case %zu \"%s\": id[%d] %u, want %u", k, c->in, i, p.ids[i], c->ids[i]);
    }
}

static void test_path_format(void **state)
{
    (void)state;
    char buf[32];
    lwm2m_path_t root = lwm2m_path_make(0, 0, 0, 0, 0);
    assert_int_equal(lwm2m_path_format(&root, buf, sizeof buf), 1);
    assert_string_equal(buf, "/");
    lwm2m_path_t p = lwm2m_path_make(4, 3, 0, 6, 65534);
    assert_int_equal(lwm2m_path_format(&p, buf, sizeof buf), 12);
    assert_string_equal(buf, "/3/0/6/65534");
    /* exact fit and one byte short */
    lwm2m_path_t q = lwm2m_path_make(3, 3, 0, 1, 0);
    assert_int_equal(lwm2m_path_format(&q, buf, 7), 6);
    assert_string_equal(buf, "/3/0/1");
    assert_int_equal(lwm2m_path_format(&q, buf, 6), -1);
    assert_int_equal(lwm2m_path_format(&root, buf, 1), -1);
    assert_int_equal(lwm2m_path_format(&root, buf, 0), -1);
    /* format then parse is the identity */
    for (unsigned a = 0; a < 70000; a += 6997) {
        lwm2m_path_t x = lwm2m_path_make(3, a % 65535, 1, a % 100, 0), y;
        int n = lwm2m_path_format(&x, buf, sizeof buf);
        assert_true(n > 0);
        assert_int_equal(lwm2m_path_parse(buf, (size_t)n, &y), 0);
        assert_true(lwm2m_path_equal(&x, &y));
    }
}

static void test_path_make_equal_prefix(void **state)
{
    (void)state;
    lwm2m_path_t a = lwm2m_path_make(3, 3, 0, 1, 99);
    assert_int_equal(a.len, 3);
    assert_int_equal(a.ids[2], 1);
    assert_int_equal(a.ids[3], LWM2M_ID_NONE);
    assert_int_equal(lwm2m_path_make(9, 1, 2, 3, 4).len, 4);
    assert_int_equal(lwm2m_path_make(-1, 1, 2, 3, 4).len, 0);

    lwm2m_path_t b = lwm2m_path_make(3, 3, 0, 1, 0);
    lwm2m_path_t c = lwm2m_path_make(3, 3, 0, 2, 0);
    lwm2m_path_t obj = lwm2m_path_make(1, 3, 0, 0, 0);
    lwm2m_path_t root = lwm2m_path_make(0, 0, 0, 0, 0);
    lwm2m_path_t ri = lwm2m_path_make(4, 3, 0, 1, 7);
    assert_true(lwm2m_path_equal(&a, &b)); /* ids past len do not count */
    assert_false(lwm2m_path_equal(&a, &c));
    assert_false(lwm2m_path_equal(&a, &obj));
    assert_true(lwm2m_path_starts_with(&a, &a));
    assert_true(lwm2m_path_starts_with(&a, &obj));
    assert_true(lwm2m_path_starts_with(&a, &root));
    assert_true(lwm2m_path_starts_with(&ri, &a));
    assert_false(lwm2m_path_starts_with(&obj, &a));
    assert_false(lwm2m_path_starts_with(&c, &a));
    assert_false(lwm2m_path_starts_with(&root, &obj));
}

static void test_path_compare(void **state)
{
    (void)state;
    /* strictly increasing sequence */
    const lwm2m_path_t seq[] = {
        lwm2m_path_make(0, 0, 0, 0, 0),    lwm2m_path_make(1, 0, 0, 0, 0),
        lwm2m_path_make(2, 0, 0, 0, 0),    lwm2m_path_make(3, 0, 0, 0, 0),
        lwm2m_path_make(4, 0, 0, 0, 0),    lwm2m_path_make(4, 0, 0, 0, 1),
        lwm2m_path_make(3, 0, 0, 1, 0),    lwm2m_path_make(1, 1, 0, 0, 0),
        lwm2m_path_make(3, 3, 0, 9, 0),    lwm2m_path_make(3, 3, 0, 10, 0),
        lwm2m_path_make(2, 3, 1, 0, 0),    lwm2m_path_make(1, 65534, 0, 0, 0),
    };
    size_t n = sizeof seq / sizeof seq[0];
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            int c = lwm2m_path_compare(&seq[i], &seq[j]);
            int want = i < j ? -1 : i > j ? 1 : 0;
            if ((c > 0) - (c < 0) != want)
                fail_msg("compare(%zu, %zu) = %d, want %d", i, j, c, want);
        }
}

/* -------------------------------------------------------------- types */

static void test_type_names(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int t;
    } cases[] = {
        {"String", LWM2M_T_STRING},
        {"string", LWM2M_T_STRING},
        {"STRING", LWM2M_T_STRING},
        {"Integer", LWM2M_T_INTEGER},
        {"Unsigned Integer", LWM2M_T_UNSIGNED},
        {"  unsigned   INTEGER ", LWM2M_T_UNSIGNED},
        {"unsigned", LWM2M_T_UNSIGNED},
        {"Float", LWM2M_T_FLOAT},
        {"Boolean", LWM2M_T_BOOLEAN},
        {"Opaque", LWM2M_T_OPAQUE},
        {"Time", LWM2M_T_TIME},
        {"Objlnk", LWM2M_T_OBJLNK},
        {"Corelnk", LWM2M_T_CORELNK},
        {"none", LWM2M_T_NONE},
        {"", LWM2M_T_NONE},
        {"unsignedinteger", -1},
        {"int", -1},
        {"Strings", -1},
        {"a very long type name that overflows any buffer", -1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int t = lwm2m_type_parse(cases[k].s);
        if (t != cases[k].t)
            fail_msg("type_parse(\"%s\") = %d, want %d", cases[k].s, t, cases[k].t);
    }
    assert_int_equal(lwm2m_type_parse(NULL), -1);
    /* every name parses back to its type */
    for (int t = LWM2M_T_NONE; t <= LWM2M_T_CORELNK; t++)
        assert_int_equal(lwm2m_type_parse(lwm2m_type_name((lwm2m_type_t)t)), t);
    assert_string_equal(lwm2m_type_name(LWM2M_T_UNSIGNED), "unsigned");
    assert_string_equal(lwm2m_type_name((lwm2m_type_t)99), "unknown");
}

/* -------------------------------------------------------- record sets */

static void test_records_add_copies(void **state)
{
    (void)state;
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    lwm2m_path_t p = lwm2m_path_make(3, 3, 0, 0, 0);
    char s[] = "Open Mobile Alliance";
    assert_int_equal(lwm2m_records_add_string(&rs, &p, s), 0);
    s[0] = 'X'; /* the set holds its own copy */
    assert_int_equal(rs.n, 1);
    assert_string_equal((char *)rs.recs[0].bytes, "Open Mobile Alliance");
    assert_int_equal(rs.recs[0].nbytes, 20);
    assert_int_equal(rs.recs[0].type, LWM2M_T_STRING);

    uint8_t bin[3] = {0, 1, 2};
    assert_int_equal(lwm2m_records_add_opaque(&rs, &p, bin, 3), 0);
    bin[1] = 9;
    assert_memory_equal(rs.recs[1].bytes, "\x00\x01\x02", 3);
    assert_int_equal(rs.recs[1].bytes[3], 0); /* NUL-terminated */
    assert_int_equal(lwm2m_records_add_opaque(&rs, &p, NULL, 0), 0);
    assert_non_null(rs.recs[2].bytes);
    assert_int_equal(rs.recs[2].nbytes, 0);
    assert_int_equal(lwm2m_records_add_string(&rs, &p, NULL), 0);
    assert_int_equal(rs.recs[3].nbytes, 0);

    assert_int_equal(lwm2m_records_add_int(&rs, &p, INT64_MIN), 0);
    assert_int_equal(lwm2m_records_add_uint(&rs, &p, UINT64_MAX), 0);
    assert_int_equal(lwm2m_records_add_float(&rs, &p, -2.5), 0);
    assert_int_equal(lwm2m_records_add_bool(&rs, &p, true), 0);
    assert_int_equal(lwm2m_records_add_objlnk(&rs, &p, 65535, 65535), 0);
    assert_int_equal(rs.n, 9);
    assert_true(rs.recs[4].v.i == INT64_MIN);
    assert_true(rs.recs[5].v.u == UINT64_MAX);
    assert_true(rs.recs[6].v.f == -2.5);
    assert_true(rs.recs[7].v.b);
    assert_int_equal(rs.recs[8].v.lnk.oid, 65535);
    for (size_t i = 4; i < 9; i++)
        assert_null(rs.recs[i].bytes);

    /* a numeric record with stray bytes does not keep them */
    lwm2m_record_t r = rs.recs[4];
    r.bytes = bin;
    r.nbytes = 3;
    assert_int_equal(lwm2m_records_add(&rs, &r), 0);
    assert_null(rs.recs[9].bytes);
    /* a bytes record claiming data it does not have is refused */
    r.type = LWM2M_T_OPAQUE;
    r.bytes = NULL;
    assert_int_equal(lwm2m_records_add(&rs, &r), LWM2M_ERR_INTERNAL);
    assert_int_equal(rs.n, 10);

    lwm2m_records_clear(&rs);
    assert_int_equal(rs.n, 0);
    assert_null(rs.recs);
    lwm2m_records_clear(&rs); /* twice is harmless */
}

static void test_records_many(void **state)
{
    (void)state;
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    for (unsigned i = 0; i < 5000; i++) {
        lwm2m_path_t p = lwm2m_path_make(4, 3, 0, 6, i);
        assert_int_equal(lwm2m_records_add_int(&rs, &p, (int64_t)i), 0);
    }
    assert_int_equal(rs.n, 5000);
    lwm2m_path_t q = lwm2m_path_make(4, 3, 0, 6, 4321);
    const lwm2m_record_t *r = lwm2m_records_find(&rs, &q);
    assert_non_null(r);
    assert_int_equal(r->v.i, 4321);
    lwm2m_path_t missing = lwm2m_path_make(3, 3, 0, 6, 0);
    assert_null(lwm2m_records_find(&rs, &missing));
    lwm2m_records_clear(&rs);
}

static void test_records_sort_stable(void **state)
{
    (void)state;
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    /* paths out of order; equal paths carry their insertion order in v.i */
    static const unsigned order[][3] = {{3, 0, 9}, {1, 0, 1}, {3, 0, 1}, {1, 0, 1}, {3, 0, 9},
                                        {2, 5, 0}, {1, 0, 0}, {3, 0, 1}, {1, 0, 1}};
    size_t n = sizeof order / sizeof order[0];
    for (size_t i = 0; i < n; i++) {
        lwm2m_path_t p = lwm2m_path_make(3, order[i][0], order[i][1], order[i][2], 0);
        assert_int_equal(lwm2m_records_add_int(&rs, &p, (int64_t)i), 0);
    }
    lwm2m_path_t sub = lwm2m_path_make(4, 1, 0, 1, 0);
    assert_int_equal(lwm2m_records_add_int(&rs, &sub, 100), 0);
    lwm2m_records_sort(&rs);
    static const int64_t want[] = {6, 1, 3, 8, 100, 5, 2, 7, 0, 4};
    for (size_t i = 0; i < rs.n; i++)
        if (rs.recs[i].v.i != want[i])
            fail_msg("position %zu holds %lld, want %lld", i, (long long)rs.recs[i].v.i, (long long)want[i]);
    for (size_t i = 1; i < rs.n; i++)
        assert_true(lwm2m_path_compare(&rs.recs[i - 1].path, &rs.recs[i].path) <= 0);
    /* find returns the first of equal paths */
    lwm2m_path_t p = lwm2m_path_make(3, 1, 0, 1, 0);
    assert_int_equal(lwm2m_records_find(&rs, &p)->v.i, 1);
    lwm2m_records_clear(&rs);
    lwm2m_records_sort(&rs); /* empty set */
}

static void test_records_sort_moves_bytes(void **state)
{
    (void)state;
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    char s[8];
    for (int i = 99; i >= 0; i--) {
        lwm2m_path_t p = lwm2m_path_make(3, 1, (unsigned)i, 0, 0);
        snprintf(s, sizeof s, "v%d", i);
        assert_int_equal(lwm2m_records_add_string(&rs, &p, s), 0);
    }
    lwm2m_records_sort(&rs);
    for (int i = 0; i < 100; i++) {
        snprintf(s, sizeof s, "v%d", i);
        assert_int_equal(rs.recs[i].path.ids[1], i);
        assert_string_equal((char *)rs.recs[i].bytes, s);
    }
    lwm2m_records_clear(&rs); /* ASan: no double free, no leak */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_parse_table),
        cmocka_unit_test(test_path_format),
        cmocka_unit_test(test_path_make_equal_prefix),
        cmocka_unit_test(test_path_compare),
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_records_add_copies),
        cmocka_unit_test(test_records_many),
        cmocka_unit_test(test_records_sort_stable),
        cmocka_unit_test(test_records_sort_moves_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
