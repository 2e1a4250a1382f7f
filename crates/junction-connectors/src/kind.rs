//! What every connector kind provides, from its own folder: its parameters, how they are
//! checked, which of them are secrets, and how a configured connector and its capabilities
//! are built from them. The
//! table of kinds in `params.rs` names each kind once.

use crate::Capabilities;

/// A kind's parameters (`<kind>/params.rs`): documented fields, read only through
/// [`crate::ConnectorParams::parse`], which reports every unknown key.
pub trait KindParams: serde::de::DeserializeOwned + std::fmt::Debug + Clone + PartialEq {
    /// How long one call to the other system may take, in seconds.
    fn timeout_secs(&self) -> u64;

    /// Each secret parameter's name and its `${VAR}` reference.
    fn secret_refs(&self) -> Vec<(&'static str, &str)>;

    /// Problems a type cannot express (a bad URL, plain SMTP off loopback), as
    /// `(key, reason)`.
    fn check(&self) -> Vec<(&'static str, String)>;

    /// The connector these parameters describe, with the capabilities its kind offers;
    /// `secret` turns a `${VAR}` reference into its value.
    fn build(
        &self,
        secret: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<Capabilities, String>;
}

/// Whether `u` is an http:// or https:// URL, as every HTTP kind requires.
pub(crate) fn is_http_url(u: &str) -> bool {
    u.starts_with("https://") || u.starts_with("http://")
}

/// The HTTP client every HTTP kind uses: the connector's timeout for a whole call, 10 s to
/// connect, Junction's user agent, and no redirects. A redirect is an answer, not a place to
/// go: following it would turn a POST into a GET elsewhere and call that delivered.
pub(crate) fn http_client(timeout_secs: u64) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(timeout_secs.max(1)))
        .connect_timeout(std::time::Duration::from_secs(10))
        .user_agent(concat!("Junction/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())
}
