/* Attributes (Write-Attributes, Discover) and the observation/notification
 * decisions of a simulated device. Pure: no libcoap, the clock is passed in;
 * sim/sim.c sends what these functions decide.
 *
 * Decisions and their sources (LwM2M Core TS 1.1.1 unless stated):
 *  - §5.1.2 "Attributes": pmin/pmax are integers (seconds), gt/lt/st are
 *    decimals, st >= 0, and when set together "lt" < "gt" and
 *    "lt" + 2 * "st" < "gt" (CONFORMANCE.md §3: 4.00 otherwise). pmax > 0
 *    below pmin is refused as inconsistent too (the TS lets a client ignore
 *    such a pmax; refusing tells the server at once). epmin/epmax are 1.1
 *    (§5.1.2.1): stored and shown, not acted upon.
 *  - §5.4.4 Write-Attributes: an attribute written without a value is
 *    removed; the others keep their values (merge).
 *  - gt/lt/st only make sense on a numeric resource (§5.1.2 "Notification
 *    Class"); sim/dm.c refuses them elsewhere with 4.00.
 *  - Inheritance (§5.1.2): object < instance < resource < resource instance,
 *    with the Server object's Default Minimum/Maximum Period (/1/x/2, /1/x/3)
 *    below everything.
 *  - Notify (§6.4.2, RFC 7641 §4.2): never before pmin since the last
 *    notification; at pmax even without a change; otherwise on a change,
 *    which with gt/lt/st must cross gt or lt (either direction, as Anjay
 *    and Leshan read it) or move by st since the last notified value.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/dm_int.h"

/* ------------------------------------------------------------ parsing */

static int bad(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(char *why, size_t cap, const char *fmt, ...)
{
    if (why && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, cap, fmt, ap);
        va_end(ap);
    }
    return LWM2M_ERR_BAD_REQUEST;
}

/* digits only, 0..2^31-1 */
static bool parse_secs(const char *s, size_t n, int64_t *out)
{
    if (n == 0 || n > 10)
        return false;
    int64_t v = 0;
    for (size_t k = 0; k < n; k++) {
        if (s[k] < '0' || s[k] > '9')
            return false;
        v = v * 10 + (s[k] - '0');
    }
    if (v > INT32_MAX)
        return false;
    *out = v;
    return true;
}

/* [-+]digits[.digits][(e|E)[-+]digits], or .digits; finite. Trailing zeros
 * ("1.000000") and a sign are fine (leshan#1427, OMA#563). */
static bool parse_dec(const char *s, size_t n, double *out)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return false;
    size_t k = 0, digits = 0;
    if (s[k] == '-' || s[k] == '+')
        k++;
    while (k < n && s[k] >= '0' && s[k] <= '9')
        k++, digits++;
    if (k < n && s[k] == '.') {
        k++;
        while (k < n && s[k] >= '0' && s[k] <= '9')
            k++, digits++;
    }
    if (!digits)
        return false;
    if (k < n && (s[k] == 'e' || s[k] == 'E')) {
        k++;
        if (k < n && (s[k] == '-' || s[k] == '+'))
            k++;
        size_t e = 0;
        while (k < n && s[k] >= '0' && s[k] <= '9')
            k++, e++;
        if (!e)
            return false;
    }
    if (k != n)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    double v = strtod(buf, NULL);
    if (!isfinite(v))
        return false;
    *out = v;
    return true;
}

typedef struct {
    const char *name;
    unsigned bit;
    bool integer;
    lwm2m_version_t since;
} attr_def_t;

static const attr_def_t defs[] = {
    {"pmin", SIM_ATTR_PMIN, true, LWM2M_V1_0},   {"pmax", SIM_ATTR_PMAX, true, LWM2M_V1_0},
    {"gt", SIM_ATTR_GT, false, LWM2M_V1_0},      {"lt", SIM_ATTR_LT, false, LWM2M_V1_0},
    {"st", SIM_ATTR_ST, false, LWM2M_V1_0},      {"epmin", SIM_ATTR_EPMIN, true, LWM2M_V1_1},
    {"epmax", SIM_ATTR_EPMAX, true, LWM2M_V1_1},
};

static int64_t *int_slot(sim_attrs_t *a, unsigned bit)
{
    switch (bit) {
    case SIM_ATTR_PMIN: return &a->pmin;
    case SIM_ATTR_PMAX: return &a->pmax;
    case SIM_ATTR_EPMIN: return &a->epmin;
    default: return &a->epmax;
    }
}

static double *dec_slot(sim_attrs_t *a, unsigned bit)
{
    switch (bit) {
    case SIM_ATTR_GT: return &a->gt;
    case SIM_ATTR_LT: return &a->lt;
    default: return &a->st;
    }
}

int sim_attrs_parse(const char *q, size_t len, lwm2m_version_t v, sim_attrs_t *set, unsigned *clear, char *why,
                    size_t cap)
{
    memset(set, 0, sizeof *set);
    *clear = 0;
    if (why && cap)
        why[0] = '\0';
    const char *s = q ? q : "", *end = s + (q ? len : 0);
    while (s < end) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        const char *e = amp ? amp : end;
        if (e == s) {
            s = e + 1;
            continue; /* "a&&b": an empty option, nothing to do */
        }
        const char *eq = memchr(s, '=', (size_t)(e - s));
        size_t klen = (size_t)((eq ? eq : e) - s);
        const attr_def_t *d = NULL;
        for (size_t k = 0; k < sizeof defs / sizeof defs[0] && !d; k++)
            if (strlen(defs[k].name) == klen && memcmp(defs[k].name, s, klen) == 0)
                d = &defs[k];
        if (!d || v < d->since)
            return bad(why, cap, "unknown attribute \"%.*s\"", (int)(klen > 40 ? 40 : klen), s);
        if ((set->mask | *clear) & d->bit)
            return bad(why, cap, "attribute %s given twice", d->name);
        if (!eq) {
            *clear |= d->bit;
        } else {
            const char *val = eq + 1;
            size_t vlen = (size_t)(e - val);
            if (d->integer) {
                if (!parse_secs(val, vlen, int_slot(set, d->bit)))
                    return bad(why, cap, "%s must be a non-negative integer", d->name);
            } else {
                double *slot = dec_slot(set, d->bit);
                if (!parse_dec(val, vlen, slot))
                    return bad(why, cap, "%s must be a decimal number", d->name);
                if (d->bit == SIM_ATTR_ST && *slot < 0)
                    return bad(why, cap, "st must not be negative");
            }
            set->mask |= d->bit;
        }
        s = e + 1;
    }
    if (!set->mask && !*clear)
        return bad(why, cap, "no attribute in the query");
    return 0;
}

int sim_attrs_merge(sim_attrs_t *cur, const sim_attrs_t *set, unsigned clear, char *why, size_t cap)
{
    sim_attrs_t n = *cur;
    n.mask &= ~clear;
    for (size_t k = 0; k < sizeof defs / sizeof defs[0]; k++) {
        unsigned bit = defs[k].bit;
        if (!(set->mask & bit))
            continue;
        if (defs[k].integer)
            *int_slot(&n, bit) = *int_slot((sim_attrs_t *)set, bit);
        else
            *dec_slot(&n, bit) = *dec_slot((sim_attrs_t *)set, bit);
        n.mask |= bit;
    }
    bool g = n.mask & SIM_ATTR_GT, l = n.mask & SIM_ATTR_LT, st = n.mask & SIM_ATTR_ST;
    if (g && l && !(n.lt < n.gt))
        return bad(why, cap, "lt must be below gt");
    if (g && l && st && !(n.lt + 2 * n.st < n.gt))
        return bad(why, cap, "lt + 2*st must be below gt");
    if ((n.mask & SIM_ATTR_PMIN) && (n.mask & SIM_ATTR_PMAX) && n.pmax > 0 && n.pmax < n.pmin)
        return bad(why, cap, "pmax must not be below pmin");
    if ((n.mask & SIM_ATTR_EPMIN) && (n.mask & SIM_ATTR_EPMAX) && n.epmax > 0 && n.epmax < n.epmin)
        return bad(why, cap, "epmax must not be below epmin");
    *cur = n;
    return 0;
}

/* plain decimal text (no exponent: CONFORMANCE.md §3 "emit plain"), the
 * shortest that reads back as v */
static void fmt_dec(double v, char *buf, size_t cap)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (!strchr(buf, 'e') && strtod(buf, NULL) == v)
            return;
    }
    for (int dec = 0; dec <= 30; dec++) {
        snprintf(buf, cap, "%.*f", dec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

int sim_attrs_format(const sim_attrs_t *a, char *buf, size_t cap)
{
    if (!cap)
        return -1;
    buf[0] = '\0';
    size_t w = 0;
    for (size_t k = 0; k < sizeof defs / sizeof defs[0]; k++) {
        unsigned bit = defs[k].bit;
        if (!(a->mask & bit))
            continue;
        char num[40];
        if (defs[k].integer)
            snprintf(num, sizeof num, "%lld", (long long)*int_slot((sim_attrs_t *)a, bit));
        else
            fmt_dec(*dec_slot((sim_attrs_t *)a, bit), num, sizeof num);
        int m = snprintf(buf + w, cap - w, "%s%s=%s", w ? ";" : "", defs[k].name, num);
        if (m < 0 || (size_t)m >= cap - w)
            return -1;
        w += (size_t)m;
    }
    return (int)w;
}

/* ------------------------------------------------------------ storage */

const sim_attrs_t *sim__attrs_at(const sim_dm_t *dm, const lwm2m_path_t *p)
{
    for (size_t k = 0; k < dm->nattrs; k++)
        if (lwm2m_path_equal(&dm->attrs[k].path, p))
            return &dm->attrs[k].a;
    return NULL;
}

int sim__attrs_put(sim_dm_t *dm, const lwm2m_path_t *p, const sim_attrs_t *a)
{
    size_t at = 0;
    while (at < dm->nattrs && lwm2m_path_compare(&dm->attrs[at].path, p) < 0)
        at++;
    bool found = at < dm->nattrs && lwm2m_path_equal(&dm->attrs[at].path, p);
    if (!a->mask) {
        if (found) {
            memmove(&dm->attrs[at], &dm->attrs[at + 1], (dm->nattrs - at - 1) * sizeof *dm->attrs);
            dm->nattrs--;
        }
        return 0;
    }
    if (found) {
        dm->attrs[at].a = *a;
        return 0;
    }
    if (dm->nattrs == dm->capattrs) {
        size_t cap = dm->capattrs ? dm->capattrs * 2 : 4;
        sim__attached_t *n = realloc(dm->attrs, cap * sizeof *n);
        if (!n)
            return LWM2M_ERR_INTERNAL;
        dm->attrs = n;
        dm->capattrs = cap;
    }
    memmove(&dm->attrs[at + 1], &dm->attrs[at], (dm->nattrs - at) * sizeof *dm->attrs);
    dm->attrs[at].path = *p;
    dm->attrs[at].a = *a;
    dm->nattrs++;
    return 0;
}

void sim__attrs_drop(sim_dm_t *dm, const lwm2m_path_t *prefix)
{
    size_t w = 0;
    for (size_t r = 0; r < dm->nattrs; r++)
        if (!lwm2m_path_starts_with(&dm->attrs[r].path, prefix))
            dm->attrs[w++] = dm->attrs[r];
    dm->nattrs = w;
}

void sim_dm_obs_attrs(const sim_dm_t *dm, const lwm2m_path_t *p, sim_attrs_t *out)
{
    memset(out, 0, sizeof *out);
    /* the server's defaults: the first /1 instance (one management server) */
    for (size_t k = 0; k < dm->ninst; k++) {
        if (dm->inst[k].oid != 1)
            continue;
        int64_t v;
        if (sim__rec_int(sim__find3(dm, 1, dm->inst[k].iid, 2), &v) && v >= 0) {
            out->pmin = v;
            out->mask |= SIM_ATTR_PMIN;
        }
        if (sim__rec_int(sim__find3(dm, 1, dm->inst[k].iid, 3), &v) && v > 0) {
            out->pmax = v;
            out->mask |= SIM_ATTR_PMAX;
        }
        break;
    }
    for (int len = 1; len <= p->len; len++) {
        lwm2m_path_t q = *p;
        q.len = (uint8_t)len;
        const sim_attrs_t *a = sim__attrs_at(dm, &q);
        if (!a)
            continue;
        unsigned take = a->mask;
        if (len < 3)
            take &= ~(unsigned)(SIM_ATTR_GT | SIM_ATTR_LT | SIM_ATTR_ST);
        sim_attrs_t only = *a;
        /* the nearer level wins for each attribute it sets (no consistency
         * check across levels: an instance pmin above a resource pmax is
         * what sim_obs_due then sees, pmax being ignored below pmin) */
        for (size_t k = 0; k < sizeof defs / sizeof defs[0]; k++) {
            unsigned bit = defs[k].bit;
            if (!(take & bit))
                continue;
            if (defs[k].integer)
                *int_slot(out, bit) = *int_slot(&only, bit);
            else
                *dec_slot(out, bit) = *dec_slot(&only, bit);
            out->mask |= bit;
        }
    }
}

/* ------------------------------------------------------------ decisions */

static bool crosses(double a, double b, double t, bool above)
{
    return above ? ((a > t) != (b > t)) : ((a < t) != (b < t));
}

bool sim_obs_due(const sim_attrs_t *a, uint64_t now_us, uint64_t last_us, bool changed, bool numeric, double last_v,
                 double new_v)
{
    uint64_t el = now_us > last_us ? now_us - last_us : 0;
    bool has_pmin = a->mask & SIM_ATTR_PMIN;
    if (has_pmin && el < (uint64_t)a->pmin * 1000000u)
        return false;
    if ((a->mask & SIM_ATTR_PMAX) && a->pmax > 0 && (!has_pmin || a->pmax >= a->pmin) &&
        el >= (uint64_t)a->pmax * 1000000u)
        return true;
    if (!changed)
        return false;
    unsigned th = a->mask & (SIM_ATTR_GT | SIM_ATTR_LT | SIM_ATTR_ST);
    if (!th || !numeric)
        return true;
    if ((th & SIM_ATTR_GT) && crosses(last_v, new_v, a->gt, true))
        return true;
    if ((th & SIM_ATTR_LT) && crosses(last_v, new_v, a->lt, false))
        return true;
    if ((th & SIM_ATTR_ST) && fabs(new_v - last_v) >= a->st)
        return true;
    return false;
}

/* ------------------------------------------------------------ observations */

uint64_t sim_dm_gen(const sim_dm_t *dm) { return dm->gen; }

static bool numeric_value(const sim_dm_t *dm, const lwm2m_path_t *p, double *v)
{
    if (p->len < 3)
        return false;
    return sim__rec_num(lwm2m_records_find(&dm->rs, p), v);
}

int sim_obs_init(sim_obs_t *o, const sim_dm_t *dm, const uint8_t *token, size_t token_len, const lwm2m_path_t *p,
                 const sim_response_t *resp, uint64_t now_us)
{
    memset(o, 0, sizeof *o);
    if (token_len > sizeof o->token)
        return LWM2M_ERR_BAD_REQUEST;
    memcpy(o->token, token, token_len);
    o->token_len = (uint8_t)token_len;
    o->path = *p;
    o->cf = resp->content_format;
    o->seq = 1;
    o->last_us = now_us;
    if (resp->payload_len) {
        o->last = malloc(resp->payload_len);
        if (!o->last)
            return LWM2M_ERR_INTERNAL;
        memcpy(o->last, resp->payload, resp->payload_len);
        o->last_len = resp->payload_len;
    }
    o->numeric = numeric_value(dm, p, &o->last_v);
    o->checked_gen = dm->gen;
    return 0;
}

void sim_obs_clear(sim_obs_t *o)
{
    free(o->last);
    memset(o, 0, sizeof *o);
}

int sim_obs_check(sim_dm_t *dm, sim_obs_t *o, uint64_t now_us, sim_response_t *resp)
{
    memset(resp, 0, sizeof *resp);
    resp->content_format = -1;
    sim_attrs_t a;
    sim_dm_obs_attrs(dm, &o->path, &a);
    uint64_t el = now_us > o->last_us ? now_us - o->last_us : 0;
    bool pmax_due = (a.mask & SIM_ATTR_PMAX) && a.pmax > 0 &&
                    (!(a.mask & SIM_ATTR_PMIN) || a.pmax >= a.pmin) && el >= (uint64_t)a.pmax * 1000000u;
    if (dm->gen == o->checked_gen && !o->pending && !pmax_due)
        return 0;
    o->checked_gen = dm->gen;
    char path[40];
    lwm2m_path_format(&o->path, path, sizeof path);
    sim_request_t r;
    memset(&r, 0, sizeof r);
    r.iface = SIM_IFACE_DM;
    r.method = SIM_GET;
    r.path = path;
    r.path_len = strlen(path);
    r.content_format = -1;
    r.accept = o->cf;
    sim_response_t now;
    sim_dm_handle(dm, &r, &now);
    if (now.code != LWM2M_CODE(2, 5)) {
        o->pending = false;
        *resp = now; /* the path went away: a final error notification */
        return 1;
    }
    bool changed = now.payload_len != o->last_len || (now.payload_len && memcmp(now.payload, o->last, now.payload_len));
    double v = 0;
    bool numeric = o->numeric && numeric_value(dm, &o->path, &v);
    if (!sim_obs_due(&a, now_us, o->last_us, changed, numeric, o->last_v, v)) {
        o->pending = changed && (a.mask & SIM_ATTR_PMIN) && el < (uint64_t)a.pmin * 1000000u;
        sim_response_clear(&now);
        return 0;
    }
    o->pending = false;
    *resp = now;
    return 1;
}

void sim_obs_sent(sim_obs_t *o, const sim_dm_t *dm, const sim_response_t *resp, uint64_t now_us)
{
    o->seq = (o->seq + 1) & 0xffffffu;
    o->last_us = now_us;
    o->sent++;
    o->pending = false;
    if (resp->code != LWM2M_CODE(2, 5))
        return;
    uint8_t *copy = NULL;
    if (resp->payload_len && (copy = malloc(resp->payload_len)))
        memcpy(copy, resp->payload, resp->payload_len);
    free(o->last);
    o->last = copy;
    o->last_len = copy ? resp->payload_len : 0;
    double v;
    if (o->numeric && numeric_value(dm, &o->path, &v))
        o->last_v = v;
}
