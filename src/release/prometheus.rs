//! What Prometheus says about this plan's rules: which of them it has loaded, whether
//! they evaluate, and which alerts are pending or firing. `next` and `complete` go by
//! this and nothing else ("as Prometheus reports them"): a phase whose rules Prometheus
//! has not loaded, or cannot evaluate, holds no gate, so it never counts as passing.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a question to Prometheus may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Responses are a few rules' worth; more is not Prometheus.
const MAX_BYTES: u64 = 64 << 20;

/// One alerting rule of the plan as Prometheus has it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rule {
    pub(crate) alert: String,
    /// `rollback`, `gate` or `no_data` (the rule's `kind` label).
    pub(crate) kind: String,
    pub(crate) phase: String,
    /// `inactive`, `pending` or `firing`.
    pub(crate) state: String,
    /// `ok`, `err` or `unknown` (not evaluated yet).
    pub(crate) health: String,
    pub(crate) last_error: String,
}

#[derive(Deserialize)]
struct Response {
    status: String,
    data: Option<Data>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    groups: Vec<Group>,
}

#[derive(Deserialize)]
struct Group {
    rules: Vec<RuleDoc>,
}

#[derive(Deserialize)]
struct RuleDoc {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    state: String,
    #[serde(default)]
    health: String,
    #[serde(default, rename = "lastError")]
    last_error: String,
}

/// The alerting rules of plan `plan` that Prometheus at `base` has loaded.
pub(crate) fn rules(base: &str, plan: &str) -> Result<Vec<Rule>, String> {
    let url = format!("{base}/api/v1/rules?type=alert");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .get(&url)
        .call()
        .map_err(|e| format!("cannot ask Prometheus ({url}): {e}"))?;
    let status = response.status();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_BYTES)
        .read_to_string()
        .map_err(|e| format!("cannot read Prometheus' answer ({url}): {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "Prometheus answered {status} to {url}: {}",
            body.chars().take(200).collect::<String>()
        ));
    }
    parse(&body, plan).map_err(|e| format!("{url}: {e}"))
}

fn parse(body: &str, plan: &str) -> Result<Vec<Rule>, String> {
    let r: Response =
        serde_json::from_str(body).map_err(|e| format!("not Prometheus' rules API: {e}"))?;
    if r.status != "success" {
        return Err(format!(
            "Prometheus says {}: {}",
            r.status,
            r.error.unwrap_or_default()
        ));
    }
    let groups = r.data.map(|d| d.groups).unwrap_or_default();
    Ok(groups
        .into_iter()
        .flat_map(|g| g.rules)
        .filter(|r| r.kind == "alerting" && r.labels.get("plan").map(String::as_str) == Some(plan))
        .map(|r| Rule {
            kind: r.labels.get("kind").cloned().unwrap_or_default(),
            phase: r.labels.get("phase").cloned().unwrap_or_default(),
            alert: r.name,
            state: r.state,
            health: r.health,
            last_error: r.last_error,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_plans_alerting_rules_only() {
        let body = r#"{"status":"success","data":{"groups":[{"name":"lawsker","rules":[
            {"name":"CanaryGateErrorRate","type":"alerting","labels":{"plan":"lawsker","phase":"alpha","kind":"gate"},"state":"pending","health":"ok","lastError":""},
            {"name":"service_track:x","type":"recording","labels":{"plan":"lawsker"},"health":"ok"},
            {"name":"Other","type":"alerting","labels":{"plan":"other","phase":"alpha","kind":"gate"},"state":"firing","health":"ok"}
        ]}]}}"#;
        let rules = parse(body, "lawsker").unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].alert, "CanaryGateErrorRate");
        assert_eq!(rules[0].state, "pending");
        assert_eq!(rules[0].kind, "gate");
        assert!(parse(r#"{"status":"error","error":"boom"}"#, "lawsker").is_err());
        assert!(parse("<html>", "lawsker").is_err());
    }
}
