// The signaling socket and the media connection, as docs/signaling.md and
// web_ui/client.py describe them: join with the invite token, then answer the
// server's offers strictly in order. The first offer names two m-lines ("publish")
// for our own microphone and camera: we attach our tracks there and answer sendonly,
// or inactive to only watch.
//
// Reconnection: a socket that closes without a final `bye`, or a media connection
// that fails (or stays disconnected), is rebuilt from scratch: a new socket joins
// again and the server offers a new connection. The server counts presence from
// media, so a quick return stays within the rules' 15 minutes. Every attempt has
// its own generation; events of an older one are ignored.

const STATS_INTERVAL_MS = 2000;
const MAX_STATS_ENTRIES = 256;
const BACKOFF_S = [1, 2, 4, 8];
const DISCONNECTED_GRACE_MS = 12000;
// A bye after which coming back would be wrong: the person left, another tab took
// over, or the secretary removed them or withdrew their link.
const FINAL_BYES = new Set(["left", "replaced", "kicked", "revoked"]);

export class RoomLink {
  constructor({ token, stream, onMessage, onTracks, onLink }) {
    this.token = token;
    this.stream = stream;
    this.onMessage = onMessage;   // (message) for everything but negotiation
    this.onTracks = onTracks;     // (forwarded {mid: info}, received Map mid -> track)
    this.onLink = onLink;         // ({phase, attempt, detail})
    this.generation = 0;
    this.failures = 0;
    this.finished = false;
    this.ws = null;
    this.pc = null;
    this.retryTimer = null;
    this.statsTimer = null;
    this.disconnectTimer = null;
    this.everConnected = false;
    this.lastStats = null;
    this.offersAnswered = 0;
    window.addEventListener("online", () => this.retryNow());
    window.addEventListener("pagehide", () => this.send({ type: "leave" }));
  }

  start() {
    this.attempt();
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  leave() {
    this.send({ type: "leave" });
  }

  // -- one attempt ------------------------------------------------------------------

  attempt() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const gen = ++this.generation;
    const session = { gen, answered: false, pending: [], candidatesSent: 0, forwarded: {},
      received: new Map(), inbox: Promise.resolve(), bye: null };
    this.session = session;
    this.onLink({ phase: this.everConnected ? "reconnecting" : "connecting", attempt: this.failures });
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws`);
    this.ws = ws;
    ws.addEventListener("open", () => ws.send(JSON.stringify({ type: "join", token: this.token })));
    ws.addEventListener("message", (event) => {
      if (gen !== this.generation) return;
      session.inbox = session.inbox
        .then(() => this.handle(session, JSON.parse(event.data)))
        .catch((error) => {
          console.error("[room] failed to handle a message:", error?.name, error?.message ?? error);
          this.onMessage({ type: "error", code: "page", message: String(error?.message ?? error) });
        });
    });
    ws.addEventListener("close", (event) => {
      console.info("[room] socket closed", event.code, event.reason);
      if (gen !== this.generation) return;
      session.inbox = session.inbox.then(() => this.socketClosed(session, event));
    });
  }

  socketClosed(session, event) {
    if (this.finished) return;
    if (event.code === 4401) return this.finish(event.reason === "revoked_token" ? "revoked" : "refused");
    if (session.bye && FINAL_BYES.has(session.bye)) return this.finish(session.bye);
    this.scheduleRetry(session.bye ?? `socket closed (${event.code})`);
    return undefined;
  }

  scheduleRetry(reason) {
    if (this.finished || this.retryTimer) return;
    this.teardown();
    const delay = BACKOFF_S[Math.min(this.failures, BACKOFF_S.length - 1)];
    this.failures += 1;
    console.info("[room] reconnecting in", delay, "s:", reason);
    this.onLink({ phase: "reconnecting", attempt: this.failures, detail: reason, retryAt: Date.now() + delay * 1000 });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.attempt();
    }, delay * 1000);
  }

  retryNow() {
    if (this.finished || !this.retryTimer) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.attempt();
  }

  teardown() {
    this.generation += 1;  // whatever the old socket and connection still say is stale
    clearInterval(this.statsTimer);
    clearTimeout(this.disconnectTimer);
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close();
    this.ws = null;
    if (this.pc) this.pc.close();
    this.pc = null;
    this.onTracks({}, new Map());
  }

  finish(reason) {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.retryTimer);
    this.teardown();
    console.info("[room] session ended:", reason);
    this.onLink({ phase: "ended", reason });
  }

  // -- messages ---------------------------------------------------------------------

  async handle(session, message) {
    switch (message.type) {
      case "welcome":
        this.welcome(session, message);
        break;
      case "offer":
        await this.answer(session, message);
        return;
      case "bye":
        session.bye = message.reason;
        break;
      default:
        break;
    }
    this.onMessage(message);
  }

  welcome(session, message) {
    const pc = new RTCPeerConnection({ iceServers: message.iceServers ?? [] });
    this.pc = pc;
    const gen = session.gen;
    pc.addEventListener("icecandidate", (event) => this.trickle(session, event.candidate));
    pc.addEventListener("track", (event) => {
      if (gen !== this.generation) return;
      const mid = event.transceiver?.mid;
      if (mid != null) session.received.set(mid, event.track);
      this.onTracks(session.forwarded, session.received);
    });
    pc.addEventListener("connectionstatechange", () => this.connectionChanged(session, pc));
    clearInterval(this.statsTimer);
    this.statsTimer = setInterval(() => this.reportStats(pc), STATS_INTERVAL_MS);
    console.info("[room] joined as", message.participant.id, "generation", gen);
  }

  async answer(session, message) {
    const pc = this.pc;
    if (!pc) return;
    session.forwarded = message.tracks ?? {};
    await pc.setRemoteDescription({ type: "offer", sdp: message.sdp });
    if (!session.answered) await this.attachOwnMedia(pc, message.publish);
    for (const transceiver of pc.getTransceivers()) {
      if (transceiver.mid != null && transceiver.mid in session.forwarded) {
        session.received.set(transceiver.mid, transceiver.receiver.track);
      }
    }
    for (const mid of [...session.received.keys()]) {
      if (!(mid in session.forwarded)) session.received.delete(mid);
    }
    this.onTracks(session.forwarded, session.received);
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    this.send({ type: "answer", sdp: pc.localDescription.sdp });
    if (!session.answered) {
      session.answered = true;
      for (const candidate of session.pending.splice(0)) this.trickle(session, candidate);
    }
    this.offersAnswered += 1;
  }

  async attachOwnMedia(pc, publish) {
    for (const [kind, mid] of Object.entries(publish ?? {})) {
      const transceiver = pc.getTransceivers().find((t) => t.mid === mid);
      if (!transceiver) continue;
      const track = this.stream?.getTracks().find((t) => t.kind === kind && t.readyState === "live");
      if (track) {
        transceiver.direction = "sendonly";
        await transceiver.sender.replaceTrack(track);
        transceiver.sender.setStreams?.(this.stream);
        // The student's camera is everyone's large tile and the recording's subject:
        // layers would only cost it loss recovery on a phone's link (with L1T3 a lost
        // base-layer frame stalls the next ones), so it goes as one layer.
        if (kind === "video" && document.body.dataset.role !== "student") {
          await temporalLayers(transceiver.sender);
        }
      } else {
        transceiver.direction = "inactive";
      }
    }
  }

  trickle(session, candidate) {
    if (session.gen !== this.generation) return;
    if (!session.answered) {
      session.pending.push(candidate);
      return;
    }
    if (candidate && candidate.candidate) {
      session.candidatesSent += 1;
      this.send({ type: "ice", candidate: candidate.candidate, sdpMid: candidate.sdpMid,
        sdpMLineIndex: candidate.sdpMLineIndex });
    } else if (!candidate && session.candidatesSent > 0) {
      // Without any address of our own the server learns ours from our checks; an
      // early end-of-candidates would make it give up before they arrive.
      this.send({ type: "ice", candidate: null, sdpMid: null, sdpMLineIndex: null });
    }
  }

  connectionChanged(session, pc) {
    if (session.gen !== this.generation || this.finished) return;
    console.info("[room] media connection", pc.connectionState);
    clearTimeout(this.disconnectTimer);
    if (pc.connectionState === "connected") {
      const again = this.everConnected;
      this.everConnected = true;
      this.failures = 0;
      this.onLink({ phase: "connected", attempt: 0, reconnected: again });
    } else if (pc.connectionState === "disconnected") {
      this.onLink({ phase: "unstable", attempt: this.failures });
      this.disconnectTimer = setTimeout(() => this.scheduleRetry("media disconnected"), DISCONNECTED_GRACE_MS);
    } else if (pc.connectionState === "failed") {
      this.scheduleRetry("media failed");
    }
  }

  async reportStats(pc) {
    if (pc !== this.pc || this.statsBusy) return;
    this.statsBusy = true;
    try {
      const report = await pc.getStats();
      const midByTrack = new Map();
      for (const transceiver of pc.getTransceivers()) {
        if (transceiver.mid != null) midByTrack.set(transceiver.receiver.track.id, transceiver.mid);
      }
      const inbound = [];
      report.forEach((entry) => {
        if (entry.type !== "inbound-rtp" || inbound.length >= MAX_STATS_ENTRIES) return;
        const mid = entry.mid ?? midByTrack.get(entry.trackIdentifier);
        if (mid == null) return;
        inbound.push({ mid: String(mid), kind: entry.kind ?? entry.mediaType,
          framesDecoded: count(entry.framesDecoded), packetsReceived: count(entry.packetsReceived),
          bytesReceived: count(entry.bytesReceived) });
      });
      this.lastStats = inbound;
      this.send({ type: "stats", inbound });
    } catch (error) {
      console.warn("[room] stats failed:", error?.message ?? error);
    } finally {
      this.statsBusy = false;
    }
  }

  // Audio levels of what we receive, by mid (for the speaker tile).
  audioLevels() {
    const levels = new Map();
    if (!this.pc) return levels;
    for (const transceiver of this.pc.getTransceivers()) {
      if (transceiver.mid == null || transceiver.receiver.track.kind !== "audio") continue;
      const sources = transceiver.receiver.getSynchronizationSources?.() ?? [];
      const level = Math.max(0, ...sources.map((s) => s.audioLevel ?? 0));
      levels.set(transceiver.mid, level);
    }
    return levels;
  }
}

// Three temporal layers (L1T3) in our one video stream: the server then sends a
// viewer with a small tile or a weak link a quarter or half of the frame rate,
// without lowering it for anyone else (media/layers.py). A browser without
// scalabilityMode sends one layer, and everyone gets all of it.
async function temporalLayers(sender) {
  try {
    const parameters = sender.getParameters();
    if (!parameters.encodings?.length) return;
    parameters.encodings[0].scalabilityMode = "L1T3";
    await sender.setParameters(parameters);
    console.info("[room] video sent with temporal layers L1T3");
  } catch (error) {
    console.info("[room] video sent without temporal layers:", error?.name, error?.message ?? error);
  }
}

function count(value) {
  return Number.isFinite(value) && value > 0 ? Math.trunc(value) : 0;
}
