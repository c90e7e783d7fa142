/* The scheduler's rules as a table: task settings x last report x session. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "server/tasks/scheduler.h"

#define NOW 1000000000LL
#define ONCE {.once = true}
#define AUTO {.automatic_restart = true}
#define REPEAT_BS {.repeat_on_bootstrap = true}
#define REPEAT_REG {.repeat_on_register = true}
#define PLAIN_REPEAT {0}

static const struct {
    const char *name;
    sched_task_t t;
    sched_report_t rep;
    int64_t last_start;
    sched_session_t session;
    bool cond;
    sched_decision_t want;
} cases[] = {
    {"once, never ran", ONCE, SCHED_REPORT_NONE, 0, SCHED_BOOTSTRAP, true, SCHED_RUN},
    {"once, done", ONCE, SCHED_REPORT_SUCCESS, NOW - 1, SCHED_BOOTSTRAP, true, SCHED_SKIP_DONE},
    {"once, failed: not retried", ONCE, SCHED_REPORT_ERROR, NOW - 1, SCHED_BOOTSTRAP, true, SCHED_SKIP_DONE},
    {"once, in progress resumes", ONCE, SCHED_REPORT_IN_PROGRESS, NOW - 1, SCHED_REGISTER, true, SCHED_RUN},
    {"once, condition false", ONCE, SCHED_REPORT_NONE, 0, SCHED_BOOTSTRAP, false, SCHED_SKIP_CONDITION},
    {"repeat, no restart option, done", PLAIN_REPEAT, SCHED_REPORT_SUCCESS, NOW - 1, SCHED_BOOTSTRAP, true,
     SCHED_SKIP_DONE},
    {"automatic restart, done, bootstrap", AUTO, SCHED_REPORT_SUCCESS, NOW - 1, SCHED_BOOTSTRAP, true, SCHED_RUN},
    {"automatic restart, done, update", AUTO, SCHED_REPORT_WARNING, NOW - 1, SCHED_UPDATE, true, SCHED_RUN},
    {"automatic restart retries an error", AUTO, SCHED_REPORT_ERROR, NOW - 1, SCHED_BOOTSTRAP, true, SCHED_RUN},
    {"repeat on bootstrap, bootstrap", REPEAT_BS, SCHED_REPORT_SUCCESS, NOW - 1, SCHED_BOOTSTRAP, true, SCHED_RUN},
    {"repeat on bootstrap, register", REPEAT_BS, SCHED_REPORT_SUCCESS, NOW - 1, SCHED_REGISTER, true,
     SCHED_SKIP_DONE},
    {"repeat on register, register", REPEAT_REG, SCHED_REPORT_SUCCESS, NOW - 1, SCHED_REGISTER, true, SCHED_RUN},
    {"repeat on register, update", REPEAT_REG, SCHED_REPORT_SUCCESS, NOW - 1, SCHED_UPDATE, true, SCHED_SKIP_DONE},
    {"repeat on register, bootstrap", REPEAT_REG, SCHED_REPORT_SUCCESS, NOW - 1, SCHED_BOOTSTRAP, true,
     SCHED_SKIP_DONE},
    {"min interval not over", {.automatic_restart = true, .min_interval_s = 60}, SCHED_REPORT_SUCCESS, NOW - 59999,
     SCHED_BOOTSTRAP, true, SCHED_SKIP_INTERVAL},
    {"min interval over", {.automatic_restart = true, .min_interval_s = 60}, SCHED_REPORT_SUCCESS, NOW - 60000,
     SCHED_BOOTSTRAP, true, SCHED_RUN},
    {"min interval does not hold back a first run", {.automatic_restart = true, .min_interval_s = 60},
     SCHED_REPORT_NONE, 0, SCHED_BOOTSTRAP, true, SCHED_RUN},
    {"before the window", {.not_before_ms = NOW + 1}, SCHED_REPORT_NONE, 0, SCHED_BOOTSTRAP, true, SCHED_SKIP_WINDOW},
    {"after the window", {.not_after_ms = NOW - 1}, SCHED_REPORT_NONE, 0, SCHED_BOOTSTRAP, true, SCHED_SKIP_WINDOW},
    {"inside the window", {.not_before_ms = NOW - 1, .not_after_ms = NOW + 1}, SCHED_REPORT_NONE, 0, SCHED_BOOTSTRAP,
     true, SCHED_RUN},
    {"window checked before condition", {.not_after_ms = NOW - 1}, SCHED_REPORT_NONE, 0, SCHED_BOOTSTRAP, false,
     SCHED_SKIP_WINDOW},
    /* a run in progress resumes in the next session, whatever the settings */
    {"once, in progress, update", ONCE, SCHED_REPORT_IN_PROGRESS, NOW - 1, SCHED_UPDATE, true, SCHED_RUN},
    {"once, in progress, bootstrap", ONCE, SCHED_REPORT_IN_PROGRESS, NOW - 1, SCHED_BOOTSTRAP, true, SCHED_RUN},
    {"repeat on register, in progress, update", REPEAT_REG, SCHED_REPORT_IN_PROGRESS, NOW - 1, SCHED_UPDATE, true,
     SCHED_RUN},
    {"repeat on bootstrap, in progress, register", REPEAT_BS, SCHED_REPORT_IN_PROGRESS, NOW - 1, SCHED_REGISTER, true,
     SCHED_RUN},
    {"plain repeat, in progress", PLAIN_REPEAT, SCHED_REPORT_IN_PROGRESS, NOW - 1, SCHED_UPDATE, true, SCHED_RUN},
    {"in progress: the condition does not stop a started run", ONCE, SCHED_REPORT_IN_PROGRESS, NOW - 1, SCHED_UPDATE,
     false, SCHED_RUN},
    {"in progress: no minimum interval", {.automatic_restart = true, .min_interval_s = 60}, SCHED_REPORT_IN_PROGRESS,
     NOW - 1, SCHED_UPDATE, true, SCHED_RUN},
    {"in progress: the window still holds", {.not_after_ms = NOW - 1}, SCHED_REPORT_IN_PROGRESS, NOW - 1,
     SCHED_UPDATE, true, SCHED_SKIP_WINDOW},
    /* management sessions: register vs update */
    {"automatic restart, done, register", AUTO, SCHED_REPORT_SUCCESS, NOW - 1, SCHED_REGISTER, true, SCHED_RUN},
    {"repeat on bootstrap, update", REPEAT_BS, SCHED_REPORT_ERROR, NOW - 1, SCHED_UPDATE, true, SCHED_SKIP_DONE},
    {"once, never ran, register", ONCE, SCHED_REPORT_NONE, 0, SCHED_REGISTER, true, SCHED_RUN},
};

/* sched_decide_in: whether the program (or what is left of its run) fits
 * the session. */
static const struct {
    const char *name;
    sched_task_t t;
    sched_report_t rep;
    sched_session_t session;
    bool fits, cond;
    sched_decision_t want;
} fit_cases[] = {
    {"fits, never ran", AUTO, SCHED_REPORT_NONE, SCHED_REGISTER, true, true, SCHED_RUN},
    {"bootstrap task on a management session", AUTO, SCHED_REPORT_NONE, SCHED_REGISTER, false, true,
     SCHED_SKIP_SESSION},
    {"bootstrap task restarted on an update", AUTO, SCHED_REPORT_SUCCESS, SCHED_UPDATE, false, true,
     SCHED_SKIP_SESSION},
    {"held run: deferred operations, bootstrap session", ONCE, SCHED_REPORT_IN_PROGRESS, SCHED_BOOTSTRAP, false, true,
     SCHED_SKIP_SESSION},
    {"held run resumes where it fits", ONCE, SCHED_REPORT_IN_PROGRESS, SCHED_UPDATE, true, false, SCHED_RUN},
    {"done beats session", ONCE, SCHED_REPORT_SUCCESS, SCHED_UPDATE, false, true, SCHED_SKIP_DONE},
    {"session before condition", AUTO, SCHED_REPORT_NONE, SCHED_BOOTSTRAP, false, false, SCHED_SKIP_SESSION},
    {"condition when it fits", AUTO, SCHED_REPORT_NONE, SCHED_BOOTSTRAP, true, false, SCHED_SKIP_CONDITION},
};

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sched_decision_t d = sched_decide(&cases[i].t, cases[i].rep, cases[i].last_start, cases[i].session, NOW,
                                          cases[i].cond);
        if (d != cases[i].want)
            fail_msg("%s: got '%s', want '%s'", cases[i].name, sched_decision_name(d), sched_decision_name(cases[i].want));
    }
}

static void test_fit_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof fit_cases / sizeof fit_cases[0]; i++) {
        sched_decision_t d = sched_decide_in(&fit_cases[i].t, fit_cases[i].rep, NOW - 1, fit_cases[i].session, NOW,
                                             fit_cases[i].fits, fit_cases[i].cond);
        if (d != fit_cases[i].want)
            fail_msg("%s: got '%s', want '%s'", fit_cases[i].name, sched_decision_name(d),
                     sched_decision_name(fit_cases[i].want));
    }
    assert_string_equal(sched_decision_name(SCHED_SKIP_SESSION), "needs another kind of session");
}

static void test_report_parse(void **state)
{
    (void)state;
    assert_int_equal(sched_report_parse(NULL), SCHED_REPORT_NONE);
    assert_int_equal(sched_report_parse("NOT_STARTED"), SCHED_REPORT_NONE);
    assert_int_equal(sched_report_parse("IN_PROGRESS"), SCHED_REPORT_IN_PROGRESS);
    assert_int_equal(sched_report_parse("SUCCESS"), SCHED_REPORT_SUCCESS);
    assert_int_equal(sched_report_parse("WARNING"), SCHED_REPORT_WARNING);
    assert_int_equal(sched_report_parse("ERROR"), SCHED_REPORT_ERROR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_table), cmocka_unit_test(test_fit_table),
                                       cmocka_unit_test(test_report_parse)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
