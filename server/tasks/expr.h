/* Expressions of the task language (TASKS.md "Expressions").
 *
 * A template is text with `${...}` parts: "coaps://${device.endpoint}:5684".
 * Parts evaluate to values; the template's result is the concatenation of the
 * text and the parts' string forms. A template that is exactly one `${...}`
 * keeps the value's type (expr_eval_value).
 *
 * Pure: no I/O; randomness comes from libsodium; context values come from the
 * caller's lookup callback. */
#ifndef LWDM_TASKS_EXPR_H
#define LWDM_TASKS_EXPR_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits (docs/expressions.md): template source length, length of any string
 * value and of the result, nesting of parentheses / unary operators / `if` /
 * function arguments inside one `${...}`, and the bytes of strings one
 * evaluation may produce in all (every node runs at most once, so this bounds
 * the time an evaluation takes). */
#define EXPR_MAX_SOURCE 65536
#define EXPR_MAX_RESULT 1048576
#define EXPR_MAX_DEPTH 64
#define EXPR_MAX_WORK (64 * 1048576)

typedef enum { EXPR_NULL = 0, EXPR_BOOL, EXPR_INT, EXPR_FLOAT, EXPR_STRING } expr_type_t;

typedef struct {
    expr_type_t type;
    bool b;
    int64_t i;
    double f;
    char *s;      /* EXPR_STRING: owned by the value, NUL-terminated, may hold NULs (see len) */
    size_t len;
} expr_value_t;

void expr_value_free(expr_value_t *v);           /* frees s, sets type NULL (and s NULL, len 0) */
/* copies; 0 or -1 (ENOMEM). Overwrites *v without freeing what it held; on
 * failure *v is unchanged. */
int expr_value_set_string(expr_value_t *v, const char *s, size_t len);
/* String form used when concatenating: null -> "", true/false, integers in
 * decimal, floats shortest round-trip. Returns malloc'd string (caller frees). */
char *expr_value_to_string(const expr_value_t *v, size_t *len_out);

typedef struct {
    size_t pos;        /* 0-based byte offset in the source template */
    char msg[256];     /* e.g. "unknown function 'string.foo' at 12" */
} expr_error_t;

/* Name lookup for context values. `name` is the dotted name as written, e.g.
 * "device.endpoint", "device.property.serial", "sv.password", "#serverId".
 * Return 1 and fill *out (caller frees) if found; 0 if unknown (the evaluator
 * then fails with "unknown variable"); -1 on error. *out starts zeroed (NULL);
 * whatever the callback leaves in it on 0 / -1 is freed with expr_value_free.
 * Called from the evaluating thread; may be called several times per eval. */
typedef int (*expr_lookup_fn)(void *ctx, const char *name, expr_value_t *out);

typedef struct {
    expr_lookup_fn lookup;
    void *ctx;
} expr_env_t;

typedef struct expr expr_t; /* compiled template, immutable, shareable across threads */

/* Compiles a template. Returns 0, or -1 with err filled (position of the fault
 * within src). */
int expr_compile(const char *src, expr_t **out, expr_error_t *err);
void expr_free(expr_t **e);
/* true if the text contains "${" (i.e. is not a plain literal) */
bool expr_has_parts(const char *src);
/* Checks syntax and names of functions/methods without evaluating. Same as
 * compile+free. */
int expr_check(const char *src, expr_error_t *err);

/* Evaluates to a string (binary-safe: *out is malloc'd, NUL-terminated, *outlen
 * excludes the NUL). Returns 0 or -1 with err. */
int expr_eval(const expr_t *e, const expr_env_t *env, char **out, size_t *outlen, expr_error_t *err);
/* Evaluates keeping the type when the template is a single `${...}`; otherwise
 * yields an EXPR_STRING. */
int expr_eval_value(const expr_t *e, const expr_env_t *env, expr_value_t *out, expr_error_t *err);
/* Compile + eval in one call. */
int expr_eval_str(const char *src, const expr_env_t *env, char **out, size_t *outlen, expr_error_t *err);

#endif
