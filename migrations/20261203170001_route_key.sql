-- Delivery item paths are compared by route key, as `crate::authz::route_key` computes it in
-- Rust: ASCII letters lower-cased (translate, not lower(), so the locale cannot change it),
-- empty segments dropped, one leading and one trailing `/`. `nodes_by_route` returns every
-- live document with the key; the decision refuses when more than one is under the root.
create function portcullis_route_key(p text) returns text
    language sql immutable strict parallel safe
as $$
    select case when t = '' then '/' else '/' || t || '/' end
    from (select btrim(regexp_replace(
        translate(p, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'),
        '/+', '/', 'g'), '/') as t) k
$$;

drop index if exists content_nodes_route;
create index content_nodes_route_key on content_nodes (portcullis_route_key(route_path))
    where route_path is not null;
