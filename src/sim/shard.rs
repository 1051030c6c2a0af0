//! Shards of a Monte Carlo run, for runs that outgrow one machine: `plan simulate --shard
//! K/N` runs the K-th of N slices of the trials ([`Slice`]) and writes a [`Shard`], its
//! tallies with everything the report needs (the plan's and the scenario file's text, the
//! settings, and for a run on a recording its digest, what the report says of it and its
//! request rate (the scenarios are read at it), so
//! that the merge need not read it); `plan merge` checks that its shards are the N slices of one run and adds
//! them up. Tallies are integer sums and a trial depends only on (seed, trial index), so
//! the sum is the unsharded run's tallies exactly, and its report the same bytes.
//!
//! A shard is refused when it is not one of the run's slices: another plan, scenario file,
//! seed, trial count, semantics, shard count, recording or version of `plan` (whose model, and so
//! whose numbers, may differ), a slice given twice or missing, or tallies that do not fit
//! the plan.

use crate::check::CheckedPlan;
use crate::limits::{MAX_SHARDS, MAX_TRIALS};
use crate::prom::Semantics;
use crate::sim::montecarlo::{
    MonteCarlo, ScenarioResult, Shape, Slice, Tally, Twins, detect_unit_of,
};
use crate::sim::report::RecordingAssumptions;
use crate::sim::scenario::Scenarios;
use serde::{Deserialize, Serialize};

/// What a shard file says it is.
pub(crate) const SHARD_KIND: &str = "plan simulate shard";
/// The layout of [`Shard`]; bumped when it changes.
pub(crate) const SHARD_SCHEMA_VERSION: u32 = 2;
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
    /// With `--baseline`: the recording the trials were built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) recording: Option<RecordingPart>,
}

/// The recording of a shard run on one (`--baseline`): what tells it apart from another,
/// and what the report says of it (the merge does not read the recording).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RecordingPart {
    /// [`crate::sim::recorded::Recording::digest`].
    pub(crate) digest: String,
    pub(crate) assumptions: RecordingAssumptions,
    /// The recording's request rate ([`crate::sim::recorded::Baseline::requests_per_second`]),
    /// the run's: the merge reads the scenarios at it, as the run did.
    #[serde(with = "exact")]
    pub(crate) requests_per_second: Option<f64>,
}

/// A number kept as the shortest text that reads back to it: a JSON number may be read
/// back a bit off, and the merged report must give the run's bytes.
mod exact {
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        v.map(|x| x.to_string()).serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|t| {
                t.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| D::Error::custom(format!("`{t}` is not a request rate")))
            })
            .transpose()
    }
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
    pub(crate) recording: Option<RecordingPart>,
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
            recording: run.recording,
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
    /// Differs from the first shard in `what` (`plan`, `seed`...): both `values`, when
    /// they are short.
    OtherRun {
        file: String,
        first: String,
        what: &'static str,
        values: String,
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
            MergeError::OtherRun {
                file,
                first,
                what,
                values,
            } => write!(
                f,
                "{file}: a shard of another run than {first} (its {what} differs{}); merge only the shards of one run: one plan, scenario file, seed, trial count, semantics and shard count",
                if values.is_empty() {
                    String::new()
                } else {
                    format!(": {values}")
                }
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
                "{file}: a damaged shard: its tallies are not a count of its trials of its plan ({why}); rerun that shard"
            ),
        }
    }
}

/// Shards checked to be the N slices of one run, in slice order.
#[derive(Debug)]
pub(crate) struct Slices {
    shards: Vec<(String, Shard)>,
}

/// Checks that `shards` (file name, shard) are all the slices of one run, in any order.
/// Their tallies are checked against the plan by [`Slices::results`].
pub(crate) fn slices(shards: Vec<(String, Shard)>) -> Result<Slices, MergeError> {
    let Some((first_file, first)) = shards.first() else {
        return Err(MergeError::Missing {
            missing: Vec::new(),
            count: 0,
        });
    };
    for (file, s) in &shards {
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
    // The files' texts, not their names: shards run from other folders name the plan by
    // other paths.
    let text = |t: &Option<Text>| t.as_ref().map(|t| t.text.clone());
    for (file, s) in &shards {
        let show = |v: &dyn std::fmt::Display, w: &dyn std::fmt::Display| {
            format!("{v} there, {w} in {first_file}")
        };
        let differs = [
            ("plan", s.plan.text != first.plan.text, String::new()),
            (
                "scenario file",
                text(&s.scenarios) != text(&first.scenarios),
                String::new(),
            ),
            ("seed", s.seed != first.seed, show(&s.seed, &first.seed)),
            (
                "trial count",
                s.trials_per_scenario != first.trials_per_scenario,
                show(&s.trials_per_scenario, &first.trials_per_scenario),
            ),
            (
                "semantics",
                s.semantics != first.semantics,
                show(&s.semantics, &first.semantics),
            ),
            (
                "shard count",
                s.shard.count != first.shard.count,
                show(&s.shard.count, &first.shard.count),
            ),
            // One recording however its files were named; the report names them as the
            // first shard does.
            (
                "recording (--baseline)",
                s.recording.as_ref().map(|r| &r.digest)
                    != first.recording.as_ref().map(|r| &r.digest),
                match (&s.recording, &first.recording) {
                    (None, _) => format!("none there, {first_file} ran on one"),
                    (_, None) => format!("one there, {first_file} ran without"),
                    _ => "another recording's contents".to_string(),
                },
            ),
            (
                "block (--block)",
                s.recording
                    .as_ref()
                    .map(|r| r.assumptions.block_seconds.to_bits())
                    != first
                        .recording
                        .as_ref()
                        .map(|r| r.assumptions.block_seconds.to_bits()),
                match (&s.recording, &first.recording) {
                    (Some(a), Some(b)) => show(
                        &format!("{}s", a.assumptions.block_seconds),
                        &format!("{}s", b.assumptions.block_seconds),
                    ),
                    _ => String::new(),
                },
            ),
        ];
        if let Some((what, _, values)) = differs.into_iter().find(|(_, d, _)| *d) {
            return Err(MergeError::OtherRun {
                file: file.clone(),
                first: first_file.clone(),
                what,
                values,
            });
        }
    }
    let count = first.shard.count;
    if !(1..=MAX_SHARDS).contains(&count) || first.trials_per_scenario > MAX_TRIALS {
        return Err(MergeError::BadSlice {
            file: first_file.clone(),
        });
    }
    let mut seen: Vec<Option<(String, Shard)>> = vec![None; count as usize];
    for (file, s) in shards {
        let slice = s
            .shard
            .index
            .checked_sub(1)
            .and_then(|i| Slice::new(i, count));
        let Some(slice) = slice else {
            return Err(MergeError::BadSlice { file });
        };
        let trials = slice.trials(s.trials_per_scenario);
        if s.shard.trials != [trials.start, trials.end] {
            return Err(MergeError::BadSlice { file });
        }
        if let Some((other, _)) = &seen[slice.index() as usize] {
            return Err(MergeError::Twice {
                index: s.shard.index,
                count,
                files: [other.clone(), file],
            });
        }
        seen[slice.index() as usize] = Some((file, s));
    }
    let missing: Vec<u64> = (1..=count)
        .filter(|k| seen[*k as usize - 1].is_none())
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing { missing, count });
    }
    Ok(Slices {
        shards: seen.into_iter().flatten().collect(),
    })
}

impl Slices {
    /// The first shard: the run's plan, scenarios and settings.
    pub(crate) fn run(&self) -> &Shard {
        &self.shards[0].1
    }

    /// The run's results over `scenarios` (its scenario file's, read again) and `plan`
    /// (with `rules` rules): every shard's tallies checked to be a possible count of its
    /// slice's trials of this plan and these scenarios, then added up. Err names the first
    /// shard whose tallies are not.
    pub(crate) fn results<'s>(
        &self,
        scenarios: &'s Scenarios,
        plan: &CheckedPlan,
        rules: usize,
    ) -> Result<MonteCarlo<'s>, MergeError> {
        let faulty = scenarios.scenarios.iter().any(|s| s.fault.is_some());
        let twin = scenarios.scenarios.iter().position(|s| s.fault.is_none());
        let (eval_ms, scrape_ms) = (
            plan.monitoring.evaluation_interval.millis() as i64,
            plan.monitoring.scrape_interval.millis() as i64,
        );
        let shape = Shape {
            phases: plan.phases.len(),
            rules,
            metrics: plan.metrics.len(),
            eval_ms,
        };
        let mut results: Vec<ScenarioResult<'s>> = scenarios
            .scenarios
            .iter()
            .map(|scenario| ScenarioResult {
                scenario,
                tally: Tally::new(shape.phases, rules),
                detect_unit_ms: detect_unit_of(eval_ms, scrape_ms, scenario),
            })
            .collect();
        let mut twins = faulty.then(|| Twins {
            scenario: twin,
            tally: Tally::new(shape.phases, rules),
        });
        for (file, s) in &self.shards {
            let bad = |why: String| MergeError::BadTallies {
                file: file.clone(),
                why,
            };
            let trials = s.shard.trials[1] - s.shard.trials[0];
            let slice = s.shard.trials[0]..s.shard.trials[1];
            if s.results.len() != results.len()
                || s.results.iter().zip(&results).any(|(p, r)| {
                    p.scenario != r.scenario.name || p.detect_unit_ms != r.detect_unit_ms
                })
            {
                return Err(bad("its scenarios are not its scenario file's".into()));
            }
            if s.twins.as_ref().map(|t| t.scenario) != twins.as_ref().map(|t| t.scenario) {
                return Err(bad("its healthy twins are not its scenario file's".into()));
            }
            for (p, r) in s.results.iter().zip(&results) {
                p.tally
                    .plausible(trials, &slice, &shape, r.detect_unit_ms)
                    .map_err(|why| bad(format!("scenario `{}`: {why}", p.scenario)))?;
            }
            if let Some(t) = &s.twins {
                t.tally
                    .plausible(trials, &slice, &shape, eval_ms)
                    .map_err(|why| bad(format!("the healthy twins: {why}")))?;
            }
        }
        for (_, s) in &self.shards {
            for (p, r) in s.results.iter().zip(&mut results) {
                r.tally.merge(&p.tally);
            }
            if let (Some(a), Some(b)) = (&mut twins, &s.twins) {
                a.tally.merge(&b.tally);
            }
        }
        Ok(MonteCarlo {
            results,
            trials: Vec::new(),
            twins,
        })
    }
}
