//! Deliveries: sending one thing to one connector, until it arrives or is given up on.
//!
//! ```text
//! pending ──claim──▶ sending ──ok──▶ sent
//!    ▲                  │
//!    │             transient error ──▶ failed (next attempt at T) ──due──▶ sending …
//!    │                  │                       └── older than max age ──▶ dead
//!    │                  ├── permanent error ──▶ dead
//!    │                  └── no answer (timeout, reset, the process died) ──▶ ambiguous
//!    │                                                                          │
//!    │        ambiguous ──due──▶ sending: prove the outcome first (see [`next_after_unknown`])
//!    │             found, with its reference ──▶ sent; proved absent ──▶ sent again
//!    │             inconclusive ──▶ ambiguous (ask again at T) … ──▶ needs_decision
//!    └── retry / "send it again" ◀── needs_decision ──"it arrived, reference X"──▶ sent
//! ```
//! A delivery whose connector (or agency) is paused is simply not claimed; it keeps its place.
//! An attempt whose outcome is unknown is never resent blindly and never marked sent on a
//! guess: only what the connector can prove moves it on, and otherwise a person decides.

mod plan;
mod unknown;

pub use plan::{PlannedDelivery, plan};
pub use unknown::{Finding, NextStep, Proof, next_after_unknown};

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A delivery's id: never to be taken for the id of a case event, a share or a file, which
/// are numbers too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeliveryId(pub i64);

impl std::str::FromStr for DeliveryId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(DeliveryId)
    }
}

impl std::fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Sending,
    Sent,
    Failed,
    /// The last attempt may have arrived (no answer came, or the process sending it died):
    /// the next step proves what happened before anything is sent again.
    Ambiguous,
    /// Whether it arrived cannot be proved: parked until a person says what happened.
    NeedsDecision,
    Dead,
    /// Withdrawn before it was sent, because the case was rerouted.
    Cancelled,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 8] = [
        DeliveryState::Pending,
        DeliveryState::Sending,
        DeliveryState::Sent,
        DeliveryState::Failed,
        DeliveryState::Ambiguous,
        DeliveryState::NeedsDecision,
        DeliveryState::Dead,
        DeliveryState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        crate::wire_name::wire_name(&self)
    }

    pub fn parse(s: &str) -> Option<Self> {
        crate::wire_name::from_wire_name(s)
    }

    /// Whether the delivery is over, one way or the other.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeliveryState::Sent | DeliveryState::Dead | DeliveryState::Cancelled
        )
    }
}

/// What a delivery carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryKind {
    /// The case itself, to the connector routing chose.
    Case,
    /// A copy of the case by email to the addresses a rule named (high priority); it goes
    /// whatever happens to the main delivery.
    AlsoEmail,
    /// A notice to a partner agency that a case was shared with it, showing only what the
    /// agreement allows.
    PartnerNotice,
}

impl DeliveryKind {
    pub fn as_str(self) -> &'static str {
        crate::wire_name::wire_name(&self)
    }

    pub fn parse(s: &str) -> Option<Self> {
        crate::wire_name::from_wire_name(s)
    }
}

/// What a delivery carries beyond the case: stored as JSON, and read and written only through
/// this type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeliveryPayload {
    /// Email recipients (the agency's address, a rule's `also_email`, a partner's address).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// For a partner notice: the partner agency, the agreement and the share it announces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agreement: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<i64>,
    /// A token the back-end issued for an earlier attempt, still to be resolved to its
    /// reference: the next attempt polls it instead of sending again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl DeliveryPayload {
    /// A payload of email recipients.
    pub fn to(to: Vec<String>) -> DeliveryPayload {
        DeliveryPayload {
            to,
            ..DeliveryPayload::default()
        }
    }
}

/// When to try again after a failure, and when to give up.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Wait after the first failure.
    pub initial: Duration,
    /// Longest wait between attempts.
    pub max_delay: Duration,
    /// A delivery first attempted longer ago than this goes dead on its next failure (or, when
    /// its outcome is unknown, waits for a person).
    pub max_age: Duration,
    /// How many inconclusive checks of an unknown outcome before a person is asked.
    pub checks: u32,
    /// Spread each wait by up to this fraction either way, so a back-end that comes back is
    /// not hit by every waiting delivery at once.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    /// One minute, doubling to half an hour, for two days: council systems go down for hours
    /// (evenings, weekends, upgrades), and FixMyStreet itself retries every 30 minutes.
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_secs(60),
            max_delay: Duration::from_secs(30 * 60),
            max_age: Duration::from_secs(48 * 3600),
            checks: 8,
            jitter: 0.2,
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    RetryAt(DateTime<Utc>),
    GiveUp,
}

impl RetryPolicy {
    /// The wait before attempt `attempts + 1`, after `attempts` failures (≥ 1), with the
    /// jitter drawn from `unit` in `[0, 1)`.
    pub fn delay(&self, attempts: u32, unit: f64) -> Duration {
        let doublings = attempts.saturating_sub(1).min(32);
        let base = self
            .initial
            .saturating_mul(1u32 << doublings.min(31))
            .min(self.max_delay);
        let spread = 1.0 + self.jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        base.mul_f64(spread.max(0.0))
            .min(self.max_delay.mul_f64(1.0 + self.jitter))
    }

    /// Decides after a transient failure: retry later, or give up when the delivery is older
    /// than the maximum age.
    pub fn after_failure(
        &self,
        attempts: u32,
        first_attempt: DateTime<Utc>,
        now: DateTime<Utc>,
        unit: f64,
    ) -> AfterFailure {
        let age = (now - first_attempt).to_std().unwrap_or_default();
        if age >= self.max_age {
            return AfterFailure::GiveUp;
        }
        let delay =
            chrono::Duration::from_std(self.delay(attempts, unit)).unwrap_or(chrono::Duration::MAX);
        AfterFailure::RetryAt(now + delay)
    }
}

/// The key that lets a back-end recognise a resend of the same delivery: the same case to the
/// same connector always carries the same key. The only place a key is made.
/// `share` names the share a partner notice announces, so each share's notice is its own
/// delivery.
pub fn idempotency_key(
    case_id: &str,
    connector_id: &str,
    kind: DeliveryKind,
    share: Option<&str>,
) -> String {
    let base = match kind {
        DeliveryKind::Case => format!("{case_id}:{connector_id}"),
        DeliveryKind::AlsoEmail => format!("{case_id}:{connector_id}:also_email"),
        DeliveryKind::PartnerNotice => format!("{case_id}:{connector_id}:partner_notice"),
    };
    match share {
        Some(share) => format!("{base}:{share}"),
        None => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap() {
        let p = RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::default()
        };
        let mins: Vec<u64> = (1..=8).map(|n| p.delay(n, 0.5).as_secs() / 60).collect();
        assert_eq!(mins, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(p.delay(10_000, 0.5), Duration::from_secs(1800));
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, 0.0), Duration::from_secs(48));
        assert_eq!(p.delay(1, 1.0), Duration::from_secs(72));
        assert_eq!(p.delay(1, 0.5), Duration::from_secs(60));
    }

    #[test]
    fn keys_are_stable_and_tell_deliveries_apart() {
        let key = |kind, share| idempotency_key("c1", "backend", kind, share);
        assert_eq!(key(DeliveryKind::Case, None), "c1:backend");
        assert_eq!(key(DeliveryKind::AlsoEmail, None), "c1:backend:also_email");
        assert_eq!(
            key(DeliveryKind::PartnerNotice, Some("7")),
            "c1:backend:partner_notice:7"
        );
        assert_ne!(
            key(DeliveryKind::PartnerNotice, Some("7")),
            key(DeliveryKind::PartnerNotice, Some("8"))
        );
    }

    #[test]
    fn gives_up_after_max_age() {
        let p = RetryPolicy::default();
        let start = Utc::now();
        let later = start + chrono::Duration::hours(47);
        assert!(
            matches!(p.after_failure(30, start, later, 0.5), AfterFailure::RetryAt(t) if t > later)
        );
        let too_late = start + chrono::Duration::hours(48);
        assert_eq!(
            p.after_failure(31, start, too_late, 0.5),
            AfterFailure::GiveUp
        );
    }
}
