/* Helpers shared by the codec fuzz targets (included, not linked: each
 * target is one translation unit). */
#ifndef LWDM_CODEC_FUZZ_H
#define LWDM_CODEC_FUZZ_H
#include <stdbool.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/lwm2m/codec.h"

/* The first bytes choose the request path the payload is addressed to:
 * byte 0 picks the length (0..4), bytes 1..4 the ids. The rest is the
 * payload. Seeds in tests/fuzz/corpus/ carry such a 5-byte prefix. */
__attribute__((unused)) static void split_input(const uint8_t *data, size_t size, lwm2m_path_t *base, const uint8_t **payload, size_t *n)
{
    uint8_t hdr[5] = {0};
    if (size)
        memcpy(hdr, data, size < 5 ? size : 5);
    *base = lwm2m_path_make(hdr[0] % 5, hdr[1], hdr[2], hdr[3], hdr[4]);
    *payload = size > 5 ? data + 5 : data + size;
    *n = size > 5 ? size - 5 : 0;
}

__attribute__((unused)) static int same_value(const lwm2m_record_t *a, const lwm2m_record_t *b)
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

__attribute__((unused)) static void check_same(const lwm2m_records_t *a, size_t from, const lwm2m_records_t *b)
{
    if (a->n - from != b->n)
        abort();
    for (size_t i = 0; i < b->n; i++)
        if (!same_value(&a->recs[from + i], &b->recs[i]))
            abort();
}

/* Decodes twice: into a set holding a sentinel (a failure must leave it as
 * it was) and into `out`; both calls must agree. Returns the rc. */
__attribute__((unused)) static int decode_checked(int (*dec)(const lwm2m_path_t *, const uint8_t *, size_t, lwm2m_records_t *),
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
#endif
