/* sim room internals: the device data model's struct and the helpers that
 * sim/device.c (model, Bootstrap interface), sim/dm.c (Device Management
 * interface, values) and sim/observe.c (attributes, notifications) share.
 * Not part of the library API (sim/sim.h). Names start with `sim__` (double
 * underscore): private to the room. */
#ifndef LWDM_SIM_DM_INT_H
#define LWDM_SIM_DM_INT_H
#include <stdarg.h>
#include <stdint.h>

#include "server/lwm2m/registry.h"
#include "sim/sim_int.h"

typedef struct {
    uint16_t oid, iid;
} sim__inst_t;

/* Attributes attached to one path (object, instance, resource or resource
 * instance) by Write-Attributes. */
typedef struct {
    lwm2m_path_t path;
    sim_attrs_t a;
} sim__attached_t;

/* Invariants (assert_dm, after every change):
 *   I1  every record lies under an instance listed in `inst`;
 *   I2  every instance belongs to a supported object;
 *   I3  at most one /0 instance has Bootstrap-Server (/0/x/1) = true;
 *   I4  every attached attribute set is non-empty (mask != 0). */
struct sim_dm {
    lwm2m_version_t version;
    int preferred_cf;
    const lwm2m_registry_t *reg;
    bool refuse_discover, fail_finish;
    lwm2m_records_t rs;   /* sorted by path */
    sim__inst_t *inst;    /* sorted by (oid, iid) */
    size_t ninst, capinst;
    sim__attached_t *attrs; /* sorted by path */
    size_t nattrs, capattrs;
    uint64_t gen;         /* bumped on every change of a value or instance */
    /* simulated device life (sim_dm_tick) */
    bool collecting;      /* /7/0/6 Start .. /7/0/7 Stop */
    double battery;       /* /3/0/9, fractional */
    double tx_kb, rx_kb;  /* /7/0/2, /7/0/3, fractional */
    double collect_s;     /* seconds collected (feeds /7/0/8 when it is 0) */
    int64_t last_unix;    /* unix_now of the last tick (0 before the first) */
    int64_t time_offset;  /* /3/0/13 - unix_now, set by a write of /3/0/13 */
};

static inline lwm2m_path_t sim__P(int len, unsigned a, unsigned b, unsigned c)
{
    return lwm2m_path_make(len, a, b, c, 0);
}

bool sim__obj_supported(const sim_dm_t *dm, uint16_t oid);
const uint16_t *sim__supported_list(const sim_dm_t *dm, size_t *n);
/* Object version the client implements ("1.0", "1.1", ...). */
const char *sim__obj_version(const sim_dm_t *dm, uint16_t oid);
int sim__inst_add(sim_dm_t *dm, uint16_t oid, uint16_t iid);
void sim__inst_del(sim_dm_t *dm, uint16_t oid, uint16_t iid);
/* Removes every record at or below `prefix` (keeps order). */
void sim__records_remove(lwm2m_records_t *rs, const lwm2m_path_t *prefix);
const lwm2m_record_t *sim__find3(const sim_dm_t *dm, uint16_t o, uint16_t i, uint16_t r);
bool sim__rec_bool(const lwm2m_record_t *r, bool *out);
bool sim__rec_int(const lwm2m_record_t *r, int64_t *out);
/* A numeric record (integer, unsigned, float, time) as a double. */
bool sim__rec_num(const lwm2m_record_t *r, double *out);
const char *sim__rec_str(const lwm2m_record_t *r, size_t *len);
bool sim__is_bs_instance(const sim_dm_t *dm, uint16_t iid);
/* Checks a decoded value against the object definition; converts between
 * string and opaque. 0 or LWM2M_ERR_BAD_REQUEST. */
int sim__check_type(const sim_dm_t *dm, lwm2m_record_t *r);
bool sim__query_has(const sim_request_t *req, const char *key);
/* Sets resp->code (and detail); returns 0. */
int sim__answer(sim_response_t *resp, int cls, int detail, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A negated CoAP code from the protocol core -> resp. */
int sim__answer_err(sim_response_t *resp, int err, const char *what);
#ifndef NDEBUG
void sim__assert_dm(const sim_dm_t *dm);
#else
#define sim__assert_dm(dm) ((void)0)
#endif

/* sim/dm.c: the Device Management interface (sim_dm_handle with
 * SIM_IFACE_DM lands here, path already parsed). */
void sim__dm_handle_mgmt(sim_dm_t *dm, const sim_request_t *req, const lwm2m_path_t *p, sim_response_t *resp);
/* Creates /4/0 and /7/0 with their initial values (sim_dm_new). */
int sim__dm_add_device_objects(sim_dm_t *dm);

/* sim/observe.c: attached attributes. */
/* The set attached exactly at `p` (NULL if none). */
const sim_attrs_t *sim__attrs_at(const sim_dm_t *dm, const lwm2m_path_t *p);
/* Replaces the set attached at `p` (an empty set removes it). 0 or LWM2M_ERR_INTERNAL. */
int sim__attrs_put(sim_dm_t *dm, const lwm2m_path_t *p, const sim_attrs_t *a);
/* Drops every set attached at or below `prefix` (Delete of an instance). */
void sim__attrs_drop(sim_dm_t *dm, const lwm2m_path_t *prefix);

#endif
