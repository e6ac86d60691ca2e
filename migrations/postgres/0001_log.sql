-- Transparency logs: shards (trees), entries, stored complete Merkle nodes, search index.
CREATE TABLE trees (
    tree_id     BIGINT PRIMARY KEY,
    log_name    TEXT NOT NULL,
    ordinal     INTEGER NOT NULL,
    active      BOOLEAN NOT NULL,
    size        BIGINT NOT NULL,
    root        BYTEA NOT NULL,
    checkpoint  TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (log_name, ordinal)
);
CREATE UNIQUE INDEX trees_one_active ON trees (log_name) WHERE active;

CREATE TABLE entries (
    tree_id          BIGINT NOT NULL,
    idx              BIGINT NOT NULL,
    leaf_hash        BYTEA NOT NULL,
    body             BYTEA NOT NULL,
    integrated_time  BIGINT NOT NULL,
    PRIMARY KEY (tree_id, idx)
);
CREATE UNIQUE INDEX entries_leaf ON entries (leaf_hash, tree_id);

-- Complete subtree roots of level >= 1 (level 0 is entries.leaf_hash).
CREATE TABLE nodes (
    tree_id  BIGINT NOT NULL,
    level    SMALLINT NOT NULL,
    idx      BIGINT NOT NULL,
    hash     BYTEA NOT NULL,
    PRIMARY KEY (tree_id, level, idx)
);

CREATE TABLE entry_index (
    key      TEXT NOT NULL,
    tree_id  BIGINT NOT NULL,
    idx      BIGINT NOT NULL,
    PRIMARY KEY (key, tree_id, idx)
);
