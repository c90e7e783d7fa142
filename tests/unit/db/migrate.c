/* db lifecycle: migrations, pragmas, key loading, kv, transactions, backup. */
#include "db_test_util.h"

#include <sys/stat.h>

#include "server/common/embedded.h"

static void test_migrations_once(void **state)
{
    tdb_t *t = *state;
    char err[256];
    int applied = -1;
    assert_int_equal(db_migrate(t->db, &applied, err, sizeof err), SQLITE_OK);
    assert_int_equal(applied, 0);
    assert_int_equal(tdb_int(t->db, "SELECT count(*) FROM schema_migrations"), (int64_t)lwdm_migrations_count);
    /* reopen: still nothing to apply */
    db_close(&t->db);
    assert_int_equal(db_open(t->path, t->key, &t->db, err, sizeof err), SQLITE_OK);
    applied = -1;
    assert_int_equal(db_migrate(t->db, &applied, err, sizeof err), SQLITE_OK);
    assert_int_equal(applied, 0);
    assert_int_equal(tdb_int(t->db, "SELECT count(*) FROM domains WHERE id = '/'"), 1);
}

static void test_unknown_migration_refused(void **state)
{
    tdb_t *t = *state;
    tdb_exec(t->db, "INSERT INTO schema_migrations (name, applied_at) VALUES ('9999_future.sql', 0)");
    char err[256] = "";
    int applied = -1;
    assert_int_not_equal(db_migrate(t->db, &applied, err, sizeof err), SQLITE_OK);
    assert_non_null(strstr(err, "9999_future.sql"));
    tdb_exec(t->db, "DELETE FROM schema_migrations WHERE name = '9999_future.sql'");
}

static void test_pragmas(void **state)
{
    tdb_t *t = *state;
    assert_int_equal(tdb_int(t->db, "PRAGMA foreign_keys"), 1);
    assert_int_equal(tdb_int(t->db, "PRAGMA synchronous"), 1); /* NORMAL */
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db_handle(t->db), "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
}

static void test_fresh_db_migration_is_atomic(void **state)
{
    (void)state;
    /* A fresh in-memory database migrates the same way. */
    uint8_t key[DB_KEY_BYTES] = {1};
    db_t *db = NULL;
    char err[256];
    assert_int_equal(db_open(":memory:", key, &db, err, sizeof err), SQLITE_OK);
    int applied = 0;
    assert_int_equal(db_migrate(db, &applied, err, sizeof err), SQLITE_OK);
    assert_int_equal(applied, (int)lwdm_migrations_count);
    db_close(&db);
}

/* 0004 rebuilds task_log as a WITHOUT ROWID table: a database made before it
 * keeps its log lines, in order, and loses the unused (report_id, at) index. */
static void test_task_log_compact_keeps_lines(void **state)
{
    tdb_t *t = *state;
    /* the shape 0002 created, with lines in it, and 0004 not yet applied */
    tdb_exec(t->db, "DROP TABLE task_log");
    tdb_exec(t->db, "CREATE TABLE task_log (report_id INTEGER NOT NULL REFERENCES task_reports(id) ON DELETE CASCADE,"
                    " seq INTEGER NOT NULL, at INTEGER NOT NULL, level TEXT NOT NULL DEFAULT 'info',"
                    " step TEXT NOT NULL DEFAULT '', sent TEXT, received TEXT, code TEXT,"
                    " message TEXT NOT NULL DEFAULT '', PRIMARY KEY (report_id, seq))");
    tdb_exec(t->db, "CREATE INDEX task_log_report_at ON task_log(report_id, at)");
    tdb_exec(t->db, "DELETE FROM schema_migrations WHERE name = '0004_task_log_compact.sql'");
    tdb_exec(t->db, "INSERT INTO groups (id, domain, name, created_at, updated_at) VALUES (900, '/', 'g900', 0, 0)");
    tdb_exec(t->db, "INSERT INTO tasks (id, domain, group_id, name, created_at, updated_at) VALUES (900, '/', 900, 't', 0, 0)");
    tdb_exec(t->db, "INSERT INTO devices (id, domain, endpoint, created_at, updated_at) VALUES (900, '/', 'ep900', 0, 0)");
    tdb_exec(t->db, "INSERT INTO task_reports (id, task_id, device_id, updated_at) VALUES (900, 900, 900, 0)");
    tdb_exec(t->db, "INSERT INTO task_log (report_id, seq, at, step, sent, received, message) VALUES"
                    " (900, 2, 20, 's2', 'write /0', '2.04', 'second'), (900, 1, 10, 's1', 'GET /', '2.05', 'first')");
    char err[256] = "";
    int applied = -1;
    assert_int_equal(db_migrate(t->db, &applied, err, sizeof err), SQLITE_OK);
    assert_int_equal(applied, 1);
    assert_int_equal(tdb_int(t->db, "SELECT count(*) FROM task_log WHERE report_id = 900"), 2);
    assert_int_equal(tdb_int(t->db, "SELECT at FROM task_log WHERE report_id = 900 ORDER BY seq LIMIT 1"), 10);
    assert_int_equal(tdb_int(t->db, "SELECT count(*) FROM task_log WHERE report_id = 900 AND seq = 2 AND step = 's2'"
                                    " AND sent = 'write /0' AND received = '2.04' AND message = 'second'"),
                     1);
    assert_int_equal(tdb_int(t->db, "SELECT count(*) FROM sqlite_master WHERE name = 'task_log_report_at'"), 0);
    assert_int_equal(tdb_int(t->db, "SELECT count(*) FROM sqlite_master WHERE name = 'task_log' AND sql LIKE '%WITHOUT ROWID%'"), 1);
    /* the foreign key still cascades */
    tdb_exec(t->db, "DELETE FROM task_reports WHERE id = 900");
    assert_int_equal(tdb_int(t->db, "SELECT count(*) FROM task_log WHERE report_id = 900"), 0);
}

static void test_key_env(void **state)
{
    tdb_t *t = *state;
    uint8_t key[DB_KEY_BYTES], expect[DB_KEY_BYTES];
    char err[256];
    for (int i = 0; i < DB_KEY_BYTES; i++)
        expect[i] = (uint8_t)i;
    const char *hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    assert_int_equal(db_secret_key_load(t->path, hex, key, err, sizeof err), SQLITE_OK);
    assert_memory_equal(key, expect, DB_KEY_BYTES);
    const char *b64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    memset(key, 0xff, sizeof key);
    assert_int_equal(db_secret_key_load(t->path, b64, key, err, sizeof err), SQLITE_OK);
    assert_memory_equal(key, expect, DB_KEY_BYTES);
    /* no padding */
    memset(key, 0xff, sizeof key);
    assert_int_equal(db_secret_key_load(t->path, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", key, err, sizeof err),
                     SQLITE_OK);
    assert_memory_equal(key, expect, DB_KEY_BYTES);
    static const char *const bad[] = {"00", "zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                                      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==", "not a key at all"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_not_equal(db_secret_key_load(t->path, bad[i], key, err, sizeof err), SQLITE_OK);
    /* no key file was created by the env path */
    char kp[160];
    snprintf(kp, sizeof kp, "%s.key", t->path);
    assert_int_not_equal(access(kp, F_OK), 0);
}

static void test_key_file(void **state)
{
    tdb_t *t = *state;
    uint8_t k1[DB_KEY_BYTES], k2[DB_KEY_BYTES];
    char err[256];
    char kp[160];
    snprintf(kp, sizeof kp, "%s.key", t->path);
    assert_int_equal(db_secret_key_load(t->path, NULL, k1, err, sizeof err), SQLITE_OK);
    struct stat sb;
    assert_int_equal(stat(kp, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(db_secret_key_load(t->path, "", k2, err, sizeof err), SQLITE_OK);
    assert_memory_equal(k1, k2, DB_KEY_BYTES);
    /* a broken key file is an error, not silently replaced */
    FILE *f = fopen(kp, "w");
    assert_non_null(f);
    fputs("garbage\n", f);
    fclose(f);
    assert_int_not_equal(db_secret_key_load(t->path, NULL, k2, err, sizeof err), SQLITE_OK);
    assert_non_null(strstr(err, ".key"));
    unlink(kp);
}

static void test_kv(void **state)
{
    tdb_t *t = *state;
    char *v = (char *)1;
    assert_int_equal(db_kv_get(t->db, "first_run_done", &v), SQLITE_NOTFOUND);
    assert_null(v);
    assert_int_equal(db_kv_set(t->db, "first_run_done", "1"), SQLITE_OK);
    assert_int_equal(db_kv_set(t->db, "first_run_done", "2"), SQLITE_OK);
    assert_int_equal(db_kv_get(t->db, "first_run_done", &v), SQLITE_OK);
    assert_string_equal(v, "2");
    free(v);
}

static void test_transactions(void **state)
{
    tdb_t *t = *state;
    assert_int_equal(db_begin(t->db), SQLITE_OK);
    assert_int_equal(db_kv_set(t->db, "tx", "a"), SQLITE_OK);
    assert_int_equal(db_rollback(t->db), SQLITE_OK);
    char *v = NULL;
    assert_int_equal(db_kv_get(t->db, "tx", &v), SQLITE_NOTFOUND);
    assert_int_equal(db_begin(t->db), SQLITE_OK);
    assert_int_equal(db_kv_set(t->db, "tx", "b"), SQLITE_OK);
    assert_int_equal(db_commit(t->db), SQLITE_OK);
    assert_int_equal(db_kv_get(t->db, "tx", &v), SQLITE_OK);
    assert_string_equal(v, "b");
    free(v);
}

static void test_config_generation(void **state)
{
    (void)state;
    uint64_t g = db_config_generation();
    db_config_changed();
    assert_true(db_config_generation() > g);
}

static void test_backup(void **state)
{
    tdb_t *t = *state;
    assert_int_equal(db_kv_set(t->db, "backup", "yes"), SQLITE_OK);
    char dest[160], err[256];
    snprintf(dest, sizeof dest, "%s/backup.db", t->dir);
    assert_int_equal(db_backup(t->db, dest, err, sizeof err), SQLITE_OK);
    db_t *b = NULL;
    assert_int_equal(db_open(dest, t->key, &b, err, sizeof err), SQLITE_OK);
    char *v = NULL;
    assert_int_equal(db_kv_get(b, "backup", &v), SQLITE_OK);
    assert_string_equal(v, "yes");
    free(v);
    db_close(&b);
    unlink(dest);
    char p[200];
    snprintf(p, sizeof p, "%s-wal", dest);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", dest);
    unlink(p);
}

static void test_open_failure(void **state)
{
    (void)state;
    uint8_t key[DB_KEY_BYTES] = {0};
    db_t *db = (db_t *)1;
    char err[256] = "";
    assert_int_not_equal(db_open("/nonexistent-dir-lwdm/x.db", key, &db, err, sizeof err), SQLITE_OK);
    assert_null(db);
    assert_true(err[0] != 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrations_once, tdb_setup, tdb_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_migration_refused, tdb_setup, tdb_teardown),
        cmocka_unit_test_setup_teardown(test_pragmas, tdb_setup, tdb_teardown),
        cmocka_unit_test_setup_teardown(test_task_log_compact_keeps_lines, tdb_setup, tdb_teardown),
        cmocka_unit_test(test_fresh_db_migration_is_atomic),
        cmocka_unit_test_setup_teardown(test_key_env, tdb_setup, tdb_teardown),
        cmocka_unit_test_setup_teardown(test_key_file, tdb_setup, tdb_teardown),
        cmocka_unit_test_setup_teardown(test_kv, tdb_setup, tdb_teardown),
        cmocka_unit_test_setup_teardown(test_transactions, tdb_setup, tdb_teardown),
        cmocka_unit_test(test_config_generation),
        cmocka_unit_test_setup_teardown(test_backup, tdb_setup, tdb_teardown),
        cmocka_unit_test(test_open_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
