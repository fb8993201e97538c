package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/duroworker/duroworker/internal/redistest"
)

// testPKI is a throwaway CA with a server certificate (127.0.0.1 and
// localhost) and a client certificate, as PEM files in a directory.
type testPKI struct {
	CA, ServerCert, ServerKey, ClientCert, ClientKey string
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	keyDER := func(k *ecdsa.PrivateKey) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	now := time.Now()
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "duroworker test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage, ips []net.IP, dns []string) ([]byte, *ecdsa.PrivateKey) {
		k := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: ips, DNSNames: dns,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	srvDER, srvKey := leaf(2, "redis", x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")}, []string{"localhost"})
	cliDER, cliKey := leaf(3, "app", x509.ExtKeyUsageClientAuth, nil, nil)
	return testPKI{
		CA:         write("ca.crt", "CERTIFICATE", caDER),
		ServerCert: write("server.crt", "CERTIFICATE", srvDER),
		ServerKey:  write("server.key", "PRIVATE KEY", keyDER(srvKey)),
		ClientCert: write("client.crt", "CERTIFICATE", cliDER),
		ClientKey:  write("client.key", "PRIVATE KEY", keyDER(cliKey)),
	}
}

// TestTLSConnections runs the CLI against a real redis-server with a TLS
// port signed by a private CA: --tls-ca, --tls-server-name, client
// certificates, a worker over TLS, and the hints for the usual mistakes.
func TestTLSConnections(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	tlsPort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	srv := redistest.StartWith(t, redistest.Config{Args: []string{
		"--tls-port", strconv.Itoa(tlsPort), "--tls-cert-file", pki.ServerCert, "--tls-key-file", pki.ServerKey,
		"--tls-ca-cert-file", pki.CA, "--tls-auth-clients", "optional",
	}})
	rdb := srv.Client(t)
	tlsURL := "rediss://127.0.0.1:" + strconv.Itoa(tlsPort) + "/0"
	e := newOpsEnv(t, tlsURL, rdb)

	// A worker and a client over TLS, with the private CA.
	e.startWorker("--tls-ca", pki.CA)
	out := e.ok("start", helloName, "tls", "--id", "tls-1", "--wait", "--timeout", "30s", "--tls-ca", pki.CA)
	mustMatch(t, "start over TLS", `(?m)^Output:\s+Hello, tls!$`, out)
	e.ok("status", "tls-1", "--tls-ca", pki.CA, "--tls-server-name", "localhost")

	for _, c := range []struct {
		code int
		want string
		args []string
	}{
		{exitError, "pass its CA with --tls-ca", []string{"status", "tls-1"}},
		{exitError, "pass the name it carries with --tls-server-name", []string{"status", "tls-1", "--tls-ca", pki.CA, "--tls-server-name", "redis.example"}},
		{exitUsage, "reading the TLS CA file", []string{"status", "tls-1", "--tls-ca", filepath.Join(t.TempDir(), "missing.crt")}},
		{exitUsage, "holds no PEM certificate", []string{"status", "tls-1", "--tls-ca", pki.ServerKey}},
		{exitUsage, "needs both a certificate file and a key file", []string{"status", "tls-1", "--tls-ca", pki.CA, "--tls-cert", pki.ClientCert}},
	} {
		e.failsWith(c.code, c.want, c.args...)
	}
	// A plain URL to the TLS port, and TLS flags with a plain URL.
	code, _, stderr := runCLI(t, "status", "x", "--redis", "redis://127.0.0.1:"+strconv.Itoa(tlsPort))
	if code != 1 || !strings.Contains(stderr, "if it expects TLS, use a rediss:// URL") {
		t.Errorf("redis:// to a TLS port: exit %d, %q", code, stderr)
	}
	code, _, stderr = runCLI(t, "status", "x", "--redis", srv.URL(), "--tls-ca", pki.CA)
	if code != exitUsage || !strings.Contains(stderr, "need a rediss:// URL") {
		t.Errorf("--tls-ca with redis://: exit %d, %q", code, stderr)
	}
	// TLS to the plain port: the server never answers the handshake.
	code, _, stderr = runCLI(t, "status", "x", "--redis", "rediss://"+srv.Addr(), "--tls-ca", pki.CA)
	if code != 1 || !strings.Contains(stderr, "if the server does not use TLS, use a redis:// URL") &&
		!strings.Contains(stderr, "the server does not speak TLS: use a redis:// URL") {
		t.Errorf("rediss:// to a plain port: exit %d, %q", code, stderr)
	}

	// A server that requires client certificates.
	if err := rdb.ConfigSet(context.Background(), "tls-auth-clients", "yes").Err(); err != nil {
		t.Fatal(err)
	}
	e.ok("status", "tls-1", "--tls-ca", pki.CA, "--tls-cert", pki.ClientCert, "--tls-key", pki.ClientKey)
	e.fails("the server requires a client certificate: pass it with --tls-cert and --tls-key", "status", "tls-1", "--tls-ca", pki.CA)
}
