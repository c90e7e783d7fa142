/* db: task report lifecycle, the log of the last run, listings with counts,
 * marking interrupted runs at server start. */
#include "db_test_util.h"

static int64_t mk_group(db_t *db, const char *name, int64_t parent)
{
    db_group_t g;
    memset(&g, 0, sizeof g);
    g.domain = strdup("/");
    g.name = strdup(name);
    g.parent_id = parent;
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

static int64_t mk_task(db_t *db, int64_t group, bool subgroups)
{
    db_task_t t;
    memset(&t, 0, sizeof t);
    t.name = strdup("task");
    t.config_xml = strdup("<config/>");
    t.group_id = group;
    t.active = true;
    t.applies_to_subgroups = subgroups;
    assert_int_equal(db_task_insert(db, &t), SQLITE_OK);
    int64_t id = t.id;
    db_task_free(&t);
    return id;
}

static void test_lifecycle(void **state)
{
    tdb_t *t = *state;
    int64_t g = mk_group(t->db, "g", 0), d = mk_device(t->db, "ep"), task = mk_task(t->db, g, false);
    int64_t rid = 0, rid2 = 0;
    assert_int_equal(db_report_start(t->db, task, d, "bootstrap", 1000, &rid), SQLITE_OK);
    assert_true(rid > 0);
    assert_int_equal(db_report_log(t->db, rid, 1001, "info", "set line 3", "PUT /1/0/1", NULL, "2.04", "written"),
                     SQLITE_OK);
    assert_int_equal(db_report_log(t->db, rid, 1002, NULL, NULL, NULL, NULL, NULL, "second"), SQLITE_OK);
    db_report_t r;
    assert_int_equal(db_report_get(t->db, rid, &r), SQLITE_OK);
    assert_string_equal(r.status, "IN_PROGRESS");
    assert_int_equal(r.runs, 1);
    assert_int_equal(r.started_at, 1000);
    assert_int_equal(r.finished_at, 0);
    assert_string_equal(r.session_kind, "bootstrap");
    assert_string_equal(r.endpoint, "ep");
    assert_string_equal(r.task_name, "task");
    assert_int_equal(r.task_group_id, g);
    db_report_free(&r);
    db_report_line_t *lines = NULL;
    size_t n = 0;
    assert_int_equal(db_report_lines(t->db, rid, &lines, &n), SQLITE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(lines[0].seq, 1);
    assert_string_equal(lines[0].step, "set line 3");
    assert_string_equal(lines[0].sent, "PUT /1/0/1");
    assert_null(lines[0].received);
    assert_string_equal(lines[0].code, "2.04");
    assert_int_equal(lines[1].seq, 2);
    assert_string_equal(lines[1].level, "info");
    assert_string_equal(lines[1].message, "second");
    db_report_lines_free(&lines, n);

    assert_int_equal(db_report_finish(t->db, rid, "DONE", NULL, NULL, 2000), SQLITE_MISUSE);
    assert_int_equal(db_report_finish(t->db, rid, "WARNING", "almost", "{\"a\":\"1\"}", 2000), SQLITE_OK);
    assert_int_equal(db_report_get(t->db, rid, &r), SQLITE_OK);
    assert_string_equal(r.status, "WARNING");
    assert_string_equal(r.summary, "almost");
    assert_string_equal(r.variables_json, "{\"a\":\"1\"}");
    assert_int_equal(r.finished_at, 2000);
    db_report_free(&r);

    /* a new run: same report, runs + 1, the old log is gone */
    assert_int_equal(db_report_start(t->db, task, d, "management", 3000, &rid2), SQLITE_OK);
    assert_int_equal(rid2, rid);
    assert_int_equal(db_report_get(t->db, rid, &r), SQLITE_OK);
    assert_string_equal(r.status, "IN_PROGRESS");
    assert_int_equal(r.runs, 2);
    assert_int_equal(r.finished_at, 0);
    assert_string_equal(r.summary, "");
    assert_string_equal(r.variables_json, "{}");
    assert_string_equal(r.session_kind, "management");
    db_report_free(&r);
    assert_int_equal(db_report_lines(t->db, rid, &lines, &n), SQLITE_OK);
    assert_int_equal(n, 0);
    db_report_lines_free(&lines, n);
    assert_int_equal(db_report_log(t->db, rid, 3001, "info", "", NULL, NULL, NULL, "again"), SQLITE_OK);
    assert_int_equal(tdb_int(t->db, "SELECT max(seq) FROM task_log"), 1);
    assert_int_equal(db_report_finish(t->db, rid, "SUCCESS", NULL, NULL, 4000), SQLITE_OK);
    assert_int_equal(db_report_get(t->db, rid, &r), SQLITE_OK);
    assert_string_equal(r.variables_json, "{}"); /* NULL keeps */
    db_report_free(&r);

    /* errors */
    assert_int_equal(db_report_start(t->db, task, d, "other", 1, &rid2), SQLITE_MISUSE);
    assert_int_equal(db_report_start(t->db, 987654, d, "bootstrap", 1, &rid2), SQLITE_NOTFOUND);
    assert_int_equal(db_report_log(t->db, 987654, 1, "info", "", NULL, NULL, NULL, "x"), SQLITE_NOTFOUND);
    assert_int_equal(db_report_finish(t->db, 987654, "ERROR", NULL, NULL, 1), SQLITE_NOTFOUND);
    assert_int_equal(db_report_get(t->db, 987654, &r), SQLITE_NOTFOUND);

    /* the device's reports; deleting the device takes them */
    db_report_t *list = NULL;
    int64_t total = 0;
    assert_int_equal(db_device_reports(t->db, d, 10, 0, &list, &n, &total), SQLITE_OK);
    assert_int_equal(total, 1);
    assert_int_equal(list[0].id, rid);
    db_report_list_free(&list, n);
    assert_int_equal(db_device_delete(t->db, d), SQLITE_OK);
    assert_int_equal(tdb_int(t->db, "SELECT count(*) FROM task_reports"), 0);
    assert_int_equal(tdb_int(t->db, "SELECT count(*) FROM task_log"), 0);
}

/* Lines keep increasing seqs when the seq db_report_log remembers is stale:
 * after a rolled-back restart of the run (its log clear undone), and a
 * report deleted by another connection gives SQLITE_NOTFOUND, as before. */
static void test_log_seq_remembered(void **state)
{
    tdb_t *t = *state;
    int64_t g = mk_group(t->db, "g", 0), d = mk_device(t->db, "ep"), task = mk_task(t->db, g, false);
    int64_t rid = 0, again = 0;
    assert_int_equal(db_report_start(t->db, task, d, "bootstrap", 1000, &rid), SQLITE_OK);
    assert_int_equal(db_report_log(t->db, rid, 1001, "info", "", NULL, NULL, NULL, "one"), SQLITE_OK);
    assert_int_equal(db_report_log(t->db, rid, 1002, "info", "", NULL, NULL, NULL, "two"), SQLITE_OK);
    assert_int_equal(db_begin(t->db), SQLITE_OK);
    assert_int_equal(db_report_start(t->db, task, d, "bootstrap", 2000, &again), SQLITE_OK);
    assert_int_equal(again, rid);
    assert_int_equal(db_rollback(t->db), SQLITE_OK);
    assert_int_equal(db_report_log(t->db, rid, 1003, "info", "", NULL, NULL, NULL, "three"), SQLITE_OK);
    assert_int_equal(tdb_int(t->db, "SELECT count(*) FROM task_log"), 3);
    assert_int_equal(tdb_int(t->db, "SELECT group_concat(seq) = '1,2,3' FROM (SELECT seq FROM task_log ORDER BY seq)"), 1);
    assert_int_equal(tdb_int(t->db, "SELECT message = 'three' FROM task_log WHERE seq = 3"), 1);
    /* gone behind the loop's back (the REST API deletes the task) */
    db_t *other = NULL;
    char err[256];
    assert_int_equal(db_open(t->path, t->key, &other, err, sizeof err), SQLITE_OK);
    tdb_exec(other, "DELETE FROM tasks");
    db_close(&other);
    assert_int_equal(db_report_log(t->db, rid, 1004, "info", "", NULL, NULL, NULL, "four"), SQLITE_NOTFOUND);
    assert_int_equal(tdb_int(t->db, "SELECT count(*) FROM task_log"), 0);
}

static void test_task_reports_counts(void **state)
{
    tdb_t *t = *state;
    int64_t top = mk_group(t->db, "top", 0), sub = mk_group(t->db, "sub", top);
    int64_t d1 = mk_device(t->db, "d1"), d2 = mk_device(t->db, "d2"), d3 = mk_device(t->db, "d3");
    int64_t gone = mk_device(t->db, "gone");
    db_group_join(t->db, top, d1);
    db_group_join(t->db, top, d2);
    db_group_join(t->db, sub, d3);
    int64_t task = mk_task(t->db, top, false);
    db_report_t *list = NULL;
    size_t n = 0;
    int64_t total = 0, counts[DB_REPORT_STATUS_COUNT];
    assert_int_equal(db_task_reports(t->db, task, NULL, 0, 0, &list, &n, &total, counts), SQLITE_OK);
    assert_int_equal(total, 2);
    assert_int_equal(counts[0], 2);
    assert_int_equal(counts[1] + counts[2] + counts[3] + counts[4], 0);
    assert_int_equal(list[0].id, 0);
    assert_int_equal(list[0].device_id, d1);
    assert_string_equal(list[0].status, "NOT_STARTED");
    db_report_list_free(&list, n);

    int64_t r1, r2;
    assert_int_equal(db_report_start(t->db, task, d1, "bootstrap", 10, &r1), SQLITE_OK);
    assert_int_equal(db_report_finish(t->db, r1, "ERROR", "timeout", NULL, 20), SQLITE_OK);
    /* a device that left the group keeps its report */
    assert_int_equal(db_report_start(t->db, task, gone, "management", 10, &r2), SQLITE_OK);
    assert_int_equal(db_task_reports(t->db, task, NULL, 0, 0, &list, &n, &total, counts), SQLITE_OK);
    assert_int_equal(total, 3);
    assert_int_equal(counts[0], 1); /* d2 */
    assert_int_equal(counts[1], 1); /* gone */
    assert_int_equal(counts[4], 1); /* d1 */
    db_report_list_free(&list, n);
    assert_int_equal(db_task_reports(t->db, task, "ERROR", 10, 0, &list, &n, &total, NULL), SQLITE_OK);
    assert_int_equal(total, 1);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].summary, "timeout");
    db_report_list_free(&list, n);

    /* applies to subgroups: d3 counts too */
    int64_t task2 = mk_task(t->db, top, true);
    assert_int_equal(db_task_reports(t->db, task2, NULL, 1, 2, &list, &n, &total, counts), SQLITE_OK);
    assert_int_equal(total, 3);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].device_id, d3);
    db_report_list_free(&list, n);
}

static void test_mark_interrupted(void **state)
{
    tdb_t *t = *state;
    int64_t g = mk_group(t->db, "g", 0), task = mk_task(t->db, g, false);
    int64_t d1 = mk_device(t->db, "d1"), d2 = mk_device(t->db, "d2");
    int64_t r1, r2;
    db_report_start(t->db, task, d1, "bootstrap", 10, &r1);
    db_report_log(t->db, r1, 11, "info", "cleanse line 2", NULL, NULL, NULL, "started");
    db_report_start(t->db, task, d2, "bootstrap", 10, &r2);
    db_report_finish(t->db, r2, "SUCCESS", NULL, NULL, 12);
    int count = -1;
    assert_int_equal(db_reports_mark_interrupted(t->db, 99, &count), SQLITE_OK);
    assert_int_equal(count, 1);
    db_report_t r;
    assert_int_equal(db_report_get(t->db, r1, &r), SQLITE_OK);
    assert_string_equal(r.status, "IN_PROGRESS"); /* restarted in the device's next session */
    assert_int_equal(r.updated_at, 99);
    db_report_free(&r);
    db_report_line_t *lines = NULL;
    size_t n = 0;
    assert_int_equal(db_report_lines(t->db, r1, &lines, &n), SQLITE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(lines[1].seq, 2);
    assert_int_equal(lines[1].at, 99);
    assert_string_equal(lines[1].level, "warning");
    assert_string_equal(lines[1].message, "interrupted by a server restart");
    db_report_lines_free(&lines, n);
    assert_int_equal(db_report_lines(t->db, r2, &lines, &n), SQLITE_OK);
    assert_int_equal(n, 0);
    db_report_lines_free(&lines, n);
    /* the candidates show it IN_PROGRESS */
    db_group_join(t->db, g, d1);
    db_task_candidate_t *c = NULL;
    assert_int_equal(db_device_task_candidates(t->db, d1, &c, &n), SQLITE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(c[0].status, "IN_PROGRESS");
    db_task_candidates_free(&c, n);
    assert_int_equal(db_reports_mark_interrupted(t->db, 100, NULL), SQLITE_OK);
    assert_int_equal(tdb_int(t->db, "SELECT count(*) FROM task_log WHERE message LIKE 'interrupted%'"), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lifecycle, tdb_setup, tdb_teardown),
        cmocka_unit_test_setup_teardown(test_log_seq_remembered, tdb_setup, tdb_teardown),
        cmocka_unit_test_setup_teardown(test_task_reports_counts, tdb_setup, tdb_teardown),
        cmocka_unit_test_setup_teardown(test_mark_interrupted, tdb_setup, tdb_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
