// The pre-join speed check over the path the media takes (web_ui/probe.py): a
// WebRTC connection to the server with one data channel, then several timed
// transfers each way. Sizes grow from 16 KiB until one transfer takes long enough
// to time (or 256 KiB, which a link fast enough for video moves quickly), and that
// size is sent twice more; each direction's speed is the median of the three.
// Resolves with { down, up, rtt } (kbit/s, kbit/s, ms); rejects if the media path
// cannot be opened (the caller then times HTTP instead and says so).
import { api } from "./api.js";

const FIRST_BYTES = 16 * 1024;
const MAX_BYTES = 256 * 1024;
const CHUNK = 16 * 1024;
const LONG_ENOUGH_MS = 500;
const REPEATS = 3;
const CONNECT_TIMEOUT_MS = 10000;
const GATHER_TIMEOUT_MS = 3000;
const TRANSFER_TIMEOUT_MS = 8000;

export async function probeMediaPath() {
  if (typeof RTCPeerConnection === "undefined") throw new Error("this browser has no WebRTC");
  const offer = await api.post("/api/connection-check/media");
  const pc = new RTCPeerConnection({ iceServers: offer.iceServers ?? [] });
  try {
    const opened = new Promise((resolve) => {
      pc.addEventListener("datachannel", ({ channel }) => {
        channel.binaryType = "arraybuffer";
        if (channel.readyState === "open") resolve(channel);
        else channel.addEventListener("open", () => resolve(channel), { once: true });
      });
    });
    await pc.setRemoteDescription({ type: "offer", sdp: offer.sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc); // the answer carries the candidates: no trickling for a probe
    await api.post("/api/connection-check/media/answer", { sdp: pc.localDescription.sdp });
    const link = new Link(await within(opened, CONNECT_TIMEOUT_MS, "the media path did not open"));
    const rtt = median([await link.ping(), await link.ping(), await link.ping()]);
    const down = await series((bytes) => link.down(bytes));
    const up = await series((bytes) => link.up(bytes));
    return { down, up, rtt: Math.round(rtt) };
  } finally {
    pc.close();
  }
}

// Transfers of growing size until one is long enough to time, then that size again.
async function series(transfer) {
  let bytes = FIRST_BYTES;
  let first = await transfer(bytes);
  while (!first.timedOut && first.ms < LONG_ENOUGH_MS && bytes < MAX_BYTES) {
    bytes = Math.min(MAX_BYTES, bytes * 4);
    first = await transfer(bytes);
  }
  const runs = [first];
  while (!first.timedOut && runs.length < REPEATS) runs.push(await transfer(bytes));
  return median(runs.map((run) => run.kbps));
}

class Link {
  constructor(channel) {
    this.channel = channel;
    this.received = 0;
    this.waiting = null;
    channel.addEventListener("message", ({ data }) => {
      if (typeof data !== "string") {
        this.received += data.byteLength;
        return;
      }
      const message = JSON.parse(data);
      if (this.waiting?.op === message.op) this.waiting.resolve(message);
    });
    channel.addEventListener("close", () => this.waiting?.reject(new Error("the check's channel closed")));
  }

  // The next message `op` from the server, or null after `ms`.
  reply(op, ms = TRANSFER_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.waiting = null; resolve(null); }, ms);
      this.waiting = { op, reject,
        resolve: (message) => { clearTimeout(timer); this.waiting = null; resolve(message); } };
    });
  }

  async ping() {
    const started = performance.now();
    const answer = this.reply("pong");
    this.channel.send(JSON.stringify({ op: "ping", t: started }));
    if (!(await answer)) throw new Error("no answer to a ping on the media path");
    return performance.now() - started;
  }

  async down(bytes) {
    this.received = 0;
    const started = performance.now();
    const done = this.reply("sent");
    this.channel.send(JSON.stringify({ op: "down", bytes }));
    return timed(bytes, started, Boolean(await done), () => this.received);
  }

  async up(bytes) {
    const started = performance.now();
    const done = this.reply("got");
    this.channel.send(JSON.stringify({ op: "up", bytes }));
    const chunk = new Uint8Array(CHUNK);
    for (let sent = 0; sent < bytes; sent += CHUNK) {
      const part = chunk.subarray(0, Math.min(CHUNK, bytes - sent));
      crypto.getRandomValues(part); // nothing on the way may compress it
      this.channel.send(part);
    }
    return timed(bytes, started, Boolean(await done), () => 0);
  }
}

// A transfer's speed; one that did not finish in time counts what arrived in it
// (download) or the most it could have been (upload).
function timed(bytes, started, finished, arrived) {
  if (!finished) {
    const moved = Math.max(arrived(), 1);
    return { ms: TRANSFER_TIMEOUT_MS, kbps: (Math.min(moved, bytes) * 8) / TRANSFER_TIMEOUT_MS, timedOut: true };
  }
  const ms = Math.max(1, performance.now() - started);
  return { ms, kbps: (bytes * 8) / ms };
}

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, GATHER_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

function within(promise, ms, what) {
  let timer;
  return Promise.race([promise, new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(what)), ms); })])
    .finally(() => clearTimeout(timer));
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}
