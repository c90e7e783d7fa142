/* Typed JSON values for the REST API (valjson.h, docs/management.md
 * "Values in JSON"). Pure code: jansson values in and out, no I/O.
 *
 * Reading a body appends records to the caller's set as they are converted
 * and, on any error, cuts the set back to the size it had on entry
 * (lwm2m__records_truncate), so a failed call leaves `out` as it was. Every error names the member at fault the way a
 * client wrote it ("records[1].value", "value[2]") so the API can put it in
 * the problem's `field`. */
#include "server/lwm2m/valjson.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/lwm2m/codec.h"
#include "server/lwm2m/codec_int.h"
#include "server/lwm2m/registry.h"

/* ============================================================ formats */

static const struct {
    const char *slug;
    int cf;
} formats[] = {
    {"tlv", LWM2M_CF_TLV},          {"senml-json", LWM2M_CF_SENML_JSON}, {"senml-cbor", LWM2M_CF_SENML_CBOR},
    {"lwm2m-cbor", LWM2M_CF_LWM2M_CBOR}, {"text", LWM2M_CF_TEXT},     {"opaque", LWM2M_CF_OPAQUE},
    {"link", LWM2M_CF_LINK},
};

int lwm2m_format_parse(const char *name)
{
    if (!name)
        return -1;
    for (size_t k = 0; k < sizeof formats / sizeof formats[0]; k++)
        if (strcasecmp(name, formats[k].slug) == 0)
            return formats[k].cf;
    return -1;
}

const char *lwm2m_format_slug(int cf)
{
    if (cf == LWM2M_CF_OLD_TLV)
        return "tlv";
    for (size_t k = 0; k < sizeof formats / sizeof formats[0]; k++)
        if (formats[k].cf == cf)
            return formats[k].slug;
    return NULL;
}

/* ====================================================== records -> JSON */

static const lwm2m_resdef_t *resdef_of(const struct lwm2m_registry *reg, const lwm2m_path_t *p)
{
    if (!reg || p->len < 3)
        return NULL;
    return lwm2m_objdef_resource(lwm2m_registry_object(reg, p->ids[0]), p->ids[2]);
}

/* JSON strings must be UTF-8: invalid bytes are shown as U+FFFD. */
static json_t *text_json(const uint8_t *s, size_t n)
{
    if (lwm2m__utf8_valid(s, n))
        return json_stringn((const char *)s, n);
    lwm2m__buf_t b;
    lwm2m__buf_init(&b);
    for (size_t i = 0; i < n;) {
        size_t k = 1;
        if (s[i] >= 0x80) {
            k = s[i] >= 0xF0 ? 4 : s[i] >= 0xE0 ? 3 : 2;
            if (k > n - i || !lwm2m__utf8_valid(s + i, k))
                k = 0; /* not a whole, valid character here */
        }
        if (k == 0) {
            lwm2m__buf_put(&b, "\xEF\xBF\xBD", 3);
            i++;
        } else {
            lwm2m__buf_put(&b, s + i, k);
            i += k;
        }
    }
    uint8_t *t;
    size_t tn;
    if (lwm2m__buf_finish(&b, &t, &tn) != LWM2M_OK)
        return NULL;
    json_t *j = json_stringn((const char *)t, tn);
    free(t);
    return j;
}

static json_t *hex_json(const uint8_t *s, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    if (n > (SIZE_MAX - 1) / 2)
        return NULL;
    char *h = malloc(2 * n + 1);
    if (!h)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        h[2 * i] = digits[s[i] >> 4];
        h[2 * i + 1] = digits[s[i] & 15];
    }
    json_t *j = json_stringn(h, 2 * n);
    free(h);
    return j;
}

static json_t *value_json(const lwm2m_record_t *r)
{
    char tmp[32];
    switch (r->type) {
    case LWM2M_T_STRING:
    case LWM2M_T_CORELNK:
        return text_json(r->bytes ? r->bytes : (const uint8_t *)"", r->nbytes);
    case LWM2M_T_OPAQUE:
        return hex_json(r->bytes, r->nbytes);
    case LWM2M_T_INTEGER:
    case LWM2M_T_TIME:
        return json_integer((json_int_t)r->v.i);
    case LWM2M_T_UNSIGNED:
        if (r->v.u <= (uint64_t)INT64_MAX)
            return json_integer((json_int_t)r->v.u);
        snprintf(tmp, sizeof tmp, "%" PRIu64, r->v.u);
        return json_string(tmp);
    case LWM2M_T_FLOAT:
        return isfinite(r->v.f) ? json_real(r->v.f) : json_null();
    case LWM2M_T_BOOLEAN:
        return json_boolean(r->v.b);
    case LWM2M_T_OBJLNK:
        snprintf(tmp, sizeof tmp, "%u:%u", (unsigned)r->v.lnk.oid, (unsigned)r->v.lnk.iid);
        return json_string(tmp);
    case LWM2M_T_NONE:
    default:
        return json_null();
    }
}

/* The value as the definition reads it, in *c (which owns a copy of any
 * bytes; free with lwm2m__record_free). 0 or LWM2M_ERR_INTERNAL. */
static int shown_record(const struct lwm2m_registry *reg, const lwm2m_record_t *r, lwm2m_record_t *c)
{
    *c = *r;
    c->bytes = NULL;
    if (lwm2m__type_has_bytes(r->type)) {
        c->bytes = malloc(r->nbytes + 1);
        if (!c->bytes)
            return LWM2M_ERR_INTERNAL;
        if (r->nbytes)
            memcpy(c->bytes, r->bytes, r->nbytes);
        c->bytes[r->nbytes] = '\0';
    }
    const lwm2m_resdef_t *def = resdef_of(reg, &r->path);
    if (!def || def->type == LWM2M_T_NONE || def->type == c->type)
        return LWM2M_OK;
    lwm2m_type_t want = def->type, have = c->type;
    if (have == LWM2M_T_OPAQUE) {
        (void)lwm2m_record_retype(c, want); /* raw TLV bytes; unchanged if they do not fit */
    } else if (have == LWM2M_T_STRING && want == LWM2M_T_OBJLNK) {
        uint16_t oid, iid;
        if (lwm2m__parse_objlnk((const char *)c->bytes, c->nbytes, &oid, &iid) == LWM2M_OK) {
            lwm2m__record_free(c);
            c->type = LWM2M_T_OBJLNK;
            c->v.lnk.oid = oid;
            c->v.lnk.iid = iid;
        }
    } else if ((have == LWM2M_T_STRING && want == LWM2M_T_CORELNK) ||
               (have == LWM2M_T_CORELNK && want == LWM2M_T_STRING) ||
               (have == LWM2M_T_INTEGER && want == LWM2M_T_TIME) ||
               (have == LWM2M_T_TIME && want == LWM2M_T_INTEGER)) {
        c->type = want; /* same value, the defined name */
    }
    return LWM2M_OK;
}

static const char *name_of(const struct lwm2m_registry *reg, const lwm2m_path_t *p)
{
    if (!reg || p->len == 0)
        return NULL;
    const lwm2m_objdef_t *obj = lwm2m_registry_object(reg, p->ids[0]);
    if (!obj)
        return NULL;
    if (p->len < 3)
        return obj->name;
    const lwm2m_resdef_t *res = lwm2m_objdef_resource(obj, p->ids[2]);
    return res ? res->name : NULL;
}

static json_t *record_json(const struct lwm2m_registry *reg, const lwm2m_record_t *r)
{
    lwm2m_record_t c;
    if (shown_record(reg, r, &c) != LWM2M_OK)
        return NULL;
    char path[32];
    json_t *o = json_object();
    bool ok = o && lwm2m_path_format(&c.path, path, sizeof path) > 0 &&
              json_object_set_new(o, "path", json_string(path)) == 0;
    const char *name = name_of(reg, &c.path);
    if (ok && name && *name)
        ok = json_object_set_new(o, "name", json_string(name)) == 0;
    ok = ok && json_object_set_new(o, "type", json_string(lwm2m_type_name(c.type))) == 0 &&
         json_object_set_new(o, "value", value_json(&c)) == 0;
    lwm2m__record_free(&c);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *lwm2m_records_to_json(const struct lwm2m_registry *reg, const lwm2m_records_t *rs)
{
    if (!rs)
        return NULL;
    json_t *a = json_array();
    if (!a)
        return NULL;
    for (size_t i = 0; i < rs->n; i++) {
        if (json_array_append_new(a, record_json(reg, &rs->recs[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* ====================================================== JSON -> records */

typedef struct {
    const struct lwm2m_registry *reg;
    const lwm2m_path_t *base;
    lwm2m_records_t *out;
    size_t n0;
    char *field;
    size_t fieldlen;
    char *err;
    size_t errlen;
    int *src;      /* per appended record: index in "records", -1 for "value" */
    size_t nsrc, capsrc;
} rd_t;

__attribute__((format(printf, 3, 4))) static int bad(rd_t *c, const char *field, const char *fmt, ...)
{
    if (c->field && c->fieldlen)
        snprintf(c->field, c->fieldlen, "%s", field);
    if (c->err && c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    return LWM2M_ERR_BAD_REQUEST;
}

static int oom(rd_t *c)
{
    if (c->field && c->fieldlen)
        c->field[0] = '\0';
    if (c->err && c->errlen)
        snprintf(c->err, c->errlen, "out of memory");
    return LWM2M_ERR_INTERNAL;
}

static void fmt_path(const lwm2m_path_t *p, char *buf, size_t cap)
{
    if (lwm2m_path_format(p, buf, cap) < 0)
        snprintf(buf, cap, "?");
}

/* A numeric RangeEnumeration "A..B" (both integers); false for anything else
 * ("0..255 bytes", lists, prose), which is then not enforced. */
static bool numeric_range(const char *s, int64_t *lo, int64_t *hi)
{
    const char *dots = s ? strstr(s, "..") : NULL;
    if (!dots)
        return false;
    return lwm2m__parse_i64(s, (size_t)(dots - s), lo) == LWM2M_OK &&
           lwm2m__parse_i64(dots + 2, strlen(dots + 2), hi) == LWM2M_OK && *lo <= *hi;
}

/* The same for a Float resource, whose bounds may be decimals ("-90.0..90.0"). */
static bool float_range(const char *s, double *lo, double *hi)
{
    const char *dots = s ? strstr(s, "..") : NULL;
    if (!dots)
        return false;
    return lwm2m__parse_double(s, (size_t)(dots - s), lo) == LWM2M_OK &&
           lwm2m__parse_double(dots + 2, strlen(dots + 2), hi) == LWM2M_OK && *lo <= *hi;
}

/* Converts one JSON value to a record of type t at p and appends it. */
static int put_value(rd_t *c, const lwm2m_path_t *p, lwm2m_type_t t, const lwm2m_resdef_t *def, const json_t *v,
                     const char *field, int src)
{
    lwm2m_record_t r;
    memset(&r, 0, sizeof r);
    r.path = *p;
    r.type = t;
    uint8_t *owned = NULL;
    const char *tn = lwm2m_type_name(t);
    switch (t) {
    case LWM2M_T_INTEGER:
    case LWM2M_T_TIME:
        if (!json_is_integer(v))
            return bad(c, field, "%s must be a JSON integer", tn);
        r.v.i = (int64_t)json_integer_value(v);
        break;
    case LWM2M_T_UNSIGNED:
        if (json_is_integer(v)) {
            if (json_integer_value(v) < 0)
                return bad(c, field, "unsigned must not be negative");
            r.v.u = (uint64_t)json_integer_value(v);
        } else if (!json_is_string(v) ||
                   lwm2m__parse_u64(json_string_value(v), json_string_length(v), &r.v.u) != LWM2M_OK) {
            return bad(c, field, "unsigned must be a JSON integer from 0 to 18446744073709551615");
        }
        break;
    case LWM2M_T_FLOAT:
        if (!json_is_number(v))
            return bad(c, field, "float must be a JSON number");
        r.v.f = json_number_value(v);
        break;
    case LWM2M_T_BOOLEAN:
        if (!json_is_boolean(v))
            return bad(c, field, "boolean must be true or false");
        r.v.b = json_is_true(v);
        break;
    case LWM2M_T_OBJLNK:
        if (!json_is_string(v) ||
            lwm2m__parse_objlnk(json_string_value(v), json_string_length(v), &r.v.lnk.oid, &r.v.lnk.iid) != LWM2M_OK)
            return bad(c, field, "objlnk must be a string \"oid:iid\" (each 0..65535)");
        break;
    case LWM2M_T_OPAQUE: {
        if (!json_is_string(v))
            return bad(c, field, "opaque must be a string of hex digits");
        const char *h = json_string_value(v);
        size_t n = json_string_length(v);
        if (n % 2 != 0)
            return bad(c, field, "opaque must have an even number of hex digits");
        owned = malloc(n / 2 + 1);
        if (!owned)
            return oom(c);
        for (size_t i = 0; i < n / 2; i++) {
            int hi = lwm2m_hex_digit(h[2 * i]), lo = lwm2m_hex_digit(h[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                free(owned);
                return bad(c, field, "opaque must be a string of hex digits");
            }
            owned[i] = (uint8_t)(hi << 4 | lo);
        }
        r.bytes = owned;
        r.nbytes = n / 2;
        break;
    }
    case LWM2M_T_STRING:
    case LWM2M_T_CORELNK:
        if (!json_is_string(v))
            return bad(c, field, "%s must be a JSON string", tn);
        r.bytes = (uint8_t *)(uintptr_t)json_string_value(v);
        r.nbytes = json_string_length(v);
        break;
    case LWM2M_T_NONE:
    default:
        return bad(c, field, "a resource without a type takes no value");
    }
    /* the definition's numeric range (RangeEnumeration "A..B") */
    int64_t lo, hi;
    double flo, fhi;
    if (def && t == LWM2M_T_FLOAT && float_range(def->range, &flo, &fhi) && !(r.v.f >= flo && r.v.f <= fhi)) {
        free(owned);
        return bad(c, field, "%g is outside the range %s of %s", r.v.f, def->range, def->name ? def->name : "the resource");
    }
    if (def && t != LWM2M_T_FLOAT && numeric_range(def->range, &lo, &hi)) {
        bool out;
        char num[40] = "";
        switch (t) {
        case LWM2M_T_INTEGER:
        case LWM2M_T_TIME:
            out = r.v.i < lo || r.v.i > hi;
            snprintf(num, sizeof num, "%" PRId64, r.v.i);
            break;
        case LWM2M_T_UNSIGNED:
            out = hi < 0 || r.v.u > (uint64_t)hi || (lo > 0 && r.v.u < (uint64_t)lo);
            snprintf(num, sizeof num, "%" PRIu64, r.v.u);
            break;
        default:
            out = false;
            break;
        }
        if (out) {
            free(owned);
            return bad(c, field, "%s is outside the range %s of %s", num, def->range,
                       def->name ? def->name : "the resource");
        }
    }
    if (c->nsrc == c->capsrc) {
        size_t ncap = c->capsrc ? c->capsrc * 2 : 16;
        int *ns = ncap > SIZE_MAX / sizeof *ns ? NULL : realloc(c->src, ncap * sizeof *ns);
        if (!ns) {
            free(owned);
            return oom(c);
        }
        c->src = ns;
        c->capsrc = ncap;
    }
    int rc = lwm2m_records_add(c->out, &r); /* copies the bytes */
    free(owned);
    if (rc != LWM2M_OK)
        return oom(c);
    c->src[c->nsrc++] = src;
    return LWM2M_OK;
}

/* One value V (with an optional "type" T) for path p: finds the type,
 * expands multiple-instance resources, converts. `prefix` is "" for the
 * {"value"} form, "records[i]." for a record. */
static int put_entry(rd_t *c, const lwm2m_path_t *p, const json_t *v, const json_t *jtype, const char *prefix, int src)
{
    char vfield[48], tfield[48], pbuf[32];
    snprintf(vfield, sizeof vfield, "%svalue", prefix);
    snprintf(tfield, sizeof tfield, "%stype", prefix);
    fmt_path(p, pbuf, sizeof pbuf);
    int t = -1;
    if (jtype) {
        if (!json_is_string(jtype))
            return bad(c, tfield, "type must be a string such as \"integer\"");
        t = lwm2m_type_parse(json_string_value(jtype));
        if (t < 0)
            return bad(c, tfield, "unknown type \"%s\" (string, integer, unsigned, float, boolean, opaque, time, objlnk, corelnk)",
                       json_string_value(jtype));
        if (t == LWM2M_T_NONE)
            return bad(c, tfield, "type none takes no value");
    }
    const lwm2m_resdef_t *def = resdef_of(c->reg, p);
    if (def) {
        if (def->type == LWM2M_T_NONE)
            return bad(c, vfield, "%s (%s) is executable and takes no value", pbuf, def->name ? def->name : "");
        if (t >= 0 && t != (int)def->type)
            return bad(c, tfield, "type %s does not match the definition of %s (%s)", lwm2m_type_name((lwm2m_type_t)t),
                       pbuf, lwm2m_type_name(def->type));
        t = (int)def->type;
    } else if (t < 0) {
        return bad(c, tfield, "%s is not in the object definitions: give its type", pbuf);
    }
    bool many = json_is_array(v) || json_is_object(v);
    if (p->len == 4 || !many) {
        if (p->len == 3 && def && def->multiple)
            return bad(c, vfield, "%s (%s) has multiple instances: give a list or an object of instances", pbuf,
                       def->name ? def->name : "");
        return put_value(c, p, (lwm2m_type_t)t, def, v, vfield, src);
    }
    /* /o/i/r with a list or an object: one record per resource instance */
    if (def && !def->multiple)
        return bad(c, vfield, "%s (%s) is a single-instance resource: give one value", pbuf, def->name ? def->name : "");
    size_t n = json_is_array(v) ? json_array_size(v) : json_object_size(v);
    if (n == 0)
        return bad(c, vfield, "give at least one resource instance");
    lwm2m_path_t ri = *p;
    ri.len = 4;
    char efield[80];
    if (json_is_array(v)) {
        if (n >= LWM2M_ID_NONE)
            return bad(c, vfield, "too many resource instances");
        for (size_t k = 0; k < n; k++) {
            ri.ids[3] = (uint16_t)k;
            snprintf(efield, sizeof efield, "%s[%zu]", vfield, k);
            int rc = put_value(c, &ri, (lwm2m_type_t)t, def, json_array_get(v, k), efield, src);
            if (rc != LWM2M_OK)
                return rc;
        }
        return LWM2M_OK;
    }
    const char *key;
    json_t *e;
    json_object_foreach((json_t *)(uintptr_t)v, key, e) {
        uint64_t id;
        snprintf(efield, sizeof efield, "%s[%.16s]", vfield, key);
        if (lwm2m__parse_u64(key, strlen(key), &id) != LWM2M_OK || id >= LWM2M_ID_NONE)
            return bad(c, efield, "a resource instance id is a number from 0 to 65534");
        ri.ids[3] = (uint16_t)id;
        int rc = put_value(c, &ri, (lwm2m_type_t)t, def, e, efield, src);
        if (rc != LWM2M_OK)
            return rc;
    }
    return LWM2M_OK;
}

static int put_record(rd_t *c, size_t i, const json_t *rec)
{
    char prefix[32], f[64];
    snprintf(prefix, sizeof prefix, "records[%zu].", i);
    if (!json_is_object(rec)) {
        snprintf(f, sizeof f, "records[%zu]", i);
        return bad(c, f, "a record is an object {\"path\": .., \"value\": ..}");
    }
    const char *key;
    json_t *e;
    json_object_foreach((json_t *)(uintptr_t)rec, key, e) {
        if (strcmp(key, "path") != 0 && strcmp(key, "value") != 0 && strcmp(key, "type") != 0 &&
            strcmp(key, "name") != 0) {
            snprintf(f, sizeof f, "records[%zu].%.24s", i, key);
            return bad(c, f, "unknown member (a record has path, value and, optionally, type)");
        }
    }
    const json_t *jp = json_object_get(rec, "path");
    const json_t *v = json_object_get(rec, "value");
    snprintf(f, sizeof f, "%spath", prefix);
    if (!jp)
        return bad(c, f, "missing");
    lwm2m_path_t p;
    if (!json_is_string(jp) || lwm2m_path_parse(json_string_value(jp), json_string_length(jp), &p) != LWM2M_OK ||
        strlen(json_string_value(jp)) != json_string_length(jp))
        return bad(c, f, "not a path such as \"/3/0/14\"");
    char pbuf[32], bbuf[32];
    fmt_path(&p, pbuf, sizeof pbuf);
    fmt_path(c->base, bbuf, sizeof bbuf);
    if (!lwm2m_path_starts_with(&p, c->base))
        return bad(c, f, "%s is not at or below the request path %s", pbuf, bbuf);
    if (p.len < 3)
        return bad(c, f, "a value needs a resource path (/o/i/r or /o/i/r/ri), not %s", pbuf);
    if (!v) {
        snprintf(f, sizeof f, "%svalue", prefix);
        return bad(c, f, "missing");
    }
    return put_entry(c, &p, v, json_object_get(rec, "type"), prefix, (int)i);
}

typedef struct {
    lwm2m_path_t path;
    int src;
} tagged_t;

static int cmp_tagged(const void *a, const void *b)
{
    const tagged_t *x = a, *y = b;
    int k = lwm2m_path_compare(&x->path, &y->path);
    if (k != 0)
        return k;
    return (x->src > y->src) - (x->src < y->src);
}

/* Two records for one path, or one below another: names the later one. */
static int check_overlaps(rd_t *c)
{
    size_t n = c->out->n - c->n0;
    if (n < 2)
        return LWM2M_OK;
    tagged_t *t = malloc(n * sizeof *t);
    if (!t)
        return oom(c);
    for (size_t i = 0; i < n; i++) {
        t[i].path = c->out->recs[c->n0 + i].path;
        t[i].src = c->src[i];
    }
    qsort(t, n, sizeof *t, cmp_tagged);
    int rc = LWM2M_OK;
    for (size_t i = 1; i < n; i++) {
        if (!lwm2m_path_starts_with(&t[i].path, &t[i - 1].path))
            continue;
        char a[32], b[32], f[48];
        fmt_path(&t[i - 1].path, a, sizeof a);
        fmt_path(&t[i].path, b, sizeof b);
        int later = t[i].src > t[i - 1].src ? t[i].src : t[i - 1].src;
        if (later < 0)
            snprintf(f, sizeof f, "value");
        else
            snprintf(f, sizeof f, "records[%d].path", later);
        rc = lwm2m_path_equal(&t[i].path, &t[i - 1].path) ? bad(c, f, "%s is given twice", b)
                                                            : bad(c, f, "%s lies below %s, which is also given", b, a);
        break;
    }
    free(t);
    return rc;
}

int lwm2m_records_from_json(const struct lwm2m_registry *reg, const lwm2m_path_t *base, const json_t *body,
                            lwm2m_records_t *out, char *field, size_t fieldlen, char *err, size_t errlen)
{
    rd_t c = {.reg = reg, .base = base, .out = out, .field = field, .fieldlen = fieldlen, .err = err, .errlen = errlen};
    if (field && fieldlen)
        field[0] = '\0';
    if (err && errlen)
        err[0] = '\0';
    if (!base || !out || base->len > 4)
        return bad(&c, "", "no request path");
    c.n0 = out->n;
    if (!json_is_object(body))
        return bad(&c, "body", "the body must be a JSON object with \"value\" or \"records\"");
    const json_t *v = json_object_get(body, "value");
    const json_t *recs = json_object_get(body, "records");
    int rc;
    if (v && recs) {
        rc = bad(&c, "records", "give either \"value\" or \"records\", not both");
    } else if (v) {
        char bbuf[32];
        fmt_path(base, bbuf, sizeof bbuf);
        if (base->len < 3)
            rc = bad(&c, "value", "a single value needs a resource path (/o/i/r or /o/i/r/ri), not %s: use \"records\"", bbuf);
        else
            rc = put_entry(&c, base, v, json_object_get(body, "type"), "", -1);
    } else if (recs) {
        if (!json_is_array(recs))
            rc = bad(&c, "records", "records must be a list of {\"path\": .., \"value\": ..}");
        else if (json_array_size(recs) == 0)
            rc = bad(&c, "records", "records is empty");
        else
            rc = LWM2M_OK;
        for (size_t i = 0; rc == LWM2M_OK && i < json_array_size(recs); i++)
            rc = put_record(&c, i, json_array_get(recs, i));
    } else {
        rc = bad(&c, "value", "the body needs \"value\" or \"records\"");
    }
    if (rc == LWM2M_OK)
        rc = check_overlaps(&c);
    free(c.src);
    if (rc != LWM2M_OK) {
        lwm2m__records_truncate(out, c.n0);
        return rc;
    }
    if (field && fieldlen)
        field[0] = '\0';
    if (err && errlen)
        err[0] = '\0';
    return LWM2M_OK;
}
