//! Lossless edits of a YAML document: a few scalars replaced in place, every other byte
//! (comments, key order, blank lines, quoting elsewhere) kept.
//!
//! A scalar's start is the span index's; its end is found by scanning its token (a quoted
//! scalar to its closing quote, a plain one to the end of its line, a comment, or a flow
//! indicator). The new text keeps the old token's quoting, and is double-quoted when it
//! would not read back as the same plain scalar. The edited document is parsed again and
//! must give the old value with exactly the edited scalars changed to their new strings
//! (or numbers): anything else (a plain scalar over several lines, a scan that got the
//! token wrong) is refused rather than written.

use super::Document;
use crate::source::Source;
use serde_json::Value as Json;

/// One scalar to replace: its JSON pointer, and the new value as it should read (a number
/// stays a number when the old scalar was a plain number and the new text is one).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Edit {
    pub(crate) pointer: String,
    pub(crate) text: String,
}

/// `source` (parsed as `doc`) with `edits` made; Err says why it could not be done safely.
pub(crate) fn replace_scalars(
    source: &Source,
    doc: &Document,
    edits: &[Edit],
) -> Result<String, String> {
    let text = &source.text;
    let mut spans: Vec<(usize, usize, String)> = Vec::new();
    for e in edits {
        let pos = doc
            .spans
            .value_at(&e.pointer)
            .ok_or_else(|| format!("{} is not in the file", e.pointer))?;
        let start = source
            .offset(pos.line, pos.col)
            .ok_or_else(|| format!("{} has no place in the file", e.pointer))?;
        let end = token_end(text, start)
            .ok_or_else(|| format!("{} is not a one-line scalar", e.pointer))?;
        let old = &text[start..end];
        spans.push((start, end, requote(old, &e.text)));
    }
    spans.sort_by_key(|s| s.0);
    if spans.windows(2).any(|w| w[0].1 > w[1].0) {
        return Err("two edits overlap".into());
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end, new) in &spans {
        out.push_str(&text[at..*start]);
        out.push_str(new);
        at = *end;
    }
    out.push_str(&text[at..]);
    // Read it back: the old value, with exactly the edited scalars changed.
    let mut expected = doc.value.clone();
    for e in edits {
        let slot = expected
            .pointer_mut(&e.pointer)
            .ok_or_else(|| format!("{} is not in the value", e.pointer))?;
        *slot = match (&*slot, e.text.parse::<f64>()) {
            (Json::Number(_), Ok(n)) => {
                serde_json::Number::from_f64(n).map_or(Json::String(e.text.clone()), Json::Number)
            }
            _ => Json::String(e.text.clone()),
        };
    }
    let edited = Source::new(source.name.clone(), out.clone()).holding(source.kind);
    let reread =
        super::parse(&edited).map_err(|_| "the edited file is no longer valid YAML".to_string())?;
    if !same(&reread.value, &expected) {
        return Err("the edited file does not read back as the intended change".into());
    }
    Ok(out)
}

/// Where [`set_key`] put its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placed {
    /// The key was there: its value changed on this line (from 1).
    Replaced { line: usize },
    /// New lines (the key, or its parent and the key) were inserted before this line of
    /// the old text (from 1; one past the last line: at the end).
    Inserted { before: usize, lines: usize },
}

/// `source` (parsed as `doc`) with the scalar `key` of the block mapping at `parent` (a
/// top-level key: `/monitoring`) set to `text`: replaced in place when it is there, else
/// a line inserted as the mapping's first (indented as its keys are), else the mapping
/// added at the end of the file. Read back as [`replace_scalars`] reads its edits.
pub(crate) fn set_key(
    source: &Source,
    doc: &Document,
    parent: &str,
    key: &str,
    text: &str,
) -> Result<(String, Placed), String> {
    let pointer = format!("{parent}/{key}");
    if let Some(replaced) = replace_existing(source, doc, &pointer, text) {
        return replaced;
    }
    let old = &source.text;
    // New lines end as the file's do.
    let eol = if old.contains("\r\n") { "\r\n" } else { "\n" };
    let value = if plain_safe(text) {
        text.to_string()
    } else {
        requote("\"", text)
    };
    let (out, placed) = match doc.value.pointer(parent) {
        Some(Json::Object(m)) if !m.is_empty() => {
            // Before the mapping's first key, at its indentation: only in a block mapping
            // (the key's line holds nothing before it).
            let first = m
                .keys()
                .next()
                .map(|k| format!("{parent}/{}", k.replace('~', "~0").replace('/', "~1")));
            let at = first
                .and_then(|p| doc.spans.find(&p, true))
                .ok_or_else(|| format!("{parent} has no place in the file"))?;
            let start = source
                .offset(at.line, 1)
                .ok_or_else(|| format!("{parent} has no place in the file"))?;
            let indent = &old[start..]
                .chars()
                .take(at.col.saturating_sub(1))
                .collect::<String>();
            if at.col < 2 || indent.chars().any(|c| c != ' ') {
                return Err(format!(
                    "`{}` is written in flow style (`{{...}}`), where plan does not add keys: write it as an indented block, or add `{key}:` to it yourself",
                    parent.trim_start_matches('/')
                ));
            }
            let mut out = String::with_capacity(old.len() + 32);
            out.push_str(&old[..start]);
            out.push_str(&format!("{indent}{key}: {value}{eol}"));
            out.push_str(&old[start..]);
            (
                out,
                Placed::Inserted {
                    before: at.line,
                    lines: 1,
                },
            )
        }
        None => {
            // A new top-level mapping at the end, in a file of block mappings.
            let top = parent.trim_start_matches('/');
            if top.contains('/')
                || !old
                    .lines()
                    .any(|l| l.chars().next().is_some_and(char::is_alphanumeric))
            {
                return Err(format!("the file has no {parent} to add `{key}` to"));
            }
            let mut out = old.clone();
            if !out.is_empty() && !out.ends_with('\n') {
                out.push_str(eol);
            }
            let before = out.lines().count() + 1;
            out.push_str(&format!("{top}:{eol}  {key}: {value}{eol}"));
            (out, Placed::Inserted { before, lines: 2 })
        }
        Some(Json::Object(_)) => {
            return Err(format!(
                "`{}` is an empty flow mapping (`{{}}`), where plan does not add keys: add `{key}:` to it yourself",
                parent.trim_start_matches('/')
            ));
        }
        Some(_) => {
            return Err(format!(
                "`{}` holds no keys (it is empty or a single value): add `{key}:` under it yourself",
                parent.trim_start_matches('/')
            ));
        }
    };
    let mut expected = doc.value.clone();
    let Json::Object(root) = &mut expected else {
        return Err("the file is not a mapping of keys".into());
    };
    let entry = root
        .entry(parent.trim_start_matches('/').to_string())
        .or_insert_with(|| Json::Object(Default::default()));
    if let Json::Object(m) = entry {
        m.insert(key.to_string(), Json::String(text.to_string()));
    }
    let edited = Source::new(source.name.clone(), out.clone()).holding(source.kind);
    let reread =
        super::parse(&edited).map_err(|_| "the edited file is no longer valid YAML".to_string())?;
    if !same(&reread.value, &expected) {
        return Err("the edited file does not read back as the intended change".into());
    }
    Ok((out, placed))
}

/// `text` as the value a parser reads it as: a whole number as a number, else a string.
fn read_as(text: &str) -> Json {
    match text.parse::<u64>() {
        Ok(n) => Json::Number(n.into()),
        Err(_) => Json::String(text.to_string()),
    }
}

/// Why a key cannot be added to or removed from a flow mapping (`{...}`).
fn flow(item: &str, what: &str) -> String {
    format!(
        "`{}` is written in flow style (`{{...}}`), where plan does not {what}: write it as an indented block, or make the change yourself",
        item.trim_start_matches('/')
    )
}

/// `source` (parsed as `doc`) read back after an edit: it must be `expected`.
fn read_back(source: &Source, out: &str, expected: &Json) -> Result<(), String> {
    let edited = Source::new(source.name.clone(), out.to_string()).holding(source.kind);
    let reread =
        super::parse(&edited).map_err(|_| "the edited file is no longer valid YAML".to_string())?;
    if !same(&reread.value, expected) {
        return Err("the edited file does not read back as the intended change".into());
    }
    Ok(())
}

/// `source` (parsed as `doc`) with the scalar `key` of the block mapping `item` (an item of
/// a sequence: `/rollback_conditions/0`) set to `text` (a whole number reads as a number):
/// replaced in place when it is there, else a line `key: text` added after the line of the
/// mapping's last key, indented as its keys are. A flow mapping (`- { a: 1 }`), or a last
/// key whose value is not a one-line scalar, is refused. Read back as [`replace_scalars`]
/// reads its edits.
pub(crate) fn set_item_key(
    source: &Source,
    doc: &Document,
    item: &str,
    key: &str,
    text: &str,
) -> Result<(String, Placed), String> {
    let pointer = format!("{item}/{}", key.replace('~', "~0").replace('/', "~1"));
    if let Some(replaced) = replace_existing(source, doc, &pointer, text) {
        return replaced;
    }
    let Some(Json::Object(m)) = doc.value.pointer(item) else {
        return Err(format!("{item} is not a mapping in the file"));
    };
    let old = &source.text;
    let at = |pos: crate::diagnostic::Pos| source.offset(pos.line, pos.col);
    // The item's own text starts with `{` when it is a flow mapping.
    let start = doc
        .spans
        .value_at(item)
        .and_then(at)
        .ok_or_else(|| format!("{item} has no place in the file"))?;
    if old[start..].starts_with('{') || m.is_empty() {
        return Err(flow(item, "add keys"));
    }
    // The last key in the text, and where its value ends.
    let (last, key_pos) = m
        .keys()
        .filter_map(|k| {
            let p = format!("{item}/{}", k.replace('~', "~0").replace('/', "~1"));
            let pos = doc.spans.find(&p, true)?;
            Some((p, pos))
        })
        .max_by_key(|(_, pos)| (pos.line, pos.col))
        .ok_or_else(|| format!("{item} has no place in the file"))?;
    let line_start = source
        .offset(key_pos.line, 1)
        .ok_or_else(|| format!("{last} has no place in the file"))?;
    let before: String = old[line_start..]
        .chars()
        .take(key_pos.col.saturating_sub(1))
        .collect();
    // Only indentation before the key (and the item's `- `, for its first key).
    if !before.chars().all(|c| c == ' ' || c == '-') {
        return Err(flow(item, "add keys"));
    }
    let indent = " ".repeat(key_pos.col.saturating_sub(1));
    let value = doc
        .spans
        .value_at(&last)
        .and_then(at)
        .ok_or_else(|| format!("{last} has no place in the file"))?;
    if doc
        .value
        .pointer(&last)
        .is_some_and(|v| v.is_object() || v.is_array())
        || token_end(old, value).is_none()
    {
        return Err(format!(
            "{last} is not a one-line value, after which plan would add `{key}`: add `{key}: {text}` yourself"
        ));
    }
    let eol = if old.contains("\r\n") { "\r\n" } else { "\n" };
    let (line_end, ends) = match old[value..].find('\n') {
        Some(i) => (value + i + 1, true),
        None => (old.len(), false),
    };
    let value_line = source.line_col(value).0;
    let new_text = match plain_safe(text) {
        true => text.to_string(),
        false => requote("\"", text),
    };
    let mut out = String::with_capacity(old.len() + 32);
    out.push_str(&old[..line_end]);
    if !ends {
        out.push_str(eol);
    }
    out.push_str(&format!("{indent}{key}: {new_text}{eol}"));
    out.push_str(&old[line_end..]);
    let mut expected = doc.value.clone();
    if let Some(Json::Object(m)) = expected.pointer_mut(item) {
        m.insert(key.to_string(), read_as(text));
    }
    read_back(source, &out, &expected)?;
    Ok((
        out,
        Placed::Inserted {
            before: value_line + 1,
            lines: 1,
        },
    ))
}

/// `source` (parsed as `doc`) without the key at `pointer` (a key of a block mapping, on a
/// line of its own with a one-line scalar value): its line deleted, comment and all; the
/// line number (from 1) it was on. Refused for a key of a flow mapping, or one that shares
/// its line with the sequence's `- `.
pub(crate) fn remove_key(
    source: &Source,
    doc: &Document,
    pointer: &str,
) -> Result<(String, usize), String> {
    let (parent, key) = pointer
        .rsplit_once('/')
        .ok_or_else(|| format!("{pointer} is not a key"))?;
    let Some(Json::Object(_)) = doc.value.pointer(parent) else {
        return Err(format!("{parent} is not a mapping in the file"));
    };
    if doc.value.pointer(pointer).is_none() {
        return Err(format!("{pointer} is not in the file"));
    }
    let old = &source.text;
    let key_pos = doc
        .spans
        .find(pointer, true)
        .ok_or_else(|| format!("{pointer} has no place in the file"))?;
    let line_start = source
        .offset(key_pos.line, 1)
        .ok_or_else(|| format!("{pointer} has no place in the file"))?;
    let before: String = old[line_start..]
        .chars()
        .take(key_pos.col.saturating_sub(1))
        .collect();
    if before.contains('-') {
        return Err(format!(
            "`{}` shares its line with the start of its list item: remove it yourself",
            pointer.trim_start_matches('/')
        ));
    }
    if !before.chars().all(|c| c == ' ') {
        return Err(flow(parent, "remove keys"));
    }
    let value = doc
        .spans
        .value_at(pointer)
        .and_then(|p| source.offset(p.line, p.col))
        .ok_or_else(|| format!("{pointer} has no place in the file"))?;
    let end = token_end(old, value)
        .filter(|_| source.line_col(value).0 == key_pos.line)
        .ok_or_else(|| format!("{pointer} is not a one-line scalar"))?;
    let line_end = old[end..].find('\n').map_or(old.len(), |i| end + i + 1);
    // Nothing but a comment after the value.
    let rest = old[end..line_end].trim();
    if !(rest.is_empty() || rest.starts_with('#')) {
        return Err(flow(parent, "remove keys"));
    }
    let mut out = String::with_capacity(old.len());
    out.push_str(&old[..line_start]);
    out.push_str(&old[line_end..]);
    let mut expected = doc.value.clone();
    if let Some(Json::Object(m)) = expected.pointer_mut(parent) {
        m.shift_remove(&key.replace("~1", "/").replace("~0", "~"));
    }
    read_back(source, &out, &expected)?;
    Ok((out, key_pos.line))
}

/// JSON values equal, numbers compared as numbers (`5` and `5.0` alike).
fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// The end of the scalar token starting at `start`: past a quoted scalar's closing quote,
/// or a plain scalar's last character on its line (before a comment or a flow indicator).
/// None for a block scalar or a quoted one that does not close on its line.
fn token_end(text: &str, start: usize) -> Option<usize> {
    let rest = &text[start..];
    let line = &rest[..rest.find('\n').unwrap_or(rest.len())];
    let mut chars = line.char_indices();
    match chars.next()? {
        (_, '"') => {
            let mut escaped = false;
            for (i, c) in chars {
                match c {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => return Some(start + i + 1),
                    _ => escaped = false,
                }
            }
            None
        }
        (_, '\'') => {
            let b = line.as_bytes();
            let mut i = 1;
            while i < b.len() {
                if b[i] == b'\'' {
                    if b.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    return Some(start + i + 1);
                }
                i += 1;
            }
            None
        }
        (_, '|' | '>') => None,
        _ => {
            let mut end = line.len();
            if let Some(i) = line.find(" #") {
                end = end.min(i);
            }
            for ind in [", ", "]", "}"] {
                if let Some(i) = line.find(ind) {
                    end = end.min(i);
                }
            }
            if line.ends_with(',') {
                end = end.min(line.len() - 1);
            }
            Some(start + line[..end].trim_end().len())
        }
    }
}

/// `new` written as `old` was: in the same quotes, or plain when it reads back as itself.
fn requote(old: &str, new: &str) -> String {
    let double = || format!("\"{}\"", new.replace('\\', "\\\\").replace('"', "\\\""));
    match old.chars().next() {
        Some('"') => double(),
        Some('\'') => format!("'{}'", new.replace('\'', "''")),
        _ if plain_safe(new) => new.to_string(),
        _ => double(),
    }
}

/// Whether `s` reads back as itself as a plain scalar in a block mapping.
fn plain_safe(s: &str) -> bool {
    let first = s.chars().next();
    !s.is_empty()
        && !matches!(
            first,
            Some(
                '>' | '|'
                    | '*'
                    | '&'
                    | '!'
                    | '%'
                    | '@'
                    | '`'
                    | '#'
                    | '\''
                    | '"'
                    | '{'
                    | '['
                    | ']'
                    | '}'
                    | ','
                    | '?'
                    | ':'
                    | '-'
            )
        )
        && !s.contains(": ")
        && !s.contains(" #")
        && s.trim() == s
}

/// The key at `pointer` replaced by `text` when the file has it, else None: what both
/// setters do before they insert.
fn replace_existing(
    source: &Source,
    doc: &Document,
    pointer: &str,
    text: &str,
) -> Option<Result<(String, Placed), String>> {
    doc.value.pointer(pointer)?;
    let edit = Edit {
        pointer: pointer.to_string(),
        text: text.to_string(),
    };
    let line = doc.spans.value_at(pointer).map_or(0, |p| p.line);
    Some(replace_scalars(source, doc, &[edit]).map(|out| (out, Placed::Replaced { line })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(text: &str, edits: &[(&str, &str)]) -> Result<String, String> {
        let source = Source::new("t.yaml".into(), text.into());
        let doc = super::super::parse(&source).expect("parses");
        let edits: Vec<Edit> = edits
            .iter()
            .map(|(p, t)| Edit {
                pointer: (*p).into(),
                text: (*t).into(),
            })
            .collect();
        replace_scalars(&source, &doc, &edits)
    }

    #[test]
    fn scalars_change_in_place_and_nothing_else_does() {
        let text = "# head\nrollback_conditions:\n  - metric: \"error_rate\"\n    threshold: 0.1        # 10%\n    duration: \"5m\"\n\ngates:\n  availability: '> 99.5%'   # SLO\n  error_rate: < 5%\n  flow: { a: 1, b: 2 }\n";
        let out = edit(
            text,
            &[
                ("/rollback_conditions/0/threshold", "0.05"),
                ("/rollback_conditions/0/duration", "0s"),
                ("/gates/availability", "> 96%"),
                ("/gates/error_rate", "< 40%"),
                ("/gates/flow/a", "3"),
            ],
        )
        .expect("edits");
        assert_eq!(
            out,
            "# head\nrollback_conditions:\n  - metric: \"error_rate\"\n    threshold: 0.05        # 10%\n    duration: \"0s\"\n\ngates:\n  availability: '> 96%'   # SLO\n  error_rate: < 40%\n  flow: { a: 3, b: 2 }\n"
        );
    }

    #[test]
    fn a_plain_scalar_that_would_change_meaning_is_quoted() {
        let out = edit(
            "gates:\n  error_rate: high\n",
            &[("/gates/error_rate", "> 5%")],
        )
        .unwrap();
        assert_eq!(out, "gates:\n  error_rate: \"> 5%\"\n");
    }

    #[test]
    fn a_key_is_set_where_it_is_or_added_as_its_mapping_writes_keys() {
        let set = |text: &str| {
            let source = Source::new("t.yaml".into(), text.into());
            let doc = super::super::parse(&source).expect("parses");
            set_key(&source, &doc, "/monitoring", "window", "10m")
        };
        assert_eq!(
            set("monitoring:\n  window: 5m   # five\nx: 1\n").unwrap(),
            (
                "monitoring:\n  window: 10m   # five\nx: 1\n".into(),
                Placed::Replaced { line: 2 }
            )
        );
        assert_eq!(
            set("# c\nmonitoring:\n    url: u   # keep\nx: 1\n").unwrap(),
            (
                "# c\nmonitoring:\n    window: 10m\n    url: u   # keep\nx: 1\n".into(),
                Placed::Inserted {
                    before: 3,
                    lines: 1
                }
            )
        );
        assert_eq!(
            set("x: 1\ny: 2").unwrap(),
            (
                "x: 1\ny: 2\nmonitoring:\n  window: 10m\n".into(),
                Placed::Inserted {
                    before: 3,
                    lines: 2
                }
            )
        );
        // A flow mapping, a scalar: not edited.
        assert!(set("monitoring: { url: u }\n").is_err());
        assert!(set("monitoring: 3\n").is_err());
    }

    #[test]
    fn a_key_is_added_to_or_removed_from_a_list_item_as_its_keys_are_written() {
        let doc = |text: &str| {
            let source = Source::new("t.yaml".into(), text.into());
            let doc = super::super::parse(&source).expect("parses");
            (source, doc)
        };
        let text = "# c\nr:\n  - metric: e   # one\n    threshold: 5%  # two\n\n  - metric: a\n    threshold: 1%\nx: 1\n";
        let (s, d) = doc(text);
        assert_eq!(
            set_item_key(&s, &d, "/r/0", "min_requests", "50").unwrap(),
            (
                "# c\nr:\n  - metric: e   # one\n    threshold: 5%  # two\n    min_requests: 50\n\n  - metric: a\n    threshold: 1%\nx: 1\n".into(),
                Placed::Inserted { before: 5, lines: 1 }
            )
        );
        // The last item of the file, without a final newline, with CRLF ends.
        let (s, d) = doc("r:\r\n  - metric: e\r\n    threshold: 5%");
        assert_eq!(
            set_item_key(&s, &d, "/r/0", "min_requests", "20")
                .unwrap()
                .0,
            "r:\r\n  - metric: e\r\n    threshold: 5%\r\n    min_requests: 20\r\n"
        );
        // There already: changed in place.
        let (s, d) = doc("r:\n  - metric: e\n    min_requests: 5 # few\n    threshold: 5%\n");
        let (out, placed) = set_item_key(&s, &d, "/r/0", "min_requests", "200").unwrap();
        assert_eq!(
            out,
            "r:\n  - metric: e\n    min_requests: 200 # few\n    threshold: 5%\n"
        );
        assert_eq!(placed, Placed::Replaced { line: 3 });
        // And removed, comment and all.
        assert_eq!(
            remove_key(&s, &d, "/r/0/min_requests").unwrap(),
            ("r:\n  - metric: e\n    threshold: 5%\n".into(), 3)
        );
        // Flow style, or a key on the item's first line: refused.
        let (s, d) = doc("r:\n  - { metric: e, threshold: 5% }\n");
        assert!(
            set_item_key(&s, &d, "/r/0", "min_requests", "5")
                .unwrap_err()
                .contains("flow style")
        );
        let (s, d) = doc("r:\n  - metric: e\n    t: { a: 1, min_requests: 5 }\n");
        assert!(remove_key(&s, &d, "/r/0/t/min_requests").is_err());
        let (s, d) = doc("r:\n  - min_requests: 5\n    metric: e\n");
        assert!(
            remove_key(&s, &d, "/r/0/min_requests")
                .unwrap_err()
                .contains("shares its line")
        );
    }

    #[test]
    fn what_cannot_be_edited_safely_is_refused() {
        // A block scalar.
        assert!(edit("a: |\n  x\n", &[("/a", "y")]).is_err());
        // A plain scalar folded over two lines.
        assert!(edit("a: one\n  two\nb: 1\n", &[("/a", "y")]).is_err());
        // Not there.
        assert!(edit("a: 1\n", &[("/b", "2")]).is_err());
    }
}
