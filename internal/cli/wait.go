package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

// terminalReasons are the Degraded reasons that waiting longer does not
// cure: apply --wait fails on them at once. A failing probe may still
// pass, so it only fails the wait when the time is up.
var terminalReasons = map[string]bool{
	api.ReasonImageNotFound:    true,
	api.ReasonCrashLoopBackOff: true,
	api.ReasonOOMKilled:        true,
	api.ReasonRevisionNotFound: true,
	api.ReasonSecretNotFound:   true,
}

// rolloutState says whether a has converged on generation gen: done when
// the status describes gen and Ready is True with no rollout under way;
// failed (a non-nil error naming the condition) when it is Degraded for a
// reason that waiting does not cure.
func rolloutState(a api.App, gen int64) (done bool, failed error) {
	if a.Status.ObservedGeneration < gen {
		return false, nil
	}
	cond := func(t api.ConditionType) (api.Condition, bool) {
		for _, c := range a.Status.Conditions {
			if c.Type == t {
				return c, true
			}
		}
		return api.Condition{}, false
	}
	if d, ok := cond(api.ConditionDegraded); ok && d.Status == api.ConditionTrue && terminalReasons[d.Reason] {
		return false, errdefs.Unavailable("app/%s: %s: %s", a.Metadata.Name, d.Reason, d.Message)
	}
	r, ok := cond(api.ConditionReady)
	if !ok || r.Status != api.ConditionTrue {
		return false, nil
	}
	if p, ok := cond(api.ConditionRolloutInProgress); ok && p.Status == api.ConditionTrue {
		return false, nil
	}
	return true, nil
}

// notReady describes a's conditions that are not as a ready App has them,
// for a wait that ran out of time.
func notReady(a api.App, gen int64) string {
	if a.Status.ObservedGeneration < gen {
		return fmt.Sprintf("generation %d not yet acted on (status describes %d)", gen, a.Status.ObservedGeneration)
	}
	var parts []string
	for _, c := range a.Status.Conditions {
		good := api.ConditionFalse
		if c.Type == api.ConditionReady {
			good = api.ConditionTrue
		}
		if c.Status != good {
			s := fmt.Sprintf("%s=%s", c.Type, c.Status)
			if c.Reason != "" {
				s += " (" + c.Reason + ")"
			}
			if c.Message != "" {
				s += ": " + c.Message
			}
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		return "no Ready condition yet"
	}
	return strings.Join(parts, "; ")
}

// appGetter reads an App; the client does.
type appGetter interface {
	App(ctx context.Context, name string) (api.App, error)
}

// waitRollouts waits until every App in gens (name → generation applied)
// is Ready at that generation, printing each as it gets there.
func waitRollouts(ctx context.Context, cl appGetter, w io.Writer, gens map[string]int64, order []string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pending := append([]string(nil), order...)
	last := map[string]api.App{}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		var still []string
		for _, name := range pending {
			a, err := cl.App(ctx, name)
			if err != nil {
				if ctx.Err() != nil {
					still = append(still, name)
					continue
				}
				return err
			}
			last[name] = a
			done, failed := rolloutState(a, gens[name])
			if failed != nil {
				return failed
			}
			if done {
				fmt.Fprintf(w, "app/%s ready: %s\n", name, a.Status.URL)
				continue
			}
			still = append(still, name)
		}
		if len(still) == 0 && ctx.Err() == nil {
			return nil
		}
		pending = still
		select {
		case <-ctx.Done():
			var why []string
			for _, name := range pending {
				why = append(why, fmt.Sprintf("app/%s: %s", name, notReady(last[name], gens[name])))
			}
			return errdefs.Unavailable("not ready after %s:\n%s", timeout, strings.Join(why, "\n"))
		case <-tick.C:
		}
	}
}
