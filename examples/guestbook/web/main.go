// Command guestbook is a small web application over PostgreSQL, run by
// examples/guestbook/compose.yaml: GET / lists the entries, POST / with a
// "message" form field adds one, GET /healthz answers once the database
// does. `guestbook -check` is its container healthcheck.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"html"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	_ "github.com/lib/pq"
)

func main() {
	check := flag.Bool("check", false, "exit 0 if the server on :8080 is healthy")
	flag.Parse()
	if *check {
		c := http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get("http://127.0.0.1:8080/healthz")
		if err != nil || resp.StatusCode != 200 {
			os.Exit(1)
		}
		return
	}
	db, err := sql.Open("postgres", os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := migrate(ctx, db); err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Addr: ":8080", Handler: handler(db), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Printf("guestbook listening on :8080")
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

// migrate creates the table, retrying while the database starts.
func migrate(ctx context.Context, db *sql.DB) error {
	var err error
	for range 60 {
		if _, err = db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS entries (
			id serial PRIMARY KEY, message text NOT NULL, created timestamptz NOT NULL DEFAULT now())`); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return fmt.Errorf("database not reachable: %w", err)
}

func handler(db *sql.DB) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := db.PingContext(r.Context()); err != nil {
			http.Error(w, err.Error(), 503)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
		msg := r.FormValue("message")
		if msg == "" || len(msg) > 1000 {
			http.Error(w, "give a message of 1 to 1000 characters", 400)
			return
		}
		if _, err := db.ExecContext(r.Context(), `INSERT INTO entries (message) VALUES ($1)`, msg); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		rows, err := db.QueryContext(r.Context(), `SELECT message FROM entries ORDER BY id`)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer rows.Close()
		fmt.Fprint(w, "<!doctype html><title>Guestbook</title><h1>Guestbook</h1><ul>\n")
		for rows.Next() {
			var m string
			if err := rows.Scan(&m); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			fmt.Fprintf(w, "<li>%s</li>\n", html.EscapeString(m))
		}
		fmt.Fprint(w, "</ul><form method=post><input name=message><button>Sign</button></form>\n")
	})
	return mux
}
