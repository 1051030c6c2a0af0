//! The command line: argument parsing, and the one place that prints findings and errors and
//! picks the exit code (0 success, 1 invalid input or a failed check, 2 usage or I/O).

use crate::diagnostic::{Located, Severity, render_human};
use crate::pipeline::{self, Compiled};
use crate::render::write::{self, PlanOutput};
use crate::schema::PLAN_SCHEMA;
use crate::sim::montecarlo::{self, Settings};
use crate::sim::prom::Semantics;
use crate::sim::scenario::{self, DEFAULT_SCENARIOS, SCENARIOS_SCHEMA};
use crate::source::LoadError;
use crate::source::Source;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

pub const EXIT_OK: i32 = 0;
pub const EXIT_INVALID: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

#[derive(Parser)]
#[command(
    name = "plan",
    version,
    about = "Compile and dry-run staged canary release plans"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check release plans against the schema and the semantic rules (for pre-commit hooks).
    Validate {
        /// Plan files (YAML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Output format for findings.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Treat warnings as errors (exit 1 when any file has a warning).
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Compile plans into NGINX, compose, Prometheus and Alertmanager files, a manifest and a
    /// runbook, under OUT/<plan name>/.
    Render {
        /// Plan files (YAML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The output folder.
        #[arg(long, default_value = "generated")]
        out: PathBuf,
        /// Write nothing; exit 1 listing the files that differ from what is on disk.
        #[arg(long)]
        check: bool,
    },
    /// Dry-run the plan's rollback rules: Monte Carlo over built-in or given scenarios, or a
    /// replay of one recorded trace.
    Simulate {
        /// The plan file (YAML).
        file: PathBuf,
        /// Replay this recorded trace (CSV or Prometheus range-query JSON) instead.
        #[arg(long, conflicts_with = "scenarios")]
        trace: Option<PathBuf>,
        /// Scenario file (YAML, see schemas/scenarios.schema.json); default: the built-in
        /// scenarios (simulations/default.yaml).
        #[arg(long)]
        scenarios: Option<PathBuf>,
        /// Master seed: the same seed gives the same numbers at any --jobs.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Trials per scenario (overrides the scenario file).
        #[arg(long)]
        trials: Option<u64>,
        /// Worker threads (default: all cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Which Prometheus evaluation rules to follow.
        #[arg(long, value_enum, default_value_t = SemanticsArg::Prometheus3)]
        semantics: SemanticsArg,
    },
    /// Print the JSON Schema of release plans (or of scenario files).
    Schema {
        /// Print the scenario files' schema instead.
        #[arg(long)]
        scenarios: bool,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SemanticsArg {
    /// Prometheus 2.x (as 2.42): closed windows.
    Prometheus2,
    /// Prometheus 3.x: left-open windows (the default).
    Prometheus3,
}

impl From<SemanticsArg> for Semantics {
    fn from(s: SemanticsArg) -> Semantics {
        match s {
            SemanticsArg::Prometheus2 => Semantics::Prometheus2,
            SemanticsArg::Prometheus3 => Semantics::Prometheus3,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Human,
    Json,
}

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
        }
    };
    match cli.command {
        Command::Validate {
            files,
            format,
            deny_warnings,
        } => validate(&files, format, deny_warnings),
        Command::Render { files, out, check } => render(&files, &out, check),
        Command::Simulate {
            file,
            trace,
            scenarios,
            seed,
            trials,
            jobs,
            format,
            semantics,
        } => {
            let jobs =
                jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let settings = Settings {
                seed,
                jobs,
                trials,
                semantics: semantics.into(),
            };
            simulate(
                &file,
                trace.as_deref(),
                scenarios.as_deref(),
                settings,
                format,
            )
        }
        Command::Schema { scenarios } => {
            print!(
                "{}",
                if scenarios {
                    SCENARIOS_SCHEMA
                } else {
                    PLAN_SCHEMA
                }
            );
            EXIT_OK
        }
    }
}

fn color() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

/// A file that could not be read turned into a finding, so JSON output stays one array.
fn load_finding(e: &LoadError) -> Located {
    Located {
        file: e.name().to_string(),
        line: e.line,
        column: e.column,
        pointer: String::new(),
        severity: Severity::Error,
        code: e.code,
        message: e.reason.clone(),
        hint: Some(e.hint.to_string()),
    }
}

/// Every file compiled, with its findings rendered for people and collected as data.
struct Batch {
    compiled: Vec<Compiled>,
    findings: Vec<Located>,
    human: String,
    io_failed: bool,
    invalid: bool,
}

fn compile_all(files: &[PathBuf], deny_warnings: bool) -> Batch {
    let color = color();
    let mut b = Batch {
        compiled: Vec::new(),
        findings: Vec::new(),
        human: String::new(),
        io_failed: false,
        invalid: false,
    };
    for path in files {
        match pipeline::compile_file(path) {
            Ok(c) => {
                b.invalid |= c.has_errors() || (deny_warnings && !c.findings.is_empty());
                for f in &c.findings {
                    b.human.push_str(&render_human(Some(&c.source), f, color));
                }
                b.findings.extend(c.findings.iter().cloned());
                b.compiled.push(c);
            }
            Err(e) => {
                if e.is_io() {
                    b.io_failed = true;
                } else {
                    b.invalid = true;
                }
                let f = load_finding(&e);
                b.human.push_str(&render_human(None, &f, color));
                b.findings.push(f);
            }
        }
    }
    let errors = b
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = b.findings.len() - errors;
    if !b.findings.is_empty() {
        b.human.push_str(&format!(
            "{} error{}, {} warning{} in {} file{}\n",
            errors,
            plural(errors),
            warnings,
            plural(warnings),
            files.len(),
            plural(files.len()),
        ));
    }
    b
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

impl Batch {
    fn exit_code(&self) -> i32 {
        if self.io_failed {
            EXIT_USAGE
        } else if self.invalid {
            EXIT_INVALID
        } else {
            EXIT_OK
        }
    }
}

fn validate(files: &[PathBuf], format: Format, deny_warnings: bool) -> i32 {
    let b = compile_all(files, deny_warnings);
    match format {
        Format::Json => {
            let mut out = serde_json::to_string_pretty(&b.findings).unwrap_or_else(|_| "[]".into());
            out.push('\n');
            let _ = std::io::stdout().write_all(out.as_bytes());
        }
        Format::Human => {
            let _ = std::io::stderr().write_all(b.human.as_bytes());
        }
    }
    b.exit_code()
}

fn render(files: &[PathBuf], out: &std::path::Path, check: bool) -> i32 {
    let b = compile_all(files, false);
    let _ = std::io::stderr().write_all(b.human.as_bytes());
    if b.exit_code() != EXIT_OK {
        eprintln!("nothing written: fix the errors above first");
        return b.exit_code();
    }
    let outputs: Vec<PlanOutput> = b
        .compiled
        .iter()
        .filter_map(|c| c.plan.as_ref())
        .map(|p| PlanOutput {
            name: p.name.clone(),
            artifacts: crate::render::render(p),
        })
        .collect();
    let mut names: Vec<&str> = outputs.iter().map(|o| o.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        eprintln!(
            "error: two plans are named `{}`; their files would overwrite each other",
            w[0]
        );
        return EXIT_INVALID;
    }
    if check {
        match write::check(out, &outputs) {
            Ok(diffs) if diffs.is_empty() => EXIT_OK,
            Ok(diffs) => {
                for (path, why) in &diffs {
                    eprintln!("{}: {why}", path.display());
                }
                eprintln!(
                    "{} file{} out of date; run `plan render` to update",
                    diffs.len(),
                    plural(diffs.len())
                );
                EXIT_INVALID
            }
            Err(e) => {
                eprintln!("error: {e}");
                EXIT_USAGE
            }
        }
    } else {
        match write::write(out, &outputs) {
            Ok(changed) => {
                let total: usize = outputs.iter().map(|o| o.artifacts.len()).sum();
                eprintln!(
                    "rendered {total} file{} under {} ({} changed)",
                    plural(total),
                    out.display(),
                    changed.len()
                );
                EXIT_OK
            }
            Err(e) => {
                eprintln!("error: {e}; nothing was changed");
                EXIT_USAGE
            }
        }
    }
}

fn simulate(
    file: &std::path::Path,
    trace: Option<&std::path::Path>,
    scenarios: Option<&std::path::Path>,
    settings: Settings,
    format: Format,
) -> i32 {
    let b = compile_all(&[file.to_path_buf()], false);
    let _ = std::io::stderr().write_all(b.human.as_bytes());
    if b.exit_code() != EXIT_OK {
        return b.exit_code();
    }
    let Some(plan) = b.compiled.first().and_then(|c| c.plan.as_ref()) else {
        return EXIT_INVALID;
    };
    if let Some(trace) = trace {
        return match crate::sim::replay::replay(
            plan,
            trace,
            settings.semantics,
            format == Format::Json,
        ) {
            Ok(text) => {
                let _ = std::io::stdout().write_all(text.as_bytes());
                EXIT_OK
            }
            Err(e) => {
                eprintln!("{e}");
                e.exit_code()
            }
        };
    }
    let source = match scenarios {
        Some(path) => match Source::load(path) {
            Ok(s) => s,
            Err(e) => {
                eprint!("{}", render_human(None, &load_finding(&e), color()));
                return if e.is_io() { EXIT_USAGE } else { EXIT_INVALID };
            }
        },
        None => Source::new(
            "<built-in scenarios>".into(),
            PathBuf::from("simulations/default.yaml"),
            DEFAULT_SCENARIOS.into(),
        ),
    };
    let scenarios = match scenario::load(&source, plan) {
        Ok(s) => s,
        Err((spans, diags)) => {
            for f in crate::diagnostic::locate(&source, spans.as_ref(), diags) {
                eprint!("{}", render_human(Some(&source), &f, color()));
            }
            return EXIT_INVALID;
        }
    };
    // The plan's own rate was checked when it compiled; warn again at the simulated rate.
    if plan.traffic.requests_per_second != Some(scenarios.traffic.requests_per_second) {
        for d in crate::check::thin_traffic(plan, scenarios.traffic.requests_per_second) {
            eprintln!(
                "{}: warning[{}]: at the simulated {} req/s, {}\n  = hint: {}",
                plan.source_name,
                d.code,
                crate::model::trim(scenarios.traffic.requests_per_second),
                d.message,
                d.hint.unwrap_or_default()
            );
        }
    }
    let started = std::time::Instant::now();
    let show_progress = std::io::stderr().is_terminal();
    let mut progress = |done: u64, total: u64| {
        if show_progress && started.elapsed() > std::time::Duration::from_secs(1) {
            eprint!("\rsimulating: {done}/{total} trials");
            if done == total {
                eprint!("\r\x1b[K");
            }
        }
    };
    let results = montecarlo::run(plan, &scenarios, settings, &mut progress);
    let rules = crate::lower::alert_rules(plan);
    let report = crate::sim::report::build(plan, &rules, &scenarios, &settings, &results);
    let text = match format {
        Format::Json => serde_json::to_string_pretty(&report).unwrap_or_default() + "\n",
        Format::Human => crate::sim::report::human(&report, plan, &rules),
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
    EXIT_OK
}
