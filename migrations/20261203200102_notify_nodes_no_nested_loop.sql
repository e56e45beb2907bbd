-- The content-node update trigger joins its transition tables (old and new rows by key), which
-- carry no planner statistics. A statement that rewrites most of a large tree — a full sync's
-- first Delivery routes, which set `route_path` on every document — was planned as a nested
-- loop over both tables: minutes for 100,000 rows. Inside the trigger function only, nested
-- loops are off, so the join is hashed (or merged).
alter function portcullis_notify_nodes() set enable_nestloop = off;
