//go:build !windows

package daemon

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// TestRunServiceEndsWithContext: the program's ready reaches systemd as READY=1, and a
// cancelled context ends it with STOPPING=1.
func TestRunServiceEndsWithContext(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	ctx, cancel := context.WithCancel(context.Background())
	readied := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- RunService(ctx, func(ctx context.Context, ready func()) error {
			ready()
			close(readied)
			<-ctx.Done()
			return nil
		}, func(error) uint32 { return 0 })
	}()
	<-readied
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("RunService = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RunService did not end with its context")
	}
}

// notifySocket listens where $NOTIFY_SOCKET points and returns what arrives.
func notifySocket(t *testing.T) <-chan string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	ch := make(chan string, 10)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			ch <- string(buf[:n])
		}
	}()
	return ch
}

func TestSdNotify(t *testing.T) {
	ch := notifySocket(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- RunService(ctx, func(ctx context.Context, ready func()) error {
			ready()
			<-ctx.Done()
			return nil
		}, func(error) uint32 { return 0 })
	}()
	want := func(s string) {
		t.Helper()
		select {
		case got := <-ch:
			if got != s {
				t.Errorf("systemd got %q, want %q", got, s)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("systemd never got %q", s)
		}
	}
	want("READY=1")
	cancel()
	want("STOPPING=1")
	<-done
	t.Setenv("NOTIFY_SOCKET", "")
	if err := sdNotify("READY=1"); err != nil {
		t.Errorf("sdNotify without a socket = %v, want nil (nothing to do)", err)
	}
}
