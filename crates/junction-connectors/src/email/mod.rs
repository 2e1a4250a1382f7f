//! Delivery by email over SMTP (lettre), with STARTTLS or TLS through rustls; plain SMTP only
//! to a loopback relay. Subject and body come from minijinja templates; replies go to the
//! reporter. Every attempt of one delivery carries the same Message-ID, so a mail system that
//! sees a resend can tell.

mod health;
pub mod params;

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, Message, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use minijinja::Environment;
use serde_json::{Value, json};

use crate::contract::{Accepted, Deliver, Outbound, Refused};
use crate::{ConnectorError, EmailParams, EmailTls};

const SUBJECT: &str = "{% if notice %}Shared with you: {% endif %}{% if priority %}[{{ priority }}] {% endif %}{{ service_name }}: case {{ reference }}";

const BODY: &str = r#"{% if notice %}{{ notice }}{% else %}A {{ service_name }} case has been reported to {{ agency }}.{% endif %}

Reference:    {{ reference }}
{%- if priority %}
Priority:     {{ priority }}{% endif %}
{%- if team %}
Team:         {{ team }}{% endif %}
Reported:     {{ created_at }}

Location
{%- if address %}
  Address:    {{ address }}{% endif %}
{%- if lat is not none %}
  Lat/long:   {{ lat }}, {{ long }}{% endif %}
{%- if uprn %}
  UPRN:       {{ uprn }}{% endif %}

{% if not notice or description -%}
Description
{{ description }}
{% endif %}{% if media_urls %}
Photos
{%- for url in media_urls %}
  {{ url }}{% endfor %}
{% endif %}{% if fields %}
Details
{%- for code, value in fields|items %}
  {{ code }}: {{ value }}{% endfor %}
{% endif %}
{% if not notice or name or email or phone -%}
Reported by
  Name:       {{ name or "(not given)" }}
  Email:      {{ email or "(not given)" }}
  Phone:      {{ phone or "(not given)" }}
{% endif %}{% if rules %}
Routing rules applied: {{ rules|join(", ") }}
{% endif %}
Junction case id: {{ case_id }}
"#;

pub struct Email {
    params: EmailParams,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    templates: Environment<'static>,
}

/// Certificate checks for the relay: the public roots, and `ca_file` when given.
fn tls_parameters(params: &EmailParams) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(params.smtp_host.clone());
    if let Some(path) = &params.ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("ca_file {path}: {e}"))?;
        let certificate =
            Certificate::from_pem(&pem).map_err(|e| format!("ca_file {path}: {e}"))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder.build_rustls().map_err(|e| format!("TLS: {e}"))
}

impl Email {
    pub fn new(params: EmailParams, password: Option<String>) -> Result<Email, String> {
        let host = &params.smtp_host;
        let builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host);
        let builder = match params.tls {
            // The relay must offer STARTTLS; the message is never sent in the clear.
            EmailTls::Starttls => builder.tls(Tls::Required(tls_parameters(&params)?)),
            EmailTls::Tls => builder.tls(Tls::Wrapper(tls_parameters(&params)?)),
            EmailTls::None => builder,
        };
        let mut builder = builder
            .port(params.smtp_port)
            .timeout(Some(Duration::from_secs(params.timeout_secs.max(1))));
        if let (Some(user), Some(pass)) = (&params.username, password) {
            builder = builder.credentials(Credentials::new(user.clone(), pass));
        }
        let mut templates = Environment::new();
        templates
            .add_template_owned(
                "subject",
                params
                    .subject_template
                    .clone()
                    .unwrap_or_else(|| SUBJECT.into()),
            )
            .map_err(|e| format!("subject_template: {e}"))?;
        templates
            .add_template_owned(
                "body",
                params.body_template.clone().unwrap_or_else(|| BODY.into()),
            )
            .map_err(|e| format!("body_template: {e}"))?;
        Ok(Email {
            transport: builder.build(),
            params,
            templates,
        })
    }

    /// The values templates can use.
    pub fn context(out: &Outbound<'_>) -> Value {
        let c = out.case;
        let route = out.route;
        let fields: serde_json::Map<String, Value> = c
            .fields
            .iter()
            .map(|(k, v)| {
                let shown = match v {
                    Value::Array(items) => Value::String(
                        items
                            .iter()
                            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                    other => other.clone(),
                };
                (k.clone(), shown)
            })
            .collect();
        json!({
            "case_id": c.id,
            "reference": c.reference,
            "service_name": out.service_name,
            "case_type": c.case_type_code,
            "agency": route.map_or(c.agency_id.as_str(), |r| r.agency.as_str()),
            "priority": route.and_then(|r| r.priority.clone()),
            "team": route.and_then(|r| r.team.clone()),
            "rules": route.map(|r| r.rules.clone()).unwrap_or_default(),
            "created_at": c.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "description": c.description,
            "media_urls": c.media_urls,
            "address": c.location.address,
            "lat": c.location.lat,
            "long": c.location.long,
            "uprn": c.location.uprn,
            "fields": fields,
            "name": c.submitter.name,
            "email": c.submitter.email,
            "phone": c.submitter.phone,
            "notice": out.notice,
        })
    }

    /// The message for `out`, without sending it.
    pub fn message(&self, out: &Outbound<'_>) -> Result<Message, ConnectorError> {
        let ctx = Email::context(out);
        let render = |name: &str| {
            self.templates
                .get_template(name)
                .and_then(|t| t.render(&ctx))
                .map_err(|e| ConnectorError::permanent(format!("the {name} template failed: {e}")))
        };
        let subject = render("subject")?.replace(['\r', '\n'], " ");
        let body = render("body")?;
        let from: Mailbox = self
            .params
            .from
            .parse()
            .map_err(|e| ConnectorError::permanent(format!("from address: {e}")))?;
        let recipients: Vec<&String> = if out.to.is_empty() {
            self.params.to.iter().collect()
        } else {
            out.to.iter().collect()
        };
        if recipients.is_empty() {
            return Err(ConnectorError::permanent(
                "no recipient: the agency has no email address",
            ));
        }
        let mut builder = Message::builder()
            .from(from)
            .subject(subject)
            .message_id(Some(format!(
                "<{}@junction.invalid>",
                out.idempotency_key
                    .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', ".")
            )));
        for to in recipients {
            let mailbox: Mailbox = to
                .parse()
                .map_err(|e| ConnectorError::permanent(format!("recipient `{to}`: {e}")))?;
            builder = builder.to(mailbox);
        }
        if let Some(reply) = out
            .case
            .submitter
            .email
            .as_deref()
            .and_then(|e| e.parse::<Mailbox>().ok())
        {
            builder = builder.reply_to(reply);
        }
        let built = if out.files.is_empty() || !self.params.attach_files {
            builder.header(ContentType::TEXT_PLAIN).body(body)
        } else {
            let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(body));
            for f in out.files {
                let kind = ContentType::parse(f.content_type).unwrap_or_else(|_| {
                    ContentType::parse("application/octet-stream").expect("valid")
                });
                parts = parts.singlepart(
                    Attachment::new(f.file_name.to_string()).body(f.data.to_vec(), kind),
                );
            }
            builder.multipart(parts)
        };
        built.map_err(|e| ConnectorError::permanent(format!("building the message: {e}")))
    }
}

#[async_trait::async_trait]
impl Deliver for Email {
    fn sends_files(&self) -> bool {
        self.params.attach_files
    }

    /// A resend carries the same Message-ID, so the recipient's mail system recognises it
    /// (most keep one copy per Message-ID): an unanswered attempt is sent again.
    fn proof(&self) -> junction_domain::Proof {
        junction_domain::Proof {
            can_ask: false,
            dedupes: true,
        }
    }

    async fn deliver(&self, out: &Outbound<'_>) -> Result<Accepted, Refused> {
        let message = self.message(out)?;
        // The relay's whole answer within the connector's timeout: lettre bounds connecting,
        // not a relay that takes the message and then never says so.
        let limit = Duration::from_secs(self.params.timeout_secs.max(1));
        let Ok(sent) = tokio::time::timeout(limit, self.transport.send(message)).await else {
            return Err(ConnectorError::ambiguous(format!(
                "the mail server did not answer within {}s",
                limit.as_secs()
            ))
            .into());
        };
        match sent {
            Ok(response) => Ok(Accepted {
                external_ref: None,
                response: Some(response.message().collect::<Vec<_>>().join(" ")),
                notes: Vec::new(),
            }),
            Err(e) => {
                let text = e.to_string();
                Err(if e.is_permanent() {
                    ConnectorError::permanent(format!("the mail server refused: {text}"))
                        .with_response(text)
                } else if e.is_timeout() {
                    ConnectorError::ambiguous(format!("the mail server did not answer: {text}"))
                } else {
                    // The relay's own words (a 4xx reply) are kept for diagnosis.
                    ConnectorError::transient(format!("sending mail: {text}")).with_response(text)
                }
                .into())
            }
        }
    }
}
