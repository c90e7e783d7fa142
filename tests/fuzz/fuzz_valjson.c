/* libFuzzer target: typed JSON write bodies (server/lwm2m/valjson.c). The
 * first 5 bytes choose the request path (as in codec_fuzz.h), the rest is
 * read by jansson and then by lwm2m_records_from_json() against the built-in
 * object definitions. A failure must leave the output set alone and name a
 * field and a reason; a success must give resource (instance) records at or
 * below the request path, typed as the definitions say, each path once, which
 * lwm2m_records_to_json() shows and which read back from that JSON the same. */
#include <stdbool.h>

#include "codec_fuzz.h"
#include "server/lwm2m/registry.h"
#include "server/lwm2m/valjson.h"

static lwm2m_registry_t *builtin(void)
{
    static lwm2m_registry_t *reg;
    if (!reg) {
        char err[256];
        reg = lwm2m_registry_new();
        if (!reg || lwm2m_registry_add_builtin(reg, err, sizeof err) != 0)
            abort();
    }
    return reg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lwm2m_path_t base;
    const uint8_t *p;
    size_t n;
    split_input(data, size, &base, &p, &n);
    json_t *body = json_loadb((const char *)p, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!body)
        return 0;
    const lwm2m_registry_t *reg = builtin();
    lwm2m_records_t rs;
    lwm2m_records_init(&rs);
    lwm2m_path_t sp = lwm2m_path_make(3, 9, 9, 9, 0);
    if (lwm2m_records_add_string(&rs, &sp, "sentinel") != 0)
        abort();
    char field[64], err[256];
    int rc = lwm2m_records_from_json(reg, &base, body, &rs, field, sizeof field, err, sizeof err);
    if (rc != 0) {
        if (rc != LWM2M_ERR_BAD_REQUEST || rs.n != 1 || strcmp((const char *)rs.recs[0].bytes, "sentinel") != 0 ||
            err[0] == '\0')
            abort();
        lwm2m_records_clear(&rs);
        json_decref(body);
        return 0;
    }
    if (field[0] || err[0])
        abort();
    for (size_t i = 1; i < rs.n; i++) {
        const lwm2m_record_t *r = &rs.recs[i];
        if (!lwm2m_path_starts_with(&r->path, &base) || r->path.len < 3 || r->type == LWM2M_T_NONE)
            abort();
        int t = lwm2m_registry_type(reg, r->path.ids[0], r->path.ids[2]);
        if (t >= 0 && t != (int)r->type)
            abort();
        for (size_t j = 1; j < i; j++)
            if (lwm2m_path_starts_with(&r->path, &rs.recs[j].path) ||
                lwm2m_path_starts_with(&rs.recs[j].path, &r->path))
                abort();
    }
    /* show the records (without the sentinel) and read them back */
    lwm2m_records_t mine = {rs.recs + 1, rs.n - 1, rs.n - 1};
    json_t *arr = lwm2m_records_to_json(reg, &mine);
    if (!arr || json_array_size(arr) != mine.n)
        abort();
    json_t *again = json_pack("{s:o}", "records", arr);
    if (!again)
        abort();
    lwm2m_path_t root = lwm2m_path_make(0, 0, 0, 0, 0);
    lwm2m_records_t back;
    lwm2m_records_init(&back);
    if (lwm2m_records_from_json(reg, &root, again, &back, field, sizeof field, err, sizeof err) != 0)
        abort();
    check_same(&rs, 1, &back);
    lwm2m_records_clear(&back);
    json_decref(again);
    lwm2m_records_clear(&rs);
    json_decref(body);
    return 0;
}
