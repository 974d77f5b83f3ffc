// Identification (D2, clauses 7.5, 4.7): in queue order, the student states their
// name and shows the open passport beside the face; the secretary may take an
// automatic snapshot check (web_ui/identity_api.py: the frame, the two face crops
// and an advisory verdict) and decides, confirm or reject, with a comment.
// Three verdicts (issue 16): match, no match, and "look closely" where the distance
// falls in the band in which the model is known to confuse people; then the live
// face and the document's face are shown large, side by side (stacked on a phone),
// with the distance and the band small: the secretary decides by looking.
import { api, dayPath } from "../api.js";
import { h, clear } from "../dom.js";
import { act, busy, refused } from "../actions.js";
import { has, t } from "../i18n.js";
import { isPresent, personName, state, subscribe } from "../store.js";

const PHASES = new Set(["identification", "announcement", "between_defenses"]);

export function identityPanel() {
  const heading = h("h2", {});
  const target = h("select", { class: "identity-student" });
  const steps = h("ol", { class: "steps" });
  const checkButton = h("button", { type: "button", dataset: { action: "identity-check" } });
  const availability = h("p", { class: "muted" });
  const result = h("div", { class: "identity-result" });
  const comment = h("input", { type: "text", class: "identity-comment" });
  const accept = h("button", { type: "button", class: "primary", dataset: { action: "identity-accept" } });
  const reject = h("button", { type: "button", class: "danger", dataset: { action: "identity-reject" } });
  const root = h("section", { class: "panel identity" }, heading,
    h("label", {}, h("span", { class: "label-text" }), target), steps,
    h("div", { class: "row" }, checkButton, availability), result,
    h("label", { class: "comment" }, h("span", { class: "label-text" }), comment),
    h("div", { class: "row" }, accept, reject));
  let shown = "";
  let check = null;   // {student, record, urls}
  let drawnLanguage = null;

  const chosen = () => target.value || null;

  checkButton.addEventListener("click", busy(checkButton, async () => {
    const student = chosen();
    if (!student) return;
    check = { student, pending: true };
    drawResult();
    try {
      const answer = await api.post(dayPath(`/identity/${student}/check`), {});
      const record = answer.check;
      const urls = {};
      for (const [name, path] of Object.entries(record.images ?? {})) {
        if (path) urls[name] = URL.createObjectURL(await api.blob(path));
      }
      check = { student, record, urls };
    } catch (error) {
      check = null;
      refused(error);
    }
    drawResult();
  }));
  const decide = (accepted) => async () => {
    const student = chosen();
    if (!student) return;
    if (await act("identity", { student, accepted, comment: comment.value.trim() })) {
      comment.value = "";
      check = null;
      drawResult();
    }
  };
  accept.addEventListener("click", busy(accept, decide(true)));
  reject.addEventListener("click", busy(reject, decide(false)));

  function drawResult() {
    drawnLanguage = state.language;
    delete result.dataset.verdict;
    if (!check || check.student !== chosen()) {
      clear(result);
      return;
    }
    if (check.pending) {
      clear(result, h("p", { class: "muted" }, t("identityChecking")));
      return;
    }
    const record = check.record;
    result.dataset.verdict = record.verdict;
    if (record.verdict === "look_closely") {
      drawLookClosely(record);
      return;
    }
    const images = ["frame", "live", "document"].filter((n) => check.urls[n]).map((name) =>
      h("figure", { class: `identity-image ${name}` }, h("img", { src: check.urls[name], alt: t(`identityImage_${name}`) }),
        h("figcaption", {}, t(`identityImage_${name}`))));
    clear(result, h("p", { class: `verdict ${record.verdict}` }, t(`verdict_${record.verdict}`),
      record.reason ? ` — ${has(`identityReason_${record.reason}`) ? t(`identityReason_${record.reason}`) : record.reason}` : "",
      record.distance != null ? ` (${t("identityDistance")} ${record.distance})` : ""),
    h("div", { class: "identity-images" }, images),
    h("p", { class: "muted" }, t("identityAdvisory")));
  }

  // The model cannot separate these two people at this distance: both faces large,
  // side by side, the numbers small, the frame below for context.
  function drawLookClosely(record) {
    const [low, high] = record.band ?? [record.thresholds?.match_distance, record.thresholds?.no_match_distance];
    const number = (value) => (value == null ? "?" : Number(value).toLocaleString(state.language,
      { minimumFractionDigits: 2, maximumFractionDigits: 2 }));
    const large = ["live", "document"].filter((n) => check.urls[n]).map((name) =>
      h("figure", { class: `identity-face ${name}` },
        h("img", { src: check.urls[name], alt: t(`identityCompare_${name}`) }),
        h("figcaption", {}, t(`identityCompare_${name}`))));
    const frame = check.urls.frame
      ? h("figure", { class: "identity-image frame" }, h("img", { src: check.urls.frame, alt: t("identityImage_frame") }),
        h("figcaption", {}, t("identityImage_frame")))
      : null;
    // The panel is a narrow column on a desktop: the comparison opens large too.
    const enlarged = h("dialog", { class: "identity-dialog" },
      h("div", { class: "identity-compare identity-compare-large" },
        ["live", "document"].filter((n) => check.urls[n]).map((name) =>
          h("figure", { class: `identity-face ${name}` },
            h("img", { src: check.urls[name], alt: t(`identityCompare_${name}`) }),
            h("figcaption", {}, t(`identityCompare_${name}`))))),
      h("button", { type: "button", class: "primary", dataset: { action: "identity-enlarge-close" },
        onclick: () => enlarged.close() }, t("close")));
    const enlarge = h("button", { type: "button", class: "small", dataset: { action: "identity-enlarge" },
      onclick: () => enlarged.showModal() }, t("identityEnlarge"));
    clear(result,
      h("p", { class: "verdict look_closely" }, t("verdict_look_closely")),
      h("p", { class: "identity-explain" }, t("identityLookCloselyExplain")),
      h("div", { class: "identity-compare" }, large), enlarge, enlarged,
      h("p", { class: "identity-band" }, t("identityBandLine",
        { distance: number(record.distance), low: number(low), high: number(high) })),
      frame ? h("div", { class: "identity-context" }, frame) : null,
      h("p", { class: "muted" }, t("identityAdvisory")));
  }

  subscribe(() => {
    const p = state.procedure;
    const waiting = p ? p.queue.filter((id) => p.statuses[id] === "waiting") : [];
    root.hidden = !p || !PHASES.has(p.phase) || !waiting.length;
    if (root.hidden) return;
    const present = new Set(waiting.filter(isPresent));
    const key = `${state.language}|${waiting.join(",")}|${[...present].join(",")}|${Boolean(state.me?.features?.identity)}`;
    if (key === shown) return;
    shown = key;
    heading.textContent = t("identityHeading");
    root.querySelector("label .label-text").textContent = t("identityStudent");
    root.querySelector("label.comment .label-text").textContent = t("identityComment");
    const previous = chosen();
    const first = waiting.find((id) => present.has(id)) ?? waiting[0];
    clear(target, waiting.map((id) => h("option", { value: id },
      `${personName(id)}${present.has(id) ? "" : ` — ${t("notConnected")}`}`)));
    target.value = waiting.includes(previous) ? previous : first;
    clear(steps, ["identityStep1", "identityStep2", "identityStep3"].map((k) => h("li", {}, t(k))));
    const available = Boolean(state.me?.features?.identity);
    checkButton.textContent = t("identityCheck");
    checkButton.hidden = !available;
    availability.textContent = available ? "" : t("identityUnavailable");
    accept.textContent = t("identityAccept");
    reject.textContent = t("identityReject");
    // Redrawn only when it would show something else: new <img> elements have no
    // size until decoded, so a redraw on every presence change makes the faces blink.
    if (target.value !== previous || state.language !== drawnLanguage) drawResult();
  });
  target.addEventListener("change", drawResult);
  return root;
}
