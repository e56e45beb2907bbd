//! Authorization: plain data and pure functions that turn a classified request, a principal's
//! resolved access and the nodes it touches into exactly one [`Decision`]. Deny by default.
//!
//! Nothing here does I/O or knows pingora; `store/` supplies the data, `proxy/` acts on the result.

mod branch;
pub mod builtin;
mod decide;
mod delivery;
pub mod explain;
pub mod lookup;
pub mod model;
pub mod policy;
pub mod resolve;
pub mod route_path;
pub mod start_nodes;
#[cfg(test)]
pub(crate) mod testkit;

use std::sync::Arc;

pub use builtin::builtin_groups;
pub use decide::authorize;
pub use explain::{explain, Evidence};
pub use lookup::{next_refs, required_refs, Lookup, MemberRef, Resolved, UserFacts, Who};
pub use model::*;
pub use policy::{DecisionPolicy, UnknownNodeMode};
pub use route_path::{resolve_route, resolve_route_for, route_key, RouteAnswer};
pub use start_nodes::calculate_start_nodes;

use serde::Serialize;

/// The outcome for one request. Every request gets exactly one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Allow(Permit),
    Deny(DenyReason),
}

impl Decision {
    /// `"allow"` or `"deny"`: the label used in metrics, logs and audit rows.
    pub fn as_str(&self) -> &'static str {
        match self {
            Decision::Allow(_) => "allow",
            Decision::Deny(_) => "deny",
        }
    }

    /// The deny reason id, or `""` for an allow (metric label friendly).
    pub fn reason_str(&self) -> &'static str {
        match self {
            Decision::Allow(_) => "",
            Decision::Deny(r) => r.as_str(),
        }
    }
}

/// Why a request passed: which route and principal, and which grants satisfied the checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Permit {
    /// Route id from the route table (`"passthrough"` for unprotected prefixes), shared with
    /// it.
    pub route: Arc<str>,
    /// Stable principal id (`None` for anonymous routes).
    pub principal: Option<Arc<str>>,
    /// The evidence: one entry per satisfied requirement.
    pub via: Vec<Grant>,
}

/// One piece of evidence for an allow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Grant {
    /// The route needs no credential.
    Anonymous,
    /// Any approved back-office user may call the route.
    Backoffice,
    /// A section the caller holds through a group.
    Section { section: Arc<str>, group: Arc<str> },
    /// Membership of the `admin` group.
    Admin { group: Arc<str> },
    /// A verb on a node, granted by `group`; `entry_on` is the node id carrying the explicit
    /// entry that applied, or `None` when the group's default verbs applied.
    Verb {
        node: i64,
        verb: Arc<str>,
        group: Arc<str>,
        entry_on: Option<i64>,
    },
    /// A Delivery API key whose scope covers the node(s).
    KeyScope { key_id: String },
    /// Member access to protected content.
    Member { member: String },
    /// The placeholder allow-all policy of a development config (`mode = "passthrough"`).
    Passthrough,
    /// An unknown node forwarded because the API's unknown-node policy is `defer`.
    DeferredToUpstream { node: String },
    /// Start-node path access to `node` through `start_node` (`-1` = root access).
    StartNode { node: i64, start_node: i64 },
    /// A user check passed: the target user is not an administrator.
    UserTarget { user: String },
    /// A user-group check passed: the caller is a member of the group.
    GroupMember { group: Arc<str> },
}

/// Why a request was refused. `as_str()` is the one stable vocabulary used by responses, audit
/// rows, metric labels and the explain endpoint; `proxy::respond` maps each to a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    /// The request cannot be read one way only (path, headers, body JSON, GUID).
    Malformed,
    /// Several credentials or several `Authorization` headers.
    AmbiguousCredentials,
    /// An API key sent in the query string.
    ApiKeyInQuery,
    /// An OAuth `access_token` sent in the query string (Umbraco's OpenIddict would read it).
    TokenInQuery,
    /// The inspected body is over the configured limit.
    BodyTooLarge,
    /// The request head or the inspected body did not arrive within its deadline.
    RequestTimeout,
    /// Message framing that could be read two ways (repeated `Content-Length`, or one beside
    /// `Transfer-Encoding`).
    BadFraming,
    /// A `Transfer-Encoding` other than exactly one `chunked`.
    UnsupportedTransferCoding,
    /// An HTTP/1.1 request without exactly one valid `Host`.
    BadHost,
    /// A `Host` not in `listen.allowed_hosts`.
    MisdirectedRequest,
    /// A request head over `listen.limits` (bytes or header fields).
    HeadTooLarge,
    /// A query string over `listen.limits.max_query_bytes`.
    UriTooLong,
    /// A protected prefix with no matching route.
    NoRoute,
    /// No credential where one is required.
    Unauthenticated,
    /// A credential that does not verify; the detail says why.
    InvalidToken(TokenProblem),
    /// User is disabled, locked out or invited (not approved).
    UserDisabled,
    /// Authenticated but unknown to the policy store.
    UnknownPrincipal,
    /// The API key may not call this API.
    ApiNotAllowed,
    /// None of the route's sections.
    NoSection,
    /// Route requires membership of the `admin` group (also: a non-admin acting on an admin user).
    AdminRequired,
    /// A non-admin acting on a user group they are not a member of.
    UserGroupNotMember,
    /// A node outside the caller's calculated start nodes (or in the recycle bin).
    OutsideStartNodes,
    /// A required verb missing on a node.
    MissingVerb,
    /// A culture in the body the caller may not edit.
    CultureNotAllowed,
    /// A node the content mirror does not know (unknown-node policy `deny`).
    UnknownNode,
    /// A Delivery API node outside the key's subtree roots.
    OutsideKeyScope,
    /// `Preview: true` without preview permission.
    PreviewNotAllowed,
    /// `expand=` for a subtree-scoped key.
    ExpandNotAllowed,
    /// Member-protected content without a member token.
    MemberRequired,
    /// Member-protected content the member may not see.
    MemberNotAllowed,
    /// The key's requests-per-second limit.
    RateLimited,
    /// The policy store cannot answer and nothing valid is cached.
    StoreUnavailable,
    /// No usable key set for the token's issuer (never fetched).
    KeysUnavailable,
}

/// Why a presented credential was rejected (RFC 6750 `invalid_token`); stable ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenProblem {
    Malformed,
    TooLarge,
    Encrypted,
    AlgNotAllowed,
    UnknownKey,
    BadSignature,
    Expired,
    NotYetValid,
    IssuedInFuture,
    WrongIssuer,
    WrongAudience,
    /// The JOSE `typ` is not one of the issuer's `token_types`.
    WrongType,
    MissingClaim,
    UnsupportedCritical,
    Revoked,
    UnknownApiKey,
    Inactive,
    /// A kind of credential the API is not configured to accept (`[authn] management`/`delivery`).
    NotAccepted,
}

impl TokenProblem {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenProblem::Malformed => "malformed",
            TokenProblem::TooLarge => "too_large",
            TokenProblem::Encrypted => "encrypted",
            TokenProblem::AlgNotAllowed => "alg_not_allowed",
            TokenProblem::UnknownKey => "unknown_key",
            TokenProblem::BadSignature => "bad_signature",
            TokenProblem::Expired => "expired",
            TokenProblem::NotYetValid => "not_yet_valid",
            TokenProblem::IssuedInFuture => "issued_in_future",
            TokenProblem::WrongIssuer => "wrong_issuer",
            TokenProblem::WrongAudience => "wrong_audience",
            TokenProblem::WrongType => "wrong_type",
            TokenProblem::MissingClaim => "missing_claim",
            TokenProblem::UnsupportedCritical => "unsupported_critical",
            TokenProblem::Revoked => "revoked",
            TokenProblem::UnknownApiKey => "unknown_api_key",
            TokenProblem::Inactive => "inactive",
            TokenProblem::NotAccepted => "not_accepted",
        }
    }
}

impl DenyReason {
    /// The stable reason id.
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::Malformed => "malformed_request",
            DenyReason::AmbiguousCredentials => "ambiguous_credentials",
            DenyReason::ApiKeyInQuery => "api_key_in_query",
            DenyReason::TokenInQuery => "token_in_query",
            DenyReason::BodyTooLarge => "body_too_large",
            DenyReason::RequestTimeout => "request_timeout",
            DenyReason::BadFraming => "bad_framing",
            DenyReason::UnsupportedTransferCoding => "unsupported_transfer_coding",
            DenyReason::BadHost => "bad_host",
            DenyReason::MisdirectedRequest => "misdirected_request",
            DenyReason::HeadTooLarge => "head_too_large",
            DenyReason::UriTooLong => "uri_too_long",
            DenyReason::NoRoute => "no_route",
            DenyReason::Unauthenticated => "unauthenticated",
            DenyReason::InvalidToken(_) => "invalid_token",
            DenyReason::UserDisabled => "user_disabled",
            DenyReason::UnknownPrincipal => "unknown_principal",
            DenyReason::ApiNotAllowed => "api_not_allowed",
            DenyReason::NoSection => "no_section",
            DenyReason::AdminRequired => "admin_required",
            DenyReason::UserGroupNotMember => "user_group_not_member",
            DenyReason::OutsideStartNodes => "outside_start_nodes",
            DenyReason::MissingVerb => "missing_verb",
            DenyReason::CultureNotAllowed => "culture_not_allowed",
            DenyReason::UnknownNode => "unknown_node",
            DenyReason::OutsideKeyScope => "outside_key_scope",
            DenyReason::PreviewNotAllowed => "preview_not_allowed",
            DenyReason::ExpandNotAllowed => "expand_not_allowed",
            DenyReason::MemberRequired => "member_required",
            DenyReason::MemberNotAllowed => "member_not_allowed",
            DenyReason::RateLimited => "rate_limited",
            DenyReason::StoreUnavailable => "store_unavailable",
            DenyReason::KeysUnavailable => "keys_unavailable",
        }
    }

    /// A finer id for the response body and audit row (`invalid_token` → `expired`, …).
    pub fn detail(self) -> Option<&'static str> {
        match self {
            DenyReason::InvalidToken(p) => Some(p.as_str()),
            _ => None,
        }
    }
}
