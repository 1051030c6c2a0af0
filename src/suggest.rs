//! The nearest known name for a misspelt one, for the "did you mean" hints of the schema,
//! the semantic checks and the scenario files' checks.
//!
//! A leaf module: the edit distance is the only measure, and "close enough" is a third of
//! the longer name's length (at least one edit).

/// The known name closest to `word`, if close enough to be a likely typo. Case is ignored;
/// of names equally close, the first in `known` wins.
pub(crate) fn nearest(word: &str, known: &[String]) -> Option<String> {
    known
        .iter()
        .map(|k| (levenshtein(&word.to_lowercase(), &k.to_lowercase()), k))
        .filter(|(d, k)| *d <= (k.chars().count().max(word.chars().count()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.clone())
}

/// The number of single-character insertions, deletions and substitutions from `a` to `b`.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_key() {
        let known: Vec<String> = ["traffic", "groups", "duration", "name"]
            .map(String::from)
            .to_vec();
        assert_eq!(nearest("trafic", &known).as_deref(), Some("traffic"));
        assert_eq!(nearest("duraton", &known).as_deref(), Some("duration"));
        assert_eq!(nearest("zzz", &known), None);
    }
}
