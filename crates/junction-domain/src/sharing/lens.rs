//! How a caller may read cases, and the lens through which it sees each one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::auth::{Principal, Role};
use crate::case::{Case, CaseEvent, CaseEventKind};
use crate::case_type::{CaseType, Classification};

use super::agreement::Agreement;
use super::classification::{CORE_DEFAULTS, CoreClassification};

/// How a caller may read cases.
#[derive(Debug, Clone)]
pub enum Access {
    /// Council staff, systems and auditors: every case, every attribute.
    Full,
    /// A partner: only shared cases, through their agreements.
    Partner(Arc<PartnerScope>),
}

/// Why a partner may not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("a partner token must name its agency")]
    NoAgency,
    #[error(
        "partner access needs a purpose (the `purpose` argument or the Junction-Purpose header)"
    )]
    PurposeRequired,
    #[error("purpose `{0}` is not granted by any active agreement with this agency")]
    PurposeNotGranted(String),
    #[error("the roles given may not read cases")]
    NoRole,
}

/// The roles that read every case. A principal with one of these reads as staff.
const FULL_READERS: [Role; 5] = [
    Role::Admin,
    Role::Manager,
    Role::Officer,
    Role::System,
    Role::Auditor,
];

/// Decides how `principal` reads cases: in full, or as a partner limited to the agreements of
/// its agency that are active at `now` and allow `purpose`.
pub fn access(
    principal: &Principal,
    purpose: Option<&str>,
    agency_agreements: &[Agreement],
    now: DateTime<Utc>,
) -> Result<Access, ScopeError> {
    if principal.roles.iter().any(|r| FULL_READERS.contains(r)) {
        return Ok(Access::Full);
    }
    if !principal.roles.contains(&Role::Partner) {
        return Err(ScopeError::NoRole);
    }
    let agency = principal.agency.clone().ok_or(ScopeError::NoAgency)?;
    let purpose = purpose
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .ok_or(ScopeError::PurposeRequired)?;
    let agreements: Vec<Arc<Agreement>> = agency_agreements
        .iter()
        .filter(|a| a.partner_agency_id == agency && a.is_active(now) && a.allows_purpose(purpose))
        .cloned()
        .map(Arc::new)
        .collect();
    if agreements.is_empty() {
        return Err(ScopeError::PurposeNotGranted(purpose.to_string()));
    }
    Ok(Access::Partner(Arc::new(PartnerScope {
        agency,
        purpose: purpose.to_string(),
        agreements,
    })))
}

/// What one partner may see for one stated purpose.
#[derive(Debug, Clone)]
pub struct PartnerScope {
    pub agency: String,
    pub purpose: String,
    /// The agency's agreements that are active and allow the purpose.
    pub agreements: Vec<Arc<Agreement>>,
}

/// One live share of a case with a partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    pub case_id: String,
    pub agency_id: String,
    pub agreement_id: String,
    /// The feed position from which the share holds: events before it are not the partner's.
    pub since: i64,
}

impl PartnerScope {
    /// The agreement under which the partner sees a case of `case_type` shared through
    /// `shares`, if any: the share must be with this agency, under an agreement in scope that
    /// covers the case type.
    pub fn agreement_for(&self, case_type: &str, shares: &[Share]) -> Option<Arc<Agreement>> {
        shares
            .iter()
            .filter(|s| s.agency_id == self.agency)
            .find_map(|s| {
                self.agreements
                    .iter()
                    .find(|a| a.id == s.agreement_id && a.covers(case_type))
                    .cloned()
            })
    }

    /// Checks a filter or sort on `path`: allowed only when every agreement that could show a
    /// matching case shows the attribute, so a value can never be inferred from which cases
    /// come back. `case_type` narrows the agreements to those covering it.
    pub fn may_filter_on(
        &self,
        path: &str,
        case_type_filter: Option<&str>,
        core: &CoreClassification,
        case_type: &dyn Fn(&str) -> Option<CaseType>,
    ) -> Result<(), String> {
        for agreement in &self.agreements {
            let types: Vec<&String> = agreement
                .case_types
                .iter()
                .filter(|c| case_type_filter.is_none_or(|f| f == c.as_str()))
                .collect();
            for code in types {
                let t = case_type(code);
                let class = core.of(path, t.as_ref());
                if !agreement.grants(path, class) {
                    return Err(format!(
                        "filtering or sorting on `{path}` is not allowed: agreement `{}` does not share it",
                        agreement.id
                    ));
                }
            }
        }
        Ok(())
    }
}

/// How one caller sees one case: in full, through the agreement it was shared under, or as
/// the public (and a front-end reading its own cases) see it over Open311.
#[derive(Debug, Clone)]
pub enum Lens {
    Full,
    /// Every attribute classified `up_to` or lower, and nothing personal whatever `up_to`.
    Public {
        up_to: Classification,
        core: Arc<CoreClassification>,
        case_type: Option<Arc<CaseType>>,
    },
    Partner {
        agreement: Arc<Agreement>,
        purpose: String,
        agency: String,
        core: Arc<CoreClassification>,
        case_type: Option<Arc<CaseType>>,
    },
}

impl Lens {
    /// Whether the attribute at `path` is shown.
    pub fn shows(&self, path: &str) -> bool {
        match self {
            Lens::Full => true,
            Lens::Partner {
                agreement,
                core,
                case_type,
                ..
            } => agreement.grants(path, core.of(path, case_type.as_deref())),
            Lens::Public {
                up_to,
                core,
                case_type,
            } => {
                let class = core.of(path, case_type.as_deref());
                class <= *up_to && class < Classification::Personal
            }
        }
    }

    /// The classification of the attribute at `path` under this lens's case type.
    pub fn classification(&self, path: &str) -> Option<Classification> {
        match self {
            Lens::Full => None,
            Lens::Partner {
                core, case_type, ..
            }
            | Lens::Public {
                core, case_type, ..
            } => Some(core.of(path, case_type.as_deref())),
        }
    }

    /// Every attribute the lens hides from a case like `case`, sorted: each core attribute and
    /// each field its type defines, whether or not this case holds a value for it (so the
    /// list says nothing about what the case holds).
    pub fn redacted(&self, case: &Case) -> Vec<String> {
        let case_type = match self {
            Lens::Full => return Vec::new(),
            Lens::Partner { case_type, .. } | Lens::Public { case_type, .. } => case_type,
        };
        let fields: BTreeSet<&str> = match case_type {
            Some(t) => t.fields.iter().map(|f| f.code.as_str()).collect(),
            None => case.fields.keys().map(String::as_str).collect(),
        };
        let mut hidden: Vec<String> = CORE_DEFAULTS
            .iter()
            .map(|(p, _)| p.to_string())
            .chain(fields.iter().map(|k| format!("fields.{k}")))
            .filter(|p| !self.shows(p))
            .collect();
        hidden.sort();
        hidden
    }

    /// The case's field values the lens shows.
    pub fn fields(&self, case: &Case) -> BTreeMap<String, Value> {
        case.fields
            .iter()
            .filter(|(k, _)| self.shows(&format!("fields.{k}")))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The case with every attribute the lens hides emptied: what may be sent to a partner in
    /// a message (an email notice, say), where there is no `redacted` list to mark gaps.
    pub fn redact(&self, case: &Case) -> Case {
        let mut out = case.clone();
        if matches!(self, Lens::Full) {
            return out;
        }
        if !self.shows("agency") {
            out.agency_id = String::new();
        }
        // A case's photos are part of what was reported, and go with its description.
        if !self.shows("description") {
            out.description = String::new();
            out.media_urls = Vec::new();
        }
        if !self.shows("location.point") {
            out.location.lat = None;
            out.location.long = None;
        }
        if !self.shows("location.address") {
            out.location.address = None;
        }
        if !self.shows("location.uprn") {
            out.location.uprn = None;
        }
        if !self.shows("submitter.name") {
            out.submitter.name = None;
        }
        if !self.shows("submitter.email") {
            out.submitter.email = None;
        }
        if !self.shows("submitter.phone") {
            out.submitter.phone = None;
        }
        if !self.shows("sourceRef") {
            out.source_ref = None;
        }
        if !self.shows("route") {
            out.route = None;
        }
        out.fields = self.fields(case);
        out
    }

    /// Every attribute of `case` that is shown, holding a value, and personal or above.
    pub fn disclosed_in_full(&self, case: &Case) -> Vec<String> {
        let all: BTreeSet<String> = CORE_DEFAULTS
            .iter()
            .map(|(p, _)| p.to_string())
            .filter(|p| p != "notes" && p != "updates")
            .chain(std::iter::once("fields".to_string()))
            .collect();
        self.disclosed(case, &all)
    }

    /// Of the attributes a caller asked for, those that disclose personal or sensitive data to
    /// a partner: shown, holding a value, and classified personal or above. Sorted.
    pub fn disclosed(&self, case: &Case, wanted: &BTreeSet<String>) -> Vec<String> {
        if matches!(self, Lens::Full) {
            return Vec::new();
        }
        let mut out: Vec<String> = wanted
            .iter()
            .flat_map(|w| {
                if w == "fields" {
                    case.fields.keys().map(|k| format!("fields.{k}")).collect()
                } else {
                    vec![w.clone()]
                }
            })
            .filter(|p| {
                self.shows(p)
                    && self
                        .classification(p)
                        .is_some_and(|c| c >= Classification::Personal)
                    && has_value(case, p)
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// An event as the lens shows it: its data with hidden attributes removed and named, or
    /// nothing when the partner should not see the event at all (internal plumbing such as
    /// delivery, or a share with another agency).
    pub fn event(&self, event: &CaseEvent) -> Option<(Value, Vec<String>)> {
        let Lens::Partner { agency, .. } = self else {
            return Some((event.data.clone(), Vec::new()));
        };
        let data = &event.data;
        match event.kind {
            CaseEventKind::Created => Some((json!({"reference": data.get("reference")}), vec![])),
            CaseEventKind::StatusChanged => Some((
                json!({"from": data.get("from"), "to": data.get("to")}),
                vec![],
            )),
            CaseEventKind::NoteAdded => Some(self.keep(data, "notes", &["note"])),
            CaseEventKind::UpdateReceived => {
                Some(self.keep(data, "updates", &["description", "external_status_code"]))
            }
            CaseEventKind::Shared | CaseEventKind::Unshared => {
                if data.get("agency").and_then(Value::as_str) == Some(agency.as_str()) {
                    Some((
                        json!({"agency": data.get("agency"), "agreement": data.get("agreement")}),
                        vec![],
                    ))
                } else {
                    None
                }
            }
            CaseEventKind::Routed
            | CaseEventKind::Delivered
            | CaseEventKind::DeliveryDead
            | CaseEventKind::DeliveryNeedsDecision
            | CaseEventKind::FileRefused => None,
        }
    }

    /// Keeps an event's status keys always and its `keys` only when `path` is shown.
    fn keep(&self, data: &Value, path: &str, keys: &[&str]) -> (Value, Vec<String>) {
        let shown = self.shows(path);
        let mut out = serde_json::Map::new();
        if let Some(status) = data.get("status") {
            out.insert("status".into(), status.clone());
        }
        for key in keys {
            let value = if shown {
                data.get(*key).cloned().unwrap_or(Value::Null)
            } else {
                Value::Null
            };
            out.insert((*key).into(), value);
        }
        let redacted = if shown {
            vec![]
        } else {
            vec![path.to_string()]
        };
        (Value::Object(out), redacted)
    }
}

/// Whether `case` holds a value at `path`.
fn has_value(case: &Case, path: &str) -> bool {
    match path {
        "submitter.name" => case.submitter.name.is_some(),
        "submitter.email" => case.submitter.email.is_some(),
        "submitter.phone" => case.submitter.phone.is_some(),
        "location.point" => case.location.lat.is_some(),
        "location.address" => case.location.address.is_some(),
        "location.uprn" => case.location.uprn.is_some(),
        "description" => !case.description.is_empty(),
        "sourceRef" => case.source_ref.is_some(),
        "route" => case.route.is_some(),
        p => match p.strip_prefix("fields.") {
            Some(code) => case.fields.get(code).is_some_and(|v| !v.is_null()),
            // Notes, updates and the agency: present on the case whenever asked for.
            None => true,
        },
    }
}
