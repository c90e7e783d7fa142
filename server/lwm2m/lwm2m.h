/* lwm2m core: shared vocabulary of the protocol core (no I/O, no clock).
 *
 * Errors: functions return 0 (or a non-negative count) on success and a
 * negated CoAP code on failure, so a device's 4.04 and our 4.00 travel without
 * translation tables (STYLE.md §3). */
#ifndef LWDM_LWM2M_H
#define LWDM_LWM2M_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LWM2M_CODE(cls, detail) (((cls) << 5) | (detail))
enum {
    LWM2M_OK = 0,
    LWM2M_ERR_BAD_REQUEST = -LWM2M_CODE(4, 0),
    LWM2M_ERR_UNAUTHORIZED = -LWM2M_CODE(4, 1),
    LWM2M_ERR_BAD_OPTION = -LWM2M_CODE(4, 2),
    LWM2M_ERR_FORBIDDEN = -LWM2M_CODE(4, 3),
    LWM2M_ERR_NOT_FOUND = -LWM2M_CODE(4, 4),
    LWM2M_ERR_METHOD_NOT_ALLOWED = -LWM2M_CODE(4, 5),
    LWM2M_ERR_NOT_ACCEPTABLE = -LWM2M_CODE(4, 6),
    LWM2M_ERR_REQUEST_TOO_LARGE = -LWM2M_CODE(4, 13),
    LWM2M_ERR_UNSUPPORTED_CF = -LWM2M_CODE(4, 15),
    LWM2M_ERR_INTERNAL = -LWM2M_CODE(5, 0),
    LWM2M_ERR_NOT_IMPLEMENTED = -LWM2M_CODE(5, 1),
};

/* CoAP Content-Format ids used by LwM2M (SPEC-FACTS.md §4.5) */
enum {
    LWM2M_CF_TEXT = 0,
    LWM2M_CF_LINK = 40,
    LWM2M_CF_OPAQUE = 42,
    LWM2M_CF_CBOR = 60,
    LWM2M_CF_SENML_JSON = 110,
    LWM2M_CF_SENML_CBOR = 112,
    LWM2M_CF_TLV = 11542,
    LWM2M_CF_OMA_JSON = 11543,
    LWM2M_CF_LWM2M_CBOR = 11544,
    LWM2M_CF_OLD_TLV = 1542,
    LWM2M_CF_OLD_JSON = 1543,
    LWM2M_CF_NONE = -1,
};

/* LwM2M enabler versions, as announced by clients (lwm2m=1.x) */
typedef enum { LWM2M_V1_0 = 10, LWM2M_V1_1 = 11, LWM2M_V1_2 = 12 } lwm2m_version_t;

/* Largest payload any decoder accepts; larger input is LWM2M_ERR_REQUEST_TOO_LARGE. */
#define LWM2M_MAX_PAYLOAD (1024 * 1024)

/* ---------------------------------------------------------------- paths */
/* A path is 0..4 ids: "/" (len 0), /o, /o/i, /o/i/r, /o/i/r/ri.
 * Ids are 0..65534 (65535 is reserved as "none"). */
typedef struct {
    uint16_t ids[4];
    uint8_t len;
} lwm2m_path_t;

#define LWM2M_ID_NONE 65535u

/* Parses "/3/0/1", "3/0/1", "/" or "" (root). Trailing '/' is allowed.
 * Returns 0 or LWM2M_ERR_BAD_REQUEST (non-digits, > 4 ids, id > 65534). */
int lwm2m_path_parse(const char *s, size_t len, lwm2m_path_t *out);
/* Writes "/3/0/1" (or "/" for the root) into buf; returns the length written
 * (excluding NUL), or -1 if cap is too small. */
int lwm2m_path_format(const lwm2m_path_t *p, char *buf, size_t cap);
lwm2m_path_t lwm2m_path_make(int len, unsigned a, unsigned b, unsigned c, unsigned d);
bool lwm2m_path_equal(const lwm2m_path_t *a, const lwm2m_path_t *b);
/* true if `p` equals `prefix` or lies below it */
bool lwm2m_path_starts_with(const lwm2m_path_t *p, const lwm2m_path_t *prefix);
/* strcmp-like ordering: by ids, shorter (parent) first */
int lwm2m_path_compare(const lwm2m_path_t *a, const lwm2m_path_t *b);

/* Value of one hex digit (0-9, a-f, A-F), or -1. */
int lwm2m_hex_digit(int ch);

/* -------------------------------------------------------------- values */
typedef enum {
    LWM2M_T_NONE = 0, /* executable / no value */
    LWM2M_T_STRING,
    LWM2M_T_INTEGER,
    LWM2M_T_UNSIGNED,
    LWM2M_T_FLOAT,
    LWM2M_T_BOOLEAN,
    LWM2M_T_OPAQUE,
    LWM2M_T_TIME,
    LWM2M_T_OBJLNK,
    LWM2M_T_CORELNK,
} lwm2m_type_t;

const char *lwm2m_type_name(lwm2m_type_t t); /* "string", "integer", ... */
/* Parses a type name as used by task XML and object XMLs (case-insensitive:
 * "String", "Integer", "Unsigned Integer", "unsigned", "Float", "Boolean",
 * "Opaque", "Time", "Objlnk", "Corelnk", "none"). Returns -1 if unknown. */
int lwm2m_type_parse(const char *s);

/* One resource (instance) value at an absolute path (len 3 or 4).
 * A record set owns every `bytes` buffer it holds. */
typedef struct {
    lwm2m_path_t path;
    lwm2m_type_t type;
    union {
        int64_t i;        /* INTEGER, TIME */
        uint64_t u;       /* UNSIGNED */
        double f;         /* FLOAT */
        bool b;           /* BOOLEAN */
        struct { uint16_t oid, iid; } lnk; /* OBJLNK */
    } v;
    uint8_t *bytes;       /* STRING / OPAQUE / CORELNK payload (NUL-terminated for convenience) */
    size_t nbytes;
} lwm2m_record_t;

typedef struct {
    lwm2m_record_t *recs;
    size_t n, cap;
} lwm2m_records_t;

void lwm2m_records_init(lwm2m_records_t *rs);
void lwm2m_records_clear(lwm2m_records_t *rs); /* frees everything, leaves an empty set */
/* Appends a copy; `bytes` (if any) is copied. Returns 0 or LWM2M_ERR_INTERNAL (ENOMEM). */
int lwm2m_records_add(lwm2m_records_t *rs, const lwm2m_record_t *r);
int lwm2m_records_add_string(lwm2m_records_t *rs, const lwm2m_path_t *p, const char *s);
int lwm2m_records_add_opaque(lwm2m_records_t *rs, const lwm2m_path_t *p, const void *b, size_t n);
int lwm2m_records_add_int(lwm2m_records_t *rs, const lwm2m_path_t *p, int64_t v);
int lwm2m_records_add_uint(lwm2m_records_t *rs, const lwm2m_path_t *p, uint64_t v);
int lwm2m_records_add_float(lwm2m_records_t *rs, const lwm2m_path_t *p, double v);
int lwm2m_records_add_bool(lwm2m_records_t *rs, const lwm2m_path_t *p, bool v);
int lwm2m_records_add_objlnk(lwm2m_records_t *rs, const lwm2m_path_t *p, uint16_t oid, uint16_t iid);
/* Stable sort by path. */
void lwm2m_records_sort(lwm2m_records_t *rs);
/* Returns the first record with exactly this path, or NULL. */
const lwm2m_record_t *lwm2m_records_find(const lwm2m_records_t *rs, const lwm2m_path_t *p);

#endif
