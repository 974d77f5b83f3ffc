// Procedure commands from the pages: one place that sends them and says why one
// was refused (the server's sentence and the clause of the rules).
import { api } from "./api.js";
import { formatDateTime, formatDuration } from "./clock.js";
import { has, t } from "./i18n.js";
import { stateApplied } from "./messages.js";
import { personName, state, update } from "./store.js";

export function toast(text, kind = "info") {
  update({ toast: { text, kind, at: Date.now() } });
}

// `onRefused(error)` runs after the refusal is shown, for a page that offers the way
// out (the chair's waiver after clause 7.3, a new round after a vote without majority).
export async function act(action, body = {}, { onRefused = null } = {}) {
  try {
    const answer = await api.act(action, body);
    // The answer is the new state; not every change is also broadcast (see messages.js).
    stateApplied();
    update({ procedure: answer.state });
    return answer.state;
  } catch (error) {
    refused(error);
    onRefused?.(error);
    return null;
  }
}

export function refused(error) {
  const clause = error?.clause ? ` ${t("clauseRef", { clause: error.clause })}` : "";
  console.warn("[room] refused:", error?.status, error?.message);
  toast(refusalText(error?.message ?? String(error)) + clause, "error");
}

const docName = (kind) => (has(`doc_${kind}`) ? t(`doc_${kind}`) : kind);
const names = (list) => list.split(/,\s*/).map((id) => personName(id)).join(", ");

// The core's refusals are English sentences naming people by id. Those a page
// leads to on a day with a failure are said in the page's language; any other is
// shown as it came, with the ids it names replaced by the people's names.
const REFUSALS = [
  [/^cannot start the defense of (\S+): ([\w, ]+?) not on file/,
    (m) => t("refusedDocuments", { name: personName(m[1]), missing: m[2].split(/,\s*/).map(docName).join(", ") })],
  [/the vote for (\S+) has no majority/, (m) => t("refusedNoMajority", { name: personName(m[1]) })],
  [/^cannot record a valid reason for (\S+): the document that proves it/,
    (m) => t("refusedNoProof", { name: personName(m[1]) })],
  [/^cannot move .*: the failure has lasted (\d+) s, less than (\d+) s/,
    (m) => t("refusedMoveEarly", { lasted: formatDuration(Number(m[1])), needed: formatDuration(Number(m[2])) })],
  [/^cannot move .* to [\d.]+: it has passed/, () => t("refusedMovePast")],
  [/^cannot move .* to [\d.]+: after the end of the attestation period at ([\d.]+)/,
    (m) => t("refusedMoveAfter", { date: formatDateTime(Number(m[1])) })],
  [/^cannot move .*: describe the failure/, () => t("refusedDescribe")],
  [/^cannot move .*: no defense is left to move/, () => t("refusedNothingToMove")],
  [/^cannot vote again for (\S+): this round is not over, (.+) to vote/,
    (m) => t("refusedRoundOpen", { name: personName(m[1]), voters: names(m[2]) })],
  [/^cannot vote again for (\S+): this round decided/, (m) => t("refusedRoundDecided", { name: personName(m[1]) })],
  [/^cannot record the vote of (\S+): not marked as attending in person/,
    (m) => t("refusedNotInPerson", { name: personName(m[1]) })],
  [/^cannot accept a second vote from (\S+) for (\S+)/,
    (m) => t("refusedSecondVote", { voter: personName(m[1]), name: personName(m[2]) })],
];

export function refusalText(message) {
  for (const [pattern, say] of REFUSALS) {
    const match = pattern.exec(message);
    if (match) return say(match);
  }
  return t("refused", { message: withNames(message) });
}

// Whole-number tokens that are the ids of the day's people become their names;
// counts, seconds and minutes stay as they are.
export function withNames(text) {
  const ids = new Set((state.me?.people ?? []).map((p) => p.id));
  // No lookbehind: older phone browsers (Safari before 16.4) cannot parse it.
  // Whole numbers only: a digit run inside a hash or a word ("e067c79…") is no id.
  return text.replace(/(^|[^\w.])(\d+)(?!\w|\.\d|\s*(?:s|min|of|needed|members|%)(?!\w))/g,
    (all, before, token) => before + (ids.has(token) ? personName(token) : token));
}

// A button that runs `run` and stays disabled until it finishes.
export function busy(button, run) {
  return async (event) => {
    event?.preventDefault?.();
    if (button.disabled) return;
    button.disabled = true;
    try {
      await run();
    } finally {
      button.disabled = false;
    }
  };
}
