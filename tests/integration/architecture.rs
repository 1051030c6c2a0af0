//! The crate's layering, checked on its sources: `src/` is a pipeline of stages, and the
//! code must read one way. A stage may use only the stages before it in [`LAYERS`], and no
//! file may use a file that uses it back, directly or through others.
//!
//! An edge from file `a` to file `b` is `a` naming an item of `b` in its code: through a
//! `use` or a path (`crate::x::y`, `super::z`). Re-exports (`pub use`), `mod` declarations,
//! comments and `#[cfg(test)]` test modules (inline, or a `tests.rs` of their own) do not
//! count: a module's root may re-export its children, and tests may set up what they need.

use crate::support::root;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The top-level modules, each allowed to use only those before it.
const LAYERS: &[&str] = &[
    "limits",
    "input",
    "pointer",
    "suggest",
    "source",
    "diagnostic",
    "syntax",
    "model",
    "schema",
    "promql",
    "prom",
    "check",
    "lower",
    "pipeline",
    "render",
    "sim",
    "html",
    "release",
    "cli",
];

/// Every `.rs` file under `dir`, as (module path, code without comments, re-exports, module
/// declarations or test modules).
fn sources(dir: &Path, base: &Path, out: &mut BTreeMap<String, (String, bool)>) {
    for e in std::fs::read_dir(dir).expect("src/").flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, base, out);
            continue;
        }
        if p.extension().is_none_or(|x| x != "rs") || is_test_module(&p) {
            continue;
        }
        let rel = p.strip_prefix(base).expect("under src/");
        let mut parts: Vec<String> = rel
            .with_extension("")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let is_root = matches!(
            parts.last().map(String::as_str),
            Some("mod" | "lib" | "main")
        );
        if is_root {
            parts.pop();
        }
        let text = std::fs::read_to_string(&p).expect("readable source");
        out.insert(parts.join("::"), (code_of(&text), is_root));
    }
}

/// Whether `p` is a `tests.rs` that its parent module declares as `#[cfg(test)] mod tests;`:
/// a test module in a file of its own, which does not count either.
fn is_test_module(p: &Path) -> bool {
    if p.file_name().is_none_or(|n| n != "tests.rs") {
        return false;
    }
    let Some(dir) = p.parent() else {
        return false;
    };
    let parent = if dir.join("mod.rs").is_file() {
        dir.join("mod.rs")
    } else {
        dir.with_extension("rs")
    };
    std::fs::read_to_string(parent).is_ok_and(|t| t.contains("#[cfg(test)]\nmod tests;"))
}

/// The code that can name other files: without `#[cfg(test)] mod tests { ... }` at the end,
/// comments, `pub use` re-exports and `mod` declarations.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut out = String::new();
    let mut in_reexport = false;
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let t = code.trim_start();
        if in_reexport {
            in_reexport = !t.contains(';');
            continue;
        }
        let public = t.starts_with("pub use ")
            || t.starts_with("pub(crate) use ")
            || t.starts_with("pub(super) use ");
        if public {
            in_reexport = !t.contains(';');
            continue;
        }
        let declaration = (t.starts_with("mod ")
            || t.starts_with("pub mod ")
            || t.starts_with("pub(crate) mod "))
            && t.trim_end().ends_with(';');
        if declaration {
            continue;
        }
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// Every path named in `code`: `a::b::c`, with `{x, y::z}` groups expanded, each as its
/// segments.
fn paths(code: &str) -> Vec<Vec<String>> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i] as char;
        let starts_ident = (c.is_ascii_alphabetic() || c == '_')
            && (i == 0 || {
                let p = bytes[i - 1] as char;
                !(p.is_ascii_alphanumeric() || p == '_' || p == ':')
            });
        if starts_ident {
            let end = ident_end(code, i);
            if code[end..].starts_with("::") {
                expand(&code[i..], Vec::new(), &mut out);
                i += path_len(&code[i..]);
            } else {
                i = end;
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The length of the path at the start of `s`: identifiers, `::` and `{...}` groups.
fn path_len(s: &str) -> usize {
    let mut i = 0;
    loop {
        if s[i..].starts_with('{') {
            let mut depth = 0;
            for (k, c) in s[i..].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    return i + k + 1;
                }
            }
            return s.len();
        }
        let end = ident_end(s, i);
        if end == i {
            return i;
        }
        i = end;
        match s[i..].strip_prefix("::") {
            Some(_) => i += 2,
            None => return i,
        }
    }
}

fn ident_end(s: &str, from: usize) -> usize {
    s[from..]
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(s.len(), |e| from + e)
}

/// Reads one path (or `{...}` group of paths) at the start of `s`, after `prefix`.
fn expand(s: &str, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = prefix;
    let mut s = s;
    loop {
        if let Some(group) = s.strip_prefix('{') {
            let (mut depth, mut item) = (1, String::new());
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 || (depth == 1 && c == ',') {
                    match item.trim() {
                        "" => {}
                        "self" => out.push(path.clone()),
                        t => expand(t, path.clone(), out),
                    }
                    item.clear();
                    if depth == 0 {
                        return;
                    }
                } else {
                    item.push(c);
                }
            }
            return;
        }
        let end = ident_end(s, 0);
        if end == 0 {
            break;
        }
        path.push(s[..end].to_string());
        match s[end..].strip_prefix("::") {
            Some(r) => s = r,
            None => break,
        }
    }
    if !path.is_empty() {
        out.push(path);
    }
}

/// Where a path named in module `m` leads: the file of the longest prefix that is a module
/// of the crate (`crate::`, `super::` and `self::` resolved; a module root's own children
/// named by their name).
fn target<'a>(
    files: &'a BTreeMap<String, (String, bool)>,
    m: &str,
    is_root: bool,
    path: &[String],
) -> Option<&'a str> {
    let here: Vec<String> = m
        .split("::")
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let mut full: Vec<String> = match path.first().map(String::as_str) {
        Some("crate") => path[1..].to_vec(),
        Some("self") => here.iter().chain(&path[1..]).cloned().collect(),
        Some("super") => {
            let mut base = here.clone();
            let mut rest = path;
            while rest.first().map(String::as_str) == Some("super") {
                base.pop();
                rest = &rest[1..];
            }
            base.into_iter().chain(rest.iter().cloned()).collect()
        }
        Some(_) if is_root => here.iter().chain(path).cloned().collect(),
        _ => return None,
    };
    while !full.is_empty() {
        if let Some((k, _)) = files.get_key_value(&full.join("::")) {
            return (k != m).then_some(k.as_str());
        }
        full.pop();
    }
    None
}

/// Edges between files (module paths): `a` → `b` when `a` names an item of `b`.
fn edges(files: &BTreeMap<String, (String, bool)>) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, (code, is_root)) in files {
        for p in paths(code) {
            if let Some(t) = target(files, m, *is_root, &p) {
                out.entry(m.clone()).or_default().insert(t.to_string());
            }
        }
    }
    out
}

/// The strongly connected groups of more than one file (Tarjan's algorithm).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'e> {
        edges: &'e BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'e str, usize>,
        low: BTreeMap<&'e str, usize>,
        stack: Vec<&'e str>,
        on_stack: BTreeSet<&'e str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'e>(v: &'e str, s: &mut State<'e>) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        if let Some(ws) = s.edges.get(v) {
            for w in ws {
                let w = w.as_str();
                if !s.index.contains_key(w) {
                    visit(w, s);
                    let l = s.low[w].min(s.low[v]);
                    s.low.insert(v, l);
                } else if s.on_stack.contains(w) {
                    let l = s.index[w].min(s.low[v]);
                    s.low.insert(v, l);
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut group = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                group.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if group.len() > 1 {
                group.sort();
                s.found.push(group);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(v, &mut s);
        }
    }
    s.found
}

fn layer(m: &str) -> &str {
    m.split("::").next().unwrap_or(m)
}

#[test]
fn stages_use_only_earlier_stages_and_no_file_uses_itself_back() {
    let base = root().join("src");
    let mut files = BTreeMap::new();
    sources(&base, &base, &mut files);
    let edges = edges(&files);
    let mut problems = Vec::new();
    for m in files.keys() {
        let l = layer(m);
        if !m.is_empty() && l != "main" && !LAYERS.contains(&l) {
            problems.push(format!("`{l}` is not in LAYERS: place it in the layering"));
        }
    }
    for (from, tos) in &edges {
        let rank = |m: &str| LAYERS.iter().position(|l| *l == layer(m));
        for to in tos {
            if let (Some(a), Some(b)) = (rank(from), rank(to))
                && b > a
            {
                problems.push(format!(
                    "`{from}` uses `{to}`, a later stage (`{}` comes after `{}`)",
                    layer(to),
                    layer(from)
                ));
            }
        }
    }
    for group in cycles(&edges) {
        problems.push(format!(
            "these files use each other in a cycle: {}",
            group.join(", ")
        ));
    }
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The check sees the crate: a sample of edges it must find.
    for (from, to) in [
        ("cli::simulate", "sim::montecarlo"),
        ("render::nginx", "check"),
    ] {
        assert!(
            edges.get(from).is_some_and(|t| t
                .iter()
                .any(|x| x == to || x.starts_with(&format!("{to}::")))),
            "the check misses `{from}` → `{to}`"
        );
    }
}

/// The path reader on the forms the crate's code uses.
#[test]
fn paths_are_read_with_their_groups() {
    let got =
        paths("use crate::{model, schema::{self, explain::Explainer}};\nlet x = super::y::z(1);");
    let want: Vec<Vec<&str>> = vec![
        vec!["crate", "model"],
        vec!["crate", "schema"],
        vec!["crate", "schema", "explain", "Explainer"],
        vec!["super", "y", "z"],
    ];
    let got: Vec<Vec<&str>> = got
        .iter()
        .map(|p| p.iter().map(String::as_str).collect())
        .collect();
    assert_eq!(got, want);
}
