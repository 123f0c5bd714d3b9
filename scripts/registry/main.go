// Command registry builds clusterpki's operator images without a Docker daemon and runs a
// local OCI registry to push them to. scripts/images.sh drives it.
//
//	registry serve -addr 127.0.0.1:5001 -pid-file .local/registry/pid
//	registry push -binary bin/linux-amd64/ca-operator -ref 127.0.0.1:5001/clusterpki/ca-operator:v0.1.0 -version v0.1.0
//
// An image has the layout of a distroless static image, built from scratch: the static binary at
// /usr/local/bin/<name> (its entrypoint), the CA certificates at /etc/ssl/certs/ca-certificates.crt
// for TLS to Vault, and /etc/passwd and /etc/group with the user nonroot (65532), which it runs
// as. The Dockerfiles next to the operators produce the same layout.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// nonroot is the user and group the images run as, as in distroless's :nonroot images.
const nonroot = 65532

func main() {
	log.SetFlags(0)
	log.SetPrefix("registry: ")
	if len(os.Args) < 2 {
		log.Fatal("usage: registry serve|push [flags] (-h for the flags)")
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "push":
		err = push(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (serve, push)", os.Args[1])
	}
	if err != nil {
		log.Fatal(err)
	}
}

// serve runs an in-memory OCI registry until SIGINT or SIGTERM.
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:5001", "listen address (keep it on loopback: the registry has no authentication)")
	pidFile := fs.String("pid-file", "", "write the process id here while serving")
	_ = fs.Parse(args)

	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if *pidFile != "" {
		if err := os.WriteFile(*pidFile, fmt.Appendf(nil, "%d\n", os.Getpid()), 0o644); err != nil {
			return err
		}
		defer os.Remove(*pidFile)
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0))), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	log.Printf("serving on %s", l.Addr())
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// push assembles one operator image and pushes it.
func push(args []string) error {
	fs := flag.NewFlagSet("push", flag.ExitOnError)
	binary := fs.String("binary", "", "the static operator binary (required); the image's entrypoint is /usr/local/bin/<its name>")
	ref := fs.String("ref", "", "image reference to push to, e.g. 127.0.0.1:5001/clusterpki/ca-operator:v0.1.0 (required)")
	version := fs.String("version", "dev", "version label")
	revision := fs.String("revision", "unknown", "source commit label")
	caBundle := fs.String("ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "PEM CA certificates to ship")
	platform := fs.String("platform", "linux/amd64", "os/arch of the binary")
	epoch := fs.Int64("source-date-epoch", 0, "timestamp (Unix seconds) of the files and the image, for reproducible images")
	_ = fs.Parse(args)
	if *binary == "" || *ref == "" {
		return errors.New("push: -binary and -ref are required")
	}
	r, err := name.ParseReference(*ref)
	if err != nil {
		return fmt.Errorf("parse %s: %w", *ref, err)
	}
	img, err := Image(ImageSpec{
		Binary: *binary, CABundle: *caBundle, Platform: *platform,
		Version: *version, Revision: *revision, Created: time.Unix(*epoch, 0).UTC(),
	})
	if err != nil {
		return err
	}
	if err := remote.Write(r, img, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return fmt.Errorf("push %s: %w", r, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s@%s\n", r, digest)
	return nil
}

// ImageSpec says what goes into an image.
type ImageSpec struct {
	Binary, CABundle, Platform string
	Version, Revision          string
	Created                    time.Time
}

// Image returns the OCI image of spec: a base layer (users, CA certificates) and the binary's layer.
func Image(spec ImageSpec) (v1.Image, error) {
	osName, arch, ok := strings.Cut(spec.Platform, "/")
	if !ok {
		return nil, fmt.Errorf("platform %q is not os/arch", spec.Platform)
	}
	exe := path.Join("/usr/local/bin", filepath.Base(spec.Binary))
	bin, err := os.ReadFile(spec.Binary)
	if err != nil {
		return nil, err
	}
	cas, err := os.ReadFile(spec.CABundle)
	if err != nil {
		return nil, fmt.Errorf("CA certificates: %w", err)
	}
	base, err := layer(spec.Created, []file{
		{name: "etc/", mode: 0o755},
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: cas},
		{name: "home/", mode: 0o755},
		{name: "home/nonroot/", mode: 0o700, owner: nonroot},
		{name: "tmp/", mode: 0o1777},
	})
	if err != nil {
		return nil, err
	}
	app, err := layer(spec.Created, []file{
		{name: "usr/", mode: 0o755},
		{name: "usr/local/", mode: 0o755},
		{name: "usr/local/bin/", mode: 0o755},
		{name: strings.TrimPrefix(exe, "/"), mode: 0o755, data: bin},
	})
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), base, app)
	if err != nil {
		return nil, err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = osName, arch
	cf.Created = v1.Time{Time: spec.Created}
	cf.Config.Entrypoint = []string{exe}
	cf.Config.User = fmt.Sprintf("%d:%d", nonroot, nonroot)
	cf.Config.WorkingDir = "/"
	cf.Config.Env = []string{"PATH=/usr/local/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":    filepath.Base(spec.Binary),
		"org.opencontainers.image.version":  spec.Version,
		"org.opencontainers.image.revision": spec.Revision,
		"org.opencontainers.image.source":   "https://github.com/clusterpki/clusterpki",
	}
	return mutate.ConfigFile(img, cf)
}

// file is one entry of a layer; a name ending in "/" is a directory.
type file struct {
	name  string
	mode  int64
	owner int
	data  []byte
}

// layer returns a gzip-compressed OCI layer holding files, owned by root unless they say otherwise.
func layer(mtime time.Time, files []file) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Uid: f.owner, Gid: f.owner, ModTime: mtime, Format: tar.FormatPAX}
		if strings.HasSuffix(f.name, "/") {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}
