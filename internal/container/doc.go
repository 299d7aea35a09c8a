// Package container manages the lifecycle of skiff's containers: it turns
// API requests (create, start, stop, kill, remove, exec, wait) into
// runtime operations, records every change in the state store before it
// is acknowledged, applies restart policies with capped exponential
// backoff, and on daemon start re-adopts the containers that kept running
// while no daemon was there.
//
// Each container has one lifecycle operation at a time (a per-container
// lock); reads (list, inspect) never wait for one. A container's exit is
// observed by a goroutine blocked in Runtime.Wait, which records the exit
// status at once and hands the follow-up (runtime cleanup, restart,
// auto-removal) to the container's operation queue.
//
// On disk, a container lives in <dir>/<id>/: the OCI bundle (config.json),
// spec.json (the spec made at create time), the overlay upper/ and work/
// directories, the mounted rootfs/ and the log ctr.log.
package container
