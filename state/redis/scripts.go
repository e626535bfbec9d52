package redis

import (
	"embed"
	"fmt"
	"regexp"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// The Lua sources: lua/prelude.lua holds the helpers the scripts share, and
// each other file is one transition, sent after the helpers it uses.
//
//go:embed lua/*.lua
var luaFS embed.FS

// scripts are the compiled transitions of one Store. Each is loaded into
// Redis once (on first use, by EVAL after a NOSCRIPT) and called by SHA.
type scripts struct {
	// Meetings.
	createMeeting, updateMeeting, startMeeting, joinMeeting, leaveMeeting,
	inviteLive, ringCall, acceptCall, declineCall, expireRings,
	markReminded, endIfOver, deleteMeeting *goredis.Script
	// Presence.
	connectPresence, disconnectPresence, settleOffline, setJoined *goredis.Script
	// Guests.
	createSession, requestAdmission, decideAdmission, connectGuest,
	disconnectGuest, settleGuestLeft, leaveGuest *goredis.Script
	// Links.
	createLink, useLink *goredis.Script
	// Jobs.
	scheduleJobs, cancelJob, claimJobs, finishJob *goredis.Script
	// Nodes.
	refreshNode, claimDeadNodes *goredis.Script
}

// compileScripts builds every script from the embedded sources. The sources
// are part of the binary, so a missing one is a programming error.
func compileScripts() *scripts {
	prelude := parsePrelude(source("prelude"))
	load := func(name string) *goredis.Script {
		// The first line names the script, which shows in SCRIPT and
		// SLOWLOG output and in Lua error messages.
		body := source(name)
		return goredis.NewScript("-- switchboard: " + name + "\n" + prelude.For(body) + "\n" + body)
	}
	return &scripts{
		createMeeting: load("createMeeting"),
		updateMeeting: load("updateMeeting"),
		startMeeting:  load("startMeeting"),
		joinMeeting:   load("joinMeeting"),
		leaveMeeting:  load("leaveMeeting"),
		inviteLive:    load("inviteLive"),
		ringCall:      load("ringCall"),
		acceptCall:    load("acceptCall"),
		declineCall:   load("declineCall"),
		expireRings:   load("expireRings"),
		markReminded:  load("markReminded"),
		endIfOver:     load("endIfOver"),
		deleteMeeting: load("deleteMeeting"),

		connectPresence:    load("connectPresence"),
		disconnectPresence: load("disconnectPresence"),
		settleOffline:      load("settleOffline"),
		setJoined:          load("setJoined"),

		createSession:    load("createSession"),
		requestAdmission: load("requestAdmission"),
		decideAdmission:  load("decideAdmission"),
		connectGuest:     load("connectGuest"),
		disconnectGuest:  load("disconnectGuest"),
		settleGuestLeft:  load("settleGuestLeft"),
		leaveGuest:       load("leaveGuest"),

		createLink: load("createLink"),
		useLink:    load("useLink"),

		scheduleJobs: load("scheduleJobs"),
		cancelJob:    load("cancelJob"),
		claimJobs:    load("claimJobs"),
		finishJob:    load("finishJob"),

		refreshNode:    load("refreshNode"),
		claimDeadNodes: load("claimDeadNodes"),
	}
}

// prelude is lua/prelude.lua cut into its top-level definitions, in order.
// A script gets only the definitions it uses, directly or through another:
// Redis runs a script's whole text on every call, and creating the closures
// of the entire prelude cost about a microsecond per call, as much as a
// small transition's own work.
type prelude []luaDef

type luaDef struct {
	name string
	src  string
	uses []string // identifiers of the definition's code
}

var (
	luaDefLine = regexp.MustCompile(`^local (?:function )?([A-Za-z_][A-Za-z0-9_]*)`)
	luaIdent   = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)
)

// parsePrelude cuts the prelude at its definitions: "local NAME = ..." on
// one line, or "local function NAME(...)" up to the first line that is
// "end" alone. Anything else at the top level must be a comment or blank.
func parsePrelude(src string) prelude {
	var out prelude
	lines := strings.Split(src, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "--") {
			continue
		}
		m := luaDefLine.FindStringSubmatch(line)
		if m == nil {
			panic(fmt.Sprintf("state/redis: prelude line %d is not a definition: %q", i+1, line))
		}
		end := i
		if strings.HasPrefix(line, "local function ") {
			for end < len(lines) && lines[end] != "end" {
				end++
			}
			if end == len(lines) {
				panic(fmt.Sprintf("state/redis: prelude function %s has no end", m[1]))
			}
		}
		def := strings.Join(lines[i:end+1], "\n")
		out = append(out, luaDef{name: m[1], src: def, uses: luaIdents(def)})
		i = end
	}
	return out
}

// luaIdents lists the identifiers of Lua code, comments left out.
func luaIdents(code string) []string {
	var out []string
	for _, line := range strings.Split(code, "\n") {
		if i := strings.Index(line, "--"); i >= 0 {
			line = line[:i]
		}
		out = append(out, luaIdent.FindAllString(line, -1)...)
	}
	return out
}

// For returns the definitions body uses, directly or through one another,
// in the prelude's order (a definition only refers to earlier ones).
func (p prelude) For(body string) string {
	need := map[string]bool{}
	for _, id := range luaIdents(body) {
		need[id] = true
	}
	// Later definitions use earlier ones only: one pass from the end
	// closes the set.
	for i := len(p) - 1; i >= 0; i-- {
		if need[p[i].name] {
			for _, id := range p[i].uses {
				need[id] = true
			}
		}
	}
	var b strings.Builder
	for _, d := range p {
		if need[d.name] {
			b.WriteString(d.src)
			b.WriteString("\n")
		}
	}
	return b.String()
}

func source(name string) string {
	b, err := luaFS.ReadFile("lua/" + name + ".lua")
	if err != nil {
		panic(fmt.Sprintf("state/redis: embedded script %s: %v", name, err))
	}
	return string(b)
}

// all lists every script, for Preload.
func (s *scripts) all() []*goredis.Script {
	return []*goredis.Script{
		s.createMeeting, s.updateMeeting, s.startMeeting, s.joinMeeting, s.leaveMeeting,
		s.inviteLive, s.ringCall, s.acceptCall, s.declineCall, s.expireRings,
		s.markReminded, s.endIfOver, s.deleteMeeting,
		s.connectPresence, s.disconnectPresence, s.settleOffline, s.setJoined,
		s.createSession, s.requestAdmission, s.decideAdmission, s.connectGuest,
		s.disconnectGuest, s.settleGuestLeft, s.leaveGuest,
		s.createLink, s.useLink,
		s.scheduleJobs, s.cancelJob, s.claimJobs, s.finishJob,
		s.refreshNode, s.claimDeadNodes,
	}
}
