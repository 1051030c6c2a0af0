//! Checks `deployment` and gives its checked form: the target with every path it needs,
//! the URLs of Prometheus and Alertmanager, and the automatic rollback's listener.
//!
//! The schema has checked each value's shape; here what depends on several: a `host`
//! target needs both files it installs and a DNS server that knows the services (Docker's
//! answers only in containers), a compose target takes no host paths, the listener is an
//! address, and the URL Alertmanager posts to is known (from a container, never the
//! host's loopback).

use super::checked::{AutomaticRollback, Deployment, HostTarget, Target};
use crate::diagnostic::Diagnostic;
use crate::model::{self, Plan};
use std::net::SocketAddr;

/// Where Prometheus and Alertmanager answer by default: their own default ports, on the
/// host the commands run on.
const PROMETHEUS: &str = "http://localhost:9090";
const ALERTMANAGER: &str = "http://localhost:9093";
/// Where `plan release serve` listens by default: loopback only.
const LISTEN: &str = "127.0.0.1:9797";

/// The checked deployment; None (with errors in `f`) when it does not hold together.
pub(super) fn check(plan: &Plan, f: &mut Vec<Diagnostic>) -> Option<Deployment> {
    let d = plan.deployment.clone().unwrap_or_default();
    let errors = f.len();
    let base = |u: Option<String>, default: &str| {
        u.map_or_else(
            || default.to_string(),
            |u| u.trim_end_matches('/').to_string(),
        )
    };
    let target = match d.target.unwrap_or(model::Target::Compose) {
        model::Target::Compose => {
            for (key, set) in [
                ("nginx_conf", d.nginx_conf.is_some()),
                ("nginx", d.nginx.is_some()),
                ("rules_file", d.rules_file.is_some()),
            ] {
                if set {
                    f.push(
                        Diagnostic::error(
                            "deployment-target",
                            format!("/deployment/{key}"),
                            format!("`{key}` is for `target: host`; under docker compose each step's override mounts the files"),
                        )
                        .with_hint(format!("remove `{key}`, or set `target: host`")),
                    );
                }
            }
            Target::Compose
        }
        model::Target::Host => {
            if plan.routing.resolver.is_none() {
                f.push(
                    Diagnostic::error(
                        "deployment-target",
                        "/deployment/target",
                        format!(
                            "on a host NGINX finds `{0}` and `{0}-canary` through a DNS server, and the default resolver, 127.0.0.11, is Docker's, which answers only inside containers: every request would fail",
                            plan.service.name
                        ),
                    )
                    .with_hint("set `routing.resolver` to a DNS server that knows both services' addresses"),
                );
            }
            let mut need = |key: &str, v: Option<String>| {
                if v.is_none() {
                    f.push(
                        Diagnostic::error(
                            "deployment-target",
                            "/deployment",
                            format!("`target: host` installs each step's files, and needs `{key}`: where to put them"),
                        )
                        .with_hint(match key {
                            "nginx_conf" => "add `nginx_conf: /etc/nginx/conf.d/<plan>.conf` (a file your nginx.conf includes)",
                            _ => "add `rules_file: /etc/prometheus/rules/<plan>.rules.yml` (a file Prometheus' `rule_files` matches)",
                        }),
                    );
                }
                v
            };
            let nginx_conf = need("nginx_conf", d.nginx_conf);
            let rules_file = need("rules_file", d.rules_file);
            match (nginx_conf, rules_file) {
                (Some(nginx_conf), Some(rules_file)) if nginx_conf == rules_file => {
                    f.push(Diagnostic::error(
                        "deployment-target",
                        "/deployment/rules_file",
                        "`rules_file` is `nginx_conf`: one file cannot hold both",
                    ));
                    Target::Compose
                }
                (Some(nginx_conf), Some(rules_file)) => Target::Host(HostTarget {
                    nginx_conf,
                    nginx: d.nginx.unwrap_or_else(|| vec!["nginx".into()]),
                    rules_file,
                }),
                _ => Target::Compose,
            }
        }
    };
    let compose = !matches!(d.target, Some(model::Target::Host));
    let automatic_rollback = d.automatic_rollback.and_then(|a| automatic(a, compose, f));
    (f.len() == errors).then(|| Deployment {
        target,
        prometheus: base(d.prometheus, PROMETHEUS),
        alertmanager: base(d.alertmanager, ALERTMANAGER),
        automatic_rollback,
    })
}

fn automatic(
    a: model::AutomaticRollback,
    compose: bool,
    f: &mut Vec<Diagnostic>,
) -> Option<AutomaticRollback> {
    const AT: &str = "/deployment/automatic_rollback";
    let text = a.listen.as_deref().unwrap_or(LISTEN);
    let Ok(listen) = text.parse::<SocketAddr>() else {
        f.push(
            Diagnostic::error(
                "deployment-listen",
                format!("{AT}/listen"),
                format!("`{text}` is not an IP address and port"),
            )
            .with_hint("write it like `127.0.0.1:9797` or `[::1]:9797`"),
        );
        return None;
    };
    if !listen.ip().is_loopback() {
        f.push(
            Diagnostic::warning(
                "deployment-listen",
                format!("{AT}/listen"),
                format!("`plan release serve` would listen on {listen}, beyond loopback: whoever reaches it with the token can roll the release back"),
            )
            .with_hint("listen on loopback (`127.0.0.1:9797`) unless Alertmanager runs on another host, and then firewall the port"),
        );
    }
    let url = match a.url {
        Some(u) => u,
        // Alertmanager in a container reaches no loopback address of the host.
        None if compose => {
            f.push(
                Diagnostic::error(
                    "deployment-listen",
                    AT,
                    "under docker compose Alertmanager runs in a container, which cannot reach `plan release serve` on the host's loopback: say which URL it posts to",
                )
                .with_hint("add `url: http://host.docker.internal:9797/alerts` (with `extra_hosts: [\"host.docker.internal:host-gateway\"]` on the alertmanager service) and `listen:` on the docker bridge's address, e.g. `172.17.0.1:9797`"),
            );
            return None;
        }
        None if listen.ip().is_unspecified() => {
            f.push(
                Diagnostic::error(
                    "deployment-listen",
                    AT,
                    format!("`plan release serve` listens on every address ({listen}): say which one Alertmanager posts to"),
                )
                .with_hint("add `url: http://<this host's address>:<port>/alerts`"),
            );
            return None;
        }
        None => format!("http://{listen}/alerts"),
    };
    Some(AutomaticRollback {
        listen,
        url,
        token_file: a.token_file,
    })
}
