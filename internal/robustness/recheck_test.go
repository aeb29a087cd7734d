package robustness

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// TestRecheckHistory checks a history a failed run wrote (history.json in
// its results folder, named by WHIRL_ROBUSTNESS_HISTORY) against the model
// again, with the memory or etcd scenario's parameters
// (WHIRL_ROBUSTNESS_STORE=memory|etcd), writing the visualisation next to
// it. It skips when no history is named.
func TestRecheckHistory(t *testing.T) {
	path := os.Getenv("WHIRL_ROBUSTNESS_HISTORY")
	if path == "" {
		t.Skip("WHIRL_ROBUSTNESS_HISTORY names no history to check")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ops []Op
	if err := json.Unmarshal(b, &ops); err != nil {
		t.Fatal(err)
	}
	p := MemoryParams
	if os.Getenv("WHIRL_ROBUSTNESS_STORE") == "etcd" {
		p = EtcdParams
	}
	res, info := porcupine.CheckOperationsVerbose(p.Model(), p.Operations(ops), time.Minute)
	t.Logf("%d operations: %s", len(ops), res)
	if err := porcupine.VisualizePath(p.Model(), info, path+".html"); err != nil {
		t.Error(err)
	}
	if res != porcupine.Ok {
		t.Errorf("linearizability: %s (see %s.html)", res, path)
	}
}
