//! The shape of the configuration file. Every section and key is documented here; this is the
//! reference `docs/CONFIGURATION.md` follows.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::secret::SecretRef;

/// The whole file. Every section is optional.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub audit: AuditConfig,
    pub telemetry: TelemetryConfig,
    pub jurisdictions: Vec<JurisdictionConfig>,
    pub agencies: Vec<AgencyConfig>,
    pub case_types: Vec<CaseTypeConfig>,
    pub connectors: Vec<ConnectorConfig>,
    pub routing: RoutingConfig,
    pub routes: Vec<RouteConfig>,
    pub workers: WorkersConfig,
    pub sharing: SharingConfig,
    /// Classifications of core case attributes, overriding the defaults:
    /// `"submitter.email" = "sensitive"`.
    pub classification: std::collections::BTreeMap<String, String>,
    pub agreements: Vec<AgreementConfig>,
    /// What each status change says to the public (`[statuses.fixed] text = "…"`), for every
    /// case type that does not say otherwise; unset statuses say a plain default.
    pub statuses: std::collections::BTreeMap<String, junction_domain::StatusNotice>,
    /// How Junction answers as an Open311 server.
    pub open311: Open311Config,
    /// Photos a front-end sent by address, fetched for back-ends that take files
    /// (`hosts`, `max_bytes`, `timeout_secs`, `allow_private_addresses`).
    pub media: junction_connectors::media::MediaFetchParams,
}

/// Sharing with partner agencies.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct SharingConfig {
    /// The closed list of purposes partners may state, e.g. `["crime_prevention"]`.
    pub purposes: Vec<String>,
    /// Rules that share matching cases as they arrive.
    pub rules: Vec<ShareRuleConfig>,
}

/// A rule that shares matching cases with a partner under an agreement.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ShareRuleConfig {
    /// Recorded on every share the rule makes.
    pub name: String,
    /// The agreement to share under; the partner is the agreement's.
    pub agreement: String,
    /// A condition, as in `[[routes]]`; without one every case the agreement covers is shared.
    pub when: Option<toml::Value>,
    /// Tell the partner as well: its subscriptions always hear of a share; `notify` is kept on
    /// the share for the notification connectors that arrive later.
    pub notify: bool,
}

/// A data sharing agreement with a partner agency.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct AgreementConfig {
    pub id: String,
    /// May be left out when there is one jurisdiction.
    pub jurisdiction: Option<String>,
    pub title: String,
    /// The partner agency's id.
    pub partner: String,
    pub case_types: Vec<String>,
    pub purposes: Vec<String>,
    pub lawful_basis: String,
    /// public, official, personal or sensitive.
    pub ceiling: String,
    /// Narrows what is shown to these attributes (`description`, `fields.risk`, …).
    pub fields: Option<Vec<String>>,
    /// A TOML date or date-time; a date means midnight UTC.
    pub valid_from: Option<toml::value::Datetime>,
    pub valid_to: Option<toml::value::Datetime>,
    pub review_date: Option<toml::value::Datetime>,
    /// `active` (default) or `suspended`.
    pub status: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct ServerConfig {
    /// Address to listen on. Env: `JUNCTION_LISTEN`.
    pub listen: String,
    /// Where Junction keeps its SQLite file and generated signing secret. Env: `JUNCTION_DATA_DIR`.
    pub data_dir: PathBuf,
    /// Turns on GraphiQL and introspection. Never in production. Env: `JUNCTION_DEVELOPMENT`.
    pub development: bool,
    /// Serve HTTPS with these PEM files; plain HTTP when absent.
    pub tls: Option<TlsConfig>,
    /// How long in-flight requests get to finish on shutdown, in seconds.
    pub shutdown_grace_secs: u64,
    /// How long a connection may take to send a request's headers (or its TLS handshake),
    /// counted from when it opens or finishes its last answer, in seconds.
    pub header_timeout_secs: u64,
    /// The longest pause while a request body arrives, in seconds.
    pub body_timeout_secs: u64,
    /// Most connections open at once; one more is closed at once.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("."),
            development: false,
            tls: None,
            shutdown_grace_secs: 20,
            header_timeout_secs: 15,
            body_timeout_secs: 30,
            max_connections: 1_024,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct DatabaseConfig {
    /// `sqlite://path` or `postgres://…`; default `sqlite://<data_dir>/junction.db`.
    /// Env: `JUNCTION_DATABASE_URL`.
    pub url: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct AuthConfig {
    /// The `iss` every token must carry.
    pub issuer: String,
    /// The `aud` every token must carry.
    pub audience: String,
    /// Accepted algorithms: `["HS256"]` with `secret`, or any of RS256, ES256, EdDSA with `jwks_file`.
    pub algorithms: Vec<String>,
    /// HS256 shared secret, as `${VAR}`. When absent (and no JWKS file is named), Junction
    /// generates one in its data directory on first start.
    pub secret: Option<SecretRef>,
    /// A JWKS file of public keys, selected by the token's `kid`.
    pub jwks_file: Option<PathBuf>,
    /// The longest lifetime (`exp - iat`) a token may have, in seconds.
    pub max_token_lifetime_secs: u64,
    /// How often the token revocation list is reloaded, in seconds.
    pub revocation_poll_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            issuer: "junction".into(),
            audience: "junction".into(),
            algorithms: vec!["HS256".into()],
            secret: None,
            jwks_file: None,
            max_token_lifetime_secs: 7 * 24 * 3600,
            revocation_poll_secs: 5,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct LimitsConfig {
    pub max_body_bytes: usize,
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_page_size: u64,
    pub max_query_secs: u64,
    /// Largest file an Open311 request may upload (a photo); a larger one is set aside and
    /// the refusal recorded on the case.
    pub max_upload_file_bytes: u64,
    /// Largest Open311 request body; a larger request is refused with 413.
    pub max_upload_request_bytes: u64,
    /// Refuse a report whose file is over the limit, instead of taking it in without the file.
    pub refuse_oversized_uploads: bool,
    /// Longest case description taken in, in characters, unless a case type says otherwise.
    /// Front-ends wrap the citizen's text (FixMyStreet adds title, URL and a footer), so this
    /// is well above what any form lets a person type.
    pub max_description_chars: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let d = junction_api::Limits::default();
        let u = junction_api::open311::UploadLimits::default();
        LimitsConfig {
            max_body_bytes: d.max_body_bytes,
            max_depth: d.max_depth,
            max_complexity: d.max_complexity,
            max_page_size: d.max_page_size,
            max_query_secs: d.max_query_secs,
            max_upload_file_bytes: u.file_bytes,
            max_upload_request_bytes: u.request_bytes,
            refuse_oversized_uploads: u.refuse_oversized,
            max_description_chars: junction_domain::case::DEFAULT_MAX_DESCRIPTION_CHARS,
        }
    }
}

impl LimitsConfig {
    /// The Open311 upload limits these settings give.
    pub fn uploads(&self) -> junction_api::open311::UploadLimits {
        junction_api::open311::UploadLimits {
            file_bytes: self.max_upload_file_bytes,
            request_bytes: self.max_upload_request_bytes,
            refuse_oversized: self.refuse_oversized_uploads,
        }
    }
}

/// Signed checkpoints of the audit chain's head, kept where the database's users cannot reach.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct AuditConfig {
    /// How often the head is checkpointed when it has moved; 0 turns checkpoints off.
    pub checkpoint_secs: u64,
    /// An append-only file (on other storage) each checkpoint is added to, one JSON line each.
    pub checkpoint_file: Option<PathBuf>,
    /// A URL each checkpoint is POSTed to as JSON (an external witness).
    pub checkpoint_webhook: Option<String>,
    /// The secret checkpoints are signed with, as `${VAR}`; every process writing to one
    /// database must share it. Without it, one is made in the data directory.
    pub checkpoint_secret: Option<SecretRef>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            checkpoint_secs: 60,
            checkpoint_file: None,
            checkpoint_webhook: None,
            checkpoint_secret: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct TelemetryConfig {
    /// `text` or `json`. Env: `JUNCTION_LOG_FORMAT`.
    pub log_format: String,
    /// A tracing filter such as `info` or `junction=debug,info`. Env: `JUNCTION_LOG`.
    pub log_level: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            log_format: "text".into(),
            log_level: "info".into(),
        }
    }
}

/// Junction as an Open311 server.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Open311Config {
    /// Clients (api key names) that read strict GeoReport v2: `<status>` is only `open` or
    /// `closed`. Everyone else reads the detailed mySociety status there, as FixMyStreet and
    /// open311-adapter do.
    pub strict_clients: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct JurisdictionConfig {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct AgencyConfig {
    pub id: String,
    /// May be left out when there is one jurisdiction.
    pub jurisdiction: Option<String>,
    pub name: String,
    /// department, contractor, partner or national_body.
    pub kind: String,
    pub email: Option<String>,
    /// The agency's default send method: a connector id. Without one, the agency's cases go by
    /// email to `email` through `routing.email_connector`.
    pub connector: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct CaseTypeConfig {
    pub code: String,
    /// May be left out when there is one jurisdiction.
    pub jurisdiction: Option<String>,
    pub name: String,
    pub description: String,
    pub group: Option<String>,
    pub keywords: Vec<String>,
    /// The owning agency's id.
    pub agency: String,
    /// This case type's own send method, overriding the agency's (FixMyStreet's "devolved"
    /// contact): a connector id.
    pub connector: Option<String>,
    /// `false` retires the case type: its cases stay, new ones are refused.
    pub active: bool,
    /// `true` lists the type over Open311, where front-ends may post cases of it and read
    /// its cases' public attributes. Off unless set: a type is for staff until published.
    pub published: bool,
    pub fields: Vec<FieldConfig>,
    /// This type's longest description, overriding `[limits] max_description_chars`.
    pub max_description_chars: Option<usize>,
    /// What status changes on cases of this type say, overriding the top-level `[statuses]`.
    pub statuses: std::collections::BTreeMap<String, junction_domain::StatusNotice>,
}

impl Default for CaseTypeConfig {
    fn default() -> Self {
        CaseTypeConfig {
            code: String::new(),
            jurisdiction: None,
            name: String::new(),
            description: String::new(),
            group: None,
            keywords: Vec::new(),
            agency: String::new(),
            connector: None,
            active: true,
            published: false,
            fields: Vec::new(),
            max_description_chars: None,
            statuses: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct FieldConfig {
    pub code: String,
    pub description: String,
    /// string, number, datetime, text, singlevaluelist or multivaluelist.
    pub datatype: String,
    pub required: bool,
    /// Display order; defaults to the field's position.
    pub order: Option<u32>,
    /// public, official, personal or sensitive.
    pub classification: String,
    pub values: Vec<ListValueConfig>,
    pub datatype_description: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ListValueConfig {
    pub key: String,
    pub name: String,
}

/// A connector: an endpoint of an external system. `params` depend on `kind`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ConnectorConfig {
    pub id: String,
    pub kind: String,
    pub params: toml::Table,
    /// Updates the back-end makes on cases it was sent: polled on a schedule and mapped to
    /// Junction statuses. Absent: none are read.
    pub updates: Option<super::updates::UpdatesConfig>,
    /// When to try again after a failure, and when to give up.
    pub retry: RetryConfig,
    /// Deliver one case at a time, oldest first, for back-ends that need cases in the order
    /// they were made. A later delivery waits while an earlier one is pending, in flight or
    /// waiting to be retried; a dead one no longer holds it back.
    pub ordered: bool,
}

/// A connector's retry policy: exponential backoff with jitter, capped, for a maximum age.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct RetryConfig {
    /// Wait after the first failure, in seconds.
    pub initial_secs: u64,
    /// Longest wait between attempts, in seconds.
    pub max_delay_secs: u64,
    /// Give up on a delivery first attempted longer ago than this, in hours (one whose last
    /// attempt may have arrived is parked for a person instead).
    pub max_age_hours: u64,
    /// After an unanswered attempt, how many inconclusive checks of whether it arrived before
    /// the delivery is parked for a person to decide.
    pub checks: u32,
    /// Spread each wait by up to this fraction either way (0 to 1).
    pub jitter: f64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        let d = junction_domain::RetryPolicy::default();
        RetryConfig {
            initial_secs: d.initial.as_secs(),
            max_delay_secs: d.max_delay.as_secs(),
            max_age_hours: d.max_age.as_secs() / 3600,
            checks: d.checks,
            jitter: d.jitter,
        }
    }
}

impl RetryConfig {
    pub fn policy(&self) -> junction_domain::RetryPolicy {
        junction_domain::RetryPolicy {
            initial: std::time::Duration::from_secs(self.initial_secs),
            max_delay: std::time::Duration::from_secs(self.max_delay_secs),
            max_age: std::time::Duration::from_secs(self.max_age_hours * 3600),
            checks: self.checks.max(1),
            jitter: self.jitter,
        }
    }
}

/// The delivery workers this process runs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct WorkersConfig {
    /// Run delivery workers in this process. Env: `JUNCTION_WORKERS` (`true`/`false`).
    pub enabled: bool,
    /// Deliveries attempted at once by this process.
    pub concurrency: usize,
}

impl Default for WorkersConfig {
    fn default() -> Self {
        WorkersConfig {
            enabled: true,
            concurrency: 64,
        }
    }
}

/// Routing defaults.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct RoutingConfig {
    /// The email connector that carries cases to agencies with no integration, and the
    /// `also_email` copies rules ask for.
    pub email_connector: Option<String>,
}

/// One routing rule. Rules are tried in file order; the first that matches applies, and
/// stops the walk unless it says `continue = true`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct RouteConfig {
    /// Recorded on the case when the rule fires.
    pub name: String,
    /// May be left out when there is one jurisdiction.
    pub jurisdiction: Option<String>,
    /// Case type codes; empty means all.
    pub case_types: Vec<String>,
    /// A condition: `{ field = "fields.depth_cm", gt = 10 }` (operators eq, ne, lt, gt, le, ge,
    /// one_of, matches), or `{ all = [..] }`, `{ any = [..] }`, `{ not = {..} }`.
    pub when: Option<toml::Value>,
    pub set: RouteSetConfig,
    /// Also send the case by email to these addresses, even if the main delivery fails.
    pub also_email: Vec<String>,
    #[serde(rename = "continue")]
    pub and_continue: bool,
}

/// What a rule sets.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct RouteSetConfig {
    pub agency: Option<String>,
    pub connector: Option<String>,
    pub priority: Option<String>,
    pub team: Option<String>,
    /// Extra values sent to the back-end with the case, e.g. `{ AnalysisCode1 = "PT1" }`.
    pub extra: toml::Table,
}
