/* Simulated device: data model (/0, /1, /2, /3, /4, /7, /21) and the
 * client-side handlers of the LwM2M Bootstrap Interface; requests on the
 * Device Management interface are passed on to sim/dm.c.
 *
 * Pure code: a request struct in, a response struct out. No libcoap, no
 * clock, no sockets (sim.c feeds it from libcoap; unit tests feed it
 * transcripts).
 *
 * Model: `rs` holds every resource value (paths of length 3 or 4) sorted by
 * path; `inst` holds every object instance (sorted), so an instance can
 * exist without resources. The struct and its invariants are in
 * sim/dm_int.h; sim__assert_dm() checks them in debug builds after every
 * change.
 *
 * Decisions and their sources (LwM2M Core TS 1.1.1 unless stated):
 *  - Bootstrap-Write (§5.2.7.4, §6.1.7.4) writes "regardless of the existence
 *    of the Object Instance(s) or Resource(s)": missing instances are created;
 *    each written resource replaces the old one (all of its instances), and
 *    resources not in the payload are kept (merge per resource).
 *  - "The LwM2M Client MUST have at most one LwM2M Bootstrap-Server Account"
 *    (§6.1.2): a write that would make a second /0 instance a BS account is
 *    refused with 4.00 (as Anjay does, MultipleBootstrapSecurityInstancesNotAllowed).
 *  - Bootstrap-Delete (§6.1.7.6) never deletes the BS account, the /21
 *    instance it links to (1.1+), nor /3/0; deleting an instance that does not
 *    exist answers 2.02 (RFC 7252 §5.9.1.2: 2.02 also when the resource did not
 *    exist); resource-level Delete is 4.00.
 *  - Bootstrap-Discover (§5.2.7.5): root or object only; `?depth` is 4.00
 *    (1.2 attribute, not for bootstrap). 1.0 form starts with `lwm2m="1.0"`
 *    and has no `</>` and no `uri`; 1.1+ form starts with `</>;lwm2m=1.x`
 *    and carries `uri="..."` on /0 instances. The BS account has no `ssid`.
 *    An object with instances is listed by its instances (preceded by the
 *    object link only when it carries `ver`); an object without instances by
 *    `</o>`. ver is quoted in 1.0, a token in 1.1+.
 *  - Bootstrap-Read is a 1.1 operation (§5.2.7.2); a 1.0 client answers 4.05.
 *    /0 and /21 hold secrets and answer 4.01. A GET is a Discover when it
 *    carries Accept 40, or has no Accept and targets the root (or an object,
 *    for a 1.0 client); any other GET is a Read.
 *  - Bootstrap-Finish (§5.2.7.3, ETS int-9): inconsistent configuration is
 *    4.06; the rules are in sim.h (sim_dm_check).
 */
#include <assert.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/lwm2m/codec.h"
#include "server/lwm2m/link.h"
#include "server/lwm2m/registry.h"
#include "sim/dm_int.h"

static const uint16_t supported_10[] = {0, 1, 2, 3, 4, 7};
static const uint16_t supported_11[] = {0, 1, 2, 3, 4, 7, 21};

/* Security, Server, Access Control, Device, Connectivity Monitoring,
 * Connectivity Statistics, and OSCORE for 1.1+ clients. */
bool sim__obj_supported(const sim_dm_t *dm, uint16_t oid)
{
    return oid <= 4 || oid == 7 || (oid == 21 && dm->version >= LWM2M_V1_1);
}

const uint16_t *sim__supported_list(const sim_dm_t *dm, size_t *n)
{
    if (dm->version >= LWM2M_V1_1) {
        *n = sizeof supported_11 / sizeof supported_11[0];
        return supported_11;
    }
    *n = sizeof supported_10 / sizeof supported_10[0];
    return supported_10;
}

/* Object version this simulated client implements (sent as `ver` when not
 * 1.0, Core TS 1.1.1 §5.2.7.5 / §6.2.2): the version published with the
 * client's enabler release. */
const char *sim__obj_version(const sim_dm_t *dm, uint16_t oid)
{
    if (oid == 2 || oid == 4 || oid == 7)
        return "1.0"; /* the simulated client implements their first version */
    if (dm->version == LWM2M_V1_1)
        return oid == 21 ? "1.0" : "1.1";
    if (dm->version == LWM2M_V1_2)
        return oid == 21 ? "2.0" : "1.2";
    return "1.0";
}

/* ------------------------------------------------------------ helpers */

static int inst_index(const sim_dm_t *dm, uint16_t oid, uint16_t iid, bool *found)
{
    size_t lo = 0, hi = dm->ninst;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const sim__inst_t *x = &dm->inst[mid];
        if (x->oid < oid || (x->oid == oid && x->iid < iid))
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < dm->ninst && dm->inst[lo].oid == oid && dm->inst[lo].iid == iid;
    return (int)lo;
}

int sim__inst_add(sim_dm_t *dm, uint16_t oid, uint16_t iid)
{
    bool found;
    int at = inst_index(dm, oid, iid, &found);
    if (found)
        return 0;
    if (dm->ninst == dm->capinst) {
        size_t cap = dm->capinst ? dm->capinst * 2 : 8;
        sim__inst_t *n = realloc(dm->inst, cap * sizeof *n);
        if (!n)
            return LWM2M_ERR_INTERNAL;
        dm->inst = n;
        dm->capinst = cap;
    }
    memmove(&dm->inst[at + 1], &dm->inst[at], (dm->ninst - (size_t)at) * sizeof *dm->inst);
    dm->inst[at] = (sim__inst_t){oid, iid};
    dm->ninst++;
    return 0;
}

/* Removes every record at or below `prefix` (keeps order). */
void sim__records_remove(lwm2m_records_t *rs, const lwm2m_path_t *prefix)
{
    size_t w = 0;
    for (size_t r = 0; r < rs->n; r++) {
        if (lwm2m_path_starts_with(&rs->recs[r].path, prefix)) {
            free(rs->recs[r].bytes);
            continue;
        }
        rs->recs[w++] = rs->recs[r];
    }
    rs->n = w;
}

void sim__inst_del(sim_dm_t *dm, uint16_t oid, uint16_t iid)
{
    bool found;
    int at = inst_index(dm, oid, iid, &found);
    if (!found)
        return;
    memmove(&dm->inst[at], &dm->inst[at + 1], (dm->ninst - (size_t)at - 1) * sizeof *dm->inst);
    dm->ninst--;
    lwm2m_path_t p = sim__P(2, oid, iid, 0);
    sim__records_remove(&dm->rs, &p);
    sim__attrs_drop(dm, &p);
}

const lwm2m_record_t *sim__find3(const sim_dm_t *dm, uint16_t o, uint16_t i, uint16_t r)
{
    lwm2m_path_t p = sim__P(3, o, i, r);
    return lwm2m_records_find(&dm->rs, &p);
}

bool sim__rec_bool(const lwm2m_record_t *r, bool *out)
{
    if (!r)
        return false;
    switch (r->type) {
    case LWM2M_T_BOOLEAN: *out = r->v.b; return true;
    case LWM2M_T_INTEGER: *out = r->v.i != 0; return true;
    case LWM2M_T_UNSIGNED: *out = r->v.u != 0; return true;
    default: return false;
    }
}

bool sim__rec_int(const lwm2m_record_t *r, int64_t *out)
{
    if (!r)
        return false;
    switch (r->type) {
    case LWM2M_T_INTEGER:
    case LWM2M_T_TIME: *out = r->v.i; return true;
    case LWM2M_T_UNSIGNED:
        if (r->v.u > INT64_MAX)
            return false;
        *out = (int64_t)r->v.u;
        return true;
    default: return false;
    }
}

bool sim__rec_num(const lwm2m_record_t *r, double *out)
{
    if (!r)
        return false;
    switch (r->type) {
    case LWM2M_T_INTEGER:
    case LWM2M_T_TIME: *out = (double)r->v.i; return true;
    case LWM2M_T_UNSIGNED: *out = (double)r->v.u; return true;
    case LWM2M_T_FLOAT: *out = r->v.f; return true;
    default: return false;
    }
}

/* string or opaque content; NULL if the record is absent or not bytes */
const char *sim__rec_str(const lwm2m_record_t *r, size_t *len)
{
    if (!r || !(r->type == LWM2M_T_STRING || r->type == LWM2M_T_OPAQUE || r->type == LWM2M_T_CORELNK))
        return NULL;
    if (len)
        *len = r->nbytes;
    return r->bytes ? (const char *)r->bytes : "";
}

bool sim__is_bs_instance(const sim_dm_t *dm, uint16_t iid)
{
    bool b = false;
    return sim__rec_bool(sim__find3(dm, 0, iid, 1), &b) && b;
}

int sim_dm_bs_account(const sim_dm_t *dm)
{
    for (size_t k = 0; k < dm->ninst; k++)
        if (dm->inst[k].oid == 0 && sim__is_bs_instance(dm, dm->inst[k].iid))
            return dm->inst[k].iid;
    return -1;
}

#ifndef NDEBUG
void sim__assert_dm(const sim_dm_t *dm)
{
    int nbs = 0;
    for (size_t k = 0; k < dm->ninst; k++) {
        assert(sim__obj_supported(dm, dm->inst[k].oid)); /* I2 */
        if (k)
            assert(dm->inst[k - 1].oid < dm->inst[k].oid ||
                   (dm->inst[k - 1].oid == dm->inst[k].oid && dm->inst[k - 1].iid < dm->inst[k].iid));
        if (dm->inst[k].oid == 0 && sim__is_bs_instance(dm, dm->inst[k].iid))
            nbs++;
    }
    assert(nbs <= 1); /* I3 */
    for (size_t r = 0; r < dm->rs.n; r++) {
        const lwm2m_path_t *p = &dm->rs.recs[r].path;
        assert(p->len >= 3);
        assert(sim_dm_has_instance(dm, p->ids[0], p->ids[1])); /* I1 */
    }
    for (size_t k = 0; k < dm->nattrs; k++)
        assert(dm->attrs[k].a.mask != 0); /* I4 */
}
#endif

/* ------------------------------------------------------------ lifecycle */

void sim_dm_config_init(sim_dm_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->version = LWM2M_V1_1;
    cfg->preferred_cf = LWM2M_CF_SENML_CBOR;
    cfg->bs_security_mode = SIM_SEC_NOSEC;
    cfg->dm_security_mode = SIM_SEC_NOSEC;
    cfg->dm_ssid = 1;
    cfg->lifetime = 300;
}

static int add_str(sim_dm_t *dm, unsigned o, unsigned i, unsigned r, const char *s)
{
    lwm2m_path_t p = sim__P(3, o, i, r);
    return lwm2m_records_add_string(&dm->rs, &p, s);
}

static int add_int(sim_dm_t *dm, unsigned o, unsigned i, unsigned r, int64_t v)
{
    lwm2m_path_t p = sim__P(3, o, i, r);
    return lwm2m_records_add_int(&dm->rs, &p, v);
}

static int add_opaque(sim_dm_t *dm, unsigned o, unsigned i, unsigned r, const void *b, size_t n)
{
    lwm2m_path_t p = sim__P(3, o, i, r);
    return lwm2m_records_add_opaque(&dm->rs, &p, b, n);
}

/* /0/<iid>: a Security instance (Core TS 1.1.1 §E.1) */
static int add_security(sim_dm_t *dm, unsigned i, const char *uri, bool bs, int mode, const sim_dm_config_t *cfg)
{
    bool psk = mode == SIM_SEC_PSK;
    int rc = sim__inst_add(dm, 0, (uint16_t)i);
    rc |= add_str(dm, 0, i, 0, uri);
    lwm2m_path_t p = sim__P(3, 0, i, 1);
    rc |= lwm2m_records_add_bool(&dm->rs, &p, bs);
    rc |= add_int(dm, 0, i, 2, mode);
    rc |= add_opaque(dm, 0, i, 3, psk ? cfg->psk_identity : NULL, psk ? cfg->psk_identity_len : 0);
    rc |= add_opaque(dm, 0, i, 4, NULL, 0);
    rc |= add_opaque(dm, 0, i, 5, psk ? cfg->psk_key : NULL, psk ? cfg->psk_key_len : 0);
    if (!bs)
        rc |= add_int(dm, 0, i, 10, cfg->dm_ssid);
    rc |= add_int(dm, 0, i, 11, 0); /* Client Hold Off Time */
    if (bs)
        rc |= add_int(dm, 0, i, 12, 0); /* Bootstrap-Server Account Timeout: infinite */
    return rc ? LWM2M_ERR_INTERNAL : 0;
}

int sim_dm_new(const sim_dm_config_t *cfg, sim_dm_t **out)
{
    *out = NULL;
    if (!cfg || !cfg->reg || !cfg->endpoint || (!cfg->bs_uri && !cfg->dm_uri) || cfg->bs_iid >= LWM2M_ID_NONE ||
        (cfg->version != LWM2M_V1_0 && cfg->version != LWM2M_V1_1 && cfg->version != LWM2M_V1_2) ||
        (cfg->bs_security_mode != SIM_SEC_NOSEC && cfg->bs_security_mode != SIM_SEC_PSK) ||
        (cfg->dm_uri && ((cfg->dm_security_mode != SIM_SEC_NOSEC && cfg->dm_security_mode != SIM_SEC_PSK) ||
                         cfg->dm_ssid < 1 || cfg->dm_ssid > 65534)))
        return LWM2M_ERR_BAD_REQUEST;
    sim_dm_t *dm = calloc(1, sizeof *dm);
    if (!dm)
        return LWM2M_ERR_INTERNAL;
    dm->version = cfg->version;
    dm->preferred_cf = cfg->preferred_cf;
    dm->reg = cfg->reg;
    dm->refuse_discover = cfg->refuse_discover;
    dm->fail_finish = cfg->fail_finish;
    lwm2m_records_init(&dm->rs);

    int rc = 0;
    /* /0/N: the Bootstrap-Server account */
    if (cfg->bs_uri)
        rc |= add_security(dm, cfg->bs_iid, cfg->bs_uri, true, cfg->bs_security_mode, cfg);
    if (cfg->dm_uri) {
        /* a factory-provisioned management server account and its /1/0 */
        unsigned si = cfg->bs_uri && cfg->bs_iid == 0 ? 1 : 0;
        rc |= add_security(dm, si, cfg->dm_uri, false, cfg->dm_security_mode, cfg);
        rc |= sim__inst_add(dm, 1, 0);
        rc |= add_int(dm, 1, 0, 0, cfg->dm_ssid);
        rc |= add_int(dm, 1, 0, 1, cfg->lifetime ? cfg->lifetime : 300);
        lwm2m_path_t p = sim__P(3, 1, 0, 6);
        rc |= lwm2m_records_add_bool(&dm->rs, &p, false); /* Notification Storing */
        rc |= add_str(dm, 1, 0, 7, cfg->dm_binding ? cfg->dm_binding : "U");
    }
    /* /3/0: Device (the values that change over time: sim/dm.c) */
    rc |= sim__inst_add(dm, 3, 0);
    rc |= add_str(dm, 3, 0, 0, "lwdm");
    rc |= add_str(dm, 3, 0, 1, "lwdm-sim");
    rc |= add_str(dm, 3, 0, 2, cfg->endpoint);
    rc |= add_str(dm, 3, 0, 3, "lwdm-sim-fw-1.0");
    {
        lwm2m_path_t p = lwm2m_path_make(4, 3, 0, 11, 0);
        rc |= lwm2m_records_add_int(&dm->rs, &p, 0); /* Error Code: no error */
    }
    rc |= add_str(dm, 3, 0, 16, cfg->binding ? cfg->binding : "U");
    rc |= add_str(dm, 3, 0, 17, "simulated");
    rc |= add_str(dm, 3, 0, 18, "sim-hw-1");
    rc |= add_str(dm, 3, 0, 19, "lwdm-sim 0.1");
    /* /3/0 live values, /4/0 Connectivity Monitoring, /7/0 Connectivity Statistics */
    rc |= sim__dm_add_device_objects(dm);
    if (rc) {
        sim_dm_free(&dm);
        return LWM2M_ERR_INTERNAL;
    }
    if (cfg->factory) {
        for (size_t k = 0; k < cfg->factory->n; k++) {
            const lwm2m_record_t *r = &cfg->factory->recs[k];
            if (r->path.len < 3 || !sim__obj_supported(dm, r->path.ids[0])) {
                sim_dm_free(&dm);
                return LWM2M_ERR_BAD_REQUEST;
            }
            lwm2m_path_t prefix = r->path;
            prefix.len = 3;
            sim__records_remove(&dm->rs, &prefix);
        }
        for (size_t k = 0; k < cfg->factory->n && !rc; k++) {
            const lwm2m_record_t *r = &cfg->factory->recs[k];
            rc = sim__inst_add(dm, r->path.ids[0], r->path.ids[1]);
            if (!rc)
                rc = lwm2m_records_add(&dm->rs, r);
        }
        if (rc || (cfg->bs_uri && sim_dm_bs_account(dm) < 0)) {
            sim_dm_free(&dm);
            return rc ? rc : LWM2M_ERR_BAD_REQUEST;
        }
    }
    lwm2m_records_sort(&dm->rs);
    sim__assert_dm(dm);
    *out = dm;
    return 0;
}

void sim_dm_free(sim_dm_t **pdm)
{
    if (!pdm || !*pdm)
        return;
    sim_dm_t *dm = *pdm;
    lwm2m_records_clear(&dm->rs);
    free(dm->inst);
    free(dm->attrs);
    free(dm);
    *pdm = NULL;
}

void sim_response_clear(sim_response_t *resp)
{
    if (!resp)
        return;
    free(resp->payload);
    memset(resp, 0, sizeof *resp);
    resp->content_format = -1;
}

/* ------------------------------------------------------------ accessors */

const lwm2m_records_t *sim_dm_records(const sim_dm_t *dm) { return &dm->rs; }
lwm2m_version_t sim_dm_version(const sim_dm_t *dm) { return dm->version; }

const lwm2m_record_t *sim_dm_find(const sim_dm_t *dm, const lwm2m_path_t *p)
{
    return lwm2m_records_find(&dm->rs, p);
}

bool sim_dm_has_instance(const sim_dm_t *dm, uint16_t oid, uint16_t iid)
{
    bool found;
    inst_index(dm, oid, iid, &found);
    return found;
}

size_t sim_dm_instances(const sim_dm_t *dm, uint16_t oid, uint16_t *iids, size_t cap)
{
    size_t n = 0;
    for (size_t k = 0; k < dm->ninst; k++) {
        if (dm->inst[k].oid != oid)
            continue;
        if (n < cap)
            iids[n] = dm->inst[k].iid;
        n++;
    }
    return n;
}

int sim_dm_copy(const sim_dm_t *dm, const lwm2m_path_t *prefix, lwm2m_records_t *out)
{
    size_t n0 = out->n;
    for (size_t k = 0; k < dm->rs.n; k++) {
        if (!lwm2m_path_starts_with(&dm->rs.recs[k].path, prefix))
            continue;
        if (lwm2m_records_add(out, &dm->rs.recs[k]) != 0) {
            while (out->n > n0)
                free(out->recs[--out->n].bytes);
            return LWM2M_ERR_INTERNAL;
        }
    }
    return 0;
}

char *sim_record_text(const lwm2m_record_t *r, char *buf, size_t cap)
{
    if (!cap)
        return buf;
    buf[0] = '\0';
    switch (r->type) {
    case LWM2M_T_STRING:
    case LWM2M_T_CORELNK:
        snprintf(buf, cap, "%.*s", (int)r->nbytes, r->bytes ? (const char *)r->bytes : "");
        break;
    case LWM2M_T_OPAQUE: {
        size_t w = 0;
        for (size_t k = 0; k < r->nbytes && w + 3 <= cap; k++)
            w += (size_t)snprintf(buf + w, cap - w, "%02x", r->bytes[k]);
        break;
    }
    case LWM2M_T_INTEGER:
    case LWM2M_T_TIME: snprintf(buf, cap, "%" PRId64, r->v.i); break;
    case LWM2M_T_UNSIGNED: snprintf(buf, cap, "%" PRIu64, r->v.u); break;
    case LWM2M_T_FLOAT: snprintf(buf, cap, "%.17g", r->v.f); break;
    case LWM2M_T_BOOLEAN: snprintf(buf, cap, "%s", r->v.b ? "true" : "false"); break;
    case LWM2M_T_OBJLNK: snprintf(buf, cap, "%u:%u", r->v.lnk.oid, r->v.lnk.iid); break;
    case LWM2M_T_NONE: break;
    }
    return buf;
}

/* ------------------------------------------------------------ responses */

int sim__answer(sim_response_t *resp, int cls, int detail, const char *fmt, ...)
{
    resp->code = LWM2M_CODE(cls, detail);
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(resp->detail, sizeof resp->detail, fmt, ap);
        va_end(ap);
    }
    return 0;
}

/* A negated CoAP code from the protocol core -> response */
int sim__answer_err(sim_response_t *resp, int err, const char *what)
{
    int c = -err;
    if (c <= 0 || c >= 256)
        c = LWM2M_CODE(5, 0);
    resp->code = c;
    snprintf(resp->detail, sizeof resp->detail, "%s", what);
    return 0;
}

bool sim__query_has(const sim_request_t *req, const char *key)
{
    if (!req->query)
        return false;
    size_t klen = strlen(key);
    const char *s = req->query, *end = req->query + req->query_len;
    while (s < end) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        const char *e = amp ? amp : end;
        if ((size_t)(e - s) >= klen && memcmp(s, key, klen) == 0 && (s + klen == e || s[klen] == '='))
            return true;
        s = e + 1;
    }
    return false;
}

/* ------------------------------------------------------------ Discover */

static int discover_instance_attrs(const sim_dm_t *dm, uint16_t oid, uint16_t iid, char *buf, size_t cap)
{
    buf[0] = '\0';
    size_t w = 0;
    int64_t ssid;
    if (oid == 0) {
        if (!sim__is_bs_instance(dm, iid) && sim__rec_int(sim__find3(dm, 0, iid, 10), &ssid))
            w += (size_t)snprintf(buf + w, cap - w, "ssid=%" PRId64, ssid);
        size_t ulen;
        const char *uri = sim__rec_str(sim__find3(dm, 0, iid, 0), &ulen);
        if (dm->version >= LWM2M_V1_1 && uri && w < cap)
            w += (size_t)snprintf(buf + w, cap - w, "%suri=\"%.*s\"", w ? ";" : "", (int)ulen, uri);
    } else if (oid == 1) {
        if (sim__rec_int(sim__find3(dm, 1, iid, 0), &ssid))
            w += (size_t)snprintf(buf + w, cap - w, "ssid=%" PRId64, ssid);
    }
    return w < cap ? 0 : LWM2M_ERR_INTERNAL;
}

static int handle_discover(sim_dm_t *dm, const sim_request_t *req, const lwm2m_path_t *p, sim_response_t *resp)
{
    if (dm->refuse_discover)
        return sim__answer(resp, 4, 5, "discover refused (fault injection)");
    if (sim__query_has(req, "depth"))
        return sim__answer(resp, 4, 0, "depth is not allowed on Bootstrap-Discover");
    if (p->len > 1)
        return sim__answer(resp, 4, 0, "Bootstrap-Discover targets the root or an object");
    if (p->len == 1 && !sim__obj_supported(dm, p->ids[0]))
        return sim__answer(resp, 4, 4, "object %u not supported", p->ids[0]);

    lwm2m_strbuf_t sb = {0};
    int rc = 0;
    if (dm->version == LWM2M_V1_0) {
        /* 1.0 form: a bare `lwm2m="1.0"` attribute opens the list (no `</>`) */
        sb.buf = malloc(64);
        if (!sb.buf)
            return sim__answer_err(resp, LWM2M_ERR_INTERNAL, "out of memory");
        sb.cap = 64;
        sb.len = (size_t)snprintf(sb.buf, sb.cap, "lwm2m=\"1.0\"");
    } else {
        rc = lwm2m_link_append(&sb, "/", dm->version == LWM2M_V1_2 ? "lwm2m=1.2" : "lwm2m=1.1");
    }
    size_t nobj;
    const uint16_t *objs = sim__supported_list(dm, &nobj);
    char uri[32], attrs[400];
    for (size_t k = 0; k < nobj && !rc; k++) {
        uint16_t oid = objs[k];
        if (p->len == 1 && oid != p->ids[0])
            continue;
        const char *ver = sim__obj_version(dm, oid);
        bool has_ver = strcmp(ver, "1.0") != 0;
        if (has_ver)
            snprintf(attrs, sizeof attrs, dm->version == LWM2M_V1_0 ? "ver=\"%s\"" : "ver=%s", ver);
        uint16_t iids[1];
        size_t ni = sim_dm_instances(dm, oid, iids, 0);
        snprintf(uri, sizeof uri, "/%u", oid);
        if (ni == 0 || has_ver)
            rc = lwm2m_link_append(&sb, uri, has_ver ? attrs : NULL);
        for (size_t j = 0; j < dm->ninst && !rc; j++) {
            if (dm->inst[j].oid != oid)
                continue;
            snprintf(uri, sizeof uri, "/%u/%u", oid, dm->inst[j].iid);
            rc = discover_instance_attrs(dm, oid, dm->inst[j].iid, attrs, sizeof attrs);
            if (!rc)
                rc = lwm2m_link_append(&sb, uri, attrs[0] ? attrs : NULL);
        }
    }
    if (rc) {
        free(sb.buf);
        return sim__answer_err(resp, LWM2M_ERR_INTERNAL, "discover: out of memory");
    }
    resp->code = LWM2M_CODE(2, 5);
    resp->content_format = LWM2M_CF_LINK;
    resp->payload = (uint8_t *)sb.buf;
    resp->payload_len = sb.len;
    return 0;
}

/* ------------------------------------------------------------ Read */

static bool cf_hierarchical(const sim_dm_t *dm, int cf)
{
    return cf == LWM2M_CF_TLV || cf == LWM2M_CF_OLD_TLV || cf == LWM2M_CF_SENML_JSON || cf == LWM2M_CF_SENML_CBOR ||
           (cf == LWM2M_CF_LWM2M_CBOR && dm->version >= LWM2M_V1_2);
}

static int handle_read(sim_dm_t *dm, const sim_request_t *req, const lwm2m_path_t *p, sim_response_t *resp)
{
    if (dm->version == LWM2M_V1_0)
        return sim__answer(resp, 4, 5, "Bootstrap-Read is not a LwM2M 1.0 operation");
    if (p->len == 0)
        return sim__answer(resp, 4, 0, "Bootstrap-Read targets an object");
    uint16_t oid = p->ids[0];
    if (!sim__obj_supported(dm, oid))
        return sim__answer(resp, 4, 4, "object %u not supported", oid);
    if (oid == 0 || oid == 21)
        return sim__answer(resp, 4, 1, "object %u holds credentials and is not readable", oid);
    if (p->len >= 2 && !sim_dm_has_instance(dm, oid, p->ids[1]))
        return sim__answer(resp, 4, 4, "instance not found");
    int cf = req->accept >= 0 ? req->accept : dm->preferred_cf;
    if (cf == LWM2M_CF_OLD_TLV)
        cf = LWM2M_CF_TLV;
    bool single = cf == LWM2M_CF_TEXT || cf == LWM2M_CF_OPAQUE;
    if (!(cf_hierarchical(dm, cf) || (single && p->len >= 3)) || !lwm2m_cf_supported(cf))
        return sim__answer(resp, 4, 6, "cannot sim__answer in content format %d", cf);
    lwm2m_records_t sel;
    lwm2m_records_init(&sel);
    if (sim_dm_copy(dm, p, &sel) != 0)
        return sim__answer_err(resp, LWM2M_ERR_INTERNAL, "out of memory");
    if (p->len >= 3 && sel.n == 0) {
        lwm2m_records_clear(&sel);
        return sim__answer(resp, 4, 4, "resource not found");
    }
    uint8_t *out = NULL;
    size_t outlen = 0;
    int rc = lwm2m_encode(cf, p, &sel, &out, &outlen);
    lwm2m_records_clear(&sel);
    if (rc == LWM2M_ERR_BAD_REQUEST && single)
        return sim__answer(resp, 4, 6, "value does not fit content format %d", cf);
    if (rc)
        return sim__answer_err(resp, rc, "encode failed");
    resp->code = LWM2M_CODE(2, 5);
    resp->content_format = cf;
    resp->payload = out;
    resp->payload_len = outlen;
    return 0;
}

/* ------------------------------------------------------------ Write */

static bool type_family_num(lwm2m_type_t t)
{
    return t == LWM2M_T_INTEGER || t == LWM2M_T_UNSIGNED || t == LWM2M_T_FLOAT || t == LWM2M_T_TIME;
}

/* Checks a decoded value against the object definition; converts between
 * string and opaque (text vs octet-stream writes of the same resource). */
int sim__check_type(const sim_dm_t *dm, lwm2m_record_t *r)
{
    int t = lwm2m_registry_type(dm->reg, r->path.ids[0], r->path.ids[2]);
    if (t < 0)
        return 0; /* resource unknown to the registry: kept as sent */
    lwm2m_type_t want = (lwm2m_type_t)t;
    if (want == LWM2M_T_NONE)
        return LWM2M_ERR_BAD_REQUEST; /* executable: nothing to write */
    if (r->type == want || (type_family_num(r->type) && type_family_num(want)))
        return 0;
    bool rb = r->type == LWM2M_T_STRING || r->type == LWM2M_T_OPAQUE || r->type == LWM2M_T_CORELNK;
    bool wb = want == LWM2M_T_STRING || want == LWM2M_T_OPAQUE || want == LWM2M_T_CORELNK;
    if (rb && wb) {
        r->type = want;
        return 0;
    }
    return LWM2M_ERR_BAD_REQUEST;
}

static int handle_write(sim_dm_t *dm, const sim_request_t *req, const lwm2m_path_t *p, sim_response_t *resp)
{
    int cf = req->content_format;
    if (p->len == 0)
        return sim__answer(resp, 4, 5, "Bootstrap-Write cannot target the root");
    if (p->len > 3)
        return sim__answer(resp, 4, 0, "Bootstrap-Write cannot target a resource instance");
    if (!sim__obj_supported(dm, p->ids[0]))
        return sim__answer(resp, 4, 4, "object %u not supported", p->ids[0]);
    if (cf < 0)
        return sim__answer(resp, 4, 0, "Content-Format missing");
    if (cf == LWM2M_CF_OLD_TLV)
        cf = LWM2M_CF_TLV;
    bool single = cf == LWM2M_CF_TEXT || cf == LWM2M_CF_OPAQUE;
    bool ok_cf = cf == LWM2M_CF_TLV || single ||
                 (dm->version >= LWM2M_V1_1 && (cf == LWM2M_CF_SENML_JSON || cf == LWM2M_CF_SENML_CBOR)) ||
                 (dm->version >= LWM2M_V1_2 && cf == LWM2M_CF_LWM2M_CBOR);
    if (!ok_cf || !lwm2m_cf_supported(cf))
        return sim__answer(resp, 4, 15, "content format %d not supported", cf);
    if (single && p->len != 3)
        return sim__answer(resp, 4, 0, "text/opaque only for a single resource");

    lwm2m_records_t in;
    lwm2m_records_init(&in);
    int rc = lwm2m_decode(cf, p, req->payload, req->payload_len, dm->reg, &in);
    if (rc) {
        lwm2m_records_clear(&in);
        return sim__answer_err(resp, rc, "payload does not decode");
    }
    if (in.n == 0 && p->len != 2) {
        lwm2m_records_clear(&in);
        return sim__answer(resp, 4, 0, "empty payload");
    }
    /* validate everything before changing anything */
    int new_bs = -1;
    for (size_t k = 0; k < in.n; k++) {
        lwm2m_record_t *r = &in.recs[k];
        if (r->path.len < 3 || !lwm2m_path_starts_with(&r->path, p) || r->path.ids[1] == LWM2M_ID_NONE) {
            lwm2m_records_clear(&in);
            return sim__answer(resp, 4, 0, "record outside the target path");
        }
        if (sim__check_type(dm, r)) {
            char ps[40];
            lwm2m_path_format(&r->path, ps, sizeof ps);
            lwm2m_records_clear(&in);
            return sim__answer(resp, 4, 0, "%s: value has the wrong type", ps);
        }
        bool b;
        if (r->path.ids[0] == 0 && r->path.len == 3 && r->path.ids[2] == 1 && sim__rec_bool(r, &b) && b) {
            if (new_bs >= 0 && new_bs != r->path.ids[1]) {
                lwm2m_records_clear(&in);
                return sim__answer(resp, 4, 0, "two Bootstrap-Server accounts in one write");
            }
            new_bs = r->path.ids[1];
        }
    }
    int cur_bs = sim_dm_bs_account(dm);
    if (new_bs >= 0 && cur_bs >= 0 && new_bs != cur_bs) {
        /* §6.1.2: at most one Bootstrap-Server account; it may be rewritten
         * in place, not duplicated. Unless the same write demotes the
         * current one (ownership change). */
        bool demoted = false, b;
        for (size_t k = 0; k < in.n; k++) {
            const lwm2m_record_t *r = &in.recs[k];
            if (r->path.ids[0] == 0 && r->path.ids[1] == cur_bs && r->path.len == 3 && r->path.ids[2] == 1 &&
                sim__rec_bool(r, &b) && !b)
                demoted = true;
        }
        if (!demoted) {
            lwm2m_records_clear(&in);
            return sim__answer(resp, 4, 0, "a Bootstrap-Server account already exists at /0/%d", cur_bs);
        }
    }
    /* apply: create instances, drop the old value(s) of every written
     * resource, then store the new ones (a path repeated in one payload:
     * the last value wins) */
    if (p->len >= 2)
        rc = sim__inst_add(dm, p->ids[0], p->ids[1]);
    for (size_t k = 0; k < in.n && !rc; k++) {
        lwm2m_path_t res = in.recs[k].path;
        rc = sim__inst_add(dm, res.ids[0], res.ids[1]);
        res.len = 3;
        sim__records_remove(&dm->rs, &res);
    }
    for (size_t k = 0; k < in.n && !rc; k++) {
        bool later = false;
        for (size_t j = k + 1; j < in.n && !later; j++)
            later = lwm2m_path_equal(&in.recs[j].path, &in.recs[k].path);
        if (!later)
            rc = lwm2m_records_add(&dm->rs, &in.recs[k]);
    }
    lwm2m_records_clear(&in);
    lwm2m_records_sort(&dm->rs);
    if (rc)
        return sim__answer_err(resp, LWM2M_ERR_INTERNAL, "out of memory");
    sim__assert_dm(dm);
    resp->code = LWM2M_CODE(2, 4);
    return 0;
}

/* ------------------------------------------------------------ Delete */

/* §6.1.7.6: the BS account, its OSCORE instance (1.1+) and /3/0 survive */
static bool protected_instance(const sim_dm_t *dm, uint16_t oid, uint16_t iid)
{
    if (oid == 3 && iid == 0)
        return true;
    int bs = sim_dm_bs_account(dm);
    if (oid == 0 && bs >= 0 && iid == bs)
        return true;
    if (oid == 21 && bs >= 0 && dm->version >= LWM2M_V1_1) {
        const lwm2m_record_t *l = sim__find3(dm, 0, (uint16_t)bs, 17);
        if (l && l->type == LWM2M_T_OBJLNK && l->v.lnk.oid == 21 && l->v.lnk.iid == iid)
            return true;
    }
    return false;
}

static int handle_delete(sim_dm_t *dm, const lwm2m_path_t *p, sim_response_t *resp)
{
    if (p->len >= 3)
        return sim__answer(resp, 4, 0, "Bootstrap-Delete targets the root, an object or an instance");
    if (p->len >= 1 && !sim__obj_supported(dm, p->ids[0]))
        return sim__answer(resp, 4, 4, "object %u not supported", p->ids[0]);
    if (p->len == 2) {
        if (protected_instance(dm, p->ids[0], p->ids[1]))
            return sim__answer(resp, 4, 0, "/%u/%u cannot be deleted", p->ids[0], p->ids[1]);
        sim__inst_del(dm, p->ids[0], p->ids[1]);
    } else {
        /* collect first: protection depends on the BS account, which stays */
        size_t k = 0;
        while (k < dm->ninst) {
            sim__inst_t x = dm->inst[k];
            if ((p->len == 0 || x.oid == p->ids[0]) && !protected_instance(dm, x.oid, x.iid))
                sim__inst_del(dm, x.oid, x.iid);
            else
                k++;
        }
    }
    sim__assert_dm(dm);
    resp->code = LWM2M_CODE(2, 2);
    return 0;
}

/* ------------------------------------------------------------ Finish */

static int fail(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t cap, const char *fmt, ...)
{
    if (why && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, cap, fmt, ap);
        va_end(ap);
    }
    return LWM2M_ERR_NOT_ACCEPTABLE;
}

static bool has_bytes(const sim_dm_t *dm, uint16_t o, uint16_t i, uint16_t r, bool nonempty)
{
    size_t n = 0;
    const char *s = sim__rec_str(sim__find3(dm, o, i, r), &n);
    return s && (!nonempty || n > 0);
}

int sim_dm_check(const sim_dm_t *dm, char *why, size_t cap)
{
    if (why && cap)
        why[0] = '\0';
    uint16_t sec[256], srv[256];
    size_t nsec = sim_dm_instances(dm, 0, sec, 256), nsrv = sim_dm_instances(dm, 1, srv, 256);
    if (nsec > 256 || nsrv > 256)
        return fail(why, cap, "too many instances");
    int64_t sec_ssid[256], srv_ssid[256];
    int nbs = 0;
    for (size_t k = 0; k < nsec; k++) {
        uint16_t i = sec[k];
        size_t ulen = 0;
        const char *uri = sim__rec_str(sim__find3(dm, 0, i, 0), &ulen);
        bool bs;
        int64_t mode;
        sec_ssid[k] = -1;
        if (!uri || ulen == 0)
            return fail(why, cap, "/0/%u: LwM2M Server URI (0) missing", i);
        if (!sim__rec_bool(sim__find3(dm, 0, i, 1), &bs))
            return fail(why, cap, "/0/%u: Bootstrap-Server (1) missing", i);
        if (!sim__rec_int(sim__find3(dm, 0, i, 2), &mode))
            return fail(why, cap, "/0/%u: Security Mode (2) missing", i);
        if (mode < 0 || mode > 4)
            return fail(why, cap, "/0/%u: Security Mode %" PRId64 " invalid", i, mode);
        bool secure_uri;
        if (ulen >= 8 && (memcmp(uri, "coaps://", 8) == 0 || (ulen >= 12 && memcmp(uri, "coaps+tcp://", 12) == 0)))
            secure_uri = true;
        else if (ulen >= 7 && (memcmp(uri, "coap://", 7) == 0 || (ulen >= 11 && memcmp(uri, "coap+tcp://", 11) == 0)))
            secure_uri = false;
        else
            return fail(why, cap, "/0/%u: unsupported URI scheme in \"%.*s\"", i, (int)(ulen > 60 ? 60 : ulen), uri);
        if (secure_uri && mode == SIM_SEC_NOSEC)
            return fail(why, cap, "/0/%u: coaps URI with NoSec security mode", i);
        if (!secure_uri && mode != SIM_SEC_NOSEC)
            return fail(why, cap, "/0/%u: coap URI with a secure security mode (%" PRId64 ")", i, mode);
        if (mode == SIM_SEC_PSK && !(has_bytes(dm, 0, i, 3, true) && has_bytes(dm, 0, i, 5, true)))
            return fail(why, cap, "/0/%u: PSK mode needs identity (3) and key (5)", i);
        if ((mode == SIM_SEC_RPK || mode == SIM_SEC_CERT || mode == SIM_SEC_EST) &&
            !(has_bytes(dm, 0, i, 3, false) && has_bytes(dm, 0, i, 4, false) && has_bytes(dm, 0, i, 5, false)))
            return fail(why, cap, "/0/%u: mode %" PRId64 " needs resources 3, 4 and 5", i, mode);
        if (bs) {
            nbs++;
            continue;
        }
        int64_t ssid;
        if (!sim__rec_int(sim__find3(dm, 0, i, 10), &ssid))
            return fail(why, cap, "/0/%u: Short Server ID (10) missing", i);
        if (ssid < 1 || ssid > 65534)
            return fail(why, cap, "/0/%u: Short Server ID %" PRId64 " out of range", i, ssid);
        for (size_t j = 0; j < k; j++)
            if (sec_ssid[j] == ssid)
                return fail(why, cap, "/0/%u: Short Server ID %" PRId64 " used twice", i, ssid);
        sec_ssid[k] = ssid;
    }
    if (nbs > 1)
        return fail(why, cap, "%d Bootstrap-Server accounts", nbs);

    const lwm2m_objdef_t *def = lwm2m_registry_object(dm->reg, 1);
    for (size_t k = 0; k < nsrv; k++) {
        uint16_t i = srv[k];
        for (size_t d = 0; def && d < def->nres; d++) {
            const lwm2m_resdef_t *rd = &def->res[d];
            if (!rd->mandatory || rd->type == LWM2M_T_NONE || (rd->ops & LWM2M_OP_E))
                continue;
            lwm2m_path_t rp = sim__P(3, 1, i, rd->id);
            bool present = lwm2m_records_find(&dm->rs, &rp) != NULL;
            if (!present && rd->multiple) {
                for (size_t r = 0; r < dm->rs.n && !present; r++)
                    present = lwm2m_path_starts_with(&dm->rs.recs[r].path, &rp);
            }
            if (!present)
                return fail(why, cap, "/1/%u: mandatory resource %u (%s) missing", i, rd->id, rd->name);
        }
        int64_t ssid;
        if (!sim__rec_int(sim__find3(dm, 1, i, 0), &ssid))
            return fail(why, cap, "/1/%u: Short Server ID (0) missing", i);
        if (ssid < 1 || ssid > 65534)
            return fail(why, cap, "/1/%u: Short Server ID %" PRId64 " out of range", i, ssid);
        for (size_t j = 0; j < k; j++)
            if (srv_ssid[j] == ssid)
                return fail(why, cap, "/1/%u: Short Server ID %" PRId64 " used twice", i, ssid);
        srv_ssid[k] = ssid;
    }
    for (size_t k = 0; k < nsec; k++)
        for (size_t j = 0; j < nsrv; j++)
            if (sec_ssid[k] > 0 && sec_ssid[k] == srv_ssid[j])
                return 0;
    return fail(why, cap, "no LwM2M server account (a /0 instance with a matching /1 instance)");
}

static int handle_finish(sim_dm_t *dm, sim_response_t *resp)
{
    if (dm->fail_finish) {
        resp->event = SIM_DM_EV_FINISH_REJECTED;
        return sim__answer(resp, 4, 6, "finish refused (fault injection)");
    }
    if (sim_dm_check(dm, resp->detail, sizeof resp->detail) != 0) {
        resp->event = SIM_DM_EV_FINISH_REJECTED;
        resp->code = LWM2M_CODE(4, 6);
        return 0;
    }
    resp->event = SIM_DM_EV_FINISH_OK;
    resp->code = LWM2M_CODE(2, 4);
    return 0;
}

/* ------------------------------------------------------------ dispatch */

void sim_dm_handle(sim_dm_t *dm, const sim_request_t *req, sim_response_t *resp)
{
    memset(resp, 0, sizeof *resp);
    resp->content_format = -1;
    const char *path = req->path ? req->path : "";
    size_t plen = req->path ? req->path_len : 0;
    while (plen && path[plen - 1] == '/')
        plen--;
    if (req->iface == SIM_IFACE_DM) {
        lwm2m_path_t p;
        if (lwm2m_path_parse(path, plen, &p) != 0)
            (void)sim__answer(resp, 4, 4, "no such path");
        else
            sim__dm_handle_mgmt(dm, req, &p, resp);
        return;
    }
    if (plen == 2 && memcmp(path, "bs", 2) == 0) {
        if (req->method == SIM_POST)
            (void)handle_finish(dm, resp);
        else
            (void)sim__answer(resp, 4, 5, "only POST on /bs");
        return;
    }
    lwm2m_path_t p;
    if (lwm2m_path_parse(path, plen, &p) != 0) {
        (void)sim__answer(resp, 4, 4, "no such path");
        return;
    }
    switch (req->method) {
    case SIM_GET:
        /* Accept 40 is a Discover (Core TS 1.1.1 §8.2.2 mapping). Without
         * Accept: the root, and any object for a 1.0 client (no
         * Bootstrap-Read in 1.0), is a Discover; otherwise a Bootstrap-Read,
         * as Wakaama's bootstrap server sends its Read without Accept. */
        if (req->accept == LWM2M_CF_LINK || (req->accept < 0 && (p.len == 0 || (p.len == 1 && dm->version == LWM2M_V1_0))))
            (void)handle_discover(dm, req, &p, resp);
        else
            (void)handle_read(dm, req, &p, resp);
        break;
    case SIM_PUT:
        (void)handle_write(dm, req, &p, resp);
        if (resp->code == LWM2M_CODE(2, 4))
            dm->gen++;
        break;
    case SIM_DELETE:
        (void)handle_delete(dm, &p, resp);
        if (resp->code == LWM2M_CODE(2, 2))
            dm->gen++;
        break;
    default:
        (void)sim__answer(resp, 4, 5, "method not allowed during bootstrap");
        break;
    }
}
