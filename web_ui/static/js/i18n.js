// Russian by default, English on request; the choice is remembered on the device.
import { ru as coreRu } from "./strings/ru.js";
import { en as coreEn } from "./strings/en.js";
import * as account from "./strings/account.js";
import * as appeal from "./strings/appeal.js";
import * as identity from "./strings/identity.js";
import * as network from "./strings/network.js";
import * as networkQuality from "./strings/network_quality.js";
import * as office from "./strings/office.js";
import * as secretary from "./strings/secretary.js";
import * as student from "./strings/student.js";
import { state, update } from "./store.js";

// The core table, then one table per part of the pages (each file holds both
// languages, key for key; tests/test_browser.py checks that they match and that
// no key is defined twice).
const FEATURES = [account, appeal, identity, network, networkQuality, office, secretary, student];
const ru = Object.assign({}, coreRu, ...FEATURES.map((f) => f.ru));
const en = Object.assign({}, coreEn, ...FEATURES.map((f) => f.en));
const TABLES = { ru, en };

export function t(key, params = {}) {
  const table = TABLES[state.language] ?? ru;
  const text = table[key] ?? ru[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in params ? String(params[name]) : `{${name}}`));
}

export function has(key) {
  return key in ru;
}

export function initialLanguage() {
  try {
    const saved = localStorage.getItem("room.language");
    if (saved in TABLES) return saved;
  } catch {
    // storage refused (private mode): Russian
  }
  return "ru";
}

export function toggleLanguage() {
  const language = state.language === "ru" ? "en" : "ru";
  try {
    localStorage.setItem("room.language", language);
  } catch {
    // not remembered; the switch still works on this page
  }
  update({ language });
}

// Elements with data-i18n="key" get their text from the table.
export function translateStatic(root = document) {
  document.documentElement.lang = state.language;
  for (const element of root.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n);
  }
  for (const element of root.querySelectorAll("[data-i18n-label]")) {
    element.setAttribute("aria-label", t(element.dataset.i18nLabel));
  }
}

export function roleName(role) {
  return has(`role_${role}`) ? t(`role_${role}`) : role ?? "";
}

export function phaseName(phase) {
  return has(`phase_${phase}`) ? t(`phase_${phase}`) : phase ?? "";
}

export function gradeName(grade) {
  return has(`grade_${grade}`) ? t(`grade_${grade}`) : grade ?? "";
}
