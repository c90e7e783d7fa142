/* db: devices, lookups by endpoint / PSK identity, per-server credentials. */
#include "db_test_util.h"

static void fill(db_device_t *d, const char *ep)
{
    memset(d, 0, sizeof *d);
    d->endpoint = strdup(ep);
    d->domain = strdup("/");
    d->properties_json = strdup("{\"serial\":\"123\"}");
}

static void set_psk(db_credentials_t *c, const char *identity, const char *key)
{
    db_credentials_free(c);
    c->security_mode = DB_SEC_PSK;
    c->psk_identity = strdup(identity);
    c->psk_len = strlen(key);
    c->psk = malloc(c->psk_len);
    memcpy(c->psk, key, c->psk_len);
}

static void test_crud(void **state)
{
    tdb_t *t = *state;
    db_device_t d, g;
    fill(&d, "urn:dev:1");
    set_psk(&d.bs, "bs-id-1", "bs-key-bytes-001");
    set_psk(&d.mgmt, "mgmt-id-1", "mgmt-key-bytes-01");
    d.auto_created = true;
    assert_int_equal(db_device_insert(t->db, &d), SQLITE_OK);
    assert_true(d.id > 0 && d.created_at > 0);

    assert_int_equal(db_device_get(t->db, d.id, &g), SQLITE_OK);
    assert_string_equal(g.endpoint, "urn:dev:1");
    assert_string_equal(g.domain, "/");
    assert_int_equal(g.bs.security_mode, DB_SEC_PSK);
    assert_string_equal(g.bs.psk_identity, "bs-id-1");
    assert_int_equal(g.bs.psk_len, 16);
    assert_memory_equal(g.bs.psk, "bs-key-bytes-001", 16);
    assert_string_equal(g.mgmt.psk_identity, "mgmt-id-1");
    assert_memory_equal(g.mgmt.psk, "mgmt-key-bytes-01", 17);
    assert_string_equal(g.properties_json, "{\"serial\":\"123\"}");
    assert_true(g.auto_created);
    assert_false(g.blacklisted);
    assert_int_equal(g.last_bootstrap_at, 0);
    assert_null(g.last_bootstrap_status);
    assert_null(g.last_bootstrap_json);
    db_device_free(&g);

    assert_false(tdb_raw_contains(t->db, "devices", "bs_psk_enc", "bs-key-bytes-001", 16));
    assert_false(tdb_raw_contains(t->db, "devices", "mgmt_psk_enc", "mgmt-key-bytes-01", 17));

    /* lookups */
    assert_int_equal(db_device_get_by_endpoint(t->db, "/", "urn:dev:1", &g), SQLITE_OK);
    assert_int_equal(g.id, d.id);
    db_device_free(&g);
    assert_int_equal(db_device_get_by_endpoint(t->db, "/", "urn:dev:2", &g), SQLITE_NOTFOUND);
    assert_null(g.endpoint);
    assert_int_equal(db_device_get_by_bs_identity(t->db, "bs-id-1XXX", 7, &g), SQLITE_OK); /* len-bounded */
    assert_int_equal(g.id, d.id);
    db_device_free(&g);
    assert_int_equal(db_device_get_by_bs_identity(t->db, "mgmt-id-1", 9, &g), SQLITE_NOTFOUND);
    assert_int_equal(db_device_get_by_mgmt_identity(t->db, "mgmt-id-1", 9, &g), SQLITE_OK);
    assert_int_equal(g.id, d.id);
    db_device_free(&g);

    /* update: blacklist, clear mgmt creds, rename */
    db_credentials_free(&d.mgmt);
    d.blacklisted = true;
    free(d.endpoint);
    d.endpoint = strdup("urn:dev:1b");
    assert_int_equal(db_device_update(t->db, &d), SQLITE_OK);
    assert_int_equal(db_device_get(t->db, d.id, &g), SQLITE_OK);
    assert_true(g.blacklisted);
    assert_string_equal(g.endpoint, "urn:dev:1b");
    assert_int_equal(g.mgmt.security_mode, DB_SEC_NOSEC);
    assert_null(g.mgmt.psk);
    assert_null(g.mgmt.psk_identity);
    assert_true(g.auto_created); /* not editable */
    db_device_free(&g);

    /* bootstrap outcome */
    assert_int_equal(db_device_set_bootstrap(t->db, d.id, 1234567, "success", "[{\"step\":\"finish\"}]"), SQLITE_OK);
    assert_int_equal(db_device_set_seen(t->db, d.id, 2000, 3000), SQLITE_OK);
    assert_int_equal(db_device_set_seen(t->db, d.id, 0, 4000), SQLITE_OK);
    assert_int_equal(db_device_get(t->db, d.id, &g), SQLITE_OK);
    assert_int_equal(g.last_bootstrap_at, 1234567);
    assert_string_equal(g.last_bootstrap_status, "success");
    assert_string_equal(g.last_bootstrap_json, "[{\"step\":\"finish\"}]");
    assert_int_equal(g.last_registration_at, 2000);
    assert_int_equal(g.last_contact_at, 4000);
    db_device_free(&g);
    assert_int_equal(db_device_set_bootstrap(t->db, 99999, 1, "failed", NULL), SQLITE_NOTFOUND);

    assert_int_equal(db_device_delete(t->db, d.id), SQLITE_OK);
    assert_int_equal(db_device_delete(t->db, d.id), SQLITE_NOTFOUND);
    assert_int_equal(db_device_get(t->db, d.id, &g), SQLITE_NOTFOUND);
    d.id = 424242;
    assert_int_equal(db_device_update(t->db, &d), SQLITE_NOTFOUND);
    db_device_free(&d);
}

static void test_unique(void **state)
{
    tdb_t *t = *state;
    db_device_t a, b;
    fill(&a, "ep-a");
    set_psk(&a.bs, "shared-id", "k1");
    set_psk(&a.mgmt, "mgmt-a", "k2");
    assert_int_equal(db_device_insert(t->db, &a), SQLITE_OK);
    /* same endpoint in the same domain */
    fill(&b, "ep-a");
    assert_int_equal(db_device_insert(t->db, &b), SQLITE_CONSTRAINT);
    db_device_free(&b);
    /* same bootstrap identity */
    fill(&b, "ep-b");
    set_psk(&b.bs, "shared-id", "k3");
    assert_int_equal(db_device_insert(t->db, &b), SQLITE_CONSTRAINT);
    /* same management identity */
    set_psk(&b.bs, "other-id", "k3");
    set_psk(&b.mgmt, "mgmt-a", "k4");
    assert_int_equal(db_device_insert(t->db, &b), SQLITE_CONSTRAINT);
    assert_int_equal(b.id, 0);
    /* a device's own bs and mgmt identities may be equal */
    set_psk(&b.mgmt, "other-id", "k4");
    assert_int_equal(db_device_insert(t->db, &b), SQLITE_OK);
    assert_int_equal(tdb_int(t->db, "SELECT count(*) FROM devices"), 2);
    /* update into a clash */
    set_psk(&b.bs, "shared-id", "k5");
    assert_int_equal(db_device_update(t->db, &b), SQLITE_CONSTRAINT);
    db_device_t g;
    assert_int_equal(db_device_get(t->db, b.id, &g), SQLITE_OK);
    assert_string_equal(g.bs.psk_identity, "other-id");
    db_device_free(&g);
    db_device_free(&a);
    db_device_free(&b);
}

static void test_list(void **state)
{
    tdb_t *t = *state;
    char ep[32];
    for (int i = 0; i < 30; i++) {
        db_device_t d;
        snprintf(ep, sizeof ep, "%s-%02d", i < 10 ? "Sensor" : "meter", i);
        fill(&d, ep);
        assert_int_equal(db_device_insert(t->db, &d), SQLITE_OK);
        db_device_free(&d);
    }
    db_device_t *list = NULL;
    size_t n = 0;
    int64_t total = 0;
    assert_int_equal(db_device_list(t->db, "/", "sensor", 0, 0, &list, &n, &total), SQLITE_OK);
    assert_int_equal(n, 10);
    assert_int_equal(total, 10);
    db_device_list_free(&list, n);
    assert_int_equal(db_device_list(t->db, "/", NULL, 7, 28, &list, &n, &total), SQLITE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(total, 30);
    assert_string_equal(list[1].endpoint, "meter-29");
    db_device_list_free(&list, n);
}

static void test_server_credentials(void **state)
{
    tdb_t *t = *state;
    tdb_exec(t->db, "INSERT INTO lwm2m_servers (id, domain, name, type, transport, ssid, uri, binding, lifetime,"
                    " security_mode, created_at, updated_at) VALUES"
                    " (1, '/', 's1', 0, 0, 1, 'coaps://x:5684', 'U', 60, 1, 0, 0),"
                    " (2, '/', 's2', 0, 0, 2, 'coaps://y:5684', 'U', 60, 1, 0, 0)");
    db_device_t a, b;
    fill(&a, "dev-a");
    fill(&b, "dev-b");
    assert_int_equal(db_device_insert(t->db, &a), SQLITE_OK);
    assert_int_equal(db_device_insert(t->db, &b), SQLITE_OK);
    db_credentials_t c = {0}, g;
    assert_int_equal(db_device_server_cred_get(t->db, a.id, 1, &g), SQLITE_NOTFOUND);
    set_psk(&c, "dev-a", "random-16-bytes!");
    assert_int_equal(db_device_server_cred_put(t->db, a.id, 1, &c), SQLITE_OK);
    assert_false(tdb_raw_contains(t->db, "device_server_credentials", "psk_enc", "random-16-bytes!", 16));
    assert_int_equal(db_device_server_cred_get(t->db, a.id, 1, &g), SQLITE_OK);
    assert_string_equal(g.psk_identity, "dev-a");
    assert_int_equal(g.psk_len, 16);
    assert_memory_equal(g.psk, "random-16-bytes!", 16);
    db_credentials_free(&g);
    /* upsert */
    set_psk(&c, "dev-a", "another-key");
    assert_int_equal(db_device_server_cred_put(t->db, a.id, 1, &c), SQLITE_OK);
    assert_int_equal(db_device_server_cred_put(t->db, a.id, 2, &c), SQLITE_OK);
    db_server_cred_t *list = NULL;
    size_t n = 0;
    assert_int_equal(db_device_server_cred_list(t->db, a.id, &list, &n), SQLITE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].server_id, 1);
    assert_int_equal(list[1].server_id, 2);
    assert_memory_equal(list[0].cred.psk, "another-key", 11);
    db_server_cred_list_free(&list, n);
    /* identity of another device is refused */
    assert_int_equal(db_device_server_cred_put(t->db, b.id, 1, &c), SQLITE_CONSTRAINT);
    /* lookup by management identity finds per-server credentials */
    db_device_t d;
    assert_int_equal(db_device_get_by_mgmt_identity(t->db, "dev-a", 5, &d), SQLITE_OK);
    assert_int_equal(d.id, a.id);
    db_device_free(&d);
    /* device mgmt identity may not take another device's per-server identity */
    set_psk(&b.mgmt, "dev-a", "x");
    assert_int_equal(db_device_update(t->db, &b), SQLITE_CONSTRAINT);
    /* unknown server: foreign key */
    assert_int_equal(db_device_server_cred_put(t->db, a.id, 77, &c), SQLITE_CONSTRAINT);
    /* deleting the device deletes its credentials */
    assert_int_equal(db_device_delete(t->db, a.id), SQLITE_OK);
    assert_int_equal(tdb_int(t->db, "SELECT count(*) FROM device_server_credentials"), 0);
    db_credentials_free(&c);
    db_device_free(&a);
    db_device_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crud, tdb_setup, tdb_teardown),
        cmocka_unit_test_setup_teardown(test_unique, tdb_setup, tdb_teardown),
        cmocka_unit_test_setup_teardown(test_list, tdb_setup, tdb_teardown),
        cmocka_unit_test_setup_teardown(test_server_credentials, tdb_setup, tdb_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
