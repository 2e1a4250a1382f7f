//! Read operations. Each field names the action it needs in its guard.

use async_graphql::{Context, Enum, ID, InputObject, Object};
use chrono::{DateTime, Utc};
use junction_domain::Access;
use junction_domain::Action;
use junction_domain::DeliveryId;
use junction_domain::case_type::is_code;
use junction_store::audit::{self, AuditFilter};
use junction_store::cases::{self, CaseFilter, CaseOrder, SharedWith, SortKey};
use junction_store::{Store, catalogue, deliveries, sharing as store_sharing};

use super::Limits;
use super::access::{SharingPolicy, case_access, case_type_lookup, lens_for, with_lenses};
use super::guard::Can;
use super::types::*;
use crate::RequestCtx;
use crate::error::{ApiError, ApiResult};

#[derive(Default)]
pub struct QueryRoot;

/// Which cases to list; every set field must match.
#[derive(InputObject, Default)]
pub struct CaseFilterInput {
    pub jurisdiction: Option<String>,
    pub status: Option<CaseStatus>,
    /// A case type code.
    pub case_type: Option<String>,
    /// An agency id.
    pub agency: Option<String>,
    /// Created at or after.
    pub created_from: Option<DateTime<Utc>>,
    /// Created before.
    pub created_to: Option<DateTime<Utc>>,
    /// Case-type field values that must match exactly.
    pub fields: Option<Vec<FieldEquals>>,
    /// The submitter's email address, exactly.
    pub submitter_email: Option<String>,
}

/// What to sort cases by.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum CaseSort {
    CreatedAt,
    UpdatedAt,
    Status,
    Description,
    SubmitterName,
    SubmitterEmail,
    /// A case-type field, named in `field`.
    Field,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum SortDirection {
    Asc,
    Desc,
}

/// An order for `cases`; without one, newest first.
#[derive(InputObject)]
pub struct CaseOrderInput {
    pub by: CaseSort,
    /// The field code, with `by: FIELD`.
    pub field: Option<String>,
    #[graphql(default_with = "SortDirection::Desc")]
    pub direction: SortDirection,
}

/// One case-type field that must hold a value.
#[derive(InputObject)]
pub struct FieldEquals {
    pub code: String,
    pub value: String,
}

/// Which audit records to list; every set field must match.
#[derive(InputObject, Default)]
pub struct AuditFilterInput {
    pub actor: Option<String>,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    pub request_id: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

#[Object(name = "CaseQuery")]
impl QueryRoot {
    /// Who the caller is.
    #[graphql(guard = "Can(Action::ReadSelf)")]
    async fn me(&self, ctx: &Context<'_>) -> ApiResult<Me> {
        let p = &ctx.data_unchecked::<RequestCtx>().principal;
        Ok(Me {
            subject: p.subject.clone(),
            agency: p.agency.clone(),
            roles: p.roles.iter().map(|r| (*r).into()).collect(),
        })
    }

    #[graphql(guard = "Can(Action::ReadAgencies)")]
    async fn jurisdictions(&self, ctx: &Context<'_>) -> ApiResult<Vec<Jurisdiction>> {
        Ok(catalogue::jurisdictions(ctx.data_unchecked::<Store>())
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    #[graphql(guard = "Can(Action::ReadAgencies)")]
    async fn agencies(
        &self,
        ctx: &Context<'_>,
        jurisdiction: Option<String>,
    ) -> ApiResult<Vec<Agency>> {
        let store = ctx.data_unchecked::<Store>();
        Ok(catalogue::agencies(store, jurisdiction.as_deref())
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    #[graphql(guard = "Can(Action::ReadCaseTypes)")]
    async fn case_types(
        &self,
        ctx: &Context<'_>,
        jurisdiction: Option<String>,
    ) -> ApiResult<Vec<CaseType>> {
        let store = ctx.data_unchecked::<Store>();
        Ok(catalogue::case_types(store, jurisdiction.as_deref())
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// One case, by id or reference. A partner sees only cases shared with it under an
    /// agreement that allows `purpose`; any other case is NOT_FOUND, exactly as if it did not
    /// exist.
    #[graphql(guard = "Can(Action::ReadCases)")]
    async fn case(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(desc = "why a partner asks; or the Junction-Purpose header")] purpose: Option<
            String,
        >,
    ) -> ApiResult<Case> {
        let store = ctx.data_unchecked::<Store>();
        let access = case_access(ctx, purpose.as_deref()).await?;
        let not_found = || ApiError::NotFound {
            kind: "case",
            id: id.0.clone(),
        };
        let found = cases::get(store, &id).await?;
        let shares = match &access {
            Access::Full => Vec::new(),
            // The shares are read whether or not the case exists, and a case not shared is
            // refused before any further read: a partner cannot tell by the time an answer
            // takes which of the cases it may not see exist.
            Access::Partner(_) => {
                let key = found
                    .as_ref()
                    .map_or_else(|| id.0.clone(), |c| c.id.clone());
                store_sharing::live_shares(store, std::slice::from_ref(&key))
                    .await?
                    .remove(&key)
                    .unwrap_or_default()
            }
        };
        let case = found.ok_or_else(not_found)?;
        if let Access::Partner(scope) = &access
            && scope.agreement_for(&case.case_type_code, &shares).is_none()
        {
            return Err(not_found());
        }
        let policy = ctx.data_unchecked::<SharingPolicy>();
        let lens = lens_for(store, policy, &access, &case, &shares)
            .await?
            .ok_or_else(not_found)?;
        Ok(Case::seen(case, lens))
    }

    /// Cases, newest first. A partner's list, and its count, hold only the cases shared with
    /// it; filtering on an attribute its agreement hides is FORBIDDEN.
    #[graphql(
        guard = "Can(Action::ReadCases)",
        complexity = "page_cost(first, child_complexity)"
    )]
    async fn cases(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "page size, 1 to the configured maximum (default 20)")] first: Option<i32>,
        after: Option<String>,
        filter: Option<CaseFilterInput>,
        order_by: Option<CaseOrderInput>,
        #[graphql(desc = "why a partner asks; or the Junction-Purpose header")] purpose: Option<
            String,
        >,
    ) -> ApiResult<CaseConnection> {
        let store = ctx.data_unchecked::<Store>();
        let policy = ctx.data_unchecked::<SharingPolicy>();
        let access = case_access(ctx, purpose.as_deref()).await?;
        let first = page_size(first, 20, ctx.data_unchecked::<Limits>().max_page_size)?;
        // Newest first pages by id; any other order pages by offset, with its own cursors.
        let order = order_by.map(sort_key).transpose()?;
        let (after, offset) = match (&order, after) {
            (_, None) => (None, 0),
            (None, Some(c)) => (Some(decode_cursor("case", &c)?), 0),
            (Some(_), Some(c)) => (
                None,
                decode_cursor("case-at", &c)?
                    .parse::<u64>()
                    .map_err(|_| ApiError::invalid("after", "is not a cursor from this list"))?,
            ),
        };
        let filter = case_filter(
            store,
            policy,
            &access,
            filter.unwrap_or_default(),
            order,
            offset,
        )
        .await?;
        let ordered = filter.order.is_some();
        let page = cases::list(store, &filter, first, after.as_deref()).await?;
        // An ordered page's cursor is the case's position in the whole list.
        // (Built only for an ordered page: newest-first pages use the case's id.)
        let positions: std::collections::HashMap<String, u64> = if ordered {
            let at =
                |(i, c): (usize, &junction_domain::Case)| (c.id.clone(), offset + i as u64 + 1);
            page.cases.iter().enumerate().map(at).collect()
        } else {
            Default::default()
        };
        let mut types = Default::default();
        let seen = with_lenses(store, policy, &access, page.cases, &mut types).await?;
        let edges: Vec<CaseEdge> = seen
            .into_iter()
            .map(|(c, lens)| CaseEdge {
                cursor: if ordered {
                    encode_cursor("case-at", &positions[&c.id].to_string())
                } else {
                    encode_cursor("case", &c.id)
                },
                node: Case::seen(c, lens),
            })
            .collect();
        Ok(CaseConnection {
            page_info: PageInfo {
                has_next_page: page.has_next,
                end_cursor: edges.last().map(|e| e.cursor.clone()),
            },
            edges,
            total_count: page.total,
        })
    }

    /// Every schedule (each connector's update poll and its mop-up), with its last run, what
    /// it did, its last error and its next run.
    #[graphql(guard = "Can(Action::ReadDeliveries)")]
    async fn schedules(&self, ctx: &Context<'_>) -> ApiResult<Vec<Schedule>> {
        let store = ctx.data_unchecked::<Store>();
        Ok(junction_store::schedules::list(store)
            .await?
            .into_iter()
            .map(Schedule)
            .collect())
    }

    /// Every connector, with its pause and delivery health.
    #[graphql(guard = "Can(Action::ReadDeliveries)")]
    async fn connectors(&self, ctx: &Context<'_>) -> ApiResult<Vec<Connector>> {
        let store = ctx.data_unchecked::<Store>();
        let pauses = deliveries::pauses(store).await?;
        Ok(catalogue::connectors(store)
            .await?
            .into_iter()
            .map(|c| Connector {
                paused: pauses
                    .iter()
                    .find(|p| p.target == deliveries::PauseTarget::Connector && p.id == c.id)
                    .cloned(),
                id: c.id,
                kind: c.kind,
            })
            .collect())
    }

    /// One delivery.
    #[graphql(guard = "Can(Action::ReadDeliveries)")]
    async fn delivery(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Delivery>> {
        let store = ctx.data_unchecked::<Store>();
        let Ok(n) = id.parse::<DeliveryId>() else {
            return Ok(None);
        };
        Ok(deliveries::get(store, n).await?.map(Delivery))
    }

    #[graphql(
        guard = "Can(Action::ReadAuditLog)",
        complexity = "page_cost(first, child_complexity)"
    )]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "page size, 1 to the configured maximum (default 50)")] first: Option<i32>,
        after: Option<String>,
        filter: Option<AuditFilterInput>,
    ) -> ApiResult<AuditConnection> {
        let store = ctx.data_unchecked::<Store>();
        let first = page_size(first, 50, ctx.data_unchecked::<Limits>().max_page_size)?;
        let before = after
            .map(|c| {
                decode_cursor("audit", &c)?
                    .parse::<i64>()
                    .map_err(|_| ApiError::invalid("after", "is not a cursor from this list"))
            })
            .transpose()?;
        let f = filter.unwrap_or_default();
        let filter = AuditFilter {
            actor: f.actor,
            object_type: f.object_type,
            object_id: f.object_id,
            request_id: f.request_id,
            from: f.from,
            to: f.to,
        };
        let (records, more) = audit::list(store, &filter, first, before).await?;
        let edges: Vec<AuditEdge> = records
            .into_iter()
            .map(|r| AuditEdge {
                cursor: encode_cursor("audit", &r.link.seq.to_string()),
                node: AuditRecord(r),
            })
            .collect();
        Ok(AuditConnection {
            page_info: PageInfo {
                has_next_page: more,
                end_cursor: edges.last().map(|e| e.cursor.clone()),
            },
            edges,
        })
    }
}

/// What a field code may be, as a refusal says it.
const CODE_RULE: &str = "is not a field code: 1 to 64 letters, digits, `_`, `-` or `.`";

/// The store's sort key for an order, and whether it descends.
fn sort_key(o: CaseOrderInput) -> ApiResult<(SortKey, bool)> {
    let key = match (o.by, o.field) {
        (CaseSort::Field, Some(code)) if is_code(&code) => SortKey::Field(code),
        (CaseSort::Field, Some(code)) if !code.trim().is_empty() => {
            return Err(ApiError::invalid("orderBy.field", CODE_RULE));
        }
        (CaseSort::Field, _) => {
            return Err(ApiError::invalid(
                "orderBy.field",
                "is required with `by: FIELD`",
            ));
        }
        (_, Some(_)) => {
            return Err(ApiError::invalid(
                "orderBy.field",
                "is only for `by: FIELD`",
            ));
        }
        (CaseSort::CreatedAt, None) => SortKey::CreatedAt,
        (CaseSort::UpdatedAt, None) => SortKey::UpdatedAt,
        (CaseSort::Status, None) => SortKey::Status,
        (CaseSort::Description, None) => SortKey::Description,
        (CaseSort::SubmitterName, None) => SortKey::SubmitterName,
        (CaseSort::SubmitterEmail, None) => SortKey::SubmitterEmail,
    };
    Ok((key, o.direction == SortDirection::Desc))
}

/// A list costs its page size times what each item asks for, so a wide page of deep items is
/// refused before it runs.
fn page_cost(first: Option<i32>, child_complexity: usize) -> usize {
    let n = first.unwrap_or(20).clamp(1, 10_000) as usize;
    n.saturating_mul(child_complexity.max(1)).saturating_add(1)
}

/// The store's filter for a `cases` query, refusing for a partner any filter or order on what
/// its agreements hide (that would reveal it by elimination).
async fn case_filter(
    store: &Store,
    policy: &SharingPolicy,
    access: &Access,
    f: CaseFilterInput,
    order: Option<(SortKey, bool)>,
    offset: u64,
) -> ApiResult<CaseFilter> {
    let field_equals: Vec<(String, String)> = f
        .fields
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.code, e.value))
        .collect();
    if let Some(i) = field_equals.iter().position(|(code, _)| !is_code(code)) {
        return Err(ApiError::invalid(
            &format!("filter.fields[{i}].code"),
            CODE_RULE,
        ));
    }
    let shared_with = match &access {
        Access::Full => None,
        Access::Partner(scope) => {
            // Filtering on what the agreement hides would reveal it by elimination.
            let mut paths: Vec<String> = Vec::new();
            if f.agency.is_some() {
                paths.push("agency".into());
            }
            if f.submitter_email.is_some() {
                paths.push("submitter.email".into());
            }
            paths.extend(field_equals.iter().map(|(c, _)| format!("fields.{c}")));
            if let Some((key, _)) = &order {
                paths.push(key.path());
            }
            let types = case_type_lookup(store).await?;
            for path in paths {
                scope
                    .may_filter_on(&path, f.case_type.as_deref(), &policy.core, &types)
                    .map_err(ApiError::Refused)?;
            }
            Some(SharedWith {
                agency: scope.agency.clone(),
                agreements: scope.agreements.iter().map(|a| (**a).clone()).collect(),
            })
        }
    };
    Ok(CaseFilter {
        jurisdiction_id: f.jurisdiction,
        statuses: f.status.map(Into::into).into_iter().collect(),
        case_types: f.case_type.into_iter().collect(),
        agency: f.agency,
        created_from: f.created_from,
        created_to: f.created_to,
        updated_from: None,
        updated_to: None,
        field_equals,
        submitter_email: f.submitter_email,
        shared_with,
        order: order.map(|(key, descending)| CaseOrder {
            key,
            descending,
            offset,
        }),
    })
}
