//! Label sets as the engine handles them: sorted `(name, value)` pairs, the metric name
//! included as `__name__`, and the label arithmetic of vector matching and aggregation.
//! All of it runs once, when a query is bound to its series, never per evaluation.

use std::collections::HashMap;

pub(super) const NAME: &str = "__name__";

/// A label set sorted by name; no empty values.
pub(super) type Labels = Vec<(String, String)>;

/// A series' labels with its name.
pub(super) fn with_name(name: &str, labels: &[(String, String)]) -> Labels {
    let mut l: Labels = labels.to_vec();
    if !name.is_empty() {
        l.push((NAME.to_string(), name.to_string()));
    }
    l.sort();
    l
}

pub(super) fn get<'a>(l: &'a Labels, name: &str) -> &'a str {
    l.iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

pub(super) fn drop_name(l: &Labels) -> Labels {
    l.iter().filter(|(k, _)| k != NAME).cloned().collect()
}

/// Only the labels in `names`.
pub(super) fn keep(l: &Labels, names: &[String]) -> Labels {
    l.iter()
        .filter(|(k, _)| names.iter().any(|n| n == k))
        .cloned()
        .collect()
}

/// All labels but those in `names`.
pub(super) fn without(l: &Labels, names: &[String]) -> Labels {
    l.iter()
        .filter(|(k, _)| !names.iter().any(|n| n == k))
        .cloned()
        .collect()
}

/// Sets (or, with an empty value, deletes) a label.
pub(super) fn set(l: &mut Labels, name: &str, value: &str) {
    l.retain(|(k, _)| k != name);
    if !value.is_empty() {
        l.push((name.to_string(), value.to_string()));
        l.sort();
    }
}

/// The matching signature of a binary operation: `on` keeps the listed labels, `ignoring`
/// (or no modifier) drops them and the metric name.
pub(super) fn signature(l: &Labels, on: bool, names: &[String]) -> Labels {
    if on {
        keep(l, names)
    } else {
        l.iter()
            .filter(|(k, _)| k != NAME && !names.iter().any(|n| n == k))
            .cloned()
            .collect()
    }
}

/// Numbers label sets in first-seen order: equal sets get the same index.
#[derive(Default)]
pub(super) struct Interner {
    index: HashMap<Labels, usize>,
    pub(super) sets: Vec<Labels>,
}

impl Interner {
    pub(super) fn id(&mut self, l: Labels) -> usize {
        if let Some(&i) = self.index.get(&l) {
            return i;
        }
        let i = self.sets.len();
        self.sets.push(l.clone());
        self.index.insert(l, i);
        i
    }
}

/// Groups of two or more positions holding equal label sets.
pub(super) fn duplicates(slots: &[Labels]) -> Vec<Vec<usize>> {
    let mut by: HashMap<&Labels, Vec<usize>> = HashMap::new();
    for (i, l) in slots.iter().enumerate() {
        by.entry(l).or_default().push(i);
    }
    let mut out: Vec<Vec<usize>> = by.into_values().filter(|g| g.len() > 1).collect();
    out.sort();
    out
}

/// `{a="x", b="y"}` for messages.
pub(super) fn display(l: &Labels) -> String {
    let name = get(l, NAME);
    let inner: Vec<String> = l
        .iter()
        .filter(|(k, _)| k != NAME)
        .map(|(k, v)| format!("{k}={}", crate::promql::quote(v)))
        .collect();
    format!("{name}{{{}}}", inner.join(", "))
}
