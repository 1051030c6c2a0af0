//! The checks of one PromQL template of the plan (a custom metric's `query`, or one that
//! overrides a built-in's), each placed on the token it is about inside the YAML string.
//!
//! The query is parsed once ([`crate::prom::parse`]) and the tree is reused by every check:
//!
//! - `query-syntax`: not PromQL (promtool would reject every phase's rules file);
//! - `query-unsupported` (error): PromQL outside the engine's subset ([`crate::prom::engine`]),
//!   placed on the function or aggregation named;
//! - `query-without-track` (error): a selector that does not match `track="$track"` reads
//!   both tracks' series, so canary and stable cannot be told apart;
//! - `query-without-service` (warning): a selector that does not match
//!   `service="$service"` reads every service's series of that metric. A warning, not an
//!   error: a metric can belong to the service by other means (a name only this service
//!   exports, a `job` label), which the plan cannot know;
//! - `query-literal-window` (warning): a range written as a literal (`[5m]`) instead of
//!   `[$window]` drifts from `monitoring.window`, which the thin-traffic checks and the
//!   simulator's defaults assume;
//! - `query-not-instant` (error): the query is a range vector or a string, which no rule
//!   can evaluate;
//! - `query-not-single-series` (error): the query can return several series per track
//!   (a selector not aggregated, `by` a label the selectors do not pin, `without`,
//!   `topk` of more than one or `by`, `count_values`), while each rule compares one value per track.

use crate::diagnostic::{Diagnostic, Place};
use crate::prom::engine;
use crate::prom::parse::{self, Outline, Vars};
use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{Expr, LabelModifier, VectorSelector};
use std::collections::BTreeSet;
use std::ops::Range;

const SYNTAX_HINT: &str = "promtool would reject the whole rules file of every phase, leaving it without rollback alerts: fix the query (try it in Prometheus' expression browser)";

/// Checks the template `query` of metric `name`, found at `pointer`.
pub(super) fn check(name: &str, pointer: &str, query: &str, vars: Vars, f: &mut Vec<Diagnostic>) {
    let expr = match parse::parse(query, vars) {
        Ok(expr) => expr,
        Err(e) => {
            // `$windw`: a variable `plan render` does not fill in.
            let var = query
                .get(e.range.start..)
                .filter(|rest| rest.starts_with('$'))
                .map(|rest| {
                    let len = 1 + rest[1..]
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(rest.len() - 1);
                    &rest[..len]
                });
            // A variable `plan render` fills in is not the fault (`sum(x[$window])` is
            // a type error the parser reports at the range).
            let known = ["$service", "$track", "$window"];
            if let Some(var) = var.filter(|v| v.len() > 1 && !known.contains(v)) {
                let range = e.range.start..e.range.start + var.len();
                f.push(
                    Diagnostic::error(
                        "query-syntax",
                        pointer,
                        format!("the query of `{name}` uses `{var}`, which `plan render` does not fill in ({})", e.message),
                    )
                    .at_offset(query, range)
                    .with_hint(format!(
                        "a query may use `$service`, `$track` and `$window`{}",
                        crate::suggest::nearest(var, &["$service".to_string(), "$track".to_string(), "$window".to_string()])
                            .map_or(String::new(), |n| format!("; did you mean `{n}`?"))
                    )),
                );
                return;
            }
            f.push(
                Diagnostic::error(
                    "query-syntax",
                    pointer,
                    format!("the query of `{name}` is not valid PromQL: {}", e.message),
                )
                .at_offset(query, e.range)
                .with_hint(SYNTAX_HINT),
            );
            return;
        }
    };
    let before = f.len();
    unknown_variables(name, pointer, query, f);
    check_parsed(&expr, name, pointer, query, vars, f);
    // What the engine lacks is said too, unless an error of this query is about the same
    // part of it already (`count_values` keeps several series and is not evaluated; a
    // range vector as the result).
    if let Some(u) = unsupported(&expr, name, pointer, query) {
        let same = |d: &Diagnostic| match (&d.place, &u.place) {
            (Some(Place::Within(a)), Some(Place::Within(b))) => a.range == b.range,
            _ => false,
        };
        if !f[before..].iter().any(|d| d.is_error() && same(d)) {
            f.push(u);
        }
    }
}

/// The variables `plan render` fills in.
const VARIABLES: [&str; 3] = ["$service", "$track", "$window"];

/// `query-variable`: a `$name` (or `${name}`) inside a string of the query that `plan
/// render` does not fill in, which Prometheus would then match as that very text. An
/// error when it is near a variable (a typo: `$trak`, `${track}`, `$Track`), else a
/// warning (a `$` meant literally, as in a regular expression, is rare but possible).
fn unknown_variables(name: &str, pointer: &str, query: &str, f: &mut Vec<Diagnostic>) {
    let known: Vec<String> = VARIABLES.iter().map(|v| v.to_string()).collect();
    for t in parse::tokens(query)
        .into_iter()
        .filter(|t| t.kind == parse::Kind::Str)
    {
        let text = &query[t.range.clone()];
        let mut from = 0;
        while let Some(at) = text[from..].find('$').map(|i| from + i) {
            from = at + 1;
            let rest = &text[at + 1..];
            let braced = rest.starts_with('{');
            let body = if braced { &rest[1..] } else { rest };
            let len = body
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(body.len());
            // `$1` is a regular expression's group, not a variable.
            let starts = body.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
            if len == 0 || !starts || (braced && !body[len..].starts_with('}')) {
                continue;
            }
            let var = format!("${}", &body[..len]);
            let written_len = 1 + len + if braced { 2 } else { 0 };
            if !braced && VARIABLES.contains(&var.as_str()) {
                continue;
            }
            let start = t.range.start + at;
            let written = &query[start..start + written_len];
            let near = if braced && VARIABLES.contains(&var.as_str()) {
                Some(var.clone())
            } else {
                crate::suggest::nearest(&var.to_ascii_lowercase(), &known)
            };
            let message = format!(
                "the query of `{name}` uses `{written}`, which `plan render` does not fill in: Prometheus would match the text `{written}` itself"
            );
            let d = match &near {
                Some(n) => Diagnostic::error("query-variable", pointer, message)
                    .with_hint(format!("did you mean `{n}`? A query may use `$service`, `$track` and `$window`")),
                None => Diagnostic::warning("query-variable", pointer, message).with_hint(
                    "a query may use `$service`, `$track` and `$window`; if the `$` is meant literally, this warning can be ignored",
                ),
            };
            f.push(d.at_offset(query, start..start + written_len));
            from = at + written_len;
        }
    }
}

/// `query-unsupported`: PromQL the engine does not evaluate, placed on the call named.
fn unsupported(expr: &Expr, name: &str, pointer: &str, query: &str) -> Option<Diagnostic> {
    let u = engine::compile(expr).err()?;
    // The `@` modifier has no call to point at: its first `@` outside strings.
    let at_modifier = || {
        parse::tokens(query)
            .into_iter()
            .find(|t| t.kind != parse::Kind::Str && &query[t.range.clone()] == "@")
            .map(|t| t.range)
    };
    let range = match &u.call {
        Some((function, nth)) => parse::locate_call(query, function, *nth),
        None if u.what.contains("`@`") => at_modifier(),
        None => None,
    }
    .unwrap_or(0..query.len());
    Some(
        Diagnostic::error(
            "query-unsupported",
            pointer,
            format!("the query of `{name}` uses {}, which `plan simulate` cannot evaluate", u.what),
        )
        .at_offset(query, range)
        .with_hint("write it with the functions, aggregations and operators alerting rules commonly use (see the README's list), so that its rollbacks can be simulated"),
    )
}

/// The checks of a query that parses.
fn check_parsed(
    expr: &Expr,
    name: &str,
    pointer: &str,
    query: &str,
    vars: Vars,
    f: &mut Vec<Diagnostic>,
) {
    let outline = parse::outline(query);
    let mut selectors = Vec::new();
    visit(expr, &mut |e| {
        if let Some(vs) = selector(e) {
            selectors.push(vs);
        }
    });
    // The outline and the tree see the same selectors in the same order; if not (a query
    // the outline misreads), checks fall back to the whole query and to the tree's values.
    let aligned = outline.selectors.len() == selectors.len();
    let whole = 0..query.len();
    for (i, vs) in selectors.iter().enumerate() {
        let at = if aligned {
            outline.selectors[i].range.clone()
        } else {
            whole.clone()
        };
        let shown = &query[at.clone()];
        let track_ok = match (aligned, &outline.selectors.get(i)) {
            (true, Some(s)) => pins_in_template(query, s.matchers.as_ref(), "track", &["$track"]),
            _ => pins(vs, "track", vars.track),
        };
        if !track_ok {
            f.push(
                Diagnostic::error(
                    "query-without-track",
                    pointer,
                    format!(
                        "the selector `{shown}` in the query of `{name}` does not match `track=\"$track\"`, so canary and stable cannot be told apart"
                    ),
                )
                .at_offset(query, at.clone())
                .with_hint("add `track=\"$track\"` inside its braces (`plan render` fills in `canary` or `stable`)"),
            );
        }
        let service_ok = match (aligned, &outline.selectors.get(i)) {
            (true, Some(s)) => pins_in_template(
                query,
                s.matchers.as_ref(),
                "service",
                &["$service", vars.service],
            ),
            _ => pins(vs, "service", vars.service),
        };
        if !service_ok {
            f.push(
                Diagnostic::warning(
                    "query-without-service",
                    pointer,
                    format!(
                        "the selector `{shown}` in the query of `{name}` does not match `service=\"$service\"`: it reads the series of every service that exports this metric"
                    ),
                )
                .at_offset(query, at.clone())
                .with_hint("add `service=\"$service\"` inside its braces; if only this service exports the metric, that changes nothing and silences this warning"),
            );
        }
        if aligned
            && let Some(w) = &outline.selectors[i].window
            && query[w.clone()].trim() != "$window"
        {
            let literal = query[w.clone()].trim();
            f.push(
                Diagnostic::warning(
                    "query-literal-window",
                    pointer,
                    format!(
                        "the query of `{name}` reads a `[{literal}]` range instead of `[$window]`: the thin-traffic checks and the simulator's defaults assume `monitoring.window` ({})",
                        vars.window
                    ),
                )
                .at_offset(query, w.clone())
                .with_hint("write `[$window]` so the range follows `monitoring.window`; or set `monitoring.window` to the range you mean"),
            );
        }
    }
    if let Some(d) = not_instant(expr, name, pointer, query, &outline, &selectors) {
        f.push(d);
        return;
    }
    if let Err((node, why)) = single(expr, &[]) {
        let range = culprit_range(expr, node, query, &outline).unwrap_or(whole);
        let shown = query[range.clone()].to_string();
        let (message, hint) = why.explain(name, &shown);
        f.push(
            Diagnostic::error("query-not-single-series", pointer, message)
                .at_offset(query, range)
                .with_hint(format!(
                    "Prometheus would evaluate the rule once per series and the simulator compares one value per track: {hint}"
                )),
        );
    }
}

/// A query whose value is a range vector or a string: no rule can compare it.
fn not_instant(
    expr: &Expr,
    name: &str,
    pointer: &str,
    query: &str,
    outline: &Outline,
    selectors: &[&VectorSelector],
) -> Option<Diagnostic> {
    let mut e = expr;
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    let what = match e {
        Expr::MatrixSelector(_) | Expr::Subquery(_) => "a range vector",
        Expr::StringLiteral(_) => "a string",
        _ => return None,
    };
    let range = match e {
        Expr::MatrixSelector(_) if outline.selectors.len() == selectors.len() => outline
            .selectors
            .iter()
            .zip(selectors)
            .find(|(_, vs)| matches!(e, Expr::MatrixSelector(m) if std::ptr::eq(&m.vs, **vs)))
            .map(|(s, _)| s.range.clone()),
        _ => None,
    }
    .unwrap_or(0..query.len());
    Some(
        Diagnostic::error(
            "query-not-instant",
            pointer,
            format!("the query of `{name}` is {what}, which a rule cannot compare with a threshold"),
        )
        .at_offset(query, range)
        .with_hint("wrap a range in a function that makes one value of it, such as `rate(...[$window])`, `increase(...)` or `avg_over_time(...)`"),
    )
}

/// The selector `e` is, if it is one (a range selector's own selector).
fn selector(e: &Expr) -> Option<&VectorSelector> {
    match e {
        Expr::VectorSelector(vs) => Some(vs),
        Expr::MatrixSelector(m) => Some(&m.vs),
        _ => None,
    }
}

/// Calls `f` on `e` and every node below it, in the order their text appears.
fn visit<'e>(e: &'e Expr, f: &mut dyn FnMut(&'e Expr)) {
    f(e);
    match e {
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                visit(p, f);
            }
            visit(&a.expr, f);
        }
        Expr::Unary(u) => visit(&u.expr, f),
        Expr::Binary(b) => {
            visit(&b.lhs, f);
            visit(&b.rhs, f);
        }
        Expr::Paren(p) => visit(&p.expr, f),
        Expr::Subquery(s) => visit(&s.expr, f),
        Expr::Call(c) => {
            for a in &c.args.args {
                visit(a, f);
            }
        }
        _ => {}
    }
}

/// The alternatives of a selector's matchers (`{a="1" or b="2"}` has two).
fn alternatives(vs: &VectorSelector) -> Vec<&[Matcher]> {
    if vs.matchers.or_matchers.is_empty() {
        vec![&vs.matchers.matchers[..]]
    } else {
        vs.matchers.or_matchers.iter().map(|m| &m[..]).collect()
    }
}

/// Every alternative of `vs` matches `label="value"`.
fn pins(vs: &VectorSelector, label: &str, value: &str) -> bool {
    alternatives(vs).iter().all(|alt| {
        alt.iter().any(|m| {
            m.op == MatchOp::Equal
                && ((m.name == label && m.value == value) || m.value.contains(value))
        })
    })
}

/// Every alternative of the matchers written at `inner` (the text inside the braces)
/// has `label="v"` with `v` one of `values`, quoted with `"`, `'` or a backtick, or any
/// label with `=` whose value contains `values[0]` (the variable).
fn pins_in_template(q: &str, inner: Option<&Range<usize>>, label: &str, values: &[&str]) -> bool {
    let Some(inner) = inner else { return false };
    let text = &q[inner.clone()];
    let toks = parse::tokens(text);
    let mut ok_any = false;
    let mut current = false;
    let mut i = 0;
    while i < toks.len() {
        let t = &text[toks[i].range.clone()];
        if t.eq_ignore_ascii_case("or") {
            if !current {
                return false;
            }
            current = false;
            i += 1;
            continue;
        }
        if toks[i].kind == parse::Kind::Ident
            && toks
                .get(i + 1)
                .is_some_and(|o| &text[o.range.clone()] == "=")
            && let Some(v) = toks.get(i + 2)
            && v.kind == parse::Kind::Str
        {
            let v = &text[v.range.clone()];
            let inner = v.get(1..v.len().saturating_sub(1)).unwrap_or("");
            // `job="$service-$track"` tells the tracks apart as well as `track="$track"`.
            if (t == label && values.contains(&inner)) || inner.contains(values[0]) {
                current = true;
            }
        }
        i += 1;
    }
    ok_any |= current;
    ok_any
}

/// Labels every selector in `e` pins with `=`; None when `e` has no selector.
fn pinned(e: &Expr) -> Option<BTreeSet<String>> {
    let mut out: Option<BTreeSet<String>> = None;
    visit(e, &mut |n| {
        if let Some(vs) = selector(n) {
            let mut here: Option<BTreeSet<String>> = None;
            for alt in alternatives(vs) {
                let s: BTreeSet<String> = alt
                    .iter()
                    .filter(|m| m.op == MatchOp::Equal)
                    .map(|m| m.name.clone())
                    .collect();
                here = Some(match here {
                    None => s,
                    Some(h) => h.intersection(&s).cloned().collect(),
                });
            }
            let here = here.unwrap_or_default();
            out = Some(match out.take() {
                None => here,
                Some(o) => o.intersection(&here).cloned().collect(),
            });
        }
    });
    out
}

/// Why a node can give several series per track.
enum Why {
    Bare,
    By(Vec<String>),
    Without,
    Keeps(String),
    PerValue,
}

impl Why {
    /// The message and the hint's advice, for the node written `shown`.
    fn explain(&self, name: &str, shown: &str) -> (String, String) {
        match self {
            Why::Bare => (
                format!("the query of `{name}` returns each series of `{shown}` (one per pod, instance, ...), not one value per track"),
                "aggregate it, e.g. `sum(...)` or `max(...)`, or for a histogram `histogram_quantile(0.99, sum by (le) (...))`".into(),
            ),
            Why::By(labels) => (
                format!(
                    "`{shown} by ({})` in the query of `{name}` keeps one series per value of {}, which its selectors do not pin with `=`",
                    labels.join(", "),
                    labels.iter().map(|l| format!("`{l}`")).collect::<Vec<_>>().join(", ")
                ),
                "drop those labels from `by`, or pin them with `label=\"value\"` in every selector".into(),
            ),
            Why::Without => (
                format!("`{shown} without (...)` in the query of `{name}` keeps every other label, so one series per pod, instance, ..."),
                "aggregate with `by` only labels every selector pins, or with no `by` at all".into(),
            ),
            Why::Keeps(op) => (
                format!("`{shown}` in the query of `{name}` can keep several series (`{op}` selects series, it does not combine them, and selects more than one here, or one per `by` group)"),
                format!("combine the series instead, e.g. `max(...)`, or keep one: `{op}(1, ...)` without `by`"),
            ),
            Why::PerValue => (
                format!("`{shown}` in the query of `{name}` makes one series per distinct value"),
                "count with `count(...)` instead".into(),
            ),
        }
    }
}

/// Ok when `e` gives at most one series per track; else the node to blame and why.
/// `allowed`: labels that may still vary (`le` inside `histogram_quantile`).
fn single<'e>(e: &'e Expr, allowed: &[&str]) -> Result<(), (&'e Expr, Why)> {
    match e {
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => Ok(()),
        Expr::VectorSelector(_) | Expr::MatrixSelector(_) => Err((e, Why::Bare)),
        Expr::Paren(p) => single(&p.expr, allowed),
        Expr::Unary(u) => single(&u.expr, allowed),
        Expr::Subquery(s) => single(&s.expr, allowed),
        // `and` and `unless` keep series of their left side only.
        Expr::Binary(b) if matches!(b.op.to_string().as_str(), "and" | "unless") => {
            single(&b.lhs, allowed)
        }
        Expr::Binary(b) => {
            single(&b.lhs, allowed)?;
            single(&b.rhs, allowed)
        }
        Expr::Aggregate(a) => {
            let op = a.op.to_string().to_ascii_lowercase();
            match op.as_str() {
                // `topk(1, ...)` keeps one series per group: one, without `by`.
                "topk" | "bottomk" | "limitk"
                    if a.modifier.is_none()
                        && matches!(a.param.as_deref(), Some(Expr::NumberLiteral(n)) if n.val == 1.0) =>
                {
                    Ok(())
                }
                "topk" | "bottomk" | "limitk" | "limit_ratio" => {
                    single(&a.expr, allowed).map_err(|_| (e, Why::Keeps(op.clone())))
                }
                "count_values" => Err((e, Why::PerValue)),
                _ => match &a.modifier {
                    None => Ok(()),
                    Some(LabelModifier::Exclude(_)) => Err((e, Why::Without)),
                    Some(LabelModifier::Include(labels)) => {
                        let pinned = pinned(&a.expr);
                        let loose: Vec<String> = labels
                            .labels
                            .iter()
                            .filter(|l| {
                                !allowed.contains(&l.as_str())
                                    && pinned.as_ref().is_some_and(|p| !p.contains(*l))
                            })
                            .cloned()
                            .collect();
                        if loose.is_empty() {
                            Ok(())
                        } else {
                            Err((e, Why::By(loose)))
                        }
                    }
                },
            }
        }
        Expr::Call(c) => match c.func.name {
            "histogram_quantile" => match c.args.args.get(1) {
                Some(inner) => {
                    let mut with_le = allowed.to_vec();
                    with_le.push("le");
                    single(inner, &with_le)
                }
                None => Ok(()),
            },
            "scalar" | "vector" | "absent" | "absent_over_time" | "time" | "pi" => Ok(()),
            _ => {
                for a in &c.args.args {
                    single(a, allowed)?;
                }
                Ok(())
            }
        },
    }
}

/// Where `node` is written in `query`: its selector, or the name of its call.
fn culprit_range(expr: &Expr, node: &Expr, query: &str, outline: &Outline) -> Option<Range<usize>> {
    let call_name = match node {
        Expr::Aggregate(a) => Some(a.op.to_string().to_ascii_lowercase()),
        Expr::Call(c) => Some(c.func.name.to_string()),
        _ => None,
    };
    let mut selector_index = 0;
    let mut call_index = 0;
    let mut found = None;
    visit(expr, &mut |n| {
        if found.is_some() {
            return;
        }
        if std::ptr::eq(n, node) {
            found = Some((selector_index, call_index));
            return;
        }
        if selector(n).is_some() {
            selector_index += 1;
        }
        let name = match n {
            Expr::Aggregate(a) => Some(a.op.to_string().to_ascii_lowercase()),
            Expr::Call(c) => Some(c.func.name.to_string()),
            _ => None,
        };
        if name.is_some() && name == call_name {
            call_index += 1;
        }
    });
    let (s, c) = found?;
    match &call_name {
        Some(name) => parse::locate_call(query, name, c),
        None => {
            let mut count = 0;
            visit(expr, &mut |n| {
                if selector(n).is_some() {
                    count += 1;
                }
            });
            (count == outline.selectors.len())
                .then(|| outline.selectors.get(s).map(|x| x.range.clone()))?
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: Vars = Vars {
        service: "web",
        track: "canary",
        window: "5m",
    };

    fn codes(q: &str) -> Vec<(&'static str, String)> {
        let mut f = Vec::new();
        check("m", "/metrics/m/query", q, V, &mut f);
        f.into_iter()
            .map(|d| {
                let Some(crate::diagnostic::Place::Within(w)) = d.place else {
                    panic!("{} is not placed inside the query", d.code)
                };
                (d.code, q[w.range].to_string())
            })
            .collect()
    }

    const S: &str = "{service=\"$service\",track=\"$track\"}";

    #[test]
    fn accepts_well_scoped_single_series_queries() {
        for q in [
            format!("sum(rate(x{S}[$window])) / sum(rate(y{S}[$window]))"),
            format!("histogram_quantile(0.99, sum by (le) (rate(x_bucket{S}[$window])))"),
            format!("sum by (track) (rate(x{S}[$window]))"),
            format!("max(avg_over_time(x{S}[$window])) > 0 and sum(x{S}) > 10"),
            format!("scalar(sum(x{S})) * 2"),
        ] {
            assert_eq!(codes(&q), [], "{q}");
        }
    }

    /// Alerting and recording-rule examples from the Prometheus documentation (querying
    /// examples, histograms and summaries, alerting rules, the best-practices pages),
    /// templated as a plan writes them.
    const DOC_EXAMPLES: &[&str] = &[
        r#"sum(rate(http_requests_total{service="$service",track="$track",code=~"5.."}[$window])) / sum(rate(http_requests_total{service="$service",track="$track"}[$window]))"#,
        r#"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{service="$service",track="$track"}[$window])))"#,
        r#"histogram_quantile(0.9, sum(rate(http_request_duration_seconds_bucket{service="$service",track="$track"}[$window])) by (le))"#,
        r#"sum(rate(http_request_duration_seconds_sum{service="$service",track="$track"}[$window])) / sum(rate(http_request_duration_seconds_count{service="$service",track="$track"}[$window]))"#,
        r#"max(avg_over_time(queue_depth{service="$service",track="$track"}[$window]))"#,
        r#"sum(increase(http_requests_total{service="$service",track="$track",code=~"5.."}[$window]))"#,
        r#"sum(rate(errors_total{service="$service",track="$track"}[$window])) / sum(rate(requests_total{service="$service",track="$track"}[$window])) and sum(rate(requests_total{service="$service",track="$track"}[$window])) > 1"#,
        r#"sum(rate(errors_total{service="$service",track="$track"}[$window])) or vector(0)"#,
        r#"sum(rate(requests_total{service="$service",track="$track"}[$window])) / sum(rate(requests_total{service="$service",track="$track"}[$window] offset 1d))"#,
        r#"sum(rate(errors_total{service="$service",track="$track"}[$window])) / clamp_min(sum(rate(requests_total{service="$service",track="$track"}[$window])), 1)"#,
        r#"1 - avg(node_memory_MemAvailable_bytes{service="$service",track="$track"} / node_memory_MemTotal_bytes{service="$service",track="$track"})"#,
        r#"sum by (service, track) (rate(requests_total{service="$service",track="$track"}[$window]))"#,
        r#"min(max_over_time(up{service="$service",track="$track"}[$window]))"#,
        r#"absent(up{service="$service",track="$track"})"#,
        r#"max(predict_linear(node_filesystem_free_bytes{service="$service",track="$track"}[$window], 4 * 3600)) < 0"#,
        r#"sum(rate(errors_total{service="$service",track="$track"}[$window])) / ignoring(code) sum(rate(requests_total{service="$service",track="$track"}[$window]))"#,
        r#"max(quantile_over_time(0.95, latency_seconds{service="$service",track="$track"}[$window]))"#,
        r#"max_over_time(sum(rate(requests_total{service="$service",track="$track"}[$window]))[30m:1m])"#,
        r#"count(up{service="$service",track="$track"} == 0)"#,
        r#"sum(rate(errors_total{service="$service",track="$track"}[$window])) > bool 0.5"#,
        r#"time() - max(process_start_time_seconds{service="$service",track="$track"})"#,
        r#"sum(label_replace(rate(requests_total{service="$service",track="$track"}[$window]), "dst", "$1", "src", "(.*)"))"#,
        r#"avg(rate(process_cpu_seconds_total{service="$service",track="$track"}[$window])) * 100"#,
        r#"sum(rate(requests_total{service="$service",track="$track"}[$window])) unless sum(rate(requests_total{service="$service",track="$track"}[$window])) < 1"#,
        r#"quantile(0.9, rate(requests_total{service="$service",track="$track"}[$window]))"#,
        r#"sum(delta(queue_size{service="$service",track="$track"}[$window])) # a comment"#,
        r#"-sum(deriv(free_bytes{service="$service",track="$track"}[$window]))"#,
        r#"sum(rate(requests_total{service='$service',track='$track'}[$window]))"#,
        r#"sum(up{job="$service-$track"})"#,
        r#"topk(1, sum by (type) (rate(requests_total{service="$service",track="$track"}[$window])))"#,
    ];

    /// The documentation examples outside the engine's subset, and the call named.
    const UNSUPPORTED: &[(&str, &str)] = &[
        ("predict_linear", "predict_linear"),
        ("[30m:1m]", "max_over_time"),
        ("label_replace", "label_replace"),
        ("deriv", "deriv"),
    ];

    #[test]
    fn accepts_the_prometheus_documentation_examples() {
        for q in DOC_EXAMPLES {
            let expected: Vec<(&str, String)> = UNSUPPORTED
                .iter()
                .filter(|(mark, _)| q.contains(mark))
                .map(|(_, call)| ("query-unsupported", call.to_string()))
                .collect();
            assert_eq!(codes(q), expected, "{q}");
        }
    }

    #[test]
    fn names_variables_render_does_not_fill_in() {
        let q = r#"sum(rate(x_total{service="$servce",track="${track}",type="$tpye"}[$window])) / sum(rate(x_total{service="$service",track="$Track",job=~".*$"}[$window]))"#;
        let mut f = Vec::new();
        check("m", "/metrics/m/query", q, V, &mut f);
        let found: Vec<(&str, bool, String)> = f
            .iter()
            .filter(|d| d.code == "query-variable")
            .map(|d| {
                let Some(crate::diagnostic::Place::Within(w)) = &d.place else {
                    panic!("placed inside the query")
                };
                (d.code, d.is_error(), q[w.range.clone()].to_string())
            })
            .collect();
        assert_eq!(
            found,
            [
                ("query-variable", true, "$servce".to_string()),
                ("query-variable", true, "${track}".to_string()),
                ("query-variable", false, "$tpye".to_string()),
                ("query-variable", true, "$Track".to_string()),
            ]
        );
    }

    #[test]
    fn accepts_every_query_of_the_example_plans() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let doc: serde_json::Value = yaml_serde::from_str(&text).unwrap();
            let Some(metrics) = doc.get("metrics").and_then(|m| m.as_object()) else {
                continue;
            };
            for (name, def) in metrics {
                if let Some(q) = def.get("query").and_then(|q| q.as_str()) {
                    seen += 1;
                    assert_eq!(codes(q), [], "{}: {name}", path.display());
                }
            }
        }
        assert!(seen >= 4, "the example plans define custom queries");
    }

    #[test]
    fn flags_each_selector_at_its_place() {
        let q = "sum(rate(x{service=\"$service\"}[$window])) / sum(rate(y{track=\"$track\"}[5m]))";
        assert_eq!(
            codes(q),
            [
                (
                    "query-without-track",
                    "x{service=\"$service\"}[$window]".into()
                ),
                ("query-without-service", "y{track=\"$track\"}[5m]".into()),
                ("query-literal-window", "5m".into()),
            ]
        );
        assert_eq!(
            codes(&format!("x{S}")),
            [("query-not-single-series", format!("x{S}"))]
        );
        assert_eq!(
            codes(&format!("sum(x{S}) / sum by (pod) (x{S})")),
            [("query-not-single-series", "sum".into())]
        );
        assert_eq!(
            codes(&format!("x{S}[$window]")),
            [("query-not-instant", format!("x{S}[$window]"))]
        );
        assert_eq!(
            codes("x{service=\"$service\",track=\"canary\"}")
                .first()
                .map(|c| c.0),
            Some("query-without-track")
        );
    }
}
