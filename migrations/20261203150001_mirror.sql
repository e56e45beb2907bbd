-- The Umbraco mirror (issue 13, docs/MIRROR.md). Umbraco's Management API names nodes by key
-- only (v14+ never shows `umbracoNode.id`), so the mirror numbers the nodes it learns itself:
-- a node keeps its number for as long as it exists in the mirror, new nodes draw from this
-- sequence. It starts far above the ids of hand-written policy files (Umbraco's own ids start
-- at 1060), so a mirrored node never takes an id a policy file uses.
create sequence content_node_mirror_ids start with 1000000000;
