//! Runs a step's commands, as the manifest lists them: each program with its arguments,
//! no shell between, from the folder given to `plan render --out`, one after the other,
//! stopping at the first that fails. A dry run prints them and runs nothing.

use super::manifest::Command;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// How long one command may run (`docker compose up` pulls images) before it is stopped.
const TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// How much of a failed command's output the error keeps.
const TAIL: usize = 2000;

/// Runs `commands` in `dir`, telling `out` what it does.
pub(crate) fn run(
    commands: &[Command],
    dir: &Path,
    dry_run: bool,
    out: &mut dyn Write,
) -> Result<(), String> {
    let n = commands.len();
    for (i, c) in commands.iter().enumerate() {
        let _ = writeln!(out, "  [{}/{n}] {}: {}", i + 1, c.description, c.run);
        if dry_run {
            continue;
        }
        let Some((program, args)) = c.argv.split_first() else {
            return Err(format!(
                "the manifest's command `{}` has no argv; render the plan again",
                c.run
            ));
        };
        let mut child = std::process::Command::new(program)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("`{}` did not start: {e}", c.run))?;
        // Drain both pipes while waiting, so a chatty command cannot block on a full pipe.
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let reader = std::thread::spawn(move || {
            let mut o = Vec::new();
            if let Some(s) = stdout.as_mut() {
                let _ = s.read_to_end(&mut o);
            }
            o
        });
        let err_reader = std::thread::spawn(move || {
            let mut e = Vec::new();
            if let Some(s) = stderr.as_mut() {
                let _ = s.read_to_end(&mut e);
            }
            e
        });
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if started.elapsed() > TIMEOUT => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(format!(
                        "`{}` ran for more than {} minutes and was stopped",
                        c.run,
                        TIMEOUT.as_secs() / 60
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => break Err(format!("`{}`: {e}", c.run)),
            }
        };
        let o = reader.join().unwrap_or_default();
        let e = err_reader.join().unwrap_or_default();
        let status = status?;
        if !status.success() {
            let text = String::from_utf8_lossy(if e.is_empty() { &o } else { &e });
            let text = text.trim();
            let tail: String = text
                .char_indices()
                .rev()
                .nth(TAIL)
                .map_or(text, |(at, _)| &text[at..])
                .to_string();
            return Err(format!(
                "`{}` failed ({status}){}",
                c.run,
                if tail.is_empty() {
                    String::new()
                } else {
                    format!(":\n{tail}")
                }
            ));
        }
    }
    Ok(())
}
