// What the server tells the room (`notice` messages) as sentences, the latest on a
// toast and the rest in a short log; plus the page's own toasts (refusals).
import { h, clear } from "../dom.js";
import { formatDateTime, formatDuration, formatTime } from "../clock.js";
import { withNames } from "../actions.js";
import { failureText, GRACE_OVER } from "./failure.js";
import { gradeName, phaseName, t } from "../i18n.js";
import { personName, state, subscribe } from "../store.js";

export function noticeText(notice) {
  switch (notice.kind) {
    case "warning":
      return notice.phase
        ? t("noticeWarning", { phase: phaseName(notice.phase), time: formatDuration(notice.seconds_left) })
        : t("noticeWarningDefense", { time: formatDuration(notice.seconds_left) });
    case "overtime":
      return notice.phase ? t("noticeOvertime", { phase: phaseName(notice.phase) }) : t("noticeOvertimeDefense");
    case "absent":
      return t("noticeAbsent", { name: personName(notice.student) });
    case "rescheduled":
      return notice.new_date
        ? t("noticeRescheduledTo", { name: personName(notice.student), date: formatDateTime(notice.new_date),
          reason: notice.reason ?? "" })
        : t("noticeRescheduled", { name: personName(notice.student), reason: notice.reason ?? "" });
    case "results":
      return t("noticeResults", { grades: Object.entries(notice.grades ?? {})
        .map(([id, grade]) => `${personName(id)}: ${gradeName(grade)}`).join("; ") || "—" });
    case "reconnected":
      return t("reconnected");
    case "track_unavailable":
      return t(notice.media === "audio" ? "noticeAudioUnavailable" : "noticeVideoUnavailable",
        { name: notice.name, codec: notice.codec === "H264" ? "H.264" : notice.codec });
    case "link_low": // a student's uplink under rule P5 (media/bitrate.py)
      return t("noticeLinkLow", { name: personName(notice.student), kbps: notice.kbps, minimum: notice.minimum_kbps });
    case "link_restored":
      return t("noticeLinkRestored", { name: personName(notice.student), kbps: notice.kbps });
    default:
      return serverText(notice.text ?? "");
  }
}

// The core's notices are English sentences; the ones everybody sees are said in
// the page's language, anything else is shown as it came.
const SERVER_TEXTS = [
  [/^time limits: talk (\d+) min, questions (\d+) min, defense (\d+) min$/, "noticeLimits", ["talk", "questions", "total"]],
  [/^paused: (\d+) of (\d+) members present, (\d+) needed$/, "noticePaused", ["present", "total", "required"]],
  [/^resumed after (\d+) s paused$/, "noticeResumed", ["seconds"]],
  [/^results at ([\d.]+)$/, "noticeReturn", ["time"], (value) => formatTime(Number(value))],
  [/^the defense of (\S+) may start without its documents: (.*)$/s, "noticeWaived", ["name", "reason"],
    (value, i) => (i === 0 ? personName(value) : value)],
  [/^no majority for (\S+): round (\d+) of the vote$/, "noticeNewRound", ["name", "round"],
    (value, i) => (i === 0 ? personName(value) : value)],
  [/^the recording failed: (.*)$/s, "noticeRecordingFailed", ["reason"]],
  [/^everyone named: the hearing begins$/, "noticeAppealEveryoneNamed", []],
  [GRACE_OVER, "noticeMayMove", ["failure", "minutes", "what"],
    (value, i) => [failureText, (v) => v, (v) => t(v === "the rest of the day" ? "whatRest" : "whatEither")][i](value)],
];

function serverText(text) {
  for (const [pattern, key, names, convert = (value) => value] of SERVER_TEXTS) {
    const match = pattern.exec(text);
    if (match) return t(key, Object.fromEntries(names.map((name, i) => [name, convert(match[i + 1], i)])));
  }
  return withNames(text);
}

export function noticeLog() {
  const list = h("ol", { class: "notice-log" });
  const root = h("section", { class: "panel notices" }, h("h2", {}, t("noticesHeading")), list);
  subscribe(() => {
    root.querySelector("h2").textContent = t("noticesHeading");
    const items = state.notices.slice(-8).reverse();
    root.hidden = !items.length;
    clear(list, items.map((n) => h("li", { class: `notice-${n.kind}` },
      h("time", {}, formatTime(n.at / 1000)), " ",
      noticeText(n), n.clause ? ` ${t("clauseRef", { clause: n.clause })}` : "")));
  });
  return root;
}

// The toast: the newest notice or refusal, for a few seconds.
export function toastArea(element) {
  let shown = null;
  let timer = null;
  subscribe(() => {
    const last = state.notices[state.notices.length - 1];
    const candidates = [state.toast, last && { text: noticeText(last), kind: last.kind, at: last.at,
      clause: last.clause }].filter(Boolean).sort((a, b) => b.at - a.at);
    const next = candidates[0];
    if (!next || next === shown || next.at === shown?.at) return;
    shown = next;
    element.className = `toast toast-${next.kind}`;
    element.textContent = next.text + (next.clause ? ` ${t("clauseRef", { clause: next.clause })}` : "");
    element.hidden = false;
    clearTimeout(timer);
    timer = setTimeout(() => { element.hidden = true; }, next.kind === "error" ? 9000 : 6000);
  });
}
