/* Scheduler rules (TASKS.md "When a task runs"): whether a task that applies
 * to a device runs in the session that is starting. Pure: the caller gives
 * the task's settings, the device's last report for it, the session kind, the
 * time and whether the task's condition holds.
 *
 * Sessions: SCHED_BOOTSTRAP for a Bootstrap-Request; SCHED_REGISTER for a
 * Register (a new registration); SCHED_UPDATE for an Update or a queue-mode
 * wake-up of a registered device. REGISTER and UPDATE are management sessions
 * (TR_SESSION_MANAGEMENT for the runner).
 *
 * Order of the rules:
 *   1. outside notBefore/notAfter                       -> SKIP_WINDOW
 *   2. IN_PROGRESS: resumes in the next session where it fits, whatever
 *      once/repeat, the minimum interval and the condition say (the
 *      condition decides whether a run starts, not whether a started run
 *      goes on)                                         -> RUN / SKIP_SESSION
 *   3. finished (SUCCESS, WARNING, ERROR): again only when restarted --
 *      Once: never; Once and repeat: Automatic restart (each new session,
 *      bootstrap or management), Repeat on bootstrap (each SCHED_BOOTSTRAP),
 *      Repeat on register (each SCHED_REGISTER, not an Update) -> SKIP_DONE;
 *      then minIntervalSeconds since the last start      -> SKIP_INTERVAL
 *   4. the program does not fit this kind of session    -> SKIP_SESSION
 *   5. condition false                                   -> SKIP_CONDITION
 *   6. otherwise                                         -> RUN */
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
    SCHED_SKIP_SESSION,        /* the task (or what is left of its run) needs the other kind of session */
} sched_decision_t;

/* `last_start_ms` is when the last run started (0 if none). The program is
 * taken to fit the session (see sched_decide_in). For IN_PROGRESS,
 * condition_holds is not read. */
sched_decision_t sched_decide(const sched_task_t *t, sched_report_t report, int64_t last_start_ms,
                              sched_session_t session, int64_t now_ms, bool condition_holds);
/* The same with `fits`: whether the program can run in this kind of
 * session -- task_resume_runs_in(prog, report_vars, kind) for an IN_PROGRESS
 * report, task_runs_in(prog, kind) otherwise (runner.h, task.h). A host that
 * evaluates the condition only when the answer is SCHED_RUN passes true and
 * evaluates it then, except for IN_PROGRESS reports. */
sched_decision_t sched_decide_in(const sched_task_t *t, sched_report_t report, int64_t last_start_ms,
                                 sched_session_t session, int64_t now_ms, bool fits, bool condition_holds);
const char *sched_decision_name(sched_decision_t d);
sched_report_t sched_report_parse(const char *status); /* "SUCCESS" ... ; NULL/"NOT_STARTED" -> NONE */

#endif
