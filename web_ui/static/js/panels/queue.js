// The order of defenses (B3, clause 7.4): the secretary reorders it until it locks
// 30 minutes before the start; each student's local time is shown (time zones).
// Per student: a valid reason for absence (clause 7.9).
import { api, dayPath } from "../api.js";
import { h, clear } from "../dom.js";
import { act, busy } from "../actions.js";
import { formatTime } from "../clock.js";
import { t } from "../i18n.js";
import { isPresent, state, subscribe } from "../store.js";

export function queuePanel() {
  const heading = h("h2", {});
  const lock = h("p", { class: "muted" });
  const list = h("ol", { class: "queue-list" });
  const root = h("section", { class: "panel queue" }, heading, lock, list);
  let data = null;
  let lastKey = "";

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
    const movable = !data.locked && ["waiting", "opening", "identification", "announcement"].includes(state.procedure?.phase);
    lock.textContent = data.locked ? t("queueLocked") : t("queueLocksAt", { time: formatTime(data.locks_at) });
    clear(list, data.queue.map((entry, index) => {
      const status = state.procedure?.statuses?.[entry.student] ?? entry.status;
      const reason = h("input", { type: "text", class: "reason", placeholder: t("reasonPlaceholder") });
      const reasonButton = h("button", { type: "button", class: "small" }, t("validReason"));
      reasonButton.addEventListener("click", busy(reasonButton, async () => {
        if (reason.value.trim()) await act("valid-reason", { student: entry.student, reason: reason.value.trim() });
      }));
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
        ["waiting", "identified", "defending"].includes(status)
          ? h("details", { class: "reason-box" }, h("summary", {}, t("absenceActions")), reason, reasonButton) : "");
    }));
  }

  subscribe(() => {
    const p = state.procedure;
    const key = p ? `${state.language}|${p.queue.join(",")}|${JSON.stringify(p.statuses)}|${state.roster.filter((e) => e.present).map((e) => e.id).join(",")}|${p.phase}` : "";
    if (key === lastKey) return;
    const queueChanged = !data || data.queue?.map((e) => e.student).join(",") !== p?.queue.join(",");
    lastKey = key;
    if (queueChanged || !data) load();
    else draw();
  });
  return root;
}
