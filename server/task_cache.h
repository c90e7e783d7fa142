/* Parsed task programs shared by the sessions that run them, and the
 * context of task expressions (device.*, sv.*, task.*, lwm2m.*): used by the
 * bootstrap and the registration interfaces. Loop thread only. */
#ifndef LWDM_TASK_CACHE_H
#define LWDM_TASK_CACHE_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"
#include "server/tasks/expr.h"
#include "server/tasks/scheduler.h"
#include "server/tasks/task.h"

/* A program is reparsed when its task changes (updated_at), and freed once
 * no session uses it. */
typedef struct task_prog {
    int64_t task_id, updated_at;
    task_program_t *prog;
    expr_t *cond;                /* the task's condition, compiled; NULL = none */
    int refs;
    bool stale;
    struct task_prog *next;
} task_prog_t;

typedef struct {
    task_prog_t *head;
    const struct lwm2m_registry *registry;
} task_cache_t;

/* The parsed program of a task (a reference the caller releases), or NULL
 * with err when its configuration no longer parses. */
task_prog_t *task_cache_get(task_cache_t *tc, const db_task_t *t, char *err, size_t errlen);
void task_cache_release(task_cache_t *tc, task_prog_t *pe);
void task_cache_clear(task_cache_t *tc);

/* What expressions of a device's task see. */
typedef struct {
    db_t *db;
    const db_device_t *dev;
    json_t **sv;                 /* the setting values, loaded on first use ... */
    bool *sv_loaded;             /* ... (most tasks never read sv.*) */
    const db_task_t *task;       /* may be NULL */
    bool bootstrap;              /* lwm2m.bootstrapEvent */
    bool register_event;         /* lwm2m.registerEvent */
} task_ctx_t;
/* expr_lookup_fn over a task_ctx_t */
int task_ctx_lookup(void *ctx, const char *name, expr_value_t *out);
/* The task's condition (compiled with its program) holds for the device. */
bool task_condition_holds(const task_prog_t *pe, task_ctx_t *c);

/* The scheduler's view of a task's execution settings. */
sched_task_t task_sched_settings(const db_task_t *t);

#endif
