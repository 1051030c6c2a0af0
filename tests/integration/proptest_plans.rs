//! Property tests of the plan language: generated valid plans validate and survive a YAML
//! round trip unchanged; arbitrary mutations of valid plans never panic.
//!
//! Plans are generated as typed models ([`plan::model::Plan`]) under the language's rules
//! (traffic never decreasing and ending at 100%, an audience that never shrinks, gates on
//! the healthy side, thresholds inside their unit's range, phases outlasting every rule), then
//! written out with `yaml_serde`. Most cases go through the library (`pipeline::compile`) for
//! speed; a few go through the binary to prove the process exit codes.

use crate::support::*;
use indexmap::IndexMap;
use plan::model::{
    self, AfterMaxHold, AutomaticRollback, Bad, Condition, Deployment, Duration, Email,
    ForDuration, Gate, GatePolicy, MetricDef, Network, Notifications, OnGateFailure, Phase, Plan,
    Predicate, Release, Resolver, RollbackCondition, Routing, Service, Share, Slack, Sms, Sticky,
    Target, Threshold, Traffic, Unit,
};
use plan::pipeline;
use plan::source::Source;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

fn dur(ms: u64) -> Duration {
    Duration::from_millis(ms).expect("positive duration")
}

fn ident() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,10}"
}

fn predicate() -> impl Strategy<Value = Predicate> {
    prop_oneof![
        "[a-z][a-z_]{0,8}".prop_map(|s| s),
        (0u32..1000).prop_map(|n| format!(">= {n}")),
        (1u32..400).prop_map(|n| format!("< {n} days")),
        (1u32..48).prop_map(|n| format!(">= {n} hours")),
        "[a-z]{1,8}".prop_map(|s| format!("!= {s}")),
        Just("true".to_string()),
        (0u32..100).prop_map(|n| n.to_string()),
    ]
    .prop_map(|s| Predicate::parse(&s).expect("generated predicate parses"))
}

fn conditions() -> impl Strategy<Value = Vec<Condition>> {
    prop::collection::vec(
        (ident(), predicate()).prop_map(|(attribute, predicate)| Condition {
            attribute,
            predicate,
        }),
        1..4,
    )
}

fn share_hundredths() -> impl Strategy<Value = u16> {
    prop_oneof![
        (0u16..=100).prop_map(|p| p * 100),
        (0u16..=10_000),
        Just(50u16),
    ]
}

/// A metric a gate or rollback can watch: its name, unit, bad direction and (for a custom
/// metric) its definition.
#[derive(Debug, Clone)]
struct MetricChoice {
    name: String,
    unit: Unit,
    bad: Bad,
    def: Option<MetricDef>,
}

fn builtin_metrics() -> Vec<MetricChoice> {
    plan::check::BUILTINS
        .iter()
        .map(|b| MetricChoice {
            name: b.name.to_string(),
            unit: b.unit,
            bad: b.bad,
            def: None,
        })
        .collect()
}

fn custom_metric() -> impl Strategy<Value = MetricChoice> {
    (
        "[a-z]{2,8}_custom",
        prop_oneof![
            Just(Unit::Ratio),
            Just(Unit::Milliseconds),
            Just(Unit::Seconds),
            Just(Unit::Bytes),
            Just(Unit::Count),
            Just(Unit::PerSecond),
        ],
        prop_oneof![Just(Bad::High), Just(Bad::Low)],
        proptest::option::of("[A-Za-z ]{1,30}"),
    )
        .prop_map(|(name, unit, bad, description)| MetricChoice {
            def: Some(MetricDef {
                description,
                query: format!(
                    "sum(rate({name}_total{{service=\"$service\",track=\"$track\"}}[$window]))"
                ),
                unit: Some(unit),
                bad: Some(bad),
            }),
            name,
            unit,
            bad,
        })
}

/// An absolute threshold text inside the unit's range, with a looser one for the rollback:
/// (gate amount, rollback amount), both in a form that unit accepts.
fn amounts(unit: Unit, bad: Bad) -> BoxedStrategy<(String, String)> {
    match (unit, bad) {
        (Unit::Ratio, Bad::High) => (1u32..50)
            .prop_flat_map(|g| (Just(g), g..99))
            .prop_map(|(g, r)| (format!("{g}%"), format!("0.{r:02}")))
            .boxed(),
        (Unit::Ratio, Bad::Low) => (51u32..99)
            .prop_flat_map(|g| (Just(g), 1..=g))
            .prop_map(|(g, r)| (format!("{g}%"), format!("{r}%")))
            .boxed(),
        (Unit::Milliseconds, Bad::High) => (100u32..3000)
            .prop_flat_map(|g| (Just(g), g..10_000))
            .prop_map(|(g, r)| (format!("{g}ms"), r.to_string()))
            .boxed(),
        (Unit::Seconds, Bad::High) => (1u32..10)
            .prop_flat_map(|g| (Just(g), g..60))
            .prop_map(|(g, r)| (format!("{g}s"), r.to_string()))
            .boxed(),
        (Unit::Bytes, Bad::High) => (1u32..512)
            .prop_flat_map(|g| (Just(g), g..1024))
            .prop_map(|(g, r)| (format!("{g}MiB"), format!("{r}MiB")))
            .boxed(),
        (_, Bad::High) => (1u32..100)
            .prop_flat_map(|g| (Just(g), g..1000))
            .prop_map(|(g, r)| (g.to_string(), r.to_string()))
            .boxed(),
        (_, Bad::Low) => (10u32..1000)
            .prop_flat_map(|g| (Just(g), 1..=g))
            .prop_map(|(g, r)| (g.to_string(), r.to_string()))
            .boxed(),
    }
}

/// A gate and a rollback threshold for `m`: absolute or relative to stable.
fn rule_pair(m: &MetricChoice) -> BoxedStrategy<(Gate, Threshold)> {
    let bad = m.bad;
    let relative = prop_oneof![
        Just(("<= 1.5x stable", "2x stable")),
        Just(("< 1.2x stable", "3x stable")),
    ]
    .prop_map(|(g, r)| (g.to_string(), r.to_string()));
    let relative_low = prop_oneof![
        Just((">= 95% of stable", "80% of stable")),
        Just(("> 0.9x stable", "0.5x stable")),
    ]
    .prop_map(|(g, r)| (g.to_string(), r.to_string()));
    let absolute = amounts(m.unit, bad).prop_map(move |(g, r)| {
        let op = if bad == Bad::High { "<" } else { ">" };
        (format!("{op} {g}"), r)
    });
    // A comparison with stable with its floor (a healthy level for the gate).
    let floored = amounts(m.unit, bad).prop_map(move |(g, r)| match bad {
        Bad::High => (
            format!("<= 1.5x stable or < {g}"),
            format!("2x stable and above {r}"),
        ),
        Bad::Low => (
            format!(">= 95% of stable or > {g}"),
            format!("80% of stable and below {r}"),
        ),
    });
    let texts = if bad == Bad::High {
        prop_oneof![3 => absolute, 1 => relative, 1 => floored].boxed()
    } else {
        prop_oneof![3 => absolute, 1 => relative_low, 1 => floored].boxed()
    };
    texts
        .prop_map(|(g, r)| {
            (
                Gate::parse(&g).expect("generated gate parses"),
                Threshold::parse(&r).expect("generated threshold parses"),
            )
        })
        .boxed()
}

#[derive(Debug, Clone)]
struct Parts {
    name: String,
    service: String,
    port: u16,
    listen: u16,
    replicas: Option<u32>,
    sticky: Sticky,
    force_header: Option<String>,
    groups: Vec<(String, Vec<Condition>, Option<u16>)>,
    rps: Option<f64>,
    phase_shares: Vec<u16>,
    /// For each group, the phase from which it is targeted (past the end: never).
    targeted_from: Vec<usize>,
    phase_hours: Vec<u64>,
    customs: Vec<MetricChoice>,
    watched: Vec<usize>,
    rule_minutes: Vec<u64>,
    notify: (bool, bool, bool),
    /// Where the group and force headers count from (written when either is set).
    trusted: Vec<Network>,
    resolver: Option<Resolver>,
    /// 0: no `deployment`; 1: a host with automatic rollback; 2: compose with its own URLs
    /// and automatic rollback.
    deployment: u8,
}

fn parts() -> impl Strategy<Value = Parts> {
    (
        (
            "[a-z][a-z0-9-]{0,20}",
            // Service names docker-compose cannot read (YAML 1.1 words) or that the
            // overrides define themselves are refused by `plan validate`.
            "[a-z][a-z0-9_-]{0,12}".prop_filter("a usable compose service name", |s| {
                !["y", "n", "yes", "no", "on", "off", "true", "false", "null"].contains(&s.as_str())
                    && !["nginx", "prometheus", "alertmanager"].contains(&s.as_str())
            }),
            1u16..=65535,
            1u16..=65535,
            proptest::option::of(1u32..=1000),
            prop_oneof![
                "[a-z][a-z0-9_]{0,10}".prop_map(Sticky::Cookie),
                "X-[A-Za-z0-9-]{1,10}".prop_map(Sticky::Header),
                Just(Sticky::ClientAddress(true)),
            ],
            proptest::option::of("X-[A-Za-z]{1,10}"),
        ),
        prop::collection::vec(
            (
                conditions(),
                proptest::option::of(prop_oneof![(0u16..=30).prop_map(|p| p * 100), 1u16..3000]),
            ),
            0..4,
        ),
        proptest::option::of(prop_oneof![Just(0.1), 1.0f64..100_000.0]),
        (1usize..7).prop_flat_map(|n| {
            (
                prop::collection::vec(share_hundredths(), n - 1),
                prop::collection::vec(0usize..=n, 4),
                prop::collection::vec(1u64..24 * 30, n),
            )
        }),
        prop::collection::vec(custom_metric(), 0..3),
        prop::collection::vec(0usize..11, 0..6),
        prop::collection::vec(1u64..60, 6),
        (any::<bool>(), any::<bool>(), any::<bool>()),
        (
            prop::sample::subsequence(
                vec![
                    "10.0.0.0/8",
                    "192.168.1.20",
                    "fd00::/8",
                    "0.0.0.0/0",
                    "::/0",
                ],
                1..3,
            ),
            proptest::option::of(prop::sample::select(vec![
                "127.0.0.11",
                "10.0.0.2:5353",
                "[fd00::53]:53",
            ])),
            0u8..3,
        ),
    )
        .prop_map(
            |(
                (name, service, port, listen, replicas, sticky, force_header),
                groups,
                rps,
                (mut shares, targeted_from, phase_hours),
                customs,
                watched,
                rule_minutes,
                notify,
                (trusted, resolver, deployment),
            )| {
                shares.sort_unstable();
                shares.push(10_000);
                Parts {
                    name,
                    service,
                    port,
                    listen,
                    replicas,
                    sticky,
                    force_header,
                    groups: groups
                        .into_iter()
                        .enumerate()
                        .map(|(i, (c, s))| (format!("group_{i}"), c, s))
                        .collect(),
                    rps,
                    phase_shares: shares,
                    targeted_from,
                    phase_hours,
                    customs,
                    watched,
                    rule_minutes,
                    notify,
                    trusted: trusted
                        .into_iter()
                        .map(|n| Network::parse(n).expect("a network"))
                        .collect(),
                    resolver: resolver.map(|r| Resolver::parse(r).expect("a resolver")),
                    deployment,
                }
            },
        )
}

/// A plan's `deployment` of kind `choice` (see [`Parts::deployment`]).
fn deployment(name: &str, choice: u8) -> Option<Deployment> {
    let automatic = AutomaticRollback {
        listen: None,
        url: None,
        token_file: "/etc/plan/release-token".into(),
    };
    match choice {
        1 => Some(Deployment {
            target: Some(Target::Host),
            nginx_conf: Some(format!("/etc/nginx/conf.d/{name}.conf")),
            nginx: Some(vec!["nginx".into(), "-p".into(), "/srv/nginx/".into()]),
            rules_file: Some(format!("/etc/prometheus/rules/{name}.rules.yml")),
            automatic_rollback: Some(automatic),
            ..Deployment::default()
        }),
        2 => Some(Deployment {
            prometheus: Some("http://prometheus:9090/".into()),
            alertmanager: Some("http://10.0.0.5:9093/am".into()),
            automatic_rollback: Some(AutomaticRollback {
                listen: Some("[::1]:9797".into()),
                url: Some("http://host.docker.internal:9797/alerts".into()),
                ..automatic
            }),
            ..Deployment::default()
        }),
        _ => None,
    }
}

/// A valid plan built from `parts`, with gates and rollback rules drawn for its metrics.
fn valid_plan() -> impl Strategy<Value = Plan> {
    parts()
        .prop_flat_map(|p| {
            let mut metrics = builtin_metrics();
            for c in &p.customs {
                if !metrics.iter().any(|m| m.name == c.name) {
                    metrics.push(c.clone());
                }
            }
            let mut watched: Vec<MetricChoice> = Vec::new();
            for &w in &p.watched {
                let m = &metrics[w % metrics.len()];
                if !watched.iter().any(|x| x.name == m.name) {
                    watched.push(m.clone());
                }
            }
            let pairs: Vec<BoxedStrategy<(Gate, Threshold)>> =
                watched.iter().map(rule_pair).collect();
            (Just(p), Just(metrics), Just(watched), pairs)
        })
        .prop_map(|(p, metrics, watched, pairs)| assemble(p, &metrics, &watched, pairs))
}

fn assemble(
    p: Parts,
    metrics: &[MetricChoice],
    watched: &[MetricChoice],
    pairs: Vec<(Gate, Threshold)>,
) -> Plan {
    let n = p.phase_shares.len();
    let user_groups: IndexMap<String, Vec<Condition>> = p
        .groups
        .iter()
        .map(|(g, c, _)| (g.clone(), c.clone()))
        .collect();
    let rule_minutes: Vec<u64> = watched
        .iter()
        .enumerate()
        .map(|(i, _)| p.rule_minutes[i % p.rule_minutes.len()])
        .collect();
    let longest_rule = rule_minutes.iter().copied().max().unwrap_or(1);
    let phases: Vec<Phase> = p
        .phase_shares
        .iter()
        .enumerate()
        .map(|(i, &share)| Phase {
            name: format!("phase-{i}"),
            traffic: Share::from_hundredths(share).expect("share"),
            groups: p
                .groups
                .iter()
                .enumerate()
                .filter(|(gi, _)| p.targeted_from.get(*gi).is_some_and(|&from| from <= i))
                .map(|(_, (g, _, _))| g.clone())
                .collect(),
            duration: (i + 1 < n)
                .then(|| dur((p.phase_hours[i] * 3_600_000).max(longest_rule * 60_000))),
        })
        .collect();
    let any_targeted = phases.iter().any(|ph| !ph.groups.is_empty());
    let group_shares: IndexMap<String, Share> = p
        .groups
        .iter()
        .filter_map(|(g, _, s)| Some((g.clone(), Share::from_hundredths((*s)?)?)))
        .collect();
    let traffic = (p.rps.is_some() || !group_shares.is_empty()).then(|| Traffic {
        requests_per_second: p.rps,
        users_per_day: p.rps.map(|r| (r * 100.0) as u64 + 1),
        groups: group_shares,
    });
    let mut gates = IndexMap::new();
    let mut rollback_conditions = Vec::new();
    for ((m, (gate, threshold)), minutes) in watched.iter().zip(pairs).zip(&rule_minutes) {
        gates.insert(m.name.clone(), gate);
        rollback_conditions.push(RollbackCondition {
            id: None,
            metric: m.name.clone(),
            threshold,
            duration: ForDuration::from_millis(minutes * 60_000).expect("a for duration"),
            // A guard on every other request metric with its built-in query.
            min_requests: (m.def.is_none()
                && ["error_rate", "availability", "response_time_p95"].contains(&m.name.as_str())
                && minutes % 2 == 0)
                .then_some(minutes * 10 + 1),
        });
    }
    let custom_defs: IndexMap<String, MetricDef> = metrics
        .iter()
        .filter_map(|m| Some((m.name.clone(), m.def.clone()?)))
        .collect();
    let (slack, email, sms) = p.notify;
    // Every valid `gate_policy` shape, drawn from a number the plan already has.
    let gate_policy = match p.rule_minutes[0] % 4 {
        0 => None,
        1 => Some(GatePolicy {
            on_failure: Some(OnGateFailure::Rollback),
            max_hold: None,
            after_max_hold: None,
        }),
        2 => Some(GatePolicy {
            on_failure: Some(OnGateFailure::Hold),
            max_hold: Some(dur(p.rule_minutes[1] * 3_600_000)),
            after_max_hold: None,
        }),
        _ => Some(GatePolicy {
            on_failure: Some(OnGateFailure::Hold),
            max_hold: None,
            after_max_hold: Some(AfterMaxHold::Stay),
        }),
    };
    Plan {
        deployment: deployment(&p.name, p.deployment),
        name: p.name,
        release: Release {
            from: "v1.0.0".into(),
            to: "v1.1.0".into(),
        },
        service: Service {
            name: p.service,
            image: "example/app".into(),
            port: p.port,
            replicas: p.replicas,
        },
        routing: Routing {
            listen: p.listen,
            // A host keeps the site on loopback, its log in a file of its own.
            listen_address: (p.deployment == 1).then(|| "127.0.0.1".to_string()),
            access_log: match p.deployment {
                1 => Some("/var/log/nginx/canary.access.log".into()),
                2 => Some("off".into()),
                _ => None,
            },
            server_name: None,
            sticky: p.sticky,
            trusted_networks: (any_targeted || p.force_header.is_some()).then_some(p.trusted),
            group_header: any_targeted.then(|| "X-User-Group".to_string()),
            force_header: p.force_header,
            // A host needs a DNS server of its own (Docker's answers only in containers).
            resolver: p.resolver.or_else(|| {
                (p.deployment == 1).then(|| Resolver::parse("127.0.0.53").expect("a resolver"))
            }),
        },
        user_groups,
        traffic,
        monitoring: None,
        phases,
        metrics: custom_defs,
        gates,
        gate_policy,
        rollback_conditions,
        notifications: (slack || email || sms).then(|| Notifications {
            slack: slack.then(|| Slack {
                channel: "#releases".into(),
                api_url_file: "/etc/secrets/slack".into(),
            }),
            email: email.then(|| Email {
                to: vec!["ops@example.com".into()],
                from: "canary@example.com".into(),
                smarthost: "smtp.example.com:587".into(),
                auth_username: None,
                auth_password_file: None,
            }),
            sms: sms.then(|| Sms {
                webhook_url: "https://sms.example.com/hook".into(),
                credentials_file: Some("/etc/secrets/sms-token".into()),
            }),
        }),
        simulation: None,
    }
}

fn to_text(plan: &Plan) -> String {
    yaml_serde::to_string(plan).expect("a plan serialises")
}

fn source(text: &str) -> Source {
    Source::new("generated.yaml".into(), text.to_string())
}

/// Reads the typed model back from text, through the same stages as `plan validate`.
fn read_back(text: &str) -> Plan {
    let doc = plan::syntax::parse(&source(text))
        .unwrap_or_else(|(_, d)| panic!("generated plan does not parse: {d:?}\n{text}"));
    model::from_document(&doc.value).unwrap_or_else(|d| panic!("{d:?}\n{text}"))
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

#[test]
fn generated_plans_validate_and_round_trip() {
    let mut runner = TestRunner::new(config(256));
    runner
        .run(&valid_plan(), |plan| {
            let text = to_text(&plan);
            let compiled = pipeline::compile(source(&text));
            let errors: Vec<_> = compiled
                .findings
                .iter()
                .filter(|f| f.severity == plan::diagnostic::Severity::Error)
                .collect();
            prop_assert!(errors.is_empty(), "errors {errors:#?} in\n{text}");
            prop_assert!(compiled.plan.is_some());
            let back = read_back(&text);
            prop_assert_eq!(&back, &plan, "round trip changed the plan:\n{}", text);
            // And the text is a fixed point: writing the read-back plan gives the same text.
            prop_assert_eq!(to_text(&back), text);
            Ok(())
        })
        .unwrap();
}

#[test]
fn generated_plans_validate_through_the_binary() {
    let dir = temp_dir("proptest-valid");
    let mut runner = TestRunner::new(config(12));
    let n = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&valid_plan(), |plan| {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let path = dir.join(format!("plan-{i}.yaml"));
            std::fs::write(&path, to_text(&plan)).unwrap();
            let d = crate::support::plan().args(["validate"]).arg(&path).run();
            prop_assert_eq!(d.code, 0, "{}", d.stderr);
            Ok(())
        })
        .unwrap();
}

/// Strings that have broken parsers and renderers before.
const HOSTILE: &[&str] = &[
    "",
    "~",
    "null",
    "*a",
    "&a x",
    "<<: *a",
    "!!binary aGk=",
    "!custom",
    ".nan",
    "-.inf",
    "1e309",
    "0x1F",
    "-0",
    "18446744073709551616",
    "\"",
    "'",
    "[",
    "{",
    "}",
    "{{ x }}",
    "${HOME}",
    "$(rm -rf /)",
    "a\u{0}b",
    "\t",
    "\u{202e}evil",
    "日本語",
    "? x",
    "- - -",
    "---",
    "...",
    "%YAML 1.2",
    "#",
    "|",
    ">-",
    "100%%",
    "< < 5",
    ">= 7 dayz",
    "2x stable stable",
    "9999999999999999999999d",
    "1h30m1h",
    "-5m",
];

#[derive(Debug, Clone)]
enum Mutation {
    FlipByte { at: usize, byte: u8 },
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapKeys(usize, usize),
    SwapValues(usize, usize),
    Hostile { line: usize, value: usize },
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::FlipByte { at, byte }),
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapKeys(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapValues(a, b)),
        (any::<usize>(), any::<usize>())
            .prop_map(|(line, value)| Mutation::Hostile { line, value }),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

/// Splits a `key: value` line into (indent+key, value); None when the line has no value.
fn split_kv(line: &str) -> Option<(&str, &str)> {
    let i = line.find(": ")?;
    Some((&line[..i], &line[i + 2..]))
}

fn apply(text: &str, muts: &[Mutation]) -> Vec<u8> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut bytes_after: Vec<(usize, u8)> = Vec::new();
    let mut truncate = None;
    for m in muts {
        let n = lines.len().max(1);
        match *m {
            Mutation::FlipByte { at, byte } => bytes_after.push((at, byte)),
            Mutation::DeleteLine(i) if !lines.is_empty() => {
                lines.remove(i % n);
            }
            Mutation::DuplicateLine(i) if !lines.is_empty() => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            Mutation::SwapKeys(a, b) => {
                let (a, b) = (a % n, b % n);
                if let (Some((ka, va)), Some((kb, vb))) = (
                    lines.get(a).and_then(|l| split_kv(l)),
                    lines.get(b).and_then(|l| split_kv(l)),
                ) {
                    let (na, nb) = (format!("{kb}: {va}"), format!("{ka}: {vb}"));
                    lines[a] = na;
                    lines[b] = nb;
                }
            }
            Mutation::SwapValues(a, b) => {
                let (a, b) = (a % n, b % n);
                if let (Some((ka, va)), Some((kb, vb))) = (
                    lines.get(a).and_then(|l| split_kv(l)),
                    lines.get(b).and_then(|l| split_kv(l)),
                ) {
                    let (na, nb) = (format!("{ka}: {vb}"), format!("{kb}: {va}"));
                    lines[a] = na;
                    lines[b] = nb;
                }
            }
            Mutation::Hostile { line, value } => {
                let i = line % n;
                let v = HOSTILE[value % HOSTILE.len()];
                if let Some((k, _)) = lines.get(i).and_then(|l| split_kv(l)) {
                    lines[i] = format!("{k}: {v}");
                } else if let Some(l) = lines.get_mut(i) {
                    l.push_str(v);
                }
            }
            Mutation::Truncate(at) => truncate = Some(at),
            _ => {}
        }
    }
    let mut bytes = lines.join("\n").into_bytes();
    bytes.push(b'\n');
    for (at, byte) in bytes_after {
        let len = bytes.len();
        bytes[at % len] = byte;
    }
    if let Some(at) = truncate {
        let len = bytes.len();
        bytes.truncate(at % (len + 1));
    }
    bytes
}

/// Everything `plan validate` does with a file's bytes, in the library.
fn validate_bytes(bytes: Vec<u8>) -> Option<bool> {
    let src = Source::from_bytes("mutated.yaml".into(), bytes).ok()?;
    let compiled = pipeline::compile(src);
    // Rendering the findings is part of validating: it must not panic either.
    for f in &compiled.findings {
        let _ = plan::diagnostic::render_human(Some(&compiled.source), f, false);
    }
    Some(compiled.has_errors())
}

fn mutated_plan() -> impl Strategy<Value = (String, Vec<u8>)> {
    (
        prop_oneof![
            3 => valid_plan().prop_map(|p| to_text(&p)),
            1 => Just(std::fs::read_to_string(root().join("plans/lawsker.yaml")).expect("lawsker")),
        ],
        prop::collection::vec(mutation(), 1..6),
    )
        .prop_map(|(text, muts)| {
            let bytes = apply(&text, &muts);
            (text, bytes)
        })
}

#[test]
fn mutated_plans_never_panic() {
    let mut runner = TestRunner::new(config(1024));
    runner
        .run(&mutated_plan(), |(_, bytes)| {
            let shown = String::from_utf8_lossy(&bytes).into_owned();
            let outcome = catch_unwind(AssertUnwindSafe(|| validate_bytes(bytes)));
            prop_assert!(outcome.is_ok(), "plan panicked on:\n{shown}");
            Ok(())
        })
        .unwrap();
}

#[test]
fn mutated_plans_never_panic_through_the_binary() {
    let dir = temp_dir("proptest-mutated");
    let mut runner = TestRunner::new(config(16));
    let n = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&mutated_plan(), |(_, bytes)| {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let path = dir.join(format!("mutated-{i}.yaml"));
            std::fs::write(&path, &bytes).unwrap();
            // `run` itself fails on exit 101 (a panic).
            let d = crate::support::plan().args(["validate"]).arg(&path).run();
            prop_assert!(d.code == 0 || d.code == 1, "exit {}: {}", d.code, d.stderr);
            Ok(())
        })
        .unwrap();
}

// ----- hostile inputs, one class each: memory and time stay bounded -----

/// A hostile input for the binary, by class (see `tests/integration/limits_input.rs` for
/// each limit's own tests).
#[derive(Debug, Clone)]
enum Hostile {
    /// A `base`-item list and `levels` lists of `width` aliases to the level below,
    /// inserted before line `at` of a plan.
    WideAliases {
        base: usize,
        levels: usize,
        width: usize,
        at: usize,
    },
    /// `depth` nested flow lists or mappings, or block mappings, before line `at`.
    DeepNesting { depth: usize, style: u8, at: usize },
    /// A device, a /proc file or a FIFO nobody writes to, given as the plan (0), the
    /// scenario file (1) or the trace (2).
    Device { path: usize, role: u8 },
    /// A trace file of `size` bytes (sparse past its first line), CSV or JSON.
    HugeTrace { json: bool, size: u64 },
}

const DEVICES: &[&str] = &[
    "/dev/zero",
    "/dev/urandom",
    "/dev/null",
    "/proc/self/status",
    "/proc/self/maps",
    "fifo",
];

fn hostile() -> impl Strategy<Value = Hostile> {
    let gib = 1024 * 1024 * 1024u64;
    prop_oneof![
        (1usize..3000, 1usize..8, 2usize..12, any::<usize>()).prop_map(
            |(base, levels, width, at)| Hostile::WideAliases {
                base,
                levels,
                width,
                at
            }
        ),
        (0u32..17, 0u8..3, any::<usize>()).prop_map(|(bits, style, at)| Hostile::DeepNesting {
            // Log-uniform from 1 to 65536 levels.
            depth: 1 << bits,
            style,
            at
        }),
        (0..DEVICES.len(), 0u8..3).prop_map(|(path, role)| Hostile::Device { path, role }),
        (
            any::<bool>(),
            prop_oneof![
                Just(gib + 1),
                (gib - 4096..gib + 4096),
                (128 * 1024 * 1024 - 4096..128 * 1024 * 1024 + 4096u64),
                (1u64..1 << 20),
            ]
        )
            .prop_map(|(json, size)| Hostile::HugeTrace { json, size }),
    ]
}

/// Inserts `block` before line `at` (modulo the line count) of lawsker.yaml.
fn insert_into_plan(block: &str, at: usize) -> String {
    let text = std::fs::read_to_string(root().join("plans/lawsker.yaml")).expect("lawsker");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(at % (lines.len() + 1), block);
    lines.join("\n") + "\n"
}

/// Runs one hostile case through the binary under a memory cap and a timeout; the run
/// itself fails on a panic, a death by signal (an out-of-memory abort) or a hang.
fn run_hostile(h: &Hostile, dir: &std::path::Path, i: usize) -> Done {
    let mem = 1024 * 1024 * 1024;
    let timeout = std::time::Duration::from_secs(60);
    let file = dir.join(format!("hostile-{i}"));
    let validate = |text: String| {
        std::fs::write(&file, text).unwrap();
        crate::support::plan()
            .arg("validate")
            .arg(&file)
            .run_bounded(mem, timeout)
    };
    match *h {
        Hostile::WideAliases {
            base,
            levels,
            width,
            at,
        } => {
            let mut block = format!("x0: &x0 [{}]\n", vec!["1"; base].join(","));
            for l in 1..=levels {
                let refs = vec![format!("*x{}", l - 1); width].join(",");
                block.push_str(&format!("x{l}: &x{l} [{refs}]\n"));
            }
            validate(insert_into_plan(block.trim_end(), at))
        }
        Hostile::DeepNesting { depth, style, at } => {
            let block = match style {
                0 => format!("deep: {}{}", "[".repeat(depth), "]".repeat(depth)),
                1 => format!("deep: {}1{}", "{a: ".repeat(depth), "}".repeat(depth)),
                _ => (0..depth.min(1500))
                    .map(|d| format!("{}k{d}:", " ".repeat(d)))
                    .collect::<Vec<_>>()
                    .join("\n"),
            };
            validate(insert_into_plan(&block, at))
        }
        Hostile::Device { path, role } => {
            let target = if DEVICES[path] == "fifo" {
                let fifo = dir.join(format!("fifo-{i}"));
                let made = std::process::Command::new("mkfifo")
                    .arg(&fifo)
                    .status()
                    .expect("mkfifo");
                assert!(made.success());
                fifo
            } else {
                PathBuf::from(DEVICES[path])
            };
            let args: Vec<std::ffi::OsString> = match role {
                0 => vec!["validate".into(), target.into()],
                1 => vec![
                    "simulate".into(),
                    "plans/lawsker.yaml".into(),
                    "--scenarios".into(),
                    target.into(),
                ],
                _ => vec![
                    "simulate".into(),
                    "plans/lawsker.yaml".into(),
                    "--trace".into(),
                    target.into(),
                ],
            };
            crate::support::plan().args(args).run_bounded(mem, timeout)
        }
        Hostile::HugeTrace { json, size } => {
            let head: &[u8] = if json {
                b"{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[\n"
            } else {
                b"timestamp,series,labels,value\n0,error_rate,track=canary,0\n"
            };
            std::fs::write(&file, head).unwrap();
            std::fs::OpenOptions::new()
                .write(true)
                .open(&file)
                .unwrap()
                .set_len(size.max(head.len() as u64))
                .unwrap();
            let d = crate::support::plan()
                .args(["simulate", "plans/lawsker.yaml", "--trace"])
                .arg(&file)
                .run_bounded(mem, timeout);
            let _ = std::fs::remove_file(&file);
            d
        }
    }
}

#[test]
fn hostile_inputs_stay_bounded_through_the_binary() {
    let dir = temp_dir("proptest-hostile");
    let mut runner = TestRunner::new(config(48));
    let n = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&hostile(), |h| {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let d = run_hostile(&h, &dir, i);
            // Never a silent success on garbage: a finding and exit 1, or an I/O error
            // (exit 2), each with its message.
            prop_assert!(
                d.code == 1 || d.code == 2,
                "{h:?}: exit {}: {}",
                d.code,
                d.stderr
            );
            prop_assert!(d.stderr.contains("error"), "{h:?}: {}", d.stderr);
            Ok(())
        })
        .unwrap();
}
