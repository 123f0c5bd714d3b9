package certoperator

import (
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func ecdsaCurve() elliptic.Curve { return elliptic.P256() }

func randReader() io.Reader { return rand.Reader }

// formatSerial returns cert's serial as colon-separated lowercase hex, as Vault and the status write it.
func formatSerial(cert *x509.Certificate) string {
	b := cert.SerialNumber.Bytes()
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = fmt.Sprintf("%02x", x)
	}
	return strings.Join(parts, ":")
}

// parseChain parses every certificate in data.
func parseChain(t *testing.T, data []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return out
		}
		c, err := x509.ParseCertificate(block.Bytes)
		require.NoError(t, err)
		out = append(out, c)
	}
}

func contains(list []string, s string) bool { return slices.Contains(list, s) }
