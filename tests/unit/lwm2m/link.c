/* Unit tests for server/lwm2m/link.c: CoRE link format (RFC 6690) as LwM2M
 * uses it. Each parse case is a row: input, expected code, and the parse
 * result written in a compact form (see dump()):
 *
 *   @name=[value]   head attribute (1.0 Discover form)   @name   valueless
 *   <uri>/a/b       link with its LwM2M path ("/" for the root)
 *   <uri>!          link whose URI is not an LwM2M path
 *   ;name=[value]   attribute of the preceding link          ;name   valueless
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/lwm2m/link.h"

/* ---------------------------------------------------------------- dump */

typedef struct {
    char buf[4096];
    size_t len;
} out_t;

static void put(out_t *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, sizeof o->buf - o->len, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof o->buf - o->len);
    o->len += (size_t)n;
}

static void dump_attr(out_t *o, char mark, const lwm2m_link_attr_t *a)
{
    if (a->value)
        put(o, "%c%s=[%s]", mark, a->name, a->value);
    else
        put(o, "%c%s", mark, a->name);
}

static const char *dump(const lwm2m_links_t *ls, out_t *o)
{
    o->len = 0;
    o->buf[0] = '\0';
    for (size_t i = 0; i < ls->nhead; i++) {
        if (o->len)
            put(o, " ");
        dump_attr(o, '@', &ls->head_attrs[i]);
    }
    for (size_t i = 0; i < ls->n; i++) {
        const lwm2m_link_t *l = &ls->links[i];
        if (o->len)
            put(o, " ");
        put(o, "<%s>", l->uri);
        if (!l->is_lwm2m_path) {
            put(o, "!");
        } else if (l->path.len == 0) {
            put(o, "/");
        } else {
            for (size_t k = 0; k < l->path.len; k++)
                put(o, "/%u", (unsigned)l->path.ids[k]);
        }
        for (size_t k = 0; k < l->nattrs; k++)
            dump_attr(o, ';', &l->attrs[k]);
    }
    return o->buf;
}

/* --------------------------------------------------------------- table */

typedef struct {
    const char *name;
    const char *in;
    int rc;
    int version;      /* lwm2m_links_version on success */
    const char *want; /* dump() on success */
} parse_case_t;

static const parse_case_t parse_cases[] = {
    /* ---- good: LwM2M 1.0 Bootstrap-Discover (CONFORMANCE.md §1) */
    {"1.0 discover, head attribute, no </>",
     "lwm2m=\"1.0\",</0>,</0/1>,</0/2>;ssid=11,</1>,</1/0>;ssid=11,</3>;ver=\"1.0\",</3/0>", 0, LWM2M_V1_0,
     "@lwm2m=[1.0] </0>/0 </0/1>/0/1 </0/2>/0/2;ssid=[11] </1>/1 </1/0>/1/0;ssid=[11] </3>/3;ver=[1.0] </3/0>/3/0"},
    {"1.0 head unquoted", "lwm2m=1.0,</0/1>", 0, LWM2M_V1_0, "@lwm2m=[1.0] </0/1>/0/1"},
    {"1.0 head with ';' separator", "lwm2m=\"1.0\";</1/0>", 0, LWM2M_V1_0, "@lwm2m=[1.0] </1/0>/1/0"},
    {"head only", "lwm2m=\"1.0\"", 0, LWM2M_V1_0, "@lwm2m=[1.0]"},
    {"two head attributes", "lwm2m=\"1.0\", x ,</1>", 0, LWM2M_V1_0, "@lwm2m=[1.0] @x </1>/1"},
    /* ---- good: LwM2M 1.1+ Discover */
    {"1.1 discover with </>",
     "</>;lwm2m=1.1,</0/0>;ssid=101;uri=\"coaps://x:5684\",</0/1>,</1/0>;ssid=101,</3/0>;ver=1.1", 0, LWM2M_V1_1,
     "</>/;lwm2m=[1.1] </0/0>/0/0;ssid=[101];uri=[coaps://x:5684] </0/1>/0/1 </1/0>/1/0;ssid=[101] "
     "</3/0>/3/0;ver=[1.1]"},
    {"1.2 quoted version", "</>;lwm2m=\"1.2\",</0/0>", 0, LWM2M_V1_2, "</>/;lwm2m=[1.2] </0/0>/0/0"},
    {"1.2.1 counts as 1.2", "</>;lwm2m=1.2.1", 0, LWM2M_V1_2, "</>/;lwm2m=[1.2.1]"},
    {"unknown version", "</>;lwm2m=2.0,</1>", 0, 0, "</>/;lwm2m=[2.0] </1>/1"},
    {"version garbage", "</>;lwm2m=1.1x", 0, 0, "</>/;lwm2m=[1.1x]"},
    {"upper-case attribute name", "</>;LwM2M=1.1;RT=\"oma.lwm2m\"", 0, LWM2M_V1_1, "</>/;LwM2M=[1.1];RT=[oma.lwm2m]"},
    {"version on a non-root link is ignored", "</1>;lwm2m=1.1", 0, 0, "</1>/1;lwm2m=[1.1]"},
    {"1.2 discover with dim and attributes", "</3/0>;pmin=10;pmax=60,</3/0/6>;dim=2,</3/0/7>;dim=2;gt=-1.5;st=0.5", 0, 0,
     "</3/0>/3/0;pmin=[10];pmax=[60] </3/0/6>/3/0/6;dim=[2] </3/0/7>/3/0/7;dim=[2];gt=[-1.5];st=[0.5]"},
    {"resource instance link", "</3/0/6/1>", 0, 0, "</3/0/6/1>/3/0/6/1"},
    /* ---- good: Register payloads (CONFORMANCE.md §2 Payload) */
    {"register with root, ct and ver", "</>;rt=\"oma.lwm2m\";ct=11543,</1/0>,</3/0>;ver=\"1.1\",</5>", 0, 0,
     "</>/;rt=[oma.lwm2m];ct=[11543] </1/0>/1/0 </3/0>/3/0;ver=[1.1] </5>/5"},
    {"ct list", "</>;rt=\"oma.lwm2m\";ct=\"60 110 112 11543\",</1/0>", 0, 0,
     "</>/;rt=[oma.lwm2m];ct=[60 110 112 11543] </1/0>/1/0"},
    {"alternate path root", "</lwm2m>;rt=\"oma.lwm2m\",</lwm2m/1/0>,</lwm2m/3/0>", 0, 0,
     "</lwm2m>!;rt=[oma.lwm2m] </lwm2m/1/0>! </lwm2m/3/0>!"},
    {"version on alternate root", "</lwm2m>;rt=\"oma.lwm2m\";lwm2m=1.1", 0, LWM2M_V1_1,
     "</lwm2m>!;rt=[oma.lwm2m];lwm2m=[1.1]"},
    {"plain register without root", "</1/0>,</3/0>,</4/0>", 0, 0, "</1/0>/1/0 </3/0>/3/0 </4/0>/4/0"},
    /* ---- good: lexical corners */
    {"comma and semicolon inside quotes", "</1/0>;title=\"a,b;c\",</2>", 0, 0, "</1/0>/1/0;title=[a,b;c] </2>/2"},
    {"escaped quote and backslash", "</1>;t=\"say \\\"hi\\\" \\\\ ok\"", 0, 0, "</1>/1;t=[say \"hi\" \\ ok]"},
    {"escaped ordinary character", "</1>;t=\"\\a\"", 0, 0, "</1>/1;t=[a]"},
    {"empty quoted value", "</1>;t=\"\"", 0, 0, "</1>/1;t=[]"},
    {"whitespace and newlines between links", " \r\n</1/0> ,\n\t</3/0> ; ver = 1.0 ,\r\n </5>\n", 0, 0,
     "</1/0>/1/0 </3/0>/3/0;ver=[1.0] </5>/5"},
    {"valueless attributes", "</3/0>;obs;Q,</1>;Q", 0, 0, "</3/0>/3/0;obs;Q </1>/1;Q"},
    {"ptoken with = < > : / chars", "</1>;a=x=y;b=<z>;c=coap://h:1/p?q", 0, 0, "</1>/1;a=[x=y];b=[<z>];c=[coap://h:1/p?q]"},
    {"trailing comma tolerated", "</1>,</2>,", 0, 0, "</1>/1 </2>/2"},
    {"relative URI without slash", "<0/1>", 0, 0, "<0/1>/0/1"},
    {"trailing slash in URI", "</3/0/>", 0, 0, "</3/0/>/3/0"},
    {"non-numeric URI kept", "</rd/abc>;ct=40", 0, 0, "</rd/abc>!;ct=[40]"},
    {"id 65535 is not a path", "</65535>", 0, 0, "</65535>!"},
    {"five ids are not a path", "</1/2/3/4/5>", 0, 0, "</1/2/3/4/5>!"},
    {"empty payload", "", 0, 0, ""},
    {"whitespace only", " \r\n\t ", 0, 0, ""},
    {"16 attributes is the limit", "</1>;a;b;c;d;e;f;g;h;i;j;k;l;m;n;o;p", 0, 0,
     "</1>/1;a;b;c;d;e;f;g;h;i;j;k;l;m;n;o;p"},
    {"extended title*", "</1>;title*=utf-8'en'x", 0, 0, "</1>/1;title*=[utf-8'en'x]"},

    /* ---- bad */
    {"unterminated <", "</0/1", LWM2M_ERR_BAD_REQUEST, 0, NULL},
    {"unterminated < after link", "</1>,</0/1;ssid=1", LWM2M_ERR_BAD_REQUEST, 0, NULL},
    {"unterminated quote", "</0/1>;uri=\"coap://x", LWM2M_ERR_BAD_REQUEST, 0, NULL},
    {"backslash at end of quote", "</1>;a=\"x\\", LWM2M_ERR_BAD_REQUEST, 0, NULL},
    {"backslash escaping the closing quote", "</1>;a=\"x\\\"", LWM2M_ERR_BAD_REQUEST, 0, NULL},
    {"empty URI", "<>", LWM2M_ERR_BAD_REQUEST, 0, NULL},
    {"empty URI after link", "</1>,<>", LWM2M_ERR_BAD_REQUEST, 0, NULL},
    {"17 attributes", "</1>;a;b;c;d;e;f;g;h;i;j;k;l;m;n;o;p;q", LWM2M_ERR_BAD_REQUEST, 0, NULL},
    {"17 head attributes", "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,</1>", LWM2M_ERR_BAD_REQUEST, 0, NULL},
    {"garbage between links", "</1> x </2>", LWM2M_ERR_BAD_REQUEST, 0, NULL},
    {"missing comma", "</1></2>", LWM2M_ERR_BAD_REQUEST, 0, NULL},
    {"double comma", "</1>,,</2>", LWM2M_ERR_BAD_REQUEST, 0, NULL},
    {"leading comma", ",</1>", LWM2M_ERR_BAD_REQUEST, 0, NULL},
    {"garbage after quoted value", "</1>;a=\"x\"y", LWM2M_ERR_BAD_REQUEST, 0, NULL},
    {"unquoted value with space", "</1>;ct=60 110", LWM2M_ERR_BAD_REQUEST, 0, NULL},
    {"empty attribute name", "</1>;=3", LWM2M_ERR_BAD_REQUEST, 0, NULL},
    {"empty unquoted value", "</1>;a=", LWM2M_ERR_BAD_REQUEST, 0, NULL},
    {"empty value before next attr", "</1>;a=;b", LWM2M_ERR_BAD_REQUEST, 0, NULL},
    {"dangling semicolon", "</1>;", LWM2M_ERR_BAD_REQUEST, 0, NULL},
    {"space inside URI", "< /1>", LWM2M_ERR_BAD_REQUEST, 0, NULL},
    {"quote inside URI", "</\"1>", LWM2M_ERR_BAD_REQUEST, 0, NULL},
    {"< inside URI", "</1<2>", LWM2M_ERR_BAD_REQUEST, 0, NULL},
    {"head attribute glued to link", "lwm2m=\"1.0\"</0>", LWM2M_ERR_BAD_REQUEST, 0, NULL},
    {"attribute after the links", "</0>,lwm2m=\"1.0\"", LWM2M_ERR_BAD_REQUEST, 0, NULL},
    {"bare text", "hello world", LWM2M_ERR_BAD_REQUEST, 0, NULL},
    {"stray >", ">", LWM2M_ERR_BAD_REQUEST, 0, NULL},
    {"quote in attribute name", "</1>;a\"b=1", LWM2M_ERR_BAD_REQUEST, 0, NULL},
};

static void check_case(const parse_case_t *c, size_t len)
{
    lwm2m_links_t ls;
    lwm2m_links_init(&ls);
    int rc = lwm2m_link_parse((const uint8_t *)c->in, len, &ls);
    if (rc != c->rc)
        fail_msg("case '%s': rc %d, want %d", c->name, rc, c->rc);
    if (rc == 0) {
        out_t o;
        const char *got = dump(&ls, &o);
        if (strcmp(got, c->want) != 0)
            fail_msg("case '%s':\n got  %s\n want %s", c->name, got, c->want);
        int v = lwm2m_links_version(&ls);
        if (v != c->version)
            fail_msg("case '%s': version %d, want %d", c->name, v, c->version);
    } else if (ls.n || ls.nhead || ls.links) {
        fail_msg("case '%s': output touched on failure", c->name);
    }
    lwm2m_links_clear(&ls);
}

static void test_parse_table(void **state)
{
    for (size_t i = 0; i < sizeof parse_cases / sizeof *parse_cases; i++)
        check_case(&parse_cases[i], strlen(parse_cases[i].in));
}

/* ---------------------------------------------------- binary inputs */

static void test_nul_byte(void **state)
{
    static const char in[] = "</1>;a=\"x\0y\",</2>";
    parse_case_t c = {"NUL inside payload", in, LWM2M_ERR_BAD_REQUEST, 0, NULL};
    check_case(&c, sizeof in - 1);
    static const char in2[] = "</1>\0";
    parse_case_t c2 = {"NUL after payload", in2, LWM2M_ERR_BAD_REQUEST, 0, NULL};
    check_case(&c2, sizeof in2 - 1);
}

static void test_too_large(void **state)
{
    /* a valid payload one byte over the limit is refused for its size */
    size_t len = LWM2M_MAX_PAYLOAD + 1;
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    memset(buf, ' ', len);
    memcpy(buf, "</1>", 4);
    lwm2m_links_t ls;
    lwm2m_links_init(&ls);
    assert_int_equal(lwm2m_link_parse(buf, len, &ls), LWM2M_ERR_REQUEST_TOO_LARGE);
    assert_int_equal(ls.n, 0);
    /* exactly at the limit is fine */
    assert_int_equal(lwm2m_link_parse(buf, len - 1, &ls), 0);
    assert_int_equal(ls.n, 1);
    lwm2m_links_clear(&ls);
    free(buf);
}

static void test_null_args(void **state)
{
    lwm2m_links_t ls;
    lwm2m_links_init(&ls);
    assert_int_equal(lwm2m_link_parse(NULL, 0, &ls), 0);
    assert_int_equal(lwm2m_link_parse(NULL, 3, &ls), LWM2M_ERR_BAD_REQUEST);
    assert_int_equal(lwm2m_link_parse((const uint8_t *)"</1>", 4, NULL), LWM2M_ERR_BAD_REQUEST);
    assert_int_equal(lwm2m_links_version(NULL), 0);
    assert_null(lwm2m_link_attr(NULL, "a"));
    lwm2m_links_clear(&ls);
    lwm2m_links_clear(NULL);
}

/* --------------------------------------------- append and atomicity */

static void test_append_and_unchanged_on_failure(void **state)
{
    lwm2m_links_t ls;
    lwm2m_links_init(&ls);
    const char *a = "lwm2m=\"1.0\",</0/1>";
    assert_int_equal(lwm2m_link_parse((const uint8_t *)a, strlen(a), &ls), 0);
    const char *b = "</3/0>;ver=1.1";
    assert_int_equal(lwm2m_link_parse((const uint8_t *)b, strlen(b), &ls), 0);
    out_t o;
    assert_string_equal(dump(&ls, &o), "@lwm2m=[1.0] </0/1>/0/1 </3/0>/3/0;ver=[1.1]");

    /* a failing parse (good links first, then an error) changes nothing */
    const char *bad = "</4/0>,</5/0>;x=\"oops";
    assert_int_equal(lwm2m_link_parse((const uint8_t *)bad, strlen(bad), &ls), LWM2M_ERR_BAD_REQUEST);
    assert_string_equal(dump(&ls, &o), "@lwm2m=[1.0] </0/1>/0/1 </3/0>/3/0;ver=[1.1]");

    /* head attributes accumulate up to the limit, then the parse is refused */
    char head[256] = "";
    for (int i = 0; i < LWM2M_LINK_MAX_ATTRS - 1; i++)
        strcat(head, "h,");
    assert_int_equal(lwm2m_link_parse((const uint8_t *)head, strlen(head), &ls), 0);
    assert_int_equal(ls.nhead, LWM2M_LINK_MAX_ATTRS);
    assert_int_equal(lwm2m_link_parse((const uint8_t *)"z", 1, &ls), LWM2M_ERR_BAD_REQUEST);
    assert_int_equal(ls.nhead, LWM2M_LINK_MAX_ATTRS);
    assert_int_equal(ls.n, 2);
    lwm2m_links_clear(&ls);
    assert_int_equal(ls.n, 0);
    assert_null(ls.links);
}

static void test_attr_lookup(void **state)
{
    lwm2m_links_t ls;
    lwm2m_links_init(&ls);
    const char *in = "</3/0>;obs;ver=\"1.1\";dim=2;ver=2";
    assert_int_equal(lwm2m_link_parse((const uint8_t *)in, strlen(in), &ls), 0);
    assert_int_equal(ls.n, 1);
    const lwm2m_link_t *l = &ls.links[0];
    assert_string_equal(lwm2m_link_attr(l, "obs"), ""); /* valueless */
    assert_null(l->attrs[0].value);
    assert_string_equal(lwm2m_link_attr(l, "ver"), "1.1"); /* first one wins */
    assert_string_equal(lwm2m_link_attr(l, "dim"), "2");
    assert_string_equal(lwm2m_link_attr(l, "DIM"), "2"); /* names ignore case (RFC 8288 B.3) */
    assert_null(lwm2m_link_attr(l, "pmin"));
    lwm2m_links_clear(&ls);
}

/* ------------------------------------------------- alternate path roots */

static void test_strip_prefix(void **state)
{
    lwm2m_links_t ls;
    lwm2m_links_init(&ls);
    const char *in = "</lwm2m>;rt=\"oma.lwm2m\";ct=110,</lwm2m/1/0>,</lwm2m/3/0>;ver=1.1,</lwm2mx/4>,</other/5>";
    assert_int_equal(lwm2m_link_parse((const uint8_t *)in, strlen(in), &ls), 0);
    assert_string_equal(lwm2m_links_root(&ls), "/lwm2m");
    assert_int_equal(lwm2m_links_strip_prefix(&ls, "/lwm2m/"), 3);
    out_t o;
    assert_string_equal(dump(&ls, &o), "</lwm2m>/;rt=[oma.lwm2m];ct=[110] </lwm2m/1/0>/1/0 </lwm2m/3/0>/3/0;ver=[1.1] "
                                       "</lwm2mx/4>! </other/5>!");
    assert_int_equal(lwm2m_links_strip_prefix(&ls, NULL), LWM2M_ERR_BAD_REQUEST);
    lwm2m_links_clear(&ls);

    /* no alternate root: "/" (or none at all) */
    const char *plain = "</>;rt=\"oma.lwm2m\",</1/0>";
    assert_int_equal(lwm2m_link_parse((const uint8_t *)plain, strlen(plain), &ls), 0);
    assert_string_equal(lwm2m_links_root(&ls), "/");
    assert_int_equal(lwm2m_links_strip_prefix(&ls, "/"), 2);
    assert_string_equal(dump(&ls, &o), "</>/;rt=[oma.lwm2m] </1/0>/1/0");
    lwm2m_links_clear(&ls);
    const char *noroot = "</1/0>";
    assert_int_equal(lwm2m_link_parse((const uint8_t *)noroot, strlen(noroot), &ls), 0);
    assert_null(lwm2m_links_root(&ls));
    lwm2m_links_clear(&ls);
}

/* ------------------------------------------------------------- builder */

static void test_builder_round_trip(void **state)
{
    lwm2m_strbuf_t sb = {0};
    assert_int_equal(lwm2m_link_append(&sb, "/", "lwm2m=1.1"), 0);
    assert_int_equal(lwm2m_link_append(&sb, "/0/1", "ssid=1;uri=\"coap://x:5683\""), 0);
    assert_int_equal(lwm2m_link_append(&sb, "/1/0", NULL), 0);
    assert_int_equal(lwm2m_link_append(&sb, "/3/0", ";ver=1.0"), 0);
    assert_int_equal(lwm2m_link_append(&sb, "/5", ""), 0);
    assert_string_equal(sb.buf, "</>;lwm2m=1.1,</0/1>;ssid=1;uri=\"coap://x:5683\",</1/0>,</3/0>;ver=1.0,</5>");
    assert_int_equal(sb.len, strlen(sb.buf));

    lwm2m_links_t ls;
    lwm2m_links_init(&ls);
    assert_int_equal(lwm2m_link_parse((const uint8_t *)sb.buf, sb.len, &ls), 0);
    out_t o;
    assert_string_equal(dump(&ls, &o),
                        "</>/;lwm2m=[1.1] </0/1>/0/1;ssid=[1];uri=[coap://x:5683] </1/0>/1/0 </3/0>/3/0;ver=[1.0] </5>/5");
    assert_int_equal(lwm2m_links_version(&ls), LWM2M_V1_1);
    lwm2m_links_clear(&ls);

    /* growth well past the first allocation */
    for (int i = 0; i < 2000; i++)
        assert_int_equal(lwm2m_link_append(&sb, "/3/0/1", "pmin=1"), 0);
    assert_int_equal(sb.len, strlen(sb.buf));
    assert_int_equal(lwm2m_link_parse((const uint8_t *)sb.buf, sb.len, &ls), 0);
    assert_int_equal(ls.n, 2005);
    lwm2m_links_clear(&ls);
    free(sb.buf);

    assert_int_equal(lwm2m_link_append(NULL, "/1", NULL), LWM2M_ERR_INTERNAL);
    lwm2m_strbuf_t sb2 = {0};
    assert_int_equal(lwm2m_link_append(&sb2, NULL, NULL), LWM2M_ERR_INTERNAL);
    assert_null(sb2.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_null_args),
        cmocka_unit_test(test_append_and_unchanged_on_failure),
        cmocka_unit_test(test_attr_lookup),
        cmocka_unit_test(test_strip_prefix),
        cmocka_unit_test(test_builder_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
