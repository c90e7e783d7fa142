/* Unit tests of server/tasks/task.c: parsing and checking task configurations.
 *
 * The heart is a table of configurations: each row must either parse or be
 * refused with a given line and a substring of the message (and, where it
 * matters, the element and attribute the error names). Around it: the three
 * seed recipes of seeds/configuring-a-bootstrap-server.md, copied verbatim
 * (indentation and trailing blanks included), with their parsed trees checked
 * step by step; the size, depth and step limits at and past their bounds;
 * typed values (task_value_parse); and the small accessors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/lwm2m/registry.h"
#include "server/tasks/task.h"

static lwm2m_registry_t *g_reg;

static int setup(void **state)
{
    char err[256];
    g_reg = lwm2m_registry_new();
    if (!g_reg || lwm2m_registry_add_builtin(g_reg, err, sizeof err) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    lwm2m_registry_free(&g_reg);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The seed recipes, verbatim                                                */
/* ------------------------------------------------------------------------ */

/* "Custom bootstrap procedure communicating with an external service" */
static const char k_seed_rest[] =
    "        <config>\n"
    "         <rest url=\"http://external-service.example/serverFor/${device.id}\">\n"
    "           <out from=\"serverId\" to=\"serverId\" />\n"
    "         </rest>\n"
    "         <lwm2mBootstrapCleanse />\n"
    "         <lwm2mBootstrapConfiguration serverId=\"${#serverId}\" />\n"
    "         <lwm2mBootstrap performBootstrapFinish=\"true\" />           \n"
    "        </config>\n";

/* "Custom bootstrap procedure using low level mechanisms" */
static const char k_seed_low_level[] =
    "         <config>\n"
    "           <store target=\"id\" value=\"${sv.managementId}\" />\n"
    "          <store target=\"psk\" value=\"${sv.password}\" />\n"
    "          <lwm2mBootstrap performBootstrapFinish=\"true\">\n"
    "            <write key=\"LwM2M Security.2.LwM2M Server URI\" value=\"coaps://uri.example:5684\" type=\"string\" />\n"
    "            <write key=\"LwM2M Security.2.Bootstrap-Server\" value=\"false\" type=\"boolean\" />\n"
    "            <write key=\"LwM2M Security.2.Security Mode\" value=\"0\" type=\"integer\" />\n"
    "            <write key=\"LwM2M Security.2.Short Server ID\" value=\"2\" type=\"integer\" />\n"
    "            <write key=\"LwM2M Security.2.Public Key or Identity\" type=\"opaque\" value=\"${#id.encodeHex}\" />\n"
    "            <write key=\"LwM2M Security.2.Secret Key\" type=\"opaque\" value=\"${#psk.encodeHex}\" />\n"
    "            <write key=\"LwM2M Security.2.Server Public Key\" value=\"${''}\" type=\"opaque\" />\n"
    "            <write key=\"LwM2M Server.0.Short Server ID\" value=\"2\" type=\"integer\" />\n"
    "            <write key=\"LwM2M Server.0.Lifetime\" value=\"60\" type=\"integer\" />\n"
    "            <write key=\"LwM2M Server.0.Notification Storing When Disabled or Offline\" value=\"false\" "
    "type=\"boolean\" />\n"
    "            <write key=\"LwM2M Server.0.Binding\" value=\"U\" type=\"string\" />\n"
    "          </lwm2mBootstrap>\n"
    "         </config>\n";

/* "Custom bootstrap procedure with additional logic" */
static const char k_seed_additional[] =
    "         <config>\n"
    "           <lwm2mBootstrapCleanse />\n"
    "           <lwm2mBootstrapConfiguration serverId=\"8\" />\n"
    "           <set key=\"Device.Connectivity Statistics.0.Collection Period\" value=\"60\" />\n"
    "           <execute key=\"Device.Connectivity Statistics.0.Start\" />\n"
    "           <lwm2mBootstrap performBootstrapFinish=\"true\" />\n"
    "         </config>\n";

/* Every element with every attribute it takes. */
static const char k_everything[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<!-- every element with every attribute -->\n"
    "<config>\n"
    "  <lwm2mBootstrapCleanse/>\n"
    "  <lwm2mBootstrapConfiguration serverId=\"8\" securityInstanceId=\"1\" serverInstanceId=\"2\" "
    "securityInstanceIdOutput=\"secId\"/>\n"
    "  <lwm2mBootstrapConfiguration serverName=\"mgmt-1\" securityInstanceId=\"${#s}\" serverInstanceId=\"3\" "
    "securityInstanceIdOutput=\"out.v\"/>\n"
    "  <lwm2mBootstrap performBootstrapFinish=\"false\">\n"
    "    <delete key=\"/\"/>\n"
    "    <delete key=\"LwM2M Security\"/>\n"
    "    <delete key=\"/0/1\"/>\n"
    "    <write key=\"0.1.0\" value=\"coap://x\" type=\"string\"/>\n"
    "    <write key=\"LwM2M Security.1.Security Mode\" value=\"${#mode}\"/>\n"
    "  </lwm2mBootstrap>\n"
    "  <set key=\"Device.Connectivity Statistics.0.Collection Period\" value=\"60\" type=\"integer\"/>\n"
    "  <set key=\"/3/0/15\" value=\"Europe/Berlin\"/>\n"
    "  <execute key=\"/3/0/4\" arguments=\"0='x'\"/>\n"
    "  <get key=\"Device.0.Manufacturer\" output=\"man\"/>\n"
    "  <get key=\"/3\" output=\"dev\"/>\n"
    "  <delete key=\"/5/0\"/>\n"
    "  <create key=\"/1\"><write key=\"/1/3/0\" value=\"3\" type=\"integer\"/><write key=\"/1/3/1\" value=\"60\"/></create>\n"
    "  <create key=\"LwM2M Server.4.Lifetime\" value=\"30\" type=\"integer\"/>\n"
    "  <create key=\"/1/5\"/>\n"
    "  <observe key=\"/3/0/9\" pmin=\"1\" pmax=\"60\" gt=\"10\" lt=\"5.5\" st=\"1e0\"/>\n"
    "  <setAttributes key=\"/3/0/9\" pmin=\"0\" pmax=\"0\" gt=\"-1\" lt=\"2\" st=\"0.5\" epmin=\"1\" epmax=\"2\"/>\n"
    "  <store target=\"v\" value=\"${#man + 'x'}\" type=\"var\"/>\n"
    "  <store target=\"serial\" value=\"x\" type=\"devProp\"/>\n"
    "  <rest url=\"https://h.example/a?b=${device.id}\" method=\"PATCH\" content=\"{&quot;a&quot;:1}\" "
    "contentType=\"application/json\" timeout=\"30\" user=\"u\" pass=\"${sv.p}\">\n"
    "    <header name=\"X-Token\" value=\"abc\"/>\n"
    "    <out from=\"a.b[0].c\" to=\"c\" default=\"0\"/>\n"
    "  </rest>\n"
    "  <if expr=\"${#c == '0'}\">\n"
    "    <log message=\"zero\" level=\"debug\"/>\n"
    "  <else/>\n"
    "    <log message=\"${#c}\" level=\"warn\"/>\n"
    "    <finish status=\"WARNING\" message=\"odd\"/>\n"
    "  </if>\n"
    "  <wait timeoutSeconds=\"3600\"/>\n"
    "  <comment text=\"anything ${(\">ignored <set/> text</comment>\n"
    "  <join group=\"g1\"/>\n"
    "  <leave group=\"${#g}\"/>\n"
    "  <finish/>\n"
    "</config>\n";

/* ------------------------------------------------------------------------ */
/* Table                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct {
    const char *name;
    const char *xml;
    int line;              /* expected error line (refused rows) */
    const char *msg;       /* NULL: must parse; else a substring of the message */
    const char *element;   /* if set, err.element must equal it */
    const char *attribute; /* if set, err.attribute must equal it */
} row_t;

/* wraps steps in <config>: the first line of X is line 2 */
#define C(x) "<config>\n" x "\n</config>"
#define OK(name, xml) {name, xml, 0, NULL, NULL, NULL}
#define BAD(name, xml, line, msg) {name, xml, line, msg, NULL, NULL}
#define BADA(name, xml, line, msg, el, at) {name, xml, line, msg, el, at}

static const row_t k_rows[] = {
    /* ---- good */
    OK("seed: external service", k_seed_rest),
    OK("seed: low level", k_seed_low_level),
    OK("seed: additional logic", k_seed_additional),
    OK("every element and attribute", k_everything),
    OK("empty config", "<config/>"),
    OK("empty config, blank inside", "<config>\n   \n</config>"),
    OK("XML declaration, comments and a PI", "<?xml version=\"1.0\"?>\n<!-- a -->\n<config><!-- b --><?pi x?></config>\n<!-- c -->"),
    OK("blank CDATA is blank", C("<![CDATA[   ]]>")),
    OK("key as path", C("<set key=\"/1/0/1\" value=\"60\"/>")),
    OK("key as path without slash", C("<set key=\"1/0/1\" value=\"60\"/>")),
    OK("key dotted numbers", C("<set key=\"1.0.1\" value=\"60\"/>")),
    OK("key names, odd case and spaces", C("<set key=\"lwm2m  server.0.LIFETIME\" value=\"60\"/>")),
    OK("key of an undefined resource by number", C("<set key=\"/3/0/999\" value=\"anything\"/>")),
    OK("key of an undefined object by number", C("<set key=\"/40000/0/1\" value=\"7\" type=\"integer\"/>")),
    OK("key with a resource instance", C("<set key=\"/3/0/6/1\" value=\"5\"/>")),
    OK("key as a template is not resolved", C("<set key=\"LwM2M Server.${#i}.Lifetime\" value=\"x\"/>")),
    OK("value as a template is not typed", C("<set key=\"/1/0/1\" value=\"${#lifetime}\"/>")),
    OK("type as a template", C("<set key=\"/1/0/1\" value=\"abc\" type=\"${#t}\"/>")),
    OK("explicit type wins over the definition", C("<set key=\"/1/0/1\" value=\"abc\" type=\"string\"/>")),
    OK("type names ignore case", C("<set key=\"/1/0/1\" value=\"1\" type=\"Unsigned Integer\"/>")),
    OK("integer bounds", C("<set key=\"/1/0/1\" value=\"-9223372036854775808\"/>"
                           "<set key=\"/1/0/1\" value=\"+9223372036854775807\"/>")),
    OK("unsigned max", C("<set key=\"/1/0/1\" value=\"18446744073709551615\" type=\"unsigned\"/>")),
    OK("float forms", C("<set key=\"/3/0/1\" value=\"-2.5e3\" type=\"float\"/><set key=\"/3/0/1\" value=\".5\" "
                        "type=\"float\"/><set key=\"/3/0/1\" value=\"7.\" type=\"float\"/>")),
    OK("boolean forms", C("<set key=\"/1/0/6\" value=\"true\"/><set key=\"/1/0/6\" value=\"0\"/>"
                          "<set key=\"/1/0/6\" value=\"1\"/>")),
    OK("opaque hex, both cases, and empty", C("<set key=\"/0/0/3\" value=\"00FFab\"/><set key=\"/0/0/3\" value=\"\"/>")),
    OK("time", C("<set key=\"/3/0/13\" value=\"1700000000\"/>")),
    OK("objlnk", C("<set key=\"/3/0/1\" value=\"3:0\" type=\"objlnk\"/><set key=\"/3/0/1\" value=\"65535:65535\" "
                   "type=\"objlnk\"/>")),
    OK("corelnk is any text", C("<set key=\"/3/0/1\" value=\"&lt;/3/0&gt;\" type=\"corelnk\"/>")),
    OK("string may be empty", C("<set key=\"/3/0/15\" value=\"\"/>")),
    OK("if without else, else with nothing after", C("<if expr=\"${true}\"><log message=\"a\"/></if>"
                                                     "<if expr=\"${false}\"><else/></if>")),
    OK("bootstrap ops inside if", C("<if expr=\"${#x ? true}\"><lwm2mBootstrapCleanse/><lwm2mBootstrap>"
                                    "<write key=\"/0/1/2\" value=\"3\"/></lwm2mBootstrap></if>")),
    OK("create into the named instance", C("<create key=\"/1/7\"><write key=\"/1/7/1\" value=\"60\"/></create>")),
    OK("execute with arguments", C("<execute key=\"/3/0/4\" arguments=\"${#args}\"/>")),
    OK("observe an object and an instance", C("<observe key=\"/3\"/><observe key=\"Device.0\"/>")),
    OK("rest with an expression url", C("<rest url=\"${#base}/x\"/>")),
    OK("rest with every method", C("<rest url=\"http://a\" method=\"GET\"/><rest url=\"http://a\" method=\"POST\"/>"
                                   "<rest url=\"http://a\" method=\"PUT\"/><rest url=\"http://a\" method=\"DELETE\"/>")),
    OK("every log level and status", C("<log message=\"\" level=\"info\"/><log message=\"x\" level=\"error\"/>"
                                       "<finish status=\"SUCCESS\"/><finish status=\"ERROR\" message=\"m\"/>")),
    OK("comment with content and attributes of any kind", C("<comment>text <x y=\"${\"/> more</comment><comment/>")),
    OK("namespace declared on config but unused", "<config xmlns:x=\"urn:x\"><log message=\"a\"/></config>"),
    OK("store devProp target is free text", C("<store target=\"serial number\" value=\"1\" type=\"devProp\"/>")),

    /* ---- malformed XML */
    BAD("unclosed element", "<config>\n<set key=\"/1/0/1\" value=\"1\">\n", 3, "malformed XML"),
    BAD("mismatched tag", "<config>\n<if expr=\"${true}\"></fi>\n</config>", 2, "malformed XML"),
    BAD("not XML", "hello", 1, "malformed XML"),
    BAD("two roots", "<config/>\n<config/>", 2, "malformed XML"),
    BAD("duplicate attribute", C("<set key=\"/1/0/1\" key=\"/1/0/1\" value=\"1\"/>"), 2, "malformed XML"),
    BAD("undeclared entity", C("<log message=\"&xxe;\"/>"), 2, "malformed XML"),
    BAD("bad character reference", C("<log message=\"&#0;\"/>"), 2, "malformed XML"),
    BAD("NUL byte", "<config>\0</config>", 1, "malformed XML"),

    /* ---- DOCTYPE and entities: never fetched, never expanded */
    BAD("bare DOCTYPE", "<!DOCTYPE config><config/>", 0, "DOCTYPE"),
    BAD("internal entity", "<!DOCTYPE config [<!ENTITY x \"y\">]><config><log message=\"&x;\"/></config>", 0,
        "DOCTYPE"),
    BAD("XXE file", "<!DOCTYPE config [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n<config><log message=\"&xxe;\"/>"
                    "</config>",
        0, "DOCTYPE"),
    BAD("XXE network", "<!DOCTYPE config [<!ENTITY xxe SYSTEM \"http://127.0.0.1:9/x\">]><config>&xxe;</config>", 0,
        "DOCTYPE"),
    BAD("external DTD", "<!DOCTYPE config SYSTEM \"http://127.0.0.1:9/task.dtd\"><config/>", 0, "DOCTYPE"),
    BAD("parameter entity", "<!DOCTYPE config [<!ENTITY % p SYSTEM \"file:///etc/hostname\"> %p;]><config/>", 0,
        "DOCTYPE"),
    BAD("billion laughs",
        "<!DOCTYPE config [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">"
        "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\"><!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">"
        "<!ENTITY e \"&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;\"><!ENTITY f \"&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;\">"
        "<!ENTITY g \"&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;\"><!ENTITY h \"&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;\">]>"
        "<config><log message=\"&h;\"/></config>",
        0, "DOCTYPE"),

    /* ---- document and root */
    BAD("empty document", "", 0, "empty document"),
    BAD("blank document", "  \n\t ", 0, "empty document"),
    BAD("comment only", "<!-- nothing -->", 1, "malformed XML: Start tag expected"),
    BADA("wrong root", "<task>\n</task>", 1, "the root element is <task>", "task", NULL),
    BAD("root with a prefix", "<x:config xmlns:x=\"urn:x\"/>", 1, "the root element is <x:config>"),
    BAD("root in a namespace", "<config xmlns=\"urn:x\"/>", 1, "<config> takes no namespace"),
    BAD("root with attributes", "<config name=\"x\"/>", 1, "<config> takes no attributes (found 'name')"),
    BAD("nested config", C("<config/>"), 2, "<config> may only be the root element"),

    /* ---- text content */
    BADA("text in config", "<config>\n  <log message=\"a\"/>\n  hello\n</config>", 3, "unexpected text 'hello' in <config>",
         "config", NULL),
    BAD("text before a step", "<config>\n\n  oops <log message=\"a\"/></config>", 3, "unexpected text 'oops' in <config>"),
    BAD("text in a leaf step", C("<set key=\"/1/0/1\" value=\"1\">60</set>"), 2, "unexpected text '60' in <set>"),
    BAD("CDATA text", C("<log message=\"a\"><![CDATA[x]]></log>"), 2, "unexpected text 'x' in <log>"),
    BAD("text in lwm2mBootstrap", C("<lwm2mBootstrap>\nfinish\n</lwm2mBootstrap>"), 3,
        "unexpected text 'finish' in <lwm2mBootstrap>"),
    BAD("text in if", C("<if expr=\"${true}\">\n\n then</if>"), 4, "unexpected text 'then' in <if>"),
    BAD("control character", C("\x01<log message=\"a\"/>"), 2, "malformed XML"), /* not XML at all */
    BAD("text shown escaped", C("a&#9;b"), 2, "unexpected text 'a\\x09b' in <config>"),
    BAD("CDATA on a later line", C("<log message=\"a\">\n\n<![CDATA[\n x]]></log>"), 5, "unexpected text 'x' in <log>"),
    BAD("long non-ASCII text", C("\n\n"
                                 "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                 "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                 "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                 "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                 "\n\n\n"),
        4, "unexpected text '\\xc3\\xa9"),
    BAD("long text is cut", C("0123456789012345678901234567890123456789xyz"), 2,
        "unexpected text '0123456789012345678901234567890123456789...'"),

    /* ---- unknown elements */
    BADA("unknown element, close", C("<sett key=\"/1/0/1\" value=\"1\"/>"), 2, "unknown element <sett>; did you mean <set>?",
         "sett", NULL),
    BAD("element names are case-sensitive", C("<Set key=\"/1/0/1\" value=\"1\"/>"), 2, "did you mean <set>?"),
    BAD("long element name", C("<lwm2mBootstrapCleans/>"), 2, "did you mean <lwm2mBootstrapCleanse>?"),
    BAD("long element name 2", C("<lwm2mBootstrapConfig serverId=\"1\"/>"), 2,
        "did you mean <lwm2mBootstrapConfiguration>?"),
    BAD("unknown element, far", C("<frobnicate/>"), 2, "unknown element <frobnicate>"),
    BAD("unknown inside lwm2mBootstrap", C("<lwm2mBootstrap><wrte key=\"/0/1/0\" value=\"x\"/></lwm2mBootstrap>"), 2,
        "unknown element <wrte>; did you mean <write>?"),
    BAD("unknown inside rest", C("<rest url=\"http://a\"><hedaer name=\"a\" value=\"b\"/></rest>"), 2,
        "did you mean <header>?"),
    BAD("unknown inside if", C("<if expr=\"${true}\"><els/></if>"), 2, "did you mean <else>?"),
    BAD("unknown inside create, far", C("<create key=\"/1\"><zzzzzz/></create>"), 2,
        "unknown element <zzzzzz>; <create> takes only <write>"),
    BAD("namespaced step", C("<x:set xmlns:x=\"urn:x\" key=\"/1/0/1\" value=\"1\"/>"), 2, "namespaces are not used"),

    /* ---- unknown and missing attributes */
    BADA("unknown attribute, close", C("<set key=\"/1/0/1\" vlaue=\"1\"/>"), 2,
         "unknown attribute 'vlaue' on <set>; did you mean 'value'?", "set", "vlaue"),
    BAD("attribute names are case-sensitive", C("<set Key=\"/1/0/1\" value=\"1\"/>"), 2, "did you mean 'key'?"),
    BAD("unknown attribute on configuration", C("<lwm2mBootstrapConfiguration serverID=\"8\"/>"), 2,
        "did you mean 'serverId'?"),
    BAD("misspelt performBootstrapFinish", C("<lwm2mBootstrap performBootstrapFinsh=\"true\"/>"), 2,
        "did you mean 'performBootstrapFinish'?"),
    BAD("unknown attribute, far", C("<log message=\"a\" zzzzzzzzz=\"1\"/>"), 2,
        "unknown attribute 'zzzzzzzzz' on <log> (it takes message, level)"),
    BAD("attribute on cleanse", C("<lwm2mBootstrapCleanse all=\"true\"/>"), 2,
        "<lwm2mBootstrapCleanse> takes no attributes (found 'all')"),
    BAD("namespaced attribute", C("<log xml:lang=\"en\" message=\"a\"/>"), 2, "namespaces are not used"),
    BADA("missing value", C("<set key=\"/1/0/1\"/>"), 2, "<set> needs attribute 'value'", "set", "value"),
    BAD("missing key", C("<execute arguments=\"0\"/>"), 2, "<execute> needs attribute 'key'"),
    BAD("missing output", C("<get key=\"/3/0/0\"/>"), 2, "<get> needs attribute 'output'"),
    BAD("missing url", C("<rest/>"), 2, "<rest> needs attribute 'url'"),
    BAD("missing to", C("<rest url=\"http://a\"><out from=\"a\"/></rest>"), 2, "<out> needs attribute 'to'"),
    BAD("missing header value", C("<rest url=\"http://a\"><header name=\"a\"/></rest>"), 2,
        "<header> needs attribute 'value'"),
    BAD("missing expr", C("<if><log message=\"a\"/></if>"), 2, "<if> needs attribute 'expr'"),
    BAD("missing group", C("<join/>"), 2, "<join> needs attribute 'group'"),
    BAD("missing target", C("<store value=\"1\"/>"), 2, "<store> needs attribute 'target'"),
    BAD("missing message", C("<log level=\"info\"/>"), 2, "<log> needs attribute 'message'"),
    BAD("missing write key", C("<lwm2mBootstrap><write value=\"1\"/></lwm2mBootstrap>"), 2,
        "<write> needs attribute 'key'"),
    BAD("configuration without server", C("<lwm2mBootstrapConfiguration securityInstanceId=\"1\"/>"), 2,
        "needs attribute 'serverId' or 'serverName'"),
    BAD("configuration with both", C("<lwm2mBootstrapConfiguration serverId=\"1\" serverName=\"a\"/>"), 2,
        "'serverId' or 'serverName', not both"),

    /* ---- misplaced elements */
    BAD("write at the top", C("<write key=\"/0/1/0\" value=\"x\"/>"), 2,
        "<write> may only stand inside <lwm2mBootstrap> or <create>"),
    BAD("write in if", C("<if expr=\"${true}\">\n<write key=\"/0/1/0\" value=\"x\"/></if>"), 3,
        "<write> may only stand inside"),
    BAD("else at the top", C("<else/>"), 2, "<else/> may only stand directly inside <if>"),
    BAD("else in lwm2mBootstrap", C("<lwm2mBootstrap><else/></lwm2mBootstrap>"), 2, "<else/> may only stand"),
    BAD("else in a leaf", C("<log message=\"a\"><else/></log>"), 2, "<log> takes no child elements (found <else>)"),
    BAD("header at the top", C("<header name=\"a\" value=\"b\"/>"), 2, "<header> may only stand inside <rest>"),
    BAD("out in if", C("<if expr=\"${1}\"><out from=\"a\" to=\"b\"/></if>"), 2, "<out> may only stand inside <rest>"),
    BADA("nested lwm2mBootstrap", C("<lwm2mBootstrap>\n  <lwm2mBootstrap/>\n</lwm2mBootstrap>"), 3,
         "<lwm2mBootstrap> cannot be nested", "lwm2mBootstrap", NULL),
    BAD("set in lwm2mBootstrap", C("<lwm2mBootstrap><set key=\"/0/1/0\" value=\"x\"/></lwm2mBootstrap>"), 2,
        "<set> cannot stand inside <lwm2mBootstrap>, which takes only <write> and <delete>"),
    BAD("delete in create", C("<create key=\"/1\"><delete key=\"/1/0\"/></create>"), 2,
        "<delete> cannot stand inside <create>, which takes only <write>"),
    BAD("set in rest", C("<rest url=\"http://a\"><set key=\"/1/0/1\" value=\"1\"/></rest>"), 2,
        "which takes only <header> and <out>"),
    BAD("comment in lwm2mBootstrap", C("<lwm2mBootstrap><comment/></lwm2mBootstrap>"), 2, "cannot stand inside"),
    BAD("child of a leaf", C("<set key=\"/1/0/1\" value=\"1\"><log message=\"a\"/></set>"), 2,
        "<set> takes no child elements (found <log>)"),
    BAD("child of write", C("<lwm2mBootstrap><write key=\"/0/1/0\" value=\"x\"><x/></write></lwm2mBootstrap>"), 2,
        "<write> takes no child elements"),
    BAD("two else", C("<if expr=\"${true}\"><else/>\n<else/></if>"), 3, "<if> takes at most one <else/>"),
    BAD("else with an attribute", C("<if expr=\"${true}\"><else expr=\"${1}\"/></if>"), 2, "<else/> takes no attributes"),
    BAD("else with content", C("<if expr=\"${true}\"><else><log message=\"a\"/></else></if>"), 2,
        "<else/> is a separator and must be empty"),

    /* ---- expressions */
    BADA("unknown function, position", C("<set key=\"/3/0/15\" value=\"0123456789ab${string.foo(1)}\"/>"), 2,
         "line 2, attribute 'value' of <set>: unknown function 'string.foo' at 14", "set", "value"),
    BAD("syntax error", C("<log message=\"${1 +}\"/>"), 2, "attribute 'message' of <log>: syntax error"),
    BAD("missing brace", C("<rest url=\"http://a/${device.id\"/>"), 2, "missing '}' for '${' at 9"),
    BAD("error in a key template", C("<set key=\"${'a'.foo}\" value=\"1\"/>"), 2, "unknown method 'foo' at 6"),
    BAD("error on a later line", C("<log message=\"a\"/>\n\n<finish message=\"${(1}\"/>"), 4,
        "attribute 'message' of <finish>: unbalanced parentheses"),
    BAD("error in a write template",
        C("<lwm2mBootstrap>\n<write key=\"/0/1/3\" type=\"opaque\" value=\"${(#id).encodeHexx}\"/></lwm2mBootstrap>"), 3,
        "unknown method 'encodeHexx'"),
    BAD("literal condition", C("<if expr=\"true\"/>"), 2, "the condition must be an expression"),
    BAD("condition with text around", C("<if expr=\"${#a} == 1\"/>"), 2, "the condition must be a single ${...}"),
    BAD("condition with a blank before", C("<if expr=\" ${#a}\"/>"), 2, "must be a single ${...}"),
    BAD("condition of two parts", C("<if expr=\"${#a}${#b}\"/>"), 2, "must be a single ${...}"),

    /* ---- keys */
    BADA("unknown resource, suggestion",
         C("<set key=\"Device.Connectivity Statistics.0.Colection Period\" value=\"60\"/>"), 2,
         "did you mean 'Collection Period'?", "set", "key"),
    BAD("unknown object, suggestion", C("<get key=\"LwM2M Securty.0.Security Mode\" output=\"m\"/>"), 2,
        "unknown object 'LwM2M Securty'; did you mean 'LWM2M Security'?"),
    BAD("unknown key in lwm2mBootstrap", C("<lwm2mBootstrap>\n<write key=\"LwM2M Server.0.Lifetme\" value=\"1\"/>"
                                           "</lwm2mBootstrap>"),
        3, "did you mean 'Lifetime'?"),
    BAD("instance not a number", C("<set key=\"LwM2M Server.x.Lifetime\" value=\"1\"/>"), 2, "is not a number"),
    BAD("empty key", C("<set key=\"\" value=\"1\"/>"), 2, "empty key"),
    BAD("set on an instance", C("<set key=\"/3/0\" value=\"1\"/>"), 2, "'/3/0' names /3/0; <set> needs a resource"),
    BAD("write on an object", C("<lwm2mBootstrap><write key=\"LwM2M Security\" value=\"1\"/></lwm2mBootstrap>"), 2,
        "<write> needs a resource"),
    BAD("execute on a resource instance", C("<execute key=\"/3/0/4/0\"/>"), 2, "<execute> needs a resource"),
    BAD("get of the root", C("<get key=\"/\" output=\"x\"/>"), 2, "'/' names /; <get> needs an object"),
    BAD("management delete of a resource", C("<delete key=\"/3/0/1\"/>"), 2,
        "<delete> needs an object instance (object.instance) or an object"),
    BAD("bootstrap delete of a resource", C("<lwm2mBootstrap><delete key=\"/0/1/2\"/></lwm2mBootstrap>"), 2,
        "<delete> needs '/', an object or an object instance"),
    BAD("set on executable", C("<set key=\"Device.Connectivity Statistics.0.Start\" value=\"1\"/>"), 2,
        "resource 'Start' (/7/0/6) is executable and cannot be written"),
    BAD("write on executable", C("<lwm2mBootstrap><write key=\"/3/0/4\" value=\"\"/></lwm2mBootstrap>"), 2,
        "'Reboot' (/3/0/4) is executable"),
    BAD("create with a value on executable", C("<create key=\"/3/0/4\" value=\"1\"/>"), 2, "is executable"),
    BADA("execute on non-executable", C("<execute key=\"Device.Connectivity Statistics.0.Collection Period\"/>"), 2,
         "resource 'Collection Period' (/7/0/8) is not executable", "execute", "key"),
    BAD("get of an executable", C("<get key=\"/3/0/4\" output=\"x\"/>"), 2, "has no value to read"),
    BAD("observe an executable", C("<observe key=\"/3/0/4\"/>"), 2, "has no value to observe"),

    /* ---- literal values */
    BADA("integer: letters", C("<set key=\"/1/0/1\" value=\"abc\"/>"), 2, "'abc' is not an integer", "set", "value"),
    BAD("integer: unit", C("<set key=\"/1/0/1\" value=\"60s\"/>"), 2, "'60s' is not an integer"),
    BAD("integer: blank", C("<set key=\"/1/0/1\" value=\" 60\"/>"), 2, "' 60' is not an integer"),
    BAD("integer: overflow", C("<set key=\"/1/0/1\" value=\"9223372036854775808\"/>"), 2, "is not an integer"),
    BAD("integer: explicit type", C("<set key=\"/3/0/15\" value=\"x\" type=\"integer\"/>"), 2, "is not an integer"),
    BAD("integer in the low-level recipe",
        C("<lwm2mBootstrap><write key=\"LwM2M Server.0.Lifetime\" value=\"sixty\" type=\"integer\"/></lwm2mBootstrap>"),
        2, "'sixty' is not an integer"),
    BAD("unsigned: negative", C("<set key=\"/1/0/1\" value=\"-1\" type=\"unsigned\"/>"), 2, "not an unsigned integer"),
    BAD("float: comma", C("<set key=\"/3/0/1\" value=\"1,5\" type=\"float\"/>"), 2, "'1,5' is not a float"),
    BAD("float: nan", C("<set key=\"/3/0/1\" value=\"nan\" type=\"float\"/>"), 2, "is not a float"),
    BAD("float: overflow", C("<set key=\"/3/0/1\" value=\"1e999\" type=\"float\"/>"), 2, "is not a float"),
    BAD("float: hex", C("<set key=\"/3/0/1\" value=\"0x1p3\" type=\"float\"/>"), 2, "is not a float"),
    BAD("boolean: yes", C("<set key=\"/1/0/6\" value=\"yes\"/>"), 2, "'yes' is not a boolean"),
    BAD("boolean: case", C("<set key=\"/1/0/6\" value=\"True\"/>"), 2, "'True' is not a boolean"),
    BAD("opaque: odd length", C("<set key=\"/0/0/3\" value=\"abc\"/>"), 2, "'abc' is not hex: odd number of digits"),
    BAD("opaque: not hex", C("<set key=\"/0/0/3\" value=\"zz\" type=\"opaque\"/>"), 2, "is not hex: bad digit at 0"),
    BAD("objlnk: dash", C("<set key=\"/3/0/1\" value=\"3-0\" type=\"objlnk\"/>"), 2, "'3-0' is not an object link"),
    BAD("objlnk: range", C("<set key=\"/3/0/1\" value=\"70000:0\" type=\"objlnk\"/>"), 2, "is not an object link"),
    BAD("objlnk: missing half", C("<set key=\"/3/0/1\" value=\"3:\" type=\"objlnk\"/>"), 2, "is not an object link"),
    BAD("time: words", C("<set key=\"/3/0/13\" value=\"now\"/>"), 2, "'now' is not a time"),
    BAD("value shown escaped", C("<set key=\"/1/0/1\" value=\"a&#9;b\"/>"), 2, "'a\\x09b' is not an integer"),
    BADA("type: unknown, close", C("<set key=\"/1/0/1\" value=\"1\" type=\"strng\"/>"), 2,
         "unknown type 'strng'; did you mean 'string'?", "set", "type"),
    BAD("type: unknown, far", C("<set key=\"/1/0/1\" value=\"1\" type=\"quaternion\"/>"), 2,
        "unknown type 'quaternion' (string, integer"),
    BAD("type: empty", C("<set key=\"/1/0/1\" value=\"1\" type=\"\"/>"), 2, "unknown type ''"),
    BAD("type: none", C("<set key=\"/1/0/1\" value=\"\" type=\"none\"/>"), 2, "type 'none' has no value to write"),
    BADA("performBootstrapFinish: maybe", C("<lwm2mBootstrap performBootstrapFinish=\"maybe\"/>"), 2,
         "'maybe' is neither 'true' nor 'false'", "lwm2mBootstrap", "performBootstrapFinish"),
    BAD("performBootstrapFinish: case", C("<lwm2mBootstrap performBootstrapFinish=\"TRUE\"/>"), 2, "neither"),
    BAD("serverId: zero", C("<lwm2mBootstrapConfiguration serverId=\"0\"/>"), 2, "'0' is not a server id"),
    BAD("serverId: negative", C("<lwm2mBootstrapConfiguration serverId=\"-1\"/>"), 2, "is not a server id"),
    BAD("serverId: text", C("<lwm2mBootstrapConfiguration serverId=\"eight\"/>"), 2, "is not a server id"),
    BAD("serverName: empty", C("<lwm2mBootstrapConfiguration serverName=\"\"/>"), 2, "must not be empty"),
    BAD("securityInstanceId: 65535", C("<lwm2mBootstrapConfiguration serverId=\"1\" securityInstanceId=\"65535\"/>"),
        2, "is not an instance id (0..65534)"),
    BAD("securityInstanceIdOutput: not a name",
        C("<lwm2mBootstrapConfiguration serverId=\"1\" securityInstanceIdOutput=\"a-b\"/>"), 2, "is not a variable name"),
    BAD("get output with #", C("<get key=\"/3/0/0\" output=\"#m\"/>"), 2, "write the variable name without '#'"),
    BAD("out to a number", C("<rest url=\"http://a\"><out from=\"a\" to=\"1x\"/></rest>"), 2, "is not a variable name"),
    BAD("out from empty", C("<rest url=\"http://a\"><out from=\"\" to=\"x\"/></rest>"), 2, "must not be empty"),
    BAD("store target not a name", C("<store target=\"a b\" value=\"1\"/>"), 2, "'a b' is not a variable name"),
    BAD("store target with #", C("<store target=\"#a\" value=\"1\" type=\"var\"/>"), 2, "without '#'"),
    BAD("store target reserved", C("<store target=\"__pc\" value=\"1\"/>"), 2, "'__pc': names starting with '__' are reserved"),
    BAD("get output reserved", C("<get key=\"/3/0/0\" output=\"__deferred\"/>"), 2, "are reserved"),
    BAD("out to reserved", C("<rest url=\"http://a\"><out from=\"a\" to=\"__x\"/></rest>"), 2, "are reserved"),
    OK("one leading underscore is a name", C("<store target=\"_pc\" value=\"1\"/><get key=\"/3/0/0\" output=\"_m\"/>")),
    OK("devProp target may start with __", C("<store target=\"__p\" value=\"1\" type=\"devProp\"/>")),
    BAD("store devProp target empty", C("<store target=\"\" value=\"1\" type=\"devProp\"/>"), 2, "must not be empty"),
    BAD("store type", C("<store target=\"a\" value=\"1\" type=\"global\"/>"), 2, "neither 'var' nor 'devProp'"),
    BAD("pmin negative", C("<observe key=\"/3/0/9\" pmin=\"-1\"/>"), 2, "is not a number of seconds"),
    BAD("pmax above pmin", C("<observe key=\"/3/0/9\" pmin=\"10\" pmax=\"5\"/>"), 2, "pmax (5) is below pmin (10)"),
    BAD("epmax above epmin", C("<setAttributes key=\"/3/0/9\" epmin=\"10\" epmax=\"5\"/>"), 2, "epmax (5) is below"),
    BAD("gt not a number", C("<observe key=\"/3/0/9\" gt=\"high\"/>"), 2, "'high' is not a number"),
    BAD("st negative", C("<setAttributes key=\"/3/0/9\" st=\"-1\"/>"), 2, "is not a number >= 0"),
    BAD("gt on a string resource", C("<observe key=\"/3/0/15\" gt=\"1\"/>"), 2,
        "applies to a numeric resource; /3/0/15 is string"),
    BAD("lt on an instance", C("<setAttributes key=\"/3/0\" lt=\"1\"/>"), 2, "applies to a numeric resource, not to /3/0"),
    BAD("method lower case", C("<rest url=\"http://a\" method=\"get\"/>"), 2, "'get' is not GET, POST, PUT, DELETE or PATCH"),
    BAD("timeout zero", C("<rest url=\"http://a\" timeout=\"0\"/>"), 2, "is not a number of seconds (1..3600)"),
    BAD("timeout too long", C("<rest url=\"http://a\" timeout=\"3601\"/>"), 2, "(1..3600)"),
    BAD("contentType empty", C("<rest url=\"http://a\" contentType=\"\"/>"), 2, "must not be empty"),
    BAD("url scheme", C("<rest url=\"file:///etc/passwd\"/>"), 2, "is not an http:// or https:// URL"),
    BAD("url scheme before a template", C("<rest url=\"gopher://${#h}/\"/>"), 2, "is not an http:// or https:// URL"),
    BAD("url without host", C("<rest url=\"http://\"/>"), 2, "is not an http:// or https:// URL"),
    BAD("url with a space", C("<rest url=\"http://a/b c\"/>"), 2, "contains a space or a control character"),
    BAD("header name", C("<rest url=\"http://a\"><header name=\"X Token\" value=\"1\"/></rest>"), 2,
        "is not an HTTP header name"),
    BAD("header injection", C("<rest url=\"http://a\"><header name=\"X\" value=\"1&#13;&#10;Host: evil\"/></rest>"), 2,
        "cannot contain a line break"),
    BAD("log level", C("<log message=\"a\" level=\"fatal\"/>"), 2, "is not debug, info, warn or error"),
    BAD("finish status", C("<finish status=\"OK\"/>"), 2, "is not SUCCESS, WARNING or ERROR"),
    BAD("wait zero", C("<wait timeoutSeconds=\"0\"/>"), 2, "is not a number of seconds (1..2147483647)"),
    BAD("join empty", C("<join group=\"\"/>"), 2, "must not be empty"),

    /* ---- create */
    BAD("create: type without value", C("<create key=\"/1\" type=\"integer\"/>"), 2, "'type' goes with 'value'"),
    BAD("create: value on an instance", C("<create key=\"/1/0\" value=\"1\"/>"), 2,
        "/1/0 is not a resource; <create> with a value needs object.instance.resource"),
    BAD("create: resource without value", C("<create key=\"/1/0/1\"/>"), 2, "<create> without a value needs an object"),
    BAD("create: value and writes", C("<create key=\"/1/0/1\" value=\"1\"><write key=\"/1/0/1\" value=\"1\"/></create>"),
        2, "not both"),
    BAD("create: write outside", C("<create key=\"/1/0\">\n<write key=\"/1/1/1\" value=\"1\"/></create>"), 3,
        "/1/1/1 is outside the instance <create key=\"/1/0\"> creates"),
    BAD("create: writes into two instances", C("<create key=\"/1\"><write key=\"/1/0/1\" value=\"1\"/>\n"
                                               "<write key=\"/1/2/1\" value=\"1\"/></create>"),
        3, "must name one instance"),
    BAD("create: bad literal in a write", C("<create key=\"/1\"><write key=\"/1/0/1\" value=\"x\"/></create>"), 2,
        "'x' is not an integer"),
};

/* Runs one row; prints what is wrong and returns false on a mismatch, so one
 * run reports every failing row. */
static bool run_row(const row_t *r)
{
    task_program_t *p = (task_program_t *)1;
    task_error_t err;
    memset(&err, 0x55, sizeof err);
    size_t len = strlen(r->xml);
    if (strcmp(r->name, "NUL byte") == 0)
        len = sizeof "<config>\0</config>" - 1;
    int rc = task_parse(r->xml, len, g_reg, &p, &err);
    bool ok = true;
#define ROW_FAIL(...) (print_error("row '%s': ", r->name), print_error(__VA_ARGS__), print_error("\n"), ok = false)
    if (!memchr(err.msg, '\0', sizeof err.msg) || !memchr(err.element, '\0', sizeof err.element) ||
        !memchr(err.attribute, '\0', sizeof err.attribute)) {
        ROW_FAIL("error fields not NUL-terminated");
        return false;
    }
    if (!r->msg) {
        if (rc != 0 || !p)
            ROW_FAIL("expected to parse, got: %s", err.msg);
        task_program_free(&p);
        if (p)
            ROW_FAIL("program not NULL after free");
        return ok;
    }
    if (rc == 0) {
        task_program_free(&p);
        ROW_FAIL("expected a refusal containing \"%s\", but it parsed", r->msg);
        return false;
    }
    if (rc != -1)
        ROW_FAIL("returned %d", rc);
    if (p)
        ROW_FAIL("program not NULL on failure");
    if (!strstr(err.msg, r->msg))
        ROW_FAIL("message \"%s\" lacks \"%s\"", err.msg, r->msg);
    if (err.line != r->line)
        ROW_FAIL("line %d, expected %d (%s)", err.line, r->line, err.msg);
    if (r->line) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "line %d", r->line);
        if (strncmp(err.msg, prefix, strlen(prefix)) != 0)
            ROW_FAIL("message \"%s\" does not start with \"%s\"", err.msg, prefix);
    }
    if (r->element && strcmp(err.element, r->element) != 0)
        ROW_FAIL("element '%s', expected '%s'", err.element, r->element);
    if (r->attribute && strcmp(err.attribute, r->attribute) != 0)
        ROW_FAIL("attribute '%s', expected '%s'", err.attribute, r->attribute);
#undef ROW_FAIL
    return ok;
}

static void test_table(void **state)
{
    size_t bad = 0, n = sizeof k_rows / sizeof k_rows[0];
    for (size_t i = 0; i < n; i++)
        bad += !run_row(&k_rows[i]);
    if (bad)
        fail_msg("%zu of %zu rows failed", bad, n);
}

/* ------------------------------------------------------------------------ */
/* The seeds' trees                                                          */
/* ------------------------------------------------------------------------ */

static task_program_t *parse_ok(const char *xml)
{
    task_program_t *p = NULL;
    task_error_t err;
    if (task_parse(xml, strlen(xml), g_reg, &p, &err) != 0)
        fail_msg("expected to parse: %s", err.msg);
    assert_non_null(p);
    return p;
}

static void assert_path(const task_step_t *s, int len, unsigned a, unsigned b, unsigned c)
{
    assert_true(s->key_resolved);
    lwm2m_path_t want = lwm2m_path_make(len, a, b, c, 0);
    char got_s[32], want_s[32];
    lwm2m_path_format(&s->key_path, got_s, sizeof got_s);
    lwm2m_path_format(&want, want_s, sizeof want_s);
    assert_string_equal(got_s, want_s);
    assert_int_equal(s->key_path.len, len);
}

static void assert_attr(const task_step_t *s, const char *name, const char *raw, bool is_expr)
{
    const task_attr_t *a = task_step_attr(s, name);
    if (!a)
        fail_msg("<%s> line %d has no attribute '%s'", task_kind_name(s->kind), s->line, name);
    assert_string_equal(a->raw, raw);
    assert_int_equal(a->expr != NULL, is_expr);
    assert_int_equal(a->line, s->line);
}

static void test_seed_rest(void **state)
{
    task_program_t *p = parse_ok(k_seed_rest);
    assert_int_equal(p->nsteps, 4);
    const task_step_t *s = p->steps;
    assert_int_equal(s[0].kind, TASK_REST);
    assert_int_equal(s[0].line, 2);
    assert_attr(&s[0], "url", "http://external-service.example/serverFor/${device.id}", true);
    assert_int_equal(s[0].nchildren, 1);
    assert_int_equal(s[0].children[0].kind, TASK_REST_OUT);
    assert_int_equal(s[0].children[0].line, 3);
    assert_attr(&s[0].children[0], "from", "serverId", false);
    assert_attr(&s[0].children[0], "to", "serverId", false);
    assert_int_equal(s[1].kind, TASK_CLEANSE);
    assert_int_equal(s[1].line, 5);
    assert_int_equal(s[1].nattrs, 0);
    assert_int_equal(s[2].kind, TASK_CONFIGURATION);
    assert_int_equal(s[2].line, 6);
    assert_attr(&s[2], "serverId", "${#serverId}", true);
    assert_int_equal(s[3].kind, TASK_BOOTSTRAP);
    assert_int_equal(s[3].line, 7);
    assert_attr(&s[3], "performBootstrapFinish", "true", false);
    assert_int_equal(s[3].nchildren, 0);
    for (size_t i = 0; i < 4; i++) {
        assert_false(s[i].key_resolved);
        assert_int_equal(s[i].key_type, -1);
        assert_int_equal(s[i].type, -1);
        assert_int_equal(s[i].nelse, 0);
    }
    assert_int_equal(p->nserver_ids, 0); /* a template, not a literal reference */
    assert_int_equal(p->nserver_names, 0);
    assert_true(p->has_bootstrap_ops);
    assert_false(p->has_management_ops);
    task_program_free(&p);
}

static void test_seed_low_level(void **state)
{
    task_program_t *p = parse_ok(k_seed_low_level);
    assert_int_equal(p->nsteps, 3);
    const task_step_t *s = p->steps;
    assert_int_equal(s[0].kind, TASK_STORE);
    assert_int_equal(s[0].line, 2);
    assert_attr(&s[0], "target", "id", false);
    assert_attr(&s[0], "value", "${sv.managementId}", true);
    assert_int_equal(s[1].kind, TASK_STORE);
    assert_int_equal(s[1].line, 3);
    assert_attr(&s[1], "target", "psk", false);
    assert_int_equal(s[0].type, -1); /* no type attribute: var by default */
    assert_int_equal(s[2].kind, TASK_BOOTSTRAP);
    assert_int_equal(s[2].line, 4);
    assert_int_equal(s[2].nchildren, 11);

    static const struct {
        unsigned o, i, r;
        int key_type, type;
        const char *value;
        bool is_expr;
    } w[] = {
        {0, 2, 0, LWM2M_T_STRING, LWM2M_T_STRING, "coaps://uri.example:5684", false},
        {0, 2, 1, LWM2M_T_BOOLEAN, LWM2M_T_BOOLEAN, "false", false},
        {0, 2, 2, LWM2M_T_INTEGER, LWM2M_T_INTEGER, "0", false},
        {0, 2, 10, LWM2M_T_INTEGER, LWM2M_T_INTEGER, "2", false},
        {0, 2, 3, LWM2M_T_OPAQUE, LWM2M_T_OPAQUE, "${#id.encodeHex}", true},
        {0, 2, 5, LWM2M_T_OPAQUE, LWM2M_T_OPAQUE, "${#psk.encodeHex}", true},
        {0, 2, 4, LWM2M_T_OPAQUE, LWM2M_T_OPAQUE, "${''}", true},
        {1, 0, 0, LWM2M_T_INTEGER, LWM2M_T_INTEGER, "2", false},
        {1, 0, 1, LWM2M_T_INTEGER, LWM2M_T_INTEGER, "60", false},
        {1, 0, 6, LWM2M_T_BOOLEAN, LWM2M_T_BOOLEAN, "false", false},
        {1, 0, 7, LWM2M_T_STRING, LWM2M_T_STRING, "U", false},
    };
    for (size_t k = 0; k < 11; k++) {
        const task_step_t *c = &s[2].children[k];
        assert_int_equal(c->kind, TASK_BS_WRITE);
        assert_int_equal(c->line, (int)(5 + k));
        assert_path(c, 3, w[k].o, w[k].i, w[k].r);
        assert_int_equal(c->key_type, w[k].key_type);
        assert_int_equal(c->type, w[k].type);
        assert_attr(c, "value", w[k].value, w[k].is_expr);
        assert_int_equal(c->nchildren, 0);
    }
    assert_int_equal(p->nserver_ids, 0);
    assert_true(p->has_bootstrap_ops);
    assert_false(p->has_management_ops);
    task_program_free(&p);
}

static void test_seed_additional(void **state)
{
    task_program_t *p = parse_ok(k_seed_additional);
    assert_int_equal(p->nsteps, 5);
    const task_step_t *s = p->steps;
    static const task_kind_t kinds[] = {TASK_CLEANSE, TASK_CONFIGURATION, TASK_SET, TASK_EXECUTE, TASK_BOOTSTRAP};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(s[i].kind, kinds[i]);
        assert_int_equal(s[i].line, (int)(2 + i));
    }
    assert_attr(&s[1], "serverId", "8", false);
    assert_path(&s[2], 3, 7, 0, 8);
    assert_int_equal(s[2].key_type, LWM2M_T_INTEGER);
    assert_int_equal(s[2].type, -1);
    assert_attr(&s[2], "value", "60", false);
    assert_path(&s[3], 3, 7, 0, 6);
    assert_int_equal(s[3].key_type, LWM2M_T_NONE);
    assert_null(task_step_attr(&s[3], "arguments"));
    assert_int_equal(p->nserver_ids, 1);
    assert_int_equal(p->server_ids[0], 8);
    assert_int_equal(p->nserver_names, 0);
    assert_true(p->has_bootstrap_ops);
    assert_false(p->has_management_ops);
    task_program_free(&p);
}

static void test_everything_tree(void **state)
{
    task_program_t *p = parse_ok(k_everything);
    assert_true(p->has_bootstrap_ops);
    assert_true(p->has_management_ops);
    assert_int_equal(p->nserver_ids, 1);
    assert_int_equal(p->server_ids[0], 8);
    assert_int_equal(p->nserver_names, 1);
    assert_string_equal(p->server_names[0], "mgmt-1");
    const task_step_t *s = p->steps;
    assert_int_equal(s[0].line, 4);
    /* lwm2mBootstrap: delete "/" is the root, resolved */
    const task_step_t *bs = &s[3];
    assert_int_equal(bs->kind, TASK_BOOTSTRAP);
    assert_int_equal(bs->nchildren, 5);
    assert_int_equal(bs->children[0].kind, TASK_BS_DELETE);
    assert_true(bs->children[0].key_resolved);
    assert_int_equal(bs->children[0].key_path.len, 0);
    assert_path(&bs->children[1], 1, 0, 0, 0);
    assert_path(&bs->children[2], 2, 0, 1, 0);
    assert_int_equal(bs->children[4].type, -1);
    assert_int_equal(bs->children[4].key_type, LWM2M_T_INTEGER);
    /* find the if and the store steps */
    const task_step_t *iff = NULL, *store_var = NULL, *store_dev = NULL, *create = NULL, *comment = NULL;
    for (size_t i = 0; i < p->nsteps; i++) {
        if (s[i].kind == TASK_IF)
            iff = &s[i];
        if (s[i].kind == TASK_STORE && !store_var)
            store_var = &s[i];
        else if (s[i].kind == TASK_STORE)
            store_dev = &s[i];
        if (s[i].kind == TASK_CREATE && !create)
            create = &s[i];
        if (s[i].kind == TASK_COMMENT)
            comment = &s[i];
    }
    assert_non_null(iff);
    assert_int_equal(iff->nchildren, 1);
    assert_int_equal(iff->nelse, 2);
    assert_int_equal(iff->children[0].kind, TASK_LOG);
    assert_int_equal(iff->else_children[0].kind, TASK_LOG);
    assert_int_equal(iff->else_children[1].kind, TASK_FINISH);
    assert_int_equal(iff->else_children[1].line, iff->else_children[0].line + 1);
    assert_int_equal(store_var->type, 0);
    assert_int_equal(store_dev->type, 1);
    assert_int_equal(create->nchildren, 2);
    assert_int_equal(create->children[0].kind, TASK_BS_WRITE);
    assert_path(create, 1, 1, 0, 0);
    assert_non_null(comment);
    assert_int_equal(comment->nattrs, 0); /* comments keep nothing */
    assert_int_equal(comment->nchildren, 0);
    task_program_free(&p);
}

/* ------------------------------------------------------------------------ */
/* Limits                                                                    */
/* ------------------------------------------------------------------------ */

static char *nested_ifs(int n)
{
    size_t cap = (size_t)n * 40 + 64;
    char *x = malloc(cap);
    assert_non_null(x);
    size_t k = (size_t)snprintf(x, cap, "<config>\n");
    for (int i = 0; i < n; i++)
        k += (size_t)snprintf(x + k, cap - k, "<if expr=\"${true}\">\n");
    k += (size_t)snprintf(x + k, cap - k, "<log message=\"deep\"/>\n");
    for (int i = 0; i < n; i++)
        k += (size_t)snprintf(x + k, cap - k, "</if>");
    snprintf(x + k, cap - k, "</config>");
    return x;
}

static void test_depth_limit(void **state)
{
    char *x = nested_ifs(TASK_MAX_DEPTH);
    task_program_t *p = parse_ok(x);
    const task_step_t *s = p->steps;
    for (int i = 0; i < TASK_MAX_DEPTH; i++) {
        assert_int_equal(s->kind, TASK_IF);
        assert_int_equal(s->line, 2 + i);
        s = s->children;
    }
    assert_int_equal(s->kind, TASK_LOG);
    task_program_free(&p);
    free(x);

    x = nested_ifs(TASK_MAX_DEPTH + 1);
    task_error_t err;
    assert_int_equal(task_parse(x, strlen(x), g_reg, &p, &err), -1);
    assert_null(p);
    assert_non_null(strstr(err.msg, "nesting deeper than 16 levels"));
    assert_int_equal(err.line, 2 + TASK_MAX_DEPTH);
    free(x);

    /* other containers count as well: rest inside 16 ifs */
    x = nested_ifs(TASK_MAX_DEPTH);
    char *log = strstr(x, "<log message=\"deep\"/>");
    assert_non_null(log);
    size_t n = strlen(x);
    char *y = malloc(n + 64);
    assert_non_null(y);
    snprintf(y, n + 64, "%.*s<rest url=\"http://a\"/>%s", (int)(log - x), x, log + strlen("<log message=\"deep\"/>"));
    assert_int_equal(task_parse(y, strlen(y), g_reg, &p, &err), -1);
    assert_non_null(strstr(err.msg, "nesting deeper"));
    free(x);
    free(y);

    /* far deeper than libxml2's own limit: refused as malformed, not a crash */
    x = nested_ifs(300);
    assert_int_equal(task_parse(x, strlen(x), g_reg, &p, &err), -1);
    assert_null(p);
    free(x);
}

static char *many_steps(int n)
{
    size_t cap = (size_t)n * 24 + 64;
    char *x = malloc(cap);
    assert_non_null(x);
    size_t k = (size_t)snprintf(x, cap, "<config>\n");
    for (int i = 0; i < n; i++)
        k += (size_t)snprintf(x + k, cap - k, "<log message=\"%d\"/>\n", i);
    snprintf(x + k, cap - k, "</config>");
    return x;
}

static void test_step_limit(void **state)
{
    char *x = many_steps(TASK_MAX_STEPS);
    task_program_t *p = parse_ok(x);
    assert_int_equal(p->nsteps, TASK_MAX_STEPS);
    assert_int_equal(p->steps[TASK_MAX_STEPS - 1].line, TASK_MAX_STEPS + 1);
    task_program_free(&p);
    free(x);

    x = many_steps(TASK_MAX_STEPS + 1);
    task_error_t err;
    assert_int_equal(task_parse(x, strlen(x), g_reg, &p, &err), -1);
    assert_null(p);
    assert_non_null(strstr(err.msg, "too many steps"));
    assert_int_equal(err.line, TASK_MAX_STEPS + 2);
    free(x);

    /* children count too: one lwm2mBootstrap with 2000 writes is 2001 */
    size_t cap = TASK_MAX_STEPS * 48 + 128;
    x = malloc(cap);
    assert_non_null(x);
    size_t k = (size_t)snprintf(x, cap, "<config><lwm2mBootstrap>");
    for (int i = 0; i < TASK_MAX_STEPS; i++)
        k += (size_t)snprintf(x + k, cap - k, "<write key=\"/0/1/0\" value=\"u\"/>");
    snprintf(x + k, cap - k, "</lwm2mBootstrap></config>");
    assert_int_equal(task_parse(x, strlen(x), g_reg, &p, &err), -1);
    assert_non_null(strstr(err.msg, "too many steps"));
    free(x);
}

static void test_size_limit(void **state)
{
    /* exactly the limit: a valid document padded with blanks */
    char *x = malloc(TASK_MAX_XML + 2);
    assert_non_null(x);
    const char *head = "<config>", *tail = "</config>";
    memset(x, ' ', TASK_MAX_XML + 1);
    memcpy(x, head, strlen(head));
    memcpy(x + TASK_MAX_XML - strlen(tail), tail, strlen(tail));
    x[TASK_MAX_XML] = '\0';
    task_program_t *p = NULL;
    task_error_t err;
    assert_int_equal(task_parse(x, TASK_MAX_XML, g_reg, &p, &err), 0);
    task_program_free(&p);
    /* one byte more */
    memcpy(x + TASK_MAX_XML + 1 - strlen(tail), tail, strlen(tail));
    x[TASK_MAX_XML + 1] = '\0';
    assert_int_equal(task_parse(x, TASK_MAX_XML + 1, g_reg, &p, &err), -1);
    assert_null(p);
    assert_non_null(strstr(err.msg, "too large"));
    assert_int_equal(err.line, 0);
    free(x);
}

/* Lines past 65535 (where libxml2 2.9's own counter saturates) are exact. */
static void test_big_lines(void **state)
{
    size_t n = 70000;
    char *x = malloc(n + 200);
    assert_non_null(x);
    size_t k = (size_t)sprintf(x, "<config>");
    memset(x + k, '\n', n);
    k += n;
    sprintf(x + k, "<log\n message=\"a\"/><set key=\"/1/0/1\"\n value=\"x\"/></config>");
    task_program_t *p = NULL;
    task_error_t err;
    assert_int_equal(task_parse(x, strlen(x), g_reg, &p, &err), -1);
    assert_int_equal(err.line, (int)n + 2);
    assert_non_null(strstr(err.msg, "line 70002, attribute 'value' of <set>"));
    free(x);
}

/* A start tag over several lines is dated by where it starts. */
static void test_multiline_tag(void **state)
{
    const char *x = "<config>\n<log message=\"a\"/>\n<set\n  key=\"/1/0/1\"\n  value=\"x\"\n/>\n</config>";
    task_program_t *p = NULL;
    task_error_t err;
    assert_int_equal(task_parse(x, strlen(x), g_reg, &p, &err), -1);
    assert_int_equal(err.line, 3);
    x = "<config>\n<log\n message=\"a\"\n/>\n<log message=\"b\"/></config>";
    p = parse_ok(x);
    assert_int_equal(p->steps[0].line, 2);
    assert_int_equal(p->steps[1].line, 5);
    task_program_free(&p);
}

/* ------------------------------------------------------------------------ */
/* Encodings                                                                 */
/* ------------------------------------------------------------------------ */

static size_t to_utf16le(const char *ascii, char *out)
{
    size_t k = 0;
    out[k++] = (char)0xff;
    out[k++] = (char)0xfe;
    for (const char *c = ascii; *c; c++) {
        out[k++] = *c;
        out[k++] = 0;
    }
    return k;
}

static void test_utf16(void **state)
{
    char buf[1024];
    task_program_t *p = NULL;
    task_error_t err;
    size_t n = to_utf16le("<?xml version=\"1.0\" encoding=\"UTF-16\"?>\n<config>\n<set key=\"/1/0/1\" value=\"60\"/>"
                          "</config>",
                          buf);
    assert_int_equal(task_parse(buf, n, g_reg, &p, &err), 0);
    assert_int_equal(p->steps[0].line, 3);
    assert_path(&p->steps[0], 3, 1, 0, 1);
    task_program_free(&p);
    /* the DOCTYPE is seen whatever the encoding */
    n = to_utf16le("<?xml version=\"1.0\" encoding=\"UTF-16\"?><!DOCTYPE config [<!ENTITY x \"y\">]><config/>", buf);
    assert_int_equal(task_parse(buf, n, g_reg, &p, &err), -1);
    assert_non_null(strstr(err.msg, "DOCTYPE"));
    /* non-ASCII text in values passes through as UTF-8 */
    const char *u = "<config><log message=\"Gr\xc3\xbc\xc3\x9f""e\"/></config>";
    p = parse_ok(u);
    assert_string_equal(task_step_attr(&p->steps[0], "message")->raw, "Gr\xc3\xbc\xc3\x9f""e");
    task_program_free(&p);
}

/* ------------------------------------------------------------------------ */
/* API edges                                                                 */
/* ------------------------------------------------------------------------ */

static void test_api_edges(void **state)
{
    task_program_t *p = (task_program_t *)1;
    task_error_t err;
    const char *x = "<config/>";
    assert_int_equal(task_parse(x, strlen(x), NULL, &p, &err), -1);
    assert_null(p);
    assert_non_null(strstr(err.msg, "registry"));
    assert_int_equal(task_parse(x, strlen(x), g_reg, NULL, &err), -1);
    assert_int_equal(task_parse(NULL, 5, g_reg, &p, &err), -1);
    assert_non_null(strstr(err.msg, "empty document"));
    /* err may be NULL */
    assert_int_equal(task_parse("<x/>", 4, g_reg, &p, NULL), -1);
    assert_int_equal(task_parse(x, strlen(x), g_reg, &p, NULL), 0);
    assert_int_equal(p->nsteps, 0);
    task_program_free(&p);
    task_program_free(&p);  /* NULL after free: no-op */
    task_program_free(NULL);
    /* the buffer need not be NUL-terminated: only len bytes are read */
    char buf[32];
    memcpy(buf, "<config/>garbage", 16);
    assert_int_equal(task_parse(buf, 9, g_reg, &p, &err), 0);
    task_program_free(&p);
    /* a successful parse leaves the error cleared */
    memset(&err, 'x', sizeof err);
    assert_int_equal(task_parse(x, strlen(x), g_reg, &p, &err), 0);
    assert_string_equal(err.msg, "");
    assert_int_equal(err.line, 0);
    task_program_free(&p);
}

static void test_kind_names(void **state)
{
    static const char *const want[TASK_KIND_COUNT] = {
        "lwm2mBootstrapCleanse", "lwm2mBootstrapConfiguration", "lwm2mBootstrap", "write", "delete", "set",
        "execute", "get", "delete", "create", "observe", "setAttributes", "store", "rest", "header", "out", "if",
        "log", "finish", "wait", "comment", "join", "leave",
    };
    for (int k = 0; k < TASK_KIND_COUNT; k++)
        assert_string_equal(task_kind_name((task_kind_t)k), want[k]);
    assert_string_equal(task_kind_name(TASK_KIND_COUNT), "?");
    assert_string_equal(task_kind_name((task_kind_t)-1), "?");
}

static void test_step_attr(void **state)
{
    task_program_t *p = parse_ok("<config><log message=\"m\" level=\"info\"/></config>");
    const task_step_t *s = &p->steps[0];
    assert_int_equal(s->nattrs, 2);
    assert_string_equal(s->attrs[0].name, "message"); /* document order */
    assert_string_equal(s->attrs[1].name, "level");
    assert_string_equal(task_step_attr(s, "level")->raw, "info");
    assert_null(task_step_attr(s, "Level"));
    assert_null(task_step_attr(s, NULL));
    assert_null(task_step_attr(NULL, "level"));
    task_program_free(&p);
    /* values are unescaped: predefined entities and character references */
    p = parse_ok("<config><log message=\"a &amp; b &lt;c&gt; &quot;d&apos; &#10;&#x41;\"/></config>");
    assert_string_equal(task_step_attr(&p->steps[0], "message")->raw, "a & b <c> \"d' \nA");
    task_program_free(&p);
    /* an escaped "${" is still a template */
    p = parse_ok("<config><log message=\"&#36;{1 + 1}\"/></config>");
    assert_non_null(task_step_attr(&p->steps[0], "message")->expr);
    task_program_free(&p);
}

/* Several literal references: collected once each. */
static void test_server_refs(void **state)
{
    task_program_t *p = parse_ok(
        "<config><lwm2mBootstrapConfiguration serverId=\"8\"/><lwm2mBootstrapConfiguration serverId=\"12\"/>"
        "<if expr=\"${true}\"><lwm2mBootstrapConfiguration serverId=\"8\"/><else/>"
        "<lwm2mBootstrapConfiguration serverName=\"b s\"/><lwm2mBootstrapConfiguration serverName=\"b s\"/>"
        "<lwm2mBootstrapConfiguration serverName=\"${#n}\"/></if></config>");
    assert_int_equal(p->nserver_ids, 2);
    assert_int_equal(p->server_ids[0], 8);
    assert_int_equal(p->server_ids[1], 12);
    assert_int_equal(p->nserver_names, 1);
    assert_string_equal(p->server_names[0], "b s");
    task_program_free(&p);
    p = parse_ok("<config><lwm2mBootstrapConfiguration serverId=\"9223372036854775807\"/></config>");
    assert_int_equal(p->server_ids[0], INT64_MAX);
    task_program_free(&p);
}

static void test_op_flags(void **state)
{
    static const struct {
        const char *steps;
        bool bs, mgmt;
    } t[] = {
        {"<log message=\"a\"/>", false, false},
        {"<lwm2mBootstrapCleanse/>", true, false},
        {"<lwm2mBootstrap/>", true, false},
        {"<lwm2mBootstrapConfiguration serverName=\"x\"/>", true, false},
        {"<set key=\"/1/0/1\" value=\"1\"/><get key=\"/3\" output=\"x\"/><execute key=\"/3/0/4\"/>", false, false},
        {"<delete key=\"/1/0\"/>", false, true},
        {"<create key=\"/1\"/>", false, true},
        {"<observe key=\"/3\"/>", false, true},
        {"<setAttributes key=\"/3\"/>", false, true},
        {"<if expr=\"${1}\"><else/><observe key=\"/3\"/><lwm2mBootstrapCleanse/></if>", true, true},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char x[512];
        snprintf(x, sizeof x, "<config>%s</config>", t[i].steps);
        task_program_t *p = parse_ok(x);
        if (p->has_bootstrap_ops != t[i].bs || p->has_management_ops != t[i].mgmt)
            fail_msg("%s: bootstrap %d management %d", t[i].steps, p->has_bootstrap_ops, p->has_management_ops);
        task_program_free(&p);
    }
}

/* Which session a new run may start in: the first session-specific step. */
static void test_runs_in(void **state)
{
    static const struct {
        const char *steps;
        bool bs, mgmt;
    } t[] = {
        {"", true, true},
        {"<log message=\"a\"/><store target=\"x\" value=\"1\"/><rest url=\"http://a\"/>", true, true},
        {"<set key=\"/1/0/1\" value=\"1\"/><get key=\"/3\" output=\"x\"/><execute key=\"/3/0/4\"/>", true, true},
        {"<lwm2mBootstrapCleanse/>", true, false},
        {"<lwm2mBootstrapConfiguration serverId=\"8\"/>", true, false},
        {"<lwm2mBootstrap performBootstrapFinish=\"true\"/>", true, false},
        {"<set key=\"/7/0/8\" value=\"60\"/><lwm2mBootstrap/>", true, false},
        {"<delete key=\"/5/0\"/>", false, true},
        {"<create key=\"/5\"/>", false, true},
        {"<observe key=\"/3/0/9\"/>", false, true},
        {"<setAttributes key=\"/3/0/9\" pmin=\"1\"/>", false, true},
        {"<if expr=\"${true}\"><log message=\"a\"/><else/><observe key=\"/3\"/></if>", false, true},
        /* both kinds: the first one in document order decides */
        {"<lwm2mBootstrap performBootstrapFinish=\"true\"/><wait/><delete key=\"/5/0\"/>", true, false},
        {"<delete key=\"/5/0\"/><wait/><lwm2mBootstrapCleanse/>", false, true},
        {"<if expr=\"${true}\"><delete key=\"/5/0\"/><else/><lwm2mBootstrapCleanse/></if>", false, true},
        /* a comment is not read */
        {"<comment><delete key=\"/5/0\"/></comment>", true, true},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char x[512];
        snprintf(x, sizeof x, "<config>%s</config>", t[i].steps);
        task_program_t *p = parse_ok(x);
        bool bs = task_runs_in(p, TR_SESSION_BOOTSTRAP), mg = task_runs_in(p, TR_SESSION_MANAGEMENT);
        if (bs != t[i].bs || mg != t[i].mgmt)
            fail_msg("%s: bootstrap %d management %d", t[i].steps, bs, mg);
        task_program_free(&p);
    }
    assert_false(task_runs_in(NULL, TR_SESSION_BOOTSTRAP));
    for (int k = 0; k < TASK_KIND_COUNT; k++) {
        int want = k == TASK_CLEANSE || k == TASK_CONFIGURATION || k == TASK_BOOTSTRAP ? TR_SESSION_BOOTSTRAP
                   : k == TASK_DELETE || k == TASK_CREATE || k == TASK_OBSERVE || k == TASK_SET_ATTRIBUTES
                       ? TR_SESSION_MANAGEMENT
                       : -1;
        assert_int_equal(task_kind_session((task_kind_t)k), want);
    }
}

/* nnodes counts every step; the fingerprint follows what is written, not
 * how it is laid out. */
static void test_fingerprint(void **state)
{
    task_program_t *a = parse_ok("<config><set key=\"/7/0/8\" value=\"60\"/><if expr=\"${true}\"><log message=\"x\"/>"
                                 "<else/><wait/></if><lwm2mBootstrap><write key=\"/1/0/1\" value=\"5\"/>"
                                 "</lwm2mBootstrap></config>");
    task_program_t *b = parse_ok("<config>\n  <set key=\"/7/0/8\"   value=\"60\" />\n<!-- note -->\n"
                                 "  <if expr=\"${true}\">\n <log message=\"x\"/>\n<else/>\n<wait/>\n</if>\n"
                                 "  <lwm2mBootstrap>\n<write key=\"/1/0/1\" value=\"5\"/>\n</lwm2mBootstrap>\n</config>");
    task_program_t *c = parse_ok("<config><set key=\"/7/0/8\" value=\"61\"/><if expr=\"${true}\"><log message=\"x\"/>"
                                 "<else/><wait/></if><lwm2mBootstrap><write key=\"/1/0/1\" value=\"5\"/>"
                                 "</lwm2mBootstrap></config>");
    task_program_t *d = parse_ok("<config><set key=\"/7/0/8\" value=\"60\"/><if expr=\"${true}\"><log message=\"x\"/>"
                                 "<wait/></if><lwm2mBootstrap><write key=\"/1/0/1\" value=\"5\"/>"
                                 "</lwm2mBootstrap></config>");
    assert_int_equal(a->nnodes, 6);
    assert_int_equal(b->nnodes, 6);
    assert_true(a->fingerprint == b->fingerprint);
    assert_true(a->fingerprint != c->fingerprint); /* another value */
    assert_true(a->fingerprint != d->fingerprint); /* the wait moved from else to then */
    task_program_free(&a);
    task_program_free(&b);
    task_program_free(&c);
    task_program_free(&d);
    task_program_t *e = parse_ok("<config/>");
    assert_int_equal(e->nnodes, 0);
    task_program_free(&e);
}

/* Every attribute with "${" is compiled; no other. */
static void check_exprs(const task_step_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < s[i].nattrs; k++)
            assert_int_equal(s[i].attrs[k].expr != NULL, expr_has_parts(s[i].attrs[k].raw));
        check_exprs(s[i].children, s[i].nchildren);
        check_exprs(s[i].else_children, s[i].nelse);
    }
}

static void test_exprs_compiled(void **state)
{
    task_program_t *p = parse_ok(k_everything);
    check_exprs(p->steps, p->nsteps);
    /* and the compiled template evaluates */
    const task_attr_t *url = task_step_attr(&p->steps[0], "url");
    assert_null(url); /* cleanse has no attributes */
    task_program_free(&p);
    p = parse_ok(k_seed_rest);
    url = task_step_attr(&p->steps[0], "url");
    char *out = NULL;
    size_t outlen = 0;
    expr_error_t ee;
    /* no lookup: device.id is unknown, and the error says where */
    expr_env_t env = {NULL, NULL};
    assert_int_equal(expr_eval(url->expr, &env, &out, &outlen, &ee), -1);
    free(out);
    task_program_free(&p);
}

/* ------------------------------------------------------------------------ */
/* task_value_parse                                                          */
/* ------------------------------------------------------------------------ */

static void test_value_parse(void **state)
{
    lwm2m_record_t r;
    char why[200];
    memset(&r, 0, sizeof r);
    r.path = lwm2m_path_make(3, 1, 0, 1, 0);
    assert_int_equal(task_value_parse(LWM2M_T_INTEGER, "-42", 3, &r, why, sizeof why), 0);
    assert_int_equal(r.type, LWM2M_T_INTEGER);
    assert_int_equal(r.v.i, -42);
    assert_int_equal(r.path.ids[2], 1); /* path kept */
    assert_int_equal(task_value_parse(LWM2M_T_UNSIGNED, "18446744073709551615", 20, &r, why, sizeof why), 0);
    assert_true(r.v.u == UINT64_MAX);
    assert_int_equal(task_value_parse(LWM2M_T_UNSIGNED, "18446744073709551616", 20, &r, why, sizeof why), -1);
    assert_int_equal(task_value_parse(LWM2M_T_FLOAT, "2.5e1", 5, &r, why, sizeof why), 0);
    assert_true(r.v.f == 25.0);
    assert_int_equal(task_value_parse(LWM2M_T_BOOLEAN, "true", 4, &r, why, sizeof why), 0);
    assert_true(r.v.b);
    assert_int_equal(task_value_parse(LWM2M_T_BOOLEAN, "0", 1, &r, why, sizeof why), 0);
    assert_false(r.v.b);
    assert_int_equal(task_value_parse(LWM2M_T_TIME, "1700000000", 10, &r, why, sizeof why), 0);
    assert_int_equal(r.v.i, 1700000000);
    assert_int_equal(task_value_parse(LWM2M_T_OBJLNK, "3:12", 4, &r, why, sizeof why), 0);
    assert_int_equal(r.v.lnk.oid, 3);
    assert_int_equal(r.v.lnk.iid, 12);
    assert_int_equal(task_value_parse(LWM2M_T_OPAQUE, "00fFA0", 6, &r, why, sizeof why), 0);
    assert_int_equal(r.nbytes, 3);
    assert_memory_equal(r.bytes, "\x00\xff\xa0", 3);
    free(r.bytes);
    /* strings are binary-safe: the length counts, not a NUL */
    assert_int_equal(task_value_parse(LWM2M_T_STRING, "a\0b", 3, &r, why, sizeof why), 0);
    assert_int_equal(r.nbytes, 3);
    assert_memory_equal(r.bytes, "a\0b", 4);
    free(r.bytes);
    assert_int_equal(task_value_parse(LWM2M_T_NONE, "", 0, &r, why, sizeof why), 0);
    assert_int_equal(task_value_parse(LWM2M_T_NONE, "x", 1, &r, why, sizeof why), -1);
    /* only len bytes are read */
    assert_int_equal(task_value_parse(LWM2M_T_INTEGER, "12x", 2, NULL, why, sizeof why), 0);
    assert_int_equal(task_value_parse(LWM2M_T_INTEGER, "", 0, NULL, why, sizeof why), -1);
    assert_non_null(strstr(why, "'' is not an integer"));
    assert_int_equal(task_value_parse(LWM2M_T_INTEGER, "-", 1, NULL, why, sizeof why), -1);
    assert_int_equal(task_value_parse(LWM2M_T_FLOAT, "1e", 2, NULL, why, sizeof why), -1);
    assert_int_equal(task_value_parse(LWM2M_T_FLOAT, ".", 1, NULL, why, sizeof why), -1);
    assert_int_equal(task_value_parse(LWM2M_T_FLOAT, "inf", 3, NULL, why, sizeof why), -1);
    assert_int_equal(task_value_parse(LWM2M_T_OBJLNK, ":1", 2, NULL, why, sizeof why), -1);
    assert_int_equal(task_value_parse(LWM2M_T_OBJLNK, "1:2:3", 5, NULL, why, sizeof why), -1);
    assert_int_equal(task_value_parse((lwm2m_type_t)99, "1", 1, NULL, why, sizeof why), -1);
    /* a failure leaves the record as it was */
    memset(&r, 0x11, sizeof r);
    lwm2m_record_t before = r;
    assert_int_equal(task_value_parse(LWM2M_T_OPAQUE, "0g", 2, &r, why, sizeof why), -1);
    assert_memory_equal(&r, &before, sizeof r);
    /* long values are cut in the message, binary shown escaped */
    char big[300];
    memset(big, '7', sizeof big);
    big[0] = '\x01';
    assert_int_equal(task_value_parse(LWM2M_T_BOOLEAN, big, sizeof big, NULL, why, sizeof why), -1);
    assert_non_null(strstr(why, "'\\x017777"));
    assert_non_null(strstr(why, "...' is not a boolean"));
    /* why may be NULL */
    assert_int_equal(task_value_parse(LWM2M_T_INTEGER, "x", 1, NULL, NULL, 0), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_seed_rest),
        cmocka_unit_test(test_seed_low_level),
        cmocka_unit_test(test_seed_additional),
        cmocka_unit_test(test_everything_tree),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_step_limit),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_big_lines),
        cmocka_unit_test(test_multiline_tag),
        cmocka_unit_test(test_utf16),
        cmocka_unit_test(test_api_edges),
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_step_attr),
        cmocka_unit_test(test_server_refs),
        cmocka_unit_test(test_op_flags),
        cmocka_unit_test(test_runs_in),
        cmocka_unit_test(test_fingerprint),
        cmocka_unit_test(test_exprs_compiled),
        cmocka_unit_test(test_value_parse),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
