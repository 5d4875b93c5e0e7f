//! An audit event: who (`Actor`), did what (`action`) to which object (`Target`), the
//! fields that changed (`before`/`after`, secrets only as masks), and from where (`Origin`).
//! Each org's events form a hash chain: an event's `hash` is the SHA-256 of its
//! predecessor's hash and its own canonical JSON (keys sorted, no whitespace), so editing,
//! removing or reordering a stored event breaks every hash after it.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::org::OrgId;
use crate::request::RequestMeta;
use crate::time::{self, Timestamp};

/// The `prev_hash` of an org's first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How long an event is kept at least; the table's TTL removes it after that.
pub const RETENTION_DAYS: i64 = 400;

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A member, through the member API or the page.
    Member { id: String, email: String },
    /// An API key of the integration API (webhook endpoints with `webhooks:write`).
    Key { id: String },
    /// The operator tool, as the AWS caller it ran as.
    Operator { identity: String },
    /// The platform itself: `id` names the mechanism, `reason` says why it acted.
    Platform { id: String, reason: String },
}

impl Actor {
    pub fn member(member: &crate::members::table::Member) -> Self {
        Actor::Member {
            id: member.id.clone(),
            email: member.email.clone(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Actor::Member { .. } => "member",
            Actor::Key { .. } => "api_key",
            Actor::Operator { .. } => "operator",
            Actor::Platform { .. } => "platform",
        }
    }

    /// What the `actor` filter matches.
    pub fn id(&self) -> &str {
        match self {
            Actor::Member { id, .. }
            | Actor::Key { id }
            | Actor::Operator { identity: id }
            | Actor::Platform { id, .. } => id,
        }
    }

    pub fn to_json(&self) -> Value {
        let mut actor = json!({"type": self.kind(), "id": self.id()});
        match self {
            Actor::Member { email, .. } => actor["email"] = json!(email),
            Actor::Platform { reason, .. } => actor["reason"] = json!(reason),
            Actor::Key { .. } | Actor::Operator { .. } => {}
        }
        actor
    }
}

/// The kinds of object the trail covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    ApiKey,
    Member,
    WebhookEndpoint,
    ProviderKey,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::ApiKey => "api_key",
            TargetKind::Member => "member",
            TargetKind::WebhookEndpoint => "webhook_endpoint",
            TargetKind::ProviderKey => "provider_key",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: TargetKind,
    pub id: String,
}

impl Target {
    pub fn api_key(id: &str) -> Self {
        Self {
            kind: TargetKind::ApiKey,
            id: id.to_owned(),
        }
    }
}

/// Where a change came from, when a request carried it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub request_id: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Origin {
    /// The request's id, source IP and user agent, as API Gateway gave them.
    pub fn of(meta: &RequestMeta) -> Self {
        Self {
            request_id: Some(meta.request_id.clone()),
            source_ip: meta.source_ip.map(|ip| ip.to_string()),
            user_agent: meta.user_agent.clone(),
        }
    }
}

/// Who made the changes of one transaction, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    pub actor: Actor,
    pub origin: Origin,
}

impl Author {
    /// A member's request.
    pub fn member(member: &crate::members::table::Member, meta: &RequestMeta) -> Self {
        Self {
            actor: Actor::member(member),
            origin: Origin::of(meta),
        }
    }

    /// The operator tool, as `identity` (its AWS caller).
    pub fn operator(identity: &str) -> Self {
        Self {
            actor: Actor::Operator {
                identity: identity.to_owned(),
            },
            origin: Origin::default(),
        }
    }
}

/// An object the trail records: which one it is, and its view (the fields a change of it
/// shows; never a secret, only masks). Its changes follow from two of its states.
pub trait Audited {
    fn audit_target(&self) -> Target;
    fn audit_view(&self) -> Value;

    /// `action` on this object as read, leaving it as `after`.
    fn audit_change(&self, action: &'static str, after: &Self) -> Change {
        Change::between(
            action,
            self.audit_target(),
            &self.audit_view(),
            &after.audit_view(),
        )
    }

    /// `action` bringing this object into being: every field it has, nothing before.
    fn audit_created(&self, action: &'static str) -> Change {
        Change::between(
            action,
            self.audit_target(),
            &Value::Null,
            &self.audit_view(),
        )
    }

    /// `action` removing this object: what it was, nothing after.
    fn audit_removed(&self, action: &'static str) -> Change {
        Change::between(
            action,
            self.audit_target(),
            &self.audit_view(),
            &Value::Null,
        )
    }
}

/// One change, before it is chained: the action, its object, and the object's audit view
/// before and after (`Value::Null` for "did not exist"); only differing fields are kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub action: &'static str,
    pub target: Target,
    pub before: Map<String, Value>,
    pub after: Map<String, Value>,
}

impl Change {
    /// The change from `before` to `after` (objects; either may be `Value::Null`), keeping
    /// only the fields whose values differ.
    pub fn between(action: &'static str, target: Target, before: &Value, after: &Value) -> Self {
        let empty = Map::new();
        let old = before.as_object().unwrap_or(&empty);
        let new = after.as_object().unwrap_or(&empty);
        let mut kept_before = Map::new();
        let mut kept_after = Map::new();
        for name in old.keys().chain(new.keys()) {
            let was = old.get(name).unwrap_or(&Value::Null);
            let is = new.get(name).unwrap_or(&Value::Null);
            if was == is || kept_before.contains_key(name) || kept_after.contains_key(name) {
                continue;
            }
            // A creation has nothing before and a removal nothing after: the other side
            // lists the fields the object had, not a column of nulls.
            let created = before.is_null();
            let removed = after.is_null();
            if !created && (!removed || !was.is_null()) {
                kept_before.insert(name.clone(), was.clone());
            }
            if !removed && (!created || !is.is_null()) {
                kept_after.insert(name.clone(), is.clone());
            }
        }
        Self {
            action,
            target,
            before: kept_before,
            after: kept_after,
        }
    }

    /// An action that changed no recorded field of `target` (a reveal, a check, a re-send,
    /// a notice): nothing before, and what it concerned (an object's fields) as `after`.
    pub fn noted(action: &'static str, target: Target, after: Value) -> Self {
        Self {
            action,
            target,
            before: Map::new(),
            after: match after {
                Value::Object(fields) => fields,
                _ => Map::new(),
            },
        }
    }

    /// Whether anything changed (an edit that set fields to what they were is no event).
    pub fn is_empty(&self) -> bool {
        self.before.is_empty() && self.after.is_empty()
    }
}

/// An event as chained: its canonical JSON (what the hash covers) and the hash.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainedEvent {
    pub org: OrgId,
    pub seq: u64,
    pub at: Timestamp,
    pub id: String,
    pub actor_id: String,
    pub action: String,
    pub target_id: String,
    /// The event without `hash`, canonical.
    pub body: String,
    pub hash: String,
}

/// Chains `change` after `(prev_seq, prev_hash, prev_at)`.
pub fn chain(
    org: &OrgId,
    author: &Author,
    change: &Change,
    prev: (u64, &str, Option<Timestamp>),
    at: Timestamp,
) -> Result<ChainedEvent, String> {
    let (prev_seq, prev_hash, prev_at) = prev;
    let seq = prev_seq + 1;
    let id = format!(
        "aud_{}",
        crate::keys::token::random_base62(24).map_err(|e| format!("OS randomness: {e}"))?
    );
    let event = json!({
        "object": "audit_event",
        "id": id,
        "org": org,
        "seq": seq,
        "at": time::format(&at),
        "actor": author.actor.to_json(),
        "action": change.action,
        "target": {"type": change.target.kind.as_str(), "id": change.target.id},
        "before": change.before,
        "after": change.after,
        "request_id": author.origin.request_id,
        "source_ip": author.origin.source_ip,
        "user_agent": author.origin.user_agent,
        "prev_hash": prev_hash,
        "prev_at": prev_at.as_ref().map(time::format),
    });
    let body = canonical(&event);
    let hash = hash_after(prev_hash, &body);
    Ok(ChainedEvent {
        org: org.clone(),
        seq,
        at,
        id,
        actor_id: author.actor.id().to_owned(),
        action: change.action.to_owned(),
        target_id: change.target.id.clone(),
        body,
        hash,
    })
}

/// The hash of an event whose canonical JSON is `body`, after `prev_hash`.
pub fn hash_after(prev_hash: &str, body: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(prev_hash.as_bytes());
    digest.update(b"\n");
    digest.update(body.as_bytes());
    hex::encode(digest.finalize())
}

/// `value` as JSON with every object's keys sorted and no whitespace: one text for one
/// value, whatever order it was built in.
pub fn canonical(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut names: Vec<&String> = map.keys().collect();
                names.sort();
                Value::Object(
                    names
                        .into_iter()
                        .map(|name| (name.clone(), sorted(&map[name])))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// The event as the API shows it: the stored body with its hash, without the org (the
/// caller's own) or `prev_at` (the chain's bookkeeping).
pub fn public_json(body: &str, hash: &str) -> Result<Value, String> {
    let mut event: Value =
        serde_json::from_str(body).map_err(|e| format!("audit event body: {e}"))?;
    let object = event
        .as_object_mut()
        .ok_or("audit event body is not an object")?;
    object.shift_remove("org");
    object.shift_remove("prev_at");
    object.insert("hash".into(), Value::String(hash.to_owned()));
    Ok(event)
}

/// A spreadsheet cell that can't be read as a formula: text starting with `=`, `+`, `-`,
/// `@`, a tab or a carriage return gets a leading `'` (OWASP's CSV injection advice), and
/// the cell is quoted when it holds a comma, quote or line break.
pub fn csv_cell(text: &str) -> String {
    let guarded = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

/// The CSV export's columns, in order.
pub const CSV_COLUMNS: &[&str] = &[
    "at",
    "id",
    "actor_type",
    "actor_id",
    "actor_email",
    "action",
    "target_type",
    "target_id",
    "before",
    "after",
    "request_id",
    "source_ip",
    "user_agent",
    "hash",
    "prev_hash",
];

/// One CSV line (without the line break) for a public event.
pub fn csv_line(event: &Value) -> String {
    let text = |value: &Value| match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => canonical(other),
    };
    let cells = [
        text(&event["at"]),
        text(&event["id"]),
        text(&event["actor"]["type"]),
        text(&event["actor"]["id"]),
        text(&event["actor"]["email"]),
        text(&event["action"]),
        text(&event["target"]["type"]),
        text(&event["target"]["id"]),
        text(&event["before"]),
        text(&event["after"]),
        text(&event["request_id"]),
        text(&event["source_ip"]),
        text(&event["user_agent"]),
        text(&event["hash"]),
        text(&event["prev_hash"]),
    ];
    cells
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let a = json!({"b": 1, "a": {"d": [{"z": 1, "y": 2}], "c": null}});
        assert_eq!(
            canonical(&a),
            r#"{"a":{"c":null,"d":[{"y":2,"z":1}]},"b":1}"#
        );
        let b: Value =
            serde_json::from_str(r#"{"a":{"d":[{"y":2,"z":1}],"c":null},"b":1}"#).unwrap();
        assert_eq!(canonical(&a), canonical(&b));
    }

    #[test]
    fn a_change_keeps_only_what_differs() {
        let target = Target::api_key("key_1");
        let before = json!({"label": "CRM", "rate_limit": 50, "expires_at": null});
        let after =
            json!({"label": "CRM v2", "rate_limit": 50, "expires_at": "2027-01-01T00:00:00.000Z"});
        let change = Change::between("api_key.updated", target.clone(), &before, &after);
        assert_eq!(
            Value::Object(change.before),
            json!({"label": "CRM", "expires_at": null})
        );
        assert_eq!(
            Value::Object(change.after),
            json!({"label": "CRM v2", "expires_at": "2027-01-01T00:00:00.000Z"})
        );
        let created = Change::between("api_key.created", target.clone(), &Value::Null, &after);
        assert!(created.before.is_empty());
        assert_eq!(
            Value::Object(created.after),
            json!({"label": "CRM v2", "rate_limit": 50, "expires_at": "2027-01-01T00:00:00.000Z"})
        );
        let created = Change::between("api_key.created", target.clone(), &Value::Null, &before);
        assert_eq!(
            Value::Object(created.after),
            json!({"label": "CRM", "rate_limit": 50}),
            "no nulls for what a new object lacks"
        );
        assert!(Change::between("api_key.updated", target, &before, &before).is_empty());
    }

    #[test]
    fn the_hash_covers_the_predecessor_and_every_byte_of_the_event() {
        let org = OrgId::parse("acme").unwrap();
        let author = Author::operator("arn:aws:iam::1:user/ops");
        let change = Change::between(
            "api_key.revoked",
            Target::api_key("key_1"),
            &json!({"revoked_at": null}),
            &json!({"revoked_at": "2026-12-07T00:00:00.000Z"}),
        );
        let at = time::now();
        let first = chain(&org, &author, &change, (0, GENESIS_HASH, None), at).unwrap();
        assert_eq!(first.seq, 1);
        assert_eq!(first.hash, hash_after(GENESIS_HASH, &first.body));
        let second = chain(&org, &author, &change, (1, &first.hash, Some(at)), at).unwrap();
        assert_eq!(second.seq, 2);
        assert_ne!(first.id, second.id);
        assert_ne!(
            hash_after(&first.hash, &second.body),
            hash_after(GENESIS_HASH, &second.body)
        );
        let edited = second.body.replace("key_1", "key_2");
        assert_ne!(hash_after(&first.hash, &edited), second.hash);
        let public = public_json(&second.body, &second.hash).unwrap();
        assert_eq!(public["prev_hash"], json!(first.hash));
        assert_eq!(public["hash"], json!(second.hash));
        assert!(public.get("org").is_none());
    }

    #[test]
    fn csv_cells_never_start_a_formula() {
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-1"), "'-1");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("\tx"), "'\tx");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("plain"), "plain");
        let line = csv_line(&json!({"at": "t", "actor": {"type": "member", "id": "=1"},
            "before": {"label": "-x"}, "after": null}));
        assert!(line.contains(",'=1,"), "{line}");
        assert!(line.contains("\"{\"\"label\"\":\"\"-x\"\"}\""), "{line}");
        assert!(line.starts_with("t,,member,'=1,"), "{line}");
    }
}
