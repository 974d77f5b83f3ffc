// The secretary's console: the phase timers, the procedure's buttons with the
// recording switch, identification, the video and the presentation in the middle;
// the roster with the quorum, the queue, protocols, recordings and notices aside.
import { h } from "../dom.js";
import { controlsPanel } from "../panels/controls.js";
import { identityPanel } from "../panels/identity.js";
import { noticeLog } from "../panels/notices.js";
import { presentationPanel } from "../panels/presentation.js";
import { protocolsPanel } from "../panels/protocols.js";
import { queuePanel } from "../panels/queue.js";
import { recordingsPanel } from "../panels/recordings.js";
import { rosterPanel } from "../panels/roster.js";
import { statusPanel } from "../panels/status.js";
import { resultsPanel } from "../panels/vote.js";
import { state } from "../store.js";
import { videoArea } from "./common.js";

export function secretaryView({ grid, link, stream }) {
  grid.showSelf(stream, state.me.me);
  return h("div", { class: "console" },
    h("div", { class: "col col-left" }, statusPanel(), controlsPanel(), identityPanel(), resultsPanel()),
    h("div", { class: "col col-main" },
      videoArea(grid, { featured: () => state.procedure?.current_student }), presentationPanel(link)),
    h("div", { class: "col col-side" }, rosterPanel(), queuePanel(), protocolsPanel(), recordingsPanel(), noticeLog()));
}
