/* Safe reading of operator-supplied XML (object definitions, task
 * configurations) with libxml2.
 *
 * The parse runs with no network (XML_PARSE_NONET), no DTD loading and no
 * entity substitution (neither XML_PARSE_DTDLOAD nor XML_PARSE_NOENT), no
 * XInclude, and the default libxml2 size limits (no XML_PARSE_HUGE). On top of
 * that a document with any DOCTYPE is refused: a SAX hook stops the parser as
 * soon as the DOCTYPE is seen, before its internal subset (and so any entity
 * declaration) is read. Refusing the DOCTYPE closes external entities (XXE)
 * and entity expansion ("billion laughs") at once, whatever the document's
 * encoding (a byte scan for "<!DOCTYPE" would miss a UTF-16 document). That
 * hook is why the parse goes through a parser context
 * (xmlCreateMemoryParserCtxt + xmlParseDocument) rather than xmlReadMemory.
 *
 * libxml2 errors never reach stderr: a per-parse structured handler keeps the
 * first message for the error text. */
#ifndef LWDM_LWM2M_XML_SAFE_H
#define LWDM_LWM2M_XML_SAFE_H
#include <stddef.h>

#include <libxml/tree.h>

typedef enum {
    LWM2M_XML_OK = 0,
    LWM2M_XML_EMPTY,     /* no root element (empty or blank input) */
    LWM2M_XML_DOCTYPE,   /* a DOCTYPE or entity declaration was seen */
    LWM2M_XML_MALFORMED, /* not well-formed; line/column/msg say where and why */
    LWM2M_XML_NOMEM,
} lwm2m_xml_status_t;

typedef struct {
    lwm2m_xml_status_t status;
    int line;       /* of the fault (0 if unknown) */
    int column;     /* 1-based where libxml2 knows it, else 0 */
    char msg[256];  /* libxml2's message, trailing white space dropped; "" if none */
} lwm2m_xml_error_t;

/* Parses buf[0..len) (len must fit an int; callers bound it far below).
 * Returns the document (free with xmlFreeDoc) or NULL with err filled. */
xmlDocPtr lwm2m_xml_read(const char *buf, size_t len, lwm2m_xml_error_t *err);

/* Line of a node of a document read by lwm2m_xml_read. For an element, the
 * line where its start tag begins (xmlGetLineNo gives the line where the tag
 * ends), also past line 65535 where libxml2 2.9's node->line saturates; for
 * a text or CDATA node with non-blank content, the line of its first
 * non-blank character; for other nodes, xmlGetLineNo. */
long lwm2m_xml_line(const xmlNode *n);

#endif
