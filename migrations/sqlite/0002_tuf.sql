-- The TUF repository: every published file (versioned metadata, timestamps, targets),
-- append-only. `seq` orders publications so readers load only what is new.
CREATE TABLE tuf_files (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    path        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    body        BLOB NOT NULL,
    created_at  TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX tuf_files_role ON tuf_files (role, version);
