//! Where each value of a YAML document sits in the text, keyed by JSON pointer.
//!
//! `yaml_serde` gives values without positions; this second, event-level pass over the same
//! text records the line and column of every key and value so that schema and semantic
//! findings (which know only a pointer) point at the exact line. It also finds duplicate
//! keys at the duplicate itself, where the value parser only names the enclosing mapping.

use crate::diagnostic::{Diagnostic, Pos};
use std::collections::{HashMap, HashSet};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Pointer → position of the key (for mapping entries) and of the value.
#[derive(Debug, Default, Clone)]
pub struct Spans {
    map: HashMap<String, Entry>,
    /// Where the first alias (`*name`) is used: the place to blame for an alias bomb.
    pub first_alias: Option<Pos>,
    /// Mapping keys that are not plain scalars (a list, a mapping, `~`), in document order.
    pub odd_keys: Vec<Pos>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: Option<Pos>,
    value: Pos,
}

impl Spans {
    /// The position for `pointer`, or of its nearest ancestor that has one.
    pub fn find(&self, pointer: &str, at_key: bool) -> Option<Pos> {
        let mut p = pointer;
        loop {
            if let Some(e) = self.map.get(p) {
                return Some(if at_key {
                    e.key.unwrap_or(e.value)
                } else {
                    e.value
                });
            }
            let cut = p.rfind('/')?;
            p = &p[..cut];
        }
    }
}

/// Escapes one reference token of a JSON pointer (RFC 6901).
pub fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

enum Frame {
    Map {
        pointer: String,
        key: Option<(String, Pos)>,
        seen: HashSet<String>,
    },
    Seq {
        pointer: String,
        next: usize,
    },
    /// A complex (non-scalar) mapping key: nothing inside has a pointer.
    Ignored,
}

struct Builder {
    spans: Spans,
    stack: Vec<Frame>,
    duplicates: Vec<Diagnostic>,
}

fn pos(m: &Marker) -> Pos {
    Pos {
        line: m.line().max(1),
        col: m.col() + 1,
    }
}

impl Builder {
    /// A node starts at `mark`: returns its pointer, or None when it is a mapping key or lies
    /// inside a complex key.
    fn node(&mut self, mark: &Marker, scalar_key: Option<&str>) -> Option<String> {
        match self.stack.last_mut() {
            None => {
                self.spans.map.insert(
                    String::new(),
                    Entry {
                        key: None,
                        value: pos(mark),
                    },
                );
                Some(String::new())
            }
            Some(Frame::Ignored) => None,
            Some(Frame::Seq { pointer, next }) => {
                let p = format!("{pointer}/{next}");
                *next += 1;
                self.spans.map.insert(
                    p.clone(),
                    Entry {
                        key: None,
                        value: pos(mark),
                    },
                );
                Some(p)
            }
            Some(Frame::Map { pointer, key, seen }) => match key.take() {
                Some((k, key_pos)) => {
                    let p = format!("{pointer}/{}", escape_token(&k));
                    self.spans.map.insert(
                        p.clone(),
                        Entry {
                            key: Some(key_pos),
                            value: pos(mark),
                        },
                    );
                    Some(p)
                }
                None => {
                    let k = scalar_key.unwrap_or("?").to_string();
                    if scalar_key.is_some() && !seen.insert(k.clone()) {
                        let where_ = if pointer.is_empty() {
                            "the document".to_string()
                        } else {
                            crate::schema::context(pointer)
                        };
                        self.duplicates.push(
                            Diagnostic::error(
                                "duplicate-key",
                                format!("{pointer}/{}", escape_token(&k)),
                                format!("duplicate key `{k}` in {where_}"),
                            )
                            .at_pos(pos(mark))
                            .with_hint("each key may appear once in a mapping; merge the two entries or remove one"),
                        );
                    }
                    // A block mapping's start mark can sit at its first value; the mapping
                    // begins at its first key.
                    if seen.len() == 1
                        && let Some(e) = self.spans.map.get_mut(pointer.as_str())
                        && pos(mark) < e.value
                    {
                        e.value = pos(mark);
                    }
                    *key = Some((k, pos(mark)));
                    None
                }
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(ref v, style, ..) => {
                if matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
                    && style == yaml_rust2::scanner::TScalarStyle::Plain
                    && matches!(v.as_str(), "~" | "null" | "Null" | "NULL" | "")
                {
                    self.spans.odd_keys.push(pos(&mark));
                }
                self.node(&mark, Some(v));
            }
            Event::Alias(_) => {
                self.spans.first_alias.get_or_insert(pos(&mark));
                self.node(&mark, Some("*alias"));
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                let is_map = matches!(ev, Event::MappingStart(..));
                let in_key_position =
                    matches!(self.stack.last(), Some(Frame::Map { key: None, .. }));
                if in_key_position {
                    self.spans.odd_keys.push(pos(&mark));
                }
                let frame = match self.node(&mark, None) {
                    _ if in_key_position => Frame::Ignored,
                    None => Frame::Ignored,
                    Some(pointer) if is_map => Frame::Map {
                        pointer,
                        key: None,
                        seen: HashSet::new(),
                    },
                    Some(pointer) => Frame::Seq { pointer, next: 0 },
                };
                self.stack.push(frame);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

/// Records spans and duplicate keys. A text the event parser rejects yields what was
/// recorded before the error; the value parser reports the syntax error itself.
pub fn index(text: &str) -> (Spans, Vec<Diagnostic>) {
    let mut b = Builder {
        spans: Spans::default(),
        stack: Vec::new(),
        duplicates: Vec::new(),
    };
    let mut parser = Parser::new_from_str(text);
    let _ = parser.load(&mut b, false);
    (b.spans, b.duplicates)
}
