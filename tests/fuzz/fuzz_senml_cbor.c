/* libFuzzer target: SenML CBOR decoding (server/lwm2m/senml_cbor.c); what
 * decodes must re-encode to the same records, in SenML CBOR and (when JSON can
 * say it) in SenML JSON. */
#include <stdbool.h>

/* ---- helpers shared by the codec fuzz targets (copied in each) ---- */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/lwm2m/codec.h"

/* The first bytes choose the request path the payload is addressed to:
 * byte 0 picks the length (0..4), bytes 1..4 the ids. The rest is the
 * payload. Seeds in tests/fuzz/corpus/ carry such a 5-byte prefix. */
static void split_input(const uint8_t *data, size_t size, lwm2m_path_t *base, const uint8_t **payload, size_t *n)
{
    uint8_t hdr[5] = {0};
    if (size)
        memcpy(hdr, data, size < 5 ? size : 5);
    *base = lwm2m_path_make(hdr[0] % 5, hdr[1], hdr[2], hdr[3], hdr[4]);
    *payload = size > 5 ? data + 5 : data + size;
    *n = size > 5 ? size - 5 : 0;
}

static int same_value(const lwm2m_record_t *a, const lwm2m_record_t *b)
{
    if (!lwm2m_path_equal(&a->path, &b->path) || a->type != b->type)
        return 0;
    switch (a->type) {
    case LWM2M_T_STRING:
    case LWM2M_T_OPAQUE:
    case LWM2M_T_CORELNK:
        return a->nbytes == b->nbytes && (a->nbytes == 0 || memcmp(a->bytes, b->bytes, a->nbytes) == 0);
    case LWM2M_T_INTEGER:
    case LWM2M_T_TIME:
        return a->v.i == b->v.i;
    case LWM2M_T_UNSIGNED:
        return a->v.u == b->v.u;
    case LWM2M_T_FLOAT:
        return memcmp(&a->v.f, &b->v.f, sizeof(double)) == 0 || (isnan(a->v.f) && isnan(b->v.f));
    case LWM2M_T_BOOLEAN:
        return a->v.b == b->v.b;
    case LWM2M_T_OBJLNK:
        return a->v.lnk.oid == b->v.lnk.oid && a->v.lnk.iid == b->v.lnk.iid;
    default:
        return 1;
    }
}

static void check_same(const lwm2m_records_t *a, size_t from, const lwm2m_records_t *b)
{
    if (a->n - from != b->n)
        abort();
    for (size_t i = 0; i < b->n; i++)
        if (!same_value(&a->recs[from + i], &b->recs[i]))
            abort();
}

/* Decodes twice: into a set holding a sentinel (a failure must leave it as
 * it was) and into `out`; both calls must agree. Returns the rc. */
static int decode_checked(int (*dec)(const lwm2m_path_t *, const uint8_t *, size_t, lwm2m_records_t *),
                          const lwm2m_path_t *base, const uint8_t *p, size_t n, lwm2m_records_t *out)
{
    lwm2m_records_t s;
    lwm2m_records_init(&s);
    lwm2m_path_t sp = lwm2m_path_make(3, 9, 9, 9, 0);
    if (lwm2m_records_add_string(&s, &sp, "sentinel") != 0)
        abort();
    int rc1 = dec(base, p, n, &s);
    int rc2 = dec(base, p, n, out);
    if (rc1 != rc2)
        abort();
    if (rc1 != 0) {
        if (s.n != 1 || out->n != 0 || strcmp((const char *)s.recs[0].bytes, "sentinel") != 0)
            abort();
    } else {
        check_same(&s, 1, out);
    }
    lwm2m_records_clear(&s);
    return rc1;
}
/* ------------------------------------------------------------------ */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lwm2m_path_t base;
    const uint8_t *p;
    size_t n;
    split_input(data, size, &base, &p, &n);
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    if (decode_checked(lwm2m_senml_cbor_decode, &base, p, n, &rs) != 0) {
        lwm2m_records_clear(&rs);
        return 0;
    }
    bool json_ok = true; /* what SenML JSON (and jansson) cannot carry */
    for (size_t i = 0; i < rs.n; i++) {
        const lwm2m_record_t *r = &rs.recs[i];
        if (!lwm2m_path_starts_with(&r->path, &base) || (r->type != LWM2M_T_NONE && r->path.len < 3))
            abort();
        if ((r->type == LWM2M_T_FLOAT && !isfinite(r->v.f)) || r->type == LWM2M_T_UNSIGNED)
            json_ok = false;
    }
    uint8_t *enc = NULL;
    size_t enclen = 0;
    if (lwm2m_senml_cbor_encode(&base, &rs, &enc, &enclen) != 0)
        abort();
    lwm2m_records_t back;
    lwm2m_records_init(&back);
    if (lwm2m_decode(LWM2M_CF_SENML_CBOR, &base, enc, enclen, NULL, &back) != 0)
        abort();
    check_same(&rs, 0, &back);
    free(enc);
    lwm2m_records_clear(&back);
    if (json_ok) {
        if (lwm2m_senml_json_encode(&base, &rs, &enc, &enclen) != 0)
            abort();
        if (lwm2m_senml_json_decode(&base, enc, enclen, &back) != 0)
            abort();
        check_same(&rs, 0, &back);
        free(enc);
        lwm2m_records_clear(&back);
    }
    lwm2m_records_clear(&rs);
    return 0;
}
