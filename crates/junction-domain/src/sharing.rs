//! Sharing with partner agencies: data sharing agreements, the classified attributes of a case,
//! and the one lens through which a partner sees a shared case.
//!
//! Every read path (GraphQL queries, nested fields, lists, counts, filters, subscriptions and
//! anything sent to a partner) asks the same questions of this module: is the case visible under
//! an active agreement for the stated purpose, and which of its attributes may be shown.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::auth::{Principal, Role};
use crate::case::{Case, CaseEvent, CaseEventKind};
use crate::case_type::{CaseType, Classification};
use crate::validation::ValidationErrors;

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

/// An agreement's own status; expiry is decided from its dates, not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgreementStatus {
    Active,
    Suspended,
}

impl AgreementStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AgreementStatus::Active => "active",
            AgreementStatus::Suspended => "suspended",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [AgreementStatus::Active, AgreementStatus::Suspended]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// Whether an agreement grants anything at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AgreementState {
    Active,
    Suspended,
    Expired,
    /// Its `valid_from` is still to come.
    Pending,
}

impl AgreementState {
    pub fn as_str(self) -> &'static str {
        match self {
            AgreementState::Active => "active",
            AgreementState::Suspended => "suspended",
            AgreementState::Expired => "expired",
            AgreementState::Pending => "pending",
        }
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

/// How one caller sees one case: in full, or through the agreement it was shared under.
#[derive(Debug, Clone)]
pub enum Lens {
    Full,
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
        }
    }

    /// The classification of the attribute at `path` under this lens's case type.
    pub fn classification(&self, path: &str) -> Option<Classification> {
        match self {
            Lens::Full => None,
            Lens::Partner {
                core, case_type, ..
            } => Some(core.of(path, case_type.as_deref())),
        }
    }

    /// Every attribute of `case` the lens hides, sorted.
    pub fn redacted(&self, case: &Case) -> Vec<String> {
        if matches!(self, Lens::Full) {
            return Vec::new();
        }
        let mut hidden: Vec<String> = CORE_DEFAULTS
            .iter()
            .map(|(p, _)| p.to_string())
            .chain(case.fields.keys().map(|k| format!("fields.{k}")))
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
        if !self.shows("description") {
            out.description = String::new();
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
            CaseEventKind::Routed | CaseEventKind::Delivered | CaseEventKind::DeliveryDead => None,
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

/// A purpose as a partner states it: a short machine name.
pub fn valid_purpose(purpose: &str) -> bool {
    !purpose.is_empty()
        && purpose.len() <= 64
        && purpose
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::{Location, Submitter};
    use crate::case_type::{Datatype, FieldDef};
    use chrono::{Duration, TimeZone};

    fn t(h: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::hours(h)
    }

    fn agreement(id: &str) -> Agreement {
        Agreement {
            id: id.into(),
            jurisdiction_id: "b".into(),
            title: "t".into(),
            partner_agency_id: "police".into(),
            case_types: vec!["food".into()],
            purposes: vec!["crime_prevention".into()],
            lawful_basis: "Crime and Disorder Act 1998 s115".into(),
            ceiling: Classification::Official,
            fields: None,
            valid_from: t(0),
            valid_to: Some(t(10)),
            review_date: None,
            status: AgreementStatus::Active,
        }
    }

    fn field(code: &str, class: Classification) -> FieldDef {
        FieldDef {
            code: code.into(),
            description: code.into(),
            datatype: Datatype::String,
            required: false,
            order: 0,
            classification: class,
            values: vec![],
            datatype_description: None,
        }
    }

    fn food() -> CaseType {
        CaseType {
            jurisdiction_id: "b".into(),
            code: "food".into(),
            name: "Food".into(),
            description: String::new(),
            group: None,
            keywords: vec![],
            agency_id: "eh".into(),
            fields: vec![
                field("risk", Classification::Public),
                field("premises", Classification::Official),
                field("symptoms", Classification::Sensitive),
            ],
            active: true,
        }
    }

    fn case() -> Case {
        Case {
            id: "c1".into(),
            reference: "1".into(),
            jurisdiction_id: "b".into(),
            case_type_code: "food".into(),
            agency_id: "eh".into(),
            status: crate::CaseStatus::Open,
            description: "ill after eating".into(),
            location: Location {
                lat: Some(51.0),
                long: Some(-1.0),
                uprn: None,
                address: Some("1 High St".into()),
            },
            submitter: Submitter {
                name: Some("A Person".into()),
                email: Some("a@example.org".into()),
                phone: None,
            },
            fields: [
                ("risk".to_string(), json!("high")),
                ("premises".to_string(), json!("Cafe")),
                ("symptoms".to_string(), json!("vomiting")),
            ]
            .into(),
            created_at: t(0),
            updated_at: t(0),
            version: 1,
            route: None,
            source_ref: None,
        }
    }

    fn lens(a: Agreement) -> Lens {
        Lens::Partner {
            agreement: Arc::new(a),
            purpose: "crime_prevention".into(),
            agency: "police".into(),
            core: Arc::new(CoreClassification::default()),
            case_type: Some(Arc::new(food())),
        }
    }

    #[test]
    fn redacted_copies_keep_only_what_shows() {
        let l = lens(agreement("a"));
        let r = l.redact(&case());
        assert_eq!(r.submitter, Submitter::default());
        assert_eq!(r.description, "ill after eating");
        assert!(r.fields.contains_key("premises") && !r.fields.contains_key("symptoms"));
        assert!(l.disclosed_in_full(&case()).is_empty());
        let personal = lens(Agreement {
            ceiling: Classification::Personal,
            ..agreement("a")
        });
        assert_eq!(
            personal.disclosed_in_full(&case()),
            vec!["submitter.email", "submitter.name"]
        );
    }

    #[test]
    fn state_follows_status_and_dates() {
        let a = agreement("a");
        assert_eq!(a.state(t(-1)), AgreementState::Pending);
        assert_eq!(a.state(t(0)), AgreementState::Active);
        assert_eq!(a.state(t(10)), AgreementState::Expired);
        let s = Agreement {
            status: AgreementStatus::Suspended,
            ..a.clone()
        };
        assert_eq!(s.state(t(1)), AgreementState::Suspended);
    }

    #[test]
    fn ceiling_and_allow_list_decide_what_shows() {
        let l = lens(agreement("a"));
        assert!(l.shows("reference"));
        assert!(l.shows("fields.risk"));
        assert!(l.shows("fields.premises"));
        assert!(!l.shows("fields.symptoms"));
        assert!(!l.shows("submitter.email"));
        assert!(!l.shows("fields.unknown"), "unknown fields are sensitive");
        assert_eq!(
            l.redacted(&case()),
            vec![
                "fields.symptoms",
                "submitter.email",
                "submitter.name",
                "submitter.phone"
            ]
        );
        let narrowed = lens(Agreement {
            fields: Some(vec!["fields.risk".into()]),
            ..agreement("a")
        });
        assert!(narrowed.shows("fields.risk"));
        assert!(!narrowed.shows("fields.premises"));
        assert!(!narrowed.shows("description"));
        assert!(narrowed.shows("status"), "the envelope always shows");
        assert_eq!(
            narrowed.fields(&case()).keys().collect::<Vec<_>>(),
            vec!["risk"]
        );
    }

    #[test]
    fn disclosures_name_shown_personal_values_only() {
        let personal = lens(Agreement {
            ceiling: Classification::Personal,
            ..agreement("a")
        });
        let wanted: BTreeSet<String> =
            ["submitter.name", "submitter.phone", "fields", "description"]
                .map(String::from)
                .into();
        assert_eq!(personal.disclosed(&case(), &wanted), vec!["submitter.name"]);
        let official = lens(agreement("a"));
        assert!(official.disclosed(&case(), &wanted).is_empty());
        assert!(Lens::Full.disclosed(&case(), &wanted).is_empty());
    }

    fn principal(roles: Vec<Role>, agency: Option<&str>) -> Principal {
        Principal {
            subject: "s".into(),
            agency: agency.map(String::from),
            roles,
        }
    }

    #[test]
    fn partner_access_needs_agency_purpose_and_active_agreement() {
        let list = vec![agreement("a")];
        let p = principal(vec![Role::Partner], Some("police"));
        assert!(matches!(
            access(&principal(vec![Role::Officer], None), None, &[], t(1)),
            Ok(Access::Full)
        ));
        assert_eq!(
            access(
                &principal(vec![Role::Partner], None),
                Some("x"),
                &list,
                t(1)
            )
            .unwrap_err(),
            ScopeError::NoAgency
        );
        assert_eq!(
            access(&p, None, &list, t(1)).unwrap_err(),
            ScopeError::PurposeRequired
        );
        assert_eq!(
            access(&p, Some("marketing"), &list, t(1)).unwrap_err(),
            ScopeError::PurposeNotGranted("marketing".into())
        );
        assert!(matches!(
            access(&p, Some("crime_prevention"), &list, t(11)),
            Err(ScopeError::PurposeNotGranted(_))
        ));
        let Ok(Access::Partner(scope)) = access(&p, Some("crime_prevention"), &list, t(1)) else {
            panic!("partner access expected");
        };
        let share = |agency: &str| Share {
            case_id: "c1".into(),
            agency_id: agency.into(),
            agreement_id: "a".into(),
            since: 0,
        };
        assert!(scope.agreement_for("food", &[share("police")]).is_some());
        assert!(scope.agreement_for("food", &[share("fire")]).is_none());
        assert!(scope.agreement_for("pothole", &[share("police")]).is_none());
        assert!(scope.agreement_for("food", &[]).is_none());
    }

    #[test]
    fn filters_only_on_what_every_agreement_shows() {
        let Ok(Access::Partner(scope)) = access(
            &principal(vec![Role::Partner], Some("police")),
            Some("crime_prevention"),
            &[agreement("a")],
            t(1),
        ) else {
            panic!()
        };
        let core = CoreClassification::default();
        let types = |c: &str| (c == "food").then(food);
        assert!(
            scope
                .may_filter_on("fields.risk", None, &core, &types)
                .is_ok()
        );
        assert!(scope.may_filter_on("status", None, &core, &types).is_ok());
        let err = scope
            .may_filter_on("submitter.email", None, &core, &types)
            .unwrap_err();
        assert!(err.contains("submitter.email"), "{err}");
        assert!(!err.contains("a@example.org"));
    }

    #[test]
    fn events_are_redacted_or_withheld() {
        let l = lens(Agreement {
            fields: Some(vec!["fields.risk".into()]),
            ..agreement("a")
        });
        let event = |kind, data| CaseEvent {
            id: 1,
            case_id: "c1".into(),
            kind,
            actor: "x".into(),
            at: t(0),
            data,
        };
        let (data, redacted) = l
            .event(&event(CaseEventKind::NoteAdded, json!({"note": "secret"})))
            .unwrap();
        assert_eq!(data["note"], Value::Null);
        assert_eq!(redacted, vec!["notes"]);
        assert!(
            l.event(&event(CaseEventKind::Delivered, json!({})))
                .is_none()
        );
        assert!(
            l.event(&event(CaseEventKind::Shared, json!({"agency": "fire"})))
                .is_none()
        );
        assert!(
            l.event(&event(CaseEventKind::Shared, json!({"agency": "police"})))
                .is_some()
        );
    }

    #[test]
    fn overlapping_agreements_must_agree() {
        let a = agreement("a");
        let same = agreement("b");
        assert!(a.disagrees_with(&same).is_none());
        let higher = Agreement {
            ceiling: Classification::Personal,
            ..agreement("b")
        };
        let msg = a.disagrees_with(&higher).unwrap();
        assert!(msg.contains("ceiling"), "{msg}");
        let later = Agreement {
            valid_from: t(10),
            valid_to: None,
            ..higher.clone()
        };
        assert!(a.disagrees_with(&later).is_none(), "back to back is fine");
        let other_type = Agreement {
            case_types: vec!["pothole".into()],
            ..higher
        };
        assert!(a.disagrees_with(&other_type).is_none());
    }

    #[test]
    fn core_classification_is_configurable_except_the_envelope() {
        let mut core = CoreClassification::default();
        assert!(core.set("status", Classification::Sensitive).is_err());
        assert!(core.set("nope", Classification::Public).is_err());
        core.set("description", Classification::Personal).unwrap();
        assert_eq!(core.of("description", None), Classification::Personal);
        assert_eq!(core.of("reference", None), Classification::Public);
    }
}
