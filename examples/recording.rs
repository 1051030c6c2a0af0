//! A recording of a healthy service for `plan simulate --baseline`, drawn from the same law
//! as the synthetic model's defaults, in the project's CSV trace format: every series the
//! Lawsker plan's rules read, as a `promtool query range` export of the stable version
//! would give them (no `track`, no `service`: a trial sets both).
//!
//!     cargo run --release --example recording -- DAYS [STEP_SECONDS] [SEED] > recording.csv
//!
//! Requests arrive as a Poisson process at 60 per second with a daily cycle of ±50% (peak
//! at 15:00 UTC), 0.5% fail (`code="500"`), latencies are lognormal (median 120ms, sigma
//! 0.6) in the client libraries' default buckets; CPU, memory, database connections and
//! Redis memory drift as Ornstein-Uhlenbeck processes; the business counters follow the
//! requests. It starts at 2024-05-01T00:00:00Z.

use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::{Binomial, Distribution, Normal, Poisson};
use std::io::Write;

const LES: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

fn lognormal_cdf(x: f64, median: f64, sigma: f64) -> f64 {
    0.5 * statrs::function::erf::erfc(-(x / median).ln() / (sigma * std::f64::consts::SQRT_2))
}

/// A drifting noise: correlation `a` from one step to the next, unit variance.
struct Drift {
    x: f64,
    a: f64,
}

impl Drift {
    fn step(&mut self, rng: &mut Xoshiro256PlusPlus) -> f64 {
        let z: f64 = Normal::new(0.0, 1.0).unwrap().sample(rng);
        self.x = self.a * self.x + (1.0 - self.a * self.a).sqrt() * z;
        self.x
    }
}

fn binomial(rng: &mut Xoshiro256PlusPlus, n: u64, p: f64) -> u64 {
    if n == 0 || p <= 0.0 {
        0
    } else {
        Binomial::new(n, p.min(1.0)).unwrap().sample(rng)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let days: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(7.0);
    let step: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(15);
    let seed: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let start = 1_714_521_600u64;
    // One point more than the days' scrapes: their increments then cover the whole days.
    let points = (days * 86_400.0 / step as f64) as u64 + 1;
    let mut cells = Vec::with_capacity(LES.len() + 1);
    let mut below = 0.0;
    for &le in &LES {
        let c = lognormal_cdf(le, 0.12, 0.6);
        cells.push(c - below);
        below = c;
    }
    cells.push(1.0 - below);
    let a = (-(step as f64) / 600.0).exp();
    let mut drift: Vec<Drift> = (0..4).map(|_| Drift { x: 0.0, a }).collect();
    let (mut ok, mut failed, mut cpu) = (0u64, 0u64, 0.0f64);
    let mut buckets = [0u64; 12];
    let (mut started, mut completed, mut bugs, mut other) = (0u64, 0u64, 0u64, 0u64);
    let out = std::io::stdout();
    let mut w = std::io::BufWriter::new(out.lock());
    writeln!(w, "timestamp,series,labels,value").unwrap();
    for i in 0..points {
        let t = start + i * step;
        let [mem, db, redis, load] = [0, 1, 2, 3].map(|k| drift[k].step(&mut rng));
        if i > 0 {
            let hour = (t % 86_400) as f64 / 3600.0;
            let rps = 60.0 * (1.0 + 0.5 * ((hour - 9.0) / 24.0 * std::f64::consts::TAU).sin());
            let n = Poisson::new(rps * step as f64).unwrap().sample(&mut rng) as u64;
            let f = binomial(&mut rng, n, 0.005);
            ok += n - f;
            failed += f;
            let (mut left, mut mass) = (n, 1.0);
            for (k, &p) in cells.iter().enumerate() {
                let c = if k + 1 == cells.len() {
                    left
                } else {
                    binomial(&mut rng, left, p / mass)
                };
                buckets[k] += c;
                left -= c;
                mass -= p;
            }
            cpu += (0.4 + 0.02 * load) * step as f64;
            let s = binomial(&mut rng, n, 0.1);
            started += s;
            completed += binomial(&mut rng, s, 0.97);
            let fb = binomial(&mut rng, n, 0.005);
            let b = binomial(&mut rng, fb, 0.08);
            bugs += b;
            other += fb - b;
        }
        writeln!(w, "{t},http_requests_total,code=200,{ok}").unwrap();
        writeln!(w, "{t},http_requests_total,code=500,{failed}").unwrap();
        let mut cum = 0;
        for (k, c) in buckets.iter().enumerate() {
            cum += c;
            let le = LES.get(k).map_or("+Inf".to_string(), |l| l.to_string());
            writeln!(w, "{t},http_request_duration_seconds_bucket,le={le},{cum}").unwrap();
        }
        writeln!(w, "{t},process_cpu_seconds_total,,{cpu:.3}").unwrap();
        writeln!(
            w,
            "{t},container_memory_working_set_bytes,,{:.0}",
            (0.6 + 0.03 * mem) * 1e9
        )
        .unwrap();
        writeln!(w, "{t},container_spec_memory_limit_bytes,,1000000000").unwrap();
        writeln!(
            w,
            "{t},db_connections_in_use,,{:.0}",
            (30.0 + 6.0 * db).max(0.0)
        )
        .unwrap();
        writeln!(
            w,
            "{t},redis_memory_used_bytes,,{:.0}",
            (0.7 + 0.04 * redis) * 1e9
        )
        .unwrap();
        writeln!(w, "{t},redis_memory_max_bytes,,1000000000").unwrap();
        writeln!(w, "{t},feedback_submissions_total,type=bug,{bugs}").unwrap();
        writeln!(w, "{t},feedback_submissions_total,type=other,{other}").unwrap();
        writeln!(w, "{t},business_flow_started_total,,{started}").unwrap();
        writeln!(w, "{t},business_flow_completed_total,,{completed}").unwrap();
        writeln!(w, "{t},up,,1").unwrap();
    }
}
