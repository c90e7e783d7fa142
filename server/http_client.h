/* Outgoing HTTP for tasks (<rest>) and calls to other servers: libcurl's multi
 * interface driven by the network loop's epoll (CURLMOPT_SOCKETFUNCTION /
 * TIMERFUNCTION), so a slow HTTP service never delays other devices.
 * Loop thread only. */
#ifndef LWDM_HTTP_CLIENT_H
#define LWDM_HTTP_CLIENT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_CLIENT_MAX_BODY (1024 * 1024) /* larger answers fail the call */

typedef struct http_client http_client_t;

typedef struct {
    const char *name, *value;
} http_header_t;

typedef struct {
    const char *method;        /* "GET" if NULL */
    const char *url;           /* http:// or https:// only */
    const char *body;          /* NULL = none */
    const char *content_type;  /* NULL = application/json when a body is given */
    const char *user, *pass;   /* basic auth, NULL = none */
    const http_header_t *headers;
    size_t nheaders;
    unsigned timeout_s;        /* whole request */
} http_request_t;

/* Called once per request (from http_client_on_fd/on_timer): the HTTP status
 * and body (borrowed for the call), or status 0 and an error. */
typedef void (*http_done_cb)(void *ud, int status, const uint8_t *body, size_t len, const char *error);

/* Sockets are added to `epfd` with data.fd set to the socket. */
int http_client_new(int epfd, http_client_t **out);
/* Cancels every request (no callbacks) and frees. */
void http_client_free(http_client_t **c);
/* Starts a request; every string is copied. *id identifies it for cancel.
 * Returns 0, or -1 (the callback will not be called). */
int http_client_start(http_client_t *c, const http_request_t *req, http_done_cb cb, void *ud, uint64_t *id);
/* Cancels a request; its callback is not called. Unknown ids are ignored. */
void http_client_cancel(http_client_t *c, uint64_t id);
/* true if fd is one of the client's sockets */
bool http_client_owns_fd(const http_client_t *c, int fd);
void http_client_on_fd(http_client_t *c, int fd, uint32_t epoll_events);
/* Milliseconds until libcurl wants a timeout callback, -1 if none. */
int64_t http_client_timeout_ms(const http_client_t *c, int64_t now_ms);
/* Runs libcurl's timeouts if due. */
void http_client_on_timer(http_client_t *c, int64_t now_ms);
size_t http_client_active(const http_client_t *c);

#endif
