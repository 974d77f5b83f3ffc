// Pieces every view uses: the video area and the "waiting outside" lobby panel.
import { formatTime } from "../clock.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { state, subscribe } from "../store.js";

export function videoArea(grid, { featured, heading = true } = {}) {
  const alone = h("p", { class: "alone" });
  const title = h("h2", { class: "visually-hidden" });
  const root = h("section", { class: "stage" }, heading ? title : "", grid.container, alone);
  subscribe(() => {
    title.textContent = t("videoHeading");
    alone.textContent = t("alone");
    alone.hidden = grid.count > 0 || state.link.phase !== "connected";
    if (featured) grid.setFeatured(featured());
  });
  return root;
}

export function lobbyPanel() {
  const title = h("h2", {});
  const text = h("p", {});
  const back = h("p", { class: "big-time" });
  const root = h("section", { class: "panel lobby", role: "status" }, title, text, back);
  subscribe(() => {
    root.hidden = !state.lobby;
    document.body.classList.toggle("in-lobby", state.lobby);
    if (!state.lobby) return;
    const admission = state.lobbyReason === "admission";
    title.textContent = t(admission ? "admissionHeading" : "lobbyHeading");
    text.textContent = t(admission ? "admissionText" : "lobbyText");
    const at = state.procedure?.return_at;
    back.textContent = at && !admission ? t("lobbyReturn", { time: formatTime(at) }) : "";
  });
  return root;
}
