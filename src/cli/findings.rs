//! Compiling the files a command is given and collecting what is wrong with them: every
//! plan through the pipeline, every scenario file on its own and against each plan, each
//! finding rendered for people (and kept as data for `--format json`).

use super::error::Error;
use super::terminal::{color, plural};
use crate::check::CheckedPlan;
use crate::diagnostic::{Diagnostic, Located, Severity, render_human};
use crate::pipeline::{self, Compiled};
use crate::sim::scenario::{self, Basis, ScenarioFile, Scenarios};
use crate::source::{Kind, LoadError, Source};
use crate::syntax::locate;
use std::path::{Path, PathBuf};

/// What checking a scenario file against a plan adds, beyond the file's own findings, for
/// the scenarios it resolves to (`plan validate --baseline`: what a recorded trial cannot
/// carry): findings in the scenario file, and findings about other files, located.
pub(super) type Extra<'a> = dyn Fn(&Compiled, &Scenarios) -> (Vec<Diagnostic>, Vec<Located>) + 'a;

/// Every file compiled, with its findings rendered for people and collected as data.
pub(super) struct Batch {
    pub(super) compiled: Vec<Compiled>,
    pub(super) findings: Vec<Located>,
    pub(super) human: String,
    files: usize,
    unreadable: bool,
    invalid: bool,
    deny_warnings: bool,
}

impl Batch {
    /// Compiles every plan file.
    pub(super) fn plans(files: &[PathBuf], deny_warnings: bool) -> Batch {
        let mut b = Batch::new(files.len(), deny_warnings);
        for path in files {
            match pipeline::compile_file(path) {
                Ok(c) => b.compiled(c),
                Err(e) => b.unreadable(&e),
            }
        }
        b
    }

    /// Compiles one plan already read (as a shard keeps it).
    pub(super) fn source(source: Source) -> Batch {
        let mut b = Batch::new(1, false);
        b.compiled(pipeline::compile(source));
        b
    }

    fn new(files: usize, deny_warnings: bool) -> Batch {
        Batch {
            compiled: Vec::new(),
            findings: Vec::new(),
            human: String::new(),
            files,
            unreadable: false,
            invalid: false,
            deny_warnings,
        }
    }

    fn compiled(&mut self, c: Compiled) {
        self.invalid |= c.has_errors() || (self.deny_warnings && !c.findings.is_empty());
        let color = color();
        for f in &c.findings {
            self.human
                .push_str(&render_human(Some(&c.source), f, color));
        }
        self.findings.extend(c.findings.iter().cloned());
        self.compiled.push(c);
    }

    /// A file that could not be read: exit 2 for I/O, 1 for content.
    fn unreadable(&mut self, e: &LoadError) {
        if e.is_io() {
            self.unreadable = true;
        } else {
            self.invalid = true;
        }
        let f = load_finding(e);
        self.human.push_str(&render_human(None, &f, color()));
        self.findings.push(f);
    }

    /// Checks the scenario file each valid plan names (`simulation.scenarios`) against that
    /// plan, unless it is among `given` (checked against every plan already). A file that
    /// cannot be read is an error at the plan's line. The files are read for trials built
    /// from `basis`, and `extra` adds its findings.
    pub(super) fn named_scenario_files(
        &mut self,
        given: &[PathBuf],
        (basis, extra): (Basis, &Extra<'_>),
    ) {
        let color = color();
        for i in 0..self.compiled.len() {
            let c = &self.compiled[i];
            let Some(path) = c.plan.as_ref().and_then(|l| named_scenarios(c, &l.plan)) else {
                continue;
            };
            if given.iter().any(|g| same_file(g, &path)) {
                continue;
            }
            match Source::load_as(&path, Kind::Scenarios) {
                Ok(source) => {
                    self.files += 1;
                    let file = scenario::read(&source).on(basis);
                    self.against_plan(i, (&source, &file), extra, true);
                }
                Err(e) => {
                    let f = c.locate(vec![unreadable_named(&path, &e, Severity::Warning)]);
                    let source = c.source.clone();
                    self.add(Some(&source), f, color);
                }
            }
        }
    }

    /// Adds findings about `source`, rendered for people.
    fn add(&mut self, source: Option<&Source>, findings: Vec<Located>, color: bool) {
        self.invalid |= findings.iter().any(|f| f.severity == Severity::Error)
            || (self.deny_warnings && !findings.is_empty());
        for f in &findings {
            self.human.push_str(&render_human(source, f, color));
        }
        self.findings.extend(findings);
    }

    /// Checks a scenario file on its own and against every valid plan of the batch; a
    /// finding that several plans share is reported once. The file is read for trials
    /// built from `basis`, and `extra` adds its findings.
    pub(super) fn scenario_file(&mut self, path: &Path, (basis, extra): (Basis, &Extra<'_>)) {
        self.files += 1;
        let source = match Source::load_as(path, Kind::Scenarios) {
            Ok(s) => s,
            Err(e) => return self.unreadable(&e),
        };
        let file = scenario::read(&source).on(basis);
        let mut diags = file.findings.clone();
        let mut elsewhere = Vec::new();
        for c in &self.compiled {
            let Some(lowered) = &c.plan else { continue };
            let (scenarios, found) = file.against(&lowered.plan, &|p| c.place(p));
            let (here, there) = scenarios.map_or_else(Default::default, |s| extra(c, &s));
            for d in found.into_iter().chain(here) {
                if !diags.contains(&d) {
                    diags.push(d);
                }
            }
            elsewhere.push((c.source.clone(), there));
        }
        let findings = locate(&source, file.spans.as_ref(), diags);
        let color = color();
        self.add(Some(&source), findings, color);
        for (plan_source, there) in elsewhere {
            self.add_once(&plan_source, there, color);
        }
    }

    /// Checks the built-in scenarios against each valid plan that names no scenario file
    /// (what `plan simulate PLAN` reads then), for trials built from `basis`: only what
    /// `extra` adds, the built-in file being checked with the project.
    pub(super) fn builtin_scenarios(&mut self, (basis, extra): (Basis, &Extra<'_>)) {
        let (source, file) = scenario::builtin();
        let file = file.on(basis);
        for i in 0..self.compiled.len() {
            let c = &self.compiled[i];
            if c.plan
                .as_ref()
                .is_some_and(|l| named_scenarios(c, &l.plan).is_none())
            {
                self.against_plan(i, (&source, &file), extra, false);
            }
        }
    }

    /// Checks `file` (read from `source`) against plan `i`: in the file, its own findings
    /// and the check's (when `own`) and what `extra` finds there; and `extra`'s findings
    /// about other files, each given once.
    fn against_plan(
        &mut self,
        i: usize,
        (source, file): (&Source, &ScenarioFile),
        extra: &Extra<'_>,
        own: bool,
    ) {
        let c = &self.compiled[i];
        let Some(lowered) = &c.plan else { return };
        let (scenarios, found) = file.against(&lowered.plan, &|p| c.place(p));
        let mut diags = Vec::new();
        if own {
            diags.extend(file.findings.iter().cloned().chain(found));
        }
        let mut elsewhere = Vec::new();
        if let Some(scenarios) = scenarios {
            let (here, there) = extra(c, &scenarios);
            diags.extend(here);
            elsewhere = there;
        }
        let plan_source = c.source.clone();
        let color = color();
        let findings = locate(source, file.spans.as_ref(), diags);
        self.add(Some(source), findings, color);
        self.add_once(&plan_source, elsewhere, color);
    }

    /// [`add`](Self::add), leaving out what is already there (a finding about a plan that
    /// several scenario files lead to).
    fn add_once(&mut self, source: &Source, findings: Vec<Located>, color: bool) {
        let key = |f: &Located| (f.file.clone(), f.line, f.column, f.code, f.message.clone());
        let new: Vec<Located> = findings
            .into_iter()
            .filter(|f| !self.findings.iter().any(|g| key(g) == key(f)))
            .collect();
        self.add(Some(source), new, color);
    }

    /// The human findings, closed by their count when there is any.
    pub(super) fn text(&self) -> String {
        self.human.clone() + &summary(&self.findings, self.files)
    }

    /// `Err` when a file could not be read or holds an error (or a warning, when warnings
    /// are denied).
    pub(super) fn outcome(&self) -> Result<(), Error> {
        if self.unreadable || self.invalid {
            Err(Error::Findings {
                unreadable: self.unreadable,
            })
        } else {
            Ok(())
        }
    }
}

/// A file that could not be read turned into a finding, so JSON output stays one array.
pub(super) fn load_finding(e: &LoadError) -> Located {
    Located {
        file: e.name().to_string(),
        line: e.line,
        column: e.column,
        pointer: String::new(),
        severity: Severity::Error,
        code: e.code,
        message: e.reason.clone(),
        hint: Some(e.hint.to_string()),
        width: None,
    }
}

/// `N errors, M warnings in K files`, when there is any finding.
pub(super) fn summary(findings: &[Located], files: usize) -> String {
    if findings.is_empty() {
        return String::new();
    }
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings.len() - errors;
    format!(
        "{} error{}, {} warning{} in {} file{}\n",
        errors,
        plural(errors),
        warnings,
        plural(warnings),
        files,
        plural(files),
    )
}

/// The scenario file a plan names (`simulation.scenarios`), relative to the plan's folder.
pub(super) fn named_scenarios(c: &Compiled, plan: &CheckedPlan) -> Option<PathBuf> {
    let rel = plan.scenario_file.as_ref()?;
    let dir = Path::new(&c.source.name).parent().unwrap_or(Path::new(""));
    Some(dir.join(rel))
}

/// The finding at the plan's `simulation.scenarios` when the file it names cannot be read:
/// an error for `plan simulate`, which needs it; a warning for `plan validate` (the plan
/// itself is valid, and renders).
pub(super) fn unreadable_named(path: &Path, e: &LoadError, severity: Severity) -> Diagnostic {
    let f = load_finding(e);
    let d = Diagnostic::error(
        "scenario-file",
        "/simulation/scenarios",
        format!("the scenario file named here ({}) cannot be used: {}", path.display(), f.message),
    )
    .with_hint("the path is relative to the plan's folder; write the file (start from simulations/default.yaml) or fix the path");
    match severity {
        Severity::Error => d,
        Severity::Warning => Diagnostic { severity, ..d },
    }
}

/// Whether two paths name the same file (as given, or once resolved).
fn same_file(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(x), Ok(y)) if x == y
        )
}
