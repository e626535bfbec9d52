'use strict';
// Interop flows: drives a Switchboard node with the npm socket.io-client 4.x
// through the four flows of the events reference (meeting lifecycle, instant
// call, external guest, presence across disconnect/reconnect), every user on
// two devices, and checks acks, exact payload fields and exactly-once
// delivery. test/interop_test.go runs it against an in-process node; it can
// also be run by hand against any node whose HS256 secret minted the tokens:
//
//   node flows.js --url http://127.0.0.1:3000 --tokens tokens.json \
//        --transport websocket|polling [--grace-ms 500] [--flows meeting,call]
//
// tokens.json (or the env var SWITCHBOARD_INTEROP_TOKENS holding the JSON):
//   {"members": {"alice": {"phone": "<jwt>", "desktop": "<jwt>"}, ...},
//    "names": {"alice": "<name claim>", ...}}
// Users needed: alice bob carol (meeting), dave erin carol (call),
// frank gina (guest), hank watcher (presence); devices phone and desktop.
//
// It prints one line per check and exits 1 at the first failure.

const fs = require('fs');
const { io } = require('socket.io-client');
const { EventLog } = require('./events');

// ---------------------------------------------------------------- options

function parseArgs(argv) {
  const o = { url: '', tokens: '', transport: 'websocket', graceMs: 500, waitMs: 3000, quietMs: 300, flows: '' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--url': o.url = next(); break;
      case '--tokens': o.tokens = next(); break;
      case '--transport': o.transport = next(); break;
      case '--grace-ms': o.graceMs = Number(next()); break;
      case '--wait-ms': o.waitMs = Number(next()); break;
      case '--quiet-ms': o.quietMs = Number(next()); break;
      case '--flows': o.flows = next(); break;
      case '-h': case '--help': usage(''); break;
      default: usage(`unknown argument ${a}`);
    }
  }
  if (!o.url) o.url = process.env.SWITCHBOARD_URL || '';
  if (!o.url) usage('--url is required');
  if (!['websocket', 'polling'].includes(o.transport)) usage('--transport must be websocket or polling');
  for (const k of ['graceMs', 'waitMs', 'quietMs']) {
    if (!Number.isFinite(o[k]) || o[k] <= 0) usage(`--${k} must be a positive number`);
  }
  o.url = o.url.replace(/\/+$/, '');
  return o;
}

function usage(msg) {
  if (msg) console.error(`flows.js: ${msg}`);
  console.error('usage: node flows.js --url http://127.0.0.1:PORT --tokens FILE --transport websocket|polling [--grace-ms N] [--wait-ms N] [--quiet-ms N] [--flows meeting,call,guest,presence]');
  process.exit(2);
}

function loadTokens(file) {
  let text = '';
  if (file) {
    text = fs.readFileSync(file, 'utf8');
  } else if (process.env.SWITCHBOARD_INTEROP_TOKENS) {
    const v = process.env.SWITCHBOARD_INTEROP_TOKENS;
    text = v.trim().startsWith('{') ? v : fs.readFileSync(v, 'utf8');
  } else {
    usage('--tokens or SWITCHBOARD_INTEROP_TOKENS is required');
  }
  const t = JSON.parse(text);
  if (!t || typeof t.members !== 'object') usage('tokens JSON must have a "members" object');
  return t;
}

const OPT = parseArgs(process.argv.slice(2));
const TOKENS = loadTokens(OPT.tokens);
const MODE = OPT.transport === 'websocket'
  ? { label: 'websocket', transports: ['websocket'], upgrade: false }
  : { label: 'polling', transports: ['polling', 'websocket'], upgrade: true };

// ---------------------------------------------------------------- checks

class CheckFailed extends Error {}

let currentFlow = '-';
let checks = 0;

function ok(msg) {
  checks++;
  console.log(`ok   ${clock()} [${MODE.label}] ${currentFlow}: ${msg}`);
}

// clock is the UTC time of day in ms, to line output up with the node's log.
function clock() {
  return new Date().toISOString().slice(11, 23);
}

function fail(msg) {
  throw new CheckFailed(msg);
}

function check(cond, msg, detail) {
  if (!cond) fail(detail === undefined ? msg : `${msg}: ${show(detail)}`);
  ok(msg);
}

function show(v) {
  try {
    const s = JSON.stringify(v);
    return s && s.length > 2000 ? s.slice(0, 2000) + '…' : s;
  } catch (e) {
    return String(v);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const isTime = (v) => typeof v === 'string' && TIME_RE.test(v);
const isTimeOrNull = (v) => v === null || isTime(v);

// near reports whether an RFC 3339 string is within slackMs of now.
function near(v, slackMs = 10000) {
  return isTime(v) && Math.abs(Date.parse(v) - Date.now()) <= slackMs;
}

function sameKeys(obj, expected) {
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return false;
  const a = Object.keys(obj).sort();
  const b = [...expected].sort();
  return a.length === b.length && a.every((k, i) => k === b[i]);
}

function checkKeys(obj, expected, what) {
  check(sameKeys(obj, expected), `${what} has exactly the fields {${[...expected].sort().join(', ')}}`, obj);
}

const MEETING_KEYS = ['meeting_id', 'is_instant_call', 'title', 'description', 'start_time', 'end_time',
  'allow_external', 'created_by', 'status', 'started_at', 'ended_at', 'created_at', 'updated_at',
  'participants', 'active_count', 'version'];
const PARTICIPANT_KEYS = ['user_id', 'role', 'status', 'joined_at', 'left_at'];

// checkMeeting asserts the Meeting object shape of SPEC 2.1.
function checkMeeting(m, what) {
  checkKeys(m, MEETING_KEYS, what);
  const bad = [];
  for (const k of ['start_time', 'end_time', 'created_at', 'updated_at']) if (!isTime(m[k])) bad.push(k);
  for (const k of ['started_at', 'ended_at']) if (!isTimeOrNull(m[k])) bad.push(k);
  if (!Array.isArray(m.participants)) bad.push('participants');
  else {
    m.participants.forEach((p, i) => {
      if (!sameKeys(p, PARTICIPANT_KEYS)) bad.push(`participants[${i}] fields`);
      else if (!isTimeOrNull(p.joined_at) || !isTimeOrNull(p.left_at)) bad.push(`participants[${i}] times`);
    });
  }
  if (typeof m.version !== 'number' || typeof m.active_count !== 'number') bad.push('version/active_count');
  check(bad.length === 0, `${what} is a well-formed meeting (RFC 3339 ms UTC times, participant fields)`, { bad, m });
}

function participant(m, user) {
  return (m.participants || []).find((p) => p.user_id === user);
}

// ---------------------------------------------------------------- clients

const allClients = new Set();

class Client {
  constructor(label, sock) {
    this.label = label;
    this.sock = sock;
    this.initialTransport = '';
    this.upgrades = 0;
    this.history = []; // connection lifecycle, for failure messages
    this.log = new EventLog(sock, (name, ms, got) => new CheckFailed(`${this.label} did not receive ${name} within ${ms} ms; ` +
      `it received: ${show(got)}; connected: ${sock.connected}, socket history: ${show(this.history)}`));
    const note = (what) => this.history.push(`${clock()} ${what}`);
    sock.on('connect', () => note(`connect ${sock.id}`));
    sock.on('disconnect', (reason, desc) => note(`disconnect ${reason}${desc && desc.description ? ` (${desc.description.message || desc.description})` : ''}`));
    sock.on('connect_error', (err) => note(`connect_error ${err.message}`));
    sock.io.on('reconnect_attempt', (n) => note(`reconnect_attempt ${n}`));
    sock.io.on('open', () => {
      const engine = sock.io.engine;
      this.initialTransport = engine.transport.name;
      engine.on('upgrade', () => { this.upgrades++; });
    });
    allClients.add(this);
  }

  get transport() {
    return this.sock.io.engine ? this.sock.io.engine.transport.name : '';
  }

  get events() { return this.log.events; }
  matching(name, pred) { return this.log.matching(name, pred); }
  count(name, pred) { return this.log.count(name, pred); }
  waitFor(name, pred, timeoutMs = OPT.waitMs) { return this.log.waitFor(name, pred, timeoutMs); }

  close() {
    this.sock.disconnect();
    allClients.delete(this);
  }
}

function onceWithin(emitter, event, ms, what) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new CheckFailed(`${what}: no ${event} within ${ms} ms`)), ms);
    emitter.once(event, (...args) => { clearTimeout(t); resolve(args); });
  });
}

// open creates a socket and waits for connect or connect_error.
async function open(label, nsp, auth, o = {}) {
  const transports = o.transports || MODE.transports;
  const upgrade = o.upgrade !== undefined ? o.upgrade : MODE.upgrade;
  const sock = io(OPT.url + nsp, {
    transports, upgrade, auth, forceNew: true, multiplex: false, autoConnect: false,
    reconnection: !!o.reconnection, reconnectionDelay: 100, reconnectionDelayMax: 200, timeout: OPT.waitMs,
  });
  const c = new Client(label, sock);
  const result = new Promise((resolve) => {
    const t = setTimeout(() => resolve({ err: new CheckFailed(`${label}: neither connect nor connect_error within ${OPT.waitMs} ms`) }), OPT.waitMs);
    sock.once('connect', () => { clearTimeout(t); resolve({}); });
    sock.once('connect_error', (err) => { clearTimeout(t); resolve({ connectError: err }); });
  });
  sock.connect();
  const r = await result;
  if (r.err) { c.close(); throw r.err; }
  return { c, connectError: r.connectError };
}

// connect opens a socket that must connect; in polling mode it must start on
// polling and upgrade to websocket (unless o.upgrade is false).
async function connect(label, nsp, auth, o = {}) {
  const { c, connectError } = await open(label, nsp, auth, o);
  if (connectError) {
    c.close();
    fail(`${label} was refused at the handshake: ${connectError.message} ${show(connectError.data)}`);
  }
  const transports = o.transports || MODE.transports;
  const upgrade = o.upgrade !== undefined ? o.upgrade : MODE.upgrade;
  if (transports[0] === 'polling' && upgrade && transports.includes('websocket')) {
    if (c.transport !== 'websocket') await onceWithin(c.sock.io.engine, 'upgrade', OPT.waitMs, `${label} upgrade`);
    check(c.initialTransport === 'polling' && c.transport === 'websocket' && c.upgrades === 1,
      `${label} connected over polling and upgraded to websocket`,
      { initial: c.initialTransport, now: c.transport, upgrades: c.upgrades });
  } else {
    check(c.transport === transports[0], `${label} connected over ${transports[0]}`, c.transport);
  }
  return c;
}

function memberToken(user, device) {
  const t = TOKENS.members[user] && TOKENS.members[user][device];
  if (!t) fail(`no token for ${user}/${device} in the tokens file`);
  return t;
}

function member(user, device, o) {
  return connect(`${user}/${device}`, '/', { token: memberToken(user, device) }, o);
}

// outsider connects a member who takes no part in the flow. In polling mode
// it stays on long-polling (no upgrade), so acks and (absent) broadcasts are
// also exercised over plain polling.
async function outsider(user) {
  if (MODE.label === 'polling') {
    const c = await member(user, 'phone', { transports: ['polling'], upgrade: false });
    return c;
  }
  return member(user, 'phone');
}

async function expectRefusedHandshake(label, nsp, auth, code) {
  const { c, connectError } = await open(label, nsp, auth);
  c.close();
  check(!!connectError, `${label} is refused at the handshake`);
  check(connectError.data && connectError.data.code === code && typeof connectError.data.message === 'string',
    `${label} connect_error data is {code: "${code}", message}`, { message: connectError.message, data: connectError.data });
}

// ---------------------------------------------------------------- acks

async function emitAck(c, event, payload) {
  try {
    if (payload === undefined) return await c.sock.timeout(OPT.waitMs).emitWithAck(event);
    return await c.sock.timeout(OPT.waitMs).emitWithAck(event, payload);
  } catch (e) {
    fail(`${c.label} ${event}: no ack within ${OPT.waitMs} ms (${e.message}); socket history: ${show(c.history)}`);
  }
}

async function ackOK(c, event, payload, fields = []) {
  const a = await emitAck(c, event, payload);
  const okShape = a && a.success === true && !('error' in a) && !('code' in a) && fields.every((f) => f in a);
  check(okShape, `${c.label} ${event} ack is {success: true${fields.map((f) => ', ' + f).join('')}}`, a);
  return a;
}

async function ackRefused(c, event, payload, code, errorIncludes) {
  const a = await emitAck(c, event, payload);
  check(sameKeys(a, ['success', 'error', 'code']) && a.success === false && typeof a.error === 'string' && a.error.length > 0 && a.code === code,
    `${c.label} ${event} is refused {success: false, error, code: "${code}"}`, a);
  if (errorIncludes) check(a.error.includes(errorIncludes), `${c.label} ${event} refusal names ${errorIncludes}`, a);
  return a;
}

// ---------------------------------------------------------------- delivery

// deliver waits until every client in `to` received event (matching pred),
// lets stray duplicates arrive for the quiet period, then asserts exactly
// one delivery to each of `to` and none to each of `notTo`. It returns the
// payloads in the order of `to`.
async function deliver(event, pred, to, notTo = [], what = '') {
  const label = what ? `${event} (${what})` : event;
  const datas = await Promise.all(to.map((c) => c.waitFor(event, pred)));
  await sleep(OPT.quietMs);
  for (const c of to) {
    const n = c.count(event, pred);
    check(n === 1, `${c.label} received ${label} exactly once`, `received ${n} times`);
  }
  for (const c of notTo) {
    const n = c.count(event, pred);
    check(n === 0, `${c.label} did not receive ${label}`, `received ${n} times`);
  }
  return datas;
}

async function none(event, pred, clients, what = '') {
  await sleep(OPT.quietMs);
  for (const c of clients) {
    const n = c.count(event, pred);
    check(n === 0, `${c.label} did not receive ${what ? `${event} (${what})` : event}`, `received ${n} times`);
  }
}

const field = (k, v) => (d) => d && d[k] === v;
const notPresence = (e) => !e.name.startsWith('presence:');

// tally asserts the complete multiset of events each client received
// (filtered by keep), after a quiet period: nothing unexpected, nothing twice.
async function tally(expected, keep = notPresence) {
  await sleep(OPT.quietMs);
  for (const [c, want] of expected) {
    const got = {};
    for (const e of c.events) if (keep(e)) got[e.name] = (got[e.name] || 0) + 1;
    const names = [...new Set([...Object.keys(got), ...Object.keys(want)])].sort();
    const diff = names.filter((n) => (got[n] || 0) !== (want[n] || 0));
    check(diff.length === 0, `${c.label} received exactly ${show(want)} in this flow`, { got });
  }
}

function closeAll(clients) {
  for (const c of clients) c.close();
}

// ---------------------------------------------------------------- HTTP

async function http(method, path, body, bearer) {
  const headers = { 'Content-Type': 'application/json' };
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const ctl = new AbortController();
  const t = setTimeout(() => ctl.abort(), OPT.waitMs);
  try {
    const res = await fetch(OPT.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: ctl.signal });
    const text = await res.text();
    let json;
    try { json = JSON.parse(text); } catch (e) { json = text; }
    return { status: res.status, body: json };
  } catch (e) {
    fail(`${method} ${path}: ${e.message}`);
  } finally {
    clearTimeout(t);
  }
}

// ---------------------------------------------------------------- flows

// isoAt formats now + offsetMs in the +01:00 offset (the server must store
// and send it in UTC with milliseconds).
function isoAt(offsetMs) {
  const d = new Date(Date.now() + offsetMs);
  d.setUTCMilliseconds(0);
  const utc = d.toISOString();
  const local = new Date(d.getTime() + 3600e3).toISOString().replace('Z', '+01:00');
  return { utc, local };
}

const MTG_RE = /^mtg_[0-9a-f]{32}$/;
const CALL_RE = /^call_[0-9a-f]{32}$/;
const UUID4_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

// 1. meeting lifecycle.
async function meetingFlow() {
  const alicePhone = await member('alice', 'phone');
  const aliceDesk = await member('alice', 'desktop');
  const bobPhone = await member('bob', 'phone');
  const bobDesk = await member('bob', 'desktop');
  const carol = await outsider('carol');
  const everyone = [alicePhone, aliceDesk, bobPhone, bobDesk, carol];

  await expectRefusedHandshake('garbage-token', '/', { token: 'not-a-jwt' }, 'unauthorized');

  // create
  const start = isoAt(3600e3);
  const end = isoAt(2 * 3600e3);
  const a = await ackOK(alicePhone, 'meeting:create', {
    title: 'enc:title-1', description: 'enc:description-1', startTime: start.local, endTime: end.local,
    participants: ['bob', 'bob', 'alice'], allowExternal: true,
  }, ['meeting']);
  const m = a.meeting;
  checkMeeting(m, 'meeting:create ack meeting');
  const id = m.meeting_id;
  check(MTG_RE.test(id), 'meeting_id is mtg_<32 hex>', id);
  check(m.status === 'scheduled' && m.created_by === 'alice' && m.is_instant_call === false && m.allow_external === true &&
    m.title === 'enc:title-1' && m.description === 'enc:description-1',
  'created meeting: scheduled, created_by alice, allow_external, opaque title/description kept', m);
  check(m.start_time === start.utc && m.end_time === end.utc, 'start_time/end_time stored in UTC with milliseconds',
    { sent: [start.local, end.local], got: [m.start_time, m.end_time] });
  check(m.participants.length === 2 && participant(m, 'alice').role === 'owner' && participant(m, 'bob').role === 'member' &&
    m.participants.every((p) => p.status === 'invited'),
  'participants deduplicated: alice owner, bob member, both invited', m.participants);

  const created = await deliver('meeting:created', (d) => d && d.meeting && d.meeting.meeting_id === id,
    [aliceDesk, bobPhone, bobDesk], [alicePhone, carol]);
  for (const [i, d] of created.entries()) {
    const who = [aliceDesk, bobPhone, bobDesk][i].label;
    checkKeys(d, ['meeting', 'encrypted_data'], `meeting:created to ${who}`);
    checkMeeting(d.meeting, `meeting:created meeting to ${who}`);
    check(d.encrypted_data && d.encrypted_data.title === 'enc:title-1' && d.encrypted_data.description === 'enc:description-1',
      `meeting:created encrypted_data relays title/description byte for byte to ${who}`, d.encrypted_data);
  }

  // update
  await ackRefused(bobPhone, 'meeting:update', { meeting_id: id, title: 'x' }, 'forbidden');
  await ackRefused(carol, 'meeting:update', { meeting_id: id, title: 'x' }, 'not_found');
  const u = await ackOK(alicePhone, 'meeting:update', { meeting_id: id, title: 'enc:title-2' }, ['meeting']);
  checkMeeting(u.meeting, 'meeting:update ack meeting');
  check(u.meeting.title === 'enc:title-2' && u.meeting.version > m.version, 'update ack: new title, higher version',
    { title: u.meeting.title, version: [m.version, u.meeting.version] });
  const updated = await deliver('meeting:updated', (d) => d && d.meeting && d.meeting.meeting_id === id,
    [aliceDesk, bobPhone, bobDesk], [alicePhone, carol]);
  for (const d of updated) {
    checkKeys(d, ['meeting'], 'meeting:updated');
    check(d.meeting.title === 'enc:title-2' && d.meeting.version === u.meeting.version, 'meeting:updated carries the new meeting', d.meeting);
  }

  // register-participant: bob's phone is the first joined participant.
  await ackOK(bobPhone, 'meeting:register-participant', { meeting_id: id });
  const fpj = await deliver('meeting:first_participant_joined', field('meeting_id', id),
    [alicePhone, aliceDesk, bobDesk], [bobPhone, carol]);
  for (const d of fpj) checkKeys(d, ['meeting_id'], 'meeting:first_participant_joined');
  const started = await deliver('meeting:started', field('meeting_id', id),
    [alicePhone, aliceDesk, bobDesk], [bobPhone, carol]);
  for (const d of started) checkKeys(d, ['meeting_id'], 'meeting:started');
  await ackOK(bobPhone, 'meeting:register-participant', { meeting_id: id }); // idempotent per device
  await ackRefused(alicePhone, 'meeting:start', { meeting_id: id }, 'conflict');

  // alice's phone joins: participant_joined to the joined (bob's phone only).
  await ackOK(alicePhone, 'meeting:register-participant', { meeting_id: id });
  const pj = await deliver('meeting:participant_joined', field('meeting_id', id),
    [bobPhone], [alicePhone, aliceDesk, bobDesk, carol]);
  checkKeys(pj[0], ['meeting_id', 'user_id'], 'meeting:participant_joined');
  check(pj[0].user_id === 'alice', 'meeting:participant_joined names alice', pj[0]);

  // leave: participant_left to the joined (alice's phone only).
  await ackOK(bobPhone, 'meeting:leave', { meeting_id: id });
  const pl = await deliver('meeting:participant_left', field('meeting_id', id),
    [alicePhone], [aliceDesk, bobPhone, bobDesk, carol]);
  checkKeys(pl[0], ['meeting_id', 'user_id'], 'meeting:participant_left');
  check(pl[0].user_id === 'bob', 'meeting:participant_left names bob', pl[0]);
  await ackRefused(bobPhone, 'meeting:leave', { meeting_id: id }, 'conflict');

  await tally([
    [alicePhone, { 'meeting:first_participant_joined': 1, 'meeting:started': 1, 'meeting:participant_left': 1 }],
    [aliceDesk, { 'meeting:created': 1, 'meeting:updated': 1, 'meeting:first_participant_joined': 1, 'meeting:started': 1 }],
    [bobPhone, { 'meeting:created': 1, 'meeting:updated': 1, 'meeting:participant_joined': 1 }],
    [bobDesk, { 'meeting:created': 1, 'meeting:updated': 1, 'meeting:first_participant_joined': 1, 'meeting:started': 1 }],
    [carol, {}],
  ]);
  if (MODE.label === 'polling') check(carol.transport === 'polling', 'carol/phone stayed on long-polling throughout', carol.transport);
  closeAll(everyone);
}

// 2. instant call.
async function callFlow() {
  const davePhone = await member('dave', 'phone');
  const daveDesk = await member('dave', 'desktop');
  const erinPhone = await member('erin', 'phone');
  const erinDesk = await member('erin', 'desktop');
  const carol = await outsider('carol');
  const everyone = [davePhone, daveDesk, erinPhone, erinDesk, carol];

  await ackRefused(davePhone, 'call:create', { participants: [] }, 'invalid_payload');
  const a = await ackOK(davePhone, 'call:create', { title: 'enc:call', participants: ['erin'] }, ['call']);
  const call = a.call;
  checkMeeting(call, 'call:create ack call');
  const id = call.meeting_id;
  check(CALL_RE.test(id), 'call id is call_<32 hex>', id);
  check(call.is_instant_call === true && call.status === 'live' && call.created_by === 'dave' && call.active_count === 1 &&
    isTime(call.started_at),
  'call: is_instant_call, live, started, created_by dave, active_count 1', call);
  const pd = participant(call, 'dave');
  const pe = participant(call, 'erin');
  check(call.participants.length === 2 && pd && pd.role === 'owner' && pd.status === 'joined' && isTime(pd.joined_at) &&
    pe && pe.role === 'member' && pe.status === 'invited',
  'call participants: dave owner joined, erin member invited', call.participants);
  await none('call:incoming', null, everyone, 'no broadcast on call:create');

  await ackRefused(davePhone, 'call:notify', { call_id: id, recipients: ['erin', 'zed'] }, 'invalid_payload', 'zed');
  await ackRefused(carol, 'call:notify', { call_id: id, recipients: ['erin'] }, 'not_found');
  const n = await ackOK(davePhone, 'call:notify', {
    call_id: id, recipients: ['erin'], caller: { display_name: 'enc:dave', avatar: 'enc:avatar' },
  }, ['notified_count']);
  check(n.notified_count === 1, 'call:notify ack notified_count is 1 (users, not devices)', n);

  const inc = await deliver('call:incoming', (d) => d && d.call && d.call.meeting_id === id,
    [erinPhone, erinDesk], [davePhone, daveDesk, carol]);
  for (const d of inc) {
    checkKeys(d, ['call', 'caller'], 'call:incoming');
    checkMeeting(d.call, 'call:incoming call');
    checkKeys(d.caller, ['user_id', 'display_name', 'avatar'], 'call:incoming caller');
    check(d.caller.user_id === 'dave' && d.caller.display_name === 'enc:dave' && d.caller.avatar === 'enc:avatar',
      'call:incoming caller relays user_id and the opaque display_name/avatar', d.caller);
    check(participant(d.call, 'erin').status === 'ringing', 'call:incoming shows erin ringing', d.call.participants);
  }

  // erin accepts on the phone: the desktop stops ringing via call:accepted.
  const acc = await ackOK(erinPhone, 'call:accept', { call_id: id });
  if (acc.call) checkMeeting(acc.call, 'call:accept ack call');
  const accepted = await deliver('call:accepted', field('call_id', id),
    [davePhone, daveDesk, erinDesk], [erinPhone, carol]);
  for (const d of accepted) {
    checkKeys(d, ['call_id', 'user_id', 'timestamp'], 'call:accepted');
    check(d.user_id === 'erin' && near(d.timestamp), 'call:accepted names erin with a current RFC 3339 ms timestamp', d);
  }
  const pj = await deliver('meeting:participant_joined', field('meeting_id', id), [davePhone], [daveDesk, erinPhone, erinDesk, carol]);
  check(sameKeys(pj[0], ['meeting_id', 'user_id']) && pj[0].user_id === 'erin', 'meeting:participant_joined {meeting_id, user_id: erin} to the caller in the call', pj[0]);
  await ackRefused(erinDesk, 'call:accept', { call_id: id }, 'conflict');

  // dave leaves (erin still present), then erin leaves: the call ends.
  await ackOK(davePhone, 'meeting:leave', { meeting_id: id });
  const pl = await deliver('meeting:participant_left', field('meeting_id', id), [erinPhone], [davePhone, daveDesk, erinDesk, carol]);
  check(sameKeys(pl[0], ['meeting_id', 'user_id']) && pl[0].user_id === 'dave', 'meeting:participant_left {meeting_id, user_id: dave}', pl[0]);
  await none('call:ended', null, everyone, 'call still has erin');
  await ackOK(erinPhone, 'meeting:leave', { meeting_id: id });
  const ended = await deliver('call:ended', field('call_id', id), [davePhone, daveDesk, erinPhone, erinDesk], [carol]);
  for (const d of ended) {
    checkKeys(d, ['call_id', 'reason'], 'call:ended');
    check(d.reason === 'completed', 'call:ended reason completed', d);
  }
  await ackRefused(erinDesk, 'call:accept', { call_id: id }, 'not_found');

  await tally([
    [davePhone, { 'call:accepted': 1, 'meeting:participant_joined': 1, 'call:ended': 1 }],
    [daveDesk, { 'call:accepted': 1, 'call:ended': 1 }],
    [erinPhone, { 'call:incoming': 1, 'meeting:participant_left': 1, 'call:ended': 1 }],
    [erinDesk, { 'call:incoming': 1, 'call:accepted': 1, 'call:ended': 1 }],
    [carol, {}],
  ]);
  closeAll(everyone);
}

// 3. external guest.
async function guestFlow() {
  const frankPhone = await member('frank', 'phone');
  const frankDesk = await member('frank', 'desktop');
  const ginaPhone = await member('gina', 'phone');
  const ginaDesk = await member('gina', 'desktop');
  const members = [frankPhone, frankDesk, ginaPhone, ginaDesk];

  const a = await ackOK(frankPhone, 'meeting:create', {
    title: 'enc:guest-meeting', description: 'enc:d', startTime: isoAt(1800e3).utc, endTime: isoAt(5400e3).utc,
    participants: ['gina'], allowExternal: true,
  }, ['meeting']);
  const id = a.meeting.meeting_id;

  await ackRefused(ginaPhone, 'meeting:generate_link', { meeting_id: id }, 'forbidden');
  const l = await ackOK(frankPhone, 'meeting:generate_link', { meeting_id: id }, ['token']);
  const token = l.token;
  check(UUID4_RE.test(token), 'meeting:generate_link token is a UUID v4', token);

  // REST: link info, then register.
  let r = await http('GET', `/api/meetings/external/join/${token}`);
  check(r.status === 200 && r.body && typeof r.body.meeting === 'object', 'GET /api/meetings/external/join/:token is 200 {meeting}', r);
  checkKeys(r.body.meeting, ['meeting_id', 'title', 'description', 'start_time', 'end_time', 'allow_external', 'has_active_participants'], 'link info meeting');
  check(r.body.meeting.meeting_id === id && r.body.meeting.allow_external === true && r.body.meeting.has_active_participants === false &&
    r.body.meeting.title === 'enc:guest-meeting' && isTime(r.body.meeting.start_time),
  'link info: the meeting, allow_external, no active participants yet', r.body.meeting);
  r = await http('GET', '/api/meetings/external/join/00000000-0000-4000-8000-000000000000');
  check(r.status === 404 && r.body && r.body.code === 'not_found' && typeof r.body.error === 'string', 'unknown link token is 404 {error, code: not_found}', r);
  r = await http('POST', '/api/meetings/external/register', { token, display_name: 'enc:guest', keys: { identity: 'k1' } });
  check(r.status === 201, 'POST /api/meetings/external/register is 201', r);
  checkKeys(r.body, ['session_id', 'session_token', 'meeting_id', 'expires_at'], 'registration');
  const sid = r.body.session_id;
  const stok = r.body.session_token;
  check(r.body.meeting_id === id && typeof sid === 'string' && sid.length > 0 && typeof stok === 'string' && stok.length >= 22 && isTime(r.body.expires_at),
    'registration: session_id, a session_token of 128+ bits, the meeting, expires_at', r.body);

  await expectRefusedHandshake('guest-wrong-token', '/external', { session_id: sid, session_token: stok + 'x' }, 'unauthorized');
  const guest = await connect('guest', '/external', { session_id: sid, session_token: stok });
  // A second guest of the same meeting: it hears first_participant_joined
  // (guests of the meeting) but never the first guest's admission.
  r = await http('POST', '/api/meetings/external/register', { token, display_name: 'enc:other-guest' });
  check(r.status === 201 && r.body && r.body.session_id !== sid, 'a second guest registers with the same link', r);
  const other = await connect('other-guest', '/external', { session_id: r.body.session_id, session_token: r.body.session_token });

  await ackRefused(guest, 'meeting:guest_join', { meeting_id: id, session_id: sid }, 'conflict');
  await ackRefused(guest, 'meeting:admit_guest', { meeting_id: id, session_id: sid }, 'forbidden');

  // The host registers: the guest hears first_participant_joined.
  await ackOK(frankPhone, 'meeting:register-participant', { meeting_id: id });
  const fpj = await deliver('meeting:first_participant_joined', field('meeting_id', id), [guest, other, frankDesk, ginaPhone, ginaDesk], [frankPhone]);
  for (const d of fpj) checkKeys(d, ['meeting_id'], 'meeting:first_participant_joined');
  await ackOK(ginaPhone, 'meeting:register-participant', { meeting_id: id });
  await deliver('meeting:participant_joined', (d) => d && d.meeting_id === id && d.user_id === 'gina', [frankPhone], [frankDesk, ginaPhone, ginaDesk, guest, other]);

  // The guest asks to join: the joined participants hear it.
  await ackOK(guest, 'meeting:guest_join', { meeting_id: id, session_id: sid, display_name: 'enc:guest-2' });
  const gj = await deliver('meeting:guest_join', field('session_id', sid), [frankPhone, ginaPhone], [frankDesk, ginaDesk, guest, other]);
  for (const d of gj) {
    checkKeys(d, ['meeting_id', 'session_id', 'display_name', 'timestamp'], 'meeting:guest_join');
    check(d.meeting_id === id && d.display_name === 'enc:guest-2' && near(d.timestamp), 'meeting:guest_join carries the new opaque name and a timestamp', d);
  }
  await ackRefused(guest, 'meeting:guest_join', { meeting_id: id, session_id: sid }, 'conflict');
  await ackRefused(ginaDesk, 'meeting:admit_guest', { meeting_id: id, session_id: sid }, 'forbidden');

  // gina admits: the guest and the other joined participant hear it.
  await ackOK(ginaPhone, 'meeting:admit_guest', { meeting_id: id, session_id: sid });
  const st = await deliver('meeting:admission_status', field('session_id', sid), [guest, frankPhone], [ginaPhone, ginaDesk, frankDesk, other]);
  for (const d of st) {
    checkKeys(d, ['meeting_id', 'session_id', 'status', 'admitted_by'], 'meeting:admission_status');
    check(d.meeting_id === id && d.status === 'admitted' && d.admitted_by === 'gina', 'meeting:admission_status admitted by gina', d);
  }
  await ackRefused(frankPhone, 'meeting:decline_guest', { meeting_id: id, session_id: sid }, 'conflict');

  await ackOK(guest, 'meeting:leave', { meeting_id: id });
  const gl = await deliver('meeting:guest_left', field('session_id', sid), [frankPhone, ginaPhone], [frankDesk, ginaDesk, guest, other]);
  checkKeys(gl[0], ['meeting_id', 'session_id'], 'meeting:guest_left');

  const leaked = [...members, other].filter((c) => c.events.some((e) => show(e.data).includes(stok)));
  check(leaked.length === 0, 'the session_token was never broadcast', leaked.map((c) => c.label));

  await tally([
    [frankPhone, { 'meeting:participant_joined': 1, 'meeting:guest_join': 1, 'meeting:admission_status': 1, 'meeting:guest_left': 1 }],
    [frankDesk, { 'meeting:created': 1, 'meeting:first_participant_joined': 1, 'meeting:started': 1 }],
    [ginaPhone, { 'meeting:created': 1, 'meeting:first_participant_joined': 1, 'meeting:started': 1, 'meeting:guest_join': 1, 'meeting:guest_left': 1 }],
    [ginaDesk, { 'meeting:created': 1, 'meeting:first_participant_joined': 1, 'meeting:started': 1 }],
    [guest, { 'meeting:first_participant_joined': 1, 'meeting:admission_status': 1 }],
    [other, { 'meeting:first_participant_joined': 1 }],
  ]);
  closeAll([...members, guest, other]);
}

// 4. presence across disconnect and reconnect.
async function presenceFlow() {
  const grace = OPT.graceMs;
  const watcher = await member('watcher', 'desktop');
  const isHank = field('user_id', 'hank');
  const conns = () => watcher.count('presence:user_connected', isHank);
  const discs = () => watcher.count('presence:user_disconnected', isHank);
  const hankPresence = (e) => e.name.startsWith('presence:') && isHank(e.data);

  const hankPhone = await member('hank', 'phone');
  const [c1] = await deliver('presence:user_connected', isHank, [watcher], [], 'hank');
  checkKeys(c1, ['user_id', 'status', 'timestamp'], 'presence:user_connected');
  check(c1.status === 'online' && near(c1.timestamp), 'presence:user_connected hank online with a current timestamp', c1);

  const hankDesk = await member('hank', 'desktop');
  await ackOK(hankPhone, 'presence:heartbeat');
  await ackOK(hankDesk, 'presence:heartbeat', {});
  await sleep(OPT.quietMs);
  check(conns() === 1, "hank's second device and heartbeats that change nothing announce nothing", `${conns()} user_connected`);

  // One device goes: still online. Both go: offline after the grace.
  hankPhone.close();
  await sleep(grace + OPT.quietMs);
  check(discs() === 0, 'hank still has the desktop: no presence:user_disconnected', `${discs()} user_disconnected`);
  const t0 = Date.now();
  hankDesk.close();
  const [d1] = await deliver('presence:user_disconnected', isHank, [watcher], [], 'hank, both devices gone');
  const elapsed = watcher.matching('presence:user_disconnected', isHank)[0].at - t0;
  check(elapsed >= grace * 0.9, `presence:user_disconnected came after the ${grace} ms grace`, `${elapsed} ms`);
  checkKeys(d1, ['user_id', 'last_seen'], 'presence:user_disconnected');
  check(isTime(d1.last_seen) && Date.parse(d1.last_seen) >= t0 - 1000 && Date.parse(d1.last_seen) <= Date.now() + 1000,
    'presence:user_disconnected last_seen is an RFC 3339 ms time of the disconnect', { last_seen: d1.last_seen, t0: new Date(t0).toISOString() });

  const q = await http('POST', '/api/presence/query', { user_ids: ['hank', 'watcher'] }, memberToken('watcher', 'desktop'));
  check(q.status === 200 && Array.isArray(q.body) && q.body.length === 2, 'POST /api/presence/query is 200 [..]', q);
  const qh = q.body.find((p) => p.user_id === 'hank');
  const qw = q.body.find((p) => p.user_id === 'watcher');
  check(qh && qh.status === 'offline' && isTime(qh.last_seen) && qw && qw.status === 'online',
    'presence query: hank offline with last_seen, watcher online', q.body);

  // Reconnect: online again, once.
  const hankPhone2 = await member('hank', 'phone');
  const c2 = await watcher.waitFor('presence:user_connected', (d) => isHank(d) && d !== c1);
  check(c2.status === 'online' && near(c2.timestamp), 'presence:user_connected hank online again after reconnecting', c2);
  await sleep(OPT.quietMs);
  check(conns() === 2 && discs() === 1, 'watcher saw that reconnect exactly once', { connected: conns(), disconnected: discs() });

  // A reload within the grace: no event at all.
  hankPhone2.close();
  await sleep(Math.min(100, grace / 4));
  const hankPhone3 = await member('hank', 'phone');
  await sleep(grace * 2);
  check(conns() === 2 && discs() === 1, 'a reload within the grace causes no presence event', { connected: conns(), disconnected: discs() });

  // A network drop: the client reconnects by itself within the grace.
  const hankDesk2 = await member('hank', 'desktop', { reconnection: true });
  hankPhone3.close();
  const dropped = onceWithin(hankDesk2.sock, 'disconnect', OPT.waitMs, 'hank/desktop transport drop');
  const reconnected = new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new CheckFailed(`hank/desktop did not reconnect by itself within ${OPT.waitMs} ms`)), OPT.waitMs);
    hankDesk2.sock.once('disconnect', () => hankDesk2.sock.once('connect', () => { clearTimeout(t); resolve(); }));
  });
  const engine = hankDesk2.sock.io.engine;
  if (engine.transport.ws) engine.transport.ws.close(); // the connection drops: no Socket.IO DISCONNECT packet
  else engine.close();
  const [reason] = await dropped;
  check(reason === 'transport close' || reason === 'forced close', `hank/desktop lost its transport (${reason})`, reason);
  await reconnected;
  ok('hank/desktop reconnected by itself');
  if (MODE.label === 'polling') {
    if (hankDesk2.transport !== 'websocket') await onceWithin(hankDesk2.sock.io.engine, 'upgrade', OPT.waitMs, 'hank/desktop upgrade after reconnect');
    check(hankDesk2.transport === 'websocket', 'hank/desktop upgraded again after reconnecting', hankDesk2.transport);
  }
  await sleep(grace * 2);
  await tally([[watcher, { 'presence:user_connected': 2, 'presence:user_disconnected': 1 }]], hankPresence);
  await ackOK(hankDesk2, 'presence:heartbeat');

  // Finally the last device goes: exactly one more offline transition.
  hankDesk2.close();
  const d2 = await watcher.waitFor('presence:user_disconnected', (d) => isHank(d) && d !== d1, grace + OPT.waitMs);
  check(sameKeys(d2, ['user_id', 'last_seen']), 'hank offline again once the last device is gone', d2);
  await tally([[watcher, { 'presence:user_connected': 2, 'presence:user_disconnected': 2 }]], hankPresence);
  closeAll([watcher]);
}

const FLOWS = { meeting: meetingFlow, call: callFlow, guest: guestFlow, presence: presenceFlow };

async function main() {
  const names = OPT.flows ? OPT.flows.split(',').map((s) => s.trim()).filter(Boolean) : Object.keys(FLOWS);
  for (const n of names) if (!FLOWS[n]) usage(`unknown flow ${n}`);
  console.log(`interop: socket.io-client ${require('socket.io-client/package.json').version} against ${OPT.url} over ${MODE.label}; flows ${names.join(', ')}`);
  for (const n of names) {
    currentFlow = n;
    const t = Date.now();
    await FLOWS[n]();
    console.log(`PASS [${MODE.label}] ${n} (${Date.now() - t} ms)`);
  }
  console.log(`PASS [${MODE.label}] all ${names.length} flows, ${checks} checks`);
}

const overall = setTimeout(() => {
  console.error(`FAIL [${MODE.label}] ${currentFlow}: the flows did not finish within 120 s`);
  process.exit(1);
}, 120e3);

main().then(() => {
  clearTimeout(overall);
  for (const c of allClients) c.sock.disconnect();
  process.exit(0);
}, (err) => {
  clearTimeout(overall);
  const msg = err instanceof CheckFailed ? err.message : (err && err.stack) || String(err);
  console.error(`FAIL ${clock()} [${MODE.label}] ${currentFlow}: ${msg}`);
  for (const c of allClients) c.sock.disconnect();
  process.exit(1);
});
