/* Scheduler rules (TASKS.md "When a task runs"): whether a task that applies
 * to a device runs in the session that is starting. Pure: the caller gives
 * the task's settings, the device's last report for it, the session kind, the
 * time and whether the task's condition holds. */
#ifndef LWDM_TASKS_SCHEDULER_H
#define LWDM_TASKS_SCHEDULER_H
#include <stdbool.h>
#include <stdint.h>

typedef enum { SCHED_BOOTSTRAP = 0, SCHED_REGISTER, SCHED_UPDATE } sched_session_t;

typedef enum {
    SCHED_REPORT_NONE = 0,     /* never ran for this device (NOT_STARTED) */
    SCHED_REPORT_IN_PROGRESS,  /* waiting, deferred, or interrupted by a restart */
    SCHED_REPORT_SUCCESS,
    SCHED_REPORT_WARNING,
    SCHED_REPORT_ERROR,
} sched_report_t;

typedef struct {
    bool once;                 /* execution "once" (else "onceAndRepeat") */
    bool automatic_restart;
    bool repeat_on_bootstrap;
    bool repeat_on_register;
    int64_t min_interval_s;    /* 0 = none */
    int64_t not_before_ms;     /* 0 = none */
    int64_t not_after_ms;      /* 0 = none */
} sched_task_t;

typedef enum {
    SCHED_RUN = 0,
    SCHED_SKIP_DONE,           /* finished and nothing restarts it */
    SCHED_SKIP_WINDOW,         /* outside notBefore/notAfter */
    SCHED_SKIP_INTERVAL,       /* within minIntervalSeconds of the last run */
    SCHED_SKIP_CONDITION,      /* condition is false */
} sched_decision_t;

/* `last_start_ms` is when the last run started (0 if none). */
sched_decision_t sched_decide(const sched_task_t *t, sched_report_t report, int64_t last_start_ms,
                              sched_session_t session, int64_t now_ms, bool condition_holds);
const char *sched_decision_name(sched_decision_t d);
sched_report_t sched_report_parse(const char *status); /* "SUCCESS" ... ; NULL/"NOT_STARTED" -> NONE */

#endif
