//go:build tools

// Package kube pins the Kubernetes control plane and node that make
// test-kube runs skiff's kube apply and diff against: scripts/kube-bins.sh
// builds kube-apiserver, kube-controller-manager and kubelet from this
// module (with the version ldflags the binaries need) and caches them
// outside the repository.
package kube

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
