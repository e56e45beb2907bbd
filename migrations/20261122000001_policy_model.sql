-- Portcullis policy model: users, groups, memberships, granular permissions, the content tree
-- mirror, public access and API keys. Owned by `src/store`; only `store/postgres` queries it.
-- `audit_events` lives in the audit module's own migration.

create table content_nodes (
    key         uuid primary key,
    id          bigint not null unique,
    parent_key  uuid references content_nodes (key) on delete cascade,
    -- Materialised path of int ids from the root, e.g. {-1,1051,1062}; the last segment is `id`.
    path        bigint[] not null,
    kind        text not null check (kind in ('document', 'media', 'element')),
    trashed     boolean not null default false,
    -- Delivery API route for item-by-path lookups (`/en/blog/post-1/`).
    route_path  text,
    updated_at  timestamptz not null default now(),
    constraint content_nodes_path_ends_with_id check (path[array_length(path, 1)] = id),
    constraint content_nodes_path_starts_at_root check (path[1] = -1 and array_length(path, 1) >= 2)
);
-- Whole-segment subtree lookups: `path @> array[1051]` finds 1051 and all its descendants.
create index content_nodes_path_gin on content_nodes using gin (path);
create index content_nodes_parent on content_nodes (parent_key);
create index content_nodes_route on content_nodes (route_path) where route_path is not null;

create table user_groups (
    key                uuid primary key,
    alias              text not null unique,
    name               text not null,
    sections           text[] not null default '{}',
    default_verbs      text[] not null default '{}',
    -- A start node is either the root flag or a node key; neither means "contributes nothing".
    content_start_root boolean not null default false,
    content_start_key  uuid references content_nodes (key) on delete set null,
    media_start_root   boolean not null default false,
    media_start_key    uuid references content_nodes (key) on delete set null,
    all_languages      boolean not null default false,
    languages          text[] not null default '{}',
    built_in           boolean not null default false,
    constraint user_groups_one_content_start check (not (content_start_root and content_start_key is not null)),
    constraint user_groups_one_media_start check (not (media_start_root and media_start_key is not null))
);

create table users (
    key                  uuid primary key,
    external_id          text not null unique,
    name                 text not null,
    email                text,
    state                text not null default 'active'
                         check (state in ('active', 'disabled', 'locked', 'invited')),
    -- The user's own start nodes (node keys); unknown keys are ignored when resolving.
    content_start_keys   uuid[] not null default '{}',
    media_start_keys     uuid[] not null default '{}'
);

create table memberships (
    user_key   uuid not null references users (key) on delete cascade,
    group_key  uuid not null references user_groups (key) on delete cascade,
    primary key (user_key, group_key)
);
create index memberships_group on memberships (group_key);

-- Granular ("explicit") entries. An empty `verbs` array is a real entry: nothing here for the group.
create table group_permissions (
    group_key  uuid not null references user_groups (key) on delete cascade,
    node_key   uuid not null references content_nodes (key) on delete cascade,
    verbs      text[] not null default '{}',
    primary key (group_key, node_key)
);
create index group_permissions_node on group_permissions (node_key);

-- Member protection ("Public Access") on a Delivery node.
create table public_access (
    node_key          uuid primary key references content_nodes (key) on delete cascade,
    member_groups     text[] not null default '{}',
    member_usernames  text[] not null default '{}'
);

create table api_keys (
    key_id          text primary key,
    -- SHA-256(pepper || secret); never the secret.
    hash            bytea not null check (length(hash) = 32),
    name            text not null,
    owner           text not null,
    apis            text[] not null default '{}',
    subtree_roots   uuid[] not null default '{}',
    cultures        text[] not null default '{}',
    preview         boolean not null default false,
    acts_as         text,
    rate_limit_rps  integer check (rate_limit_rps is null or rate_limit_rps > 0),
    expires_at      timestamptz,
    revoked         boolean not null default false,
    last_used_at    timestamptz
);

-- The five built-in groups of a fresh Umbraco install (UMBRACO.md §4, DatabaseDataCreator.cs).
insert into user_groups (key, alias, name, sections, default_verbs, content_start_root,
                         media_start_root, all_languages, built_in) values
('e5e7f6c8-7f9c-4b5b-8d5d-9e1e5a4f7e4d', 'admin', 'Administrators',
 '{content,packages,media,member,settings,users,forms,translation,library}',
 '{Umb.Document.Read,Umb.Document.Create,Umb.Document.Update,Umb.Document.Delete,Umb.Document.Move,Umb.Document.Duplicate,Umb.Document.Sort,Umb.Document.Rollback,Umb.Document.PublicAccess,Umb.Document.CultureAndHostnames,Umb.Document.Publish,Umb.Document.Unpublish,Umb.Document.Permissions,Umb.Document.Notifications,Umb.Document.CreateBlueprint,Umb.Document.PropertyValue.Read,Umb.Document.PropertyValue.Write}',
 true, true, true, true),
('44dc260e-b4d4-4dd9-9081-eec5598f1641', 'editor', 'Editors',
 '{content,media,forms,library}',
 '{Umb.Document.Read,Umb.Document.Create,Umb.Document.Update,Umb.Document.Delete,Umb.Document.Move,Umb.Document.Duplicate,Umb.Document.Sort,Umb.Document.Rollback,Umb.Document.PublicAccess,Umb.Document.Publish,Umb.Document.Unpublish,Umb.Document.Notifications,Umb.Document.CreateBlueprint,Umb.Document.PropertyValue.Read,Umb.Document.PropertyValue.Write}',
 true, true, true, true),
('9fc2a16f-528c-46d6-a014-75bf4ec2480c', 'writer', 'Writers',
 '{content,library}',
 '{Umb.Document.Create,Umb.Document.Update,Umb.Document.Read,Umb.Document.Notifications,Umb.Document.PropertyValue.Read,Umb.Document.PropertyValue.Write}',
 true, true, true, true),
('f2012e4c-d232-4bd1-8eae-4384032d97d8', 'translator', 'Translators',
 '{translation}',
 '{Umb.Document.Update,Umb.Document.Read,Umb.Document.PropertyValue.Read,Umb.Document.PropertyValue.Write}',
 true, true, true, true),
('8c6ad70f-d307-4e4a-af58-72c2e4e9439d', 'sensitiveData', 'Sensitive data',
 '{}', '{}', false, false, false, true);
