// The secretary's preparation view: readiness, consent, documents, students, the
// queue; after the sitting, the hand-over. Appeals are home/appeal_secretary.js.
import { h } from "../dom.js";
import { appealsSection } from "./appeal_secretary.js";

export function secretaryHome() {
  return h("div", { class: "home-sections" }, appealsSection());
}
