//! The `deliveries` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "deliveries")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub case_id: String,
    pub connector_id: String,
    pub agency_id: String,
    pub kind: String,
    pub state: String,
    pub idempotency_key: String,
    pub attempts: i32,
    pub first_attempt_at: Option<ChronoDateTimeUtc>,
    pub next_attempt_at: ChronoDateTimeUtc,
    pub lease_until: Option<ChronoDateTimeUtc>,
    /// A job for this delivery was handed to the queue and is expected to run before then.
    pub queued_until: Option<ChronoDateTimeUtc>,
    pub last_error: Option<String>,
    pub last_response: Option<String>,
    pub external_ref: Option<String>,
    /// JSON object: what this delivery carries beyond the case (e.g. `also_email` addresses).
    pub payload: String,
    pub created_at: ChronoDateTimeUtc,
    pub updated_at: ChronoDateTimeUtc,
    pub sent_at: Option<ChronoDateTimeUtc>,
    /// The process holding the claim (its id in `processes`).
    pub lease_owner: Option<String>,
    /// Since when whether the last attempt arrived has been unknown.
    pub ambiguous_since: Option<ChronoDateTimeUtc>,
    /// Inconclusive checks of that unknown outcome so far.
    pub checks: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
