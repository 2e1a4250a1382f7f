//! `[[connectors]]`: each connector's parameters parsed once, checked, and its secrets
//! resolved once, into the [`ConnectorSpec`]s the running process builds its connectors from.

use std::collections::{BTreeMap, HashSet};

use junction_connectors::{Capabilities, ConnectorKind, ConnectorParams};
use junction_domain::RetryPolicy;
use junction_store::catalogue::ConnectorRecord;

use super::locate::KeyPath;
use super::model::{Config, RetryConfig};
use super::secret::{SecretRef, SecretValue};
use super::updates::{UpdatesConfig, check_updates};
use super::validate::{Problems, is_slug, one_of};

/// A configured connector, ready to build: parameters parsed and secrets resolved.
#[derive(Debug, Clone)]
pub struct ConnectorSpec {
    pub id: String,
    pub params: ConnectorParams,
    /// The value of each `${VAR}` reference the parameters make.
    secrets: BTreeMap<String, SecretValue>,
    pub retry: RetryPolicy,
    pub ordered: bool,
    pub updates: Option<UpdatesConfig>,
    /// The resolved `[connectors.updates] push_secret`: the back-end may push signed updates.
    pub push_secret: Option<SecretValue>,
}

impl ConnectorSpec {
    /// The connector, with what its kind can do.
    pub fn build(&self) -> Result<Capabilities, String> {
        self.params.build(&|reference| {
            self.secrets
                .get(reference)
                .map(|v| v.expose().to_string())
                .ok_or_else(|| format!("the secret `{reference}` was not resolved"))
        })
    }
}

/// Checks every connector; returns the catalogue's records and the specs of those whose
/// parameters and secrets are sound.
pub(super) fn check(
    config: &Config,
    p: &mut Problems,
) -> (Vec<ConnectorRecord>, Vec<ConnectorSpec>) {
    let mut records = Vec::new();
    let mut specs = Vec::new();
    let mut seen = HashSet::new();
    for (i, c) in config.connectors.iter().enumerate() {
        let at = KeyPath::root("connectors").index(i);
        if !is_slug(&c.id) {
            p.push(
                at.key("id"),
                "must be lower-case letters, digits, `_` or `-` (at most 64)",
            );
        } else if !seen.insert(c.id.clone()) {
            p.push(
                at.key("id"),
                format!("connector `{}` is declared twice", c.id),
            );
        }
        let Some(kind) = ConnectorKind::parse(&c.kind) else {
            p.push(
                at.key("kind"),
                format!(
                    "`{}` is not one of: {}",
                    c.kind,
                    one_of(ConnectorKind::ALL, ConnectorKind::as_str)
                ),
            );
            continue;
        };
        let params_json = serde_json::to_value(&c.params).unwrap_or_default();
        let mut unknown = Vec::new();
        match ConnectorParams::parse(kind, params_json.clone(), &mut |k| unknown.push(k)) {
            Ok(params) => {
                let (secrets, resolved) = resolve_secrets(&params, &at, p);
                let problems = params.check();
                for (name, why) in &problems {
                    p.push(at.key("params").key(name), why.clone());
                }
                let push_secret = c
                    .updates
                    .as_ref()
                    .and_then(|u| u.push_secret.as_ref())
                    .and_then(|r| {
                        r.resolve()
                            .map_err(|why| p.push(at.key("updates").key("push_secret"), why))
                            .ok()
                    });
                if resolved && problems.is_empty() {
                    specs.push(ConnectorSpec {
                        id: c.id.clone(),
                        params,
                        secrets,
                        retry: c.retry.policy(),
                        ordered: c.ordered,
                        updates: c.updates.clone(),
                        push_secret,
                    });
                }
            }
            Err(why) => p.push(at.key("params"), why),
        }
        for key in unknown {
            p.push(
                at.key("params").key(&key),
                format!("unknown key `{key}` for a `{}` connector", kind.as_str()),
            );
        }
        check_retry(&c.retry, &at, p);
        if let Some(u) = &c.updates {
            check_updates(u, kind, &at, p);
        }
        records.push(ConnectorRecord {
            id: c.id.clone(),
            kind: c.kind.clone(),
            params: params_json,
            paused: false,
        });
    }
    (records, specs)
}

/// `[connectors.retry]`: delays that grow, an age limit, jitter as a fraction.
fn check_retry(r: &RetryConfig, at: &KeyPath, p: &mut Problems) {
    if r.initial_secs == 0 {
        p.push(
            at.key("retry").key("initial_secs"),
            "must be greater than 0",
        );
    }
    if r.max_delay_secs < r.initial_secs {
        p.push(
            at.key("retry").key("max_delay_secs"),
            "must be at least initial_secs",
        );
    }
    if r.max_age_hours == 0 {
        p.push(
            at.key("retry").key("max_age_hours"),
            "must be greater than 0",
        );
    }
    if !(0.0..=1.0).contains(&r.jitter) {
        p.push(at.key("retry").key("jitter"), "must be between 0 and 1");
    }
}

/// The secrets a connector's parameters refer to, resolved once; false if any could not be.
fn resolve_secrets(
    params: &ConnectorParams,
    at: &KeyPath,
    p: &mut Problems,
) -> (BTreeMap<String, SecretValue>, bool) {
    let mut secrets = BTreeMap::new();
    let mut resolved = true;
    for (name, reference) in params.secret_refs() {
        match SecretRef(reference.to_string()).resolve() {
            Ok(value) => {
                secrets.insert(reference.to_string(), value);
            }
            Err(why) => {
                resolved = false;
                p.push(at.key("params").key(name), why);
            }
        }
    }
    (secrets, resolved)
}
