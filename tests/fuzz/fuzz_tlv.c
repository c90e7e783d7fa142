/* libFuzzer target: OMA TLV decoding (server/lwm2m/tlv.c), then re-encoding
 * and re-decoding, raw and with every record read as a definite type; any
 * disagreement aborts. */
#include <stdbool.h>

#include "codec_fuzz.h"

/* ------------------------------------------------------------------ */

static const lwm2m_type_t types[] = {LWM2M_T_STRING, LWM2M_T_INTEGER, LWM2M_T_UNSIGNED, LWM2M_T_FLOAT,
                                     LWM2M_T_BOOLEAN, LWM2M_T_OPAQUE, LWM2M_T_TIME,     LWM2M_T_OBJLNK,
                                     LWM2M_T_CORELNK};

/* encode `rs` at base, decode it again, give every record back the type it
 * had, and require the same set (both sorted: TLV orders by path) */
static void tlv_round_trip(const lwm2m_path_t *base, lwm2m_records_t *rs)
{
    uint8_t *enc = NULL;
    size_t enclen = 0;
    if (lwm2m_tlv_encode(base, rs, &enc, &enclen) != 0)
        abort(); /* whatever we decoded, we can send */
    lwm2m_records_t back;
    lwm2m_records_init(&back);
    if (lwm2m_decode(LWM2M_CF_TLV, base, enc, enclen, NULL, &back) != 0)
        abort();
    lwm2m_records_sort(rs);
    lwm2m_records_sort(&back);
    if (back.n != rs->n)
        abort();
    for (size_t i = 0; i < back.n; i++)
        if (lwm2m_record_retype(&back.recs[i], rs->recs[i].type) != 0)
            abort();
    check_same(rs, 0, &back);
    /* canonical: encoding what we read back gives the same bytes */
    uint8_t *enc2 = NULL;
    size_t enclen2 = 0;
    if (lwm2m_tlv_encode(base, &back, &enc2, &enclen2) != 0 || enclen2 != enclen || memcmp(enc, enc2, enclen) != 0)
        abort();
    free(enc);
    free(enc2);
    lwm2m_records_clear(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lwm2m_path_t base;
    const uint8_t *p;
    size_t n;
    split_input(data, size, &base, &p, &n);
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    if (decode_checked(lwm2m_tlv_decode, &base, p, n, &rs) != 0) {
        lwm2m_records_clear(&rs);
        return 0;
    }
    for (size_t i = 0; i < rs.n; i++)
        if (rs.recs[i].type != LWM2M_T_OPAQUE || !lwm2m_path_starts_with(&rs.recs[i].path, &base) ||
            rs.recs[i].path.len < 3)
            abort();
    tlv_round_trip(&base, &rs);
    /* read the raw values as the types a definition could give, where they
     * fit, and send those */
    uint8_t pick = size > 0 ? data[0] / 5 : 0;
    for (size_t i = 0; i < rs.n; i++)
        (void)lwm2m_record_retype(&rs.recs[i], types[(pick + i) % (sizeof types / sizeof types[0])]);
    tlv_round_trip(&base, &rs);
    lwm2m_records_clear(&rs);
    return 0;
}
