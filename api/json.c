/* api: JSON helpers: merge patch (RFC 7396), times, typed field readers. */
#include "api/api_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

json_t *api_merge_patch(const json_t *target, const json_t *patch)
{
    if (!json_is_object(patch))
        return json_deep_copy(patch);
    json_t *result = json_is_object(target) ? json_deep_copy(target) : json_object();
    if (!result)
        return NULL;
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)patch, key, value) {
        if (json_is_null(value)) {
            json_object_del(result, key);
            continue;
        }
        json_t *merged = api_merge_patch(json_object_get(result, key), value);
        if (!merged || json_object_set_new(result, key, merged) != 0) {
            json_decref(result);
            return NULL;
        }
    }
    return result;
}

json_t *api_json_time(int64_t ms, bool zero_is_null)
{
    if (ms == 0 && zero_is_null)
        return json_null();
    time_t sec = (time_t)(ms / 1000);
    int milli = (int)(ms % 1000);
    if (milli < 0) {
        milli += 1000;
        sec -= 1;
    }
    struct tm tm;
    if (!gmtime_r(&sec, &tm))
        return json_null();
    char buf[96];
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, milli);
    return json_string(buf);
}

json_t *api_json_str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

bool api_has(json_t *obj, const char *key) { return json_object_get(obj, key) != NULL; }

static json_t *present(json_t *obj, const char *key)
{
    json_t *j = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_null(j) ? NULL : j;
}

bool api_get_string(json_t *obj, const char *key, const char *field, api_verr_t *v, const char **out)
{
    json_t *j = present(obj, key);
    if (!j)
        return false;
    if (!json_is_string(j)) {
        api_verr_add(v, 400, field, "must be a string");
        return false;
    }
    *out = json_string_value(j);
    return true;
}

bool api_get_int(json_t *obj, const char *key, const char *field, api_verr_t *v, int64_t *out)
{
    json_t *j = present(obj, key);
    if (!j)
        return false;
    if (!json_is_integer(j)) {
        api_verr_add(v, 400, field, "must be an integer");
        return false;
    }
    *out = (int64_t)json_integer_value(j);
    return true;
}

bool api_get_bool(json_t *obj, const char *key, const char *field, api_verr_t *v, bool *out)
{
    json_t *j = present(obj, key);
    if (!j)
        return false;
    if (!json_is_boolean(j)) {
        api_verr_add(v, 400, field, "must be true or false");
        return false;
    }
    *out = json_is_true(j);
    return true;
}

bool api_get_object(json_t *obj, const char *key, const char *field, api_verr_t *v, json_t **out)
{
    json_t *j = present(obj, key);
    if (!j)
        return false;
    if (!json_is_object(j)) {
        api_verr_add(v, 400, field, "must be an object");
        return false;
    }
    *out = j;
    return true;
}

bool api_get_array(json_t *obj, const char *key, const char *field, api_verr_t *v, json_t **out)
{
    json_t *j = present(obj, key);
    if (!j)
        return false;
    if (!json_is_array(j)) {
        api_verr_add(v, 400, field, "must be an array");
        return false;
    }
    *out = j;
    return true;
}

void api_check_unknown(json_t *obj, const char *const *allowed, const char *prefix, api_verr_t *v)
{
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value) {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, key) == 0)
                ok = true;
        if (!ok) {
            char field[200];
            snprintf(field, sizeof field, "%s%s", prefix, key);
            api_verr_add(v, 400, field, "unknown field");
        }
    }
}

size_t api_utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            n++;
    return n;
}

bool api_has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

bool api_absent(json_t *o, const char *key)
{
    json_t *j = json_is_object(o) ? json_object_get(o, key) : NULL;
    return !j || json_is_null(j);
}

api_secret_op_t api_secret_op(json_t *o, const char *key, const char *field, api_verr_t *v, const char **val)
{
    json_t *j = json_is_object(o) ? json_object_get(o, key) : NULL;
    if (!j)
        return API_SECRET_KEEP;
    if (json_is_null(j))
        return API_SECRET_CLEAR;
    if (!json_is_string(j)) {
        api_verr_add(v, 400, field, "must be a string or null");
        return API_SECRET_KEEP;
    }
    *val = json_string_value(j);
    return API_SECRET_SET;
}

enum MHD_Result api_send_page(api_req_t *r, json_t *items, int64_t total, int limit, int offset)
{
    json_t *out = json_pack("{s:o, s:I, s:i, s:i}", "items", items, "total", (json_int_t)total, "limit", limit,
                            "offset", offset);
    return api_send_json(r, 200, out, NULL);
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

bool api_parse_time(const char *s, int64_t *ms)
{
    int Y, M, D, h, m, sec;
    if (!s || strlen(s) < 20 || !digits(s, 4, &Y) || s[4] != '-' || !digits(s + 5, 2, &M) || s[7] != '-' ||
        !digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) || s[13] != ':' ||
        !digits(s + 14, 2, &m) || s[16] != ':' || !digits(s + 17, 2, &sec))
        return false;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (Y < 1970 || M < 1 || M > 12 || D < 1 || D > mdays[M - 1] || h > 23 || m > 59 || sec > 60)
        return false;
    bool leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
    if (M == 2 && D == 29 && !leap)
        return false;
    const char *p = s + 19;
    int milli = 0;
    if (*p == '.') {
        p++;
        int nd = 0;
        while (*p >= '0' && *p <= '9') {
            if (nd < 3)
                milli = milli * 10 + (*p - '0');
            nd++;
            p++;
        }
        if (nd == 0)
            return false;
        for (; nd < 3; nd++)
            milli *= 10;
    }
    int off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return false;
        off = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return false;
    }
    if (*p)
        return false;
    struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D, .tm_hour = h, .tm_min = m, .tm_sec = sec};
    time_t t = timegm(&tm);
    *ms = ((int64_t)t - off) * 1000 + milli;
    return true;
}
