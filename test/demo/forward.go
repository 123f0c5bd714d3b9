package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// forwardDialTimeout bounds one dial to a backend; a backend that does not answer in time is
// skipped for the next.
const forwardDialTimeout = time.Second

// forwarder is an L4 (TCP) load balancer in front of the guest cluster's kube-apiservers, as a
// real cluster has one: it passes each connection through untouched (TLS is end to end, so
// the client verifies the API server's own certificate), choosing backends round-robin, and
// tries the next backend when a dial fails. A backend taken out of rotation (drained before a
// restart, as a load balancer's health check would) gets no new connections.
type forwarder struct {
	ln net.Listener
	wg sync.WaitGroup

	mu       sync.Mutex
	backends []*fwdBackend
	next     int // round-robin start of the next connection
	conns    map[net.Conn]bool
	closed   bool
	// dialFailures counts dials to a backend that failed (and were retried on the next).
	dialFailures int
}

// fwdBackend is one kube-apiserver behind the forwarder.
type fwdBackend struct {
	addr   string
	out    bool // taken out of rotation
	active int  // connections open to it
	served int  // connections it was given
}

// newForwarder listens on a free loopback port and forwards to addrs (host:port), all in
// rotation.
func newForwarder(addrs ...string) (*forwarder, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &forwarder{ln: ln, conns: map[net.Conn]bool{}}
	for _, a := range addrs {
		f.backends = append(f.backends, &fwdBackend{addr: a})
	}
	f.wg.Add(1)
	go f.serve()
	return f, nil
}

// Addr is the address clients connect to.
func (f *forwarder) Addr() string { return f.ln.Addr().String() }

func (f *forwarder) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return // closed
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.handle(c)
		}()
	}
}

// candidates returns the backends in the order this connection tries them (every backend,
// round-robin), and moves the round-robin start on.
func (f *forwarder) candidates() []*fwdBackend {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.backends)
	out := make([]*fwdBackend, 0, n)
	for i := range n {
		out = append(out, f.backends[(f.next+i)%n])
	}
	f.next = (f.next + 1) % max(n, 1)
	return out
}

// claim counts a connection to b before it is dialled, so that drain waits for a dial under
// way too; it refuses a backend out of rotation.
func (f *forwarder) claim(b *fwdBackend) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if b.out || f.closed {
		return false
	}
	b.active++
	return true
}

// release is the end of a claimed connection.
func (f *forwarder) release(b *fwdBackend) {
	f.mu.Lock()
	b.active--
	f.mu.Unlock()
}

// handle connects c to the first backend in rotation that accepts a connection and copies
// both ways until either side closes.
func (f *forwarder) handle(c net.Conn) {
	defer c.Close()
	var up net.Conn
	var b *fwdBackend
	for _, cand := range f.candidates() {
		if !f.claim(cand) {
			continue
		}
		conn, err := net.DialTimeout("tcp", cand.addr, forwardDialTimeout)
		if err != nil {
			f.release(cand)
			f.mu.Lock()
			f.dialFailures++
			f.mu.Unlock()
			continue // the next backend
		}
		up, b = conn, cand
		break
	}
	if up == nil {
		return // no backend: the client sees the connection closed
	}
	defer f.release(b)
	defer up.Close()
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	b.served++
	f.conns[c], f.conns[up] = true, true
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.conns, c)
		delete(f.conns, up)
		f.mu.Unlock()
	}()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Pass the half-close on, so the other side sees the end of the stream.
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
}

// setInRotation puts backend i in or out of rotation.
func (f *forwarder) setInRotation(i int, in bool) {
	f.mu.Lock()
	f.backends[i].out = !in
	f.mu.Unlock()
}

// drain takes backend i out of rotation and waits until no connection to it is open, so that
// stopping it interrupts no request.
func (f *forwarder) drain(ctx context.Context, i int, limit time.Duration) error {
	f.setInRotation(i, false)
	deadline := time.Now().Add(limit)
	for {
		f.mu.Lock()
		active := f.backends[i].active
		f.mu.Unlock()
		if active == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d connection(s) to %s still open after %v", active, f.backends[i].addr, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stats returns how many connections each backend was given and how many dials failed.
func (f *forwarder) stats() (served []int, dialFailures int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.backends {
		served = append(served, b.served)
	}
	return served, f.dialFailures
}

// Close stops listening, closes every forwarded connection and waits for them to end.
func (f *forwarder) Close() error {
	err := f.ln.Close()
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
