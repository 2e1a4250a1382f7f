//! Audit entries and the SHA-256 hash chain that makes tampering visible.
//!
//! Each stored entry carries `hash = SHA-256(prev_hash ‖ "\n" ‖ seq ‖ "\n" ‖ canonical_json(entry))`.
//! The canonical content does not depend on the entry's place in the chain, so it can be
//! computed by whoever makes the entry, in parallel; only the chaining is sequential.
//! Editing, inserting, deleting or reordering any stored entry breaks every hash after it.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry in a chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One GraphQL (or other API) operation, as the audit log records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditOperation {
    pub operation_name: Option<String>,
    /// `query`, `mutation`, `subscription`, or `unknown` when the document never parsed.
    pub operation_type: String,
    /// SHA-256 of the request's variables as sent: the values themselves are never stored.
    pub variables_hash: Option<String>,
    /// `ok`, `error` (ran but failed) or `rejected` (refused before running).
    pub outcome: String,
    pub error_code: Option<String>,
    pub duration_us: i64,
}

impl AuditOperation {
    /// This operation as canonical JSON (keys sorted): its part of the chained content, and
    /// the form the store keeps it in.
    pub fn canonical_json(&self) -> String {
        let mut out = Vec::with_capacity(192);
        self.write_canonical(&mut out);
        String::from_utf8(out).expect("JSON written from strings is UTF-8")
    }

    /// Writes the object directly, keys in sorted order: the same bytes as serialising it and
    /// sorting the keys, without the intermediate value (this is on every request's path).
    fn write_canonical(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"duration_us\":");
        out.extend_from_slice(itoa::Buffer::new().format(self.duration_us).as_bytes());
        out.extend_from_slice(b",\"error_code\":");
        write_opt_str(out, self.error_code.as_deref());
        out.extend_from_slice(b",\"operation_name\":");
        write_opt_str(out, self.operation_name.as_deref());
        out.extend_from_slice(b",\"operation_type\":");
        write_str(out, &self.operation_type);
        out.extend_from_slice(b",\"outcome\":");
        write_str(out, &self.outcome);
        out.extend_from_slice(b",\"variables_hash\":");
        write_opt_str(out, self.variables_hash.as_deref());
        out.push(b'}');
    }
}

/// One state change: the fields of an object before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditChange {
    pub object_type: String,
    pub object_id: String,
    pub action: String,
    pub before: Value,
    pub after: Value,
}

/// Personal or sensitive values of one case shown to a partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditDisclosure {
    pub case_id: String,
    pub case_reference: String,
    pub partner_agency: String,
    pub agreement_id: String,
    pub purpose: String,
    /// Attribute paths shown, e.g. `submitter.email`, `fields.symptoms`; never their values.
    pub fields: Vec<String>,
    /// `query` or `subscription`.
    pub channel: String,
}

/// Who did what, when, from where.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Truncated to microseconds, the precision every supported database keeps.
    pub at: DateTime<Utc>,
    pub actor: String,
    pub agency: Option<String>,
    pub roles: Vec<String>,
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
    pub operation: Option<AuditOperation>,
    pub change: Option<AuditChange>,
    pub disclosure: Option<AuditDisclosure>,
}

/// Who is acting, as every audit entry records it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    pub subject: String,
    pub agency: Option<String>,
    pub roles: Vec<String>,
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
}

impl Actor {
    /// Junction itself (configuration, schedules), named for what is acting.
    pub fn internal(name: &str) -> Self {
        Actor {
            subject: format!("junction:{name}"),
            ..Actor::default()
        }
    }

    /// A fresh entry for this actor, stamped now.
    pub fn entry(&self) -> AuditEntry {
        AuditEntry {
            agency: self.agency.clone(),
            roles: self.roles.clone(),
            request_id: self.request_id.clone(),
            client_addr: self.client_addr.clone(),
            ..AuditEntry::now(self.subject.clone())
        }
    }

    /// An entry recording a change to one object.
    pub fn change(
        &self,
        object_type: &str,
        object_id: &str,
        action: &str,
        before: Value,
        after: Value,
    ) -> AuditEntry {
        AuditEntry {
            change: Some(AuditChange {
                object_type: object_type.into(),
                object_id: object_id.into(),
                action: action.into(),
                before,
                after,
            }),
            ..self.entry()
        }
    }
}

/// An entry's place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLink {
    pub seq: i64,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEntry {
    /// A new entry stamped now.
    pub fn now(actor: impl Into<String>) -> Self {
        AuditEntry {
            at: Utc::now().trunc_subsecs(6),
            actor: actor.into(),
            agency: None,
            roles: Vec::new(),
            request_id: None,
            client_addr: None,
            operation: None,
            change: None,
            disclosure: None,
        }
    }

    /// The entry's content in one canonical form: keys sorted at every depth, no whitespace.
    ///
    /// Written straight out, its top-level keys in sorted order: this runs once per request.
    pub fn canonical(&self) -> String {
        let mut out: Vec<u8> = Vec::with_capacity(384);
        out.extend_from_slice(b"{\"actor\":");
        write_str(&mut out, &self.actor);
        out.extend_from_slice(b",\"agency\":");
        write_opt_str(&mut out, self.agency.as_deref());
        out.extend_from_slice(b",\"at\":\"");
        out.extend_from_slice(
            self.at
                .to_rfc3339_opts(SecondsFormat::Micros, true)
                .as_bytes(),
        );
        out.extend_from_slice(b"\",\"change\":");
        write_serialized(&mut out, &self.change);
        out.extend_from_slice(b",\"client_addr\":");
        write_opt_str(&mut out, self.client_addr.as_deref());
        // Absent rather than null, so entries written before disclosures existed keep their hash.
        if let Some(d) = &self.disclosure {
            out.extend_from_slice(b",\"disclosure\":");
            write_serialized(&mut out, d);
        }
        out.extend_from_slice(b",\"operation\":");
        match &self.operation {
            Some(op) => op.write_canonical(&mut out),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"request_id\":");
        write_opt_str(&mut out, self.request_id.as_deref());
        out.extend_from_slice(b",\"roles\":[");
        for (i, role) in self.roles.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(&mut out, role);
        }
        out.extend_from_slice(b"]}");
        String::from_utf8(out).expect("JSON written from strings is UTF-8")
    }

    /// Chains this entry after `prev_hash` at position `seq`.
    pub fn link(&self, seq: i64, prev_hash: &str) -> ChainLink {
        link_canonical(seq, prev_hash, &self.canonical())
    }
}

/// Chains an entry whose canonical content is already known.
pub fn link_canonical(seq: i64, prev_hash: &str, canonical: &str) -> ChainLink {
    ChainLink {
        seq,
        prev_hash: prev_hash.to_string(),
        hash: chain_hash(prev_hash, seq, canonical),
    }
}

/// `SHA-256(prev_hash ‖ "\n" ‖ seq ‖ "\n" ‖ canonical)`, hex encoded.
pub fn chain_hash(prev_hash: &str, seq: i64, canonical: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(itoa::Buffer::new().format(seq).as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical.as_bytes());
    digest_hex(&hasher.finalize())
}

/// Checks one stored link against the hash the chain expects before it.
/// Returns the reason the link is bad, if it is.
pub fn verify_link(
    expected_prev: &str,
    entry: &AuditEntry,
    stored: &ChainLink,
) -> Result<(), String> {
    if stored.prev_hash != expected_prev {
        return Err(format!(
            "prev_hash {} does not match the hash of the record before it ({expected_prev})",
            stored.prev_hash
        ));
    }
    let recomputed = entry.link(stored.seq, &stored.prev_hash).hash;
    if recomputed != stored.hash {
        return Err(format!(
            "content does not match its hash (stored {}, recomputed {recomputed})",
            stored.hash
        ));
    }
    Ok(())
}

/// SHA-256 of arbitrary bytes, hex encoded.
pub fn sha256_hex(bytes: &[u8]) -> String {
    digest_hex(&Sha256::digest(bytes))
}

/// A digest in lower-case hex, through a fixed buffer (hashing is on every request's path).
fn digest_hex(digest: &[u8]) -> String {
    let mut out = [0u8; 64];
    hex::encode_to_slice(digest, &mut out).expect("a SHA-256 digest is 32 bytes");
    String::from_utf8(out.to_vec()).expect("hex digits are ASCII")
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, key);
                out.push(b':');
                write_canonical(&map[key], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).expect("writing to a Vec cannot fail"),
    }
}

/// A JSON string, escaped as serde_json escapes it.
fn write_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

fn write_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => write_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// A nested value in canonical form: serialised, then its keys sorted at every depth.
fn write_serialized<T: Serialize>(out: &mut Vec<u8>, value: &T) {
    let value = serde_json::to_value(value).unwrap_or(Value::Null);
    write_canonical(&value, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry() -> AuditEntry {
        let mut e = AuditEntry::now("alice");
        e.at = DateTime::parse_from_rfc3339("2026-11-21T10:00:00.123456Z")
            .unwrap()
            .to_utc();
        e.change = Some(AuditChange {
            object_type: "case".into(),
            object_id: "c1".into(),
            action: "status_changed".into(),
            before: json!({"status": "open", "a": {"z": 1, "b": 2}}),
            after: json!({"status": "fixed"}),
        });
        e
    }

    #[test]
    fn canonical_form_sorts_keys_at_every_depth() {
        let c = entry().canonical();
        assert!(c.starts_with(r#"{"actor":"alice","agency":null,"at":"2026-11-21T10:00:00.123456Z","change":{"action""#));
        assert!(c.contains(r#""before":{"a":{"b":2,"z":1},"status":"open"}"#));
        assert!(
            !c.contains("seq"),
            "the place in the chain is hashed separately"
        );
    }

    /// The canonical form as first defined: a JSON object of every field, written with its
    /// keys sorted at every depth. Hashes already stored depend on it, byte for byte.
    fn reference_canonical(e: &AuditEntry) -> String {
        fn write(value: &Value, out: &mut String) {
            match value {
                Value::Object(map) => {
                    let mut keys: Vec<&String> = map.keys().collect();
                    keys.sort();
                    out.push('{');
                    for (i, key) in keys.into_iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(&Value::String(key.clone()).to_string());
                        out.push(':');
                        write(&map[key], out);
                    }
                    out.push('}');
                }
                Value::Array(items) => {
                    out.push('[');
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        write(item, out);
                    }
                    out.push(']');
                }
                other => out.push_str(&other.to_string()),
            }
        }
        let mut m = serde_json::Map::new();
        m.insert(
            "at".into(),
            Value::from(e.at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()),
        );
        m.insert("actor".into(), Value::from(e.actor.clone()));
        m.insert(
            "agency".into(),
            e.agency.clone().map_or(Value::Null, Value::from),
        );
        m.insert("roles".into(), Value::from(e.roles.clone()));
        m.insert(
            "request_id".into(),
            e.request_id.clone().map_or(Value::Null, Value::from),
        );
        m.insert(
            "client_addr".into(),
            e.client_addr.clone().map_or(Value::Null, Value::from),
        );
        m.insert(
            "operation".into(),
            serde_json::to_value(&e.operation).unwrap(),
        );
        m.insert("change".into(), serde_json::to_value(&e.change).unwrap());
        if let Some(d) = &e.disclosure {
            m.insert("disclosure".into(), serde_json::to_value(d).unwrap());
        }
        let mut out = String::new();
        write(&Value::Object(m), &mut out);
        out
    }

    #[test]
    fn canonical_form_is_byte_for_byte_the_reference_form() {
        let plain = AuditEntry::now("anonymous");
        let mut full = entry();
        full.actor = "o'brien \"the\" \u{1f}\\ café ✓".into();
        full.agency = Some("highways".into());
        full.roles = vec!["OFFICER".into(), "MANAGER".into()];
        full.request_id = Some("req-1".into());
        full.client_addr = Some("::1".into());
        full.at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .to_utc();
        full.operation = Some(AuditOperation {
            operation_name: Some("Me".into()),
            operation_type: "query".into(),
            variables_hash: None,
            outcome: "rejected".into(),
            error_code: Some("FORBIDDEN".into()),
            duration_us: 1234,
        });
        let mut disclosed = full.clone();
        disclosed.change = None;
        disclosed.disclosure = Some(AuditDisclosure {
            case_id: "c1".into(),
            case_reference: "BOR-1".into(),
            partner_agency: "police".into(),
            agreement_id: "roads".into(),
            purpose: "crime_prevention".into(),
            fields: vec!["submitter.name".into(), "description".into()],
            channel: "http".into(),
        });
        let mut hashed = full.clone();
        hashed.operation = Some(AuditOperation {
            operation_name: Some("Odd \"name\" \u{7}".into()),
            operation_type: "mutation".into(),
            variables_hash: Some(sha256_hex(b"{}")),
            outcome: "ok".into(),
            error_code: None,
            duration_us: 0,
        });
        for e in [plain, entry(), full, disclosed, hashed] {
            assert_eq!(e.canonical(), reference_canonical(&e));
            if let Some(op) = &e.operation {
                let reference = reference_canonical(&e);
                let start = reference.find("\"operation\":").unwrap() + "\"operation\":".len();
                assert!(reference[start..].starts_with(&op.canonical_json()));
            }
        }
    }

    #[test]
    fn chain_detects_edits_and_reordering() {
        let first = entry();
        let l1 = first.link(1, GENESIS_HASH);
        let mut second = entry();
        second.actor = "bob".into();
        let l2 = second.link(2, &l1.hash);
        assert_eq!(verify_link(GENESIS_HASH, &first, &l1), Ok(()));
        assert_eq!(verify_link(&l1.hash, &second, &l2), Ok(()));

        let moved = second.link(3, &l1.hash);
        assert_ne!(
            moved.hash, l2.hash,
            "the same content at another place hashes differently"
        );
        let mut edited = second.clone();
        edited.actor = "mallory".into();
        assert!(
            verify_link(&l1.hash, &edited, &l2)
                .unwrap_err()
                .contains("does not match its hash")
        );
        assert!(
            verify_link(GENESIS_HASH, &second, &l2)
                .unwrap_err()
                .contains("prev_hash")
        );
    }
}
