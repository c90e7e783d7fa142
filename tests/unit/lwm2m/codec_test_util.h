/* Helpers shared by the codec unit tests (tlv.c, senml_json.c, senml_cbor.c,
 * text.c): hex input, expected-record tables, record comparison, and a
 * sentinel that proves a failed decode left its output untouched. */
#ifndef LWDM_CODEC_TEST_UTIL_H
#define LWDM_CODEC_TEST_UTIL_H

__attribute__((unused)) static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;
    for (const char *c = hex; *c; c++) {
        int v;
        if (*c >= '0' && *c <= '9')
            v = *c - '0';
        else if (*c >= 'a' && *c <= 'f')
            v = *c - 'a' + 10;
        else if (*c >= 'A' && *c <= 'F')
            v = *c - 'A' + 10;
        else
            continue; /* spacing */
        if (hi < 0) {
            hi = v;
            continue;
        }
        if (n >= cap)
            fail_msg("hex input longer than %zu bytes", cap);
        out[n++] = (uint8_t)(hi << 4 | v);
        hi = -1;
    }
    if (hi >= 0)
        fail_msg("odd number of hex digits in \"%s\"", hex);
    return n;
}

typedef struct {
    const char *path; /* NULL ends a list */
    lwm2m_type_t type;
    int64_t i;
    uint64_t u;
    double f;
    bool b;
    uint16_t oid, iid;
    const char *s; /* bytes of STRING / OPAQUE / CORELNK */
    size_t slen;   /* 0: strlen(s) */
} exp_t;

#define E_STR(p, v) {p, LWM2M_T_STRING, .s = v}
#define E_OPQ(p, v, n) {p, LWM2M_T_OPAQUE, .s = v, .slen = n}
#define E_INT(p, v) {p, LWM2M_T_INTEGER, .i = v}
#define E_UINT(p, v) {p, LWM2M_T_UNSIGNED, .u = v}
#define E_FLT(p, v) {p, LWM2M_T_FLOAT, .f = v}
#define E_BOOL(p, v) {p, LWM2M_T_BOOLEAN, .b = v}
#define E_TIME(p, v) {p, LWM2M_T_TIME, .i = v}
#define E_LNK(p, o, i_) {p, LWM2M_T_OBJLNK, .oid = o, .iid = i_}
#define E_CORE(p, v) {p, LWM2M_T_CORELNK, .s = v}
#define E_NONE(p) {p, LWM2M_T_NONE, .i = 0}
#define E_TYPE(p, t) {p, t, .i = 0}

__attribute__((unused)) static lwm2m_path_t P(const char *s)
{
    lwm2m_path_t p;
    if (lwm2m_path_parse(s, strlen(s), &p) != 0)
        fail_msg("test bug: bad path \"%s\"", s);
    return p;
}

__attribute__((unused)) static size_t exp_len(const exp_t *e)
{
    return e->slen ? e->slen : (e->s ? strlen(e->s) : 0);
}

__attribute__((unused)) static void add_exp(lwm2m_records_t *rs, const exp_t *e)
{
    lwm2m_record_t r;
    memset(&r, 0, sizeof r);
    r.path = P(e->path);
    r.type = e->type;
    r.v.i = e->i;
    if (e->type == LWM2M_T_UNSIGNED)
        r.v.u = e->u;
    else if (e->type == LWM2M_T_FLOAT)
        r.v.f = e->f;
    else if (e->type == LWM2M_T_BOOLEAN)
        r.v.b = e->b;
    else if (e->type == LWM2M_T_OBJLNK) {
        r.v.lnk.oid = e->oid;
        r.v.lnk.iid = e->iid;
    }
    r.bytes = (uint8_t *)(uintptr_t)e->s;
    r.nbytes = exp_len(e);
    if (lwm2m_records_add(rs, &r) != 0)
        fail_msg("records_add failed");
}

__attribute__((unused)) static bool same_value(const lwm2m_record_t *a, const lwm2m_record_t *b)
{
    if (!lwm2m_path_equal(&a->path, &b->path) || a->type != b->type)
        return false;
    switch (a->type) {
    case LWM2M_T_STRING:
    case LWM2M_T_OPAQUE:
    case LWM2M_T_CORELNK:
        return a->nbytes == b->nbytes && (a->nbytes == 0 || memcmp(a->bytes, b->bytes, a->nbytes) == 0);
    case LWM2M_T_INTEGER:
    case LWM2M_T_TIME:
        return a->v.i == b->v.i;
    case LWM2M_T_UNSIGNED:
        return a->v.u == b->v.u;
    case LWM2M_T_FLOAT:
        return memcmp(&a->v.f, &b->v.f, sizeof(double)) == 0 || (isnan(a->v.f) && isnan(b->v.f));
    case LWM2M_T_BOOLEAN:
        return a->v.b == b->v.b;
    case LWM2M_T_OBJLNK:
        return a->v.lnk.oid == b->v.lnk.oid && a->v.lnk.iid == b->v.lnk.iid;
    default:
        return true;
    }
}

__attribute__((unused)) static void describe(const lwm2m_record_t *r, char *buf, size_t cap)
{
    char p[32];
    lwm2m_path_format(&r->path, p, sizeof p);
    snprintf(buf, cap, "%s %s i=%lld u=%llu f=%g b=%d lnk=%u:%u n=%zu", p, lwm2m_type_name(r->type),
             (long long)r->v.i, (unsigned long long)r->v.u, r->v.f, r->v.b, r->v.lnk.oid, r->v.lnk.iid,
             r->nbytes);
}

/* rs[from..] must equal exp[] (NULL-path terminated or n entries) */
__attribute__((unused)) static void check_records(const char *name, const lwm2m_records_t *rs, size_t from, const exp_t *exp, size_t nexp)
{
    lwm2m_records_t want;
    lwm2m_records_init(&want);
    for (size_t k = 0; k < nexp && exp[k].path; k++)
        add_exp(&want, &exp[k]);
    if (rs->n - from != want.n)
        fail_msg("%s: %zu records, want %zu", name, rs->n - from, want.n);
    for (size_t k = 0; k < want.n; k++) {
        if (!same_value(&rs->recs[from + k], &want.recs[k])) {
            char got[160], exp_s[160];
            describe(&rs->recs[from + k], got, sizeof got);
            describe(&want.recs[k], exp_s, sizeof exp_s);
            fail_msg("%s: record %zu is [%s], want [%s]", name, k, got, exp_s);
        }
    }
    lwm2m_records_clear(&want);
}

__attribute__((unused)) static void check_same_sets(const char *name, const lwm2m_records_t *a, const lwm2m_records_t *b)
{
    if (a->n != b->n)
        fail_msg("%s: %zu records vs %zu", name, a->n, b->n);
    for (size_t k = 0; k < a->n; k++)
        if (!same_value(&a->recs[k], &b->recs[k])) {
            char x[160], y[160];
            describe(&a->recs[k], x, sizeof x);
            describe(&b->recs[k], y, sizeof y);
            fail_msg("%s: record %zu [%s] vs [%s]", name, k, x, y);
        }
}

/* a set holding one sentinel record, to prove failures leave it alone */
__attribute__((unused)) static void sentinel_init(lwm2m_records_t *rs)
{
    lwm2m_records_init(rs);
    lwm2m_path_t p = lwm2m_path_make(3, 9, 9, 9, 0);
    if (lwm2m_records_add_string(rs, &p, "sentinel") != 0)
        fail_msg("sentinel");
}

__attribute__((unused)) static void sentinel_check(const char *name, const lwm2m_records_t *rs)
{
    if (rs->n != 1 || strcmp((const char *)rs->recs[0].bytes, "sentinel") != 0)
        fail_msg("%s: output set changed by a failing call (n=%zu)", name, rs->n);
}

#endif
