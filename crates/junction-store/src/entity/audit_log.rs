//! The `audit_log` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    pub at: ChronoDateTimeUtc,
    pub actor: String,
    pub agency: Option<String>,
    /// JSON array of role names.
    pub roles: String,
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
    /// `operation`, `change` or `disclosure`.
    pub kind: String,
    /// JSON of the operation, for `operation` records.
    pub operation: Option<String>,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    /// JSON of the change, for `change` records.
    pub change: Option<String>,
    /// JSON of the disclosure, for `disclosure` records.
    pub disclosure: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
