#!/usr/bin/env bash
# Checks the Helm chart (deploy/helm/engagement-monitor) and the kustomize
# kits (deploy/kubernetes) without a cluster:
#
#   - the chart's copies of the rules and the dashboard, and its appVersion,
#     are those of the repository;
#   - `helm lint --strict` with the default values and each of ci/*-values.yaml;
#   - every manifest `helm template` and the kits render is strictly decoded
#     into its Kubernetes or Prometheus Operator type (tools/kube-check);
#   - the chart with the kits' settings (ci/replica-values.yaml,
#     ci/shard-values.yaml) renders the same objects as the kits, in both modes;
#   - deploy/README.md's overlay mounting a private CA renders over both kits.
#
#   scripts/kube-check.sh
#
# Needs Go (it looks on PATH, then in /usr/local/go/bin). Installs Helm with
# `go install` into $(go env GOPATH)/bin unless that version is there, and
# builds tools/kube-check into ~/.cache/engagement-monitor; both take a few
# minutes once, then the check takes seconds. Offline once the Go modules are downloaded. Exits non-zero
# on the first problem.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

HELM_MODULE=helm.sh/helm/v4
HELM_VERSION=v4.3.2
CHART=deploy/helm/engagement-monitor
# The kits' release: the kits name everything engagement-monitor, in the
# namespace engagement-monitor.
RELEASE=engagement-monitor
NAMESPACE=engagement-monitor

say() { printf -- '--- %s\n' "$*"; }
fail() { printf 'kube-check: %s\n' "$*" >&2; exit 1; }

GO="$(command -v go || true)"
[[ -n "$GO" ]] || GO=/usr/local/go/bin/go
[[ -x "$GO" ]] || fail "Go is needed (not on PATH nor in /usr/local/go/bin)"
GOBIN="$("$GO" env GOPATH)/bin"

HELM="$GOBIN/helm"
if ! "$GO" version -m "$HELM" 2>/dev/null | grep -Eq "^[[:space:]]+mod[[:space:]]+${HELM_MODULE}[[:space:]]+${HELM_VERSION}[[:space:]]"; then
  say "installing helm $HELM_VERSION into $GOBIN"
  GOBIN="$GOBIN" "$GO" install "$HELM_MODULE/cmd/helm@$HELM_VERSION"
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
# Helm reads and writes nothing of the user's (repositories, plugins, cache).
export HELM_CACHE_HOME="$WORK/helm/cache" HELM_CONFIG_HOME="$WORK/helm/config" HELM_DATA_HOME="$WORK/helm/data"

say "tools/kube-check: test and build"
# Built outside the repository and kept, so that a later run only relinks
# it when tools/kube-check changed.
KUBE_CHECK="${XDG_CACHE_HOME:-$HOME/.cache}/engagement-monitor/kube-check"
(cd tools/kube-check && "$GO" test ./... >"$WORK/go-test.out" 2>&1) ||
  { cat "$WORK/go-test.out" >&2; fail "tools/kube-check does not pass its tests"; }
(cd tools/kube-check && "$GO" build -o "$KUBE_CHECK" .) || fail "tools/kube-check does not build"

say "the chart's copies and version"
for pair in "deploy/prometheus/rules.yml:$CHART/files/rules.yml" \
            "deploy/grafana/engagement-monitor.json:$CHART/files/engagement-monitor.json"; do
  source=${pair%%:*} copy=${pair#*:}
  cmp -s "$source" "$copy" || fail "$copy is not $source: cp $source $copy"
done
crate_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
app_version=$(sed -n 's/^appVersion: "\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$CHART/Chart.yaml")
[[ "$app_version" == "$crate_version" ]] ||
  fail "$CHART/Chart.yaml: appVersion $app_version, Cargo.toml: version $crate_version"

# name: the values ("default" or a file of ci/); the renderings go to $WORK.
values_args() { [[ $1 == default ]] || printf -- '-f\n%s\n' "$CHART/ci/$1-values.yaml"; }
value_sets=(default)
for f in "$CHART"/ci/*-values.yaml; do
  name=${f##*/}
  value_sets+=("${name%-values.yaml}")
done

for set in "${value_sets[@]}"; do
  mapfile -t args < <(values_args "$set")
  say "helm lint --strict ($set values)"
  "$HELM" lint --strict "$CHART" "${args[@]}" >"$WORK/lint.out" 2>&1 ||
    { cat "$WORK/lint.out" >&2; fail "helm lint failed with the $set values"; }
  "$HELM" template "$RELEASE" "$CHART" --namespace "$NAMESPACE" "${args[@]}" >"$WORK/chart-$set.yaml" ||
    fail "helm template failed with the $set values"
done

say "kustomize deploy/kubernetes, deploy/kubernetes/shard"
"$KUBE_CHECK" kustomize deploy/kubernetes >"$WORK/kit-replica.yaml"
"$KUBE_CHECK" kustomize deploy/kubernetes/shard >"$WORK/kit-shard.yaml"
# kubectl's own kustomize, where there is one, must agree with the pinned one.
if command -v kubectl >/dev/null 2>&1; then
  for mode in replica shard; do
    dir=deploy/kubernetes; [[ $mode == shard ]] && dir=deploy/kubernetes/shard
    kubectl kustomize "$dir" >"$WORK/kubectl-$mode.yaml" || fail "kubectl kustomize $dir failed"
    "$KUBE_CHECK" compare "$WORK/kubectl-$mode.yaml" "$WORK/kit-$mode.yaml" >/dev/null ||
      fail "kubectl kustomize $dir renders other objects than kustomize/api of tools/kube-check"
  done
fi

say "deploy/README.md's overlay mounting a private CA, over both kits"
# The yaml block of the README's "A private CA for Kafka" item, as an
# overlay of each kit: it must render, mount the Secret and validate.
readme_patch=$(awk '/\*\*A private CA for Kafka\*\*/ { item = 1 }
  item && /```yaml/ { inside = 1; next }
  inside && /```/ { exit }
  inside { sub(/^  /, ""); print }' deploy/README.md)
[[ $readme_patch == *"patches:"* ]] || fail "deploy/README.md: no yaml block under \"A private CA for Kafka\""
for mode in replica shard; do
  dir=deploy/kubernetes; [[ $mode == shard ]] && dir=deploy/kubernetes/shard
  mkdir -p "$WORK/ca-$mode"
  # kustomize takes a base by a relative path only.
  base=$(realpath --relative-to="$WORK/ca-$mode" "$REPO/$dir")
  { echo "resources: [\"$base\"]"; echo "$readme_patch"; } >"$WORK/ca-$mode/kustomization.yaml"
  "$KUBE_CHECK" kustomize "$WORK/ca-$mode" >"$WORK/kit-ca-$mode.yaml" ||
    fail "deploy/README.md's CA overlay does not render over $dir"
  for want in "mountPath: /etc/kafka-ca" "secretName: kafka-ca"; do
    grep -Eq "^[ -]*$want\$" "$WORK/kit-ca-$mode.yaml" || fail "deploy/README.md's CA overlay over $dir: no \"$want\""
  done
done

say "strict validation of every rendering"
(cd "$WORK" && "$KUBE_CHECK" validate chart-*.yaml kit-*.yaml)

# What only the kits have, on purpose: the Namespace, since a chart does
# not own the namespace it is installed in (helm install --namespace ...
# --create-namespace). Neither ships the SASL Secret: both reference one
# created beforehand, which an applied placeholder would overwrite.
only_kit=(
  --only-right "Namespace/-/$NAMESPACE"
)
for mode in replica shard; do
  say "the chart (ci/$mode-values.yaml) renders the $mode kit's objects"
  (cd "$WORK" && "$KUBE_CHECK" compare "${only_kit[@]}" "chart-$mode.yaml" "kit-$mode.yaml")
done

say "kube-check: all passed"
