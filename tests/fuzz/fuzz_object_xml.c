/* libFuzzer target for the object registry (server/lwm2m/registry.c): the
 * input is loaded as an OMA object XML document, and also resolved as a task
 * key against the built-in definitions (operator-written keys are outside
 * input too).
 *
 * Checks beyond "no crash, no leak": a failed load adds nothing; every object
 * that loads resolves by number to its own definitions; name lookups return
 * objects and resources whose names match. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/lwm2m/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_object_xml: invariant broken: %s\n", what);
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

static void exercise(const lwm2m_registry_t *reg)
{
    char key[96], err[256];
    for (size_t i = 0; i < lwm2m_registry_count(reg); i++) {
        const lwm2m_objdef_t *o = lwm2m_registry_object_at(reg, i);
        check(o && lwm2m_registry_object(reg, o->id) == o, "lookup by id");
        check(i == 0 || lwm2m_registry_object_at(reg, i - 1)->id < o->id, "sorted by id");
        const lwm2m_objdef_t *byname = lwm2m_registry_object_by_name(reg, o->name);
        check(byname != NULL, "lookup by own name");
        for (size_t k = 0; k < o->nres && k < 64; k++) {
            const lwm2m_resdef_t *r = &o->res[k];
            check(lwm2m_objdef_resource(o, r->id) == r, "resource by id");
            check(lwm2m_objdef_resource_by_name(o, r->name) != NULL, "resource by own name");
            check(lwm2m_registry_type(reg, o->id, r->id) == (int)r->type, "type lookup");
            lwm2m_path_t p;
            const lwm2m_resdef_t *got = NULL;
            snprintf(key, sizeof key, "/%u/0/%u", o->id, r->id);
            check(lwm2m_registry_resolve_key(reg, key, &p, &got, err, sizeof err) == 0, "numeric key resolves");
            check(got == r && p.len == 3 && p.ids[0] == o->id && p.ids[2] == r->id, "numeric key path");
            /* by name: may legitimately fail (names holding ".<digits>."),
             * but must not crash and must be consistent when it succeeds */
            char *nkey = malloc(strlen(o->name) + strlen(r->name) + 8);
            if (nkey) {
                sprintf(nkey, "%s.0.%s", o->name, r->name);
                if (lwm2m_registry_resolve_key(reg, nkey, &p, &got, err, sizeof err) == 0)
                    check(p.len >= 1 && p.len <= 4, "named key path");
                free(nkey);
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const lwm2m_registry_t *bi = builtin();

    lwm2m_registry_t *reg = lwm2m_registry_new();
    if (!reg)
        return 0;
    char err[256] = "";
    int rc = lwm2m_registry_add_xml(reg, (const char *)data, size, err, sizeof err);
    if (rc != 0) {
        check(lwm2m_registry_count(reg) == 0, "nothing added on failure");
        check(err[0] != '\0', "failure has a message");
    } else {
        check(lwm2m_registry_count(reg) > 0, "success adds objects");
        exercise(reg);
    }
    lwm2m_registry_free(&reg);

    /* the input as a task key */
    if (size < 512) {
        char key[512];
        memcpy(key, data, size);
        key[size] = '\0';
        lwm2m_path_t p;
        const lwm2m_resdef_t *r = NULL;
        if (lwm2m_registry_resolve_key(bi, key, &p, &r, err, sizeof err) == 0) {
            check(p.len >= 1 && p.len <= 4, "key path length");
            check(!r || (p.len >= 3 && lwm2m_registry_type(bi, p.ids[0], p.ids[2]) == (int)r->type), "key resource");
        } else {
            check(err[0] != '\0', "key failure has a message");
        }
        char norm[64];
        lwm2m_name_normalise(key, norm, sizeof norm);
        check(strlen(norm) < sizeof norm, "normalise bound");
    }
    return 0;
}
