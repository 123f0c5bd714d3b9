package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/clusterpki/clusterpki/apis/contract"
)

// probeInterval is how often the prober asks the guest cluster for its namespaces.
const probeInterval = 200 * time.Millisecond

// prober asks the guest cluster, through the forwarder, for its namespaces every probeInterval,
// as `kubectl get namespaces` would with its kubeconfig: it reads the kubeconfig and the files
// it names before every request (so it follows a re-issued admin certificate and a new trust
// the moment they are written) and opens a new connection each time (so every request
// verifies the serving certificate of whichever API server answers).
type prober struct {
	kubeconfig string
	// filesMu is held for reading while the kubeconfig's files are read (the demo writes
	// them under it).
	filesMu *sync.RWMutex

	mu       sync.Mutex
	probes   int            // requests made
	byTrust  map[string]int // successful requests per trust (fingerprints of the roots)
	failures []probeFailure

	cancel context.CancelFunc
	done   chan struct{}
}

// probeFailure is one request that did not get the namespaces.
type probeFailure struct {
	at  time.Time
	err error
}

// start runs the prober until stop.
func (p *prober) start() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done, p.byTrust = cancel, make(chan struct{}), map[string]int{}
	go func() {
		defer close(p.done)
		t := time.NewTicker(probeInterval)
		defer t.Stop()
		for {
			trust, err := p.probe(ctx)
			if ctx.Err() != nil {
				return // a request cut short by stop is not an answer
			}
			p.mu.Lock()
			p.probes++
			if err != nil {
				p.failures = append(p.failures, probeFailure{time.Now(), err})
			} else {
				p.byTrust[trust]++
			}
			p.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// stop stops the prober and waits for its last request.
func (p *prober) stop() {
	if p.cancel != nil {
		p.cancel()
		<-p.done
	}
}

// counts returns the requests made, the failures, and the successes per trust.
func (p *prober) counts() (probes int, failures []probeFailure, byTrust map[string]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	byTrust = map[string]int{}
	for k, v := range p.byTrust {
		byTrust[k] = v
	}
	return p.probes, append([]probeFailure(nil), p.failures...), byTrust
}

// waitSuccesses waits until n more requests succeeded with trust, failing on a failed one.
func (p *prober) waitSuccesses(ctx context.Context, trust string, n int, limit time.Duration) error {
	_, failed, byTrust := p.counts()
	target := byTrust[trust] + n
	deadline := time.Now().Add(limit)
	for {
		_, f, bt := p.counts()
		if len(f) > len(failed) {
			return fmt.Errorf("the prober failed: %v", f[len(f)-1].err)
		}
		if bt[trust] >= target {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d requests trusting %s answered after %v", bt[trust]-target+n, n, trust, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(probeInterval / 2):
		}
	}
}

// probe makes one request and returns the trust it verified the server with.
func (p *prober) probe(ctx context.Context) (string, error) {
	client, server, trust, err := p.client()
	if err != nil {
		return "", err
	}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, server+"/api/v1/namespaces", nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	if !strings.Contains(string(body), `"kube-system"`) {
		return "", fmt.Errorf("the answer lists no namespace kube-system: %.200s", body)
	}
	return trust, nil
}

// client reads the kubeconfig and its files and returns a client for one request, the server,
// and the trust (fingerprints of the kubeconfig's CA).
func (p *prober) client() (*http.Client, string, string, error) {
	p.filesMu.RLock()
	defer p.filesMu.RUnlock()
	cfg, err := clientcmd.LoadFromFile(p.kubeconfig)
	if err != nil {
		return nil, "", "", err
	}
	kctx := cfg.Contexts[cfg.CurrentContext]
	if kctx == nil || cfg.Clusters[kctx.Cluster] == nil || cfg.AuthInfos[kctx.AuthInfo] == nil {
		return nil, "", "", fmt.Errorf("%s: incomplete current context", p.kubeconfig)
	}
	cluster, user := cfg.Clusters[kctx.Cluster], cfg.AuthInfos[kctx.AuthInfo]
	caPEM, err := os.ReadFile(cluster.CertificateAuthority)
	if err != nil {
		return nil, "", "", err
	}
	roots, err := contract.ParseCertificates(caPEM)
	if err != nil {
		return nil, "", "", fmt.Errorf("%s: %w", cluster.CertificateAuthority, err)
	}
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	pair, err := tls.LoadX509KeyPair(user.ClientCertificate, user.ClientKey)
	if err != nil {
		return nil, "", "", err
	}
	client := &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
	}}
	return client, cluster.Server, strings.Join(contract.Fingerprints(roots), ","), nil
}
