-- Operator surface (issue 14): who owns which policy rows, API key rotation, store-side group
-- mappings for external-IdP principals, and the audit trail of admin changes.
-- docs/STORE.md "Who owns which rows" is the contract with the Umbraco mirror.

-- Ownership. `umbraco` rows are the mirror's: it inserts, updates and deletes them on every
-- sync. `local` rows are Portcullis-owned overrides (admin API, `policy apply`); the mirror
-- never writes or deletes them.
alter table user_groups add column origin text not null default 'umbraco'
    check (origin in ('umbraco', 'local'));
alter table users add column origin text not null default 'umbraco'
    check (origin in ('umbraco', 'local'));
alter table user_groups add constraint user_groups_key_origin unique (key, origin);
alter table users add constraint users_key_origin unique (key, origin);

-- A membership belongs to its user's owner and a granular entry to its group's owner: the
-- composite foreign keys make any other combination impossible (a local grant needs a local
-- group; a sync that deletes `origin = 'umbraco'` memberships never removes a local user's).
alter table memberships add column origin text not null default 'umbraco';
alter table memberships add constraint memberships_user_origin
    foreign key (user_key, origin) references users (key, origin)
    on delete cascade on update cascade;
alter table group_permissions add column origin text not null default 'umbraco';
alter table group_permissions add constraint group_permissions_group_origin
    foreign key (group_key, origin) references user_groups (key, origin)
    on delete cascade on update cascade;

-- Portcullis-owned: IdP group (from an issuer's groups claim) → Umbraco or local group, for
-- callers that are not registered users. Added to the issuer's `group_map` from the config.
create table group_mappings (
    issuer     text not null check (issuer <> ''),
    idp_group  text not null check (idp_group <> ''),
    group_key  uuid not null references user_groups (key) on delete cascade,
    primary key (issuer, idp_group, group_key)
);
create index group_mappings_group on group_mappings (group_key);
create trigger group_mappings_notify after insert or update or delete on group_mappings
    for each row execute function portcullis_notify_row('issuer');

-- Key rotation: the replaced secret's hash keeps working until `previous_expires_at`.
alter table api_keys
    add column previous_hash bytea check (previous_hash is null or length(previous_hash) = 32),
    add column previous_expires_at timestamptz,
    add constraint api_keys_previous_pair
        check ((previous_hash is null) = (previous_expires_at is null));

-- Every change made through the admin API: who, what, before and after (JSON views that
-- never hold a secret or a hash). Written in the same transaction as the change.
create table admin_changes (
    occurred_at  timestamptz not null,
    change_id    uuid not null,
    actor        text not null,
    action       text not null,
    kind         text not null,
    resource     text not null,
    before       jsonb,
    after        jsonb,
    primary key (occurred_at, change_id)
);
create index admin_changes_resource on admin_changes (kind, resource, occurred_at desc);
