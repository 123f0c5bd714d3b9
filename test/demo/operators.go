package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clusterpki/clusterpki/test/kit/pod"
)

// tokenRefresh is how often the demo writes fresh ServiceAccount tokens for the operators (as
// the kubelet rotates projected tokens; they live an hour).
const tokenRefresh = 20 * time.Minute

// localFlags are the flags the demo adds to a Deployment's arguments: there is one replica, so
// no leader election (the kit adds the metrics address and the kubeconfig).
var localFlags = []string{"--leader-elect=false"}

// startOperators runs both operators and waits until each answers /readyz.
func (d *demo) startOperators(ctx context.Context) (string, error) {
	var modes []string
	var ops []*pod.Pod
	for _, name := range operators {
		op, err := d.startOperator(ctx, name)
		if err != nil {
			return "", &stepError{step: "Run " + name, log: d.logPath(name), err: err}
		}
		ops = append(ops, op)
		modes = append(modes, name+": Vault Kubernetes auth as ServiceAccount "+systemNamespace+"/"+
			op.ServiceAccount())
		d.operators = append(d.operators, op)
	}
	for _, op := range ops {
		if err := op.WaitReady(ctx, 2*time.Minute); err != nil {
			return "", &stepError{step: "Run " + op.Name, log: op.Process().LogPath, err: err}
		}
	}
	return strings.Join(modes, "; "), nil
}

// startOperator runs operator name the way the kubelet would run its Deployment's pod (see the
// kit's pod package), as the pod's ServiceAccount, with Vault's Kubernetes auth.
func (d *demo) startOperator(ctx context.Context, name string) (*pod.Pod, error) {
	dep, err := d.env.KubeClient.AppsV1().Deployments(systemNamespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("deployment %s/%s (from deploy/default): %w", systemNamespace, name, err)
	}
	p, err := pod.New(ctx, pod.Options{Deployment: dep, Name: name + "-demo", Binary: filepath.Join(d.opts.binDir, name),
		Root: d.path("operators", name), LogPath: d.logPath(name), Env: d.env, Flags: localFlags})
	if err != nil {
		return nil, err
	}
	if err := p.Start(); err != nil {
		return nil, err
	}
	return p, d.procs.add(p.Process())
}

// refreshTokens writes fresh ServiceAccount tokens for the operators.
func (d *demo) refreshTokens(ctx context.Context) error {
	var errs []error
	for _, op := range d.operators {
		errs = append(errs, op.Refresh(ctx))
	}
	return errors.Join(errs...)
}
