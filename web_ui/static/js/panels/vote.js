// The vote of the closed sitting (clause 7.12): open, one grade per defended
// student from the chair and each member present; the chair decides a tie. With
// no majority the chair or the secretary starts a new round and everyone votes
// again ("round N" from the state's `vote_rounds`). The secretary records the open
// vote of members sitting in the university room (4.8). The page remembers what it
// sent in each round; the server keeps the votes.
import { h, clear } from "../dom.js";
import { act, busy, toast } from "../actions.js";
import { gradeName, t } from "../i18n.js";
import { personName, role, state, subscribe, update, VOTERS } from "../store.js";

const GRADES = ["excellent", "good", "satisfactory", "unsatisfactory"];

export function votePanel() {
  const heading = h("h2", {});
  const hint = h("p", { class: "muted" });
  const body = h("div", {});
  const root = h("section", { class: "panel vote" }, heading, hint, body);
  const sent = new Map();  // "voter|student|round" -> grade sent from this page
  let shownFor = "";

  const roundOf = (id) => state.procedure?.vote_rounds?.[id] ?? 1;

  function gradeButtons(voter, id, round, run) {
    const key = `${voter}|${id}|${round}`;
    return h("div", { class: "buttons", dataset: { voter } }, GRADES.map((grade) => {
      const chosen = sent.get(key) === grade;
      const button = h("button", { type: "button", class: chosen ? "grade chosen" : "grade",
        "aria-pressed": String(chosen), dataset: { grade } }, gradeName(grade));
      button.addEventListener("click", busy(button, async () => {
        if (await run(grade)) {
          sent.set(key, grade);
          shownFor = "";  // the toast's update re-renders with the grade marked
        }
      }));
      return button;
    }));
  }

  // The chair's or a member's own vote.
  function ownVote(id, round) {
    const me = state.me.me.id;
    const mine = sent.get(`${me}|${id}|${round}`);
    return [gradeButtons(me, id, round, async (grade) => {
      if (!await act("vote", { student: id, grade })) return false;
      toast(t("voteSent", { name: personName(id), grade: gradeName(grade) }));
      return true;
    }), mine ? h("p", { class: "muted" }, t("yourVote", { grade: gradeName(mine) })) : ""];
  }

  // The secretary records each in-person member's open vote (4.8).
  function inPersonVotes(id, round) {
    const voters = inPersonVoters();
    if (!voters.length) return h("p", { class: "muted" }, t("noneInPerson"));
    return voters.map((voter) => {
      const recorded = sent.get(`${voter.id}|${id}|${round}`);
      return h("div", { class: "recorded-vote", dataset: { voter: voter.id } },
        h("p", { class: "voter" }, voter.name, recorded
          ? h("span", { class: "muted" }, ` — ${t("voteRecordedAs", { grade: gradeName(recorded) })}`) : ""),
        gradeButtons(voter.id, id, round, async (grade) => {
          if (!await act("record-vote", { voter: voter.id, student: id, grade })) return false;
          toast(t("voteRecorded", { voter: voter.name, name: personName(id), grade: gradeName(grade) }));
          return true;
        }));
    });
  }

  function newRoundButton(id, stuck) {
    const button = h("button", { type: "button", class: stuck ? "primary new-round" : "small new-round",
      dataset: { action: "new-round", student: id } },
      t("newRound"));
    button.addEventListener("click", busy(button, async () => {
      if (!window.confirm(t("confirmNewRound", { name: personName(id) }))) return;
      if (await act("new-round", { student: id })) update({ noMajority: null });
    }));
    return button;
  }

  subscribe(() => {
    const p = state.procedure;
    const me = role();
    const voting = p?.phase === "closed_sitting" && (VOTERS.has(me) || me === "secretary");
    root.hidden = !voting;
    if (!voting) return;
    const secretary = me === "secretary";
    heading.textContent = t("voteHeading");
    hint.textContent = t(secretary ? "voteHintSecretary" : me === "chair" ? "voteHintChair" : "voteHint");
    const students = p.queue.filter((id) => p.statuses[id] === "defended");
    const key = [state.language, students.map((id) => `${id}:${roundOf(id)}`).join(","), [...sent].join(","),
      (p.in_person ?? []).join(","), state.noMajority].join("|");
    if (key === shownFor) return;
    shownFor = key;
    clear(body, students.length ? students.map((id) => {
      const round = roundOf(id);
      const stuck = state.noMajority === id;
      return h("fieldset", { class: stuck ? "vote-student stuck" : "vote-student", dataset: { student: id, round: String(round) } },
        h("legend", {}, personName(id), round > 1 ? h("span", { class: "round-tag" }, t("roundN", { round })) : ""),
        stuck ? h("p", { class: "alert" }, t("noMajorityHint", { name: personName(id) })) : "",
        round > 1 && !secretary ? h("p", { class: "muted" }, t("voteAgain")) : "",
        secretary ? inPersonVotes(id, round) : ownVote(id, round),
        me === "chair" || secretary ? h("div", { class: "round-row" }, newRoundButton(id, stuck),
          h("span", { class: "muted" }, t("newRoundHint"))) : "");
    }) : h("p", {}, t("nothingToVote")));
  });
  return root;
}

// The chair and members marked as sitting in the university room (4.8).
function inPersonVoters() {
  const marked = new Set(state.procedure?.in_person ?? []);
  return (state.me?.people ?? []).filter((p) => VOTERS.has(p.role) && marked.has(p.id));
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
