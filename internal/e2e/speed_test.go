package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// benchRow adds a row to the speed table `make bench` prints at its end: the file named by
// CERTAGENT_BENCH_ROWS gets one tab-separated line per row (nothing without it).
func benchRow(b *testing.B, name, measured, target string, pass bool) {
	b.Helper()
	res := "PASS"
	if !pass {
		res = "FAIL"
	}
	benchRowResult(b, name, measured, target, res)
}

// benchRowResult is benchRow with the result spelled out, for a row that can also have no
// verdict.
func benchRowResult(b *testing.B, name, measured, target, res string) {
	b.Helper()
	f := os.Getenv("CERTAGENT_BENCH_ROWS")
	if f == "" {
		return
	}
	out, err := os.OpenFile(f, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		b.Logf("writing the bench row: %v", err)
		return
	}
	defer out.Close()
	fmt.Fprintf(out, "%s\t%s\t%s\t%s\n", name, measured, target, res)
}

// BenchmarkBinarySize builds certagent as a release is built (stripped: -s -w, no cgo) and reports
// its size.
func BenchmarkBinarySize(b *testing.B) {
	root, err := moduleRoot()
	if err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(b.TempDir(), "certagent")
	for range b.N {
		cmd := exec.Command("go", "build", "-ldflags", "-s -w", "-o", out, "./cmd/certagent")
		cmd.Dir, cmd.Env = root, append(os.Environ(), "CGO_ENABLED=0")
		if o, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("go build: %v\n%s", err, o)
		}
	}
	fi, err := os.Stat(out)
	if err != nil {
		b.Fatal(err)
	}
	mb := float64(fi.Size()) / 1e6
	b.ReportMetric(mb, "MB")
	benchRow(b, "stripped binary (go build -ldflags '-s -w', "+runtime.GOOS+"/"+runtime.GOARCH+")", fmt.Sprintf("%.1f MB (%.1f MiB)", mb, float64(fi.Size())/(1<<20)), "<= 35 MB", mb <= 35)
}

// BenchmarkColdStart measures a real agent from the exec of `certagent run` to its first
// 200 on /readyz, on a state folder that has run before (the store exists, the token too).
func BenchmarkColdStart(b *testing.B) {
	e := NewEnv(b, nil)
	a := e.StartAgent() // the first start creates the store and the token
	a.Stop(10 * time.Second)
	bin := Binary(b)
	url := "http://" + e.Config.API.Listen + "/readyz"
	hc := &http.Client{Timeout: time.Second}
	var times []time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		cmd := exec.Command(bin, "run", "-c", e.Config.File)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		for {
			resp, err := hc.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Since(start) > 30*time.Second {
				cmd.Process.Kill()
				cmd.Wait()
				b.Fatal("no 200 on /readyz within 30 s")
			}
			time.Sleep(2 * time.Millisecond)
		}
		times = append(times, time.Since(start))
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}
	b.StopTimer()
	slices.Sort(times)
	p50, worst := times[len(times)/2], times[len(times)-1]
	b.ReportMetric(ms(p50), "p50_ms")
	b.ReportMetric(ms(worst), "max_ms")
	benchRow(b, "cold start: exec to 200 on /readyz", fmt.Sprintf("p50 %.0f ms, max %.0f ms over %d starts", ms(p50), ms(worst), len(times)), "<= 300 ms", p50 <= 300*time.Millisecond)
}

// BenchmarkIdle runs a real agent with nothing to do for 60 s (after 10 s to settle) and
// reports its resident memory, the CPU it used and how often its threads woke (context
// switches of every thread, from /proc). Linux only.
func BenchmarkIdle(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("reads /proc")
	}
	e := NewEnv(b, nil)
	a := e.StartAgent()
	time.Sleep(10 * time.Second)
	pid := a.PID()
	const window = 60 * time.Second
	cpu0, sw0 := procCPU(pid), procSwitches(pid)
	b.ResetTimer()
	time.Sleep(window)
	b.StopTimer()
	cpu1, sw1 := procCPU(pid), procSwitches(pid)
	rss, _, err := RSS(pid)
	if err != nil {
		b.Skip(err)
	}
	wakeups := sw1 - sw0
	cpu := cpu1 - cpu0
	b.ReportMetric(float64(rss)/(1<<20), "rss_MB")
	b.ReportMetric(float64(wakeups)/window.Seconds(), "wakeups/s")
	b.ReportMetric(float64(cpu)/float64(time.Millisecond), "cpu_ms/60s")
	anon, file := procRssParts(pid)
	benchRow(b, "idle RSS after 10 s", fmt.Sprintf("%.1f MB (anonymous %.1f MB, mapped from the binary %.1f MB)", float64(rss)/(1<<20), float64(anon)/(1<<20), float64(file)/(1<<20)), "<= 25 MB", rss <= 25<<20)
	benchRow(b, "idle wakeups over 60 s (context switches, all threads)", fmt.Sprintf("%d (%.2f/s), CPU %.0f ms", wakeups, float64(wakeups)/window.Seconds(), float64(cpu)/float64(time.Millisecond)),
		"none faster than the configured intervals (rescan 60 s, engine 1 m)", float64(wakeups)/window.Seconds() <= 1)
}

// procRssParts returns the anonymous and the file-backed parts of pid's resident memory.
func procRssParts(pid int) (anon, file int64) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "RssAnon:":
			anon = n * 1024
		case "RssFile:":
			file = n * 1024
		}
	}
	return anon, file
}

// procCPU returns the user+system CPU time of process pid.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

// procSwitches sums the voluntary and involuntary context switches of every thread of pid.
func procSwitches(pid int) int64 {
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/status")
	var n int64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasSuffix(strings.Fields(line + " x")[0], "ctxt_switches:") {
				f := strings.Fields(line)
				v, _ := strconv.ParseInt(f[len(f)-1], 10, 64)
				n += v
			}
		}
	}
	return n
}
