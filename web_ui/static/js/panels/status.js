// The phase, the defending student and the big timers: what is left of the phase
// and of the whole defense, or by how much they are over. Times come as absolute
// unix seconds and are counted against the server's clock (clock.js).
import { formatDuration, formatTime, now } from "../clock.js";
import { h } from "../dom.js";
import { phaseName, t } from "../i18n.js";
import { personName, state, subscribe } from "../store.js";

export function statusPanel({ compact = false } = {}) {
  const phase = h("p", { class: "phase" });
  const who = h("p", { class: "who" });
  const main = h("p", { class: "timer" });
  const mainLabel = h("span", { class: "timer-label" });
  const mainValue = h("span", { class: "timer-value" });
  main.append(mainLabel, mainValue);
  const total = h("p", { class: "timer-total" });
  const extra = h("p", { class: "status-extra" });
  const root = h("section", { class: `panel status-panel${compact ? " compact" : ""}`, "aria-live": "off" },
    phase, who, main, total, extra);

  function render() {
    const p = state.procedure;
    root.dataset.phase = p?.phase ?? "";
    phase.textContent = p ? phaseName(p.phase) : t("phaseUnknown");
    who.textContent = p?.current_student ? t("defending", { name: personName(p.current_student) }) : "";
    who.hidden = !p?.current_student;
    tick();
  }

  function tick() {
    const p = state.procedure;
    root.classList.remove("overtime", "warning", "paused");
    mainValue.textContent = "";
    mainLabel.textContent = "";
    total.textContent = "";
    extra.textContent = "";
    if (!p) return;
    const at = now();
    if (p.paused) {
      root.classList.add("paused");
      extra.textContent = t("pausedQuorum", { present: p.quorum.present, required: p.quorum.required });
    } else if (p.return_at && ["between_defenses", "closed_sitting"].includes(p.phase)) {
      extra.textContent = t("returnAt", { time: formatTime(p.return_at) });
    }
    if (p.phase_ends_at) {
      const left = p.phase_ends_at - at;
      root.dataset.secondsLeft = String(Math.round(left));
      if (left >= 0) {
        mainLabel.textContent = t("timeLeft");
        mainValue.textContent = formatDuration(left);
        if (left <= 60) root.classList.add("warning");
      } else {
        root.classList.add("overtime");
        mainLabel.textContent = t("overtime");
        mainValue.textContent = `+${formatDuration(-left)}`;
      }
    } else if (p.phase_started_at && p.current_student) {
      delete root.dataset.secondsLeft;
      mainLabel.textContent = t("phaseRunning");
      mainValue.textContent = formatDuration(at - p.phase_started_at);
    } else {
      delete root.dataset.secondsLeft;
    }
    if (p.defense_ends_at) {
      const left = p.defense_ends_at - at;
      total.textContent = left >= 0 ? t("defenseLeft", { time: formatDuration(left) })
        : t("defenseOver", { time: formatDuration(-left) });
      total.classList.toggle("over", left < 0);
    }
  }

  subscribe(render);
  setInterval(() => {
    if (!state.procedure?.paused) tick();
  }, 250);
  return root;
}
