-- The PostgreSQL schema's sequencer election table, kept so both backends have the same
-- migrations (one process per SQLite file: it never elects).
CREATE TABLE log_leaders (
    log_name    TEXT PRIMARY KEY,
    url         TEXT NOT NULL,
    since       TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
