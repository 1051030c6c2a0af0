//! The docker compose overrides: `compose/<step>.override.yml` for every phase, for the
//! rollback and for the promotion, each applied on top of the user's base file:
//! `docker compose -f <out>/docker-compose.yml -f <out>/<plan>/compose/<step>.override.yml up -d`.
//!
//! What an override changes, and nothing else:
//! - the stable service `<service>`: image `<image>:<release.from>` (the new tag once
//!   promoted), `service.replicas` replicas, labels naming plan, step, track and version;
//! - the canary service `<service>-canary`: `extends` the stable service of the base file,
//!   so it runs exactly the stable definition (environment, volumes, networks...) with the
//!   new image `<image>:<release.to>`, its own replica count
//!   ([`CheckedPlan::canary_replicas`]) and labels;
//! - `nginx` mounts the step's `nginx/<step>.conf` as its `conf.d/default.conf`, and, in a
//!   phase, starts after both application services (so that its first requests find them;
//!   it looks their addresses up at request time);
//! - `prometheus` mounts the phase's `prometheus/<phase>.rules.yml` (rollback and promotion
//!   mount none: the canary is stopped, and rules about it would only report missing data);
//! - `alertmanager` mounts `alertmanager/alertmanager.yml`.
//!
//! Paths. docker-compose resolves every relative path of every `-f` file against the
//! project directory: the folder of the FIRST file (or `--project-directory`), not the
//! override's own folder. The overrides therefore assume the layout
//! `<out>/docker-compose.yml` (the user's base) beside `<out>/<plan>/` (what `plan render
//! --out <out>` writes), and name their files `./<plan>/...`. The same holds for
//! `extends` without `file`: docker-compose 1.29 reads the extended service from the first
//! file, i.e. the base definition before any override.
//!
//! Limits of `extends` (docker-compose 1.29 and the compose spec): the stable service must
//! not use `depends_on`, `links`, `volumes_from` or `network_mode: service:`; and, being
//! scaled, it must set neither `container_name` nor a fixed host port.
//!
//! No injection, and no YAML 1.1 surprises: docker-compose reads YAML 1.1, where `yes`,
//! `on` or `1_0` are not strings. Labels are therefore written in list form
//! (`io.plan.version=1_0`), a scalar that no YAML reader takes for anything but a string;
//! every other user string is a service name, an image or a path fixed by the schema.

use super::artifact::{Artifact, header};
use super::step::Step;
use crate::check::CheckedPlan;
use indexmap::IndexMap;
use serde::Serialize;

/// Where the NGINX image reads its http-context drop-ins; replacing `default.conf` also
/// removes the image's own default server, which would compete for the listen port.
const NGINX_CONF_TARGET: &str = "/etc/nginx/conf.d/default.conf";
/// Where the base file's `prometheus.yml` must look for rules (`rule_files:
/// [/etc/prometheus/rules/*.yml]`); the file is named after the plan.
const PROMETHEUS_RULES_DIR: &str = "/etc/prometheus/rules";
/// Alertmanager's default configuration file.
const ALERTMANAGER_CONF_TARGET: &str = "/etc/alertmanager/alertmanager.yml";

/// The compose service running NGINX; the commands test and reload it.
pub(crate) const NGINX_SERVICE: &str = "nginx";

/// The canary's compose service: `<service>-canary`.
pub(crate) fn canary_service(plan: &CheckedPlan) -> String {
    format!("{}-canary", plan.service.name)
}

/// The label keys set on both application services.
const LABEL_PLAN: &str = "io.plan.plan";
const LABEL_PHASE: &str = "io.plan.phase";
const LABEL_TRACK: &str = "io.plan.track";
const LABEL_VERSION: &str = "io.plan.version";

#[derive(Debug, Serialize)]
struct Override {
    /// In a fixed order: stable, canary, nginx, prometheus, alertmanager.
    services: IndexMap<String, Service>,
}

#[derive(Debug, Default, Serialize)]
struct Service {
    #[serde(skip_serializing_if = "Option::is_none")]
    extends: Option<Extends>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deploy: Option<Deploy>,
    /// `key=value` items (see the module header for why not a mapping).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    labels: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    depends_on: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    volumes: Vec<Bind>,
}

#[derive(Debug, Serialize)]
struct Extends {
    service: String,
}

#[derive(Debug, Serialize)]
struct Deploy {
    replicas: u32,
}

/// A read-only bind mount in the long syntax: docker refuses a missing source instead of
/// creating an empty directory in its place, and the mount replaces the base file's mount
/// of the same `target`.
#[derive(Debug, Serialize)]
struct Bind {
    #[serde(rename = "type")]
    kind: &'static str,
    source: String,
    target: String,
    read_only: bool,
}

impl Bind {
    fn new(source: String, target: String) -> Bind {
        Bind {
            kind: "bind",
            source,
            target,
            read_only: true,
        }
    }
}

/// Renders `compose/<step>.override.yml` for every step of `plan`, in step order.
pub(crate) fn render(plan: &CheckedPlan) -> Vec<Artifact> {
    Step::all(plan)
        .into_iter()
        .map(|step| Artifact {
            path: format!("compose/{}.override.yml", step.name(plan)),
            contents: render_step(plan, step),
        })
        .collect()
}

fn render_step(plan: &CheckedPlan, step: Step) -> String {
    let doc = build(plan, step);
    let body = super::yaml::to_string(&doc).unwrap_or_else(|e| {
        // Plain structs of strings and integers cannot fail to serialise; keep the file
        // loud rather than silently empty if that ever changes.
        format!("# serialisation failed: {e}\nservices: {{}}\n")
    });
    let mut out = header(plan, "#");
    out.push_str(&comment(plan, step));
    out.push_str(&body);
    out
}

fn comment(plan: &CheckedPlan, step: Step) -> String {
    let name = step.name(plan);
    let what = match step {
        Step::Phase(i) => format!(
            "phase {name}: {} of the traffic to {}:{}",
            plan.phases[i].traffic, plan.service.image, plan.release.to
        ),
        Step::Rollback => format!(
            "rollback: all traffic to {}:{}, canary stopped",
            plan.service.image, plan.release.from
        ),
        Step::Promotion => format!(
            "promotion: {}:{} becomes the stable version, canary stopped",
            plan.service.image, plan.release.to
        ),
    };
    format!(
        "# {what}\n\
         # Apply from the folder given to `plan render --out`, next to the base file:\n\
         #   docker compose -f docker-compose.yml -f {plan}/compose/{name}.override.yml up -d\n\
         # Relative paths resolve against the base file's folder (the project directory).\n",
        plan = plan.name
    )
}

fn labels(plan: &CheckedPlan, step: Step, track: &str, version: &str) -> Vec<String> {
    vec![
        format!("{LABEL_PLAN}={}", plan.name),
        format!("{LABEL_PHASE}={}", step.name(plan)),
        format!("{LABEL_TRACK}={track}"),
        format!("{LABEL_VERSION}={version}"),
    ]
}

fn build(plan: &CheckedPlan, step: Step) -> Override {
    let svc = &plan.service;
    let (from, to) = (&plan.release.from, &plan.release.to);
    let canary_name = canary_service(plan);
    let file = |dir: &str, stem: &str, ext: &str| format!("./{}/{dir}/{stem}.{ext}", plan.name);

    let (stable_version, canary_count) = match step {
        Step::Phase(i) => (from, plan.canary_replicas(i)),
        Step::Rollback => (from, 0),
        Step::Promotion => (to, 0),
    };

    let stable = Service {
        image: Some(format!("{}:{stable_version}", svc.image)),
        deploy: Some(Deploy {
            replicas: svc.replicas,
        }),
        labels: labels(plan, step, "stable", stable_version),
        ..Service::default()
    };
    let canary = Service {
        extends: Some(Extends {
            service: svc.name.clone(),
        }),
        image: Some(format!("{}:{to}", svc.image)),
        deploy: Some(Deploy {
            replicas: canary_count,
        }),
        labels: labels(plan, step, "canary", to),
        ..Service::default()
    };
    let nginx = Service {
        depends_on: match step {
            Step::Phase(_) => vec![svc.name.clone(), canary_name.clone()],
            Step::Rollback | Step::Promotion => vec![svc.name.clone()],
        },
        volumes: vec![Bind::new(
            file("nginx", step.name(plan), "conf"),
            NGINX_CONF_TARGET.to_string(),
        )],
        ..Service::default()
    };
    let prometheus = Service {
        volumes: match step {
            Step::Phase(_) => vec![Bind::new(
                file("prometheus", step.name(plan), "rules.yml"),
                format!("{PROMETHEUS_RULES_DIR}/{}.rules.yml", plan.name),
            )],
            Step::Rollback | Step::Promotion => Vec::new(),
        },
        ..Service::default()
    };
    let alertmanager = Service {
        volumes: vec![Bind::new(
            file("alertmanager", "alertmanager", "yml"),
            ALERTMANAGER_CONF_TARGET.to_string(),
        )],
        ..Service::default()
    };

    let mut services = IndexMap::new();
    services.insert(svc.name.clone(), stable);
    services.insert(canary_name, canary);
    services.insert(NGINX_SERVICE.to_string(), nginx);
    if !prometheus.volumes.is_empty() {
        services.insert("prometheus".to_string(), prometheus);
    }
    services.insert("alertmanager".to_string(), alertmanager);
    Override { services }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Source;
    use yaml_serde::Value;

    const LAWSKER: &str = include_str!("../../plans/lawsker.yaml");

    /// The lawsker plan with `path` set to `value`, compiled; `None` when `plan validate`
    /// rejects it.
    fn plan_with(path: &[&str], value: &str) -> Option<CheckedPlan> {
        let mut doc: Value = yaml_serde::from_str(LAWSKER).expect("lawsker parses");
        let mut node = &mut doc;
        for seg in path {
            node = match seg.parse::<usize>() {
                Ok(i) => &mut node[i],
                Err(_) => &mut node[*seg],
            };
        }
        *node = Value::String(value.to_string());
        let text = yaml_serde::to_string(&doc).expect("plan serialises");
        let src = Source::new("t.yaml".into(), text);
        crate::pipeline::compile(src).plan.map(|l| l.plan)
    }

    fn lawsker() -> CheckedPlan {
        plan_with(&["name"], "lawsker").expect("lawsker is valid")
    }

    fn parsed(plan: &CheckedPlan) -> Vec<(String, Value)> {
        render(plan)
            .into_iter()
            .map(|a| {
                let v: Value = yaml_serde::from_str(&a.contents).expect("override is YAML");
                (a.path, v)
            })
            .collect()
    }

    fn labels_of(svc: &Value) -> Vec<String> {
        svc["labels"]
            .as_sequence()
            .map(|s| {
                s.iter()
                    .filter_map(|l| l.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn one_override_per_step_with_header_and_stable_bytes() {
        let plan = lawsker();
        let a = render(&plan);
        let paths: Vec<&str> = a.iter().map(|a| a.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "compose/alpha.override.yml",
                "compose/beta.override.yml",
                "compose/gamma.override.yml",
                "compose/production.override.yml",
                "compose/rollback.override.yml",
                "compose/promotion.override.yml",
            ]
        );
        for f in &a {
            assert!(f.contents.starts_with(&header(&plan, "#")), "{}", f.path);
        }
        assert_eq!(a, render(&plan), "deterministic");
    }

    #[test]
    fn steps_set_images_replicas_labels_and_mounts() {
        let plan = lawsker();
        let want = [
            ("alpha", "v1.0.0", 1, true),
            ("beta", "v1.0.0", 1, true),
            ("gamma", "v1.0.0", 2, true),
            ("production", "v1.0.0", 4, true),
            ("rollback", "v1.0.0", 0, false),
            ("promotion", "v1.1.0", 0, false),
        ];
        for ((path, doc), (step, stable_tag, canary_n, phase)) in parsed(&plan).iter().zip(want) {
            assert_eq!(path, &format!("compose/{step}.override.yml"));
            let s = &doc["services"];
            let stable = &s["backend"];
            let canary = &s["backend-canary"];
            assert_eq!(
                stable["image"].as_str(),
                Some(format!("lawsker/backend:{stable_tag}").as_str())
            );
            assert_eq!(stable["deploy"]["replicas"].as_u64(), Some(4));
            assert_eq!(canary["image"].as_str(), Some("lawsker/backend:v1.1.0"));
            assert_eq!(canary["extends"]["service"].as_str(), Some("backend"));
            assert_eq!(
                canary["deploy"]["replicas"].as_u64(),
                Some(canary_n),
                "{step}"
            );
            for (svc, track) in [(stable, "stable"), (canary, "canary")] {
                let l = labels_of(svc);
                assert!(l.contains(&"io.plan.plan=lawsker".to_string()), "{l:?}");
                assert!(l.contains(&format!("io.plan.phase={step}")), "{l:?}");
                assert!(l.contains(&format!("io.plan.track={track}")), "{l:?}");
            }
            let nginx = &s["nginx"];
            assert_eq!(
                nginx["volumes"][0]["source"].as_str(),
                Some(format!("./lawsker/nginx/{step}.conf").as_str())
            );
            assert_eq!(
                nginx["volumes"][0]["target"].as_str(),
                Some(NGINX_CONF_TARGET)
            );
            let deps: Vec<&str> = nginx["depends_on"]
                .as_sequence()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert_eq!(deps.contains(&"backend-canary"), phase, "{step}");
            assert_eq!(
                s["prometheus"]["volumes"][0]["source"].as_str(),
                phase
                    .then(|| format!("./lawsker/prometheus/{step}.rules.yml"))
                    .as_deref()
            );
            assert_eq!(
                s["alertmanager"]["volumes"][0]["source"].as_str(),
                Some("./lawsker/alertmanager/alertmanager.yml")
            );
        }
    }

    #[test]
    fn hostile_values_are_rejected_or_read_back_exactly() {
        type Check = fn(&CheckedPlan, &str, &[(String, Value)]) -> bool;
        let fields: [(&[&str], &[&str], Check); 6] = [
            (
                &["phases", "0", "name"],
                &["alpha", "on", "yes", "a_1-b"],
                |_, v, docs| {
                    let (path, d) = &docs[0];
                    path == &format!("compose/{v}.override.yml")
                        && labels_of(&d["services"]["backend"])
                            .contains(&format!("io.plan.phase={v}"))
                        && d["services"]["nginx"]["volumes"][0]["source"].as_str()
                            == Some(format!("./lawsker/nginx/{v}.conf").as_str())
                },
            ),
            (&["name"], &["lawsker", "yes", "on", "a-1"], |_, v, docs| {
                docs.iter().all(|(_, d)| {
                    labels_of(&d["services"]["backend"]).contains(&format!("io.plan.plan={v}"))
                        && d["services"]["alertmanager"]["volumes"][0]["source"].as_str()
                            == Some(format!("./{v}/alertmanager/alertmanager.yml").as_str())
                })
            }),
            (
                &["release", "from"],
                &["v1.0.0", "1_0", "0x10", "1.", "true", "_"],
                |p, v, docs| {
                    docs[0].1["services"][p.service.name.as_str()]["image"].as_str()
                        == Some(format!("{}:{v}", p.service.image).as_str())
                        && labels_of(&docs[0].1["services"]["backend"])
                            .contains(&format!("io.plan.version={v}"))
                },
            ),
            (
                &["release", "to"],
                &["v1.1.0", "1e3", "017", "null", "A.b-C_d"],
                |p, v, docs| {
                    docs.iter().all(|(_, d)| {
                        let c = &d["services"][format!("{}-canary", p.service.name).as_str()];
                        c["image"].as_str() == Some(format!("{}:{v}", p.service.image).as_str())
                            && labels_of(c).contains(&format!("io.plan.version={v}"))
                    })
                },
            ),
            (
                &["service", "name"],
                // `true`, `null` and the like are refused: docker-compose reads YAML 1.1.
                &["backend", "truth", "nul", "a_b-c"],
                |_, v, docs| {
                    docs.iter().all(|(_, d)| {
                        let s = &d["services"];
                        s[v]["deploy"]["replicas"].as_u64() == Some(4)
                            && s[format!("{v}-canary").as_str()]["extends"]["service"].as_str()
                                == Some(v)
                            && s["nginx"]["depends_on"][0].as_str() == Some(v)
                    })
                },
            ),
            (
                &["service", "image"],
                &[
                    "lawsker/backend",
                    "a1",
                    "registry.example.com:5000/team/app",
                    "a.b_c-d/e",
                ],
                |p, v, docs| {
                    docs.iter().all(|(_, d)| {
                        d["services"][p.service.name.as_str()]["image"]
                            .as_str()
                            .is_some_and(|i| {
                                i.strip_suffix(&format!(":{}", p.release.from)) == Some(v)
                                    || i.strip_suffix(&format!(":{}", p.release.to)) == Some(v)
                            })
                    })
                },
            ),
        ];
        for (path, valid, check) in fields {
            for v in valid
                .iter()
                .map(|s| s.to_string())
                .chain(crate::render::hostile::corpus())
            {
                let Some(plan) = plan_with(path, &v) else {
                    assert!(
                        !valid.contains(&v.as_str()),
                        "{path:?} = {v:?} should be valid"
                    );
                    continue;
                };
                let docs = parsed(&plan);
                assert!(
                    check(&plan, &v, &docs),
                    "{path:?} = {v:?} not read back:\n{}",
                    render(&plan)[0].contents
                );
            }
        }
    }
}
