//go:build !unix

package certpolicy

import "os"

// openNoFollow opens path for reading. Windows has no O_NOFOLLOW and no FIFOs in the file
// system: ReadFile compares the opened file with what Lstat saw (os.SameFile), which catches
// a link swapped in meanwhile (the link's target is another file).
func openNoFollow(path string) (*os.File, error) {
	return os.Open(path)
}
