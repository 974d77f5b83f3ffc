// What stops the sitting (clause 7.8): a banner on every commission page while the
// state carries `failure_since`, saying what fails and for how long. The chair gets
// the ways out there: move the defense under way, or every defense not yet decided,
// to a new date and time (picked in the browser's time zone, sent as unix seconds).
// The server decides when moving is allowed; a refusal says why (actions.js).
import { act, busy, toast, withNames } from "../actions.js";
import { formatDateTime, formatDuration, fromLocalInput, localZone, now, toLocalInput } from "../clock.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { COMMISSION, personName, role, state, subscribe } from "../store.js";

// The core's failure is English parts joined by "; " (orchestrator/session.py _what_fails).
const FAILURES = [
  [/^quorum lost \((\d+) of (\d+) members, (\d+) needed\)$/,
    (m) => t("failQuorum", { present: m[1], total: m[2], required: m[3] })],
  [/^the chair is not connected$/, () => t("failChair")],
  [/^the secretary is not connected$/, () => t("failSecretary")],
  [/^the connection of (\S+) is lost$/, (m) => t("failStudent", { name: personName(m[1]) })],
];

export function failureText(text) {
  const said = String(text ?? "").split("; ").filter(Boolean).map((part) => {
    for (const [pattern, say] of FAILURES) {
      const match = pattern.exec(part);
      if (match) return say(match);
    }
    return withNames(part);
  }).join("; ");
  return said.charAt(0).toUpperCase() + said.slice(1);
}

// The notice the core sends once the failure has lasted the configured time.
export const GRACE_OVER = /^(.*) for ([\d.]+) min: the chair may move (the defense or the rest of the day|the rest of the day)$/;

function moveAllowedNotice(p) {
  const offset = now() - Date.now() / 1000;
  return state.notices.some((n) => n.kind === "notice" && GRACE_OVER.test(n.text ?? "")
    && n.at / 1000 + offset >= p.failure_since - 1);
}

export function failurePanel() {
  const title = h("h2", {});
  const what = h("p", { class: "failure-what" });
  const lasting = h("p", { class: "failure-since" });
  const rule = h("p", { class: "failure-rule" });
  const chair = role() === "chair";
  const form = chair ? moveForm() : null;
  const root = h("section", { class: "panel failure-banner", role: "alert", hidden: true },
    title, what, lasting, rule, form?.root ?? "");

  function render() {
    const p = state.procedure;
    const shown = Boolean(p && p.kind !== "appeal" && p.failure_since && COMMISSION.has(role()));
    root.hidden = !shown;
    if (!shown) return;
    title.textContent = t("failureHeading");
    what.textContent = failureText(p.failure);
    const allowed = moveAllowedNotice(p);
    rule.textContent = t(chair ? (allowed ? "failureRuleChairNow" : "failureRuleChair")
      : (allowed ? "failureRuleNow" : "failureRule"));
    rule.classList.toggle("strong", allowed);
    form?.render(p);
    tick();
  }

  function tick() {
    const p = state.procedure;
    if (root.hidden || !p?.failure_since) return;
    lasting.textContent = t("failureLasting", { time: formatDuration(now() - p.failure_since) });
  }

  subscribe(render);
  setInterval(tick, 1000);
  return root;
}

function moveForm() {
  const description = h("textarea", { rows: 2, class: "move-description" });
  const date = h("input", { type: "datetime-local", class: "move-date", required: true });
  const dateSaid = h("p", { class: "move-date-said muted" });
  const descriptionLabel = h("span", {});
  const dateLabel = h("span", {});
  const moveOne = h("button", { type: "button", class: "danger", dataset: { action: "move-defense" } });
  const moveAll = h("button", { type: "button", class: "danger", dataset: { action: "move-rest-of-day" } });
  const root = h("div", { class: "move-form" },
    h("label", { class: "grow" }, descriptionLabel, description),
    h("div", { class: "move-when" }, h("label", {}, dateLabel, date), dateSaid),
    h("div", { class: "row" }, moveOne, moveAll));
  let edited = false;
  let describedFailure = "";
  description.addEventListener("input", () => { edited = true; });
  date.addEventListener("input", () => sayDate());

  function sayDate() {
    const at = fromLocalInput(date.value);
    dateSaid.textContent = at ? formatDateTime(at) : t("moveNeedsDate");
  }

  // The next day at the hour the day began: a sensible start for the picker.
  function defaultDate() {
    const start = state.me?.day?.starts_at ?? now();
    let at = start;
    while (at < now() + 3600) at += 86400;
    return at;
  }

  function chosen() {
    const at = fromLocalInput(date.value);
    if (!at) {
      toast(t("moveNeedsDate"), "error");
      date.focus();
      return null;
    }
    return { failure_description: description.value.trim() || failureText(state.procedure?.failure),
      new_date: at };
  }

  moveOne.addEventListener("click", busy(moveOne, async () => {
    const student = state.procedure?.current_student;
    const body = chosen();
    if (!student || !body) return;
    if (!window.confirm(t("confirmMoveDefense", { name: personName(student), date: formatDateTime(body.new_date) }))) return;
    await act("move-defense", { student, ...body });
  }));
  moveAll.addEventListener("click", busy(moveAll, async () => {
    const body = chosen();
    if (!body) return;
    if (!window.confirm(t("confirmMoveRest", { date: formatDateTime(body.new_date) }))) return;
    await act("move-rest-of-day", body);
  }));

  function render(p) {
    descriptionLabel.textContent = t("failureLabel");
    dateLabel.textContent = t("moveDateLabel", { zone: localZone() || "—" });
    if (!date.value) date.value = toLocalInput(defaultDate());
    date.min = toLocalInput(now());
    // A new failure (or the first) is described for the protocol in the page's words,
    // until the chair writes their own.
    const said = failureText(p.failure);
    if (!edited && said !== describedFailure) {
      description.value = said;
      describedFailure = said;
    }
    sayDate();
    moveOne.hidden = !p.current_student;
    moveOne.textContent = p.current_student ? t("moveDefenseOf", { name: personName(p.current_student) }) : "";
    moveAll.textContent = t("moveRestOfDay");
  }

  return { root, render };
}
