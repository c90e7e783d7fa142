/* The expression language of tasks (docs/expressions.md, TASKS.md "Expressions").
 *
 * Design notes
 *
 * 1. Compilation turns a template into a list of parts: verbatim text, or the
 *    syntax tree of one `${...}`. The tree is never written after
 *    expr_compile() returns, and evaluation keeps its state on the stack, so a
 *    compiled expr_t may be evaluated by several threads at once.
 *
 * 2. Recursion is bounded. The parser counts nesting (parentheses, unary
 *    operators, `if`, function arguments) and refuses more than
 *    EXPR_MAX_DEPTH levels. Runs of operators of one precedence level
 *    (`a + b + c ...`, `a && b && ...`, `a ? b ? c`) and chains of methods
 *    (`x.encodeHex.length`) are stored as one n-ary node, not as a left-leaning
 *    tower, so the depth of the tree (and of eval's recursion) is a small
 *    multiple of the nesting depth however long the expression is.
 *
 * 3. Sizes are bounded: sources up to EXPR_MAX_SOURCE bytes, every string the
 *    evaluator makes (and the template's result) up to EXPR_MAX_RESULT bytes.
 *    Nothing loops, so each node is evaluated at most once and the only cost
 *    that is not linear in the source is string bytes; their sum over one
 *    evaluation is charged against EXPR_MAX_WORK (charge()).
 *
 * 4. Floats stay finite: literals, arithmetic and conversions that would give
 *    an infinity or a NaN fail instead, so comparisons never meet a NaN made
 *    here (a lookup callback may still hand one in; it compares unequal).
 *
 * 5. Errors carry a kind. Only E_UNKNOWN_VAR is caught, by `a ? b`; every
 *    other error ends the evaluation.
 */
#include "server/tasks/expr.h"

#include "server/lwm2m/lwm2m.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

typedef enum { E_NONE = 0, E_UNKNOWN_VAR, E_OTHER } err_kind_t;

__attribute__((format(printf, 3, 4))) static void set_err(expr_error_t *err, size_t pos, const char *fmt, ...)
{
    char text[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    err->pos = pos;
    snprintf(err->msg, sizeof err->msg, "%s at %zu", text, pos);
}

/* Quotes a piece of source or data for a message: printable ASCII as is,
 * the rest as \xNN, cut after 40 bytes. */
static const char *show(char out[200], const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 8 < 200; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i == 40) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out[o++] = (char)c;
        } else {
            snprintf(out + o, 5, "\\x%02x", c);
            o += 4;
        }
    }
    out[o] = '\0';
    return out;
}

static bool is_digit(int c) { return c >= '0' && c <= '9'; }

static const char *type_name(expr_type_t t)
{
    switch (t) {
    case EXPR_NULL: return "null";
    case EXPR_BOOL: return "boolean";
    case EXPR_INT: return "integer";
    case EXPR_FLOAT: return "float";
    case EXPR_STRING: return "string";
    }
    return "?";
}

/* ------------------------------------------------------------------------ */
/* Values                                                                    */
/* ------------------------------------------------------------------------ */

void expr_value_free(expr_value_t *v)
{
    if (!v)
        return;
    free(v->s);
    memset(v, 0, sizeof *v);
    v->type = EXPR_NULL;
}

int expr_value_set_string(expr_value_t *v, const char *s, size_t len)
{
    if (len == SIZE_MAX)
        return -1;
    char *p = malloc(len + 1);
    if (!p)
        return -1;
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    memset(v, 0, sizeof *v);
    v->type = EXPR_STRING;
    v->s = p;
    v->len = len;
    return 0;
}

/* The shortest digits that read back as the same double, laid out as
 * JavaScript does: fixed notation when 1e-7 < |f| < 1e21 ("1000", "0.0015"),
 * otherwise d.ddde+XX ("1e+21", "1e-7"). */
static void format_float(double f, char out[48])
{
    if (isnan(f)) {
        strcpy(out, "nan");
        return;
    }
    if (isinf(f)) {
        strcpy(out, f < 0 ? "-inf" : "inf");
        return;
    }
    if (f == 0.0) {
        strcpy(out, "0");
        return;
    }
    char e[48];
    for (int prec = 0; prec < 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec, f);
        if (strtod(e, NULL) == f)
            break;
    }
    /* e is [-]d[.ddd]e(+|-)XX */
    char digits[24];
    int nd = 0;
    const char *q = e + (e[0] == '-');
    for (; *q && *q != 'e'; q++)
        if (is_digit((unsigned char)*q) && nd < 20)
            digits[nd++] = *q;
    int exp10 = *q == 'e' ? atoi(q + 1) : 0;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    size_t o = 0;
    if (f < 0)
        out[o++] = '-';
    if (exp10 >= 21 || exp10 <= -7) {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (int k = 1; k < nd; k++)
                out[o++] = digits[k];
        }
        snprintf(out + o, 48 - o, "e%c%d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
        return;
    }
    if (exp10 < 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int k = 0; k < -exp10 - 1; k++)
            out[o++] = '0';
        for (int k = 0; k < nd; k++)
            out[o++] = digits[k];
    } else {
        for (int k = 0; k <= exp10; k++)
            out[o++] = k < nd ? digits[k] : '0';
        if (nd > exp10 + 1) {
            out[o++] = '.';
            for (int k = exp10 + 1; k < nd; k++)
                out[o++] = digits[k];
        }
    }
    out[o] = '\0';
}

char *expr_value_to_string(const expr_value_t *v, size_t *len_out)
{
    char tmp[48];
    const char *src = tmp;
    size_t n;
    switch (v ? v->type : EXPR_NULL) {
    case EXPR_BOOL: src = v->b ? "true" : "false"; n = strlen(src); break;
    case EXPR_INT: n = (size_t)snprintf(tmp, sizeof tmp, "%" PRId64, v->i); break;
    case EXPR_FLOAT: format_float(v->f, tmp); n = strlen(tmp); break;
    case EXPR_STRING: src = v->s ? v->s : ""; n = v->s ? v->len : 0; break;
    case EXPR_NULL:
    default: src = ""; n = 0; break;
    }
    if (n == SIZE_MAX)
        return NULL;
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, src, n);
    p[n] = '\0';
    if (len_out)
        *len_out = n;
    return p;
}

static void set_int(expr_value_t *v, int64_t i)
{
    memset(v, 0, sizeof *v);
    v->type = EXPR_INT;
    v->i = i;
}

static void set_float(expr_value_t *v, double f)
{
    memset(v, 0, sizeof *v);
    v->type = EXPR_FLOAT;
    v->f = f;
}

static void set_bool(expr_value_t *v, bool b)
{
    memset(v, 0, sizeof *v);
    v->type = EXPR_BOOL;
    v->b = b;
}

/* Takes ownership of p (malloc'd, len+1 bytes, NUL-terminated). */
static void set_string_take(expr_value_t *v, char *p, size_t len)
{
    memset(v, 0, sizeof *v);
    v->type = EXPR_STRING;
    v->s = p;
    v->len = len;
}

static bool truthy(const expr_value_t *v)
{
    switch (v->type) {
    case EXPR_NULL: return false;
    case EXPR_BOOL: return v->b;
    case EXPR_INT: return v->i != 0;
    case EXPR_FLOAT: return v->f != 0.0;
    case EXPR_STRING: return v->s && v->len > 0;
    }
    return false;
}

static bool is_num(const expr_value_t *v) { return v->type == EXPR_INT || v->type == EXPR_FLOAT; }
static double as_double(const expr_value_t *v) { return v->type == EXPR_INT ? (double)v->i : v->f; }

/* -1, 0, 1 comparing an integer with a float exactly (no rounding of i);
 * 2 if f is NaN. */
static int cmp_int_float(int64_t i, double f)
{
    if (isnan(f))
        return 2;
    if (f >= 9223372036854775808.0)
        return -1;
    if (f < -9223372036854775808.0)
        return 1;
    int64_t t = (int64_t)f; /* truncates toward zero; in range here */
    if (i < t)
        return -1;
    if (i > t)
        return 1;
    double frac = f - (double)t; /* exact: t and f share the exponent range */
    return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

/* Numeric comparison; 2 when unordered (NaN). */
static int cmp_num(const expr_value_t *a, const expr_value_t *b)
{
    if (a->type == EXPR_INT && b->type == EXPR_INT)
        return a->i < b->i ? -1 : a->i > b->i;
    if (a->type == EXPR_INT)
        return cmp_int_float(a->i, b->f);
    if (b->type == EXPR_INT) {
        int c = cmp_int_float(b->i, a->f);
        return c == 2 ? 2 : -c;
    }
    if (isnan(a->f) || isnan(b->f))
        return 2;
    return a->f < b->f ? -1 : a->f > b->f;
}

static int cmp_str(const expr_value_t *a, const expr_value_t *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = n ? memcmp(a->s, b->s, n) : 0;
    if (c)
        return c < 0 ? -1 : 1;
    return a->len < b->len ? -1 : a->len > b->len;
}

static bool values_equal(const expr_value_t *a, const expr_value_t *b)
{
    if (is_num(a) && is_num(b))
        return cmp_num(a, b) == 0;
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case EXPR_NULL: return true;
    case EXPR_BOOL: return a->b == b->b;
    case EXPR_STRING: return cmp_str(a, b) == 0;
    default: return false;
    }
}

/* ------------------------------------------------------------------------ */
/* Syntax tree                                                               */
/* ------------------------------------------------------------------------ */

typedef enum {
    N_LIT,      /* lit */
    N_NAME,     /* name: "#var" or "a.b.c", passed to the lookup callback */
    N_CALL,     /* fn(kid[0]) */
    N_METHODS,  /* kid[0] then methods op[0..nop) at opos[] */
    N_NOT,      /* !kid[0] */
    N_NEG,      /* -kid[0] */
    N_CHAIN,    /* kid[0] op[0] kid[1] op[1] ... left to right; ops at opos[] */
    N_AND,      /* kid[0] && kid[1] && ... */
    N_OR,       /* kid[0] || kid[1] || ... */
    N_FALLBACK, /* kid[0] ? kid[1] ? ... */
    N_IF        /* if (kid[0]) kid[1] else kid[2] (kid[2] may be absent) */
} node_kind_t;

typedef enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD, OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE } binop_t;
static const char *const k_op_text[] = {"+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">="};

typedef enum {
    M_ENCODE_HEX,
    M_DECODE_HEX,
    M_ENCODE_BASE64,
    M_DECODE_BASE64,
    M_TO_INT,
    M_TO_STRING,
    M_LENGTH,
    M_TO_UPPER,
    M_TO_LOWER,
    M_COUNT
} method_t;
static const char *const k_methods[M_COUNT] = {"encodeHex", "decodeHex", "encodeBase64", "decodeBase64", "toInt",
                                               "toString",  "length",    "toUpperCase",  "toLowerCase"};

typedef enum { F_SECURE_RANDOM, F_RANDOM, F_COUNT } func_t;
static const char *const k_funcs[F_COUNT] = {"string.secureRandom", "string.random"};

typedef struct node {
    node_kind_t kind;
    size_t pos;          /* where the node starts (or its operator for N_NOT/N_NEG) */
    expr_value_t lit;    /* N_LIT */
    char *name;          /* N_NAME */
    int fn;              /* N_CALL */
    struct node **kid;
    size_t nkid;
    uint8_t *op;         /* N_CHAIN: binop_t per gap; N_METHODS: method_t per method */
    size_t *opos;
    size_t nop;
} node_t;

typedef struct {
    bool is_text;
    const char *text; /* points into expr_t.src */
    size_t len;
    size_t pos;       /* position of "${" for parts */
    node_t *root;
} part_t;

struct expr {
    char *src;        /* copy of the template: text parts point into it */
    part_t *parts;
    size_t nparts;
};

static void node_free(node_t *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nkid; i++)
        node_free(n->kid[i]);
    free(n->kid);
    free(n->op);
    free(n->opos);
    free(n->name);
    expr_value_free(&n->lit);
    free(n);
}

static node_t *node_new(node_kind_t kind, size_t pos)
{
    node_t *n = calloc(1, sizeof *n);
    if (n) {
        n->kind = kind;
        n->pos = pos;
    }
    return n;
}

static int node_add_kid(node_t *n, node_t *k)
{
    node_t **p = realloc(n->kid, (n->nkid + 1) * sizeof *p);
    if (!p)
        return -1;
    n->kid = p;
    n->kid[n->nkid++] = k;
    return 0;
}

static int node_add_op(node_t *n, int op, size_t pos)
{
    uint8_t *o = realloc(n->op, n->nop + 1);
    if (!o)
        return -1;
    n->op = o;
    size_t *p = realloc(n->opos, (n->nop + 1) * sizeof *p);
    if (!p)
        return -1;
    n->opos = p;
    n->op[n->nop] = (uint8_t)op;
    n->opos[n->nop] = pos;
    n->nop++;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Parser                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct {
    const char *s;
    size_t len;
    size_t i;
    size_t open;     /* position of the current "${" */
    int depth;
    expr_error_t *err;
} parser_t;

static bool is_ident_start(int c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
static bool is_ident_char(int c) { return is_ident_start(c) || is_digit(c); }

static int peek(const parser_t *p) { return p->i < p->len ? (unsigned char)p->s[p->i] : -1; }
static int peek_at(const parser_t *p, size_t k) { return p->i + k < p->len ? (unsigned char)p->s[p->i + k] : -1; }

static void skip_ws(parser_t *p)
{
    while (p->i < p->len) {
        char c = p->s[p->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->i++;
    }
}

static int oom(parser_t *p)
{
    set_err(p->err, p->i, "out of memory");
    return -1;
}

/* The error for "something else than expected is here". */
static int unexpected(parser_t *p, const char *wanted)
{
    char q[200];
    if (p->i >= p->len) {
        set_err(p->err, p->open, "missing '}' for '${'");
    } else if (p->s[p->i] == '}') {
        set_err(p->err, p->i, "syntax error: expected %s before '}'", wanted);
    } else if (p->s[p->i] == ')') {
        set_err(p->err, p->i, "unbalanced parentheses: unexpected ')'");
    } else {
        size_t n = 1;
        if (is_ident_char((unsigned char)p->s[p->i]))
            while (p->i + n < p->len && is_ident_char((unsigned char)p->s[p->i + n]))
                n++;
        set_err(p->err, p->i, "syntax error: unexpected '%s', expected %s", show(q, p->s + p->i, n), wanted);
    }
    return -1;
}

static int enter(parser_t *p, size_t pos)
{
    if (++p->depth > EXPR_MAX_DEPTH) {
        set_err(p->err, pos, "nesting deeper than %d", EXPR_MAX_DEPTH);
        return -1;
    }
    return 0;
}

static node_t *parse_expr(parser_t *p);

static int find_method(const char *s, size_t n)
{
    for (int m = 0; m < M_COUNT; m++)
        if (strlen(k_methods[m]) == n && memcmp(k_methods[m], s, n) == 0)
            return m;
    return -1;
}

static int find_func(const char *s, size_t n)
{
    for (int f = 0; f < F_COUNT; f++)
        if (strlen(k_funcs[f]) == n && memcmp(k_funcs[f], s, n) == 0)
            return f;
    return -1;
}

static bool word_is(const char *s, size_t n, const char *w) { return strlen(w) == n && memcmp(s, w, n) == 0; }

/* 'text' or "text" with \' \" \\ \n \t \r escapes. */
static node_t *parse_string(parser_t *p)
{
    size_t start = p->i;
    char quote = p->s[p->i++];
    size_t cap = 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        oom(p);
        return NULL;
    }
    for (;;) {
        if (p->i >= p->len) {
            free(buf);
            set_err(p->err, start, "unterminated string");
            return NULL;
        }
        char c = p->s[p->i];
        if (c == quote) {
            p->i++;
            break;
        }
        if (c == '\\') {
            if (p->i + 1 >= p->len) {
                free(buf);
                set_err(p->err, start, "unterminated string");
                return NULL;
            }
            char e = p->s[p->i + 1];
            switch (e) {
            case '\'': case '"': case '\\': c = e; break;
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            default: {
                char q[200];
                free(buf);
                set_err(p->err, p->i, "syntax error: unknown escape '\\%s' in string", show(q, &e, 1));
                return NULL;
            }
            }
            p->i += 2;
        } else {
            p->i++;
        }
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                oom(p);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
        buf[n++] = c;
    }
    buf[n] = '\0';
    node_t *nd = node_new(N_LIT, start);
    if (!nd) {
        free(buf);
        oom(p);
        return NULL;
    }
    set_string_take(&nd->lit, buf, n);
    return nd;
}

/* Number literal; `negative` when a '-' directly precedes it (so -9223372036854775808 fits). */
static node_t *parse_number(parser_t *p, size_t start, bool negative)
{
    size_t b = p->i;
    while (is_digit(peek(p)))
        p->i++;
    bool is_float = false;
    if (peek(p) == '.' && is_digit(peek_at(p, 1))) {
        is_float = true;
        p->i++;
        while (is_digit(peek(p)))
            p->i++;
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        size_t k = 1;
        if (peek_at(p, 1) == '+' || peek_at(p, 1) == '-')
            k = 2;
        if (is_digit(peek_at(p, k))) {
            is_float = true;
            p->i += k;
            while (is_digit(peek(p)))
                p->i++;
        }
    }
    if (is_ident_char(peek(p))) {
        char q[200];
        set_err(p->err, start, "syntax error: bad number '%s'", show(q, p->s + start, p->i - start + 1));
        return NULL;
    }
    node_t *n = node_new(N_LIT, start);
    if (!n) {
        oom(p);
        return NULL;
    }
    if (is_float) {
        char tmp[128];
        size_t len = p->i - b;
        if (len >= sizeof tmp) {
            node_free(n);
            set_err(p->err, start, "number out of range");
            return NULL;
        }
        memcpy(tmp, p->s + b, len);
        tmp[len] = '\0';
        double f = strtod(tmp, NULL);
        if (!isfinite(f)) {
            node_free(n);
            set_err(p->err, start, "number out of range");
            return NULL;
        }
        set_float(&n->lit, negative ? -f : f);
        return n;
    }
    uint64_t v = 0;
    for (size_t k = b; k < p->i; k++) {
        unsigned d = (unsigned)(p->s[k] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            v = UINT64_MAX;
            break;
        }
        v = v * 10 + d;
    }
    if (v > (uint64_t)INT64_MAX + (negative ? 1u : 0u)) {
        node_free(n);
        set_err(p->err, start, "integer literal out of range");
        return NULL;
    }
    if (negative)
        set_int(&n->lit, v == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)v);
    else
        set_int(&n->lit, (int64_t)v);
    return n;
}

/* Appends method m at pos to the chain on *target (wrapping it in an
 * N_METHODS node if needed). */
static int add_method(parser_t *p, node_t **target, int m, size_t pos)
{
    if ((*target)->kind != N_METHODS) {
        node_t *w = node_new(N_METHODS, (*target)->pos);
        if (!w || node_add_kid(w, *target) < 0) {
            free(w);
            return oom(p);
        }
        *target = w;
    }
    if (node_add_op(*target, m, pos) < 0)
        return oom(p);
    return 0;
}

/* After a method name: an optional "()" (methods take no arguments). */
static int parse_method_parens(parser_t *p, const char *mname)
{
    size_t save = p->i;
    skip_ws(p);
    if (peek(p) != '(') {
        p->i = save;
        return 0;
    }
    size_t lpar = p->i++;
    skip_ws(p);
    if (peek(p) != ')') {
        if (p->i >= p->len || peek(p) == '}')
            set_err(p->err, lpar, "unbalanced parentheses: missing ')'");
        else
            set_err(p->err, p->i, "syntax error: method '%s' takes no arguments", mname);
        return -1;
    }
    p->i++;
    return 0;
}

/* function call: name '(' expr ')' ; p->i is at '(' */
static node_t *parse_call(parser_t *p, int fn, size_t start)
{
    size_t lpar = p->i;
    p->i++;
    if (enter(p, lpar) < 0)
        return NULL;
    skip_ws(p);
    if (peek(p) == ')') {
        set_err(p->err, p->i, "syntax error: %s() needs 1 argument", k_funcs[fn]);
        return NULL;
    }
    node_t *arg = parse_expr(p);
    if (!arg)
        return NULL;
    p->depth--;
    skip_ws(p);
    if (peek(p) == ',') {
        node_free(arg);
        set_err(p->err, p->i, "syntax error: %s() takes 1 argument", k_funcs[fn]);
        return NULL;
    }
    if (peek(p) != ')') {
        node_free(arg);
        if (p->i >= p->len || peek(p) == '}')
            set_err(p->err, lpar, "unbalanced parentheses: missing ')'");
        else
            unexpected(p, "')'");
        return NULL;
    }
    p->i++;
    node_t *n = node_new(N_CALL, start);
    if (!n || node_add_kid(n, arg) < 0) {
        free(n);
        node_free(arg);
        oom(p);
        return NULL;
    }
    n->fn = fn;
    return n;
}

/* if (cond) then [else other] ; p->i is after "if" */
static node_t *parse_if(parser_t *p, size_t start)
{
    if (enter(p, start) < 0)
        return NULL;
    skip_ws(p);
    if (peek(p) != '(') {
        unexpected(p, "'(' after 'if'");
        return NULL;
    }
    size_t lpar = p->i++;
    node_t *n = node_new(N_IF, start);
    if (!n) {
        oom(p);
        return NULL;
    }
    node_t *k = parse_expr(p);
    if (!k || node_add_kid(n, k) < 0)
        goto fail_kid;
    skip_ws(p);
    if (peek(p) != ')') {
        if (p->i >= p->len || peek(p) == '}')
            set_err(p->err, lpar, "unbalanced parentheses: missing ')'");
        else
            unexpected(p, "')'");
        goto fail;
    }
    p->i++;
    k = parse_expr(p);
    if (!k || node_add_kid(n, k) < 0)
        goto fail_kid;
    size_t save = p->i;
    skip_ws(p);
    if (p->i + 4 <= p->len && memcmp(p->s + p->i, "else", 4) == 0 && !is_ident_char(peek_at(p, 4))) {
        p->i += 4;
        k = parse_expr(p);
        if (!k || node_add_kid(n, k) < 0)
            goto fail_kid;
    } else {
        p->i = save;
    }
    p->depth--;
    return n;
fail_kid:
    if (k) {
        node_free(k);
        oom(p);
    }
fail:
    node_free(n);
    return NULL;
}

#define MAX_SEGMENTS 64

/* A dotted name (#var or context), a keyword, or a function call.
 * p->i is at '#' or at an identifier. */
static node_t *parse_word(parser_t *p)
{
    size_t start = p->i;
    bool var = peek(p) == '#';
    if (var) {
        p->i++;
        if (!is_ident_char(peek(p))) {
            unexpected(p, "a variable name after '#'");
            return NULL;
        }
    }
    size_t seg[MAX_SEGMENTS][2]; /* [begin, end) of each dotted segment */
    size_t nseg = 0;
    for (;;) {
        if (nseg == MAX_SEGMENTS) {
            set_err(p->err, start, "syntax error: name with more than %d parts", MAX_SEGMENTS);
            return NULL;
        }
        seg[nseg][0] = p->i;
        while (is_ident_char(peek(p)))
            p->i++;
        seg[nseg][1] = p->i;
        nseg++;
        if (peek(p) == '.' && is_ident_char(peek_at(p, 1)))
            p->i++;
        else
            break;
    }
#define SEG(k) (p->s + seg[k][0]), (seg[k][1] - seg[k][0])
    node_t *n;
    size_t method_from; /* segments [method_from, nseg) are methods */
    if (!var && (word_is(SEG(0), "true") || word_is(SEG(0), "false") || word_is(SEG(0), "null"))) {
        n = node_new(N_LIT, start);
        if (!n) {
            oom(p);
            return NULL;
        }
        if (p->s[start] == 'n')
            n->lit.type = EXPR_NULL;
        else
            set_bool(&n->lit, p->s[start] == 't');
        method_from = 1;
    } else if (!var && word_is(SEG(0), "if") && nseg == 1) {
        return parse_if(p, start);
    } else if (!var && (word_is(SEG(0), "if") || word_is(SEG(0), "else"))) {
        p->i = start;
        unexpected(p, "an expression");
        return NULL;
    } else {
        size_t save = p->i;
        skip_ws(p);
        bool call = peek(p) == '(';
        p->i = save;
        size_t end = nseg; /* segments [0, end) form the name */
        if (call) {
            int fn = var ? -1 : find_func(p->s + start, seg[nseg - 1][1] - start);
            if (fn >= 0) {
                skip_ws(p);
                return parse_call(p, fn, start);
            }
            if (nseg < 2 || find_method(SEG(nseg - 1)) < 0) {
                char q[200];
                set_err(p->err, start, "unknown function '%s'", show(q, p->s + start, seg[nseg - 1][1] - start));
                return NULL;
            }
            end = nseg - 1; /* name.method() */
        }
        /* Trailing known method names are methods, as long as the name keeps
         * its minimum number of segments: 1 for #var, 2 for context names. */
        size_t min = var ? 1 : 2;
        while (end > min && find_method(SEG(end - 1)) >= 0)
            end--;
        size_t name_len = seg[end - 1][1] - start;
        n = node_new(N_NAME, start);
        if (!n || !(n->name = malloc(name_len + 1))) {
            free(n);
            oom(p);
            return NULL;
        }
        memcpy(n->name, p->s + start, name_len);
        n->name[name_len] = '\0';
        method_from = end;
    }
    for (size_t k = method_from; k < nseg; k++) {
        int m = find_method(SEG(k));
        if (m < 0) {
            char q[200];
            set_err(p->err, seg[k][0], "unknown method '%s'", show(q, SEG(k)));
            node_free(n);
            return NULL;
        }
        if (add_method(p, &n, m, seg[k][0]) < 0) {
            node_free(n);
            return NULL;
        }
    }
    if (method_from < nseg && parse_method_parens(p, k_methods[n->op[n->nop - 1]]) < 0) {
        node_free(n);
        return NULL;
    }
#undef SEG
    return n;
}

static node_t *parse_primary(parser_t *p)
{
    skip_ws(p);
    int c = peek(p);
    if (c == '(') {
        size_t lpar = p->i++;
        if (enter(p, lpar) < 0)
            return NULL;
        node_t *n = parse_expr(p);
        if (!n)
            return NULL;
        p->depth--;
        skip_ws(p);
        if (peek(p) != ')') {
            node_free(n);
            if (p->i >= p->len || peek(p) == '}')
                set_err(p->err, lpar, "unbalanced parentheses: missing ')'");
            else
                unexpected(p, "')'");
            return NULL;
        }
        p->i++;
        return n;
    }
    if (c == '\'' || c == '"')
        return parse_string(p);
    if (is_digit(c))
        return parse_number(p, p->i, false);
    if (c == '#' || is_ident_start(c))
        return parse_word(p);
    unexpected(p, "an expression");
    return NULL;
}

/* `.method` and `.method()` after n; takes ownership of n. */
static node_t *parse_methods_after(parser_t *p, node_t *n)
{
    for (;;) {
        size_t save = p->i;
        skip_ws(p);
        if (peek(p) != '.') {
            p->i = save;
            return n;
        }
        p->i++;
        skip_ws(p);
        size_t b = p->i;
        while (is_ident_char(peek(p)))
            p->i++;
        if (b == p->i) {
            node_free(n);
            unexpected(p, "a method name after '.'");
            return NULL;
        }
        int m = find_method(p->s + b, p->i - b);
        if (m < 0) {
            char q[200];
            set_err(p->err, b, "unknown method '%s'", show(q, p->s + b, p->i - b));
            node_free(n);
            return NULL;
        }
        if (add_method(p, &n, m, b) < 0 || parse_method_parens(p, k_methods[m]) < 0) {
            node_free(n);
            return NULL;
        }
    }
}

static node_t *parse_postfix(parser_t *p)
{
    node_t *n = parse_primary(p);
    return n ? parse_methods_after(p, n) : NULL;
}

static node_t *parse_unary(parser_t *p)
{
    skip_ws(p);
    int c = peek(p);
    if (c == '!' && peek_at(p, 1) != '=') {
        size_t pos = p->i++;
        if (enter(p, pos) < 0)
            return NULL;
        node_t *a = parse_unary(p);
        if (!a)
            return NULL;
        p->depth--;
        node_t *n = node_new(N_NOT, pos);
        if (!n || node_add_kid(n, a) < 0) {
            free(n);
            node_free(a);
            oom(p);
            return NULL;
        }
        return n;
    }
    if (c == '-') {
        size_t pos = p->i++;
        if (is_digit(peek(p))) {
            /* a negative literal (TASKS.md lists -3 as one), methods
             * included: -3.length is 2 */
            node_t *n = parse_number(p, pos, true);
            return n ? parse_methods_after(p, n) : NULL;
        }
        if (enter(p, pos) < 0)
            return NULL;
        node_t *a = parse_unary(p);
        if (!a)
            return NULL;
        p->depth--;
        node_t *n = node_new(N_NEG, pos);
        if (!n || node_add_kid(n, a) < 0) {
            free(n);
            node_free(a);
            oom(p);
            return NULL;
        }
        return n;
    }
    return parse_postfix(p);
}

/* Binary levels, tightest last. Each returns an n-ary node for a run of
 * operators of its level. */
typedef node_t *(*parse_fn)(parser_t *p);

/* Reads an operator of the level at p->i; returns its binop_t and length, or -1. */
static int match_mul(const parser_t *p, size_t *len)
{
    int c = peek(p);
    *len = 1;
    return c == '*' ? OP_MUL : c == '/' ? OP_DIV : c == '%' ? OP_MOD : -1;
}

static int match_add(const parser_t *p, size_t *len)
{
    int c = peek(p);
    *len = 1;
    return c == '+' ? OP_ADD : c == '-' ? OP_SUB : -1;
}

static int match_rel(const parser_t *p, size_t *len)
{
    int c = peek(p), d = peek_at(p, 1);
    if (c == '<' || c == '>') {
        *len = d == '=' ? 2 : 1;
        if (c == '<')
            return d == '=' ? OP_LE : OP_LT;
        return d == '=' ? OP_GE : OP_GT;
    }
    return -1;
}

static int match_eq(const parser_t *p, size_t *len)
{
    int c = peek(p), d = peek_at(p, 1);
    *len = 2;
    if (c == '=' && d == '=')
        return OP_EQ;
    if (c == '!' && d == '=')
        return OP_NE;
    return -1;
}

static node_t *parse_binary(parser_t *p, int (*match)(const parser_t *, size_t *), parse_fn next)
{
    node_t *first = next(p);
    if (!first)
        return NULL;
    node_t *chain = NULL;
    for (;;) {
        size_t save = p->i;
        skip_ws(p);
        size_t oplen;
        int op = match(p, &oplen);
        if (op < 0) {
            p->i = save;
            break;
        }
        size_t opos = p->i;
        p->i += oplen;
        if (!chain) {
            chain = node_new(N_CHAIN, first->pos);
            if (!chain || node_add_kid(chain, first) < 0) {
                free(chain);
                node_free(first);
                oom(p);
                return NULL;
            }
        }
        if (node_add_op(chain, op, opos) < 0) {
            node_free(chain);
            oom(p);
            return NULL;
        }
        node_t *k = next(p);
        if (!k) {
            node_free(chain);
            return NULL;
        }
        if (node_add_kid(chain, k) < 0) {
            node_free(k);
            node_free(chain);
            oom(p);
            return NULL;
        }
    }
    return chain ? chain : first;
}

static node_t *parse_mul(parser_t *p) { return parse_binary(p, match_mul, parse_unary); }
static node_t *parse_add(parser_t *p) { return parse_binary(p, match_add, parse_mul); }
static node_t *parse_rel(parser_t *p) { return parse_binary(p, match_rel, parse_add); }
static node_t *parse_eq(parser_t *p) { return parse_binary(p, match_eq, parse_rel); }

/* n-ary logical level: "&&", "||" or "?" */
static node_t *parse_logic(parser_t *p, const char *tok, node_kind_t kind, parse_fn next)
{
    size_t toklen = strlen(tok);
    node_t *first = next(p);
    if (!first)
        return NULL;
    node_t *n = NULL;
    for (;;) {
        size_t save = p->i;
        skip_ws(p);
        if (p->i + toklen > p->len || memcmp(p->s + p->i, tok, toklen) != 0) {
            p->i = save;
            break;
        }
        p->i += toklen;
        if (!n) {
            n = node_new(kind, first->pos);
            if (!n || node_add_kid(n, first) < 0) {
                free(n);
                node_free(first);
                oom(p);
                return NULL;
            }
        }
        node_t *k = next(p);
        if (!k) {
            node_free(n);
            return NULL;
        }
        if (node_add_kid(n, k) < 0) {
            node_free(k);
            node_free(n);
            oom(p);
            return NULL;
        }
    }
    return n ? n : first;
}

static node_t *parse_and(parser_t *p) { return parse_logic(p, "&&", N_AND, parse_eq); }
static node_t *parse_or(parser_t *p) { return parse_logic(p, "||", N_OR, parse_and); }
static node_t *parse_fallback(parser_t *p) { return parse_logic(p, "?", N_FALLBACK, parse_or); }

static node_t *parse_expr(parser_t *p) { return parse_fallback(p); }

/* ------------------------------------------------------------------------ */
/* Templates                                                                 */
/* ------------------------------------------------------------------------ */

bool expr_has_parts(const char *src) { return src && strstr(src, "${") != NULL; }

void expr_free(expr_t **e)
{
    if (!e || !*e)
        return;
    for (size_t i = 0; i < (*e)->nparts; i++)
        node_free((*e)->parts[i].root);
    free((*e)->parts);
    free((*e)->src);
    free(*e);
    *e = NULL;
}

static int add_part(expr_t *e, part_t part)
{
    part_t *np = realloc(e->parts, (e->nparts + 1) * sizeof *np);
    if (!np)
        return -1;
    e->parts = np;
    e->parts[e->nparts++] = part;
    return 0;
}

int expr_compile(const char *src, expr_t **out, expr_error_t *err)
{
    expr_error_t local;
    if (!err)
        err = &local;
    memset(err, 0, sizeof *err);
    if (out)
        *out = NULL;
    if (!src || !out) {
        set_err(err, 0, "no template");
        return -1;
    }
    size_t len = strnlen(src, EXPR_MAX_SOURCE + 1);
    if (len > EXPR_MAX_SOURCE) {
        set_err(err, EXPR_MAX_SOURCE, "template longer than %d bytes", EXPR_MAX_SOURCE);
        return -1;
    }
    expr_t *e = calloc(1, sizeof *e);
    if (!e || !(e->src = malloc(len + 1))) {
        free(e);
        set_err(err, 0, "out of memory");
        return -1;
    }
    memcpy(e->src, src, len + 1);
    parser_t p = {.s = e->src, .len = len, .i = 0, .err = err};
    while (p.i < len) {
        const char *open = strstr(e->src + p.i, "${");
        size_t tend = open ? (size_t)(open - e->src) : len;
        if (tend > p.i) {
            part_t t = {.is_text = true, .text = e->src + p.i, .len = tend - p.i, .pos = p.i};
            if (add_part(e, t) < 0) {
                set_err(err, p.i, "out of memory");
                goto fail;
            }
        }
        if (!open)
            break;
        p.open = tend;
        p.i = tend + 2;
        p.depth = 0;
        node_t *root = parse_expr(&p);
        if (!root)
            goto fail;
        skip_ws(&p);
        if (peek(&p) != '}') {
            node_free(root);
            if (p.i >= len) {
                set_err(err, p.open, "missing '}' for '${'");
            } else if (peek(&p) == ')') {
                set_err(err, p.i, "unbalanced parentheses: unexpected ')'");
            } else {
                char q[200];
                set_err(err, p.i, "trailing garbage '%s' in expression", show(q, p.s + p.i, 1));
            }
            goto fail;
        }
        p.i++;
        part_t x = {.is_text = false, .pos = p.open, .root = root};
        if (add_part(e, x) < 0) {
            node_free(root);
            set_err(err, p.open, "out of memory");
            goto fail;
        }
    }
    *out = e;
    return 0;
fail:
    expr_free(&e);
    return -1;
}

int expr_check(const char *src, expr_error_t *err)
{
    expr_t *e = NULL;
    int rc = expr_compile(src, &e, err);
    expr_free(&e);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Evaluation                                                                */
/* ------------------------------------------------------------------------ */

typedef struct {
    const expr_env_t *env;
    expr_error_t *err;
    err_kind_t kind;
    size_t work; /* string bytes produced so far */
} ectx_t;

__attribute__((format(printf, 3, 4))) static int fail(ectx_t *c, size_t pos, const char *fmt, ...)
{
    char text[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    set_err(c->err, pos, "%s", text);
    c->kind = E_OTHER;
    return -1;
}

static int fail_oom(ectx_t *c, size_t pos) { return fail(c, pos, "out of memory"); }

static int check_len(ectx_t *c, size_t len, size_t pos)
{
    if (len > EXPR_MAX_RESULT)
        return fail(c, pos, "result longer than %d bytes", EXPR_MAX_RESULT);
    return 0;
}

/* Counts n bytes of string produced; fails past EXPR_MAX_WORK. */
static int charge(ectx_t *c, size_t n, size_t pos)
{
    if (n > EXPR_MAX_WORK - c->work) {
        c->work = EXPR_MAX_WORK;
        return fail(c, pos, "expression too costly (more than %d bytes of strings)", EXPR_MAX_WORK);
    }
    c->work += n;
    return 0;
}

static int eval(const node_t *n, ectx_t *c, expr_value_t *out);

static int do_lookup(const node_t *n, ectx_t *c, expr_value_t *out)
{
    char q[200];
    expr_value_t v;
    memset(&v, 0, sizeof v);
    int rc = 0;
    if (c->env && c->env->lookup)
        rc = c->env->lookup(c->env->ctx, n->name, &v);
    if (rc != 1) {
        expr_value_free(&v);
        if (rc == 0) {
            set_err(c->err, n->pos, "unknown variable '%s'", show(q, n->name, strlen(n->name)));
            c->kind = E_UNKNOWN_VAR;
            return -1;
        }
        return fail(c, n->pos, "lookup of '%s' failed", show(q, n->name, strlen(n->name)));
    }
    if ((unsigned)v.type > EXPR_STRING) {
        expr_value_free(&v);
        return fail(c, n->pos, "lookup of '%s' gave a bad value", show(q, n->name, strlen(n->name)));
    }
    if (v.type == EXPR_STRING) {
        if (!v.s) {
            char *p = calloc(1, 1);
            if (!p)
                return fail_oom(c, n->pos);
            set_string_take(&v, p, 0);
        }
        if (check_len(c, v.len, n->pos) < 0 || charge(c, v.len, n->pos) < 0) {
            expr_value_free(&v);
            return -1;
        }
    } else if (v.s) {
        free(v.s); /* only strings own s */
        v.s = NULL;
    }
    *out = v;
    return 0;
}

static const char k_alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

static int do_call(const node_t *n, ectx_t *c, expr_value_t *out)
{
    expr_value_t a;
    if (eval(n->kid[0], c, &a) < 0)
        return -1;
    if (a.type != EXPR_INT) {
        expr_type_t t = a.type;
        expr_value_free(&a);
        return fail(c, n->kid[0]->pos, "wrong type: %s() needs an integer, got %s", k_funcs[n->fn], type_name(t));
    }
    if (a.i < 1 || a.i > 1024)
        return fail(c, n->kid[0]->pos, "bad argument: %s(%" PRId64 ") needs 1..1024", k_funcs[n->fn], a.i);
    if (sodium_init() < 0)
        return fail(c, n->pos, "no random source");
    size_t len = (size_t)a.i;
    if (charge(c, len, n->pos) < 0)
        return -1;
    char *p = malloc(len + 1);
    if (!p)
        return fail_oom(c, n->pos);
    /* Both functions draw from libsodium: n characters, each uniform over the
     * 62 letters and digits (about 5.95 bits each), so the result is printable
     * and safe in any text field or URI. */
    for (size_t k = 0; k < len; k++)
        p[k] = k_alnum[randombytes_uniform((uint32_t)(sizeof k_alnum - 1))];
    p[len] = '\0';
    set_string_take(out, p, len);
    return 0;
}

static const char k_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64val(int ch)
{
    const char *q = ch ? strchr(k_b64, ch) : NULL;
    return q ? (int)(q - k_b64) : -1;
}

/* Standard alphabet; '=' padding optional but, if present, correct. */
static int base64_decode(const char *s, size_t n, char **out, size_t *outlen)
{
    size_t pad = 0;
    while (n > 0 && pad < 2 && s[n - 1] == '=') {
        n--;
        pad++;
    }
    if (n % 4 == 1 || (pad && (n + pad) % 4 != 0))
        return -1;
    char *p = malloc(n / 4 * 3 + 3);
    if (!p)
        return -2;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64val((unsigned char)s[i]);
        if (v < 0) {
            free(p);
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            p[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    p[o] = '\0';
    *out = p;
    *outlen = o;
    return 0;
}

/* String to integer: decimal integer, or a number in float syntax truncated. */
static int parse_int_text(const char *s, size_t n, int64_t *out)
{
    if (n == 0 || n > 400 || memchr(s, '\0', n))
        return -1;
    char buf[401];
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (buf[0] == ' ' || buf[0] == '\t' || buf[0] == '\n' || buf[0] == '\r' || buf[0] == '\v' || buf[0] == '\f')
        return -1; /* strtoll/strtod would skip it */
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (*end == '\0' && end != buf) {
        if (errno == ERANGE)
            return -2;
        *out = v;
        return 0;
    }
    /* only plain decimal float syntax: digits, one '.', an exponent */
    for (size_t i = 0; i < n; i++) {
        char ch = buf[i];
        if (!is_digit((unsigned char)ch) && ch != '.' && ch != 'e' && ch != 'E' && ch != '+' && ch != '-')
            return -1;
    }
    errno = 0;
    double f = strtod(buf, &end);
    if (*end != '\0' || end == buf)
        return -1;
    if (!isfinite(f) || f >= 9223372036854775808.0 || f < -9223372036854775808.0)
        return -2;
    *out = (int64_t)f;
    return 0;
}

static int apply_method(int m, size_t pos, ectx_t *c, expr_value_t *v)
{
    expr_value_t r;
    memset(&r, 0, sizeof r);
    if (m == M_TO_INT) {
        switch (v->type) {
        case EXPR_INT: return 0;
        case EXPR_BOOL: set_int(&r, v->b ? 1 : 0); break;
        case EXPR_FLOAT:
            if (!(v->f < 9223372036854775808.0 && v->f >= -9223372036854775808.0))
                return fail(c, pos, "integer overflow in toInt");
            set_int(&r, (int64_t)v->f);
            break;
        case EXPR_STRING: {
            int64_t i;
            int rc = parse_int_text(v->s, v->len, &i);
            if (rc == -2)
                return fail(c, pos, "integer overflow in toInt");
            if (rc < 0) {
                char q[200];
                return fail(c, pos, "not a number: '%s'", show(q, v->s, v->len));
            }
            set_int(&r, i);
            break;
        }
        case EXPR_NULL:
        default: return fail(c, pos, "wrong type: toInt of %s", type_name(v->type));
        }
        expr_value_free(v);
        *v = r;
        return 0;
    }
    if (m == M_LENGTH && v->type == EXPR_STRING) {
        size_t len = v->len;
        expr_value_free(v);
        set_int(v, (int64_t)len);
        return 0;
    }
    size_t n;
    if (v->type != EXPR_STRING && charge(c, 32, pos) < 0)
        return -1;
    char *s = expr_value_to_string(v, &n);
    if (!s)
        return fail_oom(c, pos);
    char *o = NULL;
    size_t on = 0;
    switch ((method_t)m) {
    case M_TO_STRING:
        o = s;
        on = n;
        s = NULL;
        break;
    case M_LENGTH: /* of a non-string's string form */
        free(s);
        expr_value_free(v);
        set_int(v, (int64_t)n);
        return 0;
    case M_TO_UPPER:
    case M_TO_LOWER:
        for (size_t k = 0; k < n; k++) {
            if (m == M_TO_UPPER && s[k] >= 'a' && s[k] <= 'z')
                s[k] = (char)(s[k] - 'a' + 'A');
            else if (m == M_TO_LOWER && s[k] >= 'A' && s[k] <= 'Z')
                s[k] = (char)(s[k] - 'A' + 'a');
        }
        o = s;
        on = n;
        s = NULL;
        break;
    case M_ENCODE_HEX:
        if (n > EXPR_MAX_RESULT / 2) {
            free(s);
            return check_len(c, SIZE_MAX, pos);
        }
        on = n * 2;
        o = malloc(on + 1);
        if (!o)
            break;
        for (size_t k = 0; k < n; k++) {
            unsigned char b = (unsigned char)s[k];
            o[2 * k] = "0123456789abcdef"[b >> 4];
            o[2 * k + 1] = "0123456789abcdef"[b & 15];
        }
        o[on] = '\0';
        break;
    case M_DECODE_HEX:
        if (n % 2) {
            free(s);
            return fail(c, pos, "invalid hex: odd length %zu", n);
        }
        on = n / 2;
        o = malloc(on + 1);
        if (!o)
            break;
        for (size_t k = 0; k < on; k++) {
            int hi = lwm2m_hex_digit((unsigned char)s[2 * k]);
            int lo = lwm2m_hex_digit((unsigned char)s[2 * k + 1]);
            if (hi < 0 || lo < 0) {
                char q[200];
                size_t bad = hi < 0 ? 2 * k : 2 * k + 1;
                fail(c, pos, "invalid hex: '%s' at offset %zu", show(q, s + bad, 1), bad);
                free(o);
                free(s);
                return -1;
            }
            o[k] = (char)(hi << 4 | lo);
        }
        o[on] = '\0';
        break;
    case M_ENCODE_BASE64: {
        if (n > EXPR_MAX_RESULT / 4 * 3) {
            free(s);
            return check_len(c, SIZE_MAX, pos);
        }
        on = (n + 2) / 3 * 4;
        o = malloc(on + 1);
        if (!o)
            break;
        size_t w = 0;
        for (size_t k = 0; k < n; k += 3) {
            uint32_t b = (uint32_t)(unsigned char)s[k] << 16;
            if (k + 1 < n)
                b |= (uint32_t)(unsigned char)s[k + 1] << 8;
            if (k + 2 < n)
                b |= (uint32_t)(unsigned char)s[k + 2];
            o[w++] = k_b64[(b >> 18) & 63];
            o[w++] = k_b64[(b >> 12) & 63];
            o[w++] = k + 1 < n ? k_b64[(b >> 6) & 63] : '=';
            o[w++] = k + 2 < n ? k_b64[b & 63] : '=';
        }
        o[on] = '\0';
        break;
    }
    case M_DECODE_BASE64: {
        int rc = base64_decode(s, n, &o, &on);
        if (rc == -1) {
            free(s);
            return fail(c, pos, "invalid base64");
        }
        if (rc < 0)
            o = NULL;
        break;
    }
    default: free(s); return fail(c, pos, "unknown method");
    }
    free(s);
    if (!o)
        return fail_oom(c, pos);
    if (check_len(c, on, pos) < 0 || charge(c, on, pos) < 0) {
        free(o);
        return -1;
    }
    expr_value_free(v);
    set_string_take(v, o, on);
    return 0;
}

static int type_error2(ectx_t *c, size_t pos, int op, const expr_value_t *a, const expr_value_t *b)
{
    return fail(c, pos, "wrong type: cannot apply '%s' to %s and %s", k_op_text[op], type_name(a->type),
                type_name(b->type));
}

/* a = a op b; consumes b, a stays owned by the caller either way. */
static int apply_binop(int op, size_t pos, ectx_t *c, expr_value_t *a, expr_value_t *b)
{
    expr_value_t r;
    memset(&r, 0, sizeof r);
    int rc = 0;
    switch ((binop_t)op) {
    case OP_EQ:
    case OP_NE: {
        bool eq = values_equal(a, b);
        set_bool(&r, op == OP_EQ ? eq : !eq);
        break;
    }
    case OP_LT:
    case OP_LE:
    case OP_GT:
    case OP_GE: {
        int cmp;
        if (is_num(a) && is_num(b))
            cmp = cmp_num(a, b);
        else if (a->type == EXPR_STRING && b->type == EXPR_STRING)
            cmp = cmp_str(a, b);
        else {
            rc = type_error2(c, pos, op, a, b);
            break;
        }
        bool res = cmp == 2 ? false
                   : op == OP_LT ? cmp < 0
                   : op == OP_LE ? cmp <= 0
                   : op == OP_GT ? cmp > 0
                                 : cmp >= 0;
        set_bool(&r, res);
        break;
    }
    case OP_ADD:
        if (a->type == EXPR_STRING || b->type == EXPR_STRING) {
            size_t la, lb;
            char *sa = expr_value_to_string(a, &la);
            char *sb = sa ? expr_value_to_string(b, &lb) : NULL;
            if (!sa || !sb) {
                free(sa);
                rc = fail_oom(c, pos);
                break;
            }
            if (la > EXPR_MAX_RESULT - lb || la + lb > EXPR_MAX_RESULT) {
                free(sa);
                free(sb);
                rc = check_len(c, SIZE_MAX, pos);
                break;
            }
            if (charge(c, la + lb, pos) < 0) {
                free(sa);
                free(sb);
                rc = -1;
                break;
            }
            char *s = realloc(sa, la + lb + 1);
            if (!s) {
                free(sa);
                free(sb);
                rc = fail_oom(c, pos);
                break;
            }
            memcpy(s + la, sb, lb + 1);
            free(sb);
            set_string_take(&r, s, la + lb);
            break;
        }
        /* fall through */
    case OP_SUB:
    case OP_MUL:
    case OP_DIV:
    case OP_MOD:
        if (!is_num(a) || !is_num(b)) {
            rc = type_error2(c, pos, op, a, b);
            break;
        }
        if (a->type == EXPR_INT && b->type == EXPR_INT) {
            int64_t x = a->i, y = b->i, z = 0;
            bool ovf = false;
            switch ((binop_t)op) {
            case OP_ADD: ovf = __builtin_add_overflow(x, y, &z); break;
            case OP_SUB: ovf = __builtin_sub_overflow(x, y, &z); break;
            case OP_MUL: ovf = __builtin_mul_overflow(x, y, &z); break;
            case OP_DIV:
            case OP_MOD:
                if (y == 0) {
                    rc = fail(c, pos, "division by zero");
                    break;
                }
                if (y == -1) {
                    if (op == OP_DIV)
                        ovf = __builtin_sub_overflow((int64_t)0, x, &z);
                    else
                        z = 0;
                } else {
                    z = op == OP_DIV ? x / y : x % y;
                }
                break;
            default: break;
            }
            if (rc < 0)
                break;
            if (ovf) {
                rc = fail(c, pos, "integer overflow in '%s'", k_op_text[op]);
                break;
            }
            set_int(&r, z);
        } else {
            double x = as_double(a), y = as_double(b), z = 0;
            switch ((binop_t)op) {
            case OP_ADD: z = x + y; break;
            case OP_SUB: z = x - y; break;
            case OP_MUL: z = x * y; break;
            case OP_DIV:
            case OP_MOD:
                if (y == 0.0) {
                    rc = fail(c, pos, "division by zero");
                    break;
                }
                z = op == OP_DIV ? x / y : fmod(x, y);
                break;
            default: break;
            }
            if (rc < 0)
                break;
            if (!isfinite(z)) {
                rc = fail(c, pos, "float overflow in '%s'", k_op_text[op]);
                break;
            }
            set_float(&r, z);
        }
        break;
    }
    expr_value_free(b);
    if (rc < 0)
        return -1;
    expr_value_free(a);
    *a = r;
    return 0;
}

static int eval(const node_t *n, ectx_t *c, expr_value_t *out)
{
    memset(out, 0, sizeof *out);
    switch (n->kind) {
    case N_LIT:
        if (n->lit.type == EXPR_STRING) {
            if (charge(c, n->lit.len, n->pos) < 0)
                return -1;
            return expr_value_set_string(out, n->lit.s, n->lit.len) < 0 ? fail_oom(c, n->pos) : 0;
        }
        *out = n->lit;
        out->s = NULL;
        return 0;
    case N_NAME: return do_lookup(n, c, out);
    case N_CALL: return do_call(n, c, out);
    case N_METHODS:
        if (eval(n->kid[0], c, out) < 0)
            return -1;
        for (size_t k = 0; k < n->nop; k++) {
            if (apply_method(n->op[k], n->opos[k], c, out) < 0) {
                expr_value_free(out);
                return -1;
            }
        }
        return 0;
    case N_NOT: {
        expr_value_t a;
        if (eval(n->kid[0], c, &a) < 0)
            return -1;
        bool t = truthy(&a);
        expr_value_free(&a);
        set_bool(out, !t);
        return 0;
    }
    case N_NEG: {
        expr_value_t a;
        if (eval(n->kid[0], c, &a) < 0)
            return -1;
        if (a.type == EXPR_INT) {
            if (a.i == INT64_MIN)
                return fail(c, n->pos, "integer overflow in '-'");
            set_int(out, -a.i);
            return 0;
        }
        if (a.type == EXPR_FLOAT) {
            set_float(out, -a.f);
            return 0;
        }
        expr_type_t t = a.type;
        expr_value_free(&a);
        return fail(c, n->pos, "wrong type: cannot apply '-' to %s", type_name(t));
    }
    case N_CHAIN:
        if (eval(n->kid[0], c, out) < 0)
            return -1;
        for (size_t k = 1; k < n->nkid; k++) {
            expr_value_t b;
            if (eval(n->kid[k], c, &b) < 0 || apply_binop(n->op[k - 1], n->opos[k - 1], c, out, &b) < 0) {
                expr_value_free(out);
                return -1;
            }
        }
        return 0;
    case N_AND:
    case N_OR: {
        bool want = n->kind == N_OR; /* the value that ends the run early */
        for (size_t k = 0; k < n->nkid; k++) {
            expr_value_t a;
            if (eval(n->kid[k], c, &a) < 0)
                return -1;
            bool t = truthy(&a);
            expr_value_free(&a);
            if (t == want) {
                set_bool(out, want);
                return 0;
            }
        }
        set_bool(out, !want);
        return 0;
    }
    case N_FALLBACK:
        for (size_t k = 0; k + 1 < n->nkid; k++) {
            if (eval(n->kid[k], c, out) < 0) {
                if (c->kind != E_UNKNOWN_VAR)
                    return -1;
                c->kind = E_NONE;
                memset(c->err, 0, sizeof *c->err);
                continue;
            }
            if (out->type != EXPR_NULL)
                return 0;
        }
        return eval(n->kid[n->nkid - 1], c, out);
    case N_IF: {
        expr_value_t cond;
        if (eval(n->kid[0], c, &cond) < 0)
            return -1;
        bool t = truthy(&cond);
        expr_value_free(&cond);
        if (t)
            return eval(n->kid[1], c, out);
        if (n->nkid > 2)
            return eval(n->kid[2], c, out);
        return 0; /* null */
    }
    }
    return fail(c, n->pos, "bad expression");
}

int expr_eval_value(const expr_t *e, const expr_env_t *env, expr_value_t *out, expr_error_t *err)
{
    expr_error_t local;
    if (!err)
        err = &local;
    memset(err, 0, sizeof *err);
    if (!out) {
        set_err(err, 0, "no output");
        return -1;
    }
    memset(out, 0, sizeof *out);
    if (!e) {
        set_err(err, 0, "no template");
        return -1;
    }
    ectx_t c = {.env = env, .err = err, .kind = E_NONE};
    if (e->nparts == 1 && !e->parts[0].is_text)
        return eval(e->parts[0].root, &c, out);

    size_t cap = 64, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        set_err(err, 0, "out of memory");
        return -1;
    }
    for (size_t k = 0; k < e->nparts; k++) {
        const part_t *pt = &e->parts[k];
        char *s = NULL;
        size_t n;
        if (pt->is_text) {
            n = pt->len;
        } else {
            expr_value_t v;
            if (eval(pt->root, &c, &v) < 0) {
                free(buf);
                return -1;
            }
            s = expr_value_to_string(&v, &n);
            expr_value_free(&v);
            if (s && charge(&c, n, pt->pos) < 0) {
                free(s);
                free(buf);
                return -1;
            }
            if (!s) {
                free(buf);
                set_err(err, pt->pos, "out of memory");
                return -1;
            }
        }
        if (n > EXPR_MAX_RESULT - len) {
            free(s);
            free(buf);
            set_err(err, pt->pos, "result longer than %d bytes", EXPR_MAX_RESULT);
            return -1;
        }
        if (len + n + 1 > cap) {
            size_t ncap = cap;
            while (len + n + 1 > ncap)
                ncap *= 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(s);
                free(buf);
                set_err(err, pt->pos, "out of memory");
                return -1;
            }
            buf = nb;
            cap = ncap;
        }
        memcpy(buf + len, pt->is_text ? pt->text : s, n);
        len += n;
        free(s);
    }
    buf[len] = '\0';
    set_string_take(out, buf, len);
    return 0;
}

int expr_eval(const expr_t *e, const expr_env_t *env, char **out, size_t *outlen, expr_error_t *err)
{
    expr_error_t local;
    if (!err)
        err = &local;
    if (out)
        *out = NULL;
    expr_value_t v;
    if (expr_eval_value(e, env, &v, err) < 0)
        return -1;
    if (!out) {
        expr_value_free(&v);
        set_err(err, 0, "no output");
        return -1;
    }
    size_t n;
    char *s;
    if (v.type == EXPR_STRING) {
        s = v.s;
        n = v.len;
        v.s = NULL;
    } else {
        s = expr_value_to_string(&v, &n);
        if (!s) {
            set_err(err, 0, "out of memory");
            return -1;
        }
    }
    if (n > EXPR_MAX_RESULT) {
        free(s);
        set_err(err, 0, "result longer than %d bytes", EXPR_MAX_RESULT);
        return -1;
    }
    *out = s;
    if (outlen)
        *outlen = n;
    return 0;
}

int expr_eval_str(const char *src, const expr_env_t *env, char **out, size_t *outlen, expr_error_t *err)
{
    expr_t *e = NULL;
    if (out)
        *out = NULL;
    if (expr_compile(src, &e, err) < 0)
        return -1;
    int rc = expr_eval(e, env, out, outlen, err);
    expr_free(&e);
    return rc;
}
