// Procedure commands from the pages: one place that sends them and says why one
// was refused (the server's sentence and the clause of the rules).
import { api } from "./api.js";
import { t } from "./i18n.js";
import { stateApplied } from "./messages.js";
import { update } from "./store.js";

export function toast(text, kind = "info") {
  update({ toast: { text, kind, at: Date.now() } });
}

export async function act(action, body = {}) {
  try {
    const answer = await api.act(action, body);
    // The answer is the new state; not every change is also broadcast (see messages.js).
    stateApplied();
    update({ procedure: answer.state });
    return answer.state;
  } catch (error) {
    refused(error);
    return null;
  }
}

export function refused(error) {
  const clause = error?.clause ? ` ${t("clauseRef", { clause: error.clause })}` : "";
  console.warn("[room] refused:", error?.status, error?.message);
  toast(t("refused", { message: error?.message ?? String(error) }) + clause, "error");
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
