package api

import (
	"fmt"
	"time"
)

// BuildEventKind says what a BuildEvent reports.
type BuildEventKind string

// The kinds of build events. A step's events come in this order: one
// BuildStepStarted, any number of BuildStepOutput, one BuildStepDone.
// Steps of different stages may interleave: stages that do not need each
// other are built at the same time.
const (
	BuildStepStarted BuildEventKind = "step"    // an instruction starts: Stage, Index, Total, Text
	BuildStepOutput  BuildEventKind = "output"  // a line the running step printed: Text
	BuildStepDone    BuildEventKind = "done"    // the step ended: Duration, Cached, Error
	BuildMessage     BuildEventKind = "message" // a line about the whole build: Text
	BuildWarning     BuildEventKind = "warning" // something the Dockerfile should change: Text
)

// BuildEvent is one event of a build's progress. The daemon streams each
// as the "event" member of a JSON line of POST /images/build, beside a
// "stream" member holding Line(), the text earlier clients print.
type BuildEvent struct {
	Kind BuildEventKind `json:"kind"`
	// Step numbers the build's steps from 1 in the order they start;
	// every event of one step carries its number. 0 for messages and
	// warnings.
	Step  int    `json:"step,omitempty"`
	Stage string `json:"stage,omitempty"` // the stage's name, or its index when unnamed
	// Index is the instruction's place in its stage, from 1 (FROM), out
	// of Total.
	Index int    `json:"index,omitempty"`
	Total int    `json:"total,omitempty"`
	Text  string `json:"text,omitempty"` // the instruction, the output line or the message
	// Duration is how long the step took (nanoseconds on the wire).
	Duration time.Duration `json:"duration,omitempty"`
	Cached   bool          `json:"cached,omitempty"` // the step's result came from the layer cache
	Error    string        `json:"error,omitempty"`  // why the step failed; empty if it succeeded
	// Multi says the build has more than one stage, so that lines name
	// the stage.
	Multi bool `json:"multi,omitempty"`
}

// Line returns the event as the one line of text a build printed before
// events existed ("STEP 2/5: COPY hello /hello", "[build] STEP 1/3: FROM
// scratch", an output line, "WARNING: ..."), or "" for an event that had
// no line (a step that ended, unless it ended from the cache).
func (e BuildEvent) Line() string {
	prefix := ""
	if e.Multi && e.Stage != "" {
		prefix = "[" + e.Stage + "] "
	}
	switch e.Kind {
	case BuildStepStarted:
		return fmt.Sprintf("%sSTEP %d/%d: %s", prefix, e.Index, e.Total, e.Text)
	case BuildStepDone:
		if e.Cached {
			return prefix + "CACHED"
		}
		return ""
	case BuildWarning:
		return "WARNING: " + e.Text
	default:
		return e.Text
	}
}
