// Command ingressbench runs skiff's ingress (package internal/ingress, the
// code the daemon runs) with a static table routing one host to one
// replica, for bench/ingress.sh.
//
//	ingressbench -listen 127.0.0.1:28181 -backend 127.0.0.1:28180 -host hello.localhost
//
// With -tls-listen it also serves HTTPS (HTTP/2 and HTTP/1.1) there, with
// a certificate for the host from a local CA (internal/pki) made in
// -tls-dir, written as cert.pem and key.pem for a peer to serve too.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"log"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"

	"skiff.dev/skiff/internal/ingress"
	"skiff.dev/skiff/internal/pki"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:28181", "address the ingress listens on")
	backend := flag.String("backend", "127.0.0.1:28180", "address of the replica")
	host := flag.String("host", "hello.localhost", "host name routed to the replica")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	tlsListen := flag.String("tls-listen", "", "also serve HTTPS on this address")
	tlsDir := flag.String("tls-dir", "", "directory of the CA and of cert.pem/key.pem (with -tls-listen)")
	flag.Parse()

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p, err := ingress.New(ingress.Config{
		Addr:   *listen,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		log.Fatal(err)
	}
	err = p.Update(ingress.Table{Routes: []ingress.Route{{
		App:   "hello",
		Hosts: []string{*host},
		Backends: []ingress.Backend{{
			Revision:  "hello-00001",
			Percent:   100,
			Endpoints: []ingress.Endpoint{{ID: "hello-00001-a", Addr: *backend}},
		}},
	}}})
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		log.Fatal(err)
	}
	if *tlsListen != "" {
		if err := serveTLS(p, *tlsListen, *tlsDir, *host); err != nil {
			log.Fatal(err)
		}
	}
	<-ctx.Done()
	p.Close()
}

// serveTLS issues a certificate for host from a CA in dir, writes it and
// its key there, and serves p over TLS on addr with it.
func serveTLS(p *ingress.Proxy, addr, dir, host string) error {
	ca, err := pki.Open(filepath.Join(dir, "ca"))
	if err != nil {
		return err
	}
	c, err := ca.Leaf(host)
	if err != nil {
		return err
	}
	der, err := x509.MarshalECPrivateKey(c.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return p.ServeTLS(ln, &tls.Config{Certificates: []tls.Certificate{*c}})
}
