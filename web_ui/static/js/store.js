// The page's one state object. Modules read it and call `update`; subscribers
// re-render once per turn of the event loop, however many updates came in it.

export const state = {
  language: "ru",
  token: "",
  me: null,            // GET /api/me: day, me, people, students, features
  self: null,          // the welcome's participant
  procedure: null,     // the `state` message's state
  presentation: null,  // {student, page}
  roster: [],          // the `participants` message
  notices: [],         // newest last, bounded
  results: null,       // grades by student, from the results notice
  lobby: false,        // waiting in the lobby: to be admitted, or outside the closed sitting
  lobbyReason: null,   // "admission" | "closed_sitting"
  link: { phase: "prejoin", attempt: 0 },  // prejoin, connecting, connected, reconnecting, ended
  ended: null,         // {key, params} when the session is over for good
  mediaNote: null,     // {key, params}: camera or microphone trouble
  identity: null,      // the last `identity` message (instructions from the identity check)
  toast: null,         // {text, kind}
  noMajority: null,    // the student whose vote had no majority when the results were asked for (7.12)
};

const listeners = new Set();
let scheduled = false;

export function subscribe(listener) {
  listeners.add(listener);
  listener(state);
  return () => listeners.delete(listener);
}

export function update(patch) {
  Object.assign(state, patch);
  if (scheduled) return;
  scheduled = true;
  queueMicrotask(() => {
    scheduled = false;
    for (const listener of listeners) {
      try {
        listener(state);
      } catch (error) {
        console.error("[room] a view failed to render:", error?.message ?? error);
      }
    }
  });
}

const MAX_NOTICES = 50;

export function addNotice(notice) {
  update({ notices: [...state.notices.slice(-(MAX_NOTICES - 1)), { ...notice, at: Date.now() }] });
}

// Handy lookups over /api/me.
export function personName(id) {
  const person = state.me?.people?.find((p) => p.id === id)
    ?? state.roster.find((p) => p.id === id);
  return person?.name ?? id ?? "";
}

export function student(id) {
  return state.me?.students?.find((s) => s.id === id) ?? null;
}

// Whether a person's media connection is up now: the live roster (`participants`).
// The procedure's `present` follows it, but a state message is sent only when the
// procedure changes, so it can lag behind someone leaving.
export function isPresent(id) {
  return Boolean(state.roster.find((entry) => entry.id === id)?.present);
}

export function role() {
  return state.me?.me?.role ?? state.self?.role ?? null;
}

export function myId() {
  return state.me?.me?.id ?? state.self?.id ?? null;
}

export const COMMISSION = new Set(["chair", "member", "secretary"]);
export const VOTERS = new Set(["chair", "member"]);
