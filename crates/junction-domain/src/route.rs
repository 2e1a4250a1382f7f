//! Routing: deciding where a case goes.
//!
//! A case starts with its case type's agency. The connector that carries it is, in order: the
//! one a rule names; the case type's own send method (FixMyStreet's "devolved" contact) while
//! the case stays with the case type's agency; the agency's default send method; and, for an
//! agency with no integration, email to the agency's address.
//!
//! Rules are ordered. The first rule whose case types and condition match applies its outputs
//! and stops the walk, unless it says `continue`, in which case later rules may add to (but not
//! undo) what it set. Every rule that applied is named in the decision, which is recorded on
//! the case and in its history.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::case::Case;

/// What a condition compares a value of the case with.
#[derive(Debug, Clone)]
pub enum Op {
    Eq(Value),
    Ne(Value),
    Lt(f64),
    Gt(f64),
    Le(f64),
    Ge(f64),
    OneOf(Vec<Value>),
    Matches(regex::Regex),
}

/// A part of a case a condition can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A case-type field, `fields.<code>`.
    Field(String),
    CaseType,
    Description,
    Address,
    Uprn,
    Lat,
    Long,
}

impl Subject {
    pub fn parse(s: &str) -> Option<Subject> {
        Some(match s {
            "case_type" => Subject::CaseType,
            "description" => Subject::Description,
            "location.address" => Subject::Address,
            "location.uprn" => Subject::Uprn,
            "location.lat" => Subject::Lat,
            "location.long" => Subject::Long,
            _ => {
                let code = s.strip_prefix("fields.")?;
                if code.is_empty() {
                    return None;
                }
                Subject::Field(code.to_string())
            }
        })
    }

    fn read(&self, case: &Case) -> Value {
        match self {
            Subject::Field(code) => case.fields.get(code).cloned().unwrap_or(Value::Null),
            Subject::CaseType => Value::String(case.case_type_code.clone()),
            Subject::Description => Value::String(case.description.clone()),
            Subject::Address => case
                .location
                .address
                .clone()
                .map_or(Value::Null, Value::String),
            Subject::Uprn => case
                .location
                .uprn
                .clone()
                .map_or(Value::Null, Value::String),
            Subject::Lat => case.location.lat.map_or(Value::Null, Value::from),
            Subject::Long => case.location.long.map_or(Value::Null, Value::from),
        }
    }
}

/// A condition on a case: a test of one value, or a combination.
#[derive(Debug, Clone)]
pub enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    Test { subject: Subject, op: Op },
}

/// A problem in a condition as written, with the path to the offending key
/// (e.g. `all[1].gt`) relative to the condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionError {
    pub path: String,
    pub reason: String,
}

const OPS: [&str; 8] = ["eq", "ne", "lt", "gt", "le", "ge", "one_of", "matches"];

impl Condition {
    /// Reads a condition written as data:
    /// `{ all = [..] }`, `{ any = [..] }`, `{ not = {..} }`, or
    /// `{ field = "fields.depth", gt = 10 }` with one of `eq ne lt gt le ge one_of matches`.
    pub fn from_value(value: &Value) -> Result<Condition, ConditionError> {
        Self::parse_at(value, "")
    }

    fn parse_at(value: &Value, path: &str) -> Result<Condition, ConditionError> {
        let err = |key: &str, reason: String| ConditionError {
            path: join(path, key),
            reason,
        };
        let Value::Object(map) = value else {
            return Err(err("", "must be a table".into()));
        };
        for combinator in ["all", "any"] {
            if let Some(items) = map.get(combinator) {
                if map.len() != 1 {
                    return Err(err(
                        combinator,
                        format!("`{combinator}` stands alone in its table"),
                    ));
                }
                let Value::Array(items) = items else {
                    return Err(err(combinator, "must be a list of conditions".into()));
                };
                if items.is_empty() {
                    return Err(err(combinator, "must hold at least one condition".into()));
                }
                let parsed = items
                    .iter()
                    .enumerate()
                    .map(|(i, c)| Self::parse_at(c, &join(path, &format!("{combinator}[{i}]"))))
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(if combinator == "all" {
                    Condition::All(parsed)
                } else {
                    Condition::Any(parsed)
                });
            }
        }
        if let Some(inner) = map.get("not") {
            if map.len() != 1 {
                return Err(err("not", "`not` stands alone in its table".into()));
            }
            return Ok(Condition::Not(Box::new(Self::parse_at(
                inner,
                &join(path, "not"),
            )?)));
        }
        let Some(field) = map.get("field") else {
            return Err(err(
                "",
                "needs `field` and an operator, or one of `all`, `any`, `not`".into(),
            ));
        };
        let subject = field.as_str().and_then(Subject::parse).ok_or_else(|| {
            err(
                "field",
                "must be `fields.<code>`, `case_type`, `description`, `location.address`, \
                     `location.uprn`, `location.lat` or `location.long`"
                    .into(),
            )
        })?;
        for key in map.keys() {
            if key != "field" && !OPS.contains(&key.as_str()) {
                return Err(err(
                    key,
                    format!("unknown operator; use one of {}", OPS.join(", ")),
                ));
            }
        }
        let ops: Vec<(&String, &Value)> = map.iter().filter(|(k, _)| *k != "field").collect();
        let [(name, operand)] = ops.as_slice() else {
            return Err(err("", "needs exactly one operator".into()));
        };
        let op = Op::parse(name, operand).map_err(|reason| err(name, reason))?;
        Ok(Condition::Test { subject, op })
    }

    /// Whether `case` satisfies the condition. A missing value satisfies only `ne`.
    pub fn holds(&self, case: &Case) -> bool {
        match self {
            Condition::All(items) => items.iter().all(|c| c.holds(case)),
            Condition::Any(items) => items.iter().any(|c| c.holds(case)),
            Condition::Not(inner) => !inner.holds(case),
            Condition::Test { subject, op } => test(&subject.read(case), op),
        }
    }

    /// Every case-type field code the condition reads.
    pub fn fields(&self) -> Vec<&str> {
        match self {
            Condition::All(items) | Condition::Any(items) => {
                items.iter().flat_map(Condition::fields).collect()
            }
            Condition::Not(inner) => inner.fields(),
            Condition::Test {
                subject: Subject::Field(code),
                ..
            } => vec![code.as_str()],
            Condition::Test { .. } => vec![],
        }
    }
}

fn join(path: &str, key: &str) -> String {
    match (path.is_empty(), key.is_empty()) {
        (true, _) => key.to_string(),
        (false, true) => path.to_string(),
        (false, false) => format!("{path}.{key}"),
    }
}

/// The values a case value stands for: a multi-value list is each of its items.
fn items(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => vec![],
        v => vec![v],
    }
}

/// Equality that does not care whether a number arrived as text.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x == y,
        _ => match (as_number(a), as_number(b)) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
    }
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn test(value: &Value, op: &Op) -> bool {
    let values = items(value);
    let numeric = |f: &dyn Fn(f64) -> bool| values.iter().filter_map(|v| as_number(v)).any(f);
    match op {
        Op::Eq(want) => values.iter().any(|v| same(v, want)),
        Op::Ne(want) => !values.iter().any(|v| same(v, want)),
        Op::Lt(n) => numeric(&|x| x < *n),
        Op::Gt(n) => numeric(&|x| x > *n),
        Op::Le(n) => numeric(&|x| x <= *n),
        Op::Ge(n) => numeric(&|x| x >= *n),
        Op::OneOf(list) => values.iter().any(|v| list.iter().any(|w| same(v, w))),
        Op::Matches(re) => values.iter().any(|v| match v {
            Value::String(s) => re.is_match(s),
            other => re.is_match(&other.to_string()),
        }),
    }
}

/// What a rule sets when it applies. Unset outputs leave the decision as it was.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RouteOutputs {
    pub agency: Option<String>,
    pub connector: Option<String>,
    pub priority: Option<String>,
    pub team: Option<String>,
    /// Extra values sent to the back-end with the case (analysis codes, request types, ...).
    pub extra: BTreeMap<String, Value>,
    /// Addresses that also get the case by email, whatever happens to the main delivery
    /// (high-priority side channel).
    pub also_email: Vec<String>,
}

/// One routing rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    /// Case type codes the rule applies to; empty means every case type.
    pub case_types: Vec<String>,
    /// `None` matches every case of those types.
    pub when: Option<Condition>,
    pub outputs: RouteOutputs,
    /// Keep walking the rules after this one applies.
    pub and_continue: bool,
}

/// Where an agency's cases go when nothing more specific says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendMethods {
    /// Agency id to its default connector. An agency that is absent has no integration.
    pub agency_connectors: BTreeMap<String, String>,
    /// Case type code to its own connector ("devolved" send method).
    pub case_type_connectors: BTreeMap<String, String>,
    /// The connector that carries email to an agency with no integration, and the
    /// `also_email` copies.
    pub email_connector: Option<String>,
}

/// How the connector was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorSource {
    Rule,
    CaseType,
    Agency,
    /// Email to the agency's own address, as it has no integration.
    AgencyEmail,
    /// Nothing could carry the case: no integration and no email connector.
    None,
}

/// The routing decision for one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    pub agency: String,
    pub connector: Option<String>,
    pub connector_source: ConnectorSource,
    pub priority: Option<String>,
    pub team: Option<String>,
    pub extra: BTreeMap<String, Value>,
    pub also_email: Vec<String>,
    /// The rules that applied, in order.
    pub rules: Vec<String>,
}

/// A jurisdiction's rules and send methods.
#[derive(Debug, Clone, Default)]
pub struct RoutingTable {
    pub rules: Vec<Rule>,
    pub methods: SendMethods,
    /// Sharing rules, applied as a case arrives, in the same transaction.
    pub share_rules: Vec<crate::sharing::ShareRule>,
}

impl RoutingTable {
    /// Routes `case`, whose case type belongs to `case_type_agency`.
    pub fn route(&self, case: &Case, case_type_agency: &str) -> Route {
        route(case, case_type_agency, &self.rules, &self.methods)
    }
}

/// Routes `case` through `rules`, starting from `case_type_agency`.
pub fn route(case: &Case, case_type_agency: &str, rules: &[Rule], methods: &SendMethods) -> Route {
    let mut applied = RouteOutputs::default();
    let mut fired = Vec::new();
    for rule in rules {
        let type_matches =
            rule.case_types.is_empty() || rule.case_types.contains(&case.case_type_code);
        if !type_matches || !rule.when.as_ref().is_none_or(|c| c.holds(case)) {
            continue;
        }
        fired.push(rule.name.clone());
        let o = &rule.outputs;
        applied.agency = applied.agency.or_else(|| o.agency.clone());
        applied.connector = applied.connector.or_else(|| o.connector.clone());
        applied.priority = applied.priority.or_else(|| o.priority.clone());
        applied.team = applied.team.or_else(|| o.team.clone());
        for (k, v) in &o.extra {
            applied.extra.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for address in &o.also_email {
            if !applied.also_email.contains(address) {
                applied.also_email.push(address.clone());
            }
        }
        if !rule.and_continue {
            break;
        }
    }
    let agency = applied
        .agency
        .unwrap_or_else(|| case_type_agency.to_string());
    let (connector, connector_source) = if let Some(c) = applied.connector {
        (Some(c), ConnectorSource::Rule)
    } else if let Some(c) = methods
        .case_type_connectors
        .get(&case.case_type_code)
        .filter(|_| agency == case_type_agency)
    {
        (Some(c.clone()), ConnectorSource::CaseType)
    } else if let Some(c) = methods.agency_connectors.get(&agency) {
        (Some(c.clone()), ConnectorSource::Agency)
    } else if let Some(c) = &methods.email_connector {
        (Some(c.clone()), ConnectorSource::AgencyEmail)
    } else {
        (None, ConnectorSource::None)
    };
    Route {
        agency,
        connector,
        connector_source,
        priority: applied.priority,
        team: applied.team,
        extra: applied.extra,
        also_email: applied.also_email,
        rules: fired,
    }
}

impl Op {
    /// The operator `name` with its operand, or why the operand does not fit it.
    fn parse(name: &str, operand: &Value) -> Result<Op, String> {
        let number = |v: &Value| v.as_f64().ok_or_else(|| "must be a number".to_string());
        Ok(match name {
            "eq" => Op::Eq(operand.clone()),
            "ne" => Op::Ne(operand.clone()),
            "lt" => Op::Lt(number(operand)?),
            "gt" => Op::Gt(number(operand)?),
            "le" => Op::Le(number(operand)?),
            "ge" => Op::Ge(number(operand)?),
            "one_of" => match operand {
                Value::Array(items) if !items.is_empty() => Op::OneOf(items.clone()),
                _ => return Err("must be a non-empty list".into()),
            },
            "matches" => {
                let pattern = operand
                    .as_str()
                    .ok_or("must be a regular expression string")?;
                Op::Matches(
                    regex::RegexBuilder::new(pattern)
                        .size_limit(1 << 20)
                        .build()
                        .map_err(|e| format!("is not a valid regular expression: {e}"))?,
                )
            }
            _ => unreachable!("checked against OPS"),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::case::{CaseStatus, Location, Submitter};
    use serde_json::json;

    /// A case of type `code` with `fields`, for the domain's tests.
    pub(crate) fn case(code: &str, fields: Value) -> Case {
        Case {
            id: "c1".into(),
            reference: "1".into(),
            jurisdiction_id: "j".into(),
            case_type_code: code.into(),
            agency_id: "highways".into(),
            status: CaseStatus::Open,
            description: "Deep hole by the school".into(),
            location: Location {
                address: Some("1 High St".into()),
                ..Location::default()
            },
            submitter: Submitter::default(),
            fields: serde_json::from_value(fields).unwrap(),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            status_at: None,
            version: 1,
            route: None,
            source_ref: None,
            media_urls: Vec::new(),
            created_by: "tester".into(),
        }
    }

    fn cond(v: Value) -> Condition {
        Condition::from_value(&v).unwrap()
    }

    fn methods() -> SendMethods {
        SendMethods {
            agency_connectors: [("highways".to_string(), "symology".to_string())].into(),
            case_type_connectors: [("FLY".to_string(), "fly-webhook".to_string())].into(),
            email_connector: Some("smtp".into()),
        }
    }

    #[test]
    fn operators_on_scalars_and_lists() {
        let c = case(
            "POT",
            json!({"depth": 12, "road": "carriageway", "hazards": ["traffic", "school"], "size": "7"}),
        );
        let table = [
            (json!({"field": "fields.depth", "gt": 10}), true),
            (json!({"field": "fields.depth", "lt": 10}), false),
            (json!({"field": "fields.depth", "ge": 12}), true),
            (json!({"field": "fields.depth", "le": 11.5}), false),
            (json!({"field": "fields.size", "gt": 6}), true),
            (json!({"field": "fields.depth", "eq": "12"}), true),
            (json!({"field": "fields.road", "eq": "carriageway"}), true),
            (json!({"field": "fields.road", "ne": "carriageway"}), false),
            (json!({"field": "fields.hazards", "eq": "school"}), true),
            (
                json!({"field": "fields.hazards", "one_of": ["school", "x"]}),
                true,
            ),
            (
                json!({"field": "fields.road", "one_of": ["footway"]}),
                false,
            ),
            (
                json!({"field": "description", "matches": "(?i)school"}),
                true,
            ),
            (json!({"field": "location.address", "matches": "^1 "}), true),
            (json!({"field": "fields.missing", "eq": "x"}), false),
            (json!({"field": "fields.missing", "ne": "x"}), true),
            (json!({"field": "fields.missing", "gt": 0}), false),
            (json!({"field": "case_type", "eq": "POT"}), true),
            (
                json!({"all": [{"field": "fields.depth", "gt": 10}, {"field": "fields.road", "eq": "footway"}]}),
                false,
            ),
            (
                json!({"any": [{"field": "fields.depth", "gt": 10}, {"field": "fields.road", "eq": "footway"}]}),
                true,
            ),
            (json!({"not": {"field": "fields.depth", "gt": 10}}), false),
        ];
        for (condition, expect) in table {
            assert_eq!(cond(condition.clone()).holds(&c), expect, "{condition}");
        }
    }

    #[test]
    fn malformed_conditions_name_the_key() {
        let table = [
            (
                json!({"field": "fields.a", "gt": "x"}),
                "gt",
                "must be a number",
            ),
            (
                json!({"field": "fields.a", "bigger": 1}),
                "bigger",
                "unknown operator",
            ),
            (
                json!({"field": "fields.a"}),
                "",
                "needs exactly one operator",
            ),
            (
                json!({"field": "fields.a", "eq": 1, "ne": 2}),
                "",
                "needs exactly one",
            ),
            (
                json!({"field": "colour", "eq": 1}),
                "field",
                "must be `fields.<code>`",
            ),
            (json!({"all": []}), "all", "at least one"),
            (
                json!({"any": [{"field": "fields.a", "eq": 1}, {"field": "fields.b", "matches": "("}]}),
                "any[1].matches",
                "not a valid regular expression",
            ),
            (
                json!({"not": {"field": "fields.a", "one_of": []}}),
                "not.one_of",
                "non-empty list",
            ),
        ];
        for (condition, path, reason) in table {
            let e = Condition::from_value(&condition).unwrap_err();
            assert_eq!(e.path, path, "{condition}");
            assert!(e.reason.contains(reason), "{condition}: {}", e.reason);
        }
    }

    fn rule(name: &str, types: &[&str], when: Option<Value>, outputs: Value, cont: bool) -> Rule {
        Rule {
            name: name.into(),
            case_types: types.iter().map(|s| s.to_string()).collect(),
            when: when.map(cond),
            outputs: serde_json::from_value(outputs).unwrap(),
            and_continue: cont,
        }
    }

    #[test]
    fn first_matching_rule_wins_unless_it_continues() {
        let rules = vec![
            rule(
                "deep is P1",
                &["POT"],
                Some(json!({"field": "fields.depth", "gt": 10})),
                json!({"priority": "P1", "extra": {"AnalysisCode1": "PT1"}, "also_email": ["p1@x.example"]}),
                true,
            ),
            rule(
                "school team",
                &[],
                Some(json!({"field": "description", "matches": "school"})),
                json!({"team": "schools", "priority": "P3", "extra": {"AnalysisCode1": "no", "AnalysisCode2": "SCH"}}),
                false,
            ),
            rule("never reached", &[], None, json!({"team": "other"}), false),
        ];
        let r = route(
            &case("POT", json!({"depth": 20})),
            "highways",
            &rules,
            &methods(),
        );
        assert_eq!(r.rules, ["deep is P1", "school team"]);
        assert_eq!(
            r.priority.as_deref(),
            Some("P1"),
            "an earlier rule is not undone"
        );
        assert_eq!(r.team.as_deref(), Some("schools"));
        assert_eq!(r.extra["AnalysisCode1"], json!("PT1"));
        assert_eq!(r.extra["AnalysisCode2"], json!("SCH"));
        assert_eq!(r.also_email, ["p1@x.example"]);
        assert_eq!(
            (r.connector.as_deref(), r.connector_source),
            (Some("symology"), ConnectorSource::Agency)
        );

        let shallow = route(
            &case("POT", json!({"depth": 2})),
            "highways",
            &rules,
            &methods(),
        );
        assert_eq!(shallow.rules, ["school team"]);
    }

    #[test]
    fn connector_precedence() {
        let m = methods();
        // The case type's own send method, while the case stays with its agency.
        let r = route(&case("FLY", json!({})), "highways", &[], &m);
        assert_eq!(r.connector_source, ConnectorSource::CaseType);
        assert_eq!(r.connector.as_deref(), Some("fly-webhook"));
        // Moved to an agency with no integration: email to that agency.
        let moved = rule("to parks", &[], None, json!({"agency": "parks"}), false);
        let r = route(&case("FLY", json!({})), "highways", &[moved], &m);
        assert_eq!(
            (r.agency.as_str(), r.connector_source),
            ("parks", ConnectorSource::AgencyEmail)
        );
        assert_eq!(r.connector.as_deref(), Some("smtp"));
        // A rule's connector beats everything.
        let direct = rule("direct", &[], None, json!({"connector": "confirm"}), false);
        let r = route(&case("FLY", json!({})), "highways", &[direct], &m);
        assert_eq!(
            (r.connector.as_deref(), r.connector_source),
            (Some("confirm"), ConnectorSource::Rule)
        );
        // No integration and no email connector: nothing can carry it.
        let bare = SendMethods {
            agency_connectors: BTreeMap::new(),
            case_type_connectors: BTreeMap::new(),
            email_connector: None,
        };
        let r = route(&case("POT", json!({})), "highways", &[], &bare);
        assert_eq!(
            (r.connector, r.connector_source),
            (None, ConnectorSource::None)
        );
    }
}
