//! GraphQL enums over the domain's: statuses, classifications, datatypes, agency kinds,
//! roles and case event kinds.

use async_graphql::Enum;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "junction_domain::CaseStatus")]
pub enum CaseStatus {
    Open,
    ForTriage,
    Investigating,
    InProgress,
    ActionScheduled,
    Fixed,
    Closed,
    Duplicate,
    NotCouncilsResponsibility,
    NoFurtherAction,
    InternalReferral,
    Cancelled,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "junction_domain::Classification")]
pub enum Classification {
    Public,
    Official,
    Personal,
    Sensitive,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "junction_domain::Datatype")]
pub enum Datatype {
    String,
    Number,
    Datetime,
    Text,
    Singlevaluelist,
    Multivaluelist,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "junction_domain::AgencyKind")]
pub enum AgencyKind {
    Department,
    Contractor,
    Partner,
    NationalBody,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "junction_domain::Role")]
pub enum Role {
    Admin,
    Manager,
    Officer,
    Partner,
    System,
    Auditor,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "junction_domain::CaseEventKind")]
pub enum CaseEventKind {
    Created,
    StatusChanged,
    NoteAdded,
    Routed,
    Delivered,
    DeliveryDead,
    DeliveryNeedsDecision,
    UpdateReceived,
    Shared,
    Unshared,
    /// A file that came with the case was not kept (over a limit); the event says why.
    FileRefused,
}
