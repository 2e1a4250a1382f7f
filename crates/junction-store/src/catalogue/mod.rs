//! The catalogue: jurisdictions, agencies, case types and connectors, as declared in the
//! configuration file and applied to the database at start.
//!
//! Applying is idempotent: unchanged objects are left alone, changed ones are updated with an
//! audit entry showing before and after, and an object the file no longer declares is removed
//! only when nothing refers to it. Removing something still in use is an error, never data loss.

use junction_domain::{Agency, AgencyKind, CaseType, Jurisdiction};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;
use serde_json::Value;

mod apply;

pub use apply::apply;

use crate::entity::{agency, case_type, connector, jurisdiction};
use crate::{Store, StoreError};

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

pub(crate) fn jurisdiction_from(m: &jurisdiction::Model) -> Jurisdiction {
    Jurisdiction {
        id: m.id.clone(),
        name: m.name.clone(),
    }
}

pub(crate) fn agency_from(m: &agency::Model) -> Result<Agency, StoreError> {
    Ok(Agency {
        id: m.id.clone(),
        jurisdiction_id: m.jurisdiction_id.clone(),
        name: m.name.clone(),
        kind: AgencyKind::parse(&m.kind)
            .ok_or_else(|| StoreError::corrupt("agency kind", &m.kind))?,
        email: m.email.clone(),
    })
}

pub(crate) fn case_type_from(m: &case_type::Model) -> Result<CaseType, StoreError> {
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

pub(crate) fn connector_from(m: &connector::Model) -> Result<ConnectorRecord, StoreError> {
    Ok(ConnectorRecord {
        id: m.id.clone(),
        kind: m.kind.clone(),
        params: serde_json::from_str(&m.params)
            .map_err(|e| StoreError::corrupt("connector params", e))?,
        paused: m.paused,
    })
}
