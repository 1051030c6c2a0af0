//! `deployment`: where a release runs, as the plan writes it. The commands the manifest
//! and the runbook list, and that `plan release` runs, are derived from it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alertmanager: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nginx_conf: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nginx: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatic_rollback: Option<AutomaticRollback>,
}

/// What applies each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Compose,
    Host,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutomaticRollback {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub token_file: String,
}
