/* libFuzzer target: SenML JSON decoding (server/lwm2m/senml_json.c); what
 * decodes must re-encode to the same records, in SenML JSON and in SenML CBOR. */
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
    if (decode_checked(lwm2m_senml_json_decode, &base, p, n, &rs) != 0) {
        lwm2m_records_clear(&rs);
        return 0;
    }
    for (size_t i = 0; i < rs.n; i++)
        if (!lwm2m_path_starts_with(&rs.recs[i].path, &base) ||
            (rs.recs[i].type != LWM2M_T_NONE && rs.recs[i].path.len < 3))
            abort();
    /* JSON -> records -> JSON -> records: the same, in the same order */
    uint8_t *enc = NULL;
    size_t enclen = 0;
    if (lwm2m_senml_json_encode(&base, &rs, &enc, &enclen) != 0)
        abort();
    lwm2m_records_t back;
    lwm2m_records_init(&back);
    if (lwm2m_decode(LWM2M_CF_SENML_JSON, &base, enc, enclen, NULL, &back) != 0)
        abort();
    check_same(&rs, 0, &back);
    free(enc);
    lwm2m_records_clear(&back);
    /* and through SenML CBOR: everything SenML JSON can carry, CBOR can */
    if (lwm2m_senml_cbor_encode(&base, &rs, &enc, &enclen) != 0)
        abort();
    if (lwm2m_senml_cbor_decode(&base, enc, enclen, &back) != 0)
        abort();
    check_same(&rs, 0, &back);
    free(enc);
    lwm2m_records_clear(&back);
    lwm2m_records_clear(&rs);
    return 0;
}
