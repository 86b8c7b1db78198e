package config

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a length of time written as a string with units, days included: "30d",
// "1d12h", "2s", "1h30m", "250ms". Its text form (String, MarshalText) prints days where
// whole, so 720h prints as "30d" and 36h as "1d12h".
type Duration time.Duration

// Duration returns d as a time.Duration.
func (d Duration) Duration() time.Duration { return time.Duration(d) }

// String formats d with the largest units that fit: days, hours, minutes, then seconds with a
// fraction ("1d12h", "1h0.5s"). A duration under a second prints as time.Duration does
// ("250ms", "1.5µs"); zero is "0s". ParseDuration reads every string String returns back to
// the same duration.
func (d Duration) String() string {
	if d == 0 {
		return "0s"
	}
	var b []byte
	// The magnitude as uint64, so that the most negative duration has one too.
	u := uint64(d)
	if d < 0 {
		b = append(b, '-')
		u = -u
	}
	if u < uint64(time.Second) {
		return string(b) + time.Duration(u).String()
	}
	const day = uint64(24 * time.Hour)
	if days := u / day; days > 0 {
		b = strconv.AppendUint(b, days, 10)
		b = append(b, 'd')
		u %= day
	}
	if h := u / uint64(time.Hour); h > 0 {
		b = strconv.AppendUint(b, h, 10)
		b = append(b, 'h')
		u %= uint64(time.Hour)
	}
	if m := u / uint64(time.Minute); m > 0 {
		b = strconv.AppendUint(b, m, 10)
		b = append(b, 'm')
		u %= uint64(time.Minute)
	}
	if u > 0 {
		b = strconv.AppendUint(b, u/uint64(time.Second), 10)
		if frac := u % uint64(time.Second); frac > 0 {
			digits := []byte(fmt.Sprintf("%09d", frac))
			for digits[len(digits)-1] == '0' {
				digits = digits[:len(digits)-1]
			}
			b = append(b, '.')
			b = append(b, digits...)
		}
		b = append(b, 's')
	}
	return string(b)
}

// MarshalText implements encoding.TextMarshaler with String's form.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseDuration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler: a duration is a string for ParseDuration, or
// the number 0. Any other number is refused rather than given a unit, since "30" could mean
// seconds or days. The error says what the value must be, for the config's messages.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!int", "!!float":
			if n.Value == "0" {
				*d = 0
				return nil
			}
			return fmt.Errorf(`must be a duration with a unit, such as "%ss" or "%sd", not the number %s`, n.Value, n.Value, n.Value)
		case "!!str":
			return d.UnmarshalText([]byte(n.Value))
		}
	}
	return fmt.Errorf(`must be a duration such as "30s" or "1d", not %s`, describe(n))
}

// unitNanos maps the units ParseDuration takes to their length in nanoseconds.
var unitNanos = map[string]uint64{
	"ns": uint64(time.Nanosecond),
	"us": uint64(time.Microsecond),
	"µs": uint64(time.Microsecond), // U+00B5 micro sign, as time.Duration prints it
	"μs": uint64(time.Microsecond), // U+03BC Greek mu
	"ms": uint64(time.Millisecond),
	"s":  uint64(time.Second),
	"m":  uint64(time.Minute),
	"h":  uint64(time.Hour),
	"d":  uint64(24 * time.Hour),
}

// errDurationRange is returned for a duration beyond about 106751 days (time.Duration's range).
var errDurationRange = errors.New("out of range (the longest duration is 106751d)")

// ParseDuration parses a duration string: an optional sign, then one or more decimal numbers,
// each with an optional fraction and a unit: "d" (24h), "h", "m", "s", "ms", "us" (or "µs"),
// "ns". Examples: "30d", "1d12h", "1.5h", "-2s". "0" alone needs no unit. It accepts
// everything time.ParseDuration accepts, plus days.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "0" {
		return 0, nil
	}
	if s == "" {
		return 0, fmt.Errorf("invalid duration %q: empty", orig)
	}
	var total uint64
	for s != "" {
		if c := s[0]; c != '.' && (c < '0' || c > '9') {
			return 0, fmt.Errorf("invalid duration %q: expected a number at %q", orig, s)
		}
		n := len(s)
		v, rest, ok := leadingInt(s)
		if !ok {
			return 0, fmt.Errorf("invalid duration %q: %w", orig, errDurationRange)
		}
		s = rest
		hadInt := n != len(s)
		var frac uint64
		scale := 1.0
		hadFrac := false
		if s != "" && s[0] == '.' {
			s = s[1:]
			n := len(s)
			frac, scale, s = leadingFraction(s)
			hadFrac = n != len(s)
		}
		if !hadInt && !hadFrac {
			return 0, fmt.Errorf("invalid duration %q: expected a number at %q", orig, "."+s)
		}
		i := 0
		for ; i < len(s); i++ {
			if c := s[i]; c == '.' || '0' <= c && c <= '9' {
				break
			}
		}
		if i == 0 {
			return 0, fmt.Errorf("invalid duration %q: missing unit (d, h, m, s, ms, us or ns)", orig)
		}
		u := s[:i]
		s = s[i:]
		unit, ok := unitNanos[u]
		if !ok {
			return 0, fmt.Errorf("invalid duration %q: unknown unit %q (use d, h, m, s, ms, us or ns)", orig, u)
		}
		if v > 1<<63/unit {
			return 0, fmt.Errorf("invalid duration %q: %w", orig, errDurationRange)
		}
		v *= unit
		if frac > 0 {
			// float64 is exact here for every fraction String prints: frac < 10^9 and
			// unit/scale is a whole number.
			v += uint64(float64(frac) * (float64(unit) / scale))
			if v > 1<<63 {
				return 0, fmt.Errorf("invalid duration %q: %w", orig, errDurationRange)
			}
		}
		total += v
		if total > 1<<63 {
			return 0, fmt.Errorf("invalid duration %q: %w", orig, errDurationRange)
		}
	}
	if neg {
		return -time.Duration(total), nil
	}
	if total > 1<<63-1 {
		return 0, fmt.Errorf("invalid duration %q: %w", orig, errDurationRange)
	}
	return time.Duration(total), nil
}

// leadingInt consumes the leading [0-9]* of s. ok is false on overflow.
func leadingInt(s string) (x uint64, rest string, ok bool) {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			break
		}
		if x > 1<<63/10 {
			return 0, "", false
		}
		x = x*10 + uint64(c-'0')
		if x > 1<<63 {
			return 0, "", false
		}
	}
	return x, s[i:], true
}

// leadingFraction consumes the leading [0-9]* of s as the digits after a decimal point:
// x/scale is their value. Digits beyond what fits are read but ignored.
func leadingFraction(s string) (x uint64, scale float64, rest string) {
	i := 0
	scale = 1
	overflow := false
	for ; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			break
		}
		if overflow {
			continue
		}
		if x > (1<<63-1)/10 {
			overflow = true
			continue
		}
		y := x*10 + uint64(c-'0')
		if y > 1<<63 {
			overflow = true
			continue
		}
		x = y
		scale *= 10
	}
	return x, scale, s[i:]
}
