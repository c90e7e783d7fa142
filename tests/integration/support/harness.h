/* Integration-test harness: an lwdm server running in a thread of the test
 * process (temporary database, free ports on 127.0.0.1), REST calls through
 * libcurl, and a direct DB connection for checks the API does not expose. */
#ifndef LWDM_TEST_HARNESS_H
#define LWDM_TEST_HARNESS_H
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>

#include "db/db.h"
#include "server/server.h"

#define HARNESS_ADMIN_PASSWORD "integration-admin-pw"

typedef struct {
    lwdm_server_t *srv;
    pthread_t thread;
    int running;
    char dir[256];
    char db_path[320];
    char token[160];
    uint16_t http_port, bs_coap_port, bs_coaps_port, coap_port, coaps_port;
    db_t *db;            /* the test's own connection (main thread) */
} harness_t;

typedef struct {
    unsigned bs_timeout_s;   /* 0 = default */
    const char *db_path;     /* reuse a database (restart tests); NULL = new temp dir */
    unsigned queue_awake_ms; /* server's queue-mode awake window; 0 = default */
    int keep_coap_ports;     /* restart on the CoAP ports of the previous start (devices keep talking to them) */
} harness_opts_t;

/* Starts the server; fails the test (cmocka fail_msg) on error. */
void harness_start(harness_t *h, const harness_opts_t *o);
/* Stops the server and joins its thread; keeps the temp dir (harness_cleanup removes it). */
void harness_stop(harness_t *h);
void harness_cleanup(harness_t *h);

/* HTTP call to the API with the admin token. body may be NULL. Returns the
 * status; *out (if not NULL) gets the parsed JSON body (or NULL). */
long harness_http(harness_t *h, const char *method, const char *path, const char *body, json_t **out);
/* Same with a printf-formatted path. */
long harness_httpf(harness_t *h, const char *method, const char *body, json_t **out, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* id of the LwM2M server entry with this name (fails the test if absent) */
int64_t harness_server_id(harness_t *h, const char *name);
/* PUT /bootstrap-settings */
void harness_bs_settings(harness_t *h, int64_t bs_server_id, const int64_t *mgmt, size_t n, int accept_unknown);
/* Device JSON by endpoint (NULL if none); caller json_decref's. */
json_t *harness_device(harness_t *h, const char *endpoint);

#endif
