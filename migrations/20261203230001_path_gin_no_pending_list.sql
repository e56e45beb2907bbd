-- The content tree's path index without GIN's pending list (`fastupdate`). With it, rows
-- written since the last vacuum sit in an unsorted list that every index scan reads whole: after
-- a mirror sync or a large move (thousands of rewritten paths) each `path @> array[id]` probe
-- took ~3.5 ms instead of ~0.02 ms, so a move webhook naming a 1,000-node subtree spent ~10 s
-- rewriting descendants' paths (benches/RESULTS.md). Writes now update the index directly
-- (measured on 50,000 paths: inserts 92 → 481 ms, updates 382 → 904 ms), and reads stay
-- predictable, which is what the gateway's look-ups and the mirror's subtree rewrites need.
alter index content_nodes_path_gin set (fastupdate = off);
-- Entries already pending move into the index proper.
select gin_clean_pending_list('content_nodes_path_gin');
