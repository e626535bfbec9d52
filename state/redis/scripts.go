package redis

import (
	"embed"
	"fmt"

	goredis "github.com/redis/go-redis/v9"
)

// The Lua sources: lua/prelude.lua holds the helpers every script shares and
// is prepended to each of the others, one file per transition.
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
	prelude := source("prelude")
	load := func(name string) *goredis.Script {
		// The first line names the script, which shows in SCRIPT and
		// SLOWLOG output and in Lua error messages.
		return goredis.NewScript("-- switchboard: " + name + "\n" + prelude + "\n" + source(name))
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
