//! Notices to partner agencies: the case as the partner's agreement shows it, and whether a
//! notice may still be sent.

use std::sync::Arc;

use junction_domain::sharing::share_notice;
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
    let agency = d.payload.agency.clone().unwrap_or_default();
    let agreement_id = d.payload.agreement.as_deref().unwrap_or_default();
    let stored = sharing::agreement(&runner.store, agreement_id).await?;
    let live = sharing::live_shares(&runner.store, std::slice::from_ref(&case.id)).await?;
    let still_shared = live.get(&case.id).is_some_and(|s| {
        s.iter()
            .any(|s| s.agency_id == agency && s.agreement_id == agreement_id)
    });
    let notice = match share_notice(
        &case.reference,
        &agency,
        agreement_id,
        stored.as_ref().map(|s| &s.agreement),
        still_shared,
        chrono::Utc::now(),
    ) {
        Ok(notice) => notice,
        Err(why) => return Ok(Err(why)),
    };
    let agreement = stored.expect("checked by share_notice").agreement;
    let case_type =
        catalogue::case_type(&runner.store, &case.jurisdiction_id, &case.case_type_code)
            .await?
            .map(Arc::new);
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
