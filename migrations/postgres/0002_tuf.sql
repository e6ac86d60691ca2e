-- The TUF repository: every published file (versioned metadata, timestamps, targets),
-- append-only. `seq` orders publications so replicas load only what is new.
CREATE TABLE tuf_files (
    seq         BIGSERIAL PRIMARY KEY,
    path        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL,
    version     BIGINT NOT NULL,
    body        BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX tuf_files_role ON tuf_files (role, version);
