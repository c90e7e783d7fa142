/* Typed JSON values for the REST API (docs/management.md "Values in JSON"):
 * records <-> JSON, and the names of payload formats used by `?format=`.
 * Pure code: no I/O. Types come from the object registry (registry.h). */
#ifndef LWDM_LWM2M_VALJSON_H
#define LWDM_LWM2M_VALJSON_H
#include <jansson.h>

#include "server/lwm2m/lwm2m.h"

struct lwm2m_registry; /* registry.h; may be NULL below (then nothing is "known") */

/* Returns a new JSON array (the caller owns the reference) with one object
 * per record, in the order of `rs`:
 *   {"path": "/3/0/7/0", "name": "Power Source Voltage", "type": "integer", "value": 3800}
 *  - "name": the resource name from the registry (the object name for a
 *    record at /o or /o/i), left out when unknown;
 *  - "type": lwm2m_type_name() of the value's type ("string", "integer",
 *    "unsigned", "float", "boolean", "opaque", "time", "objlnk", "corelnk",
 *    "none");
 *  - "value": string / corelnk as a JSON string (bytes that are not UTF-8
 *    become U+FFFD), integer and time as JSON integers (time in seconds since
 *    1970), unsigned as a JSON integer (above INT64_MAX, which a JSON integer
 *    here cannot hold, as a string of decimal digits), float as a JSON real
 *    (null when NaN or infinite: JSON has no such numbers), boolean, opaque as
 *    lower-case hex, objlnk as "oid:iid", none as null.
 * Records are not changed, but the value shown follows the definition: a raw
 * opaque value (as TLV decodes it) whose resource is defined with another type
 * is shown converted with lwm2m_record_retype() (kept opaque if it does not
 * convert), text of an Objlnk resource as objlnk, Integer/Time and
 * String/Corelnk relabelled to the defined one.
 * Returns NULL only when memory runs out (or rs is NULL). */
json_t *lwm2m_records_to_json(const struct lwm2m_registry *reg, const lwm2m_records_t *rs);

/* Reads a write body addressed to `base` (the URL path) and appends the
 * records it names to `out`. Accepted bodies:
 *   {"value": V [, "type": T]}       base is /o/i/r or /o/i/r/ri
 *   {"records": [{"path": "/3/0/14", "value": V [, "type": T] [, "name": ..]}, ...]}
 *                                     paths at or below base, each /o/i/r or /o/i/r/ri
 * Other top-level members are ignored (they belong to the caller); an unknown
 * member inside a record is an error.
 * Types come from the object definitions. "type" (a name lwm2m_type_parse()
 * knows) is needed only for a resource the registry does not define, and must
 * agree with the definition when both exist. Conversion of V by type:
 * integer and time: a JSON integer; unsigned: a JSON integer >= 0 (or a
 * string of decimal digits, for values above INT64_MAX); float: any JSON
 * number; boolean: true/false; opaque: a hex string of even length; objlnk:
 * "oid:iid" (each 0..65535); string, corelnk: any JSON string. A numeric
 * RangeEnumeration "A..B" of the definition is enforced. At /o/i/r a
 * multiple-instance resource may be given as a list {"value": [v0, v1]}
 * (instances 0, 1, ...) or an object {"value": {"0": v0, "5": v5}}; either
 * expands to one record per resource instance (at least one). Executable
 * resources and "none" take no value. Two records for the same path, or one
 * below another, are an error.
 * Returns 0 on success. On failure returns LWM2M_ERR_BAD_REQUEST (the body is
 * wrong; `field` gets the offending member, e.g. "value", "type",
 * "records[1].value", "records[0].path", "records[2].value[1]", and `err` a
 * sentence for a human) or LWM2M_ERR_INTERNAL (out of memory), and `out` is
 * left as it was. field / err may be NULL (with length 0); on success they are
 * set to "". */
int lwm2m_records_from_json(const struct lwm2m_registry *reg, const lwm2m_path_t *base, const json_t *body,
                            lwm2m_records_t *out, char *field, size_t fieldlen, char *err, size_t errlen);

/* "tlv", "senml-json", "senml-cbor", "lwm2m-cbor", "text", "opaque", "link"
 * (ASCII case-insensitive) -> the CoAP Content-Format id (LWM2M_CF_*); -1 for
 * anything else (NULL included). */
int lwm2m_format_parse(const char *name);
/* The reverse: the name of a Content-Format id (the legacy TLV id 1542 is
 * "tlv" too), or NULL if it has none. */
const char *lwm2m_format_slug(int cf);

#endif
