package bus

import "errors"

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks an error that retrying cannot fix, such as a payload that
// does not decode: the consumer dead-letters the message at once instead of
// retrying it. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or any error it wraps, was marked by
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// locatedError carries where in a handler an error happened.
type locatedError struct {
	location string
	err      error
}

func (e *locatedError) Error() string { return e.err.Error() }
func (e *locatedError) Unwrap() error { return e.err }

// AtLocation records where err happened, such as "store.apply" or
// "normalize"; a dead letter's error_location then ends with it after the
// consumer's own "<service>/<durable>". AtLocation(loc, nil) is nil.
func AtLocation(location string, err error) error {
	if err == nil {
		return nil
	}
	return &locatedError{location: location, err: err}
}

// ErrorLocation returns the outermost location recorded by AtLocation in
// err's chain, or "".
func ErrorLocation(err error) string {
	var l *locatedError
	if errors.As(err, &l) {
		return l.location
	}
	return ""
}
