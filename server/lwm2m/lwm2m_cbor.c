/* LwM2M CBOR (application/vnd.oma.lwm2m+cbor, CF 11544): LwM2M TS 1.2 Core
 * §7.4.7.
 *
 * Data model. The payload is one CBOR map. A key is a path fragment: an
 * unsigned integer id, or a non-empty array of ids ("path compression":
 * {[3,0]: {0: "x", 9: 87}} names /3/0/0 and /3/0/9). A value is either a
 * nested map (the path goes on below it) or a leaf. Paths are absolute: "Except
 * when used for a Write or Create operation, the IDs inside the top-level
 * payload MUST start with the Object ID" (TS 1.2 §7.4.7, quoted in
 * OMA_LwM2M_for_Developers#541); both AVSystem implementations (Anjay
 * src/core/io/anjay_lwm2m_cbor_{in,out}.c, Anjay Lite
 * src/anj/io/lwm2m_cbor_{de,en}coder.c) read and write absolute paths for every
 * operation, Write included (their Write to /13/26/1 carries {[13,26,1]: 42}),
 * so lwdm does the same both ways. Every decoded path must lie at or below the
 * request path.
 *
 * Leaves (what lwdm reads, and what it writes):
 *  - unsigned / negative integer (major 0/1) -> INTEGER, or UNSIGNED above
 *    INT64_MAX; writes INTEGER / UNSIGNED this way.
 *  - half / single / double float -> FLOAT; tag 4 decimal fraction
 *    [exponent, mantissa] (two integers, no bignums) -> FLOAT. Writes single
 *    precision when exact, else double.
 *  - true / false -> BOOLEAN.
 *  - text string (UTF-8, checked) -> STRING. Object links travel as text
 *    "oid:iid" (Anjay, Anjay Lite) and corelnk as text, so only the object
 *    definition tells them apart: lwm2m_decode() with a registry turns the
 *    text into OBJLNK / CORELNK; this decoder alone leaves it STRING. Writes
 *    STRING, CORELNK and OBJLNK ("3:0") as text.
 *  - byte string -> OPAQUE.
 *  - tag 1 (epoch time, RFC 8949 §3.4.2) on an integer -> TIME; on a float the
 *    value is floored to whole seconds (as Anjay Lite does). Writes TIME as
 *    tag 1 + integer, which Anjay Lite requires for a Time resource.
 *  - null -> NONE (a name without a value, like a SenML record without a
 *    value); an empty nested map {} also gives a NONE record at its path
 *    (e.g. a multiple resource without instances). Writes NONE as null.
 *  Any other tag, undefined, a simple value, or an array as a value is
 *  refused.
 *
 * Structure rules (all 4.00 Bad Request): the top level must be a map; a key
 * must be an id or a non-empty array of ids, each id 0..65534; a path never
 * grows beyond 4 ids (so a map below a resource instance is refused); a value
 * (other than null / {}) needs a resource or resource-instance path (len 3/4);
 * the same path twice, or a path below another record's path, is refused
 * (a CBOR map must not repeat a key, RFC 8949 §5.6, and a leaf cannot also be
 * a map); nothing may follow the top-level map. Definite and indefinite
 * lengths are both accepted for maps, arrays (path keys, decimal fractions)
 * and strings (an indefinite string is a sequence of definite chunks of the
 * same major type, RFC 8949 §3.2.3), because Anjay writes indefinite maps.
 *
 * Safety: the input is read with libcbor's streaming decoder
 * (cbor_stream_decode), one item header per call, into a small pull reader;
 * nothing is allocated from a declared count (a count larger than what
 * follows ends in "truncated"), and nesting is bounded by the path length
 * (4) plus one level for a path array or a decimal fraction.
 *
 * Encoding: records are grouped by path (sorted), each map holds the ids of
 * one level, and a chain of ids shared by every record of a group is written
 * as one array key (so a Read of /3/0 answers {[3,0]: {0: .., 9: ..}}, a single
 * resource {[3,0,9]: 87}). Maps are definite-length. */
#include <cbor.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/lwm2m/codec_int.h"

/* ============================================================ reader */

typedef enum {
    IT_UINT, IT_NEGINT, IT_BYTES, IT_TEXT, IT_ARRAY, IT_MAP, IT_INDEF_ARRAY, IT_INDEF_MAP,
    IT_INDEF_BYTES, IT_INDEF_TEXT, IT_TAG, IT_FLOAT, IT_BOOL, IT_NULL, IT_UNDEF, IT_BREAK,
} item_kind_t;

typedef struct {
    item_kind_t kind;
    uint64_t u; /* UINT value, NEGINT n (value -1-n), ARRAY/MAP count, TAG number */
    const uint8_t *data; /* BYTES / TEXT, pointing into the input */
    size_t len;
    double f;
    bool b;
} item_t;

typedef struct {
    const uint8_t *buf;
    size_t len, pos;
    item_t it;  /* filled by the callbacks */
    bool got;   /* a callback ran */
} reader_t;

static void put_item(void *ctx, item_t it)
{
    reader_t *r = ctx;
    r->it = it;
    r->got = true;
}

static void cb_uint(void *c, uint64_t v) { put_item(c, (item_t){.kind = IT_UINT, .u = v}); }
static void cb_u8(void *c, uint8_t v) { cb_uint(c, v); }
static void cb_u16(void *c, uint16_t v) { cb_uint(c, v); }
static void cb_u32(void *c, uint32_t v) { cb_uint(c, v); }
static void cb_neg(void *c, uint64_t v) { put_item(c, (item_t){.kind = IT_NEGINT, .u = v}); }
static void cb_n8(void *c, uint8_t v) { cb_neg(c, v); }
static void cb_n16(void *c, uint16_t v) { cb_neg(c, v); }
static void cb_n32(void *c, uint32_t v) { cb_neg(c, v); }
static void cb_bytes(void *c, cbor_data d, size_t n) { put_item(c, (item_t){.kind = IT_BYTES, .data = d, .len = n}); }
static void cb_text(void *c, cbor_data d, size_t n) { put_item(c, (item_t){.kind = IT_TEXT, .data = d, .len = n}); }
static void cb_indef_bytes(void *c) { put_item(c, (item_t){.kind = IT_INDEF_BYTES}); }
static void cb_indef_text(void *c) { put_item(c, (item_t){.kind = IT_INDEF_TEXT}); }
static void cb_array(void *c, size_t n) { put_item(c, (item_t){.kind = IT_ARRAY, .u = n}); }
static void cb_indef_array(void *c) { put_item(c, (item_t){.kind = IT_INDEF_ARRAY}); }
static void cb_map(void *c, size_t n) { put_item(c, (item_t){.kind = IT_MAP, .u = n}); }
static void cb_indef_map(void *c) { put_item(c, (item_t){.kind = IT_INDEF_MAP}); }
static void cb_tag(void *c, uint64_t v) { put_item(c, (item_t){.kind = IT_TAG, .u = v}); }
static void cb_float(void *c, float f) { put_item(c, (item_t){.kind = IT_FLOAT, .f = (double)f}); }
static void cb_double(void *c, double f) { put_item(c, (item_t){.kind = IT_FLOAT, .f = f}); }
static void cb_null(void *c) { put_item(c, (item_t){.kind = IT_NULL}); }
static void cb_undef(void *c) { put_item(c, (item_t){.kind = IT_UNDEF}); }
static void cb_bool(void *c, bool b) { put_item(c, (item_t){.kind = IT_BOOL, .b = b}); }
static void cb_break(void *c) { put_item(c, (item_t){.kind = IT_BREAK}); }

/* libcbor 0.8's callbacks.h swaps the doc comments of byte_string and
 * byte_string_start (see senml_cbor.c); the member names are right. libcbor
 * hands both indefinite-string starts to a cbor_simple_callback, so each gets
 * its own function to keep bytes and text apart. */
static const struct cbor_callbacks callbacks = {
    .uint8 = cb_u8,
    .uint16 = cb_u16,
    .uint32 = cb_u32,
    .uint64 = cb_uint,
    .negint8 = cb_n8,
    .negint16 = cb_n16,
    .negint32 = cb_n32,
    .negint64 = cb_neg,
    .byte_string = cb_bytes,
    .byte_string_start = cb_indef_bytes,
    .string = cb_text,
    .string_start = cb_indef_text,
    .array_start = cb_array,
    .indef_array_start = cb_indef_array,
    .map_start = cb_map,
    .indef_map_start = cb_indef_map,
    .tag = cb_tag,
    .float2 = cb_float,
    .float4 = cb_float,
    .float8 = cb_double,
    .undefined = cb_undef,
    .null = cb_null,
    .boolean = cb_bool,
    .indef_break = cb_break,
};

/* Reads the next item header. A definite string comes whole (libcbor checks
 * that all of its bytes are in the buffer before calling back). */
static int next_item(reader_t *r, item_t *out)
{
    if (r->pos >= r->len)
        return LWM2M_ERR_BAD_REQUEST; /* truncated */
    r->got = false;
    struct cbor_decoder_result res = cbor_stream_decode(r->buf + r->pos, r->len - r->pos, &callbacks, r);
    if (res.status != CBOR_DECODER_FINISHED || res.read == 0 || res.read > r->len - r->pos || !r->got)
        return LWM2M_ERR_BAD_REQUEST; /* truncated, malformed, or an unassigned simple value */
    r->pos += res.read;
    *out = r->it;
    return LWM2M_OK;
}

/* ============================================================ decoder */

typedef struct {
    reader_t rd;
    const lwm2m_path_t *base;
    lwm2m_records_t *out;
} dec_t;

/* Appends one id to p (a path fragment of a key). */
static int path_push(lwm2m_path_t *p, const item_t *it)
{
    if (it->kind != IT_UINT || it->u >= LWM2M_ID_NONE || p->len >= 4)
        return LWM2M_ERR_BAD_REQUEST; /* not an id, id 65535+, or a fifth id */
    p->ids[p->len++] = (uint16_t)it->u;
    return LWM2M_OK;
}

/* Reads a key whose first item is `k` and appends its ids to p. */
static int read_key(dec_t *d, const item_t *k, lwm2m_path_t *p)
{
    if (k->kind == IT_UINT)
        return path_push(p, k);
    if (k->kind != IT_ARRAY && k->kind != IT_INDEF_ARRAY)
        return LWM2M_ERR_BAD_REQUEST; /* text, negative, float... keys */
    bool indef = k->kind == IT_INDEF_ARRAY;
    uint64_t n = 0;
    for (;; n++) {
        if (!indef && n == k->u)
            break;
        item_t id;
        int rc = next_item(&d->rd, &id);
        if (rc != LWM2M_OK)
            return rc;
        if (indef && id.kind == IT_BREAK)
            break;
        rc = path_push(p, &id);
        if (rc != LWM2M_OK)
            return rc;
    }
    return n == 0 ? LWM2M_ERR_BAD_REQUEST : LWM2M_OK; /* [] names nothing */
}

/* Reads a whole string (definite, or indefinite chunks) of major type
 * `chunk_kind` (IT_BYTES / IT_TEXT) into a malloc'd buffer. */
static int read_string(dec_t *d, const item_t *first, item_kind_t chunk_kind, uint8_t **out, size_t *outlen)
{
    lwm2m__buf_t b;
    lwm2m__buf_init(&b);
    if (first->kind == chunk_kind) {
        if (chunk_kind == IT_TEXT && !lwm2m__utf8_valid(first->data, first->len))
            return LWM2M_ERR_BAD_REQUEST;
        lwm2m__buf_put(&b, first->data, first->len);
        return lwm2m__buf_finish(&b, out, outlen);
    }
    for (;;) {
        item_t c;
        int rc = next_item(&d->rd, &c);
        if (rc == LWM2M_OK && c.kind == IT_BREAK)
            break;
        if (rc == LWM2M_OK && (c.kind != chunk_kind ||
                               (chunk_kind == IT_TEXT && !lwm2m__utf8_valid(c.data, c.len))))
            rc = LWM2M_ERR_BAD_REQUEST; /* chunks: definite, same type, whole characters */
        if (rc != LWM2M_OK) {
            lwm2m__buf_free(&b);
            return rc;
        }
        lwm2m__buf_put(&b, c.data, c.len);
    }
    return lwm2m__buf_finish(&b, out, outlen);
}

static bool int_of(const item_t *it, int64_t *v)
{
    if (it->kind == IT_UINT && it->u <= (uint64_t)INT64_MAX) {
        *v = (int64_t)it->u;
        return true;
    }
    if (it->kind == IT_NEGINT && it->u <= (uint64_t)INT64_MAX) {
        *v = -1 - (int64_t)it->u;
        return true;
    }
    return false;
}

/* tag 4: [exponent, mantissa] (RFC 8949 §3.4.4), value mantissa * 10^exponent.
 * The text "<m>e<e>" goes through strtod, which rounds correctly (no decimal
 * point, so the locale does not matter). */
static int read_decimal_fraction(dec_t *d, double *out)
{
    item_t a, e, m;
    int rc = next_item(&d->rd, &a);
    if (rc != LWM2M_OK)
        return rc;
    bool indef = a.kind == IT_INDEF_ARRAY;
    if (!(a.kind == IT_ARRAY && a.u == 2) && !indef)
        return LWM2M_ERR_BAD_REQUEST;
    int64_t ev, mv;
    if ((rc = next_item(&d->rd, &e)) != LWM2M_OK || (rc = next_item(&d->rd, &m)) != LWM2M_OK)
        return rc;
    if (!int_of(&e, &ev) || !int_of(&m, &mv))
        return LWM2M_ERR_BAD_REQUEST; /* bignum mantissas are not supported */
    if (indef) {
        item_t brk;
        if ((rc = next_item(&d->rd, &brk)) != LWM2M_OK)
            return rc;
        if (brk.kind != IT_BREAK)
            return LWM2M_ERR_BAD_REQUEST;
    }
    char tmp[48];
    snprintf(tmp, sizeof tmp, "%" PRId64 "e%" PRId64, mv, ev);
    double v = strtod(tmp, NULL);
    if (!isfinite(v))
        return LWM2M_ERR_BAD_REQUEST;
    *out = v;
    return LWM2M_OK;
}

/* A leaf value (not a map). Fills *r (type and value); `bytes` owned by r. */
static int read_leaf(dec_t *d, const item_t *v, lwm2m_record_t *r)
{
    switch (v->kind) {
    case IT_UINT:
        if (v->u <= (uint64_t)INT64_MAX) {
            r->type = LWM2M_T_INTEGER;
            r->v.i = (int64_t)v->u;
        } else {
            r->type = LWM2M_T_UNSIGNED;
            r->v.u = v->u;
        }
        return LWM2M_OK;
    case IT_NEGINT:
        if (!int_of(v, &r->v.i))
            return LWM2M_ERR_BAD_REQUEST; /* below INT64_MIN */
        r->type = LWM2M_T_INTEGER;
        return LWM2M_OK;
    case IT_FLOAT:
        r->type = LWM2M_T_FLOAT;
        r->v.f = v->f;
        return LWM2M_OK;
    case IT_BOOL:
        r->type = LWM2M_T_BOOLEAN;
        r->v.b = v->b;
        return LWM2M_OK;
    case IT_NULL:
        r->type = LWM2M_T_NONE;
        return LWM2M_OK;
    case IT_TEXT:
    case IT_INDEF_TEXT:
        r->type = LWM2M_T_STRING;
        return read_string(d, v, IT_TEXT, &r->bytes, &r->nbytes);
    case IT_BYTES:
    case IT_INDEF_BYTES:
        r->type = LWM2M_T_OPAQUE;
        return read_string(d, v, IT_BYTES, &r->bytes, &r->nbytes);
    case IT_TAG: {
        item_t t;
        int rc;
        if (v->u == 4) {
            r->type = LWM2M_T_FLOAT;
            return read_decimal_fraction(d, &r->v.f);
        }
        if (v->u != 1)
            return LWM2M_ERR_BAD_REQUEST; /* no other tag has a meaning here */
        if ((rc = next_item(&d->rd, &t)) != LWM2M_OK)
            return rc;
        r->type = LWM2M_T_TIME;
        if (int_of(&t, &r->v.i))
            return LWM2M_OK;
        if (t.kind == IT_FLOAT) {
            double f = floor(t.f);
            /* 2^63 is exact; the range is [-2^63, 2^63) */
            if (!(f >= -9223372036854775808.0 && f < 9223372036854775808.0))
                return LWM2M_ERR_BAD_REQUEST;
            r->v.i = (int64_t)f;
            return LWM2M_OK;
        }
        return LWM2M_ERR_BAD_REQUEST;
    }
    default: /* arrays, undefined, a stray break */
        return LWM2M_ERR_BAD_REQUEST;
    }
}

/* Adds a record at p (checked against the request path); takes r's bytes. */
static int add_record(dec_t *d, const lwm2m_path_t *p, lwm2m_record_t *r)
{
    r->path = *p;
    if (!lwm2m_path_starts_with(p, d->base) || (r->type != LWM2M_T_NONE && p->len < 3)) {
        lwm2m__record_free(r);
        return LWM2M_ERR_BAD_REQUEST; /* outside the request, or a value at /o or /o/i */
    }
    lwm2m_record_t *slot = lwm2m__records_push(d->out);
    if (!slot) {
        lwm2m__record_free(r);
        return LWM2M_ERR_INTERNAL;
    }
    *slot = *r;
    return LWM2M_OK;
}

static int read_map(dec_t *d, const item_t *hdr, const lwm2m_path_t *prefix);

/* The value of one map entry, whose key led to path p. */
static int read_value(dec_t *d, const lwm2m_path_t *p)
{
    item_t v;
    int rc = next_item(&d->rd, &v);
    if (rc != LWM2M_OK)
        return rc;
    if (v.kind == IT_MAP || v.kind == IT_INDEF_MAP) {
        if (p->len >= 4)
            return LWM2M_ERR_BAD_REQUEST; /* nothing lies below a resource instance */
        size_t n0 = d->out->n;
        rc = read_map(d, &v, p);
        if (rc == LWM2M_OK && d->out->n == n0) {
            /* {} : the node exists but holds nothing (e.g. a multiple
             * resource without instances) */
            lwm2m_record_t r;
            memset(&r, 0, sizeof r);
            r.type = LWM2M_T_NONE;
            rc = add_record(d, p, &r);
        }
        return rc;
    }
    lwm2m_record_t r;
    memset(&r, 0, sizeof r);
    rc = read_leaf(d, &v, &r);
    if (rc != LWM2M_OK) {
        lwm2m__record_free(&r);
        return rc;
    }
    return add_record(d, p, &r);
}

/* Reads the entries of a map whose header is `hdr`, below `prefix`. Depth is
 * bounded: every level adds at least one id and a path holds at most 4. */
static int read_map(dec_t *d, const item_t *hdr, const lwm2m_path_t *prefix)
{
    bool indef = hdr->kind == IT_INDEF_MAP;
    for (uint64_t i = 0; indef || i < hdr->u; i++) {
        item_t k;
        int rc = next_item(&d->rd, &k);
        if (rc != LWM2M_OK)
            return rc;
        if (indef && k.kind == IT_BREAK)
            return LWM2M_OK;
        lwm2m_path_t p = *prefix;
        if ((rc = read_key(d, &k, &p)) != LWM2M_OK || (rc = read_value(d, &p)) != LWM2M_OK)
            return rc;
    }
    return LWM2M_OK;
}

int lwm2m_lwm2m_cbor_decode(const lwm2m_path_t *base, const uint8_t *buf, size_t len, lwm2m_records_t *out)
{
    if (!base || !out || (!buf && len > 0) || base->len > 4)
        return LWM2M_ERR_BAD_REQUEST;
    if (len > LWM2M_MAX_PAYLOAD)
        return LWM2M_ERR_REQUEST_TOO_LARGE;
    dec_t d;
    memset(&d, 0, sizeof d);
    d.rd.buf = buf;
    d.rd.len = len;
    d.base = base;
    d.out = out;
    size_t n0 = out->n;
    item_t top;
    int rc = next_item(&d.rd, &top);
    if (rc == LWM2M_OK && top.kind != IT_MAP && top.kind != IT_INDEF_MAP)
        rc = LWM2M_ERR_BAD_REQUEST; /* the payload is a map */
    if (rc == LWM2M_OK) {
        lwm2m_path_t root = lwm2m_path_make(0, 0, 0, 0, 0);
        rc = read_map(&d, &top, &root);
    }
    if (rc == LWM2M_OK && d.rd.pos != len)
        rc = LWM2M_ERR_BAD_REQUEST; /* trailing bytes */
    if (rc == LWM2M_OK)
        rc = lwm2m__records_check_unique(out, n0); /* repeated or nested paths */
    if (rc != LWM2M_OK)
        lwm2m__records_truncate(out, n0);
    return rc;
}

/* ============================================================ encoder */

/* Runs one cbor_encode_* call against the free space of the buffer (a CBOR
 * header is at most 9 bytes), as in senml_cbor.c. */
#define CB_PUT(b, call)                                                          \
    do {                                                                         \
        if (lwm2m__buf_reserve((b), 16)) {                                       \
            unsigned char *at_ = (b)->p + (b)->n;                                \
            size_t room_ = (b)->cap - (b)->n;                                    \
            size_t w_ = (call);                                                  \
            if (w_ == 0)                                                         \
                (b)->oom = true;                                                 \
            else                                                                 \
                (b)->n += w_;                                                    \
        }                                                                        \
    } while (0)

static void put_int(lwm2m__buf_t *b, int64_t v)
{
    if (v >= 0)
        CB_PUT(b, cbor_encode_uint((uint64_t)v, at_, room_));
    else
        CB_PUT(b, cbor_encode_negint((uint64_t)(-1 - v), at_, room_));
}

static void put_text(lwm2m__buf_t *b, const void *s, size_t n)
{
    CB_PUT(b, cbor_encode_string_start(n, at_, room_));
    lwm2m__buf_put(b, s, n);
}

static void put_value(lwm2m__buf_t *b, const lwm2m_record_t *r)
{
    switch (r->type) {
    case LWM2M_T_NONE:
        CB_PUT(b, cbor_encode_null(at_, room_));
        break;
    case LWM2M_T_STRING:
    case LWM2M_T_CORELNK:
        put_text(b, r->bytes, r->nbytes);
        break;
    case LWM2M_T_OPAQUE:
        CB_PUT(b, cbor_encode_bytestring_start(r->nbytes, at_, room_));
        lwm2m__buf_put(b, r->bytes, r->nbytes);
        break;
    case LWM2M_T_INTEGER:
        put_int(b, r->v.i);
        break;
    case LWM2M_T_TIME:
        CB_PUT(b, cbor_encode_tag(1, at_, room_));
        put_int(b, r->v.i);
        break;
    case LWM2M_T_UNSIGNED:
        CB_PUT(b, cbor_encode_uint(r->v.u, at_, room_));
        break;
    case LWM2M_T_FLOAT:
        if (lwm2m__fits_float(r->v.f))
            CB_PUT(b, cbor_encode_single((float)r->v.f, at_, room_));
        else
            CB_PUT(b, cbor_encode_double(r->v.f, at_, room_));
        break;
    case LWM2M_T_BOOLEAN:
        CB_PUT(b, cbor_encode_bool(r->v.b, at_, room_));
        break;
    case LWM2M_T_OBJLNK: {
        char tmp[16];
        int m = snprintf(tmp, sizeof tmp, "%u:%u", (unsigned)r->v.lnk.oid, (unsigned)r->v.lnk.iid);
        put_text(b, tmp, (size_t)m);
        break;
    }
    }
}

static int cmp_rec_ptr(const void *a, const void *b)
{
    const lwm2m_record_t *x = *(const lwm2m_record_t *const *)a;
    const lwm2m_record_t *y = *(const lwm2m_record_t *const *)b;
    return lwm2m_path_compare(&x->path, &y->path);
}

/* Writes the map of the records v[lo, hi), which share their first `lvl` ids
 * and are all longer than that. Sorted and free of nested paths (checked by
 * the caller), so the records of one id at this level are adjacent and a
 * group of two or more never ends inside the shared chain. Recursion depth is
 * at most 4. */
static void put_map(lwm2m__buf_t *b, const lwm2m_record_t *const *v, size_t lo, size_t hi, size_t lvl)
{
    size_t groups = 0;
    for (size_t i = lo; i < hi; i++)
        if (i == lo || v[i]->path.ids[lvl] != v[i - 1]->path.ids[lvl])
            groups++;
    CB_PUT(b, cbor_encode_map_start(groups, at_, room_));
    for (size_t a = lo; a < hi;) {
        size_t e = a + 1;
        while (e < hi && v[e]->path.ids[lvl] == v[a]->path.ids[lvl])
            e++;
        /* the ids every record of the group shares from `lvl` on */
        size_t cp = v[a]->path.len;
        for (size_t i = a + 1; i < e; i++) {
            size_t k = lvl + 1;
            while (k < cp && k < v[i]->path.len && v[i]->path.ids[k] == v[a]->path.ids[k])
                k++;
            cp = k;
        }
        if (cp - lvl == 1) {
            CB_PUT(b, cbor_encode_uint(v[a]->path.ids[lvl], at_, room_));
        } else {
            CB_PUT(b, cbor_encode_array_start(cp - lvl, at_, room_));
            for (size_t k = lvl; k < cp; k++)
                CB_PUT(b, cbor_encode_uint(v[a]->path.ids[k], at_, room_));
        }
        if (e - a == 1 && v[a]->path.len == cp)
            put_value(b, v[a]);
        else
            put_map(b, v, a, e, cp);
        a = e;
    }
}

int lwm2m_lwm2m_cbor_encode(const lwm2m_path_t *base, const lwm2m_records_t *rs, uint8_t **out, size_t *outlen)
{
    if (!base || !rs || !out || !outlen || base->len > 4)
        return LWM2M_ERR_BAD_REQUEST;
    for (size_t i = 0; i < rs->n; i++) {
        const lwm2m_record_t *r = &rs->recs[i];
        if (!lwm2m__record_ok(r) || r->path.len == 0 || !lwm2m_path_starts_with(&r->path, base))
            return LWM2M_ERR_BAD_REQUEST; /* the root itself cannot be a key */
        if ((r->type == LWM2M_T_STRING || r->type == LWM2M_T_CORELNK) && !lwm2m__utf8_valid(r->bytes, r->nbytes))
            return LWM2M_ERR_BAD_REQUEST; /* CBOR text must be UTF-8 */
    }
    int rc = lwm2m__records_check_unique(rs, 0); /* a map key names one thing */
    if (rc != LWM2M_OK)
        return rc;
    const lwm2m_record_t **v = NULL;
    if (rs->n > 0) {
        v = malloc(rs->n * sizeof *v);
        if (!v)
            return LWM2M_ERR_INTERNAL;
        for (size_t i = 0; i < rs->n; i++)
            v[i] = &rs->recs[i];
        qsort(v, rs->n, sizeof *v, cmp_rec_ptr);
    }
    lwm2m__buf_t b;
    lwm2m__buf_init(&b);
    if (rs->n == 0)
        CB_PUT(&b, cbor_encode_map_start(0, at_, room_));
    else
        put_map(&b, v, 0, rs->n, 0);
    free(v);
    return lwm2m__buf_finish(&b, out, outlen);
}
