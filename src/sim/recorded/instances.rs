//! The canary's instances on a recording. Every container exports its own memory, DB
//! connection pool, CPU counter and `up`, and the rendered rules read the track's max, sum,
//! average and count of them. The recording holds the stable version's instances; a trial's
//! canary runs as many as its phase starts ([`crate::check::CheckedPlan::canary_replicas`],
//! one under `exposition.instances: one`), canary instance `k` being recorded instance
//! `k mod n`'s series (instances told apart by `instance`, a cAdvisor container's also by
//! its container label; numbered together across the series one metric reads, such as a
//! container's memory in use and its limit) on a stretch of blocks of its own, from its
//! phase's start. Without
//! this the canary's max, sum and count would be those of the recording's instances in every
//! phase: a sum of connections four times too high at 5% of four recorded replicas.

use super::channel::{Channel, Role};
use super::recording::{Recorded, Recording};
use crate::check::{Builtin, CheckedPlan, Metric, builtin};
use crate::prom::{Query, Series, engine};
use crate::promql::Track;
use std::collections::{BTreeMap, BTreeSet};

/// The label that tells a target's series from another's.
const INSTANCE: &str = "instance";

/// The labels that tell apart the containers whose series one cAdvisor target exports, in
/// order of preference: Kubernetes' pod, else Docker's container name or id.
const CONTAINER_LABELS: [&str; 3] = ["pod", "name", "id"];

/// The built-in metrics whose series are each instance's own: what a canary instance
/// exports.
const PER_INSTANCE: [Builtin; 4] = [
    Builtin::MemoryUsage,
    Builtin::DbConnections,
    Builtin::CpuUsage,
    Builtin::TargetsUp,
];

/// The metric names `m`'s query for `track` selects, sorted, each once.
pub(super) fn selected_names(m: &Metric, track: Track) -> Vec<String> {
    let mut names: Vec<String> = engine::program(&m.expr.promql(Some(track)))
        .map(|p| {
            p.selectors()
                .iter()
                .filter_map(|(s, _)| s.name.clone())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.dedup();
    names
}

/// A recorded series' instance: its `instance` label (empty without one); for a cAdvisor
/// container series (`container_...`), which one target exports for every container,
/// with the container's own label beside it: `pod` (Kubernetes), else `name` or `id`
/// (Docker).
fn instance_of(r: &Recorded) -> String {
    let label = |k: &str| {
        (r.labels.iter())
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.as_str())
    };
    let target = label(INSTANCE).unwrap_or("");
    let container = (r.name.starts_with("container_"))
        .then(|| CONTAINER_LABELS.iter().find_map(|l| label(l)))
        .flatten();
    match container {
        Some(c) => format!("{target}/{c}"),
        None => target.to_string(),
    }
}

/// The `instance` label of canary instance `k` beyond the recording's, a copy of recorded
/// instance `of`: distinct from every recorded one.
fn copy_label(of: &str, k: usize) -> String {
    if of.is_empty() {
        format!("canary-{k}")
    } else {
        format!("{of}#{k}")
    }
}

/// Marks the channels of one instance's own series with their canary instance, and adds
/// the copies for canary instances beyond the recording's (`canary` per phase: how many
/// it runs). The series of one instance's own are those the plan's memory, DB
/// connections, CPU and targets-up metrics read (their queries, overridden or not: by
/// name, as the synthetic model takes them). Canary instance `k` reads, of each such
/// series name, the `k mod n`-th of the `n` recorded instances ([`instance_of`]) that
/// the series one metric's query reads have between them (those of memory in use and of
/// its limit together; a name two metrics read joins their names), none where the name
/// has no series of that instance, as recorded: so series a query pairs (a container's
/// memory in use and its limit) stay one instance's, while a metric's instances do not
/// depend on another's series (an `up` of other targets). Returns each name's recorded
/// instances, sorted (none: no metric reads such series).
pub(super) fn per_instance(
    plan: &CheckedPlan,
    rec: &Recording,
    canary: &[usize],
    channels: &mut Vec<Channel>,
    templates: &mut Vec<Series>,
) -> BTreeMap<String, Vec<String>> {
    let mut read = vec![false; templates.len()];
    // The names each metric's query reads, those of metrics that share a name merged.
    let mut groups: Vec<BTreeSet<String>> = Vec::new();
    for m in plan.metrics.iter().filter(|m| per_instance_metric(m)) {
        let mut names = BTreeSet::new();
        for t in Query::raw(&m.expr, Track::Canary, templates).reads() {
            read[t] = true;
            names.insert(templates[t].name.clone());
        }
        for g in std::mem::take(&mut groups) {
            if g.is_disjoint(&names) {
                groups.push(g);
            } else {
                names.extend(g);
            }
        }
        groups.push(names);
    }
    let group_of = |name: &str| groups.iter().position(|g| g.contains(name));
    let own = |ch: &Channel| ch.role == Role::Own && read[ch.canary];
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut joint: Vec<Vec<String>> = vec![Vec::new(); groups.len()];
    for ch in channels.iter().filter(|ch| own(ch)) {
        let r = &rec.series[ch.rec];
        keys.entry(r.name.clone()).or_default().push(instance_of(r));
        if let Some(g) = group_of(&r.name) {
            joint[g].push(instance_of(r));
        }
    }
    for k in keys.values_mut().chain(joint.iter_mut()) {
        k.sort();
        k.dedup();
    }
    // The instances a series is numbered among: its metric's (an own series' name is
    // always some metric's).
    let among = |r: &Recorded| group_of(&r.name).map_or(&keys[&r.name], |g| &joint[g]);
    for ch in channels.iter_mut().filter(|ch| own(ch)) {
        let r = &rec.series[ch.rec];
        ch.instance = among(r).binary_search(&instance_of(r)).ok();
    }
    let most = canary.iter().copied().max().unwrap_or(1);
    let originals: Vec<usize> = (0..channels.len())
        .filter(|&c| channels[c].instance.is_some())
        .collect();
    for c in originals {
        let r = &rec.series[channels[c].rec];
        let of = among(r);
        let i = channels[c].instance.unwrap_or(0);
        for k in (of.len()..most).filter(|k| k % of.len() == i) {
            let mut t = templates[channels[c].canary].clone();
            relabel(&mut t, r, k);
            templates.push(t);
            channels.push(Channel {
                canary: templates.len() - 1,
                instance: Some(k),
                copy: true,
                ..channels[c].clone()
            });
        }
    }
    keys
}

/// Whether `m` is one of the built-in metrics over each instance's own series (by name, so
/// also with its query overridden).
fn per_instance_metric(m: &Metric) -> bool {
    builtin(&m.name).is_some_and(|b| PER_INSTANCE.contains(&b.kind))
}

/// Gives `t`, the canary's copy of recorded series `r` as canary instance `k`, labels of
/// its own: its `instance`, and a cAdvisor container's own label, marked `#k` (or
/// `canary-k` without an `instance`), so that no aggregation by either merges it with
/// the instance it copies.
fn relabel(t: &mut Series, r: &Recorded, k: usize) {
    let container = CONTAINER_LABELS
        .iter()
        .find(|l| r.name.starts_with("container_") && r.labels.iter().any(|(n, _)| n == *l));
    for (name, value) in &mut t.labels {
        if Some(&name.as_str()) == container {
            *value = format!("{value}#{k}");
        }
    }
    let instance = (t.labels.iter())
        .find(|(name, _)| name == INSTANCE)
        .map(|(_, v)| v.clone());
    t.labels.retain(|(name, _)| name != INSTANCE);
    t.labels.push((
        INSTANCE.into(),
        copy_label(instance.as_deref().unwrap_or(""), k),
    ));
    t.labels.sort();
}

/// The warning that the stable version's series of one instance's own are the
/// recording's instances, as many as `keys` gives of each name, where the plan runs `runs`
/// (None: they match).
pub(super) fn stable_note(
    keys: &BTreeMap<String, Vec<String>>,
    runs: u32,
    per_replica: bool,
) -> Option<String> {
    // Series with the same instances are named together.
    let mut groups: Vec<(&Vec<String>, Vec<&str>)> = Vec::new();
    for (name, k) in keys.iter().filter(|(_, k)| k.len() != runs as usize) {
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, names)) => names.push(name),
            None => groups.push((k, vec![name])),
        }
    }
    let off: Vec<String> = groups
        .iter()
        .map(|(k, names)| {
            let each = if names.len() > 1 { " each" } else { "" };
            let names = (names.iter().map(|n| format!("`{n}`")))
                .collect::<Vec<_>>()
                .join(", ");
            match &k[..] {
                [one] if one.is_empty() => {
                    format!("{names}: 1{each}, without an `instance` label")
                }
                _ => {
                    let listed = (k.iter().map(|k| format!("`{k}`")))
                        .collect::<Vec<_>>()
                        .join(", ");
                    format!("{names}: {}{each} ({listed})", k.len())
                }
            }
        })
        .collect();
    (!off.is_empty()).then(|| {
        let (why, remedy) = if per_replica {
            (
                format!("it runs `service.replicas` {runs}"),
                "record every instance it runs, or set `service.replicas` to the recorded number",
            )
        } else {
            (
                "`exposition.instances: one` takes each track to run one".into(),
                "record one instance, or set `exposition.instances: replicas` with `service.replicas` the recorded number (the canary then runs its share of them by phase)",
            )
        };
        format!(
            "the stable version's memory, DB connections, CPU and `up` are the recording's instances of them ({}), while {why}: its max, sum, average and count over instances read the recorded ones; {remedy}",
            off.join("; ")
        )
    })
}
