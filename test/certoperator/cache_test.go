package certoperator

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// secretTraffic counts the bytes of Secret lists and watches an API client receives.
type secretTraffic struct {
	bytes atomic.Int64
}

func (s *secretTraffic) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		if err == nil && req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/secrets") {
			resp.Body = &countingBody{ReadCloser: resp.Body, n: &s.bytes}
		}
		return resp, err
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func TestUnrelatedSecretsAreNotCached(t *testing.T) {
	const unrelated = 1000
	ns := newNamespace(t, "crowd")
	payload := strings.Repeat("x", 1024)
	var wg sync.WaitGroup
	errs := make(chan error, unrelated)
	for w := range 10 {
		wg.Go(func() {
			for i := w; i < unrelated; i += 10 {
				_, err := env.KubeClient.CoreV1().Secrets(ns).Create(ctx(t), &corev1.Secret{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("other-%04d", i)},
					StringData: map[string]string{"data": payload},
				}, metav1.CreateOptions{})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	all, err := env.KubeClient.CoreV1().Secrets(ns).List(ctx(t), metav1.ListOptions{})
	require.NoError(t, err)
	allJSON, err := json.Marshal(all)
	require.NoError(t, err)

	ca := setupVaultCA(t, ns, "crowd")
	createCA(t, ns, "ca", ca, true)
	traffic := &secretTraffic{}
	startOperator(t, ns, func(c *rest.Config) { c.Wrap(traffic.wrap) })
	createCertificate(t, certificate(ns, "web"))
	waitReady(t, ns, "web", metav1.ConditionTrue, "Issued")

	got := traffic.bytes.Load()
	t.Logf("Secrets in the namespace: %d (%d bytes as JSON); Secret list+watch bytes the operator received: %d",
		len(all.Items), len(allJSON), got)
	assert.Less(t, got, int64(len(allJSON)/20), "the operator must not list or watch the unrelated Secrets")
}
