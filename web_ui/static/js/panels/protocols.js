// Protocols (V5, V6): the secretary previews the drafts, every member approves the
// exact draft they read (its hash), the chair signs last; both are signed with this
// browser's key (signing.js). The preview is the server's
// HTML in a sandboxed frame: no scripts, nothing fetched.
import { api, dayPath } from "../api.js";
import { h, clear } from "../dom.js";
import { busy, refused, toast } from "../actions.js";
import { t } from "../i18n.js";
import { signStatement } from "../signing.js";
import { myId, role, state, subscribe } from "../store.js";

export function protocolsPanel() {
  const heading = h("h2", {});
  const list = h("ul", { class: "protocol-list" });
  const serverKey = h("p", { class: "muted server-key", hidden: true });
  serverKey.style.overflowWrap = "anywhere";  // a 64-digit fingerprint on a phone
  const refresh = h("button", { type: "button", class: "small" });
  const frame = h("iframe", { class: "protocol-preview", sandbox: "", title: "protocol", hidden: true });
  const root = h("section", { class: "panel protocols" }, h("div", { class: "panel-head" }, heading, refresh), serverKey, list, frame);
  let protocols = null;
  let fingerprint = null;
  let error = null;
  let lastPhase = null;

  async function load() {
    try {
      const answer = await api.get(dayPath("/protocols"));
      protocols = answer.protocols;
      fingerprint = answer.server_key ?? null;
      error = null;
    } catch (e) {
      error = e;
    }
    render();
  }

  async function preview(which) {
    try {
      frame.srcdoc = await api.text(dayPath(`/protocols/${which}?format=html`));
      frame.hidden = false;
    } catch (e) {
      refused(e);
    }
  }

  async function pdf(which) {
    try {
      const url = URL.createObjectURL(await api.blob(dayPath(`/protocols/${which}?format=pdf`)));
      window.open(url, "_blank", "noopener");
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (e) {
      refused(e);
    }
  }

  async function approve(entry) {
    try {
      const signed = await signStatement("approve", entry.which, entry.hash);
      await api.post(dayPath(`/protocols/${entry.which}/approve`), { hash: entry.hash, ...signed });
      toast(t("protocolApproved"));
    } catch (e) {
      refused(e);
    }
    await load();
  }

  async function sign(entry) {
    try {
      await api.post(dayPath(`/protocols/${entry.which}/sign`), await signStatement("sign", entry.which, entry.hash));
      toast(t("protocolSigned"));
    } catch (e) {
      refused(e);
    }
    await load();
  }

  function render() {
    heading.textContent = t("protocolsHeading");
    refresh.textContent = t("refresh");
    // The secretary compares it with the protocols and gives it to whoever verifies packages.
    serverKey.hidden = !fingerprint || role() !== "secretary";
    serverKey.textContent = fingerprint ? t("serverKey", { fingerprint }) : "";
    if (error) {
      clear(list, h("li", { class: "muted" }, t("protocolsUnavailable", { message: error.message })));
      return;
    }
    if (!protocols) {
      clear(list, h("li", { class: "muted" }, t("loading")));
      return;
    }
    const me = Number(myId());
    clear(list, protocols.map((entry) => {
      const name = entry.kind === "day" ? t("protocolDay")
        : t(entry.kind === "appeal" ? "appealProtocolName" : "protocolStudent", { name: entry.student?.name ?? "" });
      const approvedByMe = entry.approved_by.some((a) => a.person_id === me);
      const buttons = [
        button(t("preview"), () => preview(entry.which)),
        button("PDF", () => pdf(entry.which)),
      ];
      if (["member", "appeal_member"].includes(role()) && entry.status !== "signed" && entry.final && !approvedByMe) {
        buttons.push(button(t("approve"), () => approve(entry), "primary"));
      }
      if (["chair", "appeal_chair"].includes(role()) && entry.status === "approved") {
        buttons.push(button(t("sign"), () => sign(entry), "primary"));
      }
      const missing = entry.missing_approvals.map((m) => m.name).join(", ");
      return h("li", { dataset: { which: entry.which, status: entry.status } },
        h("p", { class: "name" }, name, " · ", h("span", { class: `protocol-status ${entry.status}` }, t(`protocol_${entry.status}`))),
        h("p", { class: "muted" }, entry.final ? (missing ? t("protocolMissing", { names: missing }) : "")
          : t("protocolNotFinal"), approvedByMe ? ` ${t("protocolYouApproved")}` : ""),
        h("p", { class: "buttons" }, buttons));
    }));
  }

  function button(label, run, kind = "small") {
    const element = h("button", { type: "button", class: kind }, label);
    element.addEventListener("click", busy(element, run));
    return element;
  }

  refresh.addEventListener("click", load);
  subscribe(() => {
    const phase = state.procedure?.phase;
    if (phase !== lastPhase) {
      lastPhase = phase;
      load();
    } else {
      render();
    }
  });
  return root;
}
