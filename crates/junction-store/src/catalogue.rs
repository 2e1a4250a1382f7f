//! The catalogue: jurisdictions, agencies, case types and connectors, as declared in the
//! configuration file and applied to the database at start.
//!
//! Applying is idempotent: unchanged objects are left alone, changed ones are updated with an
//! audit entry showing before and after, and an object the file no longer declares is removed
//! only when nothing refers to it. Removing something still in use is an error, never data loss.

use std::collections::BTreeMap;

use chrono::{SubsecRound, Utc};
use junction_domain::{Actor, Agency, AgencyKind, AuditEntry, CaseType, Jurisdiction};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder,
};
use serde::Serialize;
use serde_json::Value;

use crate::entity::{agency, case, case_type, connector, jurisdiction};
use crate::{Store, StoreError, audit};

/// A connector as stored: its kind and its parameters, with secrets only as `${VAR}` references.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectorRecord {
    pub id: String,
    pub kind: String,
    pub params: Value,
    pub paused: bool,
}

/// Everything the configuration file declares.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    pub jurisdictions: Vec<Jurisdiction>,
    pub agencies: Vec<Agency>,
    pub case_types: Vec<CaseType>,
    pub connectors: Vec<ConnectorRecord>,
}

/// What applying a catalogue changed, as `kind:id` names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub removed: Vec<String>,
}

impl ApplyReport {
    pub fn is_empty(&self) -> bool {
        self.created.is_empty() && self.updated.is_empty() && self.removed.is_empty()
    }
}

/// The primary key of a case type.
pub fn case_type_id(jurisdiction_id: &str, code: &str) -> String {
    format!("{jurisdiction_id}/{code}")
}

/// Makes the database match `catalogue`, in one transaction.
pub async fn apply(
    store: &Store,
    actor: &Actor,
    catalogue: &Catalogue,
) -> Result<ApplyReport, StoreError> {
    let txn = store.begin_write().await?;
    let now = Utc::now().trunc_subsecs(6);
    let mut changes = Changes {
        actor,
        report: ApplyReport::default(),
        audit: Vec::new(),
    };

    let existing: BTreeMap<String, jurisdiction::Model> = jurisdiction::Entity::find()
        .all(&*txn)
        .await?
        .into_iter()
        .map(|m| (m.id.clone(), m))
        .collect();
    for j in &catalogue.jurisdictions {
        let after = serde_json::to_value(j).unwrap_or(Value::Null);
        let before = existing
            .get(&j.id)
            .map(|m| serde_json::to_value(jurisdiction_from(m)).unwrap_or(Value::Null));
        let row = jurisdiction::ActiveModel {
            id: Set(j.id.clone()),
            name: Set(j.name.clone()),
            created_at: Set(existing.get(&j.id).map_or(now, |m| m.created_at)),
            updated_at: Set(now),
        };
        match changes.note("jurisdiction", &j.id, before, after) {
            Some(true) => jurisdiction::Entity::insert(row)
                .exec_without_returning(&*txn)
                .await
                .map(|_| ())?,
            Some(false) => jurisdiction::Entity::update(row)
                .exec(&*txn)
                .await
                .map(|_| ())?,
            None => {}
        }
    }

    let existing: BTreeMap<String, agency::Model> = agency::Entity::find()
        .all(&*txn)
        .await?
        .into_iter()
        .map(|m| (m.id.clone(), m))
        .collect();
    for a in &catalogue.agencies {
        let before = existing
            .get(&a.id)
            .map(agency_from)
            .transpose()?
            .map(|x| serde_json::to_value(x).unwrap_or(Value::Null));
        let row = agency::ActiveModel {
            id: Set(a.id.clone()),
            jurisdiction_id: Set(a.jurisdiction_id.clone()),
            name: Set(a.name.clone()),
            kind: Set(a.kind.as_str().to_string()),
            email: Set(a.email.clone()),
            created_at: Set(existing.get(&a.id).map_or(now, |m| m.created_at)),
            updated_at: Set(now),
        };
        match changes.note(
            "agency",
            &a.id,
            before,
            serde_json::to_value(a).unwrap_or(Value::Null),
        ) {
            Some(true) => agency::Entity::insert(row)
                .exec_without_returning(&*txn)
                .await
                .map(|_| ())?,
            Some(false) => agency::Entity::update(row).exec(&*txn).await.map(|_| ())?,
            None => {}
        }
    }

    let existing: BTreeMap<String, case_type::Model> = case_type::Entity::find()
        .all(&*txn)
        .await?
        .into_iter()
        .map(|m| (m.id.clone(), m))
        .collect();
    for ct in &catalogue.case_types {
        let id = case_type_id(&ct.jurisdiction_id, &ct.code);
        let before = existing
            .get(&id)
            .map(case_type_from)
            .transpose()?
            .map(|x| serde_json::to_value(x).unwrap_or(Value::Null));
        let row = case_type::ActiveModel {
            id: Set(id.clone()),
            jurisdiction_id: Set(ct.jurisdiction_id.clone()),
            code: Set(ct.code.clone()),
            name: Set(ct.name.clone()),
            description: Set(ct.description.clone()),
            group_name: Set(ct.group.clone()),
            keywords: Set(serde_json::to_string(&ct.keywords).unwrap_or_else(|_| "[]".into())),
            agency_id: Set(ct.agency_id.clone()),
            fields: Set(serde_json::to_string(&ct.fields).unwrap_or_else(|_| "[]".into())),
            active: Set(ct.active),
            published: Set(ct.published),
            max_description_chars: Set(i64::try_from(ct.max_description_chars).unwrap_or(i64::MAX)),
            statuses: Set(serde_json::to_string(&ct.statuses).unwrap_or_else(|_| "{}".into())),
            created_at: Set(existing.get(&id).map_or(now, |m| m.created_at)),
            updated_at: Set(now),
        };
        match changes.note(
            "case_type",
            &id,
            before,
            serde_json::to_value(ct).unwrap_or(Value::Null),
        ) {
            Some(true) => case_type::Entity::insert(row)
                .exec_without_returning(&*txn)
                .await
                .map(|_| ())?,
            Some(false) => case_type::Entity::update(row)
                .exec(&*txn)
                .await
                .map(|_| ())?,
            None => {}
        }
    }

    let existing: BTreeMap<String, connector::Model> = connector::Entity::find()
        .all(&*txn)
        .await?
        .into_iter()
        .map(|m| (m.id.clone(), m))
        .collect();
    for c in &catalogue.connectors {
        let old = existing.get(&c.id);
        // Pausing is an operator's decision at run time; configuration does not undo it.
        let paused = old.is_some_and(|m| m.paused);
        let before = old
            .map(connector_from)
            .transpose()?
            .map(|x| serde_json::to_value(x).unwrap_or(Value::Null));
        let record = ConnectorRecord {
            paused,
            ..c.clone()
        };
        let row = connector::ActiveModel {
            id: Set(c.id.clone()),
            kind: Set(c.kind.clone()),
            params: Set(c.params.to_string()),
            paused: Set(paused),
            created_at: Set(old.map_or(now, |m| m.created_at)),
            updated_at: Set(now),
        };
        match changes.note(
            "connector",
            &c.id,
            before,
            serde_json::to_value(&record).unwrap_or(Value::Null),
        ) {
            Some(true) => connector::Entity::insert(row)
                .exec_without_returning(&*txn)
                .await
                .map(|_| ())?,
            Some(false) => connector::Entity::update(row)
                .exec(&*txn)
                .await
                .map(|_| ())?,
            None => {}
        }
    }

    // Removals, referrers first.
    let mut in_use = Vec::new();
    let wanted: Vec<String> = catalogue.connectors.iter().map(|c| c.id.clone()).collect();
    for id in existing.keys().filter(|id| !wanted.contains(id)) {
        connector::Entity::delete_by_id(id.clone())
            .exec(&*txn)
            .await?;
        changes.removed("connector", id);
    }
    let wanted: Vec<String> = catalogue
        .case_types
        .iter()
        .map(|c| case_type_id(&c.jurisdiction_id, &c.code))
        .collect();
    for m in case_type::Entity::find()
        .all(&*txn)
        .await?
        .into_iter()
        .filter(|m| !wanted.contains(&m.id))
    {
        let cases = case::Entity::find()
            .filter(case::Column::CaseTypeId.eq(m.id.as_str()))
            .count(&*txn)
            .await?;
        if cases > 0 {
            in_use.push(format!(
                "case type `{}` of `{}` has {cases} case(s) and cannot be removed; keep it with `active = false` to retire it",
                m.code, m.jurisdiction_id
            ));
        } else {
            case_type::Entity::delete_by_id(m.id.clone())
                .exec(&*txn)
                .await?;
            changes.removed("case_type", &m.id);
        }
    }
    let wanted: Vec<String> = catalogue.agencies.iter().map(|a| a.id.clone()).collect();
    for m in agency::Entity::find()
        .all(&*txn)
        .await?
        .into_iter()
        .filter(|m| !wanted.contains(&m.id))
    {
        let cases = case::Entity::find()
            .filter(case::Column::AgencyId.eq(m.id.as_str()))
            .count(&*txn)
            .await?;
        let types = case_type::Entity::find()
            .filter(case_type::Column::AgencyId.eq(m.id.as_str()))
            .count(&*txn)
            .await?;
        if cases + types > 0 {
            in_use.push(format!("agency `{}` is used by {cases} case(s) and {types} case type(s) and cannot be removed", m.id));
        } else {
            agency::Entity::delete_by_id(m.id.clone())
                .exec(&*txn)
                .await?;
            changes.removed("agency", &m.id);
        }
    }
    let wanted: Vec<String> = catalogue
        .jurisdictions
        .iter()
        .map(|j| j.id.clone())
        .collect();
    for m in jurisdiction::Entity::find()
        .all(&*txn)
        .await?
        .into_iter()
        .filter(|m| !wanted.contains(&m.id))
    {
        let agencies = agency::Entity::find()
            .filter(agency::Column::JurisdictionId.eq(m.id.as_str()))
            .count(&*txn)
            .await?;
        let cases = case::Entity::find()
            .filter(case::Column::JurisdictionId.eq(m.id.as_str()))
            .count(&*txn)
            .await?;
        if agencies + cases > 0 {
            in_use.push(format!(
                "jurisdiction `{}` still has {agencies} agency(ies) and {cases} case(s) and cannot be removed",
                m.id
            ));
        } else {
            jurisdiction::Entity::delete_by_id(m.id.clone())
                .exec(&*txn)
                .await?;
            changes.removed("jurisdiction", &m.id);
        }
    }
    if !in_use.is_empty() {
        // Dropping the transaction rolls back everything applied above.
        return Err(StoreError::InUse(in_use.join("; ")));
    }
    audit::append(&*txn, &changes.audit).await?;
    txn.commit().await?;
    Ok(changes.report)
}

struct Changes<'a> {
    actor: &'a Actor,
    report: ApplyReport,
    audit: Vec<AuditEntry>,
}

impl Changes<'_> {
    /// Records a create (`Some(true)`) or update (`Some(false)`); `None` when nothing changed.
    fn note(&mut self, kind: &str, id: &str, before: Option<Value>, after: Value) -> Option<bool> {
        match before {
            Some(before) if before == after => None,
            Some(before) => {
                self.report.updated.push(format!("{kind}:{id}"));
                self.audit
                    .push(self.actor.change(kind, id, "update", before, after));
                Some(false)
            }
            None => {
                self.report.created.push(format!("{kind}:{id}"));
                self.audit
                    .push(self.actor.change(kind, id, "create", Value::Null, after));
                Some(true)
            }
        }
    }

    fn removed(&mut self, kind: &str, id: &str) {
        self.report.removed.push(format!("{kind}:{id}"));
        self.audit.push(
            self.actor
                .change(kind, id, "remove", Value::Bool(true), Value::Null),
        );
    }
}

pub async fn jurisdictions(store: &Store) -> Result<Vec<Jurisdiction>, StoreError> {
    let rows = jurisdiction::Entity::find()
        .order_by_asc(jurisdiction::Column::Id)
        .all(store.conn())
        .await?;
    Ok(rows.iter().map(jurisdiction_from).collect())
}

pub async fn agencies(
    store: &Store,
    jurisdiction_id: Option<&str>,
) -> Result<Vec<Agency>, StoreError> {
    let mut q = agency::Entity::find().order_by_asc(agency::Column::Id);
    if let Some(j) = jurisdiction_id {
        q = q.filter(agency::Column::JurisdictionId.eq(j));
    }
    q.all(store.conn()).await?.iter().map(agency_from).collect()
}

pub async fn agency(store: &Store, id: &str) -> Result<Option<Agency>, StoreError> {
    agency::Entity::find_by_id(id.to_string())
        .one(store.conn())
        .await?
        .as_ref()
        .map(agency_from)
        .transpose()
}

pub async fn case_types(
    store: &Store,
    jurisdiction_id: Option<&str>,
) -> Result<Vec<CaseType>, StoreError> {
    let mut q = case_type::Entity::find().order_by_asc(case_type::Column::Id);
    if let Some(j) = jurisdiction_id {
        q = q.filter(case_type::Column::JurisdictionId.eq(j));
    }
    q.all(store.conn())
        .await?
        .iter()
        .map(case_type_from)
        .collect()
}

pub async fn case_type(
    store: &Store,
    jurisdiction_id: &str,
    code: &str,
) -> Result<Option<CaseType>, StoreError> {
    load_case_type(store.conn(), jurisdiction_id, code).await
}

pub async fn connectors(store: &Store) -> Result<Vec<ConnectorRecord>, StoreError> {
    let rows = connector::Entity::find()
        .order_by_asc(connector::Column::Id)
        .all(store.conn())
        .await?;
    rows.iter().map(connector_from).collect()
}

pub(crate) async fn load_case_type<C: ConnectionTrait>(
    conn: &C,
    jurisdiction_id: &str,
    code: &str,
) -> Result<Option<CaseType>, StoreError> {
    let row = case_type::Entity::find_by_id(case_type_id(jurisdiction_id, code))
        .one(conn)
        .await?;
    row.as_ref().map(case_type_from).transpose()
}

fn jurisdiction_from(m: &jurisdiction::Model) -> Jurisdiction {
    Jurisdiction {
        id: m.id.clone(),
        name: m.name.clone(),
    }
}

fn agency_from(m: &agency::Model) -> Result<Agency, StoreError> {
    Ok(Agency {
        id: m.id.clone(),
        jurisdiction_id: m.jurisdiction_id.clone(),
        name: m.name.clone(),
        kind: AgencyKind::parse(&m.kind)
            .ok_or_else(|| StoreError::corrupt("agency kind", &m.kind))?,
        email: m.email.clone(),
    })
}

fn case_type_from(m: &case_type::Model) -> Result<CaseType, StoreError> {
    Ok(CaseType {
        jurisdiction_id: m.jurisdiction_id.clone(),
        code: m.code.clone(),
        name: m.name.clone(),
        description: m.description.clone(),
        group: m.group_name.clone(),
        keywords: serde_json::from_str(&m.keywords)
            .map_err(|e| StoreError::corrupt("case type keywords", e))?,
        agency_id: m.agency_id.clone(),
        fields: serde_json::from_str(&m.fields)
            .map_err(|e| StoreError::corrupt("case type fields", e))?,
        active: m.active,
        published: m.published,
        max_description_chars: usize::try_from(m.max_description_chars).unwrap_or(usize::MAX),
        statuses: serde_json::from_str(&m.statuses)
            .map_err(|e| StoreError::corrupt("case type statuses", e))?,
    })
}

fn connector_from(m: &connector::Model) -> Result<ConnectorRecord, StoreError> {
    Ok(ConnectorRecord {
        id: m.id.clone(),
        kind: m.kind.clone(),
        params: serde_json::from_str(&m.params)
            .map_err(|e| StoreError::corrupt("connector params", e))?,
        paused: m.paused,
    })
}
