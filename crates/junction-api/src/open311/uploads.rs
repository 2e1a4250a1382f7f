//! Multipart bodies: the fields of a report and the files that come with it, read within the
//! configured upload limits.
//!
//! A file over the per-file limit (or past the number of files one request may carry) is read
//! through and set aside as a [`RefusedFile`], so the report it came with is still taken in and
//! the refusal is recorded on the case; only when the configuration says files must not be
//! dropped is the whole request refused. A body over the per-request limit is refused, naming
//! that limit.

use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::StatusCode;
use junction_domain::{NewAttachment, RefusedFile};

use super::params::BodyError;

/// Files one request may carry; any more are set aside like oversized ones.
pub const MAX_FILES: usize = 20;

/// How much an Open311 request may upload (`[limits]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    /// Largest file kept (`max_upload_file_bytes`).
    pub file_bytes: u64,
    /// Largest request body read (`max_upload_request_bytes`); over it the request is refused.
    pub request_bytes: u64,
    /// Refuse the whole request when a file is set aside (`refuse_oversized_uploads`),
    /// instead of taking the report in without it.
    pub refuse_oversized: bool,
}

impl Default for UploadLimits {
    /// Phone photos fit: 20 MiB a file, 64 MiB a request.
    fn default() -> Self {
        UploadLimits {
            file_bytes: 20 * 1024 * 1024,
            request_bytes: 64 * 1024 * 1024,
            refuse_oversized: false,
        }
    }
}

/// What a multipart body held.
#[derive(Debug, Default)]
pub struct Multiparts {
    pub fields: Vec<(String, String)>,
    pub files: Vec<NewAttachment>,
    pub refused: Vec<RefusedFile>,
}

/// Reads a `multipart/form-data` request within `limits`.
pub async fn read(request: Request, limits: UploadLimits) -> Result<Multiparts, BodyError> {
    // The whole body is read before it is parsed: a refusal of a malformed body then leaves
    // nothing unread on the connection, which would otherwise be reset under the answer and
    // the client would never see the error. The request limit bounds what is held.
    let (parts, body) = request.into_parts();
    let limit = usize::try_from(limits.request_bytes).unwrap_or(usize::MAX);
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| BodyError::TooLarge(limits.request_bytes))?;
    let request = Request::from_parts(parts, axum::body::Body::from(bytes));
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| BodyError::Malformed(e.body_text()))?;
    let mut out = Multiparts::default();
    let mut total = 0u64;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(body_error(e, limits)),
        };
        let name = field.name().unwrap_or("").to_string();
        let file_name = field.file_name().map(base_name);
        let content_type = field
            .content_type()
            .unwrap_or("application/octet-stream")
            .to_string();
        let keep_up_to = match &file_name {
            Some(_) if out.files.len() == MAX_FILES => 0,
            Some(_) => limits.file_bytes,
            // A text field is never set aside: the request limit bounds it.
            None => limits.request_bytes,
        };
        let (data, seen) = read_field(field, keep_up_to, &mut total, limits).await?;
        let Some(file_name) = file_name else {
            let value = String::from_utf8(data.unwrap_or_default()).map_err(|_| {
                BodyError::Malformed(format!("multipart field `{name}` is not UTF-8"))
            })?;
            out.fields.push((name, value));
            continue;
        };
        match data {
            Some(data) if data.is_empty() => {}
            Some(data) => out.files.push(NewAttachment {
                part: name,
                file_name,
                content_type,
                data,
            }),
            None => {
                let reason = if out.files.len() == MAX_FILES {
                    format!("more than {MAX_FILES} files in one request")
                } else {
                    format!(
                        "larger than {} bytes, the limit per file (max_upload_file_bytes)",
                        limits.file_bytes
                    )
                };
                if limits.refuse_oversized {
                    return Err(BodyError::FileRefused(format!(
                        "file `{file_name}` in part `{name}` is {reason}"
                    )));
                }
                out.refused.push(RefusedFile {
                    part: name,
                    file_name,
                    content_type,
                    size_at_least: seen,
                    reason,
                });
            }
        }
    }
    Ok(out)
}

/// Reads one part. Keeps its bytes while they fit in `keep_up_to`; past that, reads on without
/// keeping them (`None`), so the parts after it are still read. Every byte counts against the
/// request limit. Answers the bytes kept and how many were seen.
async fn read_field(
    mut field: Field<'_>,
    keep_up_to: u64,
    total: &mut u64,
    limits: UploadLimits,
) -> Result<(Option<Vec<u8>>, u64), BodyError> {
    let mut kept = Some(Vec::new());
    let mut seen = 0u64;
    while let Some(chunk) = field.chunk().await.map_err(|e| body_error(e, limits))? {
        seen += chunk.len() as u64;
        *total += chunk.len() as u64;
        if *total > limits.request_bytes {
            return Err(BodyError::TooLarge(limits.request_bytes));
        }
        if seen > keep_up_to {
            kept = None;
        }
        if let Some(buffer) = &mut kept {
            buffer.extend_from_slice(&chunk);
        }
    }
    Ok((kept, seen))
}

fn body_error(e: MultipartError, limits: UploadLimits) -> BodyError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        BodyError::TooLarge(limits.request_bytes)
    } else {
        BodyError::Malformed(e.body_text())
    }
}

/// A file name without any directory a client put in front of it, at most 255 characters.
fn base_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name).trim();
    let base = if base.is_empty() { "file" } else { base };
    base.chars().take(255).collect()
}
