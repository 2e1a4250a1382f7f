//! Checks a parsed configuration as a whole and turns it into the catalogue the store applies.
//! Every problem is collected with the key path it concerns.

use std::collections::HashSet;
use std::net::SocketAddr;

use junction_domain::{
    Agency, AgencyKind, CaseStatus, CaseType, Classification, Datatype, FieldDef, Jurisdiction,
    ListValue,
};
use junction_store::catalogue::Catalogue;

use super::connectors::ConnectorSpec;
use super::locate::KeyPath;
use super::model::Config;
use super::routing::Routing;
use super::sharing::Sharing;

pub struct Problem {
    pub path: KeyPath,
    pub message: String,
}

#[derive(Default)]
pub(super) struct Problems(pub(super) Vec<Problem>);

impl Problems {
    pub(super) fn push(&mut self, path: KeyPath, message: impl Into<String>) {
        self.0.push(Problem {
            path,
            message: message.into(),
        });
    }
}

/// An identifier others refer to: lower-case letters, digits, `_` and `-`.
pub(super) fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// An Open311 code: letters, digits, `_`, `-` and `.`.
use junction_domain::case_type::is_code;

/// Status notices keyed by status name, each key checked.
fn check_statuses(
    notices: &std::collections::BTreeMap<String, junction_domain::StatusNotice>,
    at: KeyPath,
    p: &mut Problems,
) -> std::collections::BTreeMap<CaseStatus, junction_domain::StatusNotice> {
    let mut out = std::collections::BTreeMap::new();
    for (name, notice) in notices {
        match CaseStatus::parse(name) {
            Some(status) => {
                out.insert(status, notice.clone());
            }
            None => p.push(
                at.key(name),
                format!(
                    "is not a status; use one of {}",
                    one_of(&CaseStatus::ALL, CaseStatus::as_str)
                ),
            ),
        }
    }
    out
}

pub(super) fn one_of<T: Copy>(all: &[T], name: impl Fn(T) -> &'static str) -> String {
    all.iter().map(|t| name(*t)).collect::<Vec<_>>().join(", ")
}

/// What a configuration declares, once checked.
pub struct Validated {
    pub catalogue: Catalogue,
    pub routing: Routing,
    pub sharing: Sharing,
    /// The connectors whose parameters and secrets are sound, ready to build.
    pub connectors: Vec<ConnectorSpec>,
    pub problems: Vec<Problem>,
}

/// Checks `config` and builds the catalogue it declares.
pub fn validate(config: &Config) -> Validated {
    let mut p = Problems::default();
    let mut catalogue = Catalogue::default();
    check_server(config, &mut p);

    let mut seen = HashSet::new();
    for (i, j) in config.jurisdictions.iter().enumerate() {
        let at = KeyPath::root("jurisdictions").index(i);
        if !is_slug(&j.id) {
            p.push(
                at.key("id"),
                "must be lower-case letters, digits, `_` or `-` (at most 64)",
            );
        } else if !seen.insert(j.id.clone()) {
            p.push(
                at.key("id"),
                format!("jurisdiction `{}` is declared twice", j.id),
            );
        }
        if j.name.trim().is_empty() {
            p.push(at.key("name"), "is required");
        }
        catalogue.jurisdictions.push(Jurisdiction {
            id: j.id.clone(),
            name: j.name.clone(),
        });
    }
    let jurisdiction_ids: Vec<String> = config.jurisdictions.iter().map(|j| j.id.clone()).collect();
    let resolve = |given: &Option<String>, at: KeyPath, p: &mut Problems| -> String {
        match given {
            Some(j) if jurisdiction_ids.contains(j) => j.clone(),
            Some(j) => {
                p.push(at, format!("`{j}` is not a declared jurisdiction"));
                j.clone()
            }
            None if jurisdiction_ids.len() == 1 => jurisdiction_ids[0].clone(),
            None if jurisdiction_ids.is_empty() => {
                p.push(
                    at,
                    "no jurisdiction is declared: add a [[jurisdictions]] table",
                );
                String::new()
            }
            None => {
                p.push(
                    at,
                    "is required when more than one jurisdiction is declared",
                );
                String::new()
            }
        }
    };

    let mut seen = HashSet::new();
    for (i, a) in config.agencies.iter().enumerate() {
        let at = KeyPath::root("agencies").index(i);
        if !is_slug(&a.id) {
            p.push(
                at.key("id"),
                "must be lower-case letters, digits, `_` or `-` (at most 64)",
            );
        } else if !seen.insert(a.id.clone()) {
            p.push(at.key("id"), format!("agency `{}` is declared twice", a.id));
        }
        let jurisdiction_id = resolve(&a.jurisdiction, at.key("jurisdiction"), &mut p);
        if a.name.trim().is_empty() {
            p.push(at.key("name"), "is required");
        }
        let kind = AgencyKind::parse(&a.kind);
        if kind.is_none() {
            p.push(
                at.key("kind"),
                format!(
                    "`{}` is not one of: {}",
                    a.kind,
                    one_of(&AgencyKind::ALL, AgencyKind::as_str)
                ),
            );
        }
        if let Some(email) = &a.email
            && !email.contains('@')
        {
            p.push(at.key("email"), "is not an email address");
        }
        catalogue.agencies.push(Agency {
            id: a.id.clone(),
            jurisdiction_id,
            name: a.name.clone(),
            kind: kind.unwrap_or(AgencyKind::Department),
            email: a.email.clone(),
        });
    }

    let mut seen = HashSet::new();
    let global_statuses = check_statuses(&config.statuses, KeyPath::root("statuses"), &mut p);
    for (i, c) in config.case_types.iter().enumerate() {
        let at = KeyPath::root("case_types").index(i);
        let jurisdiction_id = resolve(&c.jurisdiction, at.key("jurisdiction"), &mut p);
        if !is_code(&c.code) {
            p.push(
                at.key("code"),
                "must be letters, digits, `_`, `-` or `.` (at most 64)",
            );
        } else if !seen.insert((jurisdiction_id.clone(), c.code.clone())) {
            p.push(
                at.key("code"),
                format!(
                    "case type `{}` is declared twice in `{jurisdiction_id}`",
                    c.code
                ),
            );
        }
        if c.name.trim().is_empty() {
            p.push(at.key("name"), "is required");
        }
        match catalogue.agencies.iter().find(|a| a.id == c.agency) {
            None => p.push(
                at.key("agency"),
                format!("`{}` is not a declared agency", c.agency),
            ),
            Some(a) if a.jurisdiction_id != jurisdiction_id => p.push(
                at.key("agency"),
                format!(
                    "agency `{}` belongs to `{}`, not `{jurisdiction_id}`",
                    a.id, a.jurisdiction_id
                ),
            ),
            Some(_) => {}
        }
        let fields = check_fields(c, &at, &mut p);
        if c.max_description_chars == Some(0) {
            p.push(at.key("max_description_chars"), "must be greater than 0");
        }
        let mut statuses = global_statuses.clone();
        statuses.extend(check_statuses(&c.statuses, at.key("statuses"), &mut p));
        catalogue.case_types.push(CaseType {
            jurisdiction_id,
            code: c.code.clone(),
            name: c.name.clone(),
            description: c.description.clone(),
            group: c.group.clone(),
            keywords: c.keywords.clone(),
            agency_id: c.agency.clone(),
            fields,
            active: c.active,
            published: c.published,
            max_description_chars: c
                .max_description_chars
                .unwrap_or(config.limits.max_description_chars),
            statuses,
        });
    }

    let (records, connectors) = super::connectors::check(config, &mut p);
    catalogue.connectors = records;
    let mut routing = super::routing::build(config, &catalogue, &mut p);
    let sharing = super::sharing::build(config, &catalogue, &mut routing, &mut p);
    Validated {
        catalogue,
        routing,
        sharing,
        connectors,
        problems: p.0,
    }
}

fn check_server(config: &Config, p: &mut Problems) {
    if config.server.listen.parse::<SocketAddr>().is_err() {
        p.push(
            KeyPath::root("server").key("listen"),
            format!(
                "`{}` is not an address such as 127.0.0.1:8080",
                config.server.listen
            ),
        );
    }
    if let Some(tls) = &config.server.tls {
        for (name, file) in [("cert", &tls.cert), ("key", &tls.key)] {
            if !file.is_file() {
                p.push(
                    KeyPath::root("server").key("tls").key(name),
                    format!("file `{}` does not exist", file.display()),
                );
            }
        }
    }
    if !matches!(config.telemetry.log_format.as_str(), "text" | "json") {
        p.push(
            KeyPath::root("telemetry").key("log_format"),
            "must be `text` or `json`",
        );
    }
    let server = &config.server;
    for (name, value) in [
        ("header_timeout_secs", server.header_timeout_secs),
        ("body_timeout_secs", server.body_timeout_secs),
        ("max_connections", server.max_connections as u64),
    ] {
        if value == 0 {
            p.push(KeyPath::root("server").key(name), "must be greater than 0");
        }
    }
    let limits = &config.limits;
    for (name, value) in [
        ("max_body_bytes", limits.max_body_bytes as u64),
        ("max_depth", limits.max_depth as u64),
        ("max_complexity", limits.max_complexity as u64),
        ("max_page_size", limits.max_page_size),
        ("max_query_secs", limits.max_query_secs),
        ("max_upload_file_bytes", limits.max_upload_file_bytes),
        ("max_upload_request_bytes", limits.max_upload_request_bytes),
        ("max_description_chars", limits.max_description_chars as u64),
    ] {
        if value == 0 {
            p.push(KeyPath::root("limits").key(name), "must be greater than 0");
        }
    }
    if limits.max_upload_file_bytes > limits.max_upload_request_bytes {
        p.push(
            KeyPath::root("limits").key("max_upload_file_bytes"),
            format!(
                "is larger than max_upload_request_bytes ({}): no request could carry such a file",
                limits.max_upload_request_bytes
            ),
        );
    }
    let media = &config.media;
    for (i, host) in media.hosts.iter().enumerate() {
        let name = host.strip_prefix("*.").unwrap_or(host);
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
        {
            p.push(
                KeyPath::root("media").key("hosts").index(i),
                "must be a host name (`photos.example.org`, or `*.example.org` for its subdomains), without a scheme or path",
            );
        }
    }
    for (name, value) in [
        ("max_bytes", media.max_bytes),
        ("timeout_secs", media.timeout_secs),
    ] {
        if value == 0 {
            p.push(KeyPath::root("media").key(name), "must be greater than 0");
        }
    }
    let auth = &config.auth;
    let at = KeyPath::root("auth");
    let known = ["HS256", "RS256", "ES256", "EdDSA"];
    for (i, a) in auth.algorithms.iter().enumerate() {
        if !known.contains(&a.as_str()) {
            p.push(
                at.key("algorithms").index(i),
                format!("`{a}` is not one of: {}", known.join(", ")),
            );
        }
    }
    let shared = auth.algorithms.iter().any(|a| a == "HS256");
    if auth.algorithms.is_empty() {
        p.push(at.key("algorithms"), "at least one algorithm is required");
    } else if shared && auth.algorithms.len() > 1 {
        p.push(
            at.key("algorithms"),
            "HS256 cannot be mixed with public-key algorithms",
        );
    }
    if shared && auth.jwks_file.is_some() {
        p.push(
            at.key("jwks_file"),
            "a JWKS file holds public keys; HS256 uses `secret`",
        );
    }
    if !shared && !auth.algorithms.is_empty() && auth.jwks_file.is_none() {
        p.push(
            at.key("jwks_file"),
            "public-key algorithms need a JWKS file",
        );
    }
    if let Some(file) = &auth.jwks_file
        && !file.is_file()
    {
        p.push(
            at.key("jwks_file"),
            format!("file `{}` does not exist", file.display()),
        );
    }
    if let Some(secret) = &auth.secret {
        if !shared {
            p.push(at.key("secret"), "a shared secret is used only with HS256");
        }
        match secret.resolve() {
            Ok(v) if v.expose().len() < 32 => {
                p.push(at.key("secret"), "the secret must be at least 32 bytes")
            }
            Ok(_) => {}
            Err(why) => p.push(at.key("secret"), why),
        }
    }
    if auth.issuer.trim().is_empty() {
        p.push(at.key("issuer"), "is required");
    }
    if auth.audience.trim().is_empty() {
        p.push(at.key("audience"), "is required");
    }
    for (name, value) in [
        ("max_token_lifetime_secs", auth.max_token_lifetime_secs),
        ("revocation_poll_secs", auth.revocation_poll_secs),
    ] {
        if value == 0 {
            p.push(at.key(name), "must be greater than 0");
        }
    }
    let audit = &config.audit;
    let at = KeyPath::root("audit");
    if let Some(secret) = &audit.checkpoint_secret {
        match secret.resolve() {
            Ok(v) if v.expose().len() < 32 => p.push(
                at.key("checkpoint_secret"),
                "the secret must be at least 32 bytes",
            ),
            Ok(_) => {}
            Err(why) => p.push(at.key("checkpoint_secret"), why),
        }
    }
    if let Some(url) = &audit.checkpoint_webhook
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        p.push(
            at.key("checkpoint_webhook"),
            "must be an http:// or https:// URL",
        );
    }
    if let Some(file) = &audit.checkpoint_file
        && file
            .parent()
            .is_some_and(|d| !d.as_os_str().is_empty() && !d.is_dir())
    {
        p.push(
            at.key("checkpoint_file"),
            format!(
                "its directory `{}` does not exist",
                file.parent().unwrap_or(file).display()
            ),
        );
    }
}

fn check_fields(c: &super::model::CaseTypeConfig, at: &KeyPath, p: &mut Problems) -> Vec<FieldDef> {
    let mut seen = HashSet::new();
    let mut fields = Vec::new();
    for (i, f) in c.fields.iter().enumerate() {
        let at = at.key("fields").index(i);
        if !is_code(&f.code) {
            p.push(
                at.key("code"),
                "must be letters, digits, `_`, `-` or `.` (at most 64)",
            );
        } else if !seen.insert(f.code.clone()) {
            p.push(
                at.key("code"),
                format!("field `{}` is declared twice", f.code),
            );
        }
        if f.description.trim().is_empty() {
            p.push(
                at.key("description"),
                "is required: it is the question shown to people",
            );
        }
        let datatype = Datatype::ALL.into_iter().find(|d| d.as_str() == f.datatype);
        if datatype.is_none() {
            p.push(
                at.key("datatype"),
                format!(
                    "`{}` is not one of: {}",
                    f.datatype,
                    one_of(&Datatype::ALL, Datatype::as_str)
                ),
            );
        }
        let classification = Classification::ALL
            .into_iter()
            .find(|c| c.as_str() == f.classification);
        if classification.is_none() {
            let why = if f.classification.is_empty() {
                format!(
                    "is required: one of {}",
                    one_of(&Classification::ALL, Classification::as_str)
                )
            } else {
                format!(
                    "`{}` is not one of: {}",
                    f.classification,
                    one_of(&Classification::ALL, Classification::as_str)
                )
            };
            p.push(at.key("classification"), why);
        }
        match datatype {
            Some(d) if d.is_list() && f.values.is_empty() => {
                p.push(at.key("values"), "a list field needs at least one value")
            }
            Some(d) if !d.is_list() && !f.values.is_empty() => {
                p.push(at.key("values"), "only list fields take values")
            }
            _ => {}
        }
        let mut keys = HashSet::new();
        for (j, v) in f.values.iter().enumerate() {
            let vat = at.key("values").index(j);
            if v.key.trim().is_empty() {
                p.push(vat.key("key"), "is required");
            } else if !keys.insert(v.key.clone()) {
                p.push(vat.key("key"), format!("value `{}` is listed twice", v.key));
            }
            if v.name.trim().is_empty() {
                p.push(vat.key("name"), "is required");
            }
        }
        fields.push(FieldDef {
            code: f.code.clone(),
            description: f.description.clone(),
            datatype: datatype.unwrap_or(Datatype::String),
            required: f.required,
            order: f.order.unwrap_or(i as u32 + 1),
            classification: classification.unwrap_or(Classification::Sensitive),
            values: f
                .values
                .iter()
                .map(|v| ListValue {
                    key: v.key.clone(),
                    name: v.name.clone(),
                })
                .collect(),
            datatype_description: f.datatype_description.clone(),
        });
    }
    fields
}
