// The student's phone page: portrait, one column, large type. A moved defense's
// new date first, then the phase and the time left, what to do now, the
// commission's video with a small own preview, the presentation with big page
// buttons, and the results.
import { h } from "../dom.js";
import { noticeLog } from "../panels/notices.js";
import { instructionsPanel } from "../panels/instructions.js";
import { movedCard } from "../panels/moved.js";
import { presentationPanel } from "../panels/presentation.js";
import { statusPanel } from "../panels/status.js";
import { resultsPanel } from "../panels/vote.js";
import { state } from "../store.js";
import { lobbyPanel, videoArea } from "./common.js";

export function studentView({ grid, link, stream }) {
  grid.showSelf(stream, state.me.me);
  const chair = () => state.me.people.find((p) => p.role === "chair")?.id ?? null;
  return h("div", { class: "phone" },
    movedCard(), statusPanel({ compact: true }), lobbyPanel(), resultsPanel(), instructionsPanel(),
    videoArea(grid, { featured: chair }), presentationPanel(link, { big: true }), noticeLog());
}
