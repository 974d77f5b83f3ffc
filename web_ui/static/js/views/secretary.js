// The secretary's console: the phase timers, the procedure's buttons with the
// recording switch, the in-person votes of the closed sitting, identification, the
// video and the presentation in the middle; the roster with the quorum and who
// sits in the room, the queue, protocols, recordings and notices aside; across the
// top, what stops the sitting when something fails.
import { h } from "../dom.js";
import { controlsPanel } from "../panels/controls.js";
import { failurePanel } from "../panels/failure.js";
import { identityPanel } from "../panels/identity.js";
import { noticeLog } from "../panels/notices.js";
import { presentationPanel } from "../panels/presentation.js";
import { protocolsPanel } from "../panels/protocols.js";
import { queuePanel } from "../panels/queue.js";
import { recordingsPanel } from "../panels/recordings.js";
import { rosterPanel } from "../panels/roster.js";
import { statusPanel } from "../panels/status.js";
import { resultsPanel, votePanel } from "../panels/vote.js";
import { state } from "../store.js";
import { videoArea } from "./common.js";

export function secretaryView({ grid, link, stream }) {
  grid.showSelf(stream, state.me.me);
  return h("div", { class: "console" }, failurePanel(),
    h("div", { class: "col col-left" }, statusPanel(), controlsPanel(), votePanel(), identityPanel(), resultsPanel()),
    h("div", { class: "col col-main" },
      videoArea(grid, { featured: () => state.procedure?.current_student }), presentationPanel(link)),
    h("div", { class: "col col-side" }, rosterPanel(), queuePanel(), protocolsPanel(), recordingsPanel(), noticeLog()));
}
