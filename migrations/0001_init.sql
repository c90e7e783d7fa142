-- 0001_init: the first schema of lwdm.
-- Applied by db_migrate() inside one transaction. Never edit this file once it
-- has landed; change the schema with 0002_*.sql and later.
--
-- Conventions: times are unix milliseconds (INTEGER); booleans are 0/1;
-- secrets are libsodium secretbox blobs (24-byte nonce || ciphertext) in
-- columns named *_enc; domains are paths ("/", "/acme/", "/acme/plant1/").

CREATE TABLE domains (
    id          TEXT PRIMARY KEY,                 -- path, ends with '/'
    parent      TEXT REFERENCES domains(id) ON DELETE CASCADE,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    CHECK (substr(id, 1, 1) = '/' AND substr(id, -1, 1) = '/')
);
INSERT INTO domains (id, parent, description, created_at) VALUES ('/', NULL, 'root domain', 0);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,                  -- crypto_pwhash_str (argon2id)
    domain        TEXT NOT NULL REFERENCES domains(id),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY,
    token_hash  BLOB NOT NULL UNIQUE,             -- BLAKE2b-256 of the token text
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name        TEXT,                             -- long-lived API keys (later)
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER                           -- NULL = never
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);
CREATE INDEX api_tokens_expiry ON api_tokens(expires_at);

-- Every field of the "LwM2M servers" screen (seeds/lwm2m-servers-interface.rst).
CREATE TABLE lwm2m_servers (
    id                          INTEGER PRIMARY KEY,
    domain                      TEXT NOT NULL REFERENCES domains(id),
    name                        TEXT NOT NULL,
    type                        INTEGER NOT NULL CHECK (type IN (0, 1)),      -- 0 management, 1 bootstrap
    transport                   INTEGER NOT NULL CHECK (transport IN (0, 1)), -- 0 udp, 1 tcp
    ssid                        INTEGER CHECK (ssid IS NULL OR ssid BETWEEN 1 AND 65534),
    uri                         TEXT NOT NULL,    -- normalised: scheme and port always present
    client_hold_off_time        INTEGER,          -- seconds, NULL = not set
    bootstrap_account_timeout   INTEGER,          -- seconds, NULL = not set
    binding                     TEXT NOT NULL CHECK (binding IN ('U', 'UQ', 'S', 'SQ', 'US', 'UQS')),
    lifetime                    INTEGER NOT NULL CHECK (lifetime >= 1),
    store_notifications         INTEGER NOT NULL DEFAULT 0,
    security_mode               INTEGER NOT NULL CHECK (security_mode BETWEEN 0 AND 3), -- nosec psk cert certEst
    psk_identity                TEXT,             -- may be an expression; NULL = per device
    psk_enc                     BLOB,             -- secret (may hold an expression)
    server_cert                 BLOB,             -- DER
    sms_enabled                 INTEGER NOT NULL DEFAULT 0,
    sms_number                  TEXT,
    sms_security_mode           INTEGER,          -- /0/6: 1 dtls, 2 securePacket, 3 nosec
    configure_device_on_target  INTEGER NOT NULL DEFAULT 0,
    provision_credentials       INTEGER NOT NULL DEFAULT 0,
    prov_api_uri                TEXT,
    prov_user                   TEXT,
    prov_password_enc           BLOB,             -- secret
    created_at                  INTEGER NOT NULL,
    updated_at                  INTEGER NOT NULL,
    UNIQUE (domain, name)
);
CREATE UNIQUE INDEX lwm2m_servers_ssid ON lwm2m_servers(domain, ssid) WHERE ssid IS NOT NULL;

CREATE TABLE groups (
    id          INTEGER PRIMARY KEY,
    domain      TEXT NOT NULL REFERENCES domains(id),
    parent_id   INTEGER REFERENCES groups(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX groups_name ON groups(domain, ifnull(parent_id, 0), name);

CREATE TABLE devices (
    id                    INTEGER PRIMARY KEY,
    domain                TEXT NOT NULL REFERENCES domains(id),
    endpoint              TEXT NOT NULL,
    bs_security_mode      INTEGER NOT NULL DEFAULT 0,
    bs_psk_identity       TEXT,
    bs_psk_enc            BLOB,
    mgmt_security_mode    INTEGER NOT NULL DEFAULT 0,
    mgmt_psk_identity     TEXT,
    mgmt_psk_enc          BLOB,
    properties            TEXT NOT NULL DEFAULT '{}',   -- JSON object of strings
    blacklisted           INTEGER NOT NULL DEFAULT 0,
    auto_created          INTEGER NOT NULL DEFAULT 0,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    last_bootstrap_at     INTEGER,
    last_bootstrap_status TEXT,                         -- in_progress | success | failed
    last_bootstrap_steps  TEXT,                         -- JSON array
    last_registration_at  INTEGER,
    last_contact_at       INTEGER,
    UNIQUE (domain, endpoint)
);
CREATE UNIQUE INDEX devices_bs_identity ON devices(bs_psk_identity) WHERE bs_psk_identity IS NOT NULL;
CREATE UNIQUE INDEX devices_mgmt_identity ON devices(mgmt_psk_identity) WHERE mgmt_psk_identity IS NOT NULL;
CREATE INDEX devices_endpoint ON devices(endpoint);

-- Credentials generated per device for a server whose PSK is an expression.
CREATE TABLE device_server_credentials (
    device_id     INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    server_id     INTEGER NOT NULL REFERENCES lwm2m_servers(id) ON DELETE CASCADE,
    security_mode INTEGER NOT NULL,
    psk_identity  TEXT,
    psk_enc       BLOB,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (device_id, server_id)
);
CREATE INDEX device_server_credentials_identity ON device_server_credentials(psk_identity);
CREATE INDEX device_server_credentials_server ON device_server_credentials(server_id);

CREATE TABLE group_members (
    group_id  INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, device_id)
);
CREATE INDEX group_members_device ON group_members(device_id);

-- Tasks live on a group or on a single device.
CREATE TABLE tasks (
    id          INTEGER PRIMARY KEY,
    domain      TEXT NOT NULL REFERENCES domains(id),
    group_id    INTEGER REFERENCES groups(id) ON DELETE CASCADE,
    device_id   INTEGER REFERENCES devices(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    config_xml  TEXT NOT NULL DEFAULT '',
    active      INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    CHECK ((group_id IS NULL) <> (device_id IS NULL))
);
CREATE INDEX tasks_group ON tasks(group_id);
CREATE INDEX tasks_device ON tasks(device_id);

-- LwM2M servers a task's configuration refers to (by id or by name, resolved
-- when the task is saved): deleting a server deletes these tasks.
CREATE TABLE task_server_refs (
    task_id   INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    server_id INTEGER NOT NULL REFERENCES lwm2m_servers(id) ON DELETE CASCADE,
    PRIMARY KEY (task_id, server_id)
);
CREATE INDEX task_server_refs_server ON task_server_refs(server_id);

CREATE TABLE task_templates (
    id          INTEGER PRIMARY KEY,
    domain      TEXT NOT NULL REFERENCES domains(id),
    name        TEXT NOT NULL,
    config_xml  TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (domain, name)
);

CREATE TABLE task_template_server_refs (
    template_id INTEGER NOT NULL REFERENCES task_templates(id) ON DELETE CASCADE,
    server_id   INTEGER NOT NULL REFERENCES lwm2m_servers(id) ON DELETE CASCADE,
    PRIMARY KEY (template_id, server_id)
);
CREATE INDEX task_template_server_refs_server ON task_template_server_refs(server_id);

-- Bootstrap settings of a domain (Administration -> LwM2M bootstrap).
CREATE TABLE bootstrap_settings (
    domain              TEXT PRIMARY KEY REFERENCES domains(id) ON DELETE CASCADE,
    bootstrap_server_id INTEGER REFERENCES lwm2m_servers(id) ON DELETE SET NULL,
    accept_unknown      INTEGER NOT NULL DEFAULT 0,
    task_id             INTEGER REFERENCES tasks(id) ON DELETE SET NULL,
    updated_at          INTEGER NOT NULL
);

-- The management servers a bootstrapped device gets, in order.
CREATE TABLE bootstrap_settings_servers (
    domain    TEXT NOT NULL REFERENCES bootstrap_settings(domain) ON DELETE CASCADE,
    position  INTEGER NOT NULL,
    server_id INTEGER NOT NULL REFERENCES lwm2m_servers(id) ON DELETE CASCADE,
    PRIMARY KEY (domain, position),
    UNIQUE (domain, server_id)
);
CREATE INDEX bootstrap_settings_servers_server ON bootstrap_settings_servers(server_id);

-- Settings of the server itself (e.g. "first_run_done").
CREATE TABLE kv (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
