'use strict';
// Shared helpers of the topology scripts (flow.js, drill.js): the npm
// socket.io-client 4.x driven through the nginx of deploy/local-cluster.sh.
//
// The client comes from test/interop/node_modules (one pinned copy in the
// repository: test/interop/package-lock.json); test/topology has no
// dependencies of its own.

const path = require('path');
const fs = require('fs');

const { io } = require(path.join(__dirname, '..', 'interop', 'node_modules', 'socket.io-client'));
const { EventLog } = require(path.join(__dirname, '..', 'interop', 'events'));

const T0 = Date.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => Date.now();

function log(...args) {
  console.error(`[${((now() - T0) / 1000).toFixed(2)}s]`, ...args);
}

function show(v) {
  try {
    const s = JSON.stringify(v);
    return s && s.length > 1500 ? s.slice(0, 1500) + '…' : s;
  } catch (e) {
    return String(v);
  }
}

// parseArgs reads --name value pairs into an object (camelCased names).
function parseArgs(argv, defaults) {
  const o = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--') || i + 1 >= argv.length) throw new Error(`bad argument ${a}`);
    const k = a.slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    const v = argv[++i];
    o[k] = typeof defaults[k] === 'number' ? Number(v) : v;
  }
  return o;
}

function loadTokens(file) {
  const t = JSON.parse(fs.readFileSync(file, 'utf8'));
  return (user, device) => {
    const tok = t.members[user] && t.members[user][device];
    if (!tok) throw new Error(`no token for ${user}/${device}`);
    return tok;
  };
}

// fetchWithin is fetch bounded by ms.
async function fetchWithin(url, init = {}, ms = 3000) {
  const ctl = new AbortController();
  const t = setTimeout(() => ctl.abort(), ms);
  try {
    const res = await fetch(url, { ...init, signal: ctl.signal });
    const text = await res.text();
    return { status: res.status, text };
  } finally {
    clearTimeout(t);
  }
}

async function httpJSON(base, method, p, body, bearer) {
  const headers = { 'Content-Type': 'application/json' };
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const r = await fetchWithin(base + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let json;
  try { json = JSON.parse(r.text); } catch (e) { json = r.text; }
  return { status: r.status, body: json };
}

// probeNode tells which node nginx sends the stickiness key to: an Engine.IO
// handshake through nginx with ?sb_affinity=key creates a session on one
// node; a close packet ("1") posted with that sid to each node directly is
// accepted (200) only by the node that holds it, and ends the probe session.
// No Socket.IO connect happens, so nothing about any user is created.
async function probeNode(nginxURL, nodeURLs, key) {
  const q = `EIO=4&transport=polling&sb_affinity=${encodeURIComponent(key)}`;
  const h = await fetchWithin(`${nginxURL}/socket.io/?${q}&t=${now()}`);
  if (h.status !== 200 || h.text[0] !== '0') throw new Error(`probe handshake for ${key}: ${h.status} ${h.text}`);
  const sid = JSON.parse(h.text.slice(1)).sid;
  for (let i = 0; i < nodeURLs.length; i++) {
    const r = await fetchWithin(`${nodeURLs[i]}/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`,
      { method: 'POST', body: '1', headers: { 'Content-Type': 'text/plain;charset=UTF-8' } });
    if (r.status === 200) return i;
  }
  throw new Error(`probe: no node holds the session of key ${key}`);
}

// keysFor finds stickiness keys that nginx maps to the wanted nodes: want is
// a list of node indexes (repeats allowed); returns keys in the same order.
async function keysFor(nginxURL, nodeURLs, prefix, want) {
  const pools = nodeURLs.map(() => []);
  const out = new Array(want.length);
  const need = nodeURLs.map((_, i) => want.filter((w) => w === i).length);
  for (let i = 0; i < 40 * want.length + 100; i++) {
    if (need.every((n, k) => pools[k].length >= n)) break;
    const key = `${prefix}-${i}`;
    const n = await probeNode(nginxURL, nodeURLs, key);
    if (pools[n].length < need[n]) pools[n].push(key);
  }
  want.forEach((w, i) => {
    const k = pools[w].shift();
    if (!k) throw new Error(`no stickiness key found for node ${w + 1}`);
    out[i] = k;
  });
  return out;
}

// Client is one socket.io-client socket that records what it receives and
// its connection lifecycle (for reconnect times).
class Client {
  constructor(label, url, nsp, auth, o = {}) {
    this.label = label;
    this.node = o.node === undefined ? -1 : o.node; // node index the key maps to (or is pinned to)
    this.pinned = !!o.pinned;
    this.transports = o.transports || ['websocket'];
    this.connects = [];
    this.disconnects = [];
    this.connectErrors = 0;
    this.reconnectMs = [];
    this.initialTransport = '';
    this.upgrades = 0;
    this.history = [];
    this.onReconnect = null;
    const opts = {
      transports: this.transports,
      upgrade: this.transports.length > 1,
      auth,
      forceNew: true,
      multiplex: false,
      autoConnect: false,
      reconnection: !!o.reconnection,
      timeout: o.timeoutMs || 5000,
    };
    if (o.affinity) opts.query = { sb_affinity: o.affinity };
    // Reconnection settings are the client's defaults (delay 1 s doubling to
    // 5 s, randomization 0.5) unless given: what browsers and apps run with.
    if (o.reconnectionDelay) opts.reconnectionDelay = o.reconnectionDelay;
    if (o.reconnectionDelayMax) opts.reconnectionDelayMax = o.reconnectionDelayMax;
    const sock = io(url + nsp, opts);
    this.sock = sock;
    const note = (what) => { this.history.push(`${now() - T0}ms ${what}`); if (this.history.length > 40) this.history.shift(); };
    // downSince: the first disconnect after the last connect. The client
    // also reports "disconnect" for each failed reconnect attempt (e.g.
    // "transport error"); the reconnect time runs from the first one.
    this.downSince = null;
    sock.on('connect', () => {
      const t = now();
      note(`connect ${sock.id}`);
      if (this.downSince !== null) this.reconnectMs.push(t - this.downSince);
      this.downSince = null;
      const first = this.connects.length === 0;
      this.connects.push(t);
      if (!first && this.onReconnect) this.onReconnect();
    });
    sock.on('disconnect', (reason) => {
      note(`disconnect ${reason}`);
      if (this.downSince === null && this.connects.length > 0) {
        this.downSince = now();
        this.disconnects.push({ at: this.downSince, reason });
      }
    });
    sock.on('connect_error', (err) => { this.connectErrors++; note(`connect_error ${err.message}`); });
    sock.io.on('open', () => {
      const engine = sock.io.engine;
      if (!this.initialTransport) this.initialTransport = engine.transport.name;
      engine.on('upgrade', () => { this.upgrades++; });
    });
    this.log = new EventLog(sock, (name, ms, got) => new Error(`${this.label} did not receive ${name} within ${ms} ms; got ${show(got)}`));
  }

  get connected() { return this.sock.connected; }
  get transport() { return this.sock.io.engine ? this.sock.io.engine.transport.name : ''; }

  // open connects and waits for connect; a connect_error or no answer within
  // ms is an error.
  open(ms = 6000) {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.label}: no connect within ${ms} ms; ${show(this.history)}`)), ms);
      this.sock.once('connect', () => { clearTimeout(t); resolve(this); });
      this.sock.once('connect_error', (err) => {
        if (this.sock.io.opts.reconnection) return; // it will try again
        clearTimeout(t);
        reject(new Error(`${this.label}: connect_error ${err.message} ${show(err.data)}`));
      });
      this.sock.connect();
    });
  }

  // waitUpgrade waits for the polling -> websocket upgrade.
  waitUpgrade(ms = 5000) {
    if (this.transport === 'websocket') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.label}: no upgrade within ${ms} ms (transport ${this.transport})`)), ms);
      this.sock.io.engine.once('upgrade', () => { clearTimeout(t); resolve(); });
    });
  }

  get events() { return this.log.events; }
  matching(name, pred) { return this.log.matching(name, pred); }
  count(name, pred) { return this.log.count(name, pred); }
  waitFor(name, pred, ms = 4000) { return this.log.waitFor(name, pred, ms); }

  // emitAck resolves {ack} or {err} (timeout, or "socket has been
  // disconnected" when the transport closed before the ack came).
  emitAck(event, payload, ms = 5000) {
    return new Promise((resolve) => {
      const cb = (err, ack) => resolve(err ? { err } : { ack });
      if (payload === undefined) this.sock.timeout(ms).emit(event, cb);
      else this.sock.timeout(ms).emit(event, payload, cb);
    });
  }

  close() { this.sock.disconnect(); }
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

function summary(values) {
  const s = [...values].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), max: s.length ? s[s.length - 1] : null };
}

// connections reads switchboard_connections{namespace} from a node's /metrics.
async function connections(nodeURL, nsp = '/') {
  const r = await fetchWithin(`${nodeURL}/metrics`);
  const re = new RegExp(`^switchboard_connections\\{namespace="${nsp.replace('/', '\\/')}"\\} (\\S+)$`, 'm');
  const m = r.text.match(re);
  return m ? Number(m[1]) : 0;
}

module.exports = { io, T0, sleep, now, log, show, parseArgs, loadTokens, fetchWithin, httpJSON, probeNode, keysFor, Client, summary, connections };
