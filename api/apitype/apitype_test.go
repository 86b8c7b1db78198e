package apitype

import (
	"slices"
	"testing"
)

func TestSortProblems(t *testing.T) {
	p := []StatusProblem{
		{Code: "a", Severity: SeverityInfo},
		{Code: "b", Severity: SeverityCritical},
		{Code: "c", Severity: "unknown"},
		{Code: "d", Severity: SeverityWarning},
		{Code: "e", Severity: SeverityCritical},
		{Code: "f", Severity: SeverityInfo},
	}
	SortProblems(p)
	var got []string
	for _, x := range p {
		got = append(got, x.Code)
	}
	if want := []string{"b", "e", "d", "a", "f", "c"}; !slices.Equal(got, want) {
		t.Errorf("SortProblems order = %v, want %v (critical, warning, info, others; stable)", got, want)
	}
}

func TestSeverityRank(t *testing.T) {
	tests := []struct {
		s    Severity
		want int
	}{
		{SeverityCritical, 0}, {SeverityWarning, 1}, {SeverityInfo, 2}, {"", 3}, {"CRITICAL", 3},
	}
	for _, tt := range tests {
		if got := tt.s.Rank(); got != tt.want {
			t.Errorf("Severity(%q).Rank() = %d, want %d", tt.s, got, tt.want)
		}
	}
}
