//! Sharing over GraphQL: agreements (read and administered), shares of cases, the disclosure
//! log, and the classification of core case attributes.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use junction_domain::{self as d, Action, Agreement as DomainAgreement, AgreementStatus, Role};
use junction_store::Store;
use junction_store::sharing::{self, ShareRequest, StoredAgreement};

use super::access::SharingPolicy;
use super::guard::Can;
use super::types::{CaseShare, Classification};
use crate::RequestCtx;
use crate::error::{ApiError, ApiResult};
use crate::intake::Intake;

#[derive(Default)]
pub struct SharingQuery;

#[derive(Default)]
pub struct SharingMutation;

/// What an agreement grants right now.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum AgreementState {
    Active,
    Suspended,
    Expired,
    /// Not yet valid.
    Pending,
}

impl From<d::AgreementState> for AgreementState {
    fn from(s: d::AgreementState) -> Self {
        match s {
            d::AgreementState::Active => AgreementState::Active,
            d::AgreementState::Suspended => AgreementState::Suspended,
            d::AgreementState::Expired => AgreementState::Expired,
            d::AgreementState::Pending => AgreementState::Pending,
        }
    }
}

/// A data sharing agreement with a partner agency.
pub struct Agreement(pub StoredAgreement);

#[Object]
impl Agreement {
    async fn id(&self) -> &str {
        &self.0.agreement.id
    }
    async fn jurisdiction(&self) -> &str {
        &self.0.agreement.jurisdiction_id
    }
    async fn title(&self) -> &str {
        &self.0.agreement.title
    }
    /// The partner agency's id.
    async fn partner(&self) -> &str {
        &self.0.agreement.partner_agency_id
    }
    async fn case_types(&self) -> &[String] {
        &self.0.agreement.case_types
    }
    async fn purposes(&self) -> &[String] {
        &self.0.agreement.purposes
    }
    async fn lawful_basis(&self) -> &str {
        &self.0.agreement.lawful_basis
    }
    /// The highest classification shown to the partner.
    async fn ceiling(&self) -> Classification {
        self.0.agreement.ceiling.into()
    }
    /// When set, only these attributes are shown (and only up to the ceiling).
    async fn fields(&self) -> Option<&[String]> {
        self.0.agreement.fields.as_deref()
    }
    async fn valid_from(&self) -> DateTime<Utc> {
        self.0.agreement.valid_from
    }
    async fn valid_to(&self) -> Option<DateTime<Utc>> {
        self.0.agreement.valid_to
    }
    async fn review_date(&self) -> Option<NaiveDate> {
        self.0.agreement.review_date
    }
    /// Active, suspended, expired or pending, as of now: expiry needs no restart.
    async fn state(&self) -> AgreementState {
        self.0.agreement.state(Utc::now()).into()
    }
    /// `config` or `api`.
    async fn source(&self) -> &str {
        &self.0.source
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A core case attribute and its classification.
#[derive(SimpleObject)]
pub struct CoreAttribute {
    /// `submitter.email`, `description`, …; case-type fields are `fields.<code>`.
    pub path: String,
    pub classification: Classification,
}

/// Personal or sensitive values of a case shown to a partner.
#[derive(SimpleObject)]
pub struct Disclosure {
    /// The audit record's sequence number.
    pub seq: i64,
    pub at: DateTime<Utc>,
    /// The partner user who was shown the values.
    pub actor: String,
    pub partner_agency: String,
    pub case_id: ID,
    pub case_reference: String,
    pub agreement: String,
    pub purpose: String,
    /// Attribute paths shown; never their values.
    pub fields: Vec<String>,
    /// `http` or `websocket`.
    pub channel: String,
    pub request_id: Option<String>,
}

#[Object(name = "SharingQueryPart")]
impl SharingQuery {
    /// Data sharing agreements. A partner sees only its own agency's.
    #[graphql(guard = "Can(Action::ReadAgreements)")]
    async fn agreements(&self, ctx: &Context<'_>) -> ApiResult<Vec<Agreement>> {
        let store = ctx.data_unchecked::<Store>();
        let p = &ctx.data_unchecked::<RequestCtx>().principal;
        let staff = p.roles.iter().any(|r| *r != Role::Partner);
        Ok(sharing::agreements(store)
            .await?
            .into_iter()
            .filter(|a| staff || p.agency.as_deref() == Some(&a.agreement.partner_agency_id))
            .map(Agreement)
            .collect())
    }

    /// The purposes partners may state.
    #[graphql(guard = "Can(Action::ReadAgreements)")]
    async fn purposes(&self, ctx: &Context<'_>) -> Vec<String> {
        ctx.data_unchecked::<SharingPolicy>().purposes.clone()
    }

    /// Every core case attribute with its classification. Case-type fields carry theirs on
    /// `CaseType.fields`.
    #[graphql(guard = "Can(Action::ReadCaseTypes)")]
    async fn core_attributes(&self, ctx: &Context<'_>) -> Vec<CoreAttribute> {
        ctx.data_unchecked::<SharingPolicy>()
            .core
            .all()
            .into_iter()
            .map(|(path, c)| CoreAttribute {
                path,
                classification: c.into(),
            })
            .collect()
    }

    /// Who was shown a case's personal or sensitive data, under which agreement and purpose,
    /// oldest first.
    #[graphql(guard = "Can(Action::ReadDisclosures)")]
    async fn disclosures(&self, ctx: &Context<'_>, case_id: ID) -> ApiResult<Vec<Disclosure>> {
        let store = ctx.data_unchecked::<Store>();
        let case = junction_store::cases::get(store, &case_id)
            .await?
            .ok_or_else(|| ApiError::NotFound {
                kind: "case",
                id: case_id.0.clone(),
            })?;
        Ok(sharing::disclosures(store, &case.id)
            .await?
            .into_iter()
            .map(|r| Disclosure {
                seq: r.seq,
                at: r.at,
                actor: r.actor,
                partner_agency: r.disclosure.partner_agency,
                case_id: ID(r.disclosure.case_id),
                case_reference: r.disclosure.case_reference,
                agreement: r.disclosure.agreement_id,
                purpose: r.disclosure.purpose,
                fields: r.disclosure.fields,
                channel: r.disclosure.channel,
                request_id: r.request_id,
            })
            .collect())
    }
}

/// A new or replacement agreement.
#[derive(InputObject)]
pub struct AgreementInput {
    pub id: String,
    pub jurisdiction: String,
    pub title: String,
    pub partner: String,
    pub case_types: Vec<String>,
    pub purposes: Vec<String>,
    pub lawful_basis: String,
    pub ceiling: Classification,
    pub fields: Option<Vec<String>>,
    pub valid_from: DateTime<Utc>,
    pub valid_to: Option<DateTime<Utc>>,
    pub review_date: Option<NaiveDate>,
}

#[Object(name = "SharingMutationPart")]
impl SharingMutation {
    /// Creates or replaces an agreement. Checked against the catalogue (partner, case types,
    /// purposes, fields) and the partner's other agreements: overlapping agreements must agree.
    #[graphql(guard = "Can(Action::ManageAgreements)")]
    async fn save_agreement(
        &self,
        ctx: &Context<'_>,
        input: AgreementInput,
    ) -> ApiResult<Agreement> {
        let store = ctx.data_unchecked::<Store>();
        let policy = ctx.data_unchecked::<SharingPolicy>();
        let actor = ctx.data_unchecked::<RequestCtx>().actor();
        let status = match sharing::agreement(store, &input.id).await? {
            Some(old) => old.agreement.status,
            None => AgreementStatus::Active,
        };
        let a = DomainAgreement {
            id: input.id,
            jurisdiction_id: input.jurisdiction,
            title: input.title,
            partner_agency_id: input.partner,
            case_types: input.case_types,
            purposes: input.purposes,
            lawful_basis: input.lawful_basis,
            ceiling: input.ceiling.into(),
            fields: input.fields,
            valid_from: input.valid_from,
            valid_to: input.valid_to,
            review_date: input.review_date,
            status,
        };
        Ok(Agreement(
            sharing::save_agreement(store, &actor, &a, &policy.purposes, &policy.core).await?,
        ))
    }

    /// Suspends an agreement: its partner's access ends at once, open subscriptions close.
    #[graphql(guard = "Can(Action::ManageAgreements)")]
    async fn suspend_agreement(
        &self,
        ctx: &Context<'_>,
        id: String,
        reason: String,
    ) -> ApiResult<Agreement> {
        set_status(ctx, &id, AgreementStatus::Suspended, &reason).await
    }

    /// Resumes a suspended agreement.
    #[graphql(guard = "Can(Action::ManageAgreements)")]
    async fn resume_agreement(
        &self,
        ctx: &Context<'_>,
        id: String,
        reason: String,
    ) -> ApiResult<Agreement> {
        set_status(ctx, &id, AgreementStatus::Active, &reason).await
    }

    /// Shares a case with a partner agency, under the named agreement or the one active
    /// agreement that covers the case type. With `notify`, the partner is also told by email
    /// (through `routing.email_connector`), showing only what the agreement allows.
    #[graphql(guard = "Can(Action::ShareCases)")]
    async fn share_case(
        &self,
        ctx: &Context<'_>,
        case_id: ID,
        agency: String,
        agreement: Option<String>,
        reason: String,
        #[graphql(default)] notify: bool,
    ) -> ApiResult<CaseShare> {
        let store = ctx.data_unchecked::<Store>();
        let actor = ctx.data_unchecked::<RequestCtx>().actor();
        let email = ctx.data_unchecked::<Intake>().email_connector();
        if notify && email.is_none() {
            return Err(ApiError::invalid(
                "notify",
                "no email connector is configured (routing.email_connector)",
            ));
        }
        let record = sharing::share(
            store,
            &actor,
            &case_id,
            ShareRequest {
                agency_id: &agency,
                agreement_id: agreement.as_deref(),
                reason: &reason,
                rule: None,
                notify_via: email.as_deref().filter(|_| notify),
            },
        )
        .await?;
        Ok(CaseShare(record))
    }

    /// Withdraws a case's share with a partner agency.
    #[graphql(guard = "Can(Action::ShareCases)")]
    async fn unshare_case(
        &self,
        ctx: &Context<'_>,
        case_id: ID,
        agency: String,
        reason: String,
    ) -> ApiResult<CaseShare> {
        let store = ctx.data_unchecked::<Store>();
        let actor = ctx.data_unchecked::<RequestCtx>().actor();
        Ok(CaseShare(
            sharing::unshare(store, &actor, &case_id, &agency, &reason).await?,
        ))
    }
}

async fn set_status(
    ctx: &Context<'_>,
    id: &str,
    status: AgreementStatus,
    reason: &str,
) -> ApiResult<Agreement> {
    if reason.trim().is_empty() {
        return Err(ApiError::invalid("reason", "is required"));
    }
    let store = ctx.data_unchecked::<Store>();
    let actor = ctx.data_unchecked::<RequestCtx>().actor();
    Ok(Agreement(
        sharing::set_agreement_status(store, &actor, id, status, reason).await?,
    ))
}
