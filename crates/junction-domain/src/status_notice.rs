//! What a status change says to the public: each status's text and, where the council uses
//! one, its external status code. Configured per status and per case type; a status with
//! nothing configured says a plain sentence of its own, so no status change is ever a blank
//! comment on a front-end.

use serde::{Deserialize, Serialize};

use crate::case::CaseStatus;

/// The public text of a status change, and the code a council's own system gives that status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatusNotice {
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_status_code: Option<String>,
}

impl StatusNotice {
    /// What a status says when nothing is configured for it.
    pub fn default_for(status: CaseStatus) -> StatusNotice {
        let text = match status {
            CaseStatus::Open => "This report is open.",
            CaseStatus::ForTriage => "This report is waiting to be assessed.",
            CaseStatus::Investigating => "The council is investigating this report.",
            CaseStatus::InProgress => "Work on this report is in progress.",
            CaseStatus::ActionScheduled => "Work to deal with this report has been scheduled.",
            CaseStatus::Fixed => "This problem has been fixed.",
            CaseStatus::Closed => "This report has been closed.",
            CaseStatus::Duplicate => {
                "This problem has already been reported; it is being dealt with under the earlier report."
            }
            CaseStatus::NotCouncilsResponsibility => {
                "This problem is not the council's responsibility."
            }
            CaseStatus::NoFurtherAction => "No further action will be taken on this report.",
            CaseStatus::InternalReferral => {
                "This report has been passed to another team to deal with."
            }
            CaseStatus::Cancelled => "This report has been cancelled.",
        };
        StatusNotice {
            text: text.to_string(),
            external_status_code: None,
        }
    }

    /// `configured` where it says something, completed from the default: a notice configured
    /// with only a code keeps the default text.
    pub fn or_default(configured: Option<&StatusNotice>, status: CaseStatus) -> StatusNotice {
        let default = StatusNotice::default_for(status);
        match configured {
            None => default,
            Some(c) => StatusNotice {
                text: if c.text.trim().is_empty() {
                    default.text
                } else {
                    c.text.clone()
                },
                external_status_code: c
                    .external_status_code
                    .clone()
                    .filter(|s| !s.trim().is_empty()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_a_sentence_of_its_own() {
        let texts: std::collections::BTreeSet<String> = CaseStatus::ALL
            .into_iter()
            .map(|s| StatusNotice::default_for(s).text)
            .collect();
        assert_eq!(texts.len(), CaseStatus::ALL.len());
        assert!(texts.iter().all(|t| t.ends_with('.')));
    }

    #[test]
    fn a_configured_code_keeps_the_default_text_and_blank_values_count_as_absent() {
        let only_code = StatusNotice {
            text: " ".into(),
            external_status_code: Some("FX".into()),
        };
        let n = StatusNotice::or_default(Some(&only_code), CaseStatus::Fixed);
        assert_eq!(n.text, "This problem has been fixed.");
        assert_eq!(n.external_status_code.as_deref(), Some("FX"));
        let blank_code = StatusNotice {
            text: "Mended.".into(),
            external_status_code: Some(String::new()),
        };
        let n = StatusNotice::or_default(Some(&blank_code), CaseStatus::Fixed);
        assert_eq!(n.text, "Mended.");
        assert_eq!(n.external_status_code, None);
    }
}
