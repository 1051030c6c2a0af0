//! The files each step applies and the shell commands that apply them, defined once: the
//! manifest gives them to pipelines, the runbook to people.
//!
//! Artifacts are named relative to the plan's output folder (`OUT/<plan>/`); commands run in
//! its parent `OUT/` (the folder given to `plan render --out`), beside the user's base
//! `docker-compose.yml`, because docker-compose resolves every relative path of every `-f`
//! file against the first file's folder (see `compose`). So command paths carry the plan's
//! name: `lawsker/compose/alpha.override.yml`.

use super::alertmanager;
use super::compose::NGINX_SERVICE;
use super::step::Step;
use crate::check::{CheckedPlan, Target};
use serde::Serialize;

/// The base compose file the overrides are layered on, in the folder the commands run in.
pub(crate) const COMPOSE_BASE: &str = "docker-compose.yml";

/// One command, run from the folder given to `plan render --out`: the program and its
/// arguments (`argv`, what `plan release` runs, with no shell between), and the same as
/// one shell line (`run`, what people paste).
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Command {
    /// What it does, for people and logs.
    pub(crate) description: String,
    pub(crate) run: String,
    /// Empty for a command meant for people only (see [`Command::shell`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) argv: Vec<String>,
}

impl Command {
    pub(crate) fn new<S: Into<String>>(
        description: impl Into<String>,
        argv: impl IntoIterator<Item = S>,
    ) -> Command {
        let argv: Vec<String> = argv.into_iter().map(Into::into).collect();
        Command {
            description: description.into(),
            run: argv
                .iter()
                .map(|w| shell_word(w))
                .collect::<Vec<_>>()
                .join(" "),
            argv,
        }
    }

    /// A command for people only (the runbook's checks with pipes and redirections): no
    /// `argv`, never run by `plan release`.
    pub(crate) fn shell(description: impl Into<String>, run: impl Into<String>) -> Command {
        Command {
            description: description.into(),
            run: run.into(),
            argv: Vec::new(),
        }
    }
}

/// The generated files a step applies, relative to the output folder.
pub(crate) fn artifacts(plan: &CheckedPlan, s: Step) -> Vec<String> {
    let name = s.name(plan);
    let mut v = vec![format!("nginx/{name}.conf")];
    if plan.deployment.target == Target::Compose {
        v.push(format!("compose/{name}.override.yml"));
    }
    if let Step::Phase(_) = s {
        v.push(format!("prometheus/{name}.rules.yml"));
    }
    v
}

/// The files checked once before the release starts.
pub(crate) fn preparation_artifacts(plan: &CheckedPlan) -> Vec<String> {
    let mut v = vec![alertmanager::PATH.to_string()];
    for i in 0..plan.phases.len() {
        let name = Step::Phase(i).name(plan);
        v.push(format!("prometheus/{name}.rules.yml"));
        v.push(format!("prometheus/{name}.test.yml"));
    }
    v
}

/// An artifact's path as the commands name it: under the plan's folder.
fn run_path(plan: &CheckedPlan, artifact: &str) -> String {
    format!("{}/{artifact}", plan.name)
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| s.to_string()).collect()
}

/// `docker compose -f docker-compose.yml -f <plan>/compose/<step>.override.yml`, as words.
fn compose_words(plan: &CheckedPlan, s: Step) -> Vec<String> {
    let mut v = words(&["docker", "compose", "-f", COMPOSE_BASE, "-f"]);
    v.push(run_path(
        plan,
        &format!("compose/{}.override.yml", s.name(plan)),
    ));
    v
}

/// `docker compose -f docker-compose.yml -f <plan>/compose/<step>.override.yml`.
pub(crate) fn compose_command(plan: &CheckedPlan, s: Step) -> String {
    Command::new("", compose_words(plan, s)).run
}

/// How long a request to Prometheus or Alertmanager may take: a step never hangs on one
/// (a hung step holds the release, and with it the rollback).
const CURL_MAX_TIME: &str = "30";

/// A POST to Prometheus' or Alertmanager's lifecycle endpoint, which reloads its
/// configuration (Prometheus needs `--web.enable-lifecycle`).
fn reload(base: &str) -> Vec<String> {
    words(&[
        "curl",
        "-fsS",
        "--max-time",
        CURL_MAX_TIME,
        "-X",
        "POST",
        &format!("{base}/-/reload"),
    ])
}

/// NGINX with `args`: in its compose service when the deployment is compose (with the
/// override of step `s`), else the host's program as the plan runs it.
pub(crate) fn nginx(plan: &CheckedPlan, s: Step, args: &[&str]) -> Vec<String> {
    let mut v = match &plan.deployment.target {
        Target::Compose => {
            let mut v = compose_words(plan, s);
            v.extend(words(&["exec", "-T", NGINX_SERVICE, "nginx"]));
            v
        }
        Target::Host(h) => h.nginx.clone(),
    };
    v.extend(words(args));
    v
}

/// The services' state, where the deployment has a command for it.
pub(crate) fn services_state(plan: &CheckedPlan, s: Step) -> Option<Command> {
    match plan.deployment.target {
        Target::Compose => {
            let mut v = compose_words(plan, s);
            v.push("ps".into());
            Some(Command::new("show the services' state", v))
        }
        Target::Host(_) => None,
    }
}

/// `promtool check rules FILE` (or `test`).
fn promtool(verb: &str, file: String) -> Vec<String> {
    let mut v = words(&["promtool", verb, "rules"]);
    v.push(file);
    v
}

/// The checks run before the release starts: every rule file and its unit tests, and the
/// Alertmanager configuration, with the tools Prometheus and Alertmanager ship.
pub(crate) fn preparation_commands(plan: &CheckedPlan) -> Vec<Command> {
    let mut v = Vec::new();
    for i in 0..plan.phases.len() {
        let name = Step::Phase(i).name(plan);
        v.push(Command::new(
            format!("check the alerting rules of phase {name}"),
            promtool(
                "check",
                run_path(plan, &format!("prometheus/{name}.rules.yml")),
            ),
        ));
        v.push(Command::new(
            format!("run the unit tests of phase {name}'s rules"),
            promtool(
                "test",
                run_path(plan, &format!("prometheus/{name}.test.yml")),
            ),
        ));
    }
    let mut amtool = words(&["amtool", "check-config"]);
    amtool.push(run_path(plan, alertmanager::PATH));
    v.push(Command::new("check the Alertmanager configuration", amtool));
    v.push(Command::new(
        "load the Alertmanager configuration",
        reload(&plan.deployment.alertmanager),
    ));
    v.push(Command::new(
        "check that Prometheus is up",
        words(&[
            "curl",
            "-fsS",
            &format!("{}/-/healthy", plan.deployment.prometheus),
        ]),
    ));
    v
}

/// `install -m 0644 FROM TO`: a generated file put where a program reads it.
fn install(from: String, to: &str) -> Vec<String> {
    let mut v = words(&["install", "-m", "0644"]);
    v.push(from);
    v.push(to.into());
    v
}

/// The commands that apply step `s`, in order.
pub(crate) fn step_commands(plan: &CheckedPlan, s: Step) -> Vec<Command> {
    let name = s.name(plan);
    let rules = run_path(plan, &format!("prometheus/{name}.rules.yml"));
    let mut v = Vec::new();
    if let Step::Phase(_) = s {
        v.push(Command::new(
            format!("check phase {name}'s alerting rules before loading them"),
            promtool("check", rules.clone()),
        ));
    }
    match &plan.deployment.target {
        Target::Compose => {
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
            let mut c = compose_words(plan, s);
            c.extend(words(&["up", "-d"]));
            v.push(Command::new(up, c));
        }
        Target::Host(h) => {
            let routes = match s {
                Step::Phase(i) => format!(
                    "{} of users to the canary {}",
                    plan.phases[i].traffic, plan.release.to
                ),
                Step::Rollback => format!("every user to {}", plan.release.from),
                Step::Promotion => format!("every user to {}", plan.release.to),
            };
            v.push(Command::new(
                format!("put the NGINX file of {name} in place (it routes {routes})"),
                install(run_path(plan, &format!("nginx/{name}.conf")), &h.nginx_conf),
            ));
        }
    }
    v.push(Command::new(
        "test the NGINX configuration",
        nginx(plan, s, &["-t"]),
    ));
    v.push(Command::new(
        "reload NGINX without dropping connections",
        nginx(plan, s, &["-s", "reload"]),
    ));
    if let Target::Host(h) = &plan.deployment.target {
        v.push(match s {
            Step::Phase(_) => Command::new(
                format!("put phase {name}'s alerting rules in place"),
                install(rules, &h.rules_file),
            ),
            _ => Command::new(
                "remove the canary's alerting rules",
                words(&["rm", "-f", &h.rules_file]),
            ),
        });
    }
    v.push(Command::new(
        match s {
            Step::Phase(_) => format!("load phase {name}'s alerting rules into Prometheus"),
            _ => "reload Prometheus so the canary's rules stop evaluating".to_string(),
        },
        reload(&plan.deployment.prometheus),
    ));
    v.extend(services_state(plan, s));
    v
}

/// Quotes a word for a POSIX shell when it holds anything but safe characters. Every
/// name reaching a command is already constrained by the schema; this is the second line.
pub(crate) fn shell_word(word: &str) -> String {
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
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(
            shell_word("compose/alpha.override.yml"),
            "compose/alpha.override.yml"
        );
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word("$(rm -rf /)"), "'$(rm -rf /)'");
        assert_eq!(shell_word(""), "''");
    }
}
