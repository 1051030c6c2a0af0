//! The command line: the one place that prints findings, results and errors, and picks the
//! exit code: 0 success; 1 invalid input (a plan, scenario file or trace with an error) or a
//! failed check (`--check` drift, `--deny-warnings`); 2 a usage error or a file that cannot
//! be read or written.
//!
//! Arguments as typed ([`args`]) are resolved once into settings ([`settings`]); each
//! command ([`validate`], [`render`], [`simulate`], [`merge`], [`tune`]) prints what it has to say and returns
//! `Err(`[`error::Error`]`)` when it did not succeed; [`main`] renders the error and maps it to the
//! exit code.

mod args;
mod error;
mod findings;
mod merge;
mod progress;
mod release;
mod render;
mod report_file;
mod settings;
mod simulate;
mod terminal;
mod tune;
mod validate;

use crate::schema::PLAN_SCHEMA;
use crate::sim::scenario::SCENARIOS_SCHEMA;
use args::{Cli, Command};
use clap::Parser;
use error::{EXIT_OK, EXIT_USAGE};

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
            baseline,
            block,
        } => validate::validate(
            &files,
            (&scenarios, &baseline, block),
            format,
            deny_warnings,
        ),
        Command::Render {
            files,
            out,
            check,
            delete_foreign,
        } => render::render(&files, &out, check, delete_foreign),
        Command::Simulate {
            file,
            against,
            trace,
            start,
            end,
            evaluation_offset,
            scenarios,
            baseline,
            block,
            shard,
            run,
        } => {
            let format = run.format;
            let flags = settings::SimulateFlags {
                start_ms: start,
                end_ms: end,
                evaluation_offset_ms: evaluation_offset,
                shard,
                baseline,
                block_ms: block,
                ..settings::SimulateFlags::of(&run)
            };
            match against {
                Some(_) if flags.report.is_some() => Err(error::Error::Usage(
                    "--report draws one plan's run; a comparison of two plans has no HTML report (run each plan with --report)".into(),
                )),
                Some(b) => simulate::compare(&file, &b, scenarios.as_deref(), &flags, format),
                None => {
                    simulate::simulate(&file, trace.as_deref(), scenarios.as_deref(), flags, format)
                }
            }
        }
        Command::Merge {
            shards,
            format,
            report,
        } => merge::merge(&shards, format, report.as_deref()),
        Command::Tune {
            file,
            scenarios,
            max_false_rollback,
            vary,
            keep,
            baseline,
            block,
            run,
            no_check,
            refine,
            write,
        } => {
            let format = run.format;
            let flags = settings::SimulateFlags {
                baseline,
                block_ms: block,
                ..settings::SimulateFlags::of(&run)
            };
            let ask = tune::Asked {
                budget: max_false_rollback,
                vary,
                keep,
                check: !no_check,
                refine,
                write,
            };
            tune::tune(&file, scenarios.as_deref(), flags, &ask, format)
        }
        Command::Release { verb } => release::release(verb),
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
