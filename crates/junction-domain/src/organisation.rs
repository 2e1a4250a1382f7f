//! Jurisdictions (the councils or regulators running Junction) and the agencies within and around them.

use serde::{Deserialize, Serialize};

/// One council or regulator: Open311's `jurisdiction_id` selects it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jurisdiction {
    pub id: String,
    pub name: String,
}

/// What sort of body an agency is; it decides nothing yet but what partners may later be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgencyKind {
    /// A department of the jurisdiction itself.
    Department,
    /// A contractor working on the jurisdiction's behalf.
    Contractor,
    /// A partner agency (police, fire, health) that cases are shared with.
    Partner,
    /// A national body that receives statutory returns.
    NationalBody,
}

impl AgencyKind {
    pub const ALL: [AgencyKind; 4] = [
        AgencyKind::Department,
        AgencyKind::Contractor,
        AgencyKind::Partner,
        AgencyKind::NationalBody,
    ];

    pub fn as_str(self) -> &'static str {
        crate::wire_name::wire_name(&self)
    }

    pub fn parse(s: &str) -> Option<Self> {
        crate::wire_name::from_wire_name(s)
    }
}

/// A body that receives, owns or shares work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agency {
    pub id: String,
    pub jurisdiction_id: String,
    pub name: String,
    pub kind: AgencyKind,
    /// Where cases go when the agency has no integration.
    pub email: Option<String>,
}
