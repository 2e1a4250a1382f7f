//! How a request reads cases: in full, or as a partner through its agreements. Every case read
//! path asks [`case_access`] first and shows each case through the [`Lens`] it returns, and
//! every disclosure of personal data goes into the request's [`DisclosureLog`].

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use async_graphql::Context;
use chrono::Utc;
use junction_domain::sharing::{self, ScopeError};
use junction_domain::{
    Access, AuditDisclosure, AuditEntry, Case, CaseType, CoreClassification, Lens,
};
use junction_store::{Store, catalogue, sharing as store_sharing};

use crate::RequestCtx;
use crate::error::{ApiError, ApiResult};

/// The sharing policy from configuration: the purposes partners may state, and the
/// classification of each core case attribute.
#[derive(Debug, Clone, Default)]
pub struct SharingPolicy {
    pub purposes: Vec<String>,
    pub core: Arc<CoreClassification>,
}

/// Disclosures made while serving one request (or one subscription event), written to the audit
/// chain before the response goes out.
#[derive(Debug, Clone, Default)]
pub struct DisclosureLog(Arc<Mutex<Vec<AuditDisclosure>>>);

impl DisclosureLog {
    pub fn push(&self, d: AuditDisclosure) {
        if let Ok(mut list) = self.0.lock() {
            // One record per case, agreement and purpose: merge the fields.
            if let Some(existing) = list.iter_mut().find(|x| {
                x.case_id == d.case_id && x.agreement_id == d.agreement_id && x.purpose == d.purpose
            }) {
                let mut fields: BTreeSet<String> = existing.fields.drain(..).collect();
                fields.extend(d.fields);
                existing.fields = fields.into_iter().collect();
            } else {
                list.push(d);
            }
        }
    }

    /// Takes what was recorded so far.
    pub fn drain(&self) -> Vec<AuditDisclosure> {
        self.0
            .lock()
            .map(|mut l| l.drain(..).collect())
            .unwrap_or_default()
    }

    /// The audit entries for what was recorded, as `ctx`'s actor.
    pub fn entries(&self, request: &RequestCtx) -> Vec<AuditEntry> {
        let actor = request.actor();
        self.drain()
            .into_iter()
            .map(|d| AuditEntry {
                disclosure: Some(d),
                ..actor.entry()
            })
            .collect()
    }
}

/// The purpose a request states: the argument, or else the `Junction-Purpose` header. Both
/// given and different is an error.
pub fn purpose(ctx: &Context<'_>, argument: Option<&str>) -> ApiResult<Option<String>> {
    let header = ctx.data_unchecked::<RequestCtx>().purpose.clone();
    match (argument, header) {
        (Some(a), Some(h)) if a != h => Err(ApiError::invalid(
            "purpose",
            "differs from the Junction-Purpose header; state one purpose",
        )),
        (Some(a), _) => {
            if !sharing::valid_purpose(a) {
                return Err(ApiError::invalid(
                    "purpose",
                    "must be lower-case letters, digits, `_` or `-`",
                ));
            }
            Ok(Some(a.to_string()))
        }
        (None, h) => Ok(h),
    }
}

/// How the request reads cases, for the stated purpose.
pub async fn case_access(ctx: &Context<'_>, purpose_arg: Option<&str>) -> ApiResult<Access> {
    let request = ctx.data_unchecked::<RequestCtx>();
    let store = ctx.data_unchecked::<Store>();
    let purpose = purpose(ctx, purpose_arg)?;
    access_for(store, request, purpose.as_deref()).await
}

/// [`case_access`] outside a GraphQL context (subscriptions re-check with it).
pub async fn access_for(
    store: &Store,
    request: &RequestCtx,
    purpose: Option<&str>,
) -> ApiResult<Access> {
    let p = &request.principal;
    let agreements = match (&p.agency, p.roles.contains(&junction_domain::Role::Partner)) {
        (Some(agency), true) => store_sharing::agreements_for_agency(store, agency).await?,
        _ => Vec::new(),
    };
    sharing::access(p, purpose, &agreements, Utc::now()).map_err(|e| match e {
        ScopeError::PurposeRequired => ApiError::invalid("purpose", e.to_string()),
        other => ApiError::Refused(other.to_string()),
    })
}

/// The lens for one case under `access`, or `None` when the caller may not see the case at all.
pub async fn lens_for(
    store: &Store,
    policy: &SharingPolicy,
    access: &Access,
    case: &Case,
    shares: &[junction_domain::Share],
) -> ApiResult<Option<Lens>> {
    if matches!(access, Access::Full) {
        return Ok(Some(Lens::Full));
    }
    let case_type = catalogue::case_type(store, &case.jurisdiction_id, &case.case_type_code)
        .await?
        .map(Arc::new);
    Ok(lens_with(policy, access, case, shares, case_type))
}

/// [`lens_for`] with the case's type already at hand (the feed loads it once per event).
pub fn lens_with(
    policy: &SharingPolicy,
    access: &Access,
    case: &Case,
    shares: &[junction_domain::Share],
    case_type: Option<Arc<CaseType>>,
) -> Option<Lens> {
    match access {
        Access::Full => Some(Lens::Full),
        Access::Partner(scope) => {
            let agreement = scope.agreement_for(&case.case_type_code, shares)?;
            Some(Lens::Partner {
                agreement,
                purpose: scope.purpose.clone(),
                agency: scope.agency.clone(),
                core: policy.core.clone(),
                case_type,
            })
        }
    }
}

/// Case types by code, for checks that need field classifications.
pub async fn case_type_lookup(
    store: &Store,
) -> ApiResult<impl Fn(&str) -> Option<CaseType> + use<>> {
    let all = catalogue::case_types(store, None).await?;
    Ok(move |code: &str| all.iter().find(|t| t.code == code).cloned())
}

/// Shows a page of cases through the request's access: each with its lens, the cases the lens
/// refuses left out (the store already left out unshared cases; the lens is the second lock).
/// `types` keeps the case types read for earlier pages, one read per type rather than per case.
pub async fn with_lenses(
    store: &Store,
    policy: &SharingPolicy,
    access: &Access,
    cases: Vec<Case>,
    types: &mut BTreeMap<(String, String), Option<Arc<CaseType>>>,
) -> ApiResult<Vec<(Case, Lens)>> {
    let mut shares = match access {
        Access::Full => BTreeMap::new(),
        Access::Partner(_) => {
            let ids: Vec<String> = cases.iter().map(|c| c.id.clone()).collect();
            store_sharing::live_shares(store, &ids).await?
        }
    };
    let mut seen = Vec::with_capacity(cases.len());
    for case in cases {
        let case_type = match access {
            Access::Full => None,
            Access::Partner(_) => {
                let key = (case.jurisdiction_id.clone(), case.case_type_code.clone());
                if let Entry::Vacant(slot) = types.entry(key.clone()) {
                    let t = catalogue::case_type(store, &key.0, &key.1).await?;
                    slot.insert(t.map(Arc::new));
                }
                types[&key].clone()
            }
        };
        let case_shares = shares.remove(&case.id).unwrap_or_default();
        if let Some(lens) = lens_with(policy, access, &case, &case_shares, case_type) {
            seen.push((case, lens));
        }
    }
    Ok(seen)
}
