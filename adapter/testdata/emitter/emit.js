// Drives @socket.io/redis-emitter 5.x against Go nodes for adapter tests.
//
//   node emit.js emit <redis-url>   publish the interop scenario, then exit
//   node emit.js decode <hex>       decode one broadcast with notepack.io
//                                   (what the Node adapter does) and print
//                                   it as JSON; binary as {"$bin": [...]}
"use strict";

const { createClient } = require("redis");
const { Emitter } = require("@socket.io/redis-emitter");
const notepack = require("notepack.io");

async function emit(url) {
  const client = createClient({ url });
  client.on("error", (err) => {
    console.error("redis:", err.message);
    process.exitCode = 1;
  });
  await client.connect();
  const io = new Emitter(client);
  io.to("user:bob").emit("msg", "node-user-bob", { n: 1 });
  io.to("room:x").except("user:dave").emit("msg", "node-room-except");
  io.except("user:frank").emit("msg", "node-all");
  io.to("user:bob").emit("msg", "node-binary", Buffer.from([1, 2, 3]));
  io.to(["user:carol", "user:dave"]).emit("msg", "node-two-rooms");
  io.in("user:carol").socketsJoin("room:joined");
  io.in("user:frank").disconnectSockets(true);
  // PUBLISH replies come back in order: wait for the last one.
  await client.ping();
  await client.quit();
}

function toJSON(v) {
  if (Buffer.isBuffer(v)) return { $bin: [...v] };
  if (Array.isArray(v)) return v.map(toJSON);
  if (v && typeof v === "object") {
    const o = {};
    for (const k of Object.keys(v)) o[k] = toJSON(v[k]);
    return o;
  }
  return v === undefined ? null : v;
}

async function main() {
  const [mode, arg] = process.argv.slice(2);
  if (mode === "emit") return emit(arg);
  if (mode === "decode") {
    process.stdout.write(JSON.stringify(toJSON(notepack.decode(Buffer.from(arg, "hex")))));
    return;
  }
  throw new Error("usage: emit.js emit <redis-url> | decode <hex>");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
