/* Room-internal helpers shared by the payload codecs of server/lwm2m/.
 * Not part of the public surface: only lwm2m.c, codec.c, tlv.c, text.c,
 * senml_json.c and senml_cbor.c include this. Names start with `lwm2m__`
 * (double underscore) to mark them private to the room. */
#ifndef LWDM_LWM2M_CODEC_INT_H
#define LWDM_LWM2M_CODEC_INT_H
#include "server/lwm2m/codec.h"

/* ------------------------------------------------------------ records */
/* Appends a zeroed record and returns it (NULL on ENOMEM). The caller fills
 * it in; any `bytes` it stores there are owned by the set from then on. */
lwm2m_record_t *lwm2m__records_push(lwm2m_records_t *rs);
/* Frees the records from index n on, so a failed decoder can restore the
 * caller's set to the size it had on entry ("fail leaves outputs unchanged"). */
void lwm2m__records_truncate(lwm2m_records_t *rs, size_t n);
/* Frees the payload of one record (bytes) and zeroes it. */
void lwm2m__record_free(lwm2m_record_t *r);
/* true for the types whose value lives in `bytes` */
bool lwm2m__type_has_bytes(lwm2m_type_t t);
/* true if t is one of the lwm2m_type_t enumerators */
bool lwm2m__type_valid(int t);
/* Checks a record that an encoder is about to emit: a valid type; a value
 * (any type but NONE) sits at a resource or resource instance (len 3/4);
 * bytes present when nbytes > 0. */
bool lwm2m__record_ok(const lwm2m_record_t *r);
/* Copies the paths of records [from, rs->n) and reports whether two of them
 * are equal or one lies below another (BAD_REQUEST), for the formats whose
 * structure makes such a set meaningless (TLV). 0 if fine. */
int lwm2m__records_check_unique(const lwm2m_records_t *rs, size_t from);

/* ------------------------------------------------------------- buffer */
/* Growable output buffer. Appends after an allocation failure are ignored and
 * `oom` stays set, so encoders check once at the end. With `count_only` set no
 * memory is touched and only `n` advances (used to size TLV containers). */
typedef struct {
    uint8_t *p;
    size_t n, cap;
    bool oom;
    bool count_only;
} lwm2m__buf_t;

void lwm2m__buf_init(lwm2m__buf_t *b);
void lwm2m__buf_free(lwm2m__buf_t *b);
/* Makes room for `extra` more bytes; false on ENOMEM (and sets oom). */
bool lwm2m__buf_reserve(lwm2m__buf_t *b, size_t extra);
void lwm2m__buf_put(lwm2m__buf_t *b, const void *data, size_t n);
void lwm2m__buf_putc(lwm2m__buf_t *b, uint8_t c);
void lwm2m__buf_puts(lwm2m__buf_t *b, const char *s);
/* Hands the bytes over to *out / *outlen (never NULL, even when empty).
 * Returns 0, or LWM2M_ERR_INTERNAL after an allocation failure (the buffer is
 * freed either way). */
int lwm2m__buf_finish(lwm2m__buf_t *b, uint8_t **out, size_t *outlen);

/* ------------------------------------------------------------- base64 */
/* Encodes n bytes. url: RFC 4648 §5 alphabet without padding (SenML, RFC 8428
 * §4.3); otherwise §4 alphabet with padding (text/plain, LwM2M TS 1.1 App. C). */
void lwm2m__b64_encode(lwm2m__buf_t *b, const uint8_t *in, size_t n, bool url);
/* Decodes leniently, because clients disagree (OMA LwM2M issue #553, wakaama
 * PR #710, zephyr PR #44223): characters of either alphabet, '=' padding
 * optional but, if present, correct and final.
 * Rejects any other character, a length of 1 mod 4, and non-zero unused
 * bits. On success *out is malloc'd (NUL-terminated, never NULL). Returns 0
 * or LWM2M_ERR_BAD_REQUEST / LWM2M_ERR_INTERNAL. */
int lwm2m__b64_decode(const char *s, size_t n, uint8_t **out, size_t *outlen);

/* ------------------------------------------------------------ numbers */
/* Shortest "%.*g" text that reads back as exactly `v` (finite only). With
 * `force_real` a ".0" is appended when the text would otherwise look like an
 * integer, so that JSON readers keep it a real. Returns the length or -1. */
int lwm2m__fmt_double(double v, bool force_real, char *buf, size_t cap);
/* Strict decimal parsers for untrusted text: optional '-' (integers and
 * floats), digits, no spaces, no '+', no hex; floats also take a fraction and
 * an exponent but never "nan"/"inf", and must be finite. 0 or BAD_REQUEST. */
int lwm2m__parse_i64(const char *s, size_t n, int64_t *out);
int lwm2m__parse_u64(const char *s, size_t n, uint64_t *out);
int lwm2m__parse_double(const char *s, size_t n, double *out);
/* "oid:iid", each 0..65535 (65535:65535 is the null link). */
int lwm2m__parse_objlnk(const char *s, size_t n, uint16_t *oid, uint16_t *iid);
/* Writes the ids of p after its first `skip` ids, '/'-separated, no leading
 * slash ("6/0"). Returns the length or -1 if cap is too small. */
int lwm2m__path_format_rel(const lwm2m_path_t *p, size_t skip, char *buf, size_t cap);
/* RFC 3629 UTF-8: no overlongs, no surrogates, nothing above U+10FFFF. */
bool lwm2m__utf8_valid(const uint8_t *s, size_t n);
/* true if the double would survive a round trip through a 4-byte float */
bool lwm2m__fits_float(double v);

/* ------------------------------------------------- SenML names */
/* How a SenML encoder names the records of one payload (LwM2M TS 1.1
 * §7.4.4, the tables of examples there):
 *  - request path "/" (composite): no bn, every n absolute ("/3/0/9");
 *  - every record is the request path itself (a single resource or resource
 *    instance): bn = that path, no n (Table 7.4.4-5);
 *  - otherwise bn = request path + '/' on the first record, n relative
 *    ("0", "6/1"). */
typedef struct {
    bool bn;      /* write bn (on the first record) */
    bool n;       /* write n on every record */
    char bn_text[32];
} lwm2m__senml_names_t;

/* Checks the records against the request path (lwm2m__record_ok, below or
 * equal to `base`) and fills *nm. 0 or BAD_REQUEST. */
int lwm2m__senml_names(const lwm2m_path_t *base, const lwm2m_records_t *rs, lwm2m__senml_names_t *nm);
/* The n text of record path p. Returns its length or -1. */
int lwm2m__senml_n(const lwm2m_path_t *base, const lwm2m_path_t *p, char *buf, size_t cap);

/* -------------------------------------------------- opaque (CF 42) */
int lwm2m__opaque_encode(const lwm2m_records_t *rs, uint8_t **out, size_t *outlen);
int lwm2m__opaque_decode(const lwm2m_path_t *base, const uint8_t *buf, size_t len, lwm2m_records_t *out);

#endif
