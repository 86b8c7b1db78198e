//go:build !windows

package daemon

import (
	"context"
	"net"
	"os"

	"github.com/kardianos/service"
)

// runService runs p with kardianos/service's Run: Start, then RunWait, then Stop. RunWait is
// ours rather than kardianos's wait for SIGTERM or SIGINT: ctx already ends with those
// (cmd/certagent's signal.NotifyContext), and a program that ends by itself must end the
// service too, which kardianos's wait would not notice.
//
// systemd hears READY=1 when the program is ready, and STOPPING=1 as soon as it stops the
// service (SIGTERM ends ctx), before the program is told to stop; nothing when the program
// ends by itself. kardianos/service says nothing to systemd: this is ours (sdNotify).
func runService(ctx context.Context, p Program, failed func(error) bool) error {
	g := newProgram(ctx, p, failed, func() { sdNotify("READY=1") })
	s, err := newRunner(g, service.KeyValue{"RunWait": func() {
		select {
		case <-ctx.Done():
		case <-g.done:
		}
		if ctx.Err() != nil {
			sdNotify("STOPPING=1")
		}
	}})
	if err != nil {
		return err
	}
	return g.result(s.Run())
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
