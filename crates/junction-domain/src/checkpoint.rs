//! Signed checkpoints of the audit chain's head, so that cutting records off the end of the log
//! is detectable.
//!
//! The hash chain shows any edit, insertion or deletion inside the log, but not a cut at its
//! end: whoever can delete the last records can also move the head back. A checkpoint is the
//! head (`seq`, `hash`) at a moment, signed with Ed25519 and kept somewhere the database's
//! users cannot reach (the log file, an append-only file on other storage, a webhook). A log
//! that no longer holds the record a checkpoint vouches for, or holds it with another hash, has
//! been cut or rewritten.

use chrono::{DateTime, SecondsFormat, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The audit chain's head at `at`, signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The last record's place in the chain.
    pub seq: i64,
    /// The last record's hash.
    pub hash: String,
    pub at: DateTime<Utc>,
    /// The Ed25519 public key that signed it, hex.
    pub public_key: String,
    /// The Ed25519 signature of [`Checkpoint::message`], hex.
    pub signature: String,
}

/// Why a checkpoint cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("the checkpoint was signed by key {found}, not this installation's key {expected}")]
    OtherKey { found: String, expected: String },
    #[error("the checkpoint's signature does not verify: it was altered or forged")]
    BadSignature,
}

/// The key checkpoints are signed with, derived from a secret of any length.
pub struct CheckpointKey(SigningKey);

impl CheckpointKey {
    /// Derives the signing key from `secret` (at least 32 bytes of it should be random).
    pub fn from_secret(secret: &[u8]) -> CheckpointKey {
        let mut hasher = Sha256::new();
        hasher.update(b"junction audit checkpoint key v1\n");
        hasher.update(secret);
        let seed: [u8; 32] = hasher.finalize().into();
        CheckpointKey(SigningKey::from_bytes(&seed))
    }

    /// The public half, hex: what a checkpoint names and a verifier checks.
    pub fn public_key(&self) -> String {
        hex::encode(self.0.verifying_key().as_bytes())
    }

    /// Signs the head `(seq, hash)` as of `at`.
    pub fn sign(&self, seq: i64, hash: &str, at: DateTime<Utc>) -> Checkpoint {
        let signature = self.0.sign(Checkpoint::message(seq, hash, at).as_bytes());
        Checkpoint {
            seq,
            hash: hash.to_string(),
            at,
            public_key: self.public_key(),
            signature: hex::encode(signature.to_bytes()),
        }
    }

    /// Checks that `checkpoint` was signed with this key and not altered since.
    pub fn verify(&self, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
        let expected = self.public_key();
        if checkpoint.public_key != expected {
            return Err(CheckpointError::OtherKey {
                found: checkpoint.public_key.clone(),
                expected,
            });
        }
        let bytes: [u8; 64] = hex::decode(&checkpoint.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(CheckpointError::BadSignature)?;
        let key: VerifyingKey = self.0.verifying_key();
        key.verify(
            Checkpoint::message(checkpoint.seq, &checkpoint.hash, checkpoint.at).as_bytes(),
            &Signature::from_bytes(&bytes),
        )
        .map_err(|_| CheckpointError::BadSignature)
    }
}

impl Checkpoint {
    /// The text that is signed: a fixed label, the place, the hash and the time.
    pub fn message(seq: i64, hash: &str, at: DateTime<Utc>) -> String {
        format!(
            "junction audit checkpoint v1\n{seq}\n{hash}\n{}",
            at.to_rfc3339_opts(SecondsFormat::Micros, true)
        )
    }

    /// The checkpoint as one line of JSON, as it is written to files and logs.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a checkpoint serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        "2026-12-07T10:00:00.123456Z".parse().unwrap()
    }

    #[test]
    fn a_checkpoint_verifies_with_its_key_and_not_once_altered() {
        let key = CheckpointKey::from_secret(b"0123456789abcdef0123456789abcdef");
        let checkpoint = key.sign(42, "ab12", at());
        assert_eq!(key.verify(&checkpoint), Ok(()));
        let line = checkpoint.to_line();
        let back: Checkpoint = serde_json::from_str(&line).unwrap();
        assert_eq!(key.verify(&back), Ok(()));

        let mut earlier = checkpoint.clone();
        earlier.seq = 40;
        assert_eq!(key.verify(&earlier), Err(CheckpointError::BadSignature));
        let mut rehashed = checkpoint.clone();
        rehashed.hash = "cd34".into();
        assert_eq!(key.verify(&rehashed), Err(CheckpointError::BadSignature));
        let mut garbage = checkpoint.clone();
        garbage.signature = "zz".into();
        assert_eq!(key.verify(&garbage), Err(CheckpointError::BadSignature));
    }

    #[test]
    fn another_installation_s_checkpoint_is_named_as_such() {
        let ours = CheckpointKey::from_secret(b"ours-ours-ours-ours-ours-ours-ours");
        let theirs = CheckpointKey::from_secret(b"theirs-theirs-theirs-theirs-theirs");
        let forged = theirs.sign(7, "ff", at());
        assert!(matches!(
            ours.verify(&forged),
            Err(CheckpointError::OtherKey { .. })
        ));
        // A checkpoint claiming our key but signed by another is refused too.
        let mut claimed = forged;
        claimed.public_key = ours.public_key();
        assert_eq!(ours.verify(&claimed), Err(CheckpointError::BadSignature));
    }
}
