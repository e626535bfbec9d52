package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/auth"
)

// ErrInvalid is matched by every error Load returns except a help request.
var ErrInvalid = errors.New("invalid configuration")

// Error lists every problem Load found, each naming the environment variable
// or flag it concerns. It never contains a secret.
type Error struct {
	Problems []string
}

// Error renders all problems, one per line.
func (e *Error) Error() string {
	var b strings.Builder
	if len(e.Problems) == 1 {
		b.WriteString("invalid configuration: ")
		b.WriteString(e.Problems[0])
		return b.String()
	}
	fmt.Fprintf(&b, "invalid configuration (%d problems):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// helpError is returned for -h/--help: its message is the usage text and it
// matches flag.ErrHelp.
type helpError struct{}

func (helpError) Error() string        { return Usage() }
func (helpError) Is(target error) bool { return target == flag.ErrHelp }

// Log levels accepted by SWITCHBOARD_LOG_LEVEL.
var logLevels = []string{"debug", "info", "warn", "error"}

// maxNodeIDBytes bounds SWITCHBOARD_NODE_ID.
const maxNodeIDBytes = 128

// rawValue is the flag.Value of every setting: it keeps the text, parsed
// later together with the environment and the default.
type rawValue struct {
	text   string
	set    bool
	isBool bool
}

func (v *rawValue) String() string {
	if v == nil {
		return ""
	}
	return v.text
}

func (v *rawValue) Set(s string) error { v.text, v.set = s, true; return nil }

// IsBoolFlag lets a boolean setting be given as a bare --flag.
func (v *rawValue) IsBoolFlag() bool { return v.isBool }

// Load reads the configuration: for each setting the flag in args if given,
// else the environment variable (getenv, e.g. os.Getenv; an empty value
// counts as unset), else the default. It validates the result and returns
// one *Error (matching ErrInvalid) listing every problem, or, for -h/--help,
// an error matching flag.ErrHelp whose message is the usage text. args are
// the arguments after the program name.
func Load(args []string, getenv func(string) string) (Config, error) {
	fs := flag.NewFlagSet("switchboard", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	raws := make([]rawValue, len(settings))
	var probe Config
	for i, s := range settings {
		_, raws[i].isBool = s.field(&probe).(*bool)
		fs.Var(&raws[i], s.flag(), s.help)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Config{}, helpError{}
		}
		return Config{}, &Error{Problems: []string{err.Error()}}
	}

	l := loader{origin: make(map[string]string, len(settings)), bad: make(map[string]bool)}
	if fs.NArg() > 0 {
		l.problem("unexpected argument %q", fs.Arg(0))
	}
	var c Config
	for i, s := range settings {
		text, origin := s.def, s.env()
		if v := getenv(s.env()); v != "" {
			if s.redact != secret {
				// Secrets are taken byte for byte; a blank value of
				// another setting counts as unset.
				v = strings.TrimSpace(v)
			}
			if v != "" {
				text = v
			}
		}
		if raws[i].set {
			text, origin = raws[i].text, "--"+s.flag()
			if s.redact != secret {
				text = strings.TrimSpace(text)
			}
		}
		l.origin[s.name] = origin
		if err := parseInto(s.field(&c), text, s.zero); err != nil {
			l.bad[s.name] = true
			if s.redact == shown {
				l.problem("%s: %q %s", origin, clip(text), err)
			} else {
				l.problem("%s: %s", origin, err)
			}
		}
	}
	l.validate(&c)
	if len(l.problems) > 0 {
		return Config{}, &Error{Problems: l.problems}
	}
	return c, nil
}

// parseInto parses text into the field ptr points to; a number or duration
// must be positive, with zero only not negative. Errors are phrases that
// follow the value, e.g. "is not a duration".
func parseInto(ptr any, text string, zero bool) error {
	switch p := ptr.(type) {
	case *string:
		*p = text
	case *[]string:
		*p = splitList(text)
	case *bool:
		if text == "" {
			*p = false
			return nil
		}
		b, err := strconv.ParseBool(text)
		if err != nil {
			return errors.New("is not true or false")
		}
		*p = b
	case *int:
		n, err := strconv.Atoi(text)
		switch {
		case zero && (err != nil || n < 0):
			return errors.New("is not a whole number, 0 or more")
		case !zero && (err != nil || n <= 0):
			return errors.New("is not a positive whole number")
		}
		*p = n
	case *time.Duration:
		d, err := time.ParseDuration(text)
		if err != nil {
			return errors.New("is not a duration such as 60s, 1m30s or 168h")
		}
		switch {
		case zero && d < 0:
			return errors.New("must not be negative")
		case !zero && d <= 0:
			return errors.New("must be positive")
		}
		*p = d
	default:
		panic(fmt.Sprintf("config: unsupported field type %T", ptr))
	}
	return nil
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(text string) []string {
	var out []string
	for _, part := range strings.Split(text, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// clip shortens a value quoted in an error message.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}

// loader accumulates problems while loading.
type loader struct {
	problems []string
	// origin maps a setting name to where its value came from: the flag
	// (--ring-timeout) if given, else the environment variable name.
	origin map[string]string
	// bad holds the settings that failed to parse; cross-field checks
	// skip them to avoid follow-on noise.
	bad map[string]bool
}

func (l *loader) problem(format string, args ...any) {
	l.problems = append(l.problems, fmt.Sprintf(format, args...))
}

// of names the setting filling ptr for a message.
func (l *loader) of(c *Config, ptr any) string { return l.origin[lookup(c, ptr).name] }

// ok reports whether every setting filling ptrs parsed.
func (l *loader) ok(c *Config, ptrs ...any) bool {
	for _, p := range ptrs {
		if l.bad[lookup(c, p).name] {
			return false
		}
	}
	return true
}

// maxBroadcastDelay bounds SWITCHBOARD_WS_BROADCAST_DELAY.
const maxBroadcastDelay = 100 * time.Millisecond

// validate checks values and relations between them.
func (l *loader) validate(c *Config) {
	if err := checkHostPort(c.Addr, true); err != nil {
		l.problem("%s: %q %s", l.of(c, &c.Addr), clip(c.Addr), err)
	}
	if c.DebugAddr != "" {
		if err := checkHostPort(c.DebugAddr, true); err != nil {
			l.problem("%s: %q %s", l.of(c, &c.DebugAddr), clip(c.DebugAddr), err)
		} else if c.DebugAddr == c.Addr {
			l.problem("%s must differ from %s", l.of(c, &c.DebugAddr), l.of(c, &c.Addr))
		}
	}

	if c.NodeID == "" {
		c.NodeID = generateNodeID()
	} else if err := checkNodeID(c.NodeID); err != nil {
		l.problem("%s: %q %s", l.of(c, &c.NodeID), clip(c.NodeID), err)
	}

	level := strings.ToLower(c.LogLevel)
	known := false
	for _, lv := range logLevels {
		known = known || level == lv
	}
	if known {
		c.LogLevel = level
	} else {
		l.problem("%s: %q is not one of %s", l.of(c, &c.LogLevel), clip(c.LogLevel), strings.Join(logLevels, ", "))
	}

	l.validateRedis(c)
	l.validateJWT(c)

	if l.ok(c, &c.Heartbeat, &c.PresenceTTL) && c.PresenceTTL <= c.Heartbeat {
		l.problem("%s (%s) must be longer than %s (%s), or every device goes offline between heartbeats",
			l.of(c, &c.PresenceTTL), c.PresenceTTL, l.of(c, &c.Heartbeat), c.Heartbeat)
	}
	if l.ok(c, &c.WSMaxQueueBytes, &c.MaxPayloadBytes) && c.WSMaxQueueBytes < 2*c.MaxPayloadBytes {
		l.problem("%s (%d) must be at least twice %s (%d), or a client is cut off as soon as two large events queue",
			l.of(c, &c.WSMaxQueueBytes), c.WSMaxQueueBytes, l.of(c, &c.MaxPayloadBytes), c.MaxPayloadBytes)
	}
	if l.ok(c, &c.WSBroadcastDelay) && c.WSBroadcastDelay > maxBroadcastDelay {
		l.problem("%s (%s) must be at most %s: members would see presence and meeting events lag",
			l.of(c, &c.WSBroadcastDelay), c.WSBroadcastDelay, maxBroadcastDelay)
	}
	if l.ok(c, &c.NodeRefresh, &c.NodeLease) && c.NodeRefresh >= c.NodeLease {
		l.problem("%s (%s) must be shorter than %s (%s), or the lease lapses between refreshes",
			l.of(c, &c.NodeRefresh), c.NodeRefresh, l.of(c, &c.NodeLease), c.NodeLease)
	}
}

// validateRedis checks the Redis topology settings.
func (l *loader) validateRedis(c *Config) {
	if c.RedisURL != "" {
		// The URL may carry a password: never quote it.
		u, err := url.Parse(c.RedisURL)
		switch {
		case err != nil:
			l.problem("%s: is not a valid URL", l.of(c, &c.RedisURL))
		case u.Scheme != "redis" && u.Scheme != "rediss":
			l.problem("%s: the scheme must be redis:// or rediss://", l.of(c, &c.RedisURL))
		case u.Host == "":
			l.problem("%s: the URL has no host", l.of(c, &c.RedisURL))
		}
	}
	for _, list := range []*[]string{&c.RedisClusterAddrs, &c.RedisSentinelAddrs} {
		for _, addr := range *list {
			if err := checkHostPort(addr, false); err != nil {
				l.problem("%s: %q %s", l.of(c, list), clip(addr), err)
			}
		}
	}
	if len(c.RedisSentinelAddrs) > 0 && c.RedisSentinelMaster == "" {
		l.problem("%s needs %s, the name of the master the Sentinels watch",
			l.of(c, &c.RedisSentinelAddrs), l.of(c, &c.RedisSentinelMaster))
	}
	if len(c.RedisSentinelAddrs) == 0 && c.RedisSentinelMaster != "" {
		l.problem("%s is set but %s is not", l.of(c, &c.RedisSentinelMaster), l.of(c, &c.RedisSentinelAddrs))
	}
	var topologies []string
	if c.RedisURL != "" {
		topologies = append(topologies, l.of(c, &c.RedisURL))
	}
	if len(c.RedisClusterAddrs) > 0 {
		topologies = append(topologies, l.of(c, &c.RedisClusterAddrs))
	}
	if len(c.RedisSentinelAddrs) > 0 {
		topologies = append(topologies, l.of(c, &c.RedisSentinelAddrs))
	}
	if len(topologies) > 1 {
		l.problem("set only one of %s: they are alternative ways to reach Redis", strings.Join(topologies, ", "))
	}
	if c.RedisShardedPubSub && c.Embedded() {
		l.problem("%s needs a Redis (%s, %s or %s)", l.of(c, &c.RedisShardedPubSub),
			l.of(c, &c.RedisURL), l.of(c, &c.RedisClusterAddrs), l.of(c, &c.RedisSentinelAddrs))
	}
}

// validateJWT checks the member token key settings.
func (l *loader) validateJWT(c *Config) {
	var sources []string
	if c.JWTSecret != "" {
		sources = append(sources, l.of(c, &c.JWTSecret))
		// Never quote the secret.
		switch {
		case c.JWTSecret == auth.DevelopmentSecret:
			l.problem("%s: is the published development key; generate a secret with `openssl rand -hex 32`", l.of(c, &c.JWTSecret))
		case len(c.JWTSecret) < auth.MinSecretBytes:
			l.problem("%s: is shorter than %d bytes; generate one with `openssl rand -hex 32`", l.of(c, &c.JWTSecret), auth.MinSecretBytes)
		}
	}
	for _, path := range []*string{&c.JWTPublicKey, &c.JWTJWKS} {
		if *path == "" {
			continue
		}
		sources = append(sources, l.of(c, path))
		if fi, err := os.Stat(*path); err != nil {
			l.problem("%s: cannot read %q: %v", l.of(c, path), clip(*path), errors.Unwrap(err))
		} else if !fi.Mode().IsRegular() {
			l.problem("%s: %q is not a regular file", l.of(c, path), clip(*path))
		}
	}
	if len(sources) > 1 {
		l.problem("set only one of %s: the key decides which algorithm is accepted", strings.Join(sources, ", "))
	}
}

// checkHostPort checks a host:port address; allowEmptyHost admits ":3000".
func checkHostPort(addr string, allowEmptyHost bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("is not host:port")
	}
	if host == "" && !allowEmptyHost {
		return errors.New("has no host")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 || (n == 0 && !allowEmptyHost) {
		return errors.New("has no valid port")
	}
	return nil
}

// checkNodeID checks a configured node id: it appears in Redis keys and
// channel names, so it is kept to a safe alphabet (no spaces, and no braces,
// which would act as Redis Cluster hash tags).
func checkNodeID(id string) error {
	if len(id) > maxNodeIDBytes {
		return fmt.Errorf("is longer than %d bytes", maxNodeIDBytes)
	}
	for _, r := range id {
		if !nodeIDRune(r) {
			return errors.New("may hold only letters, digits, '.', '_', '-' and ':'")
		}
	}
	return nil
}

func nodeIDRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		r == '.' || r == '_' || r == '-' || r == ':'
}

// generateNodeID returns the host name (reduced to the node id alphabet and
// to 48 bytes) and a random suffix, so that restarts and several nodes on
// one host never share an id.
func generateNodeID() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if nodeIDRune(r) && r != ':' {
			return r
		}
		return '-'
	}, host)
	host = strings.Trim(host, "-.")
	if len(host) > 48 {
		host = host[:48]
	}
	if host == "" {
		host = "switchboard"
	}
	b := make([]byte, 4)
	rand.Read(b) // never fails
	return host + "-" + hex.EncodeToString(b)
}
