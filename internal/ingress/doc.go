// Package ingress is skiff's HTTP ingress: the reverse proxy inside the
// daemon that routes client requests to the ready replicas of apps, holds
// requests for apps scaled to zero while a replica starts, and measures
// the request load the autoscaler acts on.
//
// Contract:
//
//   - Routing. A Table of Routes maps host names (exact, case-insensitive,
//     port ignored) and an optional path prefix (longest wins, on a
//     segment boundary) to an app. A path with empty, "." or ".."
//     segments is cleaned first, as net/http's ServeMux does, and the
//     replica gets the path it was routed by ("/api/../x" is "/x", not
//     routed by the "/api" prefix). Update validates a table, compiles it
//     into an immutable snapshot and swaps it in atomically; requests in
//     flight finish on the snapshot and replicas they started with. An
//     unknown host is answered 404 "no app serves host X".
//   - Balancing. A route's traffic is split across revisions by
//     Backend.Percent; within a revision, a request goes to the less busy
//     (fewer requests in flight) of two randomly drawn endpoints. Routing
//     takes no lock: an atomic snapshot pointer, a map lookup, atomic
//     counters.
//   - Proxying. Hop-by-hop headers are stripped, X-Forwarded-For is
//     appended to, X-Forwarded-Host and X-Forwarded-Proto are set, the
//     client's Host is kept, a clean path is passed unchanged. Responses of
//     unknown length and Server-Sent Events are flushed as they arrive;
//     trailers and 1xx interim responses (103 Early Hints) pass through;
//     WebSocket (any HTTP/1.1 Upgrade) is tunnelled. Clients speak
//     HTTP/1.1 or cleartext HTTP/2 (prior knowledge, as
//     `curl --http2-prior-knowledge`); replicas are spoken to in HTTP/1.1
//     over kept-alive connections, pooled per replica.
//   - Timeouts. Route.Timeout bounds a request from the moment it is sent
//     to a replica to the end of its response, the client's request body
//     and writes to the client included (WebSocket sessions and event
//     streams too: give such apps a long timeout). A request body that
//     stalls for Config.BodyReadTimeout, or is not all received within
//     Route.Timeout, ends the request with 408 and closes the connection;
//     the request no longer counts as in flight.
//   - Failures are answered by the ingress with a short text/plain body
//     naming the app: 502 when a replica fails ("app X: replica Y failed:
//     connection refused"), 504 when it does not answer within the
//     route's Timeout, 503 when no replica became ready in time or too
//     many requests are held; 408 when the client's body is too slow (see
//     Timeouts). A bodyless idempotent request whose kept-alive connection
//     turns out closed by the replica is retried once on a new connection.
//   - Refusals. A request net/http's server refuses (invalid header names
//     such as "Content-Length : 5", control bytes, a missing or repeated
//     Host...) gets its 400 and never reaches a replica. After a request
//     with a Transfer-Encoding the client's connection is closed (RFC 9112
//     §6.1). A replica's answer is framed by its request (no body after
//     HEAD, 1xx, 204, 304); a replica connection with bytes left after an
//     answer, or sent while idle, is closed and never reused, so they
//     cannot become another request's answer.
//   - Draining. Once Update returns, endpoints absent from the new table
//     get no new request; WaitIdle returns when their last request in
//     flight has finished. Remove, WaitIdle, then stop the replica: no
//     request fails because of a scale-down or a rollout. A client that
//     leaves cancels its request to the replica. After HandOver (its
//     listeners now served by another process), Shutdown passes the
//     requests it holds for a replica on to that process instead of
//     answering them 503.
//   - Activation. A request whose chosen revision has no endpoint is held
//     (per app at most Route.MaxQueue, each at most Route.QueueTimeout)
//     and the Activator is asked for a replica, once per wave of held
//     requests (see Activator for the dedup contract). An Update that
//     gives the revision an endpoint releases the held requests at once:
//     they sleep on a channel the Update closes, nothing polls.
//   - Metrics. RevisionStats reports, per revision, the requests in
//     flight (held ones included), the held ones, and a monotonic request
//     count, read straight from the counters the request path keeps.
//
// How requests are served (see README.md for the measurements): plain
// HTTP/1.1 requests (no body, no upgrade) are read by the ingress's own
// connection loop (front.go) and proxied over its own per-replica
// connection pool in the request's goroutine (fastpath.go, upstream.go).
// The first request on a connection that is not plain — a body, an
// upgrade, HTTP/1.0 or HTTP/2, anything malformed — hands the connection,
// with the bytes read so far, to a net/http server, whose requests with
// bodies and upgrades go through httputil.ReverseProxy. The same
// behaviour tests run against the three ways. On the TLS listener the
// front runs the handshake and serves HTTP/1.1 the same way; connections
// that negotiate HTTP/2 (or another ALPN protocol) go to net/http's TLS
// server.
//
// Listening on port 80: set the ingress address to ":80" (or a host's
// address and 80); binding a port below 1024 needs root or
// CAP_NET_BIND_SERVICE. See README.md.
package ingress
