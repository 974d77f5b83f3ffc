// The student's documents for the commission (B2: every member has the thesis and
// the reviews electronically): each opens in a viewer on the page, drawn by pdf.js.
import { dayPath } from "../api.js";
import { h, clear } from "../dom.js";
import { t } from "../i18n.js";
import { drawPage, openPdf } from "../pdfview.js";
import { state, student, subscribe } from "../store.js";

const KINDS = ["thesis", "presentation_pdf", "supervisor_review", "reviewer_review", "plagiarism_report", "norm_control"];

export function documentsPanel() {
  const heading = h("h2", {});
  const body = h("div", { class: "documents-body" });
  const root = h("section", { class: "panel documents" }, heading, body);
  const viewer = documentViewer();
  document.body.append(viewer.dialog);

  subscribe(() => {
    heading.textContent = t("documentsHeading");
    const current = state.procedure?.current_student;
    const students = [...(state.me?.students ?? [])]
      .sort((a, b) => (b.id === current) - (a.id === current));
    clear(body, students.map((s) => h("div", { class: `student-docs${s.id === current ? " current" : ""}` },
      h("p", { class: "name" }, s.name, s.thesis_title ? h("span", { class: "muted" }, ` — ${s.thesis_title}`) : ""),
      s.files.length
        ? h("ul", { class: "doc-list" }, KINDS.filter((k) => s.files.includes(k)).map((kind) => h("li", {},
          h("button", { type: "button", class: "link", onclick: () => viewer.open(s.id, kind) }, t(`doc_${kind}`)))))
        : h("p", { class: "muted" }, t("noDocuments")))));
  });
  return root;
}

function documentViewer() {
  const title = h("h2", {});
  const canvas = h("canvas", { class: "doc-page" });
  const counter = h("span", {});
  let doc = null;
  let number = 1;
  const prev = h("button", { type: "button", onclick: () => show(number - 1) });
  const next = h("button", { type: "button", onclick: () => show(number + 1) });
  const close = h("button", { type: "button", onclick: () => dialog.close() });
  const frame = h("div", { class: "doc-frame" }, canvas);
  const dialog = h("dialog", { class: "doc-viewer" },
    h("div", { class: "doc-bar" }, title, prev, counter, next, close), frame);

  async function show(page) {
    if (!doc) return;
    number = Math.min(Math.max(1, page), doc.numPages);
    counter.textContent = t("docPageOf", { page: number, pages: doc.numPages });
    prev.disabled = number <= 1;
    next.disabled = number >= doc.numPages;
    await drawPage(doc, number, canvas, Math.min(frame.clientWidth || 800, 1100));
  }

  async function open(studentId, kind) {
    prev.textContent = t("pagePrev");
    next.textContent = t("pageNext");
    close.textContent = t("close");
    title.textContent = `${t(`doc_${kind}`)} — ${student(studentId)?.name ?? ""}`;
    counter.textContent = t("presentationLoading");
    dialog.showModal();
    try {
      doc = await openPdf(dayPath(`/students/${studentId}/files/${kind}`));
      await show(1);
    } catch (error) {
      counter.textContent = t("presentationFailed");
      console.warn("[room] document failed:", error?.message ?? error);
    }
  }

  return { dialog, open };
}
