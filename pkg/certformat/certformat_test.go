package certformat

import (
	"crypto/x509"
	"math/big"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSerial(t *testing.T) {
	tests := map[string]struct {
		serial *big.Int
		want   string
	}{
		"zero is one byte":              {serial: big.NewInt(0), want: "00"},
		"a small number is zero-padded": {serial: big.NewInt(10), want: "0a"},
		"bytes are joined by colons":    {serial: big.NewInt(0x1234ab), want: "12:34:ab"},
		"a leading zero nibble is kept": {serial: big.NewInt(0x0102), want: "01:02"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tc.want, Serial(tc.serial))
		})
	}
}

func TestFingerprint(t *testing.T) {
	// The SHA-256 of empty input, for a certificate whose DER is empty.
	assert.Equal(t, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Fingerprint(&x509.Certificate{}))
}
