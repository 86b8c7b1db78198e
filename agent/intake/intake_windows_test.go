package intake

import (
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"
)

func TestSharingViolationWaitsQuietly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startPoll(t, pollCfg())
		h.write("a.cer", "good")
		// A copy in progress: another handle with write access. The intake's open shares
		// only reading, so it gets ERROR_SHARING_VIOLATION.
		f, err := os.OpenFile(filepath.Join(h.dir, "a.cer"), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if got := h.rec.handledNames(); len(got) != 0 {
			f.Close()
			t.Fatalf("handled %v while another process held the file for writing", got)
		}
		if st := h.in.Stats(); st.Errors != 0 || st.Waiting != 1 {
			t.Errorf("Stats() = %+v, want no errors and the file waiting", st)
		}
		f.Close()
		time.Sleep(2 * testSettle)
		synctest.Wait()
		if got := h.names(ProcessedDir); len(got) != 1 {
			t.Fatalf("processed/ = %v, want a.cer once released", got)
		}
	})
}
