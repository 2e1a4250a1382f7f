//! `GET /attachments/{id}`: a file that came with a case, for council staff, audited like any
//! request. Only known image and PDF types are served as themselves; anything else goes out as
//! `application/octet-stream`, always as a download, so an uploaded file never runs as a page.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use junction_domain::Action;
use junction_domain::attachment::served_content_type;

use crate::ErrorCode;
use crate::layer::{ApiState, Operation, audited, authenticate_audited, error_response};

pub(crate) async fn download(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let op = Operation::new("attachment", "download", Instant::now());
    let (principal, request_id, client_addr) =
        match authenticate_audited(&state, &request, op).await {
            Ok(who) => who,
            Err(refused) => return refused,
        };
    let (response, code) = match serve(&state, &principal, &id).await {
        Ok(response) => (response, None),
        Err((status, code, message)) => (error_response(status, code, &message), Some(code)),
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

async fn serve(
    state: &ApiState,
    principal: &junction_domain::Principal,
    id: &str,
) -> Result<Response, (StatusCode, ErrorCode, String)> {
    if let Err(denied) = junction_domain::authorise(principal, Action::ReadAttachments) {
        return Err((
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            denied.to_string(),
        ));
    }
    let not_found = || {
        (
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("attachment `{id}` not found"),
        )
    };
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let (file, data) = junction_store::attachments::get(&state.store, id)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "attachment unreadable");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "internal error".to_string(),
            )
        })?
        .ok_or_else(not_found)?;
    // A file name goes into a quoted header value: keep it to plain, printable characters.
    let safe_name: String = file
        .file_name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = format!("attachment; filename=\"{safe_name}\"");
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                served_content_type(&file.content_type).to_string(),
            ),
            (header::CONTENT_DISPOSITION, disposition),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            (header::CACHE_CONTROL, "no-store".to_string()),
            (header::ETAG, format!("\"{}\"", file.sha256)),
        ],
        Body::from(data),
    )
        .into_response())
}
