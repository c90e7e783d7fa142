/* OMA TLV (application/vnd.oma.lwm2m+tlv, CF 11542, old 1542).
 * LwM2M TS 1.0 §6.4.3 (TS 1.1 §7.4.3 keeps it as a legacy format).
 *
 * Type byte:   bits 7-6  identifier type: 00 object instance, 01 resource
 *                        instance, 10 multiple resource, 11 resource with value
 *              bit 5     identifier length: 0 = 8 bits, 1 = 16 bits
 *              bits 4-3  length type: 00 = length in bits 2-0, 01/10/11 = an
 *                        8/16/24-bit length field follows the identifier
 *              bits 2-0  value length when bits 4-3 are 00
 * then the identifier, the length field, the value.
 *
 * Nesting is fixed by the spec: object instance > resource (11) or multiple
 * resource (10) > resource instance (01). The decoder walks exactly these
 * three levels with loops, never recursion on input, so depth is bounded by
 * construction. Every length is checked against what is left of its
 * enclosing value before anything is read.
 *
 * Choices (documented here because the TS leaves them open):
 *  - Decoding tolerates what real clients send: an object-instance wrapper
 *    around a /o/i payload (if its id matches), bare resource instances for a
 *    /o/i/r payload, a resource (11) for a /o/i/r/ri payload. Non-zero bits
 *    2-0 with a length field, and non-minimal length fields, are ignored.
 *  - Encoding is canonical: smallest identifier and length fields, integers
 *    in the fewest of 1/2/4/8 bytes, Unsigned Integers with the sign bit clear
 *    whenever the value allows it (so 1.0 readers that treat every integer as
 *    signed still read the right value; values above INT64_MAX need all 8
 *    bytes), floats in 4 bytes when the value survives the round trip through
 *    a float and in 8 bytes otherwise. A multiple resource addressed at /o/i/r
 *    is sent inside its 10 wrapper, as Leshan and Wakaama do. */
#include <stdlib.h>
#include <string.h>

#include "server/lwm2m/codec_int.h"

enum { TLV_OBJ_INST = 0, TLV_RES_INST = 1, TLV_MULTI_RES = 2, TLV_RES = 3 };

#define TLV_MAX_VALUE 0xFFFFFFu /* 24-bit length field */

typedef struct {
    unsigned kind;
    uint16_t id;
    const uint8_t *val;
    size_t len;
} tlv_t;

/* ============================================================== decoding */

/* Reads one TLV at buf[*pos] within [0, len). */
static int tlv_read(const uint8_t *buf, size_t len, size_t *pos, tlv_t *t)
{
    size_t p = *pos;
    if (p >= len)
        return LWM2M_ERR_BAD_REQUEST;
    uint8_t h = buf[p++];
    size_t idlen = (h & 0x20) ? 2 : 1;
    size_t lenlen = (h >> 3) & 3;
    if (len - p < idlen + lenlen)
        return LWM2M_ERR_BAD_REQUEST; /* header cut short */
    unsigned id = buf[p];
    if (idlen == 2)
        id = id << 8 | buf[p + 1];
    p += idlen;
    size_t vlen = 0;
    if (lenlen == 0) {
        vlen = h & 7;
    } else {
        for (size_t k = 0; k < lenlen; k++)
            vlen = vlen << 8 | buf[p++];
    }
    if (vlen > len - p)
        return LWM2M_ERR_BAD_REQUEST; /* declared length past the end */
    if (id == LWM2M_ID_NONE)
        return LWM2M_ERR_BAD_REQUEST; /* 65535 is reserved */
    t->kind = h >> 6;
    t->id = (uint16_t)id;
    t->val = buf + p;
    t->len = vlen;
    *pos = p + vlen;
    return LWM2M_OK;
}

/* Ids of the items of one container, to refuse a repeated id (two wrappers
 * for one instance, a resource sent twice): such a payload has no single
 * meaning. An item takes at least 2 bytes, which bounds the count. */
typedef struct {
    uint16_t *ids;
    size_t n;
} idset_t;

static int idset_init(idset_t *s, size_t len)
{
    s->n = 0;
    s->ids = malloc((len / 2 + 1) * sizeof *s->ids);
    return s->ids ? LWM2M_OK : LWM2M_ERR_INTERNAL;
}

static int cmp_u16(const void *a, const void *b)
{
    uint16_t x = *(const uint16_t *)a, y = *(const uint16_t *)b;
    return (x > y) - (x < y);
}

/* Frees the set; BAD_REQUEST if an id repeats, else rc. */
static int idset_done(idset_t *s, int rc)
{
    if (rc == LWM2M_OK && s->n > 1) {
        qsort(s->ids, s->n, sizeof *s->ids, cmp_u16);
        for (size_t i = 1; i < s->n; i++)
            if (s->ids[i] == s->ids[i - 1])
                rc = LWM2M_ERR_BAD_REQUEST;
    }
    free(s->ids);
    s->ids = NULL;
    return rc;
}

static int add_raw(lwm2m_records_t *out, lwm2m_path_t path, const uint8_t *val, size_t len)
{
    uint8_t *copy = malloc(len + 1);
    if (!copy)
        return LWM2M_ERR_INTERNAL;
    if (len)
        memcpy(copy, val, len);
    copy[len] = '\0';
    lwm2m_record_t *r = lwm2m__records_push(out);
    if (!r) {
        free(copy);
        return LWM2M_ERR_INTERNAL;
    }
    r->path = path;
    r->type = LWM2M_T_OPAQUE; /* TLV carries no type (codec.h) */
    r->bytes = copy;
    r->nbytes = len;
    return LWM2M_OK;
}

static lwm2m_path_t child(lwm2m_path_t p, uint16_t id)
{
    p.ids[p.len++] = id;
    return p;
}

/* The content of a multiple resource (10): resource instances only. */
static int dec_multi(lwm2m_records_t *out, lwm2m_path_t res, const uint8_t *buf, size_t len)
{
    size_t pos = 0;
    idset_t seen;
    int rc = idset_init(&seen, len);
    while (rc == LWM2M_OK && pos < len) {
        tlv_t t;
        rc = tlv_read(buf, len, &pos, &t);
        if (rc != LWM2M_OK)
            break;
        if (t.kind != TLV_RES_INST)
            rc = LWM2M_ERR_BAD_REQUEST; /* wrong nesting */
        else
            rc = add_raw(out, child(res, t.id), t.val, t.len);
        seen.ids[seen.n++] = t.id;
    }
    return idset_done(&seen, rc);
}

/* One item at resource level: 11 (a value) or 10 (instances). */
static int dec_resource(lwm2m_records_t *out, lwm2m_path_t inst, const tlv_t *t)
{
    if (t->kind == TLV_RES)
        return add_raw(out, child(inst, t->id), t->val, t->len);
    if (t->kind == TLV_MULTI_RES)
        return dec_multi(out, child(inst, t->id), t->val, t->len);
    return LWM2M_ERR_BAD_REQUEST; /* 00 or 01 where a resource belongs */
}

/* The content of an object instance: resources. */
static int dec_resources(lwm2m_records_t *out, lwm2m_path_t inst, const uint8_t *buf, size_t len)
{
    size_t pos = 0;
    idset_t seen;
    int rc = idset_init(&seen, len);
    while (rc == LWM2M_OK && pos < len) {
        tlv_t t;
        rc = tlv_read(buf, len, &pos, &t);
        if (rc != LWM2M_OK)
            break;
        rc = dec_resource(out, inst, &t);
        seen.ids[seen.n++] = t.id;
    }
    return idset_done(&seen, rc);
}

static int decode_at(const lwm2m_path_t *base, const uint8_t *buf, size_t len, lwm2m_records_t *out)
{
    size_t pos = 0;
    tlv_t t;
    int rc;
    switch (base->len) {
    case 1: { /* /o: a sequence of object instances */
        idset_t seen;
        rc = idset_init(&seen, len);
        while (rc == LWM2M_OK && pos < len) {
            if ((rc = tlv_read(buf, len, &pos, &t)) != LWM2M_OK)
                break;
            if (t.kind != TLV_OBJ_INST)
                rc = LWM2M_ERR_BAD_REQUEST;
            else
                rc = dec_resources(out, child(*base, t.id), t.val, t.len);
            seen.ids[seen.n++] = t.id;
        }
        return idset_done(&seen, rc);
    }
    case 2: /* /o/i: resources, or (tolerated) one wrapper for this instance */
        if (len > 0) {
            size_t p0 = 0;
            if ((rc = tlv_read(buf, len, &p0, &t)) != LWM2M_OK)
                return rc;
            if (t.kind == TLV_OBJ_INST) {
                if (t.id != base->ids[1] || p0 != len)
                    return LWM2M_ERR_BAD_REQUEST;
                return dec_resources(out, *base, t.val, t.len);
            }
        }
        return dec_resources(out, *base, buf, len);
    case 3: { /* /o/i/r: one 11 or 10 for this resource, or bare 01s */
        lwm2m_path_t inst = *base;
        inst.len = 2;
        bool bare = false;
        while (pos < len) {
            size_t start = pos;
            if ((rc = tlv_read(buf, len, &pos, &t)) != LWM2M_OK)
                return rc;
            if (t.kind == TLV_RES_INST) {
                if (start > 0 && !bare)
                    return LWM2M_ERR_BAD_REQUEST;
                bare = true;
                rc = add_raw(out, child(*base, t.id), t.val, t.len);
            } else {
                if (start > 0 || pos != len || t.id != base->ids[2])
                    return LWM2M_ERR_BAD_REQUEST; /* another resource, or more items */
                rc = dec_resource(out, inst, &t);
            }
            if (rc != LWM2M_OK)
                return rc;
        }
        return LWM2M_OK;
    }
    case 4: /* /o/i/r/ri: one resource instance (or, tolerated, a resource) */
        if (len == 0)
            return LWM2M_OK;
        if ((rc = tlv_read(buf, len, &pos, &t)) != LWM2M_OK)
            return rc;
        if (pos != len || t.id != base->ids[3] || (t.kind != TLV_RES_INST && t.kind != TLV_RES))
            return LWM2M_ERR_BAD_REQUEST;
        return add_raw(out, *base, t.val, t.len);
    default: /* the root cannot be expressed in TLV */
        return LWM2M_ERR_BAD_REQUEST;
    }
}

int lwm2m_tlv_decode(const lwm2m_path_t *base, const uint8_t *buf, size_t len, lwm2m_records_t *out)
{
    if (!base || !out || (!buf && len > 0) || base->len > 4)
        return LWM2M_ERR_BAD_REQUEST;
    if (len > LWM2M_MAX_PAYLOAD)
        return LWM2M_ERR_REQUEST_TOO_LARGE;
    for (size_t k = 0; k < base->len; k++)
        if (base->ids[k] == LWM2M_ID_NONE)
            return LWM2M_ERR_BAD_REQUEST;
    size_t n0 = out->n;
    int rc = decode_at(base, buf, len, out);
    if (rc == LWM2M_OK)
        rc = lwm2m__records_check_unique(out, n0); /* duplicate ids: ambiguous */
    if (rc != LWM2M_OK)
        lwm2m__records_truncate(out, n0);
    return rc;
}

/* ============================================================== encoding */

static void put_hdr(lwm2m__buf_t *b, unsigned kind, uint16_t id, size_t vlen)
{
    uint8_t h[6];
    size_t n = 1;
    h[0] = (uint8_t)(kind << 6);
    if (id > 0xFF) {
        h[0] |= 0x20;
        h[n++] = (uint8_t)(id >> 8);
    }
    h[n++] = (uint8_t)id;
    if (vlen < 8) {
        h[0] |= (uint8_t)vlen;
    } else {
        size_t lenlen = vlen <= 0xFF ? 1 : vlen <= 0xFFFF ? 2 : 3;
        h[0] |= (uint8_t)(lenlen << 3);
        for (size_t k = lenlen; k-- > 0;)
            h[n++] = (uint8_t)(vlen >> (8 * k));
    }
    lwm2m__buf_put(b, h, n);
}

/* Big-endian bytes of the record's value in `tmp` (or its own buffer). */
static void value_bytes(const lwm2m_record_t *r, uint8_t tmp[8], const uint8_t **val, size_t *len)
{
    uint64_t u = 0;
    size_t n = 0;
    switch (r->type) {
    case LWM2M_T_STRING:
    case LWM2M_T_OPAQUE:
    case LWM2M_T_CORELNK:
        *val = r->bytes;
        *len = r->nbytes;
        return;
    case LWM2M_T_INTEGER:
    case LWM2M_T_TIME: {
        int64_t i = r->v.i;
        n = (i >= INT8_MIN && i <= INT8_MAX) ? 1 : (i >= INT16_MIN && i <= INT16_MAX) ? 2
            : (i >= INT32_MIN && i <= INT32_MAX) ? 4 : 8;
        u = (uint64_t)i; /* two's complement, truncated below */
        break;
    }
    case LWM2M_T_UNSIGNED:
        u = r->v.u;
        n = u <= 0x7F ? 1 : u <= 0x7FFF ? 2 : u <= 0x7FFFFFFF ? 4 : 8;
        break;
    case LWM2M_T_FLOAT:
        if (lwm2m__fits_float(r->v.f)) {
            float f = (float)r->v.f;
            uint32_t u32;
            memcpy(&u32, &f, sizeof u32);
            u = u32;
            n = 4;
        } else {
            memcpy(&u, &r->v.f, sizeof u);
            n = 8;
        }
        break;
    case LWM2M_T_BOOLEAN:
        u = r->v.b ? 1 : 0;
        n = 1;
        break;
    case LWM2M_T_OBJLNK:
        u = (uint64_t)r->v.lnk.oid << 16 | r->v.lnk.iid;
        n = 4;
        break;
    case LWM2M_T_NONE:
        break;
    }
    for (size_t k = 0; k < n; k++)
        tmp[k] = (uint8_t)(u >> (8 * (n - 1 - k)));
    *val = tmp;
    *len = n;
}

static void put_value(lwm2m__buf_t *b, unsigned kind, uint16_t id, const lwm2m_record_t *r)
{
    uint8_t tmp[8];
    const uint8_t *val = NULL;
    size_t len = 0;
    value_bytes(r, tmp, &val, &len);
    put_hdr(b, kind, id, len);
    lwm2m__buf_put(b, val, len);
}

/* recs[0..n) are the resource instances of one resource, sorted. */
static void put_multi(lwm2m__buf_t *b, const lwm2m_record_t *const *recs, size_t n, bool *too_big)
{
    lwm2m__buf_t c;
    lwm2m__buf_init(&c);
    c.count_only = true;
    for (size_t k = 0; k < n; k++)
        put_value(&c, TLV_RES_INST, recs[k]->path.ids[3], recs[k]);
    if (c.n > TLV_MAX_VALUE)
        *too_big = true;
    put_hdr(b, TLV_MULTI_RES, recs[0]->path.ids[2], c.n);
    for (size_t k = 0; k < n; k++)
        put_value(b, TLV_RES_INST, recs[k]->path.ids[3], recs[k]);
}

/* recs[0..n) all lie in one object instance, sorted: emits its resources. */
static void put_resources(lwm2m__buf_t *b, const lwm2m_record_t *const *recs, size_t n, bool *too_big)
{
    size_t k = 0;
    while (k < n) {
        if (recs[k]->path.len == 3) {
            put_value(b, TLV_RES, recs[k]->path.ids[2], recs[k]);
            k++;
            continue;
        }
        size_t e = k + 1;
        while (e < n && recs[e]->path.len == 4 && recs[e]->path.ids[2] == recs[k]->path.ids[2])
            e++;
        put_multi(b, recs + k, e - k, too_big);
        k = e;
    }
}

static int cmp_rec_ptr(const void *a, const void *b)
{
    const lwm2m_record_t *ra = *(const lwm2m_record_t *const *)a;
    const lwm2m_record_t *rb = *(const lwm2m_record_t *const *)b;
    return lwm2m_path_compare(&ra->path, &rb->path);
}

int lwm2m_tlv_encode(const lwm2m_path_t *base, const lwm2m_records_t *rs, uint8_t **out, size_t *outlen)
{
    if (!base || !rs || !out || !outlen || base->len < 1 || base->len > 4)
        return LWM2M_ERR_BAD_REQUEST; /* TLV cannot address the root */
    for (size_t i = 0; i < rs->n; i++) {
        const lwm2m_record_t *r = &rs->recs[i];
        if (!lwm2m__record_ok(r) || r->type == LWM2M_T_NONE || !lwm2m_path_starts_with(&r->path, base))
            return LWM2M_ERR_BAD_REQUEST;
        if (lwm2m__type_has_bytes(r->type) && r->nbytes > TLV_MAX_VALUE)
            return LWM2M_ERR_BAD_REQUEST;
    }
    const lwm2m_record_t **v = malloc((rs->n ? rs->n : 1) * sizeof *v);
    if (!v)
        return LWM2M_ERR_INTERNAL;
    for (size_t i = 0; i < rs->n; i++)
        v[i] = &rs->recs[i];
    /* order does not need to be stable: equal paths are refused below */
    qsort(v, rs->n, sizeof *v, cmp_rec_ptr);
    for (size_t i = 1; i < rs->n; i++) {
        if (lwm2m_path_starts_with(&v[i]->path, &v[i - 1]->path)) {
            free(v); /* duplicate, or a resource next to its own instances */
            return LWM2M_ERR_BAD_REQUEST;
        }
    }
    lwm2m__buf_t b;
    lwm2m__buf_init(&b);
    bool too_big = false;
    const lwm2m_record_t *const *cv = v;
    switch (base->len) {
    case 1: { /* object-instance wrappers */
        size_t k = 0;
        while (k < rs->n) {
            size_t e = k + 1;
            while (e < rs->n && v[e]->path.ids[1] == v[k]->path.ids[1])
                e++;
            lwm2m__buf_t c;
            lwm2m__buf_init(&c);
            c.count_only = true;
            put_resources(&c, cv + k, e - k, &too_big);
            if (c.n > TLV_MAX_VALUE)
                too_big = true;
            put_hdr(&b, TLV_OBJ_INST, v[k]->path.ids[1], c.n);
            put_resources(&b, cv + k, e - k, &too_big);
            k = e;
        }
        break;
    }
    case 2:
    case 3: /* a resource is just the one-resource case of an instance */
        put_resources(&b, cv, rs->n, &too_big);
        break;
    case 4:
        if (rs->n > 0)
            put_value(&b, TLV_RES_INST, v[0]->path.ids[3], v[0]);
        break;
    }
    free(v);
    if (too_big) {
        lwm2m__buf_free(&b);
        return LWM2M_ERR_BAD_REQUEST;
    }
    return lwm2m__buf_finish(&b, out, outlen);
}
