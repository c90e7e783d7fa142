/* api: errors as application/problem+json (RFC 9457):
 * {"type","title","status","detail","errors":[{"field","message"}]}. */
#include "api/api_int.h"
#include "server/common/log.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    unsigned status;
    const char *slug;
    const char *title;
} status_info_t;

static const status_info_t k_status[] = {
    {400, "bad-request", "Bad Request"},
    {401, "unauthorized", "Unauthorized"},
    {403, "forbidden", "Forbidden"},
    {404, "not-found", "Not Found"},
    {405, "method-not-allowed", "Method Not Allowed"},
    {409, "conflict", "Conflict"},
    {413, "content-too-large", "Content Too Large"},
    {415, "unsupported-media-type", "Unsupported Media Type"},
    {406, "not-acceptable", "Not Acceptable"},
    {422, "validation-failed", "Unprocessable Content"},
    {500, "internal-error", "Internal Server Error"},
    {502, "bad-gateway", "Bad Gateway"},
    {503, "unavailable", "Service Unavailable"},
    {504, "gateway-timeout", "Gateway Timeout"},
};

static const status_info_t *info(unsigned status)
{
    for (size_t i = 0; i < sizeof k_status / sizeof k_status[0]; i++)
        if (k_status[i].status == status)
            return &k_status[i];
    return NULL;
}

const char *api_status_title(unsigned status)
{
    const status_info_t *i = info(status);
    return i ? i->title : "Error";
}

enum MHD_Result api_problem(api_req_t *r, unsigned status, const char *detail, json_t *errors)
{
    const status_info_t *i = info(status);
    char type[96];
    if (i)
        snprintf(type, sizeof type, "urn:lwdm:problem:%s", i->slug);
    else
        snprintf(type, sizeof type, "about:blank");
    json_t *p = json_pack("{s:s, s:s, s:i}", "type", type, "title", i ? i->title : "Error", "status", (int)status);
    if (!p) {
        json_decref(errors);
        return MHD_NO;
    }
    if (detail)
        json_object_set_new(p, "detail", json_string(detail));
    if (errors)
        json_object_set_new(p, "errors", errors);
    return api_send_typed(r, status, p, NULL, "application/problem+json");
}

enum MHD_Result api_problem_field(api_req_t *r, unsigned status, const char *field, const char *message)
{
    json_t *errs = json_pack("[{s:s, s:s}]", "field", field, "message", message);
    return api_problem(r, status, message, errs);
}

enum MHD_Result api_problem_db(api_req_t *r, int rc, const char *what)
{
    char detail[200];
    switch (rc & 0xff) {
    case SQLITE_NOTFOUND:
        snprintf(detail, sizeof detail, "%s not found", what ? what : "resource");
        return api_problem(r, 404, detail, NULL);
    case SQLITE_CONSTRAINT:
        snprintf(detail, sizeof detail, "%s conflicts with existing data", what ? what : "the request");
        return api_problem(r, 409, detail, NULL);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return api_problem(r, 503, "the database is busy, retry later", NULL);
    default:
        LOG_ERROR("api", "event=db_error method=%s path=%s rc=%d err=\"%s\"", r->method, r->url, rc,
                  sqlite3_errstr(rc));
        return api_problem(r, 500, "database error", NULL);
    }
}

void api_verr_init(api_verr_t *v)
{
    v->errors = json_array();
    v->status = 0;
}

void api_verr_free(api_verr_t *v)
{
    json_decref(v->errors);
    v->errors = NULL;
    v->status = 0;
}

static int rank(unsigned status)
{
    return status == 400 ? 0 : status == 422 ? 1 : status == 409 ? 2 : 3;
}

void api_verr_add(api_verr_t *v, unsigned status, const char *field, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (v->errors)
        json_array_append_new(v->errors, json_pack("{s:s, s:s}", "field", field, "message", msg));
    if (v->status == 0 || rank(status) < rank(v->status))
        v->status = status;
}

bool api_verr_any(const api_verr_t *v) { return v->status != 0; }

enum MHD_Result api_problem_verr(api_req_t *r, api_verr_t *v, const char *detail)
{
    unsigned status = v->status ? v->status : 400;
    /* Every error found is listed; the status is the most basic one. */
    json_t *keep = v->errors ? v->errors : json_array();
    v->errors = NULL;
    v->status = 0;
    char d[300];
    if (!detail) {
        const char *first = json_string_value(json_object_get(json_array_get(keep, 0), "message"));
        const char *field = json_string_value(json_object_get(json_array_get(keep, 0), "field"));
        if (json_array_size(keep) == 1 && first && field)
            snprintf(d, sizeof d, "%s: %s", field, first);
        else
            snprintf(d, sizeof d, "%zu fields are invalid", json_array_size(keep));
        detail = d;
    }
    return api_problem(r, status, detail, keep);
}
