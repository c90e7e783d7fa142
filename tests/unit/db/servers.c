/* db: lwm2m_servers, their dependents (tasks, templates), bootstrap settings. */
#include "db_test_util.h"

static char *xstrdup(const char *s) { return s ? strdup(s) : NULL; }

static void fill(db_server_t *s, const char *name, int type, int ssid)
{
    memset(s, 0, sizeof *s);
    s->domain = xstrdup("/");
    s->name = xstrdup(name);
    s->type = type;
    s->transport = DB_TRANSPORT_UDP;
    s->ssid = ssid;
    s->uri = xstrdup(type == DB_SRV_BOOTSTRAP ? "coaps://bs.example.com:5694" : "coaps://dm.example.com:5684");
    s->client_hold_off_time = -1;
    s->bootstrap_account_timeout = 30;
    strcpy(s->binding, "UQ");
    s->lifetime = 3600;
    s->store_notifications = true;
    s->security_mode = DB_SEC_PSK;
    s->psk_identity = xstrdup("ident-1");
    s->psk = xstrdup("super-secret-psk");
    s->sms_security_mode = -1;
    s->prov_password = xstrdup("prov-password-xyz");
    s->prov_api_uri = xstrdup("https://api.example.com");
    s->prov_user = xstrdup("api-user");
    s->provision_credentials = true;
}

static void test_crud(void **state)
{
    tdb_t *t = *state;
    db_server_t s, g;
    fill(&s, "srv one", DB_SRV_MANAGEMENT, 1);
    static const uint8_t der[] = {0x30, 0x03, 0x02, 0x01, 0x05};
    s.server_cert = malloc(sizeof der);
    memcpy(s.server_cert, der, sizeof der);
    s.server_cert_len = sizeof der;
    s.sms_enabled = true;
    s.sms_number = xstrdup("+48123456789");
    s.sms_security_mode = 3;
    assert_int_equal(db_server_insert(t->db, &s), SQLITE_OK);
    assert_true(s.id > 0);
    assert_true(s.created_at > 0 && s.updated_at == s.created_at);

    assert_int_equal(db_server_get(t->db, s.id, &g), SQLITE_OK);
    assert_string_equal(g.name, "srv one");
    assert_string_equal(g.domain, "/");
    assert_int_equal(g.ssid, 1);
    assert_string_equal(g.uri, "coaps://dm.example.com:5684");
    assert_int_equal(g.client_hold_off_time, -1);
    assert_int_equal(g.bootstrap_account_timeout, 30);
    assert_string_equal(g.binding, "UQ");
    assert_int_equal(g.lifetime, 3600);
    assert_true(g.store_notifications);
    assert_int_equal(g.security_mode, DB_SEC_PSK);
    assert_string_equal(g.psk_identity, "ident-1");
    assert_string_equal(g.psk, "super-secret-psk");
    assert_int_equal(g.server_cert_len, sizeof der);
    assert_memory_equal(g.server_cert, der, sizeof der);
    assert_true(g.sms_enabled);
    assert_string_equal(g.sms_number, "+48123456789");
    assert_int_equal(g.sms_security_mode, 3);
    assert_true(g.provision_credentials);
    assert_string_equal(g.prov_api_uri, "https://api.example.com");
    assert_string_equal(g.prov_user, "api-user");
    assert_string_equal(g.prov_password, "prov-password-xyz");
    assert_int_equal(g.created_at, s.created_at);
    db_server_free(&g);

    /* secrets are not stored in plain text */
    assert_false(tdb_raw_contains(t->db, "lwm2m_servers", "psk_enc", "super-secret-psk", 16));
    assert_false(tdb_raw_contains(t->db, "lwm2m_servers", "prov_password_enc", "prov-password-xyz", 17));
    assert_true(tdb_raw_contains(t->db, "lwm2m_servers", "psk_identity", "ident-1", 7));
    /* two encryptions of the same value differ (random nonce) */
    db_server_t s2;
    fill(&s2, "srv two", DB_SRV_MANAGEMENT, 2);
    assert_int_equal(db_server_insert(t->db, &s2), SQLITE_OK);
    assert_int_equal(tdb_int(t->db, "SELECT count(DISTINCT psk_enc) FROM lwm2m_servers"), 2);

    /* update: clear the secret and the cert */
    free(s.psk);
    s.psk = NULL;
    free(s.server_cert);
    s.server_cert = NULL;
    s.server_cert_len = 0;
    free(s.name);
    s.name = xstrdup("srv one renamed");
    s.ssid = 5;
    assert_int_equal(db_server_update(t->db, &s), SQLITE_OK);
    assert_int_equal(db_server_get(t->db, s.id, &g), SQLITE_OK);
    assert_null(g.psk);
    assert_null(g.server_cert);
    assert_string_equal(g.name, "srv one renamed");
    assert_int_equal(g.ssid, 5);
    db_server_free(&g);

    assert_int_equal(db_server_get_by_name(t->db, "/", "srv two", &g), SQLITE_OK);
    assert_int_equal(g.id, s2.id);
    db_server_free(&g);
    assert_int_equal(db_server_get_by_name(t->db, "/", "nope", &g), SQLITE_NOTFOUND);

    /* not found cases */
    db_server_t missing;
    fill(&missing, "ghost", DB_SRV_MANAGEMENT, 9);
    missing.id = 999999;
    assert_int_equal(db_server_update(t->db, &missing), SQLITE_NOTFOUND);
    db_server_free(&missing);
    assert_int_equal(db_server_get(t->db, 999999, &g), SQLITE_NOTFOUND);
    assert_int_equal(db_server_delete(t->db, 999999), SQLITE_NOTFOUND);

    assert_int_equal(db_server_delete(t->db, s.id), SQLITE_OK);
    assert_int_equal(db_server_get(t->db, s.id, &g), SQLITE_NOTFOUND);
    db_server_free(&s);
    db_server_free(&s2);
}

static void test_unique(void **state)
{
    tdb_t *t = *state;
    db_server_t a, b;
    fill(&a, "dup", DB_SRV_MANAGEMENT, 1);
    assert_int_equal(db_server_insert(t->db, &a), SQLITE_OK);
    fill(&b, "dup", DB_SRV_MANAGEMENT, 2);
    assert_int_equal(db_server_insert(t->db, &b), SQLITE_CONSTRAINT);
    free(b.name);
    b.name = xstrdup("other");
    b.ssid = 1; /* ssid taken */
    assert_int_equal(db_server_insert(t->db, &b), SQLITE_CONSTRAINT);
    bool taken = false;
    assert_int_equal(db_server_ssid_taken(t->db, "/", 1, 0, &taken), SQLITE_OK);
    assert_true(taken);
    assert_int_equal(db_server_ssid_taken(t->db, "/", 1, a.id, &taken), SQLITE_OK);
    assert_false(taken);
    assert_int_equal(db_server_ssid_taken(t->db, "/", 7, 0, &taken), SQLITE_OK);
    assert_false(taken);
    int64_t id = 0;
    char *name = NULL;
    assert_int_equal(db_server_find_by_ssid(t->db, "/", 1, 0, &id, &name), SQLITE_OK);
    assert_int_equal(id, a.id);
    assert_string_equal(name, "dup");
    free(name);
    assert_int_equal(db_server_find_by_ssid(t->db, "/", 3, 0, &id, &name), SQLITE_NOTFOUND);
    assert_null(name);
    /* bootstrap servers without ssid: many allowed */
    db_server_t c, d;
    fill(&c, "bs1", DB_SRV_BOOTSTRAP, 0);
    fill(&d, "bs2", DB_SRV_BOOTSTRAP, 0);
    assert_int_equal(db_server_insert(t->db, &c), SQLITE_OK);
    assert_int_equal(db_server_insert(t->db, &d), SQLITE_OK);
    db_server_t g;
    assert_int_equal(db_server_get(t->db, c.id, &g), SQLITE_OK);
    assert_int_equal(g.ssid, 0);
    db_server_free(&g);
    /* the rejected insert changed nothing */
    assert_int_equal(tdb_int(t->db, "SELECT count(*) FROM lwm2m_servers"), 3);
    db_server_free(&a);
    db_server_free(&b);
    db_server_free(&c);
    db_server_free(&d);
}

static void test_list(void **state)
{
    tdb_t *t = *state;
    char name[32];
    for (int i = 0; i < 25; i++) {
        db_server_t s;
        snprintf(name, sizeof name, "%s-%02d", i % 2 ? "Alpha" : "beta", i);
        fill(&s, name, DB_SRV_MANAGEMENT, i + 1);
        if (i == 3) {
            free(s.psk_identity);
            s.psk_identity = xstrdup("needle-IDENT");
        }
        assert_int_equal(db_server_insert(t->db, &s), SQLITE_OK);
        db_server_free(&s);
    }
    db_server_t *list = NULL;
    size_t n = 0;
    int64_t total = 0;
    assert_int_equal(db_server_list(t->db, "/", NULL, 10, 0, &list, &n, &total), SQLITE_OK);
    assert_int_equal(n, 10);
    assert_int_equal(total, 25);
    for (size_t i = 1; i < n; i++)
        assert_true(list[i].id > list[i - 1].id);
    int64_t first10_last = list[9].id;
    db_server_list_free(&list, n);
    assert_null(list);
    assert_int_equal(db_server_list(t->db, "/", NULL, 10, 20, &list, &n, &total), SQLITE_OK);
    assert_int_equal(n, 5);
    assert_true(list[0].id > first10_last);
    db_server_list_free(&list, n);
    assert_int_equal(db_server_list(t->db, "/", "ALPHA", 0, 0, &list, &n, &total), SQLITE_OK);
    assert_int_equal(n, 12);
    assert_int_equal(total, 12);
    db_server_list_free(&list, n);
    assert_int_equal(db_server_list(t->db, NULL, "needle-ident", 0, 0, &list, &n, NULL), SQLITE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].name, "Alpha-03");
    db_server_list_free(&list, n);
    assert_int_equal(db_server_list(t->db, "/", "dm.example", 5, 0, &list, &n, &total), SQLITE_OK);
    assert_int_equal(total, 25);
    db_server_list_free(&list, n);
    assert_int_equal(db_server_list(t->db, "/other/", NULL, 0, 0, &list, &n, &total), SQLITE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(total, 0);
    db_server_list_free(&list, n);
}

static void test_dependents_and_delete(void **state)
{
    tdb_t *t = *state;
    db_server_t a, b;
    fill(&a, "target", DB_SRV_MANAGEMENT, 1);
    fill(&b, "other", DB_SRV_MANAGEMENT, 2);
    assert_int_equal(db_server_insert(t->db, &a), SQLITE_OK);
    assert_int_equal(db_server_insert(t->db, &b), SQLITE_OK);
    char sql[512];
    tdb_exec(t->db, "INSERT INTO groups (id, domain, name, created_at, updated_at) VALUES (7, '/', 'g', 0, 0)");
    tdb_exec(t->db, "INSERT INTO tasks (id, domain, group_id, name, created_at, updated_at)"
                    " VALUES (11, '/', 7, 'bootstrap task', 0, 0), (12, '/', 7, 'unrelated', 0, 0)");
    tdb_exec(t->db, "INSERT INTO task_templates (id, domain, name, created_at, updated_at)"
                    " VALUES (21, '/', 'tpl A', 0, 0), (22, '/', 'tpl B', 0, 0)");
    snprintf(sql, sizeof sql,
             "INSERT INTO task_server_refs VALUES (11, %lld), (12, %lld);"
             "INSERT INTO task_template_server_refs VALUES (21, %lld), (22, %lld);",
             (long long)a.id, (long long)b.id, (long long)a.id, (long long)b.id);
    tdb_exec(t->db, sql);
    /* bootstrap settings that use the server */
    db_bs_settings_t bs = {0};
    int64_t mids[] = {a.id, b.id};
    bs.management_server_ids = mids;
    bs.n_management = 2;
    assert_int_equal(db_bs_settings_put(t->db, "/", &bs), SQLITE_OK);

    char *json = NULL;
    assert_int_equal(db_server_dependents(t->db, a.id, &json), SQLITE_OK);
    assert_string_equal(json, "{\"tasks\":[{\"id\":11,\"name\":\"bootstrap task\",\"groupId\":7,\"deviceId\":null}],"
                              "\"taskTemplates\":[{\"id\":21,\"name\":\"tpl A\"}]}");
    free(json);
    uint64_t gen = db_config_generation();
    assert_int_equal(db_server_delete(t->db, a.id), SQLITE_OK);
    assert_true(db_config_generation() > gen);
    assert_int_equal(tdb_int(t->db, "SELECT count(*) FROM tasks WHERE id = 11"), 0);
    assert_int_equal(tdb_int(t->db, "SELECT count(*) FROM tasks WHERE id = 12"), 1);
    assert_int_equal(tdb_int(t->db, "SELECT count(*) FROM task_templates WHERE id = 21"), 0);
    assert_int_equal(tdb_int(t->db, "SELECT count(*) FROM task_templates WHERE id = 22"), 1);
    assert_int_equal(tdb_int(t->db, "SELECT count(*) FROM task_server_refs"), 1);
    db_bs_settings_t got;
    assert_int_equal(db_bs_settings_get(t->db, "/", &got), SQLITE_OK);
    assert_int_equal(got.n_management, 1);
    assert_int_equal(got.management_server_ids[0], b.id);
    db_bs_settings_free(&got);
    /* a server without dependents */
    assert_int_equal(db_server_dependents(t->db, 4242, &json), SQLITE_OK);
    assert_string_equal(json, "{\"tasks\":[],\"taskTemplates\":[]}");
    free(json);
    /* delete inside a caller's transaction, rolled back: nothing changes */
    assert_int_equal(db_begin(t->db), SQLITE_OK);
    assert_int_equal(db_server_delete(t->db, b.id), SQLITE_OK);
    assert_int_equal(db_rollback(t->db), SQLITE_OK);
    assert_int_equal(tdb_int(t->db, "SELECT count(*) FROM tasks WHERE id = 12"), 1);
    db_server_t g;
    assert_int_equal(db_server_get(t->db, b.id, &g), SQLITE_OK);
    db_server_free(&g);
    db_server_free(&a);
    db_server_free(&b);
}

static void test_bs_settings(void **state)
{
    tdb_t *t = *state;
    db_bs_settings_t got;
    assert_int_equal(db_bs_settings_get(t->db, "/", &got), SQLITE_OK);
    assert_int_equal(got.bootstrap_server_id, 0);
    assert_int_equal(got.n_management, 0);
    assert_false(got.accept_unknown);
    assert_int_equal(got.updated_at, 0);
    db_bs_settings_free(&got);

    db_server_t bs, m1, m2;
    fill(&bs, "bs", DB_SRV_BOOTSTRAP, 0);
    fill(&m1, "m1", DB_SRV_MANAGEMENT, 1);
    fill(&m2, "m2", DB_SRV_MANAGEMENT, 2);
    assert_int_equal(db_server_insert(t->db, &bs), SQLITE_OK);
    assert_int_equal(db_server_insert(t->db, &m1), SQLITE_OK);
    assert_int_equal(db_server_insert(t->db, &m2), SQLITE_OK);
    int64_t ids[] = {m2.id, m1.id};
    db_bs_settings_t put = {.bootstrap_server_id = bs.id, .management_server_ids = ids, .n_management = 2,
                            .accept_unknown = true};
    uint64_t gen = db_config_generation();
    assert_int_equal(db_bs_settings_put(t->db, "/", &put), SQLITE_OK);
    assert_true(db_config_generation() > gen);
    assert_int_equal(db_bs_settings_get(t->db, "/", &got), SQLITE_OK);
    assert_int_equal(got.bootstrap_server_id, bs.id);
    assert_int_equal(got.n_management, 2);
    assert_int_equal(got.management_server_ids[0], m2.id); /* order kept */
    assert_int_equal(got.management_server_ids[1], m1.id);
    assert_true(got.accept_unknown);
    assert_true(got.updated_at > 0);
    db_bs_settings_free(&got);
    /* duplicates and unknown ids are refused and change nothing */
    int64_t dup[] = {m1.id, m1.id};
    db_bs_settings_t bad = {.management_server_ids = dup, .n_management = 2};
    assert_int_equal(db_bs_settings_put(t->db, "/", &bad), SQLITE_CONSTRAINT);
    int64_t unknown[] = {987654};
    bad.management_server_ids = unknown;
    bad.n_management = 1;
    assert_int_equal(db_bs_settings_put(t->db, "/", &bad), SQLITE_CONSTRAINT);
    assert_int_equal(db_bs_settings_get(t->db, "/", &got), SQLITE_OK);
    assert_int_equal(got.n_management, 2);
    assert_int_equal(got.bootstrap_server_id, bs.id);
    db_bs_settings_free(&got);
    /* deleting the bootstrap server unsets it */
    assert_int_equal(db_server_delete(t->db, bs.id), SQLITE_OK);
    assert_int_equal(db_bs_settings_get(t->db, "/", &got), SQLITE_OK);
    assert_int_equal(got.bootstrap_server_id, 0);
    db_bs_settings_free(&got);
    /* replace with an empty list */
    db_bs_settings_t empty = {0};
    assert_int_equal(db_bs_settings_put(t->db, "/", &empty), SQLITE_OK);
    assert_int_equal(db_bs_settings_get(t->db, "/", &got), SQLITE_OK);
    assert_int_equal(got.n_management, 0);
    assert_false(got.accept_unknown);
    db_bs_settings_free(&got);
    db_server_free(&bs);
    db_server_free(&m1);
    db_server_free(&m2);
}

static void test_config_generation_on_writes(void **state)
{
    tdb_t *t = *state;
    db_server_t s;
    fill(&s, "gen", DB_SRV_MANAGEMENT, 1);
    uint64_t g0 = db_config_generation();
    assert_int_equal(db_server_insert(t->db, &s), SQLITE_OK);
    uint64_t g1 = db_config_generation();
    assert_true(g1 > g0);
    /* inside a transaction: bumped at commit, not before */
    assert_int_equal(db_begin(t->db), SQLITE_OK);
    s.lifetime = 77;
    assert_int_equal(db_server_update(t->db, &s), SQLITE_OK);
    assert_int_equal(db_config_generation(), g1);
    assert_int_equal(db_commit(t->db), SQLITE_OK);
    assert_true(db_config_generation() > g1);
    /* rolled back: not bumped */
    uint64_t g2 = db_config_generation();
    assert_int_equal(db_begin(t->db), SQLITE_OK);
    assert_int_equal(db_server_update(t->db, &s), SQLITE_OK);
    assert_int_equal(db_rollback(t->db), SQLITE_OK);
    assert_int_equal(db_config_generation(), g2);
    db_server_free(&s);
}

static void test_wrong_key_cannot_read_secrets(void **state)
{
    tdb_t *t = *state;
    db_server_t s;
    fill(&s, "keyed", DB_SRV_MANAGEMENT, 1);
    assert_int_equal(db_server_insert(t->db, &s), SQLITE_OK);
    uint8_t other[DB_KEY_BYTES] = {42};
    db_t *db2 = NULL;
    char err[256];
    assert_int_equal(db_open(t->path, other, &db2, err, sizeof err), SQLITE_OK);
    db_server_t g;
    assert_int_equal(db_server_get(db2, s.id, &g), SQLITE_CORRUPT);
    assert_null(g.name);
    db_close(&db2);
    db_server_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crud, tdb_setup, tdb_teardown),
        cmocka_unit_test_setup_teardown(test_unique, tdb_setup, tdb_teardown),
        cmocka_unit_test_setup_teardown(test_list, tdb_setup, tdb_teardown),
        cmocka_unit_test_setup_teardown(test_dependents_and_delete, tdb_setup, tdb_teardown),
        cmocka_unit_test_setup_teardown(test_bs_settings, tdb_setup, tdb_teardown),
        cmocka_unit_test_setup_teardown(test_config_generation_on_writes, tdb_setup, tdb_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_key_cannot_read_secrets, tdb_setup, tdb_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
