//! The command line: argument parsing, and the one place that prints findings and errors and
//! picks the exit code (0 success, 1 invalid input or a failed check, 2 usage or I/O).

use crate::diagnostic::{Located, Severity, render_human};
use crate::pipeline::{self, Compiled};
use crate::schema::PLAN_SCHEMA;
use crate::source::LoadError;
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
    /// Print the JSON Schema of release plans.
    Schema,
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
        Command::Schema => {
            print!("{PLAN_SCHEMA}");
            EXIT_OK
        }
    }
}

fn color() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

/// A file that could not be read turned into a finding, so JSON output stays one array.
fn load_finding(e: &LoadError) -> Located {
    let (code, reason) = match e {
        LoadError::Io { reason, .. } => ("io", reason),
        LoadError::Content { reason, .. } => ("unreadable", reason),
    };
    Located {
        file: e.name().to_string(),
        line: 1,
        column: 1,
        pointer: String::new(),
        severity: Severity::Error,
        code,
        message: reason.clone(),
        hint: None,
    }
}

fn validate(files: &[PathBuf], format: Format, deny_warnings: bool) -> i32 {
    let mut all: Vec<Located> = Vec::new();
    let (mut io_failed, mut invalid) = (false, false);
    let mut human = String::new();
    let color = color();
    for path in files {
        match pipeline::compile_file(path) {
            Ok(compiled) => {
                let Compiled {
                    source,
                    findings,
                    plan,
                } = compiled;
                invalid |= plan.is_none() || (deny_warnings && !findings.is_empty());
                for f in &findings {
                    human.push_str(&render_human(Some(&source), f, color));
                }
                all.extend(findings);
            }
            Err(e) => {
                match e {
                    LoadError::Io { .. } => io_failed = true,
                    LoadError::Content { .. } => invalid = true,
                }
                let f = load_finding(&e);
                human.push_str(&render_human(None, &f, color));
                all.push(f);
            }
        }
    }
    match format {
        Format::Json => {
            let mut out = serde_json::to_string_pretty(&all).unwrap_or_else(|_| "[]".into());
            out.push('\n');
            let _ = std::io::stdout().write_all(out.as_bytes());
        }
        Format::Human => {
            let errors = all.iter().filter(|f| f.severity == Severity::Error).count();
            let warnings = all.len() - errors;
            if !all.is_empty() {
                human.push_str(&format!(
                    "{} error{}, {} warning{} in {} file{}\n",
                    errors,
                    if errors == 1 { "" } else { "s" },
                    warnings,
                    if warnings == 1 { "" } else { "s" },
                    files.len(),
                    if files.len() == 1 { "" } else { "s" },
                ));
            }
            let _ = std::io::stderr().write_all(human.as_bytes());
        }
    }
    if io_failed {
        EXIT_USAGE
    } else if invalid {
        EXIT_INVALID
    } else {
        EXIT_OK
    }
}
