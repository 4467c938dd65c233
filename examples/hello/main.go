// Command hello is gopack's bundled example: it proves that an image has
// what a Go service needs. It prints a greeting, the user it runs as, the
// time in a named zone (needs zoneinfo) and the number of CA roots (needs
// the CA bundle), and exits non-zero when zoneinfo or the CA bundle is missing.
package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"time"
)

// version is stamped at build time with -X main.version=...
var version = "dev"

// caBundle is where Go and most distributions look for the system CA roots.
const caBundle = "/etc/ssl/certs/ca-certificates.crt"

func main() {
	zone := os.Getenv("HELLO_ZONE")
	if zone == "" {
		zone = "America/New_York"
	}
	fmt.Printf("hello from gopack %s\n", version)
	fmt.Printf("uid=%d gid=%d\n", os.Getuid(), os.Getgid())

	failed := false
	loc, err := time.LoadLocation(zone)
	if err != nil {
		fmt.Fprintf(os.Stderr, "zoneinfo: cannot load %s: %v\n", zone, err)
		failed = true
	} else {
		fmt.Printf("time in %s: %s\n", zone, time.Now().In(loc).Format(time.RFC3339))
	}

	roots, err := countRoots(caBundle)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ca roots: %v\n", err)
		failed = true
	} else {
		fmt.Printf("ca roots: %d\n", roots)
	}
	if failed {
		os.Exit(1)
	}
}

// countRoots parses the PEM bundle at path and counts its certificates.
func countRoots(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return n, fmt.Errorf("%s: certificate %d: %w", path, n+1, err)
		}
		n++
	}
	if n == 0 {
		return 0, fmt.Errorf("%s: no certificates", path)
	}
	if _, err := x509.SystemCertPool(); err != nil {
		return n, err
	}
	return n, nil
}
