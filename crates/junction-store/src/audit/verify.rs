//! Walking the audit chain: every record's hash recomputed, every column checked, the head
//! compared, and, against a signed checkpoint kept elsewhere, the end of the log too.

use junction_domain::audit::verify_link;
use junction_domain::checkpoint::{Checkpoint, CheckpointKey};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{Row, from_row};
use crate::entity::{audit_head, audit_log};
use crate::{Store, StoreError};

/// The outcome of walking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub checked: u64,
    /// The first record that does not verify, and why.
    pub first_bad: Option<(i64, String)>,
}

impl VerifyReport {
    fn bad(checked: u64, seq: i64, why: impl Into<String>) -> VerifyReport {
        VerifyReport {
            checked,
            first_bad: Some((seq, why.into())),
        }
    }
}

/// The chain's head: the last record's place and hash (0 and the genesis hash when empty).
pub async fn head(store: &Store) -> Result<(i64, String), StoreError> {
    let head = audit_head::Entity::find_by_id(1).one(store.conn()).await?;
    Ok(head
        .map(|h| (h.seq, h.hash))
        .unwrap_or_else(|| (0, junction_domain::GENESIS_HASH.to_string())))
}

/// Walks the chain from the first record, recomputing every hash. The columns kept beside the
/// hashed content for searching (`kind`, `object_type`, `object_id`) must say what the content
/// says, so an edit to them (which would hide a record from a disclosure search) is caught too.
pub async fn verify(store: &Store) -> Result<VerifyReport, StoreError> {
    let mut expected_prev = junction_domain::GENESIS_HASH.to_string();
    let mut expected_seq = 1i64;
    let mut checked = 0u64;
    loop {
        let page = audit_log::Entity::find()
            .filter(audit_log::Column::Seq.gte(expected_seq))
            .order_by_asc(audit_log::Column::Seq)
            .limit(2_000)
            .all(store.conn())
            .await?;
        if page.is_empty() {
            break;
        }
        for row in page {
            let seq = row.seq;
            if seq != expected_seq {
                let why = format!("record {expected_seq} is missing (next present is {seq})");
                return Ok(VerifyReport::bad(checked, expected_seq, why));
            }
            let searched = (
                row.kind.clone(),
                row.object_type.clone(),
                row.object_id.clone(),
            );
            let stored = match from_row(row) {
                Ok(s) => s,
                Err(e) => return Ok(VerifyReport::bad(checked, seq, e.to_string())),
            };
            if let Err(why) = verify_link(&expected_prev, &stored.entry, &stored.link) {
                return Ok(VerifyReport::bad(checked, seq, why));
            }
            let derived = Row::new(&stored.entry, &stored.link);
            let expected = (
                derived.kind.to_string(),
                derived.object_type,
                derived.object_id,
            );
            if searched != expected {
                let why = format!(
                    "its search columns (kind, object_type, object_id) say {searched:?}, \
                     but its hashed content says {expected:?}"
                );
                return Ok(VerifyReport::bad(checked, seq, why));
            }
            expected_prev = stored.link.hash;
            expected_seq += 1;
            checked += 1;
        }
    }
    let last = expected_seq - 1;
    match audit_head::Entity::find_by_id(1).one(store.conn()).await? {
        None if last > 0 => Ok(VerifyReport::bad(
            checked,
            last,
            "the chain head row is missing",
        )),
        Some(head) if head.seq != last || head.hash != expected_prev => {
            let why = format!(
                "chain head says record {} with hash {}, but the log ends at record {last} \
                 with hash {expected_prev}",
                head.seq, head.hash,
            );
            Ok(VerifyReport::bad(checked, head.seq, why))
        }
        _ => Ok(VerifyReport {
            checked,
            first_bad: None,
        }),
    }
}

/// As [`verify`], and then checks the log against `checkpoint`, signed with `key`: the record
/// it vouches for must still be there with the same hash. This is what finds a cut at the end
/// of the log made together with a move of the head.
pub async fn verify_against(
    store: &Store,
    checkpoint: &Checkpoint,
    key: &CheckpointKey,
) -> Result<VerifyReport, StoreError> {
    if let Err(why) = key.verify(checkpoint) {
        return Ok(VerifyReport::bad(0, checkpoint.seq, why.to_string()));
    }
    let report = verify(store).await?;
    if report.first_bad.is_some() || checkpoint.seq == 0 {
        return Ok(report);
    }
    let row = audit_log::Entity::find_by_id(checkpoint.seq)
        .one(store.conn())
        .await?;
    let why = match row {
        None => format!(
            "the log was cut: the checkpoint of {} vouches for record {} with hash {}, and the \
             log ends at record {}",
            checkpoint.at.to_rfc3339(),
            checkpoint.seq,
            checkpoint.hash,
            report.checked,
        ),
        Some(row) if row.hash != checkpoint.hash => format!(
            "the log was rewritten: the checkpoint of {} vouches for record {} with hash {}, \
             and the record there now has hash {}",
            checkpoint.at.to_rfc3339(),
            checkpoint.seq,
            checkpoint.hash,
            row.hash,
        ),
        Some(_) => return Ok(report),
    };
    Ok(VerifyReport::bad(report.checked, checkpoint.seq, why))
}
