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
