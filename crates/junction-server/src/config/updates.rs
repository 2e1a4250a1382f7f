//! `[connectors.updates]`: how a connector's back-end updates are read (polled on a schedule
//! over overlapping windows) and what its statuses mean here, and the checks on them.

use junction_connectors::ConnectorKind;
use serde::{Deserialize, Serialize};

use super::locate::KeyPath;
use super::validate::Problems;

/// How a back-end's updates are read and what its statuses mean.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpdatesConfig {
    /// Poll `GET servicerequestupdates` this often, in minutes; 0 polls never (updates are
    /// pushed instead).
    pub poll_every_mins: u64,
    /// How far back each poll reads, in minutes: more than `poll_every_mins`, so windows
    /// overlap and an update the back-end dates late is still read.
    pub window_mins: u64,
    /// A longer mop-up poll this often, in hours (0: none), reading `mop_up_window_hours`.
    pub mop_up_every_hours: u64,
    pub mop_up_window_hours: u64,
    /// What the back-end's statuses and external codes mean here.
    pub statuses: junction_domain::StatusMap,
    /// `${VAR}`: the back-end may push signed updates to `/hooks/<connector>` with this
    /// secret (HMAC-SHA256 over `<timestamp>.<body>`).
    pub push_secret: Option<super::SecretRef>,
}

impl Default for UpdatesConfig {
    fn default() -> Self {
        UpdatesConfig {
            poll_every_mins: 15,
            window_mins: 120,
            mop_up_every_hours: 24,
            mop_up_window_hours: 24,
            statuses: junction_domain::StatusMap::default(),
            push_secret: None,
        }
    }
}

/// `[connectors.updates]`: a kind that can be polled, windows that overlap, a sound map.
pub(super) fn check_updates(
    u: &UpdatesConfig,
    kind: ConnectorKind,
    at: &KeyPath,
    p: &mut Problems,
) {
    let at = at.key("updates");
    if u.poll_every_mins > 0 && kind != ConnectorKind::Open311 {
        p.push(
            at.key("poll_every_mins"),
            format!(
                "a `{}` connector has no updates to poll; set 0",
                kind.as_str()
            ),
        );
    }
    if u.poll_every_mins > 0 && u.window_mins <= u.poll_every_mins {
        p.push(
            at.key("window_mins"),
            "must be longer than poll_every_mins, so that windows overlap",
        );
    }
    if u.mop_up_every_hours > 0 && u.mop_up_window_hours == 0 {
        p.push(at.key("mop_up_window_hours"), "must be greater than 0");
    }
    for (key, why) in u.statuses.check() {
        let mut path = at.key("statuses");
        for part in key.split('.') {
            path = match part.split_once('[') {
                Some((name, index)) => path
                    .key(name)
                    .index(index.trim_end_matches(']').parse().unwrap_or(0)),
                None => path.key(part),
            };
        }
        p.push(path, why);
    }
}
