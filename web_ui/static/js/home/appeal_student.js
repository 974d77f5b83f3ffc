// The student's appeal (section 8): filing it until the deadline, the appeal
// sitting's link once scheduled, the decision once delivered (8.11).
//
// The server says what may be shown: the filing deadline (null while results are
// not announced, after a repeated defense, 8.12) and the decision, masked until its
// delivery on the next working day (appeals_api `_for_student`). The page only
// renders it, in the student's own time zone.
import { api, dayPath } from "../api.js";
import { busy, refused, toast } from "../actions.js";
import { formatDateTime } from "../clock.js";
import { clear, h } from "../dom.js";
import { t } from "../i18n.js";
import { subscribe } from "../store.js";
import { openAppealSitting, ownZone, section } from "./common.js";

// How often the page asks again while something is pending (a sitting, a decision).
const POLL_MS = 60_000;

export function appealSection() {
  const body = h("div", { class: "appeal-body" });
  const text = h("textarea", { id: "appeal-text", rows: 5, maxlength: 10000, class: "appeal-wide" });
  const root = section("appealHeading", body);
  root.classList.add("home-appeal");
  root.hidden = true;
  let answer = null;
  let failed = null;

  async function load() {
    try {
      answer = await api.get(dayPath("/appeals"));
      failed = null;
    } catch (error) {
      failed = error;
    }
    render();
  }

  async function file() {
    const value = text.value.trim();
    if (!value) {
      toast(t("appealNeedsText"), "error");
      text.focus();
      return;
    }
    try {
      await api.post(dayPath("/appeals"), { text: value });
      text.value = "";
      toast(t("appealFiledToast"));
    } catch (error) {
      refused(error);
    }
    await load();
  }


  function render() {
    const zone = ownZone();
    if (failed) {
      root.hidden = false;
      clear(body, h("p", { class: "muted" }, t("appealUnavailable", { message: failed.message })));
      return;
    }
    if (!answer) return;
    const mine = answer.appeals;
    const deadline = answer.deadline;
    const open = deadline !== null && answer.now < deadline;
    // Nothing to say before the results, or on a day that cannot be appealed.
    root.hidden = mine.length === 0 && deadline === null;
    if (root.hidden) return;
    const items = [];
    if (mine.length === 0 && open) {
      const go = h("button", { type: "button", id: "appeal-file", class: "primary big" }, t("appealFile"));
      go.addEventListener("click", busy(go, file));
      items.push(h("p", {}, t("appealWhat")),
        h("p", { class: "state-wait", id: "appeal-deadline" }, t("appealDeadline", { when: formatDateTime(deadline, zone) })),
        h("label", { for: "appeal-text" }, t("appealTextLabel")), text, go);
    } else if (mine.length === 0) {
      items.push(h("p", { class: "muted", id: "appeal-deadline" }, t("appealDeadlinePassed", { when: formatDateTime(deadline, zone) })));
    }
    for (const appeal of mine) items.push(appealCard(appeal, zone));
    clear(body, items);
  }

  function appealCard(appeal, zone) {
    const rows = [
      h("p", {}, h("strong", {}, t("appealFiledAt", { when: formatDateTime(appeal.filed_at, zone) }))),
      h("p", { class: "appeal-text" }, appeal.text),
    ];
    if (appeal.decision) {
      const upheld = appeal.decision === "upheld";
      rows.push(h("p", { class: upheld ? "state-ok" : "state-missing", id: "appeal-decision" },
        t(upheld ? "appealDecisionUpheld" : "appealDecisionRejected")),
      h("p", { class: "appeal-text" }, t("appealReasoning", { text: appeal.reasoning ?? "" })),
      upheld ? h("p", {}, t("appealUpheldNext")) : h("p", { class: "muted" }, t("appealFinal")));
    } else if (appeal.delivery_at) {
      // Decided, but the student learns it only from its delivery (8.11).
      rows.push(h("p", { class: "state-wait", id: "appeal-decision-wait" },
        t("appealDecisionOn", { when: formatDateTime(appeal.delivery_at, zone) })));
    } else if (appeal.sitting_at) {
      const go = h("button", { type: "button", id: "appeal-sitting-link", class: "primary" }, t("appealSittingGo"));
      go.addEventListener("click", busy(go, () => openAppealSitting(appeal)));
      rows.push(h("p", { class: "state-wait", id: "appeal-sitting" }, t("appealSittingAt", { when: formatDateTime(appeal.sitting_at, zone) })),
        h("p", { class: "muted" }, t("appealSittingHint")), go);
    } else {
      rows.push(h("p", { class: "state-wait", id: "appeal-state" }, t("appealWaitsSitting")));
    }
    return h("div", { class: "appeal", dataset: { appeal: appeal.appeal_id } }, rows);
  }

  let language = null;
  subscribe((s) => {
    if (s.language !== language) {
      language = s.language;
      render();
    }
  });
  load();
  const timer = setInterval(() => {
    if (!root.isConnected) clearInterval(timer);
    else if (!document.hidden && !root.parentElement?.closest("[hidden]")) load();  // not in the room
  }, POLL_MS);
  return root;
}
