// The page of the chair, the members, supervisors, reviewers, observers and the appeal commission.
//
// The chair of the state commission: the appeals filed against their day, a form for
// the conclusion on the procedure until it is written (8.3), and their own link to the
// appeal sitting they are invited to (8.5). Members may not read the appeals (the API
// lists them for the chair and the secretary only). The appeal commission, on the
// sitting's own page: what the sitting is, whose appeal, and what the chair does there.
import { api, dayPath } from "../api.js";
import { busy, refused, toast } from "../actions.js";
import { formatDateTime } from "../clock.js";
import { clear, h } from "../dom.js";
import { t } from "../i18n.js";
import { state, student, subscribe } from "../store.js";
import { openAppealSitting, ownZone, section } from "./common.js";

const APPEAL_ROLES = new Set(["appeal_chair", "appeal_member"]);

export function commissionHome() {
  const role = state.me.me.role;
  const parts = [];
  // On an appeal sitting's own day the chair of the appealed defense is a guest of
  // the appeal commission (8.5): the sitting's card, not the list of appeals.
  const sitting = state.me.day_kind === "appeal";
  if (role === "chair" && !sitting) parts.push(chairAppeals());
  if (APPEAL_ROLES.has(role) || (role === "chair" && sitting)) parts.push(appealSittingCard(role));
  return h("div", { class: "home-sections" }, parts);
}

function appealSittingCard(role) {
  const body = h("div", { class: "appeal-sitting-about" });
  const root = section("appealSittingHeading", body);
  let heard = null;  // the appeal this sitting hears (GET /api/appeals/{id}), once read
  function render() {
    const appellant = state.me.people.find((p) => p.role === "student")?.name ?? "";
    const commission = state.me.people.filter((p) => APPEAL_ROLES.has(p.role));
    clear(body,
      h("p", {}, t("appealSittingAbout", { name: appellant })),
      h("p", { class: "muted" }, t("appealSittingCommission", { names: commission.map((p) => p.name).join(", ") })),
      h("p", {}, t(role === "appeal_chair" ? "appealSittingChairDuty"
        : role === "chair" ? "appealSittingChairOfDefense" : "appealSittingMemberDuty")),
      heard ? [h("h4", {}, t("appealSittingGrounds")), h("p", { class: "appeal-text" }, heard.text),
        h("h4", {}, t("appealSittingConclusion")),
        h("p", { class: heard.conclusion ? "appeal-text" : "muted" }, heard.conclusion ?? t("appealSittingNoConclusion"))] : "");
  }
  subscribe(render);
  const appealId = state.me.appeal?.id;
  if (appealId != null) {
    api.get(`/api/appeals/${appealId}`).then((answer) => {
      heard = answer.appeal;
      render();
    }, (error) => console.warn("[home] the appeal heard:", error.status, error.message));
  }
  return root;
}

function chairAppeals() {
  const body = h("div", { class: "appeals-body" });
  const root = section("appealsHeading", body);
  root.classList.add("home-appeals");
  root.hidden = true;
  let appeals = null;
  const drafts = new Map();  // appeal id -> its conclusion's textarea, kept across renders

  async function load() {
    try {
      appeals = (await api.get(dayPath("/appeals"))).appeals;
    } catch (error) {
      console.warn("[home] appeals:", error.status, error.message);
      appeals = null;
    }
    render();
  }

  async function conclude(appeal) {
    const text = drafts.get(appeal.appeal_id).value.trim();
    if (!text) {
      toast(t("appealConclusionNeedsText"), "error");
      return;
    }
    try {
      await api.post(`/api/appeals/${appeal.appeal_id}/conclusion`, { text });
      toast(t("appealConclusionSaved"));
    } catch (error) {
      refused(error);
    }
    await load();
  }


  function card(appeal, zone) {
    const name = student(String(appeal.student))?.name ?? String(appeal.student);
    const items = [
      h("h4", { class: "appeal-title" }, t("appealOf", { name })),
      h("p", { class: "muted" }, t("appealFiledAt", { when: formatDateTime(appeal.filed_at, zone) })),
      h("p", { class: "appeal-text" }, appeal.text),
    ];
    if (appeal.conclusion) {
      items.push(h("p", { class: "appeal-conclusion" }, h("strong", {}, t("appealConclusion")), " ", appeal.conclusion));
    } else if (!appeal.decision) {
      if (!drafts.has(appeal.appeal_id)) {
        drafts.set(appeal.appeal_id, h("textarea", { rows: 4, maxlength: 10000,
          class: "appeal-conclusion-text appeal-wide" }));
      }
      const go = h("button", { type: "button", class: "primary appeal-conclude" }, t("appealConclude"));
      go.addEventListener("click", busy(go, () => conclude(appeal)));
      items.push(h("label", {}, t("appealConclusionLabel"), drafts.get(appeal.appeal_id)), go);
    }
    if (appeal.decision) {
      items.push(h("p", { class: appeal.decision === "upheld" ? "state-ok" : "state-missing" },
        t(appeal.decision === "upheld" ? "appealDecisionUpheld" : "appealDecisionRejected")));
    } else if (appeal.sitting_at) {
      const go = h("button", { type: "button", class: "appeal-sitting-link" }, t("appealSittingGo"));
      go.addEventListener("click", busy(go, () => openAppealSitting(appeal)));
      items.push(h("p", { class: "state-wait" }, t("appealSittingAtSec", { when: formatDateTime(appeal.sitting_at, zone) })), go);
    }
    return h("div", { class: "appeal card", dataset: { appeal: appeal.appeal_id } }, items);
  }

  function render() {
    root.hidden = !appeals || appeals.length === 0;
    if (root.hidden) return;
    const zone = ownZone();
    clear(body, appeals.map((a) => card(a, zone)));
  }

  let language = null;
  subscribe(() => {
    if (state.language !== language) {
      language = state.language;
      render();
    }
  });
  load();
  return root;
}
