package loadtest

import (
	"strings"
	"testing"
	"time"
)

func TestCheckTarget(t *testing.T) {
	ok := []string{
		"http://127.0.0.1:3001", "http://127.1.2.3:80", "ws://[::1]:3000", "https://localhost:8443", "http://LOCALHOST:1",
	}
	for _, u := range ok {
		if err := CheckTarget(u, false); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
	remote := []string{
		"http://10.0.0.1:3000", "http://example.com:3000", "http://0.0.0.0:3000", "http://[::]:3000",
		"http://192.168.1.5", "http://localhost.example.com", "http://127.0.0.1.nip.io:3000",
	}
	for _, u := range remote {
		err := CheckTarget(u, false)
		if err == nil || !strings.Contains(err.Error(), "--allow-remote") {
			t.Errorf("%s: got %v, want a refusal naming --allow-remote", u, err)
		}
		if err := CheckTarget(u, true); err != nil {
			t.Errorf("%s with --allow-remote: %v", u, err)
		}
	}
	for _, u := range []string{"127.0.0.1:3000", "ftp://127.0.0.1", "http://", "://x"} {
		if err := CheckTarget(u, true); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
}

func validConfig(s string) Config {
	c := Config{Scenario: s, URLs: []string{"http://127.0.0.1:3001"}}
	c.Defaults()
	return c
}

func TestValidateDefaults(t *testing.T) {
	for _, s := range []string{ScenarioIdle, ScenarioCall, ScenarioFanout, ScenarioPresence} {
		c := validConfig(s)
		if err := c.Validate(); err != nil {
			t.Errorf("%s defaults: %v", s, err)
		}
	}
}

func TestValidateHardCaps(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"too many connections", func(c *Config) { c.Conns = MaxConns + 1 }, "connections: at most"},
		{"watchers count", func(c *Config) { c.Scenario = ScenarioPresence; c.Conns = MaxConns; c.Watchers = 1 }, "connections: at most"},
		{"duration over 10 min", func(c *Config) { c.Duration = 11 * time.Minute }, "--duration"},
		{"negative duration", func(c *Config) { c.Duration = -time.Second }, "--duration"},
		{"huge count", func(c *Config) { c.Count = MaxCount + 1 }, "--count"},
		{"huge rate", func(c *Config) { c.Rate = 1e9 }, "--rate"},
		{"NaN rate", func(c *Config) { c.Rate = zero() / zero() }, "--rate"},
		{"devices over the cap", func(c *Config) { c.Devices = MaxDevices + 1 }, "--devices"},
		{"no devices", func(c *Config) { c.Devices = -1 }, "--devices"},
		{"remote URL", func(c *Config) { c.URLs = []string{"http://10.1.1.1:3000"} }, "--allow-remote"},
		{"unknown scenario", func(c *Config) { c.Scenario = "storm" }, "unknown scenario"},
		{"call needs two users", func(c *Config) { c.Scenario = ScenarioCall; c.Conns = 3; c.Devices = 2 }, "two users"},
		{"huge timeout", func(c *Config) { c.DeliveryTimeout = time.Hour }, "--delivery-timeout"},
		{"huge talk", func(c *Config) { c.Talk = time.Hour }, "--talk"},
		{"huge cookie", func(c *Config) { c.CookieBytes = 1 << 20 }, "--cookie-bytes"},
		{"both keys", func(c *Config) { c.Secret = "s"; c.PrivateKeyFile = "k.pem" }, "either"},
		{"no URL", func(c *Config) { c.URLs = nil }, "no node URL"},
		{"bad pid", func(c *Config) { c.PIDs = []int{-1} }, "--pids"},
	}
	for _, tt := range tests {
		c := validConfig(ScenarioIdle)
		tt.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
}

func zero() float64 { return 0 }

// Whatever the flags, a run's wall clock is bounded.
func TestRunBudgetBounded(t *testing.T) {
	c := validConfig(ScenarioPresence)
	c.Conns, c.Watchers, c.ConnectRate = 0, MaxConns, 1e-9
	c.Duration = MaxDuration
	c.DeliveryTimeout, c.AckTimeout, c.Quiet, c.Hold, c.PresenceGrace = MaxTimeout, MaxTimeout, MaxTimeout, MaxTimeout, MaxTimeout
	c.Talk = MaxTimeout
	if b := c.runBudget(); b > MaxRun || b < MaxDuration {
		t.Fatalf("budget %v, want within (%v, %v]", b, MaxDuration, MaxRun)
	}
	if MaxRun > 30*time.Minute {
		t.Fatalf("MaxRun %v", MaxRun)
	}
	small := validConfig(ScenarioCall)
	if b := small.runBudget(); b > MaxSetup+2*time.Minute {
		t.Fatalf("default call run budget %v is larger than needed", b)
	}
}

func TestOps(t *testing.T) {
	c := Config{Rate: 200, Duration: 10 * time.Second}
	if c.Ops() != 2000 {
		t.Fatalf("rate × duration: %d", c.Ops())
	}
	c.Count = 50
	if c.Ops() != 50 {
		t.Fatalf("count below rate × duration: %d", c.Ops())
	}
	c.Count = 1_000_000
	if c.Ops() != 2000 {
		t.Fatalf("count above rate × duration is capped by time: %d", c.Ops())
	}
	c = Config{Rate: 0.1, Duration: time.Second}
	if c.Ops() != 1 {
		t.Fatalf("at least one operation: %d", c.Ops())
	}
}

func TestPopulationLayout(t *testing.T) {
	cfg := validConfig(ScenarioCall)
	cfg.URLs = []string{"http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"}
	cfg.Devices = 3
	cfg.RunID = "r"
	p := newPopulation(cfg, "u", 10) // 3 users × 3 devices; the tenth is dropped
	if p.size() != 9 || p.users != 3 {
		t.Fatalf("size %d users %d", p.size(), p.users)
	}
	for u := 0; u < p.users; u++ {
		seen := map[string]bool{}
		for d := 0; d < p.devices; d++ {
			k := p.index(u, d)
			if m := p.member(k); m.User != u || m.Device != d {
				t.Fatalf("member(%d) = %+v", k, m)
			}
			seen[p.url(k)] = true
		}
		if len(seen) != 3 {
			t.Fatalf("user %d's devices share nodes: %v", u, seen)
		}
	}
	if p.userID(2) != "lt-r-u2" || deviceID(1) != "d1" {
		t.Fatalf("ids: %s %s", p.userID(2), deviceID(1))
	}
}
