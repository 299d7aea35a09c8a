package main

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"sync"
)

// item is one line of the inventory.
type item struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// inventory is a set of items safe for concurrent use.
type inventory struct {
	mu    sync.Mutex
	items map[string]int
}

func newInventory() *inventory {
	return &inventory{items: map[string]int{"apple": 3, "pear": 5}}
}

func (inv *inventory) list(prefix string) []item {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	var out []item
	for name, n := range inv.items {
		if strings.HasPrefix(name, prefix) {
			out = append(out, item{name, n})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (inv *inventory) add(name string, n int) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	inv.items[name] += n
}

func (inv *inventory) serveItems(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(inv.list(r.URL.Query().Get("prefix")))
	case http.MethodPost:
		var it item
		if err := json.NewDecoder(r.Body).Decode(&it); err != nil || it.Name == "" {
			http.Error(w, "want {\"name\": ..., \"count\": ...}", http.StatusBadRequest)
			return
		}
		inv.add(it.Name, it.Count)
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "GET or POST", http.StatusMethodNotAllowed)
	}
}
