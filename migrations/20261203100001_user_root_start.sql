-- A user's own start node can be the root (Umbraco's `hasDocumentRootAccess` /
-- `hasMediaRootAccess`), as a group's already can. The flag and the key list combine: root plus
-- keys behaves as Umbraco's `CombineStartNodes` does with `-1` among the user's start ids.
alter table users
    add column content_start_root boolean not null default false,
    add column media_start_root   boolean not null default false;
