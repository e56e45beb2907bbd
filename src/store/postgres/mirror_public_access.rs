//! The mirror's writes of Umbraco's public-access entries (member protection on Delivery
//! documents) into `public_access`, in one transaction like every mirrored kind (see
//! `mirror.rs` for the contract). The mirror owns the entries of `document` nodes: it inserts,
//! updates and deletes those, and never touches an entry on a node of another kind (a
//! hand-written entry on an element or media node stays). A hand-written entry on a document
//! node is replaced by what Umbraco holds — Umbraco decides what a member may read, so the
//! gateway enforces exactly that.

use super::mirror::{begin, db, KindReport, Scope, Ticket};
use super::StoreError;
use serde_json::{json, Value};
use sqlx::postgres::PgPool;
use sqlx::types::Json;
use sqlx::{Postgres, Row, Transaction};
use std::time::Duration;
use uuid::Uuid;

/// For kinds every writer replaces whole (`public_access`, `languages`): records `ticket` as
/// the kind's last writer in `tx` and returns `true`, or `false` when a writer with a later
/// ticket already applied the kind — its view is at least as new, so this apply is skipped.
pub(super) async fn claim_whole_kind(
    tx: &mut Transaction<'_, Postgres>,
    kind: &'static str,
    ticket: Ticket,
) -> Result<bool, StoreError> {
    let (Ticket::Sync(seq) | Ticket::Webhook(seq)) = ticket;
    let claimed = sqlx::query(
        "insert into mirror_touches (kind, key, seq) values ($1, $2, $3) \
         on conflict (kind, key) do update set seq = excluded.seq, touched_at = now() \
         where mirror_touches.seq < excluded.seq",
    )
    .bind(kind)
    .bind(Uuid::nil())
    .bind(seq)
    .execute(&mut **tx)
    .await
    .map_err(db("mirror_claim_kind"))?;
    Ok(claimed.rows_affected() == 1)
}

/// What an apply skipped for a newer writer reports: what it read, left as the newer one wrote.
pub(super) fn left_to_newer(seen: usize) -> KindReport {
    KindReport {
        seen: seen as u64,
        newer: seen as u64,
        ..KindReport::default()
    }
}

/// Runs `upsert` — an `insert … on conflict … returning (xmax = 0) as inserted` over the JSON
/// rows bound as `$1` — in `tx`, commits, and returns how many rows it inserted and updated.
pub(super) async fn upsert_and_commit(
    mut tx: Transaction<'_, Postgres>,
    upsert: &str,
    rows: &[Value],
    query: &'static str,
) -> Result<(u64, u64), StoreError> {
    let sql = format!(
        "with up as ({upsert}) select count(*) filter (where inserted) as inserted, \
         count(*) filter (where not inserted) as updated from up"
    );
    let row = sqlx::query(&sql)
        .bind(Json(rows))
        .fetch_one(&mut *tx)
        .await
        .map_err(db(query))?;
    tx.commit().await.map_err(db("mirror_commit"))?;
    let count = |name: &str| -> Result<u64, StoreError> {
        let v: i64 = row.try_get(name).map_err(super::row_err)?;
        Ok(u64::try_from(v).unwrap_or(0))
    };
    Ok((count("inserted")?, count("updated")?))
}

/// One public-access entry as Umbraco holds it on the document that owns it: the member
/// group names and member usernames it lets in (`PublicAccessService.HasAccess` compares the
/// member's username and role names with these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorAccess {
    pub node: Uuid,
    pub groups: Vec<String>,
    pub usernames: Vec<String>,
}

/// Makes the entries on mirrored documents exactly `entries` (with [`Scope::All`]; with
/// [`Scope::Only`] only those nodes' entries are replaced or removed). Both lists are stored
/// sorted, so an entry Umbraco lists in another order is not rewritten. An entry on a node the
/// mirror does not hold as a document is skipped and named in the report. Nothing is written
/// when a writer with a later `ticket` already applied the entries ([`claim_whole_kind`]).
pub async fn replace_public_access(
    pool: &PgPool,
    entries: &[MirrorAccess],
    scope: Scope<'_>,
    ticket: Ticket,
    timeout: Duration,
) -> Result<KindReport, StoreError> {
    let rows: Vec<Value> = entries
        .iter()
        .map(|e| {
            let (mut g, mut u) = (e.groups.clone(), e.usernames.clone());
            g.sort();
            g.dedup();
            u.sort();
            u.dedup();
            json!({"node_key": e.node, "member_groups": g, "member_usernames": u})
        })
        .collect();
    let mut tx = begin(pool, timeout).await?;
    if !claim_whole_kind(&mut tx, "public_access", ticket).await? {
        return Ok(left_to_newer(entries.len()));
    }
    let skipped: Vec<Uuid> = sqlx::query_scalar(
        "select x.node_key from jsonb_to_recordset($1) as x(node_key uuid) \
         where not exists (select 1 from content_nodes c \
                           where c.key = x.node_key and c.kind = 'document')",
    )
    .bind(Json(&rows))
    .fetch_all(&mut *tx)
    .await
    .map_err(db("mirror_access_unknown"))?;
    let deleted = sqlx::query(
        "delete from public_access p using content_nodes c \
         where c.key = p.node_key and c.kind = 'document' \
           and ($2::uuid[] is null or p.node_key = any($2)) \
           and not exists (select 1 from jsonb_to_recordset($1) as x(node_key uuid) \
                           where x.node_key = p.node_key)",
    )
    .bind(Json(&rows))
    .bind(scope.keys())
    .execute(&mut *tx)
    .await
    .map_err(db("mirror_access_delete"))?;
    let upsert = "insert into public_access (node_key, member_groups, member_usernames) \
         select x.node_key, x.member_groups, x.member_usernames \
         from jsonb_to_recordset($1) as x(node_key uuid, member_groups text[], \
                                          member_usernames text[]) \
         join content_nodes c on c.key = x.node_key and c.kind = 'document' \
         on conflict (node_key) do update set member_groups = excluded.member_groups, \
           member_usernames = excluded.member_usernames \
         where (public_access.member_groups, public_access.member_usernames) \
               is distinct from (excluded.member_groups, excluded.member_usernames) \
         returning (xmax = 0) as inserted";
    let (inserted, updated) = upsert_and_commit(tx, upsert, &rows, "mirror_access_write").await?;
    Ok(KindReport {
        seen: entries.len() as u64,
        inserted,
        updated,
        deleted: deleted.rows_affected(),
        newer: 0,
        skipped: skipped
            .iter()
            .map(|k| format!("public access on `{k}`: not a mirrored document"))
            .collect(),
    })
}
