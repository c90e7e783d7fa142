#include "server/tasks/scheduler.h"

#include <string.h>

sched_decision_t sched_decide_in(const sched_task_t *t, sched_report_t report, int64_t last_start_ms,
                                 sched_session_t session, int64_t now_ms, bool fits, bool condition_holds)
{
    if ((t->not_before_ms && now_ms < t->not_before_ms) || (t->not_after_ms && now_ms > t->not_after_ms))
        return SCHED_SKIP_WINDOW;
    /* a run in progress (waiting, deferred, interrupted) goes on in the next
     * session where it fits, whatever the settings and the condition */
    if (report == SCHED_REPORT_IN_PROGRESS)
        return fits ? SCHED_RUN : SCHED_SKIP_SESSION;
    bool finished = report == SCHED_REPORT_SUCCESS || report == SCHED_REPORT_WARNING || report == SCHED_REPORT_ERROR;
    if (finished) {
        /* Once: one session per device, then done. Once and repeat: again on
         * each new session (automatic restart; also the recovery path for a
         * failed run), on each bootstrap request, or on each registration. */
        bool again = !t->once && (t->automatic_restart || (t->repeat_on_bootstrap && session == SCHED_BOOTSTRAP) ||
                                  (t->repeat_on_register && session == SCHED_REGISTER));
        if (!again)
            return SCHED_SKIP_DONE;
        if (t->min_interval_s > 0 && last_start_ms > 0 && now_ms - last_start_ms < t->min_interval_s * 1000)
            return SCHED_SKIP_INTERVAL;
    }
    if (!fits)
        return SCHED_SKIP_SESSION;
    if (!condition_holds)
        return SCHED_SKIP_CONDITION;
    return SCHED_RUN;
}

sched_decision_t sched_decide(const sched_task_t *t, sched_report_t report, int64_t last_start_ms,
                              sched_session_t session, int64_t now_ms, bool condition_holds)
{
    return sched_decide_in(t, report, last_start_ms, session, now_ms, true, condition_holds);
}

const char *sched_decision_name(sched_decision_t d)
{
    static const char *const n[] = {"run", "done", "outside its schedule window", "within its minimum interval",
                                    "condition is false", "needs another kind of session"};
    return (unsigned)d < sizeof n / sizeof n[0] ? n[d] : "?";
}

sched_report_t sched_report_parse(const char *s)
{
    if (!s || !strcmp(s, "NOT_STARTED"))
        return SCHED_REPORT_NONE;
    if (!strcmp(s, "IN_PROGRESS"))
        return SCHED_REPORT_IN_PROGRESS;
    if (!strcmp(s, "SUCCESS"))
        return SCHED_REPORT_SUCCESS;
    if (!strcmp(s, "WARNING"))
        return SCHED_REPORT_WARNING;
    return SCHED_REPORT_ERROR;
}
