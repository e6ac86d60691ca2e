-- Replicas of a log on one database elect one sequencer (a session advisory lock); the
-- one holding it advertises where the others forward their writes.
CREATE TABLE log_leaders (
    log_name    TEXT PRIMARY KEY,
    url         TEXT NOT NULL,
    since       TIMESTAMPTZ NOT NULL DEFAULT now()
);
