/* lwdm: command-line entry point. */
#include <malloc.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "server/common/log.h"
#include "server/config.h"
#include "server/server.h"

#ifndef LWDM_VERSION
#define LWDM_VERSION "0.1.0"
#endif

static lwdm_server_t *g_server;

static void on_signal(int sig)
{
    (void)sig;
    if (g_server)
        lwdm_server_stop(g_server);
}

static void usage(FILE *f)
{
    fprintf(f, "lwdm %s: LwM2M device management server\n"
               "\n"
               "usage: lwdm <command> [options]\n"
               "\n"
               "commands:\n"
               "  serve            run the server (lwdm serve --help for every option)\n"
               "  migrate          apply database migrations and exit (--db PATH)\n"
               "  backup PATH      online backup of the database to PATH (--db PATH)\n"
               "  version          print the version\n"
               "  help             this text\n",
            LWDM_VERSION);
}

static int parse_common(lwdm_config_t *cfg, int argc, char **argv)
{
    char err[512];
    lwdm_config_defaults(cfg);
    if (lwdm_config_parse(cfg, argc, argv, err, sizeof err) != 0) {
        fprintf(stderr, "lwdm: %s\n", err);
        return -1;
    }
    log_set_level((log_level_t)cfg->log_level);
    log_set_format((log_format_t)cfg->log_format);
    return 0;
}

static int open_db(const lwdm_config_t *cfg, db_t **db)
{
    char err[512];
    uint8_t key[DB_KEY_BYTES];
    if (db_secret_key_load(cfg->db_path, cfg->secret_key[0] ? cfg->secret_key : NULL, key, err, sizeof err) != 0 ||
        db_open(cfg->db_path, key, db, err, sizeof err) != 0) {
        fprintf(stderr, "lwdm: %s\n", err);
        return -1;
    }
    sodium_memzero(key, sizeof key);
    return 0;
}

static int cmd_migrate(int argc, char **argv)
{
    lwdm_config_t cfg;
    if (parse_common(&cfg, argc, argv) != 0)
        return 2;
    db_t *db = NULL;
    if (open_db(&cfg, &db) != 0)
        return 1;
    char err[512];
    int applied = 0;
    int rc = db_migrate(db, &applied, err, sizeof err);
    db_close(&db);
    if (rc != 0) {
        fprintf(stderr, "lwdm: migration failed: %s\n", err);
        return 1;
    }
    printf("migrations applied: %d\n", applied);
    return 0;
}

static int cmd_backup(int argc, char **argv)
{
    if (argc < 1 || strncmp(argv[0], "--", 2) == 0) {
        fprintf(stderr, "usage: lwdm backup PATH [--db PATH]\n");
        return 2;
    }
    const char *dest = argv[0];
    lwdm_config_t cfg;
    if (parse_common(&cfg, argc - 1, argv + 1) != 0)
        return 2;
    db_t *db = NULL;
    if (open_db(&cfg, &db) != 0)
        return 1;
    char err[512];
    int rc = db_backup(db, dest, err, sizeof err);
    db_close(&db);
    if (rc != 0) {
        fprintf(stderr, "lwdm: backup failed: %s\n", err);
        return 1;
    }
    printf("backup written to %s\n", dest);
    return 0;
}

/* "  management (CoAP)   : coap://h:5683, coap+tcp://h:5683" (nothing when off) */
static void endpoint_line(const char *label, const char *scheme, const char *host, uint16_t port, bool tcp)
{
    if (!port)
        return;
    printf("  %-20s: %s://%s:%u", label, scheme, host, port);
    if (tcp)
        printf(", %s+tcp://%s:%u", scheme, host, port);
    printf("\n");
}

static void banner(const lwdm_config_t *cfg, lwdm_server_t *s)
{
    const char *host = strcmp(cfg->http_addr, "0.0.0.0") == 0 ? "127.0.0.1" : cfg->http_addr;
    printf("lwdm %s is running\n", LWDM_VERSION);
    printf("  web UI and REST API : http://%s:%u/  (REST under /api/v1)\n", host, lwdm_server_http_port(s));
    const char *pw = lwdm_server_generated_password(s);
    if (pw)
        printf("  log in              : user 'admin', password '%s' (generated now, shown only once)\n", pw);
    else if (cfg->admin_password[0])
        printf("  log in              : user 'admin', password from LWDM_ADMIN_PASSWORD (first start)\n");
    else
        printf("  log in              : as an existing user (admin was created on the first start)\n");
    printf("  token               : curl -s -H 'Content-Type: application/json' -d '{\"username\":\"admin\",\"password\":\"...\"}' http://%s:%u/api/v1/auth/token\n",
           host, lwdm_server_http_port(s));
    const char *h = cfg->public_host;
    endpoint_line("bootstrap (CoAP)", "coap", h, lwdm_server_bs_coap_port(s), lwdm_server_tcp(s));
    endpoint_line("bootstrap (PSK)", "coaps", h, lwdm_server_bs_coaps_port(s), lwdm_server_tls(s));
    endpoint_line("management (CoAP)", "coap", h, lwdm_server_coap_port(s), lwdm_server_tcp(s));
    endpoint_line("management (PSK)", "coaps", h, lwdm_server_coaps_port(s), lwdm_server_tls(s));
    printf("  database            : %s\n", cfg->db_path);
    if (lwdm_server_bs_coap_port(s))
        printf("  try it              : build/lwdm-sim bootstrap --server coap://%s:%u --count 10\n", cfg->public_host,
               lwdm_server_bs_coap_port(s));
    fflush(stdout);
}

static int cmd_serve(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(lwdm_config_usage(), stdout);
            return 0;
        }
    lwdm_config_t cfg;
    if (parse_common(&cfg, argc, argv) != 0)
        return 2;
    /* glibc returns the top of the heap to the kernel as soon as 128 KB are
     * free there, and SQLite's page cache, libcoap's PDUs and the JSON of a
     * loop pass free and re-grow that much every pass: each pass then paid
     * brk() twice and a page fault per re-touched page (a third of the CPU of
     * a bootstrap in perf, docs/bench.md). Keep up to 64 MB of free heap. */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_TOP_PAD, 4 << 20);
    char err[512];
    lwdm_server_t *s = NULL;
    if (lwdm_server_open(&cfg, &s, err, sizeof err) != 0) {
        fprintf(stderr, "lwdm: %s\n", err);
        return 1;
    }
    g_server = s;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    banner(&cfg, s);
    LOGI("server", "event=ready http_port=%u bs_coap_port=%u bs_coaps_port=%u coap_port=%u coaps_port=%u tcp=%d tls=%d",
         lwdm_server_http_port(s), lwdm_server_bs_coap_port(s), lwdm_server_bs_coaps_port(s), lwdm_server_coap_port(s),
         lwdm_server_coaps_port(s), lwdm_server_tcp(s), lwdm_server_tls(s));
    int rc = lwdm_server_run(s);
    LOGI("server", "event=stopping");
    g_server = NULL;
    lwdm_server_close(&s);
    LOGI("server", "event=stopped");
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "serve"))
        return cmd_serve(argc - 2, argv + 2);
    if (!strcmp(cmd, "migrate"))
        return cmd_migrate(argc - 2, argv + 2);
    if (!strcmp(cmd, "backup"))
        return cmd_backup(argc - 2, argv + 2);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("lwdm %s\n", LWDM_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "lwdm: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
