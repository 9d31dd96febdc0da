// Package httpxtest helps test HTTP handlers: a request body that counts
// what the handler read of it, so a test can show that a request refused
// for its headers cost no memory.
package httpxtest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
)

// Body is a request body of a given size that counts the bytes read.
type Body struct {
	left int64
	read atomic.Int64
}

// NewBody returns a body of size bytes ('x').
func NewBody(size int64) *Body { return &Body{left: size} }

// Read fills p with 'x' until the size is reached.
func (b *Body) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), b.left))
	for i := range p[:n] {
		p[i] = 'x'
	}
	b.left -= int64(n)
	b.read.Add(int64(n))
	return n, nil
}

// BytesRead is how many bytes were read so far.
func (b *Body) BytesRead() int64 { return b.read.Load() }

// Post serves a POST of body with the headers to h, Content-Length set to
// the body's size, and returns the status.
func Post(h http.Handler, path string, body *Body, hdr map[string]string) int {
	req := httptest.NewRequest(http.MethodPost, path, body)
	req.ContentLength = body.left
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}
