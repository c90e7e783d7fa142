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

#endif
