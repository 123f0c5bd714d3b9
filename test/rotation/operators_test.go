package rotation

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusterpki/clusterpki/test/kit/pod"
	"github.com/clusterpki/clusterpki/test/kit/proc"
)

const (
	caOperator   = "ca-operator"
	certOperator = "cert-operator"
	// leadLimit bounds the wait for a started replica to lead: a killed leader's Lease must
	// expire first (15s), as it would for the standby replica of a real Deployment.
	leadLimit = 2 * time.Minute
)

// operators are one replica of each operator, each run as its Deployment's pod would run. A
// kill or a replacement of one operator waits for the one before it to finish.
type operators struct {
	dir string

	mu   sync.Mutex
	pods map[string]*pod.Pod
	// busy holds one lock per operator, held from a kill until the new process leads.
	busy map[string]*sync.Mutex
	// logs are every log file written, for a failing test's report.
	logs []string
}

// startOperators starts both operators with their Deployments' arguments and waits until each
// leads. They run until t ends; if t failed, the tail of every log they wrote is printed (the
// whole logs stay in $CLUSTERPKI_TEST_LOGS when it names a folder).
func startOperators(ctx context.Context, t *testing.T) *operators {
	t.Helper()
	dir := t.TempDir()
	if keep := os.Getenv("CLUSTERPKI_TEST_LOGS"); keep != "" {
		dir = keep // kept after the test, for a look at the operators' whole logs
	}
	o := &operators{dir: dir, pods: map[string]*pod.Pod{},
		busy: map[string]*sync.Mutex{caOperator: {}, certOperator: {}}}
	t.Cleanup(func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		for _, p := range o.pods {
			p.Stop()
		}
		if t.Failed() {
			for _, l := range o.logs {
				t.Logf("--- last lines of %s:\n%s", filepath.Base(l), proc.Tail(l, 60))
			}
		}
	})
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, name := range []string{caOperator, certOperator} {
		wg.Go(func() { errs[i] = o.start(ctx, name, "rotation") })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return o
}

// start runs a new replica of operator name (its pod named name-suffix) with extra flags after
// the Deployment's, and waits until it leads.
func (o *operators) start(ctx context.Context, name, suffix string, flags ...string) error {
	d, err := env.KubeClient.AppsV1().Deployments(systemNamespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	podName := name + "-" + suffix
	log := filepath.Join(o.dir, podName+".log")
	p, err := pod.Run(ctx, pod.Options{Deployment: d, Name: podName, Binary: binaries[name],
		Root: filepath.Join(o.dir, podName), LogPath: log, Env: env, Flags: flags})
	if err != nil {
		return fmt.Errorf("start %s: %w", podName, err)
	}
	o.mu.Lock()
	o.pods[name] = p
	o.logs = append(o.logs, log)
	o.mu.Unlock()
	if err := p.WaitLeading(ctx, leadLimit); err != nil {
		return fmt.Errorf("%s: %w", podName, err)
	}
	return nil
}

// pod returns the running replica of operator name.
func (o *operators) pod(name string) *pod.Pod {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.pods[name]
}

// kill sends SIGKILL to operator name's process (it gets no chance to finish anything or to
// release its Lease), calls whileDead, starts the process again and waits until it leads. It
// may be called from any goroutine.
func (o *operators) kill(ctx context.Context, t *testing.T, name string, whileDead func()) error {
	o.busy[name].Lock()
	defer o.busy[name].Unlock()
	p := o.pod(name)
	p.Kill()
	whileDead()
	start := time.Now()
	if err := p.Start(); err != nil {
		return fmt.Errorf("start %s again: %w", name, err)
	}
	if err := p.WaitLeading(ctx, leadLimit); err != nil {
		return fmt.Errorf("%s after SIGKILL: %w", name, err)
	}
	t.Logf("%s killed, leading again %v after its start", name, time.Since(start).Round(100*time.Millisecond))
	return nil
}

// replace stops operator name (SIGTERM: it releases its Lease) and starts a new replica with
// flags added to its Deployment's arguments.
func (o *operators) replace(ctx context.Context, t *testing.T, name string, flags ...string) *pod.Pod {
	t.Helper()
	o.busy[name].Lock()
	defer o.busy[name].Unlock()
	o.pod(name).Stop()
	if err := o.start(ctx, name, "rotation-replaced", flags...); err != nil {
		t.Fatal(err)
	}
	return o.pod(name)
}
