//! The project's own PromQL engine: a plan's custom queries (and overrides of built-in
//! queries) evaluated over raw series exactly as Prometheus evaluates the recording rules
//! `plan render` writes, in both 2.42 and 3.x semantics.
//!
//! Queries are parsed by `promql-parser` (a maintained parser used in production by
//! GreptimeDB), [compiled](expr::compile) into the subset this engine evaluates (an
//! [`Unsupported`] construct is refused at `plan validate`), then [bound](Bound) to the series
//! of a trace: selectors pick their series and every label computation (grouping, vector
//! matching) is done once, so that each evaluation only moves numbers through the same
//! window, rate, quantile and summation code as the built-in metrics.
//!
//! Exactness caveats: Prometheus adds the elements of a sum in an order it does not define
//! (series creation order for selectors; map order after a binary operation); here they are
//! added in trace order, so sums of three or more series may differ in the last bit. Among
//! elements of equal value `topk`/`bottomk` pick the ones Go's heap would pick in trace
//! order.
//!
//! [`Unsupported`]: expr::Unsupported

mod expr;
mod functions;
mod labels;
mod node;

pub(crate) use expr::{AggOp, Expr, Selector, compile};
pub(crate) use node::EvalError;

use super::reader::{Raw, Reader};
use super::{Semantics, Series};
use node::{Cx, Node};

/// A query bound to the series it reads; evaluated at non-decreasing times.
#[derive(Debug, Clone)]
pub(crate) struct Bound {
    root: Node,
    /// The slot of the root whose element [`Bound::value_at`] returned last.
    last: Option<usize>,
}

impl Bound {
    /// Binds a compiled query to `series`.
    pub(crate) fn new(expr: &Expr, series: &[Series]) -> Bound {
        Bound {
            root: Node::bind(expr, series),
            last: None,
        }
    }

    /// The label sets of every element the query can return (none for a scalar), the
    /// metric name included as `__name__`; [`Bound::last`] indexes them.
    pub(crate) fn slots(&self) -> &[Vec<(String, String)>] {
        &self.root.slots
    }

    /// Which element [`Bound::value_at`] returned last: its index in [`Bound::slots`]
    /// (None: nothing, or a scalar, which a recording rule records without labels).
    pub(crate) fn last(&self) -> Option<usize> {
        self.last
    }

    /// The indices of the series the query reads, sorted.
    pub(crate) fn reads(&self) -> Vec<usize> {
        let mut ids = Vec::new();
        self.root.reads(&mut ids);
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The indices of the series the query reads through range selectors, sorted.
    pub(crate) fn ranged_reads(&self) -> Vec<usize> {
        let mut ids = Vec::new();
        self.root.reads_where(true, &mut ids);
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Whether the query reads its series only through `rate()`, `increase()` and
    /// instant selectors, without `offset`: a sparse trial's reader can serve it.
    pub(crate) fn reads_edges_only(&self) -> bool {
        self.root.reads_edges_only()
    }

    /// The ranges its range selectors read (`[5m]`: 300,000), in the query's order.
    pub(crate) fn ranges(&self) -> Vec<i64> {
        let mut out = Vec::new();
        self.root.ranges(&mut out);
        out
    }

    /// Rewinds every cursor, so that the next evaluation may be at any time, over series
    /// with the same names and labels as those bound (other samples).
    pub(crate) fn rewind(&mut self) {
        self.root.rewind();
    }

    /// The query's one value at `ts` (what its recording rule would record): `None` when
    /// it returns nothing; an error when Prometheus would fail the evaluation (the message
    /// is Prometheus' own), or when it returns more than one series (the plan compares one
    /// value per track).
    pub(crate) fn value_at(
        &mut self,
        series: &[Series],
        ts: i64,
        sem: Semantics,
    ) -> Result<Option<f64>, EvalError> {
        self.value_over(&mut Raw(series), ts, sem)
    }

    /// [`Bound::value_at`] with the series read through `reader`: a sparse trial's
    /// windows for a query that [reads their edges only](Self::reads_edges_only).
    pub(crate) fn value_over(
        &mut self,
        reader: &mut dyn Reader,
        ts: i64,
        sem: Semantics,
    ) -> Result<Option<f64>, EvalError> {
        self.last = None;
        self.root.eval(&mut Cx { reader, ts, sem })?;
        if self.root.is_scalar {
            return Ok(Some(self.root.scalar));
        }
        let mut present = self
            .root
            .out
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (i, v)));
        let Some((slot, v)) = present.next() else {
            return Ok(None);
        };
        let more = present.count();
        if more > 0 {
            return Err(EvalError {
                message: format!(
                    "the query returns {} series, which Prometheus would record and alert on one by one: {}",
                    more + 1,
                    self.root
                        .present()
                        .map(|(l, _)| labels::display(l))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        self.last = Some(slot);
        Ok(Some(v))
    }

    /// Every element at `ts`, as `(labels, value)` (for tests and reports).
    #[cfg(test)]
    pub(crate) fn vector_at(
        &mut self,
        series: &[Series],
        ts: i64,
        sem: Semantics,
    ) -> Result<Vec<(String, f64)>, EvalError> {
        self.root.eval(&mut Cx {
            reader: &mut Raw(series),
            ts,
            sem,
        })?;
        if self.root.is_scalar {
            return Ok(vec![(String::new(), self.root.scalar)]);
        }
        Ok(self
            .root
            .present()
            .map(|(l, v)| (labels::display(l), v))
            .collect())
    }
}

/// Parses and compiles `query` (already filled in: no `$` placeholders).
pub(crate) fn program(query: &str) -> Result<Expr, String> {
    let ast = promql_parser::parser::parse(query)?;
    compile(&ast).map_err(|u| format!("{} is not supported", u.what))
}

/// The selectors of `program` that match none of `series`, each with its place among the
/// selectors of the same metric name (0-based, in the program's order), to find it in the
/// query's text.
pub(crate) fn unmatched<'p>(program: &'p Expr, series: &[Series]) -> Vec<(usize, &'p Selector)> {
    let mut seen: Vec<Option<&str>> = Vec::new();
    let mut out = Vec::new();
    for (sel, _) in program.selectors() {
        let nth = seen.iter().filter(|n| **n == sel.name.as_deref()).count();
        seen.push(sel.name.as_deref());
        if !series.iter().any(|s| sel.matches(&s.name, &s.labels)) {
            out.push((nth, sel));
        }
    }
    out
}

#[cfg(test)]
mod tests;
