package userfile

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/windows"
)

func TestLongPath(t *testing.T) {
	long := `C:\` + filepath.Join("ProgramData", "CertAgent", "drop", strings.Repeat("x", 250))
	tests := []struct{ in, want string }{
		{`C:\short\a.cer`, `C:\short\a.cer`},
		{long, `\\?\` + long},
		{`\\?\` + long, `\\?\` + long},
		{`\\server\share\` + strings.Repeat("y", 250), `\\?\UNC\server\share\` + strings.Repeat("y", 250)},
	}
	for _, tt := range tests {
		if got := LongPath(tt.in); got != tt.want {
			t.Errorf("LongPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestOpenNoFollowSharesReadingOnly: a file another process holds for writing (a copy in
// progress) is busy, and while it is open nobody can write to it; others may read it.
func TestOpenNoFollowSharesReadingOnly(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.cer")
	if err := os.WriteFile(p, []byte("certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f, err := OpenNoFollow(p)
	if err == nil {
		f.Close()
		w.Close()
		t.Fatal("OpenNoFollow opened a file another handle holds for writing")
	}
	if !IsBusy(err) {
		t.Errorf("OpenNoFollow(file held for writing) = %v, want IsBusy", err)
	}
	w.Close()

	f, err = OpenNoFollow(p)
	if err != nil {
		t.Fatalf("OpenNoFollow after the writer closed = %v", err)
	}
	defer f.Close()
	if w, err := os.OpenFile(p, os.O_WRONLY, 0); err == nil {
		w.Close()
		t.Error("a writer opened the file while OpenNoFollow held it")
	} else if !IsBusy(err) {
		t.Errorf("opening for writing while OpenNoFollow holds the file = %v, want IsBusy", err)
	}
	r, err := os.Open(p)
	if err != nil {
		t.Errorf("opening for reading while OpenNoFollow holds the file = %v, want success", err)
	} else {
		r.Close()
	}
}

// TestOpenNoFollowOpensLinkItself: a symbolic link is opened as itself, not as its target, so
// the caller's regular-file check refuses it.
func TestOpenNoFollowOpensLinkItself(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target.cer")
	if err := os.WriteFile(target, []byte("certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.cer")
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("cannot create a symbolic link here: %v", err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Skipf("no symbolic link was created here (Lstat: %v, %v)", fi, err)
	}
	f, err := OpenNoFollow(link)
	if err != nil {
		t.Fatalf("OpenNoFollow(link) = %v", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || st.Mode().IsRegular() {
		t.Errorf("Stat of the opened link = %v, %v; want the link itself, not a regular file", st.Mode(), err)
	}
}

func TestIsBusy(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&os.PathError{Op: "open", Path: "a", Err: windows.ERROR_SHARING_VIOLATION}, true},
		{&os.LinkError{Op: "rename", Old: "a", New: "b", Err: windows.ERROR_LOCK_VIOLATION}, true},
		{&os.PathError{Op: "open", Path: "a", Err: windows.ERROR_ACCESS_DENIED}, false},
		{&os.PathError{Op: "open", Path: "a", Err: windows.ERROR_FILE_NOT_FOUND}, false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := IsBusy(tt.err); got != tt.want {
			t.Errorf("IsBusy(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
