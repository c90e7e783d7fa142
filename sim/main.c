/* lwdm-sim: command-line front end of the simulator library (sim/sim.h).
 *
 *   lwdm-sim bootstrap --server coap://127.0.0.1:5693 --count 100 [--register] [options]
 *   lwdm-sim register  --server coap://127.0.0.1:5683 --count 100 [options]
 *
 * Bootstrap only: prints one line per device when it is done, then a summary
 * line; exit status 0 only if every device bootstrapped.
 * Registering (bootstrap --register, register): prints one line per device
 * when it registered, keeps the devices running (updates, serving the
 * management server, notifications) until SIGTERM/SIGINT or --duration,
 * de-registers them, prints a summary; exit status 0 unless a device failed
 * to register. Both write a JSON report on request.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <coap3/coap.h>
#include <jansson.h>

#include "server/common/log.h"
#include "sim/sim.h"

static volatile sig_atomic_t g_stop;
static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void usage(FILE *f)
{
    fputs("usage: lwdm-sim bootstrap --server URI --count N [--register] [options]\n"
          "       lwdm-sim register --server URI --count N [options]\n"
          "       lwdm-sim --help\n"
          "\n"
          "Simulates N LwM2M clients in one process. `bootstrap` performs client-initiated\n"
          "bootstrap against a LwM2M Bootstrap-Server (--server) and, with --register,\n"
          "then registers to the management server it was given. `register` registers\n"
          "directly to the management server --server (factory-provisioned devices).\n"
          "Registered devices keep running - updates, serving the server's requests,\n"
          "notifications - until SIGTERM/SIGINT or --duration, then de-register.\n"
          "\n"
          "  --server URI               coap://host[:port], coaps://host[:port] (DTLS-PSK),\n"
          "                             coap+tcp://host[:port] (CoAP over TCP) or\n"
          "                             coaps+tcp://host[:port] (TLS-PSK)\n"
          "  --count N                  number of devices (default 1)\n"
          "  --prefix P                 endpoint prefix (default sim-)\n"
          "  --first I                  first endpoint index (default 1): sim-000001\n"
          "  --version 1.0|1.1|1.2      LwM2M version of the clients (default 1.1)\n"
          "  --format tlv|senml-json|senml-cbor|lwm2m-cbor\n"
          "                             preferred format, sent as pct by 1.1+ (default senml-cbor;\n"
          "                             1.0 clients always use TLV and send no pct; lwm2m-cbor: 1.2)\n"
          "  --no-pct                   1.1+ clients send no pct\n"
          "  --psk-key HEX              PSK key for every device (needed with coaps:// and coaps+tcp://)\n"
          "  --psk-identity-prefix P    PSK identity = P + index (default: the endpoint name)\n"
          "  --concurrency N            devices bootstrapping at once (default 64)\n"
          "  --timeout S                per attempt, Request to Finish, seconds (default 30)\n"
          "  --retries N                new attempts after a timeout or error (default 0)\n"
          "  --retry-delay MS           hold-off before a retry (default 1000)\n"
          "  --bs-account-instance N    the client's own BS account is /0/N (default 0)\n"
          "  --local ADDR               local address of the client sockets (default 127.0.0.1);\n"
          "                             with a 127.x address device i binds to ADDR + i\n"
          "  --single-address           every device binds to ADDR itself (ephemeral ports only)\n"
          "  --linger MS                keep a finished device's socket open MS ms to answer\n"
          "                             retransmitted requests (default 0)\n"
          "  --refuse-discover          answer Bootstrap-Discover with 4.05 (fault)\n"
          "  --fail-finish              answer Bootstrap-Finish with 4.06 (fault)\n"
          "  --stall-after N            go silent after answering N server requests (fault)\n"
          "registration:\n"
          "  --register                 (bootstrap) register after the bootstrap\n"
          "  --lifetime S               registration lifetime (default: /1/x/1 from the bootstrap,\n"
          "                             else 300)\n"
          "  --update-interval S        seconds between Updates (default 80 %% of the lifetime)\n"
          "  --binding B                binding, /3/0/16 and /1/x/7 of `register` devices (default U)\n"
          "  --queue                    queue mode (1.0: b=UQ, 1.1+: Q)\n"
          "  --awake-ms MS              queue mode: awake window after the last traffic (default 93000)\n"
          "  --tick-ms MS               period of the value changes (battery, signal, time; default\n"
          "                             1000; 0 freezes them)\n"
          "  --con-every N              every Nth notification is confirmable, the others NON\n"
          "                             (default 1: all CON)\n"
          "  --duration S               stop (and de-register) after S seconds (default: on signal)\n"
          "  --json FILE                write a per-device JSON report\n"
          "  --quiet                    no per-device lines, only the summary\n"
          "  --log-level L              debug|info|warn|error|off (default warn)\n"
          "  --help                     this text\n"
          "\n"
          "One socket (UDP, or a TCP connection) per device: stay below the open-file limit\n"
          "(ulimit -n).\n"
          "Exit status: 0 if every device bootstrapped (or registered), 1 otherwise,\n"
          "2 on usage errors.\n",
          f);
}

static int parse_hex(const char *s, uint8_t *out, size_t cap, size_t *len)
{
    size_t n = strlen(s);
    if (n == 0 || n % 2 || n / 2 > cap)
        return -1;
    for (size_t k = 0; k < n / 2; k++) {
        unsigned v;
        if (sscanf(s + 2 * k, "%2x", &v) != 1)
            return -1;
        out[k] = (uint8_t)v;
    }
    *len = n / 2;
    return 0;
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || !*s || *end || v > max || s[0] == '-')
        return false;
    *out = v;
    return true;
}

typedef struct {
    bool quiet;
    bool registers;
} cli_t;

/* "servers=N security=[/0/1 coap://x mode=3 ssid=1, ...]" */
static void describe_servers(const sim_dm_t *dm, char *buf, size_t cap)
{
    uint16_t iids[64];
    size_t n = sim_dm_instances(dm, 0, iids, 64);
    if (n > 64)
        n = 64;
    int bs = sim_dm_bs_account(dm);
    size_t w = 0, nsrv = 0;
    char list[900] = "";
    for (size_t k = 0; k < n; k++) {
        if ((int)iids[k] == bs)
            continue;
        char uri[200] = "", mode[16] = "", ssid[16] = "";
        lwm2m_path_t p = lwm2m_path_make(3, 0, iids[k], 0, 0);
        const lwm2m_record_t *r = sim_dm_find(dm, &p);
        if (r)
            sim_record_text(r, uri, sizeof uri);
        p.ids[2] = 2;
        if ((r = sim_dm_find(dm, &p)))
            sim_record_text(r, mode, sizeof mode);
        p.ids[2] = 10;
        if ((r = sim_dm_find(dm, &p)))
            sim_record_text(r, ssid, sizeof ssid);
        const char *mname = !strcmp(mode, "0") ? "psk" : !strcmp(mode, "3") ? "nosec" : mode;
        int m = snprintf(list + w, sizeof list - w, "%s/0/%u %s %s ssid=%s", nsrv ? ", " : "", iids[k], uri, mname, ssid);
        if (m > 0 && (size_t)m < sizeof list - w)
            w += (size_t)m;
        nsrv++;
    }
    snprintf(buf, cap, "servers=%zu security=[%s]", nsrv, list);
}

static void on_done(void *ud, sim_t *sim, const sim_device_t *dev)
{
    (void)sim;
    const cli_t *cli = ud;
    if (cli->quiet)
        return;
    sim_status_t st;
    sim_device_status(dev, &st);
    if (cli->registers) {
        if (st.state == SIM_OK)
            printf("ep=%s state=registered location=%s ms=%.1f server=%s\n", sim_device_endpoint(dev), st.location,
                   (double)st.latency_us / 1000.0, st.server);
        else
            printf("ep=%s state=failed reason=\"%s\"\n", sim_device_endpoint(dev), st.reason);
        fflush(stdout);
        return;
    }
    if (st.state == SIM_OK) {
        char desc[1024];
        describe_servers(sim_device_dm(dev), desc, sizeof desc);
        printf("ep=%s result=ok ms=%.1f %s\n", sim_device_endpoint(dev), (double)st.latency_us / 1000.0, desc);
    } else {
        printf("ep=%s result=failed reason=\"%s\"\n", sim_device_endpoint(dev), st.reason);
    }
    fflush(stdout);
}

static json_t *record_json(const lwm2m_record_t *r)
{
    char buf[1024];
    switch (r->type) {
    case LWM2M_T_INTEGER:
    case LWM2M_T_TIME: return json_integer((json_int_t)r->v.i);
    case LWM2M_T_UNSIGNED: return json_integer((json_int_t)r->v.u);
    case LWM2M_T_FLOAT: return json_real(r->v.f);
    case LWM2M_T_BOOLEAN: return json_boolean(r->v.b);
    case LWM2M_T_STRING:
    case LWM2M_T_CORELNK: return json_stringn(r->bytes ? (const char *)r->bytes : "", r->nbytes);
    default: return json_string(sim_record_text(r, buf, sizeof buf));
    }
}

static json_t *object_json(const sim_dm_t *dm, uint16_t oid)
{
    json_t *o = json_object();
    const lwm2m_records_t *rs = sim_dm_records(dm);
    for (size_t k = 0; k < rs->n; k++) {
        const lwm2m_record_t *r = &rs->recs[k];
        if (r->path.ids[0] != oid)
            continue;
        char ps[40];
        lwm2m_path_format(&r->path, ps, sizeof ps);
        json_object_set_new(o, ps, record_json(r));
    }
    return o;
}

static int write_json(const sim_t *sim, const char *file)
{
    json_t *root = json_object(), *devs = json_array();
    sim_summary_t s;
    sim_summary(sim, &s);
    json_t *sum = json_pack("{s:I,s:I,s:I,s:f,s:f,s:f,s:f,s:f}", "ok", (json_int_t)s.ok, "failed", (json_int_t)s.failed,
                            "pending", (json_int_t)(s.pending + s.running), "elapsed_s", s.elapsed_s, "rate", s.rate,
                            "p50_ms", s.p50_ms, "p90_ms", s.p90_ms, "p99_ms", s.p99_ms);
    for (size_t i = 0; i < sim_count(sim); i++) {
        const sim_device_t *dev = sim_device(sim, i);
        sim_status_t st;
        sim_device_status(dev, &st);
        json_t *d = json_pack("{s:s,s:s,s:s,s:f,s:I}", "endpoint", sim_device_endpoint(dev), "result",
                              sim_state_name(st.state), "reason", st.reason, "latency_ms",
                              (double)st.latency_us / 1000.0, "attempts", (json_int_t)st.attempts);
        json_object_set_new(d, "registration",
                            json_pack("{s:b,s:s,s:s,s:s,s:I,s:I,s:I,s:I}", "registered", st.registered, "state",
                                      st.reg_state, "location", st.location, "server", st.server, "registrations",
                                      (json_int_t)st.registrations, "updates", (json_int_t)st.updates,
                                      "notifications", (json_int_t)st.notifications, "dm_requests",
                                      (json_int_t)st.dm_requests));
        json_object_set_new(d, "security", object_json(sim_device_dm(dev), 0));
        json_object_set_new(d, "server", object_json(sim_device_dm(dev), 1));
        json_array_append_new(devs, d);
    }
    json_object_set_new(root, "summary", sum);
    json_object_set_new(root, "devices", devs);
    int rc = json_dump_file(root, file, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(root);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))) {
        usage(stdout);
        return 0;
    }
    if (argc < 2 || (strcmp(argv[1], "bootstrap") != 0 && strcmp(argv[1], "register") != 0)) {
        usage(stderr);
        return 2;
    }
    bool direct = strcmp(argv[1], "register") == 0;
    enum {
        O_SERVER = 1000, O_COUNT, O_PREFIX, O_FIRST, O_VERSION, O_FORMAT, O_NOPCT, O_PSKKEY, O_PSKID, O_CONC,
        O_TIMEOUT, O_RETRIES, O_RDELAY, O_BSIID, O_LOCAL, O_REFUSE, O_FAILFIN, O_STALL, O_JSON, O_QUIET, O_LOG, O_HELP, O_SINGLE, O_LINGER,
        O_REGISTER, O_LIFETIME, O_UPDINT, O_BINDING, O_QUEUE, O_AWAKE, O_TICK, O_CONEVERY, O_DURATION
    };
    static const struct option opts[] = {
        {"server", required_argument, 0, O_SERVER},
        {"count", required_argument, 0, O_COUNT},
        {"prefix", required_argument, 0, O_PREFIX},
        {"first", required_argument, 0, O_FIRST},
        {"version", required_argument, 0, O_VERSION},
        {"format", required_argument, 0, O_FORMAT},
        {"no-pct", no_argument, 0, O_NOPCT},
        {"psk-key", required_argument, 0, O_PSKKEY},
        {"psk-identity-prefix", required_argument, 0, O_PSKID},
        {"concurrency", required_argument, 0, O_CONC},
        {"timeout", required_argument, 0, O_TIMEOUT},
        {"retries", required_argument, 0, O_RETRIES},
        {"retry-delay", required_argument, 0, O_RDELAY},
        {"bs-account-instance", required_argument, 0, O_BSIID},
        {"local", required_argument, 0, O_LOCAL},
        {"refuse-discover", no_argument, 0, O_REFUSE},
        {"fail-finish", no_argument, 0, O_FAILFIN},
        {"stall-after", required_argument, 0, O_STALL},
        {"json", required_argument, 0, O_JSON},
        {"quiet", no_argument, 0, O_QUIET},
        {"log-level", required_argument, 0, O_LOG},
        {"help", no_argument, 0, O_HELP},
        {"single-address", no_argument, 0, O_SINGLE},
        {"linger", required_argument, 0, O_LINGER},
        {"register", no_argument, 0, O_REGISTER},
        {"lifetime", required_argument, 0, O_LIFETIME},
        {"update-interval", required_argument, 0, O_UPDINT},
        {"binding", required_argument, 0, O_BINDING},
        {"queue", no_argument, 0, O_QUEUE},
        {"awake-ms", required_argument, 0, O_AWAKE},
        {"tick-ms", required_argument, 0, O_TICK},
        {"con-every", required_argument, 0, O_CONEVERY},
        {"duration", required_argument, 0, O_DURATION},
        {0, 0, 0, 0},
    };
    sim_config_t cfg;
    sim_config_init(&cfg);
    cfg.count = 1;
    cli_t cli = {0};
    uint8_t key[64];
    const char *json_file = NULL;
    const char *server = NULL;
    unsigned long duration_s = 0;
    log_set_level(LOG_LVL_WARN);
    unsigned long v;
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case O_SERVER: server = optarg; break;
        case O_COUNT: ok = parse_uint(optarg, 1000000, &v) && v > 0; cfg.count = v; break;
        case O_PREFIX: cfg.ep_prefix = optarg; break;
        case O_FIRST: ok = parse_uint(optarg, 4000000000ul, &v); cfg.first_index = (unsigned)v; break;
        case O_VERSION:
            if (!strcmp(optarg, "1.0")) cfg.version = LWM2M_V1_0;
            else if (!strcmp(optarg, "1.1")) cfg.version = LWM2M_V1_1;
            else if (!strcmp(optarg, "1.2")) cfg.version = LWM2M_V1_2;
            else ok = false;
            break;
        case O_FORMAT:
            if (!strcmp(optarg, "tlv")) cfg.format = LWM2M_CF_TLV;
            else if (!strcmp(optarg, "senml-json")) cfg.format = LWM2M_CF_SENML_JSON;
            else if (!strcmp(optarg, "senml-cbor")) cfg.format = LWM2M_CF_SENML_CBOR;
            else if (!strcmp(optarg, "lwm2m-cbor")) cfg.format = LWM2M_CF_LWM2M_CBOR;
            else ok = false;
            break;
        case O_NOPCT: cfg.omit_pct = true; break;
        case O_PSKKEY:
            ok = parse_hex(optarg, key, sizeof key, &cfg.psk_key_len) == 0;
            cfg.psk_key = key;
            break;
        case O_PSKID: cfg.psk_identity_prefix = optarg; break;
        case O_CONC: ok = parse_uint(optarg, 100000, &v) && v > 0; cfg.concurrency = (unsigned)v; break;
        case O_TIMEOUT: ok = parse_uint(optarg, 86400, &v) && v > 0; cfg.timeout_ms = (unsigned)v * 1000u; break;
        case O_RETRIES: ok = parse_uint(optarg, 1000, &v); cfg.retries = (unsigned)v; break;
        case O_RDELAY: ok = parse_uint(optarg, 3600000, &v); cfg.retry_delay_ms = (unsigned)v; break;
        case O_BSIID: ok = parse_uint(optarg, 65534, &v); cfg.bs_account_iid = (uint16_t)v; break;
        case O_LOCAL: cfg.local_addr = optarg; break;
        case O_REFUSE: cfg.refuse_discover = true; break;
        case O_FAILFIN: cfg.fail_finish = true; break;
        case O_STALL: ok = parse_uint(optarg, 100000, &v); cfg.stall_after = (int)v; break;
        case O_JSON: json_file = optarg; break;
        case O_QUIET: cli.quiet = true; break;
        case O_LOG: {
            int l = log_level_parse(optarg);
            ok = l >= 0;
            if (ok)
                log_set_level((log_level_t)l);
            break;
        }
        case O_HELP: usage(stdout); return 0;
        case O_SINGLE: cfg.addr_per_device = false; break;
        case O_LINGER: ok = parse_uint(optarg, 600000, &v); cfg.linger_ms = (unsigned)v; break;
        case O_REGISTER: cfg.register_after_bootstrap = true; break;
        case O_LIFETIME: ok = parse_uint(optarg, 100000000, &v) && v > 0; cfg.lifetime_s = (unsigned)v; break;
        case O_UPDINT: ok = parse_uint(optarg, 4000000, &v) && v > 0; cfg.update_interval_ms = (unsigned)v * 1000u; break;
        case O_BINDING:
            ok = optarg[0] && strlen(optarg) < 7 && strspn(optarg, "UTSNMHQ") == strlen(optarg);
            cfg.binding = optarg;
            break;
        case O_QUEUE: cfg.queue_mode = true; break;
        case O_AWAKE: ok = parse_uint(optarg, 86400000, &v) && v > 0; cfg.awake_ms = (unsigned)v; break;
        case O_TICK: ok = parse_uint(optarg, 86400000, &v); cfg.tick_ms = (unsigned)v; break;
        case O_CONEVERY: ok = parse_uint(optarg, 1000000, &v) && v > 0; cfg.con_notify_every = (unsigned)v; break;
        case O_DURATION: ok = parse_uint(optarg, 100000000, &v) && v > 0; duration_s = v; break;
        default: usage(stderr); return 2;
        }
        if (!ok) {
            fprintf(stderr, "lwdm-sim: bad value for --%s: %s\n", opts[c - O_SERVER].name, optarg ? optarg : "");
            return 2;
        }
    }
    if (optind < argc || !server) {
        fprintf(stderr, "lwdm-sim: %s\n", optind < argc ? "unexpected argument" : "--server is required");
        usage(stderr);
        return 2;
    }
    if (direct && cfg.register_after_bootstrap) {
        fprintf(stderr, "lwdm-sim: --register belongs to `bootstrap`; `register` always registers\n");
        return 2;
    }
    if (!strncmp(server, "coaps://", 8) && cfg.count > 1000) {
        /* libcoap 4.3.1's GnuTLS DTLS client polls a session's socket with
         * select(), which aborts the process for an fd number >= 1024
         * (measured: the 1,015th device's handshake killed a 10,000-device run) */
        fprintf(stderr, "lwdm-sim: at most 1000 DTLS devices per process (libcoap's DTLS client cannot use "
                        "file descriptors above 1023); start several processes\n");
        return 2;
    }
    if (direct)
        cfg.dm_server_uri = server;
    else
        cfg.server_uri = server;
    cli.registers = direct || cfg.register_after_bootstrap;
    cfg.on_done = on_done;
    cfg.ud = &cli;

    /* libcoap's own log goes to stderr at warning level, or quieter */
    coap_startup();
    coap_set_log_level(log_get_level() <= LOG_LVL_DEBUG ? LOG_INFO : LOG_ERR);

    sim_t *sim = NULL;
    int rc = sim_new(&cfg, &sim);
    if (rc) {
        fprintf(stderr, "lwdm-sim: cannot set up the simulation (%s)\n", strerror(-rc));
        coap_cleanup();
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    sim_start(sim);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!g_stop) {
        int left = sim_step(sim, 100);
        if (left < 0)
            break;
        if (left == 0 && !cli.registers)
            break; /* bootstrap only: every device is done */
        if (duration_s) {
            struct timespec t;
            clock_gettime(CLOCK_MONOTONIC, &t);
            double el = (double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9;
            if (el >= (double)duration_s)
                break;
        }
    }
    sim_summary_t s;
    sim_summary(sim, &s); /* before sim_stop, which fails the devices still on their way */
    if (cli.registers) {
        unsigned long ups = 0, notes = 0, reqs = 0;
        for (size_t i = 0; i < sim_count(sim); i++) {
            sim_status_t st;
            sim_device_status(sim_device(sim, i), &st);
            ups += st.updates;
            notes += st.notifications;
            reqs += st.dm_requests;
        }
        sim_stop(sim); /* de-registers, waits up to about 1 s for the answers */
        printf("summary: %zu registered, %zu failed, %zu not done; elapsed %.3f s; %.1f registrations/s; latency p50 "
               "%.1f ms p90 %.1f p99 %.1f ms; %lu updates, %lu requests served, %lu notifications\n",
               s.ok, s.failed, s.pending + s.running, s.elapsed_s, s.rate, s.p50_ms, s.p90_ms, s.p99_ms, ups, reqs,
               notes);
    } else {
        if (g_stop || duration_s)
            sim_stop(sim);
        printf("summary: %zu ok, %zu failed; elapsed %.3f s; %.1f bootstraps/s; latency p50 %.1f ms p90 %.1f p99 %.1f "
               "ms\n",
               s.ok, s.failed + s.pending + s.running, s.elapsed_s, s.rate, s.p50_ms, s.p90_ms, s.p99_ms);
    }
    if (json_file && write_json(sim, json_file) != 0)
        fprintf(stderr, "lwdm-sim: cannot write %s\n", json_file);
    int status = s.ok == s.total ? 0 : 1;
    sim_free(&sim);
    coap_cleanup();
    return status;
}
