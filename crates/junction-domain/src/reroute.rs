//! Rerouting a case: what changes when a case is routed again, under its own case type or
//! another (a category change). The store makes this decision while it holds the case locked,
//! then persists it.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::{Case, CaseType, Route, RoutingTable, ValidationErrors};

/// What a reroute decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Rerouted {
    pub from_type: String,
    pub to_type: String,
    /// Values the new case type has no field for: dropped from the case, kept in its history.
    pub dropped_fields: BTreeMap<String, Value>,
    pub route: Route,
}

/// Reroutes `case` under the case type coded `code` (`case_type`, if that code names one in
/// the case's jurisdiction): the case's type, fields, agency and route change in place.
/// A case type that does not exist, or is retired when the case would move to it, is refused
/// under `caseType`; the case's values that fail the new type's rules are refused under theirs.
pub fn reroute(
    case: &mut Case,
    code: &str,
    case_type: Option<&CaseType>,
    routing: &RoutingTable,
) -> Result<Rerouted, ValidationErrors> {
    let Some(case_type) = case_type else {
        let mut errors = ValidationErrors::default();
        errors.push(
            "caseType",
            format!("`{code}` is not a case type of `{}`", case.jurisdiction_id),
        );
        return Err(errors);
    };
    let from_type = case.case_type_code.clone();
    let mut dropped_fields = BTreeMap::new();
    if code != from_type {
        if !case_type.active {
            let mut errors = ValidationErrors::default();
            errors.push("caseType", format!("case type `{code}` is retired"));
            return Err(errors);
        }
        let (kept, dropped): (BTreeMap<String, Value>, BTreeMap<String, Value>) = case
            .fields
            .clone()
            .into_iter()
            .partition(|(k, _)| case_type.field(k).is_some());
        case.fields = case_type.validate_fields(&kept)?;
        case.case_type_code = code.to_string();
        dropped_fields = dropped;
    }
    let route = routing.route(case, &case_type.agency_id);
    case.agency_id = route.agency.clone();
    case.route = Some(route.clone());
    Ok(Rerouted {
        from_type,
        to_type: code.to_string(),
        dropped_fields,
        route,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{Classification, Datatype, FieldDef, SendMethods};

    fn case() -> Case {
        crate::route::tests::case("POT", json!({"depth": "10", "bags": "3"}))
    }

    fn case_type(code: &str, agency: &str, fields: &[&str], active: bool) -> CaseType {
        CaseType {
            jurisdiction_id: "j".into(),
            code: code.into(),
            name: code.into(),
            description: String::new(),
            group: None,
            keywords: Vec::new(),
            agency_id: agency.into(),
            fields: fields
                .iter()
                .map(|f| FieldDef {
                    code: f.to_string(),
                    description: f.to_string(),
                    datatype: Datatype::String,
                    required: false,
                    order: 0,
                    classification: Classification::Official,
                    values: Vec::new(),
                    datatype_description: None,
                })
                .collect(),
            active,
            published: true,
            max_description_chars: 20_000,
            statuses: BTreeMap::new(),
        }
    }

    fn routing() -> RoutingTable {
        RoutingTable {
            methods: SendMethods {
                agency_connectors: [("waste".to_string(), "bartec".to_string())].into(),
                ..SendMethods::default()
            },
            ..RoutingTable::default()
        }
    }

    #[test]
    fn a_category_change_moves_the_case_and_drops_what_the_new_type_cannot_hold() {
        let mut c = case();
        let fly = case_type("FLY", "waste", &["bags"], true);
        let done = reroute(&mut c, "FLY", Some(&fly), &routing()).unwrap();
        assert_eq!(
            (done.from_type.as_str(), done.to_type.as_str()),
            ("POT", "FLY")
        );
        assert_eq!(
            done.dropped_fields,
            [("depth".to_string(), json!("10"))].into()
        );
        assert_eq!(c.case_type_code, "FLY");
        assert_eq!(c.fields, [("bags".to_string(), json!("3"))].into());
        assert_eq!(c.agency_id, "waste");
        assert_eq!(done.route.connector.as_deref(), Some("bartec"));
        assert_eq!(c.route.as_ref(), Some(&done.route));
    }

    #[test]
    fn rerouting_in_place_keeps_every_field() {
        let mut c = case();
        let pot = case_type("POT", "highways", &["depth"], false);
        let done = reroute(&mut c, "POT", Some(&pot), &routing()).unwrap();
        assert!(done.dropped_fields.is_empty());
        assert_eq!(
            c.fields.len(),
            2,
            "a reroute in place validates nothing anew"
        );
        assert_eq!(c.agency_id, "highways");
    }

    #[test]
    fn an_unknown_or_retired_type_is_refused_under_case_type_and_changes_nothing() {
        let before = case();
        let mut c = before.clone();
        let missing = reroute(&mut c, "NOPE", None, &routing()).unwrap_err();
        assert_eq!(missing.0[0].field, "caseType");
        let retired = case_type("FLY", "waste", &["bags"], false);
        let refused = reroute(&mut c, "FLY", Some(&retired), &routing()).unwrap_err();
        assert!(refused.0[0].reason.contains("retired"));
        assert_eq!(c, before);
    }
}
