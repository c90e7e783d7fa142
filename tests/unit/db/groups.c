/* db: groups (tree, bootstrap group, membership) and effective setting values. */
#include "db_test_util.h"

#include <jansson.h>

static int64_t mk_group(db_t *db, const char *name, int64_t parent, int priority)
{
    db_group_t g;
    memset(&g, 0, sizeof g);
    g.domain = strdup("/");
    g.name = strdup(name);
    g.parent_id = parent;
    g.priority = priority;
    assert_int_equal(db_group_insert(db, &g), SQLITE_OK);
    int64_t id = g.id;
    db_group_free(&g);
    return id;
}

static int64_t mk_device(db_t *db, const char *ep)
{
    db_device_t d;
    memset(&d, 0, sizeof d);
    d.endpoint = strdup(ep);
    d.domain = strdup("/");
    assert_int_equal(db_device_insert(db, &d), SQLITE_OK);
    int64_t id = d.id;
    db_device_free(&d);
    return id;
}

static void test_tree(void **state)
{
    tdb_t *t = *state;
    int64_t a = mk_group(t->db, "a", 0, 10);
    int64_t b = mk_group(t->db, "b", a, 10);
    int64_t c = mk_group(t->db, "c", b, 10);
    db_group_t g;
    assert_int_equal(db_group_get(t->db, c, &g), SQLITE_OK);
    assert_int_equal(g.parent_id, b);
    assert_string_equal(g.name, "c");
    assert_string_equal(g.description, "");
    assert_false(g.is_bootstrap);

    /* names unique among siblings */
    db_group_t dup;
    memset(&dup, 0, sizeof dup);
    dup.domain = strdup("/");
    dup.name = strdup("b");
    dup.parent_id = a;
    assert_int_equal(db_group_insert(t->db, &dup), SQLITE_CONSTRAINT);
    dup.parent_id = 0;
    assert_int_equal(db_group_insert(t->db, &dup), SQLITE_OK);
    dup.parent_id = 987654;
    free(dup.name);
    dup.name = strdup("orphan");
    assert_int_equal(db_group_insert(t->db, &dup), SQLITE_NOTFOUND);
    db_group_free(&dup);

    /* no cycles */
    bool yes;
    assert_int_equal(db_group_is_ancestor(t->db, a, c, &yes), SQLITE_OK);
    assert_true(yes);
    assert_int_equal(db_group_is_ancestor(t->db, c, a, &yes), SQLITE_OK);
    assert_false(yes);
    db_group_t ga;
    assert_int_equal(db_group_get(t->db, a, &ga), SQLITE_OK);
    ga.parent_id = c;
    assert_int_equal(db_group_update(t->db, &ga), SQLITE_MISMATCH);
    ga.parent_id = a;
    assert_int_equal(db_group_update(t->db, &ga), SQLITE_MISMATCH);
    ga.parent_id = 0;
    ga.priority = 3;
    assert_int_equal(db_group_update(t->db, &ga), SQLITE_OK);
    db_group_free(&ga);

    /* list + q */
    db_group_t *list = NULL;
    size_t n = 0;
    int64_t total = 0;
    assert_int_equal(db_group_list(t->db, "/", "B", 10, 0, &list, &n, &total), SQLITE_OK);
    assert_int_equal(total, 3); /* both "b" and "bootstrap" */
    db_group_list_free(&list, n);

    /* delete takes the subtree */
    int64_t dev = mk_device(t->db, "ep1");
    assert_int_equal(db_group_join(t->db, c, dev), SQLITE_OK);
    assert_int_equal(db_group_delete(t->db, a), SQLITE_OK);
    db_group_free(&g);
    assert_int_equal(db_group_get(t->db, c, &g), SQLITE_NOTFOUND);
    assert_int_equal(tdb_int(t->db, "SELECT count(*) FROM group_members"), 0);
    assert_int_equal(db_group_delete(t->db, a), SQLITE_NOTFOUND);
}

static void test_bootstrap_group(void **state)
{
    tdb_t *t = *state;
    int64_t root = 0, again = 0;
    assert_int_equal(db_group_bootstrap(t->db, "/", &root), SQLITE_OK);
    assert_true(root > 0); /* created by the migration */
    assert_int_equal(tdb_int(t->db, "SELECT count(*) FROM groups WHERE is_bootstrap = 1"), 1);
    assert_int_equal(db_group_delete(t->db, root), SQLITE_PERM);
    db_group_t g;
    assert_int_equal(db_group_get(t->db, root, &g), SQLITE_OK);
    assert_true(g.is_bootstrap);
    assert_string_equal(g.name, "bootstrap");
    int64_t other = mk_group(t->db, "other", 0, 10);
    g.parent_id = other;
    assert_int_equal(db_group_update(t->db, &g), SQLITE_PERM);
    db_group_free(&g);

    /* a new domain gets one on demand, once */
    tdb_exec(t->db, "INSERT INTO domains (id, parent, created_at) VALUES ('/acme/', '/', 0)");
    int64_t acme = 0;
    assert_int_equal(db_group_bootstrap(t->db, "/acme/", &acme), SQLITE_OK);
    assert_true(acme > 0 && acme != root);
    assert_int_equal(db_group_bootstrap(t->db, "/acme/", &again), SQLITE_OK);
    assert_int_equal(again, acme);
    assert_int_equal(db_group_bootstrap(t->db, "/nope/", &again), SQLITE_CONSTRAINT);

    /* find by name: the one nearest the top */
    int64_t deep_parent = mk_group(t->db, "x", 0, 10);
    mk_group(t->db, "same", deep_parent, 10);
    int64_t top = mk_group(t->db, "same", 0, 10);
    int64_t id = 0;
    assert_int_equal(db_group_find_by_name(t->db, "/", "same", &id), SQLITE_OK);
    assert_int_equal(id, top);
    assert_int_equal(db_group_find_by_name(t->db, "/", "bootstrap", &id), SQLITE_OK);
    assert_int_equal(id, root);
    assert_int_equal(db_group_find_by_name(t->db, "/acme/", "same", &id), SQLITE_NOTFOUND);
}

static void test_membership(void **state)
{
    tdb_t *t = *state;
    int64_t g1 = mk_group(t->db, "g1", 0, 10), g2 = mk_group(t->db, "g2", 0, 10);
    int64_t d = mk_device(t->db, "ep"), d2 = mk_device(t->db, "ep2");
    assert_int_equal(db_group_join(t->db, g2, d), SQLITE_OK);
    assert_int_equal(db_group_join(t->db, g1, d), SQLITE_OK);
    assert_int_equal(db_group_join(t->db, g1, d), SQLITE_OK); /* idempotent */
    assert_int_equal(db_group_join(t->db, g1, d2), SQLITE_OK);
    assert_int_equal(db_group_join(t->db, 987654, d), SQLITE_NOTFOUND);
    assert_int_equal(db_group_join(t->db, g1, 987654), SQLITE_NOTFOUND);
    int64_t *ids = NULL;
    size_t n = 0;
    assert_int_equal(db_device_groups(t->db, d, &ids, &n), SQLITE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], g1);
    assert_int_equal(ids[1], g2);
    free(ids);
    bool yes;
    assert_int_equal(db_group_is_member(t->db, g1, d2, &yes), SQLITE_OK);
    assert_true(yes);
    db_device_t *list = NULL;
    int64_t total = 0;
    assert_int_equal(db_group_members(t->db, g1, NULL, 1, 1, &list, &n, &total), SQLITE_OK);
    assert_int_equal(total, 2);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].endpoint, "ep2");
    db_device_list_free(&list, n);
    assert_int_equal(db_group_members(t->db, g1, "EP2", 0, 0, &list, &n, &total), SQLITE_OK);
    assert_int_equal(total, 1);
    db_device_list_free(&list, n);
    db_group_t g;
    assert_int_equal(db_group_get(t->db, g1, &g), SQLITE_OK);
    assert_int_equal(g.n_devices, 2);
    db_group_free(&g);
    assert_int_equal(db_group_leave(t->db, g1, d2), SQLITE_OK);
    assert_int_equal(db_group_leave(t->db, g1, d2), SQLITE_OK);
    assert_int_equal(db_group_is_member(t->db, g1, d2, &yes), SQLITE_OK);
    assert_false(yes);

    /* device properties written by tasks */
    assert_int_equal(db_device_set_property(t->db, d, "model", "X1"), SQLITE_OK);
    assert_int_equal(db_device_set_property(t->db, d, "fw", "1.0"), SQLITE_OK);
    assert_int_equal(db_device_set_property(t->db, d, "model", NULL), SQLITE_OK);
    db_device_t dd;
    assert_int_equal(db_device_get(t->db, d, &dd), SQLITE_OK);
    assert_string_equal(dd.properties_json, "{\"fw\":\"1.0\"}");
    db_device_free(&dd);
    assert_int_equal(db_device_set_property(t->db, 987654, "a", "b"), SQLITE_NOTFOUND);
}

static void expect_sv(db_t *db, int64_t device, const char *expected)
{
    char *text = NULL;
    assert_int_equal(db_device_setting_values(db, device, &text), SQLITE_OK);
    assert_string_equal(text, expected);
    free(text);
}

static void test_setting_values(void **state)
{
    tdb_t *t = *state;
    int64_t g = mk_group(t->db, "g", 0, 10);
    char *text = NULL;
    assert_int_equal(db_setting_values_get(t->db, g, 0, &text), SQLITE_OK);
    assert_string_equal(text, "{}");
    free(text);
    assert_int_equal(db_setting_values_put(t->db, g, 0, "{\"b\":\"2\",\"a\":\"1\"}"), SQLITE_OK);
    assert_int_equal(db_setting_value_set(t->db, g, 0, "c", "3"), SQLITE_OK);
    assert_int_equal(db_setting_value_set(t->db, g, 0, "a", NULL), SQLITE_OK);
    assert_int_equal(db_setting_value_set(t->db, g, 0, "b", "22"), SQLITE_OK);
    assert_int_equal(db_setting_values_get(t->db, g, 0, &text), SQLITE_OK);
    assert_string_equal(text, "{\"b\":\"22\",\"c\":\"3\"}");
    free(text);
    assert_int_equal(db_setting_values_put(t->db, g, 0, "{\"x\":1}"), SQLITE_MISMATCH);
    assert_int_equal(db_setting_values_put(t->db, g, 5, "{}"), SQLITE_MISUSE);
    assert_int_equal(db_setting_values_get(t->db, 0, 0, &text), SQLITE_MISUSE);
}

/* Inheritance table: root <- child (member), strong (priority 5, member),
 * tie (priority 10, member, higher id than child), device's own values. */
static void test_effective_values(void **state)
{
    tdb_t *t = *state;
    int64_t root = mk_group(t->db, "root", 0, 10);
    int64_t child = mk_group(t->db, "child", root, 10);
    int64_t strong = mk_group(t->db, "strong", 0, 5);
    int64_t tie = mk_group(t->db, "tie", 0, 10);
    int64_t grand = mk_group(t->db, "grand", child, 20); /* not a member: ignored */
    int64_t d = mk_device(t->db, "dev");
    expect_sv(t->db, d, "{}");
    assert_int_equal(db_group_join(t->db, child, d), SQLITE_OK);
    assert_int_equal(db_group_join(t->db, strong, d), SQLITE_OK);
    assert_int_equal(db_group_join(t->db, tie, d), SQLITE_OK);
    db_setting_values_put(t->db, root, 0, "{\"a\":\"root\",\"b\":\"root\",\"c\":\"root\",\"r\":\"root\",\"own\":\"root\"}");
    db_setting_values_put(t->db, child, 0, "{\"a\":\"child\",\"c\":\"child\"}");
    db_setting_values_put(t->db, strong, 0, "{\"b\":\"strong\",\"c\":\"strong\"}");
    db_setting_values_put(t->db, tie, 0, "{\"a\":\"tie\",\"t\":\"tie\"}");
    db_setting_values_put(t->db, grand, 0, "{\"a\":\"grand\",\"g\":\"grand\"}");
    expect_sv(t->db, d, "{\"a\":\"child\",\"b\":\"strong\",\"c\":\"strong\",\"own\":\"root\",\"r\":\"root\",\"t\":\"tie\"}");
    db_setting_values_put(t->db, 0, d, "{\"own\":\"device\",\"a\":\"device\"}");
    expect_sv(t->db, d, "{\"a\":\"device\",\"b\":\"strong\",\"c\":\"strong\",\"own\":\"device\",\"r\":\"root\",\"t\":\"tie\"}");
    /* the nearer group wins even against a stronger ancestor */
    tdb_exec(t->db, "UPDATE groups SET priority = 1 WHERE name = 'root'");
    /* c: root is overridden by child (nearer); child vs strong: unrelated, 5 < 10 */
    expect_sv(t->db, d, "{\"a\":\"device\",\"b\":\"root\",\"c\":\"strong\",\"own\":\"device\",\"r\":\"root\",\"t\":\"tie\"}");
    /* membership in the grandchild (priority 20): it overrides child and root,
     * and then loses against the unrelated tie (10) */
    assert_int_equal(db_group_join(t->db, grand, d), SQLITE_OK);
    db_setting_values_put(t->db, 0, d, "{}");
    expect_sv(t->db, d, "{\"a\":\"tie\",\"b\":\"root\",\"c\":\"strong\",\"g\":\"grand\",\"own\":\"root\",\"r\":\"root\",\"t\":\"tie\"}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tree, tdb_setup, tdb_teardown),
        cmocka_unit_test_setup_teardown(test_bootstrap_group, tdb_setup, tdb_teardown),
        cmocka_unit_test_setup_teardown(test_membership, tdb_setup, tdb_teardown),
        cmocka_unit_test_setup_teardown(test_setting_values, tdb_setup, tdb_teardown),
        cmocka_unit_test_setup_teardown(test_effective_values, tdb_setup, tdb_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
