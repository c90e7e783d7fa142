/* libFuzzer target for the CoRE link-format parser (server/lwm2m/link.c).
 *
 * Besides "no crash, no leak", it checks a round trip: whatever parses is
 * written back with lwm2m_link_append (values always quoted and escaped) and
 * must parse again to the same links, attributes and paths. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/lwm2m/link.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_link: invariant broken: %s\n", what);
        abort();
    }
}

/* `name="value"` pairs, with '"' and '\' escaped, joined by ';' */
static char *attrs_text(const lwm2m_link_t *l)
{
    size_t cap = 1;
    for (size_t i = 0; i < l->nattrs; i++)
        cap += strlen(l->attrs[i].name) + (l->attrs[i].value ? 2 * strlen(l->attrs[i].value) + 3 : 0) + 1;
    char *s = malloc(cap), *p = s;
    if (!s)
        return NULL;
    for (size_t i = 0; i < l->nattrs; i++) {
        if (i)
            *p++ = ';';
        p = stpcpy(p, l->attrs[i].name);
        if (l->attrs[i].value) {
            *p++ = '=';
            *p++ = '"';
            for (const char *v = l->attrs[i].value; *v; v++) {
                if (*v == '"' || *v == '\\')
                    *p++ = '\\';
                *p++ = *v;
            }
            *p++ = '"';
        }
    }
    *p = '\0';
    return s;
}

static void round_trip(const lwm2m_links_t *ls)
{
    lwm2m_strbuf_t sb = {0};
    for (size_t i = 0; i < ls->n; i++) {
        char *a = attrs_text(&ls->links[i]);
        if (!a || lwm2m_link_append(&sb, ls->links[i].uri, a) != 0) {
            free(a);
            free(sb.buf);
            return; /* out of memory: nothing to check */
        }
        free(a);
    }
    lwm2m_links_t again;
    lwm2m_links_init(&again);
    int rc = lwm2m_link_parse((const uint8_t *)(sb.buf ? sb.buf : ""), sb.len, &again);
    if (rc == LWM2M_ERR_REQUEST_TOO_LARGE || rc == LWM2M_ERR_INTERNAL) {
        /* quoting can push a payload near the limit over it */
        free(sb.buf);
        return;
    }
    check(rc == 0, "rebuilt payload parses");
    check(again.n == ls->n, "same number of links");
    for (size_t i = 0; i < ls->n; i++) {
        const lwm2m_link_t *x = &ls->links[i], *y = &again.links[i];
        check(strcmp(x->uri, y->uri) == 0, "same uri");
        check(x->is_lwm2m_path == y->is_lwm2m_path, "same path-ness");
        check(!x->is_lwm2m_path || lwm2m_path_equal(&x->path, &y->path), "same path");
        check(x->nattrs == y->nattrs, "same attribute count");
        for (size_t k = 0; k < x->nattrs; k++) {
            check(strcmp(x->attrs[k].name, y->attrs[k].name) == 0, "same attribute name");
            check((x->attrs[k].value == NULL) == (y->attrs[k].value == NULL), "same valueless-ness");
            check(!x->attrs[k].value || strcmp(x->attrs[k].value, y->attrs[k].value) == 0, "same value");
        }
    }
    lwm2m_links_clear(&again);
    free(sb.buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lwm2m_links_t ls;
    lwm2m_links_init(&ls);
    int rc = lwm2m_link_parse(data, size, &ls);
    if (rc != 0) {
        check(ls.n == 0 && ls.nhead == 0 && ls.links == NULL, "output untouched on failure");
        return 0;
    }
    check(ls.n <= size, "no more links than bytes");
    for (size_t i = 0; i < ls.n; i++) {
        const lwm2m_link_t *l = &ls.links[i];
        check(l->uri && l->uri[0], "non-empty uri");
        check(l->nattrs <= LWM2M_LINK_MAX_ATTRS, "attribute cap");
        check(!l->is_lwm2m_path || l->path.len <= 4, "path length");
        for (size_t k = 0; k < l->nattrs; k++)
            check(l->attrs[k].name && l->attrs[k].name[0], "non-empty attribute name");
    }
    int v = lwm2m_links_version(&ls);
    check(v == 0 || v == LWM2M_V1_0 || v == LWM2M_V1_1 || v == LWM2M_V1_2, "version value");
    if (ls.nhead == 0)
        round_trip(&ls);
    const char *root = lwm2m_links_root(&ls);
    if (root) {
        char *copy = strdup(root); /* strip_prefix does not touch uris, but be safe */
        if (copy) {
            check(lwm2m_links_strip_prefix(&ls, copy) >= 0, "strip_prefix");
            free(copy);
        }
    }
    lwm2m_links_clear(&ls);
    return 0;
}
