-- 0003_registry: the registration interface (docs/management.md).
-- Applied by db_migrate() inside one transaction. Never edit once landed.

-- One live registration per device. `location` is the id in /rd/{location};
-- times are unix ms. Rows are written by the network loop on Register and
-- Update (batched per loop pass) and deleted on De-register and expiry; they
-- are loaded at start so that a restart keeps devices registered.
CREATE TABLE registrations (
    device_id        INTEGER PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    location         INTEGER NOT NULL UNIQUE,
    endpoint         TEXT NOT NULL,
    lifetime         INTEGER NOT NULL,
    lwm2m_version    TEXT NOT NULL,
    binding          TEXT NOT NULL,
    queue_mode       INTEGER NOT NULL DEFAULT 0,
    sms              TEXT,
    object_links     TEXT NOT NULL,
    content_formats  TEXT NOT NULL DEFAULT '[]',   -- JSON array of CF ids from the root link
    transport        TEXT NOT NULL DEFAULT 'udp',
    secure           INTEGER NOT NULL DEFAULT 0,
    psk_identity     TEXT,
    address          TEXT NOT NULL DEFAULT '',
    registered_at    INTEGER NOT NULL,
    last_update_at   INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL
);

-- Observations lwdm holds on devices (re-established after a re-Register).
CREATE TABLE observations (
    device_id            INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    path                 TEXT NOT NULL,
    attributes           TEXT NOT NULL DEFAULT '{}',
    created_at           INTEGER NOT NULL,
    last_notification_at INTEGER,
    notifications        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, path)
);

-- Last known value of each resource (from reads and notifications): the
-- record as JSON ({"path","name","type","value"}).
CREATE TABLE resource_values (
    device_id  INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    path       TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, path)
);

-- Notification history, bounded per device (the oldest rows beyond the
-- limit are deleted when a new one is stored).
CREATE TABLE notifications (
    id         INTEGER PRIMARY KEY,
    device_id  INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    path       TEXT NOT NULL,
    at         INTEGER NOT NULL,
    records    TEXT NOT NULL
);
CREATE INDEX notifications_device ON notifications(device_id, id);
