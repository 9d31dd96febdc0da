package loadgen

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BareHTTP starts a net/http server whose handler reads the request body
// and answers 200, and returns its URL: the baseline every ingest path is
// measured against. It stops when tb's test or benchmark ends.
func BareHTTP(tb testing.TB) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	}))
	tb.Cleanup(srv.Close)
	return srv.URL
}
