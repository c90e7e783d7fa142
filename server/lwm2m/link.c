/* CoRE link format (RFC 6690) parser and builder, as LwM2M uses it.
 *
 * Grammar accepted (RFC 6690 §2, with the LwM2M extensions noted):
 *
 *   payload   = ws [ head ] [ link *( ws "," ws link ) [ ws "," ] ] ws
 *   head      = attr *( ws ("," / ";") ws attr ) ws ("," / ";")   ; LwM2M 1.0 form only
 *   link      = "<" uri ">" *( ws ";" ws attr )
 *   attr      = parmname [ ws "=" ws ( ptoken / quoted-string ) ]
 *
 * Why the extensions:
 *  - `head`: LwM2M 1.0 Bootstrap-Discover answers start with `lwm2m="1.0",`
 *    before the first link (OMA-TS-LightweightM2M-V1_0 §5.2.7.3 example; the 1.1
 *    TS §6.2.2.1 moved the version onto a `</>` link but still allows clients to
 *    answer in the old form: CONFORMANCE.md §1, "1.0-form Discover rejected" is
 *    the most common server bug).
 *  - whitespace around separators and one trailing comma: RFC 6690 allows
 *    neither, but clients emit pretty-printed payloads and we gain nothing by
 *    refusing them. Anything else between links is refused, so a truncated or
 *    corrupted payload never yields a plausible-looking partial object list.
 *  - valueless attributes (`;obs`, `;Q`): RFC 6690 link-extension allows them.
 *
 * The whole payload is parsed into a scratch list first and only moved into the
 * caller's list on success, so a failure leaves the output untouched. */
#include "server/lwm2m/link.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------ lifetime */

void lwm2m_links_init(lwm2m_links_t *ls)
{
    memset(ls, 0, sizeof *ls);
}

static void attr_free(lwm2m_link_attr_t *a)
{
    free(a->name);
    free(a->value);
    a->name = NULL;
    a->value = NULL;
}

static void link_free(lwm2m_link_t *l)
{
    free(l->uri);
    l->uri = NULL;
    for (size_t i = 0; i < l->nattrs; i++)
        attr_free(&l->attrs[i]);
    l->nattrs = 0;
}

void lwm2m_links_clear(lwm2m_links_t *ls)
{
    if (!ls)
        return;
    for (size_t i = 0; i < ls->n; i++)
        link_free(&ls->links[i]);
    free(ls->links);
    for (size_t i = 0; i < ls->nhead; i++)
        attr_free(&ls->head_attrs[i]);
    lwm2m_links_init(ls);
}

/* ------------------------------------------------------------ scanning */

typedef struct {
    const char *p;
    const char *end;
} cursor_t;

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void skip_ws(cursor_t *c)
{
    while (c->p < c->end && is_ws(*c->p))
        c->p++;
}

static bool at(const cursor_t *c, char ch)
{
    return c->p < c->end && *c->p == ch;
}

static bool is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* parmname = 1*attr-char (RFC 5987 §3.2.1); '*' added for RFC 6690's
 * extended `title*` form. */
static bool is_name_char(unsigned char c)
{
    return is_alnum(c) || (c != 0 && strchr("!#$&+-.^_`|~*", c) != NULL);
}

/* ptokenchar (RFC 6690 §2). Note it includes '<', '=' and '>'. */
static bool is_ptoken_char(unsigned char c)
{
    return is_alnum(c) || (c != 0 && strchr("!#$%&'()*+-./:<=>?@[]^_`{|}~", c) != NULL);
}

/* A URI-Reference can hold no whitespace, controls, '<' or '"' (RFC 3986 §2). */
static bool is_uri_char(unsigned char c)
{
    return c > 0x20 && c != 0x7f && c != '<' && c != '"';
}

static char *dup_range(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* Parses a quoted-string at c->p (which is '"'); backslash escapes the next
 * character (RFC 2616 §2.2 quoted-pair, referenced by RFC 6690). */
static int parse_quoted(cursor_t *c, char **out)
{
    const char *s = ++c->p; /* after the opening quote */
    size_t n = 0;
    /* first pass: find the end and the unescaped length */
    const char *q = s;
    for (;;) {
        if (q >= c->end)
            return LWM2M_ERR_BAD_REQUEST; /* unterminated */
        if (*q == '"')
            break;
        if (*q == '\\') {
            if (++q >= c->end)
                return LWM2M_ERR_BAD_REQUEST;
        }
        q++;
        n++;
    }
    char *v = malloc(n + 1);
    if (!v)
        return LWM2M_ERR_INTERNAL;
    size_t k = 0;
    for (const char *r = s; r < q; r++) {
        if (*r == '\\')
            r++;
        v[k++] = *r;
    }
    v[k] = '\0';
    c->p = q + 1;
    *out = v;
    return 0;
}

/* attr = parmname [ "=" value ]; fills *a (owned) on success. */
static int parse_attr(cursor_t *c, lwm2m_link_attr_t *a)
{
    const char *s = c->p;
    while (c->p < c->end && is_name_char((unsigned char)*c->p))
        c->p++;
    if (c->p == s)
        return LWM2M_ERR_BAD_REQUEST; /* empty or invalid name */
    const char *name_end = c->p;
    cursor_t look = *c;
    skip_ws(&look);
    char *value = NULL;
    if (at(&look, '=')) {
        look.p++;
        skip_ws(&look);
        *c = look;
        if (at(c, '"')) {
            int rc = parse_quoted(c, &value);
            if (rc < 0)
                return rc;
        } else {
            const char *v = c->p;
            while (c->p < c->end && is_ptoken_char((unsigned char)*c->p))
                c->p++;
            if (c->p == v)
                return LWM2M_ERR_BAD_REQUEST; /* `a=` with nothing after it */
            value = dup_range(v, (size_t)(c->p - v));
            if (!value)
                return LWM2M_ERR_INTERNAL;
        }
    }
    char *name = dup_range(s, (size_t)(name_end - s));
    if (!name) {
        free(value);
        return LWM2M_ERR_INTERNAL;
    }
    a->name = name;
    a->value = value;
    return 0;
}

/* Sets is_lwm2m_path/path from a URI (or from the part of it after a prefix). */
static void classify_uri(lwm2m_link_t *l, const char *rest)
{
    lwm2m_path_t p;
    /* lwm2m_path_parse also takes "0/1" without the slash; a link URI is a
     * relative reference, so "<0/1>" names the same resource. */
    if (lwm2m_path_parse(rest, strlen(rest), &p) == 0) {
        l->path = p;
        l->is_lwm2m_path = true;
    } else {
        l->path = lwm2m_path_make(0, 0, 0, 0, 0);
        l->is_lwm2m_path = false;
    }
}

static int grow_links(lwm2m_links_t *ls, size_t need)
{
    if (need <= ls->cap)
        return 0;
    size_t cap = ls->cap ? ls->cap : 8;
    while (cap < need)
        cap *= 2;
    lwm2m_link_t *n = realloc(ls->links, cap * sizeof *n);
    if (!n)
        return LWM2M_ERR_INTERNAL;
    ls->links = n;
    ls->cap = cap;
    return 0;
}

/* link = "<" uri ">" *( ";" attr ); appends to ls. */
static int parse_link(cursor_t *c, lwm2m_links_t *ls)
{
    if (!at(c, '<'))
        return LWM2M_ERR_BAD_REQUEST;
    const char *s = ++c->p;
    while (c->p < c->end && *c->p != '>') {
        if (!is_uri_char((unsigned char)*c->p))
            return LWM2M_ERR_BAD_REQUEST;
        c->p++;
    }
    if (c->p >= c->end)
        return LWM2M_ERR_BAD_REQUEST; /* unterminated '<' */
    if (c->p == s)
        return LWM2M_ERR_BAD_REQUEST; /* empty URI */
    size_t ulen = (size_t)(c->p - s);
    c->p++;

    int rc = grow_links(ls, ls->n + 1);
    if (rc < 0)
        return rc;
    lwm2m_link_t *l = &ls->links[ls->n];
    memset(l, 0, sizeof *l);
    l->uri = dup_range(s, ulen);
    if (!l->uri)
        return LWM2M_ERR_INTERNAL;
    ls->n++; /* from here on the scratch list owns it, even on error */
    classify_uri(l, l->uri);

    for (;;) {
        cursor_t look = *c;
        skip_ws(&look);
        if (!at(&look, ';'))
            return 0;
        look.p++;
        skip_ws(&look);
        *c = look;
        if (l->nattrs == LWM2M_LINK_MAX_ATTRS)
            return LWM2M_ERR_BAD_REQUEST; /* refuse rather than drop attributes */
        rc = parse_attr(c, &l->attrs[l->nattrs]);
        if (rc < 0)
            return rc;
        l->nattrs++;
    }
}

/* head = attributes before the first link, separated by ',' or ';'. */
static int parse_head(cursor_t *c, lwm2m_links_t *ls)
{
    while (c->p < c->end && *c->p != '<') {
        if (ls->nhead == LWM2M_LINK_MAX_ATTRS)
            return LWM2M_ERR_BAD_REQUEST;
        int rc = parse_attr(c, &ls->head_attrs[ls->nhead]);
        if (rc < 0)
            return rc;
        ls->nhead++;
        skip_ws(c);
        if (c->p >= c->end)
            return 0; /* a head with no links at all */
        if (*c->p != ',' && *c->p != ';')
            return LWM2M_ERR_BAD_REQUEST; /* e.g. `lwm2m="1.0"</0>` */
        c->p++;
        skip_ws(c);
    }
    return 0;
}

static int parse_all(cursor_t *c, lwm2m_links_t *ls)
{
    skip_ws(c);
    int rc = parse_head(c, ls);
    if (rc < 0)
        return rc;
    while (c->p < c->end) {
        rc = parse_link(c, ls);
        if (rc < 0)
            return rc;
        skip_ws(c);
        if (c->p >= c->end)
            break;
        if (*c->p != ',')
            return LWM2M_ERR_BAD_REQUEST; /* garbage between links */
        c->p++;
        skip_ws(c);
        /* one trailing comma is tolerated; `,,` is not (parse_link refuses ',') */
    }
    return 0;
}

int lwm2m_link_parse(const uint8_t *buf, size_t len, lwm2m_links_t *out)
{
    if (!out || (!buf && len))
        return LWM2M_ERR_BAD_REQUEST;
    if (len > LWM2M_MAX_PAYLOAD)
        return LWM2M_ERR_REQUEST_TOO_LARGE;
    /* Link format is text; a NUL would silently cut strings we hand out. */
    if (len && memchr(buf, 0, len))
        return LWM2M_ERR_BAD_REQUEST;

    lwm2m_links_t tmp;
    lwm2m_links_init(&tmp);
    static const uint8_t empty[1];
    if (!buf)
        buf = empty; /* NULL + 0 is undefined behaviour */
    cursor_t c = {(const char *)buf, (const char *)buf + len};
    int rc = parse_all(&c, &tmp);
    if (rc == 0 && out->nhead + tmp.nhead > LWM2M_LINK_MAX_ATTRS)
        rc = LWM2M_ERR_BAD_REQUEST;
    if (rc == 0 && tmp.n)
        rc = grow_links(out, out->n + tmp.n);
    if (rc < 0) {
        lwm2m_links_clear(&tmp);
        return rc;
    }
    /* commit: nothing below can fail */
    if (tmp.n)
        memcpy(out->links + out->n, tmp.links, tmp.n * sizeof *tmp.links);
    out->n += tmp.n;
    for (size_t i = 0; i < tmp.nhead; i++)
        out->head_attrs[out->nhead++] = tmp.head_attrs[i];
    free(tmp.links);
    return 0;
}

/* -------------------------------------------------------------- queries */

/* Attribute names match case-insensitively: RFC 8288 Appendix B.3 (which
 * obsoletes RFC 5988, the base of RFC 6690) lower-cases parameter names when
 * parsing. Values are compared by callers, as written. */
const char *lwm2m_link_attr(const lwm2m_link_t *l, const char *name)
{
    if (!l || !name)
        return NULL;
    for (size_t i = 0; i < l->nattrs; i++)
        if (strcasecmp(l->attrs[i].name, name) == 0)
            return l->attrs[i].value ? l->attrs[i].value : "";
    return NULL;
}

static const char *head_attr(const lwm2m_links_t *ls, const char *name)
{
    for (size_t i = 0; i < ls->nhead; i++)
        if (strcasecmp(ls->head_attrs[i].name, name) == 0)
            return ls->head_attrs[i].value ? ls->head_attrs[i].value : "";
    return NULL;
}

/* "1.0" / "1.1" / "1.2" (a patch level such as "1.2.1" counts as its minor
 * version: the enabler version in the protocol is major.minor, OMA-TS-Core 1.2
 * §6.2.2). Quotes were already removed by the parser. */
static int parse_version(const char *v)
{
    if (!v || v[0] != '1' || v[1] != '.' || v[2] < '0' || v[2] > '2')
        return 0;
    const char *r = v + 3;
    if (*r == '.') {
        r++;
        if (*r < '0' || *r > '9')
            return 0;
        while (*r >= '0' && *r <= '9')
            r++;
    }
    if (*r)
        return 0;
    return v[2] == '0' ? LWM2M_V1_0 : v[2] == '1' ? LWM2M_V1_1 : LWM2M_V1_2;
}

int lwm2m_links_version(const lwm2m_links_t *ls)
{
    if (!ls)
        return 0;
    /* 1.1+ puts it on the root link `</>` (OMA-TS-Core 1.1 §6.2.2.1); with an
     * alternate path the root is the link carrying rt="oma.lwm2m". */
    for (size_t i = 0; i < ls->n; i++) {
        const lwm2m_link_t *l = &ls->links[i];
        const char *rt = lwm2m_link_attr(l, "rt");
        bool root = (l->is_lwm2m_path && l->path.len == 0) || (rt && strcmp(rt, "oma.lwm2m") == 0);
        const char *v = root ? lwm2m_link_attr(l, "lwm2m") : NULL;
        if (v)
            return parse_version(v);
    }
    return parse_version(head_attr(ls, "lwm2m"));
}

const char *lwm2m_links_root(const lwm2m_links_t *ls)
{
    if (!ls)
        return NULL;
    for (size_t i = 0; i < ls->n; i++) {
        const char *rt = lwm2m_link_attr(&ls->links[i], "rt");
        if (rt && strcmp(rt, "oma.lwm2m") == 0)
            return ls->links[i].uri;
    }
    return NULL;
}

int lwm2m_links_strip_prefix(lwm2m_links_t *ls, const char *prefix)
{
    if (!ls || !prefix)
        return LWM2M_ERR_BAD_REQUEST;
    size_t plen = strlen(prefix);
    while (plen && prefix[plen - 1] == '/')
        plen--; /* "/lwm2m/" and "/lwm2m" are the same root */
    int count = 0;
    for (size_t i = 0; i < ls->n; i++) {
        lwm2m_link_t *l = &ls->links[i];
        if (strncmp(l->uri, prefix, plen) != 0)
            continue;
        const char *rest = l->uri + plen;
        if (*rest != '\0' && *rest != '/')
            continue; /* "/lwm2mfoo" is not under "/lwm2m" */
        /* "" (the root itself) parses as the root path */
        classify_uri(l, rest);
        if (l->is_lwm2m_path)
            count++;
    }
    return count;
}

/* -------------------------------------------------------------- builder */

static int sb_reserve(lwm2m_strbuf_t *sb, size_t extra)
{
    if (sb->len + extra + 1 <= sb->cap)
        return 0;
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < sb->len + extra + 1) {
        if (cap > SIZE_MAX / 2)
            return LWM2M_ERR_INTERNAL;
        cap *= 2;
    }
    char *n = realloc(sb->buf, cap);
    if (!n)
        return LWM2M_ERR_INTERNAL;
    sb->buf = n;
    sb->cap = cap;
    return 0;
}

static void sb_put(lwm2m_strbuf_t *sb, const char *s, size_t n)
{
    memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
}

int lwm2m_link_append(lwm2m_strbuf_t *sb, const char *uri, const char *attrs)
{
    if (!sb || !uri)
        return LWM2M_ERR_INTERNAL;
    if (attrs && *attrs == ';')
        attrs++; /* tolerate a caller that already wrote the separator */
    size_t ulen = strlen(uri);
    size_t alen = attrs ? strlen(attrs) : 0;
    size_t need = (sb->len ? 1 : 0) + 1 + ulen + 1 + (alen ? 1 + alen : 0);
    if (sb_reserve(sb, need) < 0)
        return LWM2M_ERR_INTERNAL;
    if (sb->len)
        sb_put(sb, ",", 1);
    sb_put(sb, "<", 1);
    sb_put(sb, uri, ulen);
    sb_put(sb, ">", 1);
    if (alen) {
        sb_put(sb, ";", 1);
        sb_put(sb, attrs, alen);
    }
    return 0;
}
