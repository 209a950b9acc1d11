package authz

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/earshot/earshot/device/wire"
)

// recurring makes terms a recurring consent: at most periodCap per period every, times
// payments (0: no count), until until.
func recurring(every wire.Period, times int, periodCap wire.Amount, until time.Time) func(*wire.Terms) {
	return func(t *wire.Terms) {
		t.Kind = wire.KindRecurring
		t.Conditions = &wire.Conditions{Until: until.UnixMilli(), Every: every, Times: times, PeriodCap: periodCap}
	}
}

func TestClaimsForKinds(t *testing.T) {
	until := t0.Add(30*24*time.Hour + 1500*time.Millisecond) // a fraction of a second: rounded down
	tests := []struct {
		name   string
		terms  func(*wire.Terms)
		expiry time.Time
		want   *Constraints
	}{
		{"one-off", nil, t0.Add(DefaultMandateTTL), nil},
		{"one-off with a tip cap", func(t *wire.Terms) { t.Conditions = &wire.Conditions{TipCap: 300} },
			t0.Add(DefaultMandateTTL), &Constraints{TipCap: 300}},
		{"price target", func(t *wire.Terms) {
			t.Kind, t.Conditions = wire.KindPriceTarget, &wire.Conditions{Until: until.UnixMilli()}
		}, until.Truncate(time.Second), nil},
		{"recurring", recurring(wire.PeriodWeek, 4, 1900, until), until.Truncate(time.Second),
			&Constraints{Every: wire.PeriodWeek, Times: 4, PeriodCap: 1900}},
		{"tip", func(t *wire.Terms) {
			t.Kind, t.Conditions = wire.KindTip, &wire.Conditions{Parent: "tx_parent"}
		}, t0.Add(DefaultMandateTTL), &Constraints{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			terms := testTerms("dev_a", "tx_1")
			if tt.terms != nil {
				tt.terms(&terms)
			}
			c, err := ClaimsFor(newChallenge(t, terms), testUser, testAgent, testIssuer, t0, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			if c.Kind != terms.Kind || c.Expiry != tt.expiry.Unix() || c.NotBefore != t0.Unix() ||
				!reflect.DeepEqual(c.Constraints, tt.want) {
				t.Fatalf("kind %s exp %d constraints %+v, want %s %d %+v", c.Kind, c.Expiry, c.Constraints,
					terms.Kind, tt.expiry.Unix(), tt.want)
			}
		})
	}

	t.Run("a tip is signed only once the caller set its parent", func(t *testing.T) {
		terms := testTerms("dev_a", "tx_2")
		tests[4].terms(&terms)
		c, err := ClaimsFor(newChallenge(t, terms), testUser, testAgent, testIssuer, t0, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		ks := newKeySet(t, genKey(t))
		if _, err := ks.Sign(c); !errors.Is(err, ErrInvalidClaims) {
			t.Fatalf("tip without a parent: %v, want ErrInvalidClaims", err)
		}
		c.Constraints.Parent = "mnd_parent"
		if _, err := ks.Sign(c); err != nil {
			t.Fatalf("tip with its parent: %v", err)
		}
	})

	t.Run("open validity is bounded", func(t *testing.T) {
		for _, tc := range []struct {
			until time.Time
			ok    bool
		}{{t0.Add(MaxOpenValidity), true}, {t0.Add(MaxOpenValidity + time.Millisecond), false}} {
			terms := testTerms("dev_a", "tx_3")
			recurring(wire.PeriodMonth, 0, 950, tc.until)(&terms)
			_, err := ClaimsFor(newChallenge(t, terms), testUser, testAgent, testIssuer, t0, 0, nil)
			if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrInvalidClaims) {
				t.Fatalf("until now+%s: %v, want ok %v", tc.until.Sub(t0), err, tc.ok)
			}
		}
	})
}

// Claims of each kind take only their own constraints; Sign (and Verify, Record)
// refuse the others.
func TestClaimsConstraints(t *testing.T) {
	base := testClaims(t) // one-off, AmountCap 950
	tests := []struct {
		name string
		kind wire.Kind
		k    *Constraints
		ok   bool
	}{
		{"one-off", wire.KindOneOff, nil, true},
		{"one-off, tip cap", wire.KindOneOff, &Constraints{TipCap: 1}, true},
		{"empty kind is one-off", "", &Constraints{TipCap: 1}, true},
		{"one-off, period", wire.KindOneOff, &Constraints{Every: wire.PeriodDay}, false},
		{"one-off, parent", wire.KindOneOff, &Constraints{Parent: "mnd_p"}, false},
		{"one-off, negative tip cap", wire.KindOneOff, &Constraints{TipCap: -1}, false},
		{"price target", wire.KindPriceTarget, nil, true},
		{"price target, tip cap", wire.KindPriceTarget, &Constraints{TipCap: 1}, false},
		{"recurring", wire.KindRecurring, &Constraints{Every: wire.PeriodMonth, PeriodCap: 950}, true},
		{"recurring, times", wire.KindRecurring, &Constraints{Every: wire.PeriodDay, Times: wire.MaxTimes, PeriodCap: 950}, true},
		{"recurring, no constraints", wire.KindRecurring, nil, false},
		{"recurring, no period", wire.KindRecurring, &Constraints{PeriodCap: 950}, false},
		{"recurring, unknown period", wire.KindRecurring, &Constraints{Every: "year", PeriodCap: 950}, false},
		{"recurring, period cap under one payment", wire.KindRecurring, &Constraints{Every: wire.PeriodDay, PeriodCap: 949}, false},
		{"recurring, too many times", wire.KindRecurring, &Constraints{Every: wire.PeriodDay, Times: wire.MaxTimes + 1, PeriodCap: 950}, false},
		{"recurring, negative times", wire.KindRecurring, &Constraints{Every: wire.PeriodDay, Times: -1, PeriodCap: 950}, false},
		{"recurring, tip cap", wire.KindRecurring, &Constraints{Every: wire.PeriodDay, PeriodCap: 950, TipCap: 1}, false},
		{"tip", wire.KindTip, &Constraints{Parent: "mnd_p"}, true},
		{"tip, no parent", wire.KindTip, nil, false},
		{"tip, a transaction as parent", wire.KindTip, &Constraints{Parent: "tx_1"}, false},
		{"tip on itself", wire.KindTip, &Constraints{Parent: base.ID}, false},
		{"tip, tip cap", wire.KindTip, &Constraints{Parent: "mnd_p", TipCap: 1}, false},
		{"unknown kind", "gift", nil, false},
	}
	ks := newKeySet(t, genKey(t))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			c.Kind, c.Constraints = tt.kind, tt.k
			_, err := ks.Sign(c)
			if tt.ok && err != nil || !tt.ok && !errors.Is(err, ErrInvalidClaims) {
				t.Fatalf("sign: %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestPeriodStart(t *testing.T) {
	jan31 := time.Date(2025, 1, 31, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		nbf        time.Time
		every      wire.Period
		now, start time.Time
	}{
		{"day, first", t0, wire.PeriodDay, t0.Add(23 * time.Hour), t0},
		{"day, boundary", t0, wire.PeriodDay, t0.Add(24 * time.Hour), t0.Add(24 * time.Hour)},
		{"day, third", t0, wire.PeriodDay, t0.Add(71*time.Hour + time.Minute), t0.Add(48 * time.Hour)},
		{"week, last millisecond", t0, wire.PeriodWeek, t0.Add(7*24*time.Hour - time.Millisecond), t0},
		{"week, second", t0, wire.PeriodWeek, t0.Add(7 * 24 * time.Hour), t0.Add(7 * 24 * time.Hour)},
		{"before nbf", t0, wire.PeriodWeek, t0.Add(-time.Hour), t0},
		{"month, first", t0, wire.PeriodMonth, time.Date(2025, 7, 1, 11, 59, 59, 0, time.UTC), t0},
		{"month, boundary", t0, wire.PeriodMonth, time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC),
			time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)},
		{"month, across a year", t0, wire.PeriodMonth, time.Date(2026, 2, 1, 11, 59, 0, 0, time.UTC),
			time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)},
		{"month from the 31st, in February", jan31, wire.PeriodMonth, time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC), jan31},
		{"month from the 31st, AddDate's 3 March", jan31, wire.PeriodMonth, time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC),
			time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)},
		{"month from the 31st, 31 March", jan31, wire.PeriodMonth, time.Date(2025, 4, 15, 0, 0, 0, 0, time.UTC),
			time.Date(2025, 3, 31, 9, 0, 0, 0, time.UTC)},
		{"month, in another zone", t0, wire.PeriodMonth,
			time.Date(2025, 7, 1, 20, 0, 0, 0, time.FixedZone("UTC+9", 9*3600)), // 11:00 UTC
			t0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := periodStart(tt.nbf, tt.every, tt.now); !got.Equal(tt.start) {
				t.Fatalf("periodStart(%s, %s, %s) = %s, want %s", tt.nbf, tt.every, tt.now, got, tt.start)
			}
		})
	}
}
