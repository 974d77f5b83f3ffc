// The student's card when their defense no longer takes place today: moved to a
// new date after a failure (clause 7.8; the state's `moved`, or the `rescheduled`
// notice), shown in the phone's own time zone, or moved for a valid reason (7.9),
// whose date the secretary tells later.
import { formatDateTime, localZone } from "../clock.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { myId, state, subscribe } from "../store.js";

export function movedCard() {
  const when = h("h2", { class: "moved-date" });
  const zone = h("p", { class: "muted moved-zone" });
  const why = h("p", { class: "moved-reason" });
  const next = h("p", {});
  const root = h("section", { class: "panel moved-card", role: "status", hidden: true },
    when, zone, why, next);

  subscribe(() => {
    const me = myId();
    const p = state.procedure;
    const notice = [...state.notices].reverse().find((n) => n.kind === "rescheduled" && n.student === me);
    const at = p?.moved?.[me] ?? notice?.new_date ?? null;
    const rescheduled = p?.statuses?.[me] === "rescheduled" || Boolean(notice);
    root.hidden = !(at || rescheduled);
    document.body.classList.toggle("defense-moved", !root.hidden);
    if (root.hidden) return;
    when.textContent = at ? t("movedYourDefense", { date: formatDateTime(at) }) : t("movedNoDate");
    zone.hidden = !at;
    zone.textContent = t("movedZone", { zone: localZone() || "—" });
    why.hidden = !notice?.reason;
    why.textContent = notice?.reason ? t("movedReason", { reason: notice.reason }) : "";
    next.textContent = t(at ? "movedNext" : "movedNextNoDate");
  });
  return root;
}
