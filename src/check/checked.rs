//! Stage 4's output: a plan whose references resolve, whose thresholds are in their metric's
//! unit and whose phases are ordered and non-empty. `render` and `simulate` start here and
//! never look at the raw plan's strings again.

use super::catalog::Builtin;
use crate::model::{AfterMaxHold, Notifications, Release};
use crate::model::{
    Bad, Condition, Duration, ForDuration, Network, Op, Resolver, Share, Sticky, Unit,
};
use crate::promql::MetricExpr;

#[derive(Debug, Clone)]
pub struct CheckedPlan {
    pub name: String,
    /// The file the plan came from, as the user named it (for "generated from" headers).
    pub(crate) source_name: String,
    pub release: Release,
    pub service: Service,
    pub routing: Routing,
    pub groups: Vec<Group>,
    pub(crate) traffic: Traffic,
    pub monitoring: Monitoring,
    /// Never empty; the last phase is at 100%.
    pub phases: Vec<Phase>,
    /// Every metric a gate or rule uses, in first-use order; then the request counts that
    /// rules' `min_requests` guards read ([`Metric::is_request_count`]), which no rule
    /// compares.
    pub(crate) metrics: Vec<Metric>,
    pub(crate) gates: Vec<GateRule>,
    pub(crate) rollbacks: Vec<RollbackRule>,
    /// What a failed gate at a phase's end does.
    pub(crate) gate_policy: GatePolicy,
    /// How long the last phase (100%) is watched before the release is complete: its
    /// `duration`, else [`DEFAULT_WATCH`](super::gate_policy::DEFAULT_WATCH).
    pub(crate) watch: Duration,
    /// The silent-canary rule, unless the plan turns it off.
    pub(crate) silent_canary: Option<SilentRule>,
    pub(crate) notifications: Notifications,
    /// The scenario file `plan simulate` uses without `--scenarios`, as the plan names it
    /// (relative to the plan's folder).
    pub(crate) scenario_file: Option<String>,
    pub deployment: Deployment,
}

/// What a release does when a phase's gates fail at its end (`gate_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GatePolicy {
    /// Roll back at once.
    Rollback,
    /// Stay in the phase, re-checking the gates at every evaluation: advance at the first
    /// at which none fires; after `max` held, `then`.
    Hold { max: Duration, then: AfterMaxHold },
}

impl CheckedPlan {
    /// The canary's expected share of all requests in phase `i`, 0.0..=1.0: the phase's
    /// split applies to the users outside its targeted groups, which all go to the canary
    /// (groups whose share is not stated count as none). The one estimate used by the
    /// thin-traffic warning, the simulator and the manifest.
    pub(crate) fn canary_request_share(&self, i: usize) -> f64 {
        let phase = &self.phases[i];
        let split = phase.traffic.fraction();
        let targeted: f64 = phase
            .groups
            .iter()
            .filter_map(|&g| self.groups[g].share)
            .map(|s| s.fraction())
            .sum::<f64>()
            .min(1.0);
        (split + (1.0 - split) * targeted).min(1.0)
    }

    /// Whether `watch` is the default (the last phase states no duration).
    pub(crate) fn watch_is_default(&self) -> bool {
        self.phases.last().is_none_or(|p| p.duration.is_none())
    }

    /// The canary's replicas in phase `i`: the phase's share of `service.replicas`, rounded
    /// up so that no canary replica carries more load than a stable one does at full
    /// traffic, and at least 1 in every phase (even at 0% the phase's NGINX config names the
    /// canary service, and targeted groups or pinned testers may reach it). What the
    /// rendered compose files start, and the instances the simulator's gauges come from.
    pub(crate) fn canary_replicas(&self, i: usize) -> u32 {
        canary_replicas(self.service.replicas, self.phases[i].traffic.hundredths())
    }

    /// Whether phase `i` sends the canary users: a share above 0% or a targeted group.
    /// The silent-canary rule runs only in such phases.
    pub(crate) fn canary_serves(&self, i: usize) -> bool {
        let phase = &self.phases[i];
        phase.traffic.fraction() > 0.0 || !phase.groups.is_empty()
    }
}

/// [`CheckedPlan::canary_replicas`] of `replicas` at a share in hundredths of a percent.
/// Integer arithmetic: exact.
fn canary_replicas(replicas: u32, share_hundredths: u16) -> u32 {
    let scaled = u64::from(replicas) * u64::from(share_hundredths);
    let up = scaled.div_ceil(10_000);
    u32::try_from(up)
        .unwrap_or(replicas)
        .clamp(1, replicas.max(1))
}

/// The id of the silent-canary rule (its alert: `CanaryRollbackSilentCanary`).
pub(crate) const SILENT_CANARY_ID: &str = "silent_canary";

/// `monitoring.silent_canary`: no scrape target of the canary up (or none listed) for
/// `after`, in a phase that sends it users, rolls the release back.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SilentRule {
    /// Index into `CheckedPlan::metrics`: `targets_up`.
    pub(crate) metric: usize,
    pub(crate) after: Duration,
    /// Whether `after` is the default (the plan does not state it).
    pub(crate) default: bool,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub(crate) image: String,
    pub(crate) port: u16,
    pub(crate) replicas: u32,
}

#[derive(Debug, Clone)]
pub struct Routing {
    pub(crate) listen: u16,
    /// The address NGINX listens on; None for every address.
    pub(crate) listen_address: Option<std::net::IpAddr>,
    /// The access log's path; None for `off`.
    pub(crate) access_log: Option<String>,
    pub(crate) server_name: String,
    pub sticky: Sticky,
    pub group_header: Option<String>,
    pub force_header: Option<String>,
    /// Where the group and force headers are honoured from; never empty when either
    /// header is set.
    pub trusted_networks: Vec<Network>,
    pub(crate) resolver: Resolver,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub(crate) conditions: Vec<Condition>,
    /// Expected share of all requests, when the plan states it.
    pub(crate) share: Option<Share>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Traffic {
    pub(crate) requests_per_second: Option<f64>,
    pub(crate) users_per_day: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Monitoring {
    pub evaluation_interval: Duration,
    pub(crate) scrape_interval: Duration,
    pub(crate) window: Duration,
    pub(crate) runbook_url: Option<String>,
    /// How long the canary may be silent before the release rolls back (None: `off`).
    pub(crate) silent_canary: Option<Duration>,
    /// Whether `silent_canary` is the default (the plan does not state it).
    pub(crate) silent_canary_default: bool,
}

#[derive(Debug, Clone)]
pub struct Phase {
    pub name: String,
    pub traffic: Share,
    /// Indices into `CheckedPlan::groups`.
    pub groups: Vec<usize>,
    /// None only for the last phase, which runs on.
    pub duration: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct Metric {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) unit: Unit,
    pub(crate) bad: Bad,
    /// How the metric is computed for one track.
    pub(crate) expr: MetricExpr,
    /// Set when the query is the built-in default; None for custom or overridden queries.
    pub(crate) builtin: Option<Builtin>,
    /// A custom or overriding query as the plan writes it (`$service`, `$window` and
    /// `$track` unfilled), to place findings inside it.
    pub(crate) query: Option<String>,
}

impl Metric {
    /// Whether this is the request count a `min_requests` guard reads (no rule compares
    /// it; see [`MinRequests`]).
    pub(crate) fn is_request_count(&self) -> bool {
        matches!(self.expr, MetricExpr::Increase { .. })
    }

    /// Whether this is a metric of the plan's own (defined or overridden under `metrics:`),
    /// which scenario files model by name: neither a built-in query nor a guard's count.
    pub(crate) fn is_custom(&self) -> bool {
        self.builtin.is_none() && !self.is_request_count()
    }
}

/// A limit in its metric's unit: a value, or a factor of the stable version's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    Absolute(f64),
    /// `factor × stable`, and optionally an absolute comparison that goes with it, read in
    /// the same sense as the rule's own comparison: for a gate (healthy side) the level that
    /// is healthy too (`<= 1.5x stable or <= 1%`: `(Le, 0.01)`); for a rollback (bad side)
    /// the level the canary must also be past (`3x stable and above 1%`: `(Gt, 0.01)`).
    RelativeToStable {
        factor: f64,
        also: Option<(Op, f64)>,
    },
}

/// A gate: the metric must satisfy `value op limit` for a phase to advance.
#[derive(Debug, Clone)]
pub(crate) struct GateRule {
    /// Index into `CheckedPlan::metrics`.
    pub(crate) metric: usize,
    pub(crate) op: Op,
    pub(crate) limit: Limit,
    /// The gate as written (`< 5%`), for people.
    pub(crate) written: String,
}

impl GateRule {
    /// The limit in the sense of the gate's alert (the bad side): a healthy `or <= 1%`
    /// becomes `and > 1%`.
    pub(crate) fn alert_limit(&self) -> Limit {
        match self.limit {
            Limit::RelativeToStable { factor, also } => Limit::RelativeToStable {
                factor,
                also: also.map(|(op, v)| (op.negate(), v)),
            },
            absolute => absolute,
        }
    }
}

/// A rollback rule: the metric past `limit` in its bad direction for `for_` rolls back.
#[derive(Debug, Clone)]
pub struct RollbackRule {
    /// Phase-independent id, unique in the plan.
    pub(crate) id: String,
    pub(crate) metric: usize,
    pub(crate) limit: Limit,
    /// The alert's `for`; zero fires at the first evaluation past the limit.
    pub(crate) for_: ForDuration,
    /// The threshold as written (`0.1`, `5s`), for people.
    pub(crate) written: String,
    /// The minimum-traffic guard (`min_requests`), if the condition has one.
    pub(crate) min_requests: Option<MinRequests>,
}

/// A rollback rule's minimum-traffic guard: the rule holds only at evaluations where the
/// canary's requests in the rate window (`increase()` of the counter the metric's rate
/// reads, over `monitoring.window`) are at least `min`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinRequests {
    /// Index into `CheckedPlan::metrics`: the canary's request count over the window
    /// ([`Metric::is_request_count`]).
    pub(crate) count: usize,
    pub(crate) min: u64,
}

impl MinRequests {
    /// Whether the guard lets the rule count, given the canary's request count (absent or
    /// NaN: no, as `x >= N` in PromQL).
    #[inline]
    pub(crate) fn passes(&self, count: Option<f64>) -> bool {
        count.is_some_and(|c| c >= self.min as f64)
    }
}

impl RollbackRule {
    /// The comparison that means "bad": `>` for metrics that are bad when high.
    pub(crate) fn bad_op(&self, metric: &Metric) -> Op {
        match metric.bad {
            Bad::High => Op::Gt,
            Bad::Low => Op::Lt,
        }
    }
}

/// Where the release runs (`deployment`), checked: what applies each step, and where
/// Prometheus, Alertmanager and the automatic rollback answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    pub target: Target,
    /// Base URLs, without a trailing `/`.
    pub prometheus: String,
    pub alertmanager: String,
    pub automatic_rollback: Option<AutomaticRollback>,
}

/// What applies each step.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// `docker compose` with the step's override, NGINX reloaded in its container.
    Compose,
    /// NGINX and Prometheus run on the host: the step's files are installed where they read
    /// them.
    Host(HostTarget),
}

#[derive(Debug, Clone, PartialEq)]
pub struct HostTarget {
    /// Where each step's NGINX file is installed.
    pub nginx_conf: String,
    /// The program that runs NGINX and its first arguments.
    pub nginx: Vec<String>,
    /// Where each phase's rules file is installed.
    pub rules_file: String,
}

/// `plan release serve`: where it listens, the URL Alertmanager posts to, and the file
/// holding the token both read.
#[derive(Debug, Clone, PartialEq)]
pub struct AutomaticRollback {
    pub listen: std::net::SocketAddr,
    pub url: String,
    pub token_file: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_follows_the_share_up_and_keeps_one() {
        assert_eq!(canary_replicas(4, 500), 1); // 0.2 -> 1
        assert_eq!(canary_replicas(4, 2000), 1); // 0.8 -> 1
        assert_eq!(canary_replicas(4, 2500), 1); // exactly 1
        assert_eq!(canary_replicas(4, 2501), 2); // 1.0004 -> 2
        assert_eq!(canary_replicas(4, 5000), 2);
        assert_eq!(canary_replicas(4, 10_000), 4);
        assert_eq!(canary_replicas(10, 0), 1); // a phase always runs one
        assert_eq!(canary_replicas(1000, 1), 1);
        assert_eq!(canary_replicas(1000, 9_999), 1000);
        assert_eq!(canary_replicas(1000, 10_000), 1000);
        for r in 1..=50u32 {
            for h in (0..=10_000u16).step_by(7) {
                let c = canary_replicas(r, h);
                assert!((1..=r).contains(&c));
                // Never fewer replicas per unit of traffic than the stable at 100%.
                assert!(u64::from(c) * 10_000 >= u64::from(r) * u64::from(h));
            }
        }
    }
}
