//! Listing cases: filters, sort orders and cursor pagination, with what each case is shared with.

use chrono::{DateTime, Utc};
use junction_domain::{Case, CaseStatus};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, Condition, DbBackend, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::catalogue::case_type_id;
use crate::entity::{case, case_share, case_type};
use crate::{Store, StoreError};

use super::from_row;

/// Which cases to list; every set field must match.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub jurisdiction_id: Option<String>,
    /// Any of these statuses; all when empty.
    pub statuses: Vec<CaseStatus>,
    /// Any of these case type codes; all when empty.
    pub case_types: Vec<String>,
    pub agency: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    /// Last changed at or after this.
    pub updated_from: Option<DateTime<Utc>>,
    /// Last changed before this.
    pub updated_to: Option<DateTime<Utc>>,
    /// Case-type field values that must match exactly, by field code.
    pub field_equals: Vec<(String, String)>,
    pub submitter_email: Option<String>,
    /// Only cases shared live with a partner, under one of its agreements that covers the
    /// case's type.
    pub shared_with: Option<SharedWith>,
    /// An order other than newest first; pages are then counted by offset.
    pub order: Option<CaseOrder>,
}

/// What to sort cases by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKey {
    CreatedAt,
    UpdatedAt,
    Status,
    Description,
    SubmitterName,
    SubmitterEmail,
    /// A case-type field, by code.
    Field(String),
}

impl SortKey {
    /// The attribute path the key reads, for visibility checks.
    pub fn path(&self) -> String {
        match self {
            SortKey::CreatedAt => "createdAt".into(),
            SortKey::UpdatedAt => "updatedAt".into(),
            SortKey::Status => "status".into(),
            SortKey::Description => "description".into(),
            SortKey::SubmitterName => "submitter.name".into(),
            SortKey::SubmitterEmail => "submitter.email".into(),
            SortKey::Field(code) => format!("fields.{code}"),
        }
    }
}

/// A sort, with the number of cases to skip (the page's offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseOrder {
    pub key: SortKey,
    pub descending: bool,
    pub offset: u64,
}

/// A partner's view of the case list.
#[derive(Debug, Clone)]
pub struct SharedWith {
    pub agency: String,
    pub agreements: Vec<junction_domain::Agreement>,
}

/// One page of cases, newest first.
#[derive(Debug, Clone)]
pub struct CasePage {
    pub cases: Vec<Case>,
    pub has_next: bool,
    pub total: u64,
}

/// Up to `first` cases matching `filter`, newest first, after the case with id `after`.
pub async fn list(
    store: &Store,
    filter: &CaseFilter,
    first: u64,
    after: Option<&str>,
) -> Result<CasePage, StoreError> {
    let q = filtered(store, filter).await?;
    let total = q.clone().count(store.conn()).await?;
    let backend = store.conn().get_database_backend();
    let q = ordered(q, filter.order.as_ref(), after, backend);
    let rows = q.limit(first + 1).all(store.conn()).await?;
    let has_next = rows.len() as u64 > first;
    let cases = rows
        .into_iter()
        .take(first as usize)
        .map(from_row)
        .collect::<Result<_, _>>()?;
    Ok(CasePage {
        cases,
        has_next,
        total,
    })
}

/// The cases `filter` selects, before order and paging.
async fn filtered(
    store: &Store,
    filter: &CaseFilter,
) -> Result<sea_orm::Select<case::Entity>, StoreError> {
    let mut q = case::Entity::find();
    if let Some(j) = &filter.jurisdiction_id {
        q = q.filter(case::Column::JurisdictionId.eq(j.as_str()));
    }
    if !filter.statuses.is_empty() {
        q = q.filter(case::Column::Status.is_in(filter.statuses.iter().map(|s| s.as_str())));
    }
    if !filter.case_types.is_empty() {
        // Exact ids, not a LIKE pattern: codes may contain `_` and `%`.
        let mut types = case_type::Entity::find()
            .filter(case_type::Column::Code.is_in(filter.case_types.iter().map(String::as_str)));
        if let Some(j) = &filter.jurisdiction_id {
            types = types.filter(case_type::Column::JurisdictionId.eq(j.as_str()));
        }
        let ids: Vec<String> = types
            .all(store.conn())
            .await?
            .into_iter()
            .map(|m| m.id)
            .collect();
        q = q.filter(case::Column::CaseTypeId.is_in(ids));
    }
    if let Some(a) = &filter.agency {
        q = q.filter(case::Column::AgencyId.eq(a.as_str()));
    }
    if let Some(from) = filter.created_from {
        q = q.filter(case::Column::CreatedAt.gte(from));
    }
    if let Some(to) = filter.created_to {
        q = q.filter(case::Column::CreatedAt.lt(to));
    }
    if let Some(from) = filter.updated_from {
        q = q.filter(case::Column::UpdatedAt.gte(from));
    }
    if let Some(to) = filter.updated_to {
        q = q.filter(case::Column::UpdatedAt.lt(to));
    }
    if let Some(email) = &filter.submitter_email {
        q = q.filter(case::Column::SubmitterEmail.eq(email.as_str()));
    }
    let backend = store.conn().get_database_backend();
    for (code, value) in &filter.field_equals {
        let path = format!("$.\"{}\"", code.replace('"', ""));
        let expr = match backend {
            DbBackend::Postgres => Expr::cust_with_values(
                "(CAST(fields AS jsonb) ->> $1) = $2",
                [code.clone(), value.clone()],
            ),
            _ => Expr::cust_with_values(
                "CAST(json_extract(fields, ?) AS TEXT) = ?",
                [path, value.clone()],
            ),
        };
        q = q.filter(expr);
    }
    if let Some(shared) = &filter.shared_with {
        q = q.filter(shared_with(shared));
    }
    Ok(q)
}

/// Cases shared with the partner under an agreement that covers their case type.
fn shared_with(shared: &SharedWith) -> Condition {
    let mut any = Condition::any();
    for a in &shared.agreements {
        let types: Vec<String> = a
            .case_types
            .iter()
            .map(|c| case_type_id(&a.jurisdiction_id, c))
            .collect();
        let shares = Query::select()
            .column(case_share::Column::CaseId)
            .from(case_share::Entity)
            .and_where(case_share::Column::AgencyId.eq(shared.agency.as_str()))
            .and_where(case_share::Column::AgreementId.eq(a.id.as_str()))
            .and_where(case_share::Column::UnsharedAt.is_null())
            .to_owned();
        any = any.add(
            Condition::all()
                .add(case::Column::CaseTypeId.is_in(types))
                .add(case::Column::Id.in_subquery(shares)),
        );
    }
    // No agreements means no cases: an empty `any` would match everything.
    if shared.agreements.is_empty() {
        any = any.add(Expr::val(1).eq(0));
    }
    any
}

/// Newest first, paged by id after `after`; or in the order asked, paged by offset.
fn ordered(
    q: sea_orm::Select<case::Entity>,
    order: Option<&CaseOrder>,
    after: Option<&str>,
    backend: DbBackend,
) -> sea_orm::Select<case::Entity> {
    match order {
        None => {
            let mut q = q;
            if let Some(after) = after {
                q = q.filter(case::Column::Id.lt(after));
            }
            q.order_by_desc(case::Column::Id)
        }
        Some(order) => {
            use sea_orm::Order;
            let dir = if order.descending {
                Order::Desc
            } else {
                Order::Asc
            };
            let q = match &order.key {
                SortKey::CreatedAt => q.order_by(case::Column::CreatedAt, dir.clone()),
                SortKey::UpdatedAt => q.order_by(case::Column::UpdatedAt, dir.clone()),
                SortKey::Status => q.order_by(case::Column::Status, dir.clone()),
                SortKey::Description => q.order_by(case::Column::Description, dir.clone()),
                SortKey::SubmitterName => q.order_by(case::Column::SubmitterName, dir.clone()),
                SortKey::SubmitterEmail => q.order_by(case::Column::SubmitterEmail, dir.clone()),
                SortKey::Field(code) => {
                    let expr = match backend {
                        DbBackend::Postgres => {
                            Expr::cust_with_values("(CAST(fields AS jsonb) ->> $1)", [code.clone()])
                        }
                        _ => Expr::cust_with_values(
                            "json_extract(fields, ?)",
                            [format!("$.\"{}\"", code.replace('"', ""))],
                        ),
                    };
                    q.order_by(expr, dir.clone())
                }
            };
            // Ties broken by id, so pages never overlap.
            q.order_by(case::Column::Id, dir).offset(order.offset)
        }
    }
}
