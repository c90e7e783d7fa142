/* Unit tests for server/lwm2m/registry.c: loading OMA object XMLs (built-in
 * and from a directory), refusing unsafe or malformed XML, and resolving task
 * keys. Expected figures for the built-in objects were read from the shipped
 * XMLs in objects/ with an independent XML reader, not from this code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/lwm2m/registry.h"

static lwm2m_registry_t *builtin(void)
{
    lwm2m_registry_t *reg = lwm2m_registry_new();
    assert_non_null(reg);
    char err[256] = "";
    int rc = lwm2m_registry_add_builtin(reg, err, sizeof err);
    if (rc != 0)
        fail_msg("add_builtin: %d %s", rc, err);
    return reg;
}

static int setup(void **state)
{
    *state = builtin();
    return 0;
}

static int teardown(void **state)
{
    lwm2m_registry_t *reg = *state;
    lwm2m_registry_free(&reg);
    assert_null(reg);
    return 0;
}

/* ------------------------------------------------------ built-in objects */

typedef struct {
    uint16_t id;
    const char *name;
    const char *version;
    bool multiple, mandatory;
    size_t nres;
    uint16_t first, last;
} obj_case_t;

static const obj_case_t builtin_objects[] = {
    {0, "LWM2M Security", "1.2", true, true, 31, 0, 30},
    {1, "LwM2M Server", "1.2", true, true, 28, 0, 27},
    {2, "LwM2M Access Control", "1.1", true, false, 4, 0, 3},
    {3, "Device", "1.2", false, true, 23, 0, 22},
    {4, "Connectivity Monitoring", "1.3", false, false, 14, 0, 13},
    {5, "Firmware Update", "1.2", false, false, 14, 0, 14},
    {6, "Location", "1.0", false, false, 7, 0, 6},
    {7, "Connectivity Statistics", "1.0", false, false, 9, 0, 8},
    {9, "LWM2M Software Management", "1.0", true, false, 19, 0, 18},
    {10, "LWM2M Cellular Connectivity", "1.1", false, false, 14, 0, 14},
    {11, "LWM2M APN Connection Profile", "1.1", true, false, 34, 0, 33},
    {21, "LWM2M OSCORE", "2.0", true, false, 7, 0, 6},
};

static void test_builtin_objects(void **state)
{
    const lwm2m_registry_t *reg = *state;
    size_t n = sizeof builtin_objects / sizeof *builtin_objects;
    assert_int_equal(lwm2m_registry_count(reg), n);
    for (size_t i = 0; i < n; i++) {
        const obj_case_t *c = &builtin_objects[i];
        const lwm2m_objdef_t *o = lwm2m_registry_object(reg, c->id);
        if (!o)
            fail_msg("object %u missing", c->id);
        assert_ptr_equal(lwm2m_registry_object_at(reg, i), o); /* ordered by id */
        assert_int_equal(o->id, c->id);
        assert_string_equal(o->name, c->name);
        assert_string_equal(o->version, c->version);
        if (o->multiple != c->multiple || o->mandatory != c->mandatory)
            fail_msg("object %u: multiple/mandatory %d/%d", c->id, o->multiple, o->mandatory);
        if (o->nres != c->nres)
            fail_msg("object %u: %zu resources, want %zu", c->id, o->nres, c->nres);
        assert_int_equal(o->res[0].id, c->first);
        assert_int_equal(o->res[o->nres - 1].id, c->last);
        for (size_t k = 1; k < o->nres; k++)
            assert_true(o->res[k - 1].id < o->res[k].id);
        assert_ptr_equal(lwm2m_registry_object_by_name(reg, c->name), o);
        char urn[64];
        snprintf(urn, sizeof urn, "urn:oma:lwm2m:oma:%u", c->id);
        assert_true(strncmp(o->urn, urn, strlen(urn)) == 0);
    }
    assert_null(lwm2m_registry_object(reg, 8));
    assert_null(lwm2m_registry_object(reg, 65534));
    assert_null(lwm2m_registry_object_at(reg, n));

    /* object 0 (1.2): resources 0..30, every one present */
    const lwm2m_objdef_t *sec = lwm2m_registry_object(reg, 0);
    for (uint16_t r = 0; r <= 30; r++)
        if (!lwm2m_objdef_resource(sec, r))
            fail_msg("/0 resource %u missing", r);
    assert_null(lwm2m_objdef_resource(sec, 31));
}

typedef struct {
    uint16_t oid, rid;
    const char *name;
    lwm2m_type_t type;
    unsigned ops;
    bool multiple, mandatory;
    const char *units;
    const char *range;
} res_case_t;

static const res_case_t builtin_resources[] = {
    /* /0 is bootstrap-only: empty Operations */
    {0, 0, "LWM2M Server URI", LWM2M_T_STRING, 0, false, true, "", "0..255"}, /* "LWM2M  Server URI" in the file */
    {0, 1, "Bootstrap-Server", LWM2M_T_BOOLEAN, 0, false, true, "", ""},
    {0, 2, "Security Mode", LWM2M_T_INTEGER, 0, false, true, "", "0..4"},
    {0, 3, "Public Key or Identity", LWM2M_T_OPAQUE, 0, false, true, "", ""},
    {0, 5, "Secret Key", LWM2M_T_OPAQUE, 0, false, true, "", ""},
    {0, 10, "Short Server ID", LWM2M_T_INTEGER, 0, false, false, "", "1..65534"},
    {0, 12, "Bootstrap-Server Account Timeout", LWM2M_T_INTEGER, 0, false, false, "s", ""},
    {0, 22, "TLS 1.3 Features To Use by Client", LWM2M_T_UNSIGNED, 0, false, false, "", "0..65535"},
    {1, 0, "Short Server ID", LWM2M_T_INTEGER, LWM2M_OP_R, false, true, "", "1..65534"},
    {1, 1, "Lifetime", LWM2M_T_INTEGER, LWM2M_OP_R | LWM2M_OP_W, false, true, "s", ""},
    {1, 7, "Binding", LWM2M_T_STRING, LWM2M_OP_R | LWM2M_OP_W, false, true, "", ""},
    {1, 8, "Registration Update Trigger", LWM2M_T_NONE, LWM2M_OP_E, false, true, "", ""},
    {1, 10, "APN Link", LWM2M_T_OBJLNK, LWM2M_OP_R | LWM2M_OP_W, false, false, "", ""},
    {3, 0, "Manufacturer", LWM2M_T_STRING, LWM2M_OP_R, false, false, "", ""},
    {3, 4, "Reboot", LWM2M_T_NONE, LWM2M_OP_E, false, true, "", ""},
    {3, 6, "Available Power Sources", LWM2M_T_INTEGER, LWM2M_OP_R, true, false, "", "0..7"},
    {3, 9, "Battery Level", LWM2M_T_INTEGER, LWM2M_OP_R, false, false, "/100", "0..100"},
    {3, 11, "Error Code", LWM2M_T_INTEGER, LWM2M_OP_R, true, true, "", "0..32"},
    {3, 13, "Current Time", LWM2M_T_TIME, LWM2M_OP_R | LWM2M_OP_W, false, false, "", ""},
    {3, 22, "ExtDevInfo", LWM2M_T_OBJLNK, LWM2M_OP_R, true, false, "", ""},
    {4, 1, "Available Network Bearer", LWM2M_T_INTEGER, LWM2M_OP_R, true, true, "", "0..50"},
    {5, 0, "Package", LWM2M_T_OPAQUE, LWM2M_OP_W, false, true, "", ""},
    {5, 2, "Update", LWM2M_T_NONE, LWM2M_OP_E, false, true, "", ""},
    {7, 6, "Start", LWM2M_T_NONE, LWM2M_OP_E, false, true, "", ""},
    {7, 7, "Stop", LWM2M_T_NONE, LWM2M_OP_E, false, true, "", ""},
    {7, 8, "Collection Period", LWM2M_T_INTEGER, LWM2M_OP_R | LWM2M_OP_W, false, false, "s", ""},
};

static void test_builtin_resources(void **state)
{
    const lwm2m_registry_t *reg = *state;
    for (size_t i = 0; i < sizeof builtin_resources / sizeof *builtin_resources; i++) {
        const res_case_t *c = &builtin_resources[i];
        const lwm2m_objdef_t *o = lwm2m_registry_object(reg, c->oid);
        const lwm2m_resdef_t *r = lwm2m_objdef_resource(o, c->rid);
        if (!r)
            fail_msg("/%u/%u missing", c->oid, c->rid);
        if (strcmp(r->name, c->name) != 0 || r->type != c->type || r->ops != c->ops || r->multiple != c->multiple ||
            r->mandatory != c->mandatory || strcmp(r->units, c->units) != 0 || strcmp(r->range, c->range) != 0)
            fail_msg("/%u/%u: got '%s' type %d ops %u multi %d mand %d units '%s' range '%s'", c->oid, c->rid,
                     r->name, r->type, r->ops, r->multiple, r->mandatory, r->units, r->range);
        assert_ptr_equal(lwm2m_objdef_resource_by_name(o, c->name), r);
        assert_int_equal(lwm2m_registry_type(reg, c->oid, c->rid), (int)c->type);
    }
    /* every /0 resource is bootstrap-only */
    const lwm2m_objdef_t *sec = lwm2m_registry_object(reg, 0);
    for (size_t k = 0; k < sec->nres; k++)
        assert_int_equal(sec->res[k].ops, 0);
    assert_int_equal(lwm2m_registry_type(reg, 3, 999), -1);
    assert_int_equal(lwm2m_registry_type(reg, 8, 0), -1);
    assert_null(lwm2m_objdef_resource(NULL, 0));
    assert_null(lwm2m_objdef_resource_by_name(NULL, "x"));
    assert_null(lwm2m_registry_object_by_name(reg, "No Such Object"));
    /* names match ignoring case and repeated spaces */
    assert_ptr_equal(lwm2m_registry_object_by_name(reg, "  connectivity   STATISTICS "), lwm2m_registry_object(reg, 7));
    assert_ptr_equal(lwm2m_objdef_resource_by_name(sec, "lwm2m server uri"), lwm2m_objdef_resource(sec, 0));
}

/* ------------------------------------------------------------ XML table */

#define HEAD "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
#define ITEM(id, name, ops, multi, type)                                                                    \
    "<Item ID=\"" id "\"><Name>" name "</Name><Operations>" ops "</Operations><MultipleInstances>" multi    \
    "</MultipleInstances><Mandatory>Optional</Mandatory><Type>" type "</Type><RangeEnumeration/><Units/>" \
    "</Item>"
#define OBJ(id, name, items)                                                                            \
    "<Object ObjectType=\"MODefinition\"><Name>" name "</Name><ObjectID>" id "</ObjectID>"             \
    "<ObjectURN>urn:oma:lwm2m:x:" id "</ObjectURN><MultipleInstances>Multiple</MultipleInstances>"     \
    "<Mandatory>Optional</Mandatory><Resources>" items "</Resources></Object>"
#define DOC(objs) HEAD "<LWM2M>" objs "</LWM2M>"
#define GOOD_OBJ OBJ("40000", "Test Object", ITEM("0", "Alpha", "RW", "Single", "String"))

typedef struct {
    const char *name;
    const char *xml;
    int rc;
    size_t count;       /* objects added on success */
    const char *errsub; /* substring of the message on failure */
} xml_case_t;

static const xml_case_t xml_cases[] = {
    {"minimal object", DOC(GOOD_OBJ), 0, 1, NULL},
    {"two objects in one document",
     DOC(GOOD_OBJ OBJ("40001", "Other", ITEM("1", "B", "R", "Multiple", "Integer") ITEM("0", "A", "E", "Single", ""))),
     0, 2, NULL},
    {"object without resources", DOC(OBJ("40002", "Empty", "")), 0, 1, NULL},
    {"every type name",
     DOC(OBJ("40003", "Types",
             ITEM("0", "s", "R", "Single", "String") ITEM("1", "i", "R", "Single", "Integer")
                 ITEM("2", "u", "R", "Single", "Unsigned Integer") ITEM("3", "f", "R", "Single", "Float")
                     ITEM("4", "b", "R", "Single", "Boolean") ITEM("5", "o", "R", "Single", "Opaque")
                         ITEM("6", "t", "R", "Single", "Time") ITEM("7", "l", "R", "Single", "Objlnk")
                             ITEM("8", "c", "R", "Single", "Corelnk") ITEM("9", "e", "E", "Single", ""))),
     0, 1, NULL},
    {"CDATA, comments and whitespace", HEAD "<!-- c --><LWM2M>\n <Object ObjectType=\"MODefinition\">\n"
                                          "  <Name><![CDATA[ Cdata  Object ]]></Name><ObjectID> 40004 </ObjectID>"
                                          "<Resources><Item ID=\"0\"><Name>\n  X  \n</Name><Type>\n Integer\n</Type>"
                                          "</Item></Resources></Object></LWM2M>",
     0, 1, NULL},
    {"no XML declaration, no ObjectType", "<LWM2M><Object><Name>N</Name><ObjectID>40005</ObjectID></Object></LWM2M>", 0, 1,
     NULL},

    /* ---- refused: DOCTYPE and entities (never fetched or expanded) */
    {"internal entity", HEAD "<!DOCTYPE LWM2M [<!ENTITY x \"Injected\">]>" "<LWM2M>" OBJ("40010", "&x;", "") "</LWM2M>",
     LWM2M_ERR_BAD_REQUEST, 0, "DOCTYPE"},
    {"external entity (file)",
     HEAD "<!DOCTYPE LWM2M [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>" "<LWM2M>" OBJ("40011", "&xxe;", "") "</LWM2M>",
     LWM2M_ERR_BAD_REQUEST, 0, "DOCTYPE"},
    {"external entity (http)",
     HEAD "<!DOCTYPE LWM2M [<!ENTITY xxe SYSTEM \"http://127.0.0.1:9/x\">]>" "<LWM2M>" OBJ("40012", "&xxe;", "") "</LWM2M>",
     LWM2M_ERR_BAD_REQUEST, 0, "DOCTYPE"},
    {"external DTD", HEAD "<!DOCTYPE LWM2M SYSTEM \"http://127.0.0.1:9/lwm2m.dtd\"><LWM2M>" GOOD_OBJ "</LWM2M>",
     LWM2M_ERR_BAD_REQUEST, 0, "DOCTYPE"},
    {"parameter entity",
     HEAD "<!DOCTYPE LWM2M [<!ENTITY % p SYSTEM \"file:///etc/hostname\"> %p;]><LWM2M>" GOOD_OBJ "</LWM2M>",
     LWM2M_ERR_BAD_REQUEST, 0, "DOCTYPE"},
    {"billion laughs",
     HEAD "<!DOCTYPE LWM2M [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">"
          "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\"><!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">]>"
          "<LWM2M>" OBJ("40013", "&d;", "") "</LWM2M>",
     LWM2M_ERR_BAD_REQUEST, 0, "DOCTYPE"},
    {"bare DOCTYPE", HEAD "<!DOCTYPE LWM2M><LWM2M>" GOOD_OBJ "</LWM2M>", LWM2M_ERR_BAD_REQUEST, 0, "DOCTYPE"},
    {"undeclared entity", DOC(OBJ("40014", "&xxe;", "")), LWM2M_ERR_BAD_REQUEST, 0, "malformed XML"},

    /* ---- refused: malformed XML */
    {"unclosed element", HEAD "<LWM2M><Object>", LWM2M_ERR_BAD_REQUEST, 0, "line 2: malformed XML"},
    {"mismatched tag", "<LWM2M>\n<Object></Objet></LWM2M>", LWM2M_ERR_BAD_REQUEST, 0, "line 2: malformed XML"},
    {"not XML", "hello", LWM2M_ERR_BAD_REQUEST, 0, "malformed XML"},
    {"two roots", "<LWM2M/><LWM2M/>", LWM2M_ERR_BAD_REQUEST, 0, "malformed XML"},
    {"bad character reference", "<LWM2M>&#0;</LWM2M>", LWM2M_ERR_BAD_REQUEST, 0, "malformed XML"},

    /* ---- refused: not an object definition */
    {"wrong root", HEAD "<Objects>" GOOD_OBJ "</Objects>", LWM2M_ERR_BAD_REQUEST, 0, "root element is 'Objects'"},
    {"no Object", DOC(""), LWM2M_ERR_BAD_REQUEST, 0, "no Object"},
    {"other ObjectType", DOC("<Object ObjectType=\"X\"><Name>N</Name><ObjectID>1</ObjectID></Object>"),
     LWM2M_ERR_BAD_REQUEST, 0, "MODefinition"},
    {"missing ObjectID", DOC("<Object><Name>N</Name></Object>"), LWM2M_ERR_BAD_REQUEST, 0, "ObjectID"},
    {"non-numeric ObjectID", DOC(OBJ("abc", "N", "")), LWM2M_ERR_BAD_REQUEST, 0, "ObjectID"},
    {"ObjectID 65535", DOC(OBJ("65535", "N", "")), LWM2M_ERR_BAD_REQUEST, 0, "ObjectID"},
    {"negative ObjectID", DOC(OBJ("-1", "N", "")), LWM2M_ERR_BAD_REQUEST, 0, "ObjectID"},
    {"missing object Name", DOC("<Object><ObjectID>40020</ObjectID></Object>"), LWM2M_ERR_BAD_REQUEST, 0,
     "object 40020 has no Name"},
    {"bad object MultipleInstances",
     DOC("<Object><Name>N</Name><ObjectID>40021</ObjectID><MultipleInstances>Many</MultipleInstances></Object>"),
     LWM2M_ERR_BAD_REQUEST, 0, "MultipleInstances 'Many'"},
    {"bad object Mandatory",
     DOC("<Object><Name>N</Name><ObjectID>40022</ObjectID><Mandatory>Yes</Mandatory></Object>"), LWM2M_ERR_BAD_REQUEST,
     0, "Mandatory 'Yes'"},
    {"Item without ID", DOC(OBJ("40023", "N", "<Item><Name>A</Name></Item>")), LWM2M_ERR_BAD_REQUEST, 0, "Item"},
    {"Item ID out of range", DOC(OBJ("40024", "N", ITEM("70000", "A", "R", "Single", "String"))),
     LWM2M_ERR_BAD_REQUEST, 0, "Item"},
    {"duplicate Item ID",
     DOC(OBJ("40025", "N", ITEM("3", "A", "R", "Single", "String") ITEM("3", "B", "R", "Single", "String"))),
     LWM2M_ERR_BAD_REQUEST, 0, "resource 3 twice"},
    {"Item without Name", DOC(OBJ("40026", "N", ITEM("0", "", "R", "Single", "String"))), LWM2M_ERR_BAD_REQUEST, 0,
     "resource 0 has no Name"},
    {"unknown Type", DOC(OBJ("40027", "N", ITEM("0", "A", "R", "Single", "Strng"))), LWM2M_ERR_BAD_REQUEST, 0,
     "unknown Type 'Strng'"},
    {"bad Operations", DOC(OBJ("40028", "N", ITEM("0", "A", "RX", "Single", "String"))), LWM2M_ERR_BAD_REQUEST, 0,
     "Operations 'RX'"},
    {"repeated Operations letter", DOC(OBJ("40029", "N", ITEM("0", "A", "RR", "Single", "String"))),
     LWM2M_ERR_BAD_REQUEST, 0, "Operations"},
    {"bad resource MultipleInstances", DOC(OBJ("40030", "N", ITEM("0", "A", "R", "Some", "String"))),
     LWM2M_ERR_BAD_REQUEST, 0, "MultipleInstances 'Some'"},
    {"good object then a bad one", DOC(GOOD_OBJ OBJ("40031", "N", ITEM("0", "A", "R", "Single", "Nope"))),
     LWM2M_ERR_BAD_REQUEST, 0, "Nope"},
};

static void test_xml_table(void **state)
{
    for (size_t i = 0; i < sizeof xml_cases / sizeof *xml_cases; i++) {
        const xml_case_t *c = &xml_cases[i];
        lwm2m_registry_t *reg = lwm2m_registry_new();
        char err[512] = "";
        int rc = lwm2m_registry_add_xml(reg, c->xml, strlen(c->xml), err, sizeof err);
        if (rc != c->rc)
            fail_msg("case '%s': rc %d (%s), want %d", c->name, rc, err, c->rc);
        if (lwm2m_registry_count(reg) != c->count)
            fail_msg("case '%s': %zu objects, want %zu", c->name, lwm2m_registry_count(reg), c->count);
        if (c->errsub && !strstr(err, c->errsub))
            fail_msg("case '%s': message '%s' lacks '%s'", c->name, err, c->errsub);
        if (rc == 0 && strstr(c->xml, "Injected"))
            fail_msg("case '%s': entity accepted", c->name);
        lwm2m_registry_free(&reg);
    }
}

static void test_xml_details(void **state)
{
    lwm2m_registry_t *reg = lwm2m_registry_new();
    char err[256];
    const char *x = xml_cases[3].xml; /* every type name */
    assert_int_equal(lwm2m_registry_add_xml(reg, x, strlen(x), err, sizeof err), 0);
    static const lwm2m_type_t want[] = {LWM2M_T_STRING, LWM2M_T_INTEGER, LWM2M_T_UNSIGNED, LWM2M_T_FLOAT,
                                        LWM2M_T_BOOLEAN, LWM2M_T_OPAQUE, LWM2M_T_TIME, LWM2M_T_OBJLNK,
                                        LWM2M_T_CORELNK, LWM2M_T_NONE};
    for (uint16_t r = 0; r < 10; r++)
        assert_int_equal(lwm2m_registry_type(reg, 40003, r), (int)want[r]);
    const lwm2m_objdef_t *o = lwm2m_registry_object(reg, 40003);
    assert_string_equal(o->version, "1.0"); /* ObjectVersion absent */
    assert_string_equal(o->urn, "urn:oma:lwm2m:x:40003");
    assert_true(o->multiple);
    assert_false(o->mandatory);

    x = xml_cases[4].xml; /* CDATA and whitespace */
    assert_int_equal(lwm2m_registry_add_xml(reg, x, strlen(x), err, sizeof err), 0);
    o = lwm2m_registry_object(reg, 40004);
    assert_string_equal(o->name, "Cdata Object");
    assert_string_equal(o->urn, "");
    assert_false(o->multiple);
    assert_string_equal(o->res[0].name, "X");
    assert_int_equal(o->res[0].type, LWM2M_T_INTEGER);
    assert_int_equal(o->res[0].ops, 0);

    x = xml_cases[1].xml; /* two objects, resources out of order */
    assert_int_equal(lwm2m_registry_add_xml(reg, x, strlen(x), err, sizeof err), 0);
    o = lwm2m_registry_object(reg, 40001);
    assert_int_equal(o->nres, 2);
    assert_int_equal(o->res[0].id, 0);
    assert_string_equal(o->res[0].name, "A");
    assert_int_equal(o->res[0].ops, LWM2M_OP_E);
    assert_true(o->res[1].multiple);
    assert_int_equal(lwm2m_registry_count(reg), 4);
    lwm2m_registry_free(&reg);
    lwm2m_registry_free(&reg); /* idempotent */
    lwm2m_registry_free(NULL);
}

static void test_xml_limits(void **state)
{
    lwm2m_registry_t *reg = lwm2m_registry_new();
    char err[256] = "";
    /* over 4 MiB: refused before parsing */
    size_t big = 4u * 1024 * 1024 + 1;
    char *buf = malloc(big);
    assert_non_null(buf);
    memset(buf, ' ', big);
    const char *doc = DOC(GOOD_OBJ);
    memcpy(buf, doc, strlen(doc));
    assert_int_equal(lwm2m_registry_add_xml(reg, buf, big, err, sizeof err), LWM2M_ERR_BAD_REQUEST);
    assert_non_null(strstr(err, "too large"));
    /* the same document at exactly 4 MiB loads */
    assert_int_equal(lwm2m_registry_add_xml(reg, buf, big - 1, err, sizeof err), 0);
    free(buf);
    assert_int_equal(lwm2m_registry_count(reg), 1);

    assert_int_equal(lwm2m_registry_add_xml(reg, "", 0, err, sizeof err), LWM2M_ERR_BAD_REQUEST);
    assert_int_equal(lwm2m_registry_add_xml(reg, NULL, 0, err, sizeof err), LWM2M_ERR_BAD_REQUEST);
    assert_int_equal(lwm2m_registry_add_xml(NULL, doc, strlen(doc), err, sizeof err), LWM2M_ERR_BAD_REQUEST);
    /* a NULL or tiny message buffer is fine */
    assert_int_equal(lwm2m_registry_add_xml(reg, "x", 1, NULL, 0), LWM2M_ERR_BAD_REQUEST);
    char tiny[4] = "abc";
    assert_int_equal(lwm2m_registry_add_xml(reg, "x", 1, tiny, sizeof tiny), LWM2M_ERR_BAD_REQUEST);
    assert_int_equal(strlen(tiny), 3);

    /* UTF-16 with a BOM: the DOCTYPE is still seen (the refusal does not rest
     * on a byte scan) */
    const char *ascii = "<?xml version=\"1.0\" encoding=\"UTF-16\"?><!DOCTYPE LWM2M [<!ENTITY x \"y\">]>"
                        "<LWM2M><Object><Name>&x;</Name><ObjectID>40040</ObjectID></Object></LWM2M>";
    size_t n = strlen(ascii);
    unsigned char *u16 = malloc(2 * n + 2);
    assert_non_null(u16);
    u16[0] = 0xff;
    u16[1] = 0xfe;
    for (size_t i = 0; i < n; i++) {
        u16[2 + 2 * i] = (unsigned char)ascii[i];
        u16[3 + 2 * i] = 0;
    }
    assert_int_equal(lwm2m_registry_add_xml(reg, (const char *)u16, 2 * n + 2, err, sizeof err), LWM2M_ERR_BAD_REQUEST);
    assert_non_null(strstr(err, "DOCTYPE"));
    free(u16);
    assert_int_equal(lwm2m_registry_count(reg), 1);
    lwm2m_registry_free(&reg);
}

static void test_replace_and_atomic(void **state)
{
    lwm2m_registry_t *reg = builtin();
    char err[256];
    /* a later definition of an id replaces the earlier one */
    const char *dev = DOC(OBJ("3", "My Device", ITEM("0", "Maker", "R", "Single", "String")));
    assert_int_equal(lwm2m_registry_add_xml(reg, dev, strlen(dev), err, sizeof err), 0);
    assert_int_equal(lwm2m_registry_count(reg), 12);
    const lwm2m_objdef_t *o = lwm2m_registry_object(reg, 3);
    assert_string_equal(o->name, "My Device");
    assert_int_equal(o->nres, 1);
    assert_null(lwm2m_registry_object_by_name(reg, "Device"));

    /* a document whose second object is bad adds nothing, not even the first */
    const char *bad = DOC(OBJ("50000", "New", "") OBJ("7", "Clobber", "") OBJ("50001", "Bad", ITEM("0", "A", "Q", "Single", "")));
    assert_int_equal(lwm2m_registry_add_xml(reg, bad, strlen(bad), err, sizeof err), LWM2M_ERR_BAD_REQUEST);
    assert_int_equal(lwm2m_registry_count(reg), 12);
    assert_null(lwm2m_registry_object(reg, 50000));
    assert_string_equal(lwm2m_registry_object(reg, 7)->name, "Connectivity Statistics");

    /* loading the built-ins again restores object 3 */
    assert_int_equal(lwm2m_registry_add_builtin(reg, err, sizeof err), 0);
    assert_int_equal(lwm2m_registry_count(reg), 12);
    assert_int_equal(lwm2m_registry_object(reg, 3)->nres, 23);
    lwm2m_registry_free(&reg);
    assert_int_equal(lwm2m_registry_add_builtin(NULL, err, sizeof err), LWM2M_ERR_BAD_REQUEST);
}

/* ------------------------------------------------------------ directory */

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void remove_file(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
}

static void test_add_dir(void **state)
{
    char dir[] = "/tmp/lwdm-registry-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char err[512] = "";
    lwm2m_registry_t *reg = builtin();

    /* empty directory: nothing added, no error */
    assert_int_equal(lwm2m_registry_add_dir(reg, dir, err, sizeof err), 0);
    assert_int_equal(lwm2m_registry_count(reg), 12);

    write_file(dir, "a.xml", DOC(OBJ("40100", "Dir A", ITEM("0", "One", "R", "Single", "Integer"))));
    write_file(dir, "b.XML", DOC(OBJ("40101", "Dir B", "")));
    write_file(dir, "c.xml", DOC(OBJ("40100", "Dir A2", ""))); /* loads after a.xml: wins */
    write_file(dir, "notes.txt", "not xml");
    write_file(dir, ".hidden.xml", "garbage");
    assert_int_equal(lwm2m_registry_add_dir(reg, dir, err, sizeof err), 0);
    assert_int_equal(lwm2m_registry_count(reg), 14);
    assert_string_equal(lwm2m_registry_object(reg, 40100)->name, "Dir A2");
    assert_non_null(lwm2m_registry_object(reg, 40101));

    /* one bad file refuses the whole directory, naming the file */
    write_file(dir, "d.xml", HEAD "<!DOCTYPE LWM2M SYSTEM \"x.dtd\"><LWM2M/>");
    write_file(dir, "a2.xml", DOC(OBJ("40102", "Dir C", "")));
    assert_int_equal(lwm2m_registry_add_dir(reg, dir, err, sizeof err), LWM2M_ERR_BAD_REQUEST);
    assert_non_null(strstr(err, "d.xml: DOCTYPE"));
    assert_null(lwm2m_registry_object(reg, 40102));
    assert_int_equal(lwm2m_registry_count(reg), 14);

    /* a directory named *.xml is not a regular file */
    remove_file(dir, "d.xml");
    char sub[600];
    snprintf(sub, sizeof sub, "%s/sub.xml", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_true(lwm2m_registry_add_dir(reg, dir, err, sizeof err) < 0);
    assert_non_null(strstr(err, "sub.xml"));
    rmdir(sub);
    assert_int_equal(lwm2m_registry_add_dir(reg, dir, err, sizeof err), 0);
    assert_non_null(lwm2m_registry_object(reg, 40102));

    remove_file(dir, "a.xml");
    remove_file(dir, "a2.xml");
    remove_file(dir, "b.XML");
    remove_file(dir, "c.xml");
    remove_file(dir, "notes.txt");
    remove_file(dir, ".hidden.xml");
    assert_int_equal(rmdir(dir), 0);

    assert_int_equal(lwm2m_registry_add_dir(reg, dir, err, sizeof err), LWM2M_ERR_NOT_FOUND);
    assert_non_null(strstr(err, "cannot open directory"));
    assert_int_equal(lwm2m_registry_add_dir(reg, NULL, err, sizeof err), LWM2M_ERR_BAD_REQUEST);
    lwm2m_registry_free(&reg);
}

/* The shipped objects/ directory loads the same as the embedded copy. */
static void test_add_dir_objects(void **state)
{
    const char *src = getenv("LWDM_SOURCE_DIR");
    if (!src)
        skip();
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/objects", src);
    lwm2m_registry_t *reg = lwm2m_registry_new();
    char err[256] = "";
    if (lwm2m_registry_add_dir(reg, dir, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(lwm2m_registry_count(reg), sizeof builtin_objects / sizeof *builtin_objects);
    assert_int_equal(lwm2m_registry_object(reg, 0)->nres, 31);
    lwm2m_registry_free(&reg);
}

/* ----------------------------------------------------------------- keys */

#define NO_RES NULL

typedef struct {
    const char *key;
    int rc;
    int len; /* path length */
    unsigned ids[4];
    const char *res; /* expected resource name; NULL: no definition */
    const char *err; /* exact message, or a substring when it starts with '~' */
} key_case_t;

static const key_case_t key_cases[] = {
    /* ---- every form for /0/2/0 */
    {"/0/2/0", 0, 3, {0, 2, 0}, "LWM2M Server URI", NULL},
    {"0/2/0", 0, 3, {0, 2, 0}, "LWM2M Server URI", NULL},
    {"0.2.0", 0, 3, {0, 2, 0}, "LWM2M Server URI", NULL},
    {"/0/2/0/", 0, 3, {0, 2, 0}, "LWM2M Server URI", NULL},
    {"LwM2M Security.2.LwM2M Server URI", 0, 3, {0, 2, 0}, "LWM2M Server URI", NULL},
    {"LwM2M Security.2.0", 0, 3, {0, 2, 0}, "LWM2M Server URI", NULL},
    {"0.2.LwM2M Server URI", 0, 3, {0, 2, 0}, "LWM2M Server URI", NULL},
    {"lwm2m   security.2.LWM2M  SERVER   uri", 0, 3, {0, 2, 0}, "LWM2M Server URI", NULL},
    {"  LwM2M Security . 2 . LwM2M Server URI  ", 0, 3, {0, 2, 0}, "LWM2M Server URI", NULL},
    {"/LwM2M Security/2/LwM2M Server URI", 0, 3, {0, 2, 0}, "LWM2M Server URI", NULL},
    /* ---- the "Device." prefix */
    {"Device.Connectivity Statistics.0.Collection Period", 0, 3, {7, 0, 8}, "Collection Period", NULL},
    {"Device.Connectivity Statistics.0.Start", 0, 3, {7, 0, 6}, "Start", NULL},
    {"device.connectivity statistics.0.collection period", 0, 3, {7, 0, 8}, "Collection Period", NULL},
    {"Connectivity Statistics.0.Collection Period", 0, 3, {7, 0, 8}, "Collection Period", NULL},
    {"Device.0.Manufacturer", 0, 3, {3, 0, 0}, "Manufacturer", NULL},
    {"Device.0.Reboot", 0, 3, {3, 0, 4}, "Reboot", NULL},
    {"Device.Device.0.Manufacturer", 0, 3, {3, 0, 0}, "Manufacturer", NULL},
    {"Device.LwM2M Server.1.Lifetime", 0, 3, {1, 1, 1}, "Lifetime", NULL},
    {"Device.7.0.8", 0, 4, {3, 7, 0, 8}, "Manufacturer", NULL}, /* "Device" is object 3 first */
    /* ---- resource instances, shorter paths */
    {"3.0.6.1", 0, 4, {3, 0, 6, 1}, "Available Power Sources", NULL},
    {"Device.0.Available Power Sources.1", 0, 4, {3, 0, 6, 1}, "Available Power Sources", NULL},
    {"/3/0/11/0", 0, 4, {3, 0, 11, 0}, "Error Code", NULL},
    {"/3/0", 0, 2, {3, 0}, NO_RES, NULL},
    {"Device.0", 0, 2, {3, 0}, NO_RES, NULL},
    {"LwM2M Server", 0, 1, {1}, NO_RES, NULL},
    {"/3", 0, 1, {3}, NO_RES, NULL},
    /* ---- names holding the separator */
    {"LwM2M Security.0.TLS 1.3 Features To Use by Client", 0, 3, {0, 0, 22}, "TLS 1.3 Features To Use by Client", NULL},
    {"LwM2M Security.0.DTLS/TLS Ciphersuite", 0, 3, {0, 0, 16}, "DTLS/TLS Ciphersuite", NULL},
    {"LwM2M Security.0.DTLS/TLS Ciphersuite.2", 0, 4, {0, 0, 16, 2}, "DTLS/TLS Ciphersuite", NULL},
    /* ---- unknown ids by number are allowed */
    {"/1234/0/5", 0, 3, {1234, 0, 5}, NO_RES, NULL},
    {"1234.0.5.6", 0, 4, {1234, 0, 5, 6}, NO_RES, NULL},
    {"/3/0/999", 0, 3, {3, 0, 999}, NO_RES, NULL},
    {"Device.0.999", 0, 3, {3, 0, 999}, NO_RES, NULL},
    {"65534.65534.65534.65534", 0, 4, {65534, 65534, 65534, 65534}, NO_RES, NULL},

    /* ---- misspellings, with the closest name */
    {"Device.Connectivity Statistics.0.Colection Period", LWM2M_ERR_NOT_FOUND, 0, {0}, NULL,
     "unknown resource 'Colection Period' in object 7 (Connectivity Statistics); did you mean 'Collection Period'?"},
    {"Device.Conectivity Statistics.0.Collection Period", LWM2M_ERR_NOT_FOUND, 0, {0}, NULL,
     "unknown object 'Conectivity Statistics'; did you mean 'Connectivity Statistics'?"},
    {"LwM2M Securty.2.Security Mode", LWM2M_ERR_NOT_FOUND, 0, {0}, NULL,
     "unknown object 'LwM2M Securty'; did you mean 'LWM2M Security'?"},
    {"LwM2M Security.2.Secret Kye", LWM2M_ERR_NOT_FOUND, 0, {0}, NULL,
     "unknown resource 'Secret Kye' in object 0 (LWM2M Security); did you mean 'Secret Key'?"},
    {"LwM2M Server.0.Lifetme", LWM2M_ERR_NOT_FOUND, 0, {0}, NULL,
     "unknown resource 'Lifetme' in object 1 (LwM2M Server); did you mean 'Lifetime'?"},
    {"/3/0/Manufactuer", LWM2M_ERR_NOT_FOUND, 0, {0}, NULL,
     "unknown resource 'Manufactuer' in object 3 (Device); did you mean 'Manufacturer'?"},
    {"Device.0.Manufactuer", LWM2M_ERR_NOT_FOUND, 0, {0}, NULL,
     "unknown resource 'Manufactuer' in object 3 (Device); did you mean 'Manufacturer'?"},
    {"Devise.0.Manufacturer", LWM2M_ERR_NOT_FOUND, 0, {0}, NULL, "unknown object 'Devise'; did you mean 'Device'?"},
    {"Firmware.0.State", LWM2M_ERR_NOT_FOUND, 0, {0}, NULL, "~did you mean 'Firmware Update'?"},
    {"1234.0.Foo", LWM2M_ERR_NOT_FOUND, 0, {0}, NULL, "~object 1234 has no definition"},

    /* ---- syntax */
    {"", LWM2M_ERR_BAD_REQUEST, 0, {0}, NULL, "empty key"},
    {"   ", LWM2M_ERR_BAD_REQUEST, 0, {0}, NULL, "empty key"},
    {"/", LWM2M_ERR_BAD_REQUEST, 0, {0}, NULL, "empty key"},
    {"0..1", LWM2M_ERR_BAD_REQUEST, 0, {0}, NULL, "~empty part"},
    {".0.1", LWM2M_ERR_BAD_REQUEST, 0, {0}, NULL, "~empty part"},
    {"0.1.", LWM2M_ERR_BAD_REQUEST, 0, {0}, NULL, "~empty part"},
    {"//0/1", LWM2M_ERR_BAD_REQUEST, 0, {0}, NULL, "~empty part"},
    {"/0/x/0", LWM2M_ERR_BAD_REQUEST, 0, {0}, NULL, "~instance 'x' is not a number"},
    {"LwM2M Security.two.Security Mode", LWM2M_ERR_BAD_REQUEST, 0, {0}, NULL, "~instance 'two' is not a number"},
    {"Device.x.Manufacturer", LWM2M_ERR_BAD_REQUEST, 0, {0}, NULL, "~instance 'x' is not a number"},
    {"/0/70000/0", LWM2M_ERR_BAD_REQUEST, 0, {0}, NULL, "~instance '70000' is out of range"},
    {"/65535/0/0", LWM2M_ERR_BAD_REQUEST, 0, {0}, NULL, "~out of range"},
    {"/0/0/99999999999999999999", LWM2M_ERR_BAD_REQUEST, 0, {0}, NULL, "~out of range"},
    {"0.0.0.0.0", LWM2M_ERR_BAD_REQUEST, 0, {0}, NULL, "~too many parts"},
    {"3.0.0.x", LWM2M_ERR_BAD_REQUEST, 0, {0}, NULL, "~resource instance 'x' is not a number"},
    {"/-3/0/0", LWM2M_ERR_NOT_FOUND, 0, {0}, NULL, "~unknown object '-3'"},
    {"1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.25.26.27.28.29.30.31.32.33", LWM2M_ERR_BAD_REQUEST,
     0, {0}, NULL, "~too many parts"},
};

/* The 11 keys of the seed recipe "custom bootstrap procedure using low level
 * mechanisms" (seeds/configuring-a-bootstrap-server.md), verbatim. */
static const key_case_t seed_keys[] = {
    {"LwM2M Security.2.LwM2M Server URI", 0, 3, {0, 2, 0}, "LWM2M Server URI", NULL},
    {"LwM2M Security.2.Bootstrap-Server", 0, 3, {0, 2, 1}, "Bootstrap-Server", NULL},
    {"LwM2M Security.2.Security Mode", 0, 3, {0, 2, 2}, "Security Mode", NULL},
    {"LwM2M Security.2.Short Server ID", 0, 3, {0, 2, 10}, "Short Server ID", NULL},
    {"LwM2M Security.2.Public Key or Identity", 0, 3, {0, 2, 3}, "Public Key or Identity", NULL},
    {"LwM2M Security.2.Secret Key", 0, 3, {0, 2, 5}, "Secret Key", NULL},
    {"LwM2M Security.2.Server Public Key", 0, 3, {0, 2, 4}, "Server Public Key", NULL},
    {"LwM2M Server.0.Short Server ID", 0, 3, {1, 0, 0}, "Short Server ID", NULL},
    {"LwM2M Server.0.Lifetime", 0, 3, {1, 0, 1}, "Lifetime", NULL},
    {"LwM2M Server.0.Notification Storing When Disabled or Offline", 0, 3, {1, 0, 6},
     "Notification Storing When Disabled or Offline", NULL},
    {"LwM2M Server.0.Binding", 0, 3, {1, 0, 7}, "Binding", NULL},
};

static void run_key_cases(const lwm2m_registry_t *reg, const key_case_t *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const key_case_t *c = &cases[i];
        lwm2m_path_t p = lwm2m_path_make(2, 77, 77, 0, 0);
        const lwm2m_path_t before = p;
        const lwm2m_resdef_t *res = (const lwm2m_resdef_t *)&before; /* sentinel */
        char err[256] = "untouched";
        int rc = lwm2m_registry_resolve_key(reg, c->key, &p, &res, err, sizeof err);
        if (rc != c->rc)
            fail_msg("key '%s': rc %d (%s), want %d", c->key, rc, err, c->rc);
        if (rc == 0) {
            lwm2m_path_t want = lwm2m_path_make(c->len, c->ids[0], c->ids[1], c->ids[2], c->ids[3]);
            if (!lwm2m_path_equal(&p, &want))
                fail_msg("key '%s': path len %u /%u/%u/%u/%u", c->key, p.len, p.ids[0], p.ids[1], p.ids[2], p.ids[3]);
            if (c->res ? (!res || strcmp(res->name, c->res) != 0) : res != NULL)
                fail_msg("key '%s': resource '%s', want '%s'", c->key, res ? res->name : "(null)",
                         c->res ? c->res : "(null)");
        } else {
            if (!lwm2m_path_equal(&p, &before) || res != (const lwm2m_resdef_t *)&before)
                fail_msg("key '%s': outputs touched on failure", c->key);
            bool ok = c->err[0] == '~' ? strstr(err, c->err + 1) != NULL : strcmp(err, c->err) == 0;
            if (!ok)
                fail_msg("key '%s': message\n got  %s\n want %s", c->key, err, c->err);
        }
    }
}

static void test_keys(void **state)
{
    run_key_cases(*state, key_cases, sizeof key_cases / sizeof *key_cases);
}

static void test_seed_keys(void **state)
{
    run_key_cases(*state, seed_keys, sizeof seed_keys / sizeof *seed_keys);
}

static void test_key_edges(void **state)
{
    const lwm2m_registry_t *reg = *state;
    lwm2m_path_t p;
    char err[64];
    /* res may be NULL; a short message buffer truncates safely */
    assert_int_equal(lwm2m_registry_resolve_key(reg, "Device.0.Manufacturer", &p, NULL, NULL, 0), 0);
    assert_int_equal(lwm2m_registry_resolve_key(reg, "Device.Conectivity Statistics.0.Start", &p, NULL, err, 8),
                     LWM2M_ERR_NOT_FOUND);
    assert_int_equal(strlen(err), 7);
    assert_int_equal(lwm2m_registry_resolve_key(reg, NULL, &p, NULL, err, sizeof err), LWM2M_ERR_BAD_REQUEST);
    assert_int_equal(lwm2m_registry_resolve_key(reg, "0.0.0", NULL, NULL, err, sizeof err), LWM2M_ERR_BAD_REQUEST);
    assert_int_equal(lwm2m_registry_resolve_key(NULL, "0.0.0", &p, NULL, err, sizeof err), LWM2M_ERR_BAD_REQUEST);
    /* a success after a failed first reading leaves no stale message */
    strcpy(err, "x");
    assert_int_equal(lwm2m_registry_resolve_key(reg, "Device.Connectivity Statistics.0.Start", &p, NULL, err, sizeof err), 0);
    assert_string_equal(err, "");

    /* an empty registry: numbers only, and no suggestion to offer */
    lwm2m_registry_t *empty = lwm2m_registry_new();
    const lwm2m_resdef_t *res = NULL;
    assert_int_equal(lwm2m_registry_resolve_key(empty, "/3/0/0", &p, &res, err, sizeof err), 0);
    assert_null(res);
    assert_int_equal(lwm2m_registry_resolve_key(empty, "Device.0.Manufacturer", &p, &res, err, sizeof err),
                     LWM2M_ERR_NOT_FOUND);
    assert_non_null(strstr(err, "no object definitions loaded"));
    lwm2m_registry_free(&empty);
}

static void test_normalise(void **state)
{
    char buf[64];
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"  LwM2M   Server  URI ", "lwm2m server uri"},
        {"Collection Period", "collection period"},
        {"\tA\r\n b\t", "a b"},
        {"", ""},
        {"   ", ""},
        {"Bootstrap-Server", "bootstrap-server"},
        {"TLS 1.3 X", "tls 1.3 x"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        assert_string_equal(lwm2m_name_normalise(cases[i].in, buf, sizeof buf), cases[i].out);
    /* truncation keeps the buffer terminated */
    assert_string_equal(lwm2m_name_normalise("ABCDEF", buf, 4), "abc");
    assert_ptr_equal(lwm2m_name_normalise("x", buf, 0), buf);
    assert_string_equal(lwm2m_name_normalise(NULL, buf, sizeof buf), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_builtin_objects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_builtin_resources, setup, teardown),
        cmocka_unit_test(test_xml_table),
        cmocka_unit_test(test_xml_details),
        cmocka_unit_test(test_xml_limits),
        cmocka_unit_test(test_replace_and_atomic),
        cmocka_unit_test(test_add_dir),
        cmocka_unit_test(test_add_dir_objects),
        cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seed_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_edges, setup, teardown),
        cmocka_unit_test(test_normalise),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
