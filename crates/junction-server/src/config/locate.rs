//! Finding the line of a key path in the TOML source, so every problem can say where it is.

use std::fmt;

use toml_edit::{Document, Item, Value};

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A key path such as `case_types[2].fields[0].datatype`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    pub fn key(&self, k: &str) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_string()));
        p
    }

    pub fn index(&self, i: usize) -> KeyPath {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }

    pub fn root(k: &str) -> KeyPath {
        KeyPath(vec![Seg::Key(k.to_string())])
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Converts serde_ignored's path to ours.
pub fn from_ignored(path: &serde_ignored::Path<'_>) -> KeyPath {
    fn walk(path: &serde_ignored::Path<'_>, out: &mut Vec<Seg>) {
        match path {
            serde_ignored::Path::Root => {}
            serde_ignored::Path::Seq { parent, index } => {
                walk(parent, out);
                out.push(Seg::Index(*index));
            }
            serde_ignored::Path::Map { parent, key } => {
                walk(parent, out);
                out.push(Seg::Key(key.clone()));
            }
            serde_ignored::Path::Some { parent }
            | serde_ignored::Path::NewtypeStruct { parent }
            | serde_ignored::Path::NewtypeVariant { parent } => walk(parent, out),
        }
    }
    let mut segs = Vec::new();
    walk(path, &mut segs);
    KeyPath(segs)
}

/// The 1-based line of the deepest part of `path` present in `doc`.
pub fn line_of(source: &str, doc: &Document<&str>, path: &KeyPath) -> Option<usize> {
    line_within(source, doc.as_table(), &path.0)
}

fn line_within(source: &str, table: &toml_edit::Table, rest: &[Seg]) -> Option<usize> {
    let mut best = table.span().map(|s| s.start);
    let mut current: &dyn toml_edit::TableLike = table;
    let mut value: Option<&Value> = None;
    let mut iter = rest.iter().peekable();
    while let Some(seg) = iter.next() {
        match seg {
            Seg::Key(k) => {
                let found = match value {
                    Some(v) => v
                        .as_inline_table()
                        .and_then(|t| t.get_key_value(k))
                        .map(|(key, it)| (key.span(), it)),
                    None => current.get_key_value(k).map(|(key, it)| (key.span(), it)),
                };
                let Some((span, next)) = found else { break };
                if let Some(s) = span.or_else(|| next.span()) {
                    best = Some(s.start);
                }
                match next {
                    Item::Value(v) => value = Some(v),
                    Item::Table(t) => {
                        current = t;
                        value = None;
                    }
                    Item::ArrayOfTables(tables) => {
                        if let Some(Seg::Index(n)) = iter.peek() {
                            iter.next();
                            let Some(t) = tables.get(*n) else { break };
                            if let Some(s) = t.span() {
                                best = Some(s.start);
                            }
                            let remaining: Vec<Seg> = iter.cloned().collect();
                            return line_within(source, t, &remaining)
                                .or(best.map(|b| line_at(source, b)));
                        }
                        break;
                    }
                    Item::None => break,
                }
            }
            Seg::Index(n) => {
                let Some(el) = value.and_then(|v| v.as_array()).and_then(|a| a.get(*n)) else {
                    break;
                };
                if let Some(s) = el.span() {
                    best = Some(s.start);
                }
                value = Some(el);
            }
        }
    }
    best.map(|b| line_at(source, b))
}

/// 1-based line of a byte offset.
pub fn line_at(source: &str, offset: usize) -> usize {
    source.as_bytes()[..offset.min(source.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "[server]\nlisten = \"x\"\n\n[[case_types]]\ncode = \"a\"\n\n[[case_types]]\ncode = \"b\"\n[[case_types.fields]]\ncode = \"f\"\ndatatype = \"bogus\"\nvalues = [{ key = \"k\" }, { key = \"j\", nme = \"x\" }]\n";

    fn line(path: KeyPath) -> Option<usize> {
        let doc = Document::parse(SRC).unwrap();
        line_of(SRC, &doc, &path)
    }

    #[test]
    fn finds_keys_in_arrays_of_tables() {
        assert_eq!(line(KeyPath::root("server").key("listen")), Some(2));
        assert_eq!(
            line(KeyPath::root("case_types").index(1).key("code")),
            Some(8)
        );
        assert_eq!(
            line(
                KeyPath::root("case_types")
                    .index(1)
                    .key("fields")
                    .index(0)
                    .key("datatype")
            ),
            Some(11)
        );
        assert_eq!(
            line(
                KeyPath::root("case_types")
                    .index(1)
                    .key("fields")
                    .index(0)
                    .key("values")
                    .index(1)
                    .key("nme")
            ),
            Some(12)
        );
    }

    #[test]
    fn falls_back_to_the_nearest_parent() {
        assert_eq!(
            line(KeyPath::root("case_types").index(0).key("name")),
            Some(4)
        );
    }
}
