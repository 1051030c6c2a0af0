//! The Alertmanager configuration, `alertmanager/alertmanager.yml`, from `notifications`.
//!
//! Routing (the Prometheus rules label every alert with plan, phase, release, rule_id,
//! severity and action):
//! - this plan's `severity="critical"` alerts (rollbacks) go to every configured receiver:
//!   `slack`, `email` and `sms`, through sibling routes with `continue: true`, so that each
//!   channel is its own receiver: `amtool config routes test` names them one by one, and
//!   each channel's notifications are grouped, throttled and resolved on their own;
//! - this plan's `severity="warning"` alerts (gates, missing data) go to `slack` only;
//! - anything else (another plan, another severity) goes to the root receiver: `slack` when
//!   configured, so nothing vanishes unseen, else `null`;
//! - alerts are grouped by `plan` and `phase`; a firing critical alert inhibits the
//!   warnings of the same plan and phase (the release is rolling back: gate noise helps
//!   nobody).
//!
//! A plan without notifications still gets a valid file: a single receiver named `null`
//! with no integrations, which drops every alert (the Prometheus UI still shows them).
//!
//! What people read (the `slack` submodule): Alertmanager's default Slack message has a
//! title of label values and no text at all, so this file gives Slack its own templates,
//! built from what the rules put on every alert (see `annotations`):
//! - title: status and count, the alert's name (or how many there are), plan, phase and
//!   release: `[FIRING:1] CanaryRollbackErrorRate | plan lawsker, phase beta, release v1.1.0`;
//! - text, per alert: its name and `summary` (with the current value, formatted for the
//!   metric's unit), its `description`, the `action` to take (while firing) and the
//!   `runbook_url` as a link; a relative runbook path (no `monitoring.runbook_url`) is
//!   shown as code with the fix, since Slack cannot open it;
//! - fallback (push notifications): the title and the summaries; colour: red for a firing
//!   critical, orange for a firing warning, green once resolved (`send_resolved: true`, so
//!   the channel sees the all-clear).
//!
//! The templates hold no user string: plan, phase and texts are read from the alert at
//! send time. Every such value is escaped for Slack (`&`, `<`, `>` as `&amp;`, `&lt;`,
//! `&gt;`), so a description cannot ping `<!channel>` or forge a link, and Alertmanager
//! never evaluates an alert's values as templates. The user strings Alertmanager does
//! template (the Slack channel, email addresses) are constrained by the schema and written
//! as template literals (`template_literal`) all the same.
//!
//! Email keeps Alertmanager's default templates: the subject names status, count and the
//! alerts' label values, and the HTML body lists every alert with all its labels and
//! annotations (summary with the value, description, action, runbook URL) and a link to
//! Alertmanager: the essentials are there. SMS goes through a webhook, whose body in
//! Alertmanager 0.25 is fixed JSON (`version: "4"`): the gateway texts
//! `alerts[].annotations.summary` (and may add `runbook_url`); no template can shorten it.
//!
//! Secrets stay out: the Slack webhook is read from `api_url_file`, the SMTP password from
//! `auth_password_file` and the SMS gateway's token from `credentials_file`, sent as
//! `Authorization: Bearer` (`http_config.authorization`); all three are supported by
//! Alertmanager 0.25, which the tests run. The SMS webhook URL itself is written as given:
//! `url_file` for webhooks only exists from Alertmanager 0.26, so `plan validate` refuses
//! credentials in that URL and warns about secret-looking query parameters (`check`).
//!
//! No injection: every string below is fixed here or constrained by the schema to
//! characters that are neither YAML syntax nor Go template syntax (no `{`, `}`, `$`,
//! quotes, spaces); the YAML writer quotes whatever YAML would read as another type.

mod slack;

use super::annotations::template_literal;
use super::artifact::{Artifact, header};
use crate::check::CheckedPlan;
use serde::Serialize;

pub(crate) const PATH: &str = "alertmanager/alertmanager.yml";

/// Receiver names, fixed so that tests and runbooks can name them.
const SLACK: &str = "slack";
const EMAIL: &str = "email";
const SMS: &str = "sms";
const NULL: &str = "null";
/// `plan release serve`, when the plan asks for automatic rollback.
const RELEASE: &str = "plan-release";

/// The labels alerts are grouped by.
const GROUP_BY: [&str; 2] = ["plan", "phase"];

#[derive(Debug, Serialize)]
struct Config {
    route: Route,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    inhibit_rules: Vec<InhibitRule>,
    receivers: Vec<Receiver>,
}

#[derive(Debug, Default, Serialize)]
struct Route {
    #[serde(skip_serializing_if = "Option::is_none")]
    receiver: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    group_by: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    matchers: Vec<String>,
    #[serde(rename = "continue", skip_serializing_if = "is_false")]
    continue_: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_wait: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_interval: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    repeat_interval: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    routes: Vec<Route>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Serialize)]
struct InhibitRule {
    source_matchers: Vec<String>,
    target_matchers: Vec<String>,
    equal: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
struct Receiver {
    name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    slack_configs: Vec<SlackConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    email_configs: Vec<EmailConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    webhook_configs: Vec<WebhookConfig>,
}

#[derive(Debug, Serialize)]
struct SlackConfig {
    send_resolved: bool,
    api_url_file: String,
    channel: String,
    color: String,
    title: String,
    text: String,
    fallback: String,
}

#[derive(Debug, Serialize)]
struct EmailConfig {
    send_resolved: bool,
    /// Alertmanager takes one string: addresses separated by commas.
    to: String,
    from: String,
    smarthost: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_password_file: Option<String>,
}

#[derive(Debug, Serialize)]
struct WebhookConfig {
    send_resolved: bool,
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_config: Option<HttpConfig>,
}

/// Alertmanager's (Prometheus') HTTP client settings: here only the `Authorization` header,
/// its credentials read from a file at each request.
#[derive(Debug, Serialize)]
struct HttpConfig {
    authorization: Authorization,
}

#[derive(Debug, Serialize)]
struct Authorization {
    #[serde(rename = "type")]
    type_: &'static str,
    credentials_file: String,
}

/// Renders `alertmanager/alertmanager.yml`.
pub(crate) fn render(plan: &CheckedPlan) -> Vec<Artifact> {
    let config = build(plan);
    let body = super::yaml::to_string(&config).unwrap_or_else(|e| {
        // Plain structs of strings cannot fail to serialise; stay loud if that changes.
        format!("# serialisation failed: {e}\n")
    });
    let mut contents = header(plan, "#");
    contents.push_str(&comment(plan));
    contents.push_str(&body);
    vec![Artifact {
        path: PATH.to_string(),
        contents,
    }]
}

fn comment(plan: &CheckedPlan) -> String {
    let release = plan.deployment.automatic_rollback.as_ref().map_or_else(String::new, |a| {
        format!(
            "# Automatic rollback: this plan's rollback alerts go first, at once, to `plan release serve` ({}).\n",
            a.url
        )
    });
    let n = &plan.notifications;
    if n.slack.is_none() && n.email.is_none() && n.sms.is_none() {
        return release
            + "# The plan has no notifications: every alert goes to the `null` receiver,\n\
               # which sends nothing (the alerts stay visible in Prometheus and Alertmanager).\n";
    }
    let mut critical: Vec<&str> = Vec::new();
    if n.slack.is_some() {
        critical.push(SLACK);
    }
    if n.email.is_some() {
        critical.push(EMAIL);
    }
    if n.sms.is_some() {
        critical.push(SMS);
    }
    let warning = if n.slack.is_some() { SLACK } else { NULL };
    let mut out = format!(
        "# Alerts of plan {plan}, grouped by plan and phase: critical (rollback) -> {}; \
         warning (gate, no data) -> {warning}.\n",
        critical.join(", "),
        plan = plan.name
    );
    out.push_str(&release);
    if n.slack.is_some() {
        out.push_str(
            "# Slack shows each alert's summary (with its current value), description, action \
             and runbook link.\n",
        );
    }
    if n.email.is_some() {
        out.push_str(
            "# Email uses Alertmanager's default templates, which list every label and \
             annotation.\n",
        );
    }
    if n.sms.is_some() {
        out.push_str(
            "# The SMS gateway receives Alertmanager's webhook JSON; it texts \
             alerts[].annotations.summary.\n",
        );
    }
    out.push_str("# Secrets are read from files at run time and never written here.\n");
    out
}

fn matcher(label: &str, value: &str) -> String {
    format!("{label}=\"{value}\"")
}

fn build(plan: &CheckedPlan) -> Config {
    let n = &plan.notifications;
    let mut receivers = Vec::new();
    if let Some(s) = &n.slack {
        receivers.push(Receiver {
            name: SLACK.to_string(),
            slack_configs: vec![SlackConfig {
                send_resolved: true,
                api_url_file: s.api_url_file.clone(),
                channel: template_literal(&s.channel),
                color: slack::COLOR.to_string(),
                title: slack::title(),
                text: slack::text(),
                fallback: slack::fallback(),
            }],
            ..Receiver::default()
        });
    }
    if let Some(e) = &n.email {
        receivers.push(Receiver {
            name: EMAIL.to_string(),
            email_configs: vec![EmailConfig {
                send_resolved: false,
                to: template_literal(&e.to.join(", ")),
                from: template_literal(&e.from),
                smarthost: e.smarthost.clone(),
                auth_username: e.auth_username.clone(),
                auth_password_file: e.auth_password_file.clone(),
            }],
            ..Receiver::default()
        });
    }
    if let Some(s) = &n.sms {
        receivers.push(Receiver {
            name: SMS.to_string(),
            webhook_configs: vec![WebhookConfig {
                send_resolved: false,
                url: s.webhook_url.clone(),
                http_config: s.credentials_file.as_ref().map(|f| HttpConfig {
                    authorization: Authorization {
                        type_: "Bearer",
                        credentials_file: f.clone(),
                    },
                }),
            }],
            ..Receiver::default()
        });
    }

    let critical: Vec<String> = receivers.iter().map(|r| r.name.clone()).collect();
    if let Some(a) = &plan.deployment.automatic_rollback {
        receivers.push(Receiver {
            name: RELEASE.to_string(),
            webhook_configs: vec![WebhookConfig {
                send_resolved: false,
                url: a.url.clone(),
                http_config: Some(HttpConfig {
                    authorization: Authorization {
                        type_: "Bearer",
                        credentials_file: a.token_file.clone(),
                    },
                }),
            }],
            ..Receiver::default()
        });
    }
    let default = if n.slack.is_some() { SLACK } else { NULL };
    if receivers.is_empty() || default == NULL {
        receivers.push(Receiver {
            name: NULL.to_string(),
            ..Receiver::default()
        });
    }

    // Critical: one sibling route per channel; all but the last continue to the next.
    let last = critical.len().saturating_sub(1);
    let mut routes: Vec<Route> = critical
        .iter()
        .enumerate()
        .map(|(i, r)| Route {
            receiver: Some(r.clone()),
            matchers: vec![matcher("severity", "critical")],
            continue_: i < last,
            group_wait: Some("10s"),
            repeat_interval: Some("1h"),
            ..Route::default()
        })
        .collect();
    if n.slack.is_some() {
        routes.push(Route {
            receiver: Some(SLACK.to_string()),
            matchers: vec![matcher("severity", "warning")],
            ..Route::default()
        });
    }
    // The automatic rollback first, at once, and on to the people: the driver acts on the
    // first notification and ignores repeats, which only matter if it was down.
    if plan.deployment.automatic_rollback.is_some() {
        routes.insert(
            0,
            Route {
                receiver: Some(RELEASE.to_string()),
                matchers: vec![matcher("action", "rollback")],
                continue_: true,
                group_wait: Some("0s"),
                group_interval: Some("10s"),
                repeat_interval: Some("1m"),
                ..Route::default()
            },
        );
    }

    let plan_route = Route {
        matchers: vec![matcher("plan", &plan.name)],
        routes,
        ..Route::default()
    };
    let route = Route {
        receiver: Some(default.to_string()),
        group_by: GROUP_BY.iter().map(|s| s.to_string()).collect(),
        group_wait: Some("30s"),
        group_interval: Some("5m"),
        repeat_interval: Some("4h"),
        routes: if plan_route.routes.is_empty() {
            Vec::new()
        } else {
            vec![plan_route]
        },
        ..Route::default()
    };

    Config {
        route,
        inhibit_rules: vec![InhibitRule {
            source_matchers: vec![matcher("severity", "critical")],
            target_matchers: vec![matcher("severity", "warning")],
            equal: GROUP_BY.iter().map(|s| s.to_string()).collect(),
        }],
        receivers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Source;
    use yaml_serde::Value;

    const LAWSKER: &str = include_str!("../../../plans/lawsker.yaml");

    /// The lawsker plan edited by `edit`, compiled; `None` when `plan validate` rejects it.
    fn plan_from(edit: impl FnOnce(&mut Value)) -> Option<CheckedPlan> {
        let mut doc: Value = yaml_serde::from_str(LAWSKER).expect("lawsker parses");
        edit(&mut doc);
        let text = yaml_serde::to_string(&doc).expect("plan serialises");
        let src = Source::new("t.yaml".into(), text);
        crate::pipeline::compile(src).plan.map(|l| l.plan)
    }

    fn plan_with(path: &[&str], value: &str) -> Option<CheckedPlan> {
        plan_from(|doc| {
            let mut node = doc;
            for seg in path {
                node = match seg.parse::<usize>() {
                    Ok(i) => &mut node[i],
                    Err(_) => &mut node[*seg],
                };
            }
            *node = Value::String(value.to_string());
        })
    }

    fn parsed(plan: &CheckedPlan) -> Value {
        let a = render(plan);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].path, PATH);
        assert!(a[0].contents.starts_with(&header(plan, "#")));
        yaml_serde::from_str(&a[0].contents).expect("alertmanager.yml is YAML")
    }

    fn receiver<'a>(doc: &'a Value, name: &str) -> &'a Value {
        doc["receivers"]
            .as_sequence()
            .and_then(|rs| rs.iter().find(|r| r["name"].as_str() == Some(name)))
            .unwrap_or(&Value::Null)
    }

    /// The receivers an alert with `labels` reaches, walking the route tree the way
    /// Alertmanager does (first match, `continue`, inheritance of the receiver). The
    /// matchers here are all `label="value"`. amtool checks the same in the integration tests.
    fn routed(doc: &Value, labels: &[(&str, &str)]) -> Vec<String> {
        fn matches(route: &Value, labels: &[(&str, &str)]) -> bool {
            route["matchers"].as_sequence().is_none_or(|ms| {
                ms.iter().filter_map(Value::as_str).all(|m| {
                    let (k, v) = m.split_once('=').expect("matcher");
                    let v = v.trim_matches('"');
                    labels.iter().find(|(l, _)| *l == k).map_or("", |(_, x)| x) == v
                })
            })
        }
        fn walk(route: &Value, inherited: &str, labels: &[(&str, &str)], out: &mut Vec<String>) {
            let recv = route["receiver"].as_str().unwrap_or(inherited);
            let mut any = false;
            for child in route["routes"].as_sequence().into_iter().flatten() {
                if matches(child, labels) {
                    any = true;
                    walk(child, recv, labels, out);
                    if child["continue"].as_bool() != Some(true) {
                        break;
                    }
                }
            }
            if !any {
                out.push(recv.to_string());
            }
        }
        let mut out = Vec::new();
        walk(&doc["route"], "", labels, &mut out);
        out
    }

    #[test]
    fn critical_reaches_every_channel_and_warning_only_slack() {
        let plan = plan_from(|_| {}).expect("lawsker is valid");
        let doc = parsed(&plan);
        let crit = [
            ("plan", "lawsker"),
            ("phase", "alpha"),
            ("severity", "critical"),
        ];
        let warn = [
            ("plan", "lawsker"),
            ("phase", "alpha"),
            ("severity", "warning"),
        ];
        assert_eq!(routed(&doc, &crit), ["slack", "email", "sms"]);
        assert_eq!(routed(&doc, &warn), ["slack"]);
        assert_eq!(
            routed(&doc, &[("plan", "other"), ("severity", "critical")]),
            ["slack"]
        );
        assert_eq!(doc["route"]["group_by"][0].as_str(), Some("plan"));
        assert_eq!(doc["route"]["group_by"][1].as_str(), Some("phase"));
        let slack = &receiver(&doc, "slack")["slack_configs"][0];
        assert_eq!(slack["channel"].as_str(), Some("#deployment-support"));
        assert_eq!(
            slack["api_url_file"].as_str(),
            Some("/etc/alertmanager/secrets/slack-api-url")
        );
        let email = &receiver(&doc, "email")["email_configs"][0];
        assert_eq!(email["to"].as_str(), Some("tech-support@lawsker.com"));
        assert_eq!(
            email["auth_password_file"].as_str(),
            Some("/etc/alertmanager/secrets/smtp-password")
        );
        let sms = &receiver(&doc, "sms")["webhook_configs"][0];
        assert_eq!(
            sms["url"].as_str(),
            Some("https://sms-gateway.lawsker.com/v1/alerts")
        );
        let auth = &sms["http_config"]["authorization"];
        assert_eq!(auth["type"].as_str(), Some("Bearer"));
        assert_eq!(
            auth["credentials_file"].as_str(),
            Some("/etc/alertmanager/secrets/sms-token")
        );
        assert_eq!(slack["send_resolved"].as_bool(), Some(true));
        for field in ["title", "text", "fallback", "color"] {
            assert!(
                slack[field].as_str().is_some_and(|t| t.contains("{{")),
                "slack {field} is a template"
            );
        }
        assert!(receiver(&doc, "null").is_null(), "no null receiver needed");
        assert_eq!(render(&plan), render(&plan), "deterministic");
    }

    #[test]
    fn no_notifications_gives_a_null_receiver() {
        let plan = plan_from(|d| {
            d.as_mapping_mut().unwrap().remove("notifications");
        })
        .expect("valid without notifications");
        let text = &render(&plan)[0].contents;
        assert!(text.contains("no notifications"), "{text}");
        let doc = parsed(&plan);
        assert_eq!(doc["receivers"].as_sequence().map(Vec::len), Some(1));
        assert_eq!(doc["receivers"][0]["name"].as_str(), Some("null"));
        assert_eq!(doc["route"]["receiver"].as_str(), Some("null"));
        assert_eq!(
            routed(&doc, &[("plan", "lawsker"), ("severity", "critical")]),
            ["null"]
        );
    }

    #[test]
    fn partial_notifications_route_what_exists() {
        let plan = plan_from(|d| {
            let n = d["notifications"].as_mapping_mut().unwrap();
            n.remove("slack");
            n.remove("sms");
        })
        .expect("valid with email only");
        let doc = parsed(&plan);
        let crit = [("plan", "lawsker"), ("severity", "critical")];
        assert_eq!(routed(&doc, &crit), ["email"]);
        assert_eq!(
            routed(&doc, &[("plan", "lawsker"), ("severity", "warning")]),
            ["null"]
        );
    }

    /// The Slack templates read everything from the alerts: two plans differing in every
    /// user string get the very same templates.
    #[test]
    fn slack_templates_hold_no_user_string() {
        let a = plan_from(|_| {}).unwrap();
        let b = plan_from(|d| {
            d["name"] = Value::String("other-plan".into());
            d["notifications"]["slack"]["channel"] = Value::String("#elsewhere".into());
            d["release"]["to"] = Value::String("v9".into());
            d["monitoring"]["runbook_url"] = Value::String("https://x.io/rb".into());
        })
        .unwrap();
        let (da, db) = (parsed(&a), parsed(&b));
        let (sa, sb) = (
            &receiver(&da, "slack")["slack_configs"][0],
            &receiver(&db, "slack")["slack_configs"][0],
        );
        for field in ["title", "text", "fallback", "color"] {
            assert_eq!(sa[field], sb[field], "{field}");
        }
        assert_ne!(sa["channel"], sb["channel"]);
    }

    #[test]
    fn sms_without_credentials_file_sends_no_authorization() {
        let plan = plan_from(|d| {
            d["notifications"]["sms"]
                .as_mapping_mut()
                .unwrap()
                .remove("credentials_file");
        })
        .unwrap();
        let doc = parsed(&plan);
        let sms = &receiver(&doc, "sms")["webhook_configs"][0];
        assert!(sms["http_config"].is_null());
    }

    #[test]
    fn secrets_are_referenced_never_inlined() {
        let plan = plan_from(|_| {}).unwrap();
        let text = &render(&plan)[0].contents;
        for key in [
            "api_url:",
            "auth_password:",
            "auth_secret:",
            "smtp_auth_password",
        ] {
            assert!(!text.contains(key), "{key} in\n{text}");
        }
    }

    #[test]
    fn hostile_values_are_rejected_or_read_back_exactly() {
        type Get = fn(&Value) -> Option<String>;
        let fields: [(&[&str], &[&str], Get); 10] = [
            (&["name"], &["lawsker", "yes", "on", "a-1"], |d| {
                d["route"]["routes"][0]["matchers"][0]
                    .as_str()
                    .and_then(|m| m.strip_prefix("plan=\"")?.strip_suffix('"'))
                    .map(String::from)
            }),
            (
                &["notifications", "slack", "channel"],
                &["#deployment-support", "#yes", "#1_0", "#0x1f"],
                |d| {
                    receiver(d, "slack")["slack_configs"][0]["channel"]
                        .as_str()
                        .map(String::from)
                },
            ),
            (
                &["notifications", "slack", "api_url_file"],
                &["/etc/a", "/1", "/yes", "/a/../b"],
                |d| {
                    receiver(d, "slack")["slack_configs"][0]["api_url_file"]
                        .as_str()
                        .map(String::from)
                },
            ),
            (
                &["notifications", "email", "to", "0"],
                &["a@b.io", "yes@on.io", "1_0@x.io", "%+.-@x.io"],
                |d| {
                    receiver(d, "email")["email_configs"][0]["to"]
                        .as_str()
                        .map(String::from)
                },
            ),
            (
                &["notifications", "email", "from"],
                &["a@b.io", "null@x.io"],
                |d| {
                    receiver(d, "email")["email_configs"][0]["from"]
                        .as_str()
                        .map(String::from)
                },
            ),
            (
                &["notifications", "email", "smarthost"],
                &["smtp.x.io:587", "1:10", "a:0", "yes:25"],
                |d| {
                    receiver(d, "email")["email_configs"][0]["smarthost"]
                        .as_str()
                        .map(String::from)
                },
            ),
            (
                &["notifications", "email", "auth_username"],
                &["u", "yes", "1_0", "a@b%c+d"],
                |d| {
                    receiver(d, "email")["email_configs"][0]["auth_username"]
                        .as_str()
                        .map(String::from)
                },
            ),
            (
                &["notifications", "email", "auth_password_file"],
                &["/etc/p", "/null", "/1e3"],
                |d| {
                    receiver(d, "email")["email_configs"][0]["auth_password_file"]
                        .as_str()
                        .map(String::from)
                },
            ),
            (
                &["notifications", "sms", "webhook_url"],
                &[
                    "https://x.io/a",
                    "http://1:10/a?b=c&d=e#f",
                    "https://x.io/%7B,;!*()",
                ],
                |d| {
                    receiver(d, "sms")["webhook_configs"][0]["url"]
                        .as_str()
                        .map(String::from)
                },
            ),
            (
                &["notifications", "sms", "credentials_file"],
                &["/etc/t", "/true", "/1.5", "/a-b_c.d"],
                |d| {
                    receiver(d, "sms")["webhook_configs"][0]["http_config"]["authorization"]
                        ["credentials_file"]
                        .as_str()
                        .map(String::from)
                },
            ),
        ];
        for (path, valid, get) in fields {
            for v in valid
                .iter()
                .map(|s| s.to_string())
                .chain(crate::render::hostile::corpus())
            {
                let Some(plan) = plan_with(path, &v) else {
                    assert!(
                        !valid.contains(&v.as_str()),
                        "{path:?} = {v:?} should be valid"
                    );
                    continue;
                };
                let doc = parsed(&plan);
                assert_eq!(get(&doc).as_deref(), Some(v.as_str()), "{path:?}");
            }
        }
    }
}
