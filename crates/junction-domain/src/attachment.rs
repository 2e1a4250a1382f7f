//! Files that arrive with a case: photos a front-end uploads with a report.

use chrono::{DateTime, Utc};

/// A file as it arrives, before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAttachment {
    /// The multipart part it came in (`photo1`, `file_plan`).
    pub part: String,
    pub file_name: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

/// A stored file's description; its bytes are read separately.
#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    pub id: i64,
    pub case_id: String,
    pub part: String,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
    pub created_at: DateTime<Utc>,
}

/// Content types served back as themselves; anything else is served as
/// `application/octet-stream`, so an uploaded file can never run as a page in a browser.
pub const SAFE_CONTENT_TYPES: [&str; 7] = [
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/heic",
    "image/heif",
    "application/pdf",
];

/// The content type to serve `declared` as.
pub fn served_content_type(declared: &str) -> &'static str {
    let base = declared
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    SAFE_CONTENT_TYPES
        .iter()
        .find(|t| **t == base)
        .copied()
        .unwrap_or("application/octet-stream")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_safe_types_are_served_as_themselves() {
        assert_eq!(served_content_type("image/JPEG"), "image/jpeg");
        assert_eq!(
            served_content_type("application/pdf; x=1"),
            "application/pdf"
        );
        assert_eq!(served_content_type("text/html"), "application/octet-stream");
        assert_eq!(
            served_content_type("image/svg+xml"),
            "application/octet-stream"
        );
        assert_eq!(served_content_type(""), "application/octet-stream");
    }
}

/// A file that arrived but was not kept, and why. It is recorded on the case (a
/// `file_refused` event), so a report is never lost for a photo and the refusal is never silent.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefusedFile {
    /// The multipart part it came in (`photo2`).
    pub part: String,
    pub file_name: String,
    pub content_type: String,
    /// Bytes received before the file was set aside: its size, or at least this much.
    pub size_at_least: u64,
    /// Why, in words a person can act on, naming the limit.
    pub reason: String,
}
