#!/bin/sh
# kube-bins.sh — prints the directory holding kube-apiserver,
# kube-controller-manager and kubelet for make test-kube, building those
# missing from the k8s.io/kubernetes module pinned in test/tools/kube.
# The binaries are cached outside the repository, in
# ${SKIFF_KUBE_CACHE:-$HOME/.cache/skiff-test/kube}/VERSION; the build
# output goes to stderr. A cold build takes about ten minutes (the kubelet
# a few more) and 3 GB of Go build cache.
set -eu
cd "$(dirname "$0")/../test/tools/kube"
version=$(awk '$1 == "k8s.io/kubernetes" { print $2; exit }' go.mod)
[ -n "$version" ] || version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" { print $3 }' go.mod)
[ -n "$version" ] || { echo "kube-bins.sh: no k8s.io/kubernetes version in test/tools/kube/go.mod" >&2; exit 1; }
dir="${SKIFF_KUBE_CACHE:-$HOME/.cache/skiff-test/kube}/$version"
missing=""
for cmd in kube-apiserver kube-controller-manager kubelet; do
	[ -x "$dir/$cmd" ] || missing="$missing $cmd"
done
if [ -z "$missing" ]; then
	echo "$dir"
	exit 0
fi
minor=$(echo "$version" | cut -d. -f2)
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "kube-bins.sh: building$missing $version (about ten minutes the first time)" >&2
for cmd in $missing; do
	CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$tmp/$cmd" "k8s.io/kubernetes/cmd/$cmd" >&2
done
# They land together or not at all, so a stopped build is redone next time.
for cmd in $missing; do
	mv "$tmp/$cmd" "$dir/$cmd"
done
echo "$dir"
