//! The Kubernetes kit never drifts from the Prometheus files: the
//! `PrometheusRule` is `deploy/prometheus/rules.yml` under a fixed header,
//! the `ServiceMonitor` scrapes like `deploy/prometheus/prometheus.yml`,
//! and the kustomization applies every manifest in one namespace. The
//! shard overlay (`deploy/kubernetes/shard`) patches the base's
//! StatefulSet into shards that the base's Services, PDB and
//! ServiceMonitor still select, with a configuration the daemon loads.
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
    let file = "deploy/kubernetes/base/prometheus-rule.yaml";
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
    let monitor = read("deploy/kubernetes/base/service-monitor.yaml");
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
    let manifests = read(BASE);
    let api_service = manifests.split("\n---\n").find(|doc| doc.contains("component: api")).expect("the API Service");
    assert_eq!(value(api_service, "name"), job, "the Service the ServiceMonitor selects is named like the job");
    for label in ["app.kubernetes.io/name: engagement-monitor", "app.kubernetes.io/component: api"] {
        assert!(api_service.contains(label) && monitor.contains(label), "{label}");
    }
}

/// The `.yaml` files of `dir` but its kustomization, each of which the
/// kustomization must list (as a resource or a patch).
fn assert_listed(dir: &str) -> Vec<String> {
    let kustomization = read(&format!("{dir}/kustomization.yaml"));
    let mut manifests: Vec<String> = std::fs::read_dir(path(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    manifests.sort();
    for m in &manifests {
        let listed = [format!("  - {m}\n"), format!("  - path: {m}\n")];
        assert!(listed.iter().any(|l| kustomization.contains(l)), "{dir}/{m} is not in the kustomization");
    }
    manifests
}

#[test]
fn the_kustomization_applies_every_manifest_in_one_namespace() {
    let kustomization = read("deploy/kubernetes/base/kustomization.yaml");
    let namespace = read("deploy/kubernetes/base/namespace.yaml");
    assert_eq!(value(&kustomization, "namespace"), value(&namespace, "name"));
    let manifests = assert_listed("deploy/kubernetes/base");
    assert_eq!(manifests.len(), 4, "{manifests:?}");
    // `kubectl apply -k deploy/kubernetes/` is the base, in replica mode.
    assert!(read("deploy/kubernetes/kustomization.yaml").contains("resources:\n  - base\n"));
    let subdirs: Vec<String> = std::fs::read_dir(path("deploy/kubernetes"))
        .expect("deploy/kubernetes")
        .filter_map(|e| e.ok().filter(|e| e.path().is_dir())?.file_name().into_string().ok())
        .collect();
    for dir in subdirs {
        assert!(path(&format!("deploy/kubernetes/{dir}/kustomization.yaml")).exists(), "{dir} is no kustomization");
    }
    // No Secret: an applied placeholder would overwrite the operator's own.
    // The one the pods read is the one deploy/README.md has them create.
    let files = manifests.iter().map(|m| format!("deploy/kubernetes/base/{m}"));
    for file in files.chain([SHARD.to_string()]) {
        assert!(!format!("\n{}", read(&file)).contains("\nkind: Secret\n"), "{file} ships a Secret");
    }
    let secret_ref = section(&read(BASE), "secretKeyRef");
    let referenced = value(&secret_ref, "name");
    let readme = read("deploy/README.md");
    assert!(readme.contains(&format!("create secret generic {referenced} ")), "deploy/README.md creates {referenced}");
}

const BASE: &str = "deploy/kubernetes/base/engagement-monitor.yaml";
const SHARD: &str = "deploy/kubernetes/shard/statefulset.yaml";

/// The document of `text` (`---`-separated) of this kind and, when given,
/// carrying `marker`.
fn doc<'t>(text: &'t str, kind: &str, marker: &str) -> &'t str {
    let kind = format!("\nkind: {kind}\n");
    text.split("\n---\n")
        .find(|d| format!("\n{d}").contains(&kind) && d.contains(marker))
        .unwrap_or_else(|| panic!("no{kind}with {marker:?}"))
}

/// The lines nested under the first `key:` (or `key: |`) line of `text`
/// (comments and blank lines left out), keeping their indentation.
fn section(text: &str, key: &str) -> String {
    let head = format!("{key}:");
    let mut lines = text.lines();
    let start = lines
        .by_ref()
        .find(|l| {
            let t = l.trim_start();
            let t = t.strip_suffix(" |").unwrap_or(t); // a block scalar
            t == head || t.strip_prefix("- ") == Some(&head)
        })
        .unwrap_or_else(|| panic!("no {key}: in\n{text}"));
    let indent = start.len() - start.trim_start().len();
    lines
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .take_while(|l| l.len() - l.trim_start().len() > indent)
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The `key: value` lines of a mapping section, unquoted.
fn mapping(section: &str) -> Vec<(String, String)> {
    let indent = section.lines().map(|l| l.len() - l.trim_start().len()).min().unwrap_or_default();
    section
        .lines()
        .filter(|l| l.len() - l.trim_start().len() == indent)
        .filter_map(|l| l.trim().split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

fn subset_of(selector: &[(String, String)], labels: &[(String, String)]) -> bool {
    !selector.is_empty() && selector.iter().all(|l| labels.contains(l))
}

/// An env entry: its literal value, or the field or Secret it comes from.
#[derive(Debug, Clone, PartialEq)]
enum EnvValue {
    Literal(String),
    Field(String),
    Secret,
    Delete,
}

/// The `env:` list of the first container in `text`, in order.
fn env_list(text: &str) -> Vec<(String, EnvValue)> {
    let env = section(&section(text, "containers"), "env");
    let indent = env.lines().map(|l| l.len() - l.trim_start().len()).min().unwrap_or_default();
    let mut items: Vec<String> = Vec::new();
    for line in env.lines() {
        if line.len() - line.trim_start().len() == indent && line.trim_start().starts_with("- ") {
            items.push(String::new());
        }
        items.last_mut().expect("env starts with an item").push_str(&format!("{}\n", line.replacen("- ", "  ", 1)));
    }
    items
        .iter()
        .map(|item| {
            let name = value(item, "name").to_owned();
            let v = if item.contains("$patch: delete") {
                EnvValue::Delete
            } else if item.contains("secretKeyRef:") {
                EnvValue::Secret
            } else if item.contains("fieldRef:") {
                EnvValue::Field(value(item, "fieldPath").to_owned())
            } else {
                EnvValue::Literal(value(item, "value").trim_matches('"').to_owned())
            };
            (name, v)
        })
        .collect()
}

/// The shard pods' environment: the base's, merged by name with the patch's
/// (as a strategic-merge patch does).
fn shard_env() -> Vec<(String, EnvValue)> {
    let mut env = env_list(doc(&read(BASE), "StatefulSet", ""));
    for (name, v) in env_list(&read(SHARD)) {
        let at = env.iter().position(|(n, _)| *n == name);
        match (at, v) {
            (Some(i), EnvValue::Delete) => drop(env.remove(i)),
            (None, EnvValue::Delete) => panic!("the patch deletes {name}, which the base does not set"),
            (Some(i), v) => env[i].1 = v,
            (None, v) => env.push((name, v)),
        }
    }
    env
}

#[test]
fn the_shard_kustomization_lists_every_file_and_overlays_the_base() {
    let manifests = assert_listed("deploy/kubernetes/shard");
    assert_eq!(manifests, ["statefulset.yaml"]);
    let kustomization = read("deploy/kubernetes/shard/kustomization.yaml");
    assert!(kustomization.contains("resources:\n  - ../base\n"), "the overlay reuses the whole base");
    assert!(kustomization.contains("patches:\n  - path: statefulset.yaml\n"));
}

#[test]
fn the_shard_statefulset_is_sharded_by_pod_name_and_spread_over_nodes() {
    let base = read(BASE);
    let base_set = doc(&base, "StatefulSet", "");
    let patch = read(SHARD);
    assert!(patch.contains("\nkind: StatefulSet\n"), "a patch of the StatefulSet");
    // A strategic-merge patch applies to the resource of its kind and name.
    assert_eq!(value(&section(&patch, "metadata"), "name"), value(&section(base_set, "metadata"), "name"));
    assert_eq!(value(&patch, "replicas"), "3");
    assert_eq!(value(base_set, "podManagementPolicy"), "Parallel");
    // serviceName: a headless Service selecting the pods.
    let headless = doc(&base, "Service", "clusterIP: None");
    assert_eq!(value(base_set, "serviceName"), value(headless, "name"));
    let pod_labels = mapping(&section(&section(base_set, "template"), "labels"));
    assert!(subset_of(&mapping(&section(headless, "selector")), &pod_labels));
    assert!(!section(&patch, "template").contains("labels:"), "the pod labels are the base's");

    let env = shard_env();
    let get = |name: &str| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    assert_eq!(get("ENGAGEMENT_MONITOR_CLUSTER_MODE"), Some(EnvValue::Literal("shard".into())));
    assert_eq!(get("ENGAGEMENT_MONITOR_CLUSTER_INSTANCE_ID"), Some(EnvValue::Field("metadata.name".into())));
    assert_eq!(get("ENGAGEMENT_MONITOR_KAFKA_PROPERTY_SESSION_TIMEOUT_MS"), Some(EnvValue::Literal("30000".into())));
    // One group for all shards: a per-pod group would not split anything.
    match get("ENGAGEMENT_MONITOR_KAFKA_GROUP_ID") {
        Some(EnvValue::Literal(group)) => assert!(!group.contains("$("), "per-pod group {group}"),
        other => panic!("group id {other:?}"),
    }

    // Preferred anti-affinity by node, selecting the pods themselves: the
    // base's, so replicas spread as shards do.
    let anti = section(base_set, "podAntiAffinity");
    let preferred = section(&anti, "preferredDuringSchedulingIgnoredDuringExecution");
    assert_eq!(value(&preferred, "topologyKey"), "kubernetes.io/hostname");
    assert!(subset_of(&mapping(&section(&preferred, "matchLabels")), &pod_labels));

    // No volume: state lives in Kafka.
    assert!(base_set.contains("volumeClaimTemplates:") && patch.contains("\n  volumeClaimTemplates: null\n"));
    let base_mounts = section(base_set, "volumeMounts");
    let state_mount = value(&base_mounts[base_mounts.find("- name: state\n").expect("the state mount")..], "mountPath");
    let mounts = section(&patch, "volumeMounts");
    assert!(mounts.contains(&format!("- mountPath: {state_mount}\n")) && mounts.contains("$patch: delete"));
    // Anti-affinity, probes, resources, security context and grace period: the base's.
    for key in [
        "affinity",
        "startupProbe",
        "livenessProbe",
        "readinessProbe",
        "resources",
        "securityContext",
        "terminationGracePeriodSeconds",
    ] {
        assert!(!patch.contains(&format!("{key}:")), "{key} is the base's, the same in both modes");
        assert!(base_set.contains(&format!("{key}:")), "{key}");
    }
}

#[test]
fn the_shard_pods_are_selected_by_the_pdb_services_and_service_monitor() {
    let base = read(BASE);
    let pod_labels = mapping(&section(&section(doc(&base, "StatefulSet", ""), "template"), "labels"));
    let pdb = doc(&base, "PodDisruptionBudget", "");
    assert_eq!(value(pdb, "maxUnavailable"), "1");
    assert!(subset_of(&mapping(&section(pdb, "matchLabels")), &pod_labels), "the PDB selects the shards");
    let services: Vec<&str> = base.split("\n---\n").filter(|d| d.contains("\nkind: Service\n")).collect();
    assert_eq!(services.len(), 2);
    for service in &services {
        assert!(subset_of(&mapping(&section(service, "selector")), &pod_labels), "{}", value(service, "name"));
    }
    let api = doc(&base, "Service", "component: api");
    let monitor = read("deploy/kubernetes/base/service-monitor.yaml");
    let service_labels = mapping(&section(&section(api, "metadata"), "labels"));
    assert!(subset_of(&mapping(&section(&monitor, "matchLabels")), &service_labels));
    assert_eq!(value(&monitor, "port"), value(&section(api, "ports"), "name"));
}

#[test]
fn the_shard_pods_configuration_loads_in_shard_mode() {
    use engagement_monitor::config::{ClusterMode, Env, Overrides, load};
    let base = read(BASE);
    let config_map = doc(&base, "ConfigMap", "");
    let toml: String = section(config_map, "engagement-monitor.toml")
        .lines()
        .map(|l| format!("{}\n", l.get(4..).unwrap_or_default()))
        .collect();
    let file = std::env::temp_dir().join(format!("kits-shard-{}.toml", std::process::id()));
    std::fs::write(&file, &toml).expect("writing the config");
    let pod = "engagement-monitor-2";
    let env: Env = shard_env()
        .into_iter()
        .filter(|(n, _)| n.starts_with("ENGAGEMENT_MONITOR_"))
        .map(|(n, v)| match v {
            EnvValue::Literal(v) => (n, v),
            EnvValue::Field(f) => (n, if f == "metadata.name" { pod.into() } else { panic!("{f}") }),
            EnvValue::Secret => (n, "secret".into()),
            EnvValue::Delete => unreachable!(),
        })
        .collect();
    let loaded = load(Some(&file), &env, &Overrides::default());
    let _ = std::fs::remove_file(&file);
    let c = loaded.unwrap_or_else(|e| panic!("the shard pods would not start: {e}")).config;
    assert_eq!(c.cluster.mode, ClusterMode::Shard);
    assert_eq!(c.cluster.instance_id(), pod);
    assert_eq!(c.kafka.properties.get("session.timeout.ms").map(String::as_str), Some("30000"));
    assert_eq!(c.state.dir, None, "no volume: no local checkpoints");
    // The kubelet kills after the grace period: the daemon must be done by then.
    let grace: u64 = value(doc(&base, "StatefulSet", ""), "terminationGracePeriodSeconds").parse().expect("seconds");
    assert!(c.shutdown_timeout.as_secs() < grace, "{:?} vs {grace} s", c.shutdown_timeout);
}

/// The image's build stage copies every input of the release build:
/// without `build.rs` the crate does not compile (its revision comes from
/// it), and no container engine runs here to find out.
#[test]
fn the_dockerfile_copies_every_input_of_the_build() {
    let dockerfile = read("deploy/Dockerfile");
    let copied: Vec<&str> = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("COPY "))
        .filter(|l| !l.starts_with("--from"))
        .flat_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words[..words.len() - 1].to_vec()
        })
        .collect();
    for input in ["Cargo.toml", "Cargo.lock", "build.rs", "src", "core/Cargo.toml", "core/src", "config"] {
        assert!(path(input).exists(), "{input} is no longer an input of the build: update this list");
        assert!(copied.contains(&input), "deploy/Dockerfile does not COPY {input}: {copied:?}");
    }
}
