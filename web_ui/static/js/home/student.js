// The student's own page (issue 15, item 4), on a phone, cards in one column: their
// place in the order of defenses and a new date if it was moved (7.8), their
// consents (personal data, 6.6; the e-library), their documents (upload the thesis
// and the presentation until their defense starts, open what is on file), the
// device check without entering the room (P5), and their grade once announced
// (7.13). Everything comes from GET .../students/{me}/overview; the appeal part is
// home/appeal_student.js.
import { api, dayPath } from "../api.js";
import { formatDateTime } from "../clock.js";
import { clear, h, saveBlob } from "../dom.js";
import { gradeName, t } from "../i18n.js";
import { prejoin } from "../prejoin.js";
import { state, subscribe } from "../store.js";
import { appealSection } from "./appeal_student.js";
import { ownZone, section } from "./common.js";

// Kept across re-renders: what the page last read, and what it is doing now.
const page = {
  data: null,
  error: null,
  consent: { personal: false, elibrary: null, busy: false, note: null, error: null },
  uploads: {},        // kind -> {busy, note: {key, params}, error: {key, params}}
  check: null,        // the device check's result, once done
  checking: false,
};

const KB = 1024;

function size(bytes) {
  if (bytes >= KB * KB) return `${(bytes / KB / KB).toFixed(1)} ${state.language === "en" ? "MB" : "МБ"}`;
  return `${Math.max(1, Math.round(bytes / KB))} ${state.language === "en" ? "KB" : "КБ"}`;
}

function when(at) {
  return formatDateTime(at, ownZone());
}

function me() {
  return state.me.me.id;
}

function studentPath(path) {
  return dayPath(`/students/${me()}${path}`);
}

let rerender = () => {};

async function load() {
  try {
    page.data = await api.get(studentPath("/overview"));
    page.error = null;
  } catch (error) {
    page.error = error.message;
  }
  rerender();
}

export function studentHome() {
  const whenCard = h("div", {});
  const consentCard = h("div", {});
  const docsCard = h("div", {});
  const checkCard = h("div", {});
  const resultsCard = h("div", {});
  const checkArea = h("div", { class: "student-check-area" });
  // Once results are out, the appeal (filing it, its sitting, its decision) matters
  // more than the documents: it comes right below them.
  const root = h("div", { class: "home-sections student-home" },
    resultsCard, appealSection(), whenCard, consentCard, docsCard, checkCard);

  rerender = () => {
    renderWhen(whenCard);
    renderResults(resultsCard);
    renderConsent(consentCard);
    renderDocs(docsCard);
    renderCheck(checkCard, checkArea);
  };
  subscribe(() => rerender());
  load();
  return root;
}

// -- when: the place in the queue, a moved defense ----------------------------------

function renderWhen(box) {
  const d = page.data;
  if (!d) {
    clear(box, h("section", { class: "card student-when" },
      h("p", { class: page.error ? "alert" : "muted" },
        page.error ? t("studentLoadFailed", { detail: page.error }) : t("studentLoading"))));
    return;
  }
  const rows = [h("h3", {}, t("studentWhenTitle"))];
  if (d.moved.new_date) {
    rows.push(h("p", { class: "student-moved alert", role: "status" },
      t("movedYourDefense", { date: when(d.moved.new_date) })), h("p", { class: "muted" }, t("movedNext")));
  } else if (d.moved.rescheduled) {
    rows.push(h("p", { class: "student-moved alert", role: "status" }, t("movedNoDate")));
  }
  if (d.moved.new_date) rows.push(h("p", { class: "muted" }, t("movedZone", { zone: ownZone() })));
  if (d.queue) {
    // The place matters only while the defense is still ahead.
    const ahead = d.queue.status === "waiting" || d.queue.status === "identified";
    if (ahead || d.queue.current) {
      rows.push(h("p", { class: "student-queue" },
        d.queue.current ? t("studentQueueCurrent") : t("studentQueuePlace", { position: d.queue.position, of: d.queue.of })));
    }
    rows.push(h("p", { class: "muted student-status", dataset: { status: d.queue.status } },
      t(`studentStatus_${d.queue.status}`)));
  }
  clear(box, h("section", { class: "card student-when" }, rows));
}

// -- results (7.13) -----------------------------------------------------------------

function renderResults(box) {
  const r = page.data?.results;
  box.hidden = !r?.grade;
  if (!r?.grade) {
    clear(box);
    return;
  }
  // An upheld appeal annuls the result (8.8); the page says so once the decision has
  // reached the student (the server tells it only from then, 8.11).
  clear(box, h("section", { class: "card student-results", dataset: { grade: r.grade, annulled: r.annulled ? "yes" : "no" } },
    h("h3", {}, t("studentResultsTitle")),
    h(r.annulled ? "s" : "p", { class: "home-when" }, t("studentResultsGrade", { grade: gradeName(r.grade) })),
    r.annulled ? h("p", { class: "state-wait" }, t("studentResultsAnnulled")) : "",
    h("p", { class: "muted" }, t("studentResultsWhen", { when: when(r.announced_at) }))));
}

// -- consents (6.6, the e-library) -----------------------------------------------------

function renderConsent(box) {
  const d = page.data;
  box.hidden = !d;
  if (!d) {
    clear(box);
    return;
  }
  const c = page.consent;
  const personal = d.consents.personal_data;
  const library = d.consents.elibrary;
  const parts = [h("h3", {}, t("studentConsentTitle"))];
  if (personal) {
    parts.push(h("p", { class: "state-ok student-consent-personal", dataset: { state: "on-file" } },
      t("studentConsentPersonalOnFile", { when: when(personal.at), how: t(`studentConsentHow_${personal.how}`) })));
  } else {
    parts.push(h("p", { class: "state-missing", dataset: { state: "missing" } }, t("studentConsentPersonalMissing")));
    parts.push(h("label", { class: "student-tick" },
      h("input", { type: "checkbox", id: "consent-personal", checked: c.personal,
        onchange: (e) => { c.personal = e.target.checked; } }),
      h("span", {}, t("studentConsentPersonal"))));
  }
  parts.push(h("p", { class: "muted" }, t("studentConsentWithdraw")));
  parts.push(h("p", { class: "student-elibrary-title" }, t("studentConsentElibrary")));
  parts.push(h("p", { class: library ? "student-consent-elibrary" : "muted student-consent-elibrary",
    dataset: { choice: library ? String(library.choice) : "" } },
  library ? t("studentConsentElibraryOnFile", { when: when(library.at),
    choice: t(library.choice ? "studentConsentElibraryYes" : "studentConsentElibraryNo") })
    : t("studentConsentElibraryMissing")));
  if (d.consent_open) {
    const chosen = c.elibrary ?? library?.choice ?? null;
    for (const [value, key] of [[true, "studentConsentElibraryYes"], [false, "studentConsentElibraryNo"]]) {
      parts.push(h("label", { class: "student-tick" },
        h("input", { type: "radio", name: "elibrary", id: `elibrary-${value ? "yes" : "no"}`,
          checked: chosen === value, onchange: () => { c.elibrary = value; } }),
        h("span", {}, t(key))));
    }
    parts.push(h("p", { class: "row" }, h("button", { type: "button", id: "consent-save", class: "primary big",
      disabled: c.busy, onclick: saveConsent }, t("studentConsentSave"))));
  } else {
    parts.push(h("p", { class: "muted" }, t("studentConsentElibraryClosed")));
  }
  if (c.error) parts.push(h("p", { class: "alert", role: "alert" }, c.error));
  if (c.note) parts.push(h("p", { class: "state-ok consent-note", role: "status" }, t(c.note)));
  clear(box, h("section", { class: "card student-consent" }, parts));
}

async function saveConsent() {
  const c = page.consent;
  const d = page.data;
  const body = {};
  if (c.personal && !d.consents.personal_data) body.personal_data = true;
  if (c.elibrary !== null && c.elibrary !== d.consents.elibrary?.choice) body.elibrary = c.elibrary;
  c.note = null;
  c.error = null;
  if (!Object.keys(body).length) {
    c.error = t("studentConsentNothing");
    rerender();
    return;
  }
  c.busy = true;
  rerender();
  try {
    await api.post(studentPath("/consents"), body);
    c.note = "studentConsentSaved";
    c.personal = false;
    c.elibrary = null;
  } catch (error) {
    c.error = error.message;
  }
  c.busy = false;
  await load();
}

// -- documents (B1, B2) -------------------------------------------------------------------

function renderDocs(box) {
  const d = page.data;
  box.hidden = !d;
  if (!d) {
    clear(box);
    return;
  }
  // A document the day does not require (the norm-control sheet) only once on file.
  const items = d.documents.filter((doc) => doc.required || doc.file || doc.declared_at)
    .map((doc) => docItem(doc, d.uploads));
  const closed = !d.uploads.open;
  const reason = /started/.test(d.uploads.closed ?? "") ? t("studentDocClosedStarted")
    : /over/.test(d.uploads.closed ?? "") ? t("studentDocClosedOver") : d.uploads.closed;
  clear(box, h("section", { class: "card student-docs", dataset: { uploads: closed ? "closed" : "open" } },
    h("h3", {}, t("studentDocsTitle")),
    closed ? h("p", { class: "state-wait student-docs-closed" }, t("studentDocClosed", { reason }))
      : h("p", { class: "muted" }, t("studentDocHint", { max: d.uploads.max_mb })),
    h("ul", { class: "student-doc-list" }, items)));
}

function docItem(doc, uploads) {
  const status = page.uploads[doc.kind] ?? {};
  const file = doc.file;
  const line = file
    ? [t("studentDocOnFile", { when: when(file.uploaded_at), size: size(file.size) }),
      file.versions > 1 ? `, ${t("studentDocVersions", { count: file.versions })}` : "",
      file.by_me ? "" : ` (${t("studentDocBySecretary")})`].join("")
    : doc.declared_at ? t("studentDocDeclared", { when: when(doc.declared_at) })
      : t(doc.upload ? "studentDocMissing" : "studentDocMissingOffice");
  const actions = [];
  if (file) {
    actions.push(h("button", { type: "button", class: "big", dataset: { action: "open" },
      onclick: () => openDoc(doc.kind) }, t("studentDocOpen")));
  }
  if (doc.upload && uploads.open) {
    const input = h("input", { type: "file", accept: "application/pdf,.pdf", class: "student-file",
      dataset: { kind: doc.kind },
      disabled: status.busy, onchange: (e) => upload(doc.kind, e.target.files?.[0], uploads.max_mb, e.target) });
    const pick = h("button", { type: "button", class: file ? "big" : "primary big", disabled: status.busy,
      dataset: { action: "upload" }, onclick: () => input.click() },
    t(file ? "studentDocReplace" : "studentDocUpload"));
    actions.push(pick, input);
  }
  return h("li", { class: "student-doc", dataset: { kind: doc.kind, state: file || doc.declared_at ? "on-file" : "missing" } },
  h("p", {}, h("strong", {}, t(`studentDoc_${doc.kind}`))),
  h("p", { class: `doc-line ${file || doc.declared_at ? "state-ok" : doc.upload ? "state-missing" : "state-wait"}` }, line),
  actions.length ? h("p", { class: "row" }, actions) : "",
  status.note ? h("p", { class: "upload-note", role: "status" }, t(status.note.key, status.note.params)) : "",
  status.error ? h("p", { class: "alert upload-error", role: "alert" }, t(status.error.key, status.error.params)) : "");
}

async function upload(kind, file, maxMb, input) {
  if (!file) return;
  input.value = "";
  const status = page.uploads[kind] = { busy: false, note: null, error: null };
  if (file.size > maxMb * KB * KB) {
    status.error = { key: "studentErrTooBig", params: { max: maxMb } };
    rerender();
    return;
  }
  status.busy = true;
  status.note = { key: "studentDocUploading", params: { name: file.name, size: size(file.size) } };
  rerender();
  try {
    const done = await api.put(studentPath(`/files/${kind}`), file, "application/pdf");
    status.note = { key: "studentDocUploaded", params: { name: file.name, size: size(done.size) } };
  } catch (error) {
    status.note = null;
    status.error = uploadRefusal(error, maxMb);
  }
  status.busy = false;
  await load();
}

function uploadRefusal(error, maxMb) {
  const message = error.message ?? "";
  if (error.status === 413) return { key: "studentErrTooBig", params: { max: maxMb } };
  if (error.status === 429 || error.status === 503) return { key: "studentErrBusy", params: {} };
  if (error.status === 409) return { key: "studentErrClosed", params: {} };
  if (error.status === 422 && /not a PDF/i.test(message)) return { key: "studentErrNotPdf", params: {} };
  if (error.status === 422 && /empty/i.test(message)) return { key: "studentErrEmpty", params: {} };
  return { key: "studentErrOther", params: { detail: message } };
}

async function openDoc(kind) {
  const status = page.uploads[kind] ??= {};
  status.error = null;
  try {
    saveBlob(await api.blob(studentPath(`/files/${kind}`)), `${kind}.pdf`);
  } catch (error) {
    status.error = { key: "studentErrOpen", params: { detail: error.message } };
  }
  rerender();
}

// -- the device check (P5), without entering the room ---------------------------------

function renderCheck(box, area) {
  const result = page.check;
  const parts = [h("h3", {}, t("studentCheckTitle")), h("p", { class: "muted" }, t("studentCheckIntro"))];
  if (page.checking) {
    parts.push(area);
  } else {
    if (result) {
      const speed = result.speed;
      const kbps = Math.min(speed.down ?? 0, speed.up ?? 0);
      const shown = kbps >= 1000 ? `${(kbps / 1000).toFixed(1)} ${t("mbps")}` : `${Math.round(kbps)} ${t("kbps")}`;
      const ok = result.camera && result.microphone && (speed.state === "good" || speed.state === "fair");
      parts.push(h("p", {}, t("studentCheckResult", { when: when(result.at) })),
        h("ul", { class: "student-check-result", dataset: { ok: String(ok) } },
          h("li", { class: result.camera ? "state-ok" : "state-missing" },
            t("studentCheckCamera", { state: t(result.camera ? "studentCheckOk" : "studentCheckMissing") })),
          h("li", { class: result.microphone ? "state-ok" : "state-missing" },
            t("studentCheckMic", { state: t(result.microphone ? "studentCheckOk" : "studentCheckMicMissing") })),
          h("li", { class: speed.state === "good" ? "state-ok" : speed.state === "fair" ? "state-wait" : "state-missing",
            dataset: { net: speed.state } },
          t("studentCheckNet", { state: t(`studentCheckNet_${speed.state}`, { speed: shown }) }))),
        h("p", { class: ok ? "state-ok" : "state-missing" }, t(ok ? "studentCheckVerdictOk" : "studentCheckVerdictBad")));
    } else {
      parts.push(h("p", { class: "muted" }, t("studentCheckNever")));
    }
    parts.push(h("p", { class: "row" }, h("button", { type: "button", id: "device-check", class: "big",
      onclick: () => runCheck(area) }, t(result ? "studentCheckAgain" : "studentCheckRun"))));
  }
  clear(box, h("section", { class: "card student-check" }, parts));
}

async function runCheck(area) {
  page.checking = true;
  rerender();
  const found = await prejoin(area, { checkOnly: true });
  clear(area);
  page.check = { ...found, at: Date.now() / 1000 };
  page.checking = false;
  rerender();
}
