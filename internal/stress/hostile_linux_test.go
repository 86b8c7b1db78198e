//go:build linux

package stress

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aucloud/certagent/agent/config"
	"github.com/aucloud/certagent/internal/certtest"
	"github.com/aucloud/certagent/internal/e2e"
)

// hostile is an agent whose drop folder gets every kind of hostile input.
type hostile struct {
	*world
	secret string // a marker that must never appear in any output
}

func newHostile(t *testing.T) *hostile {
	w := newWorld(t)
	if why := w.waitSettled(60 * time.Second); why != "" {
		t.Fatalf("a fresh agent does not settle: %s", why)
	}
	return &hostile{world: w, secret: "CERTAGENT-SECRET-" + strings.ToUpper(rand.Text())}
}

// problems returns the codes of the agent's status problems.
func (h *hostile) problems() []string {
	s, err := h.a.Client.Status(context.Background())
	if err != nil {
		return []string{"status: " + err.Error()}
	}
	var out []string
	for _, p := range s.Problems {
		out = append(out, p.Code)
	}
	return out
}

func (h *hostile) waitProblem(code string, present bool, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		has := false
		for _, p := range h.problems() {
			has = has || p == code
		}
		if has == present {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// filedAs returns where name was filed ("processed/..." or "rejected/..."), "" when not.
func (h *hostile) filedAs(name string) []string {
	var hits []string
	for _, sub := range []string{"processed", "rejected"} {
		ents, _ := os.ReadDir(filepath.Join(h.cfg.DropFolder, sub))
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), ".reason.txt") && archivedAs(e.Name(), name) {
				hits = append(hits, sub+"/"+e.Name())
			}
		}
	}
	return hits
}

func (h *hostile) waitFiled(name string, d time.Duration) []string {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if hits := h.filedAs(name); len(hits) > 0 {
			time.Sleep(100 * time.Millisecond) // a second filing would show by now
			return h.filedAs(name)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func mount(args ...string) error {
	out, err := exec.Command("mount", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mount %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func umount(dir string) { exec.Command("umount", "-l", dir).Run() }

// hostileRow records a row: violations are the messages of what went wrong.
func hostileRow(group, name, hit, target string, viol []string, t *testing.T) {
	for _, v := range viol {
		t.Errorf("%s: %s", name, v)
	}
	table.Add(Row{Group: group, Name: name, Runs: 1, Hit: hit, Violations: len(viol), Target: target})
}

// TestHostileDropFolder puts into a running agent's drop folder what a careless or hostile
// writer could: links to secrets, FIFOs, devices, directories named .cer, files that keep
// growing or stay open, files deleted or replaced at once, odd names; then takes the folder
// away, makes it read-only, fills the disk under rejected/ and under the store.
func TestHostileDropFolder(t *testing.T) {
	needStress(t)
	h := newHostile(t)
	drop := h.cfg.DropFolder
	secretDir := t.TempDir()
	good := func(cn string) []byte { return certtest.New(time.Now(), certtest.CommonName(cn)).PEM() }

	// Links to secrets: a symlink is moved unread; a hard link is a regular file, read like
	// any other (here as root: the agent reads what its account may read), and a key in it
	// is refused without ever being logged or copied into a note.
	secretFile := filepath.Join(secretDir, "secret.key")
	keyPEM := "-----BEGIN PRIVATE KEY-----\n" + h.secret + "\n-----END PRIVATE KEY-----\n"
	if err := os.WriteFile(secretFile, []byte(keyPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chown(secretFile, 65534, 65534) // another user's file
	if err := os.Symlink(secretFile, filepath.Join(drop, "symlink.cer")); err != nil {
		t.Fatal(err)
	}
	h.dropped["symlink.cer"] = true
	if err := os.Link(secretFile, filepath.Join(drop, "hardlink.cer")); err != nil {
		t.Fatal(err)
	}
	h.dropped["hardlink.cer"] = true
	for _, c := range []struct{ name, want string }{{"symlink.cer", "unsupported_file"}, {"hardlink.cer", "contains_private_key"}} {
		hits := h.waitFiled(c.name, 20*time.Second)
		var viol []string
		note := ""
		if len(hits) != 1 || !strings.HasPrefix(hits[0], "rejected/") {
			viol = append(viol, fmt.Sprintf("filed as %v, want once in rejected/", hits))
		} else {
			b, _ := os.ReadFile(filepath.Join(drop, hits[0]+".reason.txt"))
			note = string(b)
			if !strings.Contains(note, c.want) {
				viol = append(viol, "reason note lacks "+c.want)
			}
		}
		if b, err := os.ReadFile(secretFile); err != nil || string(b) != keyPEM {
			viol = append(viol, "the secret file changed or went")
		}
		hostileRow("drop folder", c.name+" pointing at another user's 0600 key", "rejected "+c.want+", secret untouched", "rejected with a note; never followed (symlink), never leaked", viol, t)
	}

	// A FIFO, a device and a directory named .cer.
	if err := syscall.Mkfifo(filepath.Join(drop, "fifo.cer"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.dropped["fifo.cer"] = true
	devErr := syscall.Mknod(filepath.Join(drop, "device.cer"), syscall.S_IFCHR|0o644, 1<<8|3) // /dev/null
	if devErr == nil {
		h.dropped["device.cer"] = true
	}
	if err := os.Mkdir(filepath.Join(drop, "folder.cer"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"fifo.cer", "device.cer"} {
		if name == "device.cer" && devErr != nil {
			table.Add(Row{Group: "drop folder", Name: "character device named device.cer", Hit: "not run: mknod: " + devErr.Error(), Target: "rejected unsupported_file", Fail: true})
			continue
		}
		hits := h.waitFiled(name, 20*time.Second)
		var viol []string
		if len(hits) != 1 || !strings.HasPrefix(hits[0], "rejected/") {
			viol = append(viol, fmt.Sprintf("filed as %v, want once in rejected/", hits))
		}
		hostileRow("drop folder", name+" ("+map[string]string{"fifo.cer": "FIFO", "device.cer": "character device"}[name]+")", "rejected unsupported_file, never opened", "rejected unsupported_file; the agent does not block", viol, t)
	}
	time.Sleep(500 * time.Millisecond)
	var viol []string
	if fi, err := os.Stat(filepath.Join(drop, "folder.cer")); err != nil || !fi.IsDir() {
		viol = append(viol, "the directory was moved or removed")
	}
	hostileRow("drop folder", "directory named folder.cer", "left alone", "left where it is", viol, t)

	// A file that keeps growing while its writer holds it open, and one held open idle: not
	// judged before the writer closes it, then filed once.
	for _, c := range []struct {
		name   string
		growth bool
	}{{"growing.cer", true}, {"held-open.cer", false}} {
		data := good(c.name)
		f, err := os.Create(filepath.Join(drop, c.name))
		if err != nil {
			t.Fatal(err)
		}
		h.dropped[c.name] = false
		var viol []string
		for i := 0; i < 40; i++ {
			if c.growth {
				n := len(data) * i / 40
				f.WriteAt(data[n:len(data)*(i+1)/40], int64(n))
			} else if i == 0 {
				f.Write(data)
			}
			time.Sleep(50 * time.Millisecond)
			if hits := h.filedAs(c.name); len(hits) > 0 {
				viol = append(viol, fmt.Sprintf("filed as %v while its writer still held it open", hits))
				break
			}
		}
		if c.growth {
			f.Write(data[len(data)*40/40:])
		}
		f.Close()
		hits := h.waitFiled(c.name, 20*time.Second)
		if len(hits) != 1 || !strings.HasPrefix(hits[0], "processed/") {
			viol = append(viol, fmt.Sprintf("after the close filed as %v, want once in processed/", hits))
		}
		what := "written over 2 s by a writer holding it open"
		if !c.growth {
			what = "held open 2 s by its writer after writing"
		}
		hostileRow("drop folder", c.name+": "+what, "not judged until closed, then processed once", "processed once, after the close", viol, t)
	}

	// Deleted right after it was written; replaced by rename right after.
	os.WriteFile(filepath.Join(drop, "gone.cer"), good("gone"), 0o644)
	os.Remove(filepath.Join(drop, "gone.cer"))
	os.WriteFile(filepath.Join(drop, "swapped.cer"), []byte("first version, not a certificate"), 0o644)
	os.WriteFile(filepath.Join(drop, ".swap.tmp"), good("swapped"), 0o644)
	os.Rename(filepath.Join(drop, ".swap.tmp"), filepath.Join(drop, "swapped.cer"))
	h.dropped["swapped.cer"] = false
	hits := h.waitFiled("swapped.cer", 20*time.Second)
	viol = nil
	if len(hits) != 1 || !strings.HasPrefix(hits[0], "processed/") {
		viol = append(viol, fmt.Sprintf("swapped.cer filed as %v, want once in processed/ (the version that stayed)", hits))
	}
	if h2 := h.filedAs("gone.cer"); len(h2) != 0 {
		viol = append(viol, fmt.Sprintf("gone.cer filed as %v, though it was deleted", h2))
	}
	hostileRow("drop folder", "file deleted at once; file replaced by rename at once", "nothing for the deleted one; the final version of the replaced one", "no error, no ghost, filed once", viol, t)

	// Odd names: a newline, unicode, 255 bytes.
	long := strings.Repeat("n", 251) + ".cer"
	names := []string{"new\nline.cer", "zertifikat-ü-証明書.cer", long, "junk\nline.cer"}
	for _, n := range names {
		data := good(n)
		if strings.HasPrefix(n, "junk") {
			data = []byte("not a certificate")
		}
		if err := os.WriteFile(filepath.Join(drop, n), data, 0o644); err != nil {
			t.Fatal(err)
		}
		h.dropped[n] = strings.HasPrefix(n, "junk")
	}
	viol = nil
	for _, n := range names {
		if hits := h.waitFiled(n, 20*time.Second); len(hits) != 1 {
			viol = append(viol, fmt.Sprintf("%q filed as %v, want once", n, hits))
		}
	}
	hostileRow("drop folder", "names with a newline, unicode, 255 bytes", fmt.Sprintf("%d names filed", len(names)), "each filed once; 255-byte name shortened to fit with its note", viol, t)

	// The drop folder deleted (renamed away) and back; made read-only; processed/ not
	// writable; the disk under rejected/ full. Bind mounts make "read-only" hold for root.
	viol = nil
	moved := drop + ".away"
	if err := os.Rename(drop, moved); err != nil {
		t.Fatal(err)
	}
	if !h.waitProblem("drop_folder_unavailable", true, 90*time.Second) {
		viol = append(viol, "no drop_folder_unavailable while the folder was gone")
	}
	os.Rename(moved, drop)
	if !h.waitProblem("drop_folder_unavailable", false, 90*time.Second) {
		viol = append(viol, "drop_folder_unavailable did not clear when the folder came back")
	}
	h.drop("after-return.cer", good("after return"), false)
	if hits := h.waitFiled("after-return.cer", 90*time.Second); len(hits) != 1 {
		viol = append(viol, fmt.Sprintf("a file dropped after the folder came back filed as %v", hits))
	}
	hostileRow("drop folder", "drop folder renamed away while running, then back", "drop_folder_unavailable raised and cleared; files taken again", "status says so; recovers by itself", viol, t)

	if err := mount("--bind", drop, drop); err != nil {
		table.Add(Row{Group: "drop folder", Name: "drop folder read-only; processed/ not writable; rejected/ disk full", Hit: "not run: " + err.Error(), Target: "status says so; recovers", Fail: true})
	} else {
		viol = nil
		// A folder that turns read-only under files already in it (a share remounted): the
		// agent is stopped for the file to arrive before the remount, and restarted.
		umount(drop)
		h.a.Kill()
		os.WriteFile(filepath.Join(drop, "ro.cer"), good("ro"), 0o644)
		h.dropped["ro.cer"] = false
		mount("--bind", drop, drop)
		mount("-o", "remount,ro,bind", drop)
		h.a.Restart()
		if !h.waitProblem("archive_unwritable", true, 30*time.Second) {
			viol = append(viol, "no archive_unwritable while the drop folder was read-only")
		}
		umount(drop)
		if !h.waitProblem("archive_unwritable", false, 120*time.Second) {
			viol = append(viol, "archive_unwritable did not clear once writable")
		}
		if hits := h.waitFiled("ro.cer", 60*time.Second); len(hits) != 1 {
			viol = append(viol, fmt.Sprintf("ro.cer filed as %v once writable", hits))
		}
		hostileRow("drop folder", "drop folder made read-only (ro bind mount) while running", "archive_unwritable raised and cleared; the file filed after", "status says so; recovers by itself", viol, t)

		viol = nil
		proc := filepath.Join(drop, "processed")
		mount("--bind", proc, proc)
		mount("-o", "remount,ro,bind", proc)
		h.drop("proc-ro.cer", good("processed ro"), false)
		if !h.waitProblem("archive_unwritable", true, 30*time.Second) {
			viol = append(viol, "no archive_unwritable while processed/ was read-only")
		}
		umount(proc)
		if hits := h.waitFiled("proc-ro.cer", 120*time.Second); len(hits) != 1 {
			viol = append(viol, fmt.Sprintf("proc-ro.cer filed as %v once processed/ was writable", hits))
		}
		if !h.waitProblem("archive_unwritable", false, 60*time.Second) {
			viol = append(viol, "archive_unwritable did not clear")
		}
		hostileRow("drop folder", "processed/ not writable (ro bind mount)", "archive_unwritable; file left in place, filed once writable", "the file stays, nothing lost; recovers", viol, t)

		viol = nil
		if err := h.dropOnTmpfs(t, func() {
			// Written under a name the intake leaves alone, the disk filled, then named .cer
			// (a rename needs no room): the reason note cannot be written.
			tmp := filepath.Join(drop, ".disk-full.partial")
			os.WriteFile(tmp, []byte("not a certificate, rejected"), 0o644)
			fill := filepath.Join(drop, ".filler")
			f, _ := os.Create(fill)
			buf := make([]byte, 16<<10)
			for {
				if _, err := f.Write(buf); err != nil {
					break
				}
			}
			f.Close()
			os.Rename(tmp, filepath.Join(drop, "disk-full.cer"))
			h.dropped["disk-full.cer"] = true
			if !h.waitProblem("archive_unwritable", true, 30*time.Second) {
				viol = append(viol, "no archive_unwritable while the disk was full")
			}
			if _, err := os.Stat(filepath.Join(drop, "disk-full.cer")); err != nil {
				viol = append(viol, "the file left the drop folder though its note could not be written")
			}
			if m, _ := filepath.Glob(filepath.Join(drop, "rejected", "*disk-full*")); len(m) > 0 {
				viol = append(viol, fmt.Sprintf("while the disk was full rejected/ got %v", m))
			}
			os.Remove(fill)
			if hits := h.waitFiled("disk-full.cer", 120*time.Second); len(hits) != 1 {
				viol = append(viol, fmt.Sprintf("disk-full.cer filed as %v once there was room", hits))
			} else if _, err := os.Stat(filepath.Join(drop, hits[0]+".reason.txt")); err != nil {
				viol = append(viol, "filed without its reason note")
			}
			if !h.waitProblem("archive_unwritable", false, 60*time.Second) {
				viol = append(viol, "archive_unwritable did not clear")
			}
		}); err != nil {
			viol = append(viol, err.Error())
		}
		hostileRow("drop folder", "disk full while writing a reason note (drop folder on a full 1 MiB tmpfs)", "archive_unwritable; file kept; note and file once there was room", "nothing lost, no note without reason; recovers", viol, t)
	}

	// The store's disk full: the state folder on a tmpfs that is filled.
	h.storeDiskFull(t)

	// Nothing lost or filed twice across all of it.
	v := h.check(nil)
	viol = nil
	for _, inv := range []string{invFiles, invAudit, invDup, invLost} {
		viol = append(viol, v[inv]...)
	}
	hostileRow("drop folder", "after all of the above: every file filed once, audit intact", fmt.Sprintf("%d files", len(h.dropped)), "every invariant holds", viol, t)
	h.secretsRow(t, "hostile drop folder and API")
}

// dropOnTmpfs runs f with the drop folder on a 1 MiB tmpfs (its contents copied in, and
// back afterwards), the agent running on it.
func (h *hostile) dropOnTmpfs(t *testing.T, f func()) error {
	drop := h.cfg.DropFolder
	h.a.Kill()
	saved := drop + ".saved"
	if err := os.Rename(drop, saved); err != nil {
		return err
	}
	os.Mkdir(drop, 0o755)
	restore := func() {
		h.a.Kill()
		os.Remove(filepath.Join(drop, ".filler"))
		exec.Command("cp", "-a", drop+"/.", saved).Run()
		umount(drop)
		os.Remove(drop)
		os.Rename(saved, drop)
		h.a.Restart()
	}
	if err := mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", drop); err != nil {
		os.Remove(drop)
		os.Rename(saved, drop)
		h.a.Restart()
		return err
	}
	if out, err := exec.Command("cp", "-a", saved+"/.", drop).CombinedOutput(); err != nil {
		restore()
		return fmt.Errorf("copying the drop folder: %v %s", err, out)
	}
	h.a.Restart()
	f()
	restore()
	return nil
}

// storeDiskFull moves the agent's state to a small tmpfs, fills it, drops a certificate,
// then frees the space: the file must wait in the drop folder (never lost) and be taken once
// the store can write again.
func (h *hostile) storeDiskFull(t *testing.T) {
	var viol []string
	state := h.cfg.StateDir
	h.a.Kill()
	saved := state + ".saved"
	if err := os.Rename(state, saved); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(state, 0o700)
	if err := mount("-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", state); err != nil {
		os.Remove(state)
		os.Rename(saved, state)
		h.a.Restart()
		table.Add(Row{Group: "store", Name: "disk full under the store (16 MiB tmpfs)", Hit: "not run: " + err.Error(), Target: "file waits; taken once there is room", Fail: true})
		return
	}
	t.Cleanup(func() { umount(state) })
	if out, err := exec.Command("cp", "-a", saved+"/.", state).CombinedOutput(); err != nil {
		t.Fatalf("copying the state: %v %s", err, out)
	}
	h.a.Restart()
	// Fill the disk but for a few KiB.
	fill := filepath.Join(state, "filler")
	f, _ := os.Create(fill)
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	c := certtest.New(time.Now(), certtest.CommonName("store disk full"))
	h.drop("store-full.cer", c.PEM(), false)
	time.Sleep(3 * time.Second)
	if _, err := os.Stat(filepath.Join(h.cfg.DropFolder, "store-full.cer")); err != nil {
		if hits := h.filedAs("store-full.cer"); len(hits) > 0 {
			rs, _ := h.a.Client.Rotations(context.Background(), "")
			found := false
			for _, r := range rs {
				found = found || r.Source.FileName == "store-full.cer"
			}
			if !found {
				viol = append(viol, "the file was filed but no rotation was stored for it")
			}
		}
	}
	if h.a.Exited() {
		viol = append(viol, "the agent exited on a full disk:\n"+tail(h.a.Log(), 10))
		h.a.Restart()
	}
	os.Remove(fill)
	hits := h.waitFiled("store-full.cer", 120*time.Second)
	if len(hits) != 1 {
		viol = append(viol, fmt.Sprintf("store-full.cer filed as %v once there was room", hits))
	}
	if why := h.waitSettled(120 * time.Second); why != "" {
		viol = append(viol, why)
	}
	h.a.Kill()
	if code, out := h.tool("store", "check"); code != 0 {
		viol = append(viol, "store check after the full disk: "+out)
	}
	h.a.Restart()
	hostileRow("store", "disk full under the store while a file arrives (16 MiB tmpfs)", "file waits in the drop folder; taken once there is room; store checks", "nothing lost; the store stays sound", viol, t)
}

// secretsRow greps every output of the agent for its API token, its private key and the
// secret marker: the log, the audit log (API and files), the status, the reason notes, the
// metrics.
func (h *hostile) secretsRow(t *testing.T, what string) {
	tok, _ := os.ReadFile(h.cfg.API.TokenFile)
	key, _ := os.ReadFile(h.cfg.Auth.KeyFile)
	needles := map[string]string{"API token": strings.TrimSpace(string(tok)), "secret marker": h.secret, "PEM private key header": "PRIVATE KEY-----"}
	if lines := strings.Split(string(key), "\n"); len(lines) > 3 {
		needles["agent key body"] = lines[2]
	}
	outputs := map[string]string{"agent log": h.a.Log()}
	ctx := context.Background()
	if b, err := h.a.Client.Metrics(ctx); err == nil {
		outputs["metrics"] = string(b)
	}
	if s, err := h.a.Client.Status(ctx); err == nil {
		outputs["status"] = fmt.Sprintf("%+v", s)
	}
	if es, err := h.audit(); err == nil {
		outputs["audit log"] = fmt.Sprintf("%+v", es)
	}
	filepath.Walk(h.cfg.StateDir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && strings.HasSuffix(p, ".jsonl") {
			b, _ := os.ReadFile(p)
			outputs["audit file "+filepath.Base(p)] += string(b)
		}
		return nil
	})
	filepath.Walk(h.cfg.DropFolder, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".reason.txt") {
			b, _ := os.ReadFile(p)
			outputs["reason notes"] += string(b)
		}
		return nil
	})
	var viol []string
	for on, out := range outputs {
		for nn, needle := range needles {
			if needle != "" && strings.Contains(out, needle) {
				viol = append(viol, fmt.Sprintf("%s holds the %s", on, nn))
			}
		}
	}
	hostileRow("api", "no token or key in any output ("+what+")", fmt.Sprintf("%d outputs grepped for %d secrets", len(outputs), len(needles)), "0 hits", viol, t)
}

// TestFlood drops 20,000 files at once on a running agent: every one must be filed, and the
// agent's peak memory stay within 64 MB.
func TestFlood(t *testing.T) {
	needStress(t)
	const n = 20000
	h := newHostile(t)
	drop := h.cfg.DropFolder
	valid := certtest.New(time.Now(), certtest.CommonName("flood valid"))
	junk := make([]byte, 4096)
	rand.Read(junk)
	_, idlePeak, err := e2e.RSS(h.a.PID())
	if err != nil {
		t.Skipf("reading process memory needs /proc: %v", err)
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("flood-%05d.cer", i)
		data := junk[:200+i%3000]
		switch i % 10 {
		case 0:
			data = valid.PEM()
		case 1:
			name = fmt.Sprintf("flood-%05d.pfx", i)
		case 2:
			name = fmt.Sprintf("flood-%05d.txt", i)
		}
		if err := os.WriteFile(filepath.Join(drop, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var peak int64
	deadline := time.Now().Add(15 * time.Minute)
	for {
		if _, p, err := e2e.RSS(h.a.PID()); err == nil {
			peak = max(peak, p)
		}
		got := e2e.CountFiles(filepath.Join(drop, "processed")) + e2e.CountFiles(filepath.Join(drop, "rejected"))
		if got >= n || time.Now().After(deadline) || h.a.Exited() {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	elapsed := time.Since(start)
	var viol []string
	processed, rejected := e2e.CountFiles(filepath.Join(drop, "processed")), e2e.CountFiles(filepath.Join(drop, "rejected"))
	if left := e2e.CountFiles(drop); left != 0 || processed+rejected != n {
		viol = append(viol, fmt.Sprintf("%d left in the drop folder, %d processed + %d rejected, want %d filed", left, processed, rejected, n))
	}
	if processed != n/10 {
		viol = append(viol, fmt.Sprintf("processed/ holds %d, want %d (the same certificate each time)", processed, n/10))
	}
	notes, _ := filepath.Glob(filepath.Join(drop, "rejected", "*.reason.txt"))
	if len(notes) != rejected {
		viol = append(viol, fmt.Sprintf("%d reason notes for %d rejected files", len(notes), rejected))
	}
	if peak > 64<<20 {
		viol = append(viol, fmt.Sprintf("peak RSS %.1f MB, over 64 MB", float64(peak)/(1<<20)))
	}
	hostileRow("drop folder", fmt.Sprintf("%d files at once (mixed: one certificate again and again, keys, junk)", n),
		fmt.Sprintf("all filed in %s (%.0f files/s); peak RSS %.1f MB (idle peak %.1f MB)", elapsed.Round(time.Second), float64(n)/elapsed.Seconds(), float64(peak)/(1<<20), float64(idlePeak)/(1<<20)),
		"nothing lost; peak RSS <= 64 MB", viol, t)
}

// TestDamagedStore truncates the store, and then overwrites pages in the middle of it: the
// agent must refuse to start with a clear error naming the file and the way out, `store
// check` must fail, and `store rebuild` must bring back a store the agent starts on, with
// the rotations the audit trail describes.
func TestDamagedStore(t *testing.T) {
	needStress(t)
	for _, damage := range []string{"truncated to half its size", "4 KiB of garbage written at 8 KiB"} {
		t.Run(damage, func(t *testing.T) {
			h := newHostile(t)
			for i := 0; i < 3; i++ {
				c := certtest.New(time.Now(), certtest.CommonName(fmt.Sprintf("before damage %d", i)))
				h.drop(fmt.Sprintf("d%d.cer", i), c.PEM(), false)
			}
			if why := h.waitSettled(60 * time.Second); why != "" {
				t.Fatal(why)
			}
			before, _ := h.a.Client.Rotations(context.Background(), "")
			h.a.Kill()
			db := filepath.Join(h.cfg.StateDir, "certagent.db")
			fi, err := os.Stat(db)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(damage, "truncated") {
				os.Truncate(db, fi.Size()/2)
			} else {
				f, _ := os.OpenFile(db, os.O_WRONLY, 0)
				garbage := make([]byte, 4096)
				rand.Read(garbage)
				f.WriteAt(garbage, 8192)
				f.Close()
			}
			var viol []string
			cmd := exec.Command(e2eBinary(t), "run", "-c", h.cfg.File)
			out, err := runFor(cmd, 20*time.Second)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			last := lines[len(lines)-1]
			switch {
			case err == nil:
				viol = append(viol, "certagent run started on a damaged store")
			case strings.Contains(out, "goroutine ") || len(lines) > 3:
				viol = append(viol, "certagent run printed more than a clear error (a stack trace?):\n"+out)
			case !strings.Contains(last, db) || !strings.Contains(last, "store rebuild"):
				viol = append(viol, "the error does not name the store and `store rebuild`: "+last)
			}
			code, checkOut := h.tool("store", "check")
			if code != 1 {
				viol = append(viol, fmt.Sprintf("store check exits %d, want 1:\n%s", code, checkOut))
			}
			code, rebuildOut := h.tool("store", "rebuild", "--yes")
			if code != 0 {
				viol = append(viol, fmt.Sprintf("store rebuild exits %d:\n%s", code, rebuildOut))
			} else {
				h.a.Restart()
				after, _ := h.a.Client.Rotations(context.Background(), "")
				if len(after) != len(before) {
					viol = append(viol, fmt.Sprintf("%d rotations after the rebuild, %d before", len(after), len(before)))
				}
				if code, out := h.tool("audit", "verify"); code != 0 {
					viol = append(viol, "audit verify after the rebuild: "+out)
				}
			}
			hit := "run refuses: " + last
			if len(hit) > 140 {
				hit = hit[:140] + "..."
			}
			hostileRow("store", "store "+damage, hit+"; store check 1; rebuild restores the rotations", "clear error naming the way out; never a silent empty start", viol, t)
		})
	}
}

func e2eBinary(t *testing.T) string { return e2e.Binary(t) }

// runFor runs cmd for at most d (killing it then) and returns its combined output; err is
// nil only when it was still running at d (it started).
func runFor(cmd *exec.Cmd, d time.Duration) (string, error) {
	var buf strings.Builder
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			err = fmt.Errorf("exited 0")
		}
		return buf.String(), err
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		return buf.String(), nil
	}
}

// TestUnreadableFile drops a file the agent's account may not read. The agent runs as root
// here, so it runs under setpriv without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH: root
// then obeys file permissions like any service account.
func TestUnreadableFile(t *testing.T) {
	needStress(t)
	if _, err := exec.LookPath("setpriv"); err != nil || os.Getuid() != 0 {
		table.Add(Row{Group: "drop folder", Name: "unreadable file (mode 000)", Hit: "not run: needs root and setpriv", Target: "stays; status and log say why", Fail: true})
		return
	}
	env := e2e.NewEnv(t, func(c *config.Config) { c.Intake.Settle = config.Duration(150 * time.Millisecond) })
	a := env.StartAgent(e2e.WithCommandPrefix("setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"))
	drop := env.Config.DropFolder
	f := filepath.Join(drop, "unreadable.cer")
	if err := os.WriteFile(f, certtest.New(time.Now(), certtest.CommonName("unreadable")).PEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(f, 0)
	time.Sleep(3 * time.Second)
	var viol []string
	hit := ""
	w := &hostile{world: &world{t: t, env: env, a: a, cfg: env.Config}}
	switch hits := w.filedAs("unreadable.cer"); {
	case len(hits) > 1:
		viol = append(viol, fmt.Sprintf("filed %d times", len(hits)))
	case len(hits) == 1:
		hit = "filed as " + hits[0]
	default:
		if _, err := os.Lstat(f); err != nil {
			viol = append(viol, "the file vanished")
		}
		hit = "left in the drop folder"
	}
	if strings.Contains(a.Log(), "unreadable.cer") {
		hit += "; logged"
	}
	// Readable again: taken at the next try.
	os.Chmod(f, 0o644)
	if hits := w.waitFiled("unreadable.cer", 120*time.Second); len(hits) != 1 {
		viol = append(viol, fmt.Sprintf("once readable, filed as %v", hits))
	} else {
		hit += "; once readable, " + hits[0]
	}
	hostileRow("drop folder", "unreadable file (mode 000; the agent without CAP_DAC_OVERRIDE)", hit, "never lost or filed twice; taken once readable", viol, t)
}
