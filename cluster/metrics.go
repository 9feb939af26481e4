package cluster

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	descMembers = prometheus.NewDesc("obmd_cluster_members", "Live obmd instances in the cluster (etcd members/ keys).", nil, nil)
	descMember  = prometheus.NewDesc("obmd_cluster_member", "Always 1: a live instance of the cluster, by advertised URL; self is \"true\" for this one.", []string{"instance", "self"}, nil)
	descOwned   = prometheus.NewDesc("obmd_cluster_owned_nodes", "Nodes whose BMC this instance drives (holds the lock of).", nil, nil)
	descEtcdUp  = prometheus.NewDesc("obmd_cluster_etcd_up", "1 while this instance has a working connection to etcd.", nil, nil)
)

// Collector reads the cluster's gauges at each scrape, for /metrics: the
// live members, this instance's owned nodes, and etcd's state. A member's
// URL is a label: the set is the cluster's size.
func (c *Cluster) Collector() prometheus.Collector { return clusterCollector{c} }

type clusterCollector struct{ c *Cluster }

func (clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMembers, descMember, descOwned, descEtcdUp} {
		ch <- d
	}
}

func (cc clusterCollector) Collect(ch chan<- prometheus.Metric) {
	c := cc.c
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	names := c.own.memberNames()
	gauge(descMembers, float64(len(names)))
	for _, n := range names {
		self := "false"
		if n == c.self {
			self = "true"
		}
		gauge(descMember, 1, n, self)
	}
	gauge(descOwned, float64(c.own.ownedCount()))
	up := 0.0
	if c.etcdReady() {
		up = 1
	}
	gauge(descEtcdUp, up)
}
