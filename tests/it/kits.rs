//! The Kubernetes kit never drifts from the Prometheus files: the
//! `PrometheusRule` is `deploy/prometheus/rules.yml` under a fixed header,
//! the `ServiceMonitor` scrapes like `deploy/prometheus/prometheus.yml`,
//! and the kustomization applies every manifest in one namespace.
//!
//! `UPDATE_KITS=1 cargo test --test it kits::` regenerates the
//! PrometheusRule after an edit of rules.yml.

use std::path::{Path, PathBuf};

fn path(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn read(p: &str) -> String {
    std::fs::read_to_string(path(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
}

const RULE_HEADER: &str = "\
# GENERATED from deploy/prometheus/rules.yml by tests/it/kits.rs: edit
# rules.yml, then run `UPDATE_KITS=1 cargo test --test it kits::`.
#
# The alerting and recording rules for the Prometheus Operator. The labels
# must match the Prometheus object's ruleSelector (a nil selector selects
# no rules); `release: prometheus` is kube-prometheus-stack's default.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: engagement-monitor
  labels:
    app.kubernetes.io/name: engagement-monitor
    release: prometheus
spec:
";

/// The PrometheusRule that `rules` (rules.yml) makes: its `groups:` and
/// what follows, indented under `spec:`.
fn prometheus_rule(rules: &str) -> String {
    let groups = &rules[rules.find("\ngroups:").expect("rules.yml has groups") + 1..];
    let body: String =
        groups.lines().map(|l| if l.is_empty() { "\n".to_string() } else { format!("  {l}\n") }).collect();
    format!("{RULE_HEADER}{body}")
}

#[test]
fn the_prometheus_rule_is_rules_yml() {
    let expected = prometheus_rule(&read("deploy/prometheus/rules.yml"));
    let file = "deploy/kubernetes/prometheus-rule.yaml";
    if std::env::var_os("UPDATE_KITS").is_some() {
        std::fs::write(path(file), &expected).expect("writing the PrometheusRule");
    }
    let actual = std::fs::read_to_string(path(file)).unwrap_or_default();
    assert!(
        actual == expected,
        "{file} is not deploy/prometheus/rules.yml: run `UPDATE_KITS=1 cargo test --test it kits::` and commit it"
    );
}

/// The value of the first `key: value` line (indentation ignored).
fn value<'t>(text: &'t str, key: &str) -> &'t str {
    let prefix = format!("{key}:");
    text.lines()
        .map(str::trim_start)
        .map(|l| l.strip_prefix("- ").unwrap_or(l))
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.split(" #").next().unwrap_or_default().trim())
        .unwrap_or_else(|| panic!("no {key}"))
}

#[test]
fn the_service_monitor_scrapes_like_the_scrape_config() {
    let scrape = read("deploy/prometheus/prometheus.yml");
    let monitor = read("deploy/kubernetes/service-monitor.yaml");
    for (config, operator) in [
        ("metrics_path", "path"),
        ("sample_limit", "sampleLimit"),
        ("label_limit", "labelLimit"),
        ("label_value_length_limit", "labelValueLengthLimit"),
        ("scrape_timeout", "scrapeTimeout"),
        ("scrape_interval", "interval"),
    ] {
        assert_eq!(value(&scrape, config), value(&monitor, operator), "{config} vs {operator}");
    }
    // The Operator's job label is the Service's name: the one the rules select.
    let job = value(&scrape, "job_name");
    assert!(read("deploy/prometheus/rules.yml").contains(&format!("up{{job=\"{job}\"}}")));
    let manifests = read("deploy/kubernetes/engagement-monitor.yaml");
    let api_service = manifests.split("\n---\n").find(|doc| doc.contains("component: api")).expect("the API Service");
    assert_eq!(value(api_service, "name"), job, "the Service the ServiceMonitor selects is named like the job");
    for label in ["app.kubernetes.io/name: engagement-monitor", "app.kubernetes.io/component: api"] {
        assert!(api_service.contains(label) && monitor.contains(label), "{label}");
    }
}

#[test]
fn the_kustomization_applies_every_manifest_in_one_namespace() {
    let kustomization = read("deploy/kubernetes/kustomization.yaml");
    let namespace = read("deploy/kubernetes/namespace.yaml");
    assert_eq!(value(&kustomization, "namespace"), value(&namespace, "name"));
    let mut manifests: Vec<String> = std::fs::read_dir(path("deploy/kubernetes"))
        .expect("deploy/kubernetes")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    manifests.sort();
    for m in &manifests {
        assert!(kustomization.contains(&format!("  - {m}\n")), "{m} is not in the kustomization");
    }
    assert_eq!(manifests.len(), 4, "{manifests:?}");
}
