//! The `case_shares` table: a case shared with a partner agency under an agreement.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "case_shares")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub case_id: String,
    pub agency_id: String,
    pub agreement_id: String,
    /// The sharing rule that made the share, when a rule did.
    pub rule: Option<String>,
    pub reason: String,
    pub shared_by: String,
    pub shared_at: ChronoDateTimeUtc,
    pub unshared_at: Option<ChronoDateTimeUtc>,
    pub unshared_by: Option<String>,
    pub unshare_reason: Option<String>,
    /// The feed position of the share's `shared` event.
    pub feed_seq: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
