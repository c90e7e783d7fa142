/* CoRE link format (RFC 6690) as used by LwM2M Discover and Register payloads.
 * Accepts both the 1.0 form (`lwm2m="1.0",</0/1>,...`, quoted values, no `</>`)
 * and the 1.1+ form (`</>;lwm2m=1.1,</0/1>;ssid=1;uri="coap://..."`). */
#ifndef LWDM_LWM2M_LINK_H
#define LWDM_LWM2M_LINK_H
#include "server/lwm2m/lwm2m.h"

#define LWM2M_LINK_MAX_ATTRS 16

typedef struct {
    char *name;  /* owned */
    char *value; /* owned, unquoted; NULL for a valueless attribute (e.g. `Q`) */
} lwm2m_link_attr_t;

typedef struct {
    char *uri;          /* owned, as written between < > (e.g. "/0/1", "/", "/lwm2m/3/0") */
    lwm2m_path_t path;  /* parsed URI; valid only when `is_lwm2m_path` */
    bool is_lwm2m_path;
    lwm2m_link_attr_t attrs[LWM2M_LINK_MAX_ATTRS];
    size_t nattrs;
} lwm2m_link_t;

typedef struct {
    lwm2m_link_t *links;
    size_t n, cap;
    /* attributes that stood before the first link (the 1.0 Discover form
     * `lwm2m="1.0",</0>...`), owned */
    lwm2m_link_attr_t head_attrs[LWM2M_LINK_MAX_ATTRS];
    size_t nhead;
} lwm2m_links_t;

void lwm2m_links_init(lwm2m_links_t *ls);
void lwm2m_links_clear(lwm2m_links_t *ls);
/* Parses `buf`; appends to `out`. Returns 0 or LWM2M_ERR_BAD_REQUEST
 * (out unchanged on failure), LWM2M_ERR_REQUEST_TOO_LARGE. */
int lwm2m_link_parse(const uint8_t *buf, size_t len, lwm2m_links_t *out);
/* Value of attribute `name` on `l` (NULL if absent; "" for a valueless one). */
const char *lwm2m_link_attr(const lwm2m_link_t *l, const char *name);
/* The enabler version announced by a Discover/Register payload (`lwm2m` attr on
 * `</>` or the head), or 0 if none. Accepts "1.0", 1.1, "1.2". */
int lwm2m_links_version(const lwm2m_links_t *ls);
/* Alternate path roots (OMA-TS-Core 1.1 §6.2.2.1: `</lwm2m>;rt="oma.lwm2m",
 * </lwm2m/1/0>`): the URI of the link carrying rt="oma.lwm2m" (borrowed from
 * `ls`), or NULL if there is none. A root of "/" means no alternate path. */
const char *lwm2m_links_root(const lwm2m_links_t *ls);
/* Re-reads `path`/`is_lwm2m_path` of every link whose URI is `prefix` or lies
 * below it ("/lwm2m" or "/lwm2m/"; "/lwm2mx/1" is not below it) relative to
 * that prefix, so `</lwm2m/3/0>` becomes /3/0 and `</lwm2m>` the root. `uri`
 * is left as written; links outside the prefix are not touched. Returns the
 * number of links now addressed as LwM2M paths, or LWM2M_ERR_BAD_REQUEST for
 * NULL arguments. */
int lwm2m_links_strip_prefix(lwm2m_links_t *ls, const char *prefix);

/* Builder: appends `<uri>;a=b;c` entries to a growable string.
 * Returns 0 or LWM2M_ERR_INTERNAL. Caller frees *buf. */
typedef struct { char *buf; size_t len, cap; } lwm2m_strbuf_t;
int lwm2m_link_append(lwm2m_strbuf_t *sb, const char *uri, const char *attrs /* e.g. "ssid=1;uri=\"coap://x\"" or NULL */);

#endif
