/* libFuzzer target: LwM2M CBOR decoding (server/lwm2m/lwm2m_cbor.c). What
 * decodes must satisfy the decoder's promises (paths at or below the request
 * path, values only at resources, no path twice or below another) and must
 * re-encode to the same records, which come back in path order; decoding
 * through lwm2m_decode() with the built-in registry must not fail on what the
 * plain decoder accepted unless a value does not fit its definition. */
#include <stdbool.h>

#include "codec_fuzz.h"
#include "server/lwm2m/registry.h"

static lwm2m_registry_t *builtin(void)
{
    static lwm2m_registry_t *reg;
    if (!reg) {
        char err[256];
        reg = lwm2m_registry_new();
        if (!reg || lwm2m_registry_add_builtin(reg, err, sizeof err) != 0)
            abort();
    }
    return reg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lwm2m_path_t base;
    const uint8_t *p;
    size_t n;
    split_input(data, size, &base, &p, &n);
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    if (decode_checked(lwm2m_lwm2m_cbor_decode, &base, p, n, &rs) != 0) {
        lwm2m_records_clear(&rs);
        return 0;
    }
    for (size_t i = 0; i < rs.n; i++) {
        const lwm2m_record_t *r = &rs.recs[i];
        if (!lwm2m_path_starts_with(&r->path, &base) || r->path.len == 0 ||
            (r->type != LWM2M_T_NONE && r->path.len < 3) || r->type == LWM2M_T_OBJLNK ||
            r->type == LWM2M_T_CORELNK)
            abort();
        for (size_t j = 0; j < i; j++)
            if (lwm2m_path_starts_with(&r->path, &rs.recs[j].path) ||
                lwm2m_path_starts_with(&rs.recs[j].path, &r->path))
                abort();
    }
    uint8_t *enc = NULL;
    size_t enclen = 0;
    if (lwm2m_lwm2m_cbor_encode(&base, &rs, &enc, &enclen) != 0)
        abort();
    lwm2m_records_t back;
    lwm2m_records_init(&back);
    if (lwm2m_decode(LWM2M_CF_LWM2M_CBOR, &base, enc, enclen, NULL, &back) != 0)
        abort();
    lwm2m_records_t sorted;
    lwm2m_records_init(&sorted);
    for (size_t i = 0; i < rs.n; i++)
        if (lwm2m_records_add(&sorted, &rs.recs[i]) != 0)
            abort();
    lwm2m_records_sort(&sorted);
    check_same(&sorted, 0, &back);
    /* encoding is canonical: the re-encoded records encode to the same bytes */
    uint8_t *enc2 = NULL;
    size_t enclen2 = 0;
    if (lwm2m_lwm2m_cbor_encode(&base, &back, &enc2, &enclen2) != 0 || enclen2 != enclen ||
        memcmp(enc, enc2, enclen) != 0)
        abort();
    free(enc2);
    free(enc);
    lwm2m_records_clear(&back);
    lwm2m_records_clear(&sorted);
    /* typed decoding: either fails as a whole or keeps every path */
    lwm2m_records_t typed;
    lwm2m_records_init(&typed);
    if (lwm2m_decode(LWM2M_CF_LWM2M_CBOR, &base, p, n, builtin(), &typed) == 0) {
        if (typed.n != rs.n)
            abort();
        for (size_t i = 0; i < rs.n; i++)
            if (!lwm2m_path_equal(&typed.recs[i].path, &rs.recs[i].path))
                abort();
    } else if (typed.n != 0) {
        abort();
    }
    lwm2m_records_clear(&typed);
    lwm2m_records_clear(&rs);
    return 0;
}
