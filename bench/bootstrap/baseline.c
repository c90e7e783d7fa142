/* bench_bootstrap_baseline: what one plain CoAP request/response costs a
 * libcoap 4.3.1 server on this machine, measured in the same run as the
 * bootstrap benchmark so that its figures can be read as a ratio.
 *
 * A forked child runs a minimal libcoap server (one resource answering GET
 * with 2.05, the same loop as lwdm: libcoap's epoll fd and a 100 ms timerfd in
 * an epoll set, coap_io_process(ctx, COAP_IO_NO_WAIT) when either is
 * readable). The parent is a libcoap client that sends N confirmable GETs
 * over a few client sessions, keeping a window of requests in flight, and
 * waits for every answer. The child's CPU time is read before the first
 * request and after the last answer; its difference divided by the exchanges
 * is the figure. The source is /proc/<pid>/schedstat (nanoseconds on CPU) when
 * the kernel has it, else utime + stime from /proc/<pid>/stat (10 ms steps);
 * the detail line gives both.
 *
 *   bench_bootstrap_baseline [--count N] [--window W] [--sessions S] [--timeout SEC]
 *
 * Prints: "baseline: N exchanges, X µs server CPU per exchange, Y exchanges/s".
 * Exit status 0 if every request was answered, 1 otherwise, 2 on usage errors.
 * Only 127.0.0.1 is used; the child is always killed and reaped. */
#include <coap3/coap.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SESSIONS 64

/* ------------------------------------------------------------------ server */

static volatile sig_atomic_t g_server_stop;

static void server_on_signal(int sig)
{
    (void)sig;
    g_server_stop = 1;
}

static void server_get(coap_resource_t *res, coap_session_t *session, const coap_pdu_t *req,
                       const coap_string_t *query, coap_pdu_t *resp)
{
    (void)res;
    (void)session;
    (void)req;
    (void)query;
    static const uint8_t body[] = "ok";
    coap_pdu_set_code(resp, COAP_RESPONSE_CODE_CONTENT);
    coap_add_data(resp, sizeof body - 1, body);
}

/* "127.0.0.1:40123" or "[::1]:40123", possibly followed by " (udp)" */
static int port_of_endpoint(const coap_endpoint_t *ep)
{
    const char *s = coap_endpoint_str(ep);
    if (!s)
        return -1;
    const char *end = strchr(s, ' ');
    if (!end)
        end = s + strlen(s);
    const char *colon = NULL;
    for (const char *p = s; p < end; p++)
        if (*p == ':')
            colon = p;
    if (!colon)
        return -1;
    long port = strtol(colon + 1, NULL, 10);
    return port > 0 && port < 65536 ? (int)port : -1;
}

/* Runs in the child. Writes the bound port (uint16_t) to wfd, then serves
 * until SIGTERM. Never returns. */
static void __attribute__((noreturn)) run_server(int wfd)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1)
        _exit(1);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = server_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    coap_startup();
    coap_set_log_level(LOG_ERR);
    coap_context_t *ctx = coap_new_context(NULL);
    if (!ctx)
        _exit(1);
    coap_address_t addr;
    coap_address_init(&addr);
    addr.addr.sin.sin_family = AF_INET;
    addr.addr.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.addr.sin.sin_port = 0;
    addr.size = sizeof addr.addr.sin;
    coap_endpoint_t *ep = coap_new_endpoint(ctx, &addr, COAP_PROTO_UDP);
    if (!ep)
        _exit(1);
    coap_resource_t *res = coap_resource_init(coap_make_str_const("bench"), 0);
    coap_register_handler(res, COAP_REQUEST_GET, server_get);
    coap_add_resource(ctx, res);

    int epfd = epoll_create1(EPOLL_CLOEXEC);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    int cfd = coap_context_get_coap_fd(ctx);
    if (epfd < 0 || tfd < 0 || cfd < 0)
        _exit(1);
    struct itimerspec its = {{0, 100 * 1000000}, {0, 100 * 1000000}};
    timerfd_settime(tfd, 0, &its, NULL);
    struct epoll_event e = {.events = EPOLLIN};
    e.data.fd = cfd;
    epoll_ctl(epfd, EPOLL_CTL_ADD, cfd, &e);
    e.data.fd = tfd;
    epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &e);

    int port = port_of_endpoint(ep);
    uint16_t p16 = port > 0 ? (uint16_t)port : 0;
    if (write(wfd, &p16, sizeof p16) != (ssize_t)sizeof p16 || !p16)
        _exit(1);
    close(wfd);

    struct epoll_event evs[8];
    while (!g_server_stop) {
        int n = epoll_wait(epfd, evs, 8, 1000);
        if (n < 0 && errno != EINTR)
            break;
        bool io = false;
        for (int i = 0; i < n; i++) {
            if (evs[i].data.fd == tfd) {
                uint64_t x;
                ssize_t r = read(tfd, &x, sizeof x);
                (void)r;
            }
            io = true;
        }
        if (io)
            coap_io_process(ctx, COAP_IO_NO_WAIT);
    }
    coap_free_context(ctx);
    coap_cleanup();
    _exit(0);
}

/* ------------------------------------------------------------------ client */

typedef struct {
    unsigned long count;     /* exchanges to run */
    unsigned window;         /* requests in flight, all sessions together */
    unsigned nsessions;      /* client sessions */
    unsigned timeout_s;      /* the whole run */
    unsigned long sent, answered, failed;
    coap_session_t *sessions[MAX_SESSIONS];
    unsigned next_session;
} client_t;

static client_t g_client;

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* utime + stime of a process, in clock ticks; -1 if unreadable */
static long long proc_cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* the command name may hold spaces and parentheses: skip past the last ')' */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    p++;
    /* after ')': field 3 (state) ... field 14 utime, field 15 stime */
    unsigned long long utime = 0, stime = 0;
    int field = 2;
    char *save = NULL;
    for (char *tok = strtok_r(p, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        field++;
        if (field == 14)
            utime = strtoull(tok, NULL, 10);
        else if (field == 15) {
            stime = strtoull(tok, NULL, 10);
            return (long long)(utime + stime);
        }
    }
    return -1;
}

/* CPU time of a single-threaded process in µs: the scheduler's nanosecond
 * figure (/proc/<pid>/schedstat) when there is one, else utime + stime in
 * clock ticks (10 ms steps). *src names the source used. */
static double proc_cpu_us(pid_t pid, const char **src)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/schedstat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f) {
        unsigned long long ns;
        int n = fscanf(f, "%llu", &ns);
        fclose(f);
        if (n == 1) {
            *src = "schedstat";
            return (double)ns / 1000.0;
        }
    }
    long long t = proc_cpu_ticks(pid);
    *src = "stat";
    return t < 0 ? -1.0 : (double)t * 1e6 / (double)sysconf(_SC_CLK_TCK);
}

static int send_one(client_t *c)
{
    coap_session_t *s = c->sessions[c->next_session++ % c->nsessions];
    coap_pdu_t *pdu = coap_pdu_init(COAP_MESSAGE_CON, COAP_REQUEST_CODE_GET, coap_new_message_id(s),
                                    coap_session_max_pdu_size(s));
    if (!pdu)
        return -1;
    uint8_t token[8];
    size_t tlen = 0;
    coap_session_new_token(s, &tlen, token);
    coap_add_token(pdu, tlen, token);
    coap_add_option(pdu, COAP_OPTION_URI_PATH, 5, (const uint8_t *)"bench");
    if (coap_send(s, pdu) == COAP_INVALID_MID)
        return -1;
    c->sent++;
    return 0;
}

static void refill(client_t *c)
{
    while (c->sent < c->count && c->sent - c->answered - c->failed < c->window)
        if (send_one(c) != 0) {
            c->failed++;
            c->sent++;
        }
}

static coap_response_t on_response(coap_session_t *session, const coap_pdu_t *sent, const coap_pdu_t *received,
                                   const coap_mid_t mid)
{
    (void)session;
    (void)sent;
    (void)mid;
    if (coap_pdu_get_code(received) == COAP_RESPONSE_CODE_CONTENT)
        g_client.answered++;
    else
        g_client.failed++;
    return COAP_RESPONSE_OK;
}

static void on_nack(coap_session_t *session, const coap_pdu_t *sent, const coap_nack_reason_t reason,
                    const coap_mid_t mid)
{
    (void)session;
    (void)sent;
    (void)reason;
    (void)mid;
    g_client.failed++;
}

static volatile sig_atomic_t g_client_stop;

static void client_on_signal(int sig)
{
    (void)sig;
    g_client_stop = 1;
}

static void usage(FILE *f)
{
    fputs("usage: bench_bootstrap_baseline [--count N] [--window W] [--sessions S] [--timeout SEC]\n"
          "\n"
          "Server CPU per plain CoAP request/response of a minimal libcoap server on\n"
          "127.0.0.1 (forked child), driven by a libcoap client in this process.\n"
          "\n"
          "  --count N      confirmable GETs to exchange (default 50000)\n"
          "  --window W     requests in flight over all client sessions (default 32)\n"
          "  --sessions S   client sessions (default 4)\n"
          "  --timeout SEC  limit for the whole run (default 120)\n",
          f);
}

static bool parse_ul(const char *s, unsigned long lo, unsigned long hi, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || !*s || *end || s[0] == '-' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static void stop_child(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 100; i++) { /* up to 2 s, then SIGKILL */
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

int main(int argc, char **argv)
{
    client_t *c = &g_client;
    c->count = 50000;
    c->window = 32;
    c->nsessions = 4;
    c->timeout_s = 120;
    static const struct option opts[] = {
        {"count", required_argument, 0, 'n'},   {"window", required_argument, 0, 'w'},
        {"sessions", required_argument, 0, 's'}, {"timeout", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0},
    };
    int o;
    unsigned long v;
    while ((o = getopt_long(argc, argv, "n:w:s:t:h", opts, NULL)) != -1) {
        switch (o) {
        case 'n':
            if (!parse_ul(optarg, 1, 100000000ul, &v))
                goto bad;
            c->count = v;
            break;
        case 'w':
            if (!parse_ul(optarg, 1, 4096, &v))
                goto bad;
            c->window = (unsigned)v;
            break;
        case 's':
            if (!parse_ul(optarg, 1, MAX_SESSIONS, &v))
                goto bad;
            c->nsessions = (unsigned)v;
            break;
        case 't':
            if (!parse_ul(optarg, 1, 86400, &v))
                goto bad;
            c->timeout_s = (unsigned)v;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc)
        goto bad;

    /* the server child */
    int pfd[2];
    if (pipe(pfd) != 0) {
        perror("pipe");
        return 1;
    }
    fflush(NULL);
    pid_t child = fork();
    if (child < 0) {
        perror("fork");
        return 1;
    }
    if (child == 0) {
        close(pfd[0]);
        run_server(pfd[1]);
    }
    close(pfd[1]);

    int rc = 1;
    coap_context_t *ctx = NULL;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = client_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    uint16_t port = 0;
    struct pollfd pf = {.fd = pfd[0], .events = POLLIN};
    if (poll(&pf, 1, 10000) != 1 || read(pfd[0], &port, sizeof port) != (ssize_t)sizeof port || !port) {
        fprintf(stderr, "baseline: the server child did not start\n");
        close(pfd[0]);
        goto out;
    }
    close(pfd[0]);

    coap_startup();
    coap_set_log_level(LOG_ERR);
    ctx = coap_new_context(NULL);
    if (!ctx) {
        fprintf(stderr, "baseline: cannot create the client context\n");
        goto out;
    }
    coap_register_response_handler(ctx, on_response);
    coap_register_nack_handler(ctx, on_nack);
    coap_address_t dst;
    coap_address_init(&dst);
    dst.addr.sin.sin_family = AF_INET;
    dst.addr.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    dst.addr.sin.sin_port = htons(port);
    dst.size = sizeof dst.addr.sin;
    /* spread the window over the sessions: libcoap holds back confirmable
     * requests beyond NSTART per session */
    uint16_t nstart = (uint16_t)((c->window + c->nsessions - 1) / c->nsessions);
    for (unsigned i = 0; i < c->nsessions; i++) {
        c->sessions[i] = coap_new_client_session(ctx, NULL, &dst, COAP_PROTO_UDP);
        if (!c->sessions[i]) {
            fprintf(stderr, "baseline: cannot create client session %u\n", i);
            goto out;
        }
        coap_session_set_nstart(c->sessions[i], nstart);
    }

    /* warm-up: one exchange per session, not measured */
    unsigned long warm = c->nsessions;
    unsigned long want = c->count;
    c->count = warm;
    double deadline = mono_s() + 10;
    refill(c);
    while (c->answered + c->failed < warm && mono_s() < deadline && !g_client_stop)
        coap_io_process(ctx, 100);
    if (c->answered != warm) {
        fprintf(stderr, "baseline: warm-up failed (%lu of %lu answered)\n", c->answered, warm);
        goto out;
    }
    c->count = want;
    c->sent = c->answered = c->failed = 0;

    const char *src0 = NULL, *src1 = NULL;
    double t0 = proc_cpu_us(child, &src0);
    long long k0 = proc_cpu_ticks(child);
    double w0 = mono_s();
    deadline = w0 + c->timeout_s;
    refill(c);
    while (c->answered + c->failed < c->count && !g_client_stop) {
        if (mono_s() > deadline) {
            fprintf(stderr, "baseline: timed out after %u s\n", c->timeout_s);
            break;
        }
        coap_io_process(ctx, 100);
        refill(c);
    }
    double w1 = mono_s();
    double t1 = proc_cpu_us(child, &src1);
    long long k1 = proc_cpu_ticks(child);
    if (t0 < 0 || t1 < 0 || src0 != src1) {
        fprintf(stderr, "baseline: cannot read /proc/%d/stat\n", (int)child);
        goto out;
    }
    if (g_client_stop) {
        fprintf(stderr, "baseline: interrupted\n");
        goto out;
    }
    double us = t1 - t0;
    double us_ticks = (double)(k1 - k0) * 1e6 / (double)sysconf(_SC_CLK_TCK);
    double per = c->answered ? us / (double)c->answered : 0.0;
    printf("baseline: %lu exchanges, %.1f µs server CPU per exchange, %.0f exchanges/s\n", c->answered, per,
           (double)c->answered / (w1 - w0));
    printf("baseline-detail: sessions=%u window=%u failed=%lu server_cpu_ms=%.1f (from %s; utime+stime %.0f ms) "
           "wall_s=%.3f\n",
           c->nsessions, c->window, c->failed, us / 1000.0, src1, us_ticks / 1000.0, w1 - w0);
    rc = c->failed == 0 && c->answered == c->count ? 0 : 1;
out:
    if (ctx)
        coap_free_context(ctx);
    stop_child(child);
    return rc;
bad:
    fprintf(stderr, "bench_bootstrap_baseline: bad arguments\n");
    usage(stderr);
    return 2;
}
