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
}
