// The secretary's side of appeals: the appeals filed, scheduling the appeal
// sitting, and who of its people has their link.
//
// Per appeal: the student, the text, the chair's conclusion (8.3), the evidence pack
// to download (8.3, R2), the sitting: scheduled from a form (8.4, 8.5) with the
// appeal commission's links shown once, then its people with when each fetched their
// link and joined; the decision; after an upheld one, the repeated defense (8.8).
import { api, dayPath } from "../api.js";
import { busy, refused, toast } from "../actions.js";
import { formatDateTime, fromLocalInput, toLocalInput } from "../clock.js";
import { clear, h, saveBlob } from "../dom.js";
import { roleName, t } from "../i18n.js";
import { state, student, subscribe } from "../store.js";
import { ownZone, section } from "./common.js";

const DAY_S = 86_400;

export function appealsSection() {
  const body = h("div", { class: "appeals-body" });
  const refresh = h("button", { type: "button", class: "small", id: "appeals-refresh" });
  const root = section("appealsHeading", refresh, body);
  root.classList.add("home-appeals");
  root.hidden = true;
  let appeals = null;
  let failed = null;
  const people = new Map();   // appeal id -> the sitting's people (sitting-people)
  const links = new Map();    // appeal id -> the links the last schedule/repeat answered
  const forms = new Map();    // appeal id -> its form's inputs, kept across renders

  async function load() {
    try {
      appeals = (await api.get(dayPath("/appeals"))).appeals;
      failed = null;
      await Promise.all(appeals.filter((a) => a.sitting_day_id).map(async (a) => {
        people.set(a.appeal_id, (await api.get(`/api/appeals/${a.appeal_id}/sitting-people`)).people);
      }));
    } catch (error) {
      failed = error;
    }
    render();
  }

  function form(appeal) {
    if (!forms.has(appeal.appeal_id)) {
      // A day's notice at least (8.5): tomorrow at this hour, rounded up to a quarter.
      const at = Math.ceil((Date.now() / 1000 + DAY_S + 600) / 900) * 900;
      forms.set(appeal.appeal_id, {
        when: h("input", { type: "datetime-local", class: "appeal-when", value: toLocalInput(at) }),
        chair: h("input", { type: "text", class: "appeal-chair-name appeal-wide", maxlength: 200 }),
        members: h("textarea", { rows: 3, class: "appeal-members appeal-wide" }),
        repeat: h("input", { type: "datetime-local", class: "repeat-when", value: toLocalInput(at + DAY_S) }),
      });
    }
    return forms.get(appeal.appeal_id);
  }

  async function schedule(appeal) {
    const f = form(appeal);
    const sittingAt = fromLocalInput(f.when.value);
    const members = f.members.value.split("\n").map((s) => s.trim()).filter(Boolean);
    if (!sittingAt || !f.chair.value.trim() || members.length === 0) {
      toast(t("appealScheduleIncomplete"), "error");
      return;
    }
    try {
      const answer = await api.post(`/api/appeals/${appeal.appeal_id}/schedule`,
        { sitting_at: sittingAt, appeal_chair: f.chair.value.trim(), appeal_members: members });
      links.set(appeal.appeal_id, { kind: "sitting", invites: answer.invites });
      toast(t("appealScheduledToast"));
    } catch (error) {
      refused(error);
    }
    await load();
  }

  async function repeat(appeal) {
    const startsAt = fromLocalInput(form(appeal).repeat.value);
    if (!startsAt) return;
    try {
      const answer = await api.post(`/api/appeals/${appeal.appeal_id}/repeat`, { starts_at: startsAt });
      links.set(appeal.appeal_id, { kind: "repeat", invites: answer.invites });
      toast(t("appealRepeatToast"));
    } catch (error) {
      refused(error);
    }
    await load();
  }

  async function evidence(appeal) {
    try {
      saveBlob(await api.blob(`/api/appeals/${appeal.appeal_id}/evidence?format=zip`),
        `appeal-${appeal.appeal_id}.zip`);
    } catch (error) {
      refused(error);
    }
  }

  function button(label, run, attrs = {}) {
    const element = h("button", { type: "button", ...attrs }, label);
    element.addEventListener("click", busy(element, run));
    return element;
  }

  function linkList(given) {
    // The appeal commission gets its links from the secretary; the student and the
    // chair fetch theirs on their own pages (each fetch replaces the one here).
    const shown = given.kind === "sitting"
      ? given.invites.filter((i) => i.role === "appeal_chair" || i.role === "appeal_member") : given.invites;
    return h("div", { class: "appeal-links" },
      h("p", { class: "state-wait" }, t(given.kind === "sitting" ? "appealLinksOnce" : "appealRepeatLinksOnce")),
      h("ul", {}, shown.map((i) => h("li", { dataset: { role: i.role } },
        h("strong", {}, `${i.name} · ${roleName(i.role)}`), h("br"),
        h("code", { class: "appeal-link" }, i.link)))));
  }

  function peopleTable(appeal, zone) {
    const rows = (people.get(appeal.appeal_id) ?? []).filter((p) => !p.revoked).map((p) => {
      const ownPage = p.role === "student" || p.role === "chair";
      const link = p.fetched_at
        ? h("span", { class: "state-ok" }, t("appealLinkFetched", { when: formatDateTime(p.fetched_at, zone) }))
        : ownPage ? h("span", { class: "state-missing" }, t("appealLinkNotFetched"))
          : h("span", { class: "muted" }, t("appealLinkGiven"));
      const joined = p.joined_at ? h("span", { class: "state-ok" }, t("appealJoinedAt", { when: formatDateTime(p.joined_at, zone) }))
        : h("span", { class: "muted" }, t("appealNotJoined"));
      return h("tr", { dataset: { person: p.person_id, role: p.role, fetched: p.fetched_at ? "yes" : "no" } },
        h("td", {}, h("strong", {}, p.name), h("br"), h("span", { class: "muted" }, roleName(p.role))),
        h("td", {}, link), h("td", {}, joined));
    });
    return h("table", { class: "appeal-people" },
      h("thead", {}, h("tr", {}, h("th", {}, t("appealPerson")), h("th", {}, t("appealLink")), h("th", {}, t("appealJoined")))),
      h("tbody", {}, rows));
  }

  function appealCard(appeal, zone) {
    const name = student(String(appeal.student))?.name ?? String(appeal.student);
    const items = [
      h("h4", { class: "appeal-title" }, t("appealOf", { name })),
      h("p", { class: "muted" }, t(appeal.on_paper ? "appealFiledOnPaper" : "appealFiledAt", { when: formatDateTime(appeal.filed_at, zone) })),
      h("p", { class: "appeal-text" }, appeal.text),
      appeal.conclusion
        ? h("p", {}, h("strong", {}, t("appealConclusion")), " ", appeal.conclusion)
        : h("p", { class: "state-wait" }, t("appealNoConclusion")),
      h("p", { class: "row" }, button(t("appealEvidence"), () => evidence(appeal), { class: "small appeal-evidence" })),
    ];
    if (!appeal.sitting_day_id && !appeal.decision) {
      const f = form(appeal);
      items.push(h("div", { class: "appeal-schedule" },
        h("h4", { class: "appeal-subtitle" }, t("appealSchedule")),
        h("p", { class: "muted" }, t("appealScheduleHint")),
        h("label", {}, t("appealWhen"), " ", f.when),
        h("label", {}, t("appealChairName"), f.chair),
        h("label", {}, t("appealMembersNames"), f.members),
        button(t("appealScheduleGo"), () => schedule(appeal), { class: "primary appeal-schedule-go" })));
    }
    if (appeal.sitting_at) {
      items.push(h("p", { class: "state-wait appeal-sitting-at" }, t("appealSittingAtSec", { when: formatDateTime(appeal.sitting_at, zone) })));
    }
    if (links.has(appeal.appeal_id)) items.push(linkList(links.get(appeal.appeal_id)));
    if (appeal.sitting_day_id) items.push(peopleTable(appeal, zone));
    if (appeal.decision) {
      const upheld = appeal.decision === "upheld";
      items.push(h("p", { class: upheld ? "state-ok appeal-decision" : "state-missing appeal-decision" },
        t(upheld ? "appealDecisionUpheld" : "appealDecisionRejected")),
      h("p", { class: "appeal-text" }, t("appealReasoning", { text: appeal.reasoning ?? "" })),
      h("p", { class: "muted" }, t("appealDeliveredOn", { when: formatDateTime(appeal.delivery_at, zone) })));
      if (upheld && !appeal.repeat_day_id) {
        items.push(h("div", { class: "appeal-repeat" },
          h("p", {}, t("appealRepeatHint")),
          h("label", {}, t("appealRepeatWhen"), " ", form(appeal).repeat),
          button(t("appealRepeatGo"), () => repeat(appeal), { class: "primary appeal-repeat-go" })));
      } else if (appeal.repeat_day_id) {
        items.push(h("p", { class: "state-ok" }, t("appealRepeatScheduled")));
      }
    } else if (appeal.sitting_day_id) {
      items.push(h("p", { class: "muted" }, t("appealNotDecided")));
    }
    return h("div", { class: "appeal card", dataset: { appeal: appeal.appeal_id } }, items);
  }

  function render() {
    refresh.textContent = t("refresh");
    if (failed) {
      root.hidden = false;
      clear(body, h("p", { class: "muted" }, t("appealUnavailable", { message: failed.message })));
      return;
    }
    root.hidden = !appeals;
    if (!appeals) return;
    const zone = ownZone();
    clear(body, appeals.length ? appeals.map((a) => appealCard(a, zone)) : h("p", { class: "muted" }, t("appealsNone")));
  }

  refresh.addEventListener("click", busy(refresh, load));
  let language = null;
  subscribe(() => {
    if (state.language !== language) {
      language = state.language;
      render();
    }
  });
  load();
  return root;
}
