/* Payload codecs: TLV, SenML JSON, SenML CBOR, LwM2M CBOR, plain text, opaque.
 * Pure functions: buffer in, records out (and back). No I/O. */
#ifndef LWDM_LWM2M_CODEC_H
#define LWDM_LWM2M_CODEC_H
#include "server/lwm2m/lwm2m.h"

struct lwm2m_registry; /* registry.h; may be NULL everywhere below */

/* true if lwdm can encode and decode this content format */
bool lwm2m_cf_supported(int cf);
const char *lwm2m_cf_name(int cf); /* "TLV", "SenML JSON", ... or "unknown" */

/* Encodes `rs` as a payload addressed to `base` (the request URI path).
 * Every record path must lie below (or equal) `base`.
 *  - TLV: base /o -> object-instance wrappers; /o/i -> resources; /o/i/r ->
 *    one resource (or its instances).
 *  - SenML JSON / CBOR: `bn` is the base path with a trailing '/', names are relative.
 *  - LwM2M CBOR: nested maps keyed by absolute path ids (LwM2M TS 1.2 §7.4.7),
 *    records sorted by path, shared id chains written as array keys
 *    ({[3,0]: {0: .., 9: ..}}); a record may not lie below another (BAD_REQUEST).
 *  - TEXT / OPAQUE: exactly one record.
 * On success *out is malloc'd (caller frees) and *outlen set; returns 0.
 * Errors: LWM2M_ERR_UNSUPPORTED_CF, LWM2M_ERR_BAD_REQUEST (records do not fit
 * the format or the base), LWM2M_ERR_INTERNAL. */
int lwm2m_encode(int cf, const lwm2m_path_t *base, const lwm2m_records_t *rs, uint8_t **out, size_t *outlen);

/* Decodes a payload that was addressed to `base`. Appends records with absolute
 * paths to `out` (left unchanged on failure).
 * TLV and TEXT carry no type: with a registry the type comes from the object
 * definition, otherwise TLV values are LWM2M_T_OPAQUE (raw bytes) and TEXT
 * values LWM2M_T_STRING. SenML values are typed by their field (v, vs, vb,
 * vd, vlo); with a registry numbers are narrowed to the definition's type.
 * LwM2M CBOR values are typed by their CBOR type (integer, float, bool, text,
 * bytes, tag 1 time, null = NONE); text is STRING unless the registry says
 * Objlnk ("oid:iid", else BAD_REQUEST) or Corelnk, and numbers are narrowed
 * as for SenML.
 * Errors: LWM2M_ERR_BAD_REQUEST (malformed), LWM2M_ERR_UNSUPPORTED_CF,
 * LWM2M_ERR_REQUEST_TOO_LARGE (len > LWM2M_MAX_PAYLOAD). */
int lwm2m_decode(int cf, const lwm2m_path_t *base, const uint8_t *buf, size_t len,
                 const struct lwm2m_registry *reg, lwm2m_records_t *out);

/* Converts a raw (LWM2M_T_OPAQUE, as TLV-decoded) value to `type` following the
 * TLV rules (integers 1/2/4/8 bytes big-endian, float 4/8, bool 1 byte,
 * objlnk 4 bytes). Returns 0 or LWM2M_ERR_BAD_REQUEST. */
int lwm2m_record_retype(lwm2m_record_t *r, lwm2m_type_t type);

/* Per-format entry points (same contracts as above). */
int lwm2m_tlv_encode(const lwm2m_path_t *base, const lwm2m_records_t *rs, uint8_t **out, size_t *outlen);
int lwm2m_tlv_decode(const lwm2m_path_t *base, const uint8_t *buf, size_t len, lwm2m_records_t *out);
int lwm2m_senml_json_encode(const lwm2m_path_t *base, const lwm2m_records_t *rs, uint8_t **out, size_t *outlen);
int lwm2m_senml_json_decode(const lwm2m_path_t *base, const uint8_t *buf, size_t len, lwm2m_records_t *out);
int lwm2m_senml_cbor_encode(const lwm2m_path_t *base, const lwm2m_records_t *rs, uint8_t **out, size_t *outlen);
int lwm2m_senml_cbor_decode(const lwm2m_path_t *base, const uint8_t *buf, size_t len, lwm2m_records_t *out);
/* LwM2M CBOR (lwm2m_cbor.c): paths in the payload are absolute and must lie
 * at or below `base`; see the file comment for what is accepted. */
int lwm2m_lwm2m_cbor_encode(const lwm2m_path_t *base, const lwm2m_records_t *rs, uint8_t **out, size_t *outlen);
int lwm2m_lwm2m_cbor_decode(const lwm2m_path_t *base, const uint8_t *buf, size_t len, lwm2m_records_t *out);
int lwm2m_text_encode(const lwm2m_records_t *rs, uint8_t **out, size_t *outlen);
int lwm2m_text_decode(const lwm2m_path_t *base, const uint8_t *buf, size_t len, lwm2m_type_t type, lwm2m_records_t *out);

#endif
