//! Delivery to an Open311 GeoReport v2 back-end, speaking as FixMyStreet does: a form POST to
//! `requests.xml` with the case's fields as `attribute[code]` and Junction's case id under the
//! configured id attribute, so what became of an unanswered attempt can be proved
//! ([`lookup`]).

mod health;
pub mod lookup;
pub mod params;
pub mod updates;

use std::time::Duration;

use junction_domain::{Finding, Proof};
use serde_json::Value;

use crate::contract::{Accepted, Deliver, Outbound, Refused};
use crate::error::from_reqwest;
use crate::xml;
use crate::{ConnectorError, Open311Params};

/// How many times a token is polled within one attempt, and the first wait between polls.
const TOKEN_POLLS: u32 = 5;
const TOKEN_FIRST_WAIT: Duration = Duration::from_millis(500);

/// An Open311 back-end.
pub struct Open311 {
    params: Open311Params,
    api_key: String,
    endpoint: String,
    client: reqwest::Client,
}

impl Open311 {
    pub fn new(params: Open311Params, api_key: String) -> Result<Open311, String> {
        let mut endpoint = params.endpoint.clone();
        if !endpoint.ends_with('/') {
            endpoint.push('/');
        }
        let client = crate::kind::http_client(params.timeout_secs)?;
        Ok(Open311 {
            params,
            api_key,
            endpoint,
            client,
        })
    }

    /// The form FixMyStreet would post for `case`.
    pub fn form(&self, out: &Outbound<'_>) -> Vec<(String, String)> {
        let case = out.case;
        let mut form: Vec<(String, String)> = Vec::new();
        let mut push = |k: &str, v: String| form.push((k.to_string(), v));
        push("api_key", self.api_key.clone());
        if let Some(j) = &self.params.jurisdiction_id {
            push("jurisdiction_id", j.clone());
        }
        let service_code = self
            .params
            .service_codes
            .get(&case.case_type_code)
            .cloned()
            .unwrap_or_else(|| case.case_type_code.clone());
        push("service_code", service_code);
        push("description", self.description(case).0);
        if let (Some(lat), Some(long)) = (case.location.lat, case.location.long) {
            push("lat", format!("{lat:.6}"));
            push("long", format!("{long:.6}"));
        }
        if let Some(a) = &case.location.address {
            push("address_string", a.clone());
        }
        if let Some(name) = &case.submitter.name {
            let (first, last) = split_name(name);
            push("first_name", first);
            push("last_name", last);
        }
        if let Some(e) = &case.submitter.email {
            push("email", e.clone());
        }
        if let Some(p) = &case.submitter.phone {
            push("phone", p.clone());
        }
        push(
            &format!("attribute[{}]", self.params.id_attribute),
            case.id.clone(),
        );
        if let Some(uprn) = &case.location.uprn {
            push("attribute[uprn]", uprn.clone());
        }
        // Every photo address, repeated, as FixMyStreet posts them with `multi_photos`.
        for url in &case.media_urls {
            push("media_url", url.clone());
        }
        for (code, value) in &case.fields {
            attribute(&mut form, code, value);
        }
        if let Some(route) = out.route {
            for (code, value) in &route.extra {
                attribute(&mut form, code, value);
            }
            if let Some(p) = &route.priority {
                attribute(&mut form, "priority", &Value::String(p.clone()));
            }
        }
        form
    }

    /// The description as this back-end takes it: shortened to its documented limit, with a
    /// note saying so for the case's history.
    fn description(&self, case: &junction_domain::Case) -> (String, Option<String>) {
        let chars = case.description.chars().count();
        match self.params.max_description_chars {
            Some(max) if chars > max && max > 0 => {
                let short: String = case.description.chars().take(max - 1).collect();
                let note = format!(
                    "description shortened from {chars} to {max} characters, the back-end's limit"
                );
                (format!("{short}…"), Some(note))
            }
            _ => (case.description.clone(), None),
        }
    }

    /// Asks the back-end whether it holds this case, by the id attribute within the window of
    /// its attempts, and judges the answer ([`lookup::judge`]).
    async fn look_up(&self, out: &Outbound<'_>) -> Result<Finding, String> {
        let (start, end) = lookup::window(out.first_attempt_at, chrono::Utc::now());
        let mut query = vec![
            (self.params.id_attribute.clone(), out.case.id.clone()),
            ("start_date".to_string(), start),
            ("end_date".to_string(), end),
        ];
        if let Some(j) = &self.params.jurisdiction_id {
            query.push(("jurisdiction_id".into(), j.clone()));
        }
        let mut resp = self
            .client
            .get(format!("{}requests.xml", self.endpoint))
            .query(&query)
            .send()
            .await
            .map_err(|e| from_reqwest(&e, "looking the case up").message)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!(
                "the lookup was answered with HTTP {}",
                status.as_u16()
            ));
        }
        // Read at most the bound, whatever the back-end sends.
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| from_reqwest(&e, "reading the lookup answer").message)?
        {
            body.extend_from_slice(&chunk);
            if body.len() > lookup::MAX_ANSWER_BYTES {
                return Err(format!(
                    "the lookup answer is over {} bytes",
                    lookup::MAX_ANSWER_BYTES
                ));
            }
        }
        let body = String::from_utf8(body).map_err(|_| "the lookup answer is not UTF-8")?;
        Ok(lookup::judge(
            &body,
            &self.params.id_attribute,
            &out.case.id,
        ))
    }

    async fn resolve_token(&self, token: &str) -> Result<Option<String>, ConnectorError> {
        let mut wait = TOKEN_FIRST_WAIT;
        for poll in 1..=TOKEN_POLLS {
            let mut query = Vec::new();
            if let Some(j) = &self.params.jurisdiction_id {
                query.push(("jurisdiction_id", j.clone()));
            }
            let resp = self
                .client
                .get(format!("{}tokens/{token}.xml", self.endpoint))
                .query(&query)
                .send()
                .await
                .map_err(|e| from_reqwest(&e, "polling the token"))?;
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            if status.is_success()
                && let Ok(Answer::Id(id)) = parse_answer(&body)
            {
                return Ok(Some(id));
            }
            if status.is_client_error() && status.as_u16() != 404 {
                return Err(ConnectorError::transient(format!(
                    "polling token {token}: HTTP {status}"
                ))
                .with_response(body));
            }
            if poll < TOKEN_POLLS {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
        Ok(None)
    }
}

/// FixMyStreet's split: the first word, and the rest.
fn split_name(name: &str) -> (String, String) {
    let name = name.trim();
    match name.split_once(char::is_whitespace) {
        Some((first, rest)) => (first.to_string(), rest.trim().to_string()),
        None => (name.to_string(), String::new()),
    }
}

fn attribute(form: &mut Vec<(String, String)>, code: &str, value: &Value) {
    let key = format!("attribute[{code}]");
    match value {
        Value::Array(items) => {
            for item in items {
                form.push((key.clone(), scalar(item)));
            }
        }
        v => form.push((key, scalar(v))),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// What a back-end's answer to a POST said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Id(String),
    Token(String),
}

/// Reads `service_requests/request[0]` (XML, any root name) or `[0]` (JSON). An empty, `"0"`
/// or structured id is not an id.
pub fn parse_answer(body: &str) -> Result<Answer, String> {
    let trimmed = body.trim_start();
    let (id, token) = if trimmed.starts_with('[') || trimmed.starts_with('{') {
        let v: Value = serde_json::from_str(trimmed).map_err(|e| format!("bad JSON: {e}"))?;
        let first = match &v {
            Value::Array(items) => items.first().cloned().unwrap_or(Value::Null),
            Value::Object(map) => map
                .get("service_requests")
                .or_else(|| map.get("request"))
                .and_then(|x| match x {
                    Value::Array(a) => a.first().cloned(),
                    o => Some(o.clone()),
                })
                .unwrap_or(v.clone()),
            _ => Value::Null,
        };
        let text = |k: &str| match first.get(k) {
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        (text("service_request_id"), text("token"))
    } else {
        let root = xml::parse(body).map_err(|e| format!("bad XML: {e}"))?;
        let request = root
            .children
            .iter()
            .find(|c| c.name == "request" || c.name == "service_request")
            .or_else(|| (root.name == "request").then_some(&root))
            .ok_or("no <request> element")?;
        (
            request.text_of("service_request_id").map(str::to_string),
            request.text_of("token").map(str::to_string),
        )
    };
    match (id, token) {
        (Some(id), _) if !id.is_empty() && id != "0" => Ok(Answer::Id(id)),
        (_, Some(t)) if !t.is_empty() => Ok(Answer::Token(t)),
        _ => Err("no usable service_request_id (missing, empty or \"0\")".into()),
    }
}

/// The descriptions in an `errors` body, or the first part of whatever came back.
fn describe_errors(body: &str) -> String {
    if let Ok(root) = xml::parse(body) {
        let found: Vec<String> = root
            .children("error")
            .map(|e| {
                format!(
                    "{}: {}",
                    e.text_of("code").unwrap_or("?"),
                    e.text_of("description").unwrap_or("")
                )
            })
            .collect();
        if !found.is_empty() {
            return found.join("; ");
        }
    }
    if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(body) {
        let found: Vec<String> = items
            .iter()
            .map(|e| format!("{}: {}", e["code"], e["description"].as_str().unwrap_or("")))
            .collect();
        if !found.is_empty() {
            return found.join("; ");
        }
    }
    body.chars().take(300).collect()
}

#[async_trait::async_trait]
impl Deliver for Open311 {
    fn sends_files(&self) -> bool {
        self.params.upload_files
    }

    fn proof(&self) -> Proof {
        Proof {
            can_ask: self.params.lookup_by_id,
            dedupes: self.params.dedupes_on_id,
        }
    }

    async fn find(&self, out: &Outbound<'_>) -> Finding {
        self.look_up(out)
            .await
            .unwrap_or_else(Finding::Inconclusive)
    }

    async fn deliver(&self, out: &Outbound<'_>) -> Result<Accepted, Refused> {
        if let Some(token) = out.pending_token {
            return match self.resolve_token(token).await? {
                Some(id) => Ok(Accepted {
                    external_ref: Some(id),
                    response: None,
                    notes: self.description(out.case).1.into_iter().collect(),
                }),
                None => Err(Refused {
                    error: ConnectorError::transient(format!(
                        "token {token} is not resolved to a service_request_id yet"
                    )),
                    token: Some(token.to_string()),
                }),
            };
        }
        let form = self.form(out);
        let request = self.client.post(format!("{}requests.xml", self.endpoint));
        let request = if self.params.upload_files && !out.files.is_empty() {
            // The arguments and the files in one multipart body, files named as they came.
            let mut body = reqwest::multipart::Form::new();
            for (k, v) in form {
                body = body.text(k, v);
            }
            for f in out.files {
                let part = reqwest::multipart::Part::bytes(f.data.to_vec())
                    .file_name(f.file_name.to_string())
                    .mime_str(f.content_type)
                    .or_else(|_| {
                        reqwest::multipart::Part::bytes(f.data.to_vec())
                            .file_name(f.file_name.to_string())
                            .mime_str("application/octet-stream")
                    })
                    .map_err(|e| ConnectorError::permanent(format!("file part: {e}")))?;
                body = body.part(f.part.to_string(), part);
            }
            request.multipart(body)
        } else {
            request.form(&form)
        };
        let resp = request
            .send()
            .await
            .map_err(|e| from_reqwest(&e, "posting the request"))?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| from_reqwest(&e, "reading the answer"))?;
        if status.is_client_error() && !matches!(status.as_u16(), 408 | 429) {
            return Err(ConnectorError::permanent(format!(
                "refused with HTTP {}: {}",
                status.as_u16(),
                describe_errors(&body)
            ))
            .with_response(body)
            .into());
        }
        if !status.is_success() {
            return Err(ConnectorError::transient(format!(
                "HTTP {}: {}",
                status.as_u16(),
                describe_errors(&body)
            ))
            .with_response(body)
            .into());
        }
        match parse_answer(&body) {
            Ok(Answer::Id(id)) => Ok(Accepted {
                external_ref: Some(id),
                response: Some(body),
                notes: self.description(out.case).1.into_iter().collect(),
            }),
            Ok(Answer::Token(token)) => match self.resolve_token(&token).await? {
                Some(id) => Ok(Accepted {
                    external_ref: Some(id),
                    response: Some(body),
                    notes: self.description(out.case).1.into_iter().collect(),
                }),
                None => Err(Refused {
                    error: ConnectorError::transient(format!(
                        "token {token} was issued but not yet resolved"
                    ))
                    .with_response(body),
                    token: Some(token),
                }),
            },
            Err(why) => Err(
                ConnectorError::transient(format!("malformed answer: {why}"))
                    .with_response(body)
                    .into(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_as_fixmystreet_reads_them() {
        let ok = r#"<?xml version="1.0" encoding="utf-8"?><service_requests><request><service_request_id>248</service_request_id></request></service_requests>"#;
        assert_eq!(parse_answer(ok), Ok(Answer::Id("248".into())));
        let other_root =
            "<whatever><request><service_request_id>9</service_request_id></request></whatever>";
        assert_eq!(parse_answer(other_root), Ok(Answer::Id("9".into())));
        let token =
            "<service_requests><request><token>369FBB0C</token></request></service_requests>";
        assert_eq!(parse_answer(token), Ok(Answer::Token("369FBB0C".into())));
        for bad in [
            "<service_requests><request><service_request_id>0</service_request_id></request></service_requests>",
            "<service_requests><request><service_request_id></service_request_id></request></service_requests>",
            "<service_requests><request><service_request_id><id>1</id></service_request_id></request></service_requests>",
            "<service_requests></service_requests>",
            "<html>Bad gateway",
            "",
        ] {
            assert!(parse_answer(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_answer(r#"[{"service_request_id": 77}]"#),
            Ok(Answer::Id("77".into()))
        );
        assert!(parse_answer(r#"[{"service_request_id": "0"}]"#).is_err());
    }

    #[test]
    fn names_split_as_fixmystreet_splits_them() {
        assert_eq!(
            split_name("Pat  van Reporter"),
            ("Pat".into(), "van Reporter".into())
        );
        assert_eq!(split_name("Cher"), ("Cher".into(), String::new()));
    }

    #[test]
    fn error_bodies_are_described() {
        let body = "<errors><error><code>400</code><description>Service Code cannot be null</description></error></errors>";
        assert_eq!(describe_errors(body), "400: Service Code cannot be null");
    }
}
