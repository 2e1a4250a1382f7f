//! Checks the sharing sections (`[sharing]`, `[classification]`, `[[agreements]]`) and builds
//! the sharing policy, the declared agreements, and each jurisdiction's sharing rules.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use junction_api::SharingPolicy;
use junction_domain::sharing::{ShareRule, valid_purpose};
use junction_domain::{
    AgencyKind, Agreement, AgreementStatus, Classification, Condition, CoreClassification,
};
use junction_store::catalogue::Catalogue;

use super::locate::KeyPath;
use super::model::{AgreementConfig, Config, ShareRuleConfig};
use super::routing::Routing;
use super::validate::Problems;

/// What the sharing sections declare.
#[derive(Debug, Clone, Default)]
pub struct Sharing {
    pub policy: SharingPolicy,
    pub agreements: Vec<Agreement>,
}

fn classification(s: &str) -> Option<Classification> {
    Classification::ALL.into_iter().find(|c| c.as_str() == s)
}

/// A TOML date or date-time as a UTC instant; a date alone is midnight UTC.
fn instant(v: &toml::value::Datetime) -> Option<DateTime<Utc>> {
    let s = v.to_string();
    if let Ok(t) = DateTime::parse_from_rfc3339(&s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(&s, "%Y-%m-%dT%H:%M:%S") {
        return Some(t.and_utc());
    }
    NaiveDate::parse_from_str(&s, "%Y-%m-%d")
        .ok()
        .map(|d| d.and_time(NaiveTime::MIN).and_utc())
}

pub(super) fn build(
    config: &Config,
    catalogue: &Catalogue,
    routing: &mut Routing,
    p: &mut Problems,
) -> Sharing {
    let purposes = purposes(config, p);
    let core = Arc::new(core(config, p));
    let jurisdictions: Vec<&str> = catalogue
        .jurisdictions
        .iter()
        .map(|j| j.id.as_str())
        .collect();
    let mut agreements: Vec<Agreement> = Vec::new();
    let mut seen = HashSet::new();
    for (i, a) in config.agreements.iter().enumerate() {
        let at = KeyPath::root("agreements").index(i);
        if !seen.insert(a.id.clone()) {
            p.push(
                at.key("id"),
                format!("agreement `{}` is declared twice", a.id),
            );
        }
        let Some(jurisdiction) = super::routing::jurisdiction_of(
            a.jurisdiction.as_ref(),
            &jurisdictions,
            at.key("jurisdiction"),
            p,
        ) else {
            continue;
        };
        let Some(agreement) = agreement(a, &at, jurisdiction, catalogue, &purposes, &core, p)
        else {
            continue;
        };
        for other in &agreements {
            if let Some(why) = agreement.disagrees_with(other) {
                p.push(at.key("case_types"), why);
            }
        }
        agreements.push(agreement);
    }
    for (i, r) in config.sharing.rules.iter().enumerate() {
        let at = KeyPath::root("sharing").key("rules").index(i);
        if let Some(rule) = share_rule(r, &at, &agreements, catalogue, p)
            && let Some(table) = routing.get_mut(&rule.1)
        {
            table.share_rules.push(rule.0);
        }
    }
    Sharing {
        policy: SharingPolicy { purposes, core },
        agreements,
    }
}

/// `[sharing] purposes`: each well formed and listed once.
fn purposes(config: &Config, p: &mut Problems) -> Vec<String> {
    let mut purposes = Vec::new();
    for (i, purpose) in config.sharing.purposes.iter().enumerate() {
        let at = KeyPath::root("sharing").key("purposes").index(i);
        if !valid_purpose(purpose) {
            p.push(
                at,
                "must be lower-case letters, digits, `_` or `-` (at most 64)",
            );
        } else if purposes.contains(purpose) {
            p.push(at, format!("purpose `{purpose}` is listed twice"));
        } else {
            purposes.push(purpose.clone());
        }
    }
    purposes
}

/// `[classification]`: the classification of each core case attribute.
fn core(config: &Config, p: &mut Problems) -> CoreClassification {
    let mut core = CoreClassification::default();
    for (path, class) in &config.classification {
        let at = KeyPath::root("classification").key(path);
        match classification(class) {
            None => p.push(
                at,
                format!("`{class}` is not one of: public, official, personal, sensitive"),
            ),
            Some(c) => {
                if let Err(why) = core.set(path, c) {
                    p.push(at, why);
                }
            }
        }
    }
    core
}

/// One `[[agreements]]` entry in `jurisdiction`, checked; `None` when it has no start date.
fn agreement(
    a: &AgreementConfig,
    at: &KeyPath,
    jurisdiction: String,
    catalogue: &Catalogue,
    purposes: &[String],
    core: &CoreClassification,
    p: &mut Problems,
) -> Option<Agreement> {
    if a.title.trim().is_empty() {
        p.push(at.key("title"), "is required");
    }
    let ceiling = classification(&a.ceiling).unwrap_or_else(|| {
        p.push(
            at.key("ceiling"),
            format!(
                "`{}` is not one of: public, official, personal, sensitive",
                a.ceiling
            ),
        );
        Classification::Public
    });
    let status = match a.status.as_deref() {
        None => AgreementStatus::Active,
        Some(s) => AgreementStatus::parse(s).unwrap_or_else(|| {
            p.push(at.key("status"), "must be `active` or `suspended`");
            AgreementStatus::Suspended
        }),
    };
    let mut date = |key: &str, v: &Option<toml::value::Datetime>| {
        v.as_ref().and_then(|d| {
            let t = instant(d);
            if t.is_none() {
                p.push(
                    at.key(key),
                    "must be a date (2026-04-01) or a date-time with a zone",
                );
            }
            t
        })
    };
    let valid_from = date("valid_from", &a.valid_from);
    let valid_to = date("valid_to", &a.valid_to);
    let review_date = date("review_date", &a.review_date).map(|t| t.date_naive());
    let Some(valid_from) = valid_from else {
        if a.valid_from.is_none() {
            p.push(
                at.key("valid_from"),
                "is required: from when does the agreement apply?",
            );
        }
        return None;
    };
    let agreement = Agreement {
        id: a.id.clone(),
        jurisdiction_id: jurisdiction.clone(),
        title: a.title.clone(),
        partner_agency_id: a.partner.clone(),
        case_types: a.case_types.clone(),
        purposes: a.purposes.clone(),
        lawful_basis: a.lawful_basis.clone(),
        ceiling,
        fields: a.fields.clone(),
        valid_from,
        valid_to,
        review_date,
        status,
    };
    let partner = catalogue.agencies.iter().find(|x| x.id == a.partner);
    if let Some(partner) = partner
        && !matches!(partner.kind, AgencyKind::Partner | AgencyKind::NationalBody)
    {
        p.push(
            at.key("partner"),
            format!(
                "`{}` is a {}, not a partner agency or national body",
                partner.id,
                partner.kind.as_str()
            ),
        );
    }
    let case_type = |code: &str| {
        catalogue
            .case_types
            .iter()
            .find(|t| t.code == code && t.jurisdiction_id == jurisdiction)
            .cloned()
    };
    if let Err(errors) = agreement.validate(
        partner.is_some_and(|x| x.jurisdiction_id == jurisdiction),
        &case_type,
        purposes,
        core,
    ) {
        push_errors(errors, at, p);
    }
    Some(agreement)
}

/// One `[[sharing.rules]]` entry, checked, with the jurisdiction of its agreement.
fn share_rule(
    r: &ShareRuleConfig,
    at: &KeyPath,
    agreements: &[Agreement],
    catalogue: &Catalogue,
    p: &mut Problems,
) -> Option<(ShareRule, String)> {
    if r.name.trim().is_empty() {
        p.push(
            at.key("name"),
            "is required: it is recorded on every share the rule makes",
        );
    }
    let Some(agreement) = agreements.iter().find(|a| a.id == r.agreement) else {
        p.push(
            at.key("agreement"),
            format!("`{}` is not a declared agreement", r.agreement),
        );
        return None;
    };
    let when = match &r.when {
        None => None,
        Some(v) => super::routing::when(v, at.key("when"), p),
    };
    for code in when.iter().flat_map(Condition::fields) {
        let known = agreement.case_types.iter().any(|t| {
            catalogue.case_types.iter().any(|ct| {
                &ct.code == t
                    && ct.jurisdiction_id == agreement.jurisdiction_id
                    && ct.field(code).is_some()
            })
        });
        if !known {
            p.push(
                at.key("when"),
                format!("`fields.{code}` is not a field of the agreement's case types"),
            );
        }
    }
    let rule = ShareRule {
        name: r.name.clone(),
        when,
        agency: agreement.partner_agency_id.clone(),
        agreement: agreement.id.clone(),
        notify: r.notify,
    };
    Some((rule, agreement.jurisdiction_id.clone()))
}

/// The domain's refusals of an entry, each at its key in the file (`case_types[2]`).
fn push_errors(errors: junction_domain::ValidationErrors, at: &KeyPath, p: &mut Problems) {
    for e in errors.0 {
        let key = match e.field.split_once('[') {
            Some((name, rest)) => {
                let n = rest.trim_end_matches(']').parse().unwrap_or(0);
                at.key(name).index(n)
            }
            None => at.key(&e.field),
        };
        p.push(key, e.reason);
    }
}
