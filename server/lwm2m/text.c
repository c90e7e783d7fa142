/* text/plain (CF 0) and application/octet-stream (CF 42): one value each,
 * addressed to a resource or resource instance.
 *
 * text/plain follows LwM2M TS 1.1 Appendix C, Table C.2 (Data Type Mapping):
 *   String, Corelnk   the UTF-8 text itself (carried as is, not validated)
 *   Integer, Time     ASCII decimal, optional '-'
 *   Unsigned Integer  ASCII decimal
 *   Float             ASCII decimal; read with an optional fraction and
 *                     exponent; written without exponent, in the fewest
 *                     digits that read back as the same double
 *   Boolean           "0" or "1"
 *   Objlnk            "oid:iid"
 *   Opaque            base64 (RFC 4648 §4, padded), e.g. 01 02 03 04 05 ->
 *                     "AQIDBAU="; read leniently (codec_int.h)
 * No white space is accepted around numbers: a device that sends " 5" is
 * answered 4.00 rather than guessed at.
 *
 * Opaque (TS 1.1 §7.4.2): the raw bytes of one Opaque value. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/lwm2m/codec_int.h"

static bool single_target(const lwm2m_path_t *base)
{
    if (base->len != 3 && base->len != 4)
        return false;
    for (size_t k = 0; k < base->len; k++)
        if (base->ids[k] == LWM2M_ID_NONE)
            return false;
    return true;
}

/* Writes a finite double in plain decimal notation: the shortest "%g" form is
 * taken apart into digits and exponent and laid out without an exponent,
 * since Table C.2 shows floats as plain decimals and small clients parse
 * them with hand-written loops. */
static int put_plain_double(lwm2m__buf_t *b, double v)
{
    char g[40];
    if (lwm2m__fmt_double(v, false, g, sizeof g) < 0)
        return LWM2M_ERR_BAD_REQUEST; /* NaN / infinity have no text form */
    const char *e = strpbrk(g, "eE");
    if (!e) {
        lwm2m__buf_puts(b, g);
        return LWM2M_OK;
    }
    /* g = [-]D[.DDD]e[+-]XX */
    const char *p = g;
    if (*p == '-') {
        lwm2m__buf_putc(b, '-');
        p++;
    }
    char digits[24];
    size_t nd = 0;
    for (; p < e; p++)
        if (*p >= '0' && *p <= '9' && nd < sizeof digits)
            digits[nd++] = *p;
    long exp10 = strtol(e + 1, NULL, 10);
    /* value = 0.digits * 10^(exp10 + 1); the decimal point goes after
     * `point` digits (may be <= 0 or > nd) */
    long point = exp10 + 1;
    if (point <= 0) {
        lwm2m__buf_puts(b, "0.");
        for (long k = 0; k < -point; k++)
            lwm2m__buf_putc(b, '0');
        lwm2m__buf_put(b, digits, nd);
    } else if ((size_t)point >= nd) {
        lwm2m__buf_put(b, digits, nd);
        for (long k = (long)nd; k < point; k++)
            lwm2m__buf_putc(b, '0');
    } else {
        lwm2m__buf_put(b, digits, (size_t)point);
        lwm2m__buf_putc(b, '.');
        lwm2m__buf_put(b, digits + point, nd - (size_t)point);
    }
    return LWM2M_OK;
}

int lwm2m_text_encode(const lwm2m_records_t *rs, uint8_t **out, size_t *outlen)
{
    if (!rs || !out || !outlen || rs->n != 1)
        return LWM2M_ERR_BAD_REQUEST;
    const lwm2m_record_t *r = &rs->recs[0];
    if (!lwm2m__record_ok(r))
        return LWM2M_ERR_BAD_REQUEST;
    lwm2m__buf_t b;
    lwm2m__buf_init(&b);
    char tmp[48];
    int rc = LWM2M_OK;
    switch (r->type) {
    case LWM2M_T_STRING:
    case LWM2M_T_CORELNK:
        lwm2m__buf_put(&b, r->bytes, r->nbytes);
        break;
    case LWM2M_T_OPAQUE:
        lwm2m__b64_encode(&b, r->bytes, r->nbytes, false);
        break;
    case LWM2M_T_INTEGER:
    case LWM2M_T_TIME:
        snprintf(tmp, sizeof tmp, "%" PRId64, r->v.i);
        lwm2m__buf_puts(&b, tmp);
        break;
    case LWM2M_T_UNSIGNED:
        snprintf(tmp, sizeof tmp, "%" PRIu64, r->v.u);
        lwm2m__buf_puts(&b, tmp);
        break;
    case LWM2M_T_FLOAT:
        rc = put_plain_double(&b, r->v.f);
        break;
    case LWM2M_T_BOOLEAN:
        lwm2m__buf_putc(&b, r->v.b ? '1' : '0');
        break;
    case LWM2M_T_OBJLNK:
        snprintf(tmp, sizeof tmp, "%u:%u", (unsigned)r->v.lnk.oid, (unsigned)r->v.lnk.iid);
        lwm2m__buf_puts(&b, tmp);
        break;
    case LWM2M_T_NONE:
        rc = LWM2M_ERR_BAD_REQUEST; /* nothing to send */
        break;
    }
    if (rc != LWM2M_OK) {
        lwm2m__buf_free(&b);
        return rc;
    }
    return lwm2m__buf_finish(&b, out, outlen);
}

static int push_bytes(lwm2m_records_t *out, const lwm2m_path_t *p, lwm2m_type_t t, const uint8_t *buf, size_t len)
{
    lwm2m_record_t r;
    memset(&r, 0, sizeof r);
    r.path = *p;
    r.type = t;
    r.bytes = (uint8_t *)(uintptr_t)buf;
    r.nbytes = len;
    return lwm2m_records_add(out, &r);
}

int lwm2m_text_decode(const lwm2m_path_t *base, const uint8_t *buf, size_t len, lwm2m_type_t type, lwm2m_records_t *out)
{
    if (!base || !out || (!buf && len > 0) || !single_target(base))
        return LWM2M_ERR_BAD_REQUEST;
    if (len > LWM2M_MAX_PAYLOAD)
        return LWM2M_ERR_REQUEST_TOO_LARGE;
    if (!buf)
        buf = (const uint8_t *)"";
    const char *s = (const char *)buf;
    lwm2m_record_t r;
    memset(&r, 0, sizeof r);
    r.path = *base;
    r.type = type;
    int rc = LWM2M_OK;
    switch (type) {
    case LWM2M_T_NONE: /* no definition: the text itself */
    case LWM2M_T_STRING:
        return push_bytes(out, base, LWM2M_T_STRING, buf, len);
    case LWM2M_T_CORELNK:
        return push_bytes(out, base, LWM2M_T_CORELNK, buf, len);
    case LWM2M_T_OPAQUE: {
        uint8_t *d = NULL;
        size_t n = 0;
        if ((rc = lwm2m__b64_decode(s, len, &d, &n)) != LWM2M_OK)
            return rc;
        lwm2m_record_t *slot = lwm2m__records_push(out);
        if (!slot) {
            free(d);
            return LWM2M_ERR_INTERNAL;
        }
        r.bytes = d;
        r.nbytes = n;
        *slot = r;
        return LWM2M_OK;
    }
    case LWM2M_T_INTEGER:
    case LWM2M_T_TIME:
        rc = lwm2m__parse_i64(s, len, &r.v.i);
        break;
    case LWM2M_T_UNSIGNED:
        rc = lwm2m__parse_u64(s, len, &r.v.u);
        break;
    case LWM2M_T_FLOAT:
        rc = lwm2m__parse_double(s, len, &r.v.f);
        break;
    case LWM2M_T_BOOLEAN:
        if (len != 1 || (s[0] != '0' && s[0] != '1'))
            return LWM2M_ERR_BAD_REQUEST;
        r.v.b = s[0] == '1';
        break;
    case LWM2M_T_OBJLNK:
        rc = lwm2m__parse_objlnk(s, len, &r.v.lnk.oid, &r.v.lnk.iid);
        break;
    default:
        return LWM2M_ERR_BAD_REQUEST;
    }
    if (rc != LWM2M_OK)
        return rc;
    return lwm2m_records_add(out, &r);
}

/* ================================================================ opaque */

int lwm2m__opaque_encode(const lwm2m_records_t *rs, uint8_t **out, size_t *outlen)
{
    if (!rs || !out || !outlen || rs->n != 1)
        return LWM2M_ERR_BAD_REQUEST;
    const lwm2m_record_t *r = &rs->recs[0];
    /* only values that are bytes already; numbers have no octet-stream form */
    if (!lwm2m__record_ok(r) || !lwm2m__type_has_bytes(r->type))
        return LWM2M_ERR_BAD_REQUEST;
    lwm2m__buf_t b;
    lwm2m__buf_init(&b);
    lwm2m__buf_put(&b, r->bytes, r->nbytes);
    return lwm2m__buf_finish(&b, out, outlen);
}

int lwm2m__opaque_decode(const lwm2m_path_t *base, const uint8_t *buf, size_t len, lwm2m_records_t *out)
{
    if (!base || !out || (!buf && len > 0) || !single_target(base))
        return LWM2M_ERR_BAD_REQUEST;
    if (len > LWM2M_MAX_PAYLOAD)
        return LWM2M_ERR_REQUEST_TOO_LARGE;
    return push_bytes(out, base, LWM2M_T_OPAQUE, buf ? buf : (const uint8_t *)"", len);
}
