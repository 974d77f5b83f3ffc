// Who is here: everyone invited, with presence (their media connection, which is
// what the procedure counts), what they send, and whether they wait in the lobby;
// above it the quorum of clause 7.2.
import { h, clear } from "../dom.js";
import { roleName, t } from "../i18n.js";
import { busy, refused } from "../actions.js";
import { api, dayPath } from "../api.js";
import { isPresent, myId, role, state, subscribe } from "../store.js";

const ORDER = ["chair", "member", "secretary", "student", "supervisor", "reviewer", "observer"];

export function quorumBadge() {
  const badge = h("p", { class: "quorum" });
  subscribe(() => {
    const q = state.procedure?.quorum;
    badge.hidden = !q;
    if (!q) return;
    badge.classList.toggle("ok", q.reached);
    badge.classList.toggle("bad", !q.reached);
    badge.textContent = t(q.reached ? "quorumOk" : "quorumMissing",
      { present: q.present, total: q.total, required: q.required });
  });
  return badge;
}

function admitButton(personId) {
  const button = h("button", { type: "button", class: "primary small admit" }, t("admit"));
  button.addEventListener("click", busy(button, async () => {
    try {
      await api.post(dayPath("/admit"), { person: personId });
    } catch (error) {
      refused(error);
    }
  }));
  return button;
}

export function rosterPanel() {
  const list = h("ul", { class: "roster-list" });
  const root = h("section", { class: "panel roster" },
    h("h2", { "data-i18n": "participants" }, t("participants")), quorumBadge(), list);
  subscribe(() => {
    const live = new Map(state.roster.map((entry) => [entry.id, entry]));
    const people = state.me?.people ?? state.roster;
    const sorted = [...people].sort((a, b) => ORDER.indexOf(a.role) - ORDER.indexOf(b.role));
    clear(list, sorted.map((person) => {
      const entry = live.get(person.id);
      const here = isPresent(person.id);
      const details = [roleName(person.role)];
      const inCoreLobby = state.procedure?.lobby?.includes(person.id);
      const waitsAdmission = entry?.lobby && !inCoreLobby;
      if (waitsAdmission) details.push(t("waitsAdmission"));
      else if (entry?.lobby || inCoreLobby) details.push(t("inLobby"));
      else if (entry && !here) details.push(t("connectionPending"));
      else if (here) {
        const publishing = entry?.publishing ?? [];
        details.push(publishing.length ? publishing.map((k) => t(`publishing_${k}`)).join(", ")
          : t("publishingNone"));
      }
      return h("li", { class: here ? "here" : "away", dataset: { person: person.id } },
        h("span", { class: "dot", "aria-hidden": "true" }),
        h("span", { class: "name" }, person.name, person.id === myId() ? ` ${t("youMark")}` : ""),
        h("span", { class: "details" }, here ? t("present") : t("absent"), " · ", details.join(" · ")),
        waitsAdmission && role() === "secretary" ? admitButton(person.id) : "");
    }));
  });
  return root;
}
