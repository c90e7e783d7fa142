/* libFuzzer target: SenML CBOR decoding (server/lwm2m/senml_cbor.c); what
 * decodes must re-encode to the same records, in SenML CBOR and (when JSON can
 * say it) in SenML JSON. */
#include <stdbool.h>

#include "codec_fuzz.h"

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
