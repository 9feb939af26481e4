package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func clusterGoodEnv() map[string]string {
	return map[string]string{
		"LISTEN_ADDR": "127.0.0.1:8080", "ADMIN_TOKEN": goodToken, "DB_TYPE": "etcd",
		"ETCD_ENDPOINTS": "http://10.0.0.1:2379, http://10.0.0.2:2379", "CLUSTER_TOKEN": clusterToken,
		"ADVERTISE_URL": "http://127.0.0.1:8080/",
	}
}

func TestClusterConfig(t *testing.T) {
	t.Parallel()
	c, _, err := loadConfig(nil, envOf(clusterGoodEnv()), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cc := c.Cluster
	if cc == nil || strings.Join(cc.Endpoints, " ") != "http://10.0.0.1:2379 http://10.0.0.2:2379" ||
		cc.Prefix != "/obmd/" || cc.Token != clusterToken || cc.AdvertiseURL != "http://127.0.0.1:8080" || cc.EtcdTLS != nil {
		t.Fatalf("cluster config %+v", cc)
	}
	// Badger configurations have none.
	if c, _, err := loadConfig(nil, envOf(goodEnv()), io.Discard); err != nil || c.Cluster != nil {
		t.Fatalf("badger config: %+v, %v", c.Cluster, err)
	}
	// TLS to etcd: a CA file makes it, https endpoints need no more.
	certPEM, _ := selfSignedCert(t)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	env := clusterGoodEnv()
	env["ETCD_ENDPOINTS"], env["ETCD_CA"], env["ETCD_PREFIX"] = "https://etcd1:2379", ca, "/dc1/obmd/"
	c, _, err = loadConfig(nil, envOf(env), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Cluster.EtcdTLS == nil || c.Cluster.EtcdTLS.RootCAs == nil || c.Cluster.Prefix != "/dc1/obmd/" {
		t.Fatalf("etcd TLS not configured: %+v", c.Cluster)
	}
	// The cluster token from a file (systemd credentials, container secrets).
	tokFile := filepath.Join(t.TempDir(), "cluster-token")
	if err := os.WriteFile(tokFile, []byte(clusterToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env = clusterGoodEnv()
	delete(env, "CLUSTER_TOKEN")
	env["CLUSTER_TOKEN_FILE"] = tokFile
	if c, _, err = loadConfig(nil, envOf(env), io.Discard); err != nil || c.Cluster.Token != clusterToken {
		t.Fatalf("CLUSTER_TOKEN_FILE: %v, token %q", err, c.Cluster.Token)
	}
}

func TestClusterConfigErrors(t *testing.T) {
	t.Parallel()
	cg := clusterGoodEnv()
	cases := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"nothing but DB_TYPE", with(goodEnv(), map[string]string{"DB_TYPE": "etcd", "DB_PATH": ""}),
			[]string{"ETCD_ENDPOINTS is not set", "CLUSTER_TOKEN is not set", "ADVERTISE_URL is not set"}},
		{"DB_PATH with etcd", with(cg, map[string]string{"DB_PATH": "/var/lib/obmd"}), []string{"DB_PATH is set but DB_TYPE is etcd"}},
		{"cluster settings without etcd", with(goodEnv(), map[string]string{"ETCD_ENDPOINTS": "http://x:2379", "CLUSTER_TOKEN": clusterToken}),
			[]string{"ETCD_ENDPOINTS is set but DB_TYPE is not etcd", "CLUSTER_TOKEN is set but DB_TYPE is not etcd"}},
		{"endpoint without scheme", with(cg, map[string]string{"ETCD_ENDPOINTS": "10.0.0.1:2379"}), []string{"ETCD_ENDPOINTS: \"10.0.0.1:2379\" is not an etcd client URL"}},
		{"endpoint without port", with(cg, map[string]string{"ETCD_ENDPOINTS": "http://etcd1"}), []string{"has no port"}},
		{"plaintext and TLS endpoints", with(cg, map[string]string{"ETCD_ENDPOINTS": "https://a:2379,http://b:2379"}), []string{"\"http://b:2379\" is plaintext but TLS to etcd is configured"}},
		{"cert without key", with(cg, map[string]string{"ETCD_CERT": "/c.pem"}), []string{"ETCD_KEY is not set but ETCD_CERT is"}},
		{"unreadable CA", with(cg, map[string]string{"ETCD_CA": "/nonexistent/ca.pem"}), []string{"ETCD_CA: cannot read"}},
		{"short cluster token", with(cg, map[string]string{"CLUSTER_TOKEN": "abc"}), []string{"CLUSTER_TOKEN must be 32 hex digits"}},
		{"cluster token twice", with(cg, map[string]string{"CLUSTER_TOKEN_FILE": "/x"}), []string{"CLUSTER_TOKEN and CLUSTER_TOKEN_FILE are both set"}},
		{"unreadable cluster token file", with(cg, map[string]string{"CLUSTER_TOKEN": "", "CLUSTER_TOKEN_FILE": "/nonexistent/t"}), []string{"CLUSTER_TOKEN_FILE: open /nonexistent/t"}},
		{"cluster token is the admin's", with(cg, map[string]string{"CLUSTER_TOKEN": strings.ToUpper(goodToken)}), []string{"CLUSTER_TOKEN must differ from ADMIN_TOKEN"}},
		{"advertise URL with a path", with(cg, map[string]string{"ADVERTISE_URL": "http://127.0.0.1:8080/obmd"}), []string{"ADVERTISE_URL \"http://127.0.0.1:8080/obmd\" is not a URL"}},
		{"https advertised, plaintext served", with(cg, map[string]string{"ADVERTISE_URL": "https://obmd1:8443"}), []string{"ADVERTISE_URL \"https://obmd1:8443\" is https but this instance serves plaintext"}},
		{"unreadable cluster CA", with(cg, map[string]string{"CLUSTER_CA": "/nonexistent/ca.pem"}), []string{"CLUSTER_CA: cannot read"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := loadConfig(nil, envOf(tc.env), io.Discard)
			if err == nil {
				t.Fatal("loadConfig accepted the configuration")
			}
			lines := configErrorLines(err)
			if len(lines) != len(tc.want) {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), len(tc.want), strings.Join(lines, "\n"))
			}
			for i, w := range tc.want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("line %q does not contain %q", lines[i], w)
				}
			}
		})
	}
}
