'use strict';
// EventLog records every event a socket.io-client socket receives and lets a
// test wait for one. Shared by the interop flows (flows.js) and the topology
// drills (../topology/lib.js).

class EventLog {
  // timeoutError(name, ms, receivedNames) builds the error a waitFor that
  // times out rejects with, so each caller keeps its own failure message.
  constructor(sock, timeoutError) {
    this.events = [];
    this.waiters = [];
    this.timeoutError = timeoutError;
    sock.onAny((name, ...args) => {
      this.events.push({ name, data: args[0], at: Date.now() });
      for (const w of [...this.waiters]) w();
    });
  }

  matching(name, pred) {
    return this.events.filter((e) => e.name === name && (!pred || pred(e.data)));
  }

  count(name, pred) {
    return this.matching(name, pred).length;
  }

  // waitFor resolves with the data of the first event named name matching
  // pred, received before or within ms.
  waitFor(name, pred, ms) {
    return new Promise((resolve, reject) => {
      const find = () => this.matching(name, pred)[0];
      const hit = find();
      if (hit) return resolve(hit.data);
      let timer;
      const w = () => {
        const h = find();
        if (!h) return;
        clearTimeout(timer);
        this.waiters = this.waiters.filter((x) => x !== w);
        resolve(h.data);
      };
      timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(this.timeoutError(name, ms, this.events.map((e) => e.name)));
      }, ms);
      this.waiters.push(w);
    });
  }
}

module.exports = { EventLog };
