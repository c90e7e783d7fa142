/* Unit tests of server/tasks/expr.c: the expression language.
 *
 * The heart is a table: template, the variables the fake lookup knows for
 * that row (on top of a default set), and either the expected result (string
 * form, optionally its type) or the expected error (substring + position,
 * and whether expr_check already finds it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "server/tasks/expr.h"

/* ------------------------------------------------------------------------ */
/* Fake environment                                                          */
/* ------------------------------------------------------------------------ */

typedef struct {
    const char *name;
    expr_type_t type;
    const char *s;
    size_t slen;
    int64_t i;
    double f;
} var_t;

#define VS(n, v) {n, EXPR_STRING, v, sizeof(v) - 1, 0, 0}
#define VI(n, v) {n, EXPR_INT, NULL, 0, v, 0}
#define VF(n, v) {n, EXPR_FLOAT, NULL, 0, 0, v}
#define VB(n, v) {n, EXPR_BOOL, NULL, 0, v, 0}
#define VN(n) {n, EXPR_NULL, NULL, 0, 0, 0}

/* Known in every row. "fail.me" makes the lookup itself fail (-1). */
static const var_t k_defaults[] = {
    VS("device.id", "dev-1"),
    VS("device.endpoint", "urn:dev:1"),
    VS("device.property.serial", "SN-77"),
    VS("sv.managementId", "mgmt-id"),
    VS("sv.password", "secret"),
    VS("task.id", "t-9"),
    VS("server.uri", "coaps://lwm2m.example:5684"),
    VS("lwm2m.bootstrapEvent", "true"),
    VI("#serverId", 4),
    VI("#n", 16),
    VN("#nul"),
    VF("#f", 2.5),
    VB("#t", true),
    VS("#id", "mgmt-id"),
    VS("#psk", "\x01\xff"),
    {NULL, EXPR_NULL, NULL, 0, 0, 0},
};

typedef struct {
    const var_t *vars; /* row variables, NULL-name terminated (may be NULL) */
    int calls;
} fake_env_t;

static int set_var(const var_t *v, expr_value_t *out)
{
    switch (v->type) {
    case EXPR_STRING: return expr_value_set_string(out, v->s, v->slen) == 0 ? 1 : -1;
    case EXPR_INT: out->type = EXPR_INT; out->i = v->i; return 1;
    case EXPR_FLOAT: out->type = EXPR_FLOAT; out->f = v->f; return 1;
    case EXPR_BOOL: out->type = EXPR_BOOL; out->b = v->i != 0; return 1;
    case EXPR_NULL: out->type = EXPR_NULL; return 1;
    }
    return -1;
}

static int fake_lookup(void *ctx, const char *name, expr_value_t *out)
{
    fake_env_t *env = ctx;
    env->calls++;
    assert_int_equal(out->type, EXPR_NULL); /* the evaluator hands a zeroed value */
    assert_null(out->s);
    if (strcmp(name, "fail.me") == 0) {
        /* leave something behind: the evaluator must free it */
        expr_value_set_string(out, "junk", 4);
        return -1;
    }
    for (const var_t *v = env->vars; v && v->name; v++)
        if (strcmp(v->name, name) == 0)
            return set_var(v, out);
    for (const var_t *v = k_defaults; v->name; v++)
        if (strcmp(v->name, name) == 0)
            return set_var(v, out);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The table                                                                 */
/* ------------------------------------------------------------------------ */

enum { OK, CERR, RERR };
#define ANY (-1)

typedef struct {
    int line;
    const char *tmpl;
    const var_t *vars;
    int kind;         /* OK, CERR (expr_check fails), RERR (compiles, eval fails) */
    const char *want; /* OK: expected result (string form); errors: message substring */
    long pos;         /* errors: expected position */
    int type;         /* OK: expected type from expr_eval_value, or ANY */
} row_t;

#define T_OK(t, w) {__LINE__, t, NULL, OK, w, 0, ANY}
#define T_OKT(t, ty, w) {__LINE__, t, NULL, OK, w, 0, ty}
#define T_OKV(t, w, ...) {__LINE__, t, (const var_t[]){__VA_ARGS__, {NULL, EXPR_NULL, NULL, 0, 0, 0}}, OK, w, 0, ANY}
#define T_CERR(t, msg, p) {__LINE__, t, NULL, CERR, msg, p, ANY}
#define T_RERR(t, msg, p) {__LINE__, t, NULL, RERR, msg, p, ANY}
#define T_RERRV(t, msg, p, ...) {__LINE__, t, (const var_t[]){__VA_ARGS__, {NULL, EXPR_NULL, NULL, 0, 0, 0}}, RERR, msg, p, ANY}

static const row_t k_rows[] = {
    /* --- text and parts --- */
    T_OKT("", EXPR_STRING, ""),
    T_OKT("plain text", EXPR_STRING, "plain text"),
    T_OK("a${1}b${'c'}d", "a1bcd"),
    T_OK("${1}${2}", "12"),
    T_OKT(" ${1}", EXPR_STRING, " 1"),
    T_OK("$ {x} $x } {", "$ {x} $x } {"),
    T_OK("cost: $${5}", "cost: $5"),
    T_OK("${ 1 }", "1"),
    T_OK("${\n'x'\t}", "x"),
    T_OK("${'}'}", "}"),
    T_OK("${'${'}x}", "${x}"),
    T_OK("coaps://${device.endpoint}:5684", "coaps://urn:dev:1:5684"),

    /* --- literals --- */
    T_OKT("${''}", EXPR_STRING, ""),
    T_OKT("${\"\"}", EXPR_STRING, ""),
    T_OK("${'text'}", "text"),
    T_OK("${\"te'xt\"}", "te'xt"),
    T_OK("${'it\\'s'}", "it's"),
    T_OK("${\"a\\\"b\"}", "a\"b"),
    T_OK("${'a\\\\b'}", "a\\b"),
    T_OK("${'a\\nb\\tc\\rd'}", "a\nb\tc\rd"),
    T_OK("${'a\"b'}", "a\"b"),
    T_OKT("${42}", EXPR_INT, "42"),
    T_OKT("${-3}", EXPR_INT, "-3"),
    T_OKT("${0}", EXPR_INT, "0"),
    T_OKT("${4.2}", EXPR_FLOAT, "4.2"),
    T_OKT("${1e3}", EXPR_FLOAT, "1000"),
    T_OKT("${1.5e-3}", EXPR_FLOAT, "0.0015"),
    T_OKT("${2E+2}", EXPR_FLOAT, "200"),
    T_OKT("${-0.5}", EXPR_FLOAT, "-0.5"),
    T_OKT("${0.1}", EXPR_FLOAT, "0.1"),
    T_OKT("${1e20}", EXPR_FLOAT, "100000000000000000000"),
    T_OKT("${1e21}", EXPR_FLOAT, "1e+21"),
    T_OKT("${-1.5e300}", EXPR_FLOAT, "-1.5e+300"),
    T_OKT("${1e-6}", EXPR_FLOAT, "0.000001"),
    T_OKT("${1.25e-7}", EXPR_FLOAT, "1.25e-7"),
    T_OKT("${-0.0}", EXPR_FLOAT, "0"),
    T_OKT("${3.0}", EXPR_FLOAT, "3"),
    T_OKT("${true}", EXPR_BOOL, "true"),
    T_OKT("${false}", EXPR_BOOL, "false"),
    T_OKT("${null}", EXPR_NULL, ""),
    T_OKT("${9223372036854775807}", EXPR_INT, "9223372036854775807"),
    T_OKT("${-9223372036854775808}", EXPR_INT, "-9223372036854775808"),
    T_CERR("${9223372036854775808}", "integer literal out of range", 2),
    T_CERR("${1e999}", "number out of range", 2),
    T_CERR("${12ab}", "bad number", 2),
    T_CERR("${1e}", "bad number", 2),

    /* --- variables and context names --- */
    T_OKT("${#serverId}", EXPR_INT, "4"),
    T_OK("${device.id}", "dev-1"),
    T_OK("${device.property.serial}", "SN-77"),
    T_OK("${task.id}/${server.uri}/${lwm2m.bootstrapEvent}", "t-9/coaps://lwm2m.example:5684/true"),
    T_OKT("${#f}", EXPR_FLOAT, "2.5"),
    T_OKT("${#t}", EXPR_BOOL, "true"),
    T_OKT("${#nul}", EXPR_NULL, ""),
    T_OKV("${#a}-${#b}", "x-7", VS("#a", "x"), VI("#b", 7)),
    T_OKV("${#my_var2}", "v", VS("#my_var2", "v")),
    T_OKV("${#a.b}", "dotted", VS("#a.b", "dotted")),
    T_OKV("${device.property.length}", "0", VS("device.property", "")),
    T_RERR("${#missing}", "unknown variable '#missing'", 2),
    T_RERR("x${device.nope}", "unknown variable 'device.nope'", 3),
    T_RERR("${a}", "unknown variable 'a'", 2),
    T_RERR("${string.secureRandom}", "unknown variable 'string.secureRandom'", 2),
    T_RERR("${fail.me}", "lookup of 'fail.me' failed", 2),
    T_CERR("${#}", "expected a variable name after '#'", 3),
    T_CERR("${# a}", "expected a variable name after '#'", 3),

    /* --- the seeds (configuring-a-bootstrap-server.md) --- */
    T_OK("http://external-service.example/serverFor/${device.id}", "http://external-service.example/serverFor/dev-1"),
    T_OKT("${#serverId}", EXPR_INT, "4"),
    T_OK("${sv.managementId}", "mgmt-id"),
    T_OK("${sv.password}", "secret"),
    T_OK("${#id.encodeHex}", "6d676d742d6964"),
    T_OK("${#psk.encodeHex}", "01ff"),
    T_OKT("${''}", EXPR_STRING, ""),

    /* --- functions (randomness itself: test_random below) --- */
    T_OKT("${string.secureRandom(16).length}", EXPR_INT, "16"),
    T_OK("${string.secureRandom(1).length}", "1"),
    T_OK("${string.secureRandom(1024).length}", "1024"),
    T_OK("${string.random(5).length}", "5"),
    T_OK("${string.secureRandom(#n).length}", "16"),
    T_OK("${string.secureRandom ( 2 + 3 ).length}", "5"),
    T_RERR("${string.secureRandom(0)}", "needs 1..1024", 22),
    T_RERR("${string.secureRandom(1025)}", "needs 1..1024", 22),
    T_RERR("${string.random(-1)}", "needs 1..1024", 16),
    T_RERR("${string.secureRandom('16')}", "wrong type", 22),
    T_RERR("${string.secureRandom(1.5)}", "wrong type", 22),
    T_RERR("${string.secureRandom(#nope)}", "unknown variable '#nope'", 22),
    T_CERR("${string.secureRandom()}", "needs 1 argument", 22),
    T_CERR("${string.secureRandom(1, 2)}", "takes 1 argument", 23),
    T_CERR("abcdefghijkl${string.foo(1)}", "unknown function 'string.foo' at 14", 14),
    T_CERR("${foo(1)}", "unknown function 'foo'", 2),
    T_CERR("${#x(1)}", "unknown function '#x'", 2),
    T_CERR("${string.secureRandom(16}", "unbalanced parentheses: missing ')'", 21),

    /* --- methods --- */
    T_OK("${'Hi'.encodeHex}", "4869"),
    T_OK("${''.encodeHex}", ""),
    T_OK("${42.encodeHex}", "3432"),
    T_OK("${'4869'.decodeHex}", "Hi"),
    T_OK("${'4A4b'.decodeHex}", "JK"),
    T_OK("${''.decodeHex.length}", "0"),
    T_OK("${'00ff41'.decodeHex.length}", "3"),
    T_OK("${'00ff41'.decodeHex.encodeHex}", "00ff41"),
    T_RERR("${'abc'.decodeHex}", "invalid hex: odd length", 8),
    T_RERR("${'zz'.decodeHex}", "invalid hex", 7),
    T_RERR("${'0g'.decodeHex}", "invalid hex", 7),
    T_OK("${'hello'.encodeBase64}", "aGVsbG8="),
    T_OK("${''.encodeBase64}", ""),
    T_OK("${'f'.encodeBase64}/${'fo'.encodeBase64}/${'foo'.encodeBase64}", "Zg==/Zm8=/Zm9v"),
    T_OK("${'ff00fe'.decodeHex.encodeBase64}", "/wD+"),
    T_OK("${'aGVsbG8='.decodeBase64}", "hello"),
    T_OK("${'aGVsbG8'.decodeBase64}", "hello"),
    T_OK("${'Zm9v'.decodeBase64}", "foo"),
    T_OK("${'/wD+'.decodeBase64.encodeHex}", "ff00fe"),
    T_OK("${''.decodeBase64.length}", "0"),
    T_RERR("${'a'.decodeBase64}", "invalid base64", 6),
    T_RERR("${'!!!!'.decodeBase64}", "invalid base64", 9),
    T_RERR("${'Zg=a'.decodeBase64}", "invalid base64", 9),
    T_RERR("${'Zm9v='.decodeBase64}", "invalid base64", 10),
    T_OKT("${'42'.toInt}", EXPR_INT, "42"),
    T_OK("${'42'.toInt + 1}", "43"),
    T_OK("${'-7'.toInt}", "-7"),
    T_OK("${'+7'.toInt}", "7"),
    T_OK("${4.9.toInt}", "4"),
    T_OK("${-4.9.toInt}", "-4"),
    T_OK("${'4.5'.toInt}", "4"),
    T_OK("${'1e3'.toInt}", "1000"),
    T_OK("${true.toInt}${false.toInt}", "10"),
    T_OK("${#serverId.toInt}", "4"),
    T_RERR("${'abc'.toInt}", "not a number: 'abc'", 8),
    T_RERR("${''.toInt}", "not a number", 5),
    T_RERR("${' 4'.toInt}", "not a number", 7),
    T_RERR("${'0x10'.toInt}", "not a number", 9),
    T_RERR("${'inf'.toInt}", "not a number", 8),
    T_RERR("${null.toInt}", "wrong type", 7),
    T_RERR("${'99999999999999999999'.toInt}", "integer overflow", 25),
    T_RERR("${1e19.toInt}", "integer overflow", 7),
    T_OKT("${42.toString}", EXPR_STRING, "42"),
    T_OK("${42.toString + 1}", "421"),
    T_OK("${4.2.toString.length}", "3"),
    T_OK("${null.toString.length}", "0"),
    T_OK("${true.toString}", "true"),
    T_OKT("${'h\xc3\xa9llo'.length}", EXPR_INT, "6"),
    T_OK("${12345.length}", "5"),
    T_OK("${null.length}", "0"),
    T_OK("${-3.length}", "2"),
    T_OK("${'aBc1'.toUpperCase}", "ABC1"),
    T_OK("${'aBc1'.toLowerCase()}", "abc1"),
    T_OK("${device.endpoint.toUpperCase}", "URN:DEV:1"),
    T_OK("${sv.password.length}", "6"),
    T_OK("${#id.encodeHex()}", "6d676d742d6964"),
    T_OK("${#id.encodeHex.toUpperCase}", "6D676D742D6964"),
    T_OK("${#id.encodeHex().toUpperCase().length()}", "14"),
    T_OK("${#id . length}", "7"),
    T_OK("${#id.length ( )}", "7"),
    T_OK("${sv.password.length()}", "6"),
    T_OK("${'ab'.encodeHex.toUpperCase.length}", "4"),
    T_OK("${(1 + 2).toString.length}", "1"),
    T_OK("${string.random(3).encodeHex.length}", "6"),
    T_CERR("${'x'.foo}", "unknown method 'foo'", 6),
    T_CERR("${'x'.length.foo}", "unknown method 'foo'", 13),
    T_CERR("${true.nope}", "unknown method 'nope'", 7),
    T_CERR("${(1).nope()}", "unknown method 'nope'", 6),
    T_CERR("${#id.length(1)}", "method 'length' takes no arguments", 13),
    T_CERR("${'x'.}", "expected a method name after '.'", 6),
    T_CERR("${#id.length(}", "unbalanced parentheses: missing ')'", 12),
    T_CERR("${#id.length  ( }", "unbalanced parentheses: missing ')'", 14),
    T_RERR("${#id.foo}", "unknown variable '#id.foo'", 2),
    T_RERR("${#nope.length}", "unknown variable '#nope'", 2),

    /* --- + --- */
    T_OKT("${1 + 2}", EXPR_INT, "3"),
    T_OKT("${1 + 2.5}", EXPR_FLOAT, "3.5"),
    T_OKT("${0.5 + 0.25}", EXPR_FLOAT, "0.75"),
    T_OKT("${'a' + 1}", EXPR_STRING, "a1"),
    T_OK("${1 + 'a'}", "1a"),
    T_OK("${'a' + 'b'}", "ab"),
    T_OK("${'a' + null}", "a"),
    T_OK("${'a' + true}", "atrue"),
    T_OK("${'a' + 2.5}", "a2.5"),
    T_OK("${1 + 2 + 'x'}", "3x"),
    T_OK("${'x' + 1 + 2}", "x12"),
    T_OK("${#serverId + 1}", "5"),
    T_OK("${'id-' + device.id}", "id-dev-1"),
    T_RERR("${true + 1}", "cannot apply '+' to boolean and integer", 7),
    T_RERR("${null + 1}", "cannot apply '+' to null and integer", 7),
    T_RERR("${9223372036854775807 + 1}", "integer overflow in '+'", 22),
    T_RERR("${1e308 + 1e308}", "float overflow", 8),
    /* --- - * / % --- */
    T_OK("${7 - 10}", "-3"),
    T_OK("${7-10}", "-3"),
    T_OK("${7 - -10}", "17"),
    T_OK("${1.5 - 1}", "0.5"),
    T_OK("${2 * 3.5}", "7"),
    T_OK("${6 * 7}", "42"),
    T_OK("${7 / 2}", "3"),
    T_OK("${-7 / 2}", "-3"),
    T_OK("${7.0 / 2}", "3.5"),
    T_OK("${7 % 3}", "1"),
    T_OK("${-7 % 3}", "-1"),
    T_OK("${7.5 % 2}", "1.5"),
    T_OK("${-9223372036854775808 % -1}", "0"),
    T_RERR("${1 / 0}", "division by zero", 4),
    T_RERR("${1 % 0}", "division by zero", 4),
    T_RERR("${1.0 / 0}", "division by zero", 6),
    T_RERR("${1 % 0.0}", "division by zero", 4),
    T_RERR("${-9223372036854775808 / -1}", "integer overflow in '/'", 23),
    T_RERR("${-9223372036854775807 - 2}", "integer overflow in '-'", 23),
    T_RERR("${4611686018427387904 * 2}", "integer overflow in '*'", 22),
    T_RERR("${1e308 * 10}", "float overflow in '*'", 8),
    T_RERR("${'a' - 1}", "cannot apply '-' to string and integer", 6),
    T_RERR("${'a' * 2}", "cannot apply '*' to string and integer", 6),
    T_RERR("${1 / 'a'}", "cannot apply '/' to integer and string", 4),
    T_RERR("${true % 2}", "cannot apply '%' to boolean and integer", 7),
    /* --- unary --- */
    T_OK("${-#serverId}", "-4"),
    T_OK("${-#f}", "-2.5"),
    T_OK("${- (2 + 3)}", "-5"),
    T_OK("${- -3}", "3"),
    T_OK("${--3}", "3"),
    T_OKT("${!false}", EXPR_BOOL, "true"),
    T_OK("${!0}/${!1}/${!''}/${!'a'}/${!null}/${!0.0}/${!2.5}", "true/false/true/false/true/true/false"),
    T_OK("${!!1}", "true"),
    T_OK("${!#nul}", "true"),
    T_RERR("${-'a'}", "cannot apply '-' to string", 2),
    T_RERR("${-true}", "cannot apply '-' to boolean", 2),
    T_RERR("${-null}", "cannot apply '-' to null", 2),
    T_RERRV("${-#m}", "integer overflow in '-'", 2, VI("#m", INT64_MIN)),
    /* --- comparisons --- */
    T_OKT("${1 == 1}", EXPR_BOOL, "true"),
    T_OK("${1 == 1.0}", "true"),
    T_OK("${1 == 2}", "false"),
    T_OK("${1 != 2}", "true"),
    T_OK("${1 != 1}", "false"),
    T_OK("${'a' == 'a'}", "true"),
    T_OK("${'a' == 'b'}", "false"),
    T_OK("${'a' != 'b'}", "true"),
    T_OK("${'1' == 1}", "false"),
    T_OK("${'1' != 1}", "true"),
    T_OK("${null == null}", "true"),
    T_OK("${null == false}", "false"),
    T_OK("${null == ''}", "false"),
    T_OK("${true == true}", "true"),
    T_OK("${true == 1}", "false"),
    T_OK("${'00'.decodeHex == '0000'.decodeHex}", "false"),
    T_OK("${'0000'.decodeHex == '0000'.decodeHex}", "true"),
    T_OK("${1 < 2}/${2 < 2}/${2 <= 2}/${3 <= 2}", "true/false/true/false"),
    T_OK("${3 > 2}/${2 > 2}/${2 >= 2}/${2 >= 3}", "true/false/true/false"),
    T_OK("${1 < 1.5}/${1.5 < 1}/${2.0 >= 2}", "true/false/true"),
    T_OK("${'abc' < 'abd'}/${'ab' < 'abc'}/${'b' > 'abc'}/${'' < 'a'}", "true/true/true/true"),
    T_OK("${'a' <= 'a'}/${'a' >= 'b'}", "true/false"),
    T_OK("${'7f'.decodeHex < '80'.decodeHex}", "true"), /* bytewise, unsigned */
    T_OK("${9007199254740993 > 9007199254740992.0}", "true"),
    T_OK("${9007199254740993 == 9007199254740992.0}", "false"),
    T_OK("${-1 < -0.5}", "true"),
    T_OK("${9223372036854775807 < 1e19}", "true"),
    T_RERR("${1 < 'a'}", "cannot apply '<' to integer and string", 4),
    T_RERR("${'a' >= 1}", "cannot apply '>=' to string and integer", 6),
    T_RERR("${true < false}", "cannot apply '<' to boolean and boolean", 7),
    T_RERR("${null > 1}", "cannot apply '>' to null and integer", 7),
    T_RERR("${1 < 2 < 3}", "cannot apply '<' to boolean and integer", 8),
    /* --- && || --- */
    T_OKT("${true && 'x'}", EXPR_BOOL, "true"),
    T_OK("${true && ''}", "false"),
    T_OK("${'' || 0}", "false"),
    T_OK("${0 || 'a'}", "true"),
    T_OK("${1 && 2 && 0}", "false"),
    T_OK("${null || '' || 1}", "true"),
    T_OK("${false && #nope}", "false"),
    T_OK("${true || #nope}", "true"),
    T_OK("${false && 1 / 0}", "false"),
    T_OK("${1 || 'a' - 1}", "true"),
    T_RERR("${true && #nope}", "unknown variable '#nope'", 10),
    T_RERR("${false || #nope}", "unknown variable '#nope'", 11),
    /* --- ? --- */
    T_OK("${#nope ? 'dflt'}", "dflt"),
    T_OK("${#nul ? 'dflt'}", "dflt"),
    T_OKT("${#serverId ? 9}", EXPR_INT, "4"),
    T_OK("${'' ? 'x'}", ""),
    T_OK("${false ? 'x'}", "false"),
    T_OK("${#a ? #b ? 'c'}", "c"),
    T_OKV("${#a ? #b ? 'c'}", "b", VS("#b", "b")),
    T_OK("${#nope.length ? 0}", "0"),
    T_OK("${#nope + 'a' ? 'b'}", "b"),
    T_OK("${'p' + (#nope ? 'd')}", "pd"),
    T_OK("${#nope ? #nul ? null}", ""),
    T_OK("${device.property.missing ? 'none'}", "none"),
    T_RERR("${#a ? #b}", "unknown variable '#b'", 7),
    T_RERR("${('x' - 1) ? 'y'}", "cannot apply '-'", 7),
    T_RERR("${fail.me ? 'x'}", "lookup of 'fail.me' failed", 2),
    T_RERR("${#nope ? 1 / 0}", "division by zero", 12),
    /* --- if / else --- */
    T_OK("${if (true) 'a' else 'b'}", "a"),
    T_OK("${if (0) 'a' else 'b'}", "b"),
    T_OK("${if(true)1 else 2}", "1"),
    T_OK("${if (#nope ? false) 1 else 2}", "2"),
    T_OK("${if (1 > 2) 'x' else if (2 > 1) 'y' else 'z'}", "y"),
    T_OK("${if (false) 'x' else if (false) 'y' else 'z'}", "z"),
    T_OK("${if (if (true) false else true) 1 else 2}", "2"),
    T_OKT("${if (false) 'a'}", EXPR_NULL, ""),
    T_OK("${1 + if (false) 1 else 2}", "3"),
    T_OK("${if (true) 'a' else #nope}", "a"),
    T_OK("${if (false) #nope else 'b'}", "b"),
    T_OK("${if (#t) #serverId + 1 else 0}", "5"),
    T_CERR("${if true 'a'}", "expected '(' after 'if'", 5),
    T_CERR("${if (true 'a')}", "expected ')'", 11),
    T_CERR("${if (true}", "unbalanced parentheses: missing ')'", 5),
    T_CERR("${if (true) 'a' else}", "expected an expression before '}'", 20),
    T_CERR("${else}", "unexpected 'else'", 2),
    T_CERR("${if.x}", "unexpected 'if'", 2),
    T_RERR("${if (#nope) 1 else 2}", "unknown variable '#nope'", 6),
    /* --- precedence and grouping --- */
    T_OK("${1 + 2 * 3}", "7"),
    T_OK("${(1 + 2) * 3}", "9"),
    T_OK("${10 - 4 - 3}", "3"),
    T_OK("${100 / 10 / 5}", "2"),
    T_OK("${2 * 3 % 4}", "2"),
    T_OK("${1 + 2 == 3}", "true"),
    T_OK("${1 < 2 == true}", "true"),
    T_OK("${2 > 1 == 1 > 2}", "false"),
    T_OK("${!false && true}", "true"),
    T_OK("${true || false && false}", "true"),
    T_OK("${(true || false) && false}", "false"),
    T_OK("${-2 * 3}", "-6"),
    T_OK("${!1 == false}", "true"),
    T_OK("${1 + 1 == 2 && 'a' < 'b' || #nope}", "true"),
    T_OK("${'n=' + 1 + 2 * 3}", "n=16"),
    T_OK("${#nope ? 1 + 2}", "3"),
    T_OK("${((((1))))}", "1"),
    T_OK("${ ( 1 + 2 ) * ( 3 + 4 ) }", "21"),

    /* --- syntax errors and their positions --- */
    T_CERR("${}", "expected an expression before '}'", 2),
    T_CERR("${ }", "expected an expression before '}'", 3),
    T_CERR("${1 +}", "expected an expression before '}'", 5),
    T_CERR("${1 2}", "trailing garbage '2'", 4),
    T_CERR("${'a' 'b'}", "trailing garbage", 6),
    T_CERR("${1 = 2}", "trailing garbage '='", 4),
    T_CERR("${1 & 2}", "trailing garbage '&'", 4),
    T_CERR("${1 | 2}", "trailing garbage '|'", 4),
    T_CERR("${1 ?? 2}", "unexpected '?'", 5),
    T_CERR("${(1}", "unbalanced parentheses: missing ')'", 2),
    T_CERR("${((1)}", "unbalanced parentheses: missing ')'", 2),
    T_CERR("${1)}", "unbalanced parentheses: unexpected ')'", 3),
    T_CERR("${(1))}", "unbalanced parentheses: unexpected ')'", 5),
    T_CERR("${)}", "unbalanced parentheses: unexpected ')'", 2),
    T_CERR("${'abc}", "unterminated string", 2),
    T_CERR("ab${\"x}", "unterminated string", 4),
    T_CERR("${'abc\\", "unterminated string", 2),
    T_CERR("${'a\\qb'}", "unknown escape", 4),
    T_CERR("${1", "missing '}'", 0),
    T_CERR("x ${1 + 2", "missing '}'", 2),
    T_CERR("${1 +", "missing '}'", 0),
    T_CERR("${", "missing '}'", 0),
    T_CERR("ok ${1} ${(2", "unbalanced parentheses: missing ')'", 10),
    T_CERR("${@}", "unexpected '@'", 2),
    T_CERR("${\x01}", "unexpected '\\x01'", 2),
    T_CERR("${1 + *}", "unexpected '*'", 6),
    T_CERR("${1} ${2 +} ${3}", "expected an expression", 10),
    T_CERR("${!}", "expected an expression", 3),
};

static void run_row(const row_t *r, int *failures)
{
    fake_env_t fenv = {.vars = r->vars};
    expr_env_t env = {.lookup = fake_lookup, .ctx = &fenv};
    expr_error_t err;
    char *out = NULL;
    size_t outlen = 0;
    char why[512] = "";

    int crc = expr_check(r->tmpl, &err);
    if (r->kind == CERR) {
        if (crc == 0)
            snprintf(why, sizeof why, "expr_check passed, expected error '%s' at %ld", r->want, r->pos);
        else if (!strstr(err.msg, r->want) || (long)err.pos != r->pos)
            snprintf(why, sizeof why, "got error '%s' (pos %zu), expected '%s' at %ld", err.msg, err.pos, r->want,
                     r->pos);
        else {
            char at[32];
            snprintf(at, sizeof at, " at %ld", r->pos);
            if (!strstr(err.msg, at))
                snprintf(why, sizeof why, "message '%s' does not show the position", err.msg);
        }
        /* expr_eval_str must fail the same way */
        if (!why[0] && expr_eval_str(r->tmpl, &env, &out, &outlen, &err) == 0)
            snprintf(why, sizeof why, "expr_eval_str passed");
        if (!why[0] && out)
            snprintf(why, sizeof why, "out not NULL on error");
    } else if (crc != 0) {
        snprintf(why, sizeof why, "expr_check failed: %s", err.msg);
    } else {
        expr_t *e = NULL;
        assert_int_equal(expr_compile(r->tmpl, &e, &err), 0);
        int rc = expr_eval(e, &env, &out, &outlen, &err);
        if (r->kind == RERR) {
            if (rc == 0)
                snprintf(why, sizeof why, "eval gave '%s', expected error '%s' at %ld", out, r->want, r->pos);
            else if (!strstr(err.msg, r->want) || (long)err.pos != r->pos)
                snprintf(why, sizeof why, "got error '%s' (pos %zu), expected '%s' at %ld", err.msg, err.pos, r->want,
                         r->pos);
            else if (out)
                snprintf(why, sizeof why, "out not NULL on error");
        } else if (rc != 0) {
            snprintf(why, sizeof why, "eval failed: %s", err.msg);
        } else if (outlen != strlen(r->want) || memcmp(out, r->want, outlen) != 0 || out[outlen] != '\0') {
            snprintf(why, sizeof why, "got '%s' (len %zu), expected '%s'", out, outlen, r->want);
        } else if (r->type != ANY) {
            expr_value_t v;
            if (expr_eval_value(e, &env, &v, &err) != 0) {
                snprintf(why, sizeof why, "expr_eval_value failed: %s", err.msg);
            } else {
                size_t n;
                char *s = expr_value_to_string(&v, &n);
                if ((int)v.type != r->type)
                    snprintf(why, sizeof why, "type %d, expected %d", v.type, r->type);
                else if (!s || strcmp(s, r->want) != 0)
                    snprintf(why, sizeof why, "value form '%s', expected '%s'", s ? s : "(null)", r->want);
                free(s);
                expr_value_free(&v);
            }
        }
        expr_free(&e);
        assert_null(e);
    }
    if (why[0]) {
        print_error("tests/unit/tasks/expr.c:%d: template \"%s\": %s\n", r->line, r->tmpl, why);
        (*failures)++;
    }
    free(out);
}

static void test_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t k = 0; k < sizeof k_rows / sizeof k_rows[0]; k++)
        run_row(&k_rows[k], &failures);
    if (failures)
        fail_msg("%d of %zu rows failed", failures, sizeof k_rows / sizeof k_rows[0]);
}

/* ------------------------------------------------------------------------ */
/* Other checks                                                              */
/* ------------------------------------------------------------------------ */

static char *eval_ok(const char *tmpl, size_t *len)
{
    fake_env_t fenv = {0};
    expr_env_t env = {.lookup = fake_lookup, .ctx = &fenv};
    expr_error_t err;
    char *out = NULL;
    size_t n = 0;
    if (expr_eval_str(tmpl, &env, &out, &n, &err) != 0)
        fail_msg("'%.60s' failed: %s", tmpl, err.msg);
    if (len)
        *len = n;
    return out;
}

static void expect_err(const char *tmpl, const char *msg, size_t pos)
{
    fake_env_t fenv = {0};
    expr_env_t env = {.lookup = fake_lookup, .ctx = &fenv};
    expr_error_t err;
    char *out = (char *)1;
    assert_int_equal(expr_eval_str(tmpl, &env, &out, NULL, &err), -1);
    assert_null(out);
    if (!strstr(err.msg, msg))
        fail_msg("error '%s' lacks '%s'", err.msg, msg);
    assert_int_equal(err.pos, pos);
}

static bool all_alnum(const char *s, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        char c = s[k];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return false;
    }
    return true;
}

static void test_random(void **state)
{
    (void)state;
    const char *fns[] = {"${string.secureRandom(16)}", "${string.random(16)}"};
    for (int f = 0; f < 2; f++) {
        size_t n1, n2;
        char *a = eval_ok(fns[f], &n1);
        char *b = eval_ok(fns[f], &n2);
        assert_int_equal(n1, 16);
        assert_int_equal(n2, 16);
        assert_int_equal(strlen(a), 16);
        assert_true(all_alnum(a, n1));
        assert_true(all_alnum(b, n2));
        assert_string_not_equal(a, b);
        free(a);
        free(b);
    }
    /* one compiled template, evaluated twice, gives two values */
    expr_t *e = NULL;
    expr_error_t err;
    assert_int_equal(expr_compile("psk-${string.secureRandom(16)}", &e, &err), 0);
    char *x, *y;
    assert_int_equal(expr_eval(e, NULL, &x, NULL, &err), 0);
    assert_int_equal(expr_eval(e, NULL, &y, NULL, &err), 0);
    assert_int_equal(strlen(x), 20);
    assert_memory_equal(x, "psk-", 4);
    assert_string_not_equal(x, y);
    free(x);
    free(y);
    expr_free(&e);
    /* the whole alphabet shows up over many draws (62 symbols, 1024 x 8 draws) */
    bool seen[256] = {0};
    for (int k = 0; k < 8; k++) {
        size_t n;
        char *s = eval_ok("${string.secureRandom(1024)}", &n);
        assert_int_equal(n, 1024);
        assert_true(all_alnum(s, n));
        for (size_t i = 0; i < n; i++)
            seen[(unsigned char)s[i]] = true;
        free(s);
    }
    int distinct = 0;
    for (int c = 0; c < 256; c++)
        distinct += seen[c];
    assert_int_equal(distinct, 62);
}

static void test_binary(void **state)
{
    (void)state;
    size_t n;
    char *s = eval_ok("${'00ff4100'.decodeHex}", &n);
    assert_int_equal(n, 4);
    assert_memory_equal(s, "\x00\xff\x41\x00", 4);
    assert_int_equal(s[4], '\0');
    free(s);
    /* binary survives concatenation with text */
    s = eval_ok("<${'0001'.decodeHex}>", &n);
    assert_int_equal(n, 4);
    assert_memory_equal(s, "<\x00\x01>", 4);
    free(s);
    /* typed value keeps the length */
    expr_t *e = NULL;
    expr_error_t err;
    expr_value_t v;
    assert_int_equal(expr_compile("${'61006200'.decodeHex}", &e, &err), 0);
    assert_int_equal(expr_eval_value(e, NULL, &v, &err), 0);
    assert_int_equal(v.type, EXPR_STRING);
    assert_int_equal(v.len, 4);
    assert_memory_equal(v.s, "a\0b\0", 4);
    expr_value_free(&v);
    assert_int_equal(v.type, EXPR_NULL);
    assert_null(v.s);
    expr_free(&e);
    /* a binary variable from the lookup */
    static const var_t bin[] = {VS("#bin", "\x00\x80z"), {NULL, EXPR_NULL, NULL, 0, 0, 0}};
    fake_env_t fenv = {.vars = bin};
    expr_env_t env = {.lookup = fake_lookup, .ctx = &fenv};
    char *out;
    assert_int_equal(expr_eval_str("${#bin.encodeHex}/${#bin.length}/${#bin.encodeBase64}", &env, &out, &n, &err), 0);
    assert_string_equal(out, "00807a/3/AIB6");
    free(out);
}

static void test_short_circuit_counts(void **state)
{
    (void)state;
    fake_env_t fenv = {0};
    expr_env_t env = {.lookup = fake_lookup, .ctx = &fenv};
    expr_error_t err;
    char *out;
    assert_int_equal(expr_eval_str("${false && #t && #t}", &env, &out, NULL, &err), 0);
    assert_string_equal(out, "false");
    free(out);
    assert_int_equal(fenv.calls, 0);
    assert_int_equal(expr_eval_str("${#t || #t}", &env, &out, NULL, &err), 0);
    free(out);
    assert_int_equal(fenv.calls, 1);
    fenv.calls = 0;
    assert_int_equal(expr_eval_str("${#serverId ? #t}", &env, &out, NULL, &err), 0);
    free(out);
    assert_int_equal(fenv.calls, 1);
    fenv.calls = 0;
    assert_int_equal(expr_eval_str("${if (#t) #id else #psk}", &env, &out, NULL, &err), 0);
    assert_string_equal(out, "mgmt-id");
    free(out);
    assert_int_equal(fenv.calls, 2);
}

static void test_depth(void **state)
{
    (void)state;
    char buf[512];
    /* 64 levels of parentheses are fine, 65 are not */
    for (int depth = 64; depth <= 65; depth++) {
        size_t o = 0;
        o += (size_t)snprintf(buf + o, sizeof buf - o, "${");
        for (int k = 0; k < depth; k++)
            buf[o++] = '(';
        buf[o++] = '7';
        for (int k = 0; k < depth; k++)
            buf[o++] = ')';
        buf[o++] = '}';
        buf[o] = '\0';
        if (depth == 64) {
            char *s = eval_ok(buf, NULL);
            assert_string_equal(s, "7");
            free(s);
        } else {
            expect_err(buf, "nesting deeper than 64", 2 + 64);
        }
    }
    /* unary operators count too */
    memset(buf, 0, sizeof buf);
    strcpy(buf, "${");
    memset(buf + 2, '!', 65);
    strcpy(buf + 67, "1}");
    expect_err(buf, "nesting deeper than 64", 2 + 64);
    buf[2] = ' '; /* 64 of them: !^64 1 == true */
    char *s = eval_ok(buf, NULL);
    assert_string_equal(s, "true");
    free(s);
    /* nested ifs and function arguments */
    char *big = malloc(8192);
    size_t o = (size_t)sprintf(big, "${");
    for (int k = 0; k < 70; k++)
        o += (size_t)sprintf(big + o, "if (true) ");
    o += (size_t)sprintf(big + o, "1}");
    expect_err(big, "nesting deeper than 64", 2 + 64 * 10);
    free(big);
    /* long flat chains are not nesting: 20000 terms */
    size_t cap = 70000;
    big = malloc(cap);
    o = (size_t)sprintf(big, "${0");
    for (int k = 0; k < 20000; k++)
        o += (size_t)sprintf(big + o, "+1");
    strcpy(big + o, "}");
    s = eval_ok(big, NULL);
    assert_string_equal(s, "20000");
    free(s);
    o = (size_t)sprintf(big, "${''");
    for (int k = 0; k < 8000; k++)
        o += (size_t)sprintf(big + o, ".length");
    strcpy(big + o, "}");
    s = eval_ok(big, NULL);
    assert_string_equal(s, "1");
    free(s);
    o = (size_t)sprintf(big, "${#nope");
    for (int k = 0; k < 15000; k++)
        o += (size_t)sprintf(big + o, "?#n");
    strcpy(big + o, "}");
    s = eval_ok(big, NULL);
    assert_string_equal(s, "16");
    free(s);
    free(big);
}

static void test_limits(void **state)
{
    (void)state;
    /* source: exactly 64 KiB is accepted, one byte more is not */
    char *src = malloc(EXPR_MAX_SOURCE + 2);
    memset(src, 'a', EXPR_MAX_SOURCE + 1);
    src[EXPR_MAX_SOURCE] = '\0';
    size_t n;
    char *s = eval_ok(src, &n);
    assert_int_equal(n, EXPR_MAX_SOURCE);
    free(s);
    src[EXPR_MAX_SOURCE] = 'a';
    src[EXPR_MAX_SOURCE + 1] = '\0';
    expect_err(src, "template longer than 65536 bytes", EXPR_MAX_SOURCE);
    free(src);

    /* result: 1 MiB is fine, more is not; through methods and through concatenation */
    static char mib[EXPR_MAX_RESULT / 2 + 1];
    memset(mib, 'x', sizeof mib - 1);
    var_t vars[] = {{"#half", EXPR_STRING, mib, EXPR_MAX_RESULT / 2, 0, 0},
                    {"#big", EXPR_STRING, mib, EXPR_MAX_RESULT / 2 - 2, 0, 0},
                    {NULL, EXPR_NULL, NULL, 0, 0, 0}};
    fake_env_t fenv = {.vars = vars};
    expr_env_t env = {.lookup = fake_lookup, .ctx = &fenv};
    expr_error_t err;
    char *out;
    assert_int_equal(expr_eval_str("${#half.encodeHex}", &env, &out, &n, &err), 0);
    assert_int_equal(n, EXPR_MAX_RESULT);
    free(out);
    assert_int_equal(expr_eval_str("${#half + #half}", &env, &out, &n, &err), 0);
    assert_int_equal(n, EXPR_MAX_RESULT);
    free(out);
    assert_int_equal(expr_eval_str("${#half + #half + 'x'}", &env, &out, &n, &err), -1);
    assert_non_null(strstr(err.msg, "result longer than 1048576 bytes"));
    assert_int_equal(err.pos, 16);
    assert_int_equal(expr_eval_str("${(#half + 'x').encodeHex}", &env, &out, &n, &err), -1);
    assert_non_null(strstr(err.msg, "result longer than"));
    assert_int_equal(err.pos, 16);
    assert_int_equal(expr_eval_str("${#half.encodeBase64.encodeBase64.length}", &env, &out, &n, &err), 0);
    assert_string_equal(out, "932072");
    free(out);
    assert_int_equal(expr_eval_str("${#half.encodeBase64.encodeBase64.encodeBase64}", &env, &out, &n, &err), -1);
    assert_non_null(strstr(err.msg, "result longer than"));
    assert_int_equal(err.pos, 34);
    /* text + parts: 4 bytes of text + 2 x (512 KiB - 2) = 1 MiB exactly, one more byte fails */
    assert_int_equal(expr_eval_str("ab${#big}cd${#big}", &env, &out, &n, &err), 0);
    assert_int_equal(n, EXPR_MAX_RESULT);
    free(out);
    assert_int_equal(expr_eval_str("ab${#big}cd${#big}e", &env, &out, &n, &err), -1);
    assert_non_null(strstr(err.msg, "result longer than"));
    /* repeated encodeHex of random data hits the bound */
    s = malloc(400);
    strcpy(s, "${string.random(1024)");
    for (int k = 0; k < 11; k++)
        strcat(s, ".encodeHex");
    strcat(s, "}");
    expect_err(s, "result longer than", 22 + 10 * 10);
    free(s);

    /* work: random(1024) and 10 x encodeHex produce 1 KiB + (2 MiB - 2 KiB);
     * 62 case changes of 1 MiB each bring that to 64 MiB - 1 KiB, a 63rd
     * one goes past EXPR_MAX_WORK */
    s = malloc(2000);
    for (int extra = 62; extra <= 63; extra++) {
        strcpy(s, "${string.random(1024)");
        for (int k = 0; k < 10; k++)
            strcat(s, ".encodeHex"); /* 2 MiB produced so far (+ 1 KiB) */
        for (int k = 0; k < extra; k++)
            strcat(s, k % 2 ? ".toLowerCase" : ".toUpperCase");
        strcat(s, ".length}");
        if (extra == 62) {
            char *r = eval_ok(s, NULL);
            assert_string_equal(r, "1048576");
            free(r);
        } else {
            expect_err(s, "expression too costly", 22 + 100 + 12 * 62);
        }
    }
    free(s);
}

static void test_api(void **state)
{
    (void)state;
    expr_error_t err;
    expr_t *e = (expr_t *)1;
    assert_int_equal(expr_compile(NULL, &e, &err), -1);
    assert_null(e);
    assert_int_equal(expr_check(NULL, &err), -1);
    assert_int_equal(expr_check("${1 +", NULL), -1); /* err may be NULL */
    assert_int_equal(expr_check("${1}", NULL), 0);
    expr_free(NULL);
    e = NULL;
    expr_free(&e);

    assert_true(expr_has_parts("a${b}"));
    assert_true(expr_has_parts("${"));
    assert_false(expr_has_parts("a$b{c}"));
    assert_false(expr_has_parts(""));
    assert_false(expr_has_parts(NULL));

    /* no environment: names are unknown */
    char *out;
    assert_int_equal(expr_eval_str("${device.id}", NULL, &out, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "unknown variable 'device.id' at 2"));
    expr_env_t empty = {0};
    assert_int_equal(expr_eval_str("x${#a ? 'y'}", &empty, &out, NULL, &err), 0);
    assert_string_equal(out, "xy");
    free(out);

    /* expr_eval_value: single part keeps the type, anything else is a string */
    assert_int_equal(expr_compile("${40 + 2}", &e, &err), 0);
    expr_value_t v;
    assert_int_equal(expr_eval_value(e, NULL, &v, &err), 0);
    assert_int_equal(v.type, EXPR_INT);
    assert_int_equal(v.i, 42);
    expr_value_free(&v);
    expr_free(&e);
    assert_int_equal(expr_compile("${40 + 2}!", &e, &err), 0);
    assert_int_equal(expr_eval_value(e, NULL, &v, &err), 0);
    assert_int_equal(v.type, EXPR_STRING);
    assert_string_equal(v.s, "42!");
    assert_int_equal(v.len, 3);
    expr_value_free(&v);
    expr_free(&e);

    /* value helpers */
    expr_value_t w = {0};
    assert_int_equal(expr_value_set_string(&w, "a\0b", 3), 0);
    assert_int_equal(w.type, EXPR_STRING);
    assert_int_equal(w.len, 3);
    assert_memory_equal(w.s, "a\0b", 4);
    size_t n;
    char *s = expr_value_to_string(&w, &n);
    assert_int_equal(n, 3);
    assert_memory_equal(s, "a\0b", 4);
    free(s);
    expr_value_free(&w);
    expr_value_free(NULL);
    struct {
        expr_value_t v;
        const char *want;
    } forms[] = {
        {{.type = EXPR_NULL}, ""},
        {{.type = EXPR_BOOL, .b = true}, "true"},
        {{.type = EXPR_BOOL, .b = false}, "false"},
        {{.type = EXPR_INT, .i = INT64_MIN}, "-9223372036854775808"},
        {{.type = EXPR_FLOAT, .f = 0.1}, "0.1"},
        {{.type = EXPR_FLOAT, .f = 1.0 / 3}, "0.3333333333333333"},
        {{.type = EXPR_FLOAT, .f = 100.0}, "100"},
        {{.type = EXPR_FLOAT, .f = 1e-7}, "1e-7"},
        {{.type = EXPR_FLOAT, .f = 1.2345e20}, "123450000000000000000"},
        {{.type = EXPR_FLOAT, .f = -123.456}, "-123.456"},
        {{.type = EXPR_FLOAT, .f = 5e-324}, "5e-324"},
        {{.type = EXPR_FLOAT, .f = 1.7976931348623157e308}, "1.7976931348623157e+308"},
        {{.type = EXPR_FLOAT, .f = 0.1 + 0.2}, "0.30000000000000004"},
        {{.type = EXPR_FLOAT, .f = 123456789012.5}, "123456789012.5"},
    };
    for (size_t k = 0; k < sizeof forms / sizeof forms[0]; k++) {
        s = expr_value_to_string(&forms[k].v, &n);
        assert_string_equal(s, forms[k].want);
        assert_int_equal(n, strlen(forms[k].want));
        free(s);
    }
    s = expr_value_to_string(NULL, &n);
    assert_string_equal(s, "");
    free(s);
}

/* A compiled template is shared read-only between threads. */
static expr_t *g_shared;

static void *thread_main(void *arg)
{
    (void)arg;
    fake_env_t fenv = {0};
    expr_env_t env = {.lookup = fake_lookup, .ctx = &fenv};
    for (int k = 0; k < 2000; k++) {
        char *out;
        size_t n;
        expr_error_t err;
        if (expr_eval(g_shared, &env, &out, &n, &err) != 0 || n != 4 + 14 + 1 + 8)
            return (void *)1;
        free(out);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    expr_error_t err;
    assert_int_equal(expr_compile("dev-${#id.encodeHex}/${string.secureRandom(8)}", &g_shared, &err), 0);
    pthread_t t[4];
    for (int k = 0; k < 4; k++)
        assert_int_equal(pthread_create(&t[k], NULL, thread_main, NULL), 0);
    for (int k = 0; k < 4; k++) {
        void *rv;
        assert_int_equal(pthread_join(t[k], &rv), 0);
        assert_null(rv);
    }
    expr_free(&g_shared);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),    cmocka_unit_test(test_random), cmocka_unit_test(test_binary),
        cmocka_unit_test(test_short_circuit_counts), cmocka_unit_test(test_depth),
        cmocka_unit_test(test_limits),   cmocka_unit_test(test_api),    cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
