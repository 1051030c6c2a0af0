//! A compiled query bound to the series it reads: a tree of [`Node`]s whose output label
//! sets are worked out once, when the query is bound, so that an evaluation only moves
//! numbers.
//!
//! Each vector node has a fixed list of *slots*: every element it could ever produce,
//! with its labels (a selector: one slot per matching series; an aggregation: one per
//! group; a binary operation: one per pair of operands whose signatures match). An
//! evaluation fills each slot with a value or leaves it empty, exactly as Prometheus'
//! instant evaluation produces or omits that element. Vector matching, grouping and
//! `absent()`'s labels are thereby resolved at bind time; what depends on which series
//! have samples at the evaluation (which pairs match, duplicate series on the "one" side,
//! two results with one label set) is checked at each evaluation, and reported as the
//! [`EvalError`] Prometheus would fail the rule's evaluation with.

use super::expr::{AggOp, BinOp, Card, ElemFn, Expr, Grouping, Matching, RangeFn, Selector};
use super::functions::{binop, go_max, go_min, quantile, range_fn, scalar_binop};
use super::labels::{self, Interner, Labels};
use crate::prom::quantile::{Bucket, histogram_quantile, parse_le};
use crate::prom::reader::{Cur, Reader};
use crate::prom::sample::Sample;
use crate::prom::summation::Agg;
use crate::prom::{Semantics, Series};

/// Why Prometheus would fail a rule's evaluation at some time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EvalError {
    pub(crate) message: String,
}

fn fail<T>(message: String) -> Result<T, EvalError> {
    Err(EvalError { message })
}

/// What an evaluation reads: the series, through a [`Reader`] (their samples, or a
/// sparse trial's window edges).
pub(super) struct Cx<'a> {
    pub(super) reader: &'a mut dyn Reader,
    pub(super) ts: i64,
    pub(super) sem: Semantics,
}

fn pick(sel: &Selector, series: &[Series]) -> Vec<Cur> {
    series
        .iter()
        .enumerate()
        .filter(|(_, s)| sel.matches(&s.name, &s.labels))
        .map(|(i, _)| Cur::new(i))
        .collect()
}

/// One node of a bound query.
#[derive(Debug, Clone)]
pub(super) struct Node {
    /// The labels of every element the node can produce (none for a scalar).
    pub(super) slots: Vec<Labels>,
    /// Groups of slots with equal labels: two of one group present at once is an error.
    dups: Vec<Vec<usize>>,
    /// Each slot's value at the current evaluation.
    pub(super) out: Vec<Option<f64>>,
    /// A scalar node's value.
    pub(super) scalar: f64,
    pub(super) is_scalar: bool,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Number(f64),
    Time,
    Neg(Box<Node>),
    Select {
        curs: Vec<Cur>,
        offset_ms: i64,
    },
    Range {
        func: RangeFn,
        curs: Vec<Cur>,
        range_ms: i64,
        offset_ms: i64,
        param: Option<Box<Node>>,
        live: Vec<Sample>,
    },
    Elem {
        func: ElemFn,
        arg: Box<Node>,
        params: Vec<Node>,
    },
    Scalar(Box<Node>),
    Vector(Box<Node>),
    Absent(Box<Node>),
    AbsentOverTime {
        curs: Vec<Cur>,
        range_ms: i64,
        offset_ms: i64,
    },
    HistogramQuantile {
        q: Box<Node>,
        arg: Box<Node>,
        /// (argument slot, group, `le`) of every bucket series with a numeric `le`.
        members: Vec<(usize, usize, f64)>,
        buckets: Vec<Vec<Bucket>>,
    },
    Aggregate {
        op: AggOp,
        param: Option<Box<Node>>,
        arg: Box<Node>,
        group_of: Vec<usize>,
        groups: usize,
        values: Vec<Vec<(f64, usize)>>,
    },
    ScalarBinary {
        op: BinOp,
        lhs: Box<Node>,
        rhs: Box<Node>,
    },
    VectorScalar {
        op: BinOp,
        vector: Box<Node>,
        scalar: Box<Node>,
        /// The scalar is the left operand.
        swap: bool,
        bool_: bool,
    },
    VectorVector {
        op: BinOp,
        /// The "many" side (the left one unless `group_right`) and the "one" side.
        many: Box<Node>,
        one: Box<Node>,
        swapped: bool,
        bool_: bool,
        card: Card,
        many_sig: Vec<usize>,
        one_sig: Vec<usize>,
        /// Per "many" slot: (matching "one" slot, output slot).
        pairs: Vec<Vec<(usize, usize)>>,
        /// Scratch: the present "one" slot of each signature; signatures already matched.
        one_of_sig: Vec<Option<usize>>,
        matched: Vec<bool>,
    },
    Set {
        op: BinOp,
        lhs: Box<Node>,
        rhs: Box<Node>,
        lhs_sig: Vec<usize>,
        rhs_sig: Vec<usize>,
        /// Scratch: which signatures are present on the other side.
        seen: Vec<bool>,
    },
}

impl Node {
    fn new(slots: Vec<Labels>, kind: Kind) -> Node {
        let dups = labels::duplicates(&slots);
        Node {
            out: vec![None; slots.len()],
            slots,
            dups,
            scalar: f64::NAN,
            is_scalar: false,
            kind,
        }
    }

    fn scalar(kind: Kind) -> Node {
        Node {
            slots: Vec::new(),
            dups: Vec::new(),
            out: Vec::new(),
            scalar: f64::NAN,
            is_scalar: true,
            kind,
        }
    }

    /// Binds `expr` to `series`.
    pub(super) fn bind(expr: &Expr, series: &[Series]) -> Node {
        let sub = |e: &Expr| Box::new(Node::bind(e, series));
        let series_labels = |curs: &[Cur], keep_name: bool| -> Vec<Labels> {
            curs.iter()
                .map(|c| {
                    let s = &series[c.series];
                    let l = labels::with_name(&s.name, &s.labels);
                    if keep_name { l } else { labels::drop_name(&l) }
                })
                .collect()
        };
        match expr {
            Expr::Number(v) => Node::scalar(Kind::Number(*v)),
            Expr::Time => Node::scalar(Kind::Time),
            Expr::Neg(e) => {
                let arg = sub(e);
                if arg.is_scalar {
                    Node::scalar(Kind::Neg(arg))
                } else {
                    let slots = arg.slots.iter().map(labels::drop_name).collect();
                    Node::new(slots, Kind::Neg(arg))
                }
            }
            Expr::Select(sel) => {
                let curs = pick(sel, series);
                let slots = series_labels(&curs, true);
                Node::new(
                    slots,
                    Kind::Select {
                        curs,
                        offset_ms: sel.offset_ms,
                    },
                )
            }
            Expr::Range {
                func,
                sel,
                range_ms,
                param,
            } => {
                let curs = pick(sel, series);
                let slots = series_labels(&curs, *func == RangeFn::LastOverTime);
                Node::new(
                    slots,
                    Kind::Range {
                        func: *func,
                        curs,
                        range_ms: *range_ms,
                        offset_ms: sel.offset_ms,
                        param: param.as_deref().map(sub),
                        live: Vec::new(),
                    },
                )
            }
            Expr::Elem { func, arg, params } => {
                let arg = sub(arg);
                let slots = arg.slots.iter().map(labels::drop_name).collect();
                Node::new(
                    slots,
                    Kind::Elem {
                        func: *func,
                        arg,
                        params: params.iter().map(|p| Node::bind(p, series)).collect(),
                    },
                )
            }
            Expr::Scalar(e) => Node::scalar(Kind::Scalar(sub(e))),
            Expr::Vector(e) => Node::new(vec![Vec::new()], Kind::Vector(sub(e))),
            Expr::Absent { arg, labels } => Node::new(vec![labels.clone()], Kind::Absent(sub(arg))),
            Expr::AbsentOverTime { sel, range_ms } => Node::new(
                vec![sel.absent_labels()],
                Kind::AbsentOverTime {
                    curs: pick(sel, series),
                    range_ms: *range_ms,
                    offset_ms: sel.offset_ms,
                },
            ),
            Expr::HistogramQuantile { q, arg } => {
                let arg = sub(arg);
                let mut groups = Interner::default();
                let mut members = Vec::new();
                for (i, l) in arg.slots.iter().enumerate() {
                    let Some(le) = parse_le(labels::get(l, "le")) else {
                        continue;
                    };
                    let key = labels::without(l, &[labels::NAME.into(), "le".into()]);
                    members.push((i, groups.id(key), le));
                }
                let buckets = vec![Vec::new(); groups.sets.len()];
                Node::new(
                    groups.sets,
                    Kind::HistogramQuantile {
                        q: sub(q),
                        arg,
                        members,
                        buckets,
                    },
                )
            }
            Expr::Aggregate {
                op,
                grouping,
                param,
                arg,
            } => {
                let arg = sub(arg);
                let mut groups = Interner::default();
                let group_of: Vec<usize> = arg
                    .slots
                    .iter()
                    .map(|l| {
                        groups.id(match grouping {
                            Grouping::By(names) => labels::keep(l, names),
                            Grouping::Without(names) => {
                                labels::drop_name(&labels::without(l, names))
                            }
                        })
                    })
                    .collect();
                let n = groups.sets.len();
                let slots = match op {
                    AggOp::Topk | AggOp::Bottomk => arg.slots.clone(),
                    _ => groups.sets,
                };
                Node::new(
                    slots,
                    Kind::Aggregate {
                        op: *op,
                        param: param.as_deref().map(sub),
                        arg,
                        group_of,
                        groups: n,
                        values: vec![Vec::new(); n],
                    },
                )
            }
            Expr::Binary {
                op,
                lhs,
                rhs,
                bool_,
                matching,
            } => {
                let (lhs, rhs) = (sub(lhs), sub(rhs));
                match (lhs.is_scalar, rhs.is_scalar, matching) {
                    (true, true, _) => Node::scalar(Kind::ScalarBinary { op: *op, lhs, rhs }),
                    (false, true, _) | (true, false, _) => {
                        let swap = lhs.is_scalar;
                        let (vector, scalar) = if swap { (rhs, lhs) } else { (lhs, rhs) };
                        let slots = if op.drops_name() || *bool_ {
                            vector.slots.iter().map(labels::drop_name).collect()
                        } else {
                            vector.slots.clone()
                        };
                        Node::new(
                            slots,
                            Kind::VectorScalar {
                                op: *op,
                                vector,
                                scalar,
                                swap,
                                bool_: *bool_,
                            },
                        )
                    }
                    (false, false, Some(m)) if op.is_set() => set_node(*op, lhs, rhs, m),
                    (false, false, Some(m)) => vector_node(*op, lhs, rhs, *bool_, m),
                    (false, false, None) => {
                        let m = Matching {
                            on: false,
                            labels: Vec::new(),
                            card: if op.is_set() {
                                Card::ManyToMany
                            } else {
                                Card::OneToOne
                            },
                            include: Vec::new(),
                        };
                        if op.is_set() {
                            set_node(*op, lhs, rhs, &m)
                        } else {
                            vector_node(*op, lhs, rhs, *bool_, &m)
                        }
                    }
                }
            }
        }
    }

    /// The series the node and its children read, in no particular order.
    pub(super) fn reads(&self, out: &mut Vec<usize>) {
        self.reads_where(false, out);
    }

    /// The node's operands: the nodes it evaluates (a range function's parameter too).
    fn children(&self) -> Vec<&Node> {
        match &self.kind {
            Kind::Number(_) | Kind::Time | Kind::Select { .. } | Kind::AbsentOverTime { .. } => {
                Vec::new()
            }
            Kind::Range { param, .. } => param.as_deref().into_iter().collect(),
            Kind::Neg(a) | Kind::Scalar(a) | Kind::Vector(a) | Kind::Absent(a) => vec![a],
            Kind::Elem { arg, params, .. } => std::iter::once(&**arg).chain(params).collect(),
            Kind::HistogramQuantile { q, arg, .. } => vec![q, arg],
            Kind::Aggregate { param, arg, .. } => {
                std::iter::once(&**arg).chain(param.as_deref()).collect()
            }
            Kind::ScalarBinary { lhs, rhs, .. } | Kind::Set { lhs, rhs, .. } => vec![lhs, rhs],
            Kind::VectorScalar { vector, scalar, .. } => vec![vector, scalar],
            Kind::VectorVector { many, one, .. } => vec![many, one],
        }
    }

    /// The series the node and its children read through range selectors (`ranged`), or
    /// through any selector.
    pub(super) fn reads_where(&self, ranged: bool, out: &mut Vec<usize>) {
        match &self.kind {
            Kind::Select { curs, .. } if !ranged => out.extend(curs.iter().map(|c| c.series)),
            Kind::Range { curs, .. } | Kind::AbsentOverTime { curs, .. } => {
                out.extend(curs.iter().map(|c| c.series));
            }
            _ => {}
        }
        for c in self.children() {
            c.reads_where(ranged, out);
        }
    }

    /// The ranges of the node's and its children's range selectors.
    pub(super) fn ranges(&self, out: &mut Vec<i64>) {
        if let Kind::Range { range_ms, .. } | Kind::AbsentOverTime { range_ms, .. } = &self.kind {
            out.push(*range_ms);
        }
        for c in self.children() {
            c.ranges(out);
        }
    }

    /// Whether the node and its children read their series only through `rate()`,
    /// `increase()` and instant selectors, none with an `offset`: what a sparse trial's
    /// reader serves.
    pub(super) fn reads_edges_only(&self) -> bool {
        let own = match &self.kind {
            Kind::Select { offset_ms, .. } => *offset_ms == 0,
            Kind::Range {
                func,
                offset_ms,
                param,
                ..
            } => {
                matches!(func, RangeFn::Rate | RangeFn::Increase)
                    && *offset_ms == 0
                    && param.is_none()
            }
            Kind::AbsentOverTime { .. } => false,
            _ => true,
        };
        own && self.children().into_iter().all(Node::reads_edges_only)
    }

    /// Puts every cursor of the node and its children back before the first sample, so
    /// that the node can be evaluated again from any time (over other samples of series
    /// with the same names and labels).
    pub(super) fn rewind(&mut self) {
        let mut children: Vec<&mut Node> = Vec::new();
        match &mut self.kind {
            Kind::Number(_) | Kind::Time => {}
            Kind::Select { curs, .. } | Kind::AbsentOverTime { curs, .. } => {
                for c in curs {
                    c.rewind();
                }
            }
            Kind::Range { curs, param, .. } => {
                for c in curs {
                    c.rewind();
                }
                children.extend(param.as_deref_mut());
            }
            Kind::Neg(a) | Kind::Scalar(a) | Kind::Vector(a) | Kind::Absent(a) => children.push(a),
            Kind::Elem { arg, params, .. } => {
                children.push(arg);
                children.extend(params.iter_mut());
            }
            Kind::HistogramQuantile { q, arg, .. } => {
                children.push(q);
                children.push(arg);
            }
            Kind::Aggregate { param, arg, .. } => {
                children.push(arg);
                children.extend(param.as_deref_mut());
            }
            Kind::ScalarBinary { lhs, rhs, .. } | Kind::Set { lhs, rhs, .. } => {
                children.push(lhs);
                children.push(rhs);
            }
            Kind::VectorScalar { vector, scalar, .. } => {
                children.push(vector);
                children.push(scalar);
            }
            Kind::VectorVector { many, one, .. } => {
                children.push(many);
                children.push(one);
            }
        }
        for c in children {
            c.rewind();
        }
    }

    /// The present elements: (labels, value).
    pub(super) fn present(&self) -> impl Iterator<Item = (&Labels, f64)> {
        self.slots
            .iter()
            .zip(&self.out)
            .filter_map(|(l, v)| v.map(|v| (l, v)))
    }

    /// Evaluates the node at `cx.ts`.
    pub(super) fn eval(&mut self, cx: &mut Cx) -> Result<(), EvalError> {
        let out = &mut self.out;
        out.fill(None);
        match &mut self.kind {
            Kind::Number(v) => self.scalar = *v,
            Kind::Time => self.scalar = cx.ts as f64 / 1000.0,
            Kind::Neg(arg) => {
                arg.eval(cx)?;
                if arg.is_scalar {
                    self.scalar = -arg.scalar;
                } else {
                    for (o, v) in out.iter_mut().zip(&arg.out) {
                        *o = v.map(|v| -v);
                    }
                }
            }
            Kind::Select { curs, offset_ms } => {
                let t = cx.ts - *offset_ms;
                for (o, c) in out.iter_mut().zip(curs.iter_mut()) {
                    *o = cx.reader.instant(c, t, cx.sem);
                }
            }
            Kind::Range {
                func,
                curs,
                range_ms,
                offset_ms,
                param,
                live,
            } => {
                let p = param_value(param, cx)?;
                let t = cx.ts - *offset_ms;
                for (o, c) in out.iter_mut().zip(curs.iter_mut()) {
                    *o = match func {
                        RangeFn::Rate | RangeFn::Increase => {
                            let is_rate = *func == RangeFn::Rate;
                            cx.reader.extrapolated(c, (t, *range_ms), is_rate, cx.sem)
                        }
                        _ => {
                            let window = cx.reader.samples(c, (t, *range_ms), cx.sem);
                            let window = window.expect("a query that reads raw samples");
                            range_fn(*func, p, window, t, *range_ms, live, cx.sem)
                        }
                    };
                }
            }
            Kind::Elem { func, arg, params } => {
                arg.eval(cx)?;
                for p in params.iter_mut() {
                    p.eval(cx)?;
                }
                let param = |i: usize| params[i].scalar;
                let f: Box<dyn Fn(f64) -> f64> = match func {
                    ElemFn::Abs => Box::new(f64::abs),
                    ElemFn::Clamp => {
                        let (lo, hi) = (param(0), param(1));
                        if hi < lo {
                            return Ok(());
                        }
                        Box::new(move |v| go_max(lo, go_min(hi, v)))
                    }
                    ElemFn::ClampMin => {
                        let lo = param(0);
                        Box::new(move |v| go_max(lo, v))
                    }
                    ElemFn::ClampMax => {
                        let hi = param(0);
                        Box::new(move |v| go_min(hi, v))
                    }
                };
                for (o, v) in out.iter_mut().zip(&arg.out) {
                    *o = v.map(&f);
                }
            }
            Kind::Scalar(arg) => {
                arg.eval(cx)?;
                let mut it = arg.out.iter().flatten();
                self.scalar = match (it.next(), it.next()) {
                    (Some(v), None) => *v,
                    _ => f64::NAN,
                };
            }
            Kind::Vector(arg) => {
                arg.eval(cx)?;
                out[0] = Some(arg.scalar);
            }
            Kind::Absent(arg) => {
                arg.eval(cx)?;
                if arg.out.iter().all(Option::is_none) {
                    out[0] = Some(1.0);
                }
            }
            Kind::AbsentOverTime {
                curs,
                range_ms,
                offset_ms,
            } => {
                let t = cx.ts - *offset_ms;
                let any = curs.iter_mut().any(|c| {
                    let window = cx.reader.samples(c, (t, *range_ms), cx.sem);
                    let window = window.expect("a query that reads raw samples");
                    window.iter().any(|x| !x.is_stale())
                });
                if !any {
                    out[0] = Some(1.0);
                }
            }
            Kind::HistogramQuantile {
                q,
                arg,
                members,
                buckets,
            } => {
                q.eval(cx)?;
                arg.eval(cx)?;
                for b in buckets.iter_mut() {
                    b.clear();
                }
                for &(slot, group, le) in members.iter() {
                    if let Some(v) = arg.out[slot] {
                        buckets[group].push(Bucket::new(le, v));
                    }
                }
                for (o, b) in out.iter_mut().zip(buckets.iter_mut()) {
                    if !b.is_empty() {
                        *o = Some(histogram_quantile(q.scalar, b, cx.sem));
                    }
                }
            }
            Kind::Aggregate {
                op,
                param,
                arg,
                group_of,
                groups,
                values,
            } => {
                let p = param_value(param, cx)?;
                arg.eval(cx)?;
                aggregate(*op, p, &arg.out, group_of, *groups, values, out, cx.sem)?;
            }
            Kind::ScalarBinary { op, lhs, rhs } => {
                lhs.eval(cx)?;
                rhs.eval(cx)?;
                self.scalar = scalar_binop(*op, lhs.scalar, rhs.scalar);
            }
            Kind::VectorScalar {
                op,
                vector,
                scalar,
                swap,
                bool_,
            } => {
                if *swap {
                    scalar.eval(cx)?;
                    vector.eval(cx)?;
                } else {
                    vector.eval(cx)?;
                    scalar.eval(cx)?;
                }
                let s = scalar.scalar;
                for (o, v) in out.iter_mut().zip(&vector.out) {
                    let Some(v) = *v else { continue };
                    let (l, r) = if *swap { (s, v) } else { (v, s) };
                    let (mut value, mut keep) = binop(*op, l, r);
                    if op.is_comparison() && *swap {
                        value = r;
                    }
                    if *bool_ {
                        value = if keep { 1.0 } else { 0.0 };
                        keep = true;
                    }
                    if keep {
                        *o = Some(value);
                    }
                }
            }
            Kind::VectorVector {
                op,
                many,
                one,
                swapped,
                bool_,
                card,
                many_sig,
                one_sig,
                pairs,
                one_of_sig,
                matched,
            } => {
                if *swapped {
                    one.eval(cx)?;
                    many.eval(cx)?;
                } else {
                    many.eval(cx)?;
                    one.eval(cx)?;
                }
                if many.out.iter().all(Option::is_none) || one.out.iter().all(Option::is_none) {
                    return Ok(());
                }
                one_of_sig.fill(None);
                matched.fill(false);
                for (j, v) in one.out.iter().enumerate() {
                    if v.is_none() {
                        continue;
                    }
                    let sig = one_sig[j];
                    if let Some(first) = one_of_sig[sig] {
                        let side = if *swapped { "left" } else { "right" };
                        return fail(format!(
                            "Prometheus fails the evaluation: found duplicate series for the match group on the {side} hand-side of the operation: [{}, {}]; many-to-many matching not allowed: matching labels must be unique on one side",
                            labels::display(&one.slots[j]),
                            labels::display(&one.slots[first])
                        ));
                    }
                    one_of_sig[sig] = Some(j);
                }
                for (i, v) in many.out.iter().enumerate() {
                    let Some(vm) = *v else { continue };
                    let sig = many_sig[i];
                    let Some(j) = one_of_sig[sig] else { continue };
                    let Some(vo) = one.out[j] else { continue };
                    let Some(&(_, k)) = pairs[i].iter().find(|(o, _)| *o == j) else {
                        continue;
                    };
                    let (l, r) = if *swapped { (vo, vm) } else { (vm, vo) };
                    let (mut value, keep) = binop(*op, l, r);
                    if *bool_ {
                        value = if keep { 1.0 } else { 0.0 };
                    } else if !keep {
                        continue;
                    }
                    if *card == Card::OneToOne {
                        if matched[sig] {
                            return fail(
                                "Prometheus fails the evaluation: multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
                            );
                        }
                        matched[sig] = true;
                    }
                    out[k] = Some(value);
                }
            }
            Kind::Set {
                op,
                lhs,
                rhs,
                lhs_sig,
                rhs_sig,
                seen,
            } => {
                lhs.eval(cx)?;
                rhs.eval(cx)?;
                let l_any = lhs.out.iter().any(Option::is_some);
                let r_any = rhs.out.iter().any(Option::is_some);
                let n = lhs.out.len();
                seen.fill(false);
                match op {
                    BinOp::And => {
                        if l_any && r_any {
                            for (j, v) in rhs.out.iter().enumerate() {
                                if v.is_some() {
                                    seen[rhs_sig[j]] = true;
                                }
                            }
                            for (i, v) in lhs.out.iter().enumerate() {
                                if v.is_some() && seen[lhs_sig[i]] {
                                    out[i] = *v;
                                }
                            }
                        }
                    }
                    BinOp::Unless => {
                        if l_any && r_any {
                            for (j, v) in rhs.out.iter().enumerate() {
                                if v.is_some() {
                                    seen[rhs_sig[j]] = true;
                                }
                            }
                        }
                        for (i, v) in lhs.out.iter().enumerate() {
                            if v.is_some() && !seen[lhs_sig[i]] {
                                out[i] = *v;
                            }
                        }
                    }
                    _ => {
                        // `or`: every left element, then the right ones whose signature
                        // no left element has.
                        for (i, v) in lhs.out.iter().enumerate() {
                            if v.is_some() {
                                seen[lhs_sig[i]] = true;
                                out[i] = *v;
                            }
                        }
                        for (j, v) in rhs.out.iter().enumerate() {
                            if v.is_some() && !seen[rhs_sig[j]] {
                                out[n + j] = *v;
                            }
                        }
                    }
                }
            }
        }
        for g in &self.dups {
            if g.iter().filter(|&&i| self.out[i].is_some()).count() > 1 {
                return fail(format!(
                    "Prometheus fails the evaluation: vector cannot contain metrics with the same labelset ({})",
                    labels::display(&self.slots[g[0]])
                ));
            }
        }
        Ok(())
    }
}

/// The value of an optional scalar parameter (NaN when there is none).
fn param_value(param: &mut Option<Box<Node>>, cx: &mut Cx) -> Result<f64, EvalError> {
    match param {
        Some(p) => {
            p.eval(cx)?;
            Ok(p.scalar)
        }
        None => Ok(f64::NAN),
    }
}

/// An aggregation of `arg` into groups (`out` per group, or per argument slot for
/// `topk`/`bottomk`), in the argument's slot order, as promql/engine.go's `aggregation`.
#[allow(clippy::too_many_arguments)]
fn aggregate(
    op: AggOp,
    param: f64,
    arg: &[Option<f64>],
    group_of: &[usize],
    groups: usize,
    values: &mut [Vec<(f64, usize)>],
    out: &mut [Option<f64>],
    sem: Semantics,
) -> Result<(), EvalError> {
    if matches!(op, AggOp::Topk | AggOp::Bottomk) {
        if !(param > -9.223_372_036_854_776e18 && param <= 9.223_372_036_854_775e18) {
            return fail(format!("Scalar value {param} overflows int64"));
        }
        let k = param as i64;
        if k < 1 {
            return Ok(());
        }
        for v in values.iter_mut() {
            v.clear();
        }
        let top = op == AggOp::Topk;
        for (i, v) in arg.iter().enumerate() {
            if let Some(v) = v {
                select_k(&mut values[group_of[i]], (*v, i), k as usize, top);
            }
        }
        for heap in values.iter() {
            for &(v, i) in heap {
                out[i] = Some(v);
            }
        }
        return Ok(());
    }
    let mut aggs = vec![Agg::default(); groups];
    let mut extreme: Vec<Option<f64>> = vec![None; groups];
    if op == AggOp::Quantile {
        for v in values.iter_mut() {
            v.clear();
        }
    }
    for (i, v) in arg.iter().enumerate() {
        let Some(v) = *v else { continue };
        let g = group_of[i];
        match op {
            AggOp::Sum | AggOp::Count => aggs[g].add_sum(v, sem),
            AggOp::Avg => aggs[g].add_avg(v, sem),
            AggOp::Max => {
                extreme[g] = Some(match extreme[g] {
                    Some(m) if !(m < v || m.is_nan()) => m,
                    _ => v,
                })
            }
            AggOp::Min => {
                extreme[g] = Some(match extreme[g] {
                    Some(m) if !(m > v || m.is_nan()) => m,
                    _ => v,
                })
            }
            AggOp::Quantile => values[g].push((v, i)),
            AggOp::Topk | AggOp::Bottomk => unreachable!("handled above"),
        }
    }
    let mut scratch: Vec<f64> = Vec::new();
    for g in 0..groups {
        out[g] = match op {
            AggOp::Sum => aggs[g].sum(),
            AggOp::Avg => aggs[g].avg(sem),
            AggOp::Count => aggs[g].count().map(|n| n as f64),
            AggOp::Max | AggOp::Min => extreme[g],
            AggOp::Quantile => {
                if values[g].is_empty() {
                    None
                } else {
                    scratch.clear();
                    scratch.extend(values[g].iter().map(|(v, _)| *v));
                    Some(quantile(param, &mut scratch, sem))
                }
            }
            AggOp::Topk | AggOp::Bottomk => unreachable!("handled above"),
        };
    }
    Ok(())
}

/// `topk`/`bottomk`'s heap step for one element, as Go's `container/heap` with
/// `vectorByValueHeap` (a min-heap for topk, NaN lowest) or `vectorByReverseValueHeap`
/// (a max-heap for bottomk, NaN on top) does it, so that ties pick the same elements.
fn select_k(heap: &mut Vec<(f64, usize)>, x: (f64, usize), k: usize, top: bool) {
    let less = |a: f64, b: f64| -> bool {
        if a.is_nan() && !b.is_nan() {
            return true;
        }
        if top { a < b } else { a > b }
    };
    if heap.is_empty() {
        heap.push(x);
        return;
    }
    let head = heap[0].0;
    let wanted = heap.len() < k || (if top { head < x.0 } else { head > x.0 }) || head.is_nan();
    if !wanted {
        return;
    }
    if heap.len() == k {
        if k == 1 {
            heap[0] = x;
            return;
        }
        // heap.Pop: swap the root with the last, sift down, remove the last.
        let n = heap.len() - 1;
        heap.swap(0, n);
        down(heap, 0, n, &less);
        heap.pop();
    }
    heap.push(x);
    let mut j = heap.len() - 1;
    while j > 0 {
        let i = (j - 1) / 2;
        if !less(heap[j].0, heap[i].0) {
            break;
        }
        heap.swap(i, j);
        j = i;
    }
}

fn down(heap: &mut [(f64, usize)], i0: usize, n: usize, less: &impl Fn(f64, f64) -> bool) {
    let mut i = i0;
    loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        let j2 = j1 + 1;
        if j2 < n && less(heap[j2].0, heap[j1].0) {
            j = j2;
        }
        if !less(heap[j].0, heap[i].0) {
            break;
        }
        heap.swap(i, j);
        i = j;
    }
}

/// The labels of a vector-to-vector operation's result (`resultMetric`).
fn result_labels(many: &Labels, one: &Labels, op: BinOp, bool_: bool, m: &Matching) -> Labels {
    let mut l = if op.drops_name() || bool_ {
        labels::drop_name(many)
    } else {
        many.clone()
    };
    if m.card == Card::OneToOne {
        l = if m.on {
            labels::keep(&l, &m.labels)
        } else {
            labels::without(&l, &m.labels)
        };
    }
    for name in &m.include {
        labels::set(&mut l, name, labels::get(one, name));
    }
    l
}

/// The matching signature of each slot of `a` and of `b`, numbered together, and how many
/// there are.
fn signatures(a: &Node, b: &Node, m: &Matching) -> (Vec<usize>, Vec<usize>, usize) {
    let mut sigs = Interner::default();
    let mut of = |n: &Node| -> Vec<usize> {
        n.slots
            .iter()
            .map(|l| sigs.id(labels::signature(l, m.on, &m.labels)))
            .collect()
    };
    let (a, b) = (of(a), of(b));
    (a, b, sigs.sets.len())
}

fn vector_node(op: BinOp, lhs: Box<Node>, rhs: Box<Node>, bool_: bool, m: &Matching) -> Node {
    let swapped = m.card == Card::OneToMany;
    let (many, one) = if swapped { (rhs, lhs) } else { (lhs, rhs) };
    let (many_sig, one_sig, nsig) = signatures(&many, &one, m);
    let mut slots = Vec::new();
    let mut pairs = Vec::with_capacity(many.slots.len());
    for (i, ml) in many.slots.iter().enumerate() {
        let mut mine = Vec::new();
        for (j, ol) in one.slots.iter().enumerate() {
            if one_sig[j] == many_sig[i] {
                mine.push((j, slots.len()));
                slots.push(result_labels(ml, ol, op, bool_, m));
            }
        }
        pairs.push(mine);
    }
    Node::new(
        slots,
        Kind::VectorVector {
            op,
            many,
            one,
            swapped,
            bool_,
            card: m.card,
            many_sig,
            one_sig,
            pairs,
            one_of_sig: vec![None; nsig],
            matched: vec![false; nsig],
        },
    )
}

fn set_node(op: BinOp, lhs: Box<Node>, rhs: Box<Node>, m: &Matching) -> Node {
    let (lhs_sig, rhs_sig, nsig) = signatures(&lhs, &rhs, m);
    let mut slots = lhs.slots.clone();
    if op == BinOp::Or {
        slots.extend(rhs.slots.iter().cloned());
    }
    Node::new(
        slots,
        Kind::Set {
            op,
            lhs,
            rhs,
            lhs_sig,
            rhs_sig,
            seen: vec![false; nsig],
        },
    )
}
