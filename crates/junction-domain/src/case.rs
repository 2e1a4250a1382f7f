//! Cases: one report, request, application or ticket, with its status and history.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::case_type::CaseType;
use crate::validation::ValidationErrors;

/// Longest description a case type takes unless configured otherwise, in characters: well
/// above what front-ends really send (FixMyStreet wraps the citizen's 2,000 or more characters
/// in its own title, detail and URL lines).
pub const DEFAULT_MAX_DESCRIPTION_CHARS: usize = 20_000;

/// Where a case is in its life. The names are the lower-case extended Open311 statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

impl CaseStatus {
    pub const ALL: [CaseStatus; 12] = [
        CaseStatus::Open,
        CaseStatus::ForTriage,
        CaseStatus::Investigating,
        CaseStatus::InProgress,
        CaseStatus::ActionScheduled,
        CaseStatus::Fixed,
        CaseStatus::Closed,
        CaseStatus::Duplicate,
        CaseStatus::NotCouncilsResponsibility,
        CaseStatus::NoFurtherAction,
        CaseStatus::InternalReferral,
        CaseStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        crate::wire_name::wire_name(&self)
    }

    pub fn parse(s: &str) -> Option<Self> {
        crate::wire_name::from_wire_name(s)
    }

    /// Whether the case counts as closed (Open311's basic `closed`).
    pub fn is_closed(self) -> bool {
        !matches!(
            self,
            CaseStatus::Open
                | CaseStatus::ForTriage
                | CaseStatus::Investigating
                | CaseStatus::InProgress
                | CaseStatus::ActionScheduled
        )
    }

    /// Checks a move to `to`. Any status may follow any other (a closed case may be reopened),
    /// but a move must change something.
    pub fn transition(self, to: CaseStatus) -> Result<CaseStatus, String> {
        if self == to {
            return Err(format!("case is already `{}`", to.as_str()));
        }
        Ok(to)
    }
}

/// Where a case is: at least one of a point, a UPRN or an address.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub lat: Option<f64>,
    pub long: Option<f64>,
    /// Unique Property Reference Number: up to 12 digits.
    pub uprn: Option<String>,
    pub address: Option<String>,
}

/// Who reported a case. Every field is personal data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submitter {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// A case as submitted, before it has a reference.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCase {
    pub case_type_code: String,
    pub description: String,
    pub location: Location,
    pub submitter: Submitter,
    pub fields: BTreeMap<String, Value>,
    /// The submitting front-end's own id for the case (FixMyStreet's report id), if it sent one.
    pub source_ref: Option<String>,
    /// Photos and other media the front-end holds, by URL (Open311's repeatable `media_url`).
    pub media_urls: Vec<String>,
}

/// Most media URLs one case may carry.
pub const MAX_MEDIA_URLS: usize = 20;
/// Longest media URL accepted, in bytes.
pub const MAX_MEDIA_URL_BYTES: usize = 2_048;

impl NewCase {
    /// Validates the case against its case type, returning it with normalised fields.
    pub fn validate(mut self, case_type: &CaseType) -> Result<NewCase, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        if !case_type.active {
            errors.push(
                "caseType",
                format!(
                    "case type `{}` is retired and accepts no new cases",
                    case_type.code
                ),
            );
        }
        self.description = self.description.trim().to_string();
        let chars = self.description.chars().count();
        let max = case_type.max_description_chars;
        if chars > max {
            errors.push(
                "description",
                format!("is {chars} characters long, more than the {max} allowed"),
            );
        }
        validate_location(&mut self.location, &mut errors);
        validate_submitter(&mut self.submitter, &mut errors);
        validate_media_urls(&mut self.media_urls, &mut errors);
        match case_type.validate_fields(&self.fields) {
            Ok(fields) => self.fields = fields,
            Err(field_errors) => errors.0.extend(field_errors.0),
        }
        errors.into_result().map(|()| self)
    }
}

/// Media URLs: absolute `http` or `https` URLs, blanks dropped, repeats kept once.
fn validate_media_urls(urls: &mut Vec<String>, errors: &mut ValidationErrors) {
    let mut kept: Vec<String> = Vec::with_capacity(urls.len());
    for url in urls.drain(..) {
        let url = url.trim().to_string();
        if url.is_empty() || kept.contains(&url) {
            continue;
        }
        if url.len() > MAX_MEDIA_URL_BYTES {
            errors.push(
                "mediaUrls",
                format!("a URL is longer than {MAX_MEDIA_URL_BYTES} bytes"),
            );
        } else if !is_web_url(&url) {
            errors.push(
                "mediaUrls",
                format!("`{url}` is not an absolute http or https URL"),
            );
        }
        kept.push(url);
    }
    if kept.len() > MAX_MEDIA_URLS {
        errors.push(
            "mediaUrls",
            format!("at most {MAX_MEDIA_URLS} URLs, not {}", kept.len()),
        );
    }
    *urls = kept;
}

/// Whether `s` is an absolute `http(s)://host/…` URL with no spaces or control characters.
fn is_web_url(s: &str) -> bool {
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &s[8..]
    } else if lower.starts_with("http://") {
        &s[7..]
    } else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    !host.is_empty()
        && !host.contains('@')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn blank_to_none(value: &mut Option<String>) {
    if let Some(s) = value {
        let trimmed = s.trim();
        if trimmed.is_empty() {
            *value = None;
        } else if trimmed.len() != s.len() {
            *value = Some(trimmed.to_string());
        }
    }
}

fn validate_location(location: &mut Location, errors: &mut ValidationErrors) {
    blank_to_none(&mut location.uprn);
    blank_to_none(&mut location.address);
    match (location.lat, location.long) {
        (Some(lat), Some(long)) => {
            if !(-90.0..=90.0).contains(&lat) || !lat.is_finite() {
                errors.push("location.lat", "must be between -90 and 90");
            }
            if !(-180.0..=180.0).contains(&long) || !long.is_finite() {
                errors.push("location.long", "must be between -180 and 180");
            }
        }
        (Some(_), None) => errors.push("location.long", "is required when lat is given"),
        (None, Some(_)) => errors.push("location.lat", "is required when long is given"),
        (None, None) => {}
    }
    if let Some(uprn) = &location.uprn
        && (uprn.len() > 12 || !uprn.bytes().all(|b| b.is_ascii_digit()))
    {
        errors.push("location.uprn", "must be up to 12 digits");
    }
    if let Some(address) = &location.address
        && address.chars().count() > 1_000
    {
        errors.push("location.address", "is longer than 1000 characters");
    }
    if location.lat.is_none() && location.uprn.is_none() && location.address.is_none() {
        errors.push("location", "needs lat and long, a uprn or an address");
    }
}

fn validate_submitter(submitter: &mut Submitter, errors: &mut ValidationErrors) {
    blank_to_none(&mut submitter.name);
    blank_to_none(&mut submitter.email);
    blank_to_none(&mut submitter.phone);
    if let Some(email) = &submitter.email {
        let ok = email.len() <= 254
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            })
            && !email.chars().any(char::is_whitespace);
        if !ok {
            errors.push("submitter.email", "is not an email address");
        }
    }
    if let Some(phone) = &submitter.phone
        && (phone.len() > 40
            || !phone
                .chars()
                .all(|c| c.is_ascii_digit() || " +()-".contains(c)))
    {
        errors.push(
            "submitter.phone",
            "may hold only digits, spaces and + ( ) -",
        );
    }
    if let Some(name) = &submitter.name
        && name.chars().count() > 200
    {
        errors.push("submitter.name", "is longer than 200 characters");
    }
}

/// A stored case.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub id: String,
    /// Human-facing reference, unique across Junction; Open311's `service_request_id`.
    pub reference: String,
    pub jurisdiction_id: String,
    pub case_type_code: String,
    pub agency_id: String,
    pub status: CaseStatus,
    pub description: String,
    pub location: Location,
    pub submitter: Submitter,
    pub fields: BTreeMap<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the status last changed, by the clock of whoever changed it (a back-end's update
    /// carries its own time); `None` while the case has the status it was made with. An update
    /// older than this never overwrites the newer state.
    pub status_at: Option<DateTime<Utc>>,
    /// Bumped by every change; a caller may name the version it saw to detect lost updates.
    pub version: i64,
    /// Where routing sent the case, and which rules decided it.
    pub route: Option<crate::route::Route>,
    /// The submitting front-end's own id for the case, if it sent one. It belongs to
    /// `created_by`: only that client is ever shown it.
    pub source_ref: Option<String>,
    /// Who made the case: a person's or system's subject, or `open311:<client>`.
    pub created_by: String,
    /// Photos and other media the front-end holds, by URL.
    pub media_urls: Vec<String>,
}

impl Case {
    /// A new, open case from a validated submission, before routing.
    pub fn open(
        id: String,
        reference: String,
        jurisdiction_id: &str,
        agency_id: &str,
        new: NewCase,
        created_by: &str,
        now: DateTime<Utc>,
    ) -> Case {
        Case {
            id,
            reference,
            jurisdiction_id: jurisdiction_id.to_string(),
            case_type_code: new.case_type_code,
            agency_id: agency_id.to_string(),
            status: CaseStatus::Open,
            description: new.description,
            location: new.location,
            submitter: new.submitter,
            fields: new.fields,
            created_at: now,
            updated_at: now,
            status_at: None,
            version: 1,
            route: None,
            source_ref: new.source_ref,
            created_by: created_by.to_string(),
            media_urls: new.media_urls,
        }
    }
}

/// What happened to a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseEventKind {
    Created,
    StatusChanged,
    NoteAdded,
    /// Routing decided where the case goes: `{ "route": .. }`.
    Routed,
    /// A connector accepted the case: `{ "connector": .., "external_ref": .. }`.
    Delivered,
    /// A delivery was given up on: `{ "connector": .., "error": .. }`.
    DeliveryDead,
    /// Whether a delivery arrived cannot be proved; a person must decide:
    /// `{ "connector": .., "reason": .. }`.
    DeliveryNeedsDecision,
    /// An update arrived from a back-end or front-end: `{ "source": .., "status": .. }`.
    UpdateReceived,
    /// The case was shared with a partner: `{ "agency": .., "agreement": .., "reason": .. }`.
    Shared,
    /// A share was withdrawn: `{ "agency": .., "agreement": .., "reason": .. }`.
    Unshared,
    /// A file that came with the case or an update was not kept (over a limit):
    /// `{ "part": .., "fileName": .., "contentType": .., "sizeAtLeast": .., "reason": .. }`.
    FileRefused,
}

impl CaseEventKind {
    pub fn as_str(self) -> &'static str {
        crate::wire_name::wire_name(&self)
    }

    /// Whether events of this kind go into the partner feed (subscriptions), in commit order.
    pub fn is_fed(self) -> bool {
        matches!(
            self,
            CaseEventKind::Created
                | CaseEventKind::StatusChanged
                | CaseEventKind::NoteAdded
                | CaseEventKind::UpdateReceived
                | CaseEventKind::Shared
                | CaseEventKind::Unshared
        )
    }

    pub fn parse(s: &str) -> Option<Self> {
        crate::wire_name::from_wire_name(s)
    }
}

/// One entry in a case's history.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseEvent {
    pub id: i64,
    pub case_id: String,
    pub kind: CaseEventKind,
    pub actor: String,
    pub at: DateTime<Utc>,
    /// Kind-specific detail: `{ "from": .., "to": .. }`, `{ "note": .. }`.
    pub data: Value,
}

/// A status change or comment on a case, from Junction, a back-end or a front-end. Open311
/// serves these as `servicerequestupdates`.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseUpdate {
    /// Junction's own id for the update, unique and stable: Open311's `update_id`.
    pub id: i64,
    pub case_id: String,
    pub case_reference: String,
    /// The submitting front-end's id for the case, if it sent one: shown only to that
    /// front-end (`case_created_by`).
    pub case_source_ref: Option<String>,
    /// Who made the case (see [`Case::created_by`]).
    pub case_created_by: String,
    pub case_type_code: String,
    /// Who the update came from: `junction`, `open311:<client>`, `connector:<id>`.
    pub source: String,
    /// The source's own id for the update, used to drop repeats.
    pub source_update_id: Option<String>,
    /// The status the update asked for, as its source sent it.
    pub status: Option<CaseStatus>,
    /// The status the case had once the update was recorded: what front-ends are told, so the
    /// update feed never says a case took a status it did not.
    pub case_status: CaseStatus,
    pub external_status_code: Option<String>,
    pub description: String,
    pub media_urls: Vec<String>,
    /// When the update happened, as its source says.
    pub updated_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// Longest note accepted, in characters.
pub const MAX_NOTE_CHARS: usize = 10_000;

/// Validates a note's text, returning it trimmed.
pub fn validate_note(note: &str) -> Result<String, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let note = note.trim();
    let chars = note.chars().count();
    if chars == 0 {
        errors.push("note", "is empty");
    } else if chars > MAX_NOTE_CHARS {
        errors.push(
            "note",
            format!("is {chars} characters long, more than the {MAX_NOTE_CHARS} allowed"),
        );
    }
    errors.into_result().map(|()| note.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case_type::CaseType;

    fn case_type() -> CaseType {
        CaseType {
            jurisdiction_id: "j".into(),
            code: "flytip".into(),
            name: "Fly-tipping".into(),
            description: String::new(),
            group: None,
            keywords: vec![],
            agency_id: "env".into(),
            fields: vec![],
            active: true,
            published: true,
            max_description_chars: crate::case::DEFAULT_MAX_DESCRIPTION_CHARS,
            statuses: Default::default(),
        }
    }

    fn new_case() -> NewCase {
        NewCase {
            case_type_code: "flytip".into(),
            description: " Mattress on the verge ".into(),
            location: Location {
                lat: Some(50.7),
                long: Some(-2.4),
                uprn: None,
                address: None,
            },
            submitter: Submitter {
                name: Some("A Resident".into()),
                email: Some(" a@example.org ".into()),
                phone: None,
            },
            fields: BTreeMap::new(),
            source_ref: None,
            media_urls: Vec::new(),
        }
    }

    #[test]
    fn trims_and_accepts_a_good_case() {
        let case = new_case().validate(&case_type()).unwrap();
        assert_eq!(case.description, "Mattress on the verge");
        assert_eq!(case.submitter.email.as_deref(), Some("a@example.org"));
    }

    #[test]
    fn names_every_bad_field() {
        let mut case = new_case();
        case.description = "x".repeat(DEFAULT_MAX_DESCRIPTION_CHARS + 1);
        case.location = Location {
            lat: Some(95.0),
            long: None,
            uprn: Some("12a".into()),
            address: None,
        };
        case.submitter.email = Some("not-an-address".into());
        let errors = case.validate(&case_type()).unwrap_err();
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "description",
                "location.long",
                "location.uprn",
                "submitter.email"
            ]
        );
    }

    #[test]
    fn location_is_required() {
        let mut case = new_case();
        case.location = Location::default();
        let errors = case.validate(&case_type()).unwrap_err();
        assert_eq!(errors.0[0].field, "location");
    }

    #[test]
    fn retired_case_types_refuse_new_cases() {
        let mut ct = case_type();
        ct.active = false;
        assert_eq!(new_case().validate(&ct).unwrap_err().0[0].field, "caseType");
    }

    #[test]
    fn status_must_change() {
        assert!(CaseStatus::Open.transition(CaseStatus::Open).is_err());
        assert_eq!(
            CaseStatus::Fixed.transition(CaseStatus::Open),
            Ok(CaseStatus::Open)
        );
        assert!(CaseStatus::Fixed.is_closed());
        assert!(!CaseStatus::InProgress.is_closed());
        for s in CaseStatus::ALL {
            assert_eq!(CaseStatus::parse(s.as_str()), Some(s));
        }
    }
}
