//! GraphQL object types over the domain's types, one file per concern (enums, the
//! catalogue, cases, shares and history, deliveries, schedules, the audit log); pages and
//! cursors here.

mod audit;
mod case;
mod catalogue_types;
mod delivery;
mod enums;
mod history;
mod schedule;

pub use audit::{AuditConnection, AuditEdge, AuditRecord};
pub use case::Case;
pub use catalogue_types::{Agency, CaseType, Jurisdiction, Me};
pub use delivery::{Attachment, Connector, Delivery, DeliveryResolution, ExternalRef};
pub use enums::{AgencyKind, CaseEventKind, CaseStatus, Classification, Datatype, Role};
pub use history::{CaseEvent, CaseShare};
pub use schedule::Schedule;

use async_graphql::SimpleObject;

use crate::error::{ApiError, ApiResult};

#[derive(SimpleObject)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

#[derive(SimpleObject)]
pub struct CaseEdge {
    pub cursor: String,
    pub node: Case,
}

#[derive(SimpleObject)]
pub struct CaseConnection {
    pub edges: Vec<CaseEdge>,
    pub page_info: PageInfo,
    /// Cases matching the filter, across all pages.
    pub total_count: u64,
}

/// Opaque cursors: a tag and a value, hex encoded.
pub(crate) fn encode_cursor(tag: &str, value: &str) -> String {
    hex::encode(format!("{tag}:{value}"))
}

pub(crate) fn decode_cursor(tag: &str, cursor: &str) -> ApiResult<String> {
    hex::decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix(&format!("{tag}:")).map(String::from))
        .ok_or_else(|| ApiError::invalid("after", "is not a cursor from this list"))
}

/// Checks a requested page size against the limit.
pub(crate) fn page_size(first: Option<i32>, default: u64, max: u64) -> ApiResult<u64> {
    match first {
        None => Ok(default.min(max)),
        Some(n) if n < 1 => Err(ApiError::invalid("first", "must be at least 1")),
        Some(n) if n as u64 > max => {
            Err(ApiError::invalid("first", format!("must be at most {max}")))
        }
        Some(n) => Ok(n as u64),
    }
}
