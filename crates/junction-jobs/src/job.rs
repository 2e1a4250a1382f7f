//! What the queue carries: one variant per kind of job, each handled in a file of its own.
//! A job names the row it concerns and nothing else; everything it needs is read from the
//! database when it runs, so a job that runs twice or late does no harm.

use junction_domain::DeliveryId;
use serde::{Deserialize, Serialize};

/// A kind of work the queue hands to this process's workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum Job {
    /// Attempt delivery `delivery` now (`deliver_case.rs`).
    Deliver { delivery: DeliveryId },
}

/// A job as stored. Jobs queued before there was more than one kind were stored as
/// `{"delivery": N}`, and still decode, as [`Job::Deliver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Queued {
    Job(Job),
    Earlier(EarlierDelivery),
}

/// The shape of a delivery job before jobs were tagged. Nothing else may ride along: a job of
/// a kind this process does not know is refused, never taken for a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlierDelivery {
    delivery: DeliveryId,
}

impl Queued {
    pub fn job(self) -> Job {
        match self {
            Queued::Job(job) => job,
            Queued::Earlier(EarlierDelivery { delivery }) => Job::Deliver { delivery },
        }
    }
}

impl From<Job> for Queued {
    fn from(job: Job) -> Queued {
        Queued::Job(job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_tagged_and_jobs_queued_before_the_tag_still_decode() {
        let job = Job::Deliver {
            delivery: DeliveryId(7),
        };
        let stored = serde_json::to_string(&Queued::from(job)).unwrap();
        assert_eq!(stored, r#"{"job":"deliver","delivery":7}"#);
        let back: Queued = serde_json::from_str(&stored).unwrap();
        assert_eq!(back.job(), job);
        let earlier: Queued = serde_json::from_str(r#"{"delivery":7}"#).unwrap();
        assert_eq!(earlier.job(), job);
        assert!(serde_json::from_str::<Queued>(r#"{"job":"unknown","x":1}"#).is_err());
        assert!(serde_json::from_str::<Queued>(r#"{"job":"poll","delivery":7}"#).is_err());
    }
}
