-- One statement for everything a proof read needs: the entry at `p_idx` (returned with
-- level -1 and its body and time), the stored inner nodes named by (`p_levels`,
-- `p_nodes`), and the leaf hashes at `p_leaves` (level 0).
--
-- The connection plans every statement with its parameters (plan_cache_mode =
-- force_custom_plan), which costs more than running these point reads. Inside this
-- function the plan is made once per connection and reused; the planner settings below
-- make that plan the index lookups whatever the table statistics were when it was made
-- (an empty table's statistics would otherwise favour sequential scans).
CREATE FUNCTION sigstack_proof_read(
    p_tree BIGINT, p_idx BIGINT, p_levels SMALLINT[], p_nodes BIGINT[], p_leaves BIGINT[])
RETURNS TABLE (level SMALLINT, idx BIGINT, hash BYTEA, body BYTEA, integrated_time BIGINT)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
SET enable_bitmapscan = off
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
        SELECT (-1)::SMALLINT, e.idx, e.leaf_hash, e.body, e.integrated_time
          FROM entries e WHERE e.tree_id = p_tree AND e.idx = p_idx
        UNION ALL
        SELECT n.level, n.idx, n.hash, NULL::BYTEA, NULL::BIGINT
          FROM UNNEST(p_levels, p_nodes) AS w(l, i)
          JOIN nodes n ON n.tree_id = p_tree AND n.level = w.l AND n.idx = w.i
        UNION ALL
        SELECT 0::SMALLINT, e.idx, e.leaf_hash, NULL::BYTEA, NULL::BIGINT
          FROM entries e WHERE e.tree_id = p_tree AND e.idx = ANY (p_leaves);
END
$$;
