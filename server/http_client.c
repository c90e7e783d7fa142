#include "server/http_client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

typedef struct req {
    struct http_client *c;
    CURL *easy;
    uint64_t id;
    http_done_cb cb;
    void *ud;
    struct curl_slist *hdrs;
    char *body_copy;
    char *buf;
    size_t len;
    bool too_big;
    char errbuf[CURL_ERROR_SIZE];
    struct req *next;
} req_t;

#define MAX_FDS 1024

struct http_client {
    CURLM *multi;
    int epfd;
    int64_t timer_deadline;   /* monotonic ms, -1 none */
    req_t *reqs;
    uint64_t next_id;
    size_t active;
    int fds[MAX_FDS];
    size_t nfds;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fd_add(http_client_t *c, int fd)
{
    for (size_t i = 0; i < c->nfds; i++)
        if (c->fds[i] == fd)
            return;
    if (c->nfds < MAX_FDS)
        c->fds[c->nfds++] = fd;
}

static void fd_del(http_client_t *c, int fd)
{
    for (size_t i = 0; i < c->nfds; i++)
        if (c->fds[i] == fd) {
            c->fds[i] = c->fds[--c->nfds];
            return;
        }
}

bool http_client_owns_fd(const http_client_t *c, int fd)
{
    for (size_t i = 0; c && i < c->nfds; i++)
        if (c->fds[i] == fd)
            return true;
    return false;
}

static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    http_client_t *c = userp;
    (void)e;
    (void)socketp;
    struct epoll_event ev = {0};
    ev.data.fd = s;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(c->epfd, EPOLL_CTL_DEL, s, NULL);
        fd_del(c, s);
        return 0;
    }
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
    if (http_client_owns_fd(c, s)) {
        epoll_ctl(c->epfd, EPOLL_CTL_MOD, s, &ev);
    } else {
        epoll_ctl(c->epfd, EPOLL_CTL_ADD, s, &ev);
        fd_add(c, s);
    }
    return 0;
}

static int on_timer(CURLM *m, long timeout_ms, void *userp)
{
    http_client_t *c = userp;
    (void)m;
    c->timer_deadline = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
    return 0;
}

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
    req_t *r = ud;
    size_t add = sz * n;
    if (r->len + add > HTTP_CLIENT_MAX_BODY) {
        r->too_big = true;
        return 0; /* aborts the transfer */
    }
    char *nb = realloc(r->buf, r->len + add + 1);
    if (!nb)
        return 0;
    memcpy(nb + r->len, p, add);
    r->len += add;
    nb[r->len] = 0;
    r->buf = nb;
    return add;
}

static void req_free(http_client_t *c, req_t *r)
{
    curl_multi_remove_handle(c->multi, r->easy);
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->hdrs);
    free(r->body_copy);
    free(r->buf);
    free(r);
    c->active--;
}

static void unlink_req(http_client_t *c, req_t *r)
{
    for (req_t **pp = &c->reqs; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            return;
        }
}

/* Completed transfers: callback, then free. */
static void drain(http_client_t *c)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        req_t *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (!r)
            continue;
        unlink_req(c, r);
        long status = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        CURLcode res = m->data.result;
        if (res == CURLE_OK)
            r->cb(r->ud, (int)status, (const uint8_t *)r->buf, r->len, NULL);
        else {
            char err[300];
            snprintf(err, sizeof err, "%s", r->too_big ? "answer larger than 1 MiB"
                                            : r->errbuf[0] ? r->errbuf : curl_easy_strerror(res));
            r->cb(r->ud, 0, NULL, 0, err);
        }
        req_free(c, r);
    }
}

int http_client_new(int epfd, http_client_t **out)
{
    static int inited;
    if (!inited) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        inited = 1;
    }
    http_client_t *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    c->multi = curl_multi_init();
    if (!c->multi) {
        free(c);
        return -1;
    }
    c->epfd = epfd;
    c->timer_deadline = -1;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    *out = c;
    return 0;
}

void http_client_free(http_client_t **cp)
{
    http_client_t *c = cp ? *cp : NULL;
    if (!c)
        return;
    while (c->reqs) {
        req_t *r = c->reqs;
        c->reqs = r->next;
        req_free(c, r);
    }
    curl_multi_cleanup(c->multi);
    free(c);
    *cp = NULL;
}

int http_client_start(http_client_t *c, const http_request_t *q, http_done_cb cb, void *ud, uint64_t *id)
{
    if (!q->url || (strncmp(q->url, "http://", 7) != 0 && strncmp(q->url, "https://", 8) != 0))
        return -1;
    req_t *r = calloc(1, sizeof *r);
    if (!r || !(r->easy = curl_easy_init())) {
        free(r);
        return -1;
    }
    r->c = c;
    r->cb = cb;
    r->ud = ud;
    r->id = ++c->next_id;
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, q->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(q->timeout_s ? q->timeout_s : 30) * 1000L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, q->method ? q->method : "GET");
    if (q->body) {
        r->body_copy = strdup(q->body);
        if (!r->body_copy)
            goto fail;
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body_copy);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(r->body_copy));
        char ct[256];
        snprintf(ct, sizeof ct, "Content-Type: %s", q->content_type ? q->content_type : "application/json");
        r->hdrs = curl_slist_append(r->hdrs, ct);
    }
    for (size_t i = 0; i < q->nheaders; i++) {
        char h[1024];
        snprintf(h, sizeof h, "%s: %s", q->headers[i].name, q->headers[i].value ? q->headers[i].value : "");
        r->hdrs = curl_slist_append(r->hdrs, h);
    }
    if (r->hdrs)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
    if (q->user) {
        curl_easy_setopt(e, CURLOPT_USERNAME, q->user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, q->pass ? q->pass : "");
    }
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK)
        goto fail;
    r->next = c->reqs;
    c->reqs = r;
    c->active++;
    if (id)
        *id = r->id;
    return 0;
fail:
    curl_slist_free_all(r->hdrs);
    curl_easy_cleanup(r->easy);
    free(r->body_copy);
    free(r);
    return -1;
}

void http_client_cancel(http_client_t *c, uint64_t id)
{
    for (req_t *r = c->reqs; r; r = r->next)
        if (r->id == id) {
            unlink_req(c, r);
            req_free(c, r);
            return;
        }
}

void http_client_on_fd(http_client_t *c, int fd, uint32_t events)
{
    int mask = (events & EPOLLIN ? CURL_CSELECT_IN : 0) | (events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
               (events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
    int running;
    curl_multi_socket_action(c->multi, fd, mask, &running);
    drain(c);
}

int64_t http_client_timeout_ms(const http_client_t *c, int64_t now_ms)
{
    if (!c || c->timer_deadline < 0)
        return -1;
    return c->timer_deadline <= now_ms ? 0 : c->timer_deadline - now_ms;
}

void http_client_on_timer(http_client_t *c, int64_t now_ms)
{
    if (!c || c->timer_deadline < 0 || c->timer_deadline > now_ms)
        return;
    c->timer_deadline = -1;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    drain(c);
}

size_t http_client_active(const http_client_t *c) { return c ? c->active : 0; }
