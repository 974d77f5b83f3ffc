// Who is here: everyone invited, with presence (their media connection, which is
// what the procedure counts), what they send, and whether they wait in the lobby;
// above it the quorum of clause 7.2.
import { h, clear } from "../dom.js";
import { roleName, t } from "../i18n.js";
import { isPresent, myId, state, subscribe } from "../store.js";

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
      if (entry?.lobby || state.procedure?.lobby?.includes(person.id)) details.push(t("inLobby"));
      else if (entry && !here) details.push(t("connectionPending"));
      else if (here) {
        const publishing = entry?.publishing ?? [];
        details.push(publishing.length ? publishing.map((k) => t(`publishing_${k}`)).join(", ")
          : t("publishingNone"));
      }
      return h("li", { class: here ? "here" : "away", dataset: { person: person.id } },
        h("span", { class: "dot", "aria-hidden": "true" }),
        h("span", { class: "name" }, person.name, person.id === myId() ? ` ${t("youMark")}` : ""),
        h("span", { class: "details" }, here ? t("present") : t("absent"), " · ", details.join(" · ")));
    }));
  });
  return root;
}
