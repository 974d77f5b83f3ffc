// Server messages (docs/signaling.md) into the page's state; negotiation stays in
// connection.js.
import { api, dayPath } from "./api.js";
import { syncServerTime } from "./clock.js";
import { t } from "./i18n.js";
import { addNotice, state, update } from "./store.js";

export function onMessage(message) {
  switch (message.type) {
    case "welcome":
      update({ self: message.participant, roster: message.participants ?? [],
        lobby: Boolean(message.lobby?.waiting), lobbyReason: message.lobby?.reason ?? null });
      if (message.state) update({ procedure: message.state });
      refreshState();
      return;
    case "state":
      stateAppliedAt = performance.now();
      syncServerTime(message.server_time);
      update({ procedure: message.state, presentation: message.presentation ?? state.presentation });
      return;
    case "participants":
      update({ roster: message.participants ?? [] });
      return;
    case "presentation":
      update({ presentation: { student: message.student, page: message.page } });
      return;
    case "lobby":
      update({ lobby: Boolean(message.waiting), lobbyReason: message.reason ?? null });
      return;
    case "notice":
      if (message.kind === "results") update({ results: message.grades ?? {} });
      addNotice(message);
      refreshState();
      return;
    case "identity":
      update({ identity: message });
      return;
    case "track_unavailable": // a forwarded track in a codec this browser lacks
      addNotice({ kind: "track_unavailable", name: message.name, media: message.kind, codec: message.codec });
      return;
    case "error":
      console.warn("[room] server error:", message.code, message.message);
      update({ toast: { text: t(`error_${message.code}`) !== `error_${message.code}` ? t(`error_${message.code}`)
        : `${t("errorGeneric")}: ${message.message}`, kind: "error", at: Date.now() } });
      return;
    default:
      return;
  }
}

// The welcome carries the procedure but not the slide on screen nor the server's
// clock, so a page that (re)joins mid-defense reads both. Every change is also
// pushed as a `state` message; a slow read now and then (and after each notice)
// only repairs a page whose socket missed one (the server skips a socket that
// takes over 5 s), so the recording indicator never stays wrong for long.
const RESYNC_MS = 15000;
let resyncTimer = null;
// When a newer state arrived (socket or an action's answer): a read sent before it
// is stale and dropped.
let stateAppliedAt = 0;

export function stateApplied() {
  stateAppliedAt = performance.now();
}

export async function refreshState() {
  clearTimeout(resyncTimer);
  resyncTimer = setTimeout(refreshState, RESYNC_MS);
  if (state.link.phase === "ended" || !state.me) return;
  const sentAt = performance.now();
  try {
    const answer = await api.get(dayPath("/state"));
    syncServerTime(answer.server_time);
    if (sentAt < stateAppliedAt) return;
    stateAppliedAt = performance.now();
    update({ procedure: answer.state, presentation: answer.presentation ?? null });
  } catch (error) {
    console.warn("[room] the state could not be read:", error?.message ?? error);
  }
}
