package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"skiff.dev/skiff/api"
)

func TestEventRepeatsAreCountedNotDropped(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ev := func(sec int, name, reason, msg string) api.Event {
		return api.Event{Time: at.Add(time.Duration(sec) * time.Second), Kind: "App", Name: name, Type: api.EventNormal, Reason: reason, Message: msg}
	}
	adds := []api.Event{
		ev(0, "shop", "ScaledUp", "1 → 2"),
		ev(1, "shop", "ScaledDown", "2 → 1"),
		ev(2, "shop", "ScaledUp", "1 → 2"),     // a repeat of the first, past another event
		ev(3, "blog", "ScaledUp", "1 → 2"),     // another object: not a repeat
		ev(4, "shop", "ScaledUp", "1 → 2"),     // third time
		ev(5, "shop", "ScaledUp", "1 → 3"),     // another message
		ev(900, "shop", "ScaledDown", "2 → 1"), // past the repeat window
	}
	for _, e := range adds {
		if err := s.AddEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := s.ListEvents(ctx, EventFilter{Kind: "App", Name: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		first := "-"
		if e.FirstTime != nil {
			first = fmt.Sprint(e.FirstTime.Sub(at).Seconds())
		}
		got = append(got, fmt.Sprintf("%s %s x%d at %v first %s", e.Reason, e.Message, e.Count, e.Time.Sub(at).Seconds(), first))
	}
	want := []string{
		"ScaledDown 2 → 1 x0 at 1 first -",
		"ScaledUp 1 → 2 x3 at 4 first 0",
		"ScaledUp 1 → 3 x0 at 5 first -",
		"ScaledDown 2 → 1 x0 at 900 first -",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events:\n%q\nwant\n%q", got, want)
	}
	if evs, _ := s.ListEvents(ctx, EventFilter{Kind: "App", Name: "blog"}); len(evs) != 1 || evs[0].Count != 0 {
		t.Fatalf("blog's events: %+v", evs)
	}
}
