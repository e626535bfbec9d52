package main

import (
	"context"
	"encoding/json"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/switchboard/switchboard/auth"
	"github.com/switchboard/switchboard/gateway"
	"github.com/switchboard/switchboard/internal/loadtest"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/service"
	"github.com/switchboard/switchboard/state/memory"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseFlags(t *testing.T) {
	var stderr strings.Builder
	cfg, o, err := parseFlags([]string{"--scenario", "call", "--urls", "http://127.0.0.1:3001/, http://127.0.0.1:3002",
		"--rate", "200", "--duration", "10s", "--pids", "12,34", "--json", "--talk", "1s"},
		env(map[string]string{"SWITCHBOARD_JWT_SECRET": "from-env"}), &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Scenario != "call" || len(cfg.URLs) != 2 || cfg.URLs[0] != "http://127.0.0.1:3001" || cfg.Rate != 200 ||
		cfg.Duration != 10*time.Second || len(cfg.PIDs) != 2 || cfg.PIDs[1] != 34 || !o.json || cfg.Talk != time.Second {
		t.Fatalf("config %+v, options %+v", cfg, o)
	}
	if cfg.Secret != "from-env" {
		t.Fatalf("secret from the environment: %q", cfg.Secret)
	}
	cfg, _, _ = parseFlags([]string{"--jwt-secret", "flag"}, env(map[string]string{"SWITCHBOARD_JWT_SECRET": "env"}), &stderr)
	if cfg.Secret != "flag" {
		t.Fatalf("the flag overrides the environment: %q", cfg.Secret)
	}
	if _, _, err := parseFlags([]string{"--pids", "x"}, env(nil), &stderr); err == nil {
		t.Fatal("bad pid accepted")
	}
}

func TestRefusals(t *testing.T) {
	for _, args := range [][]string{
		{"--urls", "http://192.0.2.1:3000"},
		{"--conns", "60000"},
		{"--duration", "1h"},
		{"--scenario", "nope"},
		{"extra-arg"},
	} {
		var stdout, stderr strings.Builder
		if code := run(context.Background(), args, env(nil), &stdout, &stderr); code != 1 {
			t.Errorf("%v: exit %d, want 1 (stderr %s)", args, code, stderr.String())
		}
		if stdout.Len() != 0 {
			t.Errorf("%v: printed a report for a refused run", args)
		}
	}
	var stdout, stderr strings.Builder
	if code := run(context.Background(), []string{"-h"}, env(nil), &stdout, &stderr); code != 0 || !strings.Contains(stderr.String(), "usage: switchboard-load") {
		t.Fatalf("-h: exit %d, %s", code, stderr.String())
	}
}

// A whole run through the command against an in-process node, JSON out.
func TestRunJSON(t *testing.T) {
	const secret = "cmd-test-secret-0123456789abcdef0123"
	v, err := auth.NewVerifier(auth.KeyConfig{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	scfg := service.DefaultConfig()
	scfg.NodeID = "cmd-test"
	n, err := node.New(node.Options{Service: scfg, Gateway: gateway.DefaultConfig(), Store: memory.New(time.Now),
		Verifier: v, Logger: zerolog.Nop(), Loops: true, DrainTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = n.Serve(l) }()
	defer n.Shutdown(context.Background())

	var stdout, stderr strings.Builder
	code := run(context.Background(), []string{"--scenario", "call", "--urls", "http://" + l.Addr().String(),
		"--conns", "12", "--rate", "5", "--duration", "1s", "--quiet", "200ms", "--json", "--strict", "-q"},
		env(map[string]string{"SWITCHBOARD_JWT_SECRET": secret}), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr.String(), stdout.String())
	}
	var rep loadtest.Report
	if err := json.Unmarshal([]byte(stdout.String()), &rep); err != nil {
		t.Fatalf("JSON report: %v\n%s", err, stdout.String())
	}
	if rep.Scenario != "call" || rep.Completed == 0 || rep.NoFileLimit == 0 || rep.Procs != runtime.GOMAXPROCS(0) || rep.Deliveries["call:incoming"] == nil {
		t.Fatalf("report %+v", rep)
	}
	if stderr.Len() != 0 {
		t.Fatalf("-q printed progress: %s", stderr.String())
	}
}
