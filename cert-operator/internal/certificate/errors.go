package certificate

import (
	"errors"
	"net/http"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"
)

// vaultRefusal reports whether err is Vault refusing the request itself (a 4xx answer such as
// "common name not allowed" or "ttl above max_ttl"), which retrying unchanged cannot fix, and
// returns Vault's own explanation in plain words.
func vaultRefusal(err error) (string, bool) {
	var resp *vaultapi.ResponseError
	if !errors.As(err, &resp) {
		return "", false
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests,
		resp.StatusCode == http.StatusRequestTimeout,
		resp.StatusCode == http.StatusPreconditionFailed, // a standby that has not caught up
		resp.StatusCode < 400, resp.StatusCode >= 500:
		return "", false
	}
	msg := strings.Join(resp.Errors, "; ")
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return msg, true
}
