// Whenever the recording is on, every page says so, with what it means for the
// person (clauses 7.5, 7.11; the consent of clause 6.6). Off, the strip is gone.
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { state, subscribe } from "../store.js";

export function recordingIndicator(pill, strip) {
  const summary = h("summary", {});
  const details = h("p", {});
  const box = h("details", {}, summary, details);
  strip.replaceChildren(box);
  subscribe(() => {
    const on = Boolean(state.procedure?.recording);
    pill.hidden = !on;
    strip.hidden = !on;
    document.body.classList.toggle("recording", on);
    pill.textContent = t("recPill");
    pill.title = t("recTitle");
    summary.textContent = t("recSummary");
    details.textContent = t("recPrivacy");
  });
}
