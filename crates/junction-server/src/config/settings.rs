//! The process's own settings, checked: `[server]`, `[telemetry]`, `[limits]`, `[media]`,
//! `[auth]` and `[audit]`.

use std::net::SocketAddr;

use super::locate::KeyPath;
use super::model::Config;
use super::validate::Problems;

/// Checks every setting that is not part of the catalogue.
pub(super) fn check(config: &Config, p: &mut Problems) {
    server(config, p);
    limits(config, p);
    media(config, p);
    auth(config, p);
    audit(config, p);
}

fn server(config: &Config, p: &mut Problems) {
    if config.server.listen.parse::<SocketAddr>().is_err() {
        p.push(
            KeyPath::root("server").key("listen"),
            format!(
                "`{}` is not an address such as 127.0.0.1:8080",
                config.server.listen
            ),
        );
    }
    if let Some(tls) = &config.server.tls {
        for (name, file) in [("cert", &tls.cert), ("key", &tls.key)] {
            if !file.is_file() {
                p.push(
                    KeyPath::root("server").key("tls").key(name),
                    format!("file `{}` does not exist", file.display()),
                );
            }
        }
    }
    if !matches!(config.telemetry.log_format.as_str(), "text" | "json") {
        p.push(
            KeyPath::root("telemetry").key("log_format"),
            "must be `text` or `json`",
        );
    }
    let server = &config.server;
    for (name, value) in [
        ("header_timeout_secs", server.header_timeout_secs),
        ("body_timeout_secs", server.body_timeout_secs),
        ("max_connections", server.max_connections as u64),
    ] {
        if value == 0 {
            p.push(KeyPath::root("server").key(name), "must be greater than 0");
        }
    }
}

fn limits(config: &Config, p: &mut Problems) {
    let limits = &config.limits;
    for (name, value) in [
        ("max_body_bytes", limits.max_body_bytes as u64),
        ("max_depth", limits.max_depth as u64),
        ("max_complexity", limits.max_complexity as u64),
        ("max_page_size", limits.max_page_size),
        ("max_query_secs", limits.max_query_secs),
        ("max_upload_file_bytes", limits.max_upload_file_bytes),
        ("max_upload_request_bytes", limits.max_upload_request_bytes),
        ("max_description_chars", limits.max_description_chars as u64),
    ] {
        if value == 0 {
            p.push(KeyPath::root("limits").key(name), "must be greater than 0");
        }
    }
    if limits.max_upload_file_bytes > limits.max_upload_request_bytes {
        p.push(
            KeyPath::root("limits").key("max_upload_file_bytes"),
            format!(
                "is larger than max_upload_request_bytes ({}): no request could carry such a file",
                limits.max_upload_request_bytes
            ),
        );
    }
}

fn media(config: &Config, p: &mut Problems) {
    let media = &config.media;
    for (i, host) in media.hosts.iter().enumerate() {
        let name = host.strip_prefix("*.").unwrap_or(host);
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
        {
            p.push(
                KeyPath::root("media").key("hosts").index(i),
                "must be a host name (`photos.example.org`, or `*.example.org` for its subdomains), without a scheme or path",
            );
        }
    }
    for (name, value) in [
        ("max_bytes", media.max_bytes),
        ("timeout_secs", media.timeout_secs),
    ] {
        if value == 0 {
            p.push(KeyPath::root("media").key(name), "must be greater than 0");
        }
    }
}

fn auth(config: &Config, p: &mut Problems) {
    let auth = &config.auth;
    let at = KeyPath::root("auth");
    let known = ["HS256", "RS256", "ES256", "EdDSA"];
    for (i, a) in auth.algorithms.iter().enumerate() {
        if !known.contains(&a.as_str()) {
            p.push(
                at.key("algorithms").index(i),
                format!("`{a}` is not one of: {}", known.join(", ")),
            );
        }
    }
    let shared = auth.algorithms.iter().any(|a| a == "HS256");
    if auth.algorithms.is_empty() {
        p.push(at.key("algorithms"), "at least one algorithm is required");
    } else if shared && auth.algorithms.len() > 1 {
        p.push(
            at.key("algorithms"),
            "HS256 cannot be mixed with public-key algorithms",
        );
    }
    if shared && auth.jwks_file.is_some() {
        p.push(
            at.key("jwks_file"),
            "a JWKS file holds public keys; HS256 uses `secret`",
        );
    }
    if !shared && !auth.algorithms.is_empty() && auth.jwks_file.is_none() {
        p.push(
            at.key("jwks_file"),
            "public-key algorithms need a JWKS file",
        );
    }
    if let Some(file) = &auth.jwks_file
        && !file.is_file()
    {
        p.push(
            at.key("jwks_file"),
            format!("file `{}` does not exist", file.display()),
        );
    }
    if let Some(secret) = &auth.secret {
        if !shared {
            p.push(at.key("secret"), "a shared secret is used only with HS256");
        }
        match secret.resolve() {
            Ok(v) if v.expose().len() < 32 => {
                p.push(at.key("secret"), "the secret must be at least 32 bytes")
            }
            Ok(_) => {}
            Err(why) => p.push(at.key("secret"), why),
        }
    }
    if auth.issuer.trim().is_empty() {
        p.push(at.key("issuer"), "is required");
    }
    if auth.audience.trim().is_empty() {
        p.push(at.key("audience"), "is required");
    }
    for (name, value) in [
        ("max_token_lifetime_secs", auth.max_token_lifetime_secs),
        ("revocation_poll_secs", auth.revocation_poll_secs),
    ] {
        if value == 0 {
            p.push(at.key(name), "must be greater than 0");
        }
    }
}

fn audit(config: &Config, p: &mut Problems) {
    let audit = &config.audit;
    let at = KeyPath::root("audit");
    if let Some(secret) = &audit.checkpoint_secret {
        match secret.resolve() {
            Ok(v) if v.expose().len() < 32 => p.push(
                at.key("checkpoint_secret"),
                "the secret must be at least 32 bytes",
            ),
            Ok(_) => {}
            Err(why) => p.push(at.key("checkpoint_secret"), why),
        }
    }
    if let Some(url) = &audit.checkpoint_webhook
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        p.push(
            at.key("checkpoint_webhook"),
            "must be an http:// or https:// URL",
        );
    }
    if let Some(file) = &audit.checkpoint_file
        && file
            .parent()
            .is_some_and(|d| !d.as_os_str().is_empty() && !d.is_dir())
    {
        p.push(
            at.key("checkpoint_file"),
            format!(
                "its directory `{}` does not exist",
                file.parent().unwrap_or(file).display()
            ),
        );
    }
}
