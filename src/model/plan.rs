//! Stage 3: the typed plan, exactly as written (no defaults resolved, no cross-references
//! checked). It deserializes from a schema-valid document and serializes back to an
//! equivalent one, so a plan survives a round trip unchanged.

use super::duration::{Duration, ForDuration};
use super::network::{Network, Resolver};
use super::predicate::Predicate;
use super::share::Share;
use super::silent::SilentCanary;
use super::threshold::{Bad, Gate, Threshold, Unit};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub name: String,
    pub release: Release,
    pub service: Service,
    pub routing: Routing,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub user_groups: IndexMap<String, Vec<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<Traffic>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<Monitoring>,
    pub phases: Vec<Phase>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub metrics: IndexMap<String, MetricDef>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub gates: IndexMap<String, Gate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_policy: Option<super::GatePolicy>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollback_conditions: Vec<RollbackCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<Notifications>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<super::Deployment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulation: Option<Simulation>,
}

/// How `plan simulate` runs the plan by default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Simulation {
    /// The scenario file to use without `--scenarios`, relative to the plan's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenarios: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub name: String,
    pub image: String,
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    pub listen: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_log: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    pub sticky: Sticky,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_networks: Option<Vec<Network>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolver: Option<Resolver>,
}

/// What keeps a user on one version.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Sticky {
    Cookie(String),
    Header(String),
    /// Always `true` (the schema says so): split on the client address alone.
    ClientAddress(bool),
}

/// Written as the plan writes it, a one-key mapping (`cookie: user_id`); the derived form
/// would come out of `yaml_serde` as a YAML tag (`!cookie user_id`), which plans reject.
impl Serialize for Sticky {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        match self {
            Sticky::Cookie(c) => m.serialize_entry("cookie", c)?,
            Sticky::Header(h) => m.serialize_entry("header", h)?,
            Sticky::ClientAddress(b) => m.serialize_entry("client_address", b)?,
        }
        m.end()
    }
}

/// One condition of a user group: `attribute: predicate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    try_from = "IndexMap<String, Predicate>",
    into = "IndexMap<String, Predicate>"
)]
pub struct Condition {
    pub attribute: String,
    pub predicate: Predicate,
}

impl TryFrom<IndexMap<String, Predicate>> for Condition {
    type Error = String;
    fn try_from(m: IndexMap<String, Predicate>) -> Result<Self, String> {
        let mut it = m.into_iter();
        match (it.next(), it.next()) {
            (Some((attribute, predicate)), None) => Ok(Condition {
                attribute,
                predicate,
            }),
            _ => Err("a condition is one `attribute: predicate` pair".into()),
        }
    }
}

impl From<Condition> for IndexMap<String, Predicate> {
    fn from(c: Condition) -> Self {
        IndexMap::from([(c.attribute, c.predicate)])
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Traffic {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users_per_day: Option<u64>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub groups: IndexMap<String, Share>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Monitoring {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) evaluation_interval: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scrape_interval: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) window: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) silent_canary: Option<SilentCanary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) runbook_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    pub name: String,
    pub traffic: Share,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub query: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<Unit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bad: Option<Bad>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackCondition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub metric: String,
    pub threshold: Threshold,
    pub duration: ForDuration,
    /// The minimum-traffic guard: the condition counts only where the canary's requests in
    /// the rate window are at least this many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_requests: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notifications {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<Slack>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms: Option<Sms>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slack {
    pub channel: String,
    pub api_url_file: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Email {
    pub to: Vec<String>,
    pub from: String,
    pub smarthost: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_password_file: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sms {
    pub webhook_url: String,
    /// The token sent as `Authorization: Bearer`, read by Alertmanager from this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<String>,
}
