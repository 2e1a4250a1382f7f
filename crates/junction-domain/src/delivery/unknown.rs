//! Unknown outcomes: what a connector can prove about an attempt that got no answer, what asking
//! found, and the decision that follows (ADR 0011).

use super::RetryPolicy;

/// How a connector settles an attempt whose outcome is unknown: what it can prove, declared
/// by the connector (and, for a back-end's de-duplication, promised in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Proof {
    /// The other side can be asked whether the delivery arrived (Open311 `GET requests` by
    /// our id attribute).
    pub can_ask: bool,
    /// The other side recognises a resend by our idempotency key and keeps one copy, so a
    /// resend is safe.
    pub dedupes: bool,
}

/// What asking the other side found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Exactly one record carries our id, exactly: it arrived, under this reference.
    Arrived { reference: String },
    /// An answer that proves the search was applied holds no record of ours: it did not arrive.
    Absent,
    /// Anything else (the search ignored, several matches, an error, a timeout, an answer too
    /// large to read): nothing is known.
    Inconclusive(String),
}

/// The next step for a delivery whose last attempt may have arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep {
    /// Ask the other side (then decide again with what it found).
    Ask,
    /// It arrived: record it as sent with this reference, and send nothing.
    Arrived(String),
    /// Send it: it did not arrive, or the other side will recognise the resend.
    Send,
    /// Ask again later, on the retry schedule.
    AskLater(String),
    /// Park it for a person to decide, saying why.
    Park(String),
}

/// Decides what follows an attempt whose outcome is unknown, from what the connector can
/// prove and what asking found (`None` before asking). `checks` counts the inconclusive
/// answers so far; `expired` says the delivery is past its maximum age.
pub fn next_after_unknown(
    proof: Proof,
    finding: Option<&Finding>,
    checks: u32,
    policy: &RetryPolicy,
    expired: bool,
) -> NextStep {
    match finding {
        None if proof.can_ask => NextStep::Ask,
        None if proof.dedupes => NextStep::Send,
        None => NextStep::Park(
            "the last attempt got no answer; this back-end cannot be asked whether it arrived and \
             is not configured as de-duplicating (`dedupes_on_id`), so a person must decide"
                .into(),
        ),
        Some(Finding::Arrived { reference }) => NextStep::Arrived(reference.clone()),
        Some(Finding::Absent) => NextStep::Send,
        Some(Finding::Inconclusive(_)) if proof.dedupes => NextStep::Send,
        Some(Finding::Inconclusive(why)) => {
            let checks = checks + 1;
            if checks >= policy.checks.max(1) || expired {
                NextStep::Park(format!(
                    "whether the last attempt arrived could not be proved after {checks} check{}: {why}",
                    if checks == 1 { "" } else { "s" }
                ))
            } else {
                NextStep::AskLater(why.clone())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_outcome_is_proved_resent_only_when_safe_or_parked() {
        let p = RetryPolicy {
            checks: 3,
            ..RetryPolicy::default()
        };
        let ask = Proof {
            can_ask: true,
            dedupes: false,
        };
        let dedupes = Proof {
            can_ask: false,
            dedupes: true,
        };
        let neither = Proof::default();
        assert_eq!(next_after_unknown(ask, None, 0, &p, false), NextStep::Ask);
        assert_eq!(
            next_after_unknown(dedupes, None, 0, &p, false),
            NextStep::Send
        );
        assert!(matches!(
            next_after_unknown(neither, None, 0, &p, false),
            NextStep::Park(why) if why.contains("dedupes_on_id")
        ));
        let found = Finding::Arrived {
            reference: "BX-1".into(),
        };
        assert_eq!(
            next_after_unknown(ask, Some(&found), 0, &p, false),
            NextStep::Arrived("BX-1".into())
        );
        assert_eq!(
            next_after_unknown(ask, Some(&Finding::Absent), 0, &p, false),
            NextStep::Send
        );
        let unsure = Finding::Inconclusive("the filter was ignored".into());
        assert_eq!(
            next_after_unknown(ask, Some(&unsure), 1, &p, false),
            NextStep::AskLater("the filter was ignored".into())
        );
        assert!(matches!(
            next_after_unknown(ask, Some(&unsure), 2, &p, false),
            NextStep::Park(why) if why.contains("3 checks") && why.contains("filter was ignored")
        ));
        assert!(matches!(
            next_after_unknown(ask, Some(&unsure), 0, &p, true),
            NextStep::Park(_)
        ));
        let both = Proof {
            can_ask: true,
            dedupes: true,
        };
        assert_eq!(next_after_unknown(both, None, 0, &p, false), NextStep::Ask);
        assert_eq!(
            next_after_unknown(both, Some(&unsure), 5, &p, false),
            NextStep::Send
        );
    }
}
