//! `plan simulate`: a Monte Carlo run over built-in or given scenarios, or the replay of
//! one recorded trace; the report on stdout, findings and notes on stderr.

use super::args::Format;
use super::error::Error;
use super::findings::{Batch, load_finding, named_scenarios, summary, unreadable_named};
use super::progress::Progress;
use super::report_file::{self, Kind as Page, Report};
use super::settings::SimulateFlags;
use super::terminal::{color, plural};
use crate::diagnostic::{Diagnostic, Severity, render_human};
use crate::limits::MAX_COMPARED_TRIALS;
use crate::lower::LoweredPlan;
use crate::pipeline::Compiled;
use crate::sim::compare;
use crate::sim::montecarlo;
use crate::sim::recorded::{self, Baseline, Described, RecordedModel, Recording};
use crate::sim::replay::{self, Options};
use crate::sim::scenario::{self, Basis};
use crate::sim::shard::{self, Shard};
use crate::source::{Kind, Source};
use crate::syntax::locate;
use std::io::Write;
use std::path::Path;

pub(super) fn simulate(
    file: &Path,
    trace: Option<&Path>,
    scenarios: Option<&Path>,
    flags: SimulateFlags,
    format: Format,
) -> Result<(), Error> {
    let compiled = valid_plan(file)?;
    let Some(lowered) = &compiled.plan else {
        return Err(Error::Findings { unreadable: false });
    };
    if flags.shard.is_some() && flags.report.is_some() {
        return Err(Error::Usage(
            "--report draws a whole run, and a shard is a slice of one: give --report to `plan merge`, which draws the merged run's page".into(),
        ));
    }
    let text = match trace {
        Some(trace) => replay_text(lowered, trace, &flags, format)?,
        // Without `--scenarios`, the file the plan names, else the built-in scenarios.
        None => monte_carlo_text(&compiled, lowered, scenarios, &flags, format)?,
    };
    let _ = std::io::stdout().write_all(text.text.as_bytes());
    match (&flags.report, text.report) {
        (Some(path), Some(report)) => report_file::write(path, &lowered.plan, &report),
        _ => Ok(()),
    }
}

/// What a run prints, and its document for the HTML report when `--report` asks for one.
struct Output {
    text: String,
    report: Option<Report>,
}

/// `plan simulate A B`: both plans on the same trials and scenarios, B - A.
pub(super) fn compare(
    a: &Path,
    b: &Path,
    given: Option<&Path>,
    flags: &SimulateFlags,
    format: Format,
) -> Result<(), Error> {
    let ca = valid_plan(a)?;
    let cb = valid_plan(b)?;
    let (Some(la), Some(lb)) = (&ca.plan, &cb.plan) else {
        return Err(Error::Findings { unreadable: false });
    };
    // Trials built from a recording: read first, it gives the scenarios' request rate.
    let recording = recording(&flags.baseline)?;
    let baseline = recording.as_ref().map(|r| Baseline::of(r, flags.block_ms));
    let basis = basis(baseline);
    let ia = monte_carlo_scenarios(&ca, la, ScenarioInput::Flag(given), flags, basis)?;
    let ib = monte_carlo_scenarios(&cb, lb, ScenarioInput::Flag(given), flags, basis)?;
    let text = |i: &RunInput| i.file.as_ref().map(|f| f.text.clone());
    if text(&ia) != text(&ib) {
        return Err(Error::Usage(format!(
            "{} reads the scenarios of {} and {} those of {}; a comparison runs both plans on the same scenarios: give them with `--scenarios FILE`",
            a.display(),
            ia.file_name,
            b.display(),
            ib.file_name
        )));
    }
    let settings = ia.settings;
    let kept = settings.trials * ia.scenarios.scenarios.len() as u64;
    if kept > MAX_COMPARED_TRIALS {
        return Err(Error::Usage(format!(
            "a comparison keeps every trial's outcome of both plans, and {} trials per scenario of {} scenarios are {kept}, over the limit of {MAX_COMPARED_TRIALS}; give fewer `--trials`",
            settings.trials,
            ia.scenarios.scenarios.len()
        )));
    }
    let work = montecarlo::Work::of(&la.plan, &ia.scenarios, &settings);
    let work_b = montecarlo::Work::of(&lb.plan, &ib.scenarios, &settings);
    if let Some(note) = long_run(
        montecarlo::Work {
            trials: work.trials + work_b.trials,
            evaluations_per_trial: work.evaluations_per_trial.max(work_b.evaluations_per_trial),
            counter_sets: work.counter_sets.max(work_b.counter_sets),
        },
        settings.jobs,
        recording.is_some(),
    ) {
        eprintln!("{note}");
    }
    let sa = compare::Side {
        file: a.display().to_string(),
        lowered: la,
        scenarios: &ia.scenarios,
    };
    let sb = compare::Side {
        file: b.display().to_string(),
        lowered: lb,
        scenarios: &ib.scenarios,
    };
    // Trials built from a recording: each plan must be able to read it.
    let mut described = [None, None];
    if let Some(baseline) = baseline {
        for (d, (compiled, lowered, input)) in
            described.iter_mut().zip([(&ca, la, &ia), (&cb, lb, &ib)])
        {
            *d = Some(recorded_model(compiled, lowered, input, baseline)?.1);
        }
    }
    recording_notes(described.iter().flatten());
    let mut bar = Progress::new(format, "simulating");
    let runs = compare::run((&sa, &sb), baseline, settings, &mut |d, t| bar.update(d, t));
    drop(bar);
    for (compiled, run) in [(&ca, &runs.a), (&cb, &runs.b)] {
        if let Some(failure) = run.query_failure() {
            return Err(query_failed(compiled, failure));
        }
    }
    // The kind of trial each side ran in the comparison (both full unless both can be
    // sparse alike), which its own reads alone do not say.
    for (d, why) in described.iter_mut().zip(&runs.full_because) {
        if let Some(d) = d {
            d.full_because.clone_from(why);
        }
    }
    let own = |l: &LoweredPlan, i: &RunInput, run, d: &Option<Described>| {
        crate::sim::report::build(
            &l.plan,
            &l.rules,
            (&i.scenarios, &i.file_name),
            &i.settings,
            (
                run,
                d.as_ref().map(crate::sim::report::RecordingAssumptions::of),
            ),
        )
    };
    let [da, db] = &described;
    let reports = [own(la, &ia, &runs.a, da), own(lb, &ib, &runs.b, db)];
    let report = compare::report((&sa, &sb), &runs, &settings, &ia.file_name, reports);
    let out = match format {
        Format::Json => serde_json::to_string_pretty(&report).unwrap_or_default() + "\n",
        Format::Human => compare::text(&report),
    };
    let _ = std::io::stdout().write_all(out.as_bytes());
    Ok(())
}

/// The plan in `file`, compiled, its findings printed; Err unless it is valid.
pub(super) fn valid_plan(file: &Path) -> Result<Compiled, Error> {
    valid(Batch::plans(&[file.to_path_buf()], false))
}

/// The plan in `source`, as [`valid_plan`].
pub(super) fn valid_source(source: Source) -> Result<Compiled, Error> {
    valid(Batch::source(source))
}

fn valid(b: Batch) -> Result<Compiled, Error> {
    let _ = std::io::stderr().write_all(b.text().as_bytes());
    b.outcome()?;
    b.compiled
        .into_iter()
        .next()
        .filter(|c| c.plan.is_some())
        .ok_or(Error::Findings { unreadable: false })
}

/// The replay of `trace`: its timeline, or its JSON document.
fn replay_text(
    lowered: &LoweredPlan,
    trace: &Path,
    flags: &SimulateFlags,
    format: Format,
) -> Result<Output, Error> {
    let opts = Options {
        semantics: flags.semantics,
        start_ms: flags.start_ms,
        end_ms: flags.end_ms,
        evaluation_offset_ms: flags.evaluation_offset_ms,
    };
    let report =
        replay::replay_file(&lowered.plan, &lowered.rules, trace, &opts).map_err(Error::Replay)?;
    let text = match format {
        Format::Json => serde_json::to_string_pretty(&report).unwrap_or_default() + "\n",
        Format::Human => replay::timeline(&report),
    };
    Ok(Output {
        text,
        report: flags
            .report
            .as_ref()
            .map(|_| Report::of(Page::Replay, &report)),
    })
}

/// Where a Monte Carlo run's scenarios come from.
pub(super) enum ScenarioInput<'p> {
    /// `--scenarios FILE`, else the file the plan names, else the built-in scenarios.
    Flag(Option<&'p Path>),
    /// As a shard recorded them: a scenario file's name and text, or None for the built-in
    /// scenarios.
    Recorded(Option<Source>),
}

/// A scenario file to read.
#[derive(Clone, Copy)]
enum ScenarioFile<'p> {
    /// `--scenarios FILE`.
    Given(&'p Path),
    /// The plan's `simulation.scenarios`, resolved against the plan's folder.
    Named(&'p Path),
}

/// The scenario file, read: an error at the command line's path, or at the plan's line
/// that names it.
fn scenario_source(compiled: &Compiled, file: ScenarioFile<'_>) -> Result<Source, Error> {
    let path = match file {
        ScenarioFile::Given(p) | ScenarioFile::Named(p) => p,
    };
    Source::load_as(path, Kind::Scenarios).map_err(|e| match file {
        ScenarioFile::Given(_) => {
            eprint!("{}", render_human(None, &load_finding(&e), color()));
            Error::Findings {
                unreadable: e.is_io(),
            }
        }
        ScenarioFile::Named(_) => {
            for f in compiled.locate(vec![unreadable_named(path, &e, Severity::Error)]) {
                eprint!("{}", render_human(Some(&compiled.source), &f, color()));
            }
            Error::Findings { unreadable: false }
        }
    })
}

/// What a Monte Carlo run reads besides the plan.
pub(super) struct RunInput {
    pub(super) scenarios: scenario::Scenarios,
    /// The scenario file's name, as the report gives it.
    pub(super) file_name: String,
    /// The scenario file read, or None for the built-in scenarios.
    pub(super) file: Option<Source>,
    pub(super) settings: montecarlo::Settings,
}

/// The scenarios a Monte Carlo run (`simulate`, `tune`, `merge`) reads for trials built
/// from `basis`, and the run's settings; their findings printed, and Err when one is an
/// error or a query's selector matches no modelled series.
pub(super) fn monte_carlo_scenarios(
    compiled: &Compiled,
    lowered: &LoweredPlan,
    input: ScenarioInput<'_>,
    flags: &SimulateFlags,
    basis: Basis,
) -> Result<RunInput, Error> {
    let file = match input {
        ScenarioInput::Flag(given) => {
            let named = named_scenarios(compiled, &lowered.plan);
            match (given, &named) {
                (Some(given), _) => Some(scenario_source(compiled, ScenarioFile::Given(given))?),
                (None, Some(path)) => Some(scenario_source(compiled, ScenarioFile::Named(path))?),
                (None, None) => None,
            }
        }
        ScenarioInput::Recorded(file) => file,
    };
    let plan = &lowered.plan;
    let place = |p: &str| compiled.place(p);
    let color = color();
    // Trials built from a recording read the plan's metrics from it, not from models.
    let recorded = matches!(basis, Basis::Recorded { .. });
    // A file's findings are at its lines; the built-in scenarios' (a custom metric they
    // cannot model) at the plan's.
    let (scenarios, findings, file_name) = match &file {
        Some(source) => {
            let (scenarios, findings) = scenario::load_on(source, plan, &place, basis);
            for f in &findings {
                eprint!("{}", render_human(Some(source), f, color));
            }
            (scenarios, findings, source.name.clone())
        }
        None => {
            let (source, builtin) = scenario::builtin();
            let builtin = builtin.on(basis);
            let (scenarios, diags) = builtin.against(plan, &place);
            let (in_plan, in_file) = diags
                .into_iter()
                .partition(|d| d.code == scenario::UNMODELLED_METRIC);
            let mut findings = compiled.locate(in_plan);
            for f in &findings {
                eprint!("{}", render_human(Some(&compiled.source), f, color));
            }
            let in_file = locate(&source, builtin.spans.as_ref(), in_file);
            for f in &in_file {
                eprint!("{}", render_human(Some(&source), f, color));
            }
            findings.extend(in_file);
            (scenarios, findings, source.name)
        }
    };
    eprint!("{}", summary(&findings, 1));
    let Some(scenarios) = scenarios else {
        return Err(Error::Findings { unreadable: false });
    };
    // The plan's own rate was checked when it compiled; warn again at the simulated rate
    // (a recording's own, on one).
    let rps = scenarios.traffic.requests_per_second;
    if plan.traffic.requests_per_second != Some(rps) {
        let whose = match basis {
            Basis::Recorded {
                requests_per_second: Some(_),
            } => "recording's",
            _ => "simulated",
        };
        let thin = crate::check::thin_traffic(plan, rps)
            .into_iter()
            .map(|mut d| {
                d.message = format!(
                    "at the {whose} {} req/s, {}",
                    crate::model::trim(rps),
                    d.message
                );
                d
            });
        for f in compiled.locate(thin.collect()) {
            eprint!("{}", render_human(Some(&compiled.source), &f, color));
        }
    }
    let settings = flags.resolve(&scenarios);
    if recorded {
        return Ok(RunInput {
            scenarios,
            file_name,
            file,
            settings,
        });
    }
    // A query whose selector no modelled series matches would read nothing in any trial.
    let unmatched = compiled.locate(crate::sim::synth::unmatched_selectors(
        plan,
        &scenarios,
        settings.semantics,
    ));
    if !unmatched.is_empty() {
        for f in &unmatched {
            eprint!("{}", render_human(Some(&compiled.source), f, color));
        }
        eprint!("{}", summary(&unmatched, 1));
        return Err(Error::Findings { unreadable: false });
    }
    // Rules the model can never fire would count as rules that held: say which, and why.
    let never = crate::sim::reach::never_fires(plan, &lowered.rules, &scenarios, settings.trials);
    for f in compiled.locate(never) {
        eprint!("{}", render_human(Some(&compiled.source), &f, color));
    }
    Ok(RunInput {
        scenarios,
        file_name,
        file,
        settings,
    })
}

/// The Monte Carlo run over the scenarios: the report for people, or its JSON document;
/// with `--shard`, the shard's document.
fn monte_carlo_text(
    compiled: &Compiled,
    lowered: &LoweredPlan,
    given: Option<&Path>,
    flags: &SimulateFlags,
    format: Format,
) -> Result<Output, Error> {
    let plan = &lowered.plan;
    // Read first: the recording gives the scenarios' request rate.
    let recording = recording(&flags.baseline)?;
    let baseline = recording.as_ref().map(|r| Baseline::of(r, flags.block_ms));
    let input = monte_carlo_scenarios(
        compiled,
        lowered,
        ScenarioInput::Flag(given),
        flags,
        basis(baseline),
    )?;
    let settings = input.settings;
    let work = montecarlo::Work::of(plan, &input.scenarios, &settings);
    if let Some(note) = long_run(work, settings.jobs, recording.is_some()) {
        eprintln!("{note}");
    }
    // A shard's document is for `plan merge`, not for people.
    let bar_format = if flags.shard.is_some() {
        Format::Json
    } else {
        format
    };
    let recorded = match baseline {
        Some(baseline) => Some(recorded_model(compiled, lowered, &input, baseline)?),
        None => None,
    };
    recording_notes(recorded.iter().map(|(_, d)| d));
    let mut bar = Progress::new(bar_format, "simulating");
    let results = match &recorded {
        Some((model, _)) => {
            montecarlo::run_on_recording(lowered, &input.scenarios, settings, model, &mut |d, t| {
                bar.update(d, t)
            })
        }
        None => montecarlo::run(lowered, &input.scenarios, settings, &mut |d, t| {
            bar.update(d, t)
        }),
    };
    drop(bar);
    if let Some(failure) = results.query_failure() {
        return Err(query_failed(compiled, failure));
    }
    if flags.shard.is_some() {
        let shard = Shard::of(shard::Run {
            seed: settings.seed,
            trials_per_scenario: settings.trials,
            semantics: settings.semantics,
            slice: settings.slice,
            plan: text_of(&compiled.source),
            scenarios: input.file.as_ref().map(text_of),
            results: &results,
            recording: baseline.zip(recorded.as_ref()).map(|(baseline, (_, d))| {
                shard::RecordingPart {
                    digest: baseline.rec.digest(),
                    assumptions: crate::sim::report::RecordingAssumptions::of(d),
                    requests_per_second: baseline.requests_per_second(),
                }
            }),
        });
        return Ok(Output {
            text: serde_json::to_string_pretty(&shard).unwrap_or_default() + "\n",
            report: None,
        });
    }
    let report = crate::sim::report::build(
        &lowered.plan,
        &lowered.rules,
        (&input.scenarios, &input.file_name),
        &input.settings,
        (
            &results,
            recorded
                .as_ref()
                .map(|(_, d)| crate::sim::report::RecordingAssumptions::of(d)),
        ),
    );
    let text = report_of(&report, format);
    Ok(Output {
        text,
        report: flags
            .report
            .as_ref()
            .map(|_| Report::of(Page::Simulation, &report)),
    })
}

/// The recording `--baseline` names, read and laid on its grid (None without one).
pub(super) fn recording(files: &[std::path::PathBuf]) -> Result<Option<Recording>, Error> {
    if files.is_empty() {
        return Ok(None);
    }
    let mut traces = Vec::with_capacity(files.len());
    let mut lines = Vec::with_capacity(files.len());
    for f in files {
        let (trace, l) = replay::load(f).map_err(Error::Replay)?;
        traces.push((f.display().to_string(), trace));
        lines.push(l);
    }
    Recording::new(traces).map(Some).map_err(|e| {
        let file = files[e.file].display().to_string();
        Error::Replay(replay::ReplayError::from_trace(
            &file,
            &lines[e.file],
            e.error,
        ))
    })
}

/// What the scenarios are read for: trials built from `baseline`, or from the synthetic
/// model.
pub(super) fn basis(baseline: Option<Baseline<'_>>) -> Basis {
    baseline.map_or(Basis::Synthetic, Baseline::basis)
}

/// The trials' model on `baseline`, and what the report says of it; refuses faults it
/// cannot carry and metrics the recording cannot give, naming them.
pub(super) fn recorded_model<'r>(
    compiled: &Compiled,
    lowered: &LoweredPlan,
    input: &RunInput,
    baseline: Baseline<'r>,
) -> Result<(RecordedModel<'r>, Described), Error> {
    let scenarios = &input.scenarios;
    let (rm, described) = on_recording(lowered, scenarios, input.settings.semantics, baseline);
    if let Some(gap) = recording_gap(compiled, baseline.rec, &described) {
        return Err(Error::Usage(gap));
    }
    let refused = refused_effects(&rm, lowered, scenarios);
    if !refused.is_empty() {
        let (source, file) = match &input.file {
            Some(source) => (source.clone(), scenario::read(source)),
            None => scenario::builtin(),
        };
        let findings = locate(&source, file.spans.as_ref(), refused);
        for f in &findings {
            eprint!("{}", render_human(Some(&source), f, color()));
        }
        eprint!("{}", summary(&findings, 1));
        return Err(Error::Findings { unreadable: false });
    }
    Ok((rm, described))
}

/// The trials' model on `baseline` for `scenarios`, and what the report says of it.
pub(super) fn on_recording<'r>(
    lowered: &LoweredPlan,
    scenarios: &scenario::Scenarios,
    semantics: crate::prom::Semantics,
    baseline: Baseline<'r>,
) -> (RecordedModel<'r>, Described) {
    let model = crate::sim::synth::Model::new(&lowered.plan, scenarios, &lowered.rules, semantics);
    let rm = baseline.model(&lowered.plan, &lowered.rules, &model);
    let described = rm.describe(
        &lowered.plan,
        model.schedule.latest_end(),
        lowered.plan.monitoring.scrape_interval.millis() as i64,
    );
    (rm, described)
}

/// Why the rules of `compiled` cannot read the recording (None when they can): a metric
/// no recorded series gives, a selector matching none, or what makes the recording
/// unusable for the plan; each says what to do.
pub(super) fn recording_gap(
    compiled: &Compiled,
    rec: &Recording,
    described: &Described,
) -> Option<String> {
    let files = rec.files.join(", ");
    if let Some(missing) = described.missing.first() {
        return Some(format!(
            "{files}: no series of the recording gives {missing}, which a rule of {} reads: add its series to the recording (the query's own selectors, without `track`)",
            compiled.source.name
        ));
    }
    if !described.unmatched.is_empty() {
        return Some(format!(
            "{files}: {}, so a rule of {} would read its metric without it in every trial: add its series to the recording, or make the plan's query match the recording's labels (a trial sets `track` and `service` itself)",
            described.unmatched.join("; "),
            compiled.source.name
        ));
    }
    if !described.problems.is_empty() {
        return Some(format!("{files}: {}", described.problems.join("; ")));
    }
    None
}

/// Each fault effect of `scenarios` a trial on `rm`'s recording cannot carry, as a finding
/// at the effect in the scenario file.
pub(super) fn refused_effects(
    rm: &RecordedModel<'_>,
    lowered: &LoweredPlan,
    scenarios: &scenario::Scenarios,
) -> Vec<Diagnostic> {
    recorded::unsupported(rm, &lowered.plan, scenarios)
        .into_iter()
        .map(|r| {
            Diagnostic::error(
                "unrecorded-effect",
                format!("/scenarios/{}/fault/{}", r.scenario, r.key),
                r.message,
            )
            .with_hint(r.hint)
        })
        .collect()
}

/// Prints the recording's warnings, each once (both plans of a comparison may give one).
pub(super) fn recording_notes<'d>(described: impl IntoIterator<Item = &'d Described>) {
    let mut seen: Vec<&str> = Vec::new();
    for w in described.into_iter().flat_map(|d| &d.warnings) {
        if !seen.contains(&w.as_str()) {
            eprintln!("note: {w}");
            seen.push(w);
        }
    }
}

/// A file's name and text, as a shard keeps them.
fn text_of(source: &Source) -> shard::Text {
    shard::Text {
        name: source.name.clone(),
        text: source.text.clone(),
    }
}

/// The report of a Monte Carlo run (whole, or merged from shards), for people or as JSON,
/// and its document (for an HTML page). `recording`: what the report says of the
/// recording its trials were built from.
pub(super) fn report_text(
    lowered: &LoweredPlan,
    input: &RunInput,
    (results, recording): (
        &montecarlo::MonteCarlo<'_>,
        Option<crate::sim::report::RecordingAssumptions>,
    ),
    format: Format,
) -> (String, crate::sim::report::SimulationReport) {
    let report = crate::sim::report::build(
        &lowered.plan,
        &lowered.rules,
        (&input.scenarios, &input.file_name),
        &input.settings,
        (results, recording),
    );
    (report_of(&report, format), report)
}

/// A Monte Carlo report for people, or as JSON.
fn report_of(report: &crate::sim::report::SimulationReport, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(report).unwrap_or_default() + "\n",
        Format::Human => crate::sim::report::text(report),
    }
}

/// What an evaluation step costs a thread, about, in nanoseconds: on the synthetic model
/// a base and a part per set of request counters beyond one per track
/// ([`montecarlo::Work::counter_sets`]), and on a recording. The release build on this
/// project's machines takes 480-620 ns a step with one set per track, 660 ns on the
/// Lawsker plan (4 replicas: 8 sets) and 1.8 µs with 20 replicas (40 sets), and about 5 µs
/// on a recording; kept at the high end. The steps counted are each trial's most, so the
/// time is an upper bound, far above a run whose trials mostly roll back early.
const STEP_NS: u64 = 650;
const STEP_NS_PER_COUNTER_SET: u64 = 40;
const RECORDED_STEP_NS: u64 = 12_500;

/// A note before a run that may take long: what the work is, an upper bound of the time,
/// and what makes it shorter. None for a run of seconds.
fn long_run(work: montecarlo::Work, jobs: usize, recorded: bool) -> Option<String> {
    let step_ns = if recorded {
        RECORDED_STEP_NS
    } else {
        STEP_NS + STEP_NS_PER_COUNTER_SET * work.counter_sets.saturating_sub(2)
    };
    let seconds = work.steps().saturating_mul(step_ns) / (1_000_000_000 * jobs as u64).max(1);
    (seconds >= 30).then(|| {
        let took = if seconds < 120 {
            format!("{seconds} seconds")
        } else if seconds < 2 * 3600 {
            format!("{} minutes", seconds.div_ceil(60))
        } else {
            format!("{} hours", seconds.div_ceil(3600))
        };
        format!(
            "note: this run evaluates up to {} steps ({} trials of up to {} evaluations each); \
             it may take up to {took} on {jobs} thread{} (less when trials roll back early). \
             Fewer trials (`--trials`) or a longer \
             `evaluation_interval` make it shorter.",
            work.steps(),
            work.trials,
            work.evaluations_per_trial,
            plural(jobs)
        )
    })
}

/// A query evaluation that failed in a Monte Carlo trial, printed at the query's line: the
/// run gives no figures (see [`montecarlo::MonteCarlo::query_failure`]).
pub(super) fn query_failed(
    compiled: &Compiled,
    (scenario, trial, f): (&str, u64, &crate::sim::synth::QueryFailure),
) -> Error {
    let name = &compiled
        .plan
        .as_ref()
        .and_then(|l| l.plan.metrics.get(f.metric))
        .map_or("", |m| m.name.as_str());
    let failed = Diagnostic::error(
        "query-failed",
        format!("/metrics/{name}/query"),
        format!(
            "the query of `{name}` has no single value for the {} track at {} of trial {trial} of scenario `{scenario}`: {}",
            f.track.as_str(),
            crate::sim::trace::time::offset(f.at),
            f.message
        ),
    )
    .with_hint("the plan compares one value per track, and its rules would not be the rules Prometheus runs over these series: make the query return one series per track (aggregate it, e.g. `sum(...)`), or change the series models of the scenarios so they give it one; no figures are given, because a rule that compares nothing is not a rule that held");
    let located = compiled.locate(vec![failed]);
    for f in &located {
        eprint!("{}", render_human(Some(&compiled.source), f, color()));
    }
    eprint!("{}", summary(&located, 1));
    Error::Findings { unreadable: false }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recorded run's steps are dearer: the same work that takes a synthetic run under
    /// half a minute is noted as minutes on a recording.
    #[test]
    fn a_long_run_on_a_recording_is_estimated_at_a_recordings_speed() {
        let work = montecarlo::Work {
            trials: 100_000,
            evaluations_per_trial: 360,
            counter_sets: 2,
        };
        assert_eq!(long_run(work, 2, false), None);
        let note = long_run(work, 2, true).expect("a note");
        assert!(
            note.contains("it may take up to 4 minutes on 2 threads"),
            "{note}"
        );
    }

    /// Request counters per instance cost per set: the same work with 20 replicas (and a
    /// canary reaching 20) is noted.
    #[test]
    fn a_long_run_is_estimated_at_its_counter_sets() {
        let work = |counter_sets| montecarlo::Work {
            trials: 100_000,
            evaluations_per_trial: 360,
            counter_sets,
        };
        assert_eq!(long_run(work(6), 2, false), None);
        let note = long_run(work(40), 2, false).expect("a note");
        assert!(
            note.contains("it may take up to 39 seconds on 2 threads"),
            "{note}"
        );
    }
}
