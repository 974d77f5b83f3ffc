// Whenever the recording is on, every page says so, with what it means for the
// person (clauses 7.5, 7.11; the consent of clause 6.6). Off, the strip is gone.
// When the recording broke (a write error, the disk full: `recording_failure`),
// every page shows it failed and why: the procedure waits until the secretary
// turns it on again (rule D6, clause 7.11).
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { state, subscribe } from "../store.js";

export function recordingIndicator(pill, strip) {
  const summary = h("summary", {});
  const details = h("p", {});
  const box = h("details", {}, summary, details);
  strip.replaceChildren(box);
  let wasFailed = false;
  subscribe(() => {
    const on = Boolean(state.procedure?.recording);
    const failure = on ? "" : (state.procedure?.recording_failure ?? "");
    const failed = Boolean(failure);
    pill.hidden = !on && !failed;
    strip.hidden = !on && !failed;
    document.body.classList.toggle("recording", on);
    document.body.classList.toggle("recording-failed", failed);
    pill.classList.toggle("failed", failed);
    strip.classList.toggle("failed", failed);
    strip.setAttribute("role", failed ? "alert" : "note");
    pill.textContent = failed ? t("recFailedPill") : t("recPill");
    pill.title = failed ? t("recFailedTitle") : t("recTitle");
    summary.textContent = failed ? t("recFailedSummary") : t("recSummary");
    details.textContent = failed ? t("recFailedReason", { reason: failure }) : t("recPrivacy");
    if (failed !== wasFailed) box.open = failed;  // the reason shows at once, once
    wasFailed = failed;
  });
}
