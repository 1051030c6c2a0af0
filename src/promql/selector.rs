//! Series selectors: a metric name and label matchers, printed as PromQL and matched
//! against label sets by the simulator with Prometheus' rules (regexes fully anchored).

use super::track::Track;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Eq,
    Re,
    NotRe,
}

impl MatchOp {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::Re => "=~",
            MatchOp::NotRe => "!~",
        }
    }
}

/// One label matcher. `value` is either literal text or, for the `track` label, the
/// placeholder `$track` filled in when printed.
#[derive(Debug, Clone, PartialEq)]
pub struct Matcher {
    pub label: String,
    pub op: MatchOp,
    pub value: String,
}

/// `metric{label="value",...}`; every built-in selector also matches `service` and
/// `track`.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    pub metric: String,
    pub matchers: Vec<Matcher>,
}

impl Selector {
    /// A selector for `metric` of one service, with `track` left open.
    pub(crate) fn service(metric: &str, service: &str) -> Selector {
        Selector {
            metric: metric.to_string(),
            matchers: vec![
                Matcher {
                    label: "service".into(),
                    op: MatchOp::Eq,
                    value: service.into(),
                },
                Matcher {
                    label: "track".into(),
                    op: MatchOp::Eq,
                    value: "$track".into(),
                },
            ],
        }
    }

    pub(crate) fn with(mut self, label: &str, op: MatchOp, value: &str) -> Selector {
        self.matchers.push(Matcher {
            label: label.into(),
            op,
            value: value.into(),
        });
        self
    }

    /// The matcher value for `track`, with the placeholder filled.
    pub(crate) fn value_for<'a>(m: &'a Matcher, track: &'a str) -> &'a str {
        if m.value == "$track" { track } else { &m.value }
    }

    /// Prints the selector; label values are escaped as PromQL double-quoted strings.
    pub(crate) fn promql(&self, track: &str) -> String {
        let inner: Vec<String> = self
            .matchers
            .iter()
            .map(|m| {
                format!(
                    "{}{}{}",
                    m.label,
                    m.op.as_str(),
                    quote(Selector::value_for(m, track))
                )
            })
            .collect();
        format!("{}{{{}}}", self.metric, inner.join(","))
    }

    /// Whether the label set (`__name__` given separately) matches, as Prometheus decides:
    /// a missing label is the empty string, regexes are anchored at both ends.
    pub(crate) fn matches(&self, name: &str, labels: &[(String, String)], track: Track) -> bool {
        if name != self.metric {
            return false;
        }
        self.matchers.iter().all(|m| {
            let have = labels
                .iter()
                .find(|(k, _)| *k == m.label)
                .map_or("", |(_, v)| v.as_str());
            let want = Selector::value_for(m, track.as_str());
            match m.op {
                MatchOp::Eq => have == want,
                MatchOp::Re => regex_match(want, have) == Some(true),
                MatchOp::NotRe => regex_match(want, have) == Some(false),
            }
        })
    }
}

/// Whether `have` matches the fully anchored regex `re` (an invalid regex matches nothing).
/// Regexes are compiled once per thread and used in place: matching runs per series and
/// per evaluation, and compiling (or cloning, which drops the match caches) costs thousands
/// of matches.
fn regex_match(re: &str, have: &str) -> Option<bool> {
    thread_local! {
        static CACHE: std::cell::RefCell<std::collections::HashMap<String, Option<regex::Regex>>> =
            std::cell::RefCell::default();
    }
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if !c.contains_key(re) {
            c.insert(
                re.to_string(),
                regex::Regex::new(&format!("^(?:{re})$")).ok(),
            );
        }
        c[re].as_ref().map(|r| r.is_match(have))
    })
}

/// A PromQL double-quoted string literal (Go string escaping).
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
