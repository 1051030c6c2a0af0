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
use crate::check::CheckedPlan;
use serde::Serialize;

/// The base compose file the overrides are layered on, in the folder the commands run in.
pub(crate) const COMPOSE_BASE: &str = "docker-compose.yml";

/// Prometheus's reload endpoint (needs `--web.enable-lifecycle`).
const PROMETHEUS_RELOAD: &str = "curl -fsS -X POST http://localhost:9090/-/reload";

/// Alertmanager's reload endpoint.
const ALERTMANAGER_RELOAD: &str = "curl -fsS -X POST http://localhost:9093/-/reload";

/// One shell command, run from the folder given to `plan render --out`.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Command {
    /// What it does, for people and logs.
    pub(crate) description: String,
    pub(crate) run: String,
}

impl Command {
    pub(crate) fn new(description: impl Into<String>, run: impl Into<String>) -> Command {
        Command {
            description: description.into(),
            run: run.into(),
        }
    }
}

/// The generated files a step applies, relative to the output folder.
pub(crate) fn artifacts(plan: &CheckedPlan, s: Step) -> Vec<String> {
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

/// An artifact's path as the commands name it: under the plan's folder, shell-quoted.
fn run_path(plan: &CheckedPlan, artifact: &str) -> String {
    shell_word(&format!("{}/{artifact}", plan.name))
}

/// `docker compose -f docker-compose.yml -f <plan>/compose/<step>.override.yml`.
pub(crate) fn compose_command(plan: &CheckedPlan, s: Step) -> String {
    format!(
        "docker compose -f {} -f {}",
        shell_word(COMPOSE_BASE),
        run_path(plan, &format!("compose/{}.override.yml", s.name(plan)))
    )
}

/// The checks run before the release starts: every rule file and its unit tests, and the
/// Alertmanager configuration, with the tools Prometheus and Alertmanager ship.
pub(crate) fn preparation_commands(plan: &CheckedPlan) -> Vec<Command> {
    let mut v = Vec::new();
    for i in 0..plan.phases.len() {
        let name = Step::Phase(i).name(plan);
        v.push(Command::new(
            format!("check the alerting rules of phase {name}"),
            format!(
                "promtool check rules {}",
                run_path(plan, &format!("prometheus/{name}.rules.yml"))
            ),
        ));
        v.push(Command::new(
            format!("run the unit tests of phase {name}'s rules"),
            format!(
                "promtool test rules {}",
                run_path(plan, &format!("prometheus/{name}.test.yml"))
            ),
        ));
    }
    v.push(Command::new(
        "check the Alertmanager configuration",
        format!("amtool check-config {}", run_path(plan, alertmanager::PATH)),
    ));
    v.push(Command::new(
        "load the Alertmanager configuration",
        ALERTMANAGER_RELOAD,
    ));
    v.push(Command::new(
        "check that Prometheus is up",
        "curl -fsS http://localhost:9090/-/healthy",
    ));
    v
}

/// The commands that apply step `s`, in order.
pub(crate) fn step_commands(plan: &CheckedPlan, s: Step) -> Vec<Command> {
    let name = s.name(plan);
    let compose = compose_command(plan, s);
    let mut v = Vec::new();
    if let Step::Phase(_) = s {
        v.push(Command::new(
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
    v.push(Command::new(up, format!("{compose} up -d")));
    v.push(Command::new(
        "test the NGINX configuration",
        format!("{compose} exec -T {NGINX_SERVICE} nginx -t"),
    ));
    v.push(Command::new(
        "reload NGINX without dropping connections",
        format!("{compose} exec -T {NGINX_SERVICE} nginx -s reload"),
    ));
    v.push(Command::new(
        match s {
            Step::Phase(_) => format!("load phase {name}'s alerting rules into Prometheus"),
            _ => "reload Prometheus so the canary's rules stop evaluating".to_string(),
        },
        PROMETHEUS_RELOAD,
    ));
    v.push(Command::new(
        "show the services' state",
        format!("{compose} ps"),
    ));
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
