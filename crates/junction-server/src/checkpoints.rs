//! Audit checkpoints: the chain's head signed at intervals and written where the database's
//! users cannot reach it (the log, an append-only file on other storage, a webhook), so that
//! `junction audit verify --against` can tell when records were cut from the end of the log.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{SubsecRound, Utc};
use junction_domain::checkpoint::{Checkpoint, CheckpointKey};
use junction_store::Store;
use tokio::task::JoinHandle;

use crate::config::LoadedConfig;

/// The file a generated checkpoint secret lives in.
const SECRET_FILE: &str = "audit-checkpoint.secret";

/// Where checkpoints go, and the key they are signed with.
#[derive(Clone)]
pub struct Witness {
    key: Arc<CheckpointKey>,
    file: Option<PathBuf>,
    webhook: Option<String>,
    client: reqwest::Client,
}

/// The key checkpoints are signed with: `[audit] checkpoint_secret`, or a secret made in the
/// data directory on first use.
pub fn key(loaded: &LoadedConfig) -> anyhow::Result<CheckpointKey> {
    let secret = match &loaded.config.audit.checkpoint_secret {
        Some(secret) => configured(secret)?,
        None => crate::secret_file::load_or_create_at(
            &loaded.config.server.data_dir.join(SECRET_FILE),
            "audit checkpoint secret",
        )?,
    };
    Ok(CheckpointKey::from_secret(&secret))
}

/// The key checkpoints were signed with, to check them: as [`key`], but a missing secret is an
/// error rather than a new one (which could only say that no checkpoint is ours).
pub fn existing_key(loaded: &LoadedConfig) -> anyhow::Result<CheckpointKey> {
    let secret = match &loaded.config.audit.checkpoint_secret {
        Some(secret) => configured(secret)?,
        None => {
            let file = loaded.config.server.data_dir.join(SECRET_FILE);
            crate::secret_file::load_at(&file)?.with_context(|| {
                format!(
                    "no checkpoint secret at {}: verify where the server keeps its data, or set \
                     [audit] checkpoint_secret",
                    file.display()
                )
            })?
        }
    };
    Ok(CheckpointKey::from_secret(&secret))
}

fn configured(secret: &crate::config::SecretRef) -> anyhow::Result<Vec<u8>> {
    Ok(secret
        .resolve()
        .map_err(anyhow::Error::msg)?
        .expose()
        .as_bytes()
        .to_vec())
}

impl Witness {
    pub fn new(loaded: &LoadedConfig) -> anyhow::Result<Witness> {
        let audit = &loaded.config.audit;
        Ok(Witness {
            key: Arc::new(key(loaded)?),
            file: audit.checkpoint_file.clone(),
            webhook: audit.checkpoint_webhook.clone(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .context("building the checkpoint webhook client")?,
        })
    }

    /// Signs the current head and writes it everywhere configured. The log always gets it; a
    /// file or webhook that fails is reported and does not stop the others.
    pub async fn take(&self, store: &Store) -> anyhow::Result<Checkpoint> {
        let (seq, hash) = junction_store::audit::head(store).await?;
        let checkpoint = self.key.sign(seq, &hash, Utc::now().trunc_subsecs(6));
        let line = checkpoint.to_line();
        tracing::info!(target: "junction::audit", checkpoint = %line, "audit checkpoint");
        if let Some(file) = &self.file
            && let Err(e) = append(file, &line)
        {
            tracing::error!(file = %file.display(), error = %e, "could not write the audit checkpoint");
        }
        if let Some(url) = &self.webhook {
            let sent = self
                .client
                .post(url)
                .header("content-type", "application/json")
                .body(line.clone())
                .send()
                .await
                .and_then(|r| r.error_for_status());
            if let Err(e) = sent {
                tracing::error!(error = %e, "could not send the audit checkpoint to its witness");
            }
        }
        Ok(checkpoint)
    }

    /// Checkpoints every `every` while the head moves, until `closing` turns true; then once
    /// more, so the last records a stopping process wrote are vouched for.
    pub fn spawn(
        self,
        store: Store,
        every: Duration,
        mut closing: tokio::sync::watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut last: Option<i64> = None;
            loop {
                let stopping = tokio::select! {
                    _ = tokio::time::sleep(every) => false,
                    _ = closing.changed() => true,
                };
                match junction_store::audit::head(&store).await {
                    Ok((seq, _)) if last == Some(seq) => {}
                    Ok((seq, _)) => match self.take(&store).await {
                        Ok(_) => last = Some(seq),
                        Err(e) => tracing::error!(error = %e, "audit checkpoint failed"),
                    },
                    Err(e) => tracing::error!(error = %e, "reading the audit head failed"),
                }
                if stopping || *closing.borrow() {
                    return;
                }
            }
        })
    }
}

/// Adds `line` to `file`, created owner-only, and waits until it is on disk.
fn append(file: &Path, line: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(file)?;
    f.write_all(format!("{line}\n").as_bytes())?;
    f.sync_data()
}

/// Reads a checkpoint: a file of checkpoint lines (the last one counts), or one line of JSON.
pub fn read(source: &str) -> anyhow::Result<Checkpoint> {
    let text = if source.trim_start().starts_with('{') {
        source.to_string()
    } else {
        std::fs::read_to_string(source).with_context(|| format!("reading {source}"))?
    };
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .with_context(|| format!("{source} holds no checkpoint"))?;
    serde_json::from_str(line).with_context(|| format!("{source}: not a checkpoint"))
}
