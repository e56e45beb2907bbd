-- The mirror's webhook/sync race (docs/MIRROR.md "Webhooks and full syncs"). Every mirror
-- writer takes a ticket from `mirror_tickets` before it reads Umbraco; a webhook records the
-- rows it wrote or deleted here with its ticket. A writer leaves alone every row recorded with
-- a later ticket than its own: that row was read from Umbraco after this writer began to read.
-- Rows are pruned by full syncs (older than the sync's ticket and an hour old).
create sequence mirror_tickets;

create table mirror_touches (
    kind        text not null check (kind in ('node', 'user', 'group')),
    key         uuid not null,
    seq         bigint not null,
    touched_at  timestamptz not null default now(),
    primary key (kind, key)
);
