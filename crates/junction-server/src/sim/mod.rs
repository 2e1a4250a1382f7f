//! `junction sim open311`: a simulated council back-end that speaks Open311 GeoReport v2.
//!
//! It behaves as council systems do, failures included: it stores every POST it is sent (a
//! resend makes a duplicate, unless `dedupe` is on), answers `GET requests` with its list
//! (filtered by the id attribute unless `ignore_unknown_filters`, and by `start_date` and
//! `end_date`), resolves tokens, and moves each request through `in_progress` to `fixed` over
//! time and serves those changes as updates (`GET servicerequestupdates`, windowed by when they
//! happened). It can be told to misbehave, at start or while running
//! (`POST /_sim/behaviour` with JSON, see [`Behaviour`]): 500s, each case's first attempts
//! refused, slow answers, hangs after storing, token mode, malformed bodies, lookups answered
//! with someone else's request. `GET /_sim/requests` lists what arrived, with how many times
//! each case was posted.

mod behaviour;
mod get;
mod post;
mod updates;

pub use behaviour::Behaviour;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

/// One request the simulator holds.
#[derive(Debug, Clone, Serialize)]
pub struct SimRequest {
    pub service_request_id: String,
    pub service_code: String,
    /// The case id the client sent under its id attribute, if any.
    pub client_id: Option<String>,
    pub description: String,
    /// Every `media_url` the client sent.
    pub media_urls: Vec<String>,
    pub attributes: BTreeMap<String, Vec<String>>,
    /// How many POSTs carried this case (1 unless the client resent it).
    pub posts: u32,
    pub token: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Files uploaded with the request (multipart parts with a file name).
    pub files: Vec<SimFile>,
}

/// A file a client uploaded.
#[derive(Debug, Clone, Serialize)]
pub struct SimFile {
    pub part: String,
    pub file_name: String,
    pub content_type: String,
    pub size: usize,
    pub sha256: String,
}
#[derive(Debug, Default)]
struct SimState {
    behaviour: Behaviour,
    /// POSTs seen per case id (failed ones too), for `fail_first_posts`.
    tries: BTreeMap<String, u32>,
    requests: Vec<SimRequest>,
    /// Every POST in arrival order, by client id (or service request id): for order checks.
    arrivals: Vec<String>,
    next_id: u64,
    /// How many times `GET servicerequestupdates` was asked.
    update_reads: u64,
}

/// A running simulator.
#[derive(Clone)]
pub struct Simulator {
    state: Arc<Mutex<SimState>>,
    /// The id attributes recognised on POSTs.
    id_attributes: Arc<Vec<String>>,
}

impl Simulator {
    pub fn new(behaviour: Behaviour) -> Simulator {
        Simulator {
            state: Arc::new(Mutex::new(SimState {
                behaviour,
                next_id: 1000,
                ..SimState::default()
            })),
            id_attributes: Arc::new(vec!["junction_id".into(), "fixmystreet_id".into()]),
        }
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/open311/v2/{file}", get(get::get_top).post(post::post_top))
            .route("/open311/v2/{dir}/{file}", get(get::get_nested))
            .route("/_sim/behaviour", post(set_behaviour).get(get_behaviour))
            .route("/_sim/requests", get(list_requests))
            .with_state(self.clone())
    }

    /// Serves on `listen` until the task is dropped; returns the bound address.
    pub async fn serve(
        &self,
        listen: SocketAddr,
    ) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let router = self.router();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok((addr, task))
    }

    pub fn set_behaviour(&self, b: Behaviour) {
        self.state.lock().expect("sim state").behaviour = b;
    }

    pub fn requests(&self) -> Vec<SimRequest> {
        self.state.lock().expect("sim state").requests.clone()
    }

    /// How many requests the back-end holds for each case id (more than 1 is a duplicate).
    pub fn copies(&self) -> BTreeMap<String, usize> {
        let mut copies = BTreeMap::new();
        for r in &self.state.lock().expect("sim state").requests {
            if let Some(id) = &r.client_id {
                *copies.entry(id.clone()).or_default() += 1;
            }
        }
        copies
    }

    /// How many times the update list was read: each update poll reads it once.
    pub fn update_reads(&self) -> u64 {
        self.state.lock().expect("sim state").update_reads
    }

    /// Client ids (or references) in the order their POSTs arrived, repeats included.
    pub fn arrivals(&self) -> Vec<String> {
        self.state.lock().expect("sim state").arrivals.clone()
    }
}

/// The `start_date` and `end_date` a query names, where they are W3C date-times.
fn window(query: &BTreeMap<String, String>) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let date = |k: &str| {
        query
            .get(k)
            .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    (date("start_date"), date("end_date"))
}

fn xml(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn errors(status: StatusCode, description: &str) -> Response {
    xml(
        status,
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><errors><error><code>{}</code><description>{}</description></error></errors>",
            status.as_u16(),
            escape(description)
        ),
    )
}

fn status_of(b: &Behaviour, r: &SimRequest, now: DateTime<Utc>) -> &'static str {
    let age = (now - r.created_at).num_seconds().max(0) as u64;
    match (b.progress_after_secs, b.fixed_after_secs) {
        (_, Some(f)) if age >= f => "fixed",
        (Some(p), _) if age >= p => "in_progress",
        _ => "open",
    }
}

/// One `<request>` of a list; with `show_ids`, the id attributes it was posted with as
/// elements of their names (as FixMyStreet's `fixmystreet_id` extension does).
fn request_xml(r: &SimRequest, status: &str, show_ids: bool) -> String {
    let ids: String = if show_ids {
        r.attributes
            .iter()
            .filter(|(code, _)| matches!(code.as_str(), "junction_id" | "fixmystreet_id"))
            .filter_map(|(code, values)| {
                values
                    .first()
                    .map(|v| format!("<{code}>{}</{code}>", escape(v)))
            })
            .collect()
    } else {
        String::new()
    };
    format!(
        "<request><service_request_id>{}</service_request_id>{ids}<status>{}</status><service_code>{}</service_code><description>{}</description><requested_datetime>{}</requested_datetime></request>",
        escape(&r.service_request_id),
        status,
        escape(&r.service_code),
        escape(&r.description),
        r.created_at.format("%Y-%m-%dT%H:%M:%SZ")
    )
}
async fn set_behaviour(State(sim): State<Simulator>, body: Bytes) -> Response {
    match serde_json::from_slice::<Behaviour>(&body) {
        Ok(b) => {
            sim.set_behaviour(b);
            (StatusCode::NO_CONTENT, "").into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

async fn get_behaviour(State(sim): State<Simulator>) -> Response {
    let b = sim.state.lock().expect("sim state").behaviour.clone();
    axum::Json(serde_json::to_value(b).unwrap_or(Value::Null)).into_response()
}

async fn list_requests(State(sim): State<Simulator>) -> Response {
    axum::Json(json!({
        "requests": sim.requests(),
        "arrivals": sim.arrivals(),
    }))
    .into_response()
}
