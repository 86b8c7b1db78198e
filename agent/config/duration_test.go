package config

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"0", 0},
		{"-0", 0},
		{"0s", 0},
		{"2s", 2 * time.Second},
		{"30d", 30 * day},
		{"1d12h", 36 * time.Hour},
		{"1h30m", 90 * time.Minute},
		{"1.5h", 90 * time.Minute},
		{"0.5d", 12 * time.Hour},
		{".5s", 500 * time.Millisecond},
		{"250ms", 250 * time.Millisecond},
		{"3us", 3 * time.Microsecond},
		{"3µs", 3 * time.Microsecond},
		{"3μs", 3 * time.Microsecond},
		{"7ns", 7},
		{"+1d", day},
		{"-1d2h", -26 * time.Hour},
		{"1h1h", 2 * time.Hour},
		{"106751d23h47m16.854775807s", math.MaxInt64},
		{"-106751d23h47m16.854775808s", math.MinInt64},
		{"9223372036854775807ns", math.MaxInt64},
		{"1.000000000000000000001s", time.Second},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseDurationErrors(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", "empty"},
		{"-", "empty"},
		{"30", "missing unit"},
		{"2x", `unknown unit "x"`},
		{"2 s", `unknown unit " s"`},
		{"1w", `unknown unit "w"`},
		{"d", "expected a number"},
		{".s", "expected a number"},
		{"1d 2h", `unknown unit "d "`},
		{"106752d", "out of range"},
		{"106751d23h47m16.854775808s", "out of range"},
		{"-106751d23h47m16.854775809s", "out of range"},
		{"99999999999999999999s", "out of range"},
	}
	for _, tt := range tests {
		_, err := ParseDuration(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseDuration(%q) error = %v, want one containing %q", tt.in, err, tt.want)
		}
	}
}

func TestDurationString(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{7, "7ns"},
		{1500 * time.Microsecond, "1.5ms"},
		{2 * time.Second, "2s"},
		{1500 * time.Millisecond, "1.5s"},
		{90 * time.Minute, "1h30m"},
		{24 * time.Hour, "1d"},
		{30 * day, "30d"},
		{365 * day, "365d"},
		{36 * time.Hour, "1d12h"},
		{day + time.Second + time.Nanosecond, "1d1.000000001s"},
		{time.Hour + 500*time.Millisecond, "1h0.5s"},
		{-26 * time.Hour, "-1d2h"},
		{-time.Millisecond, "-1ms"},
		{math.MaxInt64, "106751d23h47m16.854775807s"},
		{math.MinInt64, "-106751d23h47m16.854775808s"},
	}
	for _, tt := range tests {
		if got := Duration(tt.in).String(); got != tt.want {
			t.Errorf("Duration(%d).String() = %q, want %q", int64(tt.in), got, tt.want)
		}
	}
}

func TestDurationText(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("1d12h")); err != nil || d.Duration() != 36*time.Hour {
		t.Fatalf("UnmarshalText(1d12h) = %v, %v", d, err)
	}
	if b, _ := d.MarshalText(); string(b) != "1d12h" {
		t.Errorf("MarshalText = %q, want 1d12h", b)
	}
	if err := d.UnmarshalText([]byte("soon")); err == nil {
		t.Error("UnmarshalText(soon) succeeded")
	}
}

// FuzzParseDuration checks that ParseDuration never panics, agrees with time.ParseDuration
// on what both take, and that String round-trips.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"0", "2s", "30d", "1d12h", "1.5h", "-1d", ".5s", "3µs", "1h1h",
		"106751d23h47m16.854775807s", "-106751d23h47m16.854775808s", "1.0000000001s", "9e9s", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if !strings.Contains(s, "d") {
			if want, werr := time.ParseDuration(s); (werr == nil) != (err == nil) || werr == nil && want != d {
				t.Fatalf("ParseDuration(%q) = %v, %v; time.ParseDuration = %v, %v", s, d, err, want, werr)
			}
		}
		if err != nil {
			return
		}
		str := Duration(d).String()
		back, err := ParseDuration(str)
		if err != nil || back != d {
			t.Fatalf("ParseDuration(%q) = %d; String = %q; parsed back = %d, %v", s, d, str, back, err)
		}
		if again := Duration(back).String(); again != str {
			t.Fatalf("String not stable: %q then %q", str, again)
		}
	})
}
