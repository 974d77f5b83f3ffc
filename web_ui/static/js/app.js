// The page of an invite link. It learns who the person is (GET /api/me), shows
// their personal page (home/), then, once they press "Enter the room", the pre-join
// check and the room for their role: the secretary's console, the commission's
// view, or the student's phone page. Recording state, the link's state and the
// language switch are the same for everyone.
import { api, setCredentials } from "./api.js";
import { syncServerTime } from "./clock.js";
import { RoomLink } from "./connection.js";
import { byId, clear, h } from "./dom.js";
import { initialLanguage, t, toggleLanguage, translateStatic } from "./i18n.js";
import { onMessage } from "./messages.js";
import { prejoin } from "./prejoin.js";
import { recordingIndicator } from "./panels/recording.js";
import { toastArea } from "./panels/notices.js";
import { linkIndicator } from "./panels/link.js";
import { addNotice, state, subscribe, update } from "./store.js";
import { TileGrid } from "./tiles.js";
import { home } from "./home/index.js";
import { commissionView } from "./views/commission.js";
import { secretaryView } from "./views/secretary.js";
import { studentView } from "./views/student.js";

const ui = {
  prejoin: byId("prejoin"),
  room: byId("room"),
  ended: byId("ended"),
  home: byId("home"),
  lang: byId("lang"),
  leave: byId("leave"),
  sound: byId("sound"),
  who: byId("who"),
};

// For tests and the curious: the page never reads it back.
window.roomDebug = { state };

// The invite token leaves the address bar and the history once read (S20): the page
// moves to /room and keeps the token in this tab's sessionStorage, so a reload or
// the "rejoin" button still joins.
const TOKEN_KEY = "defense-room-token";
// Set while the person is in the room, so that a reload returns to the room and not
// to their personal page; leaving clears it.
const STAGE_KEY = "defense-room-stage";

function remember(key, value) {
  try {
    if (value === null) sessionStorage.removeItem(key);
    else sessionStorage.setItem(key, value);
  } catch {
    // storage refused: a reload shows the personal page first
  }
}

function remembered(key) {
  try {
    return sessionStorage.getItem(key);
  } catch {
    return null;
  }
}

// Opened from the invite link itself (not a reload of /room): the personal page first.
let invitedAgain = false;

function inviteToken() {
  const invite = location.pathname.match(/^\/j\/([^/]+)$/);
  invitedAgain = invite !== null;
  const token = invite ? decodeURIComponent(invite[1]) : sessionStorage.getItem(TOKEN_KEY) ?? "";
  try {
    sessionStorage.setItem(TOKEN_KEY, token);
  } catch (error) {
    console.warn("[room] sessionStorage refused: a reload will need the invite link again");
  }
  history.replaceState(null, "", "/room");
  return token;
}

async function main() {
  const token = inviteToken();
  update({ language: initialLanguage(), token });
  setCredentials(token, null);
  ui.lang.addEventListener("click", toggleLanguage);
  subscribe(() => {
    translateStatic();
    const me = state.me?.me;
    ui.who.textContent = me ? `${me.name} · ${t(`role_${me.role}`)}` : "";
    document.title = t("title");
  });
  recordingIndicator(byId("rec-pill"), byId("rec-notice"));
  linkIndicator(byId("link-pill"), byId("link-banner"));
  toastArea(byId("toast"));
  subscribe(renderEnded);

  let me;
  try {
    me = await api.get("/api/me");
  } catch (error) {
    console.warn("[room] /api/me refused:", error.status, error.message);
    update({ link: { phase: "ended" }, ended: { key: error.status === 401 ? "error_bad_token" : "bye_refused",
      params: {}, detail: error.message } });
    return;
  }
  setCredentials(token, me.day.id);
  syncServerTime(me.server_time);
  update({ me });
  document.body.dataset.role = me.me.role;
  recordingsLink(token, me);

  if (invitedAgain || remembered(STAGE_KEY) !== "room") {
    ui.prejoin.hidden = true;
    ui.home.hidden = false;
    // The link's pill speaks of the room ("check before entering"): not on this page.
    byId("link-pill").hidden = true;
    await home(ui.home);
    byId("link-pill").hidden = false;
    ui.home.hidden = true;
    ui.prejoin.hidden = false;
    remember(STAGE_KEY, "room");
  }
  const { stream } = await prejoin(ui.prejoin);
  ui.prejoin.hidden = true;
  enterRoom(token, stream);
}

// The recordings page (/recordings#<token>) for those who may see the day's
// recordings: its chair and secretary (R1); the appeal commission, for the defense
// day whose appeal it hears, once /api/me names that day (`appeal.defense_day_id`).
function recordingsLink(token, me) {
  const link = byId("recordings-link");
  const role = me.me.role;
  const day = ["appeal_chair", "appeal_member"].includes(role) ? me.appeal?.defense_day_id : null;
  // The defense chair invited to an appeal sitting is a guest there, not its office.
  const office = ["chair", "secretary"].includes(role) && me.day_kind !== "appeal";
  if (!me.features?.recordings || !(office || day)) return;
  link.href = `/recordings${day ? `?day=${encodeURIComponent(day)}` : ""}#${encodeURIComponent(token)}`;
  link.hidden = false;
}

function enterRoom(token, stream) {
  const grid = new TileGrid(h("div", { class: "tiles" }));
  grid.onSoundBlocked = () => { ui.sound.hidden = false; };
  grid.onView = (tiles) => link.send({ type: "view", tiles });
  ui.sound.addEventListener("click", () => {
    ui.sound.hidden = true;
    grid.unmuteAll();
  });
  const link = new RoomLink({
    token,
    stream,
    onMessage,
    onTracks: (forwarded, received) => {
      grid.setTracks(forwarded, received);
      update({ tiles: grid.count });
    },
    onLink: (linkState) => {
      if (linkState.reconnected) addNotice({ kind: "reconnected" });
      const ended = linkState.phase === "ended"
        ? { key: t(`bye_${linkState.reason}`) !== `bye_${linkState.reason}` ? `bye_${linkState.reason}` : "bye_other",
          params: { reason: linkState.reason } } : null;
      update({ link: linkState, ...(ended ? { ended } : {}) });
    },
  });
  window.roomDebug.link = link;
  window.roomDebug.grid = grid;
  const role = state.me.me.role;
  const view = role === "secretary" ? secretaryView : role === "student" ? studentView : commissionView;
  ui.room.hidden = false;
  clear(ui.room, view({ grid, link, stream }));
  ui.room.className = `room room-${role === "secretary" ? "secretary" : role === "student" ? "student" : "commission"}`;
  setInterval(() => grid.setLevels(link.audioLevels()), 400);
  subscribe(() => {
    grid.relabel();
    ui.leave.disabled = state.link.phase === "ended";
  });
  ui.leave.hidden = false;
  ui.leave.addEventListener("click", () => {
    ui.leave.disabled = true;
    remember(STAGE_KEY, null);
    link.leave();
  });
  link.start();
}

function renderEnded() {
  ui.ended.hidden = !state.ended;
  if (!state.ended) return;
  ui.room.hidden = true;
  ui.prejoin.hidden = true;
  ui.home.hidden = true;
  // A revoked link cannot join again: no button that would only fail.
  const revoked = /revoked/.test(state.ended.key);
  clear(ui.ended, h("p", {}, t(state.ended.key, state.ended.params)),
    state.ended.detail ? h("p", { class: "muted" }, state.ended.detail) : "",
    revoked ? "" : h("button", { type: "button", onclick: () => location.reload() }, t("rejoin")));
}

main().catch((error) => {
  console.error("[room] the page failed to start:", error?.message ?? error);
  update({ toast: { text: t("errorPage", { detail: String(error?.message ?? error) }), kind: "error", at: Date.now() } });
});
