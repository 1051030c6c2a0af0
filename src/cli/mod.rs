//! The command line: the one place that prints findings, results and errors, and picks the
//! exit code: 0 success; 1 invalid input (a plan, scenario file or trace with an error) or a
//! failed check (`--check` drift, `--deny-warnings`); 2 a usage error or a file that cannot
//! be read or written.
//!
//! Arguments as typed ([`args`]) are resolved once into settings ([`settings`]); each
//! command ([`validate`], [`render`], [`simulate`]) prints what it has to say and returns
//! `Err(`[`Error`]`)` when it did not succeed; [`main`] renders the error and maps it to the
//! exit code.

mod args;
mod findings;
mod render;
mod settings;
mod simulate;
mod validate;

use crate::render::write::{Drift, WriteError};
use crate::schema::PLAN_SCHEMA;
use crate::sim::replay::ReplayError;
use crate::sim::scenario::SCENARIOS_SCHEMA;
use args::{Cli, Command};
use clap::Parser;
use std::io::IsTerminal;

const EXIT_OK: i32 = 0;
const EXIT_INVALID: i32 = 1;
const EXIT_USAGE: i32 = 2;

/// Why a command did not succeed: what its message needs, and its exit code.
#[derive(Debug)]
enum Error {
    /// Findings about the input were printed as they were found; `unreadable` when a file
    /// could not be read at all.
    Findings { unreadable: bool },
    /// Two plans of one `render` share a name: their files would overwrite each other.
    SameName(String),
    /// `render --check`: what differs from the disk.
    Drift(Vec<Drift>),
    /// `render` could not write (nothing was changed, unless it says otherwise).
    Write(WriteError),
    /// A replay's trace could not be read, or is not a trace for this plan.
    Replay(ReplayError),
}

impl Error {
    fn exit_code(&self) -> i32 {
        match self {
            Error::Findings { unreadable: true } => EXIT_USAGE,
            Error::Findings { unreadable: false } | Error::SameName(_) | Error::Drift(_) => {
                EXIT_INVALID
            }
            Error::Write(_) => EXIT_USAGE,
            Error::Replay(ReplayError::Io { .. }) => EXIT_USAGE,
            Error::Replay(ReplayError::Trace { .. }) => EXIT_INVALID,
        }
    }

    /// The message for people (empty for findings, printed already).
    fn text(&self) -> String {
        match self {
            Error::Findings { .. } => String::new(),
            Error::SameName(name) => format!(
                "error: two plans are named `{name}`; their files would overwrite each other\n"
            ),
            Error::Drift(drift) => render::drift_text(drift),
            Error::Write(e) => format!("error: {e}\n"),
            Error::Replay(e) => findings::replay_error_text(e, color()),
        }
    }
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
    let done = match cli.command {
        Command::Validate {
            files,
            format,
            deny_warnings,
            scenarios,
        } => validate::validate(&files, &scenarios, format, deny_warnings),
        Command::Render {
            files,
            out,
            check,
            delete_foreign,
        } => render::render(&files, &out, check, delete_foreign),
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
            let flags = settings::SimulateFlags {
                seed,
                trials,
                jobs: jobs.map(usize::from),
                semantics: semantics.into(),
            };
            simulate::simulate(&file, trace.as_deref(), scenarios.as_deref(), flags, format)
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
            Ok(())
        }
    };
    match done {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprint!("{}", e.text());
            e.exit_code()
        }
    }
}

/// Whether stderr is a terminal that wants colour.
fn color() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
