//! Bounds a GraphQL document must keep before any work is done on it: how deeply its brackets
//! nest and how many tokens it has (checked on the text, before the parser, which recurses
//! once per level), and how many fields it selects once every fragment is expanded (checked
//! on the parsed document, before validation and execution).

use std::collections::HashMap;

use async_graphql::ServerError;
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Positioned};

use crate::ErrorCode;

/// Deepest nesting of `{`, `[` and `(` in a document's text. Far above any real query (the
/// selection depth limit is 10), far below what would exhaust a thread's stack.
pub const MAX_NESTING: usize = 64;

/// Most tokens in a document.
pub const MAX_TOKENS: usize = 20_000;

/// Parses `query` if it keeps every bound, or says which it breaks (`LIMIT_EXCEEDED`), or why
/// it does not parse (`BAD_REQUEST`). `max_fields` bounds the fields selected with every
/// fragment spread expanded, `__typename` included.
pub fn parse(query: &str, max_fields: usize) -> Result<ExecutableDocument, ServerError> {
    check_text(query)?;
    let doc = async_graphql::parser::parse_query(query)
        .map_err(|e| crate::error::with_code(ServerError::from(e), ErrorCode::BadRequest))?;
    let fields = expanded_fields(&doc);
    if fields > max_fields {
        return Err(refusal(format!(
            "the document selects {} fields once its fragments are expanded; at most {max_fields} are allowed",
            if fields == usize::MAX {
                "too many".to_string()
            } else {
                fields.to_string()
            }
        )));
    }
    Ok(doc)
}

fn refusal(message: String) -> ServerError {
    crate::error::with_code(ServerError::new(message, None), ErrorCode::LimitExceeded)
}

/// Scans the text once: strings, block strings and comments are skipped, brackets counted.
pub fn check_text(query: &str) -> Result<(), ServerError> {
    let bytes = query.as_bytes();
    let (mut depth, mut tokens, mut i) = (0usize, 0usize, 0usize);
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
                continue;
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                tokens += 1;
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 3;
                continue;
            }
            b'"' => {
                tokens += 1;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                continue;
            }
            b'{' | b'[' | b'(' => {
                tokens += 1;
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(refusal(format!(
                        "the document nests more than {MAX_NESTING} levels of brackets"
                    )));
                }
            }
            b'}' | b']' | b')' => {
                tokens += 1;
                depth = depth.saturating_sub(1);
            }
            b if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' => {
                tokens += 1;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'.' | b'-'))
                {
                    i += 1;
                }
                continue;
            }
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {}
            _ => tokens += 1,
        }
        if tokens > MAX_TOKENS {
            return Err(refusal(format!(
                "the document has more than {MAX_TOKENS} tokens"
            )));
        }
        i += 1;
    }
    if tokens > MAX_TOKENS {
        return Err(refusal(format!(
            "the document has more than {MAX_TOKENS} tokens"
        )));
    }
    Ok(())
}

/// The number of fields the document's operations select once every fragment spread is
/// replaced by its fragment, saturating at `usize::MAX` (also for a fragment that spreads
/// itself, which validation refuses later).
pub fn expanded_fields(doc: &ExecutableDocument) -> usize {
    let mut memo: HashMap<&str, Option<usize>> = HashMap::new();
    doc.operations.iter().fold(0usize, |total, (_, op)| {
        total.saturating_add(count(&op.node.selection_set, doc, &mut memo))
    })
}

fn count<'a>(
    set: &'a Positioned<SelectionSet>,
    doc: &'a ExecutableDocument,
    memo: &mut HashMap<&'a str, Option<usize>>,
) -> usize {
    set.node.items.iter().fold(0usize, |total, item| {
        let n = match &item.node {
            Selection::Field(f) => 1usize.saturating_add(count(&f.node.selection_set, doc, memo)),
            Selection::InlineFragment(f) => count(&f.node.selection_set, doc, memo),
            Selection::FragmentSpread(s) => fragment(&s.node.fragment_name.node, doc, memo),
        };
        total.saturating_add(n)
    })
}

fn fragment<'a>(
    name: &'a Name,
    doc: &'a ExecutableDocument,
    memo: &mut HashMap<&'a str, Option<usize>>,
) -> usize {
    match memo.get(name.as_str()) {
        Some(Some(n)) => return *n,
        // Reached again while being counted: a cycle.
        Some(None) => return usize::MAX,
        None => {}
    }
    let Some(def) = doc.fragments.get(name) else {
        // Validation reports the unknown fragment.
        return 0;
    };
    memo.insert(name.as_str(), None);
    let n = count(&def.node.selection_set, doc, memo);
    memo.insert(name.as_str(), Some(n));
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(e: &ServerError) -> Option<String> {
        e.extensions
            .as_ref()
            .and_then(|x| x.get("code"))
            .map(|v| v.to_string())
    }

    #[test]
    fn deep_nesting_is_refused_before_the_parser_sees_it() {
        let deep = format!(
            "query {{ cases(filter: {}1{}) {{ id }} }}",
            "[".repeat(5_000),
            "]".repeat(5_000)
        );
        let e = parse(&deep, 2_000).unwrap_err();
        assert_eq!(code(&e).as_deref(), Some("\"LIMIT_EXCEEDED\""));
        assert!(e.message.contains("nests more than 64"), "{}", e.message);
        // Brackets inside strings and comments do not count.
        let quoted = format!("query {{ me {{ subject }} }} # {}\n", "{".repeat(1_000));
        parse(&quoted, 2_000).unwrap();
        let in_string = format!("query {{ case(id: \"{}\") {{ id }} }}", "[".repeat(1_000));
        parse(&in_string, 2_000).unwrap();
        let block = format!(
            "query {{ case(id: \"\"\"{}\"\"\") {{ id }} }}",
            "(".repeat(1_000)
        );
        parse(&block, 2_000).unwrap();
    }

    #[test]
    fn too_many_tokens_are_refused() {
        let wide = format!("query {{ {} }}", "me { subject } ".repeat(MAX_TOKENS / 4));
        let e = parse(&wide, usize::MAX).unwrap_err();
        assert!(e.message.contains("tokens"), "{}", e.message);
    }

    #[test]
    fn fields_are_counted_after_fragments_are_expanded() {
        // Each fragment spreads the next twice: 2^24 `__typename`s from about 1 KB.
        let k = 24;
        let mut text = String::from("query { ...F0 }\n");
        for i in 0..k {
            text.push_str(&format!(
                "fragment F{i} on Query {{ ...F{n} ...F{n} }}\n",
                n = i + 1
            ));
        }
        text.push_str(&format!("fragment F{k} on Query {{ __typename }}\n"));
        let doc = async_graphql::parser::parse_query(&text).unwrap();
        assert_eq!(expanded_fields(&doc), 1 << k);
        let e = parse(&text, 2_000).unwrap_err();
        assert!(e.message.contains("16777216 fields"), "{}", e.message);

        let small = "query { me { subject roles } ...M } fragment M on Query { me { subject } }";
        let doc = async_graphql::parser::parse_query(small).unwrap();
        assert_eq!(expanded_fields(&doc), 5);

        let cycle = "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }";
        assert!(parse(cycle, 2_000).is_err());
    }
}
