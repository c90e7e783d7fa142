#include "server/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/common/log.h"

void lwdm_config_defaults(lwdm_config_t *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->db_path, sizeof c->db_path, "./lwdm.db");
    snprintf(c->http_addr, sizeof c->http_addr, "127.0.0.1");
    c->http_port = 8080;
    snprintf(c->coap_addr, sizeof c->coap_addr, "127.0.0.1");
    c->coap_port = 5683;
    c->coaps_port = 5684;
    c->bs_coap_port = 5693;
    c->bs_coaps_port = 5694;
    c->tcp = 1;
    c->own_udp = 1;
    c->accept_unknown = -1;
    c->log_level = LOG_LVL_INFO;
    c->log_format = LOG_FMT_TEXT;
    c->http_threads = 4;
    c->bs_timeout_s = 120;
    c->queue_awake_ms = 93000;
}

const char *lwdm_config_usage(void)
{
    return "usage: lwdm serve [options]\n"
           "\n"
           "Every option can also be given as an environment variable (shown in brackets);\n"
           "the command-line flag wins.\n"
           "\n"
           "  --db PATH               SQLite database file [LWDM_DB] (default ./lwdm.db)\n"
           "  --http ADDR:PORT        REST API and web UI [LWDM_HTTP] (default 127.0.0.1:8080)\n"
           "  --coap-addr ADDR        address the CoAP endpoints bind to [LWDM_COAP_ADDR] (default 127.0.0.1)\n"
           "  --coap PORT             management, plain CoAP [LWDM_COAP] (default 5683)\n"
           "  --coaps PORT            management, CoAP over DTLS [LWDM_COAPS] (default 5684)\n"
           "  --bs-coap PORT          bootstrap, plain CoAP [LWDM_BS_COAP] (default 5693)\n"
           "  --bs-coaps PORT         bootstrap, CoAP over DTLS-PSK [LWDM_BS_COAPS] (default 5694)\n"
           "                          (a port of 0 picks a free one; 'off' disables the endpoint)\n"
           "  --tcp on|off            also listen for CoAP over TCP on the coap ports and over\n"
           "                          TLS-PSK on the coaps ports, same port numbers (RFC 8323)\n"
           "                          [LWDM_TCP] (default on)\n"
           "  --coap-udp lwdm|libcoap which CoAP stack serves the plain-CoAP management and\n"
           "                          bootstrap ports: lwdm's own UDP endpoint (constant cost per\n"
           "                          message at any fleet size, answers sent in batches) or\n"
           "                          libcoap's [LWDM_COAP_UDP] (default lwdm)\n"
           "  --objects DIR           extra OMA object XMLs, added to the built-in ones [LWDM_OBJECTS]\n"
           "  --public-host HOST      host written into the first-run server entries [LWDM_PUBLIC_HOST]\n"
           "                          (default: the CoAP address, or 127.0.0.1 for 0.0.0.0)\n"
           "  --accept-unknown on|off create unknown devices that bootstrap over plain CoAP\n"
           "                          [LWDM_ACCEPT_UNKNOWN] (default: the stored setting, on after first run)\n"
           "  --web DIR               web UI files [LWDM_WEB]\n"
           "  --http-threads N        HTTP worker threads [LWDM_HTTP_THREADS] (default 4)\n"
           "  --bs-timeout SECONDS    limit for one bootstrap session [LWDM_BS_TIMEOUT] (default 120)\n"
           "  --queue-awake MS        how long a queue-mode device stays reachable after its last\n"
           "                          message [LWDM_QUEUE_AWAKE] (default 93000, MAX_TRANSMIT_WAIT)\n"
           "  --log-level LEVEL       debug|info|warn|error [LWDM_LOG_LEVEL] (default info)\n"
           "  --log-format FORMAT     text|json [LWDM_LOG_FORMAT] (default text)\n"
           "  -h, --help              this text\n"
           "\n"
           "Environment only:\n"
           "  LWDM_ADMIN_PASSWORD     password of user 'admin' created on first start\n"
           "                          (if unset, one is generated and printed once)\n"
           "  LWDM_SECRET_KEY         key that encrypts secrets at rest (64 hex chars); if unset,\n"
           "                          the key file <db>.key (mode 0600) is used or created\n";
}

int lwdm_config_parse_hostport(const char *s, char *addr, size_t addrcap, int *port)
{
    const char *colon = NULL;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return -1;
        size_t n = (size_t)(rb - s - 1);
        if (n == 0 || n >= addrcap)
            return -1;
        memcpy(addr, s + 1, n);
        addr[n] = 0;
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon) {
            size_t n = (size_t)(colon - s);
            if (n == 0 || n >= addrcap)
                return -1;
            memcpy(addr, s, n);
            addr[n] = 0;
        }
    }
    const char *p = colon ? colon + 1 : s;
    char *end;
    errno = 0;
    long v = strtol(p, &end, 10);
    if (*p == 0 || *end || errno || v < 0 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

static int parse_port(const char *v, int *out)
{
    if (strcasecmp(v, "off") == 0 || strcasecmp(v, "none") == 0) {
        *out = LWDM_PORT_OFF;
        return 0;
    }
    char *end;
    errno = 0;
    long p = strtol(v, &end, 10);
    if (*v == 0 || *end || errno || p < 0 || p > 65535)
        return -1;
    *out = (int)p;
    return 0;
}

static int parse_bool(const char *v, int *out)
{
    if (!strcasecmp(v, "on") || !strcasecmp(v, "true") || !strcasecmp(v, "1") || !strcasecmp(v, "yes"))
        *out = 1;
    else if (!strcasecmp(v, "off") || !strcasecmp(v, "false") || !strcasecmp(v, "0") || !strcasecmp(v, "no"))
        *out = 0;
    else
        return -1;
    return 0;
}

static int parse_uint(const char *v, unsigned lo, unsigned hi, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long x = strtoul(v, &end, 10);
    if (*v == 0 || *end || errno || x < lo || x > hi)
        return -1;
    *out = (unsigned)x;
    return 0;
}

#define COPY(dst, v) snprintf((dst), sizeof(dst), "%s", (v))

/* Applies one option; name without the leading dashes. */
static int apply(lwdm_config_t *c, const char *name, const char *v, char *err, size_t errlen)
{
    int rc = 0;
    if (!strcmp(name, "db")) {
        if (!*v) rc = -1; else COPY(c->db_path, v);
    } else if (!strcmp(name, "http")) {
        rc = lwdm_config_parse_hostport(v, c->http_addr, sizeof c->http_addr, &c->http_port);
    } else if (!strcmp(name, "coap-addr")) {
        if (!*v) rc = -1; else COPY(c->coap_addr, v);
    } else if (!strcmp(name, "coap")) {
        rc = parse_port(v, &c->coap_port);
    } else if (!strcmp(name, "coaps")) {
        rc = parse_port(v, &c->coaps_port);
    } else if (!strcmp(name, "bs-coap")) {
        rc = parse_port(v, &c->bs_coap_port);
    } else if (!strcmp(name, "bs-coaps")) {
        rc = parse_port(v, &c->bs_coaps_port);
    } else if (!strcmp(name, "tcp")) {
        rc = parse_bool(v, &c->tcp);
    } else if (!strcmp(name, "coap-udp")) {
        if (!strcasecmp(v, "lwdm")) c->own_udp = 1;
        else if (!strcasecmp(v, "libcoap")) c->own_udp = 0;
        else rc = -1;
    } else if (!strcmp(name, "objects")) {
        COPY(c->objects_dir, v);
    } else if (!strcmp(name, "public-host")) {
        COPY(c->public_host, v);
    } else if (!strcmp(name, "accept-unknown")) {
        rc = parse_bool(v, &c->accept_unknown);
    } else if (!strcmp(name, "web")) {
        COPY(c->web_dir, v);
    } else if (!strcmp(name, "http-threads")) {
        rc = parse_uint(v, 1, 256, &c->http_threads);
    } else if (!strcmp(name, "bs-timeout")) {
        rc = parse_uint(v, 1, 3600, &c->bs_timeout_s);
    } else if (!strcmp(name, "queue-awake")) {
        rc = parse_uint(v, 100, 3600000, &c->queue_awake_ms);
    } else if (!strcmp(name, "log-level")) {
        int l = log_level_parse(v);
        if (l < 0) rc = -1; else c->log_level = l;
    } else if (!strcmp(name, "log-format")) {
        if (!strcasecmp(v, "text")) c->log_format = LOG_FMT_TEXT;
        else if (!strcasecmp(v, "json")) c->log_format = LOG_FMT_JSON;
        else rc = -1;
    } else {
        snprintf(err, errlen, "unknown option --%s (see lwdm serve --help)", name);
        return -1;
    }
    if (rc != 0)
        snprintf(err, errlen, "invalid value for --%s: '%s'", name, v);
    return rc;
}

static const struct { const char *env, *opt; } k_env[] = {
    {"LWDM_DB", "db"}, {"LWDM_HTTP", "http"}, {"LWDM_COAP_ADDR", "coap-addr"},
    {"LWDM_COAP", "coap"}, {"LWDM_COAPS", "coaps"}, {"LWDM_BS_COAP", "bs-coap"},
    {"LWDM_BS_COAPS", "bs-coaps"}, {"LWDM_TCP", "tcp"}, {"LWDM_COAP_UDP", "coap-udp"}, {"LWDM_OBJECTS", "objects"}, {"LWDM_PUBLIC_HOST", "public-host"},
    {"LWDM_ACCEPT_UNKNOWN", "accept-unknown"}, {"LWDM_WEB", "web"},
    {"LWDM_HTTP_THREADS", "http-threads"}, {"LWDM_BS_TIMEOUT", "bs-timeout"},
    {"LWDM_QUEUE_AWAKE", "queue-awake"},
    {"LWDM_LOG_LEVEL", "log-level"}, {"LWDM_LOG_FORMAT", "log-format"},
};

int lwdm_config_parse(lwdm_config_t *c, int argc, char **argv, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof k_env / sizeof k_env[0]; i++) {
        const char *v = getenv(k_env[i].env);
        if (v && *v) {
            char e2[256];
            if (apply(c, k_env[i].opt, v, e2, sizeof e2) != 0) {
                snprintf(err, errlen, "%s: %s", k_env[i].env, e2);
                return -1;
            }
        }
    }
    const char *pw = getenv("LWDM_ADMIN_PASSWORD");
    if (pw)
        COPY(c->admin_password, pw);
    const char *key = getenv("LWDM_SECRET_KEY");
    if (key)
        COPY(c->secret_key, key);

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == 0) {
            snprintf(err, errlen, "unexpected argument '%s' (see lwdm serve --help)", a);
            return -1;
        }
        char name[64];
        const char *eq = strchr(a + 2, '=');
        const char *val;
        size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (n >= sizeof name) {
            snprintf(err, errlen, "unknown option '%s'", a);
            return -1;
        }
        memcpy(name, a + 2, n);
        name[n] = 0;
        if (eq) {
            val = eq + 1;
        } else {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "option --%s needs a value", name);
                return -1;
            }
            val = argv[++i];
        }
        if (apply(c, name, val, err, errlen) != 0)
            return -1;
    }
    if (!c->public_host[0]) {
        if (!strcmp(c->coap_addr, "0.0.0.0") || !strcmp(c->coap_addr, "::"))
            COPY(c->public_host, "127.0.0.1");
        else
            COPY(c->public_host, c->coap_addr);
    }
    return 0;
}
