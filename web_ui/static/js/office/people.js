// A day's people (GET /api/days/{d}/people): role, name, e-mail, language, the state
// of their link, when it was issued and how it went out. Per person: revoke, or a
// new link (shown once, with a copy button). For the selected people (everyone by
// default): the invite sheet (PDF) or the invites by e-mail.
//
// Links are stored only as hashes. The sheet and the e-mails carry links this visit
// knows (from creating the day, or a new link); for anyone else the page first asks
// for a new link (POST .../reissue), which stops their old one: it says so and asks.

import { api } from "../api.js";
import { clear, h } from "../dom.js";
import { roleName, t } from "../i18n.js";
import { fullDate, shortDateTime, startLocal } from "./common.js";

// Per day: what the server said, and what this page did since.
const views = new Map();
// The last sheet printed (the page's CSP lets no script read a blob: URL back).
let newest = null;

export function lastSheet() {
  return newest;
}

function view(dayId) {
  if (!views.has(dayId)) {
    views.set(dayId, { data: null, error: "", selected: null, newLink: null, notice: "",
      busy: false, sheetUrl: null, mailResults: null, confirming: null });
  }
  return views.get(dayId);
}

function stateText(p) {
  if (p.state === "revoked") return t("officeStateRevoked", { when: shortDateTime(p.revoked_at) });
  if (p.state === "expired") return t("officeStateExpired", { when: shortDateTime(p.expires_at) });
  return t("officeStateActive", { when: shortDateTime(p.expires_at) });
}

function deliveredText(p) {
  const ways = [];
  if (p.delivered.sheet) ways.push(t("officeBySheet", { when: shortDateTime(p.delivered.sheet) }));
  if (p.delivered.email) ways.push(t("officeByEmail", { when: shortDateTime(p.delivered.email) }));
  return ways.length ? ways.join("; ") : t("officeNotDelivered");
}

export function peopleCard(dayId, links, { justCreated, changed, close }) {
  const v = view(dayId);
  const card = h("section", { class: "card office-day", id: "office-day", dataset: { day: String(dayId) } });
  // By id: after one redraw this closure's card is no longer the one on the page.
  const redraw = () => {
    const shown = document.getElementById("office-day");
    if (shown?.dataset.day === String(dayId)) shown.replaceWith(peopleCard(dayId, links, { justCreated, changed, close }));
  };

  const load = async () => {
    try {
      v.data = await api.get(`/api/days/${dayId}/people`);
      v.error = "";
      if (v.selected == null) v.selected = new Set(v.data.people.filter((p) => p.state === "active").map((p) => p.id));
    } catch (error) {
      v.error = error.message;
    }
    redraw();
  };

  if (!v.data && !v.error) {
    clear(card, h("p", { class: "muted" }, t("loading")));
    load();
    return card;
  }
  if (!v.data) {
    clear(card, h("p", { class: "alert", role: "alert" }, v.error));
    return card;
  }

  const people = v.data.people;
  const selected = () => people.filter((p) => v.selected.has(p.id));
  // The selected people whose current link this visit does not know: a new one each.
  const unknown = () => selected().filter((p) => !links.has(p.id));

  const act = async (fn) => {
    v.busy = true;
    v.notice = "";
    redraw();
    try {
      await fn();
    } catch (error) {
      v.notice = error.message;
    }
    v.busy = false;
    await load();
    changed();
  };

  const revoke = (p) => act(async () => {
    await api.post(`/api/days/${dayId}/people/${p.id}/revoke`);
    links.delete(p.id);
    v.selected.delete(p.id);
    if (v.newLink?.id === p.id) v.newLink = null;
    v.notice = t("officeRevoked", { name: p.name });
  });

  const reissue = (p) => act(async () => {
    const answer = await api.post(`/api/days/${dayId}/people/${p.id}/reissue`);
    links.set(p.id, answer.link.split("/j/")[1]);
    v.newLink = { id: p.id, name: p.name, link: answer.link };
  });

  // Fresh links for the selected people that need one; the tokens in their order.
  const tokens = async () => {
    for (const p of unknown()) {
      const answer = await api.post(`/api/days/${dayId}/people/${p.id}/reissue`);
      links.set(p.id, answer.link.split("/j/")[1]);
    }
    return selected().map((p) => links.get(p.id));
  };

  const printSheet = () => act(async () => {
    v.confirming = null;
    const list = await tokens();
    const response = await api.raw("POST", `/api/days/${dayId}/invitations/sheet`, { tokens: list });
    if (v.sheetUrl) URL.revokeObjectURL(v.sheetUrl);
    newest = await response.blob();
    v.sheetUrl = URL.createObjectURL(newest);
    v.notice = t("officeSheetReady", { n: list.length });
    const a = h("a", { href: v.sheetUrl, download: `invitations-day-${dayId}.pdf` });
    document.body.append(a);
    a.click();
    a.remove();
  });

  const sendMail = () => act(async () => {
    v.confirming = null;
    const list = await tokens();
    const answer = await api.post(`/api/days/${dayId}/invitations/email`, { tokens: list });
    v.mailResults = answer.results;
    const sent = answer.results.filter((r) => r.sent).length;
    v.notice = t("officeMailDone", { sent, total: answer.results.length });
  });

  // Withdrawing links needs a yes: unless every selected link is known already.
  const ask = (what) => {
    if (!unknown().length) {
      (what === "sheet" ? printSheet : sendMail)();
      return;
    }
    v.confirming = what;
    redraw();
  };

  const toggle = (p, on) => {
    if (on) v.selected.add(p.id);
    else v.selected.delete(p.id);
    redraw();
  };
  const active = people.filter((p) => p.state === "active");
  const allOn = active.length > 0 && active.every((p) => v.selected.has(p.id));

  const rows = people.map((p) => h("tr", { dataset: { person: String(p.id), state: p.state } },
    h("td", { class: "office-pick" }, h("input", { type: "checkbox", class: "office-select",
      "aria-label": t("officeSelectPerson", { name: p.name }), checked: v.selected.has(p.id),
      disabled: p.state !== "active", onchange: (event) => toggle(p, event.target.checked) })),
    h("td", { "data-label": t("officeColName") }, h("strong", {}, p.name), h("br"),
      h("span", { class: "muted" }, roleName(p.role))),
    h("td", { "data-label": t("officeColContact") }, p.email ?? h("span", { class: "muted" }, t("officeNoEmail")),
      h("br"), h("span", { class: "muted" }, p.language === "en" ? t("officeLangEn") : t("officeLangRu"),
        p.timezone !== v.data.day.timezone ? ` · ${p.timezone}` : "")),
    h("td", { "data-label": t("officeColLink") },
      h("span", { class: p.state === "active" ? "state-ok" : "state-missing" }, stateText(p)), h("br"),
      h("span", { class: "muted" }, t("officeIssued", { when: shortDateTime(p.issued_at) })),
      links.has(p.id) && p.state === "active" ? h("span", { class: "muted" }, ` · ${t("officeKnownHere")}`) : null),
    h("td", { "data-label": t("officeColDelivered") }, deliveredText(p)),
    h("td", { class: "office-actions" },
      h("button", { type: "button", class: "small office-reissue", disabled: v.busy || p.state !== "active",
        onclick: () => reissue(p) }, t("officeNewLink")),
      h("button", { type: "button", class: "small danger office-revoke", disabled: v.busy || p.state === "revoked",
        onclick: () => { if (confirm(t("officeRevokeConfirm", { name: p.name }))) revoke(p); } }, t("officeRevoke")))));

  const mail = v.data.mail;
  const count = selected().length;
  const day = v.data.day;
  clear(card,
    h("div", { class: "office-head" },
      h("h2", {}, day.title),
      h("button", { type: "button", class: "small", id: "office-close-day", onclick: close }, t("officeCloseDay"))),
    h("p", { class: "home-when" }, `${fullDate(day.date)}, ${startLocal(day.starts_at, day.timezone)} (${day.timezone})`),
    justCreated ? h("p", { class: "state-ok", id: "office-created" }, t("officeCreatedNote")) : null,
    v.newLink ? h("div", { class: "office-new-link", id: "office-new-link", role: "status" },
      h("p", {}, t("officeNewLinkFor", { name: v.newLink.name })),
      h("div", { class: "row" },
        h("input", { readonly: true, value: v.newLink.link, id: "office-new-link-text", class: "office-link-text",
          onfocus: (event) => event.target.select() }),
        h("button", { type: "button", id: "office-copy", onclick: async (event) => {
          const button = event.target;
          try {
            await navigator.clipboard.writeText(v.newLink.link);
            button.textContent = t("officeCopied");
          } catch {
            document.getElementById("office-new-link-text").select();
            button.textContent = t("officeCopyByHand");
          }
        } }, t("officeCopy"))),
      h("p", { class: "muted" }, t("officeNewLinkOnce"))) : null,
    h("div", { class: "office-toolbar" },
      h("label", { class: "office-check" }, h("input", { type: "checkbox", id: "office-select-all", checked: allOn,
        onchange: (event) => {
          v.selected = new Set(event.target.checked ? active.map((p) => p.id) : []);
          redraw();
        } }), t("officeSelectAll", { n: count, total: active.length })),
      h("button", { type: "button", class: "primary", id: "office-sheet", disabled: v.busy || !count,
        onclick: () => ask("sheet") }, t("officePrintSheet")),
      h("button", { type: "button", id: "office-email", disabled: v.busy || !count || !mail.enabled,
        title: mail.enabled ? null : mail.reason, onclick: () => ask("email") }, t("officeSendEmail")),
      mail.enabled ? null : h("small", { class: "muted", id: "office-mail-off" }, t("officeMailOff"))),
    v.confirming ? h("div", { class: "office-confirm", id: "office-confirm", role: "alertdialog" },
      h("p", {}, t("officeConfirmReissue", { n: unknown().length })),
      h("p", { class: "muted" }, unknown().map((p) => p.name).join(", ")),
      h("div", { class: "row" },
        h("button", { type: "button", class: "primary", id: "office-confirm-go",
          onclick: () => (v.confirming === "sheet" ? printSheet() : sendMail()) },
        v.confirming === "sheet" ? t("officeConfirmSheet") : t("officeConfirmEmail")),
        h("button", { type: "button", id: "office-confirm-cancel", onclick: () => { v.confirming = null; redraw(); } },
          t("officeCancel")))) : null,
    v.notice ? h("p", { class: "office-notice", id: "office-notice", role: "status" }, v.notice) : null,
    v.sheetUrl ? h("p", {}, h("a", { id: "office-sheet-download", href: v.sheetUrl,
      download: `invitations-day-${dayId}.pdf` }, t("officeDownloadAgain"))) : null,
    v.mailResults ? h("ul", { class: "office-mail-results", id: "office-mail-results" },
      v.mailResults.map((r) => h("li", { class: r.sent ? "state-ok" : "state-missing", dataset: { person: String(r.person_id) } },
        r.sent ? t("officeMailSent", { name: r.name })
          : t("officeMailFailed", { name: r.name, why: r.code === "no_address" ? t("officeNoEmail") : r.error ?? "" })))) : null,
    h("div", { class: "office-scroll" }, h("table", { class: "office-table office-people" },
      h("thead", {}, h("tr", {}, h("th", {}, ""), ...["officeColName", "officeColContact", "officeColLink",
        "officeColDelivered"].map((key) => h("th", {}, t(key))), h("th", {}, ""))),
      h("tbody", {}, rows))));
  return card;
}

// Forget what was loaded, so the card reads the server again (after creating a day).
export function forget(dayId) {
  views.delete(dayId);
}
