/* api: the HTTP server (libmicrohttpd, internal thread pool), request
 * lifecycle, body accumulation, routing and the response helpers.
 *
 * Request lifecycle in libmicrohttpd's access handler:
 *   1st call   -> allocate api_req_t (freed in on_completed); a declared body
 *                 far beyond the cap is refused at once with 413
 *   data calls -> append to r->body up to API_MAX_BODY; beyond it the data is
 *                 read and dropped (so the client can read our 413)
 *   last call  -> route, authenticate, run the handler, which queues exactly
 *                 one response. */
#include "api/api_int.h"
#include "server/common/metrics.h"
#include "server/common/log.h"
#include "server/common/embedded.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Declared bodies above this are refused without reading them. */
#define API_HARD_BODY_LIMIT (16u * 1024u * 1024u)

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* --------------------------------------------------------------- routes */
typedef struct {
    const char *method;
    const char *pattern;          /* "{id}" matches a positive integer segment */
    api_handler_fn fn;
    bool auth;
} route_t;

static const route_t k_routes[] = {
    {"GET", "/healthz", api_health_get, false},
    {"GET", "/metrics", api_metrics_get, false},
    {"POST", "/api/v1/auth/token", api_auth_token_post, false},
    {"DELETE", "/api/v1/auth/token", api_auth_token_delete, true},
    {"GET", "/api/v1/lwm2m-servers", api_servers_list, true},
    {"POST", "/api/v1/lwm2m-servers", api_servers_create, true},
    {"GET", "/api/v1/lwm2m-servers/{id}", api_servers_get, true},
    {"PUT", "/api/v1/lwm2m-servers/{id}", api_servers_put, true},
    {"PATCH", "/api/v1/lwm2m-servers/{id}", api_servers_patch, true},
    {"DELETE", "/api/v1/lwm2m-servers/{id}", api_servers_delete, true},
    {"GET", "/api/v1/bootstrap-settings", api_bs_settings_get, true},
    {"PUT", "/api/v1/bootstrap-settings", api_bs_settings_put, true},
    {"PATCH", "/api/v1/bootstrap-settings", api_bs_settings_patch, true},
    {"GET", "/api/v1/devices", api_devices_list, true},
    {"POST", "/api/v1/devices", api_devices_create, true},
    {"GET", "/api/v1/devices/{id}", api_devices_get, true},
    {"PUT", "/api/v1/devices/{id}", api_devices_put, true},
    {"PATCH", "/api/v1/devices/{id}", api_devices_patch, true},
    {"DELETE", "/api/v1/devices/{id}", api_devices_delete, true},
    {"GET", "/api/v1/devices/{id}/groups", api_device_groups_get, true},
    {"GET", "/api/v1/devices/{id}/setting-values", api_sv_get, true},
    {"PUT", "/api/v1/devices/{id}/setting-values", api_sv_put, true},
    {"PATCH", "/api/v1/devices/{id}/setting-values", api_sv_patch, true},
    {"GET", "/api/v1/devices/{id}/tasks", api_tasks_list, true},
    {"POST", "/api/v1/devices/{id}/tasks", api_tasks_create, true},
    {"GET", "/api/v1/devices/{id}/tasks/{sub}", api_tasks_get, true},
    {"PUT", "/api/v1/devices/{id}/tasks/{sub}", api_tasks_put, true},
    {"PATCH", "/api/v1/devices/{id}/tasks/{sub}", api_tasks_patch, true},
    {"DELETE", "/api/v1/devices/{id}/tasks/{sub}", api_tasks_delete, true},
    {"GET", "/api/v1/devices/{id}/tasks/{sub}/reports", api_task_reports_list, true},
    {"GET", "/api/v1/devices/{id}/task-reports", api_device_reports_list, true},
    {"GET", "/api/v1/devices/{id}/task-reports/{sub}", api_device_report_get, true},
    {"GET", "/api/v1/groups", api_groups_list, true},
    {"POST", "/api/v1/groups", api_groups_create, true},
    {"GET", "/api/v1/groups/{id}", api_groups_get, true},
    {"PUT", "/api/v1/groups/{id}", api_groups_put, true},
    {"PATCH", "/api/v1/groups/{id}", api_groups_patch, true},
    {"DELETE", "/api/v1/groups/{id}", api_groups_delete, true},
    {"GET", "/api/v1/groups/{id}/devices", api_group_devices_list, true},
    {"POST", "/api/v1/groups/{id}/devices", api_group_devices_add, true},
    {"DELETE", "/api/v1/groups/{id}/devices/{sub}", api_group_devices_remove, true},
    {"GET", "/api/v1/groups/{id}/setting-values", api_sv_get, true},
    {"PUT", "/api/v1/groups/{id}/setting-values", api_sv_put, true},
    {"PATCH", "/api/v1/groups/{id}/setting-values", api_sv_patch, true},
    {"GET", "/api/v1/groups/{id}/tasks", api_tasks_list, true},
    {"POST", "/api/v1/groups/{id}/tasks", api_tasks_create, true},
    {"GET", "/api/v1/groups/{id}/tasks/{sub}", api_tasks_get, true},
    {"PUT", "/api/v1/groups/{id}/tasks/{sub}", api_tasks_put, true},
    {"PATCH", "/api/v1/groups/{id}/tasks/{sub}", api_tasks_patch, true},
    {"DELETE", "/api/v1/groups/{id}/tasks/{sub}", api_tasks_delete, true},
    {"GET", "/api/v1/groups/{id}/tasks/{sub}/reports", api_task_reports_list, true},
    {"GET", "/api/v1/events", api_events_get, true},
    {"GET", "/api/v1/devices/{id}/registration", api_device_registration_get, true},
    {"GET", "/api/v1/devices/{id}/observations", api_device_observations_get, true},
    {"GET", "/api/v1/devices/{id}/values", api_device_values_get, true},
    {"GET", "/api/v1/devices/{id}/notifications", api_device_notifications_get, true},
    {"GET", "/api/v1/devices/{id}/requests/{sub}", api_device_op, true},
    {"POST", "/api/v1/devices/{id}/bootstrap", api_device_op, true},
    {"POST", "/api/v1/devices/{id}/composite/read", api_device_op, true},
    {"POST", "/api/v1/devices/{id}/composite/write", api_device_op, true},
    {"GET", "/api/v1/devices/{id}/data/*", api_device_op, true},
    {"PUT", "/api/v1/devices/{id}/data/*", api_device_op, true},
    {"PATCH", "/api/v1/devices/{id}/data/*", api_device_op, true},
    {"POST", "/api/v1/devices/{id}/data/*", api_device_op, true},
    {"DELETE", "/api/v1/devices/{id}/data/*", api_device_op, true},
};

/* Matches path (len bytes) against pattern; fills *id for "{id}" and *id2
 * for "{sub}" (the second id of nested resources). */
static bool route_match(const char *pattern, const char *path, size_t len, int64_t *id, int64_t *id2)
{
    const char *p = pattern, *s = path, *end = path + len;
    while (*p && s < end) {
        if (p[0] == '*' && p[1] == 0)
            return true; /* "*" at the end: any rest of the path */
        bool first = strncmp(p, "{id}", 4) == 0;
        if (first || strncmp(p, "{sub}", 5) == 0) {
            int64_t v = 0;
            int digits = 0;
            while (s < end && *s >= '0' && *s <= '9') {
                if (digits >= 18)
                    return false;
                v = v * 10 + (*s - '0');
                s++;
                digits++;
            }
            if (digits == 0 || v <= 0)
                return false;
            if (first) {
                *id = v;
                p += 4;
            } else {
                *id2 = v;
                p += 5;
            }
            continue;
        }
        if (*p != *s)
            return false;
        p++;
        s++;
    }
    return (*p == 0 || (p[0] == '*' && p[1] == 0)) && s == end;
}

/* ----------------------------------------------------------- per thread db */
static void close_thread_db(void *p)
{
    db_t *db = p;
    db_close(&db);
}

db_t *api_req_db(api_req_t *r)
{
    if (r->db)
        return r->db;
    db_t *db = pthread_getspecific(r->api->db_key);
    if (!db) {
        char err[256];
        if (db_open(r->api->db_path, r->api->key, &db, err, sizeof err) != 0) {
            LOG_ERROR("api", "event=db_open_failed err=\"%s\"", err);
            return NULL;
        }
        if (pthread_setspecific(r->api->db_key, db) != 0) {
            db_close(&db);
            return NULL;
        }
    }
    r->db = db;
    return db;
}

/* ------------------------------------------------------------- helpers */
const char *api_query(api_req_t *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *api_header(api_req_t *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

bool api_domain_visible(const api_req_t *r, const char *obj_domain)
{
    size_t n = strlen(r->domain);
    return obj_domain && strncmp(obj_domain, r->domain, n) == 0;
}

static enum MHD_Result queue(api_req_t *r, unsigned status, char *text, size_t len, const char *ctype,
                             const char *location)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, text ? text : (char *)"", text ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    if (ctype)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (location)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"lwdm\"");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED) {
        /* list the methods of the matching path */
        char allow[64] = "";
        size_t len2 = strlen(r->url);
        int64_t id, id2;
        for (size_t i = 0; i < sizeof k_routes / sizeof k_routes[0]; i++)
            if (route_match(k_routes[i].pattern, r->url, len2, &id, &id2) && strlen(allow) + 10 < sizeof allow) {
                if (allow[0])
                    strcat(allow, ", ");
                strcat(allow, k_routes[i].method);
            }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    }
    r->status = status;
    r->answered = true;
    /* counted when queued, so a client never sees its answer before its count */
    metrics_http(r->route, r->method, status, (double)(mono_us() - r->t0_us) / 1e6);
    enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    LOG_DEBUG("api", "method=%s path=%s status=%u ms=%.1f", r->method, r->url, status,
              (double)(mono_us() - r->t0_us) / 1000.0);
    return ret;
}

enum MHD_Result api_send_text(api_req_t *r, unsigned status, char *text, const char *ctype)
{
    return queue(r, status, text, text ? strlen(text) : 0, ctype, NULL);
}

enum MHD_Result api_send_typed(api_req_t *r, unsigned status, json_t *body, const char *location, const char *ctype)
{
    if (!body)
        return queue(r, status, NULL, 0, NULL, location);
    char *text = json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(body);
    if (!text)
        return MHD_NO;
    return queue(r, status, text, strlen(text), ctype, location);
}

enum MHD_Result api_send_json(api_req_t *r, unsigned status, json_t *body, const char *location)
{
    return api_send_typed(r, status, body, location, "application/json");
}

enum MHD_Result api_send_empty(api_req_t *r, unsigned status) { return queue(r, status, NULL, 0, NULL, NULL); }

json_t *api_body_object(api_req_t *r, enum MHD_Result *ret)
{
    /* The Content-Type is not checked: `curl -d` sends form-urlencoded by
     * default, and the body is JSON whatever the header says. */
    if (!r->body || r->body_len == 0) {
        *ret = api_problem(r, MHD_HTTP_BAD_REQUEST, "a JSON object is required as the request body", NULL);
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        char detail[320];
        snprintf(detail, sizeof detail, "invalid JSON at line %d, column %d: %s", je.line, je.column, je.text);
        *ret = api_problem(r, MHD_HTTP_BAD_REQUEST, detail, NULL);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        *ret = api_problem(r, MHD_HTTP_BAD_REQUEST, "the request body must be a JSON object", NULL);
        return NULL;
    }
    return j;
}

static bool parse_nonneg(const char *s, long *out)
{
    if (!s || !*s || strlen(s) > 9)
        return false;
    long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return true;
}

int api_paging(api_req_t *r, int *limit, int *offset, enum MHD_Result *ret)
{
    *limit = API_LIST_DEFAULT_LIMIT;
    *offset = 0;
    const char *l = api_query(r, "limit"), *o = api_query(r, "offset");
    long v;
    if (l) {
        if (!parse_nonneg(l, &v) || v < 1) {
            *ret = api_problem_field(r, MHD_HTTP_BAD_REQUEST, "limit", "limit must be an integer from 1 to 1000");
            return -1;
        }
        *limit = v > API_LIST_MAX_LIMIT ? API_LIST_MAX_LIMIT : (int)v;
    }
    if (o) {
        if (!parse_nonneg(o, &v)) {
            *ret = api_problem_field(r, MHD_HTTP_BAD_REQUEST, "offset", "offset must be a non-negative integer");
            return -1;
        }
        *offset = (int)v;
    }
    return 0;
}

enum MHD_Result api_in_tx(api_req_t *r, db_t *db, api_tx_fn fn, json_t *body)
{
    int rc = db_begin(db);
    if (rc != 0)
        return api_problem_db(r, rc, "transaction");
    enum MHD_Result ret = fn(r, db, body);
    db_rollback(db); /* no-op after a commit */
    return ret;
}

enum MHD_Result api_with_body_tx(api_req_t *r, api_tx_fn fn)
{
    enum MHD_Result ret;
    json_t *body = api_body_object(r, &ret);
    if (!body)
        return ret;
    db_t *db = api_req_db(r);
    if (!db) {
        json_decref(body);
        return api_problem(r, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable", NULL);
    }
    ret = api_in_tx(r, db, fn, body);
    json_decref(body);
    return ret;
}

/* -------------------------------------------------------- static web files
 * GET/HEAD of any path outside /api/ that no route claims: the web UI. Files
 * come from --web DIR when set, else from web/ embedded at build time
 * (cmake/embed.cmake). web/ is flat: a path is one file name of letters,
 * digits, '.', '_' and '-', not starting with '.', so nothing outside the
 * directory can be named. "/" is index.html. */
extern const lwdm_embedded_file_t lwdm_web_files[];
extern const size_t lwdm_web_files_count;

static const char k_static_route[] = "static";
#define STATIC_MAX_FILE (8u * 1024u * 1024u)

static const char *static_ctype(const char *name)
{
    static const struct {
        const char *ext, *type;
    } k[] = {{".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
             {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
             {".json", "application/json"}, {".svg", "image/svg+xml"}, {".png", "image/png"},
             {".ico", "image/x-icon"}, {".txt", "text/plain; charset=utf-8"}, {".woff2", "font/woff2"}};
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof k / sizeof k[0]; i++)
        if (strcasecmp(dot, k[i].ext) == 0)
            return k[i].type;
    return "application/octet-stream";
}

static bool static_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 128 || name[0] == '.')
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
              *p == '_' || *p == '-'))
            return false;
    return true;
}

/* Reads DIR/name (a regular file, no symlink) into a malloc'd buffer. 0 = ok,
 * 1 = no such file, -1 = error. */
static int static_read_disk(const char *dir, const char *name, unsigned char **data, size_t *len)
{
    char path[1280];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return 1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT || errno == ELOOP || errno == ENOTDIR ? 1 : -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > STATIC_MAX_FILE) {
        close(fd);
        return 1;
    }
    unsigned char *buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    if (!buf || got != (size_t)st.st_size) {
        free(buf);
        return -1;
    }
    *data = buf;
    *len = got;
    return 0;
}

static enum MHD_Result static_answer(api_req_t *r, unsigned status, struct MHD_Response *resp)
{
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    r->status = status;
    r->answered = true;
    metrics_http(r->route, r->method, status, (double)(mono_us() - r->t0_us) / 1e6);
    enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    LOG_DEBUG("api", "method=%s path=%s status=%u", r->method, r->url, status);
    return ret;
}

static enum MHD_Result static_problem(api_req_t *r, unsigned status, const char *detail)
{
    char *body = NULL;
    json_t *p = json_pack("{s:s, s:s, s:i, s:s}", "type",
                          status == MHD_HTTP_METHOD_NOT_ALLOWED ? "urn:lwdm:problem:method-not-allowed"
                                                                : "urn:lwdm:problem:not-found",
                          "title", api_status_title(status), "status", (int)status, "detail", detail);
    if (p) {
        body = json_dumps(p, JSON_COMPACT);
        json_decref(p);
    }
    if (!body)
        return MHD_NO;
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/problem+json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    return static_answer(r, status, resp);
}

static enum MHD_Result serve_static(api_req_t *r)
{
    r->route = k_static_route;
    const char *name = r->url[0] == '/' ? r->url + 1 : r->url;
    if (!*name)
        name = "index.html";
    if (!static_name_ok(name))
        return static_problem(r, MHD_HTTP_NOT_FOUND, "no such file");
    unsigned char *disk = NULL;
    const unsigned char *data = NULL;
    size_t len = 0;
    if (r->api->web_dir) {
        int rc = static_read_disk(r->api->web_dir, name, &disk, &len);
        if (rc < 0)
            return api_problem(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot read the web file", NULL);
        data = disk;
    } else {
        for (size_t i = 0; i < lwdm_web_files_count && lwdm_web_files[i].name; i++)
            if (strcmp(lwdm_web_files[i].name, name) == 0) {
                data = lwdm_web_files[i].data;
                len = lwdm_web_files[i].len;
                break;
            }
    }
    if (!data)
        return static_problem(r, MHD_HTTP_NOT_FOUND,
                              r->api->web_dir || lwdm_web_files_count ? "no such file"
                                                                      : "the web UI is not built into this binary");
    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
        free(disk);
        return static_problem(r, MHD_HTTP_METHOD_NOT_ALLOWED, "static files answer GET and HEAD only");
    }
    /* a strong validator from the content: the browser revalidates (no-cache)
     * and gets 304 while the file is unchanged */
    unsigned char h[8];
    crypto_generichash(h, sizeof h, data, len, NULL, 0);
    char etag[2 * sizeof h + 3];
    etag[0] = '"';
    sodium_bin2hex(etag + 1, sizeof etag - 2, h, sizeof h);
    strcat(etag, "\"");
    const char *inm = api_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH);
    bool fresh = inm && strstr(inm, etag) != NULL;
    struct MHD_Response *resp;
    if (fresh) {
        free(disk);
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    } else if (disk) {
        resp = MHD_create_response_from_buffer(len, disk, MHD_RESPMEM_MUST_FREE);
        if (!resp)
            free(disk);
    } else {
        resp = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_PERSISTENT);
    }
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    if (!fresh)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, static_ctype(name));
    if (strstr(static_ctype(name), "text/html")) {
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                                "form-action 'self'; frame-ancestors 'none'");
        MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    }
    return static_answer(r, fresh ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK, resp);
}

/* ----------------------------------------------------------- dispatcher */
static enum MHD_Result dispatch(api_req_t *r)
{
    size_t len = strlen(r->url);
    while (len > 1 && r->url[len - 1] == '/')
        len--;
    const route_t *hit = NULL;
    bool path_known = false;
    for (size_t i = 0; i < sizeof k_routes / sizeof k_routes[0]; i++) {
        int64_t id = 0, id2 = 0;
        if (!route_match(k_routes[i].pattern, r->url, len, &id, &id2))
            continue;
        path_known = true;
        r->route = k_routes[i].pattern;
        if (strcmp(k_routes[i].method, r->method) == 0) {
            hit = &k_routes[i];
            r->id = id;
            r->id2 = id2;
            break;
        }
    }
    bool needs_auth = hit ? hit->auth : strncmp(r->url, "/api/", 5) == 0;
    if (needs_auth) {
        enum MHD_Result ret;
        if (!api_auth_check(r, &ret))
            return ret;
    }
    if (!hit) {
        if (path_known)
            return api_problem(r, MHD_HTTP_METHOD_NOT_ALLOWED, NULL, NULL);
        if (!needs_auth)
            return serve_static(r);
        return api_problem(r, MHD_HTTP_NOT_FOUND, "no such resource", NULL);
    }
    return hit->fn(r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    api_req_t *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->api = cls;
        r->conn = conn;
        r->method = method;
        r->url = url;
        r->t0_us = mono_us();
        *con_cls = r;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > API_HARD_BODY_LIMIT) {
            r->too_large = true;
            return api_problem(r, MHD_HTTP_CONTENT_TOO_LARGE, "the request body is larger than 1 MiB", NULL);
        }
        return MHD_YES;
    }
    if (r->answered) {
        *upload_data_size = 0; /* drop whatever still comes */
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        if (!r->too_large && r->body_len + n > API_MAX_BODY) {
            r->too_large = true;
            if (r->body)
                sodium_memzero(r->body, r->body_cap);
            free(r->body);
            r->body = NULL;
            r->body_len = r->body_cap = 0;
        }
        if (!r->too_large) {
            if (r->body_len + n + 1 > r->body_cap) {
                size_t cap = r->body_cap ? r->body_cap : 4096;
                while (cap < r->body_len + n + 1)
                    cap *= 2;
                char *nb = malloc(cap);
                if (!nb)
                    return MHD_NO;
                if (r->body) {
                    memcpy(nb, r->body, r->body_len);
                    sodium_memzero(r->body, r->body_cap);
                    free(r->body);
                }
                r->body = nb;
                r->body_cap = cap;
            }
            memcpy(r->body + r->body_len, upload_data, n);
            r->body_len += n;
            r->body[r->body_len] = 0;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->too_large)
        return api_problem(r, MHD_HTTP_CONTENT_TOO_LARGE, "the request body is larger than 1 MiB", NULL);
    return r->on_resume ? r->on_resume(r) : dispatch(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    api_req_t *r = *con_cls;
    if (!r)
        return;
    if (r->susp_free)
        r->susp_free(r->susp_ctx);
    if (r->body) /* it may have held a PSK or a password */
        sodium_memzero(r->body, r->body_cap);
    free(r->body);
    free(r);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    for (char *p = msg; *p; p++)
        if (*p == '"')
            *p = '\'';
    LOG_WARN("api", "event=httpd msg=\"%s\"", msg);
}

/* ------------------------------------------------------------ lifecycle */
int api_start(const api_config_t *cfg, api_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!cfg || !cfg->db_path || !cfg->secret_key) {
        snprintf(err, errlen, "api: db_path and secret_key are required");
        return -1;
    }
    api_t *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "api: out of memory");
        return -1;
    }
    a->db_path = strdup(cfg->db_path);
    a->devops = cfg->devops;
    a->default_domain = strdup(cfg->default_domain ? cfg->default_domain : "/");
    a->registry = cfg->registry;
    a->events = cfg->events;
    a->web_dir = cfg->web_dir && *cfg->web_dir ? strdup(cfg->web_dir) : NULL;
    memcpy(a->key, cfg->secret_key, DB_KEY_BYTES);
    pthread_mutex_init(&a->hook_lock, NULL);
    if (!a->db_path || !a->default_domain || (cfg->web_dir && *cfg->web_dir && !a->web_dir) ||
        pthread_key_create(&a->db_key, close_thread_db) != 0) {
        snprintf(err, errlen, "api: out of memory");
        free(a->web_dir);
        free(a->db_path);
        free(a->default_domain);
        pthread_mutex_destroy(&a->hook_lock);
        free(a);
        return -1;
    }
    if (api_events_start(a) != 0) {
        snprintf(err, errlen, "api: cannot start the events thread");
        goto fail;
    }

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    const char *host = cfg->bind_addr && *cfg->bind_addr ? cfg->bind_addr : "0.0.0.0";
    char hostbuf[128];
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']' && hl - 2 < sizeof hostbuf) {
        memcpy(hostbuf, host + 1, hl - 2);
        hostbuf[hl - 2] = 0;
        host = hostbuf;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(host, NULL, &hints, &ai);
    if (gai != 0 || !ai) {
        snprintf(err, errlen, "api: cannot resolve bind address %s: %s", host, gai_strerror(gai));
        goto fail;
    }
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    if (ss.ss_family == AF_INET6) {
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(cfg->port);
        flags |= MHD_USE_IPv6;
    } else {
        ((struct sockaddr_in *)&ss)->sin_port = htons(cfg->port);
    }
    unsigned threads = cfg->threads ? cfg->threads : 4;
    a->daemon = MHD_start_daemon(flags, cfg->port, NULL, NULL, on_request, a,
                                 MHD_OPTION_EXTERNAL_LOGGER, mhd_log, a,
                                 MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                                 MHD_OPTION_THREAD_POOL_SIZE, threads,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, a,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
                                 MHD_OPTION_END);
    if (!a->daemon) {
        snprintf(err, errlen, "api: cannot listen on %s:%u (port in use?)", host, (unsigned)cfg->port);
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(a->daemon, MHD_DAEMON_INFO_BIND_PORT);
    a->port = info ? info->port : cfg->port;
    LOG_INFO("api", "event=listening addr=%s port=%u threads=%u", host, (unsigned)a->port, threads);
    *out = a;
    return 0;
fail:
    api_events_free(a);
    pthread_key_delete(a->db_key);
    pthread_mutex_destroy(&a->hook_lock);
    free(a->web_dir);
    free(a->db_path);
    free(a->default_domain);
    free(a);
    return -1;
}

uint16_t api_port(const api_t *api) { return api ? api->port : 0; }

void api_set_health_hook(api_t *api, int (*fn)(void *), void *arg)
{
    if (!api)
        return;
    pthread_mutex_lock(&api->hook_lock);
    api->health_fn = fn;
    api->health_arg = arg;
    pthread_mutex_unlock(&api->hook_lock);
}

void api_stop(api_t **papi)
{
    if (!papi || !*papi)
        return;
    api_t *a = *papi;
    /* Joins the worker threads; their thread-specific db_t are closed by
     * close_thread_db as each thread exits. */
    api_events_stop(a); /* no suspended connection may outlive the daemon */
    MHD_stop_daemon(a->daemon);
    api_events_free(a);
    pthread_key_delete(a->db_key);
    pthread_mutex_destroy(&a->hook_lock);
    free(a->web_dir);
    free(a->db_path);
    free(a->default_domain);
    memset(a->key, 0, sizeof a->key);
    free(a);
    *papi = NULL;
}
