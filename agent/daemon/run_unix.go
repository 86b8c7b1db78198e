//go:build !windows

package daemon

import (
	"context"
	"net"
	"os"
)

func runService(ctx context.Context, p Program, _ func(error) uint32) error {
	// STOPPING=1 when systemd (SIGTERM) ends ctx; not when the program ends by itself.
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			sdNotify("STOPPING=1")
		case <-done:
		}
	}()
	return p(ctx, func() { sdNotify("READY=1") })
}

// sdNotify sends state to systemd over $NOTIFY_SOCKET (sd_notify(3)), when systemd gave one
// (Type=notify); it does nothing otherwise. A datagram of a few bytes: no library needed. An
// address starting with "@" is in the abstract namespace, which Go's net package takes as it
// is.
func sdNotify(state string) error {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return nil
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(state))
	return err
}
