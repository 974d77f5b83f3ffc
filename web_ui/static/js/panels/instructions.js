// What the student should do now, step by step, in plain words: before the
// identification, during it (and what the identity check asked for), before and
// during the talk.
import { h, clear } from "../dom.js";
import { t } from "../i18n.js";
import { myId, state, subscribe } from "../store.js";

export function instructionsPanel() {
  const heading = h("h2", {});
  const told = h("p", { class: "told", role: "status" });
  const steps = h("ol", { class: "steps" });
  const root = h("section", { class: "panel instructions" }, heading, told, steps);
  subscribe(() => {
    const p = state.procedure;
    const me = myId();
    const status = p?.statuses?.[me];
    let key = null;
    if (status === "rescheduled" || p?.moved?.[me]) key = null;  // the moved card says what now
    else if (p?.kind === "appeal") key = null;  // an appeal sitting: no defense steps
    else if (!p || p.phase === "waiting" || p.phase === "opening") key = "stepsWait";
    else if (p.phase === "identification" || (["announcement", "between_defenses"].includes(p.phase) && status === "waiting")) {
      key = status === "waiting" ? "stepsIdentify" : "stepsIdentified";
    } else if (p.current_student === me) key = p.phase === "talk" ? "stepsTalk" : "stepsDefense";
    else if (p.phase === "closed_sitting") key = null;
    else if (p.phase === "results" || p.phase === "closed") key = null;
    else key = "stepsWaitTurn";
    root.hidden = !key;
    if (!key) return;
    heading.textContent = t("instructionsHeading");
    const identity = state.identity;
    told.hidden = !(identity && key === "stepsIdentify");
    if (identity) {
      told.textContent = (state.language === "ru" ? identity.instruction_ru : identity.instruction)
        ?? identity.instruction ?? "";
      told.classList.toggle("retake", Boolean(identity.retake));
    }
    clear(steps, t(key).split("\n").map((line) => h("li", {}, line)));
  });
  return root;
}
