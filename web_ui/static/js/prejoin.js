// Before entering: the camera and microphone preview, plain-language help when the
// browser refuses them or finds none, and a check of the link against the 200 kbit/s
// minimum of rule P5 (1 Mbit/s recommended). Resolves with the stream when the person
// presses "Enter"; the commission and the student alike enter the room from here.
// With `{ checkOnly: true }` (the student's page, before the day) it enters nothing:
// "Done" releases the camera and microphone and resolves with what was found,
// `{ camera, microphone, speed }`.
import { api } from "./api.js";
import { describeStream, levelMeter, openDevices } from "./devices.js";
import { h, clear } from "./dom.js";
import { roleName, t } from "./i18n.js";
import { probeMediaPath } from "./netprobe.js";
import { state, subscribe, update } from "./store.js";

const SMALL_PROBE = 64 * 1024;
const BIG_PROBE = 512 * 1024;
const PROBE_TIMEOUT_MS = 15000;

// What this browser lacks to take part, before anything is tried: no WebRTC at all
// (WebKitGTK on Debian is built without it) or no camera API on a secure page (some
// in-app browsers). On an http page the camera API is missing by design, and
// devices.js says to open the https link instead.
export function browserLacks() {
  if (typeof window.RTCPeerConnection !== "function") return "webrtc";
  if (window.isSecureContext && !navigator.mediaDevices?.getUserMedia) return "camera";
  return null;
}

export function prejoin(section, { checkOnly = false } = {}) {
  return new Promise((resolve) => {
    const video = h("video", { class: "preview", autoplay: true, muted: true, playsInline: true });
    const noVideo = h("p", { class: "preview-empty" });
    const meterBar = h("span", { class: "meter-bar" });
    const meter = h("div", { class: "meter", role: "meter", "aria-valuemin": 0, "aria-valuemax": 100 }, meterBar);
    const camera = h("li", { class: "check", dataset: { check: "camera" } });
    const mic = h("li", { class: "check", dataset: { check: "microphone" } });
    const network = h("li", { class: "check", dataset: { check: "network" } });
    const help = h("div", { class: "help", role: "alert" });
    const lacks = browserLacks();
    const browserHelp = h("div", { class: "help", role: "alert", id: "browser-help" });
    const retry = h("button", { type: "button" });
    const recheck = h("button", { type: "button", class: "small" });
    const join = h("button", { type: "button", id: checkOnly ? "check-done" : "join", class: "primary big" });
    const heading = h("h2", {});
    const who = h("p", { class: "who" });
    const rule = h("p", { class: "muted rule" });
    clear(section, h("div", { class: "prejoin-card" }, heading, who,
      h("div", { class: "prejoin-grid" },
        h("div", { class: "preview-box" }, video, noVideo, meter),
        h("div", {}, h("ul", { class: "checks" }, camera, mic, network), help, browserHelp,
          h("p", { class: "row" }, retry, recheck), rule, join))));

    let stream = null;
    let note = null;
    let opened = false;
    let stopMeter = () => {};
    let speed = { state: "running" };

    async function devices() {
      stopMeter();
      for (const track of stream?.getTracks() ?? []) track.stop();
      opened = false;
      render();
      ({ stream, note } = await openDevices());
      // One sentence about the browser (below) instead of the https advice.
      if (lacks === "camera") note = null;
      opened = true;
      video.srcObject = stream;
      if (stream?.getVideoTracks().length) video.play().catch(() => {});
      stopMeter = levelMeter(stream, (level) => {
        meterBar.style.width = `${Math.min(100, Math.round(level * 160))}%`;
        meter.setAttribute("aria-valuenow", String(Math.round(level * 100)));
      });
      console.info("[room] prejoin media:", describeStream(stream));
      render();
    }

    // Over the media path (netprobe.js) once the camera is open; over HTTP, and said
    // so, only where that path cannot be opened.
    async function probe() {
      speed = { state: "running" };
      render();
      try {
        const media = await probeMediaPath();
        const worst = Math.min(media.down, media.up);
        const limits = state.me?.connection ?? { minimum_kbps: 200, recommended_kbps: 1000 };
        speed = { state: worst >= limits.recommended_kbps ? "good" : worst >= limits.minimum_kbps ? "fair" : "poor",
          down: media.down, up: media.up, rtt: media.rtt, path: "media", limits };
        console.info("[room] connection check over the media path:", JSON.stringify(speed));
        render();
        return;
      } catch (error) {
        console.warn("[room] the media path could not be measured, timing HTTP:", error?.message ?? error);
      }
      try {
        const down = await measure("download", SMALL_PROBE);
        const up = await measure("upload", SMALL_PROBE);
        // A fast link finishes the small probe too quickly to measure; measure again, bigger.
        const downKbps = down.ms < 400 ? (await measure("download", BIG_PROBE)).kbps : down.kbps;
        const upKbps = up.ms < 400 ? (await measure("upload", BIG_PROBE)).kbps : up.kbps;
        const worst = Math.min(downKbps, upKbps);
        const limits = state.me?.connection ?? { minimum_kbps: 200, recommended_kbps: 1000 };
        speed = { state: worst >= limits.recommended_kbps ? "good" : worst >= limits.minimum_kbps ? "fair" : "poor",
          down: downKbps, up: upKbps, path: "http", limits };
      } catch (error) {
        console.warn("[room] connection check failed:", error?.message ?? error);
        speed = { state: "failed" };
      }
      render();
    }

    function render() {
      heading.textContent = t("prejoinHeading");
      const me = state.me?.me;
      who.textContent = me ? t("prejoinWho", { name: me.name, role: roleName(me.role), day: state.me.day.title }) : "";
      const hasVideo = Boolean(stream?.getVideoTracks().length);
      const hasAudio = Boolean(stream?.getAudioTracks().length);
      video.hidden = !hasVideo;
      noVideo.hidden = hasVideo;
      noVideo.textContent = t("noPreview");
      meter.hidden = !hasAudio;
      const opening = !opened;
      mark(camera, opening ? "running" : hasVideo ? "good" : "poor",
        t(opening ? "devicesOpening" : hasVideo ? "cameraOk" : "cameraMissing"));
      mark(mic, opening ? "running" : hasAudio ? "good" : "poor",
        t(opening ? "devicesOpening" : hasAudio ? "micOk" : "micMissing"));
      const kbps = (v) => (v >= 1000 ? `${(v / 1000).toFixed(1)} ${t("mbps")}` : `${Math.round(v)} ${t("kbps")}`);
      mark(network, speed.state, speed.state === "running" ? t("netChecking")
        : speed.state === "failed" ? t("netFailed")
          : `${t(`net_${speed.state}`, { down: kbps(speed.down), up: kbps(speed.up) })}. ${
            [speed.path === "media" ? t("netPathMedia", { rtt: speed.rtt }) : t("netPathHttp"),
              speed.state === "poor" && me?.role === "student" ? t("netPoorDefense") : ""].filter(Boolean).join(" ")}`);
      network.dataset.kbps = speed.up ? String(Math.round(Math.min(speed.up, speed.down))) : "";
      network.dataset.path = speed.path ?? "";
      const helpKeys = [];
      if (note) helpKeys.push(`help_${note.key}`);
      if (speed.state === "poor") helpKeys.push("help_slow");
      help.hidden = !helpKeys.length;
      clear(help, helpKeys.map((key) => h("div", {}, h("p", { class: "help-title" }, t(note && key === `help_${note.key}` ? note.key : "net_poor_title", note?.params ?? {})),
        h("ol", {}, t(key).split("\n").map((line) => h("li", {}, line))))));
      browserHelp.hidden = !lacks;
      clear(browserHelp, lacks ? [h("p", { class: "help-title" }, t(lacks === "webrtc" ? "browserNoWebrtc" : "browserNoCamera")),
        h("div", {}, t("browserUseInstead"))] : []);
      retry.textContent = t("devicesRetry");
      retry.hidden = !note;
      recheck.textContent = t("netRecheck");
      recheck.disabled = speed.state === "running";
      rule.textContent = me?.role === "student" ? t("ruleP5") : "";
      join.textContent = checkOnly ? t("studentCheckDone") : t(stream ? "enter" : "enterWatching");
      if (checkOnly) join.disabled = !opened || speed.state === "running";
      // Without WebRTC the room could never connect: no button that would only hang.
      else if (lacks === "webrtc") {
        join.textContent = t("browserCannotEnter");
        join.disabled = true;
      }
    }

    retry.addEventListener("click", devices);
    recheck.addEventListener("click", probe);
    join.addEventListener("click", () => {
      stopMeter();
      unsubscribe();
      if (checkOnly) {
        const found = { camera: Boolean(stream?.getVideoTracks().length),
          microphone: Boolean(stream?.getAudioTracks().length), speed };
        for (const track of stream?.getTracks() ?? []) track.stop();
        resolve(found);
        return;
      }
      update({ mediaNote: note });
      resolve({ stream, note });
    });
    const unsubscribe = subscribe(render);
    if (lacks) console.warn("[room] prejoin browser lacks:", lacks);
    // The speed is measured once the camera is open: opening it competes for the
    // link and the CPU, and the camera permission lets the browser show its address.
    devices().finally(probe);
  });
}

function mark(element, status, text) {
  element.className = `check ${status}`;
  element.dataset.state = status;
  element.textContent = text;
}

async function measure(direction, bytes) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), PROBE_TIMEOUT_MS);
  const started = performance.now();
  try {
    if (direction === "download") {
      const response = await fetch(`/api/connection-check?bytes=${bytes}`, {
        headers: api.authHeaders(), cache: "no-store", signal: controller.signal });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      await response.arrayBuffer();
    } else {
      const response = await fetch("/api/connection-check", { method: "POST", headers: api.authHeaders(),
        body: new Uint8Array(bytes).map(() => Math.random() * 256), signal: controller.signal });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      await response.json();
    }
  } catch (error) {
    if (error.name === "AbortError") return { ms: PROBE_TIMEOUT_MS, kbps: (bytes * 8) / PROBE_TIMEOUT_MS / 2 };
    throw error;
  } finally {
    clearTimeout(timer);
  }
  const ms = Math.max(1, performance.now() - started);
  return { ms, kbps: (bytes * 8) / ms };
}
