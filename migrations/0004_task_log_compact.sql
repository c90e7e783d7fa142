-- 0004_task_log_compact: one b-tree per task log line instead of three.
-- Applied by db_migrate() inside one transaction. Never edit once landed.
--
-- task_log was a rowid table with a PRIMARY KEY (report_id, seq) index and a
-- second index (report_id, at) that no query used: every logged step wrote
-- three b-trees. Lines are only ever read by report in seq order, so the
-- primary key is the table (WITHOUT ROWID) and the extra index goes.
CREATE TABLE task_log_new (
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
) WITHOUT ROWID;
INSERT INTO task_log_new (report_id, seq, at, level, step, sent, received, code, message)
    SELECT report_id, seq, at, level, step, sent, received, code, message FROM task_log;
DROP TABLE task_log;
ALTER TABLE task_log_new RENAME TO task_log;
