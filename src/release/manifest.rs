//! The rendered plan as the driver reads it: the part of `manifest.json` that says what
//! each step runs and what holds a phase back. The driver runs exactly the commands the
//! manifest lists (and the runbook shows), so the three never disagree.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The manifest versions this driver reads: those whose commands carry `argv`.
const SCHEMA_VERSION: u32 = 2;

/// Manifests are small; anything larger is not one.
const MAX_BYTES: u64 = 16 << 20;

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Manifest {
    pub(crate) plan: String,
    pub(crate) release: Release,
    pub(crate) service: Service,
    pub(crate) deployment: Deployment,
    pub(crate) watch: Watch,
    pub(crate) gate_policy: GatePolicy,
    pub(crate) steps: Vec<Step>,
}

/// What the plan says a gate failing at a phase's end does: `rollback` or `hold`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct GatePolicy {
    pub(crate) on_failure: String,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
pub(crate) struct Release {
    pub(crate) from: String,
    pub(crate) to: String,
}

/// The service released: its name is the `service` label of its metrics.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Service {
    pub(crate) name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Deployment {
    pub(crate) prometheus: String,
    /// `plan release serve`'s listener; None when the plan asks for no automatic rollback.
    #[serde(default)]
    pub(crate) automatic_rollback: Option<AutomaticRollback>,
}

/// Where `plan release serve` listens, the URL Alertmanager posts to, and the file holding
/// the bearer token both sides share.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AutomaticRollback {
    pub(crate) listen: String,
    pub(crate) url: String,
    pub(crate) token_file: String,
}

/// How long the last phase is watched before the release may complete.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Watch {
    pub(crate) seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Step {
    /// `phase`, `rollback` or `promotion`.
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) traffic: Traffic,
    pub(crate) min_duration: Option<Seconds>,
    /// The rendered files the step applies, relative to the plan's folder.
    pub(crate) artifacts: Vec<String>,
    pub(crate) commands: Vec<Command>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Traffic {
    pub(crate) text: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Seconds {
    pub(crate) seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Command {
    pub(crate) description: String,
    pub(crate) run: String,
    pub(crate) argv: Vec<String>,
}

/// A rendered plan's folder (`OUT/<plan>/`) and its manifest.
#[derive(Debug, Clone)]
pub(crate) struct Rendered {
    pub(crate) dir: PathBuf,
    pub(crate) manifest: Manifest,
}

impl Rendered {
    /// Reads `dir/manifest.json`; errors say what is wrong and what to do.
    pub(crate) fn read(dir: &Path) -> Result<Rendered, String> {
        let path = dir.join("manifest.json");
        let shown = path.display();
        let meta = std::fs::metadata(&path).map_err(|e| {
            // `OUT` given for `OUT/<plan>`: name the plans' folders in it.
            let inside: Vec<String> = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|d| d.path().join("manifest.json").is_file())
                .map(|d| d.path().display().to_string())
                .collect();
            if inside.is_empty() {
                format!(
                    "{shown}: {e}; give the folder `plan render` wrote for the plan (`OUT/<plan>`)"
                )
            } else {
                format!(
                    "{shown}: {e}; give a plan's own folder: {}",
                    inside.join(", ")
                )
            }
        })?;
        if meta.len() > MAX_BYTES {
            return Err(format!("{shown}: {} bytes is not a manifest", meta.len()));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{shown}: {e}"))?;
        let version: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{shown}:{}:{}: not JSON ({e}); render the plan again",
                e.line(),
                e.column()
            )
        })?;
        let found = version
            .get("schema_version")
            .and_then(serde_json::Value::as_u64);
        if found != Some(u64::from(SCHEMA_VERSION)) {
            return Err(format!(
                "{shown}: manifest version {} is not the one this plan reads ({SCHEMA_VERSION}); render the plan again with this version of plan",
                found.map_or_else(|| "(none)".to_string(), |v| v.to_string())
            ));
        }
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{shown}:{}:{}: {e}; render the plan again",
                e.line(),
                e.column()
            )
        })?;
        let phases = manifest.steps.iter().filter(|s| s.kind == "phase").count();
        let has = |k: &str| manifest.steps.iter().any(|s| s.kind == k);
        if phases == 0 || !has("rollback") || !has("promotion") {
            return Err(format!(
                "{shown}: the manifest lacks its phases, rollback or promotion; render the plan again"
            ));
        }
        Ok(Rendered {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    /// The plan's phases, in order.
    pub(crate) fn phases(&self) -> Vec<&Step> {
        self.manifest
            .steps
            .iter()
            .filter(|s| s.kind == "phase")
            .collect()
    }

    /// The rollback or the promotion step.
    pub(crate) fn step(&self, kind: &str) -> &Step {
        self.manifest
            .steps
            .iter()
            .find(|s| s.kind == kind)
            .expect("checked on read")
    }

    /// Where the commands run: the folder given to `plan render --out`.
    pub(crate) fn commands_dir(&self) -> PathBuf {
        match self.dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => self.dir.join(".."),
        }
    }
}
