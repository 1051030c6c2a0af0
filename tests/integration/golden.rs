//! Golden files of what users see, shared by the plan and scenario-file fixtures: a folder of
//! `NAME.yaml` inputs whose first line says the expected exit code (`# exit 1: what is
//! wrong`), each with its expected stderr in `NAME.stderr`. `UPDATE_GOLDEN=1` rewrites the
//! goldens instead of comparing.

use std::collections::BTreeSet;
use std::path::Path;

/// Fixture names in `dir`: every `NAME.yaml` (file or folder) and every `NAME.stderr`.
pub fn fixture_names(dir: &Path) -> Vec<String> {
    let mut names = BTreeSet::new();
    for e in std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
    {
        let n = e.file_name().to_string_lossy().into_owned();
        if let Some(stem) = n
            .strip_suffix(".yaml")
            .or_else(|| n.strip_suffix(".stderr"))
        {
            names.insert(stem.to_string());
        }
    }
    names.into_iter().collect()
}

/// The exit code a fixture's first line states: `# exit N: what is wrong`.
pub fn stated_exit_code(first_line: &str) -> Option<i32> {
    first_line
        .strip_prefix("# exit ")
        .and_then(|r| r.split(':').next())
        .and_then(|c| c.parse().ok())
}

/// Compares `actual` with the golden file, or rewrites it under `UPDATE_GOLDEN=1`.
pub fn compare(path: &Path, actual: &str, failures: &mut Vec<String>) {
    let expected = std::fs::read_to_string(path).ok();
    if expected.as_deref() == Some(actual) {
        return;
    }
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, actual).expect("write golden");
        eprintln!("updated {}", path.display());
        return;
    }
    failures.push(format!(
        "{} differs (UPDATE_GOLDEN=1 to accept)\n--- expected\n{}\n--- actual\n{actual}",
        path.display(),
        expected.as_deref().unwrap_or("<missing>"),
    ));
}

/// Every finding in human output names `file`, a line and a column.
pub fn assert_located(name: &str, stderr: &str, file: &str) {
    for line in stderr
        .lines()
        .filter(|l| l.contains(": error[") || l.contains(": warning["))
    {
        let rest = line
            .strip_prefix(&format!("{file}:"))
            .unwrap_or_else(|| panic!("{name}: `{line}` names {file}"));
        let pos: Vec<&str> = rest.splitn(3, ':').collect();
        assert!(
            pos.len() == 3 && pos[0].parse::<usize>().is_ok() && pos[1].parse::<usize>().is_ok(),
            "{name}: `{line}` has line:col"
        );
    }
}

/// The codes the fixtures produced are exactly the codes listed: each has a golden, and
/// none is missing from the list.
pub fn assert_codes_covered(seen: &BTreeSet<String>, listed: &[&str]) {
    let missing: Vec<&&str> = listed.iter().filter(|c| !seen.contains(**c)).collect();
    assert!(missing.is_empty(), "codes without a golden: {missing:?}");
    let unknown: Vec<&String> = seen
        .iter()
        .filter(|c| !listed.contains(&c.as_str()))
        .collect();
    assert!(unknown.is_empty(), "codes not listed: {unknown:?}");
}
