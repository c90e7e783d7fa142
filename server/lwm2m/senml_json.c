/* SenML JSON (application/senml+json, CF 110): RFC 8428 as profiled by
 * LwM2M TS 1.1 §7.4.4 (TS 1.2 §7.4.6).
 *
 * Decoding (jansson):
 *  - The payload is one JSON array of objects ("records"); anything else is
 *    4.00. Duplicate keys in a record are refused.
 *  - Names: bn + n, where bn may appear on any record and applies to that one
 *    and every later record until the next bn (RFC 8428 §4.5.1). The resolved
 *    name must be an LwM2M path ("/3/0/1"; lwm2m_path_parse) lying below the
 *    request path. A record without n is named by bn alone.
 *  - Values: v (number), vs (string), vb (boolean), vd (opaque, base64; RFC
 *    8428 §4.3 says the URL-safe alphabet without padding, but several clients
 *    send classic padded base64, so both are read), vlo (LwM2M object link
 *    "oid:iid"). At most one value per record. A value needs a resource path
 *    (len 3 or 4). A record with no value becomes a LWM2M_T_NONE record (the
 *    name-only records of Read-Composite/Observe-Composite requests).
 *  - v is INTEGER when JSON wrote an integer and FLOAT otherwise (codec.c
 *    narrows it to the object definition's type). bv, the base value, is
 *    added to v (RFC 8428 §4.5.2); an overflow is 4.00.
 *  - bt/t/ut (times), bu/u (units), bs/s (sums) are accepted and ignored: the
 *    record model has no time. bver above 10 is refused (RFC 8428 §4.4).
 *    Unknown labels ending in '_' are must-understand (RFC 8428 §4.4, §12.2)
 *    and refused; other unknown labels are ignored.
 *  - Known limitation: jansson refuses integers above INT64_MAX, so an
 *    Unsigned Integer above that cannot be read from SenML JSON (4.00).
 *
 * Encoding (hand-written, so that number text is exact and key order fixed):
 *  - names as lwm2m__senml_names() (codec_int.h) says: bn only on the first
 *    record, relative n; a single resource is [{"bn":"/3/0/0","vs":..}]
 *    (TS 1.1 Table 7.4.4-5, also what Leshan sends); for the root (composite
 *    operations) no bn and absolute n, [{"n":"/3/0/0"},..] (Table 7.4.4-6).
 *  - INTEGER/TIME/UNSIGNED: v as a JSON integer; FLOAT: v with a fraction or
 *    exponent (so it reads back as a float), NaN and infinities refused;
 *    BOOLEAN: vb; STRING/CORELNK: vs (must be UTF-8); OPAQUE: vd, base64url
 *    without padding; OBJLNK: vlo; NONE: name only. */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/lwm2m/codec_int.h"

#define SENML_MAX_VERSION 10

/* ============================================================== decoding */

typedef struct {
    char *bn; /* current base name, owned */
    size_t bnlen;
    bool has_bv; /* current base value */
    json_t *bv;  /* borrowed from the document */
} senml_state_t;

/* v (+ bv): INTEGER when both are JSON integers and the sum fits, else FLOAT. */
static int number_value(const json_t *v, const senml_state_t *st, lwm2m_record_t *r)
{
    if (st->has_bv && json_is_integer(st->bv) && json_is_integer(v)) {
        json_int_t a = json_integer_value(st->bv), b = json_integer_value(v);
        if ((b > 0 && a > INT64_MAX - b) || (b < 0 && a < INT64_MIN - b))
            return LWM2M_ERR_BAD_REQUEST;
        r->type = LWM2M_T_INTEGER;
        r->v.i = a + b;
        return LWM2M_OK;
    }
    if (!st->has_bv && json_is_integer(v)) {
        r->type = LWM2M_T_INTEGER;
        r->v.i = json_integer_value(v);
        return LWM2M_OK;
    }
    double f = json_number_value(v);
    if (st->has_bv) /* not "+ 0.0" otherwise: that would turn -0.0 into 0.0 */
        f += json_number_value(st->bv);
    if (!isfinite(f))
        return LWM2M_ERR_BAD_REQUEST;
    r->type = LWM2M_T_FLOAT;
    r->v.f = f;
    return LWM2M_OK;
}

static int string_bytes(const json_t *s, lwm2m_record_t *r, lwm2m_type_t t)
{
    size_t n = json_string_length(s);
    uint8_t *d = malloc(n + 1);
    if (!d)
        return LWM2M_ERR_INTERNAL;
    memcpy(d, json_string_value(s), n);
    d[n] = '\0';
    r->type = t;
    r->bytes = d;
    r->nbytes = n;
    return LWM2M_OK;
}

static int decode_record(json_t *rec, const lwm2m_path_t *base, senml_state_t *st, lwm2m_records_t *out)
{
    if (!json_is_object(rec))
        return LWM2M_ERR_BAD_REQUEST;
    json_t *n = NULL, *val = NULL;
    const char *vkey = NULL;
    const char *key;
    json_t *x;
    /* first pass: labels and their JSON types; base fields take effect for
     * this record already (RFC 8428 §4.5.1) */
    json_object_foreach(rec, key, x) {
        if (strcmp(key, "bn") == 0) {
            if (!json_is_string(x))
                return LWM2M_ERR_BAD_REQUEST;
            size_t l = json_string_length(x);
            char *copy = malloc(l + 1);
            if (!copy)
                return LWM2M_ERR_INTERNAL;
            memcpy(copy, json_string_value(x), l + 1);
            free(st->bn);
            st->bn = copy;
            st->bnlen = l;
        } else if (strcmp(key, "bv") == 0) {
            if (!json_is_number(x))
                return LWM2M_ERR_BAD_REQUEST;
            st->has_bv = true;
            st->bv = x;
        } else if (strcmp(key, "bver") == 0) {
            if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > SENML_MAX_VERSION)
                return LWM2M_ERR_BAD_REQUEST;
        } else if (strcmp(key, "bt") == 0 || strcmp(key, "t") == 0 || strcmp(key, "ut") == 0 ||
                   strcmp(key, "bs") == 0 || strcmp(key, "s") == 0) {
            if (!json_is_number(x))
                return LWM2M_ERR_BAD_REQUEST;
        } else if (strcmp(key, "bu") == 0 || strcmp(key, "u") == 0) {
            if (!json_is_string(x))
                return LWM2M_ERR_BAD_REQUEST;
        } else if (strcmp(key, "n") == 0) {
            if (!json_is_string(x))
                return LWM2M_ERR_BAD_REQUEST;
            n = x;
        } else if (strcmp(key, "v") == 0 || strcmp(key, "vs") == 0 || strcmp(key, "vb") == 0 ||
                   strcmp(key, "vd") == 0 || strcmp(key, "vlo") == 0) {
            if (val)
                return LWM2M_ERR_BAD_REQUEST; /* two values in one record */
            val = x;
            vkey = key;
        } else {
            size_t kl = strlen(key);
            if (kl > 0 && key[kl - 1] == '_')
                return LWM2M_ERR_BAD_REQUEST; /* must-understand extension */
        }
    }
    /* the resolved name */
    size_t nl = n ? json_string_length(n) : 0;
    if (st->bnlen > SIZE_MAX - nl - 1)
        return LWM2M_ERR_BAD_REQUEST;
    char *name = malloc(st->bnlen + nl + 1);
    if (!name)
        return LWM2M_ERR_INTERNAL;
    if (st->bnlen)
        memcpy(name, st->bn, st->bnlen);
    if (nl)
        memcpy(name + st->bnlen, json_string_value(n), nl);
    name[st->bnlen + nl] = '\0';
    /* an embedded NUL would make the name shorter than its JSON string */
    lwm2m_path_t path;
    int rc = strlen(name) == st->bnlen + nl ? lwm2m_path_parse(name, st->bnlen + nl, &path) : LWM2M_ERR_BAD_REQUEST;
    free(name);
    if (rc != LWM2M_OK)
        return LWM2M_ERR_BAD_REQUEST;
    if (!lwm2m_path_starts_with(&path, base))
        return LWM2M_ERR_BAD_REQUEST;

    lwm2m_record_t r;
    memset(&r, 0, sizeof r);
    r.path = path;
    r.type = LWM2M_T_NONE;
    if (val) {
        if (path.len < 3)
            return LWM2M_ERR_BAD_REQUEST; /* a value needs a resource */
        if (strcmp(vkey, "v") == 0) {
            if (!json_is_number(val))
                return LWM2M_ERR_BAD_REQUEST;
            rc = number_value(val, st, &r);
        } else if (strcmp(vkey, "vs") == 0) {
            rc = json_is_string(val) ? string_bytes(val, &r, LWM2M_T_STRING) : LWM2M_ERR_BAD_REQUEST;
        } else if (strcmp(vkey, "vb") == 0) {
            if (!json_is_boolean(val))
                return LWM2M_ERR_BAD_REQUEST;
            r.type = LWM2M_T_BOOLEAN;
            r.v.b = json_is_true(val);
        } else if (strcmp(vkey, "vd") == 0) {
            if (!json_is_string(val))
                return LWM2M_ERR_BAD_REQUEST;
            rc = lwm2m__b64_decode(json_string_value(val), json_string_length(val), &r.bytes, &r.nbytes);
            r.type = LWM2M_T_OPAQUE;
        } else { /* vlo */
            if (!json_is_string(val))
                return LWM2M_ERR_BAD_REQUEST;
            r.type = LWM2M_T_OBJLNK;
            rc = lwm2m__parse_objlnk(json_string_value(val), json_string_length(val), &r.v.lnk.oid, &r.v.lnk.iid);
        }
        if (rc != LWM2M_OK) {
            free(r.bytes);
            return rc;
        }
    }
    lwm2m_record_t *slot = lwm2m__records_push(out);
    if (!slot) {
        free(r.bytes);
        return LWM2M_ERR_INTERNAL;
    }
    *slot = r;
    return LWM2M_OK;
}

int lwm2m_senml_json_decode(const lwm2m_path_t *base, const uint8_t *buf, size_t len, lwm2m_records_t *out)
{
    if (!base || !out || (!buf && len > 0) || base->len > 4)
        return LWM2M_ERR_BAD_REQUEST;
    if (len > LWM2M_MAX_PAYLOAD)
        return LWM2M_ERR_REQUEST_TOO_LARGE;
    if (len == 0)
        return LWM2M_ERR_BAD_REQUEST;
    json_error_t err;
    /* JSON_ALLOW_NUL: a string value may hold U+0000 (it is length-counted);
     * jansson bounds nesting depth itself (JSON_PARSER_MAX_DEPTH) */
    json_t *doc = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
    if (!doc)
        return LWM2M_ERR_BAD_REQUEST;
    int rc = LWM2M_OK;
    if (!json_is_array(doc))
        rc = LWM2M_ERR_BAD_REQUEST;
    size_t n0 = out->n;
    senml_state_t st = {0};
    size_t i;
    json_t *rec;
    if (rc == LWM2M_OK) {
        json_array_foreach(doc, i, rec) {
            rc = decode_record(rec, base, &st, out);
            if (rc != LWM2M_OK)
                break;
        }
    }
    free(st.bn);
    json_decref(doc);
    if (rc != LWM2M_OK)
        lwm2m__records_truncate(out, n0);
    return rc;
}

/* ============================================================== encoding */

static void put_json_string(lwm2m__buf_t *b, const uint8_t *s, size_t n)
{
    lwm2m__buf_putc(b, '"');
    size_t run = 0; /* bytes copied verbatim in one go */
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        lwm2m__buf_put(b, s + run, i - run);
        run = i + 1;
        char esc[8];
        switch (c) {
        case '"': lwm2m__buf_puts(b, "\\\""); break;
        case '\\': lwm2m__buf_puts(b, "\\\\"); break;
        case '\n': lwm2m__buf_puts(b, "\\n"); break;
        case '\r': lwm2m__buf_puts(b, "\\r"); break;
        case '\t': lwm2m__buf_puts(b, "\\t"); break;
        default:
            snprintf(esc, sizeof esc, "\\u%04x", c);
            lwm2m__buf_puts(b, esc);
        }
    }
    lwm2m__buf_put(b, s + run, n - run);
    lwm2m__buf_putc(b, '"');
}

/* Writes the value label and value; `sep` is "," unless it is the record's
 * first label. */
static int put_value(lwm2m__buf_t *b, const lwm2m_record_t *r, const char *sep)
{
    char tmp[48];
    lwm2m__buf_puts(b, r->type == LWM2M_T_NONE ? "" : sep);
    switch (r->type) {
    case LWM2M_T_NONE:
        return LWM2M_OK;
    case LWM2M_T_STRING:
    case LWM2M_T_CORELNK:
        if (!lwm2m__utf8_valid(r->bytes, r->nbytes))
            return LWM2M_ERR_BAD_REQUEST; /* JSON text is UTF-8 (RFC 8259 §8.1) */
        lwm2m__buf_puts(b, "\"vs\":");
        put_json_string(b, r->bytes, r->nbytes);
        return LWM2M_OK;
    case LWM2M_T_OPAQUE:
        lwm2m__buf_puts(b, "\"vd\":\"");
        lwm2m__b64_encode(b, r->bytes, r->nbytes, true);
        lwm2m__buf_putc(b, '"');
        return LWM2M_OK;
    case LWM2M_T_INTEGER:
    case LWM2M_T_TIME:
        snprintf(tmp, sizeof tmp, "\"v\":%" PRId64, r->v.i);
        break;
    case LWM2M_T_UNSIGNED:
        snprintf(tmp, sizeof tmp, "\"v\":%" PRIu64, r->v.u);
        break;
    case LWM2M_T_FLOAT: {
        char num[40];
        if (lwm2m__fmt_double(r->v.f, true, num, sizeof num) < 0)
            return LWM2M_ERR_BAD_REQUEST; /* no JSON form for NaN, inf */
        snprintf(tmp, sizeof tmp, "\"v\":%s", num);
        break;
    }
    case LWM2M_T_BOOLEAN:
        snprintf(tmp, sizeof tmp, "\"vb\":%s", r->v.b ? "true" : "false");
        break;
    case LWM2M_T_OBJLNK:
        snprintf(tmp, sizeof tmp, "\"vlo\":\"%u:%u\"", (unsigned)r->v.lnk.oid, (unsigned)r->v.lnk.iid);
        break;
    }
    lwm2m__buf_puts(b, tmp);
    return LWM2M_OK;
}

int lwm2m_senml_json_encode(const lwm2m_path_t *base, const lwm2m_records_t *rs, uint8_t **out, size_t *outlen)
{
    if (!base || !rs || !out || !outlen)
        return LWM2M_ERR_BAD_REQUEST;
    lwm2m__senml_names_t nm;
    int rc = lwm2m__senml_names(base, rs, &nm);
    if (rc != LWM2M_OK)
        return rc;
    lwm2m__buf_t b;
    lwm2m__buf_init(&b);
    lwm2m__buf_putc(&b, '[');
    for (size_t i = 0; i < rs->n && rc == LWM2M_OK; i++) {
        const lwm2m_record_t *r = &rs->recs[i];
        lwm2m__buf_puts(&b, i ? ",{" : "{");
        bool first = true;
        if (i == 0 && nm.bn) {
            lwm2m__buf_puts(&b, "\"bn\":");
            put_json_string(&b, (const uint8_t *)nm.bn_text, strlen(nm.bn_text));
            first = false;
        }
        if (nm.n) {
            char n[32];
            int m = lwm2m__senml_n(base, &r->path, n, sizeof n);
            if (m < 0) {
                rc = LWM2M_ERR_BAD_REQUEST;
                break;
            }
            lwm2m__buf_puts(&b, first ? "\"n\":" : ",\"n\":");
            put_json_string(&b, (const uint8_t *)n, (size_t)m);
            first = false;
        }
        rc = put_value(&b, r, first ? "" : ",");
        lwm2m__buf_putc(&b, '}');
    }
    lwm2m__buf_putc(&b, ']');
    if (rc != LWM2M_OK) {
        lwm2m__buf_free(&b);
        return rc;
    }
    return lwm2m__buf_finish(&b, out, outlen);
}
