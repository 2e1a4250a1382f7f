//! A case as GraphQL shows it: every attribute through the caller's lens, disclosures
//! logged as they are read.

use async_graphql::{Context, ID, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use d::Lens;
use junction_domain as d;
use junction_store::{Store, cases, catalogue, deliveries, sharing as store_sharing};

use super::super::access::DisclosureLog;
use super::super::guard::Can;
use super::*;
use crate::RequestCtx;
use crate::error::ApiResult;
use d::Action;

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
