package api

import "time"

// EventKindContainer is the Kind of a container's events (its health
// turning healthy or unhealthy).
const EventKindContainer = "Container"

// Event types.
const (
	EventNormal  = "Normal"
	EventWarning = "Warning"
)

// Event records something that happened to an object, for people
// (skiff describe, skiff events) and programs.
type Event struct {
	Time time.Time `json:"time"`
	// Kind and Name identify the object: "App"/"shop", "Container"/"web".
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Type is Normal or Warning.
	Type string `json:"type"`
	// Reason is a CamelCase word (RevisionCreated, ScaledUp, ...).
	Reason  string `json:"reason"`
	Message string `json:"message"`
	// Count is how many times the same event (type, reason and message)
	// happened to the object in a row of repeats, when more than once;
	// Time is then the last time and FirstTime the first.
	Count     int        `json:"count,omitempty"`
	FirstTime *time.Time `json:"firstTime,omitempty"`
}
