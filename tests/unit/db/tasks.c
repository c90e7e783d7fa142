/* db: tasks, server references, the scheduler's candidates (ordering and
 * appliesToSubgroups). */
#include "db_test_util.h"

static int64_t mk_group(db_t *db, const char *name, int64_t parent)
{
    db_group_t g;
    memset(&g, 0, sizeof g);
    g.domain = strdup("/");
    g.name = strdup(name);
    g.parent_id = parent;
    g.priority = 10;
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

static int64_t mk_server(db_t *db, const char *domain, const char *name, int ssid)
{
    db_server_t s;
    memset(&s, 0, sizeof s);
    s.domain = strdup(domain);
    s.name = strdup(name);
    s.ssid = ssid;
    s.uri = strdup("coap://h:5683");
    s.lifetime = 60;
    s.client_hold_off_time = s.bootstrap_account_timeout = -1;
    s.sms_security_mode = -1;
    assert_int_equal(db_server_insert(db, &s), SQLITE_OK);
    int64_t id = s.id;
    db_server_free(&s);
    return id;
}

static int64_t mk_task(db_t *db, const char *name, int64_t group, int64_t device, int priority, bool subgroups,
                       bool active)
{
    db_task_t t;
    memset(&t, 0, sizeof t);
    t.name = strdup(name);
    t.config_xml = strdup("<config/>");
    t.condition = strdup("");
    t.group_id = group;
    t.device_id = device;
    t.priority = priority;
    t.applies_to_subgroups = subgroups;
    t.active = active;
    t.execution = DB_TASK_ONCE_AND_REPEAT;
    assert_int_equal(db_task_insert(db, &t), SQLITE_OK);
    int64_t id = t.id;
    db_task_free(&t);
    return id;
}

static void test_crud(void **state)
{
    tdb_t *t = *state;
    int64_t g = mk_group(t->db, "g", 0);
    int64_t s1 = mk_server(t->db, "/", "s1", 1), s2 = mk_server(t->db, "/", "s2", 2);
    db_task_t k;
    memset(&k, 0, sizeof k);
    k.name = strdup("bs");
    k.config_xml = strdup("<config><lwm2mBootstrapCleanse/></config>");
    k.condition = strdup("${true}");
    k.group_id = g;
    k.active = true;
    k.execution = DB_TASK_ONCE;
    k.repeat_on_register = true;
    k.priority = 4;
    k.min_interval_s = 60;
    k.not_before = 1000;
    k.not_after = 2000;
    k.managed_by = strdup("bootstrap-settings");
    int64_t refs[] = {s2, s1};
    k.server_ids = malloc(sizeof refs);
    memcpy(k.server_ids, refs, sizeof refs);
    k.n_server_ids = 2;
    assert_int_equal(db_task_insert(t->db, &k), SQLITE_OK);
    assert_string_equal(k.domain, "/");
    db_task_t r;
    assert_int_equal(db_task_get(t->db, k.id, &r), SQLITE_OK);
    assert_string_equal(r.name, "bs");
    assert_string_equal(r.condition, "${true}");
    assert_int_equal(r.group_id, g);
    assert_int_equal(r.device_id, 0);
    assert_int_equal(r.execution, DB_TASK_ONCE);
    assert_true(r.repeat_on_register);
    assert_false(r.automatic_restart);
    assert_int_equal(r.priority, 4);
    assert_int_equal(r.min_interval_s, 60);
    assert_int_equal(r.not_before, 1000);
    assert_int_equal(r.not_after, 2000);
    assert_string_equal(r.managed_by, "bootstrap-settings");
    assert_int_equal(r.n_server_ids, 2);
    assert_int_equal(r.server_ids[0], s1);
    assert_int_equal(r.server_ids[1], s2);
    db_task_free(&r);

    /* update replaces the references; an unknown server is refused */
    k.n_server_ids = 1;
    k.server_ids[0] = s2;
    free(k.name);
    k.name = strdup("renamed");
    assert_int_equal(db_task_update(t->db, &k), SQLITE_OK);
    assert_int_equal(tdb_int(t->db, "SELECT count(*) FROM task_server_refs"), 1);
    k.server_ids[0] = 987654;
    assert_int_equal(db_task_update(t->db, &k), SQLITE_NOTFOUND);
    assert_int_equal(tdb_int(t->db, "SELECT count(*) FROM task_server_refs"), 1);
    assert_int_equal(tdb_int(t->db, "SELECT count(*) FROM tasks WHERE name = 'renamed'"), 1);

    /* list per owner */
    int64_t d = mk_device(t->db, "d");
    mk_task(t->db, "own", 0, d, 10, false, true);
    db_task_t *list = NULL;
    size_t n = 0;
    int64_t total = 0;
    assert_int_equal(db_task_list(t->db, g, 0, "REN", 10, 0, &list, &n, &total), SQLITE_OK);
    assert_int_equal(total, 1);
    assert_int_equal(list[0].n_server_ids, 1);
    db_task_list_free(&list, n);
    assert_int_equal(db_task_list(t->db, 0, d, NULL, 10, 0, &list, &n, &total), SQLITE_OK);
    assert_int_equal(total, 1);
    assert_string_equal(list[0].name, "own");
    db_task_list_free(&list, n);

    /* deleting the server deletes the task */
    assert_int_equal(db_server_delete(t->db, s2), SQLITE_OK);
    assert_int_equal(db_task_get(t->db, k.id, &r), SQLITE_NOTFOUND);
    assert_int_equal(db_task_delete(t->db, k.id), SQLITE_NOTFOUND);
    db_task_free(&k);

    /* exactly one owner */
    memset(&k, 0, sizeof k);
    k.group_id = g;
    k.device_id = d;
    assert_int_equal(db_task_insert(t->db, &k), SQLITE_MISUSE);
}

static void test_resolve_servers(void **state)
{
    tdb_t *t = *state;
    tdb_exec(t->db, "INSERT INTO domains (id, parent, created_at) VALUES ('/acme/', '/', 0), ('/other/', '/', 0)");
    int64_t root = mk_server(t->db, "/", "dm", 1);
    int64_t acme = mk_server(t->db, "/acme/", "dm", 1);
    int64_t other = mk_server(t->db, "/other/", "o", 1);
    int64_t ids[] = {root, root};
    char *names[] = {"dm"};
    int64_t *out = NULL;
    size_t n = 0;
    char bad[100];
    assert_int_equal(db_task_resolve_servers(t->db, "/acme/", ids, 2, names, 1, &out, &n, bad, sizeof bad), SQLITE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(out[0], root);
    assert_int_equal(out[1], acme); /* the name resolves in the nearest domain */
    free(out);
    assert_int_equal(db_task_resolve_servers(t->db, "/", NULL, 0, names, 1, &out, &n, bad, sizeof bad), SQLITE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], root);
    free(out);
    int64_t bad_ids[] = {other};
    assert_int_equal(db_task_resolve_servers(t->db, "/acme/", bad_ids, 1, NULL, 0, &out, &n, bad, sizeof bad),
                     SQLITE_NOTFOUND);
    assert_non_null(strstr(bad, "serverId"));
    char *bad_names[] = {"o"};
    assert_int_equal(db_task_resolve_servers(t->db, "/acme/", NULL, 0, bad_names, 1, &out, &n, bad, sizeof bad),
                     SQLITE_NOTFOUND);
    assert_string_equal(bad, "serverName 'o'");
    assert_null(out);
}

static void test_candidates(void **state)
{
    tdb_t *t = *state;
    int64_t top = mk_group(t->db, "top", 0);
    int64_t mid = mk_group(t->db, "mid", top);
    int64_t leaf = mk_group(t->db, "leaf", mid);
    int64_t other = mk_group(t->db, "other", 0);
    int64_t d = mk_device(t->db, "d"), d2 = mk_device(t->db, "d2");
    assert_int_equal(db_group_join(t->db, leaf, d), SQLITE_OK);
    assert_int_equal(db_group_join(t->db, other, d2), SQLITE_OK);

    int64_t t_leaf = mk_task(t->db, "leaf", leaf, 0, 10, false, true);
    int64_t t_top_sub = mk_task(t->db, "top-sub", top, 0, 5, true, true);
    mk_task(t->db, "top-nosub", top, 0, 1, false, true);     /* not for subgroups: excluded */
    int64_t t_mid_sub = mk_task(t->db, "mid-sub", mid, 0, 10, true, true);
    mk_task(t->db, "inactive", leaf, 0, 1, false, false);     /* excluded */
    int64_t t_own = mk_task(t->db, "own", 0, d, 20, false, true);
    mk_task(t->db, "other", other, 0, 1, false, true);        /* another group: excluded */
    mk_task(t->db, "other-dev", 0, d2, 1, false, true);       /* another device: excluded */
    int64_t t_leaf2 = mk_task(t->db, "leaf2", leaf, 0, 10, false, true);
    /* same priority: created_at then id */
    tdb_exec(t->db, "UPDATE tasks SET created_at = 1 WHERE name = 'leaf2'");

    int64_t rid = 0;
    assert_int_equal(db_report_start(t->db, t_leaf, d, "bootstrap", 5000, &rid), SQLITE_OK);
    assert_int_equal(db_report_finish(t->db, rid, "SUCCESS", "ok", NULL, 6000), SQLITE_OK);

    db_task_candidate_t *c = NULL;
    size_t n = 0;
    assert_int_equal(db_device_task_candidates(t->db, d, &c, &n), SQLITE_OK);
    int64_t expected[] = {t_top_sub, t_leaf2, t_leaf, t_mid_sub, t_own};
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(c[i].task.id, expected[i]);
    /* the report of the device */
    assert_int_equal(c[2].report_id, rid);
    assert_string_equal(c[2].status, "SUCCESS");
    assert_int_equal(c[2].runs, 1);
    assert_int_equal(c[2].started_at, 5000);
    assert_int_equal(c[2].finished_at, 6000);
    assert_string_equal(c[2].session_kind, "bootstrap");
    assert_int_equal(c[0].report_id, 0);
    assert_string_equal(c[0].status, "");
    assert_string_equal(c[0].task.config_xml, "<config/>");
    assert_int_equal(c[4].task.device_id, d);
    db_task_candidates_free(&c, n);
    assert_null(c);

    /* no groups, no own tasks */
    int64_t d3 = mk_device(t->db, "d3");
    assert_int_equal(db_device_task_candidates(t->db, d3, &c, &n), SQLITE_OK);
    assert_int_equal(n, 0);
    db_task_candidates_free(&c, n);

    /* a member of a group and of its subgroup gets the group's task once */
    int64_t d4 = mk_device(t->db, "d4");
    assert_int_equal(db_group_join(t->db, mid, d4), SQLITE_OK);
    assert_int_equal(db_group_join(t->db, leaf, d4), SQLITE_OK);
    assert_int_equal(db_device_task_candidates(t->db, d4, &c, &n), SQLITE_OK);
    int64_t expected4[] = {t_top_sub, t_leaf2, t_leaf, t_mid_sub};
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(c[i].task.id, expected4[i]);
    db_task_candidates_free(&c, n);
}

/* Whether any task applies to subgroups is remembered per tasks generation:
 * the first such task, created after a lookup found none, is seen. */
static void test_candidates_first_inherited_task(void **state)
{
    tdb_t *t = *state;
    int64_t parent = mk_group(t->db, "p", 0);
    int64_t child = mk_group(t->db, "c", parent);
    int64_t d = mk_device(t->db, "d");
    assert_int_equal(db_group_join(t->db, child, d), SQLITE_OK);
    mk_task(t->db, "parent-only", parent, 0, 10, false, true);
    db_task_candidate_t *c = NULL;
    size_t n = 9;
    assert_int_equal(db_device_task_candidates(t->db, d, &c, &n), SQLITE_OK);
    assert_int_equal(n, 0);
    db_task_candidates_free(&c, n);
    int64_t sub = mk_task(t->db, "parent-sub", parent, 0, 10, true, true);
    assert_int_equal(db_device_task_candidates(t->db, d, &c, &n), SQLITE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(c[0].task.id, sub);
    db_task_candidates_free(&c, n);
    /* and deactivating it is seen too */
    db_task_t tk;
    assert_int_equal(db_task_get(t->db, sub, &tk), SQLITE_OK);
    tk.active = false;
    assert_int_equal(db_task_update(t->db, &tk), SQLITE_OK);
    db_task_free(&tk);
    assert_int_equal(db_device_task_candidates(t->db, d, &c, &n), SQLITE_OK);
    assert_int_equal(n, 0);
    db_task_candidates_free(&c, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crud, tdb_setup, tdb_teardown),
        cmocka_unit_test_setup_teardown(test_resolve_servers, tdb_setup, tdb_teardown),
        cmocka_unit_test_setup_teardown(test_candidates, tdb_setup, tdb_teardown),
        cmocka_unit_test_setup_teardown(test_candidates_first_inherited_task, tdb_setup, tdb_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
