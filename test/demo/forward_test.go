package main

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// echoServer answers each line with name and the line, until the test ends.
func echoServer(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(name + " " + line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// ask connects through f, sends one line and returns the answer ("" when the connection was
// closed without one).
func ask(t *testing.T, f *forwarder) (net.Conn, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", f.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte("hello\n")); err != nil {
		return c, ""
	}
	line, _ := bufio.NewReader(c).ReadString('\n')
	return c, strings.TrimSpace(line)
}

func TestForwarder(t *testing.T) {
	tests := map[string]struct {
		backends func(t *testing.T) []string
		out      []int // backends taken out of rotation
		want     []string
		wantDial bool // some dial failed over to the next backend
	}{
		"connections go round-robin over the backends": {
			backends: func(t *testing.T) []string { return []string{echoServer(t, "a"), echoServer(t, "b")} },
			want:     []string{"a hello", "b hello", "a hello", "b hello"},
		},
		"a backend that refuses connections is skipped for the next": {
			backends: func(t *testing.T) []string { return []string{deadAddr(t), echoServer(t, "b")} },
			want:     []string{"b hello", "b hello", "b hello"},
			wantDial: true,
		},
		"a backend out of rotation gets no connection": {
			backends: func(t *testing.T) []string { return []string{echoServer(t, "a"), echoServer(t, "b")} },
			out:      []int{0},
			want:     []string{"b hello", "b hello", "b hello"},
		},
		"with no backend in rotation the connection is closed unanswered": {
			backends: func(t *testing.T) []string { return []string{echoServer(t, "a")} },
			out:      []int{0},
			want:     []string{""},
		},
		"with every backend down the connection is closed unanswered": {
			backends: func(t *testing.T) []string { return []string{deadAddr(t), deadAddr(t)} },
			want:     []string{""},
			wantDial: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f, err := newForwarder(tc.backends(t)...)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for _, i := range tc.out {
				f.setInRotation(i, false)
			}
			var got []string
			for range tc.want {
				c, answer := ask(t, f)
				c.Close()
				got = append(got, answer)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("answers %q, want %q", got, tc.want)
			}
			if _, failed := f.stats(); (failed > 0) != tc.wantDial {
				t.Errorf("%d dial failures, want some: %v", failed, tc.wantDial)
			}
		})
	}
}

// TestForwarderDrain: drain waits for the connections open to a backend to close, and a
// backend put back in rotation gets connections again.
func TestForwarderDrain(t *testing.T) {
	f, err := newForwarder(echoServer(t, "a"), echoServer(t, "b"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	open, answer := ask(t, f)
	if answer != "a hello" {
		t.Fatalf("first answer %q, want a's", answer)
	}
	ctx := context.Background()
	if err := f.drain(ctx, 0, 300*time.Millisecond); err == nil {
		t.Fatal("drain returned while a connection to the backend was open")
	}
	drained := make(chan error, 1)
	go func() { drained <- f.drain(ctx, 0, 5*time.Second) }()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-drained:
		t.Fatalf("drain returned (%v) while a connection to the backend was open", err)
	default:
	}
	c, answer := ask(t, f)
	c.Close()
	if answer != "b hello" {
		t.Errorf("answer during the drain %q, want b's", answer)
	}
	open.Close()
	if err := <-drained; err != nil {
		t.Fatalf("drain after the connection closed: %v", err)
	}
	f.setInRotation(0, true)
	seen := map[string]bool{}
	for range 2 {
		c, answer := ask(t, f)
		c.Close()
		seen[answer] = true
	}
	if !seen["a hello"] {
		t.Errorf("the backend put back in rotation got no connection: %v", seen)
	}
}
