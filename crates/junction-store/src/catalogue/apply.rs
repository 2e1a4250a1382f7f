//! Applying a catalogue: each kind of object created, updated or removed in one transaction,
//! each change audited with before and after.

use std::collections::BTreeMap;

use chrono::{DateTime, SubsecRound, Utc};
use junction_domain::{Actor, AuditEntry};
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr,
    EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter,
};
use serde_json::Value;

use super::{
    ApplyReport, Catalogue, ConnectorRecord, agency_from, case_type_from, case_type_id,
    connector_from, jurisdiction_from,
};
use crate::entity::{agency, case, case_type, connector, jurisdiction};
use crate::{Store, StoreError, audit};

/// Makes the database match `catalogue`, in one transaction.
pub async fn apply(
    store: &Store,
    actor: &Actor,
    catalogue: &Catalogue,
) -> Result<ApplyReport, StoreError> {
    let txn = store.begin_write().await?;
    let mut changes = Changes {
        actor,
        now: Utc::now().trunc_subsecs(6),
        report: ApplyReport::default(),
        audit: Vec::new(),
    };
    changes.jurisdictions(&*txn, catalogue).await?;
    changes.agencies(&*txn, catalogue).await?;
    changes.case_types(&*txn, catalogue).await?;
    changes.connectors(&*txn, catalogue).await?;
    // Removals, referrers first; any still in use undoes the whole apply.
    let mut in_use = Vec::new();
    changes
        .remove_case_types(&*txn, catalogue, &mut in_use)
        .await?;
    changes
        .remove_agencies(&*txn, catalogue, &mut in_use)
        .await?;
    changes
        .remove_jurisdictions(&*txn, catalogue, &mut in_use)
        .await?;
    if !in_use.is_empty() {
        // Dropping the transaction rolls back everything applied above.
        return Err(StoreError::InUse(in_use.join("; ")));
    }
    audit::append(&*txn, &changes.audit).await?;
    txn.commit().await?;
    Ok(changes.report)
}

/// Writes a row the catalogue created (`Some(true)`) or changed (`Some(false)`).
async fn write<A, C>(txn: &C, change: Option<bool>, row: A) -> Result<(), DbErr>
where
    A: ActiveModelTrait + ActiveModelBehavior + Send,
    <A::Entity as EntityTrait>::Model: IntoActiveModel<A>,
    C: ConnectionTrait,
{
    match change {
        Some(true) => A::Entity::insert(row)
            .exec_without_returning(txn)
            .await
            .map(|_| ()),
        Some(false) => A::Entity::update(row).exec(txn).await.map(|_| ()),
        None => Ok(()),
    }
}

/// Rows of one table by primary key.
async fn rows_by_id<E, C>(
    txn: &C,
    id: impl Fn(&E::Model) -> String,
) -> Result<BTreeMap<String, E::Model>, DbErr>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    Ok(E::find()
        .all(txn)
        .await?
        .into_iter()
        .map(|m| (id(&m), m))
        .collect())
}

fn json(x: impl serde::Serialize) -> Value {
    serde_json::to_value(x).unwrap_or(Value::Null)
}

struct Changes<'a> {
    actor: &'a Actor,
    now: DateTime<Utc>,
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

    async fn jurisdictions<C: ConnectionTrait>(
        &mut self,
        txn: &C,
        catalogue: &Catalogue,
    ) -> Result<(), StoreError> {
        let existing = rows_by_id::<jurisdiction::Entity, _>(txn, |m| m.id.clone()).await?;
        for j in &catalogue.jurisdictions {
            let before = existing.get(&j.id).map(|m| json(jurisdiction_from(m)));
            let row = jurisdiction::ActiveModel {
                id: Set(j.id.clone()),
                name: Set(j.name.clone()),
                created_at: Set(existing.get(&j.id).map_or(self.now, |m| m.created_at)),
                updated_at: Set(self.now),
            };
            let change = self.note("jurisdiction", &j.id, before, json(j));
            write(txn, change, row).await?;
        }
        Ok(())
    }

    async fn agencies<C: ConnectionTrait>(
        &mut self,
        txn: &C,
        catalogue: &Catalogue,
    ) -> Result<(), StoreError> {
        let existing = rows_by_id::<agency::Entity, _>(txn, |m| m.id.clone()).await?;
        for a in &catalogue.agencies {
            let before = existing.get(&a.id).map(agency_from).transpose()?.map(json);
            let row = agency::ActiveModel {
                id: Set(a.id.clone()),
                jurisdiction_id: Set(a.jurisdiction_id.clone()),
                name: Set(a.name.clone()),
                kind: Set(a.kind.as_str().to_string()),
                email: Set(a.email.clone()),
                created_at: Set(existing.get(&a.id).map_or(self.now, |m| m.created_at)),
                updated_at: Set(self.now),
            };
            let change = self.note("agency", &a.id, before, json(a));
            write(txn, change, row).await?;
        }
        Ok(())
    }

    async fn case_types<C: ConnectionTrait>(
        &mut self,
        txn: &C,
        catalogue: &Catalogue,
    ) -> Result<(), StoreError> {
        let existing = rows_by_id::<case_type::Entity, _>(txn, |m| m.id.clone()).await?;
        for ct in &catalogue.case_types {
            let id = case_type_id(&ct.jurisdiction_id, &ct.code);
            let before = existing.get(&id).map(case_type_from).transpose()?.map(json);
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
                max_description_chars: Set(
                    i64::try_from(ct.max_description_chars).unwrap_or(i64::MAX)
                ),
                statuses: Set(serde_json::to_string(&ct.statuses).unwrap_or_else(|_| "{}".into())),
                created_at: Set(existing.get(&id).map_or(self.now, |m| m.created_at)),
                updated_at: Set(self.now),
            };
            let change = self.note("case_type", &id, before, json(ct));
            write(txn, change, row).await?;
        }
        Ok(())
    }

    /// Connectors, created, changed and removed (nothing refers to a connector by key).
    async fn connectors<C: ConnectionTrait>(
        &mut self,
        txn: &C,
        catalogue: &Catalogue,
    ) -> Result<(), StoreError> {
        let existing = rows_by_id::<connector::Entity, _>(txn, |m| m.id.clone()).await?;
        for c in &catalogue.connectors {
            let old = existing.get(&c.id);
            // Pausing is an operator's decision at run time; configuration does not undo it.
            let paused = old.is_some_and(|m| m.paused);
            let before = old.map(connector_from).transpose()?.map(json);
            let record = ConnectorRecord {
                paused,
                ..c.clone()
            };
            let row = connector::ActiveModel {
                id: Set(c.id.clone()),
                kind: Set(c.kind.clone()),
                params: Set(c.params.to_string()),
                paused: Set(paused),
                created_at: Set(old.map_or(self.now, |m| m.created_at)),
                updated_at: Set(self.now),
            };
            let change = self.note("connector", &c.id, before, json(&record));
            write(txn, change, row).await?;
        }
        let wanted: Vec<&String> = catalogue.connectors.iter().map(|c| &c.id).collect();
        for id in existing.keys().filter(|id| !wanted.contains(id)) {
            connector::Entity::delete_by_id(id.clone())
                .exec(txn)
                .await?;
            self.removed("connector", id);
        }
        Ok(())
    }

    async fn remove_case_types<C: ConnectionTrait>(
        &mut self,
        txn: &C,
        catalogue: &Catalogue,
        in_use: &mut Vec<String>,
    ) -> Result<(), StoreError> {
        let wanted: Vec<String> = catalogue
            .case_types
            .iter()
            .map(|c| case_type_id(&c.jurisdiction_id, &c.code))
            .collect();
        let existing = rows_by_id::<case_type::Entity, _>(txn, |m| m.id.clone()).await?;
        for m in existing.values().filter(|m| !wanted.contains(&m.id)) {
            let cases = case::Entity::find()
                .filter(case::Column::CaseTypeId.eq(m.id.as_str()))
                .count(txn)
                .await?;
            if cases > 0 {
                in_use.push(format!(
                    "case type `{}` of `{}` has {cases} case(s) and cannot be removed; keep it with `active = false` to retire it",
                    m.code, m.jurisdiction_id
                ));
            } else {
                case_type::Entity::delete_by_id(m.id.clone())
                    .exec(txn)
                    .await?;
                self.removed("case_type", &m.id);
            }
        }
        Ok(())
    }

    async fn remove_agencies<C: ConnectionTrait>(
        &mut self,
        txn: &C,
        catalogue: &Catalogue,
        in_use: &mut Vec<String>,
    ) -> Result<(), StoreError> {
        let wanted: Vec<&String> = catalogue.agencies.iter().map(|a| &a.id).collect();
        let existing = rows_by_id::<agency::Entity, _>(txn, |m| m.id.clone()).await?;
        for m in existing.values().filter(|m| !wanted.contains(&&m.id)) {
            let cases = case::Entity::find()
                .filter(case::Column::AgencyId.eq(m.id.as_str()))
                .count(txn)
                .await?;
            let types = case_type::Entity::find()
                .filter(case_type::Column::AgencyId.eq(m.id.as_str()))
                .count(txn)
                .await?;
            if cases + types > 0 {
                in_use.push(format!("agency `{}` is used by {cases} case(s) and {types} case type(s) and cannot be removed", m.id));
            } else {
                agency::Entity::delete_by_id(m.id.clone()).exec(txn).await?;
                self.removed("agency", &m.id);
            }
        }
        Ok(())
    }

    async fn remove_jurisdictions<C: ConnectionTrait>(
        &mut self,
        txn: &C,
        catalogue: &Catalogue,
        in_use: &mut Vec<String>,
    ) -> Result<(), StoreError> {
        let wanted: Vec<&String> = catalogue.jurisdictions.iter().map(|j| &j.id).collect();
        let existing = rows_by_id::<jurisdiction::Entity, _>(txn, |m| m.id.clone()).await?;
        for m in existing.values().filter(|m| !wanted.contains(&&m.id)) {
            let agencies = agency::Entity::find()
                .filter(agency::Column::JurisdictionId.eq(m.id.as_str()))
                .count(txn)
                .await?;
            let cases = case::Entity::find()
                .filter(case::Column::JurisdictionId.eq(m.id.as_str()))
                .count(txn)
                .await?;
            if agencies + cases > 0 {
                in_use.push(format!(
                    "jurisdiction `{}` still has {agencies} agency(ies) and {cases} case(s) and cannot be removed",
                    m.id
                ));
            } else {
                jurisdiction::Entity::delete_by_id(m.id.clone())
                    .exec(txn)
                    .await?;
                self.removed("jurisdiction", &m.id);
            }
        }
        Ok(())
    }
}
