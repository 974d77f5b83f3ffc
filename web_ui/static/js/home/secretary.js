// The secretary's preparation view: readiness, consent, documents, students, the
// queue; after the sitting, the hand-over. Appeals are home/appeal_secretary.js.
//
// Reads GET .../preparation (web_ui/secretary_api.py: the readiness of B1 with the
// dates of every document) and .../queue and .../handovers; writes through the same
// routes the API documents (PATCH .../students/{p}, .../consent, .../documents,
// PUT .../files/{kind}, POST .../people, the `queue` command, POST .../handover).
// Every card re-renders on `subscribe`, so the language switch works; what the
// secretary typed or chose stays across re-renders and reloads of the data.
import { api, dayPath } from "../api.js";
import { refused, toast, withNames } from "../actions.js";
import { formatDateTime, now } from "../clock.js";
import { clear, h, saveBlob } from "../dom.js";
import { has, roleName, t } from "../i18n.js";
import { state, subscribe } from "../store.js";
import { appealsSection } from "./appeal_secretary.js";
import { section } from "./common.js";

// The kinds the secretary files for a student (the student files their own too).
const KINDS = ["reviewer_review", "supervisor_review", "plagiarism_report", "norm_control",
  "thesis", "presentation_pdf", "absence_proof"];
const GUEST_ROLES = ["supervisor", "reviewer", "observer"];
const DAYS_BEFORE = 2;

const docName = (kind) => (has(`doc_${kind}`) ? t(`doc_${kind}`) : kind);

// One shared store of what the page read: every card draws from it.
const data = { prep: null, queue: null, handovers: null, error: null };
const redraws = new Set();

function redraw() {
  for (const draw of redraws) draw();
}

async function loadPreparation() {
  try {
    data.prep = await api.get(dayPath("/preparation"));
    data.error = null;
  } catch (error) {
    data.error = error;
  }
  redraw();
}

async function loadQueue() {
  try {
    data.queue = await api.get(dayPath("/queue"));
  } catch (error) {
    data.queue = { error: error.message };
  }
  redraw();
}

async function loadHandovers() {
  try {
    data.handovers = await api.get(dayPath("/handovers"));
  } catch (error) {
    data.handovers = { error: error.message };
  }
  redraw();
}

function studentName(id) {
  return data.prep?.students.find((s) => String(s.person_id) === String(id))?.name ?? String(id);
}

// A button that stays disabled while `run` is in flight (the browser tests wait for it).
// A button of a list that is rebuilt on every redraw (`rebuilt`) takes its text once.
function button(key, run, attrs = {}, rebuilt = false) {
  const element = h("button", { type: "button", ...attrs });
  element.addEventListener("click", async () => {
    if (element.disabled) return;
    element.disabled = true;
    try {
      await run();
    } catch (error) {
      refused(error);
    } finally {
      element.disabled = false;
    }
  });
  if (rebuilt) element.textContent = t(key);
  else redraws.add(() => { element.textContent = t(key); });
  return element;
}

// The caption above its control; neither wider than the card (a phone's is narrow):
// home.css .sec-field and .sec-control; .sec-wide takes a whole line.
function label(key, control, { wide = false } = {}) {
  const text = h("span", { class: "sec-label muted" });
  redraws.add(() => { text.textContent = t(key); });
  control.classList.add("sec-control");
  if (wide) control.classList.add("sec-wide");
  return h("label", { class: wide ? "sec-field sec-wide" : "sec-field" }, text, control);
}

// "05.12.2026, 06:10" (in `zone` if given): short enough for a table cell on a phone.
function shortDateTime(unixSeconds, zone) {
  const options = { day: "2-digit", month: "2-digit", year: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  if (zone) options.timeZone = zone;
  const locale = state.language === "en" ? "en-GB" : "ru-RU";
  try {
    return new Date(unixSeconds * 1000).toLocaleString(locale, options);
  } catch {
    delete options.timeZone;
    return new Date(unixSeconds * 1000).toLocaleString(locale, options);
  }
}

// A student picker; keeps the choice across redraws.
function studentSelect(name) {
  const select = h("select", { name });
  redraws.add(() => {
    const students = data.prep?.students ?? [];
    const chosen = select.value;
    clear(select, students.map((s) => h("option", { value: String(s.person_id) }, s.name)));
    if (students.some((s) => String(s.person_id) === chosen)) select.value = chosen;
  });
  return select;
}

// "2026-12-13" (an <input type="date">) as unix time: noon of that day here, and
// never later than now (the server refuses a moment in the future).
function fromDateInput(value) {
  if (!value) return null;
  const ms = new Date(`${value}T12:00`).getTime();
  if (!Number.isFinite(ms)) return null;
  return Math.min(Math.round(ms / 1000), Math.floor(now()));
}

function today() {
  const d = new Date();
  const two = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`;
}

async function openDocument(studentId, kind) {
  const blob = await api.blob(dayPath(`/students/${studentId}/files/${kind}`));
  const url = URL.createObjectURL(new Blob([blob], { type: "application/pdf" }));
  window.open(url, "_blank", "noopener");
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// ---- 1. Readiness (B1) ---------------------------------------------------------

function cell(entry, lateFlag) {
  if (!entry) return h("span", { class: "state-missing" }, t("secMissing"));
  const when = shortDateTime(entry.at, data.prep.timezone);
  return h("span", { class: lateFlag ? "state-wait" : "state-ok" },
    t(lateFlag ? "secLate" : "secOnTime", { when }));
}

function studentTable(student) {
  const rows = [];
  rows.push(h("tr", { dataset: { item: "consent", state: student.consent_on_file ? (student.consent_late ? "late" : "ok") : "missing" } },
    h("td", {}, t("secConsent")),
    h("td", {}, cell(student.consent_on_file ? { at: student.consent_at } : null, student.consent_late))));
  for (const kind of data.prep.required) {
    const doc = student.documents[kind];
    const missing = student.missing.includes(kind);
    const late = student.late.includes(kind);
    const file = doc?.file;
    rows.push(h("tr", { dataset: { item: kind, state: missing ? "missing" : late ? "late" : "ok" } },
      h("td", {}, docName(kind)),
      h("td", {}, cell(missing ? null : { at: doc.first_at }, late),
        doc && !file ? h("span", { class: "muted" }, ` · ${t("secOnPaper")}`) : "",
        doc && doc.versions > 1 ? h("span", { class: "muted" }, ` · ${t("secVersions", { count: doc.versions })}`) : "",
        file ? [" ", button("secOpen", () => openDocument(student.person_id, kind), { class: "small link", dataset: { open: kind } }, true)] : "")));
  }
  const verdict = student.can_defend
    ? h("p", { class: "state-ok sec-verdict" }, `✓ ${t("secReady")}`)
    : h("p", { class: "state-missing sec-verdict" }, `✗ ${t("secNotReady")}`);
  return h("div", { class: "sec-student", dataset: { student: String(student.person_id), ready: String(student.can_defend) } },
    h("h4", {}, `${student.queue_position}. ${student.name}`), verdict,
    h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, t("secItem")), h("th", {}, t("secState")))),
      h("tbody", {}, rows)));
}

function readinessCard() {
  const deadline = h("p", { class: "muted" });
  const list = h("div", { class: "sec-readiness-list" });
  const refresh = button("secRefresh", loadPreparation, { class: "small", id: "sec-refresh" });
  const card = section("secReadinessHeading", h("div", { class: "row" }, refresh), deadline, list);
  card.id = "sec-readiness";
  redraws.add(() => {
    if (data.error) {
      deadline.textContent = "";
      clear(list, h("p", { class: "alert" }, data.error.message));
      return;
    }
    if (!data.prep) {
      clear(list, h("p", { class: "muted" }, t("secLoading")));
      return;
    }
    deadline.textContent = t("secDeadline", {
      when: formatDateTime(data.prep.deadline, data.prep.timezone), days: DAYS_BEFORE });
    clear(list, data.prep.students.map(studentTable));
  });
  return card;
}

// ---- 2. Paper consent ------------------------------------------------------------

function consentCard() {
  const who = studentSelect("consent-student");
  const date = h("input", { type: "date", name: "consent-date", value: today(), max: today() });
  const record = button("secRecordConsent", async () => {
    const at = fromDateInput(date.value);
    if (at === null) {
      toast(t("secDateNeeded"), "error");
      return;
    }
    await api.post(dayPath(`/students/${who.value}/consent`), { consent_at: at });
    toast(t("secConsentRecorded", { name: studentName(who.value) }));
    await loadPreparation();
  }, { class: "primary", id: "sec-record-consent" });
  const card = section("secConsentHeading",
    h("div", { class: "row" }, label("secStudent", who), label("secDate", date)), record);
  card.id = "sec-consent";
  return card;
}

// ---- 3. Documents ----------------------------------------------------------------

function documentsCard() {
  const who = studentSelect("doc-student");
  const kind = h("select", { name: "doc-kind" });
  redraws.add(() => {
    const chosen = kind.value;
    clear(kind, KINDS.map((k) => h("option", { value: k }, docName(k))));
    if (chosen) kind.value = chosen;
  });
  // The browser's own file button speaks the browser's language: ours speaks the page's.
  const file = h("input", { type: "file", accept: "application/pdf,.pdf", class: "visually-hidden", id: "sec-doc-file" });
  const picked = h("span", { class: "muted" });
  const pick = button("secPickFile", () => file.click(), { class: "small" });
  file.addEventListener("change", () => redraw());
  redraws.add(() => { picked.textContent = file.files?.[0]?.name ?? t("secNoFile"); });
  const reason = h("input", { type: "text", name: "doc-reason", maxlength: 500 });
  const upload = button("secUpload", async () => {
    const chosen = file.files?.[0];
    if (!chosen) {
      toast(t("secChooseFile"), "error");
      return;
    }
    const query = reason.value.trim() ? `?reason=${encodeURIComponent(reason.value.trim())}` : "";
    await api.put(dayPath(`/students/${who.value}/files/${kind.value}${query}`), chosen, "application/pdf");
    toast(t("secUploaded", { kind: docName(kind.value), name: studentName(who.value) }));
    file.value = "";
    reason.value = "";
    await loadPreparation();
  }, { class: "primary", id: "sec-upload" });
  const paperDate = h("input", { type: "date", name: "doc-paper-date", value: today(), max: today() });
  const paper = button("secRecordPaper", async () => {
    const at = fromDateInput(paperDate.value);
    if (at === null) {
      toast(t("secDateNeeded"), "error");
      return;
    }
    await api.post(dayPath(`/students/${who.value}/documents`), { kind: kind.value, uploaded_at: at });
    toast(t("secPaperRecorded", { kind: docName(kind.value), name: studentName(who.value) }));
    await loadPreparation();
  }, { class: "small", id: "sec-record-paper" });
  const onFile = h("div", { class: "sec-on-file" });
  who.addEventListener("change", () => redraw());
  redraws.add(() => {
    const student = data.prep?.students.find((s) => String(s.person_id) === who.value);
    if (!student) {
      clear(onFile);
      return;
    }
    const files = Object.entries(student.documents).filter(([, d]) => d.file);
    clear(onFile, h("p", { class: "muted" }, files.length ? t("secOnFile") : t("secNothingOnFile")),
      files.length ? h("ul", {}, files.map(([k, d]) => h("li", {},
        `${docName(k)} · ${shortDateTime(d.file.uploaded_at)} `,
        button("secOpen", () => openDocument(student.person_id, k), { class: "small link" }, true)))) : "");
  });
  const card = section("secDocumentsHeading",
    h("div", { class: "row" }, label("secStudent", who), label("secKind", kind)),
    h("div", { class: "row" }, file, pick, picked),
    label("secReason", reason, { wide: true }),
    h("div", { class: "row" }, upload),
    h("div", { class: "row" }, label("secPaperDate", paperDate), paper),
    onFile);
  card.id = "sec-documents";
  return card;
}

// ---- 4. Students' details, and guests ------------------------------------------

function zoneNames() {
  try {
    return Intl.supportedValuesOf("timeZone");
  } catch {
    return [];
  }
}

function studentsCard() {
  const who = studentSelect("edit-student");
  const title = h("input", { type: "text", name: "thesis_title", maxlength: 1000 });
  const supervisor = h("input", { type: "text", name: "supervisor", maxlength: 200 });
  const reviewer = h("input", { type: "text", name: "reviewer", maxlength: 200 });
  // The zones the browser knows (IANA names, as the server checks them).
  const zones = zoneNames();
  const timezone = zones.length
    ? h("select", { name: "timezone" }, zones.map((z) => h("option", { value: z }, z)))
    : h("input", { type: "text", name: "timezone", maxlength: 64 });
  const extra = h("input", { type: "number", name: "extra_time_percent", min: 0, max: 100, step: 5 });
  let shown = null;  // the student whose values fill the form

  function fill() {
    const student = data.prep?.students.find((s) => String(s.person_id) === who.value);
    if (!student || shown === student) return;
    shown = student;
    title.value = student.thesis_title;
    supervisor.value = student.supervisor;
    reviewer.value = student.reviewer;
    if (timezone.tagName === "SELECT" && ![...timezone.options].some((o) => o.value === student.timezone)) {
      timezone.append(h("option", { value: student.timezone }, student.timezone));
    }
    timezone.value = student.timezone;
    extra.value = String(student.extra_time_percent ?? 0);
  }
  who.addEventListener("change", () => { shown = null; fill(); });
  redraws.add(() => {
    // A reload of the data refills the form only when the student changed.
    const student = data.prep?.students.find((s) => String(s.person_id) === who.value);
    if (student && (!shown || shown.person_id !== student.person_id)) {
      shown = null;
      fill();
    } else if (student) {
      shown = student;
    }
  });
  const save = button("secSave", async () => {
    const student = data.prep?.students.find((s) => String(s.person_id) === who.value);
    if (!student) return;
    const zone = timezone.value.trim();
    if (timezone.tagName !== "SELECT" && zones.length && !zones.includes(zone)) {
      toast(t("secBadZone", { zone }), "error");
      return;
    }
    const changes = {};
    if (title.value.trim() !== student.thesis_title) changes.thesis_title = title.value.trim();
    if (supervisor.value.trim() !== student.supervisor) changes.supervisor = supervisor.value.trim();
    if (reviewer.value.trim() !== student.reviewer) changes.reviewer = reviewer.value.trim();
    if (zone !== student.timezone) changes.timezone = zone;
    const percent = Number(extra.value);
    if (extra.value !== "" && percent !== Number(student.extra_time_percent ?? 0)) changes.extra_time_percent = percent;
    if (!Object.keys(changes).length) {
      toast(t("secNothingChanged"));
      return;
    }
    await api.raw("PATCH", dayPath(`/students/${student.person_id}`), changes);
    toast(t("secSaved", { name: student.name }));
    // The form already shows what was saved; the reloads keep it as it is.
    await loadPreparation();
    await loadQueue();
  }, { class: "primary", id: "sec-save-student" });

  // A supervisor, reviewer or observer the day file did not name (P1).
  const guestName = h("input", { type: "text", name: "guest-name", maxlength: 200 });
  const guestRole = h("select", { name: "guest-role" });
  redraws.add(() => {
    const chosen = guestRole.value;
    clear(guestRole, GUEST_ROLES.map((r) => h("option", { value: r }, roleName(r))));
    if (chosen) guestRole.value = chosen;
  });
  const link = h("div", { class: "sec-guest-link", id: "sec-guest-link", hidden: true });
  const invite = button("secInvite", async () => {
    const name = guestName.value.trim();
    if (!name) {
      guestName.focus();
      return;
    }
    const added = await api.post(dayPath("/people"), { name, role: guestRole.value });
    guestName.value = "";
    // Shown once: the server keeps only the token's hash.
    clear(link, h("p", {}, t("secGuestLink", { name: added.name })),
      h("input", { type: "text", readonly: true, value: added.link, class: "sec-link", onfocus: (e) => e.target.select() }));
    link.hidden = false;
  }, { class: "small", id: "sec-invite" });
  const guestHeading = h("h4", {});
  redraws.add(() => { guestHeading.textContent = t("secGuestHeading"); });

  const card = section("secStudentsHeading",
    label("secStudent", who), label("secThesis", title, { wide: true }),
    h("div", { class: "row" }, label("secSupervisor", supervisor), label("secReviewer", reviewer)),
    h("div", { class: "row" }, label("secZone", timezone), label("secExtra", extra)),
    h("div", { class: "row" }, save), guestHeading,
    h("div", { class: "row" }, label("secGuestName", guestName), label("secGuestRole", guestRole), invite),
    link);
  card.id = "sec-students";
  return card;
}

// ---- 5. The queue (B3, clause 7.4) ---------------------------------------------

function localStart(entry) {
  // "2026-12-14T15:30+05:00": the sitting's start on the student's own clock.
  const text = entry.sitting_starts_local ?? "";
  const [y, m, d] = text.slice(0, 10).split("-");
  return { date: `${d}.${m}.${y}`, time: text.slice(11, 16), zone: entry.timezone };
}

function queueCard() {
  const lock = h("p", { class: "muted" });
  const list = h("ol", { class: "sec-queue" });
  const card = section("secQueueHeading", lock, list);
  card.id = "sec-queue";

  async function move(index, step) {
    const order = data.queue.queue.map((entry) => entry.student);
    const [moved] = order.splice(index, 1);
    order.splice(index + step, 0, moved);
    await api.act("queue", { order });
    toast(t("secQueueMoved"));
    await loadQueue();
  }

  redraws.add(() => {
    const q = data.queue;
    if (!q) return;
    if (q.error) {
      lock.textContent = "";
      clear(list, h("li", { class: "alert" }, q.error));
      return;
    }
    lock.textContent = q.locked ? t("secQueueLocked")
      : t("secQueueLocksAt", { when: formatDateTime(q.locks_at) });
    clear(list, q.queue.map((entry, index) => {
      const up = h("button", { type: "button", class: "small", "aria-label": t("moveUp"),
        disabled: q.locked || index === 0, dataset: { move: "up" } }, "↑");
      const down = h("button", { type: "button", class: "small", "aria-label": t("moveDown"),
        disabled: q.locked || index === q.queue.length - 1, dataset: { move: "down" } }, "↓");
      for (const [b, step] of [[up, -1], [down, 1]]) {
        b.addEventListener("click", async () => {
          up.disabled = down.disabled = true;
          try {
            await move(index, step);
          } catch (error) {
            refused(error);
            redraw();
          }
        });
      }
      const percent = Number(entry.extra_time_percent ?? 0);
      return h("li", { dataset: { student: entry.student, status: entry.status } },
        h("div", { class: "row" }, h("strong", { class: "name" }, entry.name),
          h("span", { class: "muted" }, t(`status_${entry.status}`)),
          q.locked ? "" : h("span", { class: "row" }, up, down)),
        h("p", { class: "muted sec-local" }, t("secQueueStart", localStart(entry)),
          percent ? ` · ${t("secQueueExtra", { percent })}` : ""));
    }));
  });
  return card;
}

// ---- 6. The hand-over (R3) -----------------------------------------------------

function reasonText(reason) {
  if (/day's protocol is not signed/.test(reason)) return t("secDayNotSigned");
  const students = /the protocols of students (.+) are not signed/.exec(reason);
  if (students) return t("secStudentsNotSigned", { names: students[1].split(/,\s*/).map(studentName).join(", ") });
  return withNames(reason);
}

async function download(record) {
  saveBlob(await api.blob(record.download), `day-${state.me.day.id}-${record.sha256.slice(0, 12)}.zip`);
}

function handoverCard() {
  const status = h("p", { class: "muted sec-handover-status" });
  const toRegistrar = button("secToRegistrar", () => handOver("registrar"), { class: "primary", dataset: { to: "registrar" } });
  const toArchive = button("secToArchive", () => handOver("archive"), { class: "primary", dataset: { to: "archive" } });
  const buttons = h("div", { class: "row sec-handover-buttons" }, toRegistrar, toArchive);
  const done = h("ul", { class: "sec-handovers" });
  const refresh = button("secRefresh", loadHandovers, { class: "small", id: "sec-handover-refresh" });
  const card = section("secHandoverHeading", h("div", { class: "row" }, refresh), status, buttons, done);
  card.id = "sec-handover";

  async function handOver(to) {
    await api.post(dayPath("/handover"), { to });
    toast(t("secHandoverDone", { to: t(`secTo_${to}`) }));
    await loadHandovers();
  }

  redraws.add(() => {
    const d = data.handovers;
    if (!d) return;
    if (d.error) {
      status.textContent = d.error;
      buttons.hidden = true;
      return;
    }
    // Shown only once the protocols allow it; until then, the server's reason.
    buttons.hidden = !d.ready;
    status.hidden = d.ready && d.handovers.length > 0;
    status.textContent = d.ready ? t("secHandedNone") : t("secHandoverWait", { reason: reasonText(d.reason ?? "") });
    card.dataset.ready = String(d.ready);
    clear(done, d.handovers.map((r) => h("li", { dataset: { to: r.to, sha256: r.sha256 } },
      h("p", {}, t("secHandedOver", { to: t(`secTo_${r.to}`), when: formatDateTime(r.handed_over_at),
        by: r.by_name ?? "", files: r.files ?? "", size: Math.max(1, Math.round((r.size ?? 0) / 1024)) })),
      h("p", { class: "muted sec-sha" }, `SHA-256: ${r.sha256}`),
      button("secDownload", () => download(r), { class: "small", dataset: { download: r.sha256 } }, true))));
  });
  return card;
}

// ---- the page ------------------------------------------------------------------

export function secretaryHome() {
  const root = h("div", { class: "home-sections home-secretary-prep" },
    readinessCard(), consentCard(), documentsCard(), studentsCard(), queueCard(), handoverCard(),
    appealsSection());
  subscribe(redraw);
  loadPreparation();
  loadQueue();
  loadHandovers();
  return root;
}
