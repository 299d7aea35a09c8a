package app

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// MaxRevisionNumber is the highest revision number: revision names have
// five digits. An App that reaches it must be deleted and created again.
const MaxRevisionNumber = 99999

// RevisionSpecOf returns the runnable part of spec: what a revision is
// made of. The result shares nothing with spec.
func RevisionSpecOf(spec api.AppSpec) api.RevisionSpec {
	return api.RevisionSpec{
		Image:     spec.Image,
		Command:   slices.Clone(spec.Command),
		Args:      slices.Clone(spec.Args),
		Env:       slices.Clone(spec.Env),
		Port:      spec.Port,
		Resources: spec.Resources,
		Probes:    cloneProbes(spec.Probes),
		Volumes:   cloneVolumes(spec.Volumes),
		Security:  securityOf(spec.Security),
		Identity:  api.AppIdentity{Enabled: spec.Identity.Enabled, Audiences: slices.Clone(spec.Identity.Audiences)},
		Networks:  cloneAttachments(spec.Network.Networks),
	}
}

func cloneAttachments(ns []api.AppNetworkAttachment) []api.AppNetworkAttachment {
	if ns == nil {
		return nil
	}
	out := make([]api.AppNetworkAttachment, len(ns))
	for i, n := range ns {
		out[i] = api.AppNetworkAttachment{Name: n.Name, Aliases: slices.Clone(n.Aliases)}
	}
	return out
}

// securityOf returns the runnable part of s: all but the profile.
func securityOf(s api.AppSecurity) api.AppSecurity {
	s.Profile = ""
	if s.RunAsUser != nil {
		u := *s.RunAsUser
		s.RunAsUser = &u
	}
	s.Capabilities = api.Capabilities{Add: slices.Clone(s.Capabilities.Add), Drop: slices.Clone(s.Capabilities.Drop)}
	if s.HostUsers != nil {
		h := *s.HostUsers
		s.HostUsers = &h
	}
	return s
}

func cloneProbes(p api.Probes) api.Probes {
	return api.Probes{
		Startup:   cloneProbe(p.Startup),
		Readiness: cloneProbe(p.Readiness),
		Liveness:  cloneProbe(p.Liveness),
	}
}

func cloneProbe(p *api.Probe) *api.Probe {
	if p == nil {
		return nil
	}
	c := *p
	if p.HTTP != nil {
		h := *p.HTTP
		h.Headers = slices.Clone(h.Headers)
		c.HTTP = &h
	}
	if p.TCP != nil {
		t := *p.TCP
		c.TCP = &t
	}
	if p.Exec != nil {
		c.Exec = &api.ExecAction{Command: slices.Clone(p.Exec.Command)}
	}
	return &c
}

// Hash returns a stable identifier of rs: the hex SHA-256 of its JSON
// form. Equal specs hash equally however they were written (durations are
// normalised, empty lists and absent lists are the same). New fields of
// RevisionSpec must be omitempty or omitzero so that the hashes of
// existing revisions do not change.
func Hash(rs api.RevisionSpec) string {
	b, err := json.Marshal(rs)
	if err != nil {
		// RevisionSpec holds only strings, numbers, bools and durations.
		panic("app: marshal revision spec: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// NeedsNewRevision reports whether going from spec old to spec new changes
// the runnable part, so that a new revision must be created. Both specs
// are compared with defaults applied, so writing a default out does not
// count as a change; traffic, scale, ingress and revisionHistoryLimit do
// not count either.
func NeedsNewRevision(old, new api.AppSpec) bool {
	return Hash(defaultedRevisionSpec(old)) != Hash(defaultedRevisionSpec(new))
}

func defaultedRevisionSpec(spec api.AppSpec) api.RevisionSpec {
	rs := RevisionSpecOf(spec)
	setRevisionDefaults(&rs)
	return rs
}

// RevisionName returns the name of revision n of an App: "shop-00003".
// n must be 1..MaxRevisionNumber.
func RevisionName(app string, n int) string {
	return fmt.Sprintf("%s-%05d", app, n)
}

// ParseRevisionName splits a revision name into its App name and number.
// Errors are errdefs.ErrInvalid.
func ParseRevisionName(name string) (app string, n int, err error) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 || len(name)-i-1 != 5 {
		return "", 0, errdefs.Invalid("revision name %q: want APP-NNNNN such as shop-00003", name)
	}
	n, err = strconv.Atoi(name[i+1:])
	if err != nil || n < 1 || !allDigits(name[i+1:]) {
		return "", 0, errdefs.Invalid("revision name %q: want APP-NNNNN such as shop-00003, numbered from 00001", name)
	}
	return name[:i], n, nil
}

// NewRevision builds revision n of app (which must be defaulted and
// valid) as created at now. Errors are errdefs.ErrInvalid for a number
// out of range.
func NewRevision(app api.App, n int, now time.Time) (api.Revision, error) {
	if n < 1 || n > MaxRevisionNumber {
		return api.Revision{}, errdefs.Invalid("app %s: revision number %d is out of range 1..%d: delete and re-create the app", app.Metadata.Name, n, MaxRevisionNumber)
	}
	rs := RevisionSpecOf(app.Spec)
	return api.Revision{
		Name:       RevisionName(app.Metadata.Name, n),
		App:        app.Metadata.Name,
		Generation: app.Metadata.Generation,
		Hash:       Hash(rs),
		Created:    now.UTC(),
		Spec:       rs,
	}, nil
}
