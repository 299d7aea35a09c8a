package api

import "time"

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
}
