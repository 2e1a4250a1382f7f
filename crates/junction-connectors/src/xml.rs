//! A small, forgiving reader for the XML that Open311 systems send: elements, their text, and
//! their children, with the root's name ignored by callers that do not care (as FixMyStreet
//! ignores it). Attributes are not needed by Open311 and are dropped.

use quick_xml::Reader;
use quick_xml::events::Event;

/// One element.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    /// The element's own text, trimmed; empty when it has none.
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The first child called `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child called `name`.
    pub fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the first child called `name`, when that child has no children of its own
    /// and some text.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name)
            .filter(|c| c.children.is_empty() && !c.text.is_empty())
            .map(|c| c.text.as_str())
    }
}

/// Deepest element nesting read. Open311 documents are three or four deep; a deeper one is
/// refused, so that no answer can build a tree whose recursive drop overflows the stack.
pub const MAX_DEPTH: usize = 64;

/// Parses a document and returns its root element.
pub fn parse(text: &str) -> Result<Element, String> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                if root.is_some() {
                    return Err("content after the root element".into());
                }
                if stack.len() == MAX_DEPTH {
                    return Err(format!("elements nested deeper than {MAX_DEPTH}"));
                }
                stack.push(Element {
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    ..Element::default()
                });
            }
            Ok(Event::Empty(e)) => {
                let element = Element {
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    ..Element::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None if root.is_none() => root = Some(element),
                    None => return Err("content after the root element".into()),
                }
            }
            Ok(Event::End(_)) => {
                let mut done = stack.pop().ok_or("unbalanced end tag")?;
                done.text = done.text.trim().to_string();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            Ok(Event::Text(t)) => {
                let text = t
                    .xml_content()
                    .map_err(|e| format!("bad text at byte {}: {e}", reader.buffer_position()))?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text);
                } else if !text.trim().is_empty() {
                    return Err("text outside the root element".into());
                }
            }
            Ok(Event::GeneralRef(r)) => {
                let resolved = resolve_entity(&String::from_utf8_lossy(&r))
                    .ok_or_else(|| format!("unknown entity &{};", String::from_utf8_lossy(&r)))?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&resolved);
                }
            }
            Ok(Event::CData(c)) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&c));
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("at byte {}: {e}", reader.error_position())),
        }
    }
    if !stack.is_empty() {
        return Err(format!(
            "element <{}> is not closed",
            stack[stack.len() - 1].name
        ));
    }
    root.ok_or_else(|| "no root element".into())
}

fn resolve_entity(name: &str) -> Option<String> {
    Some(match name {
        "amp" => "&".into(),
        "lt" => "<".into(),
        "gt" => ">".into(),
        "quot" => "\"".into(),
        "apos" => "'".into(),
        n if n.starts_with("#x") => char::from_u32(u32::from_str_radix(&n[2..], 16).ok()?)?.into(),
        n if n.starts_with('#') => char::from_u32(n[1..].parse().ok()?)?.into(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let deep = format!("{}x{}", "<a>".repeat(200_000), "</a>".repeat(200_000));
        let err = parse(&deep).unwrap_err();
        assert!(err.contains("nested deeper than 64"), "{err}");
        let unclosed = "<a>".repeat(200_000);
        assert!(parse(&unclosed).is_err());
        let ok = format!("{}x{}", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
    }

    use super::*;

    #[test]
    fn reads_nested_lists_and_entities() {
        let doc = r#"<?xml version="1.0" encoding="utf-8"?>
<service_requests><request><service_request_id>248</service_request_id>
<note>a &amp; b &#233;</note><empty/></request></service_requests>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "service_requests");
        let req = root.child("request").unwrap();
        assert_eq!(req.text_of("service_request_id"), Some("248"));
        assert_eq!(req.text_of("note"), Some("a & b é"));
        assert_eq!(req.text_of("empty"), None);
    }

    #[test]
    fn refuses_broken_documents() {
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("<a>").is_err());
        assert!(parse("not xml at all").is_err());
        assert!(parse("").is_err());
    }
}
