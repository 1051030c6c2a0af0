//! `manifest.json`: the release as data, for pipelines. One document says, step by step,
//! what share of traffic the new version gets, who is targeted, how long to wait, what must
//! hold, what rolls back, which generated files to apply and which commands apply them.
//!
//! The document is versioned (`schema_version`, bumped on any incompatible change) and
//! built from typed structs serialised once; it carries no timestamp, so the same plan gives
//! the same bytes. Its commands, texts and runbook links come from the modules the runbook
//! reads too (`commands`, `text`, `anchors`), so the two cannot disagree.
//!
//! Shape (version 1): `plan`, `release {from, to}`, `service`, `routing`, `notifications`,
//! `alerts` (every alerting rule with its runbook link), `silent_canary` (null when the
//! plan turns it off), `gate_policy {on_failure, max_hold, after_max_hold}` (what a gate
//! firing when a phase's minimum duration is up does: `rollback` at once, or `hold` the
//! phase at most `max_hold`, then `rollback` or `stay`; the last two only for `hold`),
//! `watch {phase, text, seconds, default}` (how long the last phase, at 100%, is watched
//! with its rollback rules running before the release is complete, and whether that is the
//! 24h default), `preparation {artifacts, commands}`, and `steps`: one per phase,
//! then `rollback` and `promotion`, each with `kind`, `name`, `traffic`, `groups`,
//! `min_duration` (the last phase's is its watch, the default included; null for
//! `rollback` and `promotion`), `gates`, `rollback_rules` (each with `min_requests` when the
//! condition has a minimum-traffic guard, absent otherwise), `silent_canary` (whether that rule runs in
//! the step), `artifacts` and `commands`. Artifacts are relative to the manifest's folder, commands
//! run in its parent (`paths`).

use super::alerting::kind_label;
use super::anchors;
use super::artifact::{Artifact, header};
use super::commands::{self, COMPOSE_BASE, Command};
use super::compose::canary_service;
use super::step::Step;
use super::text::{
    alert_summary, comparison_symbol, group_condition_text, group_rule_text, limit_text, value_text,
};
use crate::check::{CheckedPlan, GatePolicy, Limit, Metric, Target};
use crate::lower::{AlertRule, RuleKind};
use crate::model::{AfterMaxHold, AgeUnit, Duration, ForDuration, Operand, Share, Sticky};
use serde::Serialize;

/// The manifest format's version; consumers should refuse versions they do not know.
const SCHEMA_VERSION: u32 = 2;

/// Renders `manifest.json`.
pub(crate) fn render(plan: &CheckedPlan, rules: &[AlertRule]) -> Vec<Artifact> {
    let manifest = build(plan, rules);
    // Serialising plain structs of strings, integers and finite numbers cannot fail; a
    // non-finite number would be a checker bug, and is written as null rather than lost.
    let mut contents = serde_json::to_string_pretty(&manifest)
        .unwrap_or_else(|e| format!("{{\"error\": {:?}}}", e.to_string()));
    contents.push('\n');
    vec![Artifact {
        path: "manifest.json".into(),
        contents,
    }]
}

// ---------------------------------------------------------------------------------------
// The document.

#[derive(Serialize)]
struct Manifest<'a> {
    schema_version: u32,
    generated_by: String,
    plan: &'a str,
    paths: Paths,
    release: Release<'a>,
    service: Service<'a>,
    routing: Routing<'a>,
    notifications: Notifications<'a>,
    deployment: DeploymentDoc<'a>,
    /// Every alerting rule of the Prometheus rule files, with its runbook link.
    alerts: Vec<Alert>,
    /// The silent-canary rollback rule; null when the plan sets `silent_canary: off`.
    silent_canary: Option<SilentDoc>,
    /// What a gate firing when a phase's minimum duration is up does (`gate_policy`).
    gate_policy: GatePolicyDoc,
    /// The last phase's watch: how long the release at 100% is watched, its rollback rules
    /// running, before it is complete.
    watch: WatchDoc<'a>,
    preparation: Preparation,
    steps: Vec<StepDoc<'a>>,
}

#[derive(Serialize)]
struct Paths {
    /// What `artifacts` are relative to: `.`, the manifest's own folder.
    artifacts: &'static str,
    /// Where `commands` run, relative to the manifest's folder: `..`.
    commands: &'static str,
    /// The user's base compose file, relative to where commands run.
    compose_base_file: &'static str,
}

/// Where the release runs (`deployment`): what the commands apply, and where `plan
/// release` asks Prometheus and listens for Alertmanager.
#[derive(Serialize)]
struct DeploymentDoc<'a> {
    /// `compose` or `host`.
    target: &'static str,
    /// `host`: where each step's NGINX file and each phase's rules are installed.
    nginx_conf: Option<&'a str>,
    rules_file: Option<&'a str>,
    prometheus: &'a str,
    alertmanager: &'a str,
    /// `plan release serve`; null when the plan asks for no automatic rollback.
    automatic_rollback: Option<AutomaticRollbackDoc<'a>>,
}

#[derive(Serialize)]
struct AutomaticRollbackDoc<'a> {
    listen: String,
    url: &'a str,
    token_file: &'a str,
}

#[derive(Serialize)]
struct Release<'a> {
    from: &'a str,
    to: &'a str,
}

#[derive(Serialize)]
struct Service<'a> {
    /// The compose service of the stable version.
    name: &'a str,
    /// The compose service of the canary.
    canary: String,
    image: &'a str,
    stable_image: String,
    canary_image: String,
    port: u16,
    replicas: u32,
}

#[derive(Serialize)]
struct Routing<'a> {
    listen: u16,
    /// The address NGINX listens on; null for every address.
    listen_address: Option<String>,
    /// The site's access log; null when off.
    access_log: Option<&'a str>,
    server_name: &'a str,
    /// What keeps a user on one version: `{"cookie": name}`, `{"header": name}` or
    /// `{"client_address": true}`.
    sticky: &'a Sticky,
    group_header: Option<&'a str>,
    force_header: Option<&'a str>,
}

#[derive(Serialize)]
struct Notifications<'a> {
    slack_channel: Option<&'a str>,
    email_to: Vec<&'a str>,
    sms: bool,
    /// Who hears of each severity: `critical` (rollbacks) and `warning` (gates, no data).
    routes: Routes,
}

#[derive(Serialize)]
struct Routes {
    critical: Vec<&'static str>,
    warning: Vec<&'static str>,
}

#[derive(Serialize)]
struct Alert {
    alert: String,
    kind: &'static str,
    id: String,
    metric: String,
    severity: &'static str,
    summary: String,
    runbook: String,
}

/// `monitoring.silent_canary`: the canary's scrape targets all down, or none listed, for
/// `for` in a phase that sends it users rolls the release back.
#[derive(Serialize)]
struct SilentDoc {
    #[serde(rename = "for")]
    for_: DurationDoc,
    /// Whether `for` is the default (the rate window, at least two evaluation intervals)
    /// rather than the plan's own.
    default: bool,
    /// The series it reads (Prometheus' `up` of the canary's targets).
    reads: String,
    alert: String,
    summary: String,
    runbook: String,
}

/// `gate_policy`, checked: `on_failure` is `rollback` (roll back at once, the default) or
/// `hold` (stay in the phase, re-checking the gates at every evaluation, and advance at the
/// first at which none fires); a hold has `max_hold` (default 24h) and `after_max_hold`
/// (`rollback`, the default, or `stay`: held until someone decides).
#[derive(Serialize)]
struct GatePolicyDoc {
    on_failure: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_hold: Option<DurationDoc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    after_max_hold: Option<&'static str>,
}

impl GatePolicyDoc {
    fn of(p: GatePolicy) -> GatePolicyDoc {
        match p {
            GatePolicy::Rollback => GatePolicyDoc {
                on_failure: "rollback",
                max_hold: None,
                after_max_hold: None,
            },
            GatePolicy::Hold { max, then } => GatePolicyDoc {
                on_failure: "hold",
                max_hold: Some(DurationDoc::of(max)),
                after_max_hold: Some(match then {
                    AfterMaxHold::Rollback => "rollback",
                    AfterMaxHold::Stay => "stay",
                }),
            },
        }
    }
}

#[derive(Serialize)]
struct WatchDoc<'a> {
    /// The last phase's name.
    phase: &'a str,
    text: String,
    seconds: Num,
    /// Whether the watch is the default (`24h`: the last phase states no `duration`).
    default: bool,
}

#[derive(Serialize)]
struct Preparation {
    artifacts: Vec<String>,
    commands: Vec<Command>,
}

#[derive(Serialize)]
struct StepDoc<'a> {
    /// `phase`, `rollback` or `promotion`.
    kind: &'static str,
    name: &'a str,
    /// The share of users on the new version (`release.to`): the phase's split, 0% after a
    /// rollback, 100% after the promotion.
    traffic: Percent,
    /// The expected share of requests on the new version, split and targeted groups
    /// together; null when a targeted group's share is not stated.
    expected_request_share: Option<Percent>,
    /// Groups sent to the new version whatever the split.
    groups: Vec<GroupDoc<'a>>,
    /// How long the phase lasts at least before it may advance; for the last phase its
    /// watch (`watch`: its `duration`, else the 24h default) before the promotion, null
    /// for rollback and promotion.
    min_duration: Option<DurationDoc>,
    gates: Vec<GateDoc>,
    rollback_rules: Vec<RuleDoc>,
    /// Whether the silent-canary rule runs in this step (phases that send the canary users).
    silent_canary: bool,
    artifacts: Vec<String>,
    commands: Vec<Command>,
}

#[derive(Serialize)]
struct Percent {
    percent: Num,
    text: String,
}

impl Percent {
    fn of(s: Share) -> Percent {
        Percent {
            percent: Num(f64::from(s.hundredths()) / 100.0),
            text: s.to_string(),
        }
    }
}

#[derive(Serialize)]
struct DurationDoc {
    /// Prometheus syntax, canonical (`24h` prints as `1d`).
    text: String,
    seconds: Num,
}

impl DurationDoc {
    fn of(d: Duration) -> DurationDoc {
        DurationDoc {
            text: d.to_string(),
            seconds: Num(d.seconds()),
        }
    }

    /// A rule's `for`, `0s` included.
    fn of_for(d: ForDuration) -> DurationDoc {
        DurationDoc {
            text: d.to_string(),
            seconds: Num(d.millis() as f64 / 1000.0),
        }
    }
}

#[derive(Serialize)]
struct GroupDoc<'a> {
    name: &'a str,
    /// The group's membership as one expression: conditions on one attribute are
    /// alternatives (`or`), different attributes must all hold (`and`).
    rule: String,
    conditions: Vec<ConditionDoc<'a>>,
    /// The group's stated share of all requests, if any.
    traffic: Option<Percent>,
}

#[derive(Serialize)]
struct ConditionDoc<'a> {
    attribute: &'a str,
    /// `==`, `!=`, `<`, `<=`, `>`, `>=`.
    comparison: &'static str,
    value: Value,
    /// `last_login >= 7 days`.
    text: String,
}

/// A predicate's operand: a string, a number, a boolean or an age.
#[derive(Serialize)]
#[serde(untagged)]
enum Value {
    Text(String),
    Number(Num),
    Bool(bool),
    Age {
        amount: u64,
        unit: &'static str,
        seconds: u64,
    },
}

#[derive(Serialize)]
struct GateDoc {
    metric: String,
    unit: &'static str,
    /// The healthy side: the gate holds when `metric comparison threshold`.
    comparison: &'static str,
    threshold: ThresholdDoc,
    /// The gate as written in the plan (`< 5%`).
    written: String,
    /// The warning that fires while the gate does not hold.
    alert: String,
    runbook: String,
}

#[derive(Serialize)]
struct RuleDoc {
    id: String,
    metric: String,
    unit: &'static str,
    /// The bad side: the rule fires when `metric comparison threshold` for `for`.
    comparison: &'static str,
    threshold: ThresholdDoc,
    #[serde(rename = "for")]
    for_: DurationDoc,
    /// The threshold as written in the plan (`0.1`, `5000`).
    written: String,
    /// The rollback rule's minimum-traffic guard: it fires only where the canary served at
    /// least this many requests in the rate window (absent without one; gates have none).
    #[serde(skip_serializing_if = "Option::is_none")]
    min_requests: Option<u64>,
    alert: String,
    summary: String,
    runbook: String,
}

/// A limit in the metric's unit (`0.05` for 5% of a ratio, `3000` for 3s of a millisecond
/// metric), or a factor of the stable version's value with, optionally, the absolute
/// comparison that goes with it (`also`: for a gate a level healthy too, for a rollback a
/// floor the canary must also pass).
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum ThresholdDoc {
    Absolute {
        value: Num,
        text: String,
    },
    RelativeToStable {
        factor: Num,
        #[serde(skip_serializing_if = "Option::is_none")]
        also: Option<AlsoDoc>,
        text: String,
    },
}

#[derive(Serialize)]
struct AlsoDoc {
    op: &'static str,
    value: Num,
}

impl ThresholdDoc {
    /// `joiner`: `or` for a gate, `and` for a rollback (see `text::limit_text`).
    fn of(l: Limit, m: &Metric, joiner: &str) -> ThresholdDoc {
        match l {
            Limit::Absolute(v) => ThresholdDoc::Absolute {
                value: Num(v),
                text: value_text(m.unit, v),
            },
            Limit::RelativeToStable { factor, also } => ThresholdDoc::RelativeToStable {
                factor: Num(factor),
                also: also.map(|(op, v)| AlsoDoc {
                    op: op.as_str(),
                    value: Num(v),
                }),
                text: limit_text(l, m, joiner),
            },
        }
    }
}

/// A number printed as an integer when it is one (`5`, not `5.0`); null if not finite.
#[derive(Clone, Copy)]
struct Num(f64);

impl Serialize for Num {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if !v.is_finite() {
            s.serialize_none()
        } else if v.fract() == 0.0 && v.abs() < 9.0e15 {
            s.serialize_i64(v as i64)
        } else {
            s.serialize_f64(v)
        }
    }
}

// ---------------------------------------------------------------------------------------
// Building it.

fn deployment(d: &crate::check::Deployment) -> DeploymentDoc<'_> {
    let host = match &d.target {
        Target::Compose => None,
        Target::Host(h) => Some(h),
    };
    DeploymentDoc {
        target: if host.is_some() { "host" } else { "compose" },
        nginx_conf: host.map(|h| h.nginx_conf.as_str()),
        rules_file: host.map(|h| h.rules_file.as_str()),
        prometheus: &d.prometheus,
        alertmanager: &d.alertmanager,
        automatic_rollback: d.automatic_rollback.as_ref().map(|a| AutomaticRollbackDoc {
            listen: a.listen.to_string(),
            url: &a.url,
            token_file: &a.token_file,
        }),
    }
}

fn build<'p>(plan: &'p CheckedPlan, rules: &[AlertRule]) -> Manifest<'p> {
    let n = &plan.notifications;
    let mut critical = Vec::new();
    let mut warning = Vec::new();
    if n.slack.is_some() {
        critical.push("slack");
        warning.push("slack");
    }
    if n.email.is_some() {
        critical.push("email");
    }
    if n.sms.is_some() {
        critical.push("sms");
    }
    Manifest {
        schema_version: SCHEMA_VERSION,
        generated_by: header(plan, "").trim().to_string(),
        plan: &plan.name,
        paths: Paths {
            artifacts: ".",
            commands: "..",
            compose_base_file: COMPOSE_BASE,
        },
        release: Release {
            from: &plan.release.from,
            to: &plan.release.to,
        },
        service: Service {
            name: &plan.service.name,
            canary: canary_service(plan),
            image: &plan.service.image,
            stable_image: format!("{}:{}", plan.service.image, plan.release.from),
            canary_image: format!("{}:{}", plan.service.image, plan.release.to),
            port: plan.service.port,
            replicas: plan.service.replicas,
        },
        deployment: deployment(&plan.deployment),
        routing: Routing {
            listen: plan.routing.listen,
            listen_address: plan.routing.listen_address.map(|a| a.to_string()),
            access_log: plan.routing.access_log.as_deref(),
            server_name: &plan.routing.server_name,
            sticky: &plan.routing.sticky,
            group_header: plan.routing.group_header.as_deref(),
            force_header: plan.routing.force_header.as_deref(),
        },
        notifications: Notifications {
            slack_channel: n.slack.as_ref().map(|s| s.channel.as_str()),
            email_to: n
                .email
                .as_ref()
                .map(|e| e.to.iter().map(String::as_str).collect())
                .unwrap_or_default(),
            sms: n.sms.is_some(),
            routes: Routes { critical, warning },
        },
        alerts: rules
            .iter()
            .map(|r| Alert {
                alert: r.alert.clone(),
                kind: kind_label(r.kind),
                id: r.id.clone(),
                metric: plan.metrics[r.metric].name.clone(),
                severity: r.severity(),
                summary: alert_summary(plan, r),
                runbook: anchors::link(r),
            })
            .collect(),
        silent_canary: plan.silent_canary.and_then(|sc| {
            let r = rules.iter().find(|r| r.is_silent_canary())?;
            Some(SilentDoc {
                for_: DurationDoc::of(sc.after),
                default: sc.default,
                reads: plan.metrics[sc.metric]
                    .expr
                    .promql(Some(crate::promql::Track::Canary)),
                alert: r.alert.clone(),
                summary: alert_summary(plan, r),
                runbook: anchors::link(r),
            })
        }),
        gate_policy: GatePolicyDoc::of(plan.gate_policy),
        watch: WatchDoc {
            phase: plan.phases.last().map_or("", |ph| ph.name.as_str()),
            text: plan.watch.to_string(),
            seconds: Num(plan.watch.seconds()),
            default: plan.watch_is_default(),
        },
        preparation: Preparation {
            artifacts: commands::preparation_artifacts(plan),
            commands: commands::preparation_commands(plan),
        },
        steps: Step::all(plan)
            .into_iter()
            .map(|s| step(plan, rules, s))
            .collect(),
    }
}

fn step<'a>(plan: &'a CheckedPlan, rules: &[AlertRule], s: Step) -> StepDoc<'a> {
    let name = s.name(plan);
    let artifacts = commands::artifacts(plan, s);
    let commands = commands::step_commands(plan, s);
    let expected_request_share = s.expected_request_share(plan).map(Percent::of);
    let Step::Phase(i) = s else {
        let (kind, traffic) = match s {
            Step::Rollback => ("rollback", Share::ZERO),
            _ => ("promotion", Share::FULL),
        };
        return StepDoc {
            kind,
            name,
            traffic: Percent::of(traffic),
            expected_request_share,
            groups: Vec::new(),
            min_duration: None,
            gates: Vec::new(),
            rollback_rules: Vec::new(),
            silent_canary: false,
            artifacts,
            commands,
        };
    };
    let phase = &plan.phases[i];
    StepDoc {
        kind: "phase",
        name,
        traffic: Percent::of(phase.traffic),
        expected_request_share,
        groups: phase
            .groups
            .iter()
            .map(|&g| {
                let g = &plan.groups[g];
                GroupDoc {
                    name: &g.name,
                    rule: group_rule_text(g, |s| s.to_string()),
                    conditions: g
                        .conditions
                        .iter()
                        .map(|c| ConditionDoc {
                            attribute: &c.attribute,
                            comparison: comparison_symbol(c.predicate.comparison),
                            value: value(&c.predicate.operand),
                            text: group_condition_text(c),
                        })
                        .collect(),
                    traffic: g.share.map(Percent::of),
                }
            })
            .collect(),
        min_duration: if i + 1 == plan.phases.len() {
            Some(DurationDoc::of(plan.watch))
        } else {
            phase.duration.map(DurationDoc::of)
        },
        gates: rules
            .iter()
            .filter(|r| r.kind == RuleKind::Gate)
            .filter_map(|r| {
                let g = plan.gates.iter().find(|g| g.metric == r.metric)?;
                let m = &plan.metrics[g.metric];
                Some(GateDoc {
                    metric: m.name.clone(),
                    unit: m.unit.name(),
                    comparison: g.op.as_str(),
                    threshold: ThresholdDoc::of(g.limit, m, "or"),
                    written: g.written.clone(),
                    alert: r.alert.clone(),
                    runbook: anchors::link(r),
                })
            })
            .collect(),
        rollback_rules: rules
            .iter()
            .filter(|r| r.kind == RuleKind::Rollback)
            .filter_map(|r| {
                let rb = plan.rollbacks.iter().find(|x| x.id == r.id)?;
                let m = &plan.metrics[rb.metric];
                Some(RuleDoc {
                    id: rb.id.clone(),
                    metric: m.name.clone(),
                    unit: m.unit.name(),
                    comparison: rb.bad_op(m).as_str(),
                    threshold: ThresholdDoc::of(rb.limit, m, "and"),
                    for_: DurationDoc::of_for(rb.for_),
                    written: rb.written.clone(),
                    min_requests: rb.min_requests.map(|g| g.min),
                    alert: r.alert.clone(),
                    summary: alert_summary(plan, r),
                    runbook: anchors::link(r),
                })
            })
            .collect(),
        silent_canary: rules.iter().any(|r| r.is_silent_canary() && r.runs_in(i)),
        artifacts,
        commands,
    }
}

fn value(o: &Operand) -> Value {
    match o {
        Operand::Text(t) => Value::Text(t.clone()),
        Operand::Number(n) => Value::Number(Num(*n)),
        Operand::Bool(b) => Value::Bool(*b),
        Operand::Age {
            seconds,
            amount,
            unit,
        } => Value::Age {
            amount: *amount,
            unit: match unit {
                AgeUnit::Minutes => "minutes",
                AgeUnit::Hours => "hours",
                AgeUnit::Days => "days",
                AgeUnit::Weeks => "weeks",
            },
            seconds: *seconds,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_as_integers_when_whole() {
        let j = |v: f64| serde_json::to_string(&Num(v)).unwrap();
        assert_eq!(j(5.0), "5");
        assert_eq!(j(0.05), "0.05");
        assert_eq!(j(86400.0), "86400");
        assert_eq!(j(f64::NAN), "null");
    }
}
