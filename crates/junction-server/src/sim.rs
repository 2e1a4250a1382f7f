//! `junction sim open311`: a simulated council back-end that speaks Open311 GeoReport v2.
//!
//! It accepts service requests and issues references, de-duplicating on the id attribute as a
//! careful back-end does (a resend of the same case gets the same reference), answers lookups
//! by that attribute, resolves tokens, and moves each request through `in_progress` to
//! `fixed` over time for update polling. It can be told to misbehave, at start or while
//! running (`POST /_sim/behaviour` with JSON): a rate of 500s, the next N requests failing
//! with a status, slow answers, hangs, token mode, malformed bodies. `GET /_sim/requests`
//! lists what arrived, with how many times each case was posted.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How the simulator misbehaves.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Behaviour {
    /// Fraction (0 to 1) of POSTs answered with HTTP 500.
    pub fail_rate: f64,
    /// The next N POSTs are answered with `fail_status`.
    pub fail_next: u32,
    /// Status for `fail_next` (default 500); a 4xx is a validation refusal.
    pub fail_status: Option<u16>,
    /// Description in the errors body for failures.
    pub fail_message: Option<String>,
    /// Milliseconds to wait before every answer.
    pub delay_ms: u64,
    /// The next N POSTs are accepted and stored, then never answered.
    pub hang_next: u32,
    /// Answer POSTs with a token, resolved through `tokens/{token}` after `token_delay_ms`.
    pub token_mode: bool,
    pub token_delay_ms: u64,
    /// The next N POSTs get a 200 with a body that is not Open311.
    pub malformed_next: u32,
    /// Seconds after creation at which a request moves to `in_progress`, then `fixed`.
    pub progress_after_secs: Option<u64>,
    pub fixed_after_secs: Option<u64>,
}

/// One request the simulator holds.
#[derive(Debug, Clone, Serialize)]
pub struct SimRequest {
    pub service_request_id: String,
    pub service_code: String,
    /// The case id the client sent under its id attribute, if any.
    pub client_id: Option<String>,
    pub description: String,
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

/// A POST's arguments, from a form or a multipart body, and its files.
async fn read_form(
    request: axum::extract::Request,
) -> Result<(Vec<(String, String)>, Vec<SimFile>), String> {
    use axum::extract::FromRequest;
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !multipart {
        let body = axum::body::to_bytes(request.into_body(), 32 << 20)
            .await
            .map_err(|e| e.to_string())?;
        let form = form_urlencoded::parse(&body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        return Ok((form, Vec::new()));
    }
    let mut parts = axum::extract::Multipart::from_request(request, &())
        .await
        .map_err(|e| e.body_text())?;
    let (mut form, mut files) = (Vec::new(), Vec::new());
    while let Some(field) = parts.next_field().await.map_err(|e| e.body_text())? {
        let name = field.name().unwrap_or("").to_string();
        let file_name = field.file_name().map(str::to_string);
        let content_type = field.content_type().unwrap_or("").to_string();
        let data = field.bytes().await.map_err(|e| e.body_text())?;
        match file_name {
            Some(file_name) => files.push(SimFile {
                part: name,
                file_name,
                content_type,
                size: data.len(),
                sha256: junction_domain::audit::sha256_hex(&data),
            }),
            None => form.push((name, String::from_utf8_lossy(&data).into_owned())),
        }
    }
    Ok((form, files))
}

#[derive(Debug, Default)]
struct SimState {
    behaviour: Behaviour,
    requests: Vec<SimRequest>,
    /// Every POST in arrival order, by client id (or service request id): for order checks.
    arrivals: Vec<String>,
    next_id: u64,
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
            .route("/open311/v2/{file}", get(get_top).post(post_top))
            .route("/open311/v2/{dir}/{file}", get(get_nested))
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

    /// Client ids (or references) in the order their POSTs arrived, repeats included.
    pub fn arrivals(&self) -> Vec<String> {
        self.state.lock().expect("sim state").arrivals.clone()
    }
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

fn request_xml(r: &SimRequest, status: &str) -> String {
    format!(
        "<request><service_request_id>{}</service_request_id><status>{}</status><service_code>{}</service_code><description>{}</description><requested_datetime>{}</requested_datetime></request>",
        escape(&r.service_request_id),
        status,
        escape(&r.service_code),
        escape(&r.description),
        r.created_at.format("%Y-%m-%dT%H:%M:%SZ")
    )
}

async fn post_top(
    State(sim): State<Simulator>,
    Path(file): Path<String>,
    request: axum::extract::Request,
) -> Response {
    if file != "requests.xml" && file != "requests.json" {
        return errors(StatusCode::NOT_FOUND, "not found");
    }
    let (form, files) = match read_form(request).await {
        Ok(read) => read,
        Err(why) => return errors(StatusCode::BAD_REQUEST, &why),
    };
    let (delay, decision) = {
        let mut s = sim.state.lock().expect("sim state");
        let b = &mut s.behaviour;
        let delay = b.delay_ms;
        let decision = if b.fail_next > 0 {
            b.fail_next -= 1;
            Decision::Fail(
                StatusCode::from_u16(b.fail_status.unwrap_or(500))
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                b.fail_message
                    .clone()
                    .unwrap_or_else(|| "simulated failure".into()),
            )
        } else if b.fail_rate > 0.0 && rand::rng().random::<f64>() < b.fail_rate {
            Decision::Fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                "simulated failure".into(),
            )
        } else if b.malformed_next > 0 {
            b.malformed_next -= 1;
            Decision::Malformed
        } else if b.hang_next > 0 {
            b.hang_next -= 1;
            Decision::Hang
        } else {
            Decision::Accept
        };
        (delay, decision)
    };
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    match decision {
        Decision::Fail(status, message) => return errors(status, &message),
        Decision::Malformed => {
            return xml(
                StatusCode::OK,
                "<html><body>Service temporarily unavailable".into(),
            );
        }
        Decision::Accept | Decision::Hang => {}
    }
    let get = |k: &str| form.iter().find(|(fk, _)| fk == k).map(|(_, v)| v.clone());
    let Some(service_code) = get("service_code").filter(|s| !s.is_empty()) else {
        return errors(
            StatusCode::BAD_REQUEST,
            "Service Code cannot be null -- can't proceed with the request.",
        );
    };
    let mut attributes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in &form {
        if let Some(code) = k
            .strip_prefix("attribute[")
            .and_then(|r| r.strip_suffix(']'))
        {
            attributes
                .entry(code.to_string())
                .or_default()
                .push(v.clone());
        }
    }
    let client_id = sim
        .id_attributes
        .iter()
        .find_map(|a| attributes.get(a).and_then(|v| v.first().cloned()));
    let (reference, token) = {
        let mut s = sim.state.lock().expect("sim state");
        s.arrivals.push(client_id.clone().unwrap_or_default());
        let existing = client_id.as_ref().and_then(|id| {
            s.requests
                .iter_mut()
                .find(|r| r.client_id.as_ref() == Some(id))
        });
        if let Some(r) = existing {
            r.posts += 1;
            (r.service_request_id.clone(), r.token.clone())
        } else {
            s.next_id += 1;
            let reference = format!("SIM-{}", s.next_id);
            let token = s
                .behaviour
                .token_mode
                .then(|| format!("TOKEN-{}", s.next_id));
            let r = SimRequest {
                service_request_id: reference.clone(),
                service_code,
                client_id: client_id.clone(),
                description: get("description").unwrap_or_default(),
                attributes,
                posts: 1,
                token: token.clone(),
                created_at: Utc::now(),
                files,
            };
            s.requests.push(r);
            (reference, token)
        }
    };
    if matches!(decision, Decision::Hang) {
        // Stored, never answered: the client times out not knowing.
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let inner = match token {
        Some(t) => format!("<token>{t}</token>"),
        None => format!("<service_request_id>{reference}</service_request_id>"),
    };
    if file.ends_with(".json") {
        let body = match token_or_id(&inner) {
            (Some(id), _) => json!([{"service_request_id": id}]),
            (_, Some(t)) => json!([{"token": t}]),
            _ => json!([]),
        };
        return axum::Json(body).into_response();
    }
    xml(
        StatusCode::OK,
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><service_requests><request>{inner}</request></service_requests>"
        ),
    )
}

fn token_or_id(inner: &str) -> (Option<String>, Option<String>) {
    let between = |tag: &str| {
        inner
            .strip_prefix(&format!("<{tag}>"))
            .and_then(|r| r.strip_suffix(&format!("</{tag}>")))
            .map(str::to_string)
    };
    (between("service_request_id"), between("token"))
}

enum Decision {
    Accept,
    Fail(StatusCode, String),
    Malformed,
    Hang,
}

async fn get_top(
    State(sim): State<Simulator>,
    Path(file): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let s = sim.state.lock().expect("sim state");
    let now = Utc::now();
    match file.as_str() {
        "services.xml" => {
            let mut codes: Vec<&str> = s.requests.iter().map(|r| r.service_code.as_str()).collect();
            codes.sort_unstable();
            codes.dedup();
            xml(StatusCode::OK, format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><services>{}</services>",
                codes.iter().map(|c| format!("<service><service_code>{}</service_code><service_name>{}</service_name><metadata>false</metadata><type>realtime</type></service>", escape(c), escape(c))).collect::<String>()
            ))
        }
        "requests.xml" => {
            let wanted: Option<&String> = sim.id_attributes.iter().find_map(|a| query.get(a));
            let ids: Option<Vec<&str>> = query
                .get("service_request_id")
                .map(|v| v.split(',').collect());
            let body: String = s
                .requests
                .iter()
                .filter(|r| wanted.is_none_or(|w| r.client_id.as_ref() == Some(w)))
                .filter(|r| {
                    ids.as_ref()
                        .is_none_or(|ids| ids.contains(&r.service_request_id.as_str()))
                })
                .map(|r| request_xml(r, status_of(&s.behaviour, r, now)))
                .collect();
            xml(
                StatusCode::OK,
                format!(
                    "<?xml version=\"1.0\" encoding=\"utf-8\"?><service_requests>{body}</service_requests>"
                ),
            )
        }
        "servicerequestupdates.xml" => {
            let mut body = String::new();
            for r in &s.requests {
                let status = status_of(&s.behaviour, r, now);
                if status != "open" {
                    body.push_str(&format!(
                        "<request_update><update_id>{}_{}</update_id><service_request_id>{}</service_request_id><status>{}</status><updated_datetime>{}</updated_datetime><description>Status is now {}</description><media_url></media_url></request_update>",
                        escape(&r.service_request_id), status, escape(&r.service_request_id), status,
                        now.format("%Y-%m-%dT%H:%M:%SZ"), status
                    ));
                }
            }
            xml(
                StatusCode::OK,
                format!(
                    "<?xml version=\"1.0\" encoding=\"utf-8\"?><service_request_updates>{body}</service_request_updates>"
                ),
            )
        }
        _ => errors(StatusCode::NOT_FOUND, "not found"),
    }
}

async fn get_nested(
    State(sim): State<Simulator>,
    Path((dir, file)): Path<(String, String)>,
) -> Response {
    let s = sim.state.lock().expect("sim state");
    let Some(id) = file.strip_suffix(".xml") else {
        return errors(StatusCode::NOT_FOUND, "Bad extension");
    };
    match dir.as_str() {
        "tokens" => {
            let Some(r) = s.requests.iter().find(|r| r.token.as_deref() == Some(id)) else {
                return errors(StatusCode::NOT_FOUND, "token not found");
            };
            if (Utc::now() - r.created_at).num_milliseconds() < s.behaviour.token_delay_ms as i64 {
                return errors(StatusCode::NOT_FOUND, "token not yet resolved");
            }
            xml(
                StatusCode::OK,
                format!(
                    "<?xml version=\"1.0\" encoding=\"utf-8\"?><service_requests><request><service_request_id>{}</service_request_id><token>{}</token></request></service_requests>",
                    escape(&r.service_request_id),
                    escape(id)
                ),
            )
        }
        "requests" => match s.requests.iter().find(|r| r.service_request_id == id) {
            Some(r) => xml(
                StatusCode::OK,
                format!(
                    "<?xml version=\"1.0\" encoding=\"utf-8\"?><service_requests>{}</service_requests>",
                    request_xml(r, status_of(&s.behaviour, r, Utc::now()))
                ),
            ),
            None => errors(StatusCode::NOT_FOUND, "not found"),
        },
        _ => errors(StatusCode::NOT_FOUND, "not found"),
    }
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
