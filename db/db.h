/* db: SQLite access for lwdm. One db_t is one connection, used by one thread
 * (the network loop has its own; each HTTP worker thread has its own).
 * WAL mode, busy_timeout, foreign keys on. Schema only through migrations/
 * (embedded at build time), applied by db_migrate() inside a transaction.
 *
 * Errors: functions return SQLite result codes (SQLITE_OK on success);
 * SQLITE_NOTFOUND when a row does not exist; SQLITE_CONSTRAINT for uniqueness
 * violations. The API maps them to problem+json once, at its edge.
 *
 * Secrets (server PSKs and API passwords, device PSKs) are passed in and out of
 * this layer in plain text and stored encrypted (libsodium secretbox with the
 * key given to db_open). */
#ifndef LWDM_DB_H
#define LWDM_DB_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct db db_t;
struct sqlite3;

#define DB_KEY_BYTES 32

/* ------------------------------------------------------------- lifecycle */
/* Opens (creating if needed) the database at `path`. `key` (32 bytes) is
 * copied. On failure *out is NULL and err holds a message. */
int db_open(const char *path, const uint8_t key[DB_KEY_BYTES], db_t **out, char *err, size_t errlen);
void db_close(db_t **db);
/* Applies every embedded migration not yet applied, in order, in one
 * transaction (all or nothing). Sets *applied to the number applied. */
int db_migrate(db_t *db, int *applied, char *err, size_t errlen);
struct sqlite3 *db_handle(db_t *db);
int db_begin(db_t *db);    /* BEGIN IMMEDIATE */
int db_commit(db_t *db);
int db_rollback(db_t *db);
/* true while a transaction is open on this connection (the loop's modules
 * share one per-pass transaction: whoever needs it first begins it). */
bool db_in_transaction(db_t *db);
/* SQLite online backup of the open database into `dest_path`. */
int db_backup(db_t *db, const char *dest_path, char *err, size_t errlen);

/* Loads the secret key: from `env_value` when non-NULL and non-empty (64 hex
 * chars or base64 of 32 bytes), else from the key file `<db_path>.key`,
 * creating it with mode 0600 and a random key if it does not exist. */
int db_secret_key_load(const char *db_path, const char *env_value, uint8_t key[DB_KEY_BYTES], char *err, size_t errlen);

/* Configuration generation: bumped (process-wide, atomically) by every write
 * to lwm2m_servers or bootstrap settings, so the network loop can cache them. */
uint64_t db_config_generation(void);
void db_config_changed(void);
/* Moves on after every committed write that can change what
 * db_device_task_candidates() returns or how a candidate resumes (tasks,
 * groups, memberships, task reports): a cached "this device has nothing to
 * run" holds while it stays the same. Process-wide, like the config one. */
uint64_t db_tasks_generation(void);

/* ---------------------------------------------------------- lwm2m servers */
typedef enum { DB_SRV_MANAGEMENT = 0, DB_SRV_BOOTSTRAP = 1 } db_server_type_t;
typedef enum { DB_TRANSPORT_UDP = 0, DB_TRANSPORT_TCP = 1 } db_transport_t;
typedef enum { DB_SEC_NOSEC = 0, DB_SEC_PSK, DB_SEC_CERT, DB_SEC_CERT_EST } db_security_mode_t;

typedef struct {
    int64_t id;
    char *domain;                 /* "/" */
    char *name;
    int type;                     /* db_server_type_t */
    int transport;                /* db_transport_t */
    int ssid;                     /* 1..65534; 0 = not set (bootstrap servers) */
    char *uri;                    /* full, with scheme and port */
    int64_t client_hold_off_time; /* seconds; -1 = not set */
    int64_t bootstrap_account_timeout; /* seconds; -1 = not set */
    char binding[4];              /* U UQ S SQ US UQS */
    int64_t lifetime;             /* seconds */
    bool store_notifications;
    int security_mode;            /* db_security_mode_t */
    char *psk_identity;           /* NULL = not set; may be an expression */
    char *psk;                    /* secret; NULL = not set; may be an expression */
    uint8_t *server_cert;         /* DER; NULL = not set */
    size_t server_cert_len;
    bool sms_enabled;
    char *sms_number;             /* NULL = not set */
    int sms_security_mode;        /* -1 = not set */
    bool configure_device_on_target;
    bool provision_credentials;
    char *prov_api_uri;           /* NULL = not set */
    char *prov_user;
    char *prov_password;          /* secret */
    int64_t created_at, updated_at; /* unix ms */
} db_server_t;

void db_server_free(db_server_t *s);        /* frees the fields, not s; zeroes it */
void db_server_list_free(db_server_t **list, size_t n);
/* Inserts; sets s->id, created_at, updated_at. */
int db_server_insert(db_t *db, db_server_t *s);
/* Replaces every field of row s->id; sets updated_at. SQLITE_NOTFOUND if none. */
int db_server_update(db_t *db, db_server_t *s);
int db_server_get(db_t *db, int64_t id, db_server_t *out);
/* q matches name, uri, psk identity (case-insensitive substring); NULL = all.
 * Sorted by id. limit <= 0 means no limit. `domain` selects that domain and
 * its subdomains (NULL = every domain). *out is an array of *n entries,
 * caller frees with db_server_list_free; *total (may be NULL) counts every
 * match ignoring limit/offset. */
int db_server_list(db_t *db, const char *domain, const char *q, int limit, int offset,
                   db_server_t **out, size_t *n, int64_t *total);
int db_server_delete(db_t *db, int64_t id);
/* true if another server (id != exclude_id) of the domain uses ssid */
int db_server_ssid_taken(db_t *db, const char *domain, int ssid, int64_t exclude_id, bool *taken);
/* (added) Like db_server_ssid_taken, but says which server: SQLITE_OK with
 * its id and name (malloc'd, caller frees; either out may be NULL), or
 * SQLITE_NOTFOUND. */
int db_server_find_by_ssid(db_t *db, const char *domain, int ssid, int64_t exclude_id, int64_t *id_out,
                           char **name_out);
/* (added) The server named `name` in exactly `domain`; SQLITE_NOTFOUND if none. */
int db_server_get_by_name(db_t *db, const char *domain, const char *name, db_server_t *out);
/* Tasks and task templates that reference the server (by id or name), which a
 * delete takes with it. Returns arrays of {id, name} as JSON text
 * (`{"tasks":[{"id":..,"name":..,"groupId":..}],"taskTemplates":[...]}`),
 * malloc'd. */
int db_server_dependents(db_t *db, int64_t id, char **json_out);

/* --------------------------------------------------- bootstrap settings */
typedef struct {
    int64_t bootstrap_server_id;  /* 0 = none selected */
    int64_t *management_server_ids;
    size_t n_management;
    bool accept_unknown;          /* create unknown devices that bootstrap over plain CoAP */
    int64_t task_id;              /* group task it maintains (issue 3); 0 = none */
    int64_t updated_at;
} db_bs_settings_t;

void db_bs_settings_free(db_bs_settings_t *s);
/* Missing row: returns SQLITE_OK with an empty settings object (accept_unknown false). */
int db_bs_settings_get(db_t *db, const char *domain, db_bs_settings_t *out);
int db_bs_settings_put(db_t *db, const char *domain, const db_bs_settings_t *s);
/* Keeps the group task that carries the domain's bootstrap settings in step
 * with them (TASKS.md "Where bootstrap logic comes from"): on the domain's
 * bootstrap group, managed_by "bootstrap-settings", "Once and repeat" with
 * automatic restart, priority 100 (after operators' own tasks of the default
 * priority), configuration
 *   <lwm2mBootstrapCleanse/> + one <lwm2mBootstrapConfiguration serverId=../>
 *   per management server (then the selected bootstrap server) +
 *   <lwm2mBootstrap performBootstrapFinish="true"/>.
 * Settings with no server delete the task. Records its id in the settings.
 * Call after every change of the settings or of a server they use. */
int db_bs_settings_sync_task(db_t *db, const char *domain);
#define DB_BS_SETTINGS_MANAGED_BY "bootstrap-settings"
#define DB_BS_SETTINGS_TASK_NAME "LwM2M bootstrap settings"
#define DB_BS_SETTINGS_TASK_PRIORITY 100

/* ---------------------------------------------------------------- devices */
typedef struct {
    int security_mode;            /* db_security_mode_t (nosec or psk so far) */
    char *psk_identity;           /* NULL = not set */
    uint8_t *psk;                 /* secret, raw bytes; NULL = not set */
    size_t psk_len;
} db_credentials_t;

typedef struct {
    int64_t id;
    char *endpoint;
    char *domain;
    db_credentials_t bs;          /* to reach our bootstrap port */
    db_credentials_t mgmt;        /* to reach our management port */
    char *properties_json;        /* JSON object text, "{}" by default */
    bool blacklisted;
    bool auto_created;
    int64_t created_at, updated_at;
    int64_t last_bootstrap_at;    /* unix ms, 0 = never */
    char *last_bootstrap_status;  /* "in_progress" | "success" | "failed" | NULL */
    char *last_bootstrap_json;    /* JSON array of steps, NULL = none */
    int64_t last_registration_at, last_contact_at;
} db_device_t;

void db_device_free(db_device_t *d);
void db_device_list_free(db_device_t **list, size_t n);
/* Inserts; sets id and timestamps. SQLITE_CONSTRAINT if the endpoint (per
 * domain) or a PSK identity is already used. */
int db_device_insert(db_t *db, db_device_t *d);
/* Replaces the editable fields (endpoint, credentials, properties, blacklisted). */
int db_device_update(db_t *db, db_device_t *d);
int db_device_get(db_t *db, int64_t id, db_device_t *out);
int db_device_get_by_endpoint(db_t *db, const char *domain, const char *endpoint, db_device_t *out);
/* Finds the device whose bootstrap PSK identity is `identity` (len bytes, not
 * NUL-terminated). */
int db_device_get_by_bs_identity(db_t *db, const void *identity, size_t len, db_device_t *out);
/* Finds the device whose management PSK identity (or a per-server credential
 * identity) is `identity`. */
int db_device_get_by_mgmt_identity(db_t *db, const void *identity, size_t len, db_device_t *out);
/* q matches the endpoint (case-insensitive substring); domain, limit, offset,
 * ordering and freeing as db_server_list. */
int db_device_list(db_t *db, const char *domain, const char *q, int limit, int offset,
                   db_device_t **out, size_t *n, int64_t *total);
/* The same, filtered by registration: state 1 = with a live registration,
 * -1 = without, 0 = all. */
int db_device_list_state(db_t *db, const char *domain, const char *q, int state, int limit, int offset,
                         db_device_t **out, size_t *n, int64_t *total);
int db_device_delete(db_t *db, int64_t id);
/* Records the outcome of a bootstrap: time (unix ms), status and steps JSON. */
int db_device_set_bootstrap(db_t *db, int64_t id, int64_t at_ms, const char *status, const char *steps_json);

/* Per-device credentials generated for a server whose PSK is an expression
 * (e.g. ${string.secureRandom(16)}): created once, then reused. */
int db_device_server_cred_get(db_t *db, int64_t device_id, int64_t server_id, db_credentials_t *out);
int db_device_server_cred_put(db_t *db, int64_t device_id, int64_t server_id, const db_credentials_t *c);
void db_credentials_free(db_credentials_t *c);
/* (added) Every per-server credential of a device, sorted by server id.
 * Caller frees with db_server_cred_list_free. */
typedef struct {
    int64_t server_id;
    db_credentials_t cred;
} db_server_cred_t;
int db_device_server_cred_list(db_t *db, int64_t device_id, db_server_cred_t **out, size_t *n);
void db_server_cred_list_free(db_server_cred_t **list, size_t n);
/* (added) Records a registration and/or a contact (unix ms; 0 = leave as is). */
int db_device_set_seen(db_t *db, int64_t id, int64_t registration_at_ms, int64_t contact_at_ms);

/* ------------------------------------------------------------------ groups
 * Device groups form a tree per domain (parent_id, names unique among
 * siblings). Each domain has exactly one bootstrap group (top level, never
 * moved under another group, never deleted). */
typedef struct {
    int64_t id;
    char *domain;
    int64_t parent_id;            /* 0 = top level */
    char *name;
    char *description;            /* "" by default */
    int priority;                 /* lower wins among unrelated groups; default 10 */
    bool is_bootstrap;            /* read-only: the domain's bootstrap group */
    int64_t n_devices;            /* read-only: direct members (filled by get/list) */
    int64_t created_at, updated_at;
} db_group_t;

void db_group_free(db_group_t *g);
void db_group_list_free(db_group_t **list, size_t n);
/* Inserts (domain, parent_id, name, description, priority; is_bootstrap is
 * ignored); sets id and times. SQLITE_CONSTRAINT when the name is taken among
 * its siblings; SQLITE_NOTFOUND when parent_id names no group of the same
 * domain. */
int db_group_insert(db_t *db, db_group_t *g);
/* Replaces parent_id, name, description, priority of row g->id. As insert,
 * plus SQLITE_MISMATCH when the new parent is the group itself or one of its
 * descendants (a cycle), SQLITE_PERM when a parent is given to the bootstrap
 * group. */
int db_group_update(db_t *db, db_group_t *g);
int db_group_get(db_t *db, int64_t id, db_group_t *out);
/* q matches name and description; domain, paging, order and freeing as
 * db_server_list. */
int db_group_list(db_t *db, const char *domain, const char *q, int limit, int offset, db_group_t **out, size_t *n,
                  int64_t *total);
/* Deletes the group with its subgroups, memberships, tasks and setting values.
 * SQLITE_PERM for a bootstrap group. */
int db_group_delete(db_t *db, int64_t id);
/* *yes = true when `ancestor` is `id` itself or one of its ancestors. */
int db_group_is_ancestor(db_t *db, int64_t ancestor, int64_t id, bool *yes);
/* The bootstrap group of `domain`, created (named "bootstrap", or taking over a
 * top-level group of that name) when the domain has none. */
int db_group_bootstrap(db_t *db, const char *domain, int64_t *id);
/* The group named `name` in `domain` (the one nearest the top of the tree,
 * then the lowest id, when several subtrees use the name). SQLITE_NOTFOUND if
 * none. */
int db_group_find_by_name(db_t *db, const char *domain, const char *name, int64_t *id);

/* Membership. join is idempotent (SQLITE_OK when already a member; SQLITE_NOTFOUND
 * when the group or the device does not exist); leave is idempotent too. */
int db_group_join(db_t *db, int64_t group_id, int64_t device_id);
int db_group_leave(db_t *db, int64_t group_id, int64_t device_id);
int db_group_is_member(db_t *db, int64_t group_id, int64_t device_id, bool *yes);
/* Direct members of a group; q matches the endpoint. Paging and freeing as
 * db_device_list. */
int db_group_members(db_t *db, int64_t group_id, const char *q, int limit, int offset, db_device_t **out, size_t *n,
                     int64_t *total);
/* Ids of the groups the device is a direct member of, ascending (malloc'd,
 * NULL when none). */
int db_device_groups(db_t *db, int64_t device_id, int64_t **ids, size_t *n);

/* ---------------------------------------------------------- setting values
 * Name/value pairs (strings) owned by a group or by a device: pass exactly one
 * of group_id / device_id non-zero (SQLITE_MISUSE otherwise). Values travel as
 * a JSON object text {"name": "value", ...} with sorted keys. */
int db_setting_values_get(db_t *db, int64_t group_id, int64_t device_id, char **json_out);
/* Replaces every value of the owner with those of the JSON object (all values
 * must be strings: SQLITE_MISMATCH otherwise). */
int db_setting_values_put(db_t *db, int64_t group_id, int64_t device_id, const char *json_obj);
/* Sets one value; value NULL removes it. */
int db_setting_value_set(db_t *db, int64_t group_id, int64_t device_id, const char *name, const char *value);
/* The values a device's tasks see as sv.NAME: the values of every group the
 * device is in and of their ancestors, where a group overrides its ancestors;
 * among unrelated groups the lower priority number wins, then the lower group
 * id; the device's own values override everything. */
int db_device_setting_values(db_t *db, int64_t device_id, char **json_out);

/* ------------------------------------------------------------------- tasks */
typedef enum { DB_TASK_ONCE = 0, DB_TASK_ONCE_AND_REPEAT = 1 } db_task_execution_t;

typedef struct {
    int64_t id;
    char *domain;                 /* the group's or device's domain */
    int64_t group_id;             /* exactly one of group_id / device_id is non-zero */
    int64_t device_id;
    char *name;
    char *config_xml;
    bool active;
    int execution;                /* db_task_execution_t */
    bool automatic_restart, repeat_on_bootstrap, repeat_on_register;
    char *condition;              /* template "${...}"; "" = none */
    int priority;                 /* lower runs first; default 10 */
    int64_t min_interval_s;       /* least seconds between two starts on one device */
    bool applies_to_subgroups;    /* group tasks: also for members of subgroups */
    int64_t not_before, not_after; /* unix ms; 0 = open */
    char *managed_by;             /* NULL, or e.g. "bootstrap-settings" */
    int64_t *server_ids;          /* task_server_refs (LwM2M servers the config names) */
    size_t n_server_ids;
    int64_t created_at, updated_at;
} db_task_t;

void db_task_free(db_task_t *t);
void db_task_list_free(db_task_t **list, size_t n);
/* Inserts with its server references (t->server_ids); sets id and times.
 * domain NULL = the owner's domain. SQLITE_NOTFOUND when the owner group /
 * device or a referenced server does not exist. */
int db_task_insert(db_t *db, db_task_t *t);
/* Replaces every field but domain, owner and created_at of row t->id, and the
 * server references. */
int db_task_update(db_t *db, db_task_t *t);
int db_task_get(db_t *db, int64_t id, db_task_t *out);
/* Tasks of one group (group_id) or one device (device_id), by id; q matches the
 * name. Paging and freeing as db_server_list. */
int db_task_list(db_t *db, int64_t group_id, int64_t device_id, const char *q, int limit, int offset, db_task_t **out,
                 size_t *n, int64_t *total);
int db_task_delete(db_t *db, int64_t id);
/* Resolves the LwM2M servers a task configuration names (task_program_t's
 * server_ids and server_names) for a task of `domain`: an id must be a server
 * of the domain or of an ancestor domain; a name is looked up in the domain,
 * then in its ancestors. *out: the distinct ids, ascending (malloc'd).
 * SQLITE_NOTFOUND when one does not resolve; `bad` (may be NULL) then says
 * which, e.g. "serverId 12" or "serverName 'dm'". */
int db_task_resolve_servers(db_t *db, const char *domain, const int64_t *ids, size_t n_ids, char *const *names,
                            size_t n_names, int64_t **out, size_t *n_out, char *bad, size_t badlen);

/* For the scheduler: one task that applies to a device, with the device's
 * report for it. */
typedef struct {
    db_task_t task;
    int64_t report_id;            /* 0 = no report yet (never started) */
    char status[16];              /* "" when no report, else NOT_STARTED .. ERROR */
    int64_t runs;
    int64_t started_at, finished_at; /* unix ms; 0 = not yet */
    char session_kind[16];        /* "bootstrap" | "management" | "" */
} db_task_candidate_t;

/* Every ACTIVE task that applies to the device: its own tasks, the tasks of
 * the groups it is a member of, and the tasks with applies_to_subgroups of the
 * ancestors of those groups; ordered by priority, then created_at, then id.
 * Conditions, windows, intervals and execution flags are left to the caller. */
int db_device_task_candidates(db_t *db, int64_t device_id, db_task_candidate_t **out, size_t *n);
void db_task_candidates_free(db_task_candidate_t **c, size_t n);

/* ------------------------------------------------------------ task reports
 * One report per task per device (the state of the last run) and the log of
 * that run. Statuses: NOT_STARTED, IN_PROGRESS, SUCCESS, WARNING, ERROR. */
#define DB_REPORT_STATUS_COUNT 5
extern const char *const db_report_statuses[DB_REPORT_STATUS_COUNT]; /* in that order */

typedef struct {
    int64_t id;                   /* 0 for a device that has no report yet (NOT_STARTED) */
    int64_t task_id, device_id;
    char *endpoint;               /* the device's */
    char *task_name;
    int64_t task_group_id;        /* the task's owner */
    int64_t task_device_id;
    char status[16];
    int64_t started_at, finished_at; /* unix ms; 0 = not yet */
    char *summary;                /* "" */
    char *variables_json;         /* JSON object text, "{}" */
    int64_t runs;
    char session_kind[16];        /* "bootstrap" | "management" | "" */
    int64_t updated_at;
} db_report_t;

typedef struct {
    int64_t seq, at;              /* 1.. within the run; unix ms */
    char *level, *step, *sent, *received, *code, *message; /* sent/received/code may be NULL */
} db_report_line_t;

void db_report_free(db_report_t *r);
void db_report_list_free(db_report_t **list, size_t n);
void db_report_lines_free(db_report_line_t **lines, size_t n);

/* A run starts: creates the report or restarts it (status IN_PROGRESS,
 * started_at = at_ms, finished_at cleared, summary "", variables {}, runs + 1,
 * session_kind "bootstrap" | "management") and deletes the previous run's log. */
int db_report_start(db_t *db, int64_t task_id, int64_t device_id, const char *session_kind, int64_t at_ms,
                    int64_t *report_id);
/* Appends one log line (level e.g. "info" | "warning" | "error"; step e.g.
 * "set line 4"; sent/received/code may be NULL). SQLITE_NOTFOUND if no report. */
int db_report_log(db_t *db, int64_t report_id, int64_t at_ms, const char *level, const char *step, const char *sent,
                  const char *received, const char *code, const char *message);
/* A run ends: status SUCCESS | WARNING | ERROR, or IN_PROGRESS for a run that
 * stops in this session without finishing the task (finished_at stays unset)
 * (SQLITE_MISUSE otherwise),
 * summary (NULL = ""), variables (JSON object text; NULL keeps them). */
int db_report_finish(db_t *db, int64_t report_id, const char *status, const char *summary, const char *variables_json,
                     int64_t at_ms);
/* At server start: every IN_PROGRESS report gets the log line "interrupted by
 * a server restart" (level warning) and stays IN_PROGRESS, so the scheduler
 * restarts it in the device's next session (a run is never silently lost).
 * *count (may be NULL) = the reports marked. */
int db_reports_mark_interrupted(db_t *db, int64_t at_ms, int *count);
int db_report_get(db_t *db, int64_t report_id, db_report_t *out);
/* The log of a report's last run, by seq. */
int db_report_lines(db_t *db, int64_t report_id, db_report_line_t **out, size_t *n);
/* Per-device reports of a task: the existing reports plus a NOT_STARTED entry
 * (id 0) for each target device without one (members of the task's group, and
 * of its subgroups when applies_to_subgroups; or the task's device), by device
 * id. status NULL = all. counts (may be NULL) gets the number per status over
 * all of them, in db_report_statuses order. */
int db_task_reports(db_t *db, int64_t task_id, const char *status, int limit, int offset, db_report_t **out,
                    size_t *n, int64_t *total, int64_t counts[DB_REPORT_STATUS_COUNT]);
/* The reports of a device (every task that ran on it), by report id. */
int db_device_reports(db_t *db, int64_t device_id, int limit, int offset, db_report_t **out, size_t *n,
                      int64_t *total);

/* Device property written by a task (<store type="devProp">): sets
 * properties[name] = value; value NULL removes it. */
int db_device_set_property(db_t *db, int64_t device_id, const char *name, const char *value);

/* ------------------------------------------------------- users and tokens */
int db_user_count(db_t *db, int64_t *n);
/* Hashes with argon2id (crypto_pwhash_str). SQLITE_CONSTRAINT if taken. */
int db_user_create(db_t *db, const char *username, const char *password, const char *domain, int64_t *id_out);
/* SQLITE_OK and *user_id when the password matches; SQLITE_AUTH otherwise. */
int db_user_verify(db_t *db, const char *username, const char *password, int64_t *user_id);
/* Creates a random bearer token (returned in token_out, 64 hex chars + NUL),
 * stored hashed, valid for ttl_s seconds (0 = no expiry). */
int db_token_create(db_t *db, int64_t user_id, int64_t ttl_s, char token_out[65]);
/* SQLITE_OK with user id and domain (copied into domain_out) if valid; SQLITE_AUTH otherwise. */
int db_token_check(db_t *db, const char *token, int64_t *user_id, char *domain_out, size_t domain_cap);
/* (added) Deletes a token; SQLITE_NOTFOUND if it does not exist. */
int db_token_revoke(db_t *db, const char *token);

/* ---------------------------------------------------------------- misc */
int64_t db_now_ms(void);
/* Key/value settings of the server itself (e.g. "first_run_done"). */
int db_kv_get(db_t *db, const char *key, char **value_out); /* SQLITE_NOTFOUND if absent */
int db_kv_set(db_t *db, const char *key, const char *value);


/* ---------------------------------------------------------- registrations
 * The registration interface's state (docs/management.md): one row per
 * registered device, observations, last known values and the bounded
 * notification history. Written by the network loop only; the REST API
 * reads. Times are unix ms. */
typedef struct {
    int64_t device_id;
    int64_t location;             /* /rd/{location} */
    char *endpoint;
    int64_t lifetime;             /* seconds */
    char *lwm2m_version;          /* "1.0", "1.1", "1.2" */
    char *binding;                /* normalised transports, e.g. "U", "UT" */
    bool queue_mode;
    char *sms;                    /* NULL = none */
    char *object_links;           /* the Register/Update payload as received */
    char *content_formats;        /* JSON array text, e.g. "[110,112]" */
    char *transport;              /* "udp" */
    bool secure;
    char *psk_identity;           /* NULL on plain CoAP */
    char *address;                /* "ip:port" of the last message */
    int64_t registered_at, last_update_at, expires_at;
} db_registration_t;
void db_registration_free(db_registration_t *r);
void db_registration_list_free(db_registration_t **list, size_t n);
/* Inserts or replaces the row of r->device_id. */
int db_registration_put(db_t *db, const db_registration_t *r);
int db_registration_get(db_t *db, int64_t device_id, db_registration_t *out); /* SQLITE_NOTFOUND */
int db_registration_delete(db_t *db, int64_t device_id);
/* Every row, by location (start-up load). */
int db_registration_list(db_t *db, db_registration_t **out, size_t *n);
/* Registered devices whose expires_at is after now_ms. */
int db_registration_count(db_t *db, int64_t now_ms, int64_t *count);

typedef struct {
    int64_t device_id;
    char *path;
    char *attributes;             /* JSON object text */
    int64_t created_at, last_notification_at;
    int64_t notifications;
} db_observation_t;
void db_observation_list_free(db_observation_t **list, size_t n);
int db_observation_put(db_t *db, int64_t device_id, const char *path, const char *attributes_json, int64_t at_ms);
int db_observation_delete(db_t *db, int64_t device_id, const char *path); /* SQLITE_NOTFOUND if none */
int db_observation_list(db_t *db, int64_t device_id, db_observation_t **out, size_t *n);
/* A notification: counts it on its observation, appends it to the history
 * (keeping the newest `keep` per device) and stores each record as the
 * latest value. values_json is a JSON array of {"path",...} records. */
int db_notification_add(db_t *db, int64_t device_id, const char *path, int64_t at_ms, const char *records_json,
                        int keep);
/* Latest values (from reads too): upserts each record of the JSON array. */
int db_values_put(db_t *db, int64_t device_id, int64_t at_ms, const char *records_json);
/* Latest values at or below `path_prefix` ("/3/0"; NULL = all) as a JSON
 * array text [{"path",...,"updatedAt"}] sorted by path (malloc'd). */
int db_values_get(db_t *db, int64_t device_id, const char *path_prefix, char **json_out);
/* Notification history, newest first, optionally of one path prefix, as a JSON
 * array text [{"path","at","records":[...]}] (malloc'd). */
int db_notifications_get(db_t *db, int64_t device_id, const char *path_prefix, int limit, char **json_out);

#endif
