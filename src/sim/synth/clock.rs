//! Lock-step batches: a scenario's trials advance together, one evaluation at a time, and
//! what depends only on the time is worked out once for the whole batch: the scrape spans
//! to draw (their rate, phase and fault facts), how each track draws its requests in them
//! (with the inversion tables a shared mean uses), the ring slots every trial writes, and
//! the window its `rate()`s read. A trial's own random draws stay its own.

use super::draw::{self, ClassDraw, Mix};
use super::table::Pool;
use super::{Bursts, FaultModel, Model, SeriesSet, instants};
use crate::prom::{self, Sample};
use crate::promql::Track;
use crate::sim::outcomes::Progress;
use crate::sim::scenario::{Fault, FaultKind};

/// Which scrapes' samples the trials of a batch keep, in a fixed ring of slots, oldest
/// first: the same for every trial (they draw the same spans), so kept once per batch.
#[derive(Clone)]
struct Slots {
    /// Capacity minus one; the capacity is a power of two.
    mask: usize,
    head: usize,
    len: usize,
    /// The scrape index of the sample in each slot.
    j: Vec<i64>,
}

impl Slots {
    /// Room for `capacity` (a power of two) samples, holding the sample at scrape 0
    /// (every counter at 0).
    fn new(capacity: usize) -> Slots {
        debug_assert!(capacity.is_power_of_two());
        Slots {
            mask: capacity - 1,
            head: 0,
            len: 1,
            j: vec![0; capacity],
        }
    }

    #[inline]
    fn slot(&self, i: usize) -> usize {
        (self.head + i) & self.mask
    }

    /// The oldest and the newest slot, when they hold different scrapes.
    fn ends(&self) -> Option<(usize, usize)> {
        let (f, l) = (self.slot(0), self.slot(self.len.checked_sub(1)?));
        (self.j[l] > self.j[f]).then_some((f, l))
    }

    fn pop_before(&mut self, first_j: i64) {
        while self.len > 0 && self.j[self.head] < first_j {
            self.head = (self.head + 1) & self.mask;
            self.len -= 1;
        }
    }

    /// Takes a slot for the sample at scrape `j`; the ring is sized so that it never
    /// overflows (the oldest sample is dropped if it would).
    fn push(&mut self, j: i64) -> usize {
        if self.len == self.j.len() {
            self.head = (self.head + 1) & self.mask;
            self.len -= 1;
        }
        let s = self.slot(self.len);
        self.len += 1;
        self.j[s] = j;
        s
    }
}

/// The tracks a trial simulates, with what each must produce ([`Model::track_series`]).
pub(super) fn tracks(model: &Model<'_>) -> Vec<(Track, SeriesSet)> {
    let (canary, stable) = model.track_series();
    std::iter::once((Track::Canary, canary))
        .chain(stable.map(|r| (Track::Stable, r)))
        .collect()
}

/// Appends how `track` draws its requests of `mix` in `span`, the whole service serving
/// `total` requests per second; `pool` builds inversion tables when every trial of a batch
/// draws with these means.
pub(super) fn plan_track(
    out: &mut Vec<ClassDraw>,
    m: &Model<'_>,
    span: &Span,
    (track, series): (Track, SeriesSet),
    total: f64,
    mix: &Mix,
    pool: Option<&mut Pool>,
) {
    let rps = total * m.track_share(track, span.phase);
    if !(series.requests && rps > 0.0) {
        return;
    }
    // Each serving instance's part.
    let serving = span.serving[usize::from(track == Track::Stable)] as f64;
    draw::plan_span(out, rps * span.dt / serving, mix, pool);
}

/// One scrape span to draw: what happened between scrapes `from` and `to`, with what
/// every trial shares about it.
#[derive(Debug, Clone)]
pub(crate) struct Span {
    pub(super) t0: i64,
    pub(super) t1: i64,
    pub(super) mid: i64,
    /// Its length in seconds.
    pub(super) dt: f64,
    pub(super) phase: usize,
    /// How many instances of the canary and of the stable version serve its requests,
    /// each an equal part ([`Model::serving`]).
    pub(super) serving: [usize; 2],
    /// The whole service's request rate (before a trial's overdispersion multiplier).
    pub(super) rps: f64,
    /// What the fault does in it, when that does not depend on the trial (None under
    /// overdispersion: a `load` fault's level follows the trial's own rate).
    pub(super) facts: Option<Facts>,
    /// The ring slot of the sample at its end (None: it ends at an evaluation between
    /// scrapes, and its counts go into the next scrape's sample).
    pub(super) slot: Option<usize>,
    /// Whether some evaluation that reads CPU can read this span's busy seconds
    /// ([`Model::reads_cpu_between`]).
    pub(super) cpu_read: bool,
    /// Per track, its draws in [`Plans::draws`], when every trial draws with the same means
    /// (None: under overdispersion each trial plans its own).
    pub(super) draws: Option<[std::ops::Range<usize>; 2]>,
}

/// What a span's draws depend on besides the trial's rate: the fault's level and what it
/// does to the canary.
#[derive(Debug, Clone, Copy)]
pub(super) struct Facts {
    /// The fault's intensity level ([`FaultModel::level_at`]).
    pub(super) level: usize,
    /// The canary's mean CPU use.
    pub(super) canary_cpu: f64,
    /// When the fault first shows, if it does by the span's end ([`Exposure`](super::Exposure)).
    pub(super) shows: Option<i64>,
}

impl Facts {
    pub(super) fn new(
        m: &Model<'_>,
        faults: &FaultModel<'_>,
        t0: i64,
        t1: i64,
        level: usize,
    ) -> Facts {
        let intensity = faults.intensity(level);
        let fault = faults.fault.filter(|_| intensity > 0.0);
        let base = &m.scenarios.baseline;
        let shows = faults.fault.and_then(|f| match f.kind {
            FaultKind::Load { .. } => (intensity > 0.0).then_some(t0),
            _ => (t1 > f.onset_ms).then_some(f.onset_ms),
        });
        let canary_cpu = match fault.and_then(|f| f.cpu_usage) {
            Some(target) => {
                base.cpu.mean
                    + intensity * fault.map_or(0.0, Fault::affected) * (target - base.cpu.mean)
            }
            None => base.cpu.mean,
        };
        Facts {
            level,
            canary_cpu,
            shows,
        }
    }
}

/// What every trial of a batch shares at one evaluation: the spans to draw before it and
/// the window its `rate()`s read.
#[derive(Debug, Default)]
pub(crate) struct Tick {
    pub(crate) ts: i64,
    /// The phase the batch is in at `ts`.
    pub(super) phase: usize,
    /// The phase whose instances `ts`'s latest scrape finds, the gauges' instances
    /// ([`crate::sim::evaluator::Schedule::scraped_phase`]).
    pub(super) scrape_phase: usize,
    pub(super) spans: Vec<Span>,
    pub(super) window: Window,
    /// The window of a `crash`ed canary's `rate()`s, once the shared one reaches past its
    /// last sample (None: the shared one).
    pub(super) canary_window: Option<Window>,
}

/// The draw plans of the spans planned recently, kept while their key recurs (for a block
/// of the daily cycle), with the inversion tables they use: shared by the clocks of a
/// batch's groups, which plan the same spans unless their phases differ.
#[derive(Debug, Default)]
pub(crate) struct Plans {
    /// Per plan, per track, the range of its draws in `draws`.
    keys: Vec<(PlanKey, [std::ops::Range<usize>; 2])>,
    pub(super) draws: Vec<ClassDraw>,
    pub(super) pool: Pool,
}

/// What a span's shared plan depends on: its rate and length (compared bit for bit), its
/// phase and the fault's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PlanKey {
    rps_bits: u64,
    dt_bits: u64,
    phase: usize,
    serving: [usize; 2],
    level: usize,
}

/// The samples an evaluation's `rate()`s read, the same for every trial of a batch.
///
/// `rate()` is `delta * factor`, where the factor depends only on where the window's ends
/// fall on the scrape grid (which repeats from one evaluation to the next), unless the
/// counter's zero clamp shortens the start gap; the factor is computed once per layout, as
/// a non-counter with delta 1 (which never clamps).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Window {
    /// The slots of its first and last sample (None: fewer than two scrapes).
    pub(super) ends: Option<(usize, usize)>,
    pub(super) first_t: i64,
    pub(super) last_t: i64,
    /// The scrapes of its first and last sample.
    pub(super) first_j: i64,
    pub(super) last_j: i64,
    /// Scrape intervals between the first and the last sample.
    pub(super) intervals: usize,
    pub(super) factor: Option<f64>,
    /// Seconds between the first and last sample, and from the window's start to the first.
    pub(super) sampled_s: f64,
    pub(super) gap_s: f64,
}

/// The most span plans [`Plans`] keeps (a few evaluations' worth in a leak's ramp, where
/// the level changes at every one; several blocks of the daily cycle otherwise).
const KEEP_PLANS: usize = 32;

/// Walks the evaluation grid for a batch of trials run in lock step: it works out once
/// per evaluation what depends only on the time (the spans to draw, their rates, fault
/// levels and draw plans, the ring slots and the window's `rate()` factor), not on a
/// trial's random draws.
pub(crate) struct Clock<'m, 'a> {
    model: &'m Model<'a>,
    faults: &'m FaultModel<'m>,
    tracks: Vec<(Track, SeriesSet)>,
    last_j: i64,
    slots: Slots,
    /// The last window layout (start gap, end gap, scrape intervals) and its factor.
    layout: Option<((i64, i64, i64), Option<f64>)>,
    step: Tick,
    /// The pieces of the span being planned ([`instants`]).
    cuts: Vec<(i64, i64)>,
    /// Requests are drawn up to here (the latest evaluation, or scrape after it).
    drawn_to: i64,
}

impl<'m, 'a> Clock<'m, 'a> {
    pub(crate) fn new(model: &'m Model<'a>, faults: &'m FaultModel<'m>) -> Self {
        Clock {
            model,
            faults,
            tracks: tracks(model),
            last_j: 0,
            slots: Slots::new(model.ring_capacity),
            layout: None,
            step: Tick::default(),
            cuts: Vec::new(),
            drawn_to: 0,
        }
    }

    /// A clock for a batch that parts from this one's at its time: the same ring slots
    /// (the lanes that move keep their samples where they were).
    pub(crate) fn fork(&self) -> Self {
        Clock {
            model: self.model,
            faults: self.faults,
            tracks: self.tracks.clone(),
            last_j: self.last_j,
            slots: self.slots.clone(),
            layout: self.layout,
            step: Tick::default(),
            cuts: Vec::new(),
            drawn_to: self.drawn_to,
        }
    }

    /// The step to evaluation time `ts` (non-decreasing across calls, a multiple of the
    /// evaluation interval), the batch being where `progress` says in the release; its
    /// spans' draws are planned in `plans` (those of an earlier call may be dropped).
    pub(crate) fn advance(&mut self, ts: i64, progress: Progress<'_>, plans: &mut Plans) -> &Tick {
        let schedule = progress.schedule;
        let m = self.model;
        let target = m.last_scrape(ts);
        self.step.ts = ts;
        self.step.phase = schedule.phase_at(ts);
        self.step.scrape_phase = schedule.scraped_phase(m.scrape_time(target));
        self.step.spans.clear();
        if plans.keys.len() >= KEEP_PLANS {
            plans.keys.clear();
            plans.draws.clear();
            plans.pool.clear();
        }
        let mut j = self.last_j;
        // A crashed canary's last sample ends a span: its windows end there.
        let crash_end = self.faults.last_sample().filter(|&l| l > 0);
        let (tracks, faults, step, slots, cuts, drawn_to) = (
            &self.tracks,
            self.faults,
            &mut self.step,
            &mut self.slots,
            &mut self.cuts,
            &mut self.drawn_to,
        );
        // Draws what happened from what is drawn so far to scrape `to` (recorded in its
        // slot), or with `to` None to the evaluation itself (nothing recorded: the requests
        // between the latest scrape and the evaluation, which a rollback then counts in
        // the blast radius, go into the next scrape's sample).
        let mut push = |from: i64, to: Option<i64>| {
            let (t0, t1) = (*drawn_to, to.map_or(ts, |to| m.scrape_time(to)));
            if t1 <= t0 {
                return;
            }
            *drawn_to = t1;
            let slot = to.map(|to| slots.push(to));
            // Which evaluations can read the busy seconds: those of the scrape span.
            let span_end = m.scrape_time(to.unwrap_or(from + 1));
            let cpu_read =
                m.reads_cpu_between(span_end, m.scrape_time(from) + m.window_ms, progress);
            // A span that holds a change of rate, share or fault level is drawn in pieces
            // cut there, each recording its counters' values in the span's slot (the
            // last piece's are the sample at the span's end).
            cuts.clear();
            instants::pieces((t0, t1), (m, faults.cuts_spans(), schedule), |a, b| {
                cuts.push((a, b))
            });
            for &(t0, t1) in cuts.iter() {
                let mid = (t0 + t1) / 2;
                let phase = schedule.phase_at(mid);
                let rps = m.total_rps(mid);
                let facts = matches!(m.bursts, Bursts::Steady).then(|| {
                    let level = faults.level_at(mid, rps * m.canary_share[phase]);
                    Facts::new(m, faults, t0, t1, level)
                });
                let mut span = Span {
                    t0,
                    t1,
                    mid,
                    dt: (t1 - t0) as f64 / 1000.0,
                    phase,
                    serving: instants::Traffic::serving(m, t0, schedule),
                    rps,
                    facts,
                    slot,
                    cpu_read,
                    draws: None,
                };
                if let Some(facts) = &facts {
                    // The same span as an earlier step's: its plan is kept.
                    let level = facts.level;
                    let key = PlanKey {
                        rps_bits: rps.to_bits(),
                        dt_bits: span.dt.to_bits(),
                        phase,
                        serving: span.serving,
                        level,
                    };
                    if let Some((_, ranges)) = plans.keys.iter().find(|(k, _)| *k == key) {
                        span.draws = Some(ranges.clone());
                        step.spans.push(span);
                        continue;
                    }
                    // Even in a leak's ramp, where the means change at every evaluation, a
                    // table serves the whole batch once, which beats a rejection draw per
                    // trial.
                    let mut ranges = [0..0, 0..0];
                    for (ti, &track) in tracks.iter().enumerate() {
                        let start = plans.draws.len();
                        plan_track(
                            &mut plans.draws,
                            m,
                            &span,
                            track,
                            rps,
                            faults.mix(track.0, facts.level),
                            Some(&mut plans.pool),
                        );
                        ranges[ti] = start..plans.draws.len();
                    }
                    plans.keys.push((key, ranges.clone()));
                    span.draws = Some(ranges);
                }
                step.spans.push(span);
            }
        };
        match m.needed {
            Some((period, [a, b])) => {
                let mut r = (self.last_j + 1).rem_euclid(period);
                for next in self.last_j + 1..=target {
                    if next == target || r == a || r == b || Some(next) == crash_end {
                        push(j, Some(next));
                        j = next;
                    }
                    r += 1;
                    if r == period {
                        r = 0;
                    }
                }
            }
            None => {
                for next in self.last_j + 1..=target {
                    push(j, Some(next));
                    j = next;
                }
            }
        }
        // Only the blast radius reads them: drawn in every scenario of a run that has a
        // fault (the healthy twins too, so that their draws stay common).
        if m.counts_exposure {
            push(j, None);
        }
        self.last_j = self.last_j.max(target);
        self.slots.pop_before(m.first_scrape_in_window(ts));
        self.step.window = self.window(ts, self.slots.ends());
        self.step.canary_window = match self.faults.last_sample() {
            Some(last)
                if self.slots.len > 0
                    && self.slots.j[self.slots.slot(self.slots.len - 1)] > last =>
            {
                // The canary's samples in the window: those up to its last one.
                let kept = (0..self.slots.len)
                    .take_while(|&i| self.slots.j[self.slots.slot(i)] <= last)
                    .count();
                let ends = (kept >= 2).then(|| (self.slots.slot(0), self.slots.slot(kept - 1)));
                Some(self.window(ts, ends))
            }
            _ => None,
        };
        &self.step
    }

    /// The window at `ts` whose first and last samples are in slots `ends`.
    fn window(&mut self, ts: i64, ends: Option<(usize, usize)>) -> Window {
        let m = self.model;
        let start = ts - m.window_ms;
        match ends {
            None => Window::default(),
            Some((f, l)) => {
                let (jf, jl) = (self.slots.j[f], self.slots.j[l]);
                let (first_t, last_t) = (m.scrape_time(jf), m.scrape_time(jl));
                let intervals = (jl - jf) as usize;
                let layout = (first_t - start, ts - last_t, jl - jf);
                let factor = match self.layout {
                    Some((k, v)) if k == layout => v,
                    _ => {
                        let v = prom::rate::extrapolate(
                            Sample::new(first_t, 0.0),
                            Sample::new(last_t, 1.0),
                            intervals,
                            1.0,
                            start,
                            ts,
                            false,
                            true,
                            m.semantics,
                        );
                        self.layout = Some((layout, v));
                        v
                    }
                };
                Window {
                    ends: Some((f, l)),
                    first_t,
                    last_t,
                    first_j: jf,
                    last_j: jl,
                    intervals,
                    factor,
                    sampled_s: ((jl - jf) * m.scrape_ms) as f64 / 1000.0,
                    gap_s: (first_t - start) as f64 / 1000.0,
                }
            }
        }
    }
}
