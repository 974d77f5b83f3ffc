// The secretary's side of appeals: the appeals filed, scheduling the appeal
// sitting, and who of its people has their link.
import { h } from "../dom.js";

export function appealsSection() {
  return h("div", { class: "home-appeals", hidden: true });
}
