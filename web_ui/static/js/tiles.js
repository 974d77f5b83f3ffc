// The video grid: one tile per participant whose media the server forwards to us,
// plus our own preview. The one speaking (or, when nobody is, the one the view
// features, e.g. the defending student) gets the large tile.
//
// The server sends video only for what the grid shows (docs/signaling.md `view`):
// whenever the layout changes, onView gets {participant: {w, h}} with each visible
// tile's size in device pixels; a tile off screen, or a page in the background, is
// left out and gets no video until it shows again (audio always comes).
import { h } from "./dom.js";
import { roleName, t } from "./i18n.js";

const SPEAKING_LEVEL = 0.03;
const SPEAKER_HOLD_MS = 2000;
const VIEW_SETTLE_MS = 150;

export class TileGrid {
  constructor(container, { selfLabel = true } = {}) {
    this.container = container;
    this.selfLabel = selfLabel;
    this.tiles = new Map();  // participant -> tile
    this.selfTile = null;
    this.forwarded = {};
    this.featured = null;
    this.speaker = null;
    this.speakerUntil = 0;
    this.onSoundBlocked = () => {};
    this.onView = () => {};
    this.lastView = null;
    this.viewTimer = null;
    const changed = () => this.viewChanged();
    new ResizeObserver(changed).observe(container);
    document.addEventListener("visibilitychange", changed);
    window.addEventListener("scroll", changed, { passive: true, capture: true });
    window.addEventListener("resize", changed);
  }

  // The layout may have changed: tell the server, once it settles, if it did.
  viewChanged() {
    if (this.viewTimer) return;
    this.viewTimer = setTimeout(() => {
      this.viewTimer = null;
      const tiles = this.visibleTiles();
      const text = JSON.stringify(tiles);
      if (text === this.lastView) return;
      this.lastView = text;
      this.onView(tiles);
    }, VIEW_SETTLE_MS);
  }

  // Send the view again even if unchanged (a new connection knows none).
  resendView() {
    this.lastView = null;
    this.viewChanged();
  }

  visibleTiles() {
    const tiles = {};
    if (document.visibilityState === "hidden") return tiles;
    const scale = window.devicePixelRatio || 1;
    for (const [participant, tile] of this.tiles) {
      if (tile.element.classList.contains("no-video") || !tile.element.isConnected) continue;
      const box = tile.video.getBoundingClientRect();
      const onScreen = box.width > 0 && box.height > 0 && box.bottom > 0 && box.right > 0
        && box.top < window.innerHeight && box.left < window.innerWidth;
      if (!onScreen) continue;
      tiles[participant] = { w: Math.min(16384, Math.round(box.width * scale)),
        h: Math.min(16384, Math.round(box.height * scale)) };
    }
    return tiles;
  }

  showSelf(stream, self) {
    if (!stream?.getVideoTracks().length) return;
    if (!this.selfTile) {
      this.selfTile = makeTile();
      this.selfTile.element.classList.add("self");
      this.selfTile.video.muted = true;
      this.container.prepend(this.selfTile.element);
    }
    this.selfTile.video.srcObject = stream;
    this.selfTile.element.classList.remove("no-video");
    this.selfInfo = self;
    this.caption(this.selfTile);
    play(this.selfTile.video, this);
  }

  hideSelf() {
    this.selfTile?.element.remove();
    this.selfTile = null;
  }

  // forwarded: {mid: {participant, name, role, kind}}; received: Map mid -> track
  setTracks(forwarded, received) {
    this.forwarded = forwarded;
    const wanted = new Map();
    for (const [mid, info] of Object.entries(forwarded)) {
      const entry = wanted.get(info.participant) ?? { info, audio: null, video: null, audioMid: null };
      const track = received.get(mid);
      // Integer-like keys iterate in ascending order: a later mid (a republished
      // camera) wins over an older one of the same kind.
      if (track) entry[info.kind === "audio" ? "audio" : "video"] = track;
      if (info.kind === "audio") entry.audioMid = mid;
      wanted.set(info.participant, entry);
    }
    for (const [participant, tile] of this.tiles) {
      if (!wanted.has(participant)) {
        tile.video.srcObject = null;
        tile.element.remove();
        this.tiles.delete(participant);
      }
    }
    for (const [participant, entry] of wanted) {
      let tile = this.tiles.get(participant);
      if (!tile) {
        tile = makeTile();
        tile.element.dataset.participant = participant;
        this.tiles.set(participant, tile);
        this.container.append(tile.element);
      }
      tile.info = entry.info;
      tile.audioMid = entry.audioMid;
      this.caption(tile);
      const tracks = [entry.audio, entry.video].filter(Boolean);
      const ids = tracks.map((track) => track.id).join(" ");
      if (ids !== tile.trackIds) {
        tile.trackIds = ids;
        // A new stream rather than addTrack: not every browser starts rendering a
        // track added to a stream that is already playing.
        tile.video.srcObject = tracks.length ? new MediaStream(tracks) : null;
        if (tracks.length) play(tile.video, this);
      }
      tile.element.classList.toggle("no-video", !entry.video);
    }
    this.arrange();
    this.resendView();
  }

  get count() {
    return this.tiles.size;
  }

  setFeatured(participant) {
    if (participant === this.featured) return;
    this.featured = participant;
    this.arrange();
  }

  // levels: Map mid -> 0..1 (received audio)
  setLevels(levels) {
    let loudest = null;
    let best = SPEAKING_LEVEL;
    for (const [participant, tile] of this.tiles) {
      const level = levels.get(tile.audioMid) ?? 0;
      tile.element.classList.toggle("speaking", level >= SPEAKING_LEVEL);
      if (level > best) {
        best = level;
        loudest = participant;
      }
    }
    if (loudest) {
      this.speaker = loudest;
      this.speakerUntil = Date.now() + SPEAKER_HOLD_MS;
    } else if (Date.now() > this.speakerUntil) {
      this.speaker = null;
    }
    this.arrange();
  }

  arrange() {
    const large = this.tiles.has(this.speaker) ? this.speaker
      : this.tiles.has(this.featured) ? this.featured : null;
    for (const [participant, tile] of this.tiles) {
      tile.element.classList.toggle("large", participant === large && this.tiles.size > 1);
    }
    if (large) {
      const element = this.tiles.get(large).element;
      const first = this.selfTile ? this.selfTile.element.nextSibling : this.container.firstChild;
      if (first !== element) this.container.insertBefore(element, first);
    }
    this.viewChanged();
  }

  unmuteAll() {
    for (const tile of this.tiles.values()) {
      tile.video.muted = false;
      play(tile.video, this);
    }
  }

  relabel() {
    for (const tile of this.tiles.values()) this.caption(tile);
    if (this.selfTile) this.caption(this.selfTile);
  }

  caption(tile) {
    if (tile === this.selfTile) {
      tile.name.textContent = this.selfInfo ? `${t("you")}: ${this.selfInfo.name}` : t("you");
      tile.role.textContent = this.selfInfo ? roleName(this.selfInfo.role) : "";
      return;
    }
    tile.name.textContent = tile.info.name;
    tile.role.textContent = roleName(tile.info.role);
  }
}

function makeTile() {
  const video = h("video", { autoplay: true, playsInline: true });
  const name = h("span", { class: "name" });
  const role = h("span", { class: "role" });
  const element = h("figure", { class: "tile no-video" }, video, h("figcaption", {}, name, role));
  return { element, video, name, role, trackIds: "", info: null, audioMid: null };
}

function play(video, grid) {
  video.play().catch((error) => {
    if (error.name !== "NotAllowedError" || video.muted) return;
    // Autoplay with sound refused: play muted and let the page offer a button.
    video.muted = true;
    video.play().catch(() => {});
    grid.onSoundBlocked();
  });
}
