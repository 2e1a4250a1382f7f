//! How the simulated back-end behaves, and misbehaves.

use serde::{Deserialize, Serialize};

/// How the simulator misbehaves.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Behaviour {
    /// Fraction (0 to 1) of POSTs answered with HTTP 500.
    pub fail_rate: f64,
    /// The next N POSTs are answered with `fail_status`.
    pub fail_next: u32,
    /// Status for `fail_next` (default 500); a 4xx is a validation refusal.
    pub fail_status: Option<u16>,
    /// Description in the errors body for failures.
    pub fail_message: Option<String>,
    /// Milliseconds to wait before every answer.
    pub delay_ms: u64,
    /// The next N POSTs are accepted and stored, then never answered.
    pub hang_next: u32,
    /// Answer POSTs with a token, resolved through `tokens/{token}` after `token_delay_ms`.
    pub token_mode: bool,
    pub token_delay_ms: u64,
    /// The next N POSTs get a 200 with a body that is not Open311.
    pub malformed_next: u32,
    /// Seconds after creation at which a request moves to `in_progress`, then `fixed`.
    pub progress_after_secs: Option<u64>,
    pub fixed_after_secs: Option<u64>,
    /// Keep one request per id attribute value, so a resend gets the first one's reference.
    /// Off by default: most council systems store every POST they are sent.
    pub dedupe: bool,
    /// Every Nth POST that is stored is then never answered (0: none), as a back-end that
    /// hangs after committing does.
    pub hang_every: u32,
    /// Each case's first N POSTs (by its id attribute) are answered with HTTP 500 before
    /// anything is stored.
    pub fail_first_posts: u32,
    /// `GET requests` ignores filters it does not know (the id attribute), answering with
    /// every request in the date window, as many council systems do.
    pub ignore_unknown_filters: bool,
    /// A lookup by id attribute is answered with someone else's request.
    pub lookup_answers_other: bool,
    /// `GET requests` does not show the id attribute each request was posted with.
    pub hide_ids: bool,
    /// Refuse a description longer than this many characters with HTTP 400, as council
    /// systems with a fixed column do.
    pub max_description_chars: Option<usize>,
    /// `GET servicerequestupdates` lists every update twice, as back-ends that join history
    /// tables do.
    pub duplicate_updates: bool,
    /// `GET servicerequestupdates` answers 200 with an HTML error page.
    pub updates_html: bool,
}
