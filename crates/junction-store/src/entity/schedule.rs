//! The `schedules` table: each declared schedule's state, shared by every process.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "schedules")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub kind: String,
    pub connector_id: Option<String>,
    pub every_secs: i64,
    pub next_run_at: ChronoDateTimeUtc,
    /// The process running it now, and until when its claim holds.
    pub lease_owner: Option<String>,
    pub lease_until: Option<ChronoDateTimeUtc>,
    pub last_started_at: Option<ChronoDateTimeUtc>,
    pub last_finished_at: Option<ChronoDateTimeUtc>,
    /// `ok` or `failed`.
    pub last_outcome: Option<String>,
    /// JSON object of counts from the last run.
    pub last_counts: Option<String>,
    pub last_error: Option<String>,
    /// JSON: where the schedule's work reached (e.g. the end of the last window read).
    pub cursor: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
