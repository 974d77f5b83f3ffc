// What every personal page starts with: the day, when it starts in the person's own
// time zone (and the day's, when they differ), and the button into the room. Each
// role's page (home/<role>.js) adds its own sections below it.
import { refused } from "../actions.js";
import { api } from "../api.js";
import { formatDateTime, localZone } from "../clock.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { state, subscribe } from "../store.js";

// The person's zone: a student's is on file (B3); everyone else sees the browser's.
export function ownZone() {
  const me = state.me;
  const student = me.students.find((s) => s.id === me.me.id);
  return student?.timezone || localZone() || me.day.timezone;
}

export function dayCard({ onEnter }) {
  const when = h("p", { class: "home-when" });
  const dayZone = h("p", { class: "muted" });
  const title = h("h2", {});
  const enter = h("button", { type: "button", id: "enter-room", class: "primary big", onclick: onEnter });
  const hint = h("p", { class: "muted" });
  const card = h("section", { class: "card home-day" }, title, when, dayZone, enter, hint);
  subscribe(() => {
    const { day } = state.me;
    const zone = ownZone();
    title.textContent = day.title;
    when.textContent = t("homeStarts", { when: formatDateTime(day.starts_at, zone), zone });
    dayZone.hidden = zone === day.timezone;
    dayZone.textContent = t("homeDayZone", { when: formatDateTime(day.starts_at, day.timezone), zone: day.timezone });
    enter.textContent = t("homeEnter");
    hint.textContent = t("homeEnterHint");
  });
  return card;
}

// A titled section of a personal page.
export function section(titleKey, ...children) {
  const heading = h("h3", {});
  subscribe(() => { heading.textContent = t(titleKey); });
  return h("section", { class: "card" }, heading, ...children);
}

// Fetch a fresh link to the appeal sitting (`my-invite`) and go there.
export async function openAppealSitting(appeal) {
  try {
    const mine = await api.post(`/api/appeals/${appeal.appeal_id}/my-invite`, {});
    window.location.assign(mine.link);
  } catch (error) {
    refused(error);
  }
}
