-- Search keys are mostly random (artifact digests, key fingerprints). One index over the
-- keys of every entry outgrows the database's buffers as the log grows, and then each
-- insert writes a random page of it (a full-page image in the WAL after every
-- checkpoint). Range partitions by entry index, 2^18 = 262,144 entries each (about 100 MB
-- of index for entries with three keys, within PostgreSQL's default 128 MB of buffers),
-- keep the inserts in the newest partition's index however long the log grows; searches
-- read every partition's index. sigstack_index_keys() makes partitions as entries reach
-- them.
ALTER TABLE entry_index RENAME TO entry_index_unpartitioned;
ALTER INDEX entry_index_pkey RENAME TO entry_index_unpartitioned_pkey;

CREATE TABLE entry_index (
    key      TEXT NOT NULL,
    tree_id  BIGINT NOT NULL,
    idx      BIGINT NOT NULL
) PARTITION BY RANGE (idx);

-- The partition holding entry index IDX, made if missing.
CREATE FUNCTION sigstack_entry_index_partition(idx BIGINT) RETURNS VOID
LANGUAGE plpgsql AS $$
DECLARE
    n BIGINT := idx >> 18;
BEGIN
    IF to_regclass(format('entry_index_p%s', n)) IS NULL THEN
        BEGIN
            EXECUTE format(
                'CREATE TABLE entry_index_p%s PARTITION OF entry_index FOR VALUES FROM (%s) TO (%s)',
                n, n << 18, (n + 1) << 18);
        EXCEPTION WHEN duplicate_table OR unique_violation THEN
            NULL; -- another writer made it first
        END;
    END IF;
END $$;

DO $$
DECLARE
    top BIGINT;
BEGIN
    SELECT COALESCE(MAX(idx), 0) INTO top FROM entry_index_unpartitioned;
    FOR n IN 0 .. top >> 18 LOOP
        PERFORM sigstack_entry_index_partition(n::BIGINT << 18);
    END LOOP;
END $$;

-- Copied partition by partition, then indexed in one sorted build per partition.
INSERT INTO entry_index (key, tree_id, idx)
    SELECT key, tree_id, idx FROM entry_index_unpartitioned ORDER BY idx;
DROP TABLE entry_index_unpartitioned;
ALTER TABLE entry_index ADD PRIMARY KEY (key, tree_id, idx);

-- Inserts an entry batch's search keys, making the partitions they reach first.
CREATE FUNCTION sigstack_index_keys(tree BIGINT, keys TEXT[], idxs BIGINT[]) RETURNS VOID
LANGUAGE plpgsql AS $$
DECLARE
    lo BIGINT;
    hi BIGINT;
BEGIN
    SELECT MIN(i) >> 18, MAX(i) >> 18 INTO lo, hi FROM UNNEST(idxs) AS t(i);
    IF lo IS NULL THEN
        RETURN;
    END IF;
    FOR n IN lo .. hi LOOP
        PERFORM sigstack_entry_index_partition(n::BIGINT << 18);
    END LOOP;
    INSERT INTO entry_index (key, tree_id, idx)
        SELECT k, tree, i FROM UNNEST(keys, idxs) AS t(k, i)
        ON CONFLICT DO NOTHING;
END $$;
