//! `GET /export/cases.csv`: the cases a caller may read, as a spreadsheet, through the same
//! access decision and the same lens as every GraphQL path.
//!
//! A partner states its purpose (`purpose` parameter or `Junction-Purpose` header) and gets only
//! the cases shared with it. Every attribute its agreement hides is an empty cell, named in the
//! row's `redacted` column. Every personal or sensitive value in the file is in the disclosure
//! log before the file is sent. The export is one audited operation, like a GraphQL request.
//! Cells that a spreadsheet would read as a formula are prefixed with `'`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use junction_domain::{
    Access, Action, AuditDisclosure, AuditEntry, Case, CaseStatus, CaseType, Lens,
};
use junction_store::cases::{self, CaseFilter, SharedWith};
use serde_json::Value;

use crate::graphql::access::{access_for, with_lenses};
use crate::layer::{ApiState, Operation, audited, authenticate_audited, error_response};
use crate::{ApiError, ErrorCode, RequestCtx};

/// Rows in one export unless `limit` asks for fewer.
const MAX_ROWS: u64 = 10_000;
/// Cases read per database round trip.
const PAGE: u64 = 500;

/// The columns before the case-type fields.
const CORE_COLUMNS: [&str; 17] = [
    "id",
    "reference",
    "jurisdiction",
    "case_type",
    "status",
    "agency",
    "created_at",
    "updated_at",
    "description",
    "address",
    "lat",
    "long",
    "uprn",
    "submitter_name",
    "submitter_email",
    "submitter_phone",
    "source_ref",
];

/// What the caller asked for.
#[derive(Debug, Default)]
struct ExportQuery {
    purpose: Option<String>,
    filter: CaseFilter,
    limit: u64,
}

/// `GET /export/cases.csv`.
pub(crate) async fn cases_csv(State(state): State<Arc<ApiState>>, request: Request) -> Response {
    let op = Operation::new("cases.csv", "export", Instant::now());
    let (principal, request_id, client_addr) =
        match authenticate_audited(&state, &request, op).await {
            Ok(who) => who,
            Err(refused) => return refused,
        };
    let ctx = RequestCtx {
        principal: principal.clone(),
        request_id: request_id.clone(),
        client_addr: client_addr.clone(),
        purpose: request
            .headers()
            .get("junction-purpose")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty()),
        channel: "export",
    };
    let (response, code) = match export(&state, &ctx, request.uri().query().unwrap_or("")).await {
        Ok(response) => (response, None),
        Err(e) => {
            let code = e.code();
            if let ApiError::Internal(detail) = &e {
                tracing::error!(request_id, error = %detail, "export failed");
            }
            let status = match code {
                ErrorCode::BadRequest | ErrorCode::BadUserInput => StatusCode::BAD_REQUEST,
                ErrorCode::Forbidden => StatusCode::FORBIDDEN,
                ErrorCode::NotFound => StatusCode::NOT_FOUND,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            (error_response(status, code, &e.message()), Some(code))
        }
    };
    audited(
        &state,
        Some(principal),
        &request_id,
        client_addr,
        op,
        code,
        response,
    )
    .await
}

async fn export(state: &ApiState, ctx: &RequestCtx, query: &str) -> Result<Response, ApiError> {
    junction_domain::authorise(&ctx.principal, Action::ExportCases)?;
    let mut asked = parse_query(query)?;
    let purpose = match (asked.purpose.take(), ctx.purpose.clone()) {
        (Some(a), Some(h)) if a != h => {
            return Err(ApiError::invalid(
                "purpose",
                "differs from the Junction-Purpose header; state one purpose",
            ));
        }
        (a, h) => a.or(h),
    };
    let access = access_for(&state.store, ctx, purpose.as_deref()).await?;
    if let Access::Partner(scope) = &access {
        asked.filter.shared_with = Some(SharedWith {
            agency: scope.agency.clone(),
            agreements: scope.agreements.iter().map(|a| (**a).clone()).collect(),
        });
    }

    let (rows, more) = rows(state, &access, &asked).await?;
    // What the file discloses is on the record before it is sent.
    let disclosures = disclosures(&rows, ctx);
    if !disclosures.is_empty() {
        state.audit.record_all(disclosures).await?;
    }

    let body = render(&rows).map_err(|e| ApiError::Internal(format!("writing CSV: {e}")))?;
    let mut response = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"cases.csv\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from(body),
    )
        .into_response();
    if more {
        // More cases match than the file holds: narrow the filter or page by date.
        response.headers_mut().insert(
            "junction-export-truncated",
            HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

/// Every row the export holds (up to the limit asked), each with its lens, and whether more
/// cases match than that.
async fn rows(
    state: &ApiState,
    access: &Access,
    asked: &ExportQuery,
) -> Result<(Vec<(Case, Lens)>, bool), ApiError> {
    let mut rows: Vec<(Case, Lens)> = Vec::new();
    let mut types: BTreeMap<(String, String), Option<Arc<CaseType>>> = BTreeMap::new();
    let mut after: Option<String> = None;
    let mut more = false;
    while (rows.len() as u64) < asked.limit {
        let want = PAGE.min(asked.limit - rows.len() as u64);
        let page = cases::list(&state.store, &asked.filter, want, after.as_deref()).await?;
        after = page.cases.last().map(|c| c.id.clone());
        let seen =
            with_lenses(&state.store, &state.sharing, access, page.cases, &mut types).await?;
        rows.extend(seen);
        more = page.has_next;
        if !page.has_next {
            break;
        }
    }
    Ok((rows, more))
}

/// The audit entries for what the file discloses to a partner.
fn disclosures(rows: &[(Case, Lens)], ctx: &RequestCtx) -> Vec<AuditEntry> {
    let actor = ctx.actor();
    rows.iter()
        .filter_map(|(case, lens)| {
            let Lens::Partner {
                agreement,
                purpose,
                agency,
                ..
            } = lens
            else {
                return None;
            };
            let fields: Vec<String> = lens
                .disclosed_in_full(case)
                .into_iter()
                .filter(|f| f != "route")
                .collect();
            (!fields.is_empty()).then(|| AuditEntry {
                disclosure: Some(AuditDisclosure {
                    case_id: case.id.clone(),
                    case_reference: case.reference.clone(),
                    partner_agency: agency.clone(),
                    agreement_id: agreement.id.clone(),
                    purpose: purpose.clone(),
                    fields,
                    channel: "export".into(),
                }),
                ..actor.entry()
            })
        })
        .collect()
}

fn parse_query(query: &str) -> Result<ExportQuery, ApiError> {
    let mut asked = ExportQuery {
        limit: MAX_ROWS,
        ..Default::default()
    };
    let date = |key: &str, value: &str, end: bool| -> Result<DateTime<Utc>, ApiError> {
        if let Ok(at) = DateTime::parse_from_rfc3339(value) {
            return Ok(at.with_timezone(&Utc));
        }
        let day = NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| {
            ApiError::invalid(key, "is not a date (YYYY-MM-DD) or an RFC 3339 time")
        })?;
        let time = if end {
            day.and_hms_micro_opt(23, 59, 59, 999_999)
        } else {
            day.and_hms_opt(0, 0, 0)
        };
        Ok(time.unwrap_or_default().and_utc())
    };
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        match key.as_ref() {
            "purpose" => asked.purpose = Some(value.to_string()),
            "status" => {
                asked.filter.statuses = vec![CaseStatus::parse(value).ok_or_else(|| {
                    let known: Vec<&str> = CaseStatus::ALL.iter().map(|s| s.as_str()).collect();
                    ApiError::invalid("status", format!("must be one of {}", known.join(", ")))
                })?]
            }
            "case_type" => asked.filter.case_types = vec![value.to_string()],
            "jurisdiction" => asked.filter.jurisdiction_id = Some(value.to_string()),
            "created_from" => asked.filter.created_from = Some(date("created_from", value, false)?),
            "created_to" => asked.filter.created_to = Some(date("created_to", value, true)?),
            "limit" => {
                asked.limit = value
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (1..=MAX_ROWS).contains(n))
                    .ok_or_else(|| ApiError::invalid("limit", format!("must be 1 to {MAX_ROWS}")))?
            }
            other => {
                return Err(ApiError::invalid(
                    other,
                    "is not a parameter of this export (purpose, status, case_type, jurisdiction, created_from, created_to, limit)",
                ));
            }
        }
    }
    Ok(asked)
}

/// The file: one row per case, hidden attributes empty and named in `redacted`.
fn render(rows: &[(Case, Lens)]) -> Result<Vec<u8>, csv::Error> {
    let field_codes: BTreeSet<&str> = rows
        .iter()
        .flat_map(|(c, _)| c.fields.keys().map(String::as_str))
        .collect();
    let mut out = csv::Writer::from_writer(Vec::new());
    let header: Vec<String> = CORE_COLUMNS
        .iter()
        .map(|c| c.to_string())
        .chain(field_codes.iter().map(|c| format!("fields.{c}")))
        .chain(std::iter::once("redacted".to_string()))
        .collect();
    out.write_record(&header)?;
    for (case, lens) in rows {
        // The one redaction every outbound copy of a case goes through.
        let shown = lens.redact(case);
        let number = |v: Option<f64>| v.map(|n| n.to_string()).unwrap_or_default();
        let mut record: Vec<String> = vec![
            text(&shown.id),
            text(&shown.reference),
            text(&shown.jurisdiction_id),
            text(&shown.case_type_code),
            shown.status.as_str().to_string(),
            text(&shown.agency_id),
            shown.created_at.to_rfc3339(),
            shown.updated_at.to_rfc3339(),
            text(&shown.description),
            text(shown.location.address.as_deref().unwrap_or("")),
            number(shown.location.lat),
            number(shown.location.long),
            text(shown.location.uprn.as_deref().unwrap_or("")),
            text(shown.submitter.name.as_deref().unwrap_or("")),
            text(shown.submitter.email.as_deref().unwrap_or("")),
            text(shown.submitter.phone.as_deref().unwrap_or("")),
            text(shown.source_ref.as_deref().unwrap_or("")),
        ];
        for code in &field_codes {
            record.push(match shown.fields.get(*code) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => text(s),
                Some(Value::Array(items)) => text(
                    &items
                        .iter()
                        .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
                Some(other) => text(&other.to_string()),
            });
        }
        record.push(lens.redacted(case).join(" "));
        out.write_record(&record)?;
    }
    out.into_inner().map_err(|e| e.into_error().into())
}

/// A text cell, made inert if a spreadsheet would take it for a formula.
fn text(value: &str) -> String {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_made_inert_and_plain_text_is_untouched() {
        assert_eq!(
            text("=HYPERLINK(\"http://x\")"),
            "'=HYPERLINK(\"http://x\")"
        );
        assert_eq!(text("+44 1632"), "'+44 1632");
        assert_eq!(text("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(text("Pothole on Fore St"), "Pothole on Fore St");
        assert_eq!(text(""), "");
    }

    #[test]
    fn parameters_are_checked_by_name() {
        let e = parse_query("status=bogus").unwrap_err();
        assert!(e.message().contains("status"), "{}", e.message());
        let e = parse_query("colour=red").unwrap_err();
        assert!(e.message().contains("colour"), "{}", e.message());
        let e = parse_query("limit=0").unwrap_err();
        assert!(e.message().contains("limit"), "{}", e.message());
        let q =
            parse_query("created_from=2026-01-01&created_to=2026-01-31&status=&limit=5").unwrap();
        assert_eq!(q.limit, 5);
        assert!(
            q.filter.statuses.is_empty(),
            "an empty value counts as absent"
        );
        assert_eq!(
            q.filter.created_to.unwrap().to_rfc3339(),
            "2026-01-31T23:59:59.999999+00:00"
        );
    }
}
