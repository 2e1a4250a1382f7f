//! Liveness, readiness and metrics: the only routes open without a token.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use junction_store::Store;
use serde_json::json;

pub fn router(store: Store) -> Router {
    Router::new()
        .route("/health/live", get(|| async { (StatusCode::OK, "ok") }))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(store)
}

async fn ready(State(store): State<Store>) -> impl IntoResponse {
    let database = store.ping().await.is_ok();
    let pending = if database {
        store.pending_migrations().await.ok()
    } else {
        None
    };
    let migrations_current = pending.as_ref().is_some_and(|p| p.is_empty());
    let status = if database && migrations_current {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "database": if database { "ok" } else { "unreachable" },
        "migrations": match &pending { Some(p) if p.is_empty() => "current".to_string(), Some(p) => format!("{} pending", p.len()), None => "unknown".into() },
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
}

async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::telemetry::render_metrics(),
    )
}
