//! The token revocation list, held in memory for the check every request makes and reloaded
//! from the store when it grows (by this process or another sharing the database).

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use junction_store::revocations::{self, Revoked};
use junction_store::{Store, StoreError};
use tokio::sync::watch;

/// Tokens withdrawn before they expire.
pub struct Revocations {
    set: RwLock<Set>,
    /// The newest revocation loaded; open connections watch it to re-check their token.
    latest: watch::Sender<i64>,
}

#[derive(Default)]
struct Set {
    tokens: HashSet<String>,
    /// Per subject, tokens issued at or before this Unix time are revoked.
    subjects: HashMap<String, i64>,
}

impl Default for Revocations {
    fn default() -> Self {
        Revocations {
            set: RwLock::new(Set::default()),
            latest: watch::Sender::new(0),
        }
    }
}

impl Revocations {
    /// Whether a token of `subject` with id `jti`, issued at `iat`, is withdrawn.
    pub fn is_revoked(&self, subject: &str, jti: Option<&str>, iat: i64) -> bool {
        let set = self.set.read().unwrap_or_else(|e| e.into_inner());
        jti.is_some_and(|j| set.tokens.contains(j))
            || set
                .subjects
                .get(subject)
                .is_some_and(|before| iat <= *before)
    }

    /// Reloads the list when the store holds a newer revocation than the one loaded. Answers
    /// whether anything changed.
    pub async fn refresh(&self, store: &Store) -> Result<bool, StoreError> {
        let latest = revocations::latest(store).await?;
        if latest == *self.latest.borrow() {
            return Ok(false);
        }
        let mut set = Set::default();
        for r in revocations::all(store).await? {
            match r.revoked {
                Revoked::Token(jti) => {
                    set.tokens.insert(jti);
                }
                Revoked::Subject {
                    subject,
                    issued_before,
                } => {
                    let before = set.subjects.entry(subject).or_insert(i64::MIN);
                    *before = (*before).max(issued_before.timestamp());
                }
            }
        }
        *self.set.write().unwrap_or_else(|e| e.into_inner()) = set;
        self.latest.send_replace(latest);
        Ok(true)
    }

    /// Changes whenever the list is reloaded with something new.
    pub fn changes(&self) -> watch::Receiver<i64> {
        self.latest.subscribe()
    }
}
