//! Request arguments from a query string, a form body or a multipart body, as one multi-map.
//!
//! An empty value counts as absent (FixMyStreet sends `api_key=` on update polls and
//! `jurisdiction_id=` when it has none), and repeated keys are kept in order
//! (`attribute[x]` for multi-value lists, `media_url`).

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::header;
use junction_domain::{NewAttachment, RefusedFile};

use super::uploads::UploadLimits;

/// Arguments in arrival order, the files of a multipart body (FixMyStreet's `photo1..N` when it
/// uploads photos rather than sending `media_url`), and the files set aside as over a limit.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>, Vec<NewAttachment>, Vec<RefusedFile>);

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// The body is over the request limit, in bytes.
    TooLarge(u64),
    /// A file is over its limit and the configuration says not to take the request without it.
    FileRefused(String),
    Malformed(String),
}

impl Params {
    /// Reads a query string. A name or value whose percent-encoding is not UTF-8 is refused,
    /// naming it, rather than silently replaced.
    pub fn from_query(query: Option<&str>) -> Result<Params, BodyError> {
        Params::from_urlencoded(query.unwrap_or("").as_bytes())
    }

    fn from_urlencoded(bytes: &[u8]) -> Result<Params, BodyError> {
        let mut out = Vec::new();
        for pair in bytes.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &pair[..0]),
            };
            let name = decode(name).ok_or_else(|| {
                BodyError::Malformed("a parameter name is not UTF-8 once decoded".into())
            })?;
            let value = decode(value).ok_or_else(|| {
                BodyError::Malformed(format!("{name}: is not UTF-8 once decoded"))
            })?;
            out.push((name, value));
        }
        Ok(Params(out, Vec::new(), Vec::new()))
    }

    /// Reads a POST body: `application/x-www-form-urlencoded` or `multipart/form-data`.
    /// Query-string arguments are kept too (some clients put `jurisdiction_id` there), after
    /// the body's. File parts are kept apart, as files.
    pub async fn from_request(request: Request, limits: UploadLimits) -> Result<Params, BodyError> {
        let query = Params::from_query(request.uri().query())?;
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let mut params = if content_type.starts_with("multipart/form-data") {
            let parts = super::uploads::read(request, limits).await?;
            Params(parts.fields, parts.files, parts.refused)
        } else if content_type.is_empty()
            || content_type.starts_with("application/x-www-form-urlencoded")
        {
            let body = axum::body::to_bytes(request.into_body(), limits.request_bytes as usize)
                .await
                .map_err(|_| BodyError::TooLarge(limits.request_bytes))?;
            check_utf8(&body)?;
            Params::from_urlencoded(&body)?
        } else {
            return Err(BodyError::Malformed(format!(
                "content type `{content_type}` is not supported; send \
                 application/x-www-form-urlencoded or multipart/form-data"
            )));
        };
        params.0.extend(query.0);
        Ok(params)
    }

    /// The files the body carried.
    pub fn files(&self) -> &[NewAttachment] {
        &self.1
    }

    /// The files set aside, each with the reason.
    pub fn refused_files(&self) -> &[RefusedFile] {
        &self.2
    }

    /// The first non-empty value of `name`, trimmed.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .find(|v| !v.is_empty())
    }

    /// Every non-empty value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// Every `media_url` sent, in order (FixMyStreet repeats it with `multi_photos`).
    pub fn media_urls(&self) -> Vec<String> {
        self.all("media_url")
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    /// Every `attribute[code]` value, grouped by code, in first-seen order. Empty values
    /// count as absent.
    pub fn attributes(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for (k, v) in &self.0 {
            let Some(code) = k
                .strip_prefix("attribute[")
                .and_then(|r| r.strip_suffix(']'))
            else {
                continue;
            };
            let v = v.trim();
            let slot = match out.iter().position(|(c, _)| c == code) {
                Some(i) => &mut out[i].1,
                None => {
                    out.push((code.to_string(), Vec::new()));
                    &mut out.last_mut().expect("just pushed").1
                }
            };
            if !v.is_empty() {
                slot.push(v.to_string());
            }
        }
        out
    }

    /// The arguments, for hashing into the audit record.
    pub fn digest_input(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    }
}

fn check_utf8(body: &Bytes) -> Result<(), BodyError> {
    // Percent-decoding replaces invalid sequences silently; a body that is not even ASCII-safe
    // text is refused instead.
    std::str::from_utf8(body)
        .map(|_| ())
        .map_err(|_| BodyError::Malformed("the form body is not UTF-8".into()))
}

/// Form decoding: `+` is a space and `%XX` a byte; the bytes must be UTF-8. A `%` not
/// followed by two hex digits stands for itself, as browsers send it.
fn decode(raw: &[u8]) -> Option<String> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => bytes.push(b' '),
            b'%' if i + 2 < raw.len() && hex(raw[i + 1]).is_some() && hex(raw[i + 2]).is_some() => {
                bytes.push(hex(raw[i + 1])? * 16 + hex(raw[i + 2])?);
                i += 2;
            }
            b => bytes.push(b),
        }
        i += 1;
    }
    String::from_utf8(bytes).ok()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_that_is_not_utf8_is_refused_naming_the_parameter() {
        let p = Params::from_query(Some("description=caf%C3%A9+open&x=50%25&y=%zz")).unwrap();
        assert_eq!(p.get("description"), Some("café open"));
        assert_eq!(p.get("x"), Some("50%"));
        assert_eq!(p.get("y"), Some("%zz"));
        match Params::from_query(Some("jurisdiction_id=b&description=%FF%FE")) {
            Err(BodyError::Malformed(why)) => assert!(why.starts_with("description:"), "{why}"),
            _ => panic!("invalid UTF-8 accepted"),
        }
    }

    #[test]
    fn empty_values_count_as_absent_and_repeats_are_kept() {
        let p = Params::from_query(Some(
            "api_key=&jurisdiction_id=&attribute[hazards]=a&attribute[hazards]=b&attribute[x]=&media_url=u1&media_url=u2",
        )).unwrap();
        assert_eq!(p.get("api_key"), None);
        assert_eq!(p.get("jurisdiction_id"), None);
        assert_eq!(p.all("media_url"), ["u1", "u2"]);
        assert_eq!(
            p.attributes(),
            vec![
                (
                    "hazards".to_string(),
                    vec!["a".to_string(), "b".to_string()]
                ),
                ("x".to_string(), vec![])
            ]
        );
    }
}
