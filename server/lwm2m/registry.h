/* Object registry: OMA object definitions (objects/ (*.xml files), embedded at build
 * time, plus any --objects DIR), and resolution of task keys such as
 * "LwM2M Security.2.LwM2M Server URI", "Device.Connectivity Statistics.0.Start",
 * "/0/2/0" or "0.2.0". Names match ignoring case and repeated spaces. */
#ifndef LWDM_LWM2M_REGISTRY_H
#define LWDM_LWM2M_REGISTRY_H
#include "server/lwm2m/lwm2m.h"

typedef struct lwm2m_registry lwm2m_registry_t;

typedef enum { LWM2M_OP_R = 1, LWM2M_OP_W = 2, LWM2M_OP_E = 4 } lwm2m_ops_t;

typedef struct {
    uint16_t id;
    const char *name;
    lwm2m_type_t type;
    bool multiple;
    bool mandatory;
    unsigned ops;          /* LWM2M_OP_* bits; 0 for bootstrap-only objects (/0) */
    const char *range;     /* RangeEnumeration text, may be "" */
    const char *units;
} lwm2m_resdef_t;

typedef struct {
    uint16_t id;
    const char *name;
    const char *urn;
    const char *version;   /* ObjectVersion, "1.0" if absent */
    bool multiple;
    bool mandatory;
    const lwm2m_resdef_t *res;
    size_t nres;
} lwm2m_objdef_t;

/* Lifetime: definitions are owned by the registry. A later add_* that
 * replaces an object frees the earlier definition, so pointers obtained before
 * an add_* call may become invalid. Load everything first, then look up. */
lwm2m_registry_t *lwm2m_registry_new(void);
void lwm2m_registry_free(lwm2m_registry_t **reg);
/* Adds the definitions of one OMA XML document (LWM2M root, one or more Object
 * elements). A later definition of the same object id replaces the earlier.
 * Parsed with no network access, no DTD loading, no entity expansion.
 * On error returns LWM2M_ERR_BAD_REQUEST and writes a message to err. */
int lwm2m_registry_add_xml(lwm2m_registry_t *reg, const char *buf, size_t len, char *err, size_t errlen);
/* Adds the built-in definitions (embedded objects/ (*.xml files)). */
int lwm2m_registry_add_builtin(lwm2m_registry_t *reg, char *err, size_t errlen);
/* Adds every *.xml file of a directory (this one does file I/O). */
int lwm2m_registry_add_dir(lwm2m_registry_t *reg, const char *dir, char *err, size_t errlen);

size_t lwm2m_registry_count(const lwm2m_registry_t *reg);
const lwm2m_objdef_t *lwm2m_registry_object(const lwm2m_registry_t *reg, uint16_t oid);
const lwm2m_objdef_t *lwm2m_registry_object_by_name(const lwm2m_registry_t *reg, const char *name);
const lwm2m_objdef_t *lwm2m_registry_object_at(const lwm2m_registry_t *reg, size_t index);
const lwm2m_resdef_t *lwm2m_objdef_resource(const lwm2m_objdef_t *obj, uint16_t rid);
const lwm2m_resdef_t *lwm2m_objdef_resource_by_name(const lwm2m_objdef_t *obj, const char *name);
/* Type of /o/i/r per the definitions, or LWM2M_T_NONE... -1 if unknown. */
int lwm2m_registry_type(const lwm2m_registry_t *reg, uint16_t oid, uint16_t rid);

/* Resolves a task key to a path (object, instance, resource[, resource instance]).
 * Accepted forms: "/0/2/0", "0/2/0", "0.2.0", "LwM2M Security.2.LwM2M Server URI",
 * "Device.Connectivity Statistics.0.Collection Period" (optional "Device." prefix
 * before an object name that is not "Device" itself). Object and resource may be
 * names or numbers independently. On success returns 0 and sets *out and, when
 * known, *res (else NULL). On failure returns LWM2M_ERR_NOT_FOUND or
 * LWM2M_ERR_BAD_REQUEST and writes a message naming the closest valid name. */
int lwm2m_registry_resolve_key(const lwm2m_registry_t *reg, const char *key, lwm2m_path_t *out,
                               const lwm2m_resdef_t **res, char *err, size_t errlen);

/* Levenshtein distance (insert, delete, substitute: cost 1 each) of two
 * names, ASCII case-insensitive, for "did you mean" suggestions; SIZE_MAX
 * when either is longer than 128 bytes. */
size_t lwm2m_name_distance(const char *a, size_t an, const char *b, size_t bn);

/* Normalises a name for comparison: lower-case, runs of spaces folded to one,
 * leading/trailing spaces dropped. Writes to buf; returns buf. */
char *lwm2m_name_normalise(const char *in, char *buf, size_t cap);

#endif
