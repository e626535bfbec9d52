package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// redactedText replaces a secret in everything this package renders.
const redactedText = "[redacted]"

// Markdown returns the documentation table of every setting (variable,
// flag, default, meaning), rendered from the same table Load uses. The
// README carries it between <!-- config-table --> and <!-- /config-table -->
// markers, and a test keeps the two equal.
func Markdown() string {
	var b strings.Builder
	b.WriteString("| Variable | Flag | Default | Meaning |\n")
	b.WriteString("|---|---|---|---|\n")
	for _, s := range settings {
		def := "`" + s.def + "`"
		switch {
		case s.docDef != "":
			def = s.docDef
		case s.def == "":
			def = "unset"
		}
		fmt.Fprintf(&b, "| `%s` | `--%s` | %s | %s |\n", s.env(), s.flag(), def, strings.ReplaceAll(s.help, "|", `\|`))
	}
	return b.String()
}

// Usage returns the plain-text help of every flag, for -h.
func Usage() string {
	var b strings.Builder
	b.WriteString("usage: switchboard [flags]\n\n")
	b.WriteString("Every setting is a flag or an environment variable; a flag overrides the\n")
	b.WriteString("variable, which overrides the default. Durations are like 60s, 1m30s, 168h.\n\n")
	for _, s := range settings {
		def := s.def
		if s.docDef != "" {
			def = s.docDef
		}
		if def == "" {
			def = "unset"
		}
		fmt.Fprintf(&b, "  --%s  (%s, default %s)\n", s.flag(), s.env(), def)
		fmt.Fprintf(&b, "        %s\n", strings.ReplaceAll(s.help, "`", ""))
	}
	return b.String()
}

// Redacted returns a copy of c for display: the JWT secret is replaced and
// the password in the Redis URL masked. Never use the copy to connect.
func (c Config) Redacted() Config {
	r := c
	r.RedisClusterAddrs = append([]string(nil), c.RedisClusterAddrs...)
	r.RedisSentinelAddrs = append([]string(nil), c.RedisSentinelAddrs...)
	for _, s := range settings {
		if s.redact == shown {
			continue
		}
		p := s.field(&r).(*string)
		*p = redactValue(s.redact, *p)
	}
	return r
}

// redactValue hides a sensitive value; empty stays empty so that "unset"
// remains visible.
func redactValue(how redaction, v string) string {
	if v == "" || how == shown {
		return v
	}
	if how == redisURL {
		u, err := url.Parse(v)
		if err != nil {
			return redactedText
		}
		if u.User != nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
			}
		}
		if q := u.Query(); len(q) > 0 {
			for k := range q {
				if lk := strings.ToLower(k); strings.Contains(lk, "pass") || strings.Contains(lk, "secret") || strings.Contains(lk, "token") {
					q.Set(k, "xxxxx")
				}
			}
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	return redactedText
}

// fields returns the settings with non-empty values as (key, text) pairs
// in table order, redacted; key is the lower-case setting name.
func (c Config) fields() [][2]string {
	r := c.Redacted()
	out := make([][2]string, 0, len(settings))
	for _, s := range settings {
		var text string
		switch p := s.field(&r).(type) {
		case *string:
			text = *p
		case *[]string:
			text = strings.Join(*p, ",")
		case *bool:
			text = strconv.FormatBool(*p)
		case *int:
			text = strconv.Itoa(*p)
		case *time.Duration:
			text = p.String()
		}
		if text != "" {
			out = append(out, [2]string{strings.ToLower(s.name), text})
		}
	}
	return out
}

// String renders every set value as key=value pairs for the start-up log,
// with secrets redacted. fmt's %v and %+v use it.
func (c Config) String() string {
	var b strings.Builder
	for i, kv := range c.fields() {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(kv[0])
		b.WriteByte('=')
		if strings.ContainsAny(kv[1], " \"=") {
			b.WriteString(strconv.Quote(kv[1]))
		} else {
			b.WriteString(kv[1])
		}
	}
	return b.String()
}

// GoString makes %#v redacted too.
func (c Config) GoString() string { return "config.Config{" + c.String() + "}" }

// MarshalZerologObject logs the redacted configuration as an object:
// log.Info().Object("config", cfg).Msg("starting").
func (c Config) MarshalZerologObject(e *zerolog.Event) {
	for _, kv := range c.fields() {
		e.Str(kv[0], kv[1])
	}
}
