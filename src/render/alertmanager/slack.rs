//! The Slack message's templates (Alertmanager's Go templates over its notification data:
//! `.Status`, `.Alerts`, `.GroupLabels`, `.CommonLabels`, and per alert `.Labels` and
//! `.Annotations`). What they show and why is in the parent module's header.
//!
//! Slack reads `&`, `<` and `>` as the start of entities, links and mentions
//! (`<!channel>`, `<@U123>`, `<https://x|text>`), in every text field. So every value
//! taken from an alert goes through [`esc`], Slack's own escaping, done at send time with
//! Alertmanager's `reReplaceAll`; a link's URL also has `|` percent-encoded, which would
//! otherwise end the URL. Nothing else here varies: the templates are fixed text.

/// `&`, `<`, `>` as Slack's entities: `{{ <expr> | reReplaceAll "&" "&amp;" | ... }}`.
fn esc(expr: &str) -> String {
    format!(
        "{{{{ {expr} | reReplaceAll \"&\" \"&amp;\" | reReplaceAll \"<\" \"&lt;\" \
         | reReplaceAll \">\" \"&gt;\" }}}}"
    )
}

/// [`esc`] for a URL inside `<...>`, with `|` (which would start the link's label) as `%7C`.
fn esc_url(expr: &str) -> String {
    esc(&format!("{expr} | reReplaceAll \"\\\\|\" \"%7C\""))
}

/// The attachment's colour: Slack's `danger` (red) for a firing critical, `warning`
/// (orange) for other firing alerts, `good` (green) once resolved.
pub const COLOR: &str = "{{ if eq .Status \"firing\" }}{{ if eq .CommonLabels.severity \
                         \"critical\" }}danger{{ else }}warning{{ end }}{{ else }}good{{ end }}";

/// `[FIRING:1] CanaryRollbackErrorRate | plan lawsker, phase beta, release v1.1.0`; a group
/// of alerts with different names is `[FIRING:3] 3 alerts | ...`.
pub fn title() -> String {
    format!(
        "[{{{{ .Status | toUpper }}}}{{{{ if eq .Status \"firing\" }}}}:{{{{ .Alerts.Firing | len \
         }}}}{{{{ end }}}}] {{{{ with .CommonLabels.alertname }}}}{}{{{{ else }}}}{{{{ len .Alerts \
         }}}} alerts{{{{ end }}}}{{{{ with .GroupLabels.plan }}}} | plan {}{{{{ end }}}}{{{{ with \
         .GroupLabels.phase }}}}, phase {}{{{{ end }}}}{{{{ with .CommonLabels.release }}}}, \
         release {}{{{{ end }}}}",
        esc("."),
        esc("."),
        esc("."),
        esc(".")
    )
}

/// Per alert, a paragraph:
///
/// ```text
/// *CanaryRollbackErrorRate*: error_rate is 20% (> 10% for 5m)
/// Rollback condition `error_rate` met by the canary v1.1.0 of `backend` in phase `beta`: ...
/// *Action:* Roll the release back now: ...
/// *Runbook:* <https://docs.lawsker.com/releases/lawsker/RUNBOOK.md#rollback-error_rate>
/// ```
///
/// A resolved alert says so after its name and has no action line; a blank line separates
/// alerts.
pub fn text() -> String {
    // A blank line between alerts.
    let mut t = String::from("{{ range $i, $alert := .Alerts }}{{ if $i }}\n{{ end }}");
    t += &format!(
        "*{}*{{{{ if eq .Status \"resolved\" }}}} (resolved){{{{ end }}}}{{{{ with \
         .Annotations.summary }}}}: {}{{{{ end }}}}\n",
        esc(".Labels.alertname"),
        esc(".")
    );
    t += &format!(
        "{{{{ with .Annotations.description }}}}{}\n{{{{ end }}}}",
        esc(".")
    );
    t += &format!(
        "{{{{ if eq .Status \"firing\" }}}}{{{{ with .Annotations.action }}}}*Action:* {}\n\
         {{{{ end }}}}{{{{ end }}}}",
        esc(".")
    );
    t += &format!(
        "{{{{ with .Annotations.runbook_url }}}}*Runbook:* {{{{ if match \"^https?://\" . \
         }}}}<{}>{{{{ else }}}}`{}` (a path in the rendered output, not a link: set \
         `monitoring.runbook_url` in the plan){{{{ end }}}}\n{{{{ end }}}}",
        esc_url("."),
        esc(".")
    );
    t += "{{ end }}";
    t
}

/// The title and every alert's summary: what a phone's notification shows.
pub fn fallback() -> String {
    format!(
        "{}{{{{ range .Alerts }}}}{{{{ with .Annotations.summary }}}} - {}{{{{ end }}}}{{{{ end \
         }}}}",
        title(),
        esc(".")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go's template lexer: every action is closed, and no text outside actions holds `{{`.
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
            esc(".x"),
            "{{ .x | reReplaceAll \"&\" \"&amp;\" | reReplaceAll \"<\" \"&lt;\" | reReplaceAll \
             \">\" \"&gt;\" }}"
        );
    }
}
