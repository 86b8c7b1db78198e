//go:build !windows

package daemon

import (
	"context"
	"net"
	"os"
)

func runService(ctx context.Context, p Program, _ func(error) uint32) error {
	// STOPPING=1 as soon as systemd (SIGTERM) ends ctx, and sent before returning; nothing
	// when the program ends by itself.
	notified := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		sdNotify("STOPPING=1")
		close(notified)
	})
	err := p(ctx, func() { sdNotify("READY=1") })
	if !stop() {
		<-notified
	}
	return err
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
