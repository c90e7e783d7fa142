/* api room internals, shared by the api sources only (public surface: api.h).
 *
 * A request is an api_req_t, created on the first libmicrohttpd callback and
 * freed when the connection reports completion. Handlers run on an HTTP
 * worker thread, use that thread's own db_t (api_req_db) and answer with
 * exactly one api_send_* / api_problem* call, whose return value they return. */
#ifndef LWDM_API_INT_H
#define LWDM_API_INT_H
#include "api/api.h"
#include "db/db.h"

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define API_MAX_BODY (1024u * 1024u)      /* larger bodies get 413 */
#define API_TOKEN_TTL_S (24 * 3600)
#define API_LIST_DEFAULT_LIMIT 50
#define API_LIST_MAX_LIMIT 1000
#define API_DOMAIN_MAX 256

struct api {
    struct MHD_Daemon *daemon;
    char *db_path;
    uint8_t key[DB_KEY_BYTES];
    char *default_domain;
    uint16_t port;
    pthread_key_t db_key;         /* per worker thread db_t, closed at thread exit */
    pthread_mutex_t hook_lock;
    int (*health_fn)(void *);
    void *health_arg;
    const struct lwm2m_registry *registry; /* object definitions (task keys); may be NULL */
    char *web_dir;                /* --web DIR: static files from disk; NULL = the embedded web/ */
    devops_t devops;              /* device operations -> network loop (device_data.c) */
    struct events *events;        /* live events bus (borrowed); NULL = GET /events answers 503 */
    struct api_events *evs;       /* events.c: streams, long polls and their waker thread */
};

typedef struct api_req {
    api_t *api;
    struct MHD_Connection *conn;
    const char *method;           /* owned by libmicrohttpd, valid for the request */
    const char *url;              /* path without the query string */
    char *body;                   /* NUL-terminated, owned */
    size_t body_len, body_cap;
    bool too_large;
    bool answered;
    int64_t t0_us;
    unsigned status;              /* for the log line */
    int64_t id;                   /* {id} of the path, if any */
    int64_t id2;                  /* {sub}: the second id of nested paths (/groups/{id}/tasks/{sub}) */
    const char *route;            /* matched route pattern (static), for metrics; NULL = none */
    int64_t user_id;              /* authenticated caller (0 = none) */
    char domain[API_DOMAIN_MAX];  /* caller's domain */
    db_t *db;
    /* A handler that suspends the connection (MHD_suspend_connection) without
     * answering sets on_resume: libmicrohttpd calls the access handler again
     * once it is resumed, and on_request runs on_resume(r) instead of routing.
     * susp_free(susp_ctx) runs when the request completes. */
    enum MHD_Result (*on_resume)(struct api_req *r);
    void *susp_ctx;
    void (*susp_free)(void *ctx);
} api_req_t;

typedef enum MHD_Result (*api_handler_fn)(api_req_t *r);

/* ------------------------------------------------------------ http.c */
/* The calling worker's connection (opened on first use); NULL on failure. */
db_t *api_req_db(api_req_t *r);
/* Query argument or NULL. */
const char *api_query(api_req_t *r, const char *name);
/* Request header or NULL. */
const char *api_header(api_req_t *r, const char *name);
/* Answers with `body` (stolen; NULL = no body) as application/json.
 * `location` (may be NULL) becomes the Location header. */
enum MHD_Result api_send_json(api_req_t *r, unsigned status, json_t *body, const char *location);
/* Sends a collection page: {"items": items, "total", "limit", "offset"}
 * (takes ownership of items). */
enum MHD_Result api_send_page(api_req_t *r, json_t *items, int64_t total, int limit, int offset);
/* Same with another Content-Type (e.g. "application/problem+json"). */
enum MHD_Result api_send_typed(api_req_t *r, unsigned status, json_t *body, const char *location, const char *ctype);
/* Answers with a text body (stolen, malloc'd) of content type ctype. */
enum MHD_Result api_send_text(api_req_t *r, unsigned status, char *text, const char *ctype);
/* Answers 204 No Content. */
enum MHD_Result api_send_empty(api_req_t *r, unsigned status);
/* Parses the body as a JSON object. On failure answers 400 and returns
 * NULL with *ret set to the value the handler must return. New reference. */
json_t *api_body_object(api_req_t *r, enum MHD_Result *ret);
/* Parses ?limit= and ?offset= (defaults, bounds). On failure answers 400
 * and returns -1 with *ret set. */
int api_paging(api_req_t *r, int *limit, int *offset, enum MHD_Result *ret);
/* Runs fn(r, db, body) inside BEGIN IMMEDIATE; whatever fn did not commit is
 * rolled back, so a rejected request changes nothing. */
typedef enum MHD_Result (*api_tx_fn)(api_req_t *r, db_t *db, json_t *body);
enum MHD_Result api_in_tx(api_req_t *r, db_t *db, api_tx_fn fn, json_t *body);
/* Parses the body as a JSON object (answering 400/415 on failure), then
 * api_in_tx with it. */
enum MHD_Result api_with_body_tx(api_req_t *r, api_tx_fn fn);
/* true if an object of `obj_domain` is visible to the caller. */
bool api_domain_visible(const api_req_t *r, const char *obj_domain);
/* true if device r->id exists in the caller's domains; otherwise answers
 * (404, or the db error) into *ret and returns false. (devices.c) */
bool api_device_visible(api_req_t *r, db_t *db, enum MHD_Result *ret);

/* ----------------------------------------------------------- problem.c */
/* Validation errors gathered before answering. Each error carries a status:
 * 400 (shape/type), 422 (semantics) or 409 (conflict); the answer has the
 * most basic one (400 before 422 before 409). */
typedef struct {
    json_t *errors;               /* array of {field, message} */
    unsigned status;              /* 0 = no error yet */
} api_verr_t;

void api_verr_init(api_verr_t *v);
void api_verr_free(api_verr_t *v);
void api_verr_add(api_verr_t *v, unsigned status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
bool api_verr_any(const api_verr_t *v);
/* Answers the gathered errors as problem+json (takes them; v is reset). */
enum MHD_Result api_problem_verr(api_req_t *r, api_verr_t *v, const char *detail);
/* Answers application/problem+json. `errors` (stolen, may be NULL) is the
 * errors array. detail may be NULL. */
enum MHD_Result api_problem(api_req_t *r, unsigned status, const char *detail, json_t *errors);
/* Answers one error on one field. */
enum MHD_Result api_problem_field(api_req_t *r, unsigned status, const char *field, const char *message);
/* Maps a db result code to an answer (404 for SQLITE_NOTFOUND, 409 for
 * SQLITE_CONSTRAINT, 503 for SQLITE_BUSY, 500 otherwise). */
enum MHD_Result api_problem_db(api_req_t *r, int rc, const char *what);
const char *api_status_title(unsigned status);

/* -------------------------------------------------------------- json.c */
/* RFC 7396: returns a new reference to target with patch applied (target
 * is not modified; may be NULL). NULL on allocation failure. */
json_t *api_merge_patch(const json_t *target, const json_t *patch);
/* "2026-11-22T10:00:00.123Z" from unix ms; json null for 0 when
 * zero_is_null. New reference. */
json_t *api_json_time(int64_t ms, bool zero_is_null);
/* json string or null (new reference). */
json_t *api_json_str_or_null(const char *s);

/* Field readers for validation. Each returns true when the field is present
 * and non-null with the right type (value in *out); false when absent or
 * null; adds a 400 error to v on a wrong type (then also false). `field` is
 * the error's name for the field (e.g. "sms.number"). */
bool api_get_string(json_t *obj, const char *key, const char *field, api_verr_t *v, const char **out);
bool api_get_int(json_t *obj, const char *key, const char *field, api_verr_t *v, int64_t *out);
bool api_get_bool(json_t *obj, const char *key, const char *field, api_verr_t *v, bool *out);
bool api_get_object(json_t *obj, const char *key, const char *field, api_verr_t *v, json_t **out);
bool api_get_array(json_t *obj, const char *key, const char *field, api_verr_t *v, json_t **out);
/* Adds a 400 error for every key of obj not in `allowed` (NULL-terminated).
 * `prefix` is prepended to the field name ("sms." etc., may be ""). */
void api_check_unknown(json_t *obj, const char *const *allowed, const char *prefix, api_verr_t *v);
/* true if key is absent from obj or null. */
bool api_absent(json_t *o, const char *key);
/* What a request says about a write-only (secret) field of object o:
 * absent -> KEEP the stored value, null -> CLEAR, a string -> SET (*val,
 * borrowed from o). A wrong type adds a 400 error and gives KEEP. */
typedef enum { API_SECRET_KEEP, API_SECRET_CLEAR, API_SECRET_SET } api_secret_op_t;
api_secret_op_t api_secret_op(json_t *o, const char *key, const char *field, api_verr_t *v, const char **val);
/* true if key is present in obj (even as null). */
bool api_has(json_t *obj, const char *key);
/* Number of UTF-8 code points of s. */
size_t api_utf8_len(const char *s);
/* true if s has a control character (< 0x20 or 0x7f). */
bool api_has_ctl(const char *s);

/* ----------------------------------------------------------- events.c */
/* GET /api/v1/events (server-sent events, or ?format=json pages). */
enum MHD_Result api_events_get(api_req_t *r);
/* device_data.c: registration state and device operations (docs/management.md) */
enum MHD_Result api_device_registration_get(api_req_t *r);
enum MHD_Result api_device_observations_get(api_req_t *r);
enum MHD_Result api_device_values_get(api_req_t *r);
enum MHD_Result api_device_notifications_get(api_req_t *r);
enum MHD_Result api_device_op(api_req_t *r);
/* The registration object of a device (NULL when not registered). */
json_t *api_registration_json(db_t *db, int64_t device_id);
/* Starts the thread that wakes suspended streams and polls (nothing without
 * a bus). 0 or -1. */
int api_events_start(api_t *a);
/* Before MHD_stop_daemon: ends every stream and poll (resuming the suspended
 * ones) and joins the thread. */
void api_events_stop(api_t *a);
/* After MHD_stop_daemon (every client is gone by then). */
void api_events_free(api_t *a);

/* ----------------------------------------------------------- handlers */
enum MHD_Result api_health_get(api_req_t *r);
enum MHD_Result api_metrics_get(api_req_t *r);
enum MHD_Result api_auth_token_post(api_req_t *r);
enum MHD_Result api_auth_token_delete(api_req_t *r);
/* Authenticates the request (Bearer token); on failure answers 401 and
 * returns false with *ret set. */
bool api_auth_check(api_req_t *r, enum MHD_Result *ret);

enum MHD_Result api_servers_list(api_req_t *r);
enum MHD_Result api_servers_create(api_req_t *r);
enum MHD_Result api_servers_get(api_req_t *r);
enum MHD_Result api_servers_put(api_req_t *r);
enum MHD_Result api_servers_patch(api_req_t *r);
enum MHD_Result api_servers_delete(api_req_t *r);

enum MHD_Result api_devices_list(api_req_t *r);
enum MHD_Result api_devices_create(api_req_t *r);
enum MHD_Result api_devices_get(api_req_t *r);
enum MHD_Result api_devices_put(api_req_t *r);
enum MHD_Result api_devices_patch(api_req_t *r);
enum MHD_Result api_devices_delete(api_req_t *r);

enum MHD_Result api_bs_settings_get(api_req_t *r);
enum MHD_Result api_bs_settings_put(api_req_t *r);
enum MHD_Result api_bs_settings_patch(api_req_t *r);

/* groups.c: /groups, /groups/{id}/devices, setting values of groups and devices */
enum MHD_Result api_groups_list(api_req_t *r);
enum MHD_Result api_groups_create(api_req_t *r);
enum MHD_Result api_groups_get(api_req_t *r);
enum MHD_Result api_groups_put(api_req_t *r);
enum MHD_Result api_groups_patch(api_req_t *r);
enum MHD_Result api_groups_delete(api_req_t *r);
enum MHD_Result api_group_devices_list(api_req_t *r);
enum MHD_Result api_group_devices_add(api_req_t *r);
enum MHD_Result api_group_devices_remove(api_req_t *r);
enum MHD_Result api_device_groups_get(api_req_t *r);
/* /groups/{id}/setting-values and /devices/{id}/setting-values (by path) */
enum MHD_Result api_sv_get(api_req_t *r);
enum MHD_Result api_sv_put(api_req_t *r);
enum MHD_Result api_sv_patch(api_req_t *r);

/* tasks.c: /groups/{id}/tasks and /devices/{id}/tasks (by path) */
enum MHD_Result api_tasks_list(api_req_t *r);
enum MHD_Result api_tasks_create(api_req_t *r);
enum MHD_Result api_tasks_get(api_req_t *r);
enum MHD_Result api_tasks_put(api_req_t *r);
enum MHD_Result api_tasks_patch(api_req_t *r);
enum MHD_Result api_tasks_delete(api_req_t *r);

/* reports.c */
enum MHD_Result api_task_reports_list(api_req_t *r);
enum MHD_Result api_device_reports_list(api_req_t *r);
enum MHD_Result api_device_report_get(api_req_t *r);

/* true if the request path is under /api/v1/groups/ (else /api/v1/devices/). */
bool api_path_is_group(const api_req_t *r);
/* Parses an ISO-8601 time ("2026-11-22T10:00:00Z", optional fraction of a
 * second, "Z" or an offset "+02:00") into unix ms. */
bool api_parse_time(const char *s, int64_t *ms);

/* ------------------------------------------------------------ servers.c */
/* Normalises an LwM2M server URI (scheme from the security mode and
 * transport, default port from the server type). Returns a malloc'd string
 * (caller frees), or NULL with msg filled. */
char *api_server_uri_normalise(const char *in, int security_mode, int type, int transport, char *msg, size_t msglen);

#endif
