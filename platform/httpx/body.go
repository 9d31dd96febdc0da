package httpx

import (
	"errors"
	"io"
	"net/http"
	"strconv"
)

// BodyError says why a request body could not be read and how to answer.
type BodyError struct {
	// Status is 413 for a body over the limit, 400 for one that could not
	// be read.
	Status int
	// Result is a short metric label: "too_large" or "malformed".
	Result string
	// Message is safe to send back to the client.
	Message string
}

func (e *BodyError) Error() string { return e.Message }

// ReadBody reads the request body, refusing more than max bytes. Webhook
// handlers verify signatures over the exact bytes, so they read the whole
// body first; the limit keeps a sender from exhausting memory. A body that
// declares its length is refused before it is read when the length is over
// the limit, and otherwise read into one buffer of that size.
func ReadBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, *BodyError) {
	return ReadBodyInto(w, r, max, nil)
}

// ReadBodyInto is ReadBody reading into buf's array when the body fits in
// its capacity (the result then aliases buf), so that a handler on a hot
// path can reuse one buffer after another instead of allocating each.
func ReadBodyInto(w http.ResponseWriter, r *http.Request, max int64, buf []byte) ([]byte, *BodyError) {
	if r.ContentLength > max {
		return nil, tooLarge(max)
	}
	body := http.MaxBytesReader(w, r.Body, max)
	var (
		b   []byte
		err error
	)
	switch {
	case r.ContentLength > 0:
		// net/http ends the body at Content-Length, so it is all there is.
		if int64(cap(buf)) >= r.ContentLength {
			b = buf[:r.ContentLength]
		} else {
			b = make([]byte, r.ContentLength)
		}
		_, err = io.ReadFull(body, b)
	default:
		// io.ReadAll's loop, starting from buf.
		b = buf[:0]
		if cap(b) == 0 {
			b = make([]byte, 0, 512)
		}
		for {
			if len(b) == cap(b) {
				b = append(b, 0)[:len(b)]
			}
			n, rerr := body.Read(b[len(b):cap(b)])
			b = b[:len(b)+n]
			if rerr != nil {
				if rerr != io.EOF {
					err = rerr
				}
				break
			}
		}
	}
	if err == nil {
		return b, nil
	}
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return nil, tooLarge(max)
	}
	return nil, &BodyError{Status: http.StatusBadRequest, Result: "malformed", Message: "cannot read body"}
}

func tooLarge(max int64) *BodyError {
	return &BodyError{Status: http.StatusRequestEntityTooLarge, Result: "too_large", Message: "body larger than " + strconv.FormatInt(max, 10) + " bytes"}
}
