-- Duplicates are found by the first 8 bytes of an entry's leaf hash, then compared in
-- full under the tree's row lock (every writer of a tree holds it while appending). The
-- index over 8-byte keys is under half the size of the unique index over whole hashes,
-- so as the log grows a checkpoint cycle dirties fewer of its (random) pages.
CREATE INDEX entries_leaf_key ON entries
    ((('x' || encode(substr(leaf_hash, 1, 8), 'hex'))::BIT(64)::BIGINT));
DROP INDEX entries_leaf;
