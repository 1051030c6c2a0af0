//! Alertmanager's webhook payload (version 4) and which of its alerts roll the release
//! back: pure, so every rule is tested without a network.
//!
//! An alert counts only when it is `firing`, carries `action="rollback"`, and names this
//! plan, this release's canary version (`release`) and the phase the release is in
//! (`phase`). Anything else (a resolved alert, another plan's, a stale phase's, a forged
//! label) is ignored with the reason, for the audit log. Nothing in a payload is ever run
//! or used as a path: the only thing an alert can cause is the manifest's rollback step.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The payload version this receiver reads.
const VERSION: &str = "4";

/// How much of a label value the log and the history keep.
const SHOWN: usize = 120;

/// The part of the payload the decision reads; other fields are ignored.
#[derive(Debug, Deserialize)]
pub(crate) struct Payload {
    version: String,
    #[serde(default)]
    alerts: Vec<Alert>,
}

#[derive(Debug, Deserialize)]
struct Alert {
    status: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default, rename = "startsAt")]
    starts_at: String,
}

/// Parses a webhook body; the error says what is wrong (for a 400 and the audit log).
pub(crate) fn parse(body: &[u8]) -> Result<Payload, String> {
    let p: Payload = serde_json::from_slice(body).map_err(|e| {
        format!(
            "not an Alertmanager webhook payload (line {}, column {}: {})",
            e.line(),
            e.column(),
            clean(&e.to_string())
        )
    })?;
    if p.version != VERSION {
        return Err(format!(
            "webhook payload version {} is not the one this receiver reads ({VERSION})",
            clean(&p.version)
        ));
    }
    Ok(p)
}

/// What the release is, for the decision.
#[derive(Debug, Clone)]
pub(crate) struct Expect {
    pub(crate) plan: String,
    /// The canary version (`release.to`).
    pub(crate) release: String,
    /// The phases whose alerts count: the one the release is in (and the one a step being
    /// applied leads to); after a rollback, the phase it left, so a repeated webhook finds
    /// the rollback done. Empty when no phase counts.
    pub(crate) phases: Vec<String>,
    /// Why no phase counts (`the release is completed`), when none does.
    pub(crate) no_phase: String,
}

/// One alert as the log and the history show it: label values shortened, control
/// characters replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) alertname: String,
    pub(crate) rule_id: String,
    pub(crate) phase: String,
    pub(crate) starts_at: String,
}

impl Seen {
    /// `CanaryRollbackErrorRate (rule_id=r1, phase=alpha, startsAt=2026-...)`.
    pub(crate) fn describe(&self) -> String {
        format!(
            "{} (rule_id={}, phase={}, startsAt={})",
            if self.alertname.is_empty() {
                "(an alert without alertname)"
            } else {
                &self.alertname
            },
            self.rule_id,
            self.phase,
            self.starts_at
        )
    }
}

/// The alerts of one payload, sorted: those that roll the release back, and those ignored
/// with the reason.
#[derive(Debug, Default)]
pub(crate) struct Decision {
    pub(crate) counted: Vec<Seen>,
    pub(crate) ignored: Vec<(Seen, String)>,
}

/// Sorts `payload`'s alerts by `expect`.
pub(crate) fn decide(payload: &Payload, expect: &Expect) -> Decision {
    let mut d = Decision::default();
    for a in &payload.alerts {
        let label = |k: &str| a.labels.get(k).map_or("", String::as_str);
        let seen = Seen {
            alertname: clean(label("alertname")),
            rule_id: clean(label("rule_id")),
            phase: clean(label("phase")),
            starts_at: clean(&a.starts_at),
        };
        let why = if a.status != "firing" {
            Some(format!("status {}, not firing", clean(&a.status)))
        } else if label("action") != "rollback" {
            Some(format!(
                "action={:?}, not a rollback alert",
                clean(label("action"))
            ))
        } else if label("plan") != expect.plan {
            Some(format!(
                "plan={:?}: this service rolls back plan {:?} only",
                clean(label("plan")),
                expect.plan
            ))
        } else if label("release") != expect.release {
            Some(format!(
                "release={:?}: the release under way is of {:?}",
                clean(label("release")),
                expect.release
            ))
        } else if expect.phases.is_empty() {
            Some(expect.no_phase.clone())
        } else if !expect.phases.iter().any(|p| p == label("phase")) {
            Some(format!(
                "phase={:?}: the release is in phase {}",
                clean(label("phase")),
                expect.phases.join(" / ")
            ))
        } else {
            None
        };
        match why {
            None => d.counted.push(seen),
            Some(why) => d.ignored.push((seen, why)),
        }
    }
    d
}

/// A value from a request as logs may show it: at most [`SHOWN`] characters, control
/// characters as `?` (the JSON of the audit log and the report's tables escape the rest).
pub(crate) fn clean(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(SHOWN)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().nth(SHOWN).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect() -> Expect {
        Expect {
            plan: "lawsker".into(),
            release: "v1.1.0".into(),
            phases: vec!["alpha".into()],
            no_phase: String::new(),
        }
    }

    fn alert(status: &str, labels: &[(&str, &str)]) -> String {
        let labels: serde_json::Map<String, serde_json::Value> = labels
            .iter()
            .map(|(k, v)| ((*k).to_string(), serde_json::Value::from(*v)))
            .collect();
        serde_json::json!({
            "status": status, "labels": labels, "annotations": {},
            "startsAt": "2026-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus/graph", "fingerprint": "abc"
        })
        .to_string()
    }

    fn body(alerts: &[String]) -> Vec<u8> {
        format!(
            r#"{{"version":"4","groupKey":"{{}}:{{plan=\"lawsker\"}}","truncatedAlerts":0,"status":"firing","receiver":"plan-release","groupLabels":{{}},"commonLabels":{{}},"commonAnnotations":{{}},"externalURL":"http://am","alerts":[{}]}}"#,
            alerts.join(",")
        )
        .into_bytes()
    }

    const GOOD: &[(&str, &str)] = &[
        ("alertname", "CanaryRollbackErrorRate"),
        ("plan", "lawsker"),
        ("phase", "alpha"),
        ("release", "v1.1.0"),
        ("action", "rollback"),
        ("rule_id", "error-rate"),
        ("severity", "critical"),
    ];

    fn with(k: &str, v: &str) -> Vec<(&'static str, String)> {
        GOOD.iter()
            .map(|(a, b)| {
                (
                    *a,
                    if *a == k {
                        v.to_string()
                    } else {
                        (*b).to_string()
                    },
                )
            })
            .collect()
    }

    fn one(status: &str, labels: &[(&str, String)]) -> Decision {
        let l: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        decide(&parse(&body(&[alert(status, &l)])).unwrap(), &expect())
    }

    #[test]
    fn a_firing_rollback_alert_of_this_release_counts() {
        let d = decide(&parse(&body(&[alert("firing", GOOD)])).unwrap(), &expect());
        assert_eq!(d.counted.len(), 1, "{d:?}");
        assert!(d.ignored.is_empty());
        assert_eq!(
            d.counted[0].describe(),
            "CanaryRollbackErrorRate (rule_id=error-rate, phase=alpha, startsAt=2026-01-01T00:00:00Z)"
        );
    }

    #[test]
    fn other_plans_phases_releases_and_resolved_alerts_are_ignored_with_the_reason() {
        let cases = [
            (one("resolved", &with("", "")), "not firing"),
            (one("firing", &with("action", "notify")), "not a rollback"),
            (one("firing", &with("plan", "other")), "plan=\"other\""),
            (one("firing", &with("phase", "beta")), "phase=\"beta\""),
            (one("firing", &with("release", "v9")), "release=\"v9\""),
        ];
        for (d, why) in cases {
            assert!(d.counted.is_empty(), "{d:?}");
            assert_eq!(d.ignored.len(), 1);
            assert!(
                d.ignored[0].1.contains(why),
                "{} lacks {why}",
                d.ignored[0].1
            );
        }
        let missing: Vec<(&str, String)> = with("", "")
            .into_iter()
            .filter(|(k, _)| *k != "plan")
            .collect();
        assert!(one("firing", &missing).counted.is_empty());
        let mut none = expect();
        none.phases.clear();
        none.no_phase = "the release is completed".into();
        let d = decide(&parse(&body(&[alert("firing", GOOD)])).unwrap(), &none);
        assert_eq!(d.ignored[0].1, "the release is completed");
    }

    #[test]
    fn mixed_payloads_are_sorted_alert_by_alert() {
        let l: Vec<(&str, String)> = with("plan", "other");
        let other: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let d = decide(
            &parse(&body(&[alert("firing", &other), alert("firing", GOOD)])).unwrap(),
            &expect(),
        );
        assert_eq!((d.counted.len(), d.ignored.len()), (1, 1));
    }

    #[test]
    fn malformed_payloads_are_errors_that_say_so() {
        for bad in [
            &b"{"[..],
            b"",
            b"[]",
            b"{\"version\":\"4\",\"alerts\":{}}",
            b"{\"alerts\":[]}",
            b"\xff\xfe",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let e = parse(br#"{"version":"3","alerts":[]}"#).unwrap_err();
        assert!(e.contains("version 3"), "{e}");
        assert!(parse(br#"{"version":"4","alerts":[]}"#).is_ok());
    }

    #[test]
    fn values_are_shortened_and_control_characters_replaced() {
        let long = "x".repeat(500);
        let c = clean(&long);
        assert_eq!(c.chars().count(), SHOWN + 1);
        assert_eq!(clean("a\nb\u{1b}[31m"), "a?b?[31m");
    }
}
