//! One way a request's operation record is made, on every surface (GraphQL over HTTP and over
//! WebSocket, Open311, downloads and the export): who asked, which request and operation, and
//! how it ended, with one outcome for each error code ([`ErrorCode::outcome`]).

use std::time::Duration;

use junction_domain::{AuditEntry, AuditOperation, Principal};

use crate::ErrorCode;

/// An operation record being made; [`RequestAudit::ended`] finishes it.
#[must_use]
pub struct RequestAudit {
    entry: AuditEntry,
    operation: AuditOperation,
}

impl RequestAudit {
    /// A request by `principal`, or by nobody known (`anonymous`).
    pub fn by(principal: Option<&Principal>) -> RequestAudit {
        let mut entry = AuditEntry::now(principal.map_or("anonymous", |p| p.subject.as_str()));
        entry.agency = principal.and_then(|p| p.agency.clone());
        entry.roles = principal
            .map(|p| p.roles.iter().map(|r| r.as_str().to_string()).collect())
            .unwrap_or_default();
        RequestAudit::of(entry)
    }

    /// A request by an Open311 client (its api key's name), or by nobody known.
    pub fn by_client(client: Option<&str>) -> RequestAudit {
        let mut entry =
            AuditEntry::now(client.map_or("anonymous".to_string(), |c| format!("open311:{c}")));
        entry.roles = client
            .map(|_| vec!["open311_client".to_string()])
            .unwrap_or_default();
        RequestAudit::of(entry)
    }

    /// A request made under an actor's own entry (a WebSocket connection's).
    pub fn of(entry: AuditEntry) -> RequestAudit {
        RequestAudit {
            entry,
            operation: AuditOperation {
                operation_name: None,
                operation_type: String::new(),
                variables_hash: None,
                outcome: String::new(),
                error_code: None,
                duration_us: 0,
            },
        }
    }

    /// Which request it was.
    pub fn request(mut self, request_id: &str, client_addr: Option<String>) -> RequestAudit {
        self.entry.request_id = Some(request_id.to_string());
        self.entry.client_addr = client_addr;
        self
    }

    /// Which operation: its kind (`query`, `subscription`, `open311`, `download`, …), and its
    /// name where it has one.
    pub fn operation(mut self, kind: &str, name: Option<String>) -> RequestAudit {
        self.operation.operation_type = kind.to_string();
        self.operation.operation_name = name;
        self
    }

    /// The SHA-256 of what the caller sent with it (never the values).
    pub fn variables(mut self, hash: Option<String>) -> RequestAudit {
        self.operation.variables_hash = hash;
        self
    }

    /// The record of a request that ended with no error, or with `code`, after `took`.
    pub fn ended(mut self, code: Option<ErrorCode>, took: Duration) -> AuditEntry {
        self.operation.outcome = code.map_or("ok", ErrorCode::outcome).to_string();
        self.operation.error_code = code.map(|c| c.as_str().to_string());
        self.operation.duration_us = i64::try_from(took.as_micros()).unwrap_or(i64::MAX);
        self.entry.operation = Some(self.operation);
        self.entry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_surface_records_the_same_outcome_for_the_same_code() {
        let ok = RequestAudit::by(None)
            .request("r1", None)
            .operation("download", Some("attachment".into()))
            .ended(None, Duration::from_micros(5));
        assert_eq!(ok.actor, "anonymous");
        let op = ok.operation.unwrap();
        assert_eq!((op.outcome.as_str(), op.error_code), ("ok", None));
        for code in ErrorCode::ALL {
            let entry = RequestAudit::by_client(Some("fixmystreet"))
                .operation("open311", None)
                .ended(Some(code), Duration::ZERO);
            assert_eq!(entry.actor, "open311:fixmystreet");
            assert_eq!(entry.roles, ["open311_client"]);
            let op = entry.operation.unwrap();
            assert_eq!(op.outcome, code.outcome());
            assert_eq!(op.error_code.as_deref(), Some(code.as_str()));
        }
    }
}
