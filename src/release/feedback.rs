//! User feedback as a signal, as the original release script's `feedback` verb had:
//! `plan release feedback --type bug|praise` counts one submission into the release's
//! `feedback.json` (replaced atomically under the release's lock, logged in the audit log),
//! and `plan release serve` exposes the counts on `GET /metrics` as the counter the plan's
//! feedback metric reads, `feedback_submissions_total{service,track,type}`. Every series
//! exists from the start at 0, so `rate()` sees the first submission.
//!
//! The messages are kept (the last [`MAX_MESSAGES`], each one line of at most
//! [`MAX_MESSAGE`] characters) for `report`, which escapes them.

use super::audit;
use super::lock;
use super::state::{Dir, replace};
use serde::{Deserialize, Serialize};

/// The feedback file's format version.
const SCHEMA_VERSION: u32 = 1;

/// Messages kept; older ones are dropped (their counts stay).
pub(crate) const MAX_MESSAGES: usize = 200;

/// Characters of one message.
pub(crate) const MAX_MESSAGE: usize = 500;

/// The file is small; anything larger is not one.
const MAX_BYTES: u64 = 4 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Bug,
    Praise,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Track {
    Canary,
    Stable,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Bug => "bug",
            Kind::Praise => "praise",
        }
    }
}

impl Track {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Track::Canary => "canary",
            Track::Stable => "stable",
        }
    }
}

/// The counts and the kept messages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Feedback {
    pub(crate) schema_version: u32,
    pub(crate) counts: Counts,
    pub(crate) messages: Vec<Message>,
}

/// Submissions by type and track.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Counts {
    pub(crate) bug: PerTrack,
    pub(crate) praise: PerTrack,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PerTrack {
    pub(crate) canary: u64,
    pub(crate) stable: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Message {
    pub(crate) at_ms: i64,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) track: String,
    pub(crate) by: String,
    pub(crate) text: String,
}

impl Feedback {
    pub(crate) fn count(&self, kind: Kind, track: Track) -> u64 {
        let t = match kind {
            Kind::Bug => &self.counts.bug,
            Kind::Praise => &self.counts.praise,
        };
        match track {
            Track::Canary => t.canary,
            Track::Stable => t.stable,
        }
    }

    fn bump(&mut self, kind: Kind, track: Track) {
        let t = match kind {
            Kind::Bug => &mut self.counts.bug,
            Kind::Praise => &mut self.counts.praise,
        };
        let n = match track {
            Track::Canary => &mut t.canary,
            Track::Stable => &mut t.stable,
        };
        *n = n.saturating_add(1);
    }
}

/// The release's feedback; none yet is all zeros.
pub(crate) fn load(dir: &Dir) -> Result<Feedback, String> {
    let path = dir.feedback_file();
    let shown = path.display();
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Feedback {
                schema_version: SCHEMA_VERSION,
                ..Feedback::default()
            });
        }
        Err(e) => return Err(format!("{shown}: {e}")),
    };
    if meta.len() > MAX_BYTES {
        return Err(format!(
            "{shown}: {} bytes is not a feedback file",
            meta.len()
        ));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{shown}: {e}"))?;
    let f: Feedback = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{shown}:{}:{}: not a feedback file ({e})",
            e.line(),
            e.column()
        )
    })?;
    if f.schema_version != SCHEMA_VERSION {
        return Err(format!(
            "{shown}: feedback version {} is not this driver's ({SCHEMA_VERSION})",
            f.schema_version
        ));
    }
    Ok(f)
}

/// One submission.
#[derive(Debug, Clone)]
pub(crate) struct Submission<'a> {
    pub(crate) kind: Kind,
    pub(crate) track: Track,
    pub(crate) message: Option<&'a str>,
    pub(crate) by: &'a str,
    pub(crate) at_ms: i64,
}

/// Counts `s` into the release's feedback in `dir`, under the release's lock; returns the
/// new counts.
pub(crate) fn record(dir: &Dir, s: &Submission<'_>) -> Result<Feedback, String> {
    dir.create()?;
    let _lock = lock::take(&dir.lock_file(), super::LOCK_WAIT)?;
    let mut f = load(dir)?;
    f.bump(s.kind, s.track);
    let text: Option<String> = s
        .message
        .map(|m| m.chars().take(MAX_MESSAGE).collect::<String>())
        .filter(|m| !m.trim().is_empty());
    if let Some(text) = &text {
        f.messages.push(Message {
            at_ms: s.at_ms,
            kind: s.kind.name().into(),
            track: s.track.name().into(),
            by: s.by.into(),
            text: text.clone(),
        });
        let excess = f.messages.len().saturating_sub(MAX_MESSAGES);
        f.messages.drain(..excess);
    }
    let mut json = serde_json::to_string_pretty(&f).map_err(|e| e.to_string())?;
    json.push('\n');
    let path = dir.feedback_file();
    replace(&path, &json).map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
    let detail = format!(
        "{} on {}{}",
        s.kind.name(),
        s.track.name(),
        text.map_or_else(String::new, |t| format!(": {t}"))
    );
    let entry = audit::Entry {
        at_ms: s.at_ms,
        verb: "feedback",
        by: s.by,
        outcome: "done",
        detail: &detail,
    };
    audit::append(&dir.audit_file(), &entry)?;
    Ok(f)
}

/// The counts in Prometheus' text format, one series per type and track, for `service`.
pub(crate) fn metrics(service: &str, f: &Feedback) -> String {
    let mut s = String::from(
        "# HELP feedback_submissions_total User feedback submitted with `plan release feedback`.\n# TYPE feedback_submissions_total counter\n",
    );
    let service = label_value(service);
    for kind in [Kind::Bug, Kind::Praise] {
        for track in [Track::Canary, Track::Stable] {
            s += &format!(
                "feedback_submissions_total{{service=\"{service}\",track=\"{}\",type=\"{}\"}} {}\n",
                track.name(),
                kind.name(),
                f.count(kind, track)
            );
        }
    }
    s
}

/// A label value in Prometheus' text format: `\`, `"` and line feeds escaped.
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_exists_from_the_start() {
        let f = Feedback::default();
        let text = metrics("backend", &f);
        assert!(text.contains(
            "feedback_submissions_total{service=\"backend\",track=\"canary\",type=\"bug\"} 0\n"
        ));
        assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 4);
        assert!(metrics("a\"b\\c\nd", &f).contains("service=\"a\\\"b\\\\c\\nd\""));
    }

    #[test]
    fn submissions_are_counted_and_messages_kept_bounded() {
        let root = std::env::temp_dir().join(format!("plan-feedback-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = Dir::for_plan(&root, "p");
        let long = "m".repeat(MAX_MESSAGE + 50);
        for i in 0..(MAX_MESSAGES + 5) {
            let s = Submission {
                kind: if i % 2 == 0 { Kind::Bug } else { Kind::Praise },
                track: Track::Canary,
                message: Some(&long),
                by: "tester",
                at_ms: i as i64,
            };
            record(&dir, &s).unwrap();
        }
        let f = load(&dir).unwrap();
        assert_eq!(f.count(Kind::Bug, Track::Canary), 103);
        assert_eq!(f.count(Kind::Praise, Track::Canary), 102);
        assert_eq!(f.count(Kind::Bug, Track::Stable), 0);
        assert_eq!(f.messages.len(), MAX_MESSAGES);
        assert_eq!(f.messages[0].at_ms, 5, "the oldest are dropped");
        assert_eq!(f.messages[0].text.chars().count(), MAX_MESSAGE);
        let audit = std::fs::read_to_string(dir.audit_file()).unwrap();
        assert_eq!(audit.lines().count(), MAX_MESSAGES + 5);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
