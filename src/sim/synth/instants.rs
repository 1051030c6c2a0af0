//! Exact instants: where a scrape span is cut so that each piece has one set of parameters.
//!
//! The model's parameters are piecewise constant in time: the request rate follows the
//! daily cycle's ten-minute staircase, the canary's share changes when a phase starts, and
//! a fault's level changes at its onset, at a burst's edges and at each step of a leak.
//! None of these instants need fall on the scrape grid (a fault that begins at 40m37s; an
//! evaluation interval that does not divide ten minutes), and a span drawn with the
//! parameters at its middle would move the change to a scrape: a fault beginning just
//! after a span's middle would not show until the next span, one just before it would show
//! from the span's start. So a span that holds such an instant is drawn as pieces cut
//! there, each with its own parameters. A Poisson process's counts over consecutive pieces
//! add up, so the counters at the span's end have exactly the law they have under the
//! piecewise parameters. A span with no change inside is one piece, drawn as before, number
//! for number.

use crate::sim::evaluator::{Schedule, UNKNOWN};
use crate::sim::scenario::Fault;

/// What the pieces (and the modelled series) need of the run's model: the traffic.
pub(crate) trait Traffic {
    /// The canary's share of requests in `phase`.
    fn canary_share(&self, phase: usize) -> f64;
    /// The whole service's mean request rate at `t`, per second.
    fn mean_rps(&self, t: i64) -> f64;
    /// The first instant after `t` at which the mean request rate may change.
    fn next_rate_change(&self, t: i64) -> Option<i64>;
    /// How many instances of the canary and of the stable version serve their requests
    /// in a piece starting at `t`, each an equal part (one per track where the requests
    /// are counted per track).
    fn serving(&self, _t: i64, _schedule: &Schedule) -> [usize; 2] {
        [1, 1]
    }
    /// When requests are counted per instance, the first instant after `t` at which
    /// instances joining with a phase start to serve: their first scrape.
    fn join_scrape(&self, _t: i64, _schedule: &Schedule) -> Option<i64> {
        None
    }
}

/// What the pieces (and the modelled series) need of a scenario's fault on the canary.
pub(crate) trait Faults {
    fn fault(&self) -> Option<&Fault>;
    /// The fault's intensity level at `t` for a canary serving `canary_rps` (0: off).
    fn level_at(&self, t: i64, canary_rps: f64) -> usize;
    /// The intensity of `level` (0 to 1).
    fn intensity(&self, level: usize) -> f64;
    /// A crash's first failed scrape.
    fn down_from(&self) -> Option<i64>;
    /// The first instant after `t` at which the fault's level may change, besides where the
    /// request rate or the phase changes ([`super::instants`]).
    fn next_change(&self, t: i64) -> Option<i64>;
}

/// Calls `piece(a, b)` for each piece of the span from `t0` to `t1`, in order: cut at every
/// instant inside it where the request rate, the canary's share, the instances serving
/// the requests (counted per instance, they change at a joining instance's first scrape)
/// or (with `faults`) the fault's level changes. Without `faults` the fault is not looked
/// at: draws it cannot change stay those of the healthy twin, number for number. A fault's level is compared
/// at the mean request rate (a `load` fault's level moves only with the rate and the
/// share, so it changes only where they do, whatever a trial's own multiplier).
pub(crate) fn pieces(
    (t0, t1): (i64, i64),
    (traffic, faults, schedule): (&dyn Traffic, Option<&dyn Faults>, &Schedule),
    mut piece: impl FnMut(i64, i64),
) {
    // Whether the fault has begun is part of the key: a `load` fault's level at the mean
    // rate may stay 0 across its onset while a trial whose own rate is higher crosses it.
    let key = |t: i64| {
        let share = traffic.canary_share(schedule.phase_at(t));
        let rps = traffic.mean_rps(t);
        let level = faults.map_or(0, |f| f.level_at(t, rps * share));
        let begun = faults
            .and_then(|f| f.fault())
            .is_some_and(|f| t >= f.onset_ms);
        let serving = traffic.serving(t, schedule);
        (share.to_bits(), rps.to_bits(), level, begun, serving)
    };
    let mut from = t0;
    let mut at = key(t0);
    let mut cursor = t0;
    while let Some(c) = next_candidate(cursor, (traffic, faults, schedule)).filter(|&c| c < t1) {
        let next = key(c);
        if next != at {
            piece(from, c);
            (from, at) = (c, next);
        }
        cursor = c;
    }
    piece(from, t1);
}

/// The first instant after `t` at which a parameter may change.
fn next_candidate(
    t: i64,
    (traffic, faults, schedule): (&dyn Traffic, Option<&dyn Faults>, &Schedule),
) -> Option<i64> {
    let phase = schedule
        .starts
        .iter()
        .copied()
        .find(|&s| s > t && s != UNKNOWN);
    let fault = faults.and_then(|f| f.next_change(t));
    let join = traffic.join_scrape(t, schedule);
    [traffic.next_rate_change(t), phase, fault, join]
        .into_iter()
        .flatten()
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::scenario::FaultKind;

    struct Flat {
        block_ms: i64,
    }

    impl Traffic for Flat {
        fn canary_share(&self, phase: usize) -> f64 {
            [0.05, 0.2, 1.0][phase]
        }
        fn mean_rps(&self, t: i64) -> f64 {
            // Two levels alternating by block.
            if (t / self.block_ms) % 2 == 0 {
                10.0
            } else {
                12.0
            }
        }
        fn next_rate_change(&self, t: i64) -> Option<i64> {
            Some((t.div_euclid(self.block_ms) + 1) * self.block_ms)
        }
    }

    /// `Fault`'s own levels: on or off, at the trial's rate (a `load` fault's depends on it).
    struct OneFault(Fault);

    impl Faults for OneFault {
        fn fault(&self) -> Option<&Fault> {
            Some(&self.0)
        }
        fn level_at(&self, t: i64, canary_rps: f64) -> usize {
            usize::from(self.0.intensity(t, canary_rps) > 0.0)
        }
        fn intensity(&self, level: usize) -> f64 {
            level as f64
        }
        fn down_from(&self) -> Option<i64> {
            None
        }
        fn next_change(&self, t: i64) -> Option<i64> {
            super::super::next_fault_change(&self.0, t, 1)
        }
    }

    fn cut(span: (i64, i64), f: Fault, starts: Vec<i64>) -> Vec<(i64, i64)> {
        let schedule = Schedule::for_tests(starts);
        let mut out = Vec::new();
        let traffic = Flat { block_ms: 600_000 };
        pieces(span, (&traffic, Some(&OneFault(f)), &schedule), |a, b| {
            out.push((a, b))
        });
        out
    }

    #[test]
    fn a_span_without_a_change_is_one_piece() {
        let f = Fault::bare(FaultKind::Step, 10 * 60_000);
        assert_eq!(cut((60_000, 120_000), f, vec![0]), [(60_000, 120_000)]);
    }

    #[test]
    fn an_onset_between_scrapes_cuts_the_span_there() {
        let onset = 40 * 60_000 + 37_000;
        let f = Fault::bare(FaultKind::Step, onset);
        assert_eq!(
            cut((40 * 60_000, 41 * 60_000), f, vec![0]),
            [(40 * 60_000, onset), (onset, 41 * 60_000)]
        );
    }

    #[test]
    fn burst_edges_phase_starts_and_rate_steps_cut_where_something_changes() {
        // Bursts of 10 s every minute from 30 s: on at 30 s, off at 40 s, on at 90 s.
        let f = Fault::bare(
            FaultKind::Bursts {
                every_ms: 60_000,
                lasting_ms: 10_000,
            },
            30_000,
        );
        assert_eq!(
            cut((0, 100_000), f.clone(), vec![0]),
            [
                (0, 30_000),
                (30_000, 40_000),
                (40_000, 90_000),
                (90_000, 100_000)
            ]
        );
        // A phase starting at 50 s, inside the burst's off time.
        assert_eq!(
            cut((35_000, 60_000), f.clone(), vec![0, 50_000]),
            [(35_000, 40_000), (40_000, 50_000), (50_000, 60_000)]
        );
        // The rate's step at 10 min, with the fault on across it.
        let g = Fault::bare(FaultKind::Step, 0);
        assert_eq!(
            cut((590_000, 610_000), g, vec![0]),
            [(590_000, 600_000), (600_000, 610_000)]
        );
    }

    /// A `load` fault over the limit only for trials busier than the mean: its onset still
    /// cuts the span, since each trial's level is worked out piece by piece at its own rate.
    #[test]
    fn a_load_fault_cuts_at_its_onset_even_below_the_limit_at_the_mean_rate() {
        let onset = 40 * 60_000 + 37_000;
        // The mean canary rate is 0.5 (10 rps at 5%), under the limit of 1.
        let f = Fault::bare(FaultKind::Load { above_rps: 1.0 }, onset);
        let schedule = Schedule::for_tests(vec![0]);
        let mut out = Vec::new();
        let traffic = Flat {
            block_ms: 3_600_000,
        };
        pieces(
            (40 * 60_000, 41 * 60_000),
            (&traffic, Some(&OneFault(f)), &schedule),
            |a, b| out.push((a, b)),
        );
        assert_eq!(out, [(40 * 60_000, onset), (onset, 41 * 60_000)]);
    }

    #[test]
    fn a_leak_cuts_at_each_of_its_steps() {
        // Four steps over 4 s from 1.5 s: levels change at 1.5, 2.5, 3.5 and 4.5 s (full from then on).
        let f = Fault::bare(FaultKind::Leak { ramp_ms: 4_000 }, 1_500);
        let mut levels = Vec::new();
        let mut t = 0;
        while let Some(c) = super::super::next_fault_change(&f, t, 4) {
            levels.push(c);
            t = c;
        }
        assert_eq!(levels, [1_500, 2_500, 3_500, 4_500]);
    }
}
