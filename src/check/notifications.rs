//! Checks of `notifications` against what reaches people and what reaches the rendered
//! Alertmanager configuration.
//!
//! - Secrets stay out of the SMS webhook URL. Alertmanager 0.25 (the version the tests and
//!   CI run) reads no webhook URL from a file (`url_file` exists from 0.26), so the URL is
//!   written into `alertmanager.yml` in full, and from there into every deployment and into
//!   `generated/` when that is committed. Credentials in the URL's authority
//!   (`user:password@`) are certain: an error. A query parameter whose name looks like a
//!   secret (`token`, `api_key`, `signature`, …) is a guess, and some gateways accept a token
//!   nowhere else: a warning (`--deny-warnings` makes it fatal). Both point at
//!   `sms.credentials_file`, which Alertmanager sends as `Authorization: Bearer`. Messages
//!   name the parameter, never its value.
//! - Alerts link their runbook section. Without `monitoring.runbook_url` the link is the
//!   relative `RUNBOOK.md#<section>`, which no one can click from Slack, email or SMS: a
//!   warning when the plan notifies anyone.

use crate::diagnostic::Diagnostic;
use crate::model::Plan;

const WEBHOOK_URL: &str = "/notifications/sms/webhook_url";

/// Query parameter names holding one of these are taken for secrets (`accessToken`,
/// `x_api_key`, `X-Amz-Signature`).
const SECRET_PARTS: [&str; 8] = [
    "token",
    "secret",
    "password",
    "passwd",
    "apikey",
    "signature",
    "credential",
    "private",
];

/// Query parameter names with one of these as a whole word (between `_`, `-` or `.`) are
/// taken for secrets (`key`, `api_key`, `sig`, `auth`); inside a word they are too common
/// (`monkey`, `author`).
const SECRET_WORDS: [&str; 7] = ["key", "sig", "auth", "pwd", "pass", "jwt", "session"];

const NO_URL_FILE: &str = "Alertmanager 0.25 (the version plan is tested with) has no \
                           `url_file` for webhooks (0.26 and later do), so the URL is written \
                           into alertmanager.yml in full";

pub(crate) fn check(plan: &Plan, f: &mut Vec<Diagnostic>) {
    let Some(n) = &plan.notifications else {
        return;
    };
    if let Some(sms) = &n.sms {
        webhook_url(&sms.webhook_url, f);
    }
    let notifies = n.slack.is_some() || n.email.is_some() || n.sms.is_some();
    let linked = plan
        .monitoring
        .as_ref()
        .is_some_and(|m| m.runbook_url.is_some());
    if notifies && !linked {
        f.push(
            Diagnostic::warning(
                "no-runbook-url",
                "/notifications",
                "alerts link their runbook section as the relative `RUNBOOK.md#...`, which no \
                 one can click from Slack, email or SMS",
            )
            .at_key()
            .with_hint(format!(
                "set `monitoring.runbook_url` to where RUNBOOK.md is published, e.g. \
                 `https://wiki.example.com/releases/{}/RUNBOOK.md`; alerts then link \
                 `<that URL>#<section>`",
                plan.name
            )),
        );
    }
}

/// Credentials in the URL (an error) or secret-looking query parameters (a warning).
fn webhook_url(url: &str, f: &mut Vec<Diagnostic>) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if rest[..end].contains('@') {
        f.push(
            Diagnostic::error(
                "webhook-url-credentials",
                WEBHOOK_URL,
                "the SMS webhook URL carries credentials (`user:password@`), which would be \
                 written into alertmanager.yml in plain text",
            )
            .with_hint(format!(
                "remove them from the URL; put the gateway's token in a file and set \
                 `notifications.sms.credentials_file` (sent as `Authorization: Bearer \
                 <token>`). {NO_URL_FILE}"
            )),
        );
    }
    let query = url
        .split('#')
        .next()
        .and_then(|u| u.split_once('?'))
        .map_or("", |(_, q)| q);
    let mut named: Vec<String> = Vec::new();
    for param in query.split(['&', ';']) {
        let name = percent_decode(param.split('=').next().unwrap_or(""));
        if secret_name(&name) && !named.contains(&name) {
            named.push(name);
        }
    }
    for name in named {
        f.push(
            Diagnostic::warning(
                "webhook-url-secret",
                WEBHOOK_URL,
                format!(
                    "the SMS webhook URL's query parameter `{name}` looks like a secret, which \
                     would be written into alertmanager.yml in plain text"
                ),
            )
            .with_hint(format!(
                "if the gateway accepts a token in a header, put it in a file and set \
                 `notifications.sms.credentials_file` (sent as `Authorization: Bearer \
                 <token>`) instead. {NO_URL_FILE}"
            )),
        );
    }
}

/// Whether a query parameter name looks like it holds a secret.
fn secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARTS.iter().any(|p| name.contains(p))
        || name
            .split(['_', '-', '.', '[', ']'])
            .any(|w| SECRET_WORDS.contains(&w))
}

/// `%XX` escapes decoded (a name spelled `api%5Fkey` is `api_key`); anything else as is.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied(), b.get(i + 2).copied()) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(url: &str) -> Vec<(&'static str, String)> {
        let mut f = Vec::new();
        webhook_url(url, &mut f);
        f.into_iter().map(|d| (d.code, d.message)).collect()
    }

    #[test]
    fn credentials_in_the_authority_are_an_error() {
        for url in [
            "https://user:pass@sms.example.com/hook",
            "https://token@sms.example.com",
            "http://a:b@1.2.3.4:8080?x=y",
        ] {
            let c = codes(url);
            assert_eq!(c.len(), 1, "{url}: {c:?}");
            assert_eq!(c[0].0, "webhook-url-credentials");
            assert!(!c[0].1.contains("pass@"), "the message names no secret");
        }
        // `@` after the authority is not userinfo.
        assert!(codes("https://sms.example.com/to/ops@example.com").is_empty());
        assert!(codes("https://sms.example.com/hook?to=ops@example.com").is_empty());
        assert!(codes("https://sms.example.com/hook#a@b").is_empty());
    }

    #[test]
    fn secret_looking_query_parameters_are_a_warning() {
        for (url, name) in [
            ("https://gw.example.com/send?token=abc", "token"),
            ("https://gw.example.com/send?to=1&api_key=abc", "api_key"),
            ("https://gw.example.com/send?apiKey=abc", "apiKey"),
            ("https://gw.example.com/send?accessToken=abc", "accessToken"),
            (
                "https://gw.example.com/send?X-Amz-Signature=abc",
                "X-Amz-Signature",
            ),
            ("https://gw.example.com/send?sig=abc", "sig"),
            ("https://gw.example.com/send?auth=abc", "auth"),
            (
                "https://gw.example.com/send?client_secret=abc",
                "client_secret",
            ),
            ("https://gw.example.com/send?password", "password"),
            ("https://gw.example.com/send?a=1;key=2", "key"),
            ("https://gw.example.com/send?api%5Fkey=abc", "api_key"),
        ] {
            let c = codes(url);
            assert_eq!(c.len(), 1, "{url}: {c:?}");
            assert_eq!(c[0].0, "webhook-url-secret", "{url}");
            assert!(c[0].1.contains(&format!("`{name}`")), "{url}: {}", c[0].1);
            assert!(!c[0].1.contains("abc"), "the message names no secret");
        }
        for url in [
            "https://gw.example.com/v1/alerts",
            "https://gw.example.com/send?to=123&author=ops&monkey=1&keyboard=x",
            "https://gw.example.com/token/send",
            "https://gw.example.com/send#token=x",
        ] {
            assert!(codes(url).is_empty(), "{url}");
        }
        // One finding per parameter name.
        assert_eq!(codes("https://g.io/?token=a&token=b&key=c").len(), 2);
    }
}
