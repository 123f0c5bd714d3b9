package vault

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"syscall"

	vaultapi "github.com/hashicorp/vault/api"
)

// ErrNotFound is returned (wrapped) by Read when nothing is stored at the path.
var ErrNotFound = errors.New("not found")

// responseError returns the Vault response error in err's chain, if any.
func responseError(err error) (*vaultapi.ResponseError, bool) {
	var re *vaultapi.ResponseError
	ok := errors.As(err, &re)
	return re, ok
}

// statusCode returns the HTTP status Vault answered with, or 0 when err carries none.
func statusCode(err error) int {
	if re, ok := responseError(err); ok {
		return re.StatusCode
	}
	return 0
}

// IsNotFound reports whether err says nothing exists at the path (404, or ErrNotFound).
func IsNotFound(err error) bool {
	return errors.Is(err, ErrNotFound) || statusCode(err) == http.StatusNotFound
}

// IsMissing reports whether err says there is nothing at the path, for the reads whose absence
// Vault answers with 400 or 404 and a message (an unmounted path, a mount with no default
// issuer, an unknown issuer or key) rather than an empty body — or, for an issuer reference
// (an ID or a name) that names none, with a 500 "unable to find PKI issuer for reference".
func IsMissing(err error) bool {
	if IsNotFound(err) {
		return true
	}
	re, ok := responseError(err)
	if !ok {
		return false
	}
	msg := strings.ToLower(strings.Join(re.Errors, " "))
	switch re.StatusCode {
	case http.StatusBadRequest:
		for _, s := range []string{"no secret engine mount", "no default issuer", "unable to find", "not found", "does not exist"} {
			if strings.Contains(msg, s) {
				return true
			}
		}
	case http.StatusInternalServerError:
		return strings.Contains(msg, "unable to find pki issuer")
	}
	return false
}

// IsInUse reports whether err is Vault refusing to enable a mount at a path that has one.
func IsInUse(err error) bool {
	re, ok := responseError(err)
	return ok && re.StatusCode == http.StatusBadRequest &&
		strings.Contains(strings.ToLower(strings.Join(re.Errors, " ")), "already in use")
}

// Refusal reports whether err is Vault refusing the request itself — a 4xx answer such as
// "common name not allowed" or "ttl above max_ttl", which retrying unchanged cannot fix — and
// returns Vault's own explanation. 408, 412 (a standby that has not caught up) and 429 are not
// refusals: they pass.
func Refusal(err error) (string, bool) {
	re, ok := responseError(err)
	if !ok {
		return "", false
	}
	switch code := re.StatusCode; {
	case code == http.StatusTooManyRequests, code == http.StatusRequestTimeout,
		code == http.StatusPreconditionFailed, code < 400, code >= 500:
		return "", false
	}
	msg := strings.Join(re.Errors, "; ")
	if msg == "" {
		msg = http.StatusText(re.StatusCode)
	}
	return msg, true
}

// IsPermissionDenied reports whether Vault refused the request (403): the policy does not allow
// it, or the token is invalid.
func IsPermissionDenied(err error) bool {
	return statusCode(err) == http.StatusForbidden
}

// IsUnavailable reports whether err means Vault could not answer: a connection error, a
// timeout, or a 5xx (503 when sealed or in standby without a leader) — a transient condition
// worth retrying later.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if code := statusCode(err); code != 0 {
		return code >= 500 && !IsMissing(err)
	}
	var netErr net.Error
	var urlErr *url.Error
	return errors.As(err, &netErr) || errors.As(err, &urlErr) || errors.Is(err, syscall.ECONNREFUSED) ||
		strings.Contains(err.Error(), "giving up after")
}

// ErrorMessage returns what went wrong in plain words, fit for a condition message or an event:
// Vault's own error texts with the HTTP status, without URLs, request ids or tokens.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	if re, ok := responseError(err); ok {
		msgs := make([]string, 0, len(re.Errors))
		for _, m := range re.Errors {
			if m = strings.TrimSpace(m); m != "" {
				msgs = append(msgs, m)
			}
		}
		switch {
		case len(msgs) > 0:
			return fmt.Sprintf("Vault answered %d: %s", re.StatusCode, strings.Join(msgs, "; "))
		case re.StatusCode == http.StatusServiceUnavailable:
			return "Vault is sealed or unavailable (503)"
		default:
			return fmt.Sprintf("Vault answered %d %s", re.StatusCode, http.StatusText(re.StatusCode))
		}
	}
	if errors.Is(err, ErrNotFound) {
		return "nothing found in Vault at that path"
	}
	if IsUnavailable(err) {
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			return "cannot reach Vault: " + urlErr.Err.Error()
		}
		return "cannot reach Vault: " + err.Error()
	}
	return err.Error()
}

// looksLikeBadToken reports whether a 403's messages are the ones Vault gives for a missing,
// expired or revoked token (as opposed to a policy that does not allow the path).
func looksLikeBadToken(err error) bool {
	re, ok := responseError(err)
	if !ok || re.StatusCode != http.StatusForbidden {
		return false
	}
	for _, m := range re.Errors {
		m = strings.ToLower(m)
		if strings.Contains(m, "permission denied") || strings.Contains(m, "invalid token") ||
			strings.Contains(m, "missing client token") {
			return true
		}
	}
	return false
}

// addressPattern matches what a transport error may still say about where Vault is: a URL,
// or a host:port.
var addressPattern = regexp.MustCompile(`(?i)\b(https?|unix|tcp)://[^\s"']+|\[[0-9a-f:]+\]:\d{1,5}\b|\b(localhost|[a-z0-9-]+(\.[a-z0-9-]+)+):\d{1,5}\b`)

// Describe returns err's whole message, with the context our code wrapped around it, fit for a
// condition or an event: every Vault answer inside is replaced by ErrorMessage's plain words,
// and transport errors say what failed without Vault's URL, address or any token.
func Describe(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	if re, ok := responseError(err); ok {
		msg = strings.Replace(msg, re.Error(), ErrorMessage(re), 1)
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		msg = strings.Replace(msg, urlErr.Error(), "cannot reach Vault: "+transportCause(urlErr.Err), 1)
	}
	return addressPattern.ReplaceAllString(msg, "<vault>")
}

// transportCause names why a connection to Vault failed, without its address.
func transportCause(err error) string {
	var opErr *net.OpError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.As(err, &opErr) && opErr.Timeout():
		return "timeout"
	case errors.As(err, &opErr) && opErr.Err != nil:
		return opErr.Op + ": " + opErr.Err.Error()
	}
	return err.Error()
}
