//! The routes of the GraphQL surfaces: `/graphql` (POST over HTTP; GET opens a WebSocket,
//! or GraphiQL in development; anything else is refused, audited), the CSV export,
//! attachments and back-ends' signed updates (`/hooks/{connector}`). The one place that names
//! every surface.

use std::sync::Arc;
use std::time::Instant;

use async_graphql::http::GraphiQLSource;
use axum::Router;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::ErrorCode;
use crate::layer::{ApiState, Operation, audited, error_response, request_meta};

/// The `/graphql` routes.
pub fn router(state: ApiState) -> Router {
    let state = Arc::new(state);
    Router::new()
        .route(
            "/graphql",
            get(graphql_get)
                .post(crate::http::graphql)
                .fallback(graphql_other),
        )
        .route("/export/cases.csv", get(crate::export::cases_csv))
        .route("/attachments/{id}", get(crate::attachments::download))
        .route(
            "/hooks/{connector}",
            axum::routing::post(crate::hooks::receive),
        )
        .with_state(state)
}

/// `GET /graphql`: a WebSocket upgrade (`graphql-transport-ws`), or GraphiQL in development.
async fn graphql_get(
    State(state): State<Arc<ApiState>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let (request_id, client_addr) = request_meta(&request);
    let refused = match upgrade {
        Ok(upgrade) => {
            let offered = request
                .headers()
                .get(header::SEC_WEBSOCKET_PROTOCOL)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.split(',').any(|p| p.trim() == crate::ws::SUBPROTOCOL));
            if offered {
                return crate::ws::upgrade(state, upgrade, request_id, client_addr);
            }
            error_response(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                "WebSocket clients must offer the graphql-transport-ws subprotocol",
            )
        }
        Err(_) if state.limits.development => {
            return Html(
                GraphiQLSource::build()
                    .endpoint("/graphql")
                    .subscription_endpoint("/graphql")
                    .finish(),
            )
            .into_response();
        }
        Err(_) => error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::BadRequest,
            "GraphiQL is available only in development mode; POST queries to /graphql",
        ),
    };
    // Refusals at the GraphQL route are on the record like any other request.
    let op = Operation::new("GET /graphql", "graphql", started);
    let code = Some(ErrorCode::BadRequest);
    audited(&state, None, &request_id, client_addr, op, code, refused).await
}

/// Any method but GET and POST at `/graphql`: 405, audited.
async fn graphql_other(State(state): State<Arc<ApiState>>, request: Request) -> Response {
    let started = Instant::now();
    let (request_id, client_addr) = request_meta(&request);
    let mut refused = error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::BadRequest,
        "POST queries to /graphql, or GET to open a WebSocket",
    );
    refused
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    let op = Operation::new("other /graphql", "graphql", started);
    let code = Some(ErrorCode::BadRequest);
    audited(&state, None, &request_id, client_addr, op, code, refused).await
}
