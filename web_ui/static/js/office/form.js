// Creating a day: from a form (POST /api/days, the day file's fields as JSON, e-mail
// and language per person under `contacts`) or from the day file itself with an
// optional students CSV (POST /api/days/import). The models live here, so drawing
// the card again (the language switch, an error) keeps everything typed.

import { api } from "../api.js";
import { clear, h } from "../dom.js";
import { t } from "../i18n.js";

const person = () => ({ name: "", email: "", language: "ru" });
const student = () => ({ ...person(), thesis_title: "", timezone: "", extra: "",
  supervisor: person(), reviewer: person() });

const model = {
  title: "", date: "", start: "10:00", timezone: "Europe/Moscow", norm: false,
  chair: person(), members: [person()], secretary: person(),
  students: [student()], observers: [],
  error: "", busy: false,
};

const upload = { day: null, students: null, error: "", busy: false };

function field(labelKey, input, hint) {
  return h("label", { class: "office-field" }, h("span", {}, t(labelKey)), input,
    hint ? h("small", { class: "muted" }, hint) : null);
}

function textInput(target, key, attrs = {}) {
  return h("input", { value: target[key] ?? "", ...attrs,
    oninput: (event) => { target[key] = event.target.value; } });
}

function languageSelect(target, attrs = {}) {
  const select = h("select", { ...attrs, onchange: (event) => { target.language = event.target.value; } },
    h("option", { value: "ru" }, t("officeLangRu")), h("option", { value: "en" }, t("officeLangEn")));
  select.value = target.language;
  return select;
}

// Name, e-mail and language of one person.
function personFields(target, labelKey, id) {
  return h("div", { class: "office-person", dataset: { person: id } },
    field(labelKey, textInput(target, "name", { name: `${id}-name`, autocomplete: "off" })),
    field("officeEmail", textInput(target, "email", { name: `${id}-email`, type: "email", autocomplete: "off" })),
    field("officeLanguage", languageSelect(target, { name: `${id}-language` })));
}

function removable(list, index, redraw, child) {
  return h("div", { class: "office-item" }, child,
    h("button", { type: "button", class: "small danger office-remove",
      onclick: () => { list.splice(index, 1); redraw(); } }, t("officeRemove")));
}

function contactOf(contacts, p) {
  const name = p.name.trim();
  if (name && p.email.trim()) contacts[name] = { email: p.email.trim(), language: p.language };
}

// The form as the day file's JSON (server/dayfile.py parse_day).
function dayBody() {
  const named = (list) => list.filter((p) => p.name.trim());
  const students = model.students.filter((s) => s.name.trim() || s.thesis_title.trim());
  const contacts = {};
  for (const p of [model.chair, ...named(model.members), model.secretary, ...named(model.observers)]) contactOf(contacts, p);
  for (const s of students) {
    contactOf(contacts, s);
    contactOf(contacts, s.supervisor);
    contactOf(contacts, s.reviewer);
  }
  const body = {
    title: model.title.trim(), date: model.date, start: model.start, timezone: model.timezone.trim(),
    norm_control_required: model.norm,
    commission: { chair: model.chair.name.trim(), members: named(model.members).map((p) => p.name.trim()),
      secretary: model.secretary.name.trim() },
    students: students.map((s) => {
      const entry = { name: s.name.trim(), thesis_title: s.thesis_title.trim(),
        supervisor: s.supervisor.name.trim(), reviewer: s.reviewer.name.trim() };
      if (s.timezone.trim()) entry.timezone = s.timezone.trim();
      if (String(s.extra).trim()) entry.extra_time_percent = Number(String(s.extra).replace(",", "."));
      return entry;
    }),
    observers: named(model.observers).map((p) => p.name.trim()),
  };
  if (Object.keys(contacts).length) body.contacts = contacts;
  return body;
}

export function createCard(onCreated) {
  const card = h("section", { class: "card office-create", id: "office-create" });
  // By id: after one redraw this closure's card is no longer the one on the page.
  const redraw = () => document.getElementById("office-create")?.replaceWith(createCard(onCreated));

  const submit = async (event) => {
    event.preventDefault();
    model.busy = true;
    model.error = "";
    redraw();
    try {
      const answer = await api.post("/api/days", dayBody());
      Object.assign(model, { title: "", date: "", chair: person(), members: [person()], secretary: person(),
        students: [student()], observers: [], busy: false });
      onCreated(answer);
    } catch (error) {
      model.busy = false;
      model.error = t("officeServerSaid", { message: error.message });
      redraw();
      document.getElementById("office-create-error")?.scrollIntoView({ block: "center" });
    }
  };

  const studentRows = model.students.map((s, i) => removable(model.students, i, redraw,
    h("fieldset", { class: "office-student", dataset: { student: String(i) } },
      h("legend", {}, t("officeStudentN", { n: i + 1 })),
      personFields(s, "officeStudentName", `student-${i}`),
      h("div", { class: "office-grid" },
        field("officeThesis", textInput(s, "thesis_title", { name: `student-${i}-thesis` })),
        field("officeStudentZone", textInput(s, "timezone", { name: `student-${i}-timezone`, placeholder: model.timezone }),
          t("officeZoneHint")),
        field("officeExtra", textInput(s, "extra", { name: `student-${i}-extra`, inputmode: "decimal", placeholder: "0" }))),
      personFields(s.supervisor, "officeSupervisor", `student-${i}-supervisor`),
      personFields(s.reviewer, "officeReviewer", `student-${i}-reviewer`))));

  clear(card,
    h("h2", {}, t("officeCreateTitle")),
    h("form", { id: "office-create-form", onsubmit: submit, novalidate: true },
      h("div", { class: "office-grid" },
        field("officeDayTitle", textInput(model, "title", { name: "title", required: true })),
        field("officeDate", textInput(model, "date", { name: "date", type: "date", required: true })),
        field("officeStart", textInput(model, "start", { name: "start", type: "time", required: true })),
        field("officeZone", textInput(model, "timezone", { name: "timezone", required: true }), t("officeZoneExample"))),
      h("label", { class: "office-check" },
        h("input", { type: "checkbox", name: "norm", checked: model.norm,
          onchange: (event) => { model.norm = event.target.checked; } }),
        t("officeNorm")),
      h("h3", {}, t("officeCommission")),
      personFields(model.chair, "officeChair", "chair"),
      ...model.members.map((m, i) => removable(model.members, i, redraw,
        personFields(m, "officeMember", `member-${i}`))),
      h("button", { type: "button", id: "office-add-member", class: "small",
        onclick: () => { model.members.push(person()); redraw(); } }, t("officeAddMember")),
      personFields(model.secretary, "officeSecretary", "secretary"),
      h("h3", {}, t("officeStudents")),
      ...studentRows,
      h("button", { type: "button", id: "office-add-student", class: "small",
        onclick: () => { model.students.push(student()); redraw(); } }, t("officeAddStudent")),
      h("h3", {}, t("officeObservers")),
      ...model.observers.map((o, i) => removable(model.observers, i, redraw,
        personFields(o, "officeObserver", `observer-${i}`))),
      h("button", { type: "button", id: "office-add-observer", class: "small",
        onclick: () => { model.observers.push(person()); redraw(); } }, t("officeAddObserver")),
      h("p", { id: "office-create-error", class: "alert office-error", role: "alert", hidden: !model.error }, model.error),
      h("div", { class: "row office-submit" },
        h("button", { type: "submit", class: "primary", id: "office-create-go", disabled: model.busy },
          model.busy ? t("officeCreating") : t("officeCreate")))));
  return card;
}

async function readFile(input, slot) {
  const file = input.files?.[0];
  upload[slot] = file ? { name: file.name, text: await file.text() } : null;
}

export function importCard(onCreated) {
  const card = h("section", { class: "card office-upload", id: "office-upload" });
  const redraw = () => document.getElementById("office-upload")?.replaceWith(importCard(onCreated));
  const submit = async (event) => {
    event.preventDefault();
    if (!upload.day) {
      upload.error = t("officeNeedDayFile");
      redraw();
      return;
    }
    upload.busy = true;
    upload.error = "";
    redraw();
    try {
      const body = { day: upload.day.text };
      if (upload.students) body.students = upload.students.text;
      const answer = await api.post(`/api/days/import`, body);
      Object.assign(upload, { day: null, students: null, busy: false });
      onCreated(answer);
    } catch (error) {
      upload.busy = false;
      upload.error = t("officeServerSaid", { message: error.message });
      redraw();
    }
  };
  const notes = {
    day: h("small", { class: "muted office-chosen", hidden: !upload.day }, upload.day ? t("officeChosen", { name: upload.day.name }) : ""),
    students: h("small", { class: "muted office-chosen", hidden: !upload.students },
      upload.students ? t("officeChosen", { name: upload.students.name }) : ""),
  };
  // Not drawn again: the input keeps showing the file chosen; the note says what goes.
  const picked = (slot) => async (event) => {
    await readFile(event.target, slot);
    notes[slot].textContent = upload[slot] ? t("officeChosen", { name: upload[slot].name }) : "";
    notes[slot].hidden = !upload[slot];
  };
  const chosen = (slot) => notes[slot];
  clear(card,
    h("h2", {}, t("officeImportTitle")),
    h("p", { class: "muted" }, t("officeImportHelp")),
    h("form", { id: "office-import-form", onsubmit: submit },
      h("label", { class: "office-field" }, h("span", {}, t("officeDayFile")),
        h("input", { type: "file", id: "office-day-file", accept: ".yaml,.yml,text/yaml",
          onchange: picked("day") }), chosen("day")),
      h("label", { class: "office-field" }, h("span", {}, t("officeCsvFile")),
        h("input", { type: "file", id: "office-csv-file", accept: ".csv,text/csv",
          onchange: picked("students") }), chosen("students")),
      h("p", { id: "office-import-error", class: "alert office-error", role: "alert", hidden: !upload.error }, upload.error),
      h("div", { class: "row office-submit" },
        h("button", { type: "submit", class: "primary", id: "office-import-go", disabled: upload.busy },
          upload.busy ? t("officeCreating") : t("officeImport")))));
  return card;
}
