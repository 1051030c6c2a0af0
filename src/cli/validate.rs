//! `plan validate`: every plan (and scenario file) checked, every finding printed, for
//! people on stderr or as one JSON array on stdout.

use super::args::Format;
use super::error::Error;
use super::findings::Batch;
use std::io::Write;
use std::path::PathBuf;

pub(super) fn validate(
    files: &[PathBuf],
    scenarios: &[PathBuf],
    format: Format,
    deny_warnings: bool,
) -> Result<(), Error> {
    let mut b = Batch::plans(files, deny_warnings);
    for path in scenarios {
        b.scenario_file(path);
    }
    b.named_scenario_files(scenarios);
    match format {
        Format::Json => {
            let mut out = serde_json::to_string_pretty(&b.findings).unwrap_or_else(|_| "[]".into());
            out.push('\n');
            let _ = std::io::stdout().write_all(out.as_bytes());
        }
        Format::Human => {
            let _ = std::io::stderr().write_all(b.text().as_bytes());
        }
    }
    b.outcome()
}
