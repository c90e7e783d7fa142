/* Object registry: OMA object definition XMLs and task-key resolution.
 *
 * Storage: an array of object pointers sorted by id (binary search); each
 * object owns its strings and a resource array sorted by id. Loading is
 * all-or-nothing per call: documents are parsed into a staging vector first
 * and merged only when every one of them parsed, so a failed call leaves the
 * registry as it was. A later definition of an id replaces the earlier one and
 * frees it: pointers obtained before an add_* call that replaced the object are
 * no longer valid (the registry is loaded at start-up, read-only afterwards).
 *
 * XML safety: object XMLs can come from the operator (--objects DIR), so the
 * parser runs with no network (XML_PARSE_NONET), no DTD loading and no entity
 * substitution (neither XML_PARSE_DTDLOAD nor XML_PARSE_NOENT), no XInclude,
 * and the default libxml2 size limits (no XML_PARSE_HUGE). On top of that a
 * document with any DOCTYPE is refused: a SAX hook stops the parser as soon as
 * the DOCTYPE is seen, before its internal subset (and so any entity
 * declaration) is read. The OMA files never carry a DOCTYPE; refusing it closes
 * external entities (XXE) and entity expansion ("billion laughs") at once,
 * whatever the document's encoding (a byte scan for "<!DOCTYPE" would miss a
 * UTF-16 document). The parse itself is lwm2m_xml_read (xml_safe.c), shared
 * with the task parser. */
#include "server/lwm2m/registry.h"

#include "server/common/embedded.h"

#include <ctype.h>
#include <stdint.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "server/lwm2m/xml_safe.h"

#define REG_MAX_XML (4u * 1024u * 1024u)
/* Names longer than this are compared in full but only this much of them
 * takes part in the closest-name search (bounds the O(n*m) distance). */
#define REG_SUGGEST_MAX 128
#define REG_MAX_KEY_PARTS 32

typedef struct {
    lwm2m_objdef_t def;   /* def.res points at res */
    lwm2m_resdef_t *res;  /* sorted by id, unique ids */
} obj_t;

struct lwm2m_registry {
    obj_t **objs; /* sorted by id, unique ids */
    size_t n, cap;
};

typedef struct {
    obj_t **v;
    size_t n, cap;
} objvec_t;

/* ------------------------------------------------------------- messages */

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Prefixes an already written message with "prefix: " (file names). */
static void prefix_err(char *err, size_t errlen, const char *prefix)
{
    if (!err || !errlen)
        return;
    size_t plen = strlen(prefix) + 2;
    size_t mlen = strnlen(err, errlen - 1);
    if (plen >= errlen)
        return;
    if (mlen + plen > errlen - 1)
        mlen = errlen - 1 - plen;
    memmove(err + plen, err, mlen);
    memcpy(err, prefix, plen - 2);
    err[plen - 2] = ':';
    err[plen - 1] = ' ';
    err[plen + mlen] = '\0';
}

/* ---------------------------------------------------------------- names */

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static unsigned char ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Iterator over the normalised form of a string (see lwm2m_name_normalise),
 * so names compare without buffers. `n` bounds the input (SIZE_MAX: to NUL). */
typedef struct {
    const char *p, *end;
    bool started, pending_space;
} norm_it_t;

static norm_it_t norm_it(const char *s, size_t n)
{
    norm_it_t it = {s, n == SIZE_MAX ? s + strlen(s) : s + n, false, false};
    return it;
}

static int norm_next(norm_it_t *it)
{
    while (it->p < it->end) {
        unsigned char c = (unsigned char)*it->p;
        if (is_space(c)) {
            it->p++;
            if (it->started)
                it->pending_space = true;
            continue;
        }
        if (it->pending_space) {
            it->pending_space = false;
            return ' ';
        }
        it->p++;
        it->started = true;
        return ascii_lower(c);
    }
    return 0; /* trailing spaces are dropped */
}

static bool name_eq_n(const char *a, size_t an, const char *b)
{
    norm_it_t x = norm_it(a, an), y = norm_it(b, SIZE_MAX);
    for (;;) {
        int ca = norm_next(&x), cb = norm_next(&y);
        if (ca != cb)
            return false;
        if (!ca)
            return true;
    }
}

char *lwm2m_name_normalise(const char *in, char *buf, size_t cap)
{
    if (!buf || !cap)
        return buf;
    size_t k = 0;
    if (in) {
        norm_it_t it = norm_it(in, SIZE_MAX);
        int c;
        while (k + 1 < cap && (c = norm_next(&it)) != 0)
            buf[k++] = (char)c;
    }
    buf[k] = '\0';
    return buf;
}

/* Normalised copy of at most REG_SUGGEST_MAX characters, for distances. */
static size_t norm_short(const char *s, size_t n, char *buf)
{
    norm_it_t it = norm_it(s, n);
    size_t k = 0;
    int c;
    while (k < REG_SUGGEST_MAX && (c = norm_next(&it)) != 0)
        buf[k++] = (char)c;
    buf[k] = '\0';
    return k;
}

size_t lwm2m_name_distance(const char *a, size_t an, const char *b, size_t bn)
{
    if (an > REG_SUGGEST_MAX || bn > REG_SUGGEST_MAX)
        return SIZE_MAX;
    size_t row[REG_SUGGEST_MAX + 1];
    for (size_t j = 0; j <= bn; j++)
        row[j] = j;
    for (size_t i = 1; i <= an; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= bn; j++) {
            size_t up = row[j];
            size_t best = diag + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[bn];
}

/* Copies a name with whitespace runs (newlines, tabs, double spaces as in the
 * shipped 0.xml "LWM2M  Server URI") folded to one space, case kept. */
static char *fold_dup(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    size_t k = 0;
    bool space = false;
    for (const char *p = s; *p; p++) {
        if (is_space((unsigned char)*p)) {
            space = k > 0;
            continue;
        }
        if (space)
            d[k++] = ' ';
        space = false;
        d[k++] = *p;
    }
    d[k] = '\0';
    return d;
}

/* ------------------------------------------------------------- objects */

static void obj_free(obj_t *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->def.nres; i++) {
        free((char *)o->res[i].name);
        free((char *)o->res[i].range);
        free((char *)o->res[i].units);
    }
    free(o->res);
    free((char *)o->def.name);
    free((char *)o->def.urn);
    free((char *)o->def.version);
    free(o);
}

static void objvec_clear(objvec_t *v)
{
    for (size_t i = 0; i < v->n; i++)
        obj_free(v->v[i]);
    free(v->v);
    memset(v, 0, sizeof *v);
}

static int objvec_push(objvec_t *v, obj_t *o)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        obj_t **n = realloc(v->v, cap * sizeof *n);
        if (!n)
            return LWM2M_ERR_INTERNAL;
        v->v = n;
        v->cap = cap;
    }
    v->v[v->n++] = o;
    return 0;
}

static size_t reg_lower_bound(const lwm2m_registry_t *reg, uint16_t id)
{
    size_t lo = 0, hi = reg->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (reg->objs[mid]->def.id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Moves every staged object into the registry. Cannot fail once the capacity
 * is reserved, which is what makes add_* all-or-nothing. */
static int commit(lwm2m_registry_t *reg, objvec_t *stage)
{
    if (reg->n + stage->n > reg->cap) {
        size_t cap = reg->cap ? reg->cap : 16;
        while (cap < reg->n + stage->n)
            cap *= 2;
        obj_t **n = realloc(reg->objs, cap * sizeof *n);
        if (!n)
            return LWM2M_ERR_INTERNAL;
        reg->objs = n;
        reg->cap = cap;
    }
    for (size_t i = 0; i < stage->n; i++) {
        obj_t *o = stage->v[i];
        size_t at = reg_lower_bound(reg, o->def.id);
        if (at < reg->n && reg->objs[at]->def.id == o->def.id) {
            obj_free(reg->objs[at]);
            reg->objs[at] = o;
        } else {
            memmove(reg->objs + at + 1, reg->objs + at, (reg->n - at) * sizeof *reg->objs);
            reg->objs[at] = o;
            reg->n++;
        }
    }
    free(stage->v);
    memset(stage, 0, sizeof *stage);
    return 0;
}

/* ------------------------------------------------------------ XML walk */

static bool elem_is(const xmlNode *n, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && xmlStrcmp(n->name, (const xmlChar *)name) == 0;
}

static const xmlNode *first_child(const xmlNode *parent, const char *name)
{
    for (const xmlNode *c = parent->children; c; c = c->next)
        if (elem_is(c, name))
            return c;
    return NULL;
}

/* Text content of the first child element `name`, whitespace-trimmed,
 * malloc'd; "" if the element is absent or empty (*present says which).
 * NULL only on ENOMEM. */
static char *child_text(const xmlNode *parent, const char *name, bool *present)
{
    const xmlNode *c = first_child(parent, name);
    if (present)
        *present = c != NULL;
    xmlChar *raw = c ? xmlNodeGetContent(c) : NULL;
    const char *s = raw ? (const char *)raw : "";
    while (is_space((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && is_space((unsigned char)s[n - 1]))
        n--;
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    if (raw)
        xmlFree(raw);
    return d;
}

/* Strict decimal id 0..65534 (65535 is reserved, OMA-TS-Core 1.1 §7.1). */
static bool parse_id(const char *s, uint16_t *out)
{
    unsigned long v = 0;
    if (!*s)
        return false;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || p - s >= 5)
            return false;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v >= LWM2M_ID_NONE)
        return false;
    *out = (uint16_t)v;
    return true;
}

static int parse_flag(const char *s, const char *yes, const char *no, bool dflt, bool *out)
{
    if (!*s)
        *out = dflt;
    else if (strcasecmp(s, yes) == 0)
        *out = true;
    else if (strcasecmp(s, no) == 0)
        *out = false;
    else
        return -1;
    return 0;
}

/* Operations: "", R, W, RW, E (letters in any order, each at most once). */
static int parse_ops(const char *s, unsigned *out)
{
    unsigned ops = 0;
    for (const char *p = s; *p; p++) {
        unsigned bit = 0;
        switch (*p) {
        case 'R': case 'r': bit = LWM2M_OP_R; break;
        case 'W': case 'w': bit = LWM2M_OP_W; break;
        case 'E': case 'e': bit = LWM2M_OP_E; break;
        default: return -1;
        }
        if (ops & bit)
            return -1;
        ops |= bit;
    }
    *out = ops;
    return 0;
}

static int cmp_res(const void *a, const void *b)
{
    const lwm2m_resdef_t *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

#define OOM_IF(cond)                                                                               \
    do {                                                                                           \
        if (cond) {                                                                                \
            set_err(err, errlen, "out of memory");                                                 \
            rc = LWM2M_ERR_INTERNAL;                                                               \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        set_err(err, errlen, __VA_ARGS__);                                                         \
        rc = LWM2M_ERR_BAD_REQUEST;                                                                \
        goto out;                                                                                  \
    } while (0)

static int parse_item(const xmlNode *item, lwm2m_resdef_t *r, char *err, size_t errlen)
{
    int rc = 0;
    long line = xmlGetLineNo(item);
    char *name = NULL, *ops = NULL, *multi = NULL, *mand = NULL, *type = NULL;
    memset(r, 0, sizeof *r);

    xmlChar *idattr = xmlGetProp(item, (const xmlChar *)"ID");
    bool idok = idattr && parse_id((const char *)idattr, &r->id);
    if (idattr)
        xmlFree(idattr);
    if (!idok)
        FAIL("line %ld: Item has no valid ID attribute (0..65534)", line);

    name = child_text(item, "Name", NULL);
    ops = child_text(item, "Operations", NULL);
    multi = child_text(item, "MultipleInstances", NULL);
    mand = child_text(item, "Mandatory", NULL);
    type = child_text(item, "Type", NULL);
    r->range = child_text(item, "RangeEnumeration", NULL);
    r->units = child_text(item, "Units", NULL);
    OOM_IF(!name || !ops || !multi || !mand || !type || !r->range || !r->units);

    if (!*name)
        FAIL("line %ld: resource %u has no Name", line, r->id);
    if (parse_ops(ops, &r->ops) < 0)
        FAIL("line %ld: resource %u: invalid Operations '%s' (expected R, W, RW, E or empty)", line, r->id, ops);
    if (parse_flag(multi, "Multiple", "Single", false, &r->multiple) < 0)
        FAIL("line %ld: resource %u: invalid MultipleInstances '%s' (Single or Multiple)", line, r->id, multi);
    if (parse_flag(mand, "Mandatory", "Optional", false, &r->mandatory) < 0)
        FAIL("line %ld: resource %u: invalid Mandatory '%s' (Mandatory or Optional)", line, r->id, mand);
    if (!*type) {
        r->type = LWM2M_T_NONE; /* executables carry no type */
    } else {
        int t = lwm2m_type_parse(type);
        if (t < 0)
            FAIL("line %ld: resource %u: unknown Type '%s'", line, r->id, type);
        r->type = (lwm2m_type_t)t;
    }
    r->name = fold_dup(name);
    OOM_IF(!r->name);

out:
    free(name);
    free(ops);
    free(multi);
    free(mand);
    free(type);
    if (rc < 0) {
        free((char *)r->name);
        free((char *)r->range);
        free((char *)r->units);
        memset(r, 0, sizeof *r);
    }
    return rc;
}

static int parse_object(const xmlNode *node, obj_t **out, char *err, size_t errlen)
{
    int rc = 0;
    long line = xmlGetLineNo(node);
    char *name = NULL, *idtxt = NULL, *multi = NULL, *mand = NULL;
    bool have_id = false;
    obj_t *o = calloc(1, sizeof *o);
    OOM_IF(!o);

    xmlChar *otype = xmlGetProp(node, (const xmlChar *)"ObjectType");
    bool otype_ok = !otype || xmlStrcmp(otype, (const xmlChar *)"MODefinition") == 0;
    if (otype)
        xmlFree(otype);
    if (!otype_ok)
        FAIL("line %ld: Object has an ObjectType other than MODefinition", line);

    name = child_text(node, "Name", NULL);
    idtxt = child_text(node, "ObjectID", &have_id);
    multi = child_text(node, "MultipleInstances", NULL);
    mand = child_text(node, "Mandatory", NULL);
    o->def.urn = child_text(node, "ObjectURN", NULL);
    o->def.version = child_text(node, "ObjectVersion", NULL);
    OOM_IF(!name || !idtxt || !multi || !mand || !o->def.urn || !o->def.version);

    if (!have_id || !parse_id(idtxt, &o->def.id))
        FAIL("line %ld: Object has no valid ObjectID (0..65534)", line);
    if (!*name)
        FAIL("line %ld: object %u has no Name", line, o->def.id);
    if (parse_flag(multi, "Multiple", "Single", false, &o->def.multiple) < 0)
        FAIL("line %ld: object %u: invalid MultipleInstances '%s' (Single or Multiple)", line, o->def.id, multi);
    if (parse_flag(mand, "Mandatory", "Optional", false, &o->def.mandatory) < 0)
        FAIL("line %ld: object %u: invalid Mandatory '%s' (Mandatory or Optional)", line, o->def.id, mand);
    if (!*o->def.version) {
        /* ObjectVersion is optional and means 1.0 when absent (OMA-TS-Core 1.1 §7.2.2) */
        free((char *)o->def.version);
        o->def.version = strdup("1.0");
        OOM_IF(!o->def.version);
    }
    o->def.name = fold_dup(name);
    OOM_IF(!o->def.name);

    const xmlNode *resources = first_child(node, "Resources");
    size_t count = 0;
    for (const xmlNode *c = resources ? resources->children : NULL; c; c = c->next)
        count += elem_is(c, "Item");
    if (count) {
        o->res = calloc(count, sizeof *o->res);
        OOM_IF(!o->res);
        o->def.res = o->res;
        for (const xmlNode *c = resources->children; c; c = c->next) {
            if (!elem_is(c, "Item"))
                continue;
            rc = parse_item(c, &o->res[o->def.nres], err, errlen);
            if (rc < 0)
                goto out;
            o->def.nres++;
        }
        qsort(o->res, o->def.nres, sizeof *o->res, cmp_res);
        for (size_t i = 1; i < o->def.nres; i++)
            if (o->res[i].id == o->res[i - 1].id)
                FAIL("line %ld: object %u defines resource %u twice", line, o->def.id, o->res[i].id);
    }

out:
    free(name);
    free(idtxt);
    free(multi);
    free(mand);
    if (rc < 0) {
        obj_free(o);
        o = NULL;
    }
    *out = o;
    return rc;
}

/* Parses one document into `stage`. On failure `stage` is as it was. */
static int parse_doc(const char *buf, size_t len, objvec_t *stage, char *err, size_t errlen)
{
    if (!buf || !len) {
        set_err(err, errlen, "empty document");
        return LWM2M_ERR_BAD_REQUEST;
    }
    if (len > REG_MAX_XML) {
        set_err(err, errlen, "document too large (%zu bytes, limit %u)", len, REG_MAX_XML);
        return LWM2M_ERR_BAD_REQUEST;
    }

    /* no network, no DTD, no entities; any DOCTYPE refused (xml_safe.h) */
    lwm2m_xml_error_t xe;
    xmlDocPtr doc = lwm2m_xml_read(buf, len, &xe);
    if (!doc && xe.status == LWM2M_XML_NOMEM) {
        set_err(err, errlen, "out of memory");
        return LWM2M_ERR_INTERNAL;
    }
    if (!doc && xe.status == LWM2M_XML_DOCTYPE) {
        set_err(err, errlen, "DOCTYPE and entity declarations are not allowed in object definitions");
        return LWM2M_ERR_BAD_REQUEST;
    }
    if (!doc) {
        set_err(err, errlen, "line %d: malformed XML: %s", xe.line, xe.msg[0] ? xe.msg : "not well-formed");
        return LWM2M_ERR_BAD_REQUEST;
    }

    int rc = 0;
    size_t first = stage->n;
    const xmlNode *root = xmlDocGetRootElement(doc);
    if (!elem_is(root, "LWM2M")) {
        set_err(err, errlen, "root element is '%s', expected 'LWM2M'", root ? (const char *)root->name : "");
        rc = LWM2M_ERR_BAD_REQUEST;
        goto out;
    }
    for (const xmlNode *c = root->children; c; c = c->next) {
        if (!elem_is(c, "Object"))
            continue;
        obj_t *o = NULL;
        rc = parse_object(c, &o, err, errlen);
        if (rc < 0)
            goto out;
        if (objvec_push(stage, o) < 0) {
            obj_free(o);
            set_err(err, errlen, "out of memory");
            rc = LWM2M_ERR_INTERNAL;
            goto out;
        }
    }
    if (stage->n == first) {
        set_err(err, errlen, "no Object element under LWM2M");
        rc = LWM2M_ERR_BAD_REQUEST;
    }

out:
    if (rc < 0) {
        while (stage->n > first)
            obj_free(stage->v[--stage->n]);
    }
    if (doc)
        xmlFreeDoc(doc);
    return rc;
}

/* ------------------------------------------------------------- loading */

lwm2m_registry_t *lwm2m_registry_new(void)
{
    /* libxml2 2.9 wants its globals initialised once before use from threads */
    xmlInitParser();
    return calloc(1, sizeof(lwm2m_registry_t));
}

void lwm2m_registry_free(lwm2m_registry_t **reg)
{
    if (!reg || !*reg)
        return;
    for (size_t i = 0; i < (*reg)->n; i++)
        obj_free((*reg)->objs[i]);
    free((*reg)->objs);
    free(*reg);
    *reg = NULL;
}

int lwm2m_registry_add_xml(lwm2m_registry_t *reg, const char *buf, size_t len, char *err, size_t errlen)
{
    if (!reg) {
        set_err(err, errlen, "no registry");
        return LWM2M_ERR_BAD_REQUEST;
    }
    objvec_t stage = {0};
    int rc = parse_doc(buf, len, &stage, err, errlen);
    if (rc == 0 && (rc = commit(reg, &stage)) < 0)
        set_err(err, errlen, "out of memory");
    objvec_clear(&stage);
    return rc;
}

int lwm2m_registry_add_builtin(lwm2m_registry_t *reg, char *err, size_t errlen)
{
    if (!reg) {
        set_err(err, errlen, "no registry");
        return LWM2M_ERR_BAD_REQUEST;
    }
    objvec_t stage = {0};
    int rc = 0;
    for (size_t i = 0; i < lwdm_builtin_objects_count && lwdm_builtin_objects[i].name; i++) {
        const lwdm_embedded_file_t *f = &lwdm_builtin_objects[i];
        rc = parse_doc((const char *)f->data, f->len, &stage, err, errlen);
        if (rc < 0) {
            prefix_err(err, errlen, f->name);
            break;
        }
    }
    if (rc == 0 && (rc = commit(reg, &stage)) < 0)
        set_err(err, errlen, "out of memory");
    objvec_clear(&stage);
    return rc;
}

static bool has_xml_suffix(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && strcasecmp(name + n - 4, ".xml") == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads a regular file of at most REG_MAX_XML bytes. */
static int read_file(int dir_fd, const char *name, char **out, size_t *outlen, char *err, size_t errlen)
{
    int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        set_err(err, errlen, "cannot open: %s", strerror(errno));
        return LWM2M_ERR_NOT_FOUND;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        set_err(err, errlen, "not a regular file");
        return LWM2M_ERR_BAD_REQUEST;
    }
    if ((unsigned long long)st.st_size > REG_MAX_XML) {
        close(fd);
        set_err(err, errlen, "document too large (%lld bytes, limit %u)", (long long)st.st_size, REG_MAX_XML);
        return LWM2M_ERR_BAD_REQUEST;
    }
    /* read up to one byte past the limit: the file may grow after fstat */
    size_t cap = (size_t)st.st_size + 1u, n = 0;
    char *buf = malloc(cap);
    int rc = buf ? 0 : LWM2M_ERR_INTERNAL;
    while (rc == 0 && n <= REG_MAX_XML) {
        if (n == cap) {
            size_t ncap = cap * 2 > REG_MAX_XML + 1u ? REG_MAX_XML + 1u : cap * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                rc = LWM2M_ERR_INTERNAL;
                break;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            set_err(err, errlen, "read failed: %s", strerror(errno));
            rc = LWM2M_ERR_BAD_REQUEST;
        } else if (r == 0) {
            break;
        } else {
            n += (size_t)r;
        }
    }
    if (rc == LWM2M_ERR_INTERNAL)
        set_err(err, errlen, "out of memory");
    if (rc < 0) {
        free(buf);
        close(fd);
        return rc;
    }
    close(fd);
    if (n > REG_MAX_XML) {
        free(buf);
        set_err(err, errlen, "document too large (limit %u bytes)", REG_MAX_XML);
        return LWM2M_ERR_BAD_REQUEST;
    }
    *out = buf;
    *outlen = n;
    return 0;
}

int lwm2m_registry_add_dir(lwm2m_registry_t *reg, const char *dir, char *err, size_t errlen)
{
    if (!reg || !dir) {
        set_err(err, errlen, "no registry or directory");
        return LWM2M_ERR_BAD_REQUEST;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        set_err(err, errlen, "%s: cannot open directory: %s", dir, strerror(errno));
        if (dfd >= 0)
            close(dfd);
        return LWM2M_ERR_NOT_FOUND;
    }
    /* collect and sort the names: files load in a fixed order, so which of
     * two definitions of one id wins does not depend on readdir order */
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !has_xml_suffix(e->d_name))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 32;
            char **nn = realloc(names, ncap * sizeof *nn);
            if (!nn) {
                rc = LWM2M_ERR_INTERNAL;
                break;
            }
            names = nn;
            cap = ncap;
        }
        if (!(names[n] = strdup(e->d_name))) {
            rc = LWM2M_ERR_INTERNAL;
            break;
        }
        n++;
    }
    if (rc < 0)
        set_err(err, errlen, "out of memory");
    else if (n)
        qsort(names, n, sizeof *names, cmp_str);

    objvec_t stage = {0};
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char *buf = NULL;
        size_t len = 0;
        rc = read_file(dirfd(d), names[i], &buf, &len, err, errlen);
        if (rc == 0) {
            rc = parse_doc(buf, len, &stage, err, errlen);
            free(buf);
        }
        if (rc < 0) {
            char where[PATH_MAX + 2];
            snprintf(where, sizeof where, "%s/%s", dir, names[i]);
            prefix_err(err, errlen, where);
        }
    }
    if (rc == 0 && (rc = commit(reg, &stage)) < 0)
        set_err(err, errlen, "out of memory");
    objvec_clear(&stage);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

/* ------------------------------------------------------------- lookups */

size_t lwm2m_registry_count(const lwm2m_registry_t *reg)
{
    return reg ? reg->n : 0;
}

const lwm2m_objdef_t *lwm2m_registry_object(const lwm2m_registry_t *reg, uint16_t oid)
{
    if (!reg)
        return NULL;
    size_t at = reg_lower_bound(reg, oid);
    return at < reg->n && reg->objs[at]->def.id == oid ? &reg->objs[at]->def : NULL;
}

static const lwm2m_objdef_t *object_by_name_n(const lwm2m_registry_t *reg, const char *name, size_t n)
{
    if (!reg || !name)
        return NULL;
    for (size_t i = 0; i < reg->n; i++)
        if (name_eq_n(name, n, reg->objs[i]->def.name))
            return &reg->objs[i]->def;
    return NULL;
}

const lwm2m_objdef_t *lwm2m_registry_object_by_name(const lwm2m_registry_t *reg, const char *name)
{
    return object_by_name_n(reg, name, SIZE_MAX);
}

const lwm2m_objdef_t *lwm2m_registry_object_at(const lwm2m_registry_t *reg, size_t index)
{
    return reg && index < reg->n ? &reg->objs[index]->def : NULL;
}

const lwm2m_resdef_t *lwm2m_objdef_resource(const lwm2m_objdef_t *obj, uint16_t rid)
{
    if (!obj || !obj->res)
        return NULL;
    size_t lo = 0, hi = obj->nres;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (obj->res[mid].id < rid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < obj->nres && obj->res[lo].id == rid ? &obj->res[lo] : NULL;
}

static const lwm2m_resdef_t *resource_by_name_n(const lwm2m_objdef_t *obj, const char *name, size_t n)
{
    if (!obj || !name)
        return NULL;
    for (size_t i = 0; i < obj->nres; i++)
        if (name_eq_n(name, n, obj->res[i].name))
            return &obj->res[i];
    return NULL;
}

const lwm2m_resdef_t *lwm2m_objdef_resource_by_name(const lwm2m_objdef_t *obj, const char *name)
{
    return resource_by_name_n(obj, name, SIZE_MAX);
}

int lwm2m_registry_type(const lwm2m_registry_t *reg, uint16_t oid, uint16_t rid)
{
    const lwm2m_resdef_t *r = lwm2m_objdef_resource(lwm2m_registry_object(reg, oid), rid);
    return r ? (int)r->type : -1;
}

/* -------------------------------------------------------- key resolution */

typedef struct {
    const char *s; /* trimmed part of the key */
    size_t n;
} part_t;

typedef struct {
    lwm2m_path_t path;
    const lwm2m_resdef_t *res;
} resolved_t;

static bool part_is_digits(const part_t *p)
{
    if (!p->n)
        return false;
    for (size_t i = 0; i < p->n; i++)
        if (p->s[i] < '0' || p->s[i] > '9')
            return false;
    return true;
}

/* A numeric part as an id; -1 if out of range. Caller checked the digits. */
static long part_id(const part_t *p)
{
    long v = 0;
    for (size_t i = 0; i < p->n; i++) {
        v = v * 10 + (p->s[i] - '0');
        if (v >= (long)LWM2M_ID_NONE)
            return -1;
    }
    return v;
}

/* parts[a..b) as written in the key (separators included), e.g. a name that
 * itself contains a dot, as "TLS 1.3 Features To Use by Client" does. */
static part_t span(const part_t *parts, size_t a, size_t b)
{
    part_t r = {parts[a].s, (size_t)(parts[b - 1].s + parts[b - 1].n - parts[a].s)};
    return r;
}

/* How far a candidate name is from what the operator wrote: the Levenshtein
 * distance of the normalised names, except that a name containing the whole
 * query ("Firmware" in "Firmware Update") counts as one edit away, since an
 * abbreviated name is a more common slip than a name that merely has a
 * similar length. */
static size_t name_distance(const char *q, size_t qn, const char *c, size_t cn)
{
    if (qn >= 3 && qn < cn && memmem(c, cn, q, qn))
        return 1;
    return lwm2m_name_distance(q, qn, c, cn);
}

static const char *closest_object(const lwm2m_registry_t *reg, const part_t *q)
{
    char qa[REG_SUGGEST_MAX + 1], cb[REG_SUGGEST_MAX + 1];
    size_t qn = norm_short(q->s, q->n, qa), best = SIZE_MAX;
    const char *name = NULL;
    for (size_t i = 0; i < reg->n; i++) {
        size_t cn = norm_short(reg->objs[i]->def.name, SIZE_MAX, cb);
        size_t d = name_distance(qa, qn, cb, cn);
        if (d < best) {
            best = d;
            name = reg->objs[i]->def.name;
        }
    }
    return name;
}

static const char *closest_resource(const lwm2m_objdef_t *obj, const part_t *q)
{
    char qa[REG_SUGGEST_MAX + 1], cb[REG_SUGGEST_MAX + 1];
    size_t qn = norm_short(q->s, q->n, qa), best = SIZE_MAX;
    const char *name = NULL;
    for (size_t i = 0; i < obj->nres; i++) {
        size_t cn = norm_short(obj->res[i].name, SIZE_MAX, cb);
        size_t d = name_distance(qa, qn, cb, cn);
        if (d < best) {
            best = d;
            name = obj->res[i].name;
        }
    }
    return name;
}

static int numeric_id(const char *key, const part_t *p, const char *what, uint16_t *out, char *err, size_t errlen)
{
    if (!part_is_digits(p)) {
        set_err(err, errlen, "key '%s': %s '%.*s' is not a number", key, what, (int)p->n, p->s);
        return LWM2M_ERR_BAD_REQUEST;
    }
    long v = part_id(p);
    if (v < 0) {
        set_err(err, errlen, "key '%s': %s '%.*s' is out of range (0..65534)", key, what, (int)p->n, p->s);
        return LWM2M_ERR_BAD_REQUEST;
    }
    *out = (uint16_t)v;
    return 0;
}

/* object [. instance [. resource [. resource-instance]]] from parts[start..n) */
static int resolve_parts(const lwm2m_registry_t *reg, const char *key, const part_t *parts, size_t n,
                         size_t start, resolved_t *out, char *err, size_t errlen)
{
    resolved_t r = {.path = {.len = 0}};
    const lwm2m_objdef_t *obj = NULL;
    size_t i = start;
    int rc;

    /* object: a number, or a name running up to the first numeric part */
    if (part_is_digits(&parts[i])) {
        if ((rc = numeric_id(key, &parts[i], "object id", &r.path.ids[0], err, errlen)) < 0)
            return rc;
        obj = lwm2m_registry_object(reg, r.path.ids[0]);
        i++;
    } else {
        size_t j = i + 1;
        while (j < n && !part_is_digits(&parts[j]))
            j++;
        part_t name = span(parts, i, j);
        obj = object_by_name_n(reg, name.s, name.n);
        /* "LwM2M Security.two.Security Mode": the object is there, the
         * instance is what is wrong; say so rather than "unknown object" */
        for (size_t k = j - 1; !obj && k > i; k--) {
            part_t head = span(parts, i, k);
            if (object_by_name_n(reg, head.s, head.n)) {
                set_err(err, errlen, "key '%s': instance '%.*s' is not a number", key, (int)parts[k].n, parts[k].s);
                return LWM2M_ERR_BAD_REQUEST;
            }
        }
        if (!obj) {
            const char *best = closest_object(reg, &name);
            if (best)
                set_err(err, errlen, "unknown object '%.*s'; did you mean '%s'?", (int)name.n, name.s, best);
            else
                set_err(err, errlen, "unknown object '%.*s' (no object definitions loaded)", (int)name.n, name.s);
            return LWM2M_ERR_NOT_FOUND;
        }
        r.path.ids[0] = obj->id;
        i = j;
    }
    r.path.len = 1;

    if (i < n) { /* instance: always a number */
        if ((rc = numeric_id(key, &parts[i], "instance", &r.path.ids[1], err, errlen)) < 0)
            return rc;
        r.path.len = 2;
        i++;
    }

    if (i < n) { /* resource */
        size_t ri_at = n; /* index of a resource-instance part, if any */
        if (part_is_digits(&parts[i])) {
            if ((rc = numeric_id(key, &parts[i], "resource id", &r.path.ids[2], err, errlen)) < 0)
                return rc;
            r.res = lwm2m_objdef_resource(obj, r.path.ids[2]); /* NULL: allowed by number */
            if (i + 1 < n)
                ri_at = i + 1;
            if (i + 2 < n) {
                set_err(err, errlen, "key '%s': too many parts (object.instance.resource[.instance])", key);
                return LWM2M_ERR_BAD_REQUEST;
            }
        } else if (!obj) {
            set_err(err, errlen, "key '%s': object %u has no definition; name its resources by number", key,
                    r.path.ids[0]);
            return LWM2M_ERR_NOT_FOUND;
        } else {
            /* the whole rest as one name first (names may contain dots), then
             * the rest minus a trailing numeric resource-instance part */
            part_t name = span(parts, i, n);
            r.res = resource_by_name_n(obj, name.s, name.n);
            if (!r.res && n - i >= 2 && part_is_digits(&parts[n - 1])) {
                name = span(parts, i, n - 1);
                r.res = resource_by_name_n(obj, name.s, name.n);
                ri_at = n - 1;
            }
            if (!r.res) {
                const char *best = closest_resource(obj, &name);
                if (best)
                    set_err(err, errlen, "unknown resource '%.*s' in object %u (%s); did you mean '%s'?",
                            (int)name.n, name.s, obj->id, obj->name, best);
                else
                    set_err(err, errlen, "unknown resource '%.*s' in object %u (%s), which defines no resources",
                            (int)name.n, name.s, obj->id, obj->name);
                return LWM2M_ERR_NOT_FOUND;
            }
            r.path.ids[2] = r.res->id;
        }
        r.path.len = 3;
        if (ri_at < n) {
            if ((rc = numeric_id(key, &parts[ri_at], "resource instance", &r.path.ids[3], err, errlen)) < 0)
                return rc;
            r.path.len = 4;
        }
    }
    for (unsigned k = r.path.len; k < 4; k++)
        r.path.ids[k] = LWM2M_ID_NONE; /* as lwm2m_path_parse leaves them */
    *out = r;
    return 0;
}

int lwm2m_registry_resolve_key(const lwm2m_registry_t *reg, const char *key, lwm2m_path_t *out,
                               const lwm2m_resdef_t **res, char *err, size_t errlen)
{
    if (!reg || !key || !out) {
        set_err(err, errlen, "empty key");
        return LWM2M_ERR_BAD_REQUEST;
    }
    const char *s = key, *e = key + strlen(key);
    while (s < e && is_space((unsigned char)*s))
        s++;
    while (e > s && is_space((unsigned char)e[-1]))
        e--;

    /* Separator: a key written as a path ("/0/2/0", "0/2/0") splits on '/';
     * any key with a dot splits on '.', so names may contain '/' (object 0
     * has "DTLS/TLS Ciphersuite"). */
    char sep = '.';
    bool trailing_ok = false;
    if (s < e && *s == '/') {
        sep = '/';
        s++;
        trailing_ok = true;
    } else if (!memchr(s, '.', (size_t)(e - s)) && memchr(s, '/', (size_t)(e - s))) {
        sep = '/';
        trailing_ok = true;
    }
    if (trailing_ok && e > s && e[-1] == '/')
        e--;
    if (s >= e) {
        set_err(err, errlen, "empty key");
        return LWM2M_ERR_BAD_REQUEST;
    }

    part_t parts[REG_MAX_KEY_PARTS];
    size_t n = 0;
    for (const char *p = s;;) {
        const char *q = memchr(p, sep, (size_t)(e - p));
        const char *pe = q ? q : e;
        const char *a = p, *b = pe;
        while (a < b && is_space((unsigned char)*a))
            a++;
        while (b > a && is_space((unsigned char)b[-1]))
            b--;
        if (a == b) {
            set_err(err, errlen, "key '%s': empty part", key);
            return LWM2M_ERR_BAD_REQUEST;
        }
        if (n == REG_MAX_KEY_PARTS) {
            set_err(err, errlen, "key '%s': too many parts", key);
            return LWM2M_ERR_BAD_REQUEST;
        }
        parts[n].s = a;
        parts[n].n = (size_t)(b - a);
        n++;
        if (!q)
            break;
        p = q + 1;
    }

    resolved_t r;
    int rc = resolve_parts(reg, key, parts, n, 0, &r, err, errlen);
    /* "Device.<object name>...": the seeds write some keys under a "Device."
     * prefix (`Device.Connectivity Statistics.0.Collection Period`). "Device"
     * is also the name of object 3, so the plain reading is tried first and
     * the prefix only when the part after it is a name, not an instance. */
    if (rc < 0 && n >= 2 && name_eq_n(parts[0].s, parts[0].n, "device") && !part_is_digits(&parts[1])) {
        /* Whose error to report when both readings fail: the prefixed one if
         * it has the object.instance shape ("Device.Conectivity Statistics.0.
         * Start" -> unknown object), else the plain one ("Device.x.Manufacturer"
         * -> instance 'x' is not a number). */
        bool shaped = false;
        for (size_t k = 2; k < n; k++)
            shaped = shaped || part_is_digits(&parts[k]);
        int rc2 = resolve_parts(reg, key, parts, n, 1, &r, shaped ? err : NULL, shaped ? errlen : 0);
        if (rc2 == 0 || shaped)
            rc = rc2;
    }
    if (rc < 0)
        return rc;
    if (err && errlen)
        err[0] = '\0'; /* a failed first reading may have written there */
    *out = r.path;
    if (res)
        *res = r.res;
    return 0;
}
