//! Proving what became of an unanswered attempt: `GET requests` by our id attribute, and the
//! rules by which its answer counts as proof.
//!
//! Council systems differ in what they honour: many ignore a filter they do not know (our id
//! attribute) and answer with every request in the window; some echo attributes, most do not;
//! some answer with an HTML error page, and some answer a lookup with someone else's request.
//! So an answer proves arrival only when exactly one request carries our id, exactly, and
//! proves absence only when it is an empty list: a list that holds other requests shows the
//! filter was not applied, and says nothing about whether it is complete. Everything else is
//! inconclusive.

use chrono::{DateTime, Utc};
use junction_domain::Finding;

use crate::xml::{self, Element};

/// The most of an answer read: anything longer is inconclusive.
pub const MAX_ANSWER_BYTES: usize = 2 << 20;

/// The most requests one answer may list before it is inconclusive whatever it holds.
pub const MAX_ANSWER_REQUESTS: usize = 10_000;

/// How far either side of the attempts the search window reaches, for clocks that disagree.
pub const WINDOW_MARGIN: chrono::Duration = chrono::Duration::hours(1);

/// The search window for a delivery first attempted at `first`: `start_date` and `end_date`.
pub fn window(first: Option<DateTime<Utc>>, now: DateTime<Utc>) -> (String, String) {
    let start = first.unwrap_or(now) - WINDOW_MARGIN;
    let end = now + WINDOW_MARGIN;
    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    (fmt(start), fmt(end))
}

/// Reads an answer to `GET requests.xml?<id_attribute>=<our_id>`: what it proves about the
/// case whose id is `our_id`.
pub fn judge(body: &str, id_attribute: &str, our_id: &str) -> Finding {
    let inconclusive = |why: String| Finding::Inconclusive(why);
    if body.len() > MAX_ANSWER_BYTES {
        return inconclusive(format!(
            "the answer is {} bytes, over the {MAX_ANSWER_BYTES} read",
            body.len()
        ));
    }
    let root = match xml::parse(body) {
        Ok(root) => root,
        Err(why) => {
            let start: String = body.chars().take(80).collect();
            return inconclusive(format!("the answer is not Open311 XML ({why}): {start:?}"));
        }
    };
    if root.name == "errors" {
        return inconclusive("the back-end answered with an error list".into());
    }
    let requests: Vec<&Element> = root.children("request").collect();
    // Absence is proved only by a well-formed list; arrival by any root holding our request.
    let a_list = root.name == "service_requests" && root.children.len() == requests.len();

    if requests.len() > MAX_ANSWER_REQUESTS {
        return inconclusive(format!(
            "the answer lists {} requests, more than the {MAX_ANSWER_REQUESTS} read",
            requests.len()
        ));
    }
    if requests.is_empty() {
        return if a_list {
            Finding::Absent
        } else {
            inconclusive(format!(
                "the answer is not a request list (<{}>)",
                root.name
            ))
        };
    }
    let ids: Vec<Option<&str>> = requests
        .iter()
        .map(|r| carried_id(r, id_attribute))
        .collect();
    let ours: Vec<&Element> = requests
        .iter()
        .zip(&ids)
        .filter(|(_, id)| **id == Some(our_id))
        .map(|(r, _)| *r)
        .collect();
    match ours.as_slice() {
        [one] => match one.text_of("service_request_id") {
            Some(reference) if reference != "0" => Finding::Arrived {
                reference: reference.to_string(),
            },
            _ => inconclusive("our request is listed without a usable service_request_id".into()),
        },
        [] if ids.iter().all(Option::is_none) => inconclusive(format!(
            "the back-end listed {} request(s) without showing `{id_attribute}`: it ignored \
             the filter or does not show the attribute",
            requests.len()
        )),
        [] => inconclusive(format!(
            "the back-end listed {} request(s), none ours: it did not apply the filter, so the \
             list proves nothing",
            requests.len()
        )),
        several => inconclusive(format!(
            "{} requests carry our id `{our_id}`: the back-end already holds duplicates",
            several.len()
        )),
    }
}

/// The value of `id_attribute` a listed request carries: as an element of that name, or under
/// `<attributes>` (as an element of that name, or an `<attribute>` with `code` and `value`).
fn carried_id<'a>(request: &'a Element, id_attribute: &str) -> Option<&'a str> {
    if let Some(v) = request.text_of(id_attribute) {
        return Some(v);
    }
    let attributes = request.child("attributes")?;
    if let Some(v) = attributes.text_of(id_attribute) {
        return Some(v);
    }
    attributes
        .children("attribute")
        .find(|a| a.text_of("code") == Some(id_attribute))
        .and_then(|a| a.text_of("value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(items: &[(&str, Option<&str>)]) -> String {
        let body: String = items
            .iter()
            .map(|(reference, id)| {
                let id = id.map_or(String::new(), |v| format!("<junction_id>{v}</junction_id>"));
                format!("<request><service_request_id>{reference}</service_request_id>{id}<status>open</status></request>")
            })
            .collect();
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><service_requests>{body}</service_requests>"
        )
    }

    #[test]
    fn exactly_one_request_with_exactly_our_id_is_proof_of_arrival() {
        let body = listed(&[("BX-1", Some("c-9")), ("BX-2", Some("c-10"))]);
        assert_eq!(
            judge(&body, "junction_id", "c-10"),
            Finding::Arrived {
                reference: "BX-2".into()
            }
        );
        let attribute_list = "<service_requests><request><service_request_id>7</service_request_id><attributes><attribute><code>junction_id</code><value>c-10</value></attribute></attributes></request></service_requests>";
        assert_eq!(
            judge(attribute_list, "junction_id", "c-10"),
            Finding::Arrived {
                reference: "7".into()
            }
        );
    }

    #[test]
    fn someone_elses_request_is_never_a_match() {
        // A back-end that answers a lookup with whatever it has first.
        let body = listed(&[("BX-7001", Some("c-1"))]);
        assert!(matches!(
            judge(&body, "junction_id", "c-10"),
            Finding::Inconclusive(why) if why.contains("proves nothing")
        ));
        let no_ids = listed(&[("BX-7001", None)]);
        assert!(matches!(
            judge(&no_ids, "junction_id", "c-10"),
            Finding::Inconclusive(why) if why.contains("ignored")
        ));
        // Our id as a prefix of theirs is not ours.
        let close = listed(&[("BX-1", Some("c-100"))]);
        assert!(matches!(
            judge(&close, "junction_id", "c-10"),
            Finding::Inconclusive(_)
        ));
    }

    #[test]
    fn only_an_empty_list_proves_absence() {
        assert_eq!(judge(&listed(&[]), "junction_id", "c-1"), Finding::Absent);
        assert_eq!(
            judge("<service_requests/>", "junction_id", "c-1"),
            Finding::Absent
        );
        // A whole window's list, none ours: the filter was ignored and the list may be cut.
        let many: Vec<(String, String)> = (0..5)
            .map(|n| (format!("BX-{n}"), format!("c-{}", n + 100)))
            .collect();
        let items: Vec<(&str, Option<&str>)> = many
            .iter()
            .map(|(r, i)| (r.as_str(), Some(i.as_str())))
            .collect();
        assert!(matches!(
            judge(&listed(&items), "junction_id", "c-1"),
            Finding::Inconclusive(_)
        ));
    }

    #[test]
    fn duplicates_errors_and_junk_are_inconclusive() {
        let twice = listed(&[("BX-1", Some("c-1")), ("BX-2", Some("c-1"))]);
        assert!(matches!(
            judge(&twice, "junction_id", "c-1"),
            Finding::Inconclusive(why) if why.contains("duplicates")
        ));
        for junk in [
            "<html><body>Bad gateway</body></html>",
            "<html></html>",
            "<html>Bad gateway",
            "",
            "[]",
            "<errors><error><code>500</code><description>down</description></error></errors>",
        ] {
            assert!(
                matches!(judge(junk, "junction_id", "c-1"), Finding::Inconclusive(_)),
                "{junk}"
            );
        }
        let huge = "x".repeat(MAX_ANSWER_BYTES + 1);
        assert!(matches!(
            judge(&huge, "junction_id", "c-1"),
            Finding::Inconclusive(_)
        ));
        let zero = listed(&[("0", Some("c-1"))]);
        assert!(matches!(
            judge(&zero, "junction_id", "c-1"),
            Finding::Inconclusive(_)
        ));
    }
}
