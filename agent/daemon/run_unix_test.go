//go:build !windows

package daemon

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"slices"
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
		}, isErr)
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
		}, isErr)
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

// isErr is RunService's failed for the tests: every error is a failure.
func isErr(err error) bool { return err != nil }

// TestRunServiceProgramEnds: a program that ends by itself ends the service with its own
// error (kardianos's wait for a signal would not notice), and systemd hears no STOPPING=1:
// it did not stop the service. An error that is no failure (a config that cannot be used,
// which cmd/certagent turns into exit status 78) is returned all the same, before READY=1 or
// after.
func TestRunServiceProgramEnds(t *testing.T) {
	boom := errors.New("boom")
	for _, tt := range []struct {
		name   string
		ready  bool
		failed func(error) bool
		notify []string
	}{
		{"failure after ready", true, isErr, []string{"READY=1"}},
		{"failure before ready", false, isErr, nil},
		{"clean end before ready", false, func(error) bool { return false }, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ch := notifySocket(t)
			done := make(chan error, 1)
			go func() {
				done <- RunService(context.Background(), func(ctx context.Context, ready func()) error {
					if tt.ready {
						ready()
						time.Sleep(100 * time.Millisecond)
					}
					return boom
				}, tt.failed)
			}()
			select {
			case err := <-done:
				if err != boom {
					t.Errorf("RunService = %v, want the program's error", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("RunService did not end with its program")
			}
			var got []string
			for len(ch) > 0 {
				got = append(got, <-ch)
			}
			time.Sleep(100 * time.Millisecond)
			for len(ch) > 0 {
				got = append(got, <-ch)
			}
			if !slices.Equal(got, tt.notify) {
				t.Errorf("systemd got %q, want %q", got, tt.notify)
			}
		})
	}
}
