#include "server/common/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_ullong g_counters[MC_COUNT];
static atomic_ullong g_coap[2][256];
static atomic_ullong g_loop_busy_ns;

#define HTTP_BUCKETS 10
static const double k_le[HTTP_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0};

typedef struct {
    const char *route;
    char method[8];
    unsigned status;
    uint64_t count;
} http_entry_t;

typedef struct {
    const char *route;
    uint64_t buckets[HTTP_BUCKETS]; /* cumulative at render */
    uint64_t count;
    double sum;
} http_hist_t;

#define HTTP_MAX 512
static pthread_mutex_t g_http_lock = PTHREAD_MUTEX_INITIALIZER;
static http_entry_t g_http[HTTP_MAX];
static size_t g_nhttp;
static http_hist_t g_hist[128];
static size_t g_nhist;

void metrics_inc(metrics_counter_t c)
{
    if ((unsigned)c < MC_COUNT)
        atomic_fetch_add_explicit(&g_counters[c], 1, memory_order_relaxed);
}

uint64_t metrics_get(metrics_counter_t c)
{
    return (unsigned)c < MC_COUNT ? atomic_load(&g_counters[c]) : 0;
}

void metrics_coap(bool out, int code)
{
    atomic_fetch_add_explicit(&g_coap[out ? 1 : 0][code & 0xff], 1, memory_order_relaxed);
}

static atomic_ullong g_registered, g_online;
void metrics_set_registered(uint64_t registered, uint64_t online)
{
    atomic_store(&g_registered, registered);
    atomic_store(&g_online, online);
}

void metrics_loop_busy_ns(uint64_t ns) { atomic_fetch_add_explicit(&g_loop_busy_ns, ns, memory_order_relaxed); }

void metrics_http(const char *route, const char *method, unsigned status, double seconds)
{
    if (!route)
        route = "unmatched";
    pthread_mutex_lock(&g_http_lock);
    http_entry_t *e = NULL;
    for (size_t i = 0; i < g_nhttp; i++)
        if (g_http[i].route == route && g_http[i].status == status && !strcmp(g_http[i].method, method)) {
            e = &g_http[i];
            break;
        }
    if (!e && g_nhttp < HTTP_MAX) {
        e = &g_http[g_nhttp++];
        e->route = route;
        snprintf(e->method, sizeof e->method, "%s", method ? method : "?");
        e->status = status;
        e->count = 0;
    }
    if (e)
        e->count++;
    http_hist_t *h = NULL;
    for (size_t i = 0; i < g_nhist; i++)
        if (g_hist[i].route == route) {
            h = &g_hist[i];
            break;
        }
    if (!h && g_nhist < sizeof g_hist / sizeof g_hist[0]) {
        h = &g_hist[g_nhist++];
        memset(h, 0, sizeof *h);
        h->route = route;
    }
    if (h) {
        for (int i = 0; i < HTTP_BUCKETS; i++)
            if (seconds <= k_le[i]) {
                h->buckets[i]++;
                break;
            }
        h->count++;
        h->sum += seconds;
    }
    pthread_mutex_unlock(&g_http_lock);
}

typedef struct {
    char *buf;
    size_t len, cap;
} sb_t;

static void sb_printf(sb_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sb_t *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->buf ? b->buf + b->len : NULL, b->buf ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (b->buf && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t nc = (b->cap ? b->cap * 2 : 8192) + (size_t)n;
        char *nb = realloc(b->buf, nc);
        if (!nb)
            return;
        b->buf = nb;
        b->cap = nc;
    }
}

static void code_label(int code, bool request, char out[16])
{
    static const char *const methods[] = {"EMPTY", "GET", "POST", "PUT", "DELETE", "FETCH", "PATCH", "iPATCH"};
    if (request && code >= 0 && code <= 7)
        snprintf(out, 16, "%s", methods[code]);
    else
        snprintf(out, 16, "%d.%02d", (code >> 5) & 7, code & 31);
}

char *metrics_render(void)
{
    sb_t b = {0};
    sb_printf(&b, "# HELP lwdm_bootstrap_requests_total Bootstrap-Requests received.\n"
                  "# TYPE lwdm_bootstrap_requests_total counter\n"
                  "lwdm_bootstrap_requests_total %llu\n",
              (unsigned long long)metrics_get(MC_BS_REQUESTS));
    sb_printf(&b, "# HELP lwdm_bootstraps_total Bootstrap sessions by outcome (started, succeeded, failed), "
                  "refused Requests and Bootstrap-Packs served.\n# TYPE lwdm_bootstraps_total counter\n");
    static const struct { metrics_counter_t c; const char *l; } bs[] = {
        {MC_BS_STARTED, "started"}, {MC_BS_SUCCEEDED, "succeeded"}, {MC_BS_FAILED, "failed"},
        {MC_BS_REFUSED, "refused"}, {MC_BS_PACKS, "pack"}};
    for (size_t i = 0; i < sizeof bs / sizeof bs[0]; i++)
        sb_printf(&b, "lwdm_bootstraps_total{result=\"%s\"} %llu\n", bs[i].l, (unsigned long long)metrics_get(bs[i].c));
    sb_printf(&b, "# HELP lwdm_dtls_handshakes_total DTLS-PSK handshakes: identity accepted or refused, and DTLS "
                  "errors.\n# TYPE lwdm_dtls_handshakes_total counter\n"
                  "lwdm_dtls_handshakes_total{result=\"identity_accepted\"} %llu\n"
                  "lwdm_dtls_handshakes_total{result=\"identity_refused\"} %llu\n"
                  "lwdm_dtls_handshakes_total{result=\"error\"} %llu\n",
              (unsigned long long)metrics_get(MC_DTLS_IDENTITY_OK),
              (unsigned long long)metrics_get(MC_DTLS_IDENTITY_REFUSED), (unsigned long long)metrics_get(MC_DTLS_ERRORS));
    sb_printf(&b, "# HELP lwdm_task_runs_total Task runs by the status they ended with.\n"
                  "# TYPE lwdm_task_runs_total counter\n");
    static const struct { metrics_counter_t c; const char *l; } tr[] = {
        {MC_TASK_SUCCESS, "SUCCESS"}, {MC_TASK_WARNING, "WARNING"}, {MC_TASK_ERROR, "ERROR"},
        {MC_TASK_IN_PROGRESS, "IN_PROGRESS"}};
    for (size_t i = 0; i < sizeof tr / sizeof tr[0]; i++)
        sb_printf(&b, "lwdm_task_runs_total{status=\"%s\"} %llu\n", tr[i].l, (unsigned long long)metrics_get(tr[i].c));
    sb_printf(&b, "# HELP lwdm_registrations_total Registration interface requests and outcomes.\n"
                  "# TYPE lwdm_registrations_total counter\n");
    static const struct { metrics_counter_t c; const char *l; } rdc[] = {
        {MC_RD_REGISTER, "register"}, {MC_RD_UPDATE, "update"}, {MC_RD_DEREGISTER, "deregister"},
        {MC_RD_EXPIRED, "expired"}, {MC_RD_REFUSED, "refused"}};
    for (size_t i = 0; i < sizeof rdc / sizeof rdc[0]; i++)
        sb_printf(&b, "lwdm_registrations_total{event=\"%s\"} %llu\n", rdc[i].l,
                  (unsigned long long)metrics_get(rdc[i].c));
    sb_printf(&b, "# HELP lwdm_notifications_total Notifications received from observed devices.\n"
                  "# TYPE lwdm_notifications_total counter\nlwdm_notifications_total %llu\n",
              (unsigned long long)metrics_get(MC_RD_NOTIFICATIONS));
    sb_printf(&b, "# HELP lwdm_devices_registered Devices with a live registration.\n"
                  "# TYPE lwdm_devices_registered gauge\nlwdm_devices_registered %llu\n"
                  "# HELP lwdm_devices_online Registered devices reachable now (queue-mode devices only while awake).\n"
                  "# TYPE lwdm_devices_online gauge\nlwdm_devices_online %llu\n",
              (unsigned long long)atomic_load(&g_registered), (unsigned long long)atomic_load(&g_online));
    sb_printf(&b, "# HELP lwdm_coap_messages_total CoAP messages lwdm handled, by direction and code (requests by "
                  "method).\n# TYPE lwdm_coap_messages_total counter\n");
    for (int dir = 0; dir < 2; dir++)
        for (int c = 0; c < 256; c++) {
            unsigned long long v = atomic_load(&g_coap[dir][c]);
            if (!v)
                continue;
            char l[16];
            code_label(c, c < 32, l);
            sb_printf(&b, "lwdm_coap_messages_total{direction=\"%s\",code=\"%s\"} %llu\n", dir ? "out" : "in", l, v);
        }
    sb_printf(&b, "# HELP lwdm_loop_busy_seconds_total Time the network loop spent working, not waiting.\n"
                  "# TYPE lwdm_loop_busy_seconds_total counter\nlwdm_loop_busy_seconds_total %.6f\n",
              (double)atomic_load(&g_loop_busy_ns) / 1e9);
    pthread_mutex_lock(&g_http_lock);
    sb_printf(&b, "# HELP lwdm_http_requests_total REST requests by route, method and status.\n"
                  "# TYPE lwdm_http_requests_total counter\n");
    for (size_t i = 0; i < g_nhttp; i++)
        sb_printf(&b, "lwdm_http_requests_total{route=\"%s\",method=\"%s\",status=\"%u\"} %llu\n", g_http[i].route,
                  g_http[i].method, g_http[i].status, (unsigned long long)g_http[i].count);
    sb_printf(&b, "# HELP lwdm_http_request_duration_seconds REST request latency by route.\n"
                  "# TYPE lwdm_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i < g_nhist; i++) {
        uint64_t cum = 0;
        for (int k = 0; k < HTTP_BUCKETS; k++) {
            cum += g_hist[i].buckets[k];
            sb_printf(&b, "lwdm_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n", g_hist[i].route,
                      k_le[k], (unsigned long long)cum);
        }
        sb_printf(&b, "lwdm_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
                      "lwdm_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                      "lwdm_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                  g_hist[i].route, (unsigned long long)g_hist[i].count, g_hist[i].route, g_hist[i].sum,
                  g_hist[i].route, (unsigned long long)g_hist[i].count);
    }
    pthread_mutex_unlock(&g_http_lock);
    return b.buf;
}

void metrics_reset(void)
{
    for (int i = 0; i < MC_COUNT; i++)
        atomic_store(&g_counters[i], 0);
    for (int d = 0; d < 2; d++)
        for (int c = 0; c < 256; c++)
            atomic_store(&g_coap[d][c], 0);
    atomic_store(&g_loop_busy_ns, 0);
    pthread_mutex_lock(&g_http_lock);
    g_nhttp = g_nhist = 0;
    pthread_mutex_unlock(&g_http_lock);
}
