#!/bin/sh
# kube-bins.sh — prints the directory holding kube-apiserver and
# kube-controller-manager for make test-kube, building them from the
# k8s.io/kubernetes module pinned in test/tools/kube when they are missing.
# The binaries are cached outside the repository, in
# ${SKIFF_KUBE_CACHE:-$HOME/.cache/skiff-test/kube}/VERSION; the build
# output goes to stderr. A cold build takes about ten minutes and 3 GB of
# Go build cache.
set -eu
cd "$(dirname "$0")/../test/tools/kube"
version=$(awk '$1 == "k8s.io/kubernetes" { print $2; exit }' go.mod)
[ -n "$version" ] || version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" { print $3 }' go.mod)
[ -n "$version" ] || { echo "kube-bins.sh: no k8s.io/kubernetes version in test/tools/kube/go.mod" >&2; exit 1; }
dir="${SKIFF_KUBE_CACHE:-$HOME/.cache/skiff-test/kube}/$version"
if [ -x "$dir/kube-apiserver" ] && [ -x "$dir/kube-controller-manager" ]; then
	echo "$dir"
	exit 0
fi
minor=$(echo "$version" | cut -d. -f2)
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "kube-bins.sh: building kube-apiserver and kube-controller-manager $version (about ten minutes the first time)" >&2
for cmd in kube-apiserver kube-controller-manager; do
	CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$tmp/$cmd" "k8s.io/kubernetes/cmd/$cmd" >&2
done
# Both land together or not at all, so a stopped build is redone next time.
mv "$tmp/kube-controller-manager" "$dir/kube-controller-manager"
mv "$tmp/kube-apiserver" "$dir/kube-apiserver"
echo "$dir"
