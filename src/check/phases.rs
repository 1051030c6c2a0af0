//! Checks of user groups and phases: unique names, traffic that never decreases and ends at
//! 100%, an audience that never shrinks, groups that exist, durations where they are needed.

use super::checked::{Group, Phase};
use crate::diagnostic::Diagnostic;
use crate::limits::MAX_PHASE_MS;
use crate::model::{Plan, Share};
use crate::suggest::nearest;
use serde_json::Value;

pub(crate) fn groups(plan: &Plan, f: &mut Vec<Diagnostic>) -> Vec<Group> {
    let shares = plan.traffic.as_ref().map(|t| &t.groups);
    if let Some(shares) = shares {
        for name in shares.keys() {
            if !plan.user_groups.contains_key(name) {
                f.push(unknown_group(
                    plan,
                    name,
                    format!("/traffic/groups/{name}"),
                    true,
                ));
            }
        }
        let total: u32 = shares.values().map(|s| u32::from(s.hundredths())).sum();
        if total > 10_000 {
            f.push(
                Diagnostic::error("group-shares-exceed", "/traffic/groups", format!("the groups' shares add up to {}, over 100%", Share::from_hundredths(total.min(65_535) as u16).map_or_else(|| format!("{}%", total / 100), |s| s.to_string())))
                    .at_key().with_hint("each share is the group's part of all requests; together they cannot pass 100%"),
            );
        }
    }
    plan.user_groups
        .iter()
        .map(|(name, conditions)| Group {
            name: name.clone(),
            conditions: conditions.clone(),
            share: shares.and_then(|s| s.get(name).copied()),
        })
        .collect()
}

/// A share written without `%` and below 1 (`0.05`) is read as percent (0.05%), which is
/// probably not what was meant: 5% was. Warns with the likely intended value.
fn fraction_slip(doc: &Value, pointer: &str, of_what: &str, f: &mut Vec<Diagnostic>) {
    let v = match doc.pointer(pointer) {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) if !s.contains('%') => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    let Some(v) = v.filter(|v| *v > 0.0 && *v < 1.0) else {
        return;
    };
    let meant = crate::model::trim(v * 100.0);
    f.push(
        Diagnostic::warning(
            "traffic-looks-like-fraction",
            pointer.to_string(),
            format!("`{v}` is read as {v}% {of_what}, not {meant}%"),
        )
        .with_hint(format!(
            "a share without `%` is a percentage; write `{meant}%` if you meant {meant}%, or `{v}%` to keep {v}%"
        )),
    );
}

fn unknown_group(plan: &Plan, name: &str, pointer: String, at_key: bool) -> Diagnostic {
    let known: Vec<String> = plan.user_groups.keys().cloned().collect();
    let mut d = Diagnostic::error(
        "unknown-group",
        pointer,
        format!("unknown user group `{name}`"),
    );
    if at_key {
        d = d.at_key();
    }
    match nearest(name, &known) {
        Some(n) => d.with_hint(format!("did you mean `{n}`?")),
        None if known.is_empty() => d.with_hint("define it under `user_groups:`"),
        None => d.with_hint(format!("defined groups: {}", known.join(", "))),
    }
}

pub(crate) fn phases(
    plan: &Plan,
    doc: &Value,
    groups: &[Group],
    f: &mut Vec<Diagnostic>,
) -> Vec<Phase> {
    // Group shares are checked here because this pass sees how they were written.
    for name in plan.traffic.iter().flat_map(|t| t.groups.keys()) {
        let pointer = format!("/traffic/groups/{}", crate::pointer::escape(name));
        fraction_slip(doc, &pointer, "of all requests", f);
    }
    let n = plan.phases.len();
    let mut out: Vec<Phase> = Vec::with_capacity(n);
    for (i, p) in plan.phases.iter().enumerate() {
        let at = |field: &str| format!("/phases/{i}/{field}");
        if let Some(j) = plan.phases[..i].iter().position(|q| q.name == p.name) {
            f.push(
                Diagnostic::error(
                    "duplicate-phase",
                    at("name"),
                    format!("phase name `{}` is used twice (also phases[{j}])", p.name),
                )
                .with_hint("give every phase its own name"),
            );
        }
        fraction_slip(doc, &at("traffic"), "of users", f);
        if let Some(prev) = out.last()
            && p.traffic < prev.traffic
        {
            f.push(
                Diagnostic::error("traffic-decreases", at("traffic"), format!("traffic falls from {} in `{}` to {} in `{}`", prev.traffic, prev.name, p.traffic, p.name))
                    .with_hint("users would move back from the canary to stable; a phase's share must be at least the previous one's"),
            );
        }
        if i + 1 == n && p.traffic != Share::FULL {
            f.push(
                Diagnostic::error(
                    "last-phase-not-full",
                    at("traffic"),
                    format!(
                        "the last phase `{}` sends {} to the canary, not 100%",
                        p.name, p.traffic
                    ),
                )
                .with_hint("end with a phase at `traffic: 100%` that completes the release"),
            );
        }
        if let Some(d) = p.duration
            && d.millis() > MAX_PHASE_MS
        {
            f.push(
                Diagnostic::error(
                    "out-of-range",
                    at("duration"),
                    format!(
                        "phase `{}` is longer than the longest allowed, `{}d`",
                        p.name,
                        MAX_PHASE_MS / 86_400_000
                    ),
                )
                .with_hint(
                    "releases are staged over days or weeks; check the unit (`90d`, not `900d`)",
                ),
            );
        }
        if i + 1 < n && p.duration.is_none() {
            f.push(
                Diagnostic::error(
                    "missing-duration",
                    format!("/phases/{i}"),
                    format!(
                        "phase `{}` has no `duration`; only the last phase may run on",
                        p.name
                    ),
                )
                .with_hint("add e.g. `duration: 24h`"),
            );
        }
        if !p.groups.is_empty()
            && plan.routing.group_header.is_none()
            && plan.phases[..i].iter().all(|q| q.groups.is_empty())
        {
            f.push(
                Diagnostic::error(
                    "group-header-missing",
                    format!("/phases/{i}/groups"),
                    format!(
                        "phase `{}` targets user groups, but `routing` names no `group_header` to recognise them by",
                        p.name
                    ),
                )
                .with_hint("add `group_header: X-User-Group` under `routing:` (the header your gateway sets to the user's group), or remove the phase's `groups`"),
            );
        }
        let mut idx = Vec::new();
        for (j, g) in p.groups.iter().enumerate() {
            match groups.iter().position(|x| &x.name == g) {
                Some(k) => idx.push(k),
                None => f.push(unknown_group(
                    plan,
                    g,
                    format!("/phases/{i}/groups/{j}"),
                    false,
                )),
            }
        }
        if p.traffic == Share::ZERO && p.groups.is_empty() {
            f.push(
                Diagnostic::warning(
                    "empty-canary",
                    at("traffic"),
                    format!("phase `{}` sends nobody to the canary", p.name),
                )
                .with_hint("give it a share of traffic or target a user group"),
            );
        }
        if let Some(prev) = out.last() {
            // At 100% everyone is on the canary, so targeting no longer matters.
            let dropped: Vec<&str> = prev
                .groups
                .iter()
                .filter(|g| !idx.contains(g))
                .map(|&g| groups[g].name.as_str())
                .collect();
            if !dropped.is_empty() && p.traffic != Share::FULL {
                let list = dropped
                    .iter()
                    .map(|g| format!("`{g}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                f.push(
                    Diagnostic::error("audience-shrinks", format!("/phases/{i}/groups"), format!("phase `{}` stops targeting {list}, targeted in `{}`", p.name, prev.name))
                        .with_hint("those users would flip back to stable; keep every targeted group in later phases"),
                );
            }
        }
        out.push(Phase {
            name: p.name.clone(),
            traffic: p.traffic,
            groups: idx,
            duration: p.duration,
        });
    }
    out
}
