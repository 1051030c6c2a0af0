//! The plan's PromQL templates parsed with a real parser, with positions.
//!
//! A metric's `query` is a template: `$service`, `$track` and `$window` are filled in by
//! `plan render`. `promql-parser` checks the filled query but its errors carry only a
//! message, and its tree carries no positions. This adapter fills the template while
//! recording where each filled byte came from, parses it once, and on an error recovers
//! where the parser stopped (the lexer's offending character, found by lexing prefixes;
//! the first token after which no continuation parses; the call of an unknown function)
//! and maps it back into the template, so the finding can be placed at its line and column
//! inside the YAML string. It also outlines the template (its selectors and calls, in
//! source order) so that checks walking the tree can point at the node they are about.
//!
//! Everything here is bounded and total: any input gives a result, never a panic, and
//! every range lies within the template.

use promql_parser::parser::{Expr, lexer, parse as promql_parse};
use std::ops::Range;

/// PromQL's functions and aggregations, for a did-you-mean on an unknown one.
const FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "avg",
    "avg_over_time",
    "bottomk",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "count",
    "count_over_time",
    "count_values",
    "delta",
    "deriv",
    "exp",
    "floor",
    "group",
    "histogram_quantile",
    "idelta",
    "increase",
    "irate",
    "label_join",
    "label_replace",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "max",
    "max_over_time",
    "min",
    "min_over_time",
    "predict_linear",
    "present_over_time",
    "quantile",
    "quantile_over_time",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sort",
    "sort_desc",
    "sqrt",
    "stddev",
    "stddev_over_time",
    "stdvar",
    "stdvar_over_time",
    "sum",
    "sum_over_time",
    "time",
    "timestamp",
    "topk",
    "vector",
];

/// The values `plan render` fills in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Vars<'a> {
    pub(crate) service: &'a str,
    pub(crate) track: &'a str,
    pub(crate) window: &'a str,
}

/// Why a template is not PromQL, and where in the template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QueryError {
    pub(crate) message: String,
    /// Bytes of the template (empty at the end of the query for an unexpected end).
    pub(crate) range: Range<usize>,
}

/// Parses `template` as `plan render` writes it: the tree, or the error placed in the
/// template.
pub(crate) fn parse(template: &str, vars: Vars) -> Result<Expr, QueryError> {
    let filled = fill(template, vars);
    match promql_parse(&filled.text) {
        Ok(expr) => Ok(expr),
        Err(message) => {
            let (message, range) = locate_error(&filled.text, message);
            Err(QueryError {
                message,
                range: filled.to_template(range),
            })
        }
    }
}

/// A filled template and, for each variable filled in, its range in the filled text and
/// in the template.
pub(crate) struct Filled {
    pub(crate) text: String,
    pieces: Vec<(Range<usize>, Range<usize>)>,
    template_len: usize,
}

const VARS: [&str; 3] = ["$service", "$track", "$window"];

/// Fills `$service`, `$track` and `$window` in one left-to-right pass (a filled value is
/// never scanned again).
pub(crate) fn fill(template: &str, vars: Vars) -> Filled {
    let mut text = String::with_capacity(template.len() + 16);
    let mut pieces = Vec::new();
    let mut rest = 0;
    let mut i = 0;
    while let Some(d) = template[i..].find('$') {
        let at = i + d;
        let found = VARS.iter().find(|v| template[at..].starts_with(*v));
        match found {
            Some(var) => {
                text.push_str(&template[rest..at]);
                let value = match *var {
                    "$service" => vars.service,
                    "$track" => vars.track,
                    _ => vars.window,
                };
                let start = text.len();
                text.push_str(value);
                pieces.push((start..text.len(), at..at + var.len()));
                rest = at + var.len();
                i = rest;
            }
            None => i = at + 1,
        }
    }
    text.push_str(&template[rest..]);
    Filled {
        text,
        pieces,
        template_len: template.len(),
    }
}

impl Filled {
    /// The template offset of filled offset `at`; inside a filled value, the variable's
    /// start (or its end, with `end`).
    fn offset(&self, at: usize, end: bool) -> usize {
        let mut shift: isize = 0;
        for (f, t) in &self.pieces {
            if at < f.start || (at == f.start && !end) {
                break;
            }
            if at < f.end || (at == f.end && end) {
                return if end && at > f.start { t.end } else { t.start };
            }
            shift = t.end as isize - f.end as isize;
        }
        (at as isize + shift).clamp(0, self.template_len as isize) as usize
    }

    /// A range of the filled text as a range of the template (a filled value stands for
    /// its whole variable).
    pub(crate) fn to_template(&self, r: Range<usize>) -> Range<usize> {
        let start = self.offset(r.start.min(self.text.len()), false);
        let end = self.offset(r.end.min(self.text.len()), true).max(start);
        start..end
    }
}

const INVALID: &str = "invalid promql query";

/// Queries longer than this get no position search (it lexes and parses prefixes, so it
/// is quadratic); the error then covers the whole query. A plan's queries are far shorter.
const MAX_SEARCH_BYTES: usize = 4096;

/// Where in `q` the parser's `message` arises, and the message to show (the generic
/// "invalid promql query" gets the unexpected token named).
fn locate_error(q: &str, mut message: String) -> (String, Range<usize>) {
    let whole = 0..q.len();
    if q.len() > MAX_SEARCH_BYTES {
        return (message, whole);
    }
    let toks = tokens(q);
    // Unclosed things: the opening character is what to fix.
    let opener = |open: u8| {
        unclosed(q, &toks)
            .into_iter()
            .rev()
            .find(|&i| q.as_bytes()[i] == open)
            .map(|i| i..i + 1)
    };
    let at_end = q.trim_end().len();
    let mut suggestion = None;
    let fixed = match message.as_str() {
        "unclosed left parenthesis" => Some(opener(b'(').unwrap_or(at_end..at_end)),
        "unexpected end of input inside braces" => Some(opener(b'{').unwrap_or(at_end..at_end)),
        "unexpected end of input inside brackets" => Some(opener(b'[').unwrap_or(at_end..at_end)),
        m if m.starts_with("unterminated quoted string") => toks
            .iter()
            .rev()
            .find(|t| t.kind == Kind::Str && !t.closed)
            .map(|t| t.range.start..t.range.start + 1),
        m if m.starts_with("no expression found") => Some(0..at_end),
        m if m.starts_with("unexpected end of input")
            || m == "escape sequence not terminated"
            || m.ends_with("can not be at the end") =>
        {
            Some(at_end..at_end)
        }
        m if m.starts_with("unknown function with name '") => {
            let name = m["unknown function with name '".len()..].trim_end_matches('\'');
            let known: Vec<String> = FUNCTIONS.iter().map(|f| f.to_string()).collect();
            suggestion = crate::suggest::nearest(name, &known)
                .map(|near| format!(" (did you mean `{near}`?)"));
            outline(q).calls.into_iter().find(|c| &q[c.clone()] == name)
        }
        _ => None,
    };
    if let Some(tail) = suggestion {
        message.push_str(&tail);
    }
    if let Some(range) = fixed {
        let open = q
            .get(range.clone())
            .filter(|t| matches!(*t, "(" | "{" | "[" | "\"" | "'" | "`"));
        let message = match open {
            Some(o) if message.starts_with("un") => {
                // The parser's "unterminated quoted string \"" names the quote already.
                let head = message.trim_end_matches(['"', '\'', '`', ' ']);
                format!("{head}: this `{o}` is never closed")
            }
            _ => message,
        };
        return (message, range);
    }
    if lexer(q).is_err() {
        return (
            message.clone(),
            lexer_error_at(q, &message).unwrap_or(whole),
        );
    }
    match first_bad_token(q, &toks, &message) {
        Some(Bad::Token(i)) => {
            let t = &toks[i];
            let shown = if message == INVALID {
                format!("unexpected `{}`", &q[t.range.clone()])
            } else {
                message
            };
            (shown, t.range.clone())
        }
        Some(Bad::End) => {
            let shown = if message == INVALID {
                "unexpected end of input".to_string()
            } else {
                message
            };
            (shown, at_end..at_end)
        }
        None => (message, whole),
    }
}

/// The offending characters of a lexer error: the end of the shortest prefix of `q` that
/// the lexer rejects with the same message.
fn lexer_error_at(q: &str, message: &str) -> Option<Range<usize>> {
    let ends: Vec<usize> = q.char_indices().map(|(i, c)| i + c.len_utf8()).collect();
    let end = ends[first(
        ends.len(),
        |k| matches!(lexer(&q[..ends[k]]), Err(m) if m == message),
    )?];
    // `bad number or duration syntax: 5x` names the lexeme: underline all of it.
    let len = message
        .strip_prefix("bad number or duration syntax: ")
        .map_or(0, str::len);
    let last = q[..end].char_indices().next_back().map_or(0, |(i, _)| i);
    let start = if len > 0 && len <= end && q.is_char_boundary(end - len) {
        end - len
    } else {
        last
    };
    Some(start..end)
}

enum Bad {
    Token(usize),
    End,
}

/// Completions tried after a prefix, before its open brackets are closed: a prefix that
/// one of them makes parse (or fail only on meaning) can still become a query.
const COMPLETIONS: [&str; 15] = [
    "x) (x", ") x", "x) x", "", " x", " 1", "=\"\"", "\"\"", "5m", " (x) (x)", "(x)", "x)", "1, x",
    " 5m", "a=\"\"",
];

/// The first token after which no continuation of the query parses; for an error about
/// meaning (the grammar accepted the tokens), the first prefix that gives that error, with
/// a binary operator's error placed at the operator. `End` when every prefix can still
/// become a query (the query ends too early).
fn first_bad_token(q: &str, toks: &[Token], message: &str) -> Option<Bad> {
    let about_meaning = message != INVALID;
    let bad = |i: usize| {
        let prefix = &q[..toks[i].range.end];
        if about_meaning {
            let c = format!("{prefix}{}", closers(q, &toks[..=i]));
            return matches!(promql_parse(&c), Err(m) if m == message);
        }
        !COMPLETIONS.iter().any(|c| {
            let open = format!("{prefix}{c}");
            let candidate = format!("{open}{}", closers(&open, &tokens(&open)));
            match promql_parse(&candidate) {
                Ok(_) => true,
                Err(m) => m != INVALID && lexer(&candidate).is_ok(),
            }
        })
    };
    match first(toks.len(), bad) {
        Some(i) if about_meaning => Some(Bad::Token(blame_operator(q, toks, i, message))),
        Some(i) => Some(Bad::Token(i)),
        None if about_meaning => None,
        None => Some(Bad::End),
    }
}

/// Above this many tokens the prefixes are bisected rather than tried in turn (each try
/// parses up to a dozen candidates; a 4000-character query would take seconds).
const LINEAR_TOKENS: usize = 128;

/// The first `i < n` for which `bad(i)` holds. Being bad carries over to longer prefixes
/// (no continuation repairs a prefix that none of them completes; the lexer fails at the
/// same character however much follows), so a long query is bisected; a short one is
/// scanned in order, which is exact even where that does not hold.
fn first(n: usize, bad: impl Fn(usize) -> bool) -> Option<usize> {
    if n <= LINEAR_TOKENS {
        return (0..n).find(|&i| bad(i));
    }
    if !bad(n - 1) {
        return None;
    }
    let (mut lo, mut hi) = (0, n - 1);
    // Invariant: bad(hi); every index below lo is taken as good.
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if bad(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(hi)
}

/// For an error about a binary expression, the nearest binary operator before token `i`
/// at the same nesting depth; otherwise `i`.
fn blame_operator(q: &str, toks: &[Token], i: usize, message: &str) -> usize {
    if !message.contains("binary expression")
        && !message.contains("vector matching")
        && !message.contains("comparison")
        && !message.contains("set operator")
    {
        return i;
    }
    let mut depth = 0i32;
    for j in (0..=i).rev() {
        match toks[j].kind {
            Kind::Close => depth += 1,
            // Out of a range or matchers to the selector's level; not out of a call.
            Kind::Open if depth == 0 && q.as_bytes()[toks[j].range.start] != b'(' => {}
            Kind::Open => depth -= 1,
            Kind::Op if depth == 0 && j != i => return j,
            Kind::Ident
                if depth == 0
                    && j != i
                    && matches!(
                        q[toks[j].range.clone()].to_ascii_lowercase().as_str(),
                        "and" | "or" | "unless"
                    ) =>
            {
                return j;
            }
            _ => {}
        }
        if depth < 0 {
            break;
        }
    }
    i
}

/// The closing brackets that `toks` leave open, innermost first.
fn closers(q: &str, toks: &[Token]) -> String {
    unclosed(q, toks)
        .iter()
        .rev()
        .map(|&i| match q.as_bytes()[i] {
            b'(' => ')',
            b'[' => ']',
            _ => '}',
        })
        .collect()
}

/// Offsets of the brackets left open by `toks`, outermost first.
fn unclosed(q: &str, toks: &[Token]) -> Vec<usize> {
    let mut open = Vec::new();
    for t in toks {
        match t.kind {
            Kind::Open => open.push(t.range.start),
            Kind::Close => {
                let want = match q.as_bytes()[t.range.start] {
                    b')' => b'(',
                    b']' => b'[',
                    _ => b'{',
                };
                if open.last().is_some_and(|&o| q.as_bytes()[o] == want) {
                    open.pop();
                }
            }
            _ => {}
        }
    }
    open
}

/// The kinds of token the outline needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Ident,
    /// `$name`.
    Var,
    Number,
    Str,
    Open,
    Close,
    Op,
    Comma,
    Other,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) kind: Kind,
    pub(crate) range: Range<usize>,
    /// A string's closing quote was found.
    closed: bool,
}

/// A forgiving PromQL tokenizer for templates (it knows `$name`) and filled queries: it
/// never fails, an unknown character is an `Other` token.
pub(crate) fn tokens(s: &str) -> Vec<Token> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    while i < b.len() {
        let c = b[i];
        let start = i;
        let mut closed = true;
        let kind = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'$' => {
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                Kind::Var
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {
                while i < b.len() && ident(b[i]) {
                    i += 1;
                }
                Kind::Ident
            }
            c if c.is_ascii_digit()
                || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) =>
            {
                while i < b.len() {
                    let d = b[i];
                    let exponent_sign = (d == b'+' || d == b'-') && matches!(b[i - 1], b'e' | b'E');
                    if d.is_ascii_alphanumeric() || d == b'.' || d == b'_' || exponent_sign {
                        i += 1;
                    } else {
                        break;
                    }
                }
                Kind::Number
            }
            b'"' | b'\'' | b'`' => {
                i += 1;
                closed = false;
                while i < b.len() {
                    if b[i] == b'\\' && c != b'`' {
                        i += 2;
                        continue;
                    }
                    i += 1;
                    if b[i - 1] == c {
                        closed = true;
                        break;
                    }
                }
                i = i.min(b.len());
                Kind::Str
            }
            b'(' | b'[' | b'{' => {
                i += 1;
                Kind::Open
            }
            b')' | b']' | b'}' => {
                i += 1;
                Kind::Close
            }
            b',' => {
                i += 1;
                Kind::Comma
            }
            b'=' | b'!' | b'<' | b'>' => {
                i += 1;
                if i < b.len() && (b[i] == b'=' || b[i] == b'~') {
                    i += 1;
                }
                Kind::Op
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'@' => {
                i += 1;
                Kind::Op
            }
            _ => {
                // One character, whole (UTF-8).
                i += s[i..].chars().next().map_or(1, char::len_utf8);
                Kind::Other
            }
        };
        // Never split a character: a string may end mid-escape at a multi-byte char.
        while i < b.len() && !s.is_char_boundary(i) {
            i += 1;
        }
        out.push(Token {
            kind,
            range: start..i,
            closed,
        });
    }
    out
}

const GROUPING: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
const AGGREGATIONS: [&str; 14] = [
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "limitk",
    "limit_ratio",
];
const KEYWORDS: [&str; 9] = [
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "@",
];

/// One vector or range selector of a query, in the query's own offsets.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Selector {
    /// From the metric name (or `{`) to the closing `}` (or `]` of its range).
    pub(crate) range: Range<usize>,
    /// Inside `{...}`, when it has braces.
    pub(crate) matchers: Option<Range<usize>>,
    /// Inside `[...]` of a range selector (not a subquery).
    pub(crate) window: Option<Range<usize>>,
}

/// The outline of a query: its selectors and calls (functions and aggregations, by the
/// range of their name), each in source order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outline {
    pub(crate) selectors: Vec<Selector>,
    pub(crate) calls: Vec<Range<usize>>,
}

/// Outlines `q` (a template or a filled query).
pub(crate) fn outline(q: &str) -> Outline {
    let toks = tokens(q);
    let mut out = Outline::default();
    let text = |t: &Token| &q[t.range.clone()];
    let next_is = |i: usize, ch: u8| {
        toks.get(i + 1).is_some_and(|t| {
            matches!(t.kind, Kind::Open | Kind::Close) && q.as_bytes()[t.range.start] == ch
        })
    };
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        let word = text(t).to_ascii_lowercase();
        let opens = |ch: u8| t.kind == Kind::Open && q.as_bytes()[t.range.start] == ch;
        if t.kind == Kind::Ident && GROUPING.contains(&word.as_str()) && next_is(i, b'(') {
            // A label list: skip it.
            i = matching(q, &toks, i + 1).map_or(toks.len(), |c| c + 1);
            continue;
        }
        if opens(b'[') {
            // A range, a subquery's range and step, or a stray bracket: no selector inside.
            i = matching(q, &toks, i).map_or(toks.len(), |c| c + 1);
            continue;
        }
        let after_modifier = i > 0
            && matches!(
                text(&toks[i - 1]).to_ascii_lowercase().as_str(),
                "offset" | "@"
            );
        let is_call = t.kind == Kind::Ident
            && (next_is(i, b'(')
                || (AGGREGATIONS.contains(&word.as_str())
                    && toks.get(i + 1).is_some_and(|n| {
                        matches!(text(n).to_ascii_lowercase().as_str(), "by" | "without")
                    })));
        if is_call {
            out.calls.push(t.range.clone());
            i += 1;
            continue;
        }
        let bare = opens(b'{');
        let named = t.kind == Kind::Ident && !KEYWORDS.contains(&word.as_str()) && !after_modifier;
        if !bare && !named {
            i += 1;
            continue;
        }
        let start = t.range.start;
        let mut end = t.range.end;
        let mut matchers = None;
        let mut j = i;
        let brace = if bare {
            Some(i)
        } else if next_is(i, b'{') {
            Some(i + 1)
        } else {
            None
        };
        if let Some(b) = brace {
            let close = matching(q, &toks, b);
            let inner_end = close.map_or(q.len(), |c| toks[c].range.start);
            matchers = Some(toks[b].range.end..inner_end);
            j = close.unwrap_or(toks.len() - 1);
            end = toks[j].range.end;
        }
        let mut window = None;
        if next_is(j, b'[')
            && let Some(c) = matching(q, &toks, j + 1)
        {
            let subquery = q[toks[j + 1].range.end..toks[c].range.start].contains(':');
            if !subquery {
                window = Some(toks[j + 1].range.end..toks[c].range.start);
                end = toks[c].range.end;
                j = c;
            }
        }
        out.selectors.push(Selector {
            range: start..end,
            matchers,
            window,
        });
        i = j + 1;
    }
    out
}

/// The index of the token closing the bracket opened by token `open`.
fn matching(q: &str, toks: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (k, t) in toks.iter().enumerate().skip(open) {
        match t.kind {
            Kind::Open => depth += 1,
            Kind::Close => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
        let _ = q;
    }
    None
}

/// The byte range in `template` of the name of the `nth` (0-based) call of function or
/// aggregation `name`, in source order.
pub(crate) fn locate_call(template: &str, name: &str, nth: usize) -> Option<Range<usize>> {
    outline(template)
        .calls
        .into_iter()
        .filter(|r| template[r.clone()].eq_ignore_ascii_case(name))
        .nth(nth)
}

/// The byte range in `template` of the `nth` (0-based) selector of metric `metric`, in
/// source order.
pub(crate) fn locate_selector(template: &str, metric: &str, nth: usize) -> Option<Range<usize>> {
    outline(template)
        .selectors
        .into_iter()
        .filter(|s| {
            template[s.range.clone()].starts_with(metric) && {
                let rest = &template[s.range.start + metric.len()..];
                !rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            }
        })
        .nth(nth)
        .map(|s| s.range)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const V: Vars = Vars {
        service: "web",
        track: "canary",
        window: "5m",
    };

    fn err(q: &str) -> (String, String) {
        let e = parse(q, V).unwrap_err();
        (e.message, q[e.range].to_string())
    }

    #[test]
    fn fills_and_maps_back() {
        let f = fill("x{service=\"$service\"}[$window]", V);
        assert_eq!(f.text, "x{service=\"web\"}[5m]");
        assert_eq!(f.to_template(17..19), 22..29);
        assert_eq!(f.to_template(0..1), 0..1);
        assert_eq!(f.to_template(19..20), 29..30);
        assert_eq!(f.to_template(12..13), 11..19);
    }

    #[test]
    fn lexer_errors() {
        assert_eq!(err("sum(x)) + 1").1, ")");
        assert_eq!(err("sum(rate(x[5m])").1, "(");
        assert_eq!(err("x{a=\"b\"").1, "{");
        assert_eq!(err("x{a=\"b").1, "\"");
        assert_eq!(err("x{a=\"$track\"} $foo").1, "$");
        assert_eq!(err("x[5x]").1, "5x");
    }

    #[test]
    fn parser_errors() {
        assert_eq!(err("p99(x{track=\"$track\"})").1, "p99");
        assert_eq!(
            err("sum(rate(x[$window])) by"),
            ("unexpected end of input".into(), "".into())
        );
        assert_eq!(err("sum(x) / / sum(y)").1, "/");
        assert_eq!(err("rate(x[5m]) by (a)").1, "by");
        assert_eq!(err("x[$window] * 2").1, "*");
        assert_eq!(err("sum(x) sum(y)").1, "sum");
    }

    #[test]
    fn long_queries_are_bisected_to_the_same_token() {
        let unit = "sum(rate(x_total{track=\"$track\"}[$window]))";
        let mut q = vec![unit; 60].join(" + ");
        let at = q.len() + 3;
        q.push_str(" + * 1");
        let e = parse(&q, V).unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.range),
            ("unexpected `*`", at..at + 1)
        );
        let mut q = vec![unit; 60].join(" + ");
        let at = q.len() + 3;
        q.push_str(" + x[5m] * 2");
        // `... + x[5m]` already adds a range vector.
        let e = parse(&q, V).unwrap_err();
        assert_eq!(e.range, at - 2..at - 1);
        let mut q = vec![unit; 60].join(" + ");
        let at = q.len() + 7;
        q.push_str(" + x{a!b}");
        let e = parse(&q, V).unwrap_err();
        assert_eq!(e.range, at..at + 1, "{}", e.message);
    }

    #[test]
    fn outline_and_locators() {
        let q = "sum by (le) (rate(a_bucket{track=\"$track\"}[$window])) / on(x) b offset 5m + {c=\"d\"}";
        let o = outline(q);
        let sel: Vec<&str> = o.selectors.iter().map(|s| &q[s.range.clone()]).collect();
        assert_eq!(
            sel,
            ["a_bucket{track=\"$track\"}[$window]", "b", "{c=\"d\"}"]
        );
        assert_eq!(&q[o.selectors[0].window.clone().unwrap()], "$window");
        assert_eq!(locate_call(q, "rate", 0).map(|r| &q[r]), Some("rate"));
        assert_eq!(locate_call(q, "sum", 0), Some(0..3));
        assert_eq!(locate_call(q, "sum", 1), None, "{:?}", o.calls);
        assert_eq!(locate_selector(q, "b", 0).map(|r| &q[r]), Some("b"));
        let q = "rate(x[5m:1m])";
        assert_eq!(outline(q).selectors[0].window, None);
    }

    proptest! {
        #![proptest_config(crate::prom::proptest_config())]
        #[test]
        fn never_panics(q in "[a-z(){}\\[\\]\"'`$=~!,:. 0-9+*/^#\\\\é-]{0,40}") {
            let r = parse(&q, V);
            if let Err(e) = r {
                prop_assert!(e.range.start <= e.range.end && e.range.end <= q.len());
                prop_assert!(q.is_char_boundary(e.range.start) && q.is_char_boundary(e.range.end));
            }
            for s in outline(&q).selectors {
                prop_assert!(s.range.end <= q.len());
            }
        }
    }
}
