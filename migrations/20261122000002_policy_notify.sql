-- Push invalidation: every change to a policy table sends a JSON description of what changed on
-- the `portcullis_policy` channel; each gateway's `store::listen` evicts exactly those entries.

-- Row-level tables. The trigger arguments name the columns copied into the payload (the new
-- value, or the old one on delete); a changed identifying column is also sent as `old_<name>`.
create function portcullis_notify_row() returns trigger language plpgsql as $$
declare
    o jsonb;
    n jsonb;
    payload jsonb;
    col text;
begin
    if tg_op <> 'INSERT' then o := to_jsonb(old); end if;
    if tg_op <> 'DELETE' then n := to_jsonb(new); end if;
    -- `touch_api_key` only moves `last_used_at`: nothing a gateway caches changed.
    if tg_op = 'UPDATE' and (o - 'last_used_at') = (n - 'last_used_at') then
        return null;
    end if;
    payload := jsonb_build_object('table', tg_table_name, 'op', lower(tg_op));
    foreach col in array tg_argv loop
        payload := payload || jsonb_build_object(col, coalesce(n -> col, o -> col));
        if o is not null and n is not null and (o -> col) is distinct from (n -> col) then
            payload := payload || jsonb_build_object('old_' || col, o -> col);
        end if;
    end loop;
    perform pg_notify('portcullis_policy', payload::text);
    return null;
end
$$;

create trigger users_notify after insert or update or delete on users
    for each row execute function portcullis_notify_row('key', 'external_id');
create trigger user_groups_notify after insert or update or delete on user_groups
    for each row execute function portcullis_notify_row('key');
create trigger memberships_notify after insert or update or delete on memberships
    for each row execute function portcullis_notify_row('user_key', 'group_key');
create trigger group_permissions_notify after insert or update or delete on group_permissions
    for each row execute function portcullis_notify_row('group_key', 'node_key');
create trigger public_access_notify after insert or update or delete on public_access
    for each row execute function portcullis_notify_row('node_key');
create trigger api_keys_notify after insert or update or delete on api_keys
    for each row execute function portcullis_notify_row('key_id');

-- The content tree changes in bulk (full sync, subtree moves rewrite every descendant's path),
-- so it notifies once per statement: one message per changed node up to 100 rows (each names
-- the node id so its cached subtree is evicted), otherwise a single `flush` of the node caches.
create function portcullis_notify_nodes() returns trigger language plpgsql as $$
declare
    r record;
    changed bigint;
begin
    if tg_op = 'INSERT' then
        select count(*) into changed from new_rows;
    elsif tg_op = 'DELETE' then
        select count(*) into changed from old_rows;
    else
        select count(*) into changed
          from new_rows n join old_rows o using (key)
         where (to_jsonb(n) - 'updated_at') <> (to_jsonb(o) - 'updated_at');
    end if;
    if changed = 0 then
        return null;
    end if;
    if changed > 100 then
        perform pg_notify('portcullis_policy',
            jsonb_build_object('table', tg_table_name, 'op', 'flush')::text);
        return null;
    end if;
    if tg_op = 'INSERT' then
        for r in select key, id, route_path from new_rows loop
            perform pg_notify('portcullis_policy', jsonb_build_object('table', tg_table_name,
                'op', 'insert', 'key', r.key, 'id', r.id, 'route_path', r.route_path)::text);
        end loop;
    elsif tg_op = 'DELETE' then
        for r in select key, id, route_path from old_rows loop
            perform pg_notify('portcullis_policy', jsonb_build_object('table', tg_table_name,
                'op', 'delete', 'key', r.key, 'id', r.id, 'route_path', r.route_path)::text);
        end loop;
    else
        for r in select n.key, n.id, n.route_path, o.route_path as old_route_path, o.id as old_id
                   from new_rows n join old_rows o using (key)
                  where (to_jsonb(n) - 'updated_at') <> (to_jsonb(o) - 'updated_at') loop
            perform pg_notify('portcullis_policy', jsonb_build_object('table', tg_table_name,
                'op', 'update', 'key', r.key, 'id', r.id, 'old_id', r.old_id,
                'route_path', r.route_path, 'old_route_path', r.old_route_path)::text);
        end loop;
    end if;
    return null;
end
$$;

create trigger content_nodes_notify_insert after insert on content_nodes
    referencing new table as new_rows
    for each statement execute function portcullis_notify_nodes();
create trigger content_nodes_notify_update after update on content_nodes
    referencing old table as old_rows new table as new_rows
    for each statement execute function portcullis_notify_nodes();
create trigger content_nodes_notify_delete after delete on content_nodes
    referencing old table as old_rows
    for each statement execute function portcullis_notify_nodes();
