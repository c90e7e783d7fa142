/* Simulated device, Device Management and Information Reporting side: what a
 * registered device answers to its management server (sim_dm_handle with
 * SIM_IFACE_DM), the Register payload, and the values that change over time.
 *
 * Pure code like sim/device.c: request struct in, response struct out, no
 * libcoap, no clock (sim_dm_tick gets the time passed in).
 *
 * Decisions and their sources (LwM2M Core TS 1.1.1 unless stated;
 * CONFORMANCE.md §3 lists what a server sends):
 *  - /0 and /21 are not accessible on the DM interface (§7.1, ETS int-221):
 *    every operation on them answers 4.01, before anything else.
 *  - Read (§5.4.1): object, instance, resource, and (1.1+) resource
 *    instance. Accept chooses the format: TLV (all versions), SenML JSON 110
 *    and SenML CBOR 112 (1.1+), LwM2M CBOR 11544 (1.2, through
 *    lwm2m_encode: a codec without it answers 4.06), text 0 / opaque 42 for
 *    one value; anything else 4.06. Without Accept: a 1.0 device answers a
 *    single value in text (opaque for Opaque resources) and the rest in TLV
 *    (TS 1.0 §6.4); 1.1+ devices answer in their preferred format. A
 *    resource without the R operation (executables) answers 4.05.
 *  - Write (§5.4.3): Replace is PUT on an instance, a resource or (1.1+) a
 *    resource instance; Partial Update is POST on an instance (and on a
 *    multiple writable resource). Content-Format mandatory (4.00), format
 *    as for Read (otherwise 4.15), never an object (4.05). Every written
 *    resource must carry the W operation, otherwise 4.05 and nothing
 *    changes (validate first, then apply). Replace of an instance removes
 *    the optional writable resources the payload does not carry; read-only
 *    and mandatory ones stay (a replace cannot take away what the device
 *    must have). A replaced resource loses all its old instances (multiple
 *    resources: mbed-client#507); a partial update replaces only the
 *    resources / resource instances it names.
 *  - Execute (§5.4.5): POST on a resource with the E operation (4.05
 *    otherwise), arguments as text `0='v',1` (4.00 when malformed).
 *    /1/x/8, /1/x/4, /1/x/9 (1.1+, needs a Bootstrap-Server account, 4.05
 *    otherwise), /3/0/4 raise events the simulator acts on; /3/0/12 clears
 *    the error codes; /7/0/6 Start resets and starts the statistics, /7/0/7
 *    stops them; anything else just answers 2.04.
 *  - Create (§5.4.6): POST /o on a multiple-instance object (4.05 on /3,
 *    /4, /7); the instance id comes from the payload (TLV instance wrapper,
 *    SenML names) or is the lowest free one; an existing id is 4.00.
 *    Read-only resources may be given (a server instance needs its SSID).
 *    Answer 2.01 with Location-Path o/i.
 *  - Delete (§5.4.7): DELETE /o/i -> 2.02, a missing instance 4.04, a
 *    single-instance object (/3/0, /4/0, /7/0) 4.05, and (1.1+) a resource
 *    instance of a multiple writable resource. Other targets 4.05.
 *  - Discover (§5.4.2): GET with Accept 40 on an object, instance or
 *    resource (root: 4.00). Object: the object (with `ver` when not 1.0),
 *    its instances and their resources; instance: it and its resources;
 *    resource: the resource with the attributes it inherits from the object
 *    and instance. Attached attributes are shown on each link, `dim` on
 *    multiple resources. 1.2 takes ?depth=0..3 (resource instances from
 *    depth 3 under an object); before 1.2 ?depth is 4.00.
 *  - Write-Attributes (§5.4.4): PUT with a query and neither payload nor
 *    Content-Format; rules in sim/observe.c.
 *  - Read-Composite / Write-Composite (§5.4.8, §5.4.9, 1.1+; 4.05 for a 1.0
 *    device): FETCH / and iPATCH / with SenML JSON or CBOR (1.2 also LwM2M
 *    CBOR). Read-Composite leaves out paths that are missing or not
 *    readable; Write-Composite is atomic.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/lwm2m/codec.h"
#include "server/lwm2m/link.h"
#include "sim/dm_int.h"

/* ------------------------------------------------------------ helpers */

static const lwm2m_resdef_t *resdef(const sim_dm_t *dm, uint16_t oid, uint16_t rid)
{
    const lwm2m_objdef_t *o = lwm2m_registry_object(dm->reg, oid);
    const lwm2m_resdef_t *r = o ? lwm2m_objdef_resource(o, rid) : NULL;
    /* the Bootstrap-Request Trigger is a 1.1 resource */
    if (r && oid == 1 && rid == 9 && dm->version == LWM2M_V1_0)
        return NULL;
    return r;
}

static bool type_numeric(lwm2m_type_t t)
{
    return t == LWM2M_T_INTEGER || t == LWM2M_T_UNSIGNED || t == LWM2M_T_FLOAT || t == LWM2M_T_TIME;
}

static bool has_records(const sim_dm_t *dm, const lwm2m_path_t *p)
{
    for (size_t k = 0; k < dm->rs.n; k++)
        if (lwm2m_path_starts_with(&dm->rs.recs[k].path, p))
            return true;
    return false;
}

/* A resource "exists" in an instance when it has a value, or when it is an
 * executable the device implements (all of the definition's executables). */
static bool resource_exists(const sim_dm_t *dm, uint16_t o, uint16_t i, uint16_t r)
{
    const lwm2m_resdef_t *d = resdef(dm, o, r);
    if (d && (d->ops & LWM2M_OP_E))
        return true;
    lwm2m_path_t p = sim__P(3, o, i, r);
    return has_records(dm, &p);
}

/* Resource ids of /o/i in ascending order: those with values plus the
 * executables; returns how many (at most cap). */
static size_t list_resources(const sim_dm_t *dm, uint16_t o, uint16_t i, uint16_t *rids, size_t cap)
{
    size_t n = 0;
    const lwm2m_objdef_t *def = lwm2m_registry_object(dm->reg, o);
    lwm2m_path_t ip = sim__P(2, o, i, 0);
    /* values (records are sorted, so resource ids come in order) */
    for (size_t k = 0; k < dm->rs.n && n < cap; k++) {
        const lwm2m_path_t *p = &dm->rs.recs[k].path;
        if (!lwm2m_path_starts_with(p, &ip))
            continue;
        if (n == 0 || rids[n - 1] != p->ids[2])
            rids[n++] = p->ids[2];
    }
    /* executables, merged in order */
    for (size_t d = 0; def && d < def->nres; d++) {
        const lwm2m_resdef_t *rd = &def->res[d];
        if (!(rd->ops & LWM2M_OP_E) || !resdef(dm, o, rd->id))
            continue;
        size_t at = 0;
        while (at < n && rids[at] < rd->id)
            at++;
        if ((at < n && rids[at] == rd->id) || n >= cap)
            continue;
        memmove(&rids[at + 1], &rids[at], (n - at) * sizeof *rids);
        rids[at] = rd->id;
        n++;
    }
    return n;
}

/* Formats the device serves for multi-value payloads, in the order of
 * preference. */
size_t sim_dm_formats(const sim_dm_t *dm, int *cfs, size_t cap)
{
    size_t n = 0;
    int all[4];
    size_t na = 0;
    if (dm->version >= LWM2M_V1_2 && lwm2m_cf_supported(LWM2M_CF_LWM2M_CBOR))
        all[na++] = LWM2M_CF_LWM2M_CBOR;
    if (dm->version >= LWM2M_V1_1) {
        all[na++] = LWM2M_CF_SENML_CBOR;
        all[na++] = LWM2M_CF_SENML_JSON;
    }
    all[na++] = LWM2M_CF_TLV;
    for (size_t k = 0; k < na && n < cap; k++)
        if (all[k] == dm->preferred_cf)
            cfs[n++] = all[k];
    for (size_t k = 0; k < na && n < cap; k++)
        if (all[k] != dm->preferred_cf)
            cfs[n++] = all[k];
    return n;
}

/* May a payload of this format be read from / written to `p` by this device? */
static bool cf_ok(const sim_dm_t *dm, int cf, const lwm2m_path_t *p, bool single_res)
{
    switch (cf) {
    case LWM2M_CF_TLV: return true;
    case LWM2M_CF_SENML_JSON:
    case LWM2M_CF_SENML_CBOR: return dm->version >= LWM2M_V1_1;
    case LWM2M_CF_LWM2M_CBOR: return dm->version >= LWM2M_V1_2;
    case LWM2M_CF_TEXT:
    case LWM2M_CF_OPAQUE: return p && p->len >= 3 && single_res;
    default: return false;
    }
}

/* After a successful write of `recs`: events and side effects. */
static void after_write(sim_dm_t *dm, const lwm2m_records_t *recs, sim_response_t *resp)
{
    for (size_t k = 0; k < recs->n; k++) {
        const lwm2m_path_t *p = &recs->recs[k].path;
        if (p->ids[0] == 1 && p->len >= 3 && (p->ids[2] == 1 || p->ids[2] == 7)) {
            resp->event = SIM_DM_EV_SERVER_CHANGED;
            resp->event_iid = p->ids[1];
        }
        int64_t t;
        if (p->ids[0] == 3 && p->ids[1] == 0 && p->len == 3 && p->ids[2] == 13 && sim__rec_int(&recs->recs[k], &t) &&
            dm->last_unix)
            dm->time_offset = t - dm->last_unix;
    }
    dm->gen++;
}

/* Stores validated records: `whole` replaces each written resource with all
 * its instances; otherwise each record replaces just its own path. */
static int store(sim_dm_t *dm, const lwm2m_records_t *in, bool whole)
{
    int rc = 0;
    for (size_t k = 0; k < in->n && !rc; k++) {
        lwm2m_path_t res = in->recs[k].path;
        rc = sim__inst_add(dm, res.ids[0], res.ids[1]);
        if (whole || res.len == 3)
            res.len = 3;
        sim__records_remove(&dm->rs, &res);
    }
    for (size_t k = 0; k < in->n && !rc; k++) {
        bool later = false;
        for (size_t j = k + 1; j < in->n && !later; j++)
            later = lwm2m_path_equal(&in->recs[j].path, &in->recs[k].path);
        if (!later)
            rc = lwm2m_records_add(&dm->rs, &in->recs[k]);
    }
    lwm2m_records_sort(&dm->rs);
    return rc;
}

/* Checks decoded write records. `create`: read-only resources allowed. */
static int check_records(sim_dm_t *dm, lwm2m_records_t *in, const lwm2m_path_t *p, bool create, sim_response_t *resp)
{
    for (size_t k = 0; k < in->n; k++) {
        lwm2m_record_t *r = &in->recs[k];
        char ps[40];
        lwm2m_path_format(&r->path, ps, sizeof ps);
        if (r->path.len < 3 || (p && !lwm2m_path_starts_with(&r->path, p)))
            return sim__answer(resp, 4, 0, "record %s outside the target path", ps);
        if (r->path.ids[0] == 0 || r->path.ids[0] == 21)
            return sim__answer(resp, 4, 1, "%s: object %u is not accessible", ps, r->path.ids[0]);
        if (!sim__obj_supported(dm, r->path.ids[0]))
            return sim__answer(resp, 4, 4, "%s: object not supported", ps);
        if (!create && !sim_dm_has_instance(dm, r->path.ids[0], r->path.ids[1]))
            return sim__answer(resp, 4, 4, "%s: instance not found", ps);
        const lwm2m_resdef_t *d = resdef(dm, r->path.ids[0], r->path.ids[2]);
        if (!d)
            return sim__answer(resp, 4, 4, "%s: resource not defined", ps);
        if (d->ops & LWM2M_OP_E)
            return sim__answer(resp, 4, 5, "%s: executable resource", ps);
        if (!create && !(d->ops & LWM2M_OP_W))
            return sim__answer(resp, 4, 5, "%s: read-only resource", ps);
        if (r->type == LWM2M_T_NONE)
            return sim__answer(resp, 4, 0, "%s: no value", ps);
        if ((r->path.len == 4) != d->multiple)
            return sim__answer(resp, 4, 0, "%s: %s resource", ps, d->multiple ? "a multiple" : "a single");
        if (sim__check_type(dm, r))
            return sim__answer(resp, 4, 0, "%s: value has the wrong type", ps);
    }
    return 0;
}

/* Decodes a write payload addressed to base; answers on failure. */
static int decode_payload(sim_dm_t *dm, const sim_request_t *req, int cf, const lwm2m_path_t *base,
                          lwm2m_records_t *out, sim_response_t *resp)
{
    int rc = lwm2m_decode(cf, base, req->payload, req->payload_len, dm->reg, out);
    if (rc == LWM2M_ERR_UNSUPPORTED_CF)
        return sim__answer(resp, 4, 15, "content format %d not supported", cf), rc;
    if (rc)
        return sim__answer_err(resp, rc, "payload does not decode"), rc;
    return 0;
}

/* ------------------------------------------------------------ Read */

static int dm_read(sim_dm_t *dm, const sim_request_t *req, const lwm2m_path_t *p, sim_response_t *resp)
{
    if (p->len == 0)
        return sim__answer(resp, 4, 5, "Read of the root: use Read-Composite");
    if (p->len >= 2 && !sim_dm_has_instance(dm, p->ids[0], p->ids[1]))
        return sim__answer(resp, 4, 4, "instance not found");
    const lwm2m_resdef_t *d = NULL;
    if (p->len >= 3) {
        d = resdef(dm, p->ids[0], p->ids[2]);
        if (!d)
            return sim__answer(resp, 4, 4, "resource not defined");
        if (!(d->ops & LWM2M_OP_R))
            return sim__answer(resp, 4, 5, "resource %u is not readable", p->ids[2]);
        if (p->len == 4 && (dm->version == LWM2M_V1_0 || !d->multiple))
            return sim__answer(resp, 4, 0, "not a resource instance");
    }
    bool single = p->len == 4 || (p->len == 3 && d && !d->multiple);
    int cf = req->accept;
    if (cf < 0) {
        if (dm->version == LWM2M_V1_0)
            cf = single ? (d && d->type == LWM2M_T_OPAQUE ? LWM2M_CF_OPAQUE : LWM2M_CF_TEXT) : LWM2M_CF_TLV;
        else
            cf = dm->preferred_cf;
    }
    if (cf == LWM2M_CF_OLD_TLV)
        cf = LWM2M_CF_TLV;
    /* opaque is for Opaque resources only (TS 1.1.1 §7.4.2) */
    if (!cf_ok(dm, cf, p, single) || (cf == LWM2M_CF_OPAQUE && (!d || d->type != LWM2M_T_OPAQUE)))
        return sim__answer(resp, 4, 6, "cannot answer in content format %d", cf);
    lwm2m_records_t sel;
    lwm2m_records_init(&sel);
    if (sim_dm_copy(dm, p, &sel) != 0)
        return sim__answer_err(resp, LWM2M_ERR_INTERNAL, "out of memory");
    if (p->len >= 3 && sel.n == 0) {
        lwm2m_records_clear(&sel);
        return sim__answer(resp, 4, 4, "resource has no value");
    }
    uint8_t *out = NULL;
    size_t outlen = 0;
    int rc = lwm2m_encode(cf, p, &sel, &out, &outlen);
    lwm2m_records_clear(&sel);
    if (rc == LWM2M_ERR_UNSUPPORTED_CF || (rc == LWM2M_ERR_BAD_REQUEST && (cf == LWM2M_CF_TEXT || cf == LWM2M_CF_OPAQUE)))
        return sim__answer(resp, 4, 6, "cannot answer in content format %d", cf);
    if (rc)
        return sim__answer_err(resp, rc, "encode failed");
    resp->code = LWM2M_CODE(2, 5);
    resp->content_format = cf;
    resp->payload = out;
    resp->payload_len = outlen;
    return 0;
}

/* ------------------------------------------------------------ Discover */

static int query_int(const sim_request_t *req, const char *key, long *out, bool *present)
{
    *present = false;
    if (!req->query)
        return 0;
    size_t klen = strlen(key);
    const char *s = req->query, *end = req->query + req->query_len;
    while (s < end) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        const char *e = amp ? amp : end;
        if ((size_t)(e - s) > klen && memcmp(s, key, klen) == 0 && s[klen] == '=') {
            const char *v = s + klen + 1;
            if (v == e || e - v > 6)
                return -1;
            long n = 0;
            for (const char *c = v; c < e; c++) {
                if (*c < '0' || *c > '9')
                    return -1;
                n = n * 10 + (*c - '0');
            }
            *out = n;
            *present = true;
        } else if ((size_t)(e - s) == klen && memcmp(s, key, klen) == 0) {
            return -1;
        }
        s = e + 1;
    }
    return 0;
}

/* one link: uri, then ver, dim, the attributes */
static int discover_link(lwm2m_strbuf_t *sb, const sim_dm_t *dm, const lwm2m_path_t *p, const sim_attrs_t *extra)
{
    char uri[40], attrs[300];
    lwm2m_path_format(p, uri, sizeof uri);
    size_t w = 0;
    attrs[0] = '\0';
    if (p->len == 1) {
        const char *ver = sim__obj_version(dm, p->ids[0]);
        if (strcmp(ver, "1.0") != 0)
            w += (size_t)snprintf(attrs, sizeof attrs, dm->version == LWM2M_V1_0 ? "ver=\"%s\"" : "ver=%s", ver);
    }
    if (p->len == 3) {
        const lwm2m_resdef_t *d = resdef(dm, p->ids[0], p->ids[2]);
        if (d && d->multiple) {
            size_t dim = 0;
            for (size_t k = 0; k < dm->rs.n; k++)
                if (dm->rs.recs[k].path.len == 4 && lwm2m_path_starts_with(&dm->rs.recs[k].path, p))
                    dim++;
            w += (size_t)snprintf(attrs + w, sizeof attrs - w, "%sdim=%zu", w ? ";" : "", dim);
        }
    }
    const sim_attrs_t *a = extra ? extra : sim__attrs_at(dm, p);
    if (a && a->mask && w + 2 < sizeof attrs) {
        if (w)
            attrs[w++] = ';';
        if (sim_attrs_format(a, attrs + w, sizeof attrs - w) < 0)
            return LWM2M_ERR_INTERNAL;
    }
    return lwm2m_link_append(sb, uri, attrs[0] ? attrs : NULL);
}

/* the links of one resource and, below max_len, its instances */
static int discover_resource(lwm2m_strbuf_t *sb, const sim_dm_t *dm, const lwm2m_path_t *rp, int max_len,
                             const sim_attrs_t *extra)
{
    int rc = discover_link(sb, dm, rp, extra);
    if (max_len < 4)
        return rc;
    for (size_t k = 0; k < dm->rs.n && !rc; k++)
        if (dm->rs.recs[k].path.len == 4 && lwm2m_path_starts_with(&dm->rs.recs[k].path, rp))
            rc = discover_link(sb, dm, &dm->rs.recs[k].path, NULL);
    return rc;
}

static int discover_instance(lwm2m_strbuf_t *sb, const sim_dm_t *dm, uint16_t o, uint16_t i, int max_len)
{
    lwm2m_path_t ip = sim__P(2, o, i, 0);
    int rc = discover_link(sb, dm, &ip, NULL);
    if (max_len < 3)
        return rc;
    uint16_t rids[128];
    size_t n = list_resources(dm, o, i, rids, 128);
    for (size_t k = 0; k < n && !rc; k++) {
        lwm2m_path_t rp = sim__P(3, o, i, rids[k]);
        rc = discover_resource(sb, dm, &rp, max_len, NULL);
    }
    return rc;
}

static int dm_discover(sim_dm_t *dm, const sim_request_t *req, const lwm2m_path_t *p, sim_response_t *resp)
{
    long depth = -1;
    bool has_depth;
    if (query_int(req, "depth", &depth, &has_depth) != 0 || (has_depth && (depth > 3 || dm->version < LWM2M_V1_2)))
        return sim__answer(resp, 4, 0, "bad depth (0..3, LwM2M 1.2)");
    if (p->len == 0)
        return sim__answer(resp, 4, 0, "Discover targets an object, an instance or a resource");
    if (p->len == 4)
        return sim__answer(resp, 4, 0, "Discover does not target a resource instance");
    if (p->len >= 2 && !sim_dm_has_instance(dm, p->ids[0], p->ids[1]))
        return sim__answer(resp, 4, 4, "instance not found");
    if (p->len == 3 && (!resdef(dm, p->ids[0], p->ids[2]) || !resource_exists(dm, p->ids[0], p->ids[1], p->ids[2])))
        return sim__answer(resp, 4, 4, "resource not found");
    if (!has_depth)
        depth = p->len == 1 ? 2 : p->len == 2 ? 1 : (dm->version >= LWM2M_V1_2 ? 1 : 0);
    int max_len = p->len + (int)depth;
    lwm2m_strbuf_t sb = {0};
    int rc = 0;
    if (p->len == 1) {
        rc = discover_link(&sb, dm, p, NULL);
        for (size_t k = 0; k < dm->ninst && !rc && max_len >= 2; k++)
            if (dm->inst[k].oid == p->ids[0])
                rc = discover_instance(&sb, dm, p->ids[0], dm->inst[k].iid, max_len);
    } else if (p->len == 2) {
        rc = discover_instance(&sb, dm, p->ids[0], p->ids[1], max_len);
    } else {
        /* the resource's own attributes plus those it inherits from its
         * object and instance (pmin/pmax; gt/lt/st only live on resources) */
        sim_attrs_t eff = {0};
        for (int len = 1; len <= 3; len++) {
            lwm2m_path_t q = *p;
            q.len = (uint8_t)len;
            const sim_attrs_t *a = sim__attrs_at(dm, &q);
            if (!a)
                continue;
            sim_attrs_t only = *a;
            if (len < 3)
                only.mask &= ~(unsigned)(SIM_ATTR_GT | SIM_ATTR_LT | SIM_ATTR_ST);
            sim_attrs_t next = eff;
            if (sim_attrs_merge(&next, &only, 0, NULL, 0) == 0)
                eff = next;
        }
        rc = discover_resource(&sb, dm, p, max_len, &eff);
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

/* ------------------------------------------------------------ Write-Attributes */

static int dm_write_attrs(sim_dm_t *dm, const sim_request_t *req, const lwm2m_path_t *p, sim_response_t *resp)
{
    if (p->len == 0)
        return sim__answer(resp, 4, 0, "Write-Attributes targets an object, an instance or a resource");
    if (p->len >= 2 && !sim_dm_has_instance(dm, p->ids[0], p->ids[1]))
        return sim__answer(resp, 4, 4, "instance not found");
    const lwm2m_resdef_t *d = NULL;
    if (p->len >= 3) {
        d = resdef(dm, p->ids[0], p->ids[2]);
        if (!d || !resource_exists(dm, p->ids[0], p->ids[1], p->ids[2]))
            return sim__answer(resp, 4, 4, "resource not found");
        if (p->len == 4) {
            if (dm->version == LWM2M_V1_0 || !lwm2m_records_find(&dm->rs, p))
                return sim__answer(resp, 4, 4, "resource instance not found");
        }
    }
    sim_attrs_t set;
    unsigned clear;
    if (sim_attrs_parse(req->query, req->query_len, dm->version, &set, &clear, resp->detail, sizeof resp->detail)) {
        resp->code = LWM2M_CODE(4, 0);
        return 0;
    }
    if ((set.mask & (SIM_ATTR_GT | SIM_ATTR_LT | SIM_ATTR_ST)) && (!d || !type_numeric(d->type)))
        return sim__answer(resp, 4, 0, "gt, lt and st need a numeric resource");
    const sim_attrs_t *cur = sim__attrs_at(dm, p);
    sim_attrs_t merged = cur ? *cur : (sim_attrs_t){0};
    if (sim_attrs_merge(&merged, &set, clear, resp->detail, sizeof resp->detail)) {
        resp->code = LWM2M_CODE(4, 0);
        return 0;
    }
    if (sim__attrs_put(dm, p, &merged))
        return sim__answer_err(resp, LWM2M_ERR_INTERNAL, "out of memory");
    sim__assert_dm(dm);
    resp->code = LWM2M_CODE(2, 4);
    return 0;
}

/* ------------------------------------------------------------ Write */

static int dm_write(sim_dm_t *dm, const sim_request_t *req, const lwm2m_path_t *p, bool replace, sim_response_t *resp)
{
    if (p->len < 2)
        return sim__answer(resp, 4, 5, "Write targets an instance or a resource");
    if (p->len == 4 && dm->version == LWM2M_V1_0)
        return sim__answer(resp, 4, 0, "resource instance writes are LwM2M 1.1");
    if (!sim_dm_has_instance(dm, p->ids[0], p->ids[1]))
        return sim__answer(resp, 4, 4, "instance not found");
    const lwm2m_resdef_t *d = NULL;
    if (p->len >= 3) {
        d = resdef(dm, p->ids[0], p->ids[2]);
        if (!d)
            return sim__answer(resp, 4, 4, "resource not defined");
        if (!(d->ops & LWM2M_OP_W))
            return sim__answer(resp, 4, 5, "resource %u is not writable", p->ids[2]);
        if (p->len == 4 && !d->multiple)
            return sim__answer(resp, 4, 0, "not a resource instance");
    }
    int cf = req->content_format;
    if (cf < 0)
        return sim__answer(resp, 4, 0, "Content-Format missing");
    if (cf == LWM2M_CF_OLD_TLV)
        cf = LWM2M_CF_TLV;
    bool single = p->len == 4 || (p->len == 3 && d && !d->multiple);
    if (!cf_ok(dm, cf, p, single))
        return sim__answer(resp, 4, 15, "content format %d not supported here", cf);
    lwm2m_records_t in;
    lwm2m_records_init(&in);
    if (decode_payload(dm, req, cf, p, &in, resp)) {
        lwm2m_records_clear(&in);
        return 0;
    }
    if (in.n == 0 && p->len >= 3) {
        lwm2m_records_clear(&in);
        return sim__answer(resp, 4, 0, "empty payload");
    }
    if (check_records(dm, &in, p, false, resp) || resp->code) {
        lwm2m_records_clear(&in);
        return 0;
    }
    if (replace && p->len == 2) {
        /* drop the optional writable resources the payload leaves out */
        const lwm2m_objdef_t *def = lwm2m_registry_object(dm->reg, p->ids[0]);
        for (size_t k = 0; def && k < def->nres; k++) {
            const lwm2m_resdef_t *rd = &def->res[k];
            if (!(rd->ops & LWM2M_OP_W) || rd->mandatory)
                continue;
            bool given = false;
            for (size_t j = 0; j < in.n && !given; j++)
                given = in.recs[j].path.ids[2] == rd->id;
            if (!given) {
                lwm2m_path_t rp = sim__P(3, p->ids[0], p->ids[1], rd->id);
                sim__records_remove(&dm->rs, &rp);
            }
        }
    }
    /* Replace of a resource: all old instances go; partial: per record */
    int rc = store(dm, &in, replace && p->len <= 3);
    if (rc) {
        lwm2m_records_clear(&in);
        return sim__answer_err(resp, LWM2M_ERR_INTERNAL, "out of memory");
    }
    after_write(dm, &in, resp);
    lwm2m_records_clear(&in);
    sim__assert_dm(dm);
    resp->code = LWM2M_CODE(2, 4);
    return 0;
}

/* ------------------------------------------------------------ Execute */

/* Core TS 1.1.1 §5.4.5: arg = DIGIT [ "=" "'" *CHAR "'" ], comma-separated */
static bool exec_args_ok(const uint8_t *s, size_t n)
{
    size_t k = 0;
    if (n == 0)
        return true;
    for (;;) {
        if (k >= n || s[k] < '0' || s[k] > '9')
            return false;
        k++;
        if (k < n && s[k] == '=') {
            k++;
            if (k >= n || s[k] != '\'')
                return false;
            k++;
            while (k < n && s[k] != '\'') {
                if (s[k] < 0x20 && s[k] != '\t')
                    return false;
                k++;
            }
            if (k >= n)
                return false;
            k++;
        }
        if (k == n)
            return true;
        if (s[k] != ',')
            return false;
        k++;
    }
}

static int dm_execute(sim_dm_t *dm, const sim_request_t *req, const lwm2m_path_t *p, sim_response_t *resp)
{
    uint16_t o = p->ids[0], i = p->ids[1], r = p->ids[2];
    if (!sim_dm_has_instance(dm, o, i))
        return sim__answer(resp, 4, 4, "instance not found");
    const lwm2m_resdef_t *d = resdef(dm, o, r);
    if (!d)
        return sim__answer(resp, 4, 4, "resource not defined");
    if (!(d->ops & LWM2M_OP_E)) {
        /* POST on a multiple writable resource is a partial update (1.1+) */
        if (d->multiple && (d->ops & LWM2M_OP_W) && req->content_format >= 0 && dm->version >= LWM2M_V1_1)
            return dm_write(dm, req, p, false, resp);
        return sim__answer(resp, 4, 5, "resource %u is not executable", r);
    }
    if (!exec_args_ok(req->payload, req->payload_len))
        return sim__answer(resp, 4, 0, "malformed Execute arguments");
    resp->event_iid = i;
    if (o == 1 && r == 8) {
        resp->event = SIM_DM_EV_UPDATE_TRIGGER;
    } else if (o == 1 && r == 4) {
        resp->event = SIM_DM_EV_DISABLE;
    } else if (o == 1 && r == 9) {
        if (sim_dm_bs_account(dm) < 0)
            return sim__answer(resp, 4, 5, "no Bootstrap-Server account to go back to");
        resp->event = SIM_DM_EV_BOOTSTRAP_TRIGGER;
    } else if (o == 3 && r == 4) {
        resp->event = SIM_DM_EV_REBOOT;
    } else if (o == 3 && r == 12) {
        lwm2m_path_t ec = sim__P(3, 3, i, 11);
        sim__records_remove(&dm->rs, &ec);
        lwm2m_path_t e0 = lwm2m_path_make(4, 3, i, 11, 0);
        if (lwm2m_records_add_int(&dm->rs, &e0, 0))
            return sim__answer_err(resp, LWM2M_ERR_INTERNAL, "out of memory");
        lwm2m_records_sort(&dm->rs);
        dm->gen++;
    } else if (o == 7 && r == 6) {
        /* Start: reset the counters and collect (Connectivity Statistics) */
        dm->collecting = true;
        dm->tx_kb = dm->rx_kb = 0;
        dm->collect_s = 0;
        for (unsigned c = 0; c <= 5; c++) {
            lwm2m_path_t cp = sim__P(3, 7, i, c);
            sim__records_remove(&dm->rs, &cp);
            if (lwm2m_records_add_int(&dm->rs, &cp, 0))
                return sim__answer_err(resp, LWM2M_ERR_INTERNAL, "out of memory");
        }
        lwm2m_records_sort(&dm->rs);
        dm->gen++;
    } else if (o == 7 && r == 7) {
        dm->collecting = false;
    }
    resp->code = LWM2M_CODE(2, 4);
    return 0;
}

/* ------------------------------------------------------------ Create */

static int dm_create(sim_dm_t *dm, const sim_request_t *req, const lwm2m_path_t *p, sim_response_t *resp)
{
    const lwm2m_objdef_t *def = lwm2m_registry_object(dm->reg, p->ids[0]);
    if (!def)
        return sim__answer(resp, 4, 4, "object not defined");
    if (!def->multiple)
        return sim__answer(resp, 4, 5, "object %u has a single instance", p->ids[0]);
    uint16_t iid = 0;
    while (iid < LWM2M_ID_NONE - 1 && sim_dm_has_instance(dm, p->ids[0], iid))
        iid++;
    lwm2m_records_t in;
    lwm2m_records_init(&in);
    if (req->payload_len) {
        int cf = req->content_format;
        if (cf < 0)
            return sim__answer(resp, 4, 0, "Content-Format missing");
        if (cf == LWM2M_CF_OLD_TLV)
            cf = LWM2M_CF_TLV;
        if (!cf_ok(dm, cf, NULL, false))
            return sim__answer(resp, 4, 15, "content format %d not supported", cf);
        int rc = lwm2m_decode(cf, p, req->payload, req->payload_len, dm->reg, &in);
        if (rc && rc != LWM2M_ERR_UNSUPPORTED_CF) {
            /* resources without an instance wrapper (TLV) or relative names:
             * they go to the new instance */
            lwm2m_records_clear(&in);
            lwm2m_path_t ip = sim__P(2, p->ids[0], iid, 0);
            rc = lwm2m_decode(cf, &ip, req->payload, req->payload_len, dm->reg, &in);
        }
        if (rc == LWM2M_ERR_UNSUPPORTED_CF) {
            lwm2m_records_clear(&in);
            return sim__answer(resp, 4, 15, "content format %d not supported", cf);
        }
        if (rc) {
            lwm2m_records_clear(&in);
            return sim__answer_err(resp, rc, "payload does not decode");
        }
        bool have = false;
        for (size_t k = 0; k < in.n; k++) {
            if (in.recs[k].path.len < 2)
                continue;
            if (!have) {
                iid = in.recs[k].path.ids[1];
                have = true;
            } else if (in.recs[k].path.ids[1] != iid) {
                lwm2m_records_clear(&in);
                return sim__answer(resp, 4, 0, "Create makes one instance");
            }
        }
        if (iid >= LWM2M_ID_NONE || sim_dm_has_instance(dm, p->ids[0], iid)) {
            lwm2m_records_clear(&in);
            return sim__answer(resp, 4, 0, "instance /%u/%u exists", p->ids[0], iid);
        }
        if (check_records(dm, &in, p, true, resp) || resp->code) {
            lwm2m_records_clear(&in);
            return 0;
        }
    } else if (sim_dm_has_instance(dm, p->ids[0], iid)) {
        return sim__answer(resp, 4, 0, "no free instance id");
    }
    int rc = sim__inst_add(dm, p->ids[0], iid);
    if (!rc)
        rc = store(dm, &in, true);
    if (rc) {
        lwm2m_records_clear(&in);
        return sim__answer_err(resp, LWM2M_ERR_INTERNAL, "out of memory");
    }
    lwm2m_records_clear(&in);
    dm->gen++;
    sim__assert_dm(dm);
    snprintf(resp->location, sizeof resp->location, "/%u/%u", p->ids[0], iid);
    resp->code = LWM2M_CODE(2, 1);
    return 0;
}

/* ------------------------------------------------------------ Delete */

static int dm_delete(sim_dm_t *dm, const lwm2m_path_t *p, sim_response_t *resp)
{
    if (p->len == 2) {
        if (!sim_dm_has_instance(dm, p->ids[0], p->ids[1]))
            return sim__answer(resp, 4, 4, "instance not found");
        const lwm2m_objdef_t *def = lwm2m_registry_object(dm->reg, p->ids[0]);
        if (!def || !def->multiple)
            return sim__answer(resp, 4, 5, "/%u/%u cannot be deleted", p->ids[0], p->ids[1]);
        sim__inst_del(dm, p->ids[0], p->ids[1]);
    } else if (p->len == 4 && dm->version >= LWM2M_V1_1) {
        const lwm2m_resdef_t *d = resdef(dm, p->ids[0], p->ids[2]);
        if (!d || !d->multiple || !(d->ops & LWM2M_OP_W))
            return sim__answer(resp, 4, 5, "resource instance cannot be deleted");
        if (!lwm2m_records_find(&dm->rs, p))
            return sim__answer(resp, 4, 4, "resource instance not found");
        sim__records_remove(&dm->rs, p);
        sim__attrs_drop(dm, p);
    } else {
        return sim__answer(resp, 4, 5, "Delete targets an object instance");
    }
    dm->gen++;
    sim__assert_dm(dm);
    resp->code = LWM2M_CODE(2, 2);
    return 0;
}

/* ------------------------------------------------------------ Composite */

static bool composite_cf(const sim_dm_t *dm, int cf)
{
    return cf == LWM2M_CF_SENML_JSON || cf == LWM2M_CF_SENML_CBOR ||
           (cf == LWM2M_CF_LWM2M_CBOR && dm->version >= LWM2M_V1_2);
}

static int dm_read_composite(sim_dm_t *dm, const sim_request_t *req, sim_response_t *resp)
{
    int cf = req->content_format;
    if (cf < 0)
        return sim__answer(resp, 4, 0, "Content-Format missing");
    if (!composite_cf(dm, cf))
        return sim__answer(resp, 4, 15, "content format %d not supported for Read-Composite", cf);
    int acc = req->accept >= 0 ? req->accept : cf;
    if (!composite_cf(dm, acc))
        return sim__answer(resp, 4, 6, "cannot answer in content format %d", acc);
    lwm2m_path_t root = {{0}, 0};
    lwm2m_records_t paths, out;
    lwm2m_records_init(&paths);
    lwm2m_records_init(&out);
    if (decode_payload(dm, req, cf, &root, &paths, resp)) {
        lwm2m_records_clear(&paths);
        return 0;
    }
    int rc = 0;
    for (size_t k = 0; k < paths.n && !rc; k++) {
        const lwm2m_path_t *q = &paths.recs[k].path;
        if (q->len == 0 || q->ids[0] == 0 || q->ids[0] == 21 || !sim__obj_supported(dm, q->ids[0]))
            continue;
        if (q->len >= 3) {
            const lwm2m_resdef_t *d = resdef(dm, q->ids[0], q->ids[2]);
            if (!d || !(d->ops & LWM2M_OP_R))
                continue;
        }
        lwm2m_records_t one;
        lwm2m_records_init(&one);
        rc = sim_dm_copy(dm, q, &one);
        for (size_t j = 0; j < one.n && !rc; j++)
            if (!lwm2m_records_find(&out, &one.recs[j].path))
                rc = lwm2m_records_add(&out, &one.recs[j]);
        lwm2m_records_clear(&one);
    }
    lwm2m_records_clear(&paths);
    if (rc) {
        lwm2m_records_clear(&out);
        return sim__answer_err(resp, LWM2M_ERR_INTERNAL, "out of memory");
    }
    lwm2m_records_sort(&out);
    uint8_t *buf = NULL;
    size_t len = 0;
    rc = lwm2m_encode(acc, &root, &out, &buf, &len);
    lwm2m_records_clear(&out);
    if (rc == LWM2M_ERR_UNSUPPORTED_CF)
        return sim__answer(resp, 4, 6, "cannot answer in content format %d", acc);
    if (rc)
        return sim__answer_err(resp, rc, "encode failed");
    resp->code = LWM2M_CODE(2, 5);
    resp->content_format = acc;
    resp->payload = buf;
    resp->payload_len = len;
    return 0;
}

static int dm_write_composite(sim_dm_t *dm, const sim_request_t *req, sim_response_t *resp)
{
    int cf = req->content_format;
    if (cf < 0)
        return sim__answer(resp, 4, 0, "Content-Format missing");
    if (!composite_cf(dm, cf))
        return sim__answer(resp, 4, 15, "content format %d not supported for Write-Composite", cf);
    lwm2m_path_t root = {{0}, 0};
    lwm2m_records_t in;
    lwm2m_records_init(&in);
    if (decode_payload(dm, req, cf, &root, &in, resp)) {
        lwm2m_records_clear(&in);
        return 0;
    }
    if (in.n == 0) {
        lwm2m_records_clear(&in);
        return sim__answer(resp, 4, 0, "empty payload");
    }
    if (check_records(dm, &in, NULL, false, resp) || resp->code) {
        lwm2m_records_clear(&in);
        return 0;
    }
    int rc = store(dm, &in, false);
    if (rc) {
        lwm2m_records_clear(&in);
        return sim__answer_err(resp, LWM2M_ERR_INTERNAL, "out of memory");
    }
    after_write(dm, &in, resp);
    lwm2m_records_clear(&in);
    sim__assert_dm(dm);
    resp->code = LWM2M_CODE(2, 4);
    return 0;
}

/* ------------------------------------------------------------ dispatch */

void sim__dm_handle_mgmt(sim_dm_t *dm, const sim_request_t *req, const lwm2m_path_t *p, sim_response_t *resp)
{
    if (p->len >= 1 && (p->ids[0] == 0 || p->ids[0] == 21)) {
        (void)sim__answer(resp, 4, 1, "object %u is not accessible to a management server", p->ids[0]);
        return;
    }
    if (p->len >= 1 && !sim__obj_supported(dm, p->ids[0])) {
        (void)sim__answer(resp, 4, 4, "object %u not supported", p->ids[0]);
        return;
    }
    switch (req->method) {
    case SIM_GET:
        if (req->accept == LWM2M_CF_LINK)
            (void)dm_discover(dm, req, p, resp);
        else
            (void)dm_read(dm, req, p, resp);
        break;
    case SIM_PUT:
        if (req->payload_len == 0 && req->content_format < 0 && req->query && req->query_len)
            (void)dm_write_attrs(dm, req, p, resp);
        else
            (void)dm_write(dm, req, p, true, resp);
        break;
    case SIM_POST:
        if (p->len == 1)
            (void)dm_create(dm, req, p, resp);
        else if (p->len == 2)
            (void)dm_write(dm, req, p, false, resp);
        else if (p->len == 3)
            (void)dm_execute(dm, req, p, resp);
        else
            (void)sim__answer(resp, 4, 5, "POST targets an object, an instance or a resource");
        break;
    case SIM_DELETE:
        (void)dm_delete(dm, p, resp);
        break;
    case SIM_FETCH:
    case SIM_IPATCH:
        if (dm->version == LWM2M_V1_0)
            (void)sim__answer(resp, 4, 5, "composite operations are LwM2M 1.1");
        else if (p->len != 0)
            (void)sim__answer(resp, 4, 5, "composite operations target the root");
        else if (req->method == SIM_FETCH)
            (void)dm_read_composite(dm, req, resp);
        else
            (void)dm_write_composite(dm, req, resp);
        break;
    default:
        (void)sim__answer(resp, 4, 5, "method %d not allowed", req->method);
        break;
    }
}

/* ------------------------------------------------------------ Register payload */

int sim_dm_register_payload(const sim_dm_t *dm, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    lwm2m_strbuf_t sb = {0};
    int rc = 0;
    if (dm->version >= LWM2M_V1_1) {
        int cfs[8];
        size_t n = sim_dm_formats(dm, cfs, 8);
        char attrs[96];
        size_t w = (size_t)snprintf(attrs, sizeof attrs, "rt=\"oma.lwm2m\";ct=%s", n > 1 ? "\"" : "");
        for (size_t k = 0; k < n; k++)
            w += (size_t)snprintf(attrs + w, sizeof attrs - w, "%s%d", k ? " " : "", cfs[k]);
        if (n > 1)
            snprintf(attrs + w, sizeof attrs - w, "\"");
        rc = lwm2m_link_append(&sb, "/", attrs);
    }
    size_t nobj;
    const uint16_t *objs = sim__supported_list(dm, &nobj);
    for (size_t k = 0; k < nobj && !rc; k++) {
        uint16_t oid = objs[k];
        if (oid == 0 || oid == 21 || oid == 23)
            continue;
        const char *ver = sim__obj_version(dm, oid);
        bool has_ver = strcmp(ver, "1.0") != 0;
        char uri[32], attrs[32];
        snprintf(attrs, sizeof attrs, dm->version == LWM2M_V1_0 ? "ver=\"%s\"" : "ver=%s", ver);
        uint16_t none[1];
        size_t ni = sim_dm_instances(dm, oid, none, 0);
        snprintf(uri, sizeof uri, "/%u", oid);
        if (ni == 0 || has_ver)
            rc = lwm2m_link_append(&sb, uri, has_ver ? attrs : NULL);
        for (size_t j = 0; j < dm->ninst && !rc; j++) {
            if (dm->inst[j].oid != oid)
                continue;
            snprintf(uri, sizeof uri, "/%u/%u", oid, dm->inst[j].iid);
            rc = lwm2m_link_append(&sb, uri, NULL);
        }
    }
    if (rc || !sb.buf) {
        free(sb.buf);
        return LWM2M_ERR_INTERNAL;
    }
    *out = sb.buf;
    *len = sb.len;
    return 0;
}

int sim_dm_server_account(const sim_dm_t *dm, uint16_t *sec_iid, uint16_t *srv_iid)
{
    for (size_t k = 0; k < dm->ninst; k++) {
        if (dm->inst[k].oid != 0 || sim__is_bs_instance(dm, dm->inst[k].iid))
            continue;
        int64_t ssid;
        if (!sim__rec_int(sim__find3(dm, 0, dm->inst[k].iid, 10), &ssid))
            continue;
        for (size_t j = 0; j < dm->ninst; j++) {
            int64_t s2;
            if (dm->inst[j].oid == 1 && sim__rec_int(sim__find3(dm, 1, dm->inst[j].iid, 0), &s2) && s2 == ssid) {
                *sec_iid = dm->inst[k].iid;
                *srv_iid = dm->inst[j].iid;
                return 0;
            }
        }
    }
    return LWM2M_ERR_NOT_FOUND;
}

/* ------------------------------------------------------------ values */

static int put_int(sim_dm_t *dm, unsigned o, unsigned i, unsigned r, int64_t v)
{
    lwm2m_path_t p = sim__P(3, o, i, r);
    return lwm2m_records_add_int(&dm->rs, &p, v);
}

static int put_int_ri(sim_dm_t *dm, unsigned o, unsigned i, unsigned r, unsigned ri, int64_t v)
{
    lwm2m_path_t p = lwm2m_path_make(4, o, i, r, ri);
    return lwm2m_records_add_int(&dm->rs, &p, v);
}

int sim__dm_add_device_objects(sim_dm_t *dm)
{
    int rc = 0;
    /* /3/0: power, battery, memory, time (sim_dm_tick moves them) */
    rc |= put_int_ri(dm, 3, 0, 6, 0, 1);    /* Available Power Sources: internal battery */
    rc |= put_int_ri(dm, 3, 0, 6, 1, 5);    /* ... and USB */
    rc |= put_int_ri(dm, 3, 0, 7, 0, 3800); /* Power Source Voltage, mV */
    rc |= put_int_ri(dm, 3, 0, 7, 1, 5000);
    rc |= put_int_ri(dm, 3, 0, 8, 0, 125);  /* Power Source Current, mA */
    rc |= put_int_ri(dm, 3, 0, 8, 1, 0);
    rc |= put_int(dm, 3, 0, 9, 100);        /* Battery Level, % */
    rc |= put_int(dm, 3, 0, 10, 412);       /* Memory Free, kB */
    {
        lwm2m_path_t p = sim__P(3, 3, 0, 13);
        lwm2m_record_t t = {.path = p, .type = LWM2M_T_TIME};
        t.v.i = 0;
        rc |= lwm2m_records_add(&dm->rs, &t); /* Current Time: set by the first tick */
        p.ids[2] = 14;
        rc |= lwm2m_records_add_string(&dm->rs, &p, "+00:00"); /* UTC Offset */
        p.ids[2] = 15;
        rc |= lwm2m_records_add_string(&dm->rs, &p, "Etc/UTC"); /* Timezone */
    }
    rc |= put_int(dm, 3, 0, 20, 0);         /* Battery Status: normal */
    rc |= put_int(dm, 3, 0, 21, 1024);      /* Memory Total, kB */
    dm->battery = 100;
    /* /4/0: Connectivity Monitoring (a cellular bearer on loopback) */
    rc |= sim__inst_add(dm, 4, 0);
    rc |= put_int(dm, 4, 0, 0, 6);          /* Network Bearer: LTE-FDD */
    rc |= put_int_ri(dm, 4, 0, 1, 0, 6);    /* Available Network Bearer */
    rc |= put_int(dm, 4, 0, 2, -71);        /* Radio Signal Strength, dBm */
    rc |= put_int(dm, 4, 0, 3, 18);         /* Link Quality */
    {
        lwm2m_path_t p = lwm2m_path_make(4, 4, 0, 4, 0);
        rc |= lwm2m_records_add_string(&dm->rs, &p, "127.0.0.1"); /* IP Addresses */
        p = lwm2m_path_make(4, 4, 0, 7, 0);
        rc |= lwm2m_records_add_string(&dm->rs, &p, "internet"); /* APN */
    }
    rc |= put_int(dm, 4, 0, 6, 3);          /* Link Utilization, % */
    rc |= put_int(dm, 4, 0, 8, 21905);      /* Cell ID */
    rc |= put_int(dm, 4, 0, 9, 1);          /* SMNC */
    rc |= put_int(dm, 4, 0, 10, 262);       /* SMCC */
    /* /7/0: Connectivity Statistics, not collecting yet */
    rc |= sim__inst_add(dm, 7, 0);
    for (unsigned r = 0; r <= 5; r++)
        rc |= put_int(dm, 7, 0, r, 0);      /* SMS Tx/Rx, Tx/Rx Data (kB), Max/Average Message Size */
    rc |= put_int(dm, 7, 0, 8, 0);          /* Collection Period, s (0: until Stop) */
    return rc ? LWM2M_ERR_INTERNAL : 0;
}

/* xorshift32 */
static uint32_t rnd(uint32_t *s)
{
    uint32_t x = *s ? *s : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

/* uniform in [-1, 1) */
static double rnd_sym(uint32_t *s)
{
    return (double)(rnd(s) >> 8) / (double)(1u << 23) - 1.0;
}

/* sets an existing single integer resource; true if it changed */
static bool set_int(sim_dm_t *dm, unsigned o, unsigned i, unsigned r, int64_t v)
{
    lwm2m_path_t p = sim__P(3, o, i, r);
    for (size_t k = 0; k < dm->rs.n; k++) {
        lwm2m_record_t *x = &dm->rs.recs[k];
        if (!lwm2m_path_equal(&x->path, &p))
            continue;
        if ((x->type == LWM2M_T_INTEGER || x->type == LWM2M_T_TIME) && x->v.i == v)
            return false;
        if (x->type != LWM2M_T_INTEGER && x->type != LWM2M_T_TIME) {
            free(x->bytes);
            x->bytes = NULL;
            x->nbytes = 0;
            x->type = LWM2M_T_INTEGER;
        }
        x->v.i = v;
        return true;
    }
    return false; /* deleted by a server (e.g. an optional resource replaced away) */
}

static int64_t get_int(const sim_dm_t *dm, unsigned o, unsigned i, unsigned r, int64_t dflt)
{
    int64_t v;
    return sim__rec_int(sim__find3(dm, (uint16_t)o, (uint16_t)i, (uint16_t)r), &v) ? v : dflt;
}

void sim_dm_tick(sim_dm_t *dm, double dt_s, int64_t unix_now, uint32_t *rng)
{
    if (dt_s < 0)
        dt_s = 0;
    bool changed = false;
    dm->last_unix = unix_now;
    if (sim_dm_has_instance(dm, 3, 0)) {
        /* a battery that lasts about a day, recharged when empty */
        dm->battery -= dt_s * (100.0 / 86400.0) * (1.0 + 0.5 * rnd_sym(rng));
        if (dm->battery < 5)
            dm->battery = 100;
        int64_t level = (int64_t)ceil(dm->battery);
        changed |= set_int(dm, 3, 0, 9, level);
        changed |= set_int(dm, 3, 0, 20, level <= 10 ? 4 : 0); /* Low Battery / Normal */
        int64_t mem = get_int(dm, 3, 0, 10, 412) + (int64_t)lround(8 * rnd_sym(rng));
        changed |= set_int(dm, 3, 0, 10, mem < 64 ? 64 : mem > 1000 ? 1000 : mem);
        lwm2m_path_t vp = lwm2m_path_make(4, 3, 0, 7, 0);
        for (size_t k = 0; k < dm->rs.n; k++) {
            lwm2m_record_t *x = &dm->rs.recs[k];
            if (lwm2m_path_equal(&x->path, &vp) && x->type == LWM2M_T_INTEGER) {
                int64_t mv = 3300 + (int64_t)(dm->battery * 6.0); /* 3.3 V empty .. 3.9 V full */
                changed |= x->v.i != mv;
                x->v.i = mv;
            }
        }
        if (unix_now)
            changed |= set_int(dm, 3, 0, 13, unix_now + dm->time_offset);
    }
    if (sim_dm_has_instance(dm, 4, 0)) {
        /* signal strength wanders around -71 dBm, link quality follows */
        int64_t rss = get_int(dm, 4, 0, 2, -71);
        rss += (int64_t)lround(2.0 * rnd_sym(rng)) + (rss < -85 ? 1 : rss > -55 ? -1 : 0);
        if (rss < -110)
            rss = -110;
        if (rss > -50)
            rss = -50;
        changed |= set_int(dm, 4, 0, 2, rss);
        changed |= set_int(dm, 4, 0, 3, (rss + 110) / 2);
        int64_t util = get_int(dm, 4, 0, 6, 3) + (int64_t)lround(rnd_sym(rng));
        changed |= set_int(dm, 4, 0, 6, util < 0 ? 0 : util > 100 ? 100 : util);
    }
    if (dm->collecting && sim_dm_has_instance(dm, 7, 0)) {
        /* traffic while collecting: a few hundred bytes a second */
        double tx = dt_s * (0.2 + 0.1 * rnd_sym(rng)), rx = dt_s * (0.4 + 0.2 * rnd_sym(rng));
        dm->tx_kb += tx;
        dm->rx_kb += rx;
        dm->collect_s += dt_s;
        changed |= set_int(dm, 7, 0, 2, (int64_t)dm->tx_kb);
        changed |= set_int(dm, 7, 0, 3, (int64_t)dm->rx_kb);
        changed |= set_int(dm, 7, 0, 4, 1152);
        changed |= set_int(dm, 7, 0, 5, 180 + (int64_t)lround(20 * rnd_sym(rng)));
        int64_t period = get_int(dm, 7, 0, 8, 0);
        if (period > 0 && dm->collect_s >= (double)period)
            dm->collecting = false; /* Collection Period elapsed */
    }
    if (changed)
        dm->gen++;
}

int sim_dm_set_value(sim_dm_t *dm, const lwm2m_record_t *r)
{
    if (!r || r->path.len < 3 || !sim__obj_supported(dm, r->path.ids[0]))
        return LWM2M_ERR_BAD_REQUEST;
    if (!sim_dm_has_instance(dm, r->path.ids[0], r->path.ids[1]))
        return LWM2M_ERR_NOT_FOUND;
    lwm2m_records_t one;
    lwm2m_records_init(&one);
    if (lwm2m_records_add(&one, r))
        return LWM2M_ERR_INTERNAL;
    if (sim__check_type(dm, &one.recs[0])) {
        lwm2m_records_clear(&one);
        return LWM2M_ERR_BAD_REQUEST;
    }
    /* a single value replaces the resource; a resource instance only itself */
    int rc = store(dm, &one, r->path.len == 3);
    lwm2m_records_clear(&one);
    if (rc)
        return LWM2M_ERR_INTERNAL;
    if (r->path.ids[0] == 3 && r->path.ids[2] == 9 && r->path.len == 3) {
        double b;
        if (sim__rec_num(r, &b))
            dm->battery = b; /* the drain continues from here */
    }
    dm->gen++;
    sim__assert_dm(dm);
    return 0;
}
