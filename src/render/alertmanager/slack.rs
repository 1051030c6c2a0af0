//! The Slack message's templates (Alertmanager's Go templates over its notification data:
//! `.Status`, `.Alerts`, `.GroupLabels`, `.CommonLabels`, and per alert `.Labels` and
//! `.Annotations`). What they show and why is in the parent module's header.
//!
//! Slack reads `&`, `<` and `>` as the start of entities, links and mentions
//! (`<!channel>`, `<@U123>`, `<https://x|text>`), in every text field. So every value
//! taken from an alert goes through [`escaped`], Slack's own escaping, done at send time with
//! Alertmanager's `reReplaceAll`; a link's URL also has `|` percent-encoded, which would
//! otherwise end the URL. Nothing else here varies: the templates are fixed text.

/// The attachment's colour: Slack's `danger` (red) for a firing critical, `warning`
/// (orange) for other firing alerts, `good` (green) once resolved.
pub(crate) const COLOR: &str = r#"{{ if eq .Status "firing" }}{{ if eq .CommonLabels.severity "critical" }}danger{{ else }}warning{{ end }}{{ else }}good{{ end }}"#;

/// `[FIRING:1] CanaryRollbackErrorRate | plan lawsker, phase beta, release v1.1.0`; a group
/// of alerts with different names is `[FIRING:3] 3 alerts | ...`. (`[[x]]` is the value
/// of `x`, escaped: see [`escaped`].)
const TITLE: &str = concat!(
    r#"[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}] "#,
    r#"{{ with .CommonLabels.alertname }}[[.]]{{ else }}{{ len .Alerts }} alerts{{ end }}"#,
    r#"{{ with .GroupLabels.plan }} | plan [[.]]{{ end }}"#,
    r#"{{ with .GroupLabels.phase }}, phase [[.]]{{ end }}"#,
    r#"{{ with .CommonLabels.release }}, release [[.]]{{ end }}"#,
);

/// Per alert, a paragraph (a blank line between alerts):
///
/// ```text
/// *CanaryRollbackErrorRate*: error_rate is 20% (> 10% for 5m)
/// Rollback condition `error_rate` met by the canary v1.1.0 of `backend` in phase `beta`: ...
/// *Action:* Roll the release back now: ...
/// *Runbook:* <https://docs.lawsker.com/releases/lawsker/RUNBOOK.md#rollback-error_rate>
/// ```
///
/// A resolved alert says so after its name and has no action line. A runbook path that is
/// not a URL is shown as code, with the fix.
const TEXT: &str = concat!(
    r#"{{ range $i, $alert := .Alerts }}{{ if $i }}"#,
    "\n",
    r#"{{ end }}*[[.Labels.alertname]]*{{ if eq .Status "resolved" }} (resolved){{ end }}"#,
    r#"{{ with .Annotations.summary }}: [[.]]{{ end }}"#,
    "\n",
    r#"{{ with .Annotations.description }}[[.]]"#,
    "\n",
    r#"{{ end }}{{ if eq .Status "firing" }}{{ with .Annotations.action }}*Action:* [[.]]"#,
    "\n",
    r#"{{ end }}{{ end }}{{ with .Annotations.runbook_url }}*Runbook:* "#,
    r#"{{ if match "^https?://" . }}<[[url .]]>{{ else }}`[[.]]` (a path in the rendered "#,
    r#"output, not a link: set `monitoring.runbook_url` in the plan){{ end }}"#,
    "\n",
    r#"{{ end }}{{ end }}"#,
);

/// The title and every alert's summary: what a phone's notification shows.
const FALLBACK_SUMMARIES: &str =
    r#"{{ range .Alerts }}{{ with .Annotations.summary }} - [[.]]{{ end }}{{ end }}"#;

pub(crate) fn title() -> String {
    escaped(TITLE)
}

pub(crate) fn text() -> String {
    escaped(TEXT)
}

pub(crate) fn fallback() -> String {
    escaped(&format!("{TITLE}{FALLBACK_SUMMARIES}"))
}

/// The template with every `[[x]]` replaced by `x`'s value escaped for Slack (`&`, `<`,
/// `>` as `&amp;`, `&lt;`, `&gt;`), and every `[[url x]]` by the same with `|` (which
/// would start a link's label) as `%7C`.
fn escaped(template: &str) -> String {
    let mut out = String::with_capacity(template.len() * 3);
    let mut rest = template;
    while let Some(i) = rest.find("[[") {
        let end = rest[i..].find("]]").map_or(rest.len(), |j| i + j);
        out.push_str(&rest[..i]);
        let expr = &rest[i + 2..end];
        let expr = match expr.strip_prefix("url ") {
            Some(e) => format!(r#"{e} | reReplaceAll "\\|" "%7C""#),
            None => expr.to_string(),
        };
        out.push_str(&format!(
            r#"{{{{ {expr} | reReplaceAll "&" "&amp;" | reReplaceAll "<" "&lt;" | reReplaceAll ">" "&gt;" }}}}"#
        ));
        rest = &rest[(end + 2).min(rest.len())..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `{{` is closed by a `}}`, and no `}}` stands alone.
    fn balanced(t: &str) -> bool {
        let mut rest = t;
        while let Some(i) = rest.find("{{") {
            match rest[i..].find("}}") {
                Some(j) => rest = &rest[i + j + 2..],
                None => return false,
            }
        }
        !rest.contains("}}")
    }

    #[test]
    fn templates_are_well_formed_and_escape_every_value() {
        for t in [title(), text(), fallback(), COLOR.to_string()] {
            assert!(balanced(&t), "{t}");
            assert!(
                !t.contains("[[") && !t.contains("]]"),
                "a marker is left: {t}"
            );
            // Every action reading an alert's value escapes it, except tests and counts.
            for action in t.split("{{").skip(1).map(|a| &a[..a.find("}}").unwrap()]) {
                let a = action.trim();
                let reads =
                    a.starts_with('.') && !a.starts_with(".Alerts") && a != ".Status | toUpper";
                if reads {
                    assert!(a.contains("reReplaceAll \"<\" \"&lt;\""), "{a} in {t}");
                }
            }
        }
        assert_eq!(
            escaped("a [[.x]] b [[url .]]"),
            r#"a {{ .x | reReplaceAll "&" "&amp;" | reReplaceAll "<" "&lt;" | reReplaceAll ">" "&gt;" }} b {{ . | reReplaceAll "\\|" "%7C" | reReplaceAll "&" "&amp;" | reReplaceAll "<" "&lt;" | reReplaceAll ">" "&gt;" }}"#
        );
    }
}
