/* api: the REST API (/api/v1/...), /healthz, /metrics, static web files,
 * served by libmicrohttpd from its own thread pool. Each worker thread opens
 * its own db_t on first use. */
#ifndef LWDM_API_H
#define LWDM_API_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/common/devops.h"

struct lwm2m_registry;
struct events;
typedef struct api api_t;

typedef struct {
    const char *db_path;          /* each worker opens its own connection */
    const uint8_t *secret_key;    /* 32 bytes, for db_open */
    const char *bind_addr;        /* "127.0.0.1" */
    uint16_t port;                /* 0 = pick a free port (see api_port) */
    unsigned threads;             /* worker threads, default 4 */
    const char *web_dir;          /* static files for "/", NULL = none */
    const char *default_domain;   /* "/" */
    /* Public CoAP endpoints used to fill default URIs, e.g. for docs. */
    const char *public_host;
    /* Object definitions (immutable after start-up; shared read-only by the
     * worker threads), used to validate task keys when a task is saved. */
    const struct lwm2m_registry *registry;
    /* Live events bus (server/common/events.h) served by GET /api/v1/events;
     * borrowed, must outlive the api (api_stop). NULL = no live events. */
    struct events *events;
    /* Device operations (/devices/{id}/data/..., composite, bootstrap,
     * requests): handed to the network loop (server/common/devops.h).
     * submit NULL = every such request answers 503. */
    devops_t devops;
} api_config_t;

/* Starts serving. On failure returns -1 and writes err. */
int api_start(const api_config_t *cfg, api_t **out, char *err, size_t errlen);
/* The port actually bound. */
uint16_t api_port(const api_t *api);
/* /healthz calls fn(arg) (from an HTTP thread); a non-zero return reports the
 * network loop as stalled (503). Set once, right after api_start. */
void api_set_health_hook(api_t *api, int (*fn)(void *arg), void *arg);
/* Stops accepting, finishes in-flight requests, closes worker DB handles. */
void api_stop(api_t **api);
/* (added) Liveness hook for GET /healthz: `fn(arg)` returns 0 when the
 * network loop is alive, non-zero otherwise (then /healthz answers 503 with
 * "loop":"stalled"). Called from HTTP worker threads; fn must be thread-safe.
 * fn NULL removes the hook. */
void api_set_health_hook(api_t *api, int (*fn)(void *), void *arg);

#endif
