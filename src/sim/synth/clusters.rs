//! Error clustering: the multiplier of each request's failure probability, a Markov jump
//! process in wall-clock time, and the failures of a piece of a span drawn under it.
//!
//! A track's multiplier is the product of two independent jump processes of mean 1 with
//! the same time constant: its own ([`Cluster`], drawn from the trial's stream) and one
//! the trial's two tracks share ([`SharedClusters`], drawn from a stream of its own so
//! that its path does not depend on which track reads it first). The shared part is what a
//! slow dependency or one client's retries do to both versions at once; the own part is a
//! bad pod of one version. With the scenario's coefficient of variation `cv` and the
//! tracks' correlation `rho` (`error_clustering_shared`), the shared process has squared
//! coefficient of variation `a = rho cv^2` and the own one
//! `b = cv^2 (1 - rho) / (1 + rho cv^2)`: each track's multiplier then has `cv^2`
//! (`(1 + a)(1 + b) - 1`), and the two tracks' multipliers at one instant correlate by
//! `a / cv^2 = rho`. With `rho = 0` no shared process is drawn, so the numbers are those
//! of clustering per track alone.

use super::{Model, birth_in_piece, birth_pending, draw};
use crate::promql::Track;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Gamma};
use std::collections::VecDeque;

/// Xored into a trial's seed to seed its shared clusters' stream.
const SHARED_SALT: u64 = 0xc1a5_7e25_0a12_ed00;

/// Error clustering's laws: each factor's multiplier, a Gamma variate of mean 1 (None
/// when that factor is constant), held for an exponential time of mean
/// `time_constant_ms` (values `d` apart correlate as `exp(-d / time_constant)`). The
/// time is the wall clock's, so what a rule sees does not depend on the evaluation
/// interval.
pub(crate) struct Clustering {
    own: Option<Gamma<f64>>,
    shared: Option<Gamma<f64>>,
    time_constant_ms: f64,
}

impl Clustering {
    /// Clustering of coefficient of variation `cv` (within (0, 5]), its share `rho`
    /// (within [0, 1]) common to the two tracks; None when `cv` is 0.
    pub(super) fn new(cv: f64, rho: f64, time_constant_ms: i64) -> Option<Clustering> {
        let cv2 = cv * cv;
        if cv2 <= 0.0 {
            return None;
        }
        let gamma = |v: f64| (v > 0.0).then(|| Gamma::new(1.0 / v, v).ok()).flatten();
        Some(Clustering {
            own: gamma(cv2 * (1.0 - rho) / (1.0 + rho * cv2)),
            shared: gamma(rho * cv2),
            time_constant_ms: time_constant_ms as f64,
        })
    }

    /// A trial's shared clusters, read by the tracks in `tracks` (None when no part of the
    /// clustering is shared).
    pub(super) fn shared(
        &self,
        seed: u64,
        tracks: impl Iterator<Item = Track>,
    ) -> Option<SharedClusters> {
        self.shared.map(|_| {
            let mut read_to = [i64::MAX; 2];
            for t in tracks {
                read_to[slot(t)] = i64::MIN;
            }
            SharedClusters {
                rng: Xoshiro256PlusPlus::seed_from_u64(seed ^ SHARED_SALT),
                segments: VecDeque::new(),
                open_start: true,
                read_to,
            }
        })
    }

    /// An exponential holding time, at least a millisecond (the model's clock ticks in
    /// them).
    fn hold<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> i64 {
        let e: f64 = rng.sample(rand_distr::Exp1);
        ((e * self.time_constant_ms).round() as i64).max(1)
    }
}

/// A track's own current cluster in one trial: its multiplier, and when the next one
/// begins ([`Cluster::NONE`] before the first is drawn).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Cluster {
    factor: f64,
    until: i64,
}

impl Cluster {
    pub(super) const NONE: Cluster = Cluster {
        factor: 1.0,
        until: i64::MIN,
    };
}

/// The clusters a trial's tracks share: the segments `(start, until, factor)` of the
/// shared multiplier's path, in time order, back to the earliest time a track may still
/// read. A track may read it over a stretch another has read already (the stable track
/// catches up over a long span when only a gate reads it), so the path is kept until every
/// track has read past it.
#[derive(Debug, Clone)]
pub(super) struct SharedClusters {
    rng: Xoshiro256PlusPlus,
    segments: VecDeque<(i64, i64, f64)>,
    /// Whether the first segment's start is where the path was first read rather than
    /// a jump (the path then goes back from it by an exponential time).
    open_start: bool,
    /// Per track ([`slot`]), up to when it has read the path (`i64::MAX` for a track
    /// that never does).
    read_to: [i64; 2],
}

fn slot(track: Track) -> usize {
    match track {
        Track::Canary => 0,
        Track::Stable => 1,
    }
}

impl SharedClusters {
    /// The segment holding the instant just after `a`: when it ends and its factor.
    #[inline]
    fn at(&mut self, c: &Clustering, a: i64) -> (i64, f64) {
        // Mostly the latest segment: the track ahead reads where the path ends.
        match self.segments.back() {
            Some(&(start, until, factor)) if start <= a && a < until => (until, factor),
            _ => self.find(c, a),
        }
    }

    /// [`Self::at`] elsewhere: the path drawn on to `a` (or back to it), and searched.
    #[inline(never)]
    fn find(&mut self, c: &Clustering, a: i64) -> (i64, f64) {
        let gamma = c
            .shared
            .as_ref()
            .expect("shared clusters are drawn only when shared");
        if self.segments.is_empty() {
            let factor = gamma.sample(&mut self.rng);
            let until = a.saturating_add(c.hold(&mut self.rng));
            self.segments.push_back((a, until, factor));
        }
        // Back in time, the stationary path is the same jump process: the first segment
        // began an exponential time before where it was first read, each before it lasted
        // an exponential time.
        while self.segments[0].0 > a {
            let hold = c.hold(&mut self.rng);
            let first = &mut self.segments[0];
            if std::mem::take(&mut self.open_start) {
                first.0 -= hold;
            } else {
                let factor = gamma.sample(&mut self.rng);
                let until = first.0;
                self.segments.push_front((until - hold, until, factor));
            }
        }
        loop {
            let &(_, until, _) = self.segments.back().expect("not empty");
            if until > a {
                break;
            }
            let factor = gamma.sample(&mut self.rng);
            let next = until.saturating_add(c.hold(&mut self.rng));
            self.segments.push_back((until, next, factor));
        }
        let i = self.segments.partition_point(|s| s.1 <= a);
        let (_, until, factor) = self.segments[i];
        (until, factor)
    }

    /// `track` has read the path up to `t`: what every track has read is dropped.
    fn read(&mut self, track: Track, t: i64) {
        let r = &mut self.read_to[slot(track)];
        *r = (*r).max(t);
        let all = self.read_to[0].min(self.read_to[1]);
        while self.segments.len() > 1 && self.segments[0].1 <= all {
            self.segments.pop_front();
            self.open_start = false;
        }
    }
}

/// What a track's failures are drawn under: its own cluster, and the trial's shared
/// clusters with the track reading them.
pub(super) struct TrackClusters<'a> {
    pub(super) own: &'a mut Cluster,
    pub(super) shared: Option<(&'a mut SharedClusters, Track)>,
}

/// Under error clustering, how many of the `requests` each serving instance of a track
/// drew in the piece `(t0, t1]` fail (into `failed`, one per instance; one in all where the
/// track counts its requests as one), each with probability `p_at(multiplier)` of the
/// track's cluster it falls in; `births`, when the failure series are created at their
/// first failure, the model and each series' first sample, as [`birth_in_piece`] takes
/// them. The piece's requests fall at independent uniform times, so each fails with the
/// mean of its probability over the piece: an instance's failures are one binomial at
/// that mean. Only while an instance's failure series' birth may still fall in the piece,
/// where its failures fall matters: then the piece is cut where a cluster (own or shared)
/// ends, each part's share of its requests is a binomial by length, and each part's
/// failures a binomial at its multiplier's probability. When a track's own cluster has
/// ended by a part's start (also long before, when the track drew nothing for a while),
/// the next is a fresh multiplier with an exponential time left: the clusters' ends form a
/// Poisson process, so that is exactly its law whatever happened in between.
///
/// The order of the draws: part by part, the part's clusters, then each instance whose
/// birth is pending, in order (its part's share, its failures, its birth); after the
/// last part, each other instance's binomial, in order. One set of counters draws as
/// [`one_counter`] does, which is that order for one.
pub(super) fn clustered_failures<R: rand::Rng + ?Sized>(
    c: &Clustering,
    rng: &mut R,
    (t0, t1): (i64, i64),
    (requests, failed): (&[u64], &mut [u64]),
    (clusters, p_at): (TrackClusters<'_>, impl Fn(f64) -> f64),
    births: Option<(&Model<'_>, &mut [(i64, u64)])>,
) {
    if let ([requests], [failed]) = (requests, &mut *failed) {
        let births = births.map(|(m, born)| (m, &mut born[0]));
        *failed = one_counter(c, rng, (t0, t1), *requests, (clusters, p_at), births);
        return;
    }
    let mut parts = Parts::new(c, clusters, t1);
    let pending = |m: &Model<'_>, born: &(i64, u64)| birth_pending(m, *born, t0);
    let (mut a, mut weighted) = (t0, 0.0);
    match births {
        Some((m, born)) if born.iter().any(|b| pending(m, b)) => {
            let mut left = requests.to_vec();
            failed.fill(0);
            while a < t1 {
                let (b, factor) = parts.next(a, rng);
                weighted += (b - a) as f64 * p_at(factor);
                for (i, born) in born.iter_mut().enumerate() {
                    if !pending(m, born) {
                        continue;
                    }
                    let (here, f) =
                        part_failures((m, rng), (a, b, t1), left[i], p_at(factor), born);
                    left[i] -= here;
                    failed[i] += f;
                }
                a = b;
            }
            let p = mean_over((t0, t1), weighted);
            for (i, born) in born.iter().enumerate() {
                if !pending(m, born) {
                    failed[i] = draw::failures(rng, requests[i], &draw::FailRate::new(p));
                }
            }
        }
        _ => {
            while a < t1 {
                let (b, factor) = parts.next(a, rng);
                weighted += (b - a) as f64 * p_at(factor);
                a = b;
            }
            let p = mean_over((t0, t1), weighted);
            for (f, &n) in failed.iter_mut().zip(requests) {
                *f = draw::failures(rng, n, &draw::FailRate::new(p));
            }
        }
    }
    parts.done();
}

/// [`clustered_failures`] for one set of counters: how many of its `requests` fail, and
/// with them its failure series' birth.
pub(super) fn one_counter<R: rand::Rng + ?Sized>(
    c: &Clustering,
    rng: &mut R,
    (t0, t1): (i64, i64),
    requests: u64,
    (clusters, p_at): (TrackClusters<'_>, impl Fn(f64) -> f64),
    births: Option<(&Model<'_>, &mut (i64, u64))>,
) -> u64 {
    let mut parts = Parts::new(c, clusters, t1);
    let mut a = t0;
    let failed = match births {
        Some((m, born)) if birth_pending(m, *born, t0) => {
            let (mut left, mut failed) = (requests, 0);
            while a < t1 {
                let (b, factor) = parts.next(a, rng);
                let (here, f) = part_failures((m, rng), (a, b, t1), left, p_at(factor), born);
                (left, failed, a) = (left - here, failed + f, b);
            }
            failed
        }
        _ => {
            let mut weighted = 0.0;
            while a < t1 {
                let (b, factor) = parts.next(a, rng);
                weighted += (b - a) as f64 * p_at(factor);
                a = b;
            }
            let p = mean_over((t0, t1), weighted);
            draw::failures(rng, requests, &draw::FailRate::new(p))
        }
    };
    parts.done();
    failed
}

/// While a failure series' birth is pending: of the `left` requests of a piece's rest
/// `(a, t1]`, those in its part `(a, b]` (a binomial by length; all of them in the last
/// part), and how many of those fail at probability `p`, with the birth they may hold.
#[inline(always)]
fn part_failures<R: rand::Rng + ?Sized>(
    (m, rng): (&Model<'_>, &mut R),
    (a, b, t1): (i64, i64, i64),
    left: u64,
    p: f64,
    born: &mut (i64, u64),
) -> (u64, u64) {
    let here = if b == t1 {
        left
    } else {
        let share = (b - a) as f64 / (t1 - a) as f64;
        draw::failures(rng, left, &draw::FailRate::new(share))
    };
    let f = draw::failures(rng, here, &draw::FailRate::new(p));
    birth_in_piece(m, rng, (a, b), f, born);
    (here, f)
}

/// The mean failure probability over the piece `(t0, t1]` whose parts' probabilities
/// weighted by their lengths add up to `weighted` (at most 1).
fn mean_over((t0, t1): (i64, i64), weighted: f64) -> f64 {
    let mean = if t1 > t0 {
        weighted / (t1 - t0) as f64
    } else {
        0.0
    };
    mean.min(1.0)
}

/// The clusters a track's requests fall in over a piece ending at `t1`, part by part.
struct Parts<'a, 'c> {
    c: &'c Clustering,
    clusters: TrackClusters<'a>,
    t1: i64,
}

impl<'a, 'c> Parts<'a, 'c> {
    fn new(c: &'c Clustering, clusters: TrackClusters<'a>, t1: i64) -> Self {
        Parts { c, clusters, t1 }
    }

    /// The part `(a, b]` from `a`, and its multiplier: up to where the track's own cluster
    /// or a shared one ends, or the piece does.
    #[inline(always)]
    fn next<R: rand::Rng + ?Sized>(&mut self, a: i64, rng: &mut R) -> (i64, f64) {
        let (c, own) = (self.c, &mut *self.clusters.own);
        let (mut b, mut factor) = (self.t1, 1.0);
        if let Some(gamma) = &c.own {
            if own.until <= a {
                own.factor = gamma.sample(rng);
                own.until = a.saturating_add(c.hold(rng));
            }
            (b, factor) = (b.min(own.until), own.factor);
        }
        if let Some((s, _)) = self.clusters.shared.as_mut() {
            let (until, f) = s.at(c, a);
            (b, factor) = (b.min(until), factor * f);
        }
        (b, factor)
    }

    /// The piece is drawn: the shared clusters before its end may be forgotten.
    fn done(self) {
        if let Some((s, track)) = self.clusters.shared {
            s.read(track, self.t1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `2 (L/T)^2 (T/L - 1 + e^(-T/L))`: the variance of a stretch `T`'s mean of a
    /// stationary process of unit variance whose values `d` apart correlate as
    /// `exp(-d / L)`.
    fn stretch_factor(t: f64, l: f64) -> f64 {
        let r = t / l;
        2.0 / (r * r) * (r - 1.0 + (-r).exp())
    }

    /// Per track, the failures over `(0, t_ms]` in `cuts` pieces of equal length and
    /// requests, and over a stretch as long 30 time constants later; both tracks read the
    /// shared clusters, the canary first.
    fn two_tracks(
        c: &Clustering,
        (t_ms, cuts): (i64, i64),
        (n, p): (u64, f64),
        seed: u64,
    ) -> [[u64; 2]; 2] {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut shared = c.shared(seed, [Track::Canary, Track::Stable].into_iter());
        let mut own = [Cluster::NONE; 2];
        let far = 30 * c.time_constant_ms as i64 + t_ms;
        let mut out = [[0; 2]; 2];
        for (i, start) in [0, far].into_iter().enumerate() {
            for k in 0..cuts {
                let piece = (start + k * t_ms / cuts, start + (k + 1) * t_ms / cuts);
                for (tr, track) in [Track::Canary, Track::Stable].into_iter().enumerate() {
                    let clusters = TrackClusters {
                        own: &mut own[tr],
                        shared: shared.as_mut().map(|s| (s, track)),
                    };
                    let at = |g: f64| (p * g).min(1.0);
                    let mut failed = [0];
                    clustered_failures(
                        c,
                        &mut rng,
                        piece,
                        (&[n / cuts as u64], &mut failed),
                        (clusters, at),
                        None,
                    );
                    out[i][tr] += failed[0];
                }
            }
        }
        out
    }

    /// Each track's multiplier is a product of jump processes of squared coefficients
    /// of variation `a` (shared) and `b` (own): over a stretch `T` its mean has variance
    /// `(a + b) f(L) + a b f(L/2)` (`f` [`stretch_factor`]), whatever the evaluation
    /// interval (the same stretch drawn as one piece, or as pieces cut anywhere); the two
    /// tracks' means covary by `a f(L)`; stretches far apart are independent. With
    /// nothing shared that is `cv^2 f(L)`, and with everything shared the two tracks
    /// move as one.
    #[test]
    fn clusters_hold_for_their_time_constant_whatever_the_pieces() {
        let (cv, l_ms) = (0.5f64, 60_000i64);
        let (n, p, reps) = (1_000_000u64, 0.01, 20_000);
        let np = n as f64 * p;
        for rho in [0.0, 0.5, 1.0] {
            let c = Clustering::new(cv, rho, l_ms).unwrap();
            let a = rho * cv * cv;
            let b = cv * cv * (1.0 - rho) / (1.0 + rho * cv * cv);
            for (t_ms, cuts) in [(60_000i64, 1i64), (60_000, 4), (300_000, 1), (300_000, 7)] {
                let (tf, lf) = (t_ms as f64, l_ms as f64);
                let mean_var =
                    (a + b) * stretch_factor(tf, lf) + a * b * stretch_factor(tf, lf / 2.0);
                let want = np * (1.0 - p) + np * np * mean_var;
                let want_cross = np * np * a * stretch_factor(tf, lf);
                let (mut sum, mut sum2, mut cross, mut lag) = (0.0, 0.0, 0.0, 0.0);
                let (mut sum_stable, mut sum_far) = (0.0, 0.0);
                for rep in 0..reps {
                    let seed = (t_ms + cuts) as u64 * 1_000_003 + rep;
                    let [near, far] = two_tracks(&c, (t_ms, cuts), (n, p), seed);
                    let (x, y) = (near[0] as f64, near[1] as f64);
                    sum += x;
                    sum2 += x * x;
                    sum_stable += y;
                    sum_far += far[0] as f64;
                    cross += x * y;
                    lag += x * far[0] as f64;
                }
                let reps = reps as f64;
                let mean = sum / reps;
                let var = sum2 / reps - mean * mean;
                let cov = cross / reps - mean * sum_stable / reps;
                let lagged = lag / reps - mean * sum_far / reps;
                let what = format!("rho {rho}, {t_ms} ms in {cuts}");
                assert!(
                    (mean - np).abs() < 4.0 * (want / reps).sqrt(),
                    "{what}: mean {mean}"
                );
                assert!(
                    (var / want - 1.0).abs() < 0.05,
                    "{what}: variance {var} against {want}"
                );
                assert!(
                    (cov - want_cross).abs() < 0.05 * want,
                    "{what}: the tracks' covariance {cov} against {want_cross}"
                );
                assert!(
                    lagged.abs() < 4.0 * want / reps.sqrt(),
                    "{what}: covariance {lagged}"
                );
            }
        }
    }

    /// A track reading the shared path behind another reads the same path: the stable
    /// track catching up over one long piece sees the multipliers the canary saw piece by
    /// piece, and a track first reading before where the path began extends it back.
    #[test]
    fn a_track_behind_reads_the_path_the_other_read() {
        let c = Clustering::new(1.0, 1.0, 60_000).unwrap();
        let (p, n) = (0.01, 10_000_000u64);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let mut shared = c
            .shared(3, [Track::Canary, Track::Stable].into_iter())
            .unwrap();
        let (mut canary, mut stable) = (Cluster::NONE, Cluster::NONE);
        let mut draw = |track, own: &mut Cluster, s: &mut SharedClusters, piece, n| {
            let clusters = TrackClusters {
                own,
                shared: Some((s, track)),
            };
            let mut failed = [0];
            let (requests, at) = ([n], |g: f64| p * g);
            clustered_failures(
                &c,
                &mut rng,
                piece,
                (&requests, &mut failed),
                (clusters, at),
                None,
            );
            failed[0]
        };
        let mut canary_failed = 0;
        for k in 0..60 {
            let piece = (600_000 + k * 60_000, 600_000 + (k + 1) * 60_000);
            canary_failed += draw(Track::Canary, &mut canary, &mut shared, piece, n / 60);
        }
        // Everything is shared: the stable's failure ratio over the same hour (read from
        // before the path began) matches the canary's to within binomial noise.
        let early = draw(Track::Stable, &mut stable, &mut shared, (0, 600_000), n / 6);
        let late = draw(
            Track::Stable,
            &mut stable,
            &mut shared,
            (600_000, 4_200_000),
            n,
        );
        let (x, y) = (canary_failed as f64 / n as f64, late as f64 / n as f64);
        assert!(
            (x - y).abs() < 6.0 * (p / n as f64).sqrt() * 2.0,
            "{x} against {y}"
        );
        assert!(early > 0);
        // Both tracks have read past all but the current segment.
        assert_eq!(shared.segments.len(), 1);
    }
}
