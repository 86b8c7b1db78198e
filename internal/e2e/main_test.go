package e2e

import (
	"net"
	"net/http"
	"os"
	"strconv"
	"testing"
)

// TestMain removes the certagent binary the tests built. Started with controlServerEnv set,
// the test binary is instead the control server of BenchmarkStatusLoad.
func TestMain(m *testing.M) {
	if n := os.Getenv(controlServerEnv); n != "" {
		serveControl(n)
		return
	}
	code := m.Run()
	RemoveBinary()
	os.Exit(code)
}

// controlServerEnv, set to a body size, makes the test binary a control server: net/http on
// a free loopback port (printed on stdout) that answers every request with that many bytes
// of JSON and nothing else. BenchmarkStatusLoad measures it beside the agent, with the same
// load generator, to show what the machine and the generator cost by themselves.
const controlServerEnv = "CERTAGENT_E2E_CONTROL_SERVER"

func serveControl(size string) {
	n, err := strconv.Atoi(size)
	if err != nil || n < 2 {
		os.Exit(2)
	}
	body := make([]byte, n)
	for i := range body {
		body[i] = ' '
	}
	body[0], body[n-1] = '{', '}'
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.Exit(1)
	}
	os.Stdout.WriteString(ln.Addr().String() + "\n")
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", size)
		w.Write(body)
	}))
}
