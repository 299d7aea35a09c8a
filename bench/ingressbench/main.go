// Command ingressbench runs skiff's ingress (package internal/ingress, the
// code the daemon runs) with a static table routing one host to one
// replica, for bench/ingress.sh.
//
//	ingressbench -listen 127.0.0.1:38181 -backend 127.0.0.1:38180 -host hello.localhost
package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"skiff.dev/skiff/internal/ingress"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:38181", "address the ingress listens on")
	backend := flag.String("backend", "127.0.0.1:38180", "address of the replica")
	host := flag.String("host", "hello.localhost", "host name routed to the replica")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
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
	<-ctx.Done()
	p.Close()
}
