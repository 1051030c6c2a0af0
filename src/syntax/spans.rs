//! Where each value of a YAML document sits in the text, keyed by JSON pointer.
//!
//! `yaml_serde` gives values without positions; this second, event-level pass over the same
//! text records the line and column of every key and value so that schema and semantic
//! findings (which know only a pointer) point at the exact line. It also finds duplicate
//! keys at the duplicate itself, where the value parser only names the enclosing mapping.
//!
//! It runs first, so it also guards the value parser: it stops at the first collection
//! nested deeper than [`MAX_YAML_DEPTH`] (the value parser's scanner is quadratic in flow
//! nesting), and it counts the nodes the document holds once its aliases are expanded (each
//! anchor's size is known when its node ends; an alias adds that size) and stops at the
//! alias that takes the count past [`MAX_YAML_NODES`], before anything is expanded.

use crate::diagnostic::{Diagnostic, Pos};
use crate::limits::{MAX_YAML_DEPTH, MAX_YAML_NODES};
use crate::pointer;
use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::Marker;

/// Pointer → position of the key (for mapping entries) and of the value.
#[derive(Debug, Default, Clone)]
pub struct Spans {
    map: HashMap<String, Entry>,
    /// Where the first alias (`*name`) is used: the place to blame for an alias bomb.
    pub(crate) first_alias: Option<Pos>,
    /// Mapping keys that are not plain scalars (a list, a mapping, `~`), in document order.
    pub(crate) odd_keys: Vec<Pos>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: Option<Pos>,
    value: Pos,
}

impl Spans {
    /// The position of the value at exactly `pointer`.
    pub(crate) fn value_at(&self, pointer: &str) -> Option<Pos> {
        self.map.get(pointer).map(|e| e.value)
    }

    /// The position for `pointer`, or of its nearest ancestor that has one.
    pub(crate) fn find(&self, pointer: &str, at_key: bool) -> Option<Pos> {
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
    /// Nodes so far with every alias expanded.
    nodes: u64,
    /// Per open collection (parallel to `stack`): its anchor id (0 for none) and `nodes`
    /// before it started.
    open: Vec<(usize, u64)>,
    /// Anchor id → nodes its value expands to.
    anchors: HashMap<usize, u64>,
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
                    let p = format!("{pointer}/{}", pointer::escape(&k));
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
                        let where_ = pointer::human(pointer, "the document");
                        self.duplicates.push(
                            Diagnostic::error(
                                "duplicate-key",
                                format!("{pointer}/{}", pointer::escape(&k)),
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

impl Builder {
    /// Takes one event; breaks with the finding that stops the pass (a limit).
    fn on_event(&mut self, ev: Event, mark: Marker) -> ControlFlow<Diagnostic> {
        match ev {
            Event::Scalar(ref v, style, anchor, _) => {
                self.nodes += 1;
                if anchor > 0 {
                    self.anchors.insert(anchor, 1);
                }
                if matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
                    && style == yaml_rust2::scanner::TScalarStyle::Plain
                    && matches!(v.as_str(), "~" | "null" | "Null" | "NULL" | "")
                {
                    self.spans.odd_keys.push(pos(&mark));
                }
                self.node(&mark, Some(v));
            }
            Event::Alias(anchor) => {
                self.spans.first_alias.get_or_insert(pos(&mark));
                let size = self.anchors.get(&anchor).copied().unwrap_or(1);
                self.nodes = self.nodes.saturating_add(size);
                if self.nodes > MAX_YAML_NODES {
                    return ControlFlow::Break(too_many_nodes(&mark, size));
                }
                self.node(&mark, Some("*alias"));
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.stack.len() >= MAX_YAML_DEPTH {
                    return ControlFlow::Break(too_deep(&mark));
                }
                self.open.push((anchor, self.nodes));
                self.nodes += 1;
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
                if let Some((anchor, before)) = self.open.pop()
                    && anchor > 0
                {
                    self.anchors.insert(anchor, self.nodes - before);
                }
            }
            _ => {}
        }
        if self.nodes > MAX_YAML_NODES {
            // Without aliases: a megabyte of `[1,1,1,...]`.
            return ControlFlow::Break(too_many_nodes(&mark, 1));
        }
        ControlFlow::Continue(())
    }
}

fn too_deep(mark: &Marker) -> Diagnostic {
    Diagnostic::error(
        "yaml-too-deep",
        "",
        format!("invalid YAML: lists and mappings nested more than {MAX_YAML_DEPTH} levels deep"),
    )
    .at_pos(pos(mark))
    .with_hint("a plan is only a few levels deep; look for runaway brackets or indentation")
}

/// `size`: the nodes the offending alias stands for (1 for a plain node).
fn too_many_nodes(mark: &Marker, size: u64) -> Diagnostic {
    let what = if size > 1 {
        format!(
            "this alias stands for {size} values and takes the document past {MAX_YAML_NODES} values once its aliases are expanded"
        )
    } else {
        format!("the document holds more than {MAX_YAML_NODES} values")
    };
    Diagnostic::error("yaml-too-large", "", format!("invalid YAML: {what}"))
        .at_pos(pos(mark))
        .with_hint(if size > 1 {
            "a plan holds a few hundred values; write the values out instead of nesting aliases (this looks like an \"alias bomb\")"
        } else {
            "a plan holds a few hundred values; check that this is the right file"
        })
}

/// Records spans and duplicate keys of the first document, or stops at the first limit
/// passed (its finding is then the only one). A text the event parser rejects yields what
/// was recorded before the error; the value parser reports the syntax error itself.
pub(crate) fn index(text: &str) -> (Spans, Vec<Diagnostic>) {
    let mut b = Builder {
        spans: Spans::default(),
        stack: Vec::new(),
        duplicates: Vec::new(),
        nodes: 0,
        open: Vec::new(),
        anchors: HashMap::new(),
    };
    let mut parser = Parser::new_from_str(text);
    loop {
        match parser.next_token() {
            Ok((Event::DocumentEnd | Event::StreamEnd, _)) => break,
            Ok((ev, mark)) => {
                if let ControlFlow::Break(limit) = b.on_event(ev, mark) {
                    return (b.spans, vec![limit]);
                }
            }
            // The scanner reads flow collections ahead of the events and stops at 255
            // levels: the text is nested too deep for the value parser too.
            Err(e) if e.info() == "recursion limit exceeded" => {
                return (b.spans, vec![too_deep(e.marker())]);
            }
            Err(_) => break,
        }
    }
    (b.spans, b.duplicates)
}
