// Who is here: everyone invited, with presence (their media connection, which is
// what the procedure counts), what they send, and whether they wait in the lobby;
// above it the quorum of clause 7.2. Commission members sitting in the university
// room count too (4.8): the secretary marks them here, everyone sees the mark.
import { h, clear } from "../dom.js";
import { roleName, t } from "../i18n.js";
import { act, busy, refused } from "../actions.js";
import { api, dayPath } from "../api.js";
import { COMMISSION, isPresent, myId, role, state, subscribe } from "../store.js";

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

// The secretary's switch: this member attends in the university room, or not.
function inPersonSwitch(personId, marked) {
  const box = h("input", { type: "checkbox", checked: marked, dataset: { action: "in-person", person: personId } });
  box.addEventListener("change", async () => {
    box.disabled = true;
    try {
      await act("in-person", { person: personId, in_person: box.checked });
    } finally {
      box.disabled = false;
      // The state decides what is shown; a refused change goes back.
      box.checked = Boolean(state.procedure?.in_person?.includes(personId));
    }
  });
  return h("label", { class: marked ? "in-person on" : "in-person", title: t("inRoomTitle") }, box, " ", t("inRoomTag"));
}

// Whom the secretary may mark as sitting in the room (4.8), and while it matters.
function markable(person) {
  const p = state.procedure;
  return role() === "secretary" && COMMISSION.has(person.role) && p?.kind === "defense" && p.phase !== "closed";
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
      const inRoom = Boolean(state.procedure?.in_person?.includes(person.id));
      const connected = isPresent(person.id);
      const here = connected || inRoom;
      const details = [roleName(person.role)];
      const inCoreLobby = state.procedure?.lobby?.includes(person.id);
      const waitsAdmission = entry?.lobby && !inCoreLobby;
      if (waitsAdmission) details.push(t("waitsAdmission"));
      else if (entry?.lobby || inCoreLobby) details.push(t("inLobby"));
      else if (entry && !here) details.push(t("connectionPending"));
      else if (connected) {
        const publishing = entry?.publishing ?? [];
        details.push(publishing.length ? publishing.map((k) => t(`publishing_${k}`)).join(", ")
          : t("publishingNone"));
      }
      return h("li", { class: here ? "here" : "away", dataset: { person: person.id } },
        h("span", { class: "dot", "aria-hidden": "true" }),
        h("span", { class: "name" }, person.name, person.id === myId() ? ` ${t("youMark")}` : ""),
        h("span", { class: "details" }, connected ? t("present") : inRoom ? t("inRoomOnly") : t("absent"),
          " · ", details.join(" · ")),
        waitsAdmission && role() === "secretary" ? admitButton(person.id) : "",
        markable(person) ? inPersonSwitch(person.id, inRoom)
          : inRoom ? h("span", { class: "in-room-tag" }, t("inRoomTag")) : "");
    }));
  });
  return root;
}
