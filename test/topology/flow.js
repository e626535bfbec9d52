'use strict';
// Topology flow: drives a local cluster (deploy/local-cluster.sh: redis,
// three gateway nodes, nginx) THROUGH NGINX with the npm socket.io-client,
// every user on two devices that nginx sends to different nodes:
//
//   instant call: call:create -> call:notify -> call:incoming on both of the
//   callee's devices -> call:accept -> call:accepted on the other three
//   devices -> both leave -> call:ended on all four;
//   presence: a user's first device announces them online once, the second
//   nothing, closing both announces them offline once after the grace;
//   REST presence query through nginx.
//
// Every ack is checked and every delivery must arrive exactly once on each
// socket of its audience and never elsewhere. Run by test/topology_test.go:
//
//   node flow.js --url http://127.0.0.1:NGINX --nodes URL1,URL2,URL3 \
//        --tokens tokens.json --transports polling,websocket|websocket \
//        --prefix pu --grace-ms 1000
//
// Prints one line per check on stderr and a JSON summary on stdout; exits 1
// at the first failure.

const { sleep, log, show, parseArgs, loadTokens, httpJSON, keysFor, Client, connections } = require('./lib');

const OPT = parseArgs(process.argv.slice(2), { url: '', nodes: '', tokens: '', transports: 'websocket', prefix: 'x', graceMs: 1000, quietMs: 400 });
const NODES = OPT.nodes.split(',').filter(Boolean);
const TRANSPORTS = OPT.transports.split(',');
const UPGRADE = TRANSPORTS.length > 1;
const token = loadTokens(OPT.tokens);
const P = (u) => `${OPT.prefix}-${u}`;

let checks = 0;
function check(cond, msg, detail) {
  if (!cond) throw new Error(detail === undefined ? msg : `${msg}: ${show(detail)}`);
  checks++;
  log(`ok   [${OPT.transports}] ${msg}`);
}

const opened = [];

async function device(user, dev, node, key) {
  const c = new Client(`${user}/${dev}@node${node + 1}`, OPT.url, '/', { token: token(P(user), dev) },
    { transports: TRANSPORTS, affinity: key, node });
  opened.push(c);
  await c.open();
  if (UPGRADE) {
    await c.waitUpgrade();
    check(c.initialTransport === 'polling' && c.transport === 'websocket' && c.upgrades === 1,
      `${c.label} connected over polling and upgraded to websocket`, { initial: c.initialTransport, now: c.transport, upgrades: c.upgrades });
  } else {
    check(c.initialTransport === 'websocket' && c.transport === 'websocket', `${c.label} connected over websocket only`, c.initialTransport);
  }
  return c;
}

async function ackOK(c, event, payload, fields = []) {
  const r = await c.emitAck(event, payload);
  check(!r.err && r.ack && r.ack.success === true && fields.every((f) => f in r.ack), `${c.label} ${event} ack is {success: true${fields.map((f) => ', ' + f).join('')}}`, r.err ? r.err.message : r.ack);
  return r.ack;
}

// deliver: every client of `to` receives event (matching pred) exactly once,
// every client of `notTo` never.
async function deliver(event, pred, to, notTo, what) {
  await Promise.all(to.map((c) => c.waitFor(event, pred)));
  await sleep(OPT.quietMs);
  for (const c of to) check(c.count(event, pred) === 1, `${c.label} received ${event}${what ? ` (${what})` : ''} exactly once`, c.count(event, pred));
  for (const c of notTo) check(c.count(event, pred) === 0, `${c.label} did not receive ${event}${what ? ` (${what})` : ''}`, c.count(event, pred));
}

async function main() {
  // Devices: each user's two devices on different nodes, through nginx.
  const plan = [
    ['alice', 'phone', 0], ['alice', 'desktop', 1],
    ['bob', 'phone', 1], ['bob', 'desktop', 2],
    ['watcher', 'phone', 2], ['watcher', 'desktop', 0],
    ['hank', 'phone', 0], ['hank', 'desktop', 1],
  ];
  const keys = await keysFor(OPT.url, NODES, `${OPT.prefix}-${process.pid}`, plan.map((p) => p[2]));
  const d = {};
  for (const [i, [u, dev, n]] of plan.entries()) {
    if (u === 'hank') continue;
    d[`${u}/${dev}`] = await device(u, dev, n, keys[i]);
  }
  const hankKeys = [keys[6], keys[7]];
  const alice = [d['alice/phone'], d['alice/desktop']];
  const bob = [d['bob/phone'], d['bob/desktop']];
  const watcher = [d['watcher/phone'], d['watcher/desktop']];

  // The devices really are spread: each node's connection gauge counts its share.
  const want = NODES.map((_, i) => opened.filter((c) => c.node === i).length);
  let got = [];
  for (let i = 0; i < 30; i++) {
    got = await Promise.all(NODES.map((u) => connections(u)));
    if (got.every((g, k) => g === want[k])) break;
    await sleep(100);
  }
  check(got.every((g, k) => g === want[k]), `sockets per node as nginx was asked to place them ${show(want)}`, got);

  // ---- instant call
  const c = await ackOK(alice[0], 'call:create', { participants: [P('bob')] }, ['call']);
  const id = c.call.meeting_id;
  check(/^call_[0-9a-f]{32}$/.test(id) && c.call.status === 'live' && c.call.is_instant_call === true, 'call:create ack carries a live instant call', c.call);
  const n = await ackOK(alice[0], 'call:notify', { call_id: id, recipients: [P('bob')] }, ['notified_count']);
  check(n.notified_count === 1, 'call:notify notified_count is 1 (users, not devices)', n);
  const forCall = (x) => x && ((x.call && x.call.meeting_id === id) || x.call_id === id);
  await deliver('call:incoming', forCall, bob, [...alice, ...watcher], 'on both of bob\'s devices');
  const inc = bob[0].matching('call:incoming', forCall)[0].data;
  check(inc.caller && inc.caller.user_id === P('alice'), 'call:incoming names the caller', inc.caller);
  await ackOK(bob[1], 'call:accept', { call_id: id });
  await deliver('call:accepted', (x) => forCall(x) && x.user_id === P('bob'), [alice[0], alice[1], bob[0]], [bob[1], ...watcher]);
  await ackOK(alice[0], 'meeting:leave', { meeting_id: id });
  await ackOK(bob[1], 'meeting:leave', { meeting_id: id });
  await deliver('call:ended', forCall, [...alice, ...bob], watcher);
  check(alice[1].matching('call:ended', forCall)[0].data.reason === 'completed', 'call:ended reason completed', alice[1].matching('call:ended', forCall)[0].data);

  // ---- presence, across nodes: hank's devices on node 1 and 2, the
  // watcher's on node 3 and 1.
  const isHank = (x) => x && x.user_id === P('hank');
  const hankPhone = await device('hank', 'phone', 0, hankKeys[0]);
  await deliver('presence:user_connected', isHank, watcher, [], 'hank online');
  check(watcher[0].matching('presence:user_connected', isHank)[0].data.status === 'online', 'hank announced online', watcher[0].matching('presence:user_connected', isHank)[0].data);
  const hankDesk = await device('hank', 'desktop', 1, hankKeys[1]);
  await ackOK(hankPhone, 'presence:heartbeat');
  await ackOK(hankDesk, 'presence:heartbeat', {});
  await sleep(OPT.quietMs);
  for (const w of watcher) check(w.count('presence:user_connected', isHank) === 1, `${w.label}: a second device and heartbeats announce nothing`, w.count('presence:user_connected', isHank));
  let r = await httpJSON(OPT.url, 'POST', '/api/presence/query', { user_ids: [P('hank'), P('bob')] }, token(P('watcher'), 'phone'));
  check(r.status === 200 && Array.isArray(r.body) && r.body.find((x) => x.user_id === P('hank')).status === 'online' &&
    r.body.find((x) => x.user_id === P('bob')).status === 'online', 'REST presence query through nginx: hank and bob online', r);
  hankPhone.close();
  await sleep(OPT.graceMs + OPT.quietMs);
  for (const w of watcher) check(w.count('presence:user_disconnected', isHank) === 0, `${w.label}: hank still online with one device left`, w.count('presence:user_disconnected', isHank));
  hankDesk.close();
  await deliver('presence:user_disconnected', isHank, watcher, [], 'hank offline');
  await sleep(OPT.graceMs);
  for (const w of watcher) check(w.count('presence:user_disconnected', isHank) === 1, `${w.label}: hank offline announced exactly once`, w.count('presence:user_disconnected', isHank));
  const off = watcher[0].matching('presence:user_disconnected', isHank)[0].data;
  check(typeof off.last_seen === 'string' && /Z$/.test(off.last_seen), 'presence:user_disconnected carries last_seen', off);
  r = await httpJSON(OPT.url, 'POST', '/api/presence/query', { user_ids: [P('hank')] }, token(P('watcher'), 'phone'));
  check(r.status === 200 && r.body[0].status === 'offline' && r.body[0].last_seen, 'REST presence query: hank offline with last_seen', r);

  for (const x of opened) check(x.disconnects.length === 0 || [hankPhone, hankDesk].includes(x), `${x.label} never lost its connection`, x.history);
  const placement = opened.map((x) => ({ label: x.label, node: x.node + 1, transport: x.transport, initial: x.initialTransport, upgrades: x.upgrades }));
  for (const x of opened) x.close();
  process.stdout.write(JSON.stringify({ ok: true, checks, transports: TRANSPORTS, placement }) + '\n');
}

const deadline = setTimeout(() => { log('FAIL flow.js did not finish within 60 s'); process.exit(1); }, 60000);
main().then(() => { clearTimeout(deadline); setTimeout(() => process.exit(0), 100); }).catch((e) => {
  log(`FAIL ${e.message}`);
  for (const x of opened) log(`  ${x.label}: ${show(x.history)}`);
  process.exit(1);
});
