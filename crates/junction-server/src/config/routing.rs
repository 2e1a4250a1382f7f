//! Checks send methods and routing rules, and builds each jurisdiction's routing table.

use std::collections::BTreeMap;

use junction_domain::{Condition, RouteOutputs, RoutingTable, Rule};
use junction_store::catalogue::Catalogue;

use super::locate::KeyPath;
use super::model::{Config, RouteConfig};
use super::validate::Problems;

/// Each jurisdiction's routing table, by jurisdiction id.
pub type Routing = BTreeMap<String, RoutingTable>;

/// Builds the routing tables of `config`, whose catalogue is already checked, pushing every
/// problem found.
pub(super) fn build(config: &Config, catalogue: &Catalogue, p: &mut Problems) -> Routing {
    let mut routing: Routing = catalogue
        .jurisdictions
        .iter()
        .map(|j| (j.id.clone(), RoutingTable::default()))
        .collect();
    send_methods(config, catalogue, &mut routing, p);
    let email = config.routing.email_connector.as_deref();
    let jurisdictions: Vec<&str> = catalogue
        .jurisdictions
        .iter()
        .map(|j| j.id.as_str())
        .collect();
    for (i, r) in config.routes.iter().enumerate() {
        let at = KeyPath::root("routes").index(i);
        if let Some((jurisdiction, rule)) = rule(r, &at, catalogue, &jurisdictions, email, p)
            && let Some(table) = routing.get_mut(&jurisdiction)
        {
            table.rules.push(rule);
        }
    }
    routing
}

fn connector_kind<'a>(catalogue: &'a Catalogue, id: &str) -> Option<&'a str> {
    catalogue
        .connectors
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.kind.as_str())
}

fn check_connector(catalogue: &Catalogue, id: &str, at: KeyPath, p: &mut Problems) {
    if connector_kind(catalogue, id).is_none() {
        p.push(at, format!("`{id}` is not a declared connector"));
    }
}

/// The send methods: the email connector, and the connector of each agency and case type.
fn send_methods(config: &Config, catalogue: &Catalogue, routing: &mut Routing, p: &mut Problems) {
    let email = config.routing.email_connector.clone();
    if let Some(id) = &email {
        match connector_kind(catalogue, id) {
            None => p.push(
                KeyPath::root("routing").key("email_connector"),
                format!("`{id}` is not a declared connector"),
            ),
            Some("email") => {}
            Some(kind) => p.push(
                KeyPath::root("routing").key("email_connector"),
                format!("`{id}` is a `{kind}` connector, not an `email` one"),
            ),
        }
    }
    for table in routing.values_mut() {
        table.methods.email_connector = email.clone();
    }

    for (i, a) in config.agencies.iter().enumerate() {
        let at = KeyPath::root("agencies").index(i);
        let Some(agency) = catalogue.agencies.iter().find(|x| x.id == a.id) else {
            continue;
        };
        match &a.connector {
            Some(id) => {
                check_connector(catalogue, id, at.key("connector"), p);
                if let Some(t) = routing.get_mut(&agency.jurisdiction_id) {
                    t.methods.agency_connectors.insert(a.id.clone(), id.clone());
                }
            }
            None if agency.email.is_some() && email.is_none() => p.push(
                at.key("email"),
                "cases for an agency with no `connector` go by email: set \
                 `routing.email_connector` to the email connector that carries them",
            ),
            None => {}
        }
    }
    for (i, c) in config.case_types.iter().enumerate() {
        if let Some(id) = &c.connector {
            let at = KeyPath::root("case_types").index(i);
            check_connector(catalogue, id, at.key("connector"), p);
            let jurisdiction = catalogue
                .case_types
                .get(i)
                .map(|t| t.jurisdiction_id.clone())
                .unwrap_or_default();
            if let Some(t) = routing.get_mut(&jurisdiction) {
                t.methods
                    .case_type_connectors
                    .insert(c.code.clone(), id.clone());
            }
        }
    }
}

/// One routing rule, checked, with the jurisdiction it belongs to.
fn rule(
    r: &RouteConfig,
    at: &KeyPath,
    catalogue: &Catalogue,
    jurisdictions: &[&str],
    email: Option<&str>,
    p: &mut Problems,
) -> Option<(String, Rule)> {
    if r.name.trim().is_empty() {
        p.push(
            at.key("name"),
            "is required: it is recorded on every case the rule routes",
        );
    }
    let jurisdiction = jurisdiction_of(
        r.jurisdiction.as_ref(),
        jurisdictions,
        at.key("jurisdiction"),
        p,
    )?;
    let types: Vec<_> = catalogue
        .case_types
        .iter()
        .filter(|t| t.jurisdiction_id == jurisdiction)
        .collect();
    for (k, code) in r.case_types.iter().enumerate() {
        if !types.iter().any(|t| t.code == *code) {
            p.push(
                at.key("case_types").index(k),
                format!("`{code}` is not a case type of `{jurisdiction}`"),
            );
        }
    }
    let when = condition(r, at, &types, p);
    let set = &r.set;
    if let Some(agency) = &set.agency {
        match catalogue.agencies.iter().find(|a| a.id == *agency) {
            None => p.push(
                at.key("set").key("agency"),
                format!("`{agency}` is not a declared agency"),
            ),
            Some(a) if a.jurisdiction_id != jurisdiction => p.push(
                at.key("set").key("agency"),
                format!(
                    "agency `{agency}` belongs to `{}`, not `{jurisdiction}`",
                    a.jurisdiction_id
                ),
            ),
            Some(_) => {}
        }
    }
    if let Some(id) = &set.connector {
        check_connector(catalogue, id, at.key("set").key("connector"), p);
    }
    for (k, address) in r.also_email.iter().enumerate() {
        if !address.contains('@') || address.chars().any(char::is_whitespace) {
            p.push(
                at.key("also_email").index(k),
                format!("`{address}` is not an email address"),
            );
        }
    }
    if !r.also_email.is_empty() && email.is_none() {
        p.push(
            at.key("also_email"),
            "needs `routing.email_connector`, the email connector that carries the copies",
        );
    }
    let outputs = RouteOutputs {
        agency: set.agency.clone(),
        connector: set.connector.clone(),
        priority: set.priority.clone(),
        team: set.team.clone(),
        extra: set
            .extra
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or_default()))
            .collect(),
        also_email: r.also_email.clone(),
    };
    let rule = Rule {
        name: r.name.clone(),
        case_types: r.case_types.clone(),
        when,
        outputs,
        and_continue: r.and_continue,
    };
    Some((jurisdiction, rule))
}

/// A rule's `when`, parsed; a field it reads must exist in a case type it can see.
fn condition(
    r: &RouteConfig,
    at: &KeyPath,
    types: &[&junction_domain::CaseType],
    p: &mut Problems,
) -> Option<Condition> {
    let c = when(r.when.as_ref()?, at.key("when"), p)?;
    let scope: Vec<_> = types
        .iter()
        .filter(|t| r.case_types.is_empty() || r.case_types.contains(&t.code))
        .collect();
    for code in c.fields() {
        if !scope.iter().any(|t| t.field(code).is_some()) {
            p.push(
                at.key("when"),
                format!("no case type this rule applies to has a field `{code}`"),
            );
        }
    }
    Some(c)
}

/// A `when` table (of a route or a sharing rule) parsed as a condition; `None`, with the
/// problem pushed at the key inside it that is wrong, when it does not parse.
pub(super) fn when(value: &toml::Value, at: KeyPath, p: &mut Problems) -> Option<Condition> {
    let json = serde_json::to_value(value).unwrap_or_default();
    match Condition::from_value(&json) {
        Ok(c) => Some(c),
        Err(e) => {
            let mut path = at;
            for seg in split_path(&e.path) {
                path = match seg {
                    Ok(k) => path.key(&k),
                    Err(n) => path.index(n),
                };
            }
            p.push(path, e.reason);
            None
        }
    }
}

/// Splits `all[1].gt` into keys and indexes.
fn split_path(path: &str) -> Vec<Result<String, usize>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|s| !s.is_empty()) {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            out.push(Ok(rest[..open].to_string()));
            rest = &rest[open..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let close = stripped.find(']').unwrap_or(stripped.len());
                out.push(Err(stripped[..close].parse::<usize>().unwrap_or(0)));
                rest = stripped.get(close + 1..).unwrap_or("");
            }
        } else {
            out.push(Ok(rest.to_string()));
        }
    }
    out
}

/// The jurisdiction an entry names, or the only one declared; `None` (with the problem pushed
/// at `at`) when it names an undeclared one or leaves it out among several.
pub(super) fn jurisdiction_of(
    given: Option<&String>,
    jurisdictions: &[&str],
    at: KeyPath,
    p: &mut Problems,
) -> Option<String> {
    match (given, jurisdictions) {
        (Some(j), _) if jurisdictions.contains(&j.as_str()) => Some(j.clone()),
        (Some(j), _) => {
            p.push(at, format!("`{j}` is not a declared jurisdiction"));
            None
        }
        (None, [only]) => Some(only.to_string()),
        (None, _) => {
            p.push(
                at,
                "is required when more than one jurisdiction is declared",
            );
            None
        }
    }
}
