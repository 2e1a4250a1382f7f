//! Data sharing agreements and the rules that share cases under them.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::case::Case;
use crate::case_type::{CaseType, Classification};
use crate::validation::ValidationErrors;

use super::classification::{CoreClassification, ENVELOPE};

/// An agreement's own status; expiry is decided from its dates, not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgreementStatus {
    Active,
    Suspended,
}

impl AgreementStatus {
    pub fn as_str(self) -> &'static str {
        crate::wire_name::wire_name(&self)
    }

    pub fn parse(s: &str) -> Option<Self> {
        crate::wire_name::from_wire_name(s)
    }
}

/// Whether an agreement grants anything at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgreementState {
    Active,
    Suspended,
    Expired,
    /// Its `valid_from` is still to come.
    Pending,
}

impl AgreementState {
    pub fn as_str(self) -> &'static str {
        crate::wire_name::wire_name(&self)
    }
}

/// A data sharing agreement: which partner agency may see which case types, for which purposes,
/// up to which classification, under which lawful basis, from when until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agreement {
    pub id: String,
    pub jurisdiction_id: String,
    pub title: String,
    pub partner_agency_id: String,
    /// Case type codes the agreement covers.
    pub case_types: Vec<String>,
    /// Purposes a partner may state; each from the configured closed list.
    pub purposes: Vec<String>,
    pub lawful_basis: String,
    /// The highest classification shown.
    pub ceiling: Classification,
    /// When set, only these attributes (`description`, `fields.risk`, …) are shown, and only up
    /// to the ceiling.
    pub fields: Option<Vec<String>>,
    pub valid_from: DateTime<Utc>,
    pub valid_to: Option<DateTime<Utc>>,
    pub review_date: Option<NaiveDate>,
    pub status: AgreementStatus,
}

impl Agreement {
    /// What the agreement grants at `now`.
    pub fn state(&self, now: DateTime<Utc>) -> AgreementState {
        if self.status == AgreementStatus::Suspended {
            AgreementState::Suspended
        } else if self.valid_to.is_some_and(|to| now >= to) {
            AgreementState::Expired
        } else if now < self.valid_from {
            AgreementState::Pending
        } else {
            AgreementState::Active
        }
    }

    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.state(now) == AgreementState::Active
    }

    pub fn covers(&self, case_type: &str) -> bool {
        self.case_types.iter().any(|c| c == case_type)
    }

    pub fn allows_purpose(&self, purpose: &str) -> bool {
        self.purposes.iter().any(|p| p == purpose)
    }

    /// Whether the agreement shows an attribute of this classification.
    pub fn grants(&self, path: &str, class: Classification) -> bool {
        if ENVELOPE.contains(&path) {
            return true;
        }
        class <= self.ceiling
            && self
                .fields
                .as_ref()
                .is_none_or(|allowed| allowed.iter().any(|a| a == path))
    }

    /// Checks the agreement against the catalogue: `agency_kind` of its partner (if the agency
    /// exists), the case types that exist and the purposes that may be stated.
    pub fn validate(
        &self,
        partner_is_agency: bool,
        case_type: &dyn Fn(&str) -> Option<CaseType>,
        purposes: &[String],
        core: &CoreClassification,
    ) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        if self.id.trim().is_empty() {
            errors.push("id", "must not be empty");
        }
        if !partner_is_agency {
            errors.push(
                "partner",
                format!("`{}` is not an agency", self.partner_agency_id),
            );
        }
        if self.case_types.is_empty() {
            errors.push("case_types", "must name at least one case type");
        }
        let mut types = Vec::new();
        for (i, code) in self.case_types.iter().enumerate() {
            match case_type(code) {
                Some(t) => types.push(t),
                None => errors.push(
                    format!("case_types[{i}]"),
                    format!("`{code}` is not a case type of `{}`", self.jurisdiction_id),
                ),
            }
        }
        if self.purposes.is_empty() {
            errors.push("purposes", "must name at least one purpose");
        }
        for (i, p) in self.purposes.iter().enumerate() {
            if !purposes.contains(p) {
                errors.push(
                    format!("purposes[{i}]"),
                    format!(
                        "`{p}` is not a configured purpose; use one of {}",
                        if purposes.is_empty() {
                            "(none configured: add [sharing] purposes)".to_string()
                        } else {
                            purposes.join(", ")
                        }
                    ),
                );
            }
        }
        if self.lawful_basis.trim().is_empty() {
            errors.push("lawful_basis", "must say on what basis the data is shared");
        }
        if let Some(fields) = &self.fields {
            for (i, path) in fields.iter().enumerate() {
                let known = core.knows(path, None)
                    && (!path.starts_with("fields.")
                        || types.iter().any(|t| core.knows(path, Some(t))));
                if !known {
                    errors.push(
                        format!("fields[{i}]"),
                        format!(
                            "`{path}` is not a core attribute or a field of the agreement's case types"
                        ),
                    );
                }
            }
        }
        if let Some(to) = self.valid_to
            && to <= self.valid_from
        {
            errors.push("valid_to", "must be after valid_from");
        }
        errors.into_result()
    }

    /// Whether the two agreements could both apply to one case at one time but say different
    /// things: the same partner, a case type in common, overlapping dates, different terms.
    pub fn disagrees_with(&self, other: &Agreement) -> Option<String> {
        if self.partner_agency_id != other.partner_agency_id
            || self.jurisdiction_id != other.jurisdiction_id
        {
            return None;
        }
        let common: Vec<&String> = self.case_types.iter().filter(|c| other.covers(c)).collect();
        if common.is_empty() {
            return None;
        }
        let ends_before =
            |a: &Agreement, b: &Agreement| a.valid_to.is_some_and(|t| t <= b.valid_from);
        if ends_before(self, other) || ends_before(other, self) {
            return None;
        }
        let mut differs = Vec::new();
        if self.ceiling != other.ceiling {
            differs.push("ceiling");
        }
        let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>();
        if set(&self.purposes) != set(&other.purposes) {
            differs.push("purposes");
        }
        if self.fields.as_deref().map(set) != other.fields.as_deref().map(set) {
            differs.push("fields");
        }
        if self.lawful_basis != other.lawful_basis {
            differs.push("lawful_basis");
        }
        if differs.is_empty() {
            return None;
        }
        Some(format!(
            "overlaps agreement `{}` for partner `{}` and case type `{}` but differs in {}",
            other.id,
            self.partner_agency_id,
            common[0],
            differs.join(", ")
        ))
    }
}

/// A rule that shares matching cases with a partner as they arrive.
#[derive(Debug, Clone)]
pub struct ShareRule {
    pub name: String,
    /// Case types the rule looks at; empty means the agreement's case types.
    pub when: Option<crate::route::Condition>,
    pub agency: String,
    pub agreement: String,
    /// Tell the partner by email as well as over its subscriptions.
    pub notify: bool,
}

impl ShareRule {
    /// Whether the rule shares `case`, given the agreement it names.
    pub fn applies(&self, case: &Case, agreement: &Agreement, now: DateTime<Utc>) -> bool {
        agreement.covers(&case.case_type_code)
            && agreement.is_active(now)
            && self.when.as_ref().is_none_or(|c| c.holds(case))
    }
}
