package queue

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSFiles names the files of a TLS connection to Redis that the system
// defaults do not cover: a private certificate authority, a client
// certificate for servers that require one (tls-auth-clients yes), and the
// name the server's certificate is checked against. The zero value means
// the system's roots, no client certificate and the host of the URL.
//
// Use it with go-redis options parsed from a rediss:// URL:
//
//	opt, err := redis.ParseURL("rediss://app:secret@redis.internal:6380/0")
//	...
//	opt.TLSConfig, err = queue.TLSFiles{CA: "/etc/redis/ca.crt"}.Config(opt.TLSConfig)
type TLSFiles struct {
	// CA is a PEM file of the certificate authorities that sign the
	// server's certificate; empty: the system roots.
	CA string
	// Cert and Key are PEM files of a client certificate and its private
	// key; both or neither.
	Cert, Key string
	// ServerName is the name the server's certificate must carry; empty:
	// base's ServerName (go-redis sets it to the URL's host).
	ServerName string
}

// IsZero reports whether f names nothing.
func (f TLSFiles) IsZero() bool { return f == TLSFiles{} }

// Config returns a copy of base (nil: a new config with TLS 1.2 at least)
// with the files of f loaded. Errors name the file and what was wrong.
func (f TLSFiles) Config(base *tls.Config) (*tls.Config, error) {
	var cfg *tls.Config
	if base != nil {
		cfg = base.Clone()
	} else {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if f.CA != "" {
		pem, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, fmt.Errorf("reading the TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS CA file %s holds no PEM certificate", f.CA)
		}
		cfg.RootCAs = pool
	}
	switch {
	case f.Cert != "" && f.Key != "":
		cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("loading the TLS client certificate %s and key %s: %w", f.Cert, f.Key, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case f.Cert != "" || f.Key != "":
		return nil, errors.New("a TLS client certificate needs both a certificate file and a key file")
	}
	if f.ServerName != "" {
		cfg.ServerName = f.ServerName
	}
	return cfg, nil
}
