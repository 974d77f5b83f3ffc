// The order of defenses (B3, clause 7.4): the secretary reorders it until it locks
// 30 minutes before the start; each student's local time is shown (time zones).
// Per student: a valid reason for absence (clause 7.9), recorded once the document
// that proves it is uploaded (a PDF); a moved defense shows its new date (7.8).
import { api, dayPath } from "../api.js";
import { h, clear } from "../dom.js";
import { act, busy, refused, toast } from "../actions.js";
import { formatDateTime, formatTime } from "../clock.js";
import { t } from "../i18n.js";
import { isPresent, personName, state, student, subscribe } from "../store.js";

export function queuePanel() {
  const heading = h("h2", {});
  const lock = h("p", { class: "muted" });
  const list = h("ol", { class: "queue-list" });
  const root = h("section", { class: "panel queue" }, heading, lock, list);
  let data = null;
  let lastKey = "";
  // Per student, kept across redraws: what the secretary typed and chose stays.
  const boxes = new Map();
  const proofs = new Set();  // students whose proof was uploaded from this page

  function hasProof(id) {
    return proofs.has(id) || Boolean(student(id)?.files?.includes("absence_proof"));
  }

  function reasonBox(id) {
    if (boxes.has(id)) return boxes.get(id);
    // The browser's own file button speaks the browser's language: ours speaks the page's.
    const file = h("input", { type: "file", accept: "application/pdf,.pdf", class: "proof-file visually-hidden" });
    const pick = h("button", { type: "button", class: "small", onclick: () => file.click() });
    const picked = h("span", { class: "picked muted" });
    file.addEventListener("change", () => paint());
    const upload = h("button", { type: "button", class: "small", dataset: { action: "upload-proof" } });
    const proofState = h("p", { class: "proof-state" });
    const reason = h("input", { type: "text", class: "reason" });
    const record = h("button", { type: "button", class: "small", dataset: { action: "valid-reason" } });
    const step1 = h("span", { class: "step-label" });
    const step2 = h("span", { class: "step-label" });
    const summary = h("summary", {});
    const root = h("details", { class: "reason-box" }, summary,
      step1, h("div", { class: "row" }, file, pick, picked), h("div", { class: "row" }, upload, proofState),
      h("label", {}, step2, reason), record);
    upload.addEventListener("click", busy(upload, async () => {
      const chosen = file.files?.[0];
      if (!chosen) {
        toast(t("proofChoose"), "error");
        return;
      }
      try {
        await api.put(dayPath(`/students/${id}/files/absence_proof`), chosen, "application/pdf");
      } catch (error) {
        refused(error);
        return;
      }
      proofs.add(id);
      toast(t("proofUploaded", { name: personName(id) }));
      paint();
    }));
    record.addEventListener("click", busy(record, async () => {
      const text = reason.value.trim();
      if (!text) {
        toast(t("reasonNeeded"), "error");
        reason.focus();
        return;
      }
      if (await act("valid-reason", { student: id, reason: text })) reason.value = "";
    }));
    function paint() {
      summary.textContent = t("absenceActions");
      step1.textContent = t("proofStep");
      step2.textContent = t("reasonStep");
      upload.textContent = t("proofUpload");
      pick.textContent = t("proofPick");
      picked.textContent = file.files?.[0]?.name ?? t("proofNone");
      record.textContent = t("validReason");
      reason.placeholder = t("reasonPlaceholder");
      const ok = hasProof(id);
      proofState.textContent = ok ? t("proofOnFile") : t("proofMissing");
      proofState.className = ok ? "proof-state ok" : "proof-state muted";
    }
    const box = { root, paint };
    boxes.set(id, box);
    return box;
  }

  async function load() {
    try {
      data = await api.get(dayPath("/queue"));
    } catch (error) {
      data = { error: error.message };
    }
    draw();
  }

  async function move(index, step) {
    const order = data.queue.map((entry) => entry.student);
    const [moved] = order.splice(index, 1);
    order.splice(index + step, 0, moved);
    if (await act("queue", { order })) await load();
  }

  function draw() {
    heading.textContent = t("queueHeading");
    if (!data) return;
    if (data.error) {
      clear(list, h("li", {}, data.error));
      return;
    }
    // Valid reasons are recorded until the closed sitting (orchestrator/phases.py).
    const reasonOpen = !["closed_sitting", "results", "closed"].includes(state.procedure?.phase);
    const movable = !data.locked && ["waiting", "opening", "identification", "announcement"].includes(state.procedure?.phase);
    lock.textContent = data.locked ? t("queueLocked") : t("queueLocksAt", { time: formatTime(data.locks_at) });
    clear(list, data.queue.map((entry, index) => {
      const status = state.procedure?.statuses?.[entry.student] ?? entry.status;
      const movedTo = state.procedure?.moved?.[entry.student];
      const upButton = h("button", { type: "button", class: "small", "aria-label": t("moveUp"), disabled: !movable || index === 0 }, "↑");
      const downButton = h("button", { type: "button", class: "small", "aria-label": t("moveDown"),
        disabled: !movable || index === data.queue.length - 1 }, "↓");
      upButton.addEventListener("click", busy(upButton, () => move(index, -1)));
      downButton.addEventListener("click", busy(downButton, () => move(index, 1)));
      const local = entry.sitting_starts_local?.slice(11, 16) ?? "";
      return h("li", { dataset: { student: entry.student, status } },
        h("div", { class: "queue-row" },
          h("span", { class: isPresent(entry.student) ? "dot here" : "dot away", "aria-hidden": "true" }),
          h("span", { class: "name" }, entry.name),
          h("span", { class: `status-tag ${status}` }, t(`status_${status}`)),
          movable ? h("span", { class: "order-buttons" }, upButton, downButton) : ""),
        h("p", { class: "muted" }, entry.thesis_title ?? "", " · ",
          t("localTime", { time: local, zone: entry.timezone })),
        movedTo ? h("p", { class: "moved-to" }, t("movedTo", { date: formatDateTime(movedTo) })) : "",
        ["waiting", "identified", "absent"].includes(status) && !movedTo && reasonOpen
          ? (() => { const box = reasonBox(entry.student); box.paint(); return box.root; })() : "");
    }));
  }

  subscribe(() => {
    const p = state.procedure;
    const key = p ? `${state.language}|${p.queue.join(",")}|${JSON.stringify(p.statuses)}|${state.roster.filter((e) => e.present).map((e) => e.id).join(",")}|${p.phase}|${JSON.stringify(p.moved ?? {})}` : "";
    if (key === lastKey) return;
    const queueChanged = !data || data.queue?.map((e) => e.student).join(",") !== p?.queue.join(",");
    lastKey = key;
    if (queueChanged || !data) load();
    else draw();
  });
  return root;
}
