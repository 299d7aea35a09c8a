// Package health runs a container's health check as docker does: the
// check's settings (a container's own merged with its image's
// HEALTHCHECK, docker's defaults), a pure decider of the health status
// (starting, healthy, unhealthy) from each result and the time, and
// Monitor, the loop that runs the check at its intervals through a
// small Container interface until told to stop.
//
// The container manager owns one Monitor per running container with a
// check; it keeps the status in the container's record.
package health
