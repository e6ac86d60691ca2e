-- Transparency logs: shards (trees), entries, stored complete Merkle nodes, search index.
CREATE TABLE trees (
    tree_id     INTEGER PRIMARY KEY,
    log_name    TEXT NOT NULL,
    ordinal     INTEGER NOT NULL,
    active      INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    root        BLOB NOT NULL,
    checkpoint  TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (log_name, ordinal)
);
CREATE UNIQUE INDEX trees_one_active ON trees (log_name) WHERE active = 1;

CREATE TABLE entries (
    tree_id          INTEGER NOT NULL,
    idx              INTEGER NOT NULL,
    leaf_hash        BLOB NOT NULL,
    body             BLOB NOT NULL,
    integrated_time  INTEGER NOT NULL,
    PRIMARY KEY (tree_id, idx)
) WITHOUT ROWID;
CREATE UNIQUE INDEX entries_leaf ON entries (leaf_hash, tree_id);

CREATE TABLE nodes (
    tree_id  INTEGER NOT NULL,
    level    INTEGER NOT NULL,
    idx      INTEGER NOT NULL,
    hash     BLOB NOT NULL,
    PRIMARY KEY (tree_id, level, idx)
) WITHOUT ROWID;

CREATE TABLE entry_index (
    key      TEXT NOT NULL,
    tree_id  INTEGER NOT NULL,
    idx      INTEGER NOT NULL,
    PRIMARY KEY (key, tree_id, idx)
) WITHOUT ROWID;
