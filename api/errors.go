package api

// Error is the body of every non-2xx response.
type Error struct {
	// Message says what failed and, where possible, how to fix it.
	Message string `json:"message"`
	// Kind is the error category: invalid, not_found, conflict,
	// unavailable, unauthorized, not_implemented or internal.
	Kind string `json:"kind"`
}
