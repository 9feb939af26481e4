package bench

import (
	"context"
	"testing"
	"time"

	"obmd/internal/etcdproc"
)

// TestClusterFailoverSmoke runs the cluster scenario with 2 nodes per
// instance, so the code cannot rot; make bench runs it with 50.
func TestClusterFailoverSmoke(t *testing.T) {
	t.Parallel()
	if _, err := etcdproc.LookPath(); err != nil {
		t.Skip(err.Error())
	}
	bin := buildCmd(t, "obmd/cmd/obmd")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := ClusterFailover(ctx, ClusterConfig{Obmd: bin, VictimNodes: 2})
	if err != nil {
		t.Fatalf("%v (partial result %+v)", err, r)
	}
	t.Logf("%+v", r)
	if r.Nodes != 6 || r.VictimNodes != 2 || r.Viewers != 4 || r.ViewersMarked != 4 {
		t.Errorf("scenario shape: %+v", r)
	}
	if r.LostWrites != 0 || r.AckedRegistrations == 0 {
		t.Errorf("acknowledged writes: %d registrations, %d lost", r.AckedRegistrations, r.LostWrites)
	}
	if r.PowerBackMax <= 0 || r.ConsoleBackMax <= 0 || r.RevocationMax <= 0 || r.RebalanceTime <= 0 {
		t.Errorf("a figure is missing: %+v", r)
	}
	if r.RebalanceReconnects > 1 || r.RebalanceConsolesCut != 0 {
		t.Errorf("rebalance cost a console %d reconnects (%d cut), want at most 1", r.RebalanceReconnects, r.RebalanceConsolesCut)
	}
}

// TestClusterEtcdOutageSmoke runs the etcd scenario with 2 nodes and a
// short outage.
func TestClusterEtcdOutageSmoke(t *testing.T) {
	t.Parallel()
	if _, err := etcdproc.LookPath(); err != nil {
		t.Skip(err.Error())
	}
	bin := buildCmd(t, "obmd/cmd/obmd")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := ClusterEtcdOutage(ctx, ClusterEtcdConfig{Obmd: bin, Nodes: 2, Outage: 3500 * time.Millisecond})
	if err != nil {
		t.Fatalf("%v (partial result %+v)", err, r)
	}
	t.Logf("%+v", r)
	if r.OutageCalls == 0 || r.OutageFailed != 0 || r.OutageMarkers != 0 {
		t.Errorf("etcd down: %d of %d calls failed, %d console gaps; want none", r.OutageFailed, r.OutageCalls, r.OutageMarkers)
	}
	if r.RefusedStatus != 503 {
		t.Errorf("admin write with etcd down answered %d, want 503", r.RefusedStatus)
	}
	if r.MovedByOutage != 0 || r.MovedByLeaderLoss != 0 || r.LeaderLossFailed != 0 {
		t.Errorf("nodes moved (%d, %d) or calls failed (%d) when etcd went away", r.MovedByOutage, r.MovedByLeaderLoss, r.LeaderLossFailed)
	}
	if r.WritesBack <= 0 || r.TokensBack <= 0 || r.LeaderLossWritesBack <= 0 {
		t.Errorf("a figure is missing: %+v", r)
	}
}
