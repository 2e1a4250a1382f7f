//! `[[case_types]]` and `[statuses]`, checked: codes, owners, fields, limits and each status's
//! public notice, into the case types the catalogue holds.

use std::collections::{BTreeMap, HashSet};

use junction_domain::case_type::is_code;
use junction_domain::{
    Agency, CaseStatus, CaseType, Classification, Datatype, FieldDef, ListValue, StatusNotice,
};

use super::locate::KeyPath;
use super::model::Config;
use super::validate::{Problems, one_of, resolve_jurisdiction};

/// Checks every case type against the declared `jurisdictions` and `agencies`.
pub(super) fn check(
    config: &Config,
    jurisdictions: &[String],
    agencies: &[Agency],
    p: &mut Problems,
) -> Vec<CaseType> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let global_statuses = check_statuses(&config.statuses, KeyPath::root("statuses"), p);
    for (i, c) in config.case_types.iter().enumerate() {
        let at = KeyPath::root("case_types").index(i);
        let jurisdiction_id =
            resolve_jurisdiction(jurisdictions, &c.jurisdiction, at.key("jurisdiction"), p);
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
        match agencies.iter().find(|a| a.id == c.agency) {
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
        let fields = check_fields(c, &at, p);
        if c.max_description_chars == Some(0) {
            p.push(at.key("max_description_chars"), "must be greater than 0");
        }
        let mut statuses = global_statuses.clone();
        statuses.extend(check_statuses(&c.statuses, at.key("statuses"), p));
        out.push(CaseType {
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
    out
}

/// Status notices keyed by status name, each key checked.
fn check_statuses(
    notices: &BTreeMap<String, StatusNotice>,
    at: KeyPath,
    p: &mut Problems,
) -> BTreeMap<CaseStatus, StatusNotice> {
    let mut out = BTreeMap::new();
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
