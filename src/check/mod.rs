//! Stage 4: semantic checks beyond the schema. Takes the typed plan and returns a
//! [`CheckedPlan`] plus warnings, or every error found (never just the first).

mod catalog;
pub(crate) use catalog::REQUESTS;
mod checked;
mod deployment;
mod gate_policy;
mod gates;
mod limit;
mod metrics;
mod min_requests;
mod monitoring;
mod notifications;
mod phases;
mod query;
mod rollbacks;
mod routing;
mod rules;
mod service;
mod thin_traffic;

pub use catalog::{BUILTINS, BuiltinDef};
pub(crate) use catalog::{Builtin, builtin};
pub use checked::*;
pub(crate) use min_requests::request_count;
pub(crate) use thin_traffic::{error_threshold, thin_phase, thin_traffic};

use crate::diagnostic::Diagnostic;
use crate::model::{self, Plan, Resolver, Sticky};
use routing::DEFAULT_ACCESS_LOG;
use serde_json::Value;

/// The outcome of checking one plan: the checked plan when there is no error, and every
/// finding (errors and warnings) either way.
pub(crate) struct Checked {
    pub(crate) plan: Option<CheckedPlan>,
    pub(crate) findings: Vec<Diagnostic>,
}

/// Checks `plan` (read from `doc`, which tells how values were written, e.g. a bare
/// `0.05` share). `source_name` is recorded for generated-file headers.
pub(crate) fn check(plan: &Plan, doc: &Value, source_name: &str) -> Checked {
    let mut f = Vec::new();
    service::check(plan, &mut f);
    routing::check(plan, &mut f);
    notifications::check(plan, &mut f);
    let deployment = deployment::check(plan, &mut f);
    let listen_address = routing::listen_address(plan, &mut f);
    let groups = phases::groups(plan, &mut f);
    let phases = phases::phases(plan, doc, &groups, &mut f);
    let monitoring = monitoring::monitoring(plan, &mut f);
    monitoring::evaluation_fits_rules(plan, &monitoring, &mut f);
    let rules = rules::rules(plan, &monitoring, &phases, &mut f);
    let gate_policy = gate_policy::gate_policy(plan, &monitoring, &mut f);
    if plan.rollback_conditions.is_empty() {
        f.push(
            Diagnostic::warning("no-rollback", "", "no `rollback_conditions`: nothing rolls this release back automatically")
                .with_hint("add at least an error-rate condition, e.g. `- {metric: error_rate, threshold: 10%, duration: 5m}`"),
        );
    }
    let notifications = plan.notifications.clone().unwrap_or(model::Notifications {
        slack: None,
        email: None,
        sms: None,
    });
    if !plan.rollback_conditions.is_empty()
        && notifications.slack.is_none()
        && notifications.email.is_none()
        && notifications.sms.is_none()
    {
        f.push(
            Diagnostic::warning(
                "no-notifications",
                "",
                "no `notifications`: nobody is told when the release rolls back",
            )
            .with_hint("add `notifications:` with slack, email or sms"),
        );
    }
    let Some(deployment) = deployment.filter(|_| !f.iter().any(Diagnostic::is_error)) else {
        return Checked {
            plan: None,
            findings: f,
        };
    };
    let traffic = plan
        .traffic
        .as_ref()
        .map_or_else(Traffic::default, |t| Traffic {
            requests_per_second: t.requests_per_second,
            users_per_day: t.users_per_day,
        });
    let routing = Routing {
        listen: plan.routing.listen,
        listen_address,
        access_log: match plan.routing.access_log.as_deref() {
            Some("off") => None,
            Some(path) => Some(path.to_string()),
            None => Some(DEFAULT_ACCESS_LOG.to_string()),
        },
        server_name: plan
            .routing
            .server_name
            .clone()
            .unwrap_or_else(|| "_".into()),
        sticky: plan.routing.sticky.clone(),
        group_header: plan.routing.group_header.clone(),
        force_header: plan.routing.force_header.clone(),
        trusted_networks: plan.routing.trusted_networks.clone().unwrap_or_default(),
        resolver: plan.routing.resolver.unwrap_or(Resolver::DOCKER),
    };
    debug_assert!(!matches!(routing.sticky, Sticky::ClientAddress(false)));
    let watch = phases
        .last()
        .and_then(|p| p.duration)
        .unwrap_or(gate_policy::DEFAULT_WATCH);
    let checked = CheckedPlan {
        name: plan.name.clone(),
        source_name: source_name.to_string(),
        release: plan.release.clone(),
        service: Service {
            name: plan.service.name.clone(),
            image: plan.service.image.clone(),
            port: plan.service.port,
            replicas: plan.service.replicas.unwrap_or(1),
        },
        routing,
        groups,
        traffic,
        monitoring,
        phases,
        metrics: rules.metrics,
        gates: rules.gates,
        rollbacks: rules.rollbacks,
        gate_policy,
        watch,
        silent_canary: rules.silent_canary,
        notifications,
        scenario_file: plan.simulation.as_ref().and_then(|s| s.scenarios.clone()),
        deployment,
    };
    if let Some(rps) = checked.traffic.requests_per_second {
        f.extend(thin_traffic(&checked, rps));
    }
    Checked {
        plan: Some(checked),
        findings: f,
    }
}
