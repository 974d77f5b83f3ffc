// The procedure's buttons for the secretary (and the chair's share of them): what
// the current phase allows, in the order of clauses 7.5-7.13. The server decides;
// a refused step comes back with its clause (actions.js). The chair may let a
// defense start without its thesis or presentation (7.3); moving defenses after a
// failure (7.8) is on the failure banner (failure.js).
import { h, clear } from "../dom.js";
import { act, busy, toast } from "../actions.js";
import { has, phaseName, t } from "../i18n.js";
import { isPresent, personName, role, state, student, subscribe, update } from "../store.js";

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
  const waiverReason = h("input", { type: "text", class: "waiver-reason" });
  // Students whose start was refused for want of documents (clause 7.3).
  const needsWaiver = new Map();  // student -> what is missing, as the refusal said
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

  function lacksDocuments(id) {
    const files = student(id)?.files;
    return Array.isArray(files) && !(files.includes("thesis") && files.includes("presentation_pdf"));
  }

  function startButton(candidate) {
    const element = h("button", { type: "button", class: "primary big", dataset: { action: "start-defense" } },
      t("startDefense", { name: personName(candidate) }));
    element.addEventListener("click", busy(element, async () => {
      await act("start-defense", { student: candidate }, { onRefused: (error) => {
        if (error?.clause !== "7.3") return;
        const missing = / ([\w, ]+?) not on file/.exec(error.message ?? "")?.[1] ?? "";
        needsWaiver.set(candidate, missing.split(/,\s*/).filter(Boolean)
          .map((kind) => (has(`doc_${kind}`) ? t(`doc_${kind}`) : kind)).join(", "));
        shown = "";
        render();
      } });
    }));
    return element;
  }

  // The chair's way past clause 7.3: say why, let the defense start without its
  // documents, and start it.
  function waiver(candidate) {
    const go = h("button", { type: "button", class: "primary", dataset: { action: "waive-documents" } },
      t("waiveAndStart", { name: personName(candidate) }));
    go.addEventListener("click", busy(go, async () => {
      const reason = waiverReason.value.trim();
      if (!reason) {
        toast(t("waiveNeedsReason"), "error");
        waiverReason.focus();
        return;
      }
      if (!await act("waive-documents", { student: candidate, reason })) return;
      waiverReason.value = "";
      needsWaiver.delete(candidate);
      await act("start-defense", { student: candidate });
    }));
    waiverReason.placeholder = t("waiveReasonPlaceholder");
    return h("details", { class: "waiver", open: needsWaiver.has(candidate) || lacksDocuments(candidate),
      dataset: { student: candidate } },
    h("summary", {}, t("waiveSummary")),
    h("p", { class: "muted" }, t("waiveHint")),
    needsWaiver.get(candidate) ? h("p", { class: "alert" }, t("waiveMissing", { missing: needsWaiver.get(candidate) })) : "",
    h("label", {}, t("waiveReasonLabel"), waiverReason), go);
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
      isPresent(p.current_student), [...needsWaiver.keys()].join(",")].join("|");
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
          startButton(candidate)));
        if (me === "chair") items.push(waiver(candidate));
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
    }
    if (p.phase === "closed_sitting" && secretary) {
      const announce = h("button", { type: "button", class: "primary big", dataset: { action: "announce-results" } },
        t("announceResults"));
      announce.addEventListener("click", busy(announce, async () => {
        // No majority (7.12): the vote panel offers the new round for that student.
        if (await act("announce-results", {}, { onRefused: (error) => {
          const stuck = /the vote for (\S+) has no majority/.exec(error?.message ?? "");
          if (stuck) update({ noMajority: stuck[1] });
        } })) update({ noMajority: null });
      }));
      items.push(h("p", { class: "muted" }, t("hintClosed")), announce);
    }
    if (p.phase === "closed_sitting" && me === "chair") items.push(h("p", { class: "muted" }, t("hintClosedChair")));
    if (p.phase === "results") items.push(button(t("closeSitting"), "close-sitting", {}, "", t("confirmClose")));
    if (p.phase === "closed") items.push(h("p", {}, t("sittingClosed")));
    clear(body, items);
  }

  subscribe(render);
  return root;
}
