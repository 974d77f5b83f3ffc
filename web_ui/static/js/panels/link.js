// The state of this page's connection, always visible: a small pill in the header,
// and while it is being rebuilt a banner that says so and that the absence rules
// count from the moment the link was lost (clauses 7.8, 7.9).
import { h, clear } from "../dom.js";
import { t } from "../i18n.js";
import { role, state, subscribe } from "../store.js";

export function linkIndicator(pill, banner) {
  let ticker = null;
  function render() {
    const link = state.link;
    pill.dataset.state = link.phase;
    pill.textContent = t(`link_${link.phase}`);
    const reconnecting = link.phase === "reconnecting" || link.phase === "unstable";
    banner.hidden = !reconnecting;
    clearInterval(ticker);
    if (!reconnecting) return;
    const draw = () => {
      const seconds = link.retryAt ? Math.max(0, Math.ceil((link.retryAt - Date.now()) / 1000)) : 0;
      clear(banner,
        h("p", { class: "banner-title" }, t(link.phase === "unstable" ? "linkUnstable" : "linkLost")),
        h("p", {}, link.phase === "reconnecting"
          ? t(seconds ? "linkRetryIn" : "linkRetrying", { seconds, attempt: link.attempt }) : ""),
        h("p", { class: "muted" }, t(role() === "student" ? "linkRulesStudent" : "linkRules")));
    };
    draw();
    ticker = setInterval(draw, 1000);
  }
  subscribe(render);
}
