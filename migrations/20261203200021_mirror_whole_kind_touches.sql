-- Public-access entries and languages are replaced whole by every writer (a full sync and the
-- webhooks alike: their webhooks cannot name what changed). One touch per such kind, with the
-- nil key, records the ticket of the last writer that applied it; an apply with an older ticket
-- is skipped (docs/MIRROR.md "Webhooks and full syncs").
alter table mirror_touches drop constraint mirror_touches_kind_check;
alter table mirror_touches add constraint mirror_touches_kind_check
    check (kind in ('node', 'user', 'group', 'public_access', 'languages'));
