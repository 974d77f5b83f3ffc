// The appeal sitting from the room (clauses 8.6-8.10): the appeal chair's buttons,
// each only when the procedure allows it, and where a step must wait, the reason
// with its clause; the appeal members see the same panel without the buttons.
//
// The order is AppealSession's (orchestrator/appeal_session.py): recording on, open
// the sitting, name the student and every member aloud one by one (8.7), the
// decision with its reasoning (8.8, 8.9), close. The recording may not go off
// between the opening and the decision (8.10). The server decides; a refusal comes
// back with its clause (actions.js).
import { act, busy, toast } from "../actions.js";
import { clear, h } from "../dom.js";
import { roleName, t } from "../i18n.js";
import { personName, role, state, subscribe } from "../store.js";

// AppealSession refuses to turn the recording off in these phases (8.10).
const KEEP_RECORDING = new Set(["appeal_naming", "appeal_hearing"]);

export function appealControlsPanel() {
  const heading = h("h2", {});
  const body = h("div", { class: "controls-body" });
  const root = h("section", { class: "panel controls appeal-controls" }, heading, body);
  const reasoning = h("textarea", { rows: 4, maxlength: 10000, class: "appeal-reasoning" });
  const choice = { value: "" };
  let shown = "";

  function button(label, action, payload = {}, kind = "", confirmText = null) {
    const element = h("button", { type: "button", class: kind, dataset: { action } }, label);
    element.addEventListener("click", busy(element, async () => {
      if (confirmText && !window.confirm(confirmText)) return;
      await act(action, typeof payload === "function" ? payload() : payload);
    }));
    return element;
  }

  // A step that must wait: the button stays, greyed, with why under it.
  function waiting(label, why) {
    return [h("button", { type: "button", class: "primary", disabled: true }, label),
      h("p", { class: "alert appeal-why" }, why)];
  }

  function who(id) {
    const person = state.me?.people?.find((p) => p.id === id);
    return person ? `${person.name} (${roleName(person.role)})` : personName(id);
  }

  function decisionForm(p) {
    const options = ["rejected", "upheld"].map((value) => {
      const input = h("input", { type: "radio", name: "appeal-decision", value, checked: choice.value === value,
        onchange: () => { choice.value = value; } });
      return h("label", { class: "appeal-choice" }, input, " ",
        t(value === "upheld" ? "appealChoiceUpheld" : "appealChoiceRejected"));
    });
    reasoning.placeholder = t("appealReasoningPlaceholder");
    const decide = h("button", { type: "button", class: "primary big", dataset: { action: "decide" } }, t("appealDecide"));
    decide.addEventListener("click", busy(decide, async () => {
      // Said here before the server says it: both are needed (8.8, 8.9).
      if (!choice.value || !reasoning.value.trim()) {
        toast(t("appealDecisionIncomplete"), "error");
        return;
      }
      await act("decide", { decision: choice.value, reasoning: reasoning.value.trim() });
    }));
    return [h("p", { class: "muted" }, t("appealHintHearing")), ...options,
      h("label", {}, t("appealReasoningLabel"), reasoning),
      p.recording ? decide : waiting(t("appealDecide"), t("appealWhyRecording"))];
  }

  function render() {
    const p = state.procedure;
    root.hidden = !p || p.kind !== "appeal";
    if (root.hidden) return;
    const chair = role() === "appeal_chair";
    const key = [state.language, p.phase, p.recording, p.named.join(","), p.decision, chair].join("|");
    if (key === shown) return;
    shown = key;
    heading.textContent = t(chair ? "appealControlsHeading" : "appealSittingPanelHeading");
    // The phase itself is in the status panel above.
    const items = [];
    // The recording: the chair turns it on before anything else (8.7).
    // Before the opening either way; until the decision only on again (after a failure);
    // after it only off (closing turns it off too); once closed, no switch.
    const switchable = chair && (p.phase === "appeal_waiting"
      || (KEEP_RECORDING.has(p.phase) && !p.recording) || (p.phase === "appeal_decided" && p.recording));
    items.push(h("div", { class: "rec-switch" },
      switchable ? button(p.recording ? t("recordingOff") : t("recordingOn"), "recording", { on: !p.recording },
        p.recording ? "danger" : "primary") : "",
      h("span", { class: p.recording ? "rec-state on" : "rec-state" }, p.recording ? t("recordingIsOn") : t("recordingIsOff"))));
    if (p.recording_failure) items.push(h("p", { class: "alert" }, t("appealRecordingFailed", { reason: p.recording_failure })));
    if (p.phase === "appeal_waiting") {
      items.push(h("p", { class: "muted" }, t("appealHintWaiting")));
      if (chair) {
        items.push(...(p.recording ? [button(t("appealOpen"), "open-appeal", {}, "primary big")]
          : waiting(t("appealOpen"), t("appealWhyRecordingFirst"))));
      }
    }
    if (p.phase === "appeal_naming") {
      items.push(h("p", { class: "muted" }, t("appealHintNaming")));
      const left = p.to_name;
      items.push(h("ul", { class: "appeal-names" },
        p.named.map((id) => h("li", { class: "state-ok", dataset: { named: id } }, `✓ ${who(id)}`)),
        left.map((id, index) => h("li", { dataset: { person: id } }, h("span", {}, who(id)),
          chair ? button(t("appealNameAloud"), "name", { person: id }, index === 0 ? "primary small" : "small")
            : h("span", { class: "muted" }, t("appealNotNamedYet"))))));
    }
    if (p.phase === "appeal_hearing") {
      items.push(h("p", { class: "state-ok" }, t("appealEveryoneNamed")));
      if (chair) items.push(...decisionForm(p));
    }
    if (p.phase === "appeal_decided" || p.phase === "appeal_closed") {
      if (p.decision) {
        const upheld = p.decision === "upheld";
        items.push(h("p", { class: upheld ? "state-ok appeal-result" : "state-missing appeal-result" },
          t(upheld ? "appealDecisionUpheld" : "appealDecisionRejected")),
        h("p", { class: "appeal-text" }, t("appealReasoning", { text: p.reasoning ?? "" })));
      }
      if (p.phase === "appeal_decided" && chair) {
        items.push(h("p", { class: "muted" }, t("appealHintDecided")),
          button(t("appealClose"), "close-appeal", {}, "primary", t("appealConfirmClose")));
      }
      if (p.phase === "appeal_closed") items.push(h("p", {}, t("appealClosedNote")));
    }
    clear(body, items);
  }

  subscribe(render);
  return root;
}
