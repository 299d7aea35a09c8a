package network

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// TestNetlinkDumpRetriesInterrupted: a dump the kernel interrupts is run
// again, and its complete results are returned.
func TestNetlinkDumpRetriesInterrupted(t *testing.T) {
	tries := 0
	got, err := netlinkDump(func() ([]string, error) {
		tries++
		if tries < 3 {
			return []string{"partial"}, netlink.ErrDumpInterrupted
		}
		return []string{"a", "b"}, nil
	})
	if err != nil || len(got) != 2 || tries != 3 {
		t.Fatalf("got %v, %v after %d tries; want [a b] after 3", got, err, tries)
	}
	tries = 0
	_, err = netlinkDump(func() (int, error) { tries++; return 0, netlink.ErrDumpInterrupted })
	if !errors.Is(err, netlink.ErrDumpInterrupted) || tries != dumpTries {
		t.Fatalf("always interrupted: %v after %d tries; want the error after %d", err, tries, dumpTries)
	}
}

// TestListLinksWhileOthersChange: listing the host's interfaces while
// another process adds and removes interfaces (as other daemons do on a
// busy host) succeeds and finds every interface that stays.
func TestListLinksWhileOthersChange(t *testing.T) {
	prefix := "skfd" + randomHex(4) + "-"
	for _, name := range []string{prefix + "keep1", prefix + "keep2"} {
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { netlink.LinkDel(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}) })
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		churn := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: prefix + "churn"}}
		defer netlink.LinkDel(churn)
		for range 5000 {
			select {
			case <-stop:
				return
			default:
			}
			netlink.LinkAdd(churn)
			netlink.LinkDel(churn)
			time.Sleep(time.Millisecond)
		}
	})
	defer wg.Wait()
	defer close(stop)
	for range 300 {
		names, err := linkNamesWithPrefix(prefix + "keep")
		if err != nil {
			t.Fatal(err)
		}
		if len(names) != 2 {
			t.Fatalf("found %v; want the two interfaces that stay", names)
		}
	}
}
