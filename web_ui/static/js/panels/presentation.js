// The defending student's presentation (B2), shown to everyone at the page the
// student turned to: the student (or the secretary, helping) turns pages with the
// buttons, the server broadcasts `presentation` and keeps every turn in the timeline.
import { dayPath } from "../api.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { drawPage, openPdf } from "../pdfview.js";
import { myId, personName, role, state, student, subscribe } from "../store.js";

export function presentationPanel(link, { big = false } = {}) {
  const title = h("h2", {});
  const canvas = h("canvas", { class: "slide", role: "img" });
  const note = h("p", { class: "muted" });
  const prev = h("button", { type: "button", class: "turn", onclick: () => turn(-1) });
  const next = h("button", { type: "button", class: "turn primary", onclick: () => turn(1) });
  const counter = h("span", { class: "page-counter", "aria-live": "polite" });
  const controls = h("div", { class: "turner" }, prev, counter, next);
  const frame = h("div", { class: "slide-frame" }, canvas);
  const root = h("section", { class: `panel presentation${big ? " big" : ""}` }, title, note, frame, controls);
  let loaded = { student: null, doc: null, loading: null, failed: false };
  let shownPage = 0;
  let shownWidth = 0;

  const defending = () => state.procedure?.current_student ?? null;
  const page = () => (state.presentation?.student === defending() ? state.presentation?.page : 1) || 1;
  const mayTurn = () => defending() && (myId() === defending() || role() === "secretary");

  function turn(step) {
    const doc = loaded.doc;
    if (!doc || !mayTurn()) return;
    const target = Math.min(Math.max(1, page() + step), doc.numPages);
    if (target !== page()) link.send({ type: "page", page: target });
  }

  async function load(id) {
    loaded = { student: id, doc: null, loading: null, failed: false };
    const mine = loaded;
    shownPage = 0;
    if (!student(id)?.files?.includes("presentation_pdf")) {
      mine.failed = "none";
      return;
    }
    try {
      mine.loading = openPdf(dayPath(`/students/${id}/files/presentation_pdf`));
      mine.doc = await mine.loading;
    } catch (error) {
      console.warn("[room] the presentation could not be opened:", error?.message ?? error);
      mine.failed = "error";
    }
    if (loaded === mine) render();
  }

  async function render() {
    const id = defending();
    root.hidden = !id;
    if (!id) return;
    title.textContent = t("presentationOf", { name: personName(id) });
    prev.textContent = t("pagePrev");
    next.textContent = t("pageNext");
    controls.hidden = !mayTurn();
    if (loaded.student !== id) {
      load(id);
      note.textContent = t("presentationLoading");
      return;
    }
    if (loaded.failed) {
      note.textContent = t(loaded.failed === "none" ? "presentationMissing" : "presentationFailed");
      frame.hidden = true;
      return;
    }
    if (!loaded.doc) return;
    frame.hidden = false;
    note.textContent = "";
    const number = Math.min(page(), loaded.doc.numPages);
    counter.textContent = t("pageOf", { page: number, pages: loaded.doc.numPages });
    prev.disabled = number <= 1;
    next.disabled = number >= loaded.doc.numPages;
    root.dataset.page = String(number);
    const width = Math.round(frame.clientWidth || 640);
    if (number === shownPage && Math.abs(width - shownWidth) < 8) return;
    shownPage = number;
    shownWidth = width;
    canvas.setAttribute("aria-label", t("slideLabel", { page: number }));
    try {
      await drawPage(loaded.doc, number, canvas, width);
    } catch (error) {
      shownPage = 0;  // the next render tries again
      console.warn("[room] a slide could not be drawn:", error?.message ?? error);
    }
  }

  subscribe(render);
  new ResizeObserver(() => render()).observe(frame);
  return root;
}
