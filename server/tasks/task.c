/* Task configurations (TASKS.md "The language", docs/tasks.md): parse and
 * check an XML program into the immutable step tree of task.h.
 *
 * Design notes
 *
 * 1. XML is read by lwm2m_xml_read (server/lwm2m/xml_safe.c), the same safe
 *    reader as the object registry: no network, no DTD, no entity expansion,
 *    any DOCTYPE refused before its subset is read. What it returns is a
 *    well-formed tree; everything below is the task language on top of it.
 *
 * 2. One table (k_elems) says, for every element, where it may stand, which
 *    attributes it takes (and which are required, and how a literal value of
 *    each is checked), how long a literal key's path may be, and what its
 *    children are. Unknown and misplaced names are found against that table,
 *    so the "did you mean" suggestions only ever name something valid there.
 *
 * 3. Every attribute value with "${" is compiled once here (expr_compile) and
 *    kept compiled in the tree; a value without it is a literal and is
 *    checked now, where its type is known. Literal keys are resolved through
 *    the registry. Templates are checked at run time by the interpreter.
 *
 * 4. The tree is built in place: a step is pushed zeroed into its list and
 *    then filled, so on any failure the one recursive free releases exactly
 *    what was built. Recursion is bounded by TASK_MAX_DEPTH (container
 *    nesting); <comment> content is never walked.
 *
 * 5. Errors name the line (lwm2m_xml_line), the element and the attribute;
 *    an expression error adds its byte position inside the attribute value
 *    (after XML unescaping), as expr_compile reports it. */
#include "server/tasks/task.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/tree.h>

#include "server/lwm2m/registry.h"
#include "server/lwm2m/xml_safe.h"

/* ------------------------------------------------------------------------ */
/* The element table                                                         */
/* ------------------------------------------------------------------------ */

/* How a literal attribute value is checked (values with "${" are checked when
 * the template is evaluated). */
typedef enum {
    V_ANY = 0,     /* any text */
    V_NONEMPTY,    /* any text but "" */
    V_KEY,         /* resolved through the registry (resolve_key) */
    V_VALUE,       /* checked for the step's type (check_value) */
    V_TYPE,        /* an LwM2M type name */
    V_STORE_TYPE,  /* var | devProp */
    V_TARGET,      /* <store target>: a variable name when type is var */
    V_SERVER_ID,   /* integer >= 1 */
    V_INSTANCE,    /* 0..65534 */
    V_VARNAME,     /* a name `${#name}` can read back */
    V_BOOL,        /* true | false */
    V_PERIOD,      /* 0..2147483647 (pmin, pmax, epmin, epmax) */
    V_NUMBER,      /* a decimal number (gt, lt) */
    V_STEP,        /* a decimal number >= 0 (st) */
    V_METHOD,      /* GET POST PUT DELETE PATCH */
    V_LEVEL,       /* debug info warn error */
    V_STATUS,      /* SUCCESS WARNING ERROR */
    V_TIMEOUT,     /* 1..TASK_REST_MAX_TIMEOUT seconds */
    V_SECONDS,     /* 1..2147483647 */
    V_URL,         /* http:// or https:// */
    V_HEADER_NAME, /* an HTTP token */
    V_HEADER_VALUE,/* no CR or LF */
    V_COND,        /* exactly one ${...} */
} vkind_t;

#define TASK_REST_MAX_TIMEOUT 3600

/* where an element may stand: the lists the parser walks */
enum {
    P_STEPS = 1,     /* <config>, <if> (then and else) */
    P_BOOTSTRAP = 2, /* <lwm2mBootstrap> */
    P_CREATE = 4,    /* <create> */
    P_REST = 8,      /* <rest> */
};

typedef struct {
    const char *name;
    vkind_t v;
    bool required;
} attr_def_t;

#define MAX_ATTR_DEFS 9

typedef struct {
    const char *name;
    task_kind_t kind;
    unsigned places;      /* P_* where it may stand */
    unsigned children;    /* P_* of its child list, 0: no child elements */
    bool any_attrs;       /* <comment>: attributes and content ignored */
    uint8_t key_min, key_max; /* path length of a literal key */
    const char *key_needs;    /* for the message when the length is wrong */
    attr_def_t attrs[MAX_ATTR_DEFS];
} elem_def_t;

#define OPT(n, v) {n, v, false}
#define REQ(n, v) {n, v, true}
#define RES_NEEDS "a resource (object.instance.resource)"

static const elem_def_t k_elems[] = {
    {"lwm2mBootstrapCleanse", TASK_CLEANSE, P_STEPS, 0, false, 0, 0, NULL, {{0}}},
    {"lwm2mBootstrapConfiguration", TASK_CONFIGURATION, P_STEPS, 0, false, 0, 0, NULL,
     {OPT("serverId", V_SERVER_ID), OPT("serverName", V_NONEMPTY), OPT("securityInstanceId", V_INSTANCE),
      OPT("serverInstanceId", V_INSTANCE), OPT("securityInstanceIdOutput", V_VARNAME)}},
    {"lwm2mBootstrap", TASK_BOOTSTRAP, P_STEPS, P_BOOTSTRAP, false, 0, 0, NULL,
     {OPT("performBootstrapFinish", V_BOOL)}},
    {"write", TASK_BS_WRITE, P_BOOTSTRAP | P_CREATE, 0, false, 3, 4, RES_NEEDS,
     {REQ("key", V_KEY), REQ("value", V_VALUE), OPT("type", V_TYPE)}},
    {"delete", TASK_BS_DELETE, P_BOOTSTRAP, 0, false, 0, 2, "'/', an object or an object instance",
     {REQ("key", V_KEY)}},
    {"set", TASK_SET, P_STEPS, 0, false, 3, 4, RES_NEEDS, {REQ("key", V_KEY), REQ("value", V_VALUE), OPT("type", V_TYPE)}},
    {"execute", TASK_EXECUTE, P_STEPS, 0, false, 3, 3, RES_NEEDS, {REQ("key", V_KEY), OPT("arguments", V_ANY)}},
    {"get", TASK_GET, P_STEPS, 0, false, 1, 4, "an object, instance, resource or resource instance",
     {REQ("key", V_KEY), REQ("output", V_VARNAME)}},
    {"delete", TASK_DELETE, P_STEPS, 0, false, 1, 2, "an object instance (object.instance) or an object",
     {REQ("key", V_KEY)}},
    {"create", TASK_CREATE, P_STEPS, P_CREATE, false, 1, 4, "an object, an object instance or a resource",
     {REQ("key", V_KEY), OPT("value", V_VALUE), OPT("type", V_TYPE)}},
    {"observe", TASK_OBSERVE, P_STEPS, 0, false, 1, 4, "an object, instance, resource or resource instance",
     {REQ("key", V_KEY), OPT("pmin", V_PERIOD), OPT("pmax", V_PERIOD), OPT("gt", V_NUMBER), OPT("lt", V_NUMBER),
      OPT("st", V_STEP)}},
    {"setAttributes", TASK_SET_ATTRIBUTES, P_STEPS, 0, false, 1, 4,
     "an object, instance, resource or resource instance",
     {REQ("key", V_KEY), OPT("pmin", V_PERIOD), OPT("pmax", V_PERIOD), OPT("gt", V_NUMBER), OPT("lt", V_NUMBER),
      OPT("st", V_STEP), OPT("epmin", V_PERIOD), OPT("epmax", V_PERIOD)}},
    {"store", TASK_STORE, P_STEPS, 0, false, 0, 0, NULL,
     {REQ("target", V_TARGET), REQ("value", V_ANY), OPT("type", V_STORE_TYPE)}},
    {"rest", TASK_REST, P_STEPS, P_REST, false, 0, 0, NULL,
     {REQ("url", V_URL), OPT("method", V_METHOD), OPT("content", V_ANY), OPT("contentType", V_NONEMPTY),
      OPT("timeout", V_TIMEOUT), OPT("user", V_ANY), OPT("pass", V_ANY)}},
    {"header", TASK_REST_HEADER, P_REST, 0, false, 0, 0, NULL,
     {REQ("name", V_HEADER_NAME), REQ("value", V_HEADER_VALUE)}},
    {"out", TASK_REST_OUT, P_REST, 0, false, 0, 0, NULL,
     {REQ("from", V_NONEMPTY), REQ("to", V_VARNAME), OPT("default", V_ANY)}},
    {"if", TASK_IF, P_STEPS, P_STEPS, false, 0, 0, NULL, {REQ("expr", V_COND)}},
    {"log", TASK_LOG, P_STEPS, 0, false, 0, 0, NULL, {REQ("message", V_ANY), OPT("level", V_LEVEL)}},
    {"finish", TASK_FINISH, P_STEPS, 0, false, 0, 0, NULL, {OPT("status", V_STATUS), OPT("message", V_ANY)}},
    {"wait", TASK_WAIT, P_STEPS, 0, false, 0, 0, NULL, {OPT("timeoutSeconds", V_SECONDS)}},
    {"comment", TASK_COMMENT, P_STEPS, 0, true, 0, 0, NULL, {{0}}},
    {"join", TASK_JOIN, P_STEPS, 0, false, 0, 0, NULL, {REQ("group", V_NONEMPTY)}},
    {"leave", TASK_LEAVE, P_STEPS, 0, false, 0, 0, NULL, {REQ("group", V_NONEMPTY)}},
};
#define N_ELEMS (sizeof k_elems / sizeof k_elems[0])

static const char *const k_kind_names[TASK_KIND_COUNT] = {
    [TASK_CLEANSE] = "lwm2mBootstrapCleanse",
    [TASK_CONFIGURATION] = "lwm2mBootstrapConfiguration",
    [TASK_BOOTSTRAP] = "lwm2mBootstrap",
    [TASK_BS_WRITE] = "write",
    [TASK_BS_DELETE] = "delete",
    [TASK_SET] = "set",
    [TASK_EXECUTE] = "execute",
    [TASK_GET] = "get",
    [TASK_DELETE] = "delete",
    [TASK_CREATE] = "create",
    [TASK_OBSERVE] = "observe",
    [TASK_SET_ATTRIBUTES] = "setAttributes",
    [TASK_STORE] = "store",
    [TASK_REST] = "rest",
    [TASK_REST_HEADER] = "header",
    [TASK_REST_OUT] = "out",
    [TASK_IF] = "if",
    [TASK_LOG] = "log",
    [TASK_FINISH] = "finish",
    [TASK_WAIT] = "wait",
    [TASK_COMMENT] = "comment",
    [TASK_JOIN] = "join",
    [TASK_LEAVE] = "leave",
};

const char *task_kind_name(task_kind_t k)
{
    return (unsigned)k < TASK_KIND_COUNT ? k_kind_names[k] : "?";
}

int task_kind_session(task_kind_t k)
{
    switch (k) {
    case TASK_CLEANSE:
    case TASK_CONFIGURATION:
    case TASK_BOOTSTRAP: return TR_SESSION_BOOTSTRAP;
    case TASK_DELETE:
    case TASK_CREATE:
    case TASK_OBSERVE:
    case TASK_SET_ATTRIBUTES: return TR_SESSION_MANAGEMENT;
    default: return -1;
    }
}

int task_steps_session(const task_step_t *steps, size_t n)
{
    for (size_t i = 0; steps && i < n; i++) {
        int k = task_kind_session(steps[i].kind);
        if (k < 0)
            k = task_steps_session(steps[i].children, steps[i].nchildren);
        if (k < 0)
            k = task_steps_session(steps[i].else_children, steps[i].nelse);
        if (k >= 0)
            return k;
    }
    return -1;
}

bool task_runs_in(const task_program_t *p, tr_session_kind_t kind)
{
    if (!p)
        return false;
    int k = task_steps_session(p->steps, p->nsteps);
    return k < 0 || k == (int)kind;
}

/* FNV-1a 64 over the shape of the tree and what is written in it. */
static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *b = data;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t digest_steps(uint64_t h, const task_step_t *steps, size_t n, size_t *count)
{
    uint32_t v = (uint32_t)n;
    h = fnv(h, &v, sizeof v);
    for (size_t i = 0; i < n; i++) {
        const task_step_t *s = &steps[i];
        ++*count;
        v = (uint32_t)s->kind;
        h = fnv(h, &v, sizeof v);
        v = (uint32_t)s->nattrs;
        h = fnv(h, &v, sizeof v);
        for (size_t a = 0; a < s->nattrs; a++) {
            h = fnv(h, s->attrs[a].name, strlen(s->attrs[a].name) + 1);
            h = fnv(h, s->attrs[a].raw, strlen(s->attrs[a].raw) + 1);
        }
        h = digest_steps(h, s->children, s->nchildren, count);
        h = digest_steps(h, s->else_children, s->nelse, count);
    }
    return h;
}

const task_attr_t *task_step_attr(const task_step_t *s, const char *name)
{
    if (!s || !name)
        return NULL;
    for (size_t i = 0; i < s->nattrs; i++)
        if (strcmp(s->attrs[i].name, name) == 0)
            return &s->attrs[i];
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Small text helpers                                                        */
/* ------------------------------------------------------------------------ */

static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_xml_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Shows user text in a message: at most 40 bytes, printable ASCII as is,
 * other bytes as \xNN, "..." when cut. */
static const char *show_n(char out[200], const char *s, size_t n)
{
    size_t k = 0, i = 0;
    for (; i < n && i < 40; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            out[k++] = (char)c;
        else
            k += (size_t)snprintf(out + k, 5, "\\x%02x", c);
    }
    if (i < n)
        memcpy(out + k, "...", 3), k += 3;
    out[k] = '\0';
    return out;
}

static const char *show(char out[200], const char *s)
{
    return show_n(out, s, strlen(s));
}

/* Keeps the closest candidate, if it is close enough to be a slip. */
typedef struct {
    const char *best;
    size_t d;
} suggest_t;

static void suggest_consider(suggest_t *sg, const char *query, const char *cand)
{
    size_t d = lwm2m_name_distance(query, strlen(query), cand, strlen(cand));
    size_t n = strlen(query);
    /* an abbreviation ("lwm2mBootstrapConfig") is one slip away */
    if (n >= 3 && n < strlen(cand) && strncasecmp(query, cand, n) == 0)
        d = 1;
    size_t limit = n / 3 > 2 ? n / 3 : 2;
    if (d <= limit && (!sg->best || d < sg->d)) {
        sg->best = cand;
        sg->d = d;
    }
}

/* Parses a decimal integer written as [sign] digits. */
static bool parse_i64(const char *s, size_t n, bool allow_sign, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (allow_sign && i < n && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    if (i == n)
        return false;
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        if (!is_digit((unsigned char)s[i]))
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (lim - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return true;
}

static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    size_t i = 0;
    if (i < n && s[i] == '+')
        i++;
    if (i == n)
        return false;
    uint64_t v = 0;
    for (; i < n; i++) {
        if (!is_digit((unsigned char)s[i]))
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* All digits, value in [lo, hi]. */
static bool parse_range(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    int64_t v;
    if (!parse_i64(s, strlen(s), false, &v) || v < lo || v > hi)
        return false;
    if (out)
        *out = v;
    return true;
}

/* Decimal number: [sign] (digits [. digits*] | . digits) [e [sign] digits],
 * finite. No hex floats, no inf/nan, no white space. */
static bool parse_number(const char *s, size_t n, double *out)
{
    size_t i = 0, mant = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    while (i < n && is_digit((unsigned char)s[i]))
        i++, mant++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && is_digit((unsigned char)s[i]))
            i++, mant++;
    }
    if (!mant)
        return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t exp = 0;
        while (i < n && is_digit((unsigned char)s[i]))
            i++, exp++;
        if (!exp)
            return false;
    }
    if (i != n || n > 400)
        return false;
    char buf[401];
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    double d = strtod(buf, NULL);
    if (!isfinite(d))
        return false;
    if (out)
        *out = d;
    return true;
}

/* A name `${#name}` reads back: segments of letters, digits and '_' joined by
 * dots, the first starting with a letter or '_' (docs/expressions.md). */
static bool is_var_name(const char *s)
{
    if (!is_alpha((unsigned char)s[0]) && s[0] != '_')
        return false;
    bool seg_empty = false;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '.') {
            if (seg_empty)
                return false;
            seg_empty = true;
        } else if (is_alpha(c) || is_digit(c) || c == '_') {
            seg_empty = false;
        } else {
            return false;
        }
    }
    return !seg_empty;
}

/* ------------------------------------------------------------------------ */
/* Typed values                                                              */
/* ------------------------------------------------------------------------ */

__attribute__((format(printf, 3, 4))) static int why_fail(char *why, size_t whylen, const char *fmt, ...)
{
    if (why && whylen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int task_value_parse(lwm2m_type_t type, const char *s, size_t len, lwm2m_record_t *rec, char *why, size_t whylen)
{
    char shown[200];
    if (!s)
        return why_fail(why, whylen, "no value");
    show_n(shown, s, len);

    lwm2m_record_t r;
    memset(&r, 0, sizeof r);
    if (rec)
        r.path = rec->path;
    r.type = type;
    switch (type) {
    case LWM2M_T_STRING:
    case LWM2M_T_CORELNK:
        if (rec) {
            if (!(r.bytes = malloc(len + 1)))
                return why_fail(why, whylen, "out of memory");
            memcpy(r.bytes, s, len);
            r.bytes[len] = '\0';
            r.nbytes = len;
        }
        break;
    case LWM2M_T_INTEGER:
        if (!parse_i64(s, len, true, &r.v.i))
            return why_fail(why, whylen, "'%s' is not an integer (-9223372036854775808..9223372036854775807)", shown);
        break;
    case LWM2M_T_TIME:
        if (!parse_i64(s, len, true, &r.v.i))
            return why_fail(why, whylen, "'%s' is not a time (seconds since 1970, an integer)", shown);
        break;
    case LWM2M_T_UNSIGNED:
        if (!parse_u64(s, len, &r.v.u))
            return why_fail(why, whylen, "'%s' is not an unsigned integer (0..18446744073709551615)", shown);
        break;
    case LWM2M_T_FLOAT:
        if (!parse_number(s, len, &r.v.f))
            return why_fail(why, whylen, "'%s' is not a float (a finite decimal number such as 1.5 or -2e3)", shown);
        break;
    case LWM2M_T_BOOLEAN:
        if (len == 4 && memcmp(s, "true", 4) == 0)
            r.v.b = true;
        else if ((len == 5 && memcmp(s, "false", 5) == 0) || (len == 1 && s[0] == '0'))
            r.v.b = false;
        else if (len == 1 && s[0] == '1')
            r.v.b = true;
        else
            return why_fail(why, whylen, "'%s' is not a boolean (true, false, 1 or 0)", shown);
        break;
    case LWM2M_T_OPAQUE:
        if (len % 2)
            return why_fail(why, whylen, "'%s' is not hex: odd number of digits (%zu)", shown, len);
        for (size_t i = 0; i < len; i++)
            if (lwm2m_hex_digit((unsigned char)s[i]) < 0)
                return why_fail(why, whylen, "'%s' is not hex: bad digit at %zu", shown, i);
        if (rec) {
            if (!(r.bytes = malloc(len / 2 + 1)))
                return why_fail(why, whylen, "out of memory");
            for (size_t i = 0; i < len / 2; i++)
                r.bytes[i] = (uint8_t)(lwm2m_hex_digit((unsigned char)s[2 * i]) << 4 |
                                       lwm2m_hex_digit((unsigned char)s[2 * i + 1]));
            r.bytes[len / 2] = '\0';
            r.nbytes = len / 2;
        }
        break;
    case LWM2M_T_OBJLNK: {
        const char *colon = memchr(s, ':', len);
        int64_t o, i;
        if (!colon || !parse_i64(s, (size_t)(colon - s), false, &o) ||
            !parse_i64(colon + 1, len - (size_t)(colon - s) - 1, false, &i) || o > 65535 || i > 65535)
            return why_fail(why, whylen, "'%s' is not an object link (object:instance, as 3:0)", shown);
        r.v.lnk.oid = (uint16_t)o;
        r.v.lnk.iid = (uint16_t)i;
        break;
    }
    case LWM2M_T_NONE:
        if (len)
            return why_fail(why, whylen, "'%s': type none takes no value", shown);
        break;
    default:
        return why_fail(why, whylen, "unknown type %d", (int)type);
    }
    if (rec)
        *rec = r;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Program memory                                                            */
/* ------------------------------------------------------------------------ */

typedef struct {
    task_step_t *v;
    size_t n, cap;
} stepvec_t;

static void step_clear(task_step_t *s);

static void steps_free(task_step_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        step_clear(&v[i]);
    free(v);
}

static void step_clear(task_step_t *s)
{
    for (size_t i = 0; i < s->nattrs; i++) {
        free((char *)s->attrs[i].name);
        free((char *)s->attrs[i].raw);
        expr_free(&s->attrs[i].expr);
    }
    free(s->attrs);
    steps_free(s->children, s->nchildren);
    steps_free(s->else_children, s->nelse);
    memset(s, 0, sizeof *s);
}

void task_program_free(task_program_t **p)
{
    if (!p || !*p)
        return;
    task_program_t *g = *p;
    steps_free(g->steps, g->nsteps);
    free(g->server_ids);
    for (size_t i = 0; i < g->nserver_names; i++)
        free(g->server_names[i]);
    free(g->server_names);
    free(g);
    *p = NULL;
}

/* Pushes a zeroed step; NULL on ENOMEM. */
static task_step_t *vec_push(stepvec_t *v)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        task_step_t *n = realloc(v->v, cap * sizeof *n);
        if (!n)
            return NULL;
        v->v = n;
        v->cap = cap;
    }
    task_step_t *s = &v->v[v->n++];
    memset(s, 0, sizeof *s);
    s->key_type = -1;
    s->type = -1;
    s->key_path.len = 0;
    for (int k = 0; k < 4; k++)
        s->key_path.ids[k] = LWM2M_ID_NONE;
    return s;
}

/* ------------------------------------------------------------------------ */
/* Parser state and errors                                                   */
/* ------------------------------------------------------------------------ */

typedef struct {
    const lwm2m_registry_t *reg;
    task_program_t *prog;
    task_error_t *err;
    size_t nsteps;
    size_t cap_ids, cap_names;
} pctx_t;

/* Fills the error: "line N: text" or "line N, attribute 'a' of <e>: text".
 * Always returns -1. */
__attribute__((format(printf, 5, 6))) static int fail(pctx_t *c, long line, const char *elem, const char *attr,
                                                      const char *fmt, ...)
{
    task_error_t *e = c->err;
    if (!e)
        return -1;
    char text[sizeof e->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    e->line = line > 0 && line <= INT32_MAX ? (int)line : 0;
    e->column = 0;
    snprintf(e->element, sizeof e->element, "%s", elem ? elem : "");
    snprintf(e->attribute, sizeof e->attribute, "%s", attr ? attr : "");
    /* the place first, then as much of the text as fits */
    char where[160] = "";
    if (attr && e->line)
        snprintf(where, sizeof where, "line %d, attribute '%.40s' of <%.40s>: ", e->line, attr, elem ? elem : "?");
    else if (e->line)
        snprintf(where, sizeof where, "line %d: ", e->line);
    size_t wn = strlen(where), tn = strlen(text);
    if (tn > sizeof e->msg - 1 - wn)
        tn = sizeof e->msg - 1 - wn;
    memcpy(e->msg, where, wn);
    memcpy(e->msg + wn, text, tn);
    e->msg[wn + tn] = '\0';
    return -1;
}

static int oom(pctx_t *c)
{
    return fail(c, 0, NULL, NULL, "out of memory");
}

static const char *elem_name(const xmlNode *n)
{
    return (const char *)n->name;
}

static int add_server_id(pctx_t *c, int64_t id)
{
    task_program_t *g = c->prog;
    for (size_t i = 0; i < g->nserver_ids; i++)
        if (g->server_ids[i] == id)
            return 0;
    if (g->nserver_ids == c->cap_ids) {
        size_t cap = c->cap_ids ? c->cap_ids * 2 : 4;
        int64_t *n = realloc(g->server_ids, cap * sizeof *n);
        if (!n)
            return oom(c);
        g->server_ids = n;
        c->cap_ids = cap;
    }
    g->server_ids[g->nserver_ids++] = id;
    return 0;
}

static int add_server_name(pctx_t *c, const char *name)
{
    task_program_t *g = c->prog;
    for (size_t i = 0; i < g->nserver_names; i++)
        if (strcmp(g->server_names[i], name) == 0)
            return 0;
    if (g->nserver_names == c->cap_names) {
        size_t cap = c->cap_names ? c->cap_names * 2 : 4;
        char **n = realloc(g->server_names, cap * sizeof *n);
        if (!n)
            return oom(c);
        g->server_names = n;
        c->cap_names = cap;
    }
    if (!(g->server_names[g->nserver_names] = strdup(name)))
        return oom(c);
    g->nserver_names++;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Element lookup                                                            */
/* ------------------------------------------------------------------------ */

static const char *place_children_text(unsigned place)
{
    switch (place) {
    case P_BOOTSTRAP: return "<write> and <delete>";
    case P_CREATE: return "<write>";
    case P_REST: return "<header> and <out>";
    default: return "steps";
    }
}

static const char *where_text(unsigned places)
{
    if (places == (P_BOOTSTRAP | P_CREATE))
        return "inside <lwm2mBootstrap> or <create>";
    if (places == P_BOOTSTRAP)
        return "inside <lwm2mBootstrap>";
    if (places == P_REST)
        return "inside <rest>";
    return "among the steps of <config> or <if>";
}

/* Finds the definition of element `name` standing in `place` (inside `owner`,
 * NULL at the top). On failure fills the error: misplaced or unknown. */
static const elem_def_t *find_elem(pctx_t *c, const xmlNode *n, unsigned place, const char *owner, bool in_if)
{
    const char *name = elem_name(n);
    long line = lwm2m_xml_line(n);
    char shown[200];
    const elem_def_t *elsewhere = NULL;
    for (size_t i = 0; i < N_ELEMS; i++) {
        if (strcmp(k_elems[i].name, name) != 0)
            continue;
        if (k_elems[i].places & place)
            return &k_elems[i];
        elsewhere = &k_elems[i];
    }
    if (!place) {
        fail(c, line, name, NULL, "<%s> takes no child elements (found <%s>)", owner, show(shown, name));
        return NULL;
    }
    if (elsewhere || strcmp(name, "else") == 0 || strcmp(name, "config") == 0) {
        if (strcmp(name, "else") == 0)
            fail(c, line, name, NULL, "<else/> may only stand directly inside <if>");
        else if (strcmp(name, "config") == 0)
            fail(c, line, name, NULL, "<config> may only be the root element");
        else if (place == P_BOOTSTRAP && elsewhere->kind == TASK_BOOTSTRAP)
            fail(c, line, name, NULL, "<lwm2mBootstrap> cannot be nested; it takes only <write> and <delete>");
        else if (place == P_STEPS && elsewhere->kind == TASK_BS_WRITE)
            fail(c, line, name, NULL,
                 "<write> may only stand inside <lwm2mBootstrap> or <create>; use <set> to write one resource");
        else if (place == P_STEPS)
            fail(c, line, name, NULL, "<%s> may only stand %s", name, where_text(elsewhere->places));
        else
            fail(c, line, name, NULL, "<%s> cannot stand inside <%s>, which takes only %s", name, owner,
                 place_children_text(place));
        return NULL;
    }
    suggest_t sg = {NULL, 0};
    for (size_t i = 0; i < N_ELEMS; i++)
        if (k_elems[i].places & place)
            suggest_consider(&sg, name, k_elems[i].name);
    if (in_if)
        suggest_consider(&sg, name, "else");
    if (sg.best)
        fail(c, line, name, NULL, "unknown element <%s>; did you mean <%s>?", show(shown, name), sg.best);
    else if (place == P_STEPS)
        fail(c, line, name, NULL, "unknown element <%s>", show(shown, name));
    else
        fail(c, line, name, NULL, "unknown element <%s>; <%s> takes only %s", show(shown, name), owner,
             place_children_text(place));
    return NULL;
}

static const attr_def_t *find_attr_def(const elem_def_t *d, const char *name)
{
    for (size_t i = 0; i < MAX_ATTR_DEFS && d->attrs[i].name; i++)
        if (strcmp(d->attrs[i].name, name) == 0)
            return &d->attrs[i];
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Attributes                                                                */
/* ------------------------------------------------------------------------ */

/* Copies the attributes, refusing unknown ones, compiling templates. */
static int read_attrs(pctx_t *c, const xmlNode *n, const elem_def_t *d, task_step_t *s, long line)
{
    const char *ename = d->name;
    char shown[200];
    size_t count = 0;
    for (const xmlAttr *a = n->properties; a; a = a->next)
        count++;
    if (!count)
        goto required;
    if (!(s->attrs = calloc(count, sizeof *s->attrs)))
        return oom(c);
    for (const xmlAttr *a = n->properties; a; a = a->next) {
        const char *aname = (const char *)a->name;
        if (a->ns)
            return fail(c, line, ename, NULL, "attribute '%s:%s' on <%s>: namespaces are not used in tasks",
                        show(shown, (const char *)(a->ns->prefix ? a->ns->prefix : (const xmlChar *)"")),
                        aname, ename);
        if (!find_attr_def(d, aname)) {
            if (!d->attrs[0].name)
                return fail(c, line, ename, NULL, "<%s> takes no attributes (found '%s')", ename,
                            show(shown, aname));
            suggest_t sg = {NULL, 0};
            for (size_t i = 0; i < MAX_ATTR_DEFS && d->attrs[i].name; i++)
                suggest_consider(&sg, aname, d->attrs[i].name);
            if (sg.best) {
                fail(c, line, ename, NULL, "unknown attribute '%s' on <%s>; did you mean '%s'?", show(shown, aname),
                     ename, sg.best);
            } else {
                char list[200] = "";
                for (size_t i = 0; i < MAX_ATTR_DEFS && d->attrs[i].name; i++) {
                    strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
                    strncat(list, d->attrs[i].name, sizeof list - strlen(list) - 1);
                }
                fail(c, line, ename, NULL, "unknown attribute '%s' on <%s> (it takes %s)", show(shown, aname), ename,
                     list);
            }
            snprintf(c->err->attribute, sizeof c->err->attribute, "%s", aname);
            return -1;
        }
        task_attr_t *t = &s->attrs[s->nattrs];
        xmlChar *v = xmlNodeListGetString(n->doc, a->children, 1);
        t->name = strdup(aname);
        t->raw = strdup(v ? (const char *)v : "");
        if (v)
            xmlFree(v);
        t->line = (int)line;
        s->nattrs++;
        if (!t->name || !t->raw)
            return oom(c);
        if (expr_has_parts(t->raw)) {
            expr_error_t ee;
            memset(&ee, 0, sizeof ee);
            if (expr_compile(t->raw, &t->expr, &ee) < 0) {
                if (strstr(ee.msg, "out of memory"))
                    return oom(c);
                return fail(c, line, ename, t->name, "%s", ee.msg);
            }
        }
    }
required:
    for (size_t i = 0; i < MAX_ATTR_DEFS && d->attrs[i].name; i++)
        if (d->attrs[i].required && !task_step_attr(s, d->attrs[i].name)) {
            fail(c, line, ename, NULL, "<%s> needs attribute '%s'", ename, d->attrs[i].name);
            snprintf(c->err->attribute, sizeof c->err->attribute, "%s", d->attrs[i].name);
            return -1;
        }
    return 0;
}

/* Checks one literal attribute value whose check needs no context. */
static int check_literal(pctx_t *c, const elem_def_t *d, task_step_t *s, const attr_def_t *ad,
                         const task_attr_t *t, long line)
{
    const char *v = t->raw, *en = d->name, *an = t->name;
    char shown[200];
    int64_t i64;
    double f;
    switch (ad->v) {
    case V_ANY:
    case V_KEY:
    case V_VALUE:
        return 0;
    case V_NONEMPTY:
        if (!*v)
            return fail(c, line, en, an, "must not be empty");
        return 0;
    case V_TYPE: {
        int ty = *v ? lwm2m_type_parse(v) : -1;
        if (ty < 0) {
            static const char *const names[] = {"string", "integer", "unsigned", "float",  "boolean",
                                                "opaque", "time",    "objlnk",   "corelnk", "none"};
            suggest_t sg = {NULL, 0};
            for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
                suggest_consider(&sg, v, names[k]);
            if (sg.best)
                return fail(c, line, en, an, "unknown type '%s'; did you mean '%s'?", show(shown, v), sg.best);
            return fail(c, line, en, an,
                        "unknown type '%s' (string, integer, unsigned, float, boolean, opaque, time, objlnk, "
                        "corelnk or none)",
                        show(shown, v));
        }
        s->type = ty;
        return 0;
    }
    case V_STORE_TYPE:
        if (strcmp(v, "var") == 0)
            s->type = 0;
        else if (strcmp(v, "devProp") == 0)
            s->type = 1;
        else
            return fail(c, line, en, an, "'%s' is neither 'var' nor 'devProp'", show(shown, v));
        return 0;
    case V_TARGET: /* checked with the type, in check_element */
        return 0;
    case V_SERVER_ID:
        if (!parse_range(v, 1, INT64_MAX, &i64))
            return fail(c, line, en, an, "'%s' is not a server id (an integer from 1)", show(shown, v));
        return add_server_id(c, i64);
    case V_INSTANCE:
        if (!parse_range(v, 0, 65534, NULL))
            return fail(c, line, en, an, "'%s' is not an instance id (0..65534)", show(shown, v));
        return 0;
    case V_VARNAME:
        if (v[0] == '#' && is_var_name(v + 1))
            return fail(c, line, en, an, "'%s': write the variable name without '#'", show(shown, v));
        if (!is_var_name(v))
            return fail(c, line, en, an,
                        "'%s' is not a variable name (letters, digits, '_' and dots, starting with a letter or '_')",
                        show(shown, v));
        if (v[0] == '_' && v[1] == '_')
            return fail(c, line, en, an, "'%s': names starting with '__' are reserved for lwdm", show(shown, v));
        return 0;
    case V_BOOL:
        if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
            return fail(c, line, en, an, "'%s' is neither 'true' nor 'false'", show(shown, v));
        return 0;
    case V_PERIOD:
        if (!parse_range(v, 0, INT32_MAX, NULL))
            return fail(c, line, en, an, "'%s' is not a number of seconds (0..2147483647)", show(shown, v));
        return 0;
    case V_NUMBER:
        if (!parse_number(v, strlen(v), NULL))
            return fail(c, line, en, an, "'%s' is not a number", show(shown, v));
        return 0;
    case V_STEP:
        if (!parse_number(v, strlen(v), &f) || f < 0)
            return fail(c, line, en, an, "'%s' is not a number >= 0", show(shown, v));
        return 0;
    case V_METHOD:
        if (strcmp(v, "GET") && strcmp(v, "POST") && strcmp(v, "PUT") && strcmp(v, "DELETE") && strcmp(v, "PATCH"))
            return fail(c, line, en, an, "'%s' is not GET, POST, PUT, DELETE or PATCH", show(shown, v));
        return 0;
    case V_LEVEL:
        if (strcmp(v, "debug") && strcmp(v, "info") && strcmp(v, "warn") && strcmp(v, "error"))
            return fail(c, line, en, an, "'%s' is not debug, info, warn or error", show(shown, v));
        return 0;
    case V_STATUS:
        if (strcmp(v, "SUCCESS") && strcmp(v, "WARNING") && strcmp(v, "ERROR"))
            return fail(c, line, en, an, "'%s' is not SUCCESS, WARNING or ERROR", show(shown, v));
        return 0;
    case V_TIMEOUT:
        if (!parse_range(v, 1, TASK_REST_MAX_TIMEOUT, NULL))
            return fail(c, line, en, an, "'%s' is not a number of seconds (1..%d)", show(shown, v),
                        TASK_REST_MAX_TIMEOUT);
        return 0;
    case V_SECONDS:
        if (!parse_range(v, 1, INT32_MAX, NULL))
            return fail(c, line, en, an, "'%s' is not a number of seconds (1..2147483647)", show(shown, v));
        return 0;
    case V_URL: {
        bool http = strncmp(v, "http://", 7) == 0 && v[7];
        bool https = strncmp(v, "https://", 8) == 0 && v[8];
        if (!http && !https)
            return fail(c, line, en, an, "'%s' is not an http:// or https:// URL", show(shown, v));
        for (const char *p = v; *p; p++)
            if ((unsigned char)*p <= 0x20 || *p == 0x7f)
                return fail(c, line, en, an, "URL '%s' contains a space or a control character", show(shown, v));
        return 0;
    }
    case V_HEADER_NAME:
        if (!*v)
            return fail(c, line, en, an, "must not be empty");
        for (const char *p = v; *p; p++) {
            unsigned char ch = (unsigned char)*p;
            if (!is_alpha(ch) && !is_digit(ch) && !strchr("!#$%&'*+-.^_`|~", ch))
                return fail(c, line, en, an, "'%s' is not an HTTP header name", show(shown, v));
        }
        return 0;
    case V_HEADER_VALUE:
        if (strpbrk(v, "\r\n"))
            return fail(c, line, en, an, "a header value cannot contain a line break");
        return 0;
    case V_COND:
        return fail(c, line, en, an, "the condition must be an expression, as expr=\"${#serverId == 4}\"");
    }
    return 0;
}

/* The part of a template before its first "${", for checks that only need a
 * prefix (a URL's scheme). */
static int check_template(pctx_t *c, const elem_def_t *d, const attr_def_t *ad, const task_attr_t *t, long line)
{
    char shown[200];
    if (ad->v == V_URL) {
        const char *part = strstr(t->raw, "${");
        size_t pre = part ? (size_t)(part - t->raw) : strlen(t->raw);
        const char *colon = memchr(t->raw, ':', pre);
        if (colon) {
            size_t sn = (size_t)(colon - t->raw);
            if (!((sn == 4 && strncmp(t->raw, "http", 4) == 0) || (sn == 5 && strncmp(t->raw, "https", 5) == 0)))
                return fail(c, line, d->name, t->name, "'%s' is not an http:// or https:// URL",
                            show(shown, t->raw));
        }
    } else if (ad->v == V_COND) {
        /* The condition must be one ${...} and nothing else, so it keeps its
         * type: "${#a} == 1" would be the always-true string "4 == 1". A
         * template "${X}" is one part exactly when "${(X)}" compiles: an
         * unquoted '}' in X ends a part and leaves the '(' unbalanced. */
        size_t n = strlen(t->raw);
        bool one = n >= 3 && t->raw[0] == '$' && t->raw[1] == '{' && t->raw[n - 1] == '}';
        if (one) {
            char *wrapped = malloc(n + 3);
            if (!wrapped)
                return oom(c);
            memcpy(wrapped, "${(", 3);
            memcpy(wrapped + 3, t->raw + 2, n - 3);
            memcpy(wrapped + n, ")}", 3);
            expr_error_t ee;
            one = expr_check(wrapped, &ee) == 0;
            free(wrapped);
        }
        if (!one)
            return fail(c, line, d->name, t->name,
                        "the condition must be a single ${...} with nothing around it, as expr=\"${#a == 1}\"");
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Keys                                                                      */
/* ------------------------------------------------------------------------ */

static bool is_numeric_type(int t)
{
    return t == LWM2M_T_INTEGER || t == LWM2M_T_UNSIGNED || t == LWM2M_T_FLOAT;
}

static int resolve_key(pctx_t *c, const elem_def_t *d, task_step_t *s, long line)
{
    const task_attr_t *k = task_step_attr(s, "key");
    if (!k || k->expr)
        return 0;
    char msg[256], shown[200], ps[32];
    lwm2m_path_t path;
    const lwm2m_resdef_t *res = NULL;

    /* "/" (every object) exists only for Bootstrap-Delete */
    const char *a = k->raw, *b = k->raw + strlen(k->raw);
    while (a < b && is_xml_space((unsigned char)*a))
        a++;
    while (b > a && is_xml_space((unsigned char)b[-1]))
        b--;
    if (b - a == 1 && *a == '/') {
        path = lwm2m_path_make(0, 0, 0, 0, 0);
        for (int i = 0; i < 4; i++)
            path.ids[i] = LWM2M_ID_NONE;
    } else {
        msg[0] = '\0';
        if (lwm2m_registry_resolve_key(c->reg, k->raw, &path, &res, msg, sizeof msg) < 0)
            return fail(c, line, d->name, "key", "%s", msg[0] ? msg : "unknown key");
    }
    lwm2m_path_format(&path, ps, sizeof ps);
    if (path.len < d->key_min || path.len > d->key_max)
        return fail(c, line, d->name, "key", "'%s' names %s; <%s> needs %s", show(shown, k->raw), ps, d->name,
                    d->key_needs ? d->key_needs : "another kind of key");
    s->key_resolved = true;
    s->key_path = path;
    s->key_type = res && path.len >= 3 ? (int)res->type : -1;

    bool exec = res && path.len >= 3 && (res->ops & LWM2M_OP_E);
    switch (s->kind) {
    case TASK_SET:
    case TASK_BS_WRITE:
    case TASK_CREATE:
        if (exec)
            return fail(c, line, d->name, "key", "resource '%s' (%s) is executable and cannot be written; use <execute>",
                        res->name, ps);
        break;
    case TASK_EXECUTE:
        if (res && !exec)
            return fail(c, line, d->name, "key", "resource '%s' (%s) is not executable", res->name, ps);
        break;
    case TASK_GET:
    case TASK_OBSERVE:
    case TASK_SET_ATTRIBUTES:
        if (exec)
            return fail(c, line, d->name, "key", "resource '%s' (%s) is executable and has no value to %s", res->name,
                        ps, s->kind == TASK_GET ? "read" : "observe");
        break;
    default:
        break;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Per-element checks                                                        */
/* ------------------------------------------------------------------------ */

static bool literal(const task_attr_t *t)
{
    return t && !t->expr;
}

/* The value against the step's type: the literal `type`, or the resource's. */
static int check_value(pctx_t *c, const elem_def_t *d, task_step_t *s, long line)
{
    if (s->kind != TASK_SET && s->kind != TASK_BS_WRITE && s->kind != TASK_CREATE)
        return 0;
    const task_attr_t *v = task_step_attr(s, "value");
    const task_attr_t *ty = task_step_attr(s, "type");
    if (!v)
        return 0;
    int eff = ty ? s->type : s->key_type;
    if (ty && literal(ty) && s->type == LWM2M_T_NONE)
        return fail(c, line, d->name, "type", "type 'none' has no value to write");
    if (!literal(v) || eff < 0)
        return 0;
    char why[240];
    if (task_value_parse((lwm2m_type_t)eff, v->raw, strlen(v->raw), NULL, why, sizeof why) < 0)
        return fail(c, line, d->name, "value", "%s", why);
    return 0;
}

static int check_pair(pctx_t *c, const elem_def_t *d, const task_step_t *s, const char *lo, const char *hi, long line)
{
    const task_attr_t *a = task_step_attr(s, lo), *b = task_step_attr(s, hi);
    if (!literal(a) || !literal(b))
        return 0;
    int64_t x, y;
    if (parse_range(a->raw, 0, INT32_MAX, &x) && parse_range(b->raw, 0, INT32_MAX, &y) && x > y)
        return fail(c, line, d->name, hi, "%s (%" PRId64 ") is below %s (%" PRId64 ")", hi, y, lo, x);
    return 0;
}

static int check_element(pctx_t *c, const elem_def_t *d, task_step_t *s, long line)
{
    char shown[200];
    switch (s->kind) {
    case TASK_CONFIGURATION: {
        const task_attr_t *id = task_step_attr(s, "serverId"), *name = task_step_attr(s, "serverName");
        if (!id && !name)
            return fail(c, line, d->name, NULL, "<%s> needs attribute 'serverId' or 'serverName'", d->name);
        if (id && name)
            return fail(c, line, d->name, NULL, "<%s> takes 'serverId' or 'serverName', not both", d->name);
        if (literal(name))
            return add_server_name(c, name->raw);
        return 0;
    }
    case TASK_STORE: {
        const task_attr_t *t = task_step_attr(s, "target");
        const task_attr_t *ty = task_step_attr(s, "type");
        if (!literal(t) || (ty && !literal(ty)))
            return 0;
        if (s->type == 1) {
            if (!*t->raw)
                return fail(c, line, d->name, "target", "must not be empty");
        } else if (t->raw[0] == '#' && is_var_name(t->raw + 1)) {
            return fail(c, line, d->name, "target", "'%s': write the variable name without '#'", show(shown, t->raw));
        } else if (!is_var_name(t->raw)) {
            return fail(c, line, d->name, "target",
                        "'%s' is not a variable name (letters, digits, '_' and dots, starting with a letter or '_')",
                        show(shown, t->raw));
        } else if (t->raw[0] == '_' && t->raw[1] == '_') {
            return fail(c, line, d->name, "target", "'%s': names starting with '__' are reserved for lwdm",
                        show(shown, t->raw));
        }
        return 0;
    }
    case TASK_CREATE:
        if (task_step_attr(s, "type") && !task_step_attr(s, "value"))
            return fail(c, line, d->name, "type", "'type' goes with 'value'");
        if (s->key_resolved) {
            char ps[32];
            lwm2m_path_format(&s->key_path, ps, sizeof ps);
            if (task_step_attr(s, "value") && s->key_path.len < 3)
                return fail(c, line, d->name, "key",
                            "%s is not a resource; <create> with a value needs object.instance.resource", ps);
            if (!task_step_attr(s, "value") && s->key_path.len > 2)
                return fail(c, line, d->name, "key",
                            "%s is a resource; <create> without a value needs an object or an object instance "
                            "(write resources with <write> children)",
                            ps);
        }
        return 0;
    case TASK_OBSERVE:
    case TASK_SET_ATTRIBUTES:
        if (check_pair(c, d, s, "pmin", "pmax", line) < 0 || check_pair(c, d, s, "epmin", "epmax", line) < 0)
            return -1;
        for (const char *const *a = (const char *const[]){"gt", "lt", "st", NULL}; *a; a++) {
            if (!task_step_attr(s, *a) || !s->key_resolved)
                continue;
            char ps[32];
            lwm2m_path_format(&s->key_path, ps, sizeof ps);
            if (s->key_path.len < 3)
                return fail(c, line, d->name, *a, "applies to a numeric resource, not to %s", ps);
            if (s->key_type >= 0 && !is_numeric_type(s->key_type))
                return fail(c, line, d->name, *a, "applies to a numeric resource; %s is %s", ps,
                            lwm2m_type_name((lwm2m_type_t)s->key_type));
        }
        return 0;
    default:
        return 0;
    }
}

/* ------------------------------------------------------------------------ */
/* The tree                                                                  */
/* ------------------------------------------------------------------------ */

static int parse_list(pctx_t *c, const xmlNode *parent, unsigned place, int depth, task_step_t *owner,
                      stepvec_t *out, stepvec_t *out_else);

static bool all_blank(const xmlChar *s)
{
    for (; s && *s; s++)
        if (!is_xml_space(*s))
            return false;
    return true;
}

/* A <write> inside <create> writes into the instance being created. */
static int check_create_child(pctx_t *c, const task_step_t *create, const task_step_t *w, const task_step_t *first,
                              long line)
{
    if (!create->key_resolved || !w->key_resolved)
        return 0;
    char ps[32], cs[32];
    lwm2m_path_format(&w->key_path, ps, sizeof ps);
    lwm2m_path_format(&create->key_path, cs, sizeof cs);
    if (!lwm2m_path_starts_with(&w->key_path, &create->key_path))
        return fail(c, line, "write", "key", "%s is outside the instance <create key=\"%s\"> creates", ps, cs);
    if (first && first != w && first->key_resolved &&
        (first->key_path.ids[0] != w->key_path.ids[0] || first->key_path.ids[1] != w->key_path.ids[1]))
        return fail(c, line, "write", "key", "%s: the writes of one <create> must name one instance", ps);
    return 0;
}

static int parse_element(pctx_t *c, const xmlNode *n, const elem_def_t *d, int depth, task_step_t *owner,
                         task_step_t *s)
{
    long line = lwm2m_xml_line(n);
    s->kind = d->kind;
    s->line = line > 0 && line <= INT32_MAX ? (int)line : 0;
    if (++c->nsteps > TASK_MAX_STEPS)
        return fail(c, line, d->name, NULL, "too many steps (more than %d elements)", TASK_MAX_STEPS);

    switch (d->kind) {
    case TASK_CLEANSE:
    case TASK_CONFIGURATION:
    case TASK_BOOTSTRAP:
        c->prog->has_bootstrap_ops = true;
        break;
    case TASK_DELETE:
    case TASK_CREATE:
    case TASK_OBSERVE:
    case TASK_SET_ATTRIBUTES:
        c->prog->has_management_ops = true;
        break;
    default:
        break;
    }

    if (d->any_attrs) /* <comment>: nothing inside is read */
        return 0;
    if (read_attrs(c, n, d, s, line) < 0)
        return -1;
    /* context-free checks of the literals, in document order */
    for (size_t i = 0; i < s->nattrs; i++) {
        const attr_def_t *ad = find_attr_def(d, s->attrs[i].name);
        int rc = s->attrs[i].expr ? check_template(c, d, ad, &s->attrs[i], line)
                                  : check_literal(c, d, s, ad, &s->attrs[i], line);
        if (rc < 0)
            return -1;
    }
    if (resolve_key(c, d, s, line) < 0 || check_value(c, d, s, line) < 0 || check_element(c, d, s, line) < 0)
        return -1;

    /* children */
    if (d->children && depth + 1 > TASK_MAX_DEPTH)
        return fail(c, line, d->name, NULL, "nesting deeper than %d levels", TASK_MAX_DEPTH);
    stepvec_t kids = {0}, els = {0};
    int rc = parse_list(c, n, d->children, depth + 1, s, &kids, d->kind == TASK_IF ? &els : NULL);
    s->children = kids.v;
    s->nchildren = kids.n;
    s->else_children = els.v;
    s->nelse = els.n;
    if (rc < 0)
        return -1;
    if (s->kind == TASK_CREATE && s->nchildren && task_step_attr(s, "value"))
        return fail(c, line, d->name, NULL, "<create> takes a 'value' or <write> children, not both");
    return 0;
}

/* Parses the children of `parent` standing in `place` (0: none allowed) into
 * `out`; for <if>, children after <else/> go to `out_else`. On failure the
 * lists hold what was built (the caller attaches and frees them). */
static int parse_list(pctx_t *c, const xmlNode *parent, unsigned place, int depth, task_step_t *owner,
                      stepvec_t *out, stepvec_t *out_else)
{
    const char *oname = owner ? task_kind_name(owner->kind) : "config";
    stepvec_t *cur = out;
    bool seen_else = false;
    char shown[200];
    for (const xmlNode *n = parent->children; n; n = n->next) {
        switch (n->type) {
        case XML_ELEMENT_NODE:
            break;
        case XML_TEXT_NODE:
        case XML_CDATA_SECTION_NODE:
            if (!all_blank(n->content)) {
                const xmlChar *p = n->content;
                while (is_xml_space(*p))
                    p++;
                long line = lwm2m_xml_line(n); /* of its first non-blank character */
                size_t tn = strlen((const char *)p);
                while (tn && is_xml_space(p[tn - 1]))
                    tn--;
                return fail(c, line, oname, NULL, "unexpected text '%s' in <%s>",
                            show_n(shown, (const char *)p, tn), oname);
            }
            continue;
        case XML_COMMENT_NODE:
        case XML_PI_NODE:
            continue;
        default:
            return fail(c, lwm2m_xml_line(parent), oname, NULL, "unexpected content in <%s>", oname);
        }
        long line = lwm2m_xml_line(n);
        if (out_else && !n->ns && strcmp(elem_name(n), "else") == 0) {
            if (seen_else)
                return fail(c, line, "else", NULL, "<if> takes at most one <else/>");
            if (n->properties)
                return fail(c, line, "else", NULL, "<else/> takes no attributes (found '%s')",
                            show(shown, (const char *)n->properties->name));
            for (const xmlNode *k = n->children; k; k = k->next)
                if (k->type == XML_ELEMENT_NODE ||
                    ((k->type == XML_TEXT_NODE || k->type == XML_CDATA_SECTION_NODE) && !all_blank(k->content)))
                    return fail(c, line, "else", NULL,
                                "<else/> is a separator and must be empty; the else-steps follow it inside <if>");
            seen_else = true;
            cur = out_else;
            continue;
        }
        if (n->ns)
            return fail(c, line, elem_name(n), NULL, "<%s%s%s>: namespaces are not used in tasks",
                        n->ns->prefix ? show(shown, (const char *)n->ns->prefix) : "", n->ns->prefix ? ":" : "",
                        elem_name(n));
        const elem_def_t *d = find_elem(c, n, place, oname, out_else != NULL);
        if (!d)
            return -1;
        task_step_t *s = vec_push(cur);
        if (!s)
            return oom(c);
        if (parse_element(c, n, d, depth, owner, s) < 0)
            return -1;
        if (owner && owner->kind == TASK_CREATE && s->kind == TASK_BS_WRITE &&
            check_create_child(c, owner, s, &cur->v[0], line) < 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Entry point                                                               */
/* ------------------------------------------------------------------------ */

int task_parse(const char *xml, size_t len, const struct lwm2m_registry *reg, task_program_t **out, task_error_t *err)
{
    task_error_t scratch;
    if (!err)
        err = &scratch;
    memset(err, 0, sizeof *err);
    pctx_t c = {.reg = reg, .err = err};
    if (out)
        *out = NULL;
    if (!out || !reg)
        return fail(&c, 0, NULL, NULL, "no %s", out ? "object registry" : "output");
    if (!xml || !len)
        return fail(&c, 0, NULL, NULL, "empty document");
    if (len > TASK_MAX_XML)
        return fail(&c, 0, NULL, NULL, "task configuration too large (%zu bytes, limit %d)", len, TASK_MAX_XML);

    lwm2m_xml_error_t xe;
    xmlDocPtr doc = lwm2m_xml_read(xml, len, &xe);
    if (!doc) {
        switch (xe.status) {
        case LWM2M_XML_NOMEM: return oom(&c);
        case LWM2M_XML_DOCTYPE:
            return fail(&c, 0, NULL, NULL, "DOCTYPE and entity declarations are not allowed in task configurations");
        case LWM2M_XML_EMPTY: return fail(&c, 0, NULL, NULL, "empty document");
        default:
            fail(&c, xe.line, NULL, NULL, "malformed XML: %s", xe.msg[0] ? xe.msg : "not well-formed");
            err->column = xe.column > 0 ? xe.column : 0;
            return -1;
        }
    }

    int rc = -1;
    char shown[200];
    const xmlNode *root = xmlDocGetRootElement(doc);
    long line = lwm2m_xml_line(root);
    if (root->ns && !root->ns->prefix && strcmp(elem_name(root), "config") == 0) {
        fail(&c, line, "config", NULL, "<config> takes no namespace (xmlns)");
        goto out;
    }
    if (root->ns || strcmp(elem_name(root), "config") != 0) {
        fail(&c, line, elem_name(root), NULL, "the root element is <%s%s%s>; a task is <config>...</config>",
             root->ns && root->ns->prefix ? show(shown, (const char *)root->ns->prefix) : "",
             root->ns && root->ns->prefix ? ":" : "", elem_name(root));
        goto out;
    }
    if (root->properties) {
        fail(&c, line, "config", NULL, "<config> takes no attributes (found '%s')",
             show(shown, (const char *)root->properties->name));
        goto out;
    }
    if (!(c.prog = calloc(1, sizeof *c.prog))) {
        oom(&c);
        goto out;
    }
    stepvec_t steps = {0};
    rc = parse_list(&c, root, P_STEPS, 0, NULL, &steps, NULL);
    c.prog->steps = steps.v;
    c.prog->nsteps = steps.n;
    if (rc < 0) {
        task_program_free(&c.prog);
        goto out;
    }
    c.prog->nnodes = 0;
    c.prog->fingerprint = digest_steps(0xcbf29ce484222325ULL, c.prog->steps, c.prog->nsteps, &c.prog->nnodes);
    *out = c.prog;
    rc = 0;
out:
    xmlFreeDoc(doc);
    return rc;
}
