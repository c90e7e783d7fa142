/* Task programs shared by the sessions that run them (bootstrap and
 * management), and the context names task expressions read (TASKS.md
 * "Expressions"). Loop thread only. */
#include "server/task_cache.h"

#include <stdlib.h>
#include <string.h>

#include "server/common/log.h"

void task_cache_release(task_cache_t *tc, task_prog_t *pe)
{
    if (!pe || --pe->refs > 0 || !pe->stale)
        return;
    for (task_prog_t **pp = &tc->head; *pp; pp = &(*pp)->next)
        if (*pp == pe) {
            *pp = pe->next;
            break;
        }
    task_program_free(&pe->prog);
    expr_free(&pe->cond);
    free(pe);
}

/* The parsed program of a task (a reference the caller releases), or NULL
 * with err when its configuration no longer parses. */
task_prog_t *task_cache_get(task_cache_t *tc, const db_task_t *t, char *err, size_t errlen)
{
    for (task_prog_t *pe = tc->head; pe; pe = pe->next) {
        if (pe->task_id != t->id || pe->stale)
            continue;
        if (pe->updated_at == t->updated_at) {
            pe->refs++;
            return pe;
        }
        pe->stale = true; /* freed when its last session ends */
        pe->refs++;
        task_cache_release(tc, pe);
        break;
    }
    task_error_t e;
    task_program_t *prog = NULL;
    if (task_parse(t->config_xml, strlen(t->config_xml), tc->registry, &prog, &e) != 0) {
        snprintf(err, errlen, "%s", e.msg);
        return NULL;
    }
    expr_t *cond = NULL;
    expr_error_t ce;
    if (t->condition && t->condition[0] && expr_compile(t->condition, &cond, &ce) != 0) {
        task_program_free(&prog);
        snprintf(err, errlen, "condition: %s", ce.msg);
        return NULL;
    }
    task_prog_t *pe = calloc(1, sizeof *pe);
    if (!pe) {
        task_program_free(&prog);
        expr_free(&cond);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    *pe = (task_prog_t){t->id, t->updated_at, prog, cond, 1, false, tc->head};
    tc->head = pe;
    return pe;
}

/* Context names of task expressions (TASKS.md "Expressions"): device.*,
 * sv.* (setting values inherited through the groups), task.*, lwm2m.*.
 * Used for conditions and, through io_lookup, by running tasks. */


static json_t *setting_values(const task_ctx_t *c)
{
    if (!*c->sv_loaded) {
        char *text = NULL;
        *c->sv_loaded = true;
        if (db_device_setting_values(c->db, c->dev->id, &text) == 0 && text)
            *c->sv = json_loads(text, 0, NULL);
        free(text);
    }
    return *c->sv;
}

int task_ctx_lookup(void *vctx, const char *name, expr_value_t *out)
{
    const task_ctx_t *c = vctx;
    const char *v = NULL;
    if (!strcmp(name, "device.endpoint"))
        v = c->dev->endpoint;
    else if (!strcmp(name, "device.domain"))
        v = c->dev->domain;
    else if (!strcmp(name, "task.name"))
        v = c->task ? c->task->name : NULL;
    else if (!strcmp(name, "lwm2m.bootstrapEvent"))
        v = c->bootstrap ? "true" : "false";
    else if (!strcmp(name, "lwm2m.registerEvent"))
        v = c->register_event ? "true" : "false";
    else if (!strcmp(name, "device.id") || (!strcmp(name, "task.id") && c->task)) {
        out->type = EXPR_INT;
        out->i = !strcmp(name, "device.id") ? c->dev->id : c->task->id;
        return 1;
    } else if (!strncmp(name, "sv.", 3)) {
        json_t *x = json_object_get(setting_values(c), name + 3);
        if (json_is_string(x))
            return expr_value_set_string(out, json_string_value(x), json_string_length(x)) == 0 ? 1 : -1;
        return 0;
    } else if (!strncmp(name, "device.property.", 16) && c->dev->properties_json) {
        json_t *props = json_loads(c->dev->properties_json, 0, NULL);
        json_t *x = json_object_get(props, name + 16);
        int rc = json_is_string(x) ? (expr_value_set_string(out, json_string_value(x), json_string_length(x)) == 0 ? 1 : -1) : 0;
        json_decref(props);
        return rc;
    }
    if (!v)
        return 0;
    return expr_value_set_string(out, v, strlen(v)) == 0 ? 1 : -1;
}

/* The task's condition (compiled with its program) holds for the device. */
bool task_condition_holds(const task_prog_t *pe, task_ctx_t *c)
{
    if (!pe->cond)
        return true;
    expr_env_t env = {task_ctx_lookup, c};
    expr_error_t err;
    expr_value_t v = {0};
    bool ok = false;
    if (expr_eval_value(pe->cond, &env, &v, &err) == 0) {
        switch (v.type) {
        case EXPR_BOOL: ok = v.b; break;
        case EXPR_INT: ok = v.i != 0; break;
        case EXPR_FLOAT: ok = v.f != 0; break;
        case EXPR_STRING: ok = v.len > 0 && strcmp(v.s, "false") != 0; break;
        default: ok = false;
        }
    } else {
        LOGW("tasks", "ep=%s task_id=%lld event=condition-error reason=\"%s\"", c->dev->endpoint,
             (long long)(c->task ? c->task->id : 0),
             err.msg);
    }
    expr_value_free(&v);
    return ok;
}


void task_cache_clear(task_cache_t *tc)
{
    while (tc->head) {
        task_prog_t *pe = tc->head;
        tc->head = pe->next;
        task_program_free(&pe->prog);
        expr_free(&pe->cond);
        free(pe);
    }
}

sched_task_t task_sched_settings(const db_task_t *t)
{
    return (sched_task_t){.once = t->execution == DB_TASK_ONCE,
                          .automatic_restart = t->automatic_restart,
                          .repeat_on_bootstrap = t->repeat_on_bootstrap,
                          .repeat_on_register = t->repeat_on_register,
                          .min_interval_s = t->min_interval_s,
                          .not_before_ms = t->not_before,
                          .not_after_ms = t->not_after};
}
