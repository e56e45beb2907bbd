//! Tickets and touches: webhooks and full syncs converge to what Umbraco holds whatever their
//! interleaving (docs/MIRROR.md "Webhooks and full syncs").
//!
//! Every mirror writer takes a [`Ticket`] from the `mirror_tickets` sequence *before* it reads
//! Umbraco. A webhook records every row it writes or deletes in `mirror_touches` with its
//! ticket. Inside its (serialised) transaction a writer leaves alone every row touched with a
//! later ticket: that row was read from Umbraco after this writer began to read, so it is at
//! least as new — a full sync that read the tree before a webhook's change and applies after it
//! keeps the webhook's nodes, users and groups (a deleted row stays deleted, a created one is
//! kept), and an old webhook delivery does not undo a newer one. A change Umbraco makes after
//! the newer writer read it fires a webhook of its own (or the next sync repairs it).
//!
//! Paths are derived: after the merge every written node takes its path from its parent as the
//! transaction sees it, so a subtree a webhook moved keeps its new ancestry even where the sync
//! writes a descendant.

use super::mirror::{bin_of, db};
use super::StoreError;
use crate::authz::NodeKind;
use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

/// A mirror writer and the point before its first read of Umbraco.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ticket {
    /// A full sync of one kind: keeps newer webhook rows, records nothing, prunes old touches.
    Sync(i64),
    /// A webhook's refresh: keeps newer webhook rows, records what it writes or deletes.
    Webhook(i64),
}

impl Ticket {
    /// A full sync's ticket for one kind; take it before reading that kind.
    pub async fn sync(pool: &PgPool) -> Result<Ticket, StoreError> {
        Ok(Ticket::Sync(next(pool).await?))
    }

    /// A webhook's ticket; take it before reading what the event names.
    pub async fn webhook(pool: &PgPool) -> Result<Ticket, StoreError> {
        Ok(Ticket::Webhook(next(pool).await?))
    }

    fn seq(self) -> i64 {
        match self {
            Ticket::Sync(s) | Ticket::Webhook(s) => s,
        }
    }
}

async fn next(pool: &PgPool) -> Result<i64, StoreError> {
    sqlx::query_scalar("select nextval('mirror_tickets')")
        .fetch_one(pool)
        .await
        .map_err(db("mirror_ticket"))
}

/// The rows a touch names (`mirror_touches.kind`).
#[derive(Debug, Clone, Copy)]
pub(super) enum Touch {
    Node,
    User,
    Group,
}

impl Touch {
    fn as_str(self) -> &'static str {
        match self {
            Touch::Node => "node",
            Touch::User => "user",
            Touch::Group => "group",
        }
    }
}

/// Keys of `kind` a webhook touched after `ticket`: rows the holder of `ticket` leaves alone.
pub(super) async fn newer(
    tx: &mut Transaction<'_, Postgres>,
    kind: Touch,
    ticket: Ticket,
) -> Result<Vec<Uuid>, StoreError> {
    sqlx::query_scalar("select key from mirror_touches where kind = $1 and seq > $2")
        .bind(kind.as_str())
        .bind(ticket.seq())
        .fetch_all(&mut **tx)
        .await
        .map_err(db("mirror_newer"))
}

/// Ends a write of `kind`: a webhook records `keys` (what it wrote or deleted, newer keys
/// already left out) with its ticket; a full sync prunes the touches no writer still needs
/// (older than its own ticket and than an hour, longer than any webhook's reads take).
pub(super) async fn settle(
    tx: &mut Transaction<'_, Postgres>,
    kind: Touch,
    ticket: Ticket,
    keys: &[Uuid],
) -> Result<(), StoreError> {
    let q = match ticket {
        Ticket::Webhook(_) => sqlx::query(
            "insert into mirror_touches (kind, key, seq) select $1, k, $2 from unnest($3::uuid[]) k \
             on conflict (kind, key) do update set seq = excluded.seq, touched_at = now() \
             where mirror_touches.seq < excluded.seq",
        )
        .bind(kind.as_str())
        .bind(ticket.seq())
        .bind(keys),
        Ticket::Sync(_) => sqlx::query(
            "delete from mirror_touches where kind = $1 and seq < $2 \
             and touched_at < now() - interval '1 hour'",
        )
        .bind(kind.as_str())
        .bind(ticket.seq()),
    };
    q.execute(&mut **tx).await.map_err(db("mirror_touches"))?;
    Ok(())
}

/// Makes the transaction's `mirror_nodes` agree with the `newer` nodes (touched after
/// `ticket`): a listed one takes the store's parent and bin state, or goes when a webhook
/// deleted it; a full sync also keeps the newer nodes it never read. Nodes whose parent is then
/// missing go with their subtree (a webhook deleted the parent after this writer read it).
/// Returns how many of the nodes this writer read it left to a newer webhook.
pub(super) async fn merge_newer_nodes(
    tx: &mut Transaction<'_, Postgres>,
    kind: NodeKind,
    ticket: Ticket,
    newer: &[Uuid],
) -> Result<u64, StoreError> {
    if newer.is_empty() {
        return Ok(0);
    }
    let listed: Vec<Uuid> =
        sqlx::query_scalar("delete from mirror_nodes where key = any($1) returning key")
            .bind(newer)
            .fetch_all(&mut **tx)
            .await
            .map_err(db("mirror_merge_nodes"))?;
    let sync = matches!(ticket, Ticket::Sync(_));
    sqlx::query(
        "insert into mirror_nodes (key, parent_key, trashed) \
         select c.key, c.parent_key, c.parent_key is null and c.path[2] = $3 \
         from content_nodes c where c.kind = $1 and c.key = any($2)",
    )
    .bind(kind.as_str())
    .bind(if sync { newer } else { &listed[..] })
    .bind(bin_of(kind))
    .execute(&mut **tx)
    .await
    .map_err(db("mirror_merge_nodes"))?;
    // A webhook's chain may hang under a node it did not list (the store's parent of a newer
    // node); a full sync deletes every node it does not hold, so for it only held parents count.
    sqlx::query(
        "with recursive gone as ( \
           select m.key from mirror_nodes m where m.parent_key is not null \
             and not exists (select 1 from mirror_nodes p where p.key = m.parent_key) \
             and ($1 or not exists (select 1 from content_nodes c where c.key = m.parent_key)) \
           union select m.key from mirror_nodes m join gone g on m.parent_key = g.key) \
         delete from mirror_nodes where key in (select key from gone)",
    )
    .bind(sync)
    .execute(&mut **tx)
    .await
    .map_err(db("mirror_merge_orphans"))?;
    Ok(listed.len() as u64)
}
