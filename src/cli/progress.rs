//! A progress bar for the long runs (`simulate`, `tune`): trials done and an estimate of the
//! time left, on stderr, only when it is a terminal and the report is for people; it shows
//! after the first second, so short runs print nothing, and clears itself when done.

use super::args::Format;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

pub(super) struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    label: &'static str,
}

impl Progress {
    /// A bar labelled `label` (`simulating`), or none when it would not be seen.
    pub(super) fn new(format: Format, label: &'static str) -> Progress {
        let shown = format == Format::Human && std::io::stderr().is_terminal();
        Progress {
            bar: shown.then(|| ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())),
            started: Instant::now(),
            label,
        }
    }

    /// `done` of `total` trials.
    pub(super) fn update(&mut self, done: u64, total: u64) {
        let Some(bar) = &self.bar else { return };
        if done >= total {
            bar.finish_and_clear();
            return;
        }
        if bar.is_hidden() && self.started.elapsed() > Duration::from_secs(1) {
            bar.set_style(
                ProgressStyle::with_template(&format!(
                    "{} {{bar:24}} {{pos}}/{{len}} trials, ~{{eta}} left",
                    self.label
                ))
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        bar.set_length(total);
        bar.set_position(done);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
