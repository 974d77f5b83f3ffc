// Server messages (docs/signaling.md) into the page's state; negotiation stays in
// connection.js.
import { syncServerTime } from "./clock.js";
import { t } from "./i18n.js";
import { addNotice, state, update } from "./store.js";

export function onMessage(message) {
  switch (message.type) {
    case "welcome":
      update({ self: message.participant, roster: message.participants ?? [], lobby: false });
      if (message.state) update({ procedure: message.state });
      return;
    case "state":
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
      update({ lobby: Boolean(message.waiting) });
      return;
    case "notice":
      if (message.kind === "results") update({ results: message.grades ?? {} });
      addNotice(message);
      return;
    case "identity":
      update({ identity: message });
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
