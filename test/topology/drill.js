'use strict';
// Rolling-restart drill client fleet (run by test/rolling_test.go, which
// restarts the nodes while this runs). It connects, with the npm
// socket.io-client and reconnection on (the client's default backoff):
//
//   fleet      --fleet single-device users through nginx, each with its own
//              sb_affinity key (so nginx spreads them over the nodes); every
//              --polling-every-th starts on long-polling and upgrades;
//   pairs      three users with two devices through nginx on different nodes;
//   carol      invited to the call, through nginx; accepts at the end;
//   guest      an /external guest waiting in hana's admission queue, through
//              nginx;
//   pinned     alice and bob (in an instant call) and hana (host of the
//              meeting with the waiting guest), each with two devices
//              connected directly to two different nodes, and a watcher with
//              one device on each node: when a node restarts, each of them
//              keeps a device on another node. Devices in the call or the
//              meeting register in it again after every reconnect, as an
//              app does.
//
// Every member socket sends presence:heartbeat with an ack every --hb-ms
// while it is connected (never while disconnected, so nothing is buffered by
// the client). An ack cut by the transport close ("socket has been
// disconnected") is sent again after the reconnect and counted as cut; an
// ack that does not come within --ack-timeout-ms while connected is lost.
//
// Protocol: stdout carries one JSON object per line ({"type":"ready"},
// {"type":"status"}, {"type":"result"}); stdin takes the commands "status"
// and "finish". Logs go to stderr.

const readline = require('readline');
const { T0, sleep, now, log, show, parseArgs, loadTokens, httpJSON, keysFor, probeNode, Client, summary } = require('./lib');

const OPT = parseArgs(process.argv.slice(2), {
  url: '', nodes: '', tokens: '', fleet: 45, pollingEvery: 4, hbMs: 1000, ackTimeoutMs: 8000, graceMs: 5000, maxMs: 170000,
});
const NODES = OPT.nodes.split(',').filter(Boolean);
const token = loadTokens(OPT.tokens);

function out(obj) { process.stdout.write(JSON.stringify(obj) + '\n'); }

const all = []; // every Client
const members = []; // member Clients that send heartbeats
let stopping = false;

// ---------------------------------------------------------------- acks

const acks = { events: 0, attempts: 0, ok: 0, codes: {}, cut: 0, retriedOk: 0, timeouts: 0, rtt: [], cutLog: [], lostLog: [] };
const rejoin = { sent: 0, ok: 0, codes: {}, cut: 0, timeouts: 0 };
const logical = [];

function attempt(c, ev) {
  ev.attempts++;
  acks.attempts++;
  c.inflight = ev;
  const t0 = now();
  c.sock.timeout(OPT.ackTimeoutMs).emit(ev.name, {}, (err, ack) => {
    c.inflight = null;
    if (!err) {
      ev.done = true;
      acks.rtt.push(now() - t0);
      if (ack && ack.success === true) acks.ok++;
      else { const k = (ack && ack.code) || 'malformed'; acks.codes[k] = (acks.codes[k] || 0) + 1; }
      if (ev.attempts > 1) acks.retriedOk++;
      return;
    }
    if (/disconnected/.test(err.message)) {
      acks.cut++;
      acks.cutLog.push({ client: c.label, sentMsAgo: now() - t0, at: now() });
      if (ev.attempts < 3) c.pendingRetry = ev;
      else { ev.failed = true; acks.lostLog.push({ client: c.label, why: 'cut three times' }); }
      return;
    }
    acks.timeouts++;
    ev.failed = true;
    acks.lostLog.push({ client: c.label, why: err.message, connected: c.connected, history: c.history.slice(-6) });
  });
}

function heartbeatLoop(c) {
  const tick = () => {
    if (stopping) return;
    if (c.connected && !c.inflight && !c.pendingRetry) {
      const ev = { name: 'presence:heartbeat', attempts: 0, done: false, failed: false };
      logical.push(ev);
      acks.events++;
      attempt(c, ev);
    }
    c.hbTimer = setTimeout(tick, OPT.hbMs);
  };
  c.hbTimer = setTimeout(tick, Math.floor(Math.random() * OPT.hbMs));
}

// ---------------------------------------------------------------- clients

function member(label, user, dev, o) {
  const c = new Client(label, o.url, '/', { token: token(user, dev) }, { reconnection: true, ...o });
  c.user = user;
  c.rejoin = [];
  c.viaNginx = !o.pinned;
  c.onReconnect = () => {
    if (c.pendingRetry) { const ev = c.pendingRetry; c.pendingRetry = null; attempt(c, ev); }
    for (const id of c.rejoin) {
      rejoin.sent++;
      c.emitAck('meeting:register-participant', { meeting_id: id }, OPT.ackTimeoutMs).then((r) => {
        if (!r.err) {
          if (r.ack && r.ack.success) rejoin.ok++;
          else { const k = (r.ack && r.ack.code) || 'malformed'; rejoin.codes[k] = (rejoin.codes[k] || 0) + 1; }
        } else if (/disconnected/.test(r.err.message)) rejoin.cut++;
        else rejoin.timeouts++;
      });
    }
  };
  all.push(c);
  members.push(c);
  return c;
}

async function openAll(clients, parallel = 8) {
  const q = [...clients];
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (q.length) await q.shift().open(10000);
  }));
}

async function must(c, event, payload, fields = []) {
  const r = await c.emitAck(event, payload);
  if (r.err || !r.ack || r.ack.success !== true || !fields.every((f) => f in r.ack)) {
    throw new Error(`${c.label} ${event}: ${r.err ? r.err.message : show(r.ack)}`);
  }
  return r.ack;
}

// ---------------------------------------------------------------- presence watch

const USERS = new Set();
let watchers = [];
let baseline = null;

// presenceSeen: distinct presence transitions about drill users seen by any
// watcher device since `since`.
function presenceSeen(since) {
  const seen = new Map();
  for (const w of watchers) {
    for (const e of w.events) {
      if (e.at < since || !e.name.startsWith('presence:') || !e.data || !USERS.has(e.data.user_id)) continue;
      const k = `${e.name}|${e.data.user_id}|${e.data.status || ''}|${e.data.last_seen || e.data.timestamp || ''}`;
      if (!seen.has(k)) seen.set(k, { event: e.name, user_id: e.data.user_id, status: e.data.status, at: e.at, time: e.data.last_seen || e.data.timestamp });
    }
  }
  return [...seen.values()];
}

// ---------------------------------------------------------------- setup

const S = {};

async function setup() {
  const [n1, n2, n3] = NODES;
  // Keys: the fleet's are arbitrary (probed only to report placement);
  // pairs, carol and the guest get keys on chosen nodes.
  const pairWant = [0, 1, 1, 2, 2, 0];
  const pairKeys = await keysFor(OPT.url, NODES, `pair-${process.pid}`, pairWant);
  const [carolKey, guestKey] = await keysFor(OPT.url, NODES, `solo-${process.pid}`, [1, 2]);

  watchers = NODES.map((u, i) => member(`watcher/w${i + 1}@node${i + 1}`, 'watcher', `w${i + 1}`, { url: u, pinned: true, node: i }));
  await openAll(watchers);

  const pin = (user, dev, i) => member(`${user}/${dev}@node${i + 1}`, user, dev, { url: NODES[i], pinned: true, node: i });
  S.alice = [pin('alice', 'phone', 0), pin('alice', 'desktop', 1)];
  S.bob = [pin('bob', 'phone', 1), pin('bob', 'desktop', 2)];
  S.hana = [pin('hana', 'phone', 2), pin('hana', 'desktop', 0)];
  const fleet = [];
  for (let i = 0; i < OPT.fleet; i++) {
    const key = `fleet-${process.pid}-${i}`;
    const node = await probeNode(OPT.url, NODES, key);
    const transports = OPT.pollingEvery > 0 && i % OPT.pollingEvery === 0 ? ['polling', 'websocket'] : ['websocket'];
    const user = `f${String(i).padStart(2, '0')}`;
    fleet.push(member(`${user}@node${node + 1}${transports.length > 1 ? '/poll' : ''}`, user, 'd', { url: OPT.url, affinity: key, node, transports }));
  }
  for (let p = 0; p < 3; p++) {
    for (const [j, dev] of ['a', 'b'].entries()) {
      const k = 2 * p + j;
      fleet.push(member(`p${p}/${dev}@node${pairWant[k] + 1}`, `p${p}`, dev, { url: OPT.url, affinity: pairKeys[k], node: pairWant[k] }));
    }
  }
  S.carol = member('carol/phone@node2', 'carol', 'phone', { url: OPT.url, affinity: carolKey, node: 1 });
  await openAll([...S.alice, ...S.bob, ...S.hana, ...fleet, S.carol]);
  for (const c of members) USERS.add(c.user);
  log(`connected ${members.length} member sockets`);

  // The call: alice (owner) and bob joined with both devices, carol invited.
  const cr = await must(S.alice[0], 'call:create', { participants: ['bob', 'carol'] }, ['call']);
  S.callId = cr.call.meeting_id;
  await must(S.alice[1], 'meeting:register-participant', { meeting_id: S.callId });
  await must(S.alice[0], 'call:notify', { call_id: S.callId, recipients: ['bob'] }, ['notified_count']);
  await Promise.all(S.bob.map((c) => c.waitFor('call:incoming', (d) => d && d.call && d.call.meeting_id === S.callId)));
  await must(S.bob[0], 'call:accept', { call_id: S.callId });
  await must(S.bob[1], 'meeting:register-participant', { meeting_id: S.callId });
  for (const c of [...S.alice, ...S.bob]) c.rejoin.push(S.callId);

  // The meeting with a guest waiting for admission.
  const start = new Date(Date.now() + 60e3).toISOString();
  const end = new Date(Date.now() + 2 * 3600e3).toISOString();
  const mr = await must(S.hana[0], 'meeting:create', { title: 'enc:drill', startTime: start, endTime: end, participants: [], allowExternal: true }, ['meeting']);
  S.meetingId = mr.meeting.meeting_id;
  for (const c of S.hana) await must(c, 'meeting:register-participant', { meeting_id: S.meetingId });
  for (const c of S.hana) c.rejoin.push(S.meetingId);
  const link = await must(S.hana[0], 'meeting:generate_link', { meeting_id: S.meetingId }, ['token']);
  const reg = await httpJSON(OPT.url, 'POST', '/api/meetings/external/register', { token: link.token, display_name: 'enc:guest' });
  if (reg.status !== 201) throw new Error(`guest register: ${show(reg)}`);
  S.sessionId = reg.body.session_id;
  S.guest = new Client('guest@node3', OPT.url, '/external', { session_id: reg.body.session_id, session_token: reg.body.session_token },
    { reconnection: true, affinity: guestKey, node: 2 });
  S.guest.viaNginx = true;
  all.push(S.guest);
  await S.guest.open(10000);
  await must(S.guest, 'meeting:guest_join', { meeting_id: S.meetingId, session_id: S.sessionId });
  await Promise.all(S.hana.map((c) => c.waitFor('meeting:guest_join', (d) => d && d.session_id === S.sessionId)));

  await sleep(1000);
  baseline = now();
  for (const c of members) heartbeatLoop(c);
  const perNode = NODES.map((_, i) => all.filter((c) => c.node === i).length);
  out({ type: 'ready', call_id: S.callId, meeting_id: S.meetingId, session_id: S.sessionId, sockets: all.length,
    via_nginx: all.filter((c) => c.viaNginx).length, polling: all.filter((c) => c.transports.length > 1).length, per_node: perNode });
}

// ---------------------------------------------------------------- status and finish

function ids() {
  const f = (cs) => cs.map((c) => (c.connected ? c.sock.id : null));
  // Every member's live socket ids, to compare with Redis.
  const conns = {};
  for (const c of members) {
    if (!conns[c.user]) conns[c.user] = [];
    if (c.connected) conns[c.user].push(c.sock.id);
  }
  return { alice: f(S.alice), bob: f(S.bob), hana: f(S.hana), guest: S.guest.connected, guest_id: S.guest.connected ? S.guest.sock.id : null, conns };
}

async function waitAllConnected(ms) {
  const until = now() + ms;
  while (now() < until && !all.every((c) => c.connected)) await sleep(100);
  return all.filter((c) => !c.connected).map((c) => ({ client: c.label, history: c.history.slice(-8) }));
}

async function status() {
  const notConnected = await waitAllConnected(15000);
  out({ type: 'status', ids: ids(), not_connected: notConnected });
}

async function finish() {
  stopping = true;
  for (const c of members) clearTimeout(c.hbTimer);
  const notConnected = await waitAllConnected(15000);
  // Let every ack in flight or due for a retry come back.
  const until = now() + OPT.ackTimeoutMs + 2000;
  while (now() < until && logical.some((e) => !e.done && !e.failed)) await sleep(100);
  const unanswered = logical.filter((e) => !e.done && !e.failed).length;
  const presence = presenceSeen(baseline);

  // Both call users can act on the call: carol, invited, accepts it, and
  // every device of alice and bob hears it exactly once.
  const final = {};
  const isCarolAccept = (d) => d && d.call_id === S.callId && d.user_id === 'carol';
  const a = await S.carol.emitAck('call:accept', { call_id: S.callId });
  final.carol_accept = a.err ? a.err.message : a.ack;
  await Promise.allSettled([...S.alice, ...S.bob].map((c) => c.waitFor('call:accepted', isCarolAccept, 5000)));
  await sleep(500);
  final.call_accepted_counts = Object.fromEntries([...S.alice, ...S.bob].map((c) => [c.label, c.count('call:accepted', isCarolAccept)]));
  // The waiting guest is still in hana's queue: she admits it, the guest
  // hears it exactly once.
  const isAdmit = (d) => d && d.session_id === S.sessionId && d.status === 'admitted';
  const ad = await S.hana[0].emitAck('meeting:admit_guest', { meeting_id: S.meetingId, session_id: S.sessionId });
  final.admit = ad.err ? ad.err.message : ad.ack;
  await Promise.allSettled([S.guest, S.hana[1]].map((c) => c.waitFor('meeting:admission_status', isAdmit, 5000)));
  await sleep(500);
  final.admission_counts = Object.fromEntries([S.guest, S.hana[1]].map((c) => [c.label, c.count('meeting:admission_status', isAdmit)]));

  const rec = (cs) => summary(cs.flatMap((c) => c.reconnectMs));
  const nginxClients = all.filter((c) => c.viaNginx);
  const pinned = all.filter((c) => !c.viaNginx);
  const worst = nginxClients.flatMap((c) => c.reconnectMs.map((ms) => ({ client: c.label, ms }))).sort((x, y) => y.ms - x.ms).slice(0, 5);
  const slowest = [...new Set(worst.slice(0, 3).map((w) => w.client))].map((l) => ({ client: l, history: all.find((c) => c.label === l).history }));
  const reasons = {};
  for (const c of all) for (const d of c.disconnects) reasons[d.reason] = (reasons[d.reason] || 0) + 1;
  out({
    type: 'result',
    sockets: all.length,
    not_connected: notConnected,
    acks: {
      events: acks.events, attempts: acks.attempts, ok: acks.ok, codes: acks.codes, cut: acks.cut, retried_ok: acks.retriedOk,
      timeouts: acks.timeouts, unanswered, lost: unanswered + logical.filter((e) => e.failed && !e.done).length,
      rtt_ms: summary(acks.rtt), cut_log: acks.cutLog.slice(0, 10), lost_log: acks.lostLog.slice(0, 10),
    },
    rejoin,
    presence_after_baseline: presence,
    flaps: presence.filter((p) => p.event === 'presence:user_disconnected').length,
    // The connection history of every user that went offline, for diagnosis
    // (times in ms since t0_ms).
    t0_ms: T0,
    flap_details: [...new Set(presence.filter((p) => p.event === 'presence:user_disconnected').map((p) => p.user_id))]
      .map((u) => ({ user: u, clients: all.filter((c) => c.user === u).map((c) => ({ client: c.label, history: c.history })) })),
    reconnect_ms: {
      via_nginx: rec(nginxClients),
      via_nginx_polling: rec(nginxClients.filter((c) => c.transports.length > 1)),
      via_nginx_websocket: rec(nginxClients.filter((c) => c.transports.length === 1)),
      pinned: rec(pinned),
      worst_via_nginx: worst,
      slowest_histories: slowest,
    },
    disconnects: { total: all.reduce((n, c) => n + c.disconnects.length, 0), reasons, clients_disconnected: all.filter((c) => c.disconnects.length > 0).length },
    connect_errors: all.reduce((n, c) => n + c.connectErrors, 0),
    final,
  });
}

// ---------------------------------------------------------------- main

const hard = setTimeout(() => { log(`FAIL drill.js ran longer than ${OPT.maxMs} ms`); process.exit(1); }, OPT.maxMs);

async function main() {
  await setup();
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    const cmd = line.trim();
    if (cmd === 'status') await status();
    else if (cmd === 'finish') { await finish(); break; }
  }
  rl.close();
  for (const c of all) c.close();
  clearTimeout(hard);
  setTimeout(() => process.exit(0), 200);
}

main().catch((e) => {
  log(`FAIL ${e.stack || e.message}`);
  for (const c of all) if (c.history.length) log(`  ${c.label}: ${show(c.history.slice(-6))}`);
  process.exit(1);
});
