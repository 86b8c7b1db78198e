package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// Conn sends one prepared HTTP/1.1 request over a pool of kept-alive TCP connections, one
// request at a time on each, and reads each answer by its Content-Length. It checks what a
// benchmark needs (the status code, the whole body read) and no more; an answer without a
// Content-Length (chunked) is an error. Safe for concurrent use: a Do that finds no idle
// connection dials one, so the number of connections follows the number in flight.
type Conn struct {
	addr    string
	request []byte
	timeout time.Duration

	mu   sync.Mutex
	idle []*conn
}

type conn struct {
	nc net.Conn
	br *bufio.Reader
}

// NewConn prepares GET path on addr (host:port) with the given extra header lines
// ("Name: value").
func NewConn(addr, path string, headers ...string) *Conn {
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\n", path, addr)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return &Conn{addr: addr, request: b.Bytes(), timeout: 10 * time.Second}
}

// Do sends the request once and reads the whole answer. It returns the status code, the
// body's length and an error for anything but a complete answer.
func (c *Conn) Do() (status, n int, err error) {
	cn, err := c.get()
	if err != nil {
		return 0, 0, err
	}
	status, n, err = cn.roundTrip(c.request, c.timeout)
	if err != nil {
		cn.nc.Close()
		return 0, 0, err
	}
	c.mu.Lock()
	c.idle = append(c.idle, cn)
	c.mu.Unlock()
	return status, n, nil
}

// Close closes the idle connections.
func (c *Conn) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cn := range c.idle {
		cn.nc.Close()
	}
	c.idle = nil
}

func (c *Conn) get() (*conn, error) {
	c.mu.Lock()
	if k := len(c.idle); k > 0 {
		cn := c.idle[k-1]
		c.idle = c.idle[:k-1]
		c.mu.Unlock()
		return cn, nil
	}
	c.mu.Unlock()
	nc, err := net.DialTimeout("tcp", c.addr, c.timeout)
	if err != nil {
		return nil, err
	}
	return &conn{nc: nc, br: bufio.NewReaderSize(nc, 16<<10)}, nil
}

var (
	contentLength = []byte("content-length")
	connClose     = []byte("close")
	connection    = []byte("connection")
)

func (cn *conn) roundTrip(request []byte, timeout time.Duration) (status, n int, err error) {
	cn.nc.SetDeadline(time.Now().Add(timeout))
	if _, err := cn.nc.Write(request); err != nil {
		return 0, 0, err
	}
	n, closing := -1, false
	for first := true; ; first = false {
		line, err := cn.br.ReadSlice('\n')
		if err != nil {
			return 0, 0, fmt.Errorf("reading the answer's head: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if first {
			// HTTP/1.1 200 OK
			if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
				return 0, 0, fmt.Errorf("not an HTTP/1.x status line: %q", line)
			}
			if status, err = strconv.Atoi(string(line[9:12])); err != nil {
				return 0, 0, fmt.Errorf("status line %q: %w", line, err)
			}
			continue
		}
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, 0, fmt.Errorf("malformed header line %q", line)
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, contentLength):
			if n, err = strconv.Atoi(string(v)); err != nil || n < 0 {
				return 0, 0, fmt.Errorf("Content-Length %q", v)
			}
		case bytes.EqualFold(k, connection):
			closing = bytes.EqualFold(v, connClose)
		}
	}
	if n < 0 {
		return 0, 0, errors.New("the answer has no Content-Length")
	}
	if _, err := cn.br.Discard(n); err != nil {
		return 0, 0, fmt.Errorf("reading the body: %w", err)
	}
	if closing {
		return status, n, errors.New("the server closed the connection")
	}
	return status, n, nil
}
