/* Safe XML reading shared by the object registry and the task parser: see
 * xml_safe.h for what is refused and why. */
#include "server/lwm2m/xml_safe.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>

typedef struct {
    bool saw_dtd;
    /* libxml2's own handlers, wrapped to record lines */
    startElementNsSAX2Func start_element;
    charactersSAXFunc characters;
    cdataBlockSAXFunc cdata_block;
} hooks_t;

/* SAX hooks: any DOCTYPE or entity declaration stops the parse at once. */
static void refuse_dtd(void *ctx)
{
    xmlParserCtxtPtr ctxt = ctx;
    ((hooks_t *)ctxt->_private)->saw_dtd = true;
    xmlStopParser(ctxt);
}

static void on_internal_subset(void *ctx, const xmlChar *name, const xmlChar *eid, const xmlChar *sid)
{
    refuse_dtd(ctx);
}

static void on_entity_decl(void *ctx, const xmlChar *name, int type, const xmlChar *pid, const xmlChar *sid,
                           xmlChar *content)
{
    refuse_dtd(ctx);
}

static void on_unparsed_entity_decl(void *ctx, const xmlChar *name, const xmlChar *pid, const xmlChar *sid,
                                    const xmlChar *notation)
{
    refuse_dtd(ctx);
}

/* libxml2 dates an element by the line where its start tag ends (the SAX
 * callback runs there) and keeps it in an unsigned short that saturates at
 * 65535. The line where the tag starts is that line minus the line breaks
 * between the tag's '<' and the parser's position (a '<' cannot occur raw
 * inside a start tag, and the tag is still in the input buffer while its
 * callback runs: libxml2 keeps it for the attribute values). It goes into
 * the element's _private (unused by libxml2 and by our callers), read back by
 * lwm2m_xml_line. */
static void on_start_element(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri,
                             int nb_namespaces, const xmlChar **namespaces, int nb_attributes, int nb_defaulted,
                             const xmlChar **attributes)
{
    xmlParserCtxtPtr ctxt = ctx;
    hooks_t *h = ctxt->_private;
    xmlNodePtr before = ctxt->node;
    h->start_element(ctx, localname, prefix, uri, nb_namespaces, namespaces, nb_attributes, nb_defaulted,
                     attributes);
    xmlNodePtr n = ctxt->node;
    xmlParserInputPtr in = ctxt->input;
    if (!n || n == before || n->type != XML_ELEMENT_NODE || !in || !in->cur || !in->base || in->line < 1)
        return;
    long line = in->line, breaks = 0;
    for (const xmlChar *p = in->cur; p > in->base;) {
        --p;
        if (*p == '<') {
            if (breaks < line)
                line -= breaks;
            break;
        }
        breaks += *p == '\n';
    }
    n->_private = (void *)(intptr_t)line;
}

/* Text arrives in chunks, each reported once the parser has read past it, so
 * the line of a chunk's first non-blank character is the parser's line minus
 * the line breaks after that character. The first such chunk of a text (or
 * CDATA) node dates the node, in its _private. */
static void date_text(xmlParserCtxtPtr ctxt, const xmlChar *ch, int len)
{
    xmlNodePtr parent = ctxt->node, t = parent ? parent->last : NULL;
    if (!t || (t->type != XML_TEXT_NODE && t->type != XML_CDATA_SECTION_NODE) || t->_private || !ctxt->input)
        return;
    int first = 0;
    while (first < len && (ch[first] == ' ' || ch[first] == '\t' || ch[first] == '\n' || ch[first] == '\r'))
        first++;
    if (first == len)
        return;
    long line = ctxt->input->line;
    for (int i = first; i < len; i++)
        line -= ch[i] == '\n';
    t->_private = (void *)(intptr_t)(line > 0 ? line : 1);
}

static void on_characters(void *ctx, const xmlChar *ch, int len)
{
    hooks_t *h = ((xmlParserCtxtPtr)ctx)->_private;
    h->characters(ctx, ch, len);
    date_text(ctx, ch, len);
}

static void on_cdata_block(void *ctx, const xmlChar *ch, int len)
{
    hooks_t *h = ((xmlParserCtxtPtr)ctx)->_private;
    h->cdata_block(ctx, ch, len);
    date_text(ctx, ch, len);
}

/* libxml2 reports some errors (encoding conversion, for one) outside the
 * parser context, through the generic handler that prints to stderr. While we
 * parse, a structured handler (thread-local in libxml2's threaded build)
 * swallows them and keeps the first message for the error text. */
typedef struct {
    char first[160];
} quiet_t;

static void quiet_handler(void *ctx, xmlErrorPtr e)
{
    quiet_t *q = ctx;
    if (q && !q->first[0] && e && e->message)
        snprintf(q->first, sizeof q->first, "%s", e->message);
}

static void set_status(lwm2m_xml_error_t *err, lwm2m_xml_status_t st, int line, int column, const char *msg)
{
    if (!err)
        return;
    err->status = st;
    err->line = line;
    err->column = column;
    snprintf(err->msg, sizeof err->msg, "%s", msg ? msg : "");
    size_t n = strlen(err->msg);
    while (n && (err->msg[n - 1] == ' ' || err->msg[n - 1] == '\n' || err->msg[n - 1] == '\r' ||
                 err->msg[n - 1] == '\t'))
        err->msg[--n] = '\0';
}

xmlDocPtr lwm2m_xml_read(const char *buf, size_t len, lwm2m_xml_error_t *err)
{
    if (!buf || !len) {
        set_status(err, LWM2M_XML_EMPTY, 0, 0, "empty document");
        return NULL;
    }
    if (len > (size_t)INT32_MAX) {
        set_status(err, LWM2M_XML_MALFORMED, 0, 0, "document too large");
        return NULL;
    }
    xmlInitParser();
    xmlParserCtxtPtr ctxt = xmlCreateMemoryParserCtxt(buf, (int)len);
    if (!ctxt) {
        set_status(err, LWM2M_XML_NOMEM, 0, 0, "out of memory");
        return NULL;
    }
    hooks_t hooks = {false, ctxt->sax->startElementNs, ctxt->sax->characters, ctxt->sax->cdataBlock};
    ctxt->_private = &hooks;
    /* ctxt->sax is this context's own copy of the SAX2 handler */
    ctxt->sax->internalSubset = on_internal_subset;
    ctxt->sax->externalSubset = on_internal_subset;
    ctxt->sax->entityDecl = on_entity_decl;
    ctxt->sax->unparsedEntityDecl = on_unparsed_entity_decl;
    if (hooks.start_element)
        ctxt->sax->startElementNs = on_start_element;
    if (hooks.characters) {
        /* blank text goes through ignorableWhitespace, which SAX2 points at
         * the same handler; it needs no date */
        ctxt->sax->characters = on_characters;
    }
    if (hooks.cdata_block)
        ctxt->sax->cdataBlock = on_cdata_block;
    xmlCtxtUseOptions(ctxt, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_BIG_LINES);
    quiet_t quiet = {""};
    xmlStructuredErrorFunc old_handler = xmlStructuredError;
    void *old_ctx = xmlStructuredErrorContext;
    xmlSetStructuredErrorFunc(&quiet, quiet_handler);
    xmlParseDocument(ctxt);
    xmlSetStructuredErrorFunc(old_ctx, old_handler);
    xmlDocPtr doc = ctxt->myDoc;
    ctxt->myDoc = NULL;

    bool ok = false;
    if (hooks.saw_dtd || (doc && (doc->intSubset || doc->extSubset))) {
        set_status(err, LWM2M_XML_DOCTYPE, 0, 0, "DOCTYPE and entity declarations are not allowed");
    } else if (!ctxt->wellFormed || !doc) {
        const xmlError *e = xmlCtxtGetLastError(ctxt);
        const char *msg = e && e->message ? e->message : quiet.first[0] ? quiet.first : "not well-formed";
        /* libxml2 says "document empty" also for text with no '<' at all */
        bool blank = true;
        for (size_t i = 0; i < len && blank; i++)
            blank = buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r';
        lwm2m_xml_status_t st = blank ? LWM2M_XML_EMPTY : LWM2M_XML_MALFORMED;
        if (e && e->code == XML_ERR_NO_MEMORY)
            st = LWM2M_XML_NOMEM;
        set_status(err, st, e ? e->line : 0, e ? e->int2 : 0, msg);
    } else if (!xmlDocGetRootElement(doc)) {
        set_status(err, LWM2M_XML_EMPTY, 0, 0, "no root element");
    } else {
        ok = true;
        set_status(err, LWM2M_XML_OK, 0, 0, "");
    }
    xmlFreeParserCtxt(ctxt);
    if (!ok && doc) {
        xmlFreeDoc(doc);
        doc = NULL;
    }
    return doc;
}

long lwm2m_xml_line(const xmlNode *n)
{
    if (!n)
        return 0;
    if ((n->type == XML_ELEMENT_NODE || n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) &&
        n->_private)
        return (long)(intptr_t)n->_private;
    return xmlGetLineNo(n);
}
