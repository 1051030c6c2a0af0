//! `plan render`'s compose overrides, proven by docker-compose: every override of every
//! example plan is merged onto the plan's base file (`plans/docker-compose.<plan>.base.yml`,
//! else `plans/docker-compose.base.yml`) with `docker-compose config`, in the documented
//! layout (the base copied to `<out>/docker-compose.yml` beside `<out>/<plan>/`), and the
//! merged configuration is parsed and checked field by field.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use yaml_serde::Value;

/// The base compose file for a plan.
fn base_for(plan_name: &str) -> PathBuf {
    let own = root().join(format!("plans/docker-compose.{plan_name}.base.yml"));
    if own.is_file() {
        own
    } else {
        root().join("plans/docker-compose.base.yml")
    }
}

/// `docker-compose -f <out>/docker-compose.yml -f <override> config`, parsed.
fn merged(compose: &Path, out: &Path, override_file: &Path) -> Value {
    let o = Command::new(compose)
        .current_dir(out)
        .args(["-f", "docker-compose.yml", "-f"])
        .arg(override_file)
        .arg("config")
        .output()
        .expect("docker-compose runs");
    assert!(
        o.status.success(),
        "docker-compose config refused {}:\n{}",
        override_file.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    yaml_serde::from_slice(&o.stdout).expect("docker-compose prints YAML")
}

/// Renders `plan_file` with its base laid out as documented; returns (out, plan folder).
fn rendered_with_base(plan_file: &str) -> (PathBuf, PathBuf) {
    let dir = render(plan_file);
    let out = dir.parent().expect("out folder").to_path_buf();
    let name = plan_name(plan_file);
    std::fs::copy(base_for(&name), out.join("docker-compose.yml")).expect("copy base");
    // The base's own bind mounts (the user's files in the layout).
    std::fs::write(
        out.join("prometheus.yml"),
        "rule_files: [/etc/prometheus/rules/*.yml]\n",
    )
    .unwrap();
    std::fs::create_dir_all(out.join("secrets")).unwrap();
    (out, dir)
}

fn plan_doc(plan_file: &str) -> Value {
    yaml_serde::from_str(&std::fs::read_to_string(root().join(plan_file)).unwrap()).unwrap()
}

fn percent_hundredths(v: &Value) -> u64 {
    let s = match v {
        Value::String(s) => s.trim_end_matches('%').trim().to_string(),
        other => yaml_serde::to_string(other).unwrap().trim().to_string(),
    };
    let p: f64 = s.parse().expect("share");
    (p * 100.0).round() as u64
}

fn labels(svc: &Value) -> &Value {
    &svc["labels"]
}

/// The bind mount of `svc` at `target`: its absolute source.
fn mount_source(svc: &Value, target: &str) -> Option<String> {
    svc["volumes"].as_sequence()?.iter().find_map(|v| match v {
        Value::Mapping(_) if v["target"].as_str() == Some(target) => {
            v["source"].as_str().map(String::from)
        }
        Value::String(s) => {
            let mut parts = s.split(':');
            let (src, tgt) = (parts.next()?, parts.next()?);
            (tgt == target).then(|| src.to_string())
        }
        _ => None,
    })
}

fn depends_on(svc: &Value) -> Vec<String> {
    match &svc["depends_on"] {
        Value::Mapping(m) => m
            .keys()
            .filter_map(|k| k.as_str().map(String::from))
            .collect(),
        Value::Sequence(s) => s
            .iter()
            .filter_map(|k| k.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

#[test]
fn every_override_merges_onto_the_base_with_the_expected_fields() {
    let Some(compose) = tool("docker-compose") else {
        return;
    };
    for plan_file in all_plans() {
        let doc = plan_doc(&plan_file);
        let name = doc["name"].as_str().unwrap().to_string();
        let svc = doc["service"]["name"].as_str().unwrap().to_string();
        let canary = format!("{svc}-canary");
        let image = doc["service"]["image"].as_str().unwrap();
        let replicas = doc["service"]["replicas"].as_u64().unwrap_or(1);
        let (from, to) = (
            doc["release"]["from"].as_str().unwrap(),
            doc["release"]["to"].as_str().unwrap(),
        );
        let (out, dir) = rendered_with_base(&plan_file);
        let base: Value =
            yaml_serde::from_str(&std::fs::read_to_string(base_for(&name)).unwrap()).unwrap();
        assert!(
            base["services"][svc.as_str()].is_mapping(),
            "{}: the base file has no service `{svc}`; add plans/docker-compose.{name}.base.yml",
            plan_file
        );

        let mut steps: Vec<(String, Option<u64>)> = doc["phases"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_string(),
                    Some(percent_hundredths(&p["traffic"])),
                )
            })
            .collect();
        steps.push(("rollback".into(), None));
        steps.push(("promotion".into(), None));

        for (step, share) in &steps {
            let file = dir.join(format!("compose/{step}.override.yml"));
            assert!(file.is_file(), "{} missing", file.display());
            let m = merged(&compose, &out, &file);
            let s = &m["services"];
            let (stable_tag, canary_n) = match (step.as_str(), share) {
                (_, Some(h)) => (from, (replicas * h).div_ceil(10_000).max(1)),
                ("promotion", None) => (to, 0),
                _ => (from, 0),
            };
            let ctx = format!("{plan_file} {step}");
            assert_eq!(
                s[svc.as_str()]["image"].as_str(),
                Some(format!("{image}:{stable_tag}").as_str()),
                "{ctx}"
            );
            assert_eq!(
                s[canary.as_str()]["image"].as_str(),
                Some(format!("{image}:{to}").as_str()),
                "{ctx}"
            );
            assert_eq!(
                s[svc.as_str()]["deploy"]["replicas"].as_u64(),
                Some(replicas),
                "{ctx}"
            );
            assert_eq!(
                s[canary.as_str()]["deploy"]["replicas"].as_u64(),
                Some(canary_n),
                "{ctx}"
            );
            for (service, track, version) in [(&svc, "stable", stable_tag), (&canary, "canary", to)]
            {
                let l = labels(&s[service.as_str()]);
                assert_eq!(l["io.plan.plan"].as_str(), Some(name.as_str()), "{ctx}");
                assert_eq!(l["io.plan.phase"].as_str(), Some(step.as_str()), "{ctx}");
                assert_eq!(l["io.plan.track"].as_str(), Some(track), "{ctx}");
                assert_eq!(l["io.plan.version"].as_str(), Some(version), "{ctx}");
            }
            // The canary is the stable definition: everything but what the override sets.
            for key in [
                "environment",
                "expose",
                "restart",
                "networks",
                "volumes",
                "command",
            ] {
                assert_eq!(
                    s[canary.as_str()][key],
                    s[svc.as_str()][key],
                    "{ctx}: {key}"
                );
            }
            // Mounts resolve to the rendered files, through the documented layout.
            let nginx_src = mount_source(&s["nginx"], "/etc/nginx/conf.d/default.conf");
            let want = dir.join(format!("nginx/{step}.conf"));
            assert_eq!(
                nginx_src.as_deref().map(Path::new),
                Some(want.as_path()),
                "{ctx}"
            );
            assert!(want.is_file(), "{ctx}: {} not rendered", want.display());
            let rules = mount_source(
                &s["prometheus"],
                &format!("/etc/prometheus/rules/{name}.rules.yml"),
            );
            if share.is_some() {
                let want = dir.join(format!("prometheus/{step}.rules.yml"));
                assert_eq!(
                    rules.as_deref().map(Path::new),
                    Some(want.as_path()),
                    "{ctx}"
                );
                assert!(want.is_file(), "{ctx}: {} not rendered", want.display());
            } else {
                assert_eq!(
                    rules, None,
                    "{ctx}: no canary rules once the canary is stopped"
                );
            }
            let am = mount_source(&s["alertmanager"], "/etc/alertmanager/alertmanager.yml");
            let want = dir.join("alertmanager/alertmanager.yml");
            assert_eq!(am.as_deref().map(Path::new), Some(want.as_path()), "{ctx}");
            assert!(want.is_file(), "{ctx}");
            // NGINX publishes the port the plan's config listens on.
            let listen = doc["routing"]["listen"].as_u64().unwrap();
            let published: Vec<u64> = s["nginx"]["ports"]
                .as_sequence()
                .into_iter()
                .flatten()
                .filter_map(|p| match p {
                    Value::String(p) => p.split('/').next()?.rsplit(':').next()?.parse().ok(),
                    other => other["target"].as_u64(),
                })
                .collect();
            assert!(
                published.contains(&listen),
                "{ctx}: the base file's nginx publishes container ports {published:?}, but the plan listens on {listen}"
            );
            // NGINX waits for the canary only while a phase routes to it.
            assert_eq!(
                depends_on(&s["nginx"]).contains(&canary),
                share.is_some(),
                "{ctx}"
            );
        }
    }
}

#[test]
fn values_yaml_1_1_reads_as_other_types_survive_docker_compose() {
    // docker-compose reads YAML 1.1, where `yes`, `on` and `1_0` are a boolean, a boolean
    // and an integer; the overrides must still hand it these exact strings.
    let Some(compose) = tool("docker-compose") else {
        return;
    };
    let text = std::fs::read_to_string(root().join("plans/lawsker.yaml"))
        .unwrap()
        .replacen("name: lawsker", "name: yes", 1)
        .replacen("from: v1.0.0", "from: \"1_0\"", 1)
        .replacen("to: v1.1.0", "to: \"0x10\"", 1)
        .replacen("- name: alpha", "- name: \"on\"", 1);
    let dir = temp_dir("compose-yaml11");
    let file = dir.join("yes.yaml");
    std::fs::write(&file, text).unwrap();
    let out = dir.join("out");
    plan()
        .args(["render"])
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .expect(0);
    std::fs::copy(base_for("lawsker"), out.join("docker-compose.yml")).unwrap();
    let m = merged(&compose, &out, &out.join("yes/compose/on.override.yml"));
    let s = &m["services"];
    assert_eq!(s["backend"]["image"].as_str(), Some("lawsker/backend:1_0"));
    assert_eq!(
        s["backend-canary"]["image"].as_str(),
        Some("lawsker/backend:0x10")
    );
    let l = &s["backend"]["labels"];
    assert_eq!(l["io.plan.plan"].as_str(), Some("yes"));
    assert_eq!(l["io.plan.phase"].as_str(), Some("on"));
    assert_eq!(l["io.plan.version"].as_str(), Some("1_0"));
    assert_eq!(
        s["backend-canary"]["labels"]["io.plan.version"].as_str(),
        Some("0x10")
    );
}
