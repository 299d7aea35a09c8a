package dockerapi

import (
	"encoding/json"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"

	"skiff.dev/skiff/api"
	"skiff.dev/skiff/api/errdefs"
)

func init() { addRoutes((*Server).eventRoutes) }

func (s *Server) eventRoutes() {
	s.handle("GET", "/events", s.events)
}

// eventsKept is how many recent events an EventHub keeps for the
// since= of later subscribers.
const eventsKept = 512

// subscriberQueue bounds the events queued for one slow subscriber;
// beyond it, events are dropped for that subscriber.
const subscriberQueue = 256

// EventHub turns changes to containers (and what the Docker API's own
// handlers report) into Docker events, keeps the recent ones, and fans
// them out to the GET /events streams. A nil *EventHub ignores
// everything. It is safe for concurrent use.
type EventHub struct {
	mu     sync.Mutex
	recent []events.Message
	subs   map[chan events.Message]struct{}
	// last is each container's last known status, to name transitions.
	last map[string]string
	// health is each running container's last health status.
	health map[string]string
	now    func() time.Time
}

// NewEventHub returns an empty hub.
func NewEventHub() *EventHub {
	return &EventHub{subs: map[chan events.Message]struct{}{}, last: map[string]string{}, health: map[string]string{}, now: time.Now}
}

// ContainerChanged records the container events a change of c implies:
// create, start, die (with its exit code), destroy, and "health_status:
// healthy|unhealthy" when a running container's health changes to that.
// It never blocks.
func (h *EventHub) ContainerChanged(c api.Container, removed bool) {
	if h == nil {
		return
	}
	h.mu.Lock()
	prev, known := h.last[c.ID]
	var actions []events.Action
	switch {
	case removed:
		if prev == api.StatusRunning || prev == api.StatusStopping {
			actions = append(actions, events.ActionDie)
		}
		actions = append(actions, events.ActionDestroy)
		delete(h.last, c.ID)
	case c.State.Status == prev:
	case c.State.Status == api.StatusCreated:
		actions = append(actions, events.ActionCreate)
	case c.State.Status == api.StatusRunning && prev != api.StatusStopping:
		if !known {
			actions = append(actions, events.ActionCreate)
		}
		actions = append(actions, events.ActionStart)
	case (c.State.Status == api.StatusExited || c.State.Status == api.StatusRestarting) && known && prev != api.StatusCreated:
		actions = append(actions, events.ActionDie)
	}
	if !removed {
		h.last[c.ID] = c.State.Status
	}
	if hs := healthStatus(c); hs != h.health[c.ID] {
		if hs == api.HealthHealthy || hs == api.HealthUnhealthy {
			actions = append(actions, events.Action(string(events.ActionHealthStatus)+": "+hs))
		}
		h.health[c.ID] = hs
	}
	if removed || h.health[c.ID] == "" {
		delete(h.health, c.ID)
	}
	h.mu.Unlock()
	for _, a := range actions {
		attrs := map[string]string{}
		if a == events.ActionDie {
			attrs["exitCode"] = strconv.Itoa(c.State.ExitCode)
		}
		h.publish(containerEvent(c, a, attrs))
	}
}

// healthStatus is c's health status while it runs, else "".
func healthStatus(c api.Container) string {
	if c.State.Health == nil || c.State.Status != api.StatusRunning {
		return ""
	}
	return c.State.Health.Status
}

// emit publishes a container event about c from a Docker API handler.
func (s *Server) emit(c api.Container, action events.Action, extra map[string]string) {
	s.svc.Hub.Publish(containerEvent(c, action, extra))
}

// containerEvent is a container event about c with extra attributes.
func containerEvent(c api.Container, action events.Action, extra map[string]string) events.Message {
	attrs := map[string]string{"name": c.Name, "image": c.Config.Image}
	maps.Copy(attrs, c.Config.Labels)
	maps.Copy(attrs, extra)
	return events.Message{Type: events.ContainerEventType, Action: action, Actor: events.Actor{ID: c.ID, Attributes: attrs}}
}

// Publish records m (its time set now) and sends it to the subscribers.
func (h *EventHub) Publish(m events.Message) {
	if h == nil {
		return
	}
	h.publish(m)
}

func (h *EventHub) publish(m events.Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.now()
	m.Scope, m.Time, m.TimeNano = "local", t.Unix(), t.UnixNano()
	if len(h.recent) == eventsKept {
		copy(h.recent, h.recent[1:])
		h.recent = h.recent[:eventsKept-1]
	}
	h.recent = append(h.recent, m)
	for ch := range h.subs {
		select {
		case ch <- m:
		default: // a stalled subscriber loses events, not the daemon
		}
	}
}

// subscribe returns the kept events since since, and a channel of the
// events to come; cancel ends the subscription.
func (h *EventHub) subscribe(since time.Time) (past []events.Message, ch chan events.Message, cancel func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.recent {
		if !since.IsZero() && m.TimeNano >= since.UnixNano() {
			past = append(past, m)
		}
	}
	ch = make(chan events.Message, subscriberQueue)
	h.subs[ch] = struct{}{}
	return past, ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.subs, ch)
	}
}

// events streams Docker events as JSON objects, one per line: the kept
// ones since since=, then new ones until until= or the client leaves.
// Filters: type, event, container, image, label.
func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	if s.svc.Hub == nil {
		return needService(false, "events")
	}
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	if err := f.check("type", "event", "container", "image", "label", "scope"); err != nil {
		return err
	}
	var since, until time.Time
	q := r.URL.Query()
	if v := q.Get("since"); v != "" {
		if since, err = parseUntil(v); err != nil {
			return errdefs.Invalid("since: %v", err)
		}
	}
	if v := q.Get("until"); v != "" {
		if until, err = parseUntil(v); err != nil {
			return errdefs.Invalid("until: %v", err)
		}
	}
	past, ch, cancel := s.svc.Hub.subscribe(since)
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	send := func(m events.Message) error {
		if !until.IsZero() && m.TimeNano > until.UnixNano() || !matchEvent(f, m) {
			return nil
		}
		if err := enc.Encode(m); err != nil {
			return err
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	}
	for _, m := range past {
		if err := send(m); err != nil {
			return nil
		}
	}
	if flusher != nil {
		flusher.Flush()
	}
	var deadline <-chan time.Time
	if !until.IsZero() {
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		deadline = t.C
	}
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-deadline:
			return nil
		case m := <-ch:
			if err := send(m); err != nil {
				return nil
			}
		}
	}
}

// matchEvent reports whether m passes the filters.
func matchEvent(f filters, m events.Message) bool {
	a := m.Actor.Attributes
	return f.matchAny("type", func(v string) bool { return v == string(m.Type) }) &&
		f.matchAny("event", func(v string) bool {
			return v == string(m.Action) || strings.HasPrefix(string(m.Action), v+":")
		}) &&
		f.matchAny("container", func(v string) bool {
			return m.Type == events.ContainerEventType && (strings.HasPrefix(m.Actor.ID, v) || a["name"] == strings.TrimPrefix(v, "/"))
		}) &&
		f.matchAny("image", func(v string) bool { return a["image"] == v || m.Type == events.ImageEventType && m.Actor.ID == v }) &&
		f.matchAny("scope", func(v string) bool { return v == "local" }) &&
		f.matchLabels("label", a)
}
