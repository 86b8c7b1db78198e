package stress

import (
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/aucloud/certagent/internal/e2e"
)

var (
	enabled = flag.Bool("stress", false, "run the stress campaign (make stress); without it the tests are skipped")
	runs    = flag.Int("stress.runs", 200, "kill -9 runs of the crash campaign")
	seed    = flag.Uint64("stress.seed", 0, "seed of the campaign's random choices (0: from the clock)")
	out     = flag.String("stress.out", "", "also write the table to this file")
)

// table collects the rows every test adds.
var table Table

// TestMain prints the table after the tests and removes the certagent binary they built.
func TestMain(m *testing.M) {
	flag.Parse()
	start := time.Now()
	code := m.Run()
	e2e.RemoveBinary()
	if *enabled {
		fmt.Printf("\ncertagent stress table (%s, wall time %s)\n\n", time.Now().UTC().Format(time.RFC3339), time.Since(start).Round(time.Second))
		table.Print(os.Stdout)
		if *out != "" {
			f, err := os.Create(*out)
			if err == nil {
				table.Print(f)
				f.Close()
			}
		}
		if table.Failed() && code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// needStress skips t unless the campaign was asked for.
func needStress(t *testing.T) {
	t.Helper()
	if !*enabled {
		t.Skip("stress test: run with `make stress` (go test ./internal/stress -stress)")
	}
}
