//! `plan release`: the verbs on the command line. Steps print what they run on stdout;
//! a refusal or a failure is the error, with exit code 1.

use super::args::{FeedbackKind, FeedbackTrack, ReleaseVerb, ReportFormat, StepArgs};
use super::error::Error;
use crate::release::feedback::{self, Kind, Submission, Track};
use crate::release::manifest::Rendered;
use crate::release::serve::{self, Options};
use crate::release::time::now_ms;
use crate::release::{self, Ask, Verb, load_state, lock, report, state_dir};

pub(super) fn release(verb: ReleaseVerb) -> Result<(), Error> {
    let (verb, args) = match verb {
        ReleaseVerb::Start(a) => (Verb::Start, a),
        ReleaseVerb::Next(a) => (Verb::Next, a),
        ReleaseVerb::Complete(a) => (Verb::Complete, a),
        ReleaseVerb::Rollback(a) => (Verb::Rollback, a),
        ReleaseVerb::Status { dir } => {
            let rendered = Rendered::read(&dir).map_err(Error::Usage)?;
            let state =
                load_state(&rendered, &state_dir(&rendered), now_ms()).map_err(Error::Release)?;
            let busy = lock::holder(&state_dir(&rendered).lock_file());
            print!(
                "{}",
                report::status(&rendered, state.as_ref(), busy.as_deref(), now_ms())
            );
            return Ok(());
        }
        ReleaseVerb::Serve { dir, listen } => {
            return serve::serve(&Options { dir, listen }).map_err(Error::Release);
        }
        ReleaseVerb::Feedback {
            dir,
            kind,
            track,
            message,
            by,
        } => {
            let rendered = Rendered::read(&dir).map_err(Error::Usage)?;
            let s = Submission {
                kind: match kind {
                    FeedbackKind::Bug => Kind::Bug,
                    FeedbackKind::Praise => Kind::Praise,
                },
                track: match track {
                    FeedbackTrack::Canary => Track::Canary,
                    FeedbackTrack::Stable => Track::Stable,
                },
                message: message.as_deref(),
                by: &who(by),
                at_ms: now_ms(),
            };
            let f = feedback::record(&state_dir(&rendered), &s).map_err(Error::Release)?;
            println!(
                "recorded: {} on {} ({} so far)",
                s.kind.name(),
                s.track.name(),
                f.count(s.kind, s.track)
            );
            return Ok(());
        }
        ReleaseVerb::Report { dir, format } => {
            let rendered = Rendered::read(&dir).map_err(Error::Usage)?;
            let Some(state) =
                load_state(&rendered, &state_dir(&rendered), now_ms()).map_err(Error::Release)?
            else {
                return Err(Error::Release(
                    "the release has not started: there is nothing to report".into(),
                ));
            };
            let feedback = feedback::load(&state_dir(&rendered)).map_err(Error::Release)?;
            let now = now_ms();
            print!(
                "{}",
                match format {
                    ReportFormat::Markdown => report::markdown(&rendered, &state, &feedback, now),
                    ReportFormat::Json => report::json(&rendered, &state, &feedback, now),
                }
            );
            return Ok(());
        }
    };
    step(verb, args)
}

fn step(verb: Verb, a: StepArgs) -> Result<(), Error> {
    let ask = Ask {
        by: who(a.by),
        reason: a.reason,
        force: a.force,
        dry_run: a.dry_run,
        detail: Vec::new(),
    };
    // A folder that is not a rendered plan is a usage error (exit 2), as elsewhere.
    Rendered::read(&a.dir).map_err(Error::Usage)?;
    let mut out = std::io::stdout().lock();
    release::act(&a.dir, verb, &ask, now_ms(), &mut out)
        .map(|_| ())
        .map_err(|r| Error::Release(r.why))
}

/// Who acts: `--by`, else the login name.
fn who(by: Option<String>) -> String {
    by.or_else(|| {
        ["USER", "LOGNAME"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|u| !u.trim().is_empty()))
    })
    .unwrap_or_else(|| "unknown".into())
}
