//! Checks a parsed configuration as a whole and turns it into the catalogue the store applies.
//! Every problem is collected with the key path it concerns.

use std::collections::HashSet;

use junction_domain::{Agency, AgencyKind, Jurisdiction};
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
    super::settings::check(config, &mut p);
    let (jurisdictions, agencies) = organisation(config, &mut p);
    let ids: Vec<String> = jurisdictions.iter().map(|j| j.id.clone()).collect();
    catalogue.case_types = super::case_types::check(config, &ids, &agencies, &mut p);
    catalogue.jurisdictions = jurisdictions;
    catalogue.agencies = agencies;
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

/// `[[jurisdictions]]` and `[[agencies]]`, checked.
fn organisation(config: &Config, p: &mut Problems) -> (Vec<Jurisdiction>, Vec<Agency>) {
    let mut jurisdictions = Vec::new();
    let mut agencies = Vec::new();
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
        jurisdictions.push(Jurisdiction {
            id: j.id.clone(),
            name: j.name.clone(),
        });
    }
    let jurisdiction_ids: Vec<String> = config.jurisdictions.iter().map(|j| j.id.clone()).collect();

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
        let jurisdiction_id = resolve_jurisdiction(
            &jurisdiction_ids,
            &a.jurisdiction,
            at.key("jurisdiction"),
            p,
        );
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
        agencies.push(Agency {
            id: a.id.clone(),
            jurisdiction_id,
            name: a.name.clone(),
            kind: kind.unwrap_or(AgencyKind::Department),
            email: a.email.clone(),
        });
    }
    (jurisdictions, agencies)
}

/// The jurisdiction a table belongs to: the one it names, or the only one declared.
pub(super) fn resolve_jurisdiction(
    ids: &[String],
    given: &Option<String>,
    at: KeyPath,
    p: &mut Problems,
) -> String {
    match given {
        Some(j) if ids.contains(j) => j.clone(),
        Some(j) => {
            p.push(at, format!("`{j}` is not a declared jurisdiction"));
            j.clone()
        }
        None if ids.len() == 1 => ids[0].clone(),
        None if ids.is_empty() => {
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
}
