//! When things go wrong: rolling back by hand, and troubleshooting.

use super::context::Ctx;
use super::markdown::{applied_files, code, commands_block, heading, md};
use crate::check::Target;
use crate::lower::{self};
use crate::render::commands::{self, Command, compose_command, shell_word};
use crate::render::compose::canary_service;
use crate::render::step::Step;
use std::fmt::{self, Write};

/// Where the site answers on this host: `localhost:<port>`, or the address NGINX listens on.
fn site(p: &crate::check::CheckedPlan) -> String {
    let port = p.routing.listen;
    match p.routing.listen_address {
        None => format!("localhost:{port}"),
        Some(std::net::IpAddr::V4(a)) if !a.is_unspecified() => format!("{a}:{port}"),
        Some(std::net::IpAddr::V6(a)) if !a.is_unspecified() => format!("[{a}]:{port}"),
        Some(_) => format!("localhost:{port}"),
    }
}

pub(super) fn write_manual_rollback(out: &mut String, cx: &Ctx) -> fmt::Result {
    let p = cx.plan;
    let compose = compose_command(p, Step::Rollback);
    let canary = canary_service(p);
    heading(out, 2, "rolling-back", "Rolling back")?;
    writeln!(
        out,
        "Roll back on any rollback alert, or by hand whenever in doubt: service first, \
         analysis later."
    )?;
    writeln!(out)?;
    let name = shell_word(&p.name);
    match &p.deployment.automatic_rollback {
        Some(a) => writeln!(
            out,
            "**Automatic.** {} (listening on {}) receives this plan's firing rollback alerts \
             from Alertmanager and runs the rollback steps below at once, one time however \
             often Alertmanager repeats them. {} says whether it did; if it did not, roll \
             back by hand with {} or the steps below.",
            code(&format!("plan release serve {name}")),
            code(&a.listen.to_string()),
            code(&format!("plan release status {name}")),
            code(&format!("plan release rollback {name} --reason '...'"))
        )?,
        None => writeln!(
            out,
            "**By hand.** A rollback alert pages people; nothing rolls back by itself \
             (`deployment.automatic_rollback` in the plan would). Run {} (the steps below, \
             kept in the release's history), or the steps below one by one.",
            code(&format!("plan release rollback {name} --reason '...'"))
        )?,
    }
    writeln!(out)?;
    match p.deployment.target {
        Target::Compose => writeln!(
            out,
            "1. **Switch traffic back and stop the canary.** If seconds allow, keep \
             the canary's logs first: {}. Then send all traffic back to {} and stop the canary \
             (applies {}):",
            code(&format!(
                "{compose} logs --no-color {canary} > {canary}.log"
            )),
            md(&p.release.from),
            applied_files(p, Step::Rollback)
        )?,
        Target::Host(_) => writeln!(
            out,
            "1. **Switch traffic back.** Send all traffic back to {} (applies {}); the \
             canary's processes are yours to stop once its logs are kept:",
            md(&p.release.from),
            applied_files(p, Step::Rollback)
        )?,
    }
    writeln!(out)?;
    // Indent the block under the list item.
    let mut block = String::new();
    commands_block(&mut block, &commands::step_commands(p, Step::Rollback))?;
    for line in block.lines() {
        if line.is_empty() {
            writeln!(out)?;
        } else {
            writeln!(out, "   {line}")?;
        }
    }
    match p.deployment.target {
        Target::Compose => writeln!(
            out,
            "2. **Check** that {} is no longer running in the output of `ps` above, and that \
             the error rate of {} is back to normal.",
            code(&canary),
            md(&p.release.from)
        )?,
        Target::Host(_) => writeln!(
            out,
            "2. **Check** that responses carry `X-Release-Version: {}` only, and that its \
             error rate is back to normal.",
            md(&p.release.from)
        )?,
    }
    writeln!(
        out,
        "3. **Recover data.** If {} changed data or schemas, restore them to what \
         {} expects (from the backup made in [preparation](#preparation)).",
        md(&p.release.to),
        md(&p.release.from)
    )?;
    writeln!(
        out,
        "4. **Notify.** Critical alerts already went to {}; tell the team the \
         rollback is done and which rule fired.",
        cx.critical_to
    )?;
    writeln!(
        out,
        "5. **Analyse.** Keep the logs and the metrics of the release window; find \
         why the rule fired before planning the next attempt."
    )?;
    writeln!(out)
}

pub(super) fn write_troubleshooting(out: &mut String, cx: &Ctx) -> fmt::Result {
    let p = cx.plan;
    heading(out, 2, "troubleshooting", "Troubleshooting")?;
    writeln!(
        out,
        "**The traffic split does not take effect.** Test and reload NGINX{}:",
        match p.deployment.target {
            Target::Compose => " (use the override of the current phase)",
            Target::Host(_) => "",
        }
    )?;
    writeln!(out)?;
    let step = Step::Phase(0);
    let mut cmds = vec![
        Command::new(
            "test the NGINX configuration",
            commands::nginx(p, step, &["-t"]),
        ),
        Command::new("reload it", commands::nginx(p, step, &["-s", "reload"])),
    ];
    if let Some(h) = &p.routing.force_header {
        cmds.push(Command::shell(
            format!("ask for {} explicitly", p.release.to),
            format!(
                "curl -sS -o /dev/null -w '%{{http_code}}\\n' -H {} http://{}/",
                shell_word(&format!("{h}: canary")),
                site(p)
            ),
        ));
    }
    commands_block(out, &cmds)?;
    writeln!(
        out,
        "**Metrics look wrong or are missing.** Check Prometheus and the recorded series the rules read:"
    )?;
    writeln!(out)?;
    let prometheus = &p.deployment.prometheus;
    let mut cmds = vec![Command::new(
        "is Prometheus up?",
        ["curl", "-fsS", &format!("{prometheus}/-/healthy")],
    )];
    let mut seen = Vec::new();
    for r in cx.rules {
        if seen.contains(&r.metric) {
            continue;
        }
        seen.push(r.metric);
        let m = &p.metrics[r.metric];
        cmds.push(Command::new(
            format!("{} of both tracks", m.name),
            [
                "curl".to_string(),
                "-fsS".into(),
                format!("{prometheus}/api/v1/query"),
                "--data-urlencode".into(),
                format!("query={}", lower::record_name(m)),
            ],
        ));
    }
    commands_block(out, &cmds)?;
    writeln!(
        out,
        "**The automatic rollback did not happen.** Roll back by hand ([Rolling back](#rolling-back)) and check the services:"
    )?;
    writeln!(out)?;
    let state: Vec<Command> = commands::services_state(p, Step::Rollback)
        .into_iter()
        .map(|c| Command {
            description: "the services' state".into(),
            ..c
        })
        .collect();
    if !state.is_empty() {
        commands_block(out, &state)?;
    }
    writeln!(
        out,
        "**In an emergency:** roll back at once; tell the team ({}); keep the logs and \
         metrics; analyse afterwards.",
        cx.critical_to
    )?;
    Ok(())
}
