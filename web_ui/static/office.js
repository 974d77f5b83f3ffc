// The department office's page: /office (or /office#<organizer token>, which leaves
// the address bar at once). The token is asked for once and kept in this tab's
// sessionStorage; every call sends it as a Bearer token (js/api.js).
//
// One column of cards: the days, newest first; creating a day from a form or from
// its day file; the people of the open day with their links (js/office/*.js).
// Everything is drawn again from the models below when the language changes, so
// nothing typed is lost.

import { api, ApiError, setCredentials } from "./js/api.js";
import { byId, clear, h } from "./js/dom.js";
import { initialLanguage, t, toggleLanguage, translateStatic } from "./js/i18n.js";
import { state, subscribe, update } from "./js/store.js";
import { createCard, importCard } from "./js/office/form.js";
import { lastSheet, peopleCard } from "./js/office/people.js";
import { fullDate, startLocal } from "./js/office/common.js";

const KEY = "defense-room-office-token";

// What the page knows; `links` holds the tokens this visit was given (by creating a
// day or by a new link), per day and person: they go on a sheet without a reissue.
export const office = {
  token: "",
  signinError: "",
  days: null,
  daysError: "",
  openDay: null,   // the day id whose people are shown
  mode: null,      // "form" | "upload" | null
  links: new Map(),
};

function knownLinks(dayId) {
  if (!office.links.has(dayId)) office.links.set(dayId, new Map());
  return office.links.get(dayId);
}

function takeTokenFromAddress() {
  const fromHash = decodeURIComponent(location.hash.slice(1));
  if (fromHash) {
    try {
      sessionStorage.setItem(KEY, fromHash);
    } catch {
      // kept in memory only
    }
    history.replaceState(null, "", location.pathname);
    return fromHash;
  }
  try {
    return sessionStorage.getItem(KEY) ?? "";
  } catch {
    return "";
  }
}

async function signIn(token) {
  setCredentials(token, null);
  try {
    const answer = await api.get("/api/days");
    office.token = token;
    office.days = answer.days;
    office.signinError = "";
    try {
      sessionStorage.setItem(KEY, token);
    } catch {
      // kept in memory only
    }
  } catch (error) {
    office.token = "";
    try {
      sessionStorage.removeItem(KEY);
    } catch {
      // nothing kept
    }
    office.signinError = error instanceof ApiError && error.status === 401
      ? t("officeWrongToken")
      : error instanceof ApiError && error.status === 403
        ? t("officeTokenOff")
        : t("officeSigninFailed", { message: error.message });
  }
  render();
}

export async function reloadDays() {
  try {
    office.days = (await api.get("/api/days")).days;
    office.daysError = "";
  } catch (error) {
    office.daysError = error.message;
  }
  render();
}

function signOut() {
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    // nothing kept
  }
  Object.assign(office, { token: "", days: null, openDay: null, mode: null });
  setCredentials("", null);  // the API module forgets the token too
  office.links.clear();
  render();
}

function signinCard() {
  const input = h("input", { id: "office-token", type: "password", autocomplete: "current-password",
    required: true, "aria-describedby": "office-signin-error" });
  const form = h("form", { class: "card office-signin", id: "office-signin", onsubmit: (event) => {
    event.preventDefault();
    if (input.value.trim()) signIn(input.value.trim());
  } },
  h("h2", {}, t("officeSigninTitle")),
  h("p", { class: "muted" }, t("officeSigninHelp")),
  h("label", { for: "office-token" }, t("officeTokenLabel")),
  h("div", { class: "row" }, input, h("button", { type: "submit", class: "primary", id: "office-signin-go" }, t("officeSignIn"))),
  h("p", { id: "office-signin-error", class: "alert", role: "alert", hidden: !office.signinError }, office.signinError));
  return form;
}

function daysCard() {
  const days = office.days ?? [];
  const rows = days.map((day) => h("tr", { class: day.id === office.openDay ? "office-current" : null },
    h("td", { "data-label": t("officeColTitle") }, day.title),
    h("td", { "data-label": t("officeColDate") }, fullDate(day.date)),
    h("td", { "data-label": t("officeColStart") }, startLocal(day.starts_at, day.timezone)),
    h("td", { "data-label": t("officeColZone") }, day.timezone),
    h("td", { "data-label": t("officeColPeople") }, String(day.people)),
    h("td", { "data-label": t("officeColStudents") }, String(day.students)),
    h("td", {}, h("button", { type: "button", class: "small office-open", dataset: { day: String(day.id) },
      onclick: () => openDay(day.id) }, t("officeOpen")))));
  return h("section", { class: "card", id: "office-days" },
    h("div", { class: "office-head" },
      h("h2", {}, t("officeDaysTitle")),
      h("div", { class: "row" },
        h("button", { type: "button", id: "office-new-form", class: office.mode === "form" ? "primary" : null,
          "aria-pressed": String(office.mode === "form"),
          onclick: () => { office.mode = office.mode === "form" ? null : "form"; render(); } }, t("officeNewForm")),
        h("button", { type: "button", id: "office-new-upload", class: office.mode === "upload" ? "primary" : null,
          "aria-pressed": String(office.mode === "upload"),
          onclick: () => { office.mode = office.mode === "upload" ? null : "upload"; render(); } }, t("officeNewUpload")))),
    office.daysError ? h("p", { class: "alert", role: "alert" }, office.daysError) : null,
    days.length
      ? h("table", { class: "office-table" },
        h("thead", {}, h("tr", {}, ...["officeColTitle", "officeColDate", "officeColStart", "officeColZone",
          "officeColPeople", "officeColStudents"].map((key) => h("th", {}, t(key))), h("th", {}, ""))),
        h("tbody", {}, rows))
      : h("p", { class: "muted", id: "office-no-days" }, t("officeNoDays")));
}

function openDay(dayId) {
  office.openDay = dayId;
  office.mode = null;
  render();
  byId("office-day")?.scrollIntoView({ block: "start" });
}

// A day was just created: its links are known, and its people open.
function created(answer) {
  const links = knownLinks(answer.day_id);
  for (const invite of answer.invites) links.set(invite.person_id, invite.link.split("/j/")[1]);
  office.openDay = answer.day_id;
  office.mode = null;
  office.justCreated = answer.day_id;
  reloadDays().then(() => byId("office-day")?.scrollIntoView({ block: "start" }));
}

export function render() {
  translateStatic();
  const main = byId("office");
  byId("office-signout").hidden = !office.token;
  if (!office.token) {
    clear(main, signinCard());
    return;
  }
  clear(main,
    daysCard(),
    office.mode === "form" ? createCard(created) : null,
    office.mode === "upload" ? importCard(created) : null,
    office.openDay != null
      ? peopleCard(office.openDay, knownLinks(office.openDay), {
        justCreated: office.justCreated === office.openDay,
        changed: reloadDays,
        close: () => { office.openDay = null; render(); },
      })
      : null);
}

function start() {
  update({ language: initialLanguage() });
  byId("lang").addEventListener("click", toggleLanguage);
  byId("office-signout").addEventListener("click", signOut);
  let first = true;
  subscribe(() => {
    if (!first) render();
    first = false;
  });
  const token = takeTokenFromAddress();
  render();
  if (token) signIn(token);
  window.officeDebug = { office, state, lastSheet };
}

start();
