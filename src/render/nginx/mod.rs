//! The NGINX artifacts: one drop-in for `conf.d/` (http context) per step of the plan.
//!
//! `nginx/<phase>.conf` splits traffic between the compose services `<service>` (stable) and
//! `<service>-canary`: a request goes to the canary when the force header says `canary`,
//! else when the stable side is not forced and its group header names a group the phase
//! targets, else when its sticky key (cookie, header or client address; the client address
//! when the cookie or header is missing) hashes into the phase's share. The group and force
//! headers count only from the plan's `trusted_networks` (a `geo` block): from anywhere else
//! they are ignored, so a client cannot pick the canary by sending them. `nginx/rollback.conf`
//! sends everything to the stable service running the old version, `nginx/promotion.conf`
//! everything to the stable service running the new one; neither names the canary service,
//! which is stopped then.
//!
//! Services are reached through `proxy_pass http://$<prefix>_backend`, a variable, so NGINX
//! looks their names up through `resolver` (Docker's embedded DNS by default) when requests
//! need them and again every 10 s: a restarted or rescheduled container's new address is used
//! without a reload, and `nginx -t` does not need the services to be up. (A name in an
//! `upstream` block is resolved once, at load time, in open-source NGINX before 1.27.3,
//! which would answer 502 until the next reload.) The price is that connections to the
//! services are not kept alive between requests.
//!
//! Every variable and log format carries the prefix `plan_<name>` (dashes become
//! underscores, which NGINX variable names need), so several plans' drop-ins can coexist.
//! NGINX's default variables and map hashes hold names of at most 46 characters, which the
//! schema's caps on plan names (32) and group names (40) respect: the longest variable is
//! `plan_<name>_version`. Every response carries `X-Release-Track` and `X-Release-Version`,
//! and the access log records both.
//!
//! No injection: the schema constrains every value, and each one is quoted or checked
//! again for the place it goes (`quoting`). The template can print nothing else: its
//! formatter refuses any string this module has not marked safe.

pub mod quoting;

use super::artifact::{Artifact, header};
use super::compose::canary_service;
use super::step::Step;
use crate::check::CheckedPlan;
use crate::model::{Share, Sticky};
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior, Value, context};
use quoting::{
    Piece, Refused, address, comment, comment_block, cookie_var, expand, header_var, ident,
    map_key, quote, server_name, upstream_server,
};

const TEMPLATE: &str = include_str!("nginx.conf.j2");

/// Renders `nginx/<step>.conf` for every step of `plan`, in step order.
pub fn render(plan: &CheckedPlan) -> Vec<Artifact> {
    Step::all(plan)
        .into_iter()
        .map(|step| Artifact {
            path: format!("nginx/{}.conf", step.name(plan)),
            contents: render_step(plan, step).unwrap_or_else(|e| refused_file(plan, step, &e)),
        })
        .collect()
}

/// What `listen` takes: the port, after the address when the plan names one.
fn listen(plan: &CheckedPlan) -> String {
    let port = plan.routing.listen;
    match plan.routing.listen_address {
        None => port.to_string(),
        Some(std::net::IpAddr::V4(a)) => format!("{a}:{port}"),
        Some(std::net::IpAddr::V6(a)) => format!("[{a}]:{port}"),
    }
}

/// Renders one step, or says which value could not be written safely.
pub(crate) fn render_step(plan: &CheckedPlan, step: Step) -> Result<String, Refused> {
    let prefix = ident(&format!("plan_{}", plan.name.replace('-', "_")))?;
    let service = &plan.service;
    let split = matches!(step, Step::Phase(_));
    let stable_version = match step {
        Step::Promotion => &plan.release.to,
        _ => &plan.release.from,
    };
    let mut ctx = context! {
        header => safe(comment_block(&header(plan, "#"))),
        about => about(plan, step).iter().map(|l| safe(comment(l))).collect::<Vec<_>>(),
        prefix => safe(prefix.clone()),
        stable_server => safe(upstream_server(&service.name, service.port)?),
        stable_version => safe(quote(stable_version)?),
        split => split,
        listen => safe(listen(plan)),
        server_name => safe(server_name(&plan.routing.server_name)?),
        resolver => safe(address(&plan.routing.resolver.to_string())?),
        access_log => safe(match &plan.routing.access_log {
            Some(path) => format!("{} {prefix}", quote(path)?),
            None => "off".to_string(),
        }),
        log_format => safe(log_format(plan, step, &prefix)?),
        track => safe(quote("stable")?),
    };
    if let Step::Phase(i) = step {
        let phase = &plan.phases[i];
        let user_var = match &plan.routing.sticky {
            Sticky::Cookie(name) => Some(cookie_var(name)?),
            Sticky::Header(name) => Some(header_var(name)?),
            Sticky::ClientAddress(_) => None,
        };
        let key_var = match user_var {
            Some(_) => format!("{prefix}_user"),
            None => "remote_addr".to_string(),
        };
        let groups: Vec<Value> = phase
            .groups
            .iter()
            .map(|&g| map_key(&plan.groups[g].name).map(safe))
            .collect::<Result<_, _>>()?;
        let group_source = match &plan.routing.group_header {
            Some(h) if !groups.is_empty() => Some(header_var(h)?),
            _ => None,
        };
        let force_source = plan
            .routing
            .force_header
            .as_deref()
            .map(header_var)
            .transpose()?;
        // The chain of maps, each falling back to the one before; the last one is `_track`.
        let track = format!("{prefix}_track");
        let grouped = format!("{prefix}_grouped");
        let split_var = match (&group_source, &force_source) {
            (None, None) => track.clone(),
            _ => format!("{prefix}_split"),
        };
        let trusted: Vec<Value> = if group_source.is_some() || force_source.is_some() {
            plan.routing
                .trusted_networks
                .iter()
                .map(|n| address(&n.to_string()).map(safe))
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        let group_map = group_source.map(|source| {
            let target = if force_source.is_some() {
                &grouped
            } else {
                &track
            };
            context! {
                source => safe(source),
                target => safe(target.clone()),
                groups => groups,
                fallback => safe(split_var.clone()),
            }
        });
        let force_map = force_source.map(|source| {
            let fallback = if group_map.is_some() {
                &grouped
            } else {
                &split_var
            };
            context! {
                source => safe(source),
                target => safe(track.clone()),
                fallback => safe(fallback.clone()),
            }
        });
        ctx = context! {
            canary_server => safe(upstream_server(&canary_service(plan), service.port)?),
            canary_version => safe(quote(&plan.release.to)?),
            user_var => user_var.map(safe),
            split_key => safe(expand(&[Piece::Text(&format!("{}:", plan.name)), Piece::Var(&key_var)])?),
            split_var => safe(split_var.clone()),
            canary_percent => percent(phase.traffic).map(safe),
            trusted => trusted,
            group_map => group_map,
            force_map => force_map,
            ..ctx
        };
    }
    environment()
        .get_template("nginx.conf")
        .and_then(|t| t.render(ctx))
        .map_err(|e| Refused::new("the NGINX template", e.to_string()))
}

/// The template environment, with the template compiled once: strict about undefined
/// values, and printing nothing but the values this module marked safe (numbers aside).
fn environment() -> &'static Environment<'static> {
    static ENV: std::sync::OnceLock<Environment<'static>> = std::sync::OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = new_environment();
        // The template is part of the binary; a syntax error in it fails every render test.
        let _ = env.add_template("nginx.conf", TEMPLATE);
        env
    })
}

fn new_environment() -> Environment<'static> {
    let mut env = Environment::empty();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    env.set_formatter(|out, _state, value| {
        if value.is_safe() || value.is_number() {
            write!(out, "{value}").map_err(Error::from)
        } else {
            Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("`{value}` reached the NGINX template without being quoted"),
            ))
        }
    });
    env
}

fn safe(s: String) -> Value {
    Value::from_safe_string(s)
}

/// What the file does, for the people reading it (one comment line each).
fn about(plan: &CheckedPlan, step: Step) -> Vec<String> {
    let (from, to) = (&plan.release.from, &plan.release.to);
    let service = &plan.service.name;
    let canary = canary_service(plan);
    match step {
        Step::Phase(i) => {
            let phase = &plan.phases[i];
            let key = match &plan.routing.sticky {
                Sticky::Cookie(c) => format!("the cookie `{c}`, else the client address"),
                Sticky::Header(h) => format!("the header `{h}`, else the client address"),
                Sticky::ClientAddress(_) => "the client address".to_string(),
            };
            let mut v = vec![
                format!(
                    "Plan `{}`, phase `{}` ({} of {}): {} of users go to the canary {to} (`{canary}`),",
                    plan.name,
                    phase.name,
                    i + 1,
                    plan.phases.len(),
                    phase.traffic
                ),
                format!("the others stay on {from} (`{service}`). Users are told apart by {key}."),
            ];
            let mut headers = false;
            if let (Some(h), false) = (&plan.routing.group_header, phase.groups.is_empty()) {
                let names: Vec<&str> = phase
                    .groups
                    .iter()
                    .map(|&g| plan.groups[g].name.as_str())
                    .collect();
                v.push(format!("`{h}: {}` goes to the canary.", names.join("|")));
                headers = true;
            }
            if let Some(h) = &plan.routing.force_header {
                v.push(format!(
                    "`{h}: canary` or `{h}: stable` pins a request to that version."
                ));
                headers = true;
            }
            if headers {
                let networks: Vec<String> = plan
                    .routing
                    .trusted_networks
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                v.push(format!(
                    "These headers count only from {}; other clients' are ignored.",
                    networks.join(", ")
                ));
            }
            v
        }
        Step::Rollback => vec![
            format!(
                "Plan `{}`, rollback: every request goes to the stable version {from} (`{service}`);",
                plan.name
            ),
            format!("the canary {to} (`{canary}`) is not used."),
        ],
        Step::Promotion => vec![format!(
            "Plan `{}`, promotion: every request goes to the new version {to}, now run by `{service}`.",
            plan.name
        )],
    }
}

/// The access log line: the usual combined format, then the plan, step, track and version.
fn log_format(plan: &CheckedPlan, step: Step, prefix: &str) -> Result<String, Refused> {
    use Piece::{Text, Var};
    let track = format!("{prefix}_track");
    let version = format!("{prefix}_version");
    let combined = [
        Var("remote_addr"),
        Text(" - "),
        Var("remote_user"),
        Text(" ["),
        Var("time_local"),
        Text("] \""),
        Var("request"),
        Text("\" "),
        Var("status"),
        Text(" "),
        Var("body_bytes_sent"),
        Text(" \""),
        Var("http_referer"),
        Text("\" \""),
        Var("http_user_agent"),
        Text("\""),
    ];
    let tail = format!(" plan={} step={} track=", plan.name, step.name(plan));
    let mut pieces = combined.to_vec();
    pieces.extend([
        Text(&tail),
        Var(&track),
        Text(" version="),
        Var(&version),
        Text(" upstream="),
        Var("upstream_addr"),
        Text(" request_time="),
        Var("request_time"),
    ]);
    expand(&pieces)
}

/// `5%`, `12.5%`, `0.05%` for `split_clients`; None for 0%, which NGINX refuses there.
fn percent(share: Share) -> Option<String> {
    let h = share.hundredths();
    match (h / 100, h % 100) {
        (0, 0) => None,
        (whole, 0) => Some(format!("{whole}%")),
        (whole, frac) if frac % 10 == 0 => Some(format!("{whole}.{}%", frac / 10)),
        (whole, frac) => Some(format!("{whole}.{frac:02}%")),
    }
}

/// A file NGINX refuses to load, written in place of one that could not be rendered safely:
/// `nginx -t` fails on it, so a reload keeps the running configuration.
fn refused_file(plan: &CheckedPlan, step: Step, why: &Refused) -> String {
    format!(
        "{}# plan could not render `{}` safely: {}\n# This file is invalid on purpose, so that NGINX keeps its running configuration.\nplan_render_refused;\n",
        comment_block(&header(plan, "#")),
        comment(step.name(plan)),
        comment(&why.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percents_for_split_clients() {
        let p = |h| percent(Share::from_hundredths(h).unwrap());
        assert_eq!(p(0), None);
        assert_eq!(p(1).as_deref(), Some("0.01%"));
        assert_eq!(p(500).as_deref(), Some("5%"));
        assert_eq!(p(1250).as_deref(), Some("12.5%"));
        assert_eq!(p(1234).as_deref(), Some("12.34%"));
        assert_eq!(p(10_000).as_deref(), Some("100%"));
    }
}
