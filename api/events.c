/* api: GET /api/v1/events — the live event bus (server/common/events.h) as
 * server-sent events, or as JSON pages with a long poll (?format=json).
 * Contract: docs/management.md "Events"; parameters: docs/api.md.
 *
 * Design: no HTTP worker thread is held while a client waits.
 *   - A stream is a libmicrohttpd callback response (chunked). Its reader
 *     hands out what is buffered, else reads the bus after the stream's seq,
 *     else suspends the connection (MHD_suspend_connection from the reader)
 *     and returns 0. A poll with nothing to answer suspends from the access
 *     handler; on resume libmicrohttpd calls the handler again, which
 *     http.c sends to poll_step() (api_req_t.on_resume).
 *   - One thread per api_t (the "waker") blocks in events_wait() on the bus,
 *     and on each new event (or every TICK_MS) resumes the suspended
 *     connections that have something to do: a matching event (checked with
 *     events_pending, without copying), a keepalive due (streams), the wait
 *     deadline (polls), the peer gone (poll(2) POLLRDHUP on the socket: a
 *     suspended connection is not watched by libmicrohttpd), or shutdown.
 *     Publishers only signal the bus's condition variable; they never call
 *     into libmicrohttpd and never wait for a client.
 *   - Rejected alternative: a content reader that blocks on the bus with a
 *     short timeout. With MHD's thread pool each worker serves many
 *     connections from one epoll loop, so a reader blocked for T delays every
 *     other connection of that worker. Measured (4 workers, RelWithDebInfo,
 *     40 idle streams, GET /api/v1/devices, one bootstrap to wake them):
 *       suspend/resume (this)   : 40 streams open in 7 ms; GET median 0.7 ms,
 *                                 max 3.3 ms; all 40 streams get the event
 *                                 ~10 ms after the client starts bootstrapping
 *       reader blocking <= 100 ms: 40 streams open in 48 s; GET median 1.9 s,
 *                                 max 3.2 s (8 streams: GET median 0.6 s)
 *       reader blocking <= 1 s  : 40 streams open in 333 s; GET median 13 s
 *     (the blocked readers of a worker take turns holding it). A stream costs
 *     its suspended connection (libmicrohttpd's per-connection memory pool),
 *     ~7 KiB of ours (client, response block) and its unsent text.
 *
 * Locking: `lock` guards the client list and each client's `suspended`,
 * `gone` and `checked`; MHD_suspend/resume_connection are called with it
 * held, so a client is resumed exactly once per suspension, and never after
 * api_events_stop() (which resumes every suspended client: libmicrohttpd
 * must not be stopped with suspended connections). Order: lock -> bus lock,
 * lock -> libmicrohttpd's internal locks; libmicrohttpd never calls us with
 * its cleanup lock held.
 *
 * Lifetime: a stream's client is owned by its MHD response (freed by the
 * response's free callback), a poll's by its api_req_t (freed in
 * on_completed through r->susp_free). Both unlink themselves under `lock`. */
#include "api/api_int.h"
#include "server/common/events.h"
#include "server/common/log.h"
#include "server/common/metrics.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEEPALIVE_MS 15000        /* ": keepalive" after this long without output */
#define TICK_MS 1000              /* the waker's longest sleep (hang-up checks) */
#define READ_BATCH 64             /* events read from the bus per refill */
#define POLL_DEFAULT_LIMIT 100
#define POLL_MAX_LIMIT 1000
#define POLL_MAX_WAIT_S 60
#define FILTER_MAX 64             /* device ids, and types, per request */
#define SSE_BLOCK 4096           /* the callback response's own buffer (unused when chunked) */

typedef struct ev_client {
    struct api_events *owner;
    struct MHD_Connection *conn;
    int fd;                       /* the connection's socket (hang-up checks) */
    bool sse;
    bool suspended;               /* under owner->lock */
    bool gone;                    /* peer hung up; under owner->lock */
    bool missed;                  /* the ring dropped events this reader wanted */
    uint64_t after;               /* last seq delivered or skipped */
    uint64_t checked;             /* waker: events <= checked do not match (while suspended) */
    int64_t due_ms;               /* stream: next keepalive; poll: deadline (monotonic) */
    int limit;                    /* poll: page size */
    int64_t devices[FILTER_MAX];
    char types_buf[FILTER_MAX][EVENTS_TYPE_MAX];
    const char *types[FILTER_MAX];
    char domain[API_DOMAIN_MAX];
    events_filter_t filter;
    char *out;                    /* stream: text not yet handed to libmicrohttpd */
    size_t out_len, out_off, out_cap;
    unsigned long id;             /* for the log */
    struct ev_client *prev, *next;
} ev_client_t;

struct api_events {
    events_t *bus;                /* borrowed from the server */
    pthread_mutex_t lock;
    ev_client_t *clients;
    size_t nclients;
    unsigned long next_id;
    bool stopping;
    bool thread_started;
    pthread_t thread;
    struct pollfd *pfds;          /* waker's scratch space */
    ev_client_t **pcl;
    size_t pcap;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* -------------------------------------------------------------- clients */
static void client_link(struct api_events *E, ev_client_t *c)
{
    c->next = E->clients;
    if (E->clients)
        E->clients->prev = c;
    E->clients = c;
    E->nclients++;
    c->id = ++E->next_id;
}

static void client_unlink(struct api_events *E, ev_client_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else if (E->clients == c)
        E->clients = c->next;
    else
        return; /* never linked */
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    E->nclients--;
}

/* Frees a client after unlinking it (any thread; takes the lock). */
static void client_free(void *p)
{
    ev_client_t *c = p;
    if (!c)
        return;
    struct api_events *E = c->owner;
    pthread_mutex_lock(&E->lock);
    client_unlink(E, c);
    pthread_mutex_unlock(&E->lock);
    LOG_DEBUG("api", "event=%s id=%lu after=%llu", c->sse ? "sse-closed" : "poll-closed", c->id,
              (unsigned long long)c->after);
    free(c->out);
    free(c);
}

/* Why a reader or handler of c did not suspend (client_try_suspend). */
typedef enum { SUSP_DONE = 0, SUSP_NEWER, SUSP_STOP } susp_t;

/* Suspends c's connection unless there is something to do; called with the
 * lock held from the reader / handler of c. SUSP_NEWER: an event came in
 * after c->after; SUSP_STOP: shutdown, peer gone or c's deadline. */
static susp_t client_try_suspend(struct api_events *E, ev_client_t *c, int64_t now)
{
    if (E->stopping || c->gone || now >= c->due_ms)
        return SUSP_STOP;
    if (events_last_seq(E->bus) > c->after)
        return SUSP_NEWER;
    c->checked = c->after;
    c->suspended = true;
    MHD_suspend_connection(c->conn);
    events_wake(E->bus); /* the waker may be waiting for wake-ups only */
    return SUSP_DONE;
}

static void client_resume(ev_client_t *c)
{
    c->suspended = false;
    MHD_resume_connection(c->conn);
}

/* ---------------------------------------------------------------- waker */
static void check_hangups(struct api_events *E)
{
    size_t n = 0;
    for (ev_client_t *c = E->clients; c; c = c->next)
        if (c->suspended && c->fd >= 0)
            n++;
    if (n == 0)
        return;
    if (n > E->pcap) {
        struct pollfd *np = realloc(E->pfds, n * sizeof *np);
        if (np)
            E->pfds = np;
        ev_client_t **nc = realloc(E->pcl, n * sizeof *nc);
        if (nc)
            E->pcl = nc;
        if (!np || !nc)
            return;
        E->pcap = n;
    }
    size_t i = 0;
    for (ev_client_t *c = E->clients; c; c = c->next)
        if (c->suspended && c->fd >= 0) {
            E->pfds[i] = (struct pollfd){.fd = c->fd, .events = POLLRDHUP};
            E->pcl[i++] = c;
        }
    if (poll(E->pfds, (nfds_t)n, 0) <= 0)
        return;
    for (i = 0; i < n; i++)
        if (E->pfds[i].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
            E->pcl[i]->gone = true;
}

static void *waker_main(void *arg)
{
    struct api_events *E = arg;
    uint64_t seen = events_last_seq(E->bus);
    int64_t last_hup = mono_ms();
    for (;;) {
        pthread_mutex_lock(&E->lock);
        int64_t now = mono_ms();
        int64_t timeout = TICK_MS - (now - last_hup);
        for (ev_client_t *c = E->clients; c; c = c->next)
            if (c->suspended && c->due_ms - now < timeout)
                timeout = c->due_ms - now;
        bool stop = E->stopping, any = false;
        for (ev_client_t *c = E->clients; c && !any; c = c->next)
            any = c->suspended;
        /* read under E->lock: a connection suspending after this wakes us
         * (client_try_suspend), so with none suspended new events need not */
        uint64_t gen = events_wake_gen(E->bus);
        pthread_mutex_unlock(&E->lock);
        if (stop)
            break;
        uint64_t last =
            events_wait_from(E->bus, any ? seen : EVENTS_WAKE_ONLY, gen, timeout < 0 ? 0 : (int)timeout);
        pthread_mutex_lock(&E->lock);
        if (E->stopping) {
            pthread_mutex_unlock(&E->lock);
            break;
        }
        now = mono_ms();
        if (now - last_hup >= TICK_MS) {
            last_hup = now;
            check_hangups(E);
        }
        for (ev_client_t *c = E->clients; c; c = c->next) {
            if (!c->suspended)
                continue;
            bool wake = c->gone || now >= c->due_ms;
            if (!wake && last > c->checked)
                wake = events_pending(E->bus, c->checked, &c->filter, &c->checked);
            if (wake)
                client_resume(c);
        }
        pthread_mutex_unlock(&E->lock);
        seen = last;
    }
    return NULL;
}

int api_events_start(api_t *a)
{
    if (!a->events)
        return 0;
    struct api_events *E = calloc(1, sizeof *E);
    if (!E)
        return -1;
    E->bus = a->events;
    if (pthread_mutex_init(&E->lock, NULL) != 0) {
        free(E);
        return -1;
    }
    if (pthread_create(&E->thread, NULL, waker_main, E) != 0) {
        pthread_mutex_destroy(&E->lock);
        free(E);
        return -1;
    }
    E->thread_started = true;
    a->evs = E;
    return 0;
}

void api_events_stop(api_t *a)
{
    struct api_events *E = a->evs;
    if (!E)
        return;
    pthread_mutex_lock(&E->lock);
    E->stopping = true;
    size_t n = 0;
    for (ev_client_t *c = E->clients; c; c = c->next)
        if (c->suspended) {
            client_resume(c);
            n++;
        }
    size_t total = E->nclients;
    pthread_mutex_unlock(&E->lock);
    events_wake(E->bus);
    if (E->thread_started)
        pthread_join(E->thread, NULL);
    E->thread_started = false;
    LOG_DEBUG("api", "event=events-stopping clients=%zu resumed=%zu", total, n);
}

void api_events_free(api_t *a)
{
    struct api_events *E = a->evs;
    if (!E)
        return;
    if (E->thread_started) /* api_events_stop was not called */
        api_events_stop(a);
    if (E->nclients)
        LOG_ERROR("api", "event=events-clients-leaked count=%zu", E->nclients);
    pthread_mutex_destroy(&E->lock);
    free(E->pfds);
    free(E->pcl);
    free(E);
    a->evs = NULL;
}

/* ----------------------------------------------------------- parameters */
typedef struct {
    ev_client_t *c;
    const char *bad;              /* the offending parameter, NULL = ok */
    const char *why;
} args_ctx_t;

static bool parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || strlen(s) > 19)
        return false;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *out = v;
    return true;
}

static bool type_char_ok(char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'; }

/* One ?device= or ?type= value: comma-separated items. */
static void add_list(args_ctx_t *x, bool devices, const char *value)
{
    ev_client_t *c = x->c;
    const char *p = value ? value : "";
    for (;;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0) {
            x->bad = devices ? "device" : "type";
            x->why = devices ? "device must be a device id or a comma-separated list of ids"
                             : "type must be an event type or a comma-separated list of types";
            return;
        }
        if (devices) {
            char buf[24];
            uint64_t id = 0;
            if (n >= sizeof buf) {
                x->bad = "device";
                x->why = "device must be a device id or a comma-separated list of ids";
                return;
            }
            memcpy(buf, p, n);
            buf[n] = 0;
            if (!parse_u64(buf, &id) || id == 0 || id > INT64_MAX) {
                x->bad = "device";
                x->why = "device must be a device id or a comma-separated list of ids";
                return;
            }
            if (c->filter.ndevices == FILTER_MAX) {
                x->bad = "device";
                x->why = "at most 64 devices per request";
                return;
            }
            c->devices[c->filter.ndevices++] = (int64_t)id;
        } else {
            bool ok = n < EVENTS_TYPE_MAX;
            for (size_t i = 0; ok && i < n; i++)
                ok = type_char_ok(p[i]);
            if (!ok) {
                x->bad = "type";
                x->why = "type must be an event type (such as bootstrap, registration) or a comma-separated list";
                return;
            }
            if (c->filter.ntypes == FILTER_MAX) {
                x->bad = "type";
                x->why = "at most 64 types per request";
                return;
            }
            memcpy(c->types_buf[c->filter.ntypes], p, n);
            c->types_buf[c->filter.ntypes][n] = 0;
            c->types[c->filter.ntypes] = c->types_buf[c->filter.ntypes];
            c->filter.ntypes++;
        }
        if (!e)
            return;
        p = e + 1;
    }
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    args_ctx_t *x = cls;
    if (x->bad)
        return MHD_NO;
    if (strcmp(key, "device") == 0)
        add_list(x, true, value);
    else if (strcmp(key, "type") == 0)
        add_list(x, false, value);
    return x->bad ? MHD_NO : MHD_YES;
}

/* -------------------------------------------------------------- streams */
static int out_append(ev_client_t *c, const char *s, size_t n)
{
    if (c->out_len + n + 1 > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + n + 1)
            cap *= 2;
        char *nb = realloc(c->out, cap);
        if (!nb)
            return -1;
        c->out = nb;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, s, n);
    c->out_len += n;
    c->out[c->out_len] = 0;
    return 0;
}

/* Appends the next events of the stream (SSE lines). -1 on ENOMEM. */
static int sse_fill(ev_client_t *c)
{
    events_item_t items[READ_BATCH];
    uint64_t next;
    bool missed = false;
    int n = events_read(c->owner->bus, c->after, &c->filter, items, READ_BATCH, &next, &missed);
    if (n < 0)
        return -1;
    int rc = 0;
    if (missed) {
        char note[96];
        int k = snprintf(note, sizeof note, ": events up to seq %llu are no longer held\n\n",
                         (unsigned long long)(n > 0 ? items[0].seq - 1 : next));
        rc = out_append(c, note, (size_t)k);
    }
    for (int i = 0; i < n && rc == 0; i++) {
        char head[96];
        int k = snprintf(head, sizeof head, "id: %llu\nevent: %s\ndata: ", (unsigned long long)items[i].seq,
                         items[i].type);
        rc = out_append(c, head, (size_t)k);
        if (rc == 0)
            rc = out_append(c, items[i].json, items[i].json_len);
        if (rc == 0)
            rc = out_append(c, "\n\n", 2);
    }
    events_items_clear(items, (size_t)(n > 0 ? n : 0));
    if (rc == 0)
        c->after = next;
    return rc;
}

static ssize_t sse_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    ev_client_t *c = cls;
    struct api_events *E = c->owner;
    for (int round = 0;; round++) {
        if (c->out_off < c->out_len) {
            size_t n = c->out_len - c->out_off;
            if (n > max)
                n = max;
            memcpy(buf, c->out + c->out_off, n);
            c->out_off += n;
            c->due_ms = mono_ms() + KEEPALIVE_MS;
            return (ssize_t)n;
        }
        c->out_off = c->out_len = 0;
        pthread_mutex_lock(&E->lock);
        bool gone = c->gone, stopping = E->stopping;
        pthread_mutex_unlock(&E->lock);
        if (gone)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (stopping)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (sse_fill(c) != 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (c->out_len)
            continue;
        int64_t now = mono_ms();
        if (now >= c->due_ms) {
            if (out_append(c, ": keepalive\n\n", 13) != 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            continue;
        }
        pthread_mutex_lock(&E->lock);
        susp_t st = client_try_suspend(E, c, now);
        pthread_mutex_unlock(&E->lock);
        if (st == SUSP_DONE)
            return 0;
        /* an event came in meanwhile (or stop / hang-up): go round again,
         * boundedly (a flood of non-matching events is read READ_BATCH at a
         * time; give the worker back now and then) */
        if (round > 64)
            return 0;
    }
}

static enum MHD_Result sse_start(api_req_t *r, ev_client_t *c)
{
    struct api_events *E = c->owner;
    if (out_append(c, ": connected\n\n", 13) != 0) {
        free(c->out);
        free(c);
        return api_problem(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL);
    }
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SSE_BLOCK, sse_reader, c, client_free);
    if (!resp) {
        free(c->out);
        free(c);
        return MHD_NO;
    }
    pthread_mutex_lock(&E->lock);
    bool stopping = E->stopping;
    if (!stopping)
        client_link(E, c);
    pthread_mutex_unlock(&E->lock);
    if (stopping) {
        MHD_destroy_response(resp); /* frees c */
        return api_problem(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the server is shutting down", NULL);
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    LOG_DEBUG("api", "event=sse-open id=%lu after=%llu devices=%zu types=%zu domain=%s", c->id,
              (unsigned long long)c->after, c->filter.ndevices, c->filter.ntypes, c->domain);
    r->status = MHD_HTTP_OK;
    r->answered = true;
    metrics_http(r->route, r->method, MHD_HTTP_OK, 0);
    enum MHD_Result ret = MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp); /* the connection keeps it (and c) */
    return ret;
}

/* ---------------------------------------------------------------- polls */
/* Answers {"items": [...], "next": N[, "missed": true]} with what the bus
 * holds after c->after, or suspends until something comes or the deadline. */
static enum MHD_Result poll_step(api_req_t *r)
{
    ev_client_t *c = r->susp_ctx;
    struct api_events *E = c->owner;
    for (;;) {
        pthread_mutex_lock(&E->lock);
        bool gone = c->gone, stopping = E->stopping;
        pthread_mutex_unlock(&E->lock);
        if (gone)
            return MHD_NO; /* nobody to answer: close */
        events_item_t *items = calloc((size_t)c->limit, sizeof *items);
        if (!items)
            return api_problem(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL);
        uint64_t next;
        bool missed = false;
        int n = events_read(E->bus, c->after, &c->filter, items, (size_t)c->limit, &next, &missed);
        if (n < 0) {
            free(items);
            return api_problem(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL);
        }
        c->after = next;
        c->missed = c->missed || missed;
        int64_t now = mono_ms();
        if (n == 0 && !stopping) {
            free(items);
            pthread_mutex_lock(&E->lock);
            susp_t st = client_try_suspend(E, c, now);
            pthread_mutex_unlock(&E->lock);
            if (st == SUSP_DONE)
                return MHD_YES; /* resumed by the waker: libmicrohttpd calls on_request again */
            if (st == SUSP_NEWER)
                continue;
            items = NULL; /* deadline, shutdown or hang-up: answer the empty page */
        }
        size_t len = 64;
        for (int i = 0; i < n; i++)
            len += items[i].json_len + 1;
        char *text = malloc(len);
        if (!text) {
            events_items_clear(items, (size_t)n);
            free(items);
            return api_problem(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL);
        }
        size_t o = 0;
        memcpy(text, "{\"items\":[", 10);
        o = 10;
        for (int i = 0; i < n; i++) {
            if (i)
                text[o++] = ',';
            memcpy(text + o, items[i].json, items[i].json_len);
            o += items[i].json_len;
        }
        snprintf(text + o, len - o, "],\"next\":%llu%s}", (unsigned long long)c->after,
                 c->missed ? ",\"missed\":true" : "");
        events_items_clear(items, (size_t)n);
        free(items);
        return api_send_text(r, MHD_HTTP_OK, text, "application/json");
    }
}

/* ------------------------------------------------------------------ GET */
enum MHD_Result api_events_get(api_req_t *r)
{
    struct api_events *E = r->api->evs;
    if (!E)
        return api_problem(r, MHD_HTTP_SERVICE_UNAVAILABLE, "live events are not available in this server", NULL);
    const char *fmt = api_query(r, "format");
    bool json = false;
    if (fmt && strcmp(fmt, "json") == 0)
        json = true;
    else if (fmt && strcmp(fmt, "sse") != 0)
        return api_problem_field(r, MHD_HTTP_BAD_REQUEST, "format", "format must be json or sse");

    ev_client_t *c = calloc(1, sizeof *c);
    if (!c)
        return api_problem(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL);
    c->owner = E;
    c->conn = r->conn;
    c->sse = !json;
    c->fd = -1;
    c->filter.devices = c->devices;
    c->filter.types = c->types;
    snprintf(c->domain, sizeof c->domain, "%s", r->domain);
    c->filter.domain = c->domain;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci)
        c->fd = ci->connect_fd;

    args_ctx_t x = {c, NULL, NULL};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_arg, &x);
    uint64_t since = 0, v;
    bool have_since = false;
    const char *s = api_query(r, "since"), *lei = api_header(r, "Last-Event-ID");
    if (!x.bad && s) {
        if (!parse_u64(s, &since))
            x.bad = "since", x.why = "since must be a non-negative integer (an event seq)";
        have_since = true;
    }
    if (!x.bad && lei && *lei) { /* the browser's reconnection is more recent than the URL's since */
        if (!parse_u64(lei, &since))
            x.bad = "Last-Event-ID", x.why = "Last-Event-ID must be an event seq";
        have_since = true;
    }
    long wait_s = 0;
    c->limit = POLL_DEFAULT_LIMIT;
    const char *w = api_query(r, "wait"), *l = api_query(r, "limit");
    if (!x.bad && w) {
        if (!parse_u64(w, &v))
            x.bad = "wait", x.why = "wait must be a number of seconds (0 to 60)";
        else
            wait_s = v > POLL_MAX_WAIT_S ? POLL_MAX_WAIT_S : (long)v;
    }
    if (!x.bad && l) {
        if (!parse_u64(l, &v) || v == 0)
            x.bad = "limit", x.why = "limit must be an integer from 1 to 1000";
        else
            c->limit = v > POLL_MAX_LIMIT ? POLL_MAX_LIMIT : (int)v;
    }
    if (x.bad) {
        free(c);
        return api_problem_field(r, MHD_HTTP_BAD_REQUEST, x.bad, x.why);
    }

    if (c->sse) {
        /* without a replay point a stream starts with the next event */
        c->after = have_since ? since : events_last_seq(E->bus);
        c->due_ms = mono_ms() + KEEPALIVE_MS;
        return sse_start(r, c);
    }
    c->after = have_since ? since : 0; /* a page without since: all the ring holds */
    c->due_ms = mono_ms() + wait_s * 1000;
    pthread_mutex_lock(&E->lock);
    bool stopping = E->stopping;
    if (!stopping)
        client_link(E, c);
    pthread_mutex_unlock(&E->lock);
    if (stopping) {
        free(c);
        return api_problem(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the server is shutting down", NULL);
    }
    r->susp_ctx = c;
    r->susp_free = client_free;
    r->on_resume = poll_step;
    return poll_step(r);
}
