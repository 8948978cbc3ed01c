// A reference API (Go's standard library only): health, metrics, and its configured backends.
// It never prints a credential: it reports only whether each password file is readable.
package main

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"os"
	"strings"
)

var backends = []string{"POSTGRES", "MYSQL", "MONGODB", "REDIS", "RABBITMQ"}

func configured() map[string]map[string]any {
	found := map[string]map[string]any{}
	for _, name := range backends {
		host := os.Getenv(name + "_HOST")
		if host == "" {
			continue
		}
		secret := os.Getenv(name + "_PASSWORD_FILE")
		_, err := os.Stat(secret)
		found[strings.ToLower(name)] = map[string]any{
			"host":        host,
			"port":        os.Getenv(name + "_PORT"),
			"user":        os.Getenv(name + "_USER"),
			"credentials": secret != "" && err == nil,
		}
	}
	return found
}

func main() {
	http.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}`))
	})
	http.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("devstack_api_up 1\n"))
	})
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"service": os.Getenv("SERVICE_NAME"), "backends": configured()})
	})
	port := os.Getenv("HTTP_PORT")
	if port == "" {
		port = "8000"
	}
	host := os.Getenv("HTTP_HOST")
	if host == "" {
		host = "0.0.0.0"
	}
	// TLS_MODE: off | dual (HTTPS beside HTTP) | required (HTTPS only, plaintext refused)
	mode := os.Getenv("TLS_MODE")
	httpsPort := os.Getenv("HTTPS_PORT")
	if httpsPort == "" {
		httpsPort = "8443"
	}
	failed := make(chan error, 2)
	if mode == "dual" || mode == "required" {
		// TLS 1.2: forward-secret AEAD suites only (Go does not let TLS 1.3's be chosen; all are AEAD)
		suites := []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		}
		config := &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: suites}
		server := &http.Server{Addr: host + ":" + httpsPort, TLSConfig: config}
		go func() { failed <- server.ListenAndServeTLS(os.Getenv("TLS_CERT_FILE"), os.Getenv("TLS_KEY_FILE")) }()
	}
	if mode != "required" {
		go func() { failed <- http.ListenAndServe(host+":"+port, nil) }()
	}
	<-failed
	os.Exit(1)
}
