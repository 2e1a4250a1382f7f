//! The signing secret Junction makes for itself on first start when none is configured.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rand::RngCore;

/// The file the generated secret lives in.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("junction.secret")
}

/// Reads the token signing secret in `data_dir`, creating it when missing.
pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    load_or_create_at(&path(data_dir), "token signing secret")
}

/// Reads the secret in `file`, if there is one.
pub fn load_at(file: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Ok(None);
    };
    let secret = text.trim().as_bytes().to_vec();
    anyhow::ensure!(
        secret.len() >= 32,
        "{} is shorter than 32 bytes; delete it to have a new one made",
        file.display()
    );
    Ok(Some(secret))
}

/// Reads the secret in `file`, creating it and its directory (64 random bytes, hex, mode
/// 0600) when missing; `what` names it in the log.
pub fn load_or_create_at(file: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    let file = file.to_path_buf();
    let data_dir = file.parent().unwrap_or(Path::new("."));
    if let Some(secret) = load_at(&file)? {
        return Ok(secret);
    }
    create_private_dir(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let mut bytes = [0u8; 64];
    rand::rng().fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(&file) {
        Ok(mut f) => {
            f.write_all(secret.as_bytes())?;
            f.sync_all()?;
            tracing::info!(file = %file.display(), "created a new {what}");
            Ok(secret.into_bytes())
        }
        // Another process made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create_at(&file, what),
        Err(e) => Err(e).with_context(|| format!("creating {}", file.display())),
    }
}

/// Creates `dir` (and any missing parents) readable by its owner only, when it does not exist;
/// an existing directory keeps the permissions it has.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}
