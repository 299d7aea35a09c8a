package app

import (
	"reflect"
	"testing"

	"skiff.dev/skiff/api"
)

func TestResolveTraffic(t *testing.T) {
	tests := []struct {
		name          string
		spec          []api.TrafficTarget
		ready, latest string
		want          []Target
		err           bool
	}{
		{"default follows latest ready", nil, "a-00001", "a-00002", []Target{{"a-00001", 100, ""}}, false},
		{"nothing ready yet", nil, "", "a-00001", []Target{{"a-00001", 100, ""}}, false},
		{"no revision", nil, "", "", nil, false},
		{"split", []api.TrafficTarget{{Revision: "a-00001", Percent: 90}, {Latest: true, Percent: 10}}, "a-00002", "a-00002",
			[]Target{{"a-00001", 90, ""}, {"a-00002", 10, ""}}, false},
		{"latest is the pinned one", []api.TrafficTarget{{Revision: "a-00002", Percent: 50}, {Latest: true, Percent: 50}}, "a-00002", "a-00003",
			[]Target{{"a-00002", 100, ""}}, false},
		{"tagged kept apart", []api.TrafficTarget{{Revision: "a-00001", Percent: 100}, {Latest: true, Percent: 0, Tag: "next"}}, "a-00002", "a-00002",
			[]Target{{"a-00001", 100, ""}, {"a-00002", 0, "next"}}, false},
		{"latest without revisions", []api.TrafficTarget{{Latest: true, Percent: 100}}, "", "", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveTraffic(tc.spec, tc.ready, tc.latest)
			if (err != nil) != tc.err || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
