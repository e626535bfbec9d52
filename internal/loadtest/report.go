package loadtest

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a run; its JSON form is what --json prints.
type Report struct {
	Scenario string    `json:"scenario"`
	RunID    string    `json:"run_id"`
	URLs     []string  `json:"urls"`
	Started  time.Time `json:"started"`
	// ElapsedSeconds is the whole run, setup and teardown included.
	ElapsedSeconds float64 `json:"elapsed_seconds"`

	Conns   int `json:"conns"`
	Devices int `json:"devices"`
	Users   int `json:"users"`

	Connect  ConnectReport   `json:"connect"`
	Schedule *ScheduleReport `json:"schedule,omitempty"`
	// Completed operations (calls, broadcasts, churn cycles) in which
	// every ack succeeded and every expected delivery arrived on time.
	Completed          int64   `json:"completed"`
	CompletedPerSecond float64 `json:"completed_per_second"`

	// Steps are latencies in the order of the scenario's flow.
	Steps []Step `json:"steps"`
	// Deliveries by event name.
	Deliveries map[string]*Deliveries `json:"deliveries"`
	// Errors by "step: code".
	Errors map[string]int64 `json:"errors"`
	// Events received by name, all sockets (broadcasts the scenario does
	// not measure, such as presence, show here too).
	Events map[string]int64 `json:"events_received"`

	Servers []ServerReport `json:"servers,omitempty"`
	// Nodes are the nodes' own memory figures at the end of an idle hold.
	Nodes            []NodeMemory `json:"nodes,omitempty"`
	ServerCPUPerOpMs float64      `json:"server_cpu_per_op_ms,omitempty"`
	// ServerCPUPerDeliveryUs is the servers' CPU over the measured window
	// divided by the broadcast deliveries that arrived in it (presence).
	ServerCPUPerDeliveryUs float64 `json:"server_cpu_per_delivery_us,omitempty"`
	// Client is the tool's own cost over the run.
	Client ClientCost `json:"client"`

	Notes []string `json:"notes,omitempty"`

	// NoFileLimit is the RLIMIT_NOFILE the tool ran with (set by the
	// command).
	NoFileLimit uint64 `json:"nofile_limit,omitempty"`
	// Procs is the tool's GOMAXPROCS (set by the command): on a machine
	// the tool shares with the servers, part of what the figures mean.
	Procs int `json:"gomaxprocs,omitempty"`
}

// Step is one measured step.
type Step struct {
	Name string `json:"name"`
	Summary
}

// ConnectReport describes connecting the population.
type ConnectReport struct {
	Attempted   int64   `json:"attempted"`
	Connected   int64   `json:"connected"`
	Failed      int64   `json:"failed"`
	WallSeconds float64 `json:"wall_seconds"`
	PerSecond   float64 `json:"per_second"`
	Latency     Summary `json:"latency"`
	FirstError  string  `json:"first_error,omitempty"`
}

// ScheduleReport describes the open-loop schedule.
type ScheduleReport struct {
	OfferedPerSecond float64 `json:"offered_per_second"`
	// Scheduled operations; Started = Scheduled - Dropped.
	Scheduled int64 `json:"scheduled"`
	Started   int64 `json:"started"`
	// Dropped because the in-flight cap was reached (the tool or the
	// server could not keep up).
	Dropped int64 `json:"dropped"`
	// WindowSeconds is the span of the schedule, ElapsedSeconds until the
	// last operation finished.
	WindowSeconds  float64 `json:"window_seconds"`
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	// Lag is how late operations started against the schedule.
	Lag Summary `json:"lag"`
}

// ServerReport is one --pids process.
type ServerReport struct {
	PID           int     `json:"pid"`
	RSSBeforeKiB  int64   `json:"rss_before_kib"`
	RSSAfterKiB   int64   `json:"rss_after_kib"`
	RSSPerConnKiB float64 `json:"rss_per_conn_kib,omitempty"`
	CPUSeconds    float64 `json:"cpu_seconds"`
}

// ClientCost is the tool's own RSS at the end and CPU over the run.
type ClientCost struct {
	RSSKiB     int64   `json:"rss_kib"`
	CPUSeconds float64 `json:"cpu_seconds"`
}

func newReport(cfg Config) *Report {
	return &Report{Scenario: cfg.Scenario, RunID: cfg.RunID, URLs: cfg.URLs, Started: time.Now(),
		Devices: cfg.Devices, Deliveries: map[string]*Deliveries{}}
}

func (r *Report) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

func (r *Report) step(name string, l *Latency) {
	r.Steps = append(r.Steps, Step{Name: name, Summary: l.Summary()})
}

func (r *Report) deliveries(event string) *Deliveries {
	d := r.Deliveries[event]
	if d == nil {
		d = &Deliveries{}
		r.Deliveries[event] = d
	}
	return d
}

// Lost sums lost deliveries over every event.
func (r *Report) Lost() int64 {
	var n int64
	for _, d := range r.Deliveries {
		n += d.Lost
	}
	return n
}

// Duplicates sums duplicate deliveries over every event.
func (r *Report) Duplicates() int64 {
	var n int64
	for _, d := range r.Deliveries {
		n += d.Duplicates
	}
	return n
}

// WriteTable prints the report for humans.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "scenario %s  run %s  nodes %s\n", r.Scenario, r.RunID, strings.Join(r.URLs, ","))
	fmt.Fprintf(&b, "population: %d connections, %d users × %d devices; elapsed %.1fs\n", r.Conns, r.Users, r.Devices, r.ElapsedSeconds)
	c := r.Connect
	fmt.Fprintf(&b, "connect: %d/%d in %.2fs = %.0f/s, %d failed; handshake p50 %.2fms p99 %.2fms max %.2fms\n",
		c.Connected, c.Attempted, c.WallSeconds, c.PerSecond, c.Failed, c.Latency.P50, c.Latency.P99, c.Latency.Max)
	if c.FirstError != "" {
		fmt.Fprintf(&b, "  first connect error: %s\n", c.FirstError)
	}
	if s := r.Schedule; s != nil {
		fmt.Fprintf(&b, "schedule: offered %.1f/s, %d scheduled, %d dropped (in-flight cap), window %.1fs, last done at %.1fs; start lag p99 %.2fms max %.2fms\n",
			s.OfferedPerSecond, s.Scheduled, s.Dropped, s.WindowSeconds, s.ElapsedSeconds, s.Lag.P99, s.Lag.Max)
		fmt.Fprintf(&b, "completed: %d (%.1f/s)\n", r.Completed, r.CompletedPerSecond)
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	if len(r.Steps) > 0 {
		fmt.Fprintln(tw, "step\tcount\tp50 ms\tp95 ms\tp99 ms\tmax ms\t")
		for _, s := range r.Steps {
			fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t\n", s.Name, s.Count, s.P50, s.P95, s.P99, s.Max)
		}
		fmt.Fprintln(tw, "\t\t\t\t\t\t")
	}
	if len(r.Deliveries) > 0 {
		fmt.Fprintln(tw, "delivery\texpected\ton time\tlost\tlate\tduplicates\tunexpected\t")
		for _, k := range sortedKeys(r.Deliveries) {
			d := r.Deliveries[k]
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t\n", k, d.Expected, d.OnTime, d.Lost, d.Late, d.Duplicates, d.Unexpected)
		}
		fmt.Fprintln(tw, "\t\t\t\t\t\t\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Errors) > 0 {
		b.WriteString("errors:\n")
		for _, k := range sortedKeys(r.Errors) {
			fmt.Fprintf(&b, "  %-40s %d\n", k, r.Errors[k])
		}
	} else {
		b.WriteString("errors: none\n")
	}
	if len(r.Events) > 0 {
		b.WriteString("events received (all sockets):\n")
		for _, k := range sortedKeys(r.Events) {
			fmt.Fprintf(&b, "  %-40s %d\n", k, r.Events[k])
		}
	}
	for _, s := range r.Servers {
		fmt.Fprintf(&b, "server pid %d: RSS %d → %d KiB", s.PID, s.RSSBeforeKiB, s.RSSAfterKiB)
		if s.RSSPerConnKiB != 0 {
			fmt.Fprintf(&b, " (%.2f KiB per connection)", s.RSSPerConnKiB)
		}
		fmt.Fprintf(&b, ", CPU %.2fs\n", s.CPUSeconds)
	}
	for _, n := range r.Nodes {
		fmt.Fprintf(&b, "node %s: %.0f connections, live heap %.1f MiB at its last GC", n.URL, n.Connections, n.LiveHeapBytes/(1<<20))
		if n.LiveHeapPerConnKiB != 0 {
			fmt.Fprintf(&b, " (%.2f KiB per connection)", n.LiveHeapPerConnKiB)
		}
		fmt.Fprintf(&b, ", %.0f goroutines\n", n.Goroutines)
	}
	if r.ServerCPUPerOpMs > 0 {
		fmt.Fprintf(&b, "server CPU per completed operation: %.3f ms\n", r.ServerCPUPerOpMs)
	}
	if r.ServerCPUPerDeliveryUs > 0 {
		fmt.Fprintf(&b, "server CPU per delivered broadcast event: %.1f µs\n", r.ServerCPUPerDeliveryUs)
	}
	fmt.Fprintf(&b, "tool: RSS %d KiB, CPU %.2fs", r.Client.RSSKiB, r.Client.CPUSeconds)
	if r.Procs > 0 {
		fmt.Fprintf(&b, ", GOMAXPROCS %d", r.Procs)
	}
	if r.NoFileLimit > 0 {
		fmt.Fprintf(&b, ", RLIMIT_NOFILE %d", r.NoFileLimit)
	}
	b.WriteString("\n")
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
