// The commission's view (chair, members; supervisors, reviewers and observers see
// its open parts): the video grid with the speaker larger, the defending student,
// phase and timer, the documents, the presentation, the vote in the closed sitting
// and the protocols to approve (members) or sign (the chair); across the top, what
// stops the sitting when something fails, with the chair's ways to move on.
// At an appeal sitting (8.6-8.10) the appeal commission sees the sitting's panel (the
// appeal chair with its buttons) and the sitting's protocol instead.
import { h, clear } from "../dom.js";
import { t } from "../i18n.js";
import { appealControlsPanel } from "../panels/appeal_controls.js";
import { controlsPanel } from "../panels/controls.js";
import { documentsPanel } from "../panels/documents.js";
import { failurePanel } from "../panels/failure.js";
import { noticeLog } from "../panels/notices.js";
import { presentationPanel } from "../panels/presentation.js";
import { protocolsPanel } from "../panels/protocols.js";
import { rosterPanel } from "../panels/roster.js";
import { statusPanel } from "../panels/status.js";
import { resultsPanel, votePanel } from "../panels/vote.js";
import { COMMISSION, role, state, student, subscribe } from "../store.js";
import { lobbyPanel, videoArea } from "./common.js";

export function commissionView({ grid, link, stream }) {
  grid.showSelf(stream, state.me.me);
  const commission = COMMISSION.has(role());
  const appeal = APPEAL_ROLES.has(role());
  return h("div", { class: "commission" }, commission ? failurePanel() : "",
    h("div", { class: "col col-main" }, lobbyPanel(), statusPanel({ compact: true }),
      videoArea(grid, { featured: () => state.procedure?.current_student }), presentationPanel(link)),
    h("div", { class: "col col-side" }, appeal ? appealControlsPanel() : "", currentStudent(), votePanel(), resultsPanel(),
      role() === "chair" ? controlsPanel() : "", commission ? documentsPanel() : "",
      commission || appeal ? protocolsPanel() : "", rosterPanel(), noticeLog()));
}

const APPEAL_ROLES = new Set(["appeal_chair", "appeal_member"]);

function currentStudent() {
  const body = h("div", {});
  const root = h("section", { class: "panel current-student" }, body);
  subscribe(() => {
    const id = state.procedure?.current_student;
    root.hidden = !id;
    if (!id) return;
    const s = student(id);
    clear(body, h("h2", {}, t("currentStudent")), h("p", { class: "name big-name" }, s?.name ?? id),
      s?.thesis_title ? h("p", {}, s.thesis_title) : "",
      s ? h("p", { class: "muted" }, t("supervisorReviewer", { supervisor: s.supervisor, reviewer: s.reviewer })) : "");
  });
  return root;
}
