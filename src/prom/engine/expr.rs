//! The subset of PromQL the engine evaluates, as data: [`Expr`], compiled from
//! `promql-parser`'s syntax tree by [`compile`].
//!
//! Compiling is where the subset is enforced. Everything alerting and recording rules
//! commonly use is in it (selectors with every matcher and `offset`; the counter, gauge and
//! `*_over_time` functions; `histogram_quantile`; the aggregations; arithmetic, comparison
//! and set operators with vector matching); anything else is an [`Unsupported`] naming the
//! construct, so that `plan validate` refuses a query the simulator could only guess at.

use promql_parser::label::{MatchOp, Matchers};
use promql_parser::parser::{self, LabelModifier, VectorMatchCardinality};
use std::time::Duration;

/// A vector selector: metric name and matchers, read `offset_ms` in the past.
#[derive(Debug, Clone)]
pub(crate) struct Selector {
    pub(crate) name: Option<String>,
    pub(crate) matchers: Matchers,
    pub(crate) offset_ms: i64,
}

impl Selector {
    /// Whether a series with this name and labels is selected (a missing label is "").
    pub(crate) fn matches(&self, name: &str, labels: &[(String, String)]) -> bool {
        if self.name.as_deref().is_some_and(|n| n != name) {
            return false;
        }
        self.matchers.matchers.iter().all(|m| {
            let value = if m.name == "__name__" {
                name
            } else {
                labels
                    .iter()
                    .find(|(k, _)| *k == m.name)
                    .map_or("", |(_, v)| v.as_str())
            };
            m.is_match(value)
        })
    }

    /// The selector as PromQL writes it: `name{label="value",...}`.
    pub(crate) fn text(&self) -> String {
        format!(
            "{}{{{}}}",
            self.name.as_deref().unwrap_or(""),
            self.matchers
        )
    }

    /// The labels `absent()` gives when nothing matches: those set by an equality matcher
    /// (a label matched twice by equality is left out, as Prometheus does).
    pub(crate) fn absent_labels(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut twice: Vec<String> = Vec::new();
        for m in &self.matchers.matchers {
            if m.name == "__name__" || !matches!(m.op, MatchOp::Equal) {
                continue;
            }
            if out.iter().any(|(k, _)| *k == m.name) {
                twice.push(m.name.clone());
            } else {
                out.push((m.name.clone(), m.value.clone()));
            }
        }
        out.retain(|(k, _)| !twice.contains(k));
        out.sort();
        out
    }
}

/// Functions over a range vector: one value per series with samples in the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeFn {
    Rate,
    Irate,
    Increase,
    Delta,
    Idelta,
    Resets,
    Changes,
    AvgOverTime,
    MinOverTime,
    MaxOverTime,
    SumOverTime,
    CountOverTime,
    LastOverTime,
    PresentOverTime,
    StddevOverTime,
    StdvarOverTime,
    /// `quantile_over_time(φ, v[w])`: the parameter is the first argument.
    QuantileOverTime,
}

impl RangeFn {
    fn of(name: &str) -> Option<RangeFn> {
        Some(match name {
            "rate" => RangeFn::Rate,
            "irate" => RangeFn::Irate,
            "increase" => RangeFn::Increase,
            "delta" => RangeFn::Delta,
            "idelta" => RangeFn::Idelta,
            "resets" => RangeFn::Resets,
            "changes" => RangeFn::Changes,
            "avg_over_time" => RangeFn::AvgOverTime,
            "min_over_time" => RangeFn::MinOverTime,
            "max_over_time" => RangeFn::MaxOverTime,
            "sum_over_time" => RangeFn::SumOverTime,
            "count_over_time" => RangeFn::CountOverTime,
            "last_over_time" => RangeFn::LastOverTime,
            "present_over_time" => RangeFn::PresentOverTime,
            "stddev_over_time" => RangeFn::StddevOverTime,
            "stdvar_over_time" => RangeFn::StdvarOverTime,
            "quantile_over_time" => RangeFn::QuantileOverTime,
            _ => return None,
        })
    }
}

/// Element-wise functions of an instant vector (the metric name is dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ElemFn {
    Abs,
    /// `clamp(v, min, max)`: no result at all when `max < min`.
    Clamp,
    ClampMin,
    ClampMax,
}

/// Aggregation operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AggOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Topk,
    Bottomk,
    Quantile,
}

/// How an aggregation groups: `by (...)`, `without (...)`, or neither (one group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Grouping {
    By(Vec<String>),
    Without(Vec<String>),
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl BinOp {
    pub(crate) fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Lt | BinOp::Ge | BinOp::Le
        )
    }

    pub(crate) fn is_set(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Unless)
    }

    /// Arithmetic drops the metric name (`shouldDropMetricName`); comparisons keep it.
    pub(crate) fn drops_name(self) -> bool {
        matches!(
            self,
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod | BinOp::Pow
        )
    }
}

/// Label matching of a binary operation between two vectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Matching {
    /// `on (...)` (true) or `ignoring (...)` (false, also when no modifier is written).
    pub(crate) on: bool,
    pub(crate) labels: Vec<String>,
    pub(crate) card: Card,
    /// `group_left (...)` / `group_right (...)` labels taken from the "one" side.
    pub(crate) include: Vec<String>,
}

/// Cardinality of a vector matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Card {
    OneToOne,
    ManyToOne,
    OneToMany,
    ManyToMany,
}

/// A compiled expression of the subset.
#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Number(f64),
    /// `time()`: the evaluation time in seconds.
    Time,
    /// Unary minus.
    Neg(Box<Expr>),
    /// An instant vector selector.
    Select(Selector),
    /// A function of a range selector; `param` is `quantile_over_time`'s φ.
    Range {
        func: RangeFn,
        sel: Selector,
        range_ms: i64,
        param: Option<Box<Expr>>,
    },
    /// An element-wise function with its scalar parameters.
    Elem {
        func: ElemFn,
        arg: Box<Expr>,
        params: Vec<Expr>,
    },
    /// `scalar(v)`.
    Scalar(Box<Expr>),
    /// `vector(s)`.
    Vector(Box<Expr>),
    /// `absent(v)`, with the labels of its result.
    Absent {
        arg: Box<Expr>,
        labels: Vec<(String, String)>,
    },
    /// `absent_over_time(v[w])`.
    AbsentOverTime {
        sel: Selector,
        range_ms: i64,
    },
    /// `histogram_quantile(φ, buckets)`.
    HistogramQuantile {
        q: Box<Expr>,
        arg: Box<Expr>,
    },
    Aggregate {
        op: AggOp,
        grouping: Grouping,
        param: Option<Box<Expr>>,
        arg: Box<Expr>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
        /// The `bool` modifier of a comparison.
        bool_: bool,
        /// Set when both sides are vectors.
        matching: Option<Matching>,
    },
}

impl Expr {
    /// Whether the expression yields a scalar (else an instant vector).
    pub(crate) fn is_scalar(&self) -> bool {
        match self {
            Expr::Number(_) | Expr::Time | Expr::Scalar(_) => true,
            Expr::Neg(e) => e.is_scalar(),
            Expr::Binary { lhs, rhs, .. } => lhs.is_scalar() && rhs.is_scalar(),
            _ => false,
        }
    }

    /// Every selector of the expression (instant and range), in source order, with the
    /// span before an evaluation time that it can read: `offset` plus the range, or the
    /// lookback for an instant selector. Only series with a sample in that span of
    /// `(ts - span, ts]` (`[ts - span, ts]` in 2.42) can change the query's value at `ts`.
    pub(crate) fn selectors(&self) -> Vec<(&Selector, i64)> {
        let mut out = Vec::new();
        self.collect_selectors(&mut out);
        out
    }

    fn collect_selectors<'e>(&'e self, out: &mut Vec<(&'e Selector, i64)>) {
        match self {
            Expr::Number(_) | Expr::Time => {}
            Expr::Select(sel) => out.push((sel, sel.offset_ms + crate::prom::DEFAULT_LOOKBACK_MS)),
            Expr::Range {
                sel,
                range_ms,
                param,
                ..
            } => {
                if let Some(p) = param {
                    p.collect_selectors(out);
                }
                out.push((sel, sel.offset_ms + range_ms));
            }
            Expr::AbsentOverTime { sel, range_ms } => out.push((sel, sel.offset_ms + range_ms)),
            Expr::Neg(e) | Expr::Scalar(e) | Expr::Vector(e) | Expr::Absent { arg: e, .. } => {
                e.collect_selectors(out)
            }
            Expr::Elem { arg, params, .. } => {
                arg.collect_selectors(out);
                for p in params {
                    p.collect_selectors(out);
                }
            }
            Expr::HistogramQuantile { q, arg } => {
                q.collect_selectors(out);
                arg.collect_selectors(out);
            }
            Expr::Aggregate { param, arg, .. } => {
                if let Some(p) = param {
                    p.collect_selectors(out);
                }
                arg.collect_selectors(out);
            }
            Expr::Binary { lhs, rhs, .. } => {
                lhs.collect_selectors(out);
                rhs.collect_selectors(out);
            }
        }
    }
}

/// A construct outside the subset, or one the engine cannot evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unsupported {
    /// What is not supported, for the message (``the function `predict_linear` ``).
    pub(crate) what: String,
    /// The function or aggregation named, and which of its calls (0-based, in source
    /// order), so that the caller can point at it in the query's text.
    pub(crate) call: Option<(String, usize)>,
}

/// Compiles a parsed query into the engine's subset.
pub(crate) fn compile(expr: &parser::Expr) -> Result<Expr, Unsupported> {
    Compiler::default().expr(expr)
}

#[derive(Default)]
struct Compiler {
    /// Calls seen so far per function or aggregation name (source order = pre-order).
    seen: Vec<(String, usize)>,
}

fn unsupported(what: impl Into<String>) -> Unsupported {
    Unsupported {
        what: what.into(),
        call: None,
    }
}

fn millis(d: &Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Compiler {
    /// Counts a call of `name` and returns its index among calls of that name.
    fn count(&mut self, name: &str) -> usize {
        match self.seen.iter_mut().find(|(n, _)| n == name) {
            Some((_, k)) => {
                *k += 1;
                *k - 1
            }
            None => {
                self.seen.push((name.to_string(), 1));
                0
            }
        }
    }

    fn expr(&mut self, e: &parser::Expr) -> Result<Expr, Unsupported> {
        use parser::Expr as P;
        match e {
            P::NumberLiteral(n) => Ok(Expr::Number(n.val)),
            P::Paren(p) => self.expr(&p.expr),
            P::Unary(u) => Ok(Expr::Neg(Box::new(self.expr(&u.expr)?))),
            P::VectorSelector(vs) => Ok(Expr::Select(selector(vs)?)),
            P::MatrixSelector(_) => Err(unsupported(
                "a range vector as the result (give it to a function such as `rate`)",
            )),
            P::Subquery(_) => Err(unsupported("subqueries (`expr[range:step]`)")),
            P::StringLiteral(_) => Err(unsupported("string literals")),
            P::Extension(_) => Err(unsupported("extension expressions")),
            P::Call(c) => self.call(c),
            P::Aggregate(a) => self.aggregate(a),
            P::Binary(b) => self.binary(b),
        }
    }

    fn call(&mut self, c: &parser::Call) -> Result<Expr, Unsupported> {
        let name = c.func.name;
        let nth = self.count(name);
        let args: Vec<&parser::Expr> = c.args.args.iter().map(|a| a.as_ref()).collect();
        let located = |what: String| Unsupported {
            what,
            call: Some((name.to_string(), nth)),
        };
        if let Some(func) = RangeFn::of(name) {
            let (param, arg) = if func == RangeFn::QuantileOverTime {
                match args.as_slice() {
                    [p, a] => (Some(Box::new(self.scalar_arg(p)?)), *a),
                    _ => return Err(located(format!("`{name}` with {} arguments", args.len()))),
                }
            } else {
                match args.as_slice() {
                    [a] => (None, *a),
                    _ => return Err(located(format!("`{name}` with {} arguments", args.len()))),
                }
            };
            let (sel, range_ms) = range_selector(arg).ok_or_else(|| {
                located(match strip_parens(arg) {
                    parser::Expr::Subquery(_) => format!("a subquery inside `{name}`"),
                    _ => format!("`{name}` of something other than a range selector"),
                })
            })?;
            return Ok(Expr::Range {
                func,
                sel: sel?,
                range_ms,
                param,
            });
        }
        match (name, args.as_slice()) {
            ("time", []) => Ok(Expr::Time),
            ("abs", [a]) => Ok(Expr::Elem {
                func: ElemFn::Abs,
                arg: Box::new(self.expr(a)?),
                params: Vec::new(),
            }),
            ("clamp", [a, lo, hi]) => Ok(Expr::Elem {
                func: ElemFn::Clamp,
                arg: Box::new(self.expr(a)?),
                params: vec![self.scalar_arg(lo)?, self.scalar_arg(hi)?],
            }),
            ("clamp_min", [a, lo]) => Ok(Expr::Elem {
                func: ElemFn::ClampMin,
                arg: Box::new(self.expr(a)?),
                params: vec![self.scalar_arg(lo)?],
            }),
            ("clamp_max", [a, hi]) => Ok(Expr::Elem {
                func: ElemFn::ClampMax,
                arg: Box::new(self.expr(a)?),
                params: vec![self.scalar_arg(hi)?],
            }),
            ("scalar", [a]) => Ok(Expr::Scalar(Box::new(self.expr(a)?))),
            ("vector", [a]) => Ok(Expr::Vector(Box::new(self.scalar_arg(a)?))),
            ("absent", [a]) => {
                let labels = match strip_parens(a) {
                    parser::Expr::VectorSelector(vs) => selector(vs)?.absent_labels(),
                    _ => Vec::new(),
                };
                Ok(Expr::Absent {
                    arg: Box::new(self.expr(a)?),
                    labels,
                })
            }
            ("absent_over_time", [a]) => {
                let (sel, range_ms) = range_selector(a).ok_or_else(|| {
                    located("`absent_over_time` of something other than a range selector".into())
                })?;
                Ok(Expr::AbsentOverTime {
                    sel: sel?,
                    range_ms,
                })
            }
            ("histogram_quantile", [q, a]) => Ok(Expr::HistogramQuantile {
                q: Box::new(self.scalar_arg(q)?),
                arg: Box::new(self.expr(a)?),
            }),
            _ => Err(located(format!("the function `{name}`"))),
        }
    }

    /// An argument that must be a scalar (a number, `scalar(...)`, arithmetic of those).
    fn scalar_arg(&mut self, e: &parser::Expr) -> Result<Expr, Unsupported> {
        let x = self.expr(e)?;
        if x.is_scalar() {
            Ok(x)
        } else {
            Err(unsupported("a vector where a scalar is expected"))
        }
    }

    fn aggregate(&mut self, a: &parser::AggregateExpr) -> Result<Expr, Unsupported> {
        let name = a.op.to_string();
        let nth = self.count(&name);
        let op = match name.as_str() {
            "sum" => AggOp::Sum,
            "avg" => AggOp::Avg,
            "min" => AggOp::Min,
            "max" => AggOp::Max,
            "count" => AggOp::Count,
            "topk" => AggOp::Topk,
            "bottomk" => AggOp::Bottomk,
            "quantile" => AggOp::Quantile,
            _ => {
                return Err(Unsupported {
                    what: format!("the aggregation `{name}`"),
                    call: Some((name.clone(), nth)),
                });
            }
        };
        let grouping = match &a.modifier {
            None => Grouping::By(Vec::new()),
            Some(LabelModifier::Include(l)) => Grouping::By(sorted(&l.labels)),
            Some(LabelModifier::Exclude(l)) => Grouping::Without(sorted(&l.labels)),
        };
        let param = match &a.param {
            Some(p) => Some(Box::new(self.scalar_arg(p)?)),
            None => None,
        };
        let arg = Box::new(self.expr(&a.expr)?);
        Ok(Expr::Aggregate {
            op,
            grouping,
            param,
            arg,
        })
    }

    fn binary(&mut self, b: &parser::BinaryExpr) -> Result<Expr, Unsupported> {
        let op = match b.op.to_string().as_str() {
            "+" => BinOp::Add,
            "-" => BinOp::Sub,
            "*" => BinOp::Mul,
            "/" => BinOp::Div,
            "%" => BinOp::Mod,
            "^" => BinOp::Pow,
            "atan2" => BinOp::Atan2,
            "==" => BinOp::Eq,
            "!=" => BinOp::Ne,
            ">" => BinOp::Gt,
            "<" => BinOp::Lt,
            ">=" => BinOp::Ge,
            "<=" => BinOp::Le,
            "and" => BinOp::And,
            "or" => BinOp::Or,
            "unless" => BinOp::Unless,
            other => return Err(unsupported(format!("the operator `{other}`"))),
        };
        let lhs = Box::new(self.expr(&b.lhs)?);
        let rhs = Box::new(self.expr(&b.rhs)?);
        let bool_ = b.return_bool();
        let matching = if lhs.is_scalar() || rhs.is_scalar() {
            None
        } else {
            let m = b.modifier.as_ref();
            if m.is_some_and(|m| m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some()) {
                return Err(unsupported("`fill` modifiers of vector matching"));
            }
            let (on, labels) = match m.and_then(|m| m.matching.as_ref()) {
                Some(LabelModifier::Include(l)) => (true, sorted(&l.labels)),
                Some(LabelModifier::Exclude(l)) => (false, sorted(&l.labels)),
                None => (false, Vec::new()),
            };
            let (card, include) = match m.map(|m| &m.card) {
                _ if op.is_set() => (Card::ManyToMany, Vec::new()),
                Some(VectorMatchCardinality::ManyToOne(l)) => (Card::ManyToOne, l.labels.clone()),
                Some(VectorMatchCardinality::OneToMany(l)) => (Card::OneToMany, l.labels.clone()),
                Some(VectorMatchCardinality::ManyToMany) => (Card::ManyToMany, Vec::new()),
                Some(VectorMatchCardinality::OneToOne) | None => (Card::OneToOne, Vec::new()),
            };
            Some(Matching {
                on,
                labels,
                card,
                include,
            })
        };
        Ok(Expr::Binary {
            op,
            lhs,
            rhs,
            bool_,
            matching,
        })
    }
}

fn sorted(labels: &[String]) -> Vec<String> {
    let mut l = labels.to_vec();
    l.sort();
    l.dedup();
    l
}

fn strip_parens(e: &parser::Expr) -> &parser::Expr {
    match e {
        parser::Expr::Paren(p) => strip_parens(&p.expr),
        other => other,
    }
}

fn offset_ms(o: Option<&parser::Offset>) -> i64 {
    match o {
        None => 0,
        Some(parser::Offset::Pos(d)) => millis(d),
        Some(parser::Offset::Neg(d)) => -millis(d),
    }
}

fn selector(vs: &parser::VectorSelector) -> Result<Selector, Unsupported> {
    if vs.at.is_some() {
        return Err(unsupported("the `@` modifier"));
    }
    if !vs.matchers.or_matchers.is_empty() {
        return Err(unsupported("`or` inside a selector's braces"));
    }
    Ok(Selector {
        name: vs.name.clone(),
        matchers: vs.matchers.clone(),
        offset_ms: offset_ms(vs.offset.as_ref()),
    })
}

/// A range selector (through parentheses): its selector and range.
fn range_selector(e: &parser::Expr) -> Option<(Result<Selector, Unsupported>, i64)> {
    match strip_parens(e) {
        parser::Expr::MatrixSelector(m) => Some((selector(&m.vs), millis(&m.range))),
        _ => None,
    }
}
