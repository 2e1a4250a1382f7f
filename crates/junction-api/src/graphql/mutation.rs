//! Write operations. Each names the action it needs in its guard; each change is audited by the
//! store in the same transaction.

use std::collections::BTreeMap;

use async_graphql::{Context, ID, InputObject, Json, Object};
use junction_domain::{Action, DeliveryId, Location, NewCase, Submitter};
use junction_store::cases::Arrival;
use junction_store::deliveries::{self, PauseTarget};
use junction_store::{Store, cases, catalogue};

use super::guard::Can;
use super::types::*;
use crate::RequestCtx;
use crate::error::{ApiError, ApiResult};
use crate::intake::Intake;

#[derive(Default)]
pub struct MutationRoot;

#[derive(InputObject, Default)]
pub struct LocationInput {
    pub lat: Option<f64>,
    pub long: Option<f64>,
    pub uprn: Option<String>,
    pub address: Option<String>,
}

#[derive(InputObject, Default)]
pub struct SubmitterInput {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(InputObject)]
pub struct CreateCaseInput {
    /// Required when Junction serves more than one jurisdiction.
    pub jurisdiction: Option<String>,
    /// The case type's code.
    pub case_type: String,
    pub description: String,
    pub location: LocationInput,
    pub submitter: Option<SubmitterInput>,
    /// Field values by code: strings, numbers, or lists of keys for multi-value lists.
    pub fields: Option<Json<BTreeMap<String, serde_json::Value>>>,
    /// Photos and other media the caller holds, as absolute http(s) URLs (at most 20).
    pub media_urls: Option<Vec<String>>,
    /// The caller's own key for this case (1 to 200 characters). Sent again by the same caller
    /// (a retry after a lost answer), it returns the case already made and creates nothing.
    pub idempotency_key: Option<String>,
}

#[Object(name = "CaseMutation")]
impl MutationRoot {
    /// Creates a case and returns it with its reference.
    #[graphql(guard = "Can(Action::CreateCase)")]
    async fn create_case(&self, ctx: &Context<'_>, input: CreateCaseInput) -> ApiResult<Case> {
        let store = ctx.data_unchecked::<Store>();
        let actor = ctx.data_unchecked::<RequestCtx>().actor();
        let jurisdiction = resolve_jurisdiction(store, input.jurisdiction).await?;
        let submitter = input.submitter.unwrap_or_default();
        let new = NewCase {
            case_type_code: input.case_type,
            description: input.description,
            location: Location {
                lat: input.location.lat,
                long: input.location.long,
                uprn: input.location.uprn,
                address: input.location.address,
            },
            submitter: Submitter {
                name: submitter.name,
                email: submitter.email,
                phone: submitter.phone,
            },
            fields: input.fields.map(|j| j.0).unwrap_or_default(),
            source_ref: None,
            media_urls: input.media_urls.unwrap_or_default(),
        };
        let key = input.idempotency_key;
        if key
            .as_deref()
            .is_some_and(|k| k.trim().is_empty() || k.chars().count() > 200)
        {
            return Err(ApiError::invalid(
                "input.idempotencyKey",
                "must be 1 to 200 characters",
            ));
        }
        let arrival = Arrival {
            idempotency_key: key.as_deref(),
            ..Arrival::default()
        };
        let created = ctx
            .data_unchecked::<Intake>()
            .create(&actor, &jurisdiction, new, arrival)
            .await?;
        Ok(Case::full(created.case))
    }

    /// Moves a case to another status. With `expectedVersion`, fails with CONFLICT if the case
    /// changed since that version.
    #[graphql(guard = "Can(Action::ChangeCaseStatus)")]
    async fn change_case_status(
        &self,
        ctx: &Context<'_>,
        id: ID,
        status: CaseStatus,
        expected_version: Option<i64>,
    ) -> ApiResult<Case> {
        let store = ctx.data_unchecked::<Store>();
        let actor = ctx.data_unchecked::<RequestCtx>().actor();
        Ok(Case::full(
            cases::change_status(store, &actor, &id, status.into(), expected_version).await?,
        ))
    }

    /// Adds a note to a case's history.
    #[graphql(guard = "Can(Action::AddCaseNote)")]
    async fn add_case_note(&self, ctx: &Context<'_>, id: ID, note: String) -> ApiResult<CaseEvent> {
        let store = ctx.data_unchecked::<Store>();
        let actor = ctx.data_unchecked::<RequestCtx>().actor();
        Ok(CaseEvent {
            event: cases::add_note(store, &actor, &id, &note).await?,
            redacted: Vec::new(),
        })
    }

    /// Routes a case again (under `caseType` after a category change) and sends it where the
    /// new route says. Unsent deliveries are cancelled; earlier external references stay in
    /// the case's history.
    #[graphql(guard = "Can(Action::RerouteCase)")]
    async fn reroute_case(
        &self,
        ctx: &Context<'_>,
        id: ID,
        case_type: Option<String>,
    ) -> ApiResult<Case> {
        let actor = ctx.data_unchecked::<RequestCtx>().actor();
        let case = ctx
            .data_unchecked::<Intake>()
            .reroute(&actor, &id, case_type.as_deref())
            .await?;
        Ok(Case::full(case))
    }

    /// Sends a failed or dead delivery again, now, with a fresh maximum age.
    #[graphql(guard = "Can(Action::RetryDelivery)")]
    async fn retry_delivery(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Delivery> {
        let store = ctx.data_unchecked::<Store>();
        let actor = ctx.data_unchecked::<RequestCtx>().actor();
        let n = id
            .parse::<DeliveryId>()
            .map_err(|_| ApiError::invalid("id", "is not a delivery id"))?;
        let d = deliveries::retry(store, &actor, n).await?;
        ctx.data_unchecked::<Intake>().wake();
        Ok(Delivery(d))
    }

    /// Says what became of a delivery whose outcome could not be proved (state
    /// `NEEDS_DECISION`, or still `AMBIGUOUS`): `ARRIVED` records it as sent, with the
    /// back-end's `reference` if it gave one; `SEND_AGAIN` sends it now with a fresh maximum
    /// age. Audited with who decided.
    #[graphql(guard = "Can(Action::ResolveDelivery)")]
    async fn resolve_delivery(
        &self,
        ctx: &Context<'_>,
        id: ID,
        outcome: DeliveryResolution,
        reference: Option<String>,
    ) -> ApiResult<Delivery> {
        let store = ctx.data_unchecked::<Store>();
        let actor = ctx.data_unchecked::<RequestCtx>().actor();
        let n = id
            .parse::<DeliveryId>()
            .map_err(|_| ApiError::invalid("id", "is not a delivery id"))?;
        let reference = reference.map(|r| r.trim().to_string());
        let resolution = match outcome {
            DeliveryResolution::Arrived => {
                if let Some(r) = &reference
                    && (r.is_empty() || r.len() > 200)
                {
                    return Err(ApiError::invalid(
                        "reference",
                        "must be 1 to 200 characters when given",
                    ));
                }
                deliveries::Resolution::Arrived { reference }
            }
            DeliveryResolution::SendAgain => {
                if reference.is_some() {
                    return Err(ApiError::invalid(
                        "reference",
                        "is only for an outcome of ARRIVED",
                    ));
                }
                deliveries::Resolution::SendAgain
            }
        };
        let d = deliveries::resolve(store, &actor, n, &resolution).await?;
        ctx.data_unchecked::<Intake>().wake();
        Ok(Delivery(d))
    }

    /// Makes a schedule due now (an update poll, say, after a back-end came back); a process
    /// with workers runs it within seconds. Audited with who asked.
    #[graphql(guard = "Can(Action::RunSchedule)")]
    async fn run_schedule(&self, ctx: &Context<'_>, name: String) -> ApiResult<Schedule> {
        let store = ctx.data_unchecked::<Store>();
        let actor = ctx.data_unchecked::<RequestCtx>().actor();
        let s = junction_store::schedules::run_now(store, &actor, &name).await?;
        Ok(Schedule(s))
    }

    /// Holds every delivery to a connector, in order, until it is resumed.
    #[graphql(guard = "Can(Action::PauseDeliveries)")]
    async fn pause_connector(
        &self,
        ctx: &Context<'_>,
        id: String,
        reason: String,
    ) -> ApiResult<bool> {
        pause(ctx, PauseTarget::Connector, &id, Some(&reason)).await
    }

    /// Releases a connector's held deliveries, oldest first.
    #[graphql(guard = "Can(Action::PauseDeliveries)")]
    async fn resume_connector(&self, ctx: &Context<'_>, id: String) -> ApiResult<bool> {
        pause(ctx, PauseTarget::Connector, &id, None).await
    }

    /// Holds every delivery for an agency, whatever connector carries it.
    #[graphql(guard = "Can(Action::PauseDeliveries)")]
    async fn pause_agency(&self, ctx: &Context<'_>, id: String, reason: String) -> ApiResult<bool> {
        pause(ctx, PauseTarget::Agency, &id, Some(&reason)).await
    }

    /// Releases an agency's held deliveries, oldest first.
    #[graphql(guard = "Can(Action::PauseDeliveries)")]
    async fn resume_agency(&self, ctx: &Context<'_>, id: String) -> ApiResult<bool> {
        pause(ctx, PauseTarget::Agency, &id, None).await
    }
}

/// Pauses (with a reason) or resumes (without); answers whether the target is now paused.
async fn pause(
    ctx: &Context<'_>,
    target: PauseTarget,
    id: &str,
    reason: Option<&str>,
) -> ApiResult<bool> {
    let store = ctx.data_unchecked::<Store>();
    let actor = ctx.data_unchecked::<RequestCtx>().actor();
    let known = match target {
        PauseTarget::Connector => catalogue::connectors(store)
            .await?
            .iter()
            .any(|c| c.id == id),
        PauseTarget::Agency => catalogue::agency(store, id).await?.is_some(),
    };
    if !known {
        return Err(ApiError::NotFound {
            kind: target.as_str(),
            id: id.to_string(),
        });
    }
    match reason {
        Some(reason) => {
            let reason = reason.trim();
            if reason.is_empty() {
                return Err(ApiError::invalid(
                    "reason",
                    "is required: say why, for the log",
                ));
            }
            deliveries::pause(store, &actor, target, id, reason).await?;
            Ok(true)
        }
        None => {
            deliveries::resume(store, &actor, target, id).await?;
            ctx.data_unchecked::<Intake>().wake();
            Ok(false)
        }
    }
}

/// The named jurisdiction, or the only one when none is named.
async fn resolve_jurisdiction(store: &Store, given: Option<String>) -> ApiResult<String> {
    let all = catalogue::jurisdictions(store).await?;
    match given.filter(|g| !g.trim().is_empty()) {
        Some(id) if all.iter().any(|j| j.id == id) => Ok(id),
        Some(id) => Err(ApiError::invalid(
            "jurisdiction",
            format!("`{id}` is not a jurisdiction of this Junction"),
        )),
        None if all.len() == 1 => Ok(all[0].id.clone()),
        None if all.is_empty() => Err(ApiError::invalid(
            "jurisdiction",
            "no jurisdiction is configured",
        )),
        None => Err(ApiError::invalid(
            "jurisdiction",
            "is required when there is more than one",
        )),
    }
}
