/* bench/tasks/reports_bench.c: what writing task reports costs in SQLite.
 *
 *   bench_tasks_reports [--devices N] [--lines L] [--batch B] [--dir DIR]
 *
 * Opens a new database in a temporary directory through lwdm's db layer (the
 * same pragmas, migrations and statements as the server), creates a group, N
 * devices in it and two group tasks, then writes one report per device the way
 * the bootstrap server does for a task run: db_report_start, L x db_report_log
 * (default 8, lines like a <rest> + bootstrap run's), db_report_finish with a
 * summary and variables. Four passes:
 *
 *   batchB-new      task 1, new reports, B reports per transaction (default 64:
 *                   the server commits once per loop pass)
 *   batchB-again    task 1 again: every report restarted (runs + 1, old log
 *                   deleted), as for known devices bootstrapping again
 *   tx1-new         task 2, new reports, one transaction per report
 *   tx1-again       task 2 again, one transaction per report
 *
 * For each it prints the process's CPU time (getrusage, user + system) and the
 * wall time per report, and the database growth per report (page_count x
 * page_size after a WAL checkpoint). Prints figures; never fails on time.
 * Exit status 0, or 1 when a database call fails. Removes its files. */
#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "db/db.h"

typedef struct {
    double cpu_us, wall_us;
} stamp_t;

static stamp_t now_stamp(void)
{
    struct rusage ru;
    struct timespec ts;
    getrusage(RUSAGE_SELF, &ru);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    stamp_t s = {
        .cpu_us = (double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec * 1e6 +
                  (double)ru.ru_stime.tv_usec,
        .wall_us = (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3,
    };
    return s;
}

static int64_t db_bytes(db_t *db)
{
    sqlite3 *h = db_handle(db);
    int64_t pages = 0, size = 0;
    sqlite3_stmt *st = NULL;
    sqlite3_wal_checkpoint_v2(h, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    if (sqlite3_prepare_v2(h, "PRAGMA page_count", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        pages = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(h, "PRAGMA page_size", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        size = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return pages * size;
}

/* The log of one run of the measured task: the <rest> call, then the
 * bootstrap exchanges (as the runner words them), L lines in all. */
static const struct {
    const char *step, *sent, *received, *message;
} LINES[] = {
    {"rest line 2", NULL, NULL, "GET http://127.0.0.1:40000/serverFor/%lld"},
    {"rest line 2", NULL, NULL, "HTTP 200, 14 bytes"},
    {"lwm2mBootstrapCleanse line 5", "GET / (Bootstrap-Discover)", "2.05 Content", NULL},
    {"lwm2mBootstrapCleanse line 5", "DELETE /0", "2.02 Deleted", NULL},
    {"lwm2mBootstrapCleanse line 5", "DELETE /1", "2.02 Deleted", NULL},
    {"lwm2mBootstrapConfiguration line 6", "PUT /0/1 (Security, coap://127.0.0.1:5683)", "2.04 Changed", NULL},
    {"lwm2mBootstrapConfiguration line 6", "PUT /1/0 (Server, ssid 1)", "2.04 Changed", NULL},
    {"lwm2mBootstrap line 7", "POST /bs (Bootstrap-Finish)", "2.04 Changed", NULL},
};
#define N_LINES (sizeof LINES / sizeof LINES[0])

static int write_report(db_t *db, int64_t task_id, int64_t device_id, int lines)
{
    int64_t rid = 0;
    int rc = db_report_start(db, task_id, device_id, "bootstrap", db_now_ms(), &rid);
    for (int i = 0; rc == SQLITE_OK && i < lines; i++) {
        char msg[128];
        const char *m = LINES[i % N_LINES].message;
        if (m)
            snprintf(msg, sizeof msg, m, (long long)device_id);
        rc = db_report_log(db, rid, db_now_ms(), "info", LINES[i % N_LINES].step, LINES[i % N_LINES].sent,
                           LINES[i % N_LINES].received, NULL, m ? msg : NULL);
    }
    if (rc == SQLITE_OK)
        rc = db_report_finish(db, rid, "SUCCESS", "task SUCCESS", "{\"serverId\":\"1\"}", db_now_ms());
    return rc;
}

typedef struct {
    const char *name;
    int n;
    double cpu_us, wall_us, growth_bytes;
} result_t;

static int run_pass(db_t *db, int64_t task_id, const int64_t *dev, int n, int batch, int lines, result_t *res)
{
    int64_t size0 = db_bytes(db);
    stamp_t t0 = now_stamp();
    int rc = SQLITE_OK;
    for (int i = 0; rc == SQLITE_OK && i < n; i += batch) {
        int end = i + batch < n ? i + batch : n;
        rc = db_begin(db);
        for (int k = i; rc == SQLITE_OK && k < end; k++)
            rc = write_report(db, task_id, dev[k], lines);
        if (rc == SQLITE_OK)
            rc = db_commit(db);
        else
            db_rollback(db);
    }
    stamp_t t1 = now_stamp();
    if (rc != SQLITE_OK) {
        fprintf(stderr, "bench_tasks_reports: %s: %s\n", res->name, sqlite3_errstr(rc));
        return rc;
    }
    int64_t size1 = db_bytes(db);
    res->n = n;
    res->cpu_us = (t1.cpu_us - t0.cpu_us) / n;
    res->wall_us = (t1.wall_us - t0.wall_us) / n;
    res->growth_bytes = (double)(size1 - size0) / n;
    return SQLITE_OK;
}

static int64_t insert_task(db_t *db, int64_t group_id, const char *name)
{
    db_task_t t = {
        .group_id = group_id,
        .name = (char *)name,
        .config_xml = (char *)"<config><lwm2mBootstrapCleanse/></config>",
        .active = true,
        .execution = DB_TASK_ONCE_AND_REPEAT,
        .automatic_restart = true,
        .condition = (char *)"",
        .priority = 10,
    };
    int rc = db_task_insert(db, &t);
    int64_t id = rc == SQLITE_OK ? t.id : 0;
    free(t.domain); /* set by db_task_insert when NULL */
    if (rc != SQLITE_OK)
        fprintf(stderr, "bench_tasks_reports: db_task_insert: %s\n", sqlite3_errstr(rc));
    return id;
}

static long parse_long(const char *s, const char *opt, long min)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || !end || *end || v < min) {
        fprintf(stderr, "bench_tasks_reports: %s wants a number >= %ld\n", opt, min);
        exit(2);
    }
    return v;
}

static void remove_files(const char *dir, const char *path)
{
    static const char *const suffix[] = {"", "-wal", "-shm", ".key", "-journal"};
    char p[PATH_MAX + 32];
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        snprintf(p, sizeof p, "%s%s", path, suffix[i]);
        unlink(p);
    }
    rmdir(dir);
}

int main(int argc, char **argv)
{
    int devices = 5000, lines = 8, batch = 64;
    const char *base = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--devices") == 0 && i + 1 < argc)
            devices = (int)parse_long(argv[++i], "--devices", 1);
        else if (strcmp(argv[i], "--lines") == 0 && i + 1 < argc)
            lines = (int)parse_long(argv[++i], "--lines", 0);
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
            batch = (int)parse_long(argv[++i], "--batch", 1);
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            base = argv[++i];
        else {
            fprintf(stderr, "usage: bench_tasks_reports [--devices N] [--lines L] [--batch B] [--dir DIR]\n");
            return 2;
        }
    }
    if (!base)
        base = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char dir[PATH_MAX], path[PATH_MAX + 16];
    if ((size_t)snprintf(dir, sizeof dir, "%s/lwdm-bench-reports-XXXXXX", base) >= sizeof dir) {
        fprintf(stderr, "bench_tasks_reports: --dir too long\n");
        return 2;
    }
    if (!mkdtemp(dir)) {
        perror("bench_tasks_reports: mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/reports.db", dir);

    char err[256] = "";
    uint8_t key[DB_KEY_BYTES];
    db_t *db = NULL;
    int applied = 0, status = 1;
    int64_t *dev = calloc((size_t)devices, sizeof *dev);
    if (!dev || db_secret_key_load(path, NULL, key, err, sizeof err) != 0 || db_open(path, key, &db, err, sizeof err) != 0 ||
        db_migrate(db, &applied, err, sizeof err) != 0) {
        fprintf(stderr, "bench_tasks_reports: %s\n", err[0] ? err : "out of memory");
        goto out;
    }

    db_group_t g = {.domain = (char *)"/", .name = (char *)"bench-reports", .description = (char *)"", .priority = 10};
    if (db_group_insert(db, &g) != SQLITE_OK) {
        fprintf(stderr, "bench_tasks_reports: db_group_insert failed\n");
        goto out;
    }
    int rc = db_begin(db);
    for (int i = 0; rc == SQLITE_OK && i < devices; i++) {
        char ep[32];
        snprintf(ep, sizeof ep, "bench-rep-%06d", i + 1);
        db_device_t d = {.endpoint = ep, .domain = (char *)"/", .properties_json = (char *)"{}", .auto_created = true};
        rc = db_device_insert(db, &d);
        dev[i] = d.id;
        if (rc == SQLITE_OK)
            rc = db_group_join(db, g.id, d.id);
    }
    if (rc == SQLITE_OK)
        rc = db_commit(db);
    else
        db_rollback(db);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "bench_tasks_reports: creating devices: %s\n", sqlite3_errstr(rc));
        goto out;
    }
    int64_t task1 = insert_task(db, g.id, "reports bench (batched)");
    int64_t task2 = insert_task(db, g.id, "reports bench (one per transaction)");
    if (!task1 || !task2)
        goto out;

    char n1[32], n2[32];
    snprintf(n1, sizeof n1, "batch%d-new", batch);
    snprintf(n2, sizeof n2, "batch%d-again", batch);
    result_t res[4] = {{.name = n1}, {.name = n2}, {.name = "tx1-new"}, {.name = "tx1-again"}};
    if (run_pass(db, task1, dev, devices, batch, lines, &res[0]) != SQLITE_OK ||
        run_pass(db, task1, dev, devices, batch, lines, &res[1]) != SQLITE_OK ||
        run_pass(db, task2, dev, devices, 1, lines, &res[2]) != SQLITE_OK ||
        run_pass(db, task2, dev, devices, 1, lines, &res[3]) != SQLITE_OK)
        goto out;

    printf("report writing in SQLite: %d devices, 1 start + %d log lines + 1 finish per report, sqlite %s\n",
           devices, lines, sqlite3_libversion());
    printf("%-14s  %8s  %14s  %15s  %17s\n", "pass", "reports", "CPU µs/report", "wall µs/report", "DB growth B/rep");
    for (int i = 0; i < 4; i++)
        printf("%-14s  %8d  %14.1f  %15.1f  %17.0f\n", res[i].name, res[i].n, res[i].cpu_us, res[i].wall_us,
               res[i].growth_bytes);
    /* one machine-readable line per pass, for bench/tasks/bench.py */
    for (int i = 0; i < 4; i++)
        printf("reports: pass=%s n=%d cpu_us=%.2f wall_us=%.2f growth_bytes=%.1f\n", res[i].name, res[i].n,
               res[i].cpu_us, res[i].wall_us, res[i].growth_bytes);
    status = 0;
out:
    db_close(&db);
    free(dev);
    remove_files(dir, path);
    return status;
}
