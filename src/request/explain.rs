//! The JSON printed by `portcullis routes match` and `portcullis routes list` (documented in
//! `docs/ROUTES.md`; keep it stable: platform teams script against it).

use super::classify::{Classified, Classifier};
use super::normalize::canonicalize;
use super::route::Route;
use super::{NodeRef, SectionPolicy, Target};
use http::HeaderMap;
use serde_json::{json, Value};

fn node_json(n: &NodeRef) -> Value {
    match n {
        NodeRef::Key(k) => Value::String(k.to_string()),
        NodeRef::Root => Value::String("root".into()),
        NodeRef::RecycleBin => Value::String("recycle-bin".into()),
        NodeRef::Path(p) => Value::String(p.clone()),
    }
}

fn policy_json(p: &SectionPolicy) -> (&'static str, Vec<String>) {
    match p {
        SectionPolicy::Anonymous => ("anonymous", Vec::new()),
        SectionPolicy::Backoffice => ("backoffice", Vec::new()),
        SectionPolicy::Admin => ("admin", Vec::new()),
        SectionPolicy::AnyOf(s) => ("sections", s.to_vec()),
    }
}

fn target_json(t: &Target, canonical_path: &str, uri: &str, body_pending: bool) -> Value {
    let (policy, sections) = policy_json(&t.sections);
    let checks: Vec<Value> = t
        .checks
        .iter()
        .map(|c| {
            let from_body = c.source.starts_with("body:");
            json!({
                "kind": c.kind,
                "node_source": c.source,
                "nodes": if body_pending && from_body { Value::Null } else {
                    Value::Array(c.nodes.iter().map(node_json).collect())
                },
                "verbs": c.verbs,
                "scope": c.scope,
            })
        })
        .collect();
    let mut v = json!({
        "canonical_path": canonical_path,
        "uri": uri,
        "api": t.api,
        "route": &*t.route,
        "policy": policy,
        "sections": sections,
        "admin_only": t.sections == SectionPolicy::Admin,
        "anonymous": t.sections == SectionPolicy::Anonymous,
        "checks": checks,
        "cultures": if body_pending { Value::Null } else { json!(t.cultures) },
        "needs_body": body_pending,
    });
    if let (Some(d), Value::Object(m)) = (&t.delivery, &mut v) {
        m.insert(
            "delivery".into(),
            json!({
                "preview": d.preview,
                "start_item": d.start_item.as_ref().map(node_json),
                "fetch": d.fetch.as_ref().map(|(axis, n)| json!({"axis": axis, "node": node_json(n)})),
                "expand": d.expand,
                "culture": d.culture,
            }),
        );
    }
    v
}

impl Classifier {
    /// `routes match`: classifies `method target` (origin or absolute form) with no headers and,
    /// when given, the body; returns the documented JSON (`{"rejected": id}` on a deny).
    pub fn explain_match(&self, method: &str, target: &str, body: Option<&[u8]>) -> Value {
        let canonical_path = canonicalize(target, &self.table().prefix_segs)
            .map(|c| c.path)
            .unwrap_or_default();
        match self.classify_target(method, target, &HeaderMap::new()) {
            Classified::Reject(r) => rejected(r, &canonical_path),
            Classified::Passthrough { uri } => json!({
                "canonical_path": canonical_path,
                "uri": uri,
                "passthrough": true,
            }),
            Classified::Ready { target, uri } => target_json(&target, &canonical_path, &uri, false),
            Classified::NeedsBody(pending) => match body {
                None => target_json(&pending.target, &canonical_path, &pending.uri, true),
                Some(b) => match self.complete(&pending, b) {
                    Ok((t, uri)) => target_json(&t, &canonical_path, &uri, false),
                    Err(r) => rejected(r, &canonical_path),
                },
            },
        }
    }

    /// `routes list`: the protected prefixes and every compiled route, in load order.
    pub fn list(&self) -> Value {
        let table = self.table();
        json!({
            "prefixes": table.prefixes.iter().map(|(api, p)| json!({"api": api, "prefix": p})).collect::<Vec<_>>(),
            "routes": table.routes.iter().map(route_json).collect::<Vec<_>>(),
        })
    }
}

fn rejected(r: crate::authz::DenyReason, canonical_path: &str) -> Value {
    let mut v = json!({ "rejected": r.as_str() });
    if let (false, Value::Object(m)) = (canonical_path.is_empty(), &mut v) {
        m.insert("canonical_path".into(), json!(canonical_path));
    }
    v
}

fn route_json(r: &Route) -> Value {
    let (policy, sections) = policy_json(&r.sections);
    json!({
        "id": &*r.id,
        "api": r.api,
        "method": r.method.as_str(),
        "path": r.template,
        "policy": policy,
        "sections": sections,
        "cultures": r.cultures.as_ref().map(|c| format!("body:{}", c.as_str())),
        "decode_path": r.def.decode_path,
        "checks": r.def.check.iter().map(|c| json!({
            "kind": c.kind,
            "node": c.node,
            "verbs": c.verbs,
            "scope": c.scope.as_deref().unwrap_or("node"),
            "null": c.null.as_deref().unwrap_or("reject"),
            "when": c.when,
        })).collect::<Vec<_>>(),
    })
}
