//! Shards of a Monte Carlo run, for runs that outgrow one machine: `plan simulate --shard
//! K/N` runs the K-th of N slices of the trials ([`Slice`]) and writes a [`Shard`], its
//! tallies with everything the report needs (the plan's and the scenario file's text, the
//! settings); `plan merge` checks that its shards are the N slices of one run and adds
//! them up. Tallies are integer sums and a trial depends only on (seed, trial index), so
//! the sum is the unsharded run's tallies exactly, and its report the same bytes.
//!
//! A shard is refused when it is not one of the run's slices: another plan, scenario file,
//! seed, trial count, semantics, shard count or version of `plan` (whose model, and so
//! whose numbers, may differ), a slice given twice or missing, or tallies that do not fit
//! the plan.

use crate::limits::MAX_SHARDS;
use crate::prom::Semantics;
use crate::sim::montecarlo::{MonteCarlo, ScenarioResult, Slice, Tally, Twins};
use crate::sim::scenario::Scenarios;
use serde::{Deserialize, Serialize};

/// What a shard file says it is.
pub(crate) const SHARD_KIND: &str = "plan simulate shard";
/// The layout of [`Shard`]; bumped when it changes.
pub(crate) const SHARD_SCHEMA_VERSION: u32 = 1;
/// The version of `plan` that writes and merges shards: its release and the digest of
/// the sources it was built from (see `build.rs`), so that shards from two commits of one
/// release are not merged.
pub(crate) const PLAN_VERSION: &str =
    concat!(env!("CARGO_PKG_VERSION"), "+", env!("PLAN_SOURCE_DIGEST"));

/// One slice of a run, as `plan simulate --shard` writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Shard {
    pub(crate) kind: String,
    pub(crate) schema_version: u32,
    /// The version of `plan` that ran it.
    pub(crate) plan_version: String,
    pub(crate) shard: Part,
    pub(crate) seed: u64,
    /// Trials per scenario of the whole run.
    pub(crate) trials_per_scenario: u64,
    /// As `--semantics` names it.
    pub(crate) semantics: String,
    pub(crate) plan: Text,
    /// The scenario file; None: the built-in scenarios.
    pub(crate) scenarios: Option<Text>,
    /// Per scenario, in file order: its tally over the slice.
    pub(crate) results: Vec<ResultPart>,
    /// The twins' tally over the slice, when the run compares with twins.
    pub(crate) twins: Option<TwinsPart>,
}

/// Which slice a shard is: `index` of `count`, from 1, and its trials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Part {
    pub(crate) index: u64,
    pub(crate) count: u64,
    /// The first trial and one past the last (of every scenario).
    pub(crate) trials: [u64; 2],
}

/// A file's name and text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Text {
    pub(crate) name: String,
    pub(crate) text: String,
}

/// One scenario's part of a shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ResultPart {
    pub(crate) scenario: String,
    pub(crate) detect_unit_ms: i64,
    pub(crate) tally: Tally,
}

/// The twins' part of a shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TwinsPart {
    /// The scenario whose trials they are (index); None: the extra fault-free pass.
    pub(crate) scenario: Option<usize>,
    pub(crate) tally: Tally,
}

/// What the run was, as a shard records it.
pub(crate) struct Run<'a> {
    pub(crate) seed: u64,
    pub(crate) trials_per_scenario: u64,
    pub(crate) semantics: Semantics,
    pub(crate) slice: Slice,
    pub(crate) plan: Text,
    pub(crate) scenarios: Option<Text>,
    pub(crate) results: &'a MonteCarlo<'a>,
}

impl Shard {
    /// The shard of a run over `slice` of the trials.
    pub(crate) fn of(run: Run<'_>) -> Shard {
        let trials = run.slice.trials(run.trials_per_scenario);
        Shard {
            kind: SHARD_KIND.into(),
            schema_version: SHARD_SCHEMA_VERSION,
            plan_version: PLAN_VERSION.into(),
            shard: Part {
                index: run.slice.index() + 1,
                count: run.slice.count(),
                trials: [trials.start, trials.end],
            },
            seed: run.seed,
            trials_per_scenario: run.trials_per_scenario,
            semantics: run.semantics.name().into(),
            plan: run.plan,
            scenarios: run.scenarios,
            results: run
                .results
                .results
                .iter()
                .map(|r| ResultPart {
                    scenario: r.scenario.name.clone(),
                    detect_unit_ms: r.detect_unit_ms,
                    tally: r.tally.clone(),
                })
                .collect(),
            twins: run.results.twins.as_ref().map(|t| TwinsPart {
                scenario: t.scenario,
                tally: t.tally.clone(),
            }),
        }
    }

    /// The semantics it names, if it names one.
    pub(crate) fn semantics(&self) -> Option<Semantics> {
        [Semantics::Prometheus2, Semantics::Prometheus3]
            .into_iter()
            .find(|s| s.name() == self.semantics)
    }
}

/// Why shards do not make one run. `file` is the shard file's name, as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MergeError {
    /// Not a shard, or a shard of a layout this version does not read.
    NotAShard { file: String },
    /// Written by another version of `plan`.
    OtherVersion { file: String, version: String },
    /// Differs from the first shard in `what` (`plan`, `seed`...).
    OtherRun {
        file: String,
        first: String,
        what: &'static str,
    },
    /// Its slice does not fit: an index past the count, or trials not the slice's.
    BadSlice { file: String },
    /// Two files hold the same slice.
    Twice {
        index: u64,
        count: u64,
        files: [String; 2],
    },
    /// Slices no file holds (from 1).
    Missing { missing: Vec<u64>, count: u64 },
    /// Its tallies do not fit its plan and slice (edited, or damaged).
    BadTallies { file: String, why: String },
}

impl std::fmt::Display for MergeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MergeError::NotAShard { file } => write!(
                f,
                "{file}: not a shard of `plan simulate --shard` (schema version {SHARD_SCHEMA_VERSION}); merge the files that `plan simulate --shard K/N` wrote"
            ),
            MergeError::OtherVersion { file, version } => write!(
                f,
                "{file}: written by plan {version}, and this is plan {PLAN_VERSION}; its numbers may come from another model, so run every shard and the merge with one version of plan"
            ),
            MergeError::OtherRun { file, first, what } => write!(
                f,
                "{file}: a shard of another run than {first} (its {what} differs); merge only the shards of one run: one plan, scenario file, seed, trial count, semantics and shard count"
            ),
            MergeError::BadSlice { file } => write!(
                f,
                "{file}: its slice of the trials is not the one its shard number names; rerun that shard"
            ),
            MergeError::Twice {
                index,
                count,
                files,
            } => write!(
                f,
                "shard {index}/{count} is given twice ({} and {}); give each shard once",
                files[0], files[1]
            ),
            MergeError::Missing { missing, count } => {
                let list: Vec<String> = missing.iter().map(|k| format!("{k}/{count}")).collect();
                write!(
                    f,
                    "shard{} {} {} missing; merge all {count} shards of the run",
                    if missing.len() == 1 { "" } else { "s" },
                    list.join(", "),
                    if missing.len() == 1 { "is" } else { "are" },
                )
            }
            MergeError::BadTallies { file, why } => write!(
                f,
                "{file}: its tallies do not fit its plan ({why}); rerun that shard"
            ),
        }
    }
}

/// The merged shards: the first shard's run, with the tallies of all.
#[derive(Debug)]
pub(crate) struct Merged {
    /// The run, its tallies the sums of every shard's (its `shard` the whole run's).
    pub(crate) shard: Shard,
}

/// Adds up `shards` (file name, shard), which must be all the slices of one run. The
/// order of the files does not matter.
pub(crate) fn merge(shards: Vec<(String, Shard)>) -> Result<Merged, MergeError> {
    let mut shards = shards.into_iter();
    let Some((first_file, first)) = shards.next() else {
        return Err(MergeError::Missing {
            missing: Vec::new(),
            count: 0,
        });
    };
    let rest: Vec<(String, Shard)> = shards.collect();
    let all = || std::iter::once((&first_file, &first)).chain(rest.iter().map(|(f, s)| (f, s)));
    for (file, s) in all() {
        if s.kind != SHARD_KIND || s.schema_version != SHARD_SCHEMA_VERSION {
            return Err(MergeError::NotAShard { file: file.clone() });
        }
        if s.plan_version != PLAN_VERSION {
            return Err(MergeError::OtherVersion {
                file: file.clone(),
                version: s.plan_version.clone(),
            });
        }
    }
    for (file, s) in all() {
        let differs = [
            ("plan", s.plan != first.plan),
            ("scenario file", s.scenarios != first.scenarios),
            ("seed", s.seed != first.seed),
            (
                "trial count",
                s.trials_per_scenario != first.trials_per_scenario,
            ),
            ("semantics", s.semantics != first.semantics),
            ("shard count", s.shard.count != first.shard.count),
        ];
        if let Some((what, _)) = differs.into_iter().find(|(_, d)| *d) {
            return Err(MergeError::OtherRun {
                file: file.clone(),
                first: first_file.clone(),
                what,
            });
        }
    }
    let count = first.shard.count;
    if !(1..=MAX_SHARDS).contains(&count) {
        return Err(MergeError::BadSlice { file: first_file });
    }
    let mut seen: Vec<Option<&String>> = vec![None; count as usize];
    for (file, s) in all() {
        let slice = s
            .shard
            .index
            .checked_sub(1)
            .and_then(|i| Slice::new(i, count));
        let Some(slice) = slice else {
            return Err(MergeError::BadSlice { file: file.clone() });
        };
        let trials = slice.trials(s.trials_per_scenario);
        if s.shard.trials != [trials.start, trials.end] {
            return Err(MergeError::BadSlice { file: file.clone() });
        }
        if let Some(other) = seen[slice.index() as usize].replace(file) {
            return Err(MergeError::Twice {
                index: s.shard.index,
                count,
                files: [other.clone(), file.clone()],
            });
        }
    }
    let missing: Vec<u64> = (1..=count)
        .filter(|k| seen[*k as usize - 1].is_none())
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing { missing, count });
    }
    for (file, s) in &rest {
        same_parts(&first, s).map_err(|why| MergeError::BadTallies {
            file: file.clone(),
            why,
        })?;
    }
    let mut merged = first;
    for (_, s) in &rest {
        for (a, b) in merged.results.iter_mut().zip(&s.results) {
            a.tally.merge(&b.tally);
        }
        if let (Some(a), Some(b)) = (&mut merged.twins, &s.twins) {
            a.tally.merge(&b.tally);
        }
    }
    merged.shard = Part {
        index: 1,
        count: 1,
        trials: [0, merged.trials_per_scenario],
    };
    Ok(Merged { shard: merged })
}

/// Whether two shards of one run hold the same scenarios and twins, in the same order.
fn same_parts(a: &Shard, b: &Shard) -> Result<(), String> {
    let names = |s: &Shard| -> Vec<(String, i64)> {
        s.results
            .iter()
            .map(|r| (r.scenario.clone(), r.detect_unit_ms))
            .collect()
    };
    if names(a) != names(b) {
        return Err("its scenarios are not the first shard's".into());
    }
    if a.twins.as_ref().map(|t| t.scenario) != b.twins.as_ref().map(|t| t.scenario) {
        return Err("its healthy twins are not the first shard's".into());
    }
    Ok(())
}

impl Merged {
    /// The run's results over `scenarios` (the ones its scenario file gives, in order):
    /// Err when the tallies do not fit them or the plan (`phases`, `rules`), or do not
    /// count the whole run's trials.
    pub(crate) fn results<'s>(
        &self,
        scenarios: &'s Scenarios,
        phases: usize,
        rules: usize,
    ) -> Result<MonteCarlo<'s>, String> {
        let s = &self.shard;
        if s.results.len() != scenarios.scenarios.len()
            || s.results
                .iter()
                .zip(&scenarios.scenarios)
                .any(|(r, sc)| r.scenario != sc.name)
        {
            return Err("its scenarios are not its scenario file's".into());
        }
        let tallies = s.results.iter().map(|r| &r.tally);
        if s.results.iter().any(|r| r.detect_unit_ms <= 0) {
            return Err("a scenario's unit of detection times is not positive".into());
        }
        for t in tallies.chain(s.twins.iter().map(|t| &t.tally)) {
            if !t.fits(phases, rules) {
                return Err("a tally's phases or rules are not the plan's".into());
            }
            if t.trials != s.trials_per_scenario {
                return Err(format!(
                    "a scenario counts {} trials, not {}",
                    t.trials, s.trials_per_scenario
                ));
            }
        }
        if let Some(i) = s.twins.as_ref().and_then(|t| t.scenario)
            && i >= scenarios.scenarios.len()
        {
            return Err("its twins' scenario is not in its scenario file".into());
        }
        Ok(MonteCarlo {
            results: s
                .results
                .iter()
                .zip(&scenarios.scenarios)
                .map(|(r, scenario)| ScenarioResult {
                    scenario,
                    tally: r.tally.clone(),
                    detect_unit_ms: r.detect_unit_ms,
                })
                .collect(),
            trials: Vec::new(),
            twins: s.twins.as_ref().map(|t| Twins {
                scenario: t.scenario,
                tally: t.tally.clone(),
            }),
        })
    }
}
