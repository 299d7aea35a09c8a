// Package policy is skiff's admission policy: the checks a container or an
// App must pass before anything of it is created. It is pure (no I/O, no
// clock, no global state) so the daemon and `skiff policy check` run the
// very same checks.
//
// The contract, by file:
//
//   - profile.go: the built-in profiles, modelled on Kubernetes Pod
//     Security Standards: Privileged (anything), Baseline (the default: no
//     privileged containers, no host network, no capabilities added
//     beyond the PSS baseline list, no host paths outside an allow list)
//     and Restricted (Baseline, and a non-root user, every capability
//     dropped but NET_BIND_SERVICE, a read-only root filesystem, cpu and
//     memory limits).
//   - rules.go: custom rules, CEL expressions over the object read from a
//     YAML policy file; ParseRules compiles them all or returns the first
//     error with its line.
//   - checker.go: Checker runs a profile and the rules over an
//     api.ContainerCreateRequest or an api.App. A refusal is an
//     errdefs.ErrInvalid *Refusal whose every Violation names the rule,
//     the field path and the fix.
package policy
