//! Notices to partner agencies: the case as the partner's agreement shows it, and whether a
//! notice may still be sent.

use std::sync::Arc;

use junction_domain::{Actor, AuditDisclosure, Case, Lens};
use junction_store::deliveries::Delivery;
use junction_store::{StoreError, catalogue, sharing};

use crate::runner::Runner;

/// The case as the partner's agreement shows it, and the notice text; or why nothing may be
/// sent. Personal values the notice shows are on the audit chain before it goes.
pub(crate) async fn partner_notice(
    runner: &Runner,
    d: &Delivery,
    case: &Case,
) -> Result<Result<(Case, String), String>, StoreError> {
    let agency = d.payload["agency"].as_str().unwrap_or_default().to_string();
    let agreement_id = d.payload["agreement"].as_str().unwrap_or_default();
    let Some(stored) = sharing::agreement(&runner.store, agreement_id).await? else {
        return Ok(Err(format!(
            "agreement `{agreement_id}` no longer exists: nothing sent"
        )));
    };
    let agreement = stored.agreement;
    if !agreement.is_active(chrono::Utc::now()) {
        return Ok(Err(format!(
            "agreement `{agreement_id}` is {}: nothing sent",
            agreement.state(chrono::Utc::now()).as_str()
        )));
    }
    let live = sharing::live_shares(&runner.store, std::slice::from_ref(&case.id)).await?;
    let still_shared = live.get(&case.id).is_some_and(|s| {
        s.iter()
            .any(|s| s.agency_id == agency && s.agreement_id == agreement_id)
    });
    if !still_shared {
        return Ok(Err(format!(
            "case {} is no longer shared with `{agency}`: nothing sent",
            case.reference
        )));
    }
    let case_type =
        catalogue::case_type(&runner.store, &case.jurisdiction_id, &case.case_type_code)
            .await?
            .map(Arc::new);
    let notice = format!(
        "Case {} has been shared with {agency} under data sharing agreement `{}` ({}; lawful basis: {}). Only what the agreement allows is shown.",
        case.reference, agreement.id, agreement.title, agreement.lawful_basis
    );
    let lens = Lens::Partner {
        agreement: Arc::new(agreement),
        purpose: "share_notice".into(),
        agency: agency.clone(),
        core: runner.core.clone(),
        case_type,
    };
    let disclosed = lens.disclosed_in_full(case);
    if !disclosed.is_empty() {
        let Lens::Partner { agreement, .. } = &lens else {
            unreachable!("built as a partner lens")
        };
        let mut entry = Actor::internal("share-notice").entry();
        entry.disclosure = Some(AuditDisclosure {
            case_id: case.id.clone(),
            case_reference: case.reference.clone(),
            partner_agency: agency,
            agreement_id: agreement.id.clone(),
            purpose: "share_notice".into(),
            fields: disclosed,
            channel: "email".into(),
        });
        let txn = runner.store.begin_write().await?;
        junction_store::audit::append(&*txn, &[entry]).await?;
        txn.commit().await?;
    }
    Ok(Ok((lens.redact(case), notice)))
}
