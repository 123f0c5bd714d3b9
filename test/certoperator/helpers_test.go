package certoperator

import (
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"io"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/clusterpki/clusterpki/apis/contract"
)

func ecdsaCurve() elliptic.Curve { return elliptic.P256() }

func randReader() io.Reader { return rand.Reader }

// formatSerial returns cert's serial in the form Vault and the status write it.
func formatSerial(cert *x509.Certificate) string { return contract.Serial(cert.SerialNumber) }

// parseChain parses every certificate in data.
func parseChain(t *testing.T, data []byte) []*x509.Certificate {
	t.Helper()
	certs, err := contract.ParseCertificates(data)
	require.NoError(t, err)
	return certs
}

func contains(list []string, s string) bool { return slices.Contains(list, s) }
