//! `plan tune`: the search over settings of the plan's rules on the same trials, the report
//! on stdout, findings and notes on stderr.

use super::args::Format;
use super::error::Error;
use super::progress::Progress;
use super::settings::SimulateFlags;
use super::simulate::{RunInput, ScenarioInput, monte_carlo_scenarios, query_failed, valid_plan};
use crate::sim::recorded::Baseline;
use crate::sim::report::RecordingAssumptions;
use crate::sim::tune::report::LineEdit;
use crate::sim::tune::space::{self, Ranges};
use crate::sim::tune::sweep::Stop;
use crate::sim::tune::{self, Ask, TuneError, window};
use std::io::Write;
use std::path::Path;

/// What the command line asks of a tune.
pub(super) struct Asked {
    pub(super) budget: f64,
    pub(super) vary: Vec<String>,
    pub(super) keep: Vec<String>,
    pub(super) check: bool,
    /// Run the refining pass.
    pub(super) refine: bool,
    /// Write the recommended setting into the plan file.
    pub(super) write: bool,
}

/// Lines of context around each change of the diff.
const CONTEXT: usize = 3;

/// The change from `old` to `new` (whose changed lines are `changed`) as a unified diff
/// that `git apply` and `patch -p1` take: every line with its own ending (`\r\n` stays),
/// and a last line without one marked as such.
fn diff(path: &Path, old: &str, new: &str, changed: &[LineEdit], written: bool) -> String {
    if changed.is_empty() {
        return "\nthe plan already has the recommended setting\n".into();
    }
    let olds: Vec<&str> = old.split_inclusive('\n').collect();
    let news: Vec<&str> = new.split_inclusive('\n').collect();
    let path = diff_path(path);
    let mut s = format!(
        "\n{} (comments are kept as written: check any that restates a value):\n--- a/{path}\n+++ b/{path}\n",
        if written {
            "written into the plan"
        } else {
            "the change (`--write` writes it into the plan)"
        }
    );
    // A line as the diff carries it: its own ending, or none and the marker.
    let line = |prefix: char, l: &str| {
        if l.ends_with('\n') {
            format!("{prefix}{l}")
        } else {
            format!("{prefix}{l}\n\\ No newline at end of file\n")
        }
    };
    // Hunks: changes closer than twice the context share one.
    let mut hunks: Vec<Vec<&LineEdit>> = Vec::new();
    for c in changed {
        match hunks.last_mut() {
            Some(h) if c.line - h[h.len() - 1].line <= 2 * CONTEXT => h.push(c),
            _ => hunks.push(vec![c]),
        }
    }
    // Lines inserted (less those deleted) before an old line: where it is in the new file.
    let mut added: isize = 0;
    let inserted = |c: &LineEdit| match (&c.from, &c.to) {
        (None, Some(to)) => to.lines().count(),
        _ => 0,
    };
    for h in hunks {
        let first = h[0].line.saturating_sub(CONTEXT).max(1);
        let last = (h[h.len() - 1].line + CONTEXT).min(olds.len());
        let len = (last + 1).saturating_sub(first);
        let inserted_here: usize = h.iter().map(|c| inserted(c)).sum();
        let deleted_here = h.iter().filter(|c| c.to.is_none()).count();
        let mut body = String::new();
        let start = (first as isize + added) as usize;
        let mut at = start - 1;
        for n in first..=last + 1 {
            for c in h.iter().filter(|c| c.line == n) {
                for _ in 0..inserted(c) {
                    body += &line('+', news.get(at).copied().unwrap_or(""));
                    at += 1;
                }
            }
            if n > last {
                break;
            }
            let old_line = olds[n - 1];
            if h.iter().any(|c| c.line == n && c.to.is_none()) {
                body += &line('-', old_line);
                continue;
            }
            // A changed line, or the last one, whose ending the new text adds.
            let new_line = news.get(at).copied().unwrap_or("");
            if h.iter().any(|c| c.line == n && c.from.is_some()) || old_line != new_line {
                body += &line('-', old_line);
                body += &line('+', news.get(at).copied().unwrap_or(""));
            } else {
                body += &line(' ', old_line);
            }
            at += 1;
        }
        s += &format!(
            "@@ -{first},{len} +{start},{} @@\n{body}",
            len + inserted_here - deleted_here
        );
        added += inserted_here as isize - deleted_here as isize;
    }
    s
}

/// The plan's path as a diff names it: relative to the top of the git repository it is in
/// (where `git apply` reads a patch's paths from, in any of its folders), else as given
/// when that is a plain relative path, else relative to the current folder, else its file
/// name; never absolute or through `..`, which `git apply` refuses.
fn diff_path(path: &Path) -> String {
    let plain = |p: &Path| {
        p.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
            .then(|| p.to_string_lossy().replace('\\', "/"))
    };
    let given = path.strip_prefix("./").unwrap_or(path);
    let full = std::fs::canonicalize(path).ok();
    let under = |base: Option<std::path::PathBuf>| {
        full.as_deref()
            .zip(base)
            .and_then(|(f, b)| f.strip_prefix(b).ok().and_then(plain))
    };
    let repo = full.as_deref().and_then(|f| {
        f.ancestors()
            .skip(1)
            .find(|d| d.join(".git").exists())
            .map(Path::to_path_buf)
    });
    under(repo)
        .or_else(|| plain(given))
        .or_else(|| under(std::env::current_dir().ok()))
        .unwrap_or_else(|| {
            path.file_name()
                .map_or_else(|| "plan.yaml".into(), |n| n.to_string_lossy().into_owned())
        })
}

/// Replaces the plan file by `text` at once: written beside it, then renamed over it, so
/// that a failure leaves the old file whole.
fn write_plan(path: &Path, text: &str) -> Result<(), Error> {
    let fail = |e: std::io::Error| {
        Error::Tune(format!(
            "{}: cannot write the tuned plan: {e}; the plan was not changed",
            path.display()
        ))
    };
    // A link is followed: the file it names is the plan.
    let path = &std::fs::canonicalize(path).map_err(fail)?;
    if std::fs::metadata(path)
        .map_err(fail)?
        .permissions()
        .readonly()
    {
        return Err(Error::Tune(format!(
            "{}: the plan is read-only; make it writable, or run without --write and apply the printed change",
            path.display()
        )));
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fail = |e: std::io::Error| {
        Error::Tune(format!(
            "{}: cannot write the tuned plan beside it, in {}: {e}; the plan was not changed",
            path.display(),
            dir.display()
        ))
    };
    let name = path
        .file_name()
        .map_or("plan".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.tune-{}", std::process::id()));
    let permissions = std::fs::metadata(path).map_err(fail)?.permissions();
    let written = std::fs::write(&tmp, text)
        .and_then(|()| std::fs::set_permissions(&tmp, permissions))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}

pub(super) fn tune(
    file: &Path,
    scenarios: Option<&Path>,
    flags: SimulateFlags,
    asked: &Asked,
    format: Format,
) -> Result<(), Error> {
    let compiled = valid_plan(file)?;
    let Some(lowered) = &compiled.plan else {
        return Err(Error::Findings { unreadable: false });
    };
    let mut ranges = Ranges {
        vary: Vec::new(),
        keep: asked.keep.clone(),
    };
    let mut windows = None;
    for v in &asked.vary {
        if let Some(range) = v.trim().strip_prefix("window=") {
            if windows.is_some() {
                return Err(Error::Usage("--vary window=... is given twice".into()));
            }
            windows = Some(
                window::parse_range(range).map_err(|e| Error::Usage(format!("--vary {v}: {e}")))?,
            );
            continue;
        }
        let parsed = space::parse_vary(v).map_err(|e| Error::Usage(format!("--vary {e}")))?;
        let vary = space::resolve_vary(&lowered.plan, &lowered.rules, &parsed)
            .map_err(|e| Error::Usage(format!("--vary {v}: {e}")))?;
        ranges.vary.push(vary);
    }
    // Trials built from a recording: read first, it gives the scenarios' request rate;
    // refused as `plan simulate --baseline` refuses it.
    let recording = super::simulate::recording(&flags.baseline)?;
    let baseline = recording.as_ref().map(|r| Baseline::of(r, flags.block_ms));
    let input = monte_carlo_scenarios(
        &compiled,
        lowered,
        ScenarioInput::Flag(scenarios),
        &flags,
        super::simulate::basis(baseline),
    )?;
    let (plans, skipped) = window::plans(&compiled.source, lowered, windows)
        .map_err(|e| Error::Usage(format!("--vary window: {e}")))?;
    for s in &skipped {
        eprintln!("note: the rate window {s}; it is not tried");
    }
    let described = match baseline {
        Some(baseline) => {
            Some(super::simulate::recorded_model(&compiled, lowered, &input, baseline)?.1)
        }
        None => None,
    };
    let RunInput {
        scenarios,
        file_name,
        settings,
        ..
    } = &input;
    let settings = *settings;
    super::simulate::recording_notes(described.iter());
    let mut bar = Progress::new(format, "tuning");
    let mut progress = |d: u64, t: u64| bar.update(d, t);
    let ask = Ask {
        ranges: &ranges,
        budget: asked.budget,
        check_seed: asked.check.then(|| settings.seed.wrapping_add(1)),
        refine: asked.refine,
        baseline,
    };
    let tuned = match tune::tune(
        &plans,
        (scenarios, file_name),
        settings,
        &ask,
        &mut progress,
    ) {
        Ok(r) => r,
        Err(TuneError::Usage(e)) => return Err(Error::Usage(e)),
        Err(TuneError::NoFault) => {
            return Err(Error::Tune(format!(
                "{file_name} has no faulty scenario: a tune weighs false rollbacks against faults caught, and there is no fault to catch; add scenarios with a `fault`"
            )));
        }
        Err(TuneError::Stop(Stop::Query(scenario, trial, f))) => {
            return Err(query_failed(&compiled, (&scenario, trial, &f)));
        }
        Err(TuneError::Stop(Stop::Disordered { rule })) => {
            return Err(Error::Tune(format!(
                "`{}` compares with a stable value below zero in some trial, where a higher factor is not a stricter rule; keep it as written (`--keep {}`)",
                lowered.rules[rule].id,
                space::target(&lowered.rules[rule])
            )));
        }
    };
    let mut report = tuned.report;
    report.recording = described.as_ref().map(RecordingAssumptions::of);
    // The plan file with the recommended setting written in.
    let rewritten = match &tuned.recommended {
        Some(r) => Some(
            tune::edits::rewrite(&compiled.source, &plans[r.window], &r.lowered, &r.knobs, &r.setting).map_err(|e| {
                Error::Tune(format!(
                    "{}: the recommended setting cannot be written into the plan: {e}; nothing was written",
                    compiled.source.name
                ))
            })?,
        ),
        None => None,
    };
    if let Some(r) = &rewritten {
        report.edits = r.changed.clone();
        for w in &r.warnings {
            eprintln!(
                "note: the tuned plan gets a warning the plan did not have: {}:{w}",
                compiled.source.name
            );
        }
    }
    let check_failed = report.check.as_ref().filter(|c| !c.within_budget).map(|c| {
        Error::Tune(format!(
            "the recommended setting rolled back {} of fresh healthy trials, whose 95% interval reaches {}, over the budget of {}: it is not recommended{}; tune with more --trials",
            crate::sim::tune::report::percent(c.false_rollback.probability),
            crate::sim::tune::report::percent(c.false_rollback.ci95[1]),
            crate::sim::tune::report::percent(asked.budget),
            if asked.write { ", and nothing was written" } else { "" }
        ))
    });
    // Written before the report is printed, so that the report says whether it was.
    let mut write_failed = None;
    if let (true, None, Some(r)) = (asked.write, &check_failed, &rewritten) {
        match r.changed.is_empty() {
            true => report.written = true,
            false => match write_plan(file, &r.text) {
                Ok(()) => report.written = true,
                Err(e) => write_failed = Some(e),
            },
        }
    }
    let mut text = match format {
        Format::Json => serde_json::to_string_pretty(&report).unwrap_or_default() + "\n",
        Format::Human => tune::report::text(&report),
    };
    if let (Format::Human, Some(r)) = (format, &rewritten) {
        text += &diff(
            file,
            &compiled.source.text,
            &r.text,
            &r.changed,
            report.written,
        );
    }
    let _ = std::io::stdout().write_all(text.as_bytes());
    if let Some(path) = &flags.report {
        use super::report_file::{Kind, Report, write};
        write(path, &lowered.plan, &Report::of(Kind::Tune, &report))?;
    }
    if let Some(e) = check_failed.or(write_failed) {
        return Err(e);
    }
    if let (true, Some(r)) = (report.written, &rewritten) {
        eprintln!(
            "wrote {} line{} of {}",
            r.changed.len(),
            super::terminal::plural(r.changed.len()),
            file.display()
        );
    }
    if report.recommended.is_none() {
        return Err(Error::Tune(format!(
            "no setting keeps false rollbacks within {}; raise --max-false-rollback, or tune more rules (a rule kept as written may be what rolls back)",
            crate::sim::tune::report::percent(asked.budget)
        )));
    }
    Ok(())
}
