//! Case types: the kinds of case a jurisdiction handles, with typed, classified fields.
//!
//! In Open311 a case type is a *service* and its fields are the service definition's attributes,
//! so field datatypes are Open311's own.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::case::CaseStatus;
use crate::status_notice::StatusNotice;
use crate::validation::ValidationErrors;

/// Open311 attribute datatypes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Datatype {
    String,
    Number,
    Datetime,
    Text,
    Singlevaluelist,
    Multivaluelist,
}

impl Datatype {
    pub const ALL: [Datatype; 6] = [
        Datatype::String,
        Datatype::Number,
        Datatype::Datetime,
        Datatype::Text,
        Datatype::Singlevaluelist,
        Datatype::Multivaluelist,
    ];

    pub fn as_str(self) -> &'static str {
        crate::wire_name::wire_name(&self)
    }

    pub fn is_list(self) -> bool {
        matches!(self, Datatype::Singlevaluelist | Datatype::Multivaluelist)
    }
}

/// How sensitive a value is; partners see values up to their agreement's ceiling.
///
/// Ordered: `Public < Official < Personal < Sensitive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Classification {
    Public,
    Official,
    Personal,
    Sensitive,
}

impl Classification {
    pub const ALL: [Classification; 4] = [
        Classification::Public,
        Classification::Official,
        Classification::Personal,
        Classification::Sensitive,
    ];

    pub fn as_str(self) -> &'static str {
        crate::wire_name::wire_name(&self)
    }
}

/// One allowed value of a list field: the stored key and the label shown to people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListValue {
    pub key: String,
    pub name: String,
}

/// One typed field of a case type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldDef {
    /// Stable code, used as the Open311 attribute code.
    pub code: String,
    /// The question or label shown to people.
    pub description: String,
    pub datatype: Datatype,
    pub required: bool,
    pub order: u32,
    pub classification: Classification,
    /// Allowed values; non-empty exactly for list datatypes.
    pub values: Vec<ListValue>,
    /// Longer help text (Open311's `datatype_description`).
    pub datatype_description: Option<String>,
}

/// A kind of case, owned by one agency of one jurisdiction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseType {
    pub jurisdiction_id: String,
    /// Unique within the jurisdiction; Open311's `service_code`.
    pub code: String,
    pub name: String,
    pub description: String,
    pub group: Option<String>,
    pub keywords: Vec<String>,
    /// The agency that owns cases of this type unless routing says otherwise.
    pub agency_id: String,
    pub fields: Vec<FieldDef>,
    /// A retired case type keeps its cases but accepts no new ones.
    pub active: bool,
    /// Listed, accepted and readable over Open311. A type that is not published exists only
    /// for staff and the systems they authorise.
    #[serde(default)]
    pub published: bool,
    /// The longest description a case of this type may have, in characters.
    #[serde(default = "default_max_description")]
    pub max_description_chars: usize,
    /// What each status change says to the public, where configured; others say their default.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub statuses: BTreeMap<CaseStatus, StatusNotice>,
}

fn default_max_description() -> usize {
    crate::case::DEFAULT_MAX_DESCRIPTION_CHARS
}

/// Longest value accepted for a `string` field, in characters.
pub const MAX_STRING_CHARS: usize = 1_000;
/// Longest value accepted for a `text` field, in characters.
pub const MAX_TEXT_CHARS: usize = 10_000;

impl CaseType {
    /// What a change to `status` says on a case of this type.
    pub fn status_notice(&self, status: CaseStatus) -> StatusNotice {
        StatusNotice::or_default(self.statuses.get(&status), status)
    }

    pub fn field(&self, code: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.code == code)
    }

    /// Checks submitted field values against this case type and returns them normalised
    /// (numbers as JSON numbers, multi-value lists as arrays, empty values dropped).
    ///
    /// Every problem is reported, each under `fields.<code>`.
    pub fn validate_fields(
        &self,
        values: &BTreeMap<String, Value>,
    ) -> Result<BTreeMap<String, Value>, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let mut out = BTreeMap::new();
        for code in values.keys() {
            if self.field(code).is_none() {
                errors.push(
                    format!("fields.{code}"),
                    format!("is not a field of case type `{}`", self.code),
                );
            }
        }
        for field in &self.fields {
            let name = format!("fields.{}", field.code);
            match values.get(&field.code).filter(|v| !is_empty(v)) {
                None if field.required => errors.push(name, "is required"),
                None => {}
                Some(value) => match field.normalise(value) {
                    Ok(v) => {
                        out.insert(field.code.clone(), v);
                    }
                    Err(reason) => errors.push(name, reason),
                },
            }
        }
        errors.into_result().map(|()| out)
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

impl FieldDef {
    fn normalise(&self, value: &Value) -> Result<Value, String> {
        match self.datatype {
            Datatype::String => text(value, MAX_STRING_CHARS),
            Datatype::Text => text(value, MAX_TEXT_CHARS),
            Datatype::Number => match value {
                Value::Number(n) if n.as_f64().is_some_and(f64::is_finite) => Ok(value.clone()),
                Value::String(s) => s
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .and_then(serde_json::Number::from_f64)
                    .map(|n| match n.as_f64() {
                        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::from(f as i64),
                        _ => Value::Number(n),
                    })
                    .ok_or_else(|| format!("`{s}` is not a number")),
                _ => Err("must be a number".into()),
            },
            Datatype::Datetime => match value {
                Value::String(s) => chrono::DateTime::parse_from_rfc3339(s.trim())
                    .map(|d| Value::String(d.to_utc().format("%Y-%m-%dT%H:%M:%SZ").to_string()))
                    .map_err(|_| {
                        format!("`{s}` is not a date-time with a zone (e.g. 2026-01-31T09:30:00Z)")
                    }),
                _ => Err("must be a date-time string".into()),
            },
            Datatype::Singlevaluelist => match value {
                Value::String(s) => self.list_key(s).map(Value::String),
                _ => Err("must be one of the listed values".into()),
            },
            Datatype::Multivaluelist => {
                let items: Vec<&str> = match value {
                    Value::String(s) => vec![s.as_str()],
                    Value::Array(items) => items
                        .iter()
                        .map(|v| {
                            v.as_str()
                                .ok_or_else(|| "every value must be a string".to_string())
                        })
                        .collect::<Result<_, _>>()?,
                    _ => return Err("must be a list of the listed values".into()),
                };
                let mut keys = Vec::with_capacity(items.len());
                for item in items {
                    let key = self.list_key(item)?;
                    if !keys.contains(&key) {
                        keys.push(key);
                    }
                }
                Ok(Value::Array(keys.into_iter().map(Value::String).collect()))
            }
        }
    }

    fn list_key(&self, given: &str) -> Result<String, String> {
        let given = given.trim();
        self.values
            .iter()
            .find(|v| v.key == given)
            .map(|v| v.key.clone())
            .ok_or_else(|| {
                let keys: Vec<&str> = self.values.iter().map(|v| v.key.as_str()).collect();
                format!("`{given}` is not one of: {}", keys.join(", "))
            })
    }
}

fn text(value: &Value, max: usize) -> Result<Value, String> {
    let s = match value {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return Err("must be text".into()),
    };
    let chars = s.chars().count();
    if chars > max {
        return Err(format!(
            "is {chars} characters long, more than the {max} allowed"
        ));
    }
    Ok(Value::String(s))
}

/// Whether `s` can be a code (of a case type or one of its fields): 1 to 64 ASCII letters,
/// digits, `_`, `-` and `.`. Codes reach JSON paths and URLs, so nothing else is allowed.
pub fn is_code(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pothole() -> CaseType {
        CaseType {
            jurisdiction_id: "borsetshire".into(),
            code: "pothole".into(),
            name: "Pothole".into(),
            description: String::new(),
            group: None,
            keywords: vec![],
            agency_id: "highways".into(),
            active: true,
            published: true,
            max_description_chars: crate::case::DEFAULT_MAX_DESCRIPTION_CHARS,
            statuses: Default::default(),
            fields: vec![
                FieldDef {
                    code: "depth".into(),
                    description: "Depth in cm".into(),
                    datatype: Datatype::Number,
                    required: true,
                    order: 1,
                    classification: Classification::Public,
                    values: vec![],
                    datatype_description: None,
                },
                FieldDef {
                    code: "hazards".into(),
                    description: "Hazards".into(),
                    datatype: Datatype::Multivaluelist,
                    required: false,
                    order: 2,
                    classification: Classification::Public,
                    values: vec![
                        ListValue {
                            key: "traffic".into(),
                            name: "Traffic".into(),
                        },
                        ListValue {
                            key: "cyclists".into(),
                            name: "Cyclists".into(),
                        },
                    ],
                    datatype_description: None,
                },
            ],
        }
    }

    fn check(input: Value, expect: Result<Value, Vec<&str>>) {
        let map: BTreeMap<String, Value> = serde_json::from_value(input).unwrap();
        let got = pothole()
            .validate_fields(&map)
            .map(|m| serde_json::to_value(m).unwrap())
            .map_err(|e| e.0.iter().map(ToString::to_string).collect::<Vec<_>>());
        let expect = expect.map_err(|v| v.into_iter().map(String::from).collect::<Vec<_>>());
        assert_eq!(got, expect);
    }

    #[test]
    fn normalises_numbers_and_lists() {
        check(
            json!({"depth": "12", "hazards": ["traffic", "traffic", "cyclists"]}),
            Ok(json!({"depth": 12, "hazards": ["traffic", "cyclists"]})),
        );
        check(
            json!({"depth": 3.5, "hazards": "cyclists"}),
            Ok(json!({"depth": 3.5, "hazards": ["cyclists"]})),
        );
    }

    #[test]
    fn reports_every_problem_by_field() {
        check(
            json!({"hazards": ["bears"], "colour": "red"}),
            Err(vec![
                "fields.colour: is not a field of case type `pothole`",
                "fields.depth: is required",
                "fields.hazards: `bears` is not one of: traffic, cyclists",
            ]),
        );
        check(
            json!({"depth": "deep"}),
            Err(vec!["fields.depth: `deep` is not a number"]),
        );
        check(json!({"depth": ""}), Err(vec!["fields.depth: is required"]));
    }
}
