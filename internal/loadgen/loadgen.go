// Package loadgen is a lean HTTP/1.1 keep-alive client for load tests.
//
// net/http's client spends about as much CPU per request as the server
// does; when both share a small machine it halves what a benchmark can
// show of the server. A Conn writes a request with one write and reads the
// reply headers without allocating, so the server gets the cores.
package loadgen

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strconv"
)

// Conn is one keep-alive connection. It is not safe for concurrent use.
type Conn struct {
	c   net.Conn
	br  *bufio.Reader
	req []byte
}

// Dial connects to addr (host:port).
func Dial(addr string) (*Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	return &Conn{c: c, br: bufio.NewReaderSize(c, 64<<10)}, nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

// Post sends a POST with the given headers ("Name: value" each) and body,
// and returns the reply's status and body. The body is only valid until
// the next call.
func (c *Conn) Post(path string, headers []string, body []byte) (int, []byte, error) {
	c.req = append(c.req[:0], "POST "...)
	c.req = append(c.req, path...)
	c.req = append(c.req, " HTTP/1.1\r\nHost: loadgen\r\n"...)
	for _, h := range headers {
		c.req = append(c.req, h...)
		c.req = append(c.req, "\r\n"...)
	}
	c.req = append(c.req, "Content-Length: "...)
	c.req = strconv.AppendInt(c.req, int64(len(body)), 10)
	c.req = append(c.req, "\r\n\r\n"...)
	c.req = append(c.req, body...)
	if _, err := c.c.Write(c.req); err != nil {
		return 0, nil, fmt.Errorf("loadgen: write: %w", err)
	}
	status, length := 0, -1
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return 0, nil, fmt.Errorf("loadgen: read reply: %w", err)
		}
		switch {
		case status == 0:
			if len(line) < 12 {
				return 0, nil, fmt.Errorf("loadgen: bad status line %q", line)
			}
			status, _ = strconv.Atoi(string(line[9:12]))
		case len(line) <= 2: // the blank line ending the headers
			if length < 0 {
				return status, nil, fmt.Errorf("loadgen: reply without Content-Length (status %d)", status)
			}
			buf, err := c.br.Peek(length)
			if err != nil {
				return status, nil, fmt.Errorf("loadgen: read body: %w", err)
			}
			c.br.Discard(length)
			return status, buf, nil
		case len(line) > 15 && bytes.EqualFold(line[:15], []byte("content-length:")):
			length, _ = strconv.Atoi(string(bytes.TrimSpace(line[15:])))
		}
	}
}
