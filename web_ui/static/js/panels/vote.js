// The vote of the closed sitting (clause 7.12): open, one grade per defended
// student from the chair and each member present; the chair decides a tie. The
// page remembers what this person sent; the server keeps the votes.
import { h, clear } from "../dom.js";
import { act, busy, toast } from "../actions.js";
import { gradeName, t } from "../i18n.js";
import { personName, role, state, subscribe } from "../store.js";

const GRADES = ["excellent", "good", "satisfactory", "unsatisfactory"];

export function votePanel() {
  const heading = h("h2", {});
  const hint = h("p", { class: "muted" });
  const body = h("div", {});
  const root = h("section", { class: "panel vote" }, heading, hint, body);
  const mine = new Map();  // student -> grade sent from this page
  let shownFor = "";

  subscribe(() => {
    const p = state.procedure;
    const voting = p?.phase === "closed_sitting" && (role() === "chair" || role() === "member");
    root.hidden = !voting;
    if (!voting) return;
    heading.textContent = t("voteHeading");
    hint.textContent = t(role() === "chair" ? "voteHintChair" : "voteHint");
    const students = p.queue.filter((id) => p.statuses[id] === "defended");
    const key = `${state.language}|${students.join(",")}|${[...mine].join(",")}`;
    if (key === shownFor) return;
    shownFor = key;
    clear(body, students.length ? students.map((id) => h("fieldset", { class: "vote-student", dataset: { student: id } },
      h("legend", {}, personName(id)),
      GRADES.map((grade) => {
        const button = h("button", { type: "button", class: mine.get(id) === grade ? "grade chosen" : "grade",
          "aria-pressed": String(mine.get(id) === grade), dataset: { grade } }, gradeName(grade));
        button.addEventListener("click", busy(button, async () => {
          if (await act("vote", { student: id, grade })) {
            mine.set(id, grade);
            toast(t("voteSent", { name: personName(id), grade: gradeName(grade) }));
            shownFor = "";  // the toast's update re-renders with the grade marked
          }
        }));
        return button;
      }),
      mine.has(id) ? h("p", { class: "muted" }, t("yourVote", { grade: gradeName(mine.get(id)) })) : ""))
      : h("p", {}, t("nothingToVote")));
  });
  return root;
}

// The results, once announced, for everyone.
export function resultsPanel() {
  const list = h("ul", {});
  const heading = h("h2", {});
  const root = h("section", { class: "panel results" }, heading, list);
  subscribe(() => {
    root.hidden = !state.results;
    if (!state.results) return;
    heading.textContent = t("resultsHeading");
    clear(list, Object.entries(state.results).map(([id, grade]) => h("li", { dataset: { student: id, grade } },
      h("span", { class: "name" }, personName(id)), ": ", h("strong", {}, gradeName(grade)))));
  });
  return root;
}
