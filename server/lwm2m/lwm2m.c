/* lwm2m core vocabulary: paths, value types and record sets.
 * Pure code: no I/O, no clock (DESIGN.md "Layout"). */
#include "server/lwm2m/lwm2m.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/lwm2m/codec_int.h"

/* ================================================================ paths */

int lwm2m_path_parse(const char *s, size_t len, lwm2m_path_t *out)
{
    lwm2m_path_t p = {.len = 0};
    for (int k = 0; k < 4; k++)
        p.ids[k] = LWM2M_ID_NONE;
    if (!s && len > 0)
        return LWM2M_ERR_BAD_REQUEST;
    size_t i = 0;
    if (i < len && s[i] == '/')
        i++; /* the leading '/' is optional ("3/0/1" is accepted) */
    while (i < len) {
        /* one segment: 1+ digits, then '/' or the end */
        if (p.len == 4)
            return LWM2M_ERR_BAD_REQUEST; /* a fifth id */
        uint32_t v = 0;
        size_t start = i;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            v = v * 10u + (uint32_t)(s[i] - '0');
            if (v >= LWM2M_ID_NONE) /* 65535 is reserved; also stops overflow */
                return LWM2M_ERR_BAD_REQUEST;
            i++;
        }
        if (i == start)
            return LWM2M_ERR_BAD_REQUEST; /* empty segment ("//") or non-digit */
        p.ids[p.len++] = (uint16_t)v;
        if (i < len) {
            if (s[i] != '/')
                return LWM2M_ERR_BAD_REQUEST;
            i++; /* a trailing '/' ends the loop here and is accepted */
        }
    }
    if (out)
        *out = p;
    return LWM2M_OK;
}

int lwm2m_path_format(const lwm2m_path_t *p, char *buf, size_t cap)
{
    if (!p || !buf || cap == 0 || p->len > 4)
        return -1;
    if (p->len == 0) {
        if (cap < 2)
            return -1;
        buf[0] = '/';
        buf[1] = '\0';
        return 1;
    }
    size_t n = 0;
    for (size_t k = 0; k < p->len; k++) {
        char seg[8];
        int m = snprintf(seg, sizeof seg, "/%u", (unsigned)p->ids[k]);
        if (m < 0 || n + (size_t)m + 1 > cap)
            return -1;
        memcpy(buf + n, seg, (size_t)m);
        n += (size_t)m;
    }
    buf[n] = '\0';
    return (int)n;
}

lwm2m_path_t lwm2m_path_make(int len, unsigned a, unsigned b, unsigned c, unsigned d)
{
    lwm2m_path_t p;
    unsigned v[4] = {a, b, c, d};
    if (len < 0)
        len = 0;
    if (len > 4)
        len = 4;
    p.len = (uint8_t)len;
    for (int k = 0; k < 4; k++)
        p.ids[k] = (uint16_t)(k < len ? (v[k] & 0xFFFFu) : LWM2M_ID_NONE);
    return p;
}

bool lwm2m_path_equal(const lwm2m_path_t *a, const lwm2m_path_t *b)
{
    if (a->len != b->len)
        return false;
    for (size_t k = 0; k < a->len && k < 4; k++)
        if (a->ids[k] != b->ids[k])
            return false;
    return true;
}

bool lwm2m_path_starts_with(const lwm2m_path_t *p, const lwm2m_path_t *prefix)
{
    if (prefix->len > p->len)
        return false;
    for (size_t k = 0; k < prefix->len && k < 4; k++)
        if (p->ids[k] != prefix->ids[k])
            return false;
    return true;
}

int lwm2m_path_compare(const lwm2m_path_t *a, const lwm2m_path_t *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    if (n > 4)
        n = 4;
    for (size_t k = 0; k < n; k++) {
        if (a->ids[k] != b->ids[k])
            return a->ids[k] < b->ids[k] ? -1 : 1;
    }
    if (a->len == b->len)
        return 0;
    return a->len < b->len ? -1 : 1; /* parent first */
}

/* ================================================================ types */

static const char *const type_names[] = {
    [LWM2M_T_NONE] = "none",       [LWM2M_T_STRING] = "string",   [LWM2M_T_INTEGER] = "integer",
    [LWM2M_T_UNSIGNED] = "unsigned", [LWM2M_T_FLOAT] = "float",   [LWM2M_T_BOOLEAN] = "boolean",
    [LWM2M_T_OPAQUE] = "opaque",   [LWM2M_T_TIME] = "time",       [LWM2M_T_OBJLNK] = "objlnk",
    [LWM2M_T_CORELNK] = "corelnk",
};

bool lwm2m__type_valid(int t)
{
    return t >= (int)LWM2M_T_NONE && t <= (int)LWM2M_T_CORELNK;
}

bool lwm2m__type_has_bytes(lwm2m_type_t t)
{
    return t == LWM2M_T_STRING || t == LWM2M_T_OPAQUE || t == LWM2M_T_CORELNK;
}

const char *lwm2m_type_name(lwm2m_type_t t)
{
    if (!lwm2m__type_valid((int)t))
        return "unknown";
    return type_names[t];
}

int lwm2m_type_parse(const char *s)
{
    if (!s)
        return -1;
    /* normalise: lower case, runs of white space folded to one ' ', trimmed,
     * so "Unsigned  Integer" and " unsigned integer" match alike */
    char norm[32];
    size_t n = 0;
    bool space = false;
    for (const char *c = s; *c; c++) {
        if (isspace((unsigned char)*c)) {
            space = n > 0;
            continue;
        }
        if (space) {
            if (n + 1 >= sizeof norm)
                return -1;
            norm[n++] = ' ';
            space = false;
        }
        if (n + 1 >= sizeof norm)
            return -1;
        norm[n++] = (char)tolower((unsigned char)*c);
    }
    norm[n] = '\0';
    static const struct {
        const char *name;
        lwm2m_type_t t;
    } names[] = {
        {"", LWM2M_T_NONE}, /* executable resources have an empty <Type/> */
        {"none", LWM2M_T_NONE},
        {"string", LWM2M_T_STRING},
        {"integer", LWM2M_T_INTEGER},
        {"unsigned integer", LWM2M_T_UNSIGNED},
        {"unsigned", LWM2M_T_UNSIGNED},
        {"float", LWM2M_T_FLOAT},
        {"boolean", LWM2M_T_BOOLEAN},
        {"opaque", LWM2M_T_OPAQUE},
        {"time", LWM2M_T_TIME},
        {"objlnk", LWM2M_T_OBJLNK},
        {"corelnk", LWM2M_T_CORELNK},
    };
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        if (strcmp(norm, names[k].name) == 0)
            return (int)names[k].t;
    return -1;
}

/* ========================================================== record sets */

void lwm2m_records_init(lwm2m_records_t *rs)
{
    rs->recs = NULL;
    rs->n = 0;
    rs->cap = 0;
}

void lwm2m__record_free(lwm2m_record_t *r)
{
    free(r->bytes);
    r->bytes = NULL;
    r->nbytes = 0;
}

void lwm2m__records_truncate(lwm2m_records_t *rs, size_t n)
{
    while (rs->n > n)
        lwm2m__record_free(&rs->recs[--rs->n]);
}

void lwm2m_records_clear(lwm2m_records_t *rs)
{
    lwm2m__records_truncate(rs, 0);
    free(rs->recs);
    lwm2m_records_init(rs);
}

lwm2m_record_t *lwm2m__records_push(lwm2m_records_t *rs)
{
    if (rs->n == rs->cap) {
        size_t ncap = rs->cap ? rs->cap * 2 : 8;
        if (ncap < rs->cap || ncap > SIZE_MAX / sizeof(lwm2m_record_t))
            return NULL;
        lwm2m_record_t *nr = realloc(rs->recs, ncap * sizeof *nr);
        if (!nr)
            return NULL;
        rs->recs = nr;
        rs->cap = ncap;
    }
    lwm2m_record_t *r = &rs->recs[rs->n++];
    memset(r, 0, sizeof *r);
    return r;
}

int lwm2m_records_add(lwm2m_records_t *rs, const lwm2m_record_t *r)
{
    uint8_t *copy = NULL;
    size_t nbytes = 0;
    if (lwm2m__type_has_bytes(r->type)) {
        if (!r->bytes && r->nbytes > 0)
            return LWM2M_ERR_INTERNAL; /* caller bug: length without data */
        nbytes = r->nbytes;
        if (nbytes == SIZE_MAX)
            return LWM2M_ERR_INTERNAL;
        copy = malloc(nbytes + 1); /* always a buffer, NUL-terminated */
        if (!copy)
            return LWM2M_ERR_INTERNAL;
        if (nbytes)
            memcpy(copy, r->bytes, nbytes);
        copy[nbytes] = '\0';
    }
    lwm2m_record_t *slot = lwm2m__records_push(rs);
    if (!slot) {
        free(copy);
        return LWM2M_ERR_INTERNAL;
    }
    *slot = *r;
    slot->bytes = copy;
    slot->nbytes = nbytes;
    return LWM2M_OK;
}

static lwm2m_record_t rec_at(const lwm2m_path_t *p, lwm2m_type_t t)
{
    lwm2m_record_t r;
    memset(&r, 0, sizeof r);
    r.path = *p;
    r.type = t;
    return r;
}

int lwm2m_records_add_string(lwm2m_records_t *rs, const lwm2m_path_t *p, const char *s)
{
    lwm2m_record_t r = rec_at(p, LWM2M_T_STRING);
    r.bytes = (uint8_t *)(uintptr_t)(s ? s : "");
    r.nbytes = strlen((const char *)r.bytes);
    return lwm2m_records_add(rs, &r);
}

int lwm2m_records_add_opaque(lwm2m_records_t *rs, const lwm2m_path_t *p, const void *b, size_t n)
{
    lwm2m_record_t r = rec_at(p, LWM2M_T_OPAQUE);
    r.bytes = (uint8_t *)(uintptr_t)b;
    r.nbytes = n;
    return lwm2m_records_add(rs, &r);
}

int lwm2m_records_add_int(lwm2m_records_t *rs, const lwm2m_path_t *p, int64_t v)
{
    lwm2m_record_t r = rec_at(p, LWM2M_T_INTEGER);
    r.v.i = v;
    return lwm2m_records_add(rs, &r);
}

int lwm2m_records_add_uint(lwm2m_records_t *rs, const lwm2m_path_t *p, uint64_t v)
{
    lwm2m_record_t r = rec_at(p, LWM2M_T_UNSIGNED);
    r.v.u = v;
    return lwm2m_records_add(rs, &r);
}

int lwm2m_records_add_float(lwm2m_records_t *rs, const lwm2m_path_t *p, double v)
{
    lwm2m_record_t r = rec_at(p, LWM2M_T_FLOAT);
    r.v.f = v;
    return lwm2m_records_add(rs, &r);
}

int lwm2m_records_add_bool(lwm2m_records_t *rs, const lwm2m_path_t *p, bool v)
{
    lwm2m_record_t r = rec_at(p, LWM2M_T_BOOLEAN);
    r.v.b = v;
    return lwm2m_records_add(rs, &r);
}

int lwm2m_records_add_objlnk(lwm2m_records_t *rs, const lwm2m_path_t *p, uint16_t oid, uint16_t iid)
{
    lwm2m_record_t r = rec_at(p, LWM2M_T_OBJLNK);
    r.v.lnk.oid = oid;
    r.v.lnk.iid = iid;
    return lwm2m_records_add(rs, &r);
}

/* Stable merge sort by path. Records are moved, not copied, so ownership of
 * `bytes` travels with them. Falls back to insertion sort (also stable) when
 * the scratch array cannot be allocated. */
static void merge_sort(lwm2m_record_t *a, lwm2m_record_t *tmp, size_t n)
{
    if (n < 2)
        return;
    size_t h = n / 2;
    merge_sort(a, tmp, h);
    merge_sort(a + h, tmp, n - h);
    if (lwm2m_path_compare(&a[h - 1].path, &a[h].path) <= 0)
        return; /* already in order */
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = lwm2m_path_compare(&a[j].path, &a[i].path) < 0 ? a[j++] : a[i++];
    while (i < h)
        tmp[k++] = a[i++];
    while (j < n)
        tmp[k++] = a[j++];
    memcpy(a, tmp, n * sizeof *a);
}

void lwm2m_records_sort(lwm2m_records_t *rs)
{
    if (rs->n < 2)
        return;
    lwm2m_record_t *tmp = malloc(rs->n * sizeof *tmp);
    if (tmp) {
        merge_sort(rs->recs, tmp, rs->n);
        free(tmp);
        return;
    }
    for (size_t i = 1; i < rs->n; i++) {
        lwm2m_record_t x = rs->recs[i];
        size_t j = i;
        while (j > 0 && lwm2m_path_compare(&rs->recs[j - 1].path, &x.path) > 0) {
            rs->recs[j] = rs->recs[j - 1];
            j--;
        }
        rs->recs[j] = x;
    }
}

const lwm2m_record_t *lwm2m_records_find(const lwm2m_records_t *rs, const lwm2m_path_t *p)
{
    for (size_t i = 0; i < rs->n; i++)
        if (lwm2m_path_equal(&rs->recs[i].path, p))
            return &rs->recs[i];
    return NULL;
}

bool lwm2m__record_ok(const lwm2m_record_t *r)
{
    if (!lwm2m__type_valid((int)r->type) || r->path.len > 4)
        return false;
    if (r->type != LWM2M_T_NONE && r->path.len < 3)
        return false;
    for (size_t k = 0; k < r->path.len; k++)
        if (r->path.ids[k] == LWM2M_ID_NONE)
            return false;
    if (lwm2m__type_has_bytes(r->type) && !r->bytes && r->nbytes > 0)
        return false;
    return true;
}

static int cmp_path_ptr(const void *a, const void *b)
{
    return lwm2m_path_compare((const lwm2m_path_t *)a, (const lwm2m_path_t *)b);
}

int lwm2m__records_check_unique(const lwm2m_records_t *rs, size_t from)
{
    if (rs->n <= from + 1)
        return LWM2M_OK;
    size_t n = rs->n - from;
    lwm2m_path_t *ps = malloc(n * sizeof *ps);
    if (!ps)
        return LWM2M_ERR_INTERNAL;
    for (size_t i = 0; i < n; i++)
        ps[i] = rs->recs[from + i].path;
    qsort(ps, n, sizeof *ps, cmp_path_ptr);
    int rc = LWM2M_OK;
    /* sorted parent-first, so a path that lies below another directly
     * follows it (or follows a sibling that also lies below it) */
    for (size_t i = 1; i < n && rc == LWM2M_OK; i++)
        if (lwm2m_path_starts_with(&ps[i], &ps[i - 1]))
            rc = LWM2M_ERR_BAD_REQUEST;
    free(ps);
    return rc;
}

int lwm2m_hex_digit(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}
