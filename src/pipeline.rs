//! The front half of every command: file → source → YAML document → schema check → typed
//! plan → checked plan → lowered plan (its alerting rules, computed once for render and
//! both simulations). Each stage runs only when the one before it found no error, and
//! every finding of the failing stage is kept.

use crate::check::{self, CheckedPlan};
use crate::diagnostic::{Diagnostic, Located};
use crate::lower::{self, LoweredPlan};
use crate::source::{LoadError, Source};
use crate::syntax::{self, Spans, locate};
use crate::{model, schema};
use std::path::Path;

/// One plan file, as far as it got through the pipeline.
pub struct Compiled {
    pub source: Source,
    /// Every finding, located and in source order.
    pub findings: Vec<Located>,
    /// Present when no finding is an error.
    pub plan: Option<LoweredPlan>,
    /// Where each value is, to place findings made after compiling (none when the file is
    /// not YAML at all).
    spans: Option<Spans>,
}

impl Compiled {
    pub fn has_errors(&self) -> bool {
        self.plan.is_none()
    }

    /// Places findings about this plan made after it compiled (`plan simulate`'s, at the
    /// rate it simulates) at their lines, as the pipeline's own are.
    pub(crate) fn locate(&self, findings: Vec<Diagnostic>) -> Vec<Located> {
        locate(&self.source, self.spans.as_ref(), findings)
    }

    /// Where `pointer` is in this plan, as `file:line:column`, for findings about another
    /// file (a scenario file) that name a rule of the plan.
    pub(crate) fn place(&self, pointer: &str) -> String {
        let d = Diagnostic::error("place", pointer, "");
        match self.locate(vec![d]).first() {
            Some(l) => format!("{}:{}:{}", l.file, l.line, l.column),
            None => self.source.name.clone(),
        }
    }
}

/// Reads and compiles a plan file; `Err` when the file cannot be read as text at all.
pub fn compile_file(path: &Path) -> Result<Compiled, LoadError> {
    let source = Source::load(path)?;
    Ok(compile(source))
}

/// Compiles a plan already in memory.
pub fn compile(source: Source) -> Compiled {
    let (spans, findings, plan) = stages(&source);
    let findings = locate(&source, spans.as_ref(), findings);
    Compiled {
        source,
        findings,
        plan: plan.map(lower::lower),
        spans,
    }
}

fn stages(source: &Source) -> (Option<Spans>, Vec<Diagnostic>, Option<CheckedPlan>) {
    let doc = match syntax::parse(source) {
        Ok(doc) => doc,
        Err((spans, diags)) => return (Some(spans), diags, None),
    };
    let schema_errors = schema::check(&doc.value);
    if !schema_errors.is_empty() {
        return (Some(doc.spans), schema_errors, None);
    }
    let plan = match model::from_document(&doc.value) {
        Ok(plan) => plan,
        Err(d) => return (Some(doc.spans), vec![d], None),
    };
    let checked = check::check(&plan, &doc.value, &source.name);
    (Some(doc.spans), checked.findings, checked.plan)
}
