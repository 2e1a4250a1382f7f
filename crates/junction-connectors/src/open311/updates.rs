//! Reading a back-end's updates: `GET servicerequestupdates.xml` over a window, every page of
//! it where the back-end pages, each `<request_update>` read as FixMyStreet reads it.
//!
//! An update without an id, a reference (or our id) or a readable time is skipped and named in
//! the log, never guessed at; an answer that is not an Open311 update list (an HTML error page
//! with status 200, a login page) is an error, not an empty list, so a broken back-end shows
//! on the schedule's health rather than as a quiet day.

use chrono::{DateTime, Utc};

use crate::ConnectorError;
use crate::capabilities::{InboundUpdate, PollUpdates, Window};
use crate::error::from_reqwest;
use crate::xml::{self, Element};

use super::Open311;

/// The most of one answer read.
pub const MAX_UPDATES_BYTES: usize = 16 << 20;

/// The most pages read in one poll, so a back-end that ignores the page parameter (and
/// answers every page with the same full list) cannot keep a poll going for ever.
pub const MAX_PAGES: u32 = 500;

fn w3c(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Reads a body of at most `max` bytes.
pub(crate) async fn read_bounded(
    mut resp: reqwest::Response,
    max: usize,
    what: &str,
) -> Result<Vec<u8>, ConnectorError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| from_reqwest(&e, what))? {
        if body.len() + chunk.len() > max {
            return Err(ConnectorError::transient(format!(
                "{what}: the answer is larger than {max} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Reads one answer: the updates it lists, and how many `<request_update>`s it held (skipped
/// ones included, for paging).
pub fn parse_updates(
    body: &str,
    id_attribute: &str,
) -> Result<(Vec<InboundUpdate>, usize), String> {
    let root = xml::parse(body).map_err(|why| {
        let start: String = body.trim_start().chars().take(80).collect();
        format!("the answer is not Open311 XML ({why}): {start:?}")
    })?;
    if root.name == "errors" {
        return Err(format!(
            "the back-end answered with errors: {}",
            super::describe_errors(body)
        ));
    }
    // FixMyStreet's own spelling is `service_requests_updates`; servers differ.
    if !root.name.starts_with("service_request") || !root.name.ends_with("updates") {
        return Err(format!(
            "the answer is not an update list (<{}>)",
            root.name
        ));
    }
    let all: Vec<&Element> = root.children("request_update").collect();
    let mut updates = Vec::with_capacity(all.len());
    for (i, u) in all.iter().enumerate() {
        match read_update(u, id_attribute) {
            Ok(update) => updates.push(update),
            Err(why) => tracing::warn!(position = i + 1, %why, "an update was skipped"),
        }
    }
    Ok((updates, all.len()))
}

fn read_update(u: &Element, id_attribute: &str) -> Result<InboundUpdate, String> {
    let update_id = u
        .text_of("update_id")
        .ok_or("it has no update_id")?
        .to_string();
    let external_ref = u.text_of("service_request_id").unwrap_or("").to_string();
    let our_id = u.text_of(id_attribute).map(str::to_string);
    if external_ref.is_empty() && our_id.is_none() {
        return Err(format!(
            "update {update_id} names no service_request_id or {id_attribute}"
        ));
    }
    let when = u
        .text_of("updated_datetime")
        .ok_or_else(|| format!("update {update_id} has no updated_datetime"))?;
    let updated_at = DateTime::parse_from_rfc3339(when)
        .map_err(|e| format!("update {update_id}: updated_datetime `{when}`: {e}"))?
        .with_timezone(&Utc);
    // `<media_url>` is a URL, or (in some servers) a list of them.
    let media_urls = u
        .children("media_url")
        .flat_map(|m| {
            if m.children.is_empty() {
                vec![m.text.clone()]
            } else {
                m.children("media_url").map(|c| c.text.clone()).collect()
            }
        })
        .filter(|s| !s.is_empty())
        .collect();
    Ok(InboundUpdate {
        update_id,
        external_ref,
        our_id,
        status: u.text_of("status").map(str::to_string),
        external_status_code: u.text_of("external_status_code").map(str::to_string),
        description: u.text_of("description").unwrap_or("").to_string(),
        media_urls,
        updated_at,
    })
}

impl Open311 {
    async fn updates_page(
        &self,
        window: Window,
        page: Option<u32>,
    ) -> Result<(Vec<InboundUpdate>, usize), ConnectorError> {
        let mut query = vec![
            ("api_key", self.api_key.clone()),
            ("start_date", w3c(window.from)),
            ("end_date", w3c(window.to)),
        ];
        if let Some(j) = &self.params.jurisdiction_id {
            query.push(("jurisdiction_id", j.clone()));
        }
        if let (Some(n), Some(paging)) = (page, &self.params.updates_paging) {
            query.push(("page", n.to_string()));
            query.push(("page_size", paging.page_size.to_string()));
        }
        let what = "reading servicerequestupdates.xml";
        let resp = self
            .client
            .get(format!("{}servicerequestupdates.xml", self.endpoint))
            .query(&query)
            .send()
            .await
            .map_err(|e| from_reqwest(&e, what))?;
        let status = resp.status();
        let body = read_bounded(resp, MAX_UPDATES_BYTES, what).await?;
        let text = String::from_utf8_lossy(&body);
        if !status.is_success() {
            let e = ConnectorError::transient(format!(
                "{what}: HTTP {}: {}",
                status.as_u16(),
                super::describe_errors(&text)
            ));
            return Err(e.with_response(text.chars().take(2000).collect::<String>()));
        }
        parse_updates(&text, &self.params.id_attribute).map_err(|why| {
            ConnectorError::transient(format!("{what}: {why}"))
                .with_response(text.chars().take(2000).collect::<String>())
        })
    }
}

#[async_trait::async_trait]
impl PollUpdates for Open311 {
    async fn poll_updates(&self, window: Window) -> Result<Vec<InboundUpdate>, ConnectorError> {
        let Some(paging) = &self.params.updates_paging else {
            return Ok(self.updates_page(window, None).await?.0);
        };
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let (updates, listed) = self.updates_page(window, Some(page)).await?;
            // A back-end that ignores the page parameter sends page 1 again: stop at a repeat.
            let repeat = !updates.is_empty()
                && all
                    .iter()
                    .any(|u: &InboundUpdate| u.update_id == updates[0].update_id);
            if repeat {
                break;
            }
            all.extend(updates);
            if listed < paging.page_size {
                return Ok(all);
            }
        }
        tracing::warn!(
            endpoint = %self.endpoint,
            pages = MAX_PAGES,
            "update paging stopped at the page limit or at a repeated page"
        );
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FMS_ID: &str = include_str!(
        "../../../../tests/fixtures/fixmystreet/get_servicerequestupdates.response.fixmystreet_id.xml"
    );
    const MEDIA: &str = include_str!(
        "../../../../tests/fixtures/fixmystreet/get_servicerequestupdates.response.extras_media_customer_ref.xml"
    );

    #[test]
    fn reads_updates_as_fixmystreet_does_and_skips_those_it_cannot_place() {
        let (updates, listed) = parse_updates(FMS_ID, "fixmystreet_id").unwrap();
        assert_eq!(listed, 3);
        assert_eq!(updates.len(), 3);
        assert_eq!(updates[0].update_id, "638344");
        assert_eq!(updates[0].external_ref, "8888888888888");
        assert_eq!(updates[0].our_id.as_deref(), Some("42"));
        assert_eq!(updates[2].external_ref, "");
        assert_eq!(updates[2].status.as_deref(), Some("investigating"));
        assert_eq!(
            updates[2].updated_at.to_rfc3339(),
            "2026-12-08T10:05:00+00:00"
        );
    }

    #[test]
    fn nested_media_urls_and_upper_case_statuses_are_read() {
        let (updates, _) = parse_updates(MEDIA, "junction_id").unwrap();
        assert_eq!(
            updates[0].media_urls,
            [
                "http://example.com/image.jpeg",
                "http://example.com/image-exif.jpeg"
            ]
        );
        assert_eq!(updates[0].status.as_deref(), Some("IN_PROGRESS"));
        assert_eq!(updates[0].description, "");
    }

    #[test]
    fn an_html_page_or_an_error_list_is_an_error_not_an_empty_day() {
        let html = "<!DOCTYPE html><html><body><h1>Service Unavailable</h1></body></html>";
        assert!(parse_updates(html, "junction_id").is_err());
        let errors =
            "<errors><error><code>403</code><description>bad key</description></error></errors>";
        let why = parse_updates(errors, "junction_id").unwrap_err();
        assert!(why.contains("bad key"), "{why}");
        let requests = "<service_requests><request/></service_requests>";
        assert!(parse_updates(requests, "junction_id").is_err());
        let empty = "<service_requests_updates></service_requests_updates>";
        assert_eq!(parse_updates(empty, "junction_id").unwrap().1, 0);
    }

    #[test]
    fn an_update_without_id_place_or_time_is_skipped_alone() {
        let body = "<service_requests_updates>\
            <request_update><service_request_id>A</service_request_id><updated_datetime>2026-12-08T10:00:00Z</updated_datetime></request_update>\
            <request_update><update_id>2</update_id><updated_datetime>2026-12-08T10:00:00Z</updated_datetime></request_update>\
            <request_update><update_id>3</update_id><service_request_id>A</service_request_id><updated_datetime>yesterday</updated_datetime></request_update>\
            <request_update><update_id>4</update_id><service_request_id>A</service_request_id><updated_datetime>2026-12-08T10:00:00+01:00</updated_datetime></request_update>\
            </service_requests_updates>";
        let (updates, listed) = parse_updates(body, "junction_id").unwrap();
        assert_eq!(listed, 4);
        assert_eq!(updates.len(), 1);
        assert_eq!(updates[0].update_id, "4");
        assert_eq!(
            updates[0].updated_at.to_rfc3339(),
            "2026-12-08T09:00:00+00:00"
        );
    }
}
