//! `plan render`'s Alertmanager configuration, proven by amtool 0.25: `amtool check-config`
//! accepts the file of every example plan, and `amtool config routes test` shows where
//! alerts labelled like the generated Prometheus rules' alerts are delivered. What the
//! messages say is proven by a running Alertmanager (`alertmanager_live`).

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Receivers amtool routes an alert with `labels` to, as it prints them.
fn routes(amtool: &Path, config: &Path, labels: &[&str]) -> Vec<String> {
    let o = Command::new(amtool)
        .args(["config", "routes", "test", "--config.file"])
        .arg(config)
        .args(labels)
        .output()
        .expect("amtool runs");
    assert!(
        o.status.success(),
        "amtool routes test: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut v: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .trim()
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    v.sort();
    v
}

/// `amtool config routes test --verify.receivers=...`: its own pass/fail.
fn verifies(amtool: &Path, config: &Path, receivers: &str, labels: &[&str]) -> bool {
    Command::new(amtool)
        .args(["config", "routes", "test", "--config.file"])
        .arg(config)
        .arg(format!("--verify.receivers={receivers}"))
        .args(labels)
        .output()
        .expect("amtool runs")
        .status
        .success()
}

fn check_config(amtool: &Path, config: &Path) {
    let o = Command::new(amtool)
        .arg("check-config")
        .arg(config)
        .output()
        .expect("amtool runs");
    assert!(
        o.status.success(),
        "amtool check-config refused {}:\n{}{}",
        config.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// Renders the lawsker plan edited by `edit` and returns its alertmanager.yml.
fn render_edited(tag: &str, edit: impl FnOnce(String) -> String) -> PathBuf {
    let text = edit(std::fs::read_to_string(root().join("plans/lawsker.yaml")).unwrap());
    let dir = temp_dir(tag);
    let file = dir.join("plan.yaml");
    std::fs::write(&file, text).unwrap();
    plan()
        .arg("render")
        .arg(&file)
        .arg("--out")
        .arg(dir.join("out"))
        .expect(0);
    dir.join("out/lawsker/alertmanager/alertmanager.yml")
}

#[test]
fn amtool_accepts_every_plan_and_routes_by_severity() {
    let Some(amtool) = tool("amtool") else { return };
    for plan_file in all_plans() {
        let name = plan_name(&plan_file);
        let config = render(&plan_file).join("alertmanager/alertmanager.yml");
        check_config(&amtool, &config);
        let text = std::fs::read_to_string(&config).unwrap();
        let doc: yaml_serde::Value = yaml_serde::from_str(&text).unwrap();
        let has = |r: &str| {
            doc["receivers"]
                .as_sequence()
                .unwrap()
                .iter()
                .any(|x| x["name"].as_str() == Some(r))
        };
        let critical: Vec<&str> = ["email", "slack", "sms"]
            .into_iter()
            .filter(|r| has(r))
            .collect();
        let critical = if critical.is_empty() {
            vec!["null"]
        } else {
            critical
        };
        let warning = if has("slack") { "slack" } else { "null" };
        let plan_label = format!("plan={name}");
        let crit = [
            plan_label.as_str(),
            "phase=alpha",
            "severity=critical",
            "action=rollback",
        ];
        let warn = [
            plan_label.as_str(),
            "phase=alpha",
            "severity=warning",
            "action=hold",
        ];
        assert_eq!(
            routes(&amtool, &config, &crit),
            sorted(&critical),
            "{plan_file}"
        );
        assert_eq!(
            routes(&amtool, &config, &warn),
            sorted(&[warning]),
            "{plan_file}"
        );
    }
}

#[test]
fn lawsker_critical_reaches_slack_email_and_sms_and_warnings_only_slack() {
    let Some(amtool) = tool("amtool") else { return };
    let config = render("plans/lawsker.yaml").join("alertmanager/alertmanager.yml");
    let crit = ["severity=critical", "plan=lawsker", "phase=alpha"];
    let warn = ["severity=warning", "plan=lawsker", "phase=alpha"];
    assert!(verifies(&amtool, &config, "slack,email,sms", &crit));
    assert!(verifies(&amtool, &config, "slack", &warn));
    // The verification can fail: a warning does not page by SMS, a critical is not Slack-only.
    assert!(!verifies(&amtool, &config, "slack,email,sms", &warn));
    assert!(!verifies(&amtool, &config, "slack", &crit));
    // Another plan's alerts are not paged by this plan's channels; they stay visible in Slack.
    let other = ["severity=critical", "plan=other", "phase=alpha"];
    assert!(verifies(&amtool, &config, "slack", &other));
    // Secrets are referenced by file, never written.
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("api_url_file: /etc/alertmanager/secrets/slack-api-url"));
    assert!(text.contains("auth_password_file: /etc/alertmanager/secrets/smtp-password"));
    assert!(text.contains("credentials_file: /etc/alertmanager/secrets/sms-token"));
}

#[test]
fn a_plan_without_notifications_gets_a_valid_null_receiver() {
    let Some(amtool) = tool("amtool") else { return };
    let config = render_edited("am-none", |t| {
        t[..t.find("\nnotifications:").expect("notifications section")].to_string() + "\n"
    });
    check_config(&amtool, &config);
    let crit = ["severity=critical", "plan=lawsker", "phase=alpha"];
    assert_eq!(routes(&amtool, &config, &crit), ["null"]);
    assert!(
        std::fs::read_to_string(&config)
            .unwrap()
            .contains("no notifications")
    );
}

#[test]
fn a_plan_with_email_only_pages_by_email_and_drops_warnings() {
    let Some(amtool) = tool("amtool") else { return };
    let config = render_edited("am-email", |t| {
        let start = t.find("  slack:\n").unwrap();
        let end = t.find("  email:\n").unwrap();
        let t = format!("{}{}", &t[..start], &t[end..]);
        t[..t.find("  sms:\n").unwrap()].to_string()
    });
    check_config(&amtool, &config);
    assert_eq!(
        routes(&amtool, &config, &["severity=critical", "plan=lawsker"]),
        ["email"]
    );
    assert_eq!(
        routes(&amtool, &config, &["severity=warning", "plan=lawsker"]),
        ["null"]
    );
}
