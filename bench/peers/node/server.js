// The Node.js peer of the benchmark: ws 8 fan-out from one XREAD loop on Redis.
//
//   node server.js --port 8766 --redis-url redis://127.0.0.1:6379/0 --key bench:node [--deflate]
//
// Like bench/reference.py: each stream entry's field "d" is the text frame every reader gets; a
// new connection first gets the latest --backlog frames (kept in memory), then live ones, in one
// synchronous step so nothing falls between. perMessageDeflate is off unless --deflate (then ws's
// defaults: context takeover, a per-connection deflate of every message over 1 KiB). The Redis
// client is a few lines of RESP over one socket: XREVRANGE once, then a blocking XREAD loop.
"use strict";

const net = require("net");
const { WebSocketServer } = require("ws");

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : fallback;
}

const port = Number(option("--port"));
const redisUrl = new URL(option("--redis-url"));
const key = option("--key");
const backlog = Number(option("--backlog", "20"));
const deflate = process.argv.includes("--deflate");
const maxSeconds = Number(option("--max-seconds", "3600"));

// --- a minimal RESP2 client: one command in flight at a time ----------------------------------

class Resp {
  constructor(host, port) {
    this.sock = net.connect(port, host);
    this.sock.setNoDelay(true);
    this.buf = Buffer.alloc(0);
    this.waiting = [];
    this.sock.on("data", (chunk) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
      for (;;) {
        const parsed = this.parse(0);
        if (parsed === undefined) break;
        this.buf = this.buf.subarray(parsed[1]);
        this.waiting.shift()(parsed[0]);
      }
    });
    this.sock.on("error", (err) => { console.error("redis:", err.message); process.exit(1); });
  }

  command(...args) {
    let out = `*${args.length}\r\n`;
    for (const a of args) out += `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`;
    this.sock.write(out);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  // [value, next offset] or undefined when the reply is not complete yet
  parse(at) {
    const end = this.buf.indexOf("\r\n", at);
    if (end < 0) return undefined;
    const kind = String.fromCharCode(this.buf[at]);
    const line = this.buf.toString("latin1", at + 1, end);
    if (kind === "+" || kind === ":") return [line, end + 2];
    if (kind === "-") return [new Error(line), end + 2];
    const n = Number(line);
    if (kind === "$") {
      if (n < 0) return [null, end + 2];
      if (this.buf.length < end + 2 + n + 2) return undefined;
      return [this.buf.subarray(end + 2, end + 2 + n), end + 2 + n + 2];
    }
    if (kind === "*") {
      if (n < 0) return [null, end + 2];
      const items = [];
      let next = end + 2;
      for (let i = 0; i < n; i++) {
        const item = this.parse(next);
        if (item === undefined) return undefined;
        items.push(item[0]);
        next = item[1];
      }
      return [items, next];
    }
    throw new Error(`RESP: unexpected ${kind}`);
  }
}

// The frame text as bytes, encoded once and sent as a text frame to every reader.
function frameOf(fields) {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i].toString() === "d") return fields[i + 1];
  }
  return null;
}

const TEXT = { binary: false };

async function main() {
  const redis = new Resp(redisUrl.hostname, Number(redisUrl.port || 6379));
  const db = redisUrl.pathname.slice(1);
  if (db && db !== "0") await redis.command("SELECT", db);
  const latest = [];
  let lastId = "0-0";
  const newest = await redis.command("XREVRANGE", key, "+", "-", "COUNT", backlog);
  for (const [id, fields] of newest.reverse()) {
    latest.push(frameOf(fields));
    lastId = id.toString();
  }

  const wss = new WebSocketServer({
    host: "127.0.0.1", port, backlog: 2048, maxPayload: 64 * 1024,
    perMessageDeflate: deflate, clientTracking: true,
  });
  wss.on("connection", (ws) => {
    ws.isAlive = true;
    ws.on("pong", () => { ws.isAlive = true; });
    for (const frame of latest) ws.send(frame, TEXT);
    ws.on("error", () => {});
  });
  // ws's keepalive recipe, every 20 s as livefeed's default (ws itself sends no pings): a
  // reader that did not answer the last ping is dropped.
  const keepalive = setInterval(() => {
    for (const ws of wss.clients) {
      if (!ws.isAlive) { ws.terminate(); continue; }
      ws.isAlive = false;
      ws.ping();
    }
  }, 20_000);
  wss.on("listening", () => console.error(`node peer: ws://127.0.0.1:${port}/ deflate=${deflate}`));

  const deadline = Date.now() + maxSeconds * 1000;
  const stop = () => { clearInterval(keepalive); wss.close(); process.exit(0); };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  while (Date.now() < deadline) {
    const reply = await redis.command("XREAD", "COUNT", 100, "BLOCK", 5000, "STREAMS", key, lastId);
    if (reply instanceof Error) { console.error("XREAD:", reply.message); process.exit(1); }
    if (!reply) continue;
    for (const [, entries] of reply) {
      for (const [id, fields] of entries) {
        const frame = frameOf(fields);
        lastId = id.toString();
        latest.push(frame);
        if (latest.length > backlog) latest.shift();
        for (const ws of wss.clients) if (ws.readyState === 1) ws.send(frame, TEXT);
      }
    }
  }
  stop();
}

main().catch((err) => { console.error(err); process.exit(1); });
