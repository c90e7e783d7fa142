/* Configuration of the lwdm process: command-line flags, each also settable as
 * an LWDM_* environment variable (the flag wins). Defaults are documented in
 * README.md "Operating lwdm". */
#ifndef LWDM_CONFIG_H
#define LWDM_CONFIG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LWDM_PORT_OFF (-1)   /* endpoint disabled */

typedef struct {
    char db_path[1024];          /* --db / LWDM_DB, default ./lwdm.db */
    char http_addr[128];         /* --http ADDR:PORT / LWDM_HTTP, default 127.0.0.1:8080 */
    int http_port;
    char coap_addr[128];         /* --coap-addr / LWDM_COAP_ADDR, default 127.0.0.1 */
    int coap_port;               /* --coap / LWDM_COAP, default 5683 */
    int coaps_port;              /* --coaps / LWDM_COAPS, default 5684 */
    int bs_coap_port;            /* --bs-coap / LWDM_BS_COAP, default 5693 */
    int bs_coaps_port;           /* --bs-coaps / LWDM_BS_COAPS, default 5694 */
    int tcp;                     /* --tcp on|off / LWDM_TCP, default on: CoAP over TCP (RFC 8323) on
                                    the coap ports and over TLS-PSK on the coaps ports, same numbers */
    int own_udp;                 /* --coap-udp lwdm|libcoap / LWDM_COAP_UDP, default lwdm: which CoAP
                                    stack serves the plain-CoAP management and bootstrap ports (docs/management.md) */
    char objects_dir[1024];      /* --objects / LWDM_OBJECTS, "" = built-in only */
    char public_host[256];       /* --public-host / LWDM_PUBLIC_HOST: host put in the
                                    URIs of the first-run server entries; default:
                                    the CoAP address, or 127.0.0.1 if that is 0.0.0.0 */
    int accept_unknown;          /* --accept-unknown on|off / LWDM_ACCEPT_UNKNOWN; -1 = stored setting */
    int log_level;               /* --log-level / LWDM_LOG_LEVEL, default info */
    int log_format;              /* --log-format text|json / LWDM_LOG_FORMAT */
    char web_dir[1024];          /* --web DIR / LWDM_WEB, default: built next to the binary */
    unsigned http_threads;       /* --http-threads / LWDM_HTTP_THREADS, default 4 */
    unsigned queue_awake_ms;     /* --queue-awake / LWDM_QUEUE_AWAKE: queue-mode awake window, default 93000 */
    unsigned bs_timeout_s;       /* --bs-timeout / LWDM_BS_TIMEOUT: whole bootstrap session, default 120 */
    /* not flags: environment only, never logged */
    char admin_password[256];    /* LWDM_ADMIN_PASSWORD */
    char secret_key[256];        /* LWDM_SECRET_KEY */
} lwdm_config_t;

void lwdm_config_defaults(lwdm_config_t *c);
/* Applies LWDM_* environment variables, then argv flags (argv[0] is the first
 * flag, not the program). Returns 0, or -1 with a message in err. */
int lwdm_config_parse(lwdm_config_t *c, int argc, char **argv, char *err, size_t errlen);
/* Text of `lwdm serve --help`. */
const char *lwdm_config_usage(void);
/* Parses "ADDR:PORT", "[v6]:PORT" or "PORT" (keeping addr). Returns 0/-1. */
int lwdm_config_parse_hostport(const char *s, char *addr, size_t addrcap, int *port);

#endif
