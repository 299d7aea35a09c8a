package container

import "os"

// Pause points of SKIFF_TEST_PAUSE, for the crash tests only.
const (
	// pauseCreated: the runtime has created the container (network
	// attached, conmon running), its process not yet started.
	pauseCreated = "created"
	// pauseStarted: the process runs, its start not yet recorded.
	pauseStarted = "started"
)

// testPause names the point where the daemon stops for a test to kill it
// (SKIFF_TEST_PAUSE, read once at start). It exists for the end-to-end
// crash tests only; unset, as in every real use, it does nothing.
var testPause = os.Getenv("SKIFF_TEST_PAUSE")

// pauseForTest blocks the calling operation at point, when the test hook
// names it, until the manager closes (the test kills the daemon first).
func (m *Manager) pauseForTest(point, id string) {
	if testPause == "" || testPause != point {
		return
	}
	m.log.Warn("paused for a test (SKIFF_TEST_PAUSE)", "point", point, "id", id[:12])
	<-m.bg.Done()
}
