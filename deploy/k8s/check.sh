#!/bin/sh
# Validates deploy/k8s against the Kubernetes OpenAPI schemas with
# kubernetes-validate (PyPI; schemas ship inside the package, so no cluster and
# no network at validation time), in strict mode: unknown fields fail.
#   deploy/k8s/check.sh            # installs the validator into target/ once
#   K8S_VERSION=1.31 deploy/k8s/check.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv=${K8S_VALIDATE_VENV:-$here/../../target/k8s-validate-venv}
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'kubernetes-validate==1.37.0'
fi
"$venv/bin/kubernetes-validate" --strict --quiet -k "${K8S_VERSION:-1.30}" "$here"/*.yaml
echo "deploy/k8s: all manifests valid for Kubernetes ${K8S_VERSION:-1.30}"
