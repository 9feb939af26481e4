package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"obmd/cluster"
)

// clusterConfig is the configuration of an instance of a cluster
// (DB_TYPE=etcd).
type clusterConfig struct {
	Endpoints    []string
	Prefix       string
	EtcdTLS      *tls.Config // nil: plaintext to etcd
	Token        string
	AdvertiseURL string
	PeerTLS      *tls.Config // for https calls to the other instances
}

func clusterSettings() []*setting {
	return []*setting{
		{env: "ETCD_ENDPOINTS", flag: "etcd-endpoints", usage: "etcd client `URLs`, comma-separated (DB_TYPE=etcd), e.g. https://10.0.0.1:2379,https://10.0.0.2:2379"},
		{env: "ETCD_PREFIX", flag: "etcd-prefix", usage: "etcd key `prefix` under which obmd keeps its nodes, members and locks (default " + cluster.DefaultPrefix + ")"},
		{env: "ETCD_CA", flag: "etcd-ca", usage: "CA certificate `file` (PEM) to verify etcd with (default: the system's)"},
		{env: "ETCD_CERT", flag: "etcd-cert", usage: "client certificate `file` (PEM) for etcd; with ETCD_KEY"},
		{env: "ETCD_KEY", flag: "etcd-key", usage: "client private key `file` (PEM) for etcd"},
		{env: "CLUSTER_TOKEN", flag: "cluster-token", usage: "shared secret (`token`, 32 hex digits) the instances of a cluster authenticate each other with; obmd -gen-token makes one. Discouraged as a flag; use the environment or CLUSTER_TOKEN_FILE"},
		{env: "CLUSTER_TOKEN_FILE", flag: "cluster-token-file", usage: "`file` holding CLUSTER_TOKEN; set it or CLUSTER_TOKEN, not both"},
		{env: "ADVERTISE_URL", flag: "advertise-url", usage: "`URL` the other instances reach this one at (its API listener), e.g. https://obmd1.example:8443"},
		{env: "CLUSTER_CA", flag: "cluster-ca", usage: "CA certificate `file` (PEM) to verify the other instances' HTTPS certificates with (default: the system's)"},
	}
}

var clusterVars = []string{"ETCD_ENDPOINTS", "ETCD_PREFIX", "ETCD_CA", "ETCD_CERT", "ETCD_KEY", "CLUSTER_TOKEN", "CLUSTER_TOKEN_FILE", "ADVERTISE_URL", "CLUSTER_CA"}

// validateCluster checks the cluster's settings, reporting each problem
// through bad; it returns nil unless DB_TYPE=etcd. A cluster setting
// without DB_TYPE=etcd is a mistake worth stopping for: the operator
// meant a cluster and would get a lone instance.
func validateCluster(raw map[string]string, enabled bool, adminToken string, serveTLS bool, bad func(string, ...any)) *clusterConfig {
	if !enabled {
		for _, v := range clusterVars {
			if raw[v] != "" {
				bad("%s is set but DB_TYPE is not etcd; set DB_TYPE=etcd to run a cluster, or unset %s", v, v)
			}
		}
		return nil
	}
	cc := &clusterConfig{Prefix: raw["ETCD_PREFIX"], AdvertiseURL: strings.TrimSuffix(raw["ADVERTISE_URL"], "/")}
	if cc.Prefix == "" {
		cc.Prefix = cluster.DefaultPrefix
	}

	etcdTLS := false
	if raw["ETCD_ENDPOINTS"] == "" {
		bad("ETCD_ENDPOINTS is not set; with DB_TYPE=etcd give etcd's client URLs, comma-separated, e.g. http://127.0.0.1:2379")
	}
	for _, ep := range strings.Split(raw["ETCD_ENDPOINTS"], ",") {
		ep = strings.TrimSpace(ep)
		if ep == "" {
			continue
		}
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			bad("ETCD_ENDPOINTS: %q is not an etcd client URL such as http://127.0.0.1:2379 or https://etcd1:2379", ep)
			continue
		}
		if _, _, err := net.SplitHostPort(u.Host); err != nil {
			bad("ETCD_ENDPOINTS: %q has no port (etcd's client port is usually 2379)", ep)
			continue
		}
		etcdTLS = etcdTLS || u.Scheme == "https"
		cc.Endpoints = append(cc.Endpoints, u.Scheme+"://"+u.Host)
	}

	var tc tls.Config
	if f := raw["ETCD_CA"]; f != "" {
		if pool, err := loadCAs(f); err != nil {
			bad("ETCD_CA: %v", err)
		} else {
			tc.RootCAs, etcdTLS = pool, true
		}
	}
	switch cert, key := raw["ETCD_CERT"], raw["ETCD_KEY"]; {
	case cert != "" && key == "":
		bad("ETCD_KEY is not set but ETCD_CERT is; set both (client certificate for etcd) or neither")
	case key != "" && cert == "":
		bad("ETCD_CERT is not set but ETCD_KEY is; set both (client certificate for etcd) or neither")
	case cert != "":
		kp, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			bad("ETCD_CERT/ETCD_KEY: cannot load the key pair: %v", err)
		} else {
			tc.Certificates, etcdTLS = []tls.Certificate{kp}, true
		}
	}
	if etcdTLS {
		tc.MinVersion = tls.VersionTLS12
		cc.EtcdTLS = &tc
		for _, ep := range cc.Endpoints {
			if strings.HasPrefix(ep, "http://") {
				bad("ETCD_ENDPOINTS: %q is plaintext but TLS to etcd is configured (https endpoints, ETCD_CA or ETCD_CERT); use https:// for every endpoint", ep)
			}
		}
	}

	cc.Token = fromFile(raw, "CLUSTER_TOKEN", bad)
	switch {
	case cc.Token == "" && raw["CLUSTER_TOKEN_FILE"] != "":
		// fromFile said why
	case cc.Token == "":
		bad("CLUSTER_TOKEN is not set; with DB_TYPE=etcd the instances authenticate each other with it: 32 hex digits, the same on every instance (obmd -gen-token)")
	case len(cc.Token) != 32 || !isHex(cc.Token):
		bad("CLUSTER_TOKEN must be 32 hex digits (128 bits), the same on every instance; generate one with obmd -gen-token")
	case strings.EqualFold(cc.Token, adminToken):
		bad("CLUSTER_TOKEN must differ from ADMIN_TOKEN: an instance's peers must not hold the admin credential")
	}

	switch u, err := url.Parse(cc.AdvertiseURL); {
	case cc.AdvertiseURL == "":
		bad("ADVERTISE_URL is not set; with DB_TYPE=etcd give the URL the other instances reach this one at, e.g. https://obmd1.example:8443")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil:
		bad("ADVERTISE_URL %q is not a URL such as https://obmd1.example:8443 (scheme, host and port, nothing else)", cc.AdvertiseURL)
	case serveTLS && u.Scheme != "https":
		bad("ADVERTISE_URL %q is http but this instance serves HTTPS (TLS_CERT); use https://", cc.AdvertiseURL)
	case !serveTLS && u.Scheme != "http":
		bad("ADVERTISE_URL %q is https but this instance serves plaintext HTTP (no TLS_CERT); use http://, or set TLS_CERT and TLS_KEY", cc.AdvertiseURL)
	}

	if f := raw["CLUSTER_CA"]; f != "" {
		if pool, err := loadCAs(f); err != nil {
			bad("CLUSTER_CA: %v", err)
		} else {
			cc.PeerTLS = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
		}
	}
	return cc
}

func loadCAs(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", file, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}
