//! What each recorded series becomes in a trial: the roles and channels the recorded
//! model, its trials and its fault effects share (a file of its own, so that the effects
//! need not reach back into the model that uses them).

/// What a recorded series becomes in a trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// The service's events, thinned to the canary's share (`whole`: binomially).
    Traffic { whole: bool },
    /// Each track's own path: gauges, and the CPU counter.
    Own,
}

/// One recorded series and the two it becomes (indices into the templates).
#[derive(Debug, Clone)]
pub(super) struct Channel {
    pub(super) rec: usize,
    pub(super) role: Role,
    pub(super) canary: usize,
    pub(super) stable: usize,
    /// Whether a trial writes the channel: some query reads one of its series, or it
    /// counts requests (a fault's load and blast radius read those). The others are left
    /// out of trials.
    pub(super) live: bool,
    /// What a trial's seed is mixed with for the channel's own thinning stream: a hash of
    /// its name and labels, so that the recording's other series, read or not, do not
    /// change its draws.
    pub(super) salt: u64,
    /// Whether the canary's series first has a sample at the first scrape after its first
    /// event (a failure series under `exposition.failures_from: first_failure`, a value of
    /// a modelled `split` under `exposition.split_from: first_event`: the canary is a new
    /// process, whose client library creates a label set at its first increment), instead
    /// of from the release's start.
    pub(super) born_late: bool,
    /// Whether its events are some of another counter's, each going to the track its
    /// parent event went to: thinned after its parent's ([`super::nested`]).
    pub(super) nested: bool,
    /// For a series of one instance's own (what the built-in memory, DB connections, CPU
    /// and targets up read): the canary instance its canary series is. The canary runs
    /// each phase's replicas, instance `k` a recorded instance's series (the `k mod n`-th
    /// of the recording's `n`) on a stretch of blocks of its own, from the first phase
    /// that runs it ([`super::RecordedModel::instances`]).
    pub(super) instance: Option<usize>,
    /// Whether it is a canary instance beyond the recording's own, a copy of a recorded
    /// instance's series: it writes the canary's series alone (its `stable` is the
    /// original's, which it leaves to it).
    pub(super) copy: bool,
}
