//! `manifest.json`: the release as data, for pipelines. One document says, step by step,
//! what share of traffic the new version gets, who is targeted, how long to wait, what must
//! hold, what rolls back, which generated files to apply and which commands apply them.
//!
//! The document is versioned (`schema_version`, bumped on any incompatible change) and
//! built from typed structs serialised once; it carries no timestamp, so the same plan gives
//! the same bytes. The step commands are defined here once and shown to people by the
//! runbook too, so the two cannot disagree.
//!
//! Shape (version 1): `plan`, `release {from, to}`, `service`, `routing`, `notifications`,
//! `alerts` (every alerting rule with its runbook link), `preparation {artifacts,
//! commands}`, and `steps`: one per phase, then `rollback` and `promotion`, each with
//! `kind`, `name`, `traffic`, `groups`, `min_duration`, `gates`, `rollback_rules`,
//! `artifacts` and `commands`.
//!
//! Paths: artifacts are relative to the plan's output folder (`OUT/<plan>/`, where the
//! manifest is); commands run in its parent `OUT/` (the folder given to `plan render
//! --out`), beside the user's base `docker-compose.yml`, because docker-compose resolves
//! every relative path of every `-f` file against the first file's folder (see `compose`).
//! So command paths carry the plan's name: `lawsker/compose/alpha.override.yml`.

use super::{Artifact, Step, header, runbook};
use crate::check::{CheckedPlan, Limit, Metric};
use crate::lower::{self, AlertRule, RuleKind};
use crate::model::{AgeUnit, Comparison, Duration, Operand, Share, Sticky};
use serde::Serialize;

/// The manifest format's version; consumers should refuse versions they do not know.
pub const SCHEMA_VERSION: u32 = 1;

/// The base compose file the overrides are layered on, in the folder the commands run in.
pub const COMPOSE_BASE: &str = "docker-compose.yml";

/// The compose service running NGINX, which the commands test and reload.
pub const NGINX_SERVICE: &str = "nginx";

/// Prometheus's reload endpoint (needs `--web.enable-lifecycle`).
pub const PROMETHEUS_RELOAD: &str = "curl -fsS -X POST http://localhost:9090/-/reload";

/// Alertmanager's reload endpoint.
pub const ALERTMANAGER_RELOAD: &str = "curl -fsS -X POST http://localhost:9093/-/reload";

/// The Alertmanager configuration, shared by every step.
pub const ALERTMANAGER_CONFIG: &str = "alertmanager/alertmanager.yml";

/// Renders `manifest.json`.
pub fn render(plan: &CheckedPlan) -> Vec<Artifact> {
    let manifest = build(plan);
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
    /// Every alerting rule of the Prometheus rule files, with its runbook link.
    alerts: Vec<Alert>,
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
    /// How long the phase lasts at least before it may advance; null for the last phase
    /// (it runs on) and for rollback and promotion.
    min_duration: Option<DurationDoc>,
    gates: Vec<GateDoc>,
    rollback_rules: Vec<RuleDoc>,
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
    /// `joiner`: `or` for a gate, `and` for a rollback (see [`runbook::limit_text`]).
    fn of(l: Limit, m: &Metric, joiner: &str) -> ThresholdDoc {
        match l {
            Limit::Absolute(v) => ThresholdDoc::Absolute {
                value: Num(v),
                text: runbook::human(m.unit, v),
            },
            Limit::RelativeToStable { factor, also } => ThresholdDoc::RelativeToStable {
                factor: Num(factor),
                also: also.map(|(op, v)| AlsoDoc {
                    op: op.as_str(),
                    value: Num(v),
                }),
                text: runbook::limit_text(l, m, joiner),
            },
        }
    }
}

/// One shell command, run from the folder given to `plan render --out`.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// What it does, for people and logs.
    pub description: String,
    pub run: String,
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

fn build(plan: &CheckedPlan) -> Manifest<'_> {
    let rules = lower::alert_rules(plan);
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
        routing: Routing {
            listen: plan.routing.listen,
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
                kind: match r.kind {
                    RuleKind::Rollback => "rollback",
                    RuleKind::Gate => "gate",
                    RuleKind::NoData => "no_data",
                },
                id: r.id.clone(),
                metric: plan.metrics[r.metric].name.clone(),
                severity: r.severity(),
                summary: runbook::alert_summary(plan, r),
                runbook: runbook::link(r),
            })
            .collect(),
        preparation: Preparation {
            artifacts: preparation_artifacts(plan),
            commands: preparation_commands(plan),
        },
        steps: Step::all(plan)
            .into_iter()
            .map(|s| step(plan, &rules, s))
            .collect(),
    }
}

fn step<'a>(plan: &'a CheckedPlan, rules: &[AlertRule], s: Step) -> StepDoc<'a> {
    let name = s.name(plan);
    let artifacts = artifacts(plan, s);
    let commands = commands(plan, s);
    let Step::Phase(i) = s else {
        let (kind, traffic) = match s {
            Step::Rollback => ("rollback", Share::ZERO),
            _ => ("promotion", Share::FULL),
        };
        return StepDoc {
            kind,
            name,
            traffic: Percent::of(traffic),
            expected_request_share: Some(Percent::of(traffic)),
            groups: Vec::new(),
            min_duration: None,
            gates: Vec::new(),
            rollback_rules: Vec::new(),
            artifacts,
            commands,
        };
    };
    let phase = &plan.phases[i];
    StepDoc {
        kind: "phase",
        name,
        traffic: Percent::of(phase.traffic),
        expected_request_share: expected_request_share(plan, i).map(Percent::of),
        groups: phase
            .groups
            .iter()
            .map(|&g| {
                let g = &plan.groups[g];
                GroupDoc {
                    name: &g.name,
                    rule: runbook::group_rule(g, |s| s.to_string()),
                    conditions: g
                        .conditions
                        .iter()
                        .map(|c| ConditionDoc {
                            attribute: &c.attribute,
                            comparison: comparison(c.predicate.comparison),
                            value: value(&c.predicate.operand),
                            text: runbook::condition_text(c),
                        })
                        .collect(),
                    traffic: g.share.map(Percent::of),
                }
            })
            .collect(),
        min_duration: phase.duration.map(DurationDoc::of),
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
                    runbook: runbook::link(r),
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
                    for_: DurationDoc::of(rb.for_),
                    written: rb.written.clone(),
                    alert: r.alert.clone(),
                    summary: runbook::alert_summary(plan, r),
                    runbook: runbook::link(r),
                })
            })
            .collect(),
        artifacts,
        commands,
    }
}

fn comparison(c: Comparison) -> &'static str {
    match c {
        Comparison::Eq => "==",
        Comparison::Ne => "!=",
        Comparison::Ord(op) => op.as_str(),
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

/// The canary's expected share of requests in phase `i`: the split applies to the users
/// outside the targeted groups (the same estimate `plan validate` uses). None when a
/// targeted group's share is not stated.
pub fn expected_request_share(plan: &CheckedPlan, i: usize) -> Option<Share> {
    if plan.phases[i]
        .groups
        .iter()
        .any(|&g| plan.groups[g].share.is_none())
    {
        return None;
    }
    Share::from_hundredths((plan.canary_request_share(i) * 10_000.0).round() as u16)
}

// ---------------------------------------------------------------------------------------
// Artifacts and commands, shared with the runbook.

/// The canary's compose service.
pub fn canary_service(plan: &CheckedPlan) -> String {
    format!("{}-canary", plan.service.name)
}

/// The generated files a step applies, relative to the output folder.
pub fn artifacts(plan: &CheckedPlan, s: Step) -> Vec<String> {
    let name = s.name(plan);
    let mut v = vec![
        format!("nginx/{name}.conf"),
        format!("compose/{name}.override.yml"),
    ];
    if let Step::Phase(_) = s {
        v.push(format!("prometheus/{name}.rules.yml"));
    }
    v
}

/// Files checked once before the release starts.
fn preparation_artifacts(plan: &CheckedPlan) -> Vec<String> {
    let mut v = vec![ALERTMANAGER_CONFIG.to_string()];
    for i in 0..plan.phases.len() {
        let name = Step::Phase(i).name(plan);
        v.push(format!("prometheus/{name}.rules.yml"));
        v.push(format!("prometheus/{name}.test.yml"));
    }
    v
}

/// An artifact's path as the commands name it: under the plan's folder, shell-quoted.
pub fn run_path(plan: &CheckedPlan, artifact: &str) -> String {
    sh(&format!("{}/{artifact}", plan.name))
}

fn cmd(description: impl Into<String>, run: impl Into<String>) -> Command {
    Command {
        description: description.into(),
        run: run.into(),
    }
}

/// `docker compose -f docker-compose.yml -f <plan>/compose/<step>.override.yml`.
pub fn compose(plan: &CheckedPlan, s: Step) -> String {
    format!(
        "docker compose -f {} -f {}",
        sh(COMPOSE_BASE),
        run_path(plan, &format!("compose/{}.override.yml", s.name(plan)))
    )
}

/// The checks run before the release starts: every rule file and its unit tests, and the
/// Alertmanager configuration, with the tools Prometheus and Alertmanager ship.
pub fn preparation_commands(plan: &CheckedPlan) -> Vec<Command> {
    let mut v = Vec::new();
    for i in 0..plan.phases.len() {
        let name = Step::Phase(i).name(plan);
        v.push(cmd(
            format!("check the alerting rules of phase {name}"),
            format!(
                "promtool check rules {}",
                run_path(plan, &format!("prometheus/{name}.rules.yml"))
            ),
        ));
        v.push(cmd(
            format!("run the unit tests of phase {name}'s rules"),
            format!(
                "promtool test rules {}",
                run_path(plan, &format!("prometheus/{name}.test.yml"))
            ),
        ));
    }
    v.push(cmd(
        "check the Alertmanager configuration",
        format!(
            "amtool check-config {}",
            run_path(plan, ALERTMANAGER_CONFIG)
        ),
    ));
    v.push(cmd(
        "load the Alertmanager configuration",
        ALERTMANAGER_RELOAD,
    ));
    v.push(cmd(
        "check that Prometheus is up",
        "curl -fsS http://localhost:9090/-/healthy",
    ));
    v
}

/// The commands that apply step `s`, in order.
pub fn commands(plan: &CheckedPlan, s: Step) -> Vec<Command> {
    let name = s.name(plan);
    let compose = compose(plan, s);
    let mut v = Vec::new();
    if let Step::Phase(_) = s {
        v.push(cmd(
            format!("check phase {name}'s alerting rules before loading them"),
            format!(
                "promtool check rules {}",
                run_path(plan, &format!("prometheus/{name}.rules.yml"))
            ),
        ));
    }
    let up = match s {
        Step::Phase(i) => format!(
            "start or scale the canary ({}) and route {} of users to it",
            plan.release.to, plan.phases[i].traffic
        ),
        Step::Rollback => format!(
            "switch all traffic back to {} and stop the canary",
            plan.release.from
        ),
        Step::Promotion => format!(
            "run {} as the stable version and retire the canary",
            plan.release.to
        ),
    };
    v.push(cmd(up, format!("{compose} up -d")));
    v.push(cmd(
        "test the NGINX configuration",
        format!("{compose} exec -T {NGINX_SERVICE} nginx -t"),
    ));
    v.push(cmd(
        "reload NGINX without dropping connections",
        format!("{compose} exec -T {NGINX_SERVICE} nginx -s reload"),
    ));
    v.push(cmd(
        match s {
            Step::Phase(_) => format!("load phase {name}'s alerting rules into Prometheus"),
            _ => "reload Prometheus so the canary's rules stop evaluating".to_string(),
        },
        PROMETHEUS_RELOAD,
    ));
    v.push(cmd("show the services' state", format!("{compose} ps")));
    v
}

/// Quotes a word for a POSIX shell when it holds anything but safe characters. Every
/// name reaching a command is already constrained by the schema; this is the second line.
pub fn sh(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:=@%+-".contains(c));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
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

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(
            sh("compose/alpha.override.yml"),
            "compose/alpha.override.yml"
        );
        assert_eq!(sh("a b"), "'a b'");
        assert_eq!(sh("it's"), r"'it'\''s'");
        assert_eq!(sh("$(rm -rf /)"), "'$(rm -rf /)'");
        assert_eq!(sh(""), "''");
    }
}
