/* libFuzzer target for task configurations (server/tasks/task.c): the input
 * is parsed as a task against the built-in object definitions, as is and
 * wrapped in <config>...</config> (so mutations of step lists need not keep a
 * root to get past it).
 *
 * Checks beyond "no crash, no leak": a refusal leaves no program and says
 * why; an accepted program keeps the shape task.h promises (kinds where they
 * may stand, lines, compiled templates exactly where "${" is, key paths of the
 * right length, literal values valid for their type, the limits, and the
 * server references and operation flags agreeing with the steps). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/lwm2m/registry.h"
#include "server/tasks/task.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_task_xml: invariant broken: %s\n", what);
        abort();
    }
}

static const lwm2m_registry_t *builtin(void)
{
    static lwm2m_registry_t *reg;
    if (!reg) {
        char err[256];
        reg = lwm2m_registry_new();
        check(reg && lwm2m_registry_add_builtin(reg, err, sizeof err) == 0, "built-in objects load");
    }
    return reg;
}

typedef struct {
    size_t steps;
    bool bs_ops, mgmt_ops;
} tally_t;

static bool is_top_kind(task_kind_t k)
{
    return k != TASK_BS_WRITE && k != TASK_BS_DELETE && k != TASK_REST_HEADER && k != TASK_REST_OUT;
}

static void key_bounds(task_kind_t k, int *lo, int *hi)
{
    switch (k) {
    case TASK_SET:
    case TASK_BS_WRITE: *lo = 3, *hi = 4; break;
    case TASK_EXECUTE: *lo = 3, *hi = 3; break;
    case TASK_GET:
    case TASK_OBSERVE:
    case TASK_SET_ATTRIBUTES:
    case TASK_CREATE: *lo = 1, *hi = 4; break;
    case TASK_DELETE: *lo = 1, *hi = 2; break;
    case TASK_BS_DELETE: *lo = 0, *hi = 2; break;
    default: *lo = 1, *hi = 0; break; /* no key */
    }
}

static void walk(const task_step_t *s, size_t n, task_kind_t parent, int depth, tally_t *t)
{
    check(depth <= TASK_MAX_DEPTH, "depth");
    check(n == 0 || s != NULL, "step array");
    for (size_t i = 0; i < n; i++) {
        const task_step_t *x = &s[i];
        t->steps++;
        check((unsigned)x->kind < TASK_KIND_COUNT, "kind");
        check(x->line >= 1, "line");
        /* where it stands */
        switch (parent) {
        case TASK_BOOTSTRAP: check(x->kind == TASK_BS_WRITE || x->kind == TASK_BS_DELETE, "bootstrap child"); break;
        case TASK_CREATE: check(x->kind == TASK_BS_WRITE, "create child"); break;
        case TASK_REST: check(x->kind == TASK_REST_HEADER || x->kind == TASK_REST_OUT, "rest child"); break;
        default: check(is_top_kind(x->kind), "step kind"); break;
        }
        bool container = x->kind == TASK_BOOTSTRAP || x->kind == TASK_CREATE || x->kind == TASK_REST ||
                         x->kind == TASK_IF;
        check(container || x->nchildren == 0, "children only in containers");
        check(x->kind == TASK_IF || x->nelse == 0, "else only in if");
        t->bs_ops |= x->kind == TASK_CLEANSE || x->kind == TASK_CONFIGURATION || x->kind == TASK_BOOTSTRAP;
        t->mgmt_ops |= x->kind == TASK_DELETE || x->kind == TASK_CREATE || x->kind == TASK_OBSERVE ||
                       x->kind == TASK_SET_ATTRIBUTES;
        /* attributes */
        check(x->nattrs == 0 || x->attrs != NULL, "attr array");
        check(x->kind != TASK_COMMENT || x->nattrs == 0, "comment keeps nothing");
        for (size_t a = 0; a < x->nattrs; a++) {
            const task_attr_t *at = &x->attrs[a];
            check(at->name && at->raw, "attr strings");
            check((at->expr != NULL) == expr_has_parts(at->raw), "template compiled iff it has ${");
            check(at->line == x->line, "attr line");
            check(task_step_attr(x, at->name) == at, "attr names unique");
        }
        /* key */
        const task_attr_t *key = task_step_attr(x, "key");
        int lo, hi;
        key_bounds(x->kind, &lo, &hi);
        if (x->key_resolved) {
            check(key && !key->expr, "resolved key is a literal");
            check(x->key_path.len >= lo && x->key_path.len <= hi, "key path length");
        } else {
            check(x->key_type == -1, "unresolved key has no type");
            check(!key || key->expr || hi < lo, "literal keys are resolved");
        }
        check(x->key_type >= -1 && x->key_type <= LWM2M_T_CORELNK, "key type");
        check(x->key_type == -1 || x->key_path.len >= 3, "typed key names a resource");
        /* type and value */
        const task_attr_t *ty = task_step_attr(x, "type"), *val = task_step_attr(x, "value");
        if (x->kind == TASK_STORE) {
            check(x->type >= -1 && x->type <= 1, "store type");
            check(x->type == -1 || (ty && !ty->expr), "store type from a literal");
        } else if (x->kind == TASK_SET || x->kind == TASK_BS_WRITE || x->kind == TASK_CREATE) {
            check(x->type >= -1 && x->type <= LWM2M_T_CORELNK, "value type");
            check((x->type >= 0) == (ty && !ty->expr), "type set iff literal type");
            int eff = ty ? x->type : x->key_type;
            if (val && !val->expr && eff >= 0) {
                char why[200];
                check(task_value_parse((lwm2m_type_t)eff, val->raw, strlen(val->raw), NULL, why, sizeof why) == 0,
                      "literal value valid for its type");
            }
            check(!x->key_resolved || x->key_type != LWM2M_T_NONE, "no writes to executables");
        } else {
            check(x->type == -1, "no type");
        }
        if (x->kind == TASK_EXECUTE && x->key_resolved)
            check(x->key_type == -1 || x->key_type == LWM2M_T_NONE, "execute of an executable");
        if (x->kind == TASK_CONFIGURATION)
            check((task_step_attr(x, "serverId") != NULL) != (task_step_attr(x, "serverName") != NULL),
                  "one server reference");
        walk(x->children, x->nchildren, x->kind, depth + 1, t);
        walk(x->else_children, x->nelse, x->kind, depth + 1, t);
    }
}

static void one(const char *xml, size_t len)
{
    task_program_t *p = (task_program_t *)1;
    task_error_t err;
    int rc = task_parse(xml, len, builtin(), &p, &err);
    check(memchr(err.msg, '\0', sizeof err.msg) != NULL, "message terminated");
    check(memchr(err.element, '\0', sizeof err.element) != NULL, "element terminated");
    check(memchr(err.attribute, '\0', sizeof err.attribute) != NULL, "attribute terminated");
    if (rc != 0) {
        check(rc == -1, "return code");
        check(p == NULL, "no program on failure");
        check(err.msg[0] != '\0', "failure has a message");
        check(err.line >= 0, "error line");
        return;
    }
    check(p != NULL, "program on success");
    check(err.msg[0] == '\0', "no message on success");
    tally_t t = {0, false, false};
    walk(p->steps, p->nsteps, TASK_KIND_COUNT, 0, &t);
    check(t.steps <= TASK_MAX_STEPS, "step limit");
    check(t.bs_ops == p->has_bootstrap_ops, "has_bootstrap_ops");
    check(t.mgmt_ops == p->has_management_ops, "has_management_ops");
    for (size_t i = 0; i < p->nserver_ids; i++) {
        check(p->server_ids[i] >= 1, "server id >= 1");
        for (size_t k = 0; k < i; k++)
            check(p->server_ids[k] != p->server_ids[i], "server ids unique");
    }
    for (size_t i = 0; i < p->nserver_names; i++) {
        check(p->server_names[i] && p->server_names[i][0], "server name");
        for (size_t k = 0; k < i; k++)
            check(strcmp(p->server_names[k], p->server_names[i]) != 0, "server names unique");
    }
    task_program_free(&p);
    check(p == NULL, "freed");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one((const char *)data, size);
    if (size <= TASK_MAX_XML - 32) {
        static const char head[] = "<config>", tail[] = "</config>";
        char *w = malloc(size + sizeof head + sizeof tail);
        if (!w)
            return 0;
        memcpy(w, head, sizeof head - 1);
        memcpy(w + sizeof head - 1, data, size);
        memcpy(w + sizeof head - 1 + size, tail, sizeof tail - 1);
        one(w, size + sizeof head - 1 + sizeof tail - 1);
        free(w);
    }
    return 0;
}
