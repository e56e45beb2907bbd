-- Umbraco's languages, mirrored (docs/MIRROR.md): the Delivery decision for culture-limited API
-- keys needs the culture Umbraco serves to a request without `Accept-Language` — its default
-- language (`DefaultCultureAccessor`). Only the mirror writes this table.
create table languages (
    iso_code          text primary key,
    is_default        boolean not null default false,
    is_mandatory      boolean not null default false,
    fallback_iso_code text,
    updated_at        timestamptz not null default now()
);
create unique index languages_iso_code_ci on languages (lower(iso_code));

create trigger languages_notify after insert or update or delete on languages
    for each row execute function portcullis_notify_row('iso_code');
