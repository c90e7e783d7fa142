/* Device operations: the contract between the REST API (HTTP worker threads)
 * and the registration interface (network loop), DESIGN.md "Process model".
 *
 * The API fills a devop_t from the HTTP request and submits it; the loop
 * takes it over until it calls op->done(op) exactly once, from the loop
 * thread, with the answer filled in. The API then resumes the suspended HTTP
 * connection and sends op->http_status with op->result_json (an object, or
 * NULL for "no body"); for errors op->title/op->detail/op->field make the
 * problem document. The op stays owned by the API (it frees it after done). */
#ifndef LWDM_COMMON_DEVOPS_H
#define LWDM_COMMON_DEVOPS_H
#include <stdint.h>

typedef enum {
    DEVOP_READ = 0,
    DEVOP_WRITE,              /* replace (CoAP PUT) */
    DEVOP_WRITE_PARTIAL,      /* update (CoAP POST) */
    DEVOP_EXECUTE,
    DEVOP_CREATE,
    DEVOP_DELETE,
    DEVOP_DISCOVER,
    DEVOP_WRITE_ATTRIBUTES,
    DEVOP_OBSERVE,
    DEVOP_CANCEL_OBSERVE,
    DEVOP_READ_COMPOSITE,
    DEVOP_WRITE_COMPOSITE,
    DEVOP_BOOTSTRAP_TRIGGER,  /* execute /1/x/9 */
    DEVOP_REQUEST_STATUS,     /* state of a queued request (request_id) */
} devop_kind_t;

typedef struct devop devop_t;
struct devop {
    /* request */
    devop_kind_t kind;
    int64_t device_id;
    char path[48];            /* "/3/0/1"; "" for composite operations */
    int format;               /* Content-Format, -1 = chosen from the registration */
    char *body_json;          /* request body as JSON text (writes, create, execute
                                 arguments, attributes, composite paths), or NULL */
    char *query;              /* discover: "depth=2", or NULL */
    int64_t request_id;       /* DEVOP_REQUEST_STATUS */
    unsigned timeout_ms;
    const char *domain;       /* caller's domain: devices outside it are 404 */
    /* completion */
    void (*done)(devop_t *op);
    void *user;
    /* answer */
    int http_status;
    char *result_json;        /* malloc'd JSON object text, or NULL */
    char location[96];        /* Location header for 201/202, or "" */
    char title[64];
    char detail[256];
    char field[64];
};

/* How the API reaches the loop. submit() is thread-safe; it returns 0 when
 * the loop took the op (done() will be called), -1 when the server is
 * stopping (done() will not be called). */
typedef struct {
    int (*submit)(void *ctx, devop_t *op);
    /* A device was deleted: its registration, requests and observations go
     * (thread-safe, returns at once). */
    void (*forget)(void *ctx, int64_t device_id);
    void *ctx;
} devops_t;

#endif
