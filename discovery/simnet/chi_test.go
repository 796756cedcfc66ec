package simnet

import (
	"math"
	"testing"
)

func TestChiSquareP(t *testing.T) {
	// Reference values (R: pchisq(x, df, lower.tail = FALSE)).
	tests := []struct {
		x    float64
		dof  int
		want float64
	}{
		{3.841459, 1, 0.05},
		{6.634897, 1, 0.01},
		{36.12327, 14, 0.001},
		{16.0, 14, 0.3134756},
		{1.0, 10, 0.9998279},
		{2100, 2015, 0.0908},
		{0, 5, 1},
	}
	for _, tt := range tests {
		got := ChiSquareP(tt.x, tt.dof)
		if math.Abs(got-tt.want) > 1e-3*max(1, tt.want*10) {
			t.Errorf("ChiSquareP(%v, %d) = %v, want %v", tt.x, tt.dof, got, tt.want)
		}
	}
}
