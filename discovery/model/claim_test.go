package model

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestClaimModel checks claim.pml with Spin: with reliable channels (safety
// and no deadlock, three claims per node) and with loss and timers (safety,
// one claim per node and one lost message: the state space grows fast).
func TestClaimModel(t *testing.T) {
	for _, tool := range []string{"spin", "cc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed, so the claim model is not checked (Debian: apt-get install spin gcc)", tool)
		}
	}
	model, err := os.ReadFile("claim.pml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name       string
		spin, cc   []string
		wantStates int
	}{
		{"reliable", nil, nil, 100000},
		{"lossy", []string{"-DLOSSY", "-DMAXCLAIMS=1"}, []string{"-DMEMLIM=2048", "-DCOLLAPSE"}, 1000000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if testing.Short() && tt.name == "lossy" {
				t.Skip("the lossy model takes a while; skipped in -short")
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "claim.pml"), model, 0o644); err != nil {
				t.Fatal(err)
			}
			run := func(name string, args ...string) string {
				t.Helper()
				cmd := exec.Command(name, args...)
				cmd.Dir = dir
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
				}
				return string(out)
			}
			run("spin", append(append([]string{}, tt.spin...), "-a", "claim.pml")...)
			run("cc", append(append([]string{"-O2", "-DSAFETY"}, tt.cc...), "-o", "pan", "pan.c")...)
			out := run("./pan", "-m1000000")
			if !strings.Contains(out, "errors: 0") || strings.Contains(out, "pan:1:") || strings.Contains(out, "max search depth too small") {
				t.Fatalf("the model fails:\n%s", out)
			}
			var states int
			for _, line := range strings.Split(out, "\n") {
				if f := strings.Fields(line); len(f) >= 3 && f[1] == "states," && f[2] == "stored" {
					states = atoiOrZero(f[0])
				}
			}
			if states < tt.wantStates {
				t.Fatalf("only %d states explored, want at least %d:\n%s", states, tt.wantStates, out)
			}
			t.Logf("%d states, no error", states)
		})
	}
}

func atoiOrZero(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}
