//! One response tree, written as Open311 XML or JSON.
//!
//! XML follows the spec's element names (a list is a plural element holding singular ones);
//! JSON follows the spec's examples (a top-level list is a bare array, an object's list is an
//! array of objects). Both are UTF-8.

use std::fmt::Write;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

/// The response format, chosen by the path's suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Xml,
    Json,
}

impl Format {
    /// Splits `requests.json` into `("requests", Json)`.
    pub fn split(file: &str) -> Option<(&str, Format)> {
        let (stem, ext) = file.rsplit_once('.')?;
        let format = match ext {
            "xml" => Format::Xml,
            "json" => Format::Json,
            _ => return None,
        };
        (!stem.is_empty()).then_some((stem, format))
    }
}

/// A value in a response.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Text(String),
    Bool(bool),
    Number(f64),
    Integer(i64),
    /// An empty element in XML, `null` in JSON.
    Null,
    Object(Vec<(&'static str, Node)>),
    /// A list whose items are `item` elements in XML.
    List {
        item: &'static str,
        items: Vec<Node>,
    },
}

impl Node {
    pub fn text(s: impl Into<String>) -> Node {
        Node::Text(s.into())
    }

    pub fn opt(s: Option<impl Into<String>>) -> Node {
        s.map_or(Node::Null, |s| Node::Text(s.into()))
    }

    pub fn list(item: &'static str, items: Vec<Node>) -> Node {
        Node::List { item, items }
    }

    fn to_json(&self) -> Value {
        match self {
            Node::Text(s) => Value::String(s.clone()),
            Node::Bool(b) => Value::Bool(*b),
            Node::Number(n) => serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number),
            Node::Integer(n) => Value::from(*n),
            Node::Null => Value::Null,
            Node::Object(fields) => {
                let mut map = Map::new();
                for (k, v) in fields {
                    map.insert((*k).to_string(), v.to_json());
                }
                Value::Object(map)
            }
            Node::List { items, .. } => Value::Array(items.iter().map(Node::to_json).collect()),
        }
    }

    fn write_xml(&self, name: &str, out: &mut String, depth: usize) {
        let indent = "  ".repeat(depth);
        match self {
            Node::Object(fields) => {
                let _ = writeln!(out, "{indent}<{name}>");
                for (k, v) in fields {
                    v.write_xml(k, out, depth + 1);
                }
                let _ = writeln!(out, "{indent}</{name}>");
            }
            Node::List { item, items } => {
                if items.is_empty() {
                    let _ = writeln!(out, "{indent}<{name}></{name}>");
                    return;
                }
                let _ = writeln!(out, "{indent}<{name}>");
                for v in items {
                    v.write_xml(item, out, depth + 1);
                }
                let _ = writeln!(out, "{indent}</{name}>");
            }
            scalar => {
                let text = match scalar {
                    Node::Text(s) => escape(s),
                    Node::Bool(b) => b.to_string(),
                    Node::Number(n) => n.to_string(),
                    Node::Integer(n) => n.to_string(),
                    _ => String::new(),
                };
                let _ = writeln!(out, "{indent}<{name}>{text}</{name}>");
            }
        }
    }
}

/// Escapes text for XML, dropping characters XML 1.0 cannot carry.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Renders `root` (named `root_name` in XML) with `status`.
pub fn render(format: Format, status: StatusCode, root_name: &str, root: &Node) -> Response {
    let (body, content_type) = match format {
        Format::Json => (
            serde_json::to_string(&root.to_json()).unwrap_or_else(|_| "null".into()),
            "application/json; charset=utf-8",
        ),
        Format::Xml => {
            let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
            root.write_xml(root_name, &mut out, 0);
            (out, "text/xml; charset=utf-8")
        }
    };
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The spec's error body: `errors/error{code, description}`, a bare array in JSON.
pub fn errors(format: Format, status: StatusCode, descriptions: &[String]) -> Response {
    let items = descriptions
        .iter()
        .map(|d| {
            Node::Object(vec![
                ("code", Node::Integer(i64::from(status.as_u16()))),
                ("description", Node::text(d.clone())),
            ])
        })
        .collect();
    render(format, status, "errors", &Node::list("error", items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_nest_by_element_name() {
        let tree = Node::list(
            "request",
            vec![Node::Object(vec![
                ("service_request_id", Node::text("7")),
                ("lat", Node::Number(52.5)),
                ("note", Node::text("a < b & \"c\"\u{1}")),
                ("media_url", Node::Null),
            ])],
        );
        let mut xml = String::new();
        tree.write_xml("service_requests", &mut xml, 0);
        assert_eq!(
            xml,
            "<service_requests>\n  <request>\n    <service_request_id>7</service_request_id>\n    \
             <lat>52.5</lat>\n    <note>a &lt; b &amp; &quot;c&quot;</note>\n    <media_url></media_url>\n  \
             </request>\n</service_requests>\n"
        );
        assert_eq!(
            tree.to_json().to_string(),
            r#"[{"lat":52.5,"media_url":null,"note":"a < b & \"c\"\u0001","service_request_id":"7"}]"#
        );
    }

    #[test]
    fn suffix_chooses_the_format() {
        assert_eq!(
            Format::split("requests.json"),
            Some(("requests", Format::Json))
        );
        assert_eq!(Format::split("123.xml"), Some(("123", Format::Xml)));
        assert_eq!(Format::split("requests.html"), None);
        assert_eq!(Format::split("requests"), None);
        assert_eq!(Format::split(".xml"), None);
    }
}
