package seed

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strings"
)

// AdminHandler serves the authenticated admin API:
//
//	POST /admin/import   body: a release bundle (CAR); answers ImportResult
//
// Every request must carry "Authorization: Bearer <token>". Bind it to a
// local address: it is how the publisher pushes releases.
func (s *Seed) AdminHandler(token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /admin/import", func(w http.ResponseWriter, r *http.Request) {
		res, err := s.Import(r.Context(), r.Body)
		if err != nil {
			s.log.Warn("import refused", "err", err)
			http.Error(w, err.Error(), http.StatusUnprocessableEntity)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(res)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			http.Error(w, ErrUnauthorized.Error(), http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// LoadOrCreateToken returns the admin token kept in path (mode 0600),
// creating a random one on first use.
func LoadOrCreateToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	var raw [32]byte
	rand.Read(raw[:])
	tok := hex.EncodeToString(raw[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("seed: create admin token: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(tok + "\n"); err != nil {
		return "", err
	}
	return tok, f.Sync()
}
