//! GraphQL object types over the domain's types: the catalogue and cases here, the audit
//! log and deliveries in their own files.

mod audit;
mod delivery;

pub use audit::{AuditConnection, AuditEdge, AuditRecord};
pub use delivery::{Attachment, Connector, Delivery, DeliveryResolution, ExternalRef};

use async_graphql::{Context, Enum, ID, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use d::Lens;
use junction_domain as d;
use junction_store::{Store, cases, catalogue, deliveries, sharing as store_sharing};

use super::access::DisclosureLog;
use super::guard::Can;
use crate::RequestCtx;
use crate::error::{ApiError, ApiResult};
use d::Action;

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

/// The caller, as its token describes it.
#[derive(SimpleObject)]
pub struct Me {
    pub subject: String,
    pub agency: Option<String>,
    pub roles: Vec<Role>,
}

#[derive(SimpleObject)]
pub struct Jurisdiction {
    pub id: ID,
    pub name: String,
}

impl From<d::Jurisdiction> for Jurisdiction {
    fn from(j: d::Jurisdiction) -> Self {
        Jurisdiction {
            id: ID(j.id),
            name: j.name,
        }
    }
}

#[derive(SimpleObject)]
pub struct Agency {
    pub id: ID,
    pub jurisdiction: String,
    pub name: String,
    pub kind: AgencyKind,
    /// Where cases go when the agency has no integration.
    pub email: Option<String>,
}

impl From<d::Agency> for Agency {
    fn from(a: d::Agency) -> Self {
        Agency {
            id: ID(a.id),
            jurisdiction: a.jurisdiction_id,
            name: a.name,
            kind: a.kind.into(),
            email: a.email,
        }
    }
}

#[derive(SimpleObject)]
pub struct ListValue {
    pub key: String,
    pub name: String,
}

/// One typed field of a case type (an Open311 attribute).
#[derive(SimpleObject)]
pub struct Field {
    pub code: String,
    pub description: String,
    pub datatype: Datatype,
    pub required: bool,
    pub order: u32,
    pub classification: Classification,
    pub values: Vec<ListValue>,
    pub datatype_description: Option<String>,
}

/// A kind of case (an Open311 service).
#[derive(SimpleObject)]
pub struct CaseType {
    pub jurisdiction: String,
    pub code: String,
    pub name: String,
    pub description: String,
    pub group: Option<String>,
    pub keywords: Vec<String>,
    pub agency: String,
    pub active: bool,
    /// Listed, accepted and readable over Open311.
    pub published: bool,
    pub fields: Vec<Field>,
}

impl From<d::CaseType> for CaseType {
    fn from(c: d::CaseType) -> Self {
        CaseType {
            jurisdiction: c.jurisdiction_id,
            code: c.code,
            name: c.name,
            description: c.description,
            group: c.group,
            keywords: c.keywords,
            agency: c.agency_id,
            active: c.active,
            published: c.published,
            fields: c
                .fields
                .into_iter()
                .map(|f| Field {
                    code: f.code,
                    description: f.description,
                    datatype: f.datatype.into(),
                    required: f.required,
                    order: f.order,
                    classification: f.classification.into(),
                    values: f
                        .values
                        .into_iter()
                        .map(|v| ListValue {
                            key: v.key,
                            name: v.name,
                        })
                        .collect(),
                    datatype_description: f.datatype_description,
                })
                .collect(),
        }
    }
}

#[derive(SimpleObject)]
pub struct Location {
    pub lat: Option<f64>,
    pub long: Option<f64>,
    pub uprn: Option<String>,
    pub address: Option<String>,
}

#[derive(SimpleObject)]
pub struct Submitter {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// One case, as the caller may see it.
pub struct Case {
    pub case: std::sync::Arc<d::Case>,
    pub lens: Lens,
}

impl Case {
    /// A case shown in full (council staff, systems, auditors).
    pub fn full(case: d::Case) -> Self {
        Case {
            case: std::sync::Arc::new(case),
            lens: Lens::Full,
        }
    }

    /// A case seen through `lens`.
    pub fn seen(case: d::Case, lens: Lens) -> Self {
        Case {
            case: std::sync::Arc::new(case),
            lens,
        }
    }

    /// `value` when the lens shows `path`, recording the disclosure if it is personal data.
    fn show<T>(&self, ctx: &Context<'_>, path: &str, value: T) -> Option<T> {
        if !self.lens.shows(path) {
            return None;
        }
        self.disclose(ctx, &[path]);
        Some(value)
    }

    /// Records, for a partner, which of `paths` disclose personal or sensitive values.
    fn disclose(&self, ctx: &Context<'_>, paths: &[&str]) {
        let Lens::Partner {
            agreement,
            purpose,
            agency,
            ..
        } = &self.lens
        else {
            return;
        };
        let wanted = paths.iter().map(|p| p.to_string()).collect();
        let fields = self.lens.disclosed(&self.case, &wanted);
        if fields.is_empty() {
            return;
        }
        if let (Some(log), Some(request)) = (
            ctx.data_opt::<DisclosureLog>(),
            ctx.data_opt::<RequestCtx>(),
        ) {
            log.push(d::AuditDisclosure {
                case_id: self.case.id.clone(),
                case_reference: self.case.reference.clone(),
                partner_agency: agency.clone(),
                agreement_id: agreement.id.clone(),
                purpose: purpose.clone(),
                fields,
                channel: request.channel.to_string(),
            });
        }
    }
}

#[Object]
impl Case {
    async fn id(&self) -> ID {
        ID(self.case.id.clone())
    }
    /// Human-facing reference; Open311's `service_request_id`.
    async fn reference(&self) -> &str {
        &self.case.reference
    }
    async fn jurisdiction(&self) -> &str {
        &self.case.jurisdiction_id
    }
    /// The case type's code.
    async fn case_type_code(&self) -> &str {
        &self.case.case_type_code
    }
    #[graphql(guard = "Can(Action::ReadCaseTypes)")]
    async fn case_type(&self, ctx: &Context<'_>) -> ApiResult<Option<CaseType>> {
        let store = ctx.data_unchecked::<Store>();
        Ok(
            catalogue::case_type(store, &self.case.jurisdiction_id, &self.case.case_type_code)
                .await?
                .map(Into::into),
        )
    }
    /// The owning agency's id; null when redacted.
    async fn agency_id(&self, ctx: &Context<'_>) -> Option<&str> {
        self.show(ctx, "agency", self.case.agency_id.as_str())
    }
    #[graphql(guard = "Can(Action::ReadAgencies)")]
    async fn agency(&self, ctx: &Context<'_>) -> ApiResult<Option<Agency>> {
        if self.show(ctx, "agency", ()).is_none() {
            return Ok(None);
        }
        let store = ctx.data_unchecked::<Store>();
        Ok(catalogue::agency(store, &self.case.agency_id)
            .await?
            .map(Into::into))
    }
    async fn status(&self) -> CaseStatus {
        self.case.status.into()
    }
    /// Null when redacted.
    async fn description(&self, ctx: &Context<'_>) -> Option<&str> {
        self.show(ctx, "description", self.case.description.as_str())
    }
    /// Photos and other media the reporting front-end holds, by URL. They are part of what was
    /// reported and shown with `description`; empty when it is redacted.
    async fn media_urls(&self, ctx: &Context<'_>) -> Vec<String> {
        self.show(ctx, "description", self.case.media_urls.clone())
            .unwrap_or_default()
    }
    async fn location(&self, ctx: &Context<'_>) -> Location {
        let l = &self.case.location;
        let point = self.show(ctx, "location.point", (l.lat, l.long));
        Location {
            lat: point.and_then(|p| p.0),
            long: point.and_then(|p| p.1),
            uprn: self.show(ctx, "location.uprn", l.uprn.clone()).flatten(),
            address: self
                .show(ctx, "location.address", l.address.clone())
                .flatten(),
        }
    }
    async fn submitter(&self, ctx: &Context<'_>) -> Submitter {
        let s = &self.case.submitter;
        // Only the parts actually selected count as disclosed.
        let wanted = ctx.look_ahead();
        let pick = |path: &str, name: &str, value: &Option<String>| {
            if wanted.field(name).exists() {
                self.show(ctx, path, value.clone()).flatten()
            } else {
                None
            }
        };
        Submitter {
            name: pick("submitter.name", "name", &s.name),
            email: pick("submitter.email", "email", &s.email),
            phone: pick("submitter.phone", "phone", &s.phone),
        }
    }
    /// Field values by code, as validated against the case type; redacted fields are left out
    /// and named in `redacted`.
    async fn fields(
        &self,
        ctx: &Context<'_>,
    ) -> Json<std::collections::BTreeMap<String, serde_json::Value>> {
        self.disclose(ctx, &["fields"]);
        Json(self.lens.fields(&self.case))
    }
    /// Attributes hidden from the caller by its sharing agreement (`submitter.email`,
    /// `fields.symptoms`, …); empty for council staff.
    async fn redacted(&self) -> Vec<String> {
        self.lens.redacted(&self.case)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.case.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.case.updated_at
    }
    /// Bumped by every change; pass it as `expectedVersion` to detect lost updates.
    async fn version(&self) -> i64 {
        self.case.version
    }
    /// Where routing sent the case and which rules decided it.
    #[graphql(guard = "Can(Action::ReadCases)")]
    async fn route(&self, ctx: &Context<'_>) -> Option<Json<d::Route>> {
        self.show(ctx, "route", ())
            .and(self.case.route.clone().map(Json))
    }
    /// The submitting front-end's own id for the case (FixMyStreet's report id).
    #[graphql(guard = "Can(Action::ReadCases)")]
    async fn source_ref(&self, ctx: &Context<'_>) -> Option<&str> {
        self.show(ctx, "sourceRef", ())
            .and(self.case.source_ref.as_deref())
    }
    /// The case's deliveries to connectors, oldest first.
    #[graphql(guard = "Can(Action::ReadDeliveries)")]
    async fn deliveries(&self, ctx: &Context<'_>) -> ApiResult<Vec<Delivery>> {
        let store = ctx.data_unchecked::<Store>();
        Ok(deliveries::for_case(store, &self.case.id)
            .await?
            .into_iter()
            .map(Delivery)
            .collect())
    }
    /// The reference each connector gave the case; the first one a connector gives is kept.
    #[graphql(guard = "Can(Action::ReadDeliveries)")]
    async fn external_refs(&self, ctx: &Context<'_>) -> ApiResult<Vec<ExternalRef>> {
        let store = ctx.data_unchecked::<Store>();
        Ok(deliveries::external_refs(store, &self.case.id)
            .await?
            .into_iter()
            .map(|(connector, external_id)| ExternalRef {
                connector,
                external_id,
            })
            .collect())
    }
    /// The files that came with the case (photos uploaded by a front-end), oldest first.
    /// Council staff only: download each from its `url` with the same bearer token.
    #[graphql(guard = "Can(Action::ReadAttachments)")]
    async fn attachments(&self, ctx: &Context<'_>) -> ApiResult<Vec<Attachment>> {
        let store = ctx.data_unchecked::<Store>();
        Ok(junction_store::attachments::of_case(store, &self.case.id)
            .await?
            .into_iter()
            .map(Attachment)
            .collect())
    }
    /// Who the case is shared with, live and withdrawn, oldest first.
    #[graphql(guard = "Can(Action::ReadShares)")]
    async fn shares(&self, ctx: &Context<'_>) -> ApiResult<Vec<CaseShare>> {
        let store = ctx.data_unchecked::<Store>();
        Ok(store_sharing::shares_of_case(store, &self.case.id)
            .await?
            .into_iter()
            .map(CaseShare)
            .collect())
    }
    /// What happened to the case, oldest first. A partner sees what its agreement allows:
    /// status changes, notes and updates (their text redacted above its ceiling), and its own
    /// shares.
    #[graphql(guard = "Can(Action::ReadCases)")]
    async fn history(&self, ctx: &Context<'_>) -> ApiResult<Vec<CaseEvent>> {
        let store = ctx.data_unchecked::<Store>();
        let mut out = Vec::new();
        for event in cases::history(store, &self.case.id).await? {
            let Some((data, redacted)) = self.lens.event(&event) else {
                continue;
            };
            let texts: &[&str] = match event.kind {
                d::CaseEventKind::NoteAdded => &["notes"],
                d::CaseEventKind::UpdateReceived => &["updates"],
                _ => &[],
            };
            if redacted.is_empty() {
                self.disclose(ctx, texts);
            }
            out.push(CaseEvent {
                event: d::CaseEvent { data, ..event },
                redacted,
            });
        }
        Ok(out)
    }
}

/// One share of a case with a partner agency.
pub struct CaseShare(pub store_sharing::ShareRecord);

#[Object]
impl CaseShare {
    async fn agency(&self) -> &str {
        &self.0.agency_id
    }
    async fn agreement(&self) -> &str {
        &self.0.agreement_id
    }
    /// The sharing rule that made the share, if a rule did.
    async fn rule(&self) -> Option<&str> {
        self.0.rule.as_deref()
    }
    async fn reason(&self) -> &str {
        &self.0.reason
    }
    async fn shared_by(&self) -> &str {
        &self.0.shared_by
    }
    async fn shared_at(&self) -> DateTime<Utc> {
        self.0.shared_at
    }
    async fn unshared_at(&self) -> Option<DateTime<Utc>> {
        self.0.unshared_at
    }
    async fn unshared_by(&self) -> Option<&str> {
        self.0.unshared_by.as_deref()
    }
    async fn unshare_reason(&self) -> Option<&str> {
        self.0.unshare_reason.as_deref()
    }
    async fn live(&self) -> bool {
        self.0.unshared_at.is_none()
    }
}

/// One entry in a case's history.
pub struct CaseEvent {
    pub event: d::CaseEvent,
    /// What the caller's agreement hid from `data`.
    pub redacted: Vec<String>,
}

#[Object]
impl CaseEvent {
    async fn id(&self) -> ID {
        ID(self.event.id.to_string())
    }
    async fn kind(&self) -> CaseEventKind {
        self.event.kind.into()
    }
    async fn actor(&self) -> &str {
        &self.event.actor
    }
    async fn at(&self) -> DateTime<Utc> {
        self.event.at
    }
    /// Kind-specific detail, e.g. `{"from": "open", "to": "fixed"}` or `{"note": "…"}`;
    /// hidden values are null.
    async fn data(&self) -> Json<serde_json::Value> {
        Json(self.event.data.clone())
    }
    /// Attributes hidden from `data` by the caller's sharing agreement (`notes`, `updates`).
    async fn redacted(&self) -> &[String] {
        &self.redacted
    }
}

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
