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
// body first; the limit keeps a sender from exhausting memory.
func ReadBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, *BodyError) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err == nil {
		return body, nil
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, &BodyError{Status: http.StatusRequestEntityTooLarge, Result: "too_large", Message: "body larger than " + strconv.FormatInt(max, 10) + " bytes"}
	}
	return nil, &BodyError{Status: http.StatusBadRequest, Result: "malformed", Message: "cannot read body"}
}
