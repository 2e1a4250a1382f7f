//! `POST requests`: what the simulated back-end stores, and how it fails. Like most council
//! systems it stores every POST it is sent unless told to de-duplicate on the id attribute.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use rand::Rng;
use serde_json::json;

use super::{Behaviour, SimFile, SimRequest, Simulator, errors, xml};

/// A POST's arguments, from a form or a multipart body, and its files.
pub(super) async fn read_form(
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
pub(super) async fn post_top(
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
    let get = |k: &str| form.iter().find(|(fk, _)| fk == k).map(|(_, v)| v.clone());
    let attributes = attributes_of(&form);
    let client_id = sim
        .id_attributes
        .iter()
        .find_map(|a| attributes.get(a).and_then(|v| v.first().cloned()));
    let (delay, decision) = sim.decide_for(client_id.as_deref());
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
    let Some(service_code) = get("service_code").filter(|s| !s.is_empty()) else {
        return errors(
            StatusCode::BAD_REQUEST,
            "Service Code cannot be null -- can't proceed with the request.",
        );
    };
    let description = get("description").unwrap_or_default();
    let limit = sim
        .state
        .lock()
        .expect("sim state")
        .behaviour
        .max_description_chars;
    if let Some(max) = limit.filter(|max| description.chars().count() > *max) {
        let why = format!("Description is longer than {max} characters");
        return errors(StatusCode::BAD_REQUEST, &why);
    }
    let media_urls: Vec<String> = form
        .iter()
        .filter(|(k, _)| k == "media_url")
        .map(|(_, v)| v.clone())
        .collect();
    let (reference, token, hang) = {
        let mut s = sim.state.lock().expect("sim state");
        s.arrivals.push(client_id.clone().unwrap_or_default());
        let dedupe = s.behaviour.dedupe;
        let existing = client_id.as_ref().filter(|_| dedupe).and_then(|id| {
            s.requests
                .iter_mut()
                .find(|r| r.client_id.as_ref() == Some(id))
        });
        if let Some(r) = existing {
            r.posts += 1;
            (r.service_request_id.clone(), r.token.clone(), false)
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
                description,
                media_urls,
                attributes,
                posts: 1,
                token: token.clone(),
                created_at: Utc::now(),
                files,
            };
            s.requests.push(r);
            let every = s.behaviour.hang_every;
            let hang = every > 0 && s.requests.len() % every as usize == 0;
            (reference, token, hang)
        }
    };
    let decision = if hang { Decision::Hang } else { decision };
    if matches!(decision, Decision::Hang) {
        // Stored, never answered: the client times out not knowing.
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    answer(&file, token, &reference)
}

/// The `attribute[code]` fields of a form, each with every value given.
fn attributes_of(form: &[(String, String)]) -> BTreeMap<String, Vec<String>> {
    let mut attributes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in form {
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
    attributes
}

/// The answer to a stored request, as the back-end gives it: its id, or a token for later.
fn answer(file: &str, token: Option<String>, reference: &str) -> Response {
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

/// What the behaviour says of a POST, the `tries`-th for its case.
fn decide(b: &mut Behaviour, tries: u32) -> Decision {
    let failure = |b: &Behaviour| {
        Decision::Fail(
            StatusCode::from_u16(b.fail_status.unwrap_or(500))
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            b.fail_message
                .clone()
                .unwrap_or_else(|| "simulated failure".into()),
        )
    };
    if b.fail_next > 0 {
        b.fail_next -= 1;
        failure(b)
    } else if tries <= b.fail_first_posts {
        Decision::Fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            "simulated failure of a first attempt".into(),
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
    }
}

impl Simulator {
    /// How this POST goes (its delay and what happens to it), from the behaviour and how many
    /// times this client's id has been posted.
    fn decide_for(&self, client_id: Option<&str>) -> (u64, Decision) {
        let mut s = self.state.lock().expect("sim state");
        let tries = {
            let n = s
                .tries
                .entry(client_id.unwrap_or_default().to_string())
                .or_default();
            *n += 1;
            *n
        };
        let b = &mut s.behaviour;
        (b.delay_ms, decide(b, tries))
    }
}
