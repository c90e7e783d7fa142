-- 0002_tasks: device groups (priority, bootstrap group), task settings,
-- setting values, task reports and their execution log (TASKS.md).
-- Applied by db_migrate() inside one transaction. Never edit once landed.

-- ------------------------------------------------------------------ groups
-- priority: among unrelated groups that define the same setting value, the
-- lower number wins (then the lower id). is_bootstrap: the domain's bootstrap
-- group (exactly one per domain, top level; db_group_bootstrap creates it on
-- demand for a new domain).
ALTER TABLE groups ADD COLUMN priority INTEGER NOT NULL DEFAULT 10;
ALTER TABLE groups ADD COLUMN is_bootstrap INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX groups_bootstrap ON groups(domain) WHERE is_bootstrap = 1;
CREATE INDEX groups_parent ON groups(parent_id);

-- The root domain's bootstrap group (a top-level group already named
-- "bootstrap" becomes it).
UPDATE groups SET is_bootstrap = 1
 WHERE id = (SELECT min(id) FROM groups WHERE domain = '/' AND parent_id IS NULL AND name = 'bootstrap');
INSERT INTO groups (domain, parent_id, name, description, created_at, updated_at, is_bootstrap)
SELECT '/', NULL, 'bootstrap', 'devices that bootstrap in this domain',
       CAST(strftime('%s', 'now') AS INTEGER) * 1000, CAST(strftime('%s', 'now') AS INTEGER) * 1000, 1
 WHERE NOT EXISTS (SELECT 1 FROM groups WHERE domain = '/' AND is_bootstrap = 1);

-- ------------------------------------------------------------------- tasks
-- execution: 'once' runs in one session per device, then stays done;
-- 'onceAndRepeat' runs again when restarted (automatic_restart: in every new
-- session; repeat_on_bootstrap / repeat_on_register: on those events).
-- condition: a template "${...}" that must hold for the task to run ('' = none).
-- not_before / not_after: unix ms window (NULL = open). min_interval_s: the
-- least time between two starts on one device. managed_by: set when the server
-- maintains the task (e.g. 'bootstrap-settings'); such tasks are read-only
-- through the API.
ALTER TABLE tasks ADD COLUMN execution TEXT NOT NULL DEFAULT 'onceAndRepeat'
    CHECK (execution IN ('once', 'onceAndRepeat'));
ALTER TABLE tasks ADD COLUMN automatic_restart INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN repeat_on_bootstrap INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN repeat_on_register INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN condition TEXT NOT NULL DEFAULT '';
ALTER TABLE tasks ADD COLUMN priority INTEGER NOT NULL DEFAULT 10;
ALTER TABLE tasks ADD COLUMN min_interval_s INTEGER NOT NULL DEFAULT 0 CHECK (min_interval_s >= 0);
ALTER TABLE tasks ADD COLUMN applies_to_subgroups INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN not_before INTEGER;
ALTER TABLE tasks ADD COLUMN not_after INTEGER;
ALTER TABLE tasks ADD COLUMN managed_by TEXT;
CREATE INDEX tasks_order ON tasks(priority, created_at, id);

-- ---------------------------------------------------------- setting values
-- name/value pairs on a group or on a device (read in tasks as sv.NAME),
-- inherited down the group tree; the device's own values win.
CREATE TABLE setting_values (
    id        INTEGER PRIMARY KEY,
    group_id  INTEGER REFERENCES groups(id) ON DELETE CASCADE,
    device_id INTEGER REFERENCES devices(id) ON DELETE CASCADE,
    name      TEXT NOT NULL,
    value     TEXT NOT NULL,
    CHECK ((group_id IS NULL) <> (device_id IS NULL))
);
CREATE UNIQUE INDEX setting_values_group ON setting_values(group_id, name) WHERE group_id IS NOT NULL;
CREATE UNIQUE INDEX setting_values_device ON setting_values(device_id, name) WHERE device_id IS NOT NULL;

-- ------------------------------------------------------------ task reports
-- One per task per device: the state of its last run.
CREATE TABLE task_reports (
    id             INTEGER PRIMARY KEY,
    task_id        INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    device_id      INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    status         TEXT NOT NULL DEFAULT 'NOT_STARTED'
                   CHECK (status IN ('NOT_STARTED', 'IN_PROGRESS', 'SUCCESS', 'WARNING', 'ERROR')),
    started_at     INTEGER,
    finished_at    INTEGER,
    summary        TEXT NOT NULL DEFAULT '',
    variables_json TEXT NOT NULL DEFAULT '{}',
    runs           INTEGER NOT NULL DEFAULT 0,
    session_kind   TEXT CHECK (session_kind IS NULL OR session_kind IN ('bootstrap', 'management')),
    updated_at     INTEGER NOT NULL,
    UNIQUE (task_id, device_id)
);
CREATE INDEX task_reports_device ON task_reports(device_id);
CREATE INDEX task_reports_status ON task_reports(status);

-- The execution log of a report's last run (one line per step).
CREATE TABLE task_log (
    report_id INTEGER NOT NULL REFERENCES task_reports(id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,
    at        INTEGER NOT NULL,
    level     TEXT NOT NULL DEFAULT 'info',
    step      TEXT NOT NULL DEFAULT '',
    sent      TEXT,
    received  TEXT,
    code      TEXT,
    message   TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (report_id, seq)
);
CREATE INDEX task_log_report_at ON task_log(report_id, at);
