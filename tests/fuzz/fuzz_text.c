/* libFuzzer target: text/plain read as every type, and opaque
 * (server/lwm2m/text.c); values re-encode to the same records, in text and TLV. */
#include <stdbool.h>

#include "codec_fuzz.h"

/* ------------------------------------------------------------------ */

static const lwm2m_type_t types[] = {LWM2M_T_NONE,  LWM2M_T_STRING, LWM2M_T_INTEGER, LWM2M_T_UNSIGNED,
                                     LWM2M_T_FLOAT, LWM2M_T_BOOLEAN, LWM2M_T_OPAQUE, LWM2M_T_TIME,
                                     LWM2M_T_OBJLNK, LWM2M_T_CORELNK};
static lwm2m_type_t text_type;

static int text_dec(const lwm2m_path_t *base, const uint8_t *p, size_t n, lwm2m_records_t *out)
{
    return lwm2m_text_decode(base, p, n, text_type, out);
}

static int opaque_dec(const lwm2m_path_t *base, const uint8_t *p, size_t n, lwm2m_records_t *out)
{
    return lwm2m_decode(LWM2M_CF_OPAQUE, base, p, n, NULL, out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lwm2m_path_t base;
    const uint8_t *p;
    size_t n;
    split_input(data, size, &base, &p, &n);
    /* byte 0: the type to read the text as; the path is a resource (len 3)
     * or a resource instance (len 4) */
    uint8_t hdr[5] = {0};
    if (size)
        memcpy(hdr, data, size < 5 ? size : 5);
    text_type = types[(hdr[0] >> 1) % (sizeof types / sizeof types[0])];
    base = lwm2m_path_make(3 + (hdr[0] & 1), hdr[1], hdr[2], hdr[3], hdr[4]);
    lwm2m_records_t rs, back;
    lwm2m_records_init(&rs);
    lwm2m_records_init(&back);
    uint8_t *enc = NULL;
    size_t enclen = 0;
    if (decode_checked(text_dec, &base, p, n, &rs) == 0) {
        if (rs.n != 1 || !lwm2m_path_equal(&rs.recs[0].path, &base))
            abort();
        lwm2m_type_t t = rs.recs[0].type;
        /* text -> record -> text -> record */
        if (lwm2m_encode(LWM2M_CF_TEXT, &base, &rs, &enc, &enclen) != 0)
            abort();
        if (lwm2m_text_decode(&base, enc, enclen, t, &back) != 0)
            abort();
        check_same(&rs, 0, &back);
        /* text values that have one spelling come back byte for byte */
        bool canonical = t == LWM2M_T_STRING || t == LWM2M_T_CORELNK || t == LWM2M_T_BOOLEAN;
        if (canonical && (enclen != n || (n && memcmp(enc, p, n) != 0)))
            abort();
        free(enc);
        lwm2m_records_clear(&back);
        /* the same value through TLV, typed back as it was */
        if (lwm2m_tlv_encode(&base, &rs, &enc, &enclen) != 0)
            abort();
        if (lwm2m_tlv_decode(&base, enc, enclen, &back) != 0 || back.n != 1)
            abort();
        if (lwm2m_record_retype(&back.recs[0], t) != 0)
            abort();
        check_same(&rs, 0, &back);
        free(enc);
        lwm2m_records_clear(&back);
    }
    lwm2m_records_clear(&rs);
    /* opaque: bytes in, the same bytes out */
    if (decode_checked(opaque_dec, &base, p, n, &rs) != 0)
        abort();
    if (lwm2m_encode(LWM2M_CF_OPAQUE, &base, &rs, &enc, &enclen) != 0 || enclen != n || (n && memcmp(enc, p, n) != 0))
        abort();
    free(enc);
    lwm2m_records_clear(&rs);
    return 0;
}
