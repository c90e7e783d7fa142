/* libFuzzer target for the expression language (server/tasks/expr.c).
 *
 * The input is a template. It is checked, compiled and evaluated (as a string
 * and as a typed value) in a fixed fake environment, and the results are held
 * to the contract: errors carry a position inside the template that the
 * message shows, results are NUL-terminated and within EXPR_MAX_RESULT,
 * expr_check agrees with expr_compile. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/tasks/expr.h"

static int fake_lookup(void *ctx, const char *name, expr_value_t *out)
{
    (void)ctx;
    static const struct {
        const char *name;
        const char *s;
        size_t len;
    } strs[] = {
        {"device.id", "dev-1", 5},
        {"device.endpoint", "urn:dev:1", 9},
        {"sv.managementId", "mgmt", 4},
        {"sv.password", "p\0w\xff", 4},
        {"#id", "mgmt-id", 7},
        {"#hex", "00ff41", 6},
        {"#b64", "aGVsbG8=", 8},
        {"#num", "42", 2},
        {"#empty", "", 0},
    };
    for (size_t k = 0; k < sizeof strs / sizeof strs[0]; k++)
        if (strcmp(name, strs[k].name) == 0)
            return expr_value_set_string(out, strs[k].s, strs[k].len) == 0 ? 1 : -1;
    if (strcmp(name, "#serverId") == 0 || strcmp(name, "#n") == 0) {
        out->type = EXPR_INT;
        out->i = name[1] == 's' ? 4 : 16;
        return 1;
    }
    if (strcmp(name, "#max") == 0 || strcmp(name, "#min") == 0) {
        out->type = EXPR_INT;
        out->i = name[2] == 'a' ? INT64_MAX : INT64_MIN;
        return 1;
    }
    if (strcmp(name, "#f") == 0) {
        out->type = EXPR_FLOAT;
        out->f = 2.5;
        return 1;
    }
    if (strcmp(name, "#t") == 0) {
        out->type = EXPR_BOOL;
        out->b = true;
        return 1;
    }
    if (strcmp(name, "#nul") == 0)
        return 1; /* null */
    if (strcmp(name, "fail.me") == 0)
        return -1;
    return 0;
}

static void check_err(const expr_error_t *err, size_t srclen)
{
    char at[40];
    snprintf(at, sizeof at, " at %zu", err->pos);
    /* positions point into the template (or just past it for "missing"), and
     * the message says where */
    if (err->pos > srclen || !memchr(err->msg, '\0', sizeof err->msg) || !strstr(err->msg, at))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *src = malloc(size + 1);
    if (!src)
        return 0;
    memcpy(src, data, size);
    src[size] = '\0';
    size_t srclen = strlen(src);

    expr_env_t env = {.lookup = fake_lookup, .ctx = NULL};
    expr_error_t err;
    expr_t *e = NULL;
    int crc = expr_check(src, &err);
    if (crc != 0)
        check_err(&err, srclen);
    int rc = expr_compile(src, &e, &err);
    if ((rc == 0) != (crc == 0) || (rc == 0) != (e != NULL))
        abort();
    if (rc != 0) {
        check_err(&err, srclen);
        free(src);
        return 0;
    }
    if (expr_has_parts(src) != (strstr(src, "${") != NULL))
        abort();

    char *out = NULL;
    size_t outlen = 0;
    if (expr_eval(e, &env, &out, &outlen, &err) == 0) {
        if (!out || outlen > EXPR_MAX_RESULT || out[outlen] != '\0')
            abort();
        /* text without parts comes back unchanged */
        if (!expr_has_parts(src) && (outlen != srclen || memcmp(out, src, srclen) != 0))
            abort();
        free(out);
    } else {
        if (out)
            abort();
        check_err(&err, srclen);
    }

    expr_value_t v;
    if (expr_eval_value(e, &env, &v, &err) == 0) {
        if ((unsigned)v.type > EXPR_STRING)
            abort();
        if (v.type == EXPR_STRING && (!v.s || v.len > EXPR_MAX_RESULT || v.s[v.len] != '\0'))
            abort();
        size_t n;
        char *s = expr_value_to_string(&v, &n);
        if (!s || s[n] != '\0')
            abort();
        free(s);
        expr_value_free(&v);
    } else {
        check_err(&err, srclen);
    }
    expr_free(&e);
    if (e)
        abort();
    free(src);
    return 0;
}
