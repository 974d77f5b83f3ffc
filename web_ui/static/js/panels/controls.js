// The procedure's buttons for the secretary (and the chair's share of them): what
// the current phase allows, in the order of clauses 7.5-7.13. The server decides;
// a refused step comes back with its clause (actions.js).
import { h, clear } from "../dom.js";
import { act, busy } from "../actions.js";
import { phaseName, t } from "../i18n.js";
import { isPresent, personName, role, state, subscribe } from "../store.js";

// Phases whose recording may not be turned off (orchestrator/phases.py RECORDED_PHASES).
const RECORDED_PHASES = new Set(["identification", "announcement", "talk", "questions",
  "supervisor", "review", "answer", "final_word", "between_defenses", "results"]);

const DEFENSE = ["talk", "questions", "supervisor", "review", "answer", "final_word"];
const NEXT = { talk: "questions", questions: "supervisor", supervisor: "review", review: "answer",
  answer: "final_word", final_word: "between_defenses" };

export function controlsPanel() {
  const heading = h("h2", {});
  const body = h("div", { class: "controls-body" });
  const question = h("textarea", { rows: 2, class: "question-text" });
  const failure = h("textarea", { rows: 2, class: "failure-text" });
  const returnIn = h("input", { type: "number", min: 5, max: 600, step: 5, value: 30, class: "return-minutes" });
  const root = h("section", { class: "panel controls" }, heading, body);
  let shown = "";

  function button(label, action, payload = {}, kind = "", confirmText = null) {
    const element = h("button", { type: "button", class: kind, dataset: { action } }, label);
    element.addEventListener("click", busy(element, async () => {
      if (confirmText && !window.confirm(confirmText)) return;
      await act(action, typeof payload === "function" ? payload() : payload);
    }));
    return element;
  }

  function limits() {
    const phases = state.me?.phases ?? {};
    return { talk: phases.talk_minutes ?? 10, questions: phases.questions_minutes ?? 15,
      total: phases.defense_max_minutes ?? 30 };
  }

  function nextWaiting(p) {
    return p.queue.find((id) => ["waiting", "identified"].includes(p.statuses[id])) ?? null;
  }

  function render() {
    const p = state.procedure;
    const me = role();
    root.hidden = !p || !(me === "secretary" || me === "chair");
    if (root.hidden) return;
    const key = [state.language, p.phase, p.current_student, p.recording, JSON.stringify(p.statuses),
      isPresent(p.current_student)].join("|");
    if (key === shown) return;
    shown = key;
    heading.textContent = t("controlsHeading");
    const secretary = me === "secretary";
    const items = [];
    if (secretary) {
      // The closed sitting is not recorded (clause 7.12): no switch to turn it on there;
      // and from identification to the results the whole procedure is recorded
      // (clause 7.11): no switch to turn it off (the server refuses it anyway).
      const switchable = p.recording ? !RECORDED_PHASES.has(p.phase) : p.phase !== "closed_sitting";
      items.push(h("div", { class: "rec-switch" },
        switchable ? button(p.recording ? t("recordingOff") : t("recordingOn"), "recording", { on: !p.recording },
          p.recording ? "danger" : "primary") : "",
        h("span", { class: p.recording ? "rec-state on" : "rec-state" }, p.recording ? t("recordingIsOn") : t("recordingIsOff"))));
    }
    if (p.phase === "waiting" && secretary) {
      items.push(h("p", { class: "muted" }, t("hintOpen")), button(t("openSitting"), "open-sitting", {}, "primary big"));
    }
    if (p.phase === "opening") items.push(h("p", { class: "muted" }, t("hintOpening")));
    if (p.phase === "identification") {
      items.push(h("p", { class: "muted" }, t("hintIdentification")),
        button(t("announceLimits", limits()), "announce-limits", {}, "primary"));
    }
    if (p.phase === "announcement" || p.phase === "between_defenses") {
      const candidate = nextWaiting(p);
      if (candidate) {
        items.push(h("div", { class: "row" },
          button(t("callStudent", { name: personName(candidate) }), "call", { student: candidate }),
          button(t("startDefense", { name: personName(candidate) }), "start-defense", { student: candidate }, "primary big")));
      } else {
        items.push(h("p", { class: "muted" }, t("allDefended")));
      }
      if (secretary) {
        items.push(h("div", { class: "row" }, h("label", {}, t("returnInLabel"), " ", returnIn),
          button(t("tellReturn"), "return-time", () => ({ return_at: Date.now() / 1000 + 60 * Number(returnIn.value || 30) }))),
        button(t("closedSitting"), "closed-sitting", {}, "", t("confirmClosed")));
      }
    }
    if (DEFENSE.includes(p.phase)) {
      items.push(button(t("nextPhase", { phase: phaseName(NEXT[p.phase]) }), "next-phase", {}, "primary big"));
      if (secretary && p.phase !== "talk") {
        items.push(h("div", { class: "row" }, h("label", { class: "grow" }, t("questionLabel"), question),
          button(t("recordQuestion"), "question", () => {
            const text = question.value.trim();
            question.value = "";
            return { student: p.current_student, text };
          })));
      }
      if (!isPresent(p.current_student)) {
        items.push(h("p", { class: "alert" }, t("studentLost", { name: personName(p.current_student) })));
      }
      if (me === "chair") {
        items.push(h("details", {}, h("summary", {}, t("moveDefense")),
          h("label", {}, t("failureLabel"), failure),
          button(t("moveDefenseConfirm"), "move-defense", () => ({ student: p.current_student,
            failure_description: failure.value.trim() || t("failureDefault") }), "danger")));
      }
    }
    if (p.phase === "closed_sitting" && secretary) {
      items.push(h("p", { class: "muted" }, t("hintClosed")), button(t("announceResults"), "announce-results", {}, "primary big"));
    }
    if (p.phase === "results") items.push(button(t("closeSitting"), "close-sitting", {}, "", t("confirmClose")));
    if (p.phase === "closed") items.push(h("p", {}, t("sittingClosed")));
    clear(body, items);
  }

  subscribe(render);
  return root;
}
