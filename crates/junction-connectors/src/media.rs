//! Fetching a front-end's photo by its address, for back-ends that cannot reach the front-end:
//! only from the hosts the configuration allows, never from private, loopback or link-local
//! addresses (checked on the address actually connected to), no redirects, only JPEG, PNG,
//! GIF and WebP images (by their bytes, not their label), bounded in size and time.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where photos may be fetched from, and how much of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MediaFetchParams {
    /// Hosts photos may be fetched from: exact names, or `*.example.org` for its subdomains.
    /// Empty: nothing is fetched.
    pub hosts: Vec<String>,
    /// The largest photo fetched, in bytes.
    pub max_bytes: u64,
    /// How long one fetch may take, in seconds.
    pub timeout_secs: u64,
    /// Also fetch from private, loopback and link-local addresses. Only for a development
    /// machine whose front-end runs beside Junction.
    pub allow_private_addresses: bool,
}

impl Default for MediaFetchParams {
    fn default() -> Self {
        MediaFetchParams {
            hosts: Vec::new(),
            max_bytes: 10 << 20,
            timeout_secs: 20,
            allow_private_addresses: false,
        }
    }
}

/// A fetched photo.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    pub content_type: &'static str,
    pub data: Vec<u8>,
}

/// Fetches photos under [`MediaFetchParams`].
#[derive(Debug, Clone)]
pub struct MediaFetcher {
    params: MediaFetchParams,
}

impl MediaFetcher {
    pub fn new(params: MediaFetchParams) -> MediaFetcher {
        MediaFetcher { params }
    }

    /// Whether `host` is one photos may be fetched from.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.params.hosts.iter().any(|h| {
            let h = h.to_ascii_lowercase();
            match h.strip_prefix("*.") {
                Some(domain) => host.ends_with(&format!(".{domain}")),
                None => host == h,
            }
        })
    }

    /// The photo at `url`, or why it was not fetched.
    pub async fn fetch(&self, url: &str) -> Result<Fetched, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("only http and https addresses are fetched".into());
        }
        let host = parsed
            .host_str()
            .ok_or("the address has no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if !self.allows(&host) {
            return Err(format!(
                "host `{host}` is not one photos may be fetched from"
            ));
        }
        let limit = Duration::from_secs(self.params.timeout_secs.max(1));
        let port = parsed.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> =
            tokio::time::timeout(limit, tokio::net::lookup_host((host.as_str(), port)))
                .await
                .map_err(|_| format!("looking up `{host}` timed out"))?
                .map_err(|e| format!("looking up `{host}`: {e}"))?
                .collect();
        let addr = *addrs
            .first()
            .ok_or_else(|| format!("`{host}` has no address"))?;
        if !self.params.allow_private_addresses
            && let Some(private) = addrs.iter().find(|a| !is_public(a.ip()))
        {
            return Err(format!(
                "`{host}` resolves to {}, a private address",
                private.ip()
            ));
        }
        // Connect to the address just checked, so a second lookup cannot lead elsewhere.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(limit)
            .connect_timeout(limit)
            .resolve(&host, addr)
            .user_agent(concat!("Junction/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        let mut resp = client
            .get(parsed)
            .send()
            .await
            .map_err(|e| format!("fetching: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("answered HTTP {}", resp.status().as_u16()));
        }
        let max = self.params.max_bytes;
        if resp.content_length().is_some_and(|n| n > max) {
            return Err(format!("larger than {max} bytes"));
        }
        let mut data = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| format!("reading: {e}"))? {
            data.extend_from_slice(&chunk);
            if data.len() as u64 > max {
                return Err(format!("larger than {max} bytes"));
            }
        }
        let content_type = image_type(&data).ok_or("not a JPEG, PNG, GIF or WebP image")?;
        Ok(Fetched { content_type, data })
    }
}

/// The image type `data` really is, by its first bytes.
pub fn image_type(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if data.len() >= 12 && &data[..4] == b"RIFF" && &data[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// Whether `ip` is on the public internet: not private, loopback, link-local, shared
/// (carrier-grade NAT), documentation, multicast, reserved or unspecified.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let [first, second, ..] = a.octets();
            !(a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_broadcast()
                || a.is_documentation()
                || a.is_unspecified()
                || a.is_multicast()
                || first == 0
                || first >= 240
                || (first == 100 && (second & 0xC0) == 64))
        }
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let head = a.segments()[0];
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (head & 0xFE00) == 0xFC00
                || (head & 0xFFC0) == 0xFE80
                || head == 0x2001 && a.segments()[1] == 0x0DB8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_link_local_and_shared_addresses_are_not_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "2001:db8::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["81.2.69.160", "2a00:1450:4009:81f::200e"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn only_listed_hosts_and_their_subdomains_when_starred() {
        let f = MediaFetcher::new(MediaFetchParams {
            hosts: vec!["www.fixmystreet.com".into(), "*.council.gov.uk".into()],
            ..MediaFetchParams::default()
        });
        assert!(f.allows("www.fixmystreet.com"));
        assert!(f.allows("WWW.FixMyStreet.com."));
        assert!(f.allows("photos.council.gov.uk"));
        assert!(!f.allows("council.gov.uk"));
        assert!(!f.allows("fixmystreet.com"));
        assert!(!f.allows("www.fixmystreet.com.evil.example"));
        assert!(!f.allows("evilcouncil.gov.uk"));
    }

    #[test]
    fn images_are_known_by_their_bytes() {
        assert_eq!(image_type(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(image_type(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(image_type(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(image_type(b"<html><body>not found"), None);
    }
}
