//! Junction's domain: pure types and rules, with no I/O, no async and no framework crates.
//!
//! Everything that decides (validation of a case against its case type, which role may do what,
//! how audit records are chained) lives here, so every surface (GraphQL, Open311, the CLI and the
//! workers) asks the same question of the same function.

pub mod attachment;
pub mod audit;
pub mod auth;
pub mod case;
pub mod case_type;
pub mod checkpoint;
pub mod delivery;
pub mod inbound;
pub mod organisation;
pub mod reroute;
pub mod route;
pub mod sharing;
pub mod status_map;
pub mod status_notice;
pub mod validation;
pub mod wire_name;

pub use attachment::{Attachment, NewAttachment, RefusedFile};
pub use audit::{
    Actor, AuditChange, AuditDisclosure, AuditEntry, AuditOperation, ChainLink, GENESIS_HASH,
};
pub use auth::{Action, Denied, Principal, Role, authorise};
pub use case::{
    Case, CaseEvent, CaseEventKind, CaseStatus, CaseUpdate, Location, NewCase, Submitter,
};
pub use case_type::{CaseType, Classification, Datatype, FieldDef, ListValue};
pub use delivery::{
    DeliveryId, DeliveryKind, DeliveryPayload, DeliveryState, Finding, NextStep, Proof,
    RetryPolicy, next_after_unknown,
};
pub use inbound::InboundUpdate;
pub use organisation::{Agency, AgencyKind, Jurisdiction};
pub use route::{Condition, Route, RouteOutputs, RoutingTable, Rule, SendMethods};
pub use sharing::{
    Access, Agreement, AgreementState, AgreementStatus, CoreClassification, Lens, PartnerScope,
    ScopeError, Share, ShareRule,
};
pub use status_map::{Mapped, StatusMap};
pub use status_notice::StatusNotice;
pub use validation::{FieldError, ValidationErrors};
