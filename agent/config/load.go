package config

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// maxFileSize bounds a config file; a real one is a few kilobytes.
const maxFileSize = 1 << 20

// Load reads the config file at path, decodes it strictly, applies the defaults, resolves
// relative paths against the file's directory and runs Validate. When the file is bad the
// error is Errors, holding every problem found, each with the file, line and key. When the
// file cannot be read the error wraps the os error (errors.Is(err, fs.ErrNotExist) tells a
// missing file). Config.File is the absolute path.
func Load(path string) (*Config, error) {
	abs, data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(abs, data)
}

// Check is Load followed by CheckFiles, for `certagent config check`: it returns every
// problem of both at once, as one Errors in line order. The files are checked even when
// values are wrong (but not after a syntax error), and a key with a wrong value is not
// checked on disk too. The Config is returned only when it has no problem at all.
func Check(path string) (*Config, error) {
	abs, data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	c, errs, decoded := parse(abs, data)
	if !decoded {
		return nil, errs.err()
	}
	skip := map[string]bool{}
	for _, e := range errs {
		skip[e.Key] = true
	}
	errs = append(errs, c.checkFiles(skip)...)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// readFile reads the config file at path, up to maxFileSize, and returns its absolute path.
func readFile(path string) (string, []byte, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", nil, fmt.Errorf("reading config file %s: %w", path, err)
	}
	f, err := os.Open(abs)
	if err != nil {
		return "", nil, fmt.Errorf("reading config file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return "", nil, fmt.Errorf("reading config file: %w", err)
	}
	if len(data) > maxFileSize {
		return "", nil, Errors{{File: abs, Msg: "is larger than 1 MiB, which no certagent config is"}}
	}
	return abs, data, nil
}

// Parse does what Load does with the contents of a file already read. file names the file in
// errors and in Config.File, and its directory is the base of relative paths (the current
// directory when file is "").
func Parse(file string, data []byte) (*Config, error) {
	c, errs, _ := parse(file, data)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// parse decodes, applies the defaults and validates. decoded reports whether the file could
// be decoded at all (no syntax error); c is then the Config with every value that decoded,
// and errs its problems.
func parse(file string, data []byte) (c *Config, errs Errors, decoded bool) {
	d := &decoder{file: file, lines: map[string]int{}, failed: map[string]bool{}}
	data, err := toUTF8(data)
	if err != nil {
		return nil, Errors{{File: file, Line: 1, Msg: err.Error()}}, false
	}
	root := d.parse(data)
	if len(d.errs) > 0 {
		return nil, d.errs, false // a syntax error: nothing else can be trusted
	}
	c = base()
	c.File = file
	d.decodeDocument(root, c)
	c.lines = d.lines
	c.normalize()
	d.resolvePaths(c)
	c.applyDefaults()
	return c, append(d.errs, c.validate(d.failed)...), !d.failed[""]
}

// resolvePaths makes the paths given in the file absolute against the file's directory.
func (d *decoder) resolvePaths(c *Config) {
	dir := "."
	if c.File != "" {
		dir = filepath.Dir(c.File)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		d.add(0, "", "finding the config file's directory: %v", err)
		return
	}
	for _, f := range append(c.pathFields(), c.listPathFields()...) {
		p, msg := resolvePath(dir, *f.p)
		if msg != "" {
			d.fail(c.lines[f.key], f.key, "%s", msg)
		}
		*f.p = p
	}
}

// normalize lower-cases the GUIDs, as Entra ID and Graph write them.
func (c *Config) normalize() {
	for _, p := range []*string{&c.TenantID, &c.Auth.ClientID, &c.Target.AppID} {
		if isGUID(*p) {
			*p = strings.ToLower(*p)
		}
	}
}
