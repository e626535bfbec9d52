'use strict';
// Heartbeat interop: one npm socket.io-client 4.x member on each transport
// mode stays connected across several Engine.IO heartbeats of a node whose
// ping interval is short, and a client that stops answering pings is
// dropped. test/interop_test.go (TestInteropNpmHeartbeat) runs it:
//
//   node heartbeat.js --url http://127.0.0.1:PORT --token <jwt> --pings N
//
// Checks, one line each, exit 1 at the first failure:
//   - a websocket client and a polling-then-upgraded client each receive at
//     least N pings (engine "ping" events) without a disconnect;
//   - a websocket client that stops sending pongs is disconnected.

const { io } = require('socket.io-client');

function parseArgs(argv) {
  const o = { url: '', token: '', pings: 3 };
  for (let i = 0; i < argv.length; i++) {
    switch (argv[i]) {
      case '--url': o.url = argv[++i]; break;
      case '--token': o.token = argv[++i]; break;
      case '--pings': o.pings = Number(argv[++i]); break;
      default: fail(`unknown argument ${argv[i]}`);
    }
  }
  if (!o.url || !o.token || !(o.pings > 0)) fail('--url, --token and --pings are required');
  return o;
}

function fail(msg) {
  console.log(`FAIL ${msg}`);
  process.exit(1);
}

function connect(o, transports) {
  return io(o.url, { transports, auth: { token: o.token }, reconnection: false, forceNew: true });
}

// survives resolves once socket s has seen n pings while connected, and
// fails if it disconnects first or the pings do not come in time.
function survives(name, s, n, timeoutMs) {
  return new Promise((resolve) => {
    let pings = 0;
    const timer = setTimeout(() => fail(`${name}: ${pings} of ${n} pings in ${timeoutMs} ms`), timeoutMs);
    s.on('connect_error', (err) => fail(`${name}: connect_error ${err.message}`));
    s.on('disconnect', (reason) => fail(`${name}: disconnected (${reason}) after ${pings} pings`));
    s.io.on('ping', () => {
      pings++;
      if (pings === n) {
        clearTimeout(timer);
        console.log(`ok ${name}: ${pings} pings answered, still connected (${s.io.engine.transport.name})`);
        s.off('disconnect');
        s.disconnect();
        resolve();
      }
    });
  });
}

// dropped resolves once socket s, which stops answering pings once
// connected, is disconnected by the server.
function dropped(name, s, timeoutMs) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => fail(`${name}: still connected ${timeoutMs} ms after it stopped answering pings`), timeoutMs);
    s.on('connect_error', (err) => fail(`${name}: connect_error ${err.message}`));
    s.on('connect', () => {
      // engine.io-client 6 answers a ping with _sendPacket("pong").
      const engine = s.io.engine;
      const send = engine._sendPacket.bind(engine);
      engine._sendPacket = (type, ...rest) => { if (type !== 'pong') send(type, ...rest); };
    });
    s.on('disconnect', (reason) => {
      clearTimeout(timer);
      console.log(`ok ${name}: disconnected (${reason}) once it stopped answering pings`);
      resolve();
    });
  });
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const budget = 20000;
  await Promise.all([
    survives('websocket client', connect(o, ['websocket']), o.pings, budget),
    survives('upgraded client', connect(o, ['polling', 'websocket']), o.pings, budget),
    dropped('silent client', connect(o, ['websocket']), budget),
  ]);
  process.exit(0);
}

main().catch((err) => fail(err.stack || String(err)));
