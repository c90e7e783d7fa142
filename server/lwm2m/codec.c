/* Payload codec dispatch, typed decoding through the object registry, and the
 * small helpers every format shares (output buffer, base64, number text).
 * Pure code: no I/O, no clock. Number text assumes the C locale for
 * LC_NUMERIC (lwdm never calls setlocale). */
#include "server/lwm2m/codec.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/lwm2m/codec_int.h"
#include "server/lwm2m/registry.h"

/* =============================================================== buffer */

void lwm2m__buf_init(lwm2m__buf_t *b)
{
    memset(b, 0, sizeof *b);
}

void lwm2m__buf_free(lwm2m__buf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

bool lwm2m__buf_reserve(lwm2m__buf_t *b, size_t extra)
{
    if (b->oom)
        return false;
    if (b->count_only)
        return true;
    if (extra > SIZE_MAX - b->n - 1) {
        b->oom = true;
        return false;
    }
    size_t need = b->n + extra + 1; /* +1: room for a terminating NUL */
    if (need <= b->cap)
        return true;
    size_t ncap = b->cap ? b->cap : 64;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2) {
            ncap = need;
            break;
        }
        ncap *= 2;
    }
    uint8_t *np = realloc(b->p, ncap);
    if (!np) {
        b->oom = true;
        return false;
    }
    b->p = np;
    b->cap = ncap;
    return true;
}

void lwm2m__buf_put(lwm2m__buf_t *b, const void *data, size_t n)
{
    if (n == 0)
        return;
    if (b->count_only) {
        b->n += n;
        return;
    }
    if (!lwm2m__buf_reserve(b, n))
        return;
    memcpy(b->p + b->n, data, n);
    b->n += n;
}

void lwm2m__buf_putc(lwm2m__buf_t *b, uint8_t c)
{
    lwm2m__buf_put(b, &c, 1);
}

void lwm2m__buf_puts(lwm2m__buf_t *b, const char *s)
{
    lwm2m__buf_put(b, s, strlen(s));
}

int lwm2m__buf_finish(lwm2m__buf_t *b, uint8_t **out, size_t *outlen)
{
    if (b->oom || !lwm2m__buf_reserve(b, 0)) {
        lwm2m__buf_free(b);
        return LWM2M_ERR_INTERNAL;
    }
    b->p[b->n] = '\0'; /* convenience for callers that log text payloads */
    *out = b->p;
    *outlen = b->n;
    b->p = NULL;
    b->n = b->cap = 0;
    return LWM2M_OK;
}

/* =============================================================== base64 */

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void lwm2m__b64_encode(lwm2m__buf_t *b, const uint8_t *in, size_t n, bool url)
{
    const char *a = url ? b64_url : b64_std;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        char q[4] = {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], a[v & 63]};
        lwm2m__buf_put(b, q, 4);
    }
    size_t rest = n - i;
    if (rest == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        char q[4] = {a[v >> 18], a[(v >> 12) & 63], '=', '='};
        lwm2m__buf_put(b, q, url ? 2 : 4);
    } else if (rest == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        char q[4] = {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], '='};
        lwm2m__buf_put(b, q, url ? 3 : 4);
    }
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

int lwm2m__b64_decode(const char *s, size_t n, uint8_t **out, size_t *outlen)
{
    /* strip correct padding: at most two '=', only when the padded length is
     * a multiple of 4 */
    size_t pad = 0;
    while (pad < 2 && n > pad && s[n - 1 - pad] == '=')
        pad++;
    if (pad && n % 4 != 0)
        return LWM2M_ERR_BAD_REQUEST;
    size_t m = n - pad; /* significant characters */
    if (m % 4 == 1)
        return LWM2M_ERR_BAD_REQUEST;
    if (pad && (m % 4) + pad != 4)
        return LWM2M_ERR_BAD_REQUEST; /* e.g. "AAAA==" */
    size_t cap = m / 4 * 3 + (m % 4 ? m % 4 - 1 : 0);
    uint8_t *d = malloc(cap + 1);
    if (!d)
        return LWM2M_ERR_INTERNAL;
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < m; i++) {
        int v = b64_val(s[i]);
        if (v < 0) {
            free(d);
            return LWM2M_ERR_BAD_REQUEST;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            d[k++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) { /* unused low bits must be zero (RFC 4648 §3.5) */
        free(d);
        return LWM2M_ERR_BAD_REQUEST;
    }
    d[k] = '\0';
    *out = d;
    *outlen = k;
    return LWM2M_OK;
}

/* ============================================================== numbers */

bool lwm2m__fits_float(double v)
{
    if (isnan(v))
        return false; /* keep NaN payloads: use 8 bytes */
    if (isinf(v))
        return true;
    if (fabs(v) > FLT_MAX)
        return false; /* (float)v would be undefined behaviour */
    return (double)(float)v == v;
}

int lwm2m__fmt_double(double v, bool force_real, char *buf, size_t cap)
{
    if (!isfinite(v) || cap == 0)
        return -1;
    char tmp[40];
    int m = -1;
    for (int prec = 1; prec <= 17; prec++) {
        m = snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (m > 0 && strtod(tmp, NULL) == v)
            break;
    }
    if (m <= 0 || (size_t)m >= sizeof tmp)
        return -1;
    if (force_real && !strpbrk(tmp, ".eE")) {
        if ((size_t)m + 2 >= sizeof tmp)
            return -1;
        memcpy(tmp + m, ".0", 3);
        m += 2;
    }
    if ((size_t)m + 1 > cap)
        return -1;
    memcpy(buf, tmp, (size_t)m + 1);
    return m;
}

static bool all_digits(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

int lwm2m__parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (!all_digits(s, n))
        return LWM2M_ERR_BAD_REQUEST;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return LWM2M_ERR_BAD_REQUEST;
        v = v * 10 + d;
    }
    *out = v;
    return LWM2M_OK;
}

int lwm2m__parse_i64(const char *s, size_t n, int64_t *out)
{
    bool neg = n > 0 && s[0] == '-';
    uint64_t u;
    if (lwm2m__parse_u64(s + neg, n - neg, &u) != LWM2M_OK)
        return LWM2M_ERR_BAD_REQUEST;
    if (neg) {
        if (u > (uint64_t)INT64_MAX + 1)
            return LWM2M_ERR_BAD_REQUEST;
        *out = u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
    } else {
        if (u > (uint64_t)INT64_MAX)
            return LWM2M_ERR_BAD_REQUEST;
        *out = (int64_t)u;
    }
    return LWM2M_OK;
}

int lwm2m__parse_double(const char *s, size_t n, double *out)
{
    /* grammar: -?D+(.D+)?([eE][+-]?D+)? -- checked before strtod so that
     * strtod's extras (hex, "inf", "nan", leading space) never get in */
    size_t i = 0, d;
    if (i < n && s[i] == '-')
        i++;
    for (d = i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        ;
    if (i == d)
        return LWM2M_ERR_BAD_REQUEST;
    if (i < n && s[i] == '.') {
        i++;
        for (d = i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            ;
        if (i == d)
            return LWM2M_ERR_BAD_REQUEST;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        for (d = i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            ;
        if (i == d)
            return LWM2M_ERR_BAD_REQUEST;
    }
    if (i != n)
        return LWM2M_ERR_BAD_REQUEST;
    char *tmp = malloc(n + 1);
    if (!tmp)
        return LWM2M_ERR_INTERNAL;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    double v = strtod(tmp, NULL);
    free(tmp);
    if (!isfinite(v))
        return LWM2M_ERR_BAD_REQUEST; /* overflow: "1e999" */
    *out = v;
    return LWM2M_OK;
}

int lwm2m__parse_objlnk(const char *s, size_t n, uint16_t *oid, uint16_t *iid)
{
    const char *colon = memchr(s, ':', n);
    if (!colon)
        return LWM2M_ERR_BAD_REQUEST;
    size_t a = (size_t)(colon - s);
    uint64_t o, i;
    if (a > 5 || n - a - 1 > 5 || lwm2m__parse_u64(s, a, &o) != LWM2M_OK ||
        lwm2m__parse_u64(colon + 1, n - a - 1, &i) != LWM2M_OK || o > 65535 || i > 65535)
        return LWM2M_ERR_BAD_REQUEST;
    *oid = (uint16_t)o;
    *iid = (uint16_t)i;
    return LWM2M_OK;
}

int lwm2m__path_format_rel(const lwm2m_path_t *p, size_t skip, char *buf, size_t cap)
{
    size_t n = 0;
    if (cap == 0)
        return -1;
    for (size_t k = skip; k < p->len && k < 4; k++) {
        char seg[8];
        int m = snprintf(seg, sizeof seg, k > skip ? "/%u" : "%u", (unsigned)p->ids[k]);
        if (m < 0 || n + (size_t)m + 1 > cap)
            return -1;
        memcpy(buf + n, seg, (size_t)m);
        n += (size_t)m;
    }
    buf[n] = '\0';
    return (int)n;
}

/* Validates UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF). */
bool lwm2m__utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            k = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i - 1 < k)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += k + 1;
    }
    return true;
}

/* ========================================================= SenML names */

int lwm2m__senml_names(const lwm2m_path_t *base, const lwm2m_records_t *rs, lwm2m__senml_names_t *nm)
{
    if (!base || base->len > 4)
        return LWM2M_ERR_BAD_REQUEST;
    bool all_base = rs->n > 0;
    for (size_t i = 0; i < rs->n; i++) {
        const lwm2m_record_t *r = &rs->recs[i];
        if (!lwm2m__record_ok(r) || !lwm2m_path_starts_with(&r->path, base))
            return LWM2M_ERR_BAD_REQUEST;
        if (r->path.len != base->len)
            all_base = false;
    }
    memset(nm, 0, sizeof *nm);
    if (base->len == 0) {
        nm->n = true;
        return LWM2M_OK;
    }
    int m = lwm2m_path_format(base, nm->bn_text, sizeof nm->bn_text - 1);
    if (m < 0)
        return LWM2M_ERR_BAD_REQUEST;
    nm->bn = true;
    if (!all_base) {
        nm->bn_text[m] = '/';
        nm->bn_text[m + 1] = '\0';
        nm->n = true;
    }
    return LWM2M_OK;
}

int lwm2m__senml_n(const lwm2m_path_t *base, const lwm2m_path_t *p, char *buf, size_t cap)
{
    if (base->len == 0)
        return lwm2m_path_format(p, buf, cap);
    return lwm2m__path_format_rel(p, base->len, buf, cap);
}

/* ============================================================ formats */

bool lwm2m_cf_supported(int cf)
{
    switch (cf) {
    case LWM2M_CF_TEXT:
    case LWM2M_CF_OPAQUE:
    case LWM2M_CF_SENML_JSON:
    case LWM2M_CF_SENML_CBOR:
    case LWM2M_CF_LWM2M_CBOR:
    case LWM2M_CF_TLV:
    case LWM2M_CF_OLD_TLV:
        return true;
    default:
        return false;
    }
}

const char *lwm2m_cf_name(int cf)
{
    switch (cf) {
    case LWM2M_CF_TEXT: return "text";
    case LWM2M_CF_LINK: return "link-format";
    case LWM2M_CF_OPAQUE: return "opaque";
    case LWM2M_CF_CBOR: return "CBOR";
    case LWM2M_CF_SENML_JSON: return "SenML JSON";
    case LWM2M_CF_SENML_CBOR: return "SenML CBOR";
    case LWM2M_CF_TLV: return "TLV";
    case LWM2M_CF_OLD_TLV: return "TLV (1542)";
    case LWM2M_CF_OMA_JSON: return "OMA JSON";
    case LWM2M_CF_OLD_JSON: return "OMA JSON (1543)";
    case LWM2M_CF_LWM2M_CBOR: return "LwM2M CBOR";
    default: return "unknown";
    }
}

/* ========================================================== retyping */

static uint64_t be_uint(const uint8_t *b, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | b[i];
    return v;
}

int lwm2m_record_retype(lwm2m_record_t *r, lwm2m_type_t type)
{
    if (!r || !lwm2m__type_valid((int)type) || !lwm2m__type_valid((int)r->type))
        return LWM2M_ERR_BAD_REQUEST;
    if (r->type == type)
        return LWM2M_OK;
    /* only raw values (as TLV decodes them) can be reinterpreted */
    if (!lwm2m__type_has_bytes(r->type) || (!r->bytes && r->nbytes > 0))
        return LWM2M_ERR_BAD_REQUEST;
    const uint8_t *b = r->bytes;
    size_t n = r->nbytes;
    lwm2m_record_t t = *r;
    t.type = type;
    /* LwM2M TS 1.1 §7.4.3 / TS 1.0 §6.4.3 value encodings */
    switch (type) {
    case LWM2M_T_STRING:
    case LWM2M_T_OPAQUE:
    case LWM2M_T_CORELNK:
        r->type = type; /* same bytes, another reading */
        return LWM2M_OK;
    case LWM2M_T_INTEGER:
    case LWM2M_T_TIME: {
        if (n != 1 && n != 2 && n != 4 && n != 8)
            return LWM2M_ERR_BAD_REQUEST;
        uint64_t u = be_uint(b, n);
        unsigned bitsz = (unsigned)n * 8;
        if (bitsz < 64 && (u >> (bitsz - 1)) & 1)
            u |= ~((UINT64_C(1) << bitsz) - 1); /* sign-extend */
        t.v.i = u > (uint64_t)INT64_MAX ? -(int64_t)(~u) - 1 : (int64_t)u;
        break;
    }
    case LWM2M_T_UNSIGNED:
        if (n != 1 && n != 2 && n != 4 && n != 8)
            return LWM2M_ERR_BAD_REQUEST;
        t.v.u = be_uint(b, n);
        break;
    case LWM2M_T_FLOAT:
        if (n == 4) {
            uint32_t u32 = (uint32_t)be_uint(b, 4);
            float f;
            memcpy(&f, &u32, sizeof f);
            t.v.f = (double)f;
        } else if (n == 8) {
            uint64_t u64 = be_uint(b, 8);
            memcpy(&t.v.f, &u64, sizeof t.v.f);
        } else {
            return LWM2M_ERR_BAD_REQUEST;
        }
        break;
    case LWM2M_T_BOOLEAN:
        if (n != 1 || b[0] > 1)
            return LWM2M_ERR_BAD_REQUEST;
        t.v.b = b[0] == 1;
        break;
    case LWM2M_T_OBJLNK:
        if (n != 4)
            return LWM2M_ERR_BAD_REQUEST;
        t.v.lnk.oid = (uint16_t)be_uint(b, 2);
        t.v.lnk.iid = (uint16_t)be_uint(b + 2, 2);
        break;
    case LWM2M_T_NONE:
        if (n != 0)
            return LWM2M_ERR_BAD_REQUEST;
        break;
    }
    free(r->bytes);
    t.bytes = NULL;
    t.nbytes = 0;
    *r = t;
    return LWM2M_OK;
}

/* SenML carries numbers without a width or signedness: bring them to the
 * type of the object definition when that is lossless (LwM2M TS 1.1 §7.4.4,
 * "the data type is known from the Object definition"). Non-numeric
 * mismatches are left for the caller to judge. */
static int narrow(lwm2m_record_t *r, lwm2m_type_t want)
{
    lwm2m_type_t have = r->type;
    if (have == want || have == LWM2M_T_NONE)
        return LWM2M_OK;
    if ((have == LWM2M_T_STRING && want == LWM2M_T_CORELNK) ||
        (have == LWM2M_T_CORELNK && want == LWM2M_T_STRING)) {
        r->type = want;
        return LWM2M_OK;
    }
    bool have_num = have == LWM2M_T_INTEGER || have == LWM2M_T_UNSIGNED || have == LWM2M_T_FLOAT ||
                    have == LWM2M_T_TIME;
    bool want_num = want == LWM2M_T_INTEGER || want == LWM2M_T_UNSIGNED || want == LWM2M_T_FLOAT ||
                    want == LWM2M_T_TIME;
    if (!have_num || !want_num)
        return LWM2M_OK;
    /* read the value as one of: signed, unsigned, float */
    bool is_f = have == LWM2M_T_FLOAT;
    bool is_u = have == LWM2M_T_UNSIGNED;
    int64_t i = (have == LWM2M_T_INTEGER || have == LWM2M_T_TIME) ? r->v.i : 0;
    uint64_t u = is_u ? r->v.u : 0;
    double f = is_f ? r->v.f : 0;
    switch (want) {
    case LWM2M_T_INTEGER:
    case LWM2M_T_TIME:
        if (is_u) {
            if (u > (uint64_t)INT64_MAX)
                return LWM2M_ERR_BAD_REQUEST;
            i = (int64_t)u;
        } else if (is_f) {
            /* 2^63 is exactly representable; the range is [-2^63, 2^63) */
            if (!(f >= -9223372036854775808.0 && f < 9223372036854775808.0) || f != trunc(f))
                return LWM2M_ERR_BAD_REQUEST;
            i = (int64_t)f;
        }
        r->v.i = i;
        break;
    case LWM2M_T_UNSIGNED:
        if (is_f) {
            if (!(f >= 0 && f < 18446744073709551616.0) || f != trunc(f))
                return LWM2M_ERR_BAD_REQUEST;
            u = (uint64_t)f;
        } else if (!is_u) {
            if (i < 0)
                return LWM2M_ERR_BAD_REQUEST;
            u = (uint64_t)i;
        }
        r->v.u = u;
        break;
    case LWM2M_T_FLOAT:
        r->v.f = is_u ? (double)u : (double)i; /* nearest double */
        break;
    default:
        return LWM2M_OK;
    }
    r->type = want;
    return LWM2M_OK;
}

/* LwM2M CBOR carries object links and core links as text (TS 1.2 §7.4.7):
 * the definition says which, and numbers narrow as for SenML. */
static int lwm2m_cbor_retype(lwm2m_record_t *r, lwm2m_type_t want)
{
    if (r->type == LWM2M_T_STRING && want == LWM2M_T_OBJLNK) {
        uint16_t oid, iid;
        if (lwm2m__parse_objlnk((const char *)r->bytes, r->nbytes, &oid, &iid) != LWM2M_OK)
            return LWM2M_ERR_BAD_REQUEST;
        lwm2m__record_free(r);
        r->type = LWM2M_T_OBJLNK;
        r->v.lnk.oid = oid;
        r->v.lnk.iid = iid;
        return LWM2M_OK;
    }
    return narrow(r, want);
}

/* ============================================================ dispatch */

static bool is_tlv(int cf)
{
    return cf == LWM2M_CF_TLV || cf == LWM2M_CF_OLD_TLV;
}

int lwm2m_encode(int cf, const lwm2m_path_t *base, const lwm2m_records_t *rs, uint8_t **out, size_t *outlen)
{
    if (!base || !rs || !out || !outlen || base->len > 4)
        return LWM2M_ERR_BAD_REQUEST;
    if (is_tlv(cf))
        return lwm2m_tlv_encode(base, rs, out, outlen);
    switch (cf) {
    case LWM2M_CF_SENML_JSON:
        return lwm2m_senml_json_encode(base, rs, out, outlen);
    case LWM2M_CF_SENML_CBOR:
        return lwm2m_senml_cbor_encode(base, rs, out, outlen);
    case LWM2M_CF_LWM2M_CBOR:
        return lwm2m_lwm2m_cbor_encode(base, rs, out, outlen);
    case LWM2M_CF_TEXT:
    case LWM2M_CF_OPAQUE:
        /* single-value formats: the one record is the addressed resource
         * (instance) itself (LwM2M TS 1.1 §7.4.1, §7.4.2) */
        if (rs->n != 1 || !lwm2m_path_equal(&rs->recs[0].path, base))
            return LWM2M_ERR_BAD_REQUEST;
        return cf == LWM2M_CF_TEXT ? lwm2m_text_encode(rs, out, outlen) : lwm2m__opaque_encode(rs, out, outlen);
    default:
        return LWM2M_ERR_UNSUPPORTED_CF;
    }
}

static int registry_type(const struct lwm2m_registry *reg, const lwm2m_path_t *p)
{
    if (!reg || p->len < 3)
        return -1;
    int t = lwm2m_registry_type(reg, p->ids[0], p->ids[2]);
    return lwm2m__type_valid(t) ? t : -1;
}

int lwm2m_decode(int cf, const lwm2m_path_t *base, const uint8_t *buf, size_t len,
                 const struct lwm2m_registry *reg, lwm2m_records_t *out)
{
    if (!base || !out || base->len > 4 || (!buf && len > 0))
        return LWM2M_ERR_BAD_REQUEST;
    if (len > LWM2M_MAX_PAYLOAD)
        return LWM2M_ERR_REQUEST_TOO_LARGE;
    size_t n0 = out->n;
    int rc;
    if (is_tlv(cf)) {
        rc = lwm2m_tlv_decode(base, buf, len, out);
        /* TLV carries no type: read the raw bytes as the object definition
         * says (TS 1.0 §6.4.3); executable or unknown resources stay raw */
        for (size_t i = n0; rc == LWM2M_OK && i < out->n; i++) {
            int t = registry_type(reg, &out->recs[i].path);
            if (t > (int)LWM2M_T_NONE)
                rc = lwm2m_record_retype(&out->recs[i], (lwm2m_type_t)t);
        }
    } else if (cf == LWM2M_CF_SENML_JSON || cf == LWM2M_CF_SENML_CBOR) {
        rc = cf == LWM2M_CF_SENML_JSON ? lwm2m_senml_json_decode(base, buf, len, out)
                                       : lwm2m_senml_cbor_decode(base, buf, len, out);
        for (size_t i = n0; rc == LWM2M_OK && i < out->n; i++) {
            int t = registry_type(reg, &out->recs[i].path);
            if (t > (int)LWM2M_T_NONE)
                rc = narrow(&out->recs[i], (lwm2m_type_t)t);
        }
    } else if (cf == LWM2M_CF_LWM2M_CBOR) {
        rc = lwm2m_lwm2m_cbor_decode(base, buf, len, out);
        for (size_t i = n0; rc == LWM2M_OK && i < out->n; i++) {
            int t = registry_type(reg, &out->recs[i].path);
            if (t > (int)LWM2M_T_NONE)
                rc = lwm2m_cbor_retype(&out->recs[i], (lwm2m_type_t)t);
        }
    } else if (cf == LWM2M_CF_TEXT) {
        int t = registry_type(reg, base);
        rc = lwm2m_text_decode(base, buf, len, t > (int)LWM2M_T_NONE ? (lwm2m_type_t)t : LWM2M_T_STRING, out);
    } else if (cf == LWM2M_CF_OPAQUE) {
        rc = lwm2m__opaque_decode(base, buf, len, out);
    } else {
        return LWM2M_ERR_UNSUPPORTED_CF;
    }
    if (rc != LWM2M_OK)
        lwm2m__records_truncate(out, n0);
    return rc;
}
