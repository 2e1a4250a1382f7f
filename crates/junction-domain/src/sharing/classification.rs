//! The classification of every attribute of a case.

use std::collections::BTreeMap;

use crate::case_type::{CaseType, Classification};

/// Attributes every party a case is shared with sees: what identifies the case and where it is
/// in its life. They are public and cannot be classified higher.
pub const ENVELOPE: [&str; 8] = [
    "id",
    "reference",
    "jurisdiction",
    "caseTypeCode",
    "status",
    "createdAt",
    "updatedAt",
    "version",
];

/// The core case attributes that carry a classification, with their defaults. Case-type fields
/// are `fields.<code>` and take their case type's classification.
pub const CORE_DEFAULTS: [(&str, Classification); 12] = [
    ("agency", Classification::Public),
    ("description", Classification::Official),
    ("location.point", Classification::Official),
    ("location.address", Classification::Official),
    ("location.uprn", Classification::Official),
    ("submitter.name", Classification::Personal),
    ("submitter.email", Classification::Personal),
    ("submitter.phone", Classification::Personal),
    ("sourceRef", Classification::Official),
    ("route", Classification::Official),
    ("notes", Classification::Official),
    ("updates", Classification::Official),
];

/// The classification of each core case attribute, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreClassification(BTreeMap<String, Classification>);

impl Default for CoreClassification {
    fn default() -> Self {
        CoreClassification(
            CORE_DEFAULTS
                .iter()
                .map(|(p, c)| (p.to_string(), *c))
                .collect(),
        )
    }
}

impl CoreClassification {
    /// Sets one attribute's classification; the envelope and unknown attributes are refused.
    pub fn set(&mut self, path: &str, class: Classification) -> Result<(), String> {
        if ENVELOPE.contains(&path) {
            return Err(format!(
                "`{path}` is part of every shared case's envelope and is always public"
            ));
        }
        match self.0.get_mut(path) {
            Some(c) => {
                *c = class;
                Ok(())
            }
            None => Err(format!(
                "is not a core case attribute; use one of {}",
                CORE_DEFAULTS.map(|(p, _)| p).join(", ")
            )),
        }
    }

    /// Every core attribute with its classification, the envelope first.
    pub fn all(&self) -> Vec<(String, Classification)> {
        ENVELOPE
            .iter()
            .map(|p| (p.to_string(), Classification::Public))
            .chain(self.0.iter().map(|(p, c)| (p.clone(), *c)))
            .collect()
    }

    /// The classification of a core attribute or a case-type field (`fields.<code>`). Anything
    /// unknown is sensitive, so a mistake hides rather than shows.
    pub fn of(&self, path: &str, case_type: Option<&CaseType>) -> Classification {
        if ENVELOPE.contains(&path) {
            return Classification::Public;
        }
        if let Some(code) = path.strip_prefix("fields.") {
            return case_type
                .and_then(|t| t.field(code))
                .map_or(Classification::Sensitive, |f| f.classification);
        }
        self.0
            .get(path)
            .copied()
            .unwrap_or(Classification::Sensitive)
    }

    /// Whether `path` names something a case has: a core attribute or a field of `case_type`.
    pub fn knows(&self, path: &str, case_type: Option<&CaseType>) -> bool {
        ENVELOPE.contains(&path)
            || self.0.contains_key(path)
            || path
                .strip_prefix("fields.")
                .is_some_and(|code| case_type.is_none_or(|t| t.field(code).is_some()))
    }
}
