/* SenML CBOR (application/senml+cbor, CF 112): RFC 8428 §6 as profiled by
 * LwM2M TS 1.1 §7.4.5.
 *
 * Same data model and rules as senml_json.c (names, base fields, value kinds,
 * what is ignored and what is refused); the CBOR specifics are:
 *  - Labels are the integers of RFC 8428 Table 4: bver -1, bn -2, bt -3,
 *    bu -4, bv -5, bs -6, n 0, u 1, v 2, vs 3, vb 4, s 5, t 6, ut 7, vd 8.
 *    That table is conclusive (RFC 8428 §6), so any other integer label is
 *    refused. Extensions use text labels: "vlo" (LwM2M object link) is known,
 *    the JSON names of Table 4 ("n", "v", ...) are read as those labels
 *    (tolerated: what a JSON-to-CBOR translation produces), a text label
 *    ending in '_' is must-understand and refused, any other text label is
 *    skipped with its value. A label of another CBOR type is refused.
 *  - Strings are definite-length text (UTF-8, checked), opaque values are
 *    definite-length byte strings (RFC 8428 §6); indefinite-length strings are
 *    refused. Numbers are integers or half/single/double floats; tags (e.g.
 *    decimal fractions) are refused.
 *  - The top-level array and the record maps may be definite or indefinite.
 *
 * Safety: the payload is walked with libcbor's streaming decoder
 * (cbor_stream_decode), one item header at a time; nothing is allocated from
 * a declared count, a string is only seen once all of its bytes are in the
 * buffer (libcbor checks that before calling back), a declared count larger
 * than what follows simply ends in "truncated" (4.00), and nesting is fixed
 * (array > map > scalar) except inside a skipped extension value, whose depth
 * is capped at SKIP_MAX. No item tree is built, so nothing is freed
 * recursively.
 *
 * Encoding: an array of maps with integer labels (text "vlo"), named as in
 * senml_json.c (lwm2m__senml_names); integers as CBOR integers, floats as
 * single precision when that is exact and double otherwise (RFC 8428 §6
 * only asks that the value be the same once read as a double). */
#include <cbor.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/lwm2m/codec_int.h"

#define SENML_MAX_VERSION 10
#define SKIP_MAX 16

enum label {
    L_BVER, L_BN, L_BT, L_BU, L_BV, L_BS, L_N, L_U, L_V, L_VS, L_VB, L_S, L_T, L_UT, L_VD, L_VLO,
    L_IGNORED, /* an unknown text label: skip its value */
};

typedef enum { NUM_I, NUM_U, NUM_F } num_kind_t;
typedef struct {
    num_kind_t kind;
    int64_t i;
    uint64_t u;
    double f;
} num_t;

/* one decoded CBOR item */
typedef enum {
    IT_UINT, IT_NEGINT, IT_BYTES, IT_TEXT, IT_ARRAY, IT_MAP, IT_INDEF_ARRAY, IT_INDEF_MAP,
    IT_INDEF_STRING, IT_TAG, IT_FLOAT, IT_BOOL, IT_NULL, IT_UNDEF, IT_BREAK,
} item_kind_t;
typedef struct {
    item_kind_t kind;
    uint64_t u; /* UINT value, NEGINT n (value -1-n), ARRAY/MAP count */
    const uint8_t *data;
    size_t len;
    double f;
    bool b;
} item_t;

typedef struct {
    const lwm2m_path_t *base;
    lwm2m_records_t *out;
    int err;
    bool done;
    enum { S_TOP, S_RECORD, S_KEY, S_VALUE } state;
    bool top_indef;
    uint64_t top_left;
    bool map_indef;
    uint64_t map_left;
    enum label key;
    /* record under construction */
    uint32_t seen; /* bit per label */
    const uint8_t *n;
    size_t nlen;
    bool has_value;
    enum label vkey;
    num_t num;
    const uint8_t *vdata; /* vs / vd / vlo bytes, pointing into the input */
    size_t vlen;
    bool vb;
    /* base fields, valid onwards */
    const uint8_t *bn;
    size_t bnlen;
    bool has_bv;
    num_t bv;
    /* skipping an ignored extension value */
    int skip_depth;
    struct {
        bool indef;
        uint64_t left;
    } skip[SKIP_MAX];
} dec_t;

static void fail(dec_t *d, int rc)
{
    if (!d->err)
        d->err = rc;
}

static void record_begin(dec_t *d)
{
    d->seen = 0;
    d->n = NULL;
    d->nlen = 0;
    d->has_value = false;
}

/* bv + v, as senml_json.c: integer when both are integers and it fits. */
static int resolve_number(const dec_t *d, lwm2m_record_t *r)
{
    num_t v = d->num;
    if (d->has_bv) {
        num_t b = d->bv;
        if (v.kind == NUM_I && b.kind == NUM_I) {
            if ((v.i > 0 && b.i > INT64_MAX - v.i) || (v.i < 0 && b.i < INT64_MIN - v.i))
                return LWM2M_ERR_BAD_REQUEST;
            v.i += b.i;
        } else {
            double x = v.kind == NUM_F ? v.f : v.kind == NUM_U ? (double)v.u : (double)v.i;
            double y = b.kind == NUM_F ? b.f : b.kind == NUM_U ? (double)b.u : (double)b.i;
            v.kind = NUM_F;
            v.f = x + y;
            if (!isfinite(v.f))
                return LWM2M_ERR_BAD_REQUEST;
        }
    }
    switch (v.kind) {
    case NUM_I:
        r->type = LWM2M_T_INTEGER;
        r->v.i = v.i;
        break;
    case NUM_U:
        r->type = LWM2M_T_UNSIGNED;
        r->v.u = v.u;
        break;
    case NUM_F:
        r->type = LWM2M_T_FLOAT;
        r->v.f = v.f;
        break;
    }
    return LWM2M_OK;
}

static int record_end(dec_t *d)
{
    size_t total = d->bnlen + d->nlen;
    char *name = malloc(total + 1);
    if (!name)
        return LWM2M_ERR_INTERNAL;
    if (d->bnlen)
        memcpy(name, d->bn, d->bnlen);
    if (d->nlen)
        memcpy(name + d->bnlen, d->n, d->nlen);
    name[total] = '\0';
    lwm2m_path_t path;
    int rc = lwm2m_path_parse(name, total, &path);
    free(name);
    if (rc != LWM2M_OK || !lwm2m_path_starts_with(&path, d->base))
        return LWM2M_ERR_BAD_REQUEST;
    lwm2m_record_t r;
    memset(&r, 0, sizeof r);
    r.path = path;
    r.type = LWM2M_T_NONE;
    if (d->has_value) {
        if (path.len < 3)
            return LWM2M_ERR_BAD_REQUEST;
        switch (d->vkey) {
        case L_V:
            rc = resolve_number(d, &r);
            break;
        case L_VB:
            r.type = LWM2M_T_BOOLEAN;
            r.v.b = d->vb;
            break;
        case L_VLO:
            r.type = LWM2M_T_OBJLNK;
            rc = lwm2m__parse_objlnk((const char *)d->vdata, d->vlen, &r.v.lnk.oid, &r.v.lnk.iid);
            break;
        default: /* L_VS, L_VD */
            r.type = d->vkey == L_VS ? LWM2M_T_STRING : LWM2M_T_OPAQUE;
            r.bytes = (uint8_t *)(uintptr_t)d->vdata;
            r.nbytes = d->vlen;
            return lwm2m_records_add(d->out, &r); /* copies the bytes */
        }
        if (rc != LWM2M_OK)
            return rc;
    }
    return lwm2m_records_add(d->out, &r);
}

/* A record map is complete: build it, then account for it in the array. */
static void map_done(dec_t *d)
{
    int rc = record_end(d);
    if (rc != LWM2M_OK) {
        fail(d, rc);
        return;
    }
    d->state = S_RECORD;
    if (!d->top_indef && --d->top_left == 0)
        d->done = true;
}

/* A value is complete: back to the next key, or the map is done. */
static void value_done(dec_t *d)
{
    d->state = S_KEY;
    if (!d->map_indef && --d->map_left == 0)
        map_done(d);
}

/* An item of a skipped value finished (a scalar, or a whole container). */
static void skip_item_done(dec_t *d)
{
    while (d->skip_depth > 0) {
        if (d->skip[d->skip_depth - 1].indef || --d->skip[d->skip_depth - 1].left > 0)
            return;
        d->skip_depth--; /* the container is complete: one item of its parent */
    }
    value_done(d);
}

static void skip_item(dec_t *d, const item_t *it)
{
    switch (it->kind) {
    case IT_TAG:
        return; /* a tag is a prefix, not an item */
    case IT_INDEF_STRING:
        fail(d, LWM2M_ERR_BAD_REQUEST);
        return;
    case IT_BREAK:
        if (d->skip_depth == 0 || !d->skip[d->skip_depth - 1].indef) {
            fail(d, LWM2M_ERR_BAD_REQUEST);
            return;
        }
        d->skip_depth--;
        skip_item_done(d);
        return;
    case IT_ARRAY:
    case IT_MAP:
    case IT_INDEF_ARRAY:
    case IT_INDEF_MAP: {
        bool indef = it->kind == IT_INDEF_ARRAY || it->kind == IT_INDEF_MAP;
        uint64_t count = it->u;
        if (it->kind == IT_MAP) {
            if (count > UINT64_MAX / 2) {
                fail(d, LWM2M_ERR_BAD_REQUEST);
                return;
            }
            count *= 2; /* keys and values */
        }
        if (!indef && count == 0) {
            skip_item_done(d);
            return;
        }
        if (d->skip_depth == SKIP_MAX) {
            fail(d, LWM2M_ERR_BAD_REQUEST); /* nesting bound */
            return;
        }
        d->skip[d->skip_depth].indef = indef;
        d->skip[d->skip_depth].left = count;
        d->skip_depth++;
        return;
    }
    default:
        skip_item_done(d);
        return;
    }
}

static bool get_num(const item_t *it, num_t *n)
{
    switch (it->kind) {
    case IT_UINT:
        if (it->u <= (uint64_t)INT64_MAX) {
            n->kind = NUM_I;
            n->i = (int64_t)it->u;
        } else {
            n->kind = NUM_U;
            n->u = it->u;
        }
        return true;
    case IT_NEGINT:
        if (it->u > (uint64_t)INT64_MAX)
            return false; /* below INT64_MIN */
        n->kind = NUM_I;
        n->i = -1 - (int64_t)it->u;
        return true;
    case IT_FLOAT:
        n->kind = NUM_F;
        n->f = it->f;
        return true;
    default:
        return false;
    }
}

static int key_from_item(const item_t *it, enum label *out)
{
    if (it->kind == IT_UINT || it->kind == IT_NEGINT) {
        static const enum label neg[] = {L_BVER, L_BN, L_BT, L_BU, L_BV, L_BS}; /* -1..-6 */
        static const enum label pos[] = {L_N, L_U, L_V, L_VS, L_VB, L_S, L_T, L_UT, L_VD}; /* 0..8 */
        if (it->kind == IT_NEGINT && it->u < sizeof neg / sizeof neg[0]) {
            *out = neg[it->u];
            return LWM2M_OK;
        }
        if (it->kind == IT_UINT && it->u < sizeof pos / sizeof pos[0]) {
            *out = pos[it->u];
            return LWM2M_OK;
        }
        return LWM2M_ERR_BAD_REQUEST; /* Table 4 is conclusive */
    }
    if (it->kind == IT_TEXT) {
        /* "vlo", and the JSON names of the Table 4 labels: a JSON-to-CBOR
         * translation may keep them as text, and their meaning is not in
         * doubt (a pack using both 2 and "v" is refused as a duplicate) */
        static const struct {
            const char *name;
            enum label l;
        } names[] = {{"vlo", L_VLO}, {"bver", L_BVER}, {"bn", L_BN}, {"bt", L_BT}, {"bu", L_BU},
                     {"bv", L_BV},   {"bs", L_BS},     {"n", L_N},   {"u", L_U},   {"v", L_V},
                     {"vs", L_VS},   {"vb", L_VB},     {"s", L_S},   {"t", L_T},   {"ut", L_UT},
                     {"vd", L_VD}};
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
            if (strlen(names[k].name) == it->len && memcmp(it->data, names[k].name, it->len) == 0) {
                *out = names[k].l;
                return LWM2M_OK;
            }
        }
        if (it->len > 0 && it->data[it->len - 1] == '_')
            return LWM2M_ERR_BAD_REQUEST; /* must-understand */
        *out = L_IGNORED;
        return LWM2M_OK;
    }
    return LWM2M_ERR_BAD_REQUEST; /* wrong label type */
}

static int take_value(dec_t *d, const item_t *it)
{
    enum label k = d->key;
    num_t num;
    switch (k) {
    case L_BN:
    case L_N:
    case L_BU:
    case L_U:
    case L_VS:
    case L_VLO:
        if (it->kind != IT_TEXT || !lwm2m__utf8_valid(it->data, it->len))
            return LWM2M_ERR_BAD_REQUEST;
        if (k == L_BN) {
            d->bn = it->data;
            d->bnlen = it->len;
        } else if (k == L_N) {
            d->n = it->data;
            d->nlen = it->len;
        } else if (k == L_VS || k == L_VLO) {
            d->vdata = it->data;
            d->vlen = it->len;
        }
        break;
    case L_VD:
        if (it->kind != IT_BYTES)
            return LWM2M_ERR_BAD_REQUEST;
        d->vdata = it->data;
        d->vlen = it->len;
        break;
    case L_VB:
        if (it->kind != IT_BOOL)
            return LWM2M_ERR_BAD_REQUEST;
        d->vb = it->b;
        break;
    case L_BVER:
        if (it->kind != IT_UINT || it->u > SENML_MAX_VERSION)
            return LWM2M_ERR_BAD_REQUEST;
        break;
    case L_V:
    case L_BV:
    case L_BT:
    case L_BS:
    case L_S:
    case L_T:
    case L_UT:
        if (!get_num(it, &num))
            return LWM2M_ERR_BAD_REQUEST;
        if (k == L_V) {
            d->num = num;
        } else if (k == L_BV) {
            d->has_bv = true;
            d->bv = num;
        }
        break;
    case L_IGNORED:
        break; /* not reached: handled by skip_item */
    }
    if (k == L_V || k == L_VS || k == L_VB || k == L_VD || k == L_VLO) {
        if (d->has_value)
            return LWM2M_ERR_BAD_REQUEST; /* two values */
        d->has_value = true;
        d->vkey = k;
    }
    return LWM2M_OK;
}

static void on_item(dec_t *d, const item_t *it)
{
    if (d->err)
        return;
    if (d->done) {
        fail(d, LWM2M_ERR_BAD_REQUEST);
        return;
    }
    switch (d->state) {
    case S_TOP:
        if (it->kind == IT_ARRAY) {
            d->top_indef = false;
            d->top_left = it->u;
            d->state = S_RECORD;
            if (it->u == 0)
                d->done = true;
        } else if (it->kind == IT_INDEF_ARRAY) {
            d->top_indef = true;
            d->state = S_RECORD;
        } else {
            fail(d, LWM2M_ERR_BAD_REQUEST); /* not an array */
        }
        return;
    case S_RECORD:
        if (it->kind == IT_BREAK && d->top_indef) {
            d->done = true;
        } else if (it->kind == IT_MAP || it->kind == IT_INDEF_MAP) {
            record_begin(d);
            d->map_indef = it->kind == IT_INDEF_MAP;
            d->map_left = it->u;
            d->state = S_KEY;
            if (!d->map_indef && it->u == 0)
                map_done(d);
        } else {
            fail(d, LWM2M_ERR_BAD_REQUEST); /* a record must be a map */
        }
        return;
    case S_KEY: {
        if (it->kind == IT_BREAK && d->map_indef) {
            map_done(d);
            return;
        }
        enum label k;
        int rc = key_from_item(it, &k);
        if (rc != LWM2M_OK) {
            fail(d, rc);
            return;
        }
        if (k != L_IGNORED) {
            if (d->seen & (1u << k)) {
                fail(d, LWM2M_ERR_BAD_REQUEST); /* duplicate label */
                return;
            }
            d->seen |= 1u << k;
        }
        d->key = k;
        d->skip_depth = 0;
        d->state = S_VALUE;
        return;
    }
    case S_VALUE:
        if (d->key == L_IGNORED) {
            skip_item(d, it);
            return;
        }
        {
            int rc = take_value(d, it);
            if (rc != LWM2M_OK) {
                fail(d, rc);
                return;
            }
        }
        value_done(d);
        return;
    }
}

/* ---- libcbor streaming callbacks: each turns its item into an item_t ---- */

static void cb_uint(void *c, uint64_t v)
{
    item_t it = {.kind = IT_UINT, .u = v};
    on_item(c, &it);
}
static void cb_u8(void *c, uint8_t v) { cb_uint(c, v); }
static void cb_u16(void *c, uint16_t v) { cb_uint(c, v); }
static void cb_u32(void *c, uint32_t v) { cb_uint(c, v); }
static void cb_neg(void *c, uint64_t v)
{
    item_t it = {.kind = IT_NEGINT, .u = v};
    on_item(c, &it);
}
static void cb_n8(void *c, uint8_t v) { cb_neg(c, v); }
static void cb_n16(void *c, uint16_t v) { cb_neg(c, v); }
static void cb_n32(void *c, uint32_t v) { cb_neg(c, v); }
static void cb_bytes(void *c, cbor_data data, size_t len)
{
    item_t it = {.kind = IT_BYTES, .data = data, .len = len};
    on_item(c, &it);
}
static void cb_text(void *c, cbor_data data, size_t len)
{
    item_t it = {.kind = IT_TEXT, .data = data, .len = len};
    on_item(c, &it);
}
static void cb_indef_string(void *c)
{
    item_t it = {.kind = IT_INDEF_STRING};
    on_item(c, &it);
}
static void cb_array(void *c, size_t n)
{
    item_t it = {.kind = IT_ARRAY, .u = n};
    on_item(c, &it);
}
static void cb_indef_array(void *c)
{
    item_t it = {.kind = IT_INDEF_ARRAY};
    on_item(c, &it);
}
static void cb_map(void *c, size_t n)
{
    item_t it = {.kind = IT_MAP, .u = n};
    on_item(c, &it);
}
static void cb_indef_map(void *c)
{
    item_t it = {.kind = IT_INDEF_MAP};
    on_item(c, &it);
}
static void cb_tag(void *c, uint64_t v)
{
    item_t it = {.kind = IT_TAG, .u = v};
    /* tags are refused on SenML values, but may occur inside skipped ones */
    dec_t *d = c;
    if (d->state == S_VALUE && d->key == L_IGNORED)
        on_item(c, &it);
    else
        fail(d, LWM2M_ERR_BAD_REQUEST);
}
static void cb_float(void *c, float f)
{
    item_t it = {.kind = IT_FLOAT, .f = (double)f};
    on_item(c, &it);
}
static void cb_double(void *c, double f)
{
    item_t it = {.kind = IT_FLOAT, .f = f};
    on_item(c, &it);
}
static void cb_null(void *c)
{
    item_t it = {.kind = IT_NULL};
    on_item(c, &it);
}
static void cb_undef(void *c)
{
    item_t it = {.kind = IT_UNDEF};
    on_item(c, &it);
}
static void cb_bool(void *c, bool b)
{
    item_t it = {.kind = IT_BOOL, .b = b};
    on_item(c, &it);
}
static void cb_break(void *c)
{
    item_t it = {.kind = IT_BREAK};
    on_item(c, &it);
}

/* Mind libcbor 0.8's callbacks.h: its doc comments on byte_string /
 * byte_string_start (and the array/map pairs) are swapped; the member names
 * are right: `byte_string` gets a definite string, `*_start` an indefinite. */
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
    .byte_string_start = cb_indef_string,
    .string = cb_text,
    .string_start = cb_indef_string,
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

int lwm2m_senml_cbor_decode(const lwm2m_path_t *base, const uint8_t *buf, size_t len, lwm2m_records_t *out)
{
    if (!base || !out || (!buf && len > 0) || base->len > 4)
        return LWM2M_ERR_BAD_REQUEST;
    if (len > LWM2M_MAX_PAYLOAD)
        return LWM2M_ERR_REQUEST_TOO_LARGE;
    dec_t d;
    memset(&d, 0, sizeof d);
    d.base = base;
    d.out = out;
    d.state = S_TOP;
    size_t n0 = out->n;
    size_t pos = 0;
    while (pos < len && !d.done && !d.err) {
        struct cbor_decoder_result res = cbor_stream_decode(buf + pos, len - pos, &callbacks, &d);
        if (res.status != CBOR_DECODER_FINISHED || res.read == 0) {
            fail(&d, LWM2M_ERR_BAD_REQUEST); /* truncated or malformed */
            break;
        }
        pos += res.read;
    }
    if (!d.err && (!d.done || pos != len))
        d.err = LWM2M_ERR_BAD_REQUEST; /* truncated, or trailing bytes */
    if (d.err)
        lwm2m__records_truncate(out, n0);
    return d.err;
}

/* ============================================================== encoding */

/* Runs one cbor_encode_* call against the free space of the buffer (a CBOR
 * header is at most 9 bytes). */
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

static int put_value(lwm2m__buf_t *b, const lwm2m_record_t *r)
{
    switch (r->type) {
    case LWM2M_T_NONE:
        break;
    case LWM2M_T_STRING:
    case LWM2M_T_CORELNK:
        if (!lwm2m__utf8_valid(r->bytes, r->nbytes))
            return LWM2M_ERR_BAD_REQUEST; /* CBOR text must be UTF-8 */
        put_int(b, 3);
        put_text(b, r->bytes, r->nbytes);
        break;
    case LWM2M_T_OPAQUE:
        put_int(b, 8);
        CB_PUT(b, cbor_encode_bytestring_start(r->nbytes, at_, room_));
        lwm2m__buf_put(b, r->bytes, r->nbytes);
        break;
    case LWM2M_T_INTEGER:
    case LWM2M_T_TIME:
        put_int(b, 2);
        put_int(b, r->v.i);
        break;
    case LWM2M_T_UNSIGNED:
        put_int(b, 2);
        CB_PUT(b, cbor_encode_uint(r->v.u, at_, room_));
        break;
    case LWM2M_T_FLOAT:
        put_int(b, 2);
        if (lwm2m__fits_float(r->v.f))
            CB_PUT(b, cbor_encode_single((float)r->v.f, at_, room_));
        else
            CB_PUT(b, cbor_encode_double(r->v.f, at_, room_));
        break;
    case LWM2M_T_BOOLEAN:
        put_int(b, 4);
        CB_PUT(b, cbor_encode_bool(r->v.b, at_, room_));
        break;
    case LWM2M_T_OBJLNK: {
        char tmp[16];
        int m = snprintf(tmp, sizeof tmp, "%u:%u", (unsigned)r->v.lnk.oid, (unsigned)r->v.lnk.iid);
        put_text(b, "vlo", 3);
        put_text(b, tmp, (size_t)m);
        break;
    }
    }
    return LWM2M_OK;
}

int lwm2m_senml_cbor_encode(const lwm2m_path_t *base, const lwm2m_records_t *rs, uint8_t **out, size_t *outlen)
{
    if (!base || !rs || !out || !outlen)
        return LWM2M_ERR_BAD_REQUEST;
    lwm2m__senml_names_t nm;
    int rc = lwm2m__senml_names(base, rs, &nm);
    if (rc != LWM2M_OK)
        return rc;
    lwm2m__buf_t b;
    lwm2m__buf_init(&b);
    CB_PUT(&b, cbor_encode_array_start(rs->n, at_, room_));
    for (size_t i = 0; i < rs->n && rc == LWM2M_OK; i++) {
        const lwm2m_record_t *r = &rs->recs[i];
        bool bn = i == 0 && nm.bn;
        size_t fields = (size_t)bn + (size_t)nm.n + (r->type != LWM2M_T_NONE);
        CB_PUT(&b, cbor_encode_map_start(fields, at_, room_));
        if (bn) {
            put_int(&b, -2);
            put_text(&b, nm.bn_text, strlen(nm.bn_text));
        }
        if (nm.n) {
            char n[32];
            int m = lwm2m__senml_n(base, &r->path, n, sizeof n);
            if (m < 0) {
                rc = LWM2M_ERR_BAD_REQUEST;
                break;
            }
            put_int(&b, 0);
            put_text(&b, n, (size_t)m);
        }
        rc = put_value(&b, r);
    }
    if (rc != LWM2M_OK) {
        lwm2m__buf_free(&b);
        return rc;
    }
    return lwm2m__buf_finish(&b, out, outlen);
}
